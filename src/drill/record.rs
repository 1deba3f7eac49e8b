//! A run's record as it happens: every stage's outcome, duration, attempts and error, the
//! one failure that decides the verdict, and the facts the report carries. The only place
//! a stage is recorded; [`Record::finish`] turns it into the [`RunReport`].

use std::time::Instant;

use crate::cancel::Stop;
use crate::config::Drill;
use crate::error::{Error, Result};
use crate::fingerprint::{Fingerprint, Mismatch};
use crate::human::throughput_mb_s;
use crate::report::{ArtifactInfo, ErrorReport, Evidence, RunReport, StageReport};
use crate::stage::{bounded, Progress, StageRun};
use crate::status::{Outcome, Stage, Verdict};

pub(super) struct Record<'a> {
    pub drill: &'a Drill,
    pub run_id: String,
    pub started_at: jiff::Timestamp,
    pub progress: &'a dyn Progress,
    stages: Vec<StageReport>,
    /// The first failure: the one that decides the verdict.
    failure: Option<(Option<Stage>, Error)>,
    pub artifact: Option<ArtifactInfo>,
    pub source_version: Option<String>,
    pub dump_tool: Option<String>,
    pub sandbox_image: Option<String>,
    pub fingerprint: Option<Fingerprint>,
    pub mismatches: Vec<Mismatch>,
    pub assertions: Vec<crate::assertion::AssertionResult>,
    pub kept_sandbox: Option<String>,
    pub evidence: Evidence,
    /// A snapshot drill's dump: which snapshot and file (chosen again if the snapshot
    /// vanishes between attempts).
    pub snapshot: std::sync::Mutex<Option<crate::snapshot::Selected>>,
    /// A physical drill's plan: the backup set and target, chosen before the sandbox.
    pub physical: Option<crate::physical::Plan>,
    /// A MariaDB Backup drill's chain: the full backup and the incrementals, in order.
    pub mariabackup: Option<Vec<crate::physical::mariabackup::Backup>>,
    /// A Barman drill's plan.
    pub barman: Option<crate::physical::barman::Plan>,
    /// A physical drill's recovery, as the last attempt's restore stage found it.
    pub recovery: std::sync::Mutex<Option<crate::physical::RecoveryReport>>,
}

impl<'a> Record<'a> {
    pub fn new(drill: &'a Drill, run_id: &str, progress: &'a dyn Progress) -> Self {
        Record {
            drill,
            run_id: run_id.to_string(),
            started_at: jiff::Timestamp::now(),
            progress,
            stages: Vec::new(),
            failure: None,
            artifact: None,
            source_version: None,
            dump_tool: None,
            sandbox_image: None,
            fingerprint: None,
            mismatches: Vec::new(),
            assertions: Vec::new(),
            kept_sandbox: None,
            evidence: Evidence::default(),
            snapshot: std::sync::Mutex::new(None),
            physical: None,
            mariabackup: None,
            barman: None,
            recovery: std::sync::Mutex::new(None),
        }
    }

    /// Records the run's failure, unless an earlier one decided it already.
    pub fn fail(&mut self, stage: Option<Stage>, e: Error) {
        if self.failure.is_none() {
            self.failure = Some((stage, e));
        }
    }

    /// The report line of a stage run, as a person and the daemon's followers see it.
    pub fn report_of(&self, run: &StageRun) -> StageReport {
        let mut notes = run.notes.clone();
        // Throughput goes with every stage that moved bytes, so a restore that got slower
        // than its history shows it.
        if let (Some(b), Outcome::Passed) = (run.bytes, run.outcome) {
            if let Some(rate) = throughput_mb_s(b, run.duration.as_millis() as u64) {
                notes.push(format!("{rate:.1} MB/s"));
            }
        }
        StageReport {
            stage: run.stage,
            outcome: run.outcome,
            duration_ms: run.duration.as_millis() as u64,
            timeout_ms: self.drill.timeouts.get(run.stage).as_millis() as u64,
            bytes: run.bytes,
            attempts: run.attempts,
            error: run.error.as_ref().map(ErrorReport::from),
            notes,
        }
    }

    /// Tells the followers a stage ended (an attempt of it, for retried stages) without
    /// recording it yet.
    pub fn announce(&self, run: &StageRun) {
        self.progress.stage_finished(&self.report_of(run));
    }

