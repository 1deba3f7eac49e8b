//! `firedrill doctor`: checks, without changing anything, that a drill can run — the
//! source and its dump tool, the dump user's rights, storage (a probe object written and
//! deleted), Docker and the sandbox image, the notification channels, free disk, and the
//! identity file's permissions. Each finding is ok, warn or fail, with a fix.
//!
//! Every check has its own timeout: a hung endpoint is reported as timed out, apart from
//! one that answered with an error.

use std::path::Path;
use std::time::Duration;

use crate::config::{Drill, MainConfig, SourceSpec, StorageSpec};
use crate::engine::Engine;

pub use crate::finding::{Finding, Status};

/// Runs `fut` with a timeout; a timeout is a failed check that says so.
async fn timed(
    check: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = Vec<Finding>>,
) -> Vec<Finding> {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => vec![Finding::fail(
            check,
            format!(
                "timed out after {}s (no answer, not an error)",
                limit.as_secs()
            ),
            "check that the endpoint is up and reachable from this host (firewall, DNS)",
        )],
    }
}

const LIMIT: Duration = Duration::from_secs(20);

/// Everything the doctor checks for one drill. Each part (keys, source, storage,
/// Docker) is built on its own, so that one missing secret does not hide the others'
/// checks; and a part whose secret is missing still has what can be checked without it
/// checked: that its host answers.
pub async fn diagnose(drill: &Drill) -> Vec<Finding> {
    let mut out = Vec::new();
    match crate::drill::load_keys(drill) {
        Ok(_) => out.push(Finding::ok(
            "encryption keys",
            "the recipients and the identity load, and the identity opens what the recipients lock"
                .into(),
        )),
        Err(e) => out.push(Finding::from_error("encryption keys", &e)),
    }
    let backend = crate::sandbox::build_backend(&drill.sandbox);
    let source = match crate::drill::build_source(drill, backend.as_ref().ok().cloned()) {
        Ok(source) => {
            if !drill.source.verify_only() {
                out.extend(timed("source", LIMIT, source.doctor()).await);
            }
            Some(source)
        }
        Err(e) => {
            out.push(Finding::from_error("source", &e));
            if let Some((host, port)) = source_endpoint(&drill.source) {
                out.push(reachable("source reachable", &host, port, "source.password").await);
            }
            None
        }
    };
    if let SourceSpec::Snapshot(spec) = &drill.source {
        out.extend(timed("repository", LIMIT, repository(drill, spec)).await);
    }
    if let SourceSpec::Pgbackrest(spec) = &drill.source {
        out.extend(timed("repository", LIMIT, pgbackrest_repository(drill, spec)).await);
    }
    if let SourceSpec::Mariabackup(spec) = &drill.source {
        out.extend(timed("repository", LIMIT, mariabackup_directory(spec)).await);
    }
    if let SourceSpec::Barman(spec) = &drill.source {
        out.extend(timed("repository", LIMIT, barman_server(spec)).await);
    }
    match crate::store::build_store(&drill.storage, &drill.base_dir) {
        Ok(store) => out.extend(timed("storage", LIMIT, storage(store.as_ref())).await),
        Err(e) => {
            out.push(Finding::from_error("storage", &e));
            if let Some((host, port)) = storage_endpoint(&drill.storage) {
                out.push(
                    reachable("storage reachable", &host, port, "the storage credentials").await,
                );
            }
        }
    }
    match backend {
        Ok(backend) => out.extend(
            timed(
                "docker",
                LIMIT,
                sandbox(drill, backend.as_ref(), source.as_deref()),
            )
            .await,
        ),
        Err(e) => out.push(Finding::from_error("docker", &e)),
    }
    out.extend(identity_permissions(drill));
    out.extend(free_disk(drill));
    out
}

/// A Barman server's directory: its backups and archive read, and the backup a drill
/// to the newest state restores.
async fn barman_server(spec: &crate::config::BarmanSpec) -> Vec<Finding> {
    const CHECK: &str = "repository";
    use crate::physical::barman;
    let read = async {
        let (backups, archive) = barman::read(spec).await?;
        let newest = barman::choose(spec, &backups, None)?;
        Ok::<_, crate::error::Error>(format!(
            "Barman server {} in {}: {} backups, the newest done {} (PostgreSQL {}, ended {}); {} WAL segments archived, the newest {}",
            spec.server,
            spec.home.display(),
            backups.len(),
            newest.id,
            newest.major().unwrap_or_else(|| "?".into()),
            newest.end_time.map_or("?".into(), |t| t.to_string()),
            archive.names.len(),
            archive.names.last().map_or("none".into(), |n| n.to_string())
        ))
    };
    match read.await {
        Ok(what) => vec![Finding::ok(CHECK, what)],
        Err(e) => vec![Finding::from_error(CHECK, &e)],
    }
}

