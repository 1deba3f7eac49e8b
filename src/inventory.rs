//! The artifact inventory across drills: rebuilding the catalog from storage, and pruning
//! by each drill's retention policy.

use std::collections::HashMap;

use serde::Serialize;

use crate::catalog::{ArtifactRecord, Catalog, RunRecord};
use crate::config::Drill;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Manifest;
use crate::report::RunReport;
use crate::retention::{plan, Decision};
use crate::status::Verified;
use crate::store::{
    build_store, drill_prefix, ArtifactStore, RunDir, StoreFault, VerificationMarker,
    ARTIFACT_FILE, MANIFEST_FILE,
};

/// Reads every manifest under a drill's prefix: the artifacts storage holds.
pub async fn scan_drill(
    drill: &Drill,
    store: &dyn ArtifactStore,
) -> Result<(Vec<ArtifactRecord>, Vec<String>)> {
    let prefix = drill_prefix(&drill.storage, &drill.name);
    let keys = store.list(&prefix).await?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let manifest_suffix = format!("/{MANIFEST_FILE}");
    let artifact_suffix = format!("/{ARTIFACT_FILE}");
    for key in keys.iter().filter(|k| k.ends_with(&manifest_suffix)) {
        let m = match store
            .get(key)
            .await
            .and_then(|b| Manifest::from_json(&b, key))
        {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("{key}: {}", e.message));
                continue;
            }
        };
        let mut rec = ArtifactRecord::from_manifest(&m, key);
        let marker_key = RunDir::containing(key).verified();
        if keys.contains(&marker_key) {
            if let Ok(b) = store.get(&marker_key).await {
                if let Ok(v) = serde_json::from_slice::<VerificationMarker>(&b) {
                    rec.verified = v.verified;
                    rec.verified_at = Some(v.at);
                }
            }
        }
        out.push(rec);
    }
    // Artifacts without a manifest are unfinished uploads: report them, never list them.
    for key in keys.iter().filter(|k| k.ends_with(&artifact_suffix)) {
        let m = RunDir::containing(key).manifest();
        if !keys.contains(&m) {
            problems.push(format!(
                "{key}: no manifest (an unfinished upload); not an artifact"
            ));
        }
    }
    out.sort_by(|a, b| (a.created_at, &a.run_id).cmp(&(b.created_at, &b.run_id)));
    Ok((out, problems))
}

#[derive(Debug, Serialize)]
pub struct RebuildReport {
    pub artifacts: usize,
    pub verified: usize,
    pub problems: Vec<String>,
}

/// Replaces the catalog's inventory with what the drills' storage holds.
pub async fn rebuild(catalog: &dyn Catalog, drills: &[Drill]) -> Result<RebuildReport> {
    let mut all = Vec::new();
    let mut problems = Vec::new();
    for d in drills {
        let store = build_store(&d.storage, &d.base_dir)?;
        let (arts, p) = scan_drill(d, store.as_ref()).await?;
        all.extend(arts);
        problems.extend(p.into_iter().map(|p| format!("{}: {p}", d.name)));
    }
    catalog.replace_artifacts(&all).await?;
    Ok(RebuildReport {
        artifacts: all.len(),
        verified: all.iter().filter(|a| a.verified == Verified::Yes).count(),
        problems,
    })
}

/// A random recovery point of the drill (`--random`): one of its stored artifacts (its
/// run id), read from storage, or for a snapshot drill one of the repository's snapshots
/// (its id), chosen by the one selection every kind of recovery point shares.
pub async fn random_artifact(drill: &Drill) -> Result<Option<String>> {
    let random = crate::pick::Pick::Random { within: None };
    let now = jiff::Timestamp::now();
    if let crate::config::SourceSpec::Snapshot(spec) = &drill.source {
        let repo = crate::snapshot::build_repo(spec, &drill.base_dir, drill.timeouts.restore)?;
        let snaps = repo.snapshots().await?;
        return Ok(
            crate::pick::choose(&snaps, &random, now, false, rand::random())
                .ok()
                .map(|s| s.id.clone()),
        );
    }
    let store = build_store(&drill.storage, &drill.base_dir)?;
    let (arts, _) = scan_drill(drill, store.as_ref()).await?;
    Ok(
        crate::pick::choose(&arts, &random, now, false, rand::random())
            .ok()
            .map(|a| a.run_id.clone()),
    )
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub drill: String,
    pub decisions: Vec<Decision>,
    pub deleted: Vec<String>,
    /// Leftovers of uploads that never finished: removed (listed only in a dry run).
    pub orphans: Vec<Orphan>,
    pub dry_run: bool,
}

