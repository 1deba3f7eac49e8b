//! What a run did, stage by stage, and its verdict; rendered for people and for machines.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::assertion::AssertionResult;
use crate::error::{Error, ErrorKind};
use crate::fingerprint::Mismatch;
use crate::human::{human_bytes, human_ms};
use crate::status::Verified;
pub use crate::status::{Outcome, RunStatus, Stage, Verdict};

/// One table's rows, as fingerprinted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TableRows {
    /// `schema.table`.
    pub table: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageReport {
    pub stage: Stage,
    pub outcome: Outcome,
    pub duration_ms: u64,
    pub timeout_ms: u64,
    /// Bytes this stage produced or moved, where that applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// How many attempts the stage took (infrastructure stages are retried).
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    /// Facts worth showing about this stage ("pg_dump 15.14", "image …").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An [`Error`] as it appears in a report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ErrorReport {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
}

impl From<&Error> for ErrorReport {
    fn from(e: &Error) -> Self {
        ErrorReport {
            kind: e.kind,
            message: e.headline(),
            hint: e.hint.clone(),
            retryable: e.retryable,
            stderr_tail: e.stderr_tail.clone(),
        }
    }
}

/// Facts about the artifact a run produced or drilled.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArtifactInfo {
    pub location: String,
    pub manifest: String,
    pub sha256: String,
    pub plain_bytes: u64,
    pub compressed_bytes: u64,
    pub encrypted_bytes: u64,
}

/// What a report vouches for, to check later: the artifact and manifest by hash, where
/// they are, and what restored them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    /// The store (`local:/srv/backups`, `s3://bucket/prefix`).
    pub storage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
    /// SHA-256 of the manifest as storage held it at restore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Versions of what made and restored the artifact: `source`, `dump_tool`,
    /// `sandbox_server`, `firedrill`.
    #[serde(default)]
    pub tools: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A run's report: what `firedrill run --json` prints, and the API's `report`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunReport {
    pub report_version: u32,
    pub drill: String,
    pub run_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: jiff::Timestamp,
    pub verdict: Verdict,
    pub exit_code: i32,
    /// The stage that decided a failed or errored verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<Stage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    pub stages: Vec<StageReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dump_tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_image: Option<String>,
    /// Tables in the source fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<usize>,
    /// Rows in the source fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Rows per table (`schema.table`) in the dump's fingerprint: what the restore was
    /// compared with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub table_rows: Vec<TableRows>,
    pub fingerprint_mismatches: Vec<Mismatch>,
    pub assertions: Vec<AssertionResult>,
    /// Set when the sandbox was kept (`--keep`): how to reach it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_sandbox: Option<String>,
    /// When the schedule fired, for scheduled runs; `started_at` minus this is how late
    /// the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scheduled_for: Option<jiff::Timestamp>,
    /// A physical drill's recovery: the method, the target asked and reached, the WAL
    /// replayed, the timeline and the RTO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<crate::physical::RecoveryReport>,
    /// Who or what started the run: the schedule, an alert, an API token, a person signed
    /// in to the dashboard, someone at the command line. Absent from reports written
    /// before firedrill recorded it (their signatures still verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<crate::access::Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// ed25519 signature of the rest of the report, when a signing key is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::signing::Signature>,
}

impl RunReport {
    /// The run's status: passed, or what stopped it (a broken backup, a drill that could
    /// not run, an operator's cancel, a shutdown, a lost process).
    pub fn status(&self) -> RunStatus {
        match self.verdict {
            Verdict::Passed => RunStatus::Passed,
            Verdict::Failed => RunStatus::Failed,
            Verdict::Error => match self.error.as_ref().map(|e| e.kind) {
                Some(k @ (ErrorKind::Cancelled | ErrorKind::Interrupted | ErrorKind::Lost)) => {
                    RunStatus::finished(Some(k))
                }
                _ => RunStatus::Error,
            },
        }
    }

    /// How long after its schedule fired the run started (scheduled runs only).
    pub fn schedule_lateness_ms(&self) -> Option<u64> {
        self.scheduled_for.map(|t| {
            let ns = self.started_at.as_nanosecond() - t.as_nanosecond();
            (ns.max(0) / 1_000_000) as u64
        })
    }