/// A MariaDB Backup directory: its backups read, and the chain the drill restores whole.
async fn mariabackup_directory(spec: &crate::config::MariabackupSpec) -> Vec<Finding> {
    const CHECK: &str = "repository";
    use crate::physical::mariabackup;
    let read = async {
        let backups = mariabackup::list(&spec.backup_dir).await?;
        let chain = mariabackup::chain(&backups, spec.set.as_deref(), &spec.backup_dir)?;
        let last = chain.last().unwrap_or(&chain[0]);
        Ok::<_, crate::error::Error>(format!(
            "MariaDB Backup: {} backups in {}; the drill restores {} ({} with {} incrementals), of {}",
            backups.len(),
            spec.backup_dir.display(),
            last.name,
            chain[0].name,
            chain.len() - 1,
            last.server_version.as_deref().unwrap_or("an unknown server version")
        ))
    };
    match read.await {
        Ok(what) => vec![Finding::ok(CHECK, what)],
        Err(e) => vec![Finding::from_error(CHECK, &e)],
    }
}

/// A snapshot drill's repository: the tool runs and is recent enough, the password opens
/// the repository, and there are snapshots to drill (read-only, as every drill reads).
/// A pgBackRest stanza: its repository opens with the drill's key, and what it holds.
async fn pgbackrest_repository(
    drill: &Drill,
    spec: &crate::config::PgbackrestSpec,
) -> Vec<Finding> {
    const CHECK: &str = "repository";
    use crate::physical::pgbackrest;
    let read = async {
        let host = pgbackrest::Host::new(spec, &drill.base_dir)?;
        let infos = host.info(LIMIT).await?;
        let info = pgbackrest::judge(spec, &infos)?;
        let newest = pgbackrest::choose(info, None, None)?;
        let wal = info
            .archive
            .iter()
            .filter_map(|a| a.max.clone())
            .max()
            .unwrap_or_else(|| "none".into());
        Ok::<_, crate::error::Error>(format!(
            "pgBackRest opens {} (stanza {}): {} backup sets, the newest {} ({}, PostgreSQL {}, ended {}); WAL archived to {wal}",
            spec.repository(),
            spec.stanza,
            info.backup.len(),
            newest.label,
            newest.kind,
            pgbackrest::set_major(info, newest).unwrap_or_else(|| "?".into()),
            newest.stopped_at(),
        ))
    };
    match read.await {
        Ok(what) => vec![Finding::ok(CHECK, what)],
        Err(e) => vec![Finding::from_error(CHECK, &e)],
    }
}

async fn repository(drill: &Drill, spec: &crate::config::SnapshotSpec) -> Vec<Finding> {
    const CHECK: &str = "repository";
    let repo = match crate::snapshot::build_repo(spec, &drill.base_dir, LIMIT) {
        Ok(r) => r,
        Err(e) => return vec![Finding::from_error(CHECK, &e)],
    };
    let version = match repo.version().await {
        Ok(v) => v,
        Err(e) => return vec![Finding::from_error(CHECK, &e)],
    };
    match repo.snapshots().await {
        Ok(s) if s.is_empty() => vec![Finding::warn(
            CHECK,
            format!("{} {version} opens {}, which holds no snapshot the drill's filters let through", repo.tool(), repo.describe()),
            "check source.tag, source.host, source.path or source.archive, and that the backup job runs",
        )],
        Ok(s) => {
            let newest = s.iter().map(|x| x.time).max().map(|t| t.to_string()).unwrap_or_default();
            vec![Finding::ok(
                CHECK,
                format!("{} {version} opens {}: {} snapshots, the newest of {newest}", repo.tool(), repo.describe(), s.len()),
            )]
        }
        Err(e) => vec![Finding::from_error(CHECK, &e)],
    }
}

/// Where the source listens, for a check that needs no secret.
fn source_endpoint(source: &SourceSpec) -> Option<(String, u16)> {
    match source {
        SourceSpec::Postgres(p) => Some((p.host.clone(), p.port)),
        SourceSpec::Mysql(m) => Some((m.host.clone(), m.port)),
        SourceSpec::Pgbackrest(p) => p.server.as_ref().map(|s| (s.host.clone(), s.port)),
        SourceSpec::Stored(_)
        | SourceSpec::Snapshot(_)
        | SourceSpec::Mariabackup(_)
        | SourceSpec::Barman(_) => None,
    }
}

