//! Database engines: how to dump a source on the host ([`DumpSource`]) and how to restore
//! and inspect a dump inside a sandbox ([`Engine`]).
//!
//! The dump side is a trait because it talks to the world (a server, a dump tool). The
//! sandbox side is a closed enum of command lines run through
//! [`crate::sandbox::SandboxBackend::exec`]: the sandbox has no network, so everything
//! happens inside it with the engine's own client tools.

pub mod kind;
pub mod mysql;
pub mod mysqldump_scan;
pub mod postgres;
pub mod restore;

pub use kind::Engine;

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::sandbox::{Sandbox, SandboxBackend};

/// What a started dump says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct DumpMeta {
    pub engine: Engine,
    pub server_version: String,
    /// The release series that picks the sandbox image: `15`, `10.11`, `8.0`.
    pub server_major: String,
    pub databases: Vec<String>,
    pub tool: String,
    pub tool_version: String,
    pub format: String,
}

/// Bytes a dump tool may write ahead of firedrill's reading (Linux's default pipe holds
/// 64 KiB): fewer wake-ups for both sides at the same bounded memory.
const DUMP_PIPE_BYTES: usize = 1 << 20;

/// The dump tool's stdout as the pipeline reads it: a widened pipe (best effort: where the
/// system refuses, a lower `/proc/sys/fs/pipe-max-size`, the default pipe works, only
/// slower), in blocking mode. The pipeline reads it on its own thread, where a blocking
/// `read` is one system call; through the async reactor it was an epoll wake-up and a
/// hand-off between threads for every few KiB the tool wrote (a sixth of firedrill's CPU
/// in a MariaDB drill, on a machine where the dump competes for it).
pub fn dump_output(stdout: tokio::process::ChildStdout) -> Result<std::fs::File> {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::pipe::fcntl_setpipe_size(&stdout, DUMP_PIPE_BYTES) {
        tracing::debug!("could not widen the dump pipe: {e}");
    }
    let fd = stdout
        .into_owned_fd()
        .map_err(|e| Error::internal(format!("cannot take the dump tool's output: {e}")))?;
    Ok(std::fs::File::from(fd))
}

/// A dump in progress: its fingerprint (taken in the dump's snapshot, or completed from
/// the stream by its inspector), its byte stream, and a future that resolves when the dump
/// tool has exited, with an error if it failed.
pub struct StartedDump {
    pub meta: DumpMeta,
    pub fingerprint: Fingerprint,
    /// The tool's stdout, blocking: read on the pipeline's thread ([`dump_output`]).
    pub output: Box<dyn std::io::Read + Send>,
    pub completion: BoxFuture<'static, Result<()>>,
    /// Sees every plain byte of the dump as it passes.
    pub inspector: Box<dyn DumpInspector>,
}

/// Watches a dump stream go by (on the pipeline's blocking thread).
pub trait DumpInspector: Send + 'static {
    fn update(&mut self, chunk: &[u8]);
    /// Called at the end of the stream; an error fails the dump stage.
    fn finish(self: Box<Self>, fingerprint: &Fingerprint) -> Result<Inspection>;
}

/// What an inspector concluded.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    /// The fingerprint of what is in the dump, when the stream decides it.
    pub fingerprint: Option<Fingerprint>,
    /// Facts for the report and the manifest.
    pub notes: Vec<String>,
}

/// An inspector for formats whose fingerprint the snapshot already gives exactly.
pub struct NoInspection;

impl DumpInspector for NoInspection {
    fn update(&mut self, _chunk: &[u8]) {}
    fn finish(self: Box<Self>, _fingerprint: &Fingerprint) -> Result<Inspection> {
        Ok(Inspection::default())
    }
}

/// A database that can be dumped.
#[async_trait]
pub trait DumpSource: Send + Sync + 'static {
    /// Connects, checks versions, takes the fingerprint and starts the dump tool. The
    /// returned stream must be read to the end for the tool to finish.
    /// Checks, without changing anything, that the source can be dumped: reachable, its
    /// version, the dump tool's, and the dump user's rights.
    async fn doctor(&self) -> Vec<crate::finding::Finding> {
        Vec::new()
    }

    /// The server's engine and release series (`15`, `10.11`): what picks the sandbox
    /// image.
    async fn server_series(&self) -> Result<(Engine, String)> {
        Err(Error::config("this source has no server to ask"))
    }

    /// `checksums` says which tables get a content checksum in the fingerprint.
    async fn start(&self, checksums: &crate::fingerprint::ChecksumPlan) -> Result<StartedDump>;
}

