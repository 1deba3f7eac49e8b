//! The HTTP channels: a signed generic webhook (firedrill's page, or a body from the
//! user's template), Slack, PagerDuty Events v2, Alertmanager. The chat services' own
//! payloads are in `chat.rs`; both post through [`post`].

use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::{BodyTemplate, Digest, Notifier, Page, PageKind, TemplateField, WebhookConfig};
use crate::error::{Error, Result};
use crate::secret::Secret;

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("firedrill/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS backend is compiled in")
}

/// Posts and classifies the answer: 2xx is delivered; 408, 429 and 5xx are worth a retry;
/// other 4xx say the request itself is wrong.
pub(super) async fn post(name: &str, req: reqwest::RequestBuilder, what: &str) -> Result<()> {
    // reqwest's errors quote the URL, and URLs carry tokens: never shown.
    let resp = req.send().await.map_err(|e| {
        let e = e.without_url();
        // reqwest says "error sending request"; the OS's reason (refused, no such host,
        // timed out) is an io::Error down its chain of causes.
        let mut chain = e.to_string();
        let mut io = None;
        let mut next = std::error::Error::source(&e);
        while let Some(cause) = next {
            io = io.or_else(|| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .map(|i| i.to_string())
            });
            chain = format!("{chain}: {cause}");
            next = cause.source();
        }
        let why = io.unwrap_or(chain);
        Error::infra(format!("channel {name}: {what} unreachable: {why}"))
            .with_hint("the outbox retries until the receiver is back")
            .retryable(true)
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let retry = status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408;
    Err(
        Error::infra(format!("channel {name}: {what} answered {status}: {body}"))
            .with_hint(if retry {
                "the receiver is failing or throttling; the outbox retries"
            } else {
                "the receiver refused the request: check the channel's URL and credentials"
            })
            .retryable(retry),
    )
}

/// The HMAC-SHA256 signature header value for a body sent at unix time `t`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub struct WebhookNotifier {
    name: String,
    url: String,
    secret: Option<Secret>,
    headers: Vec<(String, String)>,
    template: Option<BodyTemplate>,
    http: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new(
        name: &str,
        cfg: &WebhookConfig,
        secret: Option<Secret>,
        template: Option<BodyTemplate>,
    ) -> Self {
        WebhookNotifier {
            name: name.into(),
            url: cfg.url.expose().to_string(),
            secret,
            headers: cfg
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            template,
            http: client(),
        }
    }

    /// Posts `body`, signed when the channel has a secret.
    async fn deliver(&self, event: &str, body: Vec<u8>) -> Result<()> {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-firedrill-event", event);
        if let Some(s) = &self.secret {
            req = req.header(
                "x-firedrill-signature",
                signature(
                    s.expose().as_bytes(),
                    jiff::Timestamp::now().as_second(),
                    &body,
                ),
            );
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        post(&self.name, req.body(body), "webhook").await
    }
}

/// A page's value for a template field (empty when the page has none).
pub fn page_field(page: &Page, f: TemplateField) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    match f {
        TemplateField::Title => page.title(),
        TemplateField::Text => page.text(),
        TemplateField::Summary => page.summary.clone(),
        TemplateField::Kind => page.kind.as_str().to_string(),
        TemplateField::Severity => page.severity.as_str().to_string(),
        TemplateField::Drill => page.drill.clone(),
        TemplateField::RunId => page.run_id.clone(),
        TemplateField::IncidentKey => page.incident_key.clone(),
        TemplateField::Stage => page
            .stage
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        TemplateField::Error => opt(&page.error),
        TemplateField::Hint => opt(&page.hint),
        TemplateField::Artifact => opt(&page.artifact),
        TemplateField::ReportUrl => opt(&page.report_url),
        TemplateField::At => page.at.to_string(),
        TemplateField::StartedAt => page.started_at.to_string(),
    }
}

