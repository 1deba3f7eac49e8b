//! Artifacts made by an attacker, not by a backup: storage is not trusted (anyone who can
//! write to the bucket can put files there), and neither are files another tool drops for
//! a verify-only drill. Against the real Docker engine and the real PostgreSQL source
//! (`tests/run` starts it), each test proves a defence holds:
//! - a manifest cannot send a drill (or `prune`) to another object of the store;
//! - a plain SQL dump cannot run psql meta-commands (`\!` runs a shell command) in the
//!   sandbox;
//! - a decompression bomb is stopped at a bound, and its sandbox goes.
//!
//! The first tests check the sandbox-side pieces (the plain SQL screen, the stream bound)
//! with the same perl and coreutils on the host, without Docker.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use firedrill::report::Outcome;
use firedrill::store::{ArtifactStore, ByteStream, Upload};
use firedrill::{load_drill, run_drill, RunOptions, RunReport, Silent, Stage, Verdict};
use support::*;
use tokio::sync::mpsc;

async fn run(path: &std::path::Path, opts: RunOptions) -> RunReport {
    let drill = load_drill(path).unwrap_or_else(|p| panic!("{p}"));
    run_drill(&drill, &opts, &Silent, &firedrill::Stop::new()).await
}

fn human(r: &RunReport) -> String {
    firedrill::report::render_human(r)
}

fn sh(script: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("bash")
        .args(args)
        .output()
        .unwrap();
    out
}

