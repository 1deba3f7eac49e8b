//! The verify stage's checks beyond the fingerprint: a drill's assertions, evaluated in the
//! sandbox against the restored data, and the anomaly guards that compare a new backup
//! with the last good one. Each yields an [`AssertionResult`] with what was expected and
//! what was found, so a failure lists every broken promise at once.

use std::collections::BTreeMap;

use crate::assertion::{bare_query, split_table, Assertion, AssertionResult, Check, GUARD_PREFIX};
use crate::config::AnomalyPolicy;
use crate::engine::{self, mysql, postgres, Engine};
use crate::error::Result;
use crate::fingerprint::{Fingerprint, TableFingerprint};
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

    /// The dump's size and row total, and each table's rows and size, against the last
    /// passing run's: shrinking by more than the policy's share is suspect. Nothing to
    /// compare with, nothing checked.
    pub fn anomaly_guards(&self, policy: impl Into<AnomalyPolicy>) -> Vec<AssertionResult> {
        let policy = policy.into();
        let Some((id, prev)) = self.baseline else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if policy.max_shrink < 1.0 {
            let keep = 1.0 - policy.max_shrink;
            let (size, prev_size) = (self.manifest.plain_bytes, prev.plain_bytes);
            let (rows, prev_rows) = (
                self.manifest.fingerprint.total_rows(),
                prev.fingerprint.total_rows(),
            );
            out.push(guard(
                &format!("{GUARD_PREFIX} dump size"),
                format!(
                    "at least {:.0}% of {} (run {id})",
                    keep * 100.0,
                    human_bytes(prev_size)
                ),
                format!("{}{}", human_bytes(size), change(size, prev_size)),
                size as f64 >= prev_size as f64 * keep,
            ));
            out.push(guard(
                &format!("{GUARD_PREFIX} total rows"),
                format!("at least {:.0}% of {prev_rows} (run {id})", keep * 100.0),
                format!("{rows}{}", change(rows, prev_rows)),
                rows as f64 >= prev_rows as f64 * keep,
            ));
        }
        out.extend(table_guards(
            id,
            &prev.fingerprint,
            &self.manifest.fingerprint,
            &policy,
        ));
        out
    }
}

/// A physical drill's guards: the restored database's tables and rows against the last
/// passing drill's (run `id`), shrinking by no more than the policy's share.
pub fn physical_guards(
    id: &str,
    before: (usize, u64),
    now: (usize, u64),
    policy: &AnomalyPolicy,
) -> Vec<AssertionResult> {
    if policy.max_shrink >= 1.0 {
        return Vec::new();
    }
    let keep = 1.0 - policy.max_shrink;
    let ((tables, rows), (prev_tables, prev_rows)) = (now, before);
    vec![
        guard(
            &format!("{GUARD_PREFIX} tables"),
            format!("at least {:.0}% of {prev_tables} (run {id})", keep * 100.0),
            format!("{tables}{}", change(tables as u64, prev_tables as u64)),
            tables as f64 >= prev_tables as f64 * keep,
        ),
        guard(
            &format!("{GUARD_PREFIX} total rows"),
            format!("at least {:.0}% of {prev_rows} (run {id})", keep * 100.0),
            format!("{rows}{}", change(rows, prev_rows)),
            rows as f64 >= prev_rows as f64 * keep,
        ),
    ]
}

fn guard(name: &str, expected: String, actual: String, passed: bool) -> AssertionResult {
    AssertionResult {
        guard: true,
        ..result(name, expected, Some(actual), passed)
    }
}

/// ` (-90%)`: the change from `before` to `now`; nothing when there was nothing before.
fn change(now: u64, before: u64) -> String {
    if before == 0 {
        String::new()
    } else {
        format!(
            " ({:+.0}%)",
            (now as f64 - before as f64) * 100.0 / before as f64
        )
    }
}

