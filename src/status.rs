//! The states of runs, stages, pages, outbox items and artifacts, as types.
//!
//! Each has one spelling, used alike in reports, the catalog, the API, the dashboard and
//! the metrics (`as_str`, serde, [`std::str::FromStr`]); nothing compares strings. The
//! paging rule lives here too ([`RunStatus::page`]), because it is a property of a run's
//! status and nothing else: the CLI, the daemon and the alert rules all read it from here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;

/// `as_str`, `Display`, `FromStr` and the list of every value, for an enum of unit variants
/// whose serde names are the given spellings.
macro_rules! spelled {
    ($t:ident { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            pub const ALL: [$t; [$($s),+].len()] = [$($t::$v),+];
            pub fn as_str(self) -> &'static str {
                match self { $($t::$v => $s),+ }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($t::$v),)+
                    other => Err(format!(
                        "`{other}` is not a {}: one of {}",
                        stringify!($t),
                        [$($s),+].join(", ")
                    )),
                }
            }
        }
    };
}

/// The named stages of a drill, in order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Dump,
    Encrypt,
    Upload,
    Provision,
    Restore,
    Verify,
    Teardown,
}

spelled!(Stage {
    Dump => "dump",
    Encrypt => "encrypt",
    Upload => "upload",
    Provision => "provision",
    Restore => "restore",
    Verify => "verify",
    Teardown => "teardown",
});

/// How one stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    TimedOut,
    /// An operator cancelled the run while this stage ran.
    Cancelled,
    /// The process shut down while this stage ran.
    Interrupted,
    /// Stopped because another stage running beside it failed (the pipeline's siblings).
    /// Reports written before these were told apart say `aborted`.
    #[serde(alias = "aborted")]
    Stopped,
    /// Not run: an earlier stage failed, or the run drills something already stored.
    Skipped,
}

spelled!(Outcome {
    Passed => "passed",
    Failed => "failed",
    TimedOut => "timed_out",
    Cancelled => "cancelled",
    Interrupted => "interrupted",
    Stopped => "stopped",
    Skipped => "skipped",
});

impl Outcome {
    /// How a stage that ended with an error of `kind` is recorded.
    pub fn of_error(kind: ErrorKind) -> Outcome {
        match kind {
            ErrorKind::Timeout => Outcome::TimedOut,
            ErrorKind::Cancelled => Outcome::Cancelled,
            ErrorKind::Interrupted | ErrorKind::Lost => Outcome::Interrupted,
            _ => Outcome::Failed,
        }
    }

    /// The words a person reads ("timed out").
    pub fn label(self) -> &'static str {
        match self {
            Outcome::TimedOut => "timed out",
            other => other.as_str(),
        }
    }
}

/// The overall result of a run; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The backup restored and verified. Exit 0.
    Passed,
    /// The backup is broken or does not match the source. Exit 1.
    Failed,
    /// The drill could not run to a verdict on the backup. Exit 2.
    Error,
}

spelled!(Verdict {
    Passed => "passed",
    Failed => "failed",
    Error => "error",
});

impl Verdict {
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Passed => 0,
            Verdict::Failed => 1,
            Verdict::Error => 2,
        }
    }

    /// The verdict a run gets when it stopped on this error.
    pub fn from_error(kind: ErrorKind) -> Verdict {
        if kind.is_backup_failure() {
            Verdict::Failed
        } else {
            Verdict::Error
        }
    }
}

/// A run's status, as the catalog stores it and the API, dashboard and metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a concurrency permit (the daemon's runs only).
    Queued,
    Running,
    /// The backup restored and verified.
    Passed,
    /// The backup is broken, or the restored data is not what was dumped.
    Failed,
    /// The drill could not run to a verdict: config, infrastructure, a timeout.
    Error,
    /// An operator stopped it.
    Cancelled,
    /// Its process shut down cleanly while it ran.
    Interrupted,
    /// Its process died while it ran; found by the next start-up or by another process.
    Lost,
}

spelled!(RunStatus {
    Queued => "queued",
    Running => "running",
    Passed => "passed",
    Failed => "failed",
    Error => "error",
    Cancelled => "cancelled",
    Interrupted => "interrupted",
    Lost => "lost",
});

