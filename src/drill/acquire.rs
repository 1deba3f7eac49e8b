//! Where the artifact a run drills comes from: a backup taken now (the dump, encrypt and
//! upload stages), an artifact already in storage (`--artifact`, `--random`), or, for a
//! verify-only drill, the newest file another tool left under a prefix.

use crate::artifact::pipeline::{self, Backup};
use crate::cancel::Stop;
use crate::config::{SnapshotSpec, SourceSpec, StoredSpec};
use crate::error::{Error, Result};
use crate::fingerprint::ChecksumPlan;
use crate::manifest::Manifest;
use crate::report::ArtifactInfo;
use crate::status::Stage;
use crate::store::{ArtifactStore, RunDir};

use super::record::Record;
use super::Parts;

impl Record<'_> {
    /// Dump, encrypt and upload as one stream; the manifest of what was stored.
    pub(super) async fn backup(
        &mut self,
        parts: &Parts,
        checksums: ChecksumPlan,
        stop: &Stop,
    ) -> Result<Manifest> {
        let drill = self.drill;
        let t = &drill.timeouts;
        let policy = drill.retry.clone();
        let mut earlier: Vec<(Stage, String)> = Vec::new();
        let mut attempt = 0u32;
        // A source that dropped the dump's connection, a store that answered 503: taken
        // again from the start (nothing of a failed attempt is stored) before anything
        // pages. A full store, a dump tool that fails, a timeout: at once.
        let (outcome, attempts) = loop {
            attempt += 1;
            let outcome = pipeline::take(
                Backup {
                    drill: &drill.name,
                    dir: RunDir::new(&drill.storage, &drill.name, &self.run_id),
                    started_at: jiff::Timestamp::now(),
                    source: parts.source.as_ref(),
                    store: parts.store.clone(),
                    recipients: parts.recipients.clone(),
                    checksums,
                    level: drill.compression.level,
                    threads: drill.compression.threads,
                    min_dump_bytes: drill.source.min_dump_bytes(),
                    dump_timeout: t.dump,
                    encrypt_timeout: t.encrypt,
                    upload_timeout: t.upload,
                },
                stop,
                self.progress,
            )
            .await;
            let flaked = match &outcome.result {
                Err((stage, e)) if policy.retries(e, attempt) => Some((*stage, e.clone())),
                _ => None,
            };
            let Some((stage, e)) = flaked else {
                break (outcome, attempt);
            };
            for run in &outcome.stages {
                self.announce(run);
            }
            let backoff = policy.delay(attempt);
            earlier.push((stage, format!("attempt {attempt} failed: {}", e.headline())));
            self.progress.stage_retrying(stage, attempt, &e, backoff);
            tracing::warn!(run = %self.run_id, attempt, %stage, "backup failed on the infrastructure, taking it again in {backoff:?}: {e}");
            let waited = tokio::select! {
                _ = stop.stopped() => false,
                _ = tokio::time::sleep(backoff) => true,
            };
            if !waited {
                break (outcome, attempt);
            }
        };
        if let Some(meta) = &outcome.meta {
            self.source_version = Some(format!("{} {}", meta.engine, meta.server_version));
            self.dump_tool = Some(match &meta.tool_place {
                Some(place) => format!("{} {} ({place})", meta.tool, meta.tool_version),
                None => format!("{} {}", meta.tool, meta.tool_version),
            });
        }
        self.fingerprint = outcome.fingerprint;
        let failed = outcome.result.as_ref().err().map(|(s, _)| *s);
        for run in outcome.stages {
            // The failure is recorded once, with the stage that failed first.
            let mut run = match (&run.error, failed) {
                (Some(_), Some(f)) if f != run.stage => {
                    crate::stage::StageRun { error: None, ..run }
                }
                _ => run,
            };
            if run.outcome != crate::status::Outcome::Skipped {
                run.attempts = attempts;
            }
            let notes: Vec<String> = earlier
                .iter()
                .filter(|(s, _)| *s == run.stage)
                .map(|(_, n)| n.clone())
                .collect();
            run.notes.splice(0..0, notes);
            if run.stage == crate::status::Stage::Dump {
                if let Some(meta) = &outcome.meta {
                    run.notes.extend(meta.notes.iter().cloned());
                }
            }
            self.push(run, true);
        }
        match outcome.result {
            Ok(manifest) => {
                self.note_artifact(
                    parts.store.as_ref(),
                    &manifest,
                    RunDir::new(&drill.storage, &drill.name, &self.run_id).manifest(),
                );
                Ok(manifest)
            }
            Err((stage, e)) => {
                self.fail(Some(stage), e.clone());
                Err(e)
            }
        }
    }

    /// A stored artifact instead of a new backup: its manifest decides the rest. A run id
    /// that names nothing in storage is a usage error that lists the drill's runs.
    pub(super) async fn stored(&mut self, parts: &Parts, artifact: &str) -> Result<Manifest> {
        let drill = self.drill;
        self.skip_backup(format!("drilling stored artifact {artifact}"));
        let loaded = async {
            let (m, key) =
                crate::inventory::stored_artifact(parts.store.as_ref(), drill, artifact).await?;
            let fits = match &drill.source {
                SourceSpec::Postgres(_) => m.engine == crate::engine::kind::Engine::Postgres,
                SourceSpec::Mysql(_) => m.engine != crate::engine::kind::Engine::Postgres,
                SourceSpec::Stored(_)
                | SourceSpec::Snapshot(_)
                | SourceSpec::Pgbackrest(_)
                | SourceSpec::Mariabackup(_)
                | SourceSpec::Barman(_) => false,
            };
            if !fits {
                return Err(Error::config(format!(
                    "artifact {artifact} is a {} dump, not one of this drill's source",
                    m.engine
                )));
            }
            Ok((m, key))
        }
        .await;
        match loaded {
            Ok((m, key)) => {
                self.source_version = Some(format!("{} {}", m.engine, m.source_server_version));
                self.dump_tool = Some(format!("{} {}", m.dump_tool, m.dump_tool_version));
                self.fingerprint = Some(m.fingerprint.clone());
                self.note_artifact(parts.store.as_ref(), &m, key);
                Ok(m)
            }
            Err(e) => {
                self.fail(None, e.clone());
                Err(e)
            }
        }
    }

    /// A verify-only drill: the newest file under the drill's prefix, made by another
    /// tool. There is no manifest, so the drill writes down what it can learn (size,
    /// SHA-256 at restore) and the restore detects encryption, compression and format.
    pub(super) async fn external(&mut self, parts: &Parts, spec: &StoredSpec) -> Result<Manifest> {
        self.skip_backup(format!("verify-only: newest file under {}", spec.prefix));
        let store = &parts.store;
        let found = async {
            let keys = store.list(&spec.prefix).await?;
            let mut newest: Option<(Option<jiff::Timestamp>, String)> = None;
            for k in keys {
                let m = store.modified(&k).await?;
                if newest.as_ref().is_none_or(|(nm, nk)| (m, &k) > (*nm, nk)) {
                    newest = Some((m, k));
                }
            }
            let (modified, key) = newest.ok_or_else(|| {
                Error::backup(format!(
                    "no file under {} in {}",
                    spec.prefix,
                    store.describe()
                ))
                .with_hint(
                    "the backup job that should put files there has not, or source.prefix is wrong",
                )
            })?;
            let size = store.size(&key).await?;
            Ok::<_, Error>((key, size, modified))
        }
        .await;
        let (key, size, modified) = match found {
            Ok(v) => v,
            Err(e) => {
                self.fail(None, e.clone());
                return Err(e);
            }
        };
        self.evidence.storage = store.describe();
        self.evidence.artifact_key = Some(key.clone());
        self.artifact = Some(ArtifactInfo {
            location: format!("{} / {key}", store.describe()),
            manifest: String::new(),
            sha256: String::new(),
            plain_bytes: 0,
            compressed_bytes: 0,
            encrypted_bytes: size,
        });
        self.source_version = Some(format!("{} {} (declared)", spec.engine, spec.version));
        Ok(Manifest::external(
            &self.drill.name,
            &self.run_id,
            &key,
            size,
            modified.unwrap_or_else(jiff::Timestamp::now),
            spec.engine,
            &spec.version,
            &spec.database,
        ))
    }

    /// A verify-only drill of a dump in a restic or Borg repository: the snapshot chosen
    /// (`chosen` overrides the drill's `snapshot`), the file in it, and what the dump is,
    /// read from its first bytes. Listing and reading fail over to a new try while the
    /// repository flakes or the chosen snapshot is forgotten meanwhile; a damaged
    /// repository or a file that is no dump fails the restore stage (nothing restores).
    pub(super) async fn snapshot(
        &mut self,
        parts: &Parts,
        spec: &SnapshotSpec,
        chosen: Option<&str>,
        stop: &Stop,
    ) -> Result<Manifest> {
        let t0 = std::time::Instant::now();
        let Some(repo) = parts.repo.clone() else {
            let e = Error::internal("a snapshot drill without its repository");
            self.fail(None, e.clone());
            return Err(e);
        };
        self.skip_backup(format!("verify-only: a dump in {}", repo.describe()));
        let policy = self.drill.retry.clone();
        let limit = self.drill.timeouts.restore;
        let mut attempt = 0u32;
        let mut earlier = Vec::new();
        let selected = loop {
            attempt += 1;
            // Reading the dump is the restore's fetch: its timeout and the run's stop hold.
            let r = crate::stage::bounded(
                Stage::Restore,
                limit,
                stop,
                crate::snapshot::select(repo.as_ref(), spec, chosen),
            )
            .await;
            match r {
                Err(e) if policy.retries(&e, attempt) => {
                    let backoff = policy.delay(attempt);
                    tracing::warn!(run = %self.run_id, attempt, "reading {} failed, again in {backoff:?}: {e}", repo.describe());
                    earlier.push(format!("attempt {attempt} failed: {}", e.headline()));
                    let waited = tokio::select! {
                        _ = stop.stopped() => false,
                        _ = tokio::time::sleep(backoff) => true,
                    };
                    if !waited {
                        break Err(crate::stage::stopped(stop));
                    }
                }
                other => break other,
            }
        };
        let judged = selected.and_then(|s| {
            let (engine, version) = dump_kind(spec, &s)?;
            Ok((s, engine, version))
        });
        let (sel, engine, version) = match judged {
            Ok(v) => v,
            Err(e) => {
                // Reading the dump (damaged, vanished, not a dump, timed out, stopped)
                // is the restore's failure; what the drill file or the repository's keys
                // said stops the run before any stage.
                if e.kind != crate::error::ErrorKind::Config {
                    self.skip(Stage::Provision, Some("the dump could not be read".into()));
                    self.push(
                        crate::stage::StageRun::ended(
                            Stage::Restore,
                            t0.elapsed(),
                            e.clone().context("stage restore"),
                        )
                        .with_notes(earlier),
                        true,
                    );
                } else {
                    self.fail(None, e.clone());
                }
                return Err(e);
            }
        };
        let key = sel.key();
        self.note_snapshot(&sel);
        self.source_version = Some(match &sel.header.server_version {
            Some(v) => format!("{engine} {v} (the dump's header)"),
            None => format!("{engine} {version} (declared)"),
        });
        let m = Manifest::external(
            &self.drill.name,
            &self.run_id,
            &key,
            sel.file.size,
            sel.snapshot.time,
            engine,
            &version,
            &spec.database,
        );
        if let Ok(mut s) = self.snapshot.lock() {
            *s = Some(sel);
        }
        Ok(m)
    }

    /// The snapshot the run drills, for the report and its evidence: set when it is
    /// chosen, and again at the end (chosen anew after one vanished, its hash known).
    pub(super) fn note_snapshot(&mut self, sel: &crate::snapshot::Selected) {
        self.evidence.storage = sel.repository.clone();
        self.evidence.artifact_key = Some(sel.key());
        self.artifact = Some(ArtifactInfo {
            location: sel.location(),
            manifest: String::new(),
            sha256: sel.sha256.clone().unwrap_or_default(),
            plain_bytes: 0,
            compressed_bytes: 0,
            encrypted_bytes: sel.file.size,
        });
        self.dump_tool = Some(sel.dump_tool());
    }

    /// Dump, encrypt and upload did not run: the run drills something already stored.
    fn skip_backup(&mut self, why: String) {
        for s in [Stage::Dump, Stage::Encrypt, Stage::Upload] {
            self.skip(s, Some(why.clone()));
        }
    }

    /// The artifact the run drills, for the report and its evidence.
    fn note_artifact(&mut self, store: &dyn ArtifactStore, m: &Manifest, manifest_key: String) {
        self.evidence.storage = store.describe();
        self.evidence.artifact_key = Some(m.artifact_key.clone());
        let d = m.digest();
        self.artifact = Some(ArtifactInfo {
            location: format!("{} / {}", store.describe(), m.artifact_key),
            manifest: manifest_key,
            sha256: d.sha256,
            plain_bytes: d.plain_bytes,
            compressed_bytes: d.compressed_bytes,
            encrypted_bytes: d.encrypted_bytes,
        });
    }
}

