//! Physical drills of pgBackRest backups, with real tools: a PostgreSQL with data
//! checksums whose WAL pgBackRest archives to an encrypted posix repository, or to one
//! in the tests' S3 server (Garage) behind a TLS proxy (stunnel) with a CA the test
//! makes (`fd_start_pgbackrest` of deploy/host-setup.sh), drilled in the real sandbox.
//!
//! A ticking table (a row every 50 ms under write load) makes the time targets exact:
//! the rows committed before the target are there, the rows after it are not.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use firedrill::{RunReport, Stage, Verdict};
use support::*;

const CIPHER: &str = "a-long-test-cipher-passphrase";

/// A source cluster with its pgBackRest repository, removed at the end.
struct Cluster {
    dir: PathBuf,
    port: u16,
    s3: Option<S3Repo>,
}

/// The tests' S3 server behind a TLS proxy, and a repository's path in its bucket.
struct S3Repo {
    proxy: TlsProxy,
    bucket: String,
    region: String,
    key_id: String,
    secret: String,
    path: String,
}

/// stunnel (Debian's stunnel4) serving TLS on 127.0.0.1:port in front of a plain
/// HTTP address, with a server certificate for `localhost` signed by a CA of its own.
struct TlsProxy {
    child: std::process::Child,
    port: u16,
    certs: tempfile::TempDir,
}

impl TlsProxy {
    fn start(upstream: &str) -> TlsProxy {
        let certs = make_certs();
        let port = support::daemon::reserve_port().local_addr().unwrap().port();
        let conf = certs.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\n[s3]\naccept = 127.0.0.1:{port}\nconnect = {upstream}\ncert = {dir}/server.pem\nkey = {dir}/server.key\n",
                dir = certs.path().display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("stunnel4")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(
                "stunnel4 (Debian package stunnel4, installed by tests/run) runs the TLS proxy",
            );
        // Stopped on drop, a panic included.
        let proxy = TlsProxy { child, port, certs };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return proxy;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("stunnel did not listen on 127.0.0.1:{port} in 10 s");
    }

    fn ca(&self) -> PathBuf {
        self.certs.path().join("ca.pem")
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let port = support::daemon::reserve_port().local_addr().unwrap().port();
        let dir = PathBuf::from(format!("/tmp/fd-pbr-{name}-{}", std::process::id()));
        host_setup(&format!(
            "fd_start_pgbackrest {} {port} {CIPHER}",
            dir.display()
        ));
        Cluster {
            dir,
            port,
            s3: None,
        }
    }

