//! [`ArtifactStore`] over an OpenDAL operator.

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use opendal::{ErrorKind as OdKind, Operator};
use tokio::sync::mpsc;

use std::time::Duration;

use super::{ArtifactStore, ByteStream, StoreFault, Upload};
use crate::config::StorageSpec;
use crate::error::{Error, Result};
use crate::secret::SecretSource;

/// Multipart chunk size: big enough for S3's 5 MiB minimum part, small enough to bound
/// memory.
const CHUNK: usize = 8 << 20;

/// Where a local store writes before renaming into place.
const TMP_DIR: &str = ".firedrill-tmp";

pub struct OpendalStore {
    op: Operator,
    description: String,
    /// The directory of a local store, so that errors name files on disk.
    root: Option<std::path::PathBuf>,
}

impl OpendalStore {
    /// A local directory. Writes go to a temporary directory inside it and are renamed
    /// into place when complete.
    pub fn local(path: &Path) -> Result<Self> {
        let tmp = path.join(TMP_DIR);
        std::fs::create_dir_all(&tmp).map_err(|e| {
            Error::infra(format!(
                "cannot create the storage directory {}: {e}",
                path.display()
            ))
            .with_hint("create it, or give firedrill's user write access to it")
            .retryable(false)
        })?;
        let builder = opendal::services::Fs::default()
            .root(&path.to_string_lossy())
            .atomic_write_dir(&tmp.to_string_lossy());
        let op = Operator::new(builder).map_err(|e| map_err(e, "open storage"))?;
        Ok(OpendalStore {
            op,
            description: format!("local directory {}", path.display()),
            root: Some(path.to_path_buf()),
        })
    }
}

impl OpendalStore {
    /// An object store reached over the network. Credentials are read now; nothing is
    /// contacted until the first operation. Transient failures (timeouts, 5xx, throttling)
    /// are retried with jittered exponential backoff; each operation has a timeout.
    pub fn remote(spec: &StorageSpec, base_dir: &Path) -> Result<Self> {
        // The HTTP transport is process-wide; installing it again is a no-op.
        opendal::install_default();
        let secret = |field: &str, s: &SecretSource| {
            s.load(base_dir)
                .map_err(|e| e.context(format!("storage.{field}")))
        };
        let (op, description) = match spec {
            StorageSpec::Local { .. } => {
                unreachable!("local stores are built by OpendalStore::local")
            }
            StorageSpec::S3 {
                bucket,
                region,
                endpoint,
                path_style,
                access_key_id,
                secret_access_key,
                ..
            } => {
                let mut b = opendal::services::S3::default()
                    .bucket(bucket)
                    .region(region)
                    .access_key_id(secret("access_key_id", access_key_id)?.expose())
                    .secret_access_key(secret("secret_access_key", secret_access_key)?.expose())
                    .disable_config_load();
                if let Some(e) = endpoint {
                    b = b.endpoint(e);
                }
                if !path_style {
                    b = b.enable_virtual_host_style();
                }
                let where_ = endpoint.clone().unwrap_or_else(|| "AWS".into());
                (Operator::new(b), format!("s3://{bucket} at {where_}"))
            }
            StorageSpec::Gcs {
                bucket, credential, ..
            } => {
                let cred = secret("credential", credential)?;
                let b = opendal::services::Gcs::default()
                    .bucket(bucket)
                    .credential(&base64_std(cred.expose().as_bytes()))
                    .disable_config_load()
                    .disable_vm_metadata();
                (Operator::new(b), format!("gs://{bucket}"))
            }
            StorageSpec::Azblob {
                container,
                account_name,
                account_key,
                endpoint,
                ..
            } => {
                let ep = endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://{account_name}.blob.core.windows.net"));
                let b = opendal::services::Azblob::default()
                    .container(container)
                    .account_name(account_name)
                    .account_key(secret("account_key", account_key)?.expose())
                    .endpoint(&ep);
                (Operator::new(b), format!("azblob {container} at {ep}"))
            }
            StorageSpec::B2 {
                bucket,
                bucket_id,
                application_key_id,
                application_key,
                ..
            } => {
                let b = opendal::services::B2::default()
                    .bucket(bucket)
                    .bucket_id(bucket_id)
                    .application_key_id(secret("application_key_id", application_key_id)?.expose())
                    .application_key(secret("application_key", application_key)?.expose());
                (Operator::new(b), format!("b2://{bucket}"))
            }
            StorageSpec::Swift {
                endpoint,
                container,
                token,
                ..
            } => {
                let b = opendal::services::Swift::default()
                    .endpoint(endpoint)
                    .container(container)
                    .token(secret("token", token)?.expose());
                (Operator::new(b), format!("swift {container} at {endpoint}"))
            }
            StorageSpec::Sftp {
                endpoint,
                user,
                key,
                root,
                ..
            } => {
                let key = if key.is_absolute() {
                    key.clone()
                } else {
                    base_dir.join(key)
                };
                let b = opendal::services::Sftp::default()
                    .endpoint(endpoint)
                    .user(user)
                    .key(&key.to_string_lossy())
                    .root(root);
                (Operator::new(b), format!("sftp {endpoint}{root}"))
            }
        };
        let op = op
            .map_err(|e| map_err(e, "configure storage"))?
            .layer(
                opendal::layers::TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(120))
                    .with_io_timeout(Duration::from_secs(60)),
            )
            .layer(
                opendal::layers::RetryLayer::new()
                    .with_jitter()
                    .with_max_times(4)
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(10)),
            );
        Ok(OpendalStore {
            op,
            description,
            root: None,
        })
    }
}

