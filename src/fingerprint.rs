//! What was dumped, in a form that can be compared with what was restored: per table, the
//! exact row count, its column names and types (with a hash of them for the manifest) and,
//! for the tables a run checksums, a checksum of its content; the number of schema objects
//! (views, functions, triggers, indexes, sequences, extensions) of each kind; and what
//! those objects hold ([`Holdings`]): large objects, what sequences and counters would
//! hand out next, whether materialized views hold data, and the definitions of defaults,
//! constraints, triggers, routines, views, indexes and comments. Every kind a logical
//! restore can drop is either compared or named as not compared, with the reason.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub tables: Vec<TableFingerprint>,
    /// Schema objects by kind (`views`, `functions`, `triggers`, `indexes`, `sequences`,
    /// `extensions`, `events`). Empty in manifests of older versions: not compared then.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, u64>,
    /// What the objects hold. Empty in manifests of older versions: not compared then.
    #[serde(default, skip_serializing_if = "Holdings::is_empty")]
    pub holdings: Holdings,
}

/// What the schema's objects hold, beyond their number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holdings {
    /// PostgreSQL's large objects: how many, and a checksum of their content where the
    /// dump role can read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_objects: Option<LargeObjects>,
    /// Sequences and AUTO_INCREMENT counters: what each would hand out next, and the
    /// column it feeds with that column's largest value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<Counter>,
    /// Materialized views by name: whether each holds data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matviews: BTreeMap<String, bool>,
    /// Definitions by kind (`defaults`, `constraints`, `triggers`, `routines`, `views`,
    /// `indexes`, `comments`, `policies`, `events`): each object's name and a hash of its
    /// definition as the server prints it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub definitions: BTreeMap<String, BTreeMap<String, String>>,
    /// What is not compared, and why (the restore drops it on purpose, the dump role
    /// cannot read it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_compared: BTreeMap<String, String>,
}

/// Large objects: how many, and a checksum of their content when it could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LargeObjects {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// A sequence or an AUTO_INCREMENT counter. Counters are not transactional: a restored
/// one ahead of the source is fine (the source moved on while the dump was taken), one
/// that would hand out a value its column already holds is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// `schema.sequence`, or `database.table` for an AUTO_INCREMENT counter.
    pub name: String,
    /// The value it would hand out next, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i128>,
    /// The column it feeds (`schema.table.column`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// That column's largest value, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_max: Option<i128>,
}

impl Holdings {
    pub fn is_empty(&self) -> bool {
        *self == Holdings::default()
    }

    /// The kinds this compares, for the report ("large objects", "sequences", …).
    pub fn compared_kinds(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(lo) = &self.large_objects {
            out.push(if lo.checksum.is_some() {
                "large objects (count and content)".to_string()
            } else {
                "large objects (count)".to_string()
            });
        }
        if !self.counters.is_empty() {
            out.push("sequences and counters".into());
        }
        if !self.matviews.is_empty() {
            out.push("materialized views (populated)".into());
        }
        out.extend(self.definitions.keys().cloned());
        out
    }

    /// Every way `restored` falls short of `self` (the source's).
    fn compare(&self, restored: &Holdings, out: &mut Vec<Mismatch>) {
        if let (Some(want), Some(got)) = (&self.large_objects, &restored.large_objects) {
            if want.count != got.count {
                out.push(Mismatch::LargeObjects {
                    expected: want.count,
                    actual: got.count,
                });
            } else if let (Some(a), Some(b)) = (&want.checksum, &got.checksum) {
                if a != b {
                    out.push(Mismatch::LargeObjectContent { count: want.count });
                }
            }
        }
        // A counter that would hand out a value its column already holds is broken
        // whatever the source said; one behind the source's value is a counter set back.
        let source: BTreeMap<&str, &Counter> =
            self.counters.iter().map(|c| (c.name.as_str(), c)).collect();
        if !self.counters.is_empty() {
            for c in &restored.counters {
                match (c.next, c.column_max, &c.column) {
                    (Some(next), Some(max), Some(column)) if next <= max => {
                        out.push(Mismatch::CounterBehind {
                            counter: c.name.clone(),
                            column: column.clone(),
                            next,
                            max,
                        })
                    }
                    _ => {
                        let was = source.get(c.name.as_str()).and_then(|s| s.next);
                        if let (Some(next), Some(was)) = (c.next, was) {
                            if next < was {
                                out.push(Mismatch::CounterSetBack {
                                    counter: c.name.clone(),
                                    expected: was,
                                    actual: next,
                                });
                            }
                        }
                    }
                }
            }
        }
        for (view, populated) in &self.matviews {
            if *populated && restored.matviews.get(view) == Some(&false) {
                out.push(Mismatch::NotPopulated { view: view.clone() });
            }
        }
        for (kind, want) in &self.definitions {
            let got = restored.definitions.get(kind);
            for (object, hash) in want {
                match got.and_then(|g| g.get(object)) {
                    None => out.push(Mismatch::Definition {
                        of: kind.clone(),
                        object: object.clone(),
                        change: DefinitionChange::Missing,
                    }),
                    Some(h) if h != hash => out.push(Mismatch::Definition {
                        of: kind.clone(),
                        object: object.clone(),
                        change: DefinitionChange::Differs,
                    }),
                    Some(_) => {}
                }
            }
            for object in got.into_iter().flatten().map(|(o, _)| o) {
                if !want.contains_key(object) {
                    out.push(Mismatch::Definition {
                        of: kind.clone(),
                        object: object.clone(),
                        change: DefinitionChange::Extra,
                    });
                }
            }
        }
    }
}

