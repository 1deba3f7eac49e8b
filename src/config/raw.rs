//! The drill file as written. Every struct refuses unknown fields; backends are closed,
//! `type`-tagged enums. Durations and sizes stay strings here so that validation can
//! name the field when one is wrong.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::secret::SecretRef;

/// A drill file: a source to dump, where the artifact goes, who can decrypt it, and what
/// the restored data must satisfy. One drill per file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillFile {
    /// Defaults to the file name without `.toml`.
    pub name: Option<String>,
    /// One line for people: shown by `firedrill list`, pages and reports.
    pub description: Option<String>,
    /// The database to dump (`type = "postgres"`, `"mysql"`/`"mariadb"`), or `"stored"`
    /// to verify files another tool made.
    pub source: SourceConfig,
    /// Where artifacts and their manifests are stored.
    pub storage: StorageConfig,
    /// Who can decrypt the artifacts, and the identity the sandbox decrypts with.
    /// How artifacts are encrypted (age). Every drill that dumps needs it; a drill of
    /// pgBackRest backups has none (the repository has its own cipher).
    pub encryption: Option<EncryptionConfig>,
    /// zstd settings of the dump stream.
    #[serde(default)]
    pub compression: CompressionConfig,
    /// The throwaway container the backup is restored into.
    #[serde(default, deserialize_with = "SandboxConfig::deserialize_defaulted")]
    pub sandbox: SandboxConfig,
    /// A limit per stage ("90s", "10m", "2h").
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Retries of infrastructure steps.
    #[serde(default)]
    pub retry: RetryConfig,
    /// When the daemon runs the drill, and the objectives it is held to.
    pub schedule: Option<ScheduleConfig>,
    /// Which artifacts `firedrill prune` keeps.
    #[serde(default)]
    pub retention: RetentionPolicy,
    /// Checks on the restored data, each `[[assertion]]` a table.
    #[serde(default, rename = "assertion")]
    pub assertions: Vec<AssertionConfig>,
    /// Files of shared `[[assertion]]`s (relative to this file), e.g.
    /// `["assertions/common.toml"]`.
    #[serde(default)]
    pub assertions_from: Vec<PathBuf>,
    /// Which tables get a content checksum.
    #[serde(default)]
    pub fingerprint: FingerprintConfig,
    /// Guards against a backup much smaller than the last good one.
    #[serde(default)]
    pub anomaly: AnomalyConfig,
}

/// A file of shared assertions: `[[assertion]]` entries only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionsFile {
    #[serde(default, rename = "assertion")]
    pub assertions: Vec<AssertionConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FingerprintConfig {
    /// Tables up to this size are checksummed every run (default "256MiB"; "0" for none).
    pub checksum_max_table_size: Option<String>,
    /// Larger tables take turns: each is checksummed at least once in this many runs
    /// (default 7; 0 never checksums them).
    pub checksum_rotation: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// A dump, a row total, or a table's rows or size smaller than the last passing run's
    /// by more than this share fails the drill as suspect (default "50%"; "100%" turns the
    /// guards off, but for tables given a threshold of their own).
    pub max_shrink: Option<String>,
    /// A table with fewer rows than this in the last passing run is too small for its rows
    /// to be judged (default 1000): a queue going from 10 rows to 1 is not an anomaly.
    pub table_min_rows: Option<u64>,
    /// A table smaller than this in the last passing run is too small for its size to be
    /// judged (default "10MiB"). The size is the engine's: PostgreSQL's
    /// `pg_relation_size`, MySQL's and MariaDB's `DATA_LENGTH`.
    pub table_min_size: Option<String>,
    /// Thresholds of one table, keyed by `schema.table` (MySQL/MariaDB:
    /// `database.table`) as the database spells it, e.g.
    /// `[anomaly.table."public.orders"]`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub table: std::collections::BTreeMap<String, TableAnomalyConfig>,
}

