//! What a check found: ok, warn or fail, with a fix. `firedrill doctor` reports these, and
//! each engine's source checks (reachable, versions, the dump user's rights) produce them.

use serde::Serialize;

use crate::error::Error;

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One finding of the doctor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked ("storage", "docker", "dump user backup").
    pub check: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &str, detail: String) -> Self {
        Finding {
            check: check.into(),
            status: Status::Ok,
            detail,
            fix: None,
        }
    }
    pub fn warn(check: &str, detail: String, fix: &str) -> Self {
        Finding {
            check: check.into(),
            status: Status::Warn,
            detail,
            fix: Some(fix.into()),
        }
    }
    pub fn fail(check: &str, detail: String, fix: &str) -> Self {
        Finding {
            check: check.into(),
            status: Status::Fail,
            detail,
            fix: Some(fix.into()),
        }
    }
    /// A failed check from an error: its message, and its hint as the fix.
    pub fn from_error(check: &str, e: &Error) -> Self {
        let mut detail = String::new();
        for c in &e.context {
            detail.push_str(c);
            detail.push_str(": ");
        }
        detail.push_str(&e.message);
        Finding {
            check: check.into(),
            status: Status::Fail,
            detail,
            fix: Some(
                e.hint
                    .clone()
                    .unwrap_or_else(|| "see the message".to_string()),
            ),
        }
    }
}
