//! What a person or program can ask of the daemon that changes something (start, cancel,
//! accept, prune, reload), once for the API and the dashboard: each checks the role and
//! the drills the principal is limited to, does it, and records it in the audit trail
//! with its outcome.

use std::sync::Arc;

use axum::http::StatusCode;

use super::auth::{allow, Source};
use super::{Daemon, StartError};
use crate::access::{Action, AuditEntry, Outcome, Principal};
use crate::drill::RunOptions;

/// Why an action did not happen: the status and message the API answers with (the
/// dashboard shows the message on an error page).
pub(super) type Refusal = (StatusCode, String);

/// Refuses a principal limited to some drills an action that reaches every drill.
fn unlimited(who: &Principal, what: &str) -> Result<(), Refusal> {
    if who.limited() {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "{} is limited to some drills; this {what}, so it needs an unlimited token",
                who.actor
            ),
        ));
    }
    Ok(())
}

/// A run to start: the newest backup, a chosen or a random stored artifact; kept or not.
#[derive(Debug, Default, Clone)]
pub(super) struct Trigger {
    pub artifact: Option<String>,
    pub random: bool,
    pub keep: bool,
}

impl Trigger {
    fn describe(&self) -> String {
        let mut what = match (&self.artifact, self.random) {
            (Some(a), _) => format!("drill stored artifact {a}"),
            (None, true) => "drill a random stored artifact".to_string(),
            (None, false) => "a new backup".to_string(),
        };
        if self.keep {
            what.push_str(", sandbox kept");
        }
        what
    }
}

async fn record(
    d: &Daemon,
    who: &Principal,
    source: &Source,
    action: Action,
    target: &str,
    outcome: Outcome,
    detail: String,
) {
    d.audit(
        AuditEntry::by(who, Some(source.0.clone()), action, outcome)
            .target(target)
            .detail(detail),
    )
    .await;
}

/// Starts a run of `name`; returns its run id.
pub(super) async fn trigger(
    d: &Arc<Daemon>,
    who: &Principal,
    source: &Source,
    name: &str,
    t: Trigger,
) -> Result<String, Refusal> {
    allow(d, who, source, Action::Trigger, Some(name)).await?;
    let result = start(d, who, name, &t).await;
    match &result {
        Ok(id) => {
            record(
                d,
                who,
                source,
                Action::Trigger,
                name,
                Outcome::Ok,
                format!("run {id}: {}", t.describe()),
            )
            .await
        }
        Err((status, why)) => {
            record(
                d,
                who,
                source,
                Action::Trigger,
                name,
                Outcome::Failed,
                format!("{}: not started ({status}): {why}", t.describe()),
            )
            .await
        }
    }
    result
}

async fn start(
    d: &Arc<Daemon>,
    who: &Principal,
    name: &str,
    t: &Trigger,
) -> Result<String, Refusal> {
    let mut artifact = t.artifact.clone();
    // A run id that names nothing this drill stored is the client's mistake, not a
    // broken backup: refused here, before a run is recorded or anyone paged.
    if let Some(id) = &artifact {
        let Some(drill) = d.drills().get(name).cloned() else {
            return Err((StatusCode::NOT_FOUND, format!("no drill named {name}")));
        };
        if let Err(e) = d.runner.check_artifact(&drill, id).await {
            let status = match crate::store::StoreFault::of(&e) {
                Some(crate::store::StoreFault::NotFound) => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            return Err((status, e.to_string()));
        }
    }
    if t.random {
        let Some(drill) = d.drills().get(name).cloned() else {
            return Err((StatusCode::NOT_FOUND, format!("no drill named {name}")));
        };
        match crate::inventory::random_artifact(&drill).await {
            Ok(Some(a)) => artifact = Some(a),
            Ok(None) => {
                return Err((
                    StatusCode::CONFLICT,
                    format!("drill {name} has no stored artifacts"),
                ))
            }
            Err(e) => return Err((StatusCode::BAD_GATEWAY, e.to_string())),
        }
    }
    let opts = RunOptions {
        keep: t.keep,
        artifact,
        started_by: Some(who.actor.clone()),
        ..Default::default()
    };
    d.start_or_offer(name, opts, &who.actor.to_string())
        .await
        .map_err(|e| match e {
            StartError::UnknownDrill(n) => (StatusCode::NOT_FOUND, format!("no drill named {n}")),
            StartError::AlreadyRunning {
                drill,
                run_id,
                owner,
            } => (
                StatusCode::CONFLICT,
                match owner {
                    Some(o) => format!("drill {drill} is already running as {run_id} (run by {o})"),
                    None => format!("drill {drill} is already running as {run_id}"),
                },
            ),
            StartError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is shutting down".into(),
            ),
            StartError::Skewed(drill) => (
                StatusCode::CONFLICT,
                format!("drill {drill} is defined differently on this daemon than on the others sharing the catalog; it runs on a daemon holding the agreed definition (GET /api/v1/cluster)"),
            ),
        })
}

