//! firedrill proves database backups can be restored.
//!
//! A drill dumps a database with its native tool, compresses and encrypts the dump as a
//! stream, stores it with a manifest, restores it in a throwaway sandbox with no network,
//! and checks the restored data against a fingerprint taken in the dump's own snapshot.
//! The binary (`src/main.rs`) is a thin shell over [`run_drill`] and friends.

pub mod artifact;
pub mod assertion;
pub mod catalog;
pub mod config;
pub mod daemon;
pub mod doctor;
pub mod drill;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod fingerprint;
pub mod inventory;
pub mod manifest;
pub mod notify;
pub mod render;
pub mod report;
pub mod retention;
pub mod sandbox;
pub mod schedule;
pub mod secret;
pub mod store;
pub mod verify;

pub use config::{load_drill, Drill, Problem, Problems};
pub use drill::{run_drill, Progress, RunOptions, Silent};
pub use error::{Error, ErrorKind, Result};
pub use report::{RunReport, Stage, Verdict};
