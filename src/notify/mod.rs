//! Paging: every failed drill reaches a human once, through the channels teams use.
//!
//! A finished run goes through [`on_run_finished`]: a backup that is broken pages at once
//! as critical; a drill that could not run (its infrastructure steps already retried)
//! pages as a warning. One incident per drill until it passes again: repeated failures do
//! not re-page (unless the reminder interval passed), and the first pass sends a resolve
//! to every channel that was paged. Every notification is written to the catalog's outbox
//! before it is sent and retried with backoff until delivered or expired, so nothing is
//! lost while a receiver is down, across restarts too.

mod email;
mod http;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Incident};
use crate::error::{Error, Result};
use crate::report::{RunReport, Verdict};
use crate::secret::{SecretRef, SecretSource};

pub use email::EmailNotifier;
pub use http::{AlertmanagerNotifier, PagerDutyNotifier, SlackNotifier, WebhookNotifier};

/// How bad it is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The drill infrastructure failed (Docker, storage, the source unreachable).
    Warning,
    /// The backup is broken.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    Trigger,
    Resolve,
    Test,
}

/// What a page says. This is also the generic webhook's JSON body (schema version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub schema: String,
    pub kind: PageKind,
    pub severity: Severity,
    pub drill: String,
    pub run_id: String,
    /// Stable per drill: the same incident in every channel (PagerDuty's dedup_key).
    pub incident_key: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// Stage durations so far, in milliseconds.
    pub durations_ms: BTreeMap<String, u64>,
    /// The last lines of the failing tool's stderr (secrets already redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
    pub at: jiff::Timestamp,
    /// When the incident started (for resolves and reminders).
    pub started_at: jiff::Timestamp,
}

pub const PAGE_SCHEMA: &str = "firedrill.page.v1";

impl Page {
    pub fn title(&self) -> String {
        match self.kind {
            PageKind::Trigger => format!(
                "[firedrill {}] drill {} failed{}",
                self.severity.as_str(),
                self.drill,
                self.stage
                    .as_deref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default()
            ),
            PageKind::Resolve => format!("[firedrill resolved] drill {} passed again", self.drill),
            PageKind::Test => format!("[firedrill test] test page for drill {}", self.drill),
        }
    }

    /// The plain-text body every channel can use.
    pub fn text(&self) -> String {
        let mut t = format!("{}\n\n{}\n", self.title(), self.summary);
        let mut line = |k: &str, v: &str| t.push_str(&format!("{k}: {v}\n"));
        line("drill", &self.drill);
        line("run", &self.run_id);
        if let Some(s) = &self.stage {
            line("failing stage", s);
        }
        if let Some(e) = &self.error {
            line("error", e);
        }
        if let Some(h) = &self.hint {
            line("hint", h);
        }
        if let Some(a) = &self.artifact {
            line("artifact", a);
        }
        if !self.durations_ms.is_empty() {
            let d: Vec<String> = self
                .durations_ms
                .iter()
                .map(|(s, ms)| format!("{s} {}", crate::report::human_ms(*ms)))
                .collect();
            line("stages", &d.join(", "));
        }
        if let Some(u) = &self.report_url {
            line("report", u);
        }
        if let Some(s) = &self.stderr_tail {
            t.push_str("\ntool output:\n");
            for l in s.lines() {
                t.push_str("  ");
                t.push_str(l);
                t.push('\n');
            }
        }
        t
    }

