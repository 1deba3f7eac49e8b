//! The main config file (`firedrill.toml`): where the catalog lives, where the drills are,
//! and who gets paged. Drills themselves live one per file in the drills directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::notify::{NotifyConfig, NotifySpec};
use super::{Problem, Problems};

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MainConfigFile {
    /// The catalog: an SQLite file (default: /var/lib/firedrill/catalog.db as root), or a
    /// PostgreSQL database shared by several daemons, `postgres://user@host:5432/db`
    /// (`?sslmode=require` for TLS; the password in `catalog_password`, never the URL).
    pub catalog: Option<PathBuf>,
    /// The PostgreSQL catalog's password: `{ env = "VAR" }` or `{ file = "/path" }`.
    pub catalog_password: Option<crate::secret::SecretRef>,
    /// CA certificates (PEM) the PostgreSQL catalog server's certificate must chain to,
    /// besides the system's.
    pub catalog_ca: Option<PathBuf>,
    /// Where the drill files are (default: `drills` beside this file).
    pub drills_dir: Option<PathBuf>,
    #[serde(default)]
    pub notify: NotifyConfig,
    #[serde(default)]
    pub daemon: DaemonConfigFile,
    /// Where every run's reports (JSON, JUnit XML, HTML) are written (default: `reports`
    /// beside the catalog).
    pub reports_dir: Option<PathBuf>,
    #[serde(default)]
    pub evidence: EvidenceConfigFile,
}

/// `[evidence]`: the key that signs reports, and the key `evidence verify` trusts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfigFile {
    /// An ed25519 private key, PKCS#8 PEM (`firedrill evidence keygen`).
    pub signing_key: Option<crate::secret::SecretRef>,
    /// The public key (hex) reports must be signed with; default: the signing key's.
    pub public_key: Option<String>,
}

/// `[daemon]`: the scheduler and the HTTP API.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfigFile {
    /// Address of the HTTP API (default 127.0.0.1:9797).
    pub listen: Option<String>,
    /// Bearer token for the API (every route but /healthz, and /metrics when public).
    pub token: Option<crate::secret::SecretRef>,
    /// Drills running at once (default 2); others wait in order.
    pub max_concurrent_drills: Option<usize>,
    /// How long SIGTERM waits for drills to stop and sandboxes to go (default "30s").
    pub grace: Option<String>,
    /// An Alertmanager webhook starts a drill at most once per this long (default "1h").
    pub hook_interval: Option<String>,
    /// Serve /metrics without the token (default true).
    pub metrics_public: Option<bool>,
    /// Serve the read-only dashboard (`/`, `/drills/…`, `/runs/…`) without the token
    /// (default false: a bearer header or a login at /login).
    pub dashboard_public: Option<bool>,
    /// Serve HTTPS: the certificate chain (PEM), with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM, PKCS#8, PKCS#1 or SEC1), readable only by
    /// firedrill.
    pub tls_key: Option<PathBuf>,
    /// Connections served at once (default 512, and never more than the file descriptor
    /// limit allows); more are closed at once.
    pub max_connections: Option<usize>,
    /// A connection with nothing moving either way this long is closed (default "60s").
    pub idle_timeout: Option<String>,
    /// A request's headers must arrive within this (default "10s").
    pub header_timeout: Option<String>,
    /// A request's body must arrive within this (default "30s").
    pub body_timeout: Option<String>,
    /// How long finished runs stay in memory for the API's events and live views
    /// (default "24h"; the catalog keeps them for good).
    pub runs_kept: Option<String>,
    /// The daemon serves plain HTTP behind a proxy that terminates HTTPS (default false):
    /// session cookies are marked `Secure`, responses carry HSTS, and the client address
    /// failed logins are counted against is the proxy's `X-Forwarded-For` (its last hop).
    pub behind_https_proxy: Option<bool>,
    /// Failed authentications (a wrong token, on the API or the login form) a client
    /// may make within a minute; past them it is refused (429) until the minute is over
    /// (default 10).
    pub auth_failures: Option<u32>,
    /// A run belongs to the process running it (this daemon, or a `firedrill run`) for
    /// this long past its last heartbeat (default "60s"); only then may another process
    /// sharing the catalog record it lost and remove its sandbox.
    pub lease: Option<String>,
    /// How often a process renews the leases of its runs (default "10s", under a third
    /// of `lease`). A process that cannot renew stops its runs well before they expire.
    pub heartbeat: Option<String>,
    /// How often the daemon looks for runs lost with another process and for firings
    /// nobody runs (default "5s").
    pub poll: Option<String>,
    /// Named API tokens, each with a role (viewer, operator, admin) and optionally limited
    /// to some drills; only their SHA-256 is kept (`firedrill token create` writes it).
    /// Read again whenever it changes: tokens rotate without a restart.
    pub tokens_file: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges, e.g.
    /// "10.0.0.0/8"); from any other peer the header is ignored. Default: loopback when
    /// `behind_https_proxy`, else none.
    pub trusted_proxies: Option<Vec<String>>,
    /// Single sign-on for the dashboard through an OpenID Connect provider.
    pub oidc: Option<OidcConfigFile>,
}

