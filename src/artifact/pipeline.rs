//! Taking a backup: dump → compress + encrypt → upload, run at once as one stream, each a
//! stage with its own timeout. When one fails, the others stop, and nothing
//! complete-looking is stored: the artifact is finished only when the dump succeeded, and
//! its manifest is written only after the stored object's size is checked.
//!
//! The outcome names exactly one failure: the stage that failed first. A stage that ended
//! because of it (the upload losing its producer, the encryption losing its dump) is
//! recorded as stopped, not as failed; a stage that an operator's cancel or a shutdown
//! ended says so.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{check_dump_size, encrypt_stream, CountingReader, Flow, Relayed, CHANNEL_DEPTH};
use crate::cancel::Stop;
use crate::engine::{DumpMeta, DumpSource, Inspection};
use crate::error::{Error, Result};
use crate::fingerprint::{ChecksumPlan, Fingerprint};
use crate::manifest::{Digest, Manifest};
use crate::stage::{bounded, stopped, ticking, timeout_error, Progress, StageRun};
use crate::status::Stage;
use crate::store::{ArtifactStore, RunDir, Upload};

/// What a backup needs.
pub struct Backup<'a> {
    pub drill: &'a str,
    /// Where the artifact and its manifest go.
    pub dir: RunDir,
    pub started_at: jiff::Timestamp,
    pub source: &'a dyn DumpSource,
    pub store: Arc<dyn ArtifactStore>,
    pub recipients: Vec<age::x25519::Recipient>,
    /// Which tables the fingerprint checksums.
    pub checksums: ChecksumPlan,
    /// zstd level and threads (0: one per core).
    pub level: i32,
    pub threads: u32,
    /// A dump smaller than this fails.
    pub min_dump_bytes: u64,
    pub dump_timeout: Duration,
    pub encrypt_timeout: Duration,
    pub upload_timeout: Duration,
}

/// How a backup went: its three stages, and the manifest or the one failure.
pub struct BackupOutcome {
    /// What the source and its dump tool said of themselves, once the dump started.
    pub meta: Option<DumpMeta>,
    /// The fingerprint of what was dumped, once the dump started (completed from the
    /// stream when the engine counts it there).
    pub fingerprint: Option<Fingerprint>,
    /// Dump, encrypt and upload, in that order.
    pub stages: Vec<StageRun>,
    /// The stored artifact's manifest, or the stage that failed first and why.
    pub result: std::result::Result<Manifest, (Stage, Error)>,
}

/// The first stage to fail claims the run's failure; the others stop.
struct FirstFailure {
    stage: Mutex<Option<Stage>>,
    siblings: CancellationToken,
}

impl FirstFailure {
    /// Records that `stage` ended on `e`; true when this is the run's failure. A stop (an
    /// operator, a shutdown) and a consequence of another stage's end claim nothing.
    fn claim(&self, stage: Stage, e: &Error) -> bool {
        if e.kind.is_deliberate_stop() || e.find::<Relayed>().is_some() {
            self.siblings.cancel();
            return false;
        }
        let mut first = self.stage.lock().expect("first-failure lock");
        let mine = first.is_none();
        if mine {
            *first = Some(stage);
        }
        self.siblings.cancel();
        mine
    }

    fn stage(&self) -> Option<Stage> {
        *self.stage.lock().expect("first-failure lock")
    }
}

/// How a pipeline stage ended, before the first failure is known.
enum Ended<T> {
    Done(T),
    /// Its own error (claimed or not).
    Err(Error),
    /// Stopped because a sibling failed, before it ended by itself.
    Sibling,
}

/// How long a failed dump waits for the fingerprint read beside it to say whether it
/// failed first.
const BESIDE_GRACE: Duration = Duration::from_secs(2);

/// How often a starved stage whose deadline passed looks again at its upstream.
const STARVED_RECHECK: Duration = Duration::from_millis(200);

