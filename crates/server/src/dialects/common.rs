//! Small pieces several dialects parse the same way.

use axum::http::StatusCode;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use waybill_core::{DomainError, Location, Money};

/// The HTTP status a domain refusal takes in dialects that use plain REST semantics: 400 for
/// invalid input (including over-fulfillment), 404 for unknown ids, 409 for duplicates.
pub fn status_for(e: &DomainError) -> StatusCode {
    match e {
        DomainError::Invalid(_)
        | DomainError::UnknownLineItem { .. }
        | DomainError::OverFulfillment { .. }
        | DomainError::OverReturn { .. } => StatusCode::BAD_REQUEST,
        DomainError::OrderNotFound(_)
        | DomainError::ReturnNotFound(_)
        | DomainError::FulfillmentNotFound(_)
        | DomainError::StoreNotFound(_) => StatusCode::NOT_FOUND,
        DomainError::DuplicateOrder(_)
        | DomainError::DuplicateFulfillment(_)
        | DomainError::DuplicateReturn(_)
        | DomainError::Conflict(_) => StatusCode::CONFLICT,
    }
}

/// A money amount as callers send it: a JSON number or a numeric string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Number(f64),
    Text(Money),
}

/// The largest amount accepted: 10^28, below what a decimal holds (about 7.9 × 10^28), and
/// the `maximum` the schema states.
const MAX_AMOUNT: f64 = 1e28;

impl Amount {
    pub fn into_money(self, field: &str) -> Result<Money, DomainError> {
        let money = match self {
            Amount::Number(n) if n > MAX_AMOUNT => {
                return Err(DomainError::invalid(format!(
                    "{field} must be at most 10^28; got {n}"
                )));
            }
            Amount::Number(n) => Money::from_f64(field, n)?,
            Amount::Text(m) => m,
        };
        if money.to_f64() > MAX_AMOUNT {
            return Err(DomainError::invalid(format!(
                "{field} must be at most 10^28; got {money}"
            )));
        }
        Ok(money)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative decimal amount (a number, or a string of digits with an optional fraction such as \"19.99\")")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                Ok(Amount::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount::Number(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                // Digits with an optional fraction, as the schema's pattern says: no sign, no
                // exponent, no separators, at most 28 digits on each side of the point.
                let plain = |digits: &str| {
                    (1..=28).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
                };
                let well_formed = match v.split_once('.') {
                    Some((whole, fraction)) => plain(whole) && plain(fraction),
                    None => plain(v),
                };
                if !well_formed {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
                }
                Money::parse("amount", v)
                    .map(Amount::Text)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            // A decimal holds 28 integer digits (Decimal's 96-bit mantissa); finer fractions
            // are rounded, never refused.
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0))
                    .maximum(Some(MAX_AMOUNT)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^[0-9]{1,28}(\.[0-9]{1,28})?$")),
            )
            .description(Some(
                "A non-negative decimal amount, as a number or a numeric string",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Amount {}

/// Turns an optional amount into money, naming `field` in errors.
pub fn money(field: &str, amount: Option<Amount>) -> Result<Option<Money>, DomainError> {
    amount.map(|a| a.into_money(field)).transpose()
}

/// A tracking location in the camelCase shape Redo uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationJson {
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
}

impl From<LocationJson> for Location {
    fn from(l: LocationJson) -> Location {
        Location {
            city: l.city,
            state: l.state,
            country: l.country,
            postal_code: l.postal_code,
        }
    }
}

impl From<&Location> for LocationJson {
    fn from(l: &Location) -> LocationJson {
        LocationJson {
            city: l.city.clone(),
            state: l.state.clone(),
            country: l.country.clone(),
            postal_code: l.postal_code.clone(),
        }
    }
}

/// A JSON integer as JSON Schema means it: any number without a fractional part, so `43.0`
/// is the integer 43. (serde reads `43.0` as a float and would refuse it for an `i64`.) Use with
/// `#[serde(deserialize_with = "common::integer")]`; ranges are the caller's to check.
pub fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    struct IntegerVisitor;
    impl Visitor<'_> for IntegerVisitor {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            // Exactly representable integers only: |v| < 2^63.
            if v.fract() == 0.0 && v.abs() < 9.223_372_036_854_775e18 {
                Ok(v as i64)
            } else {
                Err(E::invalid_type(de::Unexpected::Float(v), &self))
            }
        }
    }
    deserializer.deserialize_any(IntegerVisitor)
}