/// Where the sandbox keeps the staged (still encrypted) artifact.
pub const STAGED_ARTIFACT: &str = "/var/lib/firedrill/staging/artifact.age";
/// Where the sandbox keeps the identity: a tmpfs, never a disk.
pub const SANDBOX_IDENTITY: &str = "/run/firedrill/identity";

impl Engine {
    /// The default sandbox image for a source's release series.
    pub fn default_image(self, major: &str) -> String {
        format!("firedrill-sandbox-{}:{major}", self.as_str())
    }

    /// How to get the default image, for error messages.
    pub fn build_hint(self, major: &str) -> String {
        match self {
            Engine::Postgres | Engine::Mariadb => format!(
                "build it offline with `containers/build-offline.sh {}` (Debian ships {} {}), or with a registry from containers/{}/Dockerfile: docker build -t {} …",
                self.as_str(),
                self.as_str(),
                if self == Engine::Postgres { "15" } else { "10.11" },
                self.as_str(),
                self.default_image(major)
            ),
            Engine::Mysql => format!(
                "build it with a registry: docker build --build-arg MYSQL_VERSION={major} -t {} -f containers/mysql/Dockerfile containers",
                self.default_image(major)
            ),
        }
    }

    /// Command that serves the database in the sandbox (the container command).
    pub fn serve_cmd(self) -> Vec<String> {
        vec!["serve".into(), self.as_str().into()]
    }

    /// Exits 0 once the server in the sandbox accepts connections.
    pub fn ready_cmd(self) -> Vec<String> {
        vec![
            "firedrill-sandbox".into(),
            "ready".into(),
            self.as_str().into(),
        ]
    }

    /// Prints the server's version as the sandbox script reports it.
    pub fn version_cmd(self) -> Vec<String> {
        vec![
            "firedrill-sandbox".into(),
            "version".into(),
            self.as_str().into(),
        ]
    }

    /// What `version_cmd` prints for a server of this engine and series.
    pub fn expected_version(self, major: &str) -> String {
        match self {
            Engine::Postgres => major.to_string(),
            Engine::Mariadb | Engine::Mysql => format!("{} {major}", self.as_str()),
        }
    }

    /// Restores the staged artifact inside the sandbox. MySQL/MariaDB: decrypt, decompress
    /// and feed the client, stopped past `plain_bytes` (the manifest's exact size of the
    /// dump: more is a doctored artifact or a decompression bomb). PostgreSQL: the dump was
    /// decrypted (and bounded) while staged ([`Engine::stage_cmd`]); `pg_restore -j jobs`.
    pub fn restore_cmd(self, databases: &[String], plain_bytes: u64, jobs: u32) -> Vec<String> {
        match self {
            Engine::Postgres => postgres::restore_cmd(&databases[0], jobs),
            Engine::Mariadb | Engine::Mysql => mysql::restore_cmd(self, plain_bytes),
        }
    }

    /// How a firedrill artifact gets into the sandbox: `None` stages it still encrypted
    /// at [`STAGED_ARTIFACT`] (the restore streams from there); PostgreSQL decrypts it into
    /// a file as it arrives, for a parallel `pg_restore`. Either way the command reads
    /// exactly `size` bytes from stdin and prints how many it received.
    pub fn stage_cmd(self, size: u64, plain_bytes: u64) -> Option<Vec<String>> {
        match self {
            Engine::Postgres => Some(postgres::stage_cmd(size, plain_bytes)),
            Engine::Mariadb | Engine::Mysql => None,
        }
    }

