//! Restoring an artifact in a sandbox, engine by engine: the identity goes to the
//! sandbox's tmpfs through exec's stdin (never to a disk, never on a command line), the
//! still-encrypted artifact is staged on the sandbox's own volume and hashed on its way,
//! and nothing restores until the hash matches the manifest. Everything happens through
//! [`SandboxBackend::exec`]; the host never holds a decrypted byte.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use super::{server_log_tail, Engine, SANDBOX_IDENTITY, STAGED_ARTIFACT};
use crate::error::{Error, Result};
use crate::human::human_bytes;
use crate::sandbox::{ExecStdin, Sandbox, SandboxBackend, SandboxState};
use crate::secret::Secret;

/// What to restore: the artifact's bytes as storage streams them, and what its manifest
/// promises about them.
pub struct Artifact {
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    /// Its key in storage, for messages.
    pub key: String,
    /// Its size in storage (already checked against the manifest).
    pub size: u64,
    /// The manifest's SHA-256 of the stored bytes; none for a file of another tool.
    pub sha256: Option<String>,
    /// The manifest's exact size of the dump once decrypted and decompressed.
    pub plain_bytes: u64,
}

/// How the restore runs once the artifact is staged.
pub enum RestorePlan<'a> {
    /// A firedrill artifact: the engine's own restore of `databases`, `jobs` in parallel.
    Own { databases: &'a [String], jobs: u32 },
    /// A file another tool made: detect encryption, compression and format, restore into
    /// `database`, stop a stream that decompresses past `max_plain_bytes`.
    Detect {
        database: &'a str,
        max_plain_bytes: u64,
    },
}

