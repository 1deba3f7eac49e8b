//! `firedrill evidence`: the key that signs run reports, and checking a signed report and
//! that its artifact is still what it recorded (what an auditor runs).

use std::path::Path;

use firedrill::config::MainConfig;
use firedrill::load_drill;

use super::{drill_path, key_file};

/// Writes a new signing key and prints its public key.
pub(super) fn keygen(output: &Path, json: bool) -> u8 {
    let (pem, public) = match firedrill::evidence::generate() {
        Ok(k) => k,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    if let Err(code) = key_file::create(
        output,
        &pem,
        "a signing key (reports signed with it could no longer be checked)",
    ) {
        return code;
    }
    if json {
        let written = serde_json::json!({ "signing_key": output, "public_key": public });
        outln!(
            "{}",
            serde_json::to_string_pretty(&written).unwrap_or_default()
        );
        return 0;
    }
    errln!(
        "wrote the signing key to {}; set [evidence] signing_key = {{ file = \"{}\" }} and public_key to:",
        output.display(),
        output.display()
    );
    outln!("{public}");
    0
}

/// Checks a signed report's signature, then (unless `signature_only`) that the artifact
/// and manifest it names still have the hashes it records.
pub(super) async fn verify(
    config: &MainConfig,
    report: &Path,
    public_key: Option<&str>,
    dir: &Path,
    signature_only: bool,
    json: bool,
) -> u8 {
    let trusted = match public_key {
        Some(k) => firedrill::evidence::verifying_key_from_hex(k, "--public-key").map(Some),
        None => config.trusted_key(),
    };
    let trusted = match trusted {
        Ok(Some(k)) => k,
        Ok(None) => {
            errln!("error: no key to check the signature with\n  hint: pass --public-key HEX, or --config with [evidence] public_key or signing_key");
            return 2;
        }
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    let bytes = match std::fs::read(report) {
        Ok(t) => t,
        Err(e) => {
            errln!("error: cannot read {}: {e}", report.display());
            return 2;
        }
    };
    if firedrill::bundle::is_bundle(&bytes) {
        return verify_bundle(&bytes, &trusted, report, json);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // With --json, the verdict (intact or not) is one object on stdout; what kept it from
    // being checked (exit 2) is said on stderr as always.
    let mut verdict = serde_json::json!({
        "report": report,
        "key": hex_key(&trusted),
        "signature": null,
        "checked": [],
        "intact": false,
        "error": null,
    });
    let print = |verdict: &serde_json::Value| {
        outln!(
            "{}",
            serde_json::to_string_pretty(verdict).unwrap_or_default()
        )
    };
    let r = match firedrill::evidence::verify_signature(&text, &trusted, report) {
        Ok(r) => r,
        Err(e) => {
            if json {
                verdict["signature"] = "failed".into();
                verdict["error"] = e.to_string().into();
                print(&verdict);
            } else {
                errln!("FAILED: {e}");
            }
            return 1;
        }
    };
    verdict["signature"] = "ok".into();
    verdict["run_id"] = r.run_id.clone().into();
    verdict["drill"] = r.drill.clone().into();
    if !json {
        outln!("signature: ok (ed25519 key {})", hex_key(&trusted));
    }
    if signature_only {
        if json {
            verdict["intact"] = true.into();
            print(&verdict);
        }
        return 0;
    }
    let drill = match load_drill(&drill_path(&r.drill, dir)) {
        Ok(d) => d,
        Err(p) => {
            errln!("{p}\nerror: cannot load drill {} to reach its storage\n  hint: pass --drills-dir, or --signature-only", r.drill);
            return 2;
        }
    };
    let store = match firedrill::store::build_store(&drill.storage, &drill.base_dir) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    match firedrill::evidence::verify_artifact(&r, store.as_ref()).await {
        Ok(checked) if json => {
            verdict["checked"] = checked.iter().map(|c| c.to_string()).collect();
            verdict["intact"] = true.into();
            print(&verdict);
            0
        }
        Ok(checked) => {
            for c in checked {
                outln!("{c}: ok");
            }
            outln!(
                "report {} of drill {}: intact ({})",
                r.run_id,
                r.drill,
                r.status()
            );
            0
        }
        Err(e) if e.kind.is_backup_failure() => {
            if json {
                verdict["error"] = e.to_string().into();
                print(&verdict);
            } else {
                errln!("FAILED: {e}");
            }
            1
        }
        Err(e) => {
            errln!("error: {e}");
            2
        }
    }
}

/// Checks an evidence bundle offline.
fn verify_bundle(
    bytes: &[u8],
    trusted: &ed25519_dalek::VerifyingKey,
    path: &Path,
    json: bool,
) -> u8 {
    match firedrill::bundle::verify(bytes, trusted, &path.display().to_string()) {
        Ok(v) if json => {
            let mut out = serde_json::to_value(&v).unwrap_or_default();
            out["intact"] = true.into();
            outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            0
        }
        Ok(v) => {
            outln!(
                "bundle {}: intact: {} files, {} reports, {} audit entries, {} to {}, exported by {}",
                path.display(),
                v.files,
                v.reports,
                v.audit_entries,
                v.since,
                v.until,
                v.created_by
            );
            for u in &v.unsigned_reports {
                outln!("  {u}: unsigned when it ran; covered by the bundle's signature only");
            }
            0
        }
        Err(e) => {
            if json {
                let out =
                    serde_json::json!({ "bundle": path, "intact": false, "error": e.to_string() });
                outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                errln!("FAILED: {e}");
            }
            1
        }
    }
}

/// Writes an evidence bundle for a period.
pub(super) async fn export(
    config: &MainConfig,
    catalog: &Path,
    since: &str,
    until: Option<&str>,
    output: &Path,
    dir: &Path,
    json: bool,
) -> u8 {
    let since = match super::access::time_arg(since, "--since") {
        Ok(t) => t,
        Err(c) => return c,
    };
    let until = match until
        .map(|u| super::access::time_arg(u, "--until"))
        .transpose()
    {
        Ok(t) => t.unwrap_or_else(jiff::Timestamp::now),
        Err(c) => return c,
    };
    if until <= since {
        errln!("error: --until ({until}) is not after --since ({since})");
        return 2;
    }
    let key = match config.signing_key() {
        Ok(Some(k)) => k,
        Ok(None) => {
            errln!("error: an evidence bundle is signed, and --config sets no [evidence] signing_key
  hint: `firedrill evidence keygen --output FILE`, then [evidence] signing_key = {{ file = \"FILE\" }}");
            return 2;
        }
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    if output.exists() {
        errln!(
            "error: {} exists; an evidence bundle is never overwritten
  hint: give another --output",
            output.display()
        );
        return 2;
    }
    let c = match super::open_catalog(catalog).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let read = async {
        let runs = c.runs(None, usize::MAX >> 1).await?;
        let artifacts = c.artifacts(None).await?;
        let audit = c
            .audit(&firedrill::access::AuditQuery {
                since: Some(since),
                until: Some(until),
                before: None,
                limit: usize::MAX >> 1,
            })
            .await?;
        Ok::<_, firedrill::Error>((runs, artifacts, audit))
    };
    let (runs, artifacts, mut audit) = match read.await {
        Ok(x) => x,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    audit.reverse();
    let runs: Vec<_> = runs
        .into_iter()
        .filter(|r| r.started_at >= since && r.started_at <= until && r.status.is_finished())
        .collect();
    let artifacts = artifacts
        .into_iter()
        .filter(|a| a.created_at >= since && a.created_at <= until)
        .collect();
    let rto = firedrill::daemon::load_drills(dir)
        .map(|d| {
            d.into_iter()
                .filter_map(|(n, d)| d.schedule.rto.map(|r| (n, r)))
                .collect()
        })
        .unwrap_or_default();
    let input = firedrill::bundle::Input {
        since,
        until,
        created_by: firedrill::access::Actor::cli().to_string(),
        runs,
        artifacts,
        audit,
        rto,
    };
    let bytes = match firedrill::bundle::build(&input, &key) {
        Ok(b) => b,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    if let Err(e) = firedrill::evidence::write_atomic(output, &bytes) {
        errln!("error: {e}");
        return 2;
    }
    if json {
        let v = serde_json::json!({
            "bundle": output,
            "since": since.to_string(),
            "until": until.to_string(),
            "runs": input.runs.len(),
            "audit_entries": input.audit.len(),
            "bytes": bytes.len(),
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        errln!(
            "wrote {} ({} runs, {} audit entries, {since} to {until}); check it with `firedrill evidence verify {}`",
            output.display(),
            input.runs.len(),
            input.audit.len(),
            output.display()
        );
    }
    0
}

/// A public key as `[evidence] public_key` and `--public-key` spell it.
fn hex_key(k: &ed25519_dalek::VerifyingKey) -> String {
    k.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
