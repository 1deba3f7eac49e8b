//! The shared catalog on a real PostgreSQL server: the same leases, firings and claims as
//! the SQLite one (the conformance checks), several processes' worth of handles on one
//! database, the outbox claimed row by row, and what a wrong URL or password says.

mod support;

use std::sync::Arc;

use firedrill::catalog::{Catalog, PgCatalog, PgLocation};
use firedrill::secret::Secret;
use support::{create_db, pg};

/// A fresh catalog database on the test server, and a handle on it.
async fn catalog(db: &str, spool: &std::path::Path) -> PgCatalog {
    create_db(db, "").await;
    connect(db, spool).await
}

async fn connect(db: &str, spool: &std::path::Path) -> PgCatalog {
    let p = pg();
    let loc = PgLocation {
        url: format!("postgres://postgres@127.0.0.1:{}/{db}", p.port),
        password: Some(Secret::new(p.password)),
        ca: None,
    };
    PgCatalog::connect(&loc, &spool.join("catalog"))
        .await
        .expect("the PostgreSQL catalog opens")
}

#[tokio::test]
async fn leases_firings_and_racing_claims_as_every_catalog_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = catalog("fdcat_conformance", dir.path()).await;
    firedrill::catalog::conformance::leases(&c, "l").await;
    firedrill::catalog::conformance::firings(&c, "f").await;
    firedrill::catalog::conformance::gone_owners(&c, "g").await;
    firedrill::catalog::conformance::daemons_seen(&c, "d").await;
    firedrill::catalog::conformance::audit_and_logins(&c, "a").await;
    firedrill::catalog::conformance::racing_claims(Arc::new(c), "r").await;
    // Three daemons: three pools on one database, racing for one firing.
    let handles: Vec<Arc<PgCatalog>> = vec![
        Arc::new(connect("fdcat_conformance", dir.path()).await),
        Arc::new(connect("fdcat_conformance", dir.path()).await),
        Arc::new(connect("fdcat_conformance", dir.path()).await),
    ];
    let at = jiff::Timestamp::from_second(1_900_000_000).unwrap();
    let tasks: Vec<_> = handles
        .iter()
        .enumerate()
        .flat_map(|(i, h)| {
            (0..4).map(move |j| {
                let h = h.clone();
                tokio::spawn(async move {
                    h.claim_firing("shared", at, &format!("daemon@{i}:{j}/1"))
                        .await
                        .unwrap()
                })
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "one firing, one claim, across three daemons");
}

/// Three senders draining one outbox at once send every page exactly once.
#[tokio::test]
async fn three_senders_claim_each_page_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = catalog("fdcat_outbox", dir.path()).await;
    let now = jiff::Timestamp::now();
    for i in 0..60 {
        c.enqueue(
            "ops",
            &format!("d{i}"),
            firedrill::status::PageKind::Trigger,
            "{}",
            now,
        )
        .await
        .unwrap();
    }
    let senders: Vec<Arc<PgCatalog>> = vec![
        Arc::new(c),
        Arc::new(connect("fdcat_outbox", dir.path()).await),
        Arc::new(connect("fdcat_outbox", dir.path()).await),
    ];
    let hold = now
        .checked_add(jiff::SignedDuration::from_secs(300))
        .unwrap();
    let tasks: Vec<_> = senders
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut after = 0;
                while let Some(item) = s.claim_due(now, after, hold).await.unwrap() {
                    after = item.id;
                    got.push(item.id);
                    s.mark_sent(item.id).await.unwrap();
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!((n, all.len()), (60, 60), "every page once");
    assert!(senders[0].claim_due(hold, 0, hold).await.unwrap().is_none());
}

/// A wrong password and a server that is not there are infrastructure errors that name
/// the catalog (never the password) and say what to check; a URL with a password in it is
/// refused.
#[tokio::test]
async fn a_catalog_that_cannot_be_reached_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = pg();
    let wrong = PgLocation {
        url: format!("postgres://postgres@127.0.0.1:{}/postgres", p.port),
        password: Some(Secret::new("not-the-password")),
        ca: None,
    };
    let e = PgCatalog::connect(&wrong, dir.path()).await.err().unwrap();
    let text = format!("{e} {}", e.hint.clone().unwrap_or_default());
    assert!(text.contains("postgres://postgres@127.0.0.1"), "{text}");
    assert!(text.contains("password"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    let inline = PgLocation {
        url: format!("postgres://postgres:hunter2@127.0.0.1:{}/postgres", p.port),
        password: None,
        ca: None,
    };
    let e = PgCatalog::connect(&inline, dir.path()).await.err().unwrap();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.hint.unwrap().contains("catalog_password"));
    let nobody = PgLocation {
        url: "postgres://postgres@127.0.0.1:9/postgres".into(),
        password: None,
        ca: None,
    };
    let e = PgCatalog::connect(&nobody, dir.path()).await.err().unwrap();
    assert_eq!(e.kind, firedrill::error::ErrorKind::Infrastructure, "{e}");
    assert!(e.retryable, "{e}");
}

/// `catalog migrate` copies an SQLite catalog (runs, an accepted baseline, artifacts, an
/// open incident, the outbox, digests) into the PostgreSQL one the config names; a
/// second migration copies nothing twice; a source with a run still running is refused.
#[tokio::test]
async fn catalog_migrate_copies_an_sqlite_catalog_once() {
    use firedrill::catalog::{ArtifactRecord, Incident, PagePlan, QueuedPage, SqliteCatalog};
    use firedrill::report::RunReport;
    use firedrill::status::{PageKind, RunStatus, Severity, Verdict, Verified};
    let dir = tempfile::tempdir().unwrap();
    create_db("fdcat_migrate", "").await;
    let file = dir.path().join("old.db");
    let old = SqliteCatalog::open(&file).unwrap();
    let t0 = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    for (i, verdict) in [Verdict::Passed, Verdict::Failed, Verdict::Passed]
        .into_iter()
        .enumerate()
    {
        let at = t0
            .checked_add(jiff::SignedDuration::from_hours(i as i64))
            .unwrap();
        let mut r = RunReport::empty("shop", &format!("run{i}"), at);
        r.verdict = verdict;
        let a = ArtifactRecord {
            drill: "shop".into(),
            run_id: format!("run{i}"),
            created_at: at,
            engine: firedrill::engine::kind::Engine::Postgres,
            plain_bytes: 10,
            encrypted_bytes: 20,
            sha256: "ab".repeat(32),
            location: format!("shop/run{i}/dump"),
            manifest_key: format!("shop/run{i}/manifest.json"),
            verified: Verified::Never,
            verified_at: None,
        };
        old.put_artifact(&a).await.unwrap();
        old.run_finished(&r, Some(&a.run_id)).await.unwrap();
    }
    old.accept_run("run1", t0).await.unwrap();
    let incident = Incident {
        drill: "crm".into(),
        opened_at: t0,
        last_paged_at: t0,
        severity: Severity::Critical,
        stage: None,
        run_id: "crm1".into(),
        channels: vec!["ops".into()],
    };
    let page = |id: &str, delivered| QueuedPage {
        page_id: id.into(),
        channel: "ops".into(),
        drill: "crm".into(),
        kind: PageKind::Trigger,
        payload: "{}".into(),
        at: t0,
        delivered,
    };
    old.record_pages(&PagePlan {
        pages: vec![
            page("crm1/trigger/ops", true),
            page("crm2/trigger/ops", false),
        ],
        incident: firedrill::catalog::IncidentChange::Put(incident.clone()),
    })
    .await
    .unwrap();
    old.enqueue("ops", "crm", PageKind::Trigger, "{}", t0)
        .await
        .unwrap();
    assert!(old.claim_digest(t0).await.unwrap());
    drop(old);

    let p = pg();
    let url = format!("postgres://postgres@127.0.0.1:{}/fdcat_migrate", p.port);
    let config = dir.path().join("firedrill.toml");
    std::fs::write(
        &config,
        format!("catalog = \"{url}\"\ncatalog_password = {{ env = \"FD_TEST_CATALOG_PW\" }}\n"),
    )
    .unwrap();
    let migrate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .arg("--config")
            .arg(&config)
            .args(["catalog", "migrate", "--json", "--from"])
            .arg(&file)
            .env("FD_TEST_CATALOG_PW", &p.password)
            .output()
            .unwrap()
    };
    let out = migrate();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["copied"]["runs"], 3, "{v}");
    assert_eq!(v["copied"]["artifacts"], 3, "{v}");
    assert_eq!(v["copied"]["incidents"], 1, "{v}");
    assert_eq!(v["copied"]["outbox"], 3, "{v}");
    assert_eq!(v["copied"]["digests"], 1, "{v}");

    let c = connect("fdcat_migrate", dir.path()).await;
    let runs = c.runs(Some("shop"), 10).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].run_id, "run2");
    let run1 = c.run("run1").await.unwrap().unwrap();
    assert!(run1.accepted && run1.status == RunStatus::Failed);
    let arts = c.artifacts(Some("shop")).await.unwrap();
    assert_eq!(arts.len(), 3);
    assert_eq!(
        arts.iter().find(|a| a.run_id == "run1").unwrap().verified,
        Verified::Yes,
        "the accepted run's artifact counts as good"
    );
    assert_eq!(c.incident("crm").await.unwrap(), Some(incident));
    let outbox = c.outbox(10).await.unwrap();
    assert_eq!(outbox.len(), 3);
    assert_eq!(
        c.due(jiff::Timestamp::now(), 10).await.unwrap().len(),
        2,
        "the pending ones stay pending"
    );
    assert!(
        !c.claim_digest(t0).await.unwrap(),
        "a digest sent before is not sent again"
    );
    let latest = c.latest_runs(&["shop".into()], false).await.unwrap();
    assert_eq!(latest["shop"].passed.as_ref().unwrap().run_id, "run2");

    // Again: nothing is copied twice.
    let out = migrate();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success());
    for t in ["runs", "artifacts", "incidents", "outbox", "digests"] {
        assert_eq!(v["copied"][t], 0, "{t}: {v}");
    }
    assert_eq!(c.outbox(10).await.unwrap().len(), 3);

    // A run still running in the source: refused, naming it.
    let old = SqliteCatalog::open(&file).unwrap();
    let now = jiff::Timestamp::now();
    old.claim_run(&firedrill::catalog::RunClaim {
        drill: "shop".into(),
        run_id: "live".into(),
        owner: "daemon@h:1/1".into(),
        at: now,
        lease_until: now
            .checked_add(jiff::SignedDuration::from_secs(60))
            .unwrap(),
        firing: None,
    })
    .await
    .unwrap();
    let out = migrate();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("live") && err.contains("stop the daemon"),
        "{err}"
    );
}
