//! Waybill's domain: orders, line items, fulfillments, the ten shipment statuses, the three
//! automation events, and the quantity ledger.
//!
//! Nothing here performs I/O or knows a vendor's JSON field names. Dialects translate their
//! requests into the commands defined here; stores persist what these rules decide.

pub mod carrier_update;
pub mod error;
pub mod fulfillment;
pub mod ledger;
pub mod money;
pub mod order;
pub mod order_status;
pub mod reason;
pub mod returns;
pub mod status;
pub mod time;
pub mod time_events;

pub use error::DomainError;
pub use fulfillment::{
    Fulfillment, FulfillmentLine, HistoryEntry, Location, NewFulfillment, Package, StatusChange,
    StatusUpdate,
};
pub use ledger::{LedgerEffect, LedgerLine};
pub use money::Money;
pub use order::{
    Address, Customer, FieldNames, LineItem, NewLineItem, NewOrder, Order, OrderDetails, OrderRef,
    Quantity, Shipping,
};
pub use order_status::OrderStatus;
pub use reason::ExceptionReason;
pub use returns::{
    NewReturn, NewReturnLine, Return, ReturnLine, ReturnReason, ReturnStatus, ReturnUpdate,
};
pub use status::{ShipmentEvent, ShipmentStatus, StatusOrEvent};
pub use time::Timestamp;
