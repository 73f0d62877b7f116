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
        | DomainError::OverFulfillment { .. } => StatusCode::BAD_REQUEST,
        DomainError::OrderNotFound(_)
        | DomainError::FulfillmentNotFound(_)
        | DomainError::StoreNotFound(_) => StatusCode::NOT_FOUND,
        DomainError::DuplicateOrder(_)
        | DomainError::DuplicateFulfillment(_)
        | DomainError::Conflict(_) => StatusCode::CONFLICT,
    }
}

/// A money amount as callers send it: a JSON number or a numeric string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Number(f64),
    Text(Money),
}

impl Amount {
    pub fn into_money(self, field: &str) -> Result<Money, DomainError> {
        match self {
            Amount::Number(n) => Money::from_f64(field, n),
            Amount::Text(m) => Ok(m),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = Amount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative decimal amount (number or numeric string)")
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
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*\d+(\.\d+)?\s*$")),
            )
            .description(Some(
                "A non-negative decimal amount, as a number or a numeric string",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Amount {}

/// The schema of an id a vendor sends as a string or an integer.
pub fn string_or_integer_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Integer))
        .into()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_accept_numbers_and_strings() {
        let a: Amount = serde_json::from_str("19.99").unwrap();
        assert_eq!(a.into_money("p").unwrap().to_string(), "19.99");
        let a: Amount = serde_json::from_str("\"5.10\"").unwrap();
        assert_eq!(a.into_money("p").unwrap().to_string(), "5.1");
        assert!(serde_json::from_str::<Amount>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Amount>("true").is_err());
        let neg: Amount = serde_json::from_str("-1").unwrap();
        assert!(neg.into_money("price").is_err());
    }
}
