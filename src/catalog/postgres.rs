//! [`Catalog`] in a PostgreSQL database, shared by several daemons (and the CLI) on
//! several hosts: `catalog = "postgres://user@host/db"` in the main config, the password
//! from the environment or a file, never in the URL.
//!
//! Every write that must happen once (a firing, a run's claim, an outbox row) is one
//! statement or one transaction whose conflict PostgreSQL settles: `ON CONFLICT DO
//! NOTHING`, and `FOR UPDATE SKIP LOCKED` where several processes take rows from one
//! queue.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::Row;

use super::{
    ArtifactRecord, Catalog, Holder, Incident, IncidentChange, LatestRuns, LostRun, OpenFiring,
    OutboxItem, PagePlan, RunClaim, RunRecord, Session, Unrecorded,
};
use crate::error::{Error, Result};
use crate::report::RunReport;
use crate::status::{OutboxState, PageKind, Verdict};
use crate::tls::TlsSpec;

/// Schema migrations, applied in order under an advisory lock (several daemons may start
/// at once); `firedrill_schema` records which ran.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE runs (
        run_id text PRIMARY KEY,
        drill text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        status text NOT NULL,
        failed_stage text,
        error text,
        artifact text,
        rto_seconds double precision,
        encrypted_bytes bigint,
        report text,
        accepted_at timestamptz,
        owner text,
        lease_until bigint,
        firing bigint
    );
    CREATE INDEX runs_drill ON runs (drill, started_at DESC, run_id DESC);
    CREATE INDEX runs_running ON runs (drill) WHERE status = 'running';
    CREATE INDEX runs_owner ON runs (owner) WHERE status = 'running';
    CREATE TABLE artifacts (
        drill text NOT NULL,
        run_id text NOT NULL,
        created_at timestamptz NOT NULL,
        engine text NOT NULL,
        plain_bytes bigint NOT NULL,
        encrypted_bytes bigint NOT NULL,
        sha256 text NOT NULL,
        location text NOT NULL,
        manifest_key text NOT NULL,
        verified text NOT NULL DEFAULT 'never',
        verified_at timestamptz,
        PRIMARY KEY (drill, run_id)
    );
    CREATE TABLE incidents (
        drill text PRIMARY KEY,
        opened_at timestamptz NOT NULL,
        last_paged_at timestamptz NOT NULL,
        severity text NOT NULL,
        stage text,
        run_id text NOT NULL,
        channels text NOT NULL
    );
    CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        channel text NOT NULL,
        drill text NOT NULL,
        kind text NOT NULL,
        payload text NOT NULL,
        created_at timestamptz NOT NULL,
        next_attempt_at timestamptz NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        state text NOT NULL DEFAULT 'pending',
        page_id text UNIQUE
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
    CREATE TABLE sessions (
        id_hash text PRIMARY KEY,
        token_tag text NOT NULL,
        expires_at bigint NOT NULL
    );
    CREATE TABLE digests (
        scheduled_for bigint PRIMARY KEY,
        claimed_at timestamptz NOT NULL
    );
    CREATE TABLE firings (
        drill text NOT NULL,
        scheduled_for bigint NOT NULL,
        state text NOT NULL,
        owner text,
        attempts integer NOT NULL DEFAULT 1,
        claimed_at timestamptz NOT NULL,
        PRIMARY KEY (drill, scheduled_for)
    );
    CREATE INDEX firings_open ON firings (scheduled_for) WHERE state = 'open';
    -- moves with every change to finished runs, for other processes to notice
    CREATE TABLE changes (id integer PRIMARY KEY CHECK (id = 1), runs bigint NOT NULL);
    INSERT INTO changes VALUES (1, 0);
"#,
    // 2: the stage a running run is in, for daemons that do not run it
    r#"
    ALTER TABLE runs ADD COLUMN stage text;
"#,
    // 3: the daemons sharing the catalog, and the drills each loaded (name → hash of its
    // definition, JSON), so that a drill defined differently on one is seen
    r#"
    CREATE TABLE daemons (
        id text PRIMARY KEY,
        seen_at bigint NOT NULL,
        drills text NOT NULL
    );
"#,
    // 4: runs asked for on demand and offered to the daemon with room: the run id the
    // client was given, and what asked for it
    r#"
    ALTER TABLE firings ADD COLUMN run_id text;
    ALTER TABLE firings ADD COLUMN trigger text;
"#,
    // 5: who opened each session (JSON); single sign-on logins in progress; the audit
    // trail (`imported_id`: the entry's id in the SQLite catalog it was migrated from)
    r#"
    ALTER TABLE sessions ADD COLUMN who text;
    CREATE TABLE login_states (
        id_hash text PRIMARY KEY,
        data text NOT NULL,
        expires_at bigint NOT NULL
    );
    CREATE TABLE audit (
        id bigserial PRIMARY KEY,
        at bigint NOT NULL,
        actor text NOT NULL,
        role text,
        source text,
        action text NOT NULL,
        target text,
        detail text,
        outcome text NOT NULL,
        imported_id bigint UNIQUE
    );
    CREATE INDEX audit_at ON audit (at);
"#,
];

/// Where a PostgreSQL catalog is, as the main config says.
#[derive(Debug, Clone)]
pub struct PgLocation {
    /// `postgres://user@host:port/db?sslmode=…` (no password).
    pub url: String,
    pub password: Option<crate::secret::Secret>,
    /// CA certificates (PEM) the server's certificate must chain to, besides the system's.
    pub ca: Option<PathBuf>,
}

