//! Running one drill: the stages in order, each under its timeout and the run's
//! cancellation token, with the sandbox torn down on every exit path.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::io::StreamReader;
use tokio_util::sync::CancellationToken;

use crate::artifact::{self, check_dump_size, CountingReader, EncryptOutcome, HashingReader};
use crate::catalog::{ArtifactRecord, Catalog, Verified};
use crate::config::{Drill, SandboxSpec, SourceSpec};
use crate::engine::mysql::MysqlSource;
use crate::engine::postgres::PostgresSource;
use crate::engine::{tail, DumpSource, Engine, Inspection, SANDBOX_IDENTITY, STAGED_ARTIFACT};
use crate::error::{Error, ErrorKind, Result};
use crate::fingerprint::Fingerprint;
use crate::manifest::{Manifest, MANIFEST_VERSION};
use crate::report::{ArtifactInfo, ErrorReport, Outcome, RunReport, Stage, StageReport, Verdict};
use crate::sandbox::{build_backend, Sandbox, SandboxBackend, SandboxRequest};
use crate::secret::Secret;
use crate::store::{
    build_store, run_key, ArtifactStore, Upload, ARTIFACT_FILE, MANIFEST_FILE, VERIFIED_FILE,
};

/// How a run is asked to behave.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Leave the sandbox running for a person to inspect.
    pub keep: bool,
    /// Drill this stored artifact (its run id) instead of taking a new backup.
    pub artifact: Option<String>,
    /// Use this run id (the caller already announced it); default: a new one.
    pub run_id: Option<String>,
    /// Where runs and artifacts are recorded.
    pub catalog: Option<Arc<dyn Catalog>>,
    /// Where the run's reports are written, and the key that signs them.
    pub reports: Option<Arc<crate::evidence::ReportWriter>>,
    /// When the schedule fired for this run (scheduled runs only): the report keeps it,
    /// so lateness behind the concurrency limit shows.
    pub scheduled_for: Option<jiff::Timestamp>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("keep", &self.keep)
            .field("artifact", &self.artifact)
            .field("run_id", &self.run_id)
            .field("catalog", &self.catalog.is_some())
            .field("reports", &self.reports)
            .field("scheduled_for", &self.scheduled_for)
            .finish()
    }
}

/// What `verified.json` beside an artifact says: the last drill's verdict on it, so a
/// rebuilt catalog knows it too.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VerificationMarker {
    pub verified: Verified,
    pub at: jiff::Timestamp,
    pub by_run: String,
}

/// What a synthesized manifest says of formats firedrill did not write: detected at
/// restore.
const EXTERNAL_FORMAT: &str = "auto";

/// Receives stage events as they happen (the CLI prints them; the daemon will stream them).
pub trait Progress: Send + Sync {
    fn stage_started(&self, _stage: Stage) {}
    fn stage_finished(&self, _report: &StageReport) {}
    /// Bytes a running stage has moved so far (`total` when known), a few times a second:
    /// the dump's plain bytes, the restore's staged bytes.
    fn bytes(&self, _stage: Stage, _done: u64, _total: Option<u64>) {}
}

/// How often running stages report their bytes.
const PROGRESS_TICK: Duration = Duration::from_millis(250);

/// Runs `fut`, calling `tick` every [`PROGRESS_TICK`] until it finishes.
async fn ticking<T>(fut: impl Future<Output = T>, tick: impl Fn()) -> T {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            v = &mut fut => return v,
            _ = tokio::time::sleep(PROGRESS_TICK) => tick(),
        }
    }
}

/// A [`Progress`] that ignores everything.
pub struct Silent;
impl Progress for Silent {}

/// The things a run talks to, built from a validated drill.
pub struct Parts {
    pub source: Box<dyn DumpSource>,
    pub store: Arc<dyn ArtifactStore>,
    pub sandbox: Arc<dyn SandboxBackend>,
    pub recipients: Vec<age::x25519::Recipient>,
    pub identity: Secret,
}

/// Reads the secrets a drill names and builds its source, store and sandbox backend.
pub fn build_parts(drill: &Drill) -> Result<Parts> {
    let source: Box<dyn DumpSource> = match &drill.source {
        SourceSpec::Postgres(pg) => Box::new(PostgresSource::new(
            pg.clone(),
            load_password(drill, &pg.password)?,
        )),
        SourceSpec::Mysql(my) => Box::new(MysqlSource::new(
            my.clone(),
            load_password(drill, &my.password)?,
        )),
        SourceSpec::Stored(_) => Box::new(NoSource),
    };
    let recipients_file = drill
        .encryption
        .recipients_file
        .as_ref()
        .map(|p| drill.resolve(p));
    let recipients =
        artifact::load_recipients(&drill.encryption.recipients, recipients_file.as_deref())?;
    let identity = drill
        .encryption
        .identity
        .load(&drill.base_dir)
        .map_err(|e| e.context("encryption.identity"))?;
    check_identity(&identity)?;
    let store: Arc<dyn ArtifactStore> = Arc::from(build_store(&drill.storage, &drill.base_dir)?);
    let sandbox = build_backend(&drill.sandbox)?;
    Ok(Parts {
        source,
        store,
        sandbox,
        recipients,
        identity,
    })
}

/// Reads `source.password`, when the source has one.
fn load_password(
    drill: &Drill,
    source: &Option<crate::secret::SecretSource>,
) -> Result<Option<Secret>> {
    source
        .as_ref()
        .map(|p| p.load(&drill.base_dir))
        .transpose()
        .map_err(|e| e.context("source.password"))
}

/// The source of a verify-only drill: there is nothing to dump.
struct NoSource;

#[async_trait::async_trait]
impl DumpSource for NoSource {
    async fn start(
        &self,
        _checksums: &crate::fingerprint::ChecksumPlan,
    ) -> Result<crate::engine::StartedDump> {
        Err(Error::config(
            "a verify-only drill (source.type = \"stored\") has no source to dump",
        ))
    }
}

/// The identity must hold at least one age X25519 secret key; catching that here saves a
/// whole dump and upload.
fn check_identity(identity: &Secret) -> Result<()> {
    let ok = identity
        .expose()
        .lines()
        .map(str::trim)
        .any(|l| l.starts_with("AGE-SECRET-KEY-1"));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            "encryption.identity does not contain an age secret key (AGE-SECRET-KEY-1…)",
        )
        .with_hint("point it at the identity file written by `firedrill keygen` or `age-keygen`"))
    }
}