    /// A cluster whose repository is in the tests' S3 server, reached through a TLS
    /// proxy, under a path of its own in the bucket.
    fn start_s3(name: &str) -> Cluster {
        let var = |k: &str| {
            std::env::var(k)
                .unwrap_or_else(|_| panic!("{k}: run through tests/run, which starts Garage"))
        };
        let endpoint = var("FIREDRILL_TEST_S3_ENDPOINT");
        let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/');
        let repo = S3Repo {
            proxy: TlsProxy::start(upstream),
            bucket: var("FIREDRILL_TEST_S3_BUCKET"),
            region: var("FIREDRILL_TEST_S3_REGION"),
            key_id: var("FIREDRILL_TEST_S3_KEY_ID"),
            secret: var("FIREDRILL_TEST_S3_SECRET"),
            path: format!(
                "/pgbackrest-{name}-{}-{}",
                std::process::id(),
                jiff::Timestamp::now().as_millisecond()
            ),
        };
        let port = support::daemon::reserve_port().local_addr().unwrap().port();
        let dir = PathBuf::from(format!("/tmp/fd-pbr-{name}-{}", std::process::id()));
        host_setup(&format!(
            "FD_PGBR_S3='{} localhost {} {} {} {} {} {}' fd_start_pgbackrest {} {port} {CIPHER}",
            repo.bucket,
            repo.proxy.port,
            repo.region,
            repo.key_id,
            repo.secret,
            repo.proxy.ca().display(),
            repo.path,
            dir.display()
        ));
        Cluster {
            dir,
            port,
            s3: Some(repo),
        }
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (c, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                self.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        c
    }

    fn pg_ctl(&self, action: &str) {
        host_setup(&format!(
            "run=(); [ \"$(id -u)\" = 0 ] && run=(env -C / runuser -u postgres --); \
             \"${{run[@]}}\" \"$(fd_pg_bin)/pg_ctl\" -D {dir}/data -l {dir}/server.log -w -m fast {action} >/dev/null",
            dir = self.dir.display()
        ));
    }

    fn repo(&self) -> PathBuf {
        self.dir.join("repo")
    }

    /// A drill of this cluster: `source` lines go in `[source]`, `rest` after it.
    fn drill(&self, fx: &Path, name: &str, source: &str, rest: &str) -> PathBuf {
        let cipher = secret_file(fx, &format!("{name}-cipher"), CIPHER);
        let (repo, s3) = match &self.s3 {
            None => (self.repo().display().to_string(), String::new()),
            Some(s3) => (
                s3.path.clone(),
                format!(
                    "[source.s3]\nbucket = \"{}\"\nregion = \"{}\"\nendpoint = \"https://localhost:{}\"\nuri_style = \"path\"\naccess_key_id = {{ file = \"{}\" }}\nsecret_access_key = {{ file = \"{}\" }}\nca_file = \"{}\"\n",
                    s3.bucket,
                    s3.region,
                    s3.proxy.port,
                    secret_file(fx, &format!("{name}-key-id"), &s3.key_id).display(),
                    secret_file(fx, &format!("{name}-secret"), &s3.secret).display(),
                    s3.proxy.ca().display()
                ),
            ),
        };
        let command = if running_as_root() {
            r#"command = ["runuser", "-u", "postgres", "--", "pgbackrest"]"#
        } else {
            ""
        };
        let path = fx.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"name = "{name}"

[source]
type = "pgbackrest"
stanza = "main"
repo_path = "{repo}"
config = "{dir}/pgbackrest.conf"
{command}
cipher_pass = {{ file = "{cipher}" }}
{source}

[source.server]
host = "127.0.0.1"
port = {port}
database = "postgres"
user = "postgres"

{s3}
[storage]
type = "local"
path = "{store}"

[timeouts]
restore = "5m"
verify = "5m"

{rest}
"#,
                dir = self.dir.display(),
                cipher = cipher.display(),
                port = self.port,
                store = fx.join("store").display(),
            ),
        )
        .unwrap();
        path
    }

    /// Switches to a new WAL segment and waits until the one left is archived.
    async fn archive_now(&self) {
        let c = self.client().await;
        let wal: String = c
            .query_one("SELECT pg_walfile_name(pg_switch_wal())", &[])
            .await
            .unwrap()
            .get(0);
        for _ in 0..240 {
            let last: Option<String> = c
                .query_one("SELECT last_archived_wal FROM pg_stat_archiver", &[])
                .await
                .unwrap()
                .get(0);
            if last.is_some_and(|l| l >= wal) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("WAL {wal} was not archived in 60 s");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                ". deploy/host-setup.sh; fd_stop_pg {}",
                self.dir.display()
            ))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a deploy/host-setup.sh command (stopping a server) and removes a directory when
/// dropped, a failed test included.
struct Teardown(String, PathBuf);

