//! MariaDB Backup (`mariadb-backup`): a directory of backups, each a `--target-dir` of
//! its own, full or incremental. The chain a backup needs (its full backup and the
//! incrementals between) is read from each backup's `xtrabackup_checkpoints` and
//! checked here: an incremental whose base is missing is named before any sandbox
//! exists. In the sandbox, with the directory mounted read-only, the full backup is
//! copied into the data volume and prepared, each incremental is copied beside it (the
//! tool moves files out of it) and applied in order, and the server starts on the
//! result. A step that fails names the backup it was applying.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sandbox::{ExecOutput, Sandbox, SandboxBackend, DATA_DIR as DATA, REPO_MOUNT};

use super::cmd::{said, sh};
use super::setting as value;

/// One backup of the directory, as its own files describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The subdirectory's name.
    pub name: String,
    /// `full-backuped`, `full-prepared`, `incremental`.
    pub kind: String,
    pub from_lsn: u64,
    pub to_lsn: u64,
    /// `10.11.6-MariaDB-0+deb12u1`, from `xtrabackup_info`.
    pub server_version: Option<String>,
    /// When the backup ended (`xtrabackup_info`'s end_time, the server's local time,
    /// read as UTC).
    pub ended: Option<String>,
}

impl Backup {
    pub fn incremental(&self) -> bool {
        self.kind == "incremental"
    }

    /// The server's series (`10.11`), which picks the sandbox image.
    pub fn major(&self) -> Option<String> {
        let v = self.server_version.as_deref()?;
        let mut parts = v.split(['.', '-']);
        let (a, b) = (parts.next()?, parts.next()?);
        (a.chars().all(|c| c.is_ascii_digit()) && b.chars().all(|c| c.is_ascii_digit()))
            .then(|| format!("{a}.{b}"))
    }
}

/// Reads one backup's description from its `xtrabackup_checkpoints` and
/// `xtrabackup_info`. `None`: the directory is no backup.
pub fn parse(name: &str, checkpoints: &str, info: Option<&str>) -> Result<Backup> {
    let num = |key: &str| -> Result<u64> {
        value(checkpoints, key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                Error::backup(format!(
                    "backup {name}: xtrabackup_checkpoints has no {key}"
                ))
                .with_hint(
                    "the backup did not finish, or its files were damaged; take a new full backup",
                )
                .retryable(false)
            })
    };
    let kind = value(checkpoints, "backup_type")
        .unwrap_or_default()
        .to_string();
    if kind.is_empty() {
        return Err(Error::backup(format!(
            "backup {name}: xtrabackup_checkpoints names no backup_type"
        ))
        .retryable(false));
    }
    Ok(Backup {
        name: name.to_string(),
        kind,
        from_lsn: num("from_lsn")?,
        to_lsn: num("to_lsn")?,
        server_version: info
            .and_then(|i| value(i, "server_version"))
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        ended: info
            .and_then(|i| value(i, "end_time"))
            .filter(|v| !v.is_empty())
            .map(str::to_string),
    })
}

/// Every backup in `dir` (subdirectories with an `xtrabackup_checkpoints`).
pub async fn list(dir: &Path) -> Result<Vec<Backup>> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || list_blocking(&dir))
        .await
        .map_err(|e| Error::internal(format!("listing the backups: {e}")))?
}

fn list_blocking(dir: &Path) -> Result<Vec<Backup>> {
    let unreadable = |e: std::io::Error, what: &Path| {
        let denied = e.kind() == std::io::ErrorKind::PermissionDenied;
        Error::config(format!("cannot read {}: {e}", what.display())).with_hint(if denied {
            "run firedrill as a user that reads the backups (mariadb-backup makes them 0640, its directories 0700), e.g. in their group after chmod -R g+rX"
        } else {
            "check source.backup_dir: the directory whose subdirectories are mariadb-backup's target directories"
        })
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| unreadable(e, dir))? {
        let entry = entry.map_err(|e| unreadable(e, dir))?;
        let path = entry.path();
        let cp = path.join("xtrabackup_checkpoints");
        if !path.is_dir() || !cp.exists() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let checkpoints = std::fs::read_to_string(&cp).map_err(|e| unreadable(e, &cp))?;
        let info = std::fs::read_to_string(path.join("xtrabackup_info")).ok();
        out.push(parse(&name, &checkpoints, info.as_deref())?);
    }
    Ok(out)
}

