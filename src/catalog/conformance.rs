//! What every [`Catalog`] must do with leases and firings, as checks run against the
//! SQLite catalog (its unit tests) and the PostgreSQL one (a test against a real server).
//! Each check uses drill names of its own (`tag`), on a catalog no other check is using.

use std::sync::Arc;

use super::{Catalog, RunClaim};
use crate::status::RunStatus;

fn secs(t: jiff::Timestamp, s: i64) -> jiff::Timestamp {
    t.checked_add(jiff::SignedDuration::from_secs(s))
        .expect("a time in range")
}

fn claim(drill: &str, run: &str, owner: &str, at: jiff::Timestamp, lease_s: i64) -> RunClaim {
    RunClaim {
        drill: drill.into(),
        run_id: run.into(),
        owner: owner.into(),
        at,
        lease_until: secs(at, lease_s),
        firing: None,
    }
}

/// A live run holds its drill against every other process; only an expired lease is
/// reaped; a reaped run is no longer its owner's, and no longer holds the drill.
pub async fn leases(c: &dyn Catalog, tag: &str) {
    let now = jiff::Timestamp::now();
    let d = format!("{tag}-shop");
    let (a, b) = (format!("{tag}-a"), format!("{tag}-b"));
    assert_eq!(
        c.claim_run(&claim(&d, &a, "cli@h:1/1", now, 60))
            .await
            .unwrap(),
        None
    );
    let held = c
        .claim_run(&claim(&d, &b, "daemon@h:2/2", now, 60))
        .await
        .unwrap()
        .expect("a live run holds its drill");
    assert_eq!(
        (held.run_id.as_str(), held.owner.as_str()),
        (a.as_str(), "cli@h:1/1")
    );
    assert!(
        c.run(&b).await.unwrap().is_none(),
        "the refused run is not recorded"
    );
    // A daemon starting now reaps nothing of the live CLI run.
    assert!(c.reap_expired(now).await.unwrap().is_empty());
    assert_eq!(
        c.renew_leases("cli@h:1/1", secs(now, 60)).await.unwrap(),
        vec![a.clone()]
    );
    assert!(c
        .renew_leases("daemon@h:2/2", secs(now, 60))
        .await
        .unwrap()
        .is_empty());
    // Its owner stopped renewing: two minutes on, it is lost.
    let lost = c.reap_expired(secs(now, 120)).await.unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].run.run_id, a);
    assert_eq!(lost[0].owner.as_deref(), Some("cli@h:1/1"));
    assert_eq!(lost[0].firing, None);
    let rec = c.run(&a).await.unwrap().unwrap();
    assert_eq!(rec.status, RunStatus::Lost);
    assert!(rec.error.unwrap().contains("cli@h:1/1"));
    assert!(
        c.renew_leases("cli@h:1/1", secs(now, 180))
            .await
            .unwrap()
            .is_empty(),
        "a run taken from its owner is not renewed: the owner learns to stop it"
    );
    assert!(
        c.reap_expired(secs(now, 120)).await.unwrap().is_empty(),
        "reaped once"
    );
    let latest = c
        .latest_runs(std::slice::from_ref(&d), false)
        .await
        .unwrap();
    assert_eq!(latest[&d].finished.as_ref().unwrap().run_id, a);
    assert_eq!(
        c.claim_run(&claim(&d, &b, "daemon@h:2/2", secs(now, 121), 60))
            .await
            .unwrap(),
        None,
        "a lost run holds nothing"
    );
}

