//! Paging against real receivers: an SMTP server (aiosmtpd), a Prometheus Alertmanager,
//! and a local HTTP receiver standing in for webhook endpoints, Slack and PagerDuty.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use firedrill::catalog::{Catalog, SqliteCatalog};
use firedrill::notify::{self, NotifyConfig};
use firedrill::report::{ErrorReport, RunReport, Stage};
use firedrill::Verdict;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use support::*;

fn report(drill: &str, verdict: Verdict, n: i64) -> RunReport {
    let ts = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(n))
        .unwrap();
    RunReport {
        verdict,
        exit_code: verdict.exit_code(),
        failed_stage: (verdict != Verdict::Passed).then_some(Stage::Verify),
        error: (verdict != Verdict::Passed).then(|| ErrorReport {
            kind: firedrill::ErrorKind::Verification,
            message: "assertion `orders exist` failed: expected >= 1000, got 3".into(),
            hint: Some("the restored data differs from what the drill asserts".into()),
            retryable: false,
            stderr_tail: Some("psql: some tool output".into()),
        }),
        ..RunReport::empty(drill, &format!("run-{n}"), ts)
    }
}

fn spec(toml_text: &str) -> notify::NotifySpec {
    let cfg: NotifyConfig = toml::from_str(toml_text).unwrap();
    notify::validate(&cfg).unwrap_or_else(|p| panic!("{p:?}"))
}

