//! Several daemons on one shared PostgreSQL catalog, with the real Docker engine and a real
//! PostgreSQL source: each scheduled firing runs exactly once and the daemons share them;
//! a daemon killed mid-restore has its run recorded lost, its sandbox removed and its
//! firing run again by a survivor; a daemon stopped mid-drill (a rolling restart) hands
//! its firing over and nobody is paged; and on the embedded SQLite catalog, a live CLI
//! run survives a daemon starting beside it, which refuses to run the same drill.
//!
//! The first test schedules 6 drills in the CI tier, 30 in `tests/run --full`
//! (`FIREDRILL_CLUSTER_DRILLS` sets another number).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use support::daemon::{DaemonProc, Received};
use support::*;

const TOKEN: &str = "cluster-token-5b1e2d";

/// A directory with drills, and the main config of daemons sharing catalog database `db`.
struct Cluster {
    fx: Fixture,
    db: String,
    daemons: Vec<DaemonProc>,
}

fn utc_cron(at: jiff::Timestamp) -> String {
    let t = at.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {} {} * * *", t.second(), t.minute(), t.hour())
}

impl Cluster {
    async fn new(db: &str, hook: &str) -> Cluster {
        create_db(db, "").await;
        let fx = Fixture::new();
        let url = format!("postgres://postgres@127.0.0.1:{}/{db}", pg().port);
        write_config(&fx, "firedrill.toml", &url, PASSWORD_ENV, "drills", 6, hook);
        Cluster {
            fx,
            db: db.to_string(),
            daemons: Vec::new(),
        }
    }

    /// Drill `name` of source database `source`, firing once at `at`.
    fn drill(&self, name: &str, source: &str, at: jiff::Timestamp) {
        cluster_drill(&self.fx, name, source, at);
    }

    fn start(&mut self, n: usize) {
        for _ in 0..n {
            self.daemons.push(DaemonProc::start(
                &self.fx.dir.path().join("firedrill.toml"),
                &[("FIREDRILL_TEST_API_TOKEN", TOKEN)],
            ));
        }
    }

    /// The daemon whose pid an owner id names.
    fn daemon_of(&self, owner: &str) -> Option<usize> {
        let pid = owner
            .split_once('@')?
            .1
            .rsplit_once(':')?
            .1
            .split_once('/')?
            .0;
        self.daemons
            .iter()
            .position(|d| d.child.id().to_string() == pid)
    }

    /// Every run, straight from the catalog.
    async fn runs(&self) -> Vec<RunRow> {
        runs_in(&pg_client(&self.db).await).await
    }

