//! The files of one run in storage, under `<prefix><drill>/<run>/`: its artifact, its
//! manifest, and the last drill's verdict on the artifact. One type owns how their keys
//! are made, so that no caller assembles a key by hand.

use serde::{Deserialize, Serialize};

use super::drill_prefix;
use crate::config::StorageSpec;
use crate::error::{Error, Result};
use crate::status::Verified;

/// The encrypted, compressed dump.
pub const ARTIFACT_FILE: &str = "artifact.dump.zst.age";
/// What the artifact is and how it was made ([`crate::manifest::Manifest`]).
pub const MANIFEST_FILE: &str = "manifest.json";
/// The last drill's verdict on the artifact ([`VerificationMarker`]), so that a rebuilt
/// catalog knows it.
pub const VERIFIED_FILE: &str = "verified.json";

/// One run's directory in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    /// `<prefix><drill>/<run>/`.
    dir: String,
    run_id: String,
}

impl RunDir {
    /// The directory of run `run_id` of `drill`. The run id is firedrill's own (a new run,
    /// the catalog's); for one a person typed, use [`RunDir::named`].
    pub fn new(spec: &StorageSpec, drill: &str, run_id: &str) -> RunDir {
        RunDir {
            dir: format!("{}{run_id}/", drill_prefix(spec, drill)),
            run_id: run_id.to_string(),
        }
    }

    /// The directory of a run id a person or a client gave (`run --artifact ID`, the
    /// API): refused unless it is one path segment, so that it cannot lead anywhere but
    /// to a run of this drill.
    pub fn named(spec: &StorageSpec, drill: &str, run_id: &str) -> Result<RunDir> {
        let ok = !run_id.is_empty()
            && run_id.len() <= 128
            && !run_id.starts_with('.')
            && run_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(
                Error::config(format!("`{}` is not a run id", run_id.escape_debug())).with_hint(
                    "a run id looks like 20261126T100000Z-abc123: see `firedrill artifacts DRILL`",
                ),
            );
        }
        Ok(Self::new(spec, drill, run_id))
    }

    /// The directory holding `key` (a manifest's or an artifact's key).
    pub fn containing(key: &str) -> RunDir {
        let dir = match key.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => String::new(),
        };
        let run_id = dir
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        RunDir { dir, run_id }
    }

    /// The run's id: the name of its directory.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn artifact(&self) -> String {
        format!("{}{ARTIFACT_FILE}", self.dir)
    }

    pub fn manifest(&self) -> String {
        format!("{}{MANIFEST_FILE}", self.dir)
    }

    pub fn verified(&self) -> String {
        format!("{}{VERIFIED_FILE}", self.dir)
    }
}

/// What `verified.json` beside an artifact says: the last drill's verdict on it, so a
/// rebuilt catalog knows it too.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerificationMarker {
    pub verified: Verified,
    pub at: jiff::Timestamp,
    pub by_run: String,
}

impl VerificationMarker {
    pub fn to_json(&self) -> bytes::Bytes {
        bytes::Bytes::from(serde_json::to_vec_pretty(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> StorageSpec {
        StorageSpec::Local {
            path: "/srv/backups".into(),
            prefix: "nightly".into(),
        }
    }

    #[test]
    fn keys_of_a_run() {
        let d = RunDir::new(&local(), "shop", "r1");
        assert_eq!(d.artifact(), "nightly/shop/r1/artifact.dump.zst.age");
        assert_eq!(d.manifest(), "nightly/shop/r1/manifest.json");
        assert_eq!(d.verified(), "nightly/shop/r1/verified.json");
        let back = RunDir::containing(&d.manifest());
        assert_eq!(back, d);
        assert_eq!(back.run_id(), "r1");
    }

    #[test]
    fn a_typed_run_id_cannot_leave_its_drill() {
        for bad in [
            "",
            "..",
            ".",
            "../other/r1",
            "r1/../../x",
            "/etc",
            "a b",
            "r\\1",
        ] {
            let e = RunDir::named(&local(), "shop", bad).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Config, "{bad}");
        }
        assert!(RunDir::named(&local(), "shop", "20261126T100000Z-abc123").is_ok());
    }
}
