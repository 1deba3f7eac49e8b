//! The verify stage's checks beyond the fingerprint: a drill's assertions, evaluated in the
//! sandbox against the restored data, and the anomaly guards that compare a new backup
//! with the last good one. Each yields an [`AssertionResult`] with what was expected and
//! what was found, so a failure lists every broken promise at once.

use crate::assertion::{bare_query, split_table, Assertion, AssertionResult, Check, GUARD_PREFIX};
use crate::engine::{self, mysql, postgres, Engine};
use crate::error::Result;
use crate::fingerprint::Fingerprint;
use crate::human::human_bytes;
use crate::manifest::Manifest;
use crate::sandbox::{Sandbox, SandboxBackend};
use crate::status::Stage;

/// What the checks of one run look at.
pub struct Checks<'a> {
    pub engine: Engine,
    pub backend: &'a dyn SandboxBackend,
    pub sandbox: &'a Sandbox,
    pub manifest: &'a Manifest,
    pub restored: &'a Fingerprint,
    /// The last passing run's id and manifest.
    pub baseline: Option<(&'a str, &'a Manifest)>,
}

fn result(name: &str, expected: String, actual: Option<String>, passed: bool) -> AssertionResult {
    AssertionResult {
        name: name.to_string(),
        expected,
        actual,
        passed,
        error: None,
        guard: false,
    }
}

fn errored(name: &str, expected: String, error: String) -> AssertionResult {
    AssertionResult {
        name: name.to_string(),
        expected,
        actual: None,
        passed: false,
        error: Some(error),
        guard: false,
    }
}

