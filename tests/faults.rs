//! Faults injected into the real components a drill depends on: the Docker daemon
//! restarted mid-restore, the sandbox killed, the sandbox out of memory, object storage
//! gone mid-fetch, the source restarted mid-dump, a full disk under the store, receivers
//! of pages down, and firedrill itself SIGKILLed at every stage. Each test says what must
//! hold afterwards: the verdict (a fault of the infrastructure is never "backup broken"),
//! no sandbox left behind, nothing in storage that looks complete when it is not.
//!
//! These tests disturb services other tests share (dockerd, the PostgreSQL source), so
//! they take one lock and run one at a time. The upload interrupted by a dying S3 server
//! is covered in `tests/s3_drill.rs`
//! (`the_server_stopped_mid_upload_gives_a_retryable_error_and_no_complete_object`).

mod support;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use firedrill::catalog::{Catalog, SqliteCatalog};
use firedrill::drill::new_run_id;
use firedrill::report::Outcome;
use firedrill::store::{ArtifactStore, ByteStream, Upload, ARTIFACT_FILE};
use firedrill::{load_drill, Progress, RunOptions, RunReport, Stage, Verdict};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use support::daemon::{receiver, receiver_on, reserve_port, DaemonProc, Received};
use support::*;
use tokio::sync::mpsc;

/// One fault at a time: they restart services the others use.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The token the tests' daemons take from their environment.
const DAEMON_ENV: &[(&str, &str)] = &[("FIREDRILL_TEST_FAULTS_TOKEN", "faults-token-5e0b7d21")];

/// A source big enough that dump, upload and restore each take seconds (about 160 MB
/// dumped, 80 MB stored), made once and kept between runs of the suite.
const BIG_DB: &str = "fd_faults_big";
const BIG_ROWS: i64 = 3_000_000;

async fn ensure_big_db() {
    let admin = pg_client("postgres").await;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&BIG_DB])
        .await
        .unwrap()
        .is_some();
    if exists {
        let c = pg_client(BIG_DB).await;
        if let Ok(row) = c.query_one("SELECT rows FROM ready", &[]).await {
            if row.get::<_, i64>(0) == BIG_ROWS {
                return;
            }
        }
    }
    let t = Instant::now();
    create_db(
        BIG_DB,
        &format!(
            "CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL, payload text NOT NULL);
             INSERT INTO big SELECT g, g % 1000, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, {BIG_ROWS}) g;
             CREATE INDEX big_n ON big (n);
             CREATE TABLE ready (rows bigint);
             INSERT INTO ready VALUES ({BIG_ROWS});"
        ),
    )
    .await;
    eprintln!("created {BIG_DB} in {:?}", t.elapsed());
}

/// `bash -c SCRIPT bash ARGS…` in the repository (so `deploy/host-setup.sh` is at hand).
fn bash(script: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("bash")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "PATH",
            format!(
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{}",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Tells the test when a stage starts.
struct OnStage {
    stage: Stage,
    tx: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl OnStage {
    fn new(stage: Stage) -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (
            OnStage {
                stage,
                tx: Mutex::new(Some(tx)),
            },
            rx,
        )
    }
}

impl Progress for OnStage {
    fn stage_started(&self, stage: Stage) {
        if stage == self.stage {
            if let Some(tx) = self.tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
    }
}

/// Puts a test's store in front of the drill's own.
type WrapStore = Box<dyn FnOnce(Arc<dyn ArtifactStore>) -> Arc<dyn ArtifactStore> + Send>;

/// Runs a drill in its own task with `progress`, so the test can hurt it meanwhile.
fn spawn_drill(
    path: &Path,
    run_id: &str,
    progress: OnStage,
    wrap_store: Option<WrapStore>,
) -> tokio::task::JoinHandle<RunReport> {
    let drill = load_drill(path).unwrap_or_else(|p| panic!("{p}"));
    let run_id = run_id.to_string();
    /// The live parts, with the test's store in front of the drill's own.
    struct Wrapped(Mutex<Option<WrapStore>>);
    impl firedrill::Connector for Wrapped {
        fn connect(&self, d: &firedrill::Drill) -> firedrill::Result<firedrill::drill::Parts> {
            let mut parts = firedrill::LiveConnector.connect(d)?;
            if let Some(wrap) = self.0.lock().unwrap().take() {
                parts.store = wrap(parts.store.clone());
            }
            Ok(parts)
        }
    }
    tokio::spawn(async move {
        let runner = firedrill::Runner {
            connector: Arc::new(Wrapped(Mutex::new(wrap_store))),
            catalog: None,
            reports: None,
            pager: None,
            leases: None,
        };
        let opts = RunOptions {
            run_id: Some(run_id),
            ..Default::default()
        };
        runner
            .run(&drill, &opts, &progress, &firedrill::Stop::new())
            .await
            .report
    })
}

async fn finish(task: tokio::task::JoinHandle<RunReport>, limit: Duration) -> RunReport {
    tokio::time::timeout(limit, task)
        .await
        .expect("the drill did not end")
        .unwrap()
}

fn human(r: &RunReport) -> String {
    firedrill::report::render_human(r)
}

/// The verdict of a drill that an infrastructure fault stopped: exit 2, never "backup
/// broken".
fn assert_infrastructure(r: &RunReport, stage: Stage) {
    assert_eq!(r.verdict, Verdict::Error, "{}", human(r));
    assert_eq!(r.exit_code, 2, "{}", human(r));
    assert_eq!(r.failed_stage, Some(stage), "{}", human(r));
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, firedrill::ErrorKind::Infrastructure, "{}", human(r));
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((p, len));
        }
    }
    out
}