impl RunStatus {
    /// The status of a finished run that stopped on an error of `failure` (none: it
    /// passed).
    pub fn finished(failure: Option<ErrorKind>) -> RunStatus {
        match failure {
            None => RunStatus::Passed,
            Some(ErrorKind::Cancelled) => RunStatus::Cancelled,
            Some(ErrorKind::Interrupted) => RunStatus::Interrupted,
            Some(ErrorKind::Lost) => RunStatus::Lost,
            Some(k) if k.is_backup_failure() => RunStatus::Failed,
            Some(_) => RunStatus::Error,
        }
    }

    /// Whether the run is over.
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// **The paging rule.** Every finished run that did not pass pages, at the class its
    /// failure deserves: a broken backup is critical; a drill that could not run (its
    /// infrastructure steps already retried) or a run lost with its process is a warning.
    /// Only an operator's cancel and a clean shutdown are silent, and a run in progress
    /// has nothing to say yet.
    pub fn page(self) -> Option<Severity> {
        match self {
            RunStatus::Failed => Some(Severity::Critical),
            RunStatus::Error | RunStatus::Lost => Some(Severity::Warning),
            RunStatus::Passed
            | RunStatus::Cancelled
            | RunStatus::Interrupted
            | RunStatus::Queued
            | RunStatus::Running => None,
        }
    }

    /// Whether this run shows the backup good again (and so resolves an open incident).
    pub fn resolves(self) -> bool {
        self == RunStatus::Passed
    }
}

/// How bad it is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The drill could not run (Docker, storage, the source unreachable), or was lost.
    Warning,
    /// The backup is broken.
    Critical,
}

spelled!(Severity {
    Warning => "warning",
    Critical => "critical",
});

/// What a page announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    Trigger,
    Resolve,
    Test,
}

spelled!(PageKind {
    Trigger => "trigger",
    Resolve => "resolve",
    Test => "test",
});

/// Where a notification is in the durable outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// A receiver accepted it.
    Sent,
    /// Given up on after `notify.expire_after`, or its channel is gone.
    Expired,
}

spelled!(OutboxState {
    Pending => "pending",
    Sent => "sent",
    Expired => "expired",
});

/// Whether an artifact has been proven restorable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verified {
    /// Never drilled.
    Never,
    /// A drill restored and verified it.
    Yes,
    /// A drill found it broken.
    No,
}

spelled!(Verified {
    Never => "never",
    Yes => "yes",
    No => "no",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paging_rule_over_every_status() {
        use RunStatus::*;
        let table = [
            (Queued, None),
            (Running, None),
            (Passed, None),
            (Failed, Some(Severity::Critical)),
            (Error, Some(Severity::Warning)),
            (Cancelled, None),
            (Interrupted, None),
            (Lost, Some(Severity::Warning)),
        ];
        assert_eq!(table.len(), RunStatus::ALL.len(), "every status is decided");
        for (status, page) in table {
            assert_eq!(status.page(), page, "{status}");
        }
    }

    #[test]
    fn a_finished_status_follows_the_failure_kind() {
        assert_eq!(RunStatus::finished(None), RunStatus::Passed);
        for kind in [ErrorKind::Backup, ErrorKind::Verification] {
            assert_eq!(RunStatus::finished(Some(kind)), RunStatus::Failed);
        }
        for kind in [
            ErrorKind::Config,
            ErrorKind::Infrastructure,
            ErrorKind::Timeout,
            ErrorKind::Internal,
        ] {
            assert_eq!(RunStatus::finished(Some(kind)), RunStatus::Error);
        }
        assert_eq!(
            RunStatus::finished(Some(ErrorKind::Cancelled)),
            RunStatus::Cancelled
        );
        assert_eq!(
            RunStatus::finished(Some(ErrorKind::Interrupted)),
            RunStatus::Interrupted
        );
        assert_eq!(RunStatus::finished(Some(ErrorKind::Lost)), RunStatus::Lost);
    }

    #[test]
    fn spellings_round_trip_through_text_and_serde() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for s in OutboxState::ALL {
            assert_eq!(s.as_str().parse::<OutboxState>().unwrap(), s);
        }
        assert!("aborted".parse::<RunStatus>().is_err());
        let old: Outcome = serde_json::from_value(serde_json::json!("aborted")).unwrap();
        assert_eq!(old, Outcome::Stopped);
    }
}
