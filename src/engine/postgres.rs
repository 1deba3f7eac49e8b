//! PostgreSQL: `pg_dump` in custom format from an exported snapshot on the host, and
//! `pg_restore` plus `psql` inside the sandbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::tool::{Place, ToolCall, ToolSite};
use super::{
    DumpMeta, DumpSource, Engine, NoInspection, StartedDump, SANDBOX_IDENTITY, STAGES_DIR,
    STAGE_REPORT,
};
use crate::config::PostgresSpec;
use crate::error::{Error, Result};
use crate::finding::Finding;
use crate::fingerprint::{ChecksumPlan, Fingerprint, TableFingerprint};
use crate::secret::Secret;
use crate::tls::{Checked, Negotiated, TlsMode};

/// The user tables (ordinary and partitioned; not catalogs, not tables owned by
/// extensions) as `pg_class c` joined to `pg_namespace n`: one definition for the
/// fingerprint and for the check that there is anything to back up.
macro_rules! user_tables {
    () => {
        r#"
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"#
    };
}

/// One JSON array of `[schema, table, exact row count, [[column, type], …], bytes]` for every user
/// table (ordinary and partitioned; not catalogs, not tables owned by extensions). Run on
/// the source inside the dump's snapshot and on the sandbox after restore: the same query
/// on both sides makes the comparison exact.
pub const FINGERPRINT_SQL: &str = concat!(
    r#"SELECT coalesce(json_agg(json_build_array(s, t, r, cols, b) ORDER BY s, t), '[]')::text FROM (
  SELECT n.nspname AS s, c.relname AS t, pg_relation_size(c.oid) AS b,
    (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint AS r,
    coalesce((SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::json) AS cols"#,
    user_tables!(),
    "\n) x"
);

/// Whether the snapshot holds a user table at all ([`FINGERPRINT_SQL`]'s tables): asked
/// before pg_dump starts, so that an empty database fails at once and nothing is uploaded.
const HAS_TABLES_SQL: &str = concat!("SELECT EXISTS (\n  SELECT 1", user_tables!(), ")");

/// Schema objects of user schemas by kind, as one JSON object; not those an extension
/// owns, and not extensions firedrill itself may add in the sandbox (amcheck).
pub const OBJECTS_SQL: &str = r#"WITH ns AS (
  SELECT oid FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema')
    AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'
), rel AS (
  SELECT c.relkind FROM pg_class c
  WHERE c.relnamespace IN (SELECT oid FROM ns)
    AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
)
SELECT json_build_object(
  'views', (SELECT count(*) FROM rel WHERE relkind IN ('v', 'm')),
  'indexes', (SELECT count(*) FROM rel WHERE relkind IN ('i', 'I')),
  'sequences', (SELECT count(*) FROM rel WHERE relkind = 'S'),
  'functions', (SELECT count(*) FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM ns)
                AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')),
  'triggers', (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
               WHERE NOT t.tgisinternal AND c.relnamespace IN (SELECT oid FROM ns)),
  'extensions', (SELECT count(*) FROM pg_extension WHERE extname NOT IN ('plpgsql', 'amcheck'))
)::text"#;

/// Session settings that make a row's text form the same on the source and in the
/// sandbox, whatever the servers' defaults: the checksums hash that text.
pub const CHECKSUM_SETTINGS: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; \
SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'; \
SET lc_monetary = 'C'";

/// How a table's content checksum is computed; the checksum's prefix names it, so that
/// the restored table is summed the way the source was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowHash {
    /// The MD5 of each row's text (UTF-8): any column type, any server (`md5sum:`).
    Md5,
    /// PostgreSQL's own 64-bit hash of each row's values (`hash_record_extended`,
    /// PostgreSQL 14 and later), for tables whose every column has a built-in type whose
    /// hash is its value's, the same on every server ([`HASHABLE_SQL`]): several times
    /// cheaper than the MD5 of the row's text, whose making dominates the fingerprint of
    /// text-heavy tables (`rowhash64sum:`).
    Hash64,
}

impl RowHash {
    /// The algorithm a checksum was made with, from its prefix.
    pub fn of(checksum: &str) -> Option<RowHash> {
        match checksum.split(':').next()? {
            "md5sum" => Some(RowHash::Md5),
            "rowhash64sum" => Some(RowHash::Hash64),
            _ => None,
        }
    }

    /// The checksum's column: `prefix:rows:sum`, exact (a numeric sum), independent of
    /// row order.
    fn column(self) -> &'static str {
        match self {
            RowHash::Md5 => "'md5sum:' || count(*) || ':' || coalesce(sum(('x' || left(md5(convert_to(r::text, 'UTF8')), 15))::bit(60)::bigint), 0)",
            RowHash::Hash64 => "'rowhash64sum:' || count(*) || ':' || coalesce(sum(hash_record_extended(r, 0)), 0)",
        }
    }
}

/// The built-in types whose extended hash is that of the value, the same on every server
/// and version (by OID, which built-in types keep): bool, bytea, "char", name, int8, int2,
/// int4, text, oid, cidr, float4, float8, macaddr, inet, bpchar, varchar, date, time,
/// timestamp, timestamptz, interval, timetz, numeric, uuid, jsonb. Not enums (their hash is
/// of an OID the restore renumbers), not types without a hash (json, geometric, xml).
macro_rules! hashable_types {
    () => {
        "16, 17, 18, 19, 20, 21, 23, 25, 26, 650, 700, 701, 829, 869, 1042, 1043, 1082, 1083, 1114, 1184, 1186, 1266, 1700, 2950, 3802"
    };
}