/// [`integer`] for an optional field (`null` or absent is `None`).
pub fn optional_integer<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "integer")] i64);
    Option::<Wrapped>::deserialize(deserializer).map(|w| w.map(|Wrapped(n)| n))
}

// ---------------------------------------------------------------------------------------------
// Text rules and their schemas. Each rule a handler enforces on text is written once here, with
// the JSON Schema that says the same, so the OpenAPI document carries every rule (a schema-valid
// request is never refused as invalid). Lengths count characters, as JSON Schema's do.
// ---------------------------------------------------------------------------------------------

/// What `char::is_control` refuses, as a regular-expression class body (C0, DEL, C1).
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

/// What `str::trim` removes (Unicode White_Space), as a class body. Spelled out because `\s`
/// differs between regular-expression dialects (Python's includes U+001C to U+001F).
pub const WHITESPACE: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Text that is not blank and has no control characters, anchored.
pub fn text_pattern() -> String {
    format!("^[^{CONTROL}]*[^{WHITESPACE}{CONTROL}][^{CONTROL}]*$")
}

/// Text that is not blank (some character `str::trim` keeps), anywhere in the value.
pub fn non_blank_pattern() -> String {
    format!("[^{WHITESPACE}]")
}

/// Whether `value` is 1 to `max` characters (counted as sent), not blank, without control
/// characters: the rule [`text_schema`] states.
pub fn is_text(value: &str, max: usize) -> bool {
    !value.trim().is_empty() && value.chars().count() <= max && !value.chars().any(char::is_control)
}

/// A string with at least one character `str::trim` keeps, of any length.
pub fn non_blank_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(non_blank_pattern()))
        .build()
}

/// A non-blank string of at most `MAX` characters without control characters.
pub fn text_schema<const MAX: usize>() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX))
        .pattern(Some(text_pattern()))
        .build()
}

/// A caller-chosen id ([`waybill_core::order::validate_id`]).
pub fn id_schema() -> utoipa::openapi::schema::Object {
    text_schema::<{ waybill_core::order::MAX_ID_LEN }>()
}

/// `schema`, or `null`: what an `Option` field whose schema is written by hand accepts.
pub fn or_null(
    schema: impl Into<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(schema)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

/// An optional caller-chosen id.
pub fn optional_id_schema() -> utoipa::openapi::schema::Schema {
    or_null(id_schema())
}

/// An optional RFC 3339 date-time.
pub fn optional_date_time_schema() -> utoipa::openapi::schema::Schema {
    or_null(date_time_schema())
}

/// An optional estimated delivery date.
pub fn optional_eta_schema() -> utoipa::openapi::schema::Schema {
    or_null(eta_schema())
}

/// An optional ISO 4217 code.
pub fn optional_currency_schema() -> utoipa::openapi::schema::Schema {
    or_null(currency_schema())
}

/// An optional non-blank string of at most `MAX` characters without control characters.
pub fn optional_text_schema<const MAX: usize>() -> utoipa::openapi::schema::Schema {
    or_null(text_schema::<MAX>())
}

/// A string in a known format (`date-time`, `date`, `uri`, `uuid`, `email`).
fn formatted(format: utoipa::openapi::schema::KnownFormat) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(format)))
        .build()
}

/// An RFC 3339 date-time (with its offset), as `time::parse_datetime` takes it.
pub fn date_time_schema() -> utoipa::openapi::schema::Object {
    formatted(utoipa::openapi::schema::KnownFormat::DateTime)
}

/// An estimated delivery date: an RFC 3339 date-time or a `YYYY-MM-DD` date.
pub fn eta_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, OneOfBuilder, Schema};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(formatted(KnownFormat::DateTime))
            .item(formatted(KnownFormat::Date))
            .build(),
    )
}

/// One of the listed strings.
pub fn enum_schema<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().map(str::to_owned)))
        .build()
}

/// The ten shipment statuses.
pub fn shipment_status_schema() -> utoipa::openapi::schema::Object {
    enum_schema(waybill_core::ShipmentStatus::ALL.iter().map(|s| s.as_str()))
}

