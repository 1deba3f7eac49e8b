//! What a PostgreSQL database's objects hold, read the same way from the source (in the
//! dump's snapshot) and from the restored database: large objects, what each sequence
//! would hand out next against the column it feeds, whether materialized views hold data,
//! and the definitions of defaults, constraints, triggers, routines, views, indexes,
//! comments and row-level security policies. Privileges and owners are not compared: the
//! sandbox's restore drops them on purpose (the source's roles do not exist there).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::fingerprint::{Counter, Holdings, LargeObjects};

/// One query returning a JSON object: `sequences` (`[name, next, column, column max]`),
/// `matviews` (`{name: populated}`), `large_objects` (their number) and `definitions`
/// (`{kind: {object: hash}}`). Objects of user schemas only, not those an extension owns.
pub const HOLDINGS_SQL: &str = r#"WITH ns AS (
  SELECT oid, nspname FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema')
    AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'
), rel AS (
  SELECT c.oid, c.relname, c.relkind, c.relispopulated, n.nspname
  FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
  WHERE NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
), fn AS (
  SELECT p.oid, p.prokind, n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name
  FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
), seq AS (
  SELECT s.nspname || '.' || s.relname AS name,
    CASE WHEN has_sequence_privilege(s.oid, 'SELECT,USAGE') THEN pg_sequence_last_value(s.oid) END AS last,
    q.seqstart, q.seqincrement,
    o.relname AS tbl, o.nspname AS tns, a.attname AS col
  FROM rel s JOIN pg_sequence q ON q.seqrelid = s.oid
  LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
    AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  LEFT JOIN rel o ON o.oid = d.refobjid
  LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  WHERE s.relkind = 'S'
)
SELECT json_build_object(
  'sequences', (SELECT coalesce(json_agg(json_build_array(
      name,
      (CASE WHEN last IS NULL THEN seqstart ELSE last + seqincrement END)::text,
      CASE WHEN col IS NOT NULL THEN tns || '.' || tbl || '.' || col END,
      CASE WHEN col IS NOT NULL AND seqincrement > 0 THEN
        (xpath('/row/m/text()', query_to_xml(format('SELECT max(%I)::text AS m FROM %I.%I', col, tns, tbl), false, true, '')))[1]::text
      END) ORDER BY name), '[]') FROM seq),
  'matviews', (SELECT coalesce(json_object_agg(nspname || '.' || relname, relispopulated), '{}')
               FROM rel WHERE relkind = 'm'),
  'large_objects', (SELECT count(*) FROM pg_largeobject_metadata),
  'definitions', json_build_object(
    'defaults', (SELECT coalesce(json_object_agg(r.nspname || '.' || r.relname || '.' || a.attname,
                   substr(md5(pg_get_expr(d.adbin, d.adrelid)), 1, 16)), '{}')
                 FROM pg_attrdef d JOIN rel r ON r.oid = d.adrelid
                 JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum),
    'constraints', (SELECT coalesce(json_object_agg(r.nspname || '.' || r.relname || '.' || c.conname,
                      substr(md5(pg_get_constraintdef(c.oid)), 1, 16)), '{}')
                    FROM pg_constraint c JOIN rel r ON r.oid = c.conrelid),
    'triggers', (SELECT coalesce(json_object_agg(r.nspname || '.' || r.relname || '.' || t.tgname,
                   substr(md5(pg_get_triggerdef(t.oid)), 1, 16)), '{}')
                 FROM pg_trigger t JOIN rel r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal),
    'routines', (SELECT coalesce(json_object_agg(name, substr(md5(pg_get_functiondef(oid)), 1, 16)), '{}')
                 FROM fn WHERE prokind IN ('f', 'p')),
    'views', (SELECT coalesce(json_object_agg(nspname || '.' || relname, substr(md5(pg_get_viewdef(oid)), 1, 16)), '{}')
              FROM rel WHERE relkind IN ('v', 'm')),
    'indexes', (SELECT coalesce(json_object_agg(nspname || '.' || relname, substr(md5(pg_get_indexdef(oid)), 1, 16)), '{}')
                FROM rel WHERE relkind IN ('i', 'I')),
    'comments', (SELECT coalesce(json_object_agg(o, substr(md5(description), 1, 16)), '{}') FROM (
                   SELECT r.nspname || '.' || r.relname || coalesce('.' || a.attname, '') AS o, d.description
                   FROM pg_description d JOIN rel r ON d.classoid = 'pg_class'::regclass AND d.objoid = r.oid
                   LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = d.objsubid AND d.objsubid > 0
                   UNION ALL
                   SELECT f.name, d.description
                   FROM pg_description d JOIN fn f ON d.classoid = 'pg_proc'::regclass AND d.objoid = f.oid) x),
    'policies', (SELECT coalesce(json_object_agg(r.nspname || '.' || r.relname || '.' || p.polname,
                   substr(md5(p.polcmd::text || '|' || p.polpermissive::text || '|' || coalesce(pg_get_expr(p.polqual, p.polrelid), '')
                          || '|' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')), 1, 16)), '{}')
                 FROM pg_policy p JOIN rel r ON r.oid = p.polrelid)
  )
)::text"#;

/// The large objects' content, as a sum of the first 60 bits of each one's MD5 (exact,
/// independent of order). Needs the right to read them.
pub const LARGE_OBJECTS_SUM_SQL: &str = "SELECT coalesce(sum(('x' || substr(md5(lo_get(oid)), 1, 15))::bit(60)::bigint), 0)::text FROM pg_largeobject_metadata";

/// Why a kind is not compared on PostgreSQL, whatever the database holds.
pub fn never_compared() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "privileges and owners".to_string(),
        "the sandbox restores with --no-owner --no-privileges: the source's roles do not exist there".to_string(),
    )])
}