/// The user tables whose rows [`RowHash::Hash64`] sums, as `[[schema, table], …]`: on
/// PostgreSQL 14 and later, those whose every column (through a domain, of an array) has
/// a type of `hashable_types!` and a deterministic collation (a nondeterministic one
/// hashes through ICU, whose version may differ in the sandbox).
pub const HASHABLE_SQL: &str = concat!(
    r#"SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname)), '[]')::text"#,
    user_tables!(),
    r#"
    AND current_setting('server_version_num')::int >= 140000
    AND NOT EXISTS (
      SELECT 1 FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
        LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         AND (NOT coalesce(co.collisdeterministic, true)
              OR coalesce(e.oid, b.oid, 0) NOT IN ("#,
    hashable_types!(),
    "))
    )"
);

/// Reads `HASHABLE_SQL`'s result: `schema.table` names.
pub fn parse_hashable(json: &str) -> Result<std::collections::BTreeSet<String>> {
    let rows: Vec<(String, String)> = serde_json::from_str(json.trim()).map_err(|e| {
        Error::internal(format!(
            "cannot read the hashable tables query's result: {e}"
        ))
    })?;
    Ok(rows.into_iter().map(|(s, t)| format!("{s}.{t}")).collect())
}

/// One query returning `[[schema, table, checksum], …]` as JSON for the given tables,
/// each summed with its [`RowHash`].
pub fn checksum_sql(tables: &[(&str, &str, RowHash)]) -> String {
    let parts: Vec<String> = tables
        .iter()
        .map(|(s, t, h)| {
            format!(
                "SELECT {ls} AS s, {lt} AS t, {c} AS c FROM {qs}.{qt} AS r",
                ls = lit(s),
                lt = lit(t),
                c = h.column(),
                qs = ident(s),
                qt = ident(t)
            )
        })
        .collect();
    format!(
        "SELECT coalesce(json_agg(json_build_array(s, t, c) ORDER BY s, t), '[]')::text FROM ({}) x",
        parts.join(" UNION ALL ")
    )
}

/// A quoted identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A quoted string literal.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Sets the checksums of `fp`'s tables from `checksum_sql`'s JSON result.
pub fn apply_checksums(fp: &mut Fingerprint, json: &str) -> Result<()> {
    let rows: Vec<(String, String, String)> = serde_json::from_str(json.trim())
        .map_err(|e| Error::internal(format!("cannot read the checksum query's result: {e}")))?;
    for (s, t, c) in rows {
        if let Some(tf) = fp.tables.iter_mut().find(|x| x.schema == s && x.name == t) {
            tf.checksum = Some(c);
        }
    }
    Ok(())
}

/// Reads `OBJECTS_SQL`'s result.
pub fn parse_objects(json: &str) -> Result<std::collections::BTreeMap<String, u64>> {
    serde_json::from_str(json.trim()).map_err(|e| {
        Error::internal(format!(
            "cannot read the schema objects query's result: {e}"
        ))
    })
}

/// amcheck on every valid B-tree index of user schemas, with the heap check (every row
/// must be in the index): `{"checked": n, "failed": [[index, error], …]}`. The function
/// lives in pg_temp and so goes with the session.
pub const AMCHECK_SQL: &str = r#"CREATE EXTENSION IF NOT EXISTS amcheck;
CREATE FUNCTION pg_temp.firedrill_check(i regclass) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM bt_index_check(i, true);
  RETURN NULL;
EXCEPTION WHEN others THEN
  RETURN SQLERRM;
END $f$;
SELECT json_build_object('checked', count(*),
  'failed', coalesce(json_agg(json_build_array(idx, err)) FILTER (WHERE err IS NOT NULL), '[]'))::text
FROM (SELECT c.oid::regclass::text AS idx, pg_temp.firedrill_check(c.oid) AS err
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\_toast%') x"#;

/// Reads `AMCHECK_SQL`'s result: how many indexes were checked, and the failures.
pub fn parse_amcheck(out: &str) -> Result<(u64, Vec<(String, String)>)> {
    #[derive(serde::Deserialize)]
    struct R {
        checked: u64,
        failed: Vec<(String, String)>,
    }
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("");
    let r: R = serde_json::from_str(line.trim()).map_err(|e| {
        Error::internal(format!(
            "cannot read amcheck's result `{}`: {e}",
            out.trim()
        ))
    })?;
    Ok((r.checked, r.failed))
}

/// psql prints SQL NULL as this, so that an empty string and NULL differ.
pub const NULL_MARKER: &str = "\u{1f}NULL\u{1f}";

pub fn parse_fingerprint(json: &str) -> Result<Fingerprint> {
    type Row = (String, String, i64, Vec<(String, String)>, i64);
    let rows: Vec<Row> = serde_json::from_str(json.trim())
        .map_err(|e| Error::internal(format!("cannot read the fingerprint query's result: {e}")))?;
    let mut tables: Vec<TableFingerprint> = rows
        .into_iter()
        .map(|(s, t, r, cols, b)| {
            let mut tf = TableFingerprint::new(s, t, r.max(0) as u64, cols);
            tf.bytes = Some(b.max(0) as u64);
            tf
        })
        .collect();
    tables.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    Ok(Fingerprint {
        tables,
        ..Default::default()
    })
}

/// A `psql` invocation inside the sandbox that runs `sql` and prints unaligned rows.
pub fn psql_cmd(database: &str, sql: &str) -> Vec<String> {
    [
        "psql",
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-F",
        "\u{1f}",
        "-P",
        &format!("null={NULL_MARKER}"),
        "-h",
        "/run/postgresql",
        "-U",
        "postgres",
        "-d",
        database,
        "-c",
        sql,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Where the decrypted dump lands in the sandbox (its staging volume, thrown away with it):
/// `pg_restore -j` needs a file to read the tables of in parallel.
pub const PLAIN_DUMP: &str = "/var/lib/firedrill/staging/dump.pgdump";
/// How the staging's decryption ended: the exit status of its decrypt, decompress and
/// bound stages (their stderr is beside it, one file per stage), for the restore to
/// report.
const STAGED_STATUS: &str = "staged";

/// Receives the encrypted artifact on stdin (`$1` bytes, hashed by firedrill as it sends
/// them) and decrypts and decompresses it into [`PLAIN_DUMP`] as it arrives, stopping past
/// `$2` bytes (the manifest's plain size). Decryption overlaps the transfer; the whole
/// stream is read whatever the decryption does (`tee -p`), so that firedrill always gets
/// the artifact's hash, and a hash mismatch is reported as such. Nothing is restored
/// before the hash is checked: the restore step ([`restore_cmd`]) runs after, and reports
/// how each stage of the decryption ended.
///
/// zstd writes the file itself, under a file-size limit (`ulimit -f`) just past `$2`
/// bytes, and the file's size is checked after: the same bound as [`super::BOUND_FN`]'s without
/// another pipe for every byte of the dump to cross (in a sandbox under a CPU quota, that
/// pipe cost more than the decompression).
pub fn stage_cmd(size: u64, plain_bytes: u64) -> Vec<String> {
    let script = format!(
        r#"set -uo pipefail
d={STAGES_DIR}; rm -rf "$d"; mkdir -p "$d"
rm -f {PLAIN_DUMP}
head -c "$1" | tee -p >( age -d -i {SANDBOX_IDENTITY} 2>"$d/decrypt" \
  | ( ulimit -f $(( $2 / 1024 + 1 )) && exec zstd -d -q -o {PLAIN_DUMP} ) 2>"$d/decompress"
  st=("${{PIPESTATUS[@]}}") bound=0
  if [ "$(stat -c %s {PLAIN_DUMP} 2>/dev/null || echo 0)" -gt "$2" ]; then
    echo "firedrill: the decompressed dump exceeds $2 bytes (the manifest's plain_bytes); stopped there" > "$d/bound"
    st[1]=0 bound=97
  fi
  echo "${{st[0]}} ${{st[1]}} $bound" > "$d/{STAGED_STATUS}.tmp"; mv "$d/{STAGED_STATUS}.tmp" "$d/{STAGED_STATUS}" ) | wc -c
for _ in $(seq 1 1200); do [ -s "$d/{STAGED_STATUS}" ] && break; sleep 0.05; done"#
    );
    vec![
        "bash".into(),
        "-c".into(),
        script,
        "firedrill-stage".into(),
        size.to_string(),
        plain_bytes.to_string(),
    ]
}

/// Creates the database (unless it exists, e.g. `postgres`) and restores the staged,
/// decrypted dump with `pg_restore -j JOBS`. Owners and grants are dropped: the source's
/// roles do not exist in the sandbox. The staging's stages are reported with
/// pg_restore's ([`super::STAGE_REPORT`]).
pub fn restore_cmd(database: &str, jobs: u32) -> Vec<String> {
    let script = format!(
        r#"set -euo pipefail
d={STAGES_DIR}; mkdir -p "$d"
{STAGE_REPORT}
[ -s "$d/{STAGED_STATUS}" ] || {{ echo "firedrill: the artifact's decryption did not finish while it was staged" >&2; exit 3; }}
firedrill_record "$(cat "$d/{STAGED_STATUS}")" decrypt decompress bound || {{ rm -f {PLAIN_DUMP}; exit 3; }}
exists=$(printf '%s\n' "SELECT 1 FROM pg_database WHERE datname = :'db'" | psql -X -q -A -t -h /run/postgresql -U postgres -d postgres -v db="$1")
if [ "$exists" != 1 ]; then createdb -h /run/postgresql -U postgres -T template0 -E UTF8 -- "$1"; fi
rc=0
pg_restore -h /run/postgresql -U postgres --no-owner --no-privileges --exit-on-error -j "$2" -d "$1" {PLAIN_DUMP} 2>"$d/pg_restore" || rc=$?
firedrill_record "$rc" pg_restore || exit 1
rm -f {PLAIN_DUMP}"#
    );
    vec![
        "bash".into(),
        "-c".into(),
        script,
        "firedrill-restore".into(),
        database.into(),
        jobs.max(1).to_string(),
    ]
}

/// pg_restore failed: its first error line names what, and the lines after it where
/// ([`error_lines`]).
pub fn restore_error(exit: i32, stderr: &str) -> Error {
    let lines = error_lines(stderr);
    let first = lines
        .iter()
        .find_map(|l| l.strip_prefix("pg_restore: error: "))
        .map(|m| format!(": {m}"))
        .unwrap_or_else(|| format!(" (exit {exit})"));
    Error::backup(format!("pg_restore could not restore the dump{first}"))
        .with_hint("read pg_restore's error below; a dump that does not restore is not a backup")
        .with_stderr(lines.join("\n"))
}

/// psql failed on a plain SQL dump: its first error line says at which line of the dump,
/// and what (a meta-command its restricted mode refused, or an SQL error).
pub fn psql_error(exit: i32, stderr: &str) -> Error {
    let lines = error_lines(stderr);
    let first = stderr.lines().find_map(|l| {
        let (prefix, body) = split_tool_prefix(l);
        let at = prefix
            .strip_prefix("psql:<stdin>:")
            .and_then(|r| r.split(':').next())
            .map(|n| format!(" at line {n}"))
            .unwrap_or_default();
        is_error(body).then_some((at, body))
    });
    match first {
        Some((at, body)) if body.starts_with("error: backslash commands are restricted") => {
            Error::backup(format!(
                "the dump runs a psql meta-command{at}; psql's restricted mode refused it and the restore stopped"
            ))
            .with_hint(super::SCREEN_HINT)
        }
        Some((at, body)) => Error::backup(format!(
            "psql could not restore the dump{at}: {}",
            clean_body(body).unwrap_or_default()
        ))
        .with_hint("read psql's error below; a dump that does not restore is not a backup"),
        None => Error::backup(format!("psql could not restore the dump (exit {exit})"))
            .with_hint("read psql's output below; a dump that does not restore is not a backup"),
    }
    .with_stderr(lines.join("\n"))
}

/// The most lines of a tool's errors that an error keeps.
const ERROR_LINES: usize = 6;

/// The lines of pg_restore's or psql's stderr worth keeping for a person, with the
/// values they quote elided: error lines keep the names they quote (relation, constraint,
/// column…) and lose the values (`invalid input syntax for type integer: [elided]`);
/// `DETAIL:  Key (email)=[elided]`; `CONTEXT:  COPY t, line 2` without the row;
/// `Command was: ALTER [elided]` without the statement, and without the lines it goes on
/// over. Anything else (notices, a statement's continuation) is dropped.
pub fn error_lines(stderr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in stderr.lines() {
        let (prefix, body) = split_tool_prefix(line);
        if let Some(clean) = clean_body(body) {
            out.push(super::cap_line(&format!("{prefix}{clean}")));
            if out.len() == ERROR_LINES {
                break;
            }
        }
    }
    out
}

/// The labels PostgreSQL's messages carry, in its log and in its tools' stderr.
pub(crate) const LABELS: [&str; 11] = [
    "ERROR:",
    "FATAL:",
    "PANIC:",
    "WARNING:",
    "LOG:",
    "DETAIL:",
    "CONTEXT:",
    "HINT:",
    "STATEMENT:",
    "error:",
    "detail:",
];

/// `pg_restore: ` or `psql:<stdin>:12: ` and what follows it.
fn split_tool_prefix(line: &str) -> (&str, &str) {
    if line.starts_with("pg_restore: ") {
        return line.split_at("pg_restore: ".len());
    }
    if line.starts_with("psql:") {
        // psql:FILE:LINE: (the file is `<stdin>`, without a colon)
        if let Some((i, _)) = line.match_indices(':').nth(2) {
            if line[i + 1..].starts_with(' ') {
                return line.split_at(i + 2);
            }
        }
    }
    ("", line)
}

fn is_error(body: &str) -> bool {
    ["error:", "ERROR:", "FATAL:", "PANIC:"]
        .iter()
        .any(|l| body.starts_with(l))
}

/// One message of pg_restore or psql, cleaned; `None` for what is not worth keeping.
fn clean_body(body: &str) -> Option<String> {
    if let Some(statement) = body.strip_prefix("Command was: ") {
        return Some(format!("Command was: {}", first_word(statement)));
    }
    let label = LABELS.iter().find(|l| body.starts_with(**l))?;
    if matches!(*label, "LOG:" | "STATEMENT:") {
        return None;
    }
    Some(format!(
        "{label}{}",
        clean_labelled(label, &body[label.len()..])
    ))
}

/// A statement's first word and [`super::ELIDED`] for the rest.
fn first_word(statement: &str) -> String {
    let word = statement.split_whitespace().next().unwrap_or("");
    format!("{word} {}", super::ELIDED)
}

/// The text after a message's label, with the values it quotes elided.
pub(crate) fn clean_labelled(label: &str, text: &str) -> String {
    use super::{elide_quoted, ELIDED};
    let any_quote = ['"', '\''];
    match label {
        "STATEMENT:" => format!("  {}", first_word(text)),
        "DETAIL:" | "detail:" => {
            let t = text.trim_start();
            let lead = &text[..text.len() - t.len()];
            if let Some(rest) = t.strip_prefix("Key (") {
                // `Key (email)=(a@b) already exists.`: the columns, not the values.
                return match rest.find(")=(") {
                    Some(i) => format!("{lead}Key ({})={ELIDED}", &rest[..i]),
                    None => format!("{lead}Key {ELIDED}"),
                };
            }
            if let Some(rest) = t.strip_prefix("Failed process was running: ") {
                return format!("{lead}Failed process was running: {}", first_word(rest));
            }
            // `Failing row contains (…)`, `Token "…" is invalid.`
            match t.find(['"', '\'', '(']) {
                Some(i) => format!("{lead}{}{ELIDED}", &t[..i]),
                None => text.to_string(),
            }
        }
        "CONTEXT:" | "HINT:" => {
            // `COPY t, line 2: "the row"`, `COPY t, line 2, column c: "value"`,
            // `JSON data, line 1: {…}`: what follows the first colon is data.
            let t = text.split(": ").next().unwrap_or("");
            elide_quoted(t, &any_quote)
        }
        _ => clean_error_message(text),
    }
}

/// Words after which PostgreSQL quotes a name, not a value.
const NAME_WORDS: [&str; 26] = [
    "relation",
    "table",
    "constraint",
    "column",
    "index",
    "schema",
    "type",
    "function",
    "database",
    "role",
    "user",
    "sequence",
    "extension",
    "view",
    "trigger",
    "encoding",
    "domain",
    "collation",
    "operator",
    "language",
    "server",
    "publication",
    "policy",
    "rule",
    "file",
    "directory",
];

/// An error message with the values it quotes elided and the names kept: PostgreSQL
/// quotes both in double quotes, a value most often after a colon (`invalid input syntax
/// for type integer: "x"`) and a name after the word for what it is (`relation "t"`).
/// From the first quote that follows neither, everything goes.
fn clean_error_message(text: &str) -> String {
    use super::ELIDED;
    // A value after a colon ends the message: `…: "x"`, `…: 0xe9 0x20`.
    let mut text = text.to_string();
    for cut in [": \"", ": 0x", ": '"] {
        if let Some(i) = text.find(cut) {
            text = format!("{}: {ELIDED}", &text[..i]);
        }
    }
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(open) = rest.find('"') {
        let before = &rest[..open];
        let word = before
            .split_whitespace()
            .last()
            .unwrap_or("")
            .to_ascii_lowercase();
        let close = rest[open + 1..].find('"').map(|c| open + 1 + c);
        match close {
            Some(close) if NAME_WORDS.contains(&word.as_str()) => {
                out.push_str(&rest[..=close]);
                rest = &rest[close + 1..];
            }
            _ => {
                out.push_str(before);
                out.push_str(ELIDED);
                rest = match rest.rfind('"') {
                    Some(last) if last > open => &rest[last + 1..],
                    _ => "",
                };
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Dumps one PostgreSQL database with pg_dump.
pub struct PostgresSource {
    spec: PostgresSpec,
    password: Option<Secret>,
    site: ToolSite,
}

impl PostgresSource {
    pub fn new(spec: PostgresSpec, password: Option<Secret>) -> Self {
        PostgresSource {
            spec,
            password,
            site: ToolSite::default(),
        }
    }

    /// Where pg_dump may run when this host's is not of the major the dump restores into
    /// (without it: this host's pg_dump only).
    pub fn with_site(mut self, site: ToolSite) -> Self {
        self.site = site;
        self
    }

    /// Where pg_dump runs for a server of `server_major`, and its version: the pg_dump of
    /// the major the dump restores into (`sandbox.major`, else the server's), this host's
    /// when it is that one (or `source.pg_dump` names one, or `source.dump_in = "host"`),
    /// else the one in that major's sandbox image.
    async fn place(&self, server_major: u32, server_version: &str) -> Result<(Place, String)> {
        let target = self
            .site
            .target(&server_major.to_string())
            .parse::<u32>()
            .unwrap_or(server_major)
            .max(server_major);
        let pg_dump = self.pg_dump_path(target);
        let host = tool_version(&pg_dump).await;
        // A pg_dump the drill names is the one it means (unless dump_in = "container"):
        // one older than the server is refused below, not swapped for another.
        let fits = match &host {
            _ if self.spec.pg_dump.is_some() => true,
            Ok((_, m)) => *m == target,
            Err(_) => false,
        };
        if !self.site.in_container(fits) {
            let (v, m) = host?;
            if m < server_major {
                return Err(Error::infra(format!(
                    "pg_dump {v} ({}) is older than the server ({server_version}); pg_dump refuses to dump newer servers",
                    pg_dump.display()
                ))
                .with_hint(format!(
                    "install postgresql-client-{server_major} and set source.pg_dump = \"/usr/lib/postgresql/{server_major}/bin/pg_dump\", or let firedrill run it from firedrill-sandbox-postgres:{server_major} (source.dump_in = \"auto\")"
                ))
                .retryable(false));
            }
            return Ok((Place::Host(pg_dump), v));
        }
        let why = match &host {
            Ok((v, m)) if *m < server_major => {
                format!("pg_dump on this host is {v}, older than the server ({server_version})")
            }
            Ok((v, _)) if !fits => format!(
                "pg_dump on this host is {v}, and the dump restores into PostgreSQL {target}, whose pg_restore may not read a newer pg_dump's archive"
            ),
            Ok(_) => "source.dump_in = \"container\"".to_string(),
            Err(_) => format!("no pg_dump on this host at {}", pg_dump.display()),
        };
        let place = self
            .site
            .container(Engine::Postgres, &target.to_string(), &why)
            .await?;
        let (status, out, err) = super::tool::output(ToolCall::version("pg_dump"), &place).await?;
        let image = place.describe().unwrap_or_default();
        let Some((v, m)) = status.is_none().then(|| parse_tool_version(&out)).flatten() else {
            return Err(Error::infra(format!(
                "pg_dump --version {image} said `{}`",
                super::first_lines(&format!("{out}{err}"), 2)
            ))
            .with_hint(
                "use an image with pg_dump on its PATH (containers/build-offline.sh builds one)",
            )
            .retryable(false));
        };
        if m < server_major {
            return Err(Error::infra(format!(
                "pg_dump {v} {image} is older than the server ({server_version})"
            ))
            .with_hint(Engine::Postgres.build_hint(&server_major.to_string()))
            .retryable(false));
        }
        Ok((place, v))
    }

    /// What source.user may read in the database, judged.
    async fn access(
        &self,
        client: &tokio_postgres::Client,
        server_major: u32,
    ) -> Result<super::access::Access> {
        let row = client
            .query_one(ACCESS_SQL, &[])
            .await
            .map_err(query_error)?;
        Ok(super::access::postgres(&super::access::PgFacts {
            user: self.spec.user.clone(),
            server_major,
            superuser: row.get(0),
            bypassrls: row.get(1),
            no_usage: row.get(2),
            no_select: row.get(3),
            rls: row.get(4),
            large_objects: row.get(5),
            subscriptions: row.get(6),
        }))
    }

    fn pg_dump_path(&self, server_major: u32) -> PathBuf {
        if let Some(p) = &self.spec.pg_dump {
            return p.clone();
        }
        // Debian and Ubuntu install each major beside the others; take the server's own,
        // else the newest one installed (newer pg_dump reads older servers).
        let own = PathBuf::from(format!("/usr/lib/postgresql/{server_major}/bin/pg_dump"));
        if own.exists() {
            return own;
        }
        let mut best: Option<(u32, PathBuf)> = None;
        if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
            for e in rd.flatten() {
                if let Ok(v) = e.file_name().to_string_lossy().parse::<u32>() {
                    let p = e.path().join("bin/pg_dump");
                    if p.exists() && best.as_ref().is_none_or(|(b, _)| v > *b) {
                        best = Some((v, p));
                    }
                }
            }
        }
        best.map(|(_, p)| p)
            .unwrap_or_else(|| PathBuf::from("pg_dump"))
    }

    async fn connect(&self) -> Result<tokio_postgres::Client> {
        let spec = &self.spec;
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&spec.host)
            .port(spec.port)
            .user(&spec.user)
            .dbname(&spec.database)
            .application_name("firedrill")
            .connect_timeout(Duration::from_secs(15));
        if let Some(p) = &self.password {
            cfg.password(p.expose());
        }
        let (mode, connector) = spec.tls.postgres()?;
        cfg.ssl_mode(mode);
        let (client, conn) = match cfg.connect(connector).await {
            Ok(c) => c,
            Err(e) => return Err(self.connect_error(e).await),
        };
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("source connection ended: {e}");
            }
        });
        Ok(client)
    }

    async fn connect_error(&self, e: tokio_postgres::Error) -> Error {
        let target = format!("{}:{}", self.spec.host, self.spec.port);
        let tls = &self.spec.tls;
        if let Some(t) = tls.explain(&self.spec.host, &e) {
            return t.with_source(e);
        }
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            return match code {
                // pg_hba.conf's `hostssl` lines reject a plain connection with 28000.
                "28000" if tls.mode == TlsMode::Disable => Error::config(format!(
                    "PostgreSQL at {target} refused a connection without TLS: {}",
                    db.message()
                ))
                .with_hint(tls.plain_refused_hint()),
                "28P01" | "28000" => Error::infra(format!(
                    "PostgreSQL at {target} refused user {}: {}",
                    self.spec.user,
                    db.message()
                ))
                .with_hint("check source.user and the password source named in source.password")
                .retryable(false),
                "3D000" => Error::config(format!(
                    "database {} does not exist on {target}",
                    self.spec.database
                ))
                .with_hint("correct source.database"),
                _ => Error::infra(format!("PostgreSQL at {target}: {}", db.message())),
            };
        }
        if tls.mode.requires_tls()
            && offers_tls(&self.spec.host, self.spec.port).await == Some(false)
        {
            return tls.no_tls_on_server(&target).with_source(e);
        }
        super::unreachable_source(
            &format!("cannot connect to PostgreSQL at {target}"),
            &target,
            e,
        )
    }

    /// The connection's TLS as the server sees it (`pg_stat_ssl`).
    async fn negotiated(&self, client: &tokio_postgres::Client) -> Result<Negotiated> {
        let row = client
            .query_opt(
                "SELECT version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
                &[],
            )
            .await
            .map_err(query_error)?;
        Ok(Negotiated {
            protocol: row.as_ref().map(|r| r.get(0)),
            cipher: row.as_ref().map(|r| r.get(1)),
            checked: if row.is_some() {
                self.spec.tls.checked()
            } else {
                Checked::Nothing
            },
        })
    }
}

/// Asks the server at `host:port` whether it speaks TLS (the protocol's SSLRequest: it
/// answers `S` or `N`). `None` when it could not be asked.
async fn offers_tls(host: &str, port: u16) -> Option<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ask = async {
        let mut s = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        // Length 8, then the SSLRequest code 80877103.
        s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
            .await
            .ok()?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.ok()?;
        match b[0] {
            b'S' => Some(true),
            b'N' => Some(false),
            _ => None,
        }
    };
    tokio::time::timeout(Duration::from_secs(5), ask)
        .await
        .ok()
        .flatten()
}

/// Parses `pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)` into ("15.14", 15).
pub fn parse_tool_version(out: &str) -> Option<(String, u32)> {
    let v = out
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let major = v
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((v.to_string(), major))
}

async fn tool_version(path: &Path) -> Result<(String, u32)> {
    let text = super::tool_version_text(
        path,
        "install the PostgreSQL client tools (Debian: postgresql-client-NN) or set source.pg_dump",
    )
    .await?;
    parse_tool_version(&text).ok_or_else(|| super::unreadable_version(path, &text))
}

#[async_trait]
impl DumpSource for PostgresSource {
    async fn server_series(&self) -> Result<(Engine, String)> {
        let client = self.connect().await?;
        let row = client
            .query_one(
                "SELECT current_setting('server_version_num')::int / 10000",
                &[],
            )
            .await
            .map_err(|e| Error::infra(format!("query on the source failed: {e}")).with_source(e))?;
        let major: i32 = row.get(0);
        Ok((Engine::Postgres, major.to_string()))
    }

    async fn doctor(&self) -> Vec<Finding> {
        let spec = &self.spec;
        let what = format!(
            "source postgres {}:{}/{}",
            spec.host, spec.port, spec.database
        );
        let client = match self.connect().await {
            Ok(c) => c,
            Err(e) => return vec![Finding::from_error(&what, &e)],
        };
        let mut out = Vec::new();
        let row = client
            .query_one(
                "SELECT current_setting('server_version'), current_setting('server_version_num')::int / 10000, \
                 (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
                 (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                    AND n.nspname NOT LIKE 'pg\\_toast%' \
                    AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))",
                &[],
            )
            .await;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                out.push(Finding::fail(
                    &what,
                    format!("query failed: {e}"),
                    "check source.user's rights on the database",
                ));
                return out;
            }
        };
        let version: String = row.get(0);
        let major: i32 = row.get(1);
        let superuser: bool = row.get(2);
        let writable: i64 = row.get(3);
        out.push(Finding::ok(
            &what,
            format!("reachable, PostgreSQL {version}"),
        ));
        out.push(spec.tls.finding(&spec.host, self.negotiated(&client).await));
        let server_major = major.max(0) as u32;
        match self.place(server_major, &version).await {
            Ok((place, v)) => out.push(Finding::ok(
                "pg_dump",
                match place {
                    Place::Host(p) => format!("{} is {v}, not older than the server", p.display()),
                    Place::Container { image, .. } => format!(
                        "pg_dump {v} runs in a container of {image} (this host's is older than the server or missing)"
                    ),
                },
            )),
            Err(e) => out.push(Finding::from_error("pg_dump", &e)),
        }
        let user = format!("dump user {}", spec.user);
        if superuser {
            out.push(Finding::warn(
                &user,
                "is a superuser: a backup job needs only read rights".into(),
                "create a role with `GRANT pg_read_all_data TO …` (PostgreSQL 14+) and use it as source.user",
            ));
        } else if writable > 0 {
            out.push(Finding::warn(
                &user,
                format!("can write to {writable} tables (INSERT, UPDATE, DELETE or TRUNCATE)"),
                "a backup user needs only SELECT: revoke the write rights or use a read-only role (pg_read_all_data)",
            ));
        } else {
            out.push(Finding::ok(
                &user,
                "has no write rights on the tables".into(),
            ));
        }
        match self.access(&client, server_major).await {
            Ok(a) => out.extend(a.findings()),
            Err(e) => out.push(Finding::from_error(&user, &e)),
        }
        out
    }

    async fn start(&self, checksum_plan: &ChecksumPlan) -> Result<StartedDump> {
        let spec = &self.spec;
        let client = self.connect().await?;
        let q = query_error;
        let (server_version, server_major) = version_of(&client).await?;

        // A grant the dump needs is named now, not as pg_dump's failure halfway through.
        let access = self.access(&client, server_major).await?;
        access.check()?;
        let (place, tool_version) = self.place(server_major, &server_version).await?;

        // The fingerprint and the dump must see the same data: export a snapshot from a
        // REPEATABLE READ transaction, hand it to pg_dump, and read the fingerprint in it
        // while pg_dump runs (on this connection, not derived from the dump's stream).
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(q)?;
        let snapshot: String = client
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .map_err(q)?
            .get(0);
        let has_tables: bool = client
            .query_one(HAS_TABLES_SQL, &[])
            .await
            .map_err(q)?
            .get(0);
        let what = format!("database {} on {}:{}", spec.database, spec.host, spec.port);
        if !has_tables {
            return Err(no_tables(&what));
        }
        let client = std::sync::Arc::new(client);

        let tls_env = crate::tls::libpq_env(&spec.tls);
        let call = ToolCall {
            name: "pg_dump".into(),
            args: vec![
                "--format=custom".into(),
                "--compress=0".into(),
                "--no-password".into(),
                format!("--snapshot={snapshot}"),
                "--host".into(),
                spec.host.clone(),
                "--port".into(),
                spec.port.to_string(),
                "--username".into(),
                spec.user.clone(),
            ],
            files: tls_env
                .iter()
                .filter(|(k, _)| *k != "PGSSLMODE")
                .map(|(_, v)| PathBuf::from(v))
                .collect(),
            env: [
                ("PGDATABASE".to_string(), spec.database.clone().into()),
                ("PGAPPNAME".to_string(), "firedrill-pg_dump".into()),
            ]
            .into_iter()
            .chain(tls_env.into_iter().map(|(k, v)| (k.to_string(), v)))
            .collect(),
            env_remove: vec!["PGPASSWORD", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"],
            secret_env: self.password.clone().map(|p| ("PGPASSWORD", p)),
            stdin: Vec::new(),
        };
        let spawned = super::tool::spawn(call, &place).await?;
        let beside = fingerprint_beside(client.clone(), *checksum_plan, what);
        // The snapshot transaction (the client) ends only once pg_dump is done with it,
        // and the fingerprint has been read in it.
        let completion = super::dump_completion(
            spawned.exit,
            self.password.clone(),
            "pg_dump".into(),
            Box::new(client),
        );
        let stdout = spawned.output;

        Ok(StartedDump {
            meta: DumpMeta {
                engine: Engine::Postgres,
                server_version,
                server_major: server_major.to_string(),
                databases: vec![spec.database.clone()],
                tool: "pg_dump".into(),
                tool_version,
                tool_place: place.describe(),
                format: "custom".into(),
                notes: access.unseen,
            },
            fingerprint: Fingerprint::default(),
            beside: Some(beside),
            output: stdout,
            completion,
            inspector: Box::new(NoInspection),
        })
    }
}

