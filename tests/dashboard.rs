//! The dashboard end to end: the daemon binary serves a catalog filled with synthetic runs
//! (no database, no sandbox), the login and its cookie are checked over HTTP, and headless
//! Chromium loads the pages with JavaScript's console and the Content-Security-Policy
//! watching. The screenshots are kept in `target/dashboard-screenshots/`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use firedrill::assertion::AssertionResult;
use firedrill::catalog::{ArtifactRecord, Catalog, SqliteCatalog, Verified};
use firedrill::fingerprint::Mismatch;
use firedrill::report::{ArtifactInfo, ErrorReport, Outcome, StageReport};
use firedrill::{RunReport, Stage, Verdict};

use support::daemon::DaemonProc;

const TOKEN: &str = "dashboard-token-7c2e91";
const NASTY: &str = "<script>alert(\"pwned\")</script> & 'x'";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The daemon of `dir`'s config, on the port it picked.
async fn start_daemon(dir: &Path) -> DaemonProc {
    DaemonProc::start(
        &dir.join("firedrill.toml"),
        &[("FIREDRILL_TEST_DASHBOARD_TOKEN", TOKEN)],
    )
}

fn drill_file(dir: &Path, name: &str, extra: &str) {
    std::fs::write(
        dir.join("drills").join(format!("{name}.toml")),
        format!(
            "{extra}\n[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 9\ndatabase = \"{name}\"\nuser = \"u\"\n\
             [storage]\ntype = \"local\"\npath = \"store\"\n\
             [encryption]\nrecipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\nidentity = {{ file = \"id\" }}\n"
        ),
    )
    .unwrap();
}

/// The daemon's directory: main config, four drills, a catalog with their history.
async fn setup(dir: &Path, public: bool) -> Ids {
    std::fs::create_dir_all(dir.join("drills")).unwrap();
    std::fs::write(
        dir.join("firedrill.toml"),
        format!(
            "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\n\
             token = {{ env = \"FIREDRILL_TEST_DASHBOARD_TOKEN\" }}\ndashboard_public = {public}\n"
        ),
    )
    .unwrap();
    // A schedule that fires once a year: shown, never due while the test runs.
    drill_file(
        dir,
        "shop",
        "description = \"Nightly drill of the shop database\"\n[schedule]\ncron = \"0 3 1 1 *\"\nmax_age = \"26h\"\nrto = \"10m\"",
    );
    drill_file(
        dir,
        "billing",
        &format!(
            "description = {:?}\n[schedule]\nmax_age = \"2d\"\nrto = \"5m\"",
            format!("Billing {NASTY}")
        ),
    );
    drill_file(
        dir,
        "ledger",
        "description = \"Ledger: passes, but too old and too slow\"\n[schedule]\nmax_age = \"1d\"\nrto = \"30s\"",
    );
    drill_file(dir, "archive", "description = \"Never run yet\"");
    fill_catalog(&dir.join("catalog.db")).await
}

/// Run ids worth opening.
struct Ids {
    shop_passed: String,
    billing_failed: String,
}

fn stage(stage: Stage, outcome: Outcome, ms: u64, bytes: Option<u64>) -> StageReport {
    StageReport {
        stage,
        outcome,
        duration_ms: ms,
        timeout_ms: 600_000,
        bytes,
        attempts: 1,
        error: None,
        notes: vec![],
    }
}

fn run_id(at: jiff::Timestamp, n: u32) -> String {
    format!("{}-{n:06x}", at.strftime("%Y%m%dT%H%M%SZ"))
}

