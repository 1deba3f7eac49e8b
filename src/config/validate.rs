//! Turns a parsed drill file into a [`Drill`], reporting every problem at once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use super::raw::*;
use super::units::{parse_byte_size, parse_duration};
use crate::assertion::{Assertion, Check, Expectation};
use crate::fingerprint::ChecksumPlan;
use crate::secret::{SecretRef, SecretSource};
use crate::status::Stage;

mod physical;

pub use physical::{
    BackupType, BarmanSpec, MariabackupSpec, PgbackrestS3, PgbackrestSpec, RecoveryTarget,
};

/// One thing wrong with a drill file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[schema(value_type = String)]
    pub file: PathBuf,
    /// Dotted path of the field (`source.port`, `assertion[2].expect`), or empty when the
    /// file as a whole is at fault.
    pub field: String,
    /// The line of the file where the field is (where its table is, when it is missing),
    /// from 1; absent when the problem has no place in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
    pub fix: String,
}

impl Problem {
    /// Where in the file, as a person reads it: `source.port (line 7)`, `line 3`, or
    /// empty.
    pub fn place(&self) -> String {
        match (self.field.is_empty(), self.line) {
            (true, None) => String::new(),
            (true, Some(l)) => format!("line {l}"),
            (false, None) => self.field.clone(),
            (false, Some(l)) => format!("{} (line {l})", self.field),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = self.place();
        if place.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        } else {
            write!(f, "{}: {place}: {}", self.file.display(), self.message)?;
        }
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Every problem found in one or more drill files.
#[derive(Debug, Clone)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl From<Problems> for crate::Error {
    fn from(p: Problems) -> Self {
        let n = p.0.len();
        crate::Error::config(format!(
            "{n} problem{} in the drill file:\n{p}",
            if n == 1 { "" } else { "s" }
        ))
        .with_hint("fix the fields named above; `firedrill validate FILE` checks offline")
    }
}

/// A drill that passed validation: the only thing the engine runs.
#[derive(Debug, Clone, Serialize)]
pub struct Drill {
    pub name: String,
    pub description: Option<String>,
    pub file: PathBuf,
    /// Relative paths in the drill file are resolved against this directory.
    pub base_dir: PathBuf,
    pub source: SourceSpec,
    pub storage: StorageSpec,
    /// None for a physical drill: its backup tool encrypts.
    pub encryption: Option<EncryptionSpec>,
    pub compression: CompressionSpec,
    pub sandbox: SandboxSpec,
    pub timeouts: StageTimeouts,
    pub retry: RetryPolicy,
    pub retention: RetentionPolicy,
    pub schedule: DrillSchedule,
    pub assertions: Vec<Assertion>,
    /// Which tables get a content checksum (its `slot` is set per run).
    pub checksums: ChecksumPlan,
    /// A dump or row total this much smaller (a fraction) than the last passing run's
    /// fails as suspect: `anomaly.max_shrink`, for callers that know only the totals.
    pub max_shrink: f64,
    /// The anomaly guards' thresholds, of the totals and of each table.
    pub anomaly: AnomalyPolicy,
}

/// How much a new backup may shrink since the last passing run before it is suspect: its
/// dump size and row total, and each table's rows and size. A table too small in the last
/// passing run is not judged: few rows come and go without anything being wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyPolicy {
    /// A fraction (0.5 = 50%) of the totals, and of every table without its own; 1 turns
    /// a guard off.
    pub max_shrink: f64,
    /// A table's rows are judged from this many in the last passing run.
    pub table_min_rows: u64,
    /// A table's size is judged from this many bytes in the last passing run.
    pub table_min_bytes: u64,
    /// Tables with thresholds of their own, by `schema.table` (`database.table`).
    pub tables: std::collections::BTreeMap<String, TableGuard>,
}

/// The thresholds one table is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TableGuard {
    pub max_shrink: f64,
    pub min_rows: u64,
    pub min_bytes: u64,
}

impl AnomalyPolicy {
    pub const DEFAULT_MAX_SHRINK: f64 = 0.5;
    pub const DEFAULT_TABLE_MIN_ROWS: u64 = 1000;
    pub const DEFAULT_TABLE_MIN_BYTES: u64 = 10 << 20;

    /// The thresholds of `table` (`schema.table`): its own, or the drill's.
    pub fn for_table(&self, table: &str) -> TableGuard {
        self.tables.get(table).copied().unwrap_or(TableGuard {
            max_shrink: self.max_shrink,
            min_rows: self.table_min_rows,
            min_bytes: self.table_min_bytes,
        })
    }
}

impl Default for AnomalyPolicy {
    fn default() -> Self {
        AnomalyPolicy {
            max_shrink: Self::DEFAULT_MAX_SHRINK,
            table_min_rows: Self::DEFAULT_TABLE_MIN_ROWS,
            table_min_bytes: Self::DEFAULT_TABLE_MIN_BYTES,
            tables: Default::default(),
        }
    }
}

/// The default floors and no table of its own: what a caller that passes only
/// [`Drill::max_shrink`] gets. Pass [`Drill::anomaly`] for the drill's whole policy.
impl From<f64> for AnomalyPolicy {
    fn from(max_shrink: f64) -> Self {
        AnomalyPolicy {
            max_shrink,
            ..Default::default()
        }
    }
}

impl From<&AnomalyPolicy> for AnomalyPolicy {
    fn from(p: &AnomalyPolicy) -> Self {
        p.clone()
    }
}

/// When and how the daemon runs a drill.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrillSchedule {
    pub cron: Option<crate::schedule::Schedule>,
    #[serde(with = "opt_secs")]
    pub max_age: Option<Duration>,
    #[serde(with = "opt_secs")]
    pub rto: Option<Duration>,
    pub heartbeat_url: Option<String>,
    pub random_artifact: bool,
}

pub(super) mod opt_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

impl Drill {
    /// Resolves a path from the drill file against the drill file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceSpec {
    Postgres(PostgresSpec),
    Mysql(MysqlSpec),
    Stored(StoredSpec),
    /// A dump in a restic or Borg repository.
    Snapshot(SnapshotSpec),
    /// Physical backups kept by pgBackRest.
    Pgbackrest(Box<physical::PgbackrestSpec>),
    /// Physical backups of MariaDB made by MariaDB Backup.
    Mariabackup(physical::MariabackupSpec),
    /// Physical backups of PostgreSQL kept by Barman.
    Barman(physical::BarmanSpec),
}

impl SourceSpec {
    pub fn min_dump_bytes(&self) -> u64 {
        match self {
            SourceSpec::Postgres(p) => p.min_dump_bytes,
            SourceSpec::Mysql(m) => m.min_dump_bytes,
            SourceSpec::Stored(_)
            | SourceSpec::Snapshot(_)
            | SourceSpec::Pgbackrest(_)
            | SourceSpec::Mariabackup(_)
            | SourceSpec::Barman(_) => 0,
        }
    }

    /// Whether the drill only verifies what another tool made (there is nothing to dump).
    pub fn verify_only(&self) -> bool {
        match self {
            SourceSpec::Stored(_)
            | SourceSpec::Snapshot(_)
            | SourceSpec::Mariabackup(_)
            | SourceSpec::Barman(_) => true,
            SourceSpec::Pgbackrest(p) => p.verify_only(),
            SourceSpec::Postgres(_) | SourceSpec::Mysql(_) => false,
        }
    }

    /// Whether the drill restores a physical copy (a backup tool's files and WAL), not
    /// a dump.
    pub fn physical(&self) -> bool {
        matches!(
            self,
            SourceSpec::Pgbackrest(_) | SourceSpec::Mariabackup(_) | SourceSpec::Barman(_)
        )
    }
}

/// The backup tool whose repository holds a drill's dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoTool {
    Restic,
    Borg,
}

impl RepoTool {
    pub fn as_str(self) -> &'static str {
        match self {
            RepoTool::Restic => "restic",
            RepoTool::Borg => "borg",
        }
    }
}

/// A verify-only drill of a dump inside a restic or Borg repository.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotSpec {
    pub tool: RepoTool,
    /// The program run (`restic`, `borg`, or the drill's `tool`).
    pub program: PathBuf,
    pub repository: String,
    pub password: Option<SecretSource>,
    /// Backend settings for the tool's environment, by variable name.
    pub env: std::collections::BTreeMap<String, SecretSource>,
    pub pick: crate::pick::Pick,
    pub tag: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub archive: Option<String>,
    pub file: Option<String>,
    /// Declared; otherwise read from the dump's header.
    pub engine: Option<crate::engine::kind::Engine>,
    /// Declared; otherwise read from the dump's header.
    pub version: Option<String>,
    pub database: String,
    pub max_expansion: u64,
    pub rsh: Option<String>,
}

impl SnapshotSpec {
    /// The most a dump of `bytes` may decompress to.
    pub fn max_plain_bytes(&self, bytes: u64) -> u64 {
        external_plain_limit(bytes, self.max_expansion)
    }
}

/// A verify-only drill's files.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSpec {
    pub engine: crate::engine::kind::Engine,
    pub version: String,
    pub database: String,
    pub prefix: String,
    /// The decompressed size bound, as a multiple of the stored file's size.
    pub max_expansion: u64,
}

impl StoredSpec {
    /// The most a stored file of `stored_bytes` may decompress to.
    pub fn max_plain_bytes(&self, stored_bytes: u64) -> u64 {
        external_plain_limit(stored_bytes, self.max_expansion)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MysqlSpec {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<SecretSource>,
    /// Empty means every user database.
    pub databases: Vec<String>,
    pub dump_tool: Option<PathBuf>,
    pub min_dump_bytes: u64,
    pub tls: crate::tls::TlsSpec,
    pub dump_in: crate::engine::tool::DumpIn,
}

#[derive(Debug, Clone, Serialize)]
pub struct PostgresSpec {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Option<SecretSource>,
    pub pg_dump: Option<PathBuf>,
    pub min_dump_bytes: u64,
    pub tls: crate::tls::TlsSpec,
    pub dump_in: crate::engine::tool::DumpIn,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StorageSpec {
    Local {
        path: PathBuf,
        prefix: String,
    },
    S3 {
        bucket: String,
        region: String,
        endpoint: Option<String>,
        path_style: bool,
        access_key_id: SecretSource,
        secret_access_key: SecretSource,
        prefix: String,
    },
    Gcs {
        bucket: String,
        credential: SecretSource,
        prefix: String,
    },
    Azblob {
        container: String,
        account_name: String,
        account_key: SecretSource,
        endpoint: Option<String>,
        prefix: String,
    },
    B2 {
        bucket: String,
        bucket_id: String,
        application_key_id: SecretSource,
        application_key: SecretSource,
        prefix: String,
    },
    Swift {
        endpoint: String,
        container: String,
        token: SecretSource,
        prefix: String,
    },
    Sftp {
        endpoint: String,
        user: String,
        key: PathBuf,
        root: String,
        prefix: String,
    },
}

impl StorageSpec {
    pub fn prefix(&self) -> &str {
        match self {
            StorageSpec::Local { prefix, .. }
            | StorageSpec::S3 { prefix, .. }
            | StorageSpec::Gcs { prefix, .. }
            | StorageSpec::Azblob { prefix, .. }
            | StorageSpec::B2 { prefix, .. }
            | StorageSpec::Swift { prefix, .. }
            | StorageSpec::Sftp { prefix, .. } => prefix,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EncryptionSpec {
    /// Checked `age1…` strings.
    pub recipients: Vec<String>,
    pub recipients_file: Option<PathBuf>,
    pub identity: SecretSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompressionSpec {
    pub level: i32,
    pub threads: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SandboxSpec {
    Docker(DockerSpec),
}

#[derive(Debug, Clone, Serialize)]
pub struct DockerSpec {
    pub image: Option<String>,
    /// The major version to restore into when it is not the source's (an upgrade
    /// rehearsal).
    pub major: Option<String>,
    pub memory_bytes: u64,
    pub cpus: f64,
    pub docker_host: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageTimeouts {
    #[serde(with = "duration_secs")]
    pub dump: Duration,
    #[serde(with = "duration_secs")]
    pub encrypt: Duration,
    #[serde(with = "duration_secs")]
    pub upload: Duration,
    #[serde(with = "duration_secs")]
    pub provision: Duration,
    #[serde(with = "duration_secs")]
    pub restore: Duration,
    #[serde(with = "duration_secs")]
    pub verify: Duration,
    #[serde(with = "duration_secs")]
    pub teardown: Duration,
}

impl StageTimeouts {
    pub fn get(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Dump => self.dump,
            Stage::Encrypt => self.encrypt,
            Stage::Upload => self.upload,
            Stage::Provision => self.provision,
            Stage::Restore => self.restore,
            Stage::Verify => self.verify,
            Stage::Teardown => self.teardown,
        }
    }

    /// The longest a whole run can take; sandboxes older than this are leftovers.
    pub fn total(&self) -> Duration {
        Stage::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

impl Default for StageTimeouts {
    fn default() -> Self {
        StageTimeouts {
            dump: Duration::from_secs(6 * 3600),
            encrypt: Duration::from_secs(6 * 3600),
            upload: Duration::from_secs(6 * 3600),
            provision: Duration::from_secs(300),
            restore: Duration::from_secs(6 * 3600),
            verify: Duration::from_secs(3600),
            teardown: Duration::from_secs(120),
        }
    }
}

mod duration_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RetryPolicy {
    pub attempts: u32,
    #[serde(with = "duration_secs")]
    pub backoff: Duration,
}

impl RetryPolicy {
    /// Whether a failure of attempt `attempt` (from 1) is tried again: the
    /// infrastructure's, retryable, and attempts left.
    pub fn retries(&self, e: &crate::error::Error, attempt: u32) -> bool {
        e.kind == crate::error::ErrorKind::Infrastructure && e.retryable && attempt < self.attempts
    }

    /// How long to wait after attempt `attempt` (from 1) failed: the backoff, doubled
    /// each time.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.backoff * 2u32.saturating_pow(attempt.saturating_sub(1))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_secs(2),
        }
    }
}

/// The drill files (`*.toml`) in a directory, sorted.
pub fn drill_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads, parses and validates one drill file.
pub fn load_drill(path: &Path) -> Result<Drill, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem {
            file: path.to_path_buf(),
            field: String::new(),
            line: None,
            message: format!("cannot read the file: {e}"),
            fix: "check the path".into(),
        }])
    })?;
    parse_drill(path, &text)
}

/// Parses and validates drill-file text; `path` names the file in messages and gives the
/// default drill name and the base for relative paths. Every problem is reported at once:
/// the file's shape first (unknown fields, values of the wrong type, missing fields; see
/// [`read_shaped`]), then its values, each naming its field and line.
pub fn parse_drill(path: &Path, text: &str) -> Result<Drill, Problems> {
    let text = &super::interpolate_env(path, text)?;
    let shaped = read_shaped::<DrillFile>(path, text, drill_schema());
    let mut problems = shaped.problems;
    // [encryption] is optional in the schema only for physical drills: a file whose shape
    // stops it before validation still hears that it lacks one.
    if let (None, Some(doc)) = (&shaped.value, &shaped.doc) {
        let t = doc.as_table();
        let physical = t
            .get("source")
            .and_then(|s| s.get("type"))
            .and_then(|v| v.as_str())
            == Some("pgbackrest");
        if !physical && !t.contains_key("encryption") {
            problems.push(Problem {
                file: path.to_path_buf(),
                field: "encryption".into(),
                line: None,
                message: "missing field `encryption`".into(),
                fix: "add a [encryption] table".into(),
            });
        }
    }
    if let Some(raw) = shaped.value {
        match validate(path, raw) {
            Ok(drill) if problems.is_empty() => return Ok(drill),
            Ok(_) => {}
            Err(found) => problems.extend(found.0.into_iter().map(|mut p| {
                if p.file == path {
                    if let Some(doc) = &shaped.doc {
                        p.line = p.line.or_else(|| line_in(&p.field, doc, text));
                    }
                }
                p
            })),
        }
    }
    Err(Problems(problems))
}

/// The JSON Schema of drill files (what `firedrill schema` prints), made once.
fn drill_schema() -> &'static serde_json::Value {
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(super::raw::json_schema::<DrillFile>)
}

/// The JSON Schema of a file of shared assertions, made once.
fn assertions_schema() -> &'static serde_json::Value {
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(super::raw::json_schema::<AssertionsFile>)
}

/// A config file as read so far: its document (for the lines of later problems), its
/// value when it could be read, and what was wrong with its syntax or shape.
struct Shaped<'t, T> {
    doc: Option<toml_edit::ImDocument<&'t str>>,
    value: Option<T>,
    problems: Vec<Problem>,
}