fn no_tables(what: &str) -> Error {
    Error::backup(format!(
        "{what} has no user tables: a backup of it proves nothing"
    ))
    .with_hint("point source.database at the database that holds the data, and check that source.user can see its tables")
}

/// Reads the fingerprint in the snapshot transaction open on `client` while the dump
/// runs: its own task (stopped when the future is dropped), timed for the report.
fn fingerprint_beside(
    client: std::sync::Arc<tokio_postgres::Client>,
    checksum_plan: ChecksumPlan,
    what: String,
) -> futures::future::BoxFuture<'static, Result<super::Inspection>> {
    use futures::FutureExt;
    let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        let t0 = std::time::Instant::now();
        let fingerprint = snapshot_fingerprint(&client, &checksum_plan).await?;
        let took = t0.elapsed();
        if fingerprint.tables.is_empty() {
            return Err(no_tables(&what));
        }
        let note = format!(
            "fingerprint of {} tables ({} checksummed) read beside the dump in {:.2} s",
            fingerprint.tables.len(),
            fingerprint
                .tables
                .iter()
                .filter(|t| t.checksum.is_some())
                .count(),
            took.as_secs_f64()
        );
        Ok(super::Inspection {
            fingerprint: Some(fingerprint),
            notes: vec![note],
        })
    }));
    async move {
        task.await
            .map_err(|e| Error::internal(format!("the fingerprint's task failed: {e}")))?
    }
    .boxed()
}

