//! `firedrill evidence`: the key that signs run reports, and checking a signed report and
//! that its artifact is still what it recorded (what an auditor runs).

use std::path::Path;

use firedrill::config::MainConfig;
use firedrill::load_drill;

use super::{drill_path, key_file};

/// Writes a new signing key and prints its public key.
pub(super) fn keygen(output: &Path) -> u8 {
    let (pem, public) = match firedrill::evidence::generate() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
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
    eprintln!(
        "wrote the signing key to {}; set [evidence] signing_key = {{ file = \"{}\" }} and public_key to:",
        output.display(),
        output.display()
    );
    println!("{public}");
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
) -> u8 {
    let trusted = match public_key {
        Some(k) => firedrill::evidence::verifying_key_from_hex(k, "--public-key").map(Some),
        None => config.trusted_key(),
    };
    let trusted = match trusted {
        Ok(Some(k)) => k,
        Ok(None) => {
            eprintln!("error: no key to check the signature with\n  hint: pass --public-key HEX, or --config with [evidence] public_key or signing_key");
            return 2;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let text = match std::fs::read_to_string(report) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", report.display());
            return 2;
        }
    };
    let r = match firedrill::evidence::verify_signature(&text, &trusted, report) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("FAILED: {e}");
            return 1;
        }
    };
    println!("signature: ok (ed25519 key {})", hex_key(&trusted));
    if signature_only {
        return 0;
    }
    let drill = match load_drill(&drill_path(&r.drill, dir)) {
        Ok(d) => d,
        Err(p) => {
            eprintln!("{p}\nerror: cannot load drill {} to reach its storage\n  hint: pass --drills-dir, or --signature-only", r.drill);
            return 2;
        }
    };
    let store = match firedrill::store::build_store(&drill.storage, &drill.base_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match firedrill::evidence::verify_artifact(&r, store.as_ref()).await {
        Ok(checked) => {
            for c in checked {
                println!("{c}: ok");
            }
            println!(
                "report {} of drill {}: intact ({})",
                r.run_id,
                r.drill,
                r.status()
            );
            0
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            if e.kind.is_backup_failure() {
                1
            } else {
                2
            }
        }
    }
}

/// A public key as `[evidence] public_key` and `--public-key` spell it.
fn hex_key(k: &ed25519_dalek::VerifyingKey) -> String {
    k.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
