//! The HTTP API (axum): JSON, bearer-token auth, size-limited bodies. Each handler calls
//! one daemon function.
//!
//! Every route is registered through `utoipa_axum`'s router from the handler's own
//! `#[utoipa::path]`, so the OpenAPI document ([`openapi`], served at
//! `/api/v1/openapi.json`, shipped as `deploy/openapi.json`) is made from the same source
//! as the routes and cannot drift from them.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;

use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::Extension;

use super::actions::{self, Trigger};
use super::auth::{allow, bearer_auth, Source};
use super::{AlertmanagerWebhook, Daemon, RunEvent};
use crate::access::{Action, AuditQuery, Principal};
use crate::status::RunStatus;

/// Request bodies are small JSON documents; anything bigger is refused with 413.
const BODY_LIMIT: usize = 256 << 10;

/// The document's frame: what the API is, and how it authenticates.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "firedrill",
        description = "The firedrill daemon's HTTP API: start drills, follow and cancel runs, read their reports. Every route but /healthz, /api/v1/openapi.json and (unless `metrics_public = false`) /metrics needs the daemon's token as a bearer token. Ten failed authentications from one address within a minute are answered 429 for the rest of that minute."
    ),
    modifiers(&BearerToken),
    tags((name = "drills"), (name = "runs"), (name = "daemon"))
)]
struct ApiDoc;

/// The `bearer` security scheme the protected routes name.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("[daemon] token"))
                    .build(),
            ),
        );
    }
}

/// The routes that need the token.
fn protected_routes() -> OpenApiRouter<Arc<Daemon>> {
    OpenApiRouter::new()
        .routes(routes!(drills))
        .routes(routes!(start_run))
        .routes(routes!(run))
        .routes(routes!(events))
        .routes(routes!(cancel))
        .routes(routes!(reload))
        .routes(routes!(alert_hook))
        .routes(routes!(cluster))
        .routes(routes!(accept))
        .routes(routes!(prune))
        .routes(routes!(audit))
        .routes(routes!(drill_runs))
        .routes(routes!(drill_artifacts))
        .routes(routes!(whoami))
        .routes(routes!(notify_test))
}

/// The routes open to anyone (`/metrics` unless `metrics_public = false`).
fn public_routes() -> OpenApiRouter<Arc<Daemon>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
}

/// The API's OpenAPI document, from the handlers' own annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(public_routes())
        .merge(protected_routes())
        .routes(routes!(metrics))
        .split_for_parts()
        .1
}

/// The document as served and shipped (`deploy/openapi.json`): pretty JSON, one trailing
/// newline.
pub fn openapi_json_text() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

pub fn router(daemon: Arc<Daemon>) -> Router {
    let metrics_route = OpenApiRouter::new().routes(routes!(metrics));
    let (public, protected) = if daemon.config.daemon.metrics_public {
        (public_routes().merge(metrics_route), protected_routes())
    } else {
        (public_routes(), protected_routes().merge(metrics_route))
    };
    let (protected, _) = protected.split_for_parts();
    let protected =
        protected.route_layer(middleware::from_fn_with_state(daemon.clone(), bearer_auth));
    let (public, _) = public.split_for_parts();
    public
        .merge(protected)
        .merge(super::dashboard::router(daemon.clone()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(close_after_refused_body))
        .layer(middleware::from_fn_with_state(
            daemon.clone(),
            super::auth::hsts,
        ))
        .with_state(daemon)
}

/// A body refused for its size is left unread on the connection; the server then closes
/// it. Saying so (`Connection: close`) stops a client from sending its next request down
/// a connection about to close (reqwest's pool did: "IncompleteMessage"), as nginx does.
async fn close_after_refused_body(mut res: Response) -> Response {
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    res
}

/// What every refusal carries.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ErrorBody {
    /// What was wrong, and what to do about it.
    error: String,
}

pub(super) fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

/// `GET /healthz`: the daemon answers.
#[utoipa::path(get, path = "/healthz", tag = "daemon",
    responses((status = 200, description = "The daemon is up", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "daemon",
    responses((status = 200, description = "The OpenAPI document of this API", body = Object, content_type = "application/json")))]
async fn openapi_json() -> Response {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        TEXT.get_or_init(openapi_json_text).clone(),
    )
        .into_response()
}

