//! The commands that read and keep the catalog of runs and artifacts: `list` (drills with
//! their last runs), `history`, `artifacts`, `prune`, `accept` and `catalog rebuild`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use firedrill::catalog::{Catalog, SqliteCatalog};
use firedrill::human::human_bytes;
use firedrill::listing::DrillSummary;
use firedrill::{load_drill, Drill, Problems};

use super::output::{age_of, render_table};
use super::{drill_path, known_drills, known_drills_hint, load_named, open_catalog};

/// Every drill file in `dir` with its schedule and last runs, each as the API's
/// `GET /api/v1/drills` lists it; the catalog is read once for all of them.
pub(super) async fn list(catalog: &Path, dir: &Path, json: bool) -> u8 {
    let files = match firedrill::config::drill_files(dir) {
        Ok(f) => f,
        Err(e) => {
            errln!(
                "error: {}: cannot read the drills directory: {e}\n  hint: pass --drills-dir, or set drills_dir in --config",
                dir.display()
            );
            return 2;
        }
    };
    // Listing must not create a catalog where there was none.
    let c = if catalog.exists() || firedrill::catalog::is_postgres(catalog) {
        match super::try_open_catalog(catalog).await {
            Ok(c) => Some(c),
            Err(e) => {
                errln!("warning: no run history: {e}");
                None
            }
        }
    } else {
        None
    };
    let loaded: Vec<(PathBuf, Result<Drill, Problems>)> = files
        .into_iter()
        .map(|f| {
            let drill = load_drill(&f);
            (f, drill)
        })
        .collect();
    let names: Vec<String> = loaded
        .iter()
        .filter_map(|(_, d)| d.as_ref().ok().map(|d| d.name.clone()))
        .collect();
    let latest = match &c {
        Some(c) => c.latest_runs(&names, false).await.unwrap_or_else(|e| {
            errln!("warning: no run history: {e}");
            HashMap::new()
        }),
        None => HashMap::new(),
    };
    // A file that does not validate is listed under its file name.
    let stems: Vec<Cow<str>> = loaded
        .iter()
        .map(|(f, _)| {
            f.file_stem()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        })
        .collect();
    let now = jiff::Timestamp::now();
    let rows: Vec<DrillSummary> = loaded
        .iter()
        .zip(&stems)
        .map(|((file, drill), stem)| match drill {
            // Cloned, not taken: two files may name the same drill.
            Ok(d) => DrillSummary::of(d, latest.get(&d.name).cloned().unwrap_or_default(), now),
            Err(p) => DrillSummary::invalid(stem, file, &p.0),
        })
        .collect();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return 0;
    }
    if rows.is_empty() {
        errln!("no drill files in {}", dir.display());
        return 0;
    }
    out!("{}", listing_table(&rows));
    if c.is_none() {
        errln!(
            "note: no catalog at {}: run history unknown (--catalog, or catalog in --config)",
            catalog.display()
        );
    }
    0
}

/// `list` for people: a row per drill, the run history as ages.
fn listing_table(rows: &[DrillSummary]) -> String {
    let mut table = vec![[
        "DRILL",
        "ENGINE",
        "STORAGE",
        "SCHEDULE",
        "LAST RUN",
        "LAST SUCCESS",
        "DESCRIPTION",
    ]
    .map(String::from)];
    for r in rows {
        if !r.valid {
            table.push([
                r.name.to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!(
                    "INVALID: {} problem(s); see `firedrill validate {}`",
                    r.problems.len(),
                    r.file.display()
                ),
            ]);
            continue;
        }
        let schedule = match (r.schedule, r.timezone) {
            (None, _) => "manual".to_string(),
            (Some(c), None) => c.to_string(),
            (Some(c), Some(tz)) => format!("{c} ({tz})"),
        };
        let last_run = r
            .last_run
            .as_ref()
            .map(|l| format!("{} {} ago", l.status, age_of(l.started_at)))
            .unwrap_or_else(|| "never".into());
        let last_success = r
            .last_success
            .map(|t| format!("{} ago", age_of(t)))
            .unwrap_or_else(|| "never".into());
        table.push([
            r.name.to_string(),
            r.engine.clone().unwrap_or_default(),
            r.storage.clone().unwrap_or_default(),
            schedule,
            last_run,
            last_success,
            r.description.unwrap_or_default().to_string(),
        ]);
    }
    render_table(&table)
}

