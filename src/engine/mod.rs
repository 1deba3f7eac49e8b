//! Database engines: how to dump a source on the host ([`DumpSource`]) and how to restore
//! and inspect a dump inside a sandbox ([`Engine`]).
//!
//! The dump side is a trait because it talks to the world (a server, a dump tool). The
//! sandbox side is a closed enum of command lines run through
//! [`crate::sandbox::SandboxBackend::exec`]: the sandbox has no network, so everything
//! happens inside it with the engine's own client tools.

pub mod access;
pub mod kind;
pub mod mysql;
pub mod mysql_holdings;
pub mod mysqldump_scan;
pub mod pg_holdings;
pub mod postgres;
pub mod restore;

pub mod tool;

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
    /// Where the tool ran when not on this host: `in a container of firedrill-sandbox-postgres:17`.
    pub tool_place: Option<String>,
    pub format: String,
    /// What the dump does not hold although nothing failed, for the dump stage's notes.
    pub notes: Vec<String>,
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
    /// What the snapshot gave before the dump started (all of the fingerprint, or the part
    /// the inspector completes from the stream).
    pub fingerprint: Fingerprint,
    /// The fingerprint read in the dump's snapshot while the dump runs, when the engine
    /// reads it there (PostgreSQL): an independent reading of the source, on its own
    /// connection, that takes the place of `fingerprint`. Dropping it stops the reading.
    pub beside: Option<BoxFuture<'static, Result<Inspection>>>,
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
            Engine::Postgres | Engine::Mariadb => {
                let offline = match (self, major) {
                    (Engine::Postgres, "13" | "15" | "17") | (Engine::Mariadb, "10.5" | "10.11" | "11.8") => {
                        format!("`containers/build-offline.sh {}:{major}`", self.as_str())
                    }
                    _ => format!(
                        "`containers/build-offline.sh {}:VERSION` (Debian ships {})",
                        self.as_str(),
                        if self == Engine::Postgres { "13, 15 and 17" } else { "10.5, 10.11 and 11.8" }
                    ),
                };
                format!(
                    "build it offline with {offline}, or with a registry from containers/{}/Dockerfile: docker build -t {} …",
                    self.as_str(),
                    self.default_image(major)
                )
            }
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
    /// restricted mode, so that the file cannot run psql meta-commands. Each stage reports
    /// how it ended on its own ([`STAGE_REPORT`]).
    pub fn restore_auto_cmd(self, database: &str, max_plain_bytes: u64) -> Vec<String> {
        let bound = r#"firedrill_bound "$2" "the bound for files of other tools, source.max_expansion" 2>"$d/bound""#;
        let restore = match self {
            Engine::Postgres => format!(
                r#"createdb -h /run/postgresql -U postgres -T template0 -E UTF8 -- "$1" 2>/dev/null || true
kind=$( (dec 2>/dev/null || true) | $unz 2>/dev/null | head -c 5 || true)
if [ "$kind" = PGDMP ]; then
  echo "format: pg_dump custom, $how" >&2
  set +e
  dec 2>"$d/$opened" | $unz 2>"$d/decompress" | {bound} \
    | pg_restore -h /run/postgresql -U postgres --no-owner --no-privileges --exit-on-error -d "$1" 2>"$d/pg_restore"
  firedrill_record "${{PIPESTATUS[*]}}" "$opened" decompress bound pg_restore || exit 1
  set -e
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
  set +e
  dec 2>"$d/$opened" | $unz 2>"$d/decompress" | {bound} \
    | perl -e "$FIREDRILL_COMPLETE" 2>"$d/complete" \
    | FIREDRILL_RESTRICT_KEY="$key" perl -e "$FIREDRILL_SCREEN" 2>"$d/screen" \
    | psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -U postgres -d "$1" "${{restrict[@]}}" -f - >/dev/null 2>"$d/psql"
  firedrill_record "${{PIPESTATUS[*]}}" "$opened" decompress bound complete screen psql || exit 1
  set -e
fi"#
            ),
            Engine::Mariadb | Engine::Mysql => format!(
                r#"firedrill-sandbox client {e} -e "CREATE DATABASE IF NOT EXISTS \`$1\`"
echo "format: SQL, $how" >&2
{MYSQL_CLIENT_SANDBOX}
set +e
dec 2>"$d/$opened" | $unz 2>"$d/decompress" | {bound} \
  | perl -e "$FIREDRILL_COMPLETE" 2>"$d/complete" \
  | sed -E -e '/^INSERT INTO /!s/DEFINER=`([^`]|``)*`@`([^`]|``)*`//g' -e 's/^(SET @@(GLOBAL|SESSION)\.GTID_PURGED)/-- \1/' 2>"$d/rewrite" \
  | firedrill-sandbox client {e} $client_sandbox "$1" >/dev/null 2>"$d/client"
firedrill_record "${{PIPESTATUS[*]}}" "$opened" decompress bound complete rewrite client || exit 1
set -e"#,
                e = self.as_str()
            ),
        };
        let script = format!(
            r#"set -euo pipefail
d={STAGES_DIR}; rm -rf "$d"; mkdir -p "$d"
{STAGE_REPORT}
{BOUND_FN}
FIREDRILL_SCREEN='{PLAIN_SQL_SCREEN}'
FIREDRILL_COMPLETE='{COMPLETE_CHECK}'
f={STAGED_ARTIFACT}
if head -c 64 "$f" | grep -aq '^age-encryption.org/'; then
  dec() {{ age -d -i {SANDBOX_IDENTITY} "$f"; }}; how="age-encrypted"; opened=decrypt
else
  dec() {{ cat "$f"; }}; how="not encrypted"; opened=read
fi
magic=$( (dec 2>/dev/null || true) | head -c 4 | od -An -tx1 | tr -d ' \n')
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
        checksum: &[&crate::fingerprint::TableFingerprint],
    ) -> Result<Fingerprint> {
        match self {
            Engine::Postgres => {
                let psql = |sql: &str| postgres::psql_cmd(&databases[0], sql);
                let read = |out: crate::sandbox::ExecOutput, what: &str| {
                    let corrupt = out.stderr.lines().find(|l| {
                        l.contains("invalid page in block") || l.contains("could not read block")
                    });
                    if let (true, Some(line)) = (out.exit_code != 0, corrupt) {
                        Err(Error::verification(format!(
                            "the restored database is damaged: {}",
                            line.trim_start_matches("ERROR:").trim()
                        ))
                        .with_stderr(tail(&out.stderr, 20))
                        .with_hint("a page of the restored data fails its checks: the backup copied a damaged page, or the backup's storage damaged it; restore the table from an older good backup and check the source's storage"))
                    } else if out.exit_code != 0 {
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
                let out = backend
                    .exec(sandbox, &psql(pg_holdings::HOLDINGS_SQL), None)
                    .await?;
                let holdings = read(out, "schema holdings")?;
                let out = backend
                    .exec(sandbox, &psql(pg_holdings::LARGE_OBJECTS_SUM_SQL), None)
                    .await?;
                let lo_sum = read(out, "large objects").map_err(|e| e.message);
                fp.holdings = pg_holdings::parse_holdings(&holdings, lo_sum)?;
                // Each table summed as the source summed it.
                let mut tables: Vec<(&str, &str, postgres::RowHash)> = Vec::new();
                for t in &fp.tables {
                    let Some(want) = checksum
                        .iter()
                        .find(|w| w.schema == t.schema && w.name == t.name)
                    else {
                        continue;
                    };
                    let value = want.checksum.as_deref().unwrap_or_default();
                    let hash = postgres::RowHash::of(value).ok_or_else(|| {
                        Error::config(format!(
                            "the manifest's checksum of {} ({value}) names an algorithm this firedrill does not know",
                            t.qualified()
                        ))
                        .with_hint("the backup was made by a newer firedrill: drill it with that version or later")
                        .retryable(false)
                    })?;
                    tables.push((t.schema.as_str(), t.name.as_str(), hash));
                }
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
                let names: Vec<String> = checksum.iter().map(|t| t.qualified()).collect();
                mysql::sandbox_fingerprint(self, backend, sandbox, databases, &names).await
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

    /// Turns a failed restore's report into an error that says what broke. The restore
    /// scripts run each tool of the pipe with its stderr apart and report how each ended
    /// ([`STAGE_REPORT`]). The failure is the first stage, in the order the dump flows,
    /// that failed of itself: the stages upstream of it that died writing to it (SIGPIPE)
    /// are its consequences, and so are the complaints downstream of it about a stream
    /// that ended early. It is told in that stage's own terms: age's error line, the
    /// decompressor's, firedrill's bound or screen, the client's error line with its
    /// values elided. No stage's output is searched for another's words: the client's
    /// output can hold the dump's rows.
    pub fn restore_error(self, stderr: &str) -> Error {
        let Some(stages) = parse_stage_report(stderr) else {
            return self.unreported_restore_error(stderr);
        };
        let tools: Vec<&StageEnd> = stages
            .iter()
            .filter(|s| s.stage != RestoreStage::Script)
            .collect();
        if let Some(failed) = tools.iter().find(|s| s.exit != 0 && s.exit != SIGPIPE_EXIT) {
            return stage_error(failed, &stages);
        }
        // Every stage that failed died writing to the next one: that one stopped reading
        // the dump early, and said nothing.
        if let Some(i) = tools.iter().rposition(|s| s.exit == SIGPIPE_EXIT) {
            let reader = tools
                .get(i + 1)
                .map(|s| s.stage.tool())
                .unwrap_or("the restore");
            return Error::backup(format!(
                "the restore stopped before the end of the dump: {reader} exited without an error while the dump went on"
            ))
            .with_hint("dump tools write nothing that ends the session early (`quit`, `\\q`): the file was altered or made by something else; drill an earlier artifact and find out who wrote this one");
        }
        let script = stages.iter().find(|s| s.stage == RestoreStage::Script);
        Error::infra(format!(
            "the restore script failed in the sandbox (exit {}) outside the restore's own tools",
            script.map(|s| s.exit).unwrap_or(-1)
        ))
        .with_hint("read the script's output below; this says nothing about the backup")
        .with_stderr(script.map(|s| last_lines(s.stderr, 5)).unwrap_or_default())
        .retryable(false)
    }

    /// A restore's stderr without its stages' report (a stream bound run on its own, or a
    /// script that died before it could report): only firedrill's own lines are read,
    /// from their start, and the tools' error lines are kept with their values elided.
    fn unreported_restore_error(self, stderr: &str) -> Error {
        if let Some(line) = disk_full_line(stderr) {
            return sandbox_disk_full("the restore", line);
        }
        if let Some(line) = stderr.lines().find(|l| l.starts_with(BOUND_MARKER)) {
            return bound_error(line);
        }
        if let Some(line) = stderr.lines().find(|l| l.starts_with(SCREEN_MARKER)) {
            return screen_error(line);
        }
        let kept = match self {
            Engine::Postgres => postgres::error_lines(stderr).join("\n"),
            Engine::Mariadb | Engine::Mysql => mysql::client_error(stderr)
                .map(|e| e.to_string())
                .unwrap_or_default(),
        };
        Error::backup("the restore failed in the sandbox without reporting its stages")
            .with_hint(
                "read the tools' error lines below; a dump that does not restore is not a backup",
            )
            .with_stderr(kept)
    }
}

/// A stage of a restore script: one tool of the pipe from the staged artifact to the
/// database, or the script around them. The names are those the script reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreStage {
    /// `cat`, for a file of another tool that is not encrypted.
    Read,
    /// age.
    Decrypt,
    /// zstd or gzip (`cat` for a file of another tool that is not compressed).
    Decompress,
    /// firedrill's stream bound ([`BOUND_FN`]).
    Bound,
    /// firedrill's plain SQL screen ([`PLAIN_SQL_SCREEN`]).
    Screen,
    /// firedrill's check that a plain SQL dump ends as its tool ends one
    /// ([`COMPLETE_CHECK`]).
    Complete,
    /// firedrill's rewrite of DEFINER clauses and GTID_PURGED (sed).
    Rewrite,
    PgRestore,
    Psql,
    /// The MySQL or MariaDB client.
    Client,
    /// The script itself, around its stages (database creation, format detection).
    Script,
}

impl RestoreStage {
    const ALL: [RestoreStage; 11] = [
        RestoreStage::Complete,
        RestoreStage::Read,
        RestoreStage::Decrypt,
        RestoreStage::Decompress,
        RestoreStage::Bound,
        RestoreStage::Screen,
        RestoreStage::Rewrite,
        RestoreStage::PgRestore,
        RestoreStage::Psql,
        RestoreStage::Client,
        RestoreStage::Script,
    ];

    /// The name the scripts report it by.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreStage::Read => "read",
            RestoreStage::Decrypt => "decrypt",
            RestoreStage::Decompress => "decompress",
            RestoreStage::Bound => "bound",
            RestoreStage::Screen => "screen",
            RestoreStage::Complete => "complete",
            RestoreStage::Rewrite => "rewrite",
            RestoreStage::PgRestore => "pg_restore",
            RestoreStage::Psql => "psql",
            RestoreStage::Client => "client",
            RestoreStage::Script => "script",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// What runs the stage, for messages.
    fn tool(self) -> &'static str {
        match self {
            RestoreStage::Read => "cat",
            RestoreStage::Decrypt => "age",
            RestoreStage::Decompress => "the decompressor",
            RestoreStage::Bound => "firedrill's stream bound",
            RestoreStage::Screen => "firedrill's plain SQL screen",
            RestoreStage::Complete => "firedrill's check that the dump is whole",
            RestoreStage::Rewrite => "sed",
            RestoreStage::PgRestore => "pg_restore",
            RestoreStage::Psql => "psql",
            RestoreStage::Client => "the client",
            RestoreStage::Script => "the restore script",
        }
    }
}

/// How one stage of a restore ended: its exit status as the shell saw it, and the end of
/// its own stderr (printable ASCII: the script replaces anything else by `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct StageEnd<'a> {
    stage: RestoreStage,
    exit: i32,
    stderr: &'a str,
}

/// What the shell reports for a tool killed by SIGPIPE: it wrote to a stage that had
/// stopped reading.
const SIGPIPE_EXIT: i32 = 128 + 13;
/// How firedrill's bound and screen exit when they stop a stream.
const REFUSED_EXIT: i32 = 97;
/// The line that opens each stage's report: `firedrill: stage=NAME exit=N bytes=M`, then
/// exactly M bytes of the stage's stderr and a newline.
const STAGE_HEADER: &str = "firedrill: stage=";

/// Reads a restore script's report of its stages; `None` when the text is not one. The
/// length before each stage's output is what keeps that output from being read as a
/// report line, whatever it holds.
fn parse_stage_report(text: &str) -> Option<Vec<StageEnd<'_>>> {
    let mut rest = text;
    let mut stages = Vec::new();
    while !rest.is_empty() {
        let (header, after) = rest.split_once('\n')?;
        let mut fields = header.strip_prefix(STAGE_HEADER)?.split(' ');
        let stage = RestoreStage::from_name(fields.next()?)?;
        let exit: i32 = fields.next()?.strip_prefix("exit=")?.parse().ok()?;
        let bytes: usize = fields.next()?.strip_prefix("bytes=")?.parse().ok()?;
        if fields.next().is_some() || bytes > after.len() || !after.is_char_boundary(bytes) {
            return None;
        }
        stages.push(StageEnd {
            stage,
            exit,
            stderr: &after[..bytes],
        });
        rest = after[bytes..].strip_prefix('\n').unwrap_or(&after[bytes..]);
    }
    (!stages.is_empty()).then_some(stages)
}

/// The error for a stage that failed of itself.
fn stage_error(s: &StageEnd<'_>, all: &[StageEnd<'_>]) -> Error {
    if let Some(line) = disk_full_line(s.stderr) {
        return sandbox_disk_full(s.stage.tool(), line);
    }
    match s.stage {
        RestoreStage::Decrypt => decrypt_error(s),
        RestoreStage::Read => Error::infra(format!(
            "cannot read the staged file in the sandbox (cat exited with status {})",
            s.exit
        ))
        .with_stderr(first_lines(s.stderr, 3))
        .retryable(false),
        RestoreStage::Decompress => {
            let what = if all.iter().any(|x| x.stage == RestoreStage::Decrypt) {
                "the decrypted artifact"
            } else {
                "the file"
            };
            Error::backup(format!("{what} does not decompress"))
                .with_hint("the artifact was written by a broken pipeline, or altered before it was encrypted; drill an earlier artifact")
                .with_stderr(first_lines(s.stderr, 3))
        }
        RestoreStage::Bound => match s.stderr.lines().find(|l| l.starts_with(BOUND_MARKER)) {
            Some(line) if s.exit == REFUSED_EXIT => bound_error(line),
            _ => Error::internal(format!(
                "firedrill's stream bound failed (exit {})",
                s.exit
            ))
            .with_stderr(first_lines(s.stderr, 3)),
        },
        RestoreStage::Screen => match s.stderr.lines().find(|l| l.starts_with(SCREEN_MARKER)) {
            Some(line) if s.exit == REFUSED_EXIT => screen_error(line),
            _ => Error::internal(format!(
                "firedrill's plain SQL screen failed (exit {})",
                s.exit
            ))
            .with_stderr(first_lines(s.stderr, 3)),
        },
        RestoreStage::Complete => match s.stderr.lines().find(|l| l.starts_with(COMPLETE_MARKER)) {
            Some(line) if s.exit == REFUSED_EXIT => cut_short_error(line),
            _ => Error::internal(format!(
                "firedrill's check that the dump is whole failed (exit {})",
                s.exit
            ))
            .with_stderr(first_lines(s.stderr, 3)),
        },
        RestoreStage::Rewrite => Error::internal(format!(
            "firedrill's rewrite of the dump's DEFINER and GTID_PURGED lines failed (sed exited with status {})",
            s.exit
        ))
        .with_stderr(first_lines(s.stderr, 3)),
        RestoreStage::PgRestore => postgres::restore_error(s.exit, s.stderr),
        RestoreStage::Psql => postgres::psql_error(s.exit, s.stderr),
        RestoreStage::Client => mysql::restore_error(s.exit, s.stderr),
        RestoreStage::Script => Error::infra(format!(
            "the restore script failed in the sandbox (exit {})",
            s.exit
        ))
        .with_stderr(last_lines(s.stderr, 5))
        .retryable(false),
    }
}

