//! `firedrill doctor` against the real PostgreSQL source, Docker and local storage
//! (started by `tests/run`): what it finds, and that it changes nothing.

mod support;

use std::os::unix::fs::PermissionsExt;

use firedrill::doctor::{diagnose, Status};
use firedrill::load_drill;
use support::*;

fn status_of<'a>(
    f: &'a [firedrill::doctor::Finding],
    check: &str,
) -> &'a firedrill::doctor::Finding {
    f.iter()
        .find(|x| x.check.starts_with(check))
        .unwrap_or_else(|| panic!("no `{check}` finding in {f:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_each_check_with_a_fix_and_changes_nothing() {
    create_db("fd_doctor", SHOP).await;
    let fx = Fixture::new();
    let path = fx.drill("doctor", "fd_doctor", "");
    std::fs::set_permissions(&fx.identity, std::fs::Permissions::from_mode(0o644)).unwrap();
    let drill = load_drill(&path).unwrap();
    let f = diagnose(&drill).await;
    eprintln!("{}", firedrill::doctor::render(&f));

    let src = status_of(&f, "source postgres");
    assert_eq!(src.status, Status::Ok);
    assert!(src.detail.contains("PostgreSQL 15"), "{src:?}");
    assert_eq!(status_of(&f, "pg_dump").status, Status::Ok);
    // The test source connects as the superuser: a backup job should not.
    let user = status_of(&f, "dump user postgres");
    assert_eq!(user.status, Status::Warn);
    assert!(user.detail.contains("superuser"), "{user:?}");
    assert!(user.fix.as_deref().unwrap().contains("pg_read_all_data"));
    assert_eq!(status_of(&f, "storage").status, Status::Ok);
    assert_eq!(status_of(&f, "docker").status, Status::Ok);
    let image = status_of(&f, "sandbox image");
    assert_eq!(image.status, Status::Ok, "{image:?}");
    assert!(image.detail.contains("firedrill-sandbox-postgres:15"));
    let id = status_of(&f, "identity file");
    assert_eq!(id.status, Status::Warn);
    assert!(id.fix.as_deref().unwrap().starts_with("chmod 600"));
    assert!(firedrill::doctor::healthy(&f));
    // The probe object is gone: storage holds no file after the doctor (the local store's
    // own empty directory for atomic writes may stay).
    let left: Vec<_> = walk(&fx.store());
    assert!(left.is_empty(), "{left:?}");

    // A read-only role has no write rights; the identity made private is ok.
    sh_psql("DROP ROLE IF EXISTS fd_reader; CREATE ROLE fd_reader LOGIN PASSWORD 'reader-pass'; GRANT pg_read_all_data TO fd_reader;");
    std::env::set_var("FD_READER_PASSWORD", "reader-pass");
    std::fs::set_permissions(&fx.identity, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("user = \"postgres\"", "user = \"fd_reader\"")
        .replace(PASSWORD_ENV, "FD_READER_PASSWORD");
    std::fs::write(&path, text).unwrap();
    let f = diagnose(&load_drill(&path).unwrap()).await;
    let user = status_of(&f, "dump user fd_reader");
    assert_eq!(user.status, Status::Ok, "{user:?}");
    assert_eq!(status_of(&f, "identity file").status, Status::Ok);

    // A missing image, and storage that cannot be written, fail, each with its fix.
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[sandbox]\n",
        "[sandbox]\nimage = \"firedrill-sandbox-postgres:nope-{major}\"\n",
    );
    std::fs::write(&path, &text).unwrap();
    let f = diagnose(&load_drill(&path).unwrap()).await;
    let image = status_of(&f, "sandbox image");
    assert_eq!(image.status, Status::Fail, "{image:?}");
    assert!(image.detail.contains("nope-15"), "{image:?}");
    assert!(image.fix.is_some(), "{image:?}");
    assert!(!firedrill::doctor::healthy(&f));
    let text = text.replace(
        &format!("path = \"{}\"", fx.store().display()),
        "path = \"/proc/firedrill-cannot-write-here\"",
    );
    std::fs::write(&path, text).unwrap();
    let f = diagnose(&load_drill(&path).unwrap()).await;
    let st = status_of(&f, "storage");
    assert_eq!(st.status, Status::Fail, "{st:?}");
    assert!(
        st.detail.contains("/proc/firedrill-cannot-write-here"),
        "{st:?}"
    );
    assert!(st.fix.is_some());
    assert!(!firedrill::doctor::healthy(&f));

    // The source's secret missing: its version is unknown, and the images present for
    // its engine are still named (the one tests/run builds among them); with a template
    // that matches none, that is a failure.
    let fx = Fixture::new();
    let path = fx.drill("doctor-nosecret", "fd_doctor", "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(PASSWORD_ENV, "FD_DOCTOR_NEVER_SET");
    std::fs::write(&path, &text).unwrap();
    let f = diagnose(&load_drill(&path).unwrap()).await;
    let image = status_of(&f, "sandbox image");
    assert_eq!(image.status, Status::Warn, "{image:?}");
    assert!(
        image.detail.contains("present: ")
            && image.detail.contains("firedrill-sandbox-postgres:15"),
        "{image:?}"
    );
    let text = text.replace(
        "[sandbox]\n",
        "[sandbox]\nimage = \"firedrill-sandbox-postgres:nope-{major}\"\n",
    );
    std::fs::write(&path, &text).unwrap();
    let f = diagnose(&load_drill(&path).unwrap()).await;
    let image = status_of(&f, "sandbox image");
    assert_eq!(image.status, Status::Fail, "{image:?}");
    assert!(
        image.fix.as_deref().unwrap().contains("build-offline"),
        "{image:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn sh_psql(sql: &str) {
    let p = pg();
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", &p.password)
        .env("PGPORT", p.port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
