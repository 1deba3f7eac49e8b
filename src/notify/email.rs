//! Email over SMTP (lettre): implicit TLS, STARTTLS or plain for local relays.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Digest, EmailConfig, Notifier, Page, SmtpTls};
use crate::error::{Error, Result};
use crate::secret::Secret;

pub struct EmailNotifier {
    name: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    server: String,
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl EmailNotifier {
    pub fn new(name: &str, cfg: &EmailConfig, password: Option<Secret>) -> Result<Self> {
        let bad = |e: lettre::transport::smtp::Error| {
            Error::config(format!("channel {name}: SMTP server {}: {e}", cfg.host))
        };
        let mut b = match cfg.tls {
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host)
                .map_err(bad)?
                .port(cfg.port.unwrap_or(465)),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)
                .map_err(bad)?
                .port(cfg.port.unwrap_or(587)),
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
                .port(cfg.port.unwrap_or(25)),
        };
        if let (Some(u), Some(p)) = (&cfg.username, &password) {
            b = b.credentials(Credentials::new(u.clone(), p.expose().to_string()));
        }
        let transport = b.timeout(Some(Duration::from_secs(20))).build();
        let parse = |a: &str| {
            a.parse::<Mailbox>().map_err(|e| {
                Error::config(format!(
                    "channel {name}: `{a}` is not an email address: {e}"
                ))
            })
        };
        Ok(EmailNotifier {
            name: name.to_string(),
            transport,
            from: parse(&cfg.from)?,
            to: cfg.to.iter().map(|a| parse(a)).collect::<Result<_>>()?,
            server: format!("{}:{}", cfg.host, cfg.port.unwrap_or(0)),
        })
    }
}

fn html(page: &Page) -> String {
    let mut rows = String::new();
    let mut row = |k: &str, v: &str| {
        rows.push_str(&format!(
            "<tr><th align=left>{}</th><td>{}</td></tr>",
            html_escape(k),
            html_escape(v)
        ))
    };
    row("Drill", &page.drill);
    row("Run", &page.run_id);
    if let Some(s) = &page.stage {
        row("Failing stage", s.as_str());
    }
    if let Some(e) = &page.error {
        row("Error", e);
    }
    if let Some(h) = &page.hint {
        row("Hint", h);
    }
    if let Some(a) = &page.artifact {
        row("Artifact", a);
    }
    let link = page
        .report_url
        .as_ref()
        .map(|u| format!("<p><a href=\"{0}\">{0}</a></p>", html_escape(u)))
        .unwrap_or_default();
    let tail = page
        .stderr_tail
        .as_ref()
        .map(|t| format!("<h3>Tool output</h3><pre>{}</pre>", html_escape(t)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><body><h2>{}</h2><p>{}</p><table>{rows}</table>{link}{tail}</body></html>",
        html_escape(&page.title()),
        html_escape(&page.summary)
    )
}

fn digest_html(d: &Digest) -> String {
    let mut rows = String::new();
    for dr in &d.drills {
        let facts: Vec<String> = dr
            .facts(d)
            .into_iter()
            .map(|(_, v)| format!("<td>{}</td>", html_escape(&v)))
            .collect();
        rows.push_str(&format!(
            "<tr><th align=left>{}</th>{}</tr>",
            html_escape(&dr.headline()),
            facts.join("")
        ));
    }
    format!(
        "<!doctype html><html><body><h2>{}</h2><p>{}</p><table border=1 cellpadding=4 cellspacing=0><tr><th>Drill</th><th>Last run</th><th>Last success</th><th>RPO</th><th>RTO</th><th>Verified</th></tr>{rows}</table></body></html>",
        html_escape(&d.title()),
        html_escape(&d.summary())
    )
}

impl EmailNotifier {
    async fn mail(&self, subject: String, text: String, html: String) -> Result<()> {
        let mut m = Message::builder().from(self.from.clone()).subject(subject);
        for t in &self.to {
            m = m.to(t.clone());
        }
        let msg = m
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| Error::internal(format!("building the email: {e}")))?;
        self.transport.send(msg).await.map(|_| ()).map_err(|e| {
            let permanent = e.is_permanent();
            Error::infra(format!("channel {}: SMTP {}: {e}", self.name, self.server))
                .with_hint(if permanent {
                    "the server refused the message: check from/to addresses and credentials"
                } else {
                    "the mail server is unreachable or busy; the outbox retries"
                })
                .retryable(!permanent)
        })
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, page: &Page) -> Result<()> {
        self.mail(page.title(), page.text(), html(page)).await
    }

    async fn send_digest(&self, digest: &Digest) -> Result<()> {
        self.mail(digest.title(), digest.text(), digest_html(digest))
            .await
    }
}