/// A source that could not be reached: `what` (naming the source at `target`) with the
/// OS's reason (refused, no such host, timed out) taken from the driver's chain of causes,
/// where the drivers' own words ("error connecting to server", "Input/output error") say
/// nothing; the hint follows the reason.
pub(crate) fn unreachable_source<E>(what: &str, target: &str, e: E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut err = Error::infra(format!("{what}: {e}"))
        .with_source(e)
        .with_hint("check source.host and source.port, and that the server is up and accepts connections from this host");
    if let Some((kind, why)) = err
        .find::<std::io::Error>()
        .map(|io| (io.kind(), io.to_string()))
    {
        err.message = format!("{what}: {why}");
        match kind {
            std::io::ErrorKind::ConnectionRefused => {
                err.hint = Some(format!("nothing listens at {target}: check source.host and source.port, and that the server is up"));
            }
            std::io::ErrorKind::TimedOut => {
                err.hint = Some(format!("{target} does not answer: a firewall may drop the connection, or the host is down"));
            }
            _ => {}
        }
    }
    err
}

/// The line of a tool's stderr where the operating system said the disk is full
/// (ENOSPC, or EDQUOT), as the tools quote it: after a colon at the end of an error line
/// (PostgreSQL, coreutils, age), or as MariaDB's `(Errcode: 28 "…")` / `(errno: 28 "…")`.
/// Lines that may quote the dump's own values (PostgreSQL's CONTEXT, DETAIL, LINE) are not
/// read: a row cannot make a broken backup look like a full disk.
fn disk_full_line(stderr: &str) -> Option<&str> {
    const QUOTING: [&str; 4] = ["CONTEXT:", "DETAIL:", "LINE ", "HINT:"];
    stderr.lines().find(|l| {
        let l = l.trim();
        !QUOTING.iter().any(|q| l.starts_with(q))
            && (l.ends_with(": No space left on device")
                || l.ends_with(": Disk quota exceeded")
                || l.contains("(Errcode: 28 \"")
                || l.contains("(errno: 28 \""))
    })
}

