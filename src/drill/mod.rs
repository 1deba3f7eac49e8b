//! Running one drill: the stage machine.
//!
//! A run gets its artifact ([`acquire`]: a backup taken now, a stored artifact, or a file
//! of another tool), then drills it in a sandbox ([`sandbox_stages`]: provision, restore,
//! verify, retried with a fresh sandbox while the infrastructure flakes), and tears the
//! sandbox down on every path. Each stage runs under its timeout and the run's [`Stop`];
//! every stage's outcome, duration, attempts and error are recorded in one place
//! ([`record`]), and the first failure decides the verdict.
//!
//! What a run talks to (its source, store and sandbox backend) comes from a
//! [`Connector`]: [`LiveConnector`] builds the real ones from the drill file; tests hand in
//! fakes, and run the same code the binary runs.

mod acquire;
mod barman;
mod mariabackup;
mod physical;
mod record;
mod sandbox_stages;

use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Stop;
use crate::catalog::RunRecord;
use crate::config::{Drill, SandboxSpec, SourceSpec};
use crate::engine::mysql::MysqlSource;
use crate::engine::postgres::PostgresSource;
use crate::engine::{DumpSource, StartedDump};
use crate::error::{Error, Result};
use crate::fingerprint::ChecksumPlan;
use crate::manifest::Manifest;
use crate::report::RunReport;
use crate::sandbox::{build_backend, SandboxBackend};
use crate::secret::Secret;
use crate::stage::Progress;
use crate::status::{RunStatus, Stage};
use crate::store::{build_store, ArtifactStore, RunDir, VerificationMarker};

use record::Record;
pub(crate) use sandbox_stages::target_major;
use sandbox_stages::Expect;

/// How a run is asked to behave.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Leave the sandbox running for a person to inspect.
    pub keep: bool,
    /// Drill this stored artifact (its run id) instead of taking a new backup.
    pub artifact: Option<String>,
    /// Use this run id (the caller already announced it); default: a new one.
    pub run_id: Option<String>,
    /// When the schedule fired for this run (scheduled runs only): the report keeps it,
    /// so lateness behind the concurrency limit shows.
    pub scheduled_for: Option<jiff::Timestamp>,
    /// The run was already claimed in the catalog ([`crate::Runner::claim`]) by the one
    /// starting it.
    pub claimed: bool,
    /// Who or what started it (the report says so).
    pub started_by: Option<crate::access::Actor>,
}

/// The things a run talks to.
pub struct Parts {
    pub source: Box<dyn DumpSource>,
    pub store: Arc<dyn ArtifactStore>,
    pub sandbox: Arc<dyn SandboxBackend>,
    pub recipients: Vec<age::x25519::Recipient>,
    pub identity: Secret,
    /// The restic or Borg repository a snapshot drill reads its dumps from.
    pub repo: Option<Arc<dyn crate::snapshot::SnapshotRepo>>,
}

/// Builds what a drill talks to. The one boundary between the stage machine and the
/// world: the CLI and the daemon take theirs from [`LiveConnector`]; the failure table's
/// tests take fakes.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, drill: &Drill) -> Result<Parts>;

    /// The drill's store alone (to check a run id before a run starts).
    fn store(&self, drill: &Drill) -> Result<Arc<dyn ArtifactStore>> {
        Ok(Arc::from(build_store(&drill.storage, &drill.base_dir)?))
    }

    /// The sandbox backend a daemon reaps leftovers from at start-up.
    fn sandboxes(&self) -> Result<Arc<dyn SandboxBackend>> {
        Ok(Arc::new(crate::sandbox::DockerBackend::connect(None)?))
    }
}

/// Reads the secrets a drill names and builds its source, store and sandbox backend.
pub struct LiveConnector;

impl Connector for LiveConnector {
    fn connect(&self, drill: &Drill) -> Result<Parts> {
        let sandbox = build_backend(&drill.sandbox)?;
        let source = build_source(drill, Some(sandbox.clone()))?;
        let (recipients, identity) = load_keys(drill)?;
        let store: Arc<dyn ArtifactStore> =
            Arc::from(build_store(&drill.storage, &drill.base_dir)?);
        let repo = match &drill.source {
            SourceSpec::Snapshot(spec) => Some(crate::snapshot::build_repo(
                spec,
                &drill.base_dir,
                drill.timeouts.restore,
            )?),
            _ => None,
        };
        Ok(Parts {
            source,
            store,
            sandbox,
            recipients,
            identity,
            repo,
        })
    }
}

