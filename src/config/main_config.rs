//! The main config file (`firedrill.toml`): where the catalog lives, where the drills are,
//! and who gets paged. Drills themselves live one per file in the drills directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Problem, Problems};
use crate::notify::{NotifyConfig, NotifySpec};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainConfigFile {
    /// The SQLite catalog (default: /var/lib/firedrill/catalog.db as root).
    pub catalog: Option<PathBuf>,
    /// Where the drill files are (default: `drills` beside this file).
    pub drills_dir: Option<PathBuf>,
    #[serde(default)]
    pub notify: NotifyConfig,
}

/// The main config, checked.
#[derive(Debug, Clone, Default)]
pub struct MainConfig {
    pub file: Option<PathBuf>,
    pub base_dir: PathBuf,
    pub catalog: Option<PathBuf>,
    pub drills_dir: Option<PathBuf>,
    pub notify: NotifySpec,
}

pub fn load_main_config(path: &Path) -> Result<MainConfig, Problems> {
    let problem = |field: &str, message: String, fix: &str| Problem {
        file: path.to_path_buf(),
        field: field.into(),
        message,
        fix: fix.into(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![problem(
            "",
            format!("cannot read the file: {e}"),
            "check the path given to --config",
        )])
    })?;
    let raw: MainConfigFile = toml::from_str(&text).map_err(|e| {
        Problems(vec![problem(
            "",
            e.message().to_string(),
            "correct the TOML; unknown fields are refused",
        )])
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let notify = crate::notify::validate(&raw.notify).map_err(|ps| {
        Problems(
            ps.into_iter()
                .map(|(f, m, fix)| problem(&f, m, &fix))
                .collect(),
        )
    })?;
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };
    Ok(MainConfig {
        file: Some(path.to_path_buf()),
        catalog: raw.catalog.map(resolve),
        drills_dir: raw.drills_dir.map(resolve),
        base_dir,
        notify,
    })
}