impl Checks<'_> {
    fn default_schema(&self) -> &str {
        match self.engine {
            Engine::Postgres => "public",
            Engine::Mariadb | Engine::Mysql => &self.manifest.databases[0],
        }
    }

    fn quote_table(&self, table: &str) -> String {
        let (s, t) = split_table(table, self.default_schema());
        match self.engine {
            Engine::Postgres => format!("{}.{}", postgres::ident(s), postgres::ident(t)),
            Engine::Mariadb | Engine::Mysql => format!("{}.{}", mysql::ident(s), mysql::ident(t)),
        }
    }

    fn quote_column(&self, column: &str) -> String {
        match self.engine {
            Engine::Postgres => postgres::ident(column),
            Engine::Mariadb | Engine::Mysql => mysql::ident(column),
        }
    }

    async fn scalar(&self, sql: &str) -> Result<std::result::Result<Option<String>, String>> {
        self.engine
            .sandbox_scalar(self.backend, self.sandbox, &self.manifest.databases, sql)
            .await
    }

    /// Runs one assertion. `Err` only when the sandbox itself failed (infrastructure); a
    /// query that fails is a failed assertion with its error.
    pub async fn evaluate(&self, a: &Assertion) -> Result<AssertionResult> {
        let name = a.name.as_str();
        Ok(match &a.check {
            Check::Sql { sql, expect } => {
                let expected = expect.to_string();
                match self.scalar(sql).await? {
                    Ok(v) => {
                        let passed = expect.holds(v.as_deref());
                        result(
                            name,
                            expected,
                            Some(v.unwrap_or_else(|| "NULL".into())),
                            passed,
                        )
                    }
                    Err(m) => errored(name, expected, m),
                }
            }
            Check::NoRows { sql } => {
                let wrapped = format!("SELECT COUNT(*) FROM ({}) AS firedrill_q", bare_query(sql));
                match self.scalar(&wrapped).await? {
                    Ok(Some(n)) => {
                        let passed = n.trim() == "0";
                        result(name, "no rows".into(), Some(format!("{n} rows")), passed)
                    }
                    Ok(None) => errored(name, "no rows".into(), "the count was NULL".into()),
                    Err(m) => errored(name, "no rows".into(), m),
                }
            }
            Check::Freshness {
                table,
                column,
                within,
            } => {
                let dumped = self.manifest.started_at;
                let expected = format!(
                    "max({column}) of {table} at most {} before the dump ({})",
                    humantime::format_duration(*within),
                    dumped.strftime("%Y-%m-%d %H:%M:%S UTC")
                );
                let sql = match self.engine {
                    Engine::Postgres => format!(
                        "SELECT extract(epoch FROM max({}))::float8 FROM {}",
                        self.quote_column(column),
                        self.quote_table(table)
                    ),
                    Engine::Mariadb | Engine::Mysql => format!(
                        "SELECT UNIX_TIMESTAMP(MAX({})) FROM {}",
                        self.quote_column(column),
                        self.quote_table(table)
                    ),
                };
                match self.scalar(&sql).await? {
                    Ok(None) => result(name, expected, Some("no rows (NULL)".into()), false),
                    Ok(Some(v)) => match v.trim().parse::<f64>() {
                        Ok(epoch) => {
                            let newest = jiff::Timestamp::from_second(epoch as i64)
                                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                            let lag = dumped.as_second() - newest.as_second();
                            let passed = lag <= within.as_secs() as i64;
                            let actual = format!(
                                "{} ({} before the dump)",
                                newest.strftime("%Y-%m-%d %H:%M:%S UTC"),
                                humantime::format_duration(std::time::Duration::from_secs(
                                    lag.max(0) as u64
                                ))
                            );
                            result(name, expected, Some(actual), passed)
                        }
                        Err(_) => errored(
                            name,
                            expected,
                            format!("max({column}) is `{v}`, not a point in time"),
                        ),
                    },
                    Err(m) => errored(name, expected, m),
                }
            }
            Check::RowCount {
                table,
                min,
                max,
                max_change,
            } => {
                let (s, t) = split_table(table, self.default_schema());
                let rows = |fp: &Fingerprint| {
                    fp.tables
                        .iter()
                        .find(|x| x.schema == s && x.name == t)
                        .map(|x| x.rows)
                };
                let mut expected = Vec::new();
                if let Some(lo) = min {
                    expected.push(format!(">= {lo}"));
                }
                if let Some(hi) = max {
                    expected.push(format!("<= {hi}"));
                }
                let previous = self
                    .baseline
                    .and_then(|(id, m)| Some((id, rows(&m.fingerprint)?)));
                if let Some(share) = max_change {
                    match previous {
                        Some((id, n)) => {
                            expected.push(format!("within {}% of {n} (run {id})", share * 100.0))
                        }
                        None => expected.push(format!(
                            "within {}% of the last passing run (none yet)",
                            share * 100.0
                        )),
                    }
                }
                let expected = expected.join(", ");
                match rows(self.restored) {
                    None => errored(
                        name,
                        expected,
                        format!("there is no table {s}.{t} after restore"),
                    ),
                    Some(n) => {
                        let mut passed =
                            min.is_none_or(|lo| n >= lo) && max.is_none_or(|hi| n <= hi);
                        if let (Some(share), Some((_, prev))) = (max_change, previous) {
                            let change = (n as f64 - prev as f64).abs() / (prev.max(1) as f64);
                            passed &= change <= *share;
                        }
                        result(name, expected, Some(n.to_string()), passed)
                    }
                }
            }
            Check::Integrity => self.integrity(name).await?,
        })
    }

    /// PostgreSQL: amcheck's `bt_index_check` with the heap check on every B-tree index.
    /// MySQL/MariaDB: `CHECK TABLE … EXTENDED` on every table.
    async fn integrity(&self, name: &str) -> Result<AssertionResult> {
        match self.engine {
            Engine::Postgres => {
                let expected =
                    "every B-tree index passes amcheck (bt_index_check with heapallindexed)"
                        .to_string();
                let cmd = postgres::psql_cmd(&self.manifest.databases[0], postgres::AMCHECK_SQL);
                let out = self.backend.exec(self.sandbox, &cmd, None).await?;
                if out.exit_code != 0 {
                    return Ok(errored(
                        name,
                        expected,
                        format!(
                            "amcheck did not run: {}",
                            engine::tail(out.stderr.trim(), 5)
                        ),
                    ));
                }
                let (checked, failed) = postgres::parse_amcheck(&out.stdout)?;
                let passed = failed.is_empty();
                let actual = if passed {
                    format!("{checked} indexes checked, all sound")
                } else {
                    let list: Vec<String> =
                        failed.iter().map(|(i, e)| format!("{i}: {e}")).collect();
                    format!(
                        "{} of {checked} indexes corrupt: {}",
                        failed.len(),
                        list.join("; ")
                    )
                };
                Ok(result(name, expected, Some(actual), passed))
            }
            Engine::Mariadb | Engine::Mysql => {
                let expected = "CHECK TABLE … EXTENDED reports OK for every table".to_string();
                let tables: Vec<String> = self
                    .restored
                    .tables
                    .iter()
                    .map(|t| format!("{}.{}", mysql::ident(&t.schema), mysql::ident(&t.name)))
                    .collect();
                if tables.is_empty() {
                    return Ok(result(name, expected, Some("no tables".into()), true));
                }
                let sql = format!("CHECK TABLE {} EXTENDED", tables.join(", "));
                let out = self
                    .backend
                    .exec(
                        self.sandbox,
                        &mysql::client_cmd(self.engine, None, &sql),
                        None,
                    )
                    .await?;
                if out.exit_code != 0 {
                    return Ok(errored(
                        name,
                        expected,
                        format!(
                            "CHECK TABLE did not run: {}",
                            engine::tail(out.stderr.trim(), 5)
                        ),
                    ));
                }
                let bad = mysql::check_table_problems(&out.stdout);
                let passed = bad.is_empty();
                let actual = if passed {
                    format!("{} tables checked, all OK", tables.len())
                } else {
                    bad.join("; ")
                };
                Ok(result(name, expected, Some(actual), passed))
            }
        }
    }

    /// The dump's size and row total against the last passing run's: shrinking by more
    /// than `max_shrink` (a fraction) is suspect. Nothing to compare with, nothing checked.
    pub fn anomaly_guards(&self, max_shrink: f64) -> Vec<AssertionResult> {
        let Some((id, prev)) = self.baseline else {
            return Vec::new();
        };
        if max_shrink >= 1.0 {
            return Vec::new();
        }
        let keep = 1.0 - max_shrink;
        let pct = |now: u64, before: u64| {
            if before == 0 {
                String::new()
            } else {
                format!(
                    " ({:+.0}%)",
                    (now as f64 - before as f64) * 100.0 / before as f64
                )
            }
        };
        let (size, prev_size) = (self.manifest.plain_bytes, prev.plain_bytes);
        let (rows, prev_rows) = (
            self.manifest.fingerprint.total_rows(),
            prev.fingerprint.total_rows(),
        );
        let guard = |r: AssertionResult| AssertionResult { guard: true, ..r };
        vec![
            guard(result(
                &format!("{GUARD_PREFIX} dump size"),
                format!(
                    "at least {:.0}% of {} (run {id})",
                    keep * 100.0,
                    human_bytes(prev_size)
                ),
                Some(format!("{}{}", human_bytes(size), pct(size, prev_size))),
                size as f64 >= prev_size as f64 * keep,
            )),
            guard(result(
                &format!("{GUARD_PREFIX} total rows"),
                format!("at least {:.0}% of {prev_rows} (run {id})", keep * 100.0),
                Some(format!("{rows}{}", pct(rows, prev_rows))),
                rows as f64 >= prev_rows as f64 * keep,
            )),
        ]
    }
}

