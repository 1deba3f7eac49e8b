//! Single sign-on and the dashboard in a real browser: headless Chromium driven over
//! WebDriver (Debian's `chromium-driver`, the `fantoccini` client) logs in through an
//! OpenID Connect provider on loopback (`tests/support/oidc-provider.py`, PyJWT), with
//! the code flow and PKCE. Two daemons share the catalog; the provider sends every
//! browser back to the second, so each login starts on one daemon and ends on the other.
//! An operator runs a drill from the page, a viewer is refused, users with no role, a
//! token for another audience or an expired one are turned away. Then the overview, a
//! drill and a run are measured at phone (375 px) and desktop (1400 px) widths for
//! horizontal overflow, with screenshots kept in `target/dashboard-screenshots/`.

mod support;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::Value;
use support::daemon::DaemonProc;

const ADMIN: &str = "sso-admin-token-91f3c0e2d7";
const CLIENT_SECRET: &str = "sso-client-secret-5b1a";

/// A child process killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_on_path(names: &[&str], env: &str, package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "{} was not found on PATH (Debian package `{package}`): run the tests with tests/run, which installs it, or set {env}",
        names[0]
    );
}

/// The OpenID Connect provider; returns it and its issuer URL.
fn provider() -> (Proc, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oidc-provider.py");
    // Debian's Python: PyJWT and cryptography come from its packages.
    let python = if Path::new("/usr/bin/python3").exists() {
        PathBuf::from("/usr/bin/python3")
    } else {
        PathBuf::from("python3")
    };
    let mut child = Command::new(python)
        .arg(script)
        .args([
            "--port",
            "0",
            "--client-id",
            "firedrill",
            "--client-secret",
            CLIENT_SECRET,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the OIDC provider");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let issuer = line
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("the provider did not start (python3-jwt installed?): {line:?}"))
        .trim()
        .to_string();
    (Proc(child), issuer)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromedriver() -> (Proc, u16) {
    let bin = find_on_path(
        &["chromedriver"],
        "FIREDRILL_TEST_CHROMEDRIVER",
        "chromium-driver",
    );
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (Proc(child), port)
}

async fn browser(port: u16) -> Client {
    // The WebDriver client speaks rustls; both providers are built in, so say which.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chromium = find_on_path(
        &["chromium", "chromium-browser", "google-chrome"],
        "FIREDRILL_TEST_CHROMIUM",
        "chromium",
    );
    let profile = tempfile::tempdir().unwrap().keep();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--window-size=1400,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session with headless Chromium")
}

fn config(dir: &Path, name: &str, port: u16, issuer: &str, callback_port: u16) {
    std::fs::write(
        dir.join(name),
        format!(
            "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:{port}\"\n\
             token = {{ env = \"FIREDRILL_TEST_ADMIN_TOKEN\" }}\n\n\
             [daemon.oidc]\nissuer = \"{issuer}\"\nclient_id = \"firedrill\"\n\
             client_secret = {{ env = \"FIREDRILL_TEST_OIDC_SECRET\" }}\n\
             redirect_url = \"http://127.0.0.1:{callback_port}/oidc/callback\"\n\
             roles = {{ \"firedrill-admins\" = \"admin\", \"firedrill-operators\" = \"operator\", \"firedrill-viewers\" = \"viewer\" }}\n"
        ),
    )
    .unwrap();
}

/// A drill whose source is at `port` (nothing, or a server that never answers).
fn drill_file(dir: &Path, name: &str, port: u16, recipient: &str) {
    std::fs::write(
        dir.join("drills").join(format!("{name}.toml")),
        format!(
            "description = \"the {name} database, nightly\"\n[schedule]\nrto = \"5m\"\nmax_age = \"1d\"\n\
             [source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = {port}\ndatabase = \"{name}\"\nuser = \"u\"\n\
             [storage]\ntype = \"local\"\npath = \"store\"\n\
             [encryption]\nrecipients = [\"{recipient}\"]\nidentity = {{ file = \"id\" }}\n"
        ),
    )
    .unwrap();
}

/// A source that accepts connections and never says a word: a drill of it stays in its
/// dump stage until its timeouts.
fn silent_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().map_while(Result::ok) {
            held.push(s);
        }
    });
    port
}