/// What a table guard compares.
#[derive(Clone, Copy)]
enum Measure {
    Rows,
    Size,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Measure::Rows => "rows",
            Measure::Size => "size",
        }
    }

    fn show(self, n: u64) -> String {
        match self {
            Measure::Rows => n.to_string(),
            Measure::Size => human_bytes(n),
        }
    }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Each table of `before` (the fingerprint of the last passing run, `id`) against itself in
/// `now`: its rows, and its size where both runs know it, each when it reached its floor in
/// `before`. A table that shrank too much is a failed guard of its own, named after it;
/// when none did, one passing guard says what was judged. A table gone since is the
/// fingerprint's to report (it compares with the dump's own); a new one has no past.
fn table_guards(
    id: &str,
    before: &Fingerprint,
    now: &Fingerprint,
    policy: &AnomalyPolicy,
) -> Vec<AssertionResult> {
    if policy.max_shrink >= 1.0 && policy.tables.values().all(|t| t.max_shrink >= 1.0) {
        return Vec::new();
    }
    let current: BTreeMap<String, &TableFingerprint> =
        now.tables.iter().map(|t| (t.qualified(), t)).collect();
    let mut failed = Vec::new();
    let (mut judged, mut small) = (0, 0);
    // The largest shrink among the judged, as a fraction, and what shrank.
    let mut largest: Option<(f64, String)> = None;
    for was in &before.tables {
        let table = was.qualified();
        let g = policy.for_table(&table);
        let Some(is) = current.get(&table) else {
            continue;
        };
        if g.max_shrink >= 1.0 {
            continue;
        }
        let mut measures = Vec::new();
        if was.rows >= g.min_rows {
            measures.push((Measure::Rows, was.rows, is.rows));
        }
        if let (Some(b), Some(n)) = (was.bytes, is.bytes) {
            if b >= g.min_bytes {
                measures.push((Measure::Size, b, n));
            }
        }
        if measures.is_empty() {
            small += 1;
            continue;
        }
        judged += 1;
        let keep = 1.0 - g.max_shrink;
        for (m, b, n) in measures {
            let shrink = (b as f64 - n as f64) / b.max(1) as f64;
            if shrink > 0.0 && largest.as_ref().is_none_or(|(l, _)| shrink > *l) {
                largest = Some((
                    shrink,
                    format!("{table} {} {}", m.name(), change(n, b).trim()),
                ));
            }
            if (n as f64) < b as f64 * keep {
                failed.push(guard(
                    &format!("{GUARD_PREFIX} {table} {}", m.name()),
                    format!("at least {:.0}% of {} (run {id})", keep * 100.0, m.show(b)),
                    format!("{}{}", m.show(n), change(n, b)),
                    false,
                ));
            }
        }
    }
    if !failed.is_empty() {
        return failed;
    }
    let mut expected = if policy.max_shrink < 1.0 {
        format!(
            "every table keeps at least {:.0}% of its rows (judged from {} rows) and of its size (from {})",
            (1.0 - policy.max_shrink) * 100.0,
            policy.table_min_rows,
            human_bytes(policy.table_min_bytes)
        )
    } else {
        "no table is judged but by a threshold of its own".to_string()
    };
    if !policy.tables.is_empty() {
        let own: Vec<&str> = policy.tables.keys().map(String::as_str).collect();
        expected.push_str(&format!(
            "; {} by {}",
            own.join(", "),
            if own.len() == 1 {
                "a threshold of its own"
            } else {
                "thresholds of their own"
            }
        ));
    }
    expected.push_str(&format!(" (run {id})"));
    let mut actual = vec![format!(
        "{} judged, {} too small to judge; {}",
        count(judged, "table"),
        small,
        match &largest {
            Some((_, what)) => format!("the largest shrink: {what}"),
            None => "none shrank".into(),
        }
    )];
    let unknown: Vec<&str> = policy
        .tables
        .keys()
        .filter(|t| !before.tables.iter().any(|b| &b.qualified() == *t))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        actual.push(format!(
            "[anomaly.table] names {} not in run {id}: {}",
            if unknown.len() == 1 {
                "a table"
            } else {
                "tables"
            },
            unknown.join(", ")
        ));
    }
    vec![guard(
        &format!("{GUARD_PREFIX} tables"),
        expected,
        actual.join("; "),
        true,
    )]
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
    #[test]
    fn a_physical_drill_is_judged_by_its_tables_and_rows() {
        let policy = AnomalyPolicy::from(0.5);
        let g = super::physical_guards("r1", (10, 1000), (10, 400), &policy);
        assert_eq!(g.len(), 2);
        assert!(g[0].passed && g[0].guard, "{:?}", g[0]);
        assert!(!g[1].passed, "{:?}", g[1]);
        assert_eq!(g[1].actual.as_deref(), Some("400 (-60%)"));
        assert!(g[1].expected.contains("50% of 1000 (run r1)"));
        let g = super::physical_guards("r1", (10, 1000), (4, 1000), &policy);
        assert!(!g[0].passed && g[1].passed);
        // Growing is never suspect; a guard turned off checks nothing.
        assert!(super::physical_guards("r1", (1, 1), (5, 9), &policy)
            .iter()
            .all(|a| a.passed));
        assert!(
            super::physical_guards("r1", (10, 1000), (0, 0), &AnomalyPolicy::from(1.0)).is_empty()
        );
    }

    use super::*;
    use crate::config::TableGuard;
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

    fn table(name: &str, rows: u64, bytes: Option<u64>) -> TableFingerprint {
        let (schema, name) = name.split_once('.').unwrap();
        let mut t = TableFingerprint::new(schema.into(), name.into(), rows, vec![]);
        t.bytes = bytes;
        t
    }

    fn fp(tables: &[(&str, u64, Option<u64>)]) -> Fingerprint {
        Fingerprint {
            tables: tables.iter().map(|(n, r, b)| table(n, *r, *b)).collect(),
            ..Default::default()
        }
    }

    const MIB: u64 = 1 << 20;

    fn shop(orders: u64) -> Fingerprint {
        fp(&[
            ("public.customers", 20_000, Some(3 * MIB)),
            ("public.orders", orders, None),
            ("public.items", 40_000, Some(5 * MIB)),
            ("public.queue", 10, Some(8192)),
        ])
    }

    #[test]
    fn a_table_cut_to_a_tenth_fails_its_guard_by_name() {
        let got = table_guards("r1", &shop(60_001), &shop(6_000), &AnomalyPolicy::default());
        assert_eq!(
            got,
            [AssertionResult {
                name: "anomaly: public.orders rows".into(),
                expected: "at least 50% of 60001 (run r1)".into(),
                actual: Some("6000 (-90%)".into()),
                passed: false,
                error: None,
                guard: true,
            }]
        );
    }

    #[test]
    fn small_tables_and_a_steady_load_fail_nothing() {
        // Under steady writes every table grows or shrinks a little; a queue of 10 rows
        // drains to 1; a table is new; one is gone (the fingerprint's to report).
        let before = shop(60_001);
        let mut after = fp(&[
            ("public.customers", 20_150, Some(3 * MIB + 8192)),
            ("public.orders", 57_310, None),
            ("public.items", 39_020, Some(5 * MIB)),
            ("public.queue", 1, Some(8192)),
            ("public.new_table", 5, None),
        ]);
        let got = table_guards("r1", &before, &after, &AnomalyPolicy::default());
        assert_eq!(got.len(), 1, "{got:#?}");
        let g = &got[0];
        assert!(g.passed && g.guard);
        assert_eq!(g.name, "anomaly: tables");
        assert_eq!(
            g.expected,
            "every table keeps at least 50% of its rows (judged from 1000 rows) and of its size (from 10.0 MiB) (run r1)"
        );
        assert_eq!(
            g.actual.as_deref(),
            Some("3 tables judged, 1 too small to judge; the largest shrink: public.orders rows (-4%)")
        );
        after.tables.retain(|t| t.name != "items");
        let got = table_guards("r1", &before, &after, &AnomalyPolicy::default());
        assert!(got.iter().all(|g| g.passed), "{got:#?}");
    }

    #[test]
    fn sizes_are_judged_where_both_runs_know_them() {
        let before = fp(&[
            ("public.blobs", 500, Some(400 * MIB)),
            ("public.logs", 5_000, Some(20 * MIB)),
        ]);
        // The blobs' rows are too few to judge, their size is not; the logs' size was not
        // taken this time, their rows are still judged.
        let after = fp(&[
            ("public.blobs", 480, Some(40 * MIB)),
            ("public.logs", 5_000, None),
        ]);
        let got = table_guards("r1", &before, &after, &AnomalyPolicy::default());
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].name, "anomaly: public.blobs size");
        assert_eq!(got[0].expected, "at least 50% of 400.0 MiB (run r1)");
        assert_eq!(got[0].actual.as_deref(), Some("40.0 MiB (-90%)"));
        // Both rows and size of one table can fail, each on its own.
        let gone = fp(&[
            ("public.blobs", 500, Some(400 * MIB)),
            ("public.logs", 100, Some(MIB)),
        ]);
        let names: Vec<String> = table_guards("r1", &before, &gone, &AnomalyPolicy::default())
            .into_iter()
            .map(|g| g.name)
            .collect();
        assert_eq!(
            names,
            ["anomaly: public.logs rows", "anomaly: public.logs size"]
        );
    }

    #[test]
    fn a_table_can_have_thresholds_of_its_own() {
        let guard = |max_shrink, min_rows| TableGuard {
            max_shrink,
            min_rows,
            min_bytes: AnomalyPolicy::DEFAULT_TABLE_MIN_BYTES,
        };
        let policy = AnomalyPolicy {
            tables: [
                ("public.orders".to_string(), guard(0.2, 1000)),
                ("public.queue".to_string(), guard(0.5, 0)),
                ("public.items".to_string(), guard(1.0, 1000)),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let before = shop(60_001);
        let after = fp(&[
            ("public.customers", 15_000, Some(3 * MIB)),
            ("public.orders", 45_000, None),
            ("public.items", 4_000, Some(MIB)),
            ("public.queue", 4, Some(8192)),
        ]);
        let got = table_guards("r1", &before, &after, &policy);
        let failed: Vec<(&str, &str)> = got
            .iter()
            .map(|g| (g.name.as_str(), g.expected.as_str()))
            .collect();
        // -25% passes the drill's 50% but not the orders' 20%; the queue is judged however
        // small; the items are never judged.
        assert_eq!(
            failed,
            [
                (
                    "anomaly: public.orders rows",
                    "at least 80% of 60001 (run r1)"
                ),
                ("anomaly: public.queue rows", "at least 50% of 10 (run r1)"),
            ]
        );
        // The drill's guards off, one table's on.
        let policy = AnomalyPolicy {
            max_shrink: 1.0,
            ..policy
        };
        let got = table_guards("r1", &before, &shop(60_000), &policy);
        assert_eq!(got.len(), 1);
        assert!(got[0].passed);
        assert!(
            got[0].expected.starts_with("no table is judged but by a threshold of its own; public.items, public.orders, public.queue by thresholds of their own"),
            "{}",
            got[0].expected
        );
        // Everything off: no guard at all.
        let off = AnomalyPolicy::from(1.0);
        assert!(table_guards("r1", &before, &after, &off).is_empty());
    }

    #[test]
    fn a_threshold_for_a_table_that_is_not_there_is_told() {
        let policy = AnomalyPolicy {
            tables: [(
                "public.ordres".to_string(),
                AnomalyPolicy::default().for_table("x"),
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let got = table_guards("r1", &shop(60_001), &shop(60_001), &policy);
        assert_eq!(got.len(), 1);
        assert!(got[0].passed);
        let actual = got[0].actual.as_deref().unwrap();
        assert!(
            actual.ends_with(
                "none shrank; [anomaly.table] names a table not in run r1: public.ordres"
            ),
            "{actual}"
        );
    }
}