/// Reads a config file of type `T`: its syntax, then its shape against `schema` (the JSON
/// Schema `T` generates), then serde. The shape check finds every unknown field, value of
/// the wrong type and missing field at once, each at its key's line; serde alone would
/// stop at the first. When what is wrong can be left out (unknown fields, optional fields
/// of the wrong type), the rest is still read, so that its values are checked too.
fn read_shaped<'t, T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &'t str,
    schema: &serde_json::Value,
) -> Shaped<'t, T> {
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            return Shaped {
                doc: None,
                value: None,
                problems: vec![syntax_problem(path, text, e.message(), e.span())],
            }
        }
    };
    let misfits = shape::Walker::check(schema, doc.as_table());
    let mut problems: Vec<Problem> = misfits
        .iter()
        .map(|m| Problem {
            file: path.to_path_buf(),
            field: shape::dotted(&m.path),
            line: m.at.map(|at| line_of(text, at)),
            message: m.message.clone(),
            fix: m.fix.clone(),
        })
        .collect();
    if misfits.iter().any(|m| !m.droppable) {
        return Shaped {
            doc: Some(doc),
            value: None,
            problems,
        };
    }
    let value = if misfits.is_empty() {
        toml::from_str::<T>(text)
    } else {
        toml::from_str::<toml::Table>(text).and_then(|mut table| {
            for m in &misfits {
                drop_field(&mut table, &m.path);
            }
            toml::Value::Table(table).try_into::<T>()
        })
    };
    let value = match value {
        Ok(v) => Some(v),
        Err(e) => {
            // What the schema cannot say (it says most): serde's words, at its place.
            let (field, line) = e
                .span()
                .map(|sp| key_at(text, sp.start))
                .map_or((String::new(), None), |(f, l)| (f, Some(l)));
            problems.push(Problem {
                file: path.to_path_buf(),
                field,
                line,
                message: e.message().to_string(),
                fix: "correct the value at the place shown; `firedrill schema` prints what each field takes".into(),
            });
            None
        }
    };
    Shaped {
        doc: Some(doc),
        value,
        problems,
    }
}

/// A file that is not TOML: the place and what the parser says.
fn syntax_problem(
    path: &Path,
    text: &str,
    message: &str,
    span: Option<std::ops::Range<usize>>,
) -> Problem {
    let (field, line) = span
        .as_ref()
        .map(|sp| key_at(text, sp.start))
        .map_or((String::new(), None), |(f, l)| (f, Some(l)));
    Problem {
        file: path.to_path_buf(),
        field,
        line,
        message: if message.trim().is_empty() {
            // The parser has no words for some errors (a lone carriage return); found by
            // fuzzing.
            match span
                .and_then(|sp| text.get(sp.start..))
                .and_then(|r| r.chars().next())
            {
                Some(c) => format!("unexpected character {c:?} here"),
                None => "this is not valid TOML".to_string(),
            }
        } else {
            message.trim_end().to_string()
        },
        fix: "correct the TOML at the place shown".into(),
    }
}

/// Removes the field at `path` (found not to fit) from a parsed file.
fn drop_field(table: &mut toml::Table, path: &[shape::Seg]) {
    fn go(value: &mut toml::Value, path: &[shape::Seg]) {
        let [seg, rest @ ..] = path else { return };
        match (seg, value) {
            (shape::Seg::Key(k), toml::Value::Table(t)) if rest.is_empty() => {
                t.remove(k);
            }
            (shape::Seg::Key(k), toml::Value::Table(t)) => {
                if let Some(v) = t.get_mut(k) {
                    go(v, rest);
                }
            }
            (shape::Seg::Index(i), toml::Value::Array(a)) if !rest.is_empty() => {
                if let Some(v) = a.get_mut(*i) {
                    go(v, rest);
                }
            }
            _ => {}
        }
    }
    let mut root = toml::Value::Table(std::mem::take(table));
    go(&mut root, path);
    if let toml::Value::Table(t) = root {
        *table = t;
    }
}

/// The 1-based line of byte `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The line where `field` is in `doc` (or where its table is, when it is missing).
fn line_in(field: &str, doc: &toml_edit::ImDocument<&str>, text: &str) -> Option<usize> {
    if field.is_empty() {
        return None;
    }
    let at = shape::parse_dotted(field).and_then(|path| shape::locate(doc.as_table(), &path))?;
    Some(line_of(text, at))
}

/// Names the place of a syntax error at byte `pos`: the key on that line under its table,
/// and the line.
fn key_at(text: &str, pos: usize) -> (String, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    // Untrimmed, so that `start + raw_line.len()` is the end of the line (found by fuzzing:
    // the trimmed length could end inside a character).
    let raw_line = text[start..].lines().next().unwrap_or("");
    let line = raw_line.trim();
    let line_no = text[..start].matches('\n').count() + 1;
    // The innermost table header at or above this line.
    let mut table = String::new();
    for l in text[..start + raw_line.len()].lines().rev() {
        let l = l.trim();
        if l.starts_with('[') {
            table = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            break;
        }
    }
    let key = line
        .split_once('=')
        .filter(|_| !line.starts_with('['))
        .map(|(k, _)| k.trim().to_string());
    let field = match (table.is_empty(), key) {
        (true, Some(k)) => k,
        (false, Some(k)) => format!("{table}.{k}"),
        (false, None) => table,
        (true, None) => String::new(),
    };
    (field, line_no)
}

pub(super) struct Collector<'a> {
    file: &'a Path,
    problems: Vec<Problem>,
}

impl Collector<'_> {
    pub(super) fn push(
        &mut self,
        field: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            field: field.into(),
            line: None,
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// `source.dump_in`: where the dump tool runs (default auto).
    fn dump_in(&mut self, raw: &Option<String>) -> crate::engine::tool::DumpIn {
        use crate::engine::tool::DumpIn;
        let Some(v) = raw else {
            return DumpIn::Auto;
        };
        DumpIn::parse(v.trim()).unwrap_or_else(|| {
            self.push(
                "source.dump_in",
                format!("`{v}` is not a place for the dump tool"),
                "write \"auto\" (this host's tool unless it is older than the server), \"host\" or \"container\"",
            );
            DumpIn::Auto
        })
    }

    /// A source's TLS settings: the mode read in its family's names, the files resolved
    /// against the drill file's directory (read when connecting).
    fn tls(
        &mut self,
        naming: crate::tls::Naming,
        mode: Option<&str>,
        [ca, cert, key]: [&Option<PathBuf>; 3],
    ) -> crate::tls::TlsSpec {
        use crate::tls::{Field, TlsMode, TlsSpec};
        let mode = match mode {
            None => TlsMode::Prefer,
            Some(m) => {
                let parsed = match naming {
                    crate::tls::Naming::Mysql => TlsMode::parse_mysql(m),
                    _ => TlsMode::parse_libpq(m),
                };
                parsed.unwrap_or_else(|| {
                    let names: Vec<_> = [
                        TlsMode::Disable,
                        TlsMode::Prefer,
                        TlsMode::Require,
                        TlsMode::VerifyCa,
                        TlsMode::VerifyFull,
                    ]
                    .iter()
                    .map(|m| format!("\"{}\"", naming.mode_name(*m)))
                    .collect();
                    self.push(
                        naming.field(Field::Mode),
                        format!("`{m}` is not a TLS mode"),
                        format!(
                            "write one of {} (\"{}\" checks the CA and the host name)",
                            names.join(", "),
                            naming.mode_name(TlsMode::VerifyFull)
                        ),
                    );
                    TlsMode::Prefer
                })
            }
        };
        let dir = self
            .file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolve = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| {
                if p.is_absolute() {
                    p.clone()
                } else {
                    dir.join(p)
                }
            })
        };
        if cert.is_some() != key.is_some() {
            let (given, missing) = if cert.is_some() {
                (Field::Cert, Field::Key)
            } else {
                (Field::Key, Field::Cert)
            };
            self.push(
                naming.field(missing),
                format!(
                    "{} is set but {} is not",
                    naming.field(given),
                    naming.field(missing)
                ),
                "give the client certificate and its private key together, or neither",
            );
        }
        if mode == TlsMode::Disable {
            for (f, v) in [(Field::Ca, ca), (Field::Cert, cert), (Field::Key, key)] {
                if v.is_some() {
                    self.push(
                        naming.field(f),
                        format!(
                            "has no effect with {} = \"{}\"",
                            naming.field(Field::Mode),
                            naming.mode_name(mode)
                        ),
                        format!(
                            "remove it, or set {} = \"{}\" to use it",
                            naming.field(Field::Mode),
                            naming.mode_name(TlsMode::VerifyFull)
                        ),
                    );
                }
            }
        }
        TlsSpec {
            mode,
            ca: resolve(ca),
            cert: resolve(cert),
            key: resolve(key),
            naming,
        }
    }

    /// `source.password`: where the password comes from, if the source has one.
    fn password(&mut self, r: &Option<SecretRef>) -> Option<SecretSource> {
        self.secret("source.password", r)
    }

    /// A secret of the drill file at `field`: where it comes from, if one is given.
    pub(super) fn secret(&mut self, field: &str, r: &Option<SecretRef>) -> Option<SecretSource> {
        r.as_ref().and_then(|p| {
            p.validate()
                .map_err(|m| {
                    self.push(
                        field,
                        m,
                        "use exactly one of { env = \"VAR\" } or { file = \"/path\" }; secrets are never written inline",
                    )
                })
                .ok()
        })
    }

    fn duration(&mut self, field: &str, v: &Option<String>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => parse_duration(s).unwrap_or_else(|m| {
                self.push(
                    field,
                    m,
                    "write a duration such as \"90s\", \"10m\" or \"2h\"",
                );
                default
            }),
        }
    }

    fn size(&mut self, field: &str, v: &Option<String>, default: u64) -> u64 {
        match v {
            None => default,
            Some(s) => parse_byte_size(s).unwrap_or_else(|m| {
                self.push(field, m, "write a size such as \"512MiB\" or \"2GiB\"");
                default
            }),
        }
    }
}

fn storage_prefix(c: &mut Collector<'_>, prefix: &Option<String>) -> String {
    let prefix = prefix.clone().unwrap_or_default();
    if prefix.split('/').any(|part| part == "..") || prefix.starts_with('/') {
        c.push(
            "storage.prefix",
            format!("`{prefix}` must be a relative key prefix without `..`"),
            "write e.g. prefix = \"prod/db1\"",
        );
    }
    prefix.trim_matches('/').to_string()
}

