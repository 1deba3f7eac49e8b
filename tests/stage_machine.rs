//! The stage machine's failure table: every stage × {fails, times out, is cancelled by
//! the operator, loses its infrastructure once, loses it for good, a sibling fails}, run
//! through the CLI's path ([`Runner::run`], as `firedrill run` does) and the daemon's
//! ([`Daemon::start_run`]) over in-memory fakes of the source, the store and the sandbox
//! (`support/fakes.rs`). For each cell: the run's status, verdict and exit code, the
//! stage's outcome and attempts, that no sandbox is left (or that one is, when its removal
//! is what failed), and exactly which page was queued, or none. No Docker, no database.
//!
//! Cells that cannot happen are left out, with the reason: the encryption has no
//! infrastructure to lose (it runs in firedrill's own process); the stages in the sandbox
//! and the teardown have no sibling running beside them (dump, encrypt and upload run at
//! once, as one stream).

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use firedrill::catalog::{Catalog, SqliteCatalog};
use firedrill::config::notify::NotifySpec;
use firedrill::config::MainConfig;
use firedrill::daemon::Daemon;
use firedrill::notify::Pager;
use firedrill::status::{Outcome, RunStatus, Severity, Verdict};
use firedrill::{RunOptions, RunReport, Runner, Silent, Stage, Stop, StopReason};
use support::fakes::{FakeConnector, Fault, Script, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Fails,
    TimesOut,
    Cancelled,
    LosesInfraOnce,
    LosesInfraForGood,
    SiblingFails,
}

/// What a cell must come to.
#[derive(Debug, Clone, Copy)]
struct Expect {
    status: RunStatus,
    outcome: Outcome,
    /// How many times the stage ran, where that is the point.
    attempts: Option<u32>,
    page: Option<Severity>,
    /// The sandbox is left behind (its removal is what failed).
    left: bool,
}

const fn expect(status: RunStatus, outcome: Outcome, page: Option<Severity>) -> Expect {
    Expect {
        status,
        outcome,
        attempts: None,
        page,
        left: false,
    }
}

const CRIT: Option<Severity> = Some(Severity::Critical);
const WARN: Option<Severity> = Some(Severity::Warning);