/// Every drill with its schedule and last runs, from the listing kept ready (a thousand
/// drills are read often, by dashboards and monitoring, and must stay cheap).
#[utoipa::path(get, path = "/api/v1/drills", tag = "drills",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every drill: schedule, next run, last run, last success", body = super::listing::DrillList<'static>),
        (status = 401, description = "No token, or not the daemon's"),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
        (status = 500, description = "The catalog could not be read", body = ErrorBody),
    ))]
async fn drills(State(d): State<Arc<Daemon>>, Extension(p): Extension<Principal>) -> Response {
    match d.listing.body(&d).await {
        // A token limited to some drills sees those only.
        Ok(body) if p.limited() => {
            let mut all: serde_json::Value =
                serde_json::from_slice(body.as_ref()).unwrap_or_default();
            if let Some(list) = all.get_mut("drills").and_then(|l| l.as_array_mut()) {
                list.retain(|x| {
                    x.get("name")
                        .and_then(|n| n.as_str())
                        .is_some_and(|n| p.sees(n))
                });
            }
            Json(all).into_response()
        }
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// How to run a drill; every field may be left out (as may the whole body).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    /// Drill this stored artifact (the run id that made it) instead of a new backup.
    #[schema(
        pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$",
        example = "20261126T100000Z-abc123"
    )]
    artifact: Option<String>,
    /// Drill a stored artifact picked at random.
    #[serde(default)]
    random: bool,
    /// Keep the sandbox after the run, to look around in it.
    #[serde(default)]
    keep: bool,
}

/// A run accepted: it is queued.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RunStarted {
    run_id: String,
    drill: String,
    status: RunStatus,
}

/// Starts a drill now. Its run id names it in every other call.
#[utoipa::path(post, path = "/api/v1/drills/{name}/runs", tag = "drills",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The drill's name")),
    request_body(content = Option<StartRequest>, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = RunStarted),
        (status = 400, description = "A body that is not a StartRequest, or an artifact that is no run id", body = ErrorBody),
        (status = 401, description = "No token, or not the daemon's"),
        (status = 404, description = "No such drill, or no such stored artifact (the known runs are named)", body = ErrorBody),
        (status = 409, description = "The drill is running already, or has no stored artifact to pick", body = ErrorBody),
        (status = 413, description = "A body over 256 KiB", body = String, content_type = "text/plain"),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
        (status = 502, description = "The drill's storage could not be listed", body = ErrorBody),
        (status = 503, description = "The daemon is shutting down", body = ErrorBody),
    ))]
async fn start_run(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Extension(src): Extension<Source>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    // No body, or `null`: the defaults.
    let req: StartRequest = if body.is_empty() {
        StartRequest::default()
    } else {
        match serde_json::from_slice::<Option<StartRequest>>(&body) {
            Ok(r) => r.unwrap_or_default(),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid request body: {e}"),
                )
            }
        }
    };
    let t = Trigger {
        artifact: req.artifact,
        random: req.random,
        keep: req.keep,
    };
    match actions::trigger(&d, &p, &src, &name, t).await {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(RunStarted {
                run_id: id,
                drill: name,
                status: RunStatus::Queued,
            }),
        )
            .into_response(),
        Err((status, message)) => error(status, message),
    }
}

/// One run: its status, the stages finished so far and, once it is over, its report.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RunView {
    run_id: String,
    drill: String,
    status: RunStatus,
    stages: Vec<crate::report::StageReport>,
    /// The whole report, once the run has finished (`firedrill run --json` prints the same).
    report: Option<crate::report::RunReport>,
    /// The process that runs or ran it (`daemon@host:pid/…`, or `cli@…`): this daemon, or
    /// another sharing the catalog.
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon: Option<String>,
    /// The stage it is in, while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<crate::status::Stage>,
}

/// A run, live or from the catalog.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 401, description = "No token, or not the daemon's"),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
        (status = 500, description = "The catalog could not be read", body = ErrorBody),
    ))]
async fn run(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    if hidden(&d, &p, &id).await {
        return error(StatusCode::NOT_FOUND, format!("no run {id}"));
    }
    run_view(d, &id).await
}

/// Whether run `id` is of a drill the principal is not limited to (it then does not
/// exist, for it).
async fn hidden(d: &Daemon, p: &Principal, id: &str) -> bool {
    if !p.limited() {
        return false;
    }
    let drill = match actions::drill_of(d, id).await {
        Ok(Some(drill)) => Some(drill),
        _ => d.catalog.offered(id).await.ok().flatten(),
    };
    drill.is_none_or(|dr| !p.sees(&dr))
}