fn base64_std(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What the backend's error says in our terms, from its kind and, for a local disk, the
/// OS error under it.
fn fault_of(e: &opendal::Error) -> Option<StoreFault> {
    match e.kind() {
        OdKind::NotFound => return Some(StoreFault::NotFound),
        OdKind::PermissionDenied => return Some(StoreFault::Denied),
        _ => {}
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            // ENOSPC, EDQUOT
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) || matches!(io.raw_os_error(), Some(28 | 122))
            {
                return Some(StoreFault::NoSpace);
            }
        }
        next = cause.source();
    }
    None
}

/// Maps an OpenDAL error to ours: not-found and permission errors say what to fix and are
/// not retried; temporary ones are. The typed fault is kept as the source, for callers
/// that know what a missing object means.
fn map_err(e: opendal::Error, what: &str) -> Error {
    let fault = fault_of(&e);
    let err = match (fault, e.kind()) {
        (Some(StoreFault::NotFound), _) => Error::backup(format!("{what}: not found ({e})"))
            .with_hint("the object is missing from storage; list artifacts or check the storage prefix"),
        (Some(StoreFault::Denied), _) => Error::infra(format!("{what}: access denied ({e})"))
            .with_hint("check the storage credentials (key id and secret) and that they may read and write this bucket and prefix")
            .retryable(false),
        (Some(StoreFault::NoSpace), _) => Error::infra(format!("{what}: the storage is full ({e})"))
            .with_hint("free space there, or delete old artifacts with `firedrill prune`")
            .retryable(false),
        (_, OdKind::ConfigInvalid) => {
            Error::config(format!("{what}: invalid storage configuration ({e})"))
        }
        (_, OdKind::RateLimited) => {
            Error::infra(format!("{what}: throttled by storage ({e})")).retryable(true)
        }
        _ => Error::infra(format!("{what}: {e}"))
            .retryable(e.is_temporary() || e.kind() == OdKind::Unexpected),
    };
    let mut err = match fault {
        Some(f) => return err.with_source(f),
        None => err.with_source(e),
    };
    // A store that cannot be reached: OpenDAL's message ends in "error sending request";
    // the OS's reason (refused, no such host, timed out) is in the cause chain.
    if let Some((kind, why)) = err
        .find::<std::io::Error>()
        .map(|io| (io.kind(), io.to_string()))
    {
        let said = std::mem::take(&mut err.message);
        let said = said
            .strip_prefix(what)
            .and_then(|r| r.strip_prefix(": "))
            .unwrap_or(&said);
        err.message = format!("{what}: cannot reach the store: {why} ({said})");
        if kind == std::io::ErrorKind::ConnectionRefused && err.hint.is_none() {
            err.hint = Some(
                "nothing listens at the storage endpoint: check storage.endpoint, and that the store is up"
                    .into(),
            );
        }
    }
    err
}