/// The drill's source, with its password read; `sandbox` runs its dump tool where this
/// host's will not do (without one, such a dump is refused, naming why).
pub fn build_source(
    drill: &Drill,
    sandbox: Option<Arc<dyn SandboxBackend>>,
) -> Result<Box<dyn DumpSource>> {
    let password = |p: &Option<crate::secret::SecretSource>| {
        p.as_ref()
            .map(|p| p.load(&drill.base_dir))
            .transpose()
            .map_err(|e| e.context("source.password"))
    };
    Ok(match &drill.source {
        SourceSpec::Postgres(pg) => Box::new(
            PostgresSource::new(pg.clone(), password(&pg.password)?)
                .with_site(tool_site(drill, pg.dump_in, sandbox)),
        ),
        SourceSpec::Mysql(my) => Box::new(
            MysqlSource::new(my.clone(), password(&my.password)?)
                .with_site(tool_site(drill, my.dump_in, sandbox)),
        ),
        SourceSpec::Pgbackrest(p) => match &p.server {
            Some(server) => Box::new(server_source(drill, server)?),
            None => Box::new(NoSource),
        },
        SourceSpec::Stored(_)
        | SourceSpec::Snapshot(_)
        | SourceSpec::Mariabackup(_)
        | SourceSpec::Barman(_) => Box::new(NoSource),
    })
}

/// The server a physical drill's backups are of, with its password read: firedrill
/// connects to it for the restore point and fingerprint of a backup it takes. It never
/// dumps from it.
pub fn server_source(
    drill: &Drill,
    server: &crate::config::PostgresSpec,
) -> Result<PostgresSource> {
    let password = server
        .password
        .as_ref()
        .map(|p| p.load(&drill.base_dir))
        .transpose()
        .map_err(|e| e.context("source.server.password"))?;
    Ok(PostgresSource::new(server.clone(), password))
}

/// Where the drill's dump tool may run: the sandbox backend runs the tool of the version
/// the dump restores into from the image the sandbox uses for it (`sandbox.image` with `{major}`,
/// else the default scheme), for no longer than the dump stage may take.
fn tool_site(
    drill: &Drill,
    dump_in: crate::engine::tool::DumpIn,
    backend: Option<Arc<dyn SandboxBackend>>,
) -> crate::engine::tool::ToolSite {
    let SandboxSpec::Docker(d) = &drill.sandbox;
    crate::engine::tool::ToolSite {
        dump_in,
        drill: drill.name.clone(),
        image_template: d.image.clone(),
        backend,
        lifetime: drill.timeouts.dump,
        target: d.major.clone(),
    }
}

/// The drill's recipients and identity, read, and the check that the identity opens what
/// the recipients lock (catching that here saves a whole dump and upload).
pub fn load_keys(drill: &Drill) -> Result<(Vec<age::x25519::Recipient>, Secret)> {
    let Some(encryption) = &drill.encryption else {
        // A physical drill: its backup tool encrypts, with a key of its own.
        return Ok((Vec::new(), Secret::new(String::new())));
    };
    let recipients_file = encryption
        .recipients_file
        .as_ref()
        .map(|p| drill.resolve(p));
    let recipients =
        crate::age_keys::load_recipients(&encryption.recipients, recipients_file.as_deref())?;
    let identity = encryption
        .identity
        .load(&drill.base_dir)
        .map_err(|e| e.context("encryption.identity"))?;
    crate::age_keys::check_identity(&identity, &recipients_to_check(drill, &recipients))?;
    Ok((recipients, identity))
}

/// The recipients the identity must match: a verify-only drill decrypts files another
/// tool encrypted, so its own recipients are not what those files were locked to.
fn recipients_to_check(drill: &Drill, recipients: &[age::x25519::Recipient]) -> Vec<String> {
    match drill.source {
        SourceSpec::Stored(_)
        | SourceSpec::Snapshot(_)
        | SourceSpec::Pgbackrest(_)
        | SourceSpec::Mariabackup(_)
        | SourceSpec::Barman(_) => Vec::new(),
        _ => recipients.iter().map(|r| r.to_string()).collect(),
    }
}

