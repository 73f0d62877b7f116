//! Orders and their line items.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::fulfillment::Fulfillment;
use crate::{DomainError, Money, Timestamp};

/// Units of one line item: 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 1000;

    /// `field` names the field in errors (e.g. `lineItems[2].quantity`).
    pub fn new(field: &str, value: i64) -> Result<Self, DomainError> {
        if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&value) {
            Ok(Quantity(value as u32))
        } else {
            Err(DomainError::invalid(format!(
                "{field} must be between {} and {}; got {value}",
                Self::MIN,
                Self::MAX
            )))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = DomainError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Quantity::new("quantity", value)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

/// How a caller names an order in a path: its own external id or Waybill's internal id.
/// Stores try the external id first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRef(String);

impl OrderRef {
    pub fn new(value: impl Into<String>) -> Self {
        OrderRef(value.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The internal id this reference would be, if it parses as one.
    pub fn as_internal(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.0).ok()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shipping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// What an order says besides its lines: customer, addresses, amounts, tags. Stored as one
/// document; nothing in the ledger depends on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Shipping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtotal_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tax: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_discount: Option<Money>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    /// Fields a dialect keeps for itself (opaque to the core).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl OrderDetails {
    pub fn customer_email(&self) -> Option<&str> {
        self.customer.as_ref().and_then(|c| c.email.as_deref())
    }
}

/// Per-line data that is carried but not interpreted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineItemExtra {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<Money>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewLineItem {
    /// The caller's id for the line, unique within the order.
    pub id: String,
    pub product_id: Option<String>,
    pub variant_id: Option<String>,
    pub sku: Option<String>,
    pub title: String,
    pub quantity: Quantity,
    pub price: Option<Money>,
    pub extra: LineItemExtra,
}

/// A validated order, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub external_id: String,
    pub created_at: Timestamp,
    pub line_items: Vec<NewLineItem>,
    pub details: OrderDetails,
}

/// Longest id (order, line item, fulfillment) a caller may choose.
pub const MAX_ID_LEN: usize = 255;

/// Checks a caller-chosen identifier: non-blank, at most [`MAX_ID_LEN`] characters (Unicode
/// code points, as JSON Schema's `maxLength` counts them), no control characters.
pub fn validate_id(field: &str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(format!("{field} must not be empty")));
    }
    let length = value.chars().count();
    if length > MAX_ID_LEN {
        return Err(DomainError::invalid(format!(
            "{field} must be at most {MAX_ID_LEN} characters long; got {length}"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// How a dialect spells the request fields that the core's checks name in their messages, so
/// that every error names a field the caller actually sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldNames<'a> {
    /// The caller's order id.
    pub order_id: &'a str,
    /// The caller's fulfillment id.
    pub fulfillment_id: &'a str,
    /// The list of line items (with any prefix, e.g. `fulfillments[0].sourceItemIds`).
    pub lines: &'a str,
    /// A line item's id within that list.
    pub line_id: &'a str,
}

impl FieldNames<'static> {
    /// Redo's names, which Waybill's own API shares.
    pub const REDO: FieldNames<'static> = FieldNames {
        order_id: "orderId",
        fulfillment_id: "fulfillmentId",
        lines: "lineItems",
        line_id: "id",
    };
}

impl FieldNames<'_> {
    fn line_id_at(&self, index: usize) -> String {
        format!("{}[{index}].{}", self.lines, self.line_id)
    }
}

impl NewOrder {
    /// [`NewOrder::new_named`] with Redo's field names.
    pub fn new(
        external_id: String,
        created_at: Timestamp,
        line_items: Vec<NewLineItem>,
        details: OrderDetails,
    ) -> Result<Self, DomainError> {
        Self::new_named(
            FieldNames::REDO,
            external_id,
            created_at,
            line_items,
            details,
        )
    }