pub struct PgCatalog {
    pool: Pool,
    /// `user@host:port/db`, for messages.
    name: String,
    /// Where runs it cannot take are kept (a file name whose `.spool` sibling is used).
    spool: PathBuf,
    runs_version: tokio::sync::watch::Sender<u64>,
    /// `changes.runs` when last polled.
    seen: AtomicI64,
    /// The TLS settings and the host they were checked against, to explain a handshake.
    tls: TlsSpec,
    host: String,
}

/// A URL's `user@host:port/db`, never its password.
fn describe(cfg: &tokio_postgres::Config) -> String {
    let host = cfg
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        cfg.get_user().unwrap_or(""),
        cfg.get_dbname().unwrap_or("")
    )
}

fn pg_err(name: &str, e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("certificate") || lower.contains("tls") {
        "the catalog server's TLS certificate was not accepted: give the CA that signed it in catalog_ca (PEM), and connect by the name or address the certificate is for"
    } else if lower.contains("password authentication failed") {
        "check catalog_password (and the user in the URL)"
    } else {
        "check that the catalog's PostgreSQL server is up and reachable, and the user, password and database; a run it cannot take is kept in the spool and recorded when it can"
    };
    Error::infra(format!("catalog {name}: {text}"))
        .with_hint(hint)
        .retryable(true)
}

fn text<T: FromStr<Err = String>>(r: &Row, i: usize) -> std::result::Result<T, String> {
    r.get::<_, String>(i).parse()
}

fn opt_text<T: FromStr<Err = String>>(r: &Row, i: usize) -> std::result::Result<Option<T>, String> {
    r.get::<_, Option<String>>(i).map(|s| s.parse()).transpose()
}

const RUN_COLS: &str = "drill, run_id, started_at, finished_at, status, failed_stage, error, artifact, rto_seconds, encrypted_bytes, report, accepted_at IS NOT NULL, owner, stage";
/// The columns of [`RUN_COLS`] a finished run is written with.
const RUN_WRITTEN: &str = "drill, run_id, started_at, finished_at, status, failed_stage, error, artifact, rto_seconds, encrypted_bytes, report";
const ARTIFACT_COLS: &str = "drill, run_id, created_at, engine, plain_bytes, encrypted_bytes, sha256, location, manifest_key, verified, verified_at";
const OUTBOX_COLS: &str =
    "id, channel, drill, kind, payload, created_at, next_attempt_at, attempts, last_error, state";

fn run_row(r: &Row) -> std::result::Result<RunRecord, String> {
    Ok(RunRecord {
        drill: r.get(0),
        run_id: r.get(1),
        started_at: r.get(2),
        finished_at: r.get(3),
        status: text(r, 4)?,
        failed_stage: opt_text(r, 5)?,
        error: r.get(6),
        artifact: r.get(7),
        rto_seconds: r.get(8),
        encrypted_bytes: r.get::<_, Option<i64>>(9).map(|v| v as u64),
        report: r.get(10),
        accepted: r.get(11),
        owner: r.get(12),
        stage: opt_text(r, 13)?,
    })
}

fn artifact_row(r: &Row) -> std::result::Result<ArtifactRecord, String> {
    Ok(ArtifactRecord {
        drill: r.get(0),
        run_id: r.get(1),
        created_at: r.get(2),
        engine: text(r, 3)?,
        plain_bytes: r.get::<_, i64>(4) as u64,
        encrypted_bytes: r.get::<_, i64>(5) as u64,
        sha256: r.get(6),
        location: r.get(7),
        manifest_key: r.get(8),
        verified: text(r, 9)?,
        verified_at: r.get(10),
    })
}

fn outbox_row(r: &Row) -> std::result::Result<OutboxItem, String> {
    Ok(OutboxItem {
        id: r.get(0),
        channel: r.get(1),
        drill: r.get(2),
        kind: text(r, 3)?,
        payload: r.get(4),
        created_at: r.get(5),
        next_attempt_at: r.get(6),
        attempts: r.get::<_, i32>(7) as u32,
        last_error: r.get(8),
        state: text(r, 9)?,
    })
}