/// The server's version (`15.14`) and major (`15`).
async fn version_of(client: &tokio_postgres::Client) -> Result<(String, u32)> {
    let version: String = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(query_error)?
        .get(0);
    let num: String = client
        .query_one("SHOW server_version_num", &[])
        .await
        .map_err(query_error)?
        .get(0);
    let major = num.parse::<u32>().unwrap_or(0) / 10000;
    let version = version.split_whitespace().next().unwrap_or("").to_string();
    Ok((version, major))
}

/// The fingerprint of what the transaction open on `client` sees: tables, schema objects,
/// what they hold, and the checksums of the tables `checksum_plan` gives this run.
async fn snapshot_fingerprint(
    client: &tokio_postgres::Client,
    checksum_plan: &ChecksumPlan,
) -> Result<Fingerprint> {
    let q = query_error;
    let fp_json: String = client
        .query_one(FINGERPRINT_SQL, &[])
        .await
        .map_err(q)?
        .get(0);
    let mut fingerprint = parse_fingerprint(&fp_json)?;
    let objects: String = client.query_one(OBJECTS_SQL, &[]).await.map_err(q)?.get(0);
    fingerprint.objects = parse_objects(&objects)?;
    fingerprint.holdings = source_holdings(client).await?;
    let chosen = checksum_plan.select(
        &fingerprint
            .tables
            .iter()
            .map(|t| (t.qualified(), t.bytes.unwrap_or(0)))
            .collect::<Vec<_>>(),
    );
    if !chosen.is_empty() {
        let hashable: String = client.query_one(HASHABLE_SQL, &[]).await.map_err(q)?.get(0);
        let hashable = parse_hashable(&hashable)?;
        let to_sum: Vec<(&str, &str, RowHash)> = fingerprint
            .tables
            .iter()
            .filter(|t| chosen.contains(&t.qualified()))
            .map(|t| {
                let hash = if hashable.contains(&t.qualified()) {
                    RowHash::Hash64
                } else {
                    RowHash::Md5
                };
                (t.schema.as_str(), t.name.as_str(), hash)
            })
            .collect();
        // SET LOCAL: only this snapshot transaction, which pg_dump does not share.
        client
            .batch_execute(&CHECKSUM_SETTINGS.replace("SET ", "SET LOCAL "))
            .await
            .map_err(q)?;
        let sums: String = client
            .query_one(&checksum_sql(&to_sum), &[])
            .await
            .map_err(q)?
            .get(0);
        apply_checksums(&mut fingerprint, &sums)?;
    }
    Ok(fingerprint)
}

