//! Who may do what. Every request, run and change has an [`Actor`] (a named API token, a
//! single-sign-on user, the schedule, an alert, someone at the command line) and, where a
//! person or program asked, a [`Role`]: **viewer** reads everything but secrets,
//! **operator** also starts, cancels and keeps runs, **admin** also reloads, accepts
//! guarded runs and prunes. [`Action::required`] is the one table of which role each
//! action needs; the API and the dashboard both ask it.
//!
//! Named API tokens live in a TOML file (`[daemon] tokens_file`), hashed: the file holds
//! each token's SHA-256, never the token (`firedrill token create` prints it once). The
//! daemon reads the file again whenever it changes, so tokens are added, rotated and
//! revoked without a restart. A token may be limited to some drills (`drills = ["orders-*"]`):
//! it neither sees nor acts on the others.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What a person or program may do, each role all the one below may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads drills, runs, reports, the audit trail; never secrets.
    Viewer,
    /// Also starts runs (of a chosen or random artifact, kept or not), cancels them, and
    /// sends test notifications.
    Operator,
    /// Also reloads drills, accepts a run its anomaly guards failed, prunes storage.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of actor acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// The daemon's scheduler (a drill's `schedule`).
    Schedule,
    /// An Alertmanager webhook (`POST /api/v1/hooks/alertmanager`).
    Alert,
    /// Someone at the command line (`firedrill run`, `accept`, `prune`, `token`).
    Cli,
    /// A named API token (`[daemon] tokens_file`), or `daemon` for `[daemon] token`.
    Token,
    /// A person signed in through OpenID Connect.
    Sso,
    /// Nobody in particular: a daemon serving without authentication.
    Anonymous,
}

/// Who acted: what kind, and its name (the token's, the SSO user's e-mail or subject,
/// `user@host` at the command line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl Actor {
    pub fn new(kind: ActorKind, name: impl Into<String>) -> Self {
        Actor {
            kind,
            name: name.into(),
        }
    }

    pub fn schedule() -> Self {
        Actor::new(ActorKind::Schedule, "")
    }

    /// The person at this command line: `user@host`.
    pub fn cli() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| format!("uid{}", rustix::process::getuid().as_raw()));
        let host = this_host();
        Actor::new(ActorKind::Cli, format!("{user}@{host}"))
    }

    /// Reads [`Display`](std::fmt::Display)'s form back (`token:ci`, `schedule`).
    pub fn parse(s: &str) -> Actor {
        let (kind, name) = s.split_once(':').unwrap_or((s, ""));
        let kind = match kind {
            "schedule" => ActorKind::Schedule,
            "alert" => ActorKind::Alert,
            "cli" => ActorKind::Cli,
            "token" => ActorKind::Token,
            "sso" => ActorKind::Sso,
            "anonymous" => ActorKind::Anonymous,
            // What older versions recorded as a run's trigger.
            "api" => return Actor::new(ActorKind::Token, ""),
            _ => return Actor::new(ActorKind::Anonymous, s),
        };
        Actor::new(kind, name)
    }

    fn kind_str(&self) -> &'static str {
        match self.kind {
            ActorKind::Schedule => "schedule",
            ActorKind::Alert => "alert",
            ActorKind::Cli => "cli",
            ActorKind::Token => "token",
            ActorKind::Sso => "sso",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.is_empty() {
            f.write_str(self.kind_str())
        } else {
            write!(f, "{}:{}", self.kind_str(), self.name)
        }
    }
}

/// This machine's name (as `hostname` says), for actors and run owners.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Everything a person or program can ask of the daemon, and of the catalog from the
/// command line. The audit trail records each change under these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Read drills, runs, reports, the audit trail, the cluster, metrics.
    Read,
    /// Start a run (of the newest, a chosen or a random artifact; kept or not).
    Trigger,
    /// Stop a run.
    Cancel,
    /// Send a test notification through the drill's channels.
    NotifyTest,
    /// Read the drill files again.
    Reload,
    /// Accept a run that failed only its anomaly guards.
    Accept,
    /// Delete artifacts retention no longer keeps.
    Prune,
    /// A dashboard login (by token or single sign-on).
    Login,
    /// A login or token that was refused.
    LoginFailed,
    Logout,
    /// A named API token created or revoked (`firedrill token`).
    TokenCreated,
    TokenRevoked,
}

