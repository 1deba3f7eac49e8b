//! Property-based fuzzing of every parser that reads text firedrill does not control:
//! drill files (people write them), manifests (storage can be written by others),
//! Alertmanager webhook bodies (the network), mysqldump streams (a dump tool's output)
//! and the PostgreSQL result parsers (a sandbox that restored a hostile dump).
//!
//! Each target gets arbitrary input and mutations of a valid input (bytes flipped,
//! inserted, removed; values replaced by random TOML/JSON values; random chunkings). The
//! properties: no panic, and every error says something (`message` non-empty; a drill
//! file problem also names its file and a fix). Where a parser has an invariant worth
//! more than "no panic", it is checked too: a manifest that parses points at the artifact
//! beside it; a dump scan does not depend on how the stream was chunked; the drills an
//! Alertmanager payload starts are the firing ones, once each.
//!
//! Cases per target are set below: 10,000 arbitrary drill files, 8,000 byte and 8,000
//! value mutations of the shipped ones, 5,000 for each other target; 71,000 in all, about
//! 15 s in a debug build on two cores. `FIREDRILL_FUZZ_CASES=N` runs N per target
//! instead, for a deeper run. Failing inputs are shrunk by proptest and saved in
//! `tests/fuzz_parsers.proptest-regressions`, which every run replays first: it holds the
//! inputs that found the bugs fixed so far (a panic on a drill file whose line starts
//! with a vertical tab before a multi-byte character, a TOML error with no message, a
//! panic on `INSERT INTO VALUES` in a dump); `inputs_that_found_bugs` spells them out.

use std::path::{Path, PathBuf};

use firedrill::config::parse_drill;
use firedrill::daemon::AlertmanagerWebhook;
use firedrill::engine::mysqldump_scan::DumpScanner;
use firedrill::engine::postgres::{
    apply_checksums, parse_amcheck, parse_fingerprint, parse_objects,
};
use firedrill::fingerprint::Fingerprint;
use firedrill::manifest::Manifest;
use proptest::prelude::*;
use proptest::test_runner::Config;

fn cases(default: u32) -> Config {
    let n = std::env::var("FIREDRILL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases: n,
        // The mutations below are cheap; shrinking a failure should not take minutes.
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

// ------------------------------------------------------------------ shared strategies

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    /// Removes a run of bytes (cuts a file short in the middle, or at the end).
    Cut(usize, usize),
    /// Duplicates a run (repeated tables, repeated keys).
    Repeat(usize, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let one = prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), 0usize..64).prop_map(|(i, n)| Edit::Cut(i, n)),
        (any::<usize>(), 0usize..64).prop_map(|(i, n)| Edit::Repeat(i, n)),
    ];
    prop::collection::vec(one, 1..8)
}

/// Bytes that matter to the formats fuzzed here, more often than chance would pick them.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => any::<u8>(),
        6 => prop::sample::select(
            b"\"'`\\[]{}=,.:#$\n\r\t (); -01eE+/\x00\xff".to_vec()
        ),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        match *e {
            Edit::Flip(i, b) if len > 0 => bytes[i % len] ^= b,
            Edit::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Edit::Remove(i) if len > 0 => {
                bytes.remove(i % len);
            }
            Edit::Cut(i, n) if len > 0 => {
                let at = i % len;
                bytes.drain(at..(at + n).min(len));
            }
            Edit::Repeat(i, n) if len > 0 => {
                let at = i % len;
                let run = bytes[at..(at + n).min(len)].to_vec();
                let tail = bytes.split_off(at);
                bytes.extend_from_slice(&run);
                bytes.extend_from_slice(&tail);
            }
            _ => {}
        }
    }
    bytes
}

/// Text that looks like config or SQL more often than random Unicode does.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z_\\[\\]\"'=\\.\\{\\}, \n#0-9$:-]{0,400}",
        prop::collection::vec(any::<u8>(), 0..400)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