/// The restore point a physical drill recovers to, and what the source held there.
pub struct RestorePoint {
    pub fingerprint: Fingerprint,
    /// Where the restore point is in the WAL.
    pub lsn: String,
    /// The WAL segment holding it, archived before this returns.
    pub wal_file: String,
    pub server_version: String,
    pub server_major: u32,
}

impl PostgresSource {
    /// Makes restore point `name` and fingerprints the data it marks. A snapshot and a
    /// WAL record are not atomic: writers to every user table are held (`LOCK … IN SHARE
    /// MODE`, for at most `hold`) while both are taken in one transaction, so no commit
    /// falls between them. What is not transactional (sequences) is compared by
    /// invariant. Then the WAL segment is switched and waited for until archived (for
    /// at most `archive_wait`), so a drill to the point can reach it at once.
    pub async fn restore_point(
        &self,
        name: &str,
        checksum_plan: &ChecksumPlan,
        hold: Duration,
        archive_wait: Duration,
    ) -> Result<RestorePoint> {
        let client = self.connect().await?;
        let q = query_error;
        let (server_version, server_major) = version_of(&client).await?;
        let tables: Vec<(String, String)> = client
            .query(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' \
                 ORDER BY 1, 2",
                &[],
            )
            .await
            .map_err(q)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL lock_timeout = '{}ms'",
                hold.as_millis().max(1)
            ))
            .await
            .map_err(q)?;
        if !tables.is_empty() {
            let list: Vec<String> = tables
                .iter()
                .map(|(s, t)| format!("{}.{}", ident(s), ident(t)))
                .collect();
            if let Err(e) = client
                .batch_execute(&format!("LOCK TABLE {} IN SHARE MODE", list.join(", ")))
                .await
            {
                let timed_out = e.as_db_error().is_some_and(|d| d.code().code() == "55P03");
                return Err(if timed_out {
                    Error::infra(format!(
                        "writers on {}:{} did not pause within {} for the restore point",
                        self.spec.host,
                        self.spec.port,
                        humantime::format_duration(hold)
                    ))
                    .with_hint("a transaction holds a table's write lock (idle in transaction?); the next attempt tries again")
                } else {
                    q(e).with_hint("the restore point's role needs the right to lock every user table in SHARE mode (a superuser, or the table's owner)")
                });
            }
        }
        // The snapshot is taken by the first query, after the locks: it and the restore
        // point see the same commits.
        let lsn: String = client
            .query_one("SELECT pg_create_restore_point($1)::text", &[&name])
            .await
            .map_err(|e| {
                q(e).with_hint("creating a restore point needs a superuser, or EXECUTE on pg_create_restore_point granted to the role")
            })?
            .get(0);
        let fingerprint = snapshot_fingerprint(&client, checksum_plan).await?;
        client.batch_execute("COMMIT").await.map_err(q)?;
        let wal_file: String = client
            .query_one("SELECT pg_walfile_name(pg_switch_wal())", &[])
            .await
            .map_err(q)?
            .get(0);
        let deadline = tokio::time::Instant::now() + archive_wait;
        loop {
            let row = client
                .query_one(
                    "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, ''), \
                     coalesce(last_failed_time::text, ''), current_setting('archive_mode') \
                     FROM pg_stat_archiver",
                    &[],
                )
                .await
                .map_err(q)?;
            let archived: String = row.get(0);
            let failed: String = row.get(1);
            let failed_at: String = row.get(2);
            let mode: String = row.get(3);
            if mode == "off" {
                return Err(Error::config(format!(
                    "{}:{} does not archive its WAL (archive_mode = off): a point in time cannot be recovered",
                    self.spec.host, self.spec.port
                ))
                .with_hint("set archive_mode = on and archive_command = 'pgbackrest --stanza=… archive-push %p' on the server, and restart it"));
            }
            if archived.len() == 24 && archived.as_str() >= wal_file.as_str() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let why = if failed.len() == 24 && failed.as_str() >= wal_file.as_str() {
                    format!("archive_command fails: the last failure was {failed} at {failed_at}")
                } else {
                    format!("the last archived is {archived:?}")
                };
                return Err(Error::backup(format!(
                    "WAL segment {wal_file} with the restore point was not archived within {}: {why}",
                    humantime::format_duration(archive_wait)
                ))
                .with_hint("check archive_command on the server and its log; `pgbackrest check` tests archiving")
                .retryable(false));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(RestorePoint {
            fingerprint,
            lsn,
            wal_file,
            server_version,
            server_major,
        })
    }
}

