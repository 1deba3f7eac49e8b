//! The stages of a MariaDB Backup drill: `dump`, `encrypt` and `upload` are the
//! operator's own (skipped); the directory is read and the chain chosen at the restore's
//! start; the sandbox copies, prepares and applies the chain from a read-only mount and
//! starts the server on it; the verify stage fingerprints the drill's database, runs the
//! assertions and CHECK TABLE on every table.

use crate::cancel::Stop;
use crate::config::MariabackupSpec;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::manifest::Manifest;
use crate::physical::mariabackup::{self, Backup};
use crate::physical::RecoveryReport;
use crate::sandbox::{Sandbox, SandboxBackend};
use crate::status::Stage;

use super::record::Record;

impl Record<'_> {
    /// A MariaDB Backup drill's chain: the directory read and the backup chosen (the
    /// newest, the drill's `set`, or `chosen` with `--artifact`).
    pub(super) async fn mariabackup(
        &mut self,
        spec: &MariabackupSpec,
        chosen: Option<&str>,
        stop: &Stop,
    ) -> Result<Manifest> {
        let drill = self.drill;
        let dir = spec.backup_dir.display().to_string();
        self.skip(
            Stage::Dump,
            Some(match chosen {
                Some(name) => format!("drilling backup {name}"),
                None => format!("verify-only: the MariaDB Backup backups in {dir}"),
            }),
        );
        for s in [Stage::Encrypt, Stage::Upload] {
            self.skip(
                s,
                Some("MariaDB Backup's backups are stored as the operator keeps them".into()),
            );
        }
        let t0 = std::time::Instant::now();
        let set = chosen.or(spec.set.as_deref());
        let read = crate::stage::bounded(Stage::Restore, drill.timeouts.restore, stop, async {
            let backups = mariabackup::list(&spec.backup_dir).await?;
            mariabackup::chain(&backups, set, &spec.backup_dir)
        })
        .await;
        let chain = match read {
            Ok(c) => c,
            Err(e) => {
                self.unreadable(t0.elapsed(), &e, "the backups could not be read");
                return Err(e);
            }
        };
        let last = chain.last().cloned().unwrap_or_else(|| chain[0].clone());
        let crate::config::SandboxSpec::Docker(sandbox) = &drill.sandbox;
        let Some(major) = last
            .major()
            .or_else(|| chain[0].major())
            .or_else(|| sandbox.major.clone())
        else {
            let e = Error::backup(format!(
                "backup {}: xtrabackup_info names no server version, so no sandbox can be chosen",
                last.name
            ))
            .with_hint("set sandbox.major to the source's series (e.g. \"10.11\")")
            .retryable(false);
            self.unreadable(t0.elapsed(), &e, "the backups could not be read");
            return Err(e);
        };
        let key = format!("mariabackup:{}", last.name);
        self.physical_artifact(
            &key,
            format!("MariaDB Backup directory {dir}"),
            format!("MariaDB Backup {dir}, backup {}", describe(&chain)),
        );
        self.source_version = Some(match &last.server_version {
            Some(v) => format!("mariadb {v} (xtrabackup_info)"),
            None => format!("mariadb {major}"),
        });
        self.dump_tool = Some("MariaDB Backup".into());
        let made_at = last
            .ended
            .as_deref()
            .and_then(|t| t.replace(' ', "T").parse::<jiff::civil::DateTime>().ok())
            .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
            .unwrap_or_else(jiff::Timestamp::now);
        let m = Manifest::physical(
            &drill.name,
            &self.run_id,
            &key,
            made_at,
            "mariabackup",
            Engine::Mariadb,
            &major,
            &spec.database,
            Fingerprint::default(),
        );
        self.mariabackup = Some(chain);
        Ok(m)
    }

    /// The restore stage of a MariaDB Backup drill: the chain prepared in the sandbox and
    /// its server started, the image's version checked against the backup's.
    pub(super) async fn restore_mariabackup(
        &self,
        backend: &dyn SandboxBackend,
        sandbox: &Sandbox,
        chain: &[Backup],
    ) -> Result<Vec<String>> {
        let t0 = std::time::Instant::now();
        let run_id = self.run_id.clone();
        let step = |what: &str| tracing::info!(run = %run_id, "mariabackup restore: {what}");
        let notes = mariabackup::restore(backend, sandbox, chain, &step).await?;
        let last = chain.last().unwrap_or(&chain[0]);
        if let Some(major) = last.major() {
            super::sandbox_stages::check_version(
                backend,
                sandbox,
                Engine::Mariadb,
                self.sandbox_image.as_deref().unwrap_or_default(),
                &major,
            )
            .await?;
        }
        let asked = match &self.drill.source {
            crate::config::SourceSpec::Mariabackup(s) if s.set.is_some() => {
                format!("backup {}", last.name)
            }
            _ => "latest".to_string(),
        };
        let report = RecoveryReport {
            method: "mariabackup".into(),
            backup_set: describe(chain),
            target_asked: asked,
            target: format!("the end of backup {}", last.name),
            target_reached: format!(
                "backup {} prepared to LSN {}{}",
                last.name,
                last.to_lsn,
                last.ended
                    .as_deref()
                    .map(|t| format!(" (taken until {t})"))
                    .unwrap_or_default()
            ),
            recovered_in_seconds: Some(t0.elapsed().as_secs_f64()),
            ..Default::default()
        };
        if let Ok(mut slot) = self.recovery.lock() {
            *slot = Some(report);
        }
        Ok(notes)
    }

    /// The verify stage's checks of a restored MariaDB Backup: the drill's database has
    /// tables, and CHECK TABLE finds every table of every database sound. Returns notes
    /// and the damage found.
    pub(super) async fn check_mariabackup(
        &self,
        backend: &dyn SandboxBackend,
        sandbox: &Sandbox,
        manifest: &Manifest,
        restored: &Fingerprint,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let database = &manifest.databases[0];
        if restored.tables.is_empty() {
            return Err(Error::verification(format!(
                "the restored server has no tables in database {database}"
            ))
            .with_hint("the backup is of an empty server, or of another one than the drill means; check source.database and source.backup_dir"));
        }
        let mut notes = vec![format!(
            "restored database {database}: {} tables, {} rows",
            restored.tables.len(),
            restored.total_rows()
        )];
        let out = backend
            .exec(
                sandbox,
                &crate::physical::cmd::sh(
                    "mariadb-check --no-defaults --socket=/run/mysqld/mysqld.sock -uroot --all-databases --check 2>&1",
                ),
                None,
            )
            .await?;
        let damage = check_damage(&out.stdout);
        if out.exit_code != 0 && damage.is_empty() {
            return Err(Error::infra(format!(
                "mariadb-check could not run (exit {})",
                out.exit_code
            ))
            .with_stderr(crate::engine::tail(&out.stdout, 15)));
        }
        if damage.is_empty() {
            notes.push("CHECK TABLE: every table of every database is sound".into());
        }
        Ok((notes, damage))
    }
}