/// The sandbox's disk filled during the restore: Docker's storage is short, which says
/// nothing about the backup (retrying in a fresh sandbox would fill it again).
fn sandbox_disk_full(tool: &str, line: &str) -> Error {
    Error::infra(format!(
        "the sandbox ran out of disk during the restore ({tool}: {})",
        cap_line(line.trim())
    ))
    .with_hint("free space where Docker keeps its volumes (`docker info` names the Docker Root Dir; `docker system df` shows what holds it; `firedrill reap --all` removes leftover sandboxes), then run the drill again; the backup was not judged")
    .retryable(false)
}

/// age failed: by its own error line, a wrong identity (or a damaged header, which reads
/// the same), a payload that fails authentication, or something else it names. age's
/// messages never quote the plaintext.
fn decrypt_error(s: &StageEnd<'_>) -> Error {
    let said = s
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("age: error: "))
        .map(str::trim);
    let lines: Vec<String> = s
        .stderr
        .lines()
        .filter(|l| l.starts_with("age: ") && !l.starts_with("age: report "))
        .take(3)
        .map(cap_line)
        .collect();
    let damaged = "this backup cannot be trusted; drill an earlier artifact and find out what damaged this one";
    match said {
        Some(m) if m.starts_with("no identity matched any of the recipients") => Error::backup(
            "the artifact does not decrypt: this identity does not match any recipient of the artifact",
        )
        .with_hint("encryption.identity must be the private key of one of the recipients listed in the artifact's manifest; use the matching identity file (if it is the right one, the artifact's header was altered: drill an earlier artifact)"),
        Some(m) if m.contains("authenticate") => Error::backup(
            "the artifact does not decrypt: its authentication failed (it was altered or truncated after encryption)",
        )
        .with_hint(damaged),
        Some(m) => Error::backup(format!("the artifact does not decrypt: age: {}", cap_line(m)))
            .with_hint(damaged),
        None => Error::backup(format!(
            "the artifact does not decrypt: age exited with status {}",
            s.exit
        ))
        .with_hint(damaged),
    }
    .with_stderr(lines.join("\n"))
}