impl Drop for Teardown {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(". deploy/host-setup.sh; {}", self.0))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Inserts a tick every 50 ms until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Ticker {
    async fn start(c: tokio_postgres::Client) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                c.execute("INSERT INTO ticks DEFAULT VALUES", &[])
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Ticker {
            stop,
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

/// A moment between two committed ticks, and how many ticks were committed before it.
async fn moment_between_ticks(c: &tokio_postgres::Client) -> (jiff::Timestamp, i64) {
    let rows = c
        .query(
            "SELECT id, extract(epoch FROM at)::float8 FROM ticks ORDER BY id DESC LIMIT 2",
            &[],
        )
        .await
        .unwrap();
    let (later, earlier): (f64, f64) = (rows[0].get(1), rows[1].get(1));
    let id: i64 = rows[1].get(0);
    let mid = (earlier + later) / 2.0;
    let at = jiff::Timestamp::from_microsecond((mid * 1e6) as i64).unwrap();
    let before: i64 = c
        .query_one(
            "SELECT count(*) FROM ticks WHERE at <= to_timestamp($1)",
            &[&mid],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, id, "ticks are numbered in commit order");
    (at, before)
}

fn stage_notes(r: &RunReport, s: Stage) -> String {
    stage(r, s).notes.join("\n")
}

/// Passed, and pgBackRest's verify found nothing wrong anywhere (a repository copied
/// out of a bucket holds only what the restore reads: what is not copied is not damage).
fn assert_passed(r: &RunReport) {
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{:?}\n{}",
        r.error,
        serde_json::to_string_pretty(&r.stages).unwrap()
    );
    let restore = stage_notes(r, Stage::Restore);
    assert!(!restore.contains("pgbackrest verify"), "{restore}");
}

async fn setup(c: &Cluster) -> tokio_postgres::Client {
    let db = c.client().await;
    db.batch_execute(
        "CREATE TABLE ticks(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
         CREATE TABLE items AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g;
         ALTER TABLE items ADD PRIMARY KEY (id);
         CREATE VIEW recent AS SELECT * FROM ticks WHERE at > now() - interval '1 hour';",
    )
    .await
    .unwrap();
    db
}

#[tokio::test(flavor = "multi_thread")]
async fn full_and_incremental_backups_recover_to_their_restore_point_latest_and_a_time() {
    drill_full_incremental_and_times(Cluster::start("ok")).await;
}

/// The same drills with the repository in S3, behind TLS: what the restore needs is
/// copied out of the bucket into the sandbox.
#[tokio::test(flavor = "multi_thread")]
async fn an_s3_repository_behind_tls_is_drilled_the_same() {
    drill_full_incremental_and_times(Cluster::start_s3("s3")).await;
}

async fn drill_full_incremental_and_times(c: Cluster) {
    let fx = tempfile::tempdir().unwrap();
    let db = setup(&c).await;
    let ticker = Ticker::start(c.client().await).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A full backup under write load, drilled to the restore point the drill made: the
    // fingerprint taken there compares exactly.
    let r = run_file(&c.drill(fx.path(), "full", "backup = \"full\"", "")).await;
    assert_passed(&r);
    let rec = r.recovery.clone().expect("a recovery report");
    assert!(rec.backup_set.ends_with("F (full)"), "{rec:?}");
    let full = rec.backup_set.trim_end_matches(" (full)").to_string();
    if c.s3.is_some() {
        let restore = stage_notes(&r, Stage::Restore);
        assert!(
            restore.contains("out of the bucket into the sandbox"),
            "{restore}"
        );
    }
    assert!(
        rec.target_reached
            .contains("recovery stopping at restore point \"firedrill-"),
        "{rec:?}"
    );
    assert_eq!(rec.timeline, 1);
    assert_eq!(rec.new_timeline, Some(2));
    assert!(rec.wal_from.is_some() && rec.wal_to.is_some());
    let verify = stage_notes(&r, Stage::Verify);
    assert!(
        verify.contains("2 tables compared (2 by content checksum)"),
        "{verify}"
    );
    assert!(
        verify.contains("pg_checksums: every page's checksum verified"),
        "{verify}"
    );
    assert!(
        verify.contains("pg_amcheck: every database's tables"),
        "{verify}"
    );
    assert!(r.fingerprint_mismatches.is_empty());

    // A moment between the full and the incremental backup.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (between, ticks_between) = moment_between_ticks(&db).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // An incremental one, drilled to the end of the archive.
    let r = run_file(&c.drill(
        fx.path(),
        "incr",
        "backup = \"incr\"\ntarget = \"latest\"",
        "",
    ))
    .await;
    assert_passed(&r);
    let rec = r.recovery.clone().unwrap();
    assert!(rec.backup_set.ends_with("I (incr)"), "{rec:?}");
    assert!(
        rec.target_reached
            .starts_with("the end of the archived WAL"),
        "{rec:?}"
    );

    // A moment after the incremental backup, archived.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, ticks_after) = moment_between_ticks(&db).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.archive_now().await;

    // To a time: exactly the ticks committed before it, from the set that ends before it.
    for (name, at, ticks, set) in [
        ("to-time-incr", after, ticks_after, "I (incr)"),
        ("to-time-full", between, ticks_between, "F (full)"),
    ] {
        let drill = c.drill(
            fx.path(),
            name,
            &format!("target = \"time\"\ntarget_time = \"{at}\""),
            &format!(
                r#"[[assertion]]
name = "the ticks before the target, and none after"
sql = "select count(*) from ticks"
expect = "= {ticks}"

[[assertion]]
name = "the last tick is the one before the target"
sql = "select max(id) from ticks"
expect = "= {ticks}"
"#
            ),
        );
        let r = run_file(&drill).await;
        assert_passed(&r);
        let rec = r.recovery.clone().unwrap();
        assert!(rec.backup_set.ends_with(set), "{name}: {rec:?}");
        assert!(
            rec.target_reached
                .starts_with("recovery stopping before commit"),
            "{name}: {rec:?}"
        );
        assert_eq!(
            stage(&r, Stage::Dump).outcome,
            firedrill::status::Outcome::Skipped
        );
    }

    // A chosen backup set (`run --artifact LABEL`): the full one, to the end of the WAL.
    let drill = firedrill::load_drill(&c.drill(fx.path(), "chosen", "", "")).unwrap();
    let r = firedrill::run_drill(
        &drill,
        &firedrill::RunOptions {
            artifact: Some(full.clone()),
            ..Default::default()
        },
        &firedrill::Silent,
        &firedrill::Stop::new(),
    )
    .await;
    assert_passed(&r);
    let rec = r.recovery.clone().unwrap();
    assert_eq!(rec.backup_set, format!("{full} (full)"));
    assert!(
        rec.target_reached
            .starts_with("the end of the archived WAL"),
        "{rec:?}"
    );

    // A random tape: some moment in the window, reached.
    let r = run_file(&c.drill(fx.path(), "random", "target = \"random\"", "")).await;
    assert_passed(&r);
    let rec = r.recovery.unwrap();
    assert!(
        rec.target_asked
            .starts_with("a random time in the window: "),
        "{rec:?}"
    );
    ticker.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_backups_fail_at_the_restore_naming_the_cause() {
    let c = Cluster::start("broken");
    let fx = tempfile::tempdir().unwrap();
    let db = setup(&c).await;
    let r = run_file(&c.drill(
        fx.path(),
        "base",
        "backup = \"incr\"\ntarget = \"latest\"",
        "",
    ))
    .await;
    assert_passed(&r);
    let latest = c.drill(fx.path(), "latest", "target = \"latest\"", "");

    // A wrong cipher key: named, not pgBackRest's "no backup set found"; the drill could
    // not run (exit 2).
    let wrong = c.drill(fx.path(), "wrong-key", "target = \"latest\"", "");
    let text = std::fs::read_to_string(&wrong).unwrap();
    let bad = secret_file(fx.path(), "bad-cipher", "not-the-passphrase");
    std::fs::write(
        &wrong,
        text.replace(
            &fx.path().join("wrong-key-cipher").display().to_string(),
            &bad.display().to_string(),
        ),
    )
    .unwrap();
    let r = run_file(&wrong).await;
    assert_eq!(r.verdict, Verdict::Error, "{:?}", r.error);
    assert_eq!(r.exit_code, 2);
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let e = r.error.unwrap();
    assert!(e.message.contains("cipher key does not open"), "{e:?}");

    // A byte flipped in a file of the newest backup set: pgBackRest's verify names it.
    let newest = newest_set(&c.repo(), false);
    let victim = largest_file(&c.repo().join("backup/main").join(&newest).join("pg_data"));
    let original = std::fs::read(&victim).unwrap();
    flip_byte(&victim);
    let r = run_file(&latest).await;
    std::fs::write(&victim, &original).unwrap();
    assert_eq!(r.verdict, Verdict::Failed, "{:?}", r.error);
    assert_eq!(r.exit_code, 1);
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let e = r.error.unwrap();
    let rel = victim
        .strip_prefix(c.repo().join("backup/main"))
        .unwrap()
        .display()
        .to_string();
    assert!(
        e.message.contains("invalid checksum") && e.message.contains(&rel),
        "{e:?}"
    );

    // A WAL segment gone from the archive after the backup: drilled to latest and to a
    // time after it, the gap is named.
    for i in 0..4 {
        db.execute("INSERT INTO items VALUES ($1, 'x')", &[&(100_000 + i)])
            .await
            .unwrap();
        c.archive_now().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let at = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.execute("INSERT INTO items VALUES (200000, 'y')", &[])
        .await
        .unwrap();
    c.archive_now().await;
    let segments = archived_segments(&c.repo());
    let missing = &segments[segments.len() - 3];
    let name = missing.file_name().unwrap().to_string_lossy()[..24].to_string();
    let aside = fx.path().join("aside");
    std::fs::rename(missing, &aside).unwrap();
    let to_time = c.drill(
        fx.path(),
        "time-after-gap",
        &format!("target = \"time\"\ntarget_time = \"{at}\""),
        "",
    );
    for drill in [&latest, &to_time] {
        let r = run_file(drill).await;
        assert_eq!(r.verdict, Verdict::Failed, "{:?}", r.error);
        assert_eq!(r.exit_code, 1);
        assert_eq!(r.failed_stage, Some(Stage::Restore));
        let e = r.error.unwrap();
        assert!(
            e.message.contains("WAL gap between")
                && e.message
                    .contains(&format!("the archive is missing {name}")),
            "{}: {e:?}",
            drill.display()
        );
    }
    std::fs::rename(&aside, missing).unwrap();

    // A page damaged in the source (its data checksums on): backed up as it is, caught in
    // the restored cluster.
    db.batch_execute(
        "CREATE TABLE victim AS SELECT g AS id, repeat('v', 200) AS v FROM generate_series(1, 2000) g; CHECKPOINT",
    )
    .await
    .unwrap();
    let file: String = db
        .query_one("SELECT pg_relation_filepath('victim')", &[])
        .await
        .unwrap()
        .get(0);
    drop(db);
    c.pg_ctl("stop");
    let heap = c.dir.join("data").join(file);
    let mut bytes = std::fs::read(&heap).unwrap();
    bytes[8192 + 4000] ^= 0xff;
    std::fs::write(&heap, &bytes).unwrap();
    c.pg_ctl("start");
    // A drill that takes its backup reads the source for its fingerprint, and meets the
    // damage there: named, as the backup's failure.
    let r = run_file(&c.drill(
        fx.path(),
        "damaged-source",
        "backup = \"full\"\ntarget = \"latest\"",
        "",
    ))
    .await;
    assert_eq!(r.verdict, Verdict::Failed, "{:?}", r.error);
    assert_eq!(r.failed_stage, Some(Stage::Dump));
    let e = r.error.unwrap();
    assert!(
        e.message
            .contains("the source's data is damaged: invalid page in block"),
        "{e:?}"
    );
    // The operator's own backup copies the damaged page; the restored cluster's checks
    // catch it.
    host_setup(&format!(
        "run=(); [ \"$(id -u)\" = 0 ] && run=(env -C / runuser -u postgres --); \
         \"${{run[@]}}\" pgbackrest --config={}/pgbackrest.conf --stanza=main --type=full backup",
        c.dir.display()
    ));
    let r = run_file(&latest).await;
    assert_eq!(r.verdict, Verdict::Failed, "{:?}", r.error);
    assert_eq!(r.exit_code, 1);
    assert_eq!(r.failed_stage, Some(Stage::Verify));
    let e = r.error.unwrap();
    assert!(
        e.message
            .contains("the restored database is damaged: invalid page in block 1 of relation"),
        "{e:?}"
    );
    assert!(leftovers(&r.run_id).await.is_empty());
}

/// The newest backup set's label (of a full backup only, with `full`).
fn newest_set(repo: &Path, full: bool) -> String {
    let mut labels: Vec<String> = std::fs::read_dir(repo.join("backup/main"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("20") && (!full || n.ends_with('F')))
        .collect();
    labels.sort();
    labels.pop().unwrap()
}

/// The largest file under `dir`.
fn largest_file(dir: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if best.as_ref().is_none_or(|(s, _)| m.len() > *s) {
                best = Some((m.len(), e.path()));
            }
        }
    }
    best.unwrap().1
}

/// The archived WAL segments, in order.
fn archived_segments(repo: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![repo.join("archive/main")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.len() > 25 && n.as_bytes()[24] == b'-' {
                    v.push(p);
                }
            }
        }
    }
    v.sort_by_key(|p| p.file_name().unwrap().to_owned());
    v
}