/// A run id: sortable by time, unique enough for labels and storage keys.
pub fn new_run_id() -> String {
    let ts = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    format!("{ts}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Runs a drill end to end and reports. Never panics on bad input; every failure is in the
/// report.
pub async fn run_drill(
    drill: &Drill,
    opts: &RunOptions,
    progress: &dyn Progress,
    cancel: CancellationToken,
) -> RunReport {
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    let started_at = jiff::Timestamp::now();
    match build_parts(drill) {
        Ok(parts) => run_with_parts(drill, parts, run_id, opts, progress, cancel).await,
        Err(e) => {
            let mut run = Run::new(drill, run_id, started_at, progress, cancel);
            run.fail(None, e);
            let mut report = run.finish();
            report.scheduled_for = opts.scheduled_for;
            write_reports(opts, &mut report);
            if let Some(c) = &opts.catalog {
                if let Err(e) = c.run_finished(&report, None).await {
                    tracing::warn!("the catalog did not record the run: {e}");
                }
            }
            report
        }
    }
}

/// Runs a drill with the given parts (tests pass fakes here).
pub async fn run_with_parts(
    drill: &Drill,
    parts: Parts,
    run_id: String,
    opts: &RunOptions,
    progress: &dyn Progress,
    cancel: CancellationToken,
) -> RunReport {
    let started = jiff::Timestamp::now();
    if let Some(c) = &opts.catalog {
        if let Err(e) = c.run_started(&drill.name, &run_id, started).await {
            tracing::warn!("the catalog did not record the run's start: {e}");
        }
    }
    let store = parts.store.clone();
    let (mut report, manifest) = execute(drill, parts, run_id, opts, progress, cancel).await;
    report.scheduled_for = opts.scheduled_for;
    if let Some(late) = report.schedule_lateness_ms().filter(|ms| *ms > 1000) {
        tracing::warn!(
            drill = %drill.name,
            "started {} after its schedule fired (queued behind daemon.max_concurrent_drills?)",
            crate::report::human_ms(late)
        );
    }
    write_reports(opts, &mut report);
    // Files made by other tools are not firedrill's artifacts: no marker, no inventory.
    let manifest = manifest.filter(|m| m.dump_format != EXTERNAL_FORMAT);
    let artifact = manifest.as_ref().map(|m| m.run_id.clone());
    // The verdict on the artifact goes beside it in storage (so a rebuilt catalog has it)
    // and into the catalog.
    let verdict = report.artifact_verdict();
    if let (Some(m), Some(v)) = (&manifest, verdict) {
        let key = run_key(&drill.storage, &drill.name, &m.run_id, VERIFIED_FILE);
        let marker = VerificationMarker {
            verified: v,
            at: report.finished_at,
            by_run: report.run_id.clone(),
        };
        let body = serde_json::to_vec_pretty(&marker).unwrap_or_default();
        if let Err(e) = store.put(&key, Bytes::from(body)).await {
            tracing::warn!("could not record the verification beside the artifact: {e}");
        }
    }
    if let Some(c) = &opts.catalog {
        if let (Some(m), None) = (&manifest, &opts.artifact) {
            let key = run_key(&drill.storage, &drill.name, &m.run_id, MANIFEST_FILE);
            if let Err(e) = c
                .put_artifact(&ArtifactRecord::from_manifest(m, &key))
                .await
            {
                tracing::warn!("the catalog did not record the artifact: {e}");
            }
        }
        if let Err(e) = c.run_finished(&report, artifact.as_deref()).await {
            tracing::warn!("the catalog did not record the run: {e}");
        }
    }
    report
}

/// The stages themselves; returns the report and the manifest of the artifact drilled.
async fn execute(
    drill: &Drill,
    parts: Parts,
    run_id: String,
    opts: &RunOptions,
    progress: &dyn Progress,
    cancel: CancellationToken,
) -> (RunReport, Option<Manifest>) {
    let mut run = Run::new(drill, run_id, jiff::Timestamp::now(), progress, cancel);
    let history = match &opts.catalog {
        Some(c) => c.runs(Some(&drill.name), 500).await.unwrap_or_else(|e| {
            tracing::warn!("cannot read the drill's history from the catalog: {e}");
            Vec::new()
        }),
        None => Vec::new(),
    };
    // Large tables take turns being checksummed: this run's turn is how many ran before.
    run.checksums.slot = if opts.catalog.is_some() {
        history.len() as u64
    } else {
        rand::random::<u32>().into()
    };
    run.baseline = baseline(&history, &run.run_id, parts.store.as_ref()).await;
    let manifest = match (&drill.source, &opts.artifact) {
        (SourceSpec::Stored(spec), _) => run.external(&parts, spec).await,
        (_, None) => {
            run.made_backup = true;
            run.backup(&parts).await
        }
        (_, Some(id)) => run.existing(&parts, id).await,
    };
    let Ok(manifest) = manifest else {
        run.skip_from(Stage::Provision);
        return (run.finish(), None);
    };
    let engine = match Engine::parse(&manifest.engine) {
        Ok(e) => e,
        Err(e) => {
            run.fail(None, e);
            run.skip_from(Stage::Provision);
            return (run.finish(), None);
        }
    };
    // Leftovers of runs that died without their teardown (past their expiry label) go
    // before this run adds a sandbox: sandboxes must not pile up and fill the disk.
    match tokio::time::timeout(
        Duration::from_secs(30),
        parts.sandbox.reap(jiff::Timestamp::now(), false),
    )
    .await
    {
        Ok(Ok(reaped)) if !reaped.is_empty() => {
            tracing::warn!("removed leftover sandboxes of runs {reaped:?}")
        }
        Ok(Err(e)) => tracing::debug!("reaping leftover sandboxes: {e}"),
        _ => {}
    }
    let mut guard = SandboxGuard {
        backend: parts.sandbox.clone(),
        run_id: run.run_id.clone(),
        armed: true,
    };
    let sandbox = run.provision(&parts, engine, &manifest, opts.keep).await;
    if let Ok(sandbox) = &sandbox {
        if run
            .restore(&parts, engine, sandbox, &manifest)
            .await
            .is_ok()
        {
            let _ = run.verify(&parts, engine, sandbox, &manifest).await;
        } else {
            run.skip(Stage::Verify);
        }
    } else {
        run.skip(Stage::Restore);
        run.skip(Stage::Verify);
    }
    if opts.keep {
        guard.armed = false;
        if let Ok(sb) = &sandbox {
            run.kept_sandbox = Some(format!(
                "{} (remove with `docker rm -f {}` or `firedrill reap --all`)",
                engine.connect_cmd(&sb.name, &manifest.databases[0]),
                sb.name
            ));
            run.record(
                Stage::Teardown,
                Outcome::Skipped,
                Duration::ZERO,
                None,
                1,
                None,
                vec!["kept for --keep".into()],
            );
        } else {
            run.teardown(&parts).await;
        }
    } else {
        run.teardown(&parts).await;
    }
    guard.armed = false;
    (run.finish(), Some(manifest))
}

/// The newest run of the drill, other than `this_run`, that passed or was accepted and whose
/// manifest storage still has.
async fn baseline(
    history: &[crate::catalog::RunRecord],
    this_run: &str,
    store: &dyn ArtifactStore,
) -> Option<Baseline> {
    for r in history {
        if r.run_id == this_run || !(r.status == "passed" || r.accepted) {
            continue;
        }
        let Some(report) = r
            .report
            .as_deref()
            .and_then(|j| serde_json::from_str::<RunReport>(j).ok())
        else {
            continue;
        };
        let Some(key) = report.artifact.map(|a| a.manifest) else {
            continue;
        };
        match store.get(&key).await {
            Ok(bytes) => match Manifest::from_json(&bytes, &key) {
                Ok(manifest) if manifest.dump_format != EXTERNAL_FORMAT => {
                    return Some(Baseline {
                        run_id: r.run_id.clone(),
                        manifest,
                    })
                }
                _ => continue,
            },
            Err(e) => {
                tracing::debug!("baseline run {}: {e}", r.run_id);
                continue;
            }
        }
    }
    None
}

/// Accepts a run that failed only its anomaly guards (a shrink that was intended, e.g. old
/// data deleted on purpose): it becomes the baseline for later runs and its artifact
/// counts as good, in the catalog and, when the drill is given, beside the artifact.
pub async fn accept_run(
    catalog: &dyn Catalog,
    run_id: &str,
    drill: Option<&Drill>,
) -> Result<crate::catalog::RunRecord> {
    let rec = catalog.run(run_id).await?.ok_or_else(|| {
        Error::config(format!("there is no run {run_id} in the catalog"))
            .with_hint("list runs with `firedrill history DRILL`")
    })?;
    let report: RunReport = rec
        .report
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| Error::config(format!("run {run_id} has no finished report to accept")))?;
    if !crate::verify::only_guards_failed(&report) {
        return Err(Error::config(format!(
            "run {run_id} ({}) did not fail on its anomaly guards alone; only such runs can be accepted",
            rec.status
        ))
        .with_hint("a run that failed its fingerprint or assertions is a broken backup: fix the cause and run the drill again"));
    }
    let at = jiff::Timestamp::now();
    catalog.accept_run(run_id, at).await?;
    if let (Some(drill), Some(artifact)) = (drill, &rec.artifact) {
        let store = build_store(&drill.storage, &drill.base_dir)?;
        let key = run_key(&drill.storage, &drill.name, artifact, VERIFIED_FILE);
        let marker = VerificationMarker {
            verified: Verified::Yes,
            at,
            by_run: run_id.to_string(),
        };
        store
            .put(
                &key,
                Bytes::from(serde_json::to_vec_pretty(&marker).unwrap_or_default()),
            )
            .await?;
    }
    Ok(rec)
}

/// Signs the report and writes its files, as the options say; a failure to write is
/// logged, never the run's verdict.
fn write_reports(opts: &RunOptions, report: &mut RunReport) {
    if let Some(w) = &opts.reports {
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

/// Parallel restore jobs: the sandbox's CPUs, rounded up.
fn restore_jobs(drill: &Drill) -> u32 {
    let crate::config::SandboxSpec::Docker(d) = &drill.sandbox;
    d.cpus.ceil().clamp(1.0, 64.0) as u32
}

/// This host's name, for evidence.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
}

/// Removes the run's sandbox if the run future is dropped before its teardown (a panic,
/// a caller that gave up). Normal paths tear down explicitly and disarm it.
struct SandboxGuard {
    backend: Arc<dyn SandboxBackend>,
    run_id: String,
    armed: bool,
}

impl Drop for SandboxGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let backend = self.backend.clone();
            let run_id = self.run_id.clone();
            handle.spawn(async move {
                if let Err(e) = backend.destroy(&run_id).await {
                    tracing::error!(run = %run_id, "sandbox cleanup after an interrupted run failed: {e}");
                }
            });
        }
    }
}

