//! pgBackRest: what `info` says of a stanza, judged (a cipher key that does not open the
//! repository is named as such, not as "no backup set found"); which backup set a
//! target needs; what `verify` reports (it exits 0 even when it finds damage); and the
//! commands firedrill runs on this host (`info`, `repo-ls`, `backup`).

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use crate::config::{BackupType, PgbackrestS3, PgbackrestSpec};
use crate::error::{Error, Result};
use crate::secret::Secret;

use super::wal::Archive;

/// One stanza of `pgbackrest info --output=json`.
#[derive(Debug, Clone, Deserialize)]
pub struct StanzaInfo {
    pub name: String,
    pub status: Status,
    #[serde(default)]
    pub cipher: String,
    #[serde(default)]
    pub repo: Vec<RepoStatus>,
    #[serde(default)]
    pub backup: Vec<BackupSet>,
    #[serde(default)]
    pub archive: Vec<ArchiveRange>,
    #[serde(default)]
    pub db: Vec<DbInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub code: i64,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RepoStatus {
    pub key: u32,
    #[serde(default)]
    pub cipher: String,
    pub status: Status,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BackupSet {
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: Span<i64>,
    pub archive: Span<Option<String>>,
    pub database: DbRef,
    /// pgBackRest found invalid page checksums while taking it.
    #[serde(default)]
    pub error: Option<bool>,
    #[serde(default)]
    pub prior: Option<String>,
    /// The sets whose files this one uses (an incremental's full and prior ones).
    #[serde(default)]
    pub reference: Option<Vec<String>>,
}

impl BackupSet {
    pub fn stopped_at(&self) -> jiff::Timestamp {
        jiff::Timestamp::from_second(self.timestamp.stop).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// The first moment a recovery from this set can stop at. pgBackRest keeps the stop
    /// to the second, cut down, and the set's consistency point can fall late in that
    /// second: a time target inside it may stop before the set is consistent, which the
    /// server refuses ("requested recovery stop point is before consistent recovery
    /// point"). The end of the stop's second is safe.
    pub fn consistent_by(&self) -> jiff::Timestamp {
        jiff::Timestamp::from_second(self.timestamp.stop.saturating_add(1))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Span<T> {
    pub start: T,
    pub stop: T,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DbRef {
    pub id: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ArchiveRange {
    /// `15-1`: the directory under `archive/<stanza>/`.
    pub id: String,
    pub database: DbRef,
    #[serde(default)]
    pub min: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DbInfo {
    pub id: u32,
    pub version: String,
}

/// Parses `pgbackrest info --output=json`.
pub fn parse_info(json: &str) -> Result<Vec<StanzaInfo>> {
    // pgBackRest prints one line of JSON, and quotes an info file it could not read
    // (one a wrong key decrypted to garbage) with its raw control characters.
    let json: String = json
        .trim()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    serde_json::from_str(&json).map_err(|e| {
        Error::infra(format!("cannot read pgbackrest info's JSON: {e}"))
            .with_hint("is the pgbackrest on this host 2.x? `pgbackrest info --output=json` must print a list of stanzas")
            .retryable(false)
    })
}

/// The stanza's state, judged: its info, or the error that names why it cannot be
/// drilled.
pub fn judge<'a>(spec: &PgbackrestSpec, infos: &'a [StanzaInfo]) -> Result<&'a StanzaInfo> {
    let repo = spec.repository();
    let Some(info) = infos.iter().find(|i| i.name == spec.stanza) else {
        return Err(Error::config(format!(
            "pgBackRest's repository {repo} has no stanza `{}`",
            spec.stanza
        ))
        .with_hint("check source.stanza and source.repo_path against `pgbackrest info`"));
    };
    // A repository that cannot be read says why per repository; a wrong cipher key shows
    // as an info file that does not parse (or decrypt).
    for r in &info.repo {
        if r.status.code == 0 {
            continue;
        }
        let msg = r.status.message.trim();
        let encrypted = r.cipher != "none" && !r.cipher.is_empty();
        let unreadable = msg.contains("FormatError") || msg.contains("CryptoError");
        if unreadable && encrypted {
            return Err(Error::config(format!(
                "the cipher key does not open pgBackRest's repository {repo} ({}): its info files do not decrypt",
                r.cipher
            ))
            .with_hint(match &spec.cipher {
                Some(_) => "source.cipher_pass is not the repository's repo1-cipher-pass: give the passphrase the stanza was created with",
                None => "the repository is encrypted: give its passphrase as source.cipher_pass",
            })
            .with_stderr(first_lines(msg, 3)));
        }
        if msg.contains("Permission denied") {
            return Err(Error::config(format!(
                "pgBackRest cannot read the repository {repo}: permission denied"
            ))
            .with_hint("run firedrill as a user in the repository's group (pgBackRest makes its files 0640), or set source.command to run pgbackrest as the repository's owner")
            .with_stderr(first_lines(msg, 3)));
        }
    }
    match info.status.code {
        0 => Ok(info),
        1 => Err(Error::config(format!(
            "the repository {repo} holds nothing of stanza `{}` (missing stanza path)",
            spec.stanza
        ))
        .with_hint("check source.repo_path and source.stanza; a new stanza needs `pgbackrest stanza-create`")),
        2 => Err(Error::backup(format!(
            "stanza `{}` in {repo} has no valid backup",
            spec.stanza
        ))
        .with_hint("the backups this drill relies on are missing: run `pgbackrest --stanza=… backup` and find out why none exists")),
        _ if !info.backup.is_empty() => Ok(info),
        code => Err(Error::backup(format!(
            "pgBackRest reports stanza `{}` in {repo} as unusable (status {code}: {})",
            spec.stanza, info.status.message
        ))
        .with_hint("run `pgbackrest info` for the details")),
    }
}

/// The first `n` lines of a message.
fn first_lines(s: &str, n: usize) -> String {
    s.lines().take(n).collect::<Vec<_>>().join("\n")
}

/// The major version of the database the backup set is of (`15`).
pub fn set_major(info: &StanzaInfo, set: &BackupSet) -> Option<String> {
    info.db.iter().find(|d| d.id == set.database.id).map(|d| {
        d.version
            .split('.')
            .next()
            .unwrap_or(&d.version)
            .to_string()
    })
}

/// The archive directory (`15-1`) holding the set's WAL.
pub fn archive_id(info: &StanzaInfo, set: &BackupSet) -> Option<String> {
    info.archive
        .iter()
        .find(|a| a.database.id == set.database.id)
        .map(|a| a.id.clone())
        .or_else(|| set_major(info, set).map(|m| format!("{m}-{}", set.database.id)))
}

/// The backup set a drill restores: the one named, or the newest consistent by `before`
/// (a time target), or the newest. A time before every backup's consistency is outside
/// the window.
pub fn choose<'a>(
    info: &'a StanzaInfo,
    label: Option<&str>,
    before: Option<jiff::Timestamp>,
) -> Result<&'a BackupSet> {
    let mut sets: Vec<&BackupSet> = info.backup.iter().collect();
    sets.sort_by_key(|s| s.timestamp.stop);
    if let Some(label) = label {
        return sets
            .iter()
            .find(|s| s.label == label)
            .copied()
            .ok_or_else(|| {
                Error::config(format!("stanza `{}` has no backup set {label}", info.name))
                    .with_hint(format!(
                        "name one of {}, or set source.set = \"latest\"",
                        sets.iter()
                            .rev()
                            .take(5)
                            .map(|s| s.label.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
            });
    }
    let Some(newest) = sets.last() else {
        return Err(
            Error::backup(format!("stanza `{}` has no backup set", info.name))
                .with_hint("run a backup, and find out why the scheduled ones are missing"),
        );
    };
    match before {
        None => Ok(newest),
        Some(at) => sets
            .iter()
            .rev()
            .find(|s| s.consistent_by() <= at)
            .copied()
            .ok_or_else(|| {
                Error::config(format!(
                    "target time {at} is outside the recovery window: the oldest backup ({}) is consistent from {}",
                    sets[0].label,
                    sets[0].consistent_by()
                ))
                .with_hint("choose a target time after the oldest backup is consistent, or keep backups longer")
            }),
    }
}

/// What `pgbackrest verify` found wrong, from its output (it exits 0 whatever it found):
/// the files it names, then its summary lines.
pub fn verify_problems(out: &str) -> Vec<String> {
    let mut named = Vec::new();
    let mut summary = Vec::new();
    let mut in_error = false;
    for line in out.lines() {
        // Drop the log prefix: `2026-12-01 09:28:23.585 P01   INFO: `.
        let text = match line.find(": ") {
            Some(i)
                if line[..i].ends_with("INFO")
                    || line[..i].ends_with("WARN")
                    || line[..i].ends_with("ERROR") =>
            {
                &line[i + 2..]
            }
            _ => line,
        };
        let t = text.trim();
        if t.starts_with("invalid checksum")
            || t.starts_with("invalid file")
            || t.starts_with("file missing")
            || t.starts_with("invalid size")
            || t.starts_with("invalid result")
            || t.contains("unable to")
        {
            named.push(t.to_string());
            continue;
        }
        if t.starts_with("status: ") {
            in_error = t != "status: ok";
            continue;
        }
        if in_error && !t.is_empty() && !t.starts_with("stanza:") && !t.contains("command end") {
            summary.push(t.to_string());
        }
    }
    named.extend(summary);
    named
}

/// pgBackRest on this host: how firedrill runs it, with the repository's settings and
/// secret in its environment (never on its command line).
pub struct Host {
    command: Vec<String>,
    config: Option<std::path::PathBuf>,
    stanza: String,
    repo_path: std::path::PathBuf,
    cipher: Option<(String, Secret)>,
    /// An S3 repository: its settings, access key id and secret key.
    s3: Option<(PgbackrestS3, Secret, Secret)>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("command", &self.command)
            .field("stanza", &self.stanza)
            .field("repo_path", &self.repo_path)
            .field("s3", &self.s3.as_ref().map(|s| &s.0))
            .finish_non_exhaustive()
    }
}

/// A file of the repository: its path under the repository's root and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    pub path: String,
    pub size: u64,
}

impl Host {
    pub fn new(spec: &PgbackrestSpec, base: &std::path::Path) -> Result<Host> {
        let cipher = match &spec.cipher {
            Some((kind, pass)) => Some((
                kind.clone(),
                pass.load(base)
                    .map_err(|e| e.context("source.cipher_pass"))?,
            )),
            None => None,
        };
        let s3 = match &spec.s3 {
            Some(s3) => Some((
                s3.clone(),
                s3.access_key_id
                    .load(base)
                    .map_err(|e| e.context("source.s3.access_key_id"))?,
                s3.secret_access_key
                    .load(base)
                    .map_err(|e| e.context("source.s3.secret_access_key"))?,
            )),
            None => None,
        };
        Ok(Host {
            command: spec.command.clone(),
            config: spec.config.clone(),
            stanza: spec.stanza.clone(),
            repo_path: spec.repo_path.clone(),
            cipher,
            s3,
        })
    }

    /// Whether the repository is in a bucket (its files are copied into the sandbox)
    /// rather than a directory of this host (mounted).
    pub fn in_bucket(&self) -> bool {
        self.s3.is_some()
    }

    /// The repository settings for a pgbackrest.conf in the sandbox, where the
    /// repository is mounted at `repo` and the server's data is `data`: the passphrase
    /// goes there, in the sandbox's memory, never in an environment or argv.
    pub fn sandbox_conf(&self, repo: &str, data: &str) -> Secret {
        let mut s = format!(
            "[global]\nrepo1-path={repo}\nlock-path=/tmp/pgbackrest\nlog-path=/tmp\nlog-level-file=off\nlog-level-console=warn\nspool-path=/tmp\n"
        );
        if let Some((kind, pass)) = &self.cipher {
            s.push_str(&format!(
                "repo1-cipher-type={kind}\nrepo1-cipher-pass={}\n",
                pass.expose()
            ));
        }
        s.push_str(&format!("\n[{}]\npg1-path={data}\n", self.stanza));
        Secret::new(s)
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.command[0]);
        c.args(&self.command[1..]);
        if let Some(conf) = &self.config {
            c.arg(format!("--config={}", conf.display()));
        }
        c.arg(format!("--stanza={}", self.stanza))
            .arg(format!("--repo1-path={}", self.repo_path.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Settings of pgBackRest's that firedrill's own environment must not bring in.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PGBACKREST_") {
                c.env_remove(k);
            }
        }
        if let Some((kind, pass)) = &self.cipher {
            c.env("PGBACKREST_REPO1_CIPHER_TYPE", kind);
            c.env("PGBACKREST_REPO1_CIPHER_PASS", pass.expose());
        }
        if let Some((s3, key, secret)) = &self.s3 {
            c.env("PGBACKREST_REPO1_TYPE", "s3")
                .env("PGBACKREST_REPO1_S3_BUCKET", &s3.bucket)
                .env("PGBACKREST_REPO1_S3_REGION", &s3.region)
                .env("PGBACKREST_REPO1_S3_ENDPOINT", &s3.host)
                .env("PGBACKREST_REPO1_STORAGE_PORT", s3.port.to_string())
                .env("PGBACKREST_REPO1_S3_URI_STYLE", &s3.uri_style)
                .env("PGBACKREST_REPO1_S3_KEY", key.expose())
                .env("PGBACKREST_REPO1_S3_KEY_SECRET", secret.expose());
            if let Some(ca) = &s3.ca_file {
                c.env("PGBACKREST_REPO1_STORAGE_CA_FILE", ca);
            }
        }
        c
    }

    /// Runs pgbackrest to its end within `limit`: its stdout, or the error naming what
    /// it printed.
    async fn run(&self, what: &str, args: &[&str], limit: Duration) -> Result<String> {
        let child = self.command(args).spawn().map_err(|e| {
            Error::config(format!("cannot run {}: {e}", self.command[0])).with_hint(
                if e.kind() == std::io::ErrorKind::NotFound {
                    "install pgBackRest on this host (Debian: apt-get install pgbackrest), or give its path in source.command"
                } else {
                    "check that firedrill's user may run it"
                },
            )
        })?;
        let out = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| {
                Error::infra(format!(
                    "pgbackrest {what} did not finish within {}",
                    humantime::format_duration(limit)
                ))
                .with_hint("the repository is slow or locked; try the same command by hand")
            })?
            .map_err(|e| Error::infra(format!("pgbackrest {what}: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let said = format!("{stdout}\n{stderr}");
            return Err(classify(what, out.status.code(), said.trim()));
        }
        Ok(stdout)
    }

    /// `pgbackrest info --output=json`, parsed.
    pub async fn info(&self, limit: Duration) -> Result<Vec<StanzaInfo>> {
        let out = self
            .run(
                "info",
                &[
                    "--log-level-console=error",
                    "--log-level-stderr=off",
                    "--output=json",
                    "info",
                ],
                limit,
            )
            .await?;
        parse_info(&out)
    }

    /// The WAL the archive `archive_id` holds (`repo-ls --recurse`).
    pub async fn archive(&self, archive_id: &str, limit: Duration) -> Result<Archive> {
        let path = format!("archive/{}/{archive_id}", self.stanza);
        let out = self
            .run(
                "repo-ls",
                &[
                    "--log-level-console=error",
                    "--log-level-stderr=off",
                    "--output=json",
                    "--recurse",
                    "repo-ls",
                    &path,
                ],
                limit,
            )
            .await?;
        parse_listing(&out)
    }

    /// The files in `dir` of the repository (`backup/main/20261201-092810F`), and with
    /// `recurse` in its subdirectories, with their sizes (`repo-ls`).
    pub async fn files(&self, dir: &str, recurse: bool, limit: Duration) -> Result<Vec<RepoFile>> {
        let mut args = vec![
            "--log-level-console=error",
            "--log-level-stderr=off",
            "--output=json",
        ];
        if recurse {
            args.push("--recurse");
        }
        args.extend(["repo-ls", dir]);
        let out = self.run("repo-ls", &args, limit).await?;
        parse_files(dir, &out)
    }

    /// `repo-get --raw`: the file's bytes as the repository stores them (still
    /// encrypted; the sandbox's pgBackRest decrypts), as they come.
    pub fn get_raw(&self, path: &str) -> Result<tokio::process::Child> {
        let full = format!(
            "{}/{path}",
            self.repo_path.display().to_string().trim_end_matches('/')
        );
        let mut c = self.command(&[
            "--log-level-console=error",
            "--log-level-stderr=error",
            "--raw",
            "repo-get",
            &full,
        ]);
        c.spawn().map_err(|e| {
            Error::config(format!("cannot run {}: {e}", self.command[0]))
                .with_hint("install pgBackRest on this host (Debian: apt-get install pgbackrest), or give its path in source.command")
        })
    }

    /// Takes a backup of `kind`; what pgBackRest warned of (invalid page checksums).
    pub async fn backup(&self, kind: BackupType, limit: Duration) -> Result<Vec<String>> {
        let out = self
            .run(
                "backup",
                &[
                    "--log-level-console=warn",
                    "--log-level-stderr=off",
                    &format!("--type={}", kind.as_str()),
                    "backup",
                ],
                limit,
            )
            .await?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("WARN:"))
            .map(|l| l.trim_start_matches("WARN:").trim().to_string())
            .collect())
    }
}

/// Parses `repo-ls --output=json --recurse` of `dir`: its files, named from the
/// repository's root.
pub fn parse_files(dir: &str, json: &str) -> Result<Vec<RepoFile>> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        size: Option<u64>,
    }
    let entries: std::collections::BTreeMap<String, Entry> =
        serde_json::from_str(json).map_err(|e| {
            Error::infra(format!("cannot read pgbackrest repo-ls's JSON: {e}")).retryable(false)
        })?;
    let dir = dir.trim_matches('/');
    Ok(entries
        .into_iter()
        .filter(|(name, e)| e.kind == "file" && name != ".")
        .map(|(name, e)| RepoFile {
            path: format!("{dir}/{name}"),
            size: e.size.unwrap_or(0),
        })
        .collect())
}

/// Parses `repo-ls --output=json --recurse` of an archive directory.
pub fn parse_listing(json: &str) -> Result<Archive> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        time: Option<i64>,
    }
    let entries: std::collections::BTreeMap<String, Entry> =
        serde_json::from_str(json).map_err(|e| {
            Error::infra(format!("cannot read pgbackrest repo-ls's JSON: {e}")).retryable(false)
        })?;
    let mut archive = Archive::default();
    for (path, e) in entries {
        if e.kind != "file" {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(&path);
        archive.add(
            name,
            e.time.and_then(|t| jiff::Timestamp::from_second(t).ok()),
        );
    }
    Ok(archive)
}