/// What the source's objects hold, read in the dump's snapshot transaction. The large
/// objects' content is read in a savepoint: a dump role that may not read them leaves
/// them counted, not compared, with the reason.
async fn source_holdings(client: &tokio_postgres::Client) -> Result<crate::fingerprint::Holdings> {
    use super::pg_holdings::{parse_holdings, HOLDINGS_SQL, LARGE_OBJECTS_SUM_SQL};
    let q = query_error;
    let json: String = client.query_one(HOLDINGS_SQL, &[]).await.map_err(q)?.get(0);
    client
        .batch_execute("SAVEPOINT firedrill_lo")
        .await
        .map_err(q)?;
    let lo_sum = match client.query_one(LARGE_OBJECTS_SUM_SQL, &[]).await {
        Ok(row) => Ok(row.get::<_, String>(0)),
        Err(e) => {
            client
                .batch_execute("ROLLBACK TO SAVEPOINT firedrill_lo")
                .await
                .map_err(q)?;
            Err(format!(
                "the dump role cannot read them ({}); grant it SELECT on the large objects, or run the dump as their owner",
                e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
            ))
        }
    };
    client
        .batch_execute("RELEASE SAVEPOINT firedrill_lo")
        .await
        .map_err(q)?;
    parse_holdings(&json, lo_sum)
}

