//! What the dump role may read, checked before a dump and by `doctor`: a missing grant
//! that would fail the dump or silently leave something out of it is named with the
//! statement that grants it; what no dump role sees (roles' passwords, subscriptions for
//! a non-superuser) is noted in the report rather than skipped without a word.
//!
//! The facts are read by each engine's source ([`super::postgres`], [`super::mysql`]);
//! the judgement is here, without a server, so that it is unit-tested.

use crate::error::{Error, Result};
use crate::finding::Finding;

/// A grant the dump needs and the role lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The privilege, as the grant statement names it: `SELECT`, `TRIGGER`, `BYPASSRLS`.
    pub grant: String,
    /// What it is needed for, with the objects concerned.
    pub what: String,
    /// The statement (or statements) that grant it.
    pub fix: String,
}

/// The verdict on a dump role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub user: String,
    pub missing: Vec<Missing>,
    /// What the dump does not hold although the role is fine: noted in the report.
    pub unseen: Vec<String>,
}

impl Access {
    /// `doctor`'s findings: a fail per missing grant, else one ok; the unseen as warnings.
    pub fn findings(&self) -> Vec<Finding> {
        let check = format!("dump user {}", self.user);
        let mut out: Vec<Finding> = self
            .missing
            .iter()
            .map(|m| Finding::fail(&check, format!("lacks {}: {}", m.grant, m.what), &m.fix))
            .collect();
        if out.is_empty() {
            out.push(Finding::ok(&check, "has every grant the dump needs".into()));
        }
        out.extend(
            self.unseen
                .iter()
                .map(|u| Finding::warn(&check, u.clone(), "nothing to do if that is expected")),
        );
        out
    }

    /// Before a dump: an error naming every missing grant (a config error: a retry cannot
    /// help, a grant does).
    pub fn check(&self) -> Result<()> {
        if self.missing.is_empty() {
            return Ok(());
        }
        let what: Vec<String> = self
            .missing
            .iter()
            .map(|m| format!("{} ({})", m.grant, m.what))
            .collect();
        let fix: Vec<&str> = self.missing.iter().map(|m| m.fix.as_str()).collect();
        Err(Error::config(format!(
            "source.user `{}` lacks what the dump needs: {}",
            self.user,
            what.join("; ")
        ))
        .with_hint(fix.join("; "))
        .retryable(false))
    }
}

/// At most `n` names, then how many more.
pub fn some_of(names: &[String], n: usize) -> String {
    let mut s = names.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > n {
        s.push_str(&format!(" and {} more", names.len() - n));
    }
    s
}

/// What PostgreSQL says about the dump role in the dumped database.
#[derive(Debug, Clone, Default)]
pub struct PgFacts {
    pub user: String,
    pub server_major: u32,
    pub superuser: bool,
    pub bypassrls: bool,
    /// Schemas the role has no USAGE on.
    pub no_usage: Vec<String>,
    /// Tables and sequences it cannot SELECT from.
    pub no_select: Vec<String>,
    /// Tables whose row-level security applies to it (pg_dump fails on them).
    pub rls: Vec<String>,
    /// Large objects it cannot read (their OIDs).
    pub large_objects: Vec<String>,
    /// Subscriptions in the database (pg_dump dumps them only for a superuser).
    pub subscriptions: i64,
}

pub fn postgres(f: &PgFacts) -> Access {
    let u = &f.user;
    let all_data = if f.server_major >= 14 {
        format!("GRANT pg_read_all_data TO {u}")
    } else {
        String::from("GRANT SELECT ON ALL TABLES IN SCHEMA … and ALL SEQUENCES IN SCHEMA …")
    };
    let mut a = Access {
        user: u.clone(),
        ..Default::default()
    };
    if !f.no_usage.is_empty() {
        a.missing.push(Missing {
            grant: "USAGE".into(),
            what: format!(
                "on schema {}: pg_dump cannot read what is in it",
                some_of(&f.no_usage, 5)
            ),
            fix: if f.server_major >= 14 {
                all_data.clone()
            } else {
                format!("GRANT USAGE ON SCHEMA {} TO {u}", f.no_usage.join(", "))
            },
        });
    }
    if !f.no_select.is_empty() {
        a.missing.push(Missing {
            grant: "SELECT".into(),
            what: format!(
                "on {}: pg_dump fails on a table it cannot read",
                some_of(&f.no_select, 5)
            ),
            fix: all_data.clone(),
        });
    }
    if !f.rls.is_empty() {
        a.missing.push(Missing {
            grant: "BYPASSRLS".into(),
            what: format!(
                "row-level security hides rows of {} from it, and pg_dump refuses to dump part of a table",
                some_of(&f.rls, 5)
            ),
            fix: format!("ALTER ROLE {u} BYPASSRLS"),
        });
    }
    if !f.large_objects.is_empty() {
        a.missing.push(Missing {
            grant: "SELECT on large objects".into(),
            what: format!(
                "{} large object(s) it cannot read (OID {}), which pg_dump fails on; pg_read_all_data does not cover them",
                f.large_objects.len(),
                some_of(&f.large_objects, 5)
            ),
            fix: format!(
                "GRANT SELECT ON LARGE OBJECT {} TO {u} (or make {u} their owner)",
                some_of(&f.large_objects, 5)
            ),
        });
    }
    if !f.superuser && f.subscriptions > 0 {
        a.unseen.push(format!(
            "{} subscription(s) are not in the dump: pg_dump dumps subscriptions only as a superuser",
            f.subscriptions
        ));
    }
    a.unseen.push(
        "roles and their passwords are not in the dump (they belong to the cluster: pg_dumpall --globals-only keeps them); the restore runs without owners".into(),
    );
    a
}