    /// The measured recovery time (RTO), in milliseconds: the time of the
    /// [`RECOVERY_STAGES`].
    pub fn recovery_ms(&self) -> u64 {
        self.stages
            .iter()
            .filter(|s| RECOVERY_STAGES.contains(&s.stage))
            .map(|s| s.duration_ms)
            .sum()
    }

    /// What this run proved about the artifact it drilled: good when it passed, broken
    /// when it failed at restore or verify; nothing when it failed before.
    pub fn artifact_verdict(&self) -> Option<Verified> {
        match self.verdict {
            Verdict::Passed => Some(Verified::Yes),
            Verdict::Failed
                if matches!(self.failed_stage, Some(Stage::Restore | Stage::Verify)) =>
            {
                Some(Verified::No)
            }
            _ => None,
        }
    }

    /// A report with no stages and a passing verdict, to build others from with struct
    /// update syntax (reports of things that are not drill runs, tests).
    pub fn empty(drill: &str, run_id: &str, at: jiff::Timestamp) -> RunReport {
        RunReport {
            report_version: 1,
            drill: drill.to_string(),
            run_id: run_id.to_string(),
            started_at: at,
            finished_at: at,
            verdict: Verdict::Passed,
            exit_code: 0,
            failed_stage: None,
            error: None,
            stages: vec![],
            artifact: None,
            source_version: None,
            dump_tool: None,
            sandbox_image: None,
            tables: None,
            rows: None,
            fingerprint_mismatches: vec![],
            assertions: vec![],
            kept_sandbox: None,
            scheduled_for: None,
            started_by: None,
            table_rows: Vec::new(),
            recovery: None,
            evidence: None,
            signature: None,
        }
    }
}

/// The recovery time (RTO) of a run, defined here once: the restore and the verify
/// stages, the time from a backup in storage to data known good again. Provisioning the
/// sandbox is left out: a real recovery restores into a server that is already there.
/// The catalog's `rto_seconds`, `history`, the dashboard, pages and a drill's
/// `[schedule] rto` all measure this ([`RunReport::recovery_ms`]).
pub const RECOVERY_STAGES: [Stage; 2] = [Stage::Restore, Stage::Verify];

/// [`RECOVERY_STAGES`] as help texts and messages name them.
pub const RTO_DEFINITION: &str = "restore + verify";

/// Whether rendered text may carry colour: ANSI codes for a terminal, or none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Colour {
    #[default]
    Off,
    Ansi,
}

/// What a coloured word means.
#[derive(Clone, Copy)]
enum Tone {
    Good,
    Bad,
    Warn,
    Dim,
}

impl Colour {
    /// `text` in the colour of `tone`; unchanged when colour is off.
    fn paint(self, tone: Tone, text: &str) -> String {
        let code = match tone {
            Tone::Good => "32",
            Tone::Bad => "1;31",
            Tone::Warn => "33",
            Tone::Dim => "2",
        };
        match self {
            Colour::Off => text.to_string(),
            Colour::Ansi => format!("\x1b[{code}m{text}\x1b[0m"),
        }
    }

    fn outcome(self, o: Outcome, padded: &str) -> String {
        let tone = match o {
            Outcome::Passed => Tone::Good,
            Outcome::Failed | Outcome::TimedOut => Tone::Bad,
            Outcome::Cancelled | Outcome::Interrupted => Tone::Warn,
            Outcome::Stopped | Outcome::Skipped => Tone::Dim,
        };
        self.paint(tone, padded)
    }
}

/// One line for a finished stage, as printed while the drill runs.
pub fn render_stage_line(s: &StageReport) -> String {
    render_stage_line_in(s, Colour::Off)
}

/// [`render_stage_line`], its outcome coloured when `colour` is on.
pub fn render_stage_line_in(s: &StageReport, colour: Colour) -> String {
    let mut line = format!(
        "  {:<10} {} {:>8}",
        s.stage.as_str(),
        colour.outcome(s.outcome, &format!("{:<9}", s.outcome.label())),
        human_ms(s.duration_ms)
    );
    if let Some(b) = s.bytes {
        let _ = write!(line, "  {:>10}", human_bytes(b));
    }
    if s.attempts > 1 {
        let _ = write!(line, "  ({} attempts)", s.attempts);
    }
    if matches!(s.outcome, Outcome::TimedOut) {
        let _ = write!(line, "  (limit {})", human_ms(s.timeout_ms));
    }
    line
}