/// For `firedrill validate`: the identity, when it can be read here (its file exists, its
/// variable is set), must open what the recipients lock. An identity that cannot be read
/// here is no problem of the file's (`validate` runs where secrets may not be).
pub fn key_problem(drill: &Drill) -> Option<crate::config::Problem> {
    let encryption = drill.encryption.as_ref()?;
    let identity = encryption.identity.load(&drill.base_dir).ok()?;
    let recipients_file = encryption
        .recipients_file
        .as_ref()
        .map(|p| drill.resolve(p));
    let recipients =
        crate::age_keys::load_recipients(&encryption.recipients, recipients_file.as_deref())
            .ok()?;
    let e = crate::age_keys::check_identity(&identity, &recipients_to_check(drill, &recipients))
        .err()?;
    Some(crate::config::Problem {
        file: drill.file.clone(),
        field: "encryption.identity".into(),
        line: None,
        message: e.message,
        fix: e.hint.unwrap_or_default(),
    })
}

/// The source of a verify-only drill: there is nothing to dump.
struct NoSource;

#[async_trait::async_trait]
impl DumpSource for NoSource {
    async fn start(&self, _checksums: &ChecksumPlan) -> Result<StartedDump> {
        Err(Error::config(
            "a verify-only drill (source.type = \"stored\") has no source to dump",
        ))
    }
}

