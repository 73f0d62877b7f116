//! Waybill's storage layer.
//!
//! [`Store`] is the one interface the server talks to. Each method is one command and runs in
//! one transaction that also writes the command's outbox event, so a change and its
//! notification are never separated. The domain rules themselves live in `waybill-core`; a store
//! loads what a rule needs inside the transaction, asks the rule, and writes the outcome.

mod auth_cache;
pub mod automations;
mod delivery_log;
pub mod events;
pub mod exceptions;
pub mod idempotency;
pub mod postgres;
pub mod read_routing;
pub mod returns;
pub mod secrets;
pub mod sessions;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;
use waybill_core::carrier_update::CarrierReport;
use waybill_core::{
    DomainError, Fulfillment, NewFulfillment, NewLineItem, NewOrder, Order, OrderDetails, OrderRef,
    OrderStatus, Package, StatusUpdate, Timestamp,
};
use waybill_core::{NewReturn, Return, ReturnUpdate};

pub use automations::{
    AutomationAction, AutomationRecord, AutomationRun, AutomationTrigger, ClaimedRun,
    NewAutomation, RaisedEvent, RunOutcome, SettingsUpdate, StoreSettings,
};
pub use events::{EventData, LedgerChange, UnitsOfLine};
pub use exceptions::{ExceptionKind, ExceptionQuery, ExceptionRow};
pub use idempotency::{IdempotencyBegin, IdempotencyHold, IdempotencyRequest, StoredResponse};
pub use returns::{LineUnits, ReturnQuery};
pub use secrets::NewApiKey;
pub use sessions::{NewSession, Purge, SessionRecord};
pub use webhooks::{
    AttemptLog, AttemptQuery, AttemptRecord, ClaimedDelivery, DeliveryNext, DeliveryQuery,
    DeliveryRecord, DeliveryResult, DeliveryState, NewWebhook, OutboxEvent, WebhookBacklog,
    WebhookFlavor, WebhookHealth, WebhookRecord, WebhookStats, WebhookUpdate,
};

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
    /// Free text (trimmed; blank matches everything) that an order matches through any of: its
    /// external id (exactly or as a prefix), its customer email (exactly, case-insensitively),
    /// a line's SKU or a package's tracking number (both exactly).
    pub search: Option<String>,
    /// Orders with a package of this carrier (case-insensitively).
    pub carrier: Option<String>,
    /// Orders with a fulfillment in this exception, judged at the given time (with the default
    /// pickup grace).
    pub exception: Option<(ExceptionKind, Timestamp)>,
    /// Orders with a fulfillment whose current exception reason is this one.
    pub exception_reason: Option<waybill_core::ExceptionReason>,
    /// The order of the list; `after` applies to [`OrderSort::Id`] only.
    pub sort: OrderSort,
    /// Keyset paging: orders after this internal id (in id order, which is creation order).
    pub after: Option<String>,
    /// Offset paging (used when `after` is `None`).
    pub offset: u64,
    /// Page size, at most [`MAX_PAGE_SIZE`].
    pub limit: u32,
}

/// How a list of orders is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OrderSort {
    /// By internal id: creation order, oldest first (the APIs' order, which keyset paging needs).
    #[default]
    Id,
    /// Newest first by creation time.
    Newest,
    /// By derived status, newest first within one.
    Status,
    /// By the earliest estimated delivery of the order's open fulfillments, soonest first;
    /// orders without one last.
    Eta,
}

impl OrderSort {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderSort::Id => "oldest",
            OrderSort::Newest => "newest",
            OrderSort::Status => "status",
            OrderSort::Eta => "eta",
        }
    }

    pub fn parse(text: &str) -> Option<OrderSort> {
        [
            OrderSort::Id,
            OrderSort::Newest,
            OrderSort::Status,
            OrderSort::Eta,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// The `ORDER BY` clause over `orders` (the same on both backends).
    pub(crate) fn order_by(self) -> &'static str {
        match self {
            OrderSort::Id => "id",
            OrderSort::Newest => "created_at DESC, id DESC",
            OrderSort::Status => "status, created_at DESC, id DESC",
            OrderSort::Eta => {
                "(SELECT MIN(f.estimated_delivery) FROM fulfillments f
                   WHERE f.order_id = orders.id AND f.status NOT IN ('delivered', 'cancelled'))
                  ASC NULLS LAST, created_at DESC, id DESC"
            }
        }
    }
}

