//! The stages of a physical drill (pgBackRest), in the same stage machine as the
//! logical ones: `dump` takes the backup (when the drill takes one) with its restore
//! point and fingerprint; `encrypt` and `upload` are pgBackRest's own; the repository is
//! read and the backup set and target chosen before the sandbox exists (its failures
//! are the restore's); `restore` restores and recovers in the sandbox; `verify` checks
//! the recovered cluster's pages besides the fingerprint and the assertions.

use std::time::Duration;

use crate::cancel::Stop;
use crate::config::{PgbackrestSpec, RecoveryTarget};
use crate::error::{Error, Result};
use crate::fingerprint::{ChecksumPlan, Fingerprint};
use crate::manifest::Manifest;
use crate::physical::cmd::{as_server, psql, sh};
use crate::physical::pgbackrest::{self, Host};
use crate::physical::stage;
use crate::physical::{Plan, RecoveryReport, Target};
use crate::report::ArtifactInfo;
use crate::sandbox::{Sandbox, SandboxBackend, DATA_DIR as DATA};
use crate::stage::StageRun;
use crate::status::Stage;

use super::record::Record;

/// How long writers are held for the restore point, at most.
const HOLD_WRITERS: Duration = Duration::from_secs(10);
/// How long the restore point's WAL may take to be archived.
const ARCHIVE_WAIT: Duration = Duration::from_secs(120);

