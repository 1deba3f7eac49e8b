//! Secrets: where they come from, and a holder that never prints them.
//!
//! A drill file never contains a secret. It says where to find one: an environment
//! variable or a file. The value is read when the drill runs (not when it is validated)
//! and held in [`Secret`], whose `Debug` and `Display` print a placeholder.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A secret reference as written in a drill file: exactly one of `env` or `file`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

/// What a secret reference holds, read by serde's derive (unknown keys refused).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRefFields {
    env: Option<String>,
    file: Option<PathBuf>,
}

/// The message for a value where a secret reference belongs, without the value.
pub const INLINE_SECRET: &str = "a secret written inline (its value is not shown); secrets are never written in the file: use { env = \"VAR\" } or { file = \"/path\" }";

// Anything else where a secret reference belongs (most often the secret itself, written
// inline) is refused with a message that does not repeat the value: serde's own would
// quote it (`invalid type: string "hunter2"`), into `validate`'s output and the API's 422.
impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret reference { env = \"VAR\" } or { file = \"/path\" }")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<SecretRef, A::Error> {
                let f = SecretRefFields::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(SecretRef {
                    env: f.env,
                    file: f.file,
                })
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<SecretRef, E> {
                Err(E::custom(INLINE_SECRET))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                _: A,
            ) -> std::result::Result<SecretRef, A::Error> {
                Err(serde::de::Error::custom(INLINE_SECRET))
            }
        }
        d.deserialize_any(V)
    }
}

impl SecretRef {
    /// Checks the reference without reading the secret; the error text names the fix.
    pub fn validate(&self) -> std::result::Result<SecretSource, String> {
        match (&self.env, &self.file) {
            (Some(env), None) if is_env_name(env) => Ok(SecretSource::Env { env: env.clone() }),
            (Some(env), None) => Err(format!(
                "`{env}` is not an environment variable name; use letters, digits and _ (e.g. env = \"PGPASSWORD_SHOP\")"
            )),
            (None, Some(file)) if !file.as_os_str().is_empty() => {
                Ok(SecretSource::File { file: file.clone() })
            }
            (None, Some(_)) => Err("the file path is empty".into()),
            (Some(_), Some(_)) => Err("give either `env` or `file`, not both".into()),
            (None, None) => Err(
                "say where the secret comes from: { env = \"VAR\" } or { file = \"/path\" }".into(),
            ),
        }
    }
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// `{ env = "PGPASSWORD_SHOP" }`
    Env { env: String },
    /// `{ file = "/run/secrets/shop" }`: the whole file, one trailing newline removed.
    File { file: PathBuf },
}

impl SecretSource {
    /// A short description for messages, never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env { env } => format!("environment variable {env}"),
            SecretSource::File { file } => format!("file {}", file.display()),
        }
    }

    /// Reads the secret. Relative file paths are taken relative to `base` (the directory
    /// of the drill file).
    pub fn load(&self, base: &Path) -> Result<Secret> {
        match self {
            SecretSource::Env { env } => match std::env::var(env) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                Ok(_) => Err(
                    Error::config(format!("environment variable {env} is empty"))
                        .with_hint(format!("export {env}=… before running the drill")),
                ),
                Err(_) => Err(
                    Error::config(format!("environment variable {env} is not set"))
                        .with_hint(format!("export {env}=… before running the drill")),
                ),
            },
            SecretSource::File { file } => {
                let path = if file.is_absolute() {
                    file.clone()
                } else {
                    base.join(file)
                };
                let mut v = std::fs::read_to_string(&path).map_err(|e| {
                    Error::config(format!("cannot read secret file {}: {e}", path.display()))
                        .with_hint("check the path and that firedrill's user may read it")
                })?;
                if v.ends_with('\n') {
                    v.pop();
                    if v.ends_with('\r') {
                        v.pop();
                    }
                }
                if v.is_empty() {
                    return Err(Error::config(format!(
                        "secret file {} is empty",
                        path.display()
                    )));
                }
                Ok(Secret::new(v))
            }
        }
    }
}

/// A secret value. `Debug` and `Display` never show it; use [`Secret::expose`] at the one
/// place that hands it to a library or a child process's environment.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(v: impl Into<String>) -> Self {
        let v = v.into();
        remember(&v);
        Secret(v)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Every secret value this process holds, in the forms it takes when printed: as it is,
/// `Debug`-escaped, JSON-escaped. Libraries log what they hold (OpenDAL's request signer
/// prints its credential providers with `Debug`, keys and all, at debug level), so text
/// bound for the logs is scrubbed of them: see [`scrub`].
static HELD: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

fn remember(v: &str) {
    if v.len() < 4 {
        return;
    }
    let debug = v.escape_debug().to_string();
    let json = |s: &str| {
        let q = serde_json::to_string(s).unwrap_or_default();
        q.get(1..q.len().saturating_sub(1))
            .unwrap_or_default()
            .to_string()
    };
    let forms = [v.to_string(), json(v), json(&debug), debug];
    let mut held = HELD.write().unwrap_or_else(|e| e.into_inner());
    for f in forms {
        if !held.contains(&f) {
            held.push(f);
        }
    }
}

/// A URL written in a config that may carry a credential (a webhook key in its path, a
/// token in its query, userinfo): read as a plain string, but `Debug` and `Display` show
/// only its scheme, host and port, and [`SecretUrl::expose`] is for the one place that
/// sends to it. [`hold_url`] makes its tokens scrubbed from whatever else prints them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Holds its tokens (see [`hold_url`]).
    pub fn hold(&self) {
        hold_url(&self.0)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", redact_url(&self.0))
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl schemars::JsonSchema for SecretUrl {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Url".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(g)
    }
}