/// One table's anomaly thresholds; what is not set here is the drill's `[anomaly]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableAnomalyConfig {
    /// The table's rows or size smaller than the last passing run's by more than this
    /// share fails the drill (default: `[anomaly] max_shrink`; "100%" never judges it).
    pub max_shrink: Option<String>,
    /// Its rows are judged from this many rows in the last passing run (default:
    /// `[anomaly] table_min_rows`; 0 judges a table however small).
    pub min_rows: Option<u64>,
    /// Its size is judged from this size in the last passing run (default:
    /// `[anomaly] table_min_size`).
    pub min_size: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schemars(transform = mariadb_is_mysql)]
pub enum SourceConfig {
    Postgres(PostgresSourceConfig),
    /// MySQL or MariaDB; which one is read from the server.
    #[serde(alias = "mariadb")]
    Mysql(MysqlSourceConfig),
    /// Verify-only: no source to dump. The newest file under `prefix` in storage, made by
    /// another tool (pg_dump custom or plain, mysqldump; zstd- or gzip-compressed or not;
    /// age-encrypted or not), is restored and checked.
    Stored(StoredSourceConfig),
    /// Verify-only: a dump kept in a restic repository (`pg_dump | restic backup
    /// --stdin`), read with `restic dump` without a lock.
    Restic(SnapshotSourceConfig),
    /// Verify-only: a dump kept in a Borg repository (`mariadb-dump | borg create … -`),
    /// local or over SSH, read with `borg extract --stdout` without a lock.
    Borg(SnapshotSourceConfig),
    /// Physical backups of PostgreSQL kept by pgBackRest: a backup set of the stanza
    /// (one firedrill takes first, with `backup`) restored into the sandbox and
    /// recovered from the archived WAL to the target asked.
    Pgbackrest(Box<PgbackrestSourceConfig>),
    /// Physical backups of MariaDB made by MariaDB Backup (`mariadb-backup --backup`): a
    /// full backup and the incrementals on top of it, prepared and restored in the
    /// sandbox.
    Mariabackup(MariabackupSourceConfig),
    /// Physical backups of PostgreSQL kept by a Barman server on this host: a base backup
    /// recovered in the sandbox with Barman and its archived WAL, to the target asked.
    Barman(BarmanSourceConfig),
}

/// A Barman server's backups to drill. Barman's home is only read: the sandbox recovers
/// from a read-only mount of the server's directory.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BarmanSourceConfig {
    /// Barman's `barman_home` (default "/var/lib/barman").
    pub barman_home: Option<PathBuf>,
    /// The Barman server, as barman.conf names it (`pg`).
    pub server: String,
    /// Which backup: "latest" (default: the newest that reaches the target) or a backup
    /// id (`20261201T135024`).
    pub set: Option<String>,
    /// Where recovery stops: "latest" (default: the end of the archived WAL), "time"
    /// (`target_time`), "name" (`target_name`) or "random" (a random time between the
    /// oldest backup, or `within` ago, and the archive's newest WAL).
    pub target: Option<String>,
    pub target_time: Option<String>,
    pub target_name: Option<String>,
    /// `target = "random"`: choose within this long before now ("7d").
    pub within: Option<String>,
    /// The database the drill fingerprints, and its assertions read (default
    /// "postgres").
    pub database: Option<String>,
}

/// A directory of MariaDB Backup backups to drill. Only read: the sandbox copies what it
/// restores out of a read-only mount of it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MariabackupSourceConfig {
    /// The directory holding the backups, each in a subdirectory of its own (the
    /// `--target-dir` of a full backup, or of an incremental one whose
    /// `--incremental-basedir` is another subdirectory). Its files must be readable by
    /// firedrill's user (mariadb-backup makes them 0640).
    pub backup_dir: PathBuf,
    /// Which backup to restore: "latest" (default: the newest, with the full backup and
    /// the incrementals it builds on) or a subdirectory's name.
    pub set: Option<String>,
    /// The database the drill fingerprints, and its assertions read.
    pub database: String,
}

