//! A corpus of damaged PostgreSQL backups, each of which must fail its drill at verify with
//! the broken promise named: doctored dumps (re-encrypted, so they decrypt and restore
//! fine), a stale source, a corrupt index, a backup that shrank. And the evidence a run
//! leaves: JUnit XML that Jenkins' schema accepts, and a signed report that notices edits.
//! Real PostgreSQL, real Docker sandboxes (started by `tests/run`).

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use firedrill::catalog::{Catalog, SqliteCatalog};
use firedrill::evidence::ReportWriter;
use firedrill::fingerprint::Mismatch;
use firedrill::{load_drill, run_drill, RunOptions, Silent, Stage, Verdict};
use sha2::{Digest, Sha256};
use support::*;

async fn run(path: &Path, opts: RunOptions) -> firedrill::RunReport {
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

/// What was done to the dump, the SQL that did it, and the mismatch it must cause.
type Case = (&'static str, &'static str, fn(&Mismatch) -> bool);

/// A table of types without a row hash that survives a restore: json (no hash at all) and
/// an enum (hashed by its OID, which the restore renumbers).
const NOTES: &str = r#"
CREATE TYPE mood AS ENUM ('calm', 'alarmed');
CREATE TABLE notes (id int PRIMARY KEY, body json, mood mood);
INSERT INTO notes SELECT g, json_build_object('seen', true, 'n', g), 'calm' FROM generate_series(1, 40) g;
"#;

fn failed_names(r: &firedrill::RunReport) -> Vec<String> {
    r.assertions
        .iter()
        .filter(|a| !a.passed)
        .map(|a| a.name.clone())
        .collect()
}

const ASSERTIONS: &str = r#"
[[assertion]]
name = "orders are there"
kind = "row_count"
table = "public.orders"
min = 12000

[[assertion]]
name = "orders are fresh"
kind = "freshness"
table = "orders"
column = "placed_at"
within = "1h"

[[assertion]]
name = "no orphaned orders"
sql = "select o.id from orders o left join customers c on c.id = o.customer_id where c.id is null;"
expect = "no rows"

[[assertion]]
name = "amounts in range"
sql = "select max(amount) from orders"
expect = "between 1 and 100000"

[[assertion]]
name = "indexes are sound"
kind = "integrity"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_doctored_dump_fails_verify_naming_what_broke() {
    // SHOP's tables are summed with PostgreSQL's row hash; one with a json and an enum
    // column (no hash that is the same after a restore) with the MD5 of each row's text.
    create_db("fd_damage", &format!("{SHOP}{NOTES}")).await;
    let fx = Fixture::new();
    let path = fx.drill("damage", "fd_damage", ASSERTIONS);
    let good = run(&path, RunOptions::default()).await;
    assert_eq!(
        good.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&good)
    );
    assert_eq!(good.assertions.len(), 5, "{:#?}", good.assertions);
    assert!(good.assertions.iter().all(|a| a.passed));
    let integrity = good
        .assertions
        .iter()
        .find(|a| a.name == "indexes are sound")
        .unwrap();
    assert!(
        integrity
            .actual
            .as_deref()
            .unwrap()
            .contains("indexes checked, all sound"),
        "{integrity:?}"
    );
    // Every table was small enough to be checksummed, and the schema objects counted.
    let m: firedrill::manifest::Manifest =
        serde_json::from_slice(&std::fs::read(fx.manifest_path("damage", &good.run_id)).unwrap())
            .unwrap();
    let sums: Vec<(String, &str)> = m
        .fingerprint
        .checksummed()
        .iter()
        .map(|t| {
            let c = t.checksum.as_deref().unwrap();
            (t.qualified(), c.split(':').next().unwrap())
        })
        .collect();
    assert_eq!(
        sums,
        [
            ("audit.events".to_string(), "rowhash64sum"),
            ("public.customers".to_string(), "rowhash64sum"),
            ("public.empty_table".to_string(), "rowhash64sum"),
            ("public.notes".to_string(), "md5sum"),
            ("public.orders".to_string(), "rowhash64sum"),
        ]
    );
    assert_eq!(m.fingerprint.objects.get("views"), Some(&1));
    assert!(
        m.fingerprint.objects["indexes"] >= 4,
        "{:?}",
        m.fingerprint.objects
    );
    let original = std::fs::read(fx.artifact_path("damage", &good.run_id)).unwrap();

    let cases: [Case; 6] = [
        (
            "one row lost",
            "DELETE FROM orders WHERE id = 7",
            |m| matches!(m, Mismatch::RowCount { table, expected: 12000, actual: 11999 } if table == "public.orders"),
        ),
        (
            "a table emptied",
            "TRUNCATE audit.events",
            |m| matches!(m, Mismatch::RowCount { table, expected: 500, actual: 0 } if table == "audit.events"),
        ),
        (
            "a column altered",
            "ALTER TABLE customers ALTER COLUMN email TYPE varchar(200)",
            |m| matches!(m, Mismatch::Columns { table, .. } if table == "public.customers"),
        ),
        (
            "a value changed",
            "UPDATE orders SET amount = amount + 1 WHERE id = 42",
            |m| matches!(m, Mismatch::Content { table, rows: 12000 } if table == "public.orders"),
        ),
        (
            "a json value changed",
            "UPDATE notes SET body = '{\"seen\": false}' WHERE id = 3",
            |m| matches!(m, Mismatch::Content { table, rows: 40 } if table == "public.notes"),
        ),
        (
            "a view dropped",
            "DROP VIEW big_orders",
            |m| matches!(m, Mismatch::Definition { of, object, change: firedrill::fingerprint::DefinitionChange::Missing } if of == "views" && object.contains("big_orders")),
        ),
    ];
    for (what, sql, expected) in cases {
        doctor(&fx, "damage", &good.run_id, &original, sql);
        let r = run(&path, again(&good.run_id)).await;
        assert_eq!(
            r.verdict,
            Verdict::Failed,
            "{what}: {}",
            firedrill::report::render_human(&r)
        );
        assert_eq!(r.exit_code, 1, "{what}");
        assert_eq!(r.failed_stage, Some(Stage::Verify), "{what}");
        assert!(
            r.fingerprint_mismatches.iter().any(expected),
            "{what}: {:#?}",
            r.fingerprint_mismatches
        );
        assert_eq!(
            r.fingerprint_mismatches.len(),
            1,
            "{what}: {:#?}",
            r.fingerprint_mismatches
        );
        let msg = &r.error.as_ref().unwrap().message;
        assert!(msg.contains("fingerprint mismatch"), "{what}: {msg}");
    }
    // The lost row also breaks the drill's own row_count bound, named with its numbers.
    doctor(
        &fx,
        "damage",
        &good.run_id,
        &original,
        "DELETE FROM orders WHERE id = 7",
    );
    let r = run(&path, again(&good.run_id)).await;
    assert_eq!(failed_names(&r), ["orders are there"]);
    let a = &r.assertions[0];
    assert_eq!(a.expected, ">= 12000");
    assert_eq!(a.actual.as_deref(), Some("11999"));
    assert!(r
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("`orders are there`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_source_and_a_corrupt_index_fail_their_assertions() {
    // A replica that stopped replicating ten days ago: the backup is of old data.
    create_db(
        "fd_stale",
        &format!("{SHOP}\nUPDATE orders SET placed_at = now() - interval '10 days';"),
    )
    .await;
    let fx = Fixture::new();
    let path = fx.drill("stale", "fd_stale", ASSERTIONS);
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(
        r.verdict,
        Verdict::Failed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert_eq!(r.failed_stage, Some(Stage::Verify));
    assert_eq!(failed_names(&r), ["orders are fresh"]);
    let a = r.assertions.iter().find(|a| !a.passed).unwrap();
    assert!(a.expected.contains("at most 1h before the dump"), "{a:?}");
    assert!(a.actual.as_deref().unwrap().contains("10days"), "{a:?}");
    assert!(r.fingerprint_mismatches.is_empty());

    // An index whose function lies about being immutable: every row's key changes when it
    // is recomputed, so the index does not hold the rows it should. amcheck finds it.
    create_db(
        "fd_corrupt",
        &format!(
            "{SHOP}
CREATE FUNCTION wobble(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN $1 + floor(random() * 1000)::int; END $$;
CREATE INDEX orders_wobble ON orders (wobble(customer_id));"
        ),
    )
    .await;
    let path = fx.drill("corrupt", "fd_corrupt", ASSERTIONS);
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(
        r.verdict,
        Verdict::Failed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert_eq!(failed_names(&r), ["indexes are sound"]);
    let a = r.assertions.iter().find(|a| !a.passed).unwrap();
    let actual = a.actual.as_deref().unwrap();
    assert!(actual.contains("orders_wobble"), "{actual}");
    assert!(actual.contains("1 of"), "{actual}");
}

fn xmllint(xml: &Path) {
    let xsd = std::env::var("FIREDRILL_JUNIT_XSD")
        .expect("FIREDRILL_JUNIT_XSD is not set: run the tests with tests/run, which fetches Jenkins' junit-10.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", &xsd])
        .arg(xml)
        .output()
        .expect("xmllint (libxml2-utils) is installed by tests/run");
    assert!(
        out.status.success(),
        "{} does not validate against {xsd}:\n{}",
        xml.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shrink_trips_the_guard_until_accepted_and_reports_are_evidence() {
    create_db("fd_shrink", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("shrink", "fd_shrink", "");
    let catalog: Arc<dyn Catalog> =
        Arc::new(SqliteCatalog::open(&fx.dir.path().join("catalog.db")).unwrap());
    let (pem, public) = firedrill::evidence::generate().unwrap();
    let reports_dir = fx.dir.path().join("reports");
    let writer = Arc::new(ReportWriter {
        dir: Some(reports_dir.clone()),
        signer: Some(firedrill::evidence::signing_key_from_pem(&pem, "key").unwrap()),
    });
    let runner = firedrill::Runner {
        connector: Arc::new(firedrill::LiveConnector),
        catalog: Some(catalog.clone()),
        reports: Some(writer),
        pager: None,
        leases: None,
    };
    let drill = load_drill(&path).unwrap();
    let run = |runner: &firedrill::Runner| {
        let (runner, drill) = (runner.clone(), drill.clone());
        async move {
            let r = runner
                .run(
                    &drill,
                    &RunOptions::default(),
                    &Silent,
                    &firedrill::Stop::new(),
                )
                .await
                .report;
            assert!(leftovers(&r.run_id).await.is_empty(), "sandbox left behind");
            r
        }
    };
    let first = run(&runner).await;
    assert_eq!(
        first.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&first)
    );
    // No earlier run: nothing to compare with, no guard.
    assert!(first.assertions.is_empty());

    // 80% of every table's rows go.
    sh(
        r#"psql -X -q -v ON_ERROR_STOP=1 -d fd_shrink -c "DELETE FROM orders WHERE id % 5 <> 0; DELETE FROM audit.events WHERE ctid IN (SELECT ctid FROM audit.events LIMIT 400); DELETE FROM customers c WHERE c.id % 5 <> 1 AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)""#,
        &[],
    );
    let suspect = run(&runner).await;
    assert_eq!(
        suspect.verdict,
        Verdict::Failed,
        "{}",
        firedrill::report::render_human(&suspect)
    );
    assert_eq!(suspect.failed_stage, Some(Stage::Verify));
    assert!(suspect.fingerprint_mismatches.is_empty());
    let names = failed_names(&suspect);
    assert!(
        names.contains(&"anomaly: total rows".to_string()),
        "{names:?}"
    );
    let rows = suspect
        .assertions
        .iter()
        .find(|a| a.name == "anomaly: total rows")
        .unwrap();
    assert_eq!(
        rows.expected,
        format!("at least 50% of 15500 (run {})", first.run_id)
    );
    assert!(rows.actual.as_deref().unwrap().contains("-80%"), "{rows:?}");
    let hint = suspect.error.as_ref().unwrap().hint.clone().unwrap();
    assert!(hint.contains("firedrill accept"), "{hint}");
    // The suspect artifact does not count as good.
    let arts = catalog.artifacts(Some("shrink")).await.unwrap();
    let a = arts.iter().find(|a| a.run_id == suspect.run_id).unwrap();
    assert_eq!(a.verified, firedrill::catalog::Verified::No);

    // A run that failed for other reasons cannot be accepted; this one can, and then the
    // smaller database is the new normal.
    firedrill::inventory::accept_run(catalog.as_ref(), &suspect.run_id, Some(&drill))
        .await
        .unwrap();
    let arts = catalog.artifacts(Some("shrink")).await.unwrap();
    let a = arts.iter().find(|a| a.run_id == suspect.run_id).unwrap();
    assert_eq!(a.verified, firedrill::catalog::Verified::Yes);
    let after = run(&runner).await;
    assert_eq!(
        after.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&after)
    );
    assert!(after.assertions.iter().all(|a| a.passed));
    assert!(after.assertions[0].expected.contains(&suspect.run_id));

    // Every run wrote JSON, JUnit XML and HTML; the XML validates against Jenkins' schema,
    // for the passing and the failing run alike.
    for r in [&first, &suspect, &after] {
        let base = reports_dir.join("shrink").join(&r.run_id);
        xmllint(&base.with_extension("xml"));
        let html = std::fs::read_to_string(base.with_extension("html")).unwrap();
        assert!(html.contains(&r.run_id) && !html.contains("<script"));
        assert!(base.with_extension("json").exists());
    }
    let xml = std::fs::read_to_string(
        reports_dir
            .join("shrink")
            .join(format!("{}.xml", suspect.run_id)),
    )
    .unwrap();
    assert!(xml.contains("anomaly: total rows"), "{xml}");

    // The signed report checks out, names the artifact by hash, and notices edits and a
    // replaced artifact.
    let json = reports_dir
        .join("shrink")
        .join(format!("{}.json", after.run_id));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let ev = &report["evidence"];
    let artifact = std::fs::read(fx.artifact_path("shrink", &after.run_id)).unwrap();
    assert_eq!(
        ev["artifact_sha256"],
        hex::encode(Sha256::digest(&artifact))
    );
    let manifest = std::fs::read(fx.manifest_path("shrink", &after.run_id)).unwrap();
    assert_eq!(
        ev["manifest_sha256"],
        hex::encode(Sha256::digest(&manifest))
    );
    assert!(
        ev["image_id"].as_str().unwrap().starts_with("sha256:"),
        "{ev}"
    );
    assert!(
        ev["tools"]["dump_tool"]
            .as_str()
            .unwrap()
            .starts_with("pg_dump"),
        "{ev}"
    );
    let verify = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args([
                "evidence",
                "verify",
                "--public-key",
                &public,
                "--drills-dir",
            ])
            .arg(fx.dir.path())
            .arg(file)
            .env("FIREDRILL_CATALOG", fx.dir.path().join("catalog.db"))
            .output()
            .unwrap()
    };
    let out = verify(&json);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("signature: ok"), "{stdout}");
    assert!(stdout.contains("intact"), "{stdout}");

    let edited = fx.dir.path().join("edited.json");
    let text = std::fs::read_to_string(&json).unwrap();
    let rows = format!("\"rows\": {}", after.rows.unwrap());
    assert!(text.contains(&rows));
    std::fs::write(
        &edited,
        text.replace(&rows, &format!("\"rows\": {}", after.rows.unwrap() + 1)),
    )
    .unwrap();
    let out = verify(&edited);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("edited after signing"), "{stderr}");

    flip_byte(&fx.artifact_path("shrink", &after.run_id));
    let out = verify(&json);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no longer matches the report"), "{stderr}");
}

/// `accept` takes a run that failed its anomaly guards alone. A run that also failed one
/// of the drill's own assertions is a broken backup and is refused, whatever the
/// assertion is called: guards are marked as guards, not known by their names, and a
/// drill may not name its own assertions like them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_refuses_a_run_that_failed_a_drill_assertion() {
    create_db("fd_accept", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill(
        "accepting",
        "fd_accept",
        "[[assertion]]\nname = \"all orders are there\"\nsql = \"SELECT count(*) FROM orders\"\nexpect = \">= 12000\"\n",
    );
    let catalog: Arc<dyn Catalog> =
        Arc::new(SqliteCatalog::open(&fx.dir.path().join("catalog.db")).unwrap());
    let runner = firedrill::Runner {
        catalog: Some(catalog.clone()),
        ..bare_runner(firedrill::LiveConnector)
    };
    let drill = load_drill(&path).unwrap();
    let stop = firedrill::Stop::new();
    let first = runner
        .run(&drill, &RunOptions::default(), &Silent, &stop)
        .await
        .report;
    assert_eq!(
        first.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&first)
    );
    sh(
        r#"psql -X -q -v ON_ERROR_STOP=1 -d fd_accept -c "DELETE FROM orders WHERE id % 5 <> 0; DELETE FROM audit.events WHERE ctid IN (SELECT ctid FROM audit.events LIMIT 400)""#,
        &[],
    );
    let second = runner
        .run(&drill, &RunOptions::default(), &Silent, &stop)
        .await
        .report;
    assert_eq!(second.verdict, Verdict::Failed);
    let names = failed_names(&second);
    assert!(
        names.contains(&"anomaly: total rows".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"all orders are there".to_string()),
        "{names:?}"
    );
    let e = firedrill::inventory::accept_run(catalog.as_ref(), &second.run_id, Some(&drill))
        .await
        .unwrap_err();
    assert!(
        e.message
            .contains("did not fail on its anomaly guards alone"),
        "{e}"
    );
    let rec = catalog.run(&second.run_id).await.unwrap().unwrap();
    assert!(!rec.accepted);

    // A drill's own assertion named like a guard does not validate.
    let guardlike = fx.drill(
        "guardlike",
        "fd_accept",
        "[[assertion]]\nname = \"anomaly: total rows\"\nsql = \"SELECT count(*) FROM orders\"\nexpect = \">= 1\"\n",
    );
    let p = load_drill(&guardlike).unwrap_err();
    assert!(
        p.0.iter()
            .any(|x| x.field == "assertion[0].name" && x.message.contains("anomaly guards")),
        "{p}"
    );
}

/// The guards judge every table, not only the totals: one table of several cut to a tenth
/// fails its own guard while the totals pass (−34% rows, under the 50% default), and that
/// run is never the next baseline unless accepted. A queue draining from 10 rows to 1 is
/// under the floor and fails nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_table_cut_to_a_tenth_fails_its_own_guard_and_is_no_baseline() {
    create_db(
        "fd_tables",
        r#"
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 40000) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2));
INSERT INTO orders (customer_id, amount) SELECT 1 + g % 40000, g * 0.75 FROM generate_series(1, 60001) g;
CREATE TABLE items (id bigserial PRIMARY KEY, sku int NOT NULL, qty int NOT NULL);
INSERT INTO items (sku, qty) SELECT g % 97, g % 5 FROM generate_series(1, 60000) g;
CREATE TABLE queue (id serial PRIMARY KEY, job text NOT NULL);
INSERT INTO queue (job) SELECT 'job ' || g FROM generate_series(1, 10) g;
"#,
    )
    .await;
    let fx = Fixture::new();
    let path = fx.drill("tables", "fd_tables", "");
    let catalog: Arc<dyn Catalog> =
        Arc::new(SqliteCatalog::open(&fx.dir.path().join("catalog.db")).unwrap());
    let runner = firedrill::Runner {
        catalog: Some(catalog.clone()),
        ..bare_runner(firedrill::LiveConnector)
    };
    let drill = load_drill(&path).unwrap();
    let run = || async {
        let r = runner
            .run(
                &drill,
                &RunOptions::default(),
                &Silent,
                &firedrill::Stop::new(),
            )
            .await
            .report;
        assert!(leftovers(&r.run_id).await.is_empty(), "sandbox left behind");
        r
    };
    let first = run().await;
    assert_eq!(
        first.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&first)
    );

    sh(
        r#"psql -X -q -v ON_ERROR_STOP=1 -d fd_tables -c "DELETE FROM orders WHERE id % 10 <> 0; DELETE FROM queue WHERE id > 1""#,
        &[],
    );
    // Compared with the first run twice: the suspect run in between is no baseline.
    let mut suspects = Vec::new();
    for _ in 0..2 {
        let r = run().await;
        let human = firedrill::report::render_human(&r);
        assert_eq!(r.verdict, Verdict::Failed, "{human}");
        assert_eq!(r.failed_stage, Some(Stage::Verify), "{human}");
        assert!(r.fingerprint_mismatches.is_empty(), "{human}");
        assert_eq!(failed_names(&r), ["anomaly: public.orders rows"], "{human}");
        let g = r.assertions.iter().find(|a| !a.passed).unwrap();
        assert!(g.guard);
        assert_eq!(
            g.expected,
            format!("at least 50% of 60001 (run {})", first.run_id)
        );
        assert_eq!(g.actual.as_deref(), Some("6000 (-90%)"));
        // The totals shrank too little to notice: that is what the table guards are for.
        let total = r
            .assertions
            .iter()
            .find(|a| a.name == "anomaly: total rows")
            .unwrap();
        assert!(
            total.passed && total.actual.as_deref().unwrap().contains("-34%"),
            "{total:?}"
        );
        assert!(firedrill::verify::only_guards_failed(&r), "{human}");
        let rec = catalog.run(&r.run_id).await.unwrap().unwrap();
        assert!(!rec.accepted);
        let arts = catalog.artifacts(Some("tables")).await.unwrap();
        let a = arts.iter().find(|a| a.run_id == r.run_id).unwrap();
        assert_eq!(a.verified, firedrill::catalog::Verified::No);
        suspects.push(r);
    }
    assert!(!suspects[1]
        .assertions
        .iter()
        .any(|a| a.expected.contains(&suspects[0].run_id)));

    // Accepted, the smaller table is the new normal: every guard passes, the tables' one
    // says what it judged, and the queue was too small to judge.
    firedrill::inventory::accept_run(catalog.as_ref(), &suspects[1].run_id, Some(&drill))
        .await
        .unwrap();
    let after = run().await;
    assert_eq!(
        after.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&after)
    );
    let tables = after
        .assertions
        .iter()
        .find(|a| a.name == "anomaly: tables")
        .unwrap();
    assert!(tables.passed && tables.guard);
    assert!(tables.expected.contains(&suspects[1].run_id), "{tables:?}");
    assert!(
        tables
            .actual
            .as_deref()
            .unwrap()
            .starts_with("3 tables judged, 1 too small to judge"),
        "{tables:?}"
    );
}
