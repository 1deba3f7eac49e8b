//! Scheduler logic with paused tokio time and a fake runner: cron firing, jitter bounds,
//! no overlap, the concurrency limit, the max_age dead-man's switch.

use super::*;
use crate::config::{DaemonSettings, MainConfig};

/// What the daemon's drills reach: a source that takes `took` to fail (or until the run
/// is stopped), a local store, and a sandbox backend that is never needed. Records when
/// each run began.
struct FakeConnector {
    clock: Clock,
    took: Duration,
    store: PathBuf,
    calls: Mutex<Vec<(String, jiff::Timestamp)>>,
}

struct SlowSource(Duration);

#[async_trait::async_trait]
impl crate::engine::DumpSource for SlowSource {
    async fn start(
        &self,
        _: &crate::fingerprint::ChecksumPlan,
    ) -> Result<crate::engine::StartedDump> {
        tokio::time::sleep(self.0).await;
        Err(Error::infra("the fake source has nothing to dump").retryable(false))
    }
}

struct NoSandbox;

#[async_trait::async_trait]
impl crate::sandbox::SandboxBackend for NoSandbox {
    fn describe(&self) -> String {
        "no sandbox".into()
    }
    async fn check_image(&self, _: &str, _: &str) -> Result<String> {
        Err(Error::infra("no sandbox"))
    }
    async fn provision(
        &self,
        _: &crate::sandbox::SandboxRequest,
    ) -> Result<crate::sandbox::Sandbox> {
        Err(Error::infra("no sandbox"))
    }
    async fn exec(
        &self,
        _: &crate::sandbox::Sandbox,
        _: &[String],
        _: Option<crate::sandbox::ExecStdin>,
    ) -> Result<crate::sandbox::ExecOutput> {
        Err(Error::infra("no sandbox"))
    }
    async fn state(&self, _: &crate::sandbox::Sandbox) -> Result<crate::sandbox::SandboxState> {
        Err(Error::infra("no sandbox"))
    }
    async fn destroy(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn reap(&self, _: jiff::Timestamp, _: bool) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

impl Connector for FakeConnector {
    fn connect(&self, drill: &Drill) -> Result<crate::drill::Parts> {
        self.calls
            .lock()
            .unwrap()
            .push((drill.name.clone(), self.clock.now()));
        let (identity, recipient) = crate::age_keys::generate_identity();
        Ok(crate::drill::Parts {
            source: Box::new(SlowSource(self.took)),
            store: Arc::new(crate::store::OpendalStore::local(&self.store)?),
            sandbox: Arc::new(NoSandbox),
            recipients: crate::age_keys::load_recipients(&[recipient], None)?,
            identity: crate::secret::Secret::new(identity),
            repo: None,
        })
    }
}

impl FakeConnector {
    fn calls(&self) -> Vec<(String, jiff::Timestamp)> {
        self.calls.lock().unwrap().clone()
    }
}

fn drill_file(dir: &Path, name: &str, schedule: &str) {
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "[source]\ntype = \"postgres\"\ndatabase = \"x\"\nuser = \"u\"\n[storage]\ntype = \"local\"\npath = \"store\"\n\
             [encryption]\nrecipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\nidentity = {{ file = \"id\" }}\n\
             [schedule]\n{schedule}\n"
        ),
    )
    .unwrap();
}

fn setup(
    dir: &Path,
    max_concurrent: usize,
    took: Duration,
    clock: Clock,
) -> (Arc<Daemon>, Arc<FakeConnector>) {
    let config = MainConfig {
        file: None,
        base_dir: dir.to_path_buf(),
        catalog: Some(dir.join("catalog.db")),
        drills_dir: Some(dir.join("drills")),
        notify: crate::notify::validate(
            &toml::from_str("[[channel]]\nname = \"am\"\ntype = \"alertmanager\"\nurls = [\"http://127.0.0.1:9\"]\n").unwrap(),
        )
        .unwrap(),
        daemon: DaemonSettings {
            max_concurrent_drills: max_concurrent,
            ..Default::default()
        },
        ..Default::default()
    };
    let runner = Arc::new(FakeConnector {
        clock,
        took,
        store: dir.join("store"),
        calls: Mutex::new(Vec::new()),
    });
    let d = Daemon::new(config, runner.clone(), Stop::new()).unwrap();
    // The heartbeat, as `daemon::run` starts it: a daemon claims firings while in touch.
    tokio::spawn(d.leases.clone().keep(d.catalog.clone(), Stop::new()));
    (d, runner)
}

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