/// The table. Written out, not derived: each line is a promise.
fn table() -> Vec<(Stage, Case, Expect)> {
    use Case::*;
    use Outcome as O;
    use RunStatus as S;
    use Stage::*;
    let tries = |e: Expect, n: u32| Expect {
        attempts: Some(n),
        ..e
    };
    vec![
        // The dump tool fails: no backup can be taken, which is a broken backup.
        (Dump, Fails, expect(S::Failed, O::Failed, CRIT)),
        (Dump, TimesOut, expect(S::Error, O::TimedOut, WARN)),
        (Dump, Cancelled, expect(S::Cancelled, O::Cancelled, None)),
        // The source drops the dump's connection once: taken again, nobody paged.
        (
            Dump,
            LosesInfraOnce,
            tries(expect(S::Passed, O::Passed, None), 2),
        ),
        (
            Dump,
            LosesInfraForGood,
            tries(expect(S::Error, O::Failed, WARN), 3),
        ),
        // The store fills during the upload: the dump stops, the run pages a warning.
        (Dump, SiblingFails, expect(S::Error, O::Stopped, WARN)),
        (Encrypt, Fails, expect(S::Error, O::Failed, WARN)),
        (Encrypt, TimesOut, expect(S::Error, O::TimedOut, WARN)),
        (Encrypt, Cancelled, expect(S::Cancelled, O::Cancelled, None)),
        // The dump fails: the encryption stops, the dump's failure is the run's.
        (Encrypt, SiblingFails, expect(S::Failed, O::Stopped, CRIT)),
        // The store is full: an infrastructure failure that a retry cannot mend.
        (Upload, Fails, expect(S::Error, O::Failed, WARN)),
        (Upload, TimesOut, expect(S::Error, O::TimedOut, WARN)),
        (Upload, Cancelled, expect(S::Cancelled, O::Cancelled, None)),
        (
            Upload,
            LosesInfraOnce,
            tries(expect(S::Passed, O::Passed, None), 2),
        ),
        (
            Upload,
            LosesInfraForGood,
            tries(expect(S::Error, O::Failed, WARN), 3),
        ),
        (Upload, SiblingFails, expect(S::Failed, O::Stopped, CRIT)),
        // The sandbox image is missing.
        (Provision, Fails, expect(S::Error, O::Failed, WARN)),
        (Provision, TimesOut, expect(S::Error, O::TimedOut, WARN)),
        (
            Provision,
            Cancelled,
            expect(S::Cancelled, O::Cancelled, None),
        ),
        (
            Provision,
            LosesInfraOnce,
            tries(expect(S::Passed, O::Passed, None), 2),
        ),
        (
            Provision,
            LosesInfraForGood,
            tries(expect(S::Error, O::Failed, WARN), 3),
        ),
        // pg_restore fails: the backup does not restore.
        (Restore, Fails, expect(S::Failed, O::Failed, CRIT)),
        (Restore, TimesOut, expect(S::Error, O::TimedOut, WARN)),
        (Restore, Cancelled, expect(S::Cancelled, O::Cancelled, None)),
        // Docker restarts during the restore: a fresh sandbox, nobody paged.
        (
            Restore,
            LosesInfraOnce,
            tries(expect(S::Passed, O::Passed, None), 2),
        ),
        (
            Restore,
            LosesInfraForGood,
            tries(expect(S::Error, O::Failed, WARN), 3),
        ),
        // The restored data does not match the dump.
        (Verify, Fails, expect(S::Failed, O::Failed, CRIT)),
        (Verify, TimesOut, expect(S::Error, O::TimedOut, WARN)),
        (Verify, Cancelled, expect(S::Cancelled, O::Cancelled, None)),
        (
            Verify,
            LosesInfraOnce,
            tries(expect(S::Passed, O::Passed, None), 2),
        ),
        (
            Verify,
            LosesInfraForGood,
            tries(expect(S::Error, O::Failed, WARN), 3),
        ),
        // The sandbox cannot be removed: the backup is fine, the host is not; a warning,
        // so that someone removes it.
        (
            Teardown,
            Fails,
            Expect {
                left: true,
                ..expect(S::Error, O::Failed, WARN)
            },
        ),
        (
            Teardown,
            TimesOut,
            Expect {
                left: true,
                ..expect(S::Error, O::TimedOut, WARN)
            },
        ),
        // A cancel during the teardown does not stop it: the sandbox goes, the run had
        // already proven the backup.
        (Teardown, Cancelled, expect(S::Passed, O::Passed, None)),
        (Teardown, LosesInfraOnce, expect(S::Passed, O::Passed, None)),
        (
            Teardown,
            LosesInfraForGood,
            Expect {
                left: true,
                ..expect(S::Error, O::Failed, WARN)
            },
        ),
    ]
}

fn name(stage: Stage, case: Case) -> String {
    format!("{stage}-{case:?}").to_lowercase()
}

/// The fault a cell scripts.
fn script(stage: Stage, case: Case) -> Script {
    match case {
        Case::Fails => Script::at(stage, Fault::Fails),
        Case::TimesOut => Script::at(stage, Fault::Hangs),
        // Cancelled while it runs: it must still be running when the cancel comes.
        Case::Cancelled if stage == Stage::Teardown => Script::at(stage, Fault::Slow),
        Case::Cancelled => Script::at(stage, Fault::Hangs),
        Case::LosesInfraOnce => Script::at(stage, Fault::FlakesOnce),
        Case::LosesInfraForGood => Script::at(stage, Fault::FlakesAlways),
        Case::SiblingFails => match stage {
            // The store fills beside a dump still running; the dump fails beside the
            // others.
            Stage::Dump => Script::at(Stage::Upload, Fault::Fails).with_slow_dump(),
            _ => Script::at(Stage::Dump, Fault::Fails),
        },
    }
}