/// Waits (a little) for the store's temporary directory to empty: an aborted upload
/// removes its temporary file, possibly just after the run returns.
async fn temp_files_settle(store: &Path) -> Vec<(PathBuf, u64)> {
    let tmp = store.join(".firedrill-tmp");
    for _ in 0..40 {
        if files_under(&tmp).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    files_under(&tmp)
}

/// Stops dockerd the way a service manager restarts it (SIGTERM: it stops its
/// containers and exits) and starts it again the way `fd_ensure_docker` does. Returns
/// how long Docker did not answer.
fn restart_dockerd() -> Duration {
    let t = Instant::now();
    bash(
        r#"set -u
pid=$(pidof dockerd || true)
[ -n "$pid" ] || { echo "dockerd is not running" >&2; exit 1; }
kill -TERM $pid
for _ in $(seq 1 300); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then echo "dockerd ignored SIGTERM for 30s; SIGKILL" >&2; kill -KILL $pid; sleep 1; fi
(setsid nohup dockerd </dev/null >>/var/log/firedrill-dockerd.log 2>&1 &)
for _ in $(seq 1 600); do docker info >/dev/null 2>&1 && exit 0; sleep 0.1; done
echo "dockerd did not come back; see /var/log/firedrill-dockerd.log" >&2
exit 1"#,
        &[],
    );
    t.elapsed()
}

fn sandbox_name(drill: &str, run_id: &str) -> String {
    format!("firedrill-{drill}-{}", run_id.to_ascii_lowercase())
}

// ------------------------------------------------------------------- 1. Docker

/// dockerd restarted while the restore runs: an infrastructure failure, so the stages in
/// the sandbox start again with a fresh sandbox once Docker is back, and the good backup
/// passes (a page here would have been for nothing). The first attempt's failure is in
/// the report, and nothing of the run is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_daemon_restarted_mid_restore_is_retried_with_a_fresh_sandbox() {
    let _serial = SERIAL.lock().await;
    ensure_big_db().await;
    let t0 = Instant::now();
    let fx = Fixture::new();
    // Docker takes a few seconds to come back: enough attempts to outlast it.
    let path = fx.drill(
        "dockerd",
        BIG_DB,
        "[retry]\nattempts = 6\nbackoff = \"2s\"\n",
    );
    let run_id = new_run_id();
    let (progress, restore_started) = OnStage::new(Stage::Restore);
    let task = spawn_drill(&path, &run_id, progress, None);
    restore_started.await.expect("the restore started");
    // Into the restore proper: the artifact is streaming in or pg_restore is running.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let down = tokio::task::spawn_blocking(restart_dockerd).await.unwrap();
    eprintln!("dockerd restarted; Docker did not answer for {down:?}");
    let r = finish(task, Duration::from_secs(600)).await;
    eprintln!("{}", human(&r));
    assert_eq!(r.verdict, Verdict::Passed, "{}", human(&r));
    let restore = stage(&r, Stage::Restore);
    assert!(restore.attempts >= 2, "{}", human(&r));
    assert!(
        restore
            .notes
            .iter()
            .any(|n| n.starts_with("attempt 1 failed")),
        "{restore:?}"
    );
    assert!(stage(&r, Stage::Provision).attempts >= 2);
    assert!(
        leftovers(&run_id).await.is_empty(),
        "{:?}\n{}",
        leftovers(&run_id).await,
        human(&r)
    );
    eprintln!("docker restart test: {:?}", t0.elapsed());
}

/// The sandbox killed from outside (`docker kill`) mid-restore: the attempt is recorded
/// as the sandbox dying, naming it (not as what pg_restore printed when its server went),
/// and a fresh sandbox restores the backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_killed_mid_restore_is_retried_with_a_fresh_sandbox() {
    let _serial = SERIAL.lock().await;
    ensure_big_db().await;
    let t0 = Instant::now();
    let fx = Fixture::new();
    let path = fx.drill("killed", BIG_DB, "");
    let run_id = new_run_id();
    let name = sandbox_name("killed", &run_id);
    let (progress, restore_started) = OnStage::new(Stage::Restore);
    let task = spawn_drill(&path, &run_id, progress, None);
    restore_started.await.expect("the restore started");
    tokio::time::sleep(Duration::from_secs(3)).await;
    bash("docker kill \"$1\" >/dev/null", &[&name]);
    let r = finish(task, Duration::from_secs(300)).await;
    eprintln!("{}", human(&r));
    assert_eq!(r.verdict, Verdict::Passed, "{}", human(&r));
    let restore = stage(&r, Stage::Restore);
    assert_eq!(restore.attempts, 2, "{}", human(&r));
    let first = &restore.notes[0];
    assert!(
        first.starts_with("attempt 1 failed") && first.contains(&name) && first.contains("stopped"),
        "{restore:?}"
    );
    assert!(leftovers(&run_id).await.is_empty());
    eprintln!("sandbox kill test: {:?}", t0.elapsed());
}

// ------------------------------------------------------------------- 3. memory

/// A restore that needs more memory than the sandbox has: the kernel kills the server
/// process that holds a 300 MiB row. That is the sandbox's limit, not a broken backup:
/// exit 2, the limit and what to change are in the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_out_of_memory_names_the_limit_and_is_not_a_broken_backup() {
    let _serial = SERIAL.lock().await;
    let t0 = Instant::now();
    create_db(
        "fd_faults_oom",
        "CREATE TABLE blob (id int PRIMARY KEY, body text);
         INSERT INTO blob VALUES (1, repeat('0123456789abcdef', 300 * 65536));",
    )
    .await;
    let fx = Fixture::new();
    let path = fx.drill("oom", "fd_faults_oom", "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("memory = \"1GiB\"", "memory = \"256MiB\"");
    std::fs::write(&path, text).unwrap();
    let run_id = new_run_id();
    let (progress, _) = OnStage::new(Stage::Restore);
    let r = finish(
        spawn_drill(&path, &run_id, progress, None),
        Duration::from_secs(600),
    )
    .await;
    eprintln!("{}", human(&r));
    assert_infrastructure(&r, Stage::Restore);
    let e = r.error.as_ref().unwrap();
    assert!(
        e.message.contains("memory limit (256.0 MiB)"),
        "{}",
        human(&r)
    );
    assert!(
        e.hint.as_deref().unwrap_or("").contains("sandbox.memory"),
        "{}",
        human(&r)
    );
    assert!(leftovers(&run_id).await.is_empty());
    eprintln!("oom test: {:?}", t0.elapsed());
}

