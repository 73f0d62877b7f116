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
                Err(e) => not_json(&e),
            },
        ));
    }
    // Structs are read from JSON objects only, never from an array of their fields.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value =
        serde_path_to_error::deserialize(crate::strict::Strict(&mut de)).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let what = if inner.is_syntax() || inner.is_eof() {
                not_json(&inner)
            } else {
                for_people(&path, &without_position(&inner))
            };
            BodyError::Malformed(what)
        })?;
    // The whole body is one JSON value: bytes after it are refused too.
    de.end().map_err(|e| BodyError::Malformed(not_json(&e)))?;
    Ok(value)
}

/// A syntax error, with where it is.
fn not_json(error: &serde_json::Error) -> String {
    format!(
        "the request body is not valid JSON: {} (line {}, column {})",
        without_position(error),
        error.line(),
        error.column()
    )
}

/// serde_json's message without its " at line L column C" suffix.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// A serde message rephrased for the person who sent the body: the field as the dialect
/// spells it (`path`, from serde's own names), what was expected and what came, without Rust
/// type names. Messages written by Waybill's own deserializers pass through unchanged.
fn for_people(path: &str, message: &str) -> String {
    let field = |name: &str| {
        if path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let at = if path == "." {
        "the request body".to_owned()
    } else {
        path.to_owned()
    };
    if let Some(name) = between(message, "missing field `", "`") {
        return format!("{} is required", field(name));
    }
    if let Some(name) = between(message, "duplicate field `", "`") {
        return format!("{} appears more than once", field(name));
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, expected)) = rest.split_once('`')
    {
        let expected = expected
            .trim_start_matches(", expected ")
            .replace("one of ", "")
            .replace('`', "");
        return format!(
            "{} is not a known field (expected: {expected})",
            field(name)
        );
    }
    if let Some(rest) = message.strip_prefix("unknown variant `")
        && let Some((value, expected)) = rest.split_once('`')
    {
        let expected = expected
            .trim_start_matches(", expected ")
            .replace("one of ", "")
            .replace('`', "");
        return format!("{at}: \"{value}\" is not one of the accepted values ({expected})");
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((got, expected)) = rest.rsplit_once(", expected ")
        {
            return format!(
                "{at} must be {}; got {}",
                expected_for_people(expected),
                got_for_people(got)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((n, expected)) = rest.split_once(", expected ")
    {
        return format!("{at} must be {expected}; got {n} item(s)");
    }
    format!("{at}: {message}")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(start)?;
    rest.split_once(end).map(|(inside, _)| inside)
}

/// What serde says a visitor expected, in words: integer types become ranges, containers
/// JSON's names.
fn expected_for_people(expected: &str) -> String {
    let range = |min: &str, max: &str| format!("an integer from {min} to {max}");
    match expected {
        "i64" | "i128" | "isize" => "an integer".to_owned(),
        "i32" => range("-2147483648", "2147483647"),
        "i16" => range("-32768", "32767"),
        "i8" => range("-128", "127"),
        "u64" | "u128" | "usize" => range("0", "18446744073709551615"),
        "u32" => range("0", "4294967295"),
        "u16" => range("0", "65535"),
        "u8" => range("0", "255"),
        "f64" | "f32" => "a number".to_owned(),
        "a borrowed string" | "a string" | "a character" | "a char" => "a string".to_owned(),
        "a sequence" | "a tuple" => "an array".to_owned(),
        "a map" => "an object".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "unit" => "null".to_owned(),
        other if other.starts_with("struct ") || other.starts_with("a struct") => {
            "an object".to_owned()
        }
        other if other.starts_with("tuple struct") || other.starts_with("an array") => {
            "an array".to_owned()
        }
        other => other.replace('`', ""),
    }
}

/// What serde says it got, in JSON's words.
fn got_for_people(got: &str) -> String {
    if let Some(value) = got.strip_prefix("string ") {
        return format!("the string {value}");
    }
    for prefix in ["integer `", "floating point `"] {
        if let Some(value) = got.strip_prefix(prefix) {
            return format!("the number {}", value.trim_end_matches('`'));
        }
    }
    if let Some(value) = got.strip_prefix("boolean `") {
        return value.trim_end_matches('`').to_owned();
    }
    match got {
        "map" => "an object".to_owned(),
        "sequence" => "an array".to_owned(),
        "unit value" | "null" => "null".to_owned(),
        other => other.replace('`', ""),
    }
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
        assert_eq!(
            err.message(),
            r#"items[0].quantity must be an integer; got the string "x""#
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    #[serde(rename_all = "camelCase")]
    struct Typed {
        order_id: i64,
        count: Option<u32>,
        #[serde(default)]
        flag: bool,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default)]
        tags: Vec<String>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        InTransit,
        Delivered,
    }

    /// Every message names the field as sent, says what was expected and what came, and has
    /// no Rust type names or parser positions.
    #[test]
    fn messages_are_for_people() {
        let cases = [
            (r#"{}"#, "orderId is required"),
            (
                r#"{"orderId":"12"}"#,
                r#"orderId must be an integer; got the string "12""#,
            ),
            (
                r#"{"orderId":1.5}"#,
                "orderId must be an integer; got the number 1.5",
            ),
            (
                r#"{"orderId":1,"count":-1}"#,
                "count must be an integer from 0 to 4294967295; got the number -1",
            ),
            (
                r#"{"orderId":1,"flag":"yes"}"#,
                r#"flag must be true or false; got the string "yes""#,
            ),
            (
                r#"{"orderId":1,"kind":"lost"}"#,
                r#"kind: "lost" is not one of the accepted values (in_transit or delivered)"#,
            ),
            (
                r#"{"orderId":1,"tags":{}}"#,
                "tags must be an array; got an object",
            ),
            (
                r#"{"orderId":1,"tags":[3]}"#,
                "tags[0] must be a string; got the number 3",
            ),
            (
                r#"{"orderId":1,"orderId":2}"#,
                "orderId appears more than once",
            ),
        ];
        for (body, want) in cases {
            let got = parse_json::<Typed>(body.as_bytes()).unwrap_err().message();
            assert_eq!(got, want, "{body}");
            for internal in ["i64", "u32", "line 1", "column", "struct", "`"] {
                assert!(!got.contains(internal), "{got}");
            }
        }
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
        for trailing in [&br#"{"items": []} x"#[..], br#"{"items": []}{"items": []}"#] {
            assert!(
                parse_json::<Body>(trailing)
                    .unwrap_err()
                    .message()
                    .contains("not valid JSON"),
                "{}",
                String::from_utf8_lossy(trailing)
            );
        }
        // An array of a struct's fields is not the struct.
        assert_eq!(
            parse_json::<Body>(br#"{"items": [[1]]}"#)
                .unwrap_err()
                .message(),
            "items[0] must be an object; got an array"
        );
        assert!(
            parse_json::<Body>(b"{}")
                .unwrap_err()
                .message()
                .contains("items is required")
        );
    }
}