async fn run_view(d: Arc<Daemon>, id: &str) -> Response {
    let id = id.to_string();
    if let Some((drill, status, events, report)) = d.run_view(&id) {
        let stages: Vec<crate::report::StageReport> = events
            .iter()
            .filter_map(|e| match e {
                RunEvent::StageFinished { report, .. } => Some(report.clone()),
                _ => None,
            })
            .collect();
        let stage = events.iter().rev().find_map(|e| match e {
            RunEvent::StageStarted { stage, .. } if report.is_none() => Some(*stage),
            _ => None,
        });
        return Json(RunView {
            run_id: id,
            drill,
            status,
            stages,
            report,
            daemon: Some(d.leases.id().to_string()),
            stage,
        })
        .into_response();
    }
    match d.catalog.run(&id).await {
        Ok(Some(r)) => {
            let report: Option<crate::report::RunReport> = r
                .report
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok());
            let stages = report
                .as_ref()
                .map(|r| r.stages.clone())
                .unwrap_or_default();
            Json(RunView {
                run_id: r.run_id,
                drill: r.drill,
                status: r.status,
                stages,
                report,
                stage: r.stage.filter(|_| !r.status.is_finished()),
                daemon: r.owner,
            })
            .into_response()
        }
        // Offered to the daemons sharing the catalog, and not taken yet: queued.
        Ok(None) => match d.catalog.offered(&id).await {
            Ok(Some(drill)) => Json(RunView {
                run_id: id,
                drill,
                status: RunStatus::Queued,
                stages: Vec::new(),
                report: None,
                daemon: None,
                stage: None,
            })
            .into_response(),
            Ok(None) => error(StatusCode::NOT_FOUND, format!("no run {id}")),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The run's events as server-sent events (`queued`, `stage_started`, `stage_finished`,
/// `stage_retrying`, `finished`): what happened so far, then live, ending after `finished`.
#[utoipa::path(get, path = "/api/v1/runs/{id}/events", tag = "runs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses(
        (status = 200, description = "The event stream; each event's data is a JSON object with an `event` field", body = String, content_type = "text/event-stream"),
        (status = 401, description = "No token, or not the daemon's"),
        (status = 404, description = "No run with this id", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
    ))]
async fn events(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    if hidden(&d, &p, &id).await {
        return error(StatusCode::NOT_FOUND, format!("no run {id}"));
    }
    super::events::run_events(d, id).await
}

/// A cancel accepted: the run stops, its sandbox goes, and it pages nobody.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Cancelling {
    run_id: String,
    /// Always `cancelling`; the run's events and GET say when it has stopped.
    status: String,
}

/// Cancels a running run, as an operator.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses(
        (status = 202, description = "Cancelling", body = Cancelling),
        (status = 401, description = "No token, or not the daemon's"),
        (status = 404, description = "No running run with this id", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
    ))]
async fn cancel(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Extension(src): Extension<Source>,
    Path(id): Path<String>,
) -> Response {
    match actions::cancel(&d, &p, &src, &id).await {
        Ok(_) => (
            StatusCode::ACCEPTED,
            Json(Cancelling {
                run_id: id,
                status: "cancelling".into(),
            }),
        )
            .into_response(),
        Err((status, m)) => error(status, m),
    }
}

/// The drills loaded after a reload.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Reloaded {
    drills: usize,
}

/// One daemon sharing the catalog.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ClusterDaemon {
    /// `daemon@host:pid/start#…`.
    id: String,
    /// When it last said it was alive (RFC 3339).
    seen_at: String,
    /// Drills it loaded.
    drills: usize,
}

/// The daemons sharing the catalog, and the drills they do not agree on.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ClusterView {
    /// This daemon.
    daemon: String,
    daemons: Vec<ClusterDaemon>,
    /// Drills whose definition differs between daemons: the daemons holding another
    /// definition than most do not run it (none does on a tie).
    skew: Vec<crate::catalog::Skew>,
}

/// The daemons alive on this catalog, and drills defined differently on some of them.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "daemon",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The daemons and the skew", body = ClusterView),
        (status = 401, description = "No token, or not the daemon's"),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
    ))]