/// A drill to the newest state is judged against the last good one: a backup whose
/// database lost most of its rows fails its anomaly guards (exit 1, with the way to
/// accept it), and once accepted the smaller database is the new normal.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_that_lost_most_rows_trips_the_guards_until_accepted() {
    use firedrill::catalog::{Catalog, SqliteCatalog};
    let c = Cluster::start("guard");
    let fx = tempfile::tempdir().unwrap();
    let db = setup(&c).await;
    let catalog: Arc<dyn Catalog> =
        Arc::new(SqliteCatalog::open(&fx.path().join("catalog.db")).unwrap());
    let runner = firedrill::Runner {
        connector: Arc::new(firedrill::LiveConnector),
        catalog: Some(catalog.clone()),
        reports: None,
        pager: None,
        leases: None,
    };
    let drill = firedrill::load_drill(&c.drill(
        fx.path(),
        "guarded",
        "backup = \"incr\"\ntarget = \"latest\"",
        "",
    ))
    .unwrap();
    let (opts, stop) = (firedrill::RunOptions::default(), firedrill::Stop::new());
    let run = || runner.run(&drill, &opts, &firedrill::Silent, &stop);
    let first = run().await.report;
    assert_passed(&first);
    let rec = first.recovery.clone().unwrap();
    assert_eq!(rec.restored_tables, Some(2), "{rec:?}");
    assert_eq!(rec.restored_rows, Some(20_000));
    // No earlier drill: nothing to compare with, no guard.
    assert!(first.assertions.is_empty(), "{:?}", first.assertions);

    // 90% of the items go, at the source: the next backup is much smaller.
    db.batch_execute("DELETE FROM items WHERE id % 10 <> 0")
        .await
        .unwrap();
    let suspect = run().await.report;
    assert_eq!(suspect.verdict, Verdict::Failed, "{:?}", suspect.error);
    assert_eq!(suspect.exit_code, 1);
    assert_eq!(suspect.failed_stage, Some(Stage::Verify));
    let rows = suspect
        .assertions
        .iter()
        .find(|a| a.name.ends_with("total rows"))
        .expect("a rows guard");
    assert!(rows.guard && !rows.passed, "{rows:?}");
    assert!(rows.expected.contains(&first.run_id), "{}", rows.expected);
    let hint = suspect.error.as_ref().and_then(|e| e.hint.clone()).unwrap();
    assert!(hint.contains("firedrill accept"), "{hint}");

    // Accepted: the smaller database is the baseline, and the next drill passes.
    firedrill::inventory::accept_run(catalog.as_ref(), &suspect.run_id, Some(&drill))
        .await
        .unwrap();
    let after = run().await.report;
    assert_passed(&after);
    let rows = after
        .assertions
        .iter()
        .find(|a| a.name.ends_with("total rows"))
        .expect("a rows guard");
    assert!(
        rows.passed && rows.expected.contains(&suspect.run_id),
        "{rows:?}"
    );
}

