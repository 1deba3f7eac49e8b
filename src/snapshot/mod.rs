//! Dumps that teams already keep in a general backup tool's repository (restic, Borg):
//! found, chosen and streamed out with the tool itself, read-only (no lock, never
//! `forget` or `prune`), so that a verify-only drill restores them in a sandbox exactly
//! like firedrill's own artifacts.
//!
//! One trait, [`SnapshotRepo`], in front of the tools; [`build_repo`] makes the drill's.

mod borg;
pub mod header;
mod restic;
pub mod tool;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::config::{RepoTool, SnapshotSpec};
use crate::error::{Error, Result};
use crate::pick::{NoPoint, Point};

pub use tool::Streamed;

/// One snapshot (restic) or archive (Borg).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// restic's full snapshot id; Borg's archive name.
    pub id: String,
    /// How people call it: restic's short id, Borg's archive name.
    pub label: String,
    pub time: jiff::Timestamp,
    pub host: Option<String>,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
}

impl Point for Snapshot {
    fn id(&self) -> &str {
        &self.id
    }
    fn taken_at(&self) -> jiff::Timestamp {
        self.time
    }
}

/// A file in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub path: String,
    pub size: u64,
}

/// A repository, read-only.
#[async_trait]
pub trait SnapshotRepo: Send + Sync + 'static {
    /// "restic repository s3:http://…", for messages.
    fn describe(&self) -> String;
    /// The tool's name.
    fn tool(&self) -> &'static str;
    /// The tool's version; an error if it is too old to drill with.
    async fn version(&self) -> Result<String>;
    /// The snapshots the drill's filters (tag, host, path; archive glob) let through.
    async fn snapshots(&self) -> Result<Vec<Snapshot>>;
    /// The files in a snapshot.
    async fn files(&self, snap: &Snapshot) -> Result<Vec<Entry>>;
    /// Streams one file of a snapshot out of the repository.
    async fn open(&self, snap: &Snapshot, path: &str) -> Result<Streamed>;
}

/// Builds the drill's repository reader, its secrets read; `limit` bounds each listing.
pub fn build_repo(
    spec: &SnapshotSpec,
    base_dir: &Path,
    limit: Duration,
) -> Result<Arc<dyn SnapshotRepo>> {
    Ok(match spec.tool {
        RepoTool::Restic => Arc::new(restic::Restic::new(spec, base_dir, limit)?),
        RepoTool::Borg => Arc::new(borg::Borg::new(spec, base_dir, limit)?),
    })
}

/// What went wrong with a repository, kept as the [`Error`]'s source so that callers
/// decide by kind, not by words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RepoFault {
    #[error("wrong password")]
    WrongPassword,
    #[error("no repository")]
    NoRepository,
    #[error("no such snapshot")]
    NoSnapshot,
    #[error("no such file in the snapshot")]
    NoFile,
    #[error("locked")]
    Locked,
    #[error("unreachable")]
    Unreachable,
    /// The tool failed reading data the snapshot still names: the repository is damaged.
    #[error("damaged")]
    Damaged,
    /// The snapshot went away while it was read (the owner's `forget`/`prune`).
    #[error("snapshot removed meanwhile")]
    Vanished,
    #[error("failed")]
    Failed,
}

impl RepoFault {
    /// The error a tool's failure of this kind is.
    pub fn error(self, tool: &str, repo: &str, op: &str, code: Option<i32>, said: &str) -> Error {
        let exit = code
            .map(|c| format!("exit {c}"))
            .unwrap_or_else(|| "killed".into());
        let e = match self {
            RepoFault::WrongPassword => Error::config(format!(
                "{tool} cannot open {repo}: the password is wrong"
            ))
            .with_hint("source.password must be the repository's password (restic) or passphrase (Borg); the drill did not run"),
            RepoFault::NoRepository => Error::config(format!("there is no {tool} repository at {repo}"))
                .with_hint("check source.repository, and source.env for its backend's credentials"),
            RepoFault::NoSnapshot => Error::backup(format!("{tool} {op}: the snapshot is not in {repo}"))
                .with_hint("list them with `firedrill snapshots <drill>` and check source.snapshot and its filters"),
            RepoFault::NoFile => Error::backup(format!("{tool} {op}: the file is not in the snapshot"))
                .with_hint("check source.file against `firedrill snapshots <drill>`"),
            RepoFault::Locked => Error::infra(format!("{tool} {op}: {repo} is locked exclusively"))
                .with_hint("the repository's owner is pruning or checking it; the drill is tried again")
                .retryable(true),
            RepoFault::Unreachable => Error::infra(format!("{tool} {op}: cannot reach {repo}"))
                .with_hint("check the network path to the repository (ssh, source.rsh)")
                .retryable(true),
            // `op` names what could not be read ("snapshot 3f2a9c1b").
            RepoFault::Damaged => Error::backup(format!(
                "{tool} could not read {op} out of {repo}: the repository is damaged"
            ))
            .with_hint(format!("data the snapshot needs is missing or corrupt; run `{tool} check --read-data` on the repository, and drill an earlier snapshot")),
            RepoFault::Vanished => Error::infra(format!(
                "the snapshot was removed from {repo} while the drill read it (the repository's own forget/prune ran meanwhile)"
            ))
            .with_hint("not a damaged backup: the drill chooses again")
            .retryable(true),
            RepoFault::Failed => Error::infra(format!("{tool} {op} failed ({exit})"))
                .with_hint(format!("read {tool}'s last lines below"))
                .retryable(true),
        };
        let e = if said.is_empty() {
            e
        } else {
            e.with_stderr(said)
        };
        e.with_source(self)
    }
}

