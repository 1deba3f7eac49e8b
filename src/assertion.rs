//! Assertions on the restored data, each named so a failure says which: a SQL scalar
//! compared with a value, a query that must return no rows, the freshness of a table's
//! newest row, a table's row count bounds, and the integrity of indexes and tables.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// A comparison operator of an expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CmpOp {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "between")]
    Between,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Between => "between",
        }
    }
}

/// What an assertion's scalar must be: `>= 1000`, `= active`, `!= 0`, `between 1 and 5`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectation {
    pub op: CmpOp,
    pub value: String,
    /// The upper bound of `between`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper: Option<String>,
}

impl Expectation {
    /// Parses `">= 1000"`, `"= 5"`, `"between 10 and 20"`, `"active"` (bare value means
    /// `=`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Some(rest) = t
            .strip_prefix("between ")
            .or_else(|| t.strip_prefix("BETWEEN "))
        {
            let (lo, hi) = rest
                .split_once(" and ")
                .or_else(|| rest.split_once(" AND "))
                .ok_or_else(|| format!("`{s}`: write `between LOW and HIGH`"))?;
            let (lo, hi) = (lo.trim(), hi.trim());
            let (Ok(l), Ok(h)) = (lo.parse::<f64>(), hi.parse::<f64>()) else {
                return Err(format!("`{s}`: `between` needs two numbers"));
            };
            if l > h {
                return Err(format!(
                    "`{s}`: the low bound {lo} is above the high bound {hi}"
                ));
            }
            return Ok(Expectation {
                op: CmpOp::Between,
                value: lo.to_string(),
                upper: Some(hi.to_string()),
            });
        }
        let ops = [
            (">=", CmpOp::Ge),
            ("<=", CmpOp::Le),
            ("!=", CmpOp::Ne),
            ("<>", CmpOp::Ne),
            ("==", CmpOp::Eq),
            ("=", CmpOp::Eq),
            (">", CmpOp::Gt),
            ("<", CmpOp::Lt),
        ];
        let (op, rest) = ops
            .iter()
            .find_map(|(sym, op)| t.strip_prefix(sym).map(|r| (*op, r.trim())))
            .unwrap_or((CmpOp::Eq, t));
        if rest.is_empty() {
            return Err(format!(
                "`{s}` has no value to compare with; write e.g. \">= 1000\" or \"= 0\""
            ));
        }
        // `=> 20000`, `=< 5`, `>> 1`: an operator typed wrong would otherwise compare as
        // text with "> 20000" and fail every run as a broken backup.
        if rest.starts_with(['<', '>', '=', '!']) {
            let typed: String = t.chars().take_while(|c| "<>=!".contains(*c)).collect();
            let value = t.trim_start_matches(['<', '>', '=', '!']).trim();
            let meant = match typed.as_str() {
                "=>" => format!(" (meant `>= {value}`?)"),
                "=<" => format!(" (meant `<= {value}`?)"),
                "=!" => format!(" (meant `!= {value}`?)"),
                _ => String::new(),
            };
            return Err(format!(
                "`{s}`: `{typed}` is not an operator{meant}; the operators are =, !=, <, <=, >, >= and between"
            ));
        }
        let value = rest.trim_matches('"').to_string();
        if !matches!(op, CmpOp::Eq | CmpOp::Ne) && value.parse::<f64>().is_err() {
            return Err(format!(
                "`{s}`: `{}` needs a number, `{value}` is not one",
                op.symbol()
            ));
        }
        Ok(Expectation {
            op,
            value,
            upper: None,
        })
    }

    /// Whether `actual` (the query's scalar as text; `None` for SQL NULL) satisfies this.
    /// Numbers compare as numbers, anything else as exact text.
    pub fn holds(&self, actual: Option<&str>) -> bool {
        let Some(actual) = actual else {
            return self.op == CmpOp::Ne;
        };
        if self.op == CmpOp::Between {
            let bounds = (
                actual.trim().parse::<f64>(),
                self.value.parse::<f64>(),
                self.upper.as_deref().unwrap_or_default().parse::<f64>(),
            );
            return matches!(bounds, (Ok(a), Ok(l), Ok(h)) if a >= l && a <= h);
        }
        let ord = match (actual.trim().parse::<f64>(), self.value.parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b),
            _ => {
                return match self.op {
                    CmpOp::Eq => actual == self.value,
                    CmpOp::Ne => actual != self.value,
                    _ => false,
                }
            }
        };
        let Some(ord) = ord else { return false };
        use std::cmp::Ordering::*;
        match self.op {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
            CmpOp::Between => false,
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.upper {
            Some(hi) => write!(f, "between {} and {hi}", self.value),
            None => write!(f, "{} {}", self.op.symbol(), self.value),
        }
    }
}

