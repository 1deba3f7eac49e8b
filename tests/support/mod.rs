//! Shared pieces of the integration tests: the real PostgreSQL source started by
//! `tests/run`, drill files in temporary directories, and leftover checks against the
//! real Docker engine.
#![allow(dead_code)]

pub mod daemon;
pub mod fakes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{ListContainersOptions, ListVolumesOptions};

pub const PASSWORD_ENV: &str = "FIREDRILL_TEST_PG_PASSWORD";

pub struct Pg {
    pub port: u16,
    pub password: String,
}

/// The source server `tests/run` started. Integration tests need it: run them through
/// `tests/run`, which starts it, rather than a bare `cargo test`.
pub fn pg() -> Pg {
    let port = std::env::var("FIREDRILL_TEST_PG_PORT")
        .expect("FIREDRILL_TEST_PG_PORT is not set: run the tests with tests/run, which starts the PostgreSQL source")
        .parse()
        .expect("FIREDRILL_TEST_PG_PORT is a port");
    let password =
        std::env::var(PASSWORD_ENV).expect("FIREDRILL_TEST_PG_PASSWORD is not set: run tests/run");
    Pg { port, password }
}

async fn connect(db: &str) -> tokio_postgres::Client {
    let p = pg();
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(p.port)
        .user("postgres")
        .password(p.password)
        .dbname(db)
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(conn);
    client
}

/// A client of database `db` on the test PostgreSQL (user postgres).
pub async fn pg_client(db: &str) -> tokio_postgres::Client {
    connect(db).await
}

/// Creates (or recreates) database `name` and runs `setup` in it.
pub async fn create_db(name: &str, setup: &str) {
    let admin = connect("postgres").await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .expect("drop database");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create database");
    if !setup.is_empty() {
        connect(name)
            .await
            .batch_execute(setup)
            .await
            .expect("seed database");
    }
}

/// A realistic little schema: several tables, types, a view, an index, another schema.
pub const SHOP: &str = r#"
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO customers (name, email) SELECT 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 3000) g;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), amount numeric(12,2), items jsonb, placed_at timestamptz DEFAULT now());
INSERT INTO orders (customer_id, amount, items) SELECT 1 + g % 3000, g * 0.75, jsonb_build_object('sku', g % 97, 'qty', g % 5) FROM generate_series(1, 12000) g;
CREATE INDEX orders_customer ON orders (customer_id);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 1000;
CREATE SCHEMA audit;
CREATE TABLE audit.events (at timestamptz, payload bytea, tags text[]);
INSERT INTO audit.events SELECT now(), decode(md5(g::text), 'hex'), ARRAY['a', 'b'] FROM generate_series(1, 500) g;
CREATE TABLE empty_table (id int);
"#;