/// The backups restoring `set` (or the newest) needs, full backup first: each
/// incremental's base is the backup whose `to_lsn` is its `from_lsn`.
pub fn chain(backups: &[Backup], set: Option<&str>, dir: &Path) -> Result<Vec<Backup>> {
    let target = match set {
        Some(name) => backups.iter().find(|b| b.name == name).ok_or_else(|| {
            Error::config(format!("{} holds no backup {name}", dir.display())).with_hint(
                format!(
                    "name one of {}, or set source.set = \"latest\"",
                    names(backups)
                ),
            )
        })?,
        None => backups
            .iter()
            .max_by_key(|b| (b.to_lsn, b.ended.clone(), b.name.clone()))
            .ok_or_else(|| {
                Error::backup(format!("{} holds no MariaDB Backup backup", dir.display()))
                    .with_hint("no subdirectory has an xtrabackup_checkpoints: run the backups, and find out why the scheduled ones are missing")
                    .retryable(false)
            })?,
    };
    let mut chain = vec![target.clone()];
    while chain[0].incremental() {
        let inc = &chain[0];
        // The base ends where the incremental begins. Without a checkpoint between
        // them, several backups end at the same LSN: the newest one that ended before
        // this one is the base it was taken on.
        let base = backups
            .iter()
            .filter(|b| {
                b.to_lsn == inc.from_lsn
                    && !chain.iter().any(|c| c.name == b.name)
                    && match (&b.ended, &inc.ended) {
                        (Some(b), Some(i)) => b <= i,
                        _ => true,
                    }
            })
            .max_by_key(|b| (b.ended.clone(), b.incremental()))
            .ok_or_else(|| {
                Error::backup(format!(
                    "incremental backup {} builds on LSN {}, and no backup in {} ends there: the backup it was taken on is missing",
                    inc.name,
                    inc.from_lsn,
                    dir.display()
                ))
                .with_hint("restore the missing backup into the directory, or take a new full backup")
                .retryable(false)
            })?;
        if chain.len() > 10_000 {
            return Err(Error::backup(format!(
                "the backups in {} make a chain of more than 10000 incrementals at {}",
                dir.display(),
                base.name
            ))
            .retryable(false));
        }
        chain.insert(0, base.clone());
    }
    let full = &chain[0];
    if full.kind == "full-prepared" && chain.len() > 1 {
        return Err(Error::backup(format!(
            "full backup {} was prepared in place: incremental backup {} can no longer be applied to it",
            full.name, chain[1].name
        ))
        .with_hint("keep full backups unprepared (prepare a copy), and take a new full backup")
        .retryable(false));
    }
    if full.kind != "full-backuped" && full.kind != "full-prepared" {
        return Err(Error::backup(format!(
            "backup {} is of type `{}`, neither full nor incremental",
            full.name, full.kind
        ))
        .retryable(false));
    }
    Ok(chain)
}

fn names(backups: &[Backup]) -> String {
    let mut v: Vec<&str> = backups.iter().map(|b| b.name.as_str()).collect();
    v.sort();
    v.into_iter().rev().take(5).collect::<Vec<_>>().join(", ")
}

