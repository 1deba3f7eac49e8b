//! The evidence pack an auditor asks for: one signed file for a period holding every
//! run's report as firedrill signed it, the artifacts' hashes, the audit trail, and a
//! summary per drill (runs, passes, recovery time against its objective, the longest
//! time without a verified backup). `firedrill evidence export` writes it; `firedrill
//! evidence verify BUNDLE` checks it offline, with the public key alone.
//!
//! The bundle is a tar archive. `MANIFEST.json` lists every other file with its SHA-256
//! and is signed (ed25519, the key that signs reports), so adding, removing or editing any
//! file is found and named. Each report keeps its own signature besides: a report signed
//! by another key, or edited before it was bundled, is named too.

use std::collections::BTreeMap;
use std::io::Read as _;

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::AuditEntry;
use crate::catalog::{ArtifactRecord, RunRecord};
use crate::error::{Error, Result};
use crate::signing::{Signature, ALGORITHM};
use crate::status::RunStatus;

pub const MANIFEST: &str = "MANIFEST.json";
/// The largest bundle `verify` reads (it holds reports and the audit trail, not data).
const MAX_BUNDLE_BYTES: u64 = 2 << 30;

/// What the bundle holds, and its signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    #[serde(with = "ts")]
    pub since: jiff::Timestamp,
    #[serde(with = "ts")]
    pub until: jiff::Timestamp,
    #[serde(with = "ts")]
    pub created_at: jiff::Timestamp,
    /// Who exported it (`cli:user@host`).
    pub created_by: String,
    /// Path in the bundle → SHA-256 (hex).
    pub files: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

mod ts {
    pub fn serialize<S: serde::Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<jiff::Timestamp, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One drill over the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillSummary {
    pub drill: String,
    pub runs: usize,
    pub passed: usize,
    pub failed: usize,
    /// Runs that errored, were cancelled, interrupted or lost: nothing was proved.
    pub inconclusive: usize,
    /// The drill's recovery time objective (seconds), when its file was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_target_s: Option<f64>,
    /// The slowest and the median recovery of passing runs (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_max_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_median_s: Option<f64>,
    /// Passing runs slower than the objective.
    pub rto_missed: usize,
    /// The longest stretch of the period with no newly verified backup (seconds): from
    /// the period's start (or a pass) to the next pass (or the period's end).
    pub longest_gap_s: i64,
    /// Runs with no signature (no `[evidence] signing_key` when they ran).
    pub unsigned_reports: usize,
}

/// Everything read to build a bundle.
pub struct Input {
    pub since: jiff::Timestamp,
    pub until: jiff::Timestamp,
    pub created_by: String,
    /// Runs of the period (any drill), with their stored reports.
    pub runs: Vec<RunRecord>,
    pub artifacts: Vec<ArtifactRecord>,
    pub audit: Vec<AuditEntry>,
    /// Drill → recovery time objective.
    pub rto: BTreeMap<String, std::time::Duration>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A run as the summary counts it: what it proved (its signed report's verdict; the
/// catalog's status only where it has no report) and whether its report is signed. Each
/// report is read once.
struct Judged<'a> {
    run: &'a RunRecord,
    verdict: RunStatus,
    signed: bool,
}

fn judge(r: &RunRecord) -> Judged<'_> {
    let report = r
        .report
        .as_deref()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok());
    let verdict = report
        .as_ref()
        .and_then(|v| match v.get("verdict")?.as_str()? {
            "passed" => Some(RunStatus::Passed),
            "failed" => Some(RunStatus::Failed),
            _ => Some(RunStatus::Error),
        })
        .unwrap_or(r.status);
    Judged {
        run: r,
        verdict,
        signed: report.is_some_and(|v| v.get("signature").is_some()),
    }
}

