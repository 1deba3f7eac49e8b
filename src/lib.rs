//! firedrill proves database backups can be restored.
//!
//! A drill dumps a database with its native tool, compresses and encrypts the dump as a
//! stream, stores it with a manifest, restores it in a throwaway sandbox with no network,
//! and checks the restored data against a fingerprint taken in the dump's own snapshot.
//! The binary (`src/main.rs`, `src/cli/`) is a thin shell over [`Runner`] and friends.
//!
//! The leaf vocabulary ([`status`], [`error`], [`cancel`], [`human`], [`finding`]) is
//! imported by everything and imports nothing of the engine; no module imports another
//! that imports it back (`tests/architecture.rs` keeps it so).

pub mod access;
pub mod age_keys;
pub mod artifact;
pub mod assertion;
pub mod bundle;
pub mod cancel;
pub mod catalog;
pub mod config;
pub mod daemon;
pub mod doctor;
pub mod drill;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod finding;
pub mod fingerprint;
pub mod human;
pub mod inventory;
pub mod lease;
pub mod listing;
pub mod manifest;
pub mod notify;
pub mod physical;
pub mod pick;
pub mod render;
pub mod report;
pub mod retention;
pub mod runner;
pub mod sandbox;
pub mod schedule;
pub mod secret;
pub mod signing;
pub mod snapshot;
pub mod stage;
pub mod status;
pub mod store;
pub mod tls;
pub mod verify;

pub use cancel::{Stop, StopReason};
pub use config::{load_drill, Drill, Problem, Problems};
pub use drill::{Connector, LiveConnector, RunOptions};
pub use error::{Error, ErrorKind, Result};
pub use report::RunReport;
pub use runner::{run_drill, Ran, Runner};
pub use stage::{Progress, Silent};
pub use status::{Outcome, RunStatus, Stage, Verdict};