/// Where the storage answers, for a check that needs no credentials: the endpoint given,
/// else the service's own.
fn storage_endpoint(storage: &StorageSpec) -> Option<(String, u16)> {
    let url = match storage {
        StorageSpec::S3 {
            endpoint, region, ..
        } => endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com")),
        StorageSpec::Gcs { .. } => "https://storage.googleapis.com".to_string(),
        StorageSpec::Azblob {
            endpoint,
            account_name,
            ..
        } => endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{account_name}.blob.core.windows.net")),
        StorageSpec::B2 { .. } => "https://api.backblazeb2.com".to_string(),
        StorageSpec::Swift { endpoint, .. } => endpoint.clone(),
        StorageSpec::Sftp { endpoint, .. } => endpoint.clone(),
        StorageSpec::Local { .. } => return None,
    };
    let url = reqwest::Url::parse(&url).ok()?;
    let port = url
        .port_or_known_default()
        .or_else(|| (url.scheme() == "ssh").then_some(22))?;
    Some((url.host_str()?.to_string(), port))
}

/// Whether `host:port` takes a TCP connection: what is left to check of a part whose
/// secret is missing (`without` names it).
async fn reachable(check: &str, host: &str, port: u16, without: &str) -> Finding {
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => Finding::ok(
            check,
            format!(
                "{host}:{port} accepts connections (the rest is not checked without {without})"
            ),
        ),
        Ok(Err(e)) => Finding::fail(
            check,
            format!("cannot connect to {host}:{port}: {e}"),
            "check the host and port, and that the server is up and reachable from this host",
        ),
        Err(_) => Finding::fail(
            check,
            format!("{host}:{port} did not answer within 10s (no answer, not an error)"),
            "check that the host is up and reachable from this host (firewall, DNS)",
        ),
    }
}

/// Writes and deletes a probe object beside the drill's artifacts.
async fn storage(store: &dyn crate::store::ArtifactStore) -> Vec<Finding> {
    let what = format!("storage {}", store.describe());
    let key = format!(".firedrill-doctor-{:08x}", rand::random::<u32>());
    if let Err(e) = store
        .put(&key, bytes::Bytes::from_static(b"firedrill doctor probe\n"))
        .await
    {
        return vec![Finding::from_error(
            &what,
            &e.context("writing a probe object"),
        )];
    }
    match store.delete(&key).await {
        Ok(()) => vec![Finding::ok(
            &what,
            "reachable and writable (a probe object was written and deleted)".into(),
        )],
        Err(e) => vec![Finding::warn(
            &what,
            format!("writable, but the probe object {key} could not be deleted: {e}"),
            "grant delete rights too: `firedrill prune` needs them to apply retention",
        )],
    }
}

/// Docker reachable and the sandbox image present (for a drill that names its version:
/// verify-only drills, or a fixed image).
async fn sandbox(
    drill: &Drill,
    backend: &dyn crate::sandbox::SandboxBackend,
    source: Option<&dyn crate::engine::DumpSource>,
) -> Vec<Finding> {
    let mut out = match backend.ping().await {
        Ok(what) => vec![Finding::ok("docker", format!("reachable: {what}"))],
        Err(e) => return vec![Finding::from_error("docker", &e)],
    };
    let crate::config::SandboxSpec::Docker(d) = &drill.sandbox;
    let engine_major: Option<(Engine, String)> = match (&drill.source, source) {
        (SourceSpec::Stored(s), _) => Some((s.engine, s.version.clone())),
        (SourceSpec::Snapshot(s), _) => s.engine.zip(s.version.clone()),
        // The source's version decides the image; the doctor asks the source.
        (_, Some(source)) => source.server_series().await.ok(),
        (_, None) => None,
    };
    let Some((engine, source_major)) = engine_major else {
        out.push(images_without_version(drill, d, backend).await);
        return out;
    };
    let major = match crate::drill::target_major(&drill.sandbox, engine, &source_major) {
        Ok(m) => m,
        Err(e) => {
            out.push(Finding::from_error("sandbox image", &e));
            return out;
        }
    };
    let image = d
        .image
        .as_ref()
        .map(|t| t.replace("{major}", &major))
        .unwrap_or_else(|| engine.default_image(&major));
    out.push(
        match backend
            .check_image(&image, &engine.build_hint(&major))
            .await
        {
            Ok(id) => Finding::ok(
                "sandbox image",
                format!(
                    "{image} is present ({})",
                    id.chars().take(19).collect::<String>()
                ),
            ),
            Err(e) => Finding::from_error("sandbox image", &e),
        },
    );
    out
}

