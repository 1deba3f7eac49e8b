//! Commands run in a physical drill's sandbox, through its entrypoint's contract
//! (containers/README.md).

/// `sh -c SCRIPT` in the sandbox.
pub(crate) fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// `psql` in the sandbox, as its superuser over the socket: one query, unaligned rows.
pub(crate) fn psql(db: &str, sql: &str) -> Vec<String> {
    as_server(&[
        "psql",
        "-XAtq",
        "-h",
        "/run/postgresql",
        "-U",
        "postgres",
        "-d",
        db,
        "-c",
        sql,
    ])
}

/// A command run as the sandbox server's user, in the repository's group.
pub(crate) fn as_server(args: &[&str]) -> Vec<String> {
    ["firedrill-sandbox", "as-server", "postgres"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}
