//! Drills of physical backups: what a `source.type = "pgbackrest"` drill declares, checked
//! offline like the rest of the drill file.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{Collector, PostgresSpec};
use crate::config::raw::PgbackrestSourceConfig;
use crate::secret::SecretSource;

/// A pgBackRest backup type firedrill may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupType {
    Full,
    Diff,
    Incr,
}

impl BackupType {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Diff => "diff",
            BackupType::Incr => "incr",
        }
    }
}

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecoveryTarget {
    /// The end of the archived WAL.
    Latest,
    /// The restore point the run creates after its backup, where its fingerprint was
    /// taken.
    RestorePoint,
    /// A moment.
    Time { at: jiff::Timestamp },
    /// A restore point made by someone else (`pg_create_restore_point`).
    Name { name: String },
    /// A random moment in the recovery window ("pick a random tape").
    Random {
        #[serde(with = "super::opt_secs")]
        within: Option<Duration>,
    },
}

impl RecoveryTarget {
    /// How a person reads it: `latest`, `time 2026-…`, `restore point "x"`.
    pub fn describe(&self) -> String {
        match self {
            RecoveryTarget::Latest => "latest".into(),
            RecoveryTarget::RestorePoint => "this run's restore point".into(),
            RecoveryTarget::Time { at } => format!("time {at}"),
            RecoveryTarget::Name { name } => format!("restore point \"{name}\""),
            RecoveryTarget::Random { within: None } => "a random time in the window".into(),
            RecoveryTarget::Random { within: Some(w) } => format!(
                "a random time in the last {}",
                humantime::format_duration(*w)
            ),
        }
    }
}

/// A pgBackRest repository in S3, as pgBackRest's `repo1-s3-*` settings take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PgbackrestS3 {
    pub bucket: String,
    pub region: String,
    /// The endpoint's host name (no scheme, no port).
    pub host: String,
    pub port: u16,
    /// "host" or "path".
    pub uri_style: String,
    pub access_key_id: SecretSource,
    pub secret_access_key: SecretSource,
    /// Absolute (a relative one is read from the drill file's directory).
    pub ca_file: Option<PathBuf>,
}

/// A drill of a pgBackRest stanza's backups.
#[derive(Debug, Clone, Serialize)]
pub struct PgbackrestSpec {
    pub stanza: String,
    /// The repository: a directory on this host (absolute; mounted read-only into the
    /// sandbox), or the path in the bucket with `s3`.
    pub repo_path: PathBuf,
    /// The repository is in S3: what it needs is copied into the sandbox's volume.
    pub s3: Option<PgbackrestS3>,
    pub config: Option<PathBuf>,
    /// The program and the arguments before pgBackRest's own.
    pub command: Vec<String>,
    /// The cipher and its passphrase, for an encrypted repository.
    pub cipher: Option<(String, SecretSource)>,
    /// A backup firedrill takes first.
    pub backup: Option<BackupType>,
    /// A backup set by label; none: the newest that reaches the target.
    pub set: Option<String>,
    pub target: RecoveryTarget,
    /// The server the backups are of (its `database` is fingerprinted).
    pub server: Option<PostgresSpec>,
}

impl PgbackrestSpec {
    /// The repository as messages name it: its directory, or `s3://bucket/path at
    /// endpoint:port`.
    pub fn repository(&self) -> String {
        match &self.s3 {
            None => self.repo_path.display().to_string(),
            Some(s3) => format!(
                "s3://{}/{} at {}:{}",
                s3.bucket,
                self.repo_path.display().to_string().trim_start_matches('/'),
                s3.host,
                s3.port
            ),
        }
    }

    /// Whether the drill only reads what the stanza holds.
    pub fn verify_only(&self) -> bool {
        self.backup.is_none()
    }
}

const CIPHERS: [&str; 1] = ["aes-256-cbc"];