/// The engine and server series a snapshot's dump restores with: declared in the drill,
/// or read from the dump's own header; a dump whose header names neither is no dump
/// firedrill can restore.
pub(super) fn dump_kind(
    spec: &SnapshotSpec,
    sel: &crate::snapshot::Selected,
) -> Result<(crate::engine::kind::Engine, String)> {
    let h = &sel.header;
    let what = format!(
        "{} in snapshot {} of {}",
        sel.file.path, sel.snapshot.label, sel.repository
    );
    if let (Some(declared), Some(found)) = (spec.engine, h.engine) {
        if !declared.same_family(found) {
            return Err(Error::config(format!(
                "source.engine is {declared}, but {what} is a {found} dump ({})",
                h.format
            ))
            .with_hint(format!(
                "write engine = \"{found}\", or leave engine out to read it from the dump"
            )));
        }
    }
    let engine = match spec.engine.or(h.engine) {
        Some(e) => e,
        None if h.encrypted() => {
            return Err(Error::config(format!(
                "{what} is age-encrypted: firedrill reads its header only inside the sandbox"
            ))
            .with_hint("declare source.engine and source.version for encrypted dumps"))
        }
        None => {
            return Err(Error::backup(format!(
                "{what} is not a database dump firedrill knows: its first bytes are neither pg_dump's nor mysqldump's ({}, compression {})",
                h.format, h.compression
            ))
            .with_hint("the backup job saved something else under this name (an error page, an empty file, another tool's output); check the job, and source.file"))
        }
    };
    if h.format.contains("tar") {
        return Err(Error::config(format!(
            "{what} is a {}: firedrill does not restore tar-format dumps yet",
            h.format
        ))
        .with_hint(
            "have the backup job save `pg_dump -Fc` (custom format) or plain SQL; both are drilled",
        ));
    }
    let version =
        match (&spec.version, h.series()) {
            (Some(v), _) => v.clone(),
            (None, Some(v)) => v,
            (None, None) => return Err(Error::config(format!(
                "{what} is a {engine} dump ({}) whose header records no server version",
                h.format
            ))
            .with_hint(
                "set source.version to the series the dumps come from, e.g. \"15\" or \"10.11\"",
            )),
        };
    Ok((engine, version))
}