/// A digest's value for a template field: its title, text and summary; `kind` is
/// `digest`; the fields of one drill's page are empty.
pub fn digest_field(d: &Digest, f: TemplateField) -> String {
    match f {
        TemplateField::Title => d.title(),
        TemplateField::Text => d.text(),
        TemplateField::Summary => d.summary(),
        TemplateField::Kind => "digest".into(),
        TemplateField::At => d.generated_at.to_string(),
        TemplateField::ReportUrl => d.base_url.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, page: &Page) -> Result<()> {
        let body = match &self.template {
            Some(t) => t.render(|f| page_field(page, f)).into_bytes(),
            None => serde_json::to_vec(page).map_err(|e| Error::internal(e.to_string()))?,
        };
        self.deliver(page.kind.as_str(), body).await
    }

    async fn send_digest(&self, digest: &Digest) -> Result<()> {
        let body = match &self.template {
            Some(t) => t.render(|f| digest_field(digest, f)).into_bytes(),
            None => serde_json::to_vec(digest).map_err(|e| Error::internal(e.to_string()))?,
        };
        self.deliver("digest", body).await
    }
}

pub struct SlackNotifier {
    name: String,
    url: Secret,
    http: reqwest::Client,
}

impl SlackNotifier {
    pub fn new(name: &str, url: Secret) -> Self {
        SlackNotifier {
            name: name.into(),
            url,
            http: client(),
        }
    }
}

/// Slack's Block Kit message for a page.
pub fn slack_body(page: &Page) -> Value {
    let mut fields = vec![json!({"type": "mrkdwn", "text": format!("*Drill*\n{}", page.drill)})];
    if let Some(s) = &page.stage {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Stage*\n{s}")}));
    }
    fields.push(json!({"type": "mrkdwn", "text": format!("*Run*\n{}", page.run_id)}));
    fields
        .push(json!({"type": "mrkdwn", "text": format!("*Severity*\n{}", page.severity.as_str())}));
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": page.title()}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": page.summary}, "fields": fields}),
    ];
    if let Some(e) = &page.error {
        let mut t = format!("*Error:* {e}");
        if let Some(h) = &page.hint {
            t.push_str(&format!("\n*Hint:* {h}"));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": t}}));
    }
    if let Some(u) = &page.report_url {
        blocks.push(json!({"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open the report"}, "url": u}]}));
    }
    json!({"text": page.title(), "blocks": blocks})
}

/// Slack's Block Kit message for a digest: a section per drill (Slack takes 50 blocks).
pub fn slack_digest_body(d: &Digest) -> Value {
    const MAX_DRILLS: usize = 45;
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": super::clip(&d.title(), 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": d.summary()}}),
    ];
    for dr in d.drills.iter().take(MAX_DRILLS) {
        let mut t = format!("*{}*", dr.headline());
        for (k, v) in dr.facts(d) {
            t.push_str(&format!("\n*{k}:* {v}"));
        }
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": super::clip(&t, 3000)}}),
        );
    }
    if d.drills.len() > MAX_DRILLS {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("…and {} more drills: `firedrill list` shows them all", d.drills.len() - MAX_DRILLS)}]}));
    }
    json!({"text": d.title(), "blocks": blocks})
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, page: &Page) -> Result<()> {
        post(
            &self.name,
            self.http.post(self.url.expose()).json(&slack_body(page)),
            "Slack",
        )
        .await
    }

    async fn send_digest(&self, digest: &Digest) -> Result<()> {
        post(
            &self.name,
            self.http
                .post(self.url.expose())
                .json(&slack_digest_body(digest)),
            "Slack",
        )
        .await
    }
}

pub struct PagerDutyNotifier {
    name: String,
    routing_key: Secret,
    url: String,
    http: reqwest::Client,
}

impl PagerDutyNotifier {
    pub fn new(name: &str, routing_key: Secret, url: Option<String>) -> Self {
        PagerDutyNotifier {
            name: name.into(),
            routing_key,
            url: url.unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".into()),
            http: client(),
        }
    }
}

