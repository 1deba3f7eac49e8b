//! The chat services, each in the payload its documentation gives: Microsoft Teams (a
//! Workflows webhook posting an Adaptive Card; the Office 365 connectors are retired),
//! Discord (a webhook's `content` and `embeds`), Telegram (the Bot API's `sendMessage`),
//! Mattermost (an incoming webhook's `text` and `attachments`) and Google Chat (a space's
//! incoming webhook, threaded by incident). Their URLs and tokens are credentials: read
//! from secrets and held, so that nothing prints them (see `crate::secret::hold_url`).
//!
//! Each service caps a message's size; what could run long (an error, tool output, a
//! digest of many drills) is cut to fit, and a digest names how many drills it left out.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::digest::Health;
use super::http::{client, post};
use super::{
    clip, ChatId, Digest, MattermostConfig, Notifier, Page, PageKind, Severity, TelegramConfig,
};
use crate::error::Result;
use crate::secret::Secret;

/// How a message reads at a glance: its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tone {
    Critical,
    Warning,
    Resolved,
    Info,
}

impl Tone {
    pub(super) fn of_page(p: &Page) -> Tone {
        match (p.kind, p.severity) {
            (PageKind::Resolve, _) => Tone::Resolved,
            (PageKind::Test, _) => Tone::Info,
            (PageKind::Trigger, Severity::Critical) => Tone::Critical,
            (PageKind::Trigger, Severity::Warning) => Tone::Warning,
        }
    }

    pub(super) fn of_digest(d: &Digest) -> Tone {
        match d.worst() {
            Some(h) => Tone::of_health(h),
            None => Tone::Info,
        }
    }

    fn of_health(h: Health) -> Tone {
        match h {
            Health::Failing => Tone::Critical,
            Health::ObjectiveMissed | Health::NeverRun => Tone::Warning,
            Health::Ok => Tone::Resolved,
        }
    }

    /// 24-bit RGB (Discord's embed colour).
    pub(super) fn rgb(self) -> u32 {
        match self {
            Tone::Critical => 0xD92D20,
            Tone::Warning => 0xF79009,
            Tone::Resolved => 0x12B76A,
            Tone::Info => 0x2E90FA,
        }
    }

    /// `#RRGGBB` (Mattermost's attachment colour).
    pub(super) fn hex(self) -> String {
        format!("#{:06X}", self.rgb())
    }

    /// An Adaptive Card text colour.
    fn card_color(self) -> &'static str {
        match self {
            Tone::Critical => "Attention",
            Tone::Warning => "Warning",
            Tone::Resolved => "Good",
            Tone::Info => "Accent",
        }
    }
}

/// A page's body without its title line: summary, facts, link, tool output.
fn page_body_text(page: &Page) -> String {
    let t = page.text();
    t.split_once("\n\n")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or(t)
}

// ---------------------------------------------------------------------------------------
// Microsoft Teams: Workflows webhooks take a message whose attachment is an Adaptive Card.

/// The Adaptive Card schema version of the cards (Teams renders 1.5 on desktop and web).
pub const CARD_VERSION: &str = "1.5";

/// Teams caps a message at 28 KB; a digest lists this many drills in detail.
const TEAMS_MAX_DRILLS: usize = 30;