fn storage_secret(c: &mut Collector<'_>, field: &str, r: &SecretRef) -> SecretSource {
    r.validate()
        .map_err(|m| {
            c.push(
                format!("storage.{field}"),
                m,
                "credentials are never inline: use { env = \"VAR\" } or { file = \"/path\" }",
            )
        })
        .unwrap_or(SecretSource::Env { env: String::new() })
}

fn nonempty(c: &mut Collector<'_>, field: &str, v: &str, fix: &str) {
    if v.trim().is_empty() {
        c.push(format!("storage.{field}"), "is empty", fix);
    }
}

fn validate_storage(c: &mut Collector<'_>, raw: &StorageConfig) -> StorageSpec {
    match raw {
        StorageConfig::Local(l) => {
            if l.path.as_os_str().is_empty() {
                c.push(
                    "storage.path",
                    "the path is empty",
                    "give the directory where artifacts are kept",
                );
            }
            StorageSpec::Local {
                path: l.path.clone(),
                prefix: storage_prefix(c, &l.prefix),
            }
        }
        StorageConfig::S3(s) => {
            nonempty(c, "bucket", &s.bucket, "name the bucket");
            nonempty(
                c,
                "region",
                &s.region,
                "give the region, e.g. \"us-east-1\" (Garage: \"garage\", R2: \"auto\")",
            );
            if let Some(e) = &s.endpoint {
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    c.push(
                        "storage.endpoint",
                        format!("`{e}` is not an http(s) URL"),
                        "write e.g. \"https://s3.example.com\" or \"http://127.0.0.1:9000\"",
                    );
                }
            }
            StorageSpec::S3 {
                bucket: s.bucket.clone(),
                region: s.region.clone(),
                endpoint: s.endpoint.clone(),
                path_style: s.path_style,
                access_key_id: storage_secret(c, "access_key_id", &s.access_key_id),
                secret_access_key: storage_secret(c, "secret_access_key", &s.secret_access_key),
                prefix: storage_prefix(c, &s.prefix),
            }
        }
        StorageConfig::Gcs(g) => {
            nonempty(c, "bucket", &g.bucket, "name the bucket");
            StorageSpec::Gcs {
                bucket: g.bucket.clone(),
                credential: storage_secret(c, "credential", &g.credential),
                prefix: storage_prefix(c, &g.prefix),
            }
        }
        StorageConfig::Azblob(a) => {
            nonempty(c, "container", &a.container, "name the container");
            nonempty(
                c,
                "account_name",
                &a.account_name,
                "give the storage account name",
            );
            StorageSpec::Azblob {
                container: a.container.clone(),
                account_name: a.account_name.clone(),
                account_key: storage_secret(c, "account_key", &a.account_key),
                endpoint: a.endpoint.clone(),
                prefix: storage_prefix(c, &a.prefix),
            }
        }
        StorageConfig::B2(b) => {
            nonempty(c, "bucket", &b.bucket, "name the bucket");
            nonempty(
                c,
                "bucket_id",
                &b.bucket_id,
                "copy the bucket id from the B2 console",
            );
            StorageSpec::B2 {
                bucket: b.bucket.clone(),
                bucket_id: b.bucket_id.clone(),
                application_key_id: storage_secret(c, "application_key_id", &b.application_key_id),
                application_key: storage_secret(c, "application_key", &b.application_key),
                prefix: storage_prefix(c, &b.prefix),
            }
        }
        StorageConfig::Swift(w) => {
            nonempty(c, "endpoint", &w.endpoint, "give the account's storage URL");
            nonempty(c, "container", &w.container, "name the container");
            StorageSpec::Swift {
                endpoint: w.endpoint.clone(),
                container: w.container.clone(),
                token: storage_secret(c, "token", &w.token),
                prefix: storage_prefix(c, &w.prefix),
            }
        }
        StorageConfig::Sftp(f) => {
            if !f.endpoint.starts_with("ssh://") {
                c.push(
                    "storage.endpoint",
                    format!("`{}` is not an ssh:// URL", f.endpoint),
                    "write e.g. \"ssh://backup.example.com:22\"",
                );
            }
            nonempty(c, "user", &f.user, "name the SSH user");
            nonempty(c, "root", &f.root, "give the directory on the server");
            StorageSpec::Sftp {
                endpoint: f.endpoint.clone(),
                user: f.user.clone(),
                key: f.key.clone(),
                root: f.root.clone(),
                prefix: storage_prefix(c, &f.prefix),
            }
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Checks a parsed drill file. Pure: reads nothing, connects to nothing.
pub fn validate(path: &Path, raw: DrillFile) -> Result<Drill, Problems> {
    let mut c = Collector {
        file: path,
        problems: Vec::new(),
    };

    let name = raw.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    if !valid_name(&name) {
        c.push(
            "name",
            format!("`{name}` is not a valid drill name"),
            "use 1–63 lowercase letters, digits, - or _, starting with a letter or digit (it names storage keys and container labels)",
        );
    }

    let source = match &raw.source {
        SourceConfig::Postgres(pg) => SourceSpec::Postgres(postgres_spec(&mut c, pg, "source")),
        SourceConfig::Stored(st) => {
            let engine = crate::engine::kind::Engine::parse(&st.engine).unwrap_or_else(|_| {
                c.push(
                    "source.engine",
                    format!("`{}` is not an engine", st.engine),
                    "write \"postgres\", \"mariadb\" or \"mysql\"",
                );
                crate::engine::kind::Engine::Postgres
            });
            let series_ok = !st.version.is_empty()
                && st
                    .version
                    .split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if !series_ok {
                c.push(
                    "source.version",
                    format!("`{}` is not a release series", st.version),
                    "write the server series the files came from, e.g. \"15\" or \"10.11\"",
                );
            }
            if st.database.trim().is_empty() {
                c.push(
                    "source.database",
                    "the database name is empty",
                    "name the database to restore into",
                );
            }
            if st.prefix.split('/').any(|p| p == "..") || st.prefix.starts_with('/') {
                c.push(
                    "source.prefix",
                    format!("`{}` must be a relative key prefix without `..`", st.prefix),
                    "write e.g. prefix = \"pg_dumps/nightly/\"",
                );
            }
            if st.max_expansion == Some(0) {
                c.push(
                    "source.max_expansion",
                    "0 would refuse every file",
                    "leave it out (default 1000) or give how many times its stored size a file may decompress to",
                );
            }
            SourceSpec::Stored(StoredSpec {
                engine,
                version: st.version.clone(),
                database: st.database.clone(),
                prefix: st.prefix.trim_start_matches('/').to_string(),
                max_expansion: st.max_expansion.unwrap_or(DEFAULT_MAX_EXPANSION),
            })
        }
        SourceConfig::Restic(r) => snapshot_source(&mut c, RepoTool::Restic, r),
        SourceConfig::Borg(b) => snapshot_source(&mut c, RepoTool::Borg, b),
        SourceConfig::Barman(r) => SourceSpec::Barman(physical::barman_source(
            &mut c,
            r,
            path.parent().unwrap_or(Path::new(".")),
        )),
        SourceConfig::Mariabackup(r) => SourceSpec::Mariabackup(physical::mariabackup_source(
            &mut c,
            r,
            path.parent().unwrap_or(Path::new(".")),
        )),
        SourceConfig::Pgbackrest(r) => SourceSpec::Pgbackrest(Box::new(
            physical::pgbackrest_source(&mut c, r, path.parent().unwrap_or(Path::new("."))),
        )),
        SourceConfig::Mysql(my) => {
            if my.host.trim().is_empty() {
                c.push(
                    "source.host",
                    "the host is empty",
                    "give a host name or an IP address",
                );
            }
            if my.port == 0 {
                c.push(
                    "source.port",
                    "port 0 is not a port",
                    "MySQL and MariaDB listen on 3306 by default",
                );
            }
            if my.user.trim().is_empty() {
                c.push(
                    "source.user",
                    "the user name is empty",
                    "name a user with SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES",
                );
            }
            let password = c.password(&my.password);
            let chosen = [
                my.database.is_some(),
                my.databases.is_some(),
                my.all_databases,
            ]
            .iter()
            .filter(|b| **b)
            .count();
            let mut databases = Vec::new();
            if chosen != 1 {
                c.push(
                    "source.database",
                    if chosen == 0 {
                        "no database chosen"
                    } else {
                        "choose only one of database, databases, all_databases"
                    },
                    "write database = \"shop\", databases = [\"a\", \"b\"] or all_databases = true",
                );
            } else if let Some(d) = &my.database {
                databases.push(d.clone());
            } else if let Some(ds) = &my.databases {
                if ds.is_empty() {
                    c.push(
                        "source.databases",
                        "the list is empty",
                        "name at least one database, or use all_databases = true",
                    );
                }
                databases.extend(ds.iter().cloned());
            }
            for (i, d) in databases.iter().enumerate() {
                if d.trim().is_empty() || d.contains('`') || d.len() > 64 {
                    c.push(
                        format!("source.databases[{i}]"),
                        format!("`{d}` is not a database name"),
                        "use the database's name as SHOW DATABASES prints it",
                    );
                }
            }
            let min_dump_bytes = c.size("source.min_dump_bytes", &my.min_dump_bytes, 1024);
            SourceSpec::Mysql(MysqlSpec {
                host: my.host.clone(),
                port: my.port,
                user: my.user.clone(),
                password,
                databases,
                dump_tool: my.dump_tool.clone(),
                min_dump_bytes,
                tls: c.tls(
                    crate::tls::Naming::Mysql,
                    my.ssl_mode.as_deref(),
                    [&my.ssl_ca, &my.ssl_cert, &my.ssl_key],
                ),
                dump_in: c.dump_in(&my.dump_in),
            })
        }
    };

    let storage = validate_storage(&mut c, &raw.storage);

    let encryption = match (&raw.encryption, source.physical()) {
        (Some(enc), false) => {
            let mut recipients = Vec::new();
            for (i, r) in enc.recipients.iter().enumerate() {
                match age::x25519::Recipient::from_str(r.trim()) {
                Ok(_) => recipients.push(r.trim().to_string()),
                Err(e) => c.push(
                    format!("encryption.recipients[{i}]"),
                    format!("`{r}` is not an age X25519 recipient: {e}"),
                    "paste the public key printed by `firedrill keygen` or `age-keygen -y` (it starts with age1)",
                ),
            }
            }
            if enc.recipients.is_empty() && enc.recipients_file.is_none() {
                c.push(
                "encryption.recipients",
                "no recipients: the artifact could not be encrypted to anyone",
                "add recipients = [\"age1…\"] or recipients_file = \"…\" (`firedrill keygen` makes a key pair)",
            );
            }
            let identity = enc
            .identity
            .validate()
            .map_err(|m| {
                c.push(
                    "encryption.identity",
                    m,
                    "the identity is never inline: use { file = \"/etc/firedrill/identity.txt\" } or { env = \"FIREDRILL_IDENTITY\" }",
                )
            })
            .unwrap_or(SecretSource::Env { env: String::new() });
            Some(EncryptionSpec {
                recipients,
                recipients_file: enc.recipients_file.clone(),
                identity,
            })
        }
        (None, false) => {
            c.push(
                "encryption",
                "no [encryption] table: the artifact could not be encrypted, nor the sandbox decrypt it",
                "add [encryption] with recipients = [\"age1…\"] and identity = { file = \"…\" } (`firedrill keygen` makes a key pair)",
            );
            None
        }
        (Some(_), true) => {
            c.push(
                "encryption",
                "a drill of pgBackRest backups encrypts nothing itself: pgBackRest's repository has its own cipher",
                "remove [encryption]; give the repository's passphrase as source.cipher_pass",
            );
            None
        }
        (None, true) => None,
    };

    let level = raw.compression.level.unwrap_or(3);
    if !(1..=19).contains(&level) {
        c.push(
            "compression.level",
            format!("{level} is outside 1–19"),
            "3 is fast and good; 19 is slow and small",
        );
    }
    let compression = CompressionSpec {
        level,
        threads: raw.compression.threads.unwrap_or(0),
    };

    let sandbox = match &raw.sandbox {
        SandboxConfig::Docker(d) => {
            let memory_bytes = c.size("sandbox.memory", &d.memory, 2 << 30);
            if memory_bytes < 256 << 20 {
                c.push(
                    "sandbox.memory",
                    "less than 256MiB is too little for a database server",
                    "give at least \"512MiB\"",
                );
            }
            let cpus = d.cpus.unwrap_or(2.0);
            if !(cpus > 0.0 && cpus <= 1024.0) {
                c.push(
                    "sandbox.cpus",
                    format!("{cpus} is not a CPU count"),
                    "give a positive number of cores, e.g. 2 or 0.5",
                );
            }
            if let Some(img) = &d.image {
                if img.trim().is_empty() || img.contains(char::is_whitespace) {
                    c.push(
                        "sandbox.image",
                        format!("`{img}` is not an image reference"),
                        "write e.g. \"firedrill-sandbox-postgres:{major}\"",
                    );
                }
            }
            let major = match &d.major {
                None => None,
                Some(MajorVersion::Number(n)) => Some(n.to_string()),
                Some(MajorVersion::Text(t)) => {
                    let ok = !t.is_empty()
                        && t.split('.').count() <= 2
                        && t.split('.')
                            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
                    if !ok {
                        c.push(
                            "sandbox.major",
                            format!("`{t}` is not a major version"),
                            "write the version to restore into, e.g. 17 (PostgreSQL) or \"11.8\" (MariaDB)",
                        );
                    }
                    Some(t.clone())
                }
                Some(MajorVersion::Float(f)) => {
                    c.push(
                        "sandbox.major",
                        format!("{f} is written as a number"),
                        format!("write a release series as a string: major = \"{f}\""),
                    );
                    None
                }
            };
            if let (Some(_), Some(img)) = (&major, &d.image) {
                if !img.contains("{major}") {
                    c.push(
                        "sandbox.image",
                        format!("`{img}` names one version, so sandbox.major cannot choose it"),
                        "write {major} in the image reference, e.g. \"registry/pg:{major}\", or drop sandbox.image",
                    );
                }
            }
            SandboxSpec::Docker(DockerSpec {
                image: d.image.clone(),
                major,
                memory_bytes,
                cpus,
                docker_host: d.docker_host.clone(),
            })
        }
    };

    let def = StageTimeouts::default();
    let t = &raw.timeouts;
    let timeouts = StageTimeouts {
        dump: c.duration("timeouts.dump", &t.dump, def.dump),
        encrypt: c.duration("timeouts.encrypt", &t.encrypt, def.encrypt),
        upload: c.duration("timeouts.upload", &t.upload, def.upload),
        provision: c.duration("timeouts.provision", &t.provision, def.provision),
        restore: c.duration("timeouts.restore", &t.restore, def.restore),
        verify: c.duration("timeouts.verify", &t.verify, def.verify),
        teardown: c.duration("timeouts.teardown", &t.teardown, def.teardown),
    };

    let rdef = RetryPolicy::default();
    let attempts = raw.retry.attempts.unwrap_or(rdef.attempts);
    if attempts == 0 || attempts > 20 {
        c.push(
            "retry.attempts",
            format!("{attempts} attempts"),
            "give 1 (no retry) to 20",
        );
    }
    let retry = RetryPolicy {
        attempts: attempts.clamp(1, 20),
        backoff: c.duration("retry.backoff", &raw.retry.backoff, rdef.backoff),
    };

    let schedule = match &raw.schedule {
        None => DrillSchedule::default(),
        Some(sc) => {
            let jitter = c.duration("schedule.jitter", &sc.jitter, Duration::ZERO);
            // The time zone is a field of its own: a wrong one is named there, not at the
            // cron expression.
            let timezone_ok = match sc.timezone.as_deref() {
                None => true,
                Some(name) => match jiff::tz::TimeZone::get(name) {
                    Ok(_) => true,
                    Err(e) => {
                        c.push(
                            "schedule.timezone",
                            format!("`{name}` is not a time zone ({e})"),
                            "write an IANA name such as \"Europe/Berlin\" (`timedatectl list-timezones` lists them), or leave it out for UTC",
                        );
                        false
                    }
                },
            };
            let cron = sc.cron.as_ref().and_then(|expr| {
                if let Some(m) = cron_problem(expr) {
                    c.push(
                        "schedule.cron",
                        m,
                        "write minute hour day-of-month month day-of-week, e.g. cron = \"30 3 * * *\" (03:30 every day)",
                    );
                    return None;
                }
                if !timezone_ok {
                    return None;
                }
                crate::schedule::Schedule::parse(expr, sc.timezone.as_deref(), jitter)
                    .map_err(|m| c.push("schedule.cron", m, "write e.g. cron = \"30 3 * * *\""))
                    .ok()
            });
            let max_age = sc
                .max_age
                .as_ref()
                .map(|_| c.duration("schedule.max_age", &sc.max_age, Duration::from_secs(86_400)));
            let rto = sc
                .rto
                .as_ref()
                .map(|_| c.duration("schedule.rto", &sc.rto, Duration::from_secs(3600)));
            if let Some(u) = &sc.heartbeat_url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    c.push(
                        "schedule.heartbeat_url",
                        format!("`{u}` is not an http(s) URL"),
                        "write the full ping URL",
                    );
                }
            }
            DrillSchedule {
                cron,
                max_age,
                rto,
                heartbeat_url: sc.heartbeat_url.clone(),
                random_artifact: sc.random_artifact,
            }
        }
    };

    let mut seen = std::collections::HashSet::new();
    let mut assertions = check_assertions(&mut c, "assertion", &raw.assertions, &mut seen);
    let drill_dir = path.parent().unwrap_or(Path::new("."));
    for (i, f) in raw.assertions_from.iter().enumerate() {
        let file = if f.is_absolute() {
            f.clone()
        } else {
            drill_dir.join(f)
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                c.push(
                    format!("assertions_from[{i}]"),
                    format!("cannot read {}: {e}", file.display()),
                    "point it at a file of [[assertion]] tables, relative to the drill file",
                );
                continue;
            }
        };
        // Its problems are its own, each at its line there.
        let shared = read_shaped::<AssertionsFile>(&file, &text, assertions_schema());
        let mut sc = Collector {
            file: &file,
            problems: shared.problems,
        };
        if let Some(value) = &shared.value {
            assertions.extend(check_assertions(
                &mut sc,
                "assertion",
                &value.assertions,
                &mut seen,
            ));
        }
        c.problems.extend(sc.problems.into_iter().map(|mut p| {
            if let Some(doc) = &shared.doc {
                p.line = p.line.or_else(|| line_in(&p.field, doc, &text));
            }
            p
        }));
    }
    let checksums = ChecksumPlan {
        max_table_bytes: c.size(
            "fingerprint.checksum_max_table_size",
            &raw.fingerprint.checksum_max_table_size,
            ChecksumPlan::default().max_table_bytes,
        ),
        rotation: raw
            .fingerprint
            .checksum_rotation
            .unwrap_or(ChecksumPlan::default().rotation),
        slot: 0,
    };
    let anomaly = validate_anomaly(&mut c, &raw.anomaly, &raw.source);
    let max_shrink = anomaly.max_shrink;

    if !c.problems.is_empty() {
        return Err(Problems(c.problems));
    }
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(Drill {
        name,
        description: raw.description,
        file: path.to_path_buf(),
        base_dir,
        source,
        storage,
        encryption,
        compression,
        sandbox,
        timeouts,
        retry,
        retention: raw.retention,
        schedule,
        assertions,
        checksums,
        max_shrink,
        anomaly,
    })
}

