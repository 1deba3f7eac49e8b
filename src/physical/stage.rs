//! A repository in a bucket reaches the sandbox as a tar stream: firedrill lists what
//! the restore needs (the info files, the backup set and the sets it references, the
//! WAL from the set's start), reads each file out of the bucket as the repository
//! stores it (`pgbackrest repo-get --raw`: still encrypted) and streams it into `tar -x`
//! in the sandbox, under its staging volume. Nothing is written on this host, and the
//! sandbox's pgBackRest restores from that copy as from a posix repository.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::sandbox::{Sandbox, SandboxBackend};

use super::pgbackrest::{BackupSet, Host, RepoFile};
use super::wal::SegmentName;

/// Where a copied repository lives in the sandbox (its staging volume).
pub const STAGED_REPO: &str = "/var/lib/firedrill/staging/repo";

/// What a restore from a bucket needs copied into the sandbox.
#[derive(Debug, Clone)]
pub struct Staging {
    pub host: Arc<Host>,
    pub files: Vec<RepoFile>,
}

impl Staging {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Lists what restoring `set` (recovering to any target after it) reads: the stanza's
/// info files, the set and the sets it references, and the archive's history files and
/// WAL from the set's first segment on.
pub async fn needed(
    host: Arc<Host>,
    stanza: &str,
    set: &BackupSet,
    archive_id: &str,
    limit: Duration,
) -> Result<Staging> {
    let mut files = Vec::new();
    for dir in [format!("backup/{stanza}"), format!("archive/{stanza}")] {
        files.extend(
            host.files(&dir, false, limit)
                .await?
                .into_iter()
                .filter(|f| f.path.ends_with(".info") || f.path.ends_with(".info.copy")),
        );
    }
    let mut sets = vec![set.label.clone()];
    sets.extend(set.reference.iter().flatten().cloned());
    sets.sort();
    sets.dedup();
    for label in &sets {
        files.extend(
            host.files(&format!("backup/{stanza}/{label}"), true, limit)
                .await?,
        );
    }
    let start = set.archive.start.as_deref().and_then(SegmentName::parse);
    let wal = host
        .files(&format!("archive/{stanza}/{archive_id}"), true, limit)
        .await?;
    files.extend(
        wal.into_iter()
            .filter(|f| wal_needed(&f.path, start.as_ref())),
    );
    Ok(Staging { host, files })
}

/// Whether an archive file is read by a recovery from a set whose WAL starts at
/// `start`: history files always, segments (and their `.backup` labels) from the
/// start's position on, on any timeline.
fn wal_needed(path: &str, start: Option<&SegmentName>) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".history") {
        return true;
    }
    let Some(seg) = name.get(..24).and_then(SegmentName::parse) else {
        return false;
    };
    match start {
        Some(s) => (seg.log, seg.seg) >= (s.log, s.seg),
        None => true,
    }
}

/// Copies the staging's files out of the bucket into `dir` in the sandbox, as a tar
/// stream into `tar -x` run as the server's user. Returns the bytes copied.
pub async fn copy_in(
    backend: &dyn SandboxBackend,
    sb: &Sandbox,
    staging: &Staging,
    dir: &str,
) -> Result<u64> {
    let (reader, writer) = tokio::io::duplex(1 << 20);
    let untar = super::cmd::as_server(&[
        "sh",
        "-c",
        &format!("mkdir -p {dir} && exec tar -x -f - -C {dir} --no-same-owner"),
    ]);
    let (out, sent) = tokio::join!(
        backend.exec(sb, &untar, Some(Box::pin(reader))),
        send(&staging.host, &staging.files, writer)
    );
    let out = out?;
    if out.exit_code != 0 {
        let mut e = Error::infra(format!(
            "the repository's files could not be unpacked in the sandbox (tar exited {})",
            out.exit_code
        ))
        .with_stderr(crate::engine::tail(&out.stderr, 15))
        .with_hint("the sandbox's staging volume may be full: give the sandbox's volumes room for the backup set and its WAL");
        if let Err(cause) = sent {
            e = e.context(format!("while copying: {}", cause.message));
        }
        return Err(e);
    }
    sent
}

/// How many `repo-get`s run ahead of the one being copied: each costs a process and a
/// TLS connection, most of its time for the small files a backup set is made of.
const AHEAD: usize = 8;

