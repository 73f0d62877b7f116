//! Who is calling: a store's API secret, presented as `Authorization: Bearer <secret>` or as
//! HTTP Basic with the store id as user name and the secret as password.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use base64::Engine;
use waybill_store::{Store, StoreError};

use crate::AppState;

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

/// The `(user, password)` of HTTP Basic credentials.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The store whose live key the request presents, as a bearer token or as Basic credentials
/// (whose user name must then be that store's id).
pub async fn authenticate(store: &dyn Store, headers: &HeaderMap) -> Result<String, AuthError> {
    if let Some((user, password)) = basic_credentials(headers) {
        let store_id = authenticate_secret(store, &password).await?;
        return if store_id == user {
            Ok(store_id)
        } else {
            Err(AuthError::Invalid)
        };
    }
    let token = bearer_token(headers).ok_or(AuthError::Missing)?;
    authenticate_secret(store, token).await
}

async fn authenticate_secret(store: &dyn Store, token: &str) -> Result<String, AuthError> {
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

/// The authenticated store of a request, with failures answered as the dialect error `E`.
pub struct Caller<E>(pub String, pub PhantomData<E>);

impl<E> FromRequestParts<AppState> for Caller<E>
where
    E: From<AuthError> + IntoResponse,
{
    type Rejection = E;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, E> {
        let store_id = authenticate(state.store.as_ref(), &parts.headers).await?;
        Ok(Caller(store_id, PhantomData))
    }
}

/// Whether an authenticated store may act on the store named in a path.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// The path names another store, or no store at all: the two are not told apart, and the
    /// answer does not depend on the database, so neither its content nor its timing tells a
    /// key holder which store ids exist.
    Forbidden,
}

pub fn check_store_access(authenticated: &str, requested: &str) -> Access {
    if authenticated == requested {
        Access::Allowed
    } else {
        Access::Forbidden
    }
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
        // "store:wb_sk_x"
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic c3RvcmU6d2Jfc2tfeA=="),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("store".to_owned(), "wb_sk_x".to_owned()))
        );
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_credentials(&h), None);
    }
}