    /// Restores a file another tool made (verify-only drills): detects age encryption,
    /// zstd or gzip compression and, for PostgreSQL, custom or plain format, inside the
    /// sandbox. The decompressed stream is stopped past `max_plain_bytes` (see
    /// [`crate::config::external_plain_limit`]); plain SQL goes through [`PLAIN_SQL_SCREEN`] and psql's
    /// restricted mode, so that the file cannot run psql meta-commands.
    pub fn restore_auto_cmd(self, database: &str, max_plain_bytes: u64) -> Vec<String> {
        let bound =
            r#"firedrill_bound "$2" "the bound for files of other tools, source.max_expansion""#;
        let restore = match self {
            Engine::Postgres => format!(
                r#"createdb -h /run/postgresql -U postgres -T template0 -E UTF8 -- "$1" 2>/dev/null || true
kind=$( (dec || true) | $unz 2>/dev/null | head -c 5 || true)
if [ "$kind" = PGDMP ]; then
  echo "format: pg_dump custom, $how" >&2
  dec | $unz | {bound} | pg_restore -h /run/postgresql -U postgres --no-owner --no-privileges --exit-on-error -d "$1"
else
  echo "format: plain SQL, $how" >&2
  command -v perl >/dev/null || {{ echo "firedrill: the sandbox image has no perl, which screens plain SQL for psql meta-commands" >&2; exit 96; }}
  # psql's restricted mode (PostgreSQL 13.22, 14.19, 15.14, 16.10, 17.6 and later) refuses
  # every meta-command but `\unrestrict KEY`; the key is made here, the file cannot know it.
  key=""; restrict=()
  # Not `| grep -q`: under pipefail, grep leaving early fails the test by SIGPIPE at random.
  if [[ "$(psql --help=commands 2>/dev/null || true)" == *'\restrict'* ]]; then
    key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'); restrict=(-c "\\restrict $key")
  else
    echo "note: this psql has no \\restrict: only whole-line meta-commands are refused" >&2
  fi
  dec | $unz | {bound} | FIREDRILL_RESTRICT_KEY="$key" perl -e "$FIREDRILL_SCREEN" \
    | psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -U postgres -d "$1" "${{restrict[@]}}" -f - >/dev/null
fi"#
            ),
            Engine::Mariadb | Engine::Mysql => format!(
                r#"firedrill-sandbox client {e} -e "CREATE DATABASE IF NOT EXISTS \`$1\`"
echo "format: SQL, $how" >&2
{MYSQL_CLIENT_SANDBOX}
dec | $unz | {bound} | sed -E -e '/^INSERT INTO /!s/DEFINER=`([^`]|``)*`@`([^`]|``)*`//g' -e 's/^(SET @@(GLOBAL|SESSION)\.GTID_PURGED)/-- \1/' | firedrill-sandbox client {e} $client_sandbox "$1""#,
                e = self.as_str()
            ),
        };
        let script = format!(
            r#"set -euo pipefail
{BOUND_FN}
FIREDRILL_SCREEN='{PLAIN_SQL_SCREEN}'
f={STAGED_ARTIFACT}
if head -c 64 "$f" | grep -aq '^age-encryption.org/'; then
  dec() {{ age -d -i {SANDBOX_IDENTITY} "$f"; }}; how="age-encrypted"
else
  dec() {{ cat "$f"; }}; how="not encrypted"
fi
magic=$( (dec || true) | head -c 4 | od -An -tx1 | tr -d ' \n')
case "$magic" in
  28b52ffd) unz="zstd -d -q"; how="$how, zstd";;
  1f8b*) unz="gzip -dc"; how="$how, gzip";;
  *) unz="cat"; how="$how, uncompressed";;
