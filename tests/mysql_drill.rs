//! MySQL/MariaDB drills end to end against a real MariaDB server and the real Docker
//! engine (started by `tests/run`): where real restores break.

mod support;

use firedrill::report::Outcome;
use firedrill::{load_drill, run_drill, RunOptions, Silent, Stage, Verdict};
use support::*;

/// The tricky parts of a real MySQL schema, all at once.
const HARD: &[&str] = &[
    "CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, note TEXT) ENGINE=InnoDB",
    "INSERT INTO customers (name, note) SELECT CONCAT('customer ', seq), CONCAT('note ', seq) FROM seq_1_to_2000",
    "INSERT INTO customers (name, note) VALUES ('Zoë 🔥', 'utf8mb4: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, it''s \"quoted\", a\\\\backslash; and (parens)')",
    "CREATE TABLE blobs (id INT PRIMARY KEY, data LONGBLOB)",
    // 20 MiB in one row: bigger than the 16 MiB default max_allowed_packet.
    "INSERT INTO blobs VALUES (1, REPEAT(UNHEX('00FF10275C27'), 3500000))",
    "INSERT INTO blobs VALUES (2, UNHEX(MD5('x'))), (3, NULL)",
    "CREATE TABLE orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, amount DECIMAL(12,2), created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6), KEY (customer_id))",
    "INSERT INTO orders (customer_id, amount) SELECT 1 + seq % 2000, seq * 0.5 FROM seq_1_to_9000",
    "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(200))",
    "CREATE OR REPLACE USER 'app_owner'@'%' IDENTIFIED BY 'only-on-the-source'",
    "CREATE DEFINER=`app_owner`@`%` SQL SECURITY DEFINER VIEW big_orders AS SELECT * FROM orders WHERE amount > 100",
    "CREATE DEFINER=`app_owner`@`%` TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (msg) VALUES (CONCAT('order ', NEW.id))",
    "CREATE DEFINER=`app_owner`@`%` PROCEDURE order_total(IN cid INT, OUT total DECIMAL(14,2)) BEGIN SELECT SUM(amount) INTO total FROM orders WHERE customer_id = cid; END",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_mariadb_schema_restores_and_verifies_exactly() {
    create_my_db("fd_my_hard", HARD).await;
    let fx = Fixture::new();
    let path = fx.my_drill(
        "myhard",
        "database = \"fd_my_hard\"",
        r#"
[[assertion]]
name = "the 20 MiB row survived"
sql = "select length(data) from blobs where id = 1"
expect = "= 21000000"

[[assertion]]
name = "utf8mb4 survived"
sql = "select name from customers where note like 'utf8mb4%'"
expect = "Zoë 🔥"

[[assertion]]
name = "the procedure restored"
sql = "select count(*) from information_schema.routines where routine_schema = 'fd_my_hard' and routine_name = 'order_total'"
expect = "= 1"

[[assertion]]
name = "the trigger restored"
sql = "select count(*) from information_schema.triggers where trigger_schema = 'fd_my_hard'"
expect = "= 1"

[[assertion]]
name = "the view works"
sql = "select count(*) from big_orders"
expect = ">= 1"
"#,
    );
    let r = run_file(&path).await;
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&r)
    );
    for s in Stage::ALL {
        assert_eq!(stage(&r, s).outcome, Outcome::Passed, "stage {s}");
    }
    assert!(r.fingerprint_mismatches.is_empty());
    assert_eq!(r.tables, Some(4));
    // The trigger was created after the orders, so audit is empty.
    assert_eq!(r.rows, Some(2001 + 3 + 9000));
    let dump = stage(&r, Stage::Dump);
    assert!(
        dump.notes
            .iter()
            .any(|n| n.contains("DEFINER clauses will be neutralised")),
        "{:?}",
        dump.notes
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.manifest_path("myhard", &r.run_id)).unwrap())
            .unwrap();
    assert_eq!(m["engine"], "mariadb");
    assert_eq!(m["source_major"], "10.11");
    assert_eq!(m["dump_format"], "sql");
    assert!(leftovers(&r.run_id).await.is_empty());
    // Every table's content was checksummed from the dump stream and compared with a dump
    // of the restored table; the schema objects were counted on both sides.
    let fp = &m["fingerprint"];
    for t in fp["tables"].as_array().unwrap() {
        assert!(
            t["checksum"].as_str().unwrap().starts_with("xxh3sum:"),
            "{t}"
        );
    }
    assert_eq!(fp["objects"]["views"], 1);
    assert_eq!(fp["objects"]["functions"], 1);
    assert_eq!(fp["objects"]["triggers"], 1);

    // One value changed in the dump (re-encrypted, so it decrypts and restores): the row
    // counts still match, the content checksum does not.
    let artifact = fx.artifact_path("myhard", &r.run_id);
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"set -euo pipefail
age -d -i "$1" "$2" | zstd -d -q | sed -e "s/'customer 1234'/'customer 4321'/" | zstd -q -c | age -r "$3" > "$2.new"
mv "$2.new" "$2""#)
        .arg("sh")
        .arg(&fx.identity)
        .arg(&artifact)
        .arg(&fx.recipient)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match_manifest_to_artifact(&fx, "myhard", &r.run_id, None);
    let drill = load_drill(&path).unwrap();
    let again = run_drill(
        &drill,
        &RunOptions {
            artifact: Some(r.run_id.clone()),
            ..Default::default()
        },
        &Silent,
        &firedrill::Stop::new(),
    )
    .await;
    assert_eq!(
        again.verdict,
        Verdict::Failed,
        "{}",
        firedrill::report::render_human(&again)
    );
    assert_eq!(again.failed_stage, Some(Stage::Verify));
    assert_eq!(
        again.fingerprint_mismatches,
        [firedrill::fingerprint::Mismatch::Content {
            table: "fd_my_hard.customers".into(),
            rows: 2001
        }]
    );
    assert!(leftovers(&again.run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_databases_in_one_drill() {
    create_my_db(
        "fd_my_a",
        &[
            "CREATE TABLE t (id INT PRIMARY KEY)",
            "INSERT INTO t SELECT seq FROM seq_1_to_500",
        ],
    )
    .await;
    create_my_db(
        "fd_my_b",
        &[
            "CREATE TABLE u (id INT PRIMARY KEY, v VARCHAR(10))",
            "INSERT INTO u SELECT seq, 'x' FROM seq_1_to_700",
        ],
    )
    .await;
    let fx = Fixture::new();
    let path = fx.my_drill("mymulti", "databases = [\"fd_my_a\", \"fd_my_b\"]", "");
    let r = run_file(&path).await;
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert_eq!(r.tables, Some(2));
    assert_eq!(r.rows, Some(1200));
    assert!(leftovers(&r.run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_dump_that_exited_zero_never_passes() {
    create_my_db(
        "fd_my_trunc",
        &[
            "CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(200))",
            "INSERT INTO t SELECT seq, REPEAT('p', 150) FROM seq_1_to_20000",
        ],
    )
    .await;
    let fx = Fixture::new();
    // A dump job that "succeeded": the real dump tool, cut mid-stream, exit status 0.
    let tool = fx.dir.path().join("cut-dump");
    std::fs::write(
        &tool,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then exec mariadb-dump --version; fi\nmariadb-dump \"$@\" | head -c 1500000\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = fx.my_drill(
        "mytrunc",
        &format!(
            "database = \"fd_my_trunc\"\ndump_tool = \"{}\"",
            tool.display()
        ),
        "",
    );
    let r = run_file(&path).await;
    assert_eq!(
        r.verdict,
        Verdict::Failed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert_eq!(r.failed_stage, Some(Stage::Dump));
    let e = r.error.as_ref().unwrap();
    assert!(
        e.message.contains("cut short") || e.message.contains("Dump completed"),
        "{}",
        e.message
    );
    // Nothing that looks complete was stored.
    let manifests: Vec<_> = support::files_under(&fx.store())
        .into_iter()
        .filter(|p| p.ends_with("manifest.json"))
        .collect();
    assert!(manifests.is_empty(), "{manifests:?}");
    assert!(support::files_under(&fx.store())
        .iter()
        .all(|p| !p.ends_with("artifact.dump.zst.age")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_assertion_fails_verify() {
    create_my_db(
        "fd_my_assert",
        &[
            "CREATE TABLE t (id INT PRIMARY KEY)",
            "INSERT INTO t SELECT seq FROM seq_1_to_100",
        ],
    )
    .await;
    let fx = Fixture::new();
    let path = fx.my_drill(
        "myassert",
        "database = \"fd_my_assert\"",
        "[[assertion]]\nname = \"too many rows\"\nsql = \"select count(*) from t\"\nexpect = \"> 100\"\n",
    );
    let r = run_file(&path).await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(r.exit_code, 1);
    assert_eq!(r.failed_stage, Some(Stage::Verify));
    assert!(r
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("`too many rows`"));
    assert_eq!(r.assertions[0].actual.as_deref(), Some("100"));
    assert!(leftovers(&r.run_id).await.is_empty());
}
