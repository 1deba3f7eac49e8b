//! The one public error type of the engine.
//!
//! Every failure that leaves the engine says what kind of failure it is (the exit code and
//! the pager depend on it), what happened, what the user can do about it, and whether
//! trying again can help. Module-level errors are converted into this type at the module
//! boundary, where the context is known.

use std::fmt;

use serde::Serialize;

/// What went wrong, in the terms that decide the exit code and who gets paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The drill file or the command line is wrong. Nothing was touched.
    Config,
    /// Something the drill needs is missing or unreachable: Docker, the source database,
    /// storage, a sandbox image. The backup itself may be fine.
    Infrastructure,
    /// The backup is broken: the dump produced nothing usable, the artifact does not match
    /// its manifest, it does not decrypt or does not restore.
    Backup,
    /// The backup restored but the data is not what was dumped, or an assertion failed.
    Verification,
    /// A stage ran longer than its timeout.
    Timeout,
    /// The run was cancelled (Ctrl-C, SIGTERM, shutdown).
    Cancelled,
    /// A bug in firedrill.
    Internal,
}

impl ErrorKind {
    /// Whether this kind means the backup itself failed (as opposed to the drill not
    /// being able to run). Drives exit code 1 and critical pages.
    pub fn is_backup_failure(self) -> bool {
        matches!(self, ErrorKind::Backup | ErrorKind::Verification)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Config => "configuration error",
            ErrorKind::Infrastructure => "infrastructure error",
            ErrorKind::Backup => "backup broken",
            ErrorKind::Verification => "verification failed",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// The engine's error: a kind, a message, optional context lines, a hint and whether a
/// retry can help.
#[derive(Debug, Clone, Serialize)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// Where it happened, outermost first ("stage restore", "container fd-…").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// What the user can do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Whether running the same step again can reasonably succeed.
    pub retryable: bool,
    /// The last lines a failing tool printed on stderr, secrets removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let retryable = matches!(kind, ErrorKind::Infrastructure | ErrorKind::Timeout);
        Error {
            kind,
            message: message.into(),
            context: Vec::new(),
            hint: None,
            retryable,
            stderr_tail: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }
    pub fn infra(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Infrastructure, message)
    }
    pub fn backup(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backup, message)
    }
    pub fn verification(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Verification, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "the run was cancelled")
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context.insert(0, context.into());
        self
    }
    pub fn with_stderr(mut self, stderr: impl Into<String>) -> Self {
        let s: String = stderr.into();
        if !s.trim().is_empty() {
            self.stderr_tail = Some(s);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.context {
            write!(f, "{c}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Adds context to a result, like `anyhow::Context`, but keeps the kind and retry flag.
pub trait ResultExt<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.context(context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_context_message_and_hint() {
        let e = Error::infra("cannot reach Docker at unix:///var/run/docker.sock")
            .with_hint("start dockerd, or set DOCKER_HOST")
            .context("stage provision");
        assert_eq!(
            e.to_string(),
            "stage provision: cannot reach Docker at unix:///var/run/docker.sock\n  hint: start dockerd, or set DOCKER_HOST"
        );
        assert!(e.retryable);
        assert!(!Error::backup("x").retryable);
    }
}