/// Writes every cell's drill file (the fakes ignore what it says of the world; its
/// timeouts and retry policy are what the stage machine reads).
fn drills_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let drills = dir.join("drills");
    std::fs::create_dir_all(&drills).unwrap();
    let (_, recipient) = firedrill::age_keys::generate_identity();
    for (stage, case, _) in table() {
        let n = name(stage, case);
        std::fs::write(
            drills.join(format!("{n}.toml")),
            format!(
                r#"name = "{n}"
[source]
type = "postgres"
host = "127.0.0.1"
database = "shop"
user = "firedrill"

[storage]
type = "local"
path = "store"

[encryption]
recipients = ["{recipient}"]
identity = {{ file = "identity.txt" }}

[timeouts]
dump = "6s"
encrypt = "2s"
upload = "6s"
provision = "2s"
restore = "2s"
verify = "2s"
teardown = "2s"

[retry]
attempts = 3
backoff = "10ms"
"#
            ),
        )
        .unwrap();
    }
    drills
}

/// Two channels: `crit` takes critical pages, `warn` warnings. Both point nowhere, so
/// what was paged stays in the outbox to be read.
fn notify() -> NotifySpec {
    let file: firedrill::config::notify::NotifyConfig = toml::from_str(
        r#"
[[channel]]
name = "crit"
type = "alertmanager"
urls = ["http://127.0.0.1:9"]
[[channel]]
name = "warn"
type = "alertmanager"
urls = ["http://127.0.0.1:9"]
[[route]]
severity = ["critical"]
channels = ["crit"]
[[route]]
severity = ["warning"]
channels = ["warn"]
"#,
    )
    .unwrap();
    firedrill::config::notify::validate(&file).unwrap()
}