/// Runs `fut` as stage `stage` of the pipeline: the run's stop, the siblings' failure,
/// and its timeout, which counts only while the stage is not `starved` (waiting for an
/// upstream stage that is still running: that stage's own clock decides).
async fn pipeline_stage<T>(
    stage: Stage,
    limit: Duration,
    stop: &Stop,
    first: &FirstFailure,
    starved: impl Fn() -> bool,
    fut: impl std::future::Future<Output = Result<T>>,
) -> (Ended<T>, Duration) {
    let t0 = Instant::now();
    let mut deadline = tokio::time::Instant::now() + limit;
    tokio::pin!(fut);
    let ended = loop {
        let r = tokio::select! {
            biased;
            _ = stop.stopped() => Err(stopped(stop)),
            r = &mut fut => r,
            _ = first.siblings.cancelled() => break Ended::Sibling,
            _ = tokio::time::sleep_until(deadline) => {
                if starved() {
                    deadline = tokio::time::Instant::now() + STARVED_RECHECK;
                    continue;
                }
                Err(timeout_error(stage, limit))
            }
        };
        break match r {
            Ok(v) => Ended::Done(v),
            Err(e) => {
                first.claim(stage, &e);
                Ended::Err(e)
            }
        };
    };
    (ended, t0.elapsed())
}