impl PruneReport {
    pub fn drill_has_no_artifacts(&self) -> bool {
        self.decisions.is_empty()
    }
}

/// What an upload that never finished left in storage: an object of a run directory
/// without a manifest, or a part file of a local store's temporary directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    /// The key, or `.firedrill-tmp/<name>` for a part file.
    pub what: String,
    pub bytes: u64,
    pub why: String,
}

/// Leftovers untouched this long are orphans: an upload in progress writes every second,
/// and no stage of a drill runs for an hour without writing.
pub const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The orphans of `drill`'s storage (and the part files of its store, whichever drill
/// left them): what a killed process or a failed cleanup left.
///
/// Only what firedrill writes is ever an orphan: its own files (artifact, verification
/// marker) in a directory named like one of its runs, of a drill that makes its own
/// backups. A verify-only drill's storage holds dumps made by others: nothing there is
/// touched.
pub async fn find_orphans(drill: &Drill, store: &dyn ArtifactStore) -> Result<Vec<Orphan>> {
    if drill.source.verify_only() {
        return Ok(Vec::new());
    }
    let prefix = drill_prefix(&drill.storage, &drill.name);
    let keys = store.list(&prefix).await?;
    let now = jiff::Timestamp::now();
    let mut out = Vec::new();
    let ours = |key: &str| {
        let file = key.rsplit('/').next().unwrap_or_default();
        (file == ARTIFACT_FILE || file == crate::store::VERIFIED_FILE) && run_started(key).is_some()
    };
    for key in keys.iter().filter(|k| ours(k)) {
        let dir = RunDir::containing(key);
        if keys.contains(&dir.manifest()) {
            continue;
        }
        let old = match store.modified(key).await {
            Ok(Some(t)) => now.duration_since(t).as_secs() >= ORPHAN_AGE.as_secs() as i64,
            // A backend that cannot say: it is judged by the run id's time instead.
            _ => run_started(key)
                .is_some_and(|t| now.duration_since(t).as_secs() >= ORPHAN_AGE.as_secs() as i64),
        };
        if old {
            out.push(Orphan {
                what: key.clone(),
                bytes: store.size(key).await.unwrap_or(0),
                why: "no manifest beside it: an upload that never finished".into(),
            });
        }
    }
    for (name, bytes) in store.stale_parts(ORPHAN_AGE).await? {
        out.push(Orphan {
            what: format!(".firedrill-tmp/{name}"),
            bytes,
            why: "part of a write that never finished".into(),
        });
    }
    Ok(out)
}

