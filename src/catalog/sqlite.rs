//! [`Catalog`] in one SQLite file (WAL mode, so the CLI and a daemon can share it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    ArtifactRecord, Catalog, Holder, Incident, IncidentChange, LatestRuns, LostRun, OpenFiring,
    OutboxItem, PagePlan, RunClaim, RunRecord, Unrecorded, Verified,
};
use crate::engine::kind::Engine;
use crate::error::{Error, Result};
use crate::report::RunReport;
use crate::status::{OutboxState, PageKind, RunStatus, Severity, Stage, Verdict};

/// The states are stored by their one spelling ([`crate::status`]); a value this
/// firedrill does not know reads as an error naming it, not as a default.
macro_rules! sql_text {
    ($($t:ty),+) => {$(
        impl rusqlite::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
        impl rusqlite::types::FromSql for $t {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                v.as_str()?
                    .parse()
                    .map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
            }
        }
    )+};
}

sql_text!(
    RunStatus,
    Stage,
    Severity,
    PageKind,
    OutboxState,
    Verified,
    Engine
);

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: runs and artifacts
    r#"
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        drill TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        failed_stage TEXT,
        error TEXT,
        artifact TEXT,
        rto_seconds REAL,
        encrypted_bytes INTEGER,
        report TEXT
    );
    CREATE INDEX runs_drill ON runs (drill, started_at);
    CREATE TABLE artifacts (
        drill TEXT NOT NULL,
        run_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        engine TEXT NOT NULL,
        plain_bytes INTEGER NOT NULL,
        encrypted_bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        location TEXT NOT NULL,
        manifest_key TEXT NOT NULL,
        verified TEXT NOT NULL DEFAULT 'never',
        verified_at TEXT,
        PRIMARY KEY (drill, run_id)
    );
    "#,
    // 2: incidents and the notification outbox
    r#"
    CREATE TABLE incidents (
        drill TEXT PRIMARY KEY,
        opened_at TEXT NOT NULL,
        last_paged_at TEXT NOT NULL,
        severity TEXT NOT NULL,
        stage TEXT,
        run_id TEXT NOT NULL,
        channels TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        drill TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        state TEXT NOT NULL DEFAULT 'pending'
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    "#,
    // 3: runs a person accepted (`firedrill accept`) despite the anomaly guards
    r#"
    ALTER TABLE runs ADD COLUMN accepted_at TEXT;
    "#,
    // 4: each drill's newest finished and passing run, kept with every status change, so
    // that listing a thousand drills is one read
    r#"
    CREATE TABLE drill_latest (
        drill TEXT PRIMARY KEY,
        finished TEXT,
        passed TEXT
    );
    INSERT INTO drill_latest (drill) SELECT DISTINCT drill FROM runs;
    UPDATE drill_latest SET
        finished = (SELECT run_id FROM runs r WHERE r.drill = drill_latest.drill AND r.status != 'running' ORDER BY started_at DESC, run_id DESC LIMIT 1),
        passed = (SELECT run_id FROM runs r WHERE r.drill = drill_latest.drill AND r.status = 'passed' ORDER BY started_at DESC, run_id DESC LIMIT 1);
    "#,
    // 5: `aborted` is split by what it meant: a run a crash left behind was lost (no
    // report); a run stopped by Ctrl-C or a shutdown was interrupted; a run whose pipeline
    // sibling failed first failed or errored on that failure.
    r#"
    UPDATE runs SET status = CASE
        WHEN report IS NULL THEN 'lost'
        WHEN json_extract(report, '$.verdict') = 'failed' THEN 'failed'
        WHEN json_extract(report, '$.error.kind') = 'cancelled' THEN 'interrupted'
        ELSE 'error'
    END
    WHERE status = 'aborted';
    "#,
    // 6: dashboard login sessions, kept here so that a logout holds on every daemon
    // sharing the catalog (and across restarts). Only a hash of the cookie is stored.
    r#"
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        token_tag TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    "#,
    // 7: every notification named by its run, kind and channel, queued once however often
    // it is offered (a run kept in the spool and replayed)
    r#"
    ALTER TABLE outbox ADD COLUMN page_id TEXT;
    CREATE UNIQUE INDEX outbox_page_id ON outbox (page_id) WHERE page_id IS NOT NULL;
    "#,
    // 8: the scheduled digests claimed, by the time each was scheduled for (unix
    // seconds): the one process that claims a digest sends it, so a restart or a second
    // daemon sharing the catalog never sends it twice
    r#"
    CREATE TABLE digests (
        scheduled_for INTEGER PRIMARY KEY,
        claimed_at TEXT NOT NULL
    );
    "#,
    // 9: runs under leases, and scheduled firings claimed once. Each running run names
    // its owner (a daemon or a CLI process) and holds its drill until `lease_until`
    // (unix milliseconds), which the owner's heartbeat moves on: a run is recorded lost
    // only once its lease expired, never while its owner lives. `firing` is the
    // scheduled time (unix milliseconds) of the firing a run runs.
    r#"
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_until INTEGER;
    ALTER TABLE runs ADD COLUMN firing INTEGER;
    CREATE INDEX runs_running ON runs (drill) WHERE status = 'running';
    CREATE TABLE firings (
        drill TEXT NOT NULL,
        scheduled_for INTEGER NOT NULL,
        state TEXT NOT NULL,
        owner TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (drill, scheduled_for)
    );
    CREATE INDEX firings_open ON firings (state, scheduled_for);
    "#,
    // 10: the stage a running run is in, for daemons that do not run it
    r#"
    ALTER TABLE runs ADD COLUMN stage TEXT;
    "#,
    // 11: the daemons sharing the catalog, and the drills each loaded (name → hash of
    // its definition, JSON), so that a drill defined differently on one is seen
    r#"
    CREATE TABLE daemons (
        id TEXT PRIMARY KEY,
        seen_at INTEGER NOT NULL,
        drills TEXT NOT NULL
    );
    "#,
    // 12: runs asked for on demand and offered to the daemon with room: the run id the
    // client was given, and what asked for it
    r#"
    ALTER TABLE firings ADD COLUMN run_id TEXT;
    ALTER TABLE firings ADD COLUMN trigger TEXT;
    "#,
    // 13: who opened each session (actor, role, drills: JSON); single sign-on logins in
    // progress; the audit trail
    r#"
    ALTER TABLE sessions ADD COLUMN who TEXT;
    CREATE TABLE login_states (
        id_hash TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        role TEXT,
        source TEXT,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT,
        outcome TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit (at);
    "#,
];

pub struct SqliteCatalog {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// [`Catalog::runs_version`]: moved after each commit that changes runs.
    runs_version: tokio::sync::watch::Sender<u64>,
    /// `PRAGMA data_version` when last polled: it moves when another connection commits
    /// (never for this one's own commits).
    data_version: AtomicI64,
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let hint = match e.sqlite_error_code() {
        Some(C::NotADatabase | C::DatabaseCorrupt) => format!(
            "the catalog file is damaged: `firedrill catalog rebuild` sets it aside as {}.damaged-<time> (keeping the runs, incidents and pages it can still read) and rebuilds the artifact inventory from storage",
            path.display()
        ),
        Some(C::DiskFull) => "free space on the catalog's disk; runs and pages that could not be recorded are kept in the spool and recorded once it has room".into(),
        Some(C::ReadOnly | C::PermissionDenied | C::CannotOpen) => {
            "check that firedrill's user may write the catalog file and its directory".into()
        }
        _ => "check the catalog file's permissions and free space; `firedrill catalog rebuild` recreates the artifact inventory from storage".into(),
    };
    Error::infra(format!("catalog {}: {e}", path.display())).with_hint(hint)
}

/// Why the catalog file at `path` is damaged, if it is (a missing file is not: it is
/// created). Reads it only.
pub fn catalog_damage(path: &Path) -> Option<String> {
    if !path.exists() {
        return None;
    }
    let c = match Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let rows: rusqlite::Result<Vec<String>> = c
        .prepare("PRAGMA quick_check")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
    match rows {
        Ok(r) if r.len() == 1 && r[0] == "ok" => None,
        Ok(r) => Some(r.into_iter().take(3).collect::<Vec<_>>().join("; ")),
        Err(e) => Some(e.to_string()),
    }
}

/// What `catalog rebuild` did with a damaged catalog file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Salvage {
    /// Where the damaged file now is.
    pub set_aside: PathBuf,
    /// Rows copied into the new catalog, per table.
    pub salvaged: Vec<(String, usize)>,
    /// Tables (or parts of them) that could not be read, and why.
    pub lost: Vec<(String, String)>,
}

