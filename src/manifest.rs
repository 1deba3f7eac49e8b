//! The manifest written beside every artifact: what it is, how it was made and what was
//! in it. An artifact without a manifest is an unfinished upload and is never drilled.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;

pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: u32,
    pub drill: String,
    pub run_id: String,
    pub started_at: jiff::Timestamp,
    pub finished_at: jiff::Timestamp,
    /// `postgres`, later `mysql` / `mariadb`.
    pub engine: String,
    pub source_server_version: String,
    /// The source's release series (`15`, `10.11`, `8.0`), which picks the sandbox image.
    pub source_major: String,
    /// The databases in the dump.
    pub databases: Vec<String>,
    pub dump_tool: String,
    pub dump_tool_version: String,
    /// `custom` (pg_dump -Fc) or `sql` (mysqldump).
    pub dump_format: String,
    /// `zstd`.
    pub compression: String,
    /// `age`.
    pub encryption: String,
    /// Key of the artifact, relative to the store root.
    pub artifact_key: String,
    pub plain_bytes: u64,
    pub compressed_bytes: u64,
    pub encrypted_bytes: u64,
    /// SHA-256 (hex) of the encrypted object as stored.
    pub sha256: String,
    pub recipients: Vec<String>,
    pub fingerprint: Fingerprint,
    /// What the dump stage noticed (source rows differing from the dump's, statements the
    /// restore neutralises).
    #[serde(default)]
    pub notes: Vec<String>,
    pub firedrill_version: String,
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        v.push(b'\n');
        v
    }

    /// Parses and sanity-checks a manifest read from storage.
    pub fn from_json(bytes: &[u8], key: &str) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            Error::backup(format!("manifest {key} is not valid: {e}")).with_hint(
                "the manifest was edited or written by another tool; drill another artifact",
            )
        })?;
        if m.manifest_version != MANIFEST_VERSION {
            return Err(Error::backup(format!(
                "manifest {key} has version {}, this firedrill reads version {MANIFEST_VERSION}",
                m.manifest_version
            ))
            .with_hint("upgrade firedrill to drill artifacts made by newer versions"));
        }
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::backup(format!(
                "manifest {key}: sha256 is not a SHA-256 hex digest"
            )));
        }
        m.check_placement(key)?;
        Ok(m)
    }

    /// A manifest is only trusted about the run directory it sits in: its artifact must be
    /// the `artifact.dump.zst.age` beside it and its run id that directory's name. Storage
    /// is not trusted (a manifest can be edited or copied there by anyone who can write to
    /// the bucket); without this, a manifest could send a drill to fetch, restore or
    /// `prune` another drill's artifact or any object of the store. The fields that pick
    /// a sandbox image or feed the restore commands are checked too, so that nothing
    /// downstream has to.
    fn check_placement(&self, key: &str) -> Result<()> {
        let refuse = |what: String| {
            Err(Error::backup(format!("manifest {key} {what}; refusing it"))
                .with_hint("the manifest was edited or copied from elsewhere in storage; this artifact cannot be trusted, drill another one and find out who changed the store"))
        };
        let expected = crate::store::sibling(key, crate::store::ARTIFACT_FILE);
        if self.artifact_key != expected {
            let outside = self.artifact_key.starts_with('/')
                || self.artifact_key.contains('\\')
                || self.artifact_key.split('/').any(|p| p == ".." || p == ".");
            return refuse(format!(
                "points {} (artifact_key `{}`, expected `{expected}`)",
                if outside {
                    "outside the store"
                } else {
                    "outside its own run directory"
                },
                self.artifact_key.escape_debug()
            ));
        }
        let run_dir = key
            .rsplit_once('/')
            .and_then(|(dir, _)| dir.rsplit('/').next())
            .unwrap_or("");
        if self.run_id != run_dir {
            return refuse(format!(
                "names run `{}` but sits in directory `{run_dir}`",
                self.run_id.escape_debug()
            ));
        }
        if crate::engine::Engine::parse(&self.engine).is_err() {
            return refuse(format!(
                "names engine `{}`, not postgres, mariadb or mysql",
                self.engine.escape_debug()
            ));
        }
        let series = |s: &str| {
            !s.is_empty()
                && s.len() <= 16
                && s.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        if !series(&self.source_major) {
            return refuse(format!(
                "has source_major `{}`, not a release series like 15 or 10.11",
                self.source_major.escape_debug()
            ));
        }
        if self.databases.is_empty() || self.databases.iter().any(|d| d.is_empty()) {
            return refuse("names no database (or an empty name)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let ts: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        Manifest {
            manifest_version: 1,
            drill: "shop".into(),
            run_id: "r1".into(),
            started_at: ts,
            finished_at: ts,
            engine: "postgres".into(),
            source_server_version: "15.14".into(),
            source_major: "15".into(),
            databases: vec!["shop".into()],
            dump_tool: "pg_dump".into(),
            dump_tool_version: "15.14".into(),
            dump_format: "custom".into(),
            compression: "zstd".into(),
            encryption: "age".into(),
            artifact_key: "shop/r1/artifact.dump.zst.age".into(),
            plain_bytes: 10,
            compressed_bytes: 8,
            encrypted_bytes: 200,
            sha256: "a".repeat(64),
            recipients: vec![],
            fingerprint: Fingerprint::default(),
            notes: vec![],
            firedrill_version: "0.1.0".into(),
        }
    }

    const KEY: &str = "shop/r1/manifest.json";

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(Manifest::from_json(&m.to_json(), KEY).unwrap(), m);
    }

    #[test]
    fn refuses_keys_outside_the_store() {
        for bad in [
            "../../etc/passwd",
            "/etc/passwd",
            "shop/r1/../../x",
            "./shop/r1/artifact.dump.zst.age",
        ] {
            let mut m = sample();
            m.artifact_key = bad.into();
            let e = Manifest::from_json(&m.to_json(), KEY).unwrap_err();
            assert!(e.message.contains("outside the store"), "{bad}: {e}");
        }
    }

    #[test]
    fn refuses_another_runs_or_drills_artifact() {
        for bad in [
            "other/r1/artifact.dump.zst.age",
            "shop/r0/artifact.dump.zst.age",
            "shop/r1/manifest.json",
        ] {
            let mut m = sample();
            m.artifact_key = bad.into();
            let e = Manifest::from_json(&m.to_json(), KEY).unwrap_err();
            assert!(
                e.message.contains("outside its own run directory"),
                "{bad}: {e}"
            );
        }
        let e = Manifest::from_json(&sample().to_json(), "shop/r2/manifest.json").unwrap_err();
        assert!(e.message.contains("outside its own run directory"), "{e}");
    }

    #[test]
    fn refuses_fields_that_would_steer_the_sandbox() {
        let mut m = sample();
        m.source_major = "15 --privileged".into();
        assert!(Manifest::from_json(&m.to_json(), KEY).is_err());
        let mut m = sample();
        m.databases.clear();
        assert!(Manifest::from_json(&m.to_json(), KEY).is_err());
        let mut m = sample();
        m.engine = "oracle".into();
        assert!(Manifest::from_json(&m.to_json(), KEY).is_err());
        let mut m = sample();
        m.run_id = "r9".into();
        let e = Manifest::from_json(&m.to_json(), KEY).unwrap_err();
        assert!(e.message.contains("names run `r9`"), "{e}");
    }
}
