//! The command line as users see it: exact error output for bad drill files, every
//! shipped config parsing, keygen's refusals, exit codes.

use std::path::Path;
use std::process::Command;

fn firedrill() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn every_shipped_drill_file_validates() {
    let mut files = Vec::new();
    let mut mains = Vec::new();
    for dir in ["drills", "deploy"] {
        for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == "firedrill.toml") {
                mains.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    assert!(!mains.is_empty(), "expected deploy/firedrill.toml");
    for m in mains {
        if let Err(p) = firedrill::config::load_main_config(&m) {
            panic!("{} does not validate:\n{p}", m.display());
        }
    }
    assert!(files.len() >= 2, "expected drill files in drills/");
    for f in files {
        if let Err(p) = firedrill::load_drill(&f) {
            panic!("{} does not validate:\n{p}", f.display());
        }
    }
    let out = firedrill().arg("validate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_reports_every_problem_with_file_field_and_fix() {
    let out = firedrill()
        .args([
            "validate",
            "tests/fixtures/broken-drill.toml",
            "tests/fixtures/unknown-field.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "FAIL  tests/fixtures/broken-drill.toml\nFAIL  tests/fixtures/unknown-field.toml\n"
    );
    let expected = r#"tests/fixtures/broken-drill.toml: name: `Broken Drill` is not a valid drill name
  fix: use 1–63 lowercase letters, digits, - or _, starting with a letter or digit (it names storage keys and container labels)
tests/fixtures/broken-drill.toml: source.password: give either `env` or `file`, not both
  fix: use exactly one of { env = "VAR" } or { file = "/path" }; passwords are never written inline
tests/fixtures/broken-drill.toml: source.min_dump_bytes: `a lot` is not a size; write e.g. "512MiB" or "2GiB"
  fix: write a size such as "512MiB" or "2GiB"
tests/fixtures/broken-drill.toml: storage.prefix: `../escape` must be a relative key prefix without `..`
  fix: write e.g. prefix = "prod/db1"
tests/fixtures/broken-drill.toml: encryption.recipients[0]: `age1notakey` is not an age X25519 recipient: invalid Bech32 encoding
  fix: paste the public key printed by `firedrill keygen` or `age-keygen -y` (it starts with age1)
tests/fixtures/broken-drill.toml: compression.level: 42 is outside 1–19
  fix: 3 is fast and good; 19 is slow and small
tests/fixtures/broken-drill.toml: timeouts.restore: `whenever` is not a duration (expected number at 0); write e.g. "90s", "5m" or "2h"
  fix: write a duration such as "90s", "10m" or "2h"
tests/fixtures/broken-drill.toml: assertion[0].expect: `>= many`: `>=` needs a number, `many` is not one
  fix: write e.g. ">= 1000", "= 0", "!= 0", "between 1 and 5" or "no rows"
tests/fixtures/unknown-field.toml: source.pasword: unknown field `pasword`, expected one of `host`, `port`, `database`, `user`, `password`, `pg_dump`, `min_dump_bytes`
  fix: remove the field or correct its spelling; the message lists the fields allowed here
2 of 2 drill files have problems
"#;
    assert_eq!(String::from_utf8_lossy(&out.stderr), expected);
}

#[test]
fn run_with_a_missing_drill_exits_2_and_names_it() {
    let out = firedrill().args(["run", "no-such-drill"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("drills/no-such-drill.toml: cannot read the file"),
        "{err}"
    );
}

#[test]
fn run_with_an_unset_password_variable_exits_2_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("id.txt");
    let out = firedrill()
        .args(["keygen", "-o"])
        .arg(&id)
        .output()
        .unwrap();
    assert!(out.status.success());
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let drill = dir.path().join("d.toml");
    std::fs::write(
        &drill,
        format!(
            "[source]\ntype = \"postgres\"\ndatabase = \"x\"\nuser = \"u\"\npassword = {{ env = \"FIREDRILL_SURELY_UNSET_PW\" }}\n\
             [storage]\ntype = \"local\"\npath = \"store\"\n\
             [encryption]\nrecipients = [\"{recipient}\"]\nidentity = {{ file = \"id.txt\" }}\n"
        ),
    )
    .unwrap();
    let out = firedrill()
        .arg("run")
        .arg(&drill)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "error");
    let msg = report["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("FIREDRILL_SURELY_UNSET_PW is not set"),
        "{msg}"
    );
    assert!(
        !dir.path().join("store").exists(),
        "nothing is created for a drill that cannot run"
    );
}

#[test]
fn keygen_writes_a_private_identity_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("id.txt");
    let out = firedrill()
        .args(["keygen", "--output"])
        .arg(&id)
        .output()
        .unwrap();
    assert!(out.status.success());
    let recipient = String::from_utf8_lossy(&out.stdout);
    assert!(recipient.trim().starts_with("age1"));
    let text = std::fs::read_to_string(&id).unwrap();
    assert!(text.contains("AGE-SECRET-KEY-1"));
    assert!(text.contains(recipient.trim()));
    assert_eq!(
        std::fs::metadata(&id).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The reference age tooling reads it.
    if let Ok(o) = Command::new("age-keygen").arg("-y").arg(&id).output() {
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), recipient.trim());
    }
    let again = firedrill()
        .args(["keygen", "--output"])
        .arg(&id)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read_to_string(&id).unwrap(), text);
}
