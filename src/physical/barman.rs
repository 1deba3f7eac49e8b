//! Barman: a server's base backups (`base/<id>/backup.info`) and its archived WAL
//! (`wals/xlog.db`) are read on this host to choose the backup, the target and the
//! window, and to judge gaps. In the sandbox, with the server's directory mounted
//! read-only, Barman itself recovers the backup into the data volume (its own settings,
//! the mount as its home) and copies out the WAL; firedrill then writes the target it
//! asks for, and the recovery is the same as any physical drill's.

use std::path::Path;

use crate::config::BarmanSpec;
use crate::error::{Error, Result};
use crate::sandbox::{Sandbox, SandboxBackend, DATA_DIR as DATA, REPO_MOUNT};

use super::cmd::{said, sh, write_tool_file, TOOL_DIR};
use super::restore::{From, Recovered};
use super::wal::{Archive, SegmentName};
use super::Target;

/// One base backup, as its `backup.info` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackup {
    pub id: String,
    pub status: String,
    pub begin_wal: Option<String>,
    pub end_wal: Option<String>,
    pub end_time: Option<jiff::Timestamp>,
    /// PostgreSQL's version number (`150004`).
    pub version: Option<u32>,
    pub timeline: Option<u32>,
}

impl BaseBackup {
    /// The major (`15`) that picks the sandbox image.
    pub fn major(&self) -> Option<String> {
        self.version.map(|v| (v / 10_000).to_string())
    }

    /// The first moment a recovery from this backup can stop at: Barman keeps the end
    /// to the microsecond, but the backup's consistency point (its end WAL) can fall a
    /// moment after; one second is safe.
    pub fn consistent_by(&self) -> Option<jiff::Timestamp> {
        self.end_time
            .and_then(|t| t.checked_add(jiff::SignedDuration::from_secs(1)).ok())
    }
}

/// A `backup.info` value; Barman writes `None` for one it does not have.
fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    super::setting(text, key).filter(|v| *v != "None" && !v.is_empty())
}

/// Parses a `backup.info`.
pub fn parse_info(id: &str, text: &str) -> BaseBackup {
    BaseBackup {
        id: id.to_string(),
        status: value(text, "status").unwrap_or("UNKNOWN").to_string(),
        begin_wal: value(text, "begin_wal").map(str::to_string),
        end_wal: value(text, "end_wal").map(str::to_string),
        end_time: value(text, "end_time")
            .and_then(|t| t.replacen(' ', "T", 1).parse::<jiff::Timestamp>().ok()),
        version: value(text, "version").and_then(|v| v.parse().ok()),
        timeline: value(text, "timeline").and_then(|v| v.parse().ok()),
    }
}

/// Parses `xlog.db` (`name<TAB>size<TAB>time<TAB>compression` per archived file).
pub fn parse_xlog_db(text: &str) -> Archive {
    let mut a = Archive::default();
    for line in text.lines() {
        let mut f = line.split('\t');
        let Some(name) = f.next().filter(|n| !n.is_empty()) else {
            continue;
        };
        let time = f
            .nth(1)
            .and_then(|t| t.parse::<f64>().ok())
            .and_then(|t| jiff::Timestamp::from_microsecond((t * 1e6) as i64).ok());
        a.add(name, time);
    }
    a
}

fn unreadable(e: std::io::Error, what: &Path) -> Error {
    let denied = e.kind() == std::io::ErrorKind::PermissionDenied;
    Error::config(format!("cannot read {}: {e}", what.display())).with_hint(if denied {
        "run firedrill as a user that reads Barman's home (the barman user, or one in its group)"
    } else {
        "check source.barman_home and source.server against barman.conf"
    })
}

/// The server's backups (every status) and its archive, read from Barman's files.
pub async fn read(spec: &BarmanSpec) -> Result<(Vec<BaseBackup>, Archive)> {
    let dir = spec.server_dir();
    tokio::task::spawn_blocking(move || {
        let base = dir.join("base");
        let mut backups = Vec::new();
        for entry in std::fs::read_dir(&base).map_err(|e| unreadable(e, &base))? {
            let entry = entry.map_err(|e| unreadable(e, &base))?;
            let info = entry.path().join("backup.info");
            if !info.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&info).map_err(|e| unreadable(e, &info))?;
            backups.push(parse_info(&entry.file_name().to_string_lossy(), &text));
        }
        let db = dir.join("wals").join("xlog.db");
        let archive = match std::fs::read_to_string(&db) {
            Ok(t) => parse_xlog_db(&t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Archive::default(),
            Err(e) => return Err(unreadable(e, &db)),
        };
        Ok((backups, archive))
    })
    .await
    .map_err(|e| Error::internal(format!("reading Barman's files: {e}")))?
}

