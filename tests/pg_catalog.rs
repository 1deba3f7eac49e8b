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