/// Runs the plain SQL screen on `input` as the sandbox does; (exit code, stdout, stderr).
fn screen(input: &[u8], key: &str) -> (i32, Vec<u8>, String) {
    let mut child = Command::new("perl")
        .arg("-e")
        .arg(firedrill::engine::PLAIN_SQL_SCREEN)
        .env("FIREDRILL_RESTRICT_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A plain SQL dump of `db` by the host's pg_dump, with extra pg_dump arguments.
fn plain_dump(db: &str, extra: &[&str]) -> String {
    let p = pg();
    let out = Command::new("pg_dump")
        .args(["-Fp", "-h", "127.0.0.1", "-U", "postgres"])
        .arg("-p")
        .arg(p.port.to_string())
        .args(extra)
        .arg(db)
        .env("PGPASSWORD", &p.password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_sql_screen_passes_pg_dump_output_and_refuses_meta_commands() {
    create_db("fd_hostile_screen", SHOP).await;
    // pg_dump's own plain output, with CREATE DATABASE and \connect, and this pg_dump's
    // \restrict/\unrestrict (15.14 and later): it passes, line for line, with the file's
    // own restriction blanked and \connect wrapped in firedrill's.
    let dump = plain_dump("fd_hostile_screen", &["-C"]);
    assert!(dump.contains("\n\\connect "), "pg_dump -C writes \\connect");
    let (code, out, err) = screen(dump.as_bytes(), "K3Y");
    assert_eq!(code, 0, "{err}");
    let out = String::from_utf8(out).unwrap();
    let (ins, outs): (Vec<&str>, Vec<&str>) = (dump.lines().collect(), out.lines().collect());
    assert_eq!(ins.len(), outs.len(), "line numbers are kept");
    for (i, o) in ins.iter().zip(&outs) {
        if i.starts_with("\\restrict ") || i.starts_with("\\unrestrict ") {
            assert_eq!(*o, "");
        } else if let Some(db) = i.strip_prefix("\\connect") {
            assert_eq!(*o, format!("\\unrestrict K3Y \\connect{db} \\restrict K3Y"));
        } else {
            assert_eq!(i, o);
        }
    }
    // COPY data may start with a backslash (\N is NULL); it is data, not a command.
    let copy = "SET x = 1;\nCOPY public.t (a, b) FROM stdin;\n\\N\t1\n\\\\!\t2\n\\.\nSELECT 1;\n";
    let (code, out, err) = screen(copy.as_bytes(), "K");
    assert_eq!((code, out.as_slice()), (0, copy.as_bytes()), "{err}");

    // Anything else that starts a line with a backslash is refused, by line, before psql
    // would see it; the key-less form (a psql without \restrict) refuses the same.
    for key in ["K", ""] {
        for (bad, line) in [
            ("SELECT 1;\n\\! touch /tmp/pwned\nSELECT 2;\n", 2),
            ("SELECT 1;\n  \\setenv PAGER 'sh -c id'\n", 2),
            ("\\o | sh\n", 1),
            ("\\connect db \\! id\n", 1),
            ("\\restrict ab cd\n", 1),
            (
                "COPY t FROM stdin;\n1\n\\.\n\\copy t from program 'id'\n",
                4,
            ),
        ] {
            let (code, out, err) = screen(bad.as_bytes(), key);
            assert_eq!(code, 97, "{bad:?}: {err}");
            assert!(
                err.contains(&format!(
                    "firedrill: refused psql meta-command at line {line}: "
                )),
                "{bad:?}: {err}"
            );
            let refused = bad.lines().nth(line - 1).unwrap().trim_end();
            assert!(!String::from_utf8_lossy(&out).contains(refused), "{bad:?}");
        }
    }
}

#[test]
fn the_stream_bound_passes_exactly_its_limit_and_stops_past_it() {
    let bound = |limit: &str, feed: &str| {
        sh(
            &format!(
                "set -euo pipefail\n{}\n{feed} | firedrill_bound {limit} 'the test bound' | wc -c",
                firedrill::engine::BOUND_FN
            ),
            &[],
        )
    };
    let out = bound("10", "printf 0123456789");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10");
    let out = bound("9", "printf 0123456789");
    assert_eq!(out.status.code(), Some(97));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "9");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("firedrill: the decompressed dump exceeds 9 bytes (the test bound)"));
    // An endless stream stops at once past the bound: nothing waits for its end.
    let t0 = Instant::now();
    let out = bound("1048576", "cat /dev/zero");
    assert_eq!(out.status.code(), Some(97));
    assert!(t0.elapsed() < Duration::from_secs(10));
    let e =
        firedrill::engine::Engine::Postgres.restore_error(&String::from_utf8_lossy(&out.stderr));
    assert!(e.message.contains("plain_bytes"), "{e}");
}

// ------------------------------------------------------------------ manifests

/// A store that records what is asked of it.
struct Recording {
    inner: Arc<dyn ArtifactStore>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    fn note(&self, what: &str, key: &str) {
        self.calls.lock().unwrap().push(format!("{what} {key}"));
    }
}

#[async_trait]
impl ArtifactStore for Recording {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put_stream(
        &self,
        key: &str,
        chunks: mpsc::Receiver<Upload>,
    ) -> firedrill::Result<u64> {
        self.note("put_stream", key);
        self.inner.put_stream(key, chunks).await
    }
    async fn put(&self, key: &str, data: Bytes) -> firedrill::Result<()> {
        self.note("put", key);
        self.inner.put(key, data).await
    }
    async fn get_stream(&self, key: &str) -> firedrill::Result<ByteStream> {
        self.note("get_stream", key);
        self.inner.get_stream(key).await
    }
    async fn get(&self, key: &str) -> firedrill::Result<Bytes> {
        self.note("get", key);
        self.inner.get(key).await
    }
    async fn size(&self, key: &str) -> firedrill::Result<u64> {
        self.note("size", key);
        self.inner.size(key).await
    }
    async fn modified(&self, key: &str) -> firedrill::Result<Option<jiff::Timestamp>> {
        self.note("modified", key);
        self.inner.modified(key).await
    }
    async fn list(&self, prefix: &str) -> firedrill::Result<Vec<String>> {
        self.note("list", prefix);
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> firedrill::Result<()> {
        self.note("delete", key);
        self.inner.delete(key).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_pointing_outside_its_run_is_refused_before_anything_is_fetched() {
    create_db("fd_hostile_key", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("keyed", "fd_hostile_key", "");
    let first = run(&path, RunOptions::default()).await;
    assert_eq!(first.verdict, Verdict::Passed, "{}", human(&first));

    // Another drill's artifact, really in the store, whole and with a matching hash in the
    // doctored manifest: only the placement check stands between it and a restore.
    let other_run = "20260101T000000Z-0fa7e1";
    let other_key = format!("other/{other_run}/artifact.dump.zst.age");
    let other = fx.store().join(&other_key);
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::copy(fx.artifact_path("keyed", &first.run_id), &other).unwrap();

    let manifest_path = fx.manifest_path("keyed", &first.run_id);
    let manifest_key = format!("keyed/{}/manifest.json", first.run_id);
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let drill = load_drill(&path).unwrap();
    for (bad, why) in [
        ("../other/x", "outside the store"),
        ("/etc/passwd", "outside the store"),
        (other_key.as_str(), "outside its own run directory"),
    ] {
        let mut m = original.clone();
        m["artifact_key"] = bad.into();
        std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();

        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let runner = bare_runner(LiveWith(move |parts: &mut firedrill::drill::Parts| {
            parts.store = Arc::new(Recording {
                inner: parts.store.clone(),
                calls: seen.clone(),
            });
        }));
        let r = runner
            .run(
                &drill,
                &RunOptions {
                    artifact: Some(first.run_id.clone()),
                    ..Default::default()
                },
                &Silent,
                &firedrill::Stop::new(),
            )
            .await
            .report;
        eprintln!("{}", human(&r));
        assert_eq!(r.verdict, Verdict::Failed, "{bad}: {}", human(&r));
        assert_eq!(r.exit_code, 1);
        let e = r.error.as_ref().unwrap();
        assert!(
            e.message.contains(why) && e.message.contains(bad) && e.message.contains("refusing it"),
            "{bad}: {e:?}"
        );
        assert!(
            e.hint
                .as_deref()
                .unwrap_or("")
                .contains("cannot be trusted"),
            "{e:?}"
        );
        for s in [Stage::Provision, Stage::Restore, Stage::Verify] {
            assert_eq!(stage(&r, s).outcome, Outcome::Skipped, "{bad}: stage {s}");
        }
        // The manifest was read, and nothing else: no size, no stream of any object.
        assert_eq!(
            *calls.lock().unwrap(),
            vec![format!("get {manifest_key}")],
            "{bad}"
        );
        assert!(leftovers(&r.run_id).await.is_empty());
    }

    // `catalog rebuild` (and so `prune`, which deletes what the catalog lists) does not
    // take the doctored manifest as an artifact of this drill.
    let store = firedrill::store::build_store(&drill.storage, &drill.base_dir).unwrap();
    let (records, problems) = firedrill::inventory::scan_drill(&drill, store.as_ref())
        .await
        .unwrap();
    assert!(
        records.iter().all(|a| !a.location.starts_with("other/")),
        "{records:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&manifest_key) && p.contains("refusing it")),
        "{problems:?}"
    );
    assert!(other.exists());
}

// ------------------------------------------------------------------ plain SQL meta-commands

/// A verify-only drill over `prefix`, restoring into `restored`.
fn verify_only_drill(fx: &Fixture, prefix: &str, extra_source: &str) -> std::path::PathBuf {
    let source = format!(
        r#"[source]
type = "stored"
engine = "postgres"
version = "15"
database = "restored"
prefix = "{prefix}"
{extra_source}"#
    );
    fx.write_drill("stored", &source, "1GiB", "")
}

/// Runs `cmd` in the kept sandbox of `run_id`; its exit code.
fn in_sandbox(run_id: &str, cmd: &str) -> i32 {
    let ps = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=firedrill.run={run_id}"),
        ])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&ps.stdout).trim().to_string();
    assert!(!id.is_empty(), "the sandbox of {run_id} was kept");
    Command::new("docker")
        .args(["exec", &id, "sh", "-c", cmd])
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_dump_that_runs_shell_commands_is_refused_and_nothing_runs() {
    create_db("fd_hostile_plain", SHOP).await;
    let dump = plain_dump("fd_hostile_plain", &[]);
    let lines: Vec<&str> = dump.lines().collect();
    // After the session settings, before the first table: a real dump's header.
    let at = lines
        .iter()
        .position(|l| l.starts_with("SET row_security"))
        .expect("pg_dump's header")
        + 1;
    let cases = [
        // A whole line: the screen names it and psql never sees it.
        (
            "\\! touch /tmp/pwned-line".to_string(),
            "/tmp/pwned-line",
            "meta-command at line",
        ),
        // In the middle of a line: the screen passes it, psql's restricted mode refuses it.
        (
            "SELECT 1; \\! touch /tmp/pwned-midline".to_string(),
            "/tmp/pwned-midline",
            "restricted mode refused it",
        ),
        // Behind quoting that fools a line screen into taking it for COPY data: psql's
        // lexer is not fooled, and its restricted mode refuses it.
        (
            "SELECT '\nCOPY fake FROM stdin;\n';\n\\! touch /tmp/pwned-quoted".to_string(),
            "/tmp/pwned-quoted",
            "restricted mode refused it",
        ),
    ];
    let backend = {
        let fx = Fixture::new();
        let drill = load_drill(&verify_only_drill(&fx, "x/", "")).unwrap();
        firedrill::sandbox::build_backend(&drill.sandbox).unwrap()
    };
    for (injected, pwned, how) in cases {
        let fx = Fixture::new();
        let dir = fx.store().join("legacy");
        std::fs::create_dir_all(&dir).unwrap();
        let mut doctored: Vec<&str> = lines.clone();
        doctored.insert(at, &injected);
        let text = doctored.join("\n") + "\n";
        let bad_line = text
            .lines()
            .position(|l| l.contains("touch /tmp/pwned"))
            .unwrap()
            + 1;
        std::fs::write(dir.join("nightly.sql"), &text).unwrap();
        let path = verify_only_drill(&fx, "legacy/", "");
        let r = run(
            &path,
            RunOptions {
                keep: true,
                ..Default::default()
            },
        )
        .await;
        // Nothing ran: the file the command would have made is not in the sandbox.
        let exists = in_sandbox(&r.run_id, &format!("test -e {pwned}"));
        backend.destroy(&r.run_id).await.unwrap();
        assert!(leftovers(&r.run_id).await.is_empty());
        assert_eq!(exists, 1, "{pwned} was created: the meta-command ran");

        eprintln!("{}", human(&r));
        assert_eq!(r.verdict, Verdict::Failed, "{injected}: {}", human(&r));
        assert_eq!(r.exit_code, 1);
        assert_eq!(r.failed_stage, Some(Stage::Restore));
        let e = r.error.as_ref().unwrap();
        assert!(e.message.contains(how), "{injected}: {e:?}");
        assert!(
            e.message.contains(&format!("line {bad_line}")),
            "{injected}: the error names line {bad_line}: {e:?}"
        );
        if how.starts_with("meta-command") {
            assert!(e.message.contains(&format!("(`{injected}`)")), "{e:?}");
        }
        assert!(
            e.hint.as_deref().unwrap_or("").contains("\\connect"),
            "{e:?}"
        );
    }
}

// ------------------------------------------------------------------ decompression bombs

/// `n` concatenated zstd frames, each 512 MiB of 80-space lines (whitespace psql reads and
/// ignores, so that only the bound stops the restore): a few hundred KiB that decompress
/// to n × 512 MiB.
fn whitespace_bomb(frames: usize) -> Vec<u8> {
    let out = sh(
        "yes \"$(printf '%80s' '')\" | head -c 512M | zstd -q -19 --single-thread -c",
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame = out.stdout;
    assert!(frame.len() < 256 * 1024, "{} bytes", frame.len());
    frame.repeat(frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_from_another_tool_is_stopped_at_its_bound() {
    let fx = Fixture::new();
    let dir = fx.store().join("bombs");
    std::fs::create_dir_all(&dir).unwrap();
    let bomb = whitespace_bomb(8); // 4 GiB
    std::fs::write(dir.join("nightly.sql.zst"), &bomb).unwrap();
    let limit = firedrill::config::external_plain_limit(
        bomb.len() as u64,
        firedrill::config::DEFAULT_MAX_EXPANSION,
    );
    assert!(limit < 4 << 30);
    let path = verify_only_drill(&fx, "bombs/", "");
    let t0 = Instant::now();
    let r = run(&path, RunOptions::default()).await;
    eprintln!("{}", human(&r));
    assert_eq!(r.verdict, Verdict::Failed, "{}", human(&r));
    assert_eq!(r.exit_code, 1);
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let e = r.error.as_ref().unwrap();
    assert!(
        e.message.contains("decompresses to more than")
            && e.message.contains(&firedrill::human::human_bytes(limit)),
        "{e:?}"
    );
    assert!(
        e.hint
            .as_deref()
            .unwrap_or("")
            .contains("source.max_expansion"),
        "{e:?}"
    );
    // Stopped at the bound (a few hundred MiB), not after 4 GiB, and gone.
    assert!(
        stage(&r, Stage::Restore).duration_ms < 120_000,
        "{}",
        human(&r)
    );
    assert_eq!(stage(&r, Stage::Teardown).outcome, Outcome::Passed);
    assert!(leftovers(&r.run_id).await.is_empty());
    assert!(t0.elapsed() < Duration::from_secs(240));

    // The bound is the drill's to set.
    let path = verify_only_drill(&fx, "bombs/", "max_expansion = 0");
    let p = load_drill(&path).unwrap_err();
    assert!(p.to_string().contains("source.max_expansion"), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_that_decompresses_past_its_manifest_is_stopped_there() {
    create_db("fd_hostile_bomb", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("ownbomb", "fd_hostile_bomb", "");
    let first = run(&path, RunOptions::default()).await;
    assert_eq!(first.verdict, Verdict::Passed, "{}", human(&first));

    // Someone with write access to storage appends 4 GiB to the compressed dump,
    // re-encrypts it to the drill's recipient and fixes the manifest's hash and size (not
    // its plain_bytes, which the bound holds to).
    let artifact = fx.artifact_path("ownbomb", &first.run_id);
    let bomb = fx.dir.path().join("bomb.zst");
    std::fs::write(&bomb, whitespace_bomb(8)).unwrap();
    let out = sh(
        "set -euo pipefail; (age -d -i \"$1\" \"$2\"; cat \"$3\") | age -r \"$4\" > \"$2.new\" && mv \"$2.new\" \"$2\"",
        &[
            fx.identity.to_str().unwrap(),
            artifact.to_str().unwrap(),
            bomb.to_str().unwrap(),
            &fx.recipient,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match_manifest_to_artifact(&fx, "ownbomb", &first.run_id, None);

    let r = run(
        &path,
        RunOptions {
            artifact: Some(first.run_id.clone()),
            ..Default::default()
        },
    )
    .await;
    eprintln!("{}", human(&r));
    assert_eq!(r.verdict, Verdict::Failed, "{}", human(&r));
    assert_eq!(r.exit_code, 1);
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let e = r.error.as_ref().unwrap();
    assert!(
        e.message.contains("more than its manifest's plain_bytes"),
        "{e:?}"
    );
    assert!(
        stage(&r, Stage::Restore).duration_ms < 120_000,
        "{}",
        human(&r)
    );
    assert_eq!(stage(&r, Stage::Teardown).outcome, Outcome::Passed);
    assert!(leftovers(&r.run_id).await.is_empty());
}

/// The MySQL/MariaDB client has meta-commands too (`\!` is `system`): a doctored SQL file
/// for a verify-only MariaDB drill must not run them either. The client's `--sandbox`
/// refuses them; the dump's own `enable the sandbox mode` line is taken out, so that
/// only firedrill's flag stands in the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_dump_that_runs_shell_commands_is_refused_and_nothing_runs() {
    create_my_db(
        "fd_hostile_my",
        &[
            "CREATE TABLE t (id int PRIMARY KEY, note text)",
            "INSERT INTO t VALUES (1, 'one'), (2, 'two')",
        ],
    )
    .await;
    let password = std::env::var(MY_PASSWORD_ENV).unwrap();
    let out = Command::new("mariadb-dump")
        .args(["-h", "127.0.0.1", "-u", "firedrill", "--skip-ssl"])
        .arg(format!("-P{}", my_port()))
        .args(["--databases", "fd_hostile_my"])
        .env("MYSQL_PWD", &password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = dump
        .lines()
        .filter(|l| !l.contains("enable the sandbox mode"))
        .collect();
    let at = lines.iter().position(|l| l.starts_with("USE ")).unwrap() + 1;
    lines.insert(at, "\\! touch /tmp/pwned-my");
    let fx = Fixture::new();
    let dir = fx.store().join("legacy-my");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("nightly.sql"), lines.join("\n") + "\n").unwrap();
    let path = fx.dir.path().join("stored-my.toml");
    std::fs::write(
        &path,
        format!(
            "[source]\ntype = \"stored\"\nengine = \"mariadb\"\nversion = \"10.11\"\ndatabase = \"fd_hostile_my\"\nprefix = \"legacy-my/\"\n\n[storage]\ntype = \"local\"\npath = \"{}\"\n\n[encryption]\nrecipients = [\"{}\"]\nidentity = {{ file = \"identity.txt\" }}\n\n[sandbox]\nmemory = \"2GiB\"\n\n[timeouts]\nprovision = \"3m\"\nrestore = \"5m\"\n",
            fx.store().display(),
            fx.recipient
        ),
    )
    .unwrap();
    let r = run(
        &path,
        RunOptions {
            keep: true,
            ..Default::default()
        },
    )
    .await;
    let exists = in_sandbox(&r.run_id, "test -e /tmp/pwned-my");
    let drill = load_drill(&path).unwrap();
    firedrill::sandbox::build_backend(&drill.sandbox)
        .unwrap()
        .destroy(&r.run_id)
        .await
        .unwrap();
    assert!(leftovers(&r.run_id).await.is_empty());
    eprintln!("{}", human(&r));
    assert_eq!(exists, 1, "/tmp/pwned-my was created: the client ran `\\!`");
    assert_eq!(r.verdict, Verdict::Failed, "{}", human(&r));
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let e = r.error.as_ref().unwrap();
    assert!(e.message.contains("sandbox mode refused it"), "{e:?}");
    assert!(
        e.message.contains(&format!("at line {}", at + 1)),
        "the error names the line: {e:?}"
    );
}