async fn cluster(State(d): State<Arc<Daemon>>, Extension(p): Extension<Principal>) -> Response {
    if p.limited() {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "{} is limited to some drills; the cluster view names every drill",
                p.actor
            ),
        );
    }
    let (seen, skew) = d.cluster();
    Json(ClusterView {
        daemon: d.leases.id().to_string(),
        daemons: seen
            .into_iter()
            .map(|s| ClusterDaemon {
                id: s.id,
                seen_at: s.seen_at.to_string(),
                drills: s.drills.len(),
            })
            .collect(),
        skew,
    })
    .into_response()
}

/// Re-reads the drill files (as SIGHUP does). An invalid file keeps the old definitions.
#[utoipa::path(post, path = "/api/v1/reload", tag = "daemon",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reloaded", body = Reloaded),
        (status = 401, description = "No token, or not the daemon's"),
        (status = 422, description = "A drill file does not validate: every problem, with file, field and fix; the old drills keep running", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
    ))]
async fn reload(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Extension(src): Extension<Source>,
) -> Response {
    match actions::reload(&d, &p, &src).await {
        Ok(n) => Json(Reloaded { drills: n }).into_response(),
        Err((status, m)) => error(status, m),
    }
}

/// A drill an alert started.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct HookStarted {
    drill: String,
    run_id: String,
}

/// A drill an alert named that was not started, and why.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct HookSkipped {
    drill: String,
    reason: String,
}

/// What an Alertmanager webhook did.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct HookOutcomeBody {
    started: Vec<HookStarted>,
    skipped: Vec<HookSkipped>,
}

/// Alertmanager's webhook: each firing alert labelled `firedrill_drill` starts that
/// drill (at most once per `[daemon] hook_interval`).
#[utoipa::path(post, path = "/api/v1/hooks/alertmanager", tag = "drills",
    security(("bearer" = [])),
    request_body(content = AlertmanagerWebhook, content_type = "application/json"),
    responses(
        (status = 202, description = "The drills started and those skipped", body = HookOutcomeBody),
        (status = 400, description = "Not an Alertmanager webhook payload", body = ErrorBody),
        (status = 401, description = "No token, or not the daemon's"),
        (status = 413, description = "A body over 256 KiB", body = String, content_type = "text/plain"),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
    ))]
async fn alert_hook(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Extension(src): Extension<Source>,
    body: Bytes,
) -> Response {
    if let Err((status, m)) = allow(&d, &p, &src, Action::Trigger, None).await {
        return error(status, m);
    }
    if p.limited() {
        return error(
            StatusCode::FORBIDDEN,
            format!("{} is limited to some drills; the alert hook starts any drill an alert names, so it needs an unlimited token", p.actor),
        );
    }
    let payload = match AlertmanagerWebhook::from_json(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let alert = crate::access::Actor::new(crate::access::ActorKind::Alert, p.actor.name.clone());
    let (started, skipped) = d.alert_hook(&payload, &alert).await;
    for (drill, run_id) in &started {
        d.audit(
            crate::access::AuditEntry::by(
                &p,
                Some(src.0.clone()),
                Action::Trigger,
                crate::access::Outcome::Ok,
            )
            .target(drill.clone())
            .detail(format!("run {run_id}: started by an Alertmanager alert")),
        )
        .await;
    }
    let body = HookOutcomeBody {
        started: started
            .into_iter()
            .map(|(drill, run_id)| HookStarted { drill, run_id })
            .collect(),
        skipped: skipped
            .into_iter()
            .map(|(drill, reason)| HookSkipped { drill, reason })
            .collect(),
    };
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// Which channel to test.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct NotifyTestQuery {
    /// Only this channel (its `name`); default: every channel.
    channel: Option<String>,
}

/// Sends a test page through the daemon's notification channels, directly, and says
/// which delivered. Operators and admins.
#[utoipa::path(post, path = "/api/v1/notify/test", tag = "daemon",
    security(("bearer" = [])),
    params(NotifyTestQuery),
    responses(
        (status = 200, description = "Each channel, and whether it took the page", body = Vec<actions::TestPage>),
        (status = 400, description = "A query parameter that does not parse", body = ErrorBody),
        (status = 401, description = "No token, or not one this daemon accepts"),
        (status = 403, description = "The token's role is viewer", body = ErrorBody),
        (status = 404, description = "No channel of that name", body = ErrorBody),
        (status = 409, description = "The daemon has no channels", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
    ))]
