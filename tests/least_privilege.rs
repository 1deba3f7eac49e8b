//! Dump roles with only the grants a dump needs, on the real PostgreSQL and MariaDB
//! sources `tests/run` starts: the drill passes and its report says what no dump holds;
//! a grant taken away is a `doctor` fail and a run error (a config error, exit 2) that
//! names the grant and the statement giving it — never a dump that silently leaves
//! triggers, routines or rows out.

mod support;

use std::path::Path;

use firedrill::doctor::{diagnose, Status};
use firedrill::{load_drill, ErrorKind, Stage, Verdict};
use support::*;

async fn passes(path: &Path) -> firedrill::RunReport {
    let r = run_file(path).await;
    let text = firedrill::report::render_human(&r);
    assert_eq!(r.verdict, Verdict::Passed, "{text}");
    assert!(leftovers(&r.run_id).await.is_empty());
    r
}

/// The drill passes, its dump stage notes `note` (what no dump holds), and doctor finds
/// nothing failing.
async fn passes_noting(path: &Path, note: &str) {
    let r = passes(path).await;
    let notes = &stage(&r, Stage::Dump).notes;
    assert!(notes.iter().any(|n| n.contains(note)), "{notes:?}");
    let f = diagnose(&load_drill(path).unwrap()).await;
    assert!(
        !f.iter().any(|f| f.status == Status::Fail),
        "doctor: {f:#?}"
    );
}

