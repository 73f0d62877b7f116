//! Waybill's storage layer.
//!
//! [`Store`] is the one interface the server talks to. Each method is one command and runs in
//! one transaction that also writes the command's outbox event, so a change and its
//! notification are never separated. The domain rules themselves live in `waybill-core`; a store
//! loads what a rule needs inside the transaction, asks the rule, and writes the outcome.

pub mod postgres;
pub mod secrets;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use thiserror::Error;
use waybill_core::{
    DomainError, Fulfillment, NewFulfillment, NewLineItem, NewOrder, Order, OrderDetails, OrderRef,
    OrderStatus, StatusUpdate, Timestamp,
};

pub use secrets::NewApiKey;

/// What can go wrong in a store call.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The request breaks a domain rule: the caller's fault, answered in the dialect's format.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database is busy, locked or unreachable; the request changed nothing and may be
    /// retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a fault on our side. Logged with its context, answered as a generic 500.
    #[error("storage failure: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        StoreError::Internal(format!("{context}: {err}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A merchant's store: the tenant every order belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRecord {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
}

/// An API key as listed: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub store_id: String,
    /// The first characters of the secret, enough to recognise it.
    pub prefix: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Which orders to list, and which page of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderQuery {
    /// Customer email, matched exactly (case-insensitively).
    pub email: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub updated_after: Option<Timestamp>,
    pub updated_before: Option<Timestamp>,
    /// Derived statuses to keep; empty keeps all.
    pub statuses: Vec<OrderStatus>,
    /// Keyset paging: orders after this internal id (in id order, which is creation order).
    pub after: Option<String>,
    /// Offset paging (used when `after` is `None`).
    pub offset: u64,
    /// Page size, at most [`MAX_PAGE_SIZE`].
    pub limit: u32,
}

/// Largest page any listing returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// A page of orders, oldest first, with how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    pub total: u64,
    /// Whether orders follow this page.
    pub has_more: bool,
}

/// A change to an existing order: new details, and lines to update (matched by id) or add.
/// Lines not named keep what they have. A line's quantity cannot drop below its fulfilled units.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderUpdate {
    pub created_at: Option<Timestamp>,
    pub details: OrderDetails,
    pub line_items: Vec<NewLineItem>,
}

/// The storage interface. Implemented by [`sqlite::SqliteStore`] and [`postgres::PgStore`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name of the backend and where it points, without credentials.
    fn describe(&self) -> String;

    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;

    // ---- stores and keys ----

    /// Creates a store with its first API key.
    async fn create_store(&self, name: &str) -> StoreResult<(StoreRecord, NewApiKey)>;
    async fn list_stores(&self) -> StoreResult<Vec<StoreRecord>>;
    async fn store_exists(&self, store_id: &str) -> StoreResult<bool>;
    /// Adds an API key to a store (a store may have several live keys, for rotation).
    async fn create_api_key(&self, store_id: &str) -> StoreResult<NewApiKey>;
    async fn list_api_keys(&self, store_id: &str) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Revokes a key; `false` when there is no live key with that id.
    async fn revoke_api_key(&self, key_id: &str) -> StoreResult<bool>;
    /// The store a presented secret belongs to, if it is a live key.
    async fn authenticate(&self, secret: &str) -> StoreResult<Option<String>>;

    // ---- orders and fulfillments ----

    async fn create_order(&self, store_id: &str, order: NewOrder) -> StoreResult<Order>;
    /// The order with its lines and fulfillments.
    async fn get_order(&self, store_id: &str, order: &OrderRef) -> StoreResult<Order>;
    /// Deletes an order with its fulfillments; returns what was deleted.
    async fn delete_order(&self, store_id: &str, order: &OrderRef) -> StoreResult<Order>;
    async fn create_fulfillment(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment: NewFulfillment,
    ) -> StoreResult<Fulfillment>;
    /// Creates the fulfillment, or, when one with its id exists on this order, replaces its
    /// lines (re-checked against the ledger), packages and status. `true` when created.
    async fn upsert_fulfillment(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment: NewFulfillment,
    ) -> StoreResult<(Fulfillment, bool)>;
    async fn update_order(
        &self,
        store_id: &str,
        order: &OrderRef,
        update: OrderUpdate,
    ) -> StoreResult<Order>;
    async fn list_orders(&self, store_id: &str, query: OrderQuery) -> StoreResult<OrderPage>;
    async fn update_shipment_status(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment_id: &str,
        update: StatusUpdate,
    ) -> StoreResult<Fulfillment>;
}

/// Options for whichever backend a URL selects.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub sqlite: sqlite::SqliteOptions,
    pub postgres: postgres::PgOptions,
}

/// Opens the store a database URL names, creating and migrating it if needed.
///
/// `sqlite://PATH` (relative to the working directory), `sqlite:///ABSOLUTE/PATH` and
/// `postgres://USER@HOST:PORT/DATABASE` (any libpq-style URL) are understood. (An in-memory
/// SQLite database is not: readers and the writer use separate connections, which must share
/// one file.)
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    open_with(url, &OpenOptions::default()).await
}

/// [`open`] with tuning for the backend.
pub async fn open_with(url: &str, options: &OpenOptions) -> StoreResult<Arc<dyn Store>> {
    if let Some(path) = sqlite::path_from_url(url) {
        let store = sqlite::SqliteStore::open(&path, options.sqlite.clone()).await?;
        return Ok(Arc::new(store));
    }
    if postgres::is_postgres_url(url) {
        let store = postgres::PgStore::open(url, options.postgres.clone()).await?;
        return Ok(Arc::new(store));
    }
    Err(StoreError::Internal(format!(
        "unsupported database URL '{}': expected sqlite://PATH or postgres://…",
        redact_url(url)
    )))
}

/// A database URL with any password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact_url("sqlite://waybill.db"), "sqlite://waybill.db");
    }
}
