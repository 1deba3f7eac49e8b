//! MySQL and MariaDB: `mysqldump` / `mariadb-dump` on the host, with the rows in the dump
//! counted from the stream itself, and the `mariadb` / `mysql` client inside the sandbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;

use super::mysqldump_scan::{checksum_text, DumpScanner};
use super::tool::{Place, ToolCall, ToolSite};
use super::{
    tail, DumpInspector, DumpMeta, DumpSource, Engine, Inspection, StartedDump, BOUND_FN,
    MYSQL_CLIENT_SANDBOX, SANDBOX_IDENTITY, STAGED_ARTIFACT, STAGES_DIR, STAGE_REPORT,
};
use crate::config::MysqlSpec;
use crate::error::{Error, Result};
use crate::finding::Finding;
use crate::fingerprint::{ChecksumPlan, Fingerprint, TableFingerprint};
use crate::sandbox::{Sandbox, SandboxBackend};
use crate::secret::Secret;
use crate::tls::{Checked, Negotiated, TlsMode};

/// Schemas that belong to the server, never dumped as user data.
const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "sys", "information_schema", "performance_schema"];

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

pub use super::mysql_holdings::ident;

/// Columns of every base table of `databases`, in order: `schema, table, column, type`.
pub fn columns_sql(databases: &[String]) -> String {
    let list: Vec<String> = databases.iter().map(|d| sql_str(d)).collect();
    format!(
        "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE \
         FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
         ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
         WHERE t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND c.TABLE_SCHEMA IN ({}) \
         ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION",
        list.join(", ")
    )
}

/// The problems `CHECK TABLE` reported (rows of `Table, Op, Msg_type, Msg_text`): any
/// error, and a status other than OK.
pub fn check_table_problems(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                [table, _, kind, text] => {
                    let bad = kind.eq_ignore_ascii_case("error")
                        || (kind.eq_ignore_ascii_case("status")
                            && !text.eq_ignore_ascii_case("OK"));
                    bad.then(|| format!("{table}: {text}"))
                }
                _ => None,
            }
        })
        .collect()
}

/// `schema, table, bytes` of every base table of `databases`.
pub fn sizes_sql(databases: &[String]) -> String {
    let list: Vec<String> = databases.iter().map(|d| sql_str(d)).collect();
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(DATA_LENGTH, 0) FROM information_schema.TABLES \
         WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND TABLE_SCHEMA IN ({})",
        list.join(", ")
    )
}

/// `kind, count` of the schema objects of `databases`.
pub fn objects_sql(databases: &[String]) -> String {
    let list = databases
        .iter()
        .map(|d| sql_str(d))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT 'views', COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN ({list}) \
         UNION ALL SELECT 'functions', COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN ({list}) \
         UNION ALL SELECT 'triggers', COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN ({list}) \
         UNION ALL SELECT 'indexes', COUNT(*) FROM (SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME \
           FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({list})) i \
         UNION ALL SELECT 'sequences', COUNT(*) FROM information_schema.TABLES WHERE TABLE_TYPE = 'SEQUENCE' AND TABLE_SCHEMA IN ({list}) \
         UNION ALL SELECT 'events', COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN ({list})"
    )
}

/// Dumps the rows of some tables of the restored `database` inside the sandbox, with the
/// options the source's dump used, so that each row's text is the same.
pub fn sandbox_rows_dump_cmd(database: &str, tables: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        r#"tool=$(command -v mariadb-dump || command -v mysqldump) || { echo "no mariadb-dump or mysqldump in the image" >&2; exit 127; }
exec "$tool" --no-defaults --socket=/run/mysqld/mysqld.sock -uroot --single-transaction --no-create-info --skip-triggers --hex-blob --default-character-set=utf8mb4 --max-allowed-packet=1G "$@""#.into(),
        "firedrill-checksum".into(),
        database.into(),
    ];
    v.extend(tables.iter().map(|t| t.to_string()));
    v
}