fn ms(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

impl PgCatalog {
    /// Connects (checking that the server answers), and applies pending migrations.
    /// `spool` names where runs it cannot take are kept (beside it, `…spool/`).
    pub async fn connect(loc: &PgLocation, spool: &Path) -> Result<Self> {
        let (url, mut tls) = crate::tls::split_url(&loc.url).map_err(|e| {
            Error::config(format!("catalog: {e}"))
                .with_hint("write ?sslmode=verify-full (or disable, prefer, require, verify-ca) in the catalog URL")
        })?;
        if loc.ca.is_some() {
            tls.ca = loc.ca.clone();
        }
        let mut cfg: tokio_postgres::Config = url.parse().map_err(|e| {
            Error::config(format!("catalog: not a PostgreSQL URL: {e}"))
                .with_hint("write it as postgres://user@host:5432/database (the password goes in catalog_password)")
        })?;
        if cfg.get_password().is_some() {
            return Err(Error::config(format!(
                "catalog {}: the URL holds a password",
                describe(&cfg)
            ))
            .with_hint("remove it from the URL and give catalog_password = { env = \"VAR\" } or { file = \"/path\" }"));
        }
        if let Some(p) = &loc.password {
            cfg.password(p.expose());
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("firedrill");
        }
        cfg.connect_timeout(std::time::Duration::from_secs(10));
        let (mode, connector) = tls.postgres()?;
        cfg.ssl_mode(mode);
        let name = describe(&cfg);
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => String::new(),
        };
        let mgr = Manager::from_config(
            cfg,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(8)
            .wait_timeout(Some(std::time::Duration::from_secs(15)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .recycle_timeout(Some(std::time::Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::internal(format!("catalog pool: {e}")))?;
        let c = PgCatalog {
            pool,
            spool: spool.to_path_buf(),
            runs_version: tokio::sync::watch::Sender::new(0),
            seen: AtomicI64::new(0),
            name,
            tls,
            host,
        };
        c.migrate().await?;
        let seen = c.changes().await?;
        c.seen.store(seen, Ordering::Relaxed);
        match c.catch_up().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!("recorded {n} runs kept aside while the catalog could not take them")
            }
            Err(e) => tracing::warn!("runs kept aside stay in the spool: {e}"),
        }
        Ok(c)
    }

    /// `user@host:port/db`.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        pg_err(&self.name, e)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| match self.tls.explain(&self.host, &e) {
                Some(t) => t.context(format!("catalog {}", self.name)),
                None => self.err(e),
            })
    }

    async fn migrate(&self) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.err(e))?;
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(4242017519); CREATE TABLE IF NOT EXISTS firedrill_schema (version integer NOT NULL)",
        )
        .await
        .map_err(|e| self.err(e))?;
        let version: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM firedrill_schema",
                &[],
            )
            .await
            .map_err(|e| self.err(e))?
            .get(0);
        if version as usize > MIGRATIONS.len() {
            return Err(Error::config(format!(
                "catalog {} has schema version {version}; this firedrill knows {}",
                self.name,
                MIGRATIONS.len()
            ))
            .with_hint("upgrade firedrill (every daemon sharing the catalog), or point it at another catalog"));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(m).await.map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO firedrill_schema (version) VALUES ($1)",
                &[&(i as i32 + 1)],
            )
            .await
            .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn changes(&self) -> Result<i64> {
        let c = self.client().await?;
        Ok(c.query_one("SELECT runs FROM changes WHERE id = 1", &[])
            .await
            .map_err(|e| self.err(e))?
            .get(0))
    }

    fn runs_changed(&self) {
        self.runs_version.send_modify(|v| *v += 1);
    }

    async fn query<T>(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        row: fn(&Row) -> std::result::Result<T, String>,
    ) -> Result<Vec<T>> {
        let c = self.client().await?;
        let rows = c.query(sql, params).await.map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| row(r).map_err(|e| self.err(e)))
            .collect()
    }

    async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let c = self.client().await?;
        c.execute(sql, params).await.map_err(|e| self.err(e))
    }
}

/// Bumps the change counter other processes poll, in the transaction that changed runs.
async fn bump(c: &impl GenericClient) -> std::result::Result<(), tokio_postgres::Error> {
    c.execute("UPDATE changes SET runs = runs + 1 WHERE id = 1", &[])
        .await
        .map(|_| ())
}

async fn finish_run(
    c: &impl GenericClient,
    r: &RunReport,
    artifact: Option<&str>,
) -> std::result::Result<(), tokio_postgres::Error> {
    let status = r.status().as_str();
    let rto = (r.verdict == Verdict::Passed).then(|| r.recovery_ms() as f64 / 1000.0);
    let json = serde_json::to_string(r).unwrap_or_default();
    let failed = r.failed_stage.map(|s| s.as_str());
    let error = r.error.as_ref().map(|e| e.message.clone());
    let bytes = r.artifact.as_ref().map(|a| a.encrypted_bytes as i64);
    c.execute(
        &format!(
            "INSERT INTO runs ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (run_id) DO UPDATE SET finished_at = excluded.finished_at, status = excluded.status,
               failed_stage = excluded.failed_stage, error = excluded.error, artifact = excluded.artifact,
               rto_seconds = excluded.rto_seconds, encrypted_bytes = excluded.encrypted_bytes, report = excluded.report",
            RUN_WRITTEN
        ),
        &[
            &r.drill,
            &r.run_id,
            &r.started_at,
            &r.finished_at,
            &status,
            &failed,
            &error,
            &artifact,
            &rto,
            &bytes,
            &json,
        ],
    )
    .await?;
    if let (Some(a), Some(v)) = (artifact, r.artifact_verdict()) {
        c.execute(
            "UPDATE artifacts SET verified = $1, verified_at = $2 WHERE drill = $3 AND run_id = $4",
            &[&v.as_str(), &r.finished_at, &r.drill, &a],
        )
        .await?;
    }
    bump(c).await
}

