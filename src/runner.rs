//! One drill run the way the CLI and the daemon both do it: the run recorded in the
//! catalog as it starts and ends, its reports written (and signed), the artifact it made
//! added to the inventory, and the page its status asks for queued and delivered.
//!
//! The CLI's `run`, the daemon's schedule and API, and the tests of the stage machine's
//! failure table all go through [`Runner::run`]; only the [`Connector`] differs between
//! them (the live one, or fakes).

use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Stop;
use crate::catalog::{ArtifactRecord, Catalog, Holder, Owner, RunClaim, RunRecord};
use crate::config::Drill;
use crate::drill::{self, new_run_id, Connector, RunOptions};
use crate::evidence::ReportWriter;
use crate::lease::Leases;
use crate::notify::{Paged, Pager};
use crate::report::RunReport;
use crate::stage::Progress;
use crate::store::RunDir;

/// Runs a drill against the world, with no catalog, reports or pages: firedrill as a
/// library, and tests of one run.
pub async fn run_drill(
    drill: &Drill,
    opts: &RunOptions,
    progress: &dyn Progress,
    stop: &Stop,
) -> RunReport {
    let runner = Runner {
        connector: Arc::new(crate::drill::LiveConnector),
        catalog: None,
        reports: None,
        pager: None,
        leases: None,
    };
    runner.run(drill, opts, progress, stop).await.report
}

/// A snapshot id a person typed for a snapshot drill: one the repository does not hold is
/// their typo, refused before anything runs. A repository that cannot be read now is the
/// run's to report.
async fn check_snapshot(
    drill: &Drill,
    spec: &crate::config::SnapshotSpec,
    id: &str,
) -> crate::error::Result<()> {
    let Ok(repo) = crate::snapshot::build_repo(spec, &drill.base_dir, drill.timeouts.restore)
    else {
        return Ok(());
    };
    let Ok(snaps) = repo.snapshots().await else {
        return Ok(());
    };
    let prefixes = spec.tool == crate::config::RepoTool::Restic;
    let pick = crate::pick::Pick::Id(id.to_string());
    match crate::pick::choose(&snaps, &pick, jiff::Timestamp::now(), prefixes, 0) {
        Ok(_) => Ok(()),
        Err(why) => Err(crate::error::Error::config(format!(
            "drill {}: {} has no snapshot `{id}`: {why}",
            drill.name,
            repo.describe()
        ))
        .with_hint(format!(
            "list them with `firedrill snapshots {}`",
            drill.name
        ))),
    }
}

/// Passes a run's progress on, and notes each stage it enters in the catalog: the daemons
/// sharing it show where a run of another one is.
struct Noting<'a> {
    inner: &'a dyn Progress,
    catalog: Option<Arc<dyn Catalog>>,
    run_id: String,
}

impl Progress for Noting<'_> {
    fn stage_started(&self, stage: crate::status::Stage) {
        if let Some(c) = &self.catalog {
            let (c, id) = (c.clone(), self.run_id.clone());
            tokio::spawn(async move {
                if let Err(e) = c.run_stage(&id, stage).await {
                    tracing::debug!(run = %id, "noting stage {stage} in the catalog: {e}");
                }
            });
        }
        self.inner.stage_started(stage)
    }
    fn stage_finished(&self, report: &crate::report::StageReport) {
        self.inner.stage_finished(report)
    }
    fn stage_retrying(
        &self,
        stage: crate::status::Stage,
        attempt: u32,
        error: &crate::error::Error,
        backoff: Duration,
    ) {
        self.inner.stage_retrying(stage, attempt, error, backoff)
    }
    fn bytes(&self, stage: crate::status::Stage, done: u64, total: Option<u64>) {
        self.inner.bytes(stage, done, total)
    }
}

/// How far back a run looks in its drill's history (for the baseline and checksum turns).
const HISTORY: usize = 500;
/// How long a run waits for its pages to be delivered before leaving them queued.
const DELIVERY: Duration = Duration::from_secs(60);