/// A pgBackRest stanza to drill. The repository is only read: firedrill restores in the
/// sandbox from a read-only mount of it, and runs pgBackRest on this host only to list
/// it and, with `backup`, to take a backup.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgbackrestSourceConfig {
    /// The stanza, as pgBackRest names it (`main`).
    pub stanza: String,
    /// The repository's directory: on this host for a posix repository (mounted
    /// read-only into the sandbox: its files must be readable by their group; pgBackRest
    /// makes them 0640, its directories 0750), or in the bucket with `[source.s3]`
    /// (pgBackRest's `repo1-path`, e.g. "/pgbackrest").
    pub repo_path: PathBuf,
    /// The repository is in S3 (pgBackRest's `repo1-type=s3`): firedrill copies the
    /// backup set and the WAL it needs out of the bucket into the sandbox's volume.
    pub s3: Option<PgbackrestS3Config>,
    /// pgBackRest's configuration file on this host, for `backup` (default:
    /// pgBackRest's own default, `/etc/pgbackrest/pgbackrest.conf`).
    pub config: Option<PathBuf>,
    /// How pgBackRest is run on this host: the program and arguments before its own
    /// (default `["pgbackrest"]`), e.g. `["runuser", "-u", "postgres", "--",
    /// "pgbackrest"]` to run it as the repository's owner.
    pub command: Option<Vec<String>>,
    /// The repository's cipher passphrase (`repo1-cipher-pass`), when it is encrypted.
    pub cipher_pass: Option<SecretRef>,
    /// The repository's cipher (default "aes-256-cbc" when `cipher_pass` is given).
    pub cipher_type: Option<String>,
    /// Take a backup of this type first, then drill it: "full", "diff" or "incr".
    /// Without it the drill only reads what the stanza holds (verify-only).
    pub backup: Option<String>,
    /// Which backup set to restore: "latest" (default: the newest that reaches the
    /// target) or a label (`20261201-092810F`).
    pub set: Option<String>,
    /// Where recovery stops: "latest" (the end of the archived WAL), "restore_point"
    /// (the restore point this run creates after its backup; the default with
    /// `backup`), "time" (`target_time`), "name" (`target_name`), or "random" (a random
    /// time between the oldest backup, or `within` ago, and the archive's newest WAL).
    pub target: Option<String>,
    /// `target = "time"`: an RFC 3339 time, e.g. "2026-11-30T22:00:00Z".
    pub target_time: Option<String>,
    /// `target = "name"`: a restore point made with `pg_create_restore_point`.
    pub target_name: Option<String>,
    /// `target = "random"`: choose within this long before now ("7d").
    pub within: Option<String>,
    /// The server the backups are of: firedrill connects to it to take its backup's
    /// restore point and fingerprint (needed with `backup`). The same keys as a
    /// PostgreSQL source; `database` is the one fingerprinted.
    pub server: Option<PostgresSourceConfig>,
}

/// A pgBackRest repository in S3 or an S3-compatible store, as pgBackRest's
/// `repo1-s3-*` settings name it. pgBackRest speaks only HTTPS to S3.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgbackrestS3Config {
    pub bucket: String,
    /// e.g. "us-east-1"; S3-compatible stores often want their own ("garage").
    pub region: String,
    /// "https://host[:port]" (default: "https://s3.<region>.amazonaws.com").
    pub endpoint: Option<String>,
    /// "host" (default, `bucket.endpoint`, as pgBackRest) or "path" (`endpoint/bucket`,
    /// what MinIO, Garage and Ceph often need).
    pub uri_style: Option<String>,
    pub access_key_id: SecretRef,
    pub secret_access_key: SecretRef,
    /// The CA that signed the endpoint's certificate (PEM), when it is not one the
    /// system trusts.
    pub ca_file: Option<PathBuf>,
}

