//! Database engines: how to dump a source on the host ([`DumpSource`]) and how to restore
//! and inspect a dump inside a sandbox ([`Engine`]).
//!
//! The dump side is a trait because it talks to the world (a server, a dump tool). The
//! sandbox side is a closed enum of command lines run through
//! [`crate::sandbox::SandboxBackend::exec`]: the sandbox has no network, so everything
//! happens inside it with the engine's own client tools.

pub mod postgres;

use std::pin::Pin;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::io::AsyncRead;

use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;

/// What a started dump says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct DumpMeta {
    pub engine: Engine,
    pub server_version: String,
    pub server_major: u32,
    pub database: String,
    pub tool: String,
    pub tool_version: String,
    pub format: String,
}

/// A dump in progress: its fingerprint (taken in the dump's snapshot), its byte stream,
/// and a future that resolves when the dump tool has exited, with an error if it failed.
pub struct StartedDump {
    pub meta: DumpMeta,
    pub fingerprint: Fingerprint,
    pub output: Pin<Box<dyn AsyncRead + Send>>,
    pub completion: BoxFuture<'static, Result<()>>,
}

/// A database that can be dumped.
#[async_trait]
pub trait DumpSource: Send + Sync + 'static {
    /// Connects, checks versions, takes the fingerprint and starts the dump tool. The
    /// returned stream must be read to the end for the tool to finish.
    async fn start(&self) -> Result<StartedDump>;
}

/// The engines firedrill can restore in a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Postgres,
}

/// Where the sandbox keeps the staged (still encrypted) artifact.
pub const STAGED_ARTIFACT: &str = "/var/lib/firedrill/staging/artifact.age";
/// Where the sandbox keeps the identity: a tmpfs, never a disk.
pub const SANDBOX_IDENTITY: &str = "/run/firedrill/identity";

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
        }
    }

    pub fn parse(s: &str) -> Result<Engine> {
        match s {
            "postgres" => Ok(Engine::Postgres),
            other => Err(Error::backup(format!(
                "unknown engine `{other}` in manifest"
            ))),
        }
    }

    /// The default sandbox image for a source major version.
    pub fn default_image(self, major: u32) -> String {
        format!("firedrill-sandbox-{}:{major}", self.as_str())
    }

    /// How to build the default image offline, for error messages.
    pub fn build_hint(self) -> String {
        format!("build it offline with `containers/build-offline.sh {}` (or from containers/{}/Dockerfile with a registry)", self.as_str(), self.as_str())
    }

    /// Command that serves the database in the sandbox (container command).
    pub fn serve_cmd(self) -> Vec<String> {
        vec!["serve".into(), self.as_str().into()]
    }

    /// Exits 0 once the server in the sandbox accepts connections.
    pub fn ready_cmd(self) -> Vec<String> {
        vec![
            "firedrill-sandbox".into(),
            "ready".into(),
            self.as_str().into(),
        ]
    }

    /// Prints the server's major version.
    pub fn version_cmd(self) -> Vec<String> {
        vec![
            "firedrill-sandbox".into(),
            "version".into(),
            self.as_str().into(),
        ]
    }

    /// Creates the target database and restores the staged artifact into it: decrypt,
    /// decompress, restore, all inside the sandbox.
    pub fn restore_cmd(self, database: &str) -> Vec<String> {
        match self {
            Engine::Postgres => postgres::restore_cmd(database),
        }
    }

    /// Prints the restored database's fingerprint as JSON.
    pub fn fingerprint_cmd(self, database: &str) -> Vec<String> {
        match self {
            Engine::Postgres => postgres::psql_cmd(database, postgres::FINGERPRINT_SQL),
        }
    }

    pub fn parse_fingerprint(self, stdout: &str) -> Result<Fingerprint> {
        match self {
            Engine::Postgres => postgres::parse_fingerprint(stdout),
        }
    }

    /// Runs one query and prints its scalar.
    pub fn scalar_cmd(self, database: &str, sql: &str) -> Vec<String> {
        match self {
            Engine::Postgres => postgres::psql_cmd(database, sql),
        }
    }

    /// How a person reaches a kept sandbox's database.
    pub fn connect_cmd(self, container: &str, database: &str) -> String {
        match self {
            Engine::Postgres => format!(
                "docker exec -it {container} psql -h /run/postgresql -U postgres -d {database}"
            ),
        }
    }

    /// Turns a failed restore's exit and stderr into an error that says what broke.
    pub fn restore_error(self, stderr: &str) -> Error {
        if stderr.contains("no identity matched any of the recipients") {
            return Error::backup("this identity does not match any recipient of the artifact")
                .with_hint("encryption.identity must be the private key of one of the recipients listed in the artifact's manifest; use the matching identity file");
        }
        if stderr.contains("age: error") || stderr.contains("age: ") {
            return Error::backup("the artifact does not decrypt: its authentication failed (it was altered or truncated after encryption)")
                .with_hint("this backup cannot be trusted; drill an earlier artifact and find out what damaged this one");
        }
        if stderr.contains("zstd:") {
            return Error::backup("the decrypted artifact does not decompress").with_hint(
                "the artifact was written by a broken pipeline; drill an earlier artifact",
            );
        }
        match self {
            Engine::Postgres => postgres::restore_error(stderr),
        }
    }
}