    /// Builds the page for a finished run.
    pub fn from_report(
        r: &RunReport,
        kind: PageKind,
        severity: Severity,
        base_url: Option<&str>,
        started_at: jiff::Timestamp,
    ) -> Page {
        let summary = match (kind, r.verdict) {
            (PageKind::Resolve, _) => {
                format!("The backup of {} restored and verified again.", r.drill)
            }
            (_, Verdict::Failed) => {
                "The backup did not survive its fire drill: it cannot be trusted to restore."
                    .to_string()
            }
            (_, Verdict::Error) => {
                "The fire drill could not run, so the backup is unproven. Retries were spent."
                    .to_string()
            }
            (_, Verdict::Passed) => "The drill passed.".to_string(),
        };
        Page {
            schema: PAGE_SCHEMA.into(),
            kind,
            severity,
            drill: r.drill.clone(),
            run_id: r.run_id.clone(),
            incident_key: format!("firedrill/{}", r.drill),
            summary,
            stage: r.failed_stage.map(|s| s.as_str().to_string()),
            error: r.error.as_ref().map(|e| e.message.clone()),
            hint: r.error.as_ref().and_then(|e| e.hint.clone()),
            artifact: r.artifact.as_ref().map(|a| a.location.clone()),
            durations_ms: r
                .stages
                .iter()
                .filter(|s| s.duration_ms > 0)
                .map(|s| (s.stage.as_str().to_string(), s.duration_ms))
                .collect(),
            stderr_tail: r.error.as_ref().and_then(|e| e.stderr_tail.clone()),
            report_url: base_url.map(|b| format!("{}/runs/{}", b.trim_end_matches('/'), r.run_id)),
            at: r.finished_at,
            started_at,
        }
    }
}

/// A channel that delivers pages.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// Delivers one page; an error says whether retrying can help.
    async fn send(&self, page: &Page) -> Result<()>;
}

