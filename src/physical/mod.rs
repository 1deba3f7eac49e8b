//! Physical backups: a backup tool's copy of a server's files and its archived WAL,
//! restored into the sandbox and recovered to a target, then proved: the target reached
//! (from the server's own recovery log), no gap in the WAL between the backup and the
//! target, the timeline it ended on, and the restored cluster's pages checked.
//!
//! pgBackRest today ([`pgbackrest`]). The repository reaches the sandbox read-only: a
//! posix repository is mounted, what a restore needs of one in a bucket is copied into
//! the sandbox's staging volume ([`stage`]); the restore and the recovery run in the
//! sandbox, whose network stays off; everything restored lives in the sandbox's own
//! volumes.

pub mod barman;
pub mod cmd;
pub mod mariabackup;
pub mod pgbackrest;
pub mod recovery;
pub mod restore;
pub mod stage;
pub mod wal;

use serde::{Deserialize, Serialize};

use crate::config::RecoveryTarget;
use crate::error::{Error, Result};

pub use restore::Recovered;

/// Where the repository is mounted in the sandbox.
pub const SANDBOX_REPO: &str = crate::sandbox::REPO_MOUNT;

/// The value of `key` in a backup tool's `key = value` file (`xtrabackup_checkpoints`,
/// Barman's `backup.info`), trimmed.
pub(crate) fn setting<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// How a report names the target a drill asked for: a random one with the moment it
/// became (`a random time in the window: 2026-…`).
pub fn asked(target: &RecoveryTarget, resolved: &Target) -> String {
    match (target, resolved) {
        (RecoveryTarget::Random { .. }, Target::Time(at)) => {
            format!("{}: {at}", target.describe())
        }
        _ => target.describe(),
    }
}

/// A target, resolved: the moment of a random one chosen, this run's restore point named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Latest,
    Time(jiff::Timestamp),
    Name(String),
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Latest => "latest (the end of the archived WAL)".into(),
            Target::Time(t) => format!("time {t}"),
            Target::Name(n) => format!("restore point \"{n}\""),
        }
    }

    /// pgBackRest's restore options for it; recovery promotes at the target.
    pub fn restore_args(&self) -> Vec<String> {
        match self {
            Target::Latest => vec!["--type=default".into()],
            Target::Time(t) => vec![
                "--type=time".into(),
                format!(
                    "--target={}",
                    t.to_zoned(jiff::tz::TimeZone::UTC)
                        .strftime("%Y-%m-%d %H:%M:%S%.6f+00")
                ),
                "--target-action=promote".into(),
            ],
            Target::Name(n) => vec![
                "--type=name".into(),
                format!("--target={n}"),
                "--target-action=promote".into(),
            ],
        }
    }
}

/// The restore point a run makes after the backup it takes.
pub fn restore_point_name(run_id: &str) -> String {
    format!("firedrill-{run_id}")
}

/// What a physical drill restores, decided before the sandbox exists: the backup set,
/// the target, and the archive as it was listed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub stanza: String,
    pub set: pgbackrest::BackupSet,
    /// The set's PostgreSQL major (picks the sandbox image).
    pub major: String,
    pub archive: wal::Archive,
    pub target: Target,
    /// The drill's target as it reads (`a random time in the last 7d`).
    pub asked: String,
    /// The target is a random time in the window.
    pub random: bool,
    /// The oldest backup's consistency and the archive's newest WAL: the recovery window.
    pub window: (jiff::Timestamp, Option<jiff::Timestamp>),
    /// The repository's settings for the sandbox's pgbackrest.conf (with its secret).
    pub sandbox_conf: crate::secret::Secret,
    /// A repository in a bucket: what is copied into the sandbox before the restore.
    pub staging: Option<stage::Staging>,
}

