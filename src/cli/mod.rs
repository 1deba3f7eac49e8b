//! The command line as users type it: the clap definition (whose doc comments are the help
//! pinned by tests/cmd/help.trycmd), the options every command shares (`--config`,
//! `--catalog`, `--drills-dir`), and which module runs each command. Each command family
//! has its own module; each command calls into the library and maps its result to output
//! and an exit code.

// Nothing here prints with `println!` and friends: they panic when the reader of a pipe is
// gone (`firedrill run … | head`), which would stop a drill half-way. `outln!`, `out!` and
// `errln!` (output.rs) write instead.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod output;
mod access;
mod catalog;
mod checks;
mod complete;
mod daemon;
mod evidence;
mod key_file;
mod notify;
mod run;
mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use firedrill::config::{load_main_config, MainConfig};
use firedrill::RunOptions;

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
        /// Print JSON (each channel, whether it accepted the page, its error) instead of
        /// lines.
        #[arg(long)]
        json: bool,
    },
    /// Deliver the notifications waiting in the outbox now.
    ///
    /// Exit code 1 when some are still waiting for a retry afterwards.
    Flush {
        /// Ignore the retry backoff: try every pending notification.
        #[arg(long)]
        now: bool,
    },
    /// Send the digest of every drill now, as [notify.digest] sends it on its schedule.
    ///
    /// Each drill with its last run, last success, recovery time against its `rto`, age
    /// of its last success against its `max_age`, and what it verified. It goes to the
    /// channels of [notify.digest] (default: every channel that takes digests). Exit code
    /// 0 when every channel accepted it, 2 otherwise.
    Digest {
        /// Only this channel (its `name` in [[notify.channel]]).
        #[arg(long, value_name = "NAME")]
        channel: Option<String>,
        #[command(flatten)]
        drills: DrillsDir,
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
        /// Print JSON (the key's file and its public key) instead of the public key alone.
        #[arg(long)]
        json: bool,
    },
    /// Write one signed evidence bundle for a period, for auditors.
    ///
    /// A tar file: every run's report as signed, the artifacts' hashes, the audit trail,
    /// and a summary per drill (runs, passes, recovery time against its objective, the
    /// longest time without a verified backup), with a signed manifest. `evidence verify
    /// BUNDLE` checks it offline.
    Export {
        /// The period's start (RFC 3339, or a span ago like "90d").
        #[arg(long)]
        since: String,
        /// The period's end (RFC 3339, or a span ago; default now).
        #[arg(long)]
        until: Option<String>,
        /// Where to write the bundle; refuses to overwrite.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
        #[command(flatten)]
        drills: DrillsDir,
        /// Print JSON (the file, the period, the summary) instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Check a signed JSON report (and that its artifact is still what it recorded), or
    /// an evidence bundle.
    ///
    /// A report: its signature, then that the artifact and manifest it names still have
    /// the hashes it records. A bundle (from `evidence export`): its manifest's signature,
    /// every file's hash, and each report's signature; the file that does not hold is
    /// named. Exit 0: intact; 1: edited or no longer matching; 2: could not check.
    Verify {
        /// The report (`<reports_dir>/<drill>/<run>.json`) or bundle.
        report: PathBuf,
        /// The public key to trust (64 hex digits). Default: [evidence] of --config.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        #[command(flatten)]
        drills: DrillsDir,
        /// Only check the signature.
        #[arg(long)]
        signature_only: bool,
        /// Print JSON (what was checked, and whether the report is intact) instead of lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token, print it once, keep its hash.
    Create {
        /// Its name (in the audit trail and on every run it starts).
        name: String,
        /// What it may do.
        #[arg(long, value_enum)]
        role: firedrill::access::Role,
        /// Limit it to these drills (names or patterns with * and ?); repeat for more.
        #[arg(long = "drill", value_name = "PATTERN")]
        drills: Vec<String>,
        /// The tokens file. Default: [daemon] tokens_file of --config.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Replace the token of that name (rotate it): the old one stops working.
        #[arg(long)]
        rotate: bool,
        /// Print JSON (name, role, drills, token) instead of the token alone.
        #[arg(long)]
        json: bool,
    },
    /// List the tokens (names, roles, drills; never the tokens).
    List {
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: the daemon refuses it, and its dashboard sessions end.
    Revoke {
        name: String,
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
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
        /// Print JSON (what was rebuilt, and each drill that could not be) instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Copy an SQLite catalog into the PostgreSQL catalog several daemons share.
    ///
    /// The target is the catalog of --catalog or --config (a postgres:// URL, its password
    /// from catalog_password). Runs, accepted baselines, artifacts, incidents, the outbox and
    /// claimed digests are copied in one transaction; what the target already holds is
    /// kept, so it can be run again. Stop the daemon using the SQLite file first.
    Migrate {
        /// The SQLite catalog file to copy from.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Print what was copied as JSON.
        #[arg(long)]
        json: bool,
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
        #[arg(add = clap_complete::ArgValueCandidates::new(complete::drill_names))]
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
        #[arg(add = clap_complete::ArgValueCandidates::new(complete::drill_names))]
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
    ///
    /// It refuses to start without [daemon] token (at least 16 bytes, no placeholder):
    /// the API starts drills and the dashboard shows what the databases hold.
    Daemon {
        /// Serve the API and dashboard to anyone who can reach them: no token, or a weak
        /// one. Only for a daemon on a trusted loopback or network namespace.
        #[arg(long)]
        insecure_no_auth: bool,
    },
    /// List past runs with outcome, recovery time and size, newest first.
    ///
    /// From the catalog. The recovery time (RTO) is restore plus verify; a run that failed
    /// names the stage and the first line of its error (`--json` has the whole record).
    History {
        /// Only this drill's runs.
        #[arg(add = clap_complete::ArgValueCandidates::new(complete::drill_names))]
        drill: Option<String>,
        #[command(flatten)]
        drills: DrillsDir,
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List stored artifacts with size, age and verification state, newest first.
    ///
    /// From the catalog; `firedrill catalog rebuild` refreshes it from storage.
    Artifacts {
        /// Only this drill's artifacts.
        #[arg(add = clap_complete::ArgValueCandidates::new(complete::drill_names))]
        drill: Option<String>,
        #[command(flatten)]
        drills: DrillsDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the snapshots in a restic or Borg drill's repository, newest first, with
    /// which ones drills verified and the last one verified.
    ///
    /// Reads the repository now (without a lock) and the catalog.
    Snapshots {
        /// The drill (source.type = "restic" or "borg").
        #[arg(add = clap_complete::ArgValueCandidates::new(complete::drill_names))]
        drill: String,
        #[command(flatten)]
        drills: DrillsDir,
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
        #[arg(add = clap_complete::ArgValueCandidates::new(complete::drill_names))]
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
        #[arg(add = clap_complete::ArgValueCandidates::new(complete::run_ids))]
        run: String,
        #[command(flatten)]
        drills: DrillsDir,
        /// Print JSON (the run, its drill, whether storage was marked) instead of a line.
        #[arg(long)]
        json: bool,
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
    /// Named API tokens: each with a role (viewer, operator, admin), optionally limited
    /// to some drills.
    ///
    /// The tokens file ([daemon] tokens_file of --config, or --file) keeps only each
    /// token's SHA-256; the daemon reads it again whenever it changes, so tokens are
    /// created, rotated and revoked without a restart.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit trail: who started, cancelled, accepted, reloaded, pruned, logged in
    /// (or failed to), when, from where, and how it ended.
    Audit {
        /// Only entries at or after this time (RFC 3339, or a span ago like "7d").
        #[arg(long)]
        since: Option<String>,
        /// Only entries at or before this time (RFC 3339, or a span ago like "1h").
        #[arg(long)]
        until: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Print JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Write a new age identity and print its recipient for drill files.
    ///
    /// The identity is written with mode 0600; the recipient (age1…) goes in the drill's
    /// [encryption] recipients, the identity's path in its identity = { file = … }.
    Keygen {
        /// Where to write the identity; refuses to overwrite.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
        /// Print JSON (the identity's file and its recipient) instead of the recipient
        /// alone.
        #[arg(long)]
        json: bool,
    },
    /// Remove leftover sandboxes (containers and volumes) whose run is over.
    ///
    /// Sandboxes are labelled with their run and when they expire; those past it, and
    /// never those kept with `run --keep`, are removed. `--run RUN_ID` removes the sandbox
    /// of that run, kept or not, with its volumes: how a kept sandbox goes.
    Reap {
        /// Remove every firedrill sandbox not kept with --keep, expired or not.
        #[arg(long, conflicts_with = "run")]
        all: bool,
        /// Remove the sandbox of this run (kept with `run --keep` or not), its container and
        /// its volumes.
        #[arg(long, value_name = "RUN_ID")]
        #[arg(add = clap_complete::ArgValueCandidates::new(complete::run_ids))]
        run: Option<String>,
        /// Print JSON (the runs whose sandboxes were removed) instead of lines.
        #[arg(long)]
        json: bool,
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
    /// The script asks firedrill (on PATH) for candidates as you type: commands and
    /// options, drill names from the drills directory and run ids from the catalog (those
    /// of FIREDRILL_CONFIG, else ./drills and the default catalog). For example: `firedrill completions bash > /etc/bash_completion.d/firedrill`, or
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

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    // `COMPLETE=SHELL firedrill -- WORDS…`: the shell asks for candidates (see complete.rs).
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();
    let cli = Cli::parse();
    output::init_logs(cli.log_format);
    // These need no config, catalog or runtime, and work with a broken --config.
    match &cli.command {
        Command::Schema { main } => return ExitCode::from(tools::schema(*main)),
        Command::Completions { shell } => return ExitCode::from(tools::completions(*shell)),
        Command::Man => return ExitCode::from(tools::man()),
        _ => {}
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
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
                errln!("{p}");
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
    let _ = CATALOG_CONFIG.set(config.clone());
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
            let runner = match run::runner(&config, &catalog_path, report_dir.as_deref()).await {
                Ok(r) => r,
                Err(code) => return code,
            };
            let opts = RunOptions {
                keep,
                artifact,
                started_by: Some(firedrill::access::Actor::cli()),
                ..Default::default()
            };
            let dir = drills.resolve(&config);
            run::run(&runner, &drill, &dir, json, quiet, random, opts).await
        }
        Command::Notify { command } => notify::notify(&catalog_path, &config, command).await,
        Command::Daemon { insecure_no_auth } => {
            if cli.config.is_none() {
                errln!("error: the daemon needs --config FILE (catalog, drills_dir, [daemon], [notify])\n  hint: see deploy/firedrill.toml");
                return 2;
            }
            let mut config = config;
            config.catalog = Some(catalog_path.clone());
            config.daemon.insecure_no_auth = insecure_no_auth;
            daemon::run(config).await
        }
        Command::Doctor {
            drill,
            drills,
            json,
        } => checks::doctor(&config, drill.as_deref(), &drills.resolve(&config), json).await,
        Command::List { drills, json } => {
            catalog::list(&catalog_path, &drills.resolve(&config), json).await
        }
        Command::Artifacts {
            drill,
            drills,
            json,
        } => {
            let dir = drills.resolve(&config);
            catalog::artifacts(&catalog_path, drill.as_deref(), &dir, json).await
        }
        Command::Snapshots {
            drill,
            drills,
            json,
        } => {
            let dir = drills.resolve(&config);
            catalog::snapshots(&catalog_path, &drill, &dir, json).await
        }
        Command::History {
            drill,
            drills,
            limit,
            json,
        } => {
            let dir = drills.resolve(&config);
            catalog::history(&catalog_path, drill.as_deref(), &dir, limit, json).await
        }
        Command::Prune {
            drill,
            drills,
            dry_run,
            json,
        } => {
            catalog::prune(
                &catalog_path,
                drill.as_deref(),
                &drills.resolve(&config),
                dry_run,
                json,
            )
            .await
        }
        Command::Catalog {
            command: CatalogCommand::Rebuild { drills, json },
        } => catalog::rebuild(&catalog_path, &drills.resolve(&config), json).await,
        Command::Catalog {
            command: CatalogCommand::Migrate { from, json },
        } => catalog::migrate(&from, &catalog_path, json).await,
        Command::Validate {
            files,
            drills,
            json,
        } => checks::validate(files, &drills.resolve(&config), json),
        Command::Keygen { output, json } => tools::keygen(&output, json),
        Command::Accept { run, drills, json } => {
            catalog::accept(&catalog_path, &run, &drills.resolve(&config), json).await
        }
        Command::Evidence {
            command: EvidenceCommand::Keygen { output, json },
        } => evidence::keygen(&output, json),
        Command::Evidence {
            command:
                EvidenceCommand::Export {
                    since,
                    until,
                    output,
                    drills,
                    json,
                },
        } => {
            evidence::export(
                &config,
                &catalog_path,
                &since,
                until.as_deref(),
                &output,
                &drills.resolve(&config),
                json,
            )
            .await
        }
        Command::Token { command } => match command {
            TokenCommand::Create {
                name,
                role,
                drills,
                file,
                rotate,
                json,
            } => {
                access::create(
                    &config,
                    &catalog_path,
                    file.as_deref(),
                    &name,
                    role,
                    drills,
                    rotate,
                    json,
                )
                .await
            }
            TokenCommand::List { file, json } => access::list(&config, file.as_deref(), json),
            TokenCommand::Revoke { name, file } => {
                access::revoke(&config, &catalog_path, file.as_deref(), &name).await
            }
        },
        Command::Audit {
            since,
            until,
            limit,
            json,
        } => {
            access::audit(
                &catalog_path,
                since.as_deref(),
                until.as_deref(),
                limit,
                json,
            )
            .await
        }
        Command::Evidence {
            command:
                EvidenceCommand::Verify {
                    report,
                    public_key,
                    drills,
                    signature_only,
                    json,
                },
        } => {
            evidence::verify(
                &config,
                &report,
                public_key.as_deref(),
                &drills.resolve(&config),
                signature_only,
                json,
            )
            .await
        }
        Command::Reap {
            all,
            run,
            json,
            docker_host,
        } => tools::reap(all, run.as_deref(), json, docker_host.as_deref()).await,
        Command::Schema { .. } | Command::Completions { .. } | Command::Man => {
            unreachable!("handled before the runtime starts")
        }
    }
}

/// A drill as named on the command line: the path of its file, or its name in `dir`.
fn drill_path(drill: &str, dir: &Path) -> PathBuf {
    let p = PathBuf::from(drill);
    if p.exists() || drill.contains('/') || drill.ends_with(".toml") {
        p
    } else {
        dir.join(format!("{drill}.toml"))
    }
}

/// The drill a command names (see [`drill_path`]), or its problems printed (with the
/// drills there are, when no file is there) and exit code 2.
fn load_named(path: &Path, dir: &Path) -> Result<firedrill::Drill, u8> {
    firedrill::load_drill(path).map_err(|p| {
        errln!("{p}");
        if !path.exists() {
            errln!("  hint: {}", known_drills_hint(dir));
        }
        2
    })
}

/// The drills of `dir` by name (a file that does not validate by its file name), for
/// messages about a drill name that names none.
fn known_drills(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = firedrill::config::drill_files(dir)
        .unwrap_or_default()
        .iter()
        .map(|f| match firedrill::load_drill(f) {
            Ok(d) => d.name,
            Err(_) => f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The hint after an unknown drill name: the drills there are.
fn known_drills_hint(dir: &Path) -> String {
    match known_drills(dir).as_slice() {
        [] => format!(
            "there are no drill files in {}; pass --drills-dir, or set drills_dir in --config",
            dir.display()
        ),
        names => format!("known drills in {}: {}", dir.display(), names.join(", ")),
    }
}

/// The catalog when neither --catalog nor the main config names one: the system's for
/// root, else the user's state directory.
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

/// The main config's catalog settings (its password and CA), for [`open_catalog`].
static CATALOG_CONFIG: std::sync::OnceLock<MainConfig> = std::sync::OnceLock::new();

/// The catalog at `path`: an SQLite file, or a PostgreSQL URL with the main config's
/// password.
async fn try_open_catalog(
    path: &Path,
) -> firedrill::error::Result<std::sync::Arc<dyn firedrill::catalog::Catalog>> {
    let config = CATALOG_CONFIG.get_or_init(MainConfig::default);
    firedrill::catalog::open(path, config).await
}

/// [`try_open_catalog`], or the exit code after saying why it cannot be opened.
async fn open_catalog(path: &Path) -> Result<std::sync::Arc<dyn firedrill::catalog::Catalog>, u8> {
    try_open_catalog(path).await.map_err(|e| {
        errln!("error: {e}");
        2
    })
}