    /// Waits until `done` holds of the runs (up to `limit`), and returns them.
    async fn until(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[RunRow]) -> bool,
    ) -> Vec<RunRow> {
        wait_until(|| self.runs(), limit, what, done).await
    }

    /// The run of `drill` running now, once its sandbox exists: `(run_id, daemon index)`.
    async fn running_in_sandbox(&self, drill: &str) -> (String, usize) {
        let runs = self
            .until(Duration::from_secs(180), &format!("{drill} running"), |r| {
                r.iter().any(|(_, d, s, _)| d == drill && s == "running")
            })
            .await;
        let (run_id, _, _, owner) = runs
            .iter()
            .find(|(_, d, s, _)| d == drill && s == "running")
            .unwrap()
            .clone();
        let t = Instant::now();
        while leftovers(&run_id).await.is_empty() {
            assert!(
                t.elapsed() < Duration::from_secs(180),
                "{run_id}'s sandbox never came"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (run_id, self.daemon_of(&owner).expect("run by one of ours"))
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get_json(base: &str, path: &str) -> serde_json::Value {
    let r = http()
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// A run's server-sent events, until `finished`.
async fn follow_events(base: &str, run_id: &str) -> Vec<(String, serde_json::Value)> {
    let mut resp = http()
        .get(format!("{base}/api/v1/runs/{run_id}/events"))
        .bearer_auth(TOKEN)
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
            let Some(name) = block.lines().find_map(|l| l.strip_prefix("event: ")) else {
                continue;
            };
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("null");
            events.push((name.to_string(), serde_json::from_str(data).unwrap()));
            if name == "finished" {
                return events;
            }
        }
    }
    events
}

fn lost_pages(pages: &Received) -> Vec<serde_json::Value> {
    pages
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "trigger")
        .cloned()
        .collect()
}

/// Three daemons, one catalog: every firing runs exactly once, each daemon runs its
/// share; then one daemon is killed mid-restore: a survivor records its run lost, removes
/// the sandbox, runs the firing again (a warning page at most), and the dead daemon's later
/// firings run on the survivors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_run_each_firing_once_and_survive_a_killed_one() {
    create_db("fd_cluster_src", "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g;").await;
    let (hook, pages) = support::daemon::receiver().await;
    let mut c = Cluster::new("fdcat_cluster", &hook).await;
    let n: usize = std::env::var("FIREDRILL_CLUSTER_DRILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::var("FIREDRILL_FULL").as_deref() == Ok("1") {
            30
        } else {
            6
        });
    let t0 = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(25))
        .unwrap();
    let at = |s: i64| t0.checked_add(jiff::SignedDuration::from_secs(s)).unwrap();
    // Spread over the run time a drill takes, so the daemons share them.
    for i in 0..n {
        c.drill(
            &format!("d{i:02}"),
            "fd_cluster_src",
            at((i as i64) * 12 / 3),
        );
    }
    c.start(3);
    let names: Vec<String> = (0..n).map(|i| format!("d{i:02}")).collect();
    let runs = c
        .until(
            Duration::from_secs(60 + 30 * n as u64),
            "every firing passed",
            |r| {
                names
                    .iter()
                    .all(|d| r.iter().any(|(_, rd, s, _)| rd == d && s == "passed"))
            },
        )
        .await;
    // Exactly once: one run per drill, one claimed firing per drill.
    let mut per_drill: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_owner: HashMap<&str, usize> = HashMap::new();
    for (_, d, _, o) in &runs {
        *per_drill.entry(d).or_default() += 1;
        *per_owner.entry(o).or_default() += 1;
    }
    assert!(per_drill.values().all(|&k| k == 1), "{per_drill:?}");
    let firings: i64 = pg_client(&c.db)
        .await
        .query_one("SELECT count(*) FROM firings WHERE drill LIKE 'd%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(firings as usize, n);
    assert_eq!(per_owner.len(), 3, "every daemon ran some: {per_owner:?}");
    assert!(
        per_owner.values().all(|&k| k * 5 >= n),
        "each daemon ran at least a fifth: {per_owner:?}"
    );
    assert!(lost_pages(&pages).is_empty(), "good backups never page");

    // A daemon killed mid-restore.
    let t1 = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(8))
        .unwrap();
    c.drill("victim", "fd_cluster_src", t1);
    // Firings after the kill, some of which would have been the dead daemon's.
    for i in 0..4 {
        c.drill(
            &format!("late{i}"),
            "fd_cluster_src",
            t1.checked_add(jiff::SignedDuration::from_secs(30 + 3 * i))
                .unwrap(),
        );
    }
    for d in &c.daemons {
        d.signal("HUP");
    }
    let (run_id, who) = c.running_in_sandbox("victim").await;
    // Every daemon answers for the run another one runs, from the catalog.
    let other = (who + 1) % 3;
    let view = get_json(&c.daemons[other].base, &format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(view["status"], "running", "{view}");
    let runner_pid = format!(":{}/", c.daemons[who].child.id());
    assert!(
        view["daemon"].as_str().unwrap_or("").contains(&runner_pid),
        "{view}"
    );
    let page = http()
        .get(format!("{}/runs/{run_id}", c.daemons[other].base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("run by") && page.contains(&runner_pid),
        "{page}"
    );
    c.daemons[who].signal("KILL");
    c.daemons[who].wait(Duration::from_secs(10));
    // The second run of the victim's firing, followed as it runs on a daemon that does
    // not run it: its events come through the catalog.
    let runs = c
        .until(Duration::from_secs(120), "the victim run again", |r| {
            r.iter().any(|(id, d, _, _)| d == "victim" && *id != run_id)
        })
        .await;
    let again = runs
        .iter()
        .find(|(id, d, _, _)| d == "victim" && *id != run_id)
        .unwrap()
        .clone();
    let watcher = (0..3)
        .find(|&i| i != who && !again.3.contains(&format!(":{}/", c.daemons[i].child.id())))
        .unwrap();
    let events = follow_events(&c.daemons[watcher].base, &again.0).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"queued"), "{names:?}");
    assert!(names.contains(&"stage_started"), "{names:?}");
    assert!(names.contains(&"stage_finished"), "{names:?}");
    let (last, data) = events.last().unwrap();
    assert_eq!(
        (last.as_str(), data["status"].as_str()),
        ("finished", Some("passed"))
    );
    let runs = c
        .until(
            Duration::from_secs(240),
            "the victim's firing run again",
            |r| {
                r.iter().any(|(id, _, s, _)| *id == run_id && s == "lost")
                    && r.iter()
                        .any(|(id, d, s, _)| d == "victim" && *id != run_id && s == "passed")
            },
        )
        .await;
    assert!(
        leftovers(&run_id).await.is_empty(),
        "the lost run's sandbox is gone"
    );
    let victims: Vec<_> = runs.iter().filter(|(_, d, _, _)| d == "victim").collect();
    assert_eq!(victims.len(), 2, "run again once: {victims:?}");
    let dead = c.daemons[who].child.id().to_string();
    assert!(
        !victims[1].3.contains(&format!(":{dead}/")),
        "by a survivor"
    );
    let runs = c
        .until(Duration::from_secs(240), "the later firings", |r| {
            (0..4).all(|i| {
                r.iter()
                    .any(|(_, d, s, _)| *d == format!("late{i}") && s == "passed")
            })
        })
        .await;
    for i in 0..4 {
        let late: Vec<_> = runs
            .iter()
            .filter(|(_, d, _, _)| *d == format!("late{i}"))
            .collect();
        assert_eq!(late.len(), 1, "{late:?}");
        assert!(!late[0].3.contains(&format!(":{dead}/")));
    }
    // Let the outbox drain, then: one warning about the lost run at most, nothing else.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = lost_pages(&pages);
    assert!(got.len() <= 1, "{got:#?}");
    for p in &got {
        assert!(
            p["error"].as_str().unwrap_or("").contains("was lost"),
            "{p}"
        );
        assert_eq!(p["drill"], "victim");
    }
}

