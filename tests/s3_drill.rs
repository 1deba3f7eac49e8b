//! Object storage for real: a Garage S3 server started by `tests/run` (and a private one
//! that this file stops on purpose).

mod support;

use bytes::Bytes;
use firedrill::store::{build_store, ArtifactStore, Upload};
use firedrill::{load_drill, run_drill, ErrorKind, RunOptions, Silent, Stage, Verdict};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use support::*;
use tokio::sync::mpsc;

const KEY: &str = "FIREDRILL_TEST_S3_KEY_ID";
const SECRET: &str = "FIREDRILL_TEST_S3_SECRET";

fn data(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn put(store: &dyn ArtifactStore, key: &str, body: &[u8]) -> firedrill::Result<u64> {
    let (tx, rx) = mpsc::channel(4);
    let chunks: Vec<Bytes> = body.chunks(1 << 20).map(Bytes::copy_from_slice).collect();
    let feeder = tokio::spawn(async move {
        for c in chunks {
            if tx.send(Upload::Chunk(c)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Upload::Finish).await;
    });
    let r = store.put_stream(key, rx).await;
    feeder.await.unwrap();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_download_and_hash() {
    let s3 = s3_from_env_file(None);
    let store = build_store(
        &s3.spec("t-multipart", KEY, SECRET),
        std::path::Path::new("."),
    )
    .unwrap();
    // 20 MiB: more than two 8 MiB parts.
    let body = data(20 << 20);
    let key = format!("t-multipart/{}/artifact", firedrill::drill::new_run_id());
    assert_eq!(
        put(store.as_ref(), &key, &body).await.unwrap(),
        body.len() as u64
    );
    assert_eq!(store.size(&key).await.unwrap(), body.len() as u64);
    let mut got = Sha256::new();
    let mut n = 0;
    let mut s = store.get_stream(&key).await.unwrap();
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        n += c.len();
        got.update(&c);
    }
    assert_eq!(n, body.len());
    assert_eq!(
        hex::encode(got.finalize()),
        hex::encode(Sha256::digest(&body))
    );
    assert!(store.list("t-multipart/").await.unwrap().contains(&key));
    store.delete(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_key_is_a_clear_error_that_retrying_cannot_fix() {
    let s3 = s3_from_env_file(None);
    // SAFETY of the test: a variable only this test reads.
    std::env::set_var("FIREDRILL_TEST_S3_WRONG_SECRET", "0".repeat(64));
    let store = build_store(
        &s3.spec("t-wrong", KEY, "FIREDRILL_TEST_S3_WRONG_SECRET"),
        std::path::Path::new("."),
    )
    .unwrap();
    let t = std::time::Instant::now();
    let e = put(store.as_ref(), "t-wrong/x", b"hello")
        .await
        .unwrap_err();
    assert!(!e.retryable, "{e}");
    assert_eq!(e.kind, ErrorKind::Infrastructure);
    assert!(e.message.contains("access denied"), "{e}");
    assert!(
        e.hint.as_deref().unwrap_or("").contains("credentials"),
        "{e:?}"
    );
    // Not retried: auth errors answer at once.
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_end_to_end_from_s3() {
    create_db("fd_s3", SHOP).await;
    let s3 = s3_from_env_file(None);
    let fx = Fixture::new();
    let path = fx.drill("s3drill", "fd_s3", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let local = format!(
        "[storage]\ntype = \"local\"\npath = \"{}\"\n",
        fx.store().display()
    );
    let text = text.replace(&local, &s3.storage_toml("it-s3", KEY, SECRET));
    assert!(text.contains("type = \"s3\""));
    std::fs::write(&path, text).unwrap();
    let drill = load_drill(&path).unwrap();
    let r = run_drill(
        &drill,
        &RunOptions::default(),
        &Silent,
        &firedrill::Stop::new(),
    )
    .await;
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&r)
    );
    assert!(r
        .artifact
        .as_ref()
        .unwrap()
        .location
        .contains("s3://firedrill"));
    let store = build_store(&drill.storage, &drill.base_dir).unwrap();
    let keys = store
        .list(&format!("it-s3/s3drill/{}/", r.run_id))
        .await
        .unwrap();
    assert!(
        keys.iter().any(|k| k.ends_with("manifest.json")),
        "{keys:?}"
    );
    // The stored artifact drills again, fetched from S3.
    let again = run_drill(
        &drill,
        &RunOptions {
            artifact: Some(r.run_id.clone()),
            ..Default::default()
        },
        &Silent,
        &firedrill::Stop::new(),
    )
    .await;
    assert_eq!(
        again.verdict,
        Verdict::Passed,
        "{}",
        firedrill::report::render_human(&again)
    );
    assert_eq!(
        stage(&again, Stage::Dump).outcome,
        firedrill::report::Outcome::Skipped
    );
    assert!(leftovers(&r.run_id).await.is_empty());
}

/// A port with the three after it free too (Garage listens on port, +1 and +3): a fixed
/// port could meet a server an earlier, interrupted run left behind.
fn free_ports_base() -> u16 {
    loop {
        let base = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base < 60000
            && (1..=3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
}

/// The server dies mid-upload: a retryable infrastructure error, and no object that looks
/// complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stopped_mid_upload_gives_a_retryable_error_and_no_complete_object() {
    let dir = tempfile::tempdir().unwrap();
    let gdir = dir.path().join("garage");
    let setup = std::process::Command::new("bash")
        .arg("-c")
        .arg("set -e; . deploy/host-setup.sh; fd_start_garage \"$1\" \"$2\"")
        .arg("bash")
        .arg(&gdir)
        .arg(free_ports_base().to_string())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(setup.success());
    let s3 = s3_from_env_file(Some(&gdir.join("env")));
    std::env::set_var("FIREDRILL_TEST_S3_PRIVATE_KEY", &s3.key_id);
    std::env::set_var("FIREDRILL_TEST_S3_PRIVATE_SECRET", &s3.secret);
    let store = build_store(
        &s3.spec(
            "t-stop",
            "FIREDRILL_TEST_S3_PRIVATE_KEY",
            "FIREDRILL_TEST_S3_PRIVATE_SECRET",
        ),
        std::path::Path::new("."),
    )
    .unwrap();
    let key = "t-stop/run/artifact";
    let (tx, rx) = mpsc::channel(2);
    let pid: i32 = std::fs::read_to_string(gdir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let feeder = tokio::spawn(async move {
        let chunk = Bytes::from(data(1 << 20));
        for i in 0..40 {
            if i == 12 {
                // 12 MiB in: at least one part is up. Kill the server.
                std::process::Command::new("kill")
                    .arg("-9")
                    .arg(pid.to_string())
                    .status()
                    .unwrap();
            }
            if tx.send(Upload::Chunk(chunk.clone())).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Upload::Finish).await;
    });
    let e = store.put_stream(key, rx).await.unwrap_err();
    feeder.await.unwrap();
    assert!(e.retryable, "{e}");
    assert_eq!(e.kind, ErrorKind::Infrastructure, "{e}");

    // Restart the server on the same data: the object does not exist.
    let restart = std::process::Command::new("bash")
        .arg("-c")
        .arg("set -e; g=\"$FIREDRILL_TOOLS\"; g=${g:-/opt/firedrill-tools}; (setsid \"$g/bin/garage\" -c \"$1/garage.toml\" server >\"$1/server2.log\" 2>&1 & echo $! > \"$1/pid\"); sleep 2")
        .arg("bash")
        .arg(&gdir)
        .status()
        .unwrap();
    assert!(restart.success());
    let mut listed = None;
    for _ in 0..20 {
        if let Ok(l) = store.list("t-stop/").await {
            listed = Some(l);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(listed.expect("garage came back"), Vec::<String>::new());
    let pid = std::fs::read_to_string(gdir.join("pid")).unwrap();
    let _ = std::process::Command::new("kill").arg(pid.trim()).status();
}
