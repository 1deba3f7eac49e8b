//! The daemon binary end to end: HTTP API, server-sent events, metrics, SIGTERM mid-drill,
//! SIGKILL and recovery, against a real PostgreSQL and the real Docker engine.

mod support;

use std::time::Duration;

use firedrill::catalog::{Catalog, SqliteCatalog};
use support::*;

const TOKEN: &str = "test-token-3f9a1c";

struct Daemon {
    proc: support::daemon::DaemonProc,
    base: String,
    http: reqwest::Client,
}

impl Daemon {
    /// The daemon of `dir`'s config, listening on a port it picked.
    fn start(dir: &std::path::Path) -> Daemon {
        let proc = support::daemon::DaemonProc::start(
            &dir.join("firedrill.toml"),
            &[("FIREDRILL_TEST_API_TOKEN", TOKEN)],
        );
        Daemon {
            base: proc.base.clone(),
            proc,
            http: reqwest::Client::new(),
        }
    }

    async fn ready(&self) {
        for _ in 0..100 {
            if let Ok(r) = self.http.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the daemon did not come up");
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    /// `GET /api/v1/drills`.
    async fn drills(&self) -> serde_json::Value {
        let r = self.get("/api/v1/drills").send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    async fn start_run(&self, drill: &str) -> String {
        let r = self
            .post(&format!("/api/v1/drills/{drill}/runs"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        r.json::<serde_json::Value>().await.unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Reads the run's SSE stream until `until` returns true for an event (or it ends).
    async fn follow(
        &self,
        run_id: &str,
        mut until: impl FnMut(&str, &serde_json::Value) -> bool,
    ) -> Vec<(String, serde_json::Value)> {
        let mut resp = self
            .get(&format!("/api/v1/runs/{run_id}/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut buf = String::new();
        let mut events = Vec::new();
        while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(180), resp.chunk())
            .await
            .expect("events stalled")
        {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let name = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .unwrap_or("")
                    .to_string();
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or("null");
                if name.is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(data).unwrap();
                let stop = until(&name, &v);
                events.push((name, v));
                if stop {
                    return events;
                }
            }
        }
        events
    }

    fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }

    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let code = self.proc.wait(limit);
        assert!(
            self.proc.child.try_wait().unwrap().is_some(),
            "the daemon did not exit within {limit:?}"
        );
        code
    }
}

/// The daemon's directory: main config, one PostgreSQL drill, catalog.
fn setup(fx: &Fixture, db: &str, hook: &str) {
    let drills = fx.dir.path().join("drills");
    std::fs::create_dir_all(&drills).unwrap();
    let drill = fx.drill("dd", db, "");
    let text = std::fs::read_to_string(&drill).unwrap().replace(
        "identity = { file = \"identity.txt\" }",
        &format!("identity = {{ file = \"{}\" }}", fx.identity.display()),
    );
    std::fs::write(drills.join("dd.toml"), text).unwrap();
    std::fs::remove_file(drill).unwrap();
    std::fs::write(
        fx.dir.path().join("firedrill.toml"),
        format!(
            "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\ntoken = {{ env = \"FIREDRILL_TEST_API_TOKEN\" }}\ngrace = \"60s\"\n\n[notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n"
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_over_http_follow_events_read_the_run_and_metrics() {
    create_db("fd_daemon_api", SHOP).await;
    let fx = Fixture::new();
    let (hook, pages) = support::daemon::receiver().await;
    setup(&fx, "fd_daemon_api", &hook);
    let d = Daemon::start(fx.dir.path());
    d.ready().await;

    // Auth, limits, unknown drills.
    let r = d
        .http
        .get(format!("{}/api/v1/drills", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().is_empty());
    let r = d
        .http
        .get(format!("{}/api/v1/drills", d.base))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = d
        .post("/api/v1/drills/nope/runs")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("no drill named nope"));
    let r = d
        .post("/api/v1/drills/dd/runs")
        .body(vec![b' '; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // The refused body is left unread: the server says it closes the connection, so the
    // client's pool does not send the next request down it.
    assert_eq!(r.headers()["connection"], "close");
    // A run id that names nothing of this drill is the client's mistake: 4xx, no run
    // recorded, nobody paged.
    for (artifact, status, says) in [
        ("../other/20261101T000000Z-aaaaaa", 400, "is not a run id"),
        ("20261101T000000Z-aaaaaa", 404, "known runs: none"),
    ] {
        let r = d
            .post("/api/v1/drills/dd/runs")
            .json(&serde_json::json!({ "artifact": artifact }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{artifact}");
        let body = r.text().await.unwrap();
        assert!(body.contains(says), "{artifact}: {body}");
    }

    let run_id = d.start_run("dd").await;
    let events = d.follow(&run_id, |name, _| name == "finished").await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"queued"));
    assert_eq!(names.last(), Some(&"finished"), "{names:?}");
    assert_eq!(events.last().unwrap().1["verdict"], "passed");
    assert_eq!(names.iter().filter(|n| **n == "stage_finished").count(), 7);

    let run: serde_json::Value = d
        .get(&format!("/api/v1/runs/{run_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "passed");
    assert_eq!(run["report"]["verdict"], "passed");
    let drills = d.drills().await;
    assert_eq!(drills["drills"][0]["name"], "dd");
    assert_eq!(drills["drills"][0]["last_run"]["status"], "passed");

    let metrics = d
        .http
        .get(format!("{}/metrics", d.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("firedrill_last_run_outcome{drill=\"dd\",outcome=\"passed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("firedrill_restore_seconds{drill=\"dd\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("firedrill_stage_duration_seconds{drill=\"dd\",stage=\"restore\"}"),
        "{metrics}"
    );
    grafana_dashboard_queries_what_metrics_exports(&metrics);

    // An Alertmanager webhook, as Alertmanager sends it, starts the labelled drill.
    let payload = serde_json::json!({
        "version": "4", "groupKey": "{}:{alertname=\"PostgresFailover\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "firedrill", "groupLabels": {"alertname": "PostgresFailover"},
        "commonLabels": {"alertname": "PostgresFailover", "firedrill_drill": "dd"}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": "firing", "labels": {"alertname": "PostgresFailover", "firedrill_drill": "dd"},
                    "annotations": {}, "startsAt": "2026-11-26T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus/graph", "fingerprint": "1a2b3c"}]
    });
    let r = d
        .post("/api/v1/hooks/alertmanager")
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    let hooked = body["started"][0]["run_id"].as_str().unwrap().to_string();
    let ev = d.follow(&hooked, |n, _| n == "finished").await;
    assert_eq!(ev.last().unwrap().1["verdict"], "passed");
    assert!(leftovers(&run_id).await.is_empty());
    assert!(leftovers(&hooked).await.is_empty());
    // The good run paged nobody, and neither did the refused requests.
    assert!(
        pages.lock().unwrap().is_empty(),
        "{:?}",
        pages.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_restore_interrupts_the_run_and_removes_the_sandbox() {
    create_db("fd_daemon_term", SHOP).await;
    let fx = Fixture::new();
    let (hook, pages) = support::daemon::receiver().await;
    setup(&fx, "fd_daemon_term", &hook);
    let mut d = Daemon::start(fx.dir.path());
    d.ready().await;
    let run_id = d.start_run("dd").await;
    d.follow(&run_id, |n, v| {
        n == "stage_started" && v["stage"] == "restore"
    })
    .await;
    d.signal("TERM");
    let code = d.wait(Duration::from_secs(60));
    assert_eq!(code, Some(0));
    let c = SqliteCatalog::open(&fx.dir.path().join("catalog.db")).unwrap();
    let all = c.runs(None, 10).await.unwrap();
    let run = c
        .run(&run_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{run_id} not in {all:?}"));
    assert_eq!(run.status, firedrill::RunStatus::Interrupted, "{run:?}");
    let report: serde_json::Value =
        serde_json::from_str(run.report.as_deref().unwrap_or_else(|| panic!("{run:?}"))).unwrap();
    let restore = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "restore")
        .unwrap()
        .clone();
    assert_eq!(restore["outcome"], "interrupted");
    assert!(leftovers(&run_id).await.is_empty());
    // Our own shutdown is not an incident.
    assert!(pages.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_drill_then_restart_reaps_the_orphan_and_pages_once() {
    create_db("fd_daemon_kill", SHOP).await;
    let fx = Fixture::new();
    let (hook, pages) = support::daemon::receiver().await;
    setup(&fx, "fd_daemon_kill", &hook);
    let mut d = Daemon::start(fx.dir.path());
    d.ready().await;
    let run_id = d.start_run("dd").await;
    d.follow(&run_id, |n, v| {
        n == "stage_finished" && v["report"]["stage"] == "provision"
    })
    .await;
    d.signal("KILL");
    d.wait(Duration::from_secs(10));
    assert!(
        !leftovers(&run_id).await.is_empty(),
        "a SIGKILL leaves the sandbox behind"
    );

    let d2 = Daemon::start(fx.dir.path());
    d2.ready().await;
    assert!(
        leftovers(&run_id).await.is_empty(),
        "the restart reaps the orphan"
    );
    let c = SqliteCatalog::open(&fx.dir.path().join("catalog.db")).unwrap();
    assert_eq!(
        c.run(&run_id).await.unwrap().unwrap().status,
        firedrill::RunStatus::Lost
    );
    let got = pages.lock().unwrap().clone();
    let lost: Vec<_> = got
        .iter()
        .filter(|p| p["error"].as_str().unwrap_or("").contains("was lost"))
        .collect();
    assert_eq!(lost.len(), 1, "{got:?}");
    assert_eq!(lost[0]["kind"], "trigger");
    assert_eq!(lost[0]["drill"], "dd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_the_old_drills_when_a_file_is_invalid() {
    create_db("fd_daemon_reload", SHOP).await;
    let fx = Fixture::new();
    let (hook, _) = support::daemon::receiver().await;
    setup(&fx, "fd_daemon_reload", &hook);
    let d = Daemon::start(fx.dir.path());
    d.ready().await;
    let drills = fx.dir.path().join("drills");
    // A second valid drill appears: reload picks it up.
    std::fs::copy(drills.join("dd.toml"), drills.join("ee.toml")).unwrap();
    let r = d.post("/api/v1/reload").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let list = d.drills().await;
    assert_eq!(list["drills"].as_array().unwrap().len(), 2);
    // A broken file: refused, and the two drills keep running.
    std::fs::write(drills.join("ff.toml"), "[source]\ntype = \"postgres\"\n").unwrap();
    let r = d.post("/api/v1/reload").send().await.unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("ff.toml") && body.contains("old definitions keep running"),
        "{body}"
    );
    let list = d.drills().await;
    assert_eq!(list["drills"].as_array().unwrap().len(), 2);
    // And /metrics counts it, for an alert on a drill set that stopped reloading.
    let metrics = d
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("firedrill_reload_failures_total 1"),
        "{metrics}"
    );
    // The dashboard says so too, with the problem, until a reload succeeds.
    let dashboard = || async { d.get("/").send().await.unwrap().text().await.unwrap() };
    let page = dashboard().await;
    assert!(
        page.contains("Drills not reloaded") && page.contains("ff.toml"),
        "{page}"
    );
    // SIGHUP goes through the same path.
    std::fs::remove_file(drills.join("ff.toml")).unwrap();
    std::fs::remove_file(drills.join("ee.toml")).unwrap();
    d.signal("HUP");
    let mut n = 0;
    for _ in 0..50 {
        let list = d.drills().await;
        n = list["drills"].as_array().unwrap().len();
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 1);
    assert!(!dashboard().await.contains("Drills not reloaded"));

    // The daemon serves its listing from memory; a run another process (the CLI) records
    // in the shared catalog still shows up, within the daemon's one-second poll.
    let last_run = |list: serde_json::Value| list["drills"][0]["last_run"]["run_id"].clone();
    assert_eq!(last_run(d.drills().await), serde_json::Value::Null);
    let cli = SqliteCatalog::open(&fx.dir.path().join("catalog.db")).unwrap();
    let mut report = firedrill::report::RunReport::empty("dd", "cli-run-1", jiff::Timestamp::now());
    report.verdict = firedrill::report::Verdict::Passed;
    cli.run_finished(&report, None).await.unwrap();
    let t0 = std::time::Instant::now();
    let mut seen = serde_json::Value::Null;
    while t0.elapsed() < Duration::from_secs(10) {
        seen = last_run(d.drills().await);
        if !seen.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, "cli-run-1", "not listed after {:?}", t0.elapsed());
}

/// Slowloris and idle sockets, bounded and on loopback: 200 connections that send
/// nothing or half a request, against a daemon with a file descriptor limit of 128. The
/// daemon serves no more connections than its limit allows (and says so), closes the idle
/// and the slow ones after its timeouts, and answers once they are gone; it never runs
/// out of file descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_and_the_api_answers_under_a_low_fd_limit() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("drills")).unwrap();
    let cfg = dir.path().join("firedrill.toml");
    std::fs::write(
        &cfg,
        "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\n\
         token = { env = \"FIREDRILL_TEST_API_TOKEN\" }\nmax_connections = 500\n\
         idle_timeout = \"2s\"\nheader_timeout = \"2s\"\n",
    )
    .unwrap();
    let d = support::daemon::DaemonProc::start_with_fd_limit(
        &cfg,
        &[("FIREDRILL_TEST_API_TOKEN", TOKEN)],
        128,
    );
    let addr = d.base.trim_start_matches("http://").to_string();
    let t0 = std::time::Instant::now();
    let socks: Vec<std::net::TcpStream> = (0..200)
        .filter_map(|i| {
            let mut s = std::net::TcpStream::connect(&addr).ok()?;
            if i % 2 == 0 {
                // Half a request, never finished.
                let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
            }
            Some(s)
        })
        .collect();
    let opened = socks.len();
    assert!(opened >= 100, "{opened} connections");
    // Every one is closed by the daemon: at once over the limit, after the timeouts
    // otherwise.
    let closed = tokio::task::spawn_blocking(move || {
        socks
            .into_iter()
            .filter(|s| {
                s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                let mut b = [0u8; 64];
                match (&*s).read(&mut b) {
                    Ok(0) => true,
                    Ok(_) => {
                        // An error response, then the close.
                        matches!((&*s).read(&mut b), Ok(0) | Err(_))
                    }
                    Err(e) => {
                        e.kind() != std::io::ErrorKind::WouldBlock
                            && e.kind() != std::io::ErrorKind::TimedOut
                    }
                }
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, opened, "connections left open");
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "closed in {:?}",
        t0.elapsed()
    );
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/drills", d.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = d.log.lock().unwrap().clone();
    assert!(
        log.contains("the file descriptor limit (128) allows"),
        "the lowered connection limit is said: {log}"
    );
    assert!(!log.contains("Too many open files"), "{log}");
}

/// The daemon's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Alerts naming drills the daemon does not know are refused without being remembered:
/// its memory stays flat over 100,000 unknown names (it grew by about 90 bytes a name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_drill_names_in_alerts_do_not_grow_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("drills")).unwrap();
    let cfg = dir.path().join("firedrill.toml");
    std::fs::write(
        &cfg,
        "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\n\
         token = { env = \"FIREDRILL_TEST_API_TOKEN\" }\n",
    )
    .unwrap();
    let d = support::daemon::DaemonProc::start(&cfg, &[("FIREDRILL_TEST_API_TOKEN", TOKEN)]);
    let client = reqwest::Client::new();
    let mut next = 0u64;
    let mut send = |n: u64| {
        let alerts: Vec<serde_json::Value> = (next..next + n)
            .map(|i| {
                serde_json::json!({"status": "firing",
                    "labels": {"alertname": "X", "firedrill_drill": format!("no-such-drill-{i:08}")}})
            })
            .collect();
        next += n;
        client
            .post(format!("{}/api/v1/hooks/alertmanager", d.base))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "alerts": alerts }))
            .send()
    };
    // Warm up: the allocator's arenas, the connection, the first requests.
    for _ in 0..20 {
        let r = send(1000).await.unwrap();
        assert_eq!(r.status(), 202);
    }
    let before = rss_kib(d.child.id());
    for _ in 0..100 {
        let r = send(1000).await.unwrap();
        assert_eq!(r.status(), 202);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["skipped"].as_array().unwrap().len(), 1000);
    }
    let after = rss_kib(d.child.id());
    eprintln!("daemon RSS over 100,000 unknown drill names: {before} KiB -> {after} KiB");
    assert!(
        after < before + 3 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 100,000 unknown names"
    );
}

/// Every query of `deploy/grafana-dashboard.json` (panels and template variables) names
/// metrics that `metrics` (a live daemon's /metrics) exports, with labels their samples
/// carry: a dashboard that cannot drift into empty panels.
fn grafana_dashboard_queries_what_metrics_exports(metrics: &str) {
    use std::collections::{BTreeMap, BTreeSet};
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // What /metrics exports: every TYPE'd name, and the labels of its samples.
    let mut exported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut sampled: BTreeSet<String> = BTreeSet::new();
    for l in metrics.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            exported
                .entry(rest.split(' ').next().unwrap().to_string())
                .or_default();
        } else if !l.starts_with('#') && !l.is_empty() {
            let name = l.split(['{', ' ']).next().unwrap();
            sampled.insert(name.to_string());
            let labels = exported.entry(name.to_string()).or_default();
            if let Some(inner) = l.split_once('{').and_then(|(_, r)| r.split_once('}')) {
                for kv in inner.0.split(',') {
                    labels.insert(kv.split('=').next().unwrap().to_string());
                }
            }
        }
    }
    let mut exprs: Vec<String> = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            exprs.push(q.to_string());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for e in &exprs {
        // The metrics it names, and the labels it uses on them.
        let mut names = Vec::new();
        let mut labels = BTreeSet::new();
        let mut rest = e.as_str();
        while let Some(i) = rest.find("firedrill_") {
            let tail = &rest[i..];
            let end = tail.find(|c: char| !ident(c)).unwrap_or(tail.len());
            names.push(tail[..end].to_string());
            let after = &tail[end..];
            if let Some(inner) = after.strip_prefix('{').and_then(|a| a.split_once('}')) {
                for m in inner.0.split(',') {
                    let l: String = m.trim().chars().take_while(|c| ident(*c)).collect();
                    labels.insert(l);
                }
            }
            rest = &tail[end..];
        }
        for by in e.split("by (").skip(1) {
            for l in by.split(')').next().unwrap().split(',') {
                labels.insert(l.trim().to_string());
            }
        }
        if let Some(args) = e.strip_prefix("label_values(") {
            labels.insert(
                args.trim_end_matches(')')
                    .split(',')
                    .nth(1)
                    .unwrap()
                    .trim()
                    .to_string(),
            );
        }
        assert!(!names.is_empty(), "`{e}` names no firedrill metric");
        for n in &names {
            assert!(
                exported.contains_key(n),
                "`{e}`: /metrics has no {n}:\n{metrics}"
            );
            // A metric the scenario had no sample of (lateness: only scheduled runs)
            // still has its name checked.
            if !sampled.contains(n) {
                assert_eq!(n, "firedrill_schedule_lateness_seconds", "no sample of {n}");
                continue;
            }
            for l in &labels {
                assert!(
                    names
                        .iter()
                        .any(|m| exported.get(m).is_some_and(|h| h.contains(l))),
                    "`{e}`: label {l} is not on {names:?} in /metrics"
                );
            }
        }
    }
}