/// `[anomaly]`: shares between 0% and 100%, sizes, and tables named `schema.table`.
fn validate_anomaly(
    c: &mut Collector<'_>,
    raw: &AnomalyConfig,
    source: &SourceConfig,
) -> AnomalyPolicy {
    fn share(c: &mut Collector<'_>, field: &str, v: &Option<String>, default: f64) -> f64 {
        match v {
            None => default,
            Some(v) => parse_percent(v).unwrap_or_else(|m| {
                c.push(
                    field,
                    m,
                    "write a share such as \"50%\" (\"100%\" turns the guard off)",
                );
                default
            }),
        }
    }
    let max_shrink = share(
        c,
        "anomaly.max_shrink",
        &raw.max_shrink,
        AnomalyPolicy::DEFAULT_MAX_SHRINK,
    );
    let table_min_rows = raw
        .table_min_rows
        .unwrap_or(AnomalyPolicy::DEFAULT_TABLE_MIN_ROWS);
    let table_min_bytes = c.size(
        "anomaly.table_min_size",
        &raw.table_min_size,
        AnomalyPolicy::DEFAULT_TABLE_MIN_BYTES,
    );
    // What names a table, and what comes before its name.
    let postgres = match source {
        SourceConfig::Postgres(_) | SourceConfig::Pgbackrest(_) | SourceConfig::Barman(_) => true,
        SourceConfig::Mysql(_) | SourceConfig::Mariabackup(_) => false,
        SourceConfig::Stored(s) => s.engine.trim() == "postgres",
        SourceConfig::Restic(s) | SourceConfig::Borg(s) => {
            s.engine.as_deref().is_none_or(|e| e.trim() == "postgres")
        }
    };
    let (form, qualifier, example) = if postgres {
        ("schema.table", "schema", "public.orders")
    } else {
        ("database.table", "database", "shop.orders")
    };
    let mut tables = std::collections::BTreeMap::new();
    for (name, t) in &raw.table {
        let field = format!("anomaly.table.\"{name}\"");
        let qualified = name
            .split_once('.')
            .is_some_and(|(s, t)| !s.trim().is_empty() && !t.trim().is_empty());
        if !qualified {
            c.push(
                field.clone(),
                format!("`{name}` does not name a table as `{form}`"),
                format!("name the table with its {qualifier}, e.g. [anomaly.table.\"{example}\"]"),
            );
        }
        let guard = TableGuard {
            max_shrink: share(c, &format!("{field}.max_shrink"), &t.max_shrink, max_shrink),
            min_rows: t.min_rows.unwrap_or(table_min_rows),
            min_bytes: c.size(&format!("{field}.min_size"), &t.min_size, table_min_bytes),
        };
        tables.insert(name.clone(), guard);
    }
    AnomalyPolicy {
        max_shrink,
        table_min_rows,
        table_min_bytes,
        tables,
    }
}

/// `"50%"` → 0.5; between 0% and 100%.
fn parse_percent(v: &str) -> Result<f64, String> {
    let n = v
        .trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("`{v}` is not a percentage"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("`{v}` is not between 0% and 100%"));
    }
    Ok(n / 100.0)
}

