//! The report renderers on three typical runs (passed; failed at verify; could not run):
//! the JUnit XML validates against Jenkins' `junit-10.xsd` with a real validator
//! (xmllint), and its counts say what the report says; the HTML page is well formed and
//! holds no script.
//!
//! Needs `xmllint` (Debian: libxml2-utils) and `FIREDRILL_JUNIT_XSD` naming the schema
//! file; `tests/run` provides both (`fd_junit_schema` in deploy/host-setup.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use firedrill::assertion::AssertionResult;
use firedrill::fingerprint::Mismatch;
use firedrill::render::{html_page, junit_xml, stage_timeline_svg};
use firedrill::report::{ArtifactInfo, ErrorReport, Outcome, StageReport};
use firedrill::{RunReport, Stage, Verdict};

const HOW_TO_RUN: &str = "Run the tests through `tests/run`, or by hand: \
     `source deploy/host-setup.sh && fd_ensure_packages && fd_junit_schema && cargo test --test reports`";

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn stage(stage: Stage, outcome: Outcome, ms: u64) -> StageReport {
    StageReport {
        stage,
        outcome,
        duration_ms: ms,
        timeout_ms: 120_000,
        bytes: None,
        attempts: 1,
        error: None,
        notes: vec![],
    }
}

fn artifact() -> ArtifactInfo {
    ArtifactInfo {
        location: "local directory /var/tmp/store / shop/20261126T100000Z/artifact.dump.zst.age"
            .into(),
        manifest: "shop/20261126T100000Z/manifest.json".into(),
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        plain_bytes: 4_613_734,
        compressed_bytes: 712_000,
        encrypted_bytes: 712_198,
    }
}

fn pipeline() -> Vec<StageReport> {
    vec![
        StageReport {
            bytes: Some(4_613_734),
            notes: vec!["pg_dump (PostgreSQL) 16.4".into()],
            ..stage(Stage::Dump, Outcome::Passed, 1990)
        },
        StageReport {
            bytes: Some(712_198),
            ..stage(Stage::Encrypt, Outcome::Passed, 1995)
        },
        StageReport {
            bytes: Some(712_198),
            ..stage(Stage::Upload, Outcome::Passed, 2030)
        },
    ]
}

fn passed() -> RunReport {
    let mut stages = pipeline();
    stages.extend([
        StageReport {
            attempts: 2,
            notes: vec!["image firedrill-sandbox-postgres:16".into()],
            ..stage(Stage::Provision, Outcome::Passed, 1700)
        },
        StageReport {
            bytes: Some(712_198),
            ..stage(Stage::Restore, Outcome::Passed, 774)
        },
        stage(Stage::Verify, Outcome::Passed, 247),
        stage(Stage::Teardown, Outcome::Passed, 100),
    ]);
    RunReport {
        finished_at: at("2026-11-26T10:00:04.851Z"),
        stages,
        artifact: Some(artifact()),
        source_version: Some("PostgreSQL 16.4".into()),
        dump_tool: Some("pg_dump (PostgreSQL) 16.4".into()),
        sandbox_image: Some("firedrill-sandbox-postgres:16".into()),
        tables: Some(3),
        rows: Some(62_000),
        assertions: vec![
            AssertionResult {
                name: "every order has a customer".into(),
                expected: "= 0".into(),
                actual: Some("0".into()),
                passed: true,
                error: None,
                guard: false,
            },
            AssertionResult {
                name: "orders were seeded".into(),
                expected: ">= 50000".into(),
                actual: Some("50000".into()),
                passed: true,
                error: None,
                guard: false,
            },
        ],
        ..RunReport::empty(
            "demo-postgres",
            "20261126T100000Z-a1b2c3",
            at("2026-11-26T10:00:00Z"),
        )
    }
}

