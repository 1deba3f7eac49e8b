//! Single sign-on for the dashboard through an OpenID Connect provider: the
//! authorization code flow with PKCE (S256). `/oidc/login` sends the browser to the
//! provider with a random `state`, `nonce` and code challenge; the verifier, the nonce and
//! where to go after are kept in the catalog under the state's hash, so the callback may
//! land on any daemon sharing it, and only once. `/oidc/callback` exchanges the code,
//! checks the ID token (RS256 against the provider's published keys; issuer, audience,
//! expiry, nonce) and maps a claim (`groups` by default) to a role; a user none of whose
//! values maps to a role is refused. The session that follows is the dashboard's own.

use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::{Actor, ActorKind, Principal, Role};
use crate::catalog::Catalog;
use crate::config::OidcSettings;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// How long a login may take between the provider's page and the callback.
const LOGIN_SECS: i64 = 600;
/// How long the provider's endpoints and keys are kept before being read again.
const METADATA_TTL: Duration = Duration::from_secs(900);
/// Clock difference allowed with the provider.
const SKEW_SECS: i64 = 60;

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b64url(&b)
}

/// What the catalog keeps of a login in progress.
#[derive(Debug, Serialize, Deserialize)]
struct LoginState {
    verifier: String,
    nonce: String,
    next: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Clone)]
