//! Leases: a run belongs to the process running it (a daemon, or a `firedrill run`) for
//! as long as that process renews its lease in the catalog. Nobody else records it lost
//! or removes its sandbox before the lease has expired, and a process that cannot renew
//! stops its own runs first ("self-fencing"), so a survivor taking a run over never races
//! a process that is still working on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cancel::{Stop, StopReason};
use crate::catalog::{Catalog, Owner};

/// How long a lease lasts and how often it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    /// A run's lease lasts this long past its owner's last renewal.
    pub lease: Duration,
    /// The owner renews every this long.
    pub heartbeat: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
        }
    }
}

impl LeaseSettings {
    /// How long after its last renewal a process stops its runs: early enough that
    /// their teardowns finish before the lease expires (a third of the lease, and at
    /// least two heartbeats, to spare).
    pub fn fence_after(&self) -> Duration {
        let margin = (self.lease / 3).max(self.heartbeat * 2);
        self.lease.saturating_sub(margin).max(self.heartbeat)
    }
}

/// This process's leases: who it is, and the runs it holds.
pub struct Leases {
    owner: Owner,
    id: String,
    settings: LeaseSettings,
    /// Run id → its stop, and when it was claimed.
    runs: Mutex<HashMap<String, (Stop, Instant)>>,
    /// When the last renewal that succeeded was sent.
    renewed: Mutex<Instant>,
}

impl Leases {
    pub fn new(owner: Owner, settings: LeaseSettings) -> Arc<Self> {
        let id = owner.id();
        Arc::new(Leases {
            owner,
            id,
            settings,
            runs: Mutex::new(HashMap::new()),
            renewed: Mutex::new(Instant::now()),
        })
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// [`Owner::id`].
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn settings(&self) -> LeaseSettings {
        self.settings
    }

    /// When a lease taken or renewed now expires.
    pub fn until(&self) -> jiff::Timestamp {
        let now = jiff::Timestamp::now();
        now.checked_add(jiff::SignedDuration::try_from(self.settings.lease).unwrap_or_default())
            .unwrap_or(now)
    }

    /// A run claimed in the catalog: renewed from now on, stopped if it must be fenced.
    pub fn hold(&self, run_id: &str, stop: Stop) {
        self.runs
            .lock()
            .expect("leases lock")
            .insert(run_id.to_string(), (stop, Instant::now()));
    }

    /// A run finished and recorded.
    pub fn release(&self, run_id: &str) {
        self.runs.lock().expect("leases lock").remove(run_id);
    }

    /// Runs held now.
    pub fn held(&self) -> usize {
        self.runs.lock().expect("leases lock").len()
    }

    /// Whether the catalog took a renewal recently enough for this process to claim
    /// work: one cut off from the catalog claims nothing.
    pub fn in_touch(&self) -> bool {
        self.renewed.lock().expect("leases lock").elapsed() < self.settings.fence_after()
    }

    /// Renews the leases every heartbeat until `stop`. A run the catalog no longer says
    /// is ours is stopped at once; when renewals fail for [`LeaseSettings::fence_after`],
    /// every run is stopped (and its sandbox removed by its teardown) before the lease
    /// expires.
    pub async fn keep(self: Arc<Self>, catalog: Arc<dyn Catalog>, stop: Stop) {
        loop {
            self.renew_once(catalog.as_ref()).await;
            tokio::select! {
                _ = stop.stopped() => return,
                _ = tokio::time::sleep(self.settings.heartbeat) => {}
            }
        }
    }

    /// One heartbeat.
    pub async fn renew_once(&self, catalog: &dyn Catalog) {
        let sent = Instant::now();
        let until = self.until();
        let renewed = tokio::time::timeout(
            self.settings.heartbeat,
            catalog.renew_leases(&self.id, until),
        )
        .await;
        match renewed {
            Ok(Ok(held)) => {
                *self.renewed.lock().expect("leases lock") = sent;
                // Runs claimed before this renewal was sent and not held any more were
                // taken from us (our lease expired meanwhile): someone else runs them.
                let runs = self.runs.lock().expect("leases lock");
                for (id, (stop, at)) in runs.iter() {
                    if *at < sent && !held.contains(id) && !stop.is_stopped() {
                        tracing::error!(run = %id, "the catalog says this run is no longer ours (its lease expired); stopping it");
                        stop.stop(StopReason::Fenced);
                    }
                }
            }
            Ok(Err(e)) => self.missed(&e.to_string()),
            Err(_) => self.missed("the catalog did not answer within a heartbeat"),
        }
    }

    fn missed(&self, why: &str) {
        let since = self.renewed.lock().expect("leases lock").elapsed();
        let fence = self.settings.fence_after();
        let runs = self.runs.lock().expect("leases lock");
        if since >= fence {
            for (id, (stop, _)) in runs.iter() {
                if !stop.is_stopped() {
                    tracing::error!(run = %id, "no lease renewal for {since:?} ({why}): stopping the run before its lease expires, so that another process can take it over");
                    stop.stop(StopReason::Fenced);
                }
            }
        } else if !runs.is_empty() {
            tracing::warn!("could not renew the leases of {} runs ({why}); they stop in {:?} unless the catalog answers", runs.len(), fence - since);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_leaves_room_before_the_lease_expires() {
        let s = |l, h| LeaseSettings {
            lease: Duration::from_secs(l),
            heartbeat: Duration::from_secs(h),
        };
        assert_eq!(s(60, 10).fence_after(), Duration::from_secs(40));
        assert_eq!(s(15, 3).fence_after(), Duration::from_secs(9));
        // A heartbeat as long as the lease still fences after one heartbeat.
        assert_eq!(s(10, 10).fence_after(), Duration::from_secs(10));
    }

    #[test]
    fn only_a_process_of_this_host_that_is_gone_is_known_dead() {
        let me = Owner {
            role: "daemon".into(),
            host: "drillhost".into(),
            pid: 4242,
            started_at: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            pids: "a1b2c3".into(),
        };
        let live = format!("cli@drillhost:{}/5#a1b2c3", std::process::id());
        assert!(!me.is_gone(&me.id()), "not itself");
        assert!(
            me.is_gone("daemon@drillhost:4294967295/1#a1b2c3"),
            "no such pid"
        );
        assert!(
            me.is_gone("daemon@drillhost:4242/1#a1b2c3"),
            "its own pid, an earlier start: a restart"
        );
        assert!(!me.is_gone(&live), "a pid that runs");
        assert!(
            !me.is_gone("daemon@drillhost:4294967295/1#ffffff"),
            "the same host name in another container or boot"
        );
        assert!(!me.is_gone("daemon@drillhost:4294967295/1"), "no scope");
        assert!(!me.is_gone("garbage"));
        let unknown = Owner {
            pids: String::new(),
            ..me.clone()
        };
        assert!(!unknown.is_gone("daemon@drillhost:4294967295/1#"));
    }
}
