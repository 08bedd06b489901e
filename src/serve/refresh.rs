//! `POST /refresh`: a Git host's push webhook asks the mirror to sync now rather than at its
//! next tick. The request only wakes the mirror thread ([`Mirror::request_sync`]) and answers
//! 202: a sync can take longer than a Git host waits, and it must never run on a request
//! thread.
//!
//! Authentication is a shared token read from `server.refreshTokenFile` (read on every
//! request, so a rotated Secret takes effect without a restart), sent as
//! `Authorization: Bearer <token>`, as GitLab's `X-Gitlab-Token: <token>`, or as GitHub's
//! `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body keyed by the token>`. Comparisons
//! take constant time; the token and the headers carrying it never reach a log.
//!
//! [`Mirror::request_sync`]: crate::provenance::mirror::Mirror::request_sync

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AppState, json as answer};

/// Reads the shared token: the file's contents without surrounding whitespace (a Secret
/// written with a trailing newline works). An unreadable or empty file is an error naming it.
pub fn read_token(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let token = bytes.trim_ascii();
    if token.is_empty() {
        return Err(format!(
            "{}: the refresh token file is empty",
            path.display()
        ));
    }
    Ok(token.to_vec())
}

/// `POST /refresh`.
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(mirror) = state.mirror.clone() else {
        return answer(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "provenance is off (no repository.url): there is no Git mirror to refresh"}),
        );
    };
    let Some(path) = state.config.server.refresh_token_file.clone() else {
        return answer(
            StatusCode::FORBIDDEN,
            serde_json::json!({"error": "POST /refresh is turned off: set server.refreshTokenFile to a file holding a shared token"}),
        );
    };
    let token = match tokio::task::spawn_blocking(move || read_token(&path)).await {
        Ok(Ok(token)) => token,
        failed => {
            let error = match failed {
                Ok(Err(e)) => e,
                Err(e) => e.to_string(),
                Ok(Ok(_)) => unreachable!("matched above"),
            };
            metrics::counter!("gitgate_internal_errors_total").increment(1);
            tracing::error!(error = %error, "POST /refresh: the token file cannot be used");
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "the refresh token cannot be read on the server"}),
            );
        }
    };
    match authenticate(&token, &headers, &body) {
        Ok(via) => {
            mirror.request_sync();
            metrics::counter!("gitgate_refresh_requests_total", "result" => "accepted")
                .increment(1);
            tracing::info!(via, "POST /refresh: a sync of the Git mirror was requested");
            answer(
                StatusCode::ACCEPTED,
                serde_json::json!({"refresh": "requested"}),
            )
        }
        Err(why) => {
            metrics::counter!("gitgate_refresh_requests_total", "result" => "refused").increment(1);
            tracing::warn!(reason = why, "POST /refresh refused");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(serde_json::json!({"error": why})),
            )
                .into_response()
        }
    }
}

/// Checks the request's credentials against `token`: returns how they came, or why they are
/// refused (in words that never hold the token or what was sent).
fn authenticate(
    token: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<&'static str, &'static str> {
    if let Some(signature) = headers.get("x-hub-signature-256") {
        let mac = signature
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("sha256="))
            .and_then(|hex| hex::decode(hex).ok())
            .ok_or("X-Hub-Signature-256 is not sha256=<hex>")?;
        let mut expected =
            Hmac::<Sha256>::new_from_slice(token).map_err(|_| "the token cannot key an HMAC")?;
        expected.update(body);
        // verify_slice compares in constant time.
        return expected
            .verify_slice(&mac)
            .map(|_| "x-hub-signature-256")
            .map_err(|_| "X-Hub-Signature-256 does not match the body and the shared token");
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let given = value
            .as_bytes()
            .strip_prefix(b"Bearer ")
            .ok_or("the Authorization header is not `Bearer <token>`")?;
        return same(given.trim_ascii(), token)
            .then_some("bearer")
            .ok_or("the bearer token is not the shared token");
    }
    if let Some(value) = headers.get("x-gitlab-token") {
        return same(value.as_bytes().trim_ascii(), token)
            .then_some("x-gitlab-token")
            .ok_or("X-Gitlab-Token is not the shared token");
    }
    Err("no credentials: send Authorization: Bearer <token>, X-Gitlab-Token or X-Hub-Signature-256")
}

/// Equality in constant time, of the length too: the digests are compared, not the bytes.
fn same(given: &[u8], token: &[u8]) -> bool {
    Sha256::digest(given).ct_eq(&Sha256::digest(token)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_and_refusals_hold_no_secret() {
        let token = b"s3cret-token";
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut h = HeaderMap::new();
        assert!(authenticate(token, &h, body).is_err());
        h.insert(
            header::AUTHORIZATION,
            "Bearer s3cret-token".parse().unwrap(),
        );
        assert_eq!(authenticate(token, &h, body), Ok("bearer"));
        h.insert(
            header::AUTHORIZATION,
            "Bearer s3cret-tokem".parse().unwrap(),
        );
        let why = authenticate(token, &h, body).unwrap_err();
        assert!(!why.contains("s3cret"), "{why}");
        h.insert(header::AUTHORIZATION, "Basic czNjcmV0".parse().unwrap());
        assert!(authenticate(token, &h, body).is_err());

        let mut mac = Hmac::<Sha256>::new_from_slice(token).unwrap();
        mac.update(body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature-256", signature.parse().unwrap());
        assert_eq!(authenticate(token, &h, body), Ok("x-hub-signature-256"));
        assert!(
            authenticate(token, &h, b"{}").is_err(),
            "another body does not match"
        );

        let mut h = HeaderMap::new();
        h.insert("x-gitlab-token", "s3cret-token".parse().unwrap());
        assert_eq!(authenticate(token, &h, body), Ok("x-gitlab-token"));
    }

    #[test]
    fn an_empty_token_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "\n").unwrap();
        let e = read_token(&path).unwrap_err();
        assert!(e.contains("token") && e.contains("empty"), "{e}");
        std::fs::write(&path, "abc\n").unwrap();
        assert_eq!(read_token(&path).unwrap(), b"abc");
    }
}
