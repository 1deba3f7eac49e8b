//! Where a dump tool runs: on this host, or — where this host's is older than the server
//! or missing — from the image of the server's own version, in a container that reaches
//! the source as this host does ([`crate::sandbox::ToolRequest`]). Either way the tool's
//! stdout is read on the pipeline's thread, its secrets never reach argv, and its end is
//! one future.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Engine;
use crate::error::{Error, Result};
use crate::sandbox::{SandboxBackend, ToolRequest};
use crate::secret::Secret;

/// Where the dump tool runs, as `source.dump_in` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DumpIn {
    /// This host's tool when it is of the version the dump restores into, else the one
    /// in that version's sandbox image.
    #[default]
    Auto,
    /// Always this host's (an older one fails, naming what to install).
    Host,
    /// Always a container of the server's version's image.
    Container,
}

impl DumpIn {
    pub fn parse(s: &str) -> Option<DumpIn> {
        Some(match s {
            "auto" => DumpIn::Auto,
            "host" => DumpIn::Host,
            "container" => DumpIn::Container,
            _ => return None,
        })
    }
}

/// What a drill lets its source use to run a dump tool in a container.
#[derive(Clone)]
pub struct ToolSite {
    pub dump_in: DumpIn,
    pub drill: String,
    /// `sandbox.image` when it has `{major}`: the tool's image follows the same scheme.
    pub image_template: Option<String>,
    pub backend: Option<Arc<dyn SandboxBackend>>,
    /// How long a tool's container may live before the reaper removes it.
    pub lifetime: std::time::Duration,
    /// `sandbox.major`: the version the dump restores into when not the server's.
    pub target: Option<String>,
}

impl Default for ToolSite {
    fn default() -> Self {
        ToolSite {
            dump_in: DumpIn::Host,
            drill: String::new(),
            image_template: None,
            backend: None,
            lifetime: std::time::Duration::from_secs(6 * 3600),
            target: None,
        }
    }
}

impl ToolSite {
    /// The image that carries the tool of `engine` at `series`.
    pub fn image(&self, engine: Engine, series: &str) -> String {
        self.image_template
            .as_ref()
            .filter(|t| t.contains("{major}"))
            .map(|t| {
                t.replace("{major}", series)
                    .replace("{engine}", engine.as_str())
            })
            .unwrap_or_else(|| engine.default_image(series))
    }
}

impl ToolSite {
    /// The series the dump restores into: `sandbox.major`, else the server's own. Its
    /// tool makes the dump: an older restore tool may not read a newer dump tool's output
    /// (pg_restore refuses newer archive versions; an older MariaDB client stops at a
    /// newer dump's first line), and a newer server is best fed by its own dump tool.
    pub fn target(&self, server: &str) -> String {
        self.target.clone().unwrap_or_else(|| server.to_string())
    }

    /// Whether the dump runs in a container, given whether this host's tool reads the
    /// server (`host_fits`).
    pub fn in_container(&self, host_fits: bool) -> bool {
        match self.dump_in {
            DumpIn::Auto => !host_fits,
            DumpIn::Host => false,
            DumpIn::Container => true,
        }
    }

    /// The container place for `engine` at `series`, its image checked present.
    pub async fn container(&self, engine: Engine, series: &str, why: &str) -> Result<Place> {
        let backend = self.backend.clone().ok_or_else(|| {
            Error::config(format!(
                "{why}, and this drill has no sandbox backend to run one in a container"
            ))
        })?;
        let image = self.image(engine, series);
        backend
            .check_image(&image, &engine.build_hint(series))
            .await
            .map_err(|e| e.context(why.to_string()))?;
        Ok(Place::Container {
            backend,
            image,
            drill: self.drill.clone(),
            lifetime: self.lifetime,
        })
    }
}

/// Where one dump runs.
#[derive(Clone)]
pub enum Place {
    /// The tool at this path on this host.
    Host(PathBuf),
    /// The tool named on the PATH of `image`, in a container.
    Container {
        backend: Arc<dyn SandboxBackend>,
        image: String,
        drill: String,
        lifetime: std::time::Duration,
    },
}

impl Place {
    /// `in container firedrill-sandbox-postgres:17`, for the report; `None` on the host.
    pub fn describe(&self) -> Option<String> {
        match self {
            Place::Host(_) => None,
            Place::Container { image, .. } => Some(format!("in a container of {image}")),
        }
    }
}