/// `[daemon.oidc]`: dashboard logins through an OpenID Connect provider (authorization
/// code flow with PKCE), roles mapped from a claim.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcConfigFile {
    /// The provider's issuer URL (its `/.well-known/openid-configuration` is read).
    pub issuer: String,
    pub client_id: String,
    /// The client secret: `{ env = "VAR" }` or `{ file = "/path" }`.
    pub client_secret: Option<crate::secret::SecretRef>,
    /// Where the provider sends browsers back: this daemon's `/oidc/callback` as users
    /// reach it (e.g. "https://firedrill.example.com/oidc/callback").
    pub redirect_url: String,
    /// Scopes asked for (default ["openid", "email", "profile", "groups"]).
    pub scopes: Option<Vec<String>>,
    /// The ID token claim that carries group or role names (default "groups").
    pub role_claim: Option<String>,
    /// Claim value → role ("viewer", "operator", "admin"); a user with none of them is
    /// refused. The highest role mapped wins.
    pub roles: std::collections::BTreeMap<String, String>,
    /// The claim that names the user in the audit trail (default "email", then
    /// "preferred_username", then "sub").
    pub name_claim: Option<String>,
}

/// `[daemon]`, checked.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    pub listen: std::net::SocketAddr,
    pub token: Option<crate::secret::SecretSource>,
    pub max_concurrent_drills: usize,
    pub grace: std::time::Duration,
    pub hook_interval: std::time::Duration,
    pub metrics_public: bool,
    pub dashboard_public: bool,
    /// `(certificate chain, private key)` PEM files: the API and dashboard speak HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_connections: usize,
    pub idle_timeout: std::time::Duration,
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub runs_kept: std::time::Duration,
    /// Browsers reach the daemon over HTTPS (it serves TLS, or `behind_https_proxy`).
    pub behind_https_proxy: bool,
    /// Failed authentications a client may make in a minute.
    pub auth_failures: u32,
    /// Leases on runs: how long, and how often renewed.
    pub lease: crate::lease::LeaseSettings,
    /// How often lost runs and open firings are looked for.
    pub poll: std::time::Duration,
    /// `firedrill daemon --insecure-no-auth`: serve without a token (or with a weak one)
    /// instead of refusing to start. Never read from a file.
    pub insecure_no_auth: bool,
    /// Named API tokens (`tokens_file`).
    pub tokens_file: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::access::Cidr>,
    /// Single sign-on.
    pub oidc: Option<OidcSettings>,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            listen: "127.0.0.1:9797".parse().expect("a socket address"),
            token: None,
            max_concurrent_drills: 2,
            grace: std::time::Duration::from_secs(30),
            hook_interval: std::time::Duration::from_secs(3600),
            metrics_public: true,
            dashboard_public: false,
            tls: None,
            max_connections: 512,
            idle_timeout: std::time::Duration::from_secs(60),
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(30),
            runs_kept: std::time::Duration::from_secs(86_400),
            behind_https_proxy: false,
            auth_failures: 10,
            lease: crate::lease::LeaseSettings::default(),
            poll: std::time::Duration::from_secs(5),
            insecure_no_auth: false,
            tokens_file: None,
            trusted_proxies: Vec::new(),
            oidc: None,
        }
    }
}

/// `[daemon.oidc]`, checked.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<crate::secret::SecretSource>,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub role_claim: String,
    pub roles: std::collections::BTreeMap<String, crate::access::Role>,
    pub name_claim: Option<String>,
}

/// An `http://` URL is only for a provider on this machine (tests, a local proxy).
fn oidc_url_problem(url: &str) -> Option<String> {
    if url.starts_with("https://") {
        return None;
    }
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    if loopback.iter().any(|l| {
        url.strip_prefix(l)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
    }) {
        return None;
    }
    Some(format!(
        "`{url}` is not an https:// URL (plain http is allowed only on loopback)"
    ))
}