/// Failed at verify: two assertions fail (one of them because its query failed), a
/// table lost rows; names and messages full of markup and control characters.
fn failed_at_verify() -> RunReport {
    let mut stages = pipeline();
    stages.extend([
        stage(Stage::Provision, Outcome::Passed, 1500),
        stage(Stage::Restore, Outcome::Passed, 800),
        StageReport {
            error: Some(ErrorReport {
                kind: firedrill::ErrorKind::Verification,
                message: "stage verify: 2 assertions failed, 1 fingerprint mismatch".into(),
                hint: Some("compare the <source> & the restored \"copy\"".into()),
                retryable: false,
                stderr_tail: Some(
                    "ERROR:  relation \"audit\u{1}log\" does not exist ]]> \u{1b}[0m\r\n".into(),
                ),
            }),
            ..stage(Stage::Verify, Outcome::Failed, 300)
        },
        stage(Stage::Teardown, Outcome::Passed, 100),
    ]);
    let error = stages[5].error.clone();
    RunReport {
        finished_at: at("2026-11-26T11:00:05Z"),
        verdict: Verdict::Failed,
        exit_code: 1,
        failed_stage: Some(Stage::Verify),
        error,
        stages,
        artifact: Some(artifact()),
        tables: Some(3),
        rows: Some(62_000),
        fingerprint_mismatches: vec![Mismatch::RowCount {
            table: "public.orders".into(),
            expected: 50_000,
            actual: 49_999,
        }],
        assertions: vec![
            AssertionResult {
                name: "orders <script>alert('x')</script> & \"seeded\"\u{1}".into(),
                expected: ">= 50000".into(),
                actual: Some("49999".into()),
                passed: false,
                error: None,
                guard: false,
            },
            AssertionResult {
                name: "audit log present".into(),
                expected: "> 0".into(),
                actual: None,
                passed: false,
                error: Some("relation \"audit\u{1}log\" does not exist".into()),
                guard: false,
            },
            AssertionResult {
                name: "every order has a customer".into(),
                expected: "= 0".into(),
                actual: Some("0".into()),
                passed: true,
                error: None,
                guard: false,
            },
        ],
        ..RunReport::empty(
            "shop <&> \"eu\"",
            "20261126T110000Z-d4e5f6",
            at("2026-11-26T11:00:00Z"),
        )
    }
}

/// Could not run: provision timed out, restore and verify skipped, teardown ran.
fn timed_out() -> RunReport {
    let mut stages = pipeline();
    let error = ErrorReport {
        kind: firedrill::ErrorKind::Timeout,
        message: "stage provision: timed out after 2m00s".into(),
        hint: Some("raise timeouts.provision, or look at the Docker engine".into()),
        retryable: true,
        stderr_tail: None,
    };
    stages.extend([
        StageReport {
            error: Some(error.clone()),
            attempts: 3,
            ..stage(Stage::Provision, Outcome::TimedOut, 120_000)
        },
        stage(Stage::Restore, Outcome::Skipped, 0),
        stage(Stage::Verify, Outcome::Skipped, 0),
        stage(Stage::Teardown, Outcome::Passed, 350),
    ]);
    RunReport {
        finished_at: at("2026-11-26T12:02:03Z"),
        verdict: Verdict::Error,
        exit_code: 2,
        failed_stage: Some(Stage::Provision),
        error: Some(error),
        stages,
        artifact: Some(artifact()),
        ..RunReport::empty(
            "demo-postgres",
            "20261126T120000Z-0a0b0c",
            at("2026-11-26T12:00:00Z"),
        )
    }
}

/// name, report, expected (tests, failures, errors, skipped).
fn samples() -> Vec<(&'static str, RunReport, [usize; 4])> {
    vec![
        ("passed", passed(), [9, 0, 0, 0]),
        // 7 stages + 3 assertions + 1 mismatch; verify, 2 assertions and the mismatch fail.
        ("failed-at-verify", failed_at_verify(), [11, 4, 0, 0]),
        ("timed-out", timed_out(), [7, 0, 1, 2]),
    ]
}

fn xmllint() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("xmllint"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!(
            "xmllint is not installed (Debian package libxml2-utils); it validates the JUnit \
             output against Jenkins' schema. {HOW_TO_RUN}"
        ),
    }
}

fn schema() -> PathBuf {
    let Some(xsd) = std::env::var_os("FIREDRILL_JUNIT_XSD").filter(|v| !v.is_empty()) else {
        panic!(
            "FIREDRILL_JUNIT_XSD is not set: it must name Jenkins' junit-10.xsd, the schema the \
             JUnit output is validated against. {HOW_TO_RUN}"
        );
    };
    let xsd = PathBuf::from(xsd);
    assert!(
        xsd.is_file(),
        "FIREDRILL_JUNIT_XSD={} is not a file. {HOW_TO_RUN}",
        xsd.display()
    );
    xsd
}

