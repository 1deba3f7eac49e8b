//! The HTTP API against its OpenAPI document. The document is generated from the
//! handlers' own annotations (`src/daemon/api.rs`); the copy shipped for users in
//! `deploy/openapi.json` must be exactly it, and the daemon serves the same at
//! `/api/v1/openapi.json`. schemathesis (PyPI; `tests/run` installs it) then exercises
//! every operation against a real daemon with a harmless drill, a bounded number of
//! requests per operation: no 5xx, every status, content type and body as documented,
//! refusals without the token.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::daemon::DaemonProc;

const TOKEN: &str = "openapi-token-5a7d31c09e";

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/openapi.json")
}

/// After an intended change to the API: `FIREDRILL_BLESS=1 cargo test --test openapi`.
#[test]
fn the_shipped_document_is_the_generated_one() {
    let generated = firedrill::daemon::openapi_json_text();
    if std::env::var("FIREDRILL_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(shipped(), &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(shipped()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "deploy/openapi.json is not the document the handlers make; regenerate it with\n  FIREDRILL_BLESS=1 cargo test --test openapi"
    );
    // The document names every route the API serves.
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for p in [
        "/api/v1/drills",
        "/api/v1/drills/{name}/runs",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/events",
        "/api/v1/runs/{id}/cancel",
        "/api/v1/reload",
        "/api/v1/hooks/alertmanager",
        "/api/v1/openapi.json",
        "/metrics",
        "/healthz",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
}

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("FIREDRILL_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/firedrill-tools/schemathesis/bin/schemathesis"));
    assert!(
        path.exists(),
        "schemathesis is not installed at {} (tests/run installs it: fd_ensure_schemathesis in deploy/host-setup.sh)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_the_document_and_schemathesis_finds_nothing() {
    let st = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("drills")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["keygen", "-o"])
        .arg(d.join("id.txt"))
        .output()
        .unwrap();
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // A harmless drill: its source is nowhere, so a run fails at once and pages nobody
    // (no channels); it has no schedule.
    std::fs::write(
        d.join("drills/harmless.toml"),
        format!(
            "[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 1\ndatabase = \"x\"\nuser = \"u\"\n\
             [storage]\ntype = \"local\"\npath = \"../store\"\n\
             [encryption]\nrecipients = [\"{recipient}\"]\nidentity = {{ file = \"../id.txt\" }}\n\
             [retry]\nattempts = 1\n"
        ),
    )
    .unwrap();
    // schemathesis checks that requests without the token are refused: as many as it
    // likes, without the address being throttled for the rest.
    std::fs::write(
        d.join("firedrill.toml"),
        "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\n\
         token = { env = \"FIREDRILL_TEST_OPENAPI_TOKEN\" }\nauth_failures = 1000000\n",
    )
    .unwrap();
    let daemon = DaemonProc::start(
        &d.join("firedrill.toml"),
        &[("FIREDRILL_TEST_OPENAPI_TOKEN", TOKEN)],
    );
    let served = reqwest::get(format!("{}/api/v1/openapi.json", daemon.base))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "application/json");
    let served = served.text().await.unwrap();
    assert_eq!(
        served,
        std::fs::read_to_string(shipped()).unwrap(),
        "the daemon serves another document than deploy/openapi.json"
    );

    let base = daemon.base.clone();
    let report = d.join("schemathesis.xml");
    let junit_path = report.clone();
    let cwd = d.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .arg("run")
            .arg(format!("{base}/api/v1/openapi.json"))
            .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
            .args(["--checks", "all"])
            // Bounded: at most this many generated cases per operation, one worker.
            .args(["--max-examples", "25", "--workers", "1", "--seed", "4711"])
            .args(["--request-timeout", "10", "--no-color"])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--generation-database", "none"])
            .arg("--report")
            .arg("junit")
            .arg("--report-junit-path")
            .arg(&report)
            .env("SCHEMATHESIS_HOOKS", "")
            // Its cache (.schemathesis/) goes to the test's directory, not the checkout.
            .current_dir(&cwd)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success(), "schemathesis found problems (above)");
    // It ran every operation.
    let junit = std::fs::read_to_string(&junit_path).unwrap_or_default();
    for op in [
        "GET /api/v1/drills",
        "POST /api/v1/drills/{name}/runs",
        "GET /api/v1/runs/{id}",
        "POST /api/v1/runs/{id}/cancel",
        "POST /api/v1/reload",
        "POST /api/v1/hooks/alertmanager",
    ] {
        assert!(junit.contains(op), "{op} not exercised:\n{junit}");
    }
}