impl Action {
    /// The role an action needs (logins and token changes are not asked of a role: they
    /// are recorded when they happen).
    pub fn required(self) -> Role {
        match self {
            Action::Read | Action::Login | Action::LoginFailed | Action::Logout => Role::Viewer,
            Action::Trigger | Action::Cancel | Action::NotifyTest => Role::Operator,
            Action::Reload
            | Action::Accept
            | Action::Prune
            | Action::TokenCreated
            | Action::TokenRevoked => Role::Admin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Trigger => "trigger",
            Action::Cancel => "cancel",
            Action::NotifyTest => "notify_test",
            Action::Reload => "reload",
            Action::Accept => "accept",
            Action::Prune => "prune",
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::Logout => "logout",
            Action::TokenCreated => "token_created",
            Action::TokenRevoked => "token_revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        ALL_ACTIONS.iter().copied().find(|a| a.as_str() == s)
    }
}

pub const ALL_ACTIONS: &[Action] = &[
    Action::Read,
    Action::Trigger,
    Action::Cancel,
    Action::NotifyTest,
    Action::Reload,
    Action::Accept,
    Action::Prune,
    Action::Login,
    Action::LoginFailed,
    Action::Logout,
    Action::TokenCreated,
    Action::TokenRevoked,
];

/// Who is asking, as authenticated: the actor, its role, and the drills it is limited
/// to (`None`: every drill).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub actor: Actor,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drills: Option<Vec<String>>,
}

impl Principal {
    /// Whoever reaches a daemon serving without authentication: everything.
    pub fn anonymous() -> Self {
        Principal {
            actor: Actor::new(ActorKind::Anonymous, ""),
            role: Role::Admin,
            drills: None,
        }
    }

    pub fn may(&self, action: Action) -> bool {
        self.role >= action.required()
    }

    /// Whether the drill is one this principal may see and act on.
    pub fn sees(&self, drill: &str) -> bool {
        match &self.drills {
            None => true,
            Some(patterns) => patterns.iter().any(|p| glob_match(p, drill)),
        }
    }

    /// Limited to some drills: what it may not see is said not to exist.
    pub fn limited(&self) -> bool {
        self.drills.is_some()
    }
}

/// `*` (any run of characters) and `?` (any one) against a whole name.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A named API token as its file keeps it: never the token, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    /// Drill names or patterns (`*`, `?`) it is limited to; empty: every drill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<String>,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<jiff::Timestamp>,
}

impl TokenEntry {
    pub fn principal(&self) -> Principal {
        Principal {
            actor: Actor::new(ActorKind::Token, self.name.clone()),
            role: self.role,
            drills: (!self.drills.is_empty()).then(|| self.drills.clone()),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default, rename = "token")]
    tokens: Vec<TokenEntry>,
}

/// The SHA-256 a token file keeps of a token. Tokens are 32 random bytes, so a plain
/// hash is enough: nobody can guess one from it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A new random token: `fdt_` and 32 random bytes in hex.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("fdt_{}", hex::encode(b))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

/// Reads and checks a token file: every problem names the file and the token.
pub fn read_tokens(path: &Path) -> Result<Vec<TokenEntry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::config(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
            .with_hint("it must be readable by firedrill (and by nobody else: chmod 600)"))
        }
    };
    parse_tokens(&text, path)
}

fn parse_tokens(text: &str, path: &Path) -> Result<Vec<TokenEntry>> {
    let hint = "manage it with `firedrill token create|list|revoke`; each [[token]] has name, role (viewer, operator or admin), sha256 and optionally drills";
    let file: TokensFile = toml::from_str(text).map_err(|e| {
        Error::config(format!(
            "the token file {} is not valid: {}",
            path.display(),
            e.to_string().trim()
        ))
        .with_hint(hint)
    })?;
    let mut seen = std::collections::HashSet::new();
    for (i, t) in file.tokens.iter().enumerate() {
        let at = format!("{}: token #{} ({:?})", path.display(), i + 1, t.name);
        if !valid_name(&t.name) {
            return Err(Error::config(format!(
                "{at}: the name must be 1 to 64 letters, digits, '.', '_', '-' or '@'"
            ))
            .with_hint(hint));
        }
        if !seen.insert(t.name.clone()) {
            return Err(Error::config(format!("{at}: the name is used twice")).with_hint(hint));
        }
        if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::config(format!(
                "{at}: sha256 must be 64 hex digits (the token's SHA-256, never the token)"
            ))
            .with_hint(hint));
        }
        if let Some(p) = t.drills.iter().find(|p| p.trim().is_empty()) {
            return Err(
                Error::config(format!("{at}: drills holds an empty pattern {p:?}")).with_hint(hint),
            );
        }
    }
    Ok(file.tokens)
}