fn card_message(body: Vec<Value>, actions: Vec<Value>, fallback: &str) -> Value {
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": fallback,
        "body": body,
    });
    if !actions.is_empty() {
        card["actions"] = json!(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn fact_set(facts: Vec<(&'static str, String)>) -> Value {
    let facts: Vec<Value> = facts
        .into_iter()
        .map(|(k, v)| json!({"title": k, "value": clip(&v, 1000)}))
        .collect();
    json!({"type": "FactSet", "facts": facts})
}

/// The Workflows webhook message for a page: an Adaptive Card with the title, the
/// summary, the facts, the tool output and a button to the report.
pub fn teams_body(page: &Page) -> Value {
    let tone = Tone::of_page(page);
    let mut body = vec![
        json!({"type": "TextBlock", "text": page.title(), "style": "heading", "size": "Large", "weight": "Bolder", "color": tone.card_color(), "wrap": true}),
        json!({"type": "TextBlock", "text": page.summary, "wrap": true}),
        fact_set(page.facts()),
    ];
    if let Some(t) = &page.stderr_tail {
        body.push(json!({"type": "TextBlock", "text": "Tool output", "weight": "Bolder", "spacing": "Medium"}));
        body.push(json!({"type": "TextBlock", "text": clip(t, 4000), "fontType": "Monospace", "wrap": true, "isSubtle": true}));
    }
    let actions: Vec<Value> = page
        .report_url
        .iter()
        .map(|u| json!({"type": "Action.OpenUrl", "title": "Open the report", "url": u}))
        .collect();
    card_message(body, actions, &page.title())
}

/// The Workflows webhook message for a digest: a container per drill, worst first.
pub fn teams_digest_body(d: &Digest) -> Value {
    let tone = Tone::of_digest(d);
    let mut body = vec![
        json!({"type": "TextBlock", "text": d.title(), "style": "heading", "size": "Large", "weight": "Bolder", "color": tone.card_color(), "wrap": true}),
        json!({"type": "TextBlock", "text": d.summary(), "wrap": true}),
    ];
    for dr in d.drills.iter().take(TEAMS_MAX_DRILLS) {
        body.push(json!({
            "type": "Container",
            "separator": true,
            "spacing": "Medium",
            "items": [
                {"type": "TextBlock", "text": dr.headline(), "weight": "Bolder", "color": Tone::of_health(dr.health).card_color(), "wrap": true},
                fact_set(dr.facts(d)),
            ],
        }));
    }
    if d.drills.len() > TEAMS_MAX_DRILLS {
        body.push(json!({"type": "TextBlock", "text": format!("…and {} more drills: `firedrill list` shows them all", d.drills.len() - TEAMS_MAX_DRILLS), "isSubtle": true, "wrap": true}));
    }
    let actions: Vec<Value> = d
        .base_url
        .iter()
        .map(|u| json!({"type": "Action.OpenUrl", "title": "Open the dashboard", "url": u}))
        .collect();
    card_message(body, actions, &d.title())
}

pub struct TeamsNotifier {
    name: String,
    url: Secret,
    http: reqwest::Client,
}

impl TeamsNotifier {
    pub fn new(name: &str, url: Secret) -> Self {
        TeamsNotifier {
            name: name.into(),
            url,
            http: client(),
        }
    }
}

#[async_trait]
impl Notifier for TeamsNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, page: &Page) -> Result<()> {
        let req = self.http.post(self.url.expose()).json(&teams_body(page));
        post(&self.name, req, "Teams").await
    }

    async fn send_digest(&self, digest: &Digest) -> Result<()> {
        let req = self
            .http
            .post(self.url.expose())
            .json(&teams_digest_body(digest));
        post(&self.name, req, "Teams").await
    }
}

// ---------------------------------------------------------------------------------------
// Discord: a webhook executes with `content` and up to ten `embeds`.

/// Discord's limits on a message: content 2000 characters; an embed's title 256,
/// description 4096, 25 fields of name 256 and value 1024; 6000 characters in all embeds.
const DISCORD_EMBED_TOTAL: usize = 6000;

fn discord_message(content: &str, embed: Value, username: Option<&str>) -> Value {
    let mut v = json!({
        "content": clip(content, 2000),
        "embeds": [embed],
        // Error text could say @everyone: nobody is pinged by a page.
        "allowed_mentions": {"parse": []},
    });
    if let Some(u) = username {
        v["username"] = json!(u);
    }
    v
}

/// The webhook body for a page: the title as `content`, an embed coloured by severity
/// with the summary, the facts as fields and the report as its link.
pub fn discord_body(page: &Page, username: Option<&str>) -> Value {
    let tone = Tone::of_page(page);
    let fields: Vec<Value> = page
        .facts()
        .into_iter()
        .take(25)
        .map(
            |(k, v)| json!({"name": k, "value": clip(&v, 1024), "inline": v.chars().count() <= 40}),
        )
        .collect();
    let mut description = page.summary.clone();
    if let Some(t) = &page.stderr_tail {
        description.push_str(&format!(
            "\n\n**Tool output**\n```\n{}\n```",
            clip(t, 1500).replace("```", "'''")
        ));
    }
    let mut embed = json!({
        "title": clip(&page.title(), 256),
        "description": clip(&description, 4096),
        "color": tone.rgb(),
        "fields": fields,
        "timestamp": page.at.to_string(),
        "footer": {"text": "firedrill"},
    });
    if let Some(u) = page.report_url.as_ref().filter(|u| u.starts_with("http")) {
        embed["url"] = json!(u);
    }
    discord_message(&page.title(), embed, username)
}

/// The webhook body for a digest: a field per drill, worst first, as many as the 6000
/// characters of an embed allow.
pub fn discord_digest_body(d: &Digest, username: Option<&str>) -> Value {
    let title = clip(&d.title(), 256);
    let description = d.summary();
    let mut used = title.chars().count() + description.chars().count() + 100;
    let mut fields = Vec::new();
    for (i, dr) in d.drills.iter().enumerate() {
        let name = clip(&dr.headline(), 256);
        let value: Vec<String> = dr
            .facts(d)
            .into_iter()
            .map(|(k, v)| format!("**{k}:** {v}"))
            .collect();
        let value = clip(&value.join("\n"), 1024);
        let size = name.chars().count() + value.chars().count();
        if fields.len() == 24 || used + size > DISCORD_EMBED_TOTAL {
            fields.push(json!({"name": "…", "value": format!("and {} more drills: `firedrill list` shows them all", d.drills.len() - i)}));
            break;
        }
        used += size;
        fields.push(json!({"name": name, "value": value, "inline": false}));
    }
    let mut embed = json!({
        "title": title,
        "description": description,
        "color": Tone::of_digest(d).rgb(),
        "fields": fields,
        "timestamp": d.generated_at.to_string(),
        "footer": {"text": "firedrill digest"},
    });
    if let Some(u) = d.base_url.as_ref().filter(|u| u.starts_with("http")) {
        embed["url"] = json!(u);
    }
    discord_message(&d.title(), embed, username)
}

pub struct DiscordNotifier {
    name: String,
    url: Secret,
    username: Option<String>,
    http: reqwest::Client,
}

impl DiscordNotifier {
    pub fn new(name: &str, url: Secret, username: Option<String>) -> Self {
        DiscordNotifier {
            name: name.into(),
            url,
            username,
            http: client(),
        }
    }
}

#[async_trait]
impl Notifier for DiscordNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, page: &Page) -> Result<()> {
        let body = discord_body(page, self.username.as_deref());
        post(
            &self.name,
            self.http.post(self.url.expose()).json(&body),
            "Discord",
        )
        .await
    }

    async fn send_digest(&self, digest: &Digest) -> Result<()> {
        let body = discord_digest_body(digest, self.username.as_deref());
        post(
            &self.name,
            self.http.post(self.url.expose()).json(&body),
            "Discord",
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------
// Telegram: POST {api}/bot<token>/sendMessage with chat_id and text.

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A `sendMessage` text in Telegram's HTML: the title bold, then the body as plain text.
/// Telegram takes 4096 characters after the markup is parsed.
pub fn telegram_text(title: &str, body: &str) -> String {
    format!(
        "<b>{}</b>\n\n{}",
        html_escape(&clip(title, 200)),
        html_escape(&clip(body, 3800))
    )
}

/// The `sendMessage` parameters for `text`.
pub fn telegram_body(chat_id: &ChatId, thread: Option<i64>, text: String) -> Value {
    let chat = match chat_id {
        ChatId::Id(n) => json!(n),
        ChatId::Name(s) => match s.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => json!(s),
        },
    };
    let mut v = json!({
        "chat_id": chat,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    });
    if let Some(t) = thread {
        v["message_thread_id"] = json!(t);
    }
    v
}

pub struct TelegramNotifier {
    name: String,
    /// `{api_url}/bot<token>/sendMessage`: the token is in the path.
    url: Secret,
    chat_id: ChatId,
    thread: Option<i64>,
    http: reqwest::Client,
}

impl TelegramNotifier {
    pub fn new(name: &str, cfg: &TelegramConfig, token: Secret) -> Self {
        let url = Secret::new(format!(
            "{}/bot{}/sendMessage",
            cfg.api_url().trim_end_matches('/'),
            token.expose()
        ));
        crate::secret::hold_url(url.expose());
        TelegramNotifier {
            name: name.into(),
            url,
            chat_id: cfg.chat_id.clone(),
            thread: cfg.message_thread_id,
            http: client(),
        }
    }

    async fn say(&self, text: String) -> Result<()> {
        let body = telegram_body(&self.chat_id, self.thread, text);
        post(
            &self.name,
            self.http.post(self.url.expose()).json(&body),
            "Telegram",
        )
        .await
    }
}

#[async_trait]
impl Notifier for TelegramNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, page: &Page) -> Result<()> {
        self.say(telegram_text(&page.title(), &page_body_text(page)))
            .await
    }

    async fn send_digest(&self, digest: &Digest) -> Result<()> {
        let text = digest.text();
        let body = text.split_once("\n\n").map(|(_, b)| b).unwrap_or(&text);
        self.say(telegram_text(&digest.title(), body)).await
    }
}