/// A drill name that the catalog has nothing of and no drill file in `dir` has: a typo,
/// said with the drills there are (exit 2), not an empty table.
fn unknown_drill(name: &str, dir: &Path, what: &str) -> Option<u8> {
    if known_drills(dir).iter().any(|d| d == name) {
        return None;
    }
    errln!(
        "error: no drill named {name}: no drill file in {} and no {what} in the catalog\n  hint: {}",
        dir.display(),
        known_drills_hint(dir)
    );
    Some(2)
}

/// The stored artifacts the catalog knows, newest first (as `history` lists runs), with
/// size, age and verification state.
pub(super) async fn artifacts(catalog: &Path, drill: Option<&str>, dir: &Path, json: bool) -> u8 {
    let c = match open_catalog(catalog).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut list = match c.artifacts(drill).await {
        Ok(l) => l,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    if let (Some(name), true) = (drill, list.is_empty()) {
        if let Some(code) = unknown_drill(name, dir, "artifacts") {
            return code;
        }
    }
    list.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.run_id.cmp(&a.run_id))
    });
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return 0;
    }
    outln!(
        "{:<24} {:<26} {:>10} {:>6}  verified",
        "DRILL",
        "ARTIFACT",
        "SIZE",
        "AGE"
    );
    for a in &list {
        let when = a
            .verified_at
            .map(|t| format!(" ({} ago)", age_of(t)))
            .unwrap_or_default();
        outln!(
            "{:<24} {:<26} {:>10} {:>6}  {}{}",
            a.drill,
            a.run_id,
            human_bytes(a.encrypted_bytes),
            age_of(a.created_at),
            a.verified.as_str(),
            when
        );
    }
    0
}

/// Past runs from the catalog, newest first.
pub(super) async fn history(
    catalog: &Path,
    drill: Option<&str>,
    dir: &Path,
    limit: usize,
    json: bool,
) -> u8 {
    let c = match open_catalog(catalog).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut runs = match c.runs(drill, limit).await {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    if let (Some(name), true) = (drill, runs.is_empty()) {
        if let Some(code) = unknown_drill(name, dir, "runs") {
            return code;
        }
    }
    if json {
        for r in &mut runs {
            r.report = None;
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_default()
        );
        return 0;
    }
    outln!(
        "{:<24} {:<26} {:<8} {:>8} {:>10}  stage / error",
        "DRILL",
        "RUN",
        "OUTCOME",
        "RTO",
        "SIZE"
    );
    for r in &runs {
        outln!(
            "{:<24} {:<26} {:<8} {:>8} {:>10}  {}{}",
            r.drill,
            r.run_id,
            r.status,
            r.rto_seconds
                .map(|s| format!("{s:.1}s"))
                .unwrap_or_else(|| "-".into()),
            r.encrypted_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "-".into()),
            r.failed_stage.map(|s| format!("{s}: ")).unwrap_or_default(),
            r.error
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    0
}

/// Applies each drill's retention policy to its storage (or shows what it would do).
pub(super) async fn prune(
    catalog: &Path,
    drill: Option<&str>,
    dir: &Path,
    dry_run: bool,
    json: bool,
) -> u8 {
    let drills = match load_drills(dir, drill) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let c = super::try_open_catalog(catalog).await.ok();
    let mut reports = Vec::new();
    for d in &drills {
        match firedrill::inventory::prune(c.as_deref(), d, dry_run).await {
            Ok(r) => {
                if let (Some(c), false) = (&c, dry_run) {
                    let deleted = r.decisions.iter().filter(|x| !x.keep).count();
                    let e = super::access::by_cli(
                        firedrill::access::Action::Prune,
                        firedrill::access::Outcome::Ok,
                        &d.name,
                        format!(
                            "{deleted} artifact(s) deleted, {} orphan(s) removed",
                            r.orphans.len()
                        ),
                    );
                    if let Err(e) = c.record_audit(&e).await {
                        errln!("warning: the audit trail did not record this: {e}");
                    }
                }
                reports.push(r)
            }
            Err(e) => {
                errln!("error: drill {}: {e}", d.name);
                return 2;
            }
        }
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&reports).unwrap_or_default()
        );
        return 0;
    }
    for r in &reports {
        for o in &r.orphans {
            outln!(
                "{}: {} orphan {}  {} ({})",
                r.drill,
                if r.dry_run { "would remove" } else { "removed" },
                o.what,
                human_bytes(o.bytes),
                o.why
            );
        }
        if r.drill_has_no_artifacts() {
            outln!("{}: no artifacts", r.drill);
            continue;
        }
        outln!("{}{}:", r.drill, if r.dry_run { " (dry run)" } else { "" });
        for d in &r.decisions {
            let verb = if d.keep {
                "keep  "
            } else if r.dry_run {
                "would delete"
            } else {
                "delete"
            };
            outln!("  {verb} {}  {}", d.run_id, d.reasons.join(", "));
        }
    }
    0
}