/// Checks a `source.type = "pgbackrest"` table.
pub(super) fn pgbackrest_source(
    c: &mut Collector<'_>,
    r: &PgbackrestSourceConfig,
    base_dir: &std::path::Path,
) -> PgbackrestSpec {
    let stanza_ok = !r.stanza.is_empty()
        && r.stanza
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.');
    if !stanza_ok {
        c.push(
            "source.stanza",
            format!("`{}` is not a stanza name", r.stanza),
            "write the stanza as pgBackRest's configuration names it, e.g. \"main\"",
        );
    }
    if r.repo_path.as_os_str().is_empty() {
        c.push(
            "source.repo_path",
            "the repository path is empty",
            "write the repository's directory on this host (pgBackRest's repo1-path), e.g. \"/var/lib/pgbackrest\"",
        );
    }
    let resolve = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base_dir.join(p)
        }
    };
    let command = r
        .command
        .clone()
        .unwrap_or_else(|| vec!["pgbackrest".to_string()]);
    if command.is_empty() || command.iter().any(|a| a.trim().is_empty()) {
        c.push(
            "source.command",
            "the command is empty or has an empty argument",
            "leave it out (pgbackrest on the PATH), or write e.g. [\"runuser\", \"-u\", \"postgres\", \"--\", \"pgbackrest\"]",
        );
    }
    let cipher_type = r.cipher_type.as_deref().map(str::trim);
    if let Some(t) = cipher_type {
        if !CIPHERS.contains(&t) && t != "none" {
            c.push(
                "source.cipher_type",
                format!("`{t}` is not a cipher pgBackRest knows"),
                "write \"aes-256-cbc\" (pgBackRest's only cipher), or leave it out",
            );
        }
    }
    let cipher = match (&r.cipher_pass, cipher_type) {
        (Some(_), Some("none")) => {
            c.push(
                "source.cipher_type",
                "cipher_type is \"none\" but a cipher_pass is given",
                "remove cipher_pass for an unencrypted repository, or set cipher_type = \"aes-256-cbc\"",
            );
            None
        }
        (Some(_), t) => c
            .secret("source.cipher_pass", &r.cipher_pass)
            .map(|p| (t.unwrap_or(CIPHERS[0]).to_string(), p)),
        (None, Some(t)) if t != "none" => {
            c.push(
                "source.cipher_pass",
                format!("cipher_type is \"{t}\" but no cipher_pass is given"),
                "add cipher_pass = { env = \"PGBACKREST_CIPHER_PASS\" } or { file = \"/etc/firedrill/pgbackrest-cipher\" }",
            );
            None
        }
        _ => None,
    };
    let backup = r.backup.as_deref().and_then(|b| match b.trim() {
        "full" => Some(BackupType::Full),
        "diff" => Some(BackupType::Diff),
        "incr" => Some(BackupType::Incr),
        other => {
            c.push(
                "source.backup",
                format!("`{other}` is not a pgBackRest backup type"),
                "write \"full\", \"diff\" or \"incr\", or leave it out to drill the backups the stanza holds",
            );
            None
        }
    });
    let set = r.set.as_deref().map(str::trim).and_then(|s| match s {
        "latest" => None,
        label if valid_label(label) => Some(label.to_string()),
        other => {
            c.push(
                "source.set",
                format!("`{other}` is not a backup set label"),
                "write \"latest\" or a label as `pgbackrest info` prints it, e.g. \"20261201-092810F\" or \"20261201-092810F_20261201-120000I\"",
            );
            None
        }
    });
    if set.is_some() && r.backup.is_some() {
        c.push(
            "source.set",
            "a backup set is named, and the drill also takes a backup of its own",
            "remove `set` to drill the backup this run takes, or remove `backup` to drill the named set",
        );
    }
    let default_target = if r.backup.is_some() {
        "restore_point"
    } else {
        "latest"
    };
    let only = |c: &mut Collector<'_>, key: &str, v: &Option<String>, target: &str| {
        if v.is_some() {
            c.push(
                format!("source.{key}"),
                format!("`{key}` is read only with target = \"{target}\""),
                format!("set target = \"{target}\", or remove `{key}`"),
            );
        }
    };
    let target_word = r.target.as_deref().unwrap_or(default_target).trim();
    let target = match target_word {
        "latest" => RecoveryTarget::Latest,
        "restore_point" => {
            if r.backup.is_none() {
                c.push(
                    "source.target",
                    "target \"restore_point\" is the restore point a run makes after the backup it takes, and this drill takes none",
                    "add backup = \"incr\" (or \"full\", \"diff\"), or drill to \"latest\", a \"time\" or a \"name\"",
                );
            }
            RecoveryTarget::RestorePoint
        }
        "time" => match r.target_time.as_deref().map(str::trim) {
            None | Some("") => {
                c.push(
                    "source.target_time",
                    "target = \"time\" needs target_time",
                    "add target_time = \"2026-11-30T22:00:00Z\" (RFC 3339, with its offset)",
                );
                RecoveryTarget::Latest
            }
            Some(t) => match t.parse::<jiff::Timestamp>() {
                Ok(at) => RecoveryTarget::Time { at },
                Err(e) => {
                    c.push(
                        "source.target_time",
                        format!("`{t}` is not a time: {e}"),
                        "write an RFC 3339 time with its offset, e.g. \"2026-11-30T22:00:00Z\"",
                    );
                    RecoveryTarget::Latest
                }
            },
        },
        "name" => match r.target_name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() && n.len() < 64 => RecoveryTarget::Name {
                name: n.to_string(),
            },
            _ => {
                c.push(
                    "source.target_name",
                    "target = \"name\" needs target_name, the restore point's name (at most 63 bytes)",
                    "add target_name = \"before-migration\", as given to pg_create_restore_point",
                );
                RecoveryTarget::Latest
            }
        },
        "random" => {
            let within = r
                .within
                .as_ref()
                .and_then(|w| match crate::config::parse_duration(w) {
                    Ok(d) if !d.is_zero() => Some(d),
                    Ok(_) => {
                        c.push(
                            "source.within",
                            "a window of 0 holds no time to choose",
                            "write a duration such as \"7d\", or leave it out for the whole window",
                        );
                        None
                    }
                    Err(m) => {
                        c.push(
                            "source.within",
                            m,
                            "write a duration such as \"7d\" or \"12h\"",
                        );
                        None
                    }
                });
            RecoveryTarget::Random { within }
        }
        other => {
            c.push(
                "source.target",
                format!("`{other}` is not a recovery target"),
                "write \"latest\", \"restore_point\", \"time\" (with target_time), \"name\" (with target_name) or \"random\"",
            );
            RecoveryTarget::Latest
        }
    };
    if target_word != "time" {
        only(c, "target_time", &r.target_time, "time");
    }
    if target_word != "name" {
        only(c, "target_name", &r.target_name, "name");
    }
    if target_word != "random" {
        only(c, "within", &r.within, "random");
    }
    let server = r
        .server
        .as_ref()
        .map(|pg| super::postgres_spec(c, pg, "source.server"));
    if r.backup.is_some() && server.is_none() {
        c.push(
            "source.server",
            "the drill takes a backup, but says nothing of the server it is of",
            "add [source.server] with host, port, database and user: firedrill connects to make the backup's restore point and fingerprint",
        );
    }
    let s3 = r.s3.as_ref().map(|s3| PgbackrestS3 {
        ca_file: s3.ca_file.as_ref().map(resolve),
        ..s3_repository(c, s3)
    });
    if r.s3.is_some() && !r.repo_path.is_absolute() && !r.repo_path.as_os_str().is_empty() {
        c.push(
            "source.repo_path",
            format!(
                "`{}` is relative; in a bucket the repository's path is absolute",
                r.repo_path.display()
            ),
            "write the repo1-path pgBackRest's configuration gives, e.g. \"/pgbackrest\"",
        );
    }
    PgbackrestSpec {
        stanza: r.stanza.clone(),
        repo_path: if r.s3.is_some() {
            r.repo_path.clone()
        } else {
            resolve(&r.repo_path)
        },
        s3,
        config: r.config.as_ref().map(resolve),
        command,
        cipher,
        backup,
        set,
        target,
        server,
    }
}