/// The series firedrill's sandbox images are built for, per engine: what the doctor looks
/// for when the source's version is unknown.
fn known_series(engine: Engine) -> &'static [&'static str] {
    match engine {
        Engine::Postgres => &["12", "13", "14", "15", "16", "17", "18"],
        Engine::Mariadb => &["10.5", "10.6", "10.11", "11.4", "11.8"],
        Engine::Mysql => &["8.0", "8.4"],
    }
}

/// The sandbox image when the source's version is unknown (its secret is missing, it does
/// not answer): a fixed `sandbox.image` is checked as it is; otherwise the images present
/// for the source's engine are named, so that one missing for every version shows now.
async fn images_without_version(
    drill: &Drill,
    d: &crate::config::DockerSpec,
    backend: &dyn crate::sandbox::SandboxBackend,
) -> Finding {
    const CHECK: &str = "sandbox image";
    if let Some(fixed) = d.image.as_ref().filter(|t| !t.contains("{major}")) {
        return match backend
            .check_image(
                fixed,
                "build it, or correct sandbox.image in the drill file",
            )
            .await
        {
            Ok(_) => Finding::ok(CHECK, format!("{fixed} is present")),
            Err(e) => Finding::from_error(CHECK, &e),
        };
    }
    let engines: &[Engine] = match &drill.source {
        SourceSpec::Postgres(_) | SourceSpec::Pgbackrest(_) | SourceSpec::Barman(_) => {
            &[Engine::Postgres]
        }
        SourceSpec::Mysql(_) => &[Engine::Mariadb, Engine::Mysql],
        SourceSpec::Mariabackup(_) => &[Engine::Mariadb],
        SourceSpec::Stored(s) => std::slice::from_ref(&s.engine),
        SourceSpec::Snapshot(s) => match &s.engine {
            Some(e) => std::slice::from_ref(e),
            None => &Engine::ALL,
        },
    };
    let mut present = Vec::new();
    for &engine in engines {
        for major in known_series(engine) {
            let image = d
                .image
                .as_ref()
                .map(|t| t.replace("{major}", major))
                .unwrap_or_else(|| engine.default_image(major));
            if backend.check_image(&image, "").await.is_ok() {
                present.push(image);
            }
        }
    }
    let engine = engines[0];
    if present.is_empty() {
        Finding::fail(
            CHECK,
            format!(
                "the source's version is unknown (see the source check), and no sandbox image for {} is present",
                engine.as_str()
            ),
            &format!(
                "build the one of the source's version: {}",
                engine.build_hint("<major>")
            ),
        )
    } else {
        Finding::warn(
            CHECK,
            format!(
                "the source's version is unknown (see the source check); present: {}",
                present.join(", ")
            ),
            "fix the source check, and the doctor names the one image the drill needs",
        )
    }
}

/// Warns when the identity file is readable by group or others.
fn identity_permissions(drill: &Drill) -> Vec<Finding> {
    use std::os::unix::fs::PermissionsExt;
    let Some(crate::secret::SecretSource::File { file }) =
        drill.encryption.as_ref().map(|e| &e.identity)
    else {
        return Vec::new();
    };
    let path = drill.resolve(file);
    match std::fs::metadata(&path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => vec![Finding::warn(
            "identity file",
            format!(
                "{} has mode {:o}: group or others can read the key that decrypts every backup",
                path.display(),
                m.permissions().mode() & 0o777
            ),
            &format!("chmod 600 {}", path.display()),
        )],
        Ok(m) => vec![Finding::ok(
            "identity file",
            format!(
                "{} is private (mode {:o})",
                path.display(),
                m.permissions().mode() & 0o777
            ),
        )],
        Err(e) => vec![Finding::fail(
            "identity file",
            format!("cannot read {}: {e}", path.display()),
            "point encryption.identity at the file `firedrill keygen` wrote",
        )],
    }
}

/// Free space where firedrill writes files on this host: the temporary directory, and a
/// local store.
fn free_disk(drill: &Drill) -> Vec<Finding> {
    let mut places = vec![("temporary files", std::env::temp_dir())];
    if let StorageSpec::Local { path, .. } = &drill.storage {
        places.push(("local storage", drill.resolve(path)));
    }
    places
        .into_iter()
        .map(|(what, p)| match available_bytes(&p) {
            Some(n) if n < 1 << 30 => Finding::warn(
                &format!("free disk ({what})"),
                format!("{} free at {}", crate::human::human_bytes(n), p.display()),
                "free space or move it: a drill that runs out of disk fails",
            ),
            Some(n) => Finding::ok(
                &format!("free disk ({what})"),
                format!("{} free at {}", crate::human::human_bytes(n), p.display()),
            ),
            None => Finding::warn(
                &format!("free disk ({what})"),
                format!("cannot tell the free space at {}", p.display()),
                "check that the path exists",
            ),
        })
        .collect()
}