/// When the run a key belongs to started, from its run id (`20261130T031500Z-…`).
fn run_started(key: &str) -> Option<jiff::Timestamp> {
    let id = key.rsplit('/').nth(1)?;
    let stamp = id.split('-').next()?;
    jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", stamp)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// Removes the orphans of `drill`'s storage (lists them only when `dry_run`).
pub async fn sweep_orphans(
    drill: &Drill,
    store: &dyn ArtifactStore,
    dry_run: bool,
) -> Result<Vec<Orphan>> {
    let orphans = find_orphans(drill, store).await?;
    if !dry_run {
        for o in &orphans {
            match o.what.strip_prefix(".firedrill-tmp/") {
                Some(part) => store.remove_part(part).await?,
                None => store.delete(&o.what).await?,
            }
        }
    }
    Ok(orphans)
}

/// Applies a drill's retention policy to what its storage holds. Deletes the artifact
/// first and the manifest last, so an interrupted prune never leaves a manifest pointing
/// at nothing that looks restorable.
pub async fn prune(
    catalog: Option<&dyn Catalog>,
    drill: &Drill,
    dry_run: bool,
) -> Result<PruneReport> {
    let store = build_store(&drill.storage, &drill.base_dir)?;
    let (mut arts, _) = scan_drill(drill, store.as_ref()).await?;
    // The catalog may know verdicts that storage does not (marker writes can fail).
    if let Some(c) = catalog {
        let known: HashMap<String, ArtifactRecord> = c
            .artifacts(Some(&drill.name))
            .await?
            .into_iter()
            .map(|a| (a.run_id.clone(), a))
            .collect();
        for a in &mut arts {
            if let Some(k) = known.get(&a.run_id) {
                if a.verified == Verified::Never {
                    a.verified = k.verified;
                    a.verified_at = k.verified_at;
                }
            }
        }
    }
    let decisions = plan(&arts, &drill.retention);
    let orphans = sweep_orphans(drill, store.as_ref(), dry_run).await?;
    let mut deleted = Vec::new();
    if !dry_run {
        for d in decisions.iter().filter(|d| !d.keep) {
            let Some(a) = arts.iter().find(|a| a.run_id == d.run_id) else {
                continue;
            };
            store.delete(&a.location).await?;
            let marker = RunDir::containing(&a.manifest_key).verified();
            store.delete(&marker).await?;
            store.delete(&a.manifest_key).await?;
            if let Some(c) = catalog {
                c.delete_artifact(&drill.name, &a.run_id).await?;
            }
            deleted.push(a.run_id.clone());
        }
    }
    Ok(PruneReport {
        drill: drill.name.clone(),
        decisions,
        deleted,
        orphans,
        dry_run,
    })
}

/// Accepts a run that failed only its anomaly guards (a shrink that was intended, e.g. old
/// data deleted on purpose): it becomes the baseline for later runs and its artifact
/// counts as good, in the catalog and, when the drill is given, beside the artifact. A run
/// that failed anything else (its fingerprint, one of the drill's own assertions whatever
/// its name, any other stage) is refused.
pub async fn accept_run(
    catalog: &dyn Catalog,
    run_id: &str,
    drill: Option<&Drill>,
) -> Result<RunRecord> {
    let rec = catalog.run(run_id).await?.ok_or_else(|| {
        Error::config(format!("there is no run {run_id} in the catalog"))
            .with_hint("list runs with `firedrill history DRILL`")
    })?;
    let report: RunReport = rec
        .report
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| Error::config(format!("run {run_id} has no finished report to accept")))?;
    if !crate::verify::only_guards_failed(&report) {
        return Err(Error::config(format!(
            "run {run_id} ({}) did not fail on its anomaly guards alone; only such runs can be accepted",
            rec.status
        ))
        .with_hint("a run that failed its fingerprint or assertions is a broken backup: fix the cause and run the drill again"));
    }
    let at = jiff::Timestamp::now();
    catalog.accept_run(run_id, at).await?;
    if let (Some(drill), Some(artifact)) = (drill, &rec.artifact) {
        let store = build_store(&drill.storage, &drill.base_dir)?;
        let key = RunDir::new(&drill.storage, &drill.name, artifact).verified();
        let marker = VerificationMarker {
            verified: Verified::Yes,
            at,
            by_run: run_id.to_string(),
        };
        store.put(&key, marker.to_json()).await?;
    }
    Ok(rec)
}

/// The manifest of stored artifact `run_id` of `drill` (a run id a person or a client
/// gave) and its key. A run id that is no run id, or names nothing in storage, is a
/// usage error that lists the drill's runs; a manifest that is there but broken is a
/// broken backup.
pub async fn stored_artifact(
    store: &dyn ArtifactStore,
    drill: &Drill,
    run_id: &str,
) -> Result<(Manifest, String)> {
    let key = RunDir::named(&drill.storage, &drill.name, run_id)?.manifest();
    let bytes = match store.get(&key).await {
        Ok(b) => b,
        Err(e) if StoreFault::of(&e) == Some(StoreFault::NotFound) => {
            return Err(no_such_artifact(store, drill, run_id, e).await)
        }
        Err(e) => return Err(e),
    };
    Ok((Manifest::from_json(&bytes, &key)?, key))
}

/// The usage error for a run id with no manifest in storage: which runs there are.
async fn no_such_artifact(
    store: &dyn ArtifactStore,
    drill: &Drill,
    artifact: &str,
    cause: Error,
) -> Error {
    let prefix = drill_prefix(&drill.storage, &drill.name);
    let known: Vec<String> = match store.list(&prefix).await {
        Ok(keys) => keys
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.strip_suffix(&format!("/{MANIFEST_FILE}")))
            .filter(|run| !run.contains('/'))
            .map(str::to_string)
            .collect(),
        Err(_) => Vec::new(),
    };
    let listed = match known.len() {
        0 => "none".to_string(),
        n if n <= 10 => known.join(", "),
        n => format!("{} … ({n} in all)", known[n - 10..].join(", ")),
    };
    Error::config(format!(
        "no artifact {artifact} of drill {} in storage ({}); known runs: {listed}",
        drill.name,
        store.describe()
    ))
    .with_hint(format!(
        "check the run id: `firedrill artifacts {}` lists what is stored",
        drill.name
    ))
    .with_source(cause)
    .overwrite_kind(ErrorKind::Config)
}