/// A passing run: recovery of `restore_ms` plus a fixed provision and verify.
fn passing(drill: &str, at: jiff::Timestamp, n: u32, restore_ms: u64, plain: u64) -> RunReport {
    let id = run_id(at, n);
    let enc = plain / 6;
    RunReport {
        stages: vec![
            stage(
                Stage::Dump,
                Outcome::Passed,
                3_000 + plain / 4_000,
                Some(plain),
            ),
            stage(
                Stage::Encrypt,
                Outcome::Passed,
                3_100 + plain / 4_000,
                Some(enc),
            ),
            stage(
                Stage::Upload,
                Outcome::Passed,
                3_300 + plain / 4_000,
                Some(enc),
            ),
            stage(Stage::Provision, Outcome::Passed, 1_700, None),
            stage(Stage::Restore, Outcome::Passed, restore_ms, Some(enc)),
            stage(Stage::Verify, Outcome::Passed, 900, None),
            stage(Stage::Teardown, Outcome::Passed, 150, None),
        ],
        artifact: Some(ArtifactInfo {
            location: format!("{drill}/{id}/artifact.dump.zst.age"),
            manifest: format!("{drill}/{id}/manifest.json"),
            sha256: "ab".repeat(32),
            plain_bytes: plain,
            compressed_bytes: enc,
            encrypted_bytes: enc,
        }),
        source_version: Some("PostgreSQL 16.4".into()),
        dump_tool: Some("pg_dump 16.4".into()),
        sandbox_image: Some("firedrill-sandbox-postgres:16".into()),
        tables: Some(3),
        rows: Some(62_000),
        assertions: vec![AssertionResult {
            name: "orders were seeded".into(),
            expected: ">= 50000".into(),
            actual: Some("50000".into()),
            passed: true,
            error: None,
            guard: false,
        }],
        finished_at: at
            .checked_add(jiff::SignedDuration::from_millis(
                (11_000 + restore_ms + plain / 4_000) as i64,
            ))
            .unwrap(),
        ..RunReport::empty(drill, &id, at)
    }
}

fn artifact_of(r: &RunReport) -> ArtifactRecord {
    let a = r.artifact.as_ref().unwrap();
    ArtifactRecord {
        drill: r.drill.clone(),
        run_id: r.run_id.clone(),
        created_at: r.started_at,
        engine: firedrill::engine::Engine::Postgres,
        plain_bytes: a.plain_bytes,
        encrypted_bytes: a.encrypted_bytes,
        sha256: a.sha256.clone(),
        location: a.location.clone(),
        manifest_key: a.manifest.clone(),
        verified: Verified::Never,
        verified_at: None,
    }
}

async fn record(c: &SqliteCatalog, r: &RunReport) {
    if r.artifact.is_some() {
        c.put_artifact(&artifact_of(r)).await.unwrap();
    }
    c.run_finished(r, r.artifact.as_ref().map(|_| r.run_id.as_str()))
        .await
        .unwrap();
}

async fn fill_catalog(path: &Path) -> Ids {
    let c = SqliteCatalog::open(path).unwrap();
    let now = jiff::Timestamp::now();
    let ago = |h: i64| {
        now.checked_sub(jiff::SignedDuration::from_hours(h))
            .unwrap()
    };

    // shop: a week of nightly passes, growing, recovery time wandering under the target.
    let mut shop_passed = String::new();
    for (i, restore) in [4_200u64, 5_100, 3_900, 6_800, 5_500, 7_400, 6_100, 5_800]
        .into_iter()
        .enumerate()
    {
        let r = passing(
            "shop",
            ago(2 + 24 * (7 - i as i64)),
            i as u32,
            restore,
            (40 + 3 * i as u64) << 20,
        );
        record(&c, &r).await;
        shop_passed = r.run_id.clone();
    }

    // billing: passed yesterday, failed verification an hour ago (hostile strings in it).
    record(&c, &passing("billing", ago(26), 1, 9_000, 12 << 20)).await;
    let mut failed = passing("billing", ago(1), 2, 8_000, 12 << 20);
    failed.verdict = Verdict::Failed;
    failed.exit_code = 1;
    failed.failed_stage = Some(Stage::Verify);
    failed.stages[5].outcome = Outcome::Failed;
    failed.assertions = vec![
        AssertionResult {
            name: "invoices were seeded".into(),
            expected: ">= 1000".into(),
            actual: Some("1000".into()),
            passed: true,
            error: None,
            guard: false,
        },
        AssertionResult {
            name: format!("no orphan payments {NASTY}"),
            expected: "= 0".into(),
            actual: Some("17".into()),
            passed: false,
            error: None,
            guard: false,
        },
    ];
    failed.fingerprint_mismatches = vec![Mismatch::RowCount {
        table: "public.payments".into(),
        expected: 1200,
        actual: 1183,
    }];
    failed.error = Some(ErrorReport {
        kind: firedrill::ErrorKind::Verification,
        message: format!("1 assertion failed and 1 table differs {NASTY}"),
        hint: Some(
            "compare the source's payments table with the dump; was it written during the dump?"
                .into(),
        ),
        retryable: false,
        stderr_tail: Some(format!("pg_restore: warning {NASTY}")),
    });
    record(&c, &failed).await;

    // ledger: passed three days ago, and slowly.
    record(&c, &passing("ledger", ago(74), 1, 44_000, 3 << 20)).await;

    Ids {
        shop_passed,
        billing_failed: failed.run_id,
    }
}