struct Run<'a> {
    drill: &'a Drill,
    run_id: String,
    started_at: jiff::Timestamp,
    progress: &'a dyn Progress,
    cancel: CancellationToken,
    stages: Vec<StageReport>,
    failure: Option<(Option<Stage>, Error)>,
    artifact: Option<ArtifactInfo>,
    source_version: Option<String>,
    dump_tool: Option<String>,
    sandbox_image: Option<String>,
    fingerprint: Option<Fingerprint>,
    mismatches: Vec<crate::fingerprint::Mismatch>,
    assertions: Vec<crate::assertion::AssertionResult>,
    kept_sandbox: Option<String>,
    /// Which tables the dump checksums.
    checksums: crate::fingerprint::ChecksumPlan,
    /// The last passing (or accepted) run's artifact, for the anomaly guards and
    /// `row_count.max_change`.
    baseline: Option<Baseline>,
    /// Whether this run made the artifact it drills (the guards judge only new backups).
    made_backup: bool,
    evidence: crate::report::Evidence,
}

/// The artifact of the last run that passed or was accepted.
struct Baseline {
    run_id: String,
    manifest: Manifest,
}

fn outcome_of(e: &Error) -> Outcome {
    match e.kind {
        ErrorKind::Timeout => Outcome::TimedOut,
        ErrorKind::Cancelled => Outcome::Aborted,
        _ => Outcome::Failed,
    }
}

fn timeout_error(stage: Stage, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("stage {stage} did not finish within its timeout of {}", humantime::format_duration(limit)),
    )
    .with_hint(format!(
        "if the stage is just slow, raise timeouts.{stage} in the drill file; if it hangs, look at what it waits for"
    ))
}

/// Runs `fut` until it ends, its deadline passes or `cancel` fires.
async fn bounded<T>(
    stage: Stage,
    limit: Duration,
    cancel: &CancellationToken,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Error::cancelled()),
        r = tokio::time::timeout(limit, fut) => r.unwrap_or_else(|_| Err(timeout_error(stage, limit))),
    }
}

impl<'a> Run<'a> {
    fn new(
        drill: &'a Drill,
        run_id: String,
        started_at: jiff::Timestamp,
        progress: &'a dyn Progress,
        cancel: CancellationToken,
    ) -> Self {
        Run {
            drill,
            run_id,
            started_at,
            progress,
            cancel,
            stages: Vec::new(),
            failure: None,
            artifact: None,
            source_version: None,
            dump_tool: None,
            sandbox_image: None,
            fingerprint: None,
            mismatches: Vec::new(),
            assertions: Vec::new(),
            kept_sandbox: None,
            checksums: drill.checksums,
            baseline: None,
            made_backup: false,
            evidence: crate::report::Evidence::default(),
        }
    }