// ---------------------------------------------------------------------------------------
// Mattermost: an incoming webhook takes `text` (Markdown) and Slack-style `attachments`.

/// Mattermost's default post size limit is 16383 characters.
const MATTERMOST_MAX: usize = 16_000;

fn mattermost_message(text: String, attachments: Vec<Value>, m: &MattermostNotifier) -> Value {
    let mut v = json!({"text": clip(&text, MATTERMOST_MAX)});
    if !attachments.is_empty() {
        v["attachments"] = json!(attachments);
    }
    if let Some(c) = &m.channel {
        v["channel"] = json!(c);
    }
    if let Some(u) = &m.username {
        v["username"] = json!(u);
    }
    v
}

/// The attachment for a page: coloured by severity, the summary, the facts as fields.
pub fn mattermost_attachment(page: &Page) -> Value {
    let fields: Vec<Value> = page
        .facts()
        .into_iter()
        .map(
            |(k, v)| json!({"title": k, "value": clip(&v, 2000), "short": v.chars().count() <= 40}),
        )
        .collect();
    let mut text = page.summary.clone();
    if let Some(t) = &page.stderr_tail {
        text.push_str(&format!("\n```\n{}\n```", clip(t, 3000)));
    }
    let mut a = json!({
        "fallback": page.title(),
        "color": Tone::of_page(page).hex(),
        "title": page.title(),
        "text": text,
        "fields": fields,
        "footer": "firedrill",
    });
    if let Some(u) = &page.report_url {
        a["title_link"] = json!(u);
    }
    a
}

