//! SQL assertions: a query that returns one scalar, and what it is expected to be.

use std::fmt;

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
        }
    }
}

/// What an assertion's scalar must be: `>= 1000`, `= active`, `!= 0`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectation {
    pub op: CmpOp,
    pub value: String,
}

impl Expectation {
    /// Parses `">= 1000"`, `"= 5"`, `"active"` (bare value means `=`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
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
        let value = rest.trim_matches('"').to_string();
        if !matches!(op, CmpOp::Eq | CmpOp::Ne) && value.parse::<f64>().is_err() {
            return Err(format!(
                "`{s}`: `{}` needs a number, `{value}` is not one",
                op.symbol()
            ));
        }
        Ok(Expectation { op, value })
    }

    /// Whether `actual` (the query's scalar as text; `None` for SQL NULL) satisfies this.
    /// Numbers compare as numbers, anything else as exact text.
    pub fn holds(&self, actual: Option<&str>) -> bool {
        let Some(actual) = actual else {
            return self.op == CmpOp::Ne;
        };
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
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.symbol(), self.value)
    }
}

/// A validated assertion of a drill.
#[derive(Debug, Clone, Serialize)]
pub struct SqlAssertion {
    pub name: String,
    pub sql: String,
    pub expect: Expectation,
}

/// The outcome of one assertion in a run.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct AssertionResult {
    pub name: String,
    pub expected: String,
    /// The scalar the query returned; `None` for NULL or when the query failed.
    pub actual: Option<String>,
    pub passed: bool,
    /// Why the query could not be evaluated, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

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
    }

    #[test]
    fn refuses_nonsense() {
        assert!(Expectation::parse(">=").is_err());
        assert!(Expectation::parse("> many")
            .unwrap_err()
            .contains("needs a number"));
        assert!(Expectation::parse("   ").is_err());
    }
}