/// The whole report for a person: stages, mismatches, assertions, verdict.
pub fn render_human(r: &RunReport) -> String {
    render_human_with(r, true)
}

/// The report for a person; without the stage lines when they were already printed live.
pub fn render_human_with(r: &RunReport, stages: bool) -> String {
    render_human_in(r, stages, Colour::Off)
}

/// [`render_human_with`], outcomes and the verdict coloured when `colour` is on.
pub fn render_human_in(r: &RunReport, stages: bool, colour: Colour) -> String {
    let mut out = String::new();
    if stages {
        let _ = writeln!(out, "drill {}  run {}", r.drill, r.run_id);
        for s in &r.stages {
            let _ = writeln!(out, "{}", render_stage_line_in(s, colour));
        }
    }
    if let (Some(t), Some(rows)) = (r.tables, r.rows) {
        let _ = writeln!(out, "fingerprint: {t} tables, {rows} rows");
    }
    if !r.fingerprint_mismatches.is_empty() {
        let _ = writeln!(out, "fingerprint mismatches:");
        for m in &r.fingerprint_mismatches {
            let _ = writeln!(out, "  - {m}");
        }
    }
    if !r.assertions.is_empty() {
        let _ = writeln!(out, "assertions:");
        for a in &r.assertions {
            let status = if a.passed {
                colour.paint(Tone::Good, "ok  ")
            } else {
                colour.paint(Tone::Bad, "FAIL")
            };
            let actual = a.actual.as_deref().unwrap_or("NULL");
            let _ = write!(
                out,
                "  {status} {}: expected {}, got {actual}",
                a.name, a.expected
            );
            if let Some(e) = &a.error {
                let _ = write!(out, " ({e})");
            }
            out.push('\n');
        }
    }
    match (&r.artifact, &r.recovery) {
        (Some(a), Some(_)) => {
            let _ = writeln!(out, "backup: {}", a.location);
        }
        (Some(a), None) => {
            let _ = writeln!(
                out,
                "artifact: {} ({} plain, {} encrypted, sha256 {})",
                a.location,
                human_bytes(a.plain_bytes),
                human_bytes(a.encrypted_bytes),
                a.sha256
            );
        }
        _ => {}
    }
    if let Some(rec) = &r.recovery {
        for (k, v) in rec.lines() {
            let _ = writeln!(out, "{k}: {v}");
        }
    }
    if let Some(k) = &r.kept_sandbox {
        let _ = writeln!(out, "sandbox kept: {k}");
    }
    if let Some(e) = &r.error {
        let stage = r
            .failed_stage
            .map(|s| format!(" at {s}"))
            .unwrap_or_default();
        let _ = writeln!(out, "error{stage}: {}", e.message);
        if let Some(h) = &e.hint {
            let _ = writeln!(out, "  hint: {h}");
        }
        if let Some(t) = &e.stderr_tail {
            let _ = writeln!(out, "  tool output:");
            for l in t.lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
    }
    let at = r
        .failed_stage
        .map(|s| format!(" (stage {s})"))
        .unwrap_or_default();
    let (tone, word, verdict) = match r.status() {
        RunStatus::Passed => (
            Tone::Good,
            "PASSED",
            ": the backup restored and matches the source".to_string(),
        ),
        RunStatus::Failed => (
            Tone::Bad,
            "FAILED",
            format!(": the backup did not survive the drill{at}"),
        ),
        RunStatus::Cancelled => (
            Tone::Warn,
            "CANCELLED",
            format!(": an operator stopped the drill{at}; the backup is unproven"),
        ),
        RunStatus::Interrupted => (
            Tone::Warn,
            "INTERRUPTED",
            format!(": firedrill shut down during the drill{at}; the backup is unproven"),
        ),
        _ => (Tone::Bad, "ERROR", format!(": the drill could not run{at}")),
    };
    let _ = writeln!(out, "{}{verdict}", colour.paint(tone, word));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunReport {
        let ts: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        RunReport {
            report_version: 1,
            drill: "shop".into(),
            run_id: "20261126T100000Z-abc123".into(),
            started_at: ts,
            finished_at: ts,
            verdict: Verdict::Failed,
            exit_code: 1,
            failed_stage: Some(Stage::Verify),
            error: Some(ErrorReport {
                kind: ErrorKind::Verification,
                message: "1 assertion failed".into(),
                hint: Some("look at the assertion".into()),
                retryable: false,
                stderr_tail: None,
            }),
            stages: vec![
                StageReport {
                    stage: Stage::Dump,
                    outcome: Outcome::Passed,
                    duration_ms: 3200,
                    timeout_ms: 60_000,
                    bytes: Some(5 << 20),
                    attempts: 1,
                    error: None,
                    notes: vec![],
                },
                StageReport {
                    stage: Stage::Provision,
                    outcome: Outcome::TimedOut,
                    duration_ms: 1000,
                    timeout_ms: 1000,
                    bytes: None,
                    attempts: 2,
                    error: None,
                    notes: vec![],
                },
            ],
            artifact: None,
            source_version: None,
            dump_tool: None,
            sandbox_image: None,
            tables: Some(3),
            rows: Some(1200),
            fingerprint_mismatches: vec![Mismatch::RowCount {
                table: "public.orders".into(),
                expected: 1000,
                actual: 999,
            }],
            assertions: vec![AssertionResult {
                name: "orders exist".into(),
                expected: ">= 1000".into(),
                actual: Some("999".into()),
                passed: false,
                error: None,
                guard: false,
            }],
            kept_sandbox: None,
            scheduled_for: None,
            started_by: None,
            table_rows: Vec::new(),
            recovery: None,
            evidence: None,
            signature: None,
        }
    }

    #[test]
    fn human_rendering_is_stable() {
        let text = render_human(&sample());
        let expected = "\
drill shop  run 20261126T100000Z-abc123
  dump       passed        3.2s     5.0 MiB
  provision  timed out     1.0s  (2 attempts)  (limit 1.0s)
fingerprint: 3 tables, 1200 rows
fingerprint mismatches:
  - public.orders: 999 rows restored, 1000 dumped
assertions:
  FAIL orders exist: expected >= 1000, got 999
error at verify: 1 assertion failed
  hint: look at the assertion
FAILED: the backup did not survive the drill (stage verify)
";
        assert_eq!(text, expected);
    }

    /// The one definition of the recovery time: restore and verify, nothing else (the
    /// sandbox's provisioning was counted in the code, not in the help or the catalog).
    #[test]
    fn the_recovery_time_is_restore_plus_verify() {
        let mut r = sample();
        let stage = |stage, duration_ms| StageReport {
            stage,
            outcome: Outcome::Passed,
            duration_ms,
            timeout_ms: 60_000,
            bytes: None,
            attempts: 1,
            error: None,
            notes: vec![],
        };
        r.stages = vec![
            stage(Stage::Dump, 1),
            stage(Stage::Encrypt, 10),
            stage(Stage::Upload, 100),
            stage(Stage::Provision, 1_000),
            stage(Stage::Restore, 10_000),
            stage(Stage::Verify, 100_000),
            stage(Stage::Teardown, 1_000_000),
        ];
        assert_eq!(r.recovery_ms(), 110_000);
        assert_eq!(RTO_DEFINITION, "restore + verify");
    }

    /// Colour on a terminal only: the same text with ANSI around the outcome words and
    /// the verdict, and nothing else moved.
    #[test]
    fn colour_marks_outcomes_and_the_verdict_only() {
        let r = sample();
        let plain = render_human_in(&r, true, Colour::Off);
        assert_eq!(plain, render_human(&r));
        let coloured = render_human_in(&r, true, Colour::Ansi);
        assert!(coloured.contains("\x1b[32mpassed   \x1b[0m"), "{coloured}");
        assert!(
            coloured.contains("\x1b[1;31mtimed out\x1b[0m"),
            "{coloured}"
        );
        assert!(
            coloured.contains("\x1b[1;31mFAIL\x1b[0m orders exist"),
            "{coloured}"
        );
        assert!(
            coloured.contains("\x1b[1;31mFAILED\x1b[0m: the backup"),
            "{coloured}"
        );
        let stripped = coloured
            .replace("\x1b[0m", "")
            .replace("\x1b[32m", "")
            .replace("\x1b[1;31m", "");
        assert_eq!(stripped, plain);
    }

    #[test]
    fn json_round_trips_and_names_fields() {
        let r = sample();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["verdict"], "failed");
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["stages"][1]["outcome"], "timed_out");
        assert_eq!(v["fingerprint_mismatches"][0]["kind"], "row_count");
        let back: RunReport = serde_json::from_value(v).unwrap();
        assert_eq!(back.run_id, r.run_id);
    }
}
