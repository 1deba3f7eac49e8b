//! Durable evidence of a drill: every run's report written as JSON (signed with an ed25519
//! key), JUnit XML and HTML, and the check that a signed report is intact and that the
//! artifact it names still matches.
//!
//! The signature covers the report's canonical JSON (the report without its `signature`,
//! serialized by serde_json from a parsed value), so editing any field of the file breaks
//! it. Keys are PKCS#8 PEM (what `openssl genpkey -algorithm ed25519` writes, and
//! `firedrill evidence keygen`); public keys are given as 64 hex digits.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::report::RunReport;
pub use crate::signing::{
    generate, signing_key_from_pem, verifying_key_from_hex, Signature, ALGORITHM,
};
use crate::store::ArtifactStore;

/// The bytes a signature covers: the report as JSON without `signature`.
fn canonical(value: &serde_json::Value) -> Vec<u8> {
    let mut v = value.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("signature");
    }
    serde_json::to_vec(&v).expect("a JSON value serializes")
}

/// Signs the report in place.
pub fn sign(report: &mut RunReport, key: &SigningKey) {
    report.signature = None;
    let value = serde_json::to_value(&*report).expect("a report serializes");
    let sig = key.sign(&canonical(&value));
    report.signature = Some(Signature {
        algorithm: ALGORITHM.into(),
        public_key: hex::encode(key.verifying_key().as_bytes()),
        value: hex::encode(sig.to_bytes()),
    });
}

/// Checks a report file's signature against the trusted key and returns the report.
pub fn verify_signature(text: &str, trusted: &VerifyingKey, file: &Path) -> Result<RunReport> {
    let bad = |m: String| {
        Error::verification(format!("{}: {m}", file.display()))
            .with_hint("this report is not the one firedrill wrote; do not rely on it")
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("is not a JSON report: {e}")))?;
    let sig: Signature = value
        .get("signature")
        .cloned()
        .ok_or_else(|| {
            bad("has no signature (was [evidence].signing_key set when it was written?)".into())
        })
        .and_then(|s| {
            serde_json::from_value(s).map_err(|e| bad(format!("its signature is malformed: {e}")))
        })?;
    if sig.algorithm != ALGORITHM {
        return Err(bad(format!(
            "signed with {}, not {ALGORITHM}",
            sig.algorithm
        )));
    }
    if sig.public_key != hex::encode(trusted.as_bytes()) {
        return Err(bad(format!(
            "signed by key {}, not by the trusted key {}",
            sig.public_key,
            hex::encode(trusted.as_bytes())
        )));
    }
    let bytes: [u8; 64] = hex::decode(&sig.value)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("its signature is not 64 bytes of hex".into()))?;
    trusted
        .verify(
            &canonical(&value),
            &ed25519_dalek::Signature::from_bytes(&bytes),
        )
        .map_err(|_| {
            bad(
                "the signature does not match its content: the report was edited after signing"
                    .into(),
            )
        })?;
    serde_json::from_value(value).map_err(|e| bad(format!("is not a firedrill report: {e}")))
}

/// Re-reads the artifact and the manifest a report names and compares their SHA-256 with
/// the report's. Returns what was checked.
pub async fn verify_artifact(report: &RunReport, store: &dyn ArtifactStore) -> Result<Vec<String>> {
    let ev = report.evidence.as_ref().ok_or_else(|| {
        Error::verification("the report holds no evidence section (it did not drill an artifact)")
    })?;
    let mut checked = Vec::new();
    if let (Some(key), Some(want)) = (&ev.artifact_key, &ev.artifact_sha256) {
        let mut stream = store.get_stream(key).await?;
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        let got = hex::encode(h.finalize());
        if &got != want {
            return Err(Error::backup(format!(
                "artifact {key} no longer matches the report: SHA-256 {got}, the report says {want}"
            ))
            .with_hint("the artifact was replaced or altered after the drill; the evidence does not cover what is stored now"));
        }
        checked.push(format!("artifact {key}: {n} bytes, SHA-256 {got}"));
    }
    if let (Some(key), Some(want)) = (&ev.manifest_key, &ev.manifest_sha256) {
        let bytes = store.get(key).await?;
        let got = hex::encode(Sha256::digest(&bytes));
        if &got != want {
            return Err(Error::backup(format!(
                "manifest {key} no longer matches the report: SHA-256 {got}, the report says {want}"
            ))
            .with_hint("the manifest was edited after the drill"));
        }
        checked.push(format!("manifest {key}: SHA-256 {got}"));
    }
    if checked.is_empty() {
        return Err(Error::verification(
            "the report names no artifact hash to check",
        ));
    }
    Ok(checked)
}

