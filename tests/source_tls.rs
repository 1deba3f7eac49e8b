//! Sources that accept only TLS, with a CA the test makes: a real PostgreSQL (`hostssl`
//! lines only, a client certificate required) and a real MariaDB
//! (`require_secure_transport=ON`), each drilled end to end under verify-full, and each
//! refused — naming the cause — with a wrong CA, a wrong host name and TLS disabled.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use firedrill::doctor::{diagnose, Status};
use firedrill::{load_drill, ErrorKind, Verdict};
use support::*;

/// A CA, a server certificate it signed for `localhost` only (not 127.0.0.1), a client
/// certificate it signed, and a second CA that signed nothing here.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Certs {
        Certs { dir: make_certs() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's key, readable by the server's user.
    fn give_key_to(&self, user: &str) -> PathBuf {
        let key = self.path(&format!("server-{user}.key"));
        std::fs::copy(self.path("server.key"), &key).unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#"chmod 600 "$1"; if [ "$(id -u)" = 0 ]; then chown "$2" "$1"; fi"#)
            .arg("key")
            .arg(&key)
            .arg(user)
            .output()
            .unwrap();
        assert!(out.status.success());
        key
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn shell(script: &str, args: &[&Path]) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .arg("sh")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the drill written from `source` and expects it to fail at the dump as a config
/// error whose message says `says`; returns the whole report as text.
async fn refused(fx: &Fixture, name: &str, source: &str, says: &str) -> String {
    let path = fx.write_drill(name, source, "1GiB", "");
    let r = run_file(&path).await;
    let text = firedrill::report::render_human(&r);
    // A drill that could not run: an error, not a failed backup.
    assert_eq!(r.verdict, Verdict::Error, "{text}");
    let e = r.error.as_ref().unwrap_or_else(|| panic!("{text}"));
    assert_eq!(e.kind, ErrorKind::Config, "{text}");
    assert_eq!(r.exit_code, 2, "{text}");
    assert!(
        e.message.contains(says),
        "expected `{says}` in: {}\n{text}",
        e.message
    );
    assert!(leftovers(&r.run_id).await.is_empty());
    text
}

/// The secrets that must never appear in a report, a log or argv.
fn assert_no_secrets(text: &str, certs: &Certs, password: &str) {
    assert!(!text.contains(password), "the password leaked: {text}");
    assert!(!text.contains("PRIVATE KEY"), "a key leaked: {text}");
    let key = std::fs::read_to_string(certs.path("client.key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!text.contains(body), "the client key leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_source_that_accepts_only_tls() {
    let certs = Certs::make();
    let dir = tempfile::Builder::new()
        .prefix("fd-tls-pg")
        .tempdir_in("/tmp")
        .unwrap();
    let port = free_port();
    let password = "tls-source-pw-31";
    host_setup(&format!(
        "fd_start_pg {}/pg {port} {password}",
        dir.path().display()
    ));
    let key = certs.give_key_to("postgres");
    let sock = dir.path().join("pg");
    let data = sock.join("data");
    // Only TLS with a client certificate signed by the CA, and a password on top.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-ca\nhostssl all all ::1/128 scram-sha-256 clientcert=verify-ca\n",
    )
    .unwrap();
    let psql = format!("psql -XqAt -h \"$1\" -p {port} -U postgres");
    shell(
        &format!(
            r#"{psql} postgres -c "ALTER SYSTEM SET ssl = on" -c "ALTER SYSTEM SET ssl_cert_file = '$2'" \
  -c "ALTER SYSTEM SET ssl_key_file = '$3'" -c "ALTER SYSTEM SET ssl_ca_file = '$4'" -c "SELECT pg_reload_conf()"
{psql} postgres -c "CREATE DATABASE tlsshop"
{psql} tlsshop <<'SQL'
{SHOP}
SQL"#
        ),
        &[
            &sock,
            &certs.path("server.pem"),
            &key,
            &certs.path("ca.pem"),
        ],
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    std::env::set_var("FD_TLS_PG_PASSWORD", password);
    let source = |host: &str, tls: &str| {
        format!(
            r#"[source]
type = "postgres"
host = "{host}"
port = {port}
database = "tlsshop"
user = "postgres"
password = {{ env = "FD_TLS_PG_PASSWORD" }}
{tls}"#
        )
    };
    let client = format!(
        "sslcert = \"{}\"\nsslkey = \"{}\"",
        certs.path("client.pem").display(),
        certs.path("client.key").display()
    );
    let fx = Fixture::new();

    // verify-full by the name the certificate is for: the drill passes end to end, and
    // the doctor shows the protocol and that the certificate was verified.
    let good = source(
        "localhost",
        &format!(
            "sslmode = \"verify-full\"\nsslrootcert = \"{}\"\n{client}",
            certs.path("ca.pem").display()
        ),
    );
    let path = fx.write_drill("tls-pg", &good, "1GiB", "");
    let r = run_file(&path).await;
    let text = firedrill::report::render_human(&r);
    assert_eq!(r.verdict, Verdict::Passed, "{text}");
    assert_eq!(r.rows, Some(3000 + 12000 + 500), "{text}");
    assert!(leftovers(&r.run_id).await.is_empty());
    let json = serde_json::to_string(&r).unwrap();
    assert_no_secrets(&format!("{text}{json}"), &certs, password);
    let f = diagnose(&load_drill(&path).unwrap()).await;
    let tls = f
        .iter()
        .find(|x| x.check == "TLS to the source")
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!(tls.status, Status::Ok, "{tls:?}");
    assert!(tls.detail.starts_with("TLSv1."), "{tls:?}");
    assert!(tls.detail.contains("trusted CA and host name"), "{tls:?}");
    // pg_dump got the same settings through its environment: the server takes no
    // connection without TLS and the client certificate, so the dump above proves it.

    // A CA that did not sign the server's certificate.
    let wrong_ca = source(
        "localhost",
        &format!(
            "sslmode = \"verify-full\"\nsslrootcert = \"{}\"\n{client}",
            certs.path("other.pem").display()
        ),
    );
    let t = refused(
        &fx,
        "tls-pg-ca",
        &wrong_ca,
        "is not signed by the CA in source.sslrootcert",
    )
    .await;
    assert!(t.contains("other.pem"), "{t}");

    // A host name the certificate is not for; verify-ca accepts it, checking the CA only.
    let by_ip = |mode: &str| {
        source(
            "127.0.0.1",
            &format!(
                "sslmode = \"{mode}\"\nsslrootcert = \"{}\"\n{client}",
                certs.path("ca.pem").display()
            ),
        )
    };
    let t = refused(
        &fx,
        "tls-pg-name",
        &by_ip("verify-full"),
        "is issued for localhost, not for `127.0.0.1`",
    )
    .await;
    assert!(t.contains("verify-ca"), "the fix names verify-ca: {t}");
    let f = diagnose(
        &load_drill(&fx.write_drill("tls-pg-ca-only", &by_ip("verify-ca"), "1GiB", "")).unwrap(),
    )
    .await;
    let tls = f
        .iter()
        .find(|x| x.check == "TLS to the source")
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert!(tls.detail.contains("host name not compared"), "{tls:?}");

    // TLS disabled against a server that accepts only TLS.
    let t = refused(
        &fx,
        "tls-pg-plain",
        &source("localhost", "sslmode = \"disable\""),
        "refused a connection without TLS",
    )
    .await;
    assert!(t.contains("sslmode = \"verify-full\""), "{t}");

    // No client certificate: the server's refusal, not a guess.
    let no_cert = source(
        "localhost",
        &format!(
            "sslmode = \"verify-full\"\nsslrootcert = \"{}\"",
            certs.path("ca.pem").display()
        ),
    );
    let path = fx.write_drill("tls-pg-nocert", &no_cert, "1GiB", "");
    let r = run_file(&path).await;
    assert_eq!(r.verdict, Verdict::Error);
    assert_eq!(r.exit_code, 2, "{}", firedrill::report::render_human(&r));

    host_setup(&format!("fd_stop_pg {}/pg", dir.path().display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_source_that_requires_secure_transport() {
    let certs = Certs::make();
    let dir = tempfile::Builder::new()
        .prefix("fd-tls-my")
        .tempdir_in("/tmp")
        .unwrap();
    let port = free_port();
    let password = "tls-my-pw-77";
    let key = certs.give_key_to("mysql");
    host_setup(&format!(
        "FD_MARIADB_ARGS='--ssl-ca={} --ssl-cert={} --ssl-key={} --require-secure-transport=ON' fd_start_mariadb {}/my {port} {password}",
        certs.path("ca.pem").display(),
        certs.path("server.pem").display(),
        key.display(),
        dir.path().display()
    ));
    let sock = dir.path().join("my/sock");
    shell(
        r#"mariadb --socket="$1" -uroot <<'SQL'
CREATE DATABASE tlsshop CHARACTER SET utf8mb4;
USE tlsshop;
CREATE TABLE customers (id int PRIMARY KEY AUTO_INCREMENT, name varchar(100) NOT NULL);
INSERT INTO customers (name) SELECT concat('customer ', seq) FROM seq_1_to_3000;
CREATE TABLE orders (id bigint PRIMARY KEY AUTO_INCREMENT, customer_id int NOT NULL, amount decimal(12,2));
INSERT INTO orders (customer_id, amount) SELECT 1 + seq % 3000, seq * 0.75 FROM seq_1_to_12000;
CREATE USER 'fd'@'localhost' IDENTIFIED BY 'tls-my-pw-77';
CREATE USER 'fd'@'127.0.0.1' IDENTIFIED BY 'tls-my-pw-77';
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON *.* TO 'fd'@'localhost';
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON *.* TO 'fd'@'127.0.0.1';
SQL"#,
        &[&sock],
    );
    std::env::set_var("FD_TLS_MY_PASSWORD", password);
    let source = |host: &str, tls: &str| {
        format!(
            r#"[source]
type = "mariadb"
host = "{host}"
port = {port}
user = "fd"
password = {{ env = "FD_TLS_MY_PASSWORD" }}
database = "tlsshop"
{tls}"#
        )
    };
    let ca = certs.path("ca.pem");
    let fx = Fixture::new();

    let good = source(
        "localhost",
        &format!(
            "ssl_mode = \"VERIFY_IDENTITY\"\nssl_ca = \"{}\"",
            ca.display()
        ),
    );
    let path = fx.write_drill("tls-my", &good, "2GiB", "");
    let r = run_file(&path).await;
    let text = firedrill::report::render_human(&r);
    assert_eq!(r.verdict, Verdict::Passed, "{text}");
    assert_eq!(r.rows, Some(3000 + 12000), "{text}");
    assert!(leftovers(&r.run_id).await.is_empty());
    let json = serde_json::to_string(&r).unwrap();
    assert_no_secrets(&format!("{text}{json}"), &certs, password);
    let f = diagnose(&load_drill(&path).unwrap()).await;
    let tls = f
        .iter()
        .find(|x| x.check == "TLS to the source")
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!(tls.status, Status::Ok, "{tls:?}");
    assert!(tls.detail.starts_with("TLSv1."), "{tls:?}");
    assert!(tls.detail.contains("trusted CA and host name"), "{tls:?}");

    let t = refused(
        &fx,
        "tls-my-ca",
        &source(
            "localhost",
            &format!(
                "ssl_mode = \"verify_identity\"\nssl_ca = \"{}\"",
                certs.path("other.pem").display()
            ),
        ),
        "is not signed by the CA in source.ssl_ca",
    )
    .await;
    assert!(t.contains("other.pem"), "{t}");

    let by_ip = |mode: &str| {
        source(
            "127.0.0.1",
            &format!("ssl_mode = \"{mode}\"\nssl_ca = \"{}\"", ca.display()),
        )
    };
    let t = refused(
        &fx,
        "tls-my-name",
        &by_ip("verify_identity"),
        "is issued for localhost, not for `127.0.0.1`",
    )
    .await;
    assert!(t.contains("verify_ca"), "the fix names verify_ca: {t}");
    // verify_ca checks the chain only: it passes by IP address.
    let path = fx.write_drill("tls-my-ca-only", &by_ip("verify_ca"), "2GiB", "");
    let f = diagnose(&load_drill(&path).unwrap()).await;
    let tls = f
        .iter()
        .find(|x| x.check == "TLS to the source")
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert!(tls.detail.contains("host name not compared"), "{tls:?}");
    let r = run_file(&path).await;
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&r)
    );

    let t = refused(
        &fx,
        "tls-my-plain",
        &source("localhost", "ssl_mode = \"disabled\""),
        "refused a connection without TLS",
    )
    .await;
    assert!(t.contains("ssl_mode = \"verify_identity\""), "{t}");

    host_setup(&format!("fd_stop_mariadb {}/my", dir.path().display()));
}
