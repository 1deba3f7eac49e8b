//! The digest: every drill on one message, sent on a schedule (`[notify.digest]`) to the
//! channels people read rather than the ones that wake them. For each drill: its last run
//! and how it ended, its last success, the recovery time measured (RTO) against the
//! drill's `rto`, the age of its last success (RPO) against its `max_age`, and what its
//! last passing run verified. Managers read it weekly; on-call reads the pages.
//!
//! A digest is built here from the drill files and the catalog, and sent through the same
//! [`Notifier`]s as pages. The daemon runs [`DigestSchedule::run`]: each scheduled digest
//! is claimed in the catalog before it is sent ([`Catalog::claim_digest`]), so a restart,
//! which catches up on a digest missed while the daemon was down, never sends one twice,
//! and neither do two daemons sharing a catalog. A digest is not queued in the outbox: a
//! channel still down after a few tries misses that one (it is logged).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Notifier;
use crate::cancel::Stop;
use crate::catalog::Catalog;
use crate::config::notify::NotifySpec;
use crate::config::Drill;
use crate::error::Result;
use crate::listing::DrillSummary;
use crate::report::RunReport;
use crate::schedule::Schedule;
use crate::status::{RunStatus, Stage};

pub const DIGEST_SCHEMA: &str = "firedrill.digest.v1";

/// A digest missed while the daemon was down is sent when it starts again, if it was
/// scheduled less than this long ago.
pub const CATCH_UP: Duration = Duration::from_secs(24 * 3600);

/// How a drill stands, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Its last run did not pass: the backup is broken, or the drill could not run.
    Failing,
    /// Its last run passed (or was stopped), but its last success is older than
    /// `max_age`, its recovery took longer than `rto`, or it never passed.
    ObjectiveMissed,
    /// It never ran.
    NeverRun,
    Ok,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Failing => "failing",
            Health::ObjectiveMissed => "objective missed",
            Health::NeverRun => "never run",
            Health::Ok => "ok",
        }
    }

    /// A mark for chat messages.
    pub fn icon(self) -> &'static str {
        match self {
            Health::Failing => "🔴",
            Health::ObjectiveMissed => "🟠",
            Health::NeverRun => "⚪",
            Health::Ok => "🟢",
        }
    }
}

/// A drill's newest finished run, as the digest shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestRun {
    pub run_id: String,
    pub status: RunStatus,
    pub started_at: jiff::Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<Stage>,
    /// The first line of its error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a drill's last passing run proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// Tables and rows compared with the dump's fingerprint.
    pub tables: Option<usize>,
    pub rows: Option<u64>,
    /// The drill's own `[[assertion]]`s, and how many held.
    pub assertions: usize,
    pub assertions_passed: usize,
    /// Anomaly guards (the backup against the last good one).
    pub guards: usize,
    /// The artifact restored, encrypted, in bytes.
    pub artifact_bytes: Option<u64>,
}

impl Verified {
    fn of(report: &RunReport) -> Verified {
        let own: Vec<_> = report.assertions.iter().filter(|a| !a.guard).collect();
        Verified {
            tables: report.tables,
            rows: report.rows,
            assertions: own.len(),
            assertions_passed: own.iter().filter(|a| a.passed).count(),
            guards: report.assertions.iter().filter(|a| a.guard).count(),
            artifact_bytes: report.artifact.as_ref().map(|a| a.encrypted_bytes),
        }
    }

