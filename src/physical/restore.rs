//! The restore of a physical backup in the sandbox and its recovery, judged: pgBackRest
//! verifies the backup set and restores it into the sandbox's data volume, the server
//! starts in recovery with its restore_command reading the mounted repository, and the
//! drill waits for promotion, not the first connection: a server can accept read-only
//! connections and still fail its recovery. Then the server's own log says where
//! recovery stopped, and the archive's listing whether WAL was missing on the way.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::sandbox::{Sandbox, SandboxBackend, DATA_DIR as DATA};

use super::cmd::{as_server, psql, said, sh, write_tool_file, TOOL_DIR};
use super::recovery::{self, RecoveryLog};
use super::wal::{Archive, Gap, Lsn, Segment, SegmentName};
use super::{Plan, Target};

/// pgBackRest's settings in the sandbox, in [`TOOL_DIR`].
const TOOL_CONF_NAME: &str = "pgbackrest.conf";
/// The recovering server's log, in the sandbox's staging volume (the entrypoint writes it).
const SERVER_LOG: &str = "/var/lib/firedrill/staging/server.log";

/// A recovery that reached its target.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub log: RecoveryLog,
    /// Where recovery stopped, in words.
    pub reached: String,
    /// The timeline replayed.
    pub timeline: u32,
    pub last_transaction: Option<String>,
    /// Facts worth showing (verify's findings in other sets, later gaps).
    pub notes: Vec<String>,
    /// The target recovered to: the plan's, or the archive's end when a random time
    /// fell after the archive's last commit.
    pub target: Target,
}

fn pgbackrest(stanza: &str, args: &[String]) -> Vec<String> {
    let mut v = as_server(&["pgbackrest"]);
    v.push(format!("--config={TOOL_DIR}/{TOOL_CONF_NAME}"));
    v.push(format!("--stanza={stanza}"));
    v.extend(args.iter().cloned());
    v
}

/// Restores the plan's backup set into the sandbox and recovers it to the target.
pub async fn restore(
    backend: &dyn SandboxBackend,
    sb: &Sandbox,
    plan: &Plan,
    keep_going: &(dyn Fn(&str) + Sync),
) -> Result<Recovered> {
    // The repository's settings, with its passphrase, into the sandbox's memory, which
    // the server's user alone reads.
    write_tool_file(
        backend,
        sb,
        TOOL_CONF_NAME,
        plan.sandbox_conf.expose().as_bytes().to_vec(),
        Some("postgres"),
        "pgBackRest's settings",
    )
    .await?;

    // A repository in a bucket: what the restore reads, copied into the staging volume.
    let mut notes = Vec::new();
    if let Some(staging) = &plan.staging {
        keep_going(&format!(
            "copying {} files ({}) of the repository out of the bucket",
            staging.files.len(),
            crate::human::human_bytes(staging.bytes())
        ));
        let copied = super::stage::copy_in(backend, sb, staging, super::stage::STAGED_REPO).await?;
        notes.push(format!(
            "copied {} files ({}) of the repository out of the bucket into the sandbox: the info files, backup sets {} and the WAL from {}",
            staging.files.len(),
            crate::human::human_bytes(copied),
            chain_labels(&plan.set).join(", "),
            plan.set.archive.start.as_deref().unwrap_or("the set's start"),
        ));
    }

    // pgBackRest's own check of the repository's files runs beside the restore (both
    // only read the repository): it exits 0 whatever it finds, so its report is read,
    // and damage it finds in the set fails the drill even if the restore went through.
    keep_going("pgbackrest verify and restore");
    let mut args = vec![
        "--log-level-console=info".to_string(),
        format!("--set={}", plan.set.label),
        format!("--pg1-path={DATA}"),
    ];
    args.extend(plan.target.restore_args());
    args.push("restore".into());
    let verify_cmd = pgbackrest(
        &plan.stanza,
        &["--log-level-console=info".into(), "verify".into()],
    );
    let restore_cmd = pgbackrest(&plan.stanza, &args);
    let (verified, restored) = tokio::join!(
        backend.exec(sb, &verify_cmd, None),
        backend.exec(sb, &restore_cmd, None)
    );
    let out = verified?;
    let problems = super::pgbackrest::verify_problems(&format!("{}\n{}", out.stdout, out.stderr));
    let chain: Vec<String> = chain_labels(&plan.set);
    let (ours, others): (Vec<String>, Vec<String>) = problems.into_iter().partition(|p| {
        chain.iter().any(|l| p.contains(l.as_str())) || !p.contains("F/") && !p.contains("backup: ")
    });
    if !ours.is_empty() {
        return Err(Error::backup(format!(
            "pgBackRest's verify finds backup set {} damaged in the repository: {}",
            plan.set.label,
            ours[0]
        ))
        .with_stderr(ours.join("\n"))
        .with_hint("a file of the backup no longer matches the checksum pgBackRest recorded: the repository's storage corrupted it; take a new full backup and check the storage")
        .retryable(false));
    }
    if !others.is_empty() {
        notes.push(format!(
            "pgbackrest verify: other backup sets are damaged: {}",
            others.join("; ")
        ));
    }
    if out.exit_code != 0 {
        notes.push(format!(
            "pgbackrest verify exited {}: {}",
            out.exit_code,
            said(&out).lines().last().unwrap_or("")
        ));
    }

    let out = restored?;
    if out.exit_code != 0 {
        let text = said(&out);
        let e = super::pgbackrest::classify("restore", Some(out.exit_code as i32), &text);
        let e = if text.contains("[029]")
            || text.contains("data error")
            || text.contains("[FormatError]")
        {
            Error::backup(format!(
                "pgBackRest cannot restore backup set {}: a file of it does not decompress or decrypt ({})",
                plan.set.label,
                e.message
            ))
            .with_stderr(text)
            .with_hint("the backup's files in the repository are damaged; take a new full backup and check the repository's storage")
            .retryable(false)
        } else {
            e
        };
        return Err(e);
    }

    let from = From {
        target: &plan.target,
        start: plan
            .set
            .archive
            .start
            .as_deref()
            .and_then(SegmentName::parse),
        archive: &plan.archive,
        newest_wal: plan.window.1,
        set: &plan.set.label,
        random: plan.random,
    };
    recover(backend, sb, &from, notes, keep_going).await
}

