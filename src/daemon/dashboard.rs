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

use super::actions::{self, Trigger};
use super::auth::{
    admin_token_principal, bearer, bearer_principal, client_ip, constant_time_eq, too_many, Source,
};
use super::{Daemon, RunEvent};
use crate::access::{
    Action, Actor, ActorKind, AuditEntry, AuditQuery, Outcome as AuditOutcome, Principal, Role,
};
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
/// Styles inline, forms to this origin, one script of this origin (the live stage of a
/// run in progress), and nothing else: no inline script, no frame, no other origin.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; \
                   connect-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
/// The same in the page, for a saved copy (a `<meta>` policy cannot hold frame-ancestors).
const META_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; \
                        connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'";
/// Runs read per drill: the history shown and the trends drawn.
const HISTORY: usize = 200;

/// The dashboard's state: the daemon (its catalog keeps the sessions).
struct Dashboard {
    daemon: Arc<Daemon>,
}

/// Who is looking: what they may see and do, whether to offer "log out", and the value
/// forms must carry back (the CSRF cookie's).
#[derive(Debug, Clone)]
struct Viewer {
    who: Principal,
    session: bool,
    csrf: String,
}

impl Viewer {
    fn may(&self, a: Action) -> bool {
        self.who.may(a)
    }
}

/// How a request to a dashboard page is let in, or not.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    /// No credential needed (none configured, or `dashboard_public`: then read-only).
    Open(Principal),
    Bearer(Principal),
    Session(Principal),
    /// An Authorization header with a wrong token: a program, so 401 rather than a form.
    WrongBearer,
    /// Neither header nor valid cookie: a browser, sent to the login form.
    Anonymous,
}

pub(super) fn router(daemon: Arc<Daemon>) -> Router<Arc<Daemon>> {
    let dash = Arc::new(Dashboard { daemon });
    let pages = Router::new()
        .route("/", get(index))
        .route("/audit", get(audit_page))
        .route("/drills/{name}", get(drill_page))
        .route("/drills/{name}/run", post(run_now))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/cancel", post(cancel_run))
        .route("/runs/{id}/accept", post(accept_run))
        .route("/runs/{id}/live", get(live_stage))
        .route_layer(middleware::from_fn_with_state(dash.clone(), require_login));
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/oidc/login", get(oidc_login))
        .route("/oidc/callback", get(oidc_callback))
        .route("/static/live.js", get(live_js))
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
    /// Whether pages need a login.
    fn login_required(&self) -> bool {
        !self.daemon.config.daemon.dashboard_public && self.daemon.auth_required()
    }

    async fn access(&self, headers: &HeaderMap, now: i64) -> Access {
        if !self.daemon.auth_required() {
            return Access::Open(Principal::anonymous());
        }
        if headers.contains_key(header::AUTHORIZATION) {
            let given = bearer(headers).unwrap_or("");
            return match bearer_principal(&self.daemon, given) {
                Some(p) => Access::Bearer(p),
                None => Access::WrongBearer,
            };
        }
        let session = match cookie(headers, COOKIE) {
            Some(value) => match self.daemon.catalog.session(&session_hash(value)).await {
                Ok(Some(s)) => self.session_principal(&s, now),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!("dashboard session lookup: {e}");
                    None
                }
            },
            None => None,
        };
        match session {
            Some(p) => Access::Session(p),
            // A public dashboard shows itself to anyone, read-only.
            None if self.daemon.config.daemon.dashboard_public => Access::Open(Principal {
                actor: Actor::new(ActorKind::Anonymous, ""),
                role: Role::Viewer,
                drills: None,
            }),
            None => Access::Anonymous,
        }
    }

    /// Who a session is, while the way it was opened still holds: the token it was opened
    /// with is still configured (with its role now), or single sign-on is still set up.
    fn session_principal(&self, s: &crate::catalog::Session, now: i64) -> Option<Principal> {
        if !session_fresh(s, now) {
            return None;
        }
        let d = &self.daemon;
        let same = |input: &str| constant_time_eq(s.token_tag.as_bytes(), tag(input).as_bytes());
        if let Some(t) = d.token() {
            if same(&crate::access::token_hash(t.expose())) {
                return Some(admin_token_principal());
            }
        }
        match &s.who {
            Some(p) if p.actor.kind == ActorKind::Sso => d
                .oidc
                .as_ref()
                .filter(|o| same(&o.session_tag_input()))
                .map(|_| p.clone()),
            Some(_) => d
                .tokens
                .as_ref()?
                .current()
                .iter()
                .find(|t| same(&t.sha256))
                .map(|t| t.principal()),
            None => None,
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

    fn secure(&self, headers: &HeaderMap) -> &'static str {
        if self.https(headers) {
            "; Secure"
        } else {
            ""
        }
    }

    /// Opens a session for `who` (its tag ties it to the credential that opened it) and
    /// returns the `Set-Cookie` value.
    async fn open_session(
        &self,
        who: &Principal,
        tag_input: &str,
        headers: &HeaderMap,
    ) -> crate::error::Result<String> {
        let (value, record) = new_session(who, tag_input, jiff::Timestamp::now().as_second());
        self.daemon.catalog.put_session(&record).await?;
        // Lax, not Strict: a link to a run followed from Slack, PagerDuty or an e-mail
        // arrives logged in. Forms that change anything carry a CSRF value besides.
        Ok(format!(
            "{COOKIE}={value}; Path=/; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Lax{}",
            self.secure(headers)
        ))
    }
}

