//! What was dumped, in a form that can be compared with what was restored: per table, the
//! exact row count and its column names and types (with a hash of them for the manifest).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub tables: Vec<TableFingerprint>,
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
        out
    }
}

/// One difference between the dumped and the restored database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        }
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
        };
        let restored = Fingerprint {
            tables: vec![
                t("a", 2, &[("id", "integer")]),
                t("b", 10, &[("x", "text"), ("y", "bigint")]),
                t("d", 5, &[("q", "text")]),
            ],
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
    fn column_hash_depends_on_names_types_and_order() {
        let a = columns_hash(&[("a".into(), "int".into()), ("b".into(), "text".into())]);
        let b = columns_hash(&[("b".into(), "text".into()), ("a".into(), "int".into())]);
        let c = columns_hash(&[("a".into(), "bigint".into()), ("b".into(), "text".into())]);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
