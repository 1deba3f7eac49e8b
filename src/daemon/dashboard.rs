//! The dashboard: whether each drill's backups restore, at a glance, as server-rendered
//! HTML at `/` (drills and their objectives), `/drills/{name}` (history and trends) and
//! `/runs/{id}` (one run, stage by stage).
//!
//! There is no script anywhere, and a Content-Security-Policy forbids any: the pages work
//! with JavaScript off, and nothing a drill file or a database tool wrote into a report
//! can run in the browser (every interpolated string is escaped as well). Charts are
//! inline SVG; a page that shows a run in progress refreshes itself with a `<meta>` tag.
//!
//! Access is the API's: open when the daemon has no token or `[daemon] dashboard_public =
//! true`; otherwise the bearer token, or a session cookie from the form at `/login`. The
//! cookie is a random id, never the token; the catalog keeps its hash, the token it was
//! opened with (keyed) and its expiry, so a logout holds for every daemon sharing the
//! catalog, and a new token ends every session. Failed logins count against the client
//! like wrong bearer tokens (`auth::Throttle`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::auth::{bearer, client_ip, constant_time_eq, too_many};
use super::{Daemon, RunEvent};
use crate::catalog::{ArtifactRecord, RunRecord};
use crate::config::Drill;
use crate::human::{human_bytes, human_ms};
use crate::render::chart::{time_series_svg, Series, Target, Unit};
use crate::render::html::{
    assertion_table, error_box, fingerprint, stage_table, summary, time as utc, CSS,
};
use crate::render::{html, stage_timeline_svg, verdict_sentence};
use crate::report::RunReport;
use crate::status::RunStatus;

const COOKIE: &str = "firedrill_session";
/// How long a login lasts.
const SESSION_SECS: i64 = 12 * 3600;
/// Styles inline, forms to this origin, and nothing else: no script, no frame, no fetch.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
/// The same in the page, for a saved copy (a `<meta>` policy cannot hold frame-ancestors).
const META_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'";
/// Runs read per drill: the history shown and the trends drawn.
const HISTORY: usize = 200;

/// The dashboard's state: the daemon (its catalog keeps the sessions).
struct Dashboard {
    daemon: Arc<Daemon>,
}

/// Who is looking, as far as the pages care: whether to offer "log out".
#[derive(Debug, Clone, Copy)]
struct Viewer {
    session: bool,
}

/// How a request to a dashboard page is let in, or not.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    /// No token needed (no token configured, or `dashboard_public`).
    Open,
    Bearer,
    Session,
    /// An Authorization header with the wrong token: a program, so 401 rather than a form.
    WrongBearer,
    /// Neither header nor valid cookie: a browser, sent to the login form.
    Anonymous,
}

pub(super) fn router(daemon: Arc<Daemon>) -> Router<Arc<Daemon>> {
    let dash = Arc::new(Dashboard { daemon });
    let pages = Router::new()
        .route("/", get(index))
        .route("/drills/{name}", get(drill_page))
        .route("/runs/{id}", get(run_page))
        .route_layer(middleware::from_fn_with_state(dash.clone(), require_login));
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        // Browsers ask for it on every page; an empty answer keeps the logs quiet.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .merge(pages)
        .layer(middleware::map_response(security_headers))
        .with_state(dash)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Pages show the state of backups: never from a cache, never kept by a proxy.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl Dashboard {
    /// The token pages need, if they need one.
    fn required_token(&self) -> Option<&str> {
        if self.daemon.config.daemon.dashboard_public {
            return None;
        }
        self.daemon.token().map(|t| t.expose())
    }

    async fn access(&self, headers: &HeaderMap, now: i64) -> Access {
        let Some(token) = self.required_token() else {
            return Access::Open;
        };
        if headers.contains_key(header::AUTHORIZATION) {
            let given = bearer(headers).unwrap_or("");
            return if constant_time_eq(given.as_bytes(), token.as_bytes()) {
                Access::Bearer
            } else {
                Access::WrongBearer
            };
        }
        let Some(value) = cookie(headers, COOKIE) else {
            return Access::Anonymous;
        };
        match self.daemon.catalog.session(&session_hash(value)).await {
            Ok(Some(s)) if session_valid(&s, token, now) => Access::Session,
            Ok(_) => Access::Anonymous,
            Err(e) => {
                tracing::warn!("dashboard session lookup: {e}");
                Access::Anonymous
            }
        }
    }

    /// Browsers reach the daemon over HTTPS: cookies must say `Secure`.
    fn https(&self, headers: &HeaderMap) -> bool {
        let d = &self.daemon.config.daemon;
        d.tls.is_some()
            || d.behind_https_proxy
            || headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    }
}

/// What the catalog keeps of a session cookie: its SHA-256. The cookie is 32 random
/// bytes, so no salt is needed.
fn session_hash(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

/// Which token a session was opened with, without keeping the token: an HMAC of it.
fn token_tag(token: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(b"firedrill dashboard session v2")
        .expect("HMAC takes any key");
    m.update(token.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A new session for `token`: the cookie's value and the record the catalog keeps.
fn new_session(token: &str, now: i64) -> (String, crate::catalog::Session) {
    let mut id = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let value = hex::encode(id);
    let record = crate::catalog::Session {
        id_hash: session_hash(&value),
        token_tag: token_tag(token),
        expires_at: now + SESSION_SECS,
    };
    (value, record)
}

fn session_valid(s: &crate::catalog::Session, token: &str, now: i64) -> bool {
    s.expires_at > now
        && s.expires_at <= now + SESSION_SECS
        && constant_time_eq(s.token_tag.as_bytes(), token_tag(token).as_bytes())
}

/// A cookie's value from the request's Cookie headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn require_login(
    State(dash): State<Arc<Dashboard>>,
    mut req: Request,
    next: Next,
) -> Response {
    let now = jiff::Timestamp::now().as_second();
    match dash.access(req.headers(), now).await {
        Access::Open | Access::Bearer => {
            req.extensions_mut().insert(Viewer { session: false });
            next.run(req).await
        }
        Access::Session => {
            req.extensions_mut().insert(Viewer { session: true });
            next.run(req).await
        }
        Access::WrongBearer => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "",
        )
            .into_response(),
        Access::Anonymous => {
            let back = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let to = if back == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", pct(back, b"/"))
            };
            Redirect::to(&to).into_response()
        }
    }
}

/// Where to go after logging in: a path on this site, or `/`. Never another origin
/// (`//evil.example`, `/\evil.example`), never back to the form.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.starts_with("/login")
        && next.bytes().all(|b| b.is_ascii_graphic());
    if local {
        next
    } else {
        "/"
    }
}

