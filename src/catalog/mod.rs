//! The catalog: every artifact and every drill run, the incidents paged about, the
//! notification outbox, and the digests sent.
//!
//! One trait, [`Catalog`], so that a shared catalog (several daemons, one database) can
//! replace the embedded SQLite file without touching the engine. Storage stays the source
//! of truth for artifacts: `firedrill catalog rebuild` recreates the inventory from the
//! manifests alone.

#[doc(hidden)]
pub mod conformance;
mod postgres;
mod spool;
mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::engine::kind::Engine;
use crate::error::Result;
use crate::manifest::Manifest;
use crate::report::RunReport;
pub use crate::status::Verified;
use crate::status::{OutboxState, PageKind, RunStatus, Severity, Stage};

pub use postgres::{PgCatalog, PgLocation};
pub use sqlite::{catalog_damage, Salvage, SqliteCatalog};

/// One stored artifact, as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub drill: String,
    /// The run that made it; also the artifact's id.
    pub run_id: String,
    pub created_at: jiff::Timestamp,
    pub engine: Engine,
    pub plain_bytes: u64,
    pub encrypted_bytes: u64,
    pub sha256: String,
    /// Storage key of the artifact.
    pub location: String,
    /// Storage key of its manifest.
    pub manifest_key: String,
    pub verified: Verified,
    pub verified_at: Option<jiff::Timestamp>,
}

impl crate::pick::Point for ArtifactRecord {
    fn id(&self) -> &str {
        &self.run_id
    }
    fn taken_at(&self) -> jiff::Timestamp {
        self.created_at
    }
}

impl ArtifactRecord {
    pub fn from_manifest(m: &Manifest, manifest_key: &str) -> Self {
        ArtifactRecord {
            drill: m.drill.clone(),
            run_id: m.run_id.clone(),
            created_at: m.finished_at,
            engine: m.engine,
            plain_bytes: m.plain_bytes,
            encrypted_bytes: m.encrypted_bytes,
            sha256: m.sha256.clone(),
            location: m.artifact_key.clone(),
            manifest_key: manifest_key.to_string(),
            verified: Verified::Never,
            verified_at: None,
        }
    }
}

/// A drill run as listed by `firedrill history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub drill: String,
    pub run_id: String,
    pub started_at: jiff::Timestamp,
    pub finished_at: Option<jiff::Timestamp>,
    pub status: RunStatus,
    pub failed_stage: Option<Stage>,
    pub error: Option<String>,
    /// The artifact drilled.
    pub artifact: Option<String>,
    /// Restore + verify seconds: the measured recovery time.
    pub rto_seconds: Option<f64>,
    pub encrypted_bytes: Option<u64>,
    /// The whole report, as JSON, once finished.
    pub report: Option<String>,
    /// A person accepted the run despite its anomaly guards (`firedrill accept`): it is
    /// the baseline for the next runs, and its artifact counts as good.
    #[serde(default)]
    pub accepted: bool,
    /// The process that ran (or runs) it: `daemon@host:pid/start#…` or `cli@…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The stage it is in, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// A drill's newest finished run and newest passing run: what a listing of many drills
/// shows, read for all of them at once.
#[derive(Debug, Clone, Default)]
pub struct LatestRuns {
    /// The newest finished run.
    pub finished: Option<RunRecord>,
    /// The newest `passed` run.
    pub passed: Option<RunRecord>,
}

/// An open incident: a drill that failed and was paged about, until it passes again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub drill: String,
    pub opened_at: jiff::Timestamp,
    pub last_paged_at: jiff::Timestamp,
    pub severity: Severity,
    pub stage: Option<Stage>,
    /// The run that opened (or last re-paged) it.
    pub run_id: String,
    /// Channels that were paged and so must get the resolve.
    pub channels: Vec<String>,
}

/// A notification waiting in (or delivered from) the durable outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: i64,
    pub channel: String,
    pub drill: String,
    pub kind: PageKind,
    /// The page, as JSON.
    pub payload: String,
    pub created_at: jiff::Timestamp,
    pub next_attempt_at: jiff::Timestamp,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub state: OutboxState,
}

