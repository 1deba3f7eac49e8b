//! The stages inside the sandbox: provision, restore, verify, and the teardown that runs
//! whatever happened. Infrastructure can flake in each of the first three (the Docker
//! engine restarted, the sandbox lost or its database gone): such a failure is retried
//! with a fresh sandbox, per the drill's `[retry]`, before anything pages; what a retry
//! cannot change (a broken backup, a failed assertion, a timeout, a sandbox killed by its
//! memory limit) ends the run at once.

use std::time::Duration;

use tokio_util::io::StreamReader;

use crate::cancel::Stop;
use crate::config::{SandboxSpec, SourceSpec};
use crate::engine::restore::{sandbox_fault, Artifact, RestorePlan};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Manifest;
use crate::sandbox::{Sandbox, SandboxBackend, SandboxRequest};
use crate::stage::{bounded, StageRun};
use crate::status::Stage;
use crate::store::RunDir;

use super::record::Record;
use super::{Baseline, Parts, PhysicalBaseline};

/// What the sandbox stages check the restore against.
pub(super) struct Expect<'a> {
    pub manifest: &'a Manifest,
    pub baseline: Option<&'a Baseline>,
    /// A physical drill's: the last good drill's restored tables and rows.
    pub physical_baseline: Option<&'a PhysicalBaseline>,
    /// Whether this run made the artifact (the anomaly guards judge only new backups).
    pub made_backup: bool,
    /// The sandbox stays for a person (`--keep`): its server keeps running.
    pub keep: bool,
}

/// The stages of one attempt, as far as they got.
struct Attempt {
    sandbox: Option<Sandbox>,
    runs: Vec<StageRun>,
}

impl Attempt {
    /// The failure that ended the attempt, if one did.
    fn failure(&self) -> Option<&Error> {
        self.runs.iter().find_map(|r| r.error.as_ref())
    }
}