/// The privileges a MariaDB or MySQL role holds, as information_schema lists them.
#[derive(Debug, Clone, Default)]
pub struct MyFacts {
    pub user: String,
    pub mariadb: bool,
    /// `10.11`, `11.8`, `8.0`.
    pub series: String,
    /// Global privileges (`ON *.*`).
    pub global: Vec<String>,
    /// Database-level privileges: (database or LIKE pattern, privilege).
    pub schema: Vec<(String, String)>,
    /// Whether it may SELECT from `mysql.proc` (MariaDB before 11.3 reads routines there).
    pub proc_select: bool,
    /// Per dumped database: whether it holds views.
    pub databases: Vec<(String, bool)>,
}

/// Whether `name` matches a grant's database pattern (`_` and `%` as in LIKE, `\` escapes).
pub fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('%') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('_') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

fn series_at_least(series: &str, major: u32, minor: u32) -> bool {
    let mut it = series.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

pub fn mysql(f: &MyFacts) -> Access {
    let has = |db: &str, privilege: &str| {
        f.global.iter().any(|g| g.eq_ignore_ascii_case(privilege))
            || f.schema
                .iter()
                .any(|(p, g)| g.eq_ignore_ascii_case(privilege) && like(p, db))
    };
    let mut a = Access {
        user: f.user.clone(),
        ..Default::default()
    };
    let u = &f.user;
    let lacking = |privilege: &str| -> Vec<String> {
        f.databases
            .iter()
            .filter(|(db, _)| !has(db, privilege))
            .map(|(db, _)| db.clone())
            .collect()
    };
    let on = |dbs: &[String]| {
        dbs.iter()
            .map(|d| format!("`{}`.*", d.replace('`', "``")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut need = |grant: &str, dbs: Vec<String>, why: &str| {
        if !dbs.is_empty() {
            a.missing.push(Missing {
                grant: grant.into(),
                what: format!("on {}: {why}", some_of(&dbs, 5)),
                fix: format!("GRANT {grant} ON {} TO {u}", on(&dbs)),
            });
        }
    };
    need(
        "SELECT",
        lacking("SELECT"),
        "the dump cannot read the tables",
    );
    let views: Vec<String> = lacking("SHOW VIEW")
        .into_iter()
        .filter(|db| f.databases.iter().any(|(d, v)| d == db && *v))
        .collect();
    need("SHOW VIEW", views, "the dump fails on its views");
    need(
        "TRIGGER",
        lacking("TRIGGER"),
        "without it the dump leaves the triggers out, without an error",
    );
    need(
        "EVENT",
        lacking("EVENT"),
        "the dump (--events) fails without it",
    );
    // Routines: the dump reads their bodies only with these rights and otherwise leaves
    // them out without an error.
    let routines_ok = if f.mariadb {
        f.proc_select
            || has_global(f, "SELECT")
            || (series_at_least(&f.series, 11, 3)
                && f.databases
                    .iter()
                    .all(|(db, _)| has(db, "SHOW CREATE ROUTINE")))
    } else {
        has_global(f, "SELECT") || has_global(f, "SHOW_ROUTINE")
    };
    if !routines_ok {
        let (grant, fix) = if f.mariadb && series_at_least(&f.series, 11, 3) {
            (
                "SHOW CREATE ROUTINE",
                format!("GRANT SHOW CREATE ROUTINE ON {} TO {u}", on(&databases(f))),
            )
        } else if f.mariadb {
            (
                "SELECT on mysql.proc",
                format!("GRANT SELECT ON mysql.proc TO {u}"),
            )
        } else {
            ("SHOW_ROUTINE", format!("GRANT SHOW_ROUTINE ON *.* TO {u}"))
        };
        a.missing.push(Missing {
            grant: grant.into(),
            what: "without it the dump (--routines) leaves out the bodies of routines the role did not define, without an error".into(),
            fix,
        });
    }
    a.unseen.push(
        "accounts, their passwords and grants are not in the dump (the mysql system schema is left out); DEFINER clauses name accounts the sandbox does not have".into(),
    );
    a
}

fn has_global(f: &MyFacts, privilege: &str) -> bool {
    f.global.iter().any(|g| g.eq_ignore_ascii_case(privilege))
}

fn databases(f: &MyFacts) -> Vec<String> {
    f.databases.iter().map(|(d, _)| d.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn my(series: &str, schema: &[(&str, &str)], proc_select: bool) -> MyFacts {
        MyFacts {
            user: "'ro'@'%'".into(),
            mariadb: true,
            series: series.into(),
            global: vec!["USAGE".into()],
            schema: schema
                .iter()
                .map(|(d, p)| (d.to_string(), p.to_string()))
                .collect(),
            proc_select,
            databases: vec![("shop".into(), true), ("shop_2".into(), false)],
        }
    }

    #[test]
    fn like_matches_grant_patterns() {
        assert!(like("shop", "shop"));
        assert!(!like("shop", "shops"));
        assert!(like("shop%", "shop_2"));
        assert!(like("shop\\_2", "shop_2"));
        assert!(!like("shop\\_2", "shopx2"));
        assert!(like("shop_2", "shopx2"));
        assert!(like("%", ""));
    }

    #[test]
    fn a_mariadb_role_with_the_dump_grants_passes() {
        let grants = ["SELECT", "SHOW VIEW", "TRIGGER", "EVENT"];
        let schema: Vec<(&str, &str)> = grants.iter().map(|g| ("shop%", *g)).collect();
        assert_eq!(mysql(&my("10.11", &schema, true)).missing, vec![]);
        // From 11.3 SHOW CREATE ROUTINE does what SELECT on mysql.proc did.
        let mut s = schema.clone();
        s.push(("shop%", "SHOW CREATE ROUTINE"));
        assert_eq!(mysql(&my("11.8", &s, false)).missing, vec![]);
        // A global SELECT reads mysql.proc too.
        let mut f = my("10.5", &schema, false);
        f.global.push("SELECT".into());
        assert_eq!(mysql(&f).missing, vec![]);
    }

    #[test]
    fn each_missing_mariadb_grant_is_named_with_its_statement() {
        let a = mysql(&my(
            "10.11",
            &[("shop", "SELECT"), ("shop_2", "SELECT")],
            false,
        ));
        let grants: Vec<&str> = a.missing.iter().map(|m| m.grant.as_str()).collect();
        assert_eq!(
            grants,
            ["SHOW VIEW", "TRIGGER", "EVENT", "SELECT on mysql.proc"]
        );
        // SHOW VIEW only where there are views.
        assert_eq!(a.missing[0].fix, "GRANT SHOW VIEW ON `shop`.* TO 'ro'@'%'");
        assert!(a.missing[1].fix.contains("`shop`.*, `shop_2`.*"), "{a:?}");
        let e = a.check().unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Config);
        assert!(e.to_string().contains("TRIGGER"), "{e}");
        let a = mysql(&my("11.8", &[("shop%", "SELECT")], false));
        assert_eq!(a.missing.last().unwrap().grant, "SHOW CREATE ROUTINE");
    }

    #[test]
    fn postgres_names_rls_large_objects_and_what_no_dump_holds() {
        let f = PgFacts {
            user: "reader".into(),
            server_major: 15,
            rls: vec!["public.secret".into()],
            large_objects: vec!["16398".into()],
            subscriptions: 2,
            ..Default::default()
        };
        let a = postgres(&f);
        let grants: Vec<&str> = a.missing.iter().map(|m| m.grant.as_str()).collect();
        assert_eq!(grants, ["BYPASSRLS", "SELECT on large objects"]);
        assert_eq!(a.missing[0].fix, "ALTER ROLE reader BYPASSRLS");
        assert!(a.unseen[0].contains("2 subscription(s)"), "{a:?}");
        let a = postgres(&PgFacts {
            superuser: true,
            ..f.clone()
        });
        assert_eq!(a.unseen.len(), 1, "{a:?}");
        let a = postgres(&PgFacts {
            server_major: 13,
            no_select: vec!["public.t".into()],
            ..Default::default()
        });
        assert!(a.missing[0].fix.contains("ALL TABLES IN SCHEMA"), "{a:?}");
    }
}
