//! Which database engine a source, a manifest or a sandbox is: the one spelling shared by
//! drill files, manifests, the catalog and the API. What each engine does in a sandbox is
//! [`super`]'s business.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The engines firedrill can restore in a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Postgres,
    Mariadb,
    Mysql,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Postgres, Engine::Mariadb, Engine::Mysql];

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mariadb => "mariadb",
            Engine::Mysql => "mysql",
        }
    }

    /// Reads the engine a manifest names; anything else is a manifest firedrill did not
    /// write.
    pub fn parse(s: &str) -> Result<Engine> {
        s.parse()
            .map_err(|_| Error::backup(format!("unknown engine `{s}` in manifest")))
    }

    /// Whether a dump of this engine restores where `other`'s would (MySQL and MariaDB
    /// dumps are one family).
    pub fn same_family(self, other: Engine) -> bool {
        self == other || (self != Engine::Postgres && other != Engine::Postgres)
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Engine::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an engine: postgres, mariadb or mysql"))
    }
}