/// A rolling restart: SIGTERM to the daemon running a drill stops the run (its sandbox
/// removed), hands the firing over, and the other daemon runs it; nobody is paged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_stopped_mid_drill_hands_its_firing_over() {
    create_db(
        "fd_cluster_src2",
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);",
    )
    .await;
    let (hook, pages) = support::daemon::receiver().await;
    let mut c = Cluster::new("fdcat_handover", &hook).await;
    c.drill(
        "handover",
        "fd_cluster_src2",
        jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(20))
            .unwrap(),
    );
    c.start(2);
    let (run_id, who) = c.running_in_sandbox("handover").await;
    c.daemons[who].signal("TERM");
    assert_eq!(c.daemons[who].wait(Duration::from_secs(60)), Some(0));
    let left = leftovers(&run_id).await;
    assert!(left.is_empty(), "SIGTERM left the run's sandbox: {left:?}");
    let runs = c
        .until(
            Duration::from_secs(240),
            "the firing run by the other daemon",
            |r| {
                r.iter()
                    .any(|(id, d, s, _)| d == "handover" && *id != run_id && s == "passed")
            },
        )
        .await;
    let first = runs.iter().find(|(id, _, _, _)| *id == run_id).unwrap();
    assert_eq!(first.2, "interrupted", "{runs:?}");
    assert_eq!(runs.len(), 2, "{runs:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        pages.lock().unwrap().is_empty(),
        "nobody is paged: {:?}",
        pages.lock().unwrap()
    );
}

