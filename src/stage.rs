//! Running one stage: under its timeout and the run's stop token, with its outcome,
//! duration, attempts and error gathered in one [`StageRun`] for the run's record. The
//! backup pipeline ([`crate::artifact::pipeline`]) and the drill's stage machine
//! ([`crate::drill`]) both run their stages through [`bounded`], and both tell a person
//! what is happening through [`Progress`].

use std::future::Future;
use std::time::Duration;

use crate::cancel::{Stop, StopReason};
use crate::error::{Error, ErrorKind, Result};
use crate::report::StageReport;
use crate::status::{Outcome, Stage};

/// Receives stage events as they happen (the CLI prints them; the daemon streams them).
pub trait Progress: Send + Sync {
    fn stage_started(&self, _stage: Stage) {}
    fn stage_finished(&self, _report: &StageReport) {}
    /// An attempt of `stage` failed on the infrastructure (`error`); the stages in the
    /// sandbox start again with a fresh one after `backoff`.
    fn stage_retrying(&self, _stage: Stage, _attempt: u32, _error: &Error, _backoff: Duration) {}
    /// Bytes a running stage has moved so far (`total` when known), a few times a second:
    /// the dump's plain bytes, the restore's staged bytes.
    fn bytes(&self, _stage: Stage, _done: u64, _total: Option<u64>) {}
}

/// A [`Progress`] that ignores everything.
pub struct Silent;
impl Progress for Silent {}

/// How one stage went, before the run records it.
#[derive(Debug, Clone)]
pub struct StageRun {
    pub stage: Stage,
    pub outcome: Outcome,
    /// The last attempt's duration (the earlier attempts' failures are in `notes`).
    pub duration: Duration,
    pub attempts: u32,
    /// Bytes the stage produced or moved, where that applies.
    pub bytes: Option<u64>,
    /// Why it did not pass; none for a stage stopped or skipped because of another's
    /// failure (that failure is the run's).
    pub error: Option<Error>,
    /// Facts worth showing ("pg_dump 15.14", "image …", "attempt 1 failed: …").
    pub notes: Vec<String>,
}

impl StageRun {
    pub fn passed(stage: Stage, duration: Duration, bytes: Option<u64>) -> Self {
        StageRun {
            stage,
            outcome: Outcome::Passed,
            duration,
            attempts: 1,
            bytes,
            error: None,
            notes: Vec::new(),
        }
    }

    /// A stage that ended on `error`: failed, timed out, cancelled or interrupted, as the
    /// error's kind says.
    pub fn ended(stage: Stage, duration: Duration, error: Error) -> Self {
        StageRun {
            stage,
            outcome: Outcome::of_error(error.kind),
            duration,
            attempts: 1,
            bytes: None,
            error: Some(error),
            notes: Vec::new(),
        }
    }

    /// A stage stopped because a stage beside it failed first.
    pub fn stopped(stage: Stage, duration: Duration, by: Stage) -> Self {
        StageRun {
            stage,
            outcome: Outcome::Stopped,
            duration,
            attempts: 1,
            bytes: None,
            error: None,
            notes: vec![format!("stopped: stage {by} failed first")],
        }
    }

    /// A stage that did not run.
    pub fn skipped(stage: Stage, why: Option<String>) -> Self {
        StageRun {
            stage,
            outcome: Outcome::Skipped,
            duration: Duration::ZERO,
            attempts: 0,
            bytes: None,
            error: None,
            notes: why.into_iter().collect(),
        }
    }

    pub fn with_notes(mut self, notes: impl IntoIterator<Item = String>) -> Self {
        self.notes.extend(notes);
        self
    }
}

/// The error of a stage that ran past its timeout.
pub fn timeout_error(stage: Stage, limit: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "stage {stage} did not finish within its timeout of {}",
            humantime::format_duration(limit)
        ),
    )
    .with_hint(format!(
        "if the stage is just slow, raise timeouts.{stage} in the drill file; if it hangs, look at what it waits for"
    ))
}

/// Runs `fut` until it ends, its deadline passes or `stop` fires; a stop is an error of
/// the stop's reason (cancelled or interrupted), a deadline a timeout.
pub async fn bounded<T>(
    stage: Stage,
    limit: Duration,
    stop: &Stop,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        biased;
        _ = stop.stopped() => Err(stopped(stop)),
        r = tokio::time::timeout(limit, fut) => r.unwrap_or_else(|_| Err(timeout_error(stage, limit))),
    }
}

/// The error of a run whose stop token fired.
pub fn stopped(stop: &Stop) -> Error {
    Error::stopped(stop.reason().unwrap_or(StopReason::Shutdown))
}

/// How often running stages report their bytes.
pub const PROGRESS_TICK: Duration = Duration::from_millis(250);

/// Runs `fut`, calling `tick` every [`PROGRESS_TICK`] until it finishes.
pub async fn ticking<T>(fut: impl Future<Output = T>, tick: impl Fn()) -> T {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            v = &mut fut => return v,
            _ = tokio::time::sleep(PROGRESS_TICK) => tick(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stage_ends_by_itself_by_its_deadline_or_by_a_stop() {
        let stop = Stop::new();
        let ok = bounded(Stage::Dump, Duration::from_secs(1), &stop, async { Ok(7) }).await;
        assert_eq!(ok.unwrap(), 7);

        let hung = bounded(
            Stage::Restore,
            Duration::from_secs(5),
            &stop,
            std::future::pending::<Result<()>>(),
        )
        .await
        .unwrap_err();
        assert_eq!(hung.kind, ErrorKind::Timeout);
        assert!(hung.message.contains("stage restore"), "{hung}");

        let op = stop.child();
        op.stop(StopReason::Operator);
        let e = bounded(
            Stage::Verify,
            Duration::from_secs(5),
            &op,
            std::future::pending::<Result<()>>(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cancelled);
        stop.stop(StopReason::Shutdown);
        let e = bounded(
            Stage::Verify,
            Duration::from_secs(5),
            &stop,
            std::future::pending::<Result<()>>(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Interrupted);
    }
}