/// A dump inside another backup tool's repository: which snapshot, which file in it, and
/// what opens the repository. The repository is only ever read: no lock, no `forget`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSourceConfig {
    /// The repository as the tool spells it: `/srv/restic`, `s3:https://host/bucket`,
    /// `sftp:…` (restic); `/srv/borg`, `ssh://user@host:22/./repo` (Borg).
    pub repository: String,
    /// The repository's password (restic) or passphrase (Borg, when encrypted).
    pub password: Option<SecretRef>,
    /// Settings the tool reads from its environment for the repository's backend
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `B2_ACCOUNT_KEY`, …), each from an
    /// environment variable or a file of firedrill's host.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, SecretRef>,
    /// Which snapshot: `"latest"` (default), `"random"` (pick a random tape, within
    /// `within` if given), or a snapshot id (restic, a unique prefix will do) or archive
    /// name (Borg).
    pub snapshot: Option<String>,
    /// restic: only snapshots with this tag.
    pub tag: Option<String>,
    /// restic: only snapshots of this host.
    pub host: Option<String>,
    /// restic: only snapshots of this path (`/shop.sql` for `--stdin-filename shop.sql`).
    pub path: Option<String>,
    /// Borg: only archives whose name matches this glob (`shop-*`).
    pub archive: Option<String>,
    /// `snapshot = "random"` picks among the snapshots taken within this long ("30d").
    pub within: Option<String>,
    /// The dump's path inside the snapshot. Default: the snapshot's only file.
    pub file: Option<String>,
    /// `postgres`, `mariadb` or `mysql`. Default: read from the dump's own header.
    pub engine: Option<String>,
    /// The server series the dump came from (`15`, `10.11`): picks the sandbox image.
    /// Default: read from the dump's own header.
    pub version: Option<String>,
    /// The database to restore into (PostgreSQL), or to use for dumps that do not name
    /// one (MySQL/MariaDB).
    pub database: String,
    /// How many times its size a compressed dump may decompress to before the restore
    /// is stopped as a decompression bomb (default 1000).
    pub max_expansion: Option<u64>,
    /// The tool's program (default `restic` or `borg` on the PATH).
    pub tool: Option<PathBuf>,
    /// Borg over SSH: the ssh command Borg runs (`BORG_RSH`), e.g.
    /// "ssh -i /etc/firedrill/borg_key -o UserKnownHostsFile=/etc/firedrill/known_hosts".
    pub rsh: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredSourceConfig {
    /// `postgres`, `mariadb` or `mysql`: what restores the files.
    pub engine: String,
    /// The server series to restore into (`15`, `10.11`, `8.4`): picks the sandbox image.
    pub version: String,
    /// The database to restore into (PostgreSQL), or to use for dumps that do not name
    /// one (MySQL/MariaDB).
    pub database: String,
    /// Where the other tool puts its files, under the storage root.
    pub prefix: String,
    /// How many times its stored size a file may decompress to before the restore is
    /// stopped as a decompression bomb (default 1000; files under 64 MiB decompressed
    /// always pass).
    pub max_expansion: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MysqlSourceConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_mysql_port")]
    pub port: u16,
    pub user: String,
    pub password: Option<SecretRef>,
    /// One database…
    pub database: Option<String>,
    /// …or several…
    pub databases: Option<Vec<String>>,
    /// …or every user database (not mysql, sys, information_schema, performance_schema).
    #[serde(default)]
    pub all_databases: bool,
    /// The dump tool. Default: `mariadb-dump` for MariaDB, `mysqldump` for MySQL.
    pub dump_tool: Option<PathBuf>,
    /// TLS, in MySQL's names: "disabled", "preferred" (the default: TLS when the server
    /// offers it, unchecked), "required", "verify_ca", "verify_identity".
    pub ssl_mode: Option<String>,
    /// CA certificates (PEM) the server's certificate must chain to, besides the system's.
    /// Relative paths are read from the drill file's directory.
    pub ssl_ca: Option<PathBuf>,
    /// A client certificate (PEM), for servers that ask for one; with `ssl_key`.
    pub ssl_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub ssl_key: Option<PathBuf>,
    /// Where the dump tool runs: "auto" (the default: this host's when it is of the
    /// version the dump restores into (sandbox.major, else the server's), else the one in
    /// that version's sandbox image, in a container that reaches the source), "host" (this
    /// host's, never older than the server) or "container".
    pub dump_in: Option<String>,
    /// A dump smaller than this is a failure (default "1KiB").
    pub min_dump_bytes: Option<String>,
}

