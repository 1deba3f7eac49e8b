//! Teams: named API tokens with roles (viewer, operator, admin) and drill limits, over the
//! API and the dashboard; the audit trail (who, what, from where, how it ended) through
//! the API and `firedrill audit`; runs that say who started them; token rotation without
//! a restart; and the evidence bundle an auditor verifies offline. The daemon binary runs
//! for real; its drills point at a source nothing listens on, so every run ends at its
//! dump, quickly, without Docker.

mod support;

use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::daemon::DaemonProc;

const ADMIN: &str = "teams-admin-token-4e8d1c9a7b";

fn firedrill(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firedrill"));
    c.current_dir(dir)
        .env("FIREDRILL_CONFIG", dir.join("firedrill.toml"))
        .env("FIREDRILL_TEST_ADMIN_TOKEN", ADMIN)
        .env("USER", "auditor");
    c
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A client at `local` (another loopback address is another client).
fn http_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

fn drill_file(dir: &Path, name: &str) {
    std::fs::write(
        dir.join("drills").join(format!("{name}.toml")),
        format!(
            "description = \"{name}\"\n[schedule]\nrto = \"5m\"\n\
             [source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\nport = 9\ndatabase = \"{name}\"\nuser = \"u\"\n\
             [storage]\ntype = \"local\"\npath = \"store\"\n\
             [encryption]\nrecipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\nidentity = {{ file = \"id\" }}\n"
        ),
    )
    .unwrap();
}

/// The daemon's directory: a main config with an admin token, a tokens file, a signing
/// key, proxies trusted at 127.0.0.2; drills shop, billing and payroll.
fn setup(dir: &Path, hook: &str) {
    std::fs::create_dir_all(dir.join("drills")).unwrap();
    std::fs::write(
        dir.join("firedrill.toml"),
        "catalog = \"catalog.db\"\ndrills_dir = \"drills\"\nreports_dir = \"reports\"\n\n\
         [evidence]\nsigning_key = { file = \"signing.pem\" }\n\n\
         [daemon]\nlisten = \"127.0.0.1:0\"\ntoken = { env = \"FIREDRILL_TEST_ADMIN_TOKEN\" }\n\
         tokens_file = \"tokens.toml\"\ntrusted_proxies = [\"127.0.0.2\"]\n\n\
         [notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"HOOK\"\n"
            .replace("HOOK", hook),
    )
    .unwrap();
    for d in ["shop", "billing", "payroll"] {
        drill_file(dir, d);
    }
    run_ok(firedrill(dir).args(["evidence", "keygen", "--output", "signing.pem"]));
}

/// Creates a named token with the CLI; returns it.
fn token(dir: &Path, name: &str, role: &str, drills: &[&str]) -> String {
    let mut c = firedrill(dir);
    c.args(["token", "create", name, "--role", role, "--json"]);
    for d in drills {
        c.args(["--drill", d]);
    }
    let v: Value = serde_json::from_str(&run_ok(&mut c)).unwrap();
    v["token"].as_str().unwrap().to_string()
}

async fn status(r: reqwest::RequestBuilder) -> u16 {
    r.send().await.unwrap().status().as_u16()
}

async fn json(r: reqwest::RequestBuilder) -> Value {
    let res = r.send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap()
}

/// Waits for run `id` to finish; returns its report.
async fn finished(base: &str, token: &str, id: &str) -> Value {
    let t = std::time::Instant::now();
    loop {
        let v = json(
            http()
                .get(format!("{base}/api/v1/runs/{id}"))
                .bearer_auth(token),
        )
        .await;
        if !v["report"].is_null() {
            return v["report"].clone();
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "run {id} did not finish: {v}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A form post from a logged-in browser: its cookies, and the CSRF value the page gave.
async fn browser_post(
    base: &str,
    path: &str,
    cookies: &str,
    csrf: Option<&str>,
) -> reqwest::Response {
    let body = csrf.map(|c| format!("csrf={c}")).unwrap_or_default();
    http()
        .post(format!("{base}{path}"))
        .header("cookie", cookies)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Logs in on the dashboard's form with `token`; returns the cookies a browser would
/// then send (the session and the CSRF cookie) and the CSRF value of `page`'s forms.
async fn dashboard_login(base: &str, token: &str, page: &str) -> (String, String, String) {
    let r = http()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&next=%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("SameSite=Lax") && set.contains("HttpOnly"),
        "{set}"
    );
    let session = set.split(';').next().unwrap().to_string();
    let r = http()
        .get(format!("{base}{page}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csrf_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("firedrill_csrf="))
        .expect("the dashboard sets a CSRF cookie");
    assert!(csrf_cookie.contains("SameSite=Strict"), "{csrf_cookie}");
    let cookie = csrf_cookie.split(';').next().unwrap().to_string();
    let body = r.text().await.unwrap();
    // Logged in, forms carry a value derived from the session (what the page puts in
    // them; a viewer's page has none, so it is derived here as the daemon does).
    let value = session.split_once('=').unwrap().1;
    let csrf = session_csrf(value);
    (format!("{session}; {cookie}"), csrf, body)
}

fn session_csrf(session: &str) -> String {
    use hmac::Mac as _;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(session.as_bytes()).unwrap();
    m.update(b"firedrill dashboard csrf v1");
    hex::encode(m.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_tokens_audit_and_evidence_hold_over_the_api_the_dashboard_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (hook, pages) = support::daemon::receiver_on(support::daemon::reserve_port()).await;
    setup(dir, &hook);
    let viewer = token(dir, "ci-viewer", "viewer", &[]);
    let operator = token(dir, "ci-operator", "operator", &[]);
    let admin = token(dir, "ops-admin", "admin", &[]);
    let shop_only = token(dir, "shop-team", "operator", &["sho?"]);
    let tokens_text = std::fs::read_to_string(dir.join("tokens.toml")).unwrap();
    for t in [&viewer, &operator, &admin, &shop_only] {
        assert!(
            !tokens_text.contains(t.as_str()),
            "the file keeps hashes only"
        );
    }
    let d = DaemonProc::start(
        &dir.join("firedrill.toml"),
        &[("FIREDRILL_TEST_ADMIN_TOKEN", ADMIN)],
    );
    let base = d.base.clone();
    let url = |p: &str| format!("{base}{p}");
    let c = http();

    // Who each token is.
    let me = json(c.get(url("/api/v1/whoami")).bearer_auth(&shop_only)).await;
    assert_eq!(me["actor"]["name"], "shop-team");
    assert_eq!(me["role"], "operator");
    assert_eq!(me["drills"], serde_json::json!(["sho?"]));
    let me = json(c.get(url("/api/v1/whoami")).bearer_auth(ADMIN)).await;
    assert_eq!(
        (me["actor"]["name"].as_str(), me["role"].as_str()),
        (Some("daemon"), Some("admin"))
    );
    assert_eq!(
        status(c.get(url("/api/v1/whoami")).bearer_auth("fdt_not-a-token")).await,
        401
    );

    // Reading: everyone; a drill-limited token sees its drills only.
    for t in [&viewer, &operator, &admin] {
        let list = json(c.get(url("/api/v1/drills")).bearer_auth(t)).await;
        assert_eq!(list["drills"].as_array().unwrap().len(), 3, "{list}");
    }
    let list = json(c.get(url("/api/v1/drills")).bearer_auth(&shop_only)).await;
    let names: Vec<&str> = list["drills"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["shop"]);
    assert_eq!(
        status(
            c.get(url("/api/v1/drills/billing/runs"))
                .bearer_auth(&shop_only)
        )
        .await,
        404
    );
    assert_eq!(
        status(
            c.get(url("/api/v1/drills/shop/runs"))
                .bearer_auth(&shop_only)
        )
        .await,
        200
    );
    assert_eq!(
        status(c.get(url("/api/v1/cluster")).bearer_auth(&shop_only)).await,
        403
    );

    // Triggering: operators and admins; viewers are refused; a limited token only its own.
    let start = |t: &str, drill: &str| {
        c.post(url(&format!("/api/v1/drills/{drill}/runs")))
            .bearer_auth(t.to_string())
    };
    assert_eq!(status(start(&viewer, "shop")).await, 403);
    let refused = c
        .post(url("/api/v1/drills/shop/runs"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        refused.contains("token:ci-viewer (viewer) may not trigger")
            && refused.contains("operator role"),
        "{refused}"
    );
    assert_eq!(
        status(start(&shop_only, "billing")).await,
        404,
        "another drill does not exist for it"
    );
    let r = start(&operator, "billing").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let billing_run = r.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = start(&shop_only, "shop").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let shop_run = r.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A limited token cannot see the other drill's run, nor follow it.
    assert_eq!(
        status(
            c.get(url(&format!("/api/v1/runs/{billing_run}")))
                .bearer_auth(&shop_only)
        )
        .await,
        404
    );
    assert_eq!(
        status(
            c.get(url(&format!("/api/v1/runs/{billing_run}/events")))
                .bearer_auth(&shop_only)
        )
        .await,
        404
    );
    // Cancelling: not a viewer.
    assert_eq!(
        status(
            c.post(url(&format!("/api/v1/runs/{shop_run}/cancel")))
                .bearer_auth(&viewer)
        )
        .await,
        403
    );

    // Each run names who started it, in its (signed) report.
    let report = finished(&base, &admin, &billing_run).await;
    assert_eq!(
        report["started_by"],
        serde_json::json!({"kind": "token", "name": "ci-operator"})
    );
    assert!(report["signature"].is_object(), "{report}");
    let report = finished(&base, &admin, &shop_run).await;
    assert_eq!(report["started_by"]["name"], "shop-team");
    // Its history page says so too.
    let page = json(
        c.get(url("/api/v1/drills/billing/runs?limit=1"))
            .bearer_auth(&viewer),
    )
    .await;
    assert_eq!(page["runs"][0]["run_id"], billing_run.as_str());
    assert_eq!(page["runs"][0]["started_by"]["name"], "ci-operator");

    // Admin actions: reload, accept, prune; refused to viewers and operators.
    for t in [&viewer, &operator] {
        assert_eq!(
            status(c.post(url("/api/v1/reload")).bearer_auth(t)).await,
            403
        );
        assert_eq!(
            status(
                c.post(url(&format!("/api/v1/runs/{billing_run}/accept")))
                    .bearer_auth(t)
            )
            .await,
            403
        );
        assert_eq!(
            status(
                c.post(url("/api/v1/drills/shop/prune?dry_run=true"))
                    .bearer_auth(t)
            )
            .await,
            403
        );
    }
    assert_eq!(
        status(c.post(url("/api/v1/reload")).bearer_auth(&admin)).await,
        200
    );
    // Allowed, and refused for its own reason: this run failed its dump, not its guards.
    let r = c
        .post(url(&format!("/api/v1/runs/{billing_run}/accept")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("anomaly guards"));
    assert_eq!(
        status(
            c.post(url("/api/v1/drills/shop/prune?dry_run=true"))
                .bearer_auth(&admin)
        )
        .await,
        200
    );
    assert_eq!(
        status(c.post(url("/api/v1/drills/shop/prune")).bearer_auth(&admin)).await,
        200
    );

    // A test page: operators and admins.
    assert_eq!(
        status(c.post(url("/api/v1/notify/test")).bearer_auth(&viewer)).await,
        403
    );
    assert_eq!(
        status(
            c.post(url("/api/v1/notify/test?channel=nope"))
                .bearer_auth(&operator)
        )
        .await,
        404
    );
    assert_eq!(
        status(c.post(url("/api/v1/notify/test")).bearer_auth(&shop_only)).await,
        403,
        "a limited token pages through no one's channels"
    );
    let sent = json(c.post(url("/api/v1/notify/test")).bearer_auth(&operator)).await;
    assert_eq!(
        sent,
        serde_json::json!([{"channel": "hook", "delivered": true}])
    );
    assert!(
        pages.lock().unwrap().iter().any(|p| p["kind"] == "test"),
        "{:?}",
        pages.lock().unwrap()
    );

    // The dashboard, by role: the viewer sees no "Run now" and is refused if it posts
    // one anyway; the operator runs a drill from the page; a form without the CSRF value
    // is refused whoever sends it.
    let (v_cookies, v_csrf, v_page) = dashboard_login(&base, &viewer, "/drills/payroll").await;
    assert!(!v_page.contains("id=\"run-now\""), "{v_page}");
    assert!(v_page.contains("token:ci-viewer (viewer)"), "{v_page}");
    let r = browser_post(&base, "/drills/payroll/run", &v_cookies, Some(&v_csrf)).await;
    assert_eq!(r.status(), 403);
    let (o_cookies, o_csrf, o_page) = dashboard_login(&base, &operator, "/drills/payroll").await;
    assert!(
        o_page.contains("id=\"run-now\"") && o_page.contains(&format!("value=\"{o_csrf}\"")),
        "{o_page}"
    );
    let r = browser_post(&base, "/drills/payroll/run", &o_cookies, None).await;
    assert_eq!(r.status(), 403, "no CSRF value");
    let r = browser_post(
        &base,
        "/drills/payroll/run",
        &o_cookies,
        Some("0".repeat(48).as_str()),
    )
    .await;
    assert_eq!(r.status(), 403, "a wrong CSRF value");
    let r = browser_post(&base, "/drills/payroll/run", &o_cookies, Some(&o_csrf)).await;
    assert_eq!(r.status(), 303);
    let payroll_run = r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/runs/")
        .to_string();
    let report = finished(&base, &admin, &payroll_run).await;
    assert_eq!(report["started_by"]["name"], "ci-operator");
    // A limited login sees its drills only.
    let (s_cookies, _, s_page) = dashboard_login(&base, &shop_only, "/").await;
    assert!(
        s_page.contains("href=\"/drills/shop\"") && !s_page.contains("href=\"/drills/billing\""),
        "{s_page}"
    );
    assert_eq!(
        http()
            .get(url("/drills/billing"))
            .header("cookie", &s_cookies)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http()
            .get(url(&format!("/runs/{billing_run}")))
            .header("cookie", &s_cookies)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // The audit's source address: X-Forwarded-For only through the trusted proxy.
    let _ = http_from("127.0.0.3")
        .post(url("/api/v1/reload"))
        .bearer_auth(&viewer)
        .header("x-forwarded-for", "198.51.100.66")
        .send()
        .await
        .unwrap();
    let _ = http_from("127.0.0.2")
        .post(url("/api/v1/reload"))
        .bearer_auth(&operator)
        .header("x-forwarded-for", "6.6.6.6, 203.0.113.9")
        .send()
        .await
        .unwrap();

    // Rotated without a restart: the old token stops, the new one works, and the
    // sessions opened with the old one end.
    let rotated = {
        let out = run_ok(firedrill(dir).args([
            "token",
            "create",
            "ci-operator",
            "--role",
            "operator",
            "--rotate",
            "--json",
        ]));
        serde_json::from_str::<Value>(&out).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        status(c.get(url("/api/v1/whoami")).bearer_auth(&operator)).await,
        401
    );
    assert_eq!(
        status(c.get(url("/api/v1/whoami")).bearer_auth(&rotated)).await,
        200
    );
    assert_eq!(
        http()
            .get(url("/"))
            .header("cookie", &o_cookies)
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    run_ok(firedrill(dir).args(["token", "revoke", "ci-viewer"]));
    assert_eq!(
        status(c.get(url("/api/v1/whoami")).bearer_auth(&viewer)).await,
        401
    );
    let listed = run_ok(firedrill(dir).args(["token", "list"]));
    assert!(
        listed.contains("ci-operator") && !listed.contains("ci-viewer"),
        "{listed}"
    );

    // The audit trail: every action with its actor, role, source and outcome.
    let audit = json(c.get(url("/api/v1/audit?limit=1000")).bearer_auth(&admin)).await;
    let entries = audit["entries"].as_array().unwrap();
    let has = |action: &str, actor: &str, outcome: &str| {
        entries.iter().any(|e| {
            e["action"] == action
                && format!(
                    "{}:{}",
                    e["actor"]["kind"].as_str().unwrap(),
                    e["actor"]["name"].as_str().unwrap_or("")
                ) == actor
                && e["outcome"] == outcome
        })
    };
    for (action, actor, outcome) in [
        ("trigger", "token:ci-viewer", "denied"),
        ("trigger", "token:ci-operator", "ok"),
        ("trigger", "token:shop-team", "ok"),
        ("cancel", "token:ci-viewer", "denied"),
        ("reload", "token:ci-operator", "denied"),
        ("reload", "token:ops-admin", "ok"),
        ("accept", "token:ops-admin", "failed"),
        ("prune", "token:ops-admin", "ok"),
        ("notify_test", "token:ci-operator", "ok"),
        ("notify_test", "token:ci-viewer", "denied"),
        ("login", "token:ci-viewer", "ok"),
        ("login", "token:ci-operator", "ok"),
        ("login_failed", "token:?", "denied"),
        ("token_created", "cli:auditor@", "ok"),
        ("token_revoked", "cli:auditor@", "ok"),
    ] {
        let found = if actor.ends_with('@') {
            entries.iter().any(|e| {
                e["action"] == action
                    && e["actor"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("auditor@")
                    && e["outcome"] == outcome
            })
        } else {
            has(action, actor, outcome)
        };
        assert!(
            found,
            "no audit entry {action} by {actor} ({outcome}) in {audit:#}"
        );
    }
    let denied_reload = |by: &str| {
        entries
            .iter()
            .find(|e| {
                e["action"] == "reload"
                    && e["actor"]["name"] == by
                    && e["outcome"] == "denied"
                    && e["source"] != "127.0.0.1"
            })
            .map(|e| e["source"].as_str().unwrap().to_string())
    };
    assert_eq!(
        denied_reload("ci-viewer").as_deref(),
        Some("127.0.0.3"),
        "an untrusted peer's X-Forwarded-For is ignored"
    );
    assert_eq!(
        denied_reload("ci-operator").as_deref(),
        Some("203.0.113.9"),
        "the trusted proxy's is believed, its last hop only"
    );
    let trigger = entries
        .iter()
        .find(|e| e["action"] == "trigger" && e["outcome"] == "ok" && e["target"] == "billing")
        .unwrap();
    assert_eq!(trigger["role"], "operator");
    assert!(
        trigger["detail"].as_str().unwrap().contains(&billing_run),
        "{trigger}"
    );
    // A limited token reads the entries about its drills only.
    let mine = json(c.get(url("/api/v1/audit")).bearer_auth(&shop_only)).await;
    assert!(
        mine["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["target"] == "shop"),
        "{mine:#}"
    );
    // The CLI reads the same trail.
    let cli: Value = serde_json::from_str(&run_ok(
        firedrill(dir).args(["audit", "--since", "1h", "--json"]),
    ))
    .unwrap();
    assert_eq!(cli.as_array().unwrap().len(), entries.len());
    let lines = run_ok(firedrill(dir).args(["audit"]));
    assert!(
        lines.contains("denied   trigger       token:ci-viewer"),
        "{lines}"
    );

    // The evidence bundle for the period verifies; one report edited inside it does not,
    // and is named.
    drop(d);
    run_ok(firedrill(dir).args([
        "evidence",
        "export",
        "--since",
        "1h",
        "--output",
        "evidence.tar",
    ]));
    let out = run_ok(firedrill(dir).args(["evidence", "verify", "evidence.tar"]));
    assert!(out.contains("intact") && out.contains("3 reports"), "{out}");
    let bundle = std::fs::read(dir.join("evidence.tar")).unwrap();
    let edited_name = format!("reports/billing/{billing_run}.json");
    let edited = rewrite(&bundle, &edited_name, |s| {
        s.replace("\"exit_code\":2", "\"exit_code\":0")
    });
    std::fs::write(dir.join("edited.tar"), edited).unwrap();
    let out = firedrill(dir)
        .args(["evidence", "verify", "edited.tar"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{edited_name} was edited")), "{err}");
    // The summary counts what happened.
    let v: Value = serde_json::from_str(&run_ok(firedrill(dir).args([
        "evidence",
        "verify",
        "evidence.tar",
        "--json",
    ])))
    .unwrap();
    let billing = v["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["drill"] == "billing")
        .unwrap();
    assert_eq!(
        (billing["runs"].as_u64(), billing["passed"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(billing["rto_target_s"].as_f64(), Some(300.0));
    assert!(v["audit_entries"].as_u64().unwrap() >= entries.len() as u64);
}

/// Rewrites one file of a tar archive, as someone with the file and a tar tool would.
fn rewrite(bundle: &[u8], path: &str, f: impl Fn(String) -> String) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(bundle);
    let mut found = false;
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut body = String::new();
        e.read_to_string(&mut body).unwrap();
        let body = if p == path {
            found = true;
            let edited = f(body.clone());
            assert_ne!(edited, body, "the edit changed nothing in {path}");
            edited
        } else {
            body
        };
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        out.append_data(&mut h, &p, body.as_bytes()).unwrap();
    }
    assert!(found, "{path} is not in the bundle");
    out.into_inner().unwrap()
}