fn run_xmllint(args: &[&str], file: &Path) -> String {
    let out = Command::new(xmllint())
        .args(args)
        .arg(file)
        .output()
        .expect("xmllint runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "xmllint {} {} failed:\n{stderr}\n--- the file ---\n{}",
        args.join(" "),
        file.display(),
        std::fs::read_to_string(file).unwrap_or_default()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of an XPath expression over `file` (xmllint ends it with a line break).
fn xpath(file: &Path, expr: &str) -> String {
    let mut v = run_xmllint(&["--xpath", expr], file);
    if v.ends_with('\n') {
        v.pop();
    }
    v
}

#[test]
fn junit_validates_against_jenkins_schema_and_counts_match() {
    let xsd = schema();
    let xsd = xsd.to_str().expect("schema path is UTF-8");
    let dir = tempfile::tempdir().unwrap();
    for (name, report, [tests, failures, errors, skipped]) in samples() {
        let file = dir.path().join(format!("{name}.xml"));
        std::fs::write(&file, junit_xml(&report)).unwrap();
        run_xmllint(&["--noout", "--schema", xsd], &file);
        let attr = |path: &str| xpath(&file, &format!("string({path})"));
        let suite = "/testsuites/testsuite";
        assert_eq!(
            attr(&format!("{suite}/@tests")),
            tests.to_string(),
            "{name}: tests"
        );
        assert_eq!(
            attr(&format!("{suite}/@failures")),
            failures.to_string(),
            "{name}: failures"
        );
        assert_eq!(
            attr(&format!("{suite}/@errors")),
            errors.to_string(),
            "{name}: errors"
        );
        assert_eq!(
            attr(&format!("{suite}/@skipped")),
            skipped.to_string(),
            "{name}: skipped"
        );
        assert_eq!(
            attr(&format!("count({suite}/testcase)")),
            tests.to_string(),
            "{name}: testcases"
        );
        assert_eq!(
            attr(&format!("count({suite}/testcase/failure)")),
            failures.to_string(),
            "{name}: failure elements"
        );
        assert_eq!(
            attr(&format!(
                "{suite}/properties/property[@name='run_id']/@value"
            )),
            report.run_id,
            "{name}: run_id property"
        );
        assert_eq!(
            attr(&format!(
                "{suite}/properties/property[@name='artifact_sha256']/@value"
            )),
            artifact().sha256,
            "{name}: artifact sha256 property"
        );
        assert_eq!(
            attr(&format!("{suite}/@name")),
            format!("firedrill.{}", report.drill),
            "{name}: suite name survives escaping"
        );
    }
    // What the parser reads back is the text that was escaped, minus what XML forbids.
    let file = dir.path().join("failed-at-verify.xml");
    let names = xpath(
        &file,
        "string(//testcase[failure/@type='assertion'][1]/@name)",
    );
    assert_eq!(names, "orders <script>alert('x')</script> & \"seeded\"");
    let message = xpath(&file, "string(//testcase[@name='verify']/failure/@message)");
    assert_eq!(
        message,
        "stage verify: 2 assertions failed, 1 fingerprint mismatch"
    );
}

/// The tags of an HTML document nest properly: every element opened is closed in order,
/// void elements and self-closed (SVG) elements excepted. Returns the first problem.
fn check_well_formed(page: &str) -> Result<(), String> {
    const VOID: [&str; 14] = [
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr",
    ];
    let mut open: Vec<String> = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        if rest.starts_with("!--") {
            let end = rest.find("-->").ok_or("unclosed comment")?;
            rest = &rest[end + 3..];
            continue;
        }
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            match open.pop() {
                Some(o) if o == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            return Err(format!("not a tag: <{tag}>"));
        }
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        if name == "style" || name == "script" || name == "title" {
            // Raw text up to the closing tag.
            let close = format!("</{name}>");
            let end = rest.find(&close).ok_or(format!("unclosed <{name}>"))?;
            rest = &rest[end + close.len()..];
            continue;
        }
        open.push(name);
    }
    if open.is_empty() {
        Ok(())
    } else {
        Err(format!("left open: {open:?}"))
    }
}

#[test]
fn html_pages_are_well_formed_and_hold_no_script() {
    let dir = tempfile::tempdir().unwrap();
    for (name, report, _) in samples() {
        let page = html_page(&report);
        assert!(page.starts_with("<!DOCTYPE html>"), "{name}");
        assert!(
            !page.to_ascii_lowercase().contains("<script"),
            "{name}: {page}"
        );
        assert!(
            !page.contains('\u{1}'),
            "{name}: a control character survived"
        );
        assert_eq!(
            page.matches("<svg").count(),
            page.matches("</svg>").count(),
            "{name}: every <svg> is closed"
        );
        if let Err(e) = check_well_formed(&page) {
            panic!("{name}: {e}\n{page}");
        }
        // The timeline stands alone as an XML document (a dashboard embeds it).
        let svg = stage_timeline_svg(&report);
        assert!(
            page.contains(&svg),
            "{name}: the page embeds the same timeline"
        );
        let file = dir.path().join(format!("{name}.svg"));
        std::fs::write(&file, &svg).unwrap();
        run_xmllint(&["--noout"], &file);
        assert_eq!(
            svg.matches("<g class=\"stage ").count(),
            report.stages.len(),
            "{name}: a row per stage"
        );
    }
    // The checker itself notices what it is meant to notice.
    assert!(check_well_formed("<div><svg><g></svg></div>").is_err());
    assert!(check_well_formed("<p><br><rect/></p>").is_ok());
}