async fn apply_plan(
    c: &impl GenericClient,
    plan: &PagePlan,
) -> std::result::Result<usize, tokio_postgres::Error> {
    let mut queued = 0;
    for p in &plan.pages {
        let state = if p.delivered {
            OutboxState::Sent
        } else {
            OutboxState::Pending
        };
        let n = c
            .execute(
                "INSERT INTO outbox (channel, drill, kind, payload, created_at, next_attempt_at, state, page_id)
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7) ON CONFLICT (page_id) DO NOTHING",
                &[&p.channel, &p.drill, &p.kind.as_str(), &p.payload, &p.at, &state.as_str(), &p.page_id],
            )
            .await?;
        if n > 0 && !p.delivered {
            queued += 1;
        }
    }
    match &plan.incident {
        IncidentChange::Keep => {}
        IncidentChange::Close(drill) => {
            c.execute("DELETE FROM incidents WHERE drill = $1", &[drill])
                .await?;
        }
        IncidentChange::Put(i) => upsert_incident(c, i).await?,
    }
    Ok(queued)
}

/// What writing a row that is already there does: update it, or keep it (an import).
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnConflict {
    Update,
    Keep,
}

async fn upsert_incident(
    c: &impl GenericClient,
    i: &Incident,
) -> std::result::Result<(), tokio_postgres::Error> {
    put_incident(c, i, OnConflict::Update).await.map(|_| ())
}

/// Writes an incident; returns the rows written (0 when kept).
async fn put_incident(
    c: &impl GenericClient,
    i: &Incident,
    conflict: OnConflict,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let on = match conflict {
        OnConflict::Update => {
            "DO UPDATE SET last_paged_at = excluded.last_paged_at, severity = excluded.severity,
           stage = excluded.stage, run_id = excluded.run_id, channels = excluded.channels"
        }
        OnConflict::Keep => "DO NOTHING",
    };
    c.execute(
        &format!("INSERT INTO incidents (drill, opened_at, last_paged_at, severity, stage, run_id, channels)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (drill) {on}"),
        &[
            &i.drill,
            &i.opened_at,
            &i.last_paged_at,
            &i.severity.as_str(),
            &i.stage.map(|s| s.as_str()),
            &i.run_id,
            &serde_json::to_string(&i.channels).unwrap_or_default(),
        ],
    )
    .await
}

async fn insert_artifact(
    c: &impl GenericClient,
    a: &ArtifactRecord,
) -> std::result::Result<(), tokio_postgres::Error> {
    put_artifact(c, a, OnConflict::Update).await.map(|_| ())
}

/// Writes an artifact (its verification kept when updated); returns the rows written.
async fn put_artifact(
    c: &impl GenericClient,
    a: &ArtifactRecord,
    conflict: OnConflict,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let on = match conflict {
        OnConflict::Update => "DO UPDATE SET created_at = excluded.created_at, engine = excluded.engine,
               plain_bytes = excluded.plain_bytes, encrypted_bytes = excluded.encrypted_bytes, sha256 = excluded.sha256,
               location = excluded.location, manifest_key = excluded.manifest_key",
        OnConflict::Keep => "DO NOTHING",
    };
    c.execute(
        &format!(
            "INSERT INTO artifacts ({ARTIFACT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (drill, run_id) {on}"
        ),
        &[
            &a.drill,
            &a.run_id,
            &a.created_at,
            &a.engine.as_str(),
            &(a.plain_bytes as i64),
            &(a.encrypted_bytes as i64),
            &a.sha256,
            &a.location,
            &a.manifest_key,
            &a.verified.as_str(),
            &a.verified_at,
        ],
    )
    .await
}