esac
{restore}
rm -f "$f""#
        );
        vec![
            "bash".into(),
            "-c".into(),
            script,
            "firedrill-restore".into(),
            database.into(),
            max_plain_bytes.to_string(),
        ]
    }

    /// The restored database's fingerprint, read inside the sandbox.
    /// The restored database's fingerprint, read inside the sandbox, with a content
    /// checksum of the tables named (`schema.table`) in `checksum`.
    pub async fn sandbox_fingerprint(
        self,
        backend: &dyn SandboxBackend,
        sandbox: &Sandbox,
        databases: &[String],
        checksum: &[String],
    ) -> Result<Fingerprint> {
        match self {
            Engine::Postgres => {
                let psql = |sql: &str| postgres::psql_cmd(&databases[0], sql);
                let read = |out: crate::sandbox::ExecOutput, what: &str| {
                    if out.exit_code != 0 {
                        Err(Error::verification(format!(
                            "cannot read the restored database's {what}"
                        ))
                        .with_stderr(tail(&out.stderr, 20)))
                    } else {
                        Ok(out.stdout)
                    }
                };
                let out = backend
                    .exec(sandbox, &psql(postgres::FINGERPRINT_SQL), None)
                    .await?;
                let mut fp = postgres::parse_fingerprint(&read(out, "tables")?)?;
                let out = backend
                    .exec(sandbox, &psql(postgres::OBJECTS_SQL), None)
                    .await?;
                fp.objects = postgres::parse_objects(&read(out, "schema objects")?)?;
                let tables: Vec<(&str, &str)> = fp
                    .tables
                    .iter()
                    .filter(|t| checksum.contains(&t.qualified()))
                    .map(|t| (t.schema.as_str(), t.name.as_str()))
                    .collect();
                if !tables.is_empty() {
                    let sql = format!(
                        "{}; {}",
                        postgres::CHECKSUM_SETTINGS,
                        postgres::checksum_sql(&tables)
                    );
                    let out = backend.exec(sandbox, &psql(&sql), None).await?;
                    let json = read(out, "content checksums")?;
                    postgres::apply_checksums(&mut fp, &json)?;
                }
                Ok(fp)
            }
            Engine::Mariadb | Engine::Mysql => {
                mysql::sandbox_fingerprint(self, backend, sandbox, databases, checksum).await
            }
        }
    }

    /// Runs one query in the sandbox; `Ok(value)` with `None` for SQL NULL, or the reason
    /// the query gave no single value.
    pub async fn sandbox_scalar(
        self,
        backend: &dyn SandboxBackend,
        sandbox: &Sandbox,
        databases: &[String],
        sql: &str,
    ) -> Result<std::result::Result<Option<String>, String>> {
        let (cmd, null) = match self {
            Engine::Postgres => (
                postgres::psql_cmd(&databases[0], sql),
                postgres::NULL_MARKER,
            ),
            Engine::Mariadb | Engine::Mysql => {
                (mysql::client_cmd(self, Some(&databases[0]), sql), "NULL")
            }
        };
        let out = backend.exec(sandbox, &cmd, None).await?;
        if out.exit_code != 0 {
            return Ok(Err(format!("query failed: {}", tail(out.stderr.trim(), 5))));
        }
        Ok(scalar(&out.stdout, null))
    }

    /// How a person reaches a kept sandbox's database.
    pub fn connect_cmd(self, container: &str, database: &str) -> String {
        format!(
            "docker exec -it {container} firedrill-sandbox client {} {}",
            self.as_str(),
            match self {
                Engine::Postgres => format!("-d {database}"),
                Engine::Mariadb | Engine::Mysql => database.to_string(),
            }
        )
    }

    /// Turns a failed restore's stderr into an error that says what broke.
    pub fn restore_error(self, stderr: &str) -> Error {
        // Firedrill's own guards first: when they stop a stream, the tools around them
        // complain of broken pipes too.
        if let Some(line) = marker_line(stderr, BOUND_MARKER) {
            let external = line.contains("source.max_expansion");
            let limit = line
                .split_whitespace()
                .find_map(|w| w.parse::<u64>().ok())
                .map(crate::human::human_bytes)
                .unwrap_or_else(|| "its bound".into());
            return if external {
                Error::backup(format!("the file decompresses to more than {limit}, the bound for files of other tools; the restore was stopped there (a decompression bomb, or a file far more compressible than dumps are)"))
                    .with_hint("if the file really is that compressible, raise source.max_expansion in the drill file; otherwise find out who wrote it")
            } else {
                Error::backup(format!("the artifact decompresses to more than its manifest's plain_bytes ({limit}), which firedrill records exactly; the restore was stopped there"))
                    .with_hint("the artifact and its manifest were replaced after upload (the hash matches a doctored manifest); this backup cannot be trusted, drill an earlier one")
            }
            .with_stderr(tail(stderr, 5));
        }
        if let Some(line) = marker_line(stderr, SCREEN_MARKER) {
            let rest = line.trim_start_matches(SCREEN_MARKER).trim_start();
            let what = match rest.split_once(": ") {
                Some((at, command)) => format!("{at} (`{command}`)"),
                None => rest.to_string(),
            };
            return Error::backup(format!(
                "the dump runs a psql meta-command {what}; firedrill refused to restore it"
            ))
            .with_hint(SCREEN_HINT);
        }
        if let Some(line) = marker_line(stderr, "Not allowed in the sandbox mode") {
            let at = stderr
                .lines()
                .find(|l| l.contains(line))
                .and_then(|l| l.split("at line ").nth(1))
                .and_then(|r| r.split(':').next())
                .map(|n| format!(" at line {n}"))
                .unwrap_or_default();
            return Error::backup(format!(
                "the dump runs a client command (`\\!`, system, source, tee){at}; the client's sandbox mode refused it and the restore stopped"
            ))
            .with_hint("mysqldump and mariadb-dump write no client commands; this file was altered or made by something else: do not restore it anywhere, and find out who wrote it")
            .with_stderr(tail(stderr, 5));
        }
        if let Some(line) = stderr
            .lines()
            .find(|l| l.contains("backslash commands are restricted"))
        {
            let at = line
                .split("psql:<stdin>:")
                .nth(1)
                .and_then(|r| r.split(':').next())
                .map(|n| format!(" at line {n}"))
                .unwrap_or_default();
            return Error::backup(format!(
                "the dump runs a psql meta-command{at}; psql's restricted mode refused it and the restore stopped"
            ))
            .with_hint(SCREEN_HINT)
            .with_stderr(tail(stderr, 5));
        }
        if stderr.contains("no identity matched any of the recipients") {
            return Error::backup("this identity does not match any recipient of the artifact")
                .with_hint("encryption.identity must be the private key of one of the recipients listed in the artifact's manifest; use the matching identity file");
        }
        if stderr.contains("age: error") {
            return Error::backup("the artifact does not decrypt: its authentication failed (it was altered or truncated after encryption)")
                .with_hint("this backup cannot be trusted; drill an earlier artifact and find out what damaged this one")
                .with_stderr(tail(stderr, 10));
        }
        if stderr.contains("zstd:") {
            return Error::backup("the decrypted artifact does not decompress")
                .with_hint(
                    "the artifact was written by a broken pipeline; drill an earlier artifact",
                )
                .with_stderr(tail(stderr, 10));
        }
        match self {
            Engine::Postgres => postgres::restore_error(stderr),
            Engine::Mariadb | Engine::Mysql => mysql::restore_error(stderr),
        }
    }
}

