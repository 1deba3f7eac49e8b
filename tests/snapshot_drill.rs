//! Verify-only drills of dumps kept in restic and Borg repositories, with the real tools
//! from Debian's packages, the real PostgreSQL and MariaDB sources, Garage (S3), an sshd
//! on loopback and the real Docker engine (all started or installed by `tests/run`).
//!
//! What each test proves: the dump a team already keeps restores and verifies (latest,
//! tagged, random), and a broken one (a wrong password, a pack or segment deleted, a dump
//! cut short) fails at the right stage with its cause named, while nothing is ever
//! written to the repository.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use firedrill::report::Outcome;
use firedrill::{load_drill, run_drill, RunOptions, Silent, Stage, Verdict};
use support::*;

const RESTIC_PW: &str = "FD_TEST_RESTIC_PASSWORD";
const BORG_PW: &str = "FD_TEST_BORG_PASSPHRASE";

fn set_passwords() {
    // Read by the drills through { env = … }; the same for every test of this file.
    std::env::set_var(RESTIC_PW, "correct horse battery staple");
    std::env::set_var(BORG_PW, "borg passphrase for tests");
}

async fn run(path: &Path, opts: RunOptions) -> firedrill::RunReport {
    let drill = load_drill(path).unwrap_or_else(|p| panic!("{p}"));
    run_drill(&drill, &opts, &Silent, &firedrill::Stop::new()).await
}

fn explain(r: &firedrill::RunReport) -> String {
    firedrill::report::render_human(r)
}

/// Every file of a repository with its size and modification time: what "nothing was
/// written" is checked against.
fn tree(root: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                todo.push(e.path());
            } else {
                out.insert(e.path(), (m.len(), m.modified().unwrap()));
            }
        }
    }
    out
}

/// A bash script with the test servers' settings and the repositories' passwords.
fn script(s: &str, args: &[&str]) -> String {
    set_passwords();
    let restic_pw = std::env::var(RESTIC_PW).unwrap();
    let borg_pw = std::env::var(BORG_PW).unwrap();
    sh(
        &format!("export RESTIC_PASSWORD='{restic_pw}' BORG_PASSPHRASE='{borg_pw}'\n{s}"),
        args,
    )
}

/// A restic repository at `repo` with three snapshots of database `db` dumped in custom
/// format: tagged weekly, then nightly, then nightly again. Their ids, oldest first.
fn restic_repo(repo: &str, db: &str, env: &[(&str, &str)]) -> Vec<String> {
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    script(
        &format!(
            r#"{exports}export RESTIC_REPOSITORY="$1"
restic init -q
for tag in weekly nightly nightly; do
  pg_dump -Fc -Z0 -d "$2" | restic backup -q --stdin --stdin-filename shop.dump --tag "$tag"
done"#
        ),
        &[repo, db],
    );
    let out = script(
        &format!("{exports}export RESTIC_REPOSITORY=\"$1\"\nrestic snapshots --json --no-lock"),
        &[repo],
    );
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    v.iter()
        .map(|s| s["short_id"].as_str().unwrap().to_string())
        .collect()
}

fn restic_drill(fx: &Fixture, name: &str, repo: &str, more: &str, extra: &str) -> PathBuf {
    fx.write_drill(
        name,
        &format!(
            r#"[source]
type = "restic"
repository = "{repo}"
password = {{ env = "{RESTIC_PW}" }}
database = "shop"
{more}"#
        ),
        "1GiB",
        &format!(
            r#"
[retry]
attempts = 2
backoff = "1s"

[[assertion]]
name = "every customer is back"
sql = "select count(*) from customers"
expect = "= 3000"
{extra}"#
        ),
    )
}