/// The backup a drill restores: the one named, or the newest done one consistent by
/// `before` (a time target), or the newest done one.
pub fn choose<'a>(
    spec: &BarmanSpec,
    backups: &'a [BaseBackup],
    before: Option<jiff::Timestamp>,
) -> Result<&'a BaseBackup> {
    let mut done: Vec<&BaseBackup> = backups.iter().filter(|b| b.status == "DONE").collect();
    done.sort_by_key(|b| b.end_time);
    if let Some(id) = &spec.set {
        let b = backups.iter().find(|b| &b.id == id).ok_or_else(|| {
            Error::config(format!("Barman server {} has no backup {id}", spec.server)).with_hint(
                format!(
                    "name one of {}, or set source.set = \"latest\"",
                    done.iter()
                        .rev()
                        .take(5)
                        .map(|b| b.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if b.status != "DONE" {
            return Err(Error::backup(format!(
                "Barman backup {id} is {}, not DONE: it cannot be recovered",
                b.status
            ))
            .retryable(false));
        }
        return Ok(b);
    }
    let Some(newest) = done.last() else {
        return Err(Error::backup(format!(
            "Barman server {} has no finished backup in {}",
            spec.server,
            spec.server_dir().display()
        ))
        .with_hint("run `barman backup`, and find out why the scheduled ones are missing")
        .retryable(false));
    };
    match before {
        None => Ok(newest),
        Some(at) => done
            .iter()
            .rev()
            .find(|b| b.consistent_by().is_some_and(|c| c <= at))
            .copied()
            .ok_or_else(|| {
                Error::config(format!(
                    "target time {at} is outside the recovery window: the oldest backup ({}) is consistent from {}",
                    done[0].id,
                    done[0].consistent_by().map_or("?".into(), |t| t.to_string())
                ))
                .with_hint("choose a target time after the oldest backup is consistent, or keep backups longer")
            }),
    }
}

/// A Barman drill's plan: the backup, the target, the archive as listed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub server: String,
    pub backup: BaseBackup,
    pub major: String,
    pub archive: Archive,
    pub target: Target,
    /// The drill's target as it reads (`a random time in the last 7d: …`).
    pub asked: String,
    /// The target is a random time in the window.
    pub random: bool,
    /// The oldest backup's consistency and the archive's newest WAL.
    pub window: (Option<jiff::Timestamp>, Option<jiff::Timestamp>),
}

/// Recovers the plan's backup in the sandbox with Barman, then to the target.
pub async fn restore(
    backend: &dyn SandboxBackend,
    sb: &Sandbox,
    plan: &Plan,
    keep_going: &(dyn Fn(&str) + Sync),
) -> Result<Recovered> {
    // Barman's settings in the sandbox: the read-only mount is the server's directory
    // (named as the mount is), its logs and locks in the sandbox's memory. It runs as
    // root, which reads the backup's files whatever their owner here.
    let server = REPO_MOUNT.rsplit('/').next().unwrap_or("repo");
    let home = REPO_MOUNT.rsplit_once('/').map(|(h, _)| h).unwrap_or("/");
    let conf = format!(
        "[barman]\nbarman_home = {home}\nbarman_user = root\nlog_file = {TOOL_DIR}/barman.log\nbarman_lock_directory = {TOOL_DIR}\n\n[{server}]\ndescription = firedrill drill\nconninfo = host=/nonexistent dbname=none\nstreaming_conninfo = host=/nonexistent\nbackup_method = postgres\narchiver = on\n"
    );
    write_tool_file(
        backend,
        sb,
        "barman.conf",
        conf.into_bytes(),
        None,
        "Barman's settings",
    )
    .await?;
    // Barman copies the base backup and, for a recovery to a time, every archived WAL
    // up to it; a time past any WAL takes them all. firedrill then sets the target.
    keep_going(&format!("barman recover {}", plan.backup.id));
    let cmd = sh(&format!(
        "cd / && barman -c {TOOL_DIR}/barman.conf recover {server} {id} {DATA} --target-time '9999-12-31 00:00:00+00' --target-action promote 2>&1",
        id = plan.backup.id
    ));
    let out = backend.exec(sb, &cmd, None).await?;
    if out.exit_code != 0 || !out.stdout.contains("Recovery completed") {
        return Err(Error::backup(format!(
            "barman recover cannot recover backup {}: {}",
            plan.backup.id,
            out.stdout
                .lines()
                .rev()
                .find(|l| l.contains("ERROR") || l.contains("EXCEPTION"))
                .unwrap_or("see its output")
                .trim()
        ))
        .with_stderr(said(&out))
        .with_hint("the backup's files in Barman's home are damaged or incomplete: check `barman check-backup` and take a new backup")
        .retryable(false));
    }
    // The target firedrill asks: Barman's placeholder replaced.
    let target = match &plan.target {
        Target::Latest => String::new(),
        Target::Time(t) => format!(
            "recovery_target_time = '{}'\n",
            t.to_zoned(jiff::tz::TimeZone::UTC)
                .strftime("%Y-%m-%d %H:%M:%S%.6f+00")
        ),
        Target::Name(n) => format!("recovery_target_name = '{}'\n", n.replace('\'', "''")),
    };
    let fix = sh(&format!(
        "set -e; f={DATA}/postgresql.auto.conf; grep -v '^recovery_target' $f > $f.firedrill; \
         printf \"%s\" \"$0\" >> $f.firedrill; printf \"recovery_target_action = 'promote'\\n\" >> $f.firedrill; \
         mv $f.firedrill $f; touch {DATA}/recovery.signal; chown -R postgres:postgres {DATA}; chmod 0700 {DATA}",
    ));
    let mut fix = fix;
    fix.push(target);
    let out = backend.exec(sb, &fix, None).await?;
    if out.exit_code != 0 {
        return Err(
            Error::infra("cannot write the recovery target into the sandbox")
                .with_stderr(said(&out)),
        );
    }
    let notes = vec![format!(
        "barman recover of backup {} (WAL {} to {}), with the archive's WAL up to the target",
        plan.backup.id,
        plan.backup.begin_wal.as_deref().unwrap_or("?"),
        plan.backup.end_wal.as_deref().unwrap_or("?")
    )];
    let from = From {
        target: &plan.target,
        start: plan
            .backup
            .begin_wal
            .as_deref()
            .and_then(SegmentName::parse),
        archive: &plan.archive,
        newest_wal: plan.window.1,
        set: &plan.backup.id,
        random: plan.random,
    };
    super::restore::recover(backend, sb, &from, notes, keep_going).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RecoveryTarget;

    const INFO: &str = "backup_label='START WAL LOCATION: 0/2000028'\nbegin_time=2026-12-01 14:10:49.220924+00:00\nbegin_wal=000000010000000000000002\nend_time=2026-12-01 14:10:50.436012+00:00\nend_wal=000000010000000000000002\nerror=None\nstatus=DONE\ntimeline=1\nversion=150018\n";

    fn spec(set: Option<&str>) -> BarmanSpec {
        BarmanSpec {
            home: "/var/lib/barman".into(),
            server: "pg".into(),
            set: set.map(str::to_string),
            target: RecoveryTarget::Latest,
            database: "postgres".into(),
        }
    }

    #[test]
    fn backup_info_and_xlog_db_are_read() {
        let b = parse_info("20261201T141049", INFO);
        assert_eq!(b.status, "DONE");
        assert_eq!(b.major().as_deref(), Some("15"));
        assert_eq!(b.begin_wal.as_deref(), Some("000000010000000000000002"));
        assert_eq!(
            b.end_time.unwrap().to_string(),
            "2026-12-01T14:10:50.436012Z"
        );
        let a = parse_xlog_db("000000010000000000000002\t16463\t1796134249.332597\tgzip\n000000010000000000000002.00000028.backup\t198\t1796134249.34\tgzip\n000000010000000000000003\t16000\t1796134260.5\tgzip\n");
        assert_eq!(a.names.len(), 2);
        assert!(a.newest_at.is_some());
    }

    #[test]
    fn a_backup_is_chosen_by_name_time_or_newest() {
        let older = parse_info("20261201T100000", &INFO.replace("14:10:50", "10:00:01"));
        let newer = parse_info("20261201T141049", INFO);
        let failed = BaseBackup {
            status: "FAILED".into(),
            ..parse_info("20261201T150000", &INFO.replace("14:10:50", "15:00:01"))
        };
        let all = vec![older, newer, failed];
        assert_eq!(
            choose(&spec(None), &all, None).unwrap().id,
            "20261201T141049"
        );
        let noon: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            choose(&spec(None), &all, Some(noon)).unwrap().id,
            "20261201T100000"
        );
        let early: jiff::Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
        assert!(choose(&spec(None), &all, Some(early))
            .unwrap_err()
            .message
            .contains("outside the recovery window"));
        assert!(choose(&spec(Some("20261201T150000")), &all, None)
            .unwrap_err()
            .message
            .contains("FAILED"));
        assert!(choose(&spec(Some("nope")), &all, None).is_err());
    }
}