// ------------------------------------------------------------------ drill files

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every drill file the repository ships: the seeds that mutations start from.
fn shipped_drills() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(repo().join("drills")).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "toml") {
            out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    out.sort();
    assert!(
        out.len() >= 4,
        "the drill files are the fuzz seeds: {out:?}"
    );
    out
}

/// parse_drill must not panic; a refusal lists problems, each naming the file, saying
/// what is wrong and how to fix it.
fn check_drill(path: &Path, text: &str) -> Result<(), TestCaseError> {
    if let Err(problems) = parse_drill(path, text) {
        prop_assert!(
            !problems.0.is_empty(),
            "an error without problems for {text:?}"
        );
        for p in &problems.0 {
            prop_assert!(!p.file.as_os_str().is_empty(), "no file: {p:?}");
            prop_assert!(!p.message.trim().is_empty(), "no message: {p:?}\n{text}");
            prop_assert!(!p.fix.trim().is_empty(), "no fix: {p:?}\n{text}");
        }
        let shown = problems.to_string();
        prop_assert!(shown.contains(&path.display().to_string()), "{shown}");
    }
    Ok(())
}

/// A random TOML value, nested a little.
fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        texty().prop_map(toml::Value::String),
        prop::sample::select(vec![
            "",
            "0",
            "-1",
            "90s",
            "0s",
            "1ms",
            "10m",
            "2h",
            "99999999999h",
            "512MiB",
            "2GiB",
            "0B",
            "1e400",
            "postgres",
            "mariadb",
            "mysql",
            "stored",
            "local",
            "s3",
            "docker",
            "= 0",
            ">= 1",
            "between 1 and 2",
            "* * * * *",
            "0 0 31 2 *",
            "../x",
            "/",
            "${HOME}",
            "${FIREDRILL_SURELY_UNSET:?set it}",
            "$$",
            "age1",
            "AGE-SECRET-KEY-1",
        ])
        .prop_map(|s| toml::Value::String(s.to_string())),
        "2026-11-26T10:00:00Z".prop_map(|s| toml::Value::Datetime(s.parse().unwrap())),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

/// One change to a parsed drill file.
#[derive(Debug, Clone)]
enum TomlEdit {
    /// Replace the value at a random key path.
    Replace(usize, toml::Value),
    /// Remove a random key.
    Remove(usize),
    /// Add a key (unknown, or known in the wrong table).
    Add(usize, String, toml::Value),
}

fn toml_edits() -> impl Strategy<Value = Vec<TomlEdit>> {
    let key = prop_oneof![
        "[a-z_]{1,14}",
        prop::sample::select(vec![
            "type",
            "host",
            "port",
            "database",
            "password",
            "path",
            "prefix",
            "identity",
            "recipients",
            "memory",
            "cpus",
            "image",
            "cron",
            "max_age",
            "expect",
            "sql",
            "name",
            "level",
            "threads",
            "attempts",
            "backoff",
            "keep_last",
            "max_expansion",
            "assertions_from",
            "checksum_max_table_size",
            "env",
            "file",
        ])
        .prop_map(String::from),
    ];
    let one = prop_oneof![
        (any::<usize>(), toml_value()).prop_map(|(i, v)| TomlEdit::Replace(i, v)),
        any::<usize>().prop_map(TomlEdit::Remove),
        (any::<usize>(), key, toml_value()).prop_map(|(i, k, v)| TomlEdit::Add(i, k, v)),
    ];
    prop::collection::vec(one, 1..5)
}

/// Every table (as a key path) and every key path in `v`.
fn paths(
    v: &toml::Value,
    here: &mut Vec<String>,
    tables: &mut Vec<Vec<String>>,
    keys: &mut Vec<Vec<String>>,
) {
    if let toml::Value::Table(t) = v {
        tables.push(here.clone());
        for (k, child) in t {
            here.push(k.clone());
            keys.push(here.clone());
            paths(child, here, tables, keys);
            here.pop();
        }
    }
}

fn table_at<'a>(root: &'a mut toml::Value, path: &[String]) -> Option<&'a mut toml::Table> {
    let mut cur = root;
    for k in path {
        cur = cur.as_table_mut()?.get_mut(k)?;
    }
    cur.as_table_mut()
}