async fn notify_test(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Extension(src): Extension<Source>,
    q: Result<Query<NotifyTestQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match actions::notify_test(&d, &p, &src, q.channel.as_deref()).await {
        Ok(pages) => Json(pages).into_response(),
        Err((status, m)) => error(status, m),
    }
}

/// Who the token is: its actor, role and the drills it is limited to.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct WhoAmI {
    actor: crate::access::Actor,
    role: crate::access::Role,
    /// The drills (names or patterns) it is limited to; absent: every drill.
    #[serde(skip_serializing_if = "Option::is_none")]
    drills: Option<Vec<String>>,
}

/// Who the caller is, as the daemon authenticated it.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "daemon",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, description = "No token, or not one this daemon accepts"),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
    ))]
async fn whoami(Extension(p): Extension<Principal>) -> Response {
    Json(WhoAmI {
        actor: p.actor,
        role: p.role,
        drills: p.drills,
    })
    .into_response()
}

/// Accepts a run that failed only its anomaly guards (an intended shrink): it becomes
/// the baseline of the next runs. Admins only.
#[utoipa::path(post, path = "/api/v1/runs/{id}/accept", tag = "runs",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The run id")),
    responses(
        (status = 200, description = "Accepted", body = Accepted),
        (status = 401, description = "No token, or not one this daemon accepts"),
        (status = 403, description = "The token's role is not admin", body = ErrorBody),
        (status = 404, description = "No such run (or of a drill the token is not limited to)", body = ErrorBody),
        (status = 409, description = "The run failed more than its anomaly guards: it cannot be accepted", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
    ))]
async fn accept(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Extension(src): Extension<Source>,
    Path(id): Path<String>,
) -> Response {
    match actions::accept(&d, &p, &src, &id).await {
        Ok(drill) => Json(Accepted { run_id: id, drill }).into_response(),
        Err((status, m)) => error(status, m),
    }
}

/// A run accepted.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Accepted {
    run_id: String,
    drill: String,
}

/// Whether to only say what a prune would delete.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PruneQuery {
    /// Say what would be deleted, delete nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Applies the drill's retention to its storage: deletes what it no longer keeps (the
/// artifact first, its manifest last). Admins only.
#[utoipa::path(post, path = "/api/v1/drills/{name}/prune", tag = "drills",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The drill's name"), PruneQuery),
    responses(
        (status = 200, description = "What was kept and deleted, and why", body = Object),
        (status = 400, description = "A query parameter that does not parse", body = ErrorBody),
        (status = 401, description = "No token, or not one this daemon accepts"),
        (status = 403, description = "The token's role is not admin", body = ErrorBody),
        (status = 404, description = "No such drill (or not one the token is limited to)", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
        (status = 502, description = "The storage could not be listed or changed", body = ErrorBody),
    ))]
async fn prune(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Extension(src): Extension<Source>,
    Path(name): Path<String>,
    q: Result<Query<PruneQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match actions::prune(&d, &p, &src, &name, q.dry_run).await {
        Ok(r) => Json(r).into_response(),
        Err((status, m)) => error(status, m),
    }
}

/// A page of a list: which and how many.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    /// Skip this many of the newest first (default 0).
    #[param(minimum = 0, maximum = 100000)]
    offset: Option<u64>,
}

/// A number of the query string within its documented bounds, or 400 naming them.
fn within(
    v: Option<u64>,
    name: &str,
    min: u64,
    max: u64,
    default: u64,
) -> std::result::Result<usize, String> {
    let v = v.unwrap_or(default);
    if (min..=max).contains(&v) {
        Ok(v as usize)
    } else {
        Err(format!("{name}={v} is out of range: give {min} to {max}"))
    }
}

impl PageQuery {
    fn bounds(&self) -> std::result::Result<(usize, usize), String> {
        Ok((
            within(self.limit, "limit", 1, 500, 50)?,
            within(self.offset, "offset", 0, 100_000, 0)?,
        ))
    }
}

/// One run in a drill's history.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RunSummary {
    run_id: String,
    drill: String,
    status: RunStatus,
    #[schema(value_type = String, format = DateTime)]
    started_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    finished_at: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_stage: Option<crate::status::Stage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The artifact drilled (the run id that made it).
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rto_seconds: Option<f64>,
    accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_by: Option<crate::access::Actor>,
}

/// A page of runs, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RunsPage {
    runs: Vec<RunSummary>,
    /// The `offset` of the next page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_offset: Option<usize>,
}