/// What a recovery starts from: the target, the backup's first WAL segment and name,
/// and the archive as listed (for the gaps on the way).
pub struct From<'a> {
    pub target: &'a Target,
    pub start: Option<SegmentName>,
    pub archive: &'a Archive,
    pub newest_wal: Option<jiff::Timestamp>,
    pub set: &'a str,
    /// The target is a random time in the window: the window's end is when the newest
    /// segment was archived, which can be after its last commit.
    pub random: bool,
}

/// The recovery of a backup restored into the sandbox's data volume with its recovery
/// settings written: the server started (the entrypoint waits for the start flag), the
/// drill waits for promotion, and the server's own log and the archive's listing say
/// where it stopped and what was missing. Any tool's restore ends here.
pub async fn recover(
    backend: &dyn SandboxBackend,
    sb: &Sandbox,
    from: &From<'_>,
    mut notes: Vec<String>,
    keep_going: &(dyn Fn(&str) + Sync),
) -> Result<Recovered> {
    let out = backend
        .exec(sb, &as_server(&["pg_controldata", "-D", DATA]), None)
        .await?;
    if out.exit_code != 0 {
        return Err(
            Error::backup("the restored data directory has no readable pg_control")
                .with_stderr(said(&out))
                .retryable(false),
        );
    }
    let control = Control::parse(&out.stdout);

    keep_going("recovery");
    let out = backend
        .exec(sb, &sh("touch /run/firedrill/start"), None)
        .await?;
    if out.exit_code != 0 {
        return Err(Error::infra("cannot start the sandbox's server").with_stderr(said(&out)));
    }
    let mut promoted = wait_for_promotion(backend, sb).await?;
    let mut log_text = server_log(backend, sb).await?;
    let mut log = recovery::parse(&log_text);
    let latest = Target::Latest;
    let mut facts = Facts {
        target: from.target,
        start: from.start,
        archive: from.archive,
        newest_wal: from.newest_wal,
        seg_size: control.seg_size,
        set: from.set,
    };
    if let Some(why) = (!promoted)
        .then(|| facts.past_the_archive(&log, from.random))
        .flatten()
    {
        // The random time is after everything the archive holds: the state at that
        // time is not in it (it was in WAL not yet archived). The nearest moment that
        // is: the archive's end, which the same server now recovers to.
        keep_going("recovery to the archive's end");
        notes.push(why);
        let out = backend.exec(sb, &again_to_latest(), None).await?;
        if out.exit_code != 0 {
            return Err(Error::infra(
                "cannot start the sandbox's server again to the archive's end",
            )
            .with_stderr(said(&out)));
        }
        let before = log_text.len();
        promoted = wait_for_promotion(backend, sb).await?;
        log_text = server_log(backend, sb).await?;
        log_text = log_text.get(before..).unwrap_or(&log_text).to_string();
        log = recovery::parse(&log_text);
        facts.target = &latest;
    }
    if !promoted {
        return Err(facts
            .failed(&log)
            .with_stderr(crate::engine::tail(&log_text, 20)));
    }
    let out = backend
        .exec(
            sb,
            &psql(
                "postgres",
                "SELECT coalesce(pg_last_wal_replay_lsn()::text, '') || '|' || coalesce(pg_last_xact_replay_timestamp()::text, '')",
            ),
            None,
        )
        .await?;
    let mut row = out.stdout.trim().split('|');
    let replay_end = row.next().and_then(Lsn::parse);
    let last_transaction = row.next().filter(|s| !s.is_empty()).map(str::to_string);
    let (reached, timeline, mut later) = facts.reached(&log, replay_end)?;
    let target = facts.target.clone();
    notes.append(&mut later);
    Ok(Recovered {
        log,
        reached,
        timeline,
        last_transaction,
        notes,
        target,
    })
}