/// MariaDB Backup: a full backup and two incrementals of a real MariaDB, taken with
/// mariadb-backup on this host as an operator would, drilled to the newest and to the
/// first incremental; then a copy with the first incremental cut short fails at the
/// restore, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_backup_full_and_incrementals_are_prepared_and_drilled() {
    let port = support::daemon::reserve_port().local_addr().unwrap().port();
    let dir = PathBuf::from(format!("/tmp/fd-mb-{}", std::process::id()));
    host_setup(&format!("fd_start_mariadb {} {port} mbpass", dir.display()));
    let _server = Teardown(format!("fd_stop_mariadb {}", dir.display()), dir.clone());
    let sql = |q: &str| {
        host_setup(&format!(
            "mariadb --no-defaults -h127.0.0.1 -P{port} -ufiredrill -pmbpass -e \"{q}\""
        ))
    };
    let repo = dir.join("backups");
    let backup = |name: &str, base: Option<&str>| {
        host_setup(&format!(
            "mkdir -p {repo} && mariadb-backup --no-defaults --backup --host=127.0.0.1 --port={port} --user=firedrill --password=mbpass --datadir={data} --target-dir={repo}/{name} {inc} > {repo}-{name}.log 2>&1",
            data = dir.join("data").display(),
            repo = repo.display(),
            inc = base
                .map(|b| format!("--incremental-basedir={}/{b}", repo.display()))
                .unwrap_or_default()
        ))
    };
    sql("CREATE DATABASE shop; CREATE TABLE shop.orders(id int PRIMARY KEY AUTO_INCREMENT, v text) ENGINE=InnoDB; INSERT INTO shop.orders(v) SELECT md5(seq) FROM mysql.seq_1_to_5000; CREATE TABLE shop.notes(id int PRIMARY KEY, n text) ENGINE=Aria; INSERT INTO shop.notes VALUES (1, 'aria')");
    backup("full", None);
    sql("INSERT INTO shop.orders(v) SELECT md5(seq) FROM mysql.seq_1_to_3000");
    backup("inc1", Some("full"));
    sql("INSERT INTO shop.orders(v) SELECT md5(seq) FROM mysql.seq_1_to_1000; DELETE FROM shop.orders WHERE id <= 10");
    backup("inc2", Some("inc1"));

    let fx = tempfile::tempdir().unwrap();
    let drill = |name: &str, backups: &Path, extra: &str, rows: u64| {
        let path = fx.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"name = "{name}"

[source]
type = "mariabackup"
backup_dir = "{dir}"
database = "shop"
{extra}

[storage]
type = "local"
path = "{store}"

[timeouts]
restore = "5m"

[[assertion]]
name = "the orders of the backup"
sql = "select count(*) from orders"
expect = "= {rows}"
"#,
                dir = backups.display(),
                store = fx.path().join("store").display(),
            ),
        )
        .unwrap();
        path
    };

    // The newest: the full backup and both incrementals.
    let r = run_file(&drill("mb-latest", &repo, "", 8990)).await;
    assert_passed(&r);
    let rec = r.recovery.clone().expect("a recovery report");
    assert_eq!(rec.method, "mariabackup");
    assert_eq!(
        rec.backup_set,
        "inc2 (full + 2 incrementals: full, inc1, inc2)"
    );
    assert_eq!(rec.restored_tables, Some(2), "{rec:?}");
    assert_eq!(rec.restored_rows, Some(8991));
    let restore = stage_notes(&r, Stage::Restore);
    assert!(
        restore.contains("incremental backup inc1 applied"),
        "{restore}"
    );
    assert!(
        restore.contains("incremental backup inc2 applied"),
        "{restore}"
    );
    let verify = stage_notes(&r, Stage::Verify);
    assert!(
        verify.contains("CHECK TABLE: every table of every database is sound"),
        "{verify}"
    );
    assert!(leftovers(&r.run_id).await.is_empty(), "sandbox left behind");

    // A named backup: the full one and the first incremental.
    let r = run_file(&drill("mb-inc1", &repo, "set = \"inc1\"", 8000)).await;
    assert_passed(&r);
    assert_eq!(
        r.recovery.unwrap().backup_set,
        "inc1 (full + 1 incremental: full, inc1)"
    );

    // The first incremental cut short (its redo log truncated): the restore fails
    // naming it, a broken backup (exit 1), and no sandbox is left.
    let broken = dir.join("broken");
    host_setup(&format!(
        "cp -a {} {b} && truncate -s 20000 {b}/inc1/ib_logfile0",
        repo.display(),
        b = broken.display()
    ));
    let r = run_file(&drill("mb-broken", &broken, "", 8990)).await;
    assert_eq!(r.verdict, Verdict::Failed, "{:?}", r.error);
    assert_eq!(r.exit_code, 1);
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let e = r.error.clone().unwrap();
    assert!(
        e.message
            .contains("cannot apply incremental backup inc1 (on top of full)"),
        "{}",
        e.message
    );
    assert!(leftovers(&r.run_id).await.is_empty(), "sandbox left behind");

    // An incremental whose base is gone is named before any sandbox exists. (The full
    // backup goes: without an InnoDB checkpoint between the full and inc1 both end at the
    // same LSN, and inc2 then rightly applies to the full alone, so removing inc1 would
    // not always orphan anything.)
    let orphan = dir.join("orphan");
    host_setup(&format!(
        "cp -a {} {o} && rm -rf {o}/full",
        repo.display(),
        o = orphan.display()
    ));
    let r = run_file(&drill("mb-orphan", &orphan, "", 8990)).await;
    assert_eq!(r.exit_code, 1, "{:?}", r.error);
    assert!(
        r.error
            .as_ref()
            .unwrap()
            .message
            .contains("incremental backup inc1 builds on LSN"),
        "{:?}",
        r.error
    );
    assert_eq!(
        stage(&r, Stage::Provision).outcome,
        firedrill::status::Outcome::Skipped
    );
}