// ------------------------------------------------------------------- 2. storage

/// A Garage of this test's own, on its own ports: the test kills it.
struct Garage {
    dir: PathBuf,
}

impl Garage {
    fn start(dir: &Path, port: u16) -> Garage {
        bash(
            "set -e; . deploy/host-setup.sh; fd_start_garage \"$1\" \"$2\"",
            &[&dir.to_string_lossy(), &port.to_string()],
        );
        Garage {
            dir: dir.to_path_buf(),
        }
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(self.dir.join("pid"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The same server again, on the same data.
    fn restart(&self) {
        bash(
            "set -e; g=\"${FIREDRILL_TOOLS:-/opt/firedrill-tools}\"; (setsid \"$g/bin/garage\" -c \"$1/garage.toml\" server >>\"$1/server2.log\" 2>&1 & echo $! > \"$1/pid\")",
            &[&self.dir.to_string_lossy()],
        );
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Passes everything to the real store, and calls `fault` once `after` bytes of the
/// artifact have been read back.
struct FaultMidFetch {
    inner: Arc<dyn ArtifactStore>,
    after: u64,
    fired: Arc<AtomicBool>,
    fault: Arc<dyn Fn() + Send + Sync>,
}

#[async_trait]
impl ArtifactStore for FaultMidFetch {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put_stream(
        &self,
        key: &str,
        chunks: mpsc::Receiver<Upload>,
    ) -> firedrill::Result<u64> {
        self.inner.put_stream(key, chunks).await
    }
    async fn put(&self, key: &str, data: Bytes) -> firedrill::Result<()> {
        self.inner.put(key, data).await
    }
    async fn get_stream(&self, key: &str) -> firedrill::Result<ByteStream> {
        let s = self.inner.get_stream(key).await?;
        if !key.ends_with(ARTIFACT_FILE) {
            return Ok(s);
        }
        let (after, fired, fault) = (self.after, self.fired.clone(), self.fault.clone());
        let mut seen = 0u64;
        Ok(s.inspect(move |item| {
            if let Ok(b) = item {
                seen += b.len() as u64;
                if seen >= after && !fired.swap(true, Ordering::SeqCst) {
                    fault();
                }
            }
        })
        .boxed())
    }
    async fn get(&self, key: &str) -> firedrill::Result<Bytes> {
        self.inner.get(key).await
    }
    async fn size(&self, key: &str) -> firedrill::Result<u64> {
        self.inner.size(key).await
    }
    async fn modified(&self, key: &str) -> firedrill::Result<Option<jiff::Timestamp>> {
        self.inner.modified(key).await
    }
    async fn list(&self, prefix: &str) -> firedrill::Result<Vec<String>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> firedrill::Result<()> {
        self.inner.delete(key).await
    }
}

/// The S3 server dies while the restore streams the artifact out of it: the reads are
/// retried, then the drill fails as infrastructure (exit 2). Restarted, the server still
/// holds the manifest and an artifact with exactly the manifest's size and SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_lost_mid_fetch_fails_as_infrastructure_and_damages_nothing() {
    let _serial = SERIAL.lock().await;
    let tools = std::env::var("FIREDRILL_TOOLS").unwrap_or_else(|_| "/opt/firedrill-tools".into());
    assert!(
        Path::new(&tools).join("bin/garage").exists(),
        "Garage is not installed in {tools}: run `. deploy/host-setup.sh; fd_ensure_garage` (tests/run does)"
    );
    ensure_big_db().await;
    let t0 = Instant::now();
    let fx = Fixture::new();
    let garage = Garage::start(&fx.dir.path().join("garage"), 3930);
    let s3 = s3_from_env_file(Some(&garage.dir.join("env")));
    std::env::set_var("FIREDRILL_TEST_FAULTS_S3_KEY", &s3.key_id);
    std::env::set_var("FIREDRILL_TEST_FAULTS_S3_SECRET", &s3.secret);
    let path = fx.drill("s3lost", BIG_DB, "");
    let local = format!(
        "[storage]\ntype = \"local\"\npath = \"{}\"\n",
        fx.store().display()
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &local,
        &s3.storage_toml(
            "faults",
            "FIREDRILL_TEST_FAULTS_S3_KEY",
            "FIREDRILL_TEST_FAULTS_S3_SECRET",
        ),
    );
    assert!(text.contains("type = \"s3\""));
    std::fs::write(&path, text).unwrap();

    let run_id = new_run_id();
    let fired = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let fault: Arc<dyn Fn() + Send + Sync> = {
        let pid = garage.pid();
        let killed_at = killed_at.clone();
        Arc::new(move || {
            let _ = Command::new("kill").arg("-9").arg(&pid).status();
            *killed_at.lock().unwrap() = Some(Instant::now());
        })
    };
    let wrap = {
        let fired = fired.clone();
        Box::new(
            move |inner: Arc<dyn ArtifactStore>| -> Arc<dyn ArtifactStore> {
                Arc::new(FaultMidFetch {
                    inner,
                    after: 8 << 20,
                    fired,
                    fault,
                })
            },
        )
    };
    let (progress, _) = OnStage::new(Stage::Restore);
    let r = finish(
        spawn_drill(&path, &run_id, progress, Some(wrap)),
        Duration::from_secs(600),
    )
    .await;
    let ended = Instant::now();
    eprintln!("{}", human(&r));
    assert!(fired.load(Ordering::SeqCst), "the fetch never got 8 MiB in");
    assert_infrastructure(&r, Stage::Restore);
    let e = r.error.as_ref().unwrap();
    assert!(e.retryable, "{}", human(&r));
    // The stages in the sandbox were taken again (the server stays down): the first
    // attempt lost the artifact's stream, the last could not reach the store at all.
    let restore = stage(&r, Stage::Restore);
    assert_eq!(restore.attempts, 3, "{}", human(&r));
    assert!(
        restore.notes[0].starts_with("attempt 1 failed")
            && restore.notes[0].contains(ARTIFACT_FILE),
        "{restore:?}"
    );
    assert!(e.message.contains("s3lost/"), "{}", human(&r));
    let retried_for = ended.duration_since(killed_at.lock().unwrap().unwrap());
    eprintln!("the drill gave up {retried_for:?} after the server died");
    // A refused connection fails at once: the time went into the store's retries.
    assert!(retried_for > Duration::from_secs(1), "{retried_for:?}");
    assert!(leftovers(&run_id).await.is_empty());

    // Back up: nothing the drill read was damaged.
    garage.restart();
    let store = firedrill::store::build_store(
        &s3.spec(
            "faults",
            "FIREDRILL_TEST_FAULTS_S3_KEY",
            "FIREDRILL_TEST_FAULTS_S3_SECRET",
        ),
        Path::new("."),
    )
    .unwrap();
    let manifest_key = format!("faults/s3lost/{run_id}/manifest.json");
    let mut manifest = None;
    for _ in 0..40 {
        if let Ok(b) = store.get(&manifest_key).await {
            manifest = Some(firedrill::manifest::Manifest::from_json(&b, &manifest_key).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let manifest = manifest.expect("the manifest is still there");
    assert_eq!(
        store.size(&manifest.artifact_key).await.unwrap(),
        manifest.encrypted_bytes
    );
    let mut sha = Sha256::new();
    let mut s = store.get_stream(&manifest.artifact_key).await.unwrap();
    while let Some(c) = s.next().await {
        sha.update(c.unwrap());
    }
    assert_eq!(hex::encode(sha.finalize()), manifest.sha256);
    // No verdict was recorded against the artifact.
    let marker = format!("faults/s3lost/{run_id}/verified.json");
    if let Ok(b) = store.get(&marker).await {
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_ne!(v["verified"], "failed", "{v}");
    }
    eprintln!("storage test: {:?}", t0.elapsed());
}

// ------------------------------------------------------------------- 4. source

/// Restarts the shared test PostgreSQL in place (its databases stay): `pg_ctl restart
/// -m fast` ends every session, as a failover or a maintenance restart would.
fn restart_pg() -> Duration {
    let dir =
        std::env::var("FIREDRILL_TEST_PG_DIR").unwrap_or_else(|_| "/tmp/firedrill-test-pg".into());
    let t = Instant::now();
    bash(
        r#"set -e; . deploy/host-setup.sh; bin=$(fd_pg_bin)
run=(); [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
"${run[@]}" "$bin/pg_ctl" -D "$1/data" -m fast -w -t 60 -l "$1/server.log" restart >/dev/null"#,
        &[&dir],
    );
    t.elapsed()
}

/// The source restarts while pg_dump streams (and part of the artifact is already
/// written): the dump stage fails, nothing stays in storage (no manifest, no artifact, not
/// even the partial temporary file), no sandbox is made, and the verdict is "could not
/// run" (exit 2), not "backup broken".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_restarted_mid_dump_fails_the_dump_and_stores_nothing() {
    let _serial = SERIAL.lock().await;
    ensure_big_db().await;
    let t0 = Instant::now();
    let fx = Fixture::new();
    // One attempt: this test is about what a failed dump leaves (nothing); the retry of
    // a dump whose source went away is the failure table's (tests/stage_machine.rs).
    let path = fx.drill("pgrestart", BIG_DB, "[retry]\nattempts = 1\n");
    let run_id = new_run_id();
    // Encrypt and upload start once pg_dump runs; wait until part of the artifact is on
    // disk (under its temporary name): the dump is mid-stream, the upload too.
    let (progress, streaming) = OnStage::new(Stage::Encrypt);
    let task = spawn_drill(&path, &run_id, progress, None);
    streaming.await.expect("pg_dump started");
    let tmp = fx.store().join(".firedrill-tmp");
    let t = Instant::now();
    while !files_under(&tmp).iter().any(|(_, n)| *n > 0) {
        assert!(t.elapsed() < Duration::from_secs(60), "no upload began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = tokio::task::spawn_blocking(restart_pg).await.unwrap();
    eprintln!("PostgreSQL restarted in {took:?}");
    let r = finish(task, Duration::from_secs(300)).await;
    eprintln!("{}", human(&r));
    assert_infrastructure(&r, Stage::Dump);
    assert_eq!(stage(&r, Stage::Dump).outcome, Outcome::Failed);
    assert_ne!(stage(&r, Stage::Upload).outcome, Outcome::Passed);
    assert_eq!(stage(&r, Stage::Provision).outcome, Outcome::Skipped);
    assert!(r.artifact.is_none());
    let stored: Vec<_> = files_under(&fx.store())
        .into_iter()
        .filter(|(p, _)| !p.starts_with(fx.store().join(".firedrill-tmp")))
        .collect();
    assert!(stored.is_empty(), "{stored:?}");
    let tmp = temp_files_settle(&fx.store()).await;
    assert!(tmp.is_empty(), "a partial upload was left behind: {tmp:?}");
    assert!(leftovers(&run_id).await.is_empty());
    // The source is back for everyone else.
    pg_client(BIG_DB).await;
    eprintln!("source restart test: {:?}", t0.elapsed());
}

// ------------------------------------------------------------------- 5. disk full

/// A tmpfs mounted for the test, unmounted however the test ends.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        bash(
            "mount -t tmpfs -o size=\"$2\" firedrill-faults \"$1\"",
            &[&at.to_string_lossy(), size],
        );
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The store's disk fills up mid-upload (the local store writes a temporary file in
/// `.firedrill-tmp` and renames it when complete): the upload fails with an error that
/// names the file and says the disk is full, the temporary file is removed (the space is
/// given back) and no manifest makes anything look complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_under_the_store_fails_the_upload_and_keeps_nothing_partial() {
    let _serial = SERIAL.lock().await;
    ensure_big_db().await;
    let t0 = Instant::now();
    let fx = Fixture::new();
    let _disk = SmallDisk::mount(&fx.store(), "4m");
    let path = fx.drill("diskfull", BIG_DB, "");
    let catalog = fx.dir.path().join("catalog.db");
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .arg("--catalog")
        .arg(&catalog)
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("No space left on device"), "{stdout}");
    let store = fx.store().display().to_string();
    assert!(
        stdout.contains(&format!("{store}/diskfull/")),
        "the error names the file on disk: {stdout}"
    );
    let c = SqliteCatalog::open(&catalog).unwrap();
    let runs = c.runs(None, 5).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].failed_stage, Some(Stage::Upload), "{runs:?}");
    assert!(c.artifacts(None).await.unwrap().is_empty());
    let stored = files_under(&fx.store());
    assert!(stored.is_empty(), "{stored:?}");
    assert!(leftovers(&runs[0].run_id).await.is_empty());
    eprintln!("disk full test: {:?}", t0.elapsed());
}

/// A store in front of the real one that fills the real disk just before one write.
struct FillBefore {
    inner: Arc<dyn ArtifactStore>,
    /// The file name whose write finds the disk full.
    target: &'static str,
    disk: PathBuf,
}

impl FillBefore {
    fn fill(&self, key: &str) {
        if key.ends_with(self.target) {
            let _ = Command::new("dd")
                .arg("if=/dev/zero")
                .arg(format!("of={}", self.disk.join("filler").display()))
                .arg("bs=64k")
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[async_trait]
impl ArtifactStore for FillBefore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put_stream(
        &self,
        key: &str,
        chunks: mpsc::Receiver<Upload>,
    ) -> firedrill::Result<u64> {
        self.fill(key);
        self.inner.put_stream(key, chunks).await
    }
    async fn put(&self, key: &str, data: Bytes) -> firedrill::Result<()> {
        self.fill(key);
        self.inner.put(key, data).await
    }
    async fn get_stream(&self, key: &str) -> firedrill::Result<ByteStream> {
        self.inner.get_stream(key).await
    }
    async fn get(&self, key: &str) -> firedrill::Result<Bytes> {
        self.inner.get(key).await
    }
    async fn size(&self, key: &str) -> firedrill::Result<u64> {
        self.inner.size(key).await
    }
    async fn modified(&self, key: &str) -> firedrill::Result<Option<jiff::Timestamp>> {
        self.inner.modified(key).await
    }
    async fn list(&self, prefix: &str) -> firedrill::Result<Vec<String>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> firedrill::Result<()> {
        self.inner.delete(key).await
    }
}

/// The store's disk fills at each write in turn (the artifact, its manifest, the
/// verification marker): no partial file, no 0-byte manifest or marker, no part file in
/// the store's temporary directory, no artifact without its manifest; the hint says
/// truthfully that nothing of the upload was kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fills_at_each_write_keeps_nothing_partial_and_says_so() {
    let _serial = SERIAL.lock().await;
    create_db("fd_fill", SHOP).await;
    let fx = Fixture::new();
    let _disk = SmallDisk::mount(&fx.store(), "64m");
    let path = fx.drill("fill", "fd_fill", "");
    let everything = |dir: &Path| -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if e.file_name() != "filler" {
                    out.push(format!(
                        "{} ({} bytes)",
                        p.strip_prefix(dir).unwrap().display(),
                        e.metadata().unwrap().len()
                    ));
                }
            }
        }
        out.sort();
        out
    };
    for (target, stage) in [
        (ARTIFACT_FILE, Some(Stage::Upload)),
        ("manifest.json", Some(Stage::Upload)),
        ("verified.json", None),
    ] {
        let disk = fx.store();
        let wrap: WrapStore = Box::new(move |inner| {
            Arc::new(FillBefore {
                inner,
                target,
                disk,
            })
        });
        let run_id = new_run_id();
        let r = finish(
            spawn_drill(&path, &run_id, OnStage::new(Stage::Dump).0, Some(wrap)),
            Duration::from_secs(600),
        )
        .await;
        let _ = std::fs::remove_file(fx.store().join("filler"));
        let left = everything(&fx.store());
        eprintln!("{target}: {}\nleft: {left:?}", human(&r));
        match stage {
            Some(stage) => {
                assert_eq!(r.failed_stage, Some(stage), "{target}: {}", human(&r));
                let e = r.error.as_ref().unwrap();
                assert!(
                    e.message.contains("No space left") || e.message.contains("full"),
                    "{target}: {}",
                    human(&r)
                );
                if target == "manifest.json" {
                    assert!(
                        e.hint
                            .as_deref()
                            .unwrap_or("")
                            .contains("nothing of this upload was kept"),
                        "{target}: {}",
                        human(&r)
                    );
                }
                assert!(left.is_empty(), "{target}: left {left:?}");
            }
            None => {
                // The marker is a cache of the verdict (the catalog holds it): the drill
                // passes, and no 0-byte marker or part is left beside the artifact.
                assert_eq!(r.verdict, Verdict::Passed, "{target}: {}", human(&r));
                let ours: Vec<&String> = left.iter().filter(|f| f.contains(&run_id)).collect();
                assert_eq!(ours.len(), 2, "{target}: {left:?}");
                assert!(
                    ours.iter()
                        .all(|f| f.contains(ARTIFACT_FILE) || f.contains("manifest.json")),
                    "{target}: {left:?}"
                );
                assert!(
                    !left.iter().any(|f| f.starts_with(".firedrill-tmp")),
                    "{target}: {left:?}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------- 6. paging

/// A port nobody listens on (bound, then let go): a source that is not there.
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The webhook receiver is down when a drill fails: the page waits in the outbox, and
/// `firedrill notify flush` (a new process) delivers it once the receiver is back, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_down_then_up_delivers_the_page_on_notify_flush() {
    let _serial = SERIAL.lock().await;
    let t0 = Instant::now();
    let fx = Fixture::new();
    // A source nobody listens on: the drill fails at once, as infrastructure.
    let dead = unused_port();
    let path = fx.drill("hookdown", "postgres", "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&format!("port = {}", pg().port), &format!("port = {dead}"));
    std::fs::write(&path, text).unwrap();
    // The receiver's port is taken now; it answers only later.
    let hook = reserve_port();
    let port = hook.local_addr().unwrap().port();
    let cfg = fx.dir.path().join("firedrill.toml");
    std::fs::write(
        &cfg,
        format!("[notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"),
    )
    .unwrap();
    let catalog = fx.dir.path().join("catalog.db");
    let firedrill = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .arg("--config")
            .arg(&cfg)
            .arg("--catalog")
            .arg(&catalog)
            .args(args)
            .output()
            .unwrap()
    };
    let out = firedrill(&["run", &path.to_string_lossy(), "--quiet"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not delivered yet"), "{stderr}");
    // Still down: flush keeps it.
    let out = firedrill(&["notify", "flush", "--now"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent 0, retrying 1"));

    let (_, got) = receiver_on(hook).await;
    let out = firedrill(&["notify", "flush", "--now"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("sent 1, retrying 0"), "{stdout}");
    let out = firedrill(&["notify", "flush", "--now"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent 0, retrying 0"));
    let pages = got.lock().unwrap().clone();
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(pages[0]["schema"], "firedrill.page.v1");
    assert_eq!(pages[0]["kind"], "trigger");
    assert_eq!(pages[0]["severity"], "warning");
    assert_eq!(pages[0]["drill"], "hookdown");
    assert_eq!(pages[0]["stage"], "dump");
    eprintln!("webhook outbox test: {:?}", t0.elapsed());
}

/// The catalog's disk fills while a drill is failing: the page still goes out, once,
/// straight to its channel; `run` exits non-zero saying the run was kept aside; once
/// space returns, the next command records the run once, its page as already sent, and
/// a flush sends nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_catalog_disk_still_pages_once_and_records_the_run_when_space_returns() {
    let _serial = SERIAL.lock().await;
    let fx = Fixture::new();
    // A source that accepts and then says nothing: the dump stage hangs until its timeout,
    // which leaves the test time to fill the disk.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let path = fx.drill(
        "catfull",
        "postgres",
        "dump = \"8s\"\n\n[retry]\nattempts = 1\n",
    );
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&format!("port = {}", pg().port), &format!("port = {port}"));
    std::fs::write(&path, text).unwrap();
    let (hook, got) = receiver().await;
    let cfg = fx.dir.path().join("firedrill.toml");
    std::fs::write(
        &cfg,
        format!(
            "[notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n"
        ),
    )
    .unwrap();
    let disk = fx.dir.path().join("catdisk");
    let _disk = SmallDisk::mount(&disk, "2m");
    let catalog = disk.join("catalog.db");
    let firedrill = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
        c.arg("--config")
            .arg(&cfg)
            .arg("--catalog")
            .arg(&catalog)
            .args(args)
            .stdin(Stdio::null());
        c
    };
    let mut child = firedrill(&["run", &path.to_string_lossy(), "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The run is recorded as running; then the disk fills.
    let t = Instant::now();
    let run_id = loop {
        if let Some(id) = running_run(&catalog).await {
            break id;
        }
        if t.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the run never started: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", disk.join("filler").display()))
        .arg("bs=64k")
        .stderr(Stdio::null())
        .status();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("could not record run {run_id}")) && stderr.contains("kept in"),
        "{stderr}"
    );
    let pages = pages_settled(&got).await;
    assert_eq!(pages.len(), 1, "one page, delivered directly: {pages:?}");
    assert_eq!(pages[0]["run_id"], run_id.as_str());
    assert_eq!(pages[0]["stage"], "dump");

    // Space returns; the next command records the run, once, and its page as sent.
    std::fs::remove_file(disk.join("filler")).unwrap();
    let out = firedrill(&["history", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours: Vec<&serde_json::Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["run_id"] == run_id.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{runs:#}");
    assert_eq!(ours[0]["status"], "error", "{runs:#}");
    let out = firedrill(&["notify", "flush", "--now"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("sent 0"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = firedrill(&["notify", "outbox", "--json"]).output().unwrap();
    let outbox: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let items = outbox.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{outbox:#}");
    assert_eq!(items[0]["state"], "sent", "{outbox:#}");
    assert_eq!(pages_settled(&got).await.len(), 1, "nothing doubled");
    // The spool is empty again.
    let spool = disk.join("catalog.db.spool");
    assert!(
        std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) == 0,
        "{}",
        spool.display()
    );
}

// ------------------------------------------------------------------- 7. SIGKILL

fn order(s: Stage) -> usize {
    Stage::ALL.iter().position(|x| *x == s).unwrap()
}

/// The run in progress in a catalog.
async fn running_run(catalog: &Path) -> Option<String> {
    let c = SqliteCatalog::open(catalog).ok()?;
    c.runs(None, 5)
        .await
        .ok()?
        .into_iter()
        .find(|r| r.status == firedrill::RunStatus::Running)
        .map(|r| r.run_id)
}

/// Waits for a line of the CLI's stderr containing `what`; panics if the run ends or
/// stalls first.
async fn wait_line(
    lines: &mut mpsc::UnboundedReceiver<String>,
    what: &str,
    seen: &mut Vec<String>,
) {
    loop {
        let l = tokio::time::timeout(Duration::from_secs(300), lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no `{what}` within 300s: {seen:#?}"))
            .unwrap_or_else(|| panic!("the run ended before `{what}`: {seen:#?}"));
        seen.push(l.clone());
        if l.contains(what) {
            return;
        }
    }
}

/// `firedrill run` SIGKILLed in each stage in turn (a crash, an OOM kill of firedrill
/// itself, a power cut): its run stays `running` in the catalog and its sandbox stays up.
/// The daemon's start-up recovery then marks the run lost, removes the sandbox and
/// pages once, and a second restart does not page again. Nothing in storage looks
/// complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_every_stage_then_recovery_marks_lost_reaps_and_pages_once() {
    let _serial = SERIAL.lock().await;
    ensure_big_db().await;
    let t0 = Instant::now();
    let (hook, pages) = receiver().await;
    for kill_in in [
        Stage::Dump,
        Stage::Encrypt,
        Stage::Upload,
        Stage::Provision,
        Stage::Restore,
        Stage::Verify,
    ] {
        let ts = Instant::now();
        let fx = Fixture::new();
        let dir = fx.dir.path();
        let drills = dir.join("drills");
        std::fs::create_dir_all(&drills).unwrap();
        let drill = fx.drill("killed", BIG_DB, "");
        let text = std::fs::read_to_string(&drill).unwrap().replace(
            "identity = { file = \"identity.txt\" }",
            &format!("identity = {{ file = \"{}\" }}", fx.identity.display()),
        );
        let drill = drills.join("killed.toml");
        std::fs::write(&drill, text).unwrap();
        let catalog = dir.join("catalog.db");
        std::fs::write(
            dir.join("firedrill.toml"),
            format!(
                "catalog = \"{}\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\ntoken = {{ env = \"FIREDRILL_TEST_FAULTS_TOKEN\" }}\n\n[notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n",
                catalog.display()
            ),
        )
        .unwrap();

        let mut child = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .arg("--catalog")
            .arg(&catalog)
            .arg("run")
            .arg(&drill)
            .env("FIREDRILL_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, mut lines) = mpsc::unbounded_channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        wait_line(&mut lines, &format!("stage {kill_in} started"), &mut seen).await;
        match kill_in {
            // Mid-upload: part of the artifact is on disk under its temporary name.
            Stage::Upload => {
                let tmp = fx.store().join(".firedrill-tmp");
                let t = Instant::now();
                while !files_under(&tmp).iter().any(|(_, n)| *n > 0) {
                    assert!(t.elapsed() < Duration::from_secs(60), "no upload began");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            // The sandbox exists: the kill orphans it.
            Stage::Provision => {
                let run_id = running_run(&catalog).await.expect("a running run");
                let t = Instant::now();
                while leftovers(&run_id).await.is_empty() {
                    assert!(
                        t.elapsed() < Duration::from_secs(120),
                        "no sandbox appeared"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Stage::Restore => tokio::time::sleep(Duration::from_secs(2)).await,
            _ => {}
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let run_id = running_run(&catalog)
            .await
            .unwrap_or_else(|| panic!("killed in {kill_in}: no run left running: {seen:#?}"));
        let orphans = leftovers(&run_id).await;
        if matches!(kill_in, Stage::Provision | Stage::Restore | Stage::Verify) {
            assert!(
                !orphans.is_empty(),
                "killed in {kill_in}: the sandbox should be orphaned"
            );
        }

        let before = pages.lock().unwrap().len();
        let mut d = DaemonProc::start(&dir.join("firedrill.toml"), DAEMON_ENV);
        assert!(
            d.terminate(Duration::from_secs(60)).is_some(),
            "the daemon did not stop"
        );
        assert!(
            leftovers(&run_id).await.is_empty(),
            "killed in {kill_in}: the recovery left {:?}",
            leftovers(&run_id).await
        );
        let c = SqliteCatalog::open(&catalog).unwrap();
        let run = c.run(&run_id).await.unwrap().unwrap();
        assert_eq!(
            run.status,
            firedrill::RunStatus::Lost,
            "killed in {kill_in}: {run:?}"
        );
        // Nothing in storage looks complete: no manifest of this run.
        let manifest = fx.manifest_path("killed", &run_id);
        let before_provision = order(kill_in) < order(Stage::Provision);
        assert!(
            !(before_provision && manifest.exists()),
            "killed in {kill_in}: {manifest:?} exists"
        );
        if before_provision {
            assert!(c.artifacts(None).await.unwrap().is_empty());
        }
        // A second start finds nothing to recover and pages nobody again.
        let mut d = DaemonProc::start(&dir.join("firedrill.toml"), DAEMON_ENV);
        assert!(
            d.terminate(Duration::from_secs(60)).is_some(),
            "the daemon did not stop"
        );
        let got: Vec<serde_json::Value> = pages.lock().unwrap()[before..].to_vec();
        let lost: Vec<_> = got
            .iter()
            .filter(|p| p["run_id"] == run_id.as_str())
            .collect();
        assert_eq!(lost.len(), 1, "killed in {kill_in}: {got:#?}");
        assert_eq!(lost[0]["kind"], "trigger");
        assert_eq!(lost[0]["severity"], "warning");
        assert!(
            lost[0]["error"].as_str().unwrap_or("").contains("was lost"),
            "{:?}",
            lost[0]
        );
        eprintln!("SIGKILL in {kill_in}: recovered in {:?}", ts.elapsed());
    }
    eprintln!("SIGKILL test: {:?}", t0.elapsed());
}

// ------------------------------------------------------------------- 8. under the daemon

/// A daemon directory: `drill` (a drill file of `fx`) moved into `drills/`, a catalog, and
/// a webhook channel to `hook`. Returns the main config's path.
fn daemon_dir(fx: &Fixture, drill: &Path, hook: &str) -> PathBuf {
    let dir = fx.dir.path();
    let drills = dir.join("drills");
    std::fs::create_dir_all(&drills).unwrap();
    let text = std::fs::read_to_string(drill).unwrap().replace(
        "identity = { file = \"identity.txt\" }",
        &format!("identity = {{ file = \"{}\" }}", fx.identity.display()),
    );
    std::fs::write(drills.join(drill.file_name().unwrap()), text).unwrap();
    std::fs::remove_file(drill).unwrap();
    let cfg = dir.join("firedrill.toml");
    std::fs::write(
        &cfg,
        format!(
            "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\ntoken = {{ env = \"FIREDRILL_TEST_FAULTS_TOKEN\" }}\n\n[notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n"
        ),
    )
    .unwrap();
    cfg
}

/// Starts `drill` through the daemon's API and waits for the run to finish; returns it
/// as `GET /api/v1/runs/{id}` shows it.
async fn run_through(d: &DaemonProc, drill: &str) -> serde_json::Value {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/api/v1/drills/{drill}/runs", d.base))
        .bearer_auth("faults-token-5e0b7d21")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    loop {
        let run: serde_json::Value = http
            .get(format!("{}/api/v1/runs/{id}", d.base))
            .bearer_auth("faults-token-5e0b7d21")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !run["report"].is_null() {
            return run;
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "run {id} did not end"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits a moment for pages in flight, then returns them.
async fn pages_settled(pages: &Received) -> Vec<serde_json::Value> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    pages.lock().unwrap().clone()
}

/// The store fills during the upload, under the daemon: the dump and the encryption
/// stop (they are not the failure), the run ends `error` at the upload, and the on-call
/// is paged once, a warning, however often it happens again. (Before run states were
/// types, the stopped siblings made such a run `aborted`, and the daemon paged nobody.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fills_during_upload_pages_once_under_the_daemon() {
    let _serial = SERIAL.lock().await;
    ensure_big_db().await;
    let fx = Fixture::new();
    let _disk = SmallDisk::mount(&fx.store(), "4m");
    let (hook, pages) = receiver().await;
    let drill = fx.drill("full", BIG_DB, "");
    let cfg = daemon_dir(&fx, &drill, &hook);
    let d = DaemonProc::start(&cfg, DAEMON_ENV);
    for attempt in 1..=2 {
        let run = run_through(&d, "full").await;
        assert_eq!(run["status"], "error", "attempt {attempt}: {run:#}");
        let report = &run["report"];
        assert_eq!(report["failed_stage"], "upload", "{report:#}");
        let outcome = |s: &str| {
            report["stages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["stage"] == s)
                .unwrap()["outcome"]
                .clone()
        };
        assert_eq!(outcome("upload"), "failed");
        assert_ne!(outcome("dump"), "failed", "{report:#}");
        assert!(
            report["error"]["message"]
                .as_str()
                .unwrap()
                .contains("the storage is full"),
            "{report:#}"
        );
    }
    let got = pages_settled(&pages).await;
    assert_eq!(got.len(), 1, "one page for the incident: {got:#?}");
    assert_eq!(got[0]["kind"], "trigger");
    assert_eq!(got[0]["severity"], "warning");
    assert_eq!(got[0]["stage"], "upload");
    // Whoever reads the daemon's log sees each run that errored, and why.
    let log = d.log.lock().unwrap().clone();
    assert_eq!(
        log.lines()
            .filter(|l| l.starts_with("firedrill daemon: drill full run ")
                && l.contains(" error: ")
                && l.contains("the storage is full"))
            .count(),
        2,
        "{log}"
    );
}

/// The source drops pg_dump's connection, again and again, under the daemon: the backup
/// is taken again per `[retry]` (a source that dropped out once is no news), then the
/// run ends `error` at the dump, and the on-call is paged once, a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_drops_pg_dump_pages_once_under_the_daemon() {
    let _serial = SERIAL.lock().await;
    ensure_big_db().await;
    let fx = Fixture::new();
    let (hook, pages) = receiver().await;
    let drill = fx.drill(
        "dropped",
        BIG_DB,
        "[retry]\nattempts = 2\nbackoff = \"1s\"\n",
    );
    let cfg = daemon_dir(&fx, &drill, &hook);
    let d = DaemonProc::start(&cfg, DAEMON_ENV);
    // Every pg_dump session on the database is ended as soon as it shows.
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let admin = pg_client("postgres").await;
            while !stop.load(Ordering::SeqCst) {
                let _ = admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = $1 AND application_name = 'firedrill-pg_dump'",
                        &[&BIG_DB],
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let run = run_through(&d, "dropped").await;
    stop.store(true, Ordering::SeqCst);
    killer.await.unwrap();
    assert_eq!(run["status"], "error", "{run:#}");
    let report = &run["report"];
    assert_eq!(report["failed_stage"], "dump", "{report:#}");
    let dump = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stage"] == "dump")
        .unwrap()
        .clone();
    assert_eq!(dump["attempts"], 2, "{dump:#}");
    assert_eq!(report["error"]["kind"], "infrastructure", "{report:#}");
    let got = pages_settled(&pages).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["severity"], "warning");
    assert_eq!(got[0]["stage"], "dump");
    // The source is fine for everyone else.
    pg_client(BIG_DB).await;
}