/// Resolves the drill's target: a random one gets its moment in the window (the oldest
/// backup's consistency, or `within` ago, to the archive's newest WAL); this run's restore point
/// gets its name.
pub fn resolve_target(
    target: &RecoveryTarget,
    run_id: &str,
    oldest_consistent: jiff::Timestamp,
    newest_wal: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Result<Target> {
    Ok(match target {
        RecoveryTarget::Latest => Target::Latest,
        RecoveryTarget::RestorePoint => Target::Name(restore_point_name(run_id)),
        RecoveryTarget::Time { at } => Target::Time(*at),
        RecoveryTarget::Name { name } => Target::Name(name.clone()),
        RecoveryTarget::Random { within } => {
            let from = match within {
                Some(w) => {
                    let ago = now
                        .checked_sub(jiff::SignedDuration::try_from(*w).unwrap_or_default())
                        .unwrap_or(oldest_consistent);
                    ago.max(oldest_consistent)
                }
                None => oldest_consistent,
            };
            let to = newest_wal.unwrap_or(now).min(now);
            if to <= from {
                return Err(Error::backup(format!(
                    "no recovery window to choose from: the archive's newest WAL ({}) is not after {from}",
                    newest_wal.map_or("none".into(), |t| t.to_string())
                ))
                .with_hint("WAL has not been archived since the backup: check archive_command and `pgbackrest check` on the server"));
            }
            let span = (to.as_millisecond() - from.as_millisecond()).max(1);
            let pick = from.as_millisecond() + (rand::random::<u64>() % span as u64) as i64;
            Target::Time(jiff::Timestamp::from_millisecond(pick).unwrap_or(to))
        }
    })
}

/// The recovery, for reports, the dashboard and the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecoveryReport {
    /// `pgbackrest`.
    pub method: String,
    /// The backup set restored (`20261201-092810F_20261201-093000I`) and its type.
    pub backup_set: String,
    /// The target as the drill asked for it.
    pub target_asked: String,
    /// The target resolved (a random one's moment, this run's restore point's name).
    pub target: String,
    /// Where recovery stopped, as the server logged it.
    pub target_reached: String,
    /// The first and last WAL segment restored from the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_to: Option<String>,
    /// How many segments the server restored from the archive.
    #[serde(default)]
    pub segments_replayed: u64,
    /// The timeline replayed, and the new one the server chose at promotion.
    pub timeline: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_timeline: Option<u32>,
    /// The last transaction replayed (`pg_last_xact_replay_timestamp()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transaction: Option<String>,
    /// The recovery window's start: when the oldest backup is consistent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub window_from: Option<jiff::Timestamp>,
    /// The recovery window's end: when the archive's newest WAL was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub window_to: Option<jiff::Timestamp>,
    /// Seconds from the restore's start to the promoted server (the run's RTO adds the
    /// verification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_in_seconds: Option<f64>,
    /// The user tables of the restored database the drill fingerprints, and their exact
    /// rows: the next drills' anomaly guards compare with a passing drill's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_tables: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_rows: Option<u64>,
}

impl RecoveryReport {
    /// The report as labelled lines, for a person (the CLI, the HTML report).
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            (
                "recovery",
                format!("{} backup set {}", self.method, self.backup_set),
            ),
            (
                "recovery target",
                if self.target_asked == self.target || self.target.contains(&self.target_asked) {
                    self.target.clone()
                } else {
                    format!("{} (asked: {})", self.target, self.target_asked)
                },
            ),
        ];
        if !self.target_reached.is_empty() {
            v.push(("target reached", self.target_reached.clone()));
        }
        if let (Some(a), Some(b)) = (&self.wal_from, &self.wal_to) {
            v.push((
                "WAL replayed",
                format!(
                    "{} segments, {a} to {b}, timeline {}{}",
                    self.segments_replayed,
                    self.timeline,
                    self.new_timeline
                        .map(|t| format!(" (promoted to {t})"))
                        .unwrap_or_default()
                ),
            ));
        }
        if let Some(t) = &self.last_transaction {
            v.push(("last transaction replayed", t.clone()));
        }
        if let Some(from) = self.window_from {
            v.push((
                "recovery window",
                format!(
                    "{from} to {}",
                    self.window_to.map_or("unknown".into(), |t| t.to_string())
                ),
            ));
        }
        if let Some(s) = self.recovered_in_seconds {
            v.push(("recovered in", format!("{s:.1} s (restore to promotion)")));
        }
        if let (Some(t), Some(r)) = (self.restored_tables, self.restored_rows) {
            v.push(("restored data", format!("{t} tables, {r} rows")));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PgbackrestSpec;

    #[test]
    fn targets_become_pgbackrest_options() {
        let t = Target::Time("2026-12-01T09:30:00.5Z".parse().unwrap());
        assert_eq!(
            t.restore_args(),
            vec![
                "--type=time",
                "--target=2026-12-01 09:30:00.500000+00",
                "--target-action=promote"
            ]
        );
        assert_eq!(Target::Latest.restore_args(), vec!["--type=default"]);
    }

    #[test]
    fn a_random_target_falls_in_the_window() {
        let spec = PgbackrestSpec {
            stanza: "main".into(),
            repo_path: "/r".into(),
            s3: None,
            config: None,
            command: vec!["pgbackrest".into()],
            cipher: None,
            backup: None,
            set: None,
            target: RecoveryTarget::Random {
                within: Some(std::time::Duration::from_secs(3600)),
            },
            server: None,
        };
        let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let oldest: jiff::Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let newest: jiff::Timestamp = "2026-12-01T11:50:00Z".parse().unwrap();
        for _ in 0..50 {
            let Target::Time(at) =
                resolve_target(&spec.target, "r", oldest, Some(newest), now).unwrap()
            else {
                panic!("not a time")
            };
            assert!(
                at >= "2026-12-01T11:00:00Z".parse().unwrap() && at <= newest,
                "{at}"
            );
        }
        let e = resolve_target(&spec.target, "r", now, Some(oldest), now).unwrap_err();
        assert!(e.message.contains("no recovery window"));
    }
}