/// Tables worth salvaging, in order; `drill_latest` is derived and recomputed.
const SALVAGED: &[&str] = &[
    "runs",
    "incidents",
    "outbox",
    "sessions",
    "artifacts",
    "audit",
];

/// An audit entry's row (`id, at, actor, role, source, action, target, detail, outcome`).
fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<super::AuditRow> {
    Ok(super::AuditRow {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        actor: r.get(2)?,
        role: r.get(3)?,
        source: r.get(4)?,
        action: r.get(5)?,
        target: r.get(6)?,
        detail: r.get(7)?,
        outcome: r.get(8)?,
    })
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl SqliteCatalog {
    /// Moves the damaged catalog at `path` aside (with its `-wal`), creates a new one
    /// there, and copies into it every row of its runs, incidents, outbox, sessions and
    /// artifacts that can still be read (in chunks, so one bad page loses its chunk only).
    pub fn set_aside_and_salvage(path: &Path) -> Result<(SqliteCatalog, Salvage)> {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let aside = path.with_file_name(format!("{name}.damaged-{stamp}"));
        std::fs::rename(path, &aside).map_err(|e| {
            Error::infra(format!(
                "cannot set the damaged catalog {} aside: {e}",
                path.display()
            ))
            .with_hint("check that firedrill's user may write the catalog's directory")
        })?;
        for ext in ["-wal", "-shm"] {
            let from = path.with_file_name(format!("{name}{ext}"));
            if from.exists() {
                let to = aside.with_file_name(format!("{name}.damaged-{stamp}{ext}"));
                let _ = std::fs::rename(&from, &to);
            }
        }
        let catalog = SqliteCatalog::open(path)?;
        let mut salvage = Salvage {
            set_aside: aside.clone(),
            salvaged: Vec::new(),
            lost: Vec::new(),
        };
        {
            let c = catalog
                .conn
                .lock()
                .map_err(|_| Error::internal("catalog lock poisoned"))?;
            let uri = format!(
                "file:{}?mode=ro",
                aside
                    .to_string_lossy()
                    .replace('%', "%25")
                    .replace('?', "%3f")
                    .replace('#', "%23")
            );
            let attached = c.execute("ATTACH DATABASE ?1 AS old", params![uri]);
            // A file whose header is gone cannot even be attached (or read): nothing to copy.
            let readable = attached.and_then(|_| {
                c.query_row("SELECT count(*) FROM old.sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
            });
            let tables: &[&str] = match readable {
                Ok(_) => SALVAGED,
                Err(e) => {
                    salvage.lost.push(("everything".into(), e.to_string()));
                    &[]
                }
            };
            for table in tables {
                match salvage_table(&c, table) {
                    Ok((n, None)) => salvage.salvaged.push((table.to_string(), n)),
                    Ok((n, Some(why))) => {
                        salvage.salvaged.push((table.to_string(), n));
                        salvage.lost.push((table.to_string(), why));
                    }
                    Err(e) => salvage.lost.push((table.to_string(), e.to_string())),
                }
            }
            let drills: Vec<String> = c
                .prepare("SELECT DISTINCT drill FROM runs")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                .unwrap_or_default();
            for d in drills {
                let _ = refresh_latest(&c, &d);
            }
            let _ = c.execute("DETACH DATABASE old", []);
        }
        catalog.runs_changed();
        Ok((catalog, salvage))
    }

    /// Opens (creating if needed) the catalog and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::infra(format!(
                    "cannot create the catalog directory {}: {e}",
                    dir.display()
                ))
                .with_hint("choose a writable catalog path (--catalog or FIREDRILL_CATALOG)")
                .retryable(false)
            })?;
        }
        // Processes opening the same catalog at once (a CLI run and a daemon starting)
        // set it up one at a time: switching a new file to WAL and migrating it are not
        // safe to race (SQLite answers "database is locked" at once, or both create the
        // tables). The lock is held until the setup below is done.
        let lock_path = {
            let mut p = path.as_os_str().to_owned();
            p.push("-setup.lock");
            PathBuf::from(p)
        };
        // (An in-memory catalog is this process's alone.)
        let in_memory = path.as_os_str() == ":memory:";
        let setup_lock = (!in_memory)
            .then(|| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .and_then(|f| f.lock().map(|()| f))
            })
            .transpose()
            .map_err(|e| {
                Error::infra(format!(
                    "cannot lock {} to set up the catalog: {e}",
                    lock_path.display()
                ))
                .with_hint("choose a writable catalog path (--catalog or FIREDRILL_CATALOG)")
                .retryable(false)
            })?;
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| db_err(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| db_err(path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| db_err(path, e))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| db_err(path, e))?;
        if version as usize > MIGRATIONS.len() {
            return Err(Error::config(format!(
                "catalog {} has schema version {version}; this firedrill knows {}",
                path.display(),
                MIGRATIONS.len()
            ))
            .with_hint("upgrade firedrill, or point it at another catalog"));
        }
        // Another process may open a new catalog at the same moment (a CLI run and a
        // daemon starting): each migration runs under the write lock, and only if the
        // version read under it still wants it.
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| db_err(path, e))?;
            let applied = conn
                .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
                .and_then(|now| {
                    if now as usize == i {
                        conn.execute_batch(&format!("{m}; PRAGMA user_version = {};", i + 1))
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| conn.execute_batch("COMMIT"));
            if let Err(e) = applied {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(db_err(path, e));
            }
        }
        drop(setup_lock);
        let mut conn = conn;
        match replay_spool(&mut conn, path) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!("recorded {n} runs kept aside while the catalog could not take them")
            }
            Err(e) => tracing::warn!("runs kept aside stay in the spool: {}", db_err(path, e)),
        }
        let data_version = conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| db_err(path, e))?;
        Ok(SqliteCatalog {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
            runs_version: tokio::sync::watch::Sender::new(0),
            data_version: AtomicI64::new(data_version),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tells [`Catalog::runs_version`]'s watchers, after a commit that changed runs.
    fn runs_changed(&self) {
        self.runs_version.send_modify(|v| *v += 1);
    }

    /// Runs `f` on the connection off the async threads.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn
                .lock()
                .map_err(|_| Error::internal("catalog lock poisoned"))?;
            f(&mut c).map_err(|e| db_err(&path, e))
        })
        .await
        .map_err(|e| Error::internal(format!("catalog task: {e}")))?
    }
}

fn artifact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ArtifactRecord> {
    Ok(ArtifactRecord {
        drill: r.get(0)?,
        run_id: r.get(1)?,
        created_at: ts(&r.get::<_, String>(2)?),
        engine: r.get(3)?,
        plain_bytes: r.get::<_, i64>(4)? as u64,
        encrypted_bytes: r.get::<_, i64>(5)? as u64,
        sha256: r.get(6)?,
        location: r.get(7)?,
        manifest_key: r.get(8)?,
        verified: r.get(9)?,
        verified_at: r.get::<_, Option<String>>(10)?.map(|s| ts(&s)),
    })
}

