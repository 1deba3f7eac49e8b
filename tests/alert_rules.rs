//! The Prometheus alert rules shipped in `deploy/` agree with the paging rule of the code
//! (`RunStatus::page`): a run that pages critical raises `FiredrillBackupBroken`, one that
//! pages a warning `FiredrillDrillCannotRun`, and one that pages nobody raises nothing.
//! `tests/prometheus/rules.test.yml` feeds `promtool test rules` (Debian's `prometheus`
//! package) one drill per run status; this test checks that file's expectations against
//! the code for every status, then has promtool hold the rules to them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use firedrill::status::{RunStatus, Severity};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The alert each drill `d-<status>` is expected to raise in the promtool test file, and
/// the statuses it feeds.
fn expectations(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut alerts = BTreeMap::new();
    let mut fed = Vec::new();
    let mut alertname = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname:") {
            alertname = name.trim().to_string();
        } else if let Some(drill) = line.strip_prefix("drill: d-") {
            alerts.insert(drill.trim().to_string(), alertname.clone());
        } else if let Some(series) = line.strip_prefix("- series: 'firedrill_last_run_outcome{") {
            // `drill="d-X",outcome="X"`: the drill whose last run is X.
            let label = |name: &str| {
                series
                    .split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|v| v.split('"').next())
                    .unwrap_or("")
                    .to_string()
            };
            let outcome = label("outcome");
            if label("drill") == format!("d-{outcome}") {
                fed.push(outcome);
            }
        }
    }
    (alerts, fed)
}

#[test]
fn the_promtool_expectations_are_the_paging_rule() {
    let text = std::fs::read_to_string(repo().join("tests/prometheus/rules.test.yml")).unwrap();
    let (alerts, fed) = expectations(&text);
    for status in RunStatus::ALL.iter().filter(|s| s.is_finished()) {
        let s = status.as_str();
        assert!(
            fed.iter().any(|f| f == s),
            "tests/prometheus/rules.test.yml feeds no drill whose last run is {s}"
        );
        let want = match status.page() {
            Some(Severity::Critical) => Some("FiredrillBackupBroken"),
            Some(Severity::Warning) => Some("FiredrillDrillCannotRun"),
            None => None,
        };
        assert_eq!(
            alerts.get(s).map(String::as_str),
            want,
            "a last run that is {s} pages {:?}: the promtool test must expect that alert",
            status.page()
        );
    }
    // The parse above is not blind: it saw both alerts.
    assert!(alerts.values().any(|a| a == "FiredrillBackupBroken"));
    assert!(alerts.values().any(|a| a == "FiredrillDrillCannotRun"));
}

#[test]
fn promtool_holds_the_shipped_rules_to_the_paging_rule() {
    let out = Command::new("promtool")
        .args(["test", "rules", "tests/prometheus/rules.test.yml"])
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's `prometheus` package (tests/run does)"
            )
        });
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("promtool")
        .args(["check", "rules", "deploy/prometheus-rules.yml"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
