//! The spool: runs a catalog could not record, kept as files until it can. Each process
//! writes its own files (named by run id, so nothing doubles when several are replayed),
//! first in a directory beside the catalog, and when that fails too (the same full disk)
//! in the temporary directory, under a name derived from the catalog's path so that only
//! a process using the same catalog replays them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Unrecorded;
use crate::error::{Error, Result};

/// Where runs kept for the catalog at `catalog` go, in the order they are tried.
pub(super) fn dirs(catalog: &Path) -> Vec<PathBuf> {
    let name = catalog
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "catalog".into());
    let beside = catalog
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
        .join(format!("{name}.spool"));
    let absolute = std::path::absolute(catalog).unwrap_or_else(|_| catalog.to_path_buf());
    let tag = hex::encode(&Sha256::digest(absolute.to_string_lossy().as_bytes())[..8]);
    let elsewhere = std::env::temp_dir().join(format!("firedrill-spool-{tag}"));
    vec![beside, elsewhere]
}

/// Writes `u` into the first spool directory that takes it whole.
pub(super) fn put(catalog: &Path, u: &Unrecorded) -> Result<PathBuf> {
    let body = serde_json::to_vec(u).map_err(|e| Error::internal(e.to_string()))?;
    let file = format!("{}.json", safe(&u.report.run_id));
    let mut problems = Vec::new();
    for dir in dirs(catalog) {
        match write_whole(&dir, &file, &body) {
            Ok(p) => return Ok(p),
            Err(e) => problems.push(format!("{}: {e}", dir.display())),
        }
    }
    Err(Error::infra(format!(
        "cannot keep the unrecorded run {} anywhere: {}",
        u.report.run_id,
        problems.join("; ")
    ))
    .with_hint("free space beside the catalog or in the temporary directory"))
}

/// A temporary file, synced, then renamed: a reader never sees half a file, and a file
/// that could not be written whole is removed.
fn write_whole(dir: &Path, file: &str, body: &[u8]) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".{file}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(body)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let to = dir.join(file);
    std::fs::rename(&tmp, &to).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(to)
}

/// Every run kept for `catalog`, oldest first, with its file. Unreadable files are
/// skipped with a warning (and left for a person to look at).
pub(super) fn entries(catalog: &Path) -> Vec<(PathBuf, Unrecorded)> {
    let mut out = Vec::new();
    for dir in dirs(catalog) {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Unrecorded>(&b).map_err(|e| e.to_string()))
            {
                Ok(u) => out.push((path, u)),
                Err(e) => tracing::warn!("spooled run {} unreadable: {e}", path.display()),
            }
        }
    }
    out.sort_by_key(|(_, u)| u.report.finished_at);
    out
}

/// A run id as a file name: anything but `[A-Za-z0-9_.-]` becomes `_`.
fn safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}