/// What the sandbox's stream bound prints when it stops a stream.
const BOUND_MARKER: &str = "firedrill: the decompressed dump exceeds";
/// What the plain SQL screen prints when it refuses a line.
const SCREEN_MARKER: &str = "firedrill: refused psql meta-command";
const SCREEN_HINT: &str = "pg_dump's plain output only uses \\connect, \\restrict/\\unrestrict and \\. after COPY data; anything else (\\! runs a shell command) means the file was altered or made by something else: do not restore it anywhere, and find out who wrote it";

/// The first line of `stderr` that contains `marker`, from the marker on.
fn marker_line<'a>(stderr: &'a str, marker: &str) -> Option<&'a str> {
    stderr
        .lines()
        .find_map(|l| l.find(marker).map(|i| l[i..].trim_end()))
}

/// A shell function that bounds a decompressed stream: `firedrill_bound LIMIT WHY` passes
/// at most LIMIT bytes through (GNU `head -c` reads no further than it writes), then
/// reads one byte more: if there is one, it says so on stderr and fails, which stops
/// everything upstream (SIGPIPE) and, through `pipefail`, the restore. Streaming, constant
/// memory, nothing written to disk.
pub const BOUND_FN: &str = r#"firedrill_bound() {
  head -c "$1"
  if [ "$(head -c 1 | wc -c)" != 0 ]; then
    echo "firedrill: the decompressed dump exceeds $1 bytes ($2); stopped there" >&2
    exit 97
  fi
}"#;

