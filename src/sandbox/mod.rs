//! Throwaway sandboxes to restore into.
//!
//! One trait, [`SandboxBackend`], hosts every backend: Docker today, Kubernetes Jobs
//! later. A sandbox is addressed by its run id (every object it owns carries that label),
//! so teardown works even when provisioning stopped half-way, and a reaper can remove
//! leftovers by label alone. Everything inside a sandbox happens through
//! [`SandboxBackend::exec`]: the sandbox has no network.

mod docker;

use std::collections::BTreeMap;
use std::pin::Pin;

use async_trait::async_trait;
use serde::Serialize;
use tokio::io::AsyncRead;

use crate::config::SandboxSpec;
use crate::error::Result;

pub use docker::DockerBackend;

/// Labels every object of a sandbox carries.
pub const LABEL_MANAGED: &str = "firedrill.managed";
pub const LABEL_RUN: &str = "firedrill.run";
pub const LABEL_DRILL: &str = "firedrill.drill";
/// Unix time after which the sandbox is a leftover the reaper may remove.
pub const LABEL_EXPIRES: &str = "firedrill.expires";
/// Set on sandboxes kept for a person (`run --keep`); the reaper leaves them alone.
pub const LABEL_KEEP: &str = "firedrill.keep";

/// Where the sandbox's database keeps its data, and where artifacts are staged: each a
/// volume of the sandbox's own.
pub const DATA_DIR: &str = "/var/lib/firedrill/data";
pub const STAGING_DIR: &str = "/var/lib/firedrill/staging";

/// Where a backup repository of the host is mounted, read-only, in a sandbox.
pub const REPO_MOUNT: &str = "/var/lib/firedrill/repo";

/// What to provision.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxRequest {
    pub run_id: String,
    pub drill: String,
    pub image: String,
    /// Container command (the image's entrypoint gets these arguments).
    pub command: Vec<String>,
    pub memory_bytes: u64,
    pub cpus: f64,
    pub expires_at: jiff::Timestamp,
    pub keep: bool,
    /// A backup repository of this host, mounted read-only at
    /// [`REPO_MOUNT`] (a physical drill's posix repository).
    pub repository: Option<std::path::PathBuf>,
}

impl SandboxRequest {
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert(LABEL_MANAGED.into(), "true".into());
        l.insert(LABEL_RUN.into(), self.run_id.clone());
        l.insert(LABEL_DRILL.into(), self.drill.clone());
        l.insert(
            LABEL_EXPIRES.into(),
            self.expires_at.as_second().to_string(),
        );
        if self.keep {
            l.insert(LABEL_KEEP.into(), "true".into());
        }
        l
    }
}

/// A provisioned sandbox.
#[derive(Debug, Clone, Serialize)]
pub struct Sandbox {
    pub run_id: String,
    /// Backend-specific handle (the container name for Docker).
    pub name: String,
    pub image_id: String,
}

/// Takes a command's output as it comes.
pub trait OutputSink: Send {
    fn take(&mut self, chunk: &[u8]);
}

/// Input for a command in the sandbox.
pub type ExecStdin = Pin<Box<dyn AsyncRead + Send>>;

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    /// The end of stderr (bounded).
    pub stderr: String,
}

/// The state of a sandbox's main process.
#[derive(Debug, Clone, Default)]
pub struct SandboxState {
    pub running: bool,
    pub oom_killed: bool,
    pub exit_code: Option<i64>,
    /// The end of the server's log, for errors.
    pub log_tail: String,
}

/// A dump tool run in a container of its own, from the image of the server's version,
/// when this host's tool is older than the server: it reaches the source as this host
/// does (the host's network), on a read-only root with no capabilities, and is removed
/// when it ends. This is the dump side, not a sandbox: no backup data is written to disk.
#[derive(Debug, Clone)]
pub struct ToolRequest {
    pub drill: String,
    pub image: String,
    /// The tool (a name on the image's PATH) and its arguments; no secrets.
    pub argv: Vec<String>,
    /// `NAME=value`; no secrets.
    pub env: Vec<String>,
    /// A secret the tool reads from an environment variable (PGPASSWORD): handed over on
    /// stdin's first line and exported by a shell in the container, never in the
    /// container's configuration.
    pub secret_env: Option<(String, crate::secret::Secret)>,
    /// Written to the tool's stdin (after the secret's line), then closed.
    pub stdin: Vec<u8>,
    /// Files of this host the tool reads (TLS certificates and keys), mounted read-only
    /// at the same paths.
    pub files: Vec<std::path::PathBuf>,
    /// After this the reaper may remove the container.
    pub expires_at: jiff::Timestamp,
}

/// A tool running in a container: its stdout as it comes, and its end.
pub struct ToolProcess {
    /// Closed when the tool's stdout ends. Dropping it stops the tool.
    pub stdout: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    /// The exit code and the end of stderr, once the container is gone.
    pub exit: tokio::sync::oneshot::Receiver<Result<(i64, String)>>,
    /// The container, for messages.
    pub name: String,
}

#[async_trait]
pub trait SandboxBackend: Send + Sync + 'static {
    fn describe(&self) -> String;

    /// Checks the image is present locally and returns its id. The error names the
    /// command that builds it.
    async fn check_image(&self, image: &str, build_hint: &str) -> Result<String>;

    /// Creates and starts a sandbox, with no network, resource limits and labels.
    /// Does not wait for the database in it.
    async fn provision(&self, req: &SandboxRequest) -> Result<Sandbox>;

    /// Runs a command in the sandbox, feeding `stdin` when given.
    async fn exec(
        &self,
        sandbox: &Sandbox,
        cmd: &[String],
        stdin: Option<ExecStdin>,
    ) -> Result<ExecOutput>;

    /// Runs a command in the sandbox and hands its stdout to `sink` as it comes, for
    /// output too large to hold; the returned `stdout` is empty.
    async fn exec_stdout_to(
        &self,
        sandbox: &Sandbox,
        cmd: &[String],
        sink: &mut dyn OutputSink,
    ) -> Result<ExecOutput> {
        let mut out = self.exec(sandbox, cmd, None).await?;
        let stdout = std::mem::take(&mut out.stdout);
        sink.take(stdout.as_bytes());
        Ok(out)
    }

    async fn state(&self, sandbox: &Sandbox) -> Result<SandboxState>;

    /// Whether the backend answers, and what it is (`Docker 28.1.1 at unix:///…`).
    async fn ping(&self) -> Result<String> {
        Ok(self.describe())
    }

    /// Removes every object labelled with this run: containers, volumes. Idempotent.
    async fn destroy(&self, run_id: &str) -> Result<()>;

    /// Removes sandboxes whose expiry passed (or every unkept one when `all`), returning
    /// the run ids removed.
    async fn reap(&self, now: jiff::Timestamp, all: bool) -> Result<Vec<String>>;

    /// Starts a dump tool in a container of its own ([`ToolRequest`]).
    async fn run_tool(&self, req: &ToolRequest) -> Result<ToolProcess> {
        Err(crate::error::Error::config(format!(
            "{} cannot run {} in a container",
            self.describe(),
            req.argv.first().map(String::as_str).unwrap_or("a dump tool")
        ))
        .with_hint("install the dump tool of the server's version on this host and set source.dump_in = \"host\""))
    }
}

/// Builds the backend a drill names (connects lazily).
pub fn build_backend(spec: &SandboxSpec) -> Result<std::sync::Arc<dyn SandboxBackend>> {
    match spec {
        SandboxSpec::Docker(d) => Ok(std::sync::Arc::new(DockerBackend::connect(
            d.docker_host.as_deref(),
        )?)),
    }
}