struct Provider {
    discovery: Discovery,
    keys: Vec<Jwk>,
    read_at: Instant,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Why a single sign-on login was refused: shown on the login page and kept in the audit
/// trail.
#[derive(Debug)]
pub struct Refused {
    /// Who, when the ID token said (a user without a role).
    pub who: Option<String>,
    pub why: String,
}

impl From<Error> for Refused {
    fn from(e: Error) -> Self {
        Refused {
            who: None,
            why: e.to_string(),
        }
    }
}

fn refused(why: impl Into<String>) -> Refused {
    Refused {
        who: None,
        why: why.into(),
    }
}

pub struct Oidc {
    settings: OidcSettings,
    client_secret: Option<Secret>,
    http: reqwest::Client,
    provider: tokio::sync::Mutex<Option<Provider>>,
}

impl Oidc {
    pub fn new(settings: &OidcSettings, base_dir: &std::path::Path) -> Result<Self> {
        let client_secret = settings
            .client_secret
            .as_ref()
            .map(|s| s.load(base_dir))
            .transpose()
            .map_err(|e| e.context("client_secret"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))?;
        Ok(Oidc {
            settings: settings.clone(),
            client_secret,
            http,
            provider: tokio::sync::Mutex::new(None),
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str, what: &str) -> Result<T> {
        let res = self.http.get(url).send().await.map_err(|e| {
            Error::infra(format!(
                "the single sign-on provider's {what} ({url}) could not be read: {e}"
            ))
            .with_hint("check [daemon.oidc] issuer and that this daemon reaches the provider")
        })?;
        if !res.status().is_success() {
            return Err(Error::infra(format!(
                "the single sign-on provider's {what} ({url}) answered {}",
                res.status()
            )));
        }
        res.json::<T>().await.map_err(|e| {
            Error::infra(format!(
                "the single sign-on provider's {what} ({url}) is not what OpenID Connect says: {e}"
            ))
        })
    }

    /// The provider's endpoints and keys, read again when old or when `refresh`.
    async fn provider(&self, refresh: bool) -> Result<Provider> {
        let mut cached = self.provider.lock().await;
        if let Some(p) = cached.as_ref() {
            if !refresh && p.read_at.elapsed() < METADATA_TTL {
                return Ok(p.clone());
            }
        }
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer);
        let discovery: Discovery = self.get_json(&url, "discovery document").await?;
        if discovery.issuer.trim_end_matches('/') != self.settings.issuer {
            return Err(Error::config(format!(
                "the provider at {url} calls itself {}, not {}",
                discovery.issuer, self.settings.issuer
            ))
            .with_hint("set [daemon.oidc] issuer to exactly what the provider publishes"));
        }
        let jwks: Jwks = self.get_json(&discovery.jwks_uri, "signing keys").await?;
        let p = Provider {
            discovery,
            keys: jwks.keys,
            read_at: Instant::now(),
        };
        *cached = Some(p.clone());
        Ok(p)
    }

    /// Starts a login: keeps its state in the catalog and returns where to send the
    /// browser, and the state (the browser keeps its hash in a cookie: a callback is
    /// completed only in the browser that started the login).
    pub async fn begin(&self, catalog: &dyn Catalog, next: &str) -> Result<(String, String)> {
        let p = self.provider(false).await?;
        let state = random(32);
        let nonce = random(32);
        let verifier = random(48);
        let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
        let kept = LoginState {
            verifier,
            nonce: nonce.clone(),
            next: next.to_string(),
        };
        catalog
            .put_login_state(
                &state_hash(&state),
                &serde_json::to_string(&kept).expect("a login state serializes"),
                jiff::Timestamp::now().as_second() + LOGIN_SECS,
            )
            .await?;
        let scope = self.settings.scopes.join(" ");
        let url = reqwest::Url::parse_with_params(
            &p.discovery.authorization_endpoint,
            &[
                ("response_type", "code"),
                ("client_id", self.settings.client_id.as_str()),
                ("redirect_uri", self.settings.redirect_url.as_str()),
                ("scope", scope.as_str()),
                ("state", state.as_str()),
                ("nonce", nonce.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .map_err(|e| {
            Error::infra(format!(
                "the provider's authorization endpoint `{}` is not a URL: {e}",
                p.discovery.authorization_endpoint
            ))
        })?;
        Ok((url.to_string(), state))
    }

    /// Ends a login at the callback: the principal, and where to go.
    pub async fn finish(
        &self,
        catalog: &dyn Catalog,
        code: &str,
        state: &str,
    ) -> std::result::Result<(Principal, String), Refused> {
        let kept = catalog
            .take_login_state(&state_hash(state))
            .await?
            .ok_or_else(|| {
                refused("this login is unknown or expired (or was used already); start again")
            })?;
        let kept: LoginState = serde_json::from_str(&kept)
            .map_err(|_| refused("this login's state does not read; start again"))?;
        let p = self.provider(false).await?;
        let mut req = self.http.post(&p.discovery.token_endpoint).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("code_verifier", kept.verifier.as_str()),
            ("client_id", self.settings.client_id.as_str()),
        ]);
        if let Some(secret) = &self.client_secret {
            // RFC 6749 2.3.1: each form-urlencoded before Basic.
            let enc = |s: &str| {
                reqwest::Url::parse_with_params("x:", &[("v", s)])
                    .ok()
                    .and_then(|u| u.query().map(|q| q[2..].to_string()))
                    .unwrap_or_default()
            };
            req = req.basic_auth(enc(&self.settings.client_id), Some(enc(secret.expose())));
        }
        let res = req.send().await.map_err(|e| {
            refused(format!(
                "the provider's token endpoint could not be reached: {e}"
            ))
        })?;
        let status = res.status();
        let body: TokenResponse = res
            .json()
            .await
            .map_err(|e| refused(format!("the provider's token answer does not read: {e}")))?;
        let Some(id_token) = body.id_token.filter(|_| status.is_success()) else {
            return Err(refused(format!(
                "the provider refused the code ({status}): {} {}",
                body.error.unwrap_or_default(),
                body.error_description.unwrap_or_default()
            )));
        };
        let claims = self.verify(&id_token, &p, &kept.nonce).await?;
        let principal = self.principal(&claims)?;
        Ok((principal, kept.next))
    }

    /// Checks the ID token's signature and claims; returns its claims.
    async fn verify(
        &self,
        token: &str,
        p: &Provider,
        nonce: &str,
    ) -> std::result::Result<serde_json::Map<String, serde_json::Value>, Refused> {
        let parts: Vec<&str> = token.split('.').collect();
        let [h, c, s] = parts[..] else {
            return Err(refused("the ID token is not a signed JWT"));
        };
        let header: serde_json::Value = b64url_decode(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| refused("the ID token's header does not read"))?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("RS256") {
            return Err(refused(format!(
                "the ID token is signed with {}, not RS256",
                header.get("alg").cloned().unwrap_or_default()
            )));
        }
        let kid = header.get("kid").and_then(|k| k.as_str());
        let sig =
            b64url_decode(s).ok_or_else(|| refused("the ID token's signature does not read"))?;
        let message = format!("{h}.{c}");
        let mut verified = verify_rs256(&p.keys, kid, message.as_bytes(), &sig);
        if verified.is_none() {
            // A key the provider rotated in since it was read.
            let fresh = self.provider(true).await?;
            verified = verify_rs256(&fresh.keys, kid, message.as_bytes(), &sig);
        }
        match verified {
            Some(true) => {}
            Some(false) => return Err(refused("the ID token's signature is not the provider's")),
            None => {
                return Err(refused(format!(
                    "the provider publishes no RSA key {}",
                    kid.unwrap_or("(no kid)")
                )))
            }
        }
        let claims: serde_json::Map<String, serde_json::Value> = b64url_decode(c)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| refused("the ID token's claims do not read"))?;
        let str_claim = |k: &str| claims.get(k).and_then(|v| v.as_str());
        if str_claim("iss").map(|i| i.trim_end_matches('/')) != Some(self.settings.issuer.as_str())
        {
            return Err(refused(format!(
                "the ID token was issued by {}, not {}",
                str_claim("iss").unwrap_or("nobody"),
                self.settings.issuer
            )));
        }
        let client = self.settings.client_id.as_str();
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => vec![a.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&client) {
            return Err(refused(format!(
                "the ID token is for {}, not for this client ({client}): wrong audience",
                audiences.join(", ")
            )));
        }
        if audiences.len() > 1 && str_claim("azp").is_some_and(|a| a != client) {
            return Err(refused("the ID token was issued to another party (azp)"));
        }
        let now = jiff::Timestamp::now().as_second();
        let exp = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
        if exp + SKEW_SECS < now {
            return Err(refused(format!("the ID token expired {} s ago", now - exp)));
        }
        if claims.get("iat").and_then(|v| v.as_i64()).unwrap_or(0) > now + SKEW_SECS {
            return Err(refused(
                "the ID token was issued in the future (check the clocks)",
            ));
        }
        let given = str_claim("nonce").unwrap_or("");
        if !crate::access::constant_time_eq(given.as_bytes(), nonce.as_bytes()) {
            return Err(refused(
                "the ID token's nonce is not this login's (a replayed token?)",
            ));
        }
        Ok(claims)
    }

    /// The user's name and role from the claims; refused without a mapped role.
    fn principal(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> std::result::Result<Principal, Refused> {
        let s = &self.settings;
        let name = s
            .name_claim
            .iter()
            .map(String::as_str)
            .chain(["email", "preferred_username", "sub"])
            // An address the provider did not verify names nobody in the audit trail.
            .filter(|k| {
                *k != "email"
                    || claims.get("email_verified").and_then(|v| v.as_bool()) != Some(false)
            })
            .find_map(|k| claims.get(k).and_then(|v| v.as_str()))
            .unwrap_or("unknown")
            .to_string();
        let values: Vec<String> = match claims.get(&s.role_claim) {
            Some(serde_json::Value::String(v)) => vec![v.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let role: Option<Role> = values.iter().filter_map(|v| s.roles.get(v).copied()).max();
        let Some(role) = role else {
            return Err(Refused {
                who: Some(name.clone()),
                why: format!(
                    "{name} has no firedrill role: none of its {} ({}) is mapped in [daemon.oidc] roles",
                    s.role_claim,
                    if values.is_empty() { "none".to_string() } else { values.join(", ") }
                ),
            });
        };
        Ok(Principal {
            actor: Actor::new(ActorKind::Sso, name),
            role,
            drills: None,
        })
    }

    /// What sessions opened by single sign-on are tied to: a change of provider or client
    /// ends them.
    pub fn session_tag_input(&self) -> String {
        // A change of the role mapping ends them too: no session keeps a role the
        // mapping no longer gives.
        let roles: Vec<String> = self
            .settings
            .roles
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "sso {} {} {} {}",
            self.settings.issuer,
            self.settings.client_id,
            self.settings.role_claim,
            roles.join(",")
        )
    }
}

/// The catalog keys a login state by the hash of its `state`: a copy of the catalog
/// cannot complete anyone's login.
pub fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// `Some(valid)` with the RSA key named `kid` (or the only one, without a kid); `None`
/// when there is no such key.
fn verify_rs256(keys: &[Jwk], kid: Option<&str>, message: &[u8], sig: &[u8]) -> Option<bool> {
    let rsa: Vec<&Jwk> = keys
        .iter()
        .filter(|k| k.kty == "RSA" && k.use_.as_deref().is_none_or(|u| u == "sig"))
        .collect();
    let key = match kid {
        Some(kid) => rsa.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None if rsa.len() == 1 => rsa.first(),
        None => None,
    }?;
    let n = b64url_decode(key.n.as_deref()?)?;
    let e = b64url_decode(key.e.as_deref()?)?;
    let public = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
    Some(
        public
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
            .is_ok(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_values_are_url_safe_and_long_enough() {
        let v = random(48);
        assert_eq!(v.len(), 64);
        assert!(v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        // RFC 7636 appendix B's example.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            b64url(&Sha256::digest(verifier.as_bytes())),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn no_key_is_no_verdict() {
        assert_eq!(verify_rs256(&[], Some("k"), b"m", b"s"), None);
    }
}