/// On the embedded SQLite catalog: a daemon starting while `firedrill run` drills leaves
/// the CLI's run (and its sandbox) alone, and neither it nor a second CLI runs the drill
/// meanwhile; both refusals name the run in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_cli_run_survives_a_daemon_start_and_is_never_doubled() {
    create_db("fd_cluster_cli", SHOP).await;
    let fx = Fixture::new();
    // The sandbox lives through a 15-second assertion: the test looks for it while the
    // run is live, which a tiny drill on a loaded machine outran.
    let slow = "[[assertion]]\nname = \"takes a while\"\nsql = \"select count(*) from (select pg_sleep(15)) s\"\nexpect = \"= 1\"\n";
    place_drill(&fx, "drills", "dd", "fd_cluster_cli", "", slow);
    // The embedded SQLite catalog (its password setting is not read).
    let config = write_config(
        &fx,
        "firedrill.toml",
        "catalog.db",
        "UNUSED",
        "drills",
        6,
        "",
    );
    let cli = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"));
        cmd.arg("--config")
            .arg(&config)
            .args(["run", "dd", "--quiet"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let mut first = cli().spawn().unwrap();
    let catalog = fx.dir.path().join("catalog.db");
    let t = Instant::now();
    let run_id = loop {
        if let Ok(c) = firedrill::catalog::SqliteCatalog::open(&catalog) {
            use firedrill::catalog::Catalog;
            if let Some(r) = c
                .runs(Some("dd"), 5)
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.status == firedrill::RunStatus::Running)
            {
                if !leftovers(&r.run_id).await.is_empty() {
                    break r.run_id;
                }
            }
        }
        if let Some(status) = first.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            first
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("the CLI run ended ({status}) before the test saw its sandbox: {err}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "the CLI run never reached its sandbox"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let d = DaemonProc::start(&config, &[("FIREDRILL_TEST_API_TOKEN", TOKEN)]);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/v1/drills/dd/runs", d.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body = r.text().await.unwrap();
    assert!(body.contains(&run_id) && body.contains("cli@"), "{body}");
    let second = cli().output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&run_id) && err.contains("already running"),
        "{err}"
    );
    // The daemon recovered (at its start, before it listened) while the run was live, as
    // the 409 shows: had it taken the run for a crashed one, it would have removed the
    // sandbox under the CLI, which would have failed.
    let out = first.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use firedrill::catalog::Catalog;
    let c = firedrill::catalog::SqliteCatalog::open(&catalog).unwrap();
    let rec = c.run(&run_id).await.unwrap().unwrap();
    assert_eq!(rec.status, firedrill::RunStatus::Passed, "{rec:?}");
    assert!(leftovers(&run_id).await.is_empty());
    drop(d);
}

/// A PostgreSQL server of the test's own for the catalog (so that it can be restarted or
/// cut off without touching the drills' source server), stopped on drop.
struct CatalogServer {
    dir: tempfile::TempDir,
    port: u16,
    password: String,
}

impl CatalogServer {
    fn start() -> CatalogServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::Builder::new()
            .prefix("fd-catalog-pg")
            .tempdir_in("/tmp")
            .unwrap();
        let s = CatalogServer {
            dir,
            port,
            password: "catalog-pw-7d1c".into(),
        };
        host_setup(&format!(
            "fd_start_pg {}/pg {port} {}",
            s.dir.path().display(),
            s.password
        ));
        s
    }

    fn stop(&self) {
        host_setup(&format!("fd_stop_pg {}/pg", self.dir.path().display()));
    }

    /// Starts it again with its data.
    fn start_again(&self) {
        host_setup(&format!(
            "FD_KEEP_DATA=1 fd_start_pg {}/pg {} {}",
            self.dir.path().display(),
            self.port,
            self.password
        ));
    }

    fn url(&self) -> String {
        self.url_via(self.port)
    }

    /// Its URL through a proxy on `port`.
    fn url_via(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (c, conn) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .password(&self.password)
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c
    }
}