/// How someone logged in to the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Login {
    Token,
    SingleSignOn,
}

impl Dashboard {
    /// After a login was accepted: the session opened (or the login page, when the
    /// catalog cannot keep it), the audit entry, and the way on to `next`.
    async fn logged_in(
        &self,
        who: &Principal,
        tag_input: &str,
        headers: &HeaderMap,
        client: std::net::IpAddr,
        next: &str,
        how: Login,
    ) -> Response {
        let sso = how == Login::SingleSignOn || self.daemon.oidc.is_some();
        let set = match self.open_session(who, tag_input, headers).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("dashboard login not recorded: {e}");
                let problem = match how {
                    Login::Token => "The login could not be recorded in the catalog; try again, or use the API with the token.",
                    Login::SingleSignOn => "The login could not be recorded in the catalog; try again.",
                };
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Html(login_page(next, Some(problem), sso)),
                )
                    .into_response();
            }
        };
        self.daemon
            .audit(
                AuditEntry::by(
                    who,
                    Some(client.to_string()),
                    Action::Login,
                    AuditOutcome::Ok,
                )
                .detail(match how {
                    Login::Token => "dashboard login with a token",
                    Login::SingleSignOn => "dashboard login through single sign-on",
                }),
            )
            .await;
        ([(header::SET_COOKIE, set)], Redirect::to(safe_next(next))).into_response()
    }
}