    /// Records a stage run; its error, if it has one, becomes the run's failure unless
    /// another came first. `announce` also tells the followers (stages already announced
    /// attempt by attempt are not told twice).
    pub fn push(&mut self, run: StageRun, announce: bool) {
        let report = self.report_of(&run);
        if announce {
            self.progress.stage_finished(&report);
        }
        self.stages.push(report);
        if let Some(e) = run.error {
            self.fail(Some(run.stage), e);
        }
    }

    /// Marks `stage` skipped (unless it was recorded already).
    pub fn skip(&mut self, stage: Stage, why: Option<String>) {
        if !self.stages.iter().any(|s| s.stage == stage) {
            self.push(StageRun::skipped(stage, why), true);
        }
    }

    /// Marks every stage from `first` on skipped, but for those already recorded.
    pub fn skip_from(&mut self, first: Stage) {
        for s in Stage::ALL.iter().copied().filter(|s| *s >= first) {
            self.skip(s, None);
        }
    }

    /// **The stage runner**: runs one stage under its timeout and the run's stop, records
    /// its outcome, duration and error, and hands back its result. `bytes` says what the
    /// stage moved; `notes` what is worth showing.
    pub async fn stage<T>(
        &mut self,
        stage: Stage,
        stop: &Stop,
        fut: impl std::future::Future<Output = Result<(T, Option<u64>, Vec<String>)>>,
    ) -> Result<T> {
        self.progress.stage_started(stage);
        let t0 = Instant::now();
        let r = bounded(stage, self.drill.timeouts.get(stage), stop, fut).await;
        match r {
            Ok((v, bytes, notes)) => {
                self.push(
                    StageRun::passed(stage, t0.elapsed(), bytes).with_notes(notes),
                    true,
                );
                Ok(v)
            }
            Err(e) => {
                let e = e.context(format!("stage {stage}"));
                self.push(StageRun::ended(stage, t0.elapsed(), e.clone()), true);
                Err(e)
            }
        }
    }

    /// The time one attempt of a stage took, from its start event.
    pub fn started(&self, stage: Stage) -> Instant {
        self.progress.stage_started(stage);
        Instant::now()
    }

    pub fn finish(mut self) -> RunReport {
        // Evidence names an artifact: without one there is nothing to vouch for.
        let evidence = self.artifact.as_ref().map(|a| {
            let mut ev = std::mem::take(&mut self.evidence);
            ev.artifact_sha256 = Some(a.sha256.clone()).filter(|s| !s.is_empty());
            ev.manifest_key = Some(a.manifest.clone()).filter(|m| !m.is_empty());
            ev.image = self.sandbox_image.clone();
            if let Some(v) = &self.source_version {
                ev.tools.insert("source".into(), v.clone());
            }
            if let Some(v) = &self.dump_tool {
                ev.tools.insert("dump_tool".into(), v.clone());
            }
            ev.tools
                .insert("firedrill".into(), env!("CARGO_PKG_VERSION").into());
            ev.host = hostname();
            ev
        });
        let (verdict, failed_stage, error) = match &self.failure {
            None => (Verdict::Passed, None, None),
            Some((stage, e)) => (
                Verdict::from_error(e.kind),
                *stage,
                Some(ErrorReport::from(e)),
            ),
        };
        RunReport {
            report_version: 1,
            drill: self.drill.name.clone(),
            run_id: self.run_id,
            started_at: self.started_at,
            finished_at: jiff::Timestamp::now(),
            verdict,
            exit_code: verdict.exit_code(),
            failed_stage,
            error,
            stages: self.stages,
            artifact: self.artifact,
            source_version: self.source_version,
            dump_tool: self.dump_tool,
            sandbox_image: self.sandbox_image,
            tables: self.fingerprint.as_ref().map(|f| f.tables.len()),
            rows: self.fingerprint.as_ref().map(|f| f.total_rows()),
            table_rows: self
                .fingerprint
                .as_ref()
                .map(|f| {
                    f.tables
                        .iter()
                        .map(|t| crate::report::TableRows {
                            table: format!("{}.{}", t.schema, t.name),
                            rows: t.rows,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            fingerprint_mismatches: self.mismatches,
            assertions: self.assertions,
            kept_sandbox: self.kept_sandbox,
            scheduled_for: None,
            started_by: None,
            recovery: self.recovery.lock().ok().and_then(|mut r| r.take()),
            evidence,
            signature: None,
        }
    }
}

/// This host's name, for evidence.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
}