/// A query on the source that failed: the server's own message, and a retry only where
/// its SQLSTATE class says the cause can pass (a lost connection, too many of them, an
/// administrator's intervention, a serialization conflict); a SQL error or a missing
/// right is not the infrastructure flaking.
/// What the dump role may read in the database (see [`crate::engine::access`]).
const ACCESS_SQL: &str = r#"
WITH me AS (SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user),
rels AS (
  SELECT c.oid, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relowner
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'S', 'm')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e'))
SELECT
  (SELECT rolsuper FROM me),
  (SELECT rolbypassrls FROM me),
  ARRAY(SELECT quote_ident(n.nspname) FROM pg_namespace n
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                          AND d.objid = n.oid AND d.deptype = 'e')
          AND NOT has_schema_privilege(n.oid, 'USAGE') ORDER BY 1),
  ARRAY(SELECT oid::regclass::text FROM rels
        WHERE relkind IN ('r', 'S') AND NOT has_table_privilege(oid, 'SELECT') ORDER BY 1),
  ARRAY(SELECT oid::regclass::text FROM rels
        WHERE relkind = 'r' AND relrowsecurity AND NOT (SELECT rolsuper OR rolbypassrls FROM me)
          AND (relforcerowsecurity OR NOT pg_has_role(relowner, 'USAGE')) ORDER BY 1),
  ARRAY(SELECT m.oid::text FROM pg_largeobject_metadata m
        WHERE NOT (SELECT rolsuper FROM me)
          AND current_setting('lo_compat_privileges') = 'off'
          AND NOT pg_has_role(m.lomowner, 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM aclexplode(m.lomacl) a
                          WHERE a.privilege_type = 'SELECT'
                            AND CASE WHEN a.grantee = 0 THEN true
                                     ELSE pg_has_role(a.grantee, 'USAGE') END)
        ORDER BY m.oid LIMIT 100),
  (SELECT count(*) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
   WHERE d.datname = current_database())