/// A notification for the outbox, named so that it is put there once however often it is
/// offered (a run kept aside and replayed twice queues nothing twice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedPage {
    /// `{run_id}/{kind}/{channel}`.
    pub page_id: String,
    pub channel: String,
    pub drill: String,
    pub kind: PageKind,
    /// The page, as JSON.
    pub payload: String,
    pub at: jiff::Timestamp,
    /// Already delivered straight to its channel while the catalog could not take it: it
    /// goes in as sent.
    #[serde(default)]
    pub delivered: bool,
}

/// What paging about one run does to the drill's incident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change", content = "incident")]
pub enum IncidentChange {
    #[default]
    Keep,
    /// Opens it, or updates the open one (paged again, escalated).
    Put(Incident),
    /// The drill passed: closed (its resolves are in the plan).
    Close(String),
}

/// Everything paging about one run writes, applied in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagePlan {
    pub pages: Vec<QueuedPage>,
    pub incident: IncidentChange,
}

/// A finished run the catalog could not take (its disk full, its file damaged): kept in
/// the process's spool beside it, with its pages, until [`Catalog::catch_up`] writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unrecorded {
    pub report: RunReport,
    /// The artifact drilled (for its verdict).
    pub drilled: Option<String>,
    /// The artifact the run made, for the inventory.
    pub artifact: Option<ArtifactRecord>,
    pub plan: PagePlan,
    /// Why it could not be recorded.
    pub why: String,
}

/// A dashboard login. The cookie holds a random id; the catalog holds its SHA-256, so a
/// copy of the catalog logs nobody in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the cookie's value.
    pub id_hash: String,
    /// Which token it was opened with (a keyed hash): a new token ends every session.
    pub token_tag: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Who logged in, and in what role (`None`: a session from before roles, opened with
    /// `[daemon] token`, so an admin's).
    pub who: Option<crate::access::Principal>,
}

/// A session's [`Session::who`] as the catalog keeps it (JSON).
pub(crate) fn who_json(who: &Option<crate::access::Principal>) -> Option<String> {
    who.as_ref()
        .map(|p| serde_json::to_string(p).expect("a principal serializes"))
}

/// [`who_json`] read back; a value that does not read is no principal at all (the
/// session is then refused, never taken for an admin's).
pub(crate) fn who_of(text: Option<String>) -> Option<crate::access::Principal> {
    let text = text?;
    Some(
        serde_json::from_str(&text).unwrap_or(crate::access::Principal {
            actor: crate::access::Actor::new(crate::access::ActorKind::Anonymous, "unreadable"),
            role: crate::access::Role::Viewer,
            drills: Some(Vec::new()),
        }),
    )
}

/// An audit entry's columns as both catalogs keep them.
pub(crate) struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub role: Option<String>,
    pub source: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub outcome: String,
}

impl AuditRow {
    pub fn entry(self) -> crate::access::AuditEntry {
        crate::access::AuditEntry {
            id: self.id,
            at: jiff::Timestamp::from_millisecond(self.at_ms)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            actor: crate::access::Actor::parse(&self.actor),
            role: self.role.as_deref().and_then(crate::access::Role::parse),
            source: self.source,
            // An action a later version wrote: kept as a read, its name in the detail.
            action: crate::access::Action::parse(&self.action)
                .unwrap_or(crate::access::Action::Read),
            target: self.target,
            detail: self.detail,
            outcome: crate::access::Outcome::parse(&self.outcome),
        }
    }
}

/// A process that runs drills (a daemon, or a `firedrill run` on the command line): what
/// the lease of each of its runs names, so that nobody else mistakes a live run for one
/// left by a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// `daemon` or `cli`.
    pub role: String,
    pub host: String,
    pub pid: u32,
    pub started_at: jiff::Timestamp,
    /// Where its pid means something: this boot of this machine and its pid namespace
    /// (a short hash); empty when unknown. Host names alone are not enough: containers
    /// may share one.
    pub pids: String,
}