/// What the catalog keeps of a session cookie: its SHA-256. The cookie is 32 random
/// bytes, so no salt is needed.
fn session_hash(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

/// Which credential a session was opened with, without keeping it: an HMAC of the
/// token's SHA-256 (or of the single sign-on provider and client).
fn tag(input: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(b"firedrill dashboard session v3")
        .expect("HMAC takes any key");
    m.update(input.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A new session for `who`: the cookie's value and the record the catalog keeps.
fn new_session(who: &Principal, tag_input: &str, now: i64) -> (String, crate::catalog::Session) {
    let mut id = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let value = hex::encode(id);
    let record = crate::catalog::Session {
        id_hash: session_hash(&value),
        token_tag: tag(tag_input),
        expires_at: now + SESSION_SECS,
        who: Some(who.clone()),
    };
    (value, record)
}

/// Not expired, and not claiming to last longer than any session does.
fn session_fresh(s: &crate::catalog::Session, now: i64) -> bool {
    s.expires_at > now && s.expires_at <= now + SESSION_SECS
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

/// The CSRF cookie: random, `SameSite=Strict`, never readable by a page. Forms carry its
/// value back; a form posted from another site cannot know it (and its browser does not
/// send the cookie).
const CSRF_COOKIE: &str = "firedrill_csrf";

fn new_csrf() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

async fn require_login(
    State(dash): State<Arc<Dashboard>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    mut req: Request,
    next: Next,
) -> Response {
    let now = jiff::Timestamp::now().as_second();
    let client = client_ip(&dash.daemon, peer.map(|p| (p.0).0), req.headers());
    req.extensions_mut().insert(Source(client.to_string()));
    // A bearer token here is guessed as dearly as on the API.
    let bearing = req.headers().contains_key(header::AUTHORIZATION);
    if bearing {
        if let Some(wait) = dash.daemon.throttle.refused(client) {
            return too_many(wait);
        }
    }
    let (who, session) = match dash.access(req.headers(), now).await {
        Access::Open(p) | Access::Bearer(p) => {
            if bearing {
                dash.daemon.throttle.succeeded(client);
            }
            (p, false)
        }
        Access::Session(p) => (p, true),
        Access::WrongBearer => {
            dash.daemon
                .wrong_token(
                    client,
                    format!("a wrong bearer token on {}", req.uri().path()),
                )
                .await;
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "",
            )
                .into_response();
        }
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
            return Redirect::to(&to).into_response();
        }
    };
    let existing = cookie(req.headers(), CSRF_COOKIE)
        .filter(|c| c.len() == 48 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    // Logged in: the forms' value is derived from the session itself, which no other
    // page (not even one on a sibling subdomain, which could plant a cookie) can know.
    // Without a session: the double-submit cookie's.
    let csrf = match cookie(req.headers(), COOKIE).filter(|_| session) {
        Some(s) => session_csrf(s),
        None => existing.clone().unwrap_or_else(new_csrf),
    };
    let secure = dash.secure(req.headers());
    req.extensions_mut().insert(Viewer {
        who,
        session,
        csrf: csrf.clone(),
    });
    let mut res = next.run(req).await;
    if existing.is_none() {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict{secure}"
        )) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// Where to go after logging in: a path on this site, or `/`. Never another origin
/// (`//evil.example`, `/\evil.example`), never back to the form.
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.starts_with("/login")
        && !next.starts_with("/oidc")
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
    if !dash.login_required() && !dash.daemon.auth_required() {
        return Redirect::to(safe_next(&q.next)).into_response();
    }
    Html(login_page(&q.next, None, dash.daemon.oidc.is_some())).into_response()
}

async fn login(
    State(dash): State<Arc<Dashboard>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !dash.daemon.auth_required() {
        return Redirect::to(safe_next(&f.next)).into_response();
    }
    let sso = dash.daemon.oidc.is_some();
    let client = client_ip(&dash.daemon, peer.map(|p| (p.0).0), &headers);
    if let Some(wait) = dash.daemon.throttle.refused(client) {
        return too_many(wait);
    }
    let given = f.token.trim();
    let Some(who) = bearer_principal(&dash.daemon, given) else {
        tracing::warn!("dashboard login with a wrong token from {client}");
        dash.daemon
            .wrong_token(client, "a wrong token on the dashboard's login form".into())
            .await;
        // Slows guessing down; other requests are not held up.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        return (
            StatusCode::UNAUTHORIZED,
            Html(login_page(
                &f.next,
                Some("That is not a token this daemon accepts."),
                sso,
            )),
        )
            .into_response();
    };
    dash.daemon.throttle.succeeded(client);
    dash.logged_in(
        &who,
        &crate::access::token_hash(given),
        &headers,
        client,
        &f.next,
        Login::Token,
    )
    .await
}

/// Ends the session for good (in the catalog, for every daemon), not only in this browser.
async fn logout(
    State(dash): State<Arc<Dashboard>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    if let Some(value) = cookie(&headers, COOKIE) {
        let hash = session_hash(value);
        let who = match dash.daemon.catalog.session(&hash).await {
            Ok(Some(s)) => s.who,
            _ => None,
        };
        if let Err(e) = dash.daemon.catalog.revoke_session(&hash).await {
            tracing::warn!("dashboard logout not recorded: {e}");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the logout could not be recorded in the catalog; try again\n",
            )
                .into_response();
        }
        if let Some(who) = who {
            let client = client_ip(&dash.daemon, peer.map(|p| (p.0).0), &headers);
            dash.daemon
                .audit(AuditEntry::by(
                    &who,
                    Some(client.to_string()),
                    Action::Logout,
                    AuditOutcome::Ok,
                ))
                .await;
        }
    }
    let secure = dash.secure(&headers);
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

/// Single sign-on: off to the provider.
/// The cookie that ties a single sign-on login to the browser that started it.
const OIDC_COOKIE: &str = "firedrill_oidc";

async fn oidc_login(
    State(dash): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let Some(o) = dash.daemon.oidc.as_ref() else {
        return error_page(
            StatusCode::NOT_FOUND,
            "single sign-on is not set up on this daemon ([daemon.oidc])",
            Options::default(),
        );
    };
    match o
        .begin(dash.daemon.catalog.as_ref(), safe_next(&q.next))
        .await
    {
        Ok((url, state)) => (
            [(
                header::SET_COOKIE,
                format!(
                    "{OIDC_COOKIE}={}; Path=/oidc; Max-Age=600; HttpOnly; SameSite=Lax{}",
                    crate::daemon::oidc::state_hash(&state),
                    dash.secure(&headers)
                ),
            )],
            Redirect::to(&url),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!("single sign-on could not start: {e}");
            (
                StatusCode::BAD_GATEWAY,
                Html(login_page(
                    &q.next,
                    Some(&format!("Single sign-on could not start: {e}")),
                    true,
                )),
            )
                .into_response()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Single sign-on: back from the provider (on this daemon or any other sharing the
/// catalog).
async fn oidc_callback(
    State(dash): State<Arc<Dashboard>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let Some(o) = dash.daemon.oidc.as_ref() else {
        return error_page(
            StatusCode::NOT_FOUND,
            "single sign-on is not set up on this daemon ([daemon.oidc])",
            Options::default(),
        );
    };
    let client = client_ip(&dash.daemon, peer.map(|p| (p.0).0), &headers);
    if let Some(wait) = dash.daemon.throttle.refused(client) {
        return too_many(wait);
    }
    let result = match &q.error {
        Some(err) => Err(crate::daemon::oidc::Refused {
            who: None,
            why: format!(
                "the provider said {err}{}",
                q.error_description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        }),
        // A callback in another browser than the one that started the login (a link an
        // attacker sends, to log the victim in as the attacker) is refused.
        None if !cookie(&headers, OIDC_COOKIE).is_some_and(|c| {
            constant_time_eq(
                c.as_bytes(),
                crate::daemon::oidc::state_hash(&q.state).as_bytes(),
            )
        }) =>
        {
            Err(crate::daemon::oidc::Refused {
                who: None,
                why: "this login was not started in this browser (no matching login cookie); start again from the login page".into(),
            })
        }
        None => {
            o.finish(dash.daemon.catalog.as_ref(), &q.code, &q.state)
                .await
        }
    };
    let (who, next) = match result {
        Ok(x) => x,
        Err(r) => {
            dash.daemon.throttle.failed(client);
            tracing::warn!("single sign-on refused from {client}: {}", r.why);
            dash.daemon
                .audit(
                    AuditEntry::new(
                        Actor::new(ActorKind::Sso, r.who.clone().unwrap_or_else(|| "?".into())),
                        Action::LoginFailed,
                        AuditOutcome::Denied,
                    )
                    .source(client.to_string())
                    .detail(r.why.clone()),
                )
                .await;
            return (
                StatusCode::FORBIDDEN,
                Html(login_page(
                    "/",
                    Some(&format!("Single sign-on refused: {}", r.why)),
                    true,
                )),
            )
                .into_response();
        }
    };
    dash.daemon.throttle.succeeded(client);
    dash.logged_in(
        &who,
        &o.session_tag_input(),
        &headers,
        client,
        &next,
        Login::SingleSignOn,
    )
    .await
}

fn login_page(next: &str, problem: Option<&str>, sso: bool) -> String {
    let mut b = String::from("<main class=\"login\">\n<h1>Log in</h1>\n");
    if let Some(p) = problem {
        let _ = writeln!(b, "<p class=\"problem\">{}</p>", html(p));
    }
    if sso {
        let _ = writeln!(
            b,
            "<p><a class=\"button\" id=\"sso\" href=\"/oidc/login?next={}\">Sign in with single sign-on</a></p>\n<p class=\"sub\">or with an API token:</p>",
            html(&pct(safe_next(next), b"/"))
        );
    } else {
        b.push_str("<p>The dashboard needs an API token (<code>[daemon] token</code>, or one from <code>firedrill token create</code>).</p>\n");
    }
    let _ = writeln!(
        b,
        "<form method=\"post\" action=\"/login\">\n\
         <input type=\"text\" name=\"user\" value=\"firedrill\" autocomplete=\"username\" hidden readonly>\n\
         <label for=\"token\">token</label>\n\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required{}>\n\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\n\
         <button type=\"submit\">Log in</button>\n</form>\n\
         <p class=\"null\">Programs send <code>Authorization: Bearer …</code> instead.</p>\n</main>",
        if sso { "" } else { " autofocus" },
        html(safe_next(next))
    );
    page("firedrill: log in", &[], &b, Options::default())
}

#[derive(Debug, Default, Clone)]
struct Options {
    /// Reload the page every this many seconds.
    refresh: Option<u32>,
    /// Offer "log out".
    logout: bool,
    /// Who is looking (shown in the top bar).
    who: Option<String>,
    /// A run in progress whose stage the page follows live (`/static/live.js`).
    live: Option<String>,
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
    p.push_str("<span class=\"grow\"></span>");
    if let Some(w) = &o.who {
        let _ = write!(p, "<span class=\"who sub\">{}</span>", html(w));
    }
    if o.logout {
        p.push_str(
            "<form class=\"logout\" method=\"post\" action=\"/logout\"><button type=\"submit\">log out</button></form>",
        );
    }
    p.push_str("</nav>\n");
    p.push_str(body);
    if let Some(run) = &o.live {
        let _ = writeln!(
            p,
            "<script src=\"/static/live.js\" data-run=\"{}\" defer></script>",
            html(run)
        );
    }
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
nav.top{flex-wrap:wrap}.grow{flex:1 1 0}.who{white-space:nowrap}
form.actions{display:flex;flex-wrap:wrap;gap:.4rem .8rem;align-items:center;margin:.4rem 0 1rem}
form.actions button,a.button{font:inherit;padding:.3rem .8rem;border:0;border-radius:.3rem;background:#1f883d;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
form.actions button.danger{background:var(--bad)}
.o-ok{color:var(--ok)}.o-denied{color:var(--bad);font-weight:600}.o-failed{color:var(--late)}
/* Narrow screens: nothing runs off the edge. Tables scroll inside themselves, charts
   shrink to the width, ids wrap only where they must. */
table{display:block;overflow-x:auto;max-width:100%}
svg{max-width:100%;height:auto}
.mono{word-break:normal;overflow-wrap:anywhere}td.mono{overflow-wrap:normal;white-space:nowrap}
h1{overflow-wrap:anywhere}
@media (max-width:640px){body{padding:.6rem}h1{font-size:1.25rem}table.summary th{width:auto}
.charts figure{width:100%}main.login{margin:1rem auto}}
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

fn options(v: &Viewer) -> Options {
    let who = (v.who.actor.kind != ActorKind::Anonymous)
        .then(|| format!("{} ({})", v.who.actor, v.who.role));
    Options {
        refresh: None,
        logout: v.session,
        who,
        live: None,
    }
}

/// A hidden field carrying the CSRF value, for a form.
fn csrf_field(v: &Viewer) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        html(&v.csrf)
    )
}

/// A page title that leads with the state, so a tab or a window list shows it.
fn titled(state: &str, rest: &str) -> String {
    format!("{state} · {rest} · firedrill")
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
                options(&v),
            )
        }
    };
    let active = d.active_runs();
    let mut states = Vec::new();
    for (name, drill) in d.drills().iter().filter(|(n, _)| v.who.sees(n)) {
        let runs = match d.catalog.runs(Some(name), HISTORY).await {
            Ok(r) => r,
            Err(e) => {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &e.to_string(),
                    options(&v),
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
        ..options(&v)
    };
    let mut body = String::new();
    // What the drill files said and how the daemons differ name every drill: not for a
    // principal limited to some.
    let everything = !v.who.limited();
    if let Some((at, problems)) = d.reload_refused().filter(|_| everything) {
        let _ = writeln!(
            body,
            "<section class=\"refused\">\n<h2>Drills not reloaded</h2>\n<p>The reload {} refused the drill files; the old definitions keep running until they validate:</p>\n<pre>{}</pre>\n</section>",
            when(at, now),
            html(&problems)
        );
    }
    let skew = if everything {
        d.cluster().1
    } else {
        Vec::new()
    };
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
    let failing = states
        .iter()
        .filter(|s| s.health == Health::Failing)
        .count();
    let late = states.iter().filter(|s| s.health == Health::Late).count();
    let state = match (failing, late) {
        (0, 0) if states.is_empty() => "no drills".to_string(),
        (0, 0) => "all ok".to_string(),
        (0, l) => format!("{l} late"),
        (f, 0) => format!("{f} failing"),
        (f, l) => format!("{f} failing, {l} late"),
    };
    Html(page(&titled(&state, "drills"), &[], &body, o)).into_response()
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
    if !v.who.sees(&name) {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("no drill named {name}"),
            options(&v),
        );
    }
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
                options(&v),
            )
        }
    };
    if drill.is_none() && runs.is_empty() {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("no drill named {name}"),
            options(&v),
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
    let state = match (&live, drill.as_ref()) {
        (Some((_, st)), _) => st.to_string(),
        (None, Some(dr)) => DrillState::new(dr, &runs, &artifacts, None, now)
            .health
            .label()
            .to_string(),
        (None, None) => "not configured".into(),
    };
    let mut body = drill_body(&name, drill.as_ref(), &runs, &artifacts, live, now);
    if drill.is_some() && v.may(Action::Trigger) {
        body = body.replacen("</h1>\n", &format!("</h1>\n{}", run_form(&name, &v)), 1);
    }
    let crumbs = [(href("drills", &name), name.clone())];
    let o = Options {
        refresh,
        ..options(&v)
    };
    Html(page(
        &titled(&state, &format!("drill {name}")),
        &crumbs,
        &body,
        o,
    ))
    .into_response()
}

/// "Run now": a new backup, or a random stored artifact; kept or not.
fn run_form(name: &str, v: &Viewer) -> String {
    format!(
        "<form class=\"actions\" method=\"post\" action=\"{}/run\">{}\
         <button type=\"submit\" id=\"run-now\">Run now</button>\
         <label><input type=\"checkbox\" name=\"random\" value=\"1\"> a random stored artifact</label>\
         <label><input type=\"checkbox\" name=\"keep\" value=\"1\"> keep the sandbox</label></form>\n",
        href("drills", name),
        csrf_field(v)
    )
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
    // Failed runs, marked where they ended (their duration so far): a trend of passing
    // runs alone would hide them.
    let failed_points: Vec<(jiff::Timestamp, f64, String)> = runs
        .iter()
        .filter(|r| matches!(r.status, RunStatus::Failed | RunStatus::Error))
        .filter_map(|r| {
            let ms = r.rto_seconds.map(|s| s * 1000.0).or_else(|| {
                r.finished_at
                    .map(|f| (f.as_millisecond() - r.started_at.as_millisecond()) as f64)
            })?;
            Some((
                r.started_at,
                ms.max(0.0),
                format!(
                    "run {} {}: after {}",
                    r.run_id,
                    r.status,
                    human_ms(ms.max(0.0) as u64)
                ),
            ))
        })
        .collect();
    let rto_chart = time_series_svg(
        &format!("recovery time of drill {name}"),
        Unit::Millis,
        &[
            Series {
                name: "recovery time".into(),
                colour: "#0969da",
                points: rto_points,
                line: true,
            },
            Series {
                name: "failed runs".into(),
                colour: "#c62828",
                points: failed_points,
                line: false,
            },
        ],
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
                line: true,
            },
            Series {
                name: "encrypted artifact".into(),
                colour: "#1a7f37",
                points: sizes
                    .iter()
                    .map(|(id, s)| point(id, s.0, s.1, "encrypted"))
                    .collect(),
                line: true,
            },
        ],
        None,
    );
    let _ = writeln!(
        b,
        "<section>\n<h2>Trends</h2>\n<div class=\"charts\">\n\
         <figure><figcaption>Recovery time (failed runs in red)</figcaption>\n{rto_chart}</figure>\n\
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
        "<div class=\"wide\"><table class=\"history\">\n<tr><th>run</th><th>started</th><th>outcome</th>\
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
    b.push_str("</table></div>\n</section>\n");
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
                options(&v),
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
            r.started_by = d.run_trigger(&id).map(|t| Actor::parse(&t));
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
            return error_page(StatusCode::NOT_FOUND, &format!("no run {id}"), options(&v))
        }
    };
    if !v.who.sees(&drill) {
        return error_page(StatusCode::NOT_FOUND, &format!("no run {id}"), options(&v));
    }
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
    let started_by = report
        .as_ref()
        .and_then(|r| r.started_by.as_ref())
        .map(|a| {
            format!(
                "<p class=\"sub\">started by <span class=\"mono\">{}</span></p>\n",
                html(&a.to_string())
            )
        })
        .unwrap_or_default();
    let mut b = format!(
        "<h1>run <span class=\"mono\">{}</span> {}</h1>\n{ran_by}{started_by}",
        html(&id),
        status_badge(status)
    );
    if in_progress && v.may(Action::Cancel) {
        let _ = writeln!(
            b,
            "<form class=\"actions\" method=\"post\" action=\"{}/cancel\">{}<button type=\"submit\" id=\"cancel\" class=\"danger\">Cancel this run</button></form>",
            href("runs", &id),
            csrf_field(&v)
        );
    }
    let guards_only = report
        .as_ref()
        .is_some_and(|r| !in_progress && crate::verify::only_guards_failed(r));
    if guards_only && !accepted && v.may(Action::Accept) {
        let _ = writeln!(
            b,
            "<form class=\"actions\" method=\"post\" action=\"{}/accept\">{}<button type=\"submit\" id=\"accept\">Accept: the shrink was intended</button><span class=\"sub\"> it becomes the baseline of the next runs</span></form>",
            href("runs", &id),
            csrf_field(&v)
        );
    }
    match report {
        Some(r) if in_progress => {
            let _ = writeln!(
                b,
                "<p class=\"verdict\">drill {} is {status}, <span id=\"live-stage\">{}</span></p>",
                html(&drill),
                record
                    .as_ref()
                    .and_then(|r| r.stage)
                    .map(|s| format!("in stage {s}"))
                    .unwrap_or_else(|| "waiting for its first stage".into())
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
            b.push_str(&table_rows(&r));
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
    // In progress: the stage follows live (server-sent events); without script, the
    // page still refreshes itself, more slowly.
    let o = Options {
        refresh: in_progress.then_some(30),
        live: in_progress.then(|| id.clone()),
        ..options(&v)
    };
    let state = if accepted {
        "accepted".to_string()
    } else {
        status.to_string()
    };
    Html(page(
        &titled(&state, &format!("{drill} run {id}")),
        &crumbs,
        &b,
        o,
    ))
    .into_response()
}

/// Rows per table, as the dump's fingerprint counted them (what the restore matched).
fn table_rows(r: &RunReport) -> String {
    const SHOWN: usize = 500;
    if r.table_rows.is_empty() {
        return String::new();
    }
    let mut t = format!(
        "<section>\n<h2>Rows per table</h2>\n<p class=\"sub\">{} table{}, {} rows in the dump's fingerprint{}</p>\n<div class=\"wide\"><table class=\"rows\">\n<tr><th>table</th><th>rows</th></tr>\n",
        r.table_rows.len(),
        if r.table_rows.len() == 1 { "" } else { "s" },
        r.table_rows.iter().map(|t| t.rows).sum::<u64>(),
        if r.table_rows.len() > SHOWN {
            format!("; the first {SHOWN} shown")
        } else {
            String::new()
        }
    );
    for row in r.table_rows.iter().take(SHOWN) {
        let _ = writeln!(
            t,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td></tr>",
            html(&row.table),
            row.rows
        );
    }
    t.push_str("</table></div>\n</section>\n");
    t
}

/// What a form that changes something carries: the CSRF value, and its own fields.
#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    random: Option<String>,
    #[serde(default)]
    keep: Option<String>,
}

/// A form is this site's own: it carries back the value derived from the session (or,
/// without one, the CSRF cookie's).
fn csrf_ok(v: &Viewer, headers: &HeaderMap, f: &ActionForm) -> bool {
    if f.csrf.is_empty() || !constant_time_eq(v.csrf.as_bytes(), f.csrf.as_bytes()) {
        return false;
    }
    v.session
        || cookie(headers, CSRF_COOKIE)
            .is_some_and(|c| constant_time_eq(c.as_bytes(), f.csrf.as_bytes()))
}

/// The CSRF value of a session: a keyed hash of its (secret, HttpOnly) cookie.
fn session_csrf(session_cookie: &str) -> String {
    let mut m =
        Hmac::<Sha256>::new_from_slice(session_cookie.as_bytes()).expect("HMAC takes any key");
    m.update(b"firedrill dashboard csrf v1");
    hex::encode(m.finalize().into_bytes())
}

fn refused_page(v: &Viewer, status: StatusCode, message: &str) -> Response {
    error_page(status, message, options(v))
}

fn csrf_refused(v: &Viewer) -> Response {
    refused_page(
        v,
        StatusCode::FORBIDDEN,
        "this form did not come from this dashboard (its CSRF value is missing or stale): reload the page and try again",
    )
}

/// "Run now" on a drill's page.
async fn run_now(
    State(dash): State<Arc<Dashboard>>,
    Extension(v): Extension<Viewer>,
    Extension(src): Extension<Source>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    if !csrf_ok(&v, &headers, &f) {
        return csrf_refused(&v);
    }
    let t = Trigger {
        artifact: None,
        random: f.random.is_some(),
        keep: f.keep.is_some(),
    };
    match actions::trigger(&dash.daemon, &v.who, &src, &name, t).await {
        Ok(id) => Redirect::to(&format!("/runs/{}", pct(&id, b""))).into_response(),
        Err((status, m)) => refused_page(&v, status, &m),
    }
}

/// What a button on a run's page asks.
#[derive(Debug, Clone, Copy)]
enum RunAct {
    Cancel,
    Accept,
}

async fn cancel_run(
    State(dash): State<Arc<Dashboard>>,
    Extension(v): Extension<Viewer>,
    Extension(src): Extension<Source>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    run_act(RunAct::Cancel, &dash, &v, &src, &headers, &id, &f).await
}

async fn accept_run(
    State(dash): State<Arc<Dashboard>>,
    Extension(v): Extension<Viewer>,
    Extension(src): Extension<Source>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    run_act(RunAct::Accept, &dash, &v, &src, &headers, &id, &f).await
}

/// Cancels or accepts a run from its page, then shows the page again.
async fn run_act(
    act: RunAct,
    dash: &Dashboard,
    v: &Viewer,
    src: &Source,
    headers: &HeaderMap,
    id: &str,
    f: &ActionForm,
) -> Response {
    if !csrf_ok(v, headers, f) {
        return csrf_refused(v);
    }
    let done = match act {
        RunAct::Cancel => actions::cancel(&dash.daemon, &v.who, src, id).await,
        RunAct::Accept => actions::accept(&dash.daemon, &v.who, src, id).await,
    };
    match done {
        Ok(_) => Redirect::to(&format!("/runs/{}", pct(id, b""))).into_response(),
        Err((status, m)) => refused_page(v, status, &m),
    }
}

/// The events of a run in progress, for the page's live stage.
async fn live_stage(
    State(dash): State<Arc<Dashboard>>,
    Extension(v): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let drill = actions::drill_of(&dash.daemon, &id).await.ok().flatten();
    if drill.is_none_or(|d| !v.who.sees(&d)) {
        return (StatusCode::NOT_FOUND, "no such run\n").into_response();
    }
    super::events::run_events(dash.daemon.clone(), id).await
}

/// The one script: follows a run's events and writes its stage into the page; reloads
/// it when the run ends (the report is then there to show).
const LIVE_JS: &str = r#"(function () {
  var me = document.currentScript;
  var run = me && me.getAttribute("data-run");
  var out = document.getElementById("live-stage");
  if (!run || !out || !window.EventSource) { return; }
  var es = new EventSource("/runs/" + encodeURIComponent(run) + "/live");
  function data(e) { try { return JSON.parse(e.data); } catch (x) { return {}; } }
  es.addEventListener("stage_started", function (e) {
    var d = data(e); out.textContent = "in stage " + (d.stage || "?");
    document.title = "running " + (d.stage || "") + " · " + document.title.replace(/^[^·]*· /, "");
  });
  es.addEventListener("stage_retrying", function (e) {
    var d = data(e); out.textContent = "retrying " + (d.stage || "") + " (attempt " + (d.attempt || "?") + ")";
  });
  es.addEventListener("finished", function () { es.close(); window.location.reload(); });
})();
"#;