/// Rewrites the recovery settings to the archive's end (no target) and asks the
/// entrypoint for one more start of the server that ended (containers/README.md).
fn again_to_latest() -> Vec<String> {
    sh(&format!(
        "set -e; f={DATA}/postgresql.auto.conf; \
         {{ grep -Ev '^recovery_target(_time|_name|_xid|_lsn|_inclusive|_action)?[[:space:]]*=' $f || true; }} > $f.firedrill; \
         mv $f.firedrill $f; chown postgres:postgres $f; chmod 0600 $f; \
         rm -f /run/firedrill/exited; touch /run/firedrill/again"
    ))
}

/// The recovering server's log, or, from a sandbox that ended anyway, the end of the
/// log the entrypoint printed.
async fn server_log(backend: &dyn SandboxBackend, sb: &Sandbox) -> Result<String> {
    match backend
        .exec(sb, &sh(&format!("cat {SERVER_LOG}")), None)
        .await
    {
        Ok(out) if out.exit_code == 0 => Ok(out.stdout),
        _ => Ok(backend.state(sb).await?.log_tail),
    }
}

/// The labels a backup set's restore reads: itself and the sets it references (for a
/// differential or incremental one, its full backup and earlier ones).
fn chain_labels(set: &super::pgbackrest::BackupSet) -> Vec<String> {
    let mut v = vec![set.label.clone()];
    v.extend(set.reference.iter().flatten().cloned());
    if let Some((full, _)) = set.label.split_once('_') {
        v.push(full.to_string());
    }
    v.sort();
    v.dedup();
    v
}

/// Waits until the server leaves recovery (true) or ends by itself (false: the
/// entrypoint leaves `/run/firedrill/exited`, and the sandbox stays for its log).
async fn wait_for_promotion(backend: &dyn SandboxBackend, sb: &Sandbox) -> Result<bool> {
    let query = sh(
        "if [ -e /run/firedrill/exited ]; then echo exited; exit 0; fi; \
         exec firedrill-sandbox as-server postgres psql -XAtq -h /run/postgresql -U postgres -d postgres \
         -c 'SELECT pg_is_in_recovery()' 2>/dev/null",
    );
    let mut wait = Duration::from_millis(200);
    loop {
        match backend.exec(sb, &query, None).await {
            Ok(out) => match out.stdout.trim() {
                "f" => return Ok(true),
                "exited" => return Ok(false),
                _ => {}
            },
            Err(e) => {
                if !backend.state(sb).await?.running {
                    return Ok(false);
                }
                return Err(e);
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// What pg_controldata says that the drill uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub seg_size: u64,
}

impl Control {
    pub fn parse(out: &str) -> Control {
        let value = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim_start_matches(':').trim().to_string())
        };
        Control {
            seg_size: value("Bytes per WAL segment")
                .and_then(|v| v.parse().ok())
                .unwrap_or(16 << 20),
        }
    }
}

/// What judging a recovery needs.
pub struct Facts<'a> {
    pub target: &'a Target,
    /// The backup's first WAL segment.
    pub start: Option<SegmentName>,
    pub archive: &'a Archive,
    pub newest_wal: Option<jiff::Timestamp>,
    pub seg_size: u64,
    pub set: &'a str,
}