/// A digest as a Markdown table, worst first.
pub fn mattermost_digest_text(d: &Digest) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut t = format!(
        "#### {}\n{}\n\n| Drill | State | Last run | Last success | RPO | RTO | Verified |\n|---|---|---|---|---|---|---|\n",
        d.title(),
        d.summary()
    );
    for dr in &d.drills {
        let facts: Vec<String> = dr.facts(d).into_iter().map(|(_, v)| cell(&v)).collect();
        t.push_str(&format!(
            "| {} | {} {} | {} |\n",
            cell(&dr.drill),
            dr.health.icon(),
            dr.health.as_str(),
            facts.join(" | ")
        ));
    }
    t
}

pub struct MattermostNotifier {
    name: String,
    url: Secret,
    channel: Option<String>,
    username: Option<String>,
    http: reqwest::Client,
}

impl MattermostNotifier {
    pub fn new(name: &str, url: Secret, cfg: &MattermostConfig) -> Self {
        MattermostNotifier {
            name: name.into(),
            url,
            channel: cfg.channel.clone(),
            username: cfg.username.clone(),
            http: client(),
        }
    }

    /// The webhook body for a page.
    pub fn body(&self, page: &Page) -> Value {
        mattermost_message(
            format!("#### {}", page.title()),
            vec![mattermost_attachment(page)],
            self,
        )
    }
}

