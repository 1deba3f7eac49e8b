//! Commands run in a physical drill's sandbox, through its entrypoint's contract
//! (containers/README.md).

use crate::error::{Error, Result};
use crate::sandbox::{ExecOutput, Sandbox, SandboxBackend};

/// The backup tool's settings and scratch in the sandbox: a tmpfs the entrypoint of
/// `recover` makes, never on disk.
pub(crate) const TOOL_DIR: &str = "/run/firedrill/tool";

/// The end of a command's output, for errors.
pub(crate) fn said(out: &ExecOutput) -> String {
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    crate::engine::tail(&lines.join("\n"), 15)
}

/// Writes a backup tool's settings (`what`, for errors) to `TOOL_DIR/name`, readable by
/// its writer alone (and `owner`'s, when given), once the entrypoint has made the
/// directory.
pub(crate) async fn write_tool_file(
    backend: &dyn SandboxBackend,
    sb: &Sandbox,
    name: &str,
    text: Vec<u8>,
    owner: Option<&str>,
    what: &str,
) -> Result<()> {
    let chown = owner
        .map(|o| format!(" && chown {o} {TOOL_DIR}/{name}"))
        .unwrap_or_default();
    let write = sh(&format!(
        "i=0; while [ ! -d {TOOL_DIR} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         umask 077 && cat > {TOOL_DIR}/{name}{chown}"
    ));
    let out = backend
        .exec(sb, &write, Some(Box::pin(std::io::Cursor::new(text))))
        .await?;
    if out.exit_code != 0 {
        return Err(Error::infra(format!("cannot write {what} into the sandbox"))
            .with_stderr(said(&out))
            .with_hint("a custom sandbox.image must follow containers/README.md (firedrill-sandbox recover)"));
    }
    Ok(())
}

/// `sh -c SCRIPT` in the sandbox.
pub(crate) fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// `psql` in the sandbox, as its superuser over the socket: one query, unaligned rows.
pub(crate) fn psql(db: &str, sql: &str) -> Vec<String> {
    as_server(&[
        "psql",
        "-XAtq",
        "-h",
        "/run/postgresql",
        "-U",
        "postgres",
        "-d",
        db,
        "-c",
        sql,
    ])
}

/// A command run as the sandbox server's user, in the repository's group.
pub(crate) fn as_server(args: &[&str]) -> Vec<String> {
    ["firedrill-sandbox", "as-server", "postgres"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}
