//! Borg: archives listed, a file listed and extracted to stdout, always with
//! `--bypass-lock` (a drill never writes to the repository, not even a lock). Borg's
//! own state (security records, cache) goes to a directory of the drill's own that is
//! removed afterwards: nothing of the host's Borg setup is read or changed. Failures are
//! told by the message ids of `--log-json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::tool::{checked_version, load_secrets, tail, Streamed, Tool};
use super::{Entry, RepoFault, Snapshot, SnapshotRepo};
use crate::config::SnapshotSpec;
use crate::error::{Error, Result};

/// `--bypass-lock`, `--glob-archives` and `list --json-lines`: Borg 1.2 and later.
const OLDEST: (u32, u32, u32) = (1, 2, 0);

pub struct Borg {
    tool: Tool,
    spec: SnapshotSpec,
    limit: Duration,
    /// Removed with the reader: see [`BaseDir`].
    _base: BaseDir,
}

/// Borg's own state for one drill, removed when the drill is done with the repository.
struct BaseDir(PathBuf);

impl Drop for BaseDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Borg {
    pub fn new(spec: &SnapshotSpec, base: &Path, limit: Duration) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "firedrill-borg-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)
            .and_then(|_| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|e| Error::infra(format!("cannot create {}: {e}", dir.display())))?;
        let dir = BaseDir(dir);
        let mut settings: Vec<(String, String)> = [
            ("BORG_BASE_DIR", dir.0.display().to_string()),
            // The state above is new each time: "unknown" says nothing here, and a
            // question would only make Borg give up (stdin is closed).
            ("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes".into()),
            ("BORG_RELOCATED_REPO_ACCESS_IS_OK", "no".into()),
            ("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "NO".into()),
            ("BORG_DELETE_I_KNOW_WHAT_I_AM_DOING", "NO".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if spec.password.is_none() {
            // An encrypted repository without a passphrase fails as a wrong one, at once.
            settings.push(("BORG_PASSPHRASE".into(), String::new()));
        }
        if let Some(rsh) = &spec.rsh {
            settings.push(("BORG_RSH".into(), rsh.clone()));
        }
        let secrets = load_secrets(spec, base, "BORG_PASSPHRASE")?;
        let repo = spec.repository.clone();
        Ok(Borg {
            tool: Tool {
                name: "borg",
                program: spec.program.clone(),
                settings,
                secrets,
                unset: &[
                    "BORG_REPO",
                    "BORG_PASSCOMMAND",
                    "BORG_PASSPHRASE_FD",
                    "BORG_NEW_PASSPHRASE",
                    "BORG_CONFIG_DIR",
                    "BORG_CACHE_DIR",
                    "BORG_SECURITY_DIR",
                    "BORG_KEYS_DIR",
                ],
                classify: Arc::new(move |op, code, stderr| classify(&repo, op, code, stderr)),
            },
            spec: spec.clone(),
            limit,
            _base: dir,
        })
    }

    fn archive(&self, name: &str) -> String {
        format!("{}::{name}", self.spec.repository)
    }
}

#[derive(Deserialize)]
struct RawList {
    archives: Vec<RawArchive>,
}

#[derive(Deserialize)]
struct RawArchive {
    name: String,
    id: String,
    /// Local time of the host that made it, without an offset (when it started).
    time: String,
}

#[derive(Deserialize)]
struct RawItem {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: Option<u64>,
}

#[async_trait]
impl SnapshotRepo for Borg {
    fn describe(&self) -> String {
        format!("Borg repository {}", self.spec.repository)
    }

    fn tool(&self) -> &'static str {
        "borg"
    }

    async fn version(&self) -> Result<String> {
        let out = self
            .tool
            .run("--version", &["--version"], self.limit)
            .await?;
        checked_version(
            "borg",
            &out.stdout,
            OLDEST,
            "install Borg 1.2 or newer (Debian bookworm ships 1.2.4)",
        )
    }

    async fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let mut args = vec!["--log-json", "list", "--json", "--bypass-lock"];
        if let Some(g) = &self.spec.archive {
            args.push("--glob-archives");
            args.push(g);
        }
        args.push(&self.spec.repository);
        let out = self.tool.run("list", &args, self.limit).await?;
        let raw: RawList = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::infra(format!(
                "`borg list --json` printed what firedrill cannot read: {e}"
            ))
        })?;
        raw.archives
            .into_iter()
            .map(|a| {
                let time = local_time(&a.time).ok_or_else(|| {
                    Error::infra(format!("Borg archive {} has time `{}`", a.name, a.time))
                })?;
                Ok(Snapshot {
                    label: a.name.clone(),
                    id: a.name,
                    time,
                    host: None,
                    tags: Vec::new(),
                    paths: vec![a.id],
                })
            })
            .collect()
    }

    async fn files(&self, snap: &Snapshot) -> Result<Vec<Entry>> {
        let archive = self.archive(&snap.id);
        let out = self
            .tool
            .run(
                "list",
                &[
                    "--log-json",
                    "list",
                    "--json-lines",
                    "--bypass-lock",
                    &archive,
                ],
                self.limit,
            )
            .await?;
        let mut files = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(i) = serde_json::from_str::<RawItem>(line) else {
                continue;
            };
            if i.kind == "-" {
                files.push(Entry {
                    path: i.path,
                    size: i.size.unwrap_or(0),
                });
            }
        }
        Ok(files)
    }

    async fn open(&self, snap: &Snapshot, path: &str) -> Result<Streamed> {
        let archive = self.archive(&snap.id);
        self.tool.stream(
            "extract",
            &[
                "--log-json",
                "extract",
                "--stdout",
                "--bypass-lock",
                &archive,
                path,
            ],
        )
    }
}