fn summarise(input: &Input) -> Vec<DrillSummary> {
    let mut by: BTreeMap<&str, Vec<Judged<'_>>> = BTreeMap::new();
    for r in &input.runs {
        by.entry(r.drill.as_str()).or_default().push(judge(r));
    }
    for d in input.rto.keys() {
        by.entry(d.as_str()).or_default();
    }
    by.into_iter()
        .map(|(drill, mut runs)| {
            runs.sort_by_key(|j| j.run.started_at);
            let count = |v: RunStatus| runs.iter().filter(|j| j.verdict == v).count();
            let passed: Vec<&RunRecord> = runs
                .iter()
                .filter(|j| j.verdict == RunStatus::Passed)
                .map(|j| j.run)
                .collect();
            let mut rtos: Vec<f64> = passed.iter().filter_map(|r| r.rto_seconds).collect();
            rtos.sort_by(|a, b| a.total_cmp(b));
            let target = input.rto.get(drill).map(|d| d.as_secs_f64());
            let mut gap = 0i64;
            let mut from = input.since;
            for r in &passed {
                let at = r.finished_at.unwrap_or(r.started_at);
                gap = gap.max(at.as_second() - from.as_second());
                from = at;
            }
            let end = input.until.min(jiff::Timestamp::now());
            gap = gap.max(end.as_second() - from.as_second());
            let (passed_n, failed_n) = (count(RunStatus::Passed), count(RunStatus::Failed));
            DrillSummary {
                drill: drill.to_string(),
                runs: runs.len(),
                passed: passed_n,
                failed: failed_n,
                inconclusive: runs.len() - passed_n - failed_n,
                rto_target_s: target,
                rto_max_s: rtos.last().copied(),
                rto_median_s: rtos
                    .get(rtos.len() / 2)
                    .copied()
                    .filter(|_| !rtos.is_empty()),
                rto_missed: target.map_or(0, |t| rtos.iter().filter(|x| **x > t).count()),
                longest_gap_s: gap.max(0),
                unsigned_reports: runs.iter().filter(|j| !j.signed).count(),
            }
        })
        .collect()
}

/// A human-readable summary, for the auditor who opens the bundle.
fn summary_text(m: &Input, s: &[DrillSummary]) -> String {
    use std::fmt::Write as _;
    let mut t = format!(
        "firedrill evidence, {} to {}\nexported by {}\n\n",
        m.since, m.until, m.created_by
    );
    for d in s {
        let _ = writeln!(
            t,
            "drill {}: {} runs, {} passed, {} failed, {} inconclusive",
            d.drill, d.runs, d.passed, d.failed, d.inconclusive
        );
        match (d.rto_target_s, d.rto_max_s) {
            (Some(target), Some(max)) => {
                let _ = writeln!(
                    t,
                    "  recovery time: slowest {max:.1} s, median {:.1} s, objective {target:.0} s: {}",
                    d.rto_median_s.unwrap_or_default(),
                    if d.rto_missed == 0 {
                        "met by every passing run".to_string()
                    } else {
                        format!("missed by {} run(s)", d.rto_missed)
                    }
                );
            }
            (None, Some(max)) => {
                let _ = writeln!(t, "  recovery time: slowest {max:.1} s (no objective set)");
            }
            _ => {
                let _ = writeln!(t, "  recovery time: no passing run");
            }
        }
        let _ = writeln!(
            t,
            "  longest time without a verified backup: {}",
            crate::human::human_ms(u64::try_from(d.longest_gap_s).unwrap_or(0) * 1000)
        );
        if d.unsigned_reports > 0 {
            let _ = writeln!(
                t,
                "  {} report(s) unsigned (no [evidence] signing_key when they ran): covered by this bundle's signature only",
                d.unsigned_reports
            );
        }
    }
    t
}

/// Builds the bundle: the tar archive's bytes.
pub fn build(input: &Input, key: &SigningKey) -> Result<Vec<u8>> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut hashes = Vec::new();
    for r in &input.runs {
        let Some(report) = &r.report else { continue };
        let path = format!("reports/{}/{}.json", safe(&r.drill), safe(&r.run_id));
        let mut body = report.clone().into_bytes();
        body.push(b'\n');
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(report) {
            if let Some(a) = v.get("artifact").filter(|a| !a.is_null()) {
                hashes.push(serde_json::json!({
                    "drill": r.drill,
                    "run_id": r.run_id,
                    "artifact": a,
                }));
            }
        }
        files.push((path, body));
    }
    let artifacts = serde_json::json!({
        "from_reports": hashes,
        "inventory": input.artifacts,
    });
    let summary = summarise(input);
    files.push(("artifacts.json".into(), json(&artifacts)));
    files.push(("audit.json".into(), json(&input.audit)));
    files.push(("summary.json".into(), json(&summary)));
    files.push((
        "SUMMARY.txt".into(),
        summary_text(input, &summary).into_bytes(),
    ));
    let mut manifest = Manifest {
        format: 1,
        since: input.since,
        until: input.until,
        created_at: jiff::Timestamp::now(),
        created_by: input.created_by.clone(),
        files: files
            .iter()
            .map(|(p, b)| (p.clone(), sha256_hex(b)))
            .collect(),
        signature: None,
    };
    let sig = key.sign(&canonical(&manifest));
    manifest.signature = Some(Signature {
        algorithm: ALGORITHM.into(),
        public_key: hex::encode(key.verifying_key().as_bytes()),
        value: hex::encode(sig.to_bytes()),
    });
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, body: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(manifest.created_at.as_second().max(0) as u64);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, path, body)
    };
    let io = |e: std::io::Error| Error::internal(format!("cannot write the bundle: {e}"));
    add(MANIFEST, &json(&manifest)).map_err(io)?;
    for (p, b) in &files {
        add(p, b).map_err(io)?;
    }
    tar.into_inner().map_err(io)
}

