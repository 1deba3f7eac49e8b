//! No customer data leaves a failed restore. The tools a restore runs quote what they
//! choke on: MariaDB's client its failed statement and `Duplicate entry '…'`, pg_restore
//! and psql a COPY's row (`CONTEXT:  COPY t, line 2: "…"`) and a key's values
//! (`DETAIL:  Key (email)=(…)`). What firedrill keeps of them goes to reports, the
//! catalog and pages, read by people who are not allowed to read the data. Recognisable
//! values are planted in real PostgreSQL and MariaDB sources; their dumps are doctored so
//! that each restore fails on the planted rows (with the manifest made to agree, so that
//! the damage gets past the hash); each run goes through a [`Runner`] with a catalog,
//! report files and a pager to a webhook. None of the planted values may appear in a
//! report, a catalog row or a page, while each error still says what the tool said.

mod support;

use std::path::Path;
use std::sync::Arc;

use firedrill::catalog::{Catalog, SqliteCatalog};
use firedrill::evidence::ReportWriter;
use firedrill::notify::{Page, Pager};
use firedrill::{load_drill, LiveConnector, RunOptions, RunReport, Runner, Silent, Stage, Verdict};
use support::daemon::Received;
use support::*;

/// What is planted, as it may be printed (case does not matter).
const PLANTED: [&str; 9] = [
    "planted-7f3a@example.com",
    "planted-7f3b@example.com",
    "planted-7f3c@example.com",
    "planted-7f3d@example.com",
    "Zebulon Quixwort",
    "Ysolde",
    "Brackenbury",
    "deadbeefcafe0f3",
    "PLANTED-NOTE-91c2",
];

/// A runner recording in a catalog and report files, paging a webhook.
struct World {
    fx: Fixture,
    catalog: Arc<dyn Catalog>,
    runner: Runner,
    pages: Received,
}

impl World {
    async fn new() -> World {
        let fx = Fixture::new();
        let catalog: Arc<dyn Catalog> =
            Arc::new(SqliteCatalog::open(&fx.dir.path().join("catalog.db")).unwrap());
        let (url, pages) = support::daemon::receiver().await;
        let file: firedrill::config::notify::NotifyConfig = toml::from_str(&format!(
            "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{url}\"\n"
        ))
        .unwrap();
        let spec = firedrill::config::notify::validate(&file).unwrap();
        let runner = Runner {
            connector: Arc::new(LiveConnector),
            catalog: Some(catalog.clone()),
            reports: Some(Arc::new(ReportWriter {
                dir: Some(fx.dir.path().join("reports")),
                signer: None,
            })),
            pager: Pager::new(&spec, fx.dir.path()).unwrap().map(Arc::new),
            leases: None,
        };
        World {
            fx,
            catalog,
            runner,
            pages,
        }
    }

    async fn run(&self, path: &Path, artifact: Option<&str>) -> RunReport {
        let drill = load_drill(path).unwrap_or_else(|p| panic!("{p}"));
        let opts = RunOptions {
            artifact: artifact.map(String::from),
            ..Default::default()
        };
        let ran = self
            .runner
            .run(&drill, &opts, &Silent, &firedrill::Stop::new())
            .await;
        if ran.report.verdict != Verdict::Passed {
            let paged = ran.paged.expect("a pager").expect("paged");
            assert_eq!(paged.delivery.sent, 1, "{paged:?}");
        }
        ran.report
    }

    /// Runs the drill once (it passes), doctors its dump with `change`, and drills the
    /// doctored artifact: it fails at restore.
    async fn broken(&self, path: &Path, change: impl FnOnce(&[u8]) -> Vec<u8>) -> RunReport {
        let good = self.run(path, None).await;
        assert_eq!(
            good.verdict,
            Verdict::Passed,
            "{}",
            firedrill::report::render_human(&good)
        );
        doctor_dump(&self.fx, &good.drill, &good.run_id, change);
        let bad = self.run(path, Some(&good.run_id)).await;
        eprintln!("{}", firedrill::report::render_human(&bad));
        assert_eq!(bad.verdict, Verdict::Failed);
        assert_eq!(bad.failed_stage, Some(Stage::Restore));
        assert!(leftovers(&bad.run_id).await.is_empty());
        bad
    }

