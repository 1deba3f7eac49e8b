//! The PostgreSQL drill end to end against a real PostgreSQL server and the real Docker
//! engine (started by `tests/run`).

mod support;

use std::process::Command;

use firedrill::report::Outcome;
use firedrill::{load_drill, run_drill, RunOptions, Silent, Stage, Verdict};
use sha2::{Digest, Sha256};
use support::*;

async fn run(path: &std::path::Path, opts: RunOptions) -> firedrill::RunReport {
    let drill = load_drill(path).unwrap_or_else(|p| panic!("{p}"));
    run_drill(&drill, &opts, &Silent, &firedrill::Stop::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_drill_passes_and_the_artifact_is_plain_age() {
    create_db("fd_healthy", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill(
        "healthy",
        "fd_healthy",
        r#"
[[assertion]]
name = "orders are there"
sql = "select count(*) from orders"
expect = ">= 12000"

[[assertion]]
name = "no orphaned orders"
sql = "select count(*) from orders o left join customers c on c.id = o.customer_id where c.id is null"
expect = "= 0"
"#,
    );
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert_eq!(r.exit_code, 0);
    for s in Stage::ALL {
        assert_eq!(stage(&r, s).outcome, Outcome::Passed, "stage {s}");
    }
    assert!(r.fingerprint_mismatches.is_empty());
    assert_eq!(r.tables, Some(4));
    assert_eq!(r.rows, Some(3000 + 12000 + 500));
    assert!(r.assertions.iter().all(|a| a.passed));
    assert!(stage(&r, Stage::Dump).bytes.unwrap() > 100_000);
    assert!(leftovers(&r.run_id).await.is_empty());

    // The manifest records what the issue asks for.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.manifest_path("healthy", &r.run_id)).unwrap())
            .unwrap();
    assert_eq!(m["engine"], "postgres");
    assert_eq!(m["dump_tool"], "pg_dump");
    assert_eq!(m["source_major"], "15");
    assert_eq!(m["fingerprint"]["tables"].as_array().unwrap().len(), 4);
    let artifact = std::fs::read(fx.artifact_path("healthy", &r.run_id)).unwrap();
    assert_eq!(m["sha256"], hex::encode(Sha256::digest(&artifact)));
    assert_eq!(m["encrypted_bytes"], artifact.len() as u64);

    // Interoperability: the reference age CLI and zstd decrypt it to a dump pg_restore reads.
    let out = Command::new("sh")
        .arg("-c")
        .arg("age -d -i \"$1\" \"$2\" | zstd -d -q | pg_restore --list")
        .arg("sh")
        .arg(&fx.identity)
        .arg(fx.artifact_path("healthy", &r.run_id))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("TABLE DATA public orders"), "{list}");
    assert!(list.contains("TABLE DATA audit events"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_artifact_fails_at_restore() {
    create_db("fd_altered", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("altered", "fd_altered", "");
    let first = run(&path, RunOptions::default()).await;
    assert_eq!(
        first.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&first)
    );

    // One byte flipped in storage: the hash check catches it before anything decrypts.
    flip_byte(&fx.artifact_path("altered", &first.run_id));
    let r = run(
        &path,
        RunOptions {
            artifact: Some(first.run_id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(r.exit_code, 1);
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let msg = &r.error.as_ref().unwrap().message;
    assert!(msg.contains("hash mismatch"), "{msg}");
    assert!(leftovers(&r.run_id).await.is_empty());

    // The same damage with the manifest "fixed" to match: age's authentication catches it.
    let artifact = std::fs::read(fx.artifact_path("altered", &first.run_id)).unwrap();
    let mpath = fx.manifest_path("altered", &first.run_id);
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["sha256"] = hex::encode(Sha256::digest(&artifact)).into();
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let r = run(
        &path,
        RunOptions {
            artifact: Some(first.run_id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let msg = &r.error.as_ref().unwrap().message;
    assert!(
        msg.contains("does not decrypt") && msg.contains("authentication"),
        "{msg}"
    );
    assert!(leftovers(&r.run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_identity_fails_at_restore_and_says_so() {
    create_db("fd_wrongid", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("wrongid", "fd_wrongid", "");
    let old = run(&path, RunOptions::default()).await;
    assert_eq!(old.verdict, Verdict::Passed);
    // The key is rotated (identity and recipients both), and the old artifact, locked
    // to the old key, is drilled again. (An identity that matches none of the drill's own
    // recipients is refused before any dump: tests/cli.rs.)
    let (other, other_recipient) = firedrill::age_keys::generate_identity();
    std::fs::write(&fx.identity, other).unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&fx.recipient, &other_recipient);
    std::fs::write(&path, text).unwrap();
    let r = run(
        &path,
        RunOptions {
            artifact: Some(old.run_id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        r.verdict,
        Verdict::Failed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let e = r.error.as_ref().unwrap();
    assert!(
        e.message
            .contains("this identity does not match any recipient of the artifact"),
        "{}",
        e.message
    );
    assert!(e.hint.is_some());
    assert_eq!(stage(&r, Stage::Verify).outcome, Outcome::Skipped);
    assert_eq!(stage(&r, Stage::Teardown).outcome, Outcome::Passed);
    assert!(leftovers(&r.run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_assertion_fails_verify_and_is_named() {
    create_db("fd_assert", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill(
        "assert",
        "fd_assert",
        r#"
[[assertion]]
name = "customers exist"
sql = "select count(*) from customers"
expect = "= 3000"

[[assertion]]
name = "a million orders"
sql = "select count(*) from orders"
expect = ">= 1000000"
"#,
    );
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(r.exit_code, 1);
    assert_eq!(r.failed_stage, Some(Stage::Verify));
    let e = r.error.as_ref().unwrap();
    assert!(e.message.contains("`a million orders`"), "{}", e.message);
    assert!(!e.message.contains("`customers exist`"), "{}", e.message);
    let failed: Vec<_> = r.assertions.iter().filter(|a| !a.passed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].actual.as_deref(), Some("12000"));
    assert!(r.fingerprint_mismatches.is_empty());
    assert!(leftovers(&r.run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_over_its_timeout_is_reported_timed_out() {
    create_db("fd_timeout", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("timeout", "fd_timeout", "");
    // A database server cannot start in 200ms: provision must time out, not hang.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("provision = \"3m\"", "provision = \"200ms\"");
    std::fs::write(&path, text).unwrap();
    let r = run(&path, RunOptions::default()).await;
    let p = stage(&r, Stage::Provision);
    assert_eq!(
        p.outcome,
        Outcome::TimedOut,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert_eq!(r.failed_stage, Some(Stage::Provision));
    assert_eq!(r.verdict, Verdict::Error);
    assert_eq!(r.exit_code, 2);
    assert!(r.error.as_ref().unwrap().message.contains("timeout"));
    assert_eq!(stage(&r, Stage::Restore).outcome, Outcome::Skipped);
    assert_eq!(stage(&r, Stage::Teardown).outcome, Outcome::Passed);
    assert!(leftovers(&r.run_id).await.is_empty());
}

/// Ctrl-C during the restore: the stage is cancelled, the run is an operator's cancel
/// (exit 2, pages nobody) and the sandbox still goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_mid_drill_tears_the_sandbox_down() {
    struct CancelAt(Stage, firedrill::Stop);
    impl firedrill::Progress for CancelAt {
        fn stage_started(&self, s: Stage) {
            if s == self.0 {
                self.1.stop(firedrill::StopReason::Operator);
            }
        }
    }
    create_db("fd_cancel", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("cancel", "fd_cancel", "");
    let drill = load_drill(&path).unwrap();
    let cancel = &firedrill::Stop::new();
    let r = run_drill(
        &drill,
        &RunOptions::default(),
        &CancelAt(Stage::Restore, cancel.clone()),
        cancel,
    )
    .await;
    assert_eq!(stage(&r, Stage::Provision).outcome, Outcome::Passed);
    assert_eq!(stage(&r, Stage::Restore).outcome, Outcome::Cancelled);
    assert_eq!(r.status(), firedrill::RunStatus::Cancelled);
    assert_eq!(r.status().page(), None);
    assert_eq!(stage(&r, Stage::Teardown).outcome, Outcome::Passed);
    assert_eq!(r.exit_code, 2);
    assert!(leftovers(&r.run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_database_is_a_failed_backup_not_a_success() {
    create_db("fd_empty", "").await;
    let fx = Fixture::new();
    let path = fx.drill("empty", "fd_empty", "");
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(r.failed_stage, Some(Stage::Dump));
    assert!(r.error.as_ref().unwrap().message.contains("no user tables"));
    // Nothing was stored.
    assert!(
        !fx.store().join("empty").exists()
            || std::fs::read_dir(fx.store().join("empty")).unwrap().count() == 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_older_than_the_server_is_refused_before_dumping() {
    create_db("fd_olddump", SHOP).await;
    let fx = Fixture::new();
    let fake = fx.dir.path().join("pg_dump");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'pg_dump (PostgreSQL) 13.9'\n[ \"$1\" = --version ] || touch \"$0.ran\"\n",
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&fake).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = fx.drill("olddump", "fd_olddump", "");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "user = \"postgres\"",
        &format!("user = \"postgres\"\npg_dump = \"{}\"", fake.display()),
    );
    std::fs::write(&path, text).unwrap();
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(r.exit_code, 2);
    assert_eq!(r.failed_stage, Some(Stage::Dump));
    let e = r.error.as_ref().unwrap();
    assert!(e.message.contains("older than the server"), "{}", e.message);
    assert!(e.hint.as_ref().unwrap().contains("postgresql-client-15"));
    assert!(
        !fx.dir.path().join("pg_dump.ran").exists(),
        "the dump must not start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_error_that_retrying_cannot_fix() {
    create_db("fd_badpw", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("badpw", "fd_badpw", "");
    let pwfile = fx.dir.path().join("pw");
    std::fs::write(&pwfile, "not-the-password\n").unwrap();
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("{{ env = \"{PASSWORD_ENV}\" }}"),
        "{ file = \"pw\" }",
    );
    std::fs::write(&path, text).unwrap();
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(r.exit_code, 2);
    let e = r.error.as_ref().unwrap();
    assert!(e.message.contains("refused user postgres"), "{}", e.message);
    assert!(!e.retryable);
    // The password never shows up in the report.
    assert!(!serde_json::to_string(&r)
        .unwrap()
        .contains("not-the-password"));
}

/// The catalog is a cache of storage: losing it loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_rebuilds_from_storage_and_prune_keeps_the_last_good_artifact() {
    use firedrill::catalog::{Catalog, SqliteCatalog, Verified};
    use std::sync::Arc;
    create_db("fd_catalog", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("catalog", "fd_catalog", "[retention]\nkeep_last = 1\n");
    let drill = load_drill(&path).unwrap();
    let db = fx.dir.path().join("catalog.db");
    let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(&db).unwrap());
    let runner = firedrill::Runner {
        catalog: Some(catalog.clone()),
        ..bare_runner(firedrill::LiveConnector)
    };
    let run_with = |opts: RunOptions| {
        let (runner, drill) = (runner.clone(), drill.clone());
        async move {
            runner
                .run(&drill, &opts, &Silent, &firedrill::Stop::new())
                .await
                .report
        }
    };
    let opts = RunOptions::default();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let r = run_with(opts.clone()).await;
        assert_eq!(
            r.verdict,
            Verdict::Passed,
            "{}",
            firedrill::report::render_human(&r)
        );
        runs.push(r.run_id);
    }
    // A third artifact that turns out broken when drilled again.
    let third = run_with(opts.clone()).await;
    assert_eq!(third.verdict, Verdict::Passed);
    flip_byte(&fx.artifact_path("catalog", &third.run_id));
    let opts_again = RunOptions {
        artifact: Some(third.run_id.clone()),
        ..opts.clone()
    };
    let r = run_with(opts_again).await;
    assert_eq!(r.verdict, Verdict::Failed);

    let before = catalog.artifacts(Some("catalog")).await.unwrap();
    assert_eq!(before.len(), 3);
    assert_eq!(
        before.iter().map(|a| a.verified).collect::<Vec<_>>(),
        [Verified::Yes, Verified::Yes, Verified::No]
    );
    let history = catalog.runs(Some("catalog"), 10).await.unwrap();
    assert_eq!(history.len(), 4);
    assert!(history
        .iter()
        .filter(|r| r.status == firedrill::RunStatus::Passed)
        .all(|r| r.rto_seconds.unwrap() > 0.0));

    // Lose the catalog; rebuild it from storage alone.
    drop(catalog);
    std::fs::remove_file(&db).unwrap();
    let rebuilt = SqliteCatalog::open(&db).unwrap();
    let report = firedrill::inventory::rebuild(&rebuilt, std::slice::from_ref(&drill))
        .await
        .unwrap();
    assert_eq!(report.artifacts, 3);
    assert_eq!(rebuilt.artifacts(Some("catalog")).await.unwrap(), before);

    // keep_last = 1 would keep only the broken newest one; the last good one stays too.
    let pr = firedrill::inventory::prune(Some(&rebuilt), &drill, false)
        .await
        .unwrap();
    assert_eq!(pr.deleted, vec![runs[0].clone()]);
    let left: Vec<String> = rebuilt
        .artifacts(Some("catalog"))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.run_id)
        .collect();
    assert_eq!(left, vec![runs[1].clone(), third.run_id.clone()]);
    assert!(!fx.artifact_path("catalog", &runs[0]).exists());
    assert!(!fx.manifest_path("catalog", &runs[0]).exists());
    assert!(fx.manifest_path("catalog", &runs[1]).exists());
}

/// Verify-only: a plain pg_dump file dropped in storage by hand, by another tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_only_drill_passes_on_a_plain_pg_dump_dropped_in_storage() {
    create_db("fd_external", SHOP).await;
    let fx = Fixture::new();
    let p = pg();
    let dir = fx.store().join("legacy/nightly");
    std::fs::create_dir_all(&dir).unwrap();
    // Two files from "another tool": an older custom+gzip one and the newest plain one.
    for (name, args, compress) in [("old.dump.gz", "-Fc", "gzip -c"), ("new.sql", "-Fp", "cat")] {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "PGPASSWORD=\"$1\" pg_dump {args} -h 127.0.0.1 -p {} -U postgres fd_external | {compress} > \"$2\"",
                p.port
            ))
            .arg("sh")
            .arg(&p.password)
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let path = fx.dir.path().join("legacy.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[source]
type = "stored"
engine = "postgres"
version = "15"
database = "restored_shop"
prefix = "legacy/nightly/"

[storage]
type = "local"
path = "{}"

[encryption]
recipients = ["{}"]
identity = {{ file = "identity.txt" }}

[[assertion]]
name = "orders came back"
sql = "select count(*) from orders"
expect = "= 12000"
"#,
            fx.store().display(),
            fx.recipient
        ),
    )
    .unwrap();
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert!(
        r.artifact
            .as_ref()
            .unwrap()
            .location
            .ends_with("legacy/nightly/new.sql"),
        "{:?}",
        r.artifact
    );
    assert_eq!(stage(&r, Stage::Dump).outcome, Outcome::Skipped);
    assert!(r.assertions[0].passed);
    assert!(leftovers(&r.run_id).await.is_empty());

    // Without the plain file, the gzip'd custom-format one is the newest: detected too.
    std::fs::remove_file(dir.join("new.sql")).unwrap();
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert!(r
        .artifact
        .as_ref()
        .unwrap()
        .location
        .ends_with("old.dump.gz"));
    assert!(leftovers(&r.run_id).await.is_empty());
}