/// A PagerDuty Events API v2 event: trigger, or resolve with the same dedup_key.
pub fn pagerduty_body(page: &Page, routing_key: &str) -> Value {
    let action = match page.kind {
        PageKind::Resolve => "resolve",
        _ => "trigger",
    };
    let mut v = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": page.incident_key,
    });
    if action == "trigger" {
        v["payload"] = json!({
            "summary": page.title(),
            "source": "firedrill",
            "severity": page.severity.as_str(),
            "component": page.drill,
            "group": page.stage.map(|s| s.as_str()).unwrap_or_default(),
            "class": "backup-drill",
            "timestamp": page.at.to_string(),
            "custom_details": {
                "run_id": page.run_id,
                "error": page.error,
                "hint": page.hint,
                "artifact": page.artifact,
                "stderr_tail": page.stderr_tail,
            },
        });
        if let Some(u) = &page.report_url {
            v["links"] = json!([{"href": u, "text": "firedrill report"}]);
        }
    }
    v
}

#[async_trait]
impl Notifier for PagerDutyNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, page: &Page) -> Result<()> {
        let body = pagerduty_body(page, self.routing_key.expose());
        post(
            &self.name,
            self.http.post(&self.url).json(&body),
            "PagerDuty",
        )
        .await
    }
}

pub struct AlertmanagerNotifier {
    name: String,
    urls: Vec<String>,
    http: reqwest::Client,
}

impl AlertmanagerNotifier {
    pub fn new(name: &str, urls: Vec<String>) -> Self {
        AlertmanagerNotifier {
            name: name.into(),
            urls,
            http: client(),
        }
    }
}

/// One Alertmanager API v2 alert. A trigger carries an explicit far `endsAt` (firedrill
/// does not re-send like Prometheus, and Alertmanager would otherwise resolve it after its
/// resolve_timeout); a resolve sets `endsAt` to now.
pub fn alertmanager_body(page: &Page) -> Value {
    let ends = match page.kind {
        // Never in the future, or Alertmanager would keep it firing until then.
        PageKind::Resolve => page.at.min(jiff::Timestamp::now()),
        _ => page
            .at
            .checked_add(jiff::SignedDuration::from_hours(24 * 30))
            .unwrap_or(page.at),
    };
    let mut alert = json!({
        "labels": {
            "alertname": "FiredrillDrillFailed",
            "drill": page.drill,
            "stage": page.stage.map(|s| s.as_str()).unwrap_or_default(),
            "severity": page.severity.as_str(),
        },
        "annotations": {
            "summary": page.title(),
            "description": page.summary,
            "error": page.error.clone().unwrap_or_default(),
            "hint": page.hint.clone().unwrap_or_default(),
            "run_id": page.run_id,
        },
        "startsAt": page.started_at.to_string(),
        "endsAt": ends.to_string(),
    });
    if let Some(u) = &page.report_url {
        alert["generatorURL"] = json!(u);
    }
    json!([alert])
}

#[async_trait]
impl Notifier for AlertmanagerNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    /// Every Alertmanager of the cluster gets the alert; delivered when at least one took it.
    async fn send(&self, page: &Page) -> Result<()> {
        let body = alertmanager_body(page);
        let mut last = None;
        let mut ok = 0;
        for u in &self.urls {
            let url = format!("{}/api/v2/alerts", u.trim_end_matches('/'));
            match post(
                &self.name,
                self.http.post(&url).json(&body),
                &format!("Alertmanager {}", crate::secret::redact_url(u)),
            )
            .await
            {
                Ok(()) => ok += 1,
                Err(e) => last = Some(e),
            }
        }
        match (ok, last) {
            (0, Some(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_stable() {
        assert_eq!(
            signature(b"secret", 1_700_000_000, b"{}"),
            "t=1700000000,v1=".to_string()
                + &{
                    let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
                    mac.update(b"1700000000.{}");
                    hex::encode(mac.finalize().into_bytes())
                }
        );
    }
}
