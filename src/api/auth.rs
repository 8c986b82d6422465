//! Bearer-key authentication: every route except `/health` passes through [`require_key`], which
//! resolves the key to its tenant or answers 401.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Caller;
use super::AppState;
use crate::store::keys::{KeyHash, MAX_KEY_LEN};

/// The key's public id, put on the response so that the request log can name it.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey(pub String);

/// Middleware: resolves `Authorization: Bearer <key>` to a [`Caller`] or answers 401.
pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let caller = match authenticate(&state, req.headers()).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let key_id = caller.key_id.clone();
    req.extensions_mut().insert(caller);
    let mut response = next.run(req).await;
    response.extensions_mut().insert(AuthenticatedKey(key_id));
    response
}

/// The presented key, if the header is a well-formed bearer credential.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_KEY_LEN).then_some(token)
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers).ok_or(ApiError::Unauthorized)?;
    let key = state.keys.find_key(&KeyHash::of(token)).await?.ok_or(ApiError::Unauthorized)?;
    Ok(Caller { tenant: key.tenant, key_id: key.id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_key_is_trimmed() {
        assert_eq!(bearer(&headers("Bearer bkr_abc")), Some("bkr_abc"));
        assert_eq!(bearer(&headers("bearer  bkr_abc ")), Some("bkr_abc"));
    }

    #[test]
    fn other_schemes_empty_and_oversized_keys_are_not_credentials() {
        assert_eq!(bearer(&headers("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer(&headers("Bearer")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&headers(&format!("Bearer {}", "k".repeat(MAX_KEY_LEN + 1)))), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
