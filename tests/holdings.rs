//! What objects hold, verified (real PostgreSQL and MariaDB, real sandboxes): a restore
//! that lost the large objects, set a sequence back, left a materialized view without its
//! data, or dropped or changed a definition (trigger, default, comment, routine) fails at
//! verify naming the object; and healthy drills of a database under steady write load
//! (sequences and counters moving, a stale materialized view) all pass.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use firedrill::fingerprint::Mismatch;
use firedrill::{load_drill, run_drill, RunOptions, Silent, Stage, Verdict};
use support::*;

async fn run(path: &std::path::Path, opts: RunOptions) -> firedrill::RunReport {
    let drill = load_drill(path).unwrap_or_else(|p| panic!("{p}"));
    let r = run_drill(&drill, &opts, &Silent, &firedrill::Stop::new()).await;
    assert!(leftovers(&r.run_id).await.is_empty(), "sandbox left behind");
    r
}

fn again(run_id: &str) -> RunOptions {
    RunOptions {
        artifact: Some(run_id.to_string()),
        ..Default::default()
    }
}

/// Everything a logical restore can drop silently, in one small database.
const HOLDS: &str = r#"
CREATE TABLE orders (id serial PRIMARY KEY, amount numeric(12,2) NOT NULL DEFAULT 0, note text DEFAULT 'none' CHECK (note <> ''));
INSERT INTO orders (amount) SELECT g FROM generate_series(1, 2000) g;
COMMENT ON TABLE orders IS 'every order';
COMMENT ON COLUMN orders.amount IS 'in euros';
CREATE SEQUENCE tickets START 100;
SELECT nextval('tickets') FROM generate_series(1, 5);
CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN INSERT INTO audit (what) VALUES ('order ' || NEW.id); RETURN NEW; END $f$;
CREATE TRIGGER orders_log AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION log_order();
CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n, sum(amount) AS total FROM orders;
SELECT lo_from_bytea(0, decode(repeat('cafe', 1000), 'hex'));
SELECT lo_from_bytea(0, 'a second large object');
"#;

type Case = (&'static str, &'static str, fn(&Mismatch) -> bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_drops_what_objects_hold_fails_at_verify_naming_them() {
    create_db("fd_holds", HOLDS).await;
    let fx = Fixture::new();
    let path = fx.drill("holds", "fd_holds", "");
    let good = run(&path, RunOptions::default()).await;
    let human = |r: &firedrill::RunReport| firedrill::report::render_human(r);
    assert_eq!(good.verdict, Verdict::Passed, "{}", human(&good));
    // The report says what was compared, and what not and why.
    let notes = &stage(&good, Stage::Verify).notes;
    let all = notes.join("\n");
    for kind in [
        "large objects (count and content)",
        "sequences and counters",
        "materialized views (populated)",
        "triggers",
        "defaults",
        "comments",
        "routines",
        "constraints",
    ] {
        assert!(all.contains(kind), "{kind} not in {notes:#?}");
    }
    assert!(
        all.contains("not compared: privileges and owners"),
        "{notes:#?}"
    );
    let original = std::fs::read(fx.artifact_path("holds", &good.run_id)).unwrap();

    let cases: [Case; 7] = [
        (
            "large objects lost",
            "SELECT lo_unlink(oid) FROM pg_largeobject_metadata",
            |m| matches!(m, Mismatch::LargeObjects { expected: 2, actual: 0 }),
        ),
        (
            "a large object changed",
            "SELECT lo_put((SELECT min(oid) FROM pg_largeobject_metadata), 0, 'X')",
            |m| matches!(m, Mismatch::LargeObjectContent { count: 2 }),
        ),
        (
            "a sequence set back",
            "SELECT setval('orders_id_seq', 1)",
            |m| matches!(m, Mismatch::CounterBehind { counter, column, max: 2000, .. }
                if counter == "public.orders_id_seq" && column == "public.orders.id"),
        ),
        (
            "a free sequence set back",
            "SELECT setval('tickets', 100, false)",
            |m| matches!(m, Mismatch::CounterSetBack { counter, expected: 105, actual: 100 } if counter == "public.tickets"),
        ),
        (
            "a materialized view without its data",
            "REFRESH MATERIALIZED VIEW totals WITH NO DATA",
            |m| matches!(m, Mismatch::NotPopulated { view } if view == "public.totals"),
        ),
        (
            "a trigger changed",
            "CREATE OR REPLACE TRIGGER orders_log AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION log_order()",
            |m| matches!(m, Mismatch::Definition { of, object, .. } if of == "triggers" && object == "public.orders.orders_log"),
        ),
        (
            "a default and a comment dropped",
            "ALTER TABLE orders ALTER COLUMN note DROP DEFAULT; COMMENT ON COLUMN orders.amount IS NULL",
            |m| matches!(m, Mismatch::Definition { of, object, .. } if of == "defaults" && object == "public.orders.note"),
        ),
    ];
    for (what, sql, expected) in cases {
        doctor(&fx, "holds", &good.run_id, &original, sql);
        let r = run(&path, again(&good.run_id)).await;
        assert_eq!(r.verdict, Verdict::Failed, "{what}: {}", human(&r));
        assert_eq!(r.failed_stage, Some(Stage::Verify), "{what}");
        assert!(
            r.fingerprint_mismatches.iter().any(expected),
            "{what}: {:#?}",
            r.fingerprint_mismatches
        );
        // The page and the report name the object.
        let message = &r.error.as_ref().unwrap().message;
        let named = r
            .fingerprint_mismatches
            .iter()
            .any(|m| expected(m) && message.contains(m.subject()));
        assert!(named, "{what}: {message}");
    }
}

/// Healthy drills of a database under steady write load: orders inserted (their sequence
/// and the trigger's audit rows moving), a free sequence called, a materialized view left
/// stale. Every drill passes: counters are compared by invariant, a view's contents not at
/// all. `tests/run --full` runs twenty; the default tier three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_drills_under_write_load_all_pass() {
    create_db("fd_load", HOLDS).await;
    let fx = Fixture::new();
    let path = fx.drill("load", "fd_load", "");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let c = pg_client("fd_load").await;
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                c.batch_execute(
                    "INSERT INTO orders (amount) SELECT random() * 100 FROM generate_series(1, 20); \
                     SELECT nextval('tickets'); \
                     UPDATE orders SET amount = amount + 1 WHERE id = (SELECT max(id) FROM orders)",
                )
                .await
                .unwrap();
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            n
        })
    };
    let drills = if std::env::var_os("FIREDRILL_FULL").is_some() {
        20
    } else {
        3
    };
    for i in 0..drills {
        let r = run(&path, RunOptions::default()).await;
        assert_eq!(
            r.verdict,
            Verdict::Passed,
            "drill {i} of a healthy database under load: {}",
            firedrill::report::render_human(&r)
        );
    }
    stop.store(true, Ordering::SeqCst);
    let batches = writer.await.unwrap();
    assert!(batches > 10, "the load ran ({batches} batches)");
}

