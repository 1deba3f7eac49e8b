//! `GET /api/v1/drills`, kept ready. Dashboards and monitoring poll the list of every
//! drill with its last runs; with a thousand drills, building it (a catalog read, a
//! thousand cron `next_run`s, 200 KB of JSON) took 4 ms of CPU per request, and on a host
//! busy with twenty drills that CPU waited its turn behind them (p99 over 50 ms). The body
//! is built once and served until it could differ from a fresh one:
//! - the drills were reloaded (another definitions map);
//! - a run finished, was lost or was accepted ([`Catalog::runs_version`]: at once for this
//!   daemon's runs; within a second for other processes sharing the catalog, which
//!   [`listing_loop`] polls for);
//! - the soonest `next_run` in it has come (every later request would compute another).
//!
//! A request that finds the body stale builds it itself (so a client that saw its run
//! finish sees it listed), one build at a time; [`listing_loop`] rebuilds in the
//! background as soon as something changes, so requests seldom do.
//!
//! [`Catalog::runs_version`]: crate::catalog::Catalog::runs_version

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;

use super::Daemon;
use crate::config::Drill;
use crate::error::{Error, Result};
use crate::listing::DrillSummary;

/// How often other processes' writes to a shared catalog are looked for.
const POLL: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(super) struct Listing {
    current: Mutex<Option<Arc<Snapshot>>>,
    /// One build at a time: requests that find the body stale wait for the build under
    /// way instead of each making their own.
    building: tokio::sync::Mutex<()>,
}

struct Snapshot {
    body: Bytes,
    drills: Arc<BTreeMap<String, Drill>>,
    runs_version: u64,
    /// The soonest `next_run` in the body: from then on, it says something past.
    until: jiff::Timestamp,
}

impl Listing {
    /// The JSON body of `GET /api/v1/drills`, as a fresh build would make it now.
    pub(super) async fn body(&self, d: &Daemon) -> Result<Bytes> {
        if let Some(s) = self.fresh(d) {
            return Ok(s.body.clone());
        }
        let _one = self.building.lock().await;
        if let Some(s) = self.fresh(d) {
            return Ok(s.body.clone());
        }
        let s = Arc::new(build(d).await?);
        let body = s.body.clone();
        *self.current.lock().expect("listing lock") = Some(s);
        Ok(body)
    }

    /// The snapshot, if a build now would give the same body.
    fn fresh(&self, d: &Daemon) -> Option<Arc<Snapshot>> {
        let s = self.current.lock().expect("listing lock").clone()?;
        let same = Arc::ptr_eq(&s.drills, &d.drills())
            && s.runs_version == *d.runs_version.borrow()
            && jiff::Timestamp::now() < s.until;
        same.then_some(s)
    }

    /// When the current snapshot's `next_run`s run out; `None` before the first request.
    fn until(&self) -> Option<jiff::Timestamp> {
        self.current
            .lock()
            .expect("listing lock")
            .as_ref()
            .map(|s| s.until)
    }
}

async fn build(d: &Daemon) -> Result<Snapshot> {
    // Taken before the read: a run finishing during it leaves the snapshot older than the
    // version, so the next request builds again rather than keeping a stale body.
    let runs_version = *d.runs_version.borrow();
    let drills = d.drills();
    let now = jiff::Timestamp::now();
    let names: Vec<String> = drills.keys().cloned().collect();
    let mut latest = d.catalog.latest_runs(&names, false).await?;
    let mut until = jiff::Timestamp::MAX;
    let list: Vec<DrillSummary> = drills
        .values()
        .map(|drill| {
            let s = DrillSummary::of(drill, latest.remove(&drill.name).unwrap_or_default(), now);
            if let Some(t) = s.next_run {
                until = until.min(t);
            }
            s
        })
        .collect();
    let body = serde_json::to_vec(&DrillList { drills: list })
        .map_err(|e| Error::internal(format!("serializing the drill listing: {e}")))?;
    Ok(Snapshot {
        body: body.into(),
        drills,
        runs_version,
        until,
    })
}

/// Once something has asked for the listing: polls the catalog for other processes'
/// writes, and rebuilds the listing when runs change, drills are reloaded or a `next_run`
/// comes.
pub(super) async fn listing_loop(d: Arc<Daemon>) {
    let mut runs = d.runs_version.clone();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let until = d.listing.until();
        let next_run_comes = async {
            match until.map(|t| t.duration_since(jiff::Timestamp::now())) {
                Some(left) => {
                    // Re-read every hour at most: a drill that never fires is a far date.
                    let left = Duration::try_from(left)
                        .unwrap_or_default()
                        .min(Duration::from_secs(3600));
                    tokio::time::sleep(left + Duration::from_millis(1)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = d.shutdown.stopped() => return,
            _ = poll.tick() => {
                // Until something asks for the listing, there is nothing to keep fresh
                // (asked now, not at the top of the loop: a request may have come since).
                if d.listing.until().is_some() {
                    if let Err(e) = d.catalog.poll_changes().await {
                        tracing::warn!("looking for catalog changes: {e}");
                    }
                }
                continue;
            }
            changed = runs.changed() => if changed.is_err() { return },
            _ = d.reloaded.notified() => {}
            _ = next_run_comes => {}
        }
        if until.is_some() {
            if let Err(e) = d.listing.body(&d).await {
                tracing::warn!("building the drill listing: {e}");
            }
        }
    }
}

/// `GET /api/v1/drills`: every drill with its schedule and newest runs.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct DrillList<'a> {
    pub drills: Vec<DrillSummary<'a>>,
}