    /// `3 tables, 62000 rows, 2 of 2 assertions, 1 anomaly guard, 695.1 KiB artifact`
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.tables {
            parts.push(plural(t, "table"));
        }
        if let Some(r) = self.rows {
            parts.push(plural(r as usize, "row"));
        }
        if self.assertions > 0 {
            parts.push(format!(
                "{} of {}",
                self.assertions_passed,
                plural(self.assertions, "assertion")
            ));
        }
        if self.guards > 0 {
            parts.push(plural(self.guards, "anomaly guard"));
        }
        if let Some(b) = self.artifact_bytes {
            parts.push(format!("{} artifact", crate::human::human_bytes(b)));
        }
        if parts.is_empty() {
            "the restore (no fingerprint recorded)".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One drill in a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestDrill {
    pub drill: String,
    pub health: Health,
    /// Its cron expression; none for drills run by hand.
    pub schedule: Option<String>,
    pub last_run: Option<DigestRun>,
    /// When its newest passing run started.
    pub last_success: Option<jiff::Timestamp>,
    /// RPO: seconds since the last success started, as of the digest.
    pub rpo_seconds: Option<i64>,
    /// Its `max_age`.
    pub max_age_seconds: Option<u64>,
    /// Whether the RPO is within `max_age` (none without a `max_age`).
    pub rpo_met: Option<bool>,
    /// RTO: the recovery time of the last passing run (restore and verify, as the
    /// catalog measures it), in seconds.
    pub rto_seconds: Option<f64>,
    /// Its `rto`.
    pub rto_target_seconds: Option<u64>,
    /// Whether the RTO is within `rto` (none without both).
    pub rto_met: Option<bool>,
    /// What the last passing run verified.
    pub verified: Option<Verified>,
}

/// Every drill, as of one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub schema: String,
    pub generated_at: jiff::Timestamp,
    /// The scheduled time it is for; none for one sent by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<jiff::Timestamp>,
    /// The time zone its times are shown in (UTC when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Worst first, then by name.
    pub drills: Vec<DigestDrill>,
}

/// A duration in seconds, in its largest unit and the next when not zero: `45s`, `12m`,
/// `4h 30m`, `2h`, `3d 2h`, `1d`.
pub fn age_text(secs: i64) -> String {
    let s = secs.max(0);
    let two = |big: i64, bu: &str, small: i64, su: &str| {
        if small == 0 {
            format!("{big}{bu}")
        } else {
            format!("{big}{bu} {small}{su}")
        }
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => two(s / 3600, "h", (s % 3600) / 60, "m"),
        _ => two(s / 86_400, "d", (s % 86_400) / 3600, "h"),
    }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

impl Digest {
    /// Builds the digest of `drills` from the catalog's newest runs, as of `now`.
    pub async fn build<'a>(
        catalog: &dyn Catalog,
        drills: impl IntoIterator<Item = &'a Drill>,
        spec: &NotifySpec,
        scheduled_for: Option<jiff::Timestamp>,
        now: jiff::Timestamp,
    ) -> Result<Digest> {
        let drills: Vec<&Drill> = drills.into_iter().collect();
        let names: Vec<String> = drills.iter().map(|d| d.name.clone()).collect();
        let latest = catalog.latest_runs(&names, true).await?;
        let mut out: Vec<DigestDrill> = drills
            .iter()
            .map(|d| {
                let runs = latest.get(&d.name).cloned().unwrap_or_default();
                let finished = runs.finished.clone();
                let passed = runs.passed.clone();
                let summary = DrillSummary::of(d, runs, now);
                DigestDrill::of(&summary, finished, passed, now)
            })
            .collect();
        out.sort_by(|a, b| (a.health, &a.drill).cmp(&(b.health, &b.drill)));
        Ok(Digest {
            schema: DIGEST_SCHEMA.into(),
            generated_at: now,
            scheduled_for,
            timezone: spec
                .digest
                .as_ref()
                .and_then(|d| d.schedule.timezone.clone()),
            base_url: spec.base_url.clone(),
            drills: out,
        })
    }

    /// How many drills stand each way, worst first, leaving out the empty ones.
    pub fn counts(&self) -> Vec<(Health, usize)> {
        let mut n: BTreeMap<Health, usize> = BTreeMap::new();
        for d in &self.drills {
            *n.entry(d.health).or_default() += 1;
        }
        n.into_iter().collect()
    }

    /// The worst state of any drill.
    pub fn worst(&self) -> Option<Health> {
        self.drills.iter().map(|d| d.health).min()
    }

    /// `[firedrill digest] 4 drills: 1 failing, 1 never run, 2 ok`
    pub fn title(&self) -> String {
        let counts: Vec<String> = self
            .counts()
            .into_iter()
            .map(|(h, n)| format!("{n} {}", h.as_str()))
            .collect();
        let n = self.drills.len();
        format!(
            "[firedrill digest] {n} drill{}{}{}",
            if n == 1 { "" } else { "s" },
            if counts.is_empty() { "" } else { ": " },
            counts.join(", ")
        )
    }

    /// One sentence on what the digest is.
    pub fn summary(&self) -> String {
        let when = self.time(self.generated_at);
        match self.worst() {
            None => format!("No drills are configured ({when})."),
            Some(Health::Ok) => {
                format!("Every drill passed its last run within its objectives (as of {when}).")
            }
            Some(_) => format!("Some drills need attention; the worst come first (as of {when})."),
        }
    }

    /// A time in the digest's time zone: `2026-11-30 08:00 CET`.
    pub fn time(&self, t: jiff::Timestamp) -> String {
        let tz = self
            .timezone
            .as_deref()
            .and_then(|z| jiff::tz::TimeZone::get(z).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        t.to_zoned(tz).strftime("%Y-%m-%d %H:%M %Z").to_string()
    }

    /// The link to a drill's runs on the dashboard, when `base_url` is set.
    pub fn drill_url(&self, drill: &str) -> Option<String> {
        self.base_url
            .as_ref()
            .map(|b| format!("{}/drills/{drill}", b.trim_end_matches('/')))
    }

    /// The plain text every channel can use: a headline and the facts of each drill.
    pub fn text(&self) -> String {
        let mut t = format!("{}\n\n{}\n", self.title(), self.summary());
        for d in &self.drills {
            t.push_str(&format!("\n{}\n", d.headline()));
            for (k, v) in d.facts(self) {
                t.push_str(&format!("  {k}: {v}\n"));
            }
            if let Some(url) = self.drill_url(&d.drill) {
                t.push_str(&format!("  runs: {url}\n"));
            }
        }
        t
    }
}

impl DigestDrill {
    fn of(
        s: &DrillSummary<'_>,
        finished: Option<crate::catalog::RunRecord>,
        passed: Option<crate::catalog::RunRecord>,
        now: jiff::Timestamp,
    ) -> DigestDrill {
        let last_run = finished.map(|r| DigestRun {
            run_id: r.run_id,
            status: r.status,
            started_at: r.started_at,
            failed_stage: r.failed_stage,
            error: r
                .error
                .as_deref()
                .and_then(|e| e.lines().next())
                .map(|l| super::clip(l, 300)),
        });
        let rpo_seconds = s.last_success.map(|t| now.as_second() - t.as_second());
        let rpo_met = s.max_age_seconds.map(|max| match rpo_seconds {
            Some(age) => age <= max as i64,
            None => false,
        });
        let rto_seconds = passed.as_ref().and_then(|r| r.rto_seconds);
        let rto_met = match (rto_seconds, s.rto_seconds) {
            (Some(m), Some(t)) => Some(m <= t as f64),
            _ => None,
        };
        let verified = passed
            .as_ref()
            .and_then(|r| r.report.as_deref())
            .and_then(|j| serde_json::from_str::<RunReport>(j).ok())
            .map(|r| Verified::of(&r));
        let health = match &last_run {
            None => Health::NeverRun,
            Some(r)
                if matches!(
                    r.status,
                    RunStatus::Failed | RunStatus::Error | RunStatus::Lost
                ) =>
            {
                Health::Failing
            }
            Some(_)
                if s.last_success.is_none() || rpo_met == Some(false) || rto_met == Some(false) =>
            {
                Health::ObjectiveMissed
            }
            Some(_) => Health::Ok,
        };
        DigestDrill {
            drill: s.name.to_string(),
            health,
            schedule: s.schedule.map(str::to_string),
            last_run,
            last_success: s.last_success,
            rpo_seconds,
            max_age_seconds: s.max_age_seconds,
            rpo_met,
            rto_seconds,
            rto_target_seconds: s.rto_seconds,
            rto_met,
            verified,
        }
    }

    /// `🔴 shop: failing`
    pub fn headline(&self) -> String {
        format!(
            "{} {}: {}",
            self.health.icon(),
            self.drill,
            self.health.as_str()
        )
    }

    /// Label and value of each thing the digest says about the drill.
    pub fn facts(&self, d: &Digest) -> Vec<(&'static str, String)> {
        let last_run = match &self.last_run {
            None => "never".to_string(),
            Some(r) => {
                let mut v = format!("{}", r.status);
                if let Some(s) = r.failed_stage {
                    v.push_str(&format!(" at {s}"));
                }
                v.push_str(&format!(", {} (run {})", d.time(r.started_at), r.run_id));
                if let Some(e) = &r.error {
                    v.push_str(&format!(": {e}"));
                }
                v
            }
        };
        let last_success = self
            .last_success
            .map(|t| d.time(t))
            .unwrap_or_else(|| "never".into());
        let rpo = match (self.rpo_seconds, self.max_age_seconds) {
            (Some(age), Some(max)) => format!(
                "{} since the last success (max_age {}: {})",
                age_text(age),
                age_text(max as i64),
                met(age <= max as i64)
            ),
            (Some(age), None) => format!("{} since the last success (no max_age)", age_text(age)),
            (None, Some(max)) => format!("never passed (max_age {}: MISSED)", age_text(max as i64)),
            (None, None) => "never passed (no max_age)".into(),
        };
        let rto = match (self.rto_seconds, self.rto_target_seconds) {
            (Some(m), Some(t)) => format!(
                "{} to restore and verify (rto {}: {})",
                crate::human::human_ms((m * 1000.0) as u64),
                age_text(t as i64),
                met(m <= t as f64)
            ),
            (Some(m), None) => format!(
                "{} to restore and verify (no rto)",
                crate::human::human_ms((m * 1000.0) as u64)
            ),
            (None, Some(t)) => format!("not measured yet (rto {})", age_text(t as i64)),
            (None, None) => "not measured yet".into(),
        };
        let verified = self
            .verified
            .as_ref()
            .map(Verified::describe)
            .unwrap_or_else(|| "nothing yet".into());
        vec![
            ("Last run", last_run),
            ("Last success", last_success),
            ("RPO", rpo),
            ("RTO", rto),
            ("Verified", verified),
        ]
    }
}

/// Sends a digest through each of `channels` (each one at most 30 s), reporting per
/// channel whether it was accepted.
pub async fn send(
    notifiers: &[Arc<dyn Notifier>],
    channels: &[String],
    digest: &Digest,
) -> Vec<(String, Result<()>)> {
    let mut out = Vec::new();
    for name in channels {
        let Some(n) = notifiers.iter().find(|n| n.name() == name) else {
            out.push((
                name.clone(),
                Err(crate::error::Error::config(format!(
                    "no channel named {name}"
                ))),
            ));
            continue;
        };
        let r = match tokio::time::timeout(Duration::from_secs(30), n.send_digest(digest)).await {
            Ok(r) => r,
            Err(_) => Err(crate::error::Error::infra(format!(
                "channel {name}: no answer within 30s"
            ))
            .retryable(true)),
        };
        out.push((name.clone(), r));
    }
    out
}

/// The latest firing of `schedule` at or before `now`, if one falls within `window`.
pub fn latest_firing(
    schedule: &Schedule,
    now: jiff::Timestamp,
    window: Duration,
) -> Option<jiff::Timestamp> {
    let earliest = now
        .checked_sub(jiff::SignedDuration::try_from(window).ok()?)
        .ok()?;
    // Look back twice as far each time until a firing shows: the firings found then all
    // lie in the older half, so walking forward through them is short even for a
    // schedule that fires every second.
    let mut back = jiff::SignedDuration::from_secs(1);
    loop {
        let from = now.checked_sub(back).ok()?.max(earliest);
        if let Some(first) = schedule.next_after(from).filter(|t| *t <= now) {
            let mut last = first;
            while let Some(n) = schedule.next_after(last).filter(|t| *t <= now) {
                last = n;
            }
            return Some(last);
        }
        if from <= earliest {
            return None;
        }
        back = back.checked_mul(2)?;
    }
}

/// The daemon's digests: each scheduled time claimed in the catalog, then sent.
pub struct DigestSchedule {
    pub catalog: Arc<dyn Catalog>,
    pub spec: NotifySpec,
    pub notifiers: Vec<Arc<dyn Notifier>>,
}

impl DigestSchedule {
    /// Claims the digest scheduled for `scheduled_for` and, when this process won it,
    /// builds and sends it. `None` when it was already claimed (sent before a restart, or
    /// by another daemon sharing the catalog).
    pub async fn send_scheduled<'a>(
        &self,
        scheduled_for: jiff::Timestamp,
        drills: impl IntoIterator<Item = &'a Drill>,
        now: jiff::Timestamp,
    ) -> Result<Option<Vec<(String, Result<()>)>>> {
        let Some(d) = &self.spec.digest else {
            return Ok(None);
        };
        if !self.catalog.claim_digest(scheduled_for).await? {
            tracing::info!(%scheduled_for, "the digest for this time was already sent (claimed in the catalog)");
            return Ok(None);
        }
        let digest = Digest::build(
            self.catalog.as_ref(),
            drills,
            &self.spec,
            Some(scheduled_for),
            now,
        )
        .await?;
        Ok(Some(send(&self.notifiers, &d.channels, &digest).await))
    }

    /// Sends each digest when its time comes until `stop` fires; on start, the latest
    /// one scheduled within [`CATCH_UP`] if nobody sent it. `now` gives wall time; the
    /// waiting uses tokio's clock (tests pause and advance it). Channels that refuse a
    /// digest are tried twice more, a minute apart.
    pub async fn run(
        self,
        drills: impl Fn() -> Arc<BTreeMap<String, Drill>> + Send,
        now: impl Fn() -> jiff::Timestamp + Send,
        stop: Stop,
    ) {
        let Some(spec) = self.spec.digest.clone() else {
            return;
        };
        let mut due = latest_firing(&spec.schedule, now(), CATCH_UP)
            .or_else(|| spec.schedule.next_after(now()));
        loop {
            let Some(at) = due else {
                tracing::warn!("the digest's schedule never fires again");
                return;
            };
            let t = now();
            if at <= t {
                let all = drills();
                match self.send_scheduled(at, all.values(), t).await {
                    Ok(Some(results)) => self.retry_failed(results, at, &drills, &now, &stop).await,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(scheduled_for = %at, "digest not sent: {e}"),
                }
                due = spec.schedule.next_after(now().max(at));
                continue;
            }
            let ns = at.as_nanosecond() - t.as_nanosecond();
            // Rounded up, never zero, and at most a minute: the wall clock may jump.
            let wait = Duration::from_nanos(ns.clamp(1_000_000, 60_000_000_000) as u64);
            tokio::select! {
                _ = stop.stopped() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn retry_failed(
        &self,
        mut results: Vec<(String, Result<()>)>,
        at: jiff::Timestamp,
        drills: &(impl Fn() -> Arc<BTreeMap<String, Drill>> + Send),
        now: &(impl Fn() -> jiff::Timestamp + Send),
        stop: &Stop,
    ) {
        for attempt in 1..=3 {
            let failed: Vec<String> = results
                .iter()
                .filter_map(|(n, r)| match r {
                    Ok(()) => {
                        tracing::info!(channel = %n, scheduled_for = %at, attempt, "digest sent");
                        None
                    }
                    Err(e) => {
                        let e = crate::secret::scrub(&e.to_string()).into_owned();
                        tracing::warn!(channel = %n, scheduled_for = %at, attempt, "digest not delivered: {e}");
                        Some(n.clone())
                    }
                })
                .collect();
            if failed.is_empty() || attempt == 3 {
                return;
            }
            tokio::select! {
                _ = stop.stopped() => return,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            let all = drills();
            let digest = match Digest::build(
                self.catalog.as_ref(),
                all.values(),
                &self.spec,
                Some(at),
                now(),
            )
            .await
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(scheduled_for = %at, "digest not rebuilt for a retry: {e}");
                    return;
                }
            };
            results = send(&self.notifiers, &failed, &digest).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_latest_firing_within_the_window() {
        let hourly = Schedule::parse("0 * * * *", None, Duration::ZERO).unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(
            latest_firing(&hourly, ts("2026-11-30T08:20:00Z"), day),
            Some(ts("2026-11-30T08:00:00Z"))
        );
        // A firing exactly now counts.
        assert_eq!(
            latest_firing(&hourly, ts("2026-11-30T08:00:00Z"), day),
            Some(ts("2026-11-30T08:00:00Z"))
        );
        let weekly = Schedule::parse("0 8 * * MON", None, Duration::ZERO).unwrap();
        // Monday 2026-11-30 08:00; Tuesday noon is within a day and a half, not a day.
        assert_eq!(
            latest_firing(&weekly, ts("2026-12-01T12:00:00Z"), day),
            None
        );
        assert_eq!(
            latest_firing(&weekly, ts("2026-12-01T12:00:00Z"), 2 * day),
            Some(ts("2026-11-30T08:00:00Z"))
        );
        let every_second = Schedule::parse("* * * * * *", None, Duration::ZERO).unwrap();
        assert_eq!(
            latest_firing(&every_second, ts("2026-11-30T08:00:00.5Z"), day),
            Some(ts("2026-11-30T08:00:00Z"))
        );
    }

    /// A channel that counts the digests it gets, by their scheduled time.
    struct Counting(std::sync::Mutex<Vec<Option<jiff::Timestamp>>>);

    #[async_trait::async_trait]
    impl Notifier for Counting {
        fn name(&self) -> &str {
            "count"
        }
        async fn send(&self, _: &super::super::Page) -> Result<()> {
            Ok(())
        }
        async fn send_digest(&self, d: &Digest) -> Result<()> {
            self.0.lock().unwrap().push(d.scheduled_for);
            Ok(())
        }
    }

    /// Two daemons share a catalog; each scheduled digest goes out once, from whichever
    /// claims it: the one missed before they started (caught up) and the next.
    #[tokio::test(start_paused = true)]
    async fn each_scheduled_digest_is_sent_once_whoever_runs_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let cfg: crate::config::notify::NotifyConfig = toml::from_str(
            "[[channel]]\nname = \"count\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\n[digest]\ncron = \"0 * * * *\"\n",
        )
        .unwrap();
        let spec = crate::config::notify::validate(&cfg).unwrap();
        let start = ts("2026-11-30T08:59:30Z");
        let t0 = tokio::time::Instant::now();
        let now = move || {
            start
                .checked_add(jiff::SignedDuration::try_from(t0.elapsed()).unwrap())
                .unwrap()
        };
        let stop = Stop::new();
        let mut counters = Vec::new();
        let mut loops = Vec::new();
        for _ in 0..2 {
            let counter = Arc::new(Counting(Default::default()));
            counters.push(counter.clone());
            let schedule = DigestSchedule {
                catalog: Arc::new(crate::catalog::SqliteCatalog::open(&path).unwrap()),
                spec: spec.clone(),
                notifiers: vec![counter],
            };
            loops.push(tokio::spawn(schedule.run(
                || Arc::new(BTreeMap::new()),
                now,
                stop.clone(),
            )));
        }
        tokio::time::sleep(Duration::from_secs(90)).await;
        stop.stop(crate::cancel::StopReason::Shutdown);
        for l in loops {
            l.await.unwrap();
        }
        let mut sent: Vec<Option<jiff::Timestamp>> = counters
            .iter()
            .flat_map(|c| c.0.lock().unwrap().clone())
            .collect();
        sent.sort();
        assert_eq!(
            sent,
            [
                Some(ts("2026-11-30T08:00:00Z")),
                Some(ts("2026-11-30T09:00:00Z"))
            ]
        );
    }

    #[test]
    fn ages_read_in_two_units() {
        assert_eq!(age_text(42), "42s");
        assert_eq!(age_text(600), "10m");
        assert_eq!(age_text(4 * 3600 + 30 * 60), "4h 30m");
        assert_eq!(age_text(7200), "2h");
        assert_eq!(age_text(86_400), "1d");
        assert_eq!(age_text(3 * 86_400 + 2 * 3600), "3d 2h");
    }
}
