//! The drill file as written. Every struct refuses unknown fields; backends are closed,
//! `type`-tagged enums. Durations and sizes stay strings here so that validation can
//! name the field when one is wrong.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::SecretRef;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillFile {
    /// Defaults to the file name without `.toml`.
    pub name: Option<String>,
    pub description: Option<String>,
    pub source: SourceConfig,
    pub storage: StorageConfig,
    pub encryption: EncryptionConfig,
    #[serde(default)]
    pub compression: CompressionConfig,
    #[serde(default, deserialize_with = "SandboxConfig::deserialize_defaulted")]
    pub sandbox: SandboxConfig,
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    /// When the daemon runs the drill, and the objectives it is held to.
    pub schedule: Option<ScheduleConfig>,
    /// Which artifacts `firedrill prune` keeps.
    #[serde(default)]
    pub retention: crate::retention::RetentionPolicy,
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionsFile {
    #[serde(default, rename = "assertion")]
    pub assertions: Vec<AssertionConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerprintConfig {
    /// Tables up to this size are checksummed every run (default "256MiB"; "0" for none).
    pub checksum_max_table_size: Option<String>,
    /// Larger tables take turns: each is checksummed at least once in this many runs
    /// (default 7; 0 never checksums them).
    pub checksum_rotation: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// A dump or a row total smaller than the last passing run's by more than this share
    /// fails the drill as suspect (default "50%"; "100%" turns the guard off).
    pub max_shrink: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    Postgres(PostgresSourceConfig),
    /// MySQL or MariaDB; which one is read from the server.
    #[serde(alias = "mariadb")]
    Mysql(MysqlSourceConfig),
    /// Verify-only: no source to dump. The newest file under `prefix` in storage, made by
    /// another tool (pg_dump custom or plain, mysqldump; zstd- or gzip-compressed or not;
    /// age-encrypted or not), is restored and checked.
    Stored(StoredSourceConfig),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// A dump smaller than this is a failure (default "1KiB").
    pub min_dump_bytes: Option<String>,
}

fn default_mysql_port() -> u16 {
    3306
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// A dump smaller than this is a failure (default "1KiB").
    pub min_dump_bytes: Option<String>,
}

fn default_host() -> String {
    "localhost".into()
}
fn default_pg_port() -> u16 {
    5432
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsStorageConfig {
    pub bucket: String,
    /// The service account key (JSON).
    pub credential: SecretRef,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzblobStorageConfig {
    pub container: String,
    pub account_name: String,
    pub account_key: SecretRef,
    /// Default: https://<account_name>.blob.core.windows.net
    pub endpoint: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct B2StorageConfig {
    pub bucket: String,
    pub bucket_id: String,
    pub application_key_id: SecretRef,
    pub application_key: SecretRef,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwiftStorageConfig {
    /// The account's storage URL, e.g. https://swift.example.com/v1/AUTH_account
    pub endpoint: String,
    pub container: String,
    pub token: SecretRef,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalStorageConfig {
    pub path: PathBuf,
    /// Key prefix under the path; artifacts go to `<prefix>/<drill>/<run>/`.
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionConfig {
    /// zstd level, 1–19 (default 3).
    pub level: Option<i32>,
    /// zstd worker threads; 0 = one per core (default).
    pub threads: Option<u32>,
}

/// `[sandbox]`; `type` defaults to `docker`, the only backend today.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    pub dump: Option<String>,
    pub encrypt: Option<String>,
    pub upload: Option<String>,
    pub provision: Option<String>,
    pub restore: Option<String>,
    pub verify: Option<String>,
    pub teardown: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts for infrastructure steps (provision) before the drill gives up (default 3).
    pub attempts: Option<u32>,
    /// First backoff between attempts, doubled each time (default "2s").
    pub backoff: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionConfig {
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
    /// `row_count` bounds.
    pub min: Option<u64>,
    pub max: Option<u64>,
    /// `row_count`: largest change from the last passing run ("10%").
    pub max_change: Option<String>,
}
