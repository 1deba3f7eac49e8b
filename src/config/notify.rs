//! `[notify]` in the main config: the channels pages go through, the routes that pick
//! them and the scheduled digest, checked offline like the rest of the config.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::{SecretRef, SecretUrl};
use crate::status::Severity;

/// `[notify]` in the main config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Links in pages point here: `<base_url>/runs/<run id>`.
    pub base_url: Option<String>,
    /// Re-page an open incident after this long (e.g. "24h"); default: never.
    pub reminder: Option<String>,
    /// Give up on a notification after this long (default "24h").
    pub expire_after: Option<String>,
    #[serde(default, rename = "channel")]
    pub channels: Vec<ChannelKind>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// A scheduled summary of every drill to some channels (`[notify.digest]`).
    pub digest: Option<DigestConfig>,
}

/// `[notify.digest]`: when the digest of every drill is sent, and where.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// When to send it: 5 fields (minute hour day month weekday), e.g. "0 8 * * MON" for
    /// Mondays at 08:00 (name weekdays: the cron library counts 1 as Sunday), or cron's
    /// 6/7 with seconds first.
    pub cron: String,
    /// IANA time zone of `cron` and of the times the digest shows (default UTC).
    pub timezone: Option<String>,
    /// Channel names (default: every channel that takes digests; PagerDuty and
    /// Alertmanager take pages only).
    #[serde(default)]
    pub channels: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelKind {
    Email(EmailConfig),
    Webhook(WebhookConfig),
    Slack(SlackConfig),
    Pagerduty(PagerDutyConfig),
    Alertmanager(AlertmanagerConfig),
    /// Microsoft Teams, through a Workflows webhook ("When a Teams webhook request is
    /// received"), posting Adaptive Cards.
    Teams(TeamsConfig),
    Discord(DiscordConfig),
    /// A Telegram bot's `sendMessage`.
    Telegram(TelegramConfig),
    Mattermost(MattermostConfig),
    /// A Google Chat space's incoming webhook.
    GoogleChat(GoogleChatConfig),
}

/// Where a channel delivers, for `firedrill doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Smtp {
        host: String,
        port: u16,
    },
    Http(Vec<String>),
    /// Held in a secret (the webhook URLs of Slack, Teams, Discord, Mattermost, Google
    /// Chat).
    Unknown,
}

