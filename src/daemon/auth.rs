//! Who may use the API and the dashboard: the daemon's bearer token, compared in
//! constant time. The dashboard's login sessions build on it (`dashboard.rs`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Daemon;

/// Compares in time independent of where the inputs differ.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Not `(a.len() ^ b.len()) as u8`: lengths 256 apart would truncate to equal, and the
    // token followed by 256 NULs (a form field can carry them) would match.
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The bearer token of an `Authorization` header (the scheme in any case, as RFC 9110
/// says), if it has one.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Refuses a request to the API without the daemon's token (when one is set).
pub(super) async fn bearer_auth(
    State(d): State<Arc<Daemon>>,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    if let Some(token) = d.token() {
        let given = bearer(&headers).unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", "Bearer")],
                "",
            )
                .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        let mut padded = b"abc".to_vec();
        padded.extend([0u8; 256]);
        assert!(!constant_time_eq(b"abc", &padded));
    }

    #[test]
    fn the_bearer_scheme_in_any_case() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "bearer s3cret".parse().unwrap());
        assert_eq!(bearer(&h), Some("s3cret"));
        h.insert("authorization", "BEARER s3cret".parse().unwrap());
        assert_eq!(bearer(&h), Some("s3cret"));
        h.insert("authorization", "Basic s3cret".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