/// Holds what a URL can carry as a credential: the whole URL, its userinfo, every query
/// value, and every path segment that looks like a token (8 characters or more, with a
/// digit, or upper and lower case: Slack's `T…/B…/…`, a chat bot's `bot123:ABC…`, a
/// webhook's key). [`scrub`] then removes them from whatever prints them.
pub fn hold_url(url: &str) {
    remember(url);
    let Ok(u) = reqwest::Url::parse(url) else {
        return;
    };
    if let Some(p) = u.password() {
        remember(p);
    }
    if !u.username().is_empty() {
        remember(u.username());
    }
    for (_, v) in u.query_pairs() {
        remember(&v);
    }
    if let Some(q) = u.query() {
        remember(q);
    }
    for seg in u.path_segments().into_iter().flatten() {
        if looks_like_a_token(seg) {
            remember(seg);
        }
    }
    // The URL as libraries print it (normalised).
    remember(u.as_str());
}

fn looks_like_a_token(s: &str) -> bool {
    s.len() >= 8
        && (s.bytes().any(|b| b.is_ascii_digit())
            || (s.bytes().any(|b| b.is_ascii_uppercase())
                && s.bytes().any(|b| b.is_ascii_lowercase())))
}

/// A URL as messages show it: scheme, host and port only (`https://hooks.slack.com/…`).
/// What follows the host is where services put their tokens.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or_default();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path().len() > 1 || u.query().is_some() {
                "/…"
            } else {
                ""
            };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "<a URL>".to_string(),
    }
}

/// `text` without any secret this process holds (for logs, whatever wrote them).
pub fn scrub(text: &str) -> std::borrow::Cow<'_, str> {
    let held = HELD.read().unwrap_or_else(|e| e.into_inner());
    if !held.iter().any(|s| text.contains(s.as_str())) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in held.iter() {
        out = out.replace(s.as_str(), "<redacted>");
    }
    std::borrow::Cow::Owned(out)
}

/// Replaces every occurrence of each secret in `text` (for tool output that is shown or
/// stored).
pub fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.0.len() >= 4 {
            out = out.replace(&s.0, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("hunter22");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(
            redact("password hunter22 failed", &[&s]),
            "password <redacted> failed"
        );
    }

    #[test]
    fn scrub_removes_every_held_secret_in_every_printed_form() {
        let s = Secret::new("pa\"ss\\word-scrub-test");
        let line = format!(
            "raw {} debug {:?} json {}",
            s.expose(),
            s.expose(),
            serde_json::json!({ "k": format!("{:?}", s.expose()) })
        );
        let clean = scrub(&line);
        assert!(!clean.contains("word-scrub-test"), "{clean}");
        assert_eq!(scrub("nothing to hide"), "nothing to hide");
    }

    #[test]
    fn urls_are_shown_without_what_follows_the_host_and_their_tokens_are_held() {
        let url = "https://user:pw-Secret9@chat.example:8443/bot4711:AAH-xYz_TokEn/send?key=q9-Query-Key&x=1";
        hold_url(url);
        assert_eq!(redact_url(url), "https://chat.example:8443/…");
        assert_eq!(redact_url("http://am:9093"), "http://am:9093");
        let line = format!("error sending request for url ({url}): refused; token bot4711:AAH-xYz_TokEn, key q9-Query-Key");
        let clean = scrub(&line);
        for leak in ["bot4711", "q9-Query-Key", "pw-Secret9", "TokEn"] {
            assert!(!clean.contains(leak), "{leak} in {clean}");
        }
        // Words of a path are no tokens.
        assert!(!looks_like_a_token("services") && !looks_like_a_token("webhooks"));
        assert!(looks_like_a_token("B0002XYZ") && looks_like_a_token("slacksecretDDDD"));
    }

    #[test]
    fn an_inline_secret_is_refused_without_its_value() {
        #[derive(Debug, serde::Deserialize)]
        struct Cfg {
            #[allow(dead_code)]
            password: SecretRef,
        }
        for text in [
            "password = \"hunter2-inline\"",
            "password = 4711123",
            "password = [\"hunter2-inline\"]",
        ] {
            // The message: toml's Display adds the line itself, which callers never print.
            let e = toml::from_str::<Cfg>(text)
                .unwrap_err()
                .message()
                .to_string();
            assert!(e.contains("written inline"), "{e}");
            assert!(!e.contains("hunter2") && !e.contains("4711123"), "{e}");
        }
        let ok: Cfg = toml::from_str("password = { env = \"PW\" }").unwrap();
        assert_eq!(ok.password.env.as_deref(), Some("PW"));
        let e = toml::from_str::<Cfg>("password = { env = \"PW\", nope = 1 }").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn file_secret_strips_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "abc\n").unwrap();
        let src = SecretSource::File { file: "pw".into() };
        assert_eq!(src.load(dir.path()).unwrap().expose(), "abc");
    }

    #[test]
    fn missing_env_names_the_variable() {
        let src = SecretSource::Env {
            env: "FIREDRILL_TEST_SURELY_UNSET".into(),
        };
        let e = src.load(Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("FIREDRILL_TEST_SURELY_UNSET"), "{e}");
    }

    #[test]
    fn secret_ref_needs_exactly_one_source() {
        assert!(SecretRef::default().validate().is_err());
        let both = SecretRef {
            env: Some("A".into()),
            file: Some("/x".into()),
        };
        assert!(both.validate().unwrap_err().contains("not both"));
        let bad = SecretRef {
            env: Some("my-pass".into()),
            file: None,
        };
        assert!(bad.validate().is_err());
    }
}