/// [`Owner::pids`] of this process.
fn pid_scope() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok();
    let ns = std::fs::read_link("/proc/self/ns/pid").ok();
    match (boot, ns) {
        (Some(b), Some(n)) => {
            use sha2::Digest;
            let h = sha2::Sha256::digest(format!("{}|{}", b.trim(), n.display()).as_bytes());
            hex::encode(&h[..6])
        }
        _ => String::new(),
    }
}

impl Owner {
    /// This process, in `role`.
    pub fn this_process(role: &str) -> Self {
        let host = crate::access::this_host();
        Owner {
            role: role.to_string(),
            host,
            pid: std::process::id(),
            started_at: jiff::Timestamp::now(),
            pids: pid_scope(),
        }
    }

    /// Whether the owner named `id` is a process that is gone from this machine's boot
    /// and pid namespace (its pid no longer runs, or now runs this process): its runs need
    /// not wait for their leases. `false` whenever unsure (another machine, container or
    /// boot, a pid reused by some other process).
    pub fn is_gone(&self, id: &str) -> bool {
        let Some((id_part, scope)) = id.rsplit_once('#') else {
            return false;
        };
        if self.pids.is_empty() || scope != self.pids {
            return false;
        }
        let Some((_, rest)) = id_part.split_once('@') else {
            return false;
        };
        let Some((host, rest)) = rest.rsplit_once(':') else {
            return false;
        };
        let Some(pid) = rest
            .split_once('/')
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            return false;
        };
        if host != self.host || id == self.id() {
            return false;
        }
        pid == self.pid || !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    /// One string naming it in the catalog: `daemon@host:pid/start#pids`.
    pub fn id(&self) -> String {
        format!(
            "{}@{}:{}/{}#{}",
            self.role,
            self.host,
            self.pid,
            self.started_at.as_millisecond(),
            self.pids
        )
    }
}

/// A daemon as the others sharing the catalog see it: when it last said it was alive, and
/// the drills it loaded, each with a hash of its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonSeen {
    /// Its [`Owner::id`].
    pub id: String,
    pub seen_at: jiff::Timestamp,
    pub drills: std::collections::BTreeMap<String, String>,
}

/// A drill whose definition is not the same on every daemon that loaded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Skew {
    pub drill: String,
    /// The definition most daemons hold (its hash); none on a tie, when no daemon runs it.
    pub agreed: Option<String>,
    /// The daemons whose copy is not the agreed one: they do not run the drill.
    pub differing: Vec<String>,
}

/// The drills `daemons` do not agree on.
pub fn skew(daemons: &[DaemonSeen]) -> Vec<Skew> {
    let mut copies: std::collections::BTreeMap<&str, Vec<(&str, &str)>> = Default::default();
    for d in daemons {
        for (drill, hash) in &d.drills {
            copies
                .entry(drill)
                .or_default()
                .push((d.id.as_str(), hash.as_str()));
        }
    }
    let mut out = Vec::new();
    for (drill, held) in copies {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for (_, h) in &held {
            *counts.entry(h).or_default() += 1;
        }
        if counts.len() < 2 {
            continue;
        }
        let most = counts.values().copied().max().unwrap_or(0);
        let top: Vec<&str> = counts
            .iter()
            .filter(|(_, n)| **n == most)
            .map(|(h, _)| *h)
            .collect();
        let agreed = (top.len() == 1).then(|| top[0].to_string());
        let differing = held
            .iter()
            .filter(|(_, h)| agreed.as_deref() != Some(*h))
            .map(|(d, _)| d.to_string())
            .collect();
        out.push(Skew {
            drill: drill.to_string(),
            agreed,
            differing,
        });
    }
    out
}

/// A run about to start: it holds its drill, under a lease, until it finishes.
#[derive(Debug, Clone)]
pub struct RunClaim {
    pub drill: String,
    pub run_id: String,
    /// [`Owner::id`] of the process running it.
    pub owner: String,
    pub at: jiff::Timestamp,
    /// The run is its owner's until then; the owner's heartbeat moves it on.
    pub lease_until: jiff::Timestamp,
    /// The scheduled firing it runs, if any.
    pub firing: Option<jiff::Timestamp>,
}

