//! Paging: every failed drill reaches a human once, through the channels teams use.
//!
//! A finished run goes through [`on_run_finished`]: a backup that is broken pages at once
//! as critical; a drill that could not run (its infrastructure steps already retried)
//! pages as a warning. One incident per drill until it passes again: repeated failures do
//! not re-page (unless the reminder interval passed), and the first pass sends a resolve
//! to every channel that was paged. Every notification is written to the catalog's outbox
//! before it is sent and retried with backoff until delivered or expired, so nothing is
//! lost while a receiver is down, across restarts too.
//!
//! The channels are the ones teams read: email, Slack, Microsoft Teams, Discord,
//! Telegram, Mattermost and Google Chat, each in its service's own payload; PagerDuty and
//! Alertmanager for incident systems; a signed webhook whose body can be a template. The
//! same channels carry the scheduled [`digest`] of every drill.

mod chat;
pub mod digest;
mod email;
mod http;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Incident, IncidentChange, PagePlan, QueuedPage};
pub use crate::config::notify::*;
use crate::error::{Error, Result};
use crate::report::RunReport;
use crate::secret::{SecretRef, SecretSource};
use crate::status::RunStatus;
pub use crate::status::{PageKind, Severity};

pub use chat::{
    DiscordNotifier, GoogleChatNotifier, MattermostNotifier, TeamsNotifier, TelegramNotifier,
};
pub use digest::Digest;
pub use email::EmailNotifier;
pub use http::{AlertmanagerNotifier, PagerDutyNotifier, SlackNotifier, WebhookNotifier};

