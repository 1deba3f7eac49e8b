//! No secret leaves the places it is meant for. A drill that fails (so the error paths
//! run too) goes through the real binary with every log on (`FIREDRILL_LOG=trace`),
//! paging through an SMTP channel with a password and a signed webhook, signing its
//! reports; a second drill fails against an S3 endpoint that refuses its keys; the
//! daemon answers its API with and without the token. Each secret has a distinctive value
//! made for this run.
//!
//! While they run, every process's command line (`/proc/*/cmdline`: pg_dump, docker exec'd
//! commands as the host sees them, the binary itself) is sampled, and none may hold a
//! secret. Afterwards, none may be in: stdout, stderr (trace logs), the JSON report, any
//! file the runs wrote (the SQLite catalog with its outbox of pages, the reports, the
//! manifests), what the webhook and the S3 endpoint received, the daemon's logs and
//! answers, and the `Debug` form of the loaded configs and drills.
//!
//! The S3 store is a local endpoint that answers 403 to everything, not Garage: the point
//! is what firedrill does with the keys, not what a real server does with them.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use support::*;

/// A secret value no other text would contain.
fn secret(label: &str) -> String {
    format!("{label}-{:016x}{:08x}", rand_u64(), std::process::id())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// What a local HTTP endpoint received: method, URI, headers and body of each request.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<String>>>);

/// An HTTP endpoint on 127.0.0.1 that records every request and answers `status` with
/// `body`.
async fn endpoint(status: u16, body: &'static str) -> (String, Received) {
    let got = Received::default();
    let app = axum::Router::new().fallback({
        let got = got.clone();
        move |method: Method, uri: Uri, headers: HeaderMap, req_body: Bytes| {
            let got = got.clone();
            async move {
                got.0.lock().unwrap().push(format!(
                    "{method} {uri}\n{headers:?}\n{}",
                    String::from_utf8_lossy(&req_body)
                ));
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/xml")],
                    body,
                )
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

/// A port nobody listens on (bound, then let go).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Samples every process's command line until `stop`; returns all it saw.
fn sample_cmdlines(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<BTreeSet<String>> {
    std::thread::spawn(move || {
        let mut seen = BTreeSet::new();
        while !stop.load(Ordering::Relaxed) {
            if let Ok(rd) = std::fs::read_dir("/proc") {
                for e in rd.flatten() {
                    let name = e.file_name();
                    if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                        continue;
                    }
                    if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
                        if !raw.is_empty() {
                            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                            seen.insert(line.trim_end().to_string());
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    })
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Panics naming the secret and the place if any secret is in `text`.
fn assert_clean(secrets: &[(&str, &str)], place: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    for (name, value) in secrets {
        assert!(
            !text.contains(value),
            "the {name} is in {place}:\n{}",
            excerpt(&text, value)
        );
    }
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

fn excerpt(text: &str, needle: &str) -> String {
    let i = text.find(needle).unwrap_or(0);
    let boundary = |mut at: usize| {
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let from = boundary(i.saturating_sub(300));
    let to = boundary((i + needle.len() + 300).min(text.len()));
    text[from..to].to_string()
}

/// Runs the binary with `args` and `envs` while sampling command lines; (output, cmdlines).
async fn cli(
    args: Vec<String>,
    envs: Vec<(String, String)>,
) -> (std::process::Output, BTreeSet<String>) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_cmdlines(stop.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(&args)
            .envs(envs)
            .env("FIREDRILL_LOG", "trace")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    (out, sampler.join().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_argv_logs_reports_the_catalog_pages_or_debug_output() {
    let db_password = secret("dbpw");
    let s3_key_id = format!("AKIA{}", &secret("k")[2..18].to_uppercase());
    let s3_secret = secret("s3secret");
    let smtp_password = secret("smtppw");
    let webhook_secret = secret("hooksecret");
    let api_token = secret("apitoken");
    // Secrets inside URLs: Slack's webhook URL (a secret reference), and a chat service
    // whose bot token sits in the path and a key in the query (a plain `url`).
    let slack_token = secret("slackTok");
    let path_token = secret("pathTok");
    let query_token = secret("queryTok");
    // Written inline where a secret reference belongs: refused without being repeated.
    let inline_password = secret("inlinepw");
    let inline_token = secret("inlinetoken");

    // A source role whose password is the secret (roles are cluster-wide: created from
    // the seed script of the drill's database).
    create_db(
        "fd_secrets",
        &format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fd_secrets_role') \
             THEN CREATE ROLE fd_secrets_role LOGIN SUPERUSER; END IF; END $$;\n\
             ALTER ROLE fd_secrets_role PASSWORD '{db_password}';\n{SHOP}"
        ),
    )
    .await;

    let fx = Fixture::new();
    let dir = fx.dir.path();
    let identity_text = std::fs::read_to_string(&fx.identity).unwrap();
    let identity_key = identity_text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string();
    std::fs::write(dir.join("hook.secret"), format!("{webhook_secret}\n")).unwrap();
    let keygen = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["evidence", "keygen", "--output"])
        .arg(dir.join("signing.pem"))
        .output()
        .unwrap();
    assert!(
        keygen.status.success(),
        "{}",
        String::from_utf8_lossy(&keygen.stderr)
    );
    let signing_pem = std::fs::read_to_string(dir.join("signing.pem")).unwrap();
    let signing_key = signing_pem
        .lines()
        .find(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .unwrap()
        .to_string();

    let secrets: Vec<(&str, &str)> = vec![
        ("database password", &db_password),
        ("S3 access key id", &s3_key_id),
        ("S3 secret key", &s3_secret),
        ("SMTP password", &smtp_password),
        ("webhook secret", &webhook_secret),
        ("API token", &api_token),
        ("age identity", &identity_key),
        ("report signing key", &signing_key),
        ("Slack webhook URL token", &slack_token),
        ("token in a webhook URL's path", &path_token),
        ("token in a webhook URL's query", &query_token),
        ("inline password", &inline_password),
        ("inline API token", &inline_token),
    ];
    // Files that hold a secret by design: the only places it may be.
    let holders = [
        fx.identity.clone(),
        dir.join("hook.secret"),
        dir.join("signing.pem"),
        // The chat URL's tokens are written in the config, as such URLs are.
        dir.join("firedrill.toml"),
        dir.join("inline.toml"),
        dir.join("inline-config.toml"),
        dir.join("daemon-drills").join("inline.toml"),
    ];
    let dead = unused_port();
    let slack_url = format!(
        "http://127.0.0.1:{dead}/services/T0FD{}/B0FD{}/{slack_token}",
        &slack_token[9..15],
        &slack_token[15..21]
    );
    let chat_url =
        format!("http://127.0.0.1:{dead}/bot{path_token}/sendMessage?chat=ops&token={query_token}");

    let (hook_url, hook_got) = endpoint(202, "ok").await;
    let (s3_url, s3_got) = endpoint(
        403,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
    )
    .await;
    let p = pg();
    let source = format!(
        "[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"fd_secrets\"\nuser = \"fd_secrets_role\"\npassword = {{ env = \"FD_SECRET_DB_PASSWORD\" }}\n",
        p.port
    );
    let common = format!(
        "[encryption]\nrecipients = [\"{}\"]\nidentity = {{ file = \"identity.txt\" }}\n\n[sandbox]\nmemory = \"1GiB\"\n\n[timeouts]\nprovision = \"3m\"\nrestore = \"5m\"\nupload = \"1m\"\n\n[retry]\nattempts = 1\n",
        fx.recipient
    );
    let failing = "[[assertion]]\nname = \"a million customers\"\nsql = \"select count(*) from customers\"\nexpect = \">= 1000000\"\n";
    let local_drill = dir.join("leaky.toml");
    std::fs::write(
        &local_drill,
        format!(
            "{source}\n[storage]\ntype = \"local\"\npath = \"{}\"\n\n{common}\n{failing}",
            fx.store().display()
        ),
    )
    .unwrap();
    let s3_drill = dir.join("leaky-s3.toml");
    std::fs::write(
        &s3_drill,
        format!(
            "{source}\n[storage]\ntype = \"s3\"\nbucket = \"fd-secrets\"\nregion = \"us-east-1\"\nendpoint = \"{s3_url}\"\npath_style = true\naccess_key_id = {{ env = \"FD_SECRET_S3_KEY_ID\" }}\nsecret_access_key = {{ env = \"FD_SECRET_S3_SECRET\" }}\n\n{common}\n{failing}"
        ),
    )
    .unwrap();
    let drills_dir = dir.join("daemon-drills");
    std::fs::create_dir_all(&drills_dir).unwrap();
    let config = dir.join("firedrill.toml");
    std::fs::write(
        &config,
        format!(
            r#"drills_dir = "{drills}"

[notify]
base_url = "https://firedrill.example.com"

[[notify.channel]]
name = "mail"
type = "email"
host = "127.0.0.1"
port = {smtp_port}
tls = "starttls"
username = "firedrill"
password = {{ env = "FD_SECRET_SMTP_PASSWORD" }}
from = "firedrill@example.com"
to = ["oncall@example.com"]

[[notify.channel]]
name = "hook"
type = "webhook"
url = "{hook_url}/hook"
secret = {{ file = "hook.secret" }}

[[notify.channel]]
name = "slack"
type = "slack"
webhook_url = {{ env = "FD_SECRET_SLACK_URL" }}

[[notify.channel]]
name = "chat"
type = "webhook"
url = "{chat_url}"

[daemon]
listen = "127.0.0.1:0"
token = {{ env = "FD_SECRET_API_TOKEN" }}

[evidence]
signing_key = {{ file = "signing.pem" }}
"#,
            drills = drills_dir.display(),
            // Nobody listens there: the mail is only queued.
            smtp_port = unused_port(),
        ),
    )
    .unwrap();
    let envs: Vec<(String, String)> = [
        ("FD_SECRET_DB_PASSWORD", &db_password),
        ("FD_SECRET_S3_KEY_ID", &s3_key_id),
        ("FD_SECRET_S3_SECRET", &s3_secret),
        ("FD_SECRET_SMTP_PASSWORD", &smtp_password),
        ("FD_SECRET_API_TOKEN", &api_token),
        ("FD_SECRET_SLACK_URL", &slack_url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let run_args = |drill: &Path| -> Vec<String> {
        vec![
            "--config".into(),
            config.display().to_string(),
            "--catalog".into(),
            dir.join("catalog.db").display().to_string(),
            "run".into(),
            drill.display().to_string(),
            "--json".into(),
        ]
    };

    // 1. The drill restores, fails its assertion, pages (SMTP down: the page waits in the
    //    outbox; the webhook is delivered, signed) and signs its reports.
    let (out, cmdlines) = cli(run_args(&local_drill), envs.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the drill fails its assertion:\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed_stage"], "verify", "{report:#}");
    assert!(stderr.contains("TRACE"), "trace logs are on");
    for (what, text) in [
        ("stdout (the JSON report)", &out.stdout),
        ("stderr (trace logs)", &out.stderr),
    ] {
        assert_clean(&secrets, what, text);
    }
    let bin = env!("CARGO_BIN_EXE_firedrill");
    assert!(
        cmdlines
            .iter()
            .any(|c| c.starts_with(bin) && c.contains(" run ")),
        "the sampler saw the run"
    );
    let seen = |what: &str| cmdlines.iter().filter(|c| c.contains(what)).count();
    eprintln!(
        "sampled {} command lines: pg_dump {}, firedrill-restore {}, psql {}",
        cmdlines.len(),
        seen("pg_dump"),
        seen("firedrill-restore"),
        seen("psql")
    );
    for c in &cmdlines {
        assert_clean(
            &secrets,
            &format!("the command line `{}`", short(c)),
            c.as_bytes(),
        );
    }
    let hooks = hook_got.0.lock().unwrap().clone();
    assert!(!hooks.is_empty(), "the webhook was paged");
    for h in &hooks {
        assert_clean(&secrets, "a webhook request", h.as_bytes());
    }

    // 2. The S3 store refuses the keys: the upload fails, with the error paths of storage;
    //    once with human logs, once with JSON logs (which escape differently).
    for format in ["human", "json"] {
        let mut envs = envs.clone();
        envs.push(("FIREDRILL_LOG_FORMAT".into(), format.into()));
        let (out, cmdlines) = cli(run_args(&s3_drill), envs).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["failed_stage"], "upload", "{report:#}");
        assert!(stderr.contains("TRACE"), "trace logs are on");
        assert_clean(
            &secrets,
            &format!("stdout of the S3 drill ({format} logs)"),
            &out.stdout,
        );
        assert_clean(
            &secrets,
            &format!("stderr of the S3 drill ({format} logs)"),
            &out.stderr,
        );
        for c in &cmdlines {
            assert_clean(
                &secrets,
                &format!("the command line `{}`", short(c)),
                c.as_bytes(),
            );
        }
    }
    let s3 = s3_got.0.lock().unwrap().clone();
    assert!(!s3.is_empty(), "the S3 endpoint was asked");
    // The key id travels in the signature's scope, by design; the secret key never does.
    for r in &s3 {
        let others: Vec<(&str, &str)> = secrets
            .iter()
            .copied()
            .filter(|(n, _)| *n != "S3 access key id")
            .collect();
        assert_clean(&others, "a request to the S3 endpoint", r.as_bytes());
    }

    // 2b. Channels whose URLs hold tokens, tried and listed: `notify test`, `notify
    //     outbox` (the pages the failed drills queued for them wait there, with errors).
    for args in [
        vec!["notify", "test"],
        vec!["notify", "flush", "--now"],
        vec!["notify", "outbox"],
        vec!["notify", "outbox", "--json"],
    ] {
        let mut full = vec![
            "--config".to_string(),
            config.display().to_string(),
            "--catalog".into(),
            dir.join("catalog.db").display().to_string(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        let (out, _) = cli(full, envs.clone()).await;
        let text = [out.stdout.clone(), out.stderr.clone()].concat();
        assert!(
            !String::from_utf8_lossy(&text).is_empty(),
            "`{}` said nothing",
            args.join(" ")
        );
        assert_clean(&secrets, &format!("`firedrill {}`", args.join(" ")), &text);
    }
    // Inline secrets: a drill's password, the main config's token.
    std::fs::write(
        dir.join("inline.toml"),
        format!(
            "[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\ndatabase = \"x\"\nuser = \"u\"\npassword = \"{inline_password}\"\n\n[storage]\ntype = \"local\"\npath = \"store\"\n\n{common}"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("inline-config.toml"),
        format!("[daemon]\ntoken = \"{inline_token}\"\n"),
    )
    .unwrap();
    for args in [
        vec![
            "validate".to_string(),
            dir.join("inline.toml").display().to_string(),
        ],
        vec![
            "--config".to_string(),
            dir.join("inline-config.toml").display().to_string(),
            "history".into(),
        ],
    ] {
        let (out, _) = cli(args.clone(), envs.clone()).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let text = [out.stdout.clone(), out.stderr.clone()].concat();
        assert!(
            String::from_utf8_lossy(&text).contains("written inline"),
            "{}",
            String::from_utf8_lossy(&text)
        );
        assert_clean(&secrets, &format!("`firedrill {}`", args.join(" ")), &text);
    }

    // 3. The daemon: its API with the token, with a wrong one, and a bad webhook body.
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .arg("--config")
        .arg(&config)
        .arg("--catalog")
        .arg(dir.join("catalog.db"))
        .arg("daemon")
        .envs(envs.clone())
        .env("FIREDRILL_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its logs, kept for the scan below; the line that says where the API listens
    // (port 0: the daemon picked one).
    let logs: std::sync::Arc<std::sync::Mutex<Vec<u8>>> = Default::default();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<String>();
    {
        let logs = logs.clone();
        let mut stderr = daemon.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 8192];
            let mut told = false;
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut l = logs.lock().unwrap();
                l.extend_from_slice(&buf[..n]);
                if !told {
                    if let Some(at) = String::from_utf8_lossy(&l).split("API on ").nth(1) {
                        if let Some(line) = at.lines().next().filter(|_| at.contains('\n')) {
                            let _ = addr_tx.send(line.trim().to_string());
                            told = true;
                        }
                    }
                }
            }
        });
    }
    let base = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the daemon did not say where it listens");
    let client = reqwest::Client::new();
    let t0 = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the daemon did not listen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut answers = Vec::new();
    for (token, expect) in [(api_token.as_str(), 200), ("not-the-token", 401)] {
        let r = client
            .get(format!("{base}/api/v1/drills"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), expect);
        answers.push(format!(
            "{:?}\n{}",
            r.headers().clone(),
            r.text().await.unwrap()
        ));
    }
    let r = client
        .post(format!("{base}/api/v1/hooks/alertmanager"))
        .bearer_auth(&api_token)
        .body("{\"alerts\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    answers.push(r.text().await.unwrap());
    // A drill with an inline password, reloaded: 422, without the password.
    std::fs::copy(dir.join("inline.toml"), drills_dir.join("inline.toml")).unwrap();
    let r = client
        .post(format!("{base}/api/v1/reload"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("written inline"), "{body}");
    answers.push(body);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(daemon.id().to_string())
        .status();
    let t0 = Instant::now();
    while daemon.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = daemon.kill();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = daemon.wait_with_output().unwrap();
    let stderr = logs.lock().unwrap().clone();
    assert!(String::from_utf8_lossy(&stderr).contains("TRACE"));
    assert_clean(&secrets, "the daemon's logs", &stderr);
    assert_clean(&secrets, "the daemon's stdout", &out.stdout);
    for a in &answers {
        assert_clean(&secrets, "an API answer", a.as_bytes());
    }

    // 4. Everything the runs wrote: catalog (runs, reports, the outbox's pages), reports,
    //    manifests, the artifact.
    let mut checked = 0;
    for f in files(dir) {
        if holders.contains(&f) {
            continue;
        }
        assert_clean(
            &secrets,
            &f.display().to_string(),
            &std::fs::read(&f).unwrap(),
        );
        checked += 1;
    }
    let outbox = {
        let c = firedrill::catalog::SqliteCatalog::open(&dir.join("catalog.db")).unwrap();
        use firedrill::catalog::Catalog;
        c.outbox(50).await.unwrap()
    };
    assert!(!outbox.is_empty(), "pages are in the outbox");
    assert_clean(&secrets, "the outbox", format!("{outbox:?}").as_bytes());
    assert!(checked >= 5, "{checked} files");

    // 5. The configs and drills as loaded, and the secrets themselves, in Debug form.
    let main = firedrill::config::load_main_config(&config).unwrap();
    assert_clean(
        &secrets,
        "Debug of the main config",
        format!("{main:?}").as_bytes(),
    );
    let writer =
        firedrill::evidence::ReportWriter::from_config(&main, Some(&dir.join("catalog.db")), None)
            .unwrap();
    assert_clean(
        &secrets,
        "Debug of the report writer (it holds the signing key)",
        format!("{writer:?}").as_bytes(),
    );
    for d in [&local_drill, &s3_drill] {
        let drill = firedrill::load_drill(d).unwrap();
        assert_clean(
            &secrets,
            "Debug of a drill",
            format!("{drill:?}").as_bytes(),
        );
        assert_clean(
            &secrets,
            "Debug of a drill",
            format!("{drill:#?}").as_bytes(),
        );
    }
    for (name, value) in &secrets {
        let file = dir.join("loaded.secret");
        std::fs::write(&file, value).unwrap();
        let s = firedrill::secret::SecretSource::File { file }
            .load(dir)
            .unwrap();
        assert_eq!(s.expose(), *value);
        assert_clean(
            &secrets,
            &format!("Debug of the loaded {name}"),
            format!("{s:?} {s}").as_bytes(),
        );
    }
    std::fs::remove_file(dir.join("loaded.secret")).unwrap();
}