const ARTIFACT_COLS: &str = "drill, run_id, created_at, engine, plain_bytes, encrypted_bytes, sha256, location, manifest_key, verified, verified_at";
const RUN_COLS: &str = "drill, run_id, started_at, finished_at, status, failed_stage, error, artifact, rto_seconds, encrypted_bytes, report";
/// Read after [`RUN_COLS`] by [`run_row`] (columns 11–13).
const RUN_EXTRA: &str = "accepted_at IS NOT NULL, owner, stage";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        drill: r.get(0)?,
        run_id: r.get(1)?,
        started_at: ts(&r.get::<_, String>(2)?),
        finished_at: r.get::<_, Option<String>>(3)?.map(|s| ts(&s)),
        status: r.get(4)?,
        failed_stage: r.get(5)?,
        error: r.get(6)?,
        artifact: r.get(7)?,
        rto_seconds: r.get(8)?,
        encrypted_bytes: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
        report: r.get(10)?,
        accepted: r.get(11)?,
        owner: r.get(12)?,
        stage: r.get(13)?,
    })
}

/// Recomputes `drill`'s row of `drill_latest` after a run of it changed status.
/// Copies `old.table` into `main.table`: the columns both have, a chunk of rowids at a
/// time. Returns the rows copied and, when some chunks could not be read, why.
fn salvage_table(c: &Connection, table: &str) -> rusqlite::Result<(usize, Option<String>)> {
    let cols = |schema: &str| -> rusqlite::Result<Vec<String>> {
        c.prepare(&format!("PRAGMA {schema}.table_info({table})"))?
            .query_map([], |r| r.get::<_, String>(1))?
            .collect()
    };
    let new = cols("main")?;
    let shared: Vec<String> = cols("old")?
        .into_iter()
        .filter(|col| new.contains(col))
        .collect();
    if shared.is_empty() {
        return Ok((0, Some("not in the damaged file".into())));
    }
    let list = shared.join(", ");
    let max: i64 = c.query_row(
        &format!("SELECT coalesce(max(rowid), 0) FROM old.{table}"),
        [],
        |r| r.get(0),
    )?;
    const CHUNK: i64 = 256;
    let (mut copied, mut bad) = (0usize, Vec::new());
    let mut from = 0;
    while from <= max {
        let sql = format!(
            "INSERT OR IGNORE INTO main.{table} ({list}) SELECT {list} FROM old.{table} WHERE rowid >= ?1 AND rowid < ?2"
        );
        match c.execute(&sql, params![from, from + CHUNK]) {
            Ok(n) => copied += n,
            Err(e) => bad.push(format!("rows {from}..{}: {e}", from + CHUNK)),
        }
        from += CHUNK;
    }
    let why = (!bad.is_empty()).then(|| bad.join("; "));
    Ok((copied, why))
}

fn refresh_latest(c: &Connection, drill: &str) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO drill_latest (drill, finished, passed) VALUES (?1,
           (SELECT run_id FROM runs WHERE drill = ?1 AND status != 'running' ORDER BY started_at DESC, run_id DESC LIMIT 1),
           (SELECT run_id FROM runs WHERE drill = ?1 AND status = 'passed' ORDER BY started_at DESC, run_id DESC LIMIT 1))
         ON CONFLICT (drill) DO UPDATE SET finished = excluded.finished, passed = excluded.passed",
    )?
    .execute(params![drill])?;
    Ok(())
}

/// Records a finished run (a retry of the same run replaces it) and its artifact's verdict.
fn finish_run(tx: &Connection, r: &RunReport, artifact: Option<&str>) -> rusqlite::Result<()> {
    let status = r.status();
    let rto = r.recovery_ms() as f64 / 1000.0;
    let verified = r.artifact_verdict();
    let json = serde_json::to_string(r).unwrap_or_default();
    tx.execute(
        &format!(
            "INSERT INTO runs ({RUN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at, status = excluded.status,
               failed_stage = excluded.failed_stage, error = excluded.error, artifact = excluded.artifact,
               rto_seconds = excluded.rto_seconds, encrypted_bytes = excluded.encrypted_bytes, report = excluded.report"
        ),
        params![
            r.drill,
            r.run_id,
            r.started_at.to_string(),
            r.finished_at.to_string(),
            status,
            r.failed_stage,
            r.error.as_ref().map(|e| e.message.clone()),
            artifact,
            if r.verdict == Verdict::Passed { Some(rto) } else { None },
            r.artifact.as_ref().map(|a| a.encrypted_bytes as i64),
            json,
        ],
    )?;
    refresh_latest(tx, &r.drill)?;
    if let (Some(a), Some(v)) = (artifact, verified) {
        tx.execute(
            "UPDATE artifacts SET verified = ?1, verified_at = ?2 WHERE drill = ?3 AND run_id = ?4",
            params![v, r.finished_at.to_string(), r.drill, a],
        )?;
    }
    Ok(())
}

/// Queues a plan's notifications (once each, by page id) and changes its incident.
fn apply_plan(tx: &Connection, plan: &PagePlan) -> rusqlite::Result<usize> {
    let mut queued = 0;
    for p in &plan.pages {
        let state = if p.delivered {
            OutboxState::Sent
        } else {
            OutboxState::Pending
        };
        let n = tx.execute(
            "INSERT OR IGNORE INTO outbox (channel, drill, kind, payload, created_at, next_attempt_at, state, page_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
            params![p.channel, p.drill, p.kind, p.payload, p.at.to_string(), state, p.page_id],
        )?;
        if n > 0 && !p.delivered {
            queued += 1;
        }
    }
    match &plan.incident {
        IncidentChange::Keep => {}
        IncidentChange::Close(drill) => {
            tx.execute("DELETE FROM incidents WHERE drill = ?1", params![drill])?;
        }
        IncidentChange::Put(i) => upsert_incident(tx, i)?,
    }
    Ok(queued)
}

/// Opens a drill's incident, or updates the open one (its first opening stays).
fn upsert_incident(c: &Connection, i: &Incident) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO incidents (drill, opened_at, last_paged_at, severity, stage, run_id, channels)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (drill) DO UPDATE SET last_paged_at = excluded.last_paged_at, severity = excluded.severity,
           stage = excluded.stage, run_id = excluded.run_id, channels = excluded.channels",
        params![
            i.drill,
            i.opened_at.to_string(),
            i.last_paged_at.to_string(),
            i.severity,
            i.stage,
            i.run_id,
            serde_json::to_string(&i.channels).unwrap_or_default()
        ],
    )
    .map(|_| ())
}

/// Records every run the spool kept for the catalog at `path` (its artifact, the run,
/// its pages; each in one transaction), removing each file once committed.
fn replay_spool(c: &mut Connection, path: &Path) -> rusqlite::Result<usize> {
    let mut n = 0;
    for (file, u) in super::spool::entries(path) {
        let tx = c.transaction()?;
        if let Some(a) = &u.artifact {
            insert_artifact(&tx, a)?;
        }
        finish_run(&tx, &u.report, u.drilled.as_deref())?;
        apply_plan(&tx, &u.plan)?;
        tx.commit()?;
        n += 1;
        tracing::info!(
            "recorded run {} of {} from {} (kept aside: {})",
            u.report.run_id,
            u.report.drill,
            file.display(),
            u.why
        );
        if let Err(e) = std::fs::remove_file(&file) {
            tracing::warn!(
                "cannot remove {}: {e} (it is recorded; nothing doubles)",
                file.display()
            );
        }
    }
    Ok(n)
}