/// Checks a list of `[[assertion]]` tables; `seen` holds the names taken so far (names
/// are unique across the drill file and its shared files).
fn check_assertions(
    c: &mut Collector<'_>,
    prefix: &str,
    raw: &[AssertionConfig],
    seen: &mut std::collections::HashSet<String>,
) -> Vec<Assertion> {
    let mut out = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let field = format!("{prefix}[{i}]");
        if a.name.trim().is_empty() {
            c.push(
                format!("{field}.name"),
                "the name is empty",
                "name the assertion so a failure says which one",
            );
        } else if a
            .name
            .trim_start()
            .to_ascii_lowercase()
            .starts_with(crate::assertion::GUARD_PREFIX)
        {
            c.push(
                format!("{field}.name"),
                format!(
                    "`{}`: names starting with `{}` are the anomaly guards'",
                    a.name,
                    crate::assertion::GUARD_PREFIX
                ),
                "name the assertion otherwise (a run failed by a drill's own assertion can never be accepted as a guard's)",
            );
        } else if !seen.insert(a.name.clone()) {
            c.push(
                format!("{field}.name"),
                format!("`{}` is used twice", a.name),
                "give each assertion its own name",
            );
        }
        let kind = a.kind.as_deref().unwrap_or("sql");
        // Which fields each kind takes: anything else is a mistake worth naming.
        let allowed: &[&str] = match kind {
            "sql" => &["sql", "expect"],
            "freshness" => &["table", "column", "within"],
            "row_count" => &["table", "min", "max", "max_change"],
            "integrity" => &[],
            other => {
                c.push(
                    format!("{field}.kind"),
                    format!("unknown kind `{other}`"),
                    "use one of sql, freshness, row_count, integrity",
                );
                continue;
            }
        };
        let given = [
            ("sql", a.sql.is_some()),
            ("expect", a.expect.is_some()),
            ("table", a.table.is_some()),
            ("column", a.column.is_some()),
            ("within", a.within.is_some()),
            ("min", a.min.is_some()),
            ("max", a.max.is_some()),
            ("max_change", a.max_change.is_some()),
        ];
        for (name, set) in given {
            if set && !allowed.contains(&name) {
                c.push(
                    format!("{field}.{name}"),
                    format!("a `{kind}` assertion has no `{name}`"),
                    format!(
                        "a `{kind}` assertion takes: {}",
                        if allowed.is_empty() {
                            "only a name".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                );
            }
        }
        let need = |c: &mut Collector<'_>, v: &Option<String>, name: &str, example: &str| match v
            .as_deref()
            .map(str::trim)
        {
            Some(s) if !s.is_empty() => Some(s.to_string()),
            _ => {
                c.push(
                    format!("{field}.{name}"),
                    format!("a `{kind}` assertion needs `{name}`"),
                    format!("add e.g. {name} = {example}"),
                );
                None
            }
        };
        let check = match kind {
            "sql" => {
                let sql = need(c, &a.sql, "sql", "\"select count(*) from orders\"");
                let expect = need(c, &a.expect, "expect", "\">= 1000\" or \"no rows\"");
                match (sql, expect) {
                    (Some(sql), Some(e)) if e.eq_ignore_ascii_case("no rows") => {
                        Some(Check::NoRows { sql })
                    }
                    (Some(sql), Some(e)) => match Expectation::parse(&e) {
                        Ok(expect) => Some(Check::Sql { sql, expect }),
                        Err(m) => {
                            c.push(
                                format!("{field}.expect"),
                                m,
                                "write e.g. \">= 1000\", \"= 0\", \"!= 0\", \"between 1 and 5\" or \"no rows\"",
                            );
                            None
                        }
                    },
                    _ => None,
                }
            }
            "freshness" => {
                let table = need(c, &a.table, "table", "\"public.orders\"");
                let column = need(c, &a.column, "column", "\"created_at\"");
                let within = need(c, &a.within, "within", "\"26h\"").and_then(|w| {
                    parse_duration(&w)
                        .map_err(|m| {
                            c.push(
                                format!("{field}.within"),
                                m,
                                "write a duration such as \"26h\" or \"90m\"",
                            )
                        })
                        .ok()
                });
                match (table, column, within) {
                    (Some(table), Some(column), Some(within)) => Some(Check::Freshness {
                        table,
                        column,
                        within,
                    }),
                    _ => None,
                }
            }
            "row_count" => {
                let table = need(c, &a.table, "table", "\"public.orders\"");
                if a.min.is_none() && a.max.is_none() && a.max_change.is_none() {
                    c.push(
                        field.clone(),
                        "a `row_count` assertion with no bound checks nothing",
                        "add min, max and/or max_change (e.g. max_change = \"10%\")",
                    );
                }
                if let (Some(lo), Some(hi)) = (a.min, a.max) {
                    if lo > hi {
                        c.push(
                            format!("{field}.min"),
                            format!("min {lo} is above max {hi}"),
                            "swap them",
                        );
                    }
                }
                let max_change = a.max_change.as_deref().and_then(|v| {
                    parse_percent(v)
                        .map_err(|m| c.push(format!("{field}.max_change"), m, "write e.g. \"10%\""))
                        .ok()
                });
                table.map(|table| Check::RowCount {
                    table,
                    min: a.min,
                    max: a.max,
                    max_change,
                })
            }
            _ => Some(Check::Integrity),
        };
        if let Some(check) = check {
            out.push(Assertion {
                name: a.name.clone(),
                check,
            });
        }
    }
    out
}

/// What is wrong with a cron expression, naming the field of the expression at fault
/// (`the minute field \`61\``): the cron parser's own message points into the six-field
/// form it was handed, at a seconds field the user never wrote.
fn cron_problem<'a>(expr: &'a str) -> Option<String> {
    use std::str::FromStr;
    const NAMES: [(&str, &str); 7] = [
        ("second", "0–59"),
        ("minute", "0–59"),
        ("hour", "0–23"),
        ("day-of-month", "1–31"),
        ("month", "1–12 or JAN–DEC"),
        ("day-of-week", "1–7 (1 is Sunday) or SUN–SAT"),
        ("year", "1970–2099"),
    ];
    let fields: Vec<&str> = expr.split_whitespace().collect();
    // Where the user's fields sit among second … year.
    let first = match fields.len() {
        5 => 1,
        6 | 7 => 0,
        n => {
            return Some(format!(
                "`{expr}` has {n} fields; write 5 (minute hour day-of-month month day-of-week, e.g. \"30 3 * * *\") or cron's 6/7 with seconds first"
            ))
        }
    };
    let parses = |f: &[&str]| cron::Schedule::from_str(&f.join(" ")).is_ok();
    let full = |f: &[&'a str]| -> Vec<&'a str> {
        let mut all = vec!["0", "*", "*", "*", "*", "*"];
        if fields.len() == 7 {
            all.push("*");
        }
        all.splice(first..first + f.len(), f.iter().copied());
        all
    };
    if parses(&full(&fields)) {
        return None;
    }
    // Each field alone, the others `*`: the first that fails on its own is the culprit.
    for (i, value) in fields.iter().enumerate() {
        let mut alone = full(&[]);
        alone[first + i] = value;
        if !parses(&alone) {
            let (name, range) = NAMES[first + i];
            return Some(format!(
                "`{expr}`: the {name} field `{value}` is not valid (it takes {range}, lists a,b, ranges a-b and steps */n)"
            ));
        }
    }
    let why = cron::Schedule::from_str(&full(&fields).join(" "))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let why = why
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Some(format!("`{expr}` is not a cron expression: {}", why.trim()))
}

/// The default of `source.max_expansion`: how many times its stored size a file of
/// another tool may decompress to. SQL dumps compress 3 to 20 times, rarely 100 times; a
/// zstd bomb of repeated bytes expands about 32,000 times.
pub const DEFAULT_MAX_EXPANSION: u64 = 1000;

/// A restic or Borg source: what can be checked without the repository.
/// Checks a PostgreSQL server's settings, a drill's source or another drill's server
/// (`at` is where the table is: `source`, `source.server`).
pub(super) fn postgres_spec(
    c: &mut Collector<'_>,
    pg: &crate::config::raw::PostgresSourceConfig,
    at: &str,
) -> PostgresSpec {
    if pg.host.trim().is_empty() {
        c.push(
            format!("{at}.host"),
            "the host is empty",
            "give a host name, an IP address or a socket directory",
        );
    }
    if pg.port == 0 {
        c.push(
            format!("{at}.port"),
            "port 0 is not a port",
            "PostgreSQL listens on 5432 by default",
        );
    }
    if pg.database.trim().is_empty() {
        c.push(
            format!("{at}.database"),
            "the database name is empty",
            "name the database to dump",
        );
    }
    if pg.user.trim().is_empty() {
        c.push(
            format!("{at}.user"),
            "the user name is empty",
            "name a role that may read every table (pg_read_all_data)",
        );
    }
    let password = c.secret(&format!("{at}.password"), &pg.password);
    let min_dump_bytes = c.size(&format!("{at}.min_dump_bytes"), &pg.min_dump_bytes, 1024);
    PostgresSpec {
        host: pg.host.clone(),
        port: pg.port,
        database: pg.database.clone(),
        user: pg.user.clone(),
        password,
        pg_dump: pg.pg_dump.clone(),
        min_dump_bytes,
        tls: c.tls(
            crate::tls::Naming::Libpq,
            pg.sslmode.as_deref(),
            [&pg.sslrootcert, &pg.sslcert, &pg.sslkey],
        ),
        dump_in: c.dump_in(&pg.dump_in),
    }
}

fn snapshot_source(
    c: &mut Collector<'_>,
    tool: RepoTool,
    r: &crate::config::raw::SnapshotSourceConfig,
) -> SourceSpec {
    let name = tool.as_str();
    let repo = r.repository.trim();
    if repo.is_empty() {
        c.push(
            "source.repository",
            "the repository is empty",
            match tool {
                RepoTool::Restic => "write where the repository is, as restic spells it: \"/srv/restic\" or \"s3:https://host/bucket\"",
                RepoTool::Borg => "write where the repository is, as Borg spells it: \"/srv/borg\" or \"ssh://user@host:22/./repo\"",
            },
        );
    }
    if let Some(at) = repo.find('@') {
        let before = &repo[..at];
        if let Some(scheme) = before.find("://") {
            if before[scheme + 3..].contains(':') {
                c.push(
                    "source.repository",
                    "the repository's address carries a password (`user:password@`); it is not shown",
                    "take the password out of the address: give it in source.env (e.g. AWS_SECRET_ACCESS_KEY) or source.password, from env or a file",
                );
            }
        }
    }
    let password = c.password(&r.password);
    if tool == RepoTool::Restic && r.password.is_none() {
        c.push(
            "source.password",
            "a restic repository always has a password, and none is given",
            "add password = { env = \"RESTIC_PASSWORD\" } or { file = \"/etc/firedrill/restic-password\" }",
        );
    }
    let mut env = std::collections::BTreeMap::new();
    for (var, secret) in &r.env {
        let field = format!("source.env.{var}");
        let well_formed = !var.is_empty()
            && !var.starts_with(|ch: char| ch.is_ascii_digit())
            && var
                .chars()
                .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_');
        if !well_formed {
            c.push(
                &field,
                format!("`{var}` is not an environment variable's name"),
                "use upper-case letters, digits and _, e.g. AWS_ACCESS_KEY_ID",
            );
            continue;
        }
        let owned = [
            "RESTIC_PASSWORD",
            "RESTIC_REPOSITORY",
            "BORG_PASSPHRASE",
            "BORG_PASSCOMMAND",
            "BORG_REPO",
            "BORG_RSH",
            "BORG_BASE_DIR",
        ];
        if owned.iter().any(|o| var.starts_with(o)) {
            c.push(
                &field,
                format!("firedrill sets {var} itself"),
                "give the repository in source.repository, its password in source.password and Borg's ssh command in source.rsh",
            );
            continue;
        }
        match secret.validate() {
            Ok(s) => {
                env.insert(var.clone(), s);
            }
            Err(m) => c.push(
                &field,
                m,
                "use exactly one of { env = \"VAR\" } or { file = \"/path\" }",
            ),
        }
    }
    let only = |c: &mut Collector<'_>, field: &str, v: &Option<String>, other: &str| {
        if v.is_some() {
            c.push(
                format!("source.{field}"),
                format!("{field} selects {other} snapshots; this source is {name}"),
                match tool {
                    RepoTool::Restic => "select restic snapshots with tag, host and path",
                    RepoTool::Borg => "select Borg archives by name with archive = \"shop-*\"",
                },
            );
        }
    };
    match tool {
        RepoTool::Restic => {
            only(c, "archive", &r.archive, "Borg");
            only(c, "rsh", &r.rsh, "Borg (over SSH)");
        }
        RepoTool::Borg => {
            only(c, "tag", &r.tag, "restic");
            only(c, "host", &r.host, "restic");
            only(c, "path", &r.path, "restic");
        }
    }
    let within = r.within.as_ref().and_then(|w| match parse_duration(w) {
        Ok(d) => Some(d),
        Err(m) => {
            c.push(
                "source.within",
                m,
                "write a duration such as \"30d\" or \"12h\"",
            );
            None
        }
    });
    let snapshot = r.snapshot.as_deref().unwrap_or("latest").trim();
    if snapshot.is_empty() {
        c.push(
            "source.snapshot",
            "the snapshot is empty",
            "write \"latest\", \"random\" or a snapshot id",
        );
    } else if tool == RepoTool::Restic
        && !matches!(snapshot, "latest" | "random")
        && !(snapshot.len() >= 4 && snapshot.chars().all(|ch| ch.is_ascii_hexdigit()))
    {
        c.push(
            "source.snapshot",
            format!("`{snapshot}` is not a restic snapshot id"),
            "write \"latest\", \"random\" or a snapshot id as `restic snapshots` shows it (8 hex digits or more)",
        );
    }
    let pick = crate::pick::Pick::parse(snapshot, within);
    if r.within.is_some() && !matches!(pick, crate::pick::Pick::Random { .. }) {
        c.push(
            "source.within",
            "within only narrows snapshot = \"random\"",
            "add snapshot = \"random\", or leave within out",
        );
    }
    let engine = r.engine.as_deref().and_then(|e| {
        crate::engine::kind::Engine::parse(e.trim())
            .map_err(|_| {
                c.push(
                    "source.engine",
                    format!("`{e}` is not an engine"),
                    "write \"postgres\", \"mariadb\" or \"mysql\", or leave it out to read it from the dump",
                )
            })
            .ok()
    });
    if let Some(v) = &r.version {
        let series_ok = !v.is_empty()
            && v.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|ch| ch.is_ascii_digit()));
        if !series_ok {
            c.push(
                "source.version",
                format!("`{v}` is not a release series"),
                "write the server series the dumps came from, e.g. \"15\" or \"10.11\", or leave it out to read it from the dump",
            );
        }
    }
    if r.database.trim().is_empty() {
        c.push(
            "source.database",
            "the database name is empty",
            "name the database to restore into",
        );
    }
    if r.file.as_deref().is_some_and(|f| f.trim().is_empty()) {
        c.push(
            "source.file",
            "the file is empty",
            "give the dump's path inside the snapshot, or leave file out when the snapshot holds one file",
        );
    }
    if r.max_expansion == Some(0) {
        c.push(
            "source.max_expansion",
            "0 would refuse every dump",
            "leave it out (default 1000) or give how many times its size a dump may decompress to",
        );
    }
    let nonempty = |v: &Option<String>| {
        v.as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    SourceSpec::Snapshot(SnapshotSpec {
        tool,
        program: r.tool.clone().unwrap_or_else(|| PathBuf::from(name)),
        repository: repo.to_string(),
        password,
        env,
        pick,
        tag: nonempty(&r.tag),
        host: nonempty(&r.host),
        path: nonempty(&r.path),
        archive: nonempty(&r.archive),
        file: nonempty(&r.file),
        engine,
        version: r.version.clone(),
        database: r.database.clone(),
        max_expansion: r.max_expansion.unwrap_or(DEFAULT_MAX_EXPANSION),
        rsh: nonempty(&r.rsh),
    })
}
/// Files this small once decompressed are never refused, whatever their ratio.
pub const MIN_PLAIN_LIMIT: u64 = 64 << 20;

/// The bound on the decompressed size of a file another tool stored: `max_expansion`
/// times its stored size, and at least [`MIN_PLAIN_LIMIT`].
pub fn external_plain_limit(stored_bytes: u64, max_expansion: u64) -> u64 {
    stored_bytes
        .saturating_mul(max_expansion)
        .max(MIN_PLAIN_LIMIT)
}

/// The shape of a config file, checked against the JSON Schema its type generates (the one
/// `firedrill schema` prints) before serde reads it. serde stops at its first error and
/// places unknown and missing fields at their table's header; this walk goes through the
/// whole file and finds every unknown field, value of the wrong type and missing field,
/// each with the place of its key, so that one `validate` names them all.
mod shape {
    use std::ops::Range;

    use serde_json::Value as Json;
    use toml_edit::{Item, TableLike, Value};

