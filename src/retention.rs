//! Which artifacts to keep, restic-style, and the one rule no policy overrides: the newest
//! artifact that passed a drill, and everything newer, are never deleted. A run of broken
//! backups can never push the last good one out.

use std::collections::{BTreeMap, HashSet};

use jiff::tz::TimeZone;
use serde::Serialize;

use crate::catalog::ArtifactRecord;
pub use crate::config::RetentionPolicy;
use crate::status::Verified;

/// The decision for one artifact, with every reason it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub run_id: String,
    pub created_at: jiff::Timestamp,
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// Names the period (hour, day, week…) a time falls in.
type PeriodKey = fn(&jiff::Zoned) -> String;

/// Decides, for one drill's artifacts, what to keep and why. Pure: the caller deletes.
pub fn plan(artifacts: &[ArtifactRecord], policy: &RetentionPolicy) -> Vec<Decision> {
    let mut sorted: Vec<&ArtifactRecord> = artifacts.iter().collect();
    // Newest first; ties broken by run id so the plan is deterministic.
    sorted.sort_by(|a, b| (b.created_at, &b.run_id).cmp(&(a.created_at, &a.run_id)));
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |run: &str, why: String| reasons.entry(run.to_string()).or_default().push(why);

    if policy.is_empty() {
        for a in &sorted {
            add(&a.run_id, "no retention policy".into());
        }
    }
    // The protected set: the newest verified artifact and everything newer.
    if let Some(pos) = sorted.iter().position(|a| a.verified == Verified::Yes) {
        add(
            &sorted[pos].run_id,
            "newest artifact that passed a drill".into(),
        );
        for a in &sorted[..pos] {
            add(
                &a.run_id,
                "newer than the last artifact that passed a drill".into(),
            );
        }
    } else {
        // Nothing was ever proven good: deleting anything could delete the only good one.
        for a in &sorted {
            add(
                &a.run_id,
                "no artifact of this drill has passed a drill yet".into(),
            );
        }
    }
    for a in sorted.iter().take(policy.keep_last as usize) {
        add(&a.run_id, "keep_last".into());
    }
    let utc = TimeZone::UTC;
    let buckets: [(&str, u32, PeriodKey); 5] = [
        ("keep_hourly", policy.keep_hourly, |z| {
            z.strftime("%Y-%m-%d %H").to_string()
        }),
        ("keep_daily", policy.keep_daily, |z| {
            z.strftime("%Y-%m-%d").to_string()
        }),
        ("keep_weekly", policy.keep_weekly, |z| {
            let d = z.date().iso_week_date();
            format!("{}-W{:02}", d.year(), d.week())
        }),
        ("keep_monthly", policy.keep_monthly, |z| {
            z.strftime("%Y-%m").to_string()
        }),
        ("keep_yearly", policy.keep_yearly, |z| {
            z.strftime("%Y").to_string()
        }),
    ];
    for (name, n, key) in buckets {
        if n == 0 {
            continue;
        }
        let mut seen = HashSet::new();
        for a in &sorted {
            let k = key(&a.created_at.to_zoned(utc.clone()));
            if seen.contains(&k) {
                continue;
            }
            if seen.len() as u32 >= n {
                break;
            }
            seen.insert(k.clone());
            add(&a.run_id, format!("{name} ({k})"));
        }
    }
    sorted
        .iter()
        .map(|a| {
            let r = reasons.remove(&a.run_id).unwrap_or_default();
            Decision {
                run_id: a.run_id.clone(),
                created_at: a.created_at,
                keep: !r.is_empty(),
                reasons: r,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn art(i: usize, secs: i64, verified: Verified) -> ArtifactRecord {
        ArtifactRecord {
            drill: "d".into(),
            run_id: format!("r{i:04}"),
            created_at: jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap(),
            engine: crate::engine::kind::Engine::Postgres,
            plain_bytes: 1,
            encrypted_bytes: 1,
            sha256: String::new(),
            location: String::new(),
            manifest_key: String::new(),
            verified,
            verified_at: None,
        }
    }

    #[test]
    fn keep_last_and_daily() {
        let arts: Vec<_> = (0..10)
            .map(|i| art(i, i as i64 * 43_200, Verified::Yes))
            .collect();
        let p = plan(
            &arts,
            &RetentionPolicy {
                keep_last: 2,
                keep_daily: 3,
                ..Default::default()
            },
        );
        let kept: Vec<&str> = p
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.run_id.as_str())
            .collect();
        // Newest two, plus the newest of each of the last three days.
        assert_eq!(kept, ["r0009", "r0008", "r0006"]);
    }

    #[test]
    fn failed_backups_never_push_out_the_last_good_one() {
        let mut arts: Vec<_> = (0..5)
            .map(|i| art(i, i as i64 * 3600, Verified::Yes))
            .collect();
        arts.extend((5..15).map(|i| art(i, i as i64 * 3600, Verified::No)));
        let p = plan(
            &arts,
            &RetentionPolicy {
                keep_last: 1,
                ..Default::default()
            },
        );
        let good = p.iter().find(|d| d.run_id == "r0004").unwrap();
        assert!(good.keep, "{good:?}");
        assert!(good.reasons[0].contains("passed a drill"));
        assert!(!p.iter().find(|d| d.run_id == "r0003").unwrap().keep);
    }

    fn verified() -> impl Strategy<Value = Verified> {
        prop_oneof![
            Just(Verified::Never),
            Just(Verified::Yes),
            Just(Verified::No)
        ]
    }

    proptest! {
        #[test]
        fn the_kept_set_honours_every_rule(
            hist in prop::collection::vec((0i64..400 * 86_400, verified()), 0..60),
            last in 0u32..5, hourly in 0u32..5, daily in 0u32..8, weekly in 0u32..5, monthly in 0u32..5, yearly in 0u32..3,
        ) {
            let arts: Vec<_> = hist.iter().enumerate().map(|(i, (t, v))| art(i, *t, *v)).collect();
            let policy = RetentionPolicy { keep_last: last, keep_hourly: hourly, keep_daily: daily, keep_weekly: weekly, keep_monthly: monthly, keep_yearly: yearly };
            let p = plan(&arts, &policy);
            prop_assert_eq!(p.len(), arts.len());
            let kept: HashSet<&str> = p.iter().filter(|d| d.keep).map(|d| d.run_id.as_str()).collect();
            let mut by_age: Vec<&ArtifactRecord> = arts.iter().collect();
            by_age.sort_by(|a, b| (b.created_at, &b.run_id).cmp(&(a.created_at, &a.run_id)));
            // The newest verified artifact and everything newer are always kept.
            match by_age.iter().position(|a| a.verified == Verified::Yes) {
                Some(pos) => for a in &by_age[..=pos] { prop_assert!(kept.contains(a.run_id.as_str())); },
                None => prop_assert_eq!(kept.len(), arts.len()),
            }
            // keep_last keeps the newest N.
            for a in by_age.iter().take(last as usize) { prop_assert!(kept.contains(a.run_id.as_str())); }
            // With no policy nothing is deleted.
            if policy.is_empty() { prop_assert_eq!(kept.len(), arts.len()); }
            // Every kept artifact has a reason; every deleted one none.
            for d in &p { prop_assert_eq!(d.keep, !d.reasons.is_empty()); }
            // keep_daily: the newest artifact of each of the newest `daily` distinct days is kept.
            let mut days = Vec::new();
            for a in &by_age {
                let day = a.created_at.to_zoned(TimeZone::UTC).date();
                if !days.contains(&day) {
                    if days.len() as u32 >= daily { break; }
                    days.push(day);
                    prop_assert!(kept.contains(a.run_id.as_str()));
                }
            }
        }
    }
}