"#;

fn query_error(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => {
            let class = &db.code().code()[..2];
            if matches!(db.code().code(), "XX001" | "XX002") {
                // The source's own pages fail their checks: every backup of them carries
                // the damage.
                return Error::backup(format!(
                    "the source's data is damaged: {} ({})",
                    db.message(),
                    db.code().code()
                ))
                .with_hint("the server reads a corrupt page (a failing disk, a bad checksum): restore the table from an older good backup, and check the storage")
                .retryable(false)
                .with_source(e);
            }
            let transient = matches!(class, "08" | "40" | "53" | "57");
            Error::infra(format!(
                "query on the source failed: {} ({})",
                db.message(),
                db.code().code()
            ))
            .retryable(transient)
            .with_source(e)
        }
        None => Error::infra(format!("query on the source failed: {e}")).with_source(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_table_is_summed_with_its_algorithm() {
        assert_eq!(RowHash::of("md5sum:3:42"), Some(RowHash::Md5));
        assert_eq!(RowHash::of("rowhash64sum:3:-42"), Some(RowHash::Hash64));
        assert_eq!(RowHash::of("xxh3sum:3:42"), None);
        assert_eq!(RowHash::of(""), None);
        let sql = checksum_sql(&[
            ("public", "plain", RowHash::Hash64),
            ("odd \"s", "it's", RowHash::Md5),
        ]);
        assert!(sql.contains("'rowhash64sum:' || count(*)"), "{sql}");
        assert!(
            sql.contains("hash_record_extended(r, 0)), 0) AS c FROM \"public\".\"plain\""),
            "{sql}"
        );
        assert!(sql.contains("md5(convert_to(r::text, 'UTF8'))"), "{sql}");
        assert!(sql.contains("FROM \"odd \"\"s\".\"it's\" AS r"), "{sql}");
        assert!(sql.contains("'it''s' AS t"), "{sql}");
        assert!(
            HASHABLE_SQL.contains("NOT IN (16, 17, 18,"),
            "{HASHABLE_SQL}"
        );
        assert_eq!(
            parse_hashable(r#"[["public", "a"], ["audit", "b.c"]]"#).unwrap(),
            ["audit.b.c".to_string(), "public.a".to_string()].into()
        );
    }

    #[test]
    fn tool_versions() {
        assert_eq!(
            parse_tool_version("pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n"),
            Some(("15.14".into(), 15))
        );
        assert_eq!(
            parse_tool_version("pg_dump (PostgreSQL) 17beta1"),
            Some(("17beta1".into(), 17))
        );
        assert_eq!(parse_tool_version("garbage"), None);
    }

    #[test]
    fn fingerprint_json() {
        let fp = parse_fingerprint(
            r#"[["public","b",2,[["id","integer"]],8192],["public","a",0,[],0]]"#,
        )
        .unwrap();
        assert_eq!(fp.tables[0].name, "a");
        assert_eq!(fp.tables[1].rows, 2);
        assert_eq!(fp.tables[1].bytes, Some(8192));
        assert_eq!(
            fp.tables[1].columns,
            vec![("id".to_string(), "integer".to_string())]
        );
    }
}
