//! `[notify]` in the main config: the channels pages go through and the routes that pick
//! them, checked offline like the rest of the config.

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
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelKind {
    Email(EmailConfig),
    Webhook(WebhookConfig),
    Slack(SlackConfig),
    Pagerduty(PagerDutyConfig),
    Alertmanager(AlertmanagerConfig),
}

/// Where a channel delivers, for `firedrill doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Smtp {
        host: String,
        port: u16,
    },
    Http(Vec<String>),
    /// Held in a secret (Slack's webhook URL).
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
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ChannelKind::Email(c) => &c.name,
            ChannelKind::Webhook(c) => &c.name,
            ChannelKind::Slack(c) => &c.name,
            ChannelKind::Pagerduty(c) => &c.name,
            ChannelKind::Alertmanager(c) => &c.name,
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
}

/// Checks `[notify]` offline; problems are `(field, message, fix)`.
pub fn validate(
    cfg: &NotifyConfig,
) -> std::result::Result<NotifySpec, Vec<(String, String, String)>> {
    let mut p: Vec<(String, String, String)> = Vec::new();
    let mut names = Vec::new();
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
            }
            ChannelKind::Slack(s) => secret(&mut p, "webhook_url", &s.webhook_url),
            ChannelKind::Pagerduty(d) => {
                secret(&mut p, "routing_key", &d.routing_key);
                if let Some(u) = &d.events_url {
                    url(&mut p, "events_url", u);
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
    })
}
