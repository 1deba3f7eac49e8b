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
    #[serde(default)]
    pub daemon: DaemonConfigFile,
}

/// `[daemon]`: the scheduler and the HTTP API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfigFile {
    /// Address of the HTTP API (default 127.0.0.1:9797).
    pub listen: Option<String>,
    /// Bearer token for the API (every route but /healthz, and /metrics when public).
    pub token: Option<crate::secret::SecretRef>,
    /// Drills running at once (default 2); others wait in order.
    pub max_concurrent_drills: Option<usize>,
    /// How long SIGTERM waits for drills to stop and sandboxes to go (default "30s").
    pub grace: Option<String>,
    /// An Alertmanager webhook starts a drill at most once per this long (default "1h").
    pub hook_interval: Option<String>,
    /// Serve /metrics without the token (default true).
    pub metrics_public: Option<bool>,
}

/// `[daemon]`, checked.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    pub listen: std::net::SocketAddr,
    pub token: Option<crate::secret::SecretSource>,
    pub max_concurrent_drills: usize,
    pub grace: std::time::Duration,
    pub hook_interval: std::time::Duration,
    pub metrics_public: bool,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            listen: "127.0.0.1:9797".parse().expect("a socket address"),
            token: None,
            max_concurrent_drills: 2,
            grace: std::time::Duration::from_secs(30),
            hook_interval: std::time::Duration::from_secs(3600),
            metrics_public: true,
        }
    }
}

/// The main config, checked.
#[derive(Debug, Clone, Default)]
pub struct MainConfig {
    pub file: Option<PathBuf>,
    pub base_dir: PathBuf,
    pub catalog: Option<PathBuf>,
    pub drills_dir: Option<PathBuf>,
    pub notify: NotifySpec,
    pub daemon: DaemonSettings,
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
    let mut problems = Vec::new();
    let d = &raw.daemon;
    let def = DaemonSettings::default();
    let listen = match &d.listen {
        None => def.listen,
        Some(l) => l.parse().unwrap_or_else(|_| {
            problems.push(problem(
                "daemon.listen",
                format!("`{l}` is not an address"),
                "write host:port, e.g. \"127.0.0.1:9797\" or \"0.0.0.0:9797\"",
            ));
            def.listen
        }),
    };
    let token = d.token.as_ref().and_then(|t| {
        t.validate()
            .map_err(|m| {
                problems.push(problem(
                    "daemon.token",
                    m,
                    "the token is never inline: { env = \"VAR\" } or { file = \"/path\" }",
                ))
            })
            .ok()
    });
    let mut dur = |field: &str, v: &Option<String>, default: std::time::Duration| match v {
        None => default,
        Some(s) => super::parse_duration(s).unwrap_or_else(|m| {
            problems.push(problem(field, m, "write e.g. \"30s\" or \"1h\""));
            default
        }),
    };
    let grace = dur("daemon.grace", &d.grace, def.grace);
    let hook_interval = dur("daemon.hook_interval", &d.hook_interval, def.hook_interval);
    let max = d.max_concurrent_drills.unwrap_or(def.max_concurrent_drills);
    if max == 0 {
        problems.push(problem(
            "daemon.max_concurrent_drills",
            "0 would never run a drill".into(),
            "give 1 or more",
        ));
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let daemon = DaemonSettings {
        listen,
        token,
        max_concurrent_drills: max.max(1),
        grace,
        hook_interval,
        metrics_public: d.metrics_public.unwrap_or(true),
    };
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };
    Ok(MainConfig {
        file: Some(path.to_path_buf()),
        catalog: raw.catalog.map(resolve),
        drills_dir: raw.drills_dir.map(resolve),
        base_dir,
        notify,
        daemon,
    })
}