/// Waits until `f` holds of the page's source; returns it.
async fn until(c: &Client, what: &str, f: impl Fn(&str, &str) -> bool) -> String {
    let t = Instant::now();
    loop {
        let url = c
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let src = c.source().await.unwrap_or_default();
        if f(&url, &src) {
            return src;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}; at {url}:\n{src}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Signs `user` in: from the first daemon's login page, through the provider, back to
/// the second daemon. Returns the page the browser lands on.
async fn sign_in(
    c: &Client,
    first: &str,
    second: &str,
    user: &str,
    next: &str,
) -> (String, String) {
    c.goto(&format!("{first}/login?next={next}")).await.unwrap();
    c.find(Locator::Css("#sso"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(c, "the provider's page", |_, s| {
        s.contains("Sign in to the test provider")
    })
    .await;
    c.find(Locator::Css(&format!("#login-{user}")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let src = until(c, "the way back", |u, _| u.starts_with(second)).await;
    let url = c.current_url().await.unwrap().to_string();
    (url, src)
}

async fn log_out(c: &Client) {
    c.find(Locator::Css("form.logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(c, "the login page", |u, _| u.contains("/login")).await;
}

fn screenshots() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_roles_and_layout_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("drills")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["keygen", "--output"])
        .arg(dir.join("drills/id"))
        .output()
        .unwrap();
    let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
    for d in [
        "shop",
        "billing-and-invoicing-for-the-european-subsidiaries",
    ] {
        drill_file(dir, d, 9, &recipient);
    }
    drill_file(dir, "slow", silent_server(), &recipient);
    let (_provider, issuer) = provider();
    let (p1, p2) = (free_port(), free_port());
    config(dir, "first.toml", p1, &issuer, p2);
    config(dir, "second.toml", p2, &issuer, p2);
    let env = [
        ("FIREDRILL_TEST_ADMIN_TOKEN", ADMIN),
        ("FIREDRILL_TEST_OIDC_SECRET", CLIENT_SECRET),
    ];
    let d1 = DaemonProc::start(&dir.join("first.toml"), &env);
    let d2 = DaemonProc::start(&dir.join("second.toml"), &env);
    let (first, second) = (d1.base.clone(), d2.base.clone());
    assert_ne!(first, second);
    let (_driver, wd_port) = chromedriver();
    let c = browser(wd_port).await;

    // An operator: the login starts on the first daemon, ends on the second (the state
    // is in the shared catalog), and lands where it was going.
    let (url, page) = sign_in(&c, &first, &second, "alice", "/drills/shop").await;
    assert_eq!(url, format!("{second}/drills/shop"), "{page}");
    assert!(page.contains("sso:alice@example.test (operator)"), "{page}");
    assert!(c.title().await.unwrap().contains("drill shop"));
    // Runs the drill from the page.
    c.find(Locator::Css("#run-now"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let page = until(&c, "the run's page", |u, _| u.contains("/runs/")).await;
    let run_id = c
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/runs/")
        .to_string();
    assert!(page.contains("started by"), "{page}");
    // It ends (the source is down): the page shows its end, its title the status.
    let page = until(&c, "the run's end", |_, s| {
        s.contains("sso:alice@example.test") && s.contains("Stages") && !s.contains("live-stage")
    })
    .await;
    assert!(page.contains(&run_id));
    // The live stage's stream, as the page's script reads it.
    let cookies = c.get_all_cookies().await.unwrap();
    let cookie_header: String = cookies
        .iter()
        .map(|k| format!("{}={}", k.name(), k.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{first}/runs/{run_id}/live"))
        .header("cookie", &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = r.text().await.unwrap();
    assert!(events.contains("event: finished"), "{events}");
    let r = http
        .get(format!("{first}/static/live.js"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));

    // The run and the audit trail name her.
    let run: Value = http
        .get(format!("{first}/api/v1/runs/{run_id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        run["report"]["started_by"],
        serde_json::json!({"kind": "sso", "name": "alice@example.test"})
    );
    let audit: Value = http
        .get(format!("{first}/api/v1/audit"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let by_alice = |action: &str| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["actor"]["name"] == "alice@example.test"
                && e["role"] == "operator"
                && e["outcome"] == "ok"
        })
    };
    assert!(by_alice("login") && by_alice("trigger"), "{audit:#}");

    // A run in progress: its stage shows live (server-sent events into the page), and
    // when it ends elsewhere (cancelled through the API) the page follows by itself,
    // well before its 30-second fallback refresh.
    c.goto(&format!("{second}/drills/slow")).await.unwrap();
    c.find(Locator::Css("#run-now"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(&c, "the slow run's page", |u, _| u.contains("/runs/")).await;
    let slow = c
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/runs/")
        .to_string();
    let t = Instant::now();
    loop {
        let text = c
            .execute(
                "var e = document.getElementById('live-stage'); return e ? e.textContent : null;",
                vec![],
            )
            .await
            .unwrap();
        if text.as_str().is_some_and(|s| s.contains("dump")) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no live stage: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        c.find(Locator::Css("#cancel")).await.is_ok(),
        "an operator may cancel"
    );
    // A fresh load, so that its fallback refresh is 30 s away; the stream connects.
    c.goto(&format!("{second}/runs/{slow}")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = http
        .post(format!("{second}/api/v1/runs/{slow}/cancel"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let t = Instant::now();
    until(&c, "the page to follow the cancel by itself", |_, s| {
        !s.contains("id=\"live-stage\"") && s.contains("Stages")
    })
    .await;
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "the page followed only after {:?}: the fallback refresh, not the stream",
        t.elapsed()
    );
    let title = c.title().await.unwrap();
    assert!(title.starts_with("cancelled"), "{title}");

    // Layout: no horizontal overflow at phone and desktop widths, screenshots kept.
    let shots = screenshots();
    for (name, path) in [
        ("overview", "/".to_string()),
        (
            "drill",
            "/drills/billing-and-invoicing-for-the-european-subsidiaries".to_string(),
        ),
        ("run", format!("/runs/{run_id}")),
    ] {
        for width in [375u32, 1400] {
            c.set_window_size(width, 900).await.unwrap();
            c.goto(&format!("{second}{path}")).await.unwrap();
            let dims = c
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth, document.title];",
                    vec![],
                )
                .await
                .unwrap();
            let (scroll, inner) = (dims[0].as_u64().unwrap(), dims[1].as_u64().unwrap());
            let png = c.screenshot().await.unwrap();
            let file = shots.join(format!("{name}-{width}.png"));
            std::fs::write(&file, &png).unwrap();
            eprintln!(
                "{name} at {width}: scrollWidth {scroll}, innerWidth {inner}, title {:?}; {}",
                dims[2],
                file.display()
            );
            assert!(
                scroll <= inner,
                "{name} overflows at {width} px: scrollWidth {scroll} > innerWidth {inner} (see {})",
                file.display()
            );
            assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"));
        }
    }
    c.set_window_size(1400, 900).await.unwrap();
    log_out(&c).await;

    // A viewer: sees the drill, no "Run now"; a post of one anyway is refused.
    let (_, page) = sign_in(&c, &first, &second, "vic", "/drills/shop").await;
    assert!(
        page.contains("sso:vic@example.test (viewer)") && !page.contains("id=\"run-now\""),
        "{page}"
    );
    let cookies = c.get_all_cookies().await.unwrap();
    let csrf = cookies
        .iter()
        .find(|k| k.name() == "firedrill_session")
        .map(|k| {
            use hmac::Mac as _;
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(k.value().as_bytes()).unwrap();
            m.update(b"firedrill dashboard csrf v1");
            hex::encode(m.finalize().into_bytes())
        })
        .expect("a session cookie");
    let cookie_header: String = cookies
        .iter()
        .map(|k| format!("{}={}", k.name(), k.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let r = http
        .post(format!("{second}/drills/shop/run"))
        .header("cookie", &cookie_header)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("needs the operator role"));
    log_out(&c).await;

    // A callback that did not start in this browser (a link someone sends) is refused.
    let r = http
        .get(format!("{second}/oidc/callback?code=abc&state=def"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("not started in this browser"));

    // Turned away: no mapped role, a token for another audience, an expired token.
    for (user, why) in [
        ("nobody", "has no firedrill role"),
        ("mallory", "wrong audience"),
        ("old", "expired"),
    ] {
        let (url, page) = sign_in(&c, &first, &second, user, "/").await;
        assert!(url.contains("/oidc/callback"), "{url}");
        assert!(
            page.contains("Single sign-on refused") && page.contains(why),
            "{user}: {page}"
        );
        assert!(
            !c.get_all_cookies()
                .await
                .unwrap()
                .iter()
                .any(|k| k.name() == "firedrill_session"),
            "{user} got a session"
        );
    }
    let audit: Value = http
        .get(format!("{first}/api/v1/audit"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login_failed")
        .collect();
    assert_eq!(
        failed.len(),
        4,
        "the stray callback and three users: {audit:#}"
    );
    assert!(failed
        .iter()
        .any(|e| e["actor"]["name"] == "nobody@example.test"));
    c.close().await.unwrap();
    drop((d1, d2));
}