/// The run holding a drill, which another run of the drill is refused for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    pub owner: String,
    pub started_at: jiff::Timestamp,
}

/// A run whose owner stopped renewing its lease: recorded as lost.
#[derive(Debug, Clone)]
pub struct LostRun {
    pub run: RunRecord,
    /// Who ran it (`None` for a run recorded before leases).
    pub owner: Option<String>,
    /// The scheduled firing it ran, and whether it was opened again to be run by a
    /// survivor (a firing is run again once).
    pub firing: Option<(jiff::Timestamp, bool)>,
}

/// A scheduled firing of a drill that nobody is running: handed over by a daemon that
/// shut down, or left by one that died. Claimed by one daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFiring {
    pub drill: String,
    pub scheduled_for: jiff::Timestamp,
    /// Claims so far, this one included.
    pub attempt: u32,
    /// A run asked for on demand and offered to the daemons with room: its id, and what
    /// asked for it (`api`, `alertmanager`).
    pub run_id: Option<String>,
    pub trigger: Option<String>,
}

/// Claims of one scheduled firing: the first, and once more by a survivor when the
/// daemon running it died.
pub const FIRING_ATTEMPTS: u32 = 2;
/// How long claimed firings are remembered (milliseconds): a week.
pub const FIRINGS_KEPT_MS: i64 = 7 * 86_400_000;

/// What a lost run's record says happened.
pub fn lost_message(owner: Option<&str>) -> String {
    match owner {
        Some(o) => format!("the process running this run ({o}) stopped renewing its lease while it ran (crash, kill, power loss, or cut off from the catalog)"),
        None => "the process running this run stopped while it ran (crash, kill or power loss)".into(),
    }
}

/// Whether `catalog` names a shared PostgreSQL catalog (`postgres://…`) rather than an
/// SQLite file.
pub fn is_postgres(catalog: &std::path::Path) -> bool {
    let s = catalog.to_string_lossy();
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// firedrill's own state directory on this host: the system's for root, else the user's.
pub fn state_dir() -> std::path::PathBuf {
    if rustix::process::geteuid().is_root() {
        std::path::PathBuf::from("/var/lib/firedrill")
    } else {
        std::env::var_os("XDG_STATE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/state"))
            })
            .unwrap_or_else(|| std::path::PathBuf::from("."))
            .join("firedrill")
    }
}

/// The directory of this host's files that go with the catalog (reports, the spool): the
/// SQLite file's own directory, or for a PostgreSQL catalog the state directory.
pub fn local_dir(catalog: &std::path::Path) -> std::path::PathBuf {
    if is_postgres(catalog) {
        state_dir()
    } else {
        catalog
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    }
}

/// Opens the catalog `catalog` names: an SQLite file, or a PostgreSQL URL whose password
/// (`catalog_password`) and CA (`catalog_ca`) the main config gives.
pub async fn open(
    catalog: &std::path::Path,
    config: &crate::config::MainConfig,
) -> Result<std::sync::Arc<dyn Catalog>> {
    if !is_postgres(catalog) {
        return Ok(std::sync::Arc::new(SqliteCatalog::open(catalog)?));
    }
    let url = catalog.to_string_lossy().into_owned();
    let password = config
        .catalog_password
        .as_ref()
        .map(|s| s.load(&config.base_dir))
        .transpose()
        .map_err(|e| e.context("catalog_password"))?;
    let tag = {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(url.as_bytes())[..8])
    };
    let spool = state_dir().join(format!("catalog-{tag}"));
    let loc = PgLocation {
        url,
        password,
        ca: config.catalog_ca.clone(),
    };
    Ok(std::sync::Arc::new(PgCatalog::connect(&loc, &spool).await?))
}