/// What runs drills: where from, where they are recorded, who is paged.
#[derive(Clone)]
pub struct Runner {
    pub connector: Arc<dyn Connector>,
    pub catalog: Option<Arc<dyn Catalog>>,
    pub reports: Option<Arc<ReportWriter>>,
    pub pager: Option<Arc<Pager>>,
    /// This process's leases, renewed by its heartbeat; without them a run's lease lasts
    /// a day (a library call, a test).
    pub leases: Option<Arc<Leases>>,
}

/// Why a run was not started.
#[derive(Debug)]
pub enum Refusal {
    /// Another run of the drill holds it, in this process or another sharing the catalog.
    Held(Holder),
}

impl Refusal {
    /// The error a person is shown: it names the run in progress.
    pub fn error(&self, drill: &str) -> crate::error::Error {
        match self {
            Refusal::Held(h) => crate::error::Error::config(format!(
                "drill {drill} is already running: run {} of {}, started {}",
                h.run_id, h.owner, h.started_at
            ))
            .with_hint(format!(
                "a drill runs once at a time; wait for that run (`firedrill history {drill}`), or cancel it"
            )),
        }
    }
}

/// A finished run and what paging it did.
pub struct Ran {
    pub report: RunReport,
    /// `None` when nothing was configured to page; an error when the page could not be
    /// queued.
    pub paged: Option<crate::error::Result<Paged>>,
    /// Why the catalog did not record the run (or its pages), which were then kept in the
    /// spool and their pages sent directly. The CLI exits non-zero for it.
    pub unrecorded: Option<crate::error::Error>,
    /// The run was refused before it began (another run holds the drill): its report
    /// says so, and it was neither recorded nor paged.
    pub refused: Option<Holder>,
}

impl Runner {
    /// Runs `drill` once, records it, and pages as its status asks.
    pub async fn run(
        &self,
        drill: &Drill,
        opts: &RunOptions,
        progress: &dyn Progress,
        stop: &Stop,
    ) -> Ran {
        let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
        if !opts.claimed {
            if let Err(refusal) = self.claim(drill, &run_id, opts.scheduled_for, stop).await {
                let e = refusal.error(&drill.name);
                let Refusal::Held(h) = refusal;
                let mut report = RunReport::empty(&drill.name, &run_id, jiff::Timestamp::now());
                report.verdict = crate::status::Verdict::Error;
                report.exit_code = 2;
                report.error = Some(crate::report::ErrorReport::from(&e));
                return Ran {
                    report,
                    paged: None,
                    unrecorded: None,
                    refused: Some(h),
                };
            }
        }
        let ran = self.run_claimed(drill, &run_id, opts, progress, stop).await;
        if let Some(l) = &self.leases {
            l.release(&run_id);
        }
        ran
    }

    /// Claims `drill` for run `run_id` in the catalog, under this process's lease: no
    /// other run of it, here or in any process sharing the catalog, may run meanwhile.
    /// A catalog that cannot be written does not stop the run (it is kept aside at its
    /// end, as before); only another run holding the drill does.
    pub async fn claim(
        &self,
        drill: &Drill,
        run_id: &str,
        firing: Option<jiff::Timestamp>,
        stop: &Stop,
    ) -> Result<(), Refusal> {
        let Some(c) = &self.catalog else {
            return Ok(());
        };
        let now = jiff::Timestamp::now();
        let claim = RunClaim {
            drill: drill.name.clone(),
            run_id: run_id.to_string(),
            owner: match &self.leases {
                Some(l) => l.id().to_string(),
                None => Owner::this_process("library").id(),
            },
            at: now,
            lease_until: match &self.leases {
                Some(l) => l.until(),
                None => now
                    .checked_add(jiff::SignedDuration::from_hours(24))
                    .unwrap_or(now),
            },
            firing,
        };
        match c.claim_run(&claim).await {
            Ok(Some(h)) => return Err(Refusal::Held(h)),
            Ok(None) => {
                if let Some(l) = &self.leases {
                    l.hold(run_id, stop.clone());
                }
            }
            Err(e) => tracing::warn!("the catalog did not record the run's start: {e}"),
        }
        Ok(())
    }