/// Checks `[source.s3]`: pgBackRest reaches S3 over HTTPS only.
fn s3_repository(
    c: &mut Collector<'_>,
    r: &crate::config::raw::PgbackrestS3Config,
) -> PgbackrestS3 {
    if r.bucket.trim().is_empty() {
        c.push(
            "source.s3.bucket",
            "the bucket is empty",
            "write the bucket pgBackRest's repo1-s3-bucket names",
        );
    }
    if r.region.trim().is_empty() {
        c.push(
            "source.s3.region",
            "the region is empty",
            "write the bucket's region, e.g. \"us-east-1\" (S3-compatible stores often take their own, e.g. \"garage\")",
        );
    }
    let endpoint = r
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", r.region.trim()));
    let (host, port) = match reqwest::Url::parse(endpoint.trim()) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => (
            u.host_str().unwrap_or_default().to_string(),
            u.port().unwrap_or(443),
        ),
        Ok(u) if u.scheme() == "http" => {
            c.push(
                "source.s3.endpoint",
                format!("`{endpoint}` is plain HTTP, and pgBackRest speaks only HTTPS to S3"),
                "write the store's https:// address; a store that serves only HTTP needs a TLS proxy in front of it (stunnel or nginx), with its CA as ca_file",
            );
            (String::new(), 443)
        }
        _ => {
            c.push(
                "source.s3.endpoint",
                format!("`{endpoint}` is not an https:// address"),
                "write e.g. \"https://s3.eu-west-1.amazonaws.com\" or \"https://minio.internal:9000\"",
            );
            (String::new(), 443)
        }
    };
    let uri_style = match r.uri_style.as_deref().map(str::trim) {
        None | Some("host") => "host",
        Some("path") => "path",
        Some(other) => {
            c.push(
                "source.s3.uri_style",
                format!("`{other}` is not a URI style pgBackRest knows"),
                "write \"host\" (bucket.endpoint, the default) or \"path\" (endpoint/bucket)",
            );
            "host"
        }
    };
    let key = c.secret("source.s3.access_key_id", &Some(r.access_key_id.clone()));
    let secret = c.secret(
        "source.s3.secret_access_key",
        &Some(r.secret_access_key.clone()),
    );
    let none = || SecretSource::Env { env: String::new() };
    PgbackrestS3 {
        bucket: r.bucket.trim().to_string(),
        region: r.region.trim().to_string(),
        host,
        port,
        uri_style: uri_style.to_string(),
        access_key_id: key.unwrap_or_else(none),
        secret_access_key: secret.unwrap_or_else(none),
        ca_file: r.ca_file.clone(),
    }
}