fn check_oidc(
    o: &OidcConfigFile,
    problem: &dyn Fn(&str, String, &str) -> crate::config::Problem,
    problems: &mut Vec<crate::config::Problem>,
) -> Option<OidcSettings> {
    let before = problems.len();
    for (field, url) in [
        ("daemon.oidc.issuer", &o.issuer),
        ("daemon.oidc.redirect_url", &o.redirect_url),
    ] {
        if let Some(m) = oidc_url_problem(url) {
            problems.push(problem(
                field,
                m,
                "give the https:// URL (the issuer as the provider publishes it; the redirect as browsers reach this daemon, ending in /oidc/callback)",
            ));
        }
    }
    if !o.redirect_url.ends_with("/oidc/callback") {
        problems.push(problem(
            "daemon.oidc.redirect_url",
            format!("`{}` does not end in /oidc/callback", o.redirect_url),
            "the daemon answers the provider at /oidc/callback: e.g. \"https://firedrill.example.com/oidc/callback\" (and register the same URL with the provider)",
        ));
    }
    if o.client_id.trim().is_empty() {
        problems.push(problem(
            "daemon.oidc.client_id",
            "is empty".into(),
            "give the client id the provider registered for firedrill",
        ));
    }
    let client_secret = o.client_secret.as_ref().and_then(|t| {
        t.validate()
            .map_err(|m| {
                problems.push(problem(
                    "daemon.oidc.client_secret",
                    m,
                    "the secret is never inline: { env = \"VAR\" } or { file = \"/path\" }",
                ))
            })
            .ok()
    });
    let mut roles = std::collections::BTreeMap::new();
    for (claim, role) in &o.roles {
        match crate::access::Role::parse(role) {
            Some(r) => {
                roles.insert(claim.clone(), r);
            }
            None => problems.push(problem(
                &format!("daemon.oidc.roles.{claim}"),
                format!("`{role}` is not a role"),
                "use viewer, operator or admin",
            )),
        }
    }
    if o.roles.is_empty() {
        problems.push(problem(
            "daemon.oidc.roles",
            "maps no claim value to a role: nobody could log in".into(),
            "map the provider's groups to roles, e.g. roles = { \"dba\" = \"admin\", \"oncall\" = \"operator\", \"staff\" = \"viewer\" }",
        ));
    }
    if problems.len() > before {
        return None;
    }
    Some(OidcSettings {
        issuer: o.issuer.trim_end_matches('/').to_string(),
        client_id: o.client_id.clone(),
        client_secret,
        redirect_url: o.redirect_url.clone(),
        scopes: o.scopes.clone().unwrap_or_else(|| {
            ["openid", "email", "profile", "groups"]
                .map(String::from)
                .to_vec()
        }),
        role_claim: o.role_claim.clone().unwrap_or_else(|| "groups".into()),
        roles,
        name_claim: o.name_claim.clone(),
    })
}

/// The main config, checked.
#[derive(Debug, Clone, Default)]
pub struct MainConfig {
    pub file: Option<PathBuf>,
    pub base_dir: PathBuf,
    pub catalog: Option<PathBuf>,
    pub catalog_password: Option<crate::secret::SecretSource>,
    pub catalog_ca: Option<PathBuf>,
    pub drills_dir: Option<PathBuf>,
    pub notify: NotifySpec,
    pub daemon: DaemonSettings,
    pub reports_dir: Option<PathBuf>,
    pub signing_key: Option<crate::secret::SecretSource>,
    pub public_key: Option<String>,
}

impl MainConfig {
    /// Where runs write their reports: `dir` when given, else `reports_dir`, else
    /// `reports` beside the catalog.
    pub fn reports_dir(&self, catalog: Option<&Path>, dir: Option<&Path>) -> Option<PathBuf> {
        dir.map(Path::to_path_buf)
            .or_else(|| self.reports_dir.clone())
            .or_else(|| catalog.map(|c| crate::catalog::local_dir(c).join("reports")))
    }

    /// The key that signs reports, read now (`[evidence].signing_key`).
    pub fn signing_key(&self) -> crate::error::Result<Option<ed25519_dalek::SigningKey>> {
        let Some(src) = &self.signing_key else {
            return Ok(None);
        };
        let pem = src
            .load(&self.base_dir)
            .map_err(|e| e.context("evidence.signing_key"))?;
        crate::signing::signing_key_from_pem(pem.expose(), "evidence.signing_key").map(Some)
    }