async fn live_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        LIVE_JS,
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
struct AuditPageQuery {
    before: Option<i64>,
}

/// The audit trail, newest first, a page at a time.
async fn audit_page(
    State(dash): State<Arc<Dashboard>>,
    Extension(v): Extension<Viewer>,
    Query(q): Query<AuditPageQuery>,
) -> Response {
    const PAGE: usize = 100;
    let entries = match dash
        .daemon
        .catalog
        .audit(&AuditQuery {
            before: q.before,
            limit: PAGE,
            ..Default::default()
        })
        .await
    {
        Ok(e) => e,
        Err(e) => return refused_page(&v, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let next = (entries.len() == PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let mut b = String::from("<h1>Audit trail</h1>\n<div class=\"wide\"><table class=\"audit\">\n<tr><th>when</th><th>who</th><th>role</th><th>from</th><th>action</th><th>on</th><th>outcome</th><th>what</th></tr>\n");
    for e in entries
        .iter()
        .filter(|e| !v.who.limited() || e.target.as_deref().is_some_and(|t| v.who.sees(t)))
    {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"o-{}\">{}</td><td>{}</td></tr>",
            html(&utc(e.at)),
            html(&e.actor.to_string()),
            html(e.role.map(|r| r.as_str()).unwrap_or("")),
            html(e.source.as_deref().unwrap_or("")),
            html(e.action.as_str()),
            html(e.target.as_deref().unwrap_or("")),
            e.outcome.as_str(),
            e.outcome.as_str(),
            html(e.detail.as_deref().unwrap_or("")),
        );
    }
    b.push_str("</table></div>\n");
    if let Some(n) = next {
        let _ = writeln!(b, "<p><a href=\"/audit?before={n}\">older</a></p>");
    }
    let crumbs = [("/audit".to_string(), "audit".to_string())];
    Html(page(&titled("audit", "trail"), &crumbs, &b, options(&v))).into_response()
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
        let who = super::admin_token_principal();
        let hashed = crate::access::token_hash("s3cret-token");
        let (v, rec) = new_session(&who, &hashed, now);
        assert!(!v.contains("s3cret") && !rec.token_tag.contains("s3cret"));
        assert!(
            !rec.token_tag.contains(&hashed),
            "not even the token's hash"
        );
        assert_eq!(rec.id_hash, session_hash(&v));
        assert_ne!(rec.id_hash, v, "the catalog keeps a hash, not the cookie");
        assert_eq!(rec.token_tag, tag(&hashed));
        assert_ne!(
            rec.token_tag,
            tag(&crate::access::token_hash("another-token"))
        );
        assert!(session_fresh(&rec, now));
        assert!(session_fresh(&rec, now + SESSION_SECS - 1));
        assert!(!session_fresh(&rec, now + SESSION_SECS), "expired");
        assert_eq!(rec.who, Some(who.clone()));
        let (v2, _) = new_session(&who, &hashed, now);
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
            login_page(nasty, Some(nasty), true),
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
