//! restic: snapshots listed, a file listed and dumped, always with `--no-lock` (a drill
//! never writes to the repository, not even a lock) and `--no-cache` (nothing of the
//! repository's kept on firedrill's host).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::tool::{checked_version, load_secrets, tail, Streamed, Tool};
use super::{Entry, RepoFault, Snapshot, SnapshotRepo};
use crate::config::SnapshotSpec;
use crate::error::{Error, Result};

/// `dump` of a file saved from stdin and `ls --json` as used here: restic 0.12 and later.
const OLDEST: (u32, u32, u32) = (0, 12, 0);

pub struct Restic {
    tool: Tool,
    spec: SnapshotSpec,
    limit: Duration,
}

impl Restic {
    pub fn new(spec: &SnapshotSpec, base: &Path, limit: Duration) -> Result<Self> {
        let settings = vec![("RESTIC_REPOSITORY".to_string(), spec.repository.clone())];
        let secrets = load_secrets(spec, base, "RESTIC_PASSWORD")?;
        let repo = spec.repository.clone();
        Ok(Restic {
            tool: Tool {
                name: "restic",
                program: spec.program.clone(),
                settings,
                secrets,
                unset: &[
                    "RESTIC_PASSWORD_FILE",
                    "RESTIC_PASSWORD_COMMAND",
                    "RESTIC_REPOSITORY_FILE",
                    "RESTIC_CACHE_DIR",
                ],
                classify: Arc::new(move |op, code, stderr| classify(&repo, op, code, stderr)),
            },
            spec: spec.clone(),
            limit,
        })
    }
}

#[derive(Deserialize)]
struct RawSnapshot {
    id: String,
    short_id: Option<String>,
    time: String,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    paths: Vec<String>,
}

#[derive(Deserialize)]
struct RawNode {
    #[serde(default)]
    struct_type: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    size: Option<u64>,
}

#[async_trait]
impl SnapshotRepo for Restic {
    fn describe(&self) -> String {
        format!("restic repository {}", self.spec.repository)
    }

    fn tool(&self) -> &'static str {
        "restic"
    }

    async fn version(&self) -> Result<String> {
        let out = self.tool.run("version", &["version"], self.limit).await?;
        checked_version(
            "restic",
            &out.stdout,
            OLDEST,
            "install restic 0.12 or newer (Debian bookworm ships 0.14)",
        )
    }

    async fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let mut args = vec!["snapshots", "--json", "--no-lock", "--no-cache"];
        for (flag, v) in [
            ("--tag", &self.spec.tag),
            ("--host", &self.spec.host),
            ("--path", &self.spec.path),
        ] {
            if let Some(v) = v {
                args.push(flag);
                args.push(v);
            }
        }
        let out = self.tool.run("snapshots", &args, self.limit).await?;
        let raw: Vec<RawSnapshot> = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::infra(format!(
                "`restic snapshots --json` printed what firedrill cannot read: {e}"
            ))
        })?;
        raw.into_iter()
            .map(|s| {
                let time: jiff::Timestamp = s.time.parse().map_err(|e| {
                    Error::infra(format!(
                        "restic snapshot {} has time `{}`: {e}",
                        s.id, s.time
                    ))
                })?;
                Ok(Snapshot {
                    label: s.short_id.unwrap_or_else(|| s.id.chars().take(8).collect()),
                    id: s.id,
                    time,
                    host: s.hostname,
                    tags: s.tags.unwrap_or_default(),
                    paths: s.paths,
                })
            })
            .collect()
    }

    async fn files(&self, snap: &Snapshot) -> Result<Vec<Entry>> {
        let out = self
            .tool
            .run(
                "ls",
                &["ls", "--json", "--no-lock", "--no-cache", &snap.id],
                self.limit,
            )
            .await?;
        let mut files = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(n) = serde_json::from_str::<RawNode>(line) else {
                continue;
            };
            if n.struct_type == "node" && n.kind == "file" {
                files.push(Entry {
                    path: n.path,
                    size: n.size.unwrap_or(0),
                });
            }
        }
        Ok(files)
    }

    async fn open(&self, snap: &Snapshot, path: &str) -> Result<Streamed> {
        self.tool
            .stream("dump", &["dump", "--no-lock", "--no-cache", &snap.id, path])
    }
}

/// What a failed restic command means. restic 0.17 and later say it by exit code (10: no
/// repository, 12: wrong password); older ones (Debian bookworm's 0.14) only in words,
/// which are matched as restic prints them.
fn classify(repo: &str, op: &str, code: Option<i32>, stderr: &str) -> Error {
    let said = tail(stderr, 4);
    let fault = if code == Some(12) || stderr.contains("wrong password or no key found") {
        RepoFault::WrongPassword
    } else if code == Some(10)
        || stderr.contains("Is there a repository at the following location?")
        || stderr.contains("unable to open config file")
    {
        RepoFault::NoRepository
    } else if stderr.contains("no matching ID found") || stderr.contains("no snapshot found") {
        RepoFault::NoSnapshot
    } else if stderr.contains("not found in snapshot") {
        RepoFault::NoFile
    } else if code == Some(11) {
        RepoFault::Locked
    } else {
        RepoFault::Failed
    };
    fault.error("restic", repo, op, code, &said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn restic_failures_by_code_and_by_word() {
        let e = classify(
            "/r",
            "snapshots",
            Some(1),
            "Fatal: wrong password or no key found\n",
        );
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.find::<RepoFault>(), Some(&RepoFault::WrongPassword));
        let e = classify("/r", "snapshots", Some(12), "");
        assert_eq!(e.find::<RepoFault>(), Some(&RepoFault::WrongPassword));
        let e = classify("/r", "snapshots", Some(1), "Fatal: unable to open config file: stat /r/config: no such file or directory\nIs there a repository at the following location?\n/r\n");
        assert_eq!(e.find::<RepoFault>(), Some(&RepoFault::NoRepository));
        let e = classify("/r", "dump", Some(1), "Load(<data/079c88b359>, 801189, 0) returned error, retrying after 552ms: open /r/data/07/079c: no such file or directory\ncannot dump file: ReadFull(<data/079c88b359>): open /r/data/07/079c: no such file or directory\n");
        assert_eq!(e.find::<RepoFault>(), Some(&RepoFault::Failed));
        assert!(e.stderr_tail.unwrap().contains("cannot dump file"));
    }
}