/// Moves the paused clock by sleeping: tokio advances it only when every task is idle and
/// no blocking task (the catalog's) is in flight, so spawned work keeps up.
async fn advance(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn cron_fires_on_time_and_jitter_stays_in_bounds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drills")).unwrap();
    drill_file(
        &dir.path().join("drills"),
        "a",
        "cron = \"*/5 * * * *\"\njitter = \"90s\"",
    );
    let clock = Clock::start_at(t("2026-01-01T00:01:00Z"));
    let (d, runner) = setup(dir.path(), 2, Duration::from_secs(10), clock);
    tokio::spawn(d.clone().schedule_loop(clock));
    for _ in 0..32 {
        advance(Duration::from_secs(60)).await;
    }
    let calls = runner.calls();
    // 00:05 … 00:30: six firings.
    assert_eq!(calls.len(), 6, "{calls:?}");
    // Each run's report keeps when its schedule fired, oldest first.
    let mut scheduled: Vec<Option<jiff::Timestamp>> = d
        .catalog
        .runs(Some("a"), 10)
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|r| {
            serde_json::from_str::<RunReport>(r.report.as_deref().unwrap())
                .unwrap()
                .scheduled_for
        })
        .collect();
    scheduled.truncate(calls.len());
    for (i, (_, at)) in calls.iter().enumerate() {
        let fire = t("2026-01-01T00:05:00Z").as_second() + 300 * i as i64;
        let late = at.as_second() - fire;
        assert!(
            (0..=90 + 60).contains(&late),
            "run {i} at {at}, {late}s after {fire}"
        );
        // The run knows when its (jittered) schedule fired, and started then.
        let when = scheduled[i].expect("a scheduled run carries its firing time");
        assert!((0..=90).contains(&(when.as_second() - fire)), "{when}");
        assert!(
            (0..=1).contains(&(at.as_second() - when.as_second())),
            "{when} {at}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_drill_never_overlaps_itself() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drills")).unwrap();
    drill_file(&dir.path().join("drills"), "slow", "cron = \"*/5 * * * *\"");
    let clock = Clock::start_at(t("2026-01-01T00:01:00Z"));
    // Each run takes 7 minutes: the 00:10 firing finds 00:05's still running.
    let (d, runner) = setup(dir.path(), 2, Duration::from_secs(420), clock);
    tokio::spawn(d.clone().schedule_loop(clock));
    for _ in 0..16 {
        advance(Duration::from_secs(60)).await;
    }
    let calls: Vec<i64> = runner
        .calls()
        .iter()
        .map(|(_, at)| at.as_second())
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], t("2026-01-01T00:05:00Z").as_second());
    assert_eq!(calls[1], t("2026-01-01T00:15:00Z").as_second());
    assert!(matches!(
        d.start_run("slow", RunOptions::default(), "test").await,
        Err(StartError::AlreadyRunning { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_queues_drills_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drills")).unwrap();
    for n in ["a", "b", "c"] {
        drill_file(&dir.path().join("drills"), n, "");
    }
    let clock = Clock::start_at(t("2026-01-01T00:00:00Z"));
    let (d, runner) = setup(dir.path(), 1, Duration::from_secs(120), clock);
    for n in ["a", "b", "c"] {
        d.start_run(n, RunOptions::default(), "test").await.unwrap();
    }
    advance(Duration::from_secs(1)).await;
    assert_eq!(runner.calls().len(), 1);
    assert_eq!(d.queue_depth(), 2);
    // Queued runs are not running (firedrill_drills_running).
    assert_eq!(d.running(), 1);
    for _ in 0..7 {
        advance(Duration::from_secs(60)).await;
    }
    let calls: Vec<(String, i64)> = runner
        .calls()
        .iter()
        .map(|(n, at)| {
            (
                n.clone(),
                at.as_second() - t("2026-01-01T00:00:00Z").as_second(),
            )
        })
        .collect();
    assert_eq!(
        calls.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert!(calls[1].1 >= 120 && calls[2].1 >= 240, "{calls:?}");
    assert_eq!(d.queue_depth(), 0);
}

#[tokio::test]
async fn a_missed_schedule_pages_once_through_max_age() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drills")).unwrap();
    // A schedule that will not fire for a long time: only the dead-man's switch notices.
    drill_file(
        &dir.path().join("drills"),
        "rpo",
        "cron = \"0 3 1 1 *\"\nmax_age = \"1h\"",
    );
    let clock = Clock::system();
    let (d, _) = setup(dir.path(), 1, Duration::from_secs(1), clock);
    let now = d.started_at;
    assert_eq!(
        d.check_objectives(now).await.unwrap(),
        0,
        "a fresh daemon gives the drill max_age first"
    );
    let later = now
        .checked_add(jiff::SignedDuration::from_hours(2))
        .unwrap();
    assert_eq!(d.check_objectives(later).await.unwrap(), 1);
    assert_eq!(
        d.check_objectives(later).await.unwrap(),
        0,
        "one incident, paged once"
    );
    let queued = d.catalog.outbox(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert!(
        queued[0].payload.contains("has never passed"),
        "{}",
        queued[0].payload
    );
}

#[tokio::test]
async fn an_alertmanager_webhook_starts_the_labelled_drill_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drills")).unwrap();
    drill_file(&dir.path().join("drills"), "db1", "");
    let (d, runner) = setup(dir.path(), 2, Duration::from_millis(10), Clock::system());
    let payload: AlertmanagerWebhook = serde_json::from_str(
        r#"{"version":"4","groupKey":"{}:{alertname=\"Failover\"}","status":"firing","receiver":"firedrill",
            "groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am:9093","truncatedAlerts":0,
            "alerts":[
              {"status":"firing","labels":{"alertname":"PostgresFailover","firedrill_drill":"db1"},"annotations":{},"startsAt":"2026-11-26T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"a"},
              {"status":"firing","labels":{"alertname":"Other"},"annotations":{},"startsAt":"2026-11-26T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"b"},
              {"status":"resolved","labels":{"alertname":"Old","firedrill_drill":"db1"},"annotations":{},"startsAt":"2026-11-26T10:00:00Z","endsAt":"2026-11-26T10:05:00Z","generatorURL":"","fingerprint":"c"},
              {"status":"firing","labels":{"alertname":"X","firedrill_drill":"nope"},"annotations":{},"startsAt":"2026-11-26T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"d"}
            ]}"#,
    )
    .unwrap();
    let (started, skipped) = d
        .alert_hook(
            &payload,
            &crate::access::Actor::new(crate::access::ActorKind::Alert, "test"),
        )
        .await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].0, "db1");
    assert_eq!(
        skipped,
        vec![("nope".to_string(), "no such drill".to_string())]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(runner.calls().len(), 1);
    let (again, skipped) = d
        .alert_hook(
            &payload,
            &crate::access::Actor::new(crate::access::ActorKind::Alert, "test"),
        )
        .await;
    assert!(again.is_empty());
    assert!(skipped[0].1.contains("hook_interval"));
}

/// Alerts naming drills that do not exist are remembered nowhere: 100,000 made-up names
/// leave the hook's bookkeeping empty. Finished runs leave memory after `runs_kept`.
#[tokio::test]
async fn hook_bookkeeping_and_finished_runs_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drills")).unwrap();
    drill_file(&dir.path().join("drills"), "db1", "");
    let (d, runner) = setup(dir.path(), 2, Duration::from_millis(10), Clock::system());
    let alerts: Vec<WebhookAlert> = (0..100_000)
        .map(|i| WebhookAlert {
            status: "firing".into(),
            labels: BTreeMap::from([("firedrill_drill".to_string(), format!("made-up-{i}"))]),
        })
        .collect();
    let (started, skipped) = d
        .alert_hook(
            &AlertmanagerWebhook { alerts },
            &crate::access::Actor::new(crate::access::ActorKind::Alert, "test"),
        )
        .await;
    assert!(started.is_empty());
    assert_eq!(skipped.len(), 100_000);
    assert!(
        d.last_hook.lock().unwrap().is_empty(),
        "unknown names are not kept"
    );

    // A run finishes; a day later the daemon forgets it (the catalog keeps it).
    let id = d
        .start_run("db1", RunOptions::default(), "test")
        .await
        .unwrap();
    for _ in 0..200 {
        if d.run_view(&id).is_some_and(|v| v.3.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(runner.calls().len(), 1);
    assert_eq!(d.runs_held(), 1);
    d.forget_old(jiff::Timestamp::now());
    assert_eq!(d.runs_held(), 1, "kept within daemon.runs_kept");
    let later = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(25))
        .unwrap();
    d.forget_old(later);
    assert_eq!(d.runs_held(), 0);
    assert!(d.catalog.run(&id).await.unwrap().is_some());
}