impl Facts<'_> {
    /// The first gap in the archive on the backup's timeline, from the backup's start to
    /// `to` (default: the archive's last segment).
    fn gap(&self, to: Option<u64>) -> Option<Gap> {
        let start = self.start?.segment(self.seg_size);
        let last = to.or_else(|| self.archive.last_on(start.tli, self.seg_size))?;
        let runs = self
            .archive
            .missing(start.tli, start.no, last, self.seg_size);
        runs.first()
            .map(|&r| Gap::new(self.archive, start.tli, r, self.seg_size))
    }

    /// Whether a random target time that recovery never reached lies after the archive's
    /// last commit (the server replayed all of it without a gap, and its last
    /// transaction is before the target): then the archive's end is the nearest moment
    /// it holds, and the words for the note say so.
    pub fn past_the_archive(&self, log: &RecoveryLog, random: bool) -> Option<String> {
        let Target::Time(at) = self.target else {
            return None;
        };
        if !random || !log.ended_before_target || self.gap(None).is_some() {
            return None;
        }
        let last = match &log.last_transaction {
            Some(t) => Some(recovery::log_time(t)?),
            None => None,
        };
        if last.is_some_and(|l| l >= *at) {
            return None;
        }
        Some(format!(
            "the random time {at} is after the archive's last commit ({}; its newest segment was archived at {}): the state at that time is in WAL not yet archived, so the drill recovered to the archive's end",
            last.map_or("none replayed".into(), |l| l.to_string()),
            self.newest_wal.map_or("an unknown time".into(), |t| t.to_string()),
        ))
    }

    /// Why a recovery that never promoted failed, named.
    pub fn failed(&self, log: &RecoveryLog) -> Error {
        let fix_gap = "the archive lost WAL: find out why archive-push missed it (pgBackRest's and the server's logs), and take a new full backup so that recovery no longer crosses the gap";
        if let Some(gap) = self.gap(None) {
            return Error::backup(format!(
                "{gap}: recovery to {} cannot cross it",
                self.target.describe()
            ))
            .with_hint(fix_gap)
            .retryable(false);
        }
        if log.ended_before_target {
            return match self.target {
                Target::Time(at) => {
                    let newest = self.newest_wal.map_or("unknown".into(), |t| t.to_string());
                    if self.newest_wal.is_some_and(|n| n < *at) {
                        Error::config(format!(
                            "target time {at} is outside the recovery window: the archive's newest WAL was written at {newest}"
                        ))
                        .with_hint("choose a target time inside the window, or find out why WAL stopped being archived")
                    } else {
                        Error::backup(format!(
                            "recovery ended before target time {at}: the archived WAL (newest written at {newest}) does not reach it"
                        ))
                        .with_hint("the WAL up to the target is not in the archive; check archiving on the server")
                        .retryable(false)
                    }
                }
                Target::Name(n) => Error::backup(format!(
                    "restore point \"{n}\" is not in the WAL archived after backup set {}: recovery reached the end of the archive without it",
                    self.set
                ))
                .with_hint("the restore point was made before this backup set or its WAL was never archived; check the name and `pgbackrest info`")
                .retryable(false),
                Target::Latest => Error::backup("recovery ended before its target".to_string()),
            };
        }
        let why = log
            .fatal
            .first()
            .cloned()
            .unwrap_or_else(|| "the server exited".to_string());
        Error::backup(format!("the restored server failed its recovery: {why}"))
            .with_hint("read the server's log below")
            .retryable(false)
    }

    /// Where a promoted recovery stopped, and whether that is the target: the words for
    /// the report, the timeline replayed, and notes (gaps after the target).
    pub fn reached(
        &self,
        log: &RecoveryLog,
        replay_end: Option<Lsn>,
    ) -> Result<(String, u32, Vec<String>)> {
        let last_restored = log.restored.last().copied();
        let tli = last_restored
            .map(|s| s.tli)
            .or(self.start.map(|s| s.tli))
            .unwrap_or(1);
        let end = log.redo_done.or(replay_end);
        let end_seg = end.map(|l| Segment::of(tli, l, self.seg_size).no);
        let mut notes = Vec::new();
        let where_ = match end {
            Some(l) => format!("{l}"),
            None => "an unknown position".to_string(),
        };
        let reached = match self.target {
            Target::Latest => {
                // The end of the archive is the target: every segment archived on the
                // timeline replayed must have been read.
                let archive_last = self.archive.last_on(tli, self.seg_size);
                let read_to = last_restored
                    .map(|s| s.segment(self.seg_size).no)
                    .max(end_seg);
                if let (Some(last), Some(read)) = (archive_last, read_to) {
                    if read < last {
                        let runs = self.archive.missing(tli, read + 1, last, self.seg_size);
                        let last_name = Segment { tli, no: last }.name(self.seg_size);
                        if let Some(&run) = runs.first() {
                            let gap = Gap::new(self.archive, tli, run, self.seg_size);
                            return Err(Error::backup(format!(
                                "{gap}: recovery to latest stopped at {where_}, and the WAL archived after the gap (to {last_name}) cannot be replayed"
                            ))
                            .with_hint("the archive lost WAL: find out why archive-push missed it, and take a new full backup so that recovery no longer crosses the gap")
                            .retryable(false));
                        }
                        let stopped_in = Segment { tli, no: read }.name(self.seg_size);
                        return Err(Error::backup(format!(
                            "recovery to latest stopped at {where_} in WAL segment {stopped_in}, but the archive holds WAL to {last_name}: {stopped_in} is damaged{}",
                            log.ends
                                .last()
                                .map(|e| format!(" ({e})"))
                                .unwrap_or_default()
                        ))
                        .with_hint("an archived WAL segment does not replay: the archive's storage damaged it, or it was archived incomplete; take a new full backup")
                        .retryable(false));
                    }
                }
                format!("the end of the archived WAL at {where_}")
            }
            Target::Time(at) => {
                let Some(stop) = &log.stopping else {
                    return Err(Error::backup(format!(
                        "recovery to time {at} promoted without reaching it (at {where_})"
                    ))
                    .retryable(false));
                };
                if let Some(gap) = self.gap(None) {
                    notes.push(format!(
                        "after the target: {gap}; a recovery to a later time fails"
                    ));
                }
                stop.clone()
            }
            Target::Name(n) => {
                let Some(stop) = log
                    .stopping
                    .as_ref()
                    .filter(|s| s.contains(&format!("\"{n}\"")))
                else {
                    return Err(Error::backup(format!(
                        "recovery to restore point \"{n}\" promoted without reaching it (at {where_})"
                    ))
                    .retryable(false));
                };
                if let Some(gap) = self.gap(None) {
                    notes.push(format!(
                        "after the target: {gap}; a recovery to a later point fails"
                    ));
                }
                stop.clone()
            }
        };
        if let (Some(top), true) = (
            self.archive.top_timeline(),
            matches!(self.target, Target::Latest),
        ) {
            if top > tli {
                notes.push(format!(
                    "the archive also holds timeline {top}; recovery followed timeline {tli}"
                ));
            }
        }
        Ok((reached, tli, notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB16: u64 = 16 << 20;

    fn archive(segs: &[u64]) -> Archive {
        let mut a = Archive::default();
        for &no in segs {
            a.add(&Segment { tli: 1, no }.name(MB16).to_string(), None);
        }
        a
    }

    fn facts<'a>(target: &'a Target, a: &'a Archive) -> Facts<'a> {
        Facts {
            target,
            start: SegmentName::parse("000000010000000000000002"),
            archive: a,
            newest_wal: "2026-12-01T10:00:00Z".parse().ok(),
            seg_size: MB16,
            set: "20261201-092810F",
        }
    }

    fn log(restored: &[u64], redo: &str) -> RecoveryLog {
        RecoveryLog {
            restored: restored
                .iter()
                .map(|&no| Segment { tli: 1, no }.name(MB16))
                .collect(),
            redo_done: Lsn::parse(redo),
            ..Default::default()
        }
    }

    #[test]
    fn latest_must_read_the_whole_archive() {
        let a = archive(&[2, 3, 4, 5]);
        let t = Target::Latest;
        let (reached, tli, _) = facts(&t, &a)
            .reached(&log(&[2, 3, 4, 5], "0/5000100"), None)
            .unwrap();
        assert!(reached.contains("end of the archived WAL"));
        assert_eq!(tli, 1);
        // Segment 4 gone: the server stops after 3, and the gap is named.
        let a = archive(&[2, 3, 5, 6]);
        let e = facts(&t, &a)
            .reached(&log(&[2, 3], "0/3FFFF00"), None)
            .unwrap_err();
        assert!(e.message.starts_with("WAL gap between 000000010000000000000003 and 000000010000000000000005; the archive is missing 000000010000000000000004"), "{e}");
        assert_eq!(e.kind, crate::error::ErrorKind::Backup);
        // Nothing missing, but replay stopped in 4: 4 is damaged.
        let a = archive(&[2, 3, 4, 5]);
        let mut l = log(&[2, 3, 4], "0/4000200");
        l.ends
            .push("invalid record length at 0/4000228: wanted 24, got 0".into());
        let e = facts(&t, &a).reached(&l, None).unwrap_err();
        assert!(
            e.message
                .contains("000000010000000000000004 is damaged (invalid record length"),
            "{e}"
        );
    }

    #[test]
    fn a_recovery_that_never_promoted_is_explained() {
        let a = archive(&[2, 3, 5]);
        let t = Target::Time("2026-12-01T09:59:00Z".parse().unwrap());
        let e = facts(&t, &a).failed(&RecoveryLog {
            ended_before_target: true,
            ..Default::default()
        });
        assert!(
            e.message
                .contains("the archive is missing 000000010000000000000004"),
            "{e}"
        );
        let a = archive(&[2, 3, 4]);
        let late = Target::Time("2026-12-01T11:00:00Z".parse().unwrap());
        let e = facts(&late, &a).failed(&RecoveryLog {
            ended_before_target: true,
            ..Default::default()
        });
        assert!(e.message.contains("outside the recovery window"), "{e}");
        assert_eq!(e.kind, crate::error::ErrorKind::Config);
        let name = Target::Name("nope".into());
        let e = facts(&name, &a).failed(&RecoveryLog {
            ended_before_target: true,
            ..Default::default()
        });
        assert!(
            e.message
                .contains("restore point \"nope\" is not in the WAL"),
            "{e}"
        );
    }

    #[test]
    fn a_random_time_after_the_archives_last_commit_recovers_to_its_end() {
        let a = archive(&[2, 3, 4]);
        let at = Target::Time("2026-12-01T09:59:30Z".parse().unwrap());
        let mut l = log(&[2, 3, 4], "0/4000100");
        l.ended_before_target = true;
        l.last_transaction = Some("2026-12-01 09:59:29.8+00".into());
        let why = facts(&at, &a).past_the_archive(&l, true).unwrap();
        assert!(
            why.starts_with("the random time 2026-12-01T09:59:30Z is after the archive's last commit (2026-12-01T09:59:29.8Z"),
            "{why}"
        );
        // A time the drill asked for is never moved.
        assert_eq!(facts(&at, &a).past_the_archive(&l, false), None);
        // A gap before the target: the archive lost WAL, the drill fails.
        let holed = archive(&[2, 3, 5]);
        assert_eq!(facts(&at, &holed).past_the_archive(&l, true), None);
        // The server replayed a commit after the target and still ended: not this case.
        l.last_transaction = Some("2026-12-01 09:59:31+00".into());
        assert_eq!(facts(&at, &a).past_the_archive(&l, true), None);
        // A recovery that failed for another reason.
        l.last_transaction = None;
        l.ended_before_target = false;
        assert_eq!(facts(&at, &a).past_the_archive(&l, true), None);
        l.ended_before_target = true;
        assert!(facts(&at, &a)
            .past_the_archive(&l, true)
            .unwrap()
            .contains("(none replayed;"));
    }

    #[test]
    fn a_time_target_needs_the_servers_stop() {
        let a = archive(&[2, 3, 4]);
        let t = Target::Time("2026-12-01T09:59:00Z".parse().unwrap());
        let mut l = log(&[2, 3], "0/3000100");
        assert!(facts(&t, &a).reached(&l, None).is_err());
        l.stopping = Some(
            "recovery stopping before commit of transaction 9, time 2026-12-01 09:59:00.2+00"
                .into(),
        );
        let (reached, _, notes) = facts(&t, &a).reached(&l, None).unwrap();
        assert!(reached.contains("transaction 9"));
        assert!(notes.is_empty());
    }

    #[test]
    fn controldata_is_read() {
        let c = Control::parse("pg_control version number:            1300\nBytes per WAL segment:                16777216\nData page checksum version:           1\n");
        assert_eq!(c, Control { seg_size: MB16 });
        // A segment size pg_controldata did not print: PostgreSQL's default.
        assert_eq!(Control::parse("").seg_size, MB16);
    }
}