/// Refuses a key that could lead outside the store's root (`..`, an absolute path): keys
/// are firedrill's own, but some come from manifests and users.
fn check_key(key: &str) -> Result<()> {
    if key.starts_with('/') || key.contains('\\') || key.split('/').any(|p| p == "..") {
        return Err(Error::config(format!(
            "storage key `{}` leads outside the store",
            key.escape_debug()
        ))
        .with_source(StoreFault::OutsideRoot));
    }
    Ok(())
}

impl OpendalStore {
    /// How much a write buffers before it goes out: object stores want big parts (S3's
    /// minimum is 5 MiB), a local file does not.
    fn write_chunk(&self) -> usize {
        if self.root.is_some() {
            1 << 20
        } else {
            CHUNK
        }
    }

    /// A failed write, naming where it was going (the file, for a local store) and, when
    /// the disk is full, what to do about it.
    fn write_error(&self, e: opendal::Error, what: &str, key: &str) -> Error {
        let place = match &self.root {
            Some(root) => root.join(key).display().to_string(),
            None => format!("{key} in {}", self.description),
        };
        map_err(e, &format!("{what} {place}"))
    }
}

/// An upload not yet closed. It is aborted however `put_stream` ends, also when its future
/// is dropped (the run was cancelled, another stage failed first): else a local store
/// keeps the partial file in its temporary directory, a remote one an open multipart
/// upload.
struct Unfinished(Option<opendal::Writer>);

impl Unfinished {
    fn writer(&mut self) -> &mut opendal::Writer {
        self.0
            .as_mut()
            .expect("an unfinished upload has its writer")
    }

    async fn abort(&mut self) {
        if let Some(mut w) = self.0.take() {
            let _ = w.abort().await;
        }
    }

    async fn close(&mut self) -> opendal::Result<()> {
        self.writer().close().await?;
        self.0 = None;
        Ok(())
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(mut w) = self.0.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = w.abort().await;
                });
            }
        }
    }
}

#[async_trait]
impl ArtifactStore for OpendalStore {
    fn describe(&self) -> String {
        self.description.clone()
    }

    async fn put_stream(&self, key: &str, mut chunks: mpsc::Receiver<Upload>) -> Result<u64> {
        check_key(key)?;
        let mut upload = Unfinished(Some(
            self.op
                .writer_with(key)
                .chunk(self.write_chunk())
                .await
                .map_err(|e| self.write_error(e, "write", key))?,
        ));
        let mut written = 0u64;
        loop {
            match chunks.recv().await {
                Some(Upload::Chunk(b)) => {
                    written += b.len() as u64;
                    if let Err(e) = upload.writer().write(b).await {
                        upload.abort().await;
                        return Err(self.write_error(e, "write", key));
                    }
                }
                Some(Upload::Finish) => break,
                Some(Upload::Abort(e)) => {
                    upload.abort().await;
                    return Err(e);
                }
                None => {
                    upload.abort().await;
                    return Err(Error::internal(format!(
                        "the producer of {key} stopped without finishing; upload discarded"
                    )));
                }
            }
        }
        if let Err(e) = upload.close().await {
            upload.abort().await;
            return Err(self.write_error(e, "finish", key));
        }
        Ok(written)
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        check_key(key)?;
        // Through a writer that is aborted on failure: `Operator::write` leaves its
        // temporary file behind when the disk fills (a 0-byte manifest, a 0-byte marker).
        let mut w = Unfinished(Some(
            self.op
                .writer(key)
                .await
                .map_err(|e| self.write_error(e, "write", key))?,
        ));
        if let Err(e) = w.writer().write(data).await {
            w.abort().await;
            return Err(self.write_error(e, "write", key));
        }
        if let Err(e) = w.close().await {
            w.abort().await;
            return Err(self.write_error(e, "finish", key));
        }
        Ok(())
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        check_key(key)?;
        let key_owned = key.to_string();
        let r = self
            .op
            .reader_with(key)
            .chunk(self.write_chunk())
            .await
            .map_err(|e| map_err(e, &format!("read {key}")))?;
        let s = r
            .into_bytes_stream(..)
            .await
            .map_err(|e| map_err(e, &format!("read {key}")))?;
        Ok(
            s.map_err(move |e| Error::infra(format!("read {key_owned}: {e}")))
                .boxed(),
        )
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        check_key(key)?;
        Ok(self
            .op
            .read(key)
            .await
            .map_err(|e| map_err(e, &format!("read {key}")))?
            .to_bytes())
    }

