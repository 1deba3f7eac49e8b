//! A run as JUnit XML, for CI systems (Jenkins, GitLab, anything that reads pytest's
//! output). Valid against Jenkins' `junit-10.xsd` (jenkinsci/xunit-plugin; pytest's test
//! suite validates against the same file).
//!
//! One `<testsuite name="firedrill.<drill>">` holds a testcase per stage (classname
//! `firedrill.<drill>.stage`), per assertion (`….assertion`) and per fingerprint
//! mismatch (`….fingerprint`). A run that did not pass always shows at least one failure
//! or error: when no testcase carries one, a `firedrill.<drill>` / `run` testcase does.

use std::fmt::Write as _;

use super::{run_ms, seconds, stage_error, verdict_sentence, xml_attr, xml_text};
use crate::fingerprint::Mismatch;
use crate::human::{human_bytes, human_ms};
use crate::report::{ErrorReport, Outcome, RunReport, StageReport, Verdict};

/// The report as a JUnit XML document, `hostname` being this machine's name.
pub fn junit_xml(r: &RunReport) -> String {
    junit_xml_on_host(r, &local_hostname())
}

/// The report as a JUnit XML document, with `hostname` as the suite's host (for output
/// that does not depend on the machine it is rendered on).
pub fn junit_xml_on_host(r: &RunReport, hostname: &str) -> String {
    let suite = format!("firedrill.{}", r.drill);
    let cases = cases(r);
    let count = |f: fn(&CaseResult) -> bool| cases.iter().filter(|c| f(&c.result)).count();
    let tests = cases.len();
    let failures = count(|c| matches!(c, CaseResult::Failure { .. }));
    let errors = count(|c| matches!(c, CaseResult::Error { .. }));
    let skipped = count(|c| matches!(c, CaseResult::Skipped { .. }));
    let time = seconds(run_ms(r));
    // ISO 8601 without a zone, as the JUnit schemas have it; the time is UTC.
    let timestamp = r.started_at.strftime("%Y-%m-%dT%H:%M:%S").to_string();

    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"firedrill\" tests=\"{tests}\" failures=\"{failures}\" \
         errors=\"{errors}\" time=\"{time}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" \
         skipped=\"{skipped}\" time=\"{time}\" timestamp=\"{timestamp}\" hostname=\"{}\">",
        xml_attr(&suite),
        xml_attr(hostname)
    );
    x.push_str("    <properties>\n");
    for (name, value) in properties(r) {
        let _ = writeln!(
            x,
            "      <property name=\"{}\" value=\"{}\"/>",
            xml_attr(name),
            xml_attr(&value)
        );
    }
    x.push_str("    </properties>\n");
    for c in &cases {
        write_case(&mut x, c);
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// The suite's `<properties>`: facts about the run that are not test results.
fn properties(r: &RunReport) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("run_id", r.run_id.clone()),
        ("drill", r.drill.clone()),
        ("verdict", r.status().to_string()),
        ("exit_code", r.exit_code.to_string()),
        ("report_version", r.report_version.to_string()),
    ];
    if let Some(s) = r.failed_stage {
        p.push(("failed_stage", s.to_string()));
    }
    if let Some(a) = &r.artifact {
        if !a.location.is_empty() {
            p.push(("artifact_location", a.location.clone()));
        }
        if !a.sha256.is_empty() {
            p.push(("artifact_sha256", a.sha256.clone()));
        }
        p.push(("artifact_encrypted_bytes", a.encrypted_bytes.to_string()));
    }
    let optional = [
        ("source_version", &r.source_version),
        ("dump_tool", &r.dump_tool),
        ("sandbox_image", &r.sandbox_image),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            p.push((name, v.clone()));
        }
    }
    if let (Some(t), Some(rows)) = (r.tables, r.rows) {
        p.push(("fingerprint_tables", t.to_string()));
        p.push(("fingerprint_rows", rows.to_string()));
    }
    p
}

/// One `<testcase>` to be.
struct Case {
    classname: String,
    name: String,
    time_ms: Option<u64>,
    result: CaseResult,
    /// Facts for `<system-out>`; empty for none.
    out: String,
}

enum CaseResult {
    Passed,
    /// The backup is at fault: `<failure>`.
    Failure {
        kind: String,
        message: String,
        body: String,
    },
    /// The drill could not run the step: `<error>`.
    Error {
        kind: String,
        message: String,
        body: String,
    },
    Skipped {
        message: String,
    },
}

