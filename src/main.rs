//! The `firedrill` command: a thin shell over the library. Each subcommand calls one
//! engine function and maps its result to output and an exit code.
//!
//! Exit codes: 0 the drill passed (or the command succeeded), 1 the backup failed
//! verification, 2 the drill could not run (bad config, Docker unreachable, …).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use firedrill::catalog::{Catalog, SqliteCatalog};
use firedrill::config::{load_main_config, MainConfig};
use firedrill::report::human_bytes;
use firedrill::report::{render_human_with, render_stage_line, StageReport};
use firedrill::{load_drill, Progress, RunOptions, Stage};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "firedrill",
    version,
    about = "Proves database backups can be restored: dump, encrypt, store, restore in a throwaway sandbox, verify."
)]
struct Cli {
    /// The catalog of runs and artifacts (SQLite). Default: /var/lib/firedrill/catalog.db
    /// as root, else ~/.local/state/firedrill/catalog.db.
    #[arg(long, global = true, env = "FIREDRILL_CATALOG")]
    catalog: Option<PathBuf>,
    /// The main config file (catalog, notification channels and routes).
    #[arg(long, global = true, env = "FIREDRILL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Send a test page through each channel (or one) and say whether it was accepted.
    Test { channel: Option<String> },
    /// Deliver the notifications waiting in the outbox now.
    Flush {
        /// Ignore the retry backoff: try every pending notification.
        #[arg(long)]
        now: bool,
    },
    /// Show the outbox: queued, sent and expired notifications.
    Outbox {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Write a new ed25519 signing key (PKCS#8 PEM, mode 0600) and print its public key
    /// for [evidence].public_key.
    Keygen {
        /// Where to write the key; refuses to overwrite.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Check a JSON report's signature, and that the artifact and manifest it names still
    /// have the hashes it records. Exit 0: intact; 1: edited or no longer matching; 2:
    /// could not check.
    Verify {
        /// The report (`<reports_dir>/<drill>/<run>.json`).
        report: PathBuf,
        /// The public key to trust (64 hex digits). Default: [evidence] of --config.
        #[arg(long)]
        public_key: Option<String>,
        /// Where the report's drill file is (its storage holds the artifact).
        #[arg(long, default_value = "drills")]
        drills_dir: PathBuf,
        /// Only check the signature.
        #[arg(long)]
        signature_only: bool,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Recreate the artifact inventory from the manifests in storage alone.
    Rebuild {
        #[arg(long, default_value = "drills")]
        drills_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run a drill now and report stage by stage.
    ///
    /// Exit code 0: the backup restored and verified; 1: the backup failed verification;
    /// 2: the drill could not run.
    Run {
        /// A drill file, or the name of a drill in --drills-dir.
        drill: String,
        /// Directory of drill files, for drills given by name.
        #[arg(long, default_value = "drills")]
        drills_dir: PathBuf,
        /// Print one JSON report on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
        /// Do not print stage lines as they finish.
        #[arg(long, short)]
        quiet: bool,
        /// Leave the sandbox running afterwards and print how to connect to it.
        #[arg(long)]
        keep: bool,
        /// Drill a stored artifact (the run id that made it) instead of a new backup.
        #[arg(long, conflicts_with = "random")]
        artifact: Option<String>,
        /// Drill a random stored artifact of this drill ("pick a random tape").
        #[arg(long)]
        random: bool,
        /// Write the run's reports (JSON, JUnit XML, HTML) here. Default: reports_dir of
        /// the main config, else `reports` beside the catalog.
        #[arg(long)]
        report_dir: Option<PathBuf>,
    },
    /// Accept a run that failed only its anomaly guards (a shrink that was intended): it
    /// becomes the baseline of later runs and its artifact counts as good.
    Accept {
        /// The run id (see `firedrill history`).
        run: String,
        /// Where the run's drill file is, to mark its artifact good in storage too.
        #[arg(long, default_value = "drills")]
        drills_dir: PathBuf,
    },
    /// Signed evidence of runs: keys, and checking a report.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// List stored artifacts with size, age and verification state.
    Artifacts {
        /// Only this drill's.
        drill: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List a drill's past runs with outcome, recovery time and size.
    History {
        drill: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Delete artifacts the drills' retention policies do not keep (artifact first,
    /// manifest last). The newest artifact that passed a drill is never deleted.
    Prune {
        /// Only this drill (default: every drill in --drills-dir).
        drill: Option<String>,
        #[arg(long, default_value = "drills")]
        drills_dir: PathBuf,
        /// Print what would be kept and why, delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Notification channels and the outbox.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Catalog maintenance.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Check drill files offline and report every problem with file, field and fix.
    Validate {
        /// Drill files (default: every *.toml in --drills-dir).
        files: Vec<PathBuf>,
        #[arg(long, default_value = "drills")]
        drills_dir: PathBuf,
    },
    /// Write a new age identity (mode 0600) and print its recipient for drill files.
    Keygen {
        /// Where to write the identity; refuses to overwrite.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Run drills on their schedules and serve the HTTP API until SIGTERM/SIGINT.
    /// SIGHUP reloads the drills.
    Daemon,
    /// Remove leftover sandboxes (containers and volumes) whose run is over.
    Reap {
        /// Remove every firedrill sandbox not kept with --keep, expired or not.
        #[arg(long)]
        all: bool,
        /// Docker endpoint (default: DOCKER_HOST or the local socket).
        #[arg(long)]
        docker_host: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FIREDRILL_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = rt.block_on(dispatch(cli));
    ExitCode::from(code)
}

async fn dispatch(cli: Cli) -> u8 {
    let config = match &cli.config {
        Some(p) => match load_main_config(p) {
            Ok(c) => c,
            Err(p) => {
                eprintln!("{p}");
                return 2;
            }
        },
        None => MainConfig::default(),
    };
    let catalog_path = cli
        .catalog
        .clone()
        .or_else(|| config.catalog.clone())
        .unwrap_or_else(default_catalog);
    match cli.command {
        Command::Run {
            drill,
            drills_dir,
            json,
            quiet,
            keep,
            artifact,
            random,
            report_dir,
        } => {
            let catalog = match SqliteCatalog::open(&catalog_path) {
                Ok(c) => Some(Arc::new(c) as Arc<dyn Catalog>),
                Err(e) => {
                    eprintln!("warning: running without a catalog: {e}");
                    None
                }
            };
            let reports = match config.report_writer(Some(&catalog_path), report_dir.as_deref()) {
                Ok(w) => Arc::new(w),
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            let opts = RunOptions {
                keep,
                artifact,
                run_id: None,
                catalog,
                reports: Some(reports),
            };
            let (code, report) = run(&drill, &drills_dir, json, quiet, random, opts.clone()).await;
            if let (Some(c), Some(report)) = (&opts.catalog, &report) {
                page(c.as_ref(), &config, report).await;
            }
            code
        }
        Command::Notify { command } => notify(&catalog_path, &config, command).await,
        Command::Daemon => {
            if cli.config.is_none() {
                eprintln!("error: the daemon needs --config FILE (catalog, drills_dir, [daemon], [notify])\n  hint: see deploy/firedrill.toml");
                return 2;
            }
            let mut config = config;
            config.catalog = Some(catalog_path.clone());
            daemon(config).await
        }
        Command::Artifacts { drill, json } => {
            artifacts(&catalog_path, drill.as_deref(), json).await
        }
        Command::History { drill, limit, json } => {
            history(&catalog_path, drill.as_deref(), limit, json).await
        }
        Command::Prune {
            drill,
            drills_dir,
            dry_run,
            json,
        } => prune(&catalog_path, drill.as_deref(), &drills_dir, dry_run, json).await,
        Command::Catalog {
            command: CatalogCommand::Rebuild { drills_dir },
        } => rebuild(&catalog_path, &drills_dir).await,
        Command::Validate { files, drills_dir } => validate(files, &drills_dir),
        Command::Keygen { output } => keygen(&output),
        Command::Accept { run, drills_dir } => accept(&catalog_path, &run, &drills_dir).await,
        Command::Evidence {
            command: EvidenceCommand::Keygen { output },
        } => evidence_keygen(&output),
        Command::Evidence {
            command:
                EvidenceCommand::Verify {
                    report,
                    public_key,
                    drills_dir,
                    signature_only,
                },
        } => {
            evidence_verify(
                &config,
                &report,
                public_key.as_deref(),
                &drills_dir,
                signature_only,
            )
            .await
        }
        Command::Reap { all, docker_host } => reap(all, docker_host.as_deref()).await,
    }
}

fn drill_path(drill: &str, dir: &Path) -> PathBuf {
    let p = PathBuf::from(drill);
    if p.exists() || drill.contains('/') || drill.ends_with(".toml") {
        p
    } else {
        dir.join(format!("{drill}.toml"))
    }
}

struct Printer {
    quiet: bool,
}

impl Progress for Printer {
    fn stage_finished(&self, r: &StageReport) {
        if !self.quiet {
            eprintln!("{}", render_stage_line(r));
        }
    }
    fn stage_started(&self, stage: Stage) {
        tracing::info!("stage {stage} started");
    }
}

async fn run(
    drill: &str,
    dir: &Path,
    json: bool,
    quiet: bool,
    random: bool,
    mut opts: RunOptions,
) -> (u8, Option<firedrill::RunReport>) {
    let path = drill_path(drill, dir);
    let drill = match load_drill(&path) {
        Ok(d) => d,
        Err(p) => {
            eprintln!("{p}");
            return (2, None);
        }
    };
    if random {
        match firedrill::inventory::random_artifact(&drill).await {
            Ok(Some(id)) => {
                if !quiet {
                    eprintln!("picked stored artifact {id} at random");
                }
                opts.artifact = Some(id);
            }
            Ok(None) => {
                eprintln!("error: drill {} has no stored artifacts to pick from\n  hint: run the drill once without --random", drill.name);
                return (2, None);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return (2, None);
            }
        }
    }
    let cancel = CancellationToken::new();
    spawn_signal_handler(cancel.clone());
    if !quiet {
        eprintln!("drill {} ({})", drill.name, path.display());
    }
    let report = firedrill::run_drill(&drill, &opts, &Printer { quiet }, cancel).await;
    if json {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, &report);
        let _ = writeln!(out);
    } else {
        print!("{}", render_human_with(&report, quiet));
    }
    (report.exit_code as u8, Some(report))
}

/// Pages about a finished run (when channels are configured) and delivers what is due.
async fn page(catalog: &dyn Catalog, config: &MainConfig, report: &firedrill::RunReport) {
    if config.notify.channels.is_empty() {
        return;
    }
    if let Err(e) = firedrill::notify::on_run_finished(catalog, &config.notify, report).await {
        eprintln!("warning: could not queue the pages for this run: {e}");
        return;
    }
    let notifiers = match firedrill::notify::build_notifiers(&config.notify, &config.base_dir) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("warning: notification channels unusable (pages stay queued): {e}");
            return;
        }
    };
    match tokio::time::timeout(
        std::time::Duration::from_secs(60),
        firedrill::notify::deliver_due(catalog, &config.notify, &notifiers),
    )
    .await
    {
        Ok(Ok(d)) if d.retrying > 0 => eprintln!(
            "warning: {} notification(s) not delivered yet; they stay queued (`firedrill notify flush`)",
            d.retrying
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("warning: delivering pages: {e}"),
        Err(_) => eprintln!("warning: delivering pages took over 60s; the rest stay queued"),
    }
}

async fn notify(catalog: &Path, config: &MainConfig, command: NotifyCommand) -> u8 {
    if config.notify.channels.is_empty() {
        eprintln!("error: no notification channels configured\n  hint: add [[notify.channel]] tables to the file given with --config");
        return 2;
    }
    let notifiers = match firedrill::notify::build_notifiers(&config.notify, &config.base_dir) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match command {
        NotifyCommand::Test { channel } => {
            if let Some(c) = &channel {
                if !notifiers.iter().any(|n| n.name() == c) {
                    eprintln!("error: no channel named {c}");
                    return 2;
                }
            }
            let mut failed = 0;
            for (name, r) in firedrill::notify::send_test(&notifiers, channel.as_deref()).await {
                match r {
                    Ok(()) => println!("ok    {name}: accepted"),
                    Err(e) => {
                        failed += 1;
                        println!("FAIL  {name}: {e}");
                    }
                }
            }
            if failed > 0 {
                2
            } else {
                0
            }
        }
        NotifyCommand::Flush { now } => {
            let c = match open_catalog(catalog) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let at = if now {
                jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_hours(24 * 365))
                    .unwrap_or(jiff::Timestamp::MAX)
            } else {
                jiff::Timestamp::now()
            };
            match firedrill::notify::deliver_due_at(&c, &config.notify, &notifiers, at).await {
                Ok(d) => {
                    println!(
                        "sent {}, retrying {}, expired {}",
                        d.sent, d.retrying, d.expired
                    );
                    if d.retrying > 0 {
                        1
                    } else {
                        0
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
        NotifyCommand::Outbox { limit } => {
            let c = match open_catalog(catalog) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match c.outbox(limit).await {
                Ok(items) => {
                    for i in items {
                        println!(
                            "{:>5} {:<8} {:<9} {:<16} {:<20} attempts {} {}",
                            i.id,
                            i.state,
                            i.kind,
                            i.channel,
                            i.drill,
                            i.attempts,
                            i.last_error.unwrap_or_default()
                        );
                    }
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
    }
}

/// Ctrl-C or SIGTERM cancels the run; the sandbox is still torn down. A second signal
/// exits at once.
fn spawn_signal_handler(cancel: CancellationToken) {
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
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                eprintln!("interrupted: stopping the drill and removing its sandbox (again to quit at once)");
                cancel.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}

async fn daemon(config: MainConfig) -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    let shutdown = CancellationToken::new();
    let reload = Arc::new(tokio::sync::Notify::new());
    let (mut term, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(h)) => (t, h),
        _ => {
            eprintln!("error: cannot install signal handlers");
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
            eprintln!("firedrill daemon: stopping: cancelling drills, removing their sandboxes");
            shutdown.cancel();
        });
    }
    match firedrill::daemon::run(config, shutdown, reload).await {
        Ok(()) => {
            eprintln!("firedrill daemon: stopped");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn default_catalog() -> PathBuf {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        PathBuf::from("/var/lib/firedrill/catalog.db")
    } else {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("firedrill/catalog.db")
    }
}

fn open_catalog(path: &Path) -> Result<SqliteCatalog, u8> {
    SqliteCatalog::open(path).map_err(|e| {
        eprintln!("error: {e}");
        2
    })
}

fn load_drills(dir: &Path, only: Option<&str>) -> Result<Vec<firedrill::Drill>, u8> {
    let all = firedrill::daemon::load_drills(dir).map_err(|p| {
        eprintln!("{p}");
        2u8
    })?;
    match only {
        None => Ok(all.into_values().collect()),
        Some(n) => match all.get(n) {
            Some(d) => Ok(vec![d.clone()]),
            None => {
                eprintln!("error: no drill named {n} in {}", dir.display());
                Err(2)
            }
        },
    }
}

fn age_of(t: jiff::Timestamp) -> String {
    let secs = jiff::Timestamp::now().as_second() - t.as_second();
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

async fn artifacts(catalog: &Path, drill: Option<&str>, json: bool) -> u8 {
    let c = match open_catalog(catalog) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let list = match c.artifacts(drill).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return 0;
    }
    println!(
        "{:<24} {:<26} {:>10} {:>6}  verified",
        "DRILL", "ARTIFACT", "SIZE", "AGE"
    );
    for a in &list {
        let when = a
            .verified_at
            .map(|t| format!(" ({} ago)", age_of(t)))
            .unwrap_or_default();
        println!(
            "{:<24} {:<26} {:>10} {:>6}  {}{}",
            a.drill,
            a.run_id,
            human_bytes(a.encrypted_bytes),
            age_of(a.created_at),
            a.verified.as_str(),
            when
        );
    }
    0
}

async fn history(catalog: &Path, drill: Option<&str>, limit: usize, json: bool) -> u8 {
    let c = match open_catalog(catalog) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut runs = match c.runs(drill, limit).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if json {
        for r in &mut runs {
            r.report = None;
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_default()
        );
        return 0;
    }
    println!(
        "{:<24} {:<26} {:<8} {:>8} {:>10}  stage / error",
        "DRILL", "RUN", "OUTCOME", "RTO", "SIZE"
    );
    for r in &runs {
        println!(
            "{:<24} {:<26} {:<8} {:>8} {:>10}  {}{}",
            r.drill,
            r.run_id,
            r.status,
            r.rto_seconds
                .map(|s| format!("{s:.1}s"))
                .unwrap_or_else(|| "-".into()),
            r.encrypted_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "-".into()),
            r.failed_stage
                .as_deref()
                .map(|s| format!("{s}: "))
                .unwrap_or_default(),
            r.error
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    0
}

async fn prune(catalog: &Path, drill: Option<&str>, dir: &Path, dry_run: bool, json: bool) -> u8 {
    let drills = match load_drills(dir, drill) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let c = SqliteCatalog::open(catalog).ok();
    let mut reports = Vec::new();
    for d in &drills {
        match firedrill::inventory::prune(c.as_ref().map(|c| c as &dyn Catalog), d, dry_run).await {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("error: drill {}: {e}", d.name);
                return 2;
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).unwrap_or_default()
        );
        return 0;
    }
    for r in &reports {
        if r.drill_has_no_artifacts() {
            println!("{}: no artifacts", r.drill);
            continue;
        }
        println!("{}{}:", r.drill, if r.dry_run { " (dry run)" } else { "" });
        for d in &r.decisions {
            let verb = if d.keep {
                "keep  "
            } else if r.dry_run {
                "would delete"
            } else {
                "delete"
            };
            println!("  {verb} {}  {}", d.run_id, d.reasons.join(", "));
        }
    }
    0
}

async fn rebuild(catalog: &Path, dir: &Path) -> u8 {
    let drills = match load_drills(dir, None) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let c = match open_catalog(catalog) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match firedrill::inventory::rebuild(&c, &drills).await {
        Ok(r) => {
            for p in &r.problems {
                eprintln!("warning: {p}");
            }
            println!(
                "rebuilt {} from storage: {} artifacts ({} verified) across {} drills",
                catalog.display(),
                r.artifacts,
                r.verified,
                drills.len()
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn validate(files: Vec<PathBuf>, dir: &Path) -> u8 {
    let files = if files.is_empty() {
        match firedrill::config::drill_files(dir) {
            Ok(v) => v,
            Err(e) => {
                eprintln!(
                    "{}: cannot read the drills directory: {e}\n  fix: give files, or --drills-dir",
                    dir.display()
                );
                return 2;
            }
        }
    } else {
        files
    };
    if files.is_empty() {
        eprintln!("no drill files found in {}", dir.display());
        return 2;
    }
    let mut bad = 0;
    for f in &files {
        match load_drill(f) {
            Ok(d) => println!("ok    {} (drill {})", f.display(), d.name),
            Err(p) => {
                bad += 1;
                println!("FAIL  {}", f.display());
                eprintln!("{p}");
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} drill files have problems", files.len());
        2
    } else {
        0
    }
}

async fn accept(catalog: &Path, run: &str, dir: &Path) -> u8 {
    let c = match open_catalog(catalog) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let drill_name = match c.run(run).await {
        Ok(Some(r)) => r.drill,
        Ok(None) => {
            eprintln!("error: there is no run {run} in the catalog {}\n  hint: list runs with `firedrill history`", catalog.display());
            return 2;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let drill = load_drill(&drill_path(&drill_name, dir)).ok();
    match firedrill::drill::accept_run(&c, run, drill.as_ref()).await {
        Ok(r) => {
            eprintln!(
                "accepted run {} of {}: it is the baseline of the next runs{}",
                r.run_id,
                r.drill,
                if drill.is_some() {
                    ", and its artifact is marked good in storage"
                } else {
                    " (drill file not found: storage marker not written)"
                }
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn evidence_keygen(output: &Path) -> u8 {
    let (pem, public) = match firedrill::evidence::generate() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if let Err(code) = write_secret_file(
        output,
        &pem,
        "a signing key (reports signed with it could no longer be checked)",
    ) {
        return code;
    }
    eprintln!(
        "wrote the signing key to {}; set [evidence] signing_key = {{ file = \"{}\" }} and public_key to:",
        output.display(),
        output.display()
    );
    println!("{public}");
    0
}

async fn evidence_verify(
    config: &MainConfig,
    report: &Path,
    public_key: Option<&str>,
    dir: &Path,
    signature_only: bool,
) -> u8 {
    let trusted = match public_key {
        Some(k) => firedrill::evidence::verifying_key_from_hex(k, "--public-key").map(Some),
        None => config.trusted_key(),
    };
    let trusted = match trusted {
        Ok(Some(k)) => k,
        Ok(None) => {
            eprintln!("error: no key to check the signature with\n  hint: pass --public-key HEX, or --config with [evidence] public_key or signing_key");
            return 2;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let text = match std::fs::read_to_string(report) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", report.display());
            return 2;
        }
    };
    let r = match firedrill::evidence::verify_signature(&text, &trusted, report) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("FAILED: {e}");
            return 1;
        }
    };
    println!("signature: ok (ed25519 key {})", hex_key(&trusted));
    if signature_only {
        return 0;
    }
    let dir = config
        .drills_dir
        .clone()
        .unwrap_or_else(|| dir.to_path_buf());
    let drill = match load_drill(&drill_path(&r.drill, &dir)) {
        Ok(d) => d,
        Err(p) => {
            eprintln!("{p}\nerror: cannot load drill {} to reach its storage\n  hint: pass --drills-dir, or --signature-only", r.drill);
            return 2;
        }
    };
    let store = match firedrill::store::build_store(&drill.storage, &drill.base_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match firedrill::evidence::verify_artifact(&r, store.as_ref()).await {
        Ok(checked) => {
            for c in checked {
                println!("{c}: ok");
            }
            println!(
                "report {} of drill {}: intact ({})",
                r.run_id,
                r.drill,
                r.status()
            );
            0
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            if e.kind.is_backup_failure() {
                1
            } else {
                2
            }
        }
    }
}

fn hex_key(k: &ed25519_dalek::VerifyingKey) -> String {
    k.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `output` with mode 0600 and writes `text`; refuses to overwrite.
fn write_secret_file(output: &Path, text: &str, what: &str) -> Result<(), u8> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "error: {} already exists; refusing to overwrite {what}\n  hint: choose another path, or delete the old one if you are sure",
                output.display()
            );
            return Err(2);
        }
        Err(e) => {
            eprintln!("error: cannot create {}: {e}", output.display());
            return Err(2);
        }
    };
    if let Err(e) = file
        .write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
    {
        eprintln!("error: cannot write {}: {e}", output.display());
        let _ = std::fs::remove_file(output);
        return Err(2);
    }
    Ok(())
}

fn keygen(output: &Path) -> u8 {
    let (text, recipient) = firedrill::artifact::generate_identity();
    if let Err(code) = write_secret_file(
        output,
        &text,
        "an identity (artifacts encrypted to it would be lost)",
    ) {
        return code;
    }
    eprintln!(
        "wrote the identity to {} (keep it secret; the sandbox gets it at restore time)",
        output.display()
    );
    eprintln!("add its recipient to the drill's [encryption] recipients:");
    println!("{recipient}");
    0
}

async fn reap(all: bool, docker_host: Option<&str>) -> u8 {
    use firedrill::sandbox::SandboxBackend;
    let backend = match firedrill::sandbox::DockerBackend::connect(docker_host) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match backend.reap(jiff::Timestamp::now(), all).await {
        Ok(runs) => {
            for r in &runs {
                println!("removed sandbox of run {r}");
            }
            if runs.is_empty() {
                println!("no leftover sandboxes");
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
