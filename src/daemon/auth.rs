//! Who may use the API and the dashboard: the daemon's bearer token (an admin's), the
//! named tokens of `[daemon] tokens_file` (each with its role and drills), compared in
//! constant time, and refused for a while to a client that keeps guessing. Every
//! request gets a [`Principal`]; handlers ask it whether the action is allowed
//! ([`allow`]) and record changes in the audit trail ([`Daemon::audit`]). The
//! dashboard's login sessions and single sign-on build on it (`dashboard.rs`, `oidc.rs`).
//! A daemon with no way to authenticate, or a weak token, does not start unless told
//! `--insecure-no-auth`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Daemon;
use crate::access::{Action, AuditEntry, Outcome, Principal};
use crate::config::MainConfig;
use crate::error::{Error, Result};

/// Tokens shorter than this are refused: a guess a second would find a short one.
pub const MIN_TOKEN_BYTES: usize = 16;

/// What example files and templates put where a token goes.
const PLACEHOLDERS: &[&str] = &[
    "replace_me",
    "replace-me",
    "replaceme",
    "changeme",
    "change_me",
    "change-me",
    "changeit",
    "your-token",
    "your_token",
    "yourtoken",
    "example",
    "placeholder",
    "secret",
    "password",
    "token",
    "xxxxxxxx",
];

/// Why `token` is too weak to guard the API, if it is.
pub fn weak_token(token: &str) -> Option<String> {
    let t = token.trim();
    let lower = t.to_ascii_lowercase();
    if PLACEHOLDERS
        .iter()
        .any(|p| lower == *p || (lower.contains(*p) && p.len() >= 8 && t.len() < 2 * p.len()))
    {
        return Some(
            "the token is a placeholder from an example (REPLACE_ME, changeme, …)".to_string(),
        );
    }
    if t.len() < MIN_TOKEN_BYTES {
        return Some(format!(
            "the token is {} bytes; at least {MIN_TOKEN_BYTES} are needed",
            t.len()
        ));
    }
    let distinct: std::collections::BTreeSet<char> = t.chars().collect();
    if distinct.len() < 4 {
        return Some(format!(
            "the token repeats {} characters; it must be random",
            distinct.len()
        ));
    }
    None
}

/// Refuses a daemon that would serve its API and dashboard to anyone: no `[daemon]
/// token`, or a short or placeholder one, unless `--insecure-no-auth` says so. Reads the
/// token (so an unreadable one is said here, before anything is bound).
pub fn check_auth(config: &MainConfig) -> Result<()> {
    let d = &config.daemon;
    let hint = "generate one: `head -c 32 /dev/urandom | base64 > /etc/firedrill/api-token`, then [daemon] token = { file = \"/etc/firedrill/api-token\" } (or { env = \"FIREDRILL_API_TOKEN\" }); `firedrill daemon --insecure-no-auth` serves without, for a trusted loopback only";
    if let Some(path) = &d.tokens_file {
        crate::access::read_tokens(path).map_err(|e| e.context("daemon.tokens_file"))?;
    }
    let other_ways = d.tokens_file.is_some() || d.oidc.is_some();
    let problem = match &d.token {
        None if other_ways => None,
        None => Some(format!(
            "no [daemon] token (nor tokens_file, nor oidc): the API (which starts drills) and the dashboard on {} would be open to anyone who reaches them",
            d.listen
        )),
        Some(t) => {
            let token = t.load(&config.base_dir).map_err(|e| e.context("daemon.token"))?;
            weak_token(token.expose()).map(|why| format!("daemon.token: {why}"))
        }
    };
    match problem {
        Some(p) if d.insecure_no_auth => {
            tracing::warn!("{p}; serving anyway (--insecure-no-auth)");
            eprintln!("firedrill daemon: WARNING: {p}; serving anyway (--insecure-no-auth)");
            Ok(())
        }
        Some(p) => Err(Error::config(format!("refusing to start: {p}")).with_hint(hint)),
        None => Ok(()),
    }
}

/// The window, and how long a client that used it up is refused.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Clients tracked at most; the oldest are forgotten first.
const CLIENTS_TRACKED: usize = 4096;

/// Failed token guesses per client: past `[daemon] auth_failures` (10) within
/// [`FAILURE_WINDOW`], every attempt from it is refused with 429 (a right token too,
/// or guessing would go on) until the window has passed. IPv6 clients count by /64: one
/// host holds a whole one.
pub struct Throttle {
    /// Failed authentications a client may make in a window before it is refused
    /// (`[daemon] auth_failures`).
    allowed: u32,
    clients: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    pub fn new(allowed: u32) -> Self {
        Throttle {
            allowed: allowed.max(1),
            clients: Mutex::default(),
        }
    }

    /// The seconds `client` must still wait, when it is refused.
    pub fn refused(&self, client: IpAddr) -> Option<u64> {
        let key = client_key(client);
        let clients = self.clients.lock().expect("throttle lock");
        let (n, since) = clients.get(&key)?;
        let left = FAILURE_WINDOW.checked_sub(since.elapsed())?;
        (*n >= self.allowed).then(|| left.as_secs().max(1))
    }

