//! The `firedrill` command: a thin shell over the library. Each subcommand calls one
//! engine function and maps its result to output and an exit code.
//!
//! Exit codes: 0 the drill passed (or the command succeeded), 1 the backup failed
//! verification, 2 the drill could not run (bad config, Docker unreachable, …).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
    #[command(subcommand)]
    command: Command,
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
        #[arg(long)]
        artifact: Option<String>,
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
    match cli.command {
        Command::Run {
            drill,
            drills_dir,
            json,
            quiet,
            keep,
            artifact,
        } => {
            run(
                &drill,
                &drills_dir,
                json,
                quiet,
                RunOptions { keep, artifact },
            )
            .await
        }
        Command::Validate { files, drills_dir } => validate(files, &drills_dir),
        Command::Keygen { output } => keygen(&output),
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

async fn run(drill: &str, dir: &Path, json: bool, quiet: bool, opts: RunOptions) -> u8 {
    let path = drill_path(drill, dir);
    let drill = match load_drill(&path) {
        Ok(d) => d,
        Err(p) => {
            eprintln!("{p}");
            return 2;
        }
    };
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
    report.exit_code as u8
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

fn validate(files: Vec<PathBuf>, dir: &Path) -> u8 {
    let files = if files.is_empty() {
        let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect(),
            Err(e) => {
                eprintln!(
                    "{}: cannot read the drills directory: {e}\n  fix: give files, or --drills-dir",
                    dir.display()
                );
                return 2;
            }
        };
        v.sort();
        v
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

fn keygen(output: &Path) -> u8 {
    use std::os::unix::fs::OpenOptionsExt;
    let (text, recipient) = firedrill::artifact::generate_identity();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "error: {} already exists; refusing to overwrite an identity (artifacts encrypted to it would be lost)\n  hint: choose another path, or delete the old one if you are sure",
                output.display()
            );
            return 2;
        }
        Err(e) => {
            eprintln!("error: cannot create {}: {e}", output.display());
            return 2;
        }
    };
    if let Err(e) = file
        .write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
    {
        eprintln!("error: cannot write {}: {e}", output.display());
        let _ = std::fs::remove_file(output);
        return 2;
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