/// A drill of a Barman server's backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BarmanSpec {
    /// Barman's home (absolute).
    pub home: PathBuf,
    pub server: String,
    /// A backup id; none: the newest that reaches the target.
    pub set: Option<String>,
    pub target: RecoveryTarget,
    pub database: String,
}

impl BarmanSpec {
    /// The server's directory in Barman's home.
    pub fn server_dir(&self) -> PathBuf {
        self.home.join(&self.server)
    }
}

/// Checks a `source.type = "barman"` table.
pub(super) fn barman_source(
    c: &mut Collector<'_>,
    r: &crate::config::raw::BarmanSourceConfig,
    base_dir: &std::path::Path,
) -> BarmanSpec {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
    };
    if !name_ok(r.server.trim()) {
        c.push(
            "source.server",
            format!("`{}` is not a Barman server name", r.server),
            "write the server as barman.conf names it, e.g. \"pg\"",
        );
    }
    let set = r.set.as_deref().map(str::trim).and_then(|s| match s {
        "latest" => None,
        id if name_ok(id) => Some(id.to_string()),
        other => {
            c.push(
                "source.set",
                format!("`{other}` is not a backup id"),
                "write \"latest\" or an id as `barman list-backups` prints it, e.g. \"20261201T135024\"",
            );
            None
        }
    });
    let target = match r.target.as_deref().map(str::trim).unwrap_or("latest") {
        "latest" => RecoveryTarget::Latest,
        "time" => match r
            .target_time
            .as_deref()
            .map(str::trim)
            .map(str::parse::<jiff::Timestamp>)
        {
            Some(Ok(at)) => RecoveryTarget::Time { at },
            Some(Err(e)) => {
                c.push(
                    "source.target_time",
                    format!("not a time: {e}"),
                    "write an RFC 3339 time with its offset, e.g. \"2026-11-30T22:00:00Z\"",
                );
                RecoveryTarget::Latest
            }
            None => {
                c.push(
                    "source.target_time",
                    "target = \"time\" needs target_time",
                    "add target_time = \"2026-11-30T22:00:00Z\" (RFC 3339, with its offset)",
                );
                RecoveryTarget::Latest
            }
        },
        "name" => match r.target_name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() && n.len() < 64 && !n.contains('\'') => RecoveryTarget::Name {
                name: n.to_string(),
            },
            _ => {
                c.push(
                    "source.target_name",
                    "target = \"name\" needs target_name, a restore point's name (at most 63 bytes, no quote)",
                    "add target_name = \"before-migration\", as given to pg_create_restore_point",
                );
                RecoveryTarget::Latest
            }
        },
        "random" => RecoveryTarget::Random {
            within: r
                .within
                .as_deref()
                .and_then(|w| match crate::config::parse_duration(w) {
                    Ok(d) if !d.is_zero() => Some(d),
                    _ => {
                        c.push(
                            "source.within",
                            format!("`{w}` is not a window to choose in"),
                            "write a duration such as \"7d\", or leave it out for the whole window",
                        );
                        None
                    }
                }),
        },
        other => {
            c.push(
                "source.target",
                format!("`{other}` is not a recovery target of a Barman drill"),
                "write \"latest\", \"time\" (with target_time), \"name\" (with target_name) or \"random\" (with within)",
            );
            RecoveryTarget::Latest
        }
    };
    if r.within.is_some() && !matches!(target, RecoveryTarget::Random { .. }) {
        c.push(
            "source.within",
            "`within` is read only with target = \"random\"",
            "set target = \"random\", or remove `within`",
        );
    }
    let home = r
        .barman_home
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/lib/barman"));
    BarmanSpec {
        home: if home.is_absolute() {
            home
        } else {
            base_dir.join(home)
        },
        server: r.server.trim().to_string(),
        set,
        target,
        database: r
            .database
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .unwrap_or("postgres")
            .to_string(),
    }
}