/// Everything a catalog holds that is worth carrying to another: `firedrill catalog
/// migrate` reads it from an SQLite catalog and writes it into a PostgreSQL one.
#[derive(Debug, Clone, Default)]
pub struct CatalogExport {
    /// Each run, and when a person accepted it (its baseline).
    pub runs: Vec<(RunRecord, Option<jiff::Timestamp>)>,
    pub artifacts: Vec<ArtifactRecord>,
    pub incidents: Vec<Incident>,
    /// Each notification and its page id (`None` for one queued before page ids).
    pub outbox: Vec<(OutboxItem, Option<String>)>,
    /// Digests claimed (their scheduled time, unix seconds): none is sent twice.
    pub digests: Vec<i64>,
    /// The audit trail, oldest first.
    pub audit: Vec<crate::access::AuditEntry>,
}

/// What an import wrote: rows per table (rows already there are left as they are).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Imported {
    pub runs: usize,
    pub artifacts: usize,
    pub incidents: usize,
    pub outbox: usize,
    pub digests: usize,
    pub audit: usize,
}

#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Applies a run's [`PagePlan`] atomically: its notifications (those already
    /// delivered go in as sent; one already queued is not queued again) and its incident
    /// change. Returns how many notifications were queued to send.
    async fn record_pages(&self, plan: &PagePlan) -> Result<usize>;
    /// Keeps a run the catalog could not record, and its pages, in a spool local to
    /// this process (beside the catalog, else in the temporary directory) until
    /// [`Catalog::catch_up`]. Returns where it was kept.
    fn keep_unrecorded(&self, u: &Unrecorded) -> Result<std::path::PathBuf> {
        let _ = u;
        Err(crate::error::Error::infra("this catalog has no spool"))
    }
    /// Records what was kept aside (runs, artifacts, pages: nothing twice) and removes it
    /// from the spool. Returns how many runs it recorded. Opening a catalog does it too.
    async fn catch_up(&self) -> Result<usize> {
        Ok(0)
    }
    /// Reads everything [`CatalogExport`] holds.
    async fn export(&self) -> Result<CatalogExport> {
        Err(
            crate::error::Error::config("this catalog cannot be exported")
                .with_hint("`firedrill catalog migrate --from` reads an SQLite catalog"),
        )
    }
    /// Writes an export in, in one transaction; a row already there (same run, artifact,
    /// drill's incident, page id, digest) is kept, so running it twice copies nothing twice.
    async fn import(&self, data: &CatalogExport) -> Result<Imported> {
        let _ = data;
        Err(
            crate::error::Error::config("this catalog cannot be imported into")
                .with_hint("`firedrill catalog migrate` writes into a PostgreSQL catalog"),
        )
    }
    /// Records a dashboard login (and forgets expired ones).
    async fn put_session(&self, session: &Session) -> Result<()>;
    /// The login with this hash, if it was not revoked (expired ones may be returned).
    async fn session(&self, id_hash: &str) -> Result<Option<Session>>;
    /// Logs a session out, for every daemon sharing the catalog.
    async fn revoke_session(&self, id_hash: &str) -> Result<()>;
    /// Keeps what a single sign-on login in progress needs back at its callback (the
    /// PKCE verifier, the nonce, where to go), under the hash of its `state`, until
    /// `expires_at` (unix seconds): the callback may land on any daemon sharing the
    /// catalog.
    async fn put_login_state(&self, id_hash: &str, data: &str, expires_at: i64) -> Result<()>;
    /// Takes a login state back, once: a second callback with the same `state` finds
    /// nothing. Expired ones are not returned.
    async fn take_login_state(&self, id_hash: &str) -> Result<Option<String>>;
    /// Appends to the audit trail; returns the entry's id.
    async fn record_audit(&self, entry: &crate::access::AuditEntry) -> Result<i64>;
    /// Reads the audit trail, newest first.
    async fn audit(&self, q: &crate::access::AuditQuery) -> Result<Vec<crate::access::AuditEntry>>;
    async fn incident(&self, drill: &str) -> Result<Option<Incident>>;
    /// Claims the digest scheduled for `scheduled_for`: true the first time it is asked,
    /// by this process or any other sharing the catalog, false ever after. Only the one
    /// that claimed a digest sends it, so a restart or a second daemon never sends it
    /// twice.
    async fn claim_digest(&self, scheduled_for: jiff::Timestamp) -> Result<bool>;
    async fn put_incident(&self, incident: &Incident) -> Result<()>;
    async fn close_incident(&self, drill: &str) -> Result<()>;
    /// Stores a notification before any attempt to send it.
    async fn enqueue(
        &self,
        channel: &str,
        drill: &str,
        kind: PageKind,
        payload: &str,
        at: jiff::Timestamp,
    ) -> Result<i64>;
    /// Pending notifications whose next attempt is due.
    async fn due(&self, now: jiff::Timestamp, limit: usize) -> Result<Vec<OutboxItem>>;
    /// Takes the first pending notification due by `due_by` after id `after`, for this
    /// process to send: it is not due again (for anyone sharing the catalog) before
    /// `hold_until`, unless marked first. Several senders never send one page twice.
    async fn claim_due(
        &self,
        due_by: jiff::Timestamp,
        after: i64,
        hold_until: jiff::Timestamp,
    ) -> Result<Option<OutboxItem>>;
    async fn mark_sent(&self, id: i64) -> Result<()>;
    async fn mark_retry(
        &self,
        id: i64,
        next_attempt_at: jiff::Timestamp,
        error: &str,
    ) -> Result<()>;
    async fn mark_expired(&self, id: i64, error: &str) -> Result<()>;
    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>>;

    /// Records that a run started, under its owner's lease, unless another run of the
    /// drill holds it (a live one: a run whose lease expired holds nothing). Returns the
    /// holder when refused. Two processes sharing the catalog never run a drill at once.
    async fn claim_run(&self, claim: &RunClaim) -> Result<Option<Holder>>;
    /// The owner's heartbeat: moves the lease of each of its running runs on to `until`.
    /// Returns the runs it still holds; one missing was taken from it (its lease had
    /// expired and another process recorded it lost), and must stop.
    async fn renew_leases(&self, owner: &str, until: jiff::Timestamp) -> Result<Vec<String>>;
    /// Records as lost every running run whose lease expired before `now` (and any from
    /// before leases), and opens their scheduled firings again to be run once more.
    /// Returns them: whoever calls this removes their sandboxes and pages.
    async fn reap_expired(&self, now: jiff::Timestamp) -> Result<Vec<LostRun>>;
    /// Says that daemon `me` is alive with its drills, and returns every daemon seen since
    /// `since`, this one included (older ones are forgotten after a day).
    async fn report_daemon(
        &self,
        me: &DaemonSeen,
        since: jiff::Timestamp,
    ) -> Result<Vec<DaemonSeen>>;
    /// The owners of running runs ([`Owner::id`]s).
    async fn run_owners(&self) -> Result<Vec<String>>;
    /// Ends the leases of `owner`'s running runs now, so that the next
    /// [`Catalog::reap_expired`] records them lost: for an owner known to be dead (a
    /// process of this host that is gone). Returns how many.
    async fn expire_owner(&self, owner: &str) -> Result<usize>;
    /// Notes the stage a running run is in, for the daemons that do not run it (their
    /// API's events and dashboard).
    async fn run_stage(&self, run_id: &str, stage: Stage) -> Result<()>;
    /// Claims the firing of `drill` scheduled for `scheduled_for` for `owner`: true for
    /// the first process to ask, false for every other (each firing runs once however
    /// many daemons share the catalog).
    async fn claim_firing(
        &self,
        drill: &str,
        scheduled_for: jiff::Timestamp,
        owner: &str,
    ) -> Result<bool>;
    /// Offers a run asked for on demand (`run_id`, by `trigger`) to whichever daemon has
    /// room: an open firing of `drill` at `at` that carries the run's id.
    async fn offer_run(
        &self,
        drill: &str,
        at: jiff::Timestamp,
        run_id: &str,
        trigger: &str,
    ) -> Result<()>;
    /// The drill of run `run_id` if it is offered and no daemon has taken it yet.
    async fn offered(&self, run_id: &str) -> Result<Option<String>>;
    /// Hands a claimed firing back, for another daemon to run (this one shuts down).
    async fn reopen_firing(&self, drill: &str, scheduled_for: jiff::Timestamp) -> Result<()>;
    /// Claims one open firing of one of `drills` for `owner`, if there is one.
    async fn claim_open_firing(&self, drills: &[String], owner: &str)
        -> Result<Option<OpenFiring>>;
    /// Records a finished run and, when it drilled an artifact, that artifact's verdict.
    async fn run_finished(&self, report: &RunReport, artifact: Option<&str>) -> Result<()>;
    /// Adds or replaces an artifact (keeps its verification state when it exists).
    async fn put_artifact(&self, a: &ArtifactRecord) -> Result<()>;
    async fn artifacts(&self, drill: Option<&str>) -> Result<Vec<ArtifactRecord>>;
    async fn delete_artifact(&self, drill: &str, run_id: &str) -> Result<()>;
    async fn runs(&self, drill: Option<&str>, limit: usize) -> Result<Vec<RunRecord>>;
    async fn run(&self, run_id: &str) -> Result<Option<RunRecord>>;
    /// The newest finished and passing run of each of `drills`, in one read: listings of
    /// a thousand drills must not cost a thousand queries. `with_reports` loads the runs'
    /// JSON reports too (otherwise `report` is `None`).
    async fn latest_runs(
        &self,
        drills: &[String],
        with_reports: bool,
    ) -> Result<std::collections::HashMap<String, LatestRuns>>;
    /// A counter that moves whenever finished runs (and so [`Catalog::latest_runs`]) may
    /// have changed: a run finished, was lost or was accepted. It moves at once after such a
    /// write through this handle, and after
    /// [`Catalog::poll_changes`] notices another process's write to a shared catalog.
    /// Whoever keeps something derived from runs (the daemon's drill listing) keys it on
    /// the value and waits on it, instead of reading the catalog per request.
    fn runs_version(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Looks for writes by other processes sharing this catalog (the CLI, other daemons)
    /// and moves [`Catalog::runs_version`] when there were any. Cheap: call it every second.
    async fn poll_changes(&self) -> Result<()>;
    /// Marks a run accepted and its artifact good.
    async fn accept_run(&self, run_id: &str, at: jiff::Timestamp) -> Result<()>;
    /// Replaces the artifact inventory of `drills` (all when empty) with `artifacts`,
    /// keeping verification states of artifacts that remain.
    async fn replace_artifacts(&self, artifacts: &[ArtifactRecord]) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, drills: &[(&str, &str)]) -> DaemonSeen {
        DaemonSeen {
            id: id.into(),
            seen_at: jiff::Timestamp::UNIX_EPOCH,
            drills: drills
                .iter()
                .map(|(d, h)| (d.to_string(), h.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_definition_most_daemons_hold_is_the_agreed_one() {
        let a = seen("a", &[("shop", "1"), ("crm", "x"), ("only-a", "9")]);
        let b = seen("b", &[("shop", "1"), ("crm", "y")]);
        let c = seen("c", &[("shop", "2"), ("crm", "z")]);
        assert!(skew(&[a.clone(), b.clone()][..1]).is_empty());
        let s = skew(&[a.clone(), b.clone(), c]);
        assert_eq!(
            s,
            vec![
                Skew {
                    drill: "crm".into(),
                    agreed: None,
                    differing: vec!["a".into(), "b".into(), "c".into()],
                },
                Skew {
                    drill: "shop".into(),
                    agreed: Some("1".into()),
                    differing: vec!["c".into()],
                },
            ]
        );
        // A drill only some daemons loaded is not a disagreement.
        assert!(s.iter().all(|s| s.drill != "only-a"));
        assert_eq!(skew(&[a, b]).len(), 1, "two daemons, two copies: a tie");
    }
}