/// Whether every failure of a report is an anomaly guard's: such a run may be accepted.
pub fn only_guards_failed(r: &crate::report::RunReport) -> bool {
    let failed: Vec<&AssertionResult> = r.assertions.iter().filter(|a| !a.passed).collect();
    !failed.is_empty()
        && r.fingerprint_mismatches.is_empty()
        && failed.iter().all(|a| a.guard)
        && r.failed_stage == Some(Stage::Verify)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RunReport;

    #[test]
    fn only_guard_failures_can_be_accepted() {
        let mut r = RunReport::empty("d", "r1", jiff::Timestamp::UNIX_EPOCH);
        r.failed_stage = Some(Stage::Verify);
        let guard = AssertionResult {
            guard: true,
            ..result("anomaly: dump size", "x".into(), None, false)
        };
        r.assertions = vec![guard, result("orders", "x".into(), None, true)];
        assert!(only_guards_failed(&r));
        r.assertions
            .push(result("orders fresh", "x".into(), None, false));
        assert!(!only_guards_failed(&r));
        r.assertions.pop();
        // A drill's own assertion named like a guard is not a guard.
        r.assertions.push(result(
            "anomaly: looks like a guard",
            "x".into(),
            None,
            false,
        ));
        assert!(!only_guards_failed(&r));
        r.assertions.pop();
        r.fingerprint_mismatches
            .push(crate::fingerprint::Mismatch::MissingTable {
                table: "t".into(),
                rows: 1,
            });
        assert!(!only_guards_failed(&r));
    }
}