    async fn run_claimed(
        &self,
        drill: &Drill,
        run_id: &str,
        opts: &RunOptions,
        progress: &dyn Progress,
        stop: &Stop,
    ) -> Ran {
        let run_id = run_id.to_string();
        // The drill's past runs: this one, claimed already, is not among them.
        let history = self.history(drill).await.map(|h| {
            h.into_iter()
                .filter(|r| r.run_id != run_id)
                .collect::<Vec<_>>()
        });
        self.sweep_orphans(drill).await;
        let parts = self.connector.connect(drill);
        let noting = Noting {
            inner: progress,
            catalog: self.catalog.clone(),
            run_id: run_id.clone(),
        };
        let done = drill::run(
            drill,
            parts,
            &run_id,
            history.as_deref(),
            opts,
            &noting,
            stop,
        )
        .await;
        let mut report = done.report;
        if let Some(late) = report.schedule_lateness_ms().filter(|ms| *ms > 1000) {
            tracing::warn!(
                drill = %drill.name,
                "started {} after its schedule fired (queued behind daemon.max_concurrent_drills?)",
                crate::human::human_ms(late)
            );
        }
        self.write_reports(&mut report);
        let artifact = done.new_artifact.as_ref().map(|m| {
            let key = RunDir::new(&drill.storage, &drill.name, &m.run_id).manifest();
            ArtifactRecord::from_manifest(m, &key)
        });
        // A snapshot drill's snapshot joins the inventory, verified or not.
        let artifact = artifact.or(done.snapshot);
        // The artifact drilled: the one made now, or the stored one asked for.
        let drilled = artifact
            .as_ref()
            .map(|a| a.run_id.clone())
            .or_else(|| opts.artifact.clone().filter(|_| report.artifact.is_some()));
        let (paged, unrecorded) = self.record_and_page(&report, artifact, drilled).await;
        Ran {
            report,
            paged,
            unrecorded,
            refused: None,
        }
    }

    /// Records the run, then pages about it. When the catalog cannot take the run or its
    /// pages (a full disk, a damaged file), the pages go straight to their channels and
    /// the run is kept in the catalog's spool until it can: a page is never lost to the
    /// catalog, and nothing doubles when it catches up.
    async fn record_and_page(
        &self,
        report: &RunReport,
        artifact: Option<ArtifactRecord>,
        drilled: Option<String>,
    ) -> (
        Option<crate::error::Result<Paged>>,
        Option<crate::error::Error>,
    ) {
        let Some(c) = &self.catalog else {
            return (self.page(report).await, None);
        };
        let recorded = async {
            if let Some(a) = &artifact {
                c.put_artifact(a).await?;
            }
            c.run_finished(report, drilled.as_deref()).await
        }
        .await;
        match (recorded, &self.pager) {
            (Ok(()), None) => (None, None),
            (Ok(()), Some(p)) => match p.page(Some(c.as_ref()), report, DELIVERY).await {
                Ok(paged) => (Some(Ok(paged)), None),
                Err(e) => self.keep_aside(c.as_ref(), report, None, None, e).await,
            },
            (Err(e), _) => {
                self.keep_aside(c.as_ref(), report, artifact, drilled, e)
                    .await
            }
        }
    }

    async fn keep_aside(
        &self,
        c: &dyn Catalog,
        report: &RunReport,
        artifact: Option<ArtifactRecord>,
        drilled: Option<String>,
        why: crate::error::Error,
    ) -> (
        Option<crate::error::Result<Paged>>,
        Option<crate::error::Error>,
    ) {
        tracing::error!(
            drill = %report.drill,
            "the catalog did not record run {}: {why}",
            report.run_id
        );
        let mut paged = None;
        let mut plan = crate::catalog::PagePlan::default();
        if let Some(p) = &self.pager {
            // The open incident, if the catalog can still be read: a failure already paged
            // is not paged again.
            let open = c.incident(&report.drill).await.ok().flatten();
            match crate::notify::plan_pages(&p.spec, open.as_ref(), report) {
                Ok(pl) => {
                    plan = pl;
                    let delivery = p.deliver_plan_directly(&mut plan).await;
                    paged = Some(Ok(Paged {
                        queued: plan.pages.len(),
                        delivery,
                    }));
                }
                Err(e) => paged = Some(Err(e)),
            }
        }
        let u = crate::catalog::Unrecorded {
            report: report.clone(),
            drilled,
            artifact,
            plan,
            why: why.to_string(),
        };
        let err = match c.keep_unrecorded(&u) {
            Ok(at) => crate::error::Error::infra(format!(
                "the catalog could not record run {}: {}; kept in {} (recorded when the catalog can take it: the next firedrill command or the daemon's next minute)",
                report.run_id, why.headline(), at.display()
            )),
            Err(e) => crate::error::Error::infra(format!(
                "the catalog could not record run {} ({}), and it could not be kept aside either: {}",
                report.run_id, why.headline(), e.headline()
            )),
        }
        .with_hint(why.hint.clone().unwrap_or_else(|| "free space on the catalog's disk; `firedrill catalog rebuild` replaces a damaged catalog".into()));
        (paged, Some(err))
    }

