//! The commands that need no drill, main config or catalog: writing an age identity
//! (`keygen`), removing leftover sandboxes (`reap`), and generated text: the JSON Schema
//! of the config files, shell completions and the man page.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::output::emit;
use super::{key_file, Cli};

/// Writes a new age identity and prints its recipient.
pub(super) fn keygen(output: &Path, json: bool) -> u8 {
    let (text, recipient) = firedrill::age_keys::generate_identity();
    if let Err(code) = key_file::create(
        output,
        &text,
        "an identity (artifacts encrypted to it would be lost)",
    ) {
        return code;
    }
    if json {
        let written = serde_json::json!({ "identity": output, "recipient": recipient });
        outln!(
            "{}",
            serde_json::to_string_pretty(&written).unwrap_or_default()
        );
        return 0;
    }
    errln!(
        "wrote the identity to {} (keep it secret; the sandbox gets it at restore time)",
        output.display()
    );
    errln!("its recipient, for the drill's [encryption] recipients = [\"…\"]:");
    outln!("{recipient}");
    0
}

/// Removes the sandboxes of runs that are over (with `all`, of every run not kept; with
/// `run`, of that run, kept or not).
pub(super) async fn reap(
    all: bool,
    run: Option<&str>,
    json: bool,
    docker_host: Option<&str>,
) -> u8 {
    use firedrill::sandbox::SandboxBackend;
    let backend = match firedrill::sandbox::DockerBackend::connect(docker_host) {
        Ok(b) => b,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    if let Some(run) = run {
        return match backend.reap_run(run).await {
            Ok(removed) if json => {
                let out = serde_json::json!({ "run": run, "removed": removed });
                outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                0
            }
            Ok(removed) if removed.is_empty() => {
                outln!("no sandbox of run {run}");
                0
            }
            Ok(removed) => {
                outln!("removed the sandbox of run {run}: {}", removed.join(", "));
                0
            }
            Err(e) => {
                errln!("error: {e}");
                2
            }
        };
    }
    match backend.reap(jiff::Timestamp::now(), all).await {
        Ok(runs) if json => {
            let out = serde_json::json!({ "removed_runs": runs });
            outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            0
        }
        Ok(runs) => {
            for r in &runs {
                outln!("removed sandbox of run {r}");
            }
            if runs.is_empty() {
                outln!("no leftover sandboxes");
            }
            0
        }
        Err(e) => {
            errln!("error: {e}");
            2
        }
    }
}

/// The JSON Schema of drill files (with `main`, of the main config file).
pub(super) fn schema(main: bool) -> u8 {
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

/// The man page: clap's sections, then exit status and environment.
pub(super) fn man() -> u8 {
    let man = clap_mangen::Man::new(Cli::command());
    let mut page = Vec::new();
    let rendered = man
        .render_title(&mut page)
        .and_then(|()| man.render_name_section(&mut page))
        .and_then(|()| man.render_synopsis_section(&mut page))
        .and_then(|()| man.render_description_section(&mut page))
        .and_then(|()| man.render_options_section(&mut page))
        .and_then(|()| page.write_all(subcommands_section(&Cli::command()).as_bytes()))
        .and_then(|()| page.write_all(MAN_SECTIONS.as_bytes()))
        .and_then(|()| man.render_version_section(&mut page));
    match rendered {
        Ok(()) => emit(&page, "the man page"),
        Err(e) => {
            errln!("error: cannot render the man page: {e}");
            2
        }
    }
}

/// The commands, each with what it does and where its options are told: one page for
/// all of them (`firedrill help COMMAND`), rather than clap_mangen's list of
/// `firedrill-COMMAND(1)` pages that are not generated.
fn subcommands_section(cli: &clap::Command) -> String {
    // roff: a backslash is \e, and a line starting with . or ' would be a request.
    let esc = |t: &str| {
        let t = t.replace('\\', "\\e").replace('-', "\\-");
        if t.starts_with('.') || t.starts_with('\'') {
            format!("\\&{t}")
        } else {
            t
        }
    };
    let mut out = String::from(".SH COMMANDS\n");
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            esc(sub.get_name()),
            esc(&about)
        ));
    }
    out.push_str(".PP\nEvery command's options: \\fBfiredrill help\\fR \\fICOMMAND\\fR (or \\fBfiredrill\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR).\n");
    out
}

/// The completion script of `shell`: it asks firedrill for the candidates as the user
/// types, drill names and run ids included ([`super::complete`]).
pub(super) fn completions(shell: clap_complete::Shell) -> u8 {
    match super::complete::registration(shell) {
        Ok(script) => emit(&script, "the completion script"),
        Err(e) => {
            errln!("error: {e}");
            2
        }
    }
}