/// A drill of a directory of MariaDB Backup backups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MariabackupSpec {
    /// Absolute.
    pub backup_dir: PathBuf,
    /// A backup (subdirectory) by name; none: the newest.
    pub set: Option<String>,
    pub database: String,
}

/// Checks a `source.type = "mariabackup"` table.
pub(super) fn mariabackup_source(
    c: &mut Collector<'_>,
    r: &crate::config::raw::MariabackupSourceConfig,
    base_dir: &std::path::Path,
) -> MariabackupSpec {
    if r.backup_dir.as_os_str().is_empty() {
        c.push(
            "source.backup_dir",
            "the backup directory is empty",
            "write the directory whose subdirectories are mariadb-backup's target directories, e.g. \"/srv/mariabackup\"",
        );
    }
    let set = r.set.as_deref().map(str::trim).and_then(|s| match s {
        "latest" => None,
        name if !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains('/') =>
        {
            Some(name.to_string())
        }
        other => {
            c.push(
                "source.set",
                format!("`{other}` is not a backup's directory name"),
                "write \"latest\" or the name of one subdirectory of backup_dir, e.g. \"2026-12-01-inc2\"",
            );
            None
        }
    });
    let database = r.database.trim().to_string();
    if database.is_empty() || database.contains('`') {
        c.push(
            "source.database",
            format!("`{database}` is not a database name"),
            "name the database the drill fingerprints and asserts on, e.g. \"shop\"",
        );
    }
    MariabackupSpec {
        backup_dir: if r.backup_dir.is_absolute() {
            r.backup_dir.clone()
        } else {
            base_dir.join(&r.backup_dir)
        },
        set,
        database,
    }
}