fn stage_error(r: &firedrill::RunReport, s: Stage) -> String {
    let st = stage(r, s);
    let e = st
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("stage {s} has no error:\n{}", explain(r)));
    format!(
        "{} {} {}",
        e.message,
        e.hint.clone().unwrap_or_default(),
        e.stderr_tail.clone().unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restic_latest_tagged_and_random_snapshots_restore_and_verify() {
    set_passwords();
    create_db("fd_snap_restic", SHOP).await;
    let fx = Fixture::new();
    let repo = fx.dir.path().join("restic");
    let ids = restic_repo(repo.to_str().unwrap(), "fd_snap_restic", &[]);
    assert_eq!(ids.len(), 3);
    let before = tree(&repo);

    let latest = restic_drill(&fx, "restic-latest", repo.to_str().unwrap(), "", "");
    let r = run(&latest, RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Passed, "{}", explain(&r));
    for s in [Stage::Dump, Stage::Encrypt, Stage::Upload] {
        assert_eq!(stage(&r, s).outcome, Outcome::Skipped);
    }
    let tool = r.dump_tool.clone().unwrap_or_default();
    assert!(tool.starts_with("restic 0."), "{tool}");
    assert!(
        tool.contains(&ids[2]),
        "latest is the newest snapshot: {tool}"
    );
    assert!(tool.contains("pg_dump custom"), "{tool}");
    let version = r.source_version.clone().unwrap_or_default();
    assert!(
        version.starts_with("postgres 15."),
        "the dump's header picked the image: {version}"
    );
    let a = r.artifact.clone().unwrap();
    assert_eq!(
        a.sha256.len(),
        64,
        "the dump was hashed as it streamed: {a:?}"
    );

    let tagged = restic_drill(
        &fx,
        "restic-weekly",
        repo.to_str().unwrap(),
        "tag = \"weekly\"",
        "",
    );
    let r = run(&tagged, RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Passed, "{}", explain(&r));
    assert!(r.dump_tool.clone().unwrap_or_default().contains(&ids[0]));

    let random = restic_drill(
        &fx,
        "restic-random",
        repo.to_str().unwrap(),
        "snapshot = \"random\"\nwithin = \"7d\"",
        "",
    );
    let r = run(&random, RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Passed, "{}", explain(&r));
    let tool = r.dump_tool.clone().unwrap_or_default();
    assert!(
        ids.iter().any(|id| tool.contains(id.as_str())) && tool.contains("at random"),
        "{tool}"
    );

    // Read-only: no lock, no cache, no file touched.
    assert_eq!(tree(&repo), before, "the drills wrote to the repository");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restic_repository_on_s3_drills_and_the_catalog_lists_its_snapshots() {
    set_passwords();
    create_db("fd_snap_s3", SHOP).await;
    let s3 = s3_from_env_file(None);
    let fx = Fixture::new();
    let repo = format!(
        "s3:{}/{}/restic-{:08x}",
        s3.endpoint,
        s3.bucket,
        rand::random::<u32>()
    );
    let aws = [
        ("AWS_ACCESS_KEY_ID", s3.key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret.as_str()),
        ("AWS_DEFAULT_REGION", s3.region.as_str()),
    ];
    let ids = restic_repo(&repo, "fd_snap_s3", &aws);
    let path = restic_drill(
        &fx,
        "restic-s3",
        &repo,
        r#"env = { AWS_ACCESS_KEY_ID = { env = "FIREDRILL_TEST_S3_KEY_ID" }, AWS_SECRET_ACCESS_KEY = { env = "FIREDRILL_TEST_S3_SECRET" }, AWS_DEFAULT_REGION = { env = "FIREDRILL_TEST_S3_REGION" } }"#,
        "",
    );
    let catalog = fx.dir.path().join("catalog.db");
    let bin = env!("CARGO_BIN_EXE_firedrill");
    let out = std::process::Command::new(bin)
        .args(["--catalog", catalog.to_str().unwrap(), "run", "--quiet"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Drill an older one by its id too.
    let out = std::process::Command::new(bin)
        .args([
            "--catalog",
            catalog.to_str().unwrap(),
            "run",
            "--quiet",
            "--artifact",
            &ids[0],
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(bin)
        .args([
            "--catalog",
            catalog.to_str().unwrap(),
            "snapshots",
            "--json",
            "--drills-dir",
        ])
        .arg(fx.dir.path())
        .arg("restic-s3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let by_label = |id: &str| rows.iter().find(|r| r["label"] == id).unwrap().clone();
    assert_eq!(by_label(&ids[2])["verified"], "yes");
    assert_eq!(by_label(&ids[2])["last_verified"], true);
    assert_eq!(by_label(&ids[0])["verified"], "yes");
    assert_eq!(by_label(&ids[0])["last_verified"], false);
    assert_eq!(by_label(&ids[1])["verified"], "never");
    // And `artifacts` has them, from the catalog.
    let out = std::process::Command::new(bin)
        .args([
            "--catalog",
            catalog.to_str().unwrap(),
            "artifacts",
            "--json",
            "restic-s3",
        ])
        .output()
        .unwrap();
    let arts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(arts.len(), 2, "{arts:?}");
    assert!(arts.iter().all(|a| a["verified"] == "yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_restic_backups_fail_at_the_right_stage_and_nothing_is_written() {
    set_passwords();
    create_db("fd_snap_broken", SHOP).await;
    let fx = Fixture::new();

    // A wrong password: the drill could not run (exit 2), before any stage.
    let repo = fx.dir.path().join("restic");
    restic_repo(repo.to_str().unwrap(), "fd_snap_broken", &[]);
    std::env::set_var("FD_TEST_RESTIC_WRONG", "not the password");
    let path = fx.write_drill(
        "restic-wrong",
        &format!(
            "[source]\ntype = \"restic\"\nrepository = \"{}\"\npassword = {{ env = \"FD_TEST_RESTIC_WRONG\" }}\ndatabase = \"shop\"",
            repo.display()
        ),
        "1GiB",
        "",
    );
    let before = tree(&repo);
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(r.exit_code, 2, "{}", explain(&r));
    let e = r.error.clone().unwrap();
    assert!(e.message.contains("password is wrong"), "{e:?}");
    assert_eq!(tree(&repo), before);

    // A dump cut short: pg_restore meets its end, a broken backup at restore (exit 1).
    let cut = fx.dir.path().join("restic-cut");
    script(
        r#"export RESTIC_REPOSITORY="$1"
restic init -q
pg_dump -Fc -Z0 -d "$2" > "$1.full"
head -c $(( $(stat -c %s "$1.full") / 2 )) "$1.full" | restic backup -q --stdin --stdin-filename shop.dump
rm "$1.full""#,
        &[cut.to_str().unwrap(), "fd_snap_broken"],
    );
    let path = restic_drill(&fx, "restic-cut", cut.to_str().unwrap(), "", "");
    let before = tree(&cut);
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(
        (r.verdict, r.exit_code),
        (Verdict::Failed, 1),
        "{}",
        explain(&r)
    );
    assert_eq!(r.failed_stage, Some(Stage::Restore), "{}", explain(&r));
    assert_eq!(tree(&cut), before);

    // A pack deleted: restic cannot read the dump while the snapshot still names it.
    // The newest snapshot gets data of its own (more rows), and its new packs go.
    let old: std::collections::BTreeSet<PathBuf> = tree(&repo.join("data")).into_keys().collect();
    script(
        r#"export RESTIC_REPOSITORY="$1"
psql -q -d "$2" -c "insert into customers (name) select 'late ' || g from generate_series(1, 20000) g"
pg_dump -Fc -Z0 -d "$2" | restic backup -q --stdin --stdin-filename shop.dump --tag nightly"#,
        &[repo.to_str().unwrap(), "fd_snap_broken"],
    );
    let new: Vec<PathBuf> = tree(&repo.join("data"))
        .into_keys()
        .filter(|p| !old.contains(p))
        .collect();
    assert!(!new.is_empty(), "the last backup wrote no pack");
    for p in &new {
        std::fs::remove_file(p).unwrap();
    }
    let path = restic_drill(&fx, "restic-damaged", repo.to_str().unwrap(), "", "");
    let before = tree(&repo);
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(
        (r.verdict, r.exit_code),
        (Verdict::Failed, 1),
        "{}",
        explain(&r)
    );
    assert_eq!(r.failed_stage, Some(Stage::Restore), "{}", explain(&r));
    let why = stage_error(&r, Stage::Restore);
    assert!(
        why.contains("damaged") && why.contains("restic check --read-data"),
        "{why}"
    );
    assert_eq!(tree(&repo), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_forgotten_while_the_drill_reads_it_is_chosen_again_not_paged() {
    set_passwords();
    create_db("fd_snap_forget", SHOP).await;
    let fx = Fixture::new();
    let repo = fx.dir.path().join("restic");
    let ids = restic_repo(repo.to_str().unwrap(), "fd_snap_forget", &[]);
    // The repository's owner runs `forget --prune` of the newest snapshot just as the
    // drill starts reading it: restic itself, wrapped, on the first `dump` only.
    let wrapper = fx.dir.path().join("restic-owner-prunes");
    let marker = fx.dir.path().join("pruned");
    std::fs::write(
        &wrapper,
        format!(
            r#"#!/bin/sh
if [ "$1" = dump ] && [ ! -e {marker} ]; then
  touch {marker}
  restic forget -q --prune {newest} >/dev/null 2>&1
fi
exec restic "$@"
"#,
            marker = marker.display(),
            newest = ids[2]
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = restic_drill(
        &fx,
        "restic-forgotten",
        repo.to_str().unwrap(),
        &format!("tool = \"{}\"", wrapper.display()),
        "",
    );
    let r = run(&path, RunOptions::default()).await;
    assert!(marker.exists(), "the owner's prune ran");
    assert_eq!(r.verdict, Verdict::Passed, "{}", explain(&r));
    let tool = r.dump_tool.clone().unwrap_or_default();
    assert!(
        tool.contains(&ids[1]),
        "the newest left was drilled instead: {tool}"
    );
}

/// A Borg repository at `repo` (repokey-encrypted) with two archives of MariaDB database
/// `db` made by mariadb-dump.
fn borg_repo(repo: &str, db: &str) {
    script(
        &format!(
            r#"borg init -e repokey "$1"
for n in 1 2; do
  mariadb-dump -h 127.0.0.1 -P {port} -u firedrill --single-transaction --databases "$2" \
    | borg create --stdin-name shop.sql "$1::shop-$n" -
  sleep 1
done"#,
            port = my_port()
        ),
        &[repo, db],
    );
}

fn borg_drill(fx: &Fixture, name: &str, repo: &str, more: &str) -> PathBuf {
    borg_drill_of(fx, name, repo, "fd_snap_borg", more)
}

fn borg_drill_of(fx: &Fixture, name: &str, repo: &str, db: &str, more: &str) -> PathBuf {
    fx.write_drill(
        name,
        &format!(
            r#"[source]
type = "borg"
repository = "{repo}"
password = {{ env = "{BORG_PW}" }}
database = "{db}"
{more}"#
        ),
        "2GiB",
        &format!(
            r#"
[retry]
attempts = 2
backoff = "1s"

[[assertion]]
name = "the orders are back"
sql = "select count(*) from {db}.orders"
expect = "= 500"
"#
        ),
    )
}

const BORG_SHOP: &[&str] = &[
    "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(40))",
    "INSERT INTO orders SELECT seq, CONCAT('order ', seq) FROM seq_1_to_500",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borg_archives_restore_and_broken_ones_fail_with_their_cause() {
    set_passwords();
    create_my_db("fd_snap_borg", BORG_SHOP).await;
    let fx = Fixture::new();
    let repo = fx.dir.path().join("borg");
    borg_repo(repo.to_str().unwrap(), "fd_snap_borg");
    let before = tree(&repo);

    let path = borg_drill(&fx, "borg-latest", repo.to_str().unwrap(), "");
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Passed, "{}", explain(&r));
    let tool = r.dump_tool.clone().unwrap_or_default();
    assert!(
        tool.starts_with("borg 1.") && tool.contains("shop-2") && tool.contains("mysqldump SQL"),
        "{tool}"
    );
    assert!(r
        .source_version
        .clone()
        .unwrap_or_default()
        .starts_with("mariadb 10.11"));

    let path = borg_drill(
        &fx,
        "borg-random",
        repo.to_str().unwrap(),
        "snapshot = \"random\"\narchive = \"shop-*\"",
    );
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Passed, "{}", explain(&r));
    assert_eq!(tree(&repo), before, "the drills wrote to the repository");

    // A wrong passphrase: exit 2, named.
    std::env::set_var("FD_TEST_BORG_WRONG", "not it");
    let path = fx.write_drill(
        "borg-wrong",
        &format!(
            "[source]\ntype = \"borg\"\nrepository = \"{}\"\npassword = {{ env = \"FD_TEST_BORG_WRONG\" }}\ndatabase = \"x\"",
            repo.display()
        ),
        "1GiB",
        "",
    );
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(r.exit_code, 2, "{}", explain(&r));
    assert!(r
        .error
        .clone()
        .unwrap()
        .message
        .contains("password is wrong"));

    // A dump cut short: it restores without an error as far as it goes, and fails as cut
    // short.
    let cut = fx.dir.path().join("borg-cut");
    script(
        &format!(
            r#"borg init -e repokey "$1"
mariadb-dump -h 127.0.0.1 -P {port} -u firedrill --single-transaction --databases "$2" > "$1.full"
head -n -3 "$1.full" | borg create --stdin-name shop.sql "$1::shop-1" -
rm "$1.full""#,
            port = my_port()
        ),
        &[cut.to_str().unwrap(), "fd_snap_borg"],
    );
    let path = borg_drill(&fx, "borg-cut", cut.to_str().unwrap(), "");
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(
        (r.verdict, r.exit_code),
        (Verdict::Failed, 1),
        "{}",
        explain(&r)
    );
    assert_eq!(r.failed_stage, Some(Stage::Restore));
    let why = stage_error(&r, Stage::Restore);
    assert!(why.contains("cut short"), "{why}");

    // A segment deleted: the archive is still listed, its data is gone. The newest
    // archive gets data of its own, the manifest then moves on to a later segment (a
    // rename), and the segments the archive was written to go.
    let old: std::collections::BTreeSet<PathBuf> = tree(&repo.join("data")).into_keys().collect();
    script(
        &format!(
            r#"mariadb -h 127.0.0.1 -P {port} -u firedrill "$2" -e "insert into orders select seq, 'late' from seq_501_to_5000"
mariadb-dump -h 127.0.0.1 -P {port} -u firedrill --single-transaction --databases "$2" \
  | borg create --stdin-name shop.sql "$1::shop-3" -"#,
            port = my_port()
        ),
        &[repo.to_str().unwrap(), "fd_snap_borg"],
    );
    let new: Vec<PathBuf> = tree(&repo.join("data"))
        .into_keys()
        .filter(|p| !old.contains(p))
        .collect();
    script(
        r#"borg rename "$1::shop-1" shop-1-renamed"#,
        &[repo.to_str().unwrap()],
    );
    assert!(!new.is_empty(), "the last archive wrote no segment");
    for p in &new {
        std::fs::remove_file(p).unwrap();
    }
    let path = borg_drill(&fx, "borg-damaged", repo.to_str().unwrap(), "");
    let before = tree(&repo);
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(
        (r.verdict, r.exit_code),
        (Verdict::Failed, 1),
        "{}",
        explain(&r)
    );
    assert_eq!(r.failed_stage, Some(Stage::Restore), "{}", explain(&r));
    let why = stage_error(&r, Stage::Restore);
    assert!(
        why.contains("damaged") && why.contains("borg check --read-data"),
        "{why}"
    );
    assert_eq!(tree(&repo), before);
}

/// An sshd on loopback that lets this user in with a key of the test's own.
struct Sshd {
    child: std::process::Child,
    port: u16,
    key: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd(dir: &Path) -> Sshd {
    let d = dir.join("sshd");
    std::fs::create_dir_all(&d).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    script(
        r#"ssh-keygen -q -t ed25519 -N '' -f "$1/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$1/client_key"
cp "$1/client_key.pub" "$1/authorized_keys"
chmod 600 "$1/authorized_keys"
# sshd run by root needs its privilege separation directory; as another user it does not.
mkdir -p /run/sshd 2>/dev/null || true"#,
        &[d.to_str().unwrap()],
    );
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {dir}/host_key\nAuthorizedKeysFile {dir}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n",
            dir = d.display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start sshd (Debian: openssh-server)");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Sshd {
        child,
        port,
        key: d.join("client_key"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_borg_repository_over_ssh_drills() {
    set_passwords();
    create_my_db("fd_snap_borg_ssh", BORG_SHOP).await;
    let fx = Fixture::new();
    let repo = fx.dir.path().join("borg-remote");
    borg_repo(repo.to_str().unwrap(), "fd_snap_borg_ssh");
    let sshd = sshd(fx.dir.path());
    let user = script("id -un", &[]).trim().to_string();
    let url = format!("ssh://{user}@127.0.0.1:{}{}", sshd.port, repo.display());
    let rsh = format!(
        "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
        sshd.key.display()
    );
    let before = tree(&repo);
    let path = borg_drill_of(
        &fx,
        "borg-ssh",
        &url,
        "fd_snap_borg_ssh",
        &format!("rsh = \"{rsh}\""),
    );
    let r = run(&path, RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Passed, "{}", explain(&r));
    assert!(r.artifact.clone().unwrap().location.contains("ssh://"));
    assert_eq!(tree(&repo), before, "the drill wrote to the repository");
}
