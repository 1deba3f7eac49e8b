//! `firedrill token` (named API tokens, hashed in the tokens file) and `firedrill audit`
//! (the audit trail in the catalog).

use std::path::{Path, PathBuf};

use firedrill::access::{self, Action, Actor, AuditEntry, AuditQuery, Outcome, Role, TokenEntry};
use firedrill::config::MainConfig;

/// A time on the command line: RFC 3339, or a span ago ("7d", "12h").
pub(super) fn time_arg(v: &str, flag: &str) -> Result<jiff::Timestamp, u8> {
    if let Ok(t) = v.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    match humantime::parse_duration(v) {
        Ok(d) => Ok(jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(jiff::Timestamp::MIN)),
        Err(_) => {
            errln!("error: {flag} `{v}` is neither an RFC 3339 time nor a span\n  hint: e.g. {flag} 2026-11-01T00:00:00Z, or {flag} 30d for thirty days ago");
            Err(2)
        }
    }
}

fn tokens_file(config: &MainConfig, file: Option<&Path>) -> Result<PathBuf, u8> {
    file.map(Path::to_path_buf)
        .or_else(|| config.daemon.tokens_file.clone())
        .ok_or_else(|| {
            errln!("error: no tokens file\n  hint: set [daemon] tokens_file = \"/etc/firedrill/tokens.toml\" in --config, or pass --file");
            2
        })
}

/// The tokens file and what it holds, or the exit code after saying why not.
fn load(config: &MainConfig, file: Option<&Path>) -> Result<(PathBuf, Vec<TokenEntry>), u8> {
    let path = tokens_file(config, file)?;
    match access::read_tokens(&path) {
        Ok(t) => Ok((path, t)),
        Err(e) => {
            errln!("error: {e}");
            Err(2)
        }
    }
}

/// An audit entry for an action at this command line.
pub(super) fn by_cli(action: Action, outcome: Outcome, target: &str, detail: String) -> AuditEntry {
    AuditEntry::new(Actor::cli(), action, outcome)
        .source(format!("cli@{}", access::this_host()))
        .target(target)
        .detail(detail)
}

/// Records a change in the catalog's audit trail; one that cannot be recorded is said,
/// and does not undo the change.
pub(super) async fn record(catalog: &Path, e: AuditEntry) {
    match super::try_open_catalog(catalog).await {
        Ok(c) => {
            if let Err(err) = c.record_audit(&e).await {
                errln!("warning: the audit trail did not record this: {err}");
            }
        }
        Err(err) => errln!("warning: the audit trail did not record this (catalog: {err})"),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn create(
    config: &MainConfig,
    catalog: &Path,
    file: Option<&Path>,
    name: &str,
    role: Role,
    drills: Vec<String>,
    rotate: bool,
    json: bool,
) -> u8 {
    let (path, mut tokens) = match load(config, file) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let existing = tokens.iter().position(|t| t.name == name);
    if existing.is_some() && !rotate {
        errln!(
            "error: {}: a token named {name} exists already\n  hint: `--rotate` replaces it (the old one stops working), or choose another name",
            path.display()
        );
        return 2;
    }
    let token = access::new_token();
    let entry = TokenEntry {
        name: name.to_string(),
        role,
        drills: drills.clone(),
        sha256: access::token_hash(&token),
        created: Some(jiff::Timestamp::now()),
    };
    match existing {
        Some(i) => tokens[i] = entry,
        None => tokens.push(entry),
    }
    // Checked as the daemon will read it: a bad name is refused before anything is
    // written.
    if let Err(e) = access::write_tokens(&path, &tokens) {
        errln!("error: {e}");
        return 2;
    }
    let detail = format!(
        "{} token {name} ({role}{})",
        if existing.is_some() {
            "rotated"
        } else {
            "created"
        },
        if drills.is_empty() {
            String::new()
        } else {
            format!(", drills {}", drills.join(", "))
        }
    );
    let me = Actor::cli();
    record(
        catalog,
        AuditEntry::new(me.clone(), Action::TokenCreated, Outcome::Ok)
            .source(format!("cli@{}", access::this_host()))
            .target(name)
            .detail(detail.clone()),
    )
    .await;
    if json {
        let v = serde_json::json!({
            "name": name,
            "role": role,
            "drills": drills,
            "token": token,
            "file": path,
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        errln!(
            "{detail} in {}; the token (shown once, only its hash is kept):",
            path.display()
        );
        outln!("{token}");
    }
    0
}

pub(super) fn list(config: &MainConfig, file: Option<&Path>, json: bool) -> u8 {
    let (path, tokens) = match load(config, file) {
        Ok(x) => x,
        Err(c) => return c,
    };
    if json {
        let v: Vec<serde_json::Value> = tokens
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "role": t.role,
                    "drills": t.drills,
                    "created": t.created.map(|c| c.to_string()),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return 0;
    }
    if tokens.is_empty() {
        errln!("no tokens in {}", path.display());
    }
    for t in &tokens {
        outln!(
            "{:<24} {:<9} {}{}",
            t.name,
            t.role.as_str(),
            if t.drills.is_empty() {
                "every drill".to_string()
            } else {
                t.drills.join(", ")
            },
            t.created
                .map(|c| format!("  (created {})", c.strftime("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        );
    }
    0
}

pub(super) async fn revoke(
    config: &MainConfig,
    catalog: &Path,
    file: Option<&Path>,
    name: &str,
) -> u8 {
    let (path, mut tokens) = match load(config, file) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let before = tokens.len();
    tokens.retain(|t| t.name != name);
    if tokens.len() == before {
        errln!(
            "error: {}: no token named {name}\n  hint: `firedrill token list` names them",
            path.display()
        );
        return 2;
    }
    if let Err(e) = access::write_tokens(&path, &tokens) {
        errln!("error: {e}");
        return 2;
    }
    record(
        catalog,
        AuditEntry::new(Actor::cli(), Action::TokenRevoked, Outcome::Ok)
            .source(format!("cli@{}", access::this_host()))
            .target(name)
            .detail(format!("revoked token {name}")),
    )
    .await;
    errln!(
        "revoked {name} in {}: the daemon refuses it from now on, and its dashboard sessions end",
        path.display()
    );
    0
}

pub(super) async fn audit(
    catalog: &Path,
    since: Option<&str>,
    until: Option<&str>,
    limit: usize,
    json: bool,
) -> u8 {
    let since = match since.map(|s| time_arg(s, "--since")).transpose() {
        Ok(s) => s,
        Err(c) => return c,
    };
    let until = match until.map(|s| time_arg(s, "--until")).transpose() {
        Ok(s) => s,
        Err(c) => return c,
    };
    let c = match super::open_catalog(catalog).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let entries = match c
        .audit(&AuditQuery {
            since,
            until,
            before: None,
            limit: limit.max(1),
        })
        .await
    {
        Ok(e) => e,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
        return 0;
    }
    if entries.is_empty() {
        errln!("no audit entries in that period");
    }
    for e in entries.iter().rev() {
        outln!(
            "{}  {:<8} {:<13} {:<28} {:<9} {}{}{}",
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.outcome.as_str(),
            e.action.as_str(),
            e.actor.to_string(),
            e.role.map(|r| r.as_str()).unwrap_or("-"),
            e.target.as_deref().unwrap_or("-"),
            e.source
                .as_deref()
                .map(|s| format!(" from {s}"))
                .unwrap_or_default(),
            e.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    0
}