    /// Everything the runs left for people to read: reports (as the API serves them, as
    /// the CLI prints them, as written to files), the catalog (its runs, its outbox, its
    /// file), and the pages the webhook got (as sent, and as the text channels render).
    async fn everything(&self, reports: &[&RunReport]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for r in reports {
            out.push((
                format!("report {} (JSON)", r.run_id),
                serde_json::to_string(r).unwrap(),
            ));
            out.push((
                format!("report {} (human)", r.run_id),
                firedrill::report::render_human(r),
            ));
        }
        for f in support::files_under(&self.fx.dir.path().join("reports")) {
            out.push((
                format!("report file {}", f.display()),
                String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned(),
            ));
        }
        for run in self.catalog.runs(None, 1000).await.unwrap() {
            out.push((
                format!("catalog run {} (error)", run.run_id),
                run.error.unwrap_or_default(),
            ));
            out.push((
                format!("catalog run {} (report)", run.run_id),
                run.report.unwrap_or_default(),
            ));
        }
        for item in self.catalog.outbox(1000).await.unwrap() {
            out.push((format!("outbox item {}", item.id), item.payload));
        }
        for f in support::files_under(self.fx.dir.path())
            .into_iter()
            .filter(|f| {
                f.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("catalog.db")
            })
        {
            out.push((
                format!("catalog file {}", f.display()),
                String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned(),
            ));
        }
        for p in self.pages.lock().unwrap().iter() {
            out.push(("page (webhook body)".into(), p.to_string()));
            let page: Page = serde_json::from_value(p.clone()).unwrap();
            out.push(("page (text)".into(), page.text()));
        }
        out
    }