/// Free bytes on the file system holding `p` (or its nearest existing parent), from `df`.
fn available_bytes(p: &Path) -> Option<u64> {
    let mut p = p.to_path_buf();
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let out = std::process::Command::new("df")
        .args(["-Pk"])
        .arg(&p)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// The notification channels: SMTP servers greet, HTTP endpoints resolve.
pub async fn diagnose_channels(config: &MainConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    for (_, ch) in &config.notify.channels {
        let check = format!("channel {}", ch.name());
        out.extend(
            timed(&check, Duration::from_secs(10), async {
                vec![match ch.endpoint() {
                    crate::notify::Endpoint::Smtp { host, port } => {
                        smtp_greeting(&check, &host, port).await
                    }
                    crate::notify::Endpoint::Http(urls) => resolve_urls(&check, &urls).await,
                    crate::notify::Endpoint::Unknown => Finding::warn(
                        &check,
                        "its endpoint is read from a secret; not checked".into(),
                        "send a test page with `firedrill notify test`",
                    ),
                }]
            })
            .await,
        );
    }
    out
}

async fn smtp_greeting(check: &str, host: &str, port: u16) -> Finding {
    use tokio::io::AsyncReadExt;
    match tokio::net::TcpStream::connect((host, port)).await {
        Ok(mut s) => {
            let mut buf = [0u8; 256];
            match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                Ok(Ok(n)) if buf[..n].starts_with(b"220") => Finding::ok(
                    check,
                    format!(
                        "SMTP server {host}:{port} greets: {}",
                        String::from_utf8_lossy(&buf[..n]).trim()
                    ),
                ),
                Ok(Ok(n)) => Finding::fail(
                    check,
                    format!(
                        "{host}:{port} answered but not as an SMTP server: {}",
                        String::from_utf8_lossy(&buf[..n]).trim()
                    ),
                    "check host and port (465 implicit TLS answers only after the handshake: then this is expected)",
                ),
                _ => Finding::fail(
                    check,
                    format!("{host}:{port} accepted the connection but sent no greeting"),
                    "check host and port; port 465 needs tls = \"implicit\"",
                ),
            }
        }
        Err(e) => Finding::fail(
            check,
            format!("cannot connect to {host}:{port}: {e}"),
            "check the SMTP host and port, and that this host may reach it",
        ),
    }
}

async fn resolve_urls(check: &str, urls: &[String]) -> Finding {
    let mut resolved = Vec::new();
    for u in urls {
        let Ok(url) = reqwest::Url::parse(u) else {
            return Finding::fail(check, format!("`{u}` is not a URL"), "correct the URL");
        };
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let found = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map(|mut a| a.next().is_some())
            .unwrap_or(false);
        match found {
            true => resolved.push(host),
            false => {
                return Finding::fail(
                    check,
                    format!("{host} does not resolve"),
                    "check the URL's host name and this host's DNS",
                )
            }
        }
    }
    Finding::ok(check, format!("{} resolves", resolved.join(", ")))
}

/// Whether the findings allow the drill to run: no failure.
pub fn healthy(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.status != Status::Fail)
}

/// One line per finding, for people.
pub fn render(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        s.push_str(&format!(
            "{:<5} {}: {}\n",
            f.status.as_str(),
            f.check,
            f.detail
        ));
        if let Some(fix) = &f.fix {
            if f.status != Status::Ok {
                s.push_str(&format!("      fix: {fix}\n"));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn rendering_and_health() {
        let f = vec![
            Finding::ok("storage local:/x", "reachable and writable".into()),
            Finding::warn("dump user b", "can write: INSERT".into(), "revoke it"),
        ];
        assert!(healthy(&f));
        assert_eq!(
            render(&f),
            "ok    storage local:/x: reachable and writable\nwarn  dump user b: can write: INSERT\n      fix: revoke it\n"
        );
        let mut f = f;
        f.push(Finding::from_error(
            "docker",
            &Error::infra("Docker is not reachable").with_hint("start it"),
        ));
        assert!(!healthy(&f));
        assert_eq!(f[2].fix.as_deref(), Some("start it"));
    }

    #[test]
    fn free_space_is_read_from_df() {
        assert!(available_bytes(Path::new("/tmp/does/not/exist/yet")).is_some());
    }
}