/// The bound stopped a stream: `line` is its own report.
fn bound_error(line: &str) -> Error {
    let external = line.contains("source.max_expansion");
    let limit = line
        .split_whitespace()
        .find_map(|w| w.parse::<u64>().ok())
        .map(crate::human::human_bytes)
        .unwrap_or_else(|| "its bound".into());
    if external {
        Error::backup(format!("the file decompresses to more than {limit}, the bound for files of other tools; the restore was stopped there (a decompression bomb, or a file far more compressible than dumps are)"))
            .with_hint("if the file really is that compressible, raise source.max_expansion in the drill file; otherwise find out who wrote it")
    } else {
        Error::backup(format!("the artifact decompresses to more than its manifest's plain_bytes ({limit}), which firedrill records exactly; the restore was stopped there"))
            .with_hint("the artifact and its manifest were replaced after upload (the hash matches a doctored manifest); this backup cannot be trusted, drill an earlier one")
    }
    .with_stderr(cap_line(line))
}

/// The plain SQL screen refused a line: `line` is its own report, which names it.
fn screen_error(line: &str) -> Error {
    let rest = line.trim_start_matches(SCREEN_MARKER).trim_start();
    let what = match rest.split_once(": ") {
        Some((at, command)) => format!("{at} (`{command}`)"),
        None => rest.to_string(),
    };
    Error::backup(format!(
        "the dump runs a psql meta-command {what}; firedrill refused to restore it"
    ))
    .with_hint(SCREEN_HINT)
}

fn cut_short_error(line: &str) -> Error {
    let rest = line.trim_start_matches(COMPLETE_MARKER).trim_start();
    Error::backup(format!("the dump was cut short: {rest}"))
        .with_hint("the backup job saved an unfinished dump as if it had succeeded (the dump tool killed, a full disk, a timeout); drill an earlier one, and make the job fail when its dump tool does")
}

/// What the check that a dump is whole prints when it is not.
const COMPLETE_MARKER: &str = "firedrill: cut short:";

/// Passes a plain SQL dump through unchanged and, when its first lines say pg_dump or
/// mysqldump/mariadb-dump made it, fails (exit 97) unless it ends with that tool's closing
/// line (only comments, blank lines and psql's `\\unrestrict` may follow it): a dump cut
/// short restores without an error up to where it stops, and would pass.
pub const COMPLETE_CHECK: &str = r##"use strict; binmode STDIN; binmode STDOUT; my ($kind, $done, $n) = ("", 0, 0);
while (my $l = <STDIN>) {
  print $l; $n++;
  if ($n <= 40 && $kind eq "") {
    if ($l =~ /^-- PostgreSQL database dump\r?\n?\z/) { $kind = "pg"; }
    elsif ($l =~ /^-- (?:MariaDB|MySQL) dump /) { $kind = "my"; }
  }
  if ($kind eq "pg" && $l =~ /^-- PostgreSQL database dump complete\r?\n?\z/) { $done = 1; next; }
  if ($kind eq "my" && $l =~ /^-- Dump completed/) { $done = 1; next; }
  $done = 0 if $done && $l !~ /^(?:--[^\n]*|[ \t\r]*|\\unrestrict [A-Za-z0-9]+[ \t\r]*)\n?\z/;
}
if ($kind ne "" && !$done) {
  my $what = $kind eq "pg" ? "the closing line `-- PostgreSQL database dump complete` of pg_dump" : "its closing line `-- Dump completed`";
  print STDERR "firedrill: cut short: it ends after line $n without $what\n"; exit 97;
}"##;

/// What the sandbox's stream bound prints when it stops a stream.
const BOUND_MARKER: &str = "firedrill: the decompressed dump exceeds";
/// What the plain SQL screen prints when it refuses a line.
const SCREEN_MARKER: &str = "firedrill: refused psql meta-command";
pub(crate) const SCREEN_HINT: &str = "pg_dump's plain output only uses \\connect, \\restrict/\\unrestrict and \\. after COPY data; anything else (\\! runs a shell command) means the file was altered or made by something else: do not restore it anywhere, and find out who wrote it";

/// Where a restore script keeps each stage's stderr, one file per stage: the sandbox's
/// tmpfs, gone with it.
pub const STAGES_DIR: &str = "/run/firedrill/stages";