/// A perl filter between a plain SQL file and psql. psql runs the backslash
/// meta-commands in its input, and `\!` runs a shell command: a doctored plain dump would
/// run programs in the sandbox. Line by line, outside COPY data, the filter
/// - passes SQL through,
/// - blanks the file's own `\restrict KEY` / `\unrestrict KEY` lines (firedrill's own
///   restriction, with its own key, wraps the whole file),
/// - lets a plain `\connect DB` through, wrapped in firedrill's unrestrict/restrict,
/// - refuses any other line that starts with a backslash: it names the line on stderr and
///   exits before psql sees it.
///
/// Line numbers stay those of the file. A meta-command in the middle of a line, or one
/// behind quoting that this filter reads differently from psql, still meets psql's
/// restricted mode, which refuses it and names the line. No single quote in here: the
/// script holds it in a single-quoted shell variable.
pub const PLAIN_SQL_SCREEN: &str = r##"use strict; my $key = $ENV{FIREDRILL_RESTRICT_KEY} // ""; my $copy = 0;
while (my $l = <STDIN>) {
  if ($copy) { $copy = 0 if $l =~ /^\\\.\r?\n?\z/; print $l; next; }
  if ($l =~ /^\s*COPY\b.*\bFROM\s+stdin\b.*;\s*\z/is) { $copy = 1; print $l; next; }
  if ($l =~ /^\s*\\/) {
    if ($l =~ /^\\(?:un)?restrict [A-Za-z0-9]+\r?\n?\z/) { print "\n"; next; }
    if ($l =~ /^\\(?:connect|c)((?: -reuse-previous=on)? (?:"(?:[^"\\\n]|"")*"|[A-Za-z0-9_]+))\r?\n?\z/) {
      print $key eq "" ? "\\connect$1\n" : "\\unrestrict $key \\connect$1 \\restrict $key\n"; next;
    }
    my $t = substr($l, 0, 160); $t =~ s/\r?\n\z//; $t =~ s/[^\x20-\x7e]/?/g;
    print STDERR "firedrill: refused psql meta-command at line $.: $t\n"; exit 97;
  }
  print $l;
}"##;

/// Sets `$client_sandbox` to the MySQL/MariaDB client option that refuses the client's
/// own shell and file commands (`system`, `\!`, `source`, `tee`) where the client has it:
/// MariaDB's `--sandbox` (10.5.25, 10.6.18, 10.11.8, 11.x). A dump is data; it must not
/// run programs in the sandbox.
pub const MYSQL_CLIENT_SANDBOX: &str = r#"client_sandbox=""
if [[ "$(firedrill-sandbox client mariadb --help 2>/dev/null || true)" == *--sandbox* ]]; then client_sandbox=--sandbox; fi"#;

/// The single scalar of a query's output (one row, one column); `None` when it is `null`.
pub fn scalar(stdout: &str, null: &str) -> std::result::Result<Option<String>, String> {
    let lines: Vec<&str> = stdout.lines().collect();
    match lines.as_slice() {
        [] => Err("the query returned no rows; it must return exactly one value".into()),
        [one] if *one == null => Ok(None),
        [one] if one.contains('\u{1f}') || one.contains('\t') => {
            Err("the query returned more than one column; it must return exactly one value".into())
        }
        [one] => Ok(Some(one.to_string())),
        more => Err(format!(
            "the query returned {} rows; it must return exactly one value",
            more.len()
        )),
    }
}

/// Runs `TOOL --version` and returns what it printed; the error says what to install.
pub(crate) async fn tool_version_text(
    path: &std::path::Path,
    install_hint: &str,
) -> Result<String> {
    let out = tokio::process::Command::new(path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            Error::infra(format!("cannot run {}: {e}", path.display()))
                .with_hint(install_hint.to_string())
                .retryable(false)
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The error for a `--version` output that cannot be read.
pub(crate) fn unreadable_version(path: &std::path::Path, text: &str) -> Error {
    Error::infra(format!(
        "cannot read the version of {}: `{}`",
        path.display(),
        text.trim()
    ))
    .retryable(false)
}

/// Waits for a dump tool to exit. A non-zero exit fails the dump with the end of its
/// stderr (secrets removed). `hold` is dropped only after the tool exits (PostgreSQL's
/// snapshot transaction must outlive pg_dump).
pub(crate) fn dump_completion(
    mut child: tokio::process::Child,
    mut stderr: tokio::process::ChildStderr,
    secret: Option<crate::secret::Secret>,
    tool: String,
    hold: Box<dyn std::any::Any + Send>,
) -> BoxFuture<'static, Result<()>> {
    use futures::FutureExt;
    use tokio::io::AsyncReadExt;
    async move {
        let mut err = Vec::new();
        let (status, _) = tokio::join!(child.wait(), stderr.read_to_end(&mut err));
        drop(hold);
        let secrets: Vec<&crate::secret::Secret> = secret.iter().collect();
        let err = crate::secret::redact(&String::from_utf8_lossy(&err), &secrets);
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) if lost_the_server(&err) => Err(Error::infra(format!(
                "{tool} lost its connection to the source ({s})"
            ))
            .with_hint("the source restarted, failed over or dropped the connection mid-dump: that says nothing about the backups; nothing from this dump was kept, the next run takes a new one")
            .with_stderr(tail(&err, 20))),
            Ok(s) => Err(Error::backup(format!("{tool} failed ({s})"))
                .with_hint(format!(
                    "read {tool}'s output below; nothing from this dump was kept"
                ))
                .with_stderr(tail(&err, 20))
                .retryable(true)),
            Err(e) => Err(Error::infra(format!("waiting for {tool}: {e}"))),
        }
    }
    .boxed()
}

