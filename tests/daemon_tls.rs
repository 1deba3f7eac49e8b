//! The daemon's API over HTTPS (rustls), with a certificate from the main config: clients
//! that trust the certificate get in with the token, plain HTTP gets nothing, and a broken
//! TLS config is refused at start with the file named.

mod support;

use std::process::Command;
use std::time::Duration;

use support::daemon::DaemonProc;

const TOKEN: &str = "tls-token-8d21c0ffee5a";

/// The daemon listens where the system puts it (port 0) and says where.
fn write_config(dir: &std::path::Path, cert: &str, key: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("drills")).unwrap();
    let path = dir.join("firedrill.toml");
    std::fs::write(
        &path,
        format!(
            r#"catalog = "catalog.db"
drills_dir = "drills"

[daemon]
listen = "127.0.0.1:0"
token = {{ env = "FIREDRILL_TEST_TLS_TOKEN" }}
tls_cert = "{cert}"
tls_key = "{key}"
"#
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_speaks_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=firedrill test",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            // An end-entity certificate: rustls refuses a CA certificate as a server's.
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ])
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .output()
        .expect("openssl (Debian package openssl) makes the test certificate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = write_config(d, "cert.pem", "key.pem");
    let mut daemon = DaemonProc::start(&config, &[("FIREDRILL_TEST_TLS_TOKEN", TOKEN)]);
    assert!(daemon.base.starts_with("https://"), "{}", daemon.base);

    let cert = reqwest::Certificate::from_pem(&std::fs::read(d.join("cert.pem")).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(cert)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = daemon.base.clone();
    let plain_base = base.replacen("https://", "http://", 1);
    let mut last = String::new();
    let mut up = false;
    for _ in 0..100 {
        match https.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => {
                up = true;
                break;
            }
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the daemon did not answer over HTTPS: {last}");
    let r = https
        .get(format!("{base}/api/v1/drills"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = https
        .get(format!("{base}/api/v1/drills"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11.max(r.version()));
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000",
        "HTTPS answers carry HSTS"
    );
    // A login over HTTPS gets a Secure cookie.
    let r = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(d.join("cert.pem")).unwrap()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}&next=%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(set.contains("; Secure"), "{set}");
    assert!(r.headers().contains_key("strict-transport-security"));

    // A client that does not trust the certificate, and plain HTTP, get nothing.
    let untrusting = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(untrusting
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err());
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("{plain_base}/healthz"))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served on the TLS port"
    );

    assert_eq!(daemon.terminate(Duration::from_secs(60)), Some(0));

    // Half a TLS config, and a key that is not a key, are refused with the field named.
    std::fs::write(d.join("nokey.pem"), "not a key").unwrap();
    let config = write_config(d, "cert.pem", "nokey.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .arg("--config")
        .arg(&config)
        .arg("daemon")
        .env("FIREDRILL_TEST_TLS_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nokey.pem"), "{stderr}");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("tls_key = \"nokey.pem\"\n", "");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .arg("--config")
        .arg(&config)
        .arg("daemon")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("daemon.tls_cert") && stderr.contains("go together"),
        "{stderr}"
    );
}