/// A validated assertion of a drill.
#[derive(Debug, Clone, Serialize)]
pub struct Assertion {
    pub name: String,
    pub check: Check,
}

/// What an assertion checks.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// A query returning one value, compared with an expectation.
    Sql { sql: String, expect: Expectation },
    /// A query that must return no rows (orphaned foreign keys, duplicates).
    NoRows { sql: String },
    /// The newest `column` of `table` is at most `within` older than the dump: catches a
    /// backup of a replica that stopped replicating.
    Freshness {
        table: String,
        column: String,
        #[serde(with = "secs")]
        within: Duration,
    },
    /// Bounds on a table's restored row count, absolute and relative to the last passing
    /// run's.
    RowCount {
        table: String,
        min: Option<u64>,
        max: Option<u64>,
        /// Largest change from the last passing run, as a fraction (0.1 = 10%).
        max_change: Option<f64>,
    },
    /// PostgreSQL: amcheck on every B-tree index (with a heap check). MySQL/MariaDB:
    /// `CHECK TABLE … EXTENDED` on every table.
    Integrity,
}

impl Check {
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Sql { .. } => "sql",
            Check::NoRows { .. } => "no_rows",
            Check::Freshness { .. } => "freshness",
            Check::RowCount { .. } => "row_count",
            Check::Integrity => "integrity",
        }
    }
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Splits `schema.table` (or `table`) into its parts; `default_schema` fills a bare name.
pub fn split_table<'a>(name: &'a str, default_schema: &'a str) -> (&'a str, &'a str) {
    match name.split_once('.') {
        Some((s, t)) => (s, t),
        None => (default_schema, name),
    }
}

/// A query's text without the trailing semicolons and blanks, so it can be wrapped.
pub fn bare_query(sql: &str) -> &str {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// The outcome of one assertion in a run.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct AssertionResult {
    pub name: String,
    pub expected: String,
    /// The scalar the query returned; `None` for NULL or when the query failed.
    pub actual: Option<String>,
    pub passed: bool,
    /// Why the query could not be evaluated, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// An anomaly guard's result (the backup against the last good one), not one of the
    /// drill's own assertions: a run failed by guards alone can be accepted. Marked here,
    /// never told by the name (validation reserves the guards' names all the same).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guard: bool,
}

/// The names of anomaly guards start with this; a drill's own assertions may not.
pub const GUARD_PREFIX: &str = "anomaly:";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares() {
        let e = Expectation::parse(">= 1000").unwrap();
        assert!(e.holds(Some("1000")));
        assert!(e.holds(Some("1000.5")));
        assert!(!e.holds(Some("999")));
        assert!(!e.holds(None));
        let e = Expectation::parse("active").unwrap();
        assert_eq!(e.op, CmpOp::Eq);
        assert!(e.holds(Some("active")));
        assert!(!e.holds(Some("inactive")));
        assert!(Expectation::parse("!= 0").unwrap().holds(Some("3")));
        assert!(Expectation::parse("= 5").unwrap().holds(Some("5.0")));
        assert!(Expectation::parse("< 3").unwrap().holds(Some("2")));
        let b = Expectation::parse("between 10 and 20").unwrap();
        assert!(b.holds(Some("10")) && b.holds(Some("20")) && b.holds(Some("15.5")));
        assert!(!b.holds(Some("9")) && !b.holds(Some("21")) && !b.holds(None));
        assert_eq!(b.to_string(), "between 10 and 20");
    }

    #[test]
    fn refuses_nonsense() {
        assert!(Expectation::parse(">=").is_err());
        assert!(Expectation::parse("> many")
            .unwrap_err()
            .contains("needs a number"));
        assert!(Expectation::parse("   ").is_err());
        assert!(Expectation::parse("between 5 and 1")
            .unwrap_err()
            .contains("above"));
        assert!(Expectation::parse("between a and b").is_err());
        assert!(Expectation::parse("between 1").is_err());
        // Operators typed wrong are refused, not compared as text.
        let e = Expectation::parse("=> 20000").unwrap_err();
        assert!(
            e.contains("`=>` is not an operator") && e.contains("`>= 20000`"),
            "{e}"
        );
        assert!(Expectation::parse("=< 5").unwrap_err().contains("`<= 5`"));
        assert!(Expectation::parse(">> 1").is_err());
        assert!(Expectation::parse("== 3").is_ok());
        assert_eq!(bare_query(" select 1 ;\n "), "select 1");
    }
}
