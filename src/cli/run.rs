//! `firedrill run`: one drill now, its stages shown as they go, then its report; the
//! runner gets the catalog, report writer and pager of the main config. Ctrl-C and
//! SIGTERM stop the drill and still remove its sandbox.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use firedrill::config::MainConfig;
use firedrill::report::render_human_in;
use firedrill::{RunOptions, Runner, Stop, StopReason};

use super::output::{colour_for, say, Printer, Stream};
use super::{drill_path, load_named};

/// The runner of `run`: the catalog, report writer and pager of the main config. Without
/// a catalog the drill still runs (with a warning); without its reports or pager it does
/// not.
pub(super) async fn runner(
    config: &MainConfig,
    catalog_path: &Path,
    report_dir: Option<&Path>,
) -> Result<Runner, u8> {
    // No catalog, no history: the anomaly guards would have nothing to compare with,
    // and the run and its pages nowhere to go. A damaged or unwritable catalog is said,
    // not worked around.
    let catalog = match super::try_open_catalog(catalog_path).await {
        Ok(c) => Some(c),
        Err(e) => {
            errln!("error: {e}");
            return Err(2);
        }
    };
    let reports = match firedrill::evidence::ReportWriter::from_config(
        config,
        Some(catalog_path),
        report_dir,
    ) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            errln!("error: {e}");
            return Err(2);
        }
    };
    let pager = match firedrill::notify::Pager::new(&config.notify, &config.base_dir) {
        Ok(p) => p.map(Arc::new),
        Err(e) => {
            errln!("error: {e}");
            return Err(2);
        }
    };
    Ok(Runner {
        connector: Arc::new(firedrill::LiveConnector),
        catalog,
        reports: Some(reports),
        pager,
        // The run is this process's while it renews the lease: a daemon sharing the
        // catalog never takes it for one left by a crash.
        leases: Some(firedrill::lease::Leases::new(
            firedrill::catalog::Owner::this_process("cli"),
            config.daemon.lease,
        )),
    })
}

/// Runs `drill` (a file, or a name in `dir`) and prints its report; the exit code is the
/// report's.
pub(super) async fn run(
    runner: &Runner,
    drill: &str,
    dir: &Path,
    json: bool,
    quiet: bool,
    random: bool,
    mut opts: RunOptions,
) -> u8 {
    let path = drill_path(drill, dir);
    let drill = match load_named(&path, dir) {
        Ok(d) => d,
        Err(code) => return code,
    };
    if random {
        match firedrill::inventory::random_artifact(&drill).await {
            Ok(Some(id)) => {
                if !quiet {
                    errln!("picked stored artifact {id} at random");
                }
                opts.artifact = Some(id);
            }
            Ok(None) => {
                errln!("error: drill {} has no stored artifacts to pick from\n  hint: run the drill once without --random", drill.name);
                return 2;
            }
            Err(e) => {
                errln!("error: {e}");
                return 2;
            }
        }
    }
    // A run id that names nothing is the user's typo, not a broken backup: refused before
    // anything is recorded or paged.
    if let Some(id) = &opts.artifact {
        if let Err(e) = runner.check_artifact(&drill, id).await {
            errln!("error: {e}");
            return 2;
        }
    }
    let stop = Stop::new();
    spawn_signal_handler(stop.clone());
    let heartbeat = Stop::new();
    if let (Some(l), Some(c)) = (&runner.leases, &runner.catalog) {
        tokio::spawn(l.clone().keep(c.clone(), heartbeat.clone()));
    }
    if !quiet {
        errln!("drill {} ({})", drill.name, path.display());
    }
    let ran = runner.run(&drill, &opts, &Printer::new(quiet), &stop).await;
    heartbeat.stop(StopReason::Shutdown);
    if ran.refused.is_some() {
        if let Some(e) = &ran.report.error {
            errln!("error: {}", e.message);
            if let Some(h) = &e.hint {
                errln!("  hint: {h}");
            }
        }
        return 2;
    }
    let report = &ran.report;
    if json {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, report);
        let _ = writeln!(out);
    } else {
        // The stages were shown as they ran, or not at all (`--quiet`): the summary only.
        out!(
            "{}",
            render_human_in(report, false, colour_for(Stream::Out))
        );
    }
    match ran.paged {
        Some(Err(e)) => errln!("warning: could not queue the pages for this run: {e}"),
        Some(Ok(p)) if p.delivery.retrying > 0 || p.delivery.timed_out => errln!(
            "warning: {} notification(s) not delivered yet; they stay queued (`firedrill notify flush`)",
            p.delivery.retrying.max(1)
        ),
        _ => {}
    }
    match &ran.unrecorded {
        // Its pages went out directly; the run waits in the spool. Not a success.
        Some(e) => {
            errln!("error: {e}");
            (report.exit_code as u8).max(2)
        }
        None => report.exit_code as u8,
    }
}

/// Ctrl-C (an operator) or SIGTERM (a shutdown) stops the run; the sandbox is still torn
/// down. A second signal exits at once.
fn spawn_signal_handler(stop: Stop) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("cannot listen for SIGTERM: {e}");
                    return;
                }
            };
        for n in 0..2 {
            let reason = tokio::select! {
                _ = tokio::signal::ctrl_c() => StopReason::Operator,
                _ = term.recv() => StopReason::Shutdown,
            };
            if n == 0 {
                say("interrupted: stopping the drill and removing its sandbox (again to quit at once)");
                stop.stop(reason);
            } else {
                std::process::exit(130);
            }
        }
    });
}