/// `20261201-092810F`, or a differential or incremental one:
/// `20261201-092810F_20261201-120000D`.
fn valid_label(s: &str) -> bool {
    let part = |p: &str, kinds: &[char]| {
        p.len() == 16
            && p.as_bytes()[8] == b'-'
            && p.chars().enumerate().all(|(i, ch)| {
                i == 8 || (i == 15 && kinds.contains(&ch)) || (i < 15 && ch.is_ascii_digit())
            })
    };
    match s.split_once('_') {
        None => part(s, &['F']),
        Some((full, rest)) => part(full, &['F']) && part(rest, &['D', 'I']),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_drill, SourceSpec};
    use std::path::Path;

    fn drill(source: &str, rest: &str) -> Result<crate::config::Drill, crate::config::Problems> {
        parse_drill(
            Path::new("drills/pb.toml"),
            &format!(
                "[source]\ntype = \"pgbackrest\"\nstanza = \"main\"\nrepo_path = \"repo\"\n{source}\n\n[storage]\ntype = \"local\"\npath = \"/tmp/x\"\n{rest}"
            ),
        )
    }

    fn fields(r: Result<crate::config::Drill, crate::config::Problems>) -> Vec<String> {
        r.expect_err("problems")
            .0
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn a_verify_only_drill_needs_no_keys_and_drills_to_latest() {
        let d = drill("", "").unwrap();
        let SourceSpec::Pgbackrest(p) = &d.source else {
            panic!("pgbackrest")
        };
        assert_eq!(p.target, RecoveryTarget::Latest);
        assert_eq!(p.repo_path, Path::new("drills/repo"));
        assert!(d.encryption.is_none() && d.source.verify_only() && d.source.physical());
    }

    #[test]
    fn a_drill_that_backs_up_recovers_to_its_restore_point_and_needs_its_server() {
        assert_eq!(fields(drill("backup = \"incr\"", "")), ["source.server"]);
        let d = drill(
            "backup = \"incr\"\n[source.server]\ndatabase = \"shop\"\nuser = \"u\"",
            "",
        )
        .unwrap();
        let SourceSpec::Pgbackrest(p) = &d.source else {
            panic!("pgbackrest")
        };
        assert_eq!(p.target, RecoveryTarget::RestorePoint);
        assert_eq!(p.backup, Some(BackupType::Incr));
        assert!(!d.source.verify_only());
    }

    #[test]
    fn wrong_keys_are_named() {
        assert_eq!(
            fields(drill("backup = \"weekly\"", "")),
            ["source.backup", "source.server"]
        );
        assert_eq!(
            fields(drill("target = \"time\"", "")),
            ["source.target_time"]
        );
        assert_eq!(
            fields(drill("target = \"time\"\ntarget_time = \"yesterday\"", "")),
            ["source.target_time"]
        );
        assert_eq!(
            fields(drill("target = \"restore_point\"", "")),
            ["source.target"]
        );
        assert_eq!(
            fields(drill("target_name = \"x\"", "")),
            ["source.target_name"]
        );
        assert_eq!(fields(drill("set = \"yesterday\"", "")), ["source.set"]);
        assert_eq!(
            fields(drill("cipher_type = \"aes-256-cbc\"", "")),
            ["source.cipher_pass"]
        );
        assert_eq!(
            fields(drill("target = \"random\"\nwithin = \"0s\"", "")),
            ["source.within"]
        );
        assert_eq!(fields(drill("stanza2 = 1", "")).len(), 1);
        assert_eq!(
            fields(drill(
                "",
                "[encryption]\nrecipients = [\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]\nidentity = { file = \"/k\" }"
            )),
            ["encryption"]
        );
        let d = drill(
            "target = \"time\"\ntarget_time = \"2026-11-30T22:00:00Z\"",
            "",
        )
        .unwrap();
        let SourceSpec::Pgbackrest(p) = &d.source else {
            panic!("pgbackrest")
        };
        assert!(matches!(p.target, RecoveryTarget::Time { .. }));
    }

    #[test]
    fn an_s3_repository_is_reached_over_https_with_its_keys() {
        let keys = "access_key_id = { env = \"K\" }\nsecret_access_key = { file = \"/s\" }";
        let s3 = |extra: &str| {
            drill(
                "",
                &format!("[source.s3]\nbucket = \"b\"\nregion = \"garage\"\n{keys}\n{extra}"),
            )
        };
        // The table follows [storage] in these files; TOML puts it under source anyway.
        let d =
            s3("endpoint = \"https://localhost:8443\"\nuri_style = \"path\"\nca_file = \"ca.pem\"");
        let problems = fields(d);
        // repo_path "repo" is relative: in a bucket it is absolute.
        assert_eq!(problems, ["source.repo_path"]);
        let ok = parse_drill(
            Path::new("drills/pb.toml"),
            &format!("[source]\ntype = \"pgbackrest\"\nstanza = \"main\"\nrepo_path = \"/pgbackrest\"\n[source.s3]\nbucket = \"b\"\nregion = \"garage\"\n{keys}\nendpoint = \"https://localhost:8443\"\nuri_style = \"path\"\nca_file = \"ca.pem\"\n\n[storage]\ntype = \"local\"\npath = \"/tmp/x\"\n"),
        )
        .unwrap();
        let SourceSpec::Pgbackrest(p) = &ok.source else {
            panic!("pgbackrest")
        };
        let s3 = p.s3.as_ref().unwrap();
        assert_eq!(p.repo_path, Path::new("/pgbackrest"));
        assert_eq!((s3.host.as_str(), s3.port), ("localhost", 8443));
        assert_eq!(s3.uri_style, "path");
        assert_eq!(s3.ca_file.as_deref(), Some(Path::new("drills/ca.pem")));
        // Defaults: AWS's endpoint for the region, host-style addressing.
        let aws = parse_drill(
            Path::new("drills/pb.toml"),
            &format!("[source]\ntype = \"pgbackrest\"\nstanza = \"main\"\nrepo_path = \"/\"\n[source.s3]\nbucket = \"b\"\nregion = \"eu-west-1\"\n{keys}\n\n[storage]\ntype = \"local\"\npath = \"/tmp/x\"\n"),
        )
        .unwrap();
        let SourceSpec::Pgbackrest(p) = &aws.source else {
            panic!("pgbackrest")
        };
        let s3 = p.s3.as_ref().unwrap();
        assert_eq!(
            (s3.host.as_str(), s3.port),
            ("s3.eu-west-1.amazonaws.com", 443)
        );
        assert_eq!(s3.uri_style, "host");
        // Plain HTTP, a style pgBackRest does not know, a key from no variable.
        let bad = parse_drill(
            Path::new("drills/pb.toml"),
            "[source]\ntype = \"pgbackrest\"\nstanza = \"main\"\nrepo_path = \"/\"\n[source.s3]\nbucket = \"b\"\nregion = \"r\"\nendpoint = \"http://127.0.0.1:3900\"\nuri_style = \"virtual\"\naccess_key_id = { env = \"not a name\" }\nsecret_access_key = { env = \"S\" }\n\n[storage]\ntype = \"local\"\npath = \"/tmp/x\"\n",
        )
        .expect_err("problems");
        let text = bad.to_string();
        assert!(text.contains("pgBackRest speaks only HTTPS"), "{text}");
        assert_eq!(
            bad.0.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(),
            [
                "source.s3.endpoint",
                "source.s3.uri_style",
                "source.s3.access_key_id"
            ]
        );
    }

    #[test]
    fn a_mariabackup_drill_names_its_directory_database_and_backup() {
        let parse = |source: &str| {
            parse_drill(
                Path::new("drills/mb.toml"),
                &format!("[source]\ntype = \"mariabackup\"\n{source}\n\n[storage]\ntype = \"local\"\npath = \"/tmp/x\"\n"),
            )
        };
        let d = parse("backup_dir = \"backups\"\ndatabase = \"shop\"").unwrap();
        let SourceSpec::Mariabackup(m) = &d.source else {
            panic!("mariabackup")
        };
        assert_eq!(m.backup_dir, Path::new("drills/backups"));
        assert_eq!(m.set, None);
        assert!(d.source.physical() && d.source.verify_only() && d.encryption.is_none());
        let d = parse("backup_dir = \"/b\"\ndatabase = \"shop\"\nset = \"latest\"").unwrap();
        let SourceSpec::Mariabackup(m) = &d.source else {
            panic!("mariabackup")
        };
        assert_eq!(m.set, None);
        assert_eq!(
            fields(parse("backup_dir = \"\"\ndatabase = \"\"\nset = \"../x\"")),
            ["source.backup_dir", "source.set", "source.database"]
        );
    }

    #[test]
    fn a_barman_drill_names_its_server_and_target() {
        let parse = |source: &str| {
            parse_drill(
                Path::new("drills/bm.toml"),
                &format!("[source]\ntype = \"barman\"\n{source}\n\n[storage]\ntype = \"local\"\npath = \"/tmp/x\"\n"),
            )
        };
        let d = parse("server = \"pg\"").unwrap();
        let SourceSpec::Barman(b) = &d.source else {
            panic!("barman")
        };
        assert_eq!(b.server_dir(), Path::new("/var/lib/barman/pg"));
        assert_eq!(b.target, RecoveryTarget::Latest);
        assert_eq!(b.database, "postgres");
        assert!(d.source.physical() && d.source.verify_only());
        let d = parse("server = \"pg\"\ntarget = \"time\"\ntarget_time = \"2026-12-01T10:00:00Z\"\nset = \"20261201T135024\"").unwrap();
        let SourceSpec::Barman(b) = &d.source else {
            panic!("barman")
        };
        assert!(matches!(b.target, RecoveryTarget::Time { .. }));
        assert_eq!(b.set.as_deref(), Some("20261201T135024"));
        assert_eq!(
            fields(parse(
                "server = \"a b\"\ntarget = \"tape\"\nset = \"../x\"\nwithin = \"7d\""
            )),
            [
                "source.server",
                "source.set",
                "source.target",
                "source.within"
            ]
        );
        let d = parse("server = \"pg\"\ntarget = \"random\"\nwithin = \"7d\"").unwrap();
        let SourceSpec::Barman(b) = &d.source else {
            panic!("barman")
        };
        assert!(matches!(
            b.target,
            RecoveryTarget::Random { within: Some(_) }
        ));
        assert_eq!(
            fields(parse("server = \"pg\"\ntarget = \"time\"")),
            ["source.target_time"]
        );
    }

    #[test]
    fn backup_set_labels() {
        assert!(valid_label("20261201-092810F"));
        assert!(valid_label("20261201-092810F_20261201-120000I"));
        assert!(valid_label("20261201-092810F_20261201-120000D"));
        assert!(!valid_label("20261201-092810I"));
        assert!(!valid_label("latest"));
        assert!(!valid_label("20261201-092810F_20261201-120000F"));
    }
}