/// How a definition differs after the restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DefinitionChange {
    /// In the source, not after the restore.
    Missing,
    /// After the restore, not in the source.
    Extra,
    /// In both, defined otherwise.
    Differs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFingerprint {
    pub schema: String,
    pub name: String,
    pub rows: u64,
    /// `(name, type)` in column order.
    pub columns: Vec<(String, String)>,
    /// SHA-256 (hex) of the columns, one `name type\n` line each.
    pub columns_sha256: String,
    /// The table's size on the source, where the engine tells it (decides whether it is
    /// checksummed every run or in rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// A checksum of the table's content, independent of row order, prefixed with its
    /// algorithm (`md5sum:`, `rowhash64sum:`, `xxh3sum:`); only for the tables this run
    /// checksummed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl TableFingerprint {
    pub fn new(schema: String, name: String, rows: u64, columns: Vec<(String, String)>) -> Self {
        let columns_sha256 = columns_hash(&columns);
        TableFingerprint {
            schema,
            name,
            rows,
            columns,
            columns_sha256,
            bytes: None,
            checksum: None,
        }
    }

    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// Hash of a table's columns, stable across engines and versions of firedrill.
pub fn columns_hash(columns: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (n, t) in columns {
        h.update(n.as_bytes());
        h.update(b" ");
        h.update(t.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

impl Fingerprint {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// Every way `restored` differs from `self` (the source), in table order.
    pub fn compare(&self, restored: &Fingerprint) -> Vec<Mismatch> {
        let want: BTreeMap<String, &TableFingerprint> =
            self.tables.iter().map(|t| (t.qualified(), t)).collect();
        let got: BTreeMap<String, &TableFingerprint> =
            restored.tables.iter().map(|t| (t.qualified(), t)).collect();
        let mut out = Vec::new();
        for (name, w) in &want {
            match got.get(name) {
                None => out.push(Mismatch::MissingTable {
                    table: name.clone(),
                    rows: w.rows,
                }),
                Some(g) => {
                    if w.columns_sha256 != g.columns_sha256 {
                        out.push(Mismatch::Columns {
                            table: name.clone(),
                            expected: w.columns.iter().map(|(n, t)| format!("{n} {t}")).collect(),
                            actual: g.columns.iter().map(|(n, t)| format!("{n} {t}")).collect(),
                        });
                    }
                    if w.rows != g.rows {
                        out.push(Mismatch::RowCount {
                            table: name.clone(),
                            expected: w.rows,
                            actual: g.rows,
                        });
                    } else if let (Some(a), Some(b)) = (&w.checksum, &g.checksum) {
                        // Same rows but other content: a value changed on the way.
                        if a != b {
                            out.push(Mismatch::Content {
                                table: name.clone(),
                                rows: w.rows,
                            });
                        }
                    }
                }
            }
        }
        for (name, g) in &got {
            if !want.contains_key(name) {
                out.push(Mismatch::ExtraTable {
                    table: name.clone(),
                    rows: g.rows,
                });
            }
        }
        for (object, expected) in &self.objects {
            let actual = restored.objects.get(object).copied().unwrap_or(0);
            if actual != *expected {
                out.push(Mismatch::Objects {
                    object: object.clone(),
                    expected: *expected,
                    actual,
                });
            }
        }
        self.holdings.compare(&restored.holdings, &mut out);
        // A kind whose objects are compared by name says which went missing or appeared:
        // its bare count would only repeat that.
        let named: std::collections::BTreeSet<String> = out
            .iter()
            .filter_map(|m| match m {
                Mismatch::Definition { of, change, .. } if *change != DefinitionChange::Differs => {
                    Some(of.clone())
                }
                _ => None,
            })
            .collect();
        out.retain(|m| !matches!(m, Mismatch::Objects { object, .. } if named.contains(object)));
        out
    }

    /// The tables this fingerprint holds a checksum for, as `schema.table`.
    pub fn checksummed(&self) -> Vec<&TableFingerprint> {
        self.tables
            .iter()
            .filter(|t| t.checksum.is_some())
            .collect()
    }
}

/// Which tables a run checksums: every table up to `max_table_bytes`, and of the larger
/// ones the share whose turn it is, so that each is checksummed at least once every
/// `rotation` runs (never when `rotation` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChecksumPlan {
    pub max_table_bytes: u64,
    pub rotation: u32,
    /// This run's turn (the number of earlier runs of the drill).
    pub slot: u64,
}

impl Default for ChecksumPlan {
    fn default() -> Self {
        ChecksumPlan {
            max_table_bytes: 256 << 20,
            rotation: 7,
            slot: 0,
        }
    }
}

impl ChecksumPlan {
    /// Checksums nothing.
    pub fn none() -> Self {
        ChecksumPlan {
            max_table_bytes: 0,
            rotation: 0,
            slot: 0,
        }
    }

    /// The names (`schema.table`) of `tables` (name, size in bytes) to checksum this run.
    pub fn select(&self, tables: &[(String, u64)]) -> std::collections::BTreeSet<String> {
        let mut large: Vec<&String> = Vec::new();
        let mut out = std::collections::BTreeSet::new();
        for (name, bytes) in tables {
            if *bytes <= self.max_table_bytes && self.max_table_bytes > 0 {
                out.insert(name.clone());
            } else {
                large.push(name);
            }
        }
        if self.rotation > 0 {
            large.sort();
            let turn = self.slot % u64::from(self.rotation);
            for (i, name) in large.into_iter().enumerate() {
                if i as u64 % u64::from(self.rotation) == turn {
                    out.insert(name.clone());
                }
            }
        }
        out
    }
}

/// One difference between the dumped and the restored database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mismatch {
    MissingTable {
        table: String,
        rows: u64,
    },
    ExtraTable {
        table: String,
        rows: u64,
    },
    RowCount {
        table: String,
        expected: u64,
        actual: u64,
    },
    Columns {
        table: String,
        expected: Vec<String>,
        actual: Vec<String>,
    },
    /// Same row count, other content: the checksums differ.
    Content {
        table: String,
        rows: u64,
    },
    /// A different number of schema objects of one kind.
    Objects {
        object: String,
        expected: u64,
        actual: u64,
    },
    /// A different number of large objects.
    LargeObjects {
        expected: u64,
        actual: u64,
    },
    /// As many large objects, other content.
    LargeObjectContent {
        count: u64,
    },
    /// A counter that would hand out a value its column already holds.
    CounterBehind {
        counter: String,
        column: String,
        next: i128,
        max: i128,
    },
    /// A counter behind the value the source's had when the dump was taken.
    CounterSetBack {
        counter: String,
        expected: i128,
        actual: i128,
    },
    /// A materialized view that held data in the source and holds none after restore.
    NotPopulated {
        view: String,
    },
    /// A definition (default, constraint, trigger, routine, view, index, comment…)
    /// missing, extra or different after restore.
    Definition {
        /// `defaults`, `constraints`, `triggers`, …
        of: String,
        object: String,
        change: DefinitionChange,
    },
}

impl Mismatch {
    /// What the mismatch is about: a table, or a kind of schema object.
    pub fn subject(&self) -> &str {
        match self {
            Mismatch::MissingTable { table, .. }
            | Mismatch::ExtraTable { table, .. }
            | Mismatch::RowCount { table, .. }
            | Mismatch::Columns { table, .. }
            | Mismatch::Content { table, .. } => table,
            Mismatch::Objects { object, .. } => object,
            Mismatch::LargeObjects { .. } | Mismatch::LargeObjectContent { .. } => "large objects",
            Mismatch::CounterBehind { counter, .. } | Mismatch::CounterSetBack { counter, .. } => {
                counter
            }
            Mismatch::NotPopulated { view } => view,
            Mismatch::Definition { object, .. } => object,
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::MissingTable { table, rows } => {
                write!(
                    f,
                    "{table}: missing after restore (dumped with {rows} rows)"
                )
            }
            Mismatch::ExtraTable { table, rows } => {
                write!(
                    f,
                    "{table}: present after restore ({rows} rows) but not in the dump"
                )
            }
            Mismatch::RowCount {
                table,
                expected,
                actual,
            } => write!(f, "{table}: {actual} rows restored, {expected} dumped"),
            Mismatch::Columns {
                table,
                expected,
                actual,
            } => {
                let missing: Vec<&String> =
                    expected.iter().filter(|c| !actual.contains(c)).collect();
                let extra: Vec<&String> = actual.iter().filter(|c| !expected.contains(c)).collect();
                write!(f, "{table}: columns differ")?;
                if !missing.is_empty() {
                    write!(f, "; dumped but not restored: {}", join(&missing))?;
                }
                if !extra.is_empty() {
                    write!(f, "; restored but not dumped: {}", join(&extra))?;
                }
                if missing.is_empty() && extra.is_empty() {
                    write!(f, "; column order changed")?;
                }
                Ok(())
            }
            Mismatch::Content { table, rows } => write!(
                f,
                "{table}: content differs (same {rows} rows, other values: the checksums of dump and restore differ)"
            ),
            Mismatch::Objects {
                object,
                expected,
                actual,
            } => write!(f, "{object}: {actual} after restore, {expected} in the source"),
            Mismatch::LargeObjects { expected, actual } => write!(
                f,
                "large objects: {actual} after restore, {expected} in the source"
            ),
            Mismatch::LargeObjectContent { count } => write!(
                f,
                "large objects: content differs (same {count} objects, other bytes)"
            ),
            Mismatch::CounterBehind {
                counter,
                column,
                next,
                max,
            } => write!(
                f,
                "{counter}: would hand out {next} next, but {column} already holds {max}: the counter was set back"
            ),
            Mismatch::CounterSetBack {
                counter,
                expected,
                actual,
            } => write!(
                f,
                "{counter}: would hand out {actual} next, behind the source's {expected}"
            ),
            Mismatch::NotPopulated { view } => write!(
                f,
                "{view}: materialized view restored without its data (it was populated in the source)"
            ),
            Mismatch::Definition { of, object, change } => {
                let kind = singular(of);
                match change {
                    DefinitionChange::Missing => {
                        write!(f, "{object}: {kind} missing after restore")
                    }
                    DefinitionChange::Extra => {
                        write!(f, "{object}: {kind} present after restore but not in the source")
                    }
                    DefinitionChange::Differs => write!(
                        f,
                        "{object}: {kind} defined otherwise after restore than in the source"
                    ),
                }
            }
        }
    }
}

/// `indexes` → `index`, `policies` → `policy`, `defaults` → `default`.
fn singular(kind: &str) -> &str {
    match kind {
        "indexes" => "index",
        "policies" => "policy",
        k => k.strip_suffix('s').unwrap_or(k),
    }
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, rows: u64, cols: &[(&str, &str)]) -> TableFingerprint {
        TableFingerprint::new(
            "public".into(),
            name.into(),
            rows,
            cols.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn identical_fingerprints_match() {
        let a = Fingerprint {
            tables: vec![t("a", 3, &[("id", "integer")]), t("b", 0, &[("x", "text")])],
            ..Default::default()
        };
        assert!(a.compare(&a.clone()).is_empty());
    }

    #[test]
    fn every_difference_is_listed() {
        let src = Fingerprint {
            tables: vec![
                t("a", 3, &[("id", "integer")]),
                t("b", 10, &[("x", "text"), ("y", "integer")]),
                t("c", 1, &[("z", "text")]),
            ],
            ..Default::default()
        };
        let restored = Fingerprint {
            tables: vec![
                t("a", 2, &[("id", "integer")]),
                t("b", 10, &[("x", "text"), ("y", "bigint")]),
                t("d", 5, &[("q", "text")]),
            ],
            ..Default::default()
        };
        let m = src.compare(&restored);
        let text: Vec<String> = m.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            text,
            [
                "public.a: 2 rows restored, 3 dumped",
                "public.b: columns differ; dumped but not restored: y integer; restored but not dumped: y bigint",
                "public.c: missing after restore (dumped with 1 rows)",
                "public.d: present after restore (5 rows) but not in the dump",
            ]
        );
    }

    #[test]
    fn content_and_objects_are_compared() {
        let mut a = t("a", 3, &[("id", "integer")]);
        a.checksum = Some("md5sum:1".into());
        let mut src = Fingerprint {
            tables: vec![a.clone()],
            objects: BTreeMap::from([("views".to_string(), 2), ("triggers".to_string(), 1)]),
            ..Default::default()
        };
        let mut restored = src.clone();
        restored.tables[0].checksum = Some("md5sum:2".into());
        restored.objects.insert("views".into(), 1);
        let text: Vec<String> = src
            .compare(&restored)
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(
            text,
            [
                "public.a: content differs (same 3 rows, other values: the checksums of dump and restore differ)",
                "views: 1 after restore, 2 in the source",
            ]
        );
        // A table the run did not checksum, and an old manifest without objects, pass.
        src.tables[0].checksum = None;
        src.objects.clear();
        assert!(src.compare(&restored).is_empty());
    }

    #[test]
    fn what_objects_hold_is_compared_by_invariant_where_it_is_not_transactional() {
        let counter = |name: &str, next: i128, column: Option<&str>, max: Option<i128>| Counter {
            name: name.into(),
            next: Some(next),
            column: column.map(String::from),
            column_max: max,
        };
        let src = Fingerprint {
            holdings: Holdings {
                large_objects: Some(LargeObjects {
                    count: 2,
                    checksum: Some("md5sum:7".into()),
                }),
                counters: vec![
                    counter(
                        "public.orders_id_seq",
                        12001,
                        Some("public.orders.id"),
                        Some(12000),
                    ),
                    counter("public.tickets", 500, None, None),
                ],
                matviews: BTreeMap::from([
                    ("public.totals".into(), true),
                    ("public.lazy".into(), false),
                ]),
                definitions: BTreeMap::from([(
                    "triggers".into(),
                    BTreeMap::from([("public.orders.audit".into(), "aa".into())]),
                )]),
                not_compared: BTreeMap::new(),
            },
            ..Default::default()
        };
        // Healthy under write load: counters ahead of the source, a stale view's data.
        let mut ok = src.clone();
        ok.holdings.counters = vec![
            counter(
                "public.orders_id_seq",
                12050,
                Some("public.orders.id"),
                Some(12000),
            ),
            counter("public.tickets", 510, None, None),
        ];
        assert!(src.compare(&ok).is_empty(), "{:?}", src.compare(&ok));

        let mut broken = src.clone();
        broken.holdings.large_objects = Some(LargeObjects {
            count: 0,
            checksum: Some("md5sum:0".into()),
        });
        broken.holdings.counters = vec![
            counter(
                "public.orders_id_seq",
                1,
                Some("public.orders.id"),
                Some(12000),
            ),
            counter("public.tickets", 1, None, None),
        ];
        broken
            .holdings
            .matviews
            .insert("public.totals".into(), false);
        broken.holdings.definitions.insert(
            "triggers".into(),
            BTreeMap::from([("public.orders.audit".into(), "bb".into())]),
        );
        let text: Vec<String> = src.compare(&broken).iter().map(|m| m.to_string()).collect();
        assert_eq!(
            text,
            [
                "large objects: 0 after restore, 2 in the source",
                "public.orders_id_seq: would hand out 1 next, but public.orders.id already holds 12000: the counter was set back",
                "public.tickets: would hand out 1 next, behind the source's 500",
                "public.totals: materialized view restored without its data (it was populated in the source)",
                "public.orders.audit: trigger defined otherwise after restore than in the source",
            ]
        );
        // An older manifest holds nothing to compare.
        let old = Fingerprint::default();
        assert!(old.compare(&broken).is_empty());
    }

    #[test]
    fn every_large_table_gets_its_turn() {
        let tables: Vec<(String, u64)> = (0..10)
            .map(|i| (format!("s.t{i}"), if i < 3 { 10 } else { 1000 }))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for slot in 0..3 {
            let plan = ChecksumPlan {
                max_table_bytes: 100,
                rotation: 3,
                slot,
            };
            let s = plan.select(&tables);
            assert!(s.contains("s.t0") && s.contains("s.t1") && s.contains("s.t2"));
            assert!(s.len() <= 3 + 3);
            seen.extend(s);
        }
        assert_eq!(seen.len(), 10, "every table within `rotation` runs");
        assert!(ChecksumPlan::none().select(&tables).is_empty());
    }

    #[test]
    fn column_hash_depends_on_names_types_and_order() {
        let a = columns_hash(&[("a".into(), "int".into()), ("b".into(), "text".into())]);
        let b = columns_hash(&[("b".into(), "text".into()), ("a".into(), "int".into())]);
        let c = columns_hash(&[("a".into(), "bigint".into()), ("b".into(), "text".into())]);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