/// Headless Chromium, or a failure saying how to get it.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("FIREDRILL_TEST_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "headless Chromium is needed for the dashboard tests and was not found on PATH \
         (Debian package `chromium`): run the tests with tests/run, which installs it, or set \
         FIREDRILL_TEST_CHROMIUM to a Chromium binary"
    );
}

fn screenshot_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs Chromium headless on `url` with `mode` (`--screenshot=…` or `--dump-dom`);
/// returns stdout and stderr (its log, where console messages and CSP reports go).
fn browse(url: &str, mode: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(mode)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .expect("start chromium");
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {url} within 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(out.path()).unwrap_or_default();
    let stderr = std::fs::read_to_string(err.path()).unwrap_or_default();
    assert!(
        status.success(),
        "chromium {mode} {url}: {status}\n{stderr}"
    );
    (stdout, stderr)
}

/// Console messages (a script error, a CSP violation, a failed load) in Chromium's log.
fn console_problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Content Security Policy")
                || l.contains("Refused to")
        })
        .collect()
}

/// Screenshots `url` into `name`, checks it is a real picture of the window and that the
/// page logged nothing; returns the rendered DOM.
fn look_at(url: &str, name: &str) -> String {
    let file = screenshot_dir().join(name);
    let _ = std::fs::remove_file(&file);
    let (_, log) = browse(url, &format!("--screenshot={}", file.display()));
    let problems = console_problems(&log);
    assert!(
        problems.is_empty(),
        "{url} logged:\n{}",
        problems.join("\n")
    );
    let png =
        std::fs::read(&file).unwrap_or_else(|e| panic!("no screenshot {}: {e}", file.display()));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name} is not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 900), "{name}");
    // A blank or near-blank window compresses to a few KiB; a page with tables, text and
    // charts does not.
    assert!(
        png.len() > 12_000,
        "{name} is only {} bytes: a blank page?",
        png.len()
    );

    let (dom, log) = browse(url, "--dump-dom");
    let problems = console_problems(&log);
    assert!(
        problems.is_empty(),
        "{url} logged:\n{}",
        problems.join("\n")
    );
    assert!(dom.contains("</html>"), "{url}: no DOM:\n{dom}\n{log}");
    // Nothing a drill or a tool wrote became markup.
    assert!(!dom.to_lowercase().contains("<script"), "{url}:\n{dom}");
    dom
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_render_in_headless_chromium() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let ids = setup(dir.path(), true).await;
    let d = start_daemon(dir.path()).await;

    // Public pages, a private API.
    let r = http().get(format!("{}/", d.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    // One script, of this origin (a run's live stage); none inline, none from elsewhere.
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe-eval")
            && !csp.contains("script-src 'self' 'unsafe-inline'"),
        "{csp}"
    );
    let r = http()
        .get(format!("{}/api/v1/drills", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "dashboard_public does not open the API");
    let r = http()
        .get(format!("{}/drills/nope", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let base = d.base.clone();
    let shop_run = ids.shop_passed.clone();
    let failed_run = ids.billing_failed.clone();
    let doms = tokio::task::spawn_blocking(move || {
        eprintln!("chromium: {}", chromium.display());
        [
            look_at(&format!("{base}/"), "index.png"),
            look_at(&format!("{base}/drills/shop"), "drill-shop.png"),
            look_at(&format!("{base}/drills/billing"), "drill-billing.png"),
            look_at(&format!("{base}/runs/{failed_run}"), "run-failed.png"),
            look_at(&format!("{base}/runs/{shop_run}"), "run-passed.png"),
        ]
    })
    .await
    .unwrap();
    let [index, shop, billing, failed, passed] = doms;

    // The overview: every drill, coloured by state, linked.
    for name in ["shop", "billing", "ledger", "archive"] {
        assert!(
            index.contains(&format!("href=\"/drills/{name}\"")),
            "{name}:\n{index}"
        );
    }
    assert!(
        index.contains("row-ok") && index.contains("row-failing"),
        "{index}"
    );
    assert!(
        index.contains("row-late") && index.contains("row-unknown"),
        "{index}"
    );
    assert!(index.contains("1 ok, 1 late, 1 failing"), "{index}");
    assert!(
        index.contains("Billing &lt;script&gt;alert(\"pwned\")&lt;/script&gt; &amp; 'x'"),
        "{index}"
    );
    assert!(index.contains(&format!(
        "href=\"/runs/{failed_run}\"",
        failed_run = ids.billing_failed
    )));

    // A drill: its history, linked, and two charts.
    assert!(
        shop.contains("History") && shop.matches("class=\"chart\"").count() == 2,
        "{shop}"
    );
    assert_eq!(shop.matches("href=\"/runs/").count(), 8, "{shop}");
    assert!(shop.contains("≤ 10m00s"), "the rto target:\n{shop}");
    assert!(
        billing.contains("FAILED") && billing.contains("verify"),
        "{billing}"
    );

    // A run: the timeline, the failed assertion, the mismatch, the error and its hint.
    assert!(failed.contains("stage-timeline"), "{failed}");
    assert!(
        failed.contains("no orphan payments &lt;script&gt;"),
        "{failed}"
    );
    assert!(failed.contains("public.payments"), "{failed}");
    assert!(
        failed.contains("was it written during the dump?"),
        "{failed}"
    );
    assert!(
        passed.contains("the backup restored and matches the source"),
        "{passed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_login_sets_a_signed_cookie_and_the_api_keeps_its_token() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), false).await;
    let d = start_daemon(dir.path()).await;
    let c = http();
    let url = |p: &str| format!("{}{p}", d.base);

    // Browsers without a session go to the form, and come back where they were going.
    let r = c.get(url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let r = c.get(url("/drills/shop")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/drills/shop");
    // Programs keep their 401s.
    let r = c.get(url("/api/v1/drills")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(url("/")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(url("/")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let form = |token: &str, next: &str| {
        c.post(url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&next={next}"))
    };
    let r = form("nope", "%2Fdrills%2Fshop").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("not a token this daemon accepts"));
    // The token followed by NULs is not the token.
    let r = form(&format!("{TOKEN}{}", "%00".repeat(256)), "")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Another origin is never where a login goes.
    let r = form(TOKEN, "%2F%2Fevil.example%2F").send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let r = form(TOKEN, "%2Fdrills%2Fshop").send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/drills/shop");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    // Lax: a link to a run followed from Slack, PagerDuty or an e-mail arrives logged in.
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    assert!(!set.contains(TOKEN), "the cookie holds the token: {set}");
    let session = set.split(';').next().unwrap().to_string();

    let r = c
        .get(url("/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("href=\"/drills/shop\"") && body.contains("log out"),
        "{body}"
    );
    // The cookie opens the pages, not the API.
    let r = c
        .get(url("/api/v1/drills"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A forged or altered cookie is no session.
    let mut forged = session.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let r = c
        .get(url("/"))
        .header("cookie", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    let r = c
        .post(url("/logout"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // The logout holds on the server: the old cookie, sent again, is no session.
    let r = c
        .get(url("/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "a logged-out cookie still opens the dashboard"
    );

    // In a browser with no session, the dashboard is the login form.
    let base = d.base.clone();
    let dom = tokio::task::spawn_blocking(move || {
        eprintln!("chromium: {}", chromium.display());
        look_at(&format!("{base}/drills/shop"), "login.png")
    })
    .await
    .unwrap();
    assert!(
        dom.contains("action=\"/login\"") && dom.contains("type=\"password\""),
        "{dom}"
    );
    assert!(dom.contains("value=\"/drills/shop\""), "{dom}");
}

/// A client at `local` (another loopback address is another client).
fn http_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_shared_and_revoked_through_the_catalog_and_guessing_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), false).await;
    // Two daemons on one catalog, as a cluster would be.
    let d1 = start_daemon(dir.path()).await;
    let d2 = start_daemon(dir.path()).await;
    let c = http();
    let r = c
        .post(format!("{}/login", d1.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}&next=%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(!set.contains("Secure"), "plain HTTP, no proxy: {set}");
    let session = set.split(';').next().unwrap().to_string();
    // The catalog holds a hash of the cookie, never the cookie.
    let db = std::fs::read(dir.path().join("catalog.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("catalog.db-wal")).unwrap_or_default();
    let value = session.split_once('=').unwrap().1.as_bytes();
    for (name, bytes) in [("catalog.db", &db), ("catalog.db-wal", &wal)] {
        assert!(
            !bytes.windows(value.len()).any(|w| w == value),
            "{name} holds the session cookie"
        );
    }
    for d in [&d1, &d2] {
        let r = c
            .get(format!("{}/", d.base))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", d.base);
    }
    // Logged out at the second daemon: out at the first too.
    let r = c
        .post(format!("{}/logout", d2.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = c
        .get(format!("{}/", d1.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "the session outlived its logout on another daemon"
    );

    // Guessing: ten wrong tokens from one address, then that address is refused (even
    // with the right token) while another address is served; the login form counts too.
    let guesser = http_from("127.0.0.1");
    let api = format!("{}/api/v1/drills", d1.base);
    for i in 0..10 {
        let r = guesser
            .get(&api)
            .header("authorization", format!("Bearer guess-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "guess {i}");
    }
    let r = guesser.get(&api).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "retry-after {wait}");
    let r = guesser
        .post(format!("{}/login", d1.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}&next=%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the login form is throttled too");
    // The scheme in any case, from another client.
    let r = http_from("127.0.0.2")
        .get(&api)
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The other daemon keeps its own count: the guesser is not refused there.
    let r = guesser
        .get(format!("{}/api/v1/drills", d2.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn a_daemon_without_a_strong_token_refuses_to_start_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("drills")).unwrap();
    let open = dir.path().join("open.toml");
    std::fs::write(
        &open,
        "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let with_token = dir.path().join("token.toml");
    std::fs::write(
        &with_token,
        "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\n\n[daemon]\nlisten = \"127.0.0.1:0\"\n\
         token = { env = \"FIREDRILL_TEST_WEAK_TOKEN\" }\n",
    )
    .unwrap();
    let refused = |config: &Path, token: Option<&str>, expect: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_firedrill"));
        cmd.arg("--config").arg(config).arg("daemon");
        cmd.env_remove("FIREDRILL_TEST_WEAK_TOKEN");
        if let Some(t) = token {
            cmd.env("FIREDRILL_TEST_WEAK_TOKEN", t);
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{token:?}: {stderr}");
        assert!(
            stderr.contains("refusing to start") && stderr.contains(expect),
            "{token:?}: {stderr}"
        );
        assert!(stderr.contains("--insecure-no-auth"), "{stderr}");
        // (The placeholder itself is named in the message, as an example.)
        if let Some(t) = token.filter(|t| t.len() >= 8 && *t != "REPLACE_ME") {
            assert!(!stderr.contains(t), "the token is echoed: {stderr}");
        }
        assert!(!stderr.contains("API on"), "it listened: {stderr}");
    };
    refused(&open, None, "no [daemon] token");
    refused(&with_token, Some("REPLACE_ME"), "placeholder");
    refused(&with_token, Some("changeme-please"), "placeholder");
    refused(&with_token, Some("x"), "at least 16");
    refused(&with_token, Some("0123abcd"), "at least 16");
    // Told so, it serves without a token, and says so.
    let d = DaemonProc::start_with_args(&open, &["--insecure-no-auth"], &[]);
    assert!(d.log.lock().unwrap().contains("--insecure-no-auth"));
}
