//! Drill files: what a user writes, and the checked form the engine runs.
//!
//! A drill file is parsed into the raw types here (serde, unknown fields refused), then
//! [`validate`] turns it into a [`Drill`] without touching the world: no network, no
//! files other than the drill file, no secrets read. Every problem is reported at once,
//! each with the file, the field and a fix. Only a [`Drill`] can build clients, stores
//! and sandboxes.

mod interpolate;
mod main_config;
pub mod notify;
mod raw;
mod units;
mod validate;

pub use interpolate::{interpolate, interpolate_env, InterpolationError};
pub use main_config::{load_main_config, DaemonSettings, MainConfig, MainConfigFile, OidcSettings};
pub use raw::*;
pub use units::{parse_byte_size, parse_duration};
pub use validate::*;
