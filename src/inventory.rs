//! The artifact inventory across drills: rebuilding the catalog from storage, and pruning
//! by each drill's retention policy.

use std::collections::HashMap;

use serde::Serialize;

use crate::catalog::{ArtifactRecord, Catalog, Verified};
use crate::config::Drill;
use crate::drill::VerificationMarker;
use crate::error::Result;
use crate::manifest::Manifest;
use crate::retention::{plan, Decision};
use crate::store::{
    build_store, drill_prefix, sibling, ArtifactStore, ARTIFACT_FILE, MANIFEST_FILE, VERIFIED_FILE,
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
        let marker_key = sibling(key, VERIFIED_FILE);
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
        let m = sibling(key, MANIFEST_FILE);
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

/// A random stored artifact of the drill (its run id), read from storage.
pub async fn random_artifact(drill: &Drill) -> Result<Option<String>> {
    let store = build_store(&drill.storage, &drill.base_dir)?;
    let (arts, _) = scan_drill(drill, store.as_ref()).await?;
    if arts.is_empty() {
        return Ok(None);
    }
    let i = rand::random::<usize>() % arts.len();
    Ok(Some(arts[i].run_id.clone()))
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub drill: String,
    pub decisions: Vec<Decision>,
    pub deleted: Vec<String>,
    pub dry_run: bool,
}

impl PruneReport {
    pub fn drill_has_no_artifacts(&self) -> bool {
        self.decisions.is_empty()
    }
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
    let mut deleted = Vec::new();
    if !dry_run {
        for d in decisions.iter().filter(|d| !d.keep) {
            let Some(a) = arts.iter().find(|a| a.run_id == d.run_id) else {
                continue;
            };
            store.delete(&a.location).await?;
            let marker = sibling(&a.manifest_key, VERIFIED_FILE);
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
        dry_run,
    })
}