/// A test's own directory with an identity, a store and a drill file.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub identity: PathBuf,
    pub recipient: String,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (text, recipient) = firedrill::age_keys::generate_identity();
        let identity = dir.path().join("identity.txt");
        std::fs::write(&identity, text).unwrap();
        Fixture {
            dir,
            identity,
            recipient,
        }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Writes drill file `name.toml`: `source` (the `[source]` table), then this fixture's
    /// storage, encryption, sandbox memory and timeouts, then `extra`.
    pub fn write_drill(&self, name: &str, source: &str, memory: &str, extra: &str) -> PathBuf {
        let text = format!(
            r#"
{source}

[storage]
type = "local"
path = "{store}"

[encryption]
recipients = ["{recipient}"]
identity = {{ file = "identity.txt" }}

[sandbox]
memory = "{memory}"

[timeouts]
provision = "3m"
restore = "5m"
{extra}
"#,
            store = self.store().display(),
            recipient = self.recipient,
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes drill `name` for database `db`; `extra` is appended (timeouts, assertions).
    pub fn drill(&self, name: &str, db: &str, extra: &str) -> PathBuf {
        let source = format!(
            r#"[source]
type = "postgres"
host = "127.0.0.1"
port = {port}
database = "{db}"
user = "postgres"
password = {{ env = "{PASSWORD_ENV}" }}"#,
            port = pg().port,
        );
        self.write_drill(name, &source, "1GiB", extra)
    }

    pub fn artifact_path(&self, drill: &str, run_id: &str) -> PathBuf {
        self.store()
            .join(drill)
            .join(run_id)
            .join("artifact.dump.zst.age")
    }

    pub fn manifest_path(&self, drill: &str, run_id: &str) -> PathBuf {
        self.store().join(drill).join(run_id).join("manifest.json")
    }
}

/// In a new directory: a CA (ca.pem), a server certificate it signed for `localhost` only
/// (server.pem, server.key), a client certificate it signed (client.pem, client.key), and
/// a second CA that signed nothing here (other.pem).
pub fn make_certs() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("fd-tls")
        .tempdir_in("/tmp")
        .unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(
            r#"set -e; cd "$1"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=fd-test-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' > ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=postgres 2>/dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > client-ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client-ext 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj /CN=other-ca 2>/dev/null
chmod 755 .; chmod 644 ca.pem server.pem other.pem client.pem server.key; chmod 600 client.key"#,
        )
        .arg("tls")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl (Debian package openssl) makes the test certificates: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Runs the drill in file `path` in this process, silently, to its report.
pub async fn run_file(path: &Path) -> firedrill::RunReport {
    let drill = firedrill::load_drill(path).unwrap_or_else(|p| panic!("{p}"));
    firedrill::run_drill(
        &drill,
        &firedrill::RunOptions::default(),
        &firedrill::Silent,
        &firedrill::Stop::new(),
    )
    .await
}

/// Writes `text` to `dir/name`, readable by its owner only (a password file).
pub fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// Containers and volumes still labelled with this run.
pub async fn leftovers(run_id: &str) -> Vec<String> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let filters: HashMap<String, Vec<String>> =
        HashMap::from([("label".to_string(), vec![format!("firedrill.run={run_id}")])]);
    let mut out = Vec::new();
    for c in docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .unwrap()
    {
        out.push(format!("container {:?}", c.names));
    }
    for v in docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .unwrap()
        .volumes
        .unwrap_or_default()
    {
        out.push(format!("volume {}", v.name));
    }
    out
}

pub fn stage(r: &firedrill::RunReport, s: firedrill::Stage) -> &firedrill::report::StageReport {
    r.stages
        .iter()
        .find(|x| x.stage == s)
        .unwrap_or_else(|| panic!("no stage {s} in {:#?}", r.stages))
}

