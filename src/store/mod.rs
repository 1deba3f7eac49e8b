//! Object storage for artifacts and manifests.
//!
//! One trait, [`ArtifactStore`], in front of every backend. Backends are built from the
//! validated [`StorageSpec`]; today a local directory through OpenDAL's `fs` service, with
//! the same code path that S3 and the other OpenDAL services will take.

mod opendal_store;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use crate::config::StorageSpec;
use crate::error::{Error, Result};

pub use opendal_store::OpendalStore;

/// A stream of an object's bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// What a producer sends to [`ArtifactStore::put_stream`]. A channel that closes without
/// [`Upload::Finish`] aborts the upload: a crashed producer never leaves a complete-looking
/// object.
#[derive(Debug)]
pub enum Upload {
    Chunk(Bytes),
    Finish,
    Abort(Error),
}

#[async_trait]
pub trait ArtifactStore: Send + Sync + 'static {
    /// Where this store is, for messages ("local directory /srv/backups").
    fn describe(&self) -> String;

    /// Writes `key` from a stream of chunks with bounded memory. The object appears under
    /// `key` only once complete; on abort nothing remains. Returns the bytes written.
    async fn put_stream(&self, key: &str, chunks: mpsc::Receiver<Upload>) -> Result<u64>;

    /// Writes a small object (a manifest) in one piece, atomically.
    async fn put(&self, key: &str, data: Bytes) -> Result<()>;

    /// Streams an object.
    async fn get_stream(&self, key: &str) -> Result<ByteStream>;

    /// Reads a small object whole.
    async fn get(&self, key: &str) -> Result<Bytes>;

    /// The size of an object in bytes.
    async fn size(&self, key: &str) -> Result<u64>;

    /// When an object was last written, where the backend knows.
    async fn modified(&self, key: &str) -> Result<Option<jiff::Timestamp>>;

    /// Keys under a prefix, recursively (files only).
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    async fn delete(&self, key: &str) -> Result<()>;

    /// Parts of writes that never finished (a process killed mid-upload leaves its
    /// temporary file) not touched for `older_than`: their names and sizes. Stores that
    /// keep no such parts have none.
    async fn stale_parts(&self, older_than: std::time::Duration) -> Result<Vec<(String, u64)>> {
        let _ = older_than;
        Ok(Vec::new())
    }

    /// Removes one of [`ArtifactStore::stale_parts`].
    async fn remove_part(&self, name: &str) -> Result<()> {
        Err(Error::internal(format!("this store keeps no part {name}")))
    }
}

/// Builds the store a drill names. Creates nothing remote; a local directory is created
/// if missing.
pub fn build_store(
    spec: &StorageSpec,
    base_dir: &std::path::Path,
) -> Result<Box<dyn ArtifactStore>> {
    match spec {
        StorageSpec::Local { path, .. } => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                base_dir.join(path)
            };
            Ok(Box::new(OpendalStore::local(&path)?))
        }
        remote => Ok(Box::new(OpendalStore::remote(remote, base_dir)?)),
    }
}

mod run_dir;

pub use run_dir::{RunDir, VerificationMarker, ARTIFACT_FILE, MANIFEST_FILE, VERIFIED_FILE};

/// What a store says went wrong, kept as the [`Error`]'s source so that the caller, who
/// knows what the key meant, can decide what the failure means (a manifest missing from
/// a run the drill just made is a broken backup; one missing for a run id a person typed
/// is a usage error). Classified from the backend's own error kinds and OS error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreFault {
    #[error("no such object")]
    NotFound,
    #[error("the key leads outside the store")]
    OutsideRoot,
    #[error("the storage is full")]
    NoSpace,
    #[error("access denied")]
    Denied,
}

impl StoreFault {
    /// What the store said about a failed operation, if it was one of these.
    pub fn of(e: &Error) -> Option<StoreFault> {
        e.find::<StoreFault>().copied()
    }
}

/// The key prefix of a drill's artifacts under a store.
pub fn drill_prefix(spec: &StorageSpec, drill: &str) -> String {
    let prefix = spec.prefix();
    if prefix.is_empty() {
        format!("{drill}/")
    } else {
        format!("{prefix}/{drill}/")
    }
}