// ---------------------------------------------------------------- configuration

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
            ChannelKind::Webhook(c) => Endpoint::Http(vec![c.url.clone()]),
            ChannelKind::Slack(_) => Endpoint::Unknown,
            ChannelKind::Pagerduty(c) => Endpoint::Http(vec![c
                .events_url
                .clone()
                .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".into())]),
            ChannelKind::Alertmanager(c) => Endpoint::Http(c.urls.clone()),
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
    pub url: String,
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
    pub events_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// How routes and the outbox name this channel.
    pub name: String,
    /// Every Alertmanager of an HA cluster; each gets every alert.
    pub urls: Vec<String>,
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
            crate::config::parse_duration(s)
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
        let url = |p: &mut Vec<(String, String, String)>, field: &str, u: &str| {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                p.push((
                    format!("{f}.{field}"),
                    format!("`{u}` is not an http(s) URL"),
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

fn load(r: &SecretRef, base: &std::path::Path, what: &str) -> Result<crate::secret::Secret> {
    let src: SecretSource = r.validate().map_err(Error::config)?;
    src.load(base).map_err(|e| e.context(what.to_string()))
}

/// Builds every configured channel (reads their secrets).
pub fn build_notifiers(
    spec: &NotifySpec,
    base: &std::path::Path,
) -> Result<Vec<Arc<dyn Notifier>>> {
    let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
    for (name, kind) in &spec.channels {
        let n: Arc<dyn Notifier> = match kind {
            ChannelKind::Email(e) => {
                let password = e
                    .password
                    .as_ref()
                    .map(|p| load(p, base, &format!("channel {name} password")))
                    .transpose()?;
                Arc::new(EmailNotifier::new(name, e, password)?)
            }
            ChannelKind::Webhook(w) => {
                let secret = w
                    .secret
                    .as_ref()
                    .map(|s| load(s, base, &format!("channel {name} secret")))
                    .transpose()?;
                Arc::new(WebhookNotifier::new(name, w, secret))
            }
            ChannelKind::Slack(s) => Arc::new(SlackNotifier::new(
                name,
                load(&s.webhook_url, base, &format!("channel {name} webhook_url"))?,
            )),
            ChannelKind::Pagerduty(d) => Arc::new(PagerDutyNotifier::new(
                name,
                load(&d.routing_key, base, &format!("channel {name} routing_key"))?,
                d.events_url.clone(),
            )),
            ChannelKind::Alertmanager(a) => {
                Arc::new(AlertmanagerNotifier::new(name, a.urls.clone()))
            }
        };
        out.push(n);
    }
    Ok(out)
}

/// The channels a page of `severity` about `drill` goes to.
pub fn route(spec: &NotifySpec, drill: &str, severity: Severity) -> Vec<String> {
    if spec.routes.is_empty() {
        return spec.channels.iter().map(|(n, _)| n.clone()).collect();
    }
    let mut out: Vec<String> = Vec::new();
    for r in &spec.routes {
        let sev_ok = r.severity.is_empty() || r.severity.contains(&severity);
        let drill_ok = r.drills.is_empty()
            || r.drills.iter().any(|d| match d.strip_suffix('*') {
                Some(prefix) => drill.starts_with(prefix),
                None => d == drill,
            });
        if sev_ok && drill_ok {
            for c in &r.channels {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
    }
    out
}

/// What a finished run means for paging.
pub fn classify(r: &RunReport) -> Option<Severity> {
    match r.verdict {
        Verdict::Passed => None,
        Verdict::Failed => Some(Severity::Critical),
        Verdict::Error => Some(Severity::Warning),
    }
}

/// Decides what to page about a finished run and puts it in the outbox. Returns how
/// many notifications were queued.
pub async fn on_run_finished(
    catalog: &dyn Catalog,
    spec: &NotifySpec,
    r: &RunReport,
) -> Result<usize> {
    let now = r.finished_at;
    let open = catalog.incident(&r.drill).await?;
    let mut queued = 0;
    match (classify(r), open) {
        (None, None) => {}
        (None, Some(inc)) => {
            let mut page = Page::from_report(
                r,
                PageKind::Resolve,
                severity_of(&inc.severity),
                spec.base_url.as_deref(),
                inc.opened_at,
            );
            // The resolve names the alert it ends (Alertmanager matches on labels).
            page.stage = inc.stage.clone();
            let body = serde_json::to_string(&page).map_err(|e| Error::internal(e.to_string()))?;
            for ch in &inc.channels {
                catalog
                    .enqueue(ch, &r.drill, "resolve", &body, jiff::Timestamp::now())
                    .await?;
                queued += 1;
            }
            catalog.close_incident(&r.drill).await?;
        }
        (Some(sev), open) => {
            let (page_now, opened_at, mut channels) = match &open {
                None => (true, now, Vec::new()),
                Some(inc) => {
                    let escalated = sev > severity_of(&inc.severity);
                    let remind = spec.reminder.is_some_and(|d| {
                        now.as_second() - inc.last_paged_at.as_second() >= d.as_secs() as i64
                    });
                    (escalated || remind, inc.opened_at, inc.channels.clone())
                }
            };
            if page_now {
                let targets = route(spec, &r.drill, sev);
                let page = Page::from_report(
                    r,
                    PageKind::Trigger,
                    sev,
                    spec.base_url.as_deref(),
                    opened_at,
                );
                let body =
                    serde_json::to_string(&page).map_err(|e| Error::internal(e.to_string()))?;
                for ch in &targets {
                    catalog
                        .enqueue(ch, &r.drill, "trigger", &body, jiff::Timestamp::now())
                        .await?;
                    queued += 1;
                    if !channels.contains(ch) {
                        channels.push(ch.clone());
                    }
                }
                let severity = open
                    .as_ref()
                    .map(|i| severity_of(&i.severity).max(sev))
                    .unwrap_or(sev);
                catalog
                    .put_incident(&Incident {
                        drill: r.drill.clone(),
                        opened_at,
                        last_paged_at: now,
                        severity: severity.as_str().into(),
                        stage: r.failed_stage.map(|s| s.as_str().into()),
                        run_id: r.run_id.clone(),
                        channels,
                    })
                    .await?;
            }
        }
    }
    Ok(queued)
}

fn severity_of(s: &str) -> Severity {
    if s == "critical" {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

/// What one delivery pass did.
#[derive(Debug, Default, Serialize)]
pub struct Delivery {
    pub sent: usize,
    pub retrying: usize,
    pub expired: usize,
}

/// Sends every due notification once. Failures are rescheduled with exponential backoff
/// (30 s doubling, at most 30 min) until `expire_after` has passed since they were queued.
pub async fn deliver_due(
    catalog: &dyn Catalog,
    spec: &NotifySpec,
    notifiers: &[Arc<dyn Notifier>],
) -> Result<Delivery> {
    deliver_due_at(catalog, spec, notifiers, jiff::Timestamp::now()).await
}

/// [`deliver_due`] as of `now` (tests skip ahead in time with it).
pub async fn deliver_due_at(
    catalog: &dyn Catalog,
    spec: &NotifySpec,
    notifiers: &[Arc<dyn Notifier>],
    now: jiff::Timestamp,
) -> Result<Delivery> {
    deliver(catalog, spec, notifiers, now, now).await
}

/// Tries every pending notification at once, whatever its backoff (`notify flush
/// --now`). Age and the next backoff still count from the real clock: a receiver that is
/// still down keeps its pages instead of expiring them.
pub async fn deliver_all_pending(
    catalog: &dyn Catalog,
    spec: &NotifySpec,
    notifiers: &[Arc<dyn Notifier>],
) -> Result<Delivery> {
    let now = jiff::Timestamp::now();
    let horizon = now
        .checked_add(jiff::SignedDuration::from_hours(24 * 365))
        .unwrap_or(jiff::Timestamp::MAX);
    deliver(catalog, spec, notifiers, horizon, now).await
}

/// Sends the pending notifications due by `due_by`; `now` dates the attempt.
async fn deliver(
    catalog: &dyn Catalog,
    spec: &NotifySpec,
    notifiers: &[Arc<dyn Notifier>],
    due_by: jiff::Timestamp,
    now: jiff::Timestamp,
) -> Result<Delivery> {
    let mut d = Delivery::default();
    for item in catalog.due(due_by, 200).await? {
        let Some(n) = notifiers.iter().find(|n| n.name() == item.channel) else {
            catalog
                .mark_expired(
                    item.id,
                    &format!("no channel named {} any more", item.channel),
                )
                .await?;
            d.expired += 1;
            continue;
        };
        let page: Page = match serde_json::from_str(&item.payload) {
            Ok(p) => p,
            Err(e) => {
                catalog
                    .mark_expired(item.id, &format!("unreadable payload: {e}"))
                    .await?;
                d.expired += 1;
                continue;
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), n.send(&page)).await {
            Ok(Ok(())) => {
                catalog.mark_sent(item.id).await?;
                d.sent += 1;
            }
            outcome => {
                let err = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out after 30s".to_string(),
                };
                let age = now.as_second() - item.created_at.as_second();
                if age >= spec.expire_after.as_secs() as i64 {
                    catalog.mark_expired(item.id, &err).await?;
                    d.expired += 1;
                } else {
                    let backoff = (30i64 << item.attempts.min(6)).min(1800);
                    let next = now
                        .checked_add(jiff::SignedDuration::from_secs(backoff))
                        .unwrap_or(now);
                    tracing::warn!(channel = %item.channel, attempt = item.attempts + 1, "notification not delivered, retrying in {backoff}s: {err}");
                    catalog.mark_retry(item.id, next, &err).await?;
                    d.retrying += 1;
                }
            }
        }
    }
    Ok(d)
}

/// Sends a test page through each named channel (all when empty) directly, reporting
/// per channel whether it was accepted.
pub async fn send_test(
    notifiers: &[Arc<dyn Notifier>],
    only: Option<&str>,
) -> Vec<(String, Result<()>)> {
    let now = jiff::Timestamp::now();
    let page = Page {
        schema: PAGE_SCHEMA.into(),
        kind: PageKind::Test,
        severity: Severity::Warning,
        drill: "firedrill-test".into(),
        run_id: "test".into(),
        incident_key: "firedrill/firedrill-test".into(),
        summary: "A test page from `firedrill notify test`. Nothing is wrong.".into(),
        stage: None,
        error: None,
        hint: None,
        artifact: None,
        durations_ms: BTreeMap::new(),
        stderr_tail: None,
        report_url: None,
        at: now,
        started_at: now,
    };
    let mut out = Vec::new();
    for n in notifiers
        .iter()
        .filter(|n| only.is_none_or(|o| o == n.name()))
    {
        out.push((n.name().to_string(), n.send(&page).await));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SqliteCatalog;
    use crate::report::{ErrorReport, Stage};

    fn report(verdict: Verdict, at: i64) -> RunReport {
        let ts = jiff::Timestamp::from_second(1_800_000_000 + at).unwrap();
        RunReport {
            verdict,
            exit_code: verdict.exit_code(),
            failed_stage: (verdict != Verdict::Passed).then_some(Stage::Restore),
            error: (verdict != Verdict::Passed).then(|| ErrorReport {
                kind: "backup".into(),
                message: "artifact hash mismatch".into(),
                hint: Some("drill an earlier one".into()),
                retryable: false,
                stderr_tail: None,
            }),
            ..RunReport::empty("shop", &format!("r{at}"), ts)
        }
    }

    fn spec(reminder: Option<u64>) -> NotifySpec {
        NotifySpec {
            reminder: reminder.map(Duration::from_secs),
            expire_after: Duration::from_secs(86_400),
            channels: vec![
                (
                    "mail".into(),
                    ChannelKind::Alertmanager(AlertmanagerConfig {
                        name: "mail".into(),
                        urls: vec![],
                    }),
                ),
                (
                    "pd".into(),
                    ChannelKind::Alertmanager(AlertmanagerConfig {
                        name: "pd".into(),
                        urls: vec![],
                    }),
                ),
            ],
            routes: vec![
                RouteConfig {
                    severity: vec![Severity::Critical],
                    drills: vec![],
                    channels: vec!["pd".into(), "mail".into()],
                },
                RouteConfig {
                    severity: vec![Severity::Warning],
                    drills: vec!["sh*".into()],
                    channels: vec!["mail".into()],
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn routes_pick_channels_by_severity_and_drill() {
        let s = spec(None);
        assert_eq!(route(&s, "shop", Severity::Critical), ["pd", "mail"]);
        assert_eq!(route(&s, "shop", Severity::Warning), ["mail"]);
        assert!(route(&s, "other", Severity::Warning).is_empty());
    }

    #[tokio::test]
    async fn three_failures_page_once_and_a_pass_resolves_every_channel() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let s = spec(None);
        assert_eq!(
            on_run_finished(&c, &s, &report(Verdict::Failed, 0))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            on_run_finished(&c, &s, &report(Verdict::Failed, 60))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            on_run_finished(&c, &s, &report(Verdict::Failed, 120))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            on_run_finished(&c, &s, &report(Verdict::Passed, 180))
                .await
                .unwrap(),
            2
        );
        assert!(c.incident("shop").await.unwrap().is_none());
        let kinds: Vec<String> = c
            .outbox(10)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .map(|o| format!("{}:{}", o.kind, o.channel))
            .collect();
        assert_eq!(
            kinds,
            ["trigger:pd", "trigger:mail", "resolve:pd", "resolve:mail"]
        );
        // Passing with nothing open pages nobody.
        assert_eq!(
            on_run_finished(&c, &s, &report(Verdict::Passed, 240))
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn reminders_and_escalation_re_page() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let s = spec(Some(3600));
        // A warning (infrastructure) pages mail only…
        assert_eq!(
            on_run_finished(&c, &s, &report(Verdict::Error, 0))
                .await
                .unwrap(),
            1
        );
        // …then the backup turns out broken: escalated, pages critical routes.
        assert_eq!(
            on_run_finished(&c, &s, &report(Verdict::Failed, 60))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            on_run_finished(&c, &s, &report(Verdict::Failed, 120))
                .await
                .unwrap(),
            0
        );
        // After the reminder interval it pages again.
        assert_eq!(
            on_run_finished(&c, &s, &report(Verdict::Failed, 60 + 3600))
                .await
                .unwrap(),
            2
        );
    }

    #[test]
    fn page_text_names_stage_error_and_hint() {
        let r = report(Verdict::Failed, 0);
        let p = Page::from_report(
            &r,
            PageKind::Trigger,
            Severity::Critical,
            Some("https://fd.example.com/"),
            r.finished_at,
        );
        let t = p.text();
        assert!(
            t.starts_with("[firedrill critical] drill shop failed at restore"),
            "{t}"
        );
        assert!(t.contains("error: artifact hash mismatch"));
        assert!(t.contains("hint: drill an earlier one"));
        assert!(t.contains("report: https://fd.example.com/runs/r0"));
    }
}
