//! A run's events as server-sent events, live from this daemon or followed through the
//! catalog (a run of another daemon sharing it, or one offered and not yet taken): what
//! the API's `/api/v1/runs/{id}/events` and the dashboard's live stage both stream.

use std::convert::Infallible;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;

use super::{Daemon, RunEvent};
use crate::status::RunStatus;

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// A run's events as server-sent events: the API's, and the dashboard's live stage.
pub(super) async fn run_events(d: Arc<Daemon>, id: String) -> Response {
    let Some((past, rx, done)) = d.follow(&id) else {
        // A run of another daemon sharing the catalog (or one this daemon forgot):
        // followed through the catalog.
        return match d.catalog.run(&id).await {
            Ok(Some(r)) => Sse::new(catalog_stream(d.clone(), r))
                .keep_alive(KeepAlive::default())
                .into_response(),
            // Offered to the daemons sharing the catalog: followed from before it starts.
            Ok(None) => match d.catalog.offered(&id).await {
                Ok(Some(drill)) => {
                    let queued = crate::catalog::RunRecord {
                        drill,
                        run_id: id.clone(),
                        started_at: jiff::Timestamp::now(),
                        finished_at: None,
                        status: RunStatus::Queued,
                        failed_stage: None,
                        error: None,
                        artifact: None,
                        rto_seconds: None,
                        encrypted_bytes: None,
                        report: None,
                        accepted: false,
                        owner: None,
                        stage: None,
                    };
                    Sse::new(catalog_stream(d.clone(), queued))
                        .keep_alive(KeepAlive::default())
                        .into_response()
                }
                _ => error(StatusCode::NOT_FOUND, format!("no run {id}")),
            },
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
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

/// The events of a run another process runs, read from the catalog every second: the
/// stage it enters, and once it is over each stage's report and `finished`.
fn catalog_stream(
    d: Arc<Daemon>,
    first: crate::catalog::RunRecord,
) -> impl Stream<Item = Result<Event, Infallible>> {
    struct Follow {
        d: Arc<Daemon>,
        run_id: String,
        /// The record to read next (the first one, then each poll's).
        next: Option<crate::catalog::RunRecord>,
        stage: Option<crate::status::Stage>,
        pending: std::collections::VecDeque<RunEvent>,
        over: bool,
        /// Polls that found the run nowhere (taken from the offers, not yet recorded).
        missing: u32,
    }
    let state = Follow {
        d,
        run_id: first.run_id.clone(),
        pending: [RunEvent::Queued {
            run_id: first.run_id.clone(),
            drill: first.drill.clone(),
        }]
        .into(),
        next: Some(first),
        stage: None,
        over: false,
        missing: 0,
    };
    futures::stream::unfold(state, |mut f| async move {
        loop {
            if let Some(ev) = f.pending.pop_front() {
                return Some((Ok(to_event(&ev)), f));
            }
            if f.over {
                return None;
            }
            let r = match f.next.take() {
                Some(r) => r,
                None => {
                    tokio::select! {
                        _ = f.d.shutdown.stopped() => return None,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                    match f.d.catalog.run(&f.run_id).await {
                        Ok(Some(r)) => {
                            f.missing = 0;
                            r
                        }
                        Ok(None) => {
                            // Offered and not taken yet, or taken and about to be
                            // recorded: wait; a run that never appears ends the stream.
                            let offered = f.d.catalog.offered(&f.run_id).await;
                            f.missing = if matches!(offered, Ok(Some(_))) {
                                0
                            } else {
                                f.missing + 1
                            };
                            if f.missing > 10 {
                                return None;
                            }
                            continue;
                        }
                        // The catalog did not answer: ask again.
                        Err(_) => continue,
                    }
                }
            };
            if !r.status.is_finished() {
                if r.stage.is_some() && r.stage != f.stage {
                    f.stage = r.stage;
                    if let Some(stage) = r.stage {
                        f.pending.push_back(RunEvent::StageStarted {
                            run_id: f.run_id.clone(),
                            stage,
                        });
                    }
                }
                continue;
            }
            let report: Option<crate::report::RunReport> = r
                .report
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok());
            for st in report.iter().flat_map(|rep| rep.stages.iter()) {
                f.pending.push_back(RunEvent::StageFinished {
                    run_id: f.run_id.clone(),
                    report: st.clone(),
                });
            }
            f.pending.push_back(RunEvent::Finished {
                run_id: f.run_id.clone(),
                status: r.status,
                verdict: report
                    .as_ref()
                    .map(|rep| rep.verdict)
                    .unwrap_or(crate::status::Verdict::Error),
                exit_code: report.as_ref().map(|rep| rep.exit_code).unwrap_or(2),
            });
            f.over = true;
        }
    })
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
