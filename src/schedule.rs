//! When drills run: cron expressions (the usual 5 fields, or cron's 6/7 with seconds and
//! year) in a time zone, with random jitter so a fleet does not hit its databases at the
//! same second.

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// A validated schedule.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    /// As written.
    pub expression: String,
    #[serde(skip)]
    cron: cron::Schedule,
    /// IANA time zone name; times are UTC when absent.
    pub timezone: Option<String>,
    #[serde(skip)]
    tz: jiff::tz::TimeZone,
    pub jitter: Duration,
}

impl Schedule {
    /// Parses `expr` (5, 6 or 7 fields) in `timezone`; the error says what to write.
    pub fn parse(expr: &str, timezone: Option<&str>, jitter: Duration) -> Result<Self, String> {
        let fields = expr.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {expr}"),
            6 | 7 => expr.to_string(),
            n => {
                return Err(format!(
                    "`{expr}` has {n} fields; write 5 (minute hour day month weekday, e.g. \"30 3 * * *\") or cron's 6/7 with seconds first"
                ))
            }
        };
        let cron = cron::Schedule::from_str(&full)
            .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))?;
        let tz = match timezone {
            None => jiff::tz::TimeZone::UTC,
            Some(name) => jiff::tz::TimeZone::get(name)
                .map_err(|e| format!("`{name}` is not a time zone ({e}); write an IANA name such as \"Europe/Berlin\""))?,
        };
        Ok(Schedule {
            expression: expr.to_string(),
            cron,
            timezone: timezone.map(str::to_string),
            tz,
            jitter,
        })
    }

    /// The first firing strictly after `after`, before jitter. Cron is evaluated on the
    /// wall clock of the schedule's time zone, so "03:00" stays 03:00 across DST.
    pub fn next_after(&self, after: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let local = after.to_zoned(self.tz.clone()).datetime();
        let naive = chrono::NaiveDate::from_ymd_opt(
            local.year() as i32,
            local.month() as u32,
            local.day() as u32,
        )?
        .and_hms_nano_opt(
            local.hour() as u32,
            local.minute() as u32,
            local.second() as u32,
            local.subsec_nanosecond() as u32,
        )?;
        let as_utc = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(naive, chrono::Utc);
        for next in self.cron.after(&as_utc).take(8) {
            let n = next.naive_utc();
            let civil = jiff::civil::DateTime::new(
                chrono::Datelike::year(&n.date()) as i16,
                chrono::Datelike::month(&n.date()) as i8,
                chrono::Datelike::day(&n.date()) as i8,
                chrono::Timelike::hour(&n.time()) as i8,
                chrono::Timelike::minute(&n.time()) as i8,
                chrono::Timelike::second(&n.time()) as i8,
                0,
            )
            .ok()?;
            // A wall-clock time skipped by DST moves forward; an ambiguous one takes the
            // first occurrence.
            let ts = self
                .tz
                .to_ambiguous_zoned(civil)
                .compatible()
                .ok()?
                .timestamp();
            if ts > after {
                return Some(ts);
            }
        }
        None
    }

    /// The next firing with jitter: a uniform delay in `[0, jitter]` drawn from `random`
    /// (a number in `[0, 1)`).
    pub fn next_with_jitter(&self, after: jiff::Timestamp, random: f64) -> Option<jiff::Timestamp> {
        let base = self.next_after(after)?;
        let j = self.jitter.mul_f64(random.clamp(0.0, 1.0));
        base.checked_add(jiff::SignedDuration::try_from(j).ok()?)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn five_and_six_fields() {
        let s = Schedule::parse("30 3 * * *", None, Duration::ZERO).unwrap();
        assert_eq!(
            s.next_after(ts("2026-11-26T10:00:00Z")),
            Some(ts("2026-11-27T03:30:00Z"))
        );
        let s = Schedule::parse("0 */15 * * * *", None, Duration::ZERO).unwrap();
        assert_eq!(
            s.next_after(ts("2026-11-26T10:07:00Z")),
            Some(ts("2026-11-26T10:15:00Z"))
        );
        assert!(Schedule::parse("* * *", None, Duration::ZERO)
            .unwrap_err()
            .contains("3 fields"));
        assert!(Schedule::parse("61 * * * *", None, Duration::ZERO).is_err());
        assert!(Schedule::parse("0 3 * * *", Some("Mars/Olympus"), Duration::ZERO).is_err());
    }

    #[test]
    fn time_zones_follow_the_wall_clock_across_dst() {
        let s = Schedule::parse("0 3 * * *", Some("Europe/Berlin"), Duration::ZERO).unwrap();
        // Winter: 03:00 CET = 02:00Z.
        assert_eq!(
            s.next_after(ts("2026-11-26T10:00:00Z")),
            Some(ts("2026-11-27T02:00:00Z"))
        );
        // Summer: 03:00 CEST = 01:00Z.
        assert_eq!(
            s.next_after(ts("2026-07-01T10:00:00Z")),
            Some(ts("2026-07-02T01:00:00Z"))
        );
    }

    proptest! {
        #[test]
        fn jitter_stays_within_its_bound(secs in 0i64..400_000_000, r in 0.0f64..1.0, jitter in 0u64..7200) {
            let s = Schedule::parse("*/5 * * * *", None, Duration::from_secs(jitter)).unwrap();
            let after = jiff::Timestamp::from_second(1_600_000_000 + secs).unwrap();
            let base = s.next_after(after).unwrap();
            let j = s.next_with_jitter(after, r).unwrap();
            prop_assert!(base > after);
            prop_assert!(base.as_second() - after.as_second() <= 300);
            prop_assert!(j >= base);
            prop_assert!(j.as_second() - base.as_second() <= jitter as i64);
        }
    }
}
