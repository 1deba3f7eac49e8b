//! The HTTP API (axum): JSON, bearer-token auth, size-limited bodies. Each handler calls
//! one daemon function.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;

use super::auth::bearer_auth;
use super::{AlertmanagerWebhook, Daemon, RunEvent, StartError};
use crate::drill::RunOptions;
use crate::status::RunStatus;

/// Request bodies are small JSON documents; anything bigger is refused with 413.
const BODY_LIMIT: usize = 256 << 10;

pub fn router(daemon: Arc<Daemon>) -> Router {
    let protected = Router::new()
        .route("/api/v1/drills", get(drills))
        .route("/api/v1/drills/{name}/runs", post(start_run))
        .route("/api/v1/runs/{id}", get(run))
        .route("/api/v1/runs/{id}/events", get(events))
        .route("/api/v1/runs/{id}/cancel", post(cancel))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/hooks/alertmanager", post(alert_hook));
    let protected = if daemon.config.daemon.metrics_public {
        protected
    } else {
        protected.route("/metrics", get(metrics))
    };
    let protected =
        protected.route_layer(middleware::from_fn_with_state(daemon.clone(), bearer_auth));
    let mut public = Router::new().route("/healthz", get(|| async { "ok\n" }));
    if daemon.config.daemon.metrics_public {
        public = public.route("/metrics", get(metrics));
    }
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

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Every drill with its schedule and last runs, from the listing kept ready (a thousand
/// drills are read often, by dashboards and monitoring, and must stay cheap).
async fn drills(State(d): State<Arc<Daemon>>) -> Response {
    match d.listing.body(&d).await {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    artifact: Option<String>,
    #[serde(default)]
    random: bool,
    #[serde(default)]
    keep: bool,
}

async fn start_run(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let req: StartRequest = if body.is_empty() {
        StartRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid request body: {e}"),
                )
            }
        }
    };
    let mut artifact = req.artifact;
    // A run id that names nothing this drill stored is the client's mistake, not a
    // broken backup: refused here, before a run is recorded or anyone paged.
    if let Some(id) = &artifact {
        let Some(drill) = d.drills().get(&name).cloned() else {
            return error(StatusCode::NOT_FOUND, format!("no drill named {name}"));
        };
        if let Err(e) = d.runner.check_artifact(&drill, id).await {
            let status = match crate::store::StoreFault::of(&e) {
                Some(crate::store::StoreFault::NotFound) => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            return error(status, e.to_string());
        }
    }
    if req.random {
        let Some(drill) = d.drills().get(&name).cloned() else {
            return error(StatusCode::NOT_FOUND, format!("no drill named {name}"));
        };
        match crate::inventory::random_artifact(&drill).await {
            Ok(Some(a)) => artifact = Some(a),
            Ok(None) => {
                return error(
                    StatusCode::CONFLICT,
                    format!("drill {name} has no stored artifacts"),
                )
            }
            Err(e) => return error(StatusCode::BAD_GATEWAY, e.to_string()),
        }
    }
    let opts = RunOptions {
        keep: req.keep,
        artifact,
        ..Default::default()
    };
    match d.start_run(&name, opts, "api") {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": id, "drill": name, "status": "queued" })),
        )
            .into_response(),
        Err(StartError::UnknownDrill(n)) => {
            error(StatusCode::NOT_FOUND, format!("no drill named {n}"))
        }
        Err(StartError::AlreadyRunning { drill, run_id }) => error(
            StatusCode::CONFLICT,
            format!("drill {drill} is already running as {run_id}"),
        ),
        Err(StartError::ShuttingDown) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down".into(),
        ),
    }
}

async fn run(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    if let Some((drill, status, events, report)) = d.run_view(&id) {
        let stages: Vec<&crate::report::StageReport> = events
            .iter()
            .filter_map(|e| match e {
                RunEvent::StageFinished { report, .. } => Some(report),
                _ => None,
            })
            .collect();
        return Json(json!({ "run_id": id, "drill": drill, "status": status, "stages": stages, "report": report }))
            .into_response();
    }
    match d.catalog.run(&id).await {
        Ok(Some(r)) => {
            let report: Option<serde_json::Value> = r
                .report
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok());
            let stages = report
                .as_ref()
                .map(|v| v["stages"].clone())
                .unwrap_or(json!([]));
            Json(json!({ "run_id": r.run_id, "drill": r.drill, "status": r.status, "stages": stages, "report": report }))
                .into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no run {id}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn events(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    let Some((past, rx, done)) = d.follow(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no live run {id}; GET /api/v1/runs/{id} has finished ones"),
        );
    };
    let stream = event_stream(past, rx, done);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn to_event(ev: &RunEvent) -> Event {
    let name = match ev {
        RunEvent::Queued { .. } => "queued",
        RunEvent::StageStarted { .. } => "stage_started",
        RunEvent::StageFinished { .. } => "stage_finished",
        RunEvent::StageRetrying { .. } => "stage_retrying",
        RunEvent::Finished { .. } => "finished",
    };
    Event::default()
        .event(name)
        .data(serde_json::to_string(ev).unwrap_or_default())
}

/// What happened so far, then live events, ending after `finished`.
fn event_stream(
    past: Vec<RunEvent>,
    rx: tokio::sync::broadcast::Receiver<RunEvent>,
    done: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let replay = futures::stream::iter(past.into_iter().map(|e| Ok(to_event(&e))));
    let live = futures::stream::unfold((rx, done), |(mut rx, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    let fin = matches!(ev, RunEvent::Finished { .. });
                    return Some((Ok(to_event(&ev)), (rx, fin)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    futures::StreamExt::chain(replay, live)
}

async fn cancel(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    if d.cancel_run(&id) {
        (
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": id, "status": "cancelling" })),
        )
            .into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no running run {id}"))
    }
}

async fn reload(State(d): State<Arc<Daemon>>) -> Response {
    match d.reload() {
        Ok(n) => Json(json!({ "drills": n })).into_response(),
        Err(p) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("drills not reloaded, the old definitions keep running:\n{p}"),
        ),
    }
}

async fn alert_hook(State(d): State<Arc<Daemon>>, body: Bytes) -> Response {
    let payload = match AlertmanagerWebhook::from_json(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (started, skipped) = d.alert_hook(&payload);
    let started: Vec<_> = started
        .into_iter()
        .map(|(d, r)| json!({"drill": d, "run_id": r}))
        .collect();
    let skipped: Vec<_> = skipped
        .into_iter()
        .map(|(d, w)| json!({"drill": d, "reason": w}))
        .collect();
    (
        StatusCode::ACCEPTED,
        Json(json!({ "started": started, "skipped": skipped })),
    )
        .into_response()
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition.
async fn metrics(State(d): State<Arc<Daemon>>) -> Response {
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
    ] {
        help(name, kind, text, &mut out);
        out.push_str(body);
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}
