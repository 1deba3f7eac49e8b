//! The stages of a Barman drill: `dump`, `encrypt` and `upload` are Barman's own
//! (skipped); Barman's files are read and the backup and target chosen at the restore's
//! start; the sandbox recovers the backup with Barman from a read-only mount of the
//! server's directory, then to the target; the verify stage is any physical
//! PostgreSQL drill's.

use crate::cancel::Stop;
use crate::config::BarmanSpec;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::manifest::Manifest;
use crate::physical::barman::{self, Plan};
use crate::physical::Target;
use crate::sandbox::{Sandbox, SandboxBackend};
use crate::status::Stage;

use super::record::Record;

impl Record<'_> {
    /// A Barman drill's plan: the server's backups and archive read, the backup chosen
    /// (the drill's `set`, `chosen` with `--artifact`, or the newest that reaches the
    /// target).
    pub(super) async fn barman(
        &mut self,
        spec: &BarmanSpec,
        chosen: Option<&str>,
        stop: &Stop,
    ) -> Result<Manifest> {
        let drill = self.drill;
        let dir = spec.server_dir().display().to_string();
        self.skip(
            Stage::Dump,
            Some(match chosen {
                Some(id) => format!("drilling backup {id}"),
                None => format!(
                    "verify-only: Barman server {}'s backups in {dir}",
                    spec.server
                ),
            }),
        );
        for s in [Stage::Encrypt, Stage::Upload] {
            self.skip(s, Some("Barman compresses and stores the backups".into()));
        }
        let t0 = std::time::Instant::now();
        let spec_chosen = BarmanSpec {
            set: chosen.map(str::to_string).or_else(|| spec.set.clone()),
            ..spec.clone()
        };
        let read = crate::stage::bounded(Stage::Restore, drill.timeouts.restore, stop, async {
            let (backups, archive) = barman::read(&spec_chosen).await?;
            let oldest = backups
                .iter()
                .filter(|b| b.status == "DONE")
                .filter_map(|b| b.consistent_by())
                .min();
            let target = crate::physical::resolve_target(
                &spec.target,
                &self.run_id,
                oldest.unwrap_or_else(jiff::Timestamp::now),
                archive.newest_at,
                jiff::Timestamp::now(),
            )?;
            let before = match &target {
                Target::Time(at) => Some(*at),
                _ => None,
            };
            let backup = barman::choose(&spec_chosen, &backups, before)?.clone();
            let major = backup.major().ok_or_else(|| {
                Error::backup(format!(
                    "Barman backup {}: backup.info names no PostgreSQL version",
                    backup.id
                ))
                .retryable(false)
            })?;
            Ok(Plan {
                asked: crate::physical::asked(&spec.target, &target),
                random: matches!(spec.target, crate::config::RecoveryTarget::Random { .. }),
                server: spec.server.clone(),
                backup,
                major,
                window: (oldest, archive.newest_at),
                archive,
                target,
            })
        })
        .await;
        let plan = match read {
            Ok(p) => p,
            Err(e) => {
                self.unreadable(t0.elapsed(), &e, "Barman's backups could not be read");
                return Err(e);
            }
        };
        let key = format!("barman:{}/{}", spec.server, plan.backup.id);
        self.physical_artifact(
            &key,
            format!("Barman {dir}"),
            format!("Barman {dir}, backup {}", plan.backup.id),
        );
        self.source_version = Some(format!(
            "postgres {} (Barman's backup.info)",
            plan.backup
                .version
                .map_or(plan.major.clone(), |v| v.to_string())
        ));
        self.dump_tool = Some("Barman".into());
        let m = Manifest::physical(
            &drill.name,
            &self.run_id,
            &key,
            plan.backup.end_time.unwrap_or_else(jiff::Timestamp::now),
            "barman",
            Engine::Postgres,
            &plan.major,
            &spec.database,
            Fingerprint::default(),
        );
        self.barman = Some(plan);
        Ok(m)
    }

    /// The restore stage of a Barman drill: recovered in the sandbox to the target, the
    /// image's version checked against the backup's.
    pub(super) async fn restore_barman(
        &self,
        backend: &dyn SandboxBackend,
        sandbox: &Sandbox,
        plan: &Plan,
    ) -> Result<Vec<String>> {
        let t0 = std::time::Instant::now();
        let run_id = self.run_id.clone();
        let step = |what: &str| tracing::info!(run = %run_id, "barman restore: {what}");
        let r = barman::restore(backend, sandbox, plan, &step).await?;
        super::sandbox_stages::check_version(
            backend,
            sandbox,
            Engine::Postgres,
            self.sandbox_image.as_deref().unwrap_or_default(),
            &plan.major,
        )
        .await?;
        let (report, notes) = super::physical::recovered(
            "barman",
            plan.backup.id.clone(),
            plan.asked.clone(),
            &r,
            plan.window,
            t0.elapsed(),
        );
        if let Ok(mut slot) = self.recovery.lock() {
            *slot = Some(report);
        }
        Ok(notes)
    }
}
