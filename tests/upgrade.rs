//! Upgrade rehearsal: last night's dump of the PostgreSQL 15 source restored into
//! PostgreSQL 17 (`sandbox.major = 17`), against the real server and Docker engine. A clean
//! database passes with the fingerprint compared; one using the `adminpack` extension
//! (removed in 17) fails at the restore, naming it.

mod support;

use firedrill::report::Outcome;
use firedrill::{ErrorKind, Stage, Verdict};
use support::*;

/// Drill `name` of database `db`, restored into PostgreSQL `major`.
fn upgrade_drill(fx: &Fixture, name: &str, db: &str, major: u32) -> std::path::PathBuf {
    let path = fx.drill(name, db, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[sandbox]\n", &format!("[sandbox]\nmajor = {major}\n"));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_of_15_restores_into_17_and_what_17_removed_is_named() {
    create_db("fd_upgrade", SHOP).await;
    let fx = Fixture::new();
    let path = upgrade_drill(&fx, "upgrade", "fd_upgrade", 17);
    let r = run_file(&path).await;
    let text = firedrill::report::render_human(&r);
    assert_eq!(r.verdict, Verdict::Passed, "{text}");
    assert!(r.fingerprint_mismatches.is_empty(), "{text}");
    assert_eq!(r.rows, Some(3000 + 12000 + 500), "{text}");
    let provision = stage(&r, Stage::Provision);
    assert!(
        provision
            .notes
            .iter()
            .any(|n| n == "upgrade rehearsal: postgres 15 → 17"),
        "{text}"
    );
    assert!(
        provision
            .notes
            .iter()
            .any(|n| n.contains("firedrill-sandbox-postgres:17")),
        "{text}"
    );
    assert!(leftovers(&r.run_id).await.is_empty());

    // adminpack exists in 15 and is gone in 17: the rehearsal fails at the restore and
    // says so; the same dump restores into 15.
    create_db(
        "fd_upgrade_adminpack",
        &format!("CREATE EXTENSION adminpack;\n{SHOP}"),
    )
    .await;
    let path = upgrade_drill(&fx, "upgrade-adminpack", "fd_upgrade_adminpack", 17);
    let r = run_file(&path).await;
    let text = firedrill::report::render_human(&r);
    assert_eq!(r.verdict, Verdict::Failed, "{text}");
    let restore = stage(&r, Stage::Restore);
    assert_eq!(restore.outcome, Outcome::Failed, "{text}");
    let e = r.error.as_ref().unwrap();
    assert!(
        e.message.contains("upgrade rehearsal: postgres 15 → 17"),
        "{text}"
    );
    assert!(
        format!("{} {}", e.message, e.stderr_tail.as_deref().unwrap_or("")).contains("adminpack"),
        "{text}"
    );
    assert_eq!(e.kind, ErrorKind::Backup, "{text}");
    assert_eq!(r.exit_code, 1, "{text}");
    assert!(leftovers(&r.run_id).await.is_empty());

    // An older major than the source's is refused before anything starts in Docker.
    let path = upgrade_drill(&fx, "downgrade", "fd_upgrade", 13);
    let r = run_file(&path).await;
    let text = firedrill::report::render_human(&r);
    let e = r.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Config, "{text}");
    assert!(e.message.contains("sandbox.major 13 is older"), "{text}");
    assert!(leftovers(&r.run_id).await.is_empty());
}
