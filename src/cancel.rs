//! Stopping a run early, and why.
//!
//! A run can be stopped by an operator (Ctrl-C, the API's cancel) or by the process
//! shutting down (SIGTERM, a daemon's shutdown). Both are deliberate and page nobody, but
//! the report and the catalog tell them apart, and both differ from a stage that stopped
//! because another stage failed (that run pages) and from a run lost with its process.
//! A [`Stop`] is a cancellation token that remembers the reason it was first fired with;
//! a child (one run of a daemon) fires with its parent (the daemon's shutdown) and reports
//! the parent's reason when it has none of its own.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Why a run was stopped before it ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// An operator asked for it.
    Operator,
    /// The process is shutting down.
    Shutdown,
    /// The process could not renew the run's lease in the catalog (cut off from it, or
    /// the run was taken over): it stops the run before another process takes it over.
    Fenced,
}

/// A cancellation token with a reason.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
    parent: Option<Box<Stop>>,
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that fires with this one, or on its own.
    pub fn child(&self) -> Stop {
        Stop {
            token: self.token.child_token(),
            reason: Arc::new(OnceLock::new()),
            parent: Some(Box::new(self.clone())),
        }
    }

    /// Fires, remembering `reason` unless a reason was already given.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when the token fires.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// Why it fired: its own reason, else its parent's; `Shutdown` for a token that fired
    /// with no reason given (a dropped guard).
    pub fn reason(&self) -> Option<StopReason> {
        if !self.is_stopped() {
            return None;
        }
        self.reason
            .get()
            .copied()
            .or_else(|| self.parent.as_ref().and_then(|p| p.reason()))
            .or(Some(StopReason::Shutdown))
    }

    /// The plain token, for APIs that take one.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_reports_its_own_reason_or_its_parents() {
        let daemon = Stop::new();
        let run = daemon.child();
        assert_eq!(run.reason(), None);
        run.stop(StopReason::Operator);
        assert_eq!(run.reason(), Some(StopReason::Operator));
        assert!(!daemon.is_stopped());

        let other = daemon.child();
        daemon.stop(StopReason::Shutdown);
        assert!(other.is_stopped());
        assert_eq!(other.reason(), Some(StopReason::Shutdown));
        // The first reason sticks.
        run.stop(StopReason::Shutdown);
        assert_eq!(run.reason(), Some(StopReason::Operator));
    }
}
