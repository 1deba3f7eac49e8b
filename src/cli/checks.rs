//! The commands that check before anything runs: `validate` (the drill files, offline)
//! and `doctor` (that the drills' sources, storage, Docker and channels answer).

use std::path::{Path, PathBuf};

use firedrill::config::MainConfig;
use firedrill::load_drill;

use super::drill_path;

/// Checks drill files (every one in `dir` when none are given) without touching the world:
/// their structure and values, and, where the identity can be read here, that it opens
/// what the recipients lock.
pub(super) fn validate(files: Vec<PathBuf>, dir: &Path, json: bool) -> u8 {
    let files = if files.is_empty() {
        match firedrill::config::drill_files(dir) {
            Ok(v) => v,
            Err(e) => {
                errln!(
                    "{}: cannot read the drills directory: {e}\n  fix: give files, or --drills-dir",
                    dir.display()
                );
                return 2;
            }
        }
    } else {
        files
    };
    if files.is_empty() {
        errln!("no drill files found in {}", dir.display());
        return 2;
    }
    let mut bad = 0;
    let mut results = Vec::new();
    for f in &files {
        let loaded = load_drill(f).and_then(|d| match firedrill::drill::key_problem(&d) {
            Some(p) => Err(firedrill::Problems(vec![p])),
            None => Ok(d),
        });
        if loaded.is_err() {
            bad += 1;
        }
        if json {
            let (drill, problems) = match loaded {
                Ok(d) => (Some(d.name), Vec::new()),
                Err(p) => (None, p.0),
            };
            results.push(serde_json::json!({ "file": f, "drill": drill, "problems": problems }));
            continue;
        }
        match loaded {
            Ok(d) => outln!("ok    {} (drill {})", f.display(), d.name),
            Err(p) => {
                outln!("FAIL  {}", f.display());
                errln!("{p}");
            }
        }
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    }
    if bad > 0 {
        errln!("{bad} of {} drill files have problems", files.len());
        2
    } else {
        0
    }
}

/// Checks, changing nothing, that each drill (one, or every one in `dir`) and each
/// notification channel can work.
pub(super) async fn doctor(config: &MainConfig, drill: Option<&str>, dir: &Path, json: bool) -> u8 {
    let paths = match drill {
        Some(d) => vec![drill_path(d, dir)],
        None => match firedrill::config::drill_files(dir) {
            Ok(p) => p,
            Err(e) => {
                errln!("error: cannot read the drills directory {}: {e}\n  hint: pass --drills-dir or set drills_dir in --config", dir.display());
                return 2;
            }
        },
    };
    let mut all = Vec::new();
    let mut healthy = true;
    for path in paths {
        let findings = match load_drill(&path) {
            Ok(d) => firedrill::doctor::diagnose(&d).await,
            Err(p) => vec![firedrill::doctor::Finding::fail(
                "drill file",
                p.to_string().trim_end().to_string(),
                "run `firedrill validate` and fix what it names",
            )],
        };
        healthy &= firedrill::doctor::healthy(&findings);
        if !json {
            outln!("{}", path.display());
            out!("{}", firedrill::doctor::render(&findings));
        }
        all.push(serde_json::json!({ "file": path, "findings": findings }));
    }
    if config.file.is_some() {
        let findings = firedrill::doctor::diagnose_channels(config).await;
        healthy &= firedrill::doctor::healthy(&findings);
        if !json && !findings.is_empty() {
            outln!("notification channels");
            out!("{}", firedrill::doctor::render(&findings));
        }
        all.push(serde_json::json!({ "channels": findings }));
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    if healthy {
        0
    } else {
        2
    }
}