    /// Refuses, before any run is recorded or paged, an artifact id that names nothing
    /// this drill stored (`run --artifact`, the API's `artifact`): a usage error that lists
    /// the drill's runs.
    pub async fn check_artifact(&self, drill: &Drill, run_id: &str) -> crate::error::Result<()> {
        if let crate::config::SourceSpec::Snapshot(spec) = &drill.source {
            return check_snapshot(drill, spec, run_id).await;
        }
        // A physical drill's "artifact" is a backup set, looked up when the run reads
        // the repository (a missing one names the sets there).
        if drill.source.physical() {
            return Ok(());
        }
        // Anything else (storage unreachable, a broken manifest) is the run's to report.
        let Ok(store) = self.connector.store(drill) else {
            return Ok(());
        };
        match crate::inventory::stored_artifact(store.as_ref(), drill, run_id).await {
            Err(e) if e.kind == crate::error::ErrorKind::Config => Err(e),
            _ => Ok(()),
        }
    }

    /// Pages about a finished run (a drill's, or one the daemon made up: a missed
    /// objective, a run lost with its process).
    pub async fn page(&self, report: &RunReport) -> Option<crate::error::Result<Paged>> {
        let pager = self.pager.as_ref()?;
        Some(pager.page(self.catalog.as_deref(), report, DELIVERY).await)
    }

    /// Removes what earlier uploads of this drill left unfinished (a killed process, a
    /// cleanup that failed), so that they cannot fill the store run after run. Best
    /// effort: the drill runs whatever this finds.
    async fn sweep_orphans(&self, drill: &Drill) {
        // A local store that does not exist yet holds nothing, and is not created here
        // (a drill that cannot run creates nothing).
        if let crate::config::StorageSpec::Local { path, .. } = &drill.storage {
            if !drill.base_dir.join(path).exists() {
                return;
            }
        }
        let Ok(store) = self.connector.store(drill) else {
            return;
        };
        match crate::inventory::sweep_orphans(drill, store.as_ref(), false).await {
            Ok(o) if !o.is_empty() => {
                let bytes: u64 = o.iter().map(|o| o.bytes).sum();
                tracing::warn!(
                    drill = %drill.name,
                    "removed {} leftovers of unfinished uploads ({}): {}",
                    o.len(),
                    crate::human::human_bytes(bytes),
                    o.iter().map(|o| o.what.as_str()).collect::<Vec<_>>().join(", ")
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(drill = %drill.name, "looking for leftovers of unfinished uploads: {e}")
            }
        }
    }

    /// The drill's past runs, newest first; `None` without a catalog.
    async fn history(&self, drill: &Drill) -> Option<Vec<RunRecord>> {
        let c = self.catalog.as_ref()?;
        Some(
            c.runs(Some(&drill.name), HISTORY)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!("cannot read the drill's history from the catalog: {e}");
                    Vec::new()
                }),
        )
    }

    /// Signs the report and writes its files; a failure to write is logged, never the
    /// run's verdict.
    fn write_reports(&self, report: &mut RunReport) {
        let Some(w) = &self.reports else { return };
        match w.finish(report) {
            Ok(files) => {
                for f in files {
                    tracing::info!("wrote {}", f.display());
                }
            }
            Err(e) => tracing::warn!("could not write the run's reports: {e}"),
        }
    }
}