impl Record<'_> {
    /// Provisions a sandbox, restores into it and verifies the result, retrying the whole
    /// with a fresh sandbox while the failure is the infrastructure's. Returns the sandbox
    /// the last attempt made (for `--keep`), if any.
    pub(super) async fn sandbox_stages(
        &mut self,
        parts: &Parts,
        engine: Engine,
        expect: &Expect<'_>,
        keep: bool,
        stop: &Stop,
    ) -> Option<Sandbox> {
        let policy = self.drill.retry.clone();
        let mut tries = [0u32; 3];
        let mut earlier: [Vec<String>; 3] = Default::default();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let a = self.attempt(parts, engine, expect, keep, stop).await;
            for r in &a.runs {
                tries[slot(r.stage)] += 1;
            }
            let retry = a.failure().is_some_and(|e| policy.retries(e, attempt));
            if retry {
                let e = a.failure().expect("a failed attempt").clone();
                let failed = a
                    .runs
                    .iter()
                    .find(|r| r.error.is_some())
                    .map(|r| r.stage)
                    .unwrap_or(Stage::Provision);
                let backoff = policy.delay(attempt);
                earlier[slot(failed)].push(format!("attempt {attempt} failed: {}", e.headline()));
                self.progress.stage_retrying(failed, attempt, &e, backoff);
                tracing::warn!(run = %self.run_id, attempt, stage = %failed, "infrastructure failed, retrying with a fresh sandbox in {backoff:?}: {e}");
                // Whatever this attempt left goes before the next, even if Docker is still
                // coming back (a sandbox left over would take the next one's name).
                let limit = self.drill.timeouts.teardown;
                if let Err(e) = tokio::time::timeout(
                    limit,
                    destroy_retrying(parts.sandbox.as_ref(), &self.run_id, limit),
                )
                .await
                .unwrap_or_else(|_| Err(crate::stage::timeout_error(Stage::Teardown, limit)))
                {
                    tracing::warn!(run = %self.run_id, "removing the failed attempt's sandbox: {e}");
                }
                let waited = tokio::select! {
                    _ = stop.stopped() => false,
                    _ = tokio::time::sleep(backoff) => true,
                };
                if waited {
                    continue;
                }
                // Stopped while waiting: the stop is the run's end, not the flake.
                let stopped = crate::stage::stopped(stop);
                self.push(
                    StageRun::ended(
                        failed,
                        Duration::ZERO,
                        stopped.context(format!("stage {failed}")),
                    )
                    .with_notes(earlier[slot(failed)].drain(..)),
                    true,
                );
                self.skip_from(Stage::Provision);
                return None;
            }
            let sandbox = a.sandbox.clone();
            for mut r in a.runs {
                r.attempts = tries[slot(r.stage)];
                let notes = std::mem::take(&mut earlier[slot(r.stage)]);
                r.notes.splice(0..0, notes);
                self.push(r, false);
            }
            self.skip(Stage::Restore, None);
            self.skip(Stage::Verify, None);
            return sandbox;
        }
    }

    /// One attempt: provision, restore, verify, each announced as it ends.
    async fn attempt(
        &mut self,
        parts: &Parts,
        engine: Engine,
        expect: &Expect<'_>,
        keep: bool,
        stop: &Stop,
    ) -> Attempt {
        let mut runs = Vec::new();
        let t = self.started(Stage::Provision);
        let provisioned = bounded(
            Stage::Provision,
            self.drill.timeouts.provision,
            stop,
            self.provision(parts, engine, expect.manifest, keep),
        )
        .await;
        let image_note = self.sandbox_image.clone().map(|i| format!("image {i}"));
        let upgrade = self.upgrade(engine, expect.manifest);
        let image_note = image_note.into_iter().chain(upgrade.clone());
        let sandbox = match provisioned {
            Ok(sb) => sb,
            Err(e) => {
                let run =
                    StageRun::ended(Stage::Provision, t.elapsed(), e.context("stage provision"))
                        .with_notes(image_note);
                self.announce(&run);
                runs.push(run);
                return Attempt {
                    sandbox: None,
                    runs,
                };
            }
        };
        self.evidence.image_id = Some(sandbox.image_id.clone()).filter(|s| !s.is_empty());
        let run = StageRun::passed(Stage::Provision, t.elapsed(), None)
            .with_notes(image_note)
            .with_notes([format!("container {}", sandbox.name)]);
        self.announce(&run);
        runs.push(run);

        let t = self.started(Stage::Restore);
        let restored = bounded(
            Stage::Restore,
            self.drill.timeouts.restore,
            stop,
            self.restore(parts, engine, &sandbox, expect.manifest),
        )
        .await;
        let restored = self.explain(parts, &sandbox, restored).await;
        match restored {
            Ok((bytes, manifest_sha256, notes)) => {
                self.evidence.manifest_sha256 = manifest_sha256;
                let run = StageRun::passed(Stage::Restore, t.elapsed(), bytes).with_notes(notes);
                self.announce(&run);
                runs.push(run);
            }
            Err(e) => {
                let e = match &upgrade {
                    Some(u) => e.context(u.clone()),
                    None => e,
                };
                let run = StageRun::ended(Stage::Restore, t.elapsed(), e.context("stage restore"));
                self.announce(&run);
                runs.push(run);
                return Attempt {
                    sandbox: Some(sandbox),
                    runs,
                };
            }
        }

        let t = self.started(Stage::Verify);
        let verified = bounded(
            Stage::Verify,
            self.drill.timeouts.verify,
            stop,
            self.verify(parts, engine, &sandbox, expect),
        )
        .await;
        let verified = self.explain(parts, &sandbox, verified).await;
        let run = match verified {
            Ok(Checked {
                notes,
                problem: None,
            }) => StageRun::passed(Stage::Verify, t.elapsed(), None).with_notes(notes),
            Ok(Checked {
                notes,
                problem: Some(e),
            }) => StageRun {
                notes,
                ..StageRun::ended(Stage::Verify, t.elapsed(), e.context("stage verify"))
            },
            Err(e) => StageRun::ended(Stage::Verify, t.elapsed(), e.context("stage verify")),
        };
        self.announce(&run);
        runs.push(run);
        Attempt {
            sandbox: Some(sandbox),
            runs,
        }
    }

    /// "upgrade rehearsal: postgres 13 → 17" when the sandbox runs a newer major than
    /// the source.
    fn upgrade(&self, engine: Engine, manifest: &Manifest) -> Option<String> {
        let target = target_major(&self.drill.sandbox, engine, &manifest.source_major).ok()?;
        (target != manifest.source_major).then(|| {
            format!(
                "upgrade rehearsal: {} {} → {target}",
                engine.as_str(),
                manifest.source_major
            )
        })
    }

    /// After a stage in the sandbox failed: when the sandbox itself died or cannot be
    /// reached, that is the failure (the infrastructure's, retried), not what the command
    /// printed as it lost its server.
    async fn explain<T>(&self, parts: &Parts, sandbox: &Sandbox, r: Result<T>) -> Result<T> {
        match r {
            Err(e) if e.kind != ErrorKind::Timeout && !e.kind.is_deliberate_stop() => {
                let SandboxSpec::Docker(d) = &self.drill.sandbox;
                match sandbox_fault(parts.sandbox.as_ref(), sandbox, d.memory_bytes).await {
                    Some(fault) => Err(fault),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// Creates the sandbox from the image matching the source's major version and waits
    /// for its database.
    async fn provision(
        &mut self,
        parts: &Parts,
        engine: Engine,
        manifest: &Manifest,
        keep: bool,
    ) -> Result<Sandbox> {
        let SandboxSpec::Docker(d) = &self.drill.sandbox;
        let major = target_major(&self.drill.sandbox, engine, &manifest.source_major)?;
        let image = d
            .image
            .as_ref()
            .map(|i| {
                i.replace("{major}", &major)
                    .replace("{engine}", engine.as_str())
            })
            .unwrap_or_else(|| engine.default_image(&major));
        self.sandbox_image = Some(image.clone());
        // A physical drill's posix repository is mounted read-only (one in a bucket is
        // copied in at the restore).
        let (physical, repository) = match &self.drill.source {
            SourceSpec::Pgbackrest(p) => (true, p.s3.is_none().then(|| p.repo_path.clone())),
            SourceSpec::Mariabackup(m) => (true, Some(m.backup_dir.clone())),
            SourceSpec::Barman(b) => (true, Some(b.server_dir())),
            _ => (false, None),
        };
        let req = SandboxRequest {
            run_id: self.run_id.clone(),
            drill: self.drill.name.clone(),
            image,
            command: if physical {
                // The server starts once the backup is restored into its volume.
                vec!["recover".into(), engine.as_str().into()]
            } else {
                engine.serve_cmd()
            },
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
            repository,
        };
        if physical {
            let backend = parts.sandbox.as_ref();
            backend
                .check_image(&req.image, &engine.build_hint(&major))
                .await?;
            return backend.provision(&req).await;
        }
        provision_once(parts.sandbox.as_ref(), engine, &req, &major).await
    }

    /// Fetches the artifact into the sandbox (checking size and SHA-256 against the
    /// manifest storage holds now) and restores it there. Returns the bytes staged, the
    /// manifest's SHA-256 (for the evidence) and the stage's notes. A physical drill
    /// restores its backup set and recovers it instead.
    async fn restore(
        &self,
        parts: &Parts,
        engine: Engine,
        sandbox: &Sandbox,
        manifest: &Manifest,
    ) -> Result<(Option<u64>, Option<String>, Vec<String>)> {
        let drill = self.drill;
        if let Some(plan) = &self.physical {
            let notes = self
                .restore_physical(parts.sandbox.as_ref(), sandbox, plan)
                .await?;
            return Ok((None, None, notes));
        }
        if let Some(plan) = &self.barman {
            let notes = self
                .restore_barman(parts.sandbox.as_ref(), sandbox, plan)
                .await?;
            return Ok((None, None, notes));
        }
        if let Some(chain) = &self.mariabackup {
            let notes = self
                .restore_mariabackup(parts.sandbox.as_ref(), sandbox, chain)
                .await?;
            return Ok((None, None, notes));
        }
        if let (SourceSpec::Snapshot(spec), Some(repo)) = (&drill.source, &parts.repo) {
            let (bytes, sha) = self
                .restore_snapshot(parts, repo.as_ref(), spec, engine, sandbox, manifest)
                .await?;
            return Ok((Some(bytes), sha, Vec::new()));
        }
        let store = &parts.store;
        // Read the manifest back: what the drill restores is what storage holds.
        let (stored, manifest_sha256) = if manifest.is_external() {
            (manifest.clone(), None)
        } else {
            let key = RunDir::new(&drill.storage, &drill.name, &manifest.run_id).manifest();
            let bytes = store.get(&key).await?;
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
            (Manifest::from_json(&bytes, &key)?, Some(sha))
        };
        let size = store.size(&stored.artifact_key).await?;
        if size != stored.encrypted_bytes {
            return Err(Error::backup(format!(
                "artifact {} is {size} bytes in storage, its manifest says {}",
                stored.artifact_key, stored.encrypted_bytes
            ))
            .with_hint("the artifact was truncated or replaced after upload; this backup cannot be trusted"));
        }
        let stream = store.get_stream(&stored.artifact_key).await?;
        let reader = StreamReader::new(futures::StreamExt::map(stream, |r| {
            r.map_err(|e| std::io::Error::other(e.to_string()))
        }));
        let plan = match &drill.source {
            SourceSpec::Stored(st) if manifest.is_external() => RestorePlan::Detect {
                database: &stored.databases[0],
                max_plain_bytes: st.max_plain_bytes(size),
            },
            _ => RestorePlan::Own {
                databases: &stored.databases,
                jobs: restore_jobs(drill),
            },
        };
        let progress = self.progress;
        let staged = engine
            .restore_artifact(
                parts.sandbox.as_ref(),
                sandbox,
                &parts.identity,
                Artifact {
                    reader: Box::pin(reader),
                    key: stored.artifact_key.clone(),
                    size,
                    sha256: (!stored.is_external()).then(|| stored.sha256.clone()),
                    plain_bytes: stored.plain_bytes,
                },
                plan,
                &|n| progress.bytes(Stage::Restore, n, Some(size)),
            )
            .await?;
        Ok((Some(staged.0), manifest_sha256, Vec::new()))
    }

    /// Streams a snapshot's dump out of its repository into the sandbox and restores it
    /// there, detecting its encryption, compression and format as for files of other
    /// tools. The tool failing midway is judged: a damaged repository fails the drill, a
    /// snapshot forgotten meanwhile is chosen anew on the next attempt.
    async fn restore_snapshot(
        &self,
        parts: &Parts,
        repo: &dyn crate::snapshot::SnapshotRepo,
        spec: &crate::config::SnapshotSpec,
        engine: Engine,
        sandbox: &Sandbox,
        manifest: &Manifest,
    ) -> Result<(u64, Option<String>)> {
        let current = self.snapshot.lock().ok().and_then(|s| s.clone());
        let sel = match current {
            Some(s) => s,
            None => {
                // The last attempt's snapshot vanished: choose again, by the same rules.
                // Judged as the first was: the same engine and series, or no dump at all.
                let s = crate::snapshot::select(repo, spec, None).await?;
                let (kind, series) = super::acquire::dump_kind(spec, &s)?;
                if !kind.same_family(engine) || series != manifest.source_major {
                    return Err(Error::infra(format!(
                        "snapshot {} chosen after the first vanished is a {kind} {series} dump; the sandbox is {engine} {}",
                        s.snapshot.label,
                        manifest.source_major
                    ))
                    .with_hint("the next run drills it with the right image")
                    .retryable(false));
                }
                tracing::warn!(run = %self.run_id, "drilling snapshot {} instead of the one that vanished", s.snapshot.label);
                if let Ok(mut slot) = self.snapshot.lock() {
                    *slot = Some(s.clone());
                }
                s
            }
        };
        let size = sel.file.size;
        let streamed = repo.open(&sel.snapshot, &sel.file.path).await?;
        let failure = streamed.failure.clone();
        let progress = self.progress;
        let restored = engine
            .restore_artifact(
                parts.sandbox.as_ref(),
                sandbox,
                &parts.identity,
                Artifact {
                    reader: streamed.reader,
                    key: sel.key(),
                    size,
                    sha256: None,
                    plain_bytes: 0,
                },
                RestorePlan::Detect {
                    database: &spec.database,
                    max_plain_bytes: spec.max_plain_bytes(size),
                },
                &|n| progress.bytes(Stage::Restore, n, Some(size)),
            )
            .await;
        let tool_failed = failure.lock().ok().and_then(|mut f| f.take());
        match (restored, tool_failed) {
            (Ok((staged, sha)), None) => {
                if let Ok(mut slot) = self.snapshot.lock() {
                    if let Some(s) = slot.as_mut() {
                        s.sha256 = Some(sha);
                    }
                }
                Ok((staged, None))
            }
            // The tool's failure explains a short or broken stream better than what the
            // restore made of it.
            (_, Some(f)) => {
                let e = crate::snapshot::judge_read_failure(repo, &sel.snapshot, f).await;
                if matches!(
                    e.find::<crate::snapshot::RepoFault>(),
                    Some(crate::snapshot::RepoFault::Vanished)
                ) {
                    if let Ok(mut slot) = self.snapshot.lock() {
                        *slot = None;
                    }
                }
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// Compares the restored database with the fingerprint, runs the assertions and the
    /// anomaly guards.
    async fn verify(
        &mut self,
        parts: &Parts,
        engine: Engine,
        sandbox: &Sandbox,
        expect: &Expect<'_>,
    ) -> Result<Checked> {
        let drill = self.drill;
        let manifest = expect.manifest;
        let backend = &parts.sandbox;
        let checksummed = manifest.fingerprint.checksummed();
        let restored = engine
            .sandbox_fingerprint(backend.as_ref(), sandbox, &manifest.databases, &checksummed)
            .await?;
        // A file made by another tool has no fingerprint to compare with; the least it
        // must do is restore some tables.
        let compare = !(manifest.is_external()
            || manifest.is_physical() && manifest.fingerprint.tables.is_empty());
        let mismatches = if manifest.is_physical() && !compare {
            // A physical copy without a fingerprint of its target: the cluster's checks
            // below judge it.
            Vec::new()
        } else if manifest.is_external() {
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
        // A newer server prints views, routines and triggers in its own words: across
        // majors their presence is compared, not their text.
        let upgrade = self.upgrade(engine, manifest);
        let (mismatches, reworded): (Vec<_>, Vec<_>) = mismatches.into_iter().partition(|m| {
            upgrade.is_none()
                || !matches!(
                    m,
                    crate::fingerprint::Mismatch::Definition {
                        change: crate::fingerprint::DefinitionChange::Differs,
                        ..
                    }
                )
        });
        let checks = crate::verify::Checks {
            engine,
            backend: backend.as_ref(),
            sandbox,
            manifest,
            restored: &restored,
            baseline: expect.baseline.map(|b| (b.run_id.as_str(), &b.manifest)),
        };
        let mut results = Vec::new();
        for a in &drill.assertions {
            results.push(checks.evaluate(a).await?);
        }
        if manifest.is_physical() {
            // What the restored database holds, for the report and the next drills.
            let now = (restored.tables.len(), restored.total_rows());
            if let Ok(mut slot) = self.recovery.lock() {
                if let Some(rec) = slot.as_mut() {
                    rec.restored_tables = Some(now.0);
                    rec.restored_rows = Some(now.1);
                }
            }
            if let Some(b) = expect.physical_baseline {
                results.extend(crate::verify::physical_guards(
                    &b.run_id,
                    (b.tables, b.rows),
                    now,
                    &drill.anomaly,
                ));
            }
        } else if expect.made_backup {
            results.extend(checks.anomaly_guards(&drill.anomaly));
        }
        let holdings = &manifest.fingerprint.holdings;
        let mut notes = vec![format!(
            "{} tables compared ({} by content checksum), {} schema object kinds, {} assertions",
            manifest.fingerprint.tables.len(),
            checksummed.len(),
            manifest.fingerprint.objects.len(),
            results.len()
        )];
        let compared = holdings.compared_kinds();
        if !compared.is_empty() {
            notes.push(format!("also compared: {}", compared.join(", ")));
        }
        if !reworded.is_empty() {
            notes.push(format!(
                "not compared across versions: the text of {} definitions the newer server prints otherwise ({}); each is present",
                reworded.len(),
                reworded
                    .iter()
                    .filter_map(|m| match m {
                        crate::fingerprint::Mismatch::Definition { object, .. } => Some(object.as_str()),
                        _ => None,
                    })
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (what, why) in &holdings.not_compared {
            notes.push(format!("not compared: {what}: {why}"));
        }
        let damage = if manifest.is_physical() {
            let (more, damage) = if engine == Engine::Postgres {
                self.check_physical(backend.as_ref(), sandbox, expect.keep, compare)
                    .await?
            } else {
                self.check_mariabackup(backend.as_ref(), sandbox, manifest, &restored)
                    .await?
            };
            notes.extend(more);
            damage
        } else {
            Vec::new()
        };
        let failed: Vec<&crate::assertion::AssertionResult> =
            results.iter().filter(|a| !a.passed).collect();
        let mut problems = Vec::new();
        if !damage.is_empty() {
            problems.push(format!(
                "the restored cluster is damaged ({})",
                damage.join("; ")
            ));
        }
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
        let only_guards =
            mismatches.is_empty() && !failed.is_empty() && failed.iter().all(|a| a.guard);
        let error = (!problems.is_empty()).then(|| {
            let mut detail: Vec<String> = mismatches.iter().map(|m| m.to_string()).collect();
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
            let hint = if only_guards {
                format!("this backup is much smaller than the last good one: data was lost at the source, or the {} missed some; if the shrink was intended, `firedrill accept {}` makes it the new baseline", if manifest.is_physical() { "backup" } else { "dump" }, self.run_id)
            } else {
                "the restored data differs from what was dumped or from what the drill asserts; the backup is not good".to_string()
            };
            Error::verification(format!("{}: {}", problems.join(" and "), detail.join("; ")))
                .with_hint(hint)
        });
        self.mismatches = mismatches;
        self.assertions = results;
        Ok(Checked {
            notes,
            problem: error,
        })
    }

    /// Removes the sandbox. Runs whatever happened before, including after a stop,
    /// bounded by its own timeout; a Docker that cannot be reached is tried again until
    /// the timeout is nearly spent.
    pub(super) async fn teardown(&mut self, parts: &Parts) {
        let limit = self.drill.timeouts.teardown;
        let run_id = self.run_id.clone();
        let destroy = async {
            destroy_retrying(parts.sandbox.as_ref(), &run_id, limit)
                .await
                .map_err(|e| e.with_hint(format!("remove it and its volumes once Docker answers: `firedrill reap --run {run_id}`")))?;
            Ok(((), None, Vec::new()))
        };
        // Not under the run's stop: the sandbox goes however the run ended.
        let _ = self.stage(Stage::Teardown, &Stop::new(), destroy).await;
    }

    /// `--keep`: the sandbox stays for a person, with how to reach it.
    pub(super) fn keep(&mut self, engine: Engine, sandbox: &Sandbox, database: &str) {
        self.kept_sandbox = Some(format!(
            "{} (remove it and its volumes with `firedrill reap --run {}`)",
            engine.connect_cmd(&sandbox.name, database),
            self.run_id
        ));
        self.push(
            StageRun::skipped(Stage::Teardown, Some("kept for --keep".into())),
            true,
        );
    }
}

/// What the verify stage found: its notes, and the problem with the restored data if
/// there is one (a mismatch, a failed assertion). An `Err` instead is a check that could
/// not run.
struct Checked {
    notes: Vec<String>,
    problem: Option<Error>,
}

/// The index of a sandbox stage in the per-stage tallies.
fn slot(stage: Stage) -> usize {
    match stage {
        Stage::Provision => 0,
        Stage::Restore => 1,
        _ => 2,
    }
}

/// Parallel restore jobs: the sandbox's CPUs, rounded up.
fn restore_jobs(drill: &crate::config::Drill) -> u32 {
    let SandboxSpec::Docker(d) = &drill.sandbox;
    d.cpus.ceil().clamp(1.0, 64.0) as u32
}

/// The major version the sandbox runs: the source's, or the newer one an upgrade
/// rehearsal (`sandbox.major`) names. Restoring into an older one is refused.
pub(crate) fn target_major(sandbox: &SandboxSpec, engine: Engine, source: &str) -> Result<String> {
    let SandboxSpec::Docker(d) = sandbox;
    let Some(target) = d.major.clone() else {
        return Ok(source.to_string());
    };
    let key = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    if key(&target) < key(source) {
        return Err(Error::config(format!(
            "sandbox.major {target} is older than the source's {} {source}: a dump restores only into its own or a newer version",
            engine.as_str()
        ))
        .with_hint(format!("set sandbox.major to {source} or newer, or remove it")));
    }
    Ok(target)
}

/// One attempt at a ready sandbox: image present, container started, database accepting
/// connections, and the server's major version the one the drill restores into.
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
            .with_stderr(crate::engine::server_log_tail(&st.log_tail, 20))
            .with_hint("read the server log below; a custom sandbox.image must follow containers/README.md"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    check_version(backend, &sb, engine, &req.image, major).await?;
    Ok(sb)
}

/// The sandbox's server is of the major version the drill restores into.
pub(super) async fn check_version(
    backend: &dyn SandboxBackend,
    sb: &Sandbox,
    engine: Engine,
    image: &str,
    major: &str,
) -> Result<()> {
    let out = backend.exec(sb, &engine.version_cmd(), None).await?;
    let got = out.stdout.trim();
    if got != engine.expected_version(major) {
        return Err(Error::infra(format!(
            "sandbox image {image} runs `{got}`, but the drill restores into {} {major}",
            engine.as_str()
        ))
        .with_hint(format!(
            "use an image of that major version: {}",
            engine.default_image(major)
        ))
        .retryable(false));
    }
    Ok(())
}

/// Removes a run's sandbox, again and again while the backend cannot be reached (a
/// restarting Docker may be why the run failed), until `limit` is nearly spent.
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
