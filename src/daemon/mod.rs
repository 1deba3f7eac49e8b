//! The daemon: drills on their cron schedules, drills on demand over HTTP, a dead-man's
//! switch on each drill's recovery point objective, and a clean shutdown.
//!
//! `run(config, shutdown)` takes its shutdown signal as an argument (the binary wires
//! SIGTERM/SIGINT to it), so tests can stop it. Every drill task is tracked; a shutdown
//! cancels them, waits for their sandboxes to go (bounded by the grace period) and flushes
//! the outbox.

mod actions;
mod api;
mod auth;
pub use auth::{check_auth, weak_token};
mod dashboard;
mod events;
mod listing;
mod oidc;
mod serve;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, Notify, Semaphore};
use tokio_util::task::TaskTracker;

use crate::cancel::{Stop, StopReason};
use crate::catalog::{Catalog, SqliteCatalog};
use crate::config::{load_drill, Drill, MainConfig, Problems};
use crate::drill::{new_run_id, Connector, RunOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::lease::Leases;
use crate::notify::{self, Pager};
use crate::report::{ErrorReport, RunReport, StageReport};
use crate::runner::{Refusal, Runner};
use crate::stage::{Progress, StageRun};
use crate::status::{RunStatus, Stage, Verdict};

pub use api::{openapi, openapi_json_text, router};

/// What a client can follow about a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    Queued {
        run_id: String,
        drill: String,
    },
    StageStarted {
        run_id: String,
        stage: Stage,
    },
    StageFinished {
        run_id: String,
        report: StageReport,
    },
    /// An attempt of a stage in the sandbox failed on the infrastructure; the sandbox
    /// stages start again with a fresh sandbox.
    StageRetrying {
        run_id: String,
        stage: Stage,
        attempt: u32,
        error: String,
        backoff_ms: u64,
    },
    Finished {
        run_id: String,
        status: RunStatus,
        verdict: Verdict,
        exit_code: i32,
    },
}

/// A run the daemon knows about in memory (the catalog keeps them for good).
pub struct LiveRun {
    pub drill: String,
    pub status: RunStatus,
    pub trigger: String,
    pub events: Vec<RunEvent>,
    pub report: Option<RunReport>,
    tx: broadcast::Sender<RunEvent>,
    stop: Stop,
}

/// Why a run could not be started.
#[derive(Debug)]
pub enum StartError {
    UnknownDrill(String),
    /// This daemon's definition of the drill is not the one the daemons sharing the
    /// catalog agree on: a daemon with the agreed one runs it.
    Skewed(String),
    /// Another run of the drill holds it: in this daemon, or (`owner`) in another
    /// process sharing the catalog.
    AlreadyRunning {
        drill: String,
        run_id: String,
        owner: Option<String>,
    },
    ShuttingDown,
}

/// The daemon's shared state.
pub struct Daemon {
    pub config: MainConfig,
    drills_dir: PathBuf,
    /// Replaced whole on reload; readers share it without copying a thousand drills.
    drills: RwLock<Arc<BTreeMap<String, Drill>>>,
    pub catalog: Arc<dyn Catalog>,
    /// Runs, records and pages every drill (the same path as the CLI's `run`).
    runner: Runner,
    permits: Arc<Semaphore>,
    /// Drill name → run id of its run in progress (a drill never overlaps itself).
    active: Mutex<HashMap<String, String>>,
    runs: Mutex<HashMap<String, LiveRun>>,
    tracker: TaskTracker,
    shutdown: Stop,
    queue_depth: std::sync::atomic::AtomicUsize,
    /// When an alert last started each known drill (entries older than `hook_interval`
    /// are forgotten: the map never outgrows the drills).
    last_hook: Mutex<HashMap<String, tokio::time::Instant>>,
    /// Reloads that kept the old definitions because a file was invalid.
    reload_failures: std::sync::atomic::AtomicU64,
    /// The last reload that failed, while no reload has succeeded since: when, and the
    /// problems (the dashboard shows it; the old definitions keep running).
    reload_refused: Mutex<Option<(jiff::Timestamp, String)>>,
    /// Wakes the scheduler when drills change.
    reloaded: Notify,
    pub started_at: jiff::Timestamp,
    token: Option<crate::secret::Secret>,
    /// Named API tokens (`[daemon] tokens_file`), read again when the file changes.
    tokens: Option<crate::access::TokenSet>,
    /// Single sign-on, when `[daemon.oidc]` is set.
    oidc: Option<oidc::Oidc>,
    /// Failed authentications per client.
    throttle: auth::Throttle,
    /// `GET /api/v1/drills`' body, kept until it would change.
    listing: listing::Listing,
    /// The catalog's [`Catalog::runs_version`].
    runs_version: tokio::sync::watch::Receiver<u64>,
    /// This daemon's leases on its runs, and its name in the catalog.
    pub leases: Arc<Leases>,
    /// When this daemon claimed its recent firings: one that claimed many lets the others
    /// claim first, so that daemons sharing a catalog share the firings.
    claims: Mutex<std::collections::VecDeque<tokio::time::Instant>>,
    /// A hash of each drill's definition (its file), as loaded.
    defs: RwLock<Arc<BTreeMap<String, String>>>,
    /// The daemons sharing the catalog, as last seen, and the drills they disagree on.
    cluster: RwLock<(Vec<crate::catalog::DaemonSeen>, Vec<crate::catalog::Skew>)>,
}

/// A hash of each drill's file: daemons sharing a catalog compare them.
fn definitions(drills: &BTreeMap<String, Drill>) -> BTreeMap<String, String> {
    drills
        .iter()
        .map(|(name, d)| {
            let bytes = std::fs::read(&d.file).unwrap_or_default();
            (
                name.clone(),
                format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)),
            )
        })
        .collect()
}