/// Borg's archive times: the making host's local time, `2026-11-30T18:01:26.000000`.
fn local_time(s: &str) -> Option<jiff::Timestamp> {
    let dt: jiff::civil::DateTime = s.parse().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::system())
        .ok()
        .map(|z| z.timestamp())
}

#[derive(Deserialize)]
struct LogLine {
    #[serde(default)]
    msgid: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// What a failed Borg command means, by the message ids `--log-json` gives its errors.
fn classify(repo: &str, op: &str, code: Option<i32>, stderr: &str) -> Error {
    let lines: Vec<LogLine> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let ids: Vec<&str> = lines.iter().filter_map(|l| l.msgid.as_deref()).collect();
    let has = |id: &str| ids.contains(&id);
    let fault = if has("PassphraseWrong") || has("PasscommandFailure") {
        RepoFault::WrongPassword
    } else if has("Repository.DoesNotExist")
        || has("Repository.InvalidRepository")
        || has("Repository.InvalidRepositoryConfig")
        || has("Cache.RepositoryAccessAborted")
        || has("Cache.EncryptionMethodMismatch")
    {
        RepoFault::NoRepository
    } else if has("Archive.DoesNotExist") {
        RepoFault::NoSnapshot
    } else if has("LockTimeout") || has("LockFailed") {
        RepoFault::Locked
    } else if has("ConnectionClosed")
        || has("ConnectionClosedWithHint")
        || has("RemoteRepository.RPCServerOutdated")
    {
        RepoFault::Unreachable
    } else {
        RepoFault::Failed
    };
    // What Borg said, its messages rather than its tracebacks.
    let said: Vec<String> = lines
        .iter()
        .filter_map(|l| l.message.as_deref())
        .filter(|m| !m.starts_with("Traceback"))
        .map(|m| m.lines().next().unwrap_or_default().to_string())
        .collect();
    let said = if said.is_empty() {
        tail(stderr, 4)
    } else {
        let cause = stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<LogLine>(l).ok())
            .filter_map(|l| l.message)
            .filter(|m| m.starts_with("Traceback"))
            .flat_map(|m| {
                m.lines()
                    .rev()
                    .find(|l| l.contains("Error:") || l.contains("Exception:"))
                    .map(str::to_string)
            })
            .next();
        let mut v = said;
        v.extend(cause);
        v.join("\n")
    };
    fault.error("borg", repo, op, code, &said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn borg_failures_by_message_id() {
        let e = classify(
            "/b",
            "list",
            Some(2),
            r#"{"type": "log_message", "message": "passphrase supplied in BORG_PASSPHRASE, by BORG_PASSCOMMAND or via BORG_PASSPHRASE_FD is incorrect.", "levelname": "ERROR", "msgid": "PassphraseWrong"}"#,
        );
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.find::<RepoFault>(), Some(&RepoFault::WrongPassword));
        let e = classify(
            "/b",
            "extract",
            Some(2),
            r#"{"type": "log_message", "message": "Archive nope does not exist", "msgid": "Archive.DoesNotExist"}"#,
        );
        assert_eq!(e.find::<RepoFault>(), Some(&RepoFault::NoSnapshot));
        let e = classify("/b", "extract", Some(2), "{\"type\": \"log_message\", \"message\": \"Local Exception\", \"msgid\": \"Exception\"}\n{\"type\": \"log_message\", \"message\": \"Traceback (most recent call last):\\n  File x\\nFileNotFoundError: [Errno 2] No such file or directory: '/b/data/0/2'\\n\\nPlatform: Linux\"}");
        assert_eq!(e.find::<RepoFault>(), Some(&RepoFault::Failed));
        let tail = e.stderr_tail.unwrap();
        assert!(
            tail.contains("Local Exception") && tail.contains("FileNotFoundError"),
            "{tail}"
        );
    }

    #[test]
    fn archive_times_are_local() {
        assert!(local_time("2026-11-30T18:01:26.000000").is_some());
        assert!(local_time("yesterday").is_none());
    }
}