/// The snapshot a run drills, the file in it, and what that file is.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The tool, and its repository as [`SnapshotRepo::describe`] says it.
    pub tool: &'static str,
    pub repository: String,
    pub snapshot: Snapshot,
    pub file: Entry,
    pub tool_version: String,
    pub header: header::DumpHeader,
    /// How it was chosen, for the report ("latest", "random of 5 within 30d", "named").
    pub how: String,
    /// The dump's SHA-256, once it has been read whole.
    pub sha256: Option<String>,
}

impl Selected {
    /// The drilled dump as the catalog and reports name it: `restic:<short id>:<path>`.
    pub fn key(&self) -> String {
        format!("{}:{}:{}", self.tool, self.snapshot.label, self.file.path)
    }

    /// Where the dump is, for the report.
    pub fn location(&self) -> String {
        format!(
            "{} / snapshot {} / {}",
            self.repository, self.snapshot.label, self.file.path
        )
    }

    /// What made the dump and how it was chosen, for the report's `dump_tool`.
    pub fn dump_tool(&self) -> String {
        format!(
            "{} {}: snapshot {} of {}, chosen {}; {}, {}",
            self.tool,
            self.tool_version,
            self.snapshot.label,
            self.snapshot.time,
            self.how,
            self.header.format,
            match self.header.compression {
                "none" => "not compressed",
                c => c,
            }
        )
    }
}

/// Chooses the snapshot and the file the drill restores, and reads the dump's header:
/// `chosen` (an id from `--artifact` or `--random`) overrides the drill's `snapshot`.
pub async fn select(
    repo: &dyn SnapshotRepo,
    spec: &SnapshotSpec,
    chosen: Option<&str>,
) -> Result<Selected> {
    let tool_version = repo.version().await?;
    let snaps = repo.snapshots().await?;
    let pick = match chosen {
        Some(id) => crate::pick::Pick::Id(id.to_string()),
        None => spec.pick.clone(),
    };
    let prefixes = spec.tool == RepoTool::Restic;
    let snapshot = crate::pick::choose(
        &snaps,
        &pick,
        jiff::Timestamp::now(),
        prefixes,
        rand::random(),
    )
    .map_err(|why| no_snapshot(repo, spec, why))?
    .clone();
    let how = match &pick {
        crate::pick::Pick::Latest => format!("the latest of {}", snaps.len()),
        crate::pick::Pick::Random { within: Some(w) } => format!(
            "at random among those of the last {}",
            humantime::format_duration(*w)
        ),
        crate::pick::Pick::Random { within: None } => format!("at random of {}", snaps.len()),
        crate::pick::Pick::Id(_) => "by its id".to_string(),
    };
    // A snapshot listed whose contents cannot be listed is as damaged as one whose data
    // cannot be read.
    let files = match repo.files(&snapshot).await {
        Ok(f) => f,
        Err(e) => return Err(judge_read_failure(repo, &snapshot, e).await),
    };
    let file = match (&spec.file, files.as_slice()) {
        (Some(want), _) => {
            let norm = |p: &str| p.trim_start_matches('/').to_string();
            files
                .iter()
                .find(|f| norm(&f.path) == norm(want))
                .cloned()
                .ok_or_else(|| {
                    Error::backup(format!(
                        "snapshot {} of {} has no file {want}",
                        snapshot.label,
                        repo.describe()
                    ))
                    .with_hint(format!("its files: {}", list(&files)))
                    .with_source(RepoFault::NoFile)
                })?
        }
        (None, [one]) => one.clone(),
        (None, []) => {
            return Err(Error::backup(format!(
                "snapshot {} of {} holds no file",
                snapshot.label,
                repo.describe()
            ))
            .with_hint("a dump saved with `restic backup --stdin` or `borg create … -` is one file")
            .with_source(RepoFault::NoFile))
        }
        (None, many) => {
            return Err(Error::config(format!(
                "snapshot {} of {} holds {} files; which one is the dump?",
                snapshot.label,
                repo.describe(),
                many.len()
            ))
            .with_hint(format!("name it in source.file; its files: {}", list(many))))
        }
    };
    let header = match peek(repo, &snapshot, &file).await {
        Ok(h) => h,
        Err(e) => return Err(judge_read_failure(repo, &snapshot, e).await),
    };
    Ok(Selected {
        tool: repo.tool(),
        repository: repo.describe(),
        snapshot,
        file,
        tool_version,
        header,
        how,
        sha256: None,
    })
}