/// The part of a restore script that reports its stages apart (`$d` is [`STAGES_DIR`],
/// which exists). The script's own stderr goes to `$d/script`; each tool of a pipe writes
/// its stderr to `$d/STAGE`, and after the pipe `firedrill_record "${PIPESTATUS[*]}"
/// STAGE…` notes how each ended and fails if one did. On exit, whatever the path, the
/// script prints for each stage noted, then for itself, a header
/// `firedrill: stage=NAME exit=N bytes=M` and then the last 8 KiB of that stage's stderr
/// (M bytes, printable ASCII, anything else as `?`) on what was its stderr, and nothing
/// else: firedrill reads the stages by their headers and lengths
/// ([`Engine::restore_error`]), never by searching what the tools printed.
pub const STAGE_REPORT: &str = r#"exec 3>&2 2>>"$d/script"
firedrill_ran=()
firedrill_record() {
  local codes=($1) code failed=0; shift
  for code in "${codes[@]}"; do
    firedrill_ran+=("$1 $code"); [ "$code" = 0 ] || failed=1; shift
  done
  return "$failed"
}
firedrill_frame() {
  local t
  t=$(tail -c 8192 "$d/$1" 2>/dev/null | LC_ALL=C tr -c '\11\12\40-\176' '?'; printf x)
  t=${t%x}
  printf 'firedrill: stage=%s exit=%s bytes=%s\n%s\n' "$1" "$2" "${#t}" "$t" >&3
}
firedrill_report() {
  local rc=$? s
  for s in "${firedrill_ran[@]}"; do firedrill_frame ${s% *} ${s#* }; done
  firedrill_frame script "$rc"
  exit "$rc"
}
trap firedrill_report EXIT"#;

/// A shell function that bounds a decompressed stream: `firedrill_bound LIMIT WHY` passes
/// at most LIMIT bytes through (GNU `head -c` reads no further than it writes), then
/// reads one byte more: if there is one, it says so on stderr and fails, which stops
/// everything upstream (SIGPIPE) and, through `pipefail`, the restore. Streaming, constant
/// memory, nothing written to disk. When what reads it stops first, it dies of SIGPIPE
/// itself, and says nothing.
pub const BOUND_FN: &str = r#"firedrill_bound() {
  head -c "$1" || exit
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

/// Sets `$client_sandbox` to the MySQL/MariaDB client options that keep the client in its
/// box, where the client has them: MariaDB's `--sandbox` (10.5.25, 10.6.18, 10.11.8,
/// 11.x) refuses the client's own shell and file commands (`system`, `\!`, `source`,
/// `tee`): a dump is data, it must not run programs in the sandbox. And
/// `--skip-print-query-on-error`: MariaDB's client otherwise prints a failed statement,
/// rows and all, beside its error.
pub const MYSQL_CLIENT_SANDBOX: &str = r#"client_sandbox=""
client_help=$(firedrill-sandbox client mariadb --help 2>/dev/null || true)
if [[ "$client_help" == *--sandbox* ]]; then client_sandbox=--sandbox; fi
if [[ "$client_help" == *--print-query-on-error* ]]; then client_sandbox="$client_sandbox --skip-print-query-on-error"; fi"#;

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
    exit: BoxFuture<'static, Result<(Option<String>, String)>>,
    secret: Option<crate::secret::Secret>,
    tool: String,
    hold: Box<dyn std::any::Any + Send>,
) -> BoxFuture<'static, Result<()>> {
    use futures::FutureExt;
    async move {
        let ended = exit.await;
        drop(hold);
        let (status, err) = ended?;
        let secrets: Vec<&crate::secret::Secret> = secret.iter().collect();
        let err = crate::secret::redact(&err, &secrets);
        match status {
            None => Ok(()),
            Some(s) if lost_the_server(&err) => Err(Error::infra(format!(
                "{tool} lost its connection to the source ({s})"
            ))
            .with_hint("the source restarted, failed over or dropped the connection mid-dump: that says nothing about the backups; nothing from this dump was kept, the next run takes a new one")
            .with_stderr(tail(&err, 20))),
            Some(s) => Err(Error::backup(format!("{tool} failed ({s})"))
                .with_hint(format!(
                    "read {tool}'s output below; nothing from this dump was kept"
                ))
                .with_stderr(tail(&err, 20))
                .retryable(true)),
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

/// What stands in for a value a tool's message quoted.
pub const ELIDED: &str = "[elided]";
/// The longest line of a tool's output that an error keeps, in characters.
const LINE_CHARS: usize = 300;

/// `line` cut to [`LINE_CHARS`] characters, with control characters as `?`.
pub(crate) fn cap_line(line: &str) -> String {
    let mut out: String = line
        .trim_end()
        .chars()
        .take(LINE_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if line.trim_end().chars().count() > LINE_CHARS {
        out.push('…');
    }
    out
}

/// The first `n` non-empty lines of `s`, each capped ([`cap_line`]).
pub(crate) fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<String> = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(cap_line)
        .collect();
    lines.join("\n")
}

/// The last `n` non-empty lines of `s`, each capped ([`cap_line`]).
pub(crate) fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| cap_line(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with everything from its first quote (any of `quotes`) to its last one, or to
/// its end when there is only one, as [`ELIDED`]. A quoted value may hold quotes of its
/// own, so the quotes cannot be paired: one span from the first to the last is what
/// surely covers every value.
pub(crate) fn elide_quoted(text: &str, quotes: &[char]) -> String {
    match (text.find(quotes), text.rfind(quotes)) {
        (Some(a), Some(b)) if b > a => format!("{}{ELIDED}{}", &text[..a], &text[b + 1..]),
        (Some(a), _) => format!("{}{ELIDED}", &text[..a]),
        _ => text.to_string(),
    }
}

/// The last `n` lines of a sandbox's server log, for an error, without the data a log
/// can quote: PostgreSQL logs a failed statement, its `DETAIL` and `CONTEXT` (a COPY's
/// row), MariaDB's crash report the statement it ran. Those lines keep their label and
/// lose their values ([`postgres::clean_labelled`]); any other line loses what it
/// quotes.
pub fn server_log_tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| cap_line(&server_log_line(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn server_log_line(line: &str) -> String {
    let labelled = postgres::LABELS
        .iter()
        .filter_map(|label| line.find(label).map(|i| (i, *label)))
        .min();
    if let Some((i, label)) = labelled {
        let text = &line[i + label.len()..];
        return format!(
            "{}{label}{}",
            &line[..i],
            postgres::clean_labelled(label, text)
        );
    }
    if let Some(i) = line.find("Query (0x") {
        return format!("{}Query {ELIDED}", &line[..i]);
    }
    elide_quoted(line, &['\'', '"'])
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
        assert!(
            !COMPLETE_CHECK.contains('\''),
            "the check goes into the script in single quotes"
        );
        let auto = Engine::Postgres.restore_auto_cmd("shop", 123);
        assert_eq!(auto[3..], ["firedrill-restore", "shop", "123"]);
        assert!(auto[2].contains(BOUND_FN) && auto[2].contains("perl -e"));
        let stage = Engine::Postgres.stage_cmd(1000, 77).unwrap();
        assert!(
            stage[2].contains("ulimit -f $(( $2 / 1024 + 1 ))"),
            "{}",
            stage[2]
        );
        assert!(stage[2].contains("-gt \"$2\""), "{}", stage[2]);
        assert_eq!((stage[4].as_str(), stage[5].as_str()), ("1000", "77"));
        let own = Engine::Postgres.restore_cmd(&["shop".into()], 77, 4);
        assert!(own[2].contains("-j \"$2\""), "{}", own[2]);
        assert_eq!(own[5], "4");
        let my = Engine::Mariadb.restore_cmd(&["shop".into()], 78, 4);
        assert!(my[2].contains("firedrill_bound \"$1\"") && my[2].contains("$client_sandbox"));
        assert_eq!(my[4], "78");
    }

    /// The check that a plain SQL dump is whole: what it prints when the dump ends
    /// short is a broken backup, whatever the restore made of what came before.
    #[test]
    fn a_dump_without_its_closing_line_is_cut_short() {
        let text = [
            frame("read", 0, ""),
            frame("decompress", 0, ""),
            frame("bound", 0, ""),
            frame(
                "complete",
                REFUSED_EXIT,
                "firedrill: cut short: it ends after line 812 without its closing line `-- Dump completed`",
            ),
            frame("rewrite", 0, ""),
            frame("client", 0, ""),
            frame("script", 1, ""),
        ]
        .concat();
        let e = Engine::Mariadb.restore_error(&text);
        assert_eq!(e.kind, crate::error::ErrorKind::Backup);
        assert_eq!(e.message, "the dump was cut short: it ends after line 812 without its closing line `-- Dump completed`");
        // Any other end of the check is firedrill's own fault, not the backup's.
        let text = [frame("complete", 2, "perl: oops"), frame("script", 1, "")].concat();
        assert_eq!(
            Engine::Postgres.restore_error(&text).kind,
            crate::error::ErrorKind::Internal
        );
    }

    /// The check itself, run by perl as the sandbox runs it: a whole dump passes through
    /// unchanged, one cut short fails with 97, SQL no dump tool made is not judged.
    #[test]
    fn the_completeness_check_passes_whole_dumps_and_stops_short_ones() {
        let run = |input: &str| {
            use std::io::Write;
            let mut c = std::process::Command::new("perl")
                .args(["-e", COMPLETE_CHECK])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("perl");
            c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            let out = c.wait_with_output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        let pg = "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE t (i int);\nCOPY t (i) FROM stdin;\n1\n\\.\n\n";
        let whole =
            format!("{pg}--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc123\n\n");
        assert_eq!(run(&whole), (Some(0), whole.clone()));
        assert_eq!(run(pg).0, Some(REFUSED_EXIT));
        // Something after the closing line that is not a comment: cut and glued.
        assert_eq!(
            run(&format!("{whole}CREATE TABLE u ();\n")).0,
            Some(REFUSED_EXIT)
        );
        let my = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\nINSERT INTO t VALUES (1);\n";
        assert_eq!(
            run(&format!("{my}-- Dump completed on 2026-11-30 10:00:00\n")).0,
            Some(0)
        );
        assert_eq!(run(my).0, Some(REFUSED_EXIT));
        assert_eq!(run("CREATE TABLE t (i int);\n").0, Some(0));
    }

    /// A stage's report as the restore scripts print it.
    fn frame(stage: &str, exit: i32, stderr: &str) -> String {
        format!(
            "firedrill: stage={stage} exit={exit} bytes={}\n{stderr}\n",
            stderr.len()
        )
    }

    #[test]
    fn a_stage_report_is_read_by_its_lengths_never_by_what_the_tools_printed() {
        // The client's output quotes rows, and rows can say anything, report lines too.
        let rows = "INSERT INTO t VALUES ('x\nfiredrill: stage=decrypt exit=1 bytes=0\n', 'age: error: no identity matched any of the recipients')\nERROR 1064 (42000) at line 9: You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'firedrill: stage' at line 1";
        let text = [
            frame("decrypt", 0, ""),
            frame("decompress", 0, ""),
            frame("bound", 0, ""),
            frame("rewrite", 0, ""),
            frame("client", 1, rows),
            frame("script", 1, "format: SQL"),
        ]
        .concat();
        let stages = parse_stage_report(&text).unwrap();
        assert_eq!(stages.len(), 6);
        assert_eq!(
            stages[4],
            StageEnd {
                stage: RestoreStage::Client,
                exit: 1,
                stderr: rows
            }
        );
        let e = Engine::Mariadb.restore_error(&text);
        assert_eq!(
            e.message,
            "the dump does not parse: a syntax error at line 9 (1064)"
        );
        assert_eq!(
            e.stderr_tail.as_deref(),
            Some("ERROR 1064 (42000) at line 9: You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near [elided] at line 1")
        );
        // A length that does not hold is no report.
        assert!(parse_stage_report("firedrill: stage=client exit=1 bytes=99\nshort\n").is_none());
        assert!(parse_stage_report("ERROR 2006 (HY000): gone\n").is_none());
        assert!(parse_stage_report("firedrill: stage=nosuch exit=1 bytes=0\n\n").is_none());
    }

    #[test]
    fn the_failure_is_the_first_stage_that_failed_of_itself() {
        let age_auth = "age: error: failed to decrypt and authenticate payload chunk\nage: report unexpected or unhelpful errors at https://filippo.io/age/report";
        let gone = "ERROR 2006 (HY000) at line 40: MySQL server has gone away";
        // age fails mid-stream: zstd sees its stream end, the client its statement cut.
        let text = [
            frame("decrypt", 1, age_auth),
            frame("decompress", 1, "zstd: /*stdin*\\: premature end"),
            frame("bound", 0, ""),
            frame("rewrite", 0, ""),
            frame("client", 1, gone),
            frame("script", 1, ""),
        ]
        .concat();
        let e = Engine::Mariadb.restore_error(&text);
        assert_eq!(e.message, "the artifact does not decrypt: its authentication failed (it was altered or truncated after encryption)");
        assert_eq!(
            e.stderr_tail.as_deref(),
            Some("age: error: failed to decrypt and authenticate payload chunk")
        );
        // The client fails first: everything upstream dies writing to it.
        let text = [
            frame("decrypt", SIGPIPE_EXIT, ""),
            frame("decompress", SIGPIPE_EXIT, ""),
            frame("bound", SIGPIPE_EXIT, ""),
            frame("rewrite", SIGPIPE_EXIT, ""),
            frame("client", 1, gone),
            frame("script", 1, ""),
        ]
        .concat();
        let e = Engine::Mariadb.restore_error(&text);
        assert_eq!(
            e.message,
            "the restore lost its server at line 40: MySQL server has gone away (2006)"
        );
        assert!(e.hint.unwrap().contains("max_allowed_packet"));
        // The client stops reading without an error (a `quit` in the dump).
        let text = [
            frame("decrypt", SIGPIPE_EXIT, ""),
            frame("decompress", SIGPIPE_EXIT, ""),
            frame("bound", 0, ""),
            frame("rewrite", SIGPIPE_EXIT, ""),
            frame("client", 0, ""),
            frame("script", 1, ""),
        ]
        .concat();
        let e = Engine::Mariadb.restore_error(&text);
        assert!(
            e.message.contains("the client exited without an error"),
            "{e}"
        );
        // The bound stops the stream; the client complains of a statement cut short.
        let text = [
            frame("decrypt", SIGPIPE_EXIT, ""),
            frame("decompress", SIGPIPE_EXIT, ""),
            frame("bound", 97, "firedrill: the decompressed dump exceeds 1048576 bytes (the manifest's plain_bytes); stopped there"),
            frame("rewrite", 0, ""),
            frame("client", 1, "ERROR 1064 (42000) at line 3: syntax near 'x' at line 1"),
            frame("script", 1, ""),
        ]
        .concat();
        let e = Engine::Mariadb.restore_error(&text);
        assert!(
            e.message
                .contains("more than its manifest's plain_bytes (1.0 MiB)"),
            "{e}"
        );
        // A wrong identity, and a file that is not zstd.
        let text = [
            frame("decrypt", 1, "age: error: no identity matched any of the recipients\nage: report unexpected or unhelpful errors at https://filippo.io/age/report"),
            frame("decompress", 1, "zstd: /*stdin*\\: unsupported format"),
            frame("bound", 0, ""),
            frame("script", 3, ""),
        ]
        .concat();
        let e = Engine::Postgres.restore_error(&text);
        assert_eq!(e.message, "the artifact does not decrypt: this identity does not match any recipient of the artifact");
        let text = [
            frame("decrypt", 0, ""),
            frame("decompress", 1, "zstd: /*stdin*\\: unsupported format"),
            frame("bound", 0, ""),
            frame("script", 3, ""),
        ]
        .concat();
        let e = Engine::Postgres.restore_error(&text);
        assert_eq!(e.message, "the decrypted artifact does not decompress");
        assert_eq!(
            e.stderr_tail.as_deref(),
            Some("zstd: /*stdin*\\: unsupported format")
        );
        // No tool failed: the script did (createdb, say).
        let text = [
            frame("decrypt", 0, ""),
            frame("decompress", 0, ""),
            frame("bound", 0, ""),
            frame("script", 1, "createdb: error: could not connect to server"),
        ]
        .concat();
        let e = Engine::Postgres.restore_error(&text);
        assert_eq!(e.kind, crate::error::ErrorKind::Infrastructure);
        assert!(!e.retryable);
        assert_eq!(
            e.stderr_tail.as_deref(),
            Some("createdb: error: could not connect to server")
        );
    }

    #[test]
    fn a_full_sandbox_disk_is_infrastructure_and_a_row_saying_so_is_not() {
        use crate::error::ErrorKind;
        // What pg_restore printed when Docker's disk filled (seen on a CI machine).
        let full = "pg_restore: error: COPY failed for table \"big\": ERROR:  could not extend file \"base/16384/16393\": No space left on device\nHINT:  Check free disk space.\nCONTEXT:  COPY big, line 2312938\npg_restore: error: a worker process died unexpectedly";
        let text = [
            frame("decrypt", 0, ""),
            frame("decompress", 0, ""),
            frame("bound", 0, ""),
            frame("pg_restore", 1, full),
            frame("script", 1, ""),
        ]
        .concat();
        let e = Engine::Postgres.restore_error(&text);
        assert_eq!(e.kind, ErrorKind::Infrastructure, "{e}");
        assert!(!e.retryable);
        assert!(
            e.message
                .starts_with("the sandbox ran out of disk during the restore (pg_restore: "),
            "{e}"
        );
        assert!(e.hint.as_deref().unwrap().contains("Docker Root Dir"));
        // MariaDB quotes the OS error by its number; InnoDB says the table is full.
        let my = "ERROR 3 (HY000) at line 40: Error writing file './shop/t.ibd' (Errcode: 28 \"No space left on device\")";
        let e = Engine::Mariadb
            .restore_error(&[frame("client", 1, my), frame("script", 1, "")].concat());
        assert_eq!(e.kind, ErrorKind::Infrastructure, "{e}");
        let e = mysql::restore_error(1, "ERROR 1114 (HY000) at line 12: The table 't' is full");
        assert_eq!(e.kind, ErrorKind::Infrastructure, "{e}");
        assert!(e.message.contains("(1114)"), "{e}");
        // A value of the dump that says the words, quoted where tools quote values, is
        // still the dump's failure.
        let row = "pg_restore: error: COPY failed for table \"t\": ERROR:  invalid input syntax for type integer: \"x\"\nCONTEXT:  COPY t, line 3, column n: \"oops: No space left on device\"";
        let text = [frame("pg_restore", 1, row), frame("script", 1, "")].concat();
        assert_eq!(
            Engine::Postgres.restore_error(&text).kind,
            ErrorKind::Backup
        );
        let row = "ERROR 1366 (22007) at line 9: Incorrect integer value: 'a: No space left on device' for column `shop`.`t`.`n` at row 1";
        let e = Engine::Mariadb
            .restore_error(&[frame("client", 1, row), frame("script", 1, "")].concat());
        assert_eq!(e.kind, ErrorKind::Backup, "{e}");
    }

    #[test]
    fn the_stage_report_script_reports_each_stage_apart() {
        let script = format!(
            r#"set -euo pipefail
d=$(mktemp -d)
{STAGE_REPORT}
set +e
{{ echo "age: error: failed to decrypt and authenticate payload chunk" >&2; printf 'INSERT INTO t VALUES (1);\n'; exit 1; }} 2>"$d/decrypt" \
  | {{ cat >/dev/null; printf 'firedrill: stage=decrypt exit=0 bytes=0\nrow \xc3\xa9\x01 data\n' >&2; exit 2; }} 2>"$d/client"
firedrill_record "${{PIPESTATUS[*]}}" decrypt client || exit 1
set -e
echo unreachable"#
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8(out.stderr).unwrap();
        let stages = parse_stage_report(&stderr).unwrap_or_else(|| panic!("{stderr}"));
        assert_eq!(
            stages,
            [
                StageEnd {
                    stage: RestoreStage::Decrypt,
                    exit: 1,
                    stderr: "age: error: failed to decrypt and authenticate payload chunk\n"
                },
                StageEnd {
                    stage: RestoreStage::Client,
                    exit: 2,
                    // Printable ASCII only: anything else is `?`.
                    stderr: "firedrill: stage=decrypt exit=0 bytes=0\nrow ??? data\n"
                },
                StageEnd {
                    stage: RestoreStage::Script,
                    exit: 1,
                    stderr: ""
                },
            ]
        );
    }

    #[test]
    fn the_clients_error_line_keeps_its_code_and_position_and_loses_its_values() {
        let e = mysql::client_error("--------------\nINSERT INTO t VALUES ('a@b.c')\n--------------\n\nERROR 1062 (23000) at line 40: Duplicate entry 'a@b.c' for key 'PRIMARY'\n").unwrap();
        assert_eq!(
            (e.code, e.sqlstate.as_deref(), e.line),
            (Some(1062), Some("23000"), Some(40))
        );
        assert_eq!(
            e.to_string(),
            "ERROR 1062 (23000) at line 40: Duplicate entry [elided]"
        );
        // A value holding quotes and a newline: nothing of it survives.
        let e = mysql::client_error("ERROR 1064 (42000) at line 7: You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near ''O'Brien', 42, 'x\nsecond line' at line 1\n").unwrap();
        assert_eq!(e.message, "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near [elided]");
        let e = mysql::client_error(
            "ERROR 1064 (42000) at line 7: syntax to use near ''user2007@exa' at line 1",
        )
        .unwrap();
        assert_eq!(e.message, "syntax to use near [elided] at line 1");
        let e = mysql::client_error("ERROR 1366 (22007) at line 3: Incorrect integer value: 'Zebulon' for column `d`.`t`.`n` at row 1").unwrap();
        assert_eq!(e.message, "Incorrect integer value: [elided] at row 1");
        // Names only: kept.
        let e =
            mysql::client_error("ERROR 1146 (42S02) at line 2: Table 'd.t' doesn't exist").unwrap();
        assert_eq!(e.message, "Table 'd.t' doesn't exist");
        let e = mysql::client_error(
            "ERROR 1153 (08S01) at line 5: Got a packet bigger than 'max_allowed_packet' bytes",
        )
        .unwrap();
        assert_eq!(e.code, Some(1153));
        let err = mysql::restore_error(
            1,
            "ERROR 1153 (08S01) at line 5: Got a packet bigger than 'max_allowed_packet' bytes",
        );
        assert_eq!(
            err.message,
            "the restore sent a packet bigger than max_allowed_packet at line 5 (1153)"
        );
        // The client's own errors have no code.
        let e = mysql::client_error("ERROR at line 2: Not allowed in the sandbox mode").unwrap();
        assert_eq!((e.code, e.line), (None, Some(2)));
        let err = mysql::restore_error(1, "ERROR at line 2: Not allowed in the sandbox mode");
        assert!(
            err.message.contains("sandbox mode refused it") && err.message.contains("at line 2")
        );
        // Rows that say `2006` are not the server gone: the code decides.
        let err = mysql::restore_error(
            1,
            "ERROR 1064 (42000) at line 3: near 'MySQL server has gone away (2006)' at line 1",
        );
        assert!(
            err.message.contains("(1064)") && !err.message.contains("2006"),
            "{err}"
        );
        assert!(!err.hint.unwrap().contains("max_allowed_packet"));
        assert!(mysql::client_error("no error here").is_none());
    }

    #[test]
    fn postgres_error_lines_keep_names_and_lose_values() {
        let dup = "pg_restore: error: could not execute query: ERROR:  could not create unique index \"c_email_key\"\nDETAIL:  Key (email)=(planted@example.com) is duplicated.\nCommand was: ALTER TABLE ONLY public.c\n    ADD CONSTRAINT c_email_key UNIQUE (email);\n\n\npg_restore: error: a worker process died unexpectedly\n";
        assert_eq!(
            postgres::error_lines(dup),
            [
                "pg_restore: error: could not execute query: ERROR:  could not create unique index \"c_email_key\"",
                "DETAIL:  Key (email)=[elided]",
                "Command was: ALTER [elided]",
                "pg_restore: error: a worker process died unexpectedly",
            ]
        );
        let e = postgres::restore_error(1, dup);
        assert_eq!(e.message, "pg_restore could not restore the dump: could not execute query: ERROR:  could not create unique index \"c_email_key\"");
        let row = "pg_restore: error: COPY failed for table \"c\": ERROR:  extra data after last expected column\nCONTEXT:  COPY c, line 2: \"2\tplanted@example.com\tYsolde\tB\t\\\\xcafe\"\n";
        assert_eq!(
            postgres::error_lines(row),
            [
                "pg_restore: error: COPY failed for table \"c\": ERROR:  extra data after last expected column",
                "CONTEXT:  COPY c, line 2",
            ]
        );
        let typed = "psql:<stdin>:45: ERROR:  invalid input syntax for type integer: \"Zebulon\"\nCONTEXT:  COPY t, line 3, column n: \"Zebulon\"\n";
        assert_eq!(
            postgres::error_lines(typed),
            [
                "psql:<stdin>:45: ERROR:  invalid input syntax for type integer: [elided]",
                "CONTEXT:  COPY t, line 3, column n",
            ]
        );
        let e = postgres::psql_error(3, typed);
        assert_eq!(e.message, "psql could not restore the dump at line 45: ERROR:  invalid input syntax for type integer: [elided]");
        let failing = "psql:<stdin>:9: ERROR:  null value in column \"name\" of relation \"t\" violates not-null constraint\nDETAIL:  Failing row contains (1, planted@example.com, null).\nNOTICE:  something else\n";
        assert_eq!(
            postgres::error_lines(failing),
            [
                "psql:<stdin>:9: ERROR:  null value in column \"name\" of relation \"t\" violates not-null constraint",
                "DETAIL:  Failing row contains [elided]",
            ]
        );
        assert_eq!(
            postgres::error_lines("ERROR:  value \"12345678901\" is out of range for type integer\nERROR:  syntax error at or near \"'secret\"\n"),
            [
                "ERROR:  value [elided] is out of range for type integer",
                "ERROR:  syntax error at or near [elided]",
            ]
        );
        let e = postgres::psql_error(
            3,
            "psql:<stdin>:12: error: backslash commands are restricted; only \\unrestrict is allowed\n",
        );
        assert!(
            e.message.contains("restricted mode refused it") && e.message.contains("at line 12")
        );
    }

    #[test]
    fn a_server_log_keeps_its_labels_and_loses_what_it_quotes() {
        let log = "2026-01-01 00:00:00.000 UTC [41] ERROR:  duplicate key value violates unique constraint \"c_pkey\"\n2026-01-01 00:00:00.000 UTC [41] DETAIL:  Key (id)=(7) already exists.\n2026-01-01 00:00:00.000 UTC [41] CONTEXT:  COPY c, line 2: \"7\tplanted@example.com\"\n2026-01-01 00:00:00.000 UTC [41] STATEMENT:  COPY public.c (id, email) FROM stdin;\n2026-01-01 00:00:01.000 UTC [1] DETAIL:  Failed process was running: INSERT INTO c VALUES (8, 'planted@example.com')\nQuery (0x7f00): INSERT INTO c VALUES (8, 'planted@example.com')\n";
        let kept = server_log_tail(log, 20);
        assert!(!kept.contains("planted"), "{kept}");
        assert!(
            kept.contains("ERROR:  duplicate key value violates unique constraint \"c_pkey\""),
            "{kept}"
        );
        assert!(kept.contains("DETAIL:  Key (id)=[elided]"), "{kept}");
        assert!(kept.contains("CONTEXT:  COPY c, line 2\n"), "{kept}");
        assert!(kept.contains("STATEMENT:  COPY [elided]"), "{kept}");
        assert!(
            kept.contains("Failed process was running: INSERT [elided]"),
            "{kept}"
        );
        assert!(kept.ends_with("Query [elided]"), "{kept}");
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