/// Names from the catalog, safe as one path component.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn canonical(m: &Manifest) -> Vec<u8> {
    let mut m = m.clone();
    m.signature = None;
    serde_json::to_vec(&m).expect("a manifest serializes")
}

/// Pretty JSON and a newline.
fn json<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).expect("it serializes");
    b.push(b'\n');
    b
}

/// What `verify` found in an intact bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub since: String,
    pub until: String,
    pub created_by: String,
    pub files: usize,
    pub reports: usize,
    /// Reports with no signature of their own (covered by the bundle's).
    pub unsigned_reports: Vec<String>,
    pub audit_entries: usize,
    pub summary: Vec<DrillSummary>,
}

/// Whether `bytes` look like a tar archive (a bundle) rather than a JSON report.
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.len() >= 512 && &bytes[257..262] == b"ustar"
}

/// Checks a bundle offline: the manifest's signature by the trusted key, every file's
/// hash, no file missing or added, and each signed report's own signature. The error
/// names the first file that does not hold.
pub fn verify(bytes: &[u8], trusted: &VerifyingKey, name: &str) -> Result<Verdict> {
    let bad = |m: String| {
        Error::verification(format!("{name}: {m}"))
            .with_hint("this bundle is not the one firedrill exported; do not rely on it")
    };
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(bad("is larger than any bundle firedrill writes".into()));
    }
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // Where the last entry's data ends: anything after it but the archive's zero blocks
    // would be files a tar tool shows and nothing here checked.
    let mut end = 0u64;
    let mut archive = tar::Archive::new(bytes);
    let list = archive
        .entries()
        .map_err(|e| bad(format!("is not a tar archive: {e}")))?;
    for e in list {
        let mut e = e.map_err(|e| bad(format!("is a damaged tar archive: {e}")))?;
        let path = e
            .path()
            .map_err(|e| bad(format!("holds a path that does not read: {e}")))?
            .to_string_lossy()
            .into_owned();
        let size = e.size();
        end = end.max(e.raw_file_position() + size.div_ceil(512) * 512);
        let mut body = Vec::new();
        e.read_to_end(&mut body)
            .map_err(|e| bad(format!("{path} does not read: {e}")))?;
        if entries.insert(path.clone(), body).is_some() {
            return Err(bad(format!("holds {path} twice")));
        }
    }
    let rest = bytes.get(end as usize..).unwrap_or_default();
    if rest.iter().any(|b| *b != 0) {
        return Err(bad(format!(
            "holds {} bytes after its last entry that no manifest covers (files appended to it?)",
            rest.len()
        )));
    }
    let manifest_bytes = entries
        .remove(MANIFEST)
        .ok_or_else(|| bad(format!("has no {MANIFEST}")))?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| bad(format!("{MANIFEST} does not read: {e}")))?;
    let sig = manifest
        .signature
        .clone()
        .ok_or_else(|| bad(format!("{MANIFEST} is not signed")))?;
    if sig.algorithm != ALGORITHM {
        return Err(bad(format!(
            "{MANIFEST} is signed with {}, not {ALGORITHM}",
            sig.algorithm
        )));
    }
    if sig.public_key != hex::encode(trusted.as_bytes()) {
        return Err(bad(format!(
            "{MANIFEST} is signed by key {}, not by the trusted key {}",
            sig.public_key,
            hex::encode(trusted.as_bytes())
        )));
    }
    let value: [u8; 64] = hex::decode(&sig.value)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(format!("{MANIFEST}'s signature is not 64 bytes of hex")))?;
    trusted
        .verify(
            &canonical(&manifest),
            &ed25519_dalek::Signature::from_bytes(&value),
        )
        .map_err(|_| {
            bad(format!(
                "{MANIFEST} was edited after signing (its signature does not match)"
            ))
        })?;
    for (path, want) in &manifest.files {
        let body = entries
            .get(path)
            .ok_or_else(|| bad(format!("{path} is missing (the manifest lists it)")))?;
        let got = sha256_hex(body);
        if &got != want {
            return Err(bad(format!(
                "{path} was edited: its SHA-256 is {got}, the signed manifest says {want}"
            )));
        }
    }
    if let Some(extra) = entries.keys().find(|p| !manifest.files.contains_key(*p)) {
        return Err(bad(format!(
            "{extra} was added: the signed manifest does not list it"
        )));
    }
    let mut unsigned = Vec::new();
    let mut reports = 0;
    for (path, body) in entries.iter().filter(|(p, _)| p.starts_with("reports/")) {
        reports += 1;
        let text = String::from_utf8_lossy(body);
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("{path} is not a JSON report: {e}")))?;
        if v.get("signature").is_none() {
            unsigned.push(path.clone());
            continue;
        }
        crate::evidence::verify_signature(&text, trusted, std::path::Path::new(path))
            .map_err(|e| bad(format!("report {e}")))?;
    }
    let summary: Vec<DrillSummary> = entries
        .get("summary.json")
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let audit_entries = entries
        .get("audit.json")
        .and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(b).ok())
        .map_or(0, |a| a.len());
    Ok(Verdict {
        since: manifest.since.to_string(),
        until: manifest.until.to_string(),
        created_by: manifest.created_by,
        files: manifest.files.len() + 1,
        reports,
        unsigned_reports: unsigned,
        audit_entries,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RunReport;

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn run(
        drill: &str,
        id: &str,
        at: &str,
        status: RunStatus,
        rto: Option<f64>,
        key: &SigningKey,
    ) -> RunRecord {
        let mut r = RunReport::empty(drill, id, t(at));
        r.finished_at = t(at);
        r.verdict = match status {
            RunStatus::Passed => crate::status::Verdict::Passed,
            RunStatus::Failed => crate::status::Verdict::Failed,
            _ => crate::status::Verdict::Error,
        };
        r.rows = Some(42);
        crate::evidence::sign(&mut r, key);
        RunRecord {
            drill: drill.into(),
            run_id: id.into(),
            started_at: t(at),
            finished_at: Some(t(at)),
            status,
            failed_stage: None,
            error: None,
            artifact: None,
            rto_seconds: rto,
            encrypted_bytes: None,
            report: Some(serde_json::to_string(&r).unwrap()),
            accepted: false,
            owner: None,
            stage: None,
        }
    }

    fn input(key: &SigningKey) -> Input {
        Input {
            since: t("2026-11-01T00:00:00Z"),
            until: t("2026-11-11T00:00:00Z"),
            created_by: "cli:auditor@host".into(),
            runs: vec![
                run(
                    "shop",
                    "r1",
                    "2026-11-02T00:00:00Z",
                    RunStatus::Passed,
                    Some(30.0),
                    key,
                ),
                run(
                    "shop",
                    "r2",
                    "2026-11-03T00:00:00Z",
                    RunStatus::Failed,
                    None,
                    key,
                ),
                run(
                    "shop",
                    "r3",
                    "2026-11-08T00:00:00Z",
                    RunStatus::Passed,
                    Some(90.0),
                    key,
                ),
            ],
            artifacts: vec![],
            audit: vec![AuditEntry::new(
                crate::access::Actor::new(crate::access::ActorKind::Token, "ci"),
                crate::access::Action::Trigger,
                crate::access::Outcome::Ok,
            )],
            rto: [("shop".to_string(), std::time::Duration::from_secs(60))].into(),
        }
    }

    /// Rewrites one file of a bundle (its tar header's checksum recomputed), as an
    /// editor with the archive would.
    fn edit(bundle: &[u8], path: &str, f: impl Fn(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
        let mut out = tar::Builder::new(Vec::new());
        let mut a = tar::Archive::new(bundle);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            let body = if p == path { f(body) } else { body };
            let mut h = tar::Header::new_ustar();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            out.append_data(&mut h, &p, body.as_slice()).unwrap();
        }
        out.into_inner().unwrap()
    }

    #[test]
    fn a_bundle_verifies_and_names_what_was_edited() {
        let (pem, public) = crate::signing::generate().unwrap();
        let key = crate::signing::signing_key_from_pem(&pem, "k").unwrap();
        let trusted = crate::signing::verifying_key_from_hex(&public, "k").unwrap();
        let bundle = build(&input(&key), &key).unwrap();
        assert!(is_bundle(&bundle));
        let v = verify(&bundle, &trusted, "b.tar").unwrap();
        assert_eq!(v.reports, 3);
        assert_eq!(v.audit_entries, 1);
        let shop = &v.summary[0];
        assert_eq!((shop.runs, shop.passed, shop.failed), (3, 2, 1));
        assert_eq!(shop.rto_max_s, Some(90.0));
        assert_eq!(shop.rto_missed, 1);
        // From the 2nd's pass to the 8th's: six days, the longest.
        assert_eq!(shop.longest_gap_s, 6 * 86_400);

        // One report edited: the file is named.
        let edited = edit(&bundle, "reports/shop/r2.json", |b| {
            String::from_utf8(b)
                .unwrap()
                .replace("\"rows\":42", "\"rows\":43")
                .into_bytes()
        });
        let e = verify(&edited, &trusted, "b.tar").unwrap_err().to_string();
        assert!(e.contains("reports/shop/r2.json was edited"), "{e}");

        // The summary, the audit trail, the manifest itself.
        let e = verify(
            &edit(&bundle, "audit.json", |_| b"[]\n".to_vec()),
            &trusted,
            "b.tar",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("audit.json was edited"), "{e}");
        let e = verify(
            &edit(&bundle, MANIFEST, |b| {
                String::from_utf8(b)
                    .unwrap()
                    .replace("auditor", "someone")
                    .into_bytes()
            }),
            &trusted,
            "b.tar",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("MANIFEST.json was edited after signing"), "{e}");

        // A file appended after the archive's end.
        let mut appended = bundle.clone();
        let mut extra = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        extra
            .append_data(&mut h, "reports/shop/r9.json", &b"{}"[..])
            .unwrap();
        appended.extend(extra.into_inner().unwrap());
        let e = verify(&appended, &trusted, "b.tar")
            .unwrap_err()
            .to_string();
        assert!(e.contains("after its last entry"), "{e}");

        // Another key.
        let (_, other) = crate::signing::generate().unwrap();
        let other = crate::signing::verifying_key_from_hex(&other, "k").unwrap();
        assert!(verify(&bundle, &other, "b.tar")
            .unwrap_err()
            .to_string()
            .contains("not by the trusted key"));
    }

    #[test]
    fn reports_signed_before_the_actor_field_still_verify() {
        // A report as versions before `started_by` wrote it: no such field at all.
        let (pem, public) = crate::signing::generate().unwrap();
        let key = crate::signing::signing_key_from_pem(&pem, "k").unwrap();
        let trusted = crate::signing::verifying_key_from_hex(&public, "k").unwrap();
        let mut old = RunReport::empty("shop", "old", t("2026-01-01T00:00:00Z"));
        crate::evidence::sign(&mut old, &key);
        let text = serde_json::to_string_pretty(&old).unwrap();
        assert!(!text.contains("started_by"));
        crate::evidence::verify_signature(&text, &trusted, std::path::Path::new("old.json"))
            .unwrap();
        // And one that carries it verifies, and says who.
        let mut new = RunReport::empty("shop", "new", t("2026-12-01T00:00:00Z"));
        new.started_by = Some(crate::access::Actor::new(
            crate::access::ActorKind::Sso,
            "alice@example.test",
        ));
        crate::evidence::sign(&mut new, &key);
        let text = serde_json::to_string_pretty(&new).unwrap();
        let back =
            crate::evidence::verify_signature(&text, &trusted, std::path::Path::new("new.json"))
                .unwrap();
        assert_eq!(
            back.started_by.unwrap().to_string(),
            "sso:alice@example.test"
        );
    }
}