fn insert_artifact(c: &Connection, a: &ArtifactRecord) -> rusqlite::Result<()> {
    c.execute(
        &format!(
            "INSERT INTO artifacts ({ARTIFACT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (drill, run_id) DO UPDATE SET created_at = excluded.created_at, engine = excluded.engine,
               plain_bytes = excluded.plain_bytes, encrypted_bytes = excluded.encrypted_bytes, sha256 = excluded.sha256,
               location = excluded.location, manifest_key = excluded.manifest_key"
        ),
        params![
            a.drill,
            a.run_id,
            a.created_at.to_string(),
            a.engine,
            a.plain_bytes as i64,
            a.encrypted_bytes as i64,
            a.sha256,
            a.location,
            a.manifest_key,
            a.verified,
            a.verified_at.map(|t| t.to_string()),
        ],
    )?;
    Ok(())
}

const OUTBOX_COLS: &str =
    "id, channel, drill, kind, payload, created_at, next_attempt_at, attempts, last_error, state";

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxItem> {
    Ok(OutboxItem {
        id: r.get(0)?,
        channel: r.get(1)?,
        drill: r.get(2)?,
        kind: r.get(3)?,
        payload: r.get(4)?,
        created_at: ts(&r.get::<_, String>(5)?),
        next_attempt_at: ts(&r.get::<_, String>(6)?),
        attempts: r.get::<_, i64>(7)? as u32,
        last_error: r.get(8)?,
        state: r.get(9)?,
    })
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn incident(&self, drill: &str) -> Result<Option<Incident>> {
        let drill = drill.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT drill, opened_at, last_paged_at, severity, stage, run_id, channels FROM incidents WHERE drill = ?1",
                params![drill],
                |r| {
                    Ok(Incident {
                        drill: r.get(0)?,
                        opened_at: ts(&r.get::<_, String>(1)?),
                        last_paged_at: ts(&r.get::<_, String>(2)?),
                        severity: r.get(3)?,
                        stage: r.get(4)?,
                        run_id: r.get(5)?,
                        channels: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn put_incident(&self, i: &Incident) -> Result<()> {
        let i = i.clone();
        self.with(move |c| upsert_incident(c, &i)).await
    }

    async fn put_session(&self, session: &super::Session) -> Result<()> {
        let s = session.clone();
        let now = jiff::Timestamp::now().as_second();
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?;
            c.execute(
                "INSERT OR REPLACE INTO sessions (id_hash, token_tag, expires_at, who) VALUES (?1, ?2, ?3, ?4)",
                params![s.id_hash, s.token_tag, s.expires_at, super::who_json(&s.who)],
            )
            .map(|_| ())
        })
        .await
    }

    async fn session(&self, id_hash: &str) -> Result<Option<super::Session>> {
        let id_hash = id_hash.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT id_hash, token_tag, expires_at, who FROM sessions WHERE id_hash = ?1",
                params![id_hash],
                |r| {
                    Ok(super::Session {
                        id_hash: r.get(0)?,
                        token_tag: r.get(1)?,
                        expires_at: r.get(2)?,
                        who: super::who_of(r.get::<_, Option<String>>(3)?),
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn revoke_session(&self, id_hash: &str) -> Result<()> {
        let id_hash = id_hash.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE id_hash = ?1", params![id_hash])
                .map(|_| ())
        })
        .await
    }

    async fn put_login_state(&self, id_hash: &str, data: &str, expires_at: i64) -> Result<()> {
        let (id_hash, data) = (id_hash.to_string(), data.to_string());
        let now = jiff::Timestamp::now().as_second();
        self.with(move |c| {
            c.execute("DELETE FROM login_states WHERE expires_at <= ?1", params![now])?;
            c.execute(
                "INSERT OR REPLACE INTO login_states (id_hash, data, expires_at) VALUES (?1, ?2, ?3)",
                params![id_hash, data, expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn take_login_state(&self, id_hash: &str) -> Result<Option<String>> {
        let id_hash = id_hash.to_string();
        let now = jiff::Timestamp::now().as_second();
        self.with(move |c| {
            c.query_row(
                "DELETE FROM login_states WHERE id_hash = ?1 RETURNING data, expires_at",
                params![id_hash],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()
            .map(|row| row.filter(|(_, exp)| *exp > now).map(|(d, _)| d))
        })
        .await
    }

    async fn record_audit(&self, e: &crate::access::AuditEntry) -> Result<i64> {
        let e = e.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO audit (at, actor, role, source, action, target, detail, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    e.at.as_millisecond(),
                    e.actor.to_string(),
                    e.role.map(|r| r.as_str()),
                    e.source,
                    e.action.as_str(),
                    e.target,
                    e.detail,
                    e.outcome.as_str()
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn audit(&self, q: &crate::access::AuditQuery) -> Result<Vec<crate::access::AuditEntry>> {
        let since = q.since.map_or(i64::MIN, |t| t.as_millisecond());
        let until = q.until.map_or(i64::MAX, |t| t.as_millisecond());
        let before = q.before.unwrap_or(i64::MAX);
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut st = c.prepare(
                "SELECT id, at, actor, role, source, action, target, detail, outcome FROM audit
                 WHERE at >= ?1 AND at <= ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4",
            )?;
            let rows = st.query_map(params![since, until, before, limit], audit_row)?;
            rows.map(|r| r.map(super::AuditRow::entry)).collect()
        })
        .await
    }

    async fn claim_digest(&self, scheduled_for: jiff::Timestamp) -> Result<bool> {
        let at = jiff::Timestamp::now().to_string();
        self.with(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO digests (scheduled_for, claimed_at) VALUES (?1, ?2)",
                params![scheduled_for.as_second(), at],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn close_incident(&self, drill: &str) -> Result<()> {
        let drill = drill.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM incidents WHERE drill = ?1", params![drill])
                .map(|_| ())
        })
        .await
    }

    async fn enqueue(
        &self,
        channel: &str,
        drill: &str,
        kind: PageKind,
        payload: &str,
        at: jiff::Timestamp,
    ) -> Result<i64> {
        let (channel, drill, payload) =
            (channel.to_string(), drill.to_string(), payload.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO outbox (channel, drill, kind, payload, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![channel, drill, kind, payload, at.to_string()],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn due(&self, now: jiff::Timestamp, limit: usize) -> Result<Vec<OutboxItem>> {
        self.with(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {OUTBOX_COLS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2"
            ))?;
            let rows = st.query_map(params![now.to_string(), limit as i64], outbox_row)?;
            rows.collect()
        })
        .await
    }

    async fn claim_due(
        &self,
        due_by: jiff::Timestamp,
        after: i64,
        hold_until: jiff::Timestamp,
    ) -> Result<Option<OutboxItem>> {
        self.with(move |c| {
            c.query_row(
                &format!(
                    "UPDATE outbox SET next_attempt_at = ?3 WHERE id = (
                       SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 AND id > ?2
                       ORDER BY id LIMIT 1)
                     RETURNING {OUTBOX_COLS}"
                ),
                params![due_by.to_string(), after, hold_until.to_string()],
                outbox_row,
            )
            .optional()
        })
        .await
    }

    async fn mark_sent(&self, id: i64) -> Result<()> {
        self.with(move |c| {
            c.execute("UPDATE outbox SET state = 'sent', attempts = attempts + 1, last_error = NULL WHERE id = ?1", params![id])
                .map(|_| ())
        })
        .await
    }

    async fn mark_retry(&self, id: i64, next: jiff::Timestamp, error: &str) -> Result<()> {
        let error = error.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                params![id, next.to_string(), error],
            )
            .map(|_| ())
        })
        .await
    }

    async fn mark_expired(&self, id: i64, error: &str) -> Result<()> {
        let error = error.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE outbox SET state = 'expired', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )
            .map(|_| ())
        })
        .await
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>> {
        self.with(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {OUTBOX_COLS} FROM outbox ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = st.query_map(params![limit as i64], outbox_row)?;
            rows.collect()
        })
        .await
    }

    async fn export(&self) -> Result<super::CatalogExport> {
        self.with(|c| {
            let runs = {
                let mut st = c.prepare(&format!(
                    "SELECT {RUN_COLS}, {RUN_EXTRA}, accepted_at FROM runs ORDER BY started_at, run_id"
                ))?;
                let rows = st.query_map([], |r| {
                    Ok((run_row(r)?, r.get::<_, Option<String>>(14)?.map(|s| ts(&s))))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let artifacts = {
                let mut st = c.prepare(&format!("SELECT {ARTIFACT_COLS} FROM artifacts"))?;
                let rows = st.query_map([], artifact_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let incidents = {
                let mut st = c.prepare(
                    "SELECT drill, opened_at, last_paged_at, severity, stage, run_id, channels FROM incidents",
                )?;
                let rows = st.query_map([], |r| {
                    Ok(Incident {
                        drill: r.get(0)?,
                        opened_at: ts(&r.get::<_, String>(1)?),
                        last_paged_at: ts(&r.get::<_, String>(2)?),
                        severity: r.get(3)?,
                        stage: r.get(4)?,
                        run_id: r.get(5)?,
                        channels: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let outbox = {
                let mut st = c.prepare(&format!("SELECT {OUTBOX_COLS}, page_id FROM outbox ORDER BY id"))?;
                let rows = st.query_map([], |r| Ok((outbox_row(r)?, r.get(10)?)))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let digests = {
                let mut st = c.prepare("SELECT scheduled_for FROM digests")?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<Vec<i64>>>()?
            };
            let audit = {
                let mut st = c.prepare(
                    "SELECT id, at, actor, role, source, action, target, detail, outcome FROM audit ORDER BY id",
                )?;
                let rows = st.query_map([], audit_row)?;
                rows.map(|r| r.map(super::AuditRow::entry))
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            Ok(super::CatalogExport {
                runs,
                artifacts,
                incidents,
                outbox,
                digests,
                audit,
            })
        })
        .await
    }

    async fn claim_run(&self, claim: &RunClaim) -> Result<Option<Holder>> {
        let cl = claim.clone();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let holder = tx
                .query_row(
                    "SELECT run_id, coalesce(owner, ''), started_at FROM runs
                     WHERE drill = ?1 AND status = 'running' AND lease_until > ?2 LIMIT 1",
                    params![cl.drill, cl.at.as_millisecond()],
                    |r| {
                        Ok(Holder {
                            run_id: r.get(0)?,
                            owner: r.get(1)?,
                            started_at: ts(&r.get::<_, String>(2)?),
                        })
                    },
                )
                .optional()?;
            if holder.is_none() {
                tx.execute(
                    "INSERT INTO runs (run_id, drill, started_at, status, owner, lease_until, firing)
                     VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6)",
                    params![
                        cl.run_id,
                        cl.drill,
                        cl.at.to_string(),
                        cl.owner,
                        cl.lease_until.as_millisecond(),
                        cl.firing.map(|t| t.as_millisecond())
                    ],
                )?;
            }
            tx.commit()?;
            Ok(holder)
        })
        .await
    }

    async fn renew_leases(&self, owner: &str, until: jiff::Timestamp) -> Result<Vec<String>> {
        let owner = owner.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE runs SET lease_until = ?2 WHERE owner = ?1 AND status = 'running'",
                params![owner, until.as_millisecond()],
            )?;
            let held = {
                let mut st =
                    tx.prepare("SELECT run_id FROM runs WHERE owner = ?1 AND status = 'running'")?;
                let rows = st.query_map(params![owner], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()?
            };
            tx.commit()?;
            Ok(held)
        })
        .await
    }

    async fn reap_expired(&self, now: jiff::Timestamp) -> Result<Vec<LostRun>> {
        let lost = self
            .with(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let list: Vec<LostRun> = {
                    let mut st = tx.prepare(&format!(
                        "SELECT {RUN_COLS}, {RUN_EXTRA}, firing FROM runs
                         WHERE status = 'running' AND (lease_until IS NULL OR lease_until < ?1)"
                    ))?;
                    let rows = st.query_map(params![now.as_millisecond()], |r| {
                        Ok(LostRun {
                            run: run_row(r)?,
                            owner: r.get(12)?,
                            firing: r
                                .get::<_, Option<i64>>(14)?
                                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                                .map(|t| (t, false)),
                        })
                    })?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                let mut out = Vec::with_capacity(list.len());
                for mut l in list {
                    tx.execute(
                        "UPDATE runs SET status = 'lost', finished_at = ?2, error = ?3 WHERE run_id = ?1",
                        params![l.run.run_id, now.to_string(), super::lost_message(l.owner.as_deref())],
                    )?;
                    if let Some((at, reopened)) = &mut l.firing {
                        let attempts: Option<i64> = tx
                            .query_row(
                                "SELECT attempts FROM firings WHERE drill = ?1 AND scheduled_for = ?2 AND state = 'claimed'",
                                params![l.run.drill, at.as_millisecond()],
                                |r| r.get(0),
                            )
                            .optional()?;
                        if let Some(n) = attempts {
                            *reopened = n < super::FIRING_ATTEMPTS as i64;
                            tx.execute(
                                "UPDATE firings SET state = ?3, owner = NULL, run_id = NULL WHERE drill = ?1 AND scheduled_for = ?2",
                                params![
                                    l.run.drill,
                                    at.as_millisecond(),
                                    if *reopened { "open" } else { "lost" }
                                ],
                            )?;
                        }
                    }
                    out.push(l);
                }
                let drills: std::collections::BTreeSet<String> =
                    out.iter().map(|l| l.run.drill.clone()).collect();
                for d in &drills {
                    refresh_latest(&tx, d)?;
                }
                // Firings are kept a week: long enough to be sure of "once".
                tx.execute(
                    "DELETE FROM firings WHERE scheduled_for < ?1 AND state != 'open'",
                    params![now.as_millisecond() - super::FIRINGS_KEPT_MS],
                )?;
                tx.commit()?;
                Ok(out)
            })
            .await?;
        if !lost.is_empty() {
            self.runs_changed();
        }
        Ok(lost)
    }

    async fn report_daemon(
        &self,
        me: &super::DaemonSeen,
        since: jiff::Timestamp,
    ) -> Result<Vec<super::DaemonSeen>> {
        let me = me.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO daemons (id, seen_at, drills) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, drills = excluded.drills",
                params![
                    me.id,
                    me.seen_at.as_millisecond(),
                    serde_json::to_string(&me.drills).unwrap_or_default()
                ],
            )?;
            tx.execute(
                "DELETE FROM daemons WHERE seen_at < ?1",
                params![me.seen_at.as_millisecond() - 86_400_000],
            )?;
            let seen = {
                let mut st = tx.prepare("SELECT id, seen_at, drills FROM daemons WHERE seen_at >= ?1 ORDER BY id")?;
                let rows = st.query_map(params![since.as_millisecond()], |r| {
                    Ok(super::DaemonSeen {
                        id: r.get(0)?,
                        seen_at: jiff::Timestamp::from_millisecond(r.get(1)?).unwrap_or_default(),
                        drills: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            Ok(seen)
        })
        .await
    }

    async fn run_owners(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT DISTINCT owner FROM runs WHERE status = 'running' AND owner IS NOT NULL",
            )?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

    async fn expire_owner(&self, owner: &str) -> Result<usize> {
        let owner = owner.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE runs SET lease_until = 0 WHERE owner = ?1 AND status = 'running'",
                params![owner],
            )
        })
        .await
    }

    async fn run_stage(&self, run_id: &str, stage: crate::status::Stage) -> Result<()> {
        let run_id = run_id.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE runs SET stage = ?2 WHERE run_id = ?1 AND status = 'running'",
                params![run_id, stage],
            )
            .map(|_| ())
        })
        .await
    }

    async fn claim_firing(
        &self,
        drill: &str,
        scheduled_for: jiff::Timestamp,
        owner: &str,
    ) -> Result<bool> {
        let (drill, owner) = (drill.to_string(), owner.to_string());
        let at = jiff::Timestamp::now().to_string();
        self.with(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO firings (drill, scheduled_for, state, owner, attempts, claimed_at)
                 VALUES (?1, ?2, 'claimed', ?3, 1, ?4)",
                params![drill, scheduled_for.as_millisecond(), owner, at],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn offer_run(
        &self,
        drill: &str,
        at: jiff::Timestamp,
        run_id: &str,
        trigger: &str,
    ) -> Result<()> {
        let (drill, run_id, trigger) = (drill.to_string(), run_id.to_string(), trigger.to_string());
        let now = jiff::Timestamp::now().to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO firings (drill, scheduled_for, state, attempts, claimed_at, run_id, trigger)
                 VALUES (?1, ?2, 'open', 0, ?3, ?4, ?5)",
                params![drill, at.as_millisecond(), now, run_id, trigger],
            )
            .map(|_| ())
        })
        .await
    }

    async fn offered(&self, run_id: &str) -> Result<Option<String>> {
        let run_id = run_id.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT drill FROM firings WHERE run_id = ?1 AND state = 'open'",
                params![run_id],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }

    async fn reopen_firing(&self, drill: &str, scheduled_for: jiff::Timestamp) -> Result<()> {
        let drill = drill.to_string();
        self.with(move |c| {
            // Handed over, not failed: the claim does not count as an attempt.
            c.execute(
                "UPDATE firings SET state = 'open', owner = NULL, run_id = NULL, attempts = max(attempts - 1, 0)
                 WHERE drill = ?1 AND scheduled_for = ?2 AND state = 'claimed'",
                params![drill, scheduled_for.as_millisecond()],
            )
            .map(|_| ())
        })
        .await
    }

    async fn claim_open_firing(
        &self,
        drills: &[String],
        owner: &str,
    ) -> Result<Option<OpenFiring>> {
        let drills: std::collections::HashSet<String> = drills.iter().cloned().collect();
        let owner = owner.to_string();
        let at = jiff::Timestamp::now().to_string();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            type Row = (String, i64, i64, Option<String>, Option<String>);
            let open: Vec<Row> = {
                let mut st = tx.prepare(
                    "SELECT drill, scheduled_for, attempts, run_id, trigger FROM firings WHERE state = 'open' ORDER BY scheduled_for",
                )?;
                let rows = st.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let Some((drill, ms, attempts, run_id, trigger)) =
                open.into_iter().find(|(d, ..)| drills.contains(d))
            else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE firings SET state = 'claimed', owner = ?3, attempts = attempts + 1, claimed_at = ?4
                 WHERE drill = ?1 AND scheduled_for = ?2",
                params![drill, ms, owner, at],
            )?;
            tx.commit()?;
            Ok(jiff::Timestamp::from_millisecond(ms).ok().map(|scheduled_for| OpenFiring {
                drill,
                scheduled_for,
                attempt: attempts as u32 + 1,
                run_id,
                trigger,
            }))
        })
        .await
    }

    async fn run_finished(&self, report: &RunReport, artifact: Option<&str>) -> Result<()> {
        let r = report.clone();
        let artifact = artifact.map(str::to_string);
        self.with(move |c| {
            let tx = c.transaction()?;
            finish_run(&tx, &r, artifact.as_deref())?;
            tx.commit()
        })
        .await?;
        self.runs_changed();
        Ok(())
    }

    async fn record_pages(&self, plan: &PagePlan) -> Result<usize> {
        let plan = plan.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            let n = apply_plan(&tx, &plan)?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    fn keep_unrecorded(&self, u: &Unrecorded) -> Result<std::path::PathBuf> {
        super::spool::put(&self.path, u)
    }

    async fn catch_up(&self) -> Result<usize> {
        let path = self.path.clone();
        let n = self.with(move |c| replay_spool(c, &path)).await?;
        if n > 0 {
            self.runs_changed();
        }
        Ok(n)
    }

    async fn put_artifact(&self, a: &ArtifactRecord) -> Result<()> {
        let a = a.clone();
        self.with(move |c| insert_artifact(c, &a)).await
    }

    async fn artifacts(&self, drill: Option<&str>) -> Result<Vec<ArtifactRecord>> {
        let drill = drill.map(str::to_string);
        self.with(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {ARTIFACT_COLS} FROM artifacts WHERE (?1 IS NULL OR drill = ?1) ORDER BY drill, created_at, run_id"
            ))?;
            let rows = st.query_map(params![drill], artifact_row)?;
            rows.collect()
        })
        .await
    }

    async fn delete_artifact(&self, drill: &str, run_id: &str) -> Result<()> {
        let (drill, run_id) = (drill.to_string(), run_id.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM artifacts WHERE drill = ?1 AND run_id = ?2",
                params![drill, run_id],
            )
            .map(|_| ())
        })
        .await
    }

    async fn runs(&self, drill: Option<&str>, limit: usize) -> Result<Vec<RunRecord>> {
        let drill = drill.map(str::to_string);
        self.with(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {RUN_COLS}, {RUN_EXTRA} FROM runs WHERE (?1 IS NULL OR drill = ?1) ORDER BY started_at DESC, run_id DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![drill, limit as i64], run_row)?;
            rows.collect()
        })
        .await
    }

    fn runs_version(&self) -> tokio::sync::watch::Receiver<u64> {
        self.runs_version.subscribe()
    }

    async fn poll_changes(&self) -> Result<()> {
        let now: i64 = self
            .with(|c| c.query_row("PRAGMA data_version", [], |r| r.get(0)))
            .await?;
        if self.data_version.swap(now, Ordering::Relaxed) != now {
            self.runs_changed();
        }
        Ok(())
    }

    async fn accept_run(&self, run_id: &str, at: jiff::Timestamp) -> Result<()> {
        let run_id = run_id.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE runs SET accepted_at = ?1 WHERE run_id = ?2",
                params![at.to_string(), run_id],
            )?;
            tx.execute(
                "UPDATE artifacts SET verified = 'yes', verified_at = ?1 \
                 WHERE run_id = (SELECT artifact FROM runs WHERE run_id = ?2) \
                   AND drill = (SELECT drill FROM runs WHERE run_id = ?2)",
                params![at.to_string(), run_id],
            )?;
            tx.commit()
        })
        .await?;
        self.runs_changed();
        Ok(())
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        let run_id = run_id.to_string();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {RUN_COLS}, {RUN_EXTRA} FROM runs WHERE run_id = ?1"),
                params![run_id],
                run_row,
            )
            .optional()
        })
        .await
    }

    async fn latest_runs(
        &self,
        drills: &[String],
        with_reports: bool,
    ) -> Result<HashMap<String, LatestRuns>> {
        let mut out: HashMap<String, LatestRuns> = drills
            .iter()
            .map(|d| (d.clone(), LatestRuns::default()))
            .collect();
        let cols = if with_reports {
            RUN_COLS.to_string()
        } else {
            RUN_COLS.replace(", report", ", NULL")
        };
        self.with(move |c| {
            for (column, passed) in [("finished", false), ("passed", true)] {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {cols}, {RUN_EXTRA} FROM runs WHERE run_id IN (SELECT {column} FROM drill_latest)"
                ))?;
                let rows = st.query_map([], run_row)?;
                for r in rows {
                    let r = r?;
                    if let Some(l) = out.get_mut(&r.drill) {
                        if passed {
                            l.passed = Some(r);
                        } else {
                            l.finished = Some(r);
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn replace_artifacts(&self, artifacts: &[ArtifactRecord]) -> Result<()> {
        let list = artifacts.to_vec();
        self.with(move |c| {
            let tx = c.transaction()?;
            let keep: std::collections::HashSet<(String, String)> = list
                .iter()
                .map(|a| (a.drill.clone(), a.run_id.clone()))
                .collect();
            let existing: Vec<(String, String)> = {
                let mut st = tx.prepare("SELECT drill, run_id FROM artifacts")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for (d, r) in existing {
                if !keep.contains(&(d.clone(), r.clone())) {
                    tx.execute(
                        "DELETE FROM artifacts WHERE drill = ?1 AND run_id = ?2",
                        params![d, r],
                    )?;
                }
            }
            for a in &list {
                insert_artifact(&tx, a)?;
            }
            tx.commit()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_opening_a_new_catalog_at_once_all_get_it() {
        // A CLI run and a daemon starting opened the same new file at once: one of them
        // failed with "table runs already exists".
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("catalog.db");
            let barrier = Arc::new(std::sync::Barrier::new(6));
            let opens: Vec<_> = (0..6)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        SqliteCatalog::open(&path).map(|_| ())
                    })
                })
                .collect();
            for o in opens {
                o.join().unwrap().unwrap();
            }
        }
    }

    /// Records a run started, under a lease of a day.
    async fn started(c: &SqliteCatalog, drill: &str, run: &str, at: jiff::Timestamp) {
        let claim = RunClaim {
            drill: drill.into(),
            run_id: run.into(),
            owner: "test@h:1/1".into(),
            at,
            lease_until: at
                .checked_add(jiff::SignedDuration::from_hours(24))
                .unwrap(),
            firing: None,
        };
        assert_eq!(c.claim_run(&claim).await.unwrap(), None);
    }

    fn art(run: &str) -> ArtifactRecord {
        ArtifactRecord {
            drill: "shop".into(),
            run_id: run.into(),
            created_at: "2026-11-26T10:00:00Z".parse().unwrap(),
            engine: Engine::Postgres,
            plain_bytes: 10,
            encrypted_bytes: 5,
            sha256: "ab".repeat(32),
            location: format!("shop/{run}/artifact.dump.zst.age"),
            manifest_key: format!("shop/{run}/manifest.json"),
            verified: Verified::Never,
            verified_at: None,
        }
    }

    #[tokio::test]
    async fn a_digest_is_claimed_once_across_handles_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let monday: jiff::Timestamp = "2026-11-30T08:00:00Z".parse().unwrap();
        let a = SqliteCatalog::open(&path).unwrap();
        let b = SqliteCatalog::open(&path).unwrap();
        assert!(
            a.claim_digest(monday).await.unwrap(),
            "the first claim wins"
        );
        assert!(
            !b.claim_digest(monday).await.unwrap(),
            "another process's claim"
        );
        assert!(!a.claim_digest(monday).await.unwrap(), "asked again");
        drop((a, b));
        let c = SqliteCatalog::open(&path).unwrap();
        assert!(!c.claim_digest(monday).await.unwrap(), "after a restart");
        let next = monday
            .checked_add(jiff::SignedDuration::from_hours(24 * 7))
            .unwrap();
        assert!(
            c.claim_digest(next).await.unwrap(),
            "the next one is its own"
        );
    }

    #[tokio::test]
    async fn migrations_apply_once_and_artifacts_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let c = SqliteCatalog::open(&path).unwrap();
        c.put_artifact(&art("r1")).await.unwrap();
        c.put_artifact(&art("r2")).await.unwrap();
        drop(c);
        let c = SqliteCatalog::open(&path).unwrap();
        let v: i64 = c
            .with(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        assert_eq!(
            c.artifacts(Some("shop")).await.unwrap(),
            vec![art("r1"), art("r2")]
        );
        c.replace_artifacts(&[art("r2")]).await.unwrap();
        assert_eq!(c.artifacts(None).await.unwrap(), vec![art("r2")]);
    }

    #[tokio::test]
    async fn leases_and_firings_as_every_catalog_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        crate::catalog::conformance::leases(&c, "l").await;
        crate::catalog::conformance::firings(&c, "f").await;
        crate::catalog::conformance::gone_owners(&c, "g").await;
        crate::catalog::conformance::daemons_seen(&c, "d").await;
        crate::catalog::conformance::audit_and_logins(&c, "a").await;
        // Two handles on one file: two processes.
        let c: std::sync::Arc<dyn Catalog> = std::sync::Arc::new(c);
        crate::catalog::conformance::racing_claims(c, "r").await;
    }

    /// A run from before leases (no owner, no lease) is lost at the next reaping.
    #[tokio::test]
    async fn runs_from_before_leases_are_lost() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        c.with(|c| {
            c.execute(
                "INSERT INTO runs (run_id, drill, started_at, status) VALUES ('r9', 'shop', '2026-01-01T00:00:00Z', 'running')",
                [],
            )
        })
        .await
        .unwrap();
        let lost = c.reap_expired(jiff::Timestamp::now()).await.unwrap();
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].owner, None);
        assert_eq!(c.run("r9").await.unwrap().unwrap().status, RunStatus::Lost);
        assert!(c
            .reap_expired(jiff::Timestamp::now())
            .await
            .unwrap()
            .is_empty());
    }

    /// A catalog written before run states were types: its `aborted` rows get the status
    /// they meant.
    #[tokio::test]
    async fn old_aborted_rows_are_split_by_what_they_meant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        {
            let conn = Connection::open(&path).unwrap();
            for (i, m) in MIGRATIONS.iter().enumerate().take(4) {
                conn.execute_batch(&format!(
                    "BEGIN; {m}; PRAGMA user_version = {}; COMMIT;",
                    i + 1
                ))
                .unwrap();
            }
            let report = |verdict: &str, kind: &str| {
                format!(r#"{{"verdict":"{verdict}","error":{{"kind":"{kind}"}}}}"#)
            };
            for (id, report) in [
                ("crashed", None),
                ("sigterm", Some(report("error", "cancelled"))),
                ("store-full", Some(report("error", "infrastructure"))),
                ("broken", Some(report("failed", "backup"))),
            ] {
                conn.execute(
                    "INSERT INTO runs (run_id, drill, started_at, status, report) VALUES (?1, 'shop', '2026-01-01T00:00:00Z', 'aborted', ?2)",
                    params![id, report],
                )
                .unwrap();
            }
        }
        let c = SqliteCatalog::open(&path).unwrap();
        for (id, status) in [
            ("crashed", RunStatus::Lost),
            ("sigterm", RunStatus::Interrupted),
            ("store-full", RunStatus::Error),
            ("broken", RunStatus::Failed),
        ] {
            assert_eq!(c.run(id).await.unwrap().unwrap().status, status, "{id}");
        }
    }

    #[tokio::test]
    async fn latest_runs_of_many_drills_in_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let at = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        let finish = |drill: &str, id: &str, s: i64, verdict: Verdict| {
            let mut r = RunReport::empty(drill, id, at(s));
            r.verdict = verdict;
            r
        };
        c.run_finished(&finish("shop", "a", 0, Verdict::Passed), None)
            .await
            .unwrap();
        c.run_finished(&finish("shop", "b", 10, Verdict::Failed), None)
            .await
            .unwrap();
        started(&c, "shop", "c", at(20)).await;
        c.run_finished(&finish("crm", "d", 5, Verdict::Failed), None)
            .await
            .unwrap();
        let names = ["shop", "crm", "never"].map(String::from);
        let latest = c.latest_runs(&names, false).await.unwrap();
        let shop = &latest["shop"];
        assert_eq!(
            shop.finished.as_ref().unwrap().run_id,
            "b",
            "running c is not finished"
        );
        assert_eq!(shop.passed.as_ref().unwrap().run_id, "a");
        assert!(shop.finished.as_ref().unwrap().report.is_none());
        assert_eq!(latest["crm"].finished.as_ref().unwrap().run_id, "d");
        assert!(latest["crm"].passed.is_none());
        assert!(latest["never"].finished.is_none() && latest["never"].passed.is_none());
        let with = c.latest_runs(&names[..1], true).await.unwrap();
        assert!(with["shop"].finished.as_ref().unwrap().report.is_some());
    }

    #[tokio::test]
    async fn runs_version_moves_with_finished_runs_here_and_in_other_processes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let c = SqliteCatalog::open(&path).unwrap();
        let v = c.runs_version();
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        started(&c, "shop", "a", t0).await;
        c.latest_runs(&["shop".into()], false).await.unwrap();
        c.poll_changes().await.unwrap();
        assert_eq!(
            *v.borrow(),
            0,
            "a started run and reads leave finished runs as they were"
        );
        c.run_finished(&RunReport::empty("shop", "a", t0), None)
            .await
            .unwrap();
        assert_eq!(*v.borrow(), 1, "this handle's write moves it at once");
        c.accept_run("a", t0).await.unwrap();
        assert_eq!(*v.borrow(), 2);
        c.poll_changes().await.unwrap();
        assert_eq!(*v.borrow(), 2, "its own commits are not another process's");

        // Another process (the CLI) finishes a run in the same file.
        let other = SqliteCatalog::open(&path).unwrap();
        other
            .run_finished(&RunReport::empty("crm", "b", t0), None)
            .await
            .unwrap();
        assert_eq!(*v.borrow(), 2, "not seen before a poll");
        c.poll_changes().await.unwrap();
        assert_eq!(*v.borrow(), 3, "the poll notices the other writer");
        c.poll_changes().await.unwrap();
        assert_eq!(*v.borrow(), 3, "once");
    }

    fn page(run: &str, channel: &str) -> super::super::QueuedPage {
        super::super::QueuedPage {
            page_id: format!("{run}/trigger/{channel}"),
            channel: channel.into(),
            drill: "shop".into(),
            kind: PageKind::Trigger,
            payload: "{}".into(),
            at: "2026-11-26T10:00:00Z".parse().unwrap(),
            delivered: false,
        }
    }

    #[tokio::test]
    async fn a_run_kept_aside_is_recorded_once_with_its_pages_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let c = SqliteCatalog::open(&path).unwrap();
        let t0: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let mut report = RunReport::empty("shop", "r1", t0);
        report.verdict = Verdict::Failed;
        report.exit_code = 1;
        let mut sent = page("r1", "hook");
        sent.delivered = true;
        let u = Unrecorded {
            report,
            drilled: Some("r1".into()),
            artifact: Some(art("r1")),
            plan: PagePlan {
                pages: vec![sent, page("r1", "mail")],
                incident: IncidentChange::Put(Incident {
                    drill: "shop".into(),
                    opened_at: t0,
                    last_paged_at: t0,
                    severity: Severity::Critical,
                    stage: None,
                    run_id: "r1".into(),
                    channels: vec!["hook".into(), "mail".into()],
                }),
            },
            why: "disk full".into(),
        };
        let kept = c.keep_unrecorded(&u).unwrap();
        assert!(
            kept.starts_with(dir.path().join("c.db.spool")),
            "{}",
            kept.display()
        );
        // Kept twice (two processes, or a retry), replayed twice: once in the catalog.
        let twin = super::super::spool::dirs(&path)[1].join("r1.json");
        std::fs::create_dir_all(twin.parent().unwrap()).unwrap();
        std::fs::copy(&kept, &twin).unwrap();
        assert_eq!(c.catch_up().await.unwrap(), 2);
        assert!(!kept.exists() && !twin.exists(), "the spool is emptied");
        assert_eq!(c.catch_up().await.unwrap(), 0);
        let runs = c.runs(Some("shop"), 10).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, RunStatus::Failed);
        assert_eq!(c.artifacts(Some("shop")).await.unwrap().len(), 1);
        let outbox = c.outbox(10).await.unwrap();
        assert_eq!(outbox.len(), 2, "{outbox:?}");
        let state = |ch: &str| outbox.iter().find(|o| o.channel == ch).unwrap().state;
        assert_eq!(
            state("hook"),
            OutboxState::Sent,
            "delivered directly: not again"
        );
        assert_eq!(state("mail"), OutboxState::Pending, "not delivered: queued");
        assert!(c.incident("shop").await.unwrap().is_some());
        // Opening the catalog replays too.
        c.keep_unrecorded(&u).unwrap();
        drop(c);
        let c = SqliteCatalog::open(&path).unwrap();
        assert_eq!(c.runs(Some("shop"), 10).await.unwrap().len(), 1);
        assert_eq!(c.outbox(10).await.unwrap().len(), 2);
        std::fs::remove_dir_all(super::super::spool::dirs(&path)[1].clone()).ok();
    }

    #[tokio::test]
    async fn a_damaged_catalog_is_set_aside_and_what_is_readable_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let c = SqliteCatalog::open(&path).unwrap();
        let t0: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        for i in 0..50 {
            c.run_finished(&RunReport::empty("shop", &format!("r{i:02}"), t0), None)
                .await
                .unwrap();
        }
        c.record_pages(&PagePlan {
            pages: vec![page("r1", "hook")],
            incident: IncidentChange::Keep,
        })
        .await
        .unwrap();
        c.with(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))
            .await
            .unwrap();
        drop(c);
        assert_eq!(catalog_damage(&path), None);

        // Damaged pages at the end of the file: the header and early pages still read.
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        for b in &mut bytes[len - 4096..] {
            *b = 0x5a;
        }
        std::fs::write(&path, &bytes).unwrap();
        let damage = catalog_damage(&path);
        assert!(damage.is_some(), "quick_check sees it");
        let err = SqliteCatalog::open(&path).err().map(|e| e.to_string());
        let (c, salvage) = SqliteCatalog::set_aside_and_salvage(&path).unwrap();
        assert!(salvage.set_aside.exists());
        assert_eq!(catalog_damage(&path), None, "the new file is sound");
        let copied: usize = salvage.salvaged.iter().map(|(_, n)| n).sum();
        assert!(copied > 0, "{salvage:?} (open said {err:?})");
        drop(c);

        // A file whose header is gone: nothing readable, still set aside and replaced.
        std::fs::write(&path, vec![0xa5u8; 16384]).unwrap();
        let e = SqliteCatalog::open(&path).err().unwrap();
        assert!(
            e.hint.as_deref().unwrap_or("").contains("catalog rebuild"),
            "{e}"
        );
        assert!(catalog_damage(&path).is_some());
        let (c, salvage) = SqliteCatalog::set_aside_and_salvage(&path).unwrap();
        assert_eq!(salvage.lost[0].0, "everything", "{salvage:?}");
        assert!(c.runs(None, 10).await.unwrap().is_empty());
        assert_eq!(
            std::fs::read(&salvage.set_aside).unwrap(),
            vec![0xa5u8; 16384],
            "kept as it was"
        );
    }
}