/// Takes the backup: starts the dump (fingerprint and all), streams it through zstd and
/// age into the store, checks what was stored and writes the manifest.
pub async fn take(b: Backup<'_>, stop: &Stop, progress: &dyn Progress) -> BackupOutcome {
    progress.stage_started(Stage::Dump);
    let dump_t0 = Instant::now();
    let started = bounded(
        Stage::Dump,
        b.dump_timeout,
        stop,
        b.source.start(&b.checksums),
    )
    .await;
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            let e = e.context("stage dump");
            return BackupOutcome {
                meta: None,
                fingerprint: None,
                stages: vec![
                    StageRun::ended(Stage::Dump, dump_t0.elapsed(), e.clone()),
                    StageRun::skipped(Stage::Encrypt, None),
                    StageRun::skipped(Stage::Upload, None),
                ],
                result: Err((Stage::Dump, e)),
            };
        }
    };
    // The dump stage's time includes connecting and taking the fingerprint.
    let start_d = dump_t0.elapsed();
    let meta = started.meta.clone();
    let snapshot = started.fingerprint.clone();
    let first = FirstFailure {
        stage: Mutex::new(None),
        siblings: CancellationToken::new(),
    };

    let (reader, plain_count, eof) = CountingReader::new(started.output);
    let (tx, rx) = mpsc::channel::<Upload>(CHANNEL_DEPTH);
    let (ok_tx, ok_rx) = oneshot::channel::<bool>();
    let (inspected_tx, inspected_rx) = oneshot::channel::<Result<Inspection>>();
    let (fp_tx, fp_rx) = oneshot::channel::<(Fingerprint, Vec<String>)>();
    let (digest_tx, digest_rx) = oneshot::channel::<Digest>();
    let flow = Arc::new(Flow::default());
    progress.stage_started(Stage::Encrypt);
    progress.stage_started(Stage::Upload);
    let encrypt_task = {
        let (recipients, level, threads) = (b.recipients.clone(), b.level, b.threads);
        let (inspector, snapshot, flow) = (started.inspector, snapshot.clone(), flow.clone());
        tokio::task::spawn_blocking(move || {
            encrypt_stream(
                reader,
                recipients,
                level,
                threads,
                inspector,
                snapshot,
                inspected_tx,
                tx,
                ok_rx,
                flow,
            )
        })
    };

    let completion = started.completion;
    let mut beside = started.beside;
    let never = || false;
    let dump_fut = pipeline_stage(Stage::Dump, b.dump_timeout, stop, &first, never, async {
        let judged = async {
            if let Err(e) = completion.await {
                // A fingerprint that failed first may have ended the snapshot the tool
                // was importing: then its error is the cause, and the one to report.
                return Err(match beside.take() {
                    Some(fp) => match tokio::time::timeout(BESIDE_GRACE, fp).await {
                        Ok(Err(fp_err)) => fp_err,
                        _ => e,
                    },
                    None => e,
                });
            }
            // The tool has exited; wait for its last bytes to be read before judging.
            let _ = eof.await;
            let inspection = inspected_rx.await.map_err(|_| {
                Error::internal("the encryption stopped reading the dump").with_source(Relayed)
            })??;
            // What the fingerprint says of the source (no tables, say) comes before
            // what the dump's size says.
            let beside = match beside.take() {
                Some(fp) => Some(fp.await?),
                None => None,
            };
            let plain = plain_count.load(Ordering::Relaxed);
            check_dump_size(plain, b.min_dump_bytes)?;
            Ok((plain, inspection, beside))
        }
        .await;
        flow.dump_done.store(true, Ordering::SeqCst);
        // The upload is finished only for a dump judged good, after this stage has
        // claimed its failure (so that the encryption's "the dump failed" never does).
        match judged {
            Ok((plain, inspection, beside)) => {
                // The fingerprint read beside the dump, else the stream's, else the
                // snapshot's; the reading's own notes (its time) are for the report.
                let (beside_fp, report_notes) =
                    beside.map(|i| (i.fingerprint, i.notes)).unwrap_or_default();
                let fp = beside_fp
                    .or(inspection.fingerprint)
                    .unwrap_or_else(|| snapshot.clone());
                let _ = fp_tx.send((fp.clone(), inspection.notes.clone()));
                let _ = ok_tx.send(true);
                let mut notes = inspection.notes;
                notes.extend(report_notes);
                Ok((plain, fp, notes))
            }
            Err(e) => {
                first.claim(Stage::Dump, &e);
                let _ = ok_tx.send(false);
                Err(e)
            }
        }
    });

    let encrypt_starved = || flow.encrypt_starved();
    let encrypt_fut = pipeline_stage(
        Stage::Encrypt,
        b.encrypt_timeout,
        stop,
        &first,
        encrypt_starved,
        async {
            let digest = encrypt_task
                .await
                .map_err(|e| Error::internal(format!("the encryption thread failed: {e}")));
            flow.encrypt_done.store(true, Ordering::SeqCst);
            let digest = digest??;
            let _ = digest_tx.send(digest.clone());
            Ok(digest)
        },
    );

    let store = b.store.clone();
    let recipients_text: Vec<String> = b.recipients.iter().map(|r| r.to_string()).collect();
    let upload_starved = || flow.upload_starved();
    let upload_fut = pipeline_stage(
        Stage::Upload,
        b.upload_timeout,
        stop,
        &first,
        upload_starved,
        async {
            let artifact_key = b.dir.artifact();
            let written = store.put_stream(&artifact_key, rx).await?;
            // From here the artifact is stored: whatever fails before its manifest is
            // written removes it again (a stored artifact without a manifest is no
            // artifact, and fills the store run after run).
            let finish = async {
                let digest = digest_rx.await.map_err(|_| {
                    Error::internal("the encryption ended without a digest").with_source(Relayed)
                })?;
                let (fingerprint, notes) = fp_rx.await.map_err(|_| {
                    Error::internal("the dump ended without a fingerprint").with_source(Relayed)
                })?;
                // Trust nothing unchecked: the stored object must be exactly what was produced
                // before the manifest makes it look complete.
                let stored = store.size(&artifact_key).await?;
                if stored != digest.encrypted_bytes || written != digest.encrypted_bytes {
                    return Err(Error::infra(format!(
                        "storage holds {stored} bytes for {artifact_key}, {} were produced",
                        digest.encrypted_bytes
                    )));
                }
                let manifest = Manifest::for_backup(
                    b.drill,
                    &b.dir,
                    b.started_at,
                    &meta,
                    &digest,
                    recipients_text,
                    fingerprint,
                    notes,
                );
                store
                    .put(&b.dir.manifest(), Bytes::from(manifest.to_json()))
                    .await?;
                Ok((written, manifest))
            };
            match finish.await {
                Ok(done) => Ok(done),
                Err(e) => Err(discard_upload(store.as_ref(), &b.dir, e).await),
            }
        },
    );

    let counted: Arc<AtomicU64> = plain_count.clone();
    let ((dump, dump_d), (enc, enc_d), (up, up_d)) = ticking(
        async { tokio::join!(dump_fut, encrypt_fut, upload_fut) },
        || progress.bytes(Stage::Dump, counted.load(Ordering::Relaxed), None),
    )
    .await;
    let dump_d = start_d + dump_d;

    let failed = first.stage();
    // A stage that ended on its own error, or a stop's; otherwise stopped by the first.
    let ended = |stage: Stage, e: Error, d: Duration| match failed {
        Some(f) if f != stage && !e.kind.is_deliberate_stop() => StageRun::stopped(stage, d, f),
        _ => StageRun::ended(stage, d, e.context(format!("stage {stage}"))),
    };
    let by = failed.unwrap_or(Stage::Dump);

    let mut dump_notes = vec![format!(
        "{} {} → {} {}",
        meta.engine.as_str(),
        meta.server_version,
        meta.tool,
        meta.tool_version
    )];
    let (dump_run, fingerprint) = match dump {
        Ended::Done((plain, fp, notes)) => {
            dump_notes.push(format!(
                "{} tables, {} rows",
                fp.tables.len(),
                fp.total_rows()
            ));
            dump_notes.extend(notes);
            (
                StageRun::passed(Stage::Dump, dump_d, Some(plain)).with_notes(dump_notes),
                fp,
            )
        }
        Ended::Err(e) => (
            ended(Stage::Dump, e, dump_d).with_notes(dump_notes),
            snapshot.clone(),
        ),
        Ended::Sibling => (
            StageRun::stopped(Stage::Dump, dump_d, by).with_notes(dump_notes),
            snapshot.clone(),
        ),
    };
    let enc_run = match &enc {
        Ended::Done(d) => StageRun::passed(Stage::Encrypt, enc_d, Some(d.encrypted_bytes)),
        Ended::Err(e) => ended(Stage::Encrypt, e.clone(), enc_d),
        Ended::Sibling => StageRun::stopped(Stage::Encrypt, enc_d, by),
    };
    let (up_run, manifest) = match up {
        Ended::Done((n, m)) => (StageRun::passed(Stage::Upload, up_d, Some(n)), Some(m)),
        Ended::Err(e) => (ended(Stage::Upload, e, up_d), None),
        Ended::Sibling => (StageRun::stopped(Stage::Upload, up_d, by), None),
    };
    let stages = vec![dump_run, enc_run, up_run];
    let result = match (manifest, failed) {
        (Some(m), None) => Ok(m),
        _ => Err(run_failure(&stages)),
    };
    BackupOutcome {
        meta: Some(meta),
        fingerprint: Some(fingerprint),
        stages,
        result,
    }
}

