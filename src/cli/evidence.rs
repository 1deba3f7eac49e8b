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
    let text = match std::fs::read_to_string(report) {
        Ok(t) => t,
        Err(e) => {
            errln!("error: cannot read {}: {e}", report.display());
            return 2;
        }
    };
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

/// A public key as `[evidence] public_key` and `--public-key` spell it.
fn hex_key(k: &ed25519_dalek::VerifyingKey) -> String {
    k.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