/// Barman: a base backup of a real PostgreSQL under write load, taken by a Barman server
/// on this host, drilled to a time (exactly the ticks committed before it) and to the
/// end of the archived WAL.
#[tokio::test(flavor = "multi_thread")]
async fn barman_backups_recover_to_a_time_and_to_latest() {
    let port = support::daemon::reserve_port().local_addr().unwrap().port();
    let dir = PathBuf::from(format!("/tmp/fd-bm-{}", std::process::id()));
    host_setup(&format!("fd_start_barman {} {port}", dir.display()));
    let _down = Teardown(format!("fd_stop_pg {}/pg", dir.display()), dir.clone());
    let connect = || async {
        let (c, conn) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        c
    };
    let db = connect().await;
    // The ticks are the only commits (no autovacuum's ANALYZE): the archive's last
    // commit is the last tick archived.
    db.execute("ALTER SYSTEM SET autovacuum = off", &[])
        .await
        .unwrap();
    db.execute("SELECT pg_reload_conf()", &[]).await.unwrap();
    db.batch_execute(
        "CREATE TABLE ticks(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
         CREATE TABLE items AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g;",
    )
    .await
    .unwrap();
    let ticker = Ticker::start(connect().await).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A backup under write load, then a moment after it, archived.
    host_setup(&format!(
        "fd_barman {} backup pg --wait >/dev/null",
        dir.display()
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (at, ticks) = moment_between_ticks(&db).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let archive = || {
        host_setup(&format!(
            "fd_barman {} switch-wal --force --archive pg >/dev/null",
            dir.display()
        ))
    };
    archive();

    let fx = tempfile::tempdir().unwrap();
    let drill = |name: &str, extra: &str, ticks: i64| {
        let path = fx.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"name = "{name}"

[source]
type = "barman"
barman_home = "{home}"
server = "pg"
{extra}

[storage]
type = "local"
path = "{store}"

[timeouts]
restore = "5m"
verify = "5m"
{assertions}"#,
                home = dir.join("barman").display(),
                store = fx.path().join("store").display(),
                // A negative count: a target whose ticks the test cannot know.
                assertions = if ticks < 0 {
                    String::new()
                } else {
                    format!(
                        r#"
[[assertion]]
name = "the ticks before the target, and none after"
sql = "select count(*) from ticks"
expect = "= {ticks}"

[[assertion]]
name = "the last tick is the one before the target"
sql = "select max(id) from ticks"
expect = "= {ticks}"
"#
                    )
                },
            ),
        )
        .unwrap();
        path
    };
    let r = run_file(&drill(
        "bm-time",
        &format!("target = \"time\"\ntarget_time = \"{at}\""),
        ticks,
    ))
    .await;
    assert_passed(&r);
    let rec = r.recovery.clone().expect("a recovery report");
    assert_eq!(rec.method, "barman");
    assert!(
        rec.target_reached
            .starts_with("recovery stopping before commit"),
        "{rec:?}"
    );
    let restore = stage_notes(&r, Stage::Restore);
    assert!(restore.contains("barman recover of backup"), "{restore}");

    // A random tape: some moment between the backup and the archive's end, reached.
    let r = run_file(&drill("bm-random", "target = \"random\"", -1)).await;
    assert_passed(&r);
    let rec = r.recovery.clone().unwrap();
    assert!(
        rec.target_asked
            .starts_with("a random time in the window: "),
        "{rec:?}"
    );

    // To the end of the archive: every tick committed before the last switch.
    ticker.stop().await;
    let total: i64 = db
        .query_one("SELECT count(*) FROM ticks", &[])
        .await
        .unwrap()
        .get(0);
    // Nothing committed for 6 s, then the segment archived: every moment of the last
    // 5 s is after the archive's last commit, where the state is in WAL not yet
    // archived. A random time there is recovered to the archive's end instead.
    tokio::time::sleep(Duration::from_secs(6)).await;
    archive();
    let r = run_file(&drill(
        "bm-random-tail",
        "target = \"random\"\nwithin = \"5s\"",
        total,
    ))
    .await;
    assert_passed(&r);
    let rec = r.recovery.clone().unwrap();
    assert_eq!(
        rec.target, "latest (the end of the archived WAL)",
        "{rec:?}"
    );
    assert!(
        rec.target_reached
            .starts_with("the end of the archived WAL"),
        "{rec:?}"
    );
    let restore = stage_notes(&r, Stage::Restore);
    assert!(
        restore.contains("is after the archive's last commit"),
        "{restore}"
    );

    archive();
    let r = run_file(&drill("bm-latest", "", total)).await;
    assert_passed(&r);
    let rec = r.recovery.unwrap();
    assert!(
        rec.target_reached
            .starts_with("the end of the archived WAL"),
        "{rec:?}"
    );
    assert!(leftovers(&r.run_id).await.is_empty(), "sandbox left behind");
}
