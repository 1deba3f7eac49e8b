//! The artifact pipeline: plain dump bytes → zstd → age → store, streamed through
//! bounded buffers, counting and hashing as it goes ([`pipeline`] runs the dump, encrypt
//! and upload stages as one unit). Also the hashing reader used when an artifact is
//! fetched back.

pub mod pipeline;

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::engine::{DumpInspector, Inspection};
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::manifest::Digest;
use crate::store::Upload;

/// Marks the error of a stage that stopped because another stage of the pipeline failed
/// or stopped first (the upload it fed went away, the dump it waited for failed): a
/// consequence, never the run's failure.
#[derive(Debug, thiserror::Error)]
#[error("stopped because another stage of the pipeline stopped")]
pub struct Relayed;

fn relayed(message: &str) -> Error {
    Error::internal(message.to_string()).with_source(Relayed)
}

/// Size of the chunks handed to the store; with the channel depth this bounds memory.
pub const CHUNK: usize = 256 << 10;
/// Chunks in flight between the encryptor and the store.
pub const CHANNEL_DEPTH: usize = 16;
/// Bytes of input per multithreaded zstd job.
const ZSTD_JOB: u32 = 1 << 20;

/// Where the pipeline's stages stand, so that a stage's timeout measures its own delay
/// and not its upstream's: an upload starved of data waits for the encryption, an
/// encryption starved of input waits for the dump, and only the stage that holds the
/// others up times out (the dump, the encryption or the upload, by its own clock).
#[derive(Debug, Default)]
pub struct Flow {
    /// The encryption waits for the dump: reading its output, or its verdict.
    pub encrypt_waits_for_dump: std::sync::atomic::AtomicBool,
    /// The encryption waits for the upload to take a chunk.
    pub encrypt_waits_for_upload: std::sync::atomic::AtomicBool,
    pub dump_done: std::sync::atomic::AtomicBool,
    pub encrypt_done: std::sync::atomic::AtomicBool,
}

impl Flow {
    fn waiting<T>(flag: &std::sync::atomic::AtomicBool, f: impl FnOnce() -> T) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        flag.store(true, SeqCst);
        let v = f();
        flag.store(false, SeqCst);
        v
    }

    /// The encryption has nothing to do until the dump gives it input.
    pub fn encrypt_starved(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        !self.dump_done.load(SeqCst) && self.encrypt_waits_for_dump.load(SeqCst)
    }

    /// The upload has nothing to do until the encryption gives it a chunk.
    pub fn upload_starved(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        !self.encrypt_done.load(SeqCst) && !self.encrypt_waits_for_upload.load(SeqCst)
    }
}

/// Counts bytes written through it.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The end of the pipeline: hashes, counts and sends fixed-size chunks to the store.
struct ChannelSink {
    tx: mpsc::Sender<Upload>,
    flow: Arc<Flow>,
    buf: Vec<u8>,
    hasher: Sha256,
    count: u64,
}

impl ChannelSink {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.hasher.update(&chunk);
        self.count += chunk.len() as u64;
        let tx = &self.tx;
        Flow::waiting(&self.flow.encrypt_waits_for_upload, || {
            tx.blocking_send(Upload::Chunk(Bytes::from(chunk)))
        })
        .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

impl Write for ChannelSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = room.min(buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() == CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs on a blocking thread: reads the plain dump from `input`, compresses, encrypts to
/// every recipient and sends the result to `tx`. The upload is finished only when
/// `dump_ok` says the dump succeeded (the tool exited cleanly and the dump is big enough);
/// otherwise it is aborted, so a failed dump never becomes a stored object.
#[allow(clippy::too_many_arguments)]
pub fn encrypt_stream(
    mut input: impl Read,
    recipients: Vec<age::x25519::Recipient>,
    level: i32,
    threads: u32,
    mut inspector: Box<dyn DumpInspector>,
    snapshot: Fingerprint,
    inspected: oneshot::Sender<Result<Inspection>>,
    tx: mpsc::Sender<Upload>,
    dump_ok: oneshot::Receiver<bool>,
    flow: Arc<Flow>,
) -> Result<Digest> {
    let abort_tx = tx.clone();
    let result = (|| -> Result<Digest> {
        let sink = ChannelSink {
            tx,
            flow: flow.clone(),
            buf: Vec::with_capacity(CHUNK),
            hasher: Sha256::new(),
            count: 0,
        };
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| Error::internal(format!("age: {e}")))?;
        let age_writer = encryptor
            .wrap_output(sink)
            .map_err(|e| Error::internal(format!("age: {e}")))?;
        let counted = CountingWriter {
            inner: age_writer,
            count: 0,
        };
        let mut z = zstd::Encoder::new(counted, level)
            .map_err(|e| Error::internal(format!("zstd: {e}")))?;
        let workers = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1)
        } else {
            threads
        };
        if workers > 1 {
            z.multithread(workers)
                .map_err(|e| Error::internal(format!("zstd: {e}")))?;
            // Each worker holds its job's input and output: small jobs keep the memory of
            // a drill bounded (and the same for a 1 GB and a 10 GB dump), at a negligible
            // cost in ratio.
            z.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))
                .map_err(|e| Error::internal(format!("zstd: {e}")))?;
        }
        let mut plain = 0u64;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match Flow::waiting(&flow.encrypt_waits_for_dump, || input.read(&mut buf)) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::infra(format!("reading the dump: {e}"))),
            };
            plain += n as u64;
            inspector.update(&buf[..n]);
            z.write_all(&buf[..n]).map_err(pipe_err)?;
        }
        // The dump stage judges the stream; it answers through `dump_ok` below.
        let _ = inspected.send(inspector.finish(&snapshot));
        let counted = z.finish().map_err(pipe_err)?;
        let compressed = counted.count;
        let mut sink = counted.inner.finish().map_err(pipe_err)?;
        sink.send_buf().map_err(pipe_err)?;

        // Only a dump whose tool succeeded, and which is not suspiciously small, is
        // finished; anything else is aborted and leaves no object.
        if !Flow::waiting(&flow.encrypt_waits_for_dump, || dump_ok.blocking_recv()).unwrap_or(false)
        {
            return Err(relayed("the dump failed; upload discarded"));
        }
        sink.tx
            .blocking_send(Upload::Finish)
            .map_err(|_| relayed("the upload stopped before the artifact was complete"))?;
        Ok(Digest {
            plain_bytes: plain,
            compressed_bytes: compressed,
            encrypted_bytes: sink.count,
            sha256: hex::encode(sink.hasher.finalize()),
        })
    })();
    if let Err(e) = &result {
        // The upload ends because this stage did: a consequence, not its own failure.
        let relay = relayed(&format!("the encryption stopped: {}", e.headline()));
        let _ = abort_tx.blocking_send(Upload::Abort(relay));
    }
    result
}

