//! The `firedrill` command: a thin shell over the library. Each subcommand calls one
//! engine function and maps its result to output and an exit code.
//!
//! Exit codes: 0 the drill passed (or the command succeeded), 1 the backup failed
//! verification, 2 the drill could not run (bad config, Docker unreachable, …).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use firedrill::catalog::{Catalog, SqliteCatalog};
use firedrill::config::{load_main_config, MainConfig};
use firedrill::human::{human_bytes, human_ms};
use firedrill::report::{render_human_with, render_stage_line, StageReport};
use firedrill::{load_drill, Progress, RunOptions, Runner, Stage, Stop, StopReason};
use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};

const EXIT_CODES: &str = "\
Exit codes:
  0  the backup restored and verified (or the command succeeded)
  1  the backup failed: it does not decrypt or restore, or the restored data does not match
  2  the drill could not run: bad config, missing secret, Docker or the source unreachable,
     a stage timed out, cancelled

Environment:
  FIREDRILL_CONFIG      the main config file (as --config)
  FIREDRILL_CATALOG     the catalog (as --catalog)
  FIREDRILL_LOG         which logs reach stderr: warn (default), info, debug, firedrill=debug,…
  FIREDRILL_LOG_FORMAT  human (default) or json (as --log-format)

Config files may use ${VAR}, ${VAR:-default} and ${VAR:?message} for values that are not
secret; secrets are { env = \"VAR\" } or { file = \"/path\" }.";

#[derive(Parser)]
#[command(
    name = "firedrill",
    version,
    about = "Proves database backups can be restored: dump, encrypt, store, restore in a throwaway sandbox, verify.",
    long_about = "Proves database backups can be restored.\n\n\
        A drill dumps a database with its native tools, compresses and encrypts the dump as a \
        stream (zstd, then age), stores it with a manifest, restores it inside a throwaway \
        sandbox container without network, and checks that the restored data is what was \
        dumped: every table, exact row counts, the same columns, plus your own SQL assertions.",
    after_long_help = EXIT_CODES
)]
struct Cli {
    /// The catalog of runs and artifacts (SQLite). Default: catalog of --config, else
    /// /var/lib/firedrill/catalog.db as root, else ~/.local/state/firedrill/catalog.db.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "FIREDRILL_CATALOG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    catalog: Option<PathBuf>,
    /// The main config file: catalog, drills_dir, notification channels and routes, the
    /// daemon (see deploy/firedrill.toml).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "FIREDRILL_CONFIG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    /// How logs are written to stderr: lines for people, or one JSON object per line. Which
    /// logs: FIREDRILL_LOG (default `warn`).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        default_value_t = LogFormat::Human,
        env = "FIREDRILL_LOG_FORMAT",
        hide_env_values = true,
        value_name = "FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// Where drill files are, for the commands that read them.
#[derive(Args, Clone)]
struct DrillsDir {
    /// Directory of drill files. Default: drills_dir of --config, else ./drills.
    #[arg(long, value_name = "DIR")]
    drills_dir: Option<PathBuf>,
}

impl DrillsDir {
    fn resolve(&self, config: &MainConfig) -> PathBuf {
        self.drills_dir
            .clone()
            .or_else(|| config.drills_dir.clone())
            .unwrap_or_else(|| PathBuf::from("drills"))
    }
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Send a test page through each channel (or one) and say whether it was accepted.
    ///
    /// Exit code 0 when every channel accepted its page, 2 otherwise.
    Test {
        /// Only this channel (its `name` in [[notify.channel]]).
        channel: Option<String>,
    },
    /// Deliver the notifications waiting in the outbox now.
    ///
    /// Exit code 1 when some are still waiting for a retry afterwards.
    Flush {
        /// Ignore the retry backoff: try every pending notification.
        #[arg(long)]
        now: bool,
    },
    /// Show the outbox: queued, sent and expired notifications, newest first.
    ///
    /// Each with its channel, drill, attempts and last error: what a receiver that was
    /// down missed, and what is still due.
    Outbox {
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Write a new ed25519 signing key for reports and print its public key.
    ///
    /// The key is PKCS#8 PEM, written with mode 0600; put its path in [evidence]
    /// signing_key and the printed public key in [evidence] public_key.
    Keygen {
        /// Where to write the key; refuses to overwrite.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
    },
    /// Check a signed JSON report, and that its artifact is still what it recorded.
    ///
    /// Checks the report's signature, then that the artifact and manifest it names still
    /// have the hashes it records. Exit 0: intact; 1: edited or no longer matching; 2:
    /// could not check.
    Verify {
        /// The report (`<reports_dir>/<drill>/<run>.json`).
        report: PathBuf,
        /// The public key to trust (64 hex digits). Default: [evidence] of --config.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        #[command(flatten)]
        drills: DrillsDir,
        /// Only check the signature.
        #[arg(long)]
        signature_only: bool,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Recreate the artifact inventory from the manifests in storage alone.
    ///
    /// Reads every drill's storage; what each drill concluded about an artifact is read
    /// back from the `verified.json` beside it, so verification survives a lost catalog.
    Rebuild {
        #[command(flatten)]
        drills: DrillsDir,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run a drill now and report stage by stage.
    ///
    /// On a terminal each stage shows a spinner while it runs; otherwise a line per stage
    /// as it finishes. Then the summary: fingerprint, assertions, the verdict.
    ///
    /// Exit code 0: the backup restored and verified; 1: the backup failed verification;
    /// 2: the drill could not run.
    Run {
        /// A drill file, or the name of a drill in --drills-dir.
        drill: String,
        #[command(flatten)]
        drills: DrillsDir,
        /// Print one JSON report on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
        /// Do not show stages as they run.
        #[arg(long, short)]
        quiet: bool,
        /// Leave the sandbox running afterwards and print how to connect to it.
        #[arg(long)]
        keep: bool,
        /// Drill a stored artifact (the run id that made it) instead of a new backup.
        #[arg(long, conflicts_with = "random", value_name = "RUN_ID")]
        artifact: Option<String>,
        /// Drill a random stored artifact of this drill ("pick a random tape").
        #[arg(long)]
        random: bool,
        /// Write the run's reports (JSON, JUnit XML, HTML) here. Default: reports_dir of
        /// the main config, else `reports` beside the catalog.
        #[arg(long, value_name = "DIR")]
        report_dir: Option<PathBuf>,
    },
    /// Check drill files offline and report every problem with file, field and fix.
    ///
    /// Reads no secret and touches no database, storage or Docker: what is checked is the
    /// file itself. Exit code 2 when any file has a problem.
    Validate {
        /// Drill files (default: every *.toml in --drills-dir).
        files: Vec<PathBuf>,
        #[command(flatten)]
        drills: DrillsDir,
        /// Print JSON (each file with its drill name and problems) instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Check, without changing anything, that drills can run.
    ///
    /// For each drill (one, or every drill in --drills-dir): the source is reachable and
    /// its version, the dump tool is not older than the server, the dump user has no write
    /// rights, storage is reachable and writable (a probe object is written and deleted),
    /// Docker is reachable and the sandbox image is present, free disk, the identity
    /// file's permissions; and with --config, that each notification channel answers.
    /// Each finding is ok, warn or fail, with a fix. Exit code 0 when nothing failed,
    /// 2 otherwise.
    Doctor {
        /// A drill file or name (default: every drill in --drills-dir).
        drill: Option<String>,
        #[command(flatten)]
        drills: DrillsDir,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the drills with their schedule, engine, storage and last runs.
    ///
    /// Every drill file in --drills-dir, with its description, cron schedule, engine and
    /// storage, and from the catalog the last run's outcome and when the drill last
    /// passed. Files that do not validate are listed as invalid.
    List {
        #[command(flatten)]
        drills: DrillsDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run drills on their schedules and serve the HTTP API until SIGTERM/SIGINT.
    ///
    /// Needs --config. Every drill in drills_dir runs on its [schedule], never overlapping
    /// itself, at most max_concurrent_drills at once. SIGHUP reloads the drills.
    Daemon,
    /// List past runs with outcome, recovery time and size, newest first.
    ///
    /// From the catalog. The recovery time (RTO) is restore plus verify; a run that failed
    /// names the stage and the first line of its error (`--json` has the whole record).
    History {
        /// Only this drill's runs.
        drill: Option<String>,
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List stored artifacts with size, age and verification state.
    ///
    /// From the catalog; `firedrill catalog rebuild` refreshes it from storage.
    Artifacts {
        /// Only this drill's artifacts.
        drill: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete the artifacts the drills' retention policies do not keep.
    ///
    /// Each artifact goes first, its manifest last. The newest artifact that passed a drill,
    /// and everything newer, are never deleted. --dry-run shows what is kept and why.
    Prune {
        /// Only this drill (default: every drill in --drills-dir).
        drill: Option<String>,
        #[command(flatten)]
        drills: DrillsDir,
        /// Print what would be kept and why, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Accept a run that failed only its anomaly guards (a shrink that was intended).
    ///
    /// The run becomes the baseline of later runs and its artifact counts as good, in the
    /// catalog and in storage.
    Accept {
        /// The run id (see `firedrill history`).
        run: String,
        #[command(flatten)]
        drills: DrillsDir,
    },
    /// Catalog maintenance.
    ///
    /// The catalog is an index: storage is the source of truth for artifacts.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Notification channels and the outbox.
    ///
    /// Channels are the [[notify.channel]] tables of --config. Every notification waits in
    /// the catalog's outbox until it is delivered or expires.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Signed evidence of runs: keys, and checking a report.
    ///
    /// With [evidence] signing_key in --config, every run's JSON report is signed (ed25519),
    /// so an auditor can check it was not edited and its artifact is unchanged.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Write a new age identity and print its recipient for drill files.
    ///
    /// The identity is written with mode 0600; the recipient (age1…) goes in the drill's
    /// [encryption] recipients, the identity's path in its identity = { file = … }.
    Keygen {
        /// Where to write the identity; refuses to overwrite.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
    },
    /// Remove leftover sandboxes (containers and volumes) whose run is over.
    ///
    /// Sandboxes are labelled with their run and when they expire; those past it, and
    /// never those kept with `run --keep`, are removed.
    Reap {
        /// Remove every firedrill sandbox not kept with --keep, expired or not.
        #[arg(long)]
        all: bool,
        /// Docker endpoint (default: DOCKER_HOST or the local socket).
        #[arg(long, value_name = "URL")]
        docker_host: Option<String>,
    },
    /// Print the JSON Schema of drill files, for editor completion and checking.
    ///
    /// drills/drill.schema.json is this output. Editors with taplo (Even Better TOML)
    /// use it for completion and hover docs: `#:schema ./drill.schema.json` as the first
    /// line of a drill file, or a rule in .taplo.toml.
    Schema {
        /// The schema of the main config file (--config) instead.
        #[arg(long)]
        main: bool,
    },
    /// Print a shell completion script.
    ///
    /// For example: `firedrill completions bash > /etc/bash_completion.d/firedrill`, or
    /// `firedrill completions zsh > "${fpath[1]}/_firedrill"`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    ///
    /// For example: `firedrill man > firedrill.1 && man ./firedrill.1`.
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    // These need no config, catalog or runtime, and work with a broken --config.
    match &cli.command {
        Command::Schema { main } => return ExitCode::from(schema(*main)),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "firedrill", &mut script);
            return ExitCode::from(emit(&script, "the completion script"));
        }
        Command::Man => return ExitCode::from(man()),
        _ => {}
    }
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

/// Logs go to stderr (through [`LogWriter`], so they do not tear the live stage display);
/// FIREDRILL_LOG picks which.
fn init_logs(format: LogFormat) {
    let filter = match std::env::var("FIREDRILL_LOG") {
        Err(_) => tracing_subscriber::EnvFilter::new("warn"),
        Ok(v) => tracing_subscriber::EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("warning: FIREDRILL_LOG={v} is not a log filter ({e}); using `warn`");
            tracing_subscriber::EnvFilter::new("warn")
        }),
    };
    // OpenDAL's request signer (reqsign) logs its credential providers with `Debug`, keys
    // and all, at debug level: never below info, whatever FIREDRILL_LOG says. LogWriter
    // also scrubs every secret firedrill holds from whatever else gets through.
    let filter = filter.add_directive("reqsign_core=info".parse().expect("a log directive"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter(Vec::new()));
    match format {
        LogFormat::Human => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// The live stage display of `run`, when there is one: log lines and messages are written
/// above it rather than through it.
static LIVE: OnceLock<MultiProgress> = OnceLock::new();

/// One log event, written to stderr in one piece when dropped.
struct LogWriter(Vec<u8>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let text = firedrill::secret::scrub(&text);
        let write = || {
            let _ = std::io::stderr().write_all(text.as_bytes());
        };
        match LIVE.get() {
            Some(live) => live.suspend(write),
            None => write(),
        }
    }
}

/// A message on stderr that does not tear the live display.
fn say(message: &str) {
    match LIVE.get() {
        Some(live) => live.suspend(|| eprintln!("{message}")),
        None => eprintln!("{message}"),
    }
}

/// Writes generated output to stdout; a closed pipe (`| head`) is not an error.
fn emit(bytes: &[u8], what: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: cannot write {what}: {e}");
            2
        }
    }
}

fn schema(main: bool) -> u8 {
    let schema = if main {
        firedrill::config::json_schema::<firedrill::config::MainConfigFile>()
    } else {
        firedrill::config::json_schema::<firedrill::config::DrillFile>()
    };
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
    text.push('\n');
    emit(text.as_bytes(), "the schema")
}

/// The sections of the man page that clap does not know about (the help's EXIT_CODES).
const MAN_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
The backup restored and verified (or the command succeeded).
.TP
\fB1\fR
The backup failed: it does not decrypt or restore, or the restored data does not match.
.TP
\fB2\fR
The drill could not run: bad config, missing secret, Docker or the source unreachable, a stage timed out, cancelled.
.SH ENVIRONMENT
.TP
\fBFIREDRILL_CONFIG\fR
The main config file, as \fB\-\-config\fR.
.TP
\fBFIREDRILL_CATALOG\fR
The catalog, as \fB\-\-catalog\fR.
.TP
\fBFIREDRILL_LOG\fR
Which logs reach stderr: \fBwarn\fR (the default), \fBinfo\fR, \fBdebug\fR, \fBfiredrill=debug\fR, ...
.TP
\fBFIREDRILL_LOG_FORMAT\fR
\fBhuman\fR (the default) or \fBjson\fR, as \fB\-\-log\-format\fR.
.PP
Drill files and the main config may use ${VAR}, ${VAR:\-default} and ${VAR:?message} for values that are not secret; secrets are written { env = "VAR" } or { file = "/path" }.
.SH "SEE ALSO"
Each command's options: \fBfiredrill help\fR \fIcommand\fR. Drill file schema: \fBfiredrill schema\fR.
"#;

fn man() -> u8 {
    let man = clap_mangen::Man::new(Cli::command());
    let mut page = Vec::new();
    let rendered = man
        .render_title(&mut page)
        .and_then(|()| man.render_name_section(&mut page))
        .and_then(|()| man.render_synopsis_section(&mut page))
        .and_then(|()| man.render_description_section(&mut page))
        .and_then(|()| man.render_options_section(&mut page))
        .and_then(|()| man.render_subcommands_section(&mut page))
        .and_then(|()| page.write_all(MAN_SECTIONS.as_bytes()))
        .and_then(|()| man.render_version_section(&mut page));
    match rendered {
        Ok(()) => emit(&page, "the man page"),
        Err(e) => {
            eprintln!("error: cannot render the man page: {e}");
            2
        }
    }
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
            drills,
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
            let reports = match firedrill::evidence::ReportWriter::from_config(
                &config,
                Some(&catalog_path),
                report_dir.as_deref(),
            ) {
                Ok(w) => Arc::new(w),
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            let pager = match firedrill::notify::Pager::new(&config.notify, &config.base_dir) {
                Ok(p) => p.map(Arc::new),
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            let runner = Runner {
                connector: Arc::new(firedrill::LiveConnector),
                catalog,
                reports: Some(reports),
                pager,
            };
            let opts = RunOptions {
                keep,
                artifact,
                ..Default::default()
            };
            let dir = drills.resolve(&config);
            run(&runner, &drill, &dir, json, quiet, random, opts).await
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
        Command::Doctor {
            drill,
            drills,
            json,
        } => doctor(&config, drill.as_deref(), &drills.resolve(&config), json).await,
        Command::List { drills, json } => list(&catalog_path, &drills.resolve(&config), json).await,
        Command::Artifacts { drill, json } => {
            artifacts(&catalog_path, drill.as_deref(), json).await
        }
        Command::History { drill, limit, json } => {
            history(&catalog_path, drill.as_deref(), limit, json).await
        }
        Command::Prune {
            drill,
            drills,
            dry_run,
            json,
        } => {
            prune(
                &catalog_path,
                drill.as_deref(),
                &drills.resolve(&config),
                dry_run,
                json,
            )
            .await
        }
        Command::Catalog {
            command: CatalogCommand::Rebuild { drills },
        } => rebuild(&catalog_path, &drills.resolve(&config)).await,
        Command::Validate {
            files,
            drills,
            json,
        } => validate(files, &drills.resolve(&config), json),
        Command::Keygen { output } => keygen(&output),
        Command::Accept { run, drills } => {
            accept(&catalog_path, &run, &drills.resolve(&config)).await
        }
        Command::Evidence {
            command: EvidenceCommand::Keygen { output },
        } => evidence_keygen(&output),
        Command::Evidence {
            command:
                EvidenceCommand::Verify {
                    report,
                    public_key,
                    drills,
                    signature_only,
                },
        } => {
            evidence_verify(
                &config,
                &report,
                public_key.as_deref(),
                &drills.resolve(&config),
                signature_only,
            )
            .await
        }
        Command::Reap { all, docker_host } => reap(all, docker_host.as_deref()).await,
        Command::Schema { .. } | Command::Completions { .. } | Command::Man => {
            unreachable!("handled before the runtime starts")
        }
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

/// How `run` shows its stages on stderr.
enum Printer {
    /// Nothing while it runs (`--quiet`).
    Quiet,
    /// A line per stage as it finishes: stderr is not a terminal.
    Lines,
    /// A spinner with the elapsed time per running stage, replaced by its line when it
    /// finishes.
    Live {
        bars: MultiProgress,
        running: Mutex<HashMap<Stage, ProgressBar>>,
    },
}

impl Printer {
    fn new(quiet: bool) -> Printer {
        if quiet {
            Printer::Quiet
        } else if std::io::stderr().is_terminal() {
            let bars = MultiProgress::new();
            let _ = LIVE.set(bars.clone());
            Printer::Live {
                bars,
                running: Mutex::new(HashMap::new()),
            }
        } else {
            Printer::Lines
        }
    }

    /// A style with firedrill's own elapsed time (`{elapsed_ms}`) and spinner.
    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .with_key(
                "elapsed_ms",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&human_ms(state.elapsed().as_millis() as u64));
                },
            )
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
    }

    /// The running line lines up with [`render_stage_line`]: stage, outcome, duration.
    fn spinner_style() -> ProgressStyle {
        Self::style("  {prefix:<10} {spinner:.cyan} running {elapsed_ms:>8}")
    }

    /// A stage that moves bytes: how many so far and the rate; a bar when the total is
    /// known (the restore).
    fn bytes_style(total: bool) -> ProgressStyle {
        let template = if total {
            "  {prefix:<10} {spinner:.cyan} {elapsed_ms:>8}  [{bar:24}] {bytes}/{total_bytes}  {bytes_per_sec}"
        } else {
            "  {prefix:<10} {spinner:.cyan} {elapsed_ms:>8}  {bytes}  {bytes_per_sec}"
        };
        Self::style(template).progress_chars("=> ")
    }
}

impl Progress for Printer {
    fn stage_started(&self, stage: Stage) {
        tracing::info!("stage {stage} started");
        if let Printer::Live { bars, running } = self {
            let bar = bars.add(
                ProgressBar::new_spinner()
                    .with_style(Printer::spinner_style())
                    .with_prefix(stage.as_str()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(old) = running.insert(stage, bar) {
                old.finish_and_clear();
            }
        }
    }

    fn bytes(&self, stage: Stage, done: u64, total: Option<u64>) {
        if let Printer::Live { running, .. } = self {
            let running = running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(bar) = running.get(&stage) {
                if bar.length().is_none() || bar.length() != total {
                    bar.set_style(Printer::bytes_style(total.is_some()));
                    if let Some(t) = total {
                        bar.set_length(t);
                    }
                }
                bar.set_position(done);
            }
        }
    }

    fn stage_finished(&self, r: &StageReport) {
        match self {
            Printer::Quiet => {}
            Printer::Lines => eprintln!("{}", render_stage_line(r)),
            Printer::Live { bars, running } => {
                let bar = running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&r.stage);
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                    bars.remove(&bar);
                }
                let _ = bars.println(render_stage_line(r));
            }
        }
    }
}

async fn run(
    runner: &Runner,
    drill: &str,
    dir: &Path,
    json: bool,
    quiet: bool,
    random: bool,
    mut opts: RunOptions,
) -> u8 {
    let path = drill_path(drill, dir);
    let drill = match load_drill(&path) {
        Ok(d) => d,
        Err(p) => {
            eprintln!("{p}");
            return 2;
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
                return 2;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    }
    // A run id that names nothing is the user's typo, not a broken backup: refused before
    // anything is recorded or paged.
    if let Some(id) = &opts.artifact {
        if let Err(e) = runner.check_artifact(&drill, id).await {
            eprintln!("error: {e}");
            return 2;
        }
    }
    let stop = Stop::new();
    spawn_signal_handler(stop.clone());
    if !quiet {
        eprintln!("drill {} ({})", drill.name, path.display());
    }
    let ran = runner.run(&drill, &opts, &Printer::new(quiet), &stop).await;
    let report = &ran.report;
    if json {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, report);
        let _ = writeln!(out);
    } else {
        print!("{}", render_human_with(report, quiet));
    }
    match ran.paged {
        Some(Err(e)) => eprintln!("warning: could not queue the pages for this run: {e}"),
        Some(Ok(p)) if p.delivery.retrying > 0 || p.delivery.timed_out => eprintln!(
            "warning: {} notification(s) not delivered yet; they stay queued (`firedrill notify flush`)",
            p.delivery.retrying.max(1)
        ),
        _ => {}
    }
    report.exit_code as u8
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
            let delivered = if now {
                firedrill::notify::deliver_all_pending(&c, &config.notify, &notifiers).await
            } else {
                firedrill::notify::deliver_due(&c, &config.notify, &notifiers).await
            };
            match delivered {
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
        NotifyCommand::Outbox { limit, json } => {
            let c = match open_catalog(catalog) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match c.outbox(limit).await {
                Ok(items) if json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&items).unwrap_or_default()
                    );
                    0
                }
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

async fn daemon(config: MainConfig) -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    let shutdown = Stop::new();
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
            shutdown.stop(StopReason::Shutdown);
        });
    }
    let listener = match firedrill::daemon::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let connector = Arc::new(firedrill::LiveConnector);
    match firedrill::daemon::run(config, listener, connector, shutdown, reload).await {
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

/// One drill in `firedrill list`.
#[derive(serde::Serialize)]
struct DrillListing {
    /// The drill's name; for a file that does not validate, the file name.
    name: String,
    file: PathBuf,
    valid: bool,
    description: Option<String>,
    engine: Option<String>,
    storage: Option<String>,
    /// The cron expression; none for drills run by hand.
    schedule: Option<String>,
    timezone: Option<String>,
    next_run: Option<jiff::Timestamp>,
    last_run: Option<LastRun>,
    /// When the last run that passed started.
    last_success: Option<jiff::Timestamp>,
    /// Why the file does not validate.
    problems: Vec<firedrill::config::Problem>,
}

#[derive(serde::Serialize)]
struct LastRun {
    run_id: String,
    status: String,
    started_at: jiff::Timestamp,
    finished_at: Option<jiff::Timestamp>,
}

/// How far back `list` looks for a run that passed.
const LIST_RUNS: usize = 500;

async fn list(catalog: &Path, dir: &Path, json: bool) -> u8 {
    let files = match firedrill::config::drill_files(dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: {}: cannot read the drills directory: {e}\n  hint: pass --drills-dir, or set drills_dir in --config",
                dir.display()
            );
            return 2;
        }
    };
    // Listing must not create a catalog where there was none.
    let c = if catalog.exists() {
        match SqliteCatalog::open(catalog) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("warning: no run history: {e}");
                None
            }
        }
    } else {
        None
    };
    let now = jiff::Timestamp::now();
    let mut rows = Vec::new();
    for f in files {
        let drill = match load_drill(&f) {
            Ok(d) => d,
            Err(p) => {
                rows.push(DrillListing {
                    name: f
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    file: f,
                    valid: false,
                    description: None,
                    engine: None,
                    storage: None,
                    schedule: None,
                    timezone: None,
                    next_run: None,
                    last_run: None,
                    last_success: None,
                    problems: p.0,
                });
                continue;
            }
        };
        let runs = match &c {
            Some(c) => c
                .runs(Some(&drill.name), LIST_RUNS)
                .await
                .unwrap_or_else(|e| {
                    eprintln!("warning: drill {}: no run history: {e}", drill.name);
                    Vec::new()
                }),
            None => Vec::new(),
        };
        let cron = drill.schedule.cron.as_ref();
        rows.push(DrillListing {
            last_run: runs
                .iter()
                .find(|r| r.status.is_finished())
                .map(|r| LastRun {
                    run_id: r.run_id.clone(),
                    status: r.status.to_string(),
                    started_at: r.started_at,
                    finished_at: r.finished_at,
                }),
            last_success: runs
                .iter()
                .find(|r| r.status == firedrill::RunStatus::Passed)
                .map(|r| r.started_at),
            engine: Some(engine_label(&drill.source)),
            storage: Some(storage_label(&drill)),
            schedule: cron.map(|s| s.expression.clone()),
            timezone: cron.and_then(|s| s.timezone.clone()),
            next_run: cron.and_then(|s| s.next_after(now)),
            name: drill.name,
            file: f,
            valid: true,
            description: drill.description,
            problems: Vec::new(),
        });
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return 0;
    }
    if rows.is_empty() {
        eprintln!("no drill files in {}", dir.display());
        return 0;
    }
    let mut table = vec![[
        "DRILL",
        "ENGINE",
        "STORAGE",
        "SCHEDULE",
        "LAST RUN",
        "LAST SUCCESS",
        "DESCRIPTION",
    ]
    .map(String::from)];
    for r in &rows {
        if !r.valid {
            table.push([
                r.name.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!(
                    "INVALID: {} problem(s); see `firedrill validate {}`",
                    r.problems.len(),
                    r.file.display()
                ),
            ]);
            continue;
        }
        let schedule = match (&r.schedule, &r.timezone) {
            (None, _) => "manual".to_string(),
            (Some(c), None) => c.clone(),
            (Some(c), Some(tz)) => format!("{c} ({tz})"),
        };
        let last_run = r
            .last_run
            .as_ref()
            .map(|l| format!("{} {} ago", l.status, age_of(l.started_at)))
            .unwrap_or_else(|| "never".into());
        let last_success = r
            .last_success
            .map(|t| format!("{} ago", age_of(t)))
            .unwrap_or_else(|| "never".into());
        table.push([
            r.name.clone(),
            r.engine.clone().unwrap_or_default(),
            r.storage.clone().unwrap_or_default(),
            schedule,
            last_run,
            last_success,
            r.description.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", render_table(&table));
    if c.is_none() {
        eprintln!(
            "note: no catalog at {}: run history unknown (--catalog, or catalog in --config)",
            catalog.display()
        );
    }
    0
}

/// Columns padded to their widest cell; the last column is not padded.
fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn engine_label(source: &firedrill::config::SourceSpec) -> String {
    use firedrill::config::SourceSpec;
    match source {
        SourceSpec::Postgres(_) => "postgres".into(),
        SourceSpec::Mysql(_) => "mysql/mariadb".into(),
        SourceSpec::Stored(s) => format!("{} (stored)", s.engine.as_str()),
    }
}

/// Where a drill's artifacts go, in one short word: `s3://bucket/prefix`.
fn storage_label(drill: &firedrill::Drill) -> String {
    use firedrill::config::StorageSpec;
    let storage = &drill.storage;
    let (scheme, place) = match storage {
        StorageSpec::Local { path, .. } => ("local:", drill.resolve(path).display().to_string()),
        StorageSpec::S3 { bucket, .. } => ("s3://", bucket.clone()),
        StorageSpec::Gcs { bucket, .. } => ("gcs://", bucket.clone()),
        StorageSpec::Azblob { container, .. } => ("azblob://", container.clone()),
        StorageSpec::B2 { bucket, .. } => ("b2://", bucket.clone()),
        StorageSpec::Swift { container, .. } => ("swift://", container.clone()),
        StorageSpec::Sftp { endpoint, root, .. } => (
            "sftp:",
            format!(
                "{}/{}",
                endpoint.trim_end_matches('/'),
                root.trim_start_matches('/')
            ),
        ),
    };
    let prefix = storage.prefix().trim_matches('/');
    if prefix.is_empty() {
        format!("{scheme}{place}")
    } else {
        format!("{scheme}{}/{prefix}", place.trim_end_matches('/'))
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
            r.failed_stage.map(|s| format!("{s}: ")).unwrap_or_default(),
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

fn validate(files: Vec<PathBuf>, dir: &Path, json: bool) -> u8 {
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
    let mut results = Vec::new();
    for f in &files {
        let loaded = load_drill(f);
        if loaded.is_err() {
            bad += 1;
        }
        if json {
            let (drill, problems) = match loaded {
                Ok(d) => (Some(d.name), Vec::new()),
                Err(p) => (None, p.0),
            };
            results.push(serde_json::json!({ "file": f, "drill": drill, "problems": problems }));
            continue;
        }
        match loaded {
            Ok(d) => println!("ok    {} (drill {})", f.display(), d.name),
            Err(p) => {
                println!("FAIL  {}", f.display());
                eprintln!("{p}");
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    }
    if bad > 0 {
        eprintln!("{bad} of {} drill files have problems", files.len());
        2
    } else {
        0
    }
}

async fn doctor(config: &MainConfig, drill: Option<&str>, dir: &Path, json: bool) -> u8 {
    let paths = match drill {
        Some(d) => vec![drill_path(d, dir)],
        None => match firedrill::config::drill_files(dir) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: cannot read the drills directory {}: {e}\n  hint: pass --drills-dir or set drills_dir in --config", dir.display());
                return 2;
            }
        },
    };
    let mut all = Vec::new();
    let mut healthy = true;
    for path in paths {
        let findings = match load_drill(&path) {
            Ok(d) => firedrill::doctor::diagnose(&d).await,
            Err(p) => vec![firedrill::doctor::Finding::fail(
                "drill file",
                p.to_string().trim_end().to_string(),
                "run `firedrill validate` and fix what it names",
            )],
        };
        healthy &= firedrill::doctor::healthy(&findings);
        if !json {
            println!("{}", path.display());
            print!("{}", firedrill::doctor::render(&findings));
        }
        all.push(serde_json::json!({ "file": path, "findings": findings }));
    }
    if config.file.is_some() {
        let findings = firedrill::doctor::diagnose_channels(config).await;
        healthy &= firedrill::doctor::healthy(&findings);
        if !json && !findings.is_empty() {
            println!("notification channels");
            print!("{}", firedrill::doctor::render(&findings));
        }
        all.push(serde_json::json!({ "channels": findings }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    if healthy {
        0
    } else {
        2
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
    match firedrill::inventory::accept_run(&c, run, drill.as_ref()).await {
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
    let drill = match load_drill(&drill_path(&r.drill, dir)) {
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
    let (text, recipient) = firedrill::age_keys::generate_identity();
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
