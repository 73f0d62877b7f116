//! Request extractors whose failures are answered in the calling dialect's own error format,
//! never with axum's plain-text rejections.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Over [`crate::MAX_BODY_BYTES`].
    TooLarge,
    /// Not JSON, or JSON of the wrong shape. The message names the field.
    Malformed(String),
}

impl BodyError {
    pub fn message(&self) -> String {
        match self {
            BodyError::TooLarge => format!(
                "the request body is larger than the {} byte limit",
                crate::MAX_BODY_BYTES
            ),
            BodyError::Malformed(m) => m.clone(),
        }
    }
}

/// A JSON body of type `T`; failures become the dialect error `E`.
pub struct JsonBody<T, E>(pub T, pub PhantomData<E>);

impl<T, E, S> FromRequest<S> for JsonBody<T, E>
where
    T: DeserializeOwned,
    E: From<BodyError> + IntoResponse,
    S: Send + Sync,
{
    type Rejection = E;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                E::from(BodyError::TooLarge)
            } else {
                E::from(BodyError::Malformed(format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                )))
            }
        })?;
        parse_json(&bytes)
            .map(|v| JsonBody(v, PhantomData))
            .map_err(E::from)
    }
}

/// Parses JSON, naming the offending field in the error (`lineItems[0].quantity: ...`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Malformed(
            "the request body is empty; a JSON object is required".into(),
        ));
    }
    // Every request body is a JSON object. (Derived deserializers would otherwise also take a
    // struct from an array of its fields in order, so `[null, null]` could pass as a body.)
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BodyError::Malformed(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => "invalid request body: expected a JSON object".into(),
                Err(e) => format!("the request body is not valid JSON ({e})"),
            },
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let what = if inner.is_syntax() || inner.is_eof() {
            format!("the request body is not valid JSON ({inner})")
        } else if path == "." {
            format!("invalid request body: {inner}")
        } else {
            format!("{path}: {inner}")
        };
        BodyError::Malformed(what)
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        quantity: i64,
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        let err = parse_json::<Body>(br#"{"items":[{"quantity":"x"}]}"#).unwrap_err();
        assert!(
            err.message().starts_with("items[0].quantity: invalid type"),
            "{err:?}"
        );
    }

    #[test]
    fn reports_syntax_and_empty_bodies() {
        assert!(
            parse_json::<Body>(b"{")
                .unwrap_err()
                .message()
                .contains("not valid JSON")
        );
        assert!(
            parse_json::<Body>(b"  ")
                .unwrap_err()
                .message()
                .contains("empty")
        );
        assert!(
            parse_json::<Body>(br#"[[{"quantity": 1}]]"#)
                .unwrap_err()
                .message()
                .contains("expected a JSON object")
        );
        assert!(
            parse_json::<Body>(b"[1,")
                .unwrap_err()
                .message()
                .contains("not valid JSON")
        );
        assert!(
            parse_json::<Body>(b"{}")
                .unwrap_err()
                .message()
                .contains("missing field `items`")
        );
    }
}
