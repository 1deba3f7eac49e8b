//! age keys: the recipients artifacts are encrypted to, the identity that decrypts them
//! in the sandbox, and the check that the one opens what the others lock. A drill whose
//! identity matches none of its recipients could never restore what it backs up; that is
//! found before any dump, by `validate`, `doctor` and the run itself.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Parses recipients (already validated) and those of a recipients file.
pub fn load_recipients(
    inline: &[String],
    file: Option<&std::path::Path>,
) -> Result<Vec<age::x25519::Recipient>> {
    let mut out = Vec::new();
    for r in inline {
        out.push(
            age::x25519::Recipient::from_str(r)
                .map_err(|e| Error::config(format!("recipient {r}: {e}")))?,
        );
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "cannot read encryption.recipients_file {}: {e}",
                path.display()
            ))
            .with_hint("check the path; `firedrill keygen` prints a recipient to put there")
        })?;
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            out.push(age::x25519::Recipient::from_str(l).map_err(|e| {
                Error::config(format!(
                    "{} line {}: `{l}` is not an age recipient: {e}",
                    path.display(),
                    i + 1
                ))
            })?);
        }
    }
    if out.is_empty() {
        return Err(
            Error::config("no age recipients").with_hint("add recipients to encryption.recipients")
        );
    }
    Ok(out)
}

/// Generates an age X25519 identity; returns (identity file text, recipient).
pub fn generate_identity() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let created = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
    let text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    );
    (text, recipient)
}

/// The recipients (public keys) of the X25519 secret keys in an identity file's text.
pub fn identity_recipients(identity: &str) -> Vec<String> {
    identity
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .filter_map(|l| age::x25519::Identity::from_str(l).ok())
        .map(|id| id.to_public().to_string())
        .collect()
}

/// The identity must hold at least one age X25519 secret key, and one of them must
/// match one of `recipients` (when there are any to check against).
pub fn check_identity(identity: &Secret, recipients: &[String]) -> Result<()> {
    let keys = identity_recipients(identity.expose());
    if keys.is_empty() {
        return Err(Error::config(
            "encryption.identity does not contain an age secret key (AGE-SECRET-KEY-1…)",
        )
        .with_hint("point it at the identity file written by `firedrill keygen` or `age-keygen`"));
    }
    if !recipients.is_empty() && !keys.iter().any(|k| recipients.contains(k)) {
        return Err(Error::config(format!(
            "encryption.identity (public key {}) matches none of the recipients ({}): the drill could not decrypt what it backs up",
            keys.join(", "),
            recipients.join(", ")
        ))
        .with_hint("add the identity's public key to encryption.recipients (`age-keygen -y IDENTITY` prints it), or point encryption.identity at the key of one of the recipients"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_must_hold_a_key_of_one_of_the_recipients() {
        let (text, recipient) = generate_identity();
        let (_, other) = generate_identity();
        let id = Secret::new(text);
        assert_eq!(identity_recipients(id.expose()), vec![recipient.clone()]);
        assert!(check_identity(&id, &[other.clone(), recipient]).is_ok());
        assert!(check_identity(&id, &[]).is_ok());
        let e = check_identity(&id, &[other]).unwrap_err();
        assert!(e.message.contains("matches none of the recipients"), "{e}");
        assert!(check_identity(&Secret::new("age1abc"), &[]).is_err());
        assert!(check_identity(&Secret::new("# comment\nAGE-SECRET-KEY-1ABC"), &[]).is_err());
    }
}
