//! Versions tested, not assumed: sources of other versions than this host's run as
//! containers of the offline sandbox images in their `source` mode (TCP, a password, the
//! current `containers/firedrill-sandbox` mounted in), and are drilled end to end into
//! the sandbox of their own version with the fingerprint and checksums compared.
//!
//! The dump is made by the tool of the version it restores into: this host's when it is
//! that version, else the one in that version's image, in a container
//! (`source.dump_in = "auto"`). The default tier drills a PostgreSQL 17 source, newer than
//! this host's pg_dump (15). The full
//! tier (`FIREDRILL_FULL=1`, `tests/run --full`) drills PostgreSQL 13, 15 and 17 and
//! MariaDB 10.5, 10.11 and 11.8, each also as a role with only the grants a dump needs on
//! that version, and the upgrades 13 → 17 and 10.5 → 11.8.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use firedrill::{ErrorKind, Stage, Verdict};
use support::*;

fn full() -> bool {
    std::env::var("FIREDRILL_FULL").as_deref() == Ok("1")
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A source server of `engine` at `version` in a container, removed on drop.
struct Source {
    name: String,
    port: u16,
    password: String,
    _dir: tempfile::TempDir,
}

impl Source {
    fn start(engine: &str, version: &str) -> Source {
        Source::start_with(engine, version, None)
    }

    /// With `tls` (a directory holding ca.pem, server.pem and server.key), the source
    /// accepts only TLS.
    fn start_with(engine: &str, version: &str, tls: Option<&Path>) -> Source {
        let image = format!("firedrill-sandbox-{engine}:{version}");
        let dir = tempfile::Builder::new()
            .prefix("fd-matrix-src")
            .tempdir_in("/tmp")
            .unwrap();
        if let Some(tls) = tls {
            for f in ["ca.pem", "server.pem", "server.key"] {
                std::fs::copy(tls.join(f), dir.path().join(f)).unwrap();
            }
        }
        let password = format!("src-{}-pw", std::process::id());
        std::fs::write(dir.path().join("password"), &password).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::set_permissions(f.unwrap().path(), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("containers/firedrill-sandbox");
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "fd-matrix-{engine}-{}-{}-{}",
            version.replace('.', "-"),
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let _ = Command::new("docker").args(["rm", "-f", &name]).output();
        let inner = if engine == "postgres" { "5432" } else { "3306" };
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "firedrill.test=matrix",
            "-p",
            &format!("127.0.0.1::{inner}"),
            "-v",
            &format!("{}:/usr/local/bin/firedrill-sandbox:ro", script.display()),
            "-v",
            &format!("{}:/run/firedrill/source:ro", dir.path().display()),
            &image,
            "source",
            engine,
        ]);
        let port = docker(&["port", &name, inner])
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("a published port");
        let src = Source {
            name,
            port,
            password,
            _dir: dir,
        };
        src.wait_ready(engine);
        src
    }

    fn wait_ready(&self, engine: &str) {
        let t = Instant::now();
        loop {
            let ok = Command::new("docker")
                .args(["exec", &self.name, "firedrill-sandbox", "ready", engine])
                .output()
                .is_ok_and(|o| o.status.success());
            // The TCP side too (the source user is created at start-up).
            if ok && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if t.elapsed() > Duration::from_secs(120) {
                let logs = Command::new("docker")
                    .args(["logs", "--tail", "30", &self.name])
                    .output()
                    .unwrap();
                panic!(
                    "source {} never became ready: {}",
                    self.name,
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    async fn pg(&self, db: &str) -> tokio_postgres::Client {
        let t = Instant::now();
        loop {
            let mut cfg = tokio_postgres::Config::new();
            cfg.host("127.0.0.1")
                .port(self.port)
                .user("postgres")
                .password(&self.password)
                .dbname(db);
            match cfg.connect(tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    return client;
                }
                Err(e) if t.elapsed() > Duration::from_secs(60) => panic!("{}: {e}", self.name),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    async fn my(&self) -> mysql_async::Conn {
        let t = Instant::now();
        loop {
            let opts = mysql_async::OptsBuilder::default()
                .ip_or_hostname("127.0.0.1")
                .tcp_port(self.port)
                .user(Some("firedrill"))
                .pass(Some(self.password.clone()))
                .prefer_socket(false);
            match mysql_async::Conn::new(opts).await {
                Ok(c) => return c,
                Err(e) if t.elapsed() > Duration::from_secs(60) => panic!("{}: {e}", self.name),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Runs `sql` in `db` through the server's socket in its container (TLS or not).
    fn psql(&self, db: &str, sql: &str) {
        let mut child = Command::new("docker")
            .args([
                "exec",
                "-i",
                &self.name,
                "firedrill-sandbox",
                "client",
                "postgres",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "psql in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Database `shop` with the tests' little schema.
    async fn seed_pg(&self) {
        self.pg("postgres")
            .await
            .batch_execute("CREATE DATABASE shop")
            .await
            .unwrap();
        self.pg("shop").await.batch_execute(SHOP).await.unwrap();
    }

    async fn seed_my(&self) {
        use mysql_async::prelude::Queryable;
        let mut c = self.my().await;
        for stmt in [
            "CREATE DATABASE shop CHARACTER SET utf8mb4",
            "USE shop",
            "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, born DATE)",
            "INSERT INTO customers SELECT seq, CONCAT('customer ', seq), DATE('1970-01-01') + INTERVAL seq DAY FROM seq_1_to_3000",
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(12,2), note TEXT, KEY (customer_id))",
            "INSERT INTO orders SELECT seq, 1 + seq % 3000, seq * 0.75, REPEAT('x', seq % 50) FROM seq_1_to_12000",
            "CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 1000",
            "CREATE TRIGGER stamp BEFORE INSERT ON orders FOR EACH ROW SET NEW.note = COALESCE(NEW.note, 'new')",
            "CREATE PROCEDURE total() SELECT SUM(amount) FROM orders",
        ] {
            c.query_drop(stmt)
                .await
                .unwrap_or_else(|e| panic!("{stmt}: {e}"));
        }
        c.disconnect().await.unwrap();
    }

    /// A drill of its database `shop`; `sandbox` goes into `[sandbox]`.
    fn drill(&self, fx: &Fixture, engine: &str, name: &str, sandbox: &str) -> PathBuf {
        let user = if engine == "postgres" {
            "postgres"
        } else {
            "firedrill"
        };
        self.drill_as(fx, engine, name, sandbox, user)
    }

    /// The same, dumped as `user` (whose password is the source's).
    fn drill_as(
        &self,
        fx: &Fixture,
        engine: &str,
        name: &str,
        sandbox: &str,
        user: &str,
    ) -> PathBuf {
        secret_file(fx.dir.path(), "source-password", &self.password);
        let db = "database = \"shop\"";
        let source = format!(
            r#"[source]
type = "{engine}"
host = "127.0.0.1"
port = {port}
user = "{user}"
password = {{ file = "source-password" }}
{db}"#,
            port = self.port,
        );
        let path = fx.write_drill(name, &source, "2GiB", "");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("[sandbox]\n", &format!("[sandbox]\n{sandbox}\n"));
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

/// Runs the drill and expects it to pass with every row compared, from a dump tool of the
/// source's own series (from its image when `in_container`).
async fn passes(path: &Path, rows: u64, series: &str, in_container: bool) -> firedrill::RunReport {
    let r = run_file(path).await;
    let text = firedrill::report::render_human(&r);
    assert_eq!(r.verdict, Verdict::Passed, "{text}");
    assert!(r.fingerprint_mismatches.is_empty(), "{text}");
    assert_eq!(r.rows, Some(rows), "{text}");
    let source = r.source_version.clone().unwrap_or_default();
    assert!(source.contains(&format!(" {series}")), "{source}: {text}");
    let tool = r.dump_tool.clone().unwrap_or_default();
    assert_eq!(
        tool.contains("in a container of firedrill-sandbox-"),
        in_container,
        "dump tool `{tool}`: {text}"
    );
    assert!(leftovers(&r.run_id).await.is_empty(), "{text}");
    let left = dump_tool_containers(&r.drill);
    assert!(
        left.is_empty(),
        "a dump tool's container was left: {left:?}"
    );
    r
}

/// The drill's dump tools' containers still present.
fn dump_tool_containers(drill: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=firedrill.drill={drill}"),
        "--format",
        "{{.Names}} {{.Labels}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

const PG_ROWS: u64 = 3000 + 12000 + 500;
const MY_ROWS: u64 = 3000 + 12000;

/// Whether the dump of a source restored into PostgreSQL `major` is made by a container's
/// pg_dump: unless this host has that major's.
fn pg_dump_in_container(major: u32) -> bool {
    !Path::new(&format!("/usr/lib/postgresql/{major}/bin/pg_dump")).exists()
}

/// The same for MariaDB: unless this host's mariadb-dump is of `series`.
fn mariadb_dump_in_container(series: &str) -> bool {
    let out = Command::new("mariadb-dump").arg("--version").output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // `mariadb-dump from 11.8.3-MariaDB, …` or `… Distrib 10.11.14-MariaDB, …`
    let host = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .find(|w| w.contains("-MariaDB"))
        .map(|w| w.split('-').next().unwrap_or("").to_string())
        .unwrap_or_default();
    let host_series: Vec<&str> = host.split('.').take(2).collect();
    host_series.join(".") != series
}

async fn drill_postgres(major: u32) -> Source {
    let src = Source::start("postgres", &major.to_string());
    src.seed_pg().await;
    let fx = Fixture::new();
    let path = src.drill(&fx, "postgres", &format!("pg{major}"), "");
    let r = passes(
        &path,
        PG_ROWS,
        &major.to_string(),
        pg_dump_in_container(major),
    )
    .await;
    let provision = stage(&r, Stage::Provision);
    assert!(
        r.sandbox_image
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("postgres:{major}")),
        "{:?} {:?}",
        r.sandbox_image,
        provision.notes
    );
    if full() {
        // A role without superuser, with the grants its major allows.
        let grants = if major >= 14 {
            "GRANT pg_read_all_data TO fd_reader".to_string()
        } else {
            "GRANT USAGE ON SCHEMA public, audit TO fd_reader; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public, audit TO fd_reader; \
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, audit TO fd_reader"
                .to_string()
        };
        src.pg("shop")
            .await
            .batch_execute(&format!(
                "CREATE ROLE fd_reader LOGIN PASSWORD '{}'; {grants}",
                src.password
            ))
            .await
            .unwrap();
        let fx = Fixture::new();
        let path = src.drill_as(&fx, "postgres", &format!("pg{major}ro"), "", "fd_reader");
        passes(
            &path,
            PG_ROWS,
            &major.to_string(),
            pg_dump_in_container(major),
        )
        .await;
    }
    src
}

async fn drill_mariadb(series: &str) {
    let src = Source::start("mariadb", series);
    src.seed_my().await;
    let fx = Fixture::new();
    let path = src.drill(
        &fx,
        "mariadb",
        &format!("my{}", series.replace('.', "")),
        "",
    );
    let r = passes(&path, MY_ROWS, series, mariadb_dump_in_container(series)).await;
    assert!(
        r.sandbox_image
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("mariadb:{series}")),
        "{:?}",
        r.sandbox_image
    );
    // A user with only the dump's grants for its series.
    use mysql_async::prelude::Queryable;
    let routines = if series == "11.8" {
        "GRANT SHOW CREATE ROUTINE ON shop.* TO 'fd_reader'@'%'"
    } else {
        "GRANT SELECT ON mysql.proc TO 'fd_reader'@'%'"
    };
    let mut c = src.my().await;
    for stmt in [
        format!(
            "CREATE USER 'fd_reader'@'%' IDENTIFIED BY '{}'",
            src.password
        ),
        "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON shop.* TO 'fd_reader'@'%'".to_string(),
        routines.to_string(),
    ] {
        c.query_drop(&stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    c.disconnect().await.unwrap();
    let fx = Fixture::new();
    let path = src.drill_as(
        &fx,
        "mariadb",
        &format!("my{}ro", series.replace('.', "")),
        "",
        "fd_reader",
    );
    passes(&path, MY_ROWS, series, mariadb_dump_in_container(series)).await;
}

/// Default tier: a TLS-only PostgreSQL 17 source, dumped by its image's pg_dump in a
/// container that gets the CA mounted in and checks the certificate (verify-full).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_only_postgres_17_is_dumped_from_its_image_under_verify_full() {
    let tls = make_certs();
    let src = Source::start_with("postgres", "17", Some(tls.path()));
    src.psql("postgres", "CREATE DATABASE shop;");
    src.psql("shop", SHOP);
    let fx = Fixture::new();
    std::fs::copy(tls.path().join("ca.pem"), fx.dir.path().join("ca.pem")).unwrap();
    let path = src.drill(&fx, "postgres", "pg17tls", "");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "host = \"127.0.0.1\"",
        "host = \"localhost\"\nsslmode = \"verify-full\"\nsslrootcert = \"ca.pem\"",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let r = passes(&path, PG_ROWS, "17", pg_dump_in_container(17)).await;
    let report = firedrill::report::render_human(&r);
    assert!(
        !report.contains(&src.password),
        "the password leaked: {report}"
    );
}

/// Default tier: a source newer than this host's pg_dump is dumped by the image's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_17_source_is_dumped_by_the_pg_dump_of_its_image() {
    assert!(
        pg_dump_in_container(17),
        "this host has a pg_dump 17: the test means to show the one from the image"
    );
    let src = drill_postgres(17).await;

    // `dump_in = "host"` keeps this host's older tool: refused, naming what to install.
    let fx = Fixture::new();
    let path = src.drill(&fx, "postgres", "pg17host", "");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "database = \"shop\"",
        "database = \"shop\"\ndump_in = \"host\"",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let r = run_file(&path).await;
    let text = firedrill::report::render_human(&r);
    assert_eq!(r.verdict, Verdict::Error, "{text}");
    assert_eq!(r.failed_stage, Some(Stage::Dump), "{text}");
    let e = r.error.as_ref().unwrap();
    assert!(
        e.message.contains("older than the server")
            && e.hint
                .as_deref()
                .unwrap_or("")
                .contains("postgresql-client-17"),
        "{text}"
    );
    assert_ne!(e.kind, ErrorKind::Backup, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_postgres_major_drills_into_its_own_sandbox() {
    if !full() {
        eprintln!("the version matrix is in the full tier (tests/run --full)");
        return;
    }
    for major in [13, 15, 17] {
        drill_postgres(major).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mariadb_series_drills_into_its_own_sandbox() {
    if !full() {
        eprintln!("the version matrix is in the full tier (tests/run --full)");
        return;
    }
    for series in ["10.5", "10.11", "11.8"] {
        drill_mariadb(series).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_13_to_17_and_10_5_to_11_8_pass_or_name_what_broke() {
    if !full() {
        eprintln!("the upgrade matrix is in the full tier (tests/run --full)");
        return;
    }
    let pg = Source::start("postgres", "13");
    pg.seed_pg().await;
    let fx = Fixture::new();
    let path = pg.drill(&fx, "postgres", "up13", "major = 17");
    let r = passes(&path, PG_ROWS, "13", pg_dump_in_container(17)).await;
    assert!(
        stage(&r, Stage::Provision)
            .notes
            .iter()
            .any(|n| n == "upgrade rehearsal: postgres 13 → 17"),
        "{:?}",
        stage(&r, Stage::Provision).notes
    );
    pg.pg("shop")
        .await
        .batch_execute("CREATE EXTENSION adminpack")
        .await
        .unwrap();
    let r = run_file(&path).await;
    let text = firedrill::report::render_human(&r);
    assert_eq!(r.verdict, Verdict::Failed, "{text}");
    assert_eq!(r.failed_stage, Some(Stage::Restore), "{text}");
    assert!(text.contains("adminpack"), "{text}");
    assert!(leftovers(&r.run_id).await.is_empty());

    let my = Source::start("mariadb", "10.5");
    my.seed_my().await;
    let path = my.drill(&fx, "mariadb", "up105", "major = \"11.8\"");
    let r = passes(&path, MY_ROWS, "10.5", mariadb_dump_in_container("11.8")).await;
    assert!(
        stage(&r, Stage::Provision)
            .notes
            .iter()
            .any(|n| n == "upgrade rehearsal: mariadb 10.5 → 11.8"),
        "{:?}",
        stage(&r, Stage::Provision).notes
    );
}