    /// No planted value in anything the runs left, and as many pages as failed runs.
    async fn assert_no_planted_value(&self, reports: &[&RunReport]) {
        let failed = reports
            .iter()
            .filter(|r| r.verdict != Verdict::Passed)
            .count();
        assert_eq!(
            self.pages.lock().unwrap().len(),
            failed,
            "one page per failed drill"
        );
        let everything = self.everything(reports).await;
        assert!(everything
            .iter()
            .any(|(w, _)| w.starts_with("catalog file")));
        assert!(everything.iter().any(|(w, _)| w.starts_with("report file")));
        let mut found = Vec::new();
        for (what, text) in &everything {
            let text = text.to_lowercase();
            for v in PLANTED {
                if text.contains(&v.to_lowercase()) {
                    found.push(format!("`{v}` in {what}"));
                }
            }
        }
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

fn error_of(r: &RunReport) -> (String, String) {
    let e = r.error.as_ref().unwrap();
    (e.message.clone(), e.stderr_tail.clone().unwrap_or_default())
}

const PG_PLANTED: &str = r#"
CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE, name text, photo bytea);
INSERT INTO customers VALUES
  (1, 'planted-7f3a@example.com', 'Zebulon Quixwort', '\xdeadbeefcafe0f3a'),
  (2, 'planted-7f3b@example.com', 'Ysolde Brackenbury', '\xdeadbeefcafe0f3b'),
  (3, 'planted-7f3c@example.com', 'Ottoline Planted', '\xdeadbeefcafe0f3c');
INSERT INTO customers SELECT 100 + g, 'filler' || g || '@example.org', 'filler ' || g, NULL FROM generate_series(1, 200) g;
CREATE TABLE orders (id int PRIMARY KEY, customer_email text REFERENCES customers (email), note text);
INSERT INTO orders VALUES (1, 'planted-7f3c@example.com', 'PLANTED-NOTE-91c2: leave it at the back door');
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restore_failures_keep_no_planted_value() {
    let w = World::new().await;
    let mut reports = Vec::new();

    // A duplicate in a unique column: pg_restore quotes the key's value.
    create_db("fd_planted_dup", PG_PLANTED).await;
    let r = w
        .broken(&w.fx.drill("pgdup", "fd_planted_dup", ""), |d| {
            replace_bytes(
                d,
                b"planted-7f3b@example.com",
                b"planted-7f3a@example.com",
                false,
            )
        })
        .await;
    let (message, kept) = error_of(&r);
    assert!(
        message.contains("pg_restore could not restore the dump")
            && message.contains("could not create unique index \"customers_email_key\""),
        "{message}"
    );
    assert!(kept.contains("DETAIL:  Key (email)=[elided]"), "{kept}");
    assert!(kept.contains("Command was: ALTER [elided]"), "{kept}");
    reports.push(r);

    // A row with a column too many: pg_restore quotes the whole row.
    create_db("fd_planted_row", PG_PLANTED).await;
    let r = w
        .broken(&w.fx.drill("pgrow", "fd_planted_row", ""), |d| {
            replace_bytes(d, b"Ysolde Brackenbury", b"Ysolde\tBrackenbury", false)
        })
        .await;
    let (message, kept) = error_of(&r);
    assert!(
        message.contains("COPY failed for table \"customers\"")
            && message.contains("extra data after last expected column"),
        "{message}"
    );
    assert!(kept.contains("CONTEXT:  COPY customers, line 2"), "{kept}");
    reports.push(r);

    // A foreign key to nobody: pg_restore quotes the missing key.
    create_db("fd_planted_fk", PG_PLANTED).await;
    let r = w
        .broken(&w.fx.drill("pgfk", "fd_planted_fk", ""), |d| {
            replace_bytes(
                d,
                b"planted-7f3c@example.com",
                b"planted-7f3d@example.com",
                true,
            )
        })
        .await;
    let (message, kept) = error_of(&r);
    assert!(
        message.contains("violates foreign key constraint"),
        "{message}"
    );
    assert!(
        kept.contains("DETAIL:  Key (customer_email)=[elided]"),
        "{kept}"
    );
    reports.push(r);

    // A plain SQL file of another tool, restored by psql, with a column too many in a
    // COPY row: psql quotes the row.
    let dump = std::process::Command::new("pg_dump")
        .args(["-Fp", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(pg().port.to_string())
        .arg("fd_planted_dup")
        .env("PGPASSWORD", pg().password)
        .output()
        .unwrap();
    assert!(dump.status.success(), "{dump:?}");
    let doctored = replace_bytes(
        &dump.stdout,
        b"Ysolde Brackenbury",
        b"Ysolde\tBrackenbury",
        false,
    );
    let legacy = w.fx.store().join("legacy");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(legacy.join("nightly.sql"), doctored).unwrap();
    let path = w.fx.write_drill(
        "pgplain",
        "[source]\ntype = \"stored\"\nengine = \"postgres\"\nversion = \"15\"\ndatabase = \"restored\"\nprefix = \"legacy/\"",
        "1GiB",
        "",
    );
    let r = w.run(&path, None).await;
    eprintln!("{}", firedrill::report::render_human(&r));
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let (message, kept) = error_of(&r);
    assert!(
        message.contains("psql could not restore the dump at line ")
            && message.contains("extra data after last expected column"),
        "{message}"
    );
    assert!(kept.contains("CONTEXT:  COPY customers, line 2"), "{kept}");
    assert!(leftovers(&r.run_id).await.is_empty());
    reports.push(r);

    let reports: Vec<&RunReport> = reports.iter().collect();
    w.assert_no_planted_value(&reports).await;
}

const MY_PLANTED: &[&str] = &[
    // The e-mail is the primary key: the dump turns secondary unique checks off, not the
    // primary key's.
    "CREATE TABLE customers (email VARCHAR(100) PRIMARY KEY, id INT, name VARCHAR(100), photo VARBINARY(16))",
    "INSERT INTO customers VALUES \
      ('planted-7f3a@example.com', 1, 'Zebulon Quixwort', UNHEX('DEADBEEFCAFE0F3A')), \
      ('planted-7f3b@example.com', 2, 'Ysolde Brackenbury', UNHEX('DEADBEEFCAFE0F3B')), \
      ('planted-7f3c@example.com', 3, 'Ottoline Planted', UNHEX('DEADBEEFCAFE0F3C'))",
    "INSERT INTO customers SELECT CONCAT('filler', seq, '@example.org'), 100 + seq, CONCAT('filler ', seq), NULL FROM seq_1_to_200",
    "CREATE TABLE orders (id INT PRIMARY KEY, customer_email VARCHAR(100), note TEXT)",
    "INSERT INTO orders VALUES (1, 'planted-7f3c@example.com', 'PLANTED-NOTE-91c2: leave it at the back door')",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restore_failures_keep_no_planted_value() {
    let w = World::new().await;
    let mut reports = Vec::new();

    // A duplicate primary key: the client quotes the entry, and (MariaDB's, by default)
    // the whole failed statement. (A duplicate within the dump's one INSERT of a table
    // fails at COMMIT without naming it: the server loads an empty table in bulk.)
    create_my_db("fd_planted_mydup", MY_PLANTED).await;
    let path =
        w.fx.my_drill("mydup", "database = \"fd_planted_mydup\"", "");
    let r = w
        .broken(&path, |d| {
            let insert = b"INSERT INTO `customers` VALUES";
            let at = d.windows(insert.len()).position(|x| x == insert).unwrap();
            // The statement ends its last row's line (one row a line in MariaDB's dumps).
            let end = at + d[at..].windows(2).position(|x| x == b";\n").unwrap() + 2;
            let again = b"INSERT INTO `customers` VALUES ('planted-7f3a@example.com',9,'Zebulon Quixwort',0xDEADBEEFCAFE0F3A),('planted-7f3d@example.com',10,'Ysolde Brackenbury',NULL);\n";
            [&d[..end], again.as_slice(), &d[end..]].concat()
        })
        .await;
    let (message, kept) = error_of(&r);
    assert!(
        message.contains("the client could not restore the dump: ERROR 1062 (23000) at line ")
            && message.ends_with("Duplicate entry [elided]"),
        "{message}"
    );
    assert!(kept.starts_with("ERROR 1062 (23000) at line "), "{kept}");
    reports.push(r);

    // A dump cut inside an INSERT: the client quotes the statement from where it stopped.
    create_my_db("fd_planted_mycut", MY_PLANTED).await;
    let path =
        w.fx.my_drill("mycut", "database = \"fd_planted_mycut\"", "");
    let r = w
        .broken(&path, |d| {
            let at = d
                .windows(b"planted-7f3a@exa".len())
                .position(|x| x == b"planted-7f3a@exa")
                .unwrap();
            d[..at + b"planted-7f3a@exa".len()].to_vec()
        })
        .await;
    let (message, kept) = error_of(&r);
    assert!(
        message.contains("does not parse") && message.contains("(1064)"),
        "{message}"
    );
    assert!(kept.contains("near [elided] at line "), "{kept}");
    reports.push(r);

    let reports: Vec<&RunReport> = reports.iter().collect();
    w.assert_no_planted_value(&reports).await;
}
