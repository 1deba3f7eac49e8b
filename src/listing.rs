//! One drill as a listing shows it: `firedrill list` and `GET /api/v1/drills` print the
//! same model, from the drill file and the catalog's newest runs.

use std::path::Path;

use serde::Serialize;

use crate::catalog::LatestRuns;
use crate::config::{Drill, Problem, SourceSpec, StorageSpec};
use crate::status::RunStatus;

/// One drill of a listing, serialized straight from borrowed fields (a daemon lists a
/// thousand).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DrillSummary<'a> {
    /// The drill's name; for a file that does not validate, the file's stem.
    #[schema(value_type = String)]
    pub name: &'a str,
    #[schema(value_type = String)]
    pub file: &'a Path,
    pub valid: bool,
    #[schema(value_type = Option<String>)]
    pub description: Option<&'a str>,
    /// `postgres`, `mysql/mariadb`, `postgres (stored)`.
    pub engine: Option<String>,
    /// Where its artifacts go, in one word: `s3://bucket/prefix`, `local:/srv/backups`.
    pub storage: Option<String>,
    /// The cron expression; none for drills run by hand.
    #[schema(value_type = Option<String>)]
    pub schedule: Option<&'a str>,
    #[schema(value_type = Option<String>)]
    pub timezone: Option<&'a str>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_run: Option<jiff::Timestamp>,
    pub last_run: Option<LastRun>,
    /// When the last run that passed started.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success: Option<jiff::Timestamp>,
    pub max_age_seconds: Option<u64>,
    pub rto_seconds: Option<u64>,
    /// Why the file does not validate.
    #[schema(value_type = Vec<Problem>)]
    pub problems: &'a [Problem],
}

/// A drill's newest finished run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LastRun {
    pub run_id: String,
    pub status: RunStatus,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<jiff::Timestamp>,
}

impl<'a> DrillSummary<'a> {
    /// A valid drill, with its newest runs, as of `now`.
    pub fn of(drill: &'a Drill, latest: LatestRuns, now: jiff::Timestamp) -> Self {
        let cron = drill.schedule.cron.as_ref();
        DrillSummary {
            name: &drill.name,
            file: &drill.file,
            valid: true,
            description: drill.description.as_deref(),
            engine: Some(engine_label(&drill.source)),
            storage: Some(storage_label(drill)),
            schedule: cron.map(|s| s.expression.as_str()),
            timezone: cron.and_then(|s| s.timezone.as_deref()),
            next_run: cron.and_then(|s| s.next_after(now)),
            last_run: latest.finished.map(|r| LastRun {
                run_id: r.run_id,
                status: r.status,
                started_at: r.started_at,
                finished_at: r.finished_at,
            }),
            last_success: latest.passed.map(|r| r.started_at),
            max_age_seconds: drill.schedule.max_age.map(|m| m.as_secs()),
            rto_seconds: drill.schedule.rto.map(|m| m.as_secs()),
            problems: &[],
        }
    }

    /// A drill file that does not validate.
    pub fn invalid(name: &'a str, file: &'a Path, problems: &'a [Problem]) -> Self {
        DrillSummary {
            name,
            file,
            valid: false,
            description: None,
            engine: None,
            storage: None,
            schedule: None,
            timezone: None,
            next_run: None,
            last_run: None,
            last_success: None,
            max_age_seconds: None,
            rto_seconds: None,
            problems,
        }
    }
}

/// The engine of a drill's source, in one word.
pub fn engine_label(source: &SourceSpec) -> String {
    match source {
        SourceSpec::Postgres(_) => "postgres".into(),
        SourceSpec::Mysql(_) => "mysql/mariadb".into(),
        SourceSpec::Stored(s) => format!("{} (stored)", s.engine),
        SourceSpec::Pgbackrest(_) => "postgres (pgbackrest)".into(),
        SourceSpec::Mariabackup(_) => "mariadb (mariadb-backup)".into(),
        SourceSpec::Barman(_) => "postgres (barman)".into(),
        SourceSpec::Snapshot(s) => match s.engine {
            Some(e) => format!("{e} ({})", s.tool.as_str()),
            None => format!("dump ({})", s.tool.as_str()),
        },
    }
}

/// Where a drill's artifacts go, in one short word: `s3://bucket/prefix`.
pub fn storage_label(drill: &Drill) -> String {
    let storage = &drill.storage;
    let (scheme, place) = match storage {
        StorageSpec::Local { path, .. } => ("local:", drill.resolve(path).display().to_string()),
        StorageSpec::S3 { bucket, .. } => ("s3://", bucket.clone()),
        StorageSpec::Gcs { bucket, .. } => ("gcs://", bucket.clone()),
        StorageSpec::Azblob { container, .. } => ("azblob://", container.clone()),
        StorageSpec::B2 { bucket, .. } => ("b2://", bucket.clone()),
        StorageSpec::Swift { container, .. } => ("swift://", container.clone()),
        StorageSpec::Sftp { endpoint, root, .. } => (
            "sftp:",
            format!(
                "{}/{}",
                endpoint.trim_end_matches('/'),
                root.trim_start_matches('/')
            ),
        ),
    };
    let prefix = storage.prefix().trim_matches('/');
    if prefix.is_empty() {
        format!("{scheme}{place}")
    } else {
        format!("{scheme}{}/{prefix}", place.trim_end_matches('/'))
    }
}
