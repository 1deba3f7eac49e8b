//! Running a repository tool (restic, Borg): its settings and secrets through its
//! environment (never its command line), stdin closed, killed when no longer wanted, and
//! its failure told by a classifier of the tool's own that knows its exit codes and
//! messages.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// How much of a tool's stderr is kept (its end): enough for its last messages.
const STDERR_KEEP: usize = 64 * 1024;

/// Turns a failed invocation (`exit` code, if it exited; its stderr) into the error that
/// says what went wrong, for the operation named.
pub type Classifier = Arc<dyn Fn(&str, Option<i32>, &str) -> Error + Send + Sync>;

/// One tool with its environment.
pub struct Tool {
    pub name: &'static str,
    pub program: PathBuf,
    /// Plain settings for the tool's environment (the repository, switches).
    pub settings: Vec<(String, String)>,
    /// Secrets for its environment: the password and the backend's credentials
    /// ([`load_secrets`]).
    pub secrets: Vec<(String, Secret)>,
    /// Removed from the environment firedrill inherited (settings that would compete).
    pub unset: &'static [&'static str],
    pub classify: Classifier,
}

/// The secrets a drill hands its tool: the repository's password as `password_var`, and
/// each of `source.env`, read from env or files now.
pub fn load_secrets(
    spec: &crate::config::SnapshotSpec,
    base: &std::path::Path,
    password_var: &str,
) -> Result<Vec<(String, Secret)>> {
    let mut out = Vec::new();
    if let Some(p) = &spec.password {
        out.push((
            password_var.to_string(),
            p.load(base).map_err(|e| e.context("source.password"))?,
        ));
    }
    for (k, v) in &spec.env {
        let s = v
            .load(base)
            .map_err(|e| e.context(format!("source.env.{k}")))?;
        out.push((k.clone(), s));
    }
    Ok(out)
}

/// What a finished invocation printed.
pub struct Output {
    pub stdout: Vec<u8>,
}

impl Tool {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.program);
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for v in self.unset {
            c.env_remove(v);
        }
        for (k, v) in &self.settings {
            c.env(k, v);
        }
        for (k, v) in &self.secrets {
            c.env(k, v.expose());
        }
        c
    }

    fn spawn(&self, args: &[&str]) -> Result<tokio::process::Child> {
        self.command(args).spawn().map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "install {} (Debian: apt-get install {}) or give its path in source.tool",
                    self.name,
                    if self.name == "borg" {
                        "borgbackup"
                    } else {
                        self.name
                    }
                )
            } else {
                format!(
                    "check that {} can be run by firedrill's user",
                    self.program.display()
                )
            };
            Error::config(format!("cannot run {}: {e}", self.program.display())).with_hint(hint)
        })
    }

    /// Runs the tool to its end within `limit`; its failure classified.
    pub async fn run(&self, op: &str, args: &[&str], limit: Duration) -> Result<Output> {
        let child = self.spawn(args)?;
        let out = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| {
                Error::infra(format!(
                    "{} {op} did not finish within {}",
                    self.name,
                    humantime::format_duration(limit)
                ))
                .with_hint(
                    "the repository or its backend is slow or hung; try the same command by hand",
                )
            })?
            .map_err(|e| Error::infra(format!("{} {op}: {e}", self.name)))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err((self.classify)(op, out.status.code(), &stderr));
        }
        Ok(Output { stdout: out.stdout })
    }

    /// Starts the tool and streams its stdout. The reader ends with an error if the tool
    /// failed (its classified failure is also left in [`Streamed::failure`]); dropping
    /// the reader kills the tool.
    pub fn stream(&self, op: &str, args: &[&str]) -> Result<Streamed> {
        let mut child = self.spawn(args)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::internal("no stdout"))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| Error::internal("no stderr"))?;
        let errs = tokio::spawn(async move {
            let mut kept: Vec<u8> = Vec::new();
            let mut buf = vec![0u8; 8192];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > 2 * STDERR_KEEP {
                            kept.drain(..kept.len() - STDERR_KEEP);
                        }
                    }
                }
            }
            String::from_utf8_lossy(&kept).into_owned()
        });
        let classify = self.classify.clone();
        let name = self.name;
        let op = op.to_string();
        let done = async move {
            let status = child
                .wait()
                .await
                .map_err(|e| Error::infra(format!("{name} {op}: {e}")))?;
            let stderr = errs.await.unwrap_or_default();
            if status.success() {
                Ok(())
            } else {
                Err(classify(&op, status.code(), &stderr))
            }
        };
        let failure = Arc::new(Mutex::new(None));
        Ok(Streamed {
            reader: Box::pin(ToolReader {
                out: stdout,
                done: Box::pin(done),
                failure: failure.clone(),
                ended: false,
            }),
            failure,
        })
    }
}

/// A tool's stdout, and how the tool ended once its output did.
pub struct Streamed {
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    pub failure: Arc<Mutex<Option<Error>>>,
}

impl Streamed {
    /// The tool's failure, if it failed.
    pub fn failed(&self) -> Option<Error> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
}

type Done = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

struct ToolReader {
    out: tokio::process::ChildStdout,
    done: Done,
    failure: Arc<Mutex<Option<Error>>>,
    ended: bool,
}

impl AsyncRead for ToolReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.ended {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.out).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                // The end of the output: it is the end of the dump only if the tool
                // succeeded.
                match self.done.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Ok(())) => {
                        self.ended = true;
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) => {
                        self.ended = true;
                        let msg = e.message.clone();
                        if let Ok(mut f) = self.failure.lock() {
                            *f = Some(e);
                        }
                        Poll::Ready(Err(io::Error::other(msg)))
                    }
                }
            }
            other => other,
        }
    }
}

/// The last `n` lines of a tool's stderr that say something.
pub fn tail(stderr: &str, n: usize) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The version a tool printed (`restic 0.14.0 compiled with …`, `borg 1.2.4`): its second
/// word, refused below `oldest` with `hint`.
pub fn checked_version(
    tool: &str,
    printed: &[u8],
    oldest: (u32, u32, u32),
    hint: &str,
) -> Result<String> {
    let text = String::from_utf8_lossy(printed);
    let v = text
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| {
            Error::config(format!(
                "`{tool}` printed `{}` for its version",
                text.trim()
            ))
        })?
        .to_string();
    match version_tuple(&v) {
        Some(t) if t >= oldest => Ok(v),
        _ => Err(Error::config(format!("{tool} {v} is too old to drill from")).with_hint(hint)),
    }
}

/// A version `a.b.c` as numbers, for comparisons.
pub fn version_tuple(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let a = it.next()?.parse().ok()?;
    let b = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let c = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    Some((a, b, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_the_tools_print_them() {
        let v = checked_version(
            "restic",
            b"restic 0.14.0 compiled with go1.19.8 on linux/amd64\n",
            (0, 12, 0),
            "",
        );
        assert_eq!(v.unwrap(), "0.14.0");
        assert!(checked_version("restic", b"restic 0.9.6 compiled", (0, 12, 0), "").is_err());
        assert_eq!(
            checked_version("borg", b"borg 1.2.4\n", (1, 2, 0), "").unwrap(),
            "1.2.4"
        );
        assert!(checked_version("borg", b"", (1, 2, 0), "").is_err());
        assert_eq!(version_tuple("1.2"), Some((1, 2, 0)));
    }
}