fn default_mysql_port() -> u16 {
    3306
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSourceConfig {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_pg_port")]
    pub port: u16,
    pub database: String,
    pub user: String,
    /// Where the password comes from; omit for trust/peer authentication.
    pub password: Option<SecretRef>,
    /// The pg_dump binary. Default: `/usr/lib/postgresql/<server major>/bin/pg_dump` when
    /// it exists, else `pg_dump` on PATH.
    pub pg_dump: Option<PathBuf>,
    /// TLS, in libpq's names: "disable", "prefer" (the default: TLS when the server
    /// offers it, unchecked), "require", "verify-ca", "verify-full".
    pub sslmode: Option<String>,
    /// CA certificates (PEM) the server's certificate must chain to, besides the system's.
    /// Relative paths are read from the drill file's directory.
    pub sslrootcert: Option<PathBuf>,
    /// A client certificate (PEM), for servers that ask for one; with `sslkey`.
    pub sslcert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub sslkey: Option<PathBuf>,
    /// Where the dump tool runs: "auto" (the default: this host's when it is of the
    /// version the dump restores into (sandbox.major, else the server's), else the one in
    /// that version's sandbox image, in a container that reaches the source), "host" (this
    /// host's, never older than the server) or "container".
    pub dump_in: Option<String>,
    /// A dump smaller than this is a failure (default "1KiB").
    pub min_dump_bytes: Option<String>,
}

fn default_host() -> String {
    "localhost".into()
}
fn default_pg_port() -> u16 {
    5432
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StorageConfig {
    /// A directory on the orchestrator host (or a mounted file system).
    Local(LocalStorageConfig),
    /// Amazon S3 and S3-compatible stores (MinIO, Garage, Ceph, R2, B2's S3 API).
    S3(S3StorageConfig),
    /// Google Cloud Storage.
    Gcs(GcsStorageConfig),
    /// Azure Blob Storage.
    Azblob(AzblobStorageConfig),
    /// Backblaze B2 (native API).
    B2(B2StorageConfig),
    /// OpenStack Swift.
    Swift(SwiftStorageConfig),
    /// A directory on an SSH server.
    Sftp(SftpStorageConfig),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3StorageConfig {
    pub bucket: String,
    /// e.g. "us-east-1"; S3-compatible stores often want their own ("garage", "auto").
    pub region: String,
    /// For S3-compatible stores: "http://127.0.0.1:3900", "https://<account>.r2.cloudflarestorage.com".
    pub endpoint: Option<String>,
    /// Address buckets as `endpoint/bucket` (the default; what MinIO, Garage and Ceph
    /// expect) or, when false, as `bucket.endpoint`.
    #[serde(default = "yes")]
    pub path_style: bool,
    pub access_key_id: SecretRef,
    pub secret_access_key: SecretRef,
    pub prefix: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GcsStorageConfig {
    pub bucket: String,
    /// The service account key (JSON).
    pub credential: SecretRef,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzblobStorageConfig {
    pub container: String,
    pub account_name: String,
    pub account_key: SecretRef,
    /// Default: https://<account_name>.blob.core.windows.net
    pub endpoint: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct B2StorageConfig {
    pub bucket: String,
    pub bucket_id: String,
    pub application_key_id: SecretRef,
    pub application_key: SecretRef,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwiftStorageConfig {
    /// The account's storage URL, e.g. https://swift.example.com/v1/AUTH_account
    pub endpoint: String,
    pub container: String,
    pub token: SecretRef,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SftpStorageConfig {
    /// ssh://host:port
    pub endpoint: String,
    pub user: String,
    /// Private key file for the SSH connection.
    pub key: PathBuf,
    /// Directory on the server.
    pub root: String,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalStorageConfig {
    pub path: PathBuf,
    /// Key prefix under the path; artifacts go to `<prefix>/<drill>/<run>/`.
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// age X25519 recipients (`age1…`). Every artifact is encrypted to all of them.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A file of recipients, one per line (`#` comments), as `age -R` reads.
    pub recipients_file: Option<PathBuf>,
    /// Where the sandbox gets the age identity that decrypts the artifact. Read on the
    /// orchestrator host, handed to the sandbox only.
    pub identity: SecretRef,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompressionConfig {
    /// zstd level, 1–19 (default 3).
    pub level: Option<i32>,
    /// zstd worker threads; 0 = one per core (default).
    pub threads: Option<u32>,
}

/// `[sandbox]`; `type` defaults to `docker`, the only backend today.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schemars(transform = sandbox_type_defaults_to_docker)]
pub enum SandboxConfig {
    Docker(DockerSandboxConfig),
}

impl SandboxConfig {
    fn deserialize_defaulted<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(d)?;
        table
            .entry("type")
            .or_insert_with(|| toml::Value::String("docker".into()));
        SandboxConfig::deserialize(toml::Value::Table(table))
            .map_err(|e| D::Error::custom(e.message()))
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig::Docker(DockerSandboxConfig::default())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerSandboxConfig {
    /// Image to restore into; `{major}` is replaced by the source's major version.
    /// Default: `firedrill-sandbox-<engine>:{major}`.
    pub image: Option<String>,
    /// Memory limit, e.g. "2GiB" (default 2GiB).
    pub memory: Option<String>,
    /// CPU limit in cores (default 2).
    pub cpus: Option<f64>,
    /// Docker endpoint; default: DOCKER_HOST or the local socket.
    pub docker_host: Option<String>,
    /// An upgrade rehearsal: restore into this newer major version instead of the
    /// source's (`major = 17` for a PostgreSQL 13 source, `major = "11.8"` for MariaDB
    /// 10.5), and report what breaks.
    pub major: Option<MajorVersion>,
}

/// A major version or release series, written as a number (`17`) or a string (`"11.8"`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MajorVersion {
    Number(u32),
    Text(String),
    /// `11.8` written as a TOML float: refused with a hint (floats lose trailing zeros).
    Float(f64),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// Default "6h".
    pub dump: Option<String>,
    /// Default "6h".
    pub encrypt: Option<String>,
    /// Default "6h".
    pub upload: Option<String>,
    /// Starting the sandbox and waiting for its database; default "5m".
    pub provision: Option<String>,
    /// Default "6h".
    pub restore: Option<String>,
    /// Fingerprint comparison and assertions; default "1h".
    pub verify: Option<String>,
    /// Removing the sandbox; default "2m".
    pub teardown: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts before the drill gives up when its infrastructure fails: the backup (a
    /// source or store that dropped out) and the stages in the sandbox (Docker, a lost
    /// sandbox) are taken again, a fresh sandbox each time (default 3).
    pub attempts: Option<u32>,
    /// First backoff between attempts, doubled each time (default "2s").
    pub backoff: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// "30 3 * * *" (5 fields) or cron's 6/7-field form; omit for manual drills.
    pub cron: Option<String>,
    /// IANA time zone of the cron expression (default UTC).
    pub timezone: Option<String>,
    /// Random delay added to each firing, e.g. "10m".
    pub jitter: Option<String>,
    /// Recovery point objective: page when no artifact passed a drill within this long.
    pub max_age: Option<String>,
    /// Recovery time objective: page (warning) when restore + verify take longer.
    pub rto: Option<String>,
    /// Pinged (GET) after each passing drill, healthchecks.io style.
    pub heartbeat_url: Option<String>,
    /// Drill a random stored artifact instead of taking a new backup, so old backups get
    /// tested too.
    #[serde(default)]
    pub random_artifact: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionConfig {
    /// Names the assertion in reports; unique in the drill.
    pub name: String,
    /// `sql` (the default), `freshness`, `row_count` or `integrity`.
    pub kind: Option<String>,
    /// `sql`: a query returning one row with one column, or any rows with
    /// `expect = "no rows"`.
    pub sql: Option<String>,
    /// `= 5`, `>= 1000`, `!= 0`, `< 3`, `between 1 and 5`, `no rows`, or a bare value
    /// meaning `=`.
    pub expect: Option<String>,
    /// `freshness`, `row_count`: `schema.table` (PostgreSQL) or `database.table`.
    pub table: Option<String>,
    /// `freshness`: the timestamp column whose newest value is checked.
    pub column: Option<String>,
    /// `freshness`: how much older than the dump the newest row may be ("26h").
    pub within: Option<String>,
    /// `row_count`: the fewest rows allowed.
    pub min: Option<u64>,
    /// `row_count`: the most rows allowed.
    pub max: Option<u64>,
    /// `row_count`: largest change from the last passing run ("10%").
    pub max_change: Option<String>,
}

/// The JSON Schema of a config file type (`DrillFile`, `MainConfigFile`) as it is
/// deserialized: what `firedrill schema` prints for editors. Draft 7, the draft TOML
/// tooling (taplo, Even Better TOML) reads best.
pub fn json_schema<T: JsonSchema>() -> serde_json::Value {
    let mut schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    without_null(&mut schema);
    if let Some(secret) = schema.pointer_mut("/definitions/SecretRef") {
        secret["oneOf"] = serde_json::json!([{ "required": ["env"] }, { "required": ["file"] }]);
        secret["properties"]["env"]["description"] =
            "The environment variable holding the secret.".into();
        secret["properties"]["file"]["description"] =
            "The file holding the secret (one trailing newline is dropped); relative to this file."
                .into();
    }
    schema
}

/// TOML has no null: an optional field is one that may be left out, so `null` goes from
/// types, from `anyOf`s and from defaults.
fn without_null(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(obj) => {
            if let Some(Value::Array(types)) = obj.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    obj.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(any)) = obj.get_mut("anyOf") {
                any.retain(|s| s.get("type").and_then(Value::as_str) != Some("null"));
                if any.len() == 1 {
                    // allOf keeps the description beside a draft-7 `$ref`.
                    let only = any.remove(0);
                    obj.remove("anyOf");
                    obj.insert("allOf".into(), Value::Array(vec![only]));
                }
            }
            match obj.get_mut("default") {
                Some(Value::Null) => {
                    obj.remove("default");
                }
                Some(Value::Object(d)) => d.retain(|_, v| !v.is_null()),
                _ => {}
            }
            for (key, child) in obj.iter_mut() {
                if key != "default" {
                    without_null(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}

/// The variants of a `type`-tagged enum in a schema (`oneOf`, or `anyOf`).
fn tagged_variants(schema: &mut schemars::Schema) -> impl Iterator<Item = &mut serde_json::Value> {
    let obj = schema.ensure_object();
    let key = if obj.contains_key("oneOf") {
        "oneOf"
    } else {
        "anyOf"
    };
    obj.get_mut(key)
        .and_then(serde_json::Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// `type = "mariadb"` is accepted (a serde alias, which schemars does not see).
fn mariadb_is_mysql(schema: &mut schemars::Schema) {
    for v in tagged_variants(schema) {
        if let Some(tag) = v.pointer_mut("/properties/type") {
            if tag.get("const").and_then(|c| c.as_str()) == Some("mysql") {
                *tag = serde_json::json!({ "type": "string", "enum": ["mysql", "mariadb"] });
            }
        }
    }
}

/// `[sandbox]` may leave out `type` (see [`SandboxConfig::deserialize_defaulted`]).
fn sandbox_type_defaults_to_docker(schema: &mut schemars::Schema) {
    for v in tagged_variants(schema) {
        if let Some(required) = v.get_mut("required").and_then(|r| r.as_array_mut()) {
            required.retain(|r| r != "type");
        }
        if let Some(tag) = v.pointer_mut("/properties/type") {
            tag["default"] = "docker".into();
        }
    }
}

/// How many artifacts to keep per period. Zero everywhere means "no policy": keep all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    #[serde(default)]
    pub keep_last: u32,
    #[serde(default)]
    pub keep_hourly: u32,
    #[serde(default)]
    pub keep_daily: u32,
    #[serde(default)]
    pub keep_weekly: u32,
    #[serde(default)]
    pub keep_monthly: u32,
    #[serde(default)]
    pub keep_yearly: u32,
}

impl RetentionPolicy {
    pub fn is_empty(&self) -> bool {
        *self == RetentionPolicy::default()
    }
}