/// The line of the tool's output that says what went wrong: the server's first
/// `[ERROR]`, else the last line that speaks of an error.
fn cause(out: &ExecOutput) -> String {
    let text = format!("{}\n{}", out.stdout, out.stderr);
    text.lines()
        .find(|l| l.contains("[ERROR]") || l.contains("FATAL ERROR"))
        .map(|l| match l.find("[ERROR]") {
            Some(i) => &l[i..],
            None => l,
        })
        .or_else(|| {
            text.lines().rev().find(|l| {
                let l = l.to_ascii_lowercase();
                (l.contains("error") || l.contains("failed")) && !l.contains("my_thread_global_end")
            })
        })
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| format!("exit {}", out.exit_code))
}

/// Prepares the chain in the sandbox's data volume and starts the server on it. Returns
/// the stage's notes.
pub async fn restore(
    backend: &dyn SandboxBackend,
    sb: &Sandbox,
    chain: &[Backup],
    keep_going: &(dyn Fn(&str) + Sync),
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let full = &chain[0];
    keep_going(&format!("copying full backup {}", full.name));
    let repo = |b: &Backup| PathBuf::from(REPO_MOUNT).join(&b.name);
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let out = backend
        .exec(
            sb,
            &sh(&format!(
                "i=0; while [ ! -d {DATA} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cp -a {}/. {DATA}/",
                quote(&repo(full))
            )),
            None,
        )
        .await?;
    if out.exit_code != 0 {
        return Err(Error::infra(format!(
            "cannot copy full backup {} into the sandbox",
            full.name
        ))
        .with_stderr(said(&out))
        .with_hint("the sandbox's data volume may be full, or a file of the backup unreadable"));
    }
    keep_going(&format!("preparing full backup {}", full.name));
    let out = backend
        .exec(
            sb,
            &sh(&format!(
                "mariadb-backup --prepare --target-dir={DATA} 2>&1"
            )),
            None,
        )
        .await?;
    if out.exit_code != 0 {
        return Err(Error::backup(format!(
            "mariadb-backup cannot prepare full backup {}: {}",
            full.name,
            cause(&out)
        ))
        .with_stderr(said(&out))
        .with_hint("the backup's files are damaged or incomplete; take a new full backup and check the storage")
        .retryable(false));
    }
    notes.push(format!("full backup {} prepared", full.name));
    for inc in &chain[1..] {
        // The tool moves files out of the incremental: a copy, beside the data (a
        // rename across volumes fails), removed once applied.
        keep_going(&format!("applying incremental backup {}", inc.name));
        let work = format!("{DATA}/.firedrill-incremental");
        let out = backend
            .exec(
                sb,
                &sh(&format!(
                    "rm -rf {work} && cp -a {} {work} && mariadb-backup --prepare --target-dir={DATA} --incremental-dir={work} 2>&1; rc=$?; rm -rf {work}; exit $rc",
                    quote(&repo(inc))
                )),
                None,
            )
            .await?;
        if out.exit_code != 0 {
            return Err(Error::backup(format!(
                "mariadb-backup cannot apply incremental backup {} (on top of {}): {}",
                inc.name,
                chain
                    .iter()
                    .take_while(|b| b.name != inc.name)
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + "),
                cause(&out)
            ))
            .with_stderr(said(&out))
            .with_hint(format!(
                "incremental backup {} is damaged or incomplete: the backups after it cannot be restored either; take a new full backup",
                inc.name
            ))
            .retryable(false));
        }
        notes.push(format!("incremental backup {} applied", inc.name));
    }
    keep_going("starting the server");
    let out = backend
        .exec(
            sb,
            &sh(&format!(
                "chown -R mysql:mysql {DATA} && touch /run/firedrill/start"
            )),
            None,
        )
        .await?;
    if out.exit_code != 0 {
        return Err(Error::infra("cannot start the sandbox's server").with_stderr(said(&out)));
    }
    let ready = crate::engine::Engine::Mariadb.ready_cmd();
    let t0 = std::time::Instant::now();
    loop {
        if backend.exec(sb, &ready, None).await?.exit_code == 0 {
            break;
        }
        let st = backend.state(sb).await?;
        if !st.running {
            return Err(Error::backup(format!(
                "the server did not start on the prepared backup {} (exit {})",
                chain.last().map(|b| b.name.as_str()).unwrap_or_default(),
                st.exit_code.unwrap_or(-1)
            ))
            .with_stderr(crate::engine::server_log_tail(&st.log_tail, 20))
            .with_hint("read the server's log below: the prepared data does not open")
            .retryable(false));
        }
        if t0.elapsed() > std::time::Duration::from_secs(600) {
            return Err(Error::infra(
                "the server on the prepared backup did not accept connections in 10 minutes",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(name: &str, kind: &str, from: u64, to: u64) -> Backup {
        Backup {
            name: name.into(),
            kind: kind.into(),
            from_lsn: from,
            to_lsn: to,
            server_version: Some("10.11.6-MariaDB-0+deb12u1".into()),
            ended: None,
        }
    }

    #[test]
    fn checkpoints_and_info_are_read() {
        let cp = "backup_type = incremental\nfrom_lsn = 44388\nto_lsn = 44404\nlast_lsn = 760702\nrecover_binlog_info = 0\n";
        let info = "uuid = x\nserver_version = 10.11.19-MariaDB-0+deb12u1\nend_time = 2026-12-01 13:35:08\n";
        let got = parse("inc1", cp, Some(info)).unwrap();
        assert_eq!(
            got,
            Backup {
                name: "inc1".into(),
                kind: "incremental".into(),
                from_lsn: 44388,
                to_lsn: 44404,
                server_version: Some("10.11.19-MariaDB-0+deb12u1".into()),
                ended: Some("2026-12-01 13:35:08".into()),
            }
        );
        assert_eq!(got.major().as_deref(), Some("10.11"));
        assert!(parse("x", "backup_type = full-backuped\n", None).is_err());
    }

    #[test]
    fn the_chain_runs_from_the_full_backup_and_a_missing_base_is_named() {
        let dir = Path::new("/srv/mb");
        let all = vec![
            b("full", "full-backuped", 0, 100),
            b("inc1", "incremental", 100, 200),
            b("inc2", "incremental", 200, 300),
        ];
        let names = |c: Vec<Backup>| c.into_iter().map(|b| b.name).collect::<Vec<_>>();
        assert_eq!(
            names(chain(&all, None, dir).unwrap()),
            ["full", "inc1", "inc2"]
        );
        assert_eq!(
            names(chain(&all, Some("inc1"), dir).unwrap()),
            ["full", "inc1"]
        );
        assert_eq!(names(chain(&all, Some("full"), dir).unwrap()), ["full"]);
        let e = chain(&all, Some("inc9"), dir).unwrap_err();
        assert!(e.hint.unwrap().contains("inc2, inc1, full"));
        let gap = vec![all[0].clone(), all[2].clone()];
        let e = chain(&gap, None, dir).unwrap_err();
        assert!(
            e.message
                .contains("incremental backup inc2 builds on LSN 200"),
            "{e}"
        );
        assert!(chain(&[], None, dir)
            .unwrap_err()
            .message
            .contains("holds no MariaDB Backup backup"));
        // No checkpoint between the backups: all end at one LSN, and the times say
        // which builds on which.
        let at = |name: &str, kind: &str, from: u64, t: &str| Backup {
            ended: Some(t.into()),
            ..b(name, kind, from, 100)
        };
        let flat = vec![
            at("full", "full-backuped", 0, "2026-12-01 10:00:00"),
            at("inc1", "incremental", 100, "2026-12-01 11:00:00"),
            at("inc2", "incremental", 100, "2026-12-01 12:00:00"),
        ];
        assert_eq!(
            names(chain(&flat, Some("inc2"), dir).unwrap()),
            ["full", "inc1", "inc2"]
        );
        let prepared = vec![b("full", "full-prepared", 0, 100), all[1].clone()];
        assert!(chain(&prepared, None, dir)
            .unwrap_err()
            .message
            .contains("prepared in place"));
    }
}
