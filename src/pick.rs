//! Choosing a recovery point: the newest, a named one, or one at random ("pick a random
//! tape"), so that old backups get drilled too and not only last night's. One selection
//! for every kind of recovery point: firedrill's own artifacts (`--random`), snapshots in
//! a restic or Borg repository (`snapshot = "random"`), and later the points a physical
//! backup can recover to.

use std::time::Duration;

use serde::Serialize;

/// Which recovery point a drill wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "pick", content = "value")]
pub enum Pick {
    /// The newest.
    Latest,
    /// One at random among those taken within `within` of now (all of them if `None`).
    Random {
        #[serde(with = "humantime_opt")]
        within: Option<Duration>,
    },
    /// The one with this id (or a unique prefix of it, where the kind allows).
    Id(String),
}

impl Pick {
    /// What the drill file says: `latest`, `random`, or an id.
    pub fn parse(s: &str, within: Option<Duration>) -> Pick {
        match s {
            "latest" => Pick::Latest,
            "random" => Pick::Random { within },
            id => Pick::Id(id.to_string()),
        }
    }
}

/// Something that can be recovered: an id and when it was taken.
pub trait Point {
    fn id(&self) -> &str;
    fn taken_at(&self) -> jiff::Timestamp;
}

/// Why no point was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPoint {
    /// There are none at all.
    Empty,
    /// None was taken within the window (the newest is given).
    NoneWithin {
        within: Duration,
        newest: jiff::Timestamp,
    },
    /// No id starts with this.
    Unknown(String),
    /// Several ids start with this.
    Ambiguous(String, Vec<String>),
}

impl std::fmt::Display for NoPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoPoint::Empty => f.write_str("there are none"),
            NoPoint::NoneWithin { within, newest } => write!(
                f,
                "none was taken within the last {} (the newest is of {newest})",
                humantime::format_duration(*within)
            ),
            NoPoint::Unknown(id) => write!(f, "none has the id `{id}`"),
            NoPoint::Ambiguous(id, all) => {
                write!(f, "`{id}` is the start of several ids: {}", all.join(", "))
            }
        }
    }
}

/// Chooses among `points` as `pick` says, at `now`; `prefixes` allows an id's unique
/// prefix. `random` is a number drawn by the caller (any spread will do).
pub fn choose<'a, P: Point>(
    points: &'a [P],
    pick: &Pick,
    now: jiff::Timestamp,
    prefixes: bool,
    random: u64,
) -> Result<&'a P, NoPoint> {
    let newest = points
        .iter()
        .max_by_key(|p| (p.taken_at(), p.id().to_string()));
    let Some(newest) = newest else {
        return Err(NoPoint::Empty);
    };
    match pick {
        Pick::Latest => Ok(newest),
        Pick::Random { within } => {
            let eligible: Vec<&P> = points
                .iter()
                .filter(|p| match within {
                    None => true,
                    Some(w) => jiff::SignedDuration::try_from(*w)
                        .ok()
                        .and_then(|w| now.checked_sub(w).ok())
                        .is_none_or(|since| p.taken_at() >= since),
                })
                .collect();
            if eligible.is_empty() {
                return Err(NoPoint::NoneWithin {
                    within: within.unwrap_or_default(),
                    newest: newest.taken_at(),
                });
            }
            Ok(eligible[(random % eligible.len() as u64) as usize])
        }
        Pick::Id(id) => {
            if let Some(p) = points.iter().find(|p| p.id() == id) {
                return Ok(p);
            }
            let matching: Vec<&P> = if prefixes {
                points
                    .iter()
                    .filter(|p| p.id().starts_with(id.as_str()))
                    .collect()
            } else {
                Vec::new()
            };
            match matching.as_slice() {
                [one] => Ok(one),
                [] => Err(NoPoint::Unknown(id.clone())),
                many => Err(NoPoint::Ambiguous(
                    id.clone(),
                    many.iter().map(|p| p.id().to_string()).collect(),
                )),
            }
        }
    }
}

mod humantime_opt {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct P(&'static str, i64);
    impl Point for P {
        fn id(&self) -> &str {
            self.0
        }
        fn taken_at(&self) -> jiff::Timestamp {
            jiff::Timestamp::from_second(self.1).unwrap()
        }
    }

    const DAY: i64 = 86_400;

    #[test]
    fn latest_named_and_prefixes() {
        let ps = [P("aaa111", 10), P("bbb222", 30), P("abc333", 20)];
        let now = jiff::Timestamp::from_second(40).unwrap();
        assert_eq!(
            choose(&ps, &Pick::Latest, now, true, 0).unwrap().0,
            "bbb222"
        );
        assert_eq!(
            choose(&ps, &Pick::Id("abc".into()), now, true, 0)
                .unwrap()
                .0,
            "abc333"
        );
        assert!(matches!(
            choose(&ps, &Pick::Id("abc".into()), now, false, 0),
            Err(NoPoint::Unknown(_))
        ));
        assert!(
            matches!(choose(&ps, &Pick::Id("a".into()), now, true, 0), Err(NoPoint::Ambiguous(_, v)) if v.len() == 2)
        );
        assert!(matches!(
            choose::<P>(&[], &Pick::Latest, now, true, 0),
            Err(NoPoint::Empty)
        ));
    }

    #[test]
    fn random_stays_within_the_window_and_reaches_every_point() {
        let ps = [P("old", 0), P("a", 9 * DAY), P("b", 10 * DAY)];
        let now = jiff::Timestamp::from_second(10 * DAY + 60).unwrap();
        let pick = Pick::Random {
            within: Some(Duration::from_secs(2 * DAY as u64)),
        };
        let mut seen = std::collections::BTreeSet::new();
        for r in 0..20 {
            seen.insert(choose(&ps, &pick, now, false, r).unwrap().0);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
        let none = Pick::Random {
            within: Some(Duration::from_secs(30)),
        };
        assert!(matches!(
            choose(&ps, &none, now, false, 0),
            Err(NoPoint::NoneWithin { .. })
        ));
        let all = Pick::Random { within: None };
        let mut seen = std::collections::BTreeSet::new();
        for r in 0..30 {
            seen.insert(choose(&ps, &all, now, false, r).unwrap().0);
        }
        assert_eq!(seen.len(), 3);
    }
}