/// Writes the token file whole (0600, replaced atomically).
pub fn write_tokens(path: &Path, tokens: &[TokenEntry]) -> Result<()> {
    let file = TokensFile {
        tokens: tokens.to_vec(),
    };
    let mut text = String::from(
        "# firedrill API tokens: SHA-256 hashes only. Manage with `firedrill token`.\n\
         # The daemon reads this file again whenever it changes.\n\n",
    );
    text.push_str(
        &toml::to_string_pretty(&file)
            .map_err(|e| Error::internal(format!("cannot write the token file: {e}")))?,
    );
    // Never a file the daemon would refuse.
    parse_tokens(&text, path)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::config(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("tokens"),
        std::process::id()
    ));
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::config(format!("cannot write {}: {e}", tmp.display())))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::config(format!("cannot write {}: {e}", tmp.display())))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::config(format!("cannot replace {}: {e}", path.display()))
    })
}

/// What identifies a version of the file on disk.
type Stamp = (std::time::SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The named tokens a daemon accepts: the file, read again whenever it changes. A file
/// that no longer reads accepts no named token at all (a revocation with a typo must not
/// leave the revoked token working), and says why in the log each time it changes.
pub struct TokenSet {
    path: PathBuf,
    state: Mutex<(Option<Stamp>, Arc<Vec<TokenEntry>>)>,
}

impl TokenSet {
    /// Reads the file now: a daemon does not start on a broken one.
    pub fn open(path: PathBuf) -> Result<Self> {
        let tokens = read_tokens(&path)?;
        Ok(TokenSet {
            state: Mutex::new((stamp(&path), Arc::new(tokens))),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tokens as the file says now.
    pub fn current(&self) -> Arc<Vec<TokenEntry>> {
        let now = stamp(&self.path);
        let mut s = self.state.lock().expect("token set lock");
        if now != s.0 {
            s.1 = match read_tokens(&self.path) {
                Ok(t) => {
                    tracing::info!(
                        "token file {} changed: {} tokens",
                        self.path.display(),
                        t.len()
                    );
                    Arc::new(t)
                }
                Err(e) => {
                    tracing::error!("{e}; no named token is accepted until it is fixed");
                    Arc::new(Vec::new())
                }
            };
            s.0 = now;
        }
        s.1.clone()
    }

    /// The entry whose token this is.
    pub fn lookup(&self, token: &str) -> Option<TokenEntry> {
        let h = token_hash(token);
        self.current()
            .iter()
            .find(|t| constant_time_eq(t.sha256.as_bytes(), h.as_bytes()))
            .cloned()
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused: the role does not allow it, or the login was wrong.
    Denied,
    /// Allowed, but it did not happen (a drill already running, a catalog unreachable).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Outcome {
        match s {
            "ok" => Outcome::Ok,
            "denied" => Outcome::Denied,
            _ => Outcome::Failed,
        }
    }
}

/// One line of the audit trail: who did what, to what, when, from where, and how it
/// ended. The catalog keeps them (every daemon sharing it writes to one trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Its place in the trail (set by the catalog; later entries have larger ids).
    #[serde(default)]
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    pub actor: Actor,
    /// The role it acted in (none for the schedule, an alert, a failed login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The client's address (`X-Forwarded-For` only from `[daemon] trusted_proxies`), or
    /// `cli@host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub action: Action,
    /// The drill, run or token acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What it changed: the run started, the options asked, why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub outcome: Outcome,
}

impl AuditEntry {
    pub fn new(actor: Actor, action: Action, outcome: Outcome) -> Self {
        AuditEntry {
            id: 0,
            at: jiff::Timestamp::now(),
            actor,
            role: None,
            source: None,
            action,
            target: None,
            detail: None,
            outcome,
        }
    }

    pub fn by(p: &Principal, source: Option<String>, action: Action, outcome: Outcome) -> Self {
        AuditEntry {
            role: Some(p.role),
            source,
            ..AuditEntry::new(p.actor.clone(), action, outcome)
        }
    }

    pub fn target(mut self, t: impl Into<String>) -> Self {
        self.target = Some(t.into());
        self
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    pub fn source(mut self, s: impl Into<String>) -> Self {
        self.source = Some(s.into());
        self
    }
}

/// Which audit entries to read: newest first, at most `limit`, optionally only before
/// the entry `before` (the next page), and within a time window.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since: Option<jiff::Timestamp>,
    pub until: Option<jiff::Timestamp>,
    pub before: Option<i64>,
    pub limit: usize,
}

/// An address or a range of them (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> std::result::Result<Cidr, String> {
        let s = s.trim();
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not an address or a CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, bits })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Compares in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Not `(a.len() ^ b.len()) as u8`: lengths 256 apart would truncate to equal, and the
    // token followed by 256 NULs (a form field can carry them) would match.
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_table() {
        let viewer = Principal {
            actor: Actor::new(ActorKind::Token, "v"),
            role: Role::Viewer,
            drills: None,
        };
        let operator = Principal {
            role: Role::Operator,
            ..viewer.clone()
        };
        let admin = Principal {
            role: Role::Admin,
            ..viewer.clone()
        };
        for (action, v, o, a) in [
            (Action::Read, true, true, true),
            (Action::Trigger, false, true, true),
            (Action::Cancel, false, true, true),
            (Action::NotifyTest, false, true, true),
            (Action::Reload, false, false, true),
            (Action::Accept, false, false, true),
            (Action::Prune, false, false, true),
        ] {
            assert_eq!(viewer.may(action), v, "viewer {action:?}");
            assert_eq!(operator.may(action), o, "operator {action:?}");
            assert_eq!(admin.may(action), a, "admin {action:?}");
        }
        for a in ALL_ACTIONS {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
    }

    #[test]
    fn drill_limits_match_whole_names() {
        assert!(glob_match("orders-*", "orders-eu"));
        assert!(glob_match("orders-*", "orders-"));
        assert!(!glob_match("orders-*", "my-orders-eu"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*-pg-*", "x-pg-y"));
        assert!(!glob_match("billing", "billing2"));
        let p = Principal {
            actor: Actor::new(ActorKind::Token, "ci"),
            role: Role::Operator,
            drills: Some(vec!["orders-*".into(), "billing".into()]),
        };
        assert!(p.sees("billing") && p.sees("orders-1") && !p.sees("payroll"));
    }

    #[test]
    fn proxy_ranges() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(Cidr::parse("proxy").unwrap_err().contains("`proxy`"));
    }

    #[test]
    fn actors_read_back() {
        for a in [
            Actor::schedule(),
            Actor::new(ActorKind::Token, "ci-bot"),
            Actor::new(ActorKind::Sso, "alice@example.test"),
            Actor::new(ActorKind::Cli, "root@db1"),
            Actor::new(ActorKind::Alert, "alertmanager"),
        ] {
            assert_eq!(Actor::parse(&a.to_string()), a);
        }
    }

    #[test]
    fn token_files_are_checked_and_hold_only_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let token = new_token();
        assert!(token.starts_with("fdt_") && token.len() > 40);
        let entry = TokenEntry {
            name: "ci".into(),
            role: Role::Operator,
            drills: vec!["orders-*".into()],
            sha256: token_hash(&token),
            created: None,
        };
        write_tokens(&path, std::slice::from_ref(&entry)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token), "{text}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let set = TokenSet::open(path.clone()).unwrap();
        assert_eq!(set.lookup(&token), Some(entry.clone()));
        assert_eq!(set.lookup("fdt_wrong"), None);
        // Rotated without a restart: the file changes, the set follows.
        let second = new_token();
        let rotated = TokenEntry {
            sha256: token_hash(&second),
            ..entry.clone()
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_tokens(&path, &[rotated]).unwrap();
        assert_eq!(set.lookup(&token), None);
        assert!(set.lookup(&second).is_some());
        // A broken file accepts nothing, and says where.
        std::fs::write(
            &path,
            "[[token]]\nname = \"x\"\nrole = \"root\"\nsha256 = \"00\"\n",
        )
        .unwrap();
        assert_eq!(set.lookup(&second), None);
        let e = read_tokens(&path).unwrap_err().to_string();
        assert!(e.contains("tokens.toml") && e.contains("role"), "{e}");
        std::fs::write(
            &path,
            format!(
                "[[token]]\nname = \"a b\"\nrole = \"viewer\"\nsha256 = \"{}\"\n",
                "0".repeat(64)
            ),
        )
        .unwrap();
        let e = read_tokens(&path).unwrap_err().to_string();
        assert!(e.contains("token #1") && e.contains("name"), "{e}");
    }
}