/// `s` cut to at most `max` characters, with `…` where it was cut (chat services refuse
/// messages over their limits).
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
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
    pub stage: Option<crate::status::Stage>,
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
                self.stage.map(|s| format!(" at {s}")).unwrap_or_default()
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
            line("failing stage", s.as_str());
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
                .map(|(s, ms)| format!("{s} {}", crate::human::human_ms(*ms)))
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

    /// Label and value of each thing the page says, for channels that lay them out as
    /// fields. A resolve says what was failing and since when, not an error.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("Drill", self.drill.clone()), ("Run", self.run_id.clone())];
        match self.kind {
            PageKind::Resolve => {
                f.push(("Status", "resolved: the drill passed again".into()));
                if let Some(s) = self.stage {
                    f.push(("Was failing at", s.as_str().to_string()));
                }
                f.push(("Incident opened", self.started_at.to_string()));
            }
            PageKind::Trigger | PageKind::Test => {
                f.push(("Severity", self.severity.as_str().to_string()));
                if let Some(s) = self.stage {
                    f.push(("Failing stage", s.as_str().to_string()));
                }
                if let Some(e) = &self.error {
                    f.push(("Error", e.clone()));
                }
                if let Some(h) = &self.hint {
                    f.push(("Hint", h.clone()));
                }
            }
        }
        if let Some(a) = &self.artifact {
            f.push(("Artifact", a.clone()));
        }
        if !self.durations_ms.is_empty() {
            let d: Vec<String> = self
                .durations_ms
                .iter()
                .map(|(s, ms)| format!("{s} {}", crate::human::human_ms(*ms)))
                .collect();
            f.push(("Stages", d.join(", ")));
        }
        f
    }

    /// Builds the page for a finished run.
    pub fn from_report(
        r: &RunReport,
        kind: PageKind,
        severity: Severity,
        base_url: Option<&str>,
        started_at: jiff::Timestamp,
    ) -> Page {
        let summary = match (kind, r.status()) {
            (PageKind::Resolve, _) => {
                format!("The backup of {} restored and verified again.", r.drill)
            }
            (_, RunStatus::Failed) => {
                "The backup did not survive its fire drill: it cannot be trusted to restore."
                    .to_string()
            }
            (_, RunStatus::Lost) => {
                "The fire drill was lost with the process running it, so the backup is unproven."
                    .to_string()
            }
            (_, RunStatus::Passed) => "The drill passed.".to_string(),
            _ => "The fire drill could not run, so the backup is unproven. Retries were spent."
                .to_string(),
        };
        Page {
            schema: PAGE_SCHEMA.into(),
            kind,
            severity,
            drill: r.drill.clone(),
            run_id: r.run_id.clone(),
            incident_key: format!("firedrill/{}", r.drill),
            summary,
            stage: r.failed_stage,
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
    /// Delivers a digest of every drill. Incident systems (PagerDuty, Alertmanager) take
    /// pages only, and validation keeps digests from them.
    async fn send_digest(&self, digest: &Digest) -> Result<()> {
        let _ = digest;
        Err(Error::config(format!(
            "channel {}: this kind of channel takes pages, not digests",
            self.name()
        ))
        .with_hint("send [notify.digest] to a chat, email or webhook channel"))
    }
}

fn load(r: &SecretRef, base: &std::path::Path, what: &str) -> Result<crate::secret::Secret> {
    let src: SecretSource = r.validate().map_err(Error::config)?;
    src.load(base).map_err(|e| e.context(what.to_string()))
}

/// A webhook URL read from its secret reference, and held: its key or token (in the
/// path or the query) is scrubbed from whatever prints it.
fn webhook_url(r: &SecretRef, base: &std::path::Path, name: &str) -> Result<crate::secret::Secret> {
    let url = load(r, base, &format!("channel {name} webhook_url"))?;
    crate::secret::hold_url(url.expose());
    Ok(url)
}

/// Builds every configured channel (reads their secrets).
pub fn build_notifiers(
    spec: &NotifySpec,
    base: &std::path::Path,
) -> Result<Vec<Arc<dyn Notifier>>> {
    let mut out: Vec<Arc<dyn Notifier>> = Vec::new();
    for (name, kind) in &spec.channels {
        // URLs carry tokens (in the query, or the path): held, so that nothing prints them.
        if let crate::config::notify::Endpoint::Http(urls) = kind.endpoint() {
            for u in urls {
                crate::secret::hold_url(&u);
            }
        }
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
                let template = match (&w.template, spec.templates.get(name)) {
                    (None, _) => None,
                    (Some(_), Some(t)) => Some(t.clone()),
                    // A spec put together without validate(): checked now.
                    (Some(t), None) => Some(
                        BodyTemplate::parse(t)
                            .map_err(|m| Error::config(format!("channel {name} template: {m}")))?,
                    ),
                };
                Arc::new(WebhookNotifier::new(name, w, secret, template))
            }
            ChannelKind::Slack(s) => Arc::new(SlackNotifier::new(
                name,
                webhook_url(&s.webhook_url, base, name)?,
            )),
            ChannelKind::Teams(t) => Arc::new(TeamsNotifier::new(
                name,
                webhook_url(&t.webhook_url, base, name)?,
            )),
            ChannelKind::Discord(d) => Arc::new(DiscordNotifier::new(
                name,
                webhook_url(&d.webhook_url, base, name)?,
                d.username.clone(),
            )),
            ChannelKind::Mattermost(m) => Arc::new(MattermostNotifier::new(
                name,
                webhook_url(&m.webhook_url, base, name)?,
                m,
            )),
            ChannelKind::GoogleChat(g) => Arc::new(GoogleChatNotifier::new(
                name,
                webhook_url(&g.webhook_url, base, name)?,
            )),
            ChannelKind::Telegram(t) => {
                let token = load(&t.bot_token, base, &format!("channel {name} bot_token"))?;
                Arc::new(TelegramNotifier::new(name, t, token))
            }
            ChannelKind::Pagerduty(d) => Arc::new(PagerDutyNotifier::new(
                name,
                load(&d.routing_key, base, &format!("channel {name} routing_key"))?,
                d.events_url.as_ref().map(|u| u.expose().to_string()),
            )),
            ChannelKind::Alertmanager(a) => Arc::new(AlertmanagerNotifier::new(
                name,
                a.urls.iter().map(|u| u.expose().to_string()).collect(),
            )),
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

/// Decides what to page about a finished run ([`RunStatus::page`]) given the drill's open
/// incident: a trigger for a run that pages (once per incident, again when it escalates or
/// the reminder is due), a resolve to every channel paged when a run passes, nothing for a
/// run an operator or a shutdown stopped. Pure: [`Catalog::record_pages`] applies it.
pub fn plan_pages(spec: &NotifySpec, open: Option<&Incident>, r: &RunReport) -> Result<PagePlan> {
    let now = r.finished_at;
    let status = r.status();
    let mut plan = PagePlan::default();
    let queue = |plan: &mut PagePlan, ch: &str, kind: PageKind, body: &str| {
        plan.pages.push(QueuedPage {
            page_id: format!("{}/{}/{ch}", r.run_id, kind.as_str()),
            channel: ch.to_string(),
            drill: r.drill.clone(),
            kind,
            payload: body.to_string(),
            at: jiff::Timestamp::now(),
            delivered: false,
        })
    };
    match (status.page(), open) {
        (None, Some(inc)) if status.resolves() => {
            let mut page = Page::from_report(
                r,
                PageKind::Resolve,
                inc.severity,
                spec.base_url.as_deref(),
                inc.opened_at,
            );
            // The resolve names the alert it ends (Alertmanager matches on labels).
            page.stage = inc.stage;
            let body = serde_json::to_string(&page).map_err(|e| Error::internal(e.to_string()))?;
            for ch in &inc.channels {
                queue(&mut plan, ch, PageKind::Resolve, &body);
            }
            plan.incident = IncidentChange::Close(r.drill.clone());
        }
        (None, _) => {}
        (Some(sev), open) => {
            let (page_now, opened_at, mut channels) = match open {
                None => (true, now, Vec::new()),
                Some(inc) => {
                    let escalated = sev > inc.severity;
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
                    queue(&mut plan, ch, PageKind::Trigger, &body);
                    if !channels.contains(ch) {
                        channels.push(ch.clone());
                    }
                }
                let severity = open.map(|i| i.severity.max(sev)).unwrap_or(sev);
                plan.incident = IncidentChange::Put(Incident {
                    drill: r.drill.clone(),
                    opened_at,
                    last_paged_at: now,
                    severity,
                    stage: r.failed_stage,
                    run_id: r.run_id.clone(),
                    channels,
                });
            }
        }
    }
    Ok(plan)
}

/// Pages about a finished run as [`plan_pages`] decides, against the catalog's incident,
/// and puts it in the outbox (one transaction). Returns how many notifications were queued.
pub async fn on_run_finished(
    catalog: &dyn Catalog,
    spec: &NotifySpec,
    r: &RunReport,
) -> Result<usize> {
    let open = catalog.incident(&r.drill).await?;
    let plan = plan_pages(spec, open.as_ref(), r)?;
    catalog.record_pages(&plan).await
}

/// What one delivery pass did.
#[derive(Debug, Default, Serialize)]
pub struct Delivery {
    pub sent: usize,
    pub retrying: usize,
    pub expired: usize,
    /// The delivery pass ran out of time; what it did not reach stays queued.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
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
    // Each notification is claimed before it is sent, one at a time: another process
    // sharing the catalog (a daemon, a `notify flush`) does not send it too, and one that
    // dies mid-send leaves it due again once the claim runs out.
    let hold = now
        .checked_add(jiff::SignedDuration::from_secs(300))
        .unwrap_or(now);
    let mut after = 0;
    for _ in 0..200 {
        let Some(item) = catalog.claim_due(due_by, after, hold).await? else {
            break;
        };
        after = item.id;
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
                // Stored in the catalog and listed by `notify outbox`: no secret in it.
                let err = match outcome {
                    Ok(Err(e)) => crate::secret::scrub(&e.to_string()).into_owned(),
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

/// The channels of one process, built once (their secrets read), and the paging of
/// finished runs through them: the same for the CLI and the daemon.
pub struct Pager {
    pub spec: NotifySpec,
    pub notifiers: Vec<Arc<dyn Notifier>>,
}

/// What paging about one run did.
#[derive(Debug, Default, Serialize)]
pub struct Paged {
    /// Notifications queued in the outbox (or sent directly, without a catalog).
    pub queued: usize,
    pub delivery: Delivery,
}

impl Pager {
    /// Builds every configured channel; `None` when there are none.
    pub fn new(spec: &NotifySpec, base: &std::path::Path) -> Result<Option<Pager>> {
        if spec.channels.is_empty() {
            return Ok(None);
        }
        Ok(Some(Pager {
            spec: spec.clone(),
            notifiers: build_notifiers(spec, base)?,
        }))
    }

    /// Pages about a finished run as [`RunStatus::page`] says, then delivers what is due
    /// (within `limit`; the rest stays queued). Without a catalog there is no outbox and
    /// no incident to dedupe against: a run that pages is sent straight to its channels,
    /// so that a failed step pages even then.
    pub async fn page(
        &self,
        catalog: Option<&dyn Catalog>,
        r: &RunReport,
        limit: Duration,
    ) -> Result<Paged> {
        let Some(catalog) = catalog else {
            return self.page_directly(r).await;
        };
        let queued = on_run_finished(catalog, &self.spec, r).await?;
        let delivery =
            match tokio::time::timeout(limit, deliver_due(catalog, &self.spec, &self.notifiers))
                .await
            {
                Ok(d) => d?,
                Err(_) => Delivery {
                    timed_out: true,
                    ..Delivery::default()
                },
            };
        Ok(Paged { queued, delivery })
    }

    /// Sends a plan's pages straight to their channels, for when the catalog cannot take
    /// them: each one delivered is marked so (it goes into the outbox as sent when the
    /// catalog catches up; the others are queued then and retried).
    pub async fn deliver_plan_directly(&self, plan: &mut PagePlan) -> Delivery {
        let mut d = Delivery::default();
        for p in plan.pages.iter_mut().filter(|p| !p.delivered) {
            let Some(n) = self.notifiers.iter().find(|n| n.name() == p.channel) else {
                continue;
            };
            let Ok(page) = serde_json::from_str::<Page>(&p.payload) else {
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(30), n.send(&page)).await {
                Ok(Ok(())) => {
                    p.delivered = true;
                    d.sent += 1;
                }
                Ok(Err(e)) => {
                    tracing::error!(channel = %p.channel, "page not delivered directly (kept to retry once the catalog takes it): {e}");
                    d.retrying += 1;
                }
                Err(_) => {
                    tracing::error!(channel = %p.channel, "page not delivered within 30s (kept to retry once the catalog takes it)");
                    d.retrying += 1;
                }
            }
        }
        d
    }

    async fn page_directly(&self, r: &RunReport) -> Result<Paged> {
        let Some(sev) = r.status().page() else {
            return Ok(Paged::default());
        };
        let page = Page::from_report(
            r,
            PageKind::Trigger,
            sev,
            self.spec.base_url.as_deref(),
            r.finished_at,
        );
        let mut paged = Paged::default();
        for name in route(&self.spec, &r.drill, sev) {
            let Some(n) = self.notifiers.iter().find(|n| n.name() == name) else {
                continue;
            };
            paged.queued += 1;
            match tokio::time::timeout(Duration::from_secs(30), n.send(&page)).await {
                Ok(Ok(())) => paged.delivery.sent += 1,
                Ok(Err(e)) => {
                    tracing::error!(channel = %name, "page not delivered (no catalog to keep it for a retry): {e}");
                    paged.delivery.expired += 1;
                }
                Err(_) => {
                    tracing::error!(channel = %name, "page not delivered within 30s (no catalog to keep it for a retry)");
                    paged.delivery.expired += 1;
                }
            }
        }
        Ok(paged)
    }
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
    use crate::error::ErrorKind;
    use crate::report::{ErrorReport, Stage};
    use crate::status::Verdict;

    fn report(verdict: Verdict, at: i64) -> RunReport {
        let kind = match verdict {
            Verdict::Failed => ErrorKind::Backup,
            _ => ErrorKind::Infrastructure,
        };
        stopped_by(verdict, kind, at)
    }

    fn stopped_by(verdict: Verdict, kind: ErrorKind, at: i64) -> RunReport {
        let ts = jiff::Timestamp::from_second(1_800_000_000 + at).unwrap();
        RunReport {
            verdict,
            exit_code: verdict.exit_code(),
            failed_stage: (verdict != Verdict::Passed).then_some(Stage::Restore),
            error: (verdict != Verdict::Passed).then(|| ErrorReport {
                kind,
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

    /// An operator's cancel and a shutdown page nobody and resolve nothing; a run lost
    /// with its process pages a warning.
    #[tokio::test]
    async fn stops_are_silent_and_a_lost_run_warns() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let s = spec(None);
        for kind in [ErrorKind::Cancelled, ErrorKind::Interrupted] {
            assert_eq!(
                on_run_finished(&c, &s, &stopped_by(Verdict::Error, kind, 0))
                    .await
                    .unwrap(),
                0,
                "{kind:?}"
            );
        }
        assert!(c.incident("shop").await.unwrap().is_none());
        assert_eq!(
            on_run_finished(&c, &s, &stopped_by(Verdict::Error, ErrorKind::Lost, 10))
                .await
                .unwrap(),
            1,
            "a warning, through the warning route"
        );
        // A stop does not resolve the open incident either: it proved nothing.
        on_run_finished(
            &c,
            &s,
            &stopped_by(Verdict::Error, ErrorKind::Interrupted, 20),
        )
        .await
        .unwrap();
        assert!(c.incident("shop").await.unwrap().is_some());
        let kinds: Vec<PageKind> = c.outbox(10).await.unwrap().iter().map(|o| o.kind).collect();
        assert_eq!(kinds, [PageKind::Trigger]);
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