impl Drop for CatalogServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy to the catalog server that the test can cut (every connection dropped,
/// new ones refused) and restore: one daemon's link to the catalog.
struct Link {
    port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Link {
    async fn to(target: u16) -> Link {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut listener = Some(listener);
            let mut rx = rx;
            loop {
                if *rx.borrow() {
                    // Cut: nothing listens (connections are refused) until restored.
                    listener = None;
                    if rx.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                let l = match &listener {
                    Some(l) => l,
                    None => {
                        listener = Some(
                            tokio::net::TcpListener::bind(("127.0.0.1", port))
                                .await
                                .unwrap(),
                        );
                        continue;
                    }
                };
                tokio::select! {
                    a = l.accept() => {
                        let Ok((mut inbound, _)) = a else { continue };
                        let mut cut_rx = rx.clone();
                        tokio::spawn(async move {
                            let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else { return };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                _ = cut_rx.wait_for(|c| *c) => {}
                            }
                        });
                    }
                    _ = rx.changed() => {}
                }
            }
        });
        Link { port, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// A daemon config `name` on the catalog at `url` (its password in env `password_env`),
/// its drills in `drills`, its leases short, paging `hook` (none when empty).
fn write_config(
    fx: &Fixture,
    name: &str,
    url: &str,
    password_env: &str,
    drills: &str,
    lease: u32,
    hook: &str,
) -> std::path::PathBuf {
    let path = fx.dir.path().join(name);
    std::fs::create_dir_all(fx.dir.path().join(drills)).unwrap();
    let notify = if hook.is_empty() {
        String::new()
    } else {
        format!("\n[notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n")
    };
    std::fs::write(
        &path,
        format!(
            r#"catalog = "{url}"
catalog_password = {{ env = "{password_env}" }}
drills_dir = "{drills}"
reports_dir = "reports"

[daemon]
listen = "127.0.0.1:0"
token = {{ env = "FIREDRILL_TEST_API_TOKEN" }}
max_concurrent_drills = 1
lease = "{lease}s"
heartbeat = "1s"
poll = "1s"
grace = "60s"
{notify}"#
        ),
    )
    .unwrap();
    path
}

/// `(run_id, drill, status, owner)` of a run in the catalog.
type RunRow = (String, String, String, String);

/// Every run in the catalog `c` is connected to (none when it cannot answer).
async fn runs_in(c: &tokio_postgres::Client) -> Vec<RunRow> {
    c.query(
        "SELECT run_id, drill, status, coalesce(owner, '') FROM runs ORDER BY started_at",
        &[],
    )
    .await
    .map(|rows| {
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    })
    .unwrap_or_default()
}

/// Reads the runs with `fetch` until `done` holds of them (up to `limit`).
async fn wait_until<F, Fut>(
    fetch: F,
    limit: Duration,
    what: &str,
    done: impl Fn(&[RunRow]) -> bool,
) -> Vec<RunRow>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<RunRow>>,
{
    let t = Instant::now();
    loop {
        let runs = fetch().await;
        if done(&runs) {
            return runs;
        }
        assert!(t.elapsed() < limit, "{what} within {limit:?}: {runs:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every run in the catalog server's database.
async fn runs_of(server: &CatalogServer) -> Vec<RunRow> {
    runs_in(&server.client().await).await
}

async fn wait_runs(
    server: &CatalogServer,
    limit: Duration,
    what: &str,
    done: impl Fn(&[RunRow]) -> bool,
) -> Vec<RunRow> {
    wait_until(|| runs_of(server), limit, what, done).await
}

/// Drill `name` of source database `source` in `fx`'s directory `dir`: `prefix` before
/// the fixture's drill text, `extra` after it.
fn place_drill(fx: &Fixture, dir: &str, name: &str, source: &str, prefix: &str, extra: &str) {
    let path = fx.drill(name, source, extra);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "identity = { file = \"identity.txt\" }",
        &format!("identity = {{ file = \"{}\" }}", fx.identity.display()),
    );
    std::fs::create_dir_all(fx.dir.path().join(dir)).unwrap();
    std::fs::write(
        fx.dir.path().join(dir).join(format!("{name}.toml")),
        format!("{prefix}{text}"),
    )
    .unwrap();
    std::fs::remove_file(path).unwrap();
}

/// Drill `name` in `fx`'s `drills`, firing once at `at`.
fn cluster_drill(fx: &Fixture, name: &str, source: &str, at: jiff::Timestamp) {
    let schedule = format!("\n[schedule]\ncron = \"{}\"\n", utc_cron(at));
    place_drill(fx, "drills", name, source, "", &schedule);
}

fn in_secs(s: i64) -> jiff::Timestamp {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(s))
        .unwrap()
}

/// The catalog server restarts while a drill runs and while a firing is due: the daemons
/// reconnect, the running drill finishes and is recorded, the firing due meanwhile is
/// claimed once the catalog is back and runs once, and nobody is paged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_restarting_mid_run_loses_and_doubles_nothing() {
    create_db("fd_cluster_restart", SHOP).await;
    let server = CatalogServer::start();
    let (hook, pages) = support::daemon::receiver().await;
    let fx = Fixture::new();
    let config = write_config(
        &fx,
        "firedrill.toml",
        &server.url(),
        "FD_TEST_CATALOG_PW",
        "drills",
        30,
        &hook,
    );
    cluster_drill(&fx, "busy", "fd_cluster_restart", in_secs(15));
    let env = [
        ("FIREDRILL_TEST_API_TOKEN", TOKEN),
        ("FD_TEST_CATALOG_PW", server.password.as_str()),
    ];
    let daemons = [
        DaemonProc::start(&config, &env),
        DaemonProc::start(&config, &env),
    ];
    wait_runs(&server, Duration::from_secs(120), "busy running", |r| {
        r.iter().any(|(_, d, s, _)| d == "busy" && s == "running")
    })
    .await;
    let busy = runs_of(&server).await[0].0.clone();
    // A firing due while the catalog is down.
    cluster_drill(&fx, "meanwhile", "fd_cluster_restart", in_secs(3));
    for d in &daemons {
        d.signal("HUP");
    }
    server.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.start_again();
    let runs = wait_runs(
        &server,
        Duration::from_secs(240),
        "both drills passed",
        |r| {
            ["busy", "meanwhile"]
                .iter()
                .all(|d| r.iter().any(|(_, rd, s, _)| rd == d && s == "passed"))
        },
    )
    .await;
    assert_eq!(runs.len(), 2, "each ran once: {runs:#?}");
    assert!(runs
        .iter()
        .any(|(id, _, s, _)| *id == busy && s == "passed"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(lost_pages(&pages).is_empty(), "{:?}", pages.lock().unwrap());
}

/// One daemon cut off from the catalog mid-run fences itself: its run stops and its
/// sandbox is removed before its lease runs out; the other daemon records the run lost
/// once the lease expired and runs the firing again, never at the same time; the cut-off
/// daemon claims nothing meanwhile, and once its link returns it claims firings again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_cut_off_from_the_catalog_fences_itself_and_rejoins() {
    create_db("fd_cluster_cut", SHOP).await;
    let server = CatalogServer::start();
    let link = Link::to(server.port).await;
    let (hook, pages) = support::daemon::receiver().await;
    let fx = Fixture::new();
    let via_link = write_config(
        &fx,
        "a.toml",
        &server.url_via(link.port),
        "FD_TEST_CATALOG_PW",
        "drills",
        8,
        &hook,
    );
    let direct = write_config(
        &fx,
        "b.toml",
        &server.url(),
        "FD_TEST_CATALOG_PW",
        "drills",
        8,
        &hook,
    );
    cluster_drill(&fx, "fenced", "fd_cluster_cut", in_secs(12));
    let env = [
        ("FIREDRILL_TEST_API_TOKEN", TOKEN),
        ("FD_TEST_CATALOG_PW", server.password.as_str()),
    ];
    let a = DaemonProc::start(&via_link, &env);
    let a_pid = format!(":{}/", a.child.id());
    let runs = wait_runs(&server, Duration::from_secs(120), "fenced running", |r| {
        r.iter().any(|(_, d, s, _)| d == "fenced" && s == "running")
    })
    .await;
    let first = runs[0].0.clone();
    assert!(runs[0].3.contains(&a_pid));
    let t = Instant::now();
    while leftovers(&first).await.is_empty() {
        assert!(t.elapsed() < Duration::from_secs(120));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let b = DaemonProc::start(&direct, &env);
    link.set_cut(true);
    let cut_at = Instant::now();
    while !leftovers(&first).await.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fenced_after = cut_at.elapsed();
    assert!(
        fenced_after < Duration::from_secs(8),
        "the sandbox went {fenced_after:?} after the cut: before the lease of 8s ran out"
    );
    let runs = wait_runs(
        &server,
        Duration::from_secs(120),
        "the firing run again",
        |r| {
            r.iter()
                .any(|(id, d, s, _)| d == "fenced" && *id != first && s == "passed")
        },
    )
    .await;
    let again = runs
        .iter()
        .find(|(id, d, _, _)| d == "fenced" && *id != first)
        .unwrap();
    assert!(!again.3.contains(&a_pid), "run again by the other daemon");
    assert!(
        runs.iter().filter(|(_, d, _, _)| d == "fenced").count() == 2,
        "{runs:#?}"
    );
    // While cut off, daemon A claimed nothing.
    assert!(
        runs.iter()
            .filter(|(_, _, _, o)| o.contains(&a_pid))
            .count()
            == 1
    );
    // The link returns: A renews again and takes its share of new firings.
    link.set_cut(false);
    for i in 0..4 {
        cluster_drill(
            &fx,
            &format!("after{i}"),
            "fd_cluster_cut",
            in_secs(8 + 5 * i),
        );
    }
    a.signal("HUP");
    b.signal("HUP");
    let runs = wait_runs(
        &server,
        Duration::from_secs(300),
        "the later firings",
        |r| {
            (0..4).all(|i| {
                r.iter()
                    .any(|(_, d, s, _)| *d == format!("after{i}") && s == "passed")
            })
        },
    )
    .await;
    let after: Vec<_> = runs
        .iter()
        .filter(|(_, d, _, _)| d.starts_with("after"))
        .collect();
    assert_eq!(after.len(), 4, "each once: {after:#?}");
    assert!(
        after.iter().any(|(_, _, _, o)| o.contains(&a_pid)),
        "A rejoined and ran some: {after:#?}"
    );
    let got = lost_pages(&pages);
    assert!(got.len() <= 1, "{got:#?}");
    drop((a, b));
}

/// The catalog over TLS: `sslmode=require` with the server's CA in `catalog_ca` connects
/// and works; a CA that did not sign the server's certificate is refused, naming the
/// catalog and saying what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_over_tls_checks_the_servers_certificate() {
    use firedrill::catalog::{Catalog, PgCatalog, PgLocation};
    let server = CatalogServer::start();
    let certs = server.dir.path().join("pg/certs");
    std::fs::create_dir_all(&certs).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(
            r#"set -e; cd "$1"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=fd-test-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj /CN=other-ca 2>/dev/null
chmod 755 .; chmod 600 server.key; chown postgres server.key server.pem"#,
        )
        .arg("tls")
        .arg(&certs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = server.client().await;
    for sql in [
        format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            certs.join("server.pem").display()
        ),
        format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            certs.join("server.key").display()
        ),
        "ALTER SYSTEM SET ssl = on".to_string(),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let loc = |ca: &str| PgLocation {
        url: format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
            server.port
        ),
        password: Some(firedrill::secret::Secret::new(server.password.clone())),
        ca: Some(certs.join(ca)),
    };
    let c = PgCatalog::connect(&loc("ca.pem"), &dir.path().join("catalog"))
        .await
        .expect("the catalog over TLS, its CA given");
    assert!(c
        .claim_firing("tls", jiff::Timestamp::now(), "daemon@h:1/1#x")
        .await
        .unwrap());
    let used_tls: bool = server
        .client()
        .await
        .query_one(
            "SELECT bool_or(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE application_name = 'firedrill'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(used_tls, "firedrill's connections are encrypted");
    let e = PgCatalog::connect(&loc("other.pem"), &dir.path().join("catalog"))
        .await
        .err()
        .expect("a server certificate no given CA signed is refused");
    let text = format!("{e} {}", e.hint.clone().unwrap_or_default());
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.port)),
        "{text}"
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

/// Two daemons whose copies of one drill differ: both see it (API, metrics, dashboard),
/// neither runs it (no copy is held by most), and a drill they agree on runs as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_defined_differently_on_two_daemons_runs_on_neither() {
    create_db("fdcat_skew", "").await;
    create_db(
        "fd_cluster_skew",
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10);",
    )
    .await;
    let fx = Fixture::new();
    let url = format!("postgres://postgres@127.0.0.1:{}/fdcat_skew", pg().port);
    let mut configs = Vec::new();
    for side in ["a", "b"] {
        let drills = format!("drills-{side}");
        place_drill(&fx, &drills, "same", "fd_cluster_skew", "", "");
        let copy = format!("description = \"copy {side}\"\n");
        place_drill(&fx, &drills, "skewed", "fd_cluster_skew", &copy, "");
        let name = format!("{side}.toml");
        configs.push(write_config(&fx, &name, &url, PASSWORD_ENV, &drills, 6, ""));
    }
    let daemons: Vec<DaemonProc> = configs
        .iter()
        .map(|c| DaemonProc::start(c, &[("FIREDRILL_TEST_API_TOKEN", TOKEN)]))
        .collect();
    // Both have told the catalog their drills within a poll or two.
    let t = Instant::now();
    let view = loop {
        let v = get_json(&daemons[0].base, "/api/v1/cluster").await;
        if v["daemons"].as_array().map(|a| a.len()) == Some(2)
            && !v["skew"].as_array().unwrap().is_empty()
        {
            break v;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let skew = view["skew"].as_array().unwrap();
    assert_eq!(skew.len(), 1, "{view}");
    assert_eq!(skew[0]["drill"], "skewed");
    assert!(skew[0]["agreed"].is_null(), "a tie: {view}");
    assert_eq!(skew[0]["differing"].as_array().unwrap().len(), 2);
    for d in &daemons {
        let t = Instant::now();
        loop {
            let r = http()
                .post(format!("{}/api/v1/drills/skewed/runs", d.base))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap();
            if r.status() == 409 {
                assert!(r.text().await.unwrap().contains("defined differently"));
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "{}", r.status());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let metrics = http()
            .get(format!("{}/metrics", d.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("firedrill_drill_definition_skew{drill=\"skewed\",here=\"1\"} 1"),
            "{metrics}"
        );
        assert!(metrics.contains("firedrill_cluster_daemons 2"), "{metrics}");
        let page = http()
            .get(format!("{}/", d.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("defined differently"), "{page}");
    }
    // The drill they agree on runs.
    let r = http()
        .post(format!("{}/api/v1/drills/same/runs", daemons[1].base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = follow_events(&daemons[0].base, &id).await;
    assert_eq!(events.last().unwrap().1["status"], "passed", "{events:?}");
}

/// A run asked of a daemon with no room is offered to the daemons sharing the catalog:
/// one with room runs it under the run id the client was given, which any daemon answers
/// for from the start (queued, then its events through the catalog).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_asked_of_a_busy_daemon_runs_on_one_with_room() {
    create_db("fdcat_offer", "").await;
    create_db(
        "fd_cluster_offer",
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10);",
    )
    .await;
    let fx = Fixture::new();
    let slow = "[[assertion]]\nname = \"takes a while\"\nsql = \"select count(*) from (select pg_sleep(20)) s\"\nexpect = \"= 1\"\n";
    place_drill(&fx, "drills", "slow", "fd_cluster_offer", "", slow);
    place_drill(&fx, "drills", "quick", "fd_cluster_offer", "", "");
    let url = format!("postgres://postgres@127.0.0.1:{}/fdcat_offer", pg().port);
    let config = write_config(&fx, "firedrill.toml", &url, PASSWORD_ENV, "drills", 6, "");
    let env = [("FIREDRILL_TEST_API_TOKEN", TOKEN)];
    let (a, b) = (
        DaemonProc::start(&config, &env),
        DaemonProc::start(&config, &env),
    );
    let t = Instant::now();
    while get_json(&a.base, "/api/v1/cluster").await["daemons"]
        .as_array()
        .map(|d| d.len())
        != Some(2)
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the daemons never saw each other"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let post = |base: String, drill: &'static str| async move {
        let r = http()
            .post(format!("{base}/api/v1/drills/{drill}/runs"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        r.json::<serde_json::Value>().await.unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let slow = post(a.base.clone(), "slow").await;
    let t = Instant::now();
    loop {
        let v = get_json(&a.base, &format!("/api/v1/runs/{slow}")).await;
        if v["status"] == "running" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A has no room: the quick drill goes to B, under the id A gave.
    let quick = post(a.base.clone(), "quick").await;
    let events = follow_events(&a.base, &quick).await;
    let (last, data) = events.last().unwrap();
    assert_eq!(
        (last.as_str(), data["status"].as_str()),
        ("finished", Some("passed")),
        "{events:?}"
    );
    let view = get_json(&a.base, &format!("/api/v1/runs/{quick}")).await;
    let b_pid = format!(":{}/", b.child.id());
    assert!(
        view["daemon"].as_str().unwrap_or("").contains(&b_pid),
        "{view}"
    );
    let slow_view = get_json(&b.base, &format!("/api/v1/runs/{slow}")).await;
    assert_eq!(
        slow_view["status"], "running",
        "the slow drill still runs on A: {slow_view}"
    );
}