#[async_trait]
impl Notifier for MattermostNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, page: &Page) -> Result<()> {
        let req = self.http.post(self.url.expose()).json(&self.body(page));
        post(&self.name, req, "Mattermost").await
    }

    async fn send_digest(&self, digest: &Digest) -> Result<()> {
        let body = mattermost_message(mattermost_digest_text(digest), vec![], self);
        let req = self.http.post(self.url.expose()).json(&body);
        post(&self.name, req, "Mattermost").await
    }
}

// ---------------------------------------------------------------------------------------
// Google Chat: a space's incoming webhook takes a message's `text`; a page and its
// resolve share a thread (`thread.threadKey`, with messageReplyOption in the URL).

/// Kept well under Google Chat's message size limit (32,000 bytes).
const GOOGLE_CHAT_MAX: usize = 8000;

/// The webhook body for a page, threaded by its incident.
pub fn google_chat_body(page: &Page) -> Value {
    let mut t = format!("*{}*\n{}\n", page.title(), page.summary);
    for (k, v) in page.facts() {
        t.push_str(&format!("*{k}:* {v}\n"));
    }
    if let Some(u) = &page.report_url {
        t.push_str(&format!("<{u}|Open the report>\n"));
    }
    if let Some(s) = &page.stderr_tail {
        t.push_str(&format!("```\n{}\n```\n", clip(s, 3000)));
    }
    json!({
        "text": clip(&t, GOOGLE_CHAT_MAX),
        "thread": {"threadKey": page.incident_key},
    })
}

/// The webhook body for a digest (a thread of its own).
pub fn google_chat_digest_body(d: &Digest) -> Value {
    let mut t = format!("*{}*\n{}\n", d.title(), d.summary());
    for dr in &d.drills {
        t.push_str(&format!("\n*{}*\n", dr.headline()));
        for (k, v) in dr.facts(d) {
            t.push_str(&format!("    _{k}:_ {v}\n"));
        }
    }
    json!({"text": clip(&t, GOOGLE_CHAT_MAX)})
}

pub struct GoogleChatNotifier {
    name: String,
    url: Secret,
    http: reqwest::Client,
}

impl GoogleChatNotifier {
    pub fn new(name: &str, url: Secret) -> Self {
        GoogleChatNotifier {
            name: name.into(),
            url,
            http: client(),
        }
    }

    /// The webhook URL asking for a reply in the thread (a new one if it has none yet).
    fn threaded_url(&self) -> String {
        let raw = self.url.expose();
        match reqwest::Url::parse(raw) {
            Ok(mut u) if !u.query_pairs().any(|(k, _)| k == "messageReplyOption") => {
                u.query_pairs_mut()
                    .append_pair("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
                u.to_string()
            }
            _ => raw.to_string(),
        }
    }
}

#[async_trait]
impl Notifier for GoogleChatNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, page: &Page) -> Result<()> {
        let req = self
            .http
            .post(self.threaded_url())
            .json(&google_chat_body(page));
        post(&self.name, req, "Google Chat").await
    }

    async fn send_digest(&self, digest: &Digest) -> Result<()> {
        let req = self
            .http
            .post(self.url.expose())
            .json(&google_chat_digest_body(digest));
        post(&self.name, req, "Google Chat").await
    }
}