/// Percent-encodes everything but unreserved characters and those in `keep`.
fn pct(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A link to a drill or run page, escaped for an attribute.
fn href(kind: &str, id: &str) -> String {
    html(&format!("/{kind}/{}", pct(id, b"")))
}

#[derive(Debug, Default, Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

async fn login_form(State(dash): State<Arc<Dashboard>>, Query(q): Query<NextQuery>) -> Response {
    if dash.required_token().is_none() {
        return Redirect::to(safe_next(&q.next)).into_response();
    }
    Html(login_page(&q.next, None)).into_response()
}

async fn login(
    State(dash): State<Arc<Dashboard>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let Some(token) = dash.required_token() else {
        return Redirect::to(safe_next(&f.next)).into_response();
    };
    let client = client_ip(&dash.daemon, peer.map(|p| (p.0).0), &headers);
    if let Some(wait) = dash.daemon.throttle.refused(client) {
        return too_many(wait);
    }
    if !constant_time_eq(f.token.trim().as_bytes(), token.as_bytes()) {
        dash.daemon.throttle.failed(client);
        tracing::warn!("dashboard login with a wrong token from {client}");
        // Slows guessing down; other requests are not held up.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        return (
            StatusCode::UNAUTHORIZED,
            Html(login_page(&f.next, Some("That is not the daemon's token."))),
        )
            .into_response();
    }
    dash.daemon.throttle.succeeded(client);
    let (value, record) = new_session(token, jiff::Timestamp::now().as_second());
    if let Err(e) = dash.daemon.catalog.put_session(&record).await {
        tracing::warn!("dashboard login not recorded: {e}");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(login_page(
                &f.next,
                Some("The login could not be recorded in the catalog; try again, or use the API with the token."),
            )),
        )
            .into_response();
    }
    // Secure whenever the browser comes over HTTPS (the daemon's TLS, or a proxy's); a
    // plain-HTTP daemon on a private network would never get a Secure cookie back.
    let https = dash.https(&headers);
    let set = format!(
        "{COOKIE}={value}; Path=/; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Strict{}",
        if https { "; Secure" } else { "" }
    );
    (
        [(header::SET_COOKIE, set)],
        Redirect::to(safe_next(&f.next)),
    )
        .into_response()
}

/// Ends the session for good (in the catalog, for every daemon), not only in this browser.
async fn logout(State(dash): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if let Some(value) = cookie(&headers, COOKIE) {
        if let Err(e) = dash
            .daemon
            .catalog
            .revoke_session(&session_hash(value))
            .await
        {
            tracing::warn!("dashboard logout not recorded: {e}");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the logout could not be recorded in the catalog; try again\n",
            )
                .into_response();
        }
    }
    let secure = if dash.https(&headers) { "; Secure" } else { "" };
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

fn login_page(next: &str, problem: Option<&str>) -> String {
    let mut b = String::from("<main class=\"login\">\n<h1>Log in</h1>\n");
    b.push_str(
        "<p>The dashboard needs the daemon's API token (<code>[daemon] token</code>).</p>\n",
    );
    if let Some(p) = problem {
        let _ = writeln!(b, "<p class=\"problem\">{}</p>", html(p));
    }
    let _ = writeln!(
        b,
        "<form method=\"post\" action=\"/login\">\n\
         <input type=\"text\" name=\"user\" value=\"firedrill\" autocomplete=\"username\" hidden readonly>\n\
         <label for=\"token\">token</label>\n\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\n\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\n\
         <button type=\"submit\">Log in</button>\n</form>\n\
         <p class=\"null\">Programs send <code>Authorization: Bearer …</code> instead.</p>\n</main>",
        html(safe_next(next))
    );
    page("firedrill: log in", &[], &b, Options::default())
}

#[derive(Debug, Default, Clone, Copy)]
struct Options {
    /// Reload the page every this many seconds.
    refresh: Option<u32>,
    /// Offer "log out".
    logout: bool,
}

/// The page around a body: styles, the policy again (for a saved copy), the top bar.
fn page(title: &str, crumbs: &[(String, String)], body: &str, o: Options) -> String {
    let mut p = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    );
    let _ = writeln!(
        p,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        html(META_CSP)
    );
    if let Some(s) = o.refresh {
        let _ = writeln!(p, "<meta http-equiv=\"refresh\" content=\"{s}\">");
    }
    let _ = writeln!(
        p,
        "<title>{}</title>\n<style>{CSS}{DASH_CSS}</style>\n</head>\n<body>",
        html(title)
    );
    p.push_str("<nav class=\"top\"><a class=\"brand\" href=\"/\">firedrill</a>");
    for (link, text) in crumbs {
        let _ = write!(
            p,
            " <span class=\"sep\">/</span> <a href=\"{link}\">{}</a>",
            html(text)
        );
    }
    if o.logout {
        p.push_str(
            "<form class=\"logout\" method=\"post\" action=\"/logout\"><button type=\"submit\">log out</button></form>",
        );
    }
    p.push_str("</nav>\n");
    p.push_str(body);
    let _ = writeln!(
        p,
        "<footer>firedrill {} &middot; rendered {}</footer>\n</body>\n</html>",
        html(env!("CARGO_PKG_VERSION")),
        html(&utc(jiff::Timestamp::now()))
    );
    p
}