impl ChannelKind {
    pub fn endpoint(&self) -> Endpoint {
        match self {
            ChannelKind::Email(c) => Endpoint::Smtp {
                host: c.host.clone(),
                port: c.port.unwrap_or(match c.tls {
                    SmtpTls::Implicit => 465,
                    SmtpTls::Starttls => 587,
                    SmtpTls::None => 25,
                }),
            },
            ChannelKind::Webhook(c) => Endpoint::Http(vec![c.url.expose().to_string()]),
            ChannelKind::Slack(_) => Endpoint::Unknown,
            ChannelKind::Pagerduty(c) => Endpoint::Http(vec![c
                .events_url
                .as_ref()
                .map(|u| u.expose().to_string())
                .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".into())]),
            ChannelKind::Alertmanager(c) => {
                Endpoint::Http(c.urls.iter().map(|u| u.expose().to_string()).collect())
            }
            ChannelKind::Telegram(c) => Endpoint::Http(vec![c.api_url().to_string()]),
            ChannelKind::Teams(_)
            | ChannelKind::Discord(_)
            | ChannelKind::Mattermost(_)
            | ChannelKind::GoogleChat(_) => Endpoint::Unknown,
        }
    }

    /// Whether the channel can take a digest: incident systems (PagerDuty, Alertmanager)
    /// take pages only.
    pub fn takes_digests(&self) -> bool {
        !matches!(
            self,
            ChannelKind::Pagerduty(_) | ChannelKind::Alertmanager(_)
        )
    }

    pub fn name(&self) -> &str {
        match self {
            ChannelKind::Email(c) => &c.name,
            ChannelKind::Webhook(c) => &c.name,
            ChannelKind::Slack(c) => &c.name,
            ChannelKind::Pagerduty(c) => &c.name,
            ChannelKind::Alertmanager(c) => &c.name,
            ChannelKind::Teams(c) => &c.name,
            ChannelKind::Discord(c) => &c.name,
            ChannelKind::Telegram(c) => &c.name,
            ChannelKind::Mattermost(c) => &c.name,
            ChannelKind::GoogleChat(c) => &c.name,
        }
    }

    /// The channel's type, as written in `type = "…"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Email(_) => "email",
            ChannelKind::Webhook(_) => "webhook",
            ChannelKind::Slack(_) => "slack",
            ChannelKind::Pagerduty(_) => "pagerduty",
            ChannelKind::Alertmanager(_) => "alertmanager",
            ChannelKind::Teams(_) => "teams",
            ChannelKind::Discord(_) => "discord",
            ChannelKind::Telegram(_) => "telegram",
            ChannelKind::Mattermost(_) => "mattermost",
            ChannelKind::GoogleChat(_) => "google_chat",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// Plain, then STARTTLS (port 587). The default.
    #[default]
    Starttls,
    /// No TLS: only for a relay on localhost or a trusted network.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    /// Where pages are posted. A token in its path or query is kept out of every message.
    pub url: SecretUrl,
    /// Signs each body: `X-Firedrill-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
    pub secret: Option<SecretRef>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The JSON body to post instead of firedrill's page (schema `firedrill.page.v1`):
    /// `{{field}}` inside a JSON string is replaced by the page's field, JSON-escaped.
    /// Fields: title, text, summary, kind (trigger, resolve, test, digest), severity,
    /// drill, run_id, incident_key, stage, error, hint, artifact, report_url, at,
    /// started_at. E.g. '{"text": "{{title}}\n{{summary}}"}'.
    pub template: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    /// The incoming-webhook URL is a credential: from env or a file.
    pub webhook_url: SecretRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    pub routing_key: SecretRef,
    /// Default: https://events.pagerduty.com/v2/enqueue
    pub events_url: Option<SecretUrl>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    /// Every Alertmanager of an HA cluster; each gets every alert.
    pub urls: Vec<SecretUrl>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    /// The Workflows webhook URL (it carries its signature `sig=…`): from env or a file.
    pub webhook_url: SecretRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    /// `https://discord.com/api/webhooks/<id>/<token>`: from env or a file.
    pub webhook_url: SecretRef,
    /// The name messages are posted under (default: the webhook's own).
    pub username: Option<String>,
}

/// A Telegram chat: its numeric id (groups are negative) or `@channelusername`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ChatId {
    Id(i64),
    Name(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    /// The bot's token from @BotFather (`123456:ABC…`): from env or a file.
    pub bot_token: SecretRef,
    /// The chat the bot posts in: its id (e.g. -1001234567890) or "@channelusername".
    pub chat_id: ChatId,
    /// A forum topic of the chat.
    pub message_thread_id: Option<i64>,
    /// The Bot API server (default https://api.telegram.org; a local Bot API server).
    pub api_url: Option<String>,
}

impl TelegramConfig {
    pub fn api_url(&self) -> &str {
        self.api_url
            .as_deref()
            .unwrap_or("https://api.telegram.org")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MattermostConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    /// The incoming webhook URL (`https://…/hooks/<key>`): from env or a file.
    pub webhook_url: SecretRef,
    /// Post in this channel instead of the webhook's (its name, e.g. "town-square").
    pub channel: Option<String>,
    /// Post under this name (when the server allows overriding it).
    pub username: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleChatConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    /// The space's webhook URL (it carries `key=…&token=…`): from env or a file.
    pub webhook_url: SecretRef,
}

/// Which channels get what.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Severities this route takes (default: both).
    #[serde(default)]
    pub severity: Vec<Severity>,
    /// Drill names; `*` at the end matches a prefix (default: every drill).
    #[serde(default)]
    pub drills: Vec<String>,
    pub channels: Vec<String>,
}

/// `[notify]`, checked.
#[derive(Debug, Clone, Default)]
pub struct NotifySpec {
    pub base_url: Option<String>,
    pub reminder: Option<Duration>,
    pub expire_after: Duration,
    pub channels: Vec<(String, ChannelKind)>,
    pub routes: Vec<RouteConfig>,
    /// Webhook channels' body templates, checked, by channel name.
    pub templates: BTreeMap<String, BodyTemplate>,
    pub digest: Option<DigestSpec>,
}

/// `[notify.digest]`, checked.
#[derive(Debug, Clone)]
pub struct DigestSpec {
    pub schedule: crate::schedule::Schedule,
    /// The channels it goes to (those that take digests when none were named).
    pub channels: Vec<String>,
}

/// A field a webhook body template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateField {
    Title,
    Text,
    Summary,
    Kind,
    Severity,
    Drill,
    RunId,
    IncidentKey,
    Stage,
    Error,
    Hint,
    Artifact,
    ReportUrl,
    At,
    StartedAt,
}

impl TemplateField {
    pub const ALL: [TemplateField; 15] = [
        TemplateField::Title,
        TemplateField::Text,
        TemplateField::Summary,
        TemplateField::Kind,
        TemplateField::Severity,
        TemplateField::Drill,
        TemplateField::RunId,
        TemplateField::IncidentKey,
        TemplateField::Stage,
        TemplateField::Error,
        TemplateField::Hint,
        TemplateField::Artifact,
        TemplateField::ReportUrl,
        TemplateField::At,
        TemplateField::StartedAt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateField::Title => "title",
            TemplateField::Text => "text",
            TemplateField::Summary => "summary",
            TemplateField::Kind => "kind",
            TemplateField::Severity => "severity",
            TemplateField::Drill => "drill",
            TemplateField::RunId => "run_id",
            TemplateField::IncidentKey => "incident_key",
            TemplateField::Stage => "stage",
            TemplateField::Error => "error",
            TemplateField::Hint => "hint",
            TemplateField::Artifact => "artifact",
            TemplateField::ReportUrl => "report_url",
            TemplateField::At => "at",
            TemplateField::StartedAt => "started_at",
        }
    }
}