fn cases(r: &RunReport) -> Vec<Case> {
    let mut cases = Vec::new();
    let base = format!("firedrill.{}", r.drill);
    for s in &r.stages {
        cases.push(stage_case(r, s, &format!("{base}.stage")));
    }
    for a in &r.assertions {
        let actual = a.actual.as_deref().unwrap_or("NULL");
        let mut message = format!("expected {}, got {actual}", a.expected);
        if let Some(e) = &a.error {
            let _ = write!(message, " ({e})");
        }
        let result = if a.passed {
            CaseResult::Passed
        } else {
            CaseResult::Failure {
                kind: "assertion".into(),
                message: message.clone(),
                body: a.error.clone().unwrap_or_default(),
            }
        };
        cases.push(Case {
            classname: format!("{base}.assertion"),
            name: a.name.clone(),
            time_ms: None,
            result,
            out: if a.passed { message } else { String::new() },
        });
    }
    for m in &r.fingerprint_mismatches {
        cases.push(Case {
            classname: format!("{base}.fingerprint"),
            name: mismatch_name(m),
            time_ms: None,
            result: CaseResult::Failure {
                kind: "fingerprint".into(),
                message: m.to_string(),
                body: String::new(),
            },
            out: String::new(),
        });
    }
    let shows_problem = cases.iter().any(|c| {
        matches!(
            c.result,
            CaseResult::Failure { .. } | CaseResult::Error { .. }
        )
    });
    if r.verdict != Verdict::Passed && !shows_problem {
        let (kind, message, body) = match &r.error {
            Some(e) => (
                e.kind.as_str().to_string(),
                e.message.clone(),
                error_body(e),
            ),
            None => (r.status().to_string(), verdict_sentence(r), String::new()),
        };
        let result = if r.verdict == Verdict::Failed {
            CaseResult::Failure {
                kind,
                message,
                body,
            }
        } else {
            CaseResult::Error {
                kind,
                message,
                body,
            }
        };
        cases.push(Case {
            classname: base,
            name: "run".into(),
            time_ms: Some(run_ms(r)),
            result,
            out: String::new(),
        });
    }
    cases
}

fn stage_case(r: &RunReport, s: &StageReport, classname: &str) -> Case {
    let error = stage_error(r, s);
    let kind = |default: &str| {
        error
            .map(|e| e.kind.as_str().to_string())
            .unwrap_or_else(|| default.to_string())
    };
    let message = |default: String| error.map(|e| e.message.clone()).unwrap_or(default);
    let body = || error.map(error_body).unwrap_or_default();
    let result = match s.outcome {
        Outcome::Passed => CaseResult::Passed,
        Outcome::Failed => CaseResult::Failure {
            kind: kind("failed"),
            message: message(format!("stage {} failed", s.stage)),
            body: body(),
        },
        Outcome::TimedOut => CaseResult::Error {
            kind: kind("timeout"),
            message: message(format!(
                "stage {} timed out after {} (limit {})",
                s.stage,
                human_ms(s.duration_ms),
                human_ms(s.timeout_ms)
            )),
            body: body(),
        },
        Outcome::Cancelled | Outcome::Interrupted => CaseResult::Error {
            kind: kind(s.outcome.as_str()),
            message: message(format!("stage {} was {}", s.stage, s.outcome.label())),
            body: body(),
        },
        Outcome::Stopped => CaseResult::Skipped {
            message: match r.failed_stage {
                Some(f) => format!("stopped: stage {f} failed first"),
                None => "stopped: another stage failed first".to_string(),
            },
        },
        Outcome::Skipped => CaseResult::Skipped {
            message: match r.failed_stage {
                Some(f) if f != s.stage => format!("not run: stage {f} did not pass"),
                _ => "not run: an earlier stage did not pass".to_string(),
            },
        },
    };
    // What the stage did, for `<system-out>`; a skipped stage did nothing.
    let mut out = String::new();
    if s.outcome != Outcome::Skipped {
        let _ = writeln!(out, "outcome: {}", s.outcome.as_str());
        let _ = writeln!(
            out,
            "duration: {} (limit {})",
            human_ms(s.duration_ms),
            human_ms(s.timeout_ms)
        );
        if let Some(b) = s.bytes {
            let _ = writeln!(out, "bytes: {b} ({})", human_bytes(b));
        }
        let _ = writeln!(out, "attempts: {}", s.attempts);
    }
    for n in &s.notes {
        let _ = writeln!(out, "note: {n}");
    }
    Case {
        classname: classname.to_string(),
        name: s.stage.to_string(),
        time_ms: Some(s.duration_ms),
        result,
        out,
    }
}

/// A stable testcase name for a mismatch, whatever its kind: what it is about (the table
/// or object) and the kind, `public.orders: row count`. Read from the mismatch's serialised
/// form (`kind` tag plus fields), so new kinds need nothing here.
fn mismatch_name(m: &Mismatch) -> String {
    let v = serde_json::to_value(m).unwrap_or_default();
    let kind = v["kind"].as_str().unwrap_or("mismatch").replace('_', " ");
    let subject = ["table", "object", "name"]
        .iter()
        .find_map(|k| v[k].as_str())
        .unwrap_or_default();
    if subject.is_empty() {
        kind
    } else {
        format!("{subject}: {kind}")
    }
}