/// Whether a dump tool's stderr says the server went away under it (a restart, a failover,
/// a cut connection): the source's failure, not a broken backup.
fn lost_the_server(stderr: &str) -> bool {
    const SIGNS: [&str; 6] = [
        // libpq
        "server closed the connection unexpectedly",
        "terminating connection due to administrator command",
        "could not receive data from server",
        "no connection to the server",
        // MySQL and MariaDB clients: 2013 and 2006
        "Lost connection to",
        "server has gone away",
    ];
    SIGNS.iter().any(|s| stderr.contains(s))
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Row counts by `schema.table`, for merging dump-derived counts into a fingerprint.
pub type RowCounts = BTreeMap<String, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_gone_mid_dump_is_not_a_broken_backup() {
        assert!(lost_the_server("pg_dump: error: Dumping the contents of table \"big\" failed: PQgetCopyData() failed.\npg_dump: detail: Error message from server: server closed the connection unexpectedly"));
        assert!(lost_the_server(
            "mysqldump: Error 2013: Lost connection to server during query when dumping table `t`"
        ));
        assert!(!lost_the_server(
            "pg_dump: error: query failed: ERROR:  permission denied for table secrets"
        ));
    }

    #[test]
    fn scalars() {
        let n = postgres::NULL_MARKER;
        assert_eq!(scalar("42\n", n), Ok(Some("42".into())));
        assert_eq!(scalar(&format!("{n}\n"), n), Ok(None));
        assert_eq!(scalar("NULL\n", "NULL"), Ok(None));
        assert!(scalar("", n).unwrap_err().contains("no rows"));
        assert!(scalar("1\n2\n", n).unwrap_err().contains("2 rows"));
        assert!(scalar("1\u{1f}2\n", n)
            .unwrap_err()
            .contains("more than one column"));
        assert!(scalar("1\t2\n", "NULL")
            .unwrap_err()
            .contains("more than one column"));
    }

    #[test]
    fn the_restore_scripts_hold_together() {
        // The screen sits in a single-quoted shell variable.
        assert!(!PLAIN_SQL_SCREEN.contains('\''));
        let auto = Engine::Postgres.restore_auto_cmd("shop", 123);
        assert_eq!(auto[3..], ["firedrill-restore", "shop", "123"]);
        assert!(auto[2].contains(BOUND_FN) && auto[2].contains("perl -e"));
        let stage = Engine::Postgres.stage_cmd(1000, 77).unwrap();
        assert!(stage[2].contains("firedrill_bound \"$2\""), "{}", stage[2]);
        assert_eq!((stage[4].as_str(), stage[5].as_str()), ("1000", "77"));
        let own = Engine::Postgres.restore_cmd(&["shop".into()], 77, 4);
        assert!(own[2].contains("-j \"$2\""), "{}", own[2]);
        assert_eq!(own[5], "4");
        let my = Engine::Mariadb.restore_cmd(&["shop".into()], 78, 4);
        assert!(my[2].contains("firedrill_bound \"$1\"") && my[2].contains("$client_sandbox"));
        assert_eq!(my[4], "78");
    }

    #[test]
    fn versions_and_images() {
        assert_eq!(
            Engine::Mariadb.default_image("10.11"),
            "firedrill-sandbox-mariadb:10.11"
        );
        assert_eq!(Engine::Mariadb.expected_version("10.11"), "mariadb 10.11");
        assert_eq!(Engine::Postgres.expected_version("15"), "15");
        assert!(Engine::Mysql
            .build_hint("8.4")
            .contains("MYSQL_VERSION=8.4"));
    }
}