    async fn size(&self, key: &str) -> Result<u64> {
        check_key(key)?;
        Ok(self
            .op
            .stat(key)
            .await
            .map_err(|e| map_err(e, &format!("stat {key}")))?
            .content_length())
    }

    async fn modified(&self, key: &str) -> Result<Option<jiff::Timestamp>> {
        check_key(key)?;
        let meta = self
            .op
            .stat(key)
            .await
            .map_err(|e| map_err(e, &format!("stat {key}")))?;
        Ok(meta
            .last_modified()
            .and_then(|t| jiff::Timestamp::from_millisecond(t.into_inner().as_millisecond()).ok()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let entries = match self.op.list_with(prefix).recursive(true).await {
            Ok(e) => e,
            Err(e) if e.kind() == OdKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(map_err(e, &format!("list {prefix}"))),
        };
        let mut keys: Vec<String> = entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| e.path().to_string())
            .filter(|p| !p.starts_with(TMP_DIR))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.op
            .delete(key)
            .await
            .map_err(|e| map_err(e, &format!("delete {key}")))
    }

    async fn stale_parts(&self, older_than: Duration) -> Result<Vec<(String, u64)>> {
        let Some(root) = &self.root else {
            return Ok(Vec::new());
        };
        let dir = root.join(TMP_DIR);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::infra(format!("cannot read {}: {e}", dir.display()))),
        };
        let now = std::time::SystemTime::now();
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if meta.is_file() && age >= older_than {
                out.push((e.file_name().to_string_lossy().into_owned(), meta.len()));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn remove_part(&self, name: &str) -> Result<()> {
        let Some(root) = &self.root else {
            return Err(Error::internal(format!("this store keeps no part {name}")));
        };
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(Error::internal(format!("not a part file: {name:?}")));
        }
        let path = root.join(TMP_DIR).join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::infra(format!(
                "cannot remove {}: {e}",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_round_trip_and_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = OpendalStore::local(dir.path()).unwrap();
        let (tx, rx) = mpsc::channel(4);
        tx.send(Upload::Chunk(Bytes::from_static(b"hello ")))
            .await
            .unwrap();
        tx.send(Upload::Chunk(Bytes::from_static(b"world")))
            .await
            .unwrap();
        tx.send(Upload::Finish).await.unwrap();
        assert_eq!(store.put_stream("d/r/a", rx).await.unwrap(), 11);
        assert_eq!(
            store.get("d/r/a").await.unwrap(),
            Bytes::from_static(b"hello world")
        );
        assert_eq!(store.size("d/r/a").await.unwrap(), 11);

        // A producer that dies mid-way: the object must not exist.
        let (tx, rx) = mpsc::channel(4);
        tx.send(Upload::Chunk(Bytes::from_static(b"partial")))
            .await
            .unwrap();
        drop(tx);
        assert!(store.put_stream("d/r/b", rx).await.is_err());
        assert_eq!(store.list("d/").await.unwrap(), vec!["d/r/a".to_string()]);
        let e = store.get("d/r/b").await.unwrap_err();
        assert!(!e.retryable);
    }
}