/// Loads every drill file in `dir`; all problems at once.
pub fn load_drills(dir: &Path) -> std::result::Result<BTreeMap<String, Drill>, Problems> {
    let files = crate::config::drill_files(dir).map_err(|e| {
        Problems(vec![crate::config::Problem {
            file: dir.to_path_buf(),
            field: String::new(),
            line: None,
            message: format!("cannot read the drills directory: {e}"),
            fix: "set drills_dir in the main config, or pass --drills-dir".into(),
        }])
    })?;
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for f in files {
        match load_drill(&f) {
            Ok(d) => {
                if let Some(other) = out.insert(d.name.clone(), d) {
                    problems.push(crate::config::Problem {
                        file: f.clone(),
                        field: "name".into(),
                        line: None,
                        message: format!(
                            "drill name `{}` is also used by {}",
                            other.name,
                            other.file.display()
                        ),
                        fix: "give every drill its own name".into(),
                    });
                }
            }
            Err(p) => problems.extend(p.0),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Problems(problems))
    }
}

/// Forwards a run's progress to its followers.
struct Broadcast {
    daemon: Arc<Daemon>,
    run_id: String,
}

impl Broadcast {
    fn emit(&self, ev: RunEvent) {
        let mut runs = self.daemon.runs.lock().expect("runs lock");
        if let Some(r) = runs.get_mut(&self.run_id) {
            if let RunEvent::StageStarted { .. } = ev {
                r.status = RunStatus::Running;
            }
            r.events.push(ev.clone());
            let _ = r.tx.send(ev);
        }
    }
}

impl Progress for Broadcast {
    fn stage_started(&self, stage: Stage) {
        self.emit(RunEvent::StageStarted {
            run_id: self.run_id.clone(),
            stage,
        });
    }
    fn stage_finished(&self, report: &StageReport) {
        self.emit(RunEvent::StageFinished {
            run_id: self.run_id.clone(),
            report: report.clone(),
        });
    }
    fn stage_retrying(&self, stage: Stage, attempt: u32, error: &Error, backoff: Duration) {
        self.emit(RunEvent::StageRetrying {
            run_id: self.run_id.clone(),
            stage,
            attempt,
            error: error.headline(),
            backoff_ms: backoff.as_millis() as u64,
        });
    }
}

/// A report for things that are not runs of the drill itself (a missed objective, a run
/// lost to a crash), so that paging treats them like any failure: one incident, resolved
/// by the next passing drill.
fn synthetic_report(
    drill: &str,
    run_id: &str,
    kind: ErrorKind,
    message: String,
    hint: &str,
) -> RunReport {
    RunReport {
        verdict: Verdict::Error,
        exit_code: 2,
        error: Some(ErrorReport {
            kind,
            message,
            hint: Some(hint.to_string()),
            retryable: true,
            stderr_tail: None,
        }),
        ..RunReport::empty(drill, run_id, jiff::Timestamp::now())
    }
}