/// Exact row counts of the given `(schema, table)`s in one statement.
pub fn counts_sql(tables: &[(String, String)]) -> String {
    tables
        .iter()
        .map(|(s, t)| {
            format!(
                "SELECT {}, {}, COUNT(*) FROM {}.{}",
                sql_str(s),
                sql_str(t),
                ident(s),
                ident(t)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

type Columns = BTreeMap<(String, String), Vec<(String, String)>>;

fn build_fingerprint(columns: Columns, counts: &BTreeMap<(String, String), u64>) -> Fingerprint {
    let mut tables: Vec<TableFingerprint> = columns
        .into_iter()
        .map(|((s, t), cols)| {
            let rows = counts.get(&(s.clone(), t.clone())).copied().unwrap_or(0);
            TableFingerprint::new(s, t, rows, cols)
        })
        .collect();
    tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Fingerprint {
        tables,
        ..Default::default()
    }
}

/// The client inside the sandbox: `-N -B` (no headers, tab-separated) on one statement.
pub fn client_cmd(engine: Engine, database: Option<&str>, sql: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "firedrill-sandbox",
        "client",
        engine.as_str(),
        "-N",
        "-B",
        "-e",
        sql,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(d) = database {
        v.push(d.to_string());
    }
    v
}

/// Undoes the client's batch-mode escaping of tabs, newlines and backslashes.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut it = field.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('0') => out.push('\0'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o)
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_rows(stdout: &str, fields: usize) -> Result<Vec<Vec<String>>> {
    stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<String> = l.split('\t').map(unescape).collect();
            if f.len() == fields {
                Ok(f)
            } else {
                Err(Error::internal(format!(
                    "unexpected client output line: {l}"
                )))
            }
        })
        .collect()
}

/// The restored databases' fingerprint, read with the client inside the sandbox.
pub async fn sandbox_fingerprint(
    engine: Engine,
    backend: &dyn SandboxBackend,
    sandbox: &Sandbox,
    databases: &[String],
    checksum: &[String],
) -> Result<Fingerprint> {
    let out = backend
        .exec(
            sandbox,
            &client_cmd(engine, None, &columns_sql(databases)),
            None,
        )
        .await?;
    if out.exit_code != 0 {
        return Err(
            Error::verification("cannot read the restored databases' columns")
                .with_stderr(tail(&out.stderr, 20)),
        );
    }
    let mut columns: Columns = BTreeMap::new();
    for f in parse_rows(&out.stdout, 4)? {
        columns
            .entry((f[0].clone(), f[1].clone()))
            .or_default()
            .push((f[2].clone(), f[3].clone()));
    }
    let tables: Vec<(String, String)> = columns.keys().cloned().collect();
    let mut counts = BTreeMap::new();
    for chunk in tables.chunks(500) {
        let out = backend
            .exec(sandbox, &client_cmd(engine, None, &counts_sql(chunk)), None)
            .await?;
        if out.exit_code != 0 {
            return Err(
                Error::verification("cannot count the restored tables' rows")
                    .with_stderr(tail(&out.stderr, 20)),
            );
        }
        for f in parse_rows(&out.stdout, 3)? {
            let n = f[2]
                .parse::<u64>()
                .map_err(|_| Error::internal(format!("row count `{}`", f[2])))?;
            counts.insert((f[0].clone(), f[1].clone()), n);
        }
    }
    let mut fp = build_fingerprint(columns, &counts);
    let out = backend
        .exec(
            sandbox,
            &client_cmd(engine, None, &objects_sql(databases)),
            None,
        )
        .await?;
    if out.exit_code != 0 {
        return Err(
            Error::verification("cannot count the restored schema objects")
                .with_stderr(tail(&out.stderr, 20)),
        );
    }
    fp.objects = parse_objects(&out.stdout)?;
    fp.holdings = sandbox_holdings(engine, backend, sandbox, databases).await?;
    // The checksummed tables are dumped again, from the restored server, and their rows
    // hashed exactly as the source's dump was.
    let mut by_db: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for q in checksum {
        if let Some(t) = fp.tables.iter().find(|t| &t.qualified() == q) {
            by_db.entry(&t.schema).or_default().push(&t.name);
        }
    }
    let mut sums = BTreeMap::new();
    for (db, tables) in by_db {
        let mut scanner = DumpScanner::in_database(db);
        let out = backend
            .exec_stdout_to(sandbox, &sandbox_rows_dump_cmd(db, &tables), &mut scanner)
            .await?;
        if out.exit_code != 0 {
            return Err(Error::verification(format!(
                "cannot dump the restored tables of {db} to checksum them"
            ))
            .with_stderr(tail(&out.stderr, 20)));
        }
        let scan = scanner.finish()?;
        for t in tables {
            let q = format!("{db}.{t}");
            let rows = scan.rows.get(&q).copied().unwrap_or(0);
            let sum = scan.sums.get(&q).copied().unwrap_or(0);
            sums.insert(q, checksum_text(rows, sum));
        }
    }
    for t in &mut fp.tables {
        t.checksum = sums.remove(&t.qualified());
    }
    Ok(fp)
}

fn parse_objects(stdout: &str) -> Result<BTreeMap<String, u64>> {
    let mut objects = BTreeMap::new();
    for f in parse_rows(stdout, 2)? {
        let n = f[1]
            .parse::<u64>()
            .map_err(|_| Error::internal(format!("object count `{}`", f[1])))?;
        objects.insert(f[0].clone(), n);
    }
    Ok(objects)
}

/// The restore's rewrite (`sed -E` arguments): the first line a newer dump tool writes to
/// switch the client to its sandbox mode (older clients stop at it), DEFINER clauses
/// outside data lines, and GTID_PURGED statements.
const REWRITE_SED: &str = r#"-e '1{\%^/\*M!999999\\- enable the sandbox mode \*/ *$%d}' -e '/^INSERT INTO /!s/DEFINER=`([^`]|``)*`@`([^`]|``)*`//g' -e 's/^(SET @@(GLOBAL|SESSION)\.GTID_PURGED)/-- \1/'"#;

/// Decrypts, decompresses and feeds the dump to the client, each tool with its stderr
/// apart ([`super::STAGE_REPORT`]). DEFINER clauses (their users do not exist in the
/// sandbox) and GTID_PURGED statements (a fresh server refuses them) are neutralised on
/// the way, and so is the first line newer dump tools write to switch the client to its
/// sandbox mode (`/*M!999999\- …`): a client older than the dump tool (MariaDB 10.5's, say)
/// stops at it as an unknown command, and the client gets `--sandbox` wherever it knows
/// it; data lines are left untouched.
pub fn restore_cmd(engine: Engine, plain_bytes: u64) -> Vec<String> {
    let script = format!(
        r#"set -euo pipefail
d={STAGES_DIR}; rm -rf "$d"; mkdir -p "$d"
{STAGE_REPORT}
{BOUND_FN}
{MYSQL_CLIENT_SANDBOX}
set +e
age -d -i {SANDBOX_IDENTITY} {STAGED_ARTIFACT} 2>"$d/decrypt" | zstd -d -q 2>"$d/decompress" \
  | firedrill_bound "$1" "the manifest's plain_bytes" 2>"$d/bound" \
  | sed -E {REWRITE} 2>"$d/rewrite" \
  | firedrill-sandbox client {engine} $client_sandbox >/dev/null 2>"$d/client"
firedrill_record "${{PIPESTATUS[*]}}" decrypt decompress bound rewrite client || exit 1
set -e
rm -f {STAGED_ARTIFACT}"#,
        engine = engine.as_str(),
        REWRITE = REWRITE_SED,
    );
    vec![
        "bash".into(),
        "-c".into(),
        script,
        "firedrill-restore".into(),
        plain_bytes.to_string(),
    ]
}

/// The client's error, from the first line it starts with `ERROR`: `ERROR 1064 (42000)
/// at line 12: …` from the server, or `ERROR at line 3: …` from the client itself. The
/// client stops at its first error; what it prints besides (a failed statement, when it
/// echoes one) is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub code: Option<u32>,
    pub sqlstate: Option<String>,
    /// The dump's line the statement started on.
    pub line: Option<u64>,
    /// The message, with the values it quotes elided ([`clean_client_message`]).
    pub message: String,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ERROR")?;
        if let Some(c) = self.code {
            write!(f, " {c}")?;
        }
        if let Some(s) = &self.sqlstate {
            write!(f, " ({s})")?;
        }
        if let Some(n) = self.line {
            write!(f, " at line {n}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Reads the client's first error line ([`ClientError`]).
pub fn client_error(stderr: &str) -> Option<ClientError> {
    let line = stderr.lines().find(|l| l.starts_with("ERROR"))?;
    let mut rest = line.strip_prefix("ERROR")?;
    let mut code = None;
    let mut sqlstate = None;
    let mut at = None;
    if let Some(r) = rest.strip_prefix(' ') {
        let digits = r.len() - r.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            code = r[..digits].parse().ok();
            rest = &r[digits..];
            if let Some(s) = rest
                .strip_prefix(" (")
                .and_then(|s| s.split_once(')'))
                .filter(|(s, _)| s.len() == 5 && s.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                sqlstate = Some(s.0.to_string());
                rest = s.1;
            }
        }
    }
    if let Some(r) = rest.strip_prefix(" at line ") {
        let digits = r.len() - r.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        at = r[..digits].parse().ok();
        rest = &r[digits..];
    }
    let message = rest.strip_prefix(": ")?;
    Some(ClientError {
        message: super::cap_line(&clean_client_message(code, message)),
        code,
        sqlstate,
        line: at,
    })
}

/// Server errors whose messages quote only names (tables, columns, keys, options,
/// accounts) and never a value: kept as they are.
const NAMES_ONLY: [u32; 21] = [
    1044, 1045, 1046, 1048, 1049, 1050, 1051, 1091, 1136, 1146, 1153, 1215, 1264, 1265, 1406, 1451,
    1452, 2002, 2006, 2013, 4025,
];

/// The client's message with the values it quotes elided. `near '…' at line 1` (1064)
/// quotes the statement; `Duplicate entry '…'` (1062), `Incorrect integer value: '…'`
/// (1366) and the like quote values; a value may hold quotes and even a newline, so
/// everything from the first quote to the end of the line goes, and only a trailing
/// `at line N` or `at row N` (positions, not data) is put back.
pub fn clean_client_message(code: Option<u32>, message: &str) -> String {
    if code.is_some_and(|c| NAMES_ONLY.contains(&c)) {
        return message.to_string();
    }
    let Some(i) = message.find(['\'', '"']) else {
        return message.to_string();
    };
    let mut out = format!("{}{}", &message[..i], super::ELIDED);
    for tail in [" at line ", " at row "] {
        if let Some(j) = message.rfind(tail) {
            let n = &message[j + tail.len()..];
            if j > i && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) {
                out.push_str(&message[j..]);
                break;
            }
        }
    }
    out
}

/// The client failed: by the code its error line starts with, a statement too big for the
/// server (1153), a server gone (2006, 2013), a dump that does not parse (1064), a client
/// command its sandbox mode refused, or another error, named with its values elided.
pub fn restore_error(exit: i32, stderr: &str) -> Error {
    let Some(e) = client_error(stderr) else {
        let own: Vec<String> = stderr
            .lines()
            .filter(|l| l.starts_with("firedrill-sandbox:"))
            .take(3)
            .map(super::cap_line)
            .collect();
        return Error::backup(format!(
            "the client could not restore the dump: it exited with status {exit} and named no error"
        ))
        .with_hint("a dump that does not restore is not a backup; restore it by hand in a kept sandbox (run --keep) to see more")
        .with_stderr(own.join("\n"));
    };
    let at = e.line.map(|n| format!(" at line {n}")).unwrap_or_default();
    match e.code {
        None if e.message.starts_with("Not allowed in the sandbox mode") => Error::backup(format!(
            "the dump runs a client command (`\\!`, system, source, tee){at}; the client's sandbox mode refused it and the restore stopped"
        ))
        .with_hint("mysqldump and mariadb-dump write no client commands; this file was altered or made by something else: do not restore it anywhere, and find out who wrote it"),
        Some(code @ (2006 | 2013)) => Error::backup(format!(
            "the restore lost its server{at}: {} ({code})",
            e.message
        ))
        .with_hint("a statement was bigger than max_allowed_packet or the server died; the sandbox allows 1G packets, so look for rows larger than that and at the server log"),
        Some(1153) => Error::backup(format!(
            "the restore sent a packet bigger than max_allowed_packet{at} (1153)"
        ))
        .with_hint("the dump holds a statement larger than the sandbox's 1G max_allowed_packet; dump with a smaller --net-buffer-length or split the largest rows"),
        // InnoDB's files grow until the disk is full; a MEMORY table stops at the
        // sandbox's max_heap_table_size. Either way the sandbox fell short, not the dump.
        Some(1114) => Error::infra(format!(
            "the sandbox could not hold a table of the dump{at}: {} (1114)",
            e.message
        ))
        .with_hint("free space where Docker keeps its volumes (`docker info` names the Docker Root Dir; `docker system df`, `firedrill reap --all`); for a MEMORY table, its size is above the sandbox's max_heap_table_size. The backup was not judged")
        .retryable(false),
        Some(1064) => Error::backup(format!(
            "the dump does not parse: a syntax error{at} (1064)"
        ))
        .with_hint("a dump cut short or altered after it was written does not parse (a finished dump ends with `-- Dump completed`); drill an earlier artifact and find out what damaged this one"),
        _ => Error::backup(format!("the client could not restore the dump: {e}"))
            .with_hint("read the client's error below; a dump that does not restore is not a backup"),
    }
    .with_stderr(e.to_string())
}

/// Counts the dump's rows as it passes and completes the fingerprint from them.
struct MysqlInspector {
    scanner: DumpScanner,
    /// The source's own counts in firedrill's snapshot, filled while the dump runs.
    source_counts: Arc<Mutex<BTreeMap<String, u64>>>,
    /// The tables whose checksum this run records.
    checksum: std::collections::BTreeSet<String>,
}

impl DumpInspector for MysqlInspector {
    fn update(&mut self, chunk: &[u8]) {
        self.scanner.update(chunk);
    }

    fn finish(self: Box<Self>, snapshot: &Fingerprint) -> Result<Inspection> {
        let scan = self.scanner.finish()?;
        let source_counts = self.source_counts.lock().expect("counts lock").clone();
        let mut notes = Vec::new();
        let mut tables = Vec::new();
        for t in &snapshot.tables {
            let q = t.qualified();
            match scan.rows.get(&q) {
                Some(rows) => {
                    let mut t = t.clone();
                    t.rows = *rows;
                    if self.checksum.contains(&q) {
                        let sum = scan.sums.get(&q).copied().unwrap_or(0);
                        t.checksum = Some(checksum_text(*rows, sum));
                    }
                    if let Some(src) = source_counts.get(&q) {
                        if src != rows {
                            notes.push(format!(
                                "{q}: {rows} rows in the dump, {src} at the source's snapshot (writes during the dump)"
                            ));
                        }
                    }
                    tables.push(t);
                }
                None => notes.push(format!(
                    "{q}: at the source but not in the dump (created while dumping?)"
                )),
            }
        }
        for (q, rows) in &scan.rows {
            if !snapshot.tables.iter().any(|t| &t.qualified() == q) {
                notes.push(format!(
                    "{q}: {rows} rows in the dump but not at the source's snapshot"
                ));
            }
        }
        if scan.definers > 0 {
            notes.push(format!(
                "{} DEFINER clauses will be neutralised at restore",
                scan.definers
            ));
        }
        if scan.gtid_purged > 0 {
            notes.push(format!(
                "{} GTID_PURGED statements will be neutralised at restore",
                scan.gtid_purged
            ));
        }
        Ok(Inspection {
            fingerprint: Some(Fingerprint {
                tables,
                ..snapshot.clone()
            }),
            notes,
        })
    }
}

/// Dumps MySQL or MariaDB databases with the server family's own dump tool.
pub struct MysqlSource {
    spec: MysqlSpec,
    password: Option<Secret>,
    site: ToolSite,
}

/// `10.11.6-MariaDB-0+deb12u1` → (Mariadb, "10.11"); `8.0.36` → (Mysql, "8.0").
pub fn parse_server_version(v: &str) -> Option<(Engine, String)> {
    let engine = if v.contains("MariaDB") {
        Engine::Mariadb
    } else {
        Engine::Mysql
    };
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let major = parts.next()?;
    let minor = parts.next()?;
    Some((engine, format!("{major}.{minor}")))
}

/// Reads a dump tool's `--version`: (family, "10.11" or "8.0", full version).
pub fn parse_tool_version(out: &str) -> Option<(Engine, String, String)> {
    let word_after = |key: &str| {
        out.split_whitespace()
            .skip_while(|w| *w != key)
            .nth(1)
            .map(|w| w.trim_end_matches(',').to_string())
    };
    if out.contains("MariaDB") {
        let v = out
            .split_whitespace()
            .find(|w| w.contains("MariaDB"))?
            .trim_end_matches(',')
            .to_string();
        let (_, series) = parse_server_version(&v)?;
        Some((Engine::Mariadb, series, v))
    } else {
        let v = word_after("Ver")?;
        let (_, series) = parse_server_version(&v)?;
        Some((Engine::Mysql, series, v))
    }
}

fn series_lt(a: &str, b: &str) -> bool {
    let p = |s: &str| -> (u32, u32) {
        let mut it = s.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    p(a) < p(b)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

impl MysqlSource {
    pub fn new(spec: MysqlSpec, password: Option<Secret>) -> Self {
        MysqlSource {
            spec,
            password,
            site: ToolSite::default(),
        }
    }

    /// Where the dump tool may run when this host's is not of the version the dump
    /// restores into (without it: this host's tool only).
    pub fn with_site(mut self, site: ToolSite) -> Self {
        self.site = site;
        self
    }

    fn target(&self) -> String {
        format!("{}:{}", self.spec.host, self.spec.port)
    }

    fn db_error(&self, e: mysql_async::Error) -> Error {
        match &e {
            mysql_async::Error::Server(se) => match se.code {
                1045 | 1044 | 1227 => Error::infra(format!("{} refused user {}: {}", self.target(), self.spec.user, se.message))
                    .with_hint("check source.user, the password source in source.password, and the user's grants (SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES)")
                    .retryable(false),
                1049 => Error::config(format!("{}: {}", self.target(), se.message)).with_hint("correct source.database / source.databases"),
                _ => Error::infra(format!("{}: {} ({})", self.target(), se.message, se.code)),
            },
            _ => {
                let target = self.target();
                super::unreachable_source(
                    &format!("cannot talk to MySQL/MariaDB at {target}"),
                    &target,
                    e,
                )
            }
        }
    }

    /// Connects as `source.ssl_mode` says. `preferred` falls back to plain TCP only when
    /// the server offers no TLS; `verify_ca` accepts a certificate for another name (the
    /// chain is still checked against the CA).
    /// What source.user may do on `databases`, judged (information_schema lists the
    /// role's own grants, and those of its current role on MariaDB).
    async fn access(
        &self,
        conn: &mut mysql_async::Conn,
        engine: Engine,
        series: &str,
        databases: &[String],
    ) -> Result<super::access::Access> {
        let e = |e| self.db_error(e);
        let (user, role): (String, Option<String>) = conn
            .query_first(if engine == Engine::Mariadb {
                "SELECT CURRENT_USER(), CURRENT_ROLE()"
            } else {
                "SELECT CURRENT_USER(), NULL"
            })
            .await
            .map_err(e)?
            .unwrap_or_default();
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut grantees = Vec::new();
        if let Some((name, host)) = user.rsplit_once('@') {
            grantees.push(format!("{}@{}", quote(name), quote(host)));
        }
        if let Some(r) = role.filter(|r| !r.is_empty()) {
            grantees.push(quote(&r));
            grantees.push(format!("{}@''", quote(&r)));
        }
        let list = grantees
            .iter()
            .map(|g| sql_str(g))
            .collect::<Vec<_>>()
            .join(", ");
        let global: Vec<String> = conn
            .query(format!(
                "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE IN ({list})"
            ))
            .await
            .map_err(e)?;
        let schema: Vec<(String, String)> = conn
            .query(format!(
                "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE IN ({list})"
            ))
            .await
            .map_err(e)?;
        let proc_select: Option<i64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE IN ({list}) \
                 AND TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'proc' AND PRIVILEGE_TYPE = 'SELECT'"
            ))
            .await
            .map_err(e)?;
        let views: Vec<String> = conn
            .query(format!(
                "SELECT DISTINCT TABLE_SCHEMA FROM information_schema.TABLES \
                 WHERE TABLE_TYPE = 'VIEW' AND TABLE_SCHEMA IN ({})",
                databases
                    .iter()
                    .map(|d| sql_str(d))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await
            .map_err(e)?;
        Ok(super::access::mysql(&super::access::MyFacts {
            user: grantees.first().cloned().unwrap_or(user),
            mariadb: engine == Engine::Mariadb,
            series: series.to_string(),
            global,
            schema,
            proc_select: proc_select.unwrap_or(0) > 0,
            databases: databases
                .iter()
                .map(|d| (d.clone(), views.contains(d)))
                .collect(),
        }))
    }

    /// The databases the dump takes: those named, else every user database.
    async fn databases(&self, conn: &mut mysql_async::Conn) -> Result<Vec<String>> {
        if !self.spec.databases.is_empty() {
            return Ok(self.spec.databases.clone());
        }
        let all: Vec<String> = conn
            .query("SHOW DATABASES")
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(all
            .into_iter()
            .filter(|d| !SYSTEM_SCHEMAS.contains(&d.to_ascii_lowercase().as_str()))
            .collect())
    }

    async fn connect(&self) -> Result<mysql_async::Conn> {
        let tls = &self.spec.tls;
        let first = self.connect_with(self.ssl_opts(None)).await?;
        let retried = match first {
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) if tls.mode == TlsMode::Prefer => self.connect_with(None).await?,
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) => {
                return Err(tls.no_tls_on_server(&self.target()));
            }
            Err(e) if tls.checked() == Checked::Ca => {
                // mysql_async cannot skip only the name check with rustls: connect again
                // under a name the certificate is issued for, so the chain is checked.
                match crate::tls::presented_names(&e).and_then(|n| n.into_iter().next()) {
                    Some(name) => self.connect_with(self.ssl_opts(Some(name))).await?,
                    None => Err(e),
                }
            }
            // MariaDB answers a plain login that `require_secure_transport` or a user's
            // REQUIRE SSL refuses with "Access denied" (1045): a TLS login tells which.
            Err(mysql_async::Error::Server(se))
                if se.code == 1045 && tls.mode == TlsMode::Disable =>
            {
                crate::tls::install_provider();
                let probe = mysql_async::SslOpts::default().with_danger_accept_invalid_certs(true);
                if let Ok(Ok(conn)) = self.connect_with(Some(probe)).await {
                    let _ = conn.disconnect().await;
                    return Err(Error::config(format!(
                        "{} refused a connection without TLS for user {} (it logs in over TLS: the server requires secure transport, or the user REQUIRE SSL)",
                        self.target(),
                        self.spec.user
                    ))
                    .with_hint(tls.plain_refused_hint()));
                }
                Err(mysql_async::Error::Server(se))
            }
            other => other,
        };
        retried.map_err(|e| self.connect_error(e))
    }

    /// One attempt, bounded by 15 s.
    async fn connect_with(
        &self,
        ssl: Option<mysql_async::SslOpts>,
    ) -> Result<std::result::Result<mysql_async::Conn, mysql_async::Error>> {
        let spec = &self.spec;
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(spec.host.clone())
            .tcp_port(spec.port)
            .user(Some(spec.user.clone()))
            .pass(self.password.as_ref().map(|p| p.expose().to_string()))
            .prefer_socket(false)
            .ssl_opts(ssl)
            .conn_ttl(Some(Duration::from_secs(60)));
        tokio::time::timeout(Duration::from_secs(15), mysql_async::Conn::new(opts))
            .await
            .map_err(|_| {
                Error::infra(format!(
                    "connecting to {} timed out after 15s",
                    self.target()
                ))
            })
    }

    fn ssl_opts(&self, name: Option<String>) -> Option<mysql_async::SslOpts> {
        let tls = &self.spec.tls;
        if tls.mode == TlsMode::Disable {
            return None;
        }
        // mysql_async builds its rustls config with the process's default provider.
        crate::tls::install_provider();
        let mut o = mysql_async::SslOpts::default()
            .with_danger_accept_invalid_certs(tls.checked() == Checked::Nothing)
            .with_danger_tls_hostname_override(name);
        if let Some(ca) = &tls.ca {
            o = o.with_root_certs(vec![ca.clone().into()]);
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            o = o.with_client_identity(Some(mysql_async::ClientIdentity::new(
                cert.clone().into(),
                key.clone().into(),
            )));
        }
        Some(o)
    }

    fn connect_error(&self, e: mysql_async::Error) -> Error {
        let tls = &self.spec.tls;
        if let Some(t) = tls.explain(&self.spec.host, &e) {
            return t.with_source(e);
        }
        if let mysql_async::Error::Server(se) = &e {
            // MySQL's require_secure_transport refuses a plain connection with 3159
            // (MariaDB says 1045: see `connect`).
            if se.code == 3159 {
                return Error::config(format!(
                    "{} refused a connection without TLS: {}",
                    self.target(),
                    se.message
                ))
                .with_hint(tls.plain_refused_hint());
            }
        }
        self.db_error(e)
    }

    /// The connection's TLS as the server sees it (`Ssl_version`, `Ssl_cipher`).
    async fn negotiated(&self, conn: &mut mysql_async::Conn) -> Result<Negotiated> {
        let rows: Vec<(String, String)> = conn
            .query("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
            .await
            .map_err(|e| self.db_error(e))?;
        let get = |k: &str| {
            rows.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let protocol = get("Ssl_version");
        Ok(Negotiated {
            checked: if protocol.is_some() {
                self.spec.tls.checked()
            } else {
                Checked::Nothing
            },
            cipher: get("Ssl_cipher"),
            protocol,
        })
    }

    /// Where the dump tool runs for a server of `engine` `series`, its name and version:
    /// the tool of the series the dump restores into (`sandbox.major`, else the server's),
    /// this host's when it is of that series (or `source.dump_tool` names one, or
    /// `source.dump_in = "host"`), else the one in that series' sandbox image.
    async fn place(
        &self,
        engine: Engine,
        series: &str,
        version: &str,
    ) -> Result<(Place, String, String)> {
        let tool = self.dump_tool(engine);
        let host = tool_version(&tool).await;
        let target = self.site.target(series);
        let target = if series_lt(&target, series) {
            series.to_string()
        } else {
            target
        };
        // A dump tool the drill names is the one it means (unless dump_in = "container"):
        // one of another family or older than the server is refused below.
        let fits = match &host {
            _ if self.spec.dump_tool.is_some() => true,
            Ok((e, s, _)) => *e == engine && *s == target,
            Err(_) => false,
        };
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        if !self.site.in_container(fits) {
            let (tool_engine, tool_series, tool_version) = host?;
            if tool_engine != engine {
                return Err(Error::infra(format!(
                    "{} is {}'s dump tool but the server is {} {version}; each family's dump tool is the one that reads it faithfully",
                    tool.display(),
                    tool_engine.as_str(),
                    engine.as_str()
                ))
                .with_hint(format!("install the {} client tools and set source.dump_tool to its dump tool", engine.as_str()))
                .retryable(false));
            }
            if series_lt(&tool_series, series) {
                return Err(Error::infra(format!(
                    "{} {tool_version} is older than the server ({version})",
                    tool.display()
                ))
                .with_hint(format!(
                    "install {} client tools of series {series} or newer and set source.dump_tool, or let firedrill run it from {} (source.dump_in = \"auto\")",
                    engine.as_str(),
                    engine.default_image(series)
                ))
                .retryable(false));
            }
            return Ok((Place::Host(tool.clone()), name(&tool), tool_version));
        }
        let why = match &host {
            Ok((_, _, v)) if !fits => format!(
                "{} on this host is {v}, not of the series the dump restores into ({} {target})",
                tool.display(),
                engine.as_str()
            ),
            Ok(_) => "source.dump_in = \"container\"".to_string(),
            Err(_) => format!("no {} on this host", tool.display()),
        };
        let image_engine = if engine == Engine::Mysql {
            Engine::Mysql
        } else {
            Engine::Mariadb
        };
        let place = self.site.container(image_engine, &target, &why).await?;
        let program = match engine {
            Engine::Mariadb => "mariadb-dump",
            _ => "mysqldump",
        };
        let (status, out, err) = super::tool::output(ToolCall::version(program), &place).await?;
        let image = place.describe().unwrap_or_default();
        let Some((e, s, v)) = status.is_none().then(|| parse_tool_version(&out)).flatten() else {
            return Err(Error::infra(format!(
                "{program} --version {image} said `{}`",
                super::first_lines(&format!("{out}{err}"), 2)
            ))
            .with_hint("use an image with the dump tool on its PATH (containers/build-offline.sh builds one)")
            .retryable(false));
        };
        if e != engine || series_lt(&s, series) {
            return Err(Error::infra(format!(
                "{program} {image} is {} {v}, not one for the server ({version})",
                e.as_str()
            ))
            .with_hint(engine.build_hint(series))
            .retryable(false));
        }
        Ok((place, program.to_string(), v))
    }

    fn dump_tool(&self, engine: Engine) -> PathBuf {
        if let Some(p) = &self.spec.dump_tool {
            return p.clone();
        }
        let candidates: &[&str] = match engine {
            Engine::Mariadb => &["mariadb-dump", "mysqldump"],
            _ => &["mysqldump"],
        };
        candidates
            .iter()
            .find_map(|c| which(c))
            .unwrap_or_else(|| PathBuf::from(candidates[0]))
    }
}

async fn tool_version(path: &Path) -> Result<(Engine, String, String)> {
    let text = super::tool_version_text(
        path,
        "install the client tools of the source's server family (Debian: mariadb-client; MySQL: mysql-client) or set source.dump_tool",
    )
    .await?;
    parse_tool_version(&text).ok_or_else(|| super::unreadable_version(path, &text))
}

/// The write rights a `SHOW GRANTS` line gives, if any: a backup user needs none.
pub fn write_grants(grant: &str) -> Vec<&'static str> {
    let g = grant.to_ascii_uppercase();
    let Some(privs) = g
        .strip_prefix("GRANT ")
        .and_then(|r| r.split(" ON ").next())
    else {
        return Vec::new();
    };
    if privs.contains("ALL PRIVILEGES") {
        return vec!["ALL PRIVILEGES"];
    }
    [
        "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE", "SUPER", "FILE",
    ]
    .into_iter()
    .filter(|p| privs.split(',').any(|x| x.trim() == *p))
    .collect()
}

#[async_trait]
impl DumpSource for MysqlSource {
    async fn server_series(&self) -> Result<(Engine, String)> {
        let mut conn = self.connect().await?;
        let version: String = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| self.db_error(e))?
            .unwrap_or_default();
        parse_server_version(&version).ok_or_else(|| {
            Error::config(format!("cannot read the server version `{version}`"))
                .with_hint("check that the source is MySQL or MariaDB")
        })
    }

    async fn doctor(&self) -> Vec<Finding> {
        let what = format!("source {}", self.target());
        let mut conn = match self.connect().await {
            Ok(c) => c,
            Err(e) => return vec![Finding::from_error(&what, &e)],
        };
        let mut out = Vec::new();
        let version: String = match conn.query_first("SELECT VERSION()").await {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => return vec![Finding::from_error(&what, &self.db_error(e))],
        };
        let Some((engine, series)) = parse_server_version(&version) else {
            out.push(Finding::fail(
                &what,
                format!("cannot read the server version `{version}`"),
                "check that the source is MySQL or MariaDB",
            ));
            return out;
        };
        out.push(Finding::ok(
            &what,
            format!("reachable, {} {version}", engine.as_str()),
        ));
        let negotiated = self.negotiated(&mut conn).await;
        out.push(self.spec.tls.finding(&self.spec.host, negotiated));
        match self.place(engine, &series, &version).await {
            Ok((place, name, v)) => out.push(Finding::ok(
                "dump tool",
                match place {
                    Place::Host(p) => format!("{} is {name} {v}", p.display()),
                    Place::Container { image, .. } => format!(
                        "{name} {v} runs in a container of {image} (this host's is older than the server or missing)"
                    ),
                },
            )),
            Err(e) => out.push(Finding::from_error("dump tool", &e)),
        }
        let user = format!("dump user {}", self.spec.user);
        match conn.query::<String, _>("SHOW GRANTS").await {
            Ok(grants) => {
                let mut writes: Vec<&str> = grants.iter().flat_map(|g| write_grants(g)).collect();
                writes.sort();
                writes.dedup();
                if writes.is_empty() {
                    out.push(Finding::ok(&user, "has no write rights".into()));
                } else {
                    out.push(Finding::warn(
                        &user,
                        format!("can write: {}", writes.join(", ")),
                        "a backup user needs only SELECT, SHOW VIEW, TRIGGER, EVENT and the right to read routines (the dump takes one transaction, so not LOCK TABLES): revoke the rest",
                    ));
                }
            }
            Err(e) => out.push(Finding::from_error(&user, &self.db_error(e))),
        }
        let access = match self.databases(&mut conn).await {
            Ok(dbs) => self.access(&mut conn, engine, &series, &dbs).await,
            Err(e) => Err(e),
        };
        match access {
            Ok(a) => out.extend(a.findings()),
            Err(e) => out.push(Finding::from_error(&user, &e)),
        }
        let _ = conn.disconnect().await;
        out
    }

    async fn start(&self, checksum_plan: &ChecksumPlan) -> Result<StartedDump> {
        let spec = &self.spec;
        let mut conn = self.connect().await?;
        let version: String = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| self.db_error(e))?
            .unwrap_or_default();
        let (engine, series) = parse_server_version(&version)
            .ok_or_else(|| Error::infra(format!("cannot read the server version `{version}`")))?;
        // The dump tool connects as this connection did (TLS or not, under `preferred`).
        let encrypted = self.negotiated(&mut conn).await?.protocol.is_some();

        let databases = self.databases(&mut conn).await?;
        if databases.is_empty() {
            return Err(Error::backup(format!(
                "{} has no user databases: a backup of it proves nothing",
                self.target()
            )));
        }
        // A grant the dump needs is named now: without some of them the dump tool fails,
        // without others it leaves triggers or routines out without a word.
        let access = self.access(&mut conn, engine, &series, &databases).await?;
        access.check()?;

        let (place, tool_name, tool_version) = self.place(engine, &series, &version).await?;

        // Columns and the source's own row counts in one consistent snapshot. The dump
        // takes its own snapshot; the counts that matter are the dump's, read from its
        // stream, and these are reported beside them.
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(|e| self.db_error(e))?;
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .map_err(|e| self.db_error(e))?;
        let rows: Vec<(String, String, String, String)> = conn
            .query(columns_sql(&databases))
            .await
            .map_err(|e| self.db_error(e))?;
        let mut columns: Columns = BTreeMap::new();
        for (s, t, c, ty) in rows {
            columns.entry((s, t)).or_default().push((c, ty));
        }
        let tables: Vec<(String, String)> = columns.keys().cloned().collect();
        if tables.is_empty() {
            return Err(Error::backup(format!(
                "databases {} on {} hold no tables: a backup of them proves nothing",
                databases.join(", "),
                self.target()
            ))
            .with_hint("check source.database(s), and that source.user can see the tables"));
        }
        let sizes: Vec<(String, String, u64)> = conn
            .query(sizes_sql(&databases))
            .await
            .map_err(|e| self.db_error(e))?;
        let objects: Vec<(String, u64)> = conn
            .query(objects_sql(&databases))
            .await
            .map_err(|e| self.db_error(e))?;
        let sizes: BTreeMap<String, u64> = sizes
            .into_iter()
            .map(|(s, t, b)| (format!("{s}.{t}"), b))
            .collect();
        // The fingerprint's row counts come from the dump's own stream (the inspector);
        // the server's counts in this snapshot only explain differences ("writes during
        // the dump"), so they are taken beside the running dump rather than before it.
        let source_counts: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
        let mut fingerprint = build_fingerprint(columns, &BTreeMap::new());
        fingerprint.objects = objects.into_iter().collect();
        fingerprint.holdings = {
            use super::mysql_holdings::{counters_sql, definitions_sql, holdings};
            let rows = |v: Vec<(String, String, String)>| -> Vec<Vec<String>> {
                v.into_iter().map(|(a, b, c)| vec![a, b, c]).collect()
            };
            let counters: Vec<(String, String, String)> = conn
                .query(counters_sql(&databases))
                .await
                .map_err(|e| self.db_error(e))?;
            let definitions: Vec<(String, String, String)> = conn
                .query(definitions_sql(&databases))
                .await
                .map_err(|e| self.db_error(e))?;
            holdings(&rows(counters), &[], &rows(definitions))?
        };
        for t in &mut fingerprint.tables {
            t.bytes = sizes.get(&t.qualified()).copied();
        }
        let checksum = checksum_plan.select(
            &fingerprint
                .tables
                .iter()
                .map(|t| (t.qualified(), t.bytes.unwrap_or(0)))
                .collect::<Vec<_>>(),
        );

        // The password goes through an option file read from stdin: never argv, and not
        // the deprecated MYSQL_PWD.
        let mut args: Vec<String> = [
            "--defaults-extra-file=/dev/stdin",
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--default-character-set=utf8mb4",
            "--max-allowed-packet=1G",
            "--protocol=TCP",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--host={}", spec.host));
        args.push(format!("--port={}", spec.port));
        args.push(format!("--user={}", spec.user));
        if engine == Engine::Mysql {
            args.push("--set-gtid-purged=OFF".into());
        }
        args.push("--databases".into());
        args.extend(databases.iter().cloned());
        let mut options = String::from("[client]\n");
        options.push_str(&crate::tls::mysql_options(
            &spec.tls,
            engine == Engine::Mariadb,
            encrypted,
        ));
        if let Some(p) = &self.password {
            options.push_str(&format!(
                "password=\"{}\"\n",
                crate::tls::escape_option(p.expose())
            ));
        }
        let call = ToolCall {
            name: tool_name.clone(),
            args,
            env: Vec::new(),
            env_remove: vec!["MYSQL_PWD"],
            secret_env: None,
            stdin: options.into_bytes(),
            files: spec.tls.files(),
        };
        let spawned = super::tool::spawn(call, &place).await?;
        // Only tables up to checksum_max_table_size: a second full scan of a big table
        // beside the dump would slow the dump, for a note.
        let tables: Vec<(String, String)> = tables
            .into_iter()
            .filter(|(s, t)| {
                sizes.get(&format!("{s}.{t}")).copied().unwrap_or(0)
                    <= checksum_plan.max_table_bytes
            })
            .collect();
        let counted = source_counts.clone();
        tokio::spawn(async move {
            for chunk in tables.chunks(500) {
                match conn
                    .query::<(String, String, u64), _>(counts_sql(chunk))
                    .await
                {
                    Ok(rows) => {
                        let mut c = counted.lock().expect("counts lock");
                        for (s, t, n) in rows {
                            c.insert(format!("{s}.{t}"), n);
                        }
                    }
                    Err(e) => {
                        tracing::debug!("counting the source's rows: {e}");
                        break;
                    }
                }
            }
            let _ = conn.query_drop("COMMIT").await;
            let _ = conn.disconnect().await;
        });
        let completion = super::dump_completion(
            spawned.exit,
            self.password.clone(),
            tool_name.clone(),
            Box::new(()),
        );

        Ok(StartedDump {
            meta: DumpMeta {
                engine,
                server_version: version.clone(),
                server_major: series,
                databases,
                tool: tool_name,
                tool_version,
                tool_place: place.describe(),
                format: "sql".into(),
                notes: access.unseen,
            },
            fingerprint,
            beside: None,
            output: spawned.output,
            completion,
            inspector: Box::new(MysqlInspector {
                scanner: DumpScanner::new(),
                source_counts,
                checksum,
            }),
        })
    }
}

/// What the restored databases' objects hold, read with the client in the sandbox.
async fn sandbox_holdings(
    engine: Engine,
    backend: &dyn SandboxBackend,
    sandbox: &Sandbox,
    databases: &[String],
) -> Result<crate::fingerprint::Holdings> {
    use super::mysql_holdings::{column_max_sql, counters_sql, definitions_sql, holdings};
    let query = |sql: String, what: &'static str, fields: usize| async move {
        let out = backend
            .exec(sandbox, &client_cmd(engine, None, &sql), None)
            .await?;
        if out.exit_code != 0 {
            return Err(
                Error::verification(format!("cannot read the restored databases' {what}"))
                    .with_stderr(tail(&out.stderr, 5)),
            );
        }
        parse_rows(&out.stdout, fields)
    };
    let counters = query(counters_sql(databases), "AUTO_INCREMENT counters", 3).await?;
    let columns: Vec<(String, String)> = counters
        .iter()
        .map(|r| (r[0].clone(), r[2].clone()))
        .collect();
    let mut maxima = Vec::new();
    for chunk in columns.chunks(200) {
        maxima.extend(query(column_max_sql(chunk), "counters' columns", 2).await?);
    }
    let definitions = query(definitions_sql(databases), "definitions", 3).await?;
    holdings(&counters, &maxima, &definitions)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_restore_rewrite_drops_the_sandbox_line_definers_and_gtid_purged() {
        let input = "/*M!999999\\- enable the sandbox mode */ \n\
-- MariaDB dump 10.19\n\
/*!50003 CREATE*/ /*!50017 DEFINER=`app`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1 */;;\n\
SET @@GLOBAL.GTID_PURGED='0-1-2';\n\
INSERT INTO x VALUES ('DEFINER=`a`@`b`','/*M!999999\\- enable the sandbox mode */');\n";
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("sed -E {}", super::REWRITE_SED))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(input.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        let got = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            got,
            "-- MariaDB dump 10.19\n\
/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1 */;;\n\
-- SET @@GLOBAL.GTID_PURGED='0-1-2';\n\
INSERT INTO x VALUES ('DEFINER=`a`@`b`','/*M!999999\\- enable the sandbox mode */');\n"
        );
    }

    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_server_version("10.11.6-MariaDB-0+deb12u1"),
            Some((Engine::Mariadb, "10.11".into()))
        );
        assert_eq!(
            parse_server_version("8.0.36"),
            Some((Engine::Mysql, "8.0".into()))
        );
        assert_eq!(
            parse_tool_version(
                "mariadb-dump from 11.4.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)"
            ),
            Some((Engine::Mariadb, "11.4".into(), "11.4.2-MariaDB".into()))
        );
        assert_eq!(
            parse_tool_version(
                "mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)"
            ),
            Some((Engine::Mariadb, "10.11".into(), "10.11.6-MariaDB".into()))
        );
        assert_eq!(
            parse_tool_version(
                "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)"
            ),
            Some((Engine::Mysql, "8.0".into(), "8.0.36".into()))
        );
        assert!(series_lt("10.6", "10.11"));
        assert!(!series_lt("11.4", "10.11"));
    }

    #[test]
    fn grants_that_write() {
        assert_eq!(
            write_grants("GRANT SELECT, LOCK TABLES, SHOW VIEW ON *.* TO `b`@`%`"),
            Vec::<&str>::new()
        );
        assert_eq!(
            write_grants("GRANT ALL PRIVILEGES ON `shop`.* TO `b`@`%`"),
            ["ALL PRIVILEGES"]
        );
        assert_eq!(
            write_grants("GRANT SELECT, INSERT, DELETE ON `shop`.* TO `b`@`%`"),
            ["INSERT", "DELETE"]
        );
        assert_eq!(
            write_grants("GRANT USAGE ON *.* TO `b`@`%` IDENTIFIED BY PASSWORD '*X'"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn check_table_output() {
        let out = "d.a\tcheck\tstatus\tOK\nd.b\tcheck\terror\tTable 'd.b' is marked as crashed\nd.b\tcheck\tstatus\tOperation failed\nd.c\tcheck\tnote\tThe storage engine doesn't support check\n";
        assert_eq!(
            check_table_problems(out),
            [
                "d.b: Table 'd.b' is marked as crashed",
                "d.b: Operation failed"
            ]
        );
    }

    #[test]
    fn sql_quoting() {
        assert_eq!(sql_str("it's"), "'it''s'");
        assert_eq!(ident("we`ird"), "`we``ird`");
        assert!(counts_sql(&[("a".into(), "b".into())]).contains("FROM `a`.`b`"));
        assert_eq!(unescape("a\\tb\\\\c"), "a\tb\\c");
    }
}