/// A webhook body template, parsed: literal text and `{{field}}` placeholders. The
/// substitution is the whole language (no logic, no loops): a value is JSON-escaped where
/// it lands, so a page's text (an error message, tool output) can never change the body's
/// structure. No template crate: these twenty lines are all it takes, and they cannot do
/// more than they should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTemplate {
    parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplatePart {
    Literal(String),
    Field(TemplateField),
}

impl BodyTemplate {
    /// Parses `{{field}}` placeholders (spaces inside the braces allowed); the error
    /// names the problem and what is known.
    pub fn parse(text: &str) -> std::result::Result<BodyTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(TemplatePart::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(format!(
                    "`{{{{` at byte {} is never closed with `}}}}`",
                    text.len() - rest.len() + open
                ));
            };
            let name = after[..close].trim();
            let field = TemplateField::ALL
                .into_iter()
                .find(|f| f.as_str() == name)
                .ok_or_else(|| {
                    format!(
                        "`{{{{{name}}}}}` is not a page field; the fields are {}",
                        TemplateField::ALL.map(|f| f.as_str()).join(", ")
                    )
                })?;
            parts.push(TemplatePart::Field(field));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Literal(rest.to_string()));
        }
        let t = BodyTemplate { parts };
        // Rendered with values that need escaping, it must be JSON: a placeholder outside
        // a string, or a template that is not JSON at all, is found now, not at 3 a.m.
        let sample = t.render(|_| "a \"quoted\" value,\nand a new line".to_string());
        serde_json::from_str::<serde_json::Value>(&sample).map_err(|e| {
            format!(
                "the body is not JSON once its fields are filled in ({e}); put each {{{{field}}}} inside a JSON string, e.g. {{\"text\": \"{{{{title}}}}\"}}"
            )
        })?;
        Ok(t)
    }

    /// The body, each field's value JSON-escaped (without quotes: the template has them).
    pub fn render(&self, value: impl Fn(TemplateField) -> String) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Field(f) => {
                    let quoted = serde_json::Value::String(value(*f)).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                }
            }
        }
        out
    }
}