    /// Counts a failed attempt by `client`.
    pub fn failed(&self, client: IpAddr) {
        let key = client_key(client);
        let mut clients = self.clients.lock().expect("throttle lock");
        let now = Instant::now();
        if clients.len() >= CLIENTS_TRACKED && !clients.contains_key(&key) {
            clients.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
            if clients.len() >= CLIENTS_TRACKED {
                if let Some(oldest) = clients.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| *k) {
                    clients.remove(&oldest);
                }
            }
        }
        let e = clients.entry(key).or_insert((0, now));
        if now.duration_since(e.1) >= FAILURE_WINDOW {
            *e = (0, now);
        }
        e.0 += 1;
        if e.0 == self.allowed {
            tracing::warn!(
                "{} failed authentications from {key} within a minute: refusing it for a minute",
                self.allowed
            );
        }
    }

    /// A right token ends the client's count.
    pub fn succeeded(&self, client: IpAddr) {
        let key = client_key(client);
        self.clients.lock().expect("throttle lock").remove(&key);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients.lock().expect("throttle lock").len()
    }
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Who is asking: the connection's peer, unless the peer is one of `[daemon]
/// trusted_proxies`; then the `X-Forwarded-For` addresses are walked from the last (the
/// one the nearest proxy saw) back past any trusted proxy, and the first untrusted one is
/// the client. Addresses a client wrote itself come earlier and are never reached.
pub(super) fn client_ip(d: &Daemon, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
    let peer = peer.map(|p| p.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    forwarded_client(&d.config.daemon.trusted_proxies, peer, headers)
}

fn forwarded_client(trusted: &[crate::access::Cidr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A garbled hop ends the walk: nothing before it can be believed.
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// 429 with when to try again.
pub(super) fn too_many(wait: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", wait.to_string())],
        "too many failed authentications from this address; try again later\n",
    )
        .into_response()
}

/// `Strict-Transport-Security` on every response of a daemon reached over HTTPS.
pub(super) async fn hsts(
    State(d): State<Arc<Daemon>>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let mut res = next.run(req).await;
    if d.config.daemon.tls.is_some() || d.config.daemon.behind_https_proxy {
        res.headers_mut().insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}

pub(super) use crate::access::constant_time_eq;

/// The bearer token of an `Authorization` header (the scheme in any case, as RFC 9110
/// says), if it has one.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Who a bearer token is: the daemon's own (an admin, named `daemon`) or a named token.
pub(super) fn bearer_principal(d: &Daemon, given: &str) -> Option<Principal> {
    if let Some(token) = d.token() {
        if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            return Some(admin_token_principal());
        }
    }
    d.tokens.as_ref()?.lookup(given).map(|t| t.principal())
}

/// `[daemon] token`'s principal.
pub(super) fn admin_token_principal() -> Principal {
    Principal {
        actor: crate::access::Actor::new(crate::access::ActorKind::Token, "daemon"),
        role: crate::access::Role::Admin,
        drills: None,
    }
}

/// The client's address, as the audit trail records it.
#[derive(Debug, Clone)]
pub(super) struct Source(pub String);

/// Authenticates an API request: a [`Principal`] (and the client's [`Source`]) for the
/// handlers, or 401 without a valid token (when the daemon needs one), 429 to a guesser.
pub(super) async fn bearer_auth(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    mut req: axum::extract::Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = client_ip(&d, peer, &headers);
    req.extensions_mut().insert(Source(client.to_string()));
    if !d.auth_required() {
        req.extensions_mut().insert(Principal::anonymous());
        return next.run(req).await;
    }
    if let Some(wait) = d.throttle.refused(client) {
        return too_many(wait);
    }
    let given = bearer(&headers).unwrap_or("");
    let Some(p) = bearer_principal(&d, given) else {
        if given.is_empty() {
            d.throttle.failed(client);
        } else {
            d.wrong_token(client, format!("a wrong API token on {}", req.uri().path()))
                .await;
        }
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            "",
        )
            .into_response();
    };
    d.throttle.succeeded(client);
    req.extensions_mut().insert(p);
    next.run(req).await
}

/// Refuses (403, and a line in the audit trail for anything but a read) what the
/// principal's role does not allow, or a drill it is not limited to (404: to it, the
/// drill does not exist).
pub(super) async fn allow(
    d: &Daemon,
    p: &Principal,
    source: &Source,
    action: Action,
    drill: Option<&str>,
) -> std::result::Result<(), (StatusCode, String)> {
    if let Some(name) = drill {
        if !p.sees(name) {
            // Probing another team's drills leaves a trace.
            if action != Action::Read {
                d.audit(
                    AuditEntry::by(p, Some(source.0.clone()), action, Outcome::Denied)
                        .detail(format!("{name}: not among the drills it is limited to")),
                )
                .await;
            }
            return Err((StatusCode::NOT_FOUND, format!("no drill named {name}")));
        }
    }
    if p.may(action) {
        return Ok(());
    }
    if action != Action::Read {
        let mut e = AuditEntry::by(p, Some(source.0.clone()), action, Outcome::Denied)
            .detail(format!("the {} role may not {}", p.role, action.as_str()));
        e.target = drill.map(str::to_string);
        d.audit(e).await;
    }
    Err((
        StatusCode::FORBIDDEN,
        format!(
            "{} ({}) may not {}: it needs the {} role",
            p.actor,
            p.role,
            action.as_str().replace('_', " "),
            action.required()
        ),
    ))
}

impl Daemon {
    /// Whether requests need a credential: a token, a token file or single sign-on is
    /// configured.
    pub(super) fn auth_required(&self) -> bool {
        self.token.is_some() || self.tokens.is_some() || self.config.daemon.oidc.is_some()
    }

    /// A token that is none of this daemon's: counted against the client, and kept in
    /// the audit trail.
    pub(super) async fn wrong_token(&self, client: IpAddr, detail: String) {
        self.throttle.failed(client);
        self.audit(
            AuditEntry::new(
                crate::access::Actor::new(crate::access::ActorKind::Token, "?"),
                Action::LoginFailed,
                Outcome::Denied,
            )
            .source(client.to_string())
            .detail(detail),
        )
        .await;
    }

    /// Appends to the audit trail (and the log); a catalog that cannot take it is said
    /// in the log, never to the client.
    pub(super) async fn audit(&self, e: AuditEntry) {
        tracing::info!(
            target: "firedrill::audit",
            actor = %e.actor,
            role = e.role.map(|r| r.as_str()).unwrap_or("-"),
            source = e.source.as_deref().unwrap_or("-"),
            action = e.action.as_str(),
            target = e.target.as_deref().unwrap_or("-"),
            outcome = e.outcome.as_str(),
            "{}",
            e.detail.as_deref().unwrap_or("")
        );
        if let Err(err) = self.catalog.record_audit(&e).await {
            tracing::error!(
                "the audit trail could not record {} by {}: {err}",
                e.action.as_str(),
                e.actor
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        let mut padded = b"abc".to_vec();
        padded.extend([0u8; 256]);
        assert!(!constant_time_eq(b"abc", &padded));
    }

    #[test]
    fn weak_tokens_are_named() {
        assert!(weak_token("REPLACE_ME").unwrap().contains("placeholder"));
        assert!(weak_token("changeme").unwrap().contains("placeholder"));
        assert!(weak_token("x").unwrap().contains("1 bytes"));
        assert!(weak_token("aaaaaaaaaaaaaaaaaaaa")
            .unwrap()
            .contains("random"));
        assert!(weak_token("short-but-ok").is_some());
        assert_eq!(weak_token("q3Vd8kPz1LmW0xYt9RbN4sHc"), None);
        // A random token that happens to hold a common word is no placeholder.
        assert_eq!(weak_token("9fJ2token8Qw1Zp0Lk7Xv3Bn5Mc"), None);
    }

    #[test]
    fn a_guessing_client_is_refused_then_forgiven() {
        const FAILURES_ALLOWED: u32 = 10;
        let t = Throttle::new(FAILURES_ALLOWED);
        let guesser: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "203.0.113.10".parse().unwrap();
        for _ in 0..FAILURES_ALLOWED - 1 {
            t.failed(guesser);
            assert_eq!(t.refused(guesser), None);
        }
        t.failed(guesser);
        assert!(t.refused(guesser).is_some_and(|w| w <= 60));
        assert_eq!(t.refused(other), None, "only the guesser is refused");
        // One host's IPv6 addresses count together.
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        for _ in 0..FAILURES_ALLOWED {
            t.failed(a);
        }
        assert!(t.refused(b).is_some());
        t.succeeded(other);
        // Bounded: a flood of addresses does not grow it without end.
        for i in 0..(CLIENTS_TRACKED as u32 + 500) {
            t.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert!(t.tracked() <= CLIENTS_TRACKED);
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted = vec![
            crate::access::Cidr::parse("10.0.0.0/8").unwrap(),
            crate::access::Cidr::parse("127.0.0.1").unwrap(),
        ];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 10.0.0.5".parse().unwrap(),
        );
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        // Through the trusted proxies: the first untrusted hop from the end, never what
        // the client wrote before it.
        assert_eq!(
            forwarded_client(&trusted, proxy, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // From anyone else, the header is ignored.
        assert_eq!(forwarded_client(&trusted, stranger, &h), stranger);
        assert_eq!(forwarded_client(&[], proxy, &h), proxy);
        // A garbled hop ends the walk where it is.
        h.insert(
            "x-forwarded-for",
            "203.0.113.7, junk, 10.0.0.9".parse().unwrap(),
        );
        assert_eq!(
            forwarded_client(&trusted, proxy, &h),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_bearer_scheme_in_any_case() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "bearer s3cret".parse().unwrap());
        assert_eq!(bearer(&h), Some("s3cret"));
        h.insert("authorization", "BEARER s3cret".parse().unwrap());
        assert_eq!(bearer(&h), Some("s3cret"));
        h.insert("authorization", "Basic s3cret".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