/// A drill's runs, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/drills/{name}/runs", tag = "drills",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The drill's name"), PageQuery),
    responses(
        (status = 200, description = "A page of runs", body = RunsPage),
        (status = 400, description = "A query parameter that does not parse", body = ErrorBody),
        (status = 401, description = "No token, or not one this daemon accepts"),
        (status = 404, description = "No such drill (or not one the token is limited to)", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
        (status = 500, description = "The catalog could not be read", body = ErrorBody),
    ))]
async fn drill_runs(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !p.sees(&name) {
        return error(StatusCode::NOT_FOUND, format!("no drill named {name}"));
    }
    let (limit, offset) = match q.bounds() {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let runs = match d.catalog.runs(Some(&name), offset + limit + 1).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if runs.is_empty() && !d.drills().contains_key(&name) {
        return error(StatusCode::NOT_FOUND, format!("no drill named {name}"));
    }
    let more = runs.len() > offset + limit;
    let runs = runs
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| {
            let started_by = r
                .report
                .as_deref()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                .and_then(|v| serde_json::from_value(v.get("started_by")?.clone()).ok());
            RunSummary {
                run_id: r.run_id,
                drill: r.drill,
                status: r.status,
                started_at: r.started_at,
                finished_at: r.finished_at,
                failed_stage: r.failed_stage,
                error: r.error,
                artifact: r.artifact,
                rto_seconds: r.rto_seconds,
                accepted: r.accepted,
                started_by,
            }
        })
        .collect();
    Json(RunsPage {
        runs,
        next_offset: more.then_some(offset + limit),
    })
    .into_response()
}

/// One stored artifact of a drill.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ArtifactView {
    /// The run that made it; its id.
    run_id: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    plain_bytes: u64,
    encrypted_bytes: u64,
    sha256: String,
    location: String,
    /// yes, no or never (no drill restored it yet).
    verified: String,
}

/// A page of artifacts, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ArtifactsPage {
    artifacts: Vec<ArtifactView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_offset: Option<usize>,
}

/// A drill's stored artifacts as the catalog knows them, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/drills/{name}/artifacts", tag = "drills",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The drill's name"), PageQuery),
    responses(
        (status = 200, description = "A page of artifacts", body = ArtifactsPage),
        (status = 400, description = "A query parameter that does not parse", body = ErrorBody),
        (status = 401, description = "No token, or not one this daemon accepts"),
        (status = 404, description = "No such drill (or not one the token is limited to)", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
        (status = 500, description = "The catalog could not be read", body = ErrorBody),
    ))]
async fn drill_artifacts(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !p.sees(&name) || !d.drills().contains_key(&name) {
        return error(StatusCode::NOT_FOUND, format!("no drill named {name}"));
    }
    let (limit, offset) = match q.bounds() {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let mut all = match d.catalog.artifacts(Some(&name)).await {
        Ok(a) => a,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    all.sort_by_key(|a| std::cmp::Reverse(a.created_at));
    let more = all.len() > offset + limit;
    let artifacts = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|a| ArtifactView {
            run_id: a.run_id,
            created_at: a.created_at,
            plain_bytes: a.plain_bytes,
            encrypted_bytes: a.encrypted_bytes,
            sha256: a.sha256,
            location: a.location,
            verified: a.verified.to_string(),
        })
        .collect();
    Json(ArtifactsPage {
        artifacts,
        next_offset: more.then_some(offset + limit),
    })
    .into_response()
}

/// Which audit entries: a time window, a page.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// Only entries at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only entries at or before this time (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
    /// Only entries older than the entry with this id (the next page).
    before: Option<i64>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// A page of the audit trail, newest first.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct AuditPage {
    entries: Vec<crate::access::AuditEntry>,
    /// `before` for the next page, when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

/// The audit trail: who did what, when, from where, and how it ended. A token limited to
/// some drills sees the entries about those drills only.
#[utoipa::path(get, path = "/api/v1/audit", tag = "daemon",
    security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "A page of the audit trail", body = AuditPage),
        (status = 400, description = "A time that is not RFC 3339, or a query parameter that does not parse", body = ErrorBody),
        (status = 401, description = "No token, or not one this daemon accepts"),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
        (status = 500, description = "The catalog could not be read", body = ErrorBody),
    ))]
