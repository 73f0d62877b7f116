//! The domain's errors. Each dialect maps these onto its own status codes and error bodies.

use thiserror::Error;

/// A request the domain refuses. Every variant is the caller's fault and carries enough context
/// for a dialect to phrase a precise answer; none of them is a server fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A field is missing, malformed or out of range. The message is a full sentence.
    #[error("{0}")]
    Invalid(String),

    /// A fulfillment names a line item the order does not have.
    #[error("line item '{line_item_id}' does not exist on this order")]
    UnknownLineItem { line_item_id: String },

    /// A fulfillment asks for more units of a line than remain unfulfilled.
    #[error(
        "line item '{line_item_id}' has {remaining} unit(s) left to fulfill; {requested} requested"
    )]
    OverFulfillment {
        line_item_id: String,
        requested: u32,
        remaining: u32,
    },

    /// A return asks for more units of a line than were fulfilled and not yet returned.
    #[error(
        "line item '{line_item_id}' has {returnable} unit(s) fulfilled and not yet returned; {requested} requested"
    )]
    OverReturn {
        line_item_id: String,
        requested: u32,
        returnable: u32,
    },

    /// No return with that id in this store.
    #[error("return '{0}' was not found")]
    ReturnNotFound(String),

    /// A return with this id already exists in the store.
    #[error("a return with id '{0}' already exists")]
    DuplicateReturn(String),

    /// No order with that id in this store.
    #[error("order '{0}' was not found")]
    OrderNotFound(String),

    /// No fulfillment with that id on that order.
    #[error("fulfillment '{0}' was not found")]
    FulfillmentNotFound(String),

    /// An order with this external id already exists in the store.
    #[error("an order with id '{0}' already exists")]
    DuplicateOrder(String),

    /// A fulfillment with this id already exists in the store.
    #[error("a fulfillment with id '{0}' already exists")]
    DuplicateFulfillment(String),

    /// No store with that id.
    #[error("store '{0}' was not found")]
    StoreNotFound(String),

    /// The request is valid but the resource's state forbids it (cancelling a delivered
    /// fulfillment, say). The message is a full sentence.
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}