/// `inc2 (full + 2 incrementals: full, inc1, inc2)`.
fn describe(chain: &[Backup]) -> String {
    let last = chain.last().unwrap_or(&chain[0]);
    match chain.len() {
        1 => format!("{} (full)", last.name),
        n => format!(
            "{} (full + {} incremental{}: {})",
            last.name,
            n - 1,
            if n == 2 { "" } else { "s" },
            chain
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The tables mariadb-check does not find OK, with what it said of them.
fn check_damage(out: &str) -> Vec<String> {
    let mut damage = Vec::new();
    let mut table: Option<&str> = None;
    for line in out.lines() {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        // `Error    : Corrupt`, `Warning  : …`, `status   : OK` follow their table.
        if let Some((kind, msg)) = l
            .split_once(':')
            .filter(|(k, _)| !k.contains('.') && !k.trim().contains(' '))
        {
            let kind = kind.trim().to_ascii_lowercase();
            let msg = msg.trim();
            if kind == "error" || kind == "status" && !msg.eq_ignore_ascii_case("ok") {
                damage.push(format!("{}: {msg}", table.unwrap_or("?")));
            }
            continue;
        }
        // `db.table    OK`, or `db.table` alone, its messages on the lines after.
        let mut parts = l.split_whitespace();
        table = parts.next();
        let rest: Vec<&str> = parts.collect();
        if !rest.is_empty() && rest != ["OK"] {
            damage.push(format!("{}: {}", table.unwrap_or("?"), rest.join(" ")));
        }
    }
    damage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_table_damage_is_named() {
        let ok = "mysql.db                                           OK\nshop.t                                             OK\n";
        assert!(check_damage(ok).is_empty());
        let bad = "shop.t\nWarning  : InnoDB: Index 'PRIMARY' contains 0 entries, should be 8000.\nerror    : Corrupt\nshop.u                                             OK\n";
        assert_eq!(check_damage(bad), ["shop.t: Corrupt"]);
    }
}