/// A run id: sortable by time, unique enough for labels and storage keys.
pub fn new_run_id() -> String {
    let ts = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    format!("{ts}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// The artifact of the last run that passed or was accepted: what the anomaly guards and
/// `row_count.max_change` compare with.
pub struct Baseline {
    pub run_id: String,
    pub manifest: Manifest,
}

/// A physical drill's baseline: the last passing (or accepted) drill's restored tables
/// and rows.
pub struct PhysicalBaseline {
    pub run_id: String,
    pub tables: usize,
    pub rows: u64,
}

/// What a run produced: its report, and the manifest of a backup it made and stored
/// (for the catalog's inventory).
pub struct Finished {
    pub report: RunReport,
    pub new_artifact: Option<Manifest>,
    /// The snapshot a snapshot drill drilled, for the catalog's inventory.
    pub snapshot: Option<crate::catalog::ArtifactRecord>,
}

/// Runs a drill end to end with the parts given (or the error that kept them from being
/// built). Never panics on bad input; every failure is in the report. `history` is the
/// drill's past runs, newest first (`None` without a catalog): the baseline comes from
/// it, and which large tables get their checksum turn.
pub async fn run(
    drill: &Drill,
    parts: Result<Parts>,
    run_id: &str,
    history: Option<&[RunRecord]>,
    opts: &RunOptions,
    progress: &dyn Progress,
    stop: &Stop,
) -> Finished {
    let mut rec = Record::new(drill, run_id, progress);
    let parts = match parts {
        Ok(p) => p,
        Err(e) => {
            rec.fail(None, e);
            rec.skip_from(Stage::Dump);
            return finished(rec, opts, None);
        }
    };
    // Large tables take turns being checksummed: this run's turn is how many ran before.
    let mut checksums = drill.checksums;
    checksums.slot = match history {
        Some(h) => h.len() as u64,
        None => rand::random::<u32>().into(),
    };
    let baseline = match history {
        Some(h) => baseline(h, run_id, parts.store.as_ref()).await,
        None => None,
    };
    let made_backup = opts.artifact.is_none() && !drill.source.verify_only();
    // A physical drill to the newest state (the end of the WAL, or the restore point it
    // just made) is judged against the last good one; one to a moment in the past, or
    // of a set a person chose, is not.
    let physical_baseline = match (&drill.source, history) {
        (SourceSpec::Pgbackrest(p), Some(h))
            if opts.artifact.is_none()
                && p.set.is_none()
                && matches!(
                    p.target,
                    crate::config::RecoveryTarget::Latest
                        | crate::config::RecoveryTarget::RestorePoint
                ) =>
        {
            physical_baseline(h, run_id)
        }
        (SourceSpec::Mariabackup(m), Some(h)) if opts.artifact.is_none() && m.set.is_none() => {
            physical_baseline(h, run_id)
        }
        (SourceSpec::Barman(b), Some(h))
            if opts.artifact.is_none()
                && b.set.is_none()
                && b.target == crate::config::RecoveryTarget::Latest =>
        {
            physical_baseline(h, run_id)
        }
        _ => None,
    };
    let manifest = match (&drill.source, &opts.artifact) {
        (SourceSpec::Stored(spec), _) => rec.external(&parts, spec).await,
        (SourceSpec::Snapshot(spec), chosen) => {
            rec.snapshot(&parts, spec, chosen.as_deref(), stop).await
        }
        (SourceSpec::Pgbackrest(spec), chosen) => {
            rec.physical(spec, chosen.as_deref(), checksums, stop).await
        }
        (SourceSpec::Mariabackup(spec), chosen) => {
            rec.mariabackup(spec, chosen.as_deref(), stop).await
        }
        (SourceSpec::Barman(spec), chosen) => rec.barman(spec, chosen.as_deref(), stop).await,
        (_, None) => rec.backup(&parts, checksums, stop).await,
        (_, Some(id)) => rec.stored(&parts, id).await,
    };
    let Ok(manifest) = manifest else {
        rec.skip_from(Stage::Provision);
        return finished(rec, opts, None);
    };
    let engine = manifest.engine;
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
        run_id: run_id.to_string(),
        armed: true,
    };
    let expect = Expect {
        manifest: &manifest,
        baseline: baseline.as_ref(),
        physical_baseline: physical_baseline.as_ref(),
        made_backup,
        keep: opts.keep,
    };
    let sandbox = rec
        .sandbox_stages(&parts, engine, &expect, opts.keep, stop)
        .await;
    match (&sandbox, opts.keep) {
        (Some(sb), true) => rec.keep(engine, sb, &manifest.databases[0]),
        _ => rec.teardown(&parts).await,
    }
    guard.armed = false;
    let new_artifact = (made_backup && !manifest.is_external() && !manifest.is_physical())
        .then(|| manifest.clone());
    let done = finished(rec, opts, new_artifact);
    record_verdict(&parts, drill, &manifest, &done.report).await;
    done
}

fn finished(mut rec: Record<'_>, opts: &RunOptions, new_artifact: Option<Manifest>) -> Finished {
    let selected = rec.snapshot.lock().ok().and_then(|s| s.clone());
    let snapshot = match (&rec.drill.source, selected) {
        (SourceSpec::Snapshot(spec), Some(sel)) => {
            // The snapshot drilled last (chosen anew if one vanished), its hash now known.
            rec.note_snapshot(&sel);
            // Only a snapshot whose dump was judged restorable is ever kept.
            acquire::dump_kind(spec, &sel)
                .ok()
                .map(|(engine, _)| crate::catalog::ArtifactRecord {
                    drill: rec.drill.name.clone(),
                    run_id: sel.snapshot.label.clone(),
                    created_at: sel.snapshot.time,
                    engine,
                    plain_bytes: 0,
                    encrypted_bytes: sel.file.size,
                    sha256: sel.sha256.clone().unwrap_or_default(),
                    location: sel.key(),
                    manifest_key: String::new(),
                    verified: crate::status::Verified::Never,
                    verified_at: None,
                })
        }
        _ => None,
    };
    let mut report = rec.finish();
    report.scheduled_for = opts.scheduled_for;
    report.started_by = opts.started_by.clone();
    Finished {
        report,
        new_artifact,
        snapshot,
    }
}

/// The verdict on a firedrill artifact goes beside it in storage, so that a rebuilt
/// catalog knows it; files of other tools get none.
async fn record_verdict(parts: &Parts, drill: &Drill, manifest: &Manifest, report: &RunReport) {
    let (false, Some(v)) = (
        manifest.is_external() || manifest.is_physical(),
        report.artifact_verdict(),
    ) else {
        return;
    };
    let key = RunDir::new(&drill.storage, &drill.name, &manifest.run_id).verified();
    let marker = VerificationMarker {
        verified: v,
        at: report.finished_at,
        by_run: report.run_id.clone(),
    };
    if let Err(e) = parts.store.put(&key, marker.to_json()).await {
        tracing::warn!("could not record the verification beside the artifact: {e}");
    }
}

/// The newest run of the drill, other than `this_run`, that passed or was accepted and
/// whose manifest storage still has.
async fn baseline(
    history: &[RunRecord],
    this_run: &str,
    store: &dyn ArtifactStore,
) -> Option<Baseline> {
    for r in history {
        if r.run_id == this_run || !(r.status == RunStatus::Passed || r.accepted) {
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
                Ok(manifest) if !manifest.is_external() => {
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

/// The newest physical drill of the drill, other than `this_run`, that passed or was
/// accepted and says what it restored.
fn physical_baseline(history: &[RunRecord], this_run: &str) -> Option<PhysicalBaseline> {
    history
        .iter()
        .filter(|r| r.run_id != this_run && (r.status == RunStatus::Passed || r.accepted))
        .find_map(|r| {
            let report: RunReport = serde_json::from_str(r.report.as_deref()?).ok()?;
            let rec = report.recovery?;
            Some(PhysicalBaseline {
                run_id: r.run_id.clone(),
                tables: rec.restored_tables?,
                rows: rec.restored_rows?,
            })
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time() {
        let a = new_run_id();
        assert_eq!(a.len(), "20261126T114000Z-abcdef".len());
    }
}