    /// The key signed reports must carry: `[evidence].public_key`, else the signing key's.
    pub fn trusted_key(&self) -> crate::error::Result<Option<ed25519_dalek::VerifyingKey>> {
        if let Some(hex_key) = &self.public_key {
            return crate::signing::verifying_key_from_hex(hex_key, "evidence.public_key")
                .map(Some);
        }
        Ok(self.signing_key()?.map(|k| k.verifying_key()))
    }
}

pub fn load_main_config(path: &Path) -> Result<MainConfig, Problems> {
    let problem = |field: &str, message: String, fix: &str| Problem {
        file: path.to_path_buf(),
        field: field.into(),
        line: None,
        message,
        fix: fix.into(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![problem(
            "",
            format!("cannot read the file: {e}"),
            "check the path given to --config",
        )])
    })?;
    let text = super::interpolate_env(path, &text)?;
    let raw: MainConfigFile = toml::from_str(&text).map_err(|e| {
        Problems(vec![problem(
            "",
            e.message().to_string(),
            "correct the TOML; unknown fields are refused",
        )])
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let notify = super::notify::validate(&raw.notify).map_err(|ps| {
        Problems(
            ps.into_iter()
                .map(|(f, m, fix)| problem(&f, m, &fix))
                .collect(),
        )
    })?;
    let mut problems = Vec::new();
    let d = &raw.daemon;
    let def = DaemonSettings::default();
    let listen = match &d.listen {
        None => def.listen,
        Some(l) => l.parse().unwrap_or_else(|_| {
            problems.push(problem(
                "daemon.listen",
                format!("`{l}` is not an address"),
                "write host:port, e.g. \"127.0.0.1:9797\" or \"0.0.0.0:9797\"",
            ));
            def.listen
        }),
    };
    let token = d.token.as_ref().and_then(|t| {
        t.validate()
            .map_err(|m| {
                problems.push(problem(
                    "daemon.token",
                    m,
                    "the token is never inline: { env = \"VAR\" } or { file = \"/path\" }",
                ))
            })
            .ok()
    });
    let catalog_password = raw.catalog_password.as_ref().and_then(|t| {
        t.validate()
            .map_err(|m| {
                problems.push(problem(
                    "catalog_password",
                    m,
                    "the password is never inline: { env = \"VAR\" } or { file = \"/path\" }",
                ))
            })
            .ok()
    });
    if let Some(c) = &raw.catalog {
        let url = c.to_string_lossy();
        if crate::catalog::is_postgres(c) {
            if let Err(e) = url.parse::<tokio_postgres::Config>() {
                problems.push(problem(
                    "catalog",
                    format!("not a PostgreSQL URL: {e}"),
                    "write postgres://user@host:5432/database (add ?sslmode=require for TLS)",
                ));
            } else if url
                .parse::<tokio_postgres::Config>()
                .is_ok_and(|c| c.get_password().is_some())
            {
                problems.push(problem(
                    "catalog",
                    "the URL holds a password".into(),
                    "remove it from the URL and give catalog_password = { env = \"VAR\" } or { file = \"/path\" }",
                ));
            }
        } else if url.contains("://") {
            problems.push(problem(
                "catalog",
                format!(
                    "`{}` is neither a file nor a postgres:// URL",
                    crate::secret::redact_url(&url)
                ),
                "give an SQLite file's path, or postgres://user@host:5432/database",
            ));
        }
    }
    let signing_key = raw.evidence.signing_key.as_ref().and_then(|t| {
        t.validate()
            .map_err(|m| {
                problems.push(problem(
                    "evidence.signing_key",
                    m,
                    "the key is never inline: { file = \"/etc/firedrill/evidence.pem\" } or { env = \"VAR\" }",
                ))
            })
            .ok()
    });
    if let Some(k) = &raw.evidence.public_key {
        if let Err(e) = crate::signing::verifying_key_from_hex(k, "evidence.public_key") {
            problems.push(problem(
                "evidence.public_key",
                e.message,
                "paste the 64 hex digits `firedrill evidence keygen` printed",
            ));
        }
    }
    let mut dur = |field: &str, v: &Option<String>, default: std::time::Duration| match v {
        None => default,
        Some(s) => super::parse_duration(s).unwrap_or_else(|m| {
            problems.push(problem(field, m, "write e.g. \"30s\" or \"1h\""));
            default
        }),
    };
    let grace = dur("daemon.grace", &d.grace, def.grace);
    let hook_interval = dur("daemon.hook_interval", &d.hook_interval, def.hook_interval);
    let idle_timeout = dur("daemon.idle_timeout", &d.idle_timeout, def.idle_timeout);
    let header_timeout = dur(
        "daemon.header_timeout",
        &d.header_timeout,
        def.header_timeout,
    );
    let body_timeout = dur("daemon.body_timeout", &d.body_timeout, def.body_timeout);
    let runs_kept = dur("daemon.runs_kept", &d.runs_kept, def.runs_kept);
    let lease = crate::lease::LeaseSettings {
        lease: dur("daemon.lease", &d.lease, def.lease.lease),
        heartbeat: dur("daemon.heartbeat", &d.heartbeat, def.lease.heartbeat),
    };
    let poll = dur("daemon.poll", &d.poll, def.poll);
    if lease.heartbeat.is_zero() || poll.is_zero() || lease.lease < lease.heartbeat * 3 {
        problems.push(problem(
            "daemon.lease",
            format!(
                "a lease of {} renewed every {} leaves no room for a missed heartbeat (poll {})",
                humantime::format_duration(lease.lease),
                humantime::format_duration(lease.heartbeat),
                humantime::format_duration(poll)
            ),
            "make lease at least three heartbeats, and heartbeat and poll more than 0 (defaults: lease \"60s\", heartbeat \"10s\", poll \"5s\")",
        ));
    }
    let max_connections = d.max_connections.unwrap_or(def.max_connections);
    if max_connections == 0 {
        problems.push(problem(
            "daemon.max_connections",
            "0 would serve nobody".into(),
            "give 1 or more (default 512)",
        ));
    }
    let max = d.max_concurrent_drills.unwrap_or(def.max_concurrent_drills);
    if max == 0 {
        problems.push(problem(
            "daemon.max_concurrent_drills",
            "0 would never run a drill".into(),
            "give 1 or more",
        ));
    }
    let resolve_path = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base_dir.join(p)
        }
    };
    let tls = match (&d.tls_cert, &d.tls_key) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            for (field, p) in [("daemon.tls_cert", c), ("daemon.tls_key", k)] {
                if !resolve_path(p).is_file() {
                    problems.push(problem(
                        field,
                        format!("{} is not a readable file", resolve_path(p).display()),
                        "give the PEM file's path (relative paths are relative to this file)",
                    ));
                }
            }
            Some((resolve_path(c), resolve_path(k)))
        }
        (Some(_), None) | (None, Some(_)) => {
            problems.push(problem(
                "daemon.tls_cert",
                "tls_cert and tls_key go together".into(),
                "give both (HTTPS) or neither (plain HTTP, e.g. behind a TLS-terminating proxy)",
            ));
            None
        }
    };
    let behind_https_proxy = d.behind_https_proxy.unwrap_or(false);
    let trusted_proxies = match &d.trusted_proxies {
        Some(list) => list
            .iter()
            .filter_map(|c| {
                crate::access::Cidr::parse(c)
                    .map_err(|m| {
                        problems.push(problem(
                            "daemon.trusted_proxies",
                            m,
                            "give addresses or CIDR ranges, e.g. [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]",
                        ))
                    })
                    .ok()
            })
            .collect(),
        None if behind_https_proxy => vec![
            crate::access::Cidr::parse("127.0.0.0/8").expect("a range"),
            crate::access::Cidr::parse("::1").expect("an address"),
        ],
        None => Vec::new(),
    };
    let oidc = d
        .oidc
        .as_ref()
        .and_then(|o| check_oidc(o, &problem, &mut problems));
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let daemon = DaemonSettings {
        tokens_file: d.tokens_file.as_ref().map(resolve_path),
        trusted_proxies,
        oidc,
        tls,
        listen,
        token,
        max_concurrent_drills: max.max(1),
        grace,
        hook_interval,
        metrics_public: d.metrics_public.unwrap_or(true),
        dashboard_public: d.dashboard_public.unwrap_or(false),
        max_connections: max_connections.max(1),
        idle_timeout,
        header_timeout,
        body_timeout,
        runs_kept,
        behind_https_proxy,
        auth_failures: d.auth_failures.unwrap_or(def.auth_failures).max(1),
        lease,
        poll,
        insecure_no_auth: false,
    };
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };
    Ok(MainConfig {
        file: Some(path.to_path_buf()),
        catalog: raw.catalog.map(|c| {
            if crate::catalog::is_postgres(&c) {
                c
            } else {
                resolve(c)
            }
        }),
        catalog_password,
        catalog_ca: raw.catalog_ca.map(resolve),
        drills_dir: raw.drills_dir.map(resolve),
        reports_dir: raw.reports_dir.map(resolve),
        base_dir,
        notify,
        daemon,
        signing_key,
        public_key: raw.evidence.public_key,
    })
}