/// What a status update or an automation trigger may name: every shipment status but
/// `unknown`, and the three events.
pub fn status_or_event_schema() -> utoipa::openapi::schema::Object {
    enum_schema(
        waybill_core::ShipmentStatus::ALL
            .iter()
            .filter(|s| **s != waybill_core::ShipmentStatus::Unknown)
            .map(|s| s.as_str())
            .chain(waybill_core::ShipmentEvent::ALL.iter().map(|e| e.as_str())),
    )
}

/// The exception reasons (`address_issue`, `weather`, …): a Waybill extension.
pub fn exception_reason_schema() -> utoipa::openapi::schema::Object {
    enum_schema(
        waybill_core::ExceptionReason::ALL
            .iter()
            .map(|r| r.as_str()),
    )
}

/// An optional exception reason.
pub fn optional_exception_reason_schema() -> utoipa::openapi::schema::Schema {
    or_null(exception_reason_schema())
}

/// An absolute http(s) URL with a host, as `url` parses it; `None` otherwise.
pub fn http_url(text: &str) -> Option<url::Url> {
    url::Url::parse(text.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// A callback URL as [`crate::webhooks::ssrf::UrlPolicy::parse_url`] takes it, in what a
/// WHATWG parser reads: an `http`/`https` scheme in any case, any slashes or backslashes, a
/// host without user information, an optional port up to 65535, then anything (a path, query
/// or fragment is percent-encoded as needed, never refused). The host is a dotted IPv4 address
/// or a domain of the characters a URL host may hold, whose last label is not a number (a
/// parser reads a numeric one as IPv4) and no label `xn--` (whose Punycode would need
/// checking). Narrower than the parser in a few spellings (IPv6 literals, `%`-escapes in the
/// host, short IPv4 forms), never wider.
pub fn http_url_pattern() -> String {
    const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    const HOST_CHAR: &str = r#"[A-Za-z0-9!"$&'()*+,;=_`{}~-]"#;
    const HOST_NON_DIGIT: &str = r#"[A-Za-z!"$&'()*+,;=_`{}~-]"#;
    const NOT_PUNYCODE: &str = "(?![Xx][Nn]--)";
    const PORT: &str =
        "(?:[0-9]{0,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    const AFTER_HOST: &str = r"(?:[:/?#\\]|$)";
    let ipv4 = format!(r"{OCTET}(?:\.{OCTET}){{3}}");
    let label = format!("{NOT_PUNYCODE}{HOST_CHAR}*");
    let last_label = format!(
        r"{NOT_PUNYCODE}(?!0[Xx][0-9A-Fa-f]*\.?{AFTER_HOST})[0-9]*{HOST_NON_DIGIT}{HOST_CHAR}*"
    );
    let domain = format!(r"(?:{label}\.)*{last_label}\.?");
    format!(r"^[Hh][Tt][Tt][Pp][Ss]?:[/\\]*(?:{ipv4}|{domain})(?::{PORT})?(?:[/?#\\]|$)")
}

/// A webhook callback URL: [`http_url_pattern`], at most 2,048 characters. Also the schema of
/// every other http(s) URL a request carries (tracking pages, automation webhooks).
pub fn callback_url_schema() -> utoipa::openapi::schema::Object {
    use crate::webhooks::ssrf::MAX_URL_LEN;
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(MAX_URL_LEN))
        .pattern(Some(http_url_pattern()))
        .build()
}

/// An optional tracking URL: an http(s) URL, blank or `null` for none.
pub fn optional_http_url_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(http_url_pattern())),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(format!("^[{WHITESPACE}]*$"))),
            )
            .build(),
    )
}

/// An ISO 4217 code: three capital letters.
pub fn currency_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Z]{3}$"))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_accept_numbers_and_strings() {
        let a: Amount = serde_json::from_str("19.99").unwrap();
        assert_eq!(a.into_money("p").unwrap().to_string(), "19.99");
        let a: Amount = serde_json::from_str("\"5.10\"").unwrap();
        for odd in [
            "\" 5\"",
            "\"1e5\"",
            "\"+1\"",
            "\".5\"",
            "\"5.\"",
            "\"1_000\"",
            "\"\"",
        ] {
            assert!(serde_json::from_str::<Amount>(odd).is_err(), "{odd}");
        }
        assert_eq!(a.into_money("p").unwrap().to_string(), "5.1");
        assert!(serde_json::from_str::<Amount>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Amount>("true").is_err());
        let neg: Amount = serde_json::from_str("-1").unwrap();
        assert!(neg.into_money("price").is_err());
    }
}