    /// Checks the invariants of an order: an external id, at least one line, line ids unique.
    /// Quantities are already in range by construction. Messages use `names`.
    pub fn new_named(
        names: FieldNames<'_>,
        external_id: String,
        created_at: Timestamp,
        line_items: Vec<NewLineItem>,
        details: OrderDetails,
    ) -> Result<Self, DomainError> {
        validate_id(names.order_id, &external_id)?;
        if line_items.is_empty() {
            return Err(DomainError::invalid(format!(
                "{} must contain at least one line item",
                names.lines
            )));
        }
        let mut seen = HashSet::new();
        for (index, line) in line_items.iter().enumerate() {
            let field = names.line_id_at(index);
            validate_id(&field, &line.id)?;
            if !seen.insert(line.id.as_str()) {
                return Err(DomainError::invalid(format!(
                    "{field} '{}' is used by more than one line item",
                    line.id
                )));
            }
        }
        Ok(NewOrder {
            external_id,
            created_at,
            line_items,
            details,
        })
    }
}

/// A stored line item with its ledger position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    pub id: String,
    pub product_id: Option<String>,
    pub variant_id: Option<String>,
    pub sku: Option<String>,
    pub title: String,
    pub quantity: u32,
    /// Units in live (not cancelled) fulfillments.
    pub fulfilled: u32,
    /// Units in live (not rejected) returns: at most `fulfilled`. Absent from snapshots stored
    /// before returns existed, hence the default.
    #[serde(default)]
    pub returned: u32,
    pub price: Option<Money>,
    pub extra: LineItemExtra,
}

impl LineItem {
    pub fn remaining(&self) -> u32 {
        self.quantity.saturating_sub(self.fulfilled)
    }
}

/// A stored order with its lines and fulfillments. Serialized as it is (snake_case fields) into
/// the outbox, as the state an event reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub store_id: String,
    pub external_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub line_items: Vec<LineItem>,
    pub details: OrderDetails,
    pub fulfillments: Vec<Fulfillment>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time;

    fn line(id: &str) -> NewLineItem {
        NewLineItem {
            id: id.into(),
            product_id: Some("p".into()),
            variant_id: None,
            sku: None,
            title: "T".into(),
            quantity: Quantity::new("q", 1).unwrap(),
            price: None,
            extra: LineItemExtra::default(),
        }
    }

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::new("q", 0).is_err());
        assert!(Quantity::new("q", 1001).is_err());
        assert!(Quantity::new("q", -5).is_err());
        assert_eq!(Quantity::new("q", 1000).unwrap().get(), 1000);
        let err = Quantity::new("lineItems[0].quantity", 0).unwrap_err();
        assert!(err.to_string().contains("lineItems[0].quantity"));
    }

    #[test]
    fn order_needs_lines_and_unique_ids() {
        let now = time::now();
        let d = OrderDetails::default();
        assert!(NewOrder::new("A".into(), now, vec![], d.clone()).is_err());
        assert!(NewOrder::new("A".into(), now, vec![line("1"), line("1")], d.clone()).is_err());
        assert!(NewOrder::new(" ".into(), now, vec![line("1")], d.clone()).is_err());
        assert!(NewOrder::new("A".into(), now, vec![line("1"), line("2")], d).is_ok());
    }

    #[test]
    fn ids_are_bounded() {
        assert!(validate_id("x", &"a".repeat(MAX_ID_LEN)).is_ok());
        assert!(validate_id("x", &"a".repeat(MAX_ID_LEN + 1)).is_err());
        // Characters, not bytes, as JSON Schema's maxLength counts them.
        assert!(validate_id("x", &"é".repeat(MAX_ID_LEN)).is_ok());
        let err = validate_id("x", &"é".repeat(MAX_ID_LEN + 1)).unwrap_err();
        assert!(
            err.to_string().ends_with("characters long; got 256"),
            "{err}"
        );
        assert!(validate_id("x", "a\nb").is_err());
    }
}
