//! What a MySQL or MariaDB database's objects hold, read the same way from the source and
//! from the restored server: each table's AUTO_INCREMENT counter against its column's
//! largest value, and the definitions of column defaults, comments, constraints,
//! triggers, routines, events, views and indexes. Grants and definers are not compared:
//! the dump carries no grants, and the restore removes DEFINER clauses (their users do
//! not exist in the sandbox).

use std::collections::BTreeMap;

/// A quoted identifier (MySQL and MariaDB backquotes).
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

use crate::error::{Error, Result};
use crate::fingerprint::{Counter, Holdings};

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn list(databases: &[String]) -> String {
    databases
        .iter()
        .map(|d| sql_str(d))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `database.table, AUTO_INCREMENT, column` of every table with an AUTO_INCREMENT column.
pub fn counters_sql(databases: &[String]) -> String {
    format!(
        "SELECT CONCAT(t.TABLE_SCHEMA, '.', t.TABLE_NAME), COALESCE(CAST(t.AUTO_INCREMENT AS CHAR), ''), c.COLUMN_NAME \
         FROM information_schema.TABLES t JOIN information_schema.COLUMNS c \
           ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME \
         WHERE t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND c.EXTRA LIKE '%auto_increment%' \
           AND t.TABLE_SCHEMA IN ({}) ORDER BY 1",
        list(databases)
    )
}

/// `database.table, max` of the given counters' columns, in one statement.
pub fn column_max_sql(counters: &[(String, String)]) -> String {
    counters
        .iter()
        .map(|(table, column)| {
            let (db, t) = table.split_once('.').unwrap_or(("", table));
            format!(
                "SELECT {}, COALESCE(CAST(MAX({}) AS CHAR), '') FROM {}.{}",
                sql_str(table),
                ident(column),
                ident(db),
                ident(t)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// `kind, object, hash` of every definition of `databases`.
pub fn definitions_sql(databases: &[String]) -> String {
    let l = list(databases);
    let h = |expr: &str| format!("LEFT(MD5({expr}), 16)");
    [
        format!(
            "SELECT 'defaults', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', COLUMN_NAME), {} \
             FROM information_schema.COLUMNS WHERE COLUMN_DEFAULT IS NOT NULL AND TABLE_SCHEMA IN ({l})",
            h("COLUMN_DEFAULT")
        ),
        format!(
            "SELECT 'comments', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', COLUMN_NAME), {} \
             FROM information_schema.COLUMNS WHERE COLUMN_COMMENT <> '' AND TABLE_SCHEMA IN ({l})",
            h("COLUMN_COMMENT")
        ),
        format!(
            "SELECT 'comments', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), {} \
             FROM information_schema.TABLES WHERE TABLE_COMMENT <> '' AND TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN ({l})",
            h("TABLE_COMMENT")
        ),
        format!(
            "SELECT 'constraints', CONCAT(k.TABLE_SCHEMA, '.', k.TABLE_NAME, '.', k.CONSTRAINT_NAME), \
               {} FROM information_schema.KEY_COLUMN_USAGE k WHERE k.TABLE_SCHEMA IN ({l}) \
             GROUP BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME",
            h("GROUP_CONCAT(CONCAT_WS('>', k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME) ORDER BY k.ORDINAL_POSITION SEPARATOR ',')")
        ),
        format!(
            "SELECT 'constraints', CONCAT(CONSTRAINT_SCHEMA, '.', TABLE_NAME, '.', CONSTRAINT_NAME, ' check'), {} \
             FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN ({l})",
            h("CHECK_CLAUSE")
        ),
        format!(
            "SELECT 'constraints', CONCAT(CONSTRAINT_SCHEMA, '.', TABLE_NAME, '.', CONSTRAINT_NAME, ' rules'), {} \
             FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN ({l})",
            h("CONCAT_WS('|', UPDATE_RULE, DELETE_RULE, MATCH_OPTION)")
        ),
        format!(
            "SELECT 'triggers', CONCAT(TRIGGER_SCHEMA, '.', EVENT_OBJECT_TABLE, '.', TRIGGER_NAME), {} \
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN ({l})",
            h("CONCAT_WS('|', ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT)")
        ),
        format!(
            "SELECT 'routines', CONCAT(r.ROUTINE_SCHEMA, '.', r.ROUTINE_NAME, ' ', r.ROUTINE_TYPE), {} \
             FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA IN ({l})",
            h("CONCAT_WS('|', r.DTD_IDENTIFIER, r.ROUTINE_DEFINITION, r.IS_DETERMINISTIC, r.SQL_DATA_ACCESS, r.SECURITY_TYPE, \
               (SELECT GROUP_CONCAT(CONCAT_WS(' ', p.PARAMETER_MODE, p.PARAMETER_NAME, p.DTD_IDENTIFIER) ORDER BY p.ORDINAL_POSITION) \
                FROM information_schema.PARAMETERS p WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA \
                  AND p.SPECIFIC_NAME = r.SPECIFIC_NAME AND p.ROUTINE_TYPE = r.ROUTINE_TYPE))")
        ),
        format!(
            "SELECT 'events', CONCAT(EVENT_SCHEMA, '.', EVENT_NAME), {} \
             FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN ({l})",
            h("CONCAT_WS('|', EVENT_DEFINITION, EVENT_TYPE, INTERVAL_VALUE, INTERVAL_FIELD)")
        ),
        format!(
            "SELECT 'views', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), {} \
             FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN ({l})",
            h("CONCAT_WS('|', VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE)")
        ),
        format!(
            "SELECT 'indexes', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', INDEX_NAME), {} \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({l}) \
             GROUP BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME",
            h("CONCAT_WS('|', MAX(NON_UNIQUE), MAX(INDEX_TYPE), GROUP_CONCAT(CONCAT_WS(' ', COLUMN_NAME, SUB_PART, COLLATION) ORDER BY SEQ_IN_INDEX))")
        ),
    ]
    .join(" UNION ALL ")
}

/// Why kinds are not compared on MySQL and MariaDB, whatever the database holds.
pub fn never_compared() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "privileges and definers".to_string(),
            "the dump carries no grants, and the restore removes DEFINER clauses: their users do not exist in the sandbox".to_string(),
        ),
        (
            "sequence positions".to_string(),
            "MariaDB SEQUENCE objects are counted, not read: reading one moves it".to_string(),
        ),
    ])
}

/// Holdings from the three queries' rows: counters (`table, next, column`), their
/// columns' largest values (`table, max`), and definitions (`kind, object, hash`).
pub fn holdings(
    counters: &[Vec<String>],
    maxima: &[Vec<String>],
    definitions: &[Vec<String>],
) -> Result<Holdings> {
    let num = |s: &str| -> Option<i128> { s.trim().parse::<i128>().ok() };
    let max: BTreeMap<&str, Option<i128>> = maxima
        .iter()
        .filter_map(|r| Some((r.first()?.as_str(), num(r.get(1)?))))
        .collect();
    let mut out = Holdings {
        not_compared: never_compared(),
        ..Default::default()
    };
    for r in counters {
        let [table, next, column] = r.as_slice() else {
            return Err(Error::internal(format!("unexpected counter row {r:?}")));
        };
        out.counters.push(Counter {
            name: format!("{table} AUTO_INCREMENT"),
            next: num(next),
            column: Some(format!("{table}.{column}")),
            column_max: max.get(table.as_str()).copied().flatten(),
        });
    }
    for r in definitions {
        let [kind, object, hash] = r.as_slice() else {
            return Err(Error::internal(format!("unexpected definition row {r:?}")));
        };
        out.definitions
            .entry(kind.clone())
            .or_default()
            .insert(object.clone(), hash.clone());
    }
    // Every kind compared, found or not: an object missing after restore must be missed.
    for kind in [
        "defaults",
        "comments",
        "constraints",
        "triggers",
        "routines",
        "events",
        "views",
        "indexes",
    ] {
        out.definitions.entry(kind.to_string()).or_default();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn holdings_from_rows() {
        let h = holdings(
            &[
                row(&["shop.orders", "12001", "id"]),
                row(&["shop.empty", "", "id"]),
            ],
            &[row(&["shop.orders", "12000"]), row(&["shop.empty", ""])],
            &[row(&["triggers", "shop.orders.audit", "abc"])],
        )
        .unwrap();
        assert_eq!(h.counters[0].name, "shop.orders AUTO_INCREMENT");
        assert_eq!(h.counters[0].next, Some(12001));
        assert_eq!(h.counters[0].column_max, Some(12000));
        assert_eq!(h.counters[1].column_max, None);
        assert_eq!(h.definitions["triggers"]["shop.orders.audit"], "abc");
        assert!(h.definitions["views"].is_empty());
        assert!(column_max_sql(&[("shop.orders".into(), "id".into())])
            .contains("MAX(`id`) AS CHAR), '') FROM `shop`.`orders`"));
        assert!(definitions_sql(&["shop".into()]).contains("'shop'"));
    }
}