/// The run fails before any dump as a config error naming `grant`; doctor fails naming
/// it too. Returns the error's message and hint.
async fn lacks(path: &Path, grant: &str, object: &str) -> String {
    let r = run_file(path).await;
    let text = firedrill::report::render_human(&r);
    assert_eq!(r.verdict, Verdict::Error, "{text}");
    let e = r.error.as_ref().unwrap_or_else(|| panic!("{text}"));
    assert_eq!(e.kind, ErrorKind::Config, "{text}");
    assert_eq!(r.exit_code, 2, "{text}");
    assert_eq!(r.failed_stage, Some(Stage::Dump), "{text}");
    let said = format!("{} {}", e.message, e.hint.clone().unwrap_or_default());
    assert!(
        said.contains(grant) && said.contains(object),
        "expected `{grant}` and `{object}` in: {said}"
    );
    assert!(leftovers(&r.run_id).await.is_empty());
    let f = diagnose(&load_drill(path).unwrap()).await;
    assert!(
        f.iter()
            .any(|f| f.status == Status::Fail && f.detail.contains(grant)),
        "doctor should fail naming {grant}: {f:#?}"
    );
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_role_without_superuser_drills_and_names_a_missing_grant() {
    let db = "fd_least_pg";
    create_db(
        db,
        r#"
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE orders (id serial PRIMARY KEY, amount int NOT NULL);
INSERT INTO orders (amount) SELECT g FROM generate_series(1, 500) g;
CREATE VIEW big AS SELECT * FROM orders WHERE amount > 400;
CREATE SCHEMA private;
CREATE TABLE private.notes (id int, body text);
INSERT INTO private.notes SELECT g, md5(g::text) FROM generate_series(1, 50) g;
"#,
    )
    .await;
    let admin = pg_client(db).await;
    admin
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fd_least_reader') \
             THEN CREATE ROLE fd_least_reader; END IF; END $$; \
             ALTER ROLE fd_least_reader LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'least-pw-9'; \
             GRANT pg_read_all_data TO fd_least_reader",
        )
        .await
        .unwrap();
    let fx = Fixture::new();
    secret_file(fx.dir.path(), "role-password", "least-pw-9");
    let source = format!(
        r#"[source]
type = "postgres"
host = "127.0.0.1"
port = {port}
database = "{db}"
user = "fd_least_reader"
password = {{ file = "role-password" }}"#,
        port = pg().port,
    );
    let path = fx.write_drill("least-pg", &source, "1GiB", "");

    // pg_read_all_data is enough: the drill passes, and says what no dump holds.
    passes_noting(&path, "roles and their passwords").await;

    // Row-level security would hide rows from the role: pg_dump refuses, so the run names
    // BYPASSRLS before it starts; granted, the drill passes with every row.
    admin
        .batch_execute(
            "CREATE TABLE secrets (id int, owner text); \
             INSERT INTO secrets SELECT g, 'someone' FROM generate_series(1, 30) g; \
             ALTER TABLE secrets ENABLE ROW LEVEL SECURITY; \
             CREATE POLICY own ON secrets USING (owner = current_user)",
        )
        .await
        .unwrap();
    let said = lacks(&path, "BYPASSRLS", "secrets").await;
    assert!(
        said.contains("ALTER ROLE fd_least_reader BYPASSRLS"),
        "{said}"
    );
    admin
        .batch_execute("ALTER ROLE fd_least_reader BYPASSRLS")
        .await
        .unwrap();
    let r = passes(&path).await;
    // 500 orders, 50 private notes and all 30 secrets, not the none the policy shows.
    assert_eq!(r.rows, Some(580), "{}", firedrill::report::render_human(&r));

    // A large object of another owner: pg_read_all_data does not cover it.
    let oid: u32 = admin
        .query_one("SELECT lo_from_bytea(0, 'not yours'::bytea)", &[])
        .await
        .unwrap()
        .get(0);
    lacks(&path, "large objects", &oid.to_string()).await;
    admin
        .batch_execute(&format!(
            "GRANT SELECT ON LARGE OBJECT {oid} TO fd_least_reader"
        ))
        .await
        .unwrap();
    passes(&path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_user_with_only_the_dump_grants_drills_and_names_a_missing_one() {
    let db = "fd_least_my";
    create_my_db(
        db,
        &[
            "CREATE TABLE orders (id INT PRIMARY KEY, amount INT NOT NULL, note VARCHAR(20))",
            "INSERT INTO orders SELECT seq, seq * 3, NULL FROM seq_1_to_400",
            "CREATE VIEW big AS SELECT * FROM orders WHERE amount > 900",
            "CREATE TRIGGER tag BEFORE INSERT ON orders FOR EACH ROW SET NEW.note = 'new'",
            "CREATE PROCEDURE total() SELECT SUM(amount) FROM orders",
            "CREATE EVENT tidy ON SCHEDULE EVERY 1 DAY DO DELETE FROM orders WHERE id < 0",
        ],
    )
    .await;
    let mut admin = my_conn().await;
    use mysql_async::prelude::Queryable;
    for stmt in [
        "DROP USER IF EXISTS 'fd_least'@'127.0.0.1'",
        "CREATE USER 'fd_least'@'127.0.0.1' IDENTIFIED BY 'least-my-7'",
        "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `fd_least_my`.* TO 'fd_least'@'127.0.0.1'",
        "GRANT SELECT ON mysql.proc TO 'fd_least'@'127.0.0.1'",
    ] {
        admin.query_drop(stmt).await.unwrap();
    }
    let fx = Fixture::new();
    secret_file(fx.dir.path(), "role-password", "least-my-7");
    let source = format!(
        r#"[source]
type = "mariadb"
host = "127.0.0.1"
port = {port}
user = "fd_least"
password = {{ file = "role-password" }}
database = "{db}""#,
        port = my_port(),
    );
    let path = fx.write_drill("least-my", &source, "2GiB", "");

    passes_noting(&path, "accounts, their passwords").await;

    // Without TRIGGER the dump tool leaves the trigger out and exits 0: firedrill names it.
    admin
        .query_drop("REVOKE TRIGGER ON `fd_least_my`.* FROM 'fd_least'@'127.0.0.1'")
        .await
        .unwrap();
    let said = lacks(&path, "TRIGGER", "fd_least_my").await;
    assert!(said.contains("GRANT TRIGGER ON `fd_least_my`.*"), "{said}");
    admin
        .query_drop("GRANT TRIGGER ON `fd_least_my`.* TO 'fd_least'@'127.0.0.1'")
        .await
        .unwrap();

    // Without reading routines' bodies the same: named for this series.
    admin
        .query_drop("REVOKE SELECT ON mysql.proc FROM 'fd_least'@'127.0.0.1'")
        .await
        .unwrap();
    lacks(&path, "mysql.proc", "routines").await;
    admin
        .query_drop("DROP USER 'fd_least'@'127.0.0.1'")
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
}
