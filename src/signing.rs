//! ed25519 keys and report signatures: what `[evidence]` configures, what `firedrill
//! evidence keygen` writes, and the signature a report carries. Keys are PKCS#8 PEM (what
//! `openssl genpkey -algorithm ed25519` writes); public keys are 64 hex digits.

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const ALGORITHM: &str = "ed25519";

/// A report's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Signature {
    pub algorithm: String,
    /// The signer's public key, hex.
    pub public_key: String,
    /// The signature of the canonical JSON, hex.
    pub value: String,
}

/// Reads a PKCS#8 PEM ed25519 private key.
pub fn signing_key_from_pem(pem: &str, what: &str) -> Result<SigningKey> {
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
        Error::config(format!("{what} is not an ed25519 private key in PKCS#8 PEM: {e}"))
            .with_hint("write one with `firedrill evidence keygen --output FILE` or `openssl genpkey -algorithm ed25519`")
    })
}

/// Reads a public key: 64 hex digits.
pub fn verifying_key_from_hex(hex_key: &str, what: &str) -> Result<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            Error::config(format!(
                "{what} `{}` is not an ed25519 public key (64 hex digits)",
                hex_key.trim()
            ))
            .with_hint("use the public key `firedrill evidence keygen` printed")
        })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| Error::config(format!("{what} is not a valid ed25519 public key: {e}")))
}

/// A new key pair: the PKCS#8 PEM private key and the public key in hex.
pub fn generate() -> Result<(String, String)> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| Error::internal(format!("cannot encode the key: {e}")))?;
    Ok((pem.to_string(), hex::encode(key.verifying_key().as_bytes())))
}