fn list(files: &[Entry]) -> String {
    let mut v: Vec<String> = files.iter().take(10).map(|f| f.path.clone()).collect();
    if files.len() > 10 {
        v.push(format!("… {} more", files.len() - 10));
    }
    v.join(", ")
}

fn no_snapshot(repo: &dyn SnapshotRepo, spec: &SnapshotSpec, why: NoPoint) -> Error {
    let mut filters: Vec<String> = Vec::new();
    for (k, v) in [
        ("tag", &spec.tag),
        ("host", &spec.host),
        ("path", &spec.path),
        ("archive", &spec.archive),
    ] {
        if let Some(v) = v {
            filters.push(format!("{k} = {v:?}"));
        }
    }
    let of = if filters.is_empty() {
        String::new()
    } else {
        format!(" (with {})", filters.join(", "))
    };
    let e = match &why {
        NoPoint::Empty => Error::backup(format!("{} holds no snapshot{of} to drill", repo.describe()))
            .with_hint("the backup job that should put dumps there has not, or the filters are wrong"),
        NoPoint::NoneWithin { .. } => Error::backup(format!(
            "no snapshot{of} of {} to pick from: {why}",
            repo.describe()
        ))
        .with_hint("the backup job has stopped, or source.within is too short"),
        _ => Error::backup(format!("no snapshot{of} of {} fits: {why}", repo.describe()))
            .with_hint("list them with `firedrill snapshots <drill>`; a snapshot forgotten by the repository's retention is gone for good"),
    };
    e.with_source(RepoFault::NoSnapshot)
}

/// Reads the first bytes of the dump (then stops the tool) to learn what it is.
async fn peek(
    repo: &dyn SnapshotRepo,
    snap: &Snapshot,
    file: &Entry,
) -> Result<header::DumpHeader> {
    use tokio::io::AsyncReadExt;
    let mut s = repo.open(snap, &file.path).await?;
    let want = header::PEEK_BYTES.min(file.size as usize);
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match s.reader.read(&mut buf[got..]).await {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => {
                return Err(s.failed().unwrap_or_else(|| {
                    Error::infra(format!("reading the dump out of {}: {e}", repo.describe()))
                }))
            }
        }
    }
    buf.truncate(got);
    Ok(header::identify(&buf))
}

/// What a failed read of the dump means: the snapshot still there is a damaged
/// repository (a broken backup); a snapshot gone is the owner's forget/prune at work
/// (try again, choosing anew); and a failure to tell stays the tool's own.
pub async fn judge_read_failure(repo: &dyn SnapshotRepo, snap: &Snapshot, failure: Error) -> Error {
    if matches!(
        failure.find::<RepoFault>(),
        Some(RepoFault::Failed | RepoFault::NoSnapshot | RepoFault::NoFile) | None
    ) {
        match repo.snapshots().await {
            Ok(now) if !now.iter().any(|s| s.id == snap.id) => {
                let said = failure.stderr_tail.clone().unwrap_or_default();
                return RepoFault::Vanished.error(
                    repo.tool(),
                    &repo.describe(),
                    "read",
                    None,
                    &said,
                );
            }
            Ok(_) if matches!(failure.find::<RepoFault>(), Some(RepoFault::Failed)) => {
                let said = failure.stderr_tail.clone().unwrap_or_default();
                return RepoFault::Damaged.error(
                    repo.tool(),
                    &repo.describe(),
                    &format!("snapshot {}", snap.label),
                    None,
                    &said,
                );
            }
            _ => {}
        }
    }
    failure
}