const DASH_CSS: &str = "
nav.top{display:flex;align-items:center;gap:.4rem;margin:0 0 1.2rem;padding-bottom:.6rem;border-bottom:1px solid #d0d7de}
nav.top a{color:#0969da;text-decoration:none}nav.top a:hover{text-decoration:underline}
nav.top .brand{font-weight:700;color:#1f2328}nav.top .sep{color:#8c959f}
section.refused{border:1px solid #c62828;background:#fff5f5;padding:.2rem 1rem;border-radius:.3rem;margin:1rem 0}form.logout{margin-left:auto}form.logout button{font:inherit;background:none;border:1px solid #d0d7de;border-radius:.3rem;padding:.1rem .6rem;cursor:pointer}
a{color:#0969da}.sub{color:#57606a;font-size:.9em}.counts{color:#57606a;margin:.2rem 0 1rem}
.h{display:inline-block;padding:0 .5rem;border-radius:.3rem;color:#fff;white-space:nowrap;font-weight:600}
.h-ok{background:var(--ok)}.h-late{background:var(--late)}.h-failing{background:var(--bad)}.h-unknown{background:var(--skip)}
.v-running,.v-queued{background:#0969da}.v-lost{background:var(--late)}.v-cancelled,.v-interrupted{background:var(--stop)}
tr.row-ok td:first-child{border-left:5px solid var(--ok)}tr.row-late td:first-child{border-left:5px solid var(--late)}
tr.row-failing td:first-child{border-left:5px solid var(--bad)}tr.row-unknown td:first-child{border-left:5px solid var(--skip)}
td.obj-ok{color:var(--ok)}td.obj-late{color:var(--late);font-weight:600}td.obj-unknown{color:#57606a}
.target{color:#57606a;font-weight:400}.charts{display:flex;flex-wrap:wrap;gap:1rem}.charts figure{margin:0}
figcaption{font-weight:600;margin:.2rem 0}
main.login{max-width:26rem;margin:3rem auto}main.login form{display:flex;flex-direction:column;gap:.5rem;margin:1rem 0}
main.login input{font:inherit;padding:.4rem;border:1px solid #d0d7de;border-radius:.3rem}
main.login button{font:inherit;padding:.4rem;border:0;border-radius:.3rem;background:#1f883d;color:#fff;cursor:pointer}
.problem{color:var(--bad);font-weight:600}
";

/// Whether a drill is doing what its objectives ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Ok,
    /// The data was fine, but a backup is older than `max_age` (or none ever passed),
    /// or recovery took longer than `rto`.
    Late,
    /// The newest run that reached a verdict failed or could not run.
    Failing,
    /// Nothing to judge yet.
    Unknown,
}

impl Health {
    fn key(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Late => "late",
            Health::Failing => "failing",
            Health::Unknown => "unknown",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Health::Unknown => "no runs",
            h => h.key(),
        }
    }
}

/// A measurement against its objective.
#[derive(Debug, Clone, Copy)]
struct Objective {
    value: Option<u64>,
    target: Option<u64>,
}

impl Objective {
    fn health(self) -> Health {
        match (self.value, self.target) {
            (Some(v), Some(t)) if v > t => Health::Late,
            // An objective that nothing has met yet is missed.
            (None, Some(_)) => Health::Late,
            (Some(_), _) => Health::Ok,
            (None, None) => Health::Unknown,
        }
    }
}

/// What the overview says about one drill.
struct DrillState {
    name: String,
    description: Option<String>,
    schedule: Option<String>,
    next_run: Option<jiff::Timestamp>,
    /// Run id and status (queued, running) of the run in progress.
    live: Option<(String, RunStatus)>,
    /// The newest run that is not in progress.
    last: Option<RunRecord>,
    last_success: Option<jiff::Timestamp>,
    /// Age of the newest backup that passed a drill, seconds, against `max_age`.
    rpo: Objective,
    /// The recovery time ([`crate::report::RTO_DEFINITION`]) of the newest passing run,
    /// ms, against `rto`.
    rto: Objective,
    health: Health,
}

impl DrillState {
    /// `runs` newest first, as the catalog lists them; `artifacts` of this drill.
    fn new(
        drill: &Drill,
        runs: &[RunRecord],
        artifacts: &[ArtifactRecord],
        live: Option<(String, RunStatus)>,
        now: jiff::Timestamp,
    ) -> DrillState {
        let last = runs.iter().find(|r| r.status.is_finished()).cloned();
        // A run an operator or a shutdown stopped says nothing about the backup; one that
        // passed or pages does.
        let verdict = runs
            .iter()
            .find(|r| r.status.resolves() || r.status.page().is_some());
        let passes: Vec<&RunRecord> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Passed)
            .collect();
        // After `catalog rebuild` (a new catalog, runs gone) storage still knows which
        // artifacts a drill verified: the newest of them stands in for a passing run.
        let verified = artifacts
            .iter()
            .filter(|a| a.verified == crate::catalog::Verified::Yes)
            .max_by_key(|a| a.verified_at.unwrap_or(a.created_at));
        let newest_backup = passes
            .iter()
            .map(|r| backup_time(r, runs, artifacts))
            .max()
            .or_else(|| verified.map(|a| a.created_at));
        let rpo = Objective {
            value: newest_backup.map(|t| (now.as_second() - t.as_second()).max(0) as u64),
            target: drill.schedule.max_age.map(|d| d.as_secs()),
        };
        let rto = Objective {
            value: passes
                .first()
                .and_then(|r| r.rto_seconds)
                .map(|s| (s * 1000.0).round().max(0.0) as u64),
            target: drill
                .schedule
                .rto
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let health = match verdict {
            Some(v) if v.status != RunStatus::Passed => Health::Failing,
            _ if rpo.health() == Health::Late || rto.health() == Health::Late => Health::Late,
            None => Health::Unknown,
            Some(_) => Health::Ok,
        };
        DrillState {
            name: drill.name.clone(),
            description: drill.description.clone(),
            schedule: drill.schedule.cron.as_ref().map(|s| s.expression.clone()),
            next_run: drill.schedule.cron.as_ref().and_then(|s| s.next_after(now)),
            live,
            last,
            last_success: passes
                .first()
                .map(|r| r.started_at)
                .or_else(|| verified.map(|a| a.verified_at.unwrap_or(a.created_at))),
            rpo,
            rto,
            health,
        }
    }
}

/// When the backup a passing run drilled was taken: its artifact's time, else the run
/// that made it, else (a run drills the backup it just took) the run's own start.
fn backup_time(
    run: &RunRecord,
    runs: &[RunRecord],
    artifacts: &[ArtifactRecord],
) -> jiff::Timestamp {
    let Some(a) = run.artifact.as_deref().filter(|a| *a != run.run_id) else {
        return run.started_at;
    };
    artifacts
        .iter()
        .find(|x| x.run_id == a)
        .map(|x| x.created_at)
        .or_else(|| runs.iter().find(|r| r.run_id == a).map(|r| r.started_at))
        .unwrap_or(run.started_at)
}

/// A length of time for people: 45s, 12m, 3h 05m, 2d 4h.
fn span(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A moment, absolute and relative: `2026-11-26 10:00:00 UTC (3h 05m ago)`, escaped.
fn when(t: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let d = now.as_second() - t.as_second();
    let rel = if d >= 0 {
        format!("{} ago", span(d as u64))
    } else {
        format!("in {}", span(d.unsigned_abs()))
    };
    format!(
        "{} <span class=\"sub\">({})</span>",
        html(&utc(t)),
        html(&rel)
    )
}

fn pill(h: Health) -> String {
    format!("<span class=\"h h-{}\">{}</span>", h.key(), h.label())
}

fn status_badge(status: RunStatus) -> String {
    format!(
        "<span class=\"badge v-{status}\">{}</span>",
        status.as_str().to_uppercase()
    )
}

/// A measurement against its target, e.g. `3h 05m` and `≤ 1d 0h`.
fn objective_cell(o: Objective, show: fn(u64) -> String, missing: &str) -> String {
    let value = o.value.map(show).unwrap_or_else(|| missing.to_string());
    let target = o
        .target
        .map(|t| format!(" <span class=\"target\">/ &le; {}</span>", html(&show(t))))
        .unwrap_or_else(|| " <span class=\"target\">/ no target</span>".into());
    format!(
        "<td class=\"obj-{}\">{}{target}</td>",
        o.health().key(),
        html(&value)
    )
}

fn span_ms(ms: u64) -> String {
    human_ms(ms)
}

fn error_page(status: StatusCode, message: &str, o: Options) -> Response {
    let body = format!(
        "<section class=\"error\"><h2>{}</h2><p class=\"message\">{}</p></section>\n",
        html(status.canonical_reason().unwrap_or("error")),
        html(message)
    );
    (status, Html(page("firedrill", &[], &body, o))).into_response()
}

fn options(v: Viewer) -> Options {
    Options {
        refresh: None,
        logout: v.session,
    }
}

async fn index(State(dash): State<Arc<Dashboard>>, Extension(v): Extension<Viewer>) -> Response {
    let d = &dash.daemon;
    let now = jiff::Timestamp::now();
    let artifacts = match d.catalog.artifacts(None).await {
        Ok(a) => a,
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &e.to_string(),
                options(v),
            )
        }
    };
    let active = d.active_runs();
    let mut states = Vec::new();
    for (name, drill) in d.drills().iter() {
        let runs = match d.catalog.runs(Some(name), HISTORY).await {
            Ok(r) => r,
            Err(e) => {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &e.to_string(),
                    options(v),
                )
            }
        };
        let mine: Vec<ArtifactRecord> = artifacts
            .iter()
            .filter(|a| a.drill == *name)
            .cloned()
            .collect();
        let live = active.get(name).map(|id| {
            let status = d
                .run_view(id)
                .map(|(_, s, _, _)| s)
                .unwrap_or(RunStatus::Queued);
            (id.clone(), status)
        });
        states.push(DrillState::new(drill, &runs, &mine, live, now));
    }
    let o = Options {
        refresh: Some(60),
        logout: v.session,
    };
    let mut body = String::new();
    if let Some((at, problems)) = d.reload_refused() {
        let _ = writeln!(
            body,
            "<section class=\"refused\">\n<h2>Drills not reloaded</h2>\n<p>The reload {} refused the drill files; the old definitions keep running until they validate:</p>\n<pre>{}</pre>\n</section>",
            when(at, now),
            html(&problems)
        );
    }
    let (_, skew) = d.cluster();
    if !skew.is_empty() {
        let me = d.leases.id();
        let rows: String = skew
            .iter()
            .map(|s| {
                format!(
                    "<li><a href=\"{}\">{}</a>: {}</li>\n",
                    href("drills", &s.drill),
                    html(&s.drill),
                    if s.agreed.is_none() {
                        "no definition is held by most daemons; none runs it".to_string()
                    } else if s.differing.iter().any(|x| x == me) {
                        "this daemon's copy differs: it leaves the drill to the others".to_string()
                    } else {
                        format!("differs on {}", html(&s.differing.join(", ")))
                    }
                )
            })
            .collect();
        let _ = writeln!(
            body,
            "<section class=\"refused\">\n<h2>Drills defined differently on the daemons</h2>\n<p>A daemon whose copy of a drill is not the one most daemons hold does not run it, until the files agree:</p>\n<ul>\n{rows}</ul>\n</section>"
        );
    }
    body.push_str(&overview(&states, now));
    Html(page("firedrill: drills", &[], &body, o)).into_response()
}

/// The overview table.
fn overview(states: &[DrillState], now: jiff::Timestamp) -> String {
    let count = |h: Health| states.iter().filter(|s| s.health == h).count();
    let running = states.iter().filter(|s| s.live.is_some()).count();
    let mut b = String::from("<h1>Drills</h1>\n");
    let _ = writeln!(
        b,
        "<p class=\"counts\">{} drill{}: {} ok, {} late, {} failing, {} running now</p>",
        states.len(),
        if states.len() == 1 { "" } else { "s" },
        count(Health::Ok),
        count(Health::Late),
        count(Health::Failing),
        running
    );
    if states.is_empty() {
        b.push_str("<p class=\"null\">no drills are loaded: put drill files in drills_dir and reload</p>\n");
        return b;
    }
    b.push_str(
        "<table class=\"drills\">\n<tr><th>drill</th><th>state</th><th>last run</th>\
         <th>last success</th><th>RPO <span class=\"sub\">(backup age / max_age)</span></th>\
         <th>RTO <span class=\"sub\">(recovery / rto)</span></th><th>schedule</th></tr>\n",
    );
    for s in states {
        let mut state = pill(s.health);
        if let Some((id, status)) = &s.live {
            let _ = write!(
                state,
                " <a href=\"{}\">{}</a>",
                href("runs", id),
                status_badge(*status)
            );
        }
        let last = match &s.last {
            Some(r) => {
                let at = r
                    .failed_stage
                    .map(|s| s.as_str())
                    .map(|st| format!(" <span class=\"sub\">at {}</span>", html(st)))
                    .unwrap_or_default();
                format!(
                    "<a href=\"{}\">{}</a>{at}<br>{}",
                    href("runs", &r.run_id),
                    status_badge(r.status),
                    when(r.started_at, now)
                )
            }
            None => "<span class=\"null\">never ran</span>".into(),
        };
        let success = s
            .last_success
            .map(|t| when(t, now))
            .unwrap_or_else(|| "<span class=\"null\">never</span>".into());
        let description = s
            .description
            .as_deref()
            .map(|d| format!("<br><span class=\"sub\">{}</span>", html(d)))
            .unwrap_or_default();
        let schedule = match (&s.schedule, s.next_run) {
            (Some(c), Some(n)) => format!(
                "<code>{}</code><br><span class=\"sub\">next {}</span>",
                html(c),
                when(n, now)
            ),
            (Some(c), None) => format!("<code>{}</code>", html(c)),
            (None, _) => "<span class=\"null\">on demand</span>".into(),
        };
        let _ = writeln!(
            b,
            "<tr class=\"row-{}\"><td><a href=\"{}\"><strong>{}</strong></a>{description}</td>\
             <td>{state}</td><td>{last}</td><td>{success}</td>{}{}<td>{schedule}</td></tr>",
            s.health.key(),
            href("drills", &s.name),
            html(&s.name),
            objective_cell(s.rpo, span, "no passing backup"),
            objective_cell(s.rto, span_ms, "not measured"),
        );
    }
    b.push_str("</table>\n");
    b
}

/// The report stored with a run, if it has one that this version reads.
fn report_of(r: &RunRecord) -> Option<RunReport> {
    r.report
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
}

async fn drill_page(
    State(dash): State<Arc<Dashboard>>,
    Extension(v): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    let d = &dash.daemon;
    let now = jiff::Timestamp::now();
    let drill = d.drills().get(&name).cloned();
    let (runs, artifacts) = match (
        d.catalog.runs(Some(&name), HISTORY).await,
        d.catalog.artifacts(Some(&name)).await,
    ) {
        (Ok(r), Ok(a)) => (r, a),
        (Err(e), _) | (_, Err(e)) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &e.to_string(),
                options(v),
            )
        }
    };
    if drill.is_none() && runs.is_empty() {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("no drill named {name}"),
            options(v),
        );
    }
    let live = d.active_runs().get(&name).map(|id| {
        let status = d
            .run_view(id)
            .map(|(_, s, _, _)| s)
            .unwrap_or(RunStatus::Queued);
        (id.clone(), status)
    });
    let refresh = live.as_ref().map(|_| 10);
    let body = drill_body(&name, drill.as_ref(), &runs, &artifacts, live, now);
    let crumbs = [(href("drills", &name), name.clone())];
    let o = Options {
        refresh,
        logout: v.session,
    };
    Html(page(&format!("firedrill: {name}"), &crumbs, &body, o)).into_response()
}

fn drill_body(
    name: &str,
    drill: Option<&Drill>,
    runs: &[RunRecord],
    artifacts: &[ArtifactRecord],
    live: Option<(String, RunStatus)>,
    now: jiff::Timestamp,
) -> String {
    let reports: Vec<Option<RunReport>> = runs.iter().map(report_of).collect();
    let mut b = String::new();
    let state = drill.map(|dr| DrillState::new(dr, runs, artifacts, live.clone(), now));
    let _ = writeln!(
        b,
        "<h1>drill {} {}</h1>",
        html(name),
        state
            .as_ref()
            .map(|s| pill(s.health))
            .unwrap_or_else(|| "<span class=\"h h-unknown\">not configured</span>".into())
    );
    match (drill, &state) {
        (Some(dr), Some(s)) => {
            if let Some(desc) = &dr.description {
                let _ = writeln!(b, "<p class=\"verdict\">{}</p>", html(desc));
            }
            b.push_str("<table class=\"summary\">\n");
            let running = match &s.live {
                Some((id, st)) => format!(
                    "<a href=\"{}\">{} {}</a>",
                    href("runs", id),
                    status_badge(*st),
                    html(id)
                ),
                None => "no".into(),
            };
            let schedule = match (&s.schedule, s.next_run) {
                (Some(c), Some(n)) => format!("<code>{}</code>, next {}", html(c), when(n, now)),
                (Some(c), None) => format!("<code>{}</code>", html(c)),
                (None, _) => "on demand".into(),
            };
            let rows = [
                ("running now", running),
                ("schedule", schedule),
                (
                    "last success",
                    s.last_success
                        .map(|t| when(t, now))
                        .unwrap_or_else(|| "never".into()),
                ),
            ];
            for (k, val) in rows {
                let _ = writeln!(b, "<tr><th>{}</th><td>{val}</td></tr>", html(k));
            }
            let _ = writeln!(
                b,
                "<tr><th>RPO: age of the newest passing backup</th>{}</tr>\n\
                 <tr><th>RTO: {}</th>{}</tr>",
                objective_cell(s.rpo, span, "no passing backup"),
                crate::report::RTO_DEFINITION,
                objective_cell(s.rto, span_ms, "not measured")
            );
            b.push_str("</table>\n");
        }
        _ => b.push_str(
            "<p class=\"verdict\">this drill is in the catalog but not among the loaded drill files</p>\n",
        ),
    }

    // Trends, oldest to newest.
    let rto_points: Vec<(jiff::Timestamp, f64, String)> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Passed)
        .filter_map(|r| {
            let ms = r.rto_seconds? * 1000.0;
            Some((
                r.started_at,
                ms,
                format!("run {}: {}", r.run_id, human_ms(ms.max(0.0) as u64)),
            ))
        })
        .collect();
    let target = drill.and_then(|d| d.schedule.rto).map(|t| Target {
        value: t.as_millis() as f64,
        label: format!(
            "rto {}",
            human_ms(u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
        ),
    });
    let rto_chart = time_series_svg(
        &format!("recovery time of drill {name}"),
        Unit::Millis,
        &[Series {
            name: "recovery time".into(),
            colour: "#0969da",
            points: rto_points,
        }],
        target.as_ref(),
    );
    // Sizes: the inventory's artifacts, and those known only from run reports.
    let mut sizes: HashMap<String, (jiff::Timestamp, u64, u64)> = artifacts
        .iter()
        .map(|a| {
            (
                a.run_id.clone(),
                (a.created_at, a.encrypted_bytes, a.plain_bytes),
            )
        })
        .collect();
    for (r, rep) in runs.iter().zip(&reports) {
        if let Some(a) = rep.as_ref().and_then(|x| x.artifact.as_ref()) {
            let id = r.artifact.clone().unwrap_or_else(|| r.run_id.clone());
            sizes
                .entry(id)
                .or_insert((r.started_at, a.encrypted_bytes, a.plain_bytes));
        }
    }
    let point = |id: &String, t: jiff::Timestamp, n: u64, what: &str| {
        (t, n as f64, format!("{id}: {} {what}", human_bytes(n)))
    };
    let sizes_chart = time_series_svg(
        &format!("artifact sizes of drill {name}"),
        Unit::Bytes,
        &[
            Series {
                name: "plain dump".into(),
                colour: "#8250df",
                points: sizes
                    .iter()
                    .filter(|(_, s)| s.2 > 0)
                    .map(|(id, s)| point(id, s.0, s.2, "plain"))
                    .collect(),
            },
            Series {
                name: "encrypted artifact".into(),
                colour: "#1a7f37",
                points: sizes
                    .iter()
                    .map(|(id, s)| point(id, s.0, s.1, "encrypted"))
                    .collect(),
            },
        ],
        None,
    );
    let _ = writeln!(
        b,
        "<section>\n<h2>Trends</h2>\n<div class=\"charts\">\n\
         <figure><figcaption>Recovery time of passing runs</figcaption>\n{rto_chart}</figure>\n\
         <figure><figcaption>Artifact sizes</figcaption>\n{sizes_chart}</figure>\n</div>\n</section>"
    );

    b.push_str("<section>\n<h2>History</h2>\n");
    if runs.is_empty() {
        b.push_str("<p class=\"null\">no runs yet</p>\n</section>\n");
        return b;
    }
    let _ = writeln!(
        b,
        "<p class=\"sub\">the newest {} run{}</p>",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    );
    b.push_str(
        "<table class=\"history\">\n<tr><th>run</th><th>started</th><th>outcome</th>\
         <th>failed stage</th><th>duration</th><th>RTO</th><th>encrypted</th><th>plain</th>\
         <th>error</th></tr>\n",
    );
    for (r, rep) in runs.iter().zip(&reports) {
        let duration = r
            .finished_at
            .map(|f| {
                human_ms(
                    u64::try_from(f.as_millisecond() - r.started_at.as_millisecond()).unwrap_or(0),
                )
            })
            .unwrap_or_default();
        let rto = r
            .rto_seconds
            .map(|s| human_ms((s * 1000.0).round().max(0.0) as u64))
            .unwrap_or_default();
        let art = rep.as_ref().and_then(|x| x.artifact.as_ref());
        let encrypted = art
            .map(|a| a.encrypted_bytes)
            .or(r.encrypted_bytes)
            .map(human_bytes)
            .unwrap_or_default();
        let plain = art.map(|a| human_bytes(a.plain_bytes)).unwrap_or_default();
        let error = r.error.as_deref().unwrap_or("");
        let short: String = error.chars().take(120).collect();
        let short = if short.len() < error.len() {
            format!("{short}…")
        } else {
            short
        };
        let accepted = if r.accepted {
            " <span class=\"sub\">(accepted)</span>"
        } else {
            ""
        };
        let _ = writeln!(
            b,
            "<tr><td class=\"mono\"><a href=\"{}\">{}</a></td><td>{}</td><td>{}{accepted}</td>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td title=\"{}\">{}</td></tr>",
            href("runs", &r.run_id),
            html(&r.run_id),
            html(&utc(r.started_at)),
            status_badge(r.status),
            html(r.failed_stage.map(|s| s.as_str()).unwrap_or("")),
            html(&duration),
            html(&rto),
            html(&encrypted),
            html(&plain),
            html(error),
            html(&short),
        );
    }
    b.push_str("</table>\n</section>\n");
    b
}

async fn run_page(
    State(dash): State<Arc<Dashboard>>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let d = &dash.daemon;
    let record = match d.catalog.run(&id).await {
        Ok(r) => r,
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &e.to_string(),
                options(v),
            )
        }
    };
    let live = d.run_view(&id);
    // A run in progress: what has finished so far, and the page refreshes itself.
    let (drill, status, report, accepted) = match (live, &record) {
        (Some((drill, status, events, None)), rec) => {
            let started = rec
                .as_ref()
                .map(|r| r.started_at)
                .unwrap_or_else(jiff::Timestamp::now);
            let mut r = RunReport::empty(&drill, &id, started);
            r.finished_at = jiff::Timestamp::now().max(started);
            r.stages = events
                .into_iter()
                .filter_map(|e| match e {
                    RunEvent::StageFinished { report, .. } => Some(report),
                    _ => None,
                })
                .collect();
            (drill, status, Some(r), false)
        }
        (Some((drill, _, _, Some(r))), rec) => {
            let accepted = rec.as_ref().is_some_and(|x| x.accepted);
            (drill, r.status(), Some(r), accepted)
        }
        // Running on another daemon sharing the catalog: where it is, and the page refreshes.
        (None, Some(rec)) if !rec.status.is_finished() => {
            let mut r = RunReport::empty(&rec.drill, &id, rec.started_at);
            r.finished_at = jiff::Timestamp::now().max(rec.started_at);
            (rec.drill.clone(), rec.status, Some(r), false)
        }
        (None, Some(rec)) => (rec.drill.clone(), rec.status, report_of(rec), rec.accepted),
        (None, None) => {
            return error_page(StatusCode::NOT_FOUND, &format!("no run {id}"), options(v))
        }
    };
    let in_progress = !status.is_finished();
    // Which process ran it: with several daemons sharing the catalog, which one.
    let ran_by = record
        .as_ref()
        .and_then(|r| r.owner.clone())
        .map(|o| {
            format!(
                "<p class=\"sub\">run by <span class=\"mono\">{}</span></p>\n",
                html(&o)
            )
        })
        .unwrap_or_default();
    let crumbs = [
        (href("drills", &drill), drill.clone()),
        (href("runs", &id), id.clone()),
    ];
    let mut b = format!(
        "<h1>run <span class=\"mono\">{}</span> {}</h1>\n{ran_by}",
        html(&id),
        status_badge(status)
    );
    match report {
        Some(r) if in_progress => {
            let _ = writeln!(
                b,
                "<p class=\"verdict\">drill {} is {status}{}; this page refreshes every 5 seconds</p>",
                html(&drill),
                record
                    .as_ref()
                    .and_then(|r| r.stage)
                    .map(|s| format!(", in stage {s}"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                b,
                "<section>\n<h2>Timeline</h2>\n<div class=\"timeline\">\n{}</div>\n</section>",
                stage_timeline_svg(&r)
            );
            b.push_str(&stage_table(&r));
        }
        Some(r) => {
            let _ = writeln!(
                b,
                "<p class=\"verdict\">{}{}</p>",
                html(&verdict_sentence(&r)),
                if accepted {
                    "; accepted by a person despite its anomaly guards"
                } else {
                    ""
                }
            );
            if let Some(e) = &r.error {
                b.push_str(&error_box(&r, e));
            }
            let _ = writeln!(
                b,
                "<section>\n<h2>Timeline</h2>\n<div class=\"timeline\">\n{}</div>\n</section>",
                stage_timeline_svg(&r)
            );
            b.push_str(&assertion_table(&r));
            b.push_str(&fingerprint(&r));
            b.push_str(&stage_table(&r));
            b.push_str(&summary(&r));
        }
        None => {
            // Left "running" by a dead process and marked lost, or from before reports were kept.
            let rec = record.as_ref();
            let _ = writeln!(
                b,
                "<p class=\"verdict\">no report was stored for this run</p>\n<table class=\"summary\">\n\
                 <tr><th>drill</th><td>{}</td></tr>\n<tr><th>started</th><td>{}</td></tr>\n\
                 <tr><th>error</th><td>{}</td></tr>\n</table>",
                html(&drill),
                rec.map(|r| html(&utc(r.started_at))).unwrap_or_default(),
                html(rec.and_then(|r| r.error.as_deref()).unwrap_or(""))
            );
        }
    }
    let o = Options {
        refresh: in_progress.then_some(5),
        logout: v.session,
    };
    Html(page(
        &format!("firedrill: {drill} run {id}"),
        &crumbs,
        &b,
        o,
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Outcome, Stage, StageReport, Verdict};

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn drill(max_age: Option<u64>, rto: Option<u64>) -> Drill {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.toml");
        std::fs::write(
            &path,
            "description = \"<script>alert(1)</script>\"\n[source]\ntype = \"postgres\"\ndatabase = \"x\"\nuser = \"u\"\n\
             [storage]\ntype = \"local\"\npath = \"store\"\n[encryption]\n\
             recipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\nidentity = { file = \"id\" }\n",
        )
        .unwrap();
        let mut d = crate::config::load_drill(&path).unwrap();
        d.schedule.max_age = max_age.map(std::time::Duration::from_secs);
        d.schedule.rto = rto.map(std::time::Duration::from_secs);
        d
    }

    fn run(id: &str, at: &str, status: &str, rto: Option<f64>) -> RunRecord {
        RunRecord {
            drill: "shop".into(),
            run_id: id.into(),
            started_at: t(at),
            finished_at: Some(t(at)),
            status: status.parse().unwrap(),
            failed_stage: (status == "failed").then_some(Stage::Verify),
            error: (status != "passed").then(|| "<b>broke</b>".into()),
            artifact: Some(id.into()),
            rto_seconds: rto,
            encrypted_bytes: Some(1000),
            report: None,
            accepted: false,
            owner: None,
            stage: None,
        }
    }

    #[test]
    fn dashboard_health_follows_the_objectives() {
        let now = t("2026-11-26T12:00:00Z");
        let d = drill(Some(6 * 3600), Some(60));
        let ok = [run("b", "2026-11-26T10:00:00Z", "passed", Some(30.0))];
        let s = DrillState::new(&d, &ok, &[], None, now);
        assert_eq!(s.health, Health::Ok);
        assert_eq!(s.rpo.value, Some(7200));
        assert_eq!(s.rto.value, Some(30_000));

        // Too old a backup: late, although it passed.
        let old = [run("a", "2026-11-25T10:00:00Z", "passed", Some(30.0))];
        let s = DrillState::new(&d, &old, &[], None, now);
        assert_eq!((s.health, s.rpo.health()), (Health::Late, Health::Late));
        // Recovery slower than the rto: late.
        let slow = [run("b", "2026-11-26T10:00:00Z", "passed", Some(90.0))];
        let s = DrillState::new(&d, &slow, &[], None, now);
        assert_eq!((s.health, s.rto.health()), (Health::Late, Health::Late));

        // The newest verdict failed: failing, whatever the objectives; an interrupted run
        // after it (a shutdown) changes nothing.
        let failing = [
            run("d", "2026-11-26T11:30:00Z", "interrupted", None),
            run("c", "2026-11-26T11:00:00Z", "failed", None),
            run("b", "2026-11-26T10:00:00Z", "passed", Some(30.0)),
        ];
        let s = DrillState::new(&d, &failing, &[], None, now);
        assert_eq!(s.health, Health::Failing);
        assert_eq!(s.last.as_ref().unwrap().run_id, "d");
        assert_eq!(s.last_success, Some(t("2026-11-26T10:00:00Z")));

        // A rebuilt catalog: no runs, but storage knows a verified artifact.
        let rebuilt = [ArtifactRecord {
            drill: "d".into(),
            run_id: "a".into(),
            created_at: t("2026-11-26T09:00:00Z"),
            engine: crate::engine::kind::Engine::Postgres,
            plain_bytes: 10,
            encrypted_bytes: 5,
            sha256: String::new(),
            location: String::new(),
            manifest_key: String::new(),
            verified: crate::catalog::Verified::Yes,
            verified_at: Some(t("2026-11-26T09:05:00Z")),
        }];
        let s = DrillState::new(&d, &[], &rebuilt, None, now);
        assert_eq!(
            s.last_success,
            Some(t("2026-11-26T09:05:00Z")),
            "not `never`"
        );
        assert_eq!(s.rpo.value, Some(3 * 3600));

        // Never passed: late against a max_age, unknown without one.
        assert_eq!(
            DrillState::new(&d, &[], &[], None, now).health,
            Health::Late
        );
        let free = drill(None, None);
        assert_eq!(
            DrillState::new(&free, &[], &[], None, now).health,
            Health::Unknown
        );

        // Drilling an old artifact proves that old backup: the RPO is its age, not the run's.
        let mut rerun = run("e", "2026-11-26T11:00:00Z", "passed", Some(30.0));
        rerun.artifact = Some("a".into());
        let artifacts = [ArtifactRecord {
            drill: "shop".into(),
            run_id: "a".into(),
            created_at: t("2026-11-25T12:00:00Z"),
            engine: crate::engine::kind::Engine::Postgres,
            plain_bytes: 10,
            encrypted_bytes: 5,
            sha256: String::new(),
            location: String::new(),
            manifest_key: String::new(),
            verified: crate::catalog::Verified::Yes,
            verified_at: None,
        }];
        let s = DrillState::new(&d, &[rerun], &artifacts, None, now);
        assert_eq!(s.rpo.value, Some(86_400));
        assert_eq!(s.health, Health::Late);
    }

    #[test]
    fn dashboard_sessions_hold_no_token_and_expire() {
        let now = 1_800_000_000;
        let (v, rec) = new_session("s3cret-token", now);
        assert!(!v.contains("s3cret") && !rec.token_tag.contains("s3cret"));
        assert_eq!(rec.id_hash, session_hash(&v));
        assert_ne!(rec.id_hash, v, "the catalog keeps a hash, not the cookie");
        assert!(session_valid(&rec, "s3cret-token", now));
        assert!(session_valid(&rec, "s3cret-token", now + SESSION_SECS - 1));
        assert!(
            !session_valid(&rec, "s3cret-token", now + SESSION_SECS),
            "expired"
        );
        assert!(
            !session_valid(&rec, "another-token", now),
            "the token changed"
        );
        let (v2, _) = new_session("s3cret-token", now);
        assert_ne!(v, v2, "every login is a new id");
    }

    #[test]
    fn dashboard_next_stays_on_this_site() {
        assert_eq!(safe_next("/drills/shop"), "/drills/shop");
        assert_eq!(safe_next("/runs/a%20b?x=1"), "/runs/a%20b?x=1");
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/login",
            "/a b",
            "/a\nb",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad}");
        }
        assert_eq!(pct("/runs/a b?c=<d>", b"/"), "/runs/a%20b%3Fc%3D%3Cd%3E");
        assert_eq!(
            href("runs", "x\"/><script>"),
            "/runs/x%22%2F%3E%3Cscript%3E"
        );
    }

    #[test]
    fn dashboard_pages_escape_everything() {
        let now = t("2026-11-26T12:00:00Z");
        let nasty = "<script>alert(\"x\")</script>";
        let d = drill(Some(3600), Some(60));
        let mut r = run(nasty, "2026-11-26T10:00:00Z", "failed", None);
        r.error = Some(nasty.into());
        let report = RunReport {
            verdict: Verdict::Failed,
            exit_code: 1,
            failed_stage: Some(Stage::Verify),
            stages: vec![StageReport {
                stage: Stage::Verify,
                outcome: Outcome::Failed,
                duration_ms: 10,
                timeout_ms: 100,
                bytes: None,
                attempts: 1,
                error: None,
                notes: vec![nasty.into()],
            }],
            ..RunReport::empty(nasty, nasty, now)
        };
        r.report = Some(serde_json::to_string(&report).unwrap());
        let runs = [r];
        let states = [DrillState::new(
            &d,
            &runs,
            &[],
            Some((nasty.into(), RunStatus::Running)),
            now,
        )];
        let pages = [
            page(
                nasty,
                &[(href("drills", nasty), nasty.into())],
                &overview(&states, now),
                Options::default(),
            ),
            drill_body(nasty, Some(&d), &runs, &[], None, now),
            login_page(nasty, Some(nasty)),
        ];
        for p in pages {
            assert!(!p.contains("<script"), "{p}");
            assert!(!p.contains("alert(\"x\")"), "{p}");
            for bad in [
                "javascript:",
                " onload=",
                " onerror=",
                "<iframe",
                "<img",
                "url(",
            ] {
                assert!(!p.contains(bad), "{bad} in {p}");
            }
        }
    }

    #[test]
    fn dashboard_spans_read_well() {
        assert_eq!(span(45), "45s");
        assert_eq!(span(12 * 60 + 5), "12m");
        assert_eq!(span(3 * 3600 + 5 * 60), "3h 05m");
        assert_eq!(span(2 * 86_400 + 4 * 3600 + 59), "2d 4h");
    }
}