/// Checks `[notify]` offline; problems are `(field, message, fix)`.
pub fn validate(
    cfg: &NotifyConfig,
) -> std::result::Result<NotifySpec, Vec<(String, String, String)>> {
    let mut p: Vec<(String, String, String)> = Vec::new();
    let mut names = Vec::new();
    let mut templates = BTreeMap::new();
    let dur = |p: &mut Vec<(String, String, String)>, field: &str, v: &Option<String>| {
        v.as_ref().and_then(|s| {
            super::parse_duration(s)
                .map_err(|m| p.push((field.into(), m, "write e.g. \"24h\"".into())))
                .ok()
        })
    };
    let reminder = dur(&mut p, "notify.reminder", &cfg.reminder);
    let expire_after = dur(&mut p, "notify.expire_after", &cfg.expire_after)
        .unwrap_or(Duration::from_secs(86_400));
    for (i, c) in cfg.channels.iter().enumerate() {
        let f = format!("notify.channel[{i}]");
        if c.name().trim().is_empty() || names.iter().any(|n: &String| n == c.name()) {
            p.push((
                format!("{f}.name"),
                format!("`{}` is empty or used twice", c.name()),
                "give each channel its own name".into(),
            ));
        }
        names.push(c.name().to_string());
        let secret = |p: &mut Vec<(String, String, String)>, field: &str, r: &SecretRef| {
            if let Err(m) = r.validate() {
                p.push((
                    format!("{f}.{field}"),
                    m,
                    "secrets are never inline: { env = \"VAR\" } or { file = \"/path\" }".into(),
                ));
            }
        };
        // The value is not repeated: URLs hold tokens.
        let url = |p: &mut Vec<(String, String, String)>, field: &str, u: &SecretUrl| {
            let u = u.expose();
            if !(u.starts_with("http://") || u.starts_with("https://"))
                || reqwest::Url::parse(u).is_err()
            {
                p.push((
                    format!("{f}.{field}"),
                    "not an http(s) URL (the value is not shown: URLs can hold tokens)".to_string(),
                    "write the full URL, e.g. https://hooks.example.com/firedrill".into(),
                ));
            }
        };
        match c {
            ChannelKind::Email(e) => {
                if e.to.is_empty() {
                    p.push((
                        format!("{f}.to"),
                        "no recipients".into(),
                        "list at least one address".into(),
                    ));
                }
                for (j, a) in e.to.iter().chain(std::iter::once(&e.from)).enumerate() {
                    if a.parse::<lettre::message::Mailbox>().is_err() {
                        p.push((format!("{f}.{}", if j < e.to.len() { format!("to[{j}]") } else { "from".into() }), format!("`{a}` is not an email address"), "write e.g. \"oncall@example.com\" or \"Firedrill <firedrill@example.com>\"".into()));
                    }
                }
                if let Some(pw) = &e.password {
                    secret(&mut p, "password", pw);
                    if e.username.is_none() {
                        p.push((
                            format!("{f}.username"),
                            "a password without a username".into(),
                            "add username".into(),
                        ));
                    }
                }
            }
            ChannelKind::Webhook(w) => {
                url(&mut p, "url", &w.url);
                if let Some(s) = &w.secret {
                    secret(&mut p, "secret", s);
                }
                if let Some(t) = &w.template {
                    match BodyTemplate::parse(t) {
                        Ok(t) => {
                            templates.insert(c.name().to_string(), t);
                        }
                        Err(m) => p.push((
                            format!("{f}.template"),
                            m,
                            "write the JSON body the receiver expects, with {{field}} inside its strings, e.g. '{\"text\": \"{{title}}\\n{{summary}}\"}'".into(),
                        )),
                    }
                }
            }
            ChannelKind::Slack(s) => secret(&mut p, "webhook_url", &s.webhook_url),
            ChannelKind::Pagerduty(d) => {
                secret(&mut p, "routing_key", &d.routing_key);
                if let Some(u) = &d.events_url {
                    url(&mut p, "events_url", u);
                }
            }
            ChannelKind::Teams(TeamsConfig { webhook_url, .. })
            | ChannelKind::Mattermost(MattermostConfig { webhook_url, .. })
            | ChannelKind::GoogleChat(GoogleChatConfig { webhook_url, .. }) => {
                secret(&mut p, "webhook_url", webhook_url)
            }
            ChannelKind::Discord(d) => {
                secret(&mut p, "webhook_url", &d.webhook_url);
                if let Some(u) = &d.username {
                    let lower = u.to_lowercase();
                    if u.trim().is_empty()
                        || u.chars().count() > 80
                        || lower.contains("discord")
                        || lower.contains("clyde")
                    {
                        p.push((
                            format!("{f}.username"),
                            format!("`{u}` is not a name Discord accepts for a webhook"),
                            "use 1 to 80 characters without \"discord\" or \"clyde\", e.g. \"firedrill\"".into(),
                        ));
                    }
                }
            }
            ChannelKind::Telegram(t) => {
                secret(&mut p, "bot_token", &t.bot_token);
                if let ChatId::Name(n) = &t.chat_id {
                    let valid = n.parse::<i64>().is_ok()
                        || (n.len() > 1
                            && n.starts_with('@')
                            && n[1..]
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    if !valid {
                        p.push((
                            format!("{f}.chat_id"),
                            format!("`{n}` is neither a chat id nor a @channelusername"),
                            "write the chat's id (a number; groups are negative, e.g. -1001234567890) or \"@channelusername\"".into(),
                        ));
                    }
                }
                if t.message_thread_id.is_some_and(|id| id <= 0) {
                    p.push((
                        format!("{f}.message_thread_id"),
                        "a topic id is a positive number".into(),
                        "copy the id of the forum topic, or leave message_thread_id out".into(),
                    ));
                }
                if let Some(u) = &t.api_url {
                    if !(u.starts_with("http://") || u.starts_with("https://"))
                        || reqwest::Url::parse(u).is_err()
                    {
                        p.push((
                            format!("{f}.api_url"),
                            format!("`{u}` is not an http(s) URL"),
                            "leave api_url out for https://api.telegram.org, or write a local Bot API server's URL".into(),
                        ));
                    } else if u.contains("/bot") {
                        p.push((
                            format!("{f}.api_url"),
                            "api_url is the server only; the token goes in bot_token".into(),
                            "write e.g. \"https://api.telegram.org\" and bot_token = { env = \"TELEGRAM_BOT_TOKEN\" }".into(),
                        ));
                    }
                }
            }
            ChannelKind::Alertmanager(a) => {
                if a.urls.is_empty() {
                    p.push((
                        format!("{f}.urls"),
                        "no Alertmanager URLs".into(),
                        "list each Alertmanager, e.g. [\"http://alertmanager:9093\"]".into(),
                    ));
                }
                for u in &a.urls {
                    url(&mut p, "urls", u);
                }
            }
        }
    }
    for (i, r) in cfg.routes.iter().enumerate() {
        for c in &r.channels {
            if !names.contains(c) {
                p.push((
                    format!("notify.route[{i}].channels"),
                    format!("no channel named `{c}`"),
                    format!("use one of: {}", names.join(", ")),
                ));
            }
        }
    }
    let digest = cfg.digest.as_ref().and_then(|d| {
        let zone_ok = match &d.timezone {
            Some(z) => jiff::tz::TimeZone::get(z)
                .map_err(|e| {
                    p.push((
                        "notify.digest.timezone".into(),
                        format!("`{z}` is not a time zone ({e})"),
                        "write an IANA name such as \"Europe/Berlin\", or leave timezone out for UTC".into(),
                    ))
                })
                .is_ok(),
            None => true,
        };
        let schedule = crate::schedule::Schedule::parse(&d.cron, None, Duration::ZERO)
            .map_err(|m| {
                p.push((
                    "notify.digest.cron".into(),
                    m,
                    "write e.g. cron = \"0 8 * * MON\" (Mondays at 08:00)".into(),
                ))
            })
            .ok()
            .filter(|_| zone_ok)
            .and_then(|_| {
                crate::schedule::Schedule::parse(&d.cron, d.timezone.as_deref(), Duration::ZERO)
                    .ok()
            });
        let takers: Vec<&ChannelKind> = cfg.channels.iter().filter(|c| c.takes_digests()).collect();
        let channels: Vec<String> = if d.channels.is_empty() {
            takers.iter().map(|c| c.name().to_string()).collect()
        } else {
            d.channels.clone()
        };
        let usable = takers
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ");
        for c in &d.channels {
            match cfg.channels.iter().find(|k| k.name() == c) {
                None => p.push((
                    "notify.digest.channels".into(),
                    format!("no channel named `{c}`"),
                    format!("use one of: {usable}"),
                )),
                Some(k) if !k.takes_digests() => p.push((
                    "notify.digest.channels".into(),
                    format!("channel `{c}` is a {} channel: it takes pages, not digests", k.type_name()),
                    format!("send the digest to a chat, email or webhook channel: {usable}"),
                )),
                Some(_) => {}
            }
        }
        if channels.is_empty() {
            p.push((
                "notify.digest.channels".into(),
                "no channel takes the digest".into(),
                "add a chat, email or webhook [[notify.channel]] (PagerDuty and Alertmanager take pages only)".into(),
            ));
        }
        schedule.map(|schedule| DigestSpec { schedule, channels })
    });
    if !p.is_empty() {
        return Err(p);
    }
    Ok(NotifySpec {
        base_url: cfg.base_url.clone(),
        reminder,
        expire_after,
        channels: cfg
            .channels
            .iter()
            .map(|c| (c.name().to_string(), c.clone()))
            .collect(),
        routes: cfg.routes.clone(),
        templates,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(String, String, String)> {
        let cfg: NotifyConfig = toml::from_str(text).unwrap();
        validate(&cfg).err().unwrap_or_default()
    }

    #[test]
    fn templates_fill_in_json_escaped_values() {
        let t = BodyTemplate::parse(r#"{"text": "{{ title }}: {{error}}", "n": 1}"#).unwrap();
        let body = t.render(|f| match f {
            TemplateField::Title => "drill \"shop\" failed".into(),
            TemplateField::Error => "line 1\nline 2 \\ {{drill}} </script>".into(),
            _ => String::new(),
        });
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["text"],
            "drill \"shop\" failed: line 1\nline 2 \\ {{drill}} </script>"
        );
        assert_eq!(v["n"], 1);
    }

    #[test]
    fn templates_that_cannot_work_are_refused_offline() {
        let unknown = BodyTemplate::parse(r#"{"text": "{{titel}}"}"#).unwrap_err();
        assert!(
            unknown.contains("{{titel}}") && unknown.contains("title"),
            "{unknown}"
        );
        let open = BodyTemplate::parse(r#"{"text": "{{title"}"#).unwrap_err();
        assert!(open.contains("never closed"), "{open}");
        let bare = BodyTemplate::parse(r#"{"text": {{title}}}"#).unwrap_err();
        assert!(bare.contains("not JSON"), "{bare}");
        let p = problems(
            "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"https://hooks.example.com/x\"\ntemplate = '{\"text\": {{title}}}'\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "notify.channel[0].template");
    }

    #[test]
    fn chat_channels_are_checked_field_by_field() {
        let p = problems(
            r#"
[[channel]]
name = "tg"
type = "telegram"
bot_token = { env = "not a var" }
chat_id = "ops"
message_thread_id = 0
api_url = "https://api.telegram.org/bot123:abc"

[[channel]]
name = "dc"
type = "discord"
webhook_url = { env = "DISCORD_URL" }
username = "Discord alerts"

[[channel]]
name = "teams"
type = "teams"
webhook_url = {}
"#,
        );
        let fields: Vec<&str> = p.iter().map(|(f, _, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "notify.channel[0].bot_token",
                "notify.channel[0].chat_id",
                "notify.channel[0].message_thread_id",
                "notify.channel[0].api_url",
                "notify.channel[1].username",
                "notify.channel[2].webhook_url",
            ],
            "{p:#?}"
        );
        // Numbers and @names are chat ids.
        assert!(problems("[[channel]]\nname = \"a\"\ntype = \"telegram\"\nbot_token = { env = \"T\" }\nchat_id = -1001234567890\n\n[[channel]]\nname = \"b\"\ntype = \"telegram\"\nbot_token = { env = \"T\" }\nchat_id = \"@ops_alerts\"\n").is_empty());
    }

    #[test]
    fn the_digest_goes_to_channels_that_take_it() {
        let base = "[[channel]]\nname = \"pd\"\ntype = \"pagerduty\"\nrouting_key = { env = \"PD\" }\n\n[[channel]]\nname = \"chat\"\ntype = \"mattermost\"\nwebhook_url = { env = \"MM\" }\n";
        let cfg: NotifyConfig =
            toml::from_str(&format!("{base}\n[digest]\ncron = \"0 8 * * MON\"\n")).unwrap();
        let spec = validate(&cfg).unwrap();
        assert_eq!(
            spec.digest.unwrap().channels,
            ["chat"],
            "PagerDuty takes pages only"
        );
        let p = problems(&format!(
            "{base}\n[digest]\ncron = \"0 25 * * *\"\ntimezone = \"Mars/Olympus\"\nchannels = [\"pd\", \"nope\"]\n"
        ));
        let fields: Vec<&str> = p.iter().map(|(f, _, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "notify.digest.timezone",
                "notify.digest.cron",
                "notify.digest.channels",
                "notify.digest.channels",
            ],
            "{p:#?}"
        );
        assert!(p[2].1.contains("takes pages, not digests") && p[2].2.contains("chat"));
    }
}