#[async_trait]
impl Catalog for PgCatalog {
    async fn record_pages(&self, plan: &PagePlan) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.err(e))?;
        let n = apply_plan(&tx, plan).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(n)
    }

    fn keep_unrecorded(&self, u: &Unrecorded) -> Result<PathBuf> {
        super::spool::put(&self.spool, u)
    }

    async fn catch_up(&self) -> Result<usize> {
        let mut n = 0;
        for (file, u) in super::spool::entries(&self.spool) {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(|e| self.err(e))?;
            if let Some(a) = &u.artifact {
                insert_artifact(&tx, a).await.map_err(|e| self.err(e))?;
            }
            finish_run(&tx, &u.report, u.drilled.as_deref())
                .await
                .map_err(|e| self.err(e))?;
            apply_plan(&tx, &u.plan).await.map_err(|e| self.err(e))?;
            tx.commit().await.map_err(|e| self.err(e))?;
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
        if n > 0 {
            self.runs_changed();
        }
        Ok(n)
    }

    async fn put_session(&self, s: &Session) -> Result<()> {
        let now = jiff::Timestamp::now().as_second();
        self.exec("DELETE FROM sessions WHERE expires_at <= $1", &[&now])
            .await?;
        self.exec(
            "INSERT INTO sessions (id_hash, token_tag, expires_at, who) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id_hash) DO UPDATE SET token_tag = excluded.token_tag, expires_at = excluded.expires_at, who = excluded.who",
            &[&s.id_hash, &s.token_tag, &s.expires_at, &super::who_json(&s.who)],
        )
        .await
        .map(|_| ())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<Session>> {
        Ok(self
            .query(
                "SELECT id_hash, token_tag, expires_at, who FROM sessions WHERE id_hash = $1",
                &[&id_hash],
                |r| {
                    Ok(Session {
                        id_hash: r.get(0),
                        token_tag: r.get(1),
                        expires_at: r.get(2),
                        who: super::who_of(r.get(3)),
                    })
                },
            )
            .await?
            .pop())
    }

    async fn revoke_session(&self, id_hash: &str) -> Result<()> {
        self.exec("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash])
            .await
            .map(|_| ())
    }

    async fn put_login_state(&self, id_hash: &str, data: &str, expires_at: i64) -> Result<()> {
        let now = jiff::Timestamp::now().as_second();
        self.exec("DELETE FROM login_states WHERE expires_at <= $1", &[&now])
            .await?;
        self.exec(
            "INSERT INTO login_states (id_hash, data, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            &[&id_hash, &data, &expires_at],
        )
        .await
        .map(|_| ())
    }

    async fn take_login_state(&self, id_hash: &str) -> Result<Option<String>> {
        let now = jiff::Timestamp::now().as_second();
        Ok(self
            .query(
                "DELETE FROM login_states WHERE id_hash = $1 RETURNING data, expires_at",
                &[&id_hash],
                |r| Ok((r.get::<_, String>(0), r.get::<_, i64>(1))),
            )
            .await?
            .pop()
            .filter(|(_, exp)| *exp > now)
            .map(|(d, _)| d))
    }

    async fn record_audit(&self, e: &crate::access::AuditEntry) -> Result<i64> {
        let ids = self
            .query(
                "INSERT INTO audit (at, actor, role, source, action, target, detail, outcome)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &e.at.as_millisecond(),
                    &e.actor.to_string(),
                    &e.role.map(|r| r.as_str()),
                    &e.source,
                    &e.action.as_str(),
                    &e.target,
                    &e.detail,
                    &e.outcome.as_str(),
                ],
                |r| Ok(r.get::<_, i64>(0)),
            )
            .await?;
        Ok(ids.first().copied().unwrap_or_default())
    }

    async fn audit(&self, q: &crate::access::AuditQuery) -> Result<Vec<crate::access::AuditEntry>> {
        let since = q.since.map_or(i64::MIN, |t| t.as_millisecond());
        let until = q.until.map_or(i64::MAX, |t| t.as_millisecond());
        let before = q.before.unwrap_or(i64::MAX);
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT id, at, actor, role, source, action, target, detail, outcome FROM audit
                 WHERE at >= $1 AND at <= $2 AND id < $3 ORDER BY id DESC LIMIT $4",
                &[&since, &until, &before, &limit],
                |r| {
                    Ok(super::AuditRow {
                        id: r.get(0),
                        at_ms: r.get(1),
                        actor: r.get(2),
                        role: r.get(3),
                        source: r.get(4),
                        action: r.get(5),
                        target: r.get(6),
                        detail: r.get(7),
                        outcome: r.get(8),
                    })
                },
            )
            .await?;
        Ok(rows.into_iter().map(super::AuditRow::entry).collect())
    }

    async fn incident(&self, drill: &str) -> Result<Option<Incident>> {
        Ok(self
            .query(
                "SELECT drill, opened_at, last_paged_at, severity, stage, run_id, channels FROM incidents WHERE drill = $1",
                &[&drill],
                |r| {
                    Ok(Incident {
                        drill: r.get(0),
                        opened_at: r.get(1),
                        last_paged_at: r.get(2),
                        severity: text(r, 3)?,
                        stage: opt_text(r, 4)?,
                        run_id: r.get(5),
                        channels: serde_json::from_str(&r.get::<_, String>(6)).unwrap_or_default(),
                    })
                },
            )
            .await?
            .pop())
    }

    async fn claim_digest(&self, scheduled_for: jiff::Timestamp) -> Result<bool> {
        let n = self
            .exec(
                "INSERT INTO digests (scheduled_for, claimed_at) VALUES ($1, now()) ON CONFLICT DO NOTHING",
                &[&scheduled_for.as_second()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn put_incident(&self, i: &Incident) -> Result<()> {
        let c = self.client().await?;
        upsert_incident(&c, i).await.map_err(|e| self.err(e))
    }

    async fn close_incident(&self, drill: &str) -> Result<()> {
        self.exec("DELETE FROM incidents WHERE drill = $1", &[&drill])
            .await
            .map(|_| ())
    }

    async fn enqueue(
        &self,
        channel: &str,
        drill: &str,
        kind: PageKind,
        payload: &str,
        at: jiff::Timestamp,
    ) -> Result<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "INSERT INTO outbox (channel, drill, kind, payload, created_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
                &[&channel, &drill, &kind.as_str(), &payload, &at],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.get(0))
    }

    async fn due(&self, now: jiff::Timestamp, limit: usize) -> Result<Vec<OutboxItem>> {
        self.query(
            &format!("SELECT {OUTBOX_COLS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2"),
            &[&now, &(limit as i64)],
            outbox_row,
        )
        .await
    }

    async fn claim_due(
        &self,
        due_by: jiff::Timestamp,
        after: i64,
        hold_until: jiff::Timestamp,
    ) -> Result<Option<OutboxItem>> {
        Ok(self
            .query(
                &format!(
                    "UPDATE outbox SET next_attempt_at = $3 WHERE id = (
                       SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 AND id > $2
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING {OUTBOX_COLS}"
                ),
                &[&due_by, &after, &hold_until],
                outbox_row,
            )
            .await?
            .pop())
    }

    async fn mark_sent(&self, id: i64) -> Result<()> {
        self.exec(
            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, last_error = NULL WHERE id = $1",
            &[&id],
        )
        .await
        .map(|_| ())
    }

    async fn mark_retry(&self, id: i64, next: jiff::Timestamp, error: &str) -> Result<()> {
        self.exec(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1",
            &[&id, &next, &error],
        )
        .await
        .map(|_| ())
    }

    async fn mark_expired(&self, id: i64, error: &str) -> Result<()> {
        self.exec(
            "UPDATE outbox SET state = 'expired', attempts = attempts + 1, last_error = $2 WHERE id = $1",
            &[&id, &error],
        )
        .await
        .map(|_| ())
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>> {
        self.query(
            &format!("SELECT {OUTBOX_COLS} FROM outbox ORDER BY id DESC LIMIT $1"),
            &[&(limit as i64)],
            outbox_row,
        )
        .await
    }

    async fn import(&self, data: &super::CatalogExport) -> Result<super::Imported> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.err(e))?;
        let mut n = super::Imported::default();
        for (r, accepted_at) in &data.runs {
            let status = r.status.as_str();
            let failed = r.failed_stage.map(|s| s.as_str());
            let bytes = r.encrypted_bytes.map(|b| b as i64);
            n.runs += tx
                .execute(
                    "INSERT INTO runs (drill, run_id, started_at, finished_at, status, failed_stage, error, artifact,
                       rto_seconds, encrypted_bytes, report, accepted_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (run_id) DO NOTHING",
                    &[
                        &r.drill,
                        &r.run_id,
                        &r.started_at,
                        &r.finished_at,
                        &status,
                        &failed,
                        &r.error,
                        &r.artifact,
                        &r.rto_seconds,
                        &bytes,
                        &r.report,
                        accepted_at,
                    ],
                )
                .await
                .map_err(|e| self.err(e))? as usize;
        }
        for a in &data.artifacts {
            n.artifacts += put_artifact(&tx, a, OnConflict::Keep)
                .await
                .map_err(|e| self.err(e))? as usize;
        }
        for i in &data.incidents {
            n.incidents += put_incident(&tx, i, OnConflict::Keep)
                .await
                .map_err(|e| self.err(e))? as usize;
        }
        for (o, page_id) in &data.outbox {
            // A notification from before page ids is named by its place in the old
            // catalog: a second migration does not queue it again.
            let page_id = page_id
                .clone()
                .unwrap_or_else(|| format!("migrated/{}", o.id));
            n.outbox += tx
                .execute(
                    "INSERT INTO outbox (channel, drill, kind, payload, created_at, next_attempt_at, attempts, last_error, state, page_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (page_id) DO NOTHING",
                    &[
                        &o.channel,
                        &o.drill,
                        &o.kind.as_str(),
                        &o.payload,
                        &o.created_at,
                        &o.next_attempt_at,
                        &(o.attempts as i32),
                        &o.last_error,
                        &o.state.as_str(),
                        &page_id,
                    ],
                )
                .await
                .map_err(|e| self.err(e))? as usize;
        }
        for d in &data.digests {
            n.digests += tx
                .execute(
                    "INSERT INTO digests (scheduled_for, claimed_at) VALUES ($1, now()) ON CONFLICT DO NOTHING",
                    &[d],
                )
                .await
                .map_err(|e| self.err(e))? as usize;
        }
        for a in &data.audit {
            n.audit += tx
                .execute(
                    "INSERT INTO audit (at, actor, role, source, action, target, detail, outcome, imported_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    &[
                        &a.at.as_millisecond(),
                        &a.actor.to_string(),
                        &a.role.map(|r| r.as_str()),
                        &a.source,
                        &a.action.as_str(),
                        &a.target,
                        &a.detail,
                        &a.outcome.as_str(),
                        &a.id,
                    ],
                )
                .await
                .map_err(|e| self.err(e))? as usize;
        }
        bump(&tx).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.runs_changed();
        Ok(n)
    }

    async fn claim_run(&self, cl: &RunClaim) -> Result<Option<Holder>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.err(e))?;
        // One claim of a drill at a time, across every process sharing the catalog.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('firedrill.drill.' || $1))",
            &[&cl.drill],
        )
        .await
        .map_err(|e| self.err(e))?;
        let held = tx
            .query(
                "SELECT run_id, coalesce(owner, ''), started_at FROM runs
                 WHERE drill = $1 AND status = 'running' AND lease_until > $2 LIMIT 1",
                &[&cl.drill, &ms(cl.at)],
            )
            .await
            .map_err(|e| self.err(e))?;
        if let Some(r) = held.first() {
            return Ok(Some(Holder {
                run_id: r.get(0),
                owner: r.get(1),
                started_at: r.get(2),
            }));
        }
        tx.execute(
            "INSERT INTO runs (run_id, drill, started_at, status, owner, lease_until, firing)
             VALUES ($1, $2, $3, 'running', $4, $5, $6)",
            &[
                &cl.run_id,
                &cl.drill,
                &cl.at,
                &cl.owner,
                &ms(cl.lease_until),
                &cl.firing.map(ms),
            ],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(None)
    }

    async fn renew_leases(&self, owner: &str, until: jiff::Timestamp) -> Result<Vec<String>> {
        self.query(
            "UPDATE runs SET lease_until = $2 WHERE owner = $1 AND status = 'running' RETURNING run_id",
            &[&owner, &ms(until)],
            |r| Ok(r.get(0)),
        )
        .await
    }

    async fn reap_expired(&self, now: jiff::Timestamp) -> Result<Vec<LostRun>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.err(e))?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {RUN_COLS}, firing FROM runs
                     WHERE status = 'running' AND (lease_until IS NULL OR lease_until < $1)
                     FOR UPDATE SKIP LOCKED"
                ),
                &[&ms(now)],
            )
            .await
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let run = run_row(r).map_err(|e| self.err(e))?;
            let owner: Option<String> = r.get(12);
            let firing: Option<i64> = r.get(14);
            tx.execute(
                "UPDATE runs SET status = 'lost', finished_at = $2, error = $3 WHERE run_id = $1",
                &[&run.run_id, &now, &super::lost_message(owner.as_deref())],
            )
            .await
            .map_err(|e| self.err(e))?;
            let mut fired = None;
            if let Some(at) = firing {
                let attempts = tx
                    .query(
                        "SELECT attempts FROM firings WHERE drill = $1 AND scheduled_for = $2 AND state = 'claimed' FOR UPDATE",
                        &[&run.drill, &at],
                    )
                    .await
                    .map_err(|e| self.err(e))?;
                let t = jiff::Timestamp::from_millisecond(at).ok();
                if let (Some(row), Some(t)) = (attempts.first(), t) {
                    let again = row.get::<_, i32>(0) < super::FIRING_ATTEMPTS as i32;
                    tx.execute(
                        "UPDATE firings SET state = $3, owner = NULL, run_id = NULL WHERE drill = $1 AND scheduled_for = $2",
                        &[&run.drill, &at, &if again { "open" } else { "lost" }],
                    )
                    .await
                    .map_err(|e| self.err(e))?;
                    fired = Some((t, again));
                } else if let Some(t) = t {
                    fired = Some((t, false));
                }
            }
            out.push(LostRun {
                run,
                owner,
                firing: fired,
            });
        }
        if !out.is_empty() {
            bump(&tx).await.map_err(|e| self.err(e))?;
        }
        tx.execute(
            "DELETE FROM firings WHERE scheduled_for < $1 AND state <> 'open'",
            &[&(ms(now) - super::FIRINGS_KEPT_MS)],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        if !out.is_empty() {
            self.runs_changed();
        }
        Ok(out)
    }

    async fn report_daemon(
        &self,
        me: &super::DaemonSeen,
        since: jiff::Timestamp,
    ) -> Result<Vec<super::DaemonSeen>> {
        let drills = serde_json::to_string(&me.drills).unwrap_or_default();
        self.exec(
            "INSERT INTO daemons (id, seen_at, drills) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, drills = excluded.drills",
            &[&me.id, &me.seen_at.as_millisecond(), &drills],
        )
        .await?;
        self.exec(
            "DELETE FROM daemons WHERE seen_at < $1",
            &[&(me.seen_at.as_millisecond() - 86_400_000)],
        )
        .await?;
        self.query(
            "SELECT id, seen_at, drills FROM daemons WHERE seen_at >= $1 ORDER BY id",
            &[&since.as_millisecond()],
            |r| {
                Ok(super::DaemonSeen {
                    id: r.get(0),
                    seen_at: jiff::Timestamp::from_millisecond(r.get(1)).unwrap_or_default(),
                    drills: serde_json::from_str(&r.get::<_, String>(2)).unwrap_or_default(),
                })
            },
        )
        .await
    }

    async fn run_owners(&self) -> Result<Vec<String>> {
        self.query(
            "SELECT DISTINCT owner FROM runs WHERE status = 'running' AND owner IS NOT NULL",
            &[],
            |r| Ok(r.get(0)),
        )
        .await
    }

    async fn expire_owner(&self, owner: &str) -> Result<usize> {
        Ok(self
            .exec(
                "UPDATE runs SET lease_until = 0 WHERE owner = $1 AND status = 'running'",
                &[&owner],
            )
            .await? as usize)
    }

    async fn run_stage(&self, run_id: &str, stage: crate::status::Stage) -> Result<()> {
        self.exec(
            "UPDATE runs SET stage = $2 WHERE run_id = $1 AND status = 'running'",
            &[&run_id, &stage.as_str()],
        )
        .await
        .map(|_| ())
    }

    async fn claim_firing(
        &self,
        drill: &str,
        scheduled_for: jiff::Timestamp,
        owner: &str,
    ) -> Result<bool> {
        let n = self
            .exec(
                "INSERT INTO firings (drill, scheduled_for, state, owner, attempts, claimed_at)
                 VALUES ($1, $2, 'claimed', $3, 1, now()) ON CONFLICT DO NOTHING",
                &[&drill, &ms(scheduled_for), &owner],
            )
            .await?;
        Ok(n == 1)
    }

    async fn offer_run(
        &self,
        drill: &str,
        at: jiff::Timestamp,
        run_id: &str,
        trigger: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO firings (drill, scheduled_for, state, attempts, claimed_at, run_id, trigger)
             VALUES ($1, $2, 'open', 0, now(), $3, $4)",
            &[&drill, &at.as_millisecond(), &run_id, &trigger],
        )
        .await
        .map(|_| ())
    }

    async fn offered(&self, run_id: &str) -> Result<Option<String>> {
        Ok(self
            .query(
                "SELECT drill FROM firings WHERE run_id = $1 AND state = 'open'",
                &[&run_id],
                |r| Ok(r.get(0)),
            )
            .await?
            .pop())
    }

    async fn reopen_firing(&self, drill: &str, scheduled_for: jiff::Timestamp) -> Result<()> {
        self.exec(
            "UPDATE firings SET state = 'open', owner = NULL, run_id = NULL, attempts = greatest(attempts - 1, 0)
             WHERE drill = $1 AND scheduled_for = $2 AND state = 'claimed'",
            &[&drill, &ms(scheduled_for)],
        )
        .await
        .map(|_| ())
    }

    async fn claim_open_firing(
        &self,
        drills: &[String],
        owner: &str,
    ) -> Result<Option<OpenFiring>> {
        let rows = self
            .query(
                "UPDATE firings SET state = 'claimed', owner = $2, attempts = attempts + 1, claimed_at = now()
                 WHERE (drill, scheduled_for) = (
                   SELECT drill, scheduled_for FROM firings WHERE state = 'open' AND drill = ANY($1)
                   ORDER BY scheduled_for LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING drill, scheduled_for, attempts, run_id, trigger",
                &[&drills, &owner],
                |r| {
                    Ok((
                        r.get::<_, String>(0),
                        r.get::<_, i64>(1),
                        r.get::<_, i32>(2),
                        r.get::<_, Option<String>>(3),
                        r.get::<_, Option<String>>(4),
                    ))
                },
            )
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|(drill, at, attempts, run_id, trigger)| {
                jiff::Timestamp::from_millisecond(at)
                    .ok()
                    .map(|scheduled_for| OpenFiring {
                        drill,
                        scheduled_for,
                        attempt: attempts as u32,
                        run_id,
                        trigger,
                    })
            }))
    }

    async fn run_finished(&self, report: &RunReport, artifact: Option<&str>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.err(e))?;
        finish_run(&tx, report, artifact)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.runs_changed();
        Ok(())
    }

    async fn put_artifact(&self, a: &ArtifactRecord) -> Result<()> {
        let c = self.client().await?;
        insert_artifact(&c, a).await.map_err(|e| self.err(e))
    }

    async fn artifacts(&self, drill: Option<&str>) -> Result<Vec<ArtifactRecord>> {
        self.query(
            &format!("SELECT {ARTIFACT_COLS} FROM artifacts WHERE ($1::text IS NULL OR drill = $1) ORDER BY drill, created_at, run_id"),
            &[&drill],
            artifact_row,
        )
        .await
    }

    async fn delete_artifact(&self, drill: &str, run_id: &str) -> Result<()> {
        self.exec(
            "DELETE FROM artifacts WHERE drill = $1 AND run_id = $2",
            &[&drill, &run_id],
        )
        .await
        .map(|_| ())
    }

    async fn runs(&self, drill: Option<&str>, limit: usize) -> Result<Vec<RunRecord>> {
        self.query(
            &format!("SELECT {RUN_COLS} FROM runs WHERE ($1::text IS NULL OR drill = $1) ORDER BY started_at DESC, run_id DESC LIMIT $2"),
            &[&drill, &(limit as i64)],
            run_row,
        )
        .await
    }

    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        Ok(self
            .query(
                &format!("SELECT {RUN_COLS} FROM runs WHERE run_id = $1"),
                &[&run_id],
                run_row,
            )
            .await?
            .pop())
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
            RUN_COLS.replace(", report,", ", NULL::text,")
        };
        for (filter, passed) in [("status <> 'running'", false), ("status = 'passed'", true)] {
            let rows = self
                .query(
                    &format!("SELECT DISTINCT ON (drill) {cols} FROM runs WHERE drill = ANY($1) AND {filter} ORDER BY drill, started_at DESC, run_id DESC"),
                    &[&drills],
                    run_row,
                )
                .await?;
            for r in rows {
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
    }

    fn runs_version(&self) -> tokio::sync::watch::Receiver<u64> {
        self.runs_version.subscribe()
    }

    async fn poll_changes(&self) -> Result<()> {
        let now = self.changes().await?;
        if self.seen.swap(now, Ordering::Relaxed) != now {
            self.runs_changed();
        }
        Ok(())
    }

    async fn accept_run(&self, run_id: &str, at: jiff::Timestamp) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE runs SET accepted_at = $1 WHERE run_id = $2",
            &[&at, &run_id],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE artifacts a SET verified = 'yes', verified_at = $1 FROM runs r
             WHERE r.run_id = $2 AND a.run_id = r.artifact AND a.drill = r.drill",
            &[&at, &run_id],
        )
        .await
        .map_err(|e| self.err(e))?;
        bump(&tx).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.runs_changed();
        Ok(())
    }

    async fn replace_artifacts(&self, artifacts: &[ArtifactRecord]) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(|e| self.err(e))?;
        let keep: std::collections::HashSet<(&str, &str)> = artifacts
            .iter()
            .map(|a| (a.drill.as_str(), a.run_id.as_str()))
            .collect();
        let existing = tx
            .query("SELECT drill, run_id FROM artifacts", &[])
            .await
            .map_err(|e| self.err(e))?;
        for r in &existing {
            let (d, id): (String, String) = (r.get(0), r.get(1));
            if !keep.contains(&(d.as_str(), id.as_str())) {
                tx.execute(
                    "DELETE FROM artifacts WHERE drill = $1 AND run_id = $2",
                    &[&d, &id],
                )
                .await
                .map_err(|e| self.err(e))?;
            }
        }
        for a in artifacts {
            insert_artifact(&tx, a).await.map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }
}