impl Engine {
    /// Stages and restores `artifact` in the sandbox; `on_bytes` hears how many bytes
    /// have been staged, a few times a second. Returns the bytes staged and their SHA-256.
    pub async fn restore_artifact(
        self,
        backend: &dyn SandboxBackend,
        sandbox: &Sandbox,
        identity: &Secret,
        artifact: Artifact,
        plan: RestorePlan<'_>,
        on_bytes: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(u64, String)> {
        hand_identity(backend, sandbox, identity).await?;
        let result = self
            .stage_and_restore(backend, sandbox, artifact, plan, on_bytes)
            .await;
        // The identity leaves the tmpfs as soon as it is not needed (the sandbox goes
        // soon anyway; a kept one must not hold it).
        let _ = backend
            .exec(
                sandbox,
                &sh(&format!("rm -f {SANDBOX_IDENTITY}"), &[]),
                None,
            )
            .await;
        result
    }

    async fn stage_and_restore(
        self,
        backend: &dyn SandboxBackend,
        sandbox: &Sandbox,
        artifact: Artifact,
        plan: RestorePlan<'_>,
        on_bytes: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(u64, String)> {
        let size = artifact.size;
        let (hashing, state) = HashingReader::new(artifact.reader);
        let stage_cmd = match &plan {
            RestorePlan::Own { .. } => self.stage_cmd(size, artifact.plain_bytes),
            RestorePlan::Detect { .. } => None,
        }
        .unwrap_or_else(|| {
            sh(
                &format!("head -c \"$1\" > {STAGED_ARTIFACT} && stat -c %s {STAGED_ARTIFACT}"),
                &[&size.to_string()],
            )
        });
        let staged = state.clone();
        let out = crate::stage::ticking(
            backend.exec(sandbox, &stage_cmd, Some(Box::pin(hashing) as ExecStdin)),
            || {
                if let Ok(st) = staged.lock() {
                    on_bytes(st.bytes());
                }
            },
        )
        .await?;
        drop(staged);
        if out.exit_code != 0 {
            return Err(Error::infra(format!(
                "cannot stage the artifact in the sandbox: {}",
                super::last_lines(&out.stderr, 3)
            ))
            .with_hint("check the sandbox's disk space (the Docker data root)"));
        }
        let (sha, read) = Arc::try_unwrap(state)
            .map_err(|_| Error::internal("hash state still shared"))?
            .into_inner()
            .map_err(|_| Error::internal("hash state poisoned"))?
            .finish();
        let landed: u64 = out.stdout.trim().parse().unwrap_or(0);
        if read != size || landed != size {
            return Err(Error::infra(format!(
                "staging the artifact moved {read} bytes and the sandbox holds {landed}, expected {size}"
            )));
        }
        if let Some(want) = &artifact.sha256 {
            if &sha != want {
                return Err(Error::backup(format!(
                    "artifact hash mismatch: SHA-256 of {} is {sha}, its manifest says {want}",
                    artifact.key
                ))
                .with_hint("the artifact was altered or corrupted in storage after upload; this backup cannot be trusted, drill an earlier one"));
            }
        }
        let cmd = match plan {
            RestorePlan::Own { databases, jobs } => {
                self.restore_cmd(databases, artifact.plain_bytes, jobs)
            }
            RestorePlan::Detect {
                database,
                max_plain_bytes,
            } => self.restore_auto_cmd(database, max_plain_bytes),
        };
        let out = backend.exec(sandbox, &cmd, None).await?;
        if out.exit_code != 0 {
            return Err(self.restore_error(&out.stderr));
        }
        Ok((size, sha))
    }
}

/// The identity goes to the sandbox's tmpfs through exec's stdin.
async fn hand_identity(
    backend: &dyn SandboxBackend,
    sandbox: &Sandbox,
    identity: &Secret,
) -> Result<()> {
    let id_bytes = format!("{}\n", identity.expose()).into_bytes();
    let id_len = id_bytes.len().to_string();
    let out = backend
        .exec(
            sandbox,
            &sh(
                &format!("umask 077 && head -c \"$1\" > {SANDBOX_IDENTITY}"),
                &[&id_len],
            ),
            Some(Box::pin(std::io::Cursor::new(id_bytes))),
        )
        .await?;
    if out.exit_code != 0 {
        return Err(Error::infra(format!(
            "cannot hand the identity to the sandbox: {}",
            out.stderr.trim()
        )));
    }
    Ok(())
}

/// After a command failed in the sandbox: the sandbox's own failure (out of memory, its
/// database gone, the backend unreachable), which explains the command's failure better
/// than its output and is no verdict on the backup; `None` when the sandbox is fine.
pub async fn sandbox_fault(
    backend: &dyn SandboxBackend,
    sandbox: &Sandbox,
    memory_bytes: u64,
) -> Option<Error> {
    match backend.state(sandbox).await {
        Ok(st) if st.oom_killed || !st.running => Some(sandbox_died(&st, sandbox, memory_bytes)),
        Ok(_) => None,
        Err(e) => Some(e.context(format!(
            "a command failed in sandbox {} and the sandbox cannot be inspected",
            sandbox.name
        ))),
    }
}

fn sandbox_died(st: &SandboxState, sandbox: &Sandbox, memory_bytes: u64) -> Error {
    if st.oom_killed {
        Error::infra(format!(
            "sandbox {} was killed by its memory limit ({})",
            sandbox.name,
            human_bytes(memory_bytes)
        ))
        .with_hint("raise sandbox.memory in the drill file")
        .retryable(false)
    } else {
        Error::infra(format!(
            "sandbox {} stopped: its database exited (exit {})",
            sandbox.name,
            st.exit_code.unwrap_or(-1)
        ))
        .with_stderr(server_log_tail(&st.log_tail, 20))
    }
}

/// `sh -c SCRIPT sh ARGS…`: arguments stay out of the script text.
pub fn sh(script: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec![
        "sh".to_string(),
        "-c".to_string(),
        script.to_string(),
        "sh".to_string(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// Running SHA-256 and byte count of what passed through a [`HashingReader`].
#[derive(Default)]
pub struct HashState {
    hasher: Sha256,
    bytes: u64,
}

impl HashState {
    /// Bytes hashed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.bytes)
    }
}

/// An `AsyncRead` that hashes what is read through it.
pub struct HashingReader<R> {
    inner: R,
    state: Arc<Mutex<HashState>>,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R) -> (Self, Arc<Mutex<HashState>>) {
        let state = Arc::new(Mutex::new(HashState::default()));
        (
            HashingReader {
                inner,
                state: state.clone(),
            },
            state,
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let new = &buf.filled()[before..];
            let mut st = self.state.lock().expect("hash state lock");
            st.hasher.update(new);
            st.bytes += new.len() as u64;
        }
        r
    }
}
