//! Dynamic shell completions. `firedrill completions SHELL` prints a script that asks
//! firedrill itself for the candidates as the user types (`COMPLETE=SHELL firedrill --
//! WORDS…`): drill names from the drills directory, run ids from the catalog, besides the
//! commands and options. The directory and catalog are those of `$FIREDRILL_CONFIG`, else
//! `./drills` and the default catalog: what the command being typed would use when it
//! names neither. Completing never writes: a catalog that does not exist is not created.

use std::path::{Path, PathBuf};

use clap_complete::engine::CompletionCandidate;
use clap_complete::env::Shells;

/// The main config named by `$FIREDRILL_CONFIG`, when it reads.
fn main_config() -> Option<firedrill::config::MainConfig> {
    let path = std::env::var_os("FIREDRILL_CONFIG")?;
    firedrill::config::load_main_config(Path::new(&path)).ok()
}

/// The drills in the drills directory, by name.
pub(super) fn drill_names() -> Vec<CompletionCandidate> {
    let dir = main_config()
        .and_then(|c| c.drills_dir)
        .unwrap_or_else(|| PathBuf::from("drills"));
    super::known_drills(&dir)
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// The catalog's latest runs, newest first, each with its drill and status as help.
pub(super) fn run_ids() -> Vec<CompletionCandidate> {
    use firedrill::catalog::Catalog;
    let path = main_config()
        .and_then(|c| c.catalog)
        .unwrap_or_else(super::default_catalog);
    if !path.is_file() {
        return Vec::new();
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    rt.block_on(async {
        let Ok(catalog) = firedrill::catalog::SqliteCatalog::open(&path) else {
            return Vec::new();
        };
        catalog
            .runs(None, 200)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let help = format!("{} {}", r.drill, r.status.as_str());
                CompletionCandidate::new(r.run_id).help(Some(help.into()))
            })
            .collect()
    })
}

/// The registration script of `shell`: it calls `firedrill` (on PATH) for candidates.
pub(super) fn registration(shell: clap_complete::Shell) -> Result<Vec<u8>, String> {
    let name = match shell {
        clap_complete::Shell::Bash => "bash",
        clap_complete::Shell::Elvish => "elvish",
        clap_complete::Shell::Fish => "fish",
        clap_complete::Shell::PowerShell => "powershell",
        clap_complete::Shell::Zsh => "zsh",
        other => return Err(format!("no dynamic completions for {other}")),
    };
    let shells = Shells::builtins();
    let completer = shells
        .completer(name)
        .ok_or_else(|| format!("no dynamic completions for {name}"))?;
    let mut script = Vec::new();
    completer
        .write_registration(
            "COMPLETE",
            "firedrill",
            "firedrill",
            "firedrill",
            &mut script,
        )
        .map_err(|e| e.to_string())?;
    Ok(script)
}
