//! Non-negative decimal amounts.

use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A non-negative decimal amount, kept exactly (no binary floating point in storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Parses a decimal written as text ("19.99"). `field` names the field in errors.
    pub fn parse(field: &str, text: &str) -> Result<Self, DomainError> {
        let value = Decimal::from_str(text.trim()).map_err(|_| {
            DomainError::invalid(format!("{field} must be a decimal amount; got '{text}'"))
        })?;
        Self::new(field, value)
    }

    /// Takes a JSON number as the caller wrote it. Numbers are read through their shortest
    /// decimal representation so `19.99` stays `19.99`.
    pub fn from_f64(field: &str, value: f64) -> Result<Self, DomainError> {
        if !value.is_finite() {
            return Err(DomainError::invalid(format!(
                "{field} must be a finite amount"
            )));
        }
        Self::parse(field, &value.to_string())
    }

    fn new(field: &str, value: Decimal) -> Result<Self, DomainError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(DomainError::invalid(format!(
                "{field} must not be negative; got {value}"
            )));
        }
        Ok(Money(value.normalize()))
    }

    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// The amount as a JSON-friendly float (for dialects whose documents use numbers).
    pub fn to_f64(&self) -> f64 {
        self.0.to_f64().unwrap_or(0.0)
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<String> for Money {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Money::parse("amount", &value)
    }
}

impl From<Money> for String {
    fn from(value: Money) -> Self {
        value.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_strings_exactly() {
        assert_eq!(Money::parse("p", "19.990").unwrap().to_string(), "19.99");
        assert_eq!(Money::from_f64("p", 19.99).unwrap().to_string(), "19.99");
        assert_eq!(Money::from_f64("p", 0.1).unwrap().to_f64(), 0.1);
    }

    #[test]
    fn refuses_negative_and_garbage() {
        assert!(Money::parse("price", "-1").is_err());
        assert!(Money::parse("price", "abc").is_err());
        assert!(Money::from_f64("price", f64::NAN).is_err());
        assert!(Money::parse("price", "-0").is_ok());
    }
}