fn apply_toml(text: &str, edits: &[TomlEdit]) -> Option<String> {
    let mut root: toml::Value = toml::from_str(text).ok()?;
    for e in edits {
        let (mut tables, mut keys) = (Vec::new(), Vec::new());
        paths(&root, &mut Vec::new(), &mut tables, &mut keys);
        match e {
            TomlEdit::Replace(i, v) if !keys.is_empty() => {
                let path = &keys[i % keys.len()];
                let (last, parent) = path.split_last()?;
                table_at(&mut root, parent)?.insert(last.clone(), v.clone());
            }
            TomlEdit::Remove(i) if !keys.is_empty() => {
                let path = &keys[i % keys.len()];
                let (last, parent) = path.split_last()?;
                table_at(&mut root, parent)?.remove(last);
            }
            TomlEdit::Add(i, k, v) => {
                let path = tables[i % tables.len()].clone();
                table_at(&mut root, &path)?.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    toml::to_string(&root).ok()
}

proptest! {
    #![proptest_config(cases(10000))]

    #[test]
    fn drill_parser_on_arbitrary_text(text in texty()) {
        check_drill(Path::new("/etc/firedrill/drills/fuzz.toml"), &text)?;
    }
}

proptest! {
    #![proptest_config(cases(8000))]

    #[test]
    fn drill_parser_on_byte_mutations_of_shipped_drills(
        seed in any::<prop::sample::Index>(),
        edits in edits(),
    ) {
        let drills = shipped_drills();
        let (path, text) = &drills[seed.index(drills.len())];
        let mutated = String::from_utf8_lossy(&apply(text.clone().into_bytes(), &edits)).into_owned();
        check_drill(path, &mutated)?;
    }

    #[test]
    fn drill_parser_on_value_mutations_of_shipped_drills(
        seed in any::<prop::sample::Index>(),
        edits in toml_edits(),
    ) {
        let drills = shipped_drills();
        let (path, text) = &drills[seed.index(drills.len())];
        if let Some(mutated) = apply_toml(text, &edits) {
            check_drill(path, &mutated)?;
        }
    }
}

#[test]
fn the_seeds_parse_so_mutations_start_from_valid_files() {
    for (path, text) in shipped_drills() {
        parse_drill(&path, &text).unwrap_or_else(|p| panic!("{p}"));
    }
}

// ------------------------------------------------------------------ manifests

const MANIFEST_KEY: &str = "backups/shop/20261126T100000Z-abcdef/manifest.json";

fn valid_manifest() -> serde_json::Value {
    serde_json::json!({
        "manifest_version": 1,
        "drill": "shop",
        "run_id": "20261126T100000Z-abcdef",
        "started_at": "2026-11-26T10:00:00Z",
        "finished_at": "2026-11-26T10:01:00Z",
        "engine": "postgres",
        "source_server_version": "15.14",
        "source_major": "15",
        "databases": ["shop"],
        "dump_tool": "pg_dump",
        "dump_tool_version": "15.14",
        "dump_format": "custom",
        "compression": "zstd",
        "encryption": "age",
        "artifact_key": "backups/shop/20261126T100000Z-abcdef/artifact.dump.zst.age",
        "plain_bytes": 1000,
        "compressed_bytes": 300,
        "encrypted_bytes": 500,
        "sha256": "ab".repeat(32),
        "recipients": ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"],
        "fingerprint": {
            "tables": [{
                "schema": "public", "name": "orders", "rows": 12000,
                "columns": [["id", "bigint"], ["amount", "numeric(12,2)"]],
                "columns_sha256": "cd".repeat(32), "bytes": 8192,
                "checksum": "md5sum:12000:123"
            }],
            "objects": {"indexes": 2, "views": 1}
        },
        "notes": ["a note"],
        "firedrill_version": "0.1.0"
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<u64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|n| serde_json::json!(n)),
        texty().prop_map(serde_json::Value::String),
        prop::sample::select(vec![
            "",
            "/etc/passwd",
            "../other/x",
            "backups/other/r1/artifact.dump.zst.age",
            "backups/shop/20261126T100000Z-abcdef/artifact.dump.zst.age",
            "postgres",
            "mysql",
            "15",
            "10.11",
            "15; rm -rf /",
            "2026-11-26T10:00:00Z",
            "not a time",
        ])
        .prop_map(|s| serde_json::Value::String(s.to_string())),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer of an object member or array element in `v`.
fn pointers(v: &serde_json::Value, here: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{here}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{here}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

fn check_manifest(bytes: &[u8], key: &str) -> Result<(), TestCaseError> {
    match Manifest::from_json(bytes, key) {
        Ok(m) => {
            // Whatever else it says, a manifest that is accepted points at the artifact
            // beside it, in a run directory named by its run id.
            let dir = key.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            prop_assert_eq!(&m.artifact_key, &format!("{dir}/artifact.dump.zst.age"));
            let run_dir = format!("/{}", m.run_id);
            prop_assert!(dir.ends_with(&run_dir), "{} is not in {}", m.run_id, dir);
            prop_assert!(!m.databases.is_empty());
            prop_assert!(firedrill::engine::Engine::ALL.contains(&m.engine));
            // And it writes out to what it read.
            prop_assert_eq!(Manifest::from_json(&m.to_json(), key).ok(), Some(m));
        }
        Err(e) => {
            prop_assert!(!e.message.trim().is_empty());
            prop_assert!(
                e.message.contains(key),
                "the error names the manifest: {}",
                e.message
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(5000))]

    #[test]
    fn manifest_parser_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_manifest(&bytes, MANIFEST_KEY)?;
    }

    #[test]
    fn manifest_parser_on_byte_mutations(edits in edits()) {
        let text = serde_json::to_vec_pretty(&valid_manifest()).unwrap();
        check_manifest(&apply(text, &edits), MANIFEST_KEY)?;
    }

    #[test]
    fn manifest_parser_on_value_mutations(
        changes in prop::collection::vec((any::<prop::sample::Index>(), json_value(), any::<bool>()), 1..5),
    ) {
        let mut v = valid_manifest();
        for (at, value, remove) in changes {
            let mut ps = Vec::new();
            pointers(&v, String::new(), &mut ps);
            let p = ps[at.index(ps.len())].clone();
            let (parent, last) = p.rsplit_once('/').unwrap();
            match v.pointer_mut(parent).unwrap() {
                serde_json::Value::Object(m) if remove => {
                    m.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                _ => *v.pointer_mut(&p).unwrap() = value,
            }
        }
        check_manifest(&serde_json::to_vec(&v).unwrap(), MANIFEST_KEY)?;
    }
}

#[test]
fn the_manifest_seed_is_valid() {
    let bytes = serde_json::to_vec(&valid_manifest()).unwrap();
    Manifest::from_json(&bytes, MANIFEST_KEY).unwrap();
}

// ------------------------------------------------------------------ Alertmanager webhooks

fn webhook() -> impl Strategy<Value = serde_json::Value> {
    let label = prop_oneof![
        Just("firedrill_drill".to_string()),
        Just("alertname".to_string()),
        "[a-z_]{0,10}",
    ];
    let alert = (
        prop_oneof![
            Just("firing".to_string()),
            Just("resolved".to_string()),
            texty()
        ],
        prop::collection::btree_map(label, prop_oneof![texty(), "[a-z]{1,6}"], 0..4),
        json_value(),
    )
        .prop_map(|(status, labels, extra)| {
            serde_json::json!({"status": status, "labels": labels, "annotations": extra,
                "startsAt": "2026-11-26T10:00:00Z", "fingerprint": "abc"})
        });
    (prop::collection::vec(alert, 0..6), json_value()).prop_map(|(alerts, extra)| {
        serde_json::json!({"version": "4", "status": "firing", "receiver": "firedrill",
            "groupLabels": extra, "alerts": alerts})
    })
}

fn check_webhook(body: &[u8]) -> Result<(), TestCaseError> {
    match AlertmanagerWebhook::from_json(body) {
        Ok(p) => {
            let drills = p.firing_drills();
            let mut sorted = drills.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&drills, &sorted, "sorted, once each");
            for d in &drills {
                prop_assert!(p
                    .alerts
                    .iter()
                    .any(|a| a.status == "firing" && a.labels.get("firedrill_drill") == Some(d)));
            }
            for a in &p.alerts {
                if let (true, Some(d)) = (a.status == "firing", a.labels.get("firedrill_drill")) {
                    prop_assert!(drills.contains(d));
                }
            }
        }
        Err(e) => prop_assert!(
            e.len() > "not an Alertmanager webhook payload: ".len(),
            "{e}"
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(5000))]

    #[test]
    fn webhook_parser_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_webhook(&bytes)?;
    }

    #[test]
    fn webhook_parser_on_payloads_and_their_mutations(v in webhook(), edits in edits(), mutate in any::<bool>()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        check_webhook(&if mutate { apply(bytes, &edits) } else { bytes })?;
    }
}

// ------------------------------------------------------------------ mysqldump streams

const DUMP: &str = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n\
/*M!999999\\- enable the sandbox mode */ \n\
/*!40101 SET NAMES utf8mb4 */;\n\
CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n\
USE `shop`;\n\
DROP TABLE IF EXISTS `orders`;\n\
CREATE TABLE `orders` (\n  `id` int NOT NULL,\n  `note` text\n) ENGINE=InnoDB;\n\
LOCK TABLES `orders` WRITE;\n\
INSERT INTO `orders` VALUES (1,'a (b)'),(2,'it''s'),(3,'x\\');('),(4,0xDEADBEEF);\n\
INSERT INTO `orders` VALUES\n(5,NULL),\n(6,'\\\\');\n\
UNLOCK TABLES;\n\
CREATE TABLE `we``ird` (`id` int);\n\
INSERT INTO `we``ird` VALUES (1);\n\
/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n\
SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'x:1-2';\n\
-- Dump completed on 2026-11-26 10:00:00\n";

/// The same bytes in chunks of random sizes.
fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    for c in cuts {
        if rest.is_empty() {
            break;
        }
        let n = c % (rest.len() + 1);
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    out.push(rest.to_vec());
    out
}

fn scan(
    chunks: &[Vec<u8>],
    database: Option<&str>,
) -> Result<firedrill::engine::mysqldump_scan::ScanResult, String> {
    let mut s = match database {
        Some(d) => DumpScanner::in_database(d),
        None => DumpScanner::new(),
    };
    for c in chunks {
        s.update(c);
    }
    s.finish().map_err(|e| e.message)
}

fn check_scan(bytes: &[u8], cuts: &[usize], database: Option<&str>) -> Result<(), TestCaseError> {
    let whole = scan(&[bytes.to_vec()], database);
    let pieces = scan(&chunked(bytes, cuts), database);
    if let Err(m) = &pieces {
        prop_assert!(!m.trim().is_empty());
    }
    // A streaming scanner's verdict cannot depend on where the stream was cut into reads.
    prop_assert_eq!(whole, pieces);
    Ok(())
}

proptest! {
    #![proptest_config(cases(5000))]

    #[test]
    fn dump_scanner_on_arbitrary_chunks(
        bytes in prop::collection::vec(interesting_byte(), 0..2000),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        in_db in any::<bool>(),
    ) {
        check_scan(&bytes, &cuts, in_db.then_some("shop"))?;
    }

    #[test]
    fn dump_scanner_on_mutated_dumps(
        edits in edits(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        in_db in any::<bool>(),
    ) {
        let bytes = apply(DUMP.as_bytes().to_vec(), &edits);
        check_scan(&bytes, &cuts, in_db.then_some("shop"))?;
    }
}

#[test]
fn the_dump_seed_scans() {
    let r = scan(&[DUMP.as_bytes().to_vec()], None).unwrap();
    assert_eq!(r.rows.get("shop.orders"), Some(&6), "{r:?}");
    assert_eq!(r.rows.get("shop.we`ird"), Some(&1), "{r:?}");
}

// ------------------------------------------------------------------ PostgreSQL results

fn fingerprint_json() -> impl Strategy<Value = serde_json::Value> {
    let col = (texty(), texty()).prop_map(|(n, t)| serde_json::json!([n, t]));
    let row = (
        texty(),
        texty(),
        any::<i64>(),
        prop::collection::vec(col, 0..4),
        any::<i64>(),
    )
        .prop_map(|(s, t, r, c, b)| serde_json::json!([s, t, r, c, b]));
    prop::collection::vec(row, 0..5).prop_map(serde_json::Value::Array)
}

fn check_pg_result<T>(r: firedrill::Result<T>) -> Result<Option<T>, TestCaseError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            prop_assert!(!e.message.trim().is_empty());
            Ok(None)
        }
    }
}

proptest! {
    #![proptest_config(cases(5000))]

    #[test]
    fn postgres_result_parsers_on_arbitrary_text(text in texty()) {
        check_pg_result(parse_fingerprint(&text))?;
        check_pg_result(parse_amcheck(&text))?;
        check_pg_result(parse_objects(&text))?;
        let mut fp = Fingerprint::default();
        check_pg_result(apply_checksums(&mut fp, &text))?;
    }

    #[test]
    fn postgres_result_parsers_on_shaped_and_mutated_json(
        fp in fingerprint_json(),
        objects in prop::collection::btree_map(texty(), any::<i64>(), 0..5),
        checked in any::<i64>(),
        failed in prop::collection::vec((texty(), texty()), 0..3),
        edits in edits(),
        mutate in any::<bool>(),
        noise in texty(),
    ) {
        let m = |s: String| if mutate { String::from_utf8_lossy(&apply(s.into_bytes(), &edits)).into_owned() } else { s };
        if let Some(parsed) = check_pg_result(parse_fingerprint(&m(fp.to_string())))? {
            // Tables come out sorted, counts never negative.
            let names: Vec<_> = parsed.tables.iter().map(|t| (&t.schema, &t.name)).collect();
            let mut sorted = names.clone();
            sorted.sort();
            prop_assert_eq!(names, sorted);
            let mut with_sums = parsed.clone();
            let sums: Vec<_> = parsed.tables.iter().map(|t| serde_json::json!([t.schema, t.name, "md5sum:1:2"])).collect();
            check_pg_result(apply_checksums(&mut with_sums, &m(serde_json::Value::Array(sums).to_string())))?;
        }
        check_pg_result(parse_objects(&m(serde_json::json!(objects).to_string())))?;
        // amcheck's result is the last `{` line of psql's output, after its NOTICEs.
        let am = serde_json::json!({"checked": checked, "failed": failed}).to_string();
        check_pg_result(parse_amcheck(&m(format!("{noise}\n{am}\n"))))?;
    }
}

/// The inputs that found bugs, readable (the regressions file holds them as seeds).
#[test]
fn inputs_that_found_bugs() {
    let path = Path::new("/etc/firedrill/drills/found.toml");
    // A line starting with whitespace TOML does not skip, before a multi-byte character:
    // the field lookup sliced inside the character.
    let p = parse_drill(path, "\u{b}\u{fffd}\t").unwrap_err();
    assert!(!p.0[0].message.is_empty(), "{p}");
    // A lone carriage return: toml's error has no message of its own.
    let p = parse_drill(path, "\r\0").unwrap_err();
    assert!(p.0[0].message.contains("unexpected character"), "{p}");
    // `INSERT INTO VALUES`: the table name's slice ended before it started.
    for dump in ["INSERT INTO VALUES\n(1);\n", "INSERT INTO VALUES (1);\n"] {
        let mut s = DumpScanner::new();
        s.update(dump.as_bytes());
        assert!(s.finish().is_err());
    }
}