    /// Records the first failure of the run: the one that decides the verdict.
    fn fail(&mut self, stage: Option<Stage>, e: Error) {
        if self.failure.is_none() {
            self.failure = Some((stage, e));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        stage: Stage,
        outcome: Outcome,
        duration: Duration,
        bytes: Option<u64>,
        attempts: u32,
        error: Option<&Error>,
        notes: Vec<String>,
    ) {
        let mut notes = notes;
        // Throughput goes with every stage that moved bytes, so a restore that got slower
        // than its history shows it.
        if let (Some(b), Outcome::Passed) = (bytes, outcome) {
            if let Some(rate) = crate::report::throughput_mb_s(b, duration.as_millis() as u64) {
                notes.push(format!("{rate:.1} MB/s"));
            }
        }
        let r = StageReport {
            stage,
            outcome,
            duration_ms: duration.as_millis() as u64,
            timeout_ms: self.drill.timeouts.get(stage).as_millis() as u64,
            bytes,
            attempts,
            error: error.map(ErrorReport::from),
            notes,
        };
        self.progress.stage_finished(&r);
        self.stages.push(r);
    }

    fn skip(&mut self, stage: Stage) {
        if !self.stages.iter().any(|s| s.stage == stage) {
            self.record(
                stage,
                Outcome::Skipped,
                Duration::ZERO,
                None,
                0,
                None,
                vec![],
            );
        }
    }

    /// Marks dump, encrypt and upload skipped: the run drills something already stored.
    fn skip_backup(&mut self, why: &str) {
        for s in [Stage::Dump, Stage::Encrypt, Stage::Upload] {
            self.record(
                s,
                Outcome::Skipped,
                Duration::ZERO,
                None,
                0,
                None,
                vec![why.to_string()],
            );
        }
    }

    fn skip_from(&mut self, first: Stage) {
        let mut on = false;
        for s in Stage::ALL {
            on |= s == first;
            if on {
                self.skip(s);
            }
        }
    }

    /// Runs one stage under its timeout and the run's cancellation, and records it.
    async fn stage<T>(
        &mut self,
        stage: Stage,
        bytes: impl FnOnce(&T) -> Option<u64>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.progress.stage_started(stage);
        let t = Instant::now();
        let r = bounded(stage, self.drill.timeouts.get(stage), &self.cancel, fut).await;
        match r {
            Ok(v) => {
                let b = bytes(&v);
                self.record(stage, Outcome::Passed, t.elapsed(), b, 1, None, vec![]);
                Ok(v)
            }
            Err(e) => {
                let e = e.context(format!("stage {stage}"));
                self.record(
                    stage,
                    outcome_of(&e),
                    t.elapsed(),
                    None,
                    1,
                    Some(&e),
                    vec![],
                );
                self.fail(Some(stage), e.clone());
                Err(e)
            }
        }
    }

    /// Dump, encrypt and upload run at once as one stream; each is a stage with its own
    /// timeout. If one fails the others stop, and nothing complete-looking is stored.
    async fn backup(&mut self, parts: &Parts) -> std::result::Result<Manifest, ()> {
        let t = self.drill.timeouts.clone();
        let drill = self.drill;
        self.progress.stage_started(Stage::Dump);
        let dump_t0 = Instant::now();
        let started = bounded(
            Stage::Dump,
            t.dump,
            &self.cancel,
            parts.source.start(&self.checksums),
        )
        .await;
        let started = match started {
            Ok(s) => s,
            Err(e) => {
                let e = e.context("stage dump");
                self.record(
                    Stage::Dump,
                    outcome_of(&e),
                    dump_t0.elapsed(),
                    None,
                    1,
                    Some(&e),
                    vec![],
                );
                self.fail(Some(Stage::Dump), e);
                self.skip(Stage::Encrypt);
                self.skip(Stage::Upload);
                return Err(());
            }
        };
        let meta = started.meta.clone();
        self.source_version = Some(format!("{} {}", meta.engine.as_str(), meta.server_version));
        self.dump_tool = Some(format!("{} {}", meta.tool, meta.tool_version));
        let fingerprint = started.fingerprint.clone();
        self.fingerprint = Some(fingerprint.clone());
        let mut dump_notes = vec![format!(
            "{} {} → {} {}",
            meta.engine.as_str(),
            meta.server_version,
            meta.tool,
            meta.tool_version
        )];

        let artifact_key = run_key(&drill.storage, &drill.name, &self.run_id, ARTIFACT_FILE);
        let manifest_key = run_key(&drill.storage, &drill.name, &self.run_id, MANIFEST_FILE);

        let pipeline_cancel = self.cancel.child_token();
        let first_failure: Arc<Mutex<Option<(Stage, Error)>>> = Arc::new(Mutex::new(None));
        let note_failure = |stage: Stage, e: &Error| {
            if e.kind != ErrorKind::Cancelled {
                let mut f = first_failure.lock().expect("lock");
                if f.is_none() {
                    *f = Some((stage, e.clone()));
                }
            }
            pipeline_cancel.cancel();
        };

        let (reader, plain_count, eof) = CountingReader::new(started.output);
        let (tx, rx) = mpsc::channel::<Upload>(artifact::CHANNEL_DEPTH);
        let (ok_tx, ok_rx) = oneshot::channel::<bool>();
        let (inspected_tx, inspected_rx) = oneshot::channel::<Result<Inspection>>();
        let (fp_tx, fp_rx) = oneshot::channel::<(Fingerprint, Vec<String>)>();
        let inspector = started.inspector;
        let snapshot = fingerprint.clone();
        let (enc_tx, enc_rx) = oneshot::channel::<EncryptOutcome>();
        let recipients = parts.recipients.clone();
        let (level, threads) = (drill.compression.level, drill.compression.threads);
        self.progress.stage_started(Stage::Encrypt);
        self.progress.stage_started(Stage::Upload);
        let encrypt_task = tokio::task::spawn_blocking(move || {
            artifact::encrypt_stream(
                reader,
                recipients,
                level,
                threads,
                inspector,
                snapshot,
                inspected_tx,
                tx,
                ok_rx,
            )
        });
        let min_dump = drill.source.min_dump_bytes();

        let completion = started.completion;
        let dump_fut = async {
            let r = bounded(Stage::Dump, t.dump, &pipeline_cancel, async {
                completion.await?;
                // The tool has exited; wait for its last bytes to be read before judging.
                let _ = eof.await;
                let inspection = inspected_rx.await.map_err(|_| Error::cancelled())??;
                let plain = plain_count.load(std::sync::atomic::Ordering::Relaxed);
                check_dump_size(plain, min_dump)?;
                Ok((plain, inspection))
            })
            .await;
            let r = r.map(|(plain, inspection)| {
                let fp = inspection
                    .fingerprint
                    .unwrap_or_else(|| fingerprint.clone());
                let _ = fp_tx.send((fp.clone(), inspection.notes.clone()));
                (plain, fp, inspection.notes)
            });
            let _ = ok_tx.send(r.is_ok());
            if let Err(e) = &r {
                note_failure(Stage::Dump, e);
            }
            (r, dump_t0.elapsed())
        };
        let enc_t0 = Instant::now();
        let encrypt_fut = async {
            let r = bounded(Stage::Encrypt, t.encrypt, &pipeline_cancel, async {
                let out = encrypt_task
                    .await
                    .map_err(|e| Error::internal(format!("the encryption thread failed: {e}")))??;
                let _ = enc_tx.send(out.clone());
                Ok(out)
            })
            .await;
            if let Err(e) = &r {
                note_failure(Stage::Encrypt, e);
            }
            (r, enc_t0.elapsed())
        };
        let store = parts.store.clone();
        let manifest_ctx = (meta.clone(), artifact_key.clone(), manifest_key.clone());
        let run_id = self.run_id.clone();
        let started_at = self.started_at;
        let recipients_text: Vec<String> = parts.recipients.iter().map(|r| r.to_string()).collect();
        let upload_fut = async {
            let r = bounded(Stage::Upload, t.upload, &pipeline_cancel, async {
                let written = store.put_stream(&artifact_key, rx).await?;
                let enc = enc_rx.await.map_err(|_| Error::cancelled())?;
                let (fingerprint, notes) = fp_rx.await.map_err(|_| Error::cancelled())?;
                // Trust nothing we have not checked: the stored object must be exactly
                // what was produced before the manifest makes it look complete.
                let stored = store.size(&artifact_key).await?;
                if stored != enc.encrypted_bytes || written != enc.encrypted_bytes {
                    return Err(Error::infra(format!(
                        "storage holds {stored} bytes for {artifact_key}, {} were produced",
                        enc.encrypted_bytes
                    )));
                }
                let (meta, artifact_key, manifest_key) = manifest_ctx;
                let manifest = Manifest {
                    manifest_version: MANIFEST_VERSION,
                    drill: drill.name.clone(),
                    run_id,
                    started_at,
                    finished_at: jiff::Timestamp::now(),
                    engine: meta.engine.as_str().into(),
                    source_server_version: meta.server_version.clone(),
                    source_major: meta.server_major.clone(),
                    databases: meta.databases.clone(),
                    dump_tool: meta.tool.clone(),
                    dump_tool_version: meta.tool_version.clone(),
                    dump_format: meta.format.clone(),
                    compression: "zstd".into(),
                    encryption: "age".into(),
                    artifact_key,
                    plain_bytes: enc.plain_bytes,
                    compressed_bytes: enc.compressed_bytes,
                    encrypted_bytes: enc.encrypted_bytes,
                    sha256: enc.sha256.clone(),
                    recipients: recipients_text,
                    fingerprint,
                    notes,
                    firedrill_version: env!("CARGO_PKG_VERSION").into(),
                };
                store
                    .put(&manifest_key, Bytes::from(manifest.to_json()))
                    .await?;
                Ok((written, manifest))
            })
            .await;
            if let Err(e) = &r {
                note_failure(Stage::Upload, e);
            }
            (r, enc_t0.elapsed())
        };
        let progress = self.progress;
        let counted = plain_count.clone();
        let ((dump_r, dump_d), (enc_r, enc_d), (up_r, up_d)) = ticking(
            async { tokio::join!(dump_fut, encrypt_fut, upload_fut) },
            || {
                progress.bytes(
                    Stage::Dump,
                    counted.load(std::sync::atomic::Ordering::Relaxed),
                    None,
                )
            },
        )
        .await;

        let first = first_failure.lock().expect("lock").take();
        let record = |run: &mut Self,
                      stage: Stage,
                      r: Result<Option<u64>>,
                      d: Duration,
                      notes: Vec<String>| match r {
            Ok(b) => run.record(stage, Outcome::Passed, d, b, 1, None, notes),
            Err(e) => {
                let e = e.context(format!("stage {stage}"));
                run.record(stage, outcome_of(&e), d, None, 1, Some(&e), notes);
            }
        };
        if let Ok((_, fp, notes)) = &dump_r {
            dump_notes.push(format!(
                "{} tables, {} rows",
                fp.tables.len(),
                fp.total_rows()
            ));
            dump_notes.extend(notes.iter().cloned());
            self.fingerprint = Some(fp.clone());
        }
        record(
            self,
            Stage::Dump,
            dump_r.map(|(plain, _, _)| Some(plain)),
            dump_d,
            dump_notes,
        );
        let enc_ok = enc_r.as_ref().ok().cloned();
        record(
            self,
            Stage::Encrypt,
            enc_r.map(|o| Some(o.encrypted_bytes)),
            enc_d,
            vec![],
        );
        let up_ok = up_r.as_ref().ok().map(|(_, m)| m.clone());
        record(
            self,
            Stage::Upload,
            up_r.map(|(n, _)| Some(n)),
            up_d,
            vec![],
        );

        match (first, enc_ok, up_ok) {
            (None, Some(enc), Some(manifest)) => {
                self.evidence.storage = parts.store.describe();
                self.evidence.artifact_key = Some(manifest.artifact_key.clone());
                self.artifact = Some(ArtifactInfo {
                    location: format!("{} / {}", parts.store.describe(), manifest.artifact_key),
                    manifest: manifest_key,
                    sha256: enc.sha256,
                    plain_bytes: enc.plain_bytes,
                    compressed_bytes: enc.compressed_bytes,
                    encrypted_bytes: enc.encrypted_bytes,
                });
                Ok(manifest)
            }
            (Some((stage, e)), _, _) => {
                self.fail(Some(stage), e.context(format!("stage {stage}")));
                Err(())
            }
            (None, _, _) => {
                // Only cancellation ends here.
                self.fail(Some(Stage::Dump), Error::cancelled());
                Err(())
            }
        }
    }

    /// Takes a stored artifact instead of a new backup: its manifest decides the rest.
    async fn existing(
        &mut self,
        parts: &Parts,
        artifact: &str,
    ) -> std::result::Result<Manifest, ()> {
        let key = run_key(
            &self.drill.storage,
            &self.drill.name,
            artifact,
            MANIFEST_FILE,
        );
        let loaded = async {
            let bytes = parts.store.get(&key).await.map_err(|e| {
                e.with_hint(format!(
                    "no manifest at {key}: check the artifact id (the run id that made it)"
                ))
            })?;
            Manifest::from_json(&bytes, &key)
        }
        .await;
        let note = format!("drilling stored artifact {artifact}");
        self.skip_backup(&note);
        match loaded {
            Ok(m) => {
                self.source_version = Some(format!("{} {}", m.engine, m.source_server_version));
                self.dump_tool = Some(format!("{} {}", m.dump_tool, m.dump_tool_version));
                self.fingerprint = Some(m.fingerprint.clone());
                self.evidence.storage = parts.store.describe();
                self.evidence.artifact_key = Some(m.artifact_key.clone());
                self.artifact = Some(ArtifactInfo {
                    location: format!("{} / {}", parts.store.describe(), m.artifact_key),
                    manifest: key,
                    sha256: m.sha256.clone(),
                    plain_bytes: m.plain_bytes,
                    compressed_bytes: m.compressed_bytes,
                    encrypted_bytes: m.encrypted_bytes,
                });
                let fits = match &self.drill.source {
                    SourceSpec::Postgres(_) => m.engine == "postgres",
                    SourceSpec::Mysql(_) => m.engine == "mysql" || m.engine == "mariadb",
                    SourceSpec::Stored(_) => false,
                };
                if !fits {
                    self.fail(
                        None,
                        Error::config(format!(
                            "artifact {artifact} is a {} dump, not one of this drill's source",
                            m.engine
                        )),
                    );
                    return Err(());
                }
                Ok(m)
            }
            Err(e) => {
                self.fail(None, e);
                Err(())
            }
        }
    }

    /// A verify-only drill: the newest file under the drill's prefix, made by another tool.
    /// There is no manifest, so the drill writes down what it can learn (size, SHA-256)
    /// and the restore detects encryption, compression and format.
    async fn external(
        &mut self,
        parts: &Parts,
        spec: &crate::config::StoredSpec,
    ) -> std::result::Result<Manifest, ()> {
        let note = format!("verify-only: newest file under {}", spec.prefix);
        self.skip_backup(&note);
        let found = async {
            let keys = parts.store.list(&spec.prefix).await?;
            let mut newest: Option<(Option<jiff::Timestamp>, String)> = None;
            for k in keys {
                let m = parts.store.modified(&k).await?;
                if newest.as_ref().is_none_or(|(nm, nk)| (m, &k) > (*nm, nk)) {
                    newest = Some((m, k));
                }
            }
            let (modified, key) = newest.ok_or_else(|| {
                Error::backup(format!(
                    "no file under {} in {}",
                    spec.prefix,
                    parts.store.describe()
                ))
                .with_hint(
                    "the backup job that should put files there has not, or source.prefix is wrong",
                )
            })?;
            let size = parts.store.size(&key).await?;
            Ok::<_, Error>((key, size, modified))
        }
        .await;
        let (key, size, modified) = match found {
            Ok(v) => v,
            Err(e) => {
                self.fail(None, e);
                return Err(());
            }
        };
        let now = jiff::Timestamp::now();
        self.evidence.storage = parts.store.describe();
        self.evidence.artifact_key = Some(key.clone());
        self.artifact = Some(ArtifactInfo {
            location: format!("{} / {key}", parts.store.describe()),
            manifest: String::new(),
            sha256: String::new(),
            plain_bytes: 0,
            compressed_bytes: 0,
            encrypted_bytes: size,
        });
        self.source_version = Some(format!(
            "{} {} (declared)",
            spec.engine.as_str(),
            spec.version
        ));
        Ok(Manifest {
            manifest_version: MANIFEST_VERSION,
            drill: self.drill.name.clone(),
            run_id: self.run_id.clone(),
            started_at: modified.unwrap_or(now),
            finished_at: modified.unwrap_or(now),
            engine: spec.engine.as_str().into(),
            source_server_version: spec.version.clone(),
            source_major: spec.version.clone(),
            databases: vec![spec.database.clone()],
            dump_tool: "external".into(),
            dump_tool_version: String::new(),
            dump_format: EXTERNAL_FORMAT.into(),
            compression: EXTERNAL_FORMAT.into(),
            encryption: EXTERNAL_FORMAT.into(),
            artifact_key: key,
            plain_bytes: 0,
            compressed_bytes: 0,
            encrypted_bytes: size,
            sha256: String::new(),
            recipients: vec![],
            fingerprint: Fingerprint::default(),
            notes: vec![],
            firedrill_version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    /// Creates the sandbox from the image matching the source's major version and waits
    /// for its database. Infrastructure failures are retried.
    async fn provision(
        &mut self,
        parts: &Parts,
        engine: Engine,
        manifest: &Manifest,
        keep: bool,
    ) -> Result<Sandbox> {
        let stage = Stage::Provision;
        let limit = self.drill.timeouts.provision;
        self.progress.stage_started(stage);
        let t0 = Instant::now();
        let SandboxSpec::Docker(d) = &self.drill.sandbox;
        let image = d
            .image
            .as_ref()
            .map(|i| {
                i.replace("{major}", &manifest.source_major)
                    .replace("{engine}", engine.as_str())
            })
            .unwrap_or_else(|| engine.default_image(&manifest.source_major));
        self.sandbox_image = Some(image.clone());
        let req = SandboxRequest {
            run_id: self.run_id.clone(),
            drill: self.drill.name.clone(),
            image: image.clone(),
            command: engine.serve_cmd(),
            memory_bytes: d.memory_bytes,
            cpus: d.cpus,
            expires_at: jiff::Timestamp::now()
                .checked_add(
                    jiff::SignedDuration::try_from(
                        self.drill.timeouts.total() + Duration::from_secs(600),
                    )
                    .unwrap_or(jiff::SignedDuration::from_hours(24)),
                )
                .unwrap_or(jiff::Timestamp::MAX),
            keep,
        };
        let backend = parts.sandbox.clone();
        let policy = self.drill.retry.clone();
        let mut attempts = 0u32;
        let deadline = tokio::time::Instant::now() + limit;
        let result: Result<Sandbox> = loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = bounded(
                stage,
                remaining,
                &self.cancel,
                provision_once(backend.as_ref(), engine, &req, &manifest.source_major),
            )
            .await;
            match attempt {
                Ok(sb) => break Ok(sb),
                Err(e) => {
                    // Whatever half-made sandbox this attempt left goes before the next.
                    let _ = tokio::time::timeout(
                        self.drill.timeouts.teardown,
                        backend.destroy(&self.run_id),
                    )
                    .await;
                    let backoff = policy.backoff * 2u32.saturating_pow(attempts - 1);
                    let can_retry = e.retryable
                        && e.kind == ErrorKind::Infrastructure
                        && attempts < policy.attempts
                        && tokio::time::Instant::now() + backoff < deadline;
                    if !can_retry {
                        break Err(e);
                    }
                    tracing::warn!(run = %self.run_id, attempt = attempts, "provision failed, retrying in {backoff:?}: {e}");
                    tokio::select! {
                        _ = self.cancel.cancelled() => break Err(Error::cancelled()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        };
        match result {
            Ok(sb) => {
                self.evidence.image_id = Some(sb.image_id.clone()).filter(|s| !s.is_empty());
                let notes = vec![format!("image {image}"), format!("container {}", sb.name)];
                self.record(
                    stage,
                    Outcome::Passed,
                    t0.elapsed(),
                    None,
                    attempts,
                    None,
                    notes,
                );
                Ok(sb)
            }
            Err(e) => {
                let e = e.context(format!("stage {stage}"));
                self.record(
                    stage,
                    outcome_of(&e),
                    t0.elapsed(),
                    None,
                    attempts,
                    Some(&e),
                    vec![format!("image {image}")],
                );
                self.fail(Some(stage), e.clone());
                Err(e)
            }
        }
    }

    /// Fetches the artifact into the sandbox (checking size and SHA-256 against the
    /// manifest), hands it the identity, and restores inside.
    async fn restore(
        &mut self,
        parts: &Parts,
        engine: Engine,
        sandbox: &Sandbox,
        manifest: &Manifest,
    ) -> Result<()> {
        let drill = self.drill;
        let progress = self.progress;
        let fut = async {
            let store = &parts.store;
            let backend = &parts.sandbox;
            // Read the manifest back: what the drill restores is what storage holds.
            let manifest_key =
                run_key(&drill.storage, &drill.name, &manifest.run_id, MANIFEST_FILE);
            let external = manifest.dump_format == EXTERNAL_FORMAT;
            let (stored, manifest_sha256) = if external {
                (manifest.clone(), None)
            } else {
                let bytes = store.get(&manifest_key).await?;
                let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                (Manifest::from_json(&bytes, &manifest_key)?, Some(sha))
            };
            let size = store.size(&stored.artifact_key).await?;
            if size != stored.encrypted_bytes {
                return Err(Error::backup(format!(
                    "artifact {} is {size} bytes in storage, its manifest says {}",
                    stored.artifact_key, stored.encrypted_bytes
                ))
                .with_hint("the artifact was truncated or replaced after upload; this backup cannot be trusted"));
            }

            // The identity goes to the sandbox's tmpfs through exec's stdin: never to a
            // disk, never on a command line.
            let id_bytes = format!("{}\n", parts.identity.expose()).into_bytes();
            let id_len = id_bytes.len().to_string();
            let out = backend
                .exec(
                    sandbox,
                    &sh(
                        &format!("umask 077 && head -c \"$1\" > {SANDBOX_IDENTITY}"),
                        &[&id_len],
                    ),
                    Some(Box::pin(std::io::Cursor::new(id_bytes))),
                )
                .await?;
            if out.exit_code != 0 {
                return Err(Error::infra(format!(
                    "cannot hand the identity to the sandbox: {}",
                    out.stderr.trim()
                )));
            }

            // Stage the still-encrypted artifact on the sandbox's own volume, hashing it on
            // the way; nothing is decrypted until the hash matches the manifest.
            let stream = store.get_stream(&stored.artifact_key).await?;
            let reader = StreamReader::new(
                stream.map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))),
            );
            let (hashing, state) = HashingReader::new(reader);
            let stage_cmd = match external {
                true => None,
                false => engine.stage_cmd(size, stored.plain_bytes),
            }
            .unwrap_or_else(|| {
                sh(
                    &format!("head -c \"$1\" > {STAGED_ARTIFACT} && stat -c %s {STAGED_ARTIFACT}"),
                    &[&size.to_string()],
                )
            });
            let staged = state.clone();
            let out = ticking(
                backend.exec(sandbox, &stage_cmd, Some(Box::pin(hashing))),
                || {
                    if let Ok(st) = staged.lock() {
                        progress.bytes(Stage::Restore, st.bytes(), Some(size));
                    }
                },
            )
            .await?;
            drop(staged);
            if out.exit_code != 0 {
                if let Some(e) = sandbox_fault(backend.as_ref(), sandbox, drill).await {
                    return Err(e);
                }
                return Err(Error::infra(format!(
                    "cannot stage the artifact in the sandbox: {}",
                    out.stderr.trim()
                ))
                .with_hint("check the sandbox's disk space (the Docker data root)"));
            }
            let (sha, read) = Arc::try_unwrap(state)
                .map_err(|_| Error::internal("hash state still shared"))?
                .into_inner()
                .map_err(|_| Error::internal("hash state poisoned"))?
                .finish();
            let landed: u64 = out.stdout.trim().parse().unwrap_or(0);
            if read != size || landed != size {
                return Err(Error::infra(format!(
                    "staging the artifact moved {read} bytes and the sandbox holds {landed}, expected {size}"
                )));
            }
            if !external && sha != stored.sha256 {
                return Err(Error::backup(format!(
                    "artifact hash mismatch: SHA-256 of {} is {sha}, its manifest says {}",
                    stored.artifact_key, stored.sha256
                ))
                .with_hint("the artifact was altered or corrupted in storage after upload; this backup cannot be trusted, drill an earlier one"));
            }

            let out = backend
                .exec(
                    sandbox,
                    &match &drill.source {
                        SourceSpec::Stored(st) if external => {
                            engine.restore_auto_cmd(&stored.databases[0], st.max_plain_bytes(size))
                        }
                        _ => engine.restore_cmd(
                            &stored.databases,
                            stored.plain_bytes,
                            restore_jobs(drill),
                        ),
                    },
                    None,
                )
                .await?;
            let _ = backend
                .exec(
                    sandbox,
                    &sh(&format!("rm -f {SANDBOX_IDENTITY}"), &[]),
                    None,
                )
                .await;
            if out.exit_code != 0 {
                if let Some(e) = sandbox_fault(backend.as_ref(), sandbox, drill).await {
                    return Err(e);
                }
                return Err(engine.restore_error(&out.stderr));
            }
            Ok((size, manifest_sha256))
        };
        let (_, manifest_sha256) = self.stage(Stage::Restore, |(n, _)| Some(*n), fut).await?;
        self.evidence.manifest_sha256 = manifest_sha256;
        Ok(())
    }

    /// Compares the restored database with the fingerprint and runs the assertions.
    async fn verify(
        &mut self,
        parts: &Parts,
        engine: Engine,
        sandbox: &Sandbox,
        manifest: &Manifest,
    ) -> Result<()> {
        let drill = self.drill;
        let baseline = self.baseline.as_ref();
        let guard = self.made_backup;
        let fut = async {
            let backend = &parts.sandbox;
            let checksummed: Vec<String> = manifest
                .fingerprint
                .checksummed()
                .iter()
                .map(|t| t.qualified())
                .collect();
            let restored = engine
                .sandbox_fingerprint(backend.as_ref(), sandbox, &manifest.databases, &checksummed)
                .await?;
            // A file made by another tool has no fingerprint to compare with; the least it
            // must do is restore some tables.
            let mismatches = if manifest.dump_format == EXTERNAL_FORMAT {
                if restored.tables.is_empty() {
                    return Err(Error::verification(format!(
                        "the restore of {} produced no tables in {}",
                        manifest.artifact_key, manifest.databases[0]
                    ))
                    .with_hint("the file is empty of data, or it restores into another database than source.database"));
                }
                Vec::new()
            } else {
                manifest.fingerprint.compare(&restored)
            };
            let checks = crate::verify::Checks {
                engine,
                backend: backend.as_ref(),
                sandbox,
                manifest,
                restored: &restored,
                baseline: baseline.map(|b| (b.run_id.as_str(), &b.manifest)),
            };
            let mut results = Vec::new();
            for a in &drill.assertions {
                results.push(checks.evaluate(a).await?);
            }
            if guard {
                results.extend(checks.anomaly_guards(drill.max_shrink));
            }
            Ok((mismatches, results, checksummed.len()))
        };
        let r = bounded(Stage::Verify, drill.timeouts.verify, &self.cancel, fut);
        self.progress.stage_started(Stage::Verify);
        let t0 = Instant::now();
        let r = r.await;
        let (mismatches, results, checksummed) = match r {
            Ok(v) => v,
            Err(e) => {
                let e = e.context("stage verify");
                self.record(
                    Stage::Verify,
                    outcome_of(&e),
                    t0.elapsed(),
                    None,
                    1,
                    Some(&e),
                    vec![],
                );
                self.fail(Some(Stage::Verify), e.clone());
                return Err(e);
            }
        };
        let failed: Vec<crate::assertion::AssertionResult> =
            results.iter().filter(|a| !a.passed).cloned().collect();
        let mut problems = Vec::new();
        if !mismatches.is_empty() {
            problems.push(format!(
                "{} fingerprint mismatch{}",
                mismatches.len(),
                if mismatches.len() == 1 { "" } else { "es" }
            ));
        }
        if !failed.is_empty() {
            let names: Vec<String> = failed.iter().map(|a| format!("`{}`", a.name)).collect();
            problems.push(format!(
                "assertion{} {} failed",
                if failed.len() == 1 { "" } else { "s" },
                names.join(", ")
            ));
        }
        let notes = vec![format!(
            "{} tables compared ({} by content checksum), {} schema object kinds, {} assertions",
            manifest.fingerprint.tables.len(),
            checksummed,
            manifest.fingerprint.objects.len(),
            results.len()
        )];
        self.mismatches = mismatches;
        self.assertions = results;
        if problems.is_empty() {
            self.record(
                Stage::Verify,
                Outcome::Passed,
                t0.elapsed(),
                None,
                1,
                None,
                notes,
            );
            Ok(())
        } else {
            let mut detail: Vec<String> = self.mismatches.iter().map(|m| m.to_string()).collect();
            detail.extend(failed.iter().map(|a| {
                format!(
                    "{}: expected {}, got {}{}",
                    a.name,
                    a.expected,
                    a.actual.as_deref().unwrap_or("NULL"),
                    a.error
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                )
            }));
            let only_guards = self.mismatches.is_empty()
                && failed
                    .iter()
                    .all(|a| a.name.starts_with(crate::verify::GUARD_PREFIX));
            let hint = if only_guards {
                format!("this backup is much smaller than the last good one: data was lost at the source, or the dump missed some; if the shrink was intended, `firedrill accept {}` makes it the new baseline", self.run_id)
            } else {
                "the restored data differs from what was dumped or from what the drill asserts; the backup is not good".to_string()
            };
            let e =
                Error::verification(format!("{}: {}", problems.join(" and "), detail.join("; ")))
                    .with_hint(hint)
                    .context("stage verify");
            self.record(
                Stage::Verify,
                Outcome::Failed,
                t0.elapsed(),
                None,
                1,
                Some(&e),
                notes,
            );
            self.fail(Some(Stage::Verify), e.clone());
            Err(e)
        }
    }

    /// Removes the sandbox. Runs whatever happened before, including after cancellation,
    /// bounded by its own timeout.
    async fn teardown(&mut self, parts: &Parts) {
        let stage = Stage::Teardown;
        self.progress.stage_started(stage);
        let t0 = Instant::now();
        let limit = self.drill.timeouts.teardown;
        let destroy = destroy_retrying(parts.sandbox.as_ref(), &self.run_id, limit);
        let r = match tokio::time::timeout(limit, destroy).await {
            Ok(r) => r,
            Err(_) => Err(timeout_error(stage, limit)),
        };
        match r {
            Ok(()) => self.record(stage, Outcome::Passed, t0.elapsed(), None, 1, None, vec![]),
            Err(e) => {
                let e = e
                    .context("stage teardown")
                    .with_hint(format!("remove it by hand: `firedrill reap --all`, or docker rm -f by label firedrill.run={}", self.run_id));
                self.record(
                    stage,
                    outcome_of(&e),
                    t0.elapsed(),
                    None,
                    1,
                    Some(&e),
                    vec![],
                );
                self.fail(Some(stage), e);
            }
        }
    }

    fn finish(mut self) -> RunReport {
        // Evidence names an artifact: without one there is nothing to vouch for.
        let evidence = self.artifact.as_ref().map(|a| {
            let mut ev = std::mem::take(&mut self.evidence);
            ev.artifact_sha256 = Some(a.sha256.clone()).filter(|s| !s.is_empty());
            ev.manifest_key = Some(a.manifest.clone()).filter(|m| !m.is_empty());
            ev.image = self.sandbox_image.clone();
            if let Some(v) = &self.source_version {
                ev.tools.insert("source".into(), v.clone());
            }
            if let Some(v) = &self.dump_tool {
                ev.tools.insert("dump_tool".into(), v.clone());
            }
            ev.tools
                .insert("firedrill".into(), env!("CARGO_PKG_VERSION").into());
            ev.host = hostname();
            ev
        });
        let (verdict, failed_stage, error) = match &self.failure {
            None => (Verdict::Passed, None, None),
            Some((stage, e)) => (
                Verdict::from_error(e.kind),
                *stage,
                Some(ErrorReport::from(e)),
            ),
        };
        RunReport {
            report_version: 1,
            drill: self.drill.name.clone(),
            run_id: self.run_id,
            started_at: self.started_at,
            finished_at: jiff::Timestamp::now(),
            verdict,
            exit_code: verdict.exit_code(),
            failed_stage,
            error,
            stages: self.stages,
            artifact: self.artifact,
            source_version: self.source_version,
            dump_tool: self.dump_tool,
            sandbox_image: self.sandbox_image,
            tables: self.fingerprint.as_ref().map(|f| f.tables.len()),
            rows: self.fingerprint.as_ref().map(|f| f.total_rows()),
            fingerprint_mismatches: self.mismatches,
            assertions: self.assertions,
            kept_sandbox: self.kept_sandbox,
            scheduled_for: None,
            evidence,
            signature: None,
        }
    }
}

/// One attempt at a ready sandbox: image present, container started, database accepting
/// connections, and the server's major version the dump's.
async fn provision_once(
    backend: &dyn SandboxBackend,
    engine: Engine,
    req: &SandboxRequest,
    major: &str,
) -> Result<Sandbox> {
    backend
        .check_image(&req.image, &engine.build_hint(major))
        .await?;
    let sb = backend.provision(req).await?;
    loop {
        let out = backend.exec(&sb, &engine.ready_cmd(), None).await?;
        if out.exit_code == 0 {
            break;
        }
        let st = backend.state(&sb).await?;
        if !st.running {
            return Err(Error::infra(format!(
                "the sandbox's database exited before it was ready (exit {})",
                st.exit_code.unwrap_or(-1)
            ))
            .with_stderr(tail(&st.log_tail, 20))
            .with_hint("read the server log below; a custom sandbox.image must follow containers/README.md"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let out = backend.exec(&sb, &engine.version_cmd(), None).await?;
    let got = out.stdout.trim();
    if got != engine.expected_version(major) {
        return Err(Error::infra(format!(
            "sandbox image {} runs `{got}`, but the dump came from {} {major}",
            req.image,
            engine.as_str()
        ))
        .with_hint(format!(
            "use an image of the source's major version: {}",
            engine.default_image(major)
        ))
        .retryable(false));
    }
    Ok(sb)
}

/// Removes a run's sandbox, again and again while Docker cannot be reached (a restarting
/// daemon may be why the run failed), until `limit` is nearly spent.
async fn destroy_retrying(
    backend: &dyn SandboxBackend,
    run_id: &str,
    limit: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut wait = Duration::from_millis(250);
    loop {
        match backend.destroy(run_id).await {
            Err(e) if e.retryable && tokio::time::Instant::now() + wait < deadline => {
                tracing::warn!(run = %run_id, "removing the sandbox failed, retrying in {wait:?}: {e}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            r => return r,
        }
    }
}

/// After a command failed in the sandbox: the sandbox's own failure (out of memory, its
/// database gone, Docker unreachable), which explains the command's failure better than its
/// output and is no verdict on the backup; `None` when the sandbox is fine.
async fn sandbox_fault(
    backend: &dyn SandboxBackend,
    sandbox: &Sandbox,
    drill: &Drill,
) -> Option<Error> {
    match backend.state(sandbox).await {
        Ok(st) if st.oom_killed || !st.running => Some(sandbox_died(&st, sandbox, drill)),
        Ok(_) => None,
        Err(e) => Some(e.context(format!(
            "a command failed in sandbox {} and the sandbox cannot be inspected",
            sandbox.name
        ))),
    }
}

fn sandbox_died(st: &crate::sandbox::SandboxState, sandbox: &Sandbox, drill: &Drill) -> Error {
    let SandboxSpec::Docker(d) = &drill.sandbox;
    if st.oom_killed {
        Error::infra(format!(
            "sandbox {} was killed by its memory limit ({}) during the restore",
            sandbox.name,
            crate::report::human_bytes(d.memory_bytes)
        ))
        .with_hint("raise sandbox.memory in the drill file")
        .retryable(false)
    } else {
        Error::infra(format!(
            "sandbox {} stopped during the restore: its database exited (exit {})",
            sandbox.name,
            st.exit_code.unwrap_or(-1)
        ))
        .with_stderr(tail(&st.log_tail, 20))
    }
}

/// `sh -c SCRIPT sh ARGS…`: arguments stay out of the script text.
fn sh(script: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec![
        "sh".to_string(),
        "-c".to_string(),
        script.to_string(),
        "sh".to_string(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

use futures::StreamExt as _;
#[allow(unused_imports)]
use FutureExt as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id();
        assert_eq!(a.len(), "20261126T114000Z-abcdef".len());
    }

    #[test]
    fn identity_must_contain_a_secret_key() {
        assert!(check_identity(&Secret::new("# comment\nAGE-SECRET-KEY-1ABC")).is_ok());
        assert!(check_identity(&Secret::new("age1abc")).is_err());
    }
}