/// Each firing is claimed once; one whose run was lost opens again and is claimed once
/// more, by one process, and never a third time; one handed back at a shutdown opens
/// without using up its attempt.
pub async fn firings(c: &dyn Catalog, tag: &str) {
    let now = jiff::Timestamp::now();
    let d = format!("{tag}-crm");
    let other = format!("{tag}-other");
    let t = jiff::Timestamp::from_second(now.as_second() - now.as_second() % 60).unwrap();
    assert!(c.claim_firing(&d, t, "daemon@a:1/1").await.unwrap());
    assert!(!c.claim_firing(&d, t, "daemon@b:2/2").await.unwrap());
    let mut cl = claim(&d, &format!("{tag}-r1"), "daemon@a:1/1", now, 5);
    cl.firing = Some(t);
    assert_eq!(c.claim_run(&cl).await.unwrap(), None);
    assert!(c
        .claim_open_firing(std::slice::from_ref(&d), "daemon@b:2/2")
        .await
        .unwrap()
        .is_none());
    let lost = c.reap_expired(secs(now, 10)).await.unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!(
        lost[0].firing,
        Some((t, true)),
        "opened again for a survivor"
    );
    assert!(c
        .claim_open_firing(std::slice::from_ref(&other), "daemon@b:2/2")
        .await
        .unwrap()
        .is_none());
    let open = c
        .claim_open_firing(&[other.clone(), d.clone()], "daemon@b:2/2")
        .await
        .unwrap()
        .expect("the lost firing is open");
    assert_eq!(
        (open.drill.as_str(), open.scheduled_for, open.attempt),
        (d.as_str(), t, 2)
    );
    assert!(
        c.claim_open_firing(std::slice::from_ref(&d), "daemon@c:3/3")
            .await
            .unwrap()
            .is_none(),
        "claimed once"
    );
    let mut cl = claim(&d, &format!("{tag}-r2"), "daemon@b:2/2", secs(now, 10), 5);
    cl.firing = Some(t);
    assert_eq!(c.claim_run(&cl).await.unwrap(), None);
    let lost = c.reap_expired(secs(now, 20)).await.unwrap();
    assert_eq!(
        lost[0].firing,
        Some((t, false)),
        "a firing is run again once, not twice"
    );
    assert!(c
        .claim_open_firing(std::slice::from_ref(&d), "daemon@c:3/3")
        .await
        .unwrap()
        .is_none());

    // A rolling restart hands a firing over: the survivor's claim is its first attempt.
    let t2 = secs(t, 60);
    assert!(c.claim_firing(&d, t2, "daemon@a:1/1").await.unwrap());
    c.reopen_firing(&d, t2).await.unwrap();
    let open = c
        .claim_open_firing(std::slice::from_ref(&d), "daemon@b:2/2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((open.scheduled_for, open.attempt), (t2, 1));
}

/// Many processes claiming one firing, and one open firing, at once: one wins each.
pub async fn racing_claims(c: Arc<dyn Catalog>, tag: &str) {
    let d = format!("{tag}-race");
    let t = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (c, d) = (c.clone(), d.clone());
            tokio::spawn(async move {
                c.claim_firing(&d, t, &format!("daemon@h:{i}/1"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    c.reopen_firing(&d, t).await.unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (c, d) = (c.clone(), d.clone());
            tokio::spawn(async move {
                c.claim_open_firing(&[d], &format!("daemon@h:{i}/1"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(won, 1);
    // And many runs of one drill at once: one holds it.
    let now = jiff::Timestamp::now();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (c, d) = (c.clone(), d.clone());
            let run = format!("{d}-run{i}");
            tokio::spawn(async move {
                c.claim_run(&claim(&d, &run, &format!("cli@h:{i}/1"), now, 60))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap().is_none());
    }
    assert_eq!(won, 1);
}

/// An owner known to be gone has its runs' leases ended at once.
pub async fn gone_owners(c: &dyn Catalog, tag: &str) {
    let now = jiff::Timestamp::now();
    let d = format!("{tag}-gone");
    let run = format!("{tag}-g1");
    let owner = format!("daemon@{tag}:1/1");
    assert_eq!(
        c.claim_run(&claim(&d, &run, &owner, now, 600))
            .await
            .unwrap(),
        None
    );
    assert!(c.run_owners().await.unwrap().contains(&owner));
    assert!(c.reap_expired(now).await.unwrap().is_empty());
    assert_eq!(c.expire_owner(&owner).await.unwrap(), 1);
    let lost = c.reap_expired(now).await.unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].run.run_id, run);
    assert!(!c.run_owners().await.unwrap().contains(&owner));
}

/// Daemons say they are alive with their drills; only those seen since `since` are read.
pub async fn daemons_seen(c: &dyn Catalog, tag: &str) {
    let now = jiff::Timestamp::now();
    let me = super::DaemonSeen {
        id: format!("daemon@{tag}:1/1#x"),
        seen_at: now,
        drills: [("shop".to_string(), "abc".to_string())].into(),
    };
    let old = super::DaemonSeen {
        id: format!("daemon@{tag}:2/1#x"),
        seen_at: secs(now, -120),
        drills: Default::default(),
    };
    c.report_daemon(&old, secs(now, -600)).await.unwrap();
    let seen = c.report_daemon(&me, secs(now, -30)).await.unwrap();
    let mine: Vec<_> = seen.iter().filter(|s| s.id.contains(tag)).collect();
    assert_eq!(mine.len(), 1, "{seen:?}");
    assert_eq!(mine[0].drills, me.drills);
    assert_eq!(mine[0].seen_at.as_millisecond(), now.as_millisecond());
}

/// The audit trail: appended in order, read newest first, by window and by page; a
/// session keeps who opened it; a login state is taken back once, and never once expired.
pub async fn audit_and_logins(c: &dyn Catalog, tag: &str) {
    use crate::access::{
        Action, Actor, ActorKind, AuditEntry, AuditQuery, Outcome, Principal, Role,
    };
    let t0 = jiff::Timestamp::now();
    let mut ids = Vec::new();
    for i in 0..5i64 {
        let mut e = AuditEntry::new(
            Actor::new(ActorKind::Token, format!("{tag}-ci")),
            if i % 2 == 0 {
                Action::Trigger
            } else {
                Action::Cancel
            },
            if i == 4 { Outcome::Denied } else { Outcome::Ok },
        )
        .target(format!("{tag}-shop"))
        .source("203.0.113.7")
        .detail(format!("entry {i}"));
        e.role = Some(Role::Operator);
        e.at = secs(t0, i * 10);
        ids.push(c.record_audit(&e).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    let mine = |v: Vec<AuditEntry>| -> Vec<AuditEntry> {
        v.into_iter()
            .filter(|e| e.actor.name == format!("{tag}-ci"))
            .collect()
    };
    let all = mine(
        c.audit(&AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap(),
    );
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].detail.as_deref(), Some("entry 4"), "newest first");
    assert_eq!(all[0].outcome, Outcome::Denied);
    assert_eq!(all[0].role, Some(Role::Operator));
    assert_eq!(all[0].source.as_deref(), Some("203.0.113.7"));
    assert_eq!(all[4].action, Action::Trigger);
    assert_eq!(all[4].at.as_millisecond(), t0.as_millisecond());
    let window = mine(
        c.audit(&AuditQuery {
            since: Some(secs(t0, 10)),
            until: Some(secs(t0, 30)),
            limit: 1000,
            before: None,
        })
        .await
        .unwrap(),
    );
    assert_eq!(
        window
            .iter()
            .filter_map(|e| e.detail.clone())
            .collect::<Vec<_>>(),
        ["entry 3", "entry 2", "entry 1"]
    );
    let page = mine(
        c.audit(&AuditQuery {
            before: Some(ids[2]),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap(),
    );
    assert_eq!(page.len(), 2, "the page before entry 2");

    // Sessions keep who opened them.
    let who = Principal {
        actor: Actor::new(ActorKind::Sso, format!("{tag}@example.test")),
        role: Role::Viewer,
        drills: Some(vec!["orders-*".into()]),
    };
    let s = super::Session {
        id_hash: format!("{tag}-session"),
        token_tag: "tag".into(),
        expires_at: t0.as_second() + 3600,
        who: Some(who.clone()),
    };
    c.put_session(&s).await.unwrap();
    assert_eq!(c.session(&s.id_hash).await.unwrap(), Some(s.clone()));

    // A login state: once, and not after it expired.
    let now = t0.as_second();
    c.put_login_state(&format!("{tag}-st"), "{\"v\":1}", now + 600)
        .await
        .unwrap();
    assert_eq!(
        c.take_login_state(&format!("{tag}-st"))
            .await
            .unwrap()
            .as_deref(),
        Some("{\"v\":1}")
    );
    assert_eq!(
        c.take_login_state(&format!("{tag}-st")).await.unwrap(),
        None,
        "once"
    );
    c.put_login_state(&format!("{tag}-old"), "x", now - 1)
        .await
        .unwrap();
    assert_eq!(
        c.take_login_state(&format!("{tag}-old")).await.unwrap(),
        None
    );
}