/// The drill of a run, live or in the catalog.
pub(super) async fn drill_of(d: &Daemon, id: &str) -> Result<Option<String>, Refusal> {
    if let Some((drill, ..)) = d.run_view(id) {
        return Ok(Some(drill));
    }
    d.catalog
        .run(id)
        .await
        .map(|r| r.map(|r| r.drill))
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Stops a run in progress on this daemon; returns its drill.
pub(super) async fn cancel(
    d: &Daemon,
    who: &Principal,
    source: &Source,
    id: &str,
) -> Result<String, Refusal> {
    let not_running = || (StatusCode::NOT_FOUND, format!("no running run {id}"));
    let drill = drill_of(d, id).await?.ok_or_else(not_running)?;
    if !who.sees(&drill) {
        return Err(not_running());
    }
    allow(d, who, source, Action::Cancel, Some(&drill)).await?;
    if d.cancel_run(id) {
        record(
            d,
            who,
            source,
            Action::Cancel,
            &drill,
            Outcome::Ok,
            format!("run {id} cancelled"),
        )
        .await;
        Ok(drill)
    } else {
        record(
            d,
            who,
            source,
            Action::Cancel,
            &drill,
            Outcome::Failed,
            format!("run {id} is not running on this daemon"),
        )
        .await;
        Err(not_running())
    }
}

/// Accepts a run that failed only its anomaly guards; returns its drill.
pub(super) async fn accept(
    d: &Daemon,
    who: &Principal,
    source: &Source,
    id: &str,
) -> Result<String, Refusal> {
    let unknown = || (StatusCode::NOT_FOUND, format!("no run {id}"));
    let drill = drill_of(d, id).await?.ok_or_else(unknown)?;
    if !who.sees(&drill) {
        return Err(unknown());
    }
    allow(d, who, source, Action::Accept, Some(&drill)).await?;
    let def = d.drills().get(&drill).cloned();
    match crate::inventory::accept_run(d.catalog.as_ref(), id, def.as_ref()).await {
        Ok(_) => {
            record(
                d,
                who,
                source,
                Action::Accept,
                &drill,
                Outcome::Ok,
                format!("run {id} accepted: it is the baseline of the next runs"),
            )
            .await;
            Ok(drill)
        }
        Err(e) => {
            record(
                d,
                who,
                source,
                Action::Accept,
                &drill,
                Outcome::Failed,
                format!("run {id}: {e}"),
            )
            .await;
            let status = if e.kind == crate::error::ErrorKind::Config {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_GATEWAY
            };
            Err((status, e.to_string()))
        }
    }
}

/// Applies a drill's retention to its storage (or says what it would delete).
pub(super) async fn prune(
    d: &Daemon,
    who: &Principal,
    source: &Source,
    name: &str,
    dry_run: bool,
) -> Result<crate::inventory::PruneReport, Refusal> {
    allow(d, who, source, Action::Prune, Some(name)).await?;
    let Some(drill) = d.drills().get(name).cloned() else {
        return Err((StatusCode::NOT_FOUND, format!("no drill named {name}")));
    };
    match crate::inventory::prune(Some(d.catalog.as_ref()), &drill, dry_run).await {
        Ok(r) => {
            let deleted = r.decisions.iter().filter(|x| !x.keep).count();
            if !dry_run {
                record(
                    d,
                    who,
                    source,
                    Action::Prune,
                    name,
                    Outcome::Ok,
                    format!(
                        "{deleted} artifact{} deleted, {} orphan{} removed",
                        if deleted == 1 { "" } else { "s" },
                        r.orphans.len(),
                        if r.orphans.len() == 1 { "" } else { "s" }
                    ),
                )
                .await;
            }
            Ok(r)
        }
        Err(e) => {
            record(
                d,
                who,
                source,
                Action::Prune,
                name,
                Outcome::Failed,
                e.to_string(),
            )
            .await;
            Err((StatusCode::BAD_GATEWAY, e.to_string()))
        }
    }
}

/// Reads the drill files again; returns how many drills are loaded.
pub(super) async fn reload(d: &Daemon, who: &Principal, source: &Source) -> Result<usize, Refusal> {
    allow(d, who, source, Action::Reload, None).await?;
    unlimited(who, "reloads every drill")?;
    match d.reload() {
        Ok(n) => {
            record(
                d,
                who,
                source,
                Action::Reload,
                "drills",
                Outcome::Ok,
                format!("{n} drills loaded"),
            )
            .await;
            Ok(n)
        }
        Err(p) => {
            record(
                d,
                who,
                source,
                Action::Reload,
                "drills",
                Outcome::Failed,
                "a drill file does not validate; the old definitions keep running".into(),
            )
            .await;
            Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("drills not reloaded, the old definitions keep running:\n{p}"),
            ))
        }
    }
}

/// What a test page through one channel did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct TestPage {
    pub channel: String,
    pub delivered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Sends a test page through the daemon's channels (or the one named), directly.
pub(super) async fn notify_test(
    d: &Daemon,
    who: &Principal,
    source: &Source,
    channel: Option<&str>,
) -> Result<Vec<TestPage>, Refusal> {
    allow(d, who, source, Action::NotifyTest, None).await?;
    unlimited(who, "pages through every drill's channels")?;
    let Some(pager) = d.runner.pager.as_ref() else {
        return Err((
            StatusCode::CONFLICT,
            "the daemon has no notification channels ([[notify.channel]] in its config)".into(),
        ));
    };
    if let Some(name) = channel {
        if !pager.notifiers.iter().any(|n| n.name() == name) {
            return Err((
                StatusCode::NOT_FOUND,
                format!(
                    "no channel named {name}; the daemon has {}",
                    pager
                        .notifiers
                        .iter()
                        .map(|n| n.name().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let sent = crate::notify::send_test(&pager.notifiers, channel).await;
    let pages: Vec<TestPage> = sent
        .into_iter()
        .map(|(channel, r)| TestPage {
            channel,
            delivered: r.is_ok(),
            error: r.err().map(|e| e.to_string()),
        })
        .collect();
    let failed = pages.iter().filter(|p| !p.delivered).count();
    d.audit(
        AuditEntry::by(
            who,
            Some(source.0.clone()),
            Action::NotifyTest,
            if failed == 0 {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
        )
        .target(channel.unwrap_or("every channel"))
        .detail(format!(
            "test page through {}: {} delivered, {failed} not",
            pages
                .iter()
                .map(|p| p.channel.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            pages.len() - failed
        )),
    )
    .await;
    Ok(pages)
}