/// A dump smaller than the drill's minimum is a failure, not a success: a backup job that
/// "succeeded" with a 0-byte dump once deleted the last good backup.
pub fn check_dump_size(plain: u64, min: u64) -> Result<()> {
    if plain < min {
        return Err(Error::backup(format!(
            "the dump is {plain} bytes, under the minimum of {min}: it cannot hold the database"
        ))
        .with_hint("check what the dump user can see; lower source.min_dump_bytes only if the database really is this small"));
    }
    Ok(())
}

/// Counts the bytes read through it and tells when the end was reached.
pub struct CountingReader<R> {
    inner: R,
    count: Arc<std::sync::atomic::AtomicU64>,
    eof: Option<oneshot::Sender<()>>,
}

impl<R> CountingReader<R> {
    pub fn new(
        inner: R,
    ) -> (
        Self,
        Arc<std::sync::atomic::AtomicU64>,
        oneshot::Receiver<()>,
    ) {
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (tx, rx) = oneshot::channel();
        (
            CountingReader {
                inner,
                count: count.clone(),
                eof: Some(tx),
            },
            count,
            rx,
        )
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if !buf.is_empty() {
                if let Some(tx) = self.eof.take() {
                    let _ = tx.send(());
                }
            }
        } else {
            self.count
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}

fn pipe_err(e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        relayed("the upload stopped")
    } else {
        Error::internal(format!("compress/encrypt: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::age_keys::{generate_identity, load_recipients};
    use std::str::FromStr;

    #[tokio::test]
    async fn encrypts_to_something_age_and_zstd_read_back() {
        let (id_text, recipient) = generate_identity();
        let identity = age::x25519::Identity::from_str(id_text.lines().nth(2).unwrap()).unwrap();
        let plain: Vec<u8> = (0..2_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
        let (ok_tx, ok_rx) = oneshot::channel();
        ok_tx.send(true).unwrap();
        let recips = load_recipients(&[recipient], None).unwrap();
        let input = plain.clone();
        let h = tokio::task::spawn_blocking(move || {
            let (itx, _irx) = oneshot::channel();
            encrypt_stream(
                &input[..],
                recips,
                3,
                2,
                Box::new(crate::engine::NoInspection),
                Fingerprint::default(),
                itx,
                tx,
                ok_rx,
                Arc::default(),
            )
        });
        let mut stored = Vec::new();
        let mut finished = false;
        while let Some(u) = rx.recv().await {
            match u {
                Upload::Chunk(b) => {
                    assert!(b.len() <= CHUNK);
                    stored.extend_from_slice(&b)
                }
                Upload::Finish => finished = true,
                Upload::Abort(e) => panic!("aborted: {e}"),
            }
        }
        let out = h.await.unwrap().unwrap();
        assert!(finished);
        assert_eq!(out.plain_bytes, plain.len() as u64);
        assert_eq!(out.encrypted_bytes, stored.len() as u64);
        assert_eq!(out.sha256, hex::encode(Sha256::digest(&stored)));
        let dec = age::Decryptor::new(&stored[..]).unwrap();
        let mut r = dec
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .unwrap();
        let mut compressed = Vec::new();
        r.read_to_end(&mut compressed).unwrap();
        assert_eq!(compressed.len() as u64, out.compressed_bytes);
        assert_eq!(zstd::decode_all(&compressed[..]).unwrap(), plain);
    }

    #[tokio::test]
    async fn a_failed_dump_aborts_the_upload() {
        let (_, recipient) = generate_identity();
        let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
        let (ok_tx, ok_rx) = oneshot::channel();
        ok_tx.send(false).unwrap();
        let recips = load_recipients(&[recipient], None).unwrap();
        let h = tokio::task::spawn_blocking(move || {
            let (itx, _irx) = oneshot::channel();
            encrypt_stream(
                &b"some dump bytes"[..],
                recips,
                3,
                1,
                Box::new(crate::engine::NoInspection),
                Fingerprint::default(),
                itx,
                tx,
                ok_rx,
                Arc::default(),
            )
        });
        let mut last = None;
        while let Some(u) = rx.recv().await {
            last = Some(u);
        }
        assert!(h.await.unwrap().is_err());
        assert!(matches!(last, Some(Upload::Abort(_))));
    }

    #[test]
    fn a_tiny_dump_is_a_failure() {
        let e = check_dump_size(0, 1024).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Backup);
        assert!(e.message.contains("under the minimum"), "{e}");
        assert!(check_dump_size(1024, 1024).is_ok());
    }
}