/// One invocation of a dump tool.
pub struct ToolCall {
    /// `pg_dump`, `mariadb-dump`: the program's name in a container, and for messages.
    pub name: String,
    pub args: Vec<String>,
    /// Never secrets.
    pub env: Vec<(String, OsString)>,
    /// Variables of firedrill's own environment the tool must not inherit (host only).
    pub env_remove: Vec<&'static str>,
    /// A secret the tool reads from this environment variable.
    pub secret_env: Option<(&'static str, Secret)>,
    /// Written to the tool's stdin, then closed (an option file).
    pub stdin: Vec<u8>,
    /// Files the tool reads (mounted into a container).
    pub files: Vec<PathBuf>,
}

impl ToolCall {
    /// `NAME --version`, nothing else.
    pub fn version(name: &str) -> ToolCall {
        ToolCall {
            name: name.into(),
            args: vec!["--version".into()],
            env: Vec::new(),
            env_remove: Vec::new(),
            secret_env: None,
            stdin: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// A running tool: its stdout, read blocking on the pipeline's thread, and its end.
pub struct Spawned {
    pub output: Box<dyn Read + Send>,
    /// `Ok(None)` when the tool exited 0, `Ok(Some(status))` otherwise, with stderr.
    pub exit: BoxFuture<'static, Result<(Option<String>, String)>>,
}

/// Starts `call` at `place`.
pub async fn spawn(call: ToolCall, place: &Place) -> Result<Spawned> {
    match place {
        Place::Host(program) => {
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(&call.args);
            for v in &call.env_remove {
                cmd.env_remove(v);
            }
            cmd.envs(call.env.iter().map(|(k, v)| (k, v)));
            if let Some((var, secret)) = &call.secret_env {
                // The environment, not argv: `ps` shows argv to every user.
                cmd.env(var, secret.expose());
            }
            cmd.stdin(if call.stdin.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
            let mut child = cmd.spawn().map_err(|e| {
                Error::infra(format!("cannot start {}: {e}", program.display())).retryable(false)
            })?;
            if !call.stdin.is_empty() {
                let mut stdin = child.stdin.take().expect("stdin is piped");
                stdin.write_all(&call.stdin).await.map_err(|e| {
                    Error::infra(format!(
                        "cannot hand the option file to {}: {e}",
                        program.display()
                    ))
                })?;
                drop(stdin);
            }
            let stdout = super::dump_output(child.stdout.take().expect("stdout is piped"))?;
            let mut stderr = child.stderr.take().expect("stderr is piped");
            let program = program.display().to_string();
            let exit = async move {
                let mut err = Vec::new();
                let (status, _) = tokio::join!(child.wait(), stderr.read_to_end(&mut err));
                let status =
                    status.map_err(|e| Error::infra(format!("waiting for {program}: {e}")))?;
                let err = String::from_utf8_lossy(&err).into_owned();
                Ok(((!status.success()).then(|| status.to_string()), err))
            }
            .boxed();
            Ok(Spawned {
                output: Box::new(stdout),
                exit,
            })
        }
        Place::Container {
            backend,
            image,
            drill,
            lifetime,
        } => {
            let expires_at = jiff::Timestamp::now()
                .checked_add(
                    jiff::SignedDuration::try_from(*lifetime)
                        .unwrap_or(jiff::SignedDuration::from_hours(6)),
                )
                .unwrap_or(jiff::Timestamp::MAX);
            let req = ToolRequest {
                drill: drill.clone(),
                image: image.clone(),
                argv: std::iter::once(call.name.clone())
                    .chain(call.args.iter().cloned())
                    .collect(),
                env: call
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.to_string_lossy()))
                    .collect(),
                secret_env: call
                    .secret_env
                    .as_ref()
                    .map(|(k, s)| (k.to_string(), s.clone())),
                stdin: call.stdin.clone(),
                files: call.files.clone(),
                expires_at,
            };
            let p = backend.run_tool(&req).await?;
            let name = p.name.clone();
            let exit = async move {
                match p.exit.await {
                    Ok(Ok((code, stderr))) => {
                        Ok(((code != 0).then(|| format!("exit status: {code}")), stderr))
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(Error::infra(format!("lost track of container {name}"))),
                }
            }
            .boxed();
            Ok(Spawned {
                output: Box::new(ChannelReader {
                    rx: p.stdout,
                    chunk: bytes::Bytes::new(),
                }),
                exit,
            })
        }
    }
}

/// Runs `call` at `place` to its end and returns its stdout (small outputs: `--version`).
pub async fn output(call: ToolCall, place: &Place) -> Result<(Option<String>, String, String)> {
    let name = call.name.clone();
    let spawned = spawn(call, place).await?;
    let mut output = spawned.output;
    let read = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        output
            .by_ref()
            .take(1 << 20)
            .read_to_end(&mut out)
            .map(|_| out)
    });
    let (read, exit) = tokio::join!(read, spawned.exit);
    let out = read
        .map_err(|e| Error::internal(format!("reading {name}: {e}")))?
        .map_err(|e| Error::infra(format!("reading {name}: {e}")))?;
    let (status, stderr) = exit?;
    Ok((status, String::from_utf8_lossy(&out).into_owned(), stderr))
}

/// A container's stdout as a blocking reader (for the pipeline's thread).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(c) => self.chunk = c,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}
