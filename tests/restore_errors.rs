//! A failed restore says what failed, whatever the rows hold. The restore is one pipe
//! (age, zstd, the bound, the client) and each stage reports on its own; the failure is
//! the stage that failed first in the dump's flow, told in its own words. Against the real
//! MariaDB source and the real sandbox (started by `tests/run`), with rows that hold the
//! words a search of the client's output would have matched (`2006`, `max_allowed_packet`,
//! `age: error`, firedrill's own report lines): an artifact damaged after encryption, with
//! its manifest doctored to match so that the damage gets past the hash, does not decrypt;
//! a dump cut inside an INSERT is a syntax error, not a lost server.

mod support;

use firedrill::report::Outcome;
use firedrill::{load_drill, run_drill, RunOptions, RunReport, Silent, Stage, Verdict};
use support::*;

async fn run(path: &std::path::Path, artifact: Option<&str>) -> RunReport {
    let drill = load_drill(path).unwrap_or_else(|p| panic!("{p}"));
    let opts = RunOptions {
        artifact: artifact.map(String::from),
        ..Default::default()
    };
    run_drill(&drill, &opts, &Silent, &firedrill::Stop::new()).await
}

fn human(r: &RunReport) -> String {
    firedrill::report::render_human(r)
}

/// What rows may say that a search of the client's output took for an error.
const MISLEADING: [&str; 9] = [
    "MySQL server has gone away (2006)",
    "ERROR 2006 (HY000) at line 1: MySQL server has gone away",
    "Got a packet bigger than 'max_allowed_packet' bytes (1153)",
    "age: error: no identity matched any of the recipients",
    "zstd: /*stdin*\\\\: unsupported format",
    "Not allowed in the sandbox mode",
    "firedrill: stage=client exit=0 bytes=0",
    "firedrill: the decompressed dump exceeds 1 bytes (x); stopped there",
    "psql:<stdin>:1: error: backslash commands are restricted",
];