/// Recreates the catalog's artifact inventory from the manifests in storage. Each drill is
/// read on its own: one that cannot be (a file that does not validate, a missing secret,
/// storage that does not answer) is named with why, keeps what the catalog had of it, and
/// makes the exit code 2; the others are rebuilt.
pub(super) async fn rebuild(catalog: &Path, dir: &Path, json: bool) -> u8 {
    let files = match firedrill::config::drill_files(dir) {
        Ok(f) => f,
        Err(e) => {
            errln!(
                "error: {}: cannot read the drills directory: {e}\n  hint: pass --drills-dir, or set drills_dir in --config",
                dir.display()
            );
            return 2;
        }
    };
    let mut drills: Vec<Drill> = Vec::new();
    let mut failed: Vec<serde_json::Value> = Vec::new();
    for f in files {
        match load_drill(&f) {
            Ok(d) if drills.iter().any(|o| o.name == d.name) => failed.push(serde_json::json!({
                "file": f,
                "drill": d.name,
                "error": format!("drill name `{}` is also used by another file", d.name),
            })),
            Ok(d) => drills.push(d),
            Err(p) => failed.push(serde_json::json!({
                "file": f,
                "drill": null,
                "error": p.to_string(),
            })),
        }
    }
    // A damaged file is set aside (never deleted) and what can be read of it kept.
    let mut set_aside = serde_json::Value::Null;
    let c = match firedrill::catalog::catalog_damage(catalog) {
        None => match open_catalog(catalog).await {
            Ok(c) => c,
            Err(code) => return code,
        },
        Some(why) => match SqliteCatalog::set_aside_and_salvage(catalog) {
            Ok((c, salvage)) => {
                let c: std::sync::Arc<dyn Catalog> = std::sync::Arc::new(c);
                let kept: Vec<String> = salvage
                    .salvaged
                    .iter()
                    .map(|(t, n)| format!("{n} {t}"))
                    .collect();
                if !json {
                    outln!(
                        "the catalog {} was damaged ({why}): set aside as {}",
                        catalog.display(),
                        salvage.set_aside.display()
                    );
                    if !kept.is_empty() {
                        outln!("salvaged into the new catalog: {}", kept.join(", "));
                    }
                }
                for (t, why) in &salvage.lost {
                    errln!("warning: could not salvage {t}: {why}");
                }
                set_aside = serde_json::json!({
                    "why": why.to_string(),
                    "set_aside_as": salvage.set_aside,
                    "salvaged": kept,
                    "lost": salvage.lost.iter().map(|(t, w)| format!("{t}: {w}")).collect::<Vec<_>>(),
                });
                c
            }
            Err(e) => {
                errln!("error: {e}");
                return 2;
            }
        },
    };
    let before = match c.artifacts(None).await {
        Ok(a) => a,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    // Each drill into a scratch inventory of its own, so that one that cannot be read
    // stops nothing else; the catalog's inventory is replaced once, at the end.
    let scratch = match SqliteCatalog::open(Path::new(":memory:")) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    let mut all = Vec::new();
    let mut rebuilt = Vec::new();
    let mut problems = Vec::new();
    for d in &drills {
        let found = match firedrill::inventory::rebuild(&scratch, std::slice::from_ref(d)).await {
            Ok(r) => scratch.artifacts(None).await.map(|a| (r, a)),
            Err(e) => Err(e),
        };
        match found {
            Ok((r, arts)) => {
                problems.extend(r.problems);
                all.extend(arts);
                rebuilt.push(d.name.clone());
            }
            Err(e) => failed.push(serde_json::json!({
                "file": d.file,
                "drill": d.name,
                "error": e.to_string(),
            })),
        }
    }
    // What could not be read again is kept as the catalog had it.
    if !failed.is_empty() {
        all.extend(before.into_iter().filter(|a| !rebuilt.contains(&a.drill)));
    }
    if let Err(e) = c.replace_artifacts(&all).await {
        errln!("error: {e}");
        return 2;
    }
    let verified = all
        .iter()
        .filter(|a| a.verified == firedrill::catalog::Verified::Yes)
        .count();
    if json {
        let summary = serde_json::json!({
            "catalog": catalog,
            "damaged": set_aside,
            "artifacts": all.len(),
            "verified": verified,
            "drills": rebuilt,
            "problems": problems,
            "failed": failed,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        for p in &problems {
            errln!("warning: {p}");
        }
        outln!(
            "rebuilt {} from storage: {} artifacts ({} verified) across {} drills",
            catalog.display(),
            all.len(),
            verified,
            rebuilt.len()
        );
        for f in &failed {
            let what = match (f["drill"].as_str(), f["file"].as_str()) {
                (Some(d), Some(file)) => format!("drill {d} ({file})"),
                (None, Some(file)) => file.to_string(),
                _ => "a drill".to_string(),
            };
            errln!(
                "error: {what} was not rebuilt (what the catalog had of it is kept): {}",
                f["error"].as_str().unwrap_or_default()
            );
        }
    }
    if failed.is_empty() {
        0
    } else {
        if !json {
            errln!(
                "{} of {} drill files could not be read; fix them and run `firedrill catalog rebuild` again",
                failed.len(),
                failed.len() + rebuilt.len()
            );
        }
        2
    }
}

/// Accepts a run that failed only its anomaly guards: the baseline of later runs.
pub(super) async fn accept(catalog: &Path, run: &str, dir: &Path, json: bool) -> u8 {
    let c = match open_catalog(catalog).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let drill_name = match c.run(run).await {
        Ok(Some(r)) => r.drill,
        Ok(None) => {
            errln!("error: there is no run {run} in the catalog {}\n  hint: list runs with `firedrill history`", catalog.display());
            return 2;
        }
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    let drill = load_drill(&drill_path(&drill_name, dir)).ok();
    let accepted = firedrill::inventory::accept_run(c.as_ref(), run, drill.as_ref()).await;
    let (outcome, detail) = match &accepted {
        Ok(_) => (
            firedrill::access::Outcome::Ok,
            format!("run {run} accepted: it is the baseline of the next runs"),
        ),
        Err(e) => (
            firedrill::access::Outcome::Failed,
            format!("run {run}: {e}"),
        ),
    };
    if let Err(e) = c
        .record_audit(&super::access::by_cli(
            firedrill::access::Action::Accept,
            outcome,
            &drill_name,
            detail,
        ))
        .await
    {
        errln!("warning: the audit trail did not record this: {e}");
    }
    match accepted {
        Ok(r) if json => {
            let accepted = serde_json::json!({
                "run_id": r.run_id,
                "drill": r.drill,
                "marked_in_storage": drill.is_some(),
            });
            outln!(
                "{}",
                serde_json::to_string_pretty(&accepted).unwrap_or_default()
            );
            0
        }
        Ok(r) => {
            errln!(
                "accepted run {} of {}: it is the baseline of the next runs{}",
                r.run_id,
                r.drill,
                if drill.is_some() {
                    ", and its artifact is marked good in storage"
                } else {
                    " (drill file not found: storage marker not written)"
                }
            );
            0
        }
        Err(e) => {
            errln!("error: {e}");
            2
        }
    }
}

/// The drills of `dir` (or only the one named `only`), or the exit code after saying why
/// not.
fn load_drills(dir: &Path, only: Option<&str>) -> Result<Vec<firedrill::Drill>, u8> {
    let all = firedrill::daemon::load_drills(dir).map_err(|p| {
        errln!("{p}");
        2u8
    })?;
    match only {
        None => Ok(all.into_values().collect()),
        Some(n) => match all.get(n) {
            Some(d) => Ok(vec![d.clone()]),
            None => {
                errln!("error: no drill named {n} in {}", dir.display());
                Err(2)
            }
        },
    }
}

/// A snapshot drill's repository, read now: every snapshot its filters let through,
/// newest first, with what the catalog knows of its drills (verified yes/no, and which
/// one is the last verified).
pub(super) async fn snapshots(catalog: &Path, drill: &str, dir: &Path, json: bool) -> u8 {
    let path = drill_path(drill, dir);
    let drill = match load_named(&path, dir) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let firedrill::config::SourceSpec::Snapshot(spec) = &drill.source else {
        errln!(
            "error: drill {} does not drill a restic or Borg repository (source.type is not \"restic\" or \"borg\")\n  hint: `firedrill artifacts {}` lists its artifacts",
            drill.name, drill.name
        );
        return 2;
    };
    let repo = match firedrill::snapshot::build_repo(spec, &drill.base_dir, drill.timeouts.restore)
    {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    let mut snaps = match repo.snapshots().await {
        Ok(s) => s,
        Err(e) => {
            errln!("error: {e}");
            return if e.kind == firedrill::error::ErrorKind::Config {
                2
            } else {
                1
            };
        }
    };
    snaps.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    let known: HashMap<String, firedrill::catalog::ArtifactRecord> =
        match open_catalog(catalog).await {
            Ok(c) => c
                .artifacts(Some(&drill.name))
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.run_id.clone(), a))
                .collect(),
            Err(_) => HashMap::new(),
        };
    let last_verified = known
        .values()
        .filter(|a| a.verified == firedrill::status::Verified::Yes)
        .max_by_key(|a| (a.created_at, a.run_id.clone()))
        .map(|a| a.run_id.clone());
    #[derive(serde::Serialize)]
    struct Row<'a> {
        #[serde(flatten)]
        snapshot: &'a firedrill::snapshot::Snapshot,
        verified: firedrill::status::Verified,
        verified_at: Option<jiff::Timestamp>,
        last_verified: bool,
    }
    let rows: Vec<Row<'_>> = snaps
        .iter()
        .map(|s| {
            let k = known.get(&s.label);
            Row {
                snapshot: s,
                verified: k
                    .map(|a| a.verified)
                    .unwrap_or(firedrill::status::Verified::Never),
                verified_at: k.and_then(|a| a.verified_at),
                last_verified: last_verified.as_deref() == Some(s.label.as_str()),
            }
        })
        .collect();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return 0;
    }
    outln!("{}: {} snapshots", repo.describe(), rows.len());
    outln!(
        "{:<24} {:>6}  {:<28} verified",
        "SNAPSHOT",
        "AGE",
        "HOST / TAGS"
    );
    for r in &rows {
        let who = [
            r.snapshot.host.clone().unwrap_or_default(),
            r.snapshot.tags.join(","),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        let when = r
            .verified_at
            .map(|t| format!(" ({} ago)", age_of(t)))
            .unwrap_or_default();
        outln!(
            "{:<24} {:>6}  {:<28} {}{}{}",
            r.snapshot.label,
            age_of(r.snapshot.time),
            who,
            r.verified.as_str(),
            when,
            if r.last_verified {
                "  <- last verified"
            } else {
                ""
            }
        );
    }
    0
}

/// `catalog migrate`: the SQLite catalog `from` copied into the PostgreSQL catalog `to`.
pub(super) async fn migrate(from: &Path, to: &Path, json: bool) -> u8 {
    if !firedrill::catalog::is_postgres(to) {
        errln!(
            "error: catalog migrate copies into a PostgreSQL catalog, and the catalog is {}\n  hint: set catalog = \"postgres://user@host:5432/db\" (and catalog_password) in --config, or pass --catalog postgres://…",
            to.display()
        );
        return 2;
    }
    if !from.is_file() {
        errln!(
            "error: --from {}: no such SQLite catalog file\n  hint: give the file the daemon used (its `catalog`, e.g. /var/lib/firedrill/catalog.db)",
            from.display()
        );
        return 2;
    }
    if let Some(why) = firedrill::catalog::catalog_damage(from) {
        errln!(
            "error: --from {}: the catalog is damaged ({why})\n  hint: `firedrill --catalog {} catalog rebuild` salvages what it can first",
            from.display(),
            from.display()
        );
        return 2;
    }
    let source = match SqliteCatalog::open(from) {
        Ok(c) => c,
        Err(e) => {
            errln!("error: --from {}: {e}", from.display());
            return 2;
        }
    };
    let data = match source.export().await {
        Ok(d) => d,
        Err(e) => {
            errln!("error: reading {}: {e}", from.display());
            return 2;
        }
    };
    // A run still running there belongs to a live process: copying it would leave it
    // to be reaped as lost by the daemons of the new catalog.
    let running: Vec<&str> = data
        .runs
        .iter()
        .filter(|(r, _)| r.status == firedrill::status::RunStatus::Running)
        .map(|(r, _)| r.run_id.as_str())
        .collect();
    if !running.is_empty() {
        errln!(
            "error: {} still records {} running run(s): {}\n  hint: stop the daemon (and any `firedrill run`) using it, then migrate; a run left by a crash is recorded lost by starting and stopping the daemon once",
            from.display(),
            running.len(),
            running.join(", ")
        );
        return 2;
    }
    let target = match super::open_catalog(to).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    match target.import(&data).await {
        Ok(n) => {
            if json {
                let v = serde_json::json!({
                    "from": from,
                    "read": {
                        "runs": data.runs.len(),
                        "artifacts": data.artifacts.len(),
                        "incidents": data.incidents.len(),
                        "outbox": data.outbox.len(),
                        "digests": data.digests.len(),
                    },
                    "copied": n,
                });
                outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                outln!(
                    "copied {} of {} runs ({} accepted), {} of {} artifacts, {} of {} incidents, {} of {} notifications, {} of {} digests from {} (the rest were there already)",
                    n.runs,
                    data.runs.len(),
                    data.runs.iter().filter(|(_, a)| a.is_some()).count(),
                    n.artifacts,
                    data.artifacts.len(),
                    n.incidents,
                    data.incidents.len(),
                    n.outbox,
                    data.outbox.len(),
                    n.digests,
                    data.digests.len(),
                    from.display()
                );
            }
            0
        }
        Err(e) => {
            errln!("error: copying into the PostgreSQL catalog: {e}\n  nothing was copied (one transaction)");
            2
        }
    }
}
