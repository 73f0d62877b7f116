//! Who is calling: API secrets presented as `Authorization: Bearer <secret>`.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use waybill_store::{Store, StoreError};

/// Why a request is not authenticated.
#[derive(Debug)]
pub enum AuthError {
    /// No usable `Authorization` header.
    Missing,
    /// A secret that is not a live key.
    Invalid,
    /// The database could not be asked.
    Store(StoreError),
}

impl AuthError {
    pub fn message(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing API secret: send it as 'Authorization: Bearer <secret>'",
            AuthError::Invalid => "invalid API secret",
            AuthError::Store(_) => "authentication is unavailable, try again shortly",
        }
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The store whose live key the request presents.
pub async fn authenticate(store: &dyn Store, headers: &HeaderMap) -> Result<String, AuthError> {
    let token = bearer_token(headers).ok_or(AuthError::Missing)?;
    // Every secret Waybill issues has the same length and prefix; anything else cannot match,
    // so it is refused without a database round trip.
    if !token.starts_with(waybill_store::secrets::SECRET_PREFIX) || token.len() > 256 {
        return Err(AuthError::Invalid);
    }
    match store.authenticate(token).await {
        Ok(Some(store_id)) => Ok(store_id),
        Ok(None) => Err(AuthError::Invalid),
        Err(e) => Err(AuthError::Store(e)),
    }
}

/// Whether an authenticated store may act on the store named in a path.
#[derive(Debug)]
pub enum Access {
    Allowed,
    /// The path names another store that exists.
    Forbidden,
    /// The path names no store.
    UnknownStore,
}

pub async fn check_store_access(
    store: &dyn Store,
    authenticated: &str,
    requested: &str,
) -> Result<Access, StoreError> {
    if authenticated == requested {
        return Ok(Access::Allowed);
    }
    Ok(if store.store_exists(requested).await? {
        Access::Forbidden
    } else {
        Access::UnknownStore
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn parses_bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer  abc "));
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&h), None);
    }
}