/// Writes each file, read raw out of the repository, as a tar entry; then the end.
/// The reads run `AHEAD` files ahead, each into its own pipe, and are copied in order.
async fn send(host: &Host, files: &[RepoFile], mut w: tokio::io::DuplexStream) -> Result<u64> {
    let mut total = 0u64;
    let mut started = std::collections::VecDeque::with_capacity(AHEAD);
    let mut next = files.iter();
    loop {
        while started.len() < AHEAD {
            let Some(f) = next.next() else { break };
            started.push_back((f, host.get_raw(&f.path)?));
        }
        let Some((f, mut child)) = started.pop_front() else {
            break;
        };
        w.write_all(&header(&f.path, f.size)?)
            .await
            .map_err(|e| broken(&f.path, e))?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::internal("repo-get without its stdout"))?;
        let copied = tokio::io::copy(&mut (&mut stdout).take(f.size), &mut w)
            .await
            .map_err(|e| broken(&f.path, e))?;
        let mut more = [0u8; 1];
        let extra = stdout.read(&mut more).await.unwrap_or(0);
        let done = child
            .wait_with_output()
            .await
            .map_err(|e| Error::infra(format!("pgbackrest repo-get {}: {e}", f.path)))?;
        if !done.status.success() {
            return Err(super::pgbackrest::classify(
                "repo-get",
                done.status.code(),
                String::from_utf8_lossy(&done.stderr).trim(),
            )
            .context(format!("reading {} out of the bucket", f.path)));
        }
        if copied != f.size || extra != 0 {
            return Err(Error::infra(format!(
                "{} changed while it was copied out of the bucket: listed as {} bytes, read {}",
                f.path,
                f.size,
                if extra != 0 {
                    format!("more than {copied}")
                } else {
                    copied.to_string()
                }
            ))
            .with_hint("pgBackRest expired or rewrote the repository during the drill; run the drill again"));
        }
        let pad = (512 - (f.size % 512) as usize) % 512;
        w.write_all(&[0u8; 512][..pad])
            .await
            .map_err(|e| broken(&f.path, e))?;
        total += f.size;
    }
    w.write_all(&[0u8; 1024])
        .await
        .map_err(|e| broken("the end", e))?;
    w.shutdown().await.map_err(|e| broken("the end", e))?;
    Ok(total)
}

fn broken(what: &str, e: std::io::Error) -> Error {
    Error::infra(format!(
        "the sandbox stopped taking the repository's files at {what}: {e}"
    ))
}

/// A ustar header for a regular file of `size` bytes, mode 0640. Long paths are split
/// into ustar's prefix and name; sizes past ustar's 8 GiB are written base-256, as GNU
/// tar reads them.
fn header(path: &str, size: u64) -> Result<[u8; 512]> {
    let mut h = [0u8; 512];
    let bytes = path.as_bytes();
    let (prefix, name) = if bytes.len() <= 100 {
        (&b""[..], bytes)
    } else {
        let split = (0..bytes.len())
            .rev()
            .find(|&i| bytes[i] == b'/' && i <= 155 && bytes.len() - i - 1 <= 100)
            .ok_or_else(|| Error::internal(format!("{path} is too long a path for a tar entry")))?;
        (&bytes[..split], &bytes[split + 1..])
    };
    h[..name.len()].copy_from_slice(name);
    h[345..345 + prefix.len()].copy_from_slice(prefix);
    h[100..108].copy_from_slice(b"0000640\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    if size < 0o77777777777 {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_from_the_sets_start_and_every_history_is_needed() {
        let start = SegmentName::parse("000000010000000000000004");
        let s = start.as_ref();
        let dir = "archive/main/15-1/0000000100000000";
        assert!(!wal_needed(
            &format!("{dir}/000000010000000000000003-ab.gz"),
            s
        ));
        assert!(wal_needed(
            &format!("{dir}/000000010000000000000004-ab.gz"),
            s
        ));
        assert!(wal_needed(
            &format!("{dir}/000000010000000000000004.00000028.backup"),
            s
        ));
        assert!(wal_needed(
            "archive/main/15-1/0000000200000000/000000020000000000000009-cd.zst",
            s
        ));
        assert!(wal_needed("archive/main/15-1/00000002.history", s));
        assert!(!wal_needed("archive/main/15-1/archive.info", s));
    }

    #[test]
    fn tar_headers_are_read_back_by_tar() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!(
            "backup/main/{}/pg_data/base/16384/2608_fsm.gz",
            "x".repeat(90)
        );
        let mut stream = Vec::new();
        for (path, body) in [
            ("backup/main/backup.info", &b"[backrest]\n"[..]),
            (&long[..], &[7u8; 700][..]),
        ] {
            stream.extend_from_slice(&header(path, body.len() as u64).unwrap());
            stream.extend_from_slice(body);
            stream.resize(stream.len().div_ceil(512) * 512, 0);
        }
        stream.extend_from_slice(&[0u8; 1024]);
        let mut tar = std::process::Command::new("tar")
            .args(["-x", "-f", "-", "-C"])
            .arg(dir.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        tar.stdin.take().unwrap().write_all(&stream).unwrap();
        assert!(tar.wait().unwrap().success());
        assert_eq!(
            std::fs::read(dir.path().join("backup/main/backup.info")).unwrap(),
            b"[backrest]\n"
        );
        assert_eq!(
            std::fs::read(dir.path().join(&long)).unwrap(),
            vec![7u8; 700]
        );
        assert!(header(&"y/".repeat(200), 1).is_err());
    }
}