/// A failure's body: the hint, then the tool's last lines of output.
fn error_body(e: &ErrorReport) -> String {
    let mut body = String::new();
    if let Some(h) = &e.hint {
        let _ = writeln!(body, "hint: {h}");
    }
    if let Some(t) = &e.stderr_tail {
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str("tool output (last lines):\n");
        body.push_str(t);
        if !t.ends_with('\n') {
            body.push('\n');
        }
    }
    body
}

fn write_case(x: &mut String, c: &Case) {
    let _ = write!(
        x,
        "    <testcase classname=\"{}\" name=\"{}\"",
        xml_attr(&c.classname),
        xml_attr(&c.name)
    );
    if let Some(ms) = c.time_ms {
        let _ = write!(x, " time=\"{}\"", seconds(ms));
    }
    if matches!(c.result, CaseResult::Passed) && c.out.is_empty() {
        x.push_str("/>\n");
        return;
    }
    x.push_str(">\n");
    match &c.result {
        CaseResult::Passed => {}
        CaseResult::Failure {
            kind,
            message,
            body,
        } => write_problem(x, "failure", kind, message, body),
        CaseResult::Error {
            kind,
            message,
            body,
        } => write_problem(x, "error", kind, message, body),
        CaseResult::Skipped { message } => {
            let _ = writeln!(x, "      <skipped message=\"{}\"/>", xml_attr(message));
        }
    }
    if !c.out.is_empty() {
        let _ = writeln!(x, "      <system-out>{}</system-out>", xml_text(&c.out));
    }
    x.push_str("    </testcase>\n");
}

fn write_problem(x: &mut String, element: &str, kind: &str, message: &str, body: &str) {
    let _ = write!(
        x,
        "      <{element} type=\"{}\" message=\"{}\"",
        xml_attr(kind),
        xml_attr(message)
    );
    if body.is_empty() {
        x.push_str("/>\n");
    } else {
        let _ = writeln!(x, ">{}</{element}>", xml_text(body));
    }
}

