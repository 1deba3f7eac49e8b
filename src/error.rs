//! The one public error type of the engine.
//!
//! Every failure that leaves the engine says what kind of failure it is (the exit code and
//! the pager depend on it), what happened, what the user can do about it, and whether
//! trying again can help. Module-level errors are converted into this type at the module
//! boundary, where the context is known, and keep the error they came from as their
//! [`source`](std::error::Error::source). A caller that knows better what a failure
//! means (a missing object is a broken backup when a manifest vanished, and a usage error
//! when the user typed a wrong run id) reclassifies it with [`Error::overwrite_kind`]
//! after looking at the typed cause ([`Error::find`]); nothing is classified by reading
//! message text, which may hold data.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What went wrong, in the terms that decide the exit code and who gets paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// An operator stopped the run (Ctrl-C, `POST /api/v1/runs/{id}/cancel`).
    Cancelled,
    /// The process running the drill shut down cleanly (SIGTERM, a daemon's shutdown).
    Interrupted,
    /// The process running the drill died (crash, kill, power loss); found afterwards.
    Lost,
    /// A bug in firedrill.
    Internal,
}

impl ErrorKind {
    /// Whether this kind means the backup itself failed (as opposed to the drill not
    /// being able to run). Drives exit code 1 and critical pages.
    pub fn is_backup_failure(self) -> bool {
        matches!(self, ErrorKind::Backup | ErrorKind::Verification)
    }

    /// Whether someone chose to stop the run (an operator, or a clean shutdown): such a
    /// run says nothing about the backup and pages nobody.
    pub fn is_deliberate_stop(self) -> bool {
        matches!(self, ErrorKind::Cancelled | ErrorKind::Interrupted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Infrastructure => "infrastructure",
            ErrorKind::Backup => "backup",
            ErrorKind::Verification => "verification",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Lost => "lost",
            ErrorKind::Internal => "internal",
        }
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
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Lost => "lost",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// The cause an [`Error`] keeps: shared, so that errors stay cheap to clone.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The engine's error: a kind, a message, optional context lines, a hint, whether a
/// retry can help, and the error it came from.
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
    /// The last lines a failing tool printed on stderr, secrets and data removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// The typed error this one came from, for callers that reclassify
    /// ([`Error::find`]); its text is already in `message` where it helps a person.
    #[serde(skip)]
    source: Option<Cause>,
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
            source: None,
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
    /// The error of a run stopped for `reason`.
    pub fn stopped(reason: crate::cancel::StopReason) -> Self {
        match reason {
            crate::cancel::StopReason::Operator => {
                Self::new(ErrorKind::Cancelled, "the run was cancelled by an operator")
            }
            crate::cancel::StopReason::Shutdown => Self::new(
                ErrorKind::Interrupted,
                "the run was interrupted: firedrill shut down while it ran",
            )
            .with_hint("nothing is wrong with the backup; the next run drills it"),
            crate::cancel::StopReason::Fenced => Self::new(
                ErrorKind::Interrupted,
                "the run was stopped: firedrill could not renew its lease in the catalog, so it stopped the run before another process takes it over",
            )
            .with_hint("check the connection to the catalog; a daemon that can reach it runs the drill again"),
        }
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
    /// Keeps `cause` as this error's source.
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(cause));
        self
    }

    /// The caller knows what this failure means better than where it was raised: the
    /// kind changes, and whether a retry can help follows the new kind unless `retryable`
    /// says otherwise.
    pub fn overwrite_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self.retryable = match kind {
            ErrorKind::Infrastructure | ErrorKind::Timeout => self.retryable,
            _ => false,
        };
        self
    }

    /// The first error of type `T` in this error's chain of causes.
    pub fn find<T: std::error::Error + 'static>(&self) -> Option<&T> {
        let mut next: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|s| s as _);
        while let Some(e) = next {
            if let Some(t) = e.downcast_ref::<T>() {
                return Some(t);
            }
            if let Some(inner) = e.downcast_ref::<Error>() {
                if let Some(t) = inner.find::<T>() {
                    return Some(t);
                }
            }
            next = e.source();
        }
        None
    }

    /// Context, message and hint as one line each, without the tool output.
    pub fn headline(&self) -> String {
        let mut s = String::new();
        for c in &self.context {
            s.push_str(c);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        s
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.headline())?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

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

    #[derive(Debug, thiserror::Error)]
    #[error("gone")]
    struct Gone;

    #[test]
    fn the_caller_reclassifies_by_the_typed_cause() {
        let low = Error::infra("storage: not found").with_source(Gone);
        let wrapped = Error::backup("outer").with_source(low.clone());
        assert!(low.find::<Gone>().is_some());
        assert!(
            wrapped.find::<Gone>().is_some(),
            "found through an inner Error"
        );
        assert!(Error::infra("x").find::<Gone>().is_none());
        let usage = low.overwrite_kind(ErrorKind::Config);
        assert_eq!(usage.kind, ErrorKind::Config);
        assert!(!usage.retryable);
        assert!(std::error::Error::source(&usage).is_some());
    }
}