/// The run's failure: the stage that failed first (the only one holding an error besides
/// stops), else the first stage a stop ended.
fn run_failure(stages: &[StageRun]) -> (Stage, Error) {
    let with_error = |deliberate: bool| {
        stages.iter().find_map(|s| {
            s.error
                .as_ref()
                .filter(|e| e.kind.is_deliberate_stop() == deliberate)
                .map(|e| (s.stage, e.clone()))
        })
    };
    with_error(false)
        .or_else(|| with_error(true))
        .unwrap_or_else(|| {
            (
                Stage::Upload,
                Error::internal("the backup ended without a manifest and without an error"),
            )
        })
}

/// Removes what a failed upload stored (its artifact, a manifest half written), and says
/// truthfully in `e`'s hint whether anything was left.
async fn discard_upload(
    store: &dyn crate::store::ArtifactStore,
    dir: &crate::store::RunDir,
    e: Error,
) -> Error {
    let mut left = Vec::new();
    for key in [dir.manifest(), dir.artifact()] {
        match store.delete(&key).await {
            Ok(()) => {}
            Err(d)
                if crate::store::StoreFault::of(&d) == Some(crate::store::StoreFault::NotFound) => {
            }
            Err(d) => left.push(format!("{key} ({})", d.headline())),
        }
    }
    let said = e.hint.clone().map(|h| format!("{h}; ")).unwrap_or_default();
    if left.is_empty() {
        e.with_hint(format!("{said}nothing of this upload was kept"))
    } else {
        e.with_hint(format!(
            "{said}left in storage: {}; the drill's next run, or `firedrill prune`, removes it",
            left.join(", ")
        ))
    }
}