    /// One step of a field's path: a key, or an element of an array.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) enum Seg {
        Key(String),
        Index(usize),
    }

    /// A path as problems name it: `source.password`, `assertion[2].expect`,
    /// `anomaly.table."public.orders".min_rows`.
    pub(super) fn dotted(path: &[Seg]) -> String {
        let mut s = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    if !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        s.push_str(k);
                    } else {
                        s.push_str(&format!("{k:?}"));
                    }
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// The path a problem names (see [`dotted`]), read back; `None` for what is not one.
    pub(super) fn parse_dotted(field: &str) -> Option<Vec<Seg>> {
        let mut segs = Vec::new();
        let mut rest = field;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('[') {
                let (n, r) = r.split_once(']')?;
                segs.push(Seg::Index(n.parse().ok()?));
                rest = r;
            } else if let Some(r) = rest.strip_prefix('"') {
                let end = r.find('"')?;
                segs.push(Seg::Key(r[..end].to_string()));
                rest = &r[end + 1..];
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                if end == 0 {
                    return None;
                }
                segs.push(Seg::Key(rest[..end].to_string()));
                rest = &rest[end..];
            }
            rest = rest.strip_prefix('.').unwrap_or(rest);
        }
        Some(segs)
    }

    /// Something in the file that does not fit the schema.
    #[derive(Debug)]
    pub(super) struct Misfit {
        pub path: Vec<Seg>,
        /// Where it is: the key's place, else its table's.
        pub at: Option<usize>,
        pub message: String,
        pub fix: String,
        /// Whether the rest of the file can still be read without this field (an unknown
        /// field, an optional one of the wrong type): then its values are checked too.
        pub droppable: bool,
    }

    /// A TOML value, whatever syntax wrote it (a `[table]` or an inline one, an array of
    /// tables or an inline array).
    enum Node<'a> {
        Table(&'a dyn TableLike, Option<Range<usize>>),
        Array(Vec<Node<'a>>, Option<Range<usize>>),
        Scalar(Scalar, Option<Range<usize>>),
    }

    #[derive(Clone, Copy)]
    enum Scalar {
        Str,
        Int(i64),
        Float,
        Bool,
        Datetime,
    }

    impl<'a> Node<'a> {
        fn of_item(item: &'a Item) -> Option<Node<'a>> {
            match item {
                Item::None => None,
                Item::Value(v) => Some(Node::of_value(v)),
                Item::Table(t) => Some(Node::Table(t, t.span())),
                Item::ArrayOfTables(a) => Some(Node::Array(
                    a.iter().map(|t| Node::Table(t, t.span())).collect(),
                    a.span(),
                )),
            }
        }

        fn of_value(v: &'a Value) -> Node<'a> {
            let span = v.span();
            match v {
                Value::String(_) => Node::Scalar(Scalar::Str, span),
                Value::Integer(i) => Node::Scalar(Scalar::Int(*i.value()), span),
                Value::Float(_) => Node::Scalar(Scalar::Float, span),
                Value::Boolean(_) => Node::Scalar(Scalar::Bool, span),
                Value::Datetime(_) => Node::Scalar(Scalar::Datetime, span),
                Value::Array(a) => Node::Array(a.iter().map(Node::of_value).collect(), span),
                Value::InlineTable(t) => Node::Table(t, span),
            }
        }

        fn span(&self) -> Option<usize> {
            match self {
                Node::Table(_, s) | Node::Array(_, s) | Node::Scalar(_, s) => {
                    s.as_ref().map(|s| s.start)
                }
            }
        }

        /// What it is, as a message says it.
        fn what(&self) -> &'static str {
            match self {
                Node::Table(..) => "a table",
                Node::Array(..) => "an array",
                Node::Scalar(Scalar::Str, _) => "a string",
                Node::Scalar(Scalar::Int(_), _) => "a whole number",
                Node::Scalar(Scalar::Float, _) => "a decimal number",
                Node::Scalar(Scalar::Bool, _) => "true or false",
                Node::Scalar(Scalar::Datetime, _) => "a date-time",
            }
        }
    }

    /// Where `path` is in `root`: the place of its deepest part that is in the file (the
    /// key itself, else the table it belongs in).
    pub(super) fn locate(root: &toml_edit::Table, path: &[Seg]) -> Option<usize> {
        let mut node = Node::Table(root, None);
        let mut at = None;
        for seg in path {
            let next = match (seg, node) {
                (Seg::Key(k), Node::Table(t, _)) => t.get_key_value(k).and_then(|(key, item)| {
                    let n = Node::of_item(item)?;
                    // A `[header]` table is where its header is; a key, where the key is.
                    let place = match (&n, item) {
                        (Node::Table(_, Some(s)), Item::Table(_)) => Some(s.start),
                        _ => key.span().map(|s| s.start).or(n.span()),
                    };
                    Some((n, place))
                }),
                (Seg::Index(i), Node::Array(items, _)) => items.into_iter().nth(*i).map(|n| {
                    let place = n.span();
                    (n, place)
                }),
                _ => None,
            };
            let Some((n, place)) = next else { break };
            at = place.or(at);
            node = n;
        }
        at
    }

    /// Walks a document against a JSON Schema (draft 7, as schemars writes it).
    pub(super) struct Walker<'s> {
        schema: &'s Json,
        pub misfits: Vec<Misfit>,
    }

    const SECRET_REF: &str = "#/definitions/SecretRef";

    impl<'s> Walker<'s> {
        pub(super) fn check(schema: &'s Json, root: &toml_edit::Table) -> Vec<Misfit> {
            let mut w = Walker {
                schema,
                misfits: Vec::new(),
            };
            w.walk(
                schema,
                &Node::Table(root, None),
                &mut Vec::new(),
                None,
                true,
            );
            w.misfits
        }

        /// The schema `s` stands for: through `$ref` and one-element `allOf`s.
        fn resolve(&self, mut s: &'s Json) -> &'s Json {
            for _ in 0..16 {
                if let Some(r) = s.get("$ref").and_then(Json::as_str) {
                    match r
                        .strip_prefix("#/definitions/")
                        .and_then(|name| self.schema.pointer(&format!("/definitions/{name}")))
                    {
                        Some(target) => s = target,
                        None => return s,
                    }
                } else if let Some([only]) = s.get("allOf").and_then(Json::as_array).map(|v| &v[..])
                {
                    s = only;
                } else {
                    return s;
                }
            }
            s
        }

        /// Whether `s` is (a wrapper of) the secret reference.
        fn is_secret(&self, mut s: &'s Json) -> bool {
            for _ in 0..16 {
                if s.get("$ref").and_then(Json::as_str) == Some(SECRET_REF) {
                    return true;
                }
                match s.get("allOf").and_then(Json::as_array).map(|v| &v[..]) {
                    Some([only]) => s = only,
                    _ => return false,
                }
            }
            false
        }

        fn misfit(
            &mut self,
            path: &[Seg],
            at: Option<usize>,
            message: String,
            fix: String,
            droppable: bool,
        ) {
            self.misfits.push(Misfit {
                path: path.to_vec(),
                at,
                message,
                fix,
                droppable,
            });
        }

        /// Checks `node` (at `path`, whose key is at `at`) against `schema`; `required`:
        /// whether the file cannot do without it.
        fn walk(
            &mut self,
            schema: &'s Json,
            node: &Node<'_>,
            path: &mut Vec<Seg>,
            at: Option<usize>,
            required: bool,
        ) {
            let at = at.or(node.span());
            if self.is_secret(schema) && !matches!(node, Node::Table(..)) {
                // Never quoted: it is most likely the secret itself.
                return self.misfit(
                    path,
                    at,
                    crate::secret::INLINE_SECRET.to_string(),
                    "secrets are never written inline: move it to an environment variable or a file, and write { env = \"VAR\" } or { file = \"/path\" }"
                        .into(),
                    !required,
                );
            }
            let schema = self.resolve(schema);
            if let Some(variants) = tagged_variants(schema) {
                return self.walk_tagged(&variants, node, path, at, required);
            }
            let Some(expected) = schema.get("type").and_then(Json::as_str) else {
                return;
            };
            match (expected, node) {
                ("object", Node::Table(t, _)) => self.walk_table(schema, *t, path, at),
                ("array", Node::Array(items, _)) => {
                    let item_schema = schema.get("items").unwrap_or(&Json::Bool(true));
                    for (i, item) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        // An element cannot be dropped without renumbering the others.
                        self.walk(item_schema, item, path, None, true);
                        path.pop();
                    }
                }
                ("string", Node::Scalar(Scalar::Str, _))
                | ("boolean", Node::Scalar(Scalar::Bool, _))
                | ("number", Node::Scalar(Scalar::Float | Scalar::Int(_), _)) => {}
                ("integer", Node::Scalar(Scalar::Int(n), _)) => {
                    let min = schema.get("minimum").and_then(Json::as_i64);
                    let max = schema.get("maximum").and_then(Json::as_i64);
                    let out = min.is_some_and(|m| *n < m) || max.is_some_and(|m| *n > m);
                    if out {
                        let range = match (min, max) {
                            (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
                            (Some(lo), None) => format!("{lo} or more"),
                            (None, Some(hi)) => format!("{hi} or less"),
                            (None, None) => String::new(),
                        };
                        self.misfit(
                            path,
                            at,
                            format!("{n} is outside {range}"),
                            format!("write a whole number of {range}"),
                            !required,
                        );
                    }
                }
                _ => {
                    let fix = format!("write {}", example(schema, path));
                    self.misfit(
                        path,
                        at,
                        format!("expected {}, found {}", expected_what(schema), node.what()),
                        fix,
                        !required,
                    );
                }
            }
        }

        /// A table of a `type`-tagged enum: the variant its `type` names.
        fn walk_tagged(
            &mut self,
            variants: &[(Vec<&'s str>, &'s Json)],
            node: &Node<'_>,
            path: &mut Vec<Seg>,
            at: Option<usize>,
            required: bool,
        ) {
            let all: Vec<&str> = variants
                .iter()
                .flat_map(|(names, _)| names.clone())
                .collect();
            let listed = all
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let Node::Table(t, _) = node else {
                return self.misfit(
                    path,
                    at,
                    format!("expected a table, found {}", node.what()),
                    format!("write a [{}] table with type = {listed}", dotted(path)),
                    !required,
                );
            };
            let chosen = match t.get_key_value("type") {
                None => {
                    // A variant that does not require its tag is the default.
                    match variants.iter().find(|(_, v)| !requires(v, "type")) {
                        Some((_, v)) => *v,
                        None => {
                            return self.misfit(
                                &[path.as_slice(), &[Seg::Key("type".into())]].concat(),
                                at,
                                "missing field `type`".into(),
                                format!("add type = one of {listed}"),
                                false,
                            )
                        }
                    }
                }
                Some((key, item)) => {
                    let key_at = key.span().map(|s| s.start);
                    let mut tag_path = path.clone();
                    tag_path.push(Seg::Key("type".into()));
                    match item.as_str() {
                        None => {
                            let what = Node::of_item(item).map_or("nothing", |n| n.what());
                            return self.misfit(
                                &tag_path,
                                key_at,
                                format!("expected a string, found {what}"),
                                format!("write type = one of {listed}"),
                                false,
                            );
                        }
                        Some(name) => {
                            match variants.iter().find(|(names, _)| names.contains(&name)) {
                                Some((_, v)) => *v,
                                None => {
                                    let fix = match closest(name, all.iter().copied()) {
                                        Some(c) => format!(
                                            "did you mean type = \"{c}\"? The types are {listed}"
                                        ),
                                        None => format!("use one of {listed}"),
                                    };
                                    return self.misfit(
                                        &tag_path,
                                        key_at,
                                        format!("unknown type `{name}`"),
                                        fix,
                                        false,
                                    );
                                }
                            }
                        }
                    }
                }
            };
            self.walk_table(chosen, *t, path, at);
        }

        fn walk_table(
            &mut self,
            schema: &'s Json,
            table: &dyn TableLike,
            path: &mut Vec<Seg>,
            at: Option<usize>,
        ) {
            let props = schema.get("properties").and_then(Json::as_object);
            let prop = |name: &str| props.and_then(|p| p.get(name));
            let others = schema.get("additionalProperties");
            for (name, item) in table.iter() {
                let Some(node) = Node::of_item(item) else {
                    continue;
                };
                let key_at = table
                    .get_key_value(name)
                    .and_then(|(k, _)| k.span())
                    .map(|s| s.start)
                    .or(node.span());
                path.push(Seg::Key(name.to_string()));
                match (prop(name), others) {
                    (Some(s), _) => {
                        let required = requires(schema, name);
                        self.walk(s, &node, path, key_at, required);
                    }
                    (None, Some(s)) if s.is_object() => self.walk(s, &node, path, key_at, true),
                    (None, Some(Json::Bool(true))) => {}
                    (None, _) => {
                        let allowed: Vec<&str> = props
                            .into_iter()
                            .flat_map(|p| p.keys())
                            .map(String::as_str)
                            .collect();
                        let listed = allowed
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let fix = match closest(name, allowed.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`? Otherwise remove it"),
                            None => "remove the field or correct its spelling".to_string(),
                        };
                        self.misfit(
                            path,
                            key_at,
                            if allowed.is_empty() {
                                format!("unknown field `{name}`: this table takes none")
                            } else {
                                format!("unknown field `{name}`, expected one of {listed}")
                            },
                            fix,
                            true,
                        );
                    }
                }
                path.pop();
            }
            for name in schema
                .get("required")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
            {
                if table.get(name).is_some_and(|i| !i.is_none()) {
                    continue;
                }
                path.push(Seg::Key(name.to_string()));
                let field_schema = prop(name).unwrap_or(&Json::Bool(true));
                let fix = format!("add {}", example(self.resolve(field_schema), path));
                self.misfit(path, at, format!("missing field `{name}`"), fix, false);
                path.pop();
            }
        }
    }

    fn requires(schema: &Json, name: &str) -> bool {
        schema
            .get("required")
            .and_then(Json::as_array)
            .is_some_and(|r| r.iter().any(|v| v == name))
    }

    /// The variants of a `type`-tagged enum, each with the tag values that choose it;
    /// `None` for any other schema (the secret reference's `oneOf` only says which of its
    /// own fields it needs).
    fn tagged_variants(schema: &Json) -> Option<Vec<(Vec<&str>, &Json)>> {
        let variants = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))?
            .as_array()?;
        variants
            .iter()
            .map(|v| {
                let tag = v.pointer("/properties/type")?;
                let names: Vec<&str> = match tag.get("const").and_then(Json::as_str) {
                    Some(c) => vec![c],
                    None => tag
                        .get("enum")?
                        .as_array()?
                        .iter()
                        .filter_map(Json::as_str)
                        .collect(),
                };
                Some((names, v))
            })
            .collect()
    }

    /// What a schema takes, as a message says it.
    fn expected_what(schema: &Json) -> &'static str {
        match schema.get("type").and_then(Json::as_str) {
            Some("string") => "a string",
            Some("integer") => "a whole number",
            Some("number") => "a number",
            Some("boolean") => "true or false",
            Some("array") => "an array",
            Some("object") => "a table",
            _ => "another value",
        }
    }

    /// How to write a value of `schema` at `path`: `port = 5432`, `user = "…"`,
    /// `a [storage] table`.
    fn example(schema: &Json, path: &[Seg]) -> String {
        let key = match path.last() {
            Some(Seg::Key(k)) => dotted(&[Seg::Key(k.clone())]),
            _ => String::new(),
        };
        let default = schema
            .get("default")
            .filter(|d| !d.is_object() && !d.is_array());
        let value = match (schema.get("type").and_then(Json::as_str), default) {
            (Some("object"), _) | (None, _) => {
                return if path.iter().any(|s| matches!(s, Seg::Index(_))) {
                    format!("{key} = {{ … }}")
                } else {
                    format!("a [{}] table", dotted(path))
                };
            }
            (Some("array"), _) => {
                let items = schema.get("items");
                if items.is_some_and(|i| i.get("$ref").is_some()) {
                    return format!("[[{}]] tables", dotted(path));
                }
                "[\"…\"]".to_string()
            }
            (Some(_), Some(d)) => d.to_string(),
            (Some("string"), None) => "\"…\"".to_string(),
            (Some("integer"), None) => schema
                .get("minimum")
                .and_then(Json::as_i64)
                .map_or(1, |m| m.max(1))
                .to_string(),
            (Some("number"), None) => "1.5".to_string(),
            (Some("boolean"), None) => "true".to_string(),
            (Some(_), None) => "…".to_string(),
        };
        let what = match schema.get("type").and_then(Json::as_str) {
            Some("integer" | "number") => " (a number, no quotes)",
            Some("string") => " (in quotes)",
            _ => "",
        };
        format!("{key} = {value}{what}")
    }

    /// The candidate `name` was most likely meant to be: at most two edits away.
    fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
        candidates
            .map(|c| (edits(name, c), c))
            .filter(|(d, c)| *d <= 2 && *d < c.chars().count().max(2))
            .min_by_key(|(d, _)| *d)
            .map(|(_, c)| c)
    }

    /// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`.
    fn edits(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[i - 2][j - 2] + 1);
                }
                d[i][j] = v;
            }
        }
        d[a.len()][b.len()]
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn paths_read_back_as_written() {
            for p in [
                "source.password",
                "assertion[2].expect",
                "anomaly.table.\"public.orders\".min_rows",
                "encryption.recipients[0]",
            ] {
                assert_eq!(dotted(&parse_dotted(p).unwrap()), p);
            }
        }

        #[test]
        fn near_misses_are_suggested() {
            let fields = ["host", "port", "password", "user", "database"];
            assert_eq!(closest("pasword", fields.iter().copied()), Some("password"));
            assert_eq!(closest("usr", fields.iter().copied()), Some("user"));
            assert_eq!(closest("prot", fields.iter().copied()), Some("port"));
            assert_eq!(closest("compression", fields.iter().copied()), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_on_files_of_other_tools() {
        assert_eq!(external_plain_limit(1, 1000), MIN_PLAIN_LIMIT);
        assert_eq!(external_plain_limit(1 << 30, 1000), 1000 << 30);
        assert_eq!(external_plain_limit(u64::MAX, 1000), u64::MAX);
    }

    const GOOD: &str = r#"
[source]
type = "postgres"
host = "db.internal"
database = "shop"
user = "backup"
password = { env = "SHOP_PG_PASSWORD" }

[storage]
type = "local"
path = "/var/lib/firedrill/artifacts"

[encryption]
recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
identity = { file = "/etc/firedrill/identity.txt" }

[timeouts]
restore = "30m"

[[assertion]]
name = "orders exist"
sql = "select count(*) from orders"
expect = ">= 1"
"#;

    #[test]
    fn tls_settings_are_read_in_each_familys_names_and_resolved_beside_the_drill() {
        let tls = GOOD.replace(
            "host = \"db.internal\"",
            "host = \"db.internal\"\nsslmode = \"verify-full\"\nsslrootcert = \"ca.pem\"",
        );
        let d = parse_drill(Path::new("drills/shop.toml"), &tls).unwrap();
        let SourceSpec::Postgres(pg) = &d.source else {
            panic!()
        };
        assert_eq!(pg.tls.mode, crate::tls::TlsMode::VerifyFull);
        assert_eq!(pg.tls.ca, Some(PathBuf::from("drills/ca.pem")));

        let bad = GOOD.replace(
            "host = \"db.internal\"",
            "host = \"db.internal\"\nsslmode = \"verify_identity\"\nsslcert = \"c.pem\"",
        );
        let problems = parse_drill(Path::new("shop.toml"), &bad).unwrap_err();
        let got: Vec<(String, String)> = problems
            .0
            .iter()
            .map(|p| (p.field.clone(), p.message.clone()))
            .collect();
        assert!(
            got.contains(&(
                "source.sslmode".into(),
                "`verify_identity` is not a TLS mode".into()
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "source.sslkey".into(),
                "source.sslcert is set but source.sslkey is not".into()
            )),
            "{got:?}"
        );
        let mysql = GOOD
            .replace("type = \"postgres\"", "type = \"mariadb\"")
            .replace(
                "host = \"db.internal\"",
                "host = \"db.internal\"\nssl_mode = \"VERIFY_CA\"",
            );
        let d = parse_drill(Path::new("shop.toml"), &mysql).unwrap();
        let SourceSpec::Mysql(my) = &d.source else {
            panic!()
        };
        assert_eq!(my.tls.mode, crate::tls::TlsMode::VerifyCa);
    }

    #[test]
    fn dump_in_defaults_to_auto_and_a_wrong_place_is_named() {
        use crate::engine::tool::DumpIn;
        let d = parse_drill(Path::new("shop.toml"), GOOD).unwrap();
        let SourceSpec::Postgres(pg) = &d.source else {
            panic!()
        };
        assert_eq!(pg.dump_in, DumpIn::Auto);
        let c = GOOD.replace(
            "host = \"db.internal\"",
            "host = \"db.internal\"\ndump_in = \"container\"",
        );
        let d = parse_drill(Path::new("shop.toml"), &c).unwrap();
        let SourceSpec::Postgres(pg) = &d.source else {
            panic!()
        };
        assert_eq!(pg.dump_in, DumpIn::Container);
        let bad = GOOD.replace(
            "host = \"db.internal\"",
            "host = \"db.internal\"\ndump_in = \"docker\"",
        );
        let problems = parse_drill(Path::new("shop.toml"), &bad).unwrap_err();
        let p = problems
            .0
            .iter()
            .find(|p| p.field == "source.dump_in")
            .unwrap_or_else(|| panic!("{problems:?}"));
        assert_eq!(p.message, "`docker` is not a place for the dump tool");
        assert!(p.fix.contains("\"container\""), "{}", p.fix);
    }

    #[test]
    fn an_upgrade_rehearsal_names_a_version() {
        let up = format!("{GOOD}\n[sandbox]\nmajor = 17\n");
        let d = parse_drill(Path::new("shop.toml"), &up).unwrap();
        let SandboxSpec::Docker(s) = &d.sandbox;
        assert_eq!(s.major.as_deref(), Some("17"));
        let float = format!("{GOOD}\n[sandbox]\nmajor = 11.8\n");
        let p = parse_drill(Path::new("shop.toml"), &float).unwrap_err();
        assert_eq!(p.0[0].field, "sandbox.major");
        assert!(p.0[0].fix.contains("major = \"11.8\""), "{:?}", p.0[0]);
    }

    #[test]
    fn every_assertion_kind_is_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("shared.toml"),
            "[[assertion]]\nname = \"orders exist\"\nkind = \"integrity\"\n\n[[assertion]]\nname = \"bad shared\"\nkind = \"freshness\"\ntable = \"t\"\n",
        )
        .unwrap();
        let text = format!(
            "assertions_from = [\"shared.toml\", \"missing.toml\"]\n{GOOD}{}",
            r#"
[[assertion]]
name = "fresh"
kind = "freshness"
table = "public.orders"
column = "placed_at"
within = "26h"

[[assertion]]
name = "count"
kind = "row_count"
table = "orders"
min = 10
max_change = "10%"

[[assertion]]
name = "orphans"
sql = "select 1"
expect = "no rows"

[[assertion]]
name = "between"
sql = "select 1"
expect = "between 1 and 2"

[[assertion]]
name = "odd"
kind = "checksum"

[[assertion]]
name = "wrong fields"
kind = "integrity"
sql = "select 1"

[[assertion]]
name = "no bounds"
kind = "row_count"
table = "t"

[anomaly]
max_shrink = "150%"
"#
        );
        let path = dir.path().join("d.toml");
        let problems = parse_drill(&path, &text).unwrap_err();
        let got: Vec<(String, String, String)> = problems
            .0
            .iter()
            .map(|p| {
                (
                    p.file.file_name().unwrap().to_string_lossy().into_owned(),
                    p.field.as_str().to_string(),
                    p.message.clone(),
                )
            })
            .collect();
        let want = [
            ("d.toml", "assertion[5].kind", "unknown kind `checksum`"),
            (
                "d.toml",
                "assertion[6].sql",
                "a `integrity` assertion has no `sql`",
            ),
            (
                "d.toml",
                "assertion[7]",
                "a `row_count` assertion with no bound checks nothing",
            ),
            (
                "shared.toml",
                "assertion[0].name",
                "`orders exist` is used twice",
            ),
            (
                "shared.toml",
                "assertion[1].column",
                "a `freshness` assertion needs `column`",
            ),
            (
                "shared.toml",
                "assertion[1].within",
                "a `freshness` assertion needs `within`",
            ),
        ];
        for (file, field, message) in want {
            assert!(
                got.iter()
                    .any(|g| g.0 == file && g.1 == field && g.2 == message),
                "missing {file} {field}: {message} in {got:#?}"
            );
        }
        assert!(got
            .iter()
            .any(|g| g.1 == "assertions_from[1]" && g.2.contains("missing.toml")));
        assert!(got
            .iter()
            .any(|g| g.1 == "anomaly.max_shrink" && g.2.contains("between 0% and 100%")));

        let ok = format!("assertions_from = [\"shared-ok.toml\"]\n{GOOD}");
        std::fs::write(
            dir.path().join("shared-ok.toml"),
            "[[assertion]]\nname = \"sound\"\nkind = \"integrity\"\n",
        )
        .unwrap();
        let d = parse_drill(&path, &ok).unwrap();
        assert_eq!(d.assertions.len(), 2);
        assert_eq!(d.assertions[1].check.kind(), "integrity");
        assert_eq!(d.max_shrink, 0.5);
    }

    #[test]
    fn a_good_file_validates_with_defaults() {
        let d = parse_drill(Path::new("drills/shop.toml"), GOOD).unwrap();
        assert_eq!(d.name, "shop");
        assert_eq!(d.timeouts.restore, Duration::from_secs(1800));
        assert_eq!(d.timeouts.provision, Duration::from_secs(300));
        assert_eq!(d.assertions.len(), 1);
        assert_eq!(d.base_dir, Path::new("drills"));
        let SourceSpec::Postgres(pg) = &d.source else {
            panic!("postgres")
        };
        assert_eq!(pg.port, 5432);
        assert_eq!(pg.min_dump_bytes, 1024);
    }

    #[test]
    fn anomaly_thresholds_per_drill_and_per_table() {
        let d = parse_drill(Path::new("shop.toml"), GOOD).unwrap();
        assert_eq!(d.anomaly, AnomalyPolicy::default());
        assert_eq!(
            (d.anomaly.max_shrink, d.anomaly.table_min_rows),
            (0.5, 1000)
        );
        assert_eq!(d.anomaly.table_min_bytes, 10 << 20);

        let text = format!(
            "{GOOD}{}",
            r#"
[anomaly]
max_shrink = "40%"
table_min_rows = 50
table_min_size = "1MiB"

[anomaly.table."public.orders"]
max_shrink = "20%"

[anomaly.table."public.plans"]
min_rows = 0
"#
        );
        let d = parse_drill(Path::new("shop.toml"), &text).unwrap();
        let a = &d.anomaly;
        assert_eq!(
            (a.max_shrink, a.table_min_rows, a.table_min_bytes),
            (0.4, 50, 1 << 20)
        );
        assert_eq!(d.max_shrink, 0.4);
        let orders = a.for_table("public.orders");
        assert_eq!(
            (orders.max_shrink, orders.min_rows, orders.min_bytes),
            (0.2, 50, 1 << 20)
        );
        let plans = a.for_table("public.plans");
        assert_eq!((plans.max_shrink, plans.min_rows), (0.4, 0));
        let other = a.for_table("public.customers");
        assert_eq!((other.max_shrink, other.min_rows), (0.4, 50));

        // Every problem at once, each with its field and a fix.
        let bad = format!(
            "{GOOD}{}",
            r#"
[anomaly]
max_shrink = "-5%"
table_min_size = "lots"

[anomaly.table."orders"]
max_shrink = "0.2"

[anomaly.table."public.items"]
min_size = "big"
"#
        );
        let p = parse_drill(Path::new("shop.toml"), &bad).unwrap_err().0;
        let got: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.field.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("anomaly.max_shrink", "`-5%` is not between 0% and 100%"),
                ("anomaly.table_min_size", got[1].1),
                (
                    "anomaly.table.\"orders\"",
                    "`orders` does not name a table as `schema.table`"
                ),
                (
                    "anomaly.table.\"orders\".max_shrink",
                    "`0.2` is not a percentage"
                ),
                ("anomaly.table.\"public.items\".min_size", got[4].1),
            ]
        );
        assert!(p.iter().all(|p| !p.fix.is_empty()));
        assert!(
            p[2].fix.contains("[anomaly.table.\"public.orders\"]"),
            "{}",
            p[2].fix
        );

        // MySQL and MariaDB name tables by their database.
        let mysql = GOOD.replace("type = \"postgres\"", "type = \"mariadb\"")
            + "\n[anomaly.table.\"orders\"]\nmax_shrink = \"20%\"\n";
        let p = parse_drill(Path::new("shop.toml"), &mysql).unwrap_err().0;
        assert!(
            p.iter().any(|p| p.message.contains("`database.table`")
                && p.fix.contains("[anomaly.table.\"shop.orders\"]")),
            "{p:?}"
        );

        // Unknown keys are refused and named, in the drill's table and in a table's own.
        for (typo, field) in [
            ("[anomaly]\nmax_shrinks = \"20%\"\n", "anomaly.max_shrinks"),
            (
                "[anomaly.table.\"public.orders\"]\nmax_shrink = \"20%\"\nmin_row = 5\n",
                "anomaly.table.\"public.orders\".min_row",
            ),
        ] {
            let p = parse_drill(Path::new("shop.toml"), &format!("{GOOD}\n{typo}"))
                .unwrap_err()
                .0;
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(p[0].message.contains("unknown field"), "{}", p[0].message);
            assert_eq!(p[0].field.as_str(), field);
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let bad = GOOD
            .replace(
                "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
                "age1nope",
            )
            .replace(
                "restore = \"30m\"",
                "restore = \"soon\"\nprovision = \"0s\"",
            )
            .replace("expect = \">= 1\"", "expect = \"> lots\"")
            .replace(
                "{ env = \"SHOP_PG_PASSWORD\" }",
                "{ env = \"A\", file = \"/b\" }",
            );
        let p = parse_drill(Path::new("drills/shop.toml"), &bad)
            .unwrap_err()
            .0;
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "source.password",
                "encryption.recipients[0]",
                "timeouts.provision",
                "timeouts.restore",
                "assertion[0].expect"
            ]
        );
        assert!(p.iter().all(|p| !p.fix.is_empty()));
        assert!(p.iter().all(|p| p.file == Path::new("drills/shop.toml")));
    }

    /// serde stopped at the first structural problem (six rounds of `validate` for one
    /// broken file) and placed unknown and missing fields at their table's header: every
    /// one is found at once now, each at its own line.
    #[test]
    fn every_structural_problem_at_once_each_at_its_line() {
        let text = r#"[source]
type = "postgres"
database = "shop"
usr = "backup"
pasword = { env = "X" }
port = "5432"

[storage]
type = "local"
paht = "/srv"

[encryption]
recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
identity = { file = "/etc/firedrill/identity.txt" }

[compression]
level = "high"

[sandbox]
type = "podman"
"#;
        let p = parse_drill(Path::new("six.toml"), text).unwrap_err().0;
        let places: Vec<String> = p.iter().map(Problem::place).collect();
        let got: Vec<(&str, &str)> = p
            .iter()
            .zip(&places)
            .map(|(p, place)| (place.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("source.usr (line 4)", "unknown field `usr`, expected one of `database`, `dump_in`, `host`, `min_dump_bytes`, `password`, `pg_dump`, `port`, `sslcert`, `sslkey`, `sslmode`, `sslrootcert`, `type`, `user`"),
                ("source.pasword (line 5)", "unknown field `pasword`, expected one of `database`, `dump_in`, `host`, `min_dump_bytes`, `password`, `pg_dump`, `port`, `sslcert`, `sslkey`, `sslmode`, `sslrootcert`, `type`, `user`"),
                ("source.port (line 6)", "expected a whole number, found a string"),
                ("source.user (line 1)", "missing field `user`"),
                ("storage.paht (line 10)", "unknown field `paht`, expected one of `path`, `prefix`, `type`"),
                ("storage.path (line 8)", "missing field `path`"),
                ("compression.level (line 17)", "expected a whole number, found a string"),
                ("sandbox.type (line 20)", "unknown type `podman`"),
            ]
        );
        let fixes: Vec<&str> = p.iter().map(|p| p.fix.as_str()).collect();
        assert_eq!(fixes[0], "did you mean `user`? Otherwise remove it");
        assert_eq!(fixes[1], "did you mean `password`? Otherwise remove it");
        assert_eq!(fixes[2], "write port = 5432 (a number, no quotes)");
        assert_eq!(fixes[3], "add user = \"…\" (in quotes)");
        assert_eq!(fixes[7], "use one of \"docker\"");
    }

    /// What can be left out (an unknown field, an optional field of the wrong type) does
    /// not hide the problems of the values around it.
    #[test]
    fn structural_and_value_problems_together() {
        let bad = GOOD
            .replace("host = \"db.internal\"", "host = \"db.internal\"\nhots = 1")
            .replace("restore = \"30m\"", "restore = \"soon\"\nverify = 90")
            .replace("expect = \">= 1\"", "expect = \"> lots\"\nkind = \"sqll\"");
        let p = parse_drill(Path::new("x.toml"), &bad).unwrap_err().0;
        let fields: Vec<String> = p.iter().map(Problem::place).collect();
        assert_eq!(
            fields,
            [
                "source.hots (line 5)",
                "timeouts.verify (line 20)",
                "timeouts.restore (line 19)",
                "assertion[0].kind (line 26)"
            ],
            "{p:#?}"
        );
        assert_eq!(p[1].message, "expected a string, found a whole number");
        assert_eq!(p[1].fix, "write verify = \"…\" (in quotes)");
    }

    #[test]
    fn a_secret_written_inline_is_named_at_its_line_without_its_value() {
        for inline in ["\"hunter2\"", "4711", "[\"hunter2\"]"] {
            let bad = GOOD.replace("{ env = \"SHOP_PG_PASSWORD\" }", inline);
            let p = parse_drill(Path::new("x.toml"), &bad).unwrap_err();
            assert_eq!(p.0.len(), 1, "{p}");
            assert_eq!(p.0[0].place(), "source.password (line 7)");
            assert!(p.0[0].message.contains("written inline"), "{p}");
            assert!(!p.to_string().contains("hunter2") && !p.to_string().contains("4711"));
        }
    }

    /// The cron parser's own message points (with a caret) into the six-field form it was
    /// handed, at a seconds field nobody wrote, and a wrong time zone was named as the cron.
    #[test]
    fn schedule_problems_name_their_field() {
        let with = |schedule: &str| {
            let text = format!("{GOOD}\n[schedule]\n{schedule}");
            parse_drill(Path::new("x.toml"), &text).unwrap_err().0
        };
        let p = with("cron = \"61 3 * * *\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].place(), "schedule.cron (line 26)");
        assert_eq!(
            p[0].message,
            "`61 3 * * *`: the minute field `61` is not valid (it takes 0–59, lists a,b, ranges a-b and steps */n)"
        );
        let p = with("cron = \"30 3 * JANUAR *\"\n");
        assert!(p[0].message.contains("the month field `JANUAR`"), "{p:?}");
        let p = with("cron = \"30 3 * * MON-FRI\"\ntimezone = \"Europe/Berlinn\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].place(), "schedule.timezone (line 27)");
        assert!(p[0].message.contains("`Europe/Berlinn` is not a time zone"));
        assert!(parse_drill(
            Path::new("x.toml"),
            &format!(
                "{GOOD}\n[schedule]\ncron = \"0 30 3 * * MON-FRI\"\ntimezone = \"Europe/Berlin\"\n"
            )
        )
        .is_ok());
    }

    #[test]
    fn shared_assertion_files_are_checked_to_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("shared.toml"),
            "[[assertion]]\nname = \"a\"\nsql = \"select 1\"\nexpect = \"= 1\"\nexpct = 2\n\n[[assertion]]\nsql = \"select 1\"\n",
        )
        .unwrap();
        let text = format!("assertions_from = [\"shared.toml\"]\n{GOOD}");
        let p = parse_drill(&dir.path().join("d.toml"), &text)
            .unwrap_err()
            .0;
        let got: Vec<(String, String)> = p
            .iter()
            .map(|p| {
                (
                    p.file.file_name().unwrap().to_string_lossy().into_owned(),
                    p.place(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("shared.toml".into(), "assertion[0].expct (line 5)".into()),
                ("shared.toml".into(), "assertion[1].name (line 7)".into()),
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused_and_named() {
        let bad = GOOD.replace("host = \"db.internal\"", "host = \"db.internal\"\nhots = 1");
        let p = parse_drill(Path::new("x.toml"), &bad).unwrap_err().0;
        assert_eq!(p.len(), 1);
        assert!(
            p[0].message.contains("unknown field `hots`"),
            "{}",
            p[0].message
        );
        assert!(p[0].field.starts_with("source.hots"), "{}", p[0].field);
    }

    #[test]
    fn inline_passwords_are_refused() {
        let bad = GOOD.replace("{ env = \"SHOP_PG_PASSWORD\" }", "\"hunter2\"");
        let p = parse_drill(Path::new("x.toml"), &bad).unwrap_err();
        assert!(p.0[0].field.starts_with("source"), "{p}");
        assert!(p.0[0].fix.contains("never written inline"), "{p}");
    }

    #[test]
    fn bad_names_and_missing_recipients() {
        let bad = format!("name = \"Shop DB\"\n{}", GOOD).replace(
            "recipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\n",
            "",
        );
        let p = parse_drill(Path::new("x.toml"), &bad).unwrap_err().0;
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["name", "encryption.recipients"]);
    }
}

#[cfg(test)]
mod snapshot_source_tests {
    use super::*;

    const REST: &str = r#"
[storage]
type = "local"
path = "/var/lib/firedrill/artifacts"

[encryption]
recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
identity = { file = "/etc/firedrill/identity.txt" }
"#;

    fn problems(source: &str) -> Vec<Problem> {
        let path = PathBuf::from("/tmp/drills/snap.toml");
        match parse_drill(&path, &format!("{source}\n{REST}")) {
            Ok(_) => Vec::new(),
            Err(p) => p.0,
        }
    }

    fn fields(p: &[Problem]) -> Vec<&str> {
        p.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn a_good_restic_and_borg_source_validate() {
        let ok = problems(
            "[source]\ntype = \"restic\"\nrepository = \"s3:http://h/b\"\npassword = { env = \"P\" }\ndatabase = \"shop\"\nsnapshot = \"random\"\nwithin = \"30d\"\nenv = { AWS_ACCESS_KEY_ID = { env = \"K\" } }",
        );
        assert!(ok.is_empty(), "{ok:?}");
        let ok = problems(
            "[source]\ntype = \"borg\"\nrepository = \"ssh://u@h:22/./r\"\ndatabase = \"crm\"\narchive = \"crm-*\"\nrsh = \"ssh -i k\"",
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn every_problem_of_a_snapshot_source_is_named() {
        let p = problems(
            "[source]\ntype = \"restic\"\nrepository = \"s3:https://key:secret@h/b\"\ndatabase = \"\"\narchive = \"x-*\"\nwithin = \"3d\"\nsnapshot = \"nope!\"\nenv = { RESTIC_PASSWORD = { env = \"X\" }, bad-name = { env = \"Y\" } }\nengine = \"oracle\"\nversion = \"fifteen\"",
        );
        let f = fields(&p);
        for want in [
            "source.repository",
            "source.password",
            "source.database",
            "source.archive",
            "source.within",
            "source.snapshot",
            "source.env.RESTIC_PASSWORD",
            "source.env.bad-name",
            "source.engine",
            "source.version",
        ] {
            assert!(f.contains(&want), "{want} not in {f:?}");
        }
        // The inline credentials are not repeated.
        assert!(p.iter().all(|p| !p.message.contains("secret@")), "{p:?}");
        let p = problems(
            "[source]\ntype = \"borg\"\nrepository = \"/srv/borg\"\ndatabase = \"d\"\ntag = \"nightly\"\nhost = \"h\"",
        );
        assert_eq!(fields(&p), ["source.tag", "source.host"], "{p:?}");
    }
}
