//! The command line as users see it: golden help and error output (tests/cmd/), every
//! shipped config parsing and matching the committed schema, keygen's refusals, exit codes.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

fn firedrill() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn every_shipped_drill_file_validates() {
    let mut files = Vec::new();
    let mut mains = Vec::new();
    for dir in ["drills", "drills/quickstart", "deploy"] {
        for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)).unwrap() {
            let p = e.unwrap().path();
            // Main configs: the reference one, the quick start's and Compose's.
            if p.file_name().is_some_and(|n| {
                n == "firedrill.toml" || n == "quickstart.toml" || n == "compose.toml"
            }) {
                mains.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    assert_eq!(
        mains.len(),
        3,
        "expected firedrill.toml, quickstart.toml and compose.toml in deploy/"
    );
    for m in mains {
        match firedrill::config::load_main_config(&m) {
            Err(p) => panic!("{} does not validate:\n{p}", m.display()),
            // The quick start's drills_dir is the shipped one, relative to the config.
            Ok(c) if m.ends_with("quickstart.toml") => {
                let dir = c.drills_dir.expect("quickstart.toml names its drills_dir");
                assert!(dir.join("shop-every-5-minutes.toml").is_file(), "{dir:?}");
            }
            Ok(_) => {}
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

/// Golden output (exact stdout, stderr and exit code) of `--help` for every command,
/// `validate`'s problems, `list`, `schema --main`, `man` and the completion scripts: the
/// cases in tests/cmd/. After an intended change: `TRYCMD=overwrite cargo test --test cli`.
#[test]
fn golden_cli_output() {
    trycmd::TestCases::new()
        .register_bin("firedrill", Path::new(env!("CARGO_BIN_EXE_firedrill")))
        // Help is wrapped to the terminal; with no terminal, to COLUMNS.
        .env("COLUMNS", "100")
        .case("tests/cmd/*.toml")
        .case("tests/cmd/*.trycmd");
}

/// Editors read drills/drill.schema.json; it must be what `firedrill schema` prints.
#[test]
fn committed_drill_schema_is_what_firedrill_schema_prints() {
    let out = firedrill().arg("schema").output().unwrap();
    assert!(out.status.success());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("drills/drill.schema.json");
    if std::env::var("TRYCMD").is_ok_and(|v| v == "overwrite") {
        std::fs::write(&path, &out.stdout).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == out.stdout,
        "drills/drill.schema.json differs from `firedrill schema`; regenerate it with\n  \
         cargo run -- schema > drills/drill.schema.json\n(or TRYCMD=overwrite cargo test --test cli)"
    );
}

/// The schema accepts every shipped drill file and refuses what `validate` refuses as
/// unknown, so editors neither flag good files nor miss typos. Checked with Python's
/// jsonschema (draft 7), an implementation other than the one that wrote the schema.
#[test]
fn shipped_drill_files_match_the_schema() {
    let probe = Command::new("python3")
        .args(["-c", "import jsonschema, tomllib"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: needs python3 (3.11 or later) with jsonschema");
        return;
    }
    const CHECK: &str = r#"
import json, sys, tomllib, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for f in sys.argv[2:]:
    for e in validator.iter_errors(tomllib.load(open(f, "rb"))):
        print(f"{f}: /{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}")
"#;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("drills"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files.push(root.join("tests/cmd/list.in/drills/nightly.toml"));
    files.push(root.join("tests/cmd/list.in/drills/shop.toml"));
    let check = |files: &[std::path::PathBuf]| {
        let out = Command::new("python3")
            .args(["-c", CHECK])
            .arg(root.join("drills/drill.schema.json"))
            .args(files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(check(&files), "", "shipped drill files the schema refuses");
    let typo = check(&[root.join("tests/fixtures/unknown-field.toml")]);
    assert!(
        typo.contains("unknown-field.toml: /source:"),
        "the schema should refuse source.pasword: {typo}"
    );
}

#[test]
fn main_config_expands_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("firedrill.toml");
    std::fs::write(
        &file,
        "drills_dir = \"${FIREDRILL_TEST_SURELY_UNSET_DIR:-/etc/firedrill/drills}\"\n\
         [daemon]\nlisten = \"${FIREDRILL_TEST_SURELY_UNSET_LISTEN}\"\n\
         hook_interval = \"${FIREDRILL_TEST_SURELY_UNSET_HOOK:?how often a webhook may start a drill}\"\n",
    )
    .unwrap();
    let p = firedrill::config::load_main_config(&file).unwrap_err();
    let text = p.to_string();
    assert_eq!(p.0.len(), 2, "{text}");
    assert!(
        text.contains("daemon.listen (line 3): environment variable `FIREDRILL_TEST_SURELY_UNSET_LISTEN` is not set"),
        "{text}"
    );
    assert!(
        text.contains("daemon.hook_interval (line 4): environment variable `FIREDRILL_TEST_SURELY_UNSET_HOOK` is not set: how often a webhook may start a drill"),
        "{text}"
    );
    std::fs::write(
        &file,
        "drills_dir = \"${FIREDRILL_TEST_SURELY_UNSET_DIR:-/etc/firedrill/drills}\"\n",
    )
    .unwrap();
    let c = firedrill::config::load_main_config(&file).unwrap();
    assert_eq!(
        c.drills_dir.as_deref(),
        Some(Path::new("/etc/firedrill/drills"))
    );
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

/// `run --artifact` with a run id that names nothing the drill stored (a typo, or a path
/// that tries to leave the drill): a usage error (exit 2) that names the known runs,
/// before anything is recorded, and nobody is paged. It is not a broken backup.
#[test]
fn a_mistyped_artifact_exits_2_naming_the_known_runs_and_pages_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let id = d.join("id.txt");
    let out = firedrill()
        .args(["keygen", "-o"])
        .arg(&id)
        .output()
        .unwrap();
    assert!(out.status.success());
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let known = ["20261101T000000Z-aaaaaa", "20261102T000000Z-bbbbbb"];
    for run in known {
        let r = d.join("store/shop").join(run);
        std::fs::create_dir_all(&r).unwrap();
        std::fs::write(r.join("manifest.json"), "{}").unwrap();
        std::fs::write(r.join("artifact.dump.zst.age"), "x").unwrap();
    }
    std::fs::write(
        d.join("shop.toml"),
        format!(
            "[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 1\ndatabase = \"shop\"\nuser = \"u\"\n\
             [storage]\ntype = \"local\"\npath = \"store\"\n\
             [encryption]\nrecipients = [\"{recipient}\"]\nidentity = {{ file = \"id.txt\" }}\n"
        ),
    )
    .unwrap();
    // A webhook receiver that counts who calls.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    hook.set_nonblocking(true).unwrap();
    std::fs::write(
        d.join("firedrill.toml"),
        format!(
            "[notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{}/hook\"\n",
            hook.local_addr().unwrap()
        ),
    )
    .unwrap();
    let catalog = d.join("catalog.db");
    for (artifact, says) in [
        (
            "20261103T000000Z-cccccc",
            "no artifact 20261103T000000Z-cccccc of drill shop in storage",
        ),
        ("../other/20261101T000000Z-aaaaaa", "is not a run id"),
    ] {
        let out = firedrill()
            .arg("--config")
            .arg(d.join("firedrill.toml"))
            .arg("--catalog")
            .arg(&catalog)
            .arg("run")
            .arg(d.join("shop.toml"))
            .args(["--artifact", artifact, "--quiet"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{artifact}: {err}");
        assert!(err.contains(says), "{artifact}: {err}");
        if says.starts_with("no artifact") {
            assert!(
                err.contains(&format!("known runs: {}, {}", known[0], known[1])),
                "{err}"
            );
        }
    }
    assert!(
        hook.accept().is_err(),
        "nobody is paged for a mistyped run id"
    );
    let out = firedrill()
        .arg("--catalog")
        .arg(&catalog)
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        runs.as_array().is_none_or(|a| a.is_empty()),
        "no run is recorded: {runs}"
    );
}

/// An identity that opens none of the recipients' locks is refused by `validate` (when
/// the identity can be read there) and by `run` before any dump: the drill could never
/// restore what it backs up.
#[test]
fn an_identity_that_matches_no_recipient_is_refused_before_any_dump() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keygen = |name: &str| {
        let out = firedrill()
            .args(["keygen", "-o"])
            .arg(d.join(name))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let _mine = keygen("mine.txt");
    let theirs = keygen("theirs.txt");
    let drill = d.join("wrongkey.toml");
    std::fs::write(
        &drill,
        format!(
            "[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 1\ndatabase = \"x\"\nuser = \"u\"\n\
             [storage]\ntype = \"local\"\npath = \"store\"\n\
             [encryption]\nrecipients = [\"{theirs}\"]\nidentity = {{ file = \"mine.txt\" }}\n"
        ),
    )
    .unwrap();
    let out = firedrill().arg("validate").arg(&drill).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("encryption.identity") && err.contains("matches none of the recipients"),
        "{err}"
    );
    let out = firedrill()
        .arg("--catalog")
        .arg(d.join("c.db"))
        .arg("run")
        .arg(&drill)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "config");
    assert!(report["error"]["message"]
        .as_str()
        .unwrap()
        .contains("matches none of the recipients"));
    assert_eq!(
        report["stages"][0]["outcome"], "skipped",
        "no dump was taken"
    );
}

/// A damaged catalog: `run` refuses (exit 2) naming `catalog rebuild`, which sets the file
/// aside (named in its output), starts a new one and rebuilds it; then drills run again.
#[test]
fn a_damaged_catalog_is_refused_then_set_aside_by_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let id = d.join("id.txt");
    let out = firedrill()
        .args(["keygen", "-o"])
        .arg(&id)
        .output()
        .unwrap();
    assert!(out.status.success());
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::fs::create_dir_all(d.join("drills")).unwrap();
    std::fs::write(
        d.join("drills/shop.toml"),
        format!(
            "[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 1\ndatabase = \"shop\"\nuser = \"u\"\n\
             [storage]\ntype = \"local\"\npath = \"../store\"\n\
             [encryption]\nrecipients = [\"{recipient}\"]\nidentity = {{ file = \"../id.txt\" }}\n\
             [retry]\nattempts = 1\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("store")).unwrap();
    let catalog = d.join("catalog.db");
    // Garbage where the catalog was: its header is gone.
    std::fs::write(&catalog, [0x42u8; 8192]).unwrap();
    let cmd = |args: &[&str]| {
        firedrill()
            .arg("--catalog")
            .arg(&catalog)
            .args(args)
            .arg("--drills-dir")
            .arg(d.join("drills"))
            .output()
            .unwrap()
    };
    let out = firedrill()
        .arg("--catalog")
        .arg(&catalog)
        .args(["run", "--quiet"])
        .arg(d.join("drills/shop.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("catalog") && stderr.contains("firedrill catalog rebuild"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("ERROR: the drill"),
        "it must not run: {stderr}"
    );

    let out = cmd(&["catalog", "rebuild"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("was damaged") && stdout.contains("set aside as"),
        "{stdout}"
    );
    let aside: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("catalog.db.damaged-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{stdout}");
    assert_eq!(
        std::fs::read(aside[0].path()).unwrap(),
        vec![0x42u8; 8192],
        "kept as it was"
    );
    assert!(
        stdout.contains(&aside[0].file_name().to_string_lossy().to_string()),
        "{stdout}"
    );
    // The rebuild again: the catalog is sound now, nothing more is set aside.
    let out = cmd(&["catalog", "rebuild"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("damaged"));
    // And a drill runs (and fails on its unreachable source) with a history again.
    let out = firedrill()
        .arg("--catalog")
        .arg(&catalog)
        .args(["run", "--quiet"])
        .arg(d.join("drills/shop.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = firedrill()
        .arg("--catalog")
        .arg(&catalog)
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs:#}");
}

/// What killed processes and failed cleanups leave in a local store (a part file in its
/// temporary directory, an artifact without its manifest) is listed by `prune --dry-run`,
/// removed by `prune` and by the drill's next run once it is an hour old; younger
/// leftovers (an upload that may still be running) and complete artifacts are kept, and a
/// verify-only drill's storage, which holds other people's dumps, is never swept.
#[test]
fn orphans_of_unfinished_uploads_are_listed_and_swept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = firedrill()
        .args(["keygen", "-o"])
        .arg(d.join("id.txt"))
        .output()
        .unwrap();
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::fs::create_dir_all(d.join("drills")).unwrap();
    std::fs::write(
        d.join("drills/shop.toml"),
        format!(
            "[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 1\ndatabase = \"shop\"\nuser = \"u\"\n\
             [storage]\ntype = \"local\"\npath = \"../store\"\n\
             [encryption]\nrecipients = [\"{recipient}\"]\nidentity = {{ file = \"../id.txt\" }}\n\
             [retry]\nattempts = 1\n"
        ),
    )
    .unwrap();
    let store = d.join("store");
    let put = |rel: &str, bytes: usize, hours_old: u32| {
        let p = store.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, vec![7u8; bytes]).unwrap();
        if hours_old > 0 {
            let st = std::process::Command::new("touch")
                .arg("-d")
                .arg(format!("{hours_old} hours ago"))
                .arg(&p)
                .status()
                .unwrap();
            assert!(st.success());
        }
    };
    let leftovers = |stage: &str| {
        put(
            &format!(".firedrill-tmp/artifact.dump.zst.age.{stage}-0b1c"),
            3000,
            2,
        );
        put(
            &format!("shop/20261101T00000{stage}Z-aaaaaa/artifact.dump.zst.age"),
            5000,
            2,
        );
        put(
            &format!("shop/20261101T00000{stage}Z-aaaaaa/verified.json"),
            0,
            2,
        );
    };
    leftovers("1");
    // Young: maybe an upload still running.
    put("shop/20261130T120000Z-ffffff/artifact.dump.zst.age", 100, 0);
    put(".firedrill-tmp/manifest.json.young", 10, 0);
    // Complete: an artifact with its manifest.
    put(
        "shop/20261001T000000Z-cccccc/artifact.dump.zst.age",
        100,
        48,
    );
    put("shop/20261001T000000Z-cccccc/manifest.json", 10, 48);
    let catalog = d.join("catalog.db");
    let prune = |dry: bool| {
        let mut c = firedrill();
        c.arg("--catalog")
            .arg(&catalog)
            .arg("prune")
            .arg("--drills-dir")
            .arg(d.join("drills"));
        if dry {
            c.arg("--dry-run");
        }
        c.output().unwrap()
    };
    let exists = |rel: &str| store.join(rel).exists();
    let out = prune(true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for o in [
        ".firedrill-tmp/artifact.dump.zst.age.1-0b1c",
        "shop/20261101T000001Z-aaaaaa/artifact.dump.zst.age",
        "shop/20261101T000001Z-aaaaaa/verified.json",
    ] {
        assert!(
            stdout.contains(&format!("would remove orphan {o}")),
            "{o}: {stdout}"
        );
        assert!(exists(o), "a dry run removed {o}");
    }
    assert!(
        !stdout.contains("20261130T120000Z") && !stdout.contains("young"),
        "{stdout}"
    );
    let out = prune(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("removed orphan"), "{stdout}");
    assert!(!exists(".firedrill-tmp/artifact.dump.zst.age.1-0b1c"));
    assert!(!exists(
        "shop/20261101T000001Z-aaaaaa/artifact.dump.zst.age"
    ));
    assert!(exists("shop/20261130T120000Z-ffffff/artifact.dump.zst.age"));
    assert!(exists(".firedrill-tmp/manifest.json.young"));
    assert!(exists("shop/20261001T000000Z-cccccc/artifact.dump.zst.age"));

    // The next run sweeps too, before its own backup (which fails: no source).
    leftovers("2");
    let out = firedrill()
        .arg("--catalog")
        .arg(&catalog)
        .args(["run", "--quiet"])
        .arg(d.join("drills/shop.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!exists(".firedrill-tmp/artifact.dump.zst.age.2-0b1c"));
    assert!(!exists(
        "shop/20261101T000002Z-aaaaaa/artifact.dump.zst.age"
    ));
    assert!(exists("shop/20261001T000000Z-cccccc/manifest.json"));

    // A verify-only drill over the same files: nothing is an orphan there.
    leftovers("3");
    std::fs::write(
        d.join("drills/shop.toml"),
        format!(
            "[source]\ntype = \"stored\"\nengine = \"postgres\"\nversion = \"15\"\ndatabase = \"shop\"\nprefix = \"shop/\"\n\
             [storage]\ntype = \"local\"\npath = \"../store\"\n\
             [encryption]\nrecipients = [\"{recipient}\"]\nidentity = {{ file = \"../id.txt\" }}\n"
        ),
    )
    .unwrap();
    let out = prune(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("orphan shop/"), "{stdout}");
    assert!(exists("shop/20261101T000003Z-aaaaaa/artifact.dump.zst.age"));
}

/// A reader that goes away (`firedrill run … | head -0`, a pager quit early) neither panics
/// firedrill (it did: exit 101) nor stops the drill half-way (it did: the sandbox stayed up
/// and the run stayed `running`). Real pipes whose read ends are closed before the drill
/// starts, stdout and stderr both: the drill still passes, tears its sandbox down and is
/// recorded as passed, with its exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_neither_panics_nor_stops_the_drill() {
    support::create_db("fd_cli_pipe", support::SHOP).await;
    let fx = support::Fixture::new();
    let drill = fx.drill("pipe", "fd_cli_pipe", "");
    let catalog = fx.dir.path().join("catalog.db");
    let mut child = firedrill()
        .arg("--catalog")
        .arg(&catalog)
        .arg("run")
        .arg(&drill)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closed at once: every line firedrill writes, on either stream, finds no reader.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let out = firedrill()
        .arg("--catalog")
        .arg(&catalog)
        .args(["history", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "passed", "{runs:?}");
    let run_id = runs[0]["run_id"].as_str().unwrap();
    assert!(support::leftovers(run_id).await.is_empty());
}

/// What the shell gets when it asks firedrill for candidates (the completion script's
/// protocol for bash): the words typed so far, and the index of the one being completed.
fn complete(words: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Vec<String> {
    let mut c = firedrill();
    c.env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_IFS", "\n")
        .env_remove("FIREDRILL_CONFIG")
        .arg("--")
        .args(words);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Completions are dynamic: the drills of the drills directory, the runs of the catalog
/// (of FIREDRILL_CONFIG), and the registration script calls firedrill back for them.
#[tokio::test]
async fn completions_offer_the_drills_and_the_catalogs_runs() {
    use firedrill::catalog::{Catalog, SqliteCatalog};
    // Drill names, from ./drills (the checkout's) when no config names another.
    let got = complete(&["firedrill", "run", "demo"], &[]);
    assert_eq!(got, ["demo-postgres"], "{got:?}");
    let got = complete(&["firedrill", "history", ""], &[]);
    assert!(got.contains(&"example-mariadb".to_string()), "{got:?}");

    // Run ids, from the catalog FIREDRILL_CONFIG names.
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.db");
    let c = SqliteCatalog::open(&catalog).unwrap();
    for id in ["20261130T101500Z-aaaaaa", "20261130T111500Z-bbbbbb"] {
        let r = firedrill::report::RunReport::empty("shop", id, jiff::Timestamp::now());
        c.run_finished(&r, None).await.unwrap();
    }
    let config = dir.path().join("firedrill.toml");
    std::fs::write(
        &config,
        "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n",
    )
    .unwrap();
    let env = [("FIREDRILL_CONFIG", config.as_os_str())];
    let got = complete(&["firedrill", "accept", "2026"], &env);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.contains(&"20261130T111500Z-bbbbbb".to_string()),
        "{got:?}"
    );
    let got = complete(&["firedrill", "reap", "--run", "20261130T10"], &env);
    assert_eq!(got, ["20261130T101500Z-aaaaaa"], "{got:?}");
    // Its drills directory has no drills: options only, and no error.
    let got = complete(&["firedrill", "run", ""], &env);
    assert!(got.iter().all(|w| w.starts_with('-')), "{got:?}");
    // A catalog that does not exist is not created by completing.
    std::fs::remove_file(&catalog).unwrap();
    let got = complete(&["firedrill", "accept", ""], &env);
    assert!(got.iter().all(|w| w.starts_with('-')), "{got:?}");
    assert!(!catalog.exists());

    // The script registers firedrill as its own completer.
    let out = firedrill().args(["completions", "bash"]).output().unwrap();
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(script.contains("COMPLETE=\"bash\""), "{script}");
    assert!(script.contains("complete -o nospace"), "{script}");
}

/// `artifacts` lists newest first, like `history`, across drills, in the table and in
/// JSON; `history` and `artifacts` of a drill nobody knows are an error naming the known
/// ones (exit 2), not an empty table.
#[tokio::test]
async fn artifacts_are_newest_first_and_unknown_drills_are_errors() {
    use firedrill::catalog::{ArtifactRecord, Catalog, SqliteCatalog};
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.db");
    let c = SqliteCatalog::open(&catalog).unwrap();
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    // Inserted out of order, two drills interleaved: "a" sorts first by name.
    for (drill, id, when) in [
        ("b", "20261101T000000Z-bbbbb1", "2026-11-01T00:00:00Z"),
        ("a", "20261103T000000Z-aaaaa3", "2026-11-03T00:00:00Z"),
        ("b", "20261104T000000Z-bbbbb4", "2026-11-04T00:00:00Z"),
        ("a", "20261102T000000Z-aaaaa2", "2026-11-02T00:00:00Z"),
    ] {
        c.put_artifact(&ArtifactRecord {
            drill: drill.into(),
            run_id: id.into(),
            created_at: at(when),
            engine: firedrill::engine::Engine::Postgres,
            plain_bytes: 1000,
            encrypted_bytes: 500,
            sha256: "00".repeat(32),
            location: format!("{drill}/{id}/artifact.dump.zst.age"),
            manifest_key: format!("{drill}/{id}/manifest.json"),
            verified: firedrill::catalog::Verified::Never,
            verified_at: None,
        })
        .await
        .unwrap();
    }
    let newest_first = [
        "20261104T000000Z-bbbbb4",
        "20261103T000000Z-aaaaa3",
        "20261102T000000Z-aaaaa2",
        "20261101T000000Z-bbbbb1",
    ];
    let out = firedrill()
        .arg("--catalog")
        .arg(&catalog)
        .args(["artifacts", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, newest_first);
    let out = firedrill()
        .arg("--catalog")
        .arg(&catalog)
        .arg("artifacts")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let at_line = |id: &str| table.find(id).unwrap_or_else(|| panic!("{id}:\n{table}"));
    for pair in newest_first.windows(2) {
        assert!(at_line(pair[0]) < at_line(pair[1]), "{table}");
    }
    for cmd in ["artifacts", "history"] {
        let out = firedrill()
            .arg("--catalog")
            .arg(&catalog)
            .args([cmd, "nosuch"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("nosuch") && err.contains("demo-postgres"),
            "{cmd}: {err}"
        );
    }
}

/// `--json` on the commands that lacked it prints one JSON document on stdout, whatever
/// the outcome: `notify test` (each channel, delivered or why not), `reap` (one run, or
/// every expired one), `catalog rebuild` (what was read, per drill).
#[test]
fn json_is_printed_by_notify_test_reap_and_catalog_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drills")).unwrap();
    let config = dir.path().join("firedrill.toml");
    std::fs::write(
        &config,
        "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\n",
    )
    .unwrap();
    let json = |args: &[&str], code: i32| -> serde_json::Value {
        let out = firedrill()
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let tested = json(&["notify", "test", "--json"], 2);
    assert_eq!(tested[0]["channel"], "hook", "{tested:#}");
    assert_eq!(tested[0]["accepted"], false, "{tested:#}");
    assert!(
        tested[0]["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{tested:#}"
    );
    let reaped = json(&["reap", "--run", "20261130T000000Z-zzzzzz", "--json"], 0);
    assert_eq!(reaped["run"], "20261130T000000Z-zzzzzz");
    assert_eq!(reaped["removed"], serde_json::json!([]));
    let reaped = json(&["reap", "--json"], 0);
    assert!(reaped["removed_runs"].is_array(), "{reaped:#}");
    let rebuilt = json(&["catalog", "rebuild", "--json"], 0);
    assert_eq!(rebuilt["artifacts"], 0, "{rebuilt:#}");
    assert!(
        rebuilt["drills"].is_array() && rebuilt["failed"].is_array(),
        "{rebuilt:#}"
    );
}

/// On a terminal (a pseudo-terminal made by util-linux `script`): with `TERM=dumb`, which
/// cannot move the cursor, every stage still shows as a line of its own and nothing is
/// drawn or coloured; on a terminal that can, the verdict is in colour; `NO_COLOR` turns
/// colour off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dumb_terminal_shows_every_stage_and_a_real_one_colour() {
    support::create_db("fd_cli_tty", support::SHOP).await;
    let fx = support::Fixture::new();
    let drill = fx.drill("tty", "fd_cli_tty", "");
    let catalog = fx.dir.path().join("catalog.db");
    let on_tty = |term: &str, no_color: bool| -> String {
        let mut c = Command::new("script");
        c.args(["-qec"])
            .arg(format!(
                "{} --catalog {} run {}",
                env!("CARGO_BIN_EXE_firedrill"),
                catalog.display(),
                drill.display()
            ))
            .arg("/dev/null")
            .env("TERM", term)
            .env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let out = c.output().expect("util-linux script");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{term}: {text}");
        text
    };
    let dumb = on_tty("dumb", false);
    for stage in [
        "dump",
        "encrypt",
        "upload",
        "provision",
        "restore",
        "verify",
        "teardown",
    ] {
        assert!(
            dumb.lines()
                .any(|l| l.trim_start().starts_with(stage) && l.contains("passed")),
            "TERM=dumb hides the {stage} line:\n{dumb}"
        );
    }
    assert!(
        !dumb.contains('\u{1b}'),
        "TERM=dumb got escape codes:\n{dumb:?}"
    );
    let real = on_tty("xterm-256color", false);
    assert!(
        real.contains("\u{1b}[32m") || real.contains("\u{1b}[1;32m"),
        "no colour on a terminal:\n{real:?}"
    );
    assert!(real.contains("PASSED"), "{real}");
    let plain = on_tty("xterm-256color", true);
    assert!(
        !plain.contains("\u{1b}[3") && !plain.contains("\u{1b}[1;3"),
        "NO_COLOR still coloured:\n{plain:?}"
    );
}