/// Makes a stored artifact's manifest agree with the artifact's bytes as they are now (its
/// SHA-256 and size, and `plain_bytes` when given), so that a doctored backup passes the
/// hash check and only its content differs.
pub fn match_manifest_to_artifact(
    fx: &Fixture,
    drill: &str,
    run_id: &str,
    plain_bytes: Option<u64>,
) {
    use sha2::Digest;
    let bytes = std::fs::read(fx.artifact_path(drill, run_id)).unwrap();
    let path = fx.manifest_path(drill, run_id);
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m["sha256"] = hex::encode(sha2::Sha256::digest(&bytes)).into();
    m["encrypted_bytes"] = (bytes.len() as u64).into();
    if let Some(n) = plain_bytes {
        m["plain_bytes"] = n.into();
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

pub fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

pub const MY_PASSWORD_ENV: &str = "FIREDRILL_TEST_MY_PASSWORD";

/// The MariaDB source `tests/run` started (user `firedrill`).
pub fn my_port() -> u16 {
    std::env::var("FIREDRILL_TEST_MY_PORT")
        .expect("FIREDRILL_TEST_MY_PORT is not set: run the tests with tests/run, which starts the MariaDB source")
        .parse()
        .expect("FIREDRILL_TEST_MY_PORT is a port")
}

pub async fn my_conn() -> mysql_async::Conn {
    let password = std::env::var(MY_PASSWORD_ENV)
        .expect("FIREDRILL_TEST_MY_PASSWORD is not set: run tests/run");
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(my_port())
        .user(Some("firedrill"))
        .pass(Some(password))
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .expect("connect to the test MariaDB")
}

/// Recreates MariaDB database `name` and runs each statement of `setup` in it.
pub async fn create_my_db(name: &str, setup: &[&str]) {
    use mysql_async::prelude::Queryable;
    let mut c = my_conn().await;
    c.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
        .await
        .unwrap();
    c.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        .await
        .unwrap();
    c.query_drop(format!("USE `{name}`")).await.unwrap();
    for stmt in setup {
        c.query_drop(*stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    c.disconnect().await.unwrap();
}

impl Fixture {
    /// Writes a MySQL/MariaDB drill `name`; `source_extra` goes into [source] (database
    /// selection), `extra` at the end.
    pub fn my_drill(&self, name: &str, source_extra: &str, extra: &str) -> PathBuf {
        let source = format!(
            r#"[source]
type = "mariadb"
host = "127.0.0.1"
port = {port}
user = "firedrill"
password = {{ env = "{MY_PASSWORD_ENV}" }}
{source_extra}"#,
            port = my_port(),
        );
        self.write_drill(name, &source, "2GiB", extra)
    }
}

/// The S3 server (Garage) `tests/run` started: (endpoint, bucket, region, key id, secret).
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub key_id: String,
    pub secret: String,
}

pub fn s3_from_env_file(path: Option<&Path>) -> S3 {
    let vars: HashMap<String, String> = match path {
        Some(p) => std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect(),
        None => std::env::vars().collect(),
    };
    let get = |k: &str| {
        vars.get(k).cloned().unwrap_or_else(|| {
            panic!("{k} is not set: run the tests with tests/run, which starts Garage")
        })
    };
    S3 {
        endpoint: get("FIREDRILL_TEST_S3_ENDPOINT"),
        bucket: get("FIREDRILL_TEST_S3_BUCKET"),
        region: get("FIREDRILL_TEST_S3_REGION"),
        key_id: get("FIREDRILL_TEST_S3_KEY_ID"),
        secret: get("FIREDRILL_TEST_S3_SECRET"),
    }
}

impl S3 {
    /// A `[storage]` table for this server; the credentials come from the named env vars.
    pub fn storage_toml(&self, prefix: &str, key_env: &str, secret_env: &str) -> String {
        format!(
            "[storage]\ntype = \"s3\"\nbucket = \"{}\"\nregion = \"{}\"\nendpoint = \"{}\"\nprefix = \"{prefix}\"\naccess_key_id = {{ env = \"{key_env}\" }}\nsecret_access_key = {{ env = \"{secret_env}\" }}\n",
            self.bucket, self.region, self.endpoint
        )
    }

    pub fn spec(
        &self,
        prefix: &str,
        key_env: &str,
        secret_env: &str,
    ) -> firedrill::config::StorageSpec {
        firedrill::config::StorageSpec::S3 {
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            endpoint: Some(self.endpoint.clone()),
            path_style: true,
            access_key_id: firedrill::secret::SecretSource::Env {
                env: key_env.into(),
            },
            secret_access_key: firedrill::secret::SecretSource::Env {
                env: secret_env.into(),
            },
            prefix: prefix.into(),
        }
    }
}

/// The live parts of a drill with a test's change to them (a store in front of the real
/// one, a sandbox backend that hiccups): the run is otherwise the binary's own.
pub struct LiveWith<F>(pub F);

impl<F> firedrill::Connector for LiveWith<F>
where
    F: Fn(&mut firedrill::drill::Parts) + Send + Sync + 'static,
{
    fn connect(&self, d: &firedrill::Drill) -> firedrill::Result<firedrill::drill::Parts> {
        let mut parts = firedrill::LiveConnector.connect(d)?;
        (self.0)(&mut parts);
        Ok(parts)
    }
}

/// A runner with no catalog, reports or pages, reaching the world through `connector`.
pub fn bare_runner(connector: impl firedrill::Connector) -> firedrill::Runner {
    firedrill::Runner {
        connector: std::sync::Arc::new(connector),
        catalog: None,
        reports: None,
        pager: None,
        leases: None,
    }
}

/// Rewrites a stored artifact's dump as someone with write access to storage could: it is
/// decrypted with the fixture's identity, decompressed, changed by `change`, compressed
/// and encrypted again to the fixture's recipient, and its manifest made to agree (hash,
/// size and `plain_bytes`), so that only the dump's content differs. Returns the dump as
/// it was.
pub fn doctor_dump(
    fx: &Fixture,
    drill: &str,
    run_id: &str,
    change: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let artifact = fx.artifact_path(drill, run_id);
    let run = |script: &str, input: &[u8]| -> Vec<u8> {
        use std::io::Write;
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("bash")
            .arg(&fx.identity)
            .arg(&fx.recipient)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let sealed = std::fs::read(&artifact).unwrap();
    let plain = run(r#"set -euo pipefail; age -d -i "$1" | zstd -d -q"#, &sealed);
    let changed = change(&plain);
    let resealed = run(r#"set -euo pipefail; zstd -q -c | age -r "$2""#, &changed);
    std::fs::write(&artifact, resealed).unwrap();
    match_manifest_to_artifact(fx, drill, run_id, Some(changed.len() as u64));
    plain
}

/// `haystack` with the first (or, `last`, the last) `from` replaced by `to`.
pub fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8], last: bool) -> Vec<u8> {
    let mut found = haystack.windows(from.len()).map(|w| w == from);
    let i = if last {
        found.rposition(|m| m)
    } else {
        found.position(|m| m)
    }
    .unwrap_or_else(|| panic!("{:?} is not in the dump", String::from_utf8_lossy(from)));
    [&haystack[..i], to, &haystack[i + from.len()..]].concat()
}

/// Runs a bash script (`set -euo pipefail`) with `args` as `$1`…, against the test
/// servers (PG* and MYSQL_PWD set); its stdout. Panics with its stderr if it fails.
pub fn sh(script: &str, args: &[&str]) -> String {
    let p = pg();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .arg("sh")
        .args(args)
        .env("PGPASSWORD", &p.password)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", p.port.to_string())
        .env("PGUSER", "postgres")
        .env(
            "MYSQL_PWD",
            std::env::var("FIREDRILL_TEST_MY_PASSWORD").unwrap_or_default(),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Replaces a stored PostgreSQL artifact by a doctored one: `original` decrypted,
/// restored into a scratch database, changed by `sql`, dumped, compressed and encrypted
/// again to the drill's recipient, with the manifest's size and hash updated so that only
/// the data differs (the restore holds the stream to `plain_bytes` exactly).
pub fn doctor(fx: &Fixture, drill: &str, run_id: &str, original: &[u8], sql: &str) {
    let artifact = fx.artifact_path(drill, run_id);
    std::fs::write(&artifact, original).unwrap();
    let scratch = format!("fd_scratch_{drill}");
    sh(
        r#"dropdb --if-exists --force "$3"; createdb "$3"
age -d -i "$1" "$2" | zstd -d -q | pg_restore --no-owner --no-privileges --exit-on-error -d "$3"
psql -X -q -v ON_ERROR_STOP=1 -d "$3" -c "$4"
pg_dump -Fc -Z0 "$3" | zstd -q -c | age -r "$5" > "$2.new"
mv "$2.new" "$2"
dropdb --force "$3""#,
        &[
            fx.identity.to_str().unwrap(),
            artifact.to_str().unwrap(),
            &scratch,
            sql,
            &fx.recipient,
        ],
    );
    let plain: u64 = sh(
        r#"age -d -i "$1" "$2" | zstd -d -q | wc -c"#,
        &[fx.identity.to_str().unwrap(), artifact.to_str().unwrap()],
    )
    .trim()
    .parse()
    .unwrap();
    match_manifest_to_artifact(fx, drill, run_id, Some(plain));
}

/// `docker-compose` (Debian's package, what tests/run installs), else `docker compose`.
pub fn compose() -> std::process::Command {
    let on_path = |n: &str| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    };
    if let Some(dc) = on_path("docker-compose") {
        return std::process::Command::new(dc);
    }
    if let Some(docker) = on_path("docker") {
        let v = std::process::Command::new(&docker)
            .args(["compose", "version"])
            .output();
        if v.is_ok_and(|o| o.status.success()) {
            let mut c = std::process::Command::new(docker);
            c.arg("compose");
            return c;
        }
    }
    panic!(
        "docker-compose is not installed: run the tests through tests/run, which installs it \
         (Debian package docker-compose, deploy/host-setup.sh)"
    )
}

/// Runs `script` after sourcing `deploy/host-setup.sh` (the project's own way of starting
/// servers), failing the test with its stderr.
pub fn host_setup(script: &str) {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(". deploy/host-setup.sh; {script}"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under `dir`, at any depth (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
