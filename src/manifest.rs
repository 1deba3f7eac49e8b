//! The manifest written beside every artifact: what it is, how it was made and what was
//! in it. An artifact without a manifest is an unfinished upload and is never drilled.

use serde::{Deserialize, Serialize};

use crate::engine::kind::Engine;
use crate::engine::DumpMeta;
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::store::RunDir;

pub const MANIFEST_VERSION: u32 = 1;

/// What a synthesized manifest says of formats firedrill did not write: detected at
/// restore.
const EXTERNAL_FORMAT: &str = "auto";

/// What a physical drill's manifest says of its format.
const PHYSICAL_FORMAT: &str = "physical";

/// Byte counts and digest of one encrypted artifact, as the pipeline measured it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digest {
    pub plain_bytes: u64,
    pub compressed_bytes: u64,
    pub encrypted_bytes: u64,
    /// SHA-256 (hex) of the encrypted bytes.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: u32,
    pub drill: String,
    pub run_id: String,
    pub started_at: jiff::Timestamp,
    pub finished_at: jiff::Timestamp,
    pub engine: Engine,
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
    /// The manifest of a backup firedrill just made and uploaded to `dir`.
    #[allow(clippy::too_many_arguments)]
    pub fn for_backup(
        drill: &str,
        dir: &RunDir,
        started_at: jiff::Timestamp,
        meta: &DumpMeta,
        digest: &Digest,
        recipients: Vec<String>,
        fingerprint: Fingerprint,
        notes: Vec<String>,
    ) -> Manifest {
        Manifest {
            manifest_version: MANIFEST_VERSION,
            drill: drill.to_string(),
            run_id: dir.run_id().to_string(),
            started_at,
            finished_at: jiff::Timestamp::now(),
            engine: meta.engine,
            source_server_version: meta.server_version.clone(),
            source_major: meta.server_major.clone(),
            databases: meta.databases.clone(),
            dump_tool: meta.tool.clone(),
            dump_tool_version: meta.tool_version.clone(),
            dump_format: meta.format.clone(),
            compression: "zstd".into(),
            encryption: "age".into(),
            artifact_key: dir.artifact(),
            plain_bytes: digest.plain_bytes,
            compressed_bytes: digest.compressed_bytes,
            encrypted_bytes: digest.encrypted_bytes,
            sha256: digest.sha256.clone(),
            recipients,
            fingerprint,
            notes,
            firedrill_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// What a verify-only drill knows of a file another tool stored at `key`: its size,
    /// when it was written, and what the drill file declares. Encryption, compression and
    /// format are detected at restore; there is no fingerprint to compare with.
    #[allow(clippy::too_many_arguments)]
    pub fn external(
        drill: &str,
        run_id: &str,
        key: &str,
        size: u64,
        modified: jiff::Timestamp,
        engine: Engine,
        version: &str,
        database: &str,
    ) -> Manifest {
        Manifest {
            manifest_version: MANIFEST_VERSION,
            drill: drill.to_string(),
            run_id: run_id.to_string(),
            started_at: modified,
            finished_at: modified,
            engine,
            source_server_version: version.to_string(),
            source_major: version.to_string(),
            databases: vec![database.to_string()],
            dump_tool: "external".into(),
            dump_tool_version: String::new(),
            dump_format: EXTERNAL_FORMAT.into(),
            compression: EXTERNAL_FORMAT.into(),
            encryption: EXTERNAL_FORMAT.into(),
            artifact_key: key.to_string(),
            plain_bytes: 0,
            compressed_bytes: 0,
            encrypted_bytes: size,
            sha256: String::new(),
            recipients: vec![],
            fingerprint: Fingerprint::default(),
            notes: vec![],
            firedrill_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// What a physical drill restores: a backup tool's backup set (`key` names it, e.g.
    /// `pgbackrest:main/20261201-092810F`), and the fingerprint taken at the restore
    /// point the drill recovers to, when it took one (empty otherwise: nothing to compare
    /// exactly with).
    #[allow(clippy::too_many_arguments)]
    pub fn physical(
        drill: &str,
        run_id: &str,
        key: &str,
        made_at: jiff::Timestamp,
        tool: &str,
        engine: Engine,
        major: &str,
        database: &str,
        fingerprint: Fingerprint,
    ) -> Manifest {
        Manifest {
            dump_tool: tool.to_string(),
            dump_format: PHYSICAL_FORMAT.into(),
            compression: tool.to_string(),
            encryption: tool.to_string(),
            fingerprint,
            ..Manifest::external(drill, run_id, key, 0, made_at, engine, major, database)
        }
    }

    /// Whether this describes a physical backup set (a backup tool's files and WAL).
    pub fn is_physical(&self) -> bool {
        self.dump_format == PHYSICAL_FORMAT
    }

    /// Whether this describes a file another tool made (a verify-only drill's), not a
    /// firedrill artifact: no manifest in storage, no fingerprint, formats detected.
    pub fn is_external(&self) -> bool {
        self.dump_format == EXTERNAL_FORMAT
    }

    /// The artifact's digest as the manifest records it.
    pub fn digest(&self) -> Digest {
        Digest {
            plain_bytes: self.plain_bytes,
            compressed_bytes: self.compressed_bytes,
            encrypted_bytes: self.encrypted_bytes,
            sha256: self.sha256.clone(),
        }
    }

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
        let dir = RunDir::containing(key);
        let expected = dir.artifact();
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
        let run_dir = dir.run_id();
        if self.run_id != run_dir {
            return refuse(format!(
                "names run `{}` but sits in directory `{run_dir}`",
                self.run_id.escape_debug()
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
            engine: Engine::Postgres,
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
        let text = String::from_utf8(sample().to_json())
            .unwrap()
            .replace("\"postgres\"", "\"oracle\"");
        assert!(Manifest::from_json(text.as_bytes(), KEY).is_err());
        let mut m = sample();
        m.run_id = "r9".into();
        let e = Manifest::from_json(&m.to_json(), KEY).unwrap_err();
        assert!(e.message.contains("names run `r9`"), "{e}");
    }
}