/// A failed pgbackrest run, named by what it printed (`ERROR: [075]: …`).
pub fn classify(what: &str, code: Option<i32>, said: &str) -> Error {
    let error_line = said
        .lines()
        .find(|l| l.trim_start().starts_with("ERROR:"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| {
            format!(
                "exit {}",
                code.map_or("by signal".into(), |c| c.to_string())
            )
        });
    let printed: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
    let stderr = crate::engine::tail(&printed.join("\n"), 12);
    let e = if said.contains("[050]") || said.contains("unable to acquire lock") {
        Error::infra(format!(
            "pgbackrest {what}: another pgBackRest command holds the stanza's lock ({error_line})"
        ))
        .with_hint("a backup or expire is running; the next attempt waits for it")
    } else if said.contains("[056]")
        || said.contains("unable to find primary")
        || said.contains("could not connect")
    {
        Error::infra(format!("pgbackrest {what} cannot reach the database server: {error_line}"))
            .with_hint("check that PostgreSQL runs and pg1-path, pg1-port and pg1-socket-path in pgBackRest's configuration point at it")
    } else if said.contains("[082]")
        || said.contains("WAL segment") && said.contains("was not archived")
    {
        Error::backup(format!("pgbackrest {what}: the server's WAL is not being archived: {error_line}"))
            .with_hint("check archive_mode = on and archive_command = 'pgbackrest --stanza=… archive-push %p' on the server, and `pgbackrest check`")
            .retryable(false)
    } else if said.contains("[041]") || said.contains("Permission denied") {
        Error::config(format!("pgbackrest {what}: permission denied: {error_line}"))
            .with_hint("run pgbackrest as the repository's owner (source.command = [\"runuser\", \"-u\", \"postgres\", \"--\", \"pgbackrest\"]) or give firedrill's user the repository's group")
    } else {
        Error::backup(format!("pgbackrest {what} failed: {error_line}"))
            .with_hint(
                "read pgBackRest's message below; `pgbackrest check` tests the stanza end to end",
            )
            .retryable(false)
    };
    e.with_stderr(stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000002","min":"000000010000000000000001"}],"backup":[{"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":23066304,"repository":{"delta":3084240,"size":3084240},"size":23066304},"label":"20261201-092810F","lsn":{"start":"0/2000028","stop":"0/2000100"},"prior":null,"reference":null,"timestamp":{"start":1796117290,"stop":1796117293},"type":"full"}],"cipher":"aes-256-cbc","db":[{"id":1,"repo-key":1,"system-id":7714265015500353246,"version":"15"}],"name":"main","repo":[{"cipher":"aes-256-cbc","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;

    const WRONG_KEY: &str = r#"[{"archive":[],"backup":[],"cipher":"aes-256-cbc","db":[],"name":"main","repo":[{"cipher":"aes-256-cbc","key":1,"status":{"code":99,"message":"[FormatError] unable to load info file '/tmp/pbr/repo/backup/main/backup.info' or '/tmp/pbr/repo/backup/main/backup.info.copy':\nFormatError: key/value found outside of section at line 1: 9;\nHINT: backup.info cannot be opened and is required to perform a backup."}}],"status":{"code":99,"lock":{"backup":{"held":false}},"message":"other"}}]"#;

    fn spec(cipher: bool) -> PgbackrestSpec {
        PgbackrestSpec {
            stanza: "main".into(),
            repo_path: "/srv/pgbackrest".into(),
            s3: None,
            config: None,
            command: vec!["pgbackrest".into()],
            cipher: cipher.then(|| {
                (
                    "aes-256-cbc".into(),
                    crate::secret::SecretSource::Env { env: "X".into() },
                )
            }),
            backup: None,
            set: None,
            target: crate::config::RecoveryTarget::Latest,
            server: None,
        }
    }

    #[test]
    fn info_is_read_and_a_set_chosen() {
        let infos = parse_info(INFO).unwrap();
        let info = judge(&spec(true), &infos).unwrap();
        let set = choose(info, None, None).unwrap();
        assert_eq!(set.label, "20261201-092810F");
        assert_eq!(set_major(info, set).as_deref(), Some("15"));
        assert_eq!(archive_id(info, set).as_deref(), Some("15-1"));
        let before = jiff::Timestamp::from_second(1796117292).unwrap();
        let e = choose(info, None, Some(before)).unwrap_err();
        assert!(e.message.contains("outside the recovery window"), "{e}");
        // Inside the stop's second the set may not be consistent yet: still outside.
        let within_stop = jiff::Timestamp::from_millisecond(1_796_117_293_500).unwrap();
        assert!(choose(info, None, Some(within_stop)).is_err());
        let after = jiff::Timestamp::from_second(1796117294).unwrap();
        assert_eq!(
            choose(info, None, Some(after)).unwrap().label,
            "20261201-092810F"
        );
        assert!(choose(info, Some("20261130-000000F"), None).is_err());
    }

    #[test]
    fn a_wrong_cipher_key_is_named_not_no_backup_set() {
        // As pgBackRest prints it: the garbage quoted raw.
        let infos = parse_info(&WRONG_KEY.replace("9;", "9;\u{1}\u{7}\tP")).unwrap();
        let e = judge(&spec(true), &infos).unwrap_err();
        assert!(e.message.contains("cipher key does not open"), "{e}");
        assert_eq!(e.kind, crate::error::ErrorKind::Config);
        let e = judge(&spec(false), &infos).unwrap_err();
        assert!(e.hint.unwrap().contains("give its passphrase"));
        let e = judge(
            &PgbackrestSpec {
                stanza: "other".into(),
                ..spec(true)
            },
            &infos,
        )
        .unwrap_err();
        assert!(e.message.contains("no stanza `other`"), "{e}");
    }

    #[test]
    fn verify_damage_is_read_from_its_output() {
        let out = "2026-12-01 09:28:23.585 P01   INFO: invalid checksum '20261201-092810F/pg_data/base/5/2838.gz'\n2026-12-01 09:28:23.695 P00   INFO: stanza: main\n                                    status: error\n                                      backup: 20261201-092810F, status: invalid, total files checked: 967, total valid files: 966\n                                        checksum invalid: 1\n2026-12-01 09:28:23.695 P00   INFO: verify command end: completed successfully (293ms)";
        let p = verify_problems(out);
        assert_eq!(
            p[0],
            "invalid checksum '20261201-092810F/pg_data/base/5/2838.gz'"
        );
        assert!(p.iter().any(|l| l.contains("checksum invalid: 1")));
        let ok = "2026-12-01 09:29:07.551 P00   INFO: verify command begin 2.45: --stanza=main\n2026-12-01 09:29:07.758 P00   INFO: verify command end: completed successfully (210ms)";
        assert!(verify_problems(ok).is_empty());
    }

    #[test]
    fn an_archive_listing_is_read() {
        let json = r#"{".":{"type":"path"},"0000000100000000":{"type":"path"},"0000000100000000/000000010000000000000001-fd7b.gz":{"type":"file","size":1627920,"time":1796117291},"0000000100000000/000000010000000000000002-28db.gz":{"type":"file","size":16480,"time":1796117293},"0000000100000000/000000010000000000000002.00000028.backup":{"type":"file","size":400,"time":1796117293}}"#;
        let a = parse_listing(json).unwrap();
        assert_eq!(a.names.len(), 2);
        assert_eq!(a.newest_at, jiff::Timestamp::from_second(1796117293).ok());
    }
}