/// A MariaDB database whose rows say misleading things, from its first statements to its
/// last, among 30 000 rows of hex (a few MiB: the artifact spans many of age's 64 KiB
/// chunks, so that damage in its middle lets rows through to the client first).
async fn misleading_db(name: &str) {
    let mut setup = vec![
        "CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(100), note TEXT, data BLOB)".to_string(),
    ];
    let notes = |base: usize| -> String {
        MISLEADING
            .iter()
            .enumerate()
            .map(|(i, m)| {
                format!(
                    "({}, 'user{}@example.com', '{}', UNHEX('20060153'))",
                    base + i,
                    2006 + i,
                    m.replace('\'', "''")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    setup.push(format!("INSERT INTO t VALUES {}", notes(1)));
    setup.push(
        "INSERT INTO t SELECT 100 + seq, CONCAT('user', seq, '@example.com'), \
         IF(seq % 1000 = 6, 'MySQL server has gone away (2006), max_allowed_packet', CONCAT(MD5(seq), MD5(seq + 1))), \
         UNHEX(MD5(seq)) FROM seq_1_to_30000"
            .to_string(),
    );
    setup.push(format!("INSERT INTO t VALUES {}", notes(40000)));
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    create_my_db(name, &setup).await;
}

fn assert_nothing_of_the_rows(r: &RunReport) {
    let e = r.error.as_ref().unwrap();
    let all = format!(
        "{}\n{}\n{}",
        e.message,
        e.hint.as_deref().unwrap_or(""),
        e.stderr_tail.as_deref().unwrap_or("")
    );
    for word in [
        "2006",
        "max_allowed_packet",
        "gone away",
        "packet",
        "example.com",
    ] {
        assert!(!all.contains(word), "`{word}` in the error: {all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_mariadb_artifact_does_not_decrypt_whatever_its_rows_say() {
    misleading_db("fd_rerr_damaged").await;
    let fx = Fixture::new();
    let path = fx.my_drill("damaged", "database = \"fd_rerr_damaged\"", "");
    let good = run(&path, None).await;
    assert_eq!(good.verdict, Verdict::Passed, "{}", human(&good));
    let artifact = fx.artifact_path("damaged", &good.run_id);
    let manifest = fx.manifest_path("damaged", &good.run_id);
    let (sealed, promised) = (
        std::fs::read(&artifact).unwrap(),
        std::fs::read(&manifest).unwrap(),
    );
    assert!(sealed.len() > 8 * 65536, "{} bytes", sealed.len());

    let (_, other_recipient) = firedrill::age_keys::generate_identity();
    let identity = fx.identity.clone();
    let copy = fx.dir.path().join("sealed.age");
    std::fs::write(&copy, &sealed).unwrap();
    type Damage = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let damages: [(&str, Damage, &str); 3] = [
        (
            "a byte flipped in the middle",
            Box::new(|b: &[u8]| {
                let mut b = b.to_vec();
                let i = b.len() / 2;
                b[i] ^= 0x01;
                b
            }),
            "its authentication failed",
        ),
        (
            "cut to half its length",
            Box::new(|b: &[u8]| b[..b.len() / 2].to_vec()),
            "its authentication failed",
        ),
        (
            "encrypted again to another key",
            Box::new(move |b: &[u8]| {
                let out = std::process::Command::new("bash")
                    .arg("-c")
                    .arg(r#"set -euo pipefail; age -d -i "$1" "$2" | age -r "$3""#)
                    .arg("bash")
                    .arg(&identity)
                    .arg(&copy)
                    .arg(&other_recipient)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
                assert_ne!(out.stdout.as_slice(), b);
                out.stdout
            }),
            "this identity does not match any recipient",
        ),
    ];
    for (what, damage, why) in damages {
        std::fs::write(&manifest, &promised).unwrap();
        std::fs::write(&artifact, damage(&sealed)).unwrap();
        match_manifest_to_artifact(&fx, "damaged", &good.run_id, None);
        let r = run(&path, Some(&good.run_id)).await;
        eprintln!("{what}:\n{}", human(&r));
        assert_eq!(r.verdict, Verdict::Failed, "{what}: {}", human(&r));
        assert_eq!(r.exit_code, 1, "{what}");
        assert_eq!(r.failed_stage, Some(Stage::Restore), "{what}");
        let e = r.error.as_ref().unwrap();
        assert!(
            e.message.contains("the artifact does not decrypt") && e.message.contains(why),
            "{what}: {e:?}"
        );
        assert!(!e.message.contains("hash mismatch"), "{what}: {e:?}");
        assert_nothing_of_the_rows(&r);
        assert_eq!(stage(&r, Stage::Verify).outcome, Outcome::Skipped, "{what}");
        assert!(leftovers(&r.run_id).await.is_empty(), "{what}");
    }
}

/// The issue's own case: a dump cut inside an INSERT next to `user2006@example.com` was
/// reported as "MySQL server has gone away (2006)" with a hint about packet sizes, and
/// with 9 KB of rows; it is a syntax error, and says so without the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_dump_cut_inside_an_insert_is_a_syntax_error_not_a_lost_server() {
    misleading_db("fd_rerr_cut").await;
    let fx = Fixture::new();
    let path = fx.my_drill("cut", "database = \"fd_rerr_cut\"", "");
    let good = run(&path, None).await;
    assert_eq!(good.verdict, Verdict::Passed, "{}", human(&good));
    doctor_dump(&fx, "cut", &good.run_id, |dump| {
        let at = dump
            .windows(b"user2006@example.com".len())
            .position(|w| w == b"user2006@example.com")
            .expect("the row is in the dump");
        dump[..at + "user2006@exa".len()].to_vec()
    });
    let r = run(&path, Some(&good.run_id)).await;
    eprintln!("{}", human(&r));
    assert_eq!(r.verdict, Verdict::Failed, "{}", human(&r));
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let e = r.error.as_ref().unwrap();
    assert!(
        e.message.contains("does not parse") && e.message.contains("(1064)"),
        "{e:?}"
    );
    assert!(e.hint.as_deref().unwrap().contains("cut short"), "{e:?}");
    assert_nothing_of_the_rows(&r);
    let kept = e.stderr_tail.as_deref().unwrap();
    assert!(
        kept.starts_with("ERROR 1064 (42000) at line ") && kept.contains(" near [elided] at line "),
        "{kept}"
    );
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(leftovers(&r.run_id).await.is_empty());
}