async fn audit(
    State(d): State<Arc<Daemon>>,
    Extension(p): Extension<Principal>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let time = |v: &Option<String>,
                what: &str|
     -> std::result::Result<Option<jiff::Timestamp>, String> {
        v.as_deref()
            .map(|t| {
                t.parse::<jiff::Timestamp>().map_err(|e| {
                    format!("{what}=`{t}` is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z): {e}")
                })
            })
            .transpose()
    };
    let (since, until) = match (time(&q.since, "since"), time(&q.until, "until")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, m),
    };
    let limit = match within(q.limit, "limit", 1, 1000, 100) {
        Ok(l) => l,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let query = AuditQuery {
        since,
        until,
        before: q.before,
        limit,
    };
    match d.catalog.audit(&query).await {
        Ok(entries) => {
            let next_before = (entries.len() == limit)
                .then(|| entries.last().map(|e| e.id))
                .flatten();
            let entries = entries
                .into_iter()
                .filter(|e| !p.limited() || e.target.as_deref().is_some_and(|t| p.sees(t)))
                .collect();
            Json(AuditPage {
                entries,
                next_before,
            })
            .into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "daemon",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format (needs the token when `metrics_public = false`)", body = String, content_type = "text/plain"),
        (status = 401, description = "`metrics_public = false` and no token, or not the daemon's"),
        (status = 429, description = "Too many failed authentications from this address", body = String, content_type = "text/plain"),
    ))]