impl OrderQuery {
    /// The search text to apply, if any: trimmed, `None` when blank.
    pub fn search_text(&self) -> Option<&str> {
        self.search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// The shipped statuses as a list of SQL string literals (`'in_transit', …`), for the
/// statements that count an order's shipped units with the core's rule.
pub(crate) fn shipped_statuses_sql() -> String {
    waybill_core::ShipmentStatus::ALL
        .iter()
        .filter(|s| s.is_shipped())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The least string above every string that starts with `prefix` (in code point order, which is
/// also UTF-8 byte order), so that `prefix <= x < bound` selects exactly the strings starting
/// with `prefix` through an ordinary index. `None` when no such string exists (the prefix is
/// made only of the last code point, or is empty).
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if next == 0xD800 {
            next = 0xE000; // skip the surrogates, which are not chars
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
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

    /// Replaces a fulfillment's packages (carrier, tracking number, URL), with an outbox event.
    async fn update_tracking(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment_id: &str,
        packages: Vec<Package>,
    ) -> StoreResult<Fulfillment>;
    /// Records a carrier's report on the fulfillment of the store that has a package with
    /// `tracking_number` (and, when several do, of `carrier`), as
    /// [`waybill_core::carrier_update::plan`] decides. `None` if no package matches.
    async fn apply_carrier_report(
        &self,
        store_id: &str,
        tracking_number: &str,
        carrier: Option<&str>,
        report: CarrierReport,
    ) -> StoreResult<Option<Fulfillment>>;
    /// Raises up to `limit` time-based events due at `now` (see
    /// [`waybill_core::time_events::due_events`]), each through the same path as an API-sent
    /// event: history entry, outbox event, automation runs.
    async fn raise_due_events(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<RaisedEvent>>;

    /// Shipments in exception, newest first (see [`ExceptionQuery`]); one row per kind and
    /// fulfillment.
    async fn list_exceptions(
        &self,
        store_id: &str,
        query: ExceptionQuery,
    ) -> StoreResult<Vec<ExceptionRow>>;
    /// How many shipments are in each selected exception kind, in [`ExceptionKind::ALL`]
    /// order (paging aside).
    async fn count_exceptions(
        &self,
        store_id: &str,
        query: ExceptionQuery,
    ) -> StoreResult<Vec<(ExceptionKind, u64)>>;

    // ---- store settings ----

    async fn store_settings(&self, store_id: &str) -> StoreResult<StoreSettings>;
    async fn update_store_settings(
        &self,
        store_id: &str,
        update: SettingsUpdate,
    ) -> StoreResult<StoreSettings>;

    // ---- automations (see the `automations` module) ----

    async fn create_automation(
        &self,
        store_id: &str,
        new: NewAutomation,
    ) -> StoreResult<AutomationRecord>;
    /// The store's automations, oldest first.
    async fn list_automations(&self, store_id: &str) -> StoreResult<Vec<AutomationRecord>>;
    async fn get_automation(
        &self,
        store_id: &str,
        automation_id: &str,
    ) -> StoreResult<Option<AutomationRecord>>;
    /// Replaces an automation's definition; `None` if the store has no such automation.
    async fn update_automation(
        &self,
        store_id: &str,
        automation_id: &str,
        new: NewAutomation,
    ) -> StoreResult<Option<AutomationRecord>>;
    /// Deletes an automation with its runs (and its webhook subscription); `false` if none.
    async fn delete_automation(&self, store_id: &str, automation_id: &str) -> StoreResult<bool>;
    /// The automation's runs, newest first; `None` if the store has no such automation.
    async fn list_automation_runs(
        &self,
        store_id: &str,
        automation_id: &str,
        limit: u32,
    ) -> StoreResult<Option<Vec<AutomationRun>>>;
    /// Claims up to `limit` due runs (pending, or running with an expired lease), as
    /// [`Store::claim_webhook_deliveries`] does for deliveries.
    async fn claim_automation_runs(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedRun>>;
    /// Records an attempt's outcome if `claim` is still current; `false` otherwise.
    async fn finish_automation_run(
        &self,
        run_id: i64,
        claim: i64,
        outcome: RunOutcome,
        now: Timestamp,
    ) -> StoreResult<bool>;

    // ---- idempotency keys (see the `idempotency` module) ----

    /// Reserves `request.key` for a request, or says why not (replay, mismatch, in progress).
    /// An expired key counts as unused; an in-progress reservation whose lease ran out is taken
    /// over. `StoreNotFound` for an unknown store.
    async fn idempotency_begin(
        &self,
        request: IdempotencyRequest,
        now: Timestamp,
    ) -> StoreResult<IdempotencyBegin>;
    /// Extends the lease of the reservation `hold` names to `now + lease`, if its token still
    /// holds the key in progress; `false` otherwise (completed, released, purged, or taken over
    /// by another request after its lease ran out), and nothing changes.
    async fn idempotency_renew(
        &self,
        hold: &IdempotencyHold,
        lease: Duration,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Stores the answer of the request that holds the key, for replay; `false` (nothing
    /// stored) if `hold` no longer holds it in progress.
    async fn idempotency_complete(
        &self,
        hold: &IdempotencyHold,
        response: StoredResponse,
    ) -> StoreResult<bool>;
    /// Frees a reservation whose request failed on the server's side, so a retry may run;
    /// `false` (nothing freed) if `hold` no longer holds the key in progress.
    async fn idempotency_release(&self, hold: &IdempotencyHold) -> StoreResult<bool>;
    /// Deletes expired keys; how many.
    async fn purge_idempotency_keys(&self, now: Timestamp) -> StoreResult<u64>;

    /// Gives a subscription the signing secret `new_secret`; the old one keeps signing beside
    /// it for `overlap`. `None` if the store has no such subscription.
    async fn rotate_webhook_secret(
        &self,
        store_id: &str,
        webhook_id: &str,
        new_secret: &str,
        overlap: Duration,
    ) -> StoreResult<Option<WebhookRecord>>;

    // ---- webhooks: subscriptions (see the `webhooks` module) ----

    /// Creates a subscription. When `new.external_id` names an existing subscription of the
    /// store with the same flavor, that one gets the new url, topics and bearer token instead
    /// (its id and secret stay). `true` when created. `StoreNotFound` for an unknown store.
    async fn create_webhook(
        &self,
        store_id: &str,
        new: NewWebhook,
    ) -> StoreResult<(WebhookRecord, bool)>;
    /// The store's subscriptions of one flavor, oldest first.
    async fn list_webhooks(
        &self,
        store_id: &str,
        flavor: WebhookFlavor,
    ) -> StoreResult<Vec<WebhookRecord>>;
    /// One subscription of the store; `None` if it has no such subscription.
    async fn get_webhook(
        &self,
        store_id: &str,
        webhook_id: &str,
    ) -> StoreResult<Option<WebhookRecord>>;
    /// Changes a subscription; `None` if the store has no such subscription.
    async fn update_webhook(
        &self,
        store_id: &str,
        webhook_id: &str,
        update: WebhookUpdate,
    ) -> StoreResult<Option<WebhookRecord>>;
    /// Deletes a subscription with its deliveries and attempts; `false` if there was none.
    async fn delete_webhook(&self, store_id: &str, webhook_id: &str) -> StoreResult<bool>;
    /// The store's Fourthwall webhook secret. The first call stores `candidate` (a fresh
    /// random secret made by the caller); later calls return the stored one.
    async fn store_webhook_secret(&self, store_id: &str, candidate: &str) -> StoreResult<String>;
    /// Puts every event of the store written at or after `since` that the subscription
    /// selects (back) in its queue, as pending with attempts reset (an upsert on
    /// `(subscription, outbox id)`; an existing row keeps its lease and gets its claim counter
    /// bumped, so an attempt in flight cannot mark it done). The number enqueued, or `None` if
    /// the store has no such subscription.
    async fn replay_webhook(
        &self,
        store_id: &str,
        webhook_id: &str,
        since: Timestamp,
    ) -> StoreResult<Option<u64>>;
    /// Puts one event (by its event id) back in the subscription's queue, as
    /// [`Store::replay_webhook`] does; `false` if the subscription or the event is unknown in
    /// this store.
    async fn redeliver_webhook_event(
        &self,
        store_id: &str,
        webhook_id: &str,
        event_id: &str,
    ) -> StoreResult<bool>;
    /// Logged attempts, newest first (see [`AttemptQuery`]).
    async fn list_webhook_attempts(
        &self,
        store_id: &str,
        query: AttemptQuery,
    ) -> StoreResult<Vec<AttemptRecord>>;
    /// The delivery log: the store's deliveries that `query` selects, newest first (see
    /// [`DeliveryQuery`]; each page is one index range on both backends).
    async fn list_webhook_deliveries(
        &self,
        store_id: &str,
        query: DeliveryQuery,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// How many deliveries `query`'s filters select (its cursor, offset and limit aside).
    async fn count_webhook_deliveries(
        &self,
        store_id: &str,
        query: DeliveryQuery,
    ) -> StoreResult<u64>;
    /// A subscription's health from its logged attempts: the latest success and the failures
    /// since. `None` if the store has no such subscription.
    async fn webhook_stats(
        &self,
        store_id: &str,
        webhook_id: &str,
    ) -> StoreResult<Option<WebhookStats>>;

    // ---- webhooks: the dispatcher's side ----

    /// Fan-out: reads up to `limit` outbox events past the named cursor (by outbox id, in
    /// order), inserts one pending delivery (due at `now`) per enabled subscription of the
    /// event's store that selects it ([`webhooks::topic_selects`]) and was created no later
    /// than the event, skipping ones that exist, and advances the cursor, all in one
    /// transaction. Returns how many outbox events the cursor passed (0: caught up).
    /// PostgreSQL ignores the cursor's name: it marks each outbox row once fanned out, because
    /// identity values there may commit out of order (see `postgres/webhooks.rs`).
    async fn fan_out_webhook_events(
        &self,
        cursor: &str,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// Claims up to `limit` deliveries of enabled subscriptions that are due
    /// (`next_attempt_at <= now`) and not leased (`lease_until` null or `<= now`), taking per
    /// (subscription, order) only the lowest-seq delivery still pending or in flight. Each
    /// claimed one becomes `in_flight` with `lease_until = now + lease`, its attempt counter
    /// and claim counter incremented. (PostgreSQL: `FOR UPDATE SKIP LOCKED`.)
    async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Logs the attempt and, if `result.claim` still matches the delivery's claim counter,
    /// moves the delivery on (delivered / pending at a new time / failed), keeps the first
    /// rendered payload, and applies `result.health` to the subscription. Returns whether the
    /// delivery was updated (`false`: stale claim or deleted subscription).
    async fn finish_webhook_delivery(
        &self,
        result: DeliveryResult,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The latest payload rendered for the order by a Redo subscription, other than for
    /// `order.deleted`: the order's last known snapshot once the order is gone.
    async fn last_order_payload(&self, order_id: &str) -> StoreResult<Option<String>>;
    /// How much webhook work is waiting, across all stores: outbox events past the named
    /// fan-out cursor (PostgreSQL: not marked fanned out) and deliveries pending or in flight.
    /// Two index-only counts, read for `/metrics`.
    async fn webhook_backlog(&self, cursor: &str) -> StoreResult<WebhookBacklog>;
    /// With a read replica (PostgreSQL's `read_url`): the reads that could have used it,
    /// counted by where they went and why, and its state as of the last probe, for `/metrics`.
    /// `None` without one (and always on SQLite). Costs no query.
    fn read_replica_stats(&self) -> Option<read_routing::ReplicaReadStats> {
        None
    }

    // ---- returns (see the `returns` module) ----

    /// Creates a return of fulfilled units of the order, in status `requested`, with a
    /// `return.created` outbox event. Refused (`OverReturn`) when a line would have more units
    /// in live returns than in live fulfillments; `DuplicateReturn` when the store has a return
    /// with the caller's id.
    async fn create_return(
        &self,
        store_id: &str,
        order: &OrderRef,
        new: NewReturn,
    ) -> StoreResult<Return>;
    /// The store's return with this id (`ReturnNotFound` otherwise, also for another store's).
    async fn get_return(&self, store_id: &str, return_id: &str) -> StoreResult<Return>;
    /// The store's returns that `query` selects, oldest first.
    async fn list_returns(&self, store_id: &str, query: ReturnQuery) -> StoreResult<Vec<Return>>;
    /// Moves a return through its lifecycle and/or records its parcel's shipment status
    /// ([`waybill_core::ReturnUpdate::apply`]), with a `return.updated` outbox event; a
    /// rejection gives the units back.
    async fn update_return_status(
        &self,
        store_id: &str,
        return_id: &str,
        update: ReturnUpdate,
    ) -> StoreResult<Return>;
    /// Records a carrier's report on the newest return of the store whose parcel has
    /// `tracking_number`, as [`waybill_core::returns::plan_carrier_report`] decides: every
    /// new scan in order, each newer one through [`Store::update_return_status`]'s path (with
    /// its outbox event and automation runs), each older one into the history only. The return as it then
    /// stands (unchanged when the report brought nothing new); `None` if no return has that
    /// tracking number.
    async fn apply_return_carrier_report(
        &self,
        store_id: &str,
        tracking_number: &str,
        report: CarrierReport,
    ) -> StoreResult<Option<Return>>;

    // ---- shared node state and retention (see the `sessions` module) ----

    /// Starts a dashboard session.
    async fn create_session(&self, session: NewSession) -> StoreResult<()>;
    /// The session stored under a cookie's hash, expired or not (the server decides).
    async fn get_session(&self, token_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Marks a session as used at `now`.
    async fn touch_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<()>;
    /// Ends a session (nothing if there is none).
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Until when sign-ins from `client` are refused, if that is after `now`.
    async fn signin_blocked_until(
        &self,
        client: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>>;
    /// Records a failed sign-in from `client` at `now`; how many it has made since
    /// `window_start` (this one included).
    async fn record_signin_failure(
        &self,
        client: &str,
        now: Timestamp,
        window_start: Timestamp,
    ) -> StoreResult<u64>;
    /// Refuses sign-ins from `client` until `until`.
    async fn block_signin(&self, client: &str, until: Timestamp) -> StoreResult<()>;
    /// Forgets `client`'s failures and block (a successful sign-in).
    async fn clear_signin_failures(&self, client: &str) -> StoreResult<()>;
    /// Counts one request of `key` in the rate window starting at `window_start` (one atomic
    /// upsert: a row of an older window starts over); the window's count, this one included.
    async fn count_rate_window(&self, key: &str, window_start: Timestamp) -> StoreResult<u64>;
    /// One bounded retention step (at most `limit` rows); how many rows went. Safe to run on
    /// several processes at once.
    async fn purge(&self, purge: Purge, limit: u32) -> StoreResult<u64>;
}

/// Options for whichever backend a URL selects.
/// How long a live API key is remembered without asking the database, unless configured.
pub const DEFAULT_AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

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
    fn prefix_bounds_cover_exactly_the_prefixed_strings() {
        assert_eq!(prefix_upper_bound("10"), Some("11".to_owned()));
        assert_eq!(
            prefix_upper_bound("a\u{d7ff}"),
            Some("a\u{e000}".to_owned())
        );
        assert_eq!(prefix_upper_bound("a\u{10ffff}"), Some("b".to_owned()));
        assert_eq!(prefix_upper_bound("\u{10ffff}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        let bound = prefix_upper_bound("ab").unwrap_or_default();
        for inside in ["ab", "ab\u{10ffff}\u{10ffff}", "abz"] {
            assert!("ab" <= inside && inside < bound.as_str(), "{inside}");
        }
        for outside in ["aa\u{10ffff}", "ac", "b"] {
            assert!(!("ab" <= outside && outside < bound.as_str()), "{outside}");
        }
    }

    #[test]
    fn blank_search_text_is_no_search() {
        let q = |s: &str| OrderQuery {
            search: Some(s.to_owned()),
            ..OrderQuery::default()
        };
        assert_eq!(q("  ").search_text(), None);
        assert_eq!(q(" 1Z9 ").search_text(), Some("1Z9"));
        assert_eq!(OrderQuery::default().search_text(), None);
    }

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