/// Where a run's reports go, and the key that signs them.
#[derive(Default)]
pub struct ReportWriter {
    pub dir: Option<PathBuf>,
    pub signer: Option<SigningKey>,
}

impl std::fmt::Debug for ReportWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportWriter")
            .field("dir", &self.dir)
            .field("signs", &self.signer.is_some())
            .finish()
    }
}

impl ReportWriter {
    /// The writer runs use: the reports directory ([`MainConfig::reports_dir`]) and the
    /// signing key, read now.
    pub fn from_config(
        config: &crate::config::MainConfig,
        catalog: Option<&Path>,
        dir: Option<&Path>,
    ) -> Result<Self> {
        Ok(ReportWriter {
            dir: config.reports_dir(catalog, dir),
            signer: config.signing_key()?,
        })
    }

    /// Signs the report (when a key is set) and writes `<dir>/<drill>/<run>.{json,xml,html}`
    /// atomically. Returns the files written.
    pub fn finish(&self, report: &mut RunReport) -> Result<Vec<PathBuf>> {
        if let Some(k) = &self.signer {
            sign(report, k);
        }
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let dir = dir.join(&report.drill);
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::infra(format!(
                "cannot create the reports directory {}: {e}",
                dir.display()
            ))
            .retryable(false)
        })?;
        let mut json = serde_json::to_vec_pretty(&*report).expect("a report serializes");
        json.push(b'\n');
        let files = [
            ("json", json),
            ("xml", crate::render::junit_xml(report).into_bytes()),
            ("html", crate::render::html_page(report).into_bytes()),
        ];
        let mut written = Vec::new();
        for (ext, body) in files {
            let path = dir.join(format!("{}.{ext}", report.run_id));
            write_atomic(&path, &body)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Writes a file through a temporary sibling, fsync and rename.
pub fn write_atomic(path: &Path, body: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::infra(format!("cannot write {}: {e}", path.display())).retryable(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_report_verifies_and_an_edited_one_does_not() {
        let (pem, public) = generate().unwrap();
        let key = signing_key_from_pem(&pem, "key").unwrap();
        let trusted = verifying_key_from_hex(&public, "public key").unwrap();
        let mut r = RunReport::empty("shop", "r1", jiff::Timestamp::UNIX_EPOCH);
        r.rows = Some(15500);
        sign(&mut r, &key);
        let text = serde_json::to_string_pretty(&r).unwrap();
        let file = Path::new("r1.json");
        assert_eq!(
            verify_signature(&text, &trusted, file).unwrap().rows,
            Some(15500)
        );

        let edited = text.replace("15500", "15501");
        let e = verify_signature(&edited, &trusted, file).unwrap_err();
        assert!(e.message.contains("edited after signing"), "{e}");

        let (_, other) = generate().unwrap();
        let other = verifying_key_from_hex(&other, "k").unwrap();
        let e = verify_signature(&text, &other, file).unwrap_err();
        assert!(e.message.contains("not by the trusted key"), "{e}");

        let unsigned =
            serde_json::to_string(&RunReport::empty("a", "b", jiff::Timestamp::UNIX_EPOCH))
                .unwrap();
        assert!(verify_signature(&unsigned, &trusted, file)
            .unwrap_err()
            .message
            .contains("no signature"));
        assert!(verifying_key_from_hex("abc", "k").is_err());
        assert!(signing_key_from_pem("nope", "k").is_err());
    }
}