fn mails(maildir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(maildir.join(sub)) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

/// A whole failing drill through the CLI: the mail names the stage and the hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_drill_mails_a_human_through_a_real_smtp_server() {
    let port: u16 = std::env::var("FIREDRILL_TEST_SMTP_PORT")
        .expect("run tests/run")
        .parse()
        .unwrap();
    let maildir = std::path::PathBuf::from(std::env::var("FIREDRILL_TEST_SMTP_MAILDIR").unwrap());
    create_db("fd_page_mail", SHOP).await;
    let fx = Fixture::new();
    let drill = fx.drill(
        "pagemail",
        "fd_page_mail",
        "[[assertion]]\nname = \"a million customers\"\nsql = \"select count(*) from customers\"\nexpect = \">= 1000000\"\n",
    );
    let to = format!(
        "oncall-{}-{}@example.com",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    );
    let cfg = fx.dir.path().join("firedrill.toml");
    std::fs::write(
        &cfg,
        format!(
            "[notify]\nbase_url = \"https://firedrill.example.com\"\n[[notify.channel]]\nname = \"oncall\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"firedrill@example.com\"\nto = [\"{to}\"]\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .arg("--config")
        .arg(&cfg)
        .arg("--catalog")
        .arg(fx.dir.path().join("catalog.db"))
        .arg("run")
        .arg(&drill)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Quoted-printable folds long lines: unfold before reading.
    let mine: Vec<String> = mails(&maildir)
        .into_iter()
        .filter(|m| m.contains(&to))
        .map(|m| m.replace("=\n", "").replace("=3D", "="))
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    let m = &mine[0];
    assert!(m.contains("drill pagemail failed at verify"), "{m}");
    assert!(m.contains("a million customers"), "{m}");
    assert!(m.contains("hint:"), "{m}");
    assert!(m.contains("https://firedrill.example.com/runs/"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_shows_the_alert_active_then_resolved() {
    let am = std::env::var("FIREDRILL_TEST_ALERTMANAGER_URL").expect("run tests/run");
    let dir = tempfile::tempdir().unwrap();
    let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
    let s = spec(&format!(
        "[[channel]]\nname = \"am\"\ntype = \"alertmanager\"\nurls = [\"{am}\"]\n"
    ));
    let n = notify::build_notifiers(&s, dir.path()).unwrap();
    let drill = format!("amdrill{}", std::process::id());
    let alerts = |active: bool| {
        let am = am.clone();
        let drill = drill.clone();
        async move {
            let v: serde_json::Value = reqwest::get(format!(
                "{am}/api/v2/alerts?active={active}&inhibited=true&silenced=true&unprocessed=true&filter=drill%3D%22{drill}%22"
            ))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            v.as_array().unwrap().clone()
        }
    };
    notify::on_run_finished(&c, &s, &report(&drill, Verdict::Failed, 0))
        .await
        .unwrap();
    assert_eq!(notify::deliver_due(&c, &s, &n).await.unwrap().sent, 1);
    let firing = alerts(true).await;
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(firing[0]["labels"]["severity"], "critical");
    assert_eq!(firing[0]["labels"]["stage"], "verify");
    assert_eq!(firing[0]["status"]["state"], "active");

    notify::on_run_finished(&c, &s, &report(&drill, Verdict::Passed, 60))
        .await
        .unwrap();
    assert_eq!(notify::deliver_due(&c, &s, &n).await.unwrap().sent, 1);
    assert!(
        alerts(true).await.is_empty(),
        "still active after the resolve"
    );
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>);

async fn receiver() -> (String, Received) {
    use axum::routing::post;
    let got = Received::default();
    let app = axum::Router::new().route(
        "/{*path}",
        post({
            let got = got.clone();
            move |axum::extract::Path(path): axum::extract::Path<String>,
                  headers: HeaderMap,
                  body: Bytes| {
                let got = got.clone();
                async move {
                    got.0.lock().unwrap().push((path.clone(), headers, body));
                    if path == "fail" {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                    } else {
                        (axum::http::StatusCode::ACCEPTED, "ok")
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_signatures_and_the_slack_and_pagerduty_shapes() {
    let (base, got) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.secret"), "s3cr3t-hook\n").unwrap();
    std::fs::write(dir.path().join("pd.key"), "R0UTINGKEY\n").unwrap();
    std::fs::write(dir.path().join("slack.url"), format!("{base}/slack\n")).unwrap();
    let s = spec(&format!(
        r#"
[[channel]]
name = "hook"
type = "webhook"
url = "{base}/hook"
secret = {{ file = "hook.secret" }}
headers = {{ "X-Team" = "dba" }}

[[channel]]
name = "slack"
type = "slack"
webhook_url = {{ file = "slack.url" }}

[[channel]]
name = "pd"
type = "pagerduty"
routing_key = {{ file = "pd.key" }}
events_url = "{base}/pd"
"#
    ));
    let n = notify::build_notifiers(&s, dir.path()).unwrap();
    let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
    // Three failures in a row page once; the pass resolves.
    for i in 0..3 {
        notify::on_run_finished(&c, &s, &report("hooked", Verdict::Failed, i))
            .await
            .unwrap();
        notify::deliver_due(&c, &s, &n).await.unwrap();
    }
    notify::on_run_finished(&c, &s, &report("hooked", Verdict::Passed, 10))
        .await
        .unwrap();
    notify::deliver_due(&c, &s, &n).await.unwrap();

    let got = got.0.lock().unwrap().clone();
    let by = |p: &str| -> Vec<(HeaderMap, serde_json::Value)> {
        got.iter()
            .filter(|(path, _, _)| path == p)
            .map(|(_, h, b)| (h.clone(), serde_json::from_slice(b).unwrap()))
            .collect()
    };
    // Webhook: trigger then resolve, each signed over "<t>.<body>".
    let hooks: Vec<_> = got.iter().filter(|(p, _, _)| p == "hook").collect();
    assert_eq!(hooks.len(), 2);
    for (_, h, body) in &hooks {
        let sig = h["x-firedrill-signature"].to_str().unwrap();
        let (t, v1) = sig.split_once(",v1=").unwrap();
        let t = t.strip_prefix("t=").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t-hook").unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        assert_eq!(hex::encode(mac.finalize().into_bytes()), v1);
        assert!((jiff::Timestamp::now().as_second() - t.parse::<i64>().unwrap()).abs() < 300);
        assert_eq!(h["x-team"], "dba");
    }
    let first: serde_json::Value = serde_json::from_slice(&hooks[0].2).unwrap();
    assert_eq!(first["schema"], "firedrill.page.v1");
    assert_eq!(first["kind"], "trigger");
    assert_eq!(first["stage"], "verify");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&hooks[1].2).unwrap()["kind"],
        "resolve"
    );

    // PagerDuty: trigger then resolve with the same dedup_key.
    let pd = by("pd");
    assert_eq!(pd.len(), 2);
    assert_eq!(pd[0].1["event_action"], "trigger");
    assert_eq!(pd[0].1["routing_key"], "R0UTINGKEY");
    assert_eq!(pd[0].1["payload"]["severity"], "critical");
    assert_eq!(pd[0].1["payload"]["source"], "firedrill");
    assert_eq!(pd[1].1["event_action"], "resolve");
    assert_eq!(pd[0].1["dedup_key"], pd[1].1["dedup_key"]);

    // Slack: Block Kit with a header and the error.
    let slack = by("slack");
    assert_eq!(slack.len(), 2);
    assert_eq!(slack[0].1["blocks"][0]["type"], "header");
    assert!(slack[0]
        .1
        .to_string()
        .contains("assertion `orders exist` failed"));
}

/// SMTP down when the drill fails: the mail is kept and arrives once the server is back,
/// even from a new firedrill process (a new catalog handle and new channels).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_while_smtp_is_down_arrives_after_it_returns_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = format!(
        "[[channel]]\nname = \"mail\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"firedrill@example.com\"\nto = [\"oncall@example.com\"]\n"
    );
    let s = spec(&cfg);
    let db = dir.path().join("c.db");
    {
        let c = SqliteCatalog::open(&db).unwrap();
        let n = notify::build_notifiers(&s, dir.path()).unwrap();
        notify::on_run_finished(&c, &s, &report("smtpdown", Verdict::Failed, 0))
            .await
            .unwrap();
        let d = notify::deliver_due(&c, &s, &n).await.unwrap();
        assert_eq!((d.sent, d.retrying), (0, 1));
        assert_eq!(
            c.outbox(5).await.unwrap()[0].state,
            firedrill::status::OutboxState::Pending
        );
    }
    // The server comes up; "firedrill" restarts.
    let sdir = dir.path().join("smtp");
    let up = std::process::Command::new("bash")
        .arg("-c")
        .arg("set -e; . deploy/host-setup.sh; fd_start_smtp \"$1\" \"$2\"")
        .arg("bash")
        .arg(&sdir)
        .arg(port.to_string())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(up.success());
    let c = SqliteCatalog::open(&db).unwrap();
    let n = notify::build_notifiers(&s, dir.path()).unwrap();
    let later = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_mins(5))
        .unwrap();
    let d = notify::deliver_due_at(&c, &s, &n, later).await.unwrap();
    let _ = std::process::Command::new("bash")
        .arg("-c")
        .arg(". deploy/host-setup.sh; fd_stop_pidfile \"$1/smtp.pid\"")
        .arg("bash")
        .arg(&sdir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
    assert_eq!(d.sent, 1);
    let m = mails(&sdir.join("maildir"));
    assert_eq!(m.len(), 1);
    assert!(m[0].contains("drill smtpdown failed at verify"));
}

/// A provision that fails once (Docker hiccup) and succeeds on retry: the drill passes
/// and nobody is paged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_provision_that_succeeds_on_retry_pages_nobody() {
    use firedrill::sandbox::{
        ExecOutput, ExecStdin, Sandbox, SandboxBackend, SandboxRequest, SandboxState,
    };
    struct FlakyOnce {
        inner: Arc<dyn SandboxBackend>,
        failed: Mutex<bool>,
    }
    #[async_trait::async_trait]
    impl SandboxBackend for FlakyOnce {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn check_image(&self, i: &str, h: &str) -> firedrill::Result<String> {
            self.inner.check_image(i, h).await
        }
        async fn provision(&self, req: &SandboxRequest) -> firedrill::Result<Sandbox> {
            let first = !std::mem::replace(&mut *self.failed.lock().unwrap(), true);
            if first {
                return Err(
                    firedrill::Error::infra("Docker answered 500: simulated hiccup")
                        .retryable(true),
                );
            }
            self.inner.provision(req).await
        }
        async fn exec(
            &self,
            s: &Sandbox,
            cmd: &[String],
            stdin: Option<ExecStdin>,
        ) -> firedrill::Result<ExecOutput> {
            self.inner.exec(s, cmd, stdin).await
        }
        async fn state(&self, s: &Sandbox) -> firedrill::Result<SandboxState> {
            self.inner.state(s).await
        }
        async fn destroy(&self, run: &str) -> firedrill::Result<()> {
            self.inner.destroy(run).await
        }
        async fn reap(&self, now: jiff::Timestamp, all: bool) -> firedrill::Result<Vec<String>> {
            self.inner.reap(now, all).await
        }
    }
    create_db("fd_flaky", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill(
        "flaky",
        "fd_flaky",
        "[retry]\nattempts = 3\nbackoff = \"200ms\"\n",
    );
    let drill = firedrill::load_drill(&path).unwrap();
    /// The live parts, with a sandbox backend that hiccups once.
    struct Flaky;
    impl firedrill::Connector for Flaky {
        fn connect(&self, d: &firedrill::Drill) -> firedrill::Result<firedrill::drill::Parts> {
            let mut parts = firedrill::LiveConnector.connect(d)?;
            parts.sandbox = Arc::new(FlakyOnce {
                inner: parts.sandbox.clone(),
                failed: Mutex::new(false),
            });
            Ok(parts)
        }
    }
    let runner = firedrill::Runner {
        connector: Arc::new(Flaky),
        catalog: None,
        reports: None,
        pager: None,
        leases: None,
    };
    let r = runner
        .run(
            &drill,
            &firedrill::RunOptions::default(),
            &firedrill::Silent,
            &firedrill::Stop::new(),
        )
        .await
        .report;
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert_eq!(stage(&r, Stage::Provision).attempts, 2);
    let c = SqliteCatalog::open(&fx.dir.path().join("c.db")).unwrap();
    let s = spec(
        "[[channel]]\nname = \"am\"\ntype = \"alertmanager\"\nurls = [\"http://127.0.0.1:9\"]\n",
    );
    assert_eq!(notify::on_run_finished(&c, &s, &r).await.unwrap(), 0);
    assert!(c.outbox(5).await.unwrap().is_empty());
    assert!(leftovers(&r.run_id).await.is_empty());
    let _: BTreeMap<(), ()> = BTreeMap::new();
}
