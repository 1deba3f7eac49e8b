//! The `firedrill` command: a thin shell over the library. Each subcommand (in [`cli`])
//! calls one engine function and maps its result to output and an exit code.
//!
//! Exit codes: 0 the drill passed (or the command succeeded), 1 the backup failed
//! verification, 2 the drill could not run (bad config, Docker unreachable, …).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