/// MariaDB: a dump whose trigger, column comment and default were changed on the way
/// (its manifest doctored to match) fails at verify naming each; the AUTO_INCREMENT
/// counters are compared by invariant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_restore_that_changes_definitions_fails_naming_them() {
    create_my_db(
        "fd_my_holds",
        &[
            "CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, amount DECIMAL(12,2) NOT NULL DEFAULT 0 COMMENT 'in euros', note VARCHAR(20) DEFAULT 'none') COMMENT 'every order'",
            "INSERT INTO orders (amount) SELECT seq FROM seq_1_to_2000",
            "CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, msg VARCHAR(200))",
            "CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (msg) VALUES (CONCAT('order ', NEW.id))",
        ],
    )
    .await;
    let fx = Fixture::new();
    let path = fx.my_drill("myholds", "database = \"fd_my_holds\"", "");
    let good = run(&path, RunOptions::default()).await;
    assert_eq!(
        good.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&good)
    );
    let notes = stage(&good, Stage::Verify).notes.join("\n");
    assert!(
        notes.contains("sequences and counters") && notes.contains("triggers"),
        "{notes}"
    );
    let artifact = fx.artifact_path("myholds", &good.run_id);
    // Change the dump's text (not its rows) and encrypt it again.
    sh(
        r#"age -d -i "$1" "$2" | zstd -d -q \
  | sed -e "s/CONCAT('order ', NEW.id)/CONCAT('ORDER ', NEW.id)/" -e "s/COMMENT 'in euros'/COMMENT 'in dollars'/" -e "s/DEFAULT 'none'/DEFAULT 'nil'/" \
  | zstd -q -c | age -r "$3" > "$2.new"
mv "$2.new" "$2""#,
        &[
            fx.identity.to_str().unwrap(),
            artifact.to_str().unwrap(),
            &fx.recipient,
        ],
    );
    let plain: u64 = sh(
        r#"age -d -i "$1" "$2" | zstd -d -q | wc -c"#,
        &[fx.identity.to_str().unwrap(), artifact.to_str().unwrap()],
    )
    .trim()
    .parse()
    .unwrap();
    match_manifest_to_artifact(&fx, "myholds", &good.run_id, Some(plain));
    let r = run(&path, again(&good.run_id)).await;
    assert_eq!(
        r.verdict,
        Verdict::Failed,
        "{}",
        firedrill::report::render_human(&r)
    );
    let changed: Vec<(&str, &str)> = r
        .fingerprint_mismatches
        .iter()
        .filter_map(|m| match m {
            Mismatch::Definition { of, object, .. } => Some((of.as_str(), object.as_str())),
            _ => None,
        })
        .collect();
    for want in [
        ("triggers", "fd_my_holds.orders.orders_audit"),
        ("comments", "fd_my_holds.orders.amount"),
        ("defaults", "fd_my_holds.orders.note"),
    ] {
        assert!(changed.contains(&want), "{want:?} not in {changed:?}");
    }
}