impl Record<'_> {
    /// A physical drill's backup set: the backup taken now (with `backup`), then the
    /// repository read and the set and target chosen. `chosen` names a set (`--artifact`).
    pub(super) async fn physical(
        &mut self,
        spec: &PgbackrestSpec,
        chosen: Option<&str>,
        checksums: ChecksumPlan,
        stop: &Stop,
    ) -> Result<Manifest> {
        let drill = self.drill;
        let host = match Host::new(spec, &drill.base_dir) {
            Ok(h) => std::sync::Arc::new(h),
            Err(e) => {
                self.fail(None, e.clone());
                return Err(e);
            }
        };
        let repo = spec.repository();
        let started = jiff::Timestamp::now();
        let took = match (spec.backup, chosen) {
            (Some(kind), None) => {
                let run_id = self.run_id.clone();
                let limit = drill.timeouts.dump;
                let taken = self
                    .stage(Stage::Dump, stop, async {
                        let warnings = host.backup(kind, limit).await?;
                        let server = spec.server.as_ref().ok_or_else(|| {
                            Error::internal("a drill that takes a backup without its server")
                        })?;
                        let source = super::server_source(drill, server)?;
                        let name = crate::physical::restore_point_name(&run_id);
                        let rp = source
                            .restore_point(&name, &checksums, HOLD_WRITERS, ARCHIVE_WAIT)
                            .await?;
                        let mut notes = vec![format!("pgbackrest {} backup of stanza {}", kind.as_str(), spec.stanza)];
                        notes.extend(warnings.iter().map(|w| format!("pgBackRest warned: {w}")));
                        notes.push(format!(
                            "restore point \"{name}\" at {} (WAL {} archived); fingerprinted with writers held: {} tables",
                            rp.lsn,
                            rp.wal_file,
                            rp.fingerprint.tables.len()
                        ));
                        Ok((rp, None, notes))
                    })
                    .await;
                Some(taken?)
            }
            _ => {
                self.skip(
                    Stage::Dump,
                    Some(match chosen {
                        Some(label) => format!("drilling backup set {label}"),
                        None => format!(
                            "verify-only: the backups of stanza {} in {repo}",
                            spec.stanza
                        ),
                    }),
                );
                None
            }
        };
        for s in [Stage::Encrypt, Stage::Upload] {
            self.skip(
                s,
                Some("pgBackRest compresses, encrypts and stores the backup".into()),
            );
        }

        // Reading the repository is the restore's first step; what the drill file or the
        // keys got wrong stops the run before any stage.
        let t0 = std::time::Instant::now();
        let run_id = self.run_id.clone();
        let read = crate::stage::bounded(
            Stage::Restore,
            drill.timeouts.restore,
            stop,
            plan(
                &host,
                spec,
                chosen,
                &run_id,
                took.is_some().then_some(started),
            ),
        )
        .await;
        let plan = match read {
            Ok(p) => p,
            Err(e) => {
                self.unreadable(t0.elapsed(), &e, "the repository could not be read");
                return Err(e);
            }
        };
        let key = format!("pgbackrest:{}/{}", spec.stanza, plan.set.label);
        self.physical_artifact(
            &key,
            format!("pgBackRest repository {repo}"),
            format!(
                "pgBackRest {repo}, stanza {}, backup set {} ({})",
                spec.stanza, plan.set.label, plan.set.kind
            ),
        );
        let (mut fingerprint, version): (Fingerprint, Option<String>) = match took {
            // The fingerprint compares exactly only at the restore point it was taken at.
            Some(rp) if spec.target == RecoveryTarget::RestorePoint => {
                (rp.fingerprint, Some(rp.server_version))
            }
            Some(rp) => (Fingerprint::default(), Some(rp.server_version)),
            None => (Fingerprint::default(), None),
        };
        if let Some(why) = fingerprint
            .holdings
            .not_compared
            .get_mut("privileges and owners")
        {
            // A physical copy restores roles, owners and grants as they are.
            *why = "not read by the fingerprint; a physical copy carries them as they are".into();
        }
        self.source_version = Some(match version {
            Some(v) => format!("postgres {v}"),
            None => format!("postgres {} (pgBackRest's info)", plan.major),
        });
        self.dump_tool = Some("pgBackRest".into());
        if self.fingerprint.is_none() && !fingerprint.tables.is_empty() {
            self.fingerprint = Some(fingerprint.clone());
        }
        let database = spec
            .server
            .as_ref()
            .map(|s| s.database.clone())
            .unwrap_or_else(|| "postgres".into());
        let m = Manifest::physical(
            &drill.name,
            &self.run_id,
            &key,
            plan.set.stopped_at(),
            "pgbackrest",
            crate::engine::Engine::Postgres,
            &plan.major,
            &database,
            fingerprint,
        );
        self.physical = Some(plan);
        Ok(m)
    }

    /// What a physical drill restores, for the report and the evidence: a backup kept
    /// by its tool (no firedrill artifact, no manifest of firedrill's).
    pub(super) fn physical_artifact(&mut self, key: &str, storage: String, location: String) {
        self.evidence.storage = storage;
        self.evidence.artifact_key = Some(key.to_string());
        self.artifact = Some(ArtifactInfo {
            location,
            manifest: String::new(),
            sha256: String::new(),
            plain_bytes: 0,
            compressed_bytes: 0,
            encrypted_bytes: 0,
        });
    }

    /// A physical drill's backups could not be read (the restore's first step): the
    /// restore fails with the error, whatever its kind (a key that does not open the
    /// repository still exits 2, the drill could not run; a repository with no valid
    /// backup 1), and no sandbox is provisioned.
    pub(super) fn unreadable(&mut self, took: Duration, e: &Error, why: &str) {
        self.skip(Stage::Provision, Some(why.into()));
        self.push(
            StageRun::ended(Stage::Restore, took, e.clone().context("stage restore")),
            true,
        );
    }

    /// The restore stage of a physical drill: restore and recover in the sandbox, the
    /// image's version checked against the backup's. Returns the stage's notes.
    pub(super) async fn restore_physical(
        &self,
        backend: &dyn SandboxBackend,
        sandbox: &Sandbox,
        plan: &Plan,
    ) -> Result<Vec<String>> {
        let t0 = std::time::Instant::now();
        let run_id = self.run_id.clone();
        let step = |what: &str| tracing::info!(run = %run_id, "physical restore: {what}");
        let r = crate::physical::restore::restore(backend, sandbox, plan, &step).await?;
        super::sandbox_stages::check_version(
            backend,
            sandbox,
            crate::engine::Engine::Postgres,
            self.sandbox_image.as_deref().unwrap_or_default(),
            &plan.major,
        )
        .await?;
        let (report, notes) = recovered(
            "pgbackrest",
            format!("{} ({})", plan.set.label, plan.set.kind),
            plan.asked.clone(),
            &r,
            (Some(plan.window.0), plan.window.1),
            t0.elapsed(),
        );
        if let Ok(mut slot) = self.recovery.lock() {
            *slot = Some(report);
        }
        Ok(notes)
    }

    /// The verify stage's checks of a physical copy, after the fingerprint and the
    /// assertions: every database's tables and B-tree indexes (pg_amcheck), and, where
    /// the cluster has data checksums and the sandbox is not kept, every page's
    /// checksum with the server shut down cleanly (pg_checksums). Returns notes and the
    /// damage found.
    pub(super) async fn check_physical(
        &self,
        backend: &dyn SandboxBackend,
        sandbox: &Sandbox,
        keep: bool,
        with_fingerprint: bool,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let mut notes = Vec::new();
        let mut damage = Vec::new();
        let summary = cluster_summary(backend, sandbox).await?;
        let tables: u64 = summary.iter().map(|(_, n)| n).sum();
        notes.push(format!(
            "restored cluster: {}",
            summary
                .iter()
                .map(|(d, n)| format!("{d} ({n} tables)"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if tables == 0 && !with_fingerprint {
            return Err(Error::verification(
                "the restored cluster has no user tables in any database",
            )
            .with_hint("the backup is of an empty cluster, or of another one than the drill means; check the stanza"));
        }
        let has_amcheck = backend
            .exec(sandbox, &sh("command -v pg_amcheck >/dev/null"), None)
            .await?
            .exit_code
            == 0;
        if has_amcheck {
            let out = backend
                .exec(
                    sandbox,
                    &as_server(&[
                        "pg_amcheck",
                        "-h",
                        "/run/postgresql",
                        "-U",
                        "postgres",
                        "--all",
                        "--install-missing",
                    ]),
                    None,
                )
                .await?;
            if out.exit_code == 0 {
                notes.push(
                    "pg_amcheck: every database's tables and B-tree indexes are sound".into(),
                );
            } else {
                let lines: Vec<String> = format!("{}\n{}", out.stdout, out.stderr)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .take(10)
                    .map(str::to_string)
                    .collect();
                damage.push(format!("pg_amcheck: {}", lines.join("; ")));
            }
        } else {
            notes.push("pg_amcheck is not in the sandbox image (PostgreSQL 14+): tables and indexes not checked".into());
        }
        let out = backend
            .exec(sandbox, &psql("postgres", "SHOW data_checksums"), None)
            .await?;
        let checksums = out.stdout.trim() == "on";
        match (checksums, keep) {
            (false, _) => notes
                .push("data checksums are off in this cluster: pages not checksum-verified".into()),
            (true, true) => {
                notes.push("pg_checksums skipped: the sandbox is kept running (--keep)".into())
            }
            (true, false) => {
                let out = backend
                    .exec(sandbox, &sh("firedrill-sandbox stop postgres"), None)
                    .await?;
                if out.exit_code != 0 {
                    return Err(Error::infra(
                        "the recovered server did not shut down cleanly for pg_checksums",
                    )
                    .with_stderr(out.stderr));
                }
                let out = backend
                    .exec(
                        sandbox,
                        &as_server(&["pg_checksums", "--check", "-D", DATA]),
                        None,
                    )
                    .await?;
                if out.exit_code == 0 {
                    notes.push("pg_checksums: every page's checksum verified".into());
                } else {
                    let lines: Vec<String> = format!("{}\n{}", out.stderr, out.stdout)
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.contains("checksum") || l.contains("error"))
                        .take(10)
                        .map(str::to_string)
                        .collect();
                    damage.push(format!("pg_checksums: {}", lines.join("; ")));
                }
            }
        }
        Ok((notes, damage))
    }
}

/// A recovery's report and the restore stage's notes, whatever tool restored the
/// backup.
pub(super) fn recovered(
    method: &str,
    backup_set: String,
    asked: String,
    r: &crate::physical::Recovered,
    window: (Option<jiff::Timestamp>, Option<jiff::Timestamp>),
    took: Duration,
) -> (RecoveryReport, Vec<String>) {
    let wal = |n: Option<&crate::physical::wal::SegmentName>| n.map(|s| s.to_string());
    let mut notes = vec![
        format!("backup set {backup_set}, target {}", r.target.describe()),
        format!("reached: {}", r.reached),
    ];
    if let (Some(a), Some(b)) = (r.log.restored.first(), r.log.restored.last()) {
        notes.push(format!(
            "WAL replayed from the archive: {} on timeline {}, promoted to timeline {}",
            crate::physical::wal::range_text(a, b),
            r.timeline,
            r.log.new_timeline.map_or("?".into(), |t| t.to_string())
        ));
    }
    notes.extend(r.notes.iter().cloned());
    let report = RecoveryReport {
        method: method.into(),
        backup_set,
        target_asked: asked,
        target: r.target.describe(),
        target_reached: r.reached.clone(),
        wal_from: wal(r.log.restored.first()),
        wal_to: wal(r.log.restored.last()),
        segments_replayed: r.log.restored.len() as u64,
        timeline: r.timeline,
        new_timeline: r.log.new_timeline,
        last_transaction: r.last_transaction.clone(),
        window_from: window.0,
        window_to: window.1,
        recovered_in_seconds: Some(took.as_secs_f64()),
        // Set at the verify stage, once the restored database is fingerprinted.
        restored_tables: None,
        restored_rows: None,
    };
    (report, notes)
}

/// Reads the repository: its state judged, the archive listed, the target resolved and
/// the backup set chosen. `taken_since`: the drill just took a backup, which must be
/// the newest.
async fn plan(
    host: &std::sync::Arc<Host>,
    spec: &PgbackrestSpec,
    chosen: Option<&str>,
    run_id: &str,
    taken_since: Option<jiff::Timestamp>,
) -> Result<Plan> {
    let limit = Duration::from_secs(300);
    let infos = host.info(limit).await?;
    let info = pgbackrest::judge(spec, &infos)?;
    let newest = pgbackrest::choose(info, None, None)?;
    if let Some(since) = taken_since {
        if newest.stopped_at()
            < since
                .checked_sub(jiff::SignedDuration::from_secs(5))
                .unwrap_or(since)
        {
            return Err(Error::backup(format!(
                "the backup firedrill took is not in the repository: the newest set, {}, ended at {}",
                newest.label,
                newest.stopped_at()
            ))
            .with_hint("source.repo_path is not the repository pgBackRest's configuration backs up to")
            .retryable(false));
        }
    }
    let archive_id = pgbackrest::archive_id(info, newest).ok_or_else(|| {
        Error::backup(format!("stanza {} has no WAL archive", spec.stanza)).retryable(false)
    })?;
    let archive = host.archive(&archive_id, limit).await?;
    let oldest_consistent = info
        .backup
        .iter()
        .map(|b| b.consistent_by())
        .min()
        .unwrap_or_else(jiff::Timestamp::now);
    let target = crate::physical::resolve_target(
        &spec.target,
        run_id,
        oldest_consistent,
        archive.newest_at,
        jiff::Timestamp::now(),
    )?;
    let label = chosen.or(spec.set.as_deref());
    let before = match &target {
        Target::Time(at) if label.is_none() => Some(*at),
        _ => None,
    };
    let set = pgbackrest::choose(info, label, before)?.clone();
    let major = pgbackrest::set_major(info, &set).ok_or_else(|| {
        Error::backup(format!(
            "pgBackRest's info names no database version for backup set {}",
            set.label
        ))
        .retryable(false)
    })?;
    let set_archive = pgbackrest::archive_id(info, &set).unwrap_or(archive_id.clone());
    let archive = if set_archive != archive_id {
        host.archive(&set_archive, limit).await?
    } else {
        archive
    };
    // A repository in a bucket: what the restore reads is listed now, copied into the
    // sandbox at the restore.
    let (staging, repo_in_sandbox) = if host.in_bucket() {
        let staging = stage::needed(host.clone(), &spec.stanza, &set, &set_archive, limit).await?;
        (Some(staging), stage::STAGED_REPO)
    } else {
        (None, crate::physical::SANDBOX_REPO)
    };
    let asked = crate::physical::asked(&spec.target, &target);
    Ok(Plan {
        stanza: spec.stanza.clone(),
        window: (oldest_consistent, archive.newest_at),
        set,
        major,
        archive,
        target,
        asked,
        random: matches!(spec.target, RecoveryTarget::Random { .. }),
        sandbox_conf: host.sandbox_conf(repo_in_sandbox, DATA),
        staging,
    })
}

/// Every database of the restored cluster and how many user tables it has.
async fn cluster_summary(
    backend: &dyn SandboxBackend,
    sandbox: &Sandbox,
) -> Result<Vec<(String, u64)>> {
    let out = backend
        .exec(
            sandbox,
            &psql(
                "postgres",
                "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1",
            ),
            None,
        )
        .await?;
    if out.exit_code != 0 {
        return Err(
            Error::verification("cannot list the restored cluster's databases")
                .with_stderr(out.stderr),
        );
    }
    let mut v = Vec::new();
    for db in out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let out = backend
            .exec(
                sandbox,
                &psql(
                    db,
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                     AND n.nspname NOT LIKE 'pg\\_%'",
                ),
                None,
            )
            .await?;
        if out.exit_code != 0 {
            return Err(Error::verification(format!(
                "cannot read database {db} of the restored cluster"
            ))
            .with_stderr(out.stderr));
        }
        v.push((db.to_string(), out.stdout.trim().parse().unwrap_or(0)));
    }
    Ok(v)
}