/// The pages queued for `drill`: (channel, kind, severity).
async fn pages(catalog: &dyn Catalog, drill: &str) -> Vec<(String, String, String)> {
    catalog
        .outbox(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.drill == drill)
        .map(|o| {
            let p: serde_json::Value = serde_json::from_str(&o.payload).unwrap();
            (
                o.channel,
                o.kind.to_string(),
                p["severity"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Checks one cell's run against its line of the table; returns what is wrong.
async fn check(
    path: &str,
    stage: Stage,
    case: Case,
    e: Expect,
    r: &RunReport,
    catalog: &dyn Catalog,
    world: &World,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let cell = format!("{path}: {stage} × {case:?}");
    let mut fail = |what: String| wrong.push(format!("{cell}: {what}"));
    if r.status() != e.status {
        fail(format!("status {} (want {})", r.status(), e.status));
    }
    let verdict = match e.status {
        RunStatus::Passed => Verdict::Passed,
        RunStatus::Failed => Verdict::Failed,
        _ => Verdict::Error,
    };
    if r.verdict != verdict || r.exit_code != verdict.exit_code() {
        fail(format!(
            "verdict {:?} exit {} (want {verdict:?} exit {})",
            r.verdict,
            r.exit_code,
            verdict.exit_code()
        ));
    }
    match r.stages.iter().find(|s| s.stage == stage) {
        None => fail("the stage is missing from the report".into()),
        Some(s) => {
            if s.outcome != e.outcome {
                fail(format!("stage outcome {} (want {})", s.outcome, e.outcome));
            }
            if let Some(n) = e.attempts {
                if s.attempts != n {
                    fail(format!("{} attempts (want {n})", s.attempts));
                }
            }
        }
    }
    // Every stage is in the report once, in order.
    let order: Vec<Stage> = r.stages.iter().map(|s| s.stage).collect();
    if order != Stage::ALL {
        fail(format!("stages {order:?}"));
    }
    // The run's failure is named at a stage, and a passing run names none.
    if (r.failed_stage.is_some()) != (e.status != RunStatus::Passed) {
        fail(format!("failed_stage {:?}", r.failed_stage));
    }
    let left = world.sandboxes.live().contains(&r.run_id);
    if left != e.left {
        fail(format!(
            "sandbox {} (want {})",
            if left { "left behind" } else { "removed" },
            if e.left { "left behind" } else { "removed" }
        ));
    }
    let got = pages(catalog, &r.drill).await;
    let want: Vec<(String, String, String)> = match e.page {
        None => vec![],
        Some(Severity::Critical) => vec![("crit".into(), "trigger".into(), "critical".into())],
        Some(Severity::Warning) => vec![("warn".into(), "trigger".into(), "warning".into())],
    };
    if got != want {
        fail(format!("pages {got:?} (want {want:?})"));
    }
    wrong
}

/// The CLI's path: `Runner::run`, as `firedrill run` calls it, for every cell at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_stage_and_failure_through_the_cli_path() {
    let dir = tempfile::tempdir().unwrap();
    let drills = drills_dir(dir.path());
    let (tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let world = World::new(tx);
    let catalog: Arc<dyn Catalog> =
        Arc::new(SqliteCatalog::open(&dir.path().join("catalog.db")).unwrap());
    let runner = fake_runner(&world, &catalog, dir.path());
    let mut stops: HashMap<String, (Stage, Case, Stop)> = HashMap::new();
    let mut runs = Vec::new();
    for (stage, case, e) in table() {
        let n = name(stage, case);
        world.script(&n, script(stage, case));
        let drill = firedrill::load_drill(&drills.join(format!("{n}.toml"))).unwrap();
        let stop = Stop::new();
        stops.insert(n.clone(), (stage, case, stop.clone()));
        let runner = runner.clone();
        runs.push(tokio::spawn(async move {
            let ran = runner
                .run(&drill, &RunOptions::default(), &Silent, &stop)
                .await;
            (stage, case, e, ran.report)
        }));
    }
    // An operator presses Ctrl-C in the cells that ask for it, once the stage runs.
    let canceller = tokio::spawn(async move {
        while let Some((drill, at)) = entered.recv().await {
            if let Some((stage, Case::Cancelled, stop)) = stops.get(&drill) {
                if *stage == at {
                    stop.stop(StopReason::Operator);
                }
            }
        }
    });
    let mut wrong = Vec::new();
    let t0 = std::time::Instant::now();
    for r in runs {
        let (stage, case, e, report) = tokio::time::timeout(Duration::from_secs(60), r)
            .await
            .expect("a run of the table hung")
            .unwrap();
        wrong.extend(check("cli", stage, case, e, &report, catalog.as_ref(), &world).await);
    }
    canceller.abort();
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    eprintln!("{} cells in {:?}", table().len(), t0.elapsed());
}

/// The daemon's path: the same cells started through the daemon (its runner, its
/// catalog, its pager), an operator's cancel through its API function.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_stage_and_failure_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let drills = drills_dir(dir.path());
    let (tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let world = World::new(tx);
    let config = MainConfig {
        base_dir: dir.path().to_path_buf(),
        catalog: Some(dir.path().join("catalog.db")),
        drills_dir: Some(drills),
        notify: notify(),
        daemon: firedrill::config::DaemonSettings {
            max_concurrent_drills: 100,
            ..Default::default()
        },
        ..Default::default()
    };
    let d = Daemon::new(config, Arc::new(FakeConnector(world.clone())), Stop::new()).unwrap();
    let mut ids: HashMap<String, (Stage, Case, Expect, String)> = HashMap::new();
    for (stage, case, e) in table() {
        let n = name(stage, case);
        world.script(&n, script(stage, case));
        let id = d
            .start_run(&n, RunOptions::default(), "test")
            .await
            .unwrap();
        ids.insert(n, (stage, case, e, id));
    }
    let cancel = {
        let d = d.clone();
        let ids: HashMap<String, (Stage, String)> = ids
            .iter()
            .filter(|(_, (_, c, _, _))| *c == Case::Cancelled)
            .map(|(n, (s, _, _, id))| (n.clone(), (*s, id.clone())))
            .collect();
        tokio::spawn(async move {
            while let Some((drill, at)) = entered.recv().await {
                if let Some((stage, id)) = ids.get(&drill) {
                    if *stage == at {
                        assert!(d.cancel_run(id), "{id} was not running");
                    }
                }
            }
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut wrong = Vec::new();
    for (stage, case, e, id) in ids.values() {
        let report = loop {
            if let Some((_, _, _, Some(r))) = d.run_view(id) {
                break r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run {id} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The catalog holds the same status as the report.
        let rec = d.catalog.run(id).await.unwrap().unwrap();
        if rec.status != report.status() {
            wrong.push(format!("daemon: {id}: catalog says {}", rec.status));
        }
        wrong.extend(
            check(
                "daemon",
                *stage,
                *case,
                *e,
                &report,
                d.catalog.as_ref(),
                &world,
            )
            .await,
        );
    }
    cancel.abort();
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// The fingerprint is read beside the dump, in its snapshot: when that reading fails, the
/// dump stage fails with its error (also when the dump tool failed too, since a failed
/// reading can end the snapshot the tool was importing), pages, and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fingerprint_that_fails_beside_the_dump_fails_the_dump_stage() {
    let dir = tempfile::tempdir().unwrap();
    let drills = drills_dir(dir.path());
    let (tx, _entered) = tokio::sync::mpsc::unbounded_channel();
    let world = World::new(tx);
    let catalog: Arc<dyn Catalog> =
        Arc::new(SqliteCatalog::open(&dir.path().join("catalog.db")).unwrap());
    let runner = fake_runner(&world, &catalog, dir.path());
    // Any drill file of the table will do: the script decides what its world does.
    let (stage, case, _) = table()[0];
    let n = name(stage, case);
    let drill = firedrill::load_drill(&drills.join(format!("{n}.toml"))).unwrap();
    for (script, why) in [
        (Script::default().with_failing_fingerprint(), "alone"),
        (
            Script::at(Stage::Dump, Fault::Fails).with_failing_fingerprint(),
            "with the dump tool",
        ),
    ] {
        world.script(&n, script);
        let r = runner
            .run(&drill, &RunOptions::default(), &Silent, &Stop::new())
            .await
            .report;
        assert_eq!(r.status(), RunStatus::Failed, "{why}: {r:?}");
        assert_eq!(r.failed_stage, Some(Stage::Dump), "{why}");
        let dump = r.stages.iter().find(|s| s.stage == Stage::Dump).unwrap();
        let e = dump.error.as_ref().expect("the dump stage's error");
        assert!(
            e.message.contains("the fingerprint's query failed"),
            "{why}: {}",
            e.message
        );
        let upload = r.stages.iter().find(|s| s.stage == Stage::Upload).unwrap();
        assert_ne!(upload.outcome, Outcome::Passed, "{why}");
    }
    let store = dir.path().join("store");
    let stored = support::files_under(&store);
    assert!(
        stored.iter().all(|p| !p.ends_with("manifest.json")),
        "nothing is stored: {stored:?}"
    );
    assert!(!pages(catalog.as_ref(), &n).await.is_empty(), "it paged");
}

/// The CLI's runner over the fakes, paging through [`notify`]'s channels.
fn fake_runner(world: &Arc<World>, catalog: &Arc<dyn Catalog>, dir: &std::path::Path) -> Runner {
    Runner {
        connector: Arc::new(FakeConnector(world.clone())),
        catalog: Some(catalog.clone()),
        reports: None,
        pager: Pager::new(&notify(), dir).unwrap().map(Arc::new),
        leases: None,
    }
}