/// This machine's name, for the suite's `hostname`; `localhost` when it cannot be read.
fn local_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .chain(std::env::var("HOSTNAME").ok())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::AssertionResult;
    use crate::report::{ArtifactInfo, Stage};

    fn stage(stage: Stage, outcome: Outcome, ms: u64) -> StageReport {
        StageReport {
            stage,
            outcome,
            duration_ms: ms,
            timeout_ms: 60_000,
            bytes: None,
            attempts: 1,
            error: None,
            notes: vec![],
        }
    }

    fn hostile() -> RunReport {
        let at: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let nasty = "<script>alert(\"x\")</script> & 'q'\u{1}";
        RunReport {
            verdict: Verdict::Failed,
            exit_code: 1,
            failed_stage: Some(Stage::Verify),
            finished_at: "2026-11-26T10:00:07.250Z".parse().unwrap(),
            error: Some(ErrorReport {
                kind: crate::error::ErrorKind::Verification,
                message: format!("assertion {nasty} failed"),
                hint: Some(format!("look at {nasty}")),
                retryable: false,
                stderr_tail: Some("ERROR: \u{1b}[31mboom\u{1b}[0m ]]> <tag>\r\n".into()),
            }),
            stages: vec![
                StageReport {
                    bytes: Some(4096),
                    notes: vec![format!("note {nasty}")],
                    ..stage(Stage::Dump, Outcome::Passed, 1200)
                },
                stage(Stage::Encrypt, Outcome::Passed, 1100),
                stage(Stage::Upload, Outcome::Passed, 1300),
                stage(Stage::Provision, Outcome::Passed, 2000),
                stage(Stage::Restore, Outcome::Passed, 900),
                stage(Stage::Verify, Outcome::Failed, 250),
                stage(Stage::Teardown, Outcome::Passed, 100),
            ],
            artifact: Some(ArtifactInfo {
                location: "local /var/tmp/store".into(),
                sha256: "ab".repeat(32),
                ..ArtifactInfo::default()
            }),
            fingerprint_mismatches: vec![Mismatch::RowCount {
                table: "public.\"orders<&>\"".into(),
                expected: 10,
                actual: 9,
            }],
            assertions: vec![
                AssertionResult {
                    name: nasty.into(),
                    expected: ">= 1000".into(),
                    actual: Some("999".into()),
                    passed: false,
                    error: None,
                    guard: false,
                },
                AssertionResult {
                    name: "ok one".into(),
                    expected: "= 0".into(),
                    actual: Some("0".into()),
                    passed: true,
                    error: None,
                    guard: false,
                },
            ],
            ..RunReport::empty(&format!("shop {nasty}"), "run-1", at)
        }
    }

    #[test]
    fn render_junit_escapes_and_strips() {
        let x = junit_xml_on_host(&hostile(), "ci<&>\"host\"");
        assert!(!x.contains("<script"), "{x}");
        assert!(!x.contains('\u{1}'), "{x}");
        assert!(!x.contains('\u{1b}'), "{x}");
        assert!(x.contains(
            "name=\"firedrill.shop &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &apos;q&apos;\""
        ));
        assert!(x.contains("hostname=\"ci&lt;&amp;&gt;&quot;host&quot;\""));
        assert!(x.contains("message=\"expected &gt;= 1000, got 999\""));
        assert!(x.contains("]]&gt; &lt;tag&gt;&#13;\n"));
        assert!(x.contains("hint: look at &lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; 'q'\n"));
        // Nothing but markup may hold a raw '<': every '<' opens a tag we wrote.
        for piece in x.split('<').skip(1) {
            let first = piece.chars().next().unwrap();
            assert!(
                first.is_ascii_alphabetic() || first == '/' || first == '?',
                "stray '<' before {piece:?}"
            );
        }
    }

    #[test]
    fn render_junit_counts_match_report() {
        let r = hostile();
        let x = junit_xml_on_host(&r, "h");
        // 7 stages + 2 assertions + 1 mismatch; verify, one assertion, the mismatch fail.
        assert!(
            x.contains(
                "<testsuites name=\"firedrill\" tests=\"10\" failures=\"3\" errors=\"0\" time=\"7.250\">"
            ),
            "{x}"
        );
        assert!(x.contains("tests=\"10\" failures=\"3\" errors=\"0\" skipped=\"0\" time=\"7.250\" timestamp=\"2026-11-26T10:00:00\" hostname=\"h\">"));
        assert_eq!(x.matches("<testcase ").count(), 10);
        assert_eq!(x.matches("<failure ").count(), 3);
        assert_eq!(x.matches("classname=\"firedrill.shop").count(), 10);
        assert!(x.contains("<property name=\"artifact_sha256\" value=\"abab"));
        assert!(x.contains("<property name=\"verdict\" value=\"failed\"/>"));
        assert!(x.contains(
            "<testcase classname=\"firedrill.shop &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; \
             &amp; &apos;q&apos;.fingerprint\" name=\"public.&quot;orders&lt;&amp;&gt;&quot;: row count\">"
        ), "{x}");
        // The failed stage carries the run's error, message and hint.
        assert!(x.contains("<failure type=\"verification\" message=\"assertion &lt;script&gt;"));

        let at: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let timed_out = RunReport {
            verdict: Verdict::Error,
            exit_code: 2,
            failed_stage: Some(Stage::Provision),
            stages: vec![
                stage(Stage::Dump, Outcome::Passed, 10),
                stage(Stage::Provision, Outcome::TimedOut, 60_000),
                stage(Stage::Restore, Outcome::Skipped, 0),
                stage(Stage::Verify, Outcome::Skipped, 0),
                stage(Stage::Teardown, Outcome::Interrupted, 5),
            ],
            ..RunReport::empty("d", "r", at)
        };
        let x = junit_xml_on_host(&timed_out, "h");
        assert!(
            x.contains("tests=\"5\" failures=\"0\" errors=\"2\" skipped=\"2\""),
            "{x}"
        );
        assert!(x.contains("<error type=\"timeout\" message=\"stage provision timed out after 1m00s (limit 1m00s)\"/>"), "{x}");
        assert!(x.contains("<skipped message=\"not run: stage provision did not pass\"/>"));
    }

    #[test]
    fn render_junit_failed_run_is_never_green() {
        let at: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let r = RunReport {
            verdict: Verdict::Error,
            exit_code: 2,
            error: Some(ErrorReport {
                kind: crate::error::ErrorKind::Config,
                message: "no such drill".into(),
                hint: None,
                retryable: false,
                stderr_tail: None,
            }),
            ..RunReport::empty("d", "r", at)
        };
        let x = junit_xml_on_host(&r, "h");
        assert!(x.contains("tests=\"1\" failures=\"0\" errors=\"1\""), "{x}");
        assert!(x.contains("<testcase classname=\"firedrill.d\" name=\"run\" time=\"0.000\">"));
        assert!(x.contains("<error type=\"config\" message=\"no such drill\"/>"));
        let passed = junit_xml_on_host(&RunReport::empty("d", "r", at), "h");
        assert!(passed.contains("tests=\"0\" failures=\"0\" errors=\"0\" skipped=\"0\""));
    }
}