impl Daemon {
    /// Builds the daemon from the main config: drills, catalog, channels, token. Drills
    /// reach their sources, stores and sandboxes through `connector`.
    pub fn new(
        config: MainConfig,
        connector: Arc<dyn Connector>,
        shutdown: Stop,
    ) -> Result<Arc<Self>> {
        let catalog_path = config.catalog.clone().ok_or_else(|| {
            Error::config("the daemon needs `catalog = \"/path/catalog.db\"` (or a postgres:// URL) in the main config")
        })?;
        let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(&catalog_path)?);
        Self::with_catalog(config, connector, shutdown, catalog)
    }

    /// [`Daemon::new`] on a catalog already open (a PostgreSQL one is opened
    /// asynchronously, by [`crate::catalog::open`]).
    pub fn with_catalog(
        config: MainConfig,
        connector: Arc<dyn Connector>,
        shutdown: Stop,
        catalog: Arc<dyn Catalog>,
    ) -> Result<Arc<Self>> {
        let drills_dir = config
            .drills_dir
            .clone()
            .unwrap_or_else(|| config.base_dir.join("drills"));
        let drills = load_drills(&drills_dir).map_err(Error::from)?;
        let catalog_path = config.catalog.clone().unwrap_or_default();
        let pager = Pager::new(&config.notify, &config.base_dir)?.map(Arc::new);
        let token = config
            .daemon
            .token
            .as_ref()
            .map(|t| t.load(&config.base_dir))
            .transpose()
            .map_err(|e| e.context("daemon.token"))?;
        let tokens = config
            .daemon
            .tokens_file
            .clone()
            .map(crate::access::TokenSet::open)
            .transpose()
            .map_err(|e| e.context("daemon.tokens_file"))?;
        let oidc = config
            .daemon
            .oidc
            .as_ref()
            .map(|o| oidc::Oidc::new(o, &config.base_dir))
            .transpose()
            .map_err(|e| e.context("daemon.oidc"))?;
        let reports = Arc::new(crate::evidence::ReportWriter::from_config(
            &config,
            Some(&catalog_path),
            None,
        )?);
        let leases = Leases::new(
            crate::catalog::Owner::this_process("daemon"),
            config.daemon.lease,
        );
        let runner = Runner {
            connector,
            catalog: Some(catalog.clone()),
            reports: Some(reports),
            pager,
            leases: Some(leases.clone()),
        };
        let defs = definitions(&drills);
        Ok(Arc::new(Daemon {
            listing: listing::Listing::default(),
            runs_version: catalog.runs_version(),
            permits: Arc::new(Semaphore::new(config.daemon.max_concurrent_drills)),
            drills_dir,
            drills: RwLock::new(Arc::new(drills)),
            catalog,
            runner,
            active: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
            tracker: TaskTracker::new(),
            shutdown,
            queue_depth: std::sync::atomic::AtomicUsize::new(0),
            last_hook: Mutex::new(HashMap::new()),
            reload_failures: std::sync::atomic::AtomicU64::new(0),
            reload_refused: Mutex::new(None),
            reloaded: Notify::new(),
            started_at: jiff::Timestamp::now(),
            token,
            tokens,
            oidc,
            throttle: auth::Throttle::new(config.daemon.auth_failures),
            leases,
            claims: Mutex::new(std::collections::VecDeque::new()),
            defs: RwLock::new(Arc::new(defs)),
            cluster: RwLock::new((Vec::new(), Vec::new())),
            config,
        }))
    }

    pub fn drills(&self) -> Arc<BTreeMap<String, Drill>> {
        self.drills.read().expect("drills lock").clone()
    }

    pub fn token(&self) -> Option<&crate::secret::Secret> {
        self.token.as_ref()
    }

    pub fn queue_depth(&self) -> usize {
        self.queue_depth.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs past their queue: preparing or in a stage.
    pub fn running(&self) -> usize {
        self.runs
            .lock()
            .expect("runs lock")
            .values()
            .filter(|r| r.status == RunStatus::Running)
            .count()
    }

    /// Reloads that failed (an invalid drill file kept the old definitions).
    /// When the drills were last refused on a reload, and why, unless a reload has
    /// succeeded since.
    pub fn reload_refused(&self) -> Option<(jiff::Timestamp, String)> {
        self.reload_refused.lock().expect("reload lock").clone()
    }

    pub fn reload_failures(&self) -> u64 {
        self.reload_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets finished runs older than `daemon.runs_kept` (the catalog keeps them), and
    /// alert bookkeeping older than `hook_interval`: memory stays bounded however long the
    /// daemon runs and whatever names alerts carry.
    pub fn forget_old(&self, now: jiff::Timestamp) {
        let keep = jiff::SignedDuration::try_from(self.config.daemon.runs_kept)
            .unwrap_or(jiff::SignedDuration::from_hours(24));
        let cutoff = now.checked_sub(keep).unwrap_or(jiff::Timestamp::MIN);
        self.runs
            .lock()
            .expect("runs lock")
            .retain(|_, r| r.report.as_ref().is_none_or(|rep| rep.finished_at > cutoff));
        let interval = self.config.daemon.hook_interval;
        let t = tokio::time::Instant::now();
        self.last_hook
            .lock()
            .expect("hook lock")
            .retain(|_, at| t.duration_since(*at) < interval);
    }

    /// Who or what started a run this daemon holds (an [`crate::access::Actor`]'s text).
    pub fn run_trigger(&self, id: &str) -> Option<String> {
        self.runs
            .lock()
            .expect("runs lock")
            .get(id)
            .map(|r| r.trigger.clone())
    }

    /// How many runs the daemon holds in memory.
    pub fn runs_held(&self) -> usize {
        self.runs.lock().expect("runs lock").len()
    }

    /// Drill name → id of its run queued or in progress.
    pub fn active_runs(&self) -> HashMap<String, String> {
        self.active.lock().expect("active lock").clone()
    }

    /// Re-reads the drills directory. An invalid file keeps the old definitions and the
    /// error says why.
    pub fn reload(&self) -> std::result::Result<usize, Problems> {
        let fresh = load_drills(&self.drills_dir).inspect_err(|p| {
            self.reload_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *self.reload_refused.lock().expect("reload lock") =
                Some((jiff::Timestamp::now(), p.to_string()));
        })?;
        *self.reload_refused.lock().expect("reload lock") = None;
        let n = fresh.len();
        *self.defs.write().expect("defs lock") = Arc::new(definitions(&fresh));
        *self.drills.write().expect("drills lock") = Arc::new(fresh);
        self.reloaded.notify_waiters();
        tracing::info!("reloaded {n} drills");
        Ok(n)
    }

    /// A run's status, events so far and report.
    pub fn run_view(
        &self,
        run_id: &str,
    ) -> Option<(String, RunStatus, Vec<RunEvent>, Option<RunReport>)> {
        let runs = self.runs.lock().expect("runs lock");
        runs.get(run_id).map(|r| {
            (
                r.drill.clone(),
                r.status,
                r.events.clone(),
                r.report.clone(),
            )
        })
    }

    /// Subscribes to a run's events: what happened so far, then what comes.
    pub fn follow(
        &self,
        run_id: &str,
    ) -> Option<(Vec<RunEvent>, broadcast::Receiver<RunEvent>, bool)> {
        let runs = self.runs.lock().expect("runs lock");
        runs.get(run_id)
            .map(|r| (r.events.clone(), r.tx.subscribe(), r.report.is_some()))
    }

    /// Starts a drill now (queued behind the concurrency limit), once the catalog says no
    /// other process runs it. Returns its run id.
    pub async fn start_run(
        self: &Arc<Self>,
        name: &str,
        mut opts: RunOptions,
        trigger: &str,
    ) -> std::result::Result<String, StartError> {
        if self.shutdown.is_stopped() {
            return Err(StartError::ShuttingDown);
        }
        let drill = self
            .drills
            .read()
            .expect("drills lock")
            .get(name)
            .cloned()
            .ok_or_else(|| StartError::UnknownDrill(name.to_string()))?;
        if self.differs_here(name) {
            return Err(StartError::Skewed(name.to_string()));
        }
        let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
        if opts.started_by.is_none() {
            opts.started_by = Some(crate::access::Actor::parse(trigger));
        }
        {
            let mut active = self.active.lock().expect("active lock");
            if let Some(r) = active.get(name) {
                return Err(StartError::AlreadyRunning {
                    drill: name.to_string(),
                    run_id: r.clone(),
                    owner: None,
                });
            }
            active.insert(name.to_string(), run_id.clone());
        }
        let stop = self.shutdown.child();
        // Held from now until recorded finished: no other process sharing the catalog
        // starts the drill meanwhile, even while this run waits for a permit.
        if let Err(Refusal::Held(h)) = self
            .runner
            .claim(&drill, &run_id, opts.scheduled_for, &stop)
            .await
        {
            self.active.lock().expect("active lock").remove(name);
            return Err(StartError::AlreadyRunning {
                drill: name.to_string(),
                run_id: h.run_id,
                owner: Some(h.owner),
            });
        }
        opts.claimed = true;
        let (tx, _) = broadcast::channel(256);
        let queued = RunEvent::Queued {
            run_id: run_id.clone(),
            drill: name.to_string(),
        };
        self.runs.lock().expect("runs lock").insert(
            run_id.clone(),
            LiveRun {
                drill: name.to_string(),
                status: RunStatus::Queued,
                trigger: trigger.to_string(),
                events: vec![queued],
                report: None,
                tx,
                stop: stop.clone(),
            },
        );
        opts.run_id = Some(run_id.clone());
        let me = self.clone();
        let id = run_id.clone();
        tracing::info!(drill = %name, run = %run_id, %trigger, "drill queued");
        self.tracker.spawn(async move {
            me.queue_depth
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Take the permit before any work: waiting drills queue in order.
            let permit = tokio::select! {
                p = me.permits.clone().acquire_owned() => p.ok(),
                _ = stop.stopped() => None,
            };
            me.queue_depth
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let report = match permit {
                Some(_permit) => {
                    let progress = Broadcast {
                        daemon: me.clone(),
                        run_id: id.clone(),
                    };
                    me.runner.run(&drill, &opts, &progress, &stop).await.report
                }
                None => {
                    // Stopped before it began: recorded, silent like any stop.
                    let e = crate::stage::stopped(&stop);
                    let mut r = synthetic_report(
                        &drill.name,
                        &id,
                        e.kind,
                        format!("{} while queued", e.message),
                        "nothing was drilled; the next run will be",
                    );
                    r.stages = Stage::ALL
                        .iter()
                        .map(|s| StageRun::skipped(*s, None))
                        .map(|s| StageReport {
                            stage: s.stage,
                            outcome: s.outcome,
                            duration_ms: 0,
                            timeout_ms: 0,
                            bytes: None,
                            attempts: 0,
                            error: None,
                            notes: vec![],
                        })
                        .collect();
                    r.started_by = opts.started_by.clone();
                    if let Err(e) = me.catalog.run_finished(&r, None).await {
                        tracing::warn!(run = %id, "recording a run stopped while queued: {e}");
                    }
                    me.leases.release(&id);
                    r
                }
            };
            // A rolling restart: the firing is handed over, for another daemon to run.
            if let (Some(at), Some(StopReason::Shutdown)) = (opts.scheduled_for, stop.reason()) {
                match me.catalog.reopen_firing(&drill.name, at).await {
                    Ok(()) => tracing::info!(drill = %drill.name, "handed the firing of {at} over to the other daemons"),
                    Err(e) => tracing::warn!(drill = %drill.name, "could not hand the firing of {at} over: {e}"),
                }
            }
            me.finished(&drill, report).await;
        });
        Ok(run_id)
    }

    /// After a run (recorded and paged by the runner): the recovery-time objective, the
    /// heartbeat, and the run's followers.
    async fn finished(self: &Arc<Self>, drill: &Drill, report: RunReport) {
        let status = report.status();
        if report.verdict == Verdict::Passed {
            self.check_rto(drill, &report).await;
            if let Some(url) = &drill.schedule.heartbeat_url {
                let ping = reqwest::Client::new()
                    .get(url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                if let Err(e) = ping {
                    tracing::warn!(drill = %drill.name, "heartbeat ping failed: {e}");
                }
            }
        }
        if let (RunStatus::Error | RunStatus::Failed, Some(e)) = (status, &report.error) {
            eprintln!(
                "firedrill daemon: drill {} run {} {status}: {}",
                drill.name, report.run_id, e.message
            );
        }
        let ev = RunEvent::Finished {
            run_id: report.run_id.clone(),
            status,
            verdict: report.verdict,
            exit_code: report.exit_code,
        };
        {
            let mut runs = self.runs.lock().expect("runs lock");
            if let Some(r) = runs.get_mut(&report.run_id) {
                r.status = status;
                r.events.push(ev.clone());
                r.report = Some(report.clone());
                let _ = r.tx.send(ev);
            }
        }
        self.active.lock().expect("active lock").remove(&drill.name);
        tracing::info!(drill = %drill.name, run = %report.run_id, %status, "drill finished");
    }

    /// Restore + verify slower than the drill's `rto` pages a warning, even when the data
    /// was fine; the next run within the target resolves it.
    async fn check_rto(&self, drill: &Drill, report: &RunReport) {
        let Some(target) = drill.schedule.rto else {
            return;
        };
        if report.verdict != Verdict::Passed {
            return;
        }
        let took = report.recovery_ms();
        let mut r = report.clone();
        r.drill = format!("{}:rto", drill.name);
        if took > target.as_millis() as u64 {
            r.verdict = Verdict::Error;
            r.error = Some(ErrorReport {
                kind: ErrorKind::Timeout,
                message: format!(
                    "restore and verify took {}, over the recovery time objective of {}",
                    crate::human::human_ms(took),
                    humantime::format_duration(target)
                ),
                hint: Some("the data is fine but recovery is too slow: give the sandbox more CPU/memory, or revisit schedule.rto".into()),
                retryable: false,
                stderr_tail: None,
            });
        }
        if let Some(Err(e)) = self.runner.page(&r).await {
            tracing::error!("queueing the RTO page: {e}");
        }
    }

    /// The dead-man's switch: a drill whose newest passing run is older than its
    /// `max_age` (or, never having passed, older than the daemon) pages. Runs whether the
    /// schedule fired or not, and sees across restarts through the catalog.
    pub async fn check_objectives(&self, now: jiff::Timestamp) -> Result<usize> {
        let mut paged = 0;
        for (name, d) in self.drills().iter() {
            let Some(max_age) = d.schedule.max_age else {
                continue;
            };
            if self.active.lock().expect("active lock").contains_key(name) {
                continue;
            }
            let runs = self.catalog.runs(Some(name), 500).await?;
            let last_pass = runs
                .iter()
                .filter(|r| r.status == RunStatus::Passed)
                .map(|r| r.started_at)
                .max();
            let since = last_pass.unwrap_or(self.started_at);
            let age = now.as_second() - since.as_second();
            if age > max_age.as_secs() as i64 {
                let msg = match last_pass {
                    Some(t) => format!(
                        "no artifact of drill {name} has passed a drill since {t} (max_age {})",
                        humantime::format_duration(max_age)
                    ),
                    None => format!(
                        "drill {name} has never passed (max_age {}); its backups are unproven",
                        humantime::format_duration(max_age)
                    ),
                };
                // Daemons sharing the catalog check too: one of them pages, per minute.
                let minute =
                    jiff::Timestamp::from_second(now.as_second() - now.as_second().rem_euclid(60))
                        .unwrap_or(now);
                if !self
                    .catalog
                    .claim_firing(&format!("{name}:max_age"), minute, self.leases.id())
                    .await?
                {
                    continue;
                }
                let r = synthetic_report(name, "objective", ErrorKind::Infrastructure, msg, "check that the schedule fires and that the drill passes; `firedrill history` shows its runs");
                paged +=
                    notify::on_run_finished(self.catalog.as_ref(), &self.config.notify, &r).await?;
            }
        }
        Ok(paged)
    }

    /// Accepts an Alertmanager webhook: each firing alert labelled `firedrill_drill`
    /// starts that drill, at most once per drill per `hook_interval`.
    pub async fn alert_hook(
        self: &Arc<Self>,
        payload: &AlertmanagerWebhook,
        by: &crate::access::Actor,
    ) -> (HookOutcome, HookOutcome) {
        let mut started = Vec::new();
        let mut skipped = Vec::new();
        let drills = self.drills();
        for name in payload.firing_drills() {
            // Only known drills are remembered: names an alert makes up cost nothing.
            if !drills.contains_key(&name) {
                skipped.push((name, "no such drill".into()));
                continue;
            }
            let now = tokio::time::Instant::now();
            {
                let mut last = self.last_hook.lock().expect("hook lock");
                if let Some(t) = last.get(&name) {
                    if now.duration_since(*t) < self.config.daemon.hook_interval {
                        skipped.push((
                            name,
                            "started by an alert less than hook_interval ago".into(),
                        ));
                        continue;
                    }
                }
                last.insert(name.clone(), now);
            }
            match self
                .start_run(&name, RunOptions::default(), &by.to_string())
                .await
            {
                Ok(id) => started.push((name, id)),
                Err(StartError::UnknownDrill(_)) => skipped.push((name, "no such drill".into())),
                Err(StartError::AlreadyRunning { run_id, .. }) => {
                    skipped.push((name, format!("already running as {run_id}")))
                }
                Err(StartError::ShuttingDown) => skipped.push((name, "shutting down".into())),
                Err(StartError::Skewed(_)) => skipped.push((
                    name,
                    "defined differently on this daemon than on the others".into(),
                )),
            }
        }
        (started, skipped)
    }

    /// Fires drills on their cron schedules until shutdown. `clock` gives wall time; the
    /// waiting uses tokio's clock, so tests can pause and advance it.
    pub async fn schedule_loop(self: Arc<Self>, clock: Clock) {
        let mut next: HashMap<String, jiff::Timestamp> = HashMap::new();
        // Firings whose claim the catalog could not answer (it restarts, this daemon is
        // cut off from it): claimed again every second, for as long as RETRY_CLAIMS.
        let mut retry: HashMap<String, jiff::Timestamp> = HashMap::new();
        loop {
            let now = clock.now();
            let drills = self.drills();
            next.retain(|k, _| drills.contains_key(k));
            retry.retain(|k, at| {
                let keep = drills.contains_key(k)
                    && now.as_second() - at.as_second() < RETRY_CLAIMS.as_secs() as i64;
                if !keep && drills.contains_key(k) {
                    tracing::error!(drill = %k, "the firing of {at} was not claimed: the catalog did not answer for {RETRY_CLAIMS:?}");
                }
                keep
            });
            for (name, d) in drills.iter() {
                if let Some(s) = &d.schedule.cron {
                    next.entry(name.clone())
                        .or_insert_with(|| next_firing(name, s, now));
                }
            }
            let mut due: Vec<(String, jiff::Timestamp)> = next
                .iter()
                .filter(|(_, t)| **t <= now)
                .map(|(n, t)| (n.clone(), *t))
                .collect();
            due.extend(retry.drain());
            // A daemon with runs in hand, or that claimed more firings lately, lets the
            // others claim first: the firings spread over the daemons sharing the catalog.
            if !due.is_empty() {
                let wait = self.claim_delay();
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            for (name, at) in due {
                let d = &drills[&name];
                let scheduled_for = Some(at);
                if let Some(s) = &d.schedule.cron {
                    if next.get(&name).is_some_and(|t| *t <= at) {
                        next.insert(name.clone(), next_firing(&name, s, now));
                    }
                }
                if self.differs_here(&name) {
                    tracing::warn!(drill = %name, "the firing of {at} is left to the daemons holding the agreed definition of the drill");
                    continue;
                }
                // Each firing runs once, whichever daemon (sharing the catalog) claims it.
                let claimed = if self.leases.in_touch() {
                    match self.catalog.claim_firing(&name, at, self.leases.id()).await {
                        Ok(won) => won,
                        Err(e) => {
                            tracing::warn!(drill = %name, "cannot claim the firing of {at} yet: {e}");
                            retry.insert(name.clone(), at);
                            false
                        }
                    }
                } else {
                    tracing::warn!(drill = %name, "out of touch with the catalog: the firing of {at} waits until this daemon renews its leases again");
                    retry.insert(name.clone(), at);
                    false
                };
                if !claimed {
                    continue;
                }
                self.claimed();
                let opts = RunOptions {
                    artifact: None,
                    scheduled_for,
                    ..Default::default()
                };
                let opts = if d.schedule.random_artifact {
                    match crate::inventory::random_artifact(d).await {
                        Ok(Some(a)) => RunOptions {
                            artifact: Some(a),
                            ..opts
                        },
                        _ => opts,
                    }
                } else {
                    opts
                };
                match self.start_run(&name, opts, "schedule").await {
                    Ok(_) => {}
                    Err(StartError::AlreadyRunning { run_id, .. }) => {
                        tracing::warn!(drill = %name, "schedule fired while {run_id} still runs; skipped (drills never overlap)")
                    }
                    Err(e) => tracing::warn!(drill = %name, "scheduled run not started: {e:?}"),
                }
            }
            let soonest = next.values().min().copied();
            // Rounded up, and never zero: a wait that truncates to nothing would spin.
            let wait = soonest
                .map(|t| {
                    let ns = t.as_nanosecond() - now.as_nanosecond();
                    Duration::from_nanos(ns.clamp(1_000_000, i128::from(u64::MAX)) as u64)
                })
                .unwrap_or(Duration::from_secs(3600))
                .min(Duration::from_secs(if retry.is_empty() { 60 } else { 1 }));
            tokio::select! {
                _ = self.shutdown.stopped() => return,
                _ = self.reloaded.notified() => { next.clear(); }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Sends the scheduled digest of every drill (`[notify.digest]`) until shutdown; each
    /// scheduled time once, whatever restarts (claimed in the catalog).
    pub async fn digest_loop(self: Arc<Self>, clock: Clock) {
        let Some(pager) = &self.runner.pager else {
            return;
        };
        let digests = notify::digest::DigestSchedule {
            catalog: self.catalog.clone(),
            spec: pager.spec.clone(),
            notifiers: pager.notifiers.clone(),
        };
        let me = self.clone();
        digests
            .run(
                move || me.drills(),
                move || clock.now(),
                self.shutdown.clone(),
            )
            .await
    }

    /// Cancels running drills, waits for them (and their teardowns) up to the grace
    /// period, then flushes the outbox once.
    pub async fn drain(&self) {
        self.shutdown.stop(StopReason::Shutdown);
        self.tracker.close();
        let grace = self.config.daemon.grace;
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::error!(
                "drills still running after the {grace:?} grace period; exiting anyway"
            );
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.deliver()).await;
    }

    /// Sends what is due in the outbox.
    async fn deliver(&self) -> Result<()> {
        if let Some(p) = &self.runner.pager {
            notify::deliver_due(self.catalog.as_ref(), &p.spec, &p.notifiers).await?;
        }
        Ok(())
    }

    /// Runs whose owner stopped renewing their lease (a process that died, was killed, or
    /// was cut off from the catalog and fenced itself) are recorded lost and paged (a
    /// warning: the backup is unproven, not broken), and their sandboxes removed. Their
    /// scheduled firings open again, for one daemon to run once more. A run whose owner
    /// still renews it (a `firedrill run` on the command line, another daemon) is never
    /// touched. With `leftovers`, sandboxes past their deadline are removed too.
    pub async fn recover(
        &self,
        backend: &dyn crate::sandbox::SandboxBackend,
        leftovers: bool,
    ) -> Result<Vec<String>> {
        // A process of this host that is gone (a crash, a kill) will renew nothing: its
        // runs are recovered now, not when their leases run out.
        for owner in self.catalog.run_owners().await? {
            if self.leases.owner().is_gone(&owner) {
                let n = self.catalog.expire_owner(&owner).await?;
                tracing::warn!("{owner} is gone from this host: recovering its {n} run(s) now");
            }
        }
        let lost = self.catalog.reap_expired(jiff::Timestamp::now()).await?;
        let mut ids = Vec::new();
        for l in &lost {
            let r = &l.run;
            if let Err(e) = backend.destroy(&r.run_id).await {
                tracing::error!(run = %r.run_id, "removing the sandbox of a lost run: {e}");
            }
            let by = l.owner.as_deref().unwrap_or("firedrill");
            let again = match l.firing {
                Some((_, true)) => "; its scheduled firing runs again on a daemon that is up",
                Some((_, false)) => {
                    "; its scheduled firing was already run again once, and is not run a third time"
                }
                None => "",
            };
            tracing::warn!(drill = %r.drill, run = %r.run_id, "run lost with {by}{again}");
            let report = synthetic_report(
                &r.drill,
                &r.run_id,
                ErrorKind::Lost,
                format!("run {} of drill {} was lost: {by} stopped while it ran (crash, kill, power loss, or cut off from the catalog){again}", r.run_id, r.drill),
                "the run was marked lost and its sandbox removed; the next run will tell whether the backup is good",
            );
            notify::on_run_finished(self.catalog.as_ref(), &self.config.notify, &report).await?;
            ids.push(r.run_id.clone());
        }
        if leftovers {
            match backend.reap(jiff::Timestamp::now(), false).await {
                Ok(reaped) => ids.extend(reaped),
                Err(e) => tracing::warn!("reaping leftover sandboxes: {e}"),
            }
        }
        if !ids.is_empty() {
            let _ = self.deliver().await;
        }
        Ok(ids)
    }

    /// Starts `drill` on demand here when this daemon has room, else offers it to the
    /// daemons sharing the catalog (the first with room runs it, under the same run id)
    /// when another one alive holds the drill. Returns the run id.
    pub async fn start_or_offer(
        self: &Arc<Self>,
        name: &str,
        opts: RunOptions,
        trigger: &str,
    ) -> std::result::Result<String, StartError> {
        let busy = self.permits.available_permits() <= self.queue_depth();
        let me = self.leases.id();
        let others = self
            .cluster()
            .0
            .iter()
            .any(|s| s.id != me && s.drills.contains_key(name));
        // A run that picks a stored artifact or keeps its sandbox stays here.
        if !busy || !others || opts.artifact.is_some() || opts.keep || self.shutdown.is_stopped() {
            return self.start_run(name, opts, trigger).await;
        }
        if !self.drills().contains_key(name) {
            return Err(StartError::UnknownDrill(name.to_string()));
        }
        let run_id = new_run_id();
        match self
            .catalog
            .offer_run(name, jiff::Timestamp::now(), &run_id, trigger)
            .await
        {
            Ok(()) => {
                tracing::info!(drill = %name, run = %run_id, "no room here: offered to the daemons sharing the catalog");
                Ok(run_id)
            }
            Err(e) => {
                tracing::warn!(drill = %name, "could not offer the run to the other daemons ({e}); it queues here");
                self.start_run(name, opts, trigger).await
            }
        }
    }

    /// Whether this daemon's definition of `drill` is not the one the daemons sharing the
    /// catalog agree on (it then leaves the drill to them).
    pub fn differs_here(&self, drill: &str) -> bool {
        let id = self.leases.id();
        self.cluster
            .read()
            .expect("cluster lock")
            .1
            .iter()
            .any(|s| s.drill == drill && s.differing.iter().any(|d| d == id))
    }

    /// The daemons sharing the catalog as last seen, and the drills they disagree on.
    pub fn cluster(&self) -> (Vec<crate::catalog::DaemonSeen>, Vec<crate::catalog::Skew>) {
        self.cluster.read().expect("cluster lock").clone()
    }

    /// Tells the catalog this daemon is alive with its drills, and reads which drills the
    /// daemons alive disagree on.
    async fn compare_definitions(&self) -> Result<()> {
        let now = jiff::Timestamp::now();
        let me = crate::catalog::DaemonSeen {
            id: self.leases.id().to_string(),
            seen_at: now,
            drills: (**self.defs.read().expect("defs lock")).clone(),
        };
        // Alive: seen within three polls (and three heartbeats).
        let window = (self
            .config
            .daemon
            .poll
            .max(self.config.daemon.lease.heartbeat)
            * 3)
        .max(Duration::from_secs(15));
        let since = now
            .checked_sub(jiff::SignedDuration::try_from(window).unwrap_or_default())
            .unwrap_or(now);
        let seen = self.catalog.report_daemon(&me, since).await?;
        let skew = crate::catalog::skew(&seen);
        let before = self.cluster.read().expect("cluster lock").1.clone();
        if skew != before {
            for s in &skew {
                tracing::error!(
                    drill = %s.drill,
                    "the daemons sharing the catalog hold different definitions of drill {}: {} do not run it until their files agree",
                    s.drill,
                    if s.agreed.is_some() { s.differing.join(", ") } else { "all of them (no definition is held by most)".into() }
                );
            }
        }
        *self.cluster.write().expect("cluster lock") = (seen, skew);
        Ok(())
    }

    /// Every `daemon.poll`: runs lost with their process are recovered, and firings
    /// nobody runs (handed over at a shutdown, or left by a daemon that died) are claimed
    /// while this daemon has room. A daemon cut off from the catalog claims nothing.
    pub async fn cluster_loop(self: Arc<Self>, backend: Arc<dyn crate::sandbox::SandboxBackend>) {
        loop {
            tokio::select! {
                _ = self.shutdown.stopped() => return,
                _ = tokio::time::sleep(self.config.daemon.poll) => {}
            }
            if !self.leases.in_touch() {
                continue;
            }
            if let Err(e) = self.compare_definitions().await {
                tracing::warn!("comparing drill definitions with the other daemons: {e}");
            }
            if let Err(e) = self.recover(backend.as_ref(), false).await {
                tracing::warn!("recovering lost runs: {e}");
            }
            if let Err(e) = self.claim_open_firings().await {
                tracing::warn!("claiming open firings: {e}");
            }
        }
    }

    /// How long this daemon waits before claiming a firing that is due: 250 ms per run in
    /// hand and 100 ms per firing claimed in the last quarter hour, at most 800 ms (a
    /// firing is claimed within a second of being due).
    fn claim_delay(&self) -> Duration {
        let load = (self.running() + self.queue_depth()) as u64;
        let recent = {
            let mut c = self.claims.lock().expect("claims lock");
            let now = tokio::time::Instant::now();
            while c
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(900))
            {
                c.pop_front();
            }
            c.len() as u64
        };
        Duration::from_millis((250 * load + 100 * recent).min(800))
    }

    /// Remembers a firing claimed now, for [`Daemon::claim_delay`].
    fn claimed(&self) {
        self.claims
            .lock()
            .expect("claims lock")
            .push_back(tokio::time::Instant::now());
    }

    /// Claims open firings of this daemon's drills while it has a free permit.
    async fn claim_open_firings(self: &Arc<Self>) -> Result<()> {
        loop {
            if self.shutdown.is_stopped() || self.permits.available_permits() <= self.queue_depth()
            {
                return Ok(());
            }
            let idle: Vec<String> = {
                let active = self.active.lock().expect("active lock");
                self.drills()
                    .keys()
                    .filter(|n| !active.contains_key(*n) && !self.differs_here(n))
                    .cloned()
                    .collect()
            };
            let Some(f) = self
                .catalog
                .claim_open_firing(&idle, self.leases.id())
                .await?
            else {
                return Ok(());
            };
            self.claimed();
            tracing::info!(drill = %f.drill, "claimed the firing of {} (attempt {})", f.scheduled_for, f.attempt);
            let opts = RunOptions {
                scheduled_for: Some(f.scheduled_for),
                run_id: f.run_id.clone(),
                ..Default::default()
            };
            let trigger = f.trigger.as_deref().unwrap_or("schedule");
            match self.start_run(&f.drill, opts, trigger).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(drill = %f.drill, "the firing of {} was not run: {e:?}", f.scheduled_for);
                }
            }
        }
    }

    /// Delivers the outbox every 30 s and checks objectives every minute.
    pub async fn housekeeping_loop(self: Arc<Self>, clock: Clock) {
        let mut tick = 0u64;
        loop {
            if tick.is_multiple_of(2) {
                if let Err(e) = self.check_objectives(clock.now()).await {
                    tracing::warn!("checking objectives: {e}");
                }
            }
            // Runs (and their pages) kept aside while the catalog could not take them.
            match self.catalog.catch_up().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!("recorded {n} runs kept aside while the catalog was unavailable")
                }
                Err(e) => tracing::warn!("runs kept aside stay in the spool: {e}"),
            }
            if let Err(e) = self.deliver().await {
                tracing::warn!("delivering notifications: {e}");
            }
            self.forget_old(clock.now());
            tick += 1;
            tokio::select! {
                _ = self.shutdown.stopped() => return,
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }

    /// Cancels one run.
    pub fn cancel_run(&self, run_id: &str) -> bool {
        let runs = self.runs.lock().expect("runs lock");
        match runs.get(run_id) {
            Some(r) if r.report.is_none() => {
                r.stop.stop(StopReason::Operator);
                true
            }
            _ => false,
        }
    }
}

/// How long a firing whose claim the catalog did not answer is claimed again.
const RETRY_CLAIMS: Duration = Duration::from_secs(600);

/// When `drill`'s schedule fires next after `now`: its jitter is drawn from the drill's
/// name and the firing, so every daemon sharing the catalog computes the same time, and
/// claims the same firing.
fn next_firing(
    drill: &str,
    s: &crate::schedule::Schedule,
    now: jiff::Timestamp,
) -> jiff::Timestamp {
    let Some(base) = s.next_after(now) else {
        return jiff::Timestamp::MAX;
    };
    let h = xxhash_rust::xxh3::xxh3_64(format!("{drill}@{}", base.as_second()).as_bytes());
    let random = (h >> 11) as f64 / (1u64 << 53) as f64;
    s.next_with_jitter(now, random)
        .unwrap_or(jiff::Timestamp::MAX)
}

/// Wall time that moves with tokio's clock (so paused-time tests see cron fire).
#[derive(Clone, Copy)]
pub struct Clock {
    wall: jiff::Timestamp,
    at: tokio::time::Instant,
}

impl Clock {
    pub fn start_at(wall: jiff::Timestamp) -> Self {
        Clock {
            wall,
            at: tokio::time::Instant::now(),
        }
    }
    pub fn system() -> Self {
        Self::start_at(jiff::Timestamp::now())
    }
    pub fn now(&self) -> jiff::Timestamp {
        let d = tokio::time::Instant::now().duration_since(self.at);
        self.wall
            .checked_add(jiff::SignedDuration::try_from(d).unwrap_or_default())
            .unwrap_or(self.wall)
    }
}

/// `(drill, run id or reason)` pairs of an Alertmanager webhook.
pub type HookOutcome = Vec<(String, String)>;

/// Alertmanager's webhook payload (the parts firedrill reads).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct AlertmanagerWebhook {
    #[serde(default)]
    pub alerts: Vec<WebhookAlert>,
}

impl AlertmanagerWebhook {
    /// Parses a webhook body as the API receives it; the error is the 400's message.
    pub fn from_json(body: &[u8]) -> std::result::Result<Self, String> {
        serde_json::from_slice(body)
            .map_err(|e| format!("not an Alertmanager webhook payload: {e}"))
    }

    /// The drills its firing alerts name (label `firedrill_drill`), sorted, once each.
    pub fn firing_drills(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .alerts
            .iter()
            .filter(|a| a.status == "firing")
            .filter_map(|a| a.labels.get("firedrill_drill").cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct WebhookAlert {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Binds the API's listener at `daemon.listen` (port 0 picks a free port; the daemon
/// prints the address it got).
pub async fn bind(config: &MainConfig) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(config.daemon.listen)
        .await
        .map_err(|e| {
            Error::config(format!("cannot listen on {}: {e}", config.daemon.listen))
                .with_source(e)
                .with_hint("choose another daemon.listen address or stop what uses it")
        })
}

/// Runs the daemon until `shutdown` fires: recovery, scheduler, housekeeping, and the
/// HTTP API on `listener` (already bound: tests bind port 0). Drills reach the world
/// through `connector`. Each `reload` notification re-reads the drills (the binary wires
/// SIGHUP to it).
pub async fn run(
    config: MainConfig,
    listener: tokio::net::TcpListener,
    connector: Arc<dyn Connector>,
    shutdown: Stop,
    reload: Arc<Notify>,
) -> Result<()> {
    auth::check_auth(&config)?;
    let sandboxes = connector.sandboxes()?;
    let catalog = match &config.catalog {
        Some(c) => crate::catalog::open(c, &config).await?,
        None => {
            return Err(Error::config(
                "the daemon needs `catalog = \"/path/catalog.db\"` (or a postgres:// URL) in the main config",
            ))
        }
    };
    let daemon = Daemon::with_catalog(config, connector, shutdown.clone(), catalog)?;
    {
        let d = daemon.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = d.shutdown.stopped() => return,
                    _ = reload.notified() => match d.reload() {
                        Ok(n) => eprintln!("firedrill daemon: reloaded {n} drills"),
                        Err(p) => eprintln!("firedrill daemon: drills not reloaded, the old definitions keep running:\n{p}"),
                    },
                }
            }
        });
    }
    if let Err(e) = daemon.compare_definitions().await {
        tracing::warn!("comparing drill definitions with the other daemons: {e}");
    }
    let heartbeat = Stop::new();
    tokio::spawn(
        daemon
            .leases
            .clone()
            .keep(daemon.catalog.clone(), heartbeat.clone()),
    );
    match daemon.recover(sandboxes.as_ref(), true).await {
        Ok(ids) if !ids.is_empty() => {
            tracing::warn!("recovered: removed sandboxes of {ids:?}")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("start-up recovery: {e}"),
    }
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!("firedrill daemon listening on {addr}");
    eprintln!(
        "firedrill daemon: {} drills, API on {}://{addr}",
        daemon.drills().len(),
        if daemon.config.daemon.tls.is_some() {
            "https"
        } else {
            "http"
        },
    );
    let clock = Clock::system();
    tokio::spawn(daemon.clone().schedule_loop(clock));
    tokio::spawn(daemon.clone().housekeeping_loop(clock));
    tokio::spawn(daemon.clone().digest_loop(clock));
    tokio::spawn(listing::listing_loop(daemon.clone()));
    tokio::spawn(daemon.clone().cluster_loop(sandboxes));
    let app = router(daemon.clone());
    let served = serve::serve(listener, app, &daemon.config.daemon, shutdown.clone()).await;
    daemon.drain().await;
    // The leases are renewed until the runs are over and recorded.
    heartbeat.stop(StopReason::Shutdown);
    served
}

#[cfg(test)]
mod tests;
