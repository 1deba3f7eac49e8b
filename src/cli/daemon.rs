//! `firedrill daemon`: runs the drills on their schedules and serves the HTTP API until
//! SIGTERM or SIGINT; SIGHUP reloads the drills.

use std::sync::Arc;

use firedrill::config::MainConfig;
use firedrill::{Stop, StopReason};

/// Serves until a signal stops it; `config` names the catalog.
pub(super) async fn run(config: MainConfig) -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    let shutdown = Stop::new();
    let reload = Arc::new(tokio::sync::Notify::new());
    let (mut term, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(h)) => (t, h),
        _ => {
            errln!("error: cannot install signal handlers");
            return 2;
        }
    };
    {
        let shutdown = shutdown.clone();
        let reload = reload.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = term.recv() => break,
                    _ = hup.recv() => { reload.notify_one(); continue; }
                }
            }
            errln!("firedrill daemon: stopping: cancelling drills, removing their sandboxes");
            shutdown.stop(StopReason::Shutdown);
        });
    }
    // Before anything is bound or started: an open API is refused, not served.
    if let Err(e) = firedrill::daemon::check_auth(&config) {
        errln!("error: {e}");
        return 2;
    }
    let listener = match firedrill::daemon::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    let connector = Arc::new(firedrill::LiveConnector);
    match firedrill::daemon::run(config, listener, connector, shutdown, reload).await {
        Ok(()) => {
            errln!("firedrill daemon: stopped");
            0
        }
        Err(e) => {
            errln!("error: {e}");
            2
        }
    }
}