async fn metrics(State(d): State<Arc<Daemon>>, p: Option<Extension<Principal>>) -> Response {
    // Behind the token (`metrics_public = false`), every drill's lines: not for a token
    // limited to some of them.
    if let Some(Extension(p)) = p.filter(|p| p.0.limited()) {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "{} is limited to some drills; /metrics names every drill",
                p.actor
            ),
        );
    }
    let mut out = String::new();
    let help = |name: &str, kind: &str, text: &str, out: &mut String| {
        let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
    };
    help("firedrill_drills", "gauge", "Drills loaded.", &mut out);
    let drills = d.drills();
    let _ = writeln!(out, "firedrill_drills {}", drills.len());
    help(
        "firedrill_drills_running",
        "gauge",
        "Drills running now (past their queue).",
        &mut out,
    );
    let _ = writeln!(out, "firedrill_drills_running {}", d.running());
    help(
        "firedrill_reload_failures_total",
        "counter",
        "Reloads of the drills directory that failed (an invalid file kept the old definitions).",
        &mut out,
    );
    let _ = writeln!(
        out,
        "firedrill_reload_failures_total {}",
        d.reload_failures()
    );
    help(
        "firedrill_queue_depth",
        "gauge",
        "Drills waiting for a concurrency slot.",
        &mut out,
    );
    let _ = writeln!(out, "firedrill_queue_depth {}", d.queue_depth());
    let (seen, skew) = d.cluster();
    help(
        "firedrill_cluster_daemons",
        "gauge",
        "Daemons alive on this daemon's catalog, this one included.",
        &mut out,
    );
    let _ = writeln!(out, "firedrill_cluster_daemons {}", seen.len().max(1));
    help(
        "firedrill_drill_definition_skew",
        "gauge",
        "1 for a drill defined differently on the daemons sharing the catalog; `here` is 1 when this daemon's copy is not the agreed one (it does not run the drill).",
        &mut out,
    );
    for s in &skew {
        let _ = writeln!(
            out,
            "firedrill_drill_definition_skew{{drill=\"{}\",here=\"{}\"}} 1",
            esc(&s.drill),
            u8::from(s.differing.iter().any(|x| x == d.leases.id()))
        );
    }
    let pending = d
        .catalog
        .outbox(10_000)
        .await
        .map(|o| {
            o.iter()
                .filter(|i| i.state == crate::status::OutboxState::Pending)
                .count()
        })
        .unwrap_or(0);
    help(
        "firedrill_notifications_pending",
        "gauge",
        "Notifications waiting in the outbox.",
        &mut out,
    );
    let _ = writeln!(out, "firedrill_notifications_pending {pending}");

    let mut last_run = String::new();
    let mut outcome = String::new();
    let mut paging = String::new();
    let mut success = String::new();
    let mut stages = String::new();
    let mut sizes = String::new();
    let mut rto = String::new();
    let mut lateness = String::new();
    let mut recovery = String::new();
    let mut replayed = String::new();
    let names: Vec<String> = drills.keys().cloned().collect();
    let latest = d
        .catalog
        .latest_runs(&names, true)
        .await
        .unwrap_or_default();
    for name in drills.keys() {
        let Some(l) = latest.get(name) else { continue };
        let n = esc(name);
        if let Some(r) = &l.finished {
            let _ = writeln!(
                last_run,
                "firedrill_last_run_timestamp_seconds{{drill=\"{n}\"}} {}",
                r.started_at.as_second()
            );
            for o in RunStatus::ALL.iter().filter(|s| s.is_finished()) {
                let _ = writeln!(
                    outcome,
                    "firedrill_last_run_outcome{{drill=\"{n}\",outcome=\"{o}\"}} {}",
                    u8::from(r.status == *o)
                );
            }
            // What the paging rule says of the last run: the alert rules key on this.
            for sev in crate::status::Severity::ALL {
                let _ = writeln!(
                    paging,
                    "firedrill_last_run_pages{{drill=\"{n}\",severity=\"{sev}\"}} {}",
                    u8::from(r.status.page() == Some(sev))
                );
            }
            if let Some(rep) = r
                .report
                .as_deref()
                .and_then(|j| serde_json::from_str::<crate::report::RunReport>(j).ok())
            {
                for s in &rep.stages {
                    let _ = writeln!(
                        stages,
                        "firedrill_stage_duration_seconds{{drill=\"{n}\",stage=\"{}\"}} {}",
                        s.stage.as_str(),
                        s.duration_ms as f64 / 1000.0
                    );
                }
                if let Some(rec) = &rep.recovery {
                    let m = esc(&rec.method);
                    if let Some(s) = rec.recovered_in_seconds {
                        let _ = writeln!(
                            recovery,
                            "firedrill_recovery_seconds{{drill=\"{n}\",method=\"{m}\"}} {s}"
                        );
                    }
                    let _ = writeln!(
                        replayed,
                        "firedrill_recovery_wal_segments{{drill=\"{n}\",method=\"{m}\"}} {}",
                        rec.segments_replayed
                    );
                }
                if let Some(ms) = rep.schedule_lateness_ms() {
                    let _ = writeln!(
                        lateness,
                        "firedrill_schedule_lateness_seconds{{drill=\"{n}\"}} {}",
                        ms as f64 / 1000.0
                    );
                }
            }
            if let Some(b) = r.encrypted_bytes {
                let _ = writeln!(sizes, "firedrill_artifact_bytes{{drill=\"{n}\"}} {b}");
            }
        }
        if let Some(r) = &l.passed {
            let _ = writeln!(
                success,
                "firedrill_last_success_timestamp_seconds{{drill=\"{n}\"}} {}",
                r.started_at.as_second()
            );
            if let Some(s) = r.rto_seconds {
                let _ = writeln!(rto, "firedrill_restore_seconds{{drill=\"{n}\"}} {s}");
            }
        }
    }
    for (name, kind, text, body) in [
        (
            "firedrill_last_run_timestamp_seconds",
            "gauge",
            "Start of the last finished run.",
            &last_run,
        ),
        (
            "firedrill_last_run_outcome",
            "gauge",
            "Status of the last finished run (1 for the status it had).",
            &outcome,
        ),
        (
            "firedrill_last_run_pages",
            "gauge",
            "1 when the last finished run pages at this severity (the paging rule: failed is critical; error and lost are warnings; cancelled and interrupted page nobody).",
            &paging,
        ),
        (
            "firedrill_last_success_timestamp_seconds",
            "gauge",
            "Start of the last passing run.",
            &success,
        ),
        (
            "firedrill_stage_duration_seconds",
            "gauge",
            "Stage durations of the last finished run.",
            &stages,
        ),
        (
            "firedrill_artifact_bytes",
            "gauge",
            "Encrypted size of the last run's artifact.",
            &sizes,
        ),
        (
            "firedrill_restore_seconds",
            "gauge",
            "Provision + restore + verify time of the last passing run (the measured RTO).",
            &rto,
        ),
        (
            "firedrill_schedule_lateness_seconds",
            "gauge",
            "How long after its schedule fired the last finished scheduled run started.",
            &lateness,
        ),
        (
            "firedrill_recovery_seconds",
            "gauge",
            "A physical drill's last run: seconds from the restore's start to the promoted server.",
            &recovery,
        ),
        (
            "firedrill_recovery_wal_segments",
            "gauge",
            "A physical drill's last run: WAL segments restored from the archive.",
            &replayed,
        ),
    ] {
        help(name, kind, text, &mut out);
        out.push_str(body);
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}