/// A sequence as the query returns it: name, last value, `is_called`, owning column.
type RawSequence = (String, Option<String>, Option<String>, Option<String>);

#[derive(serde::Deserialize)]
struct Raw {
    sequences: Vec<RawSequence>,
    matviews: BTreeMap<String, bool>,
    large_objects: u64,
    definitions: BTreeMap<String, BTreeMap<String, String>>,
}

/// Reads `HOLDINGS_SQL`'s result; `lo_sum` is `LARGE_OBJECTS_SUM_SQL`'s, or why it could
/// not be read.
pub fn parse_holdings(json: &str, lo_sum: std::result::Result<String, String>) -> Result<Holdings> {
    let raw: Raw = serde_json::from_str(json.trim()).map_err(|e| {
        Error::internal(format!(
            "cannot read the schema holdings query's result: {e}"
        ))
    })?;
    let num = |s: &Option<String>| s.as_deref().and_then(|v| v.trim().parse::<i128>().ok());
    let counters = raw
        .sequences
        .iter()
        .map(|(name, next, column, max)| Counter {
            name: name.clone(),
            next: num(next),
            column: column.clone(),
            column_max: num(max),
        })
        .collect();
    let mut not_compared = never_compared();
    let checksum = match lo_sum {
        Ok(s) => Some(format!("md5sum:{}", s.trim())),
        Err(why) => {
            if raw.large_objects > 0 {
                not_compared.insert("large object contents".into(), why);
            }
            None
        }
    };
    Ok(Holdings {
        large_objects: Some(LargeObjects {
            count: raw.large_objects,
            checksum,
        }),
        counters,
        matviews: raw.matviews,
        definitions: raw.definitions,
        not_compared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_are_read_from_the_query() {
        let json = r#"{"sequences": [["public.orders_id_seq", "12001", "public.orders.id", "12000"], ["public.free", "1", null, null]],
                       "matviews": {"public.totals": true},
                       "large_objects": 2,
                       "definitions": {"defaults": {"public.orders.id": "abc"}, "triggers": {}}}"#;
        let h = parse_holdings(json, Err("permission denied".into())).unwrap();
        assert_eq!(h.counters[0].next, Some(12001));
        assert_eq!(h.counters[0].column_max, Some(12000));
        assert_eq!(h.counters[1].column, None);
        assert_eq!(h.large_objects.as_ref().unwrap().count, 2);
        assert!(h.large_objects.as_ref().unwrap().checksum.is_none());
        assert!(h.not_compared.contains_key("large object contents"));
        let h = parse_holdings(json, Ok("42".into())).unwrap();
        assert_eq!(
            h.large_objects.unwrap().checksum.as_deref(),
            Some("md5sum:42")
        );
    }
}
