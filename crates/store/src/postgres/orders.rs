//! Orders, fulfillments and their history on PostgreSQL. Every function runs inside the
//! caller's transaction. Write commands lock the order's row first (`FOR UPDATE`), so all
//! commands on one order are serialized across every process sharing the database, and two
//! commands never wait on each other's rows in opposite orders.

use std::collections::HashMap;
use std::sync::LazyLock;

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;
use waybill_core::ledger::{self, LedgerEffect, LedgerLine};
use waybill_core::order_status::{self, UnitCounts};
use waybill_core::{
    DomainError, ExceptionReason, Fulfillment, FulfillmentLine, HistoryEntry, LineItem, Money,
    NewFulfillment, NewLineItem, NewOrder, Order, OrderRef, Package, Quantity, ShipmentStatus,
    StatusChange, StatusOrEvent, StatusUpdate, Timestamp, time,
};

use super::order_json;
use super::{
    Finish, LastStatement, Param, PgResult, PipelinedStep, execute, map_err, prepare, query,
    query_one, query_opt,
};
use crate::automations::pick_by_carrier;
use crate::events::{EventData, LedgerChange};
use crate::{MAX_PAGE_SIZE, OrderPage, OrderQuery, OrderUpdate, RaisedEvent, StoreError};
use tokio_postgres::Row;
use waybill_core::carrier_update::{self, CarrierReport, Step};
use waybill_core::time_events;

pub(super) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> PgResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| StoreError::internal(what, e).into())
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    value: serde_json::Value,
) -> PgResult<T> {
    serde_json::from_value(value).map_err(|e| StoreError::internal(what, e).into())
}

pub(super) fn parse_uuid(text: &str) -> PgResult<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::internal("decoding a stored order id", e).into())
}

pub(super) fn parse_status(text: &str) -> PgResult<ShipmentStatus> {
    text.parse()
        .map_err(|e| StoreError::internal("decoding a stored shipment status", e).into())
}

pub(super) fn parse_reason(text: &str) -> PgResult<ExceptionReason> {
    text.parse()
        .map_err(|e| StoreError::internal("decoding a stored exception reason", e).into())
}

pub(super) fn stored_u32(what: &str, value: i32) -> PgResult<u32> {
    u32::try_from(value).map_err(|e| StoreError::internal(what, e).into())
}

pub(super) fn qty(q: &Quantity) -> i32 {
    // A Quantity is 1..=1000, so it always fits.
    i32::try_from(q.get()).unwrap_or(i32::MAX)
}

/// The order a path names: its internal id and event sequence. The external id wins when a
/// string could be both. With `lock`, the order's row is locked for the rest of the
/// transaction.
pub(super) async fn resolve_order(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    lock: bool,
) -> PgResult<(String, i64)> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    let by_external = query_opt(
        tx,
        "looking up an order",
        &format!(
            "SELECT id, event_seq FROM orders WHERE store_id = $1 AND external_id = $2{suffix}"
        ),
        &[&store_id, &order.as_str()],
    )
    .await?;
    if let Some(row) = by_external {
        return Ok((row.get(0), row.get(1)));
    }
    if let Some(id) = order.as_internal() {
        let found = query_opt(
            tx,
            "looking up an order",
            &format!("SELECT id, event_seq FROM orders WHERE id = $1 AND store_id = $2{suffix}"),
            &[&id.to_string(), &store_id],
        )
        .await?;
        if let Some(row) = found {
            return Ok((row.get(0), row.get(1)));
        }
    }
    Err(DomainError::OrderNotFound(order.as_str().to_owned()).into())
}

/// Locks an order's row by its internal id (for commands that found the order another way).
pub(super) async fn lock_order(tx: &Transaction<'_>, order_id: &str) -> PgResult<()> {
    query_one(
        tx,
        "locking an order",
        "SELECT 1 FROM orders WHERE id = $1 FOR UPDATE",
        &[&order_id],
    )
    .await?;
    Ok(())
}

/// The statement that counts the units of the order `$1` for its derived status. The `OFFSET 0`
/// keeps the lateral subquery from being pulled up into a hash join, which the planner picks (a sequential scan of every fulfillment line
/// in the database) while its statistics still think orders have many fulfillments: per
/// fulfillment, a key lookup is always cheap.
fn build_counts_sql() -> String {
    format!(
        "SELECT (SELECT COALESCE(SUM(quantity), 0) FROM line_items WHERE order_id = $1)::BIGINT,
                COALESCE(SUM(fl.quantity), 0)::BIGINT,
                COALESCE(SUM(CASE WHEN f.status IN ({}) THEN fl.quantity END), 0)::BIGINT,
                COALESCE(SUM(CASE WHEN f.status = 'delivered' THEN fl.quantity END), 0)::BIGINT
         FROM fulfillments f
         CROSS JOIN LATERAL (
             SELECT quantity FROM fulfillment_lines l
             WHERE l.store_id = f.store_id AND l.fulfillment_id = f.id
             OFFSET 0) fl
         WHERE f.order_id = $1 AND f.status <> 'cancelled'",
        crate::shipped_statuses_sql()
    )
}

/// [`build_counts_sql`], formatted once.
pub(super) fn counts_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(build_counts_sql);
    &SQL
}

/// The order an external id names in `$1` (store) and `$2` (external id), as a subquery.
const ORDER_BY_EXTERNAL_ID: &str =
    "(SELECT id FROM orders WHERE store_id = $1 AND external_id = $2)";

/// The ledger of an order with its lines' details; `order` is the SQL expression for its id.
fn ledger_sql(order: &str) -> String {
    format!(
        "SELECT id, quantity, fulfilled, title, product_id, variant_id, sku
         FROM line_items WHERE order_id = {order}"
    )
}

fn ledger_by_id_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| ledger_sql("$1"));
    &SQL
}

fn ledger_by_external_id_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| ledger_sql(ORDER_BY_EXTERNAL_ID));
    &SQL
}

/// The unit counts an order's row keeps (columns 1 to 3 of `row`: in fulfillment, shipped,
/// delivered), with the units ordered summed from its ledger `rows`.
fn stored_unit_counts(row: &Row, ledger: &[Row]) -> UnitCounts {
    let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
    UnitCounts {
        ordered: ledger
            .iter()
            .map(|r| u64::try_from(r.get::<_, i32>(1)).unwrap_or(0))
            .sum(),
        in_fulfillment: count(1),
        shipped: count(2),
        delivered: count(3),
    }
}

/// A unit count as the order's row keeps it.
fn stored_count(units: u64) -> i64 {
    i64::try_from(units).unwrap_or(i64::MAX)
}

/// An outbox event: its type, the fulfillment it concerns, its data, and the status or event
/// name that sets off the store's automations (runs are queued with the event).
pub(super) struct Event<'a> {
    pub(super) kind: &'a str,
    pub(super) fulfillment_id: Option<&'a str>,
    pub(super) data: EventData,
    pub(super) trigger: Option<&'a str>,
    pub(super) touched: Touched,
}

/// What of its order a change wrote, which decides how the event's snapshot of the order is
/// made ([`event_ctes`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Touched {
    /// Anything: the snapshot is built from all the order's rows.
    Order,
    /// Only the event's fulfillment (its row, packages, lines and history) and the units of
    /// the order's line items: the order kept on its row is edited, with the order built from
    /// its rows when it cannot be ([`order_json::with_fulfillment`]).
    OneFulfillment,
}

/// Where [`event_ctes`] finds the values of an event, as SQL expressions (parameters).
struct EventSql<'a> {
    store: &'a str,
    order: &'a str,
    fulfillment: &'a str,
    kind: &'a str,
    data: &'a str,
    /// The order's derived status after the change.
    status: &'a str,
    /// The order's unit counts after the change: in fulfillment, shipped, delivered.
    counts: [&'a str; 3],
    trigger: &'a str,
    event_id: &'a str,
    now: &'a str,
    /// True when the change wrote only the event's fulfillment and its line items' units
    /// ([`Touched::OneFulfillment`]).
    one_fulfillment: &'a str,
}

/// The common table expressions that record an event: `snap` makes the order as the change
/// left it, with its status before the change ([`order_json`]: every part of one statement
/// reads the rows as they were before it, which includes what earlier statements of the change
/// wrote, and the order's row as it was, whose `updated_at` the snapshot takes from the event
/// instead; a change to one fulfillment edits the order kept on the row, any other builds it
/// from the rows, [`Touched`]), `seq` writes
/// the order's row (sequence, `updated_at`, derived status, and the snapshot, which reads of
/// the order return), `event` the outbox event under the new sequence number (its data gets the
/// snapshot and the order's status before the change), and
/// `runs` queues a run of every enabled automation of the store that the trigger sets off for
/// the fulfillment, tied to that event. The unique key (automation, fulfillment, trigger) makes
/// a repeated trigger add nothing.
fn event_ctes(e: &EventSql<'_>) -> String {
    format!(
        "snap AS (
             SELECT COALESCE(CASE WHEN {one_fulfillment} THEN {edited} END, {built})
                        AS order_json,
                    prev.status
             FROM orders prev WHERE prev.id = {order}),
         seq AS (
             UPDATE orders SET event_seq = event_seq + 1, updated_at = {now}, status = {status},
                               units_in_fulfillment = {in_fulfillment}, units_shipped = {shipped},
                               units_delivered = {delivered},
                               snapshot = (SELECT order_json FROM snap)
             WHERE id = {order}
             RETURNING event_seq),
         event AS (
             INSERT INTO outbox (event_id, store_id, order_id, seq, type, fulfillment_id, data,
                                 created_at)
             SELECT {event_id}, {store}, {order}, seq.event_seq, {kind}, {fulfillment},
                    {data} || jsonb_build_object('order', snap.order_json)
                        || CASE WHEN {kind} = 'order.created' THEN '{{}}'::jsonb
                                ELSE jsonb_build_object('previousOrderStatus', snap.status)
                           END,
                    {now}
             FROM seq, snap
             RETURNING id, seq),
         runs AS (
             INSERT INTO automation_runs (automation_id, store_id, order_id, seq, outbox_id,
                                          fulfillment_id, trigger, next_attempt_at, created_at,
                                          updated_at)
             SELECT a.id, a.store_id, {order}, event.seq, event.id, {fulfillment}, a.trigger,
                    {now}, {now}, {now}
             FROM automations a, event
             WHERE {fulfillment} IS NOT NULL AND a.store_id = {store} AND a.trigger = {trigger}
               AND a.enabled
               AND (a.carrier IS NULL
                    OR EXISTS (SELECT 1 FROM packages p
                               WHERE p.store_id = {store} AND p.fulfillment_id = {fulfillment}
                                 AND lower(p.carrier) = lower(a.carrier)))
             ON CONFLICT (automation_id, fulfillment_id, trigger) DO NOTHING)",
        store = e.store,
        order = e.order,
        fulfillment = e.fulfillment,
        kind = e.kind,
        data = e.data,
        status = e.status,
        in_fulfillment = e.counts[0],
        shipped = e.counts[1],
        delivered = e.counts[2],
        trigger = e.trigger,
        event_id = e.event_id,
        now = e.now,
        one_fulfillment = e.one_fulfillment,
        edited = order_json::with_fulfillment("prev", e.store, e.order, e.fulfillment, e.now),
        built = order_json::order(order_json::Flavour::Jsonb, "prev", e.now),
    )
}

/// The statement that records an event ([`event_ctes`]) and returns how many it wrote (1);
/// [`event_step`] gives its parameters.
fn event_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let ctes = event_ctes(&EventSql {
            order: "$1::text",
            now: "$2::bigint",
            event_id: "$3::text",
            store: "$4::text",
            kind: "$5::text",
            fulfillment: "$6::text",
            data: "$7::jsonb",
            status: "$8::text",
            counts: ["$10::bigint", "$11::bigint", "$12::bigint"],
            trigger: "$9::text",
            one_fulfillment: "$13::bool",
        });
        format!("WITH {ctes} SELECT count(*) FROM event")
    });
    &SQL
}

/// The statement recording `event` for the order `order_id`, whose units after the change are
/// `counts`, ready to be sent after the change's other statements (its snapshot sees them).
async fn event_step(
    tx: &Transaction<'_>,
    store_id: &str,
    order_id: &str,
    event: Event<'_>,
    counts: UnitCounts,
    now: Timestamp,
) -> PgResult<PipelinedStep> {
    let status = counts.status().as_str();
    let mut data = event.data;
    data.order_status = Some(status.to_owned());
    let params: Vec<Param> = vec![
        Box::new(order_id.to_owned()),
        Box::new(time::to_millis(now)),
        Box::new(Uuid::now_v7().to_string()),
        Box::new(store_id.to_owned()),
        Box::new(event.kind.to_owned()),
        Box::new(event.fulfillment_id.map(str::to_owned)),
        Box::new(to_json("encoding event data", &data)?),
        Box::new(status),
        Box::new(event.trigger.map(str::to_owned)),
        Box::new(stored_count(counts.in_fulfillment)),
        Box::new(stored_count(counts.shipped)),
        Box::new(stored_count(counts.delivered)),
        Box::new(event.touched == Touched::OneFulfillment && event.fulfillment_id.is_some()),
    ];
    Ok(PipelinedStep {
        what: "writing an outbox event",
        statement: prepare(tx, "writing an outbox event", event_sql()).await?,
        params,
    })
}

/// The units of the order `order_id` as its rows are now, for its derived status and kept
/// counts.
async fn count_units(tx: &Transaction<'_>, order_id: &str) -> PgResult<UnitCounts> {
    let row = query_one(tx, "counting an order's units", counts_sql(), &[&order_id]).await?;
    let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
    Ok(UnitCounts {
        ordered: count(0),
        in_fulfillment: count(1),
        shipped: count(2),
        delivered: count(3),
    })
}

/// Appends an outbox event for a change to the order (written by the transaction's earlier
/// statements), bumps its sequence and `updated_at`, and refreshes its derived status and kept
/// unit counts from a recount of its units: the count, then one statement that writes the
/// order's row, the event with its snapshot and the automation runs.
pub(super) async fn record_event(
    tx: &Transaction<'_>,
    store_id: &str,
    order_id: &str,
    event: Event<'_>,
    now: Timestamp,
) -> PgResult<()> {
    let counts = count_units(tx, order_id).await?;
    let step = event_step(tx, store_id, order_id, event, counts, now).await?;
    let rows = run_steps(tx, vec![step]).await?;
    check_each_wrote_one(order_id, &rows)
}

/// Writes an outbox event with a sequence number the caller chose (`order.deleted`, whose
/// order row goes away in the same transaction).
#[allow(clippy::too_many_arguments)]
async fn insert_outbox(
    tx: &Transaction<'_>,
    store_id: &str,
    order_id: &str,
    seq: i64,
    event_type: &str,
    fulfillment_id: Option<&str>,
    data: &EventData,
    now: Timestamp,
) -> PgResult<()> {
    let data = to_json("encoding event data", data)?;
    execute(
        tx,
        "writing an outbox event",
        "INSERT INTO outbox (event_id, store_id, order_id, seq, type, fulfillment_id, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &Uuid::now_v7().to_string(),
            &store_id,
            &order_id,
            &seq,
            &event_type,
            &fulfillment_id,
            &data,
            &time::to_millis(now),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_order(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &NewOrder,
    now: Timestamp,
) -> PgResult<Order> {
    let id = Uuid::now_v7();
    let id_text = id.to_string();
    let details = to_json("encoding order details", &order.details)?;
    let inserted = execute(
        tx,
        "inserting an order",
        "INSERT INTO orders (id, store_id, external_id, created_at, inserted_at, updated_at,
                             customer_email, details)
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7)
         ON CONFLICT (store_id, external_id) DO NOTHING",
        &[
            &id_text,
            &store_id,
            &order.external_id,
            &time::to_millis(order.created_at),
            &time::to_millis(now),
            &order.details.customer_email(),
            &details,
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(DomainError::DuplicateOrder(order.external_id.clone()).into());
    }
    for (position, line) in order.line_items.iter().enumerate() {
        insert_line(tx, &id_text, position as i32, line).await?;
    }
    record_event(
        tx,
        store_id,
        &id_text,
        Event {
            kind: "order.created",
            fulfillment_id: None,
            data: EventData::default(),
            trigger: None,
            touched: Touched::Order,
        },
        now,
    )
    .await?;
    Ok(Order {
        id,
        store_id: store_id.to_owned(),
        external_id: order.external_id.clone(),
        created_at: order.created_at,
        updated_at: now,
        line_items: order
            .line_items
            .iter()
            .map(|l| LineItem {
                id: l.id.clone(),
                product_id: l.product_id.clone(),
                variant_id: l.variant_id.clone(),
                sku: l.sku.clone(),
                title: l.title.clone(),
                quantity: l.quantity.get(),
                fulfilled: 0,
                returned: 0,
                price: l.price,
                extra: l.extra.clone(),
            })
            .collect(),
        details: order.details.clone(),
        fulfillments: Vec::new(),
    })
}

/// A line item's columns, in the order [`line_items_from_rows`] reads them.
const LINE_ITEM_COLUMNS: &str =
    "id, product_id, variant_id, sku, title, quantity, fulfilled, price, extra, returned";

async fn load_line_items(tx: &Transaction<'_>, order_id: &str) -> PgResult<Vec<LineItem>> {
    let rows = query(
        tx,
        "loading line items",
        &format!(
            "SELECT {LINE_ITEM_COLUMNS} FROM line_items WHERE order_id = $1 ORDER BY position"
        ),
        &[&order_id],
    )
    .await?;
    line_items_from_rows(&rows)
}

fn line_items_from_rows(rows: &[Row]) -> PgResult<Vec<LineItem>> {
    rows.iter()
        .map(|r| {
            Ok(LineItem {
                id: r.get(0),
                product_id: r.get(1),
                variant_id: r.get(2),
                sku: r.get(3),
                title: r.get(4),
                quantity: stored_u32("decoding a stored quantity", r.get(5))?,
                fulfilled: stored_u32("decoding a stored quantity", r.get(6))?,
                returned: stored_u32("decoding a stored quantity", r.get(9))?,
                price: r
                    .get::<_, Option<String>>(7)
                    .map(|p| Money::parse("price", &p))
                    .transpose()
                    .map_err(|e| StoreError::internal("decoding a stored price", e))?,
                extra: from_json("decoding line item extras", r.get(8))?,
            })
        })
        .collect()
}

/// The order named by the caller: by its external id, which reads use far more often; else by
/// Waybill's internal id. By external id it is one index lookup of the order as its last event
/// left it, kept on its row (`orders.snapshot`, written by [`event_ctes`]); an order without
/// one (not written since the column came, or with a scan appended since) is built from its
/// rows by one more statement ([`order_json`]). Each statement sees one snapshot of the
/// database, so a read needs no transaction.
pub(super) async fn load_order<C: GenericClient>(
    client: &C,
    store_id: &str,
    order: &OrderRef,
) -> PgResult<Order> {
    if let Some(found) = query_opt(
        client,
        "reading an order",
        "SELECT id, snapshot::text FROM orders WHERE store_id = $1 AND external_id = $2",
        &[&store_id, &order.as_str()],
    )
    .await?
    {
        return match found.get::<_, Option<&str>>(1) {
            Some(kept) => decode_order_text(kept),
            None => load_order_by_id(client, store_id, found.get(0)).await,
        };
    }
    // Not an external id of this store: perhaps Waybill's internal id.
    if let Some(id) = order.as_internal() {
        let mut found = load_orders_by_id(client, store_id, &[id.to_string()]).await?;
        if let Some(order) = found.pop() {
            return Ok(order);
        }
    }
    Err(DomainError::OrderNotFound(order.as_str().to_owned()).into())
}

/// An order this transaction has found already (by [`resolve_order`] or a listing).
async fn load_order_by_id<C: GenericClient>(
    client: &C,
    store_id: &str,
    order_id: &str,
) -> PgResult<Order> {
    load_orders_by_id(client, store_id, &[order_id.to_owned()])
        .await?
        .pop()
        .ok_or_else(|| {
            StoreError::Internal(format!("order {order_id} vanished while loading")).into()
        })
}

/// The orders `ids` of the store (those that exist), in the order given, in one statement.
pub(super) async fn load_orders_by_id<C: GenericClient>(
    client: &C,
    store_id: &str,
    ids: &[String],
) -> PgResult<Vec<Order>> {
    query(
        client,
        "reading orders",
        order_json::by_ids_sql(),
        &[&store_id, &ids],
    )
    .await?
    .iter()
    .map(decode_order)
    .collect()
}

/// An order from the JSON text of [`order_json`] in the row's first column.
fn decode_order(row: &Row) -> PgResult<Order> {
    decode_order_text(row.get(0))
}

fn decode_order_text(text: &str) -> PgResult<Order> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::internal("decoding an order built by PostgreSQL", e).into())
}

/// The fulfillment `fulfillment_id` of the order `order_id` (found already), with its lines,
/// packages and history, in one statement.
async fn load_one_fulfillment(
    tx: &Transaction<'_>,
    store_id: &str,
    order_id: &str,
    fulfillment_id: &str,
) -> PgResult<Fulfillment> {
    let row = query_opt(
        tx,
        "loading a fulfillment",
        order_json::fulfillment_by_id_sql(),
        &[&store_id, &order_id, &fulfillment_id],
    )
    .await?;
    match row {
        Some(row) => decode_fulfillment(&row),
        None => Err(DomainError::FulfillmentNotFound(fulfillment_id.to_owned()).into()),
    }
}

/// A fulfillment from the JSON text of [`order_json`] in the row's first column.
fn decode_fulfillment(row: &Row) -> PgResult<Fulfillment> {
    serde_json::from_str(row.get::<_, &str>(0))
        .map_err(|e| StoreError::internal("decoding a fulfillment built by PostgreSQL", e).into())
}

/// Whether the store has a fulfillment with this id (on any order).
async fn fulfillment_exists(tx: &Transaction<'_>, store_id: &str, id: &str) -> PgResult<bool> {
    Ok(query_opt(
        tx,
        "looking up a fulfillment",
        "SELECT 1 FROM fulfillments WHERE store_id = $1 AND id = $2",
        &[&store_id, &id],
    )
    .await?
    .is_some())
}

async fn load_ledger(tx: &Transaction<'_>, order_id: &str) -> PgResult<Vec<LedgerLine>> {
    let rows = query(
        tx,
        "loading the ledger",
        "SELECT id, quantity, fulfilled FROM line_items WHERE order_id = $1",
        &[&order_id],
    )
    .await?;
    ledger_lines(&rows)
}

/// Ledger lines from rows whose first columns are a line's id, quantity and fulfilled units.
fn ledger_lines(rows: &[Row]) -> PgResult<Vec<LedgerLine>> {
    rows.iter()
        .map(|r| {
            Ok(LedgerLine {
                id: r.get(0),
                ordered: stored_u32("decoding a stored quantity", r.get(1))?,
                fulfilled: stored_u32("decoding a stored quantity", r.get(2))?,
            })
        })
        .collect()
}

/// The per-line counters of the ledger: units in live fulfillments (at most the ordered
/// quantity) and units in live returns (at most the fulfilled units).
#[derive(Debug, Clone, Copy)]
pub(super) enum LineCounter {
    Fulfilled,
    Returned,
}

/// Moves a line counter by each of `units`. Reserving checks the counter's bound in the
/// statement itself, so even without the prior check no row can exceed it; a line the update
/// does not match is an internal error (the caller checked the units under the order's lock).
pub(super) async fn move_counter(
    tx: &Transaction<'_>,
    order_id: &str,
    counter: LineCounter,
    units: &[(&str, u32)],
    effect: LedgerEffect,
) -> PgResult<()> {
    let sql = match (counter, effect) {
        (_, LedgerEffect::None) => return Ok(()),
        (LineCounter::Fulfilled, LedgerEffect::Reserve) => {
            "UPDATE line_items SET fulfilled = fulfilled + $3
             WHERE order_id = $1 AND id = $2 AND fulfilled + $3 <= quantity"
        }
        (LineCounter::Fulfilled, LedgerEffect::Release) => {
            "UPDATE line_items SET fulfilled = fulfilled - $3
             WHERE order_id = $1 AND id = $2 AND fulfilled >= $3"
        }
        (LineCounter::Returned, LedgerEffect::Reserve) => {
            "UPDATE line_items SET returned = returned + $3
             WHERE order_id = $1 AND id = $2 AND returned + $3 <= fulfilled"
        }
        (LineCounter::Returned, LedgerEffect::Release) => {
            "UPDATE line_items SET returned = returned - $3
             WHERE order_id = $1 AND id = $2 AND returned >= $3"
        }
    };
    for &(line_id, quantity) in units {
        let quantity = i32::try_from(quantity).unwrap_or(i32::MAX);
        let changed = execute(
            tx,
            "updating the ledger",
            sql,
            &[&order_id, &line_id, &quantity],
        )
        .await?;
        if changed != 1 {
            return Err(StoreError::Internal(format!(
                "{counter:?} update for line '{line_id}' matched {changed} rows"
            ))
            .into());
        }
    }
    Ok(())
}

/// Moves fulfilled units in the ledger.
async fn move_units(
    tx: &Transaction<'_>,
    order_id: &str,
    lines: &[(String, Quantity)],
    effect: LedgerEffect,
) -> PgResult<()> {
    let units: Vec<(&str, u32)> = lines.iter().map(|(id, q)| (id.as_str(), q.get())).collect();
    move_counter(tx, order_id, LineCounter::Fulfilled, &units, effect).await
}

async fn insert_history(
    tx: &Transaction<'_>,
    store_id: &str,
    fulfillment_id: &str,
    entry: &HistoryEntry,
    now: Timestamp,
) -> PgResult<()> {
    let step = history_step(tx, store_id, fulfillment_id, entry, now).await?;
    let rows = run_steps(tx, vec![step]).await?;
    check_each_wrote_one(fulfillment_id, &rows)?;
    // No event follows every such entry (a carrier's older scan is only appended), so the
    // order's kept snapshot no longer holds: reads build the order until its next event.
    execute(
        tx,
        "marking an order's snapshot stale",
        "UPDATE orders SET snapshot = NULL
         WHERE id = (SELECT order_id FROM fulfillments WHERE store_id = $1 AND id = $2)",
        &[&store_id, &fulfillment_id],
    )
    .await?;
    Ok(())
}

/// Runs statements now, together (see [`LastStatement`]); the rows each returned.
async fn run_steps(tx: &Transaction<'_>, steps: Vec<PipelinedStep>) -> PgResult<Vec<Vec<Row>>> {
    LastStatement {
        steps,
        value: Box::new(Ok),
    }
    .run(tx)
    .await
}

/// Writes a fulfillment's lines and packages.
async fn insert_contents(
    tx: &Transaction<'_>,
    store_id: &str,
    fulfillment_id: &str,
    lines: &[(String, Quantity)],
    packages: &[Package],
) -> PgResult<()> {
    for (position, (line_id, quantity)) in lines.iter().enumerate() {
        execute(
            tx,
            "inserting a fulfillment line",
            "INSERT INTO fulfillment_lines (store_id, fulfillment_id, line_item_id, position, quantity)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &store_id,
                &fulfillment_id,
                line_id,
                &(position as i32),
                &qty(quantity),
            ],
        )
        .await?;
    }
    for (position, p) in packages.iter().enumerate() {
        execute(
            tx,
            "inserting a package",
            "INSERT INTO packages (store_id, fulfillment_id, position, carrier, tracking_number, tracking_url)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &store_id,
                &fulfillment_id,
                &(position as i32),
                &p.carrier,
                &p.tracking_number,
                &p.tracking_url,
            ],
        )
        .await?;
    }
    Ok(())
}

/// What the first step of a creation found when the request named the order by its external
/// id, the order's row locked: the row (its id and kept unit counts) and its ledger rows.
pub(super) struct LockedOrder {
    order: Row,
    ledger: Vec<Row>,
}

/// The order's id and the unit counts its row keeps; `{}` is the condition naming the order.
const LOCKED_ORDER_SQL: &str = "SELECT id, units_in_fulfillment, units_shipped, units_delivered
     FROM orders WHERE {} FOR UPDATE";

/// The first step of a creation: the lock (which also reads the unit counts kept on the
/// order's row), then the ledger, in one round trip. The server runs the two statements in the
/// order they were sent. A `FOR UPDATE` that waits for another transaction returns the row as
/// that transaction left it; the ledger read takes its snapshot when it starts, after the lock
/// is granted, so it sees the lines as the lock left them too. (Reading the lines inside the
/// locking statement would not: it keeps the snapshot it began with.) `None` when `order` is
/// not an external id of the store.
pub(super) async fn lock_for_fulfillment(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
) -> PgResult<Option<LockedOrder>> {
    Ok(lock_and_read(tx, store_id, order, None)
        .await?
        .map(|(locked, _)| locked))
}

/// The lock and the ledger of [`lock_for_fulfillment`], and with `fulfillment_id` that
/// fulfillment of the order (as JSON, if the order has it) read after them, all sent together.
/// Every statement is prepared before any is sent, so they reach the server in this order.
async fn lock_and_read(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    fulfillment_id: Option<&str>,
) -> PgResult<Option<(LockedOrder, Option<Row>)>> {
    static LOCK_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        LOCKED_ORDER_SQL.replace("{}", "store_id = $1 AND external_id = $2")
    });
    let lock = prepare(tx, "looking up an order", &LOCK_SQL).await?;
    let ledger = prepare(tx, "loading the ledger", ledger_by_external_id_sql()).await?;
    let fulfillment = match fulfillment_id {
        Some(_) => Some(
            prepare(
                tx,
                "loading a fulfillment",
                order_json::fulfillment_by_external_order_sql(),
            )
            .await?,
        ),
        None => None,
    };
    let params: [&(dyn ToSql + Sync); 2] = [&store_id, &order.as_str()];
    let map = |what: &'static str| move |e| map_err(what, e);
    let (locked, ledger, fulfillment) = futures_util::try_join!(
        async {
            tx.query_opt(&lock, &params)
                .await
                .map_err(map("looking up an order"))
        },
        async {
            tx.query(&ledger, &params)
                .await
                .map_err(map("loading the ledger"))
        },
        async {
            match (&fulfillment, fulfillment_id) {
                (Some(statement), Some(id)) => tx
                    .query_opt(statement, &[&store_id, &order.as_str(), &id])
                    .await
                    .map_err(map("loading a fulfillment")),
                _ => Ok(None),
            }
        },
    )?;
    Ok(locked.map(|order| (LockedOrder { order, ledger }, fulfillment)))
}

/// [`lock_for_fulfillment`] for an order named by its internal id, whose row
/// [`resolve_order`] has locked already.
async fn lock_by_id_for_fulfillment(tx: &Transaction<'_>, order_id: &str) -> PgResult<LockedOrder> {
    static LOCK_SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| LOCKED_ORDER_SQL.replace("{}", "id = $1"));
    let params: [&(dyn ToSql + Sync); 1] = [&order_id];
    let (order, ledger) = futures_util::try_join!(
        query_one(tx, "looking up an order", &LOCK_SQL, &params),
        query(tx, "loading the ledger", ledger_by_id_sql(), &params),
    )?;
    Ok(LockedOrder { order, ledger })
}

/// The second step of a creation, after [`lock_for_fulfillment`]: checks the request against
/// the ledger and leaves the one statement that writes it. An order named by its internal id
/// (or not found) is looked up and, if found, written here.
pub(super) async fn plan_fulfillment(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    new: &NewFulfillment,
    now: Timestamp,
    locked: Option<LockedOrder>,
) -> PgResult<Finish<Fulfillment>> {
    match locked {
        Some(locked) => fulfillment_write(store_id, new, now, locked, tx).await,
        // Not an external id: an internal one, or no order at all.
        None => {
            let (order_id, _) = resolve_order(tx, store_id, order, true).await?;
            insert_fulfillment_locked(tx, store_id, &order_id, new, now)
                .await
                .map(Finish::Value)
        }
    }
}

/// Creates a fulfillment on an order named by its external or internal id.
pub(super) async fn insert_fulfillment(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    new: &NewFulfillment,
    now: Timestamp,
) -> PgResult<Fulfillment> {
    let locked = lock_for_fulfillment(tx, store_id, order).await?;
    plan_fulfillment(tx, store_id, order, new, now, locked)
        .await?
        .run(tx)
        .await
}

/// Creates a fulfillment on an order whose row this transaction has locked: its kept unit
/// counts with the ledger, then the writes ([`fulfillment_write`]), whatever the number of
/// lines and packages.
async fn insert_fulfillment_locked(
    tx: &Transaction<'_>,
    store_id: &str,
    order_id: &str,
    new: &NewFulfillment,
    now: Timestamp,
) -> PgResult<Fulfillment> {
    let locked = lock_by_id_for_fulfillment(tx, order_id).await?;
    fulfillment_write(store_id, new, now, locked, tx)
        .await?
        .run(tx)
        .await
}

/// The statement that writes a new fulfillment on a locked order whose ledger has been
/// checked: the fulfillment, the reserved units (for a live status), its lines, packages and
/// first history entry. Nothing is written when the fulfillment's id is taken. It returns how
/// many fulfillments (0 or 1) and ledger lines it wrote. The event ([`event_step`]) follows it
/// in the same round trip, so that the event's snapshot sees these rows.
///
/// One statement instead of one per row: each statement costs the server a round of parsing
/// messages, executor start-up and a snapshot, which outweighs these small writes.
fn create_fulfillment_sql() -> &'static str {
    "WITH f AS (
                 INSERT INTO fulfillments (store_id, id, order_id, created_at, updated_at, status,
                                           status_label, estimated_delivery, delivered_at,
                                           last_tracking_at)
                 VALUES ($1::text, $2::text, $3::text, $4::bigint, $4::bigint, $5::text,
                         $6::text, $7::text, $8::bigint, $9::bigint)
                 ON CONFLICT (store_id, id) DO NOTHING
                 RETURNING id),
             reserved AS (
                 UPDATE line_items li SET fulfilled = li.fulfilled + u.quantity
                 FROM unnest($10::text[], $11::int4[]) AS u (id, quantity)
                 WHERE $12::bool AND EXISTS (SELECT 1 FROM f)
                   AND li.order_id = $3::text AND li.id = u.id
                   AND li.fulfilled + u.quantity <= li.quantity
                 RETURNING 1),
             lines AS (
                 INSERT INTO fulfillment_lines (store_id, fulfillment_id, line_item_id, position,
                                                quantity)
                 SELECT $1::text, f.id, u.id, (u.n - 1)::int4, u.quantity
                 FROM f, unnest($10::text[], $11::int4[]) WITH ORDINALITY AS u (id, quantity, n)),
             packages_written AS (
                 INSERT INTO packages (store_id, fulfillment_id, position, carrier,
                                       tracking_number, tracking_url)
                 SELECT $1::text, f.id, (p.n - 1)::int4, p.carrier, p.number, p.url
                 FROM f, unnest($13::text[], $14::text[], $15::text[])
                         WITH ORDINALITY AS p (carrier, number, url, n)),
             history AS (
                 INSERT INTO tracking_events (store_id, fulfillment_id, status, message,
                                              happened_at, location, received_at)
                 SELECT $1::text, f.id, $16::text, $17::text, $9::bigint, $18::jsonb, $4::bigint
                 FROM f)
             SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM reserved)"
}

/// Checks a new fulfillment against the ledger of its locked order and makes the one statement
/// that writes it, with the derived status, the unit counts and the sequenced outbox event,
/// whatever the number of lines and packages.
async fn fulfillment_write(
    store_id: &str,
    new: &NewFulfillment,
    now: Timestamp,
    locked: LockedOrder,
    tx: &Transaction<'_>,
) -> PgResult<Finish<Fulfillment>> {
    let LockedOrder {
        order,
        ledger: rows,
    } = locked;
    let order_id: &str = order.get(0);
    let ledger_lines = ledger_lines(&rows)?;
    if let Err(refused) = ledger::check_allocation(&ledger_lines, &new.lines) {
        // A retry of a fulfillment that was created is a duplicate, whatever the ledger says
        // now (its own units may be the ones that are gone). Only refusals pay for the look-up.
        if let Some(id) = &new.id
            && fulfillment_exists(tx, store_id, id).await?
        {
            return Err(DomainError::DuplicateFulfillment(id.clone()).into());
        }
        return Err(refused.into());
    }
    let statement = prepare(tx, "writing a fulfillment", create_fulfillment_sql()).await?;

    let id = new.id_or_generate();
    let first = new.first_entry(now);
    let delivered_at = new.delivered_at(now);
    let now_ms = time::to_millis(now);
    // The counts with this fulfillment's units added, as a recount would find them after the
    // writes: the order's derived status and counts are written by the same statement.
    let mut counts = stored_unit_counts(&order, &rows);
    counts.add_fulfillment(
        new.status,
        new.lines.iter().map(|(_, q)| u64::from(q.get())).sum(),
    );
    let (line_ids, line_quantities): (Vec<String>, Vec<i32>) = new
        .lines
        .iter()
        .map(|(line_id, quantity)| (line_id.clone(), qty(quantity)))
        .unzip();
    let carriers: Vec<Option<String>> = new.packages.iter().map(|p| p.carrier.clone()).collect();
    let numbers: Vec<String> = new
        .packages
        .iter()
        .map(|p| p.tracking_number.clone())
        .collect();
    let urls: Vec<Option<String>> = new
        .packages
        .iter()
        .map(|p| p.tracking_url.clone())
        .collect();
    let live = new.status.is_live();
    let details: HashMap<&str, &Row> = rows.iter().map(|r| (r.get::<_, &str>(0), r)).collect();
    let detail = |line_id: &str, column: usize| -> Option<String> {
        details.get(line_id).and_then(|r| r.get(column))
    };
    let fulfillment = Fulfillment {
        order_id: parse_uuid(order_id)?,
        created_at: now,
        updated_at: now,
        status: new.status,
        status_label: new.status_label.clone(),
        packages: new.packages.clone(),
        estimated_delivery: new.estimated_delivery,
        delivered_at,
        lines: new
            .lines
            .iter()
            .map(|(line_id, quantity)| FulfillmentLine {
                title: details
                    .get(line_id.as_str())
                    .map(|r| r.get(3))
                    .unwrap_or_default(),
                product_id: detail(line_id, 4),
                variant_id: detail(line_id, 5),
                sku: detail(line_id, 6),
                line_item_id: line_id.clone(),
                quantity: quantity.get(),
            })
            .collect(),
        history: vec![first.clone()],
        id: id.clone(),
    };
    let params: Vec<Param> = vec![
        Box::new(store_id.to_owned()),
        Box::new(id.clone()),
        Box::new(order_id.to_owned()),
        Box::new(now_ms),
        Box::new(new.status.as_str()),
        Box::new(new.status_label.clone()),
        Box::new(new.estimated_delivery.map(time::format_date)),
        Box::new(delivered_at.map(time::to_millis)),
        Box::new(time::to_millis(first.datetime)),
        Box::new(line_ids),
        Box::new(line_quantities),
        Box::new(live),
        Box::new(carriers),
        Box::new(numbers),
        Box::new(urls),
        Box::new(first.status.clone()),
        Box::new(first.message.clone()),
        Box::new(first.location.clone().map(Json)),
    ];
    let effect = if live {
        LedgerEffect::Reserve
    } else {
        LedgerEffect::None
    };
    let event = event_step(
        tx,
        store_id,
        order_id,
        Event {
            kind: "fulfillment.created",
            fulfillment_id: Some(&id),
            data: EventData {
                ledger: LedgerChange::of(effect, &new.lines),
                ..EventData::status(new.status.as_str(), None)
            },
            trigger: Some(new.status.as_str()),
            touched: Touched::OneFulfillment,
        },
        counts,
        now,
    )
    .await?;

    let expected_reserved = if live { new.lines.len() as i64 } else { 0 };
    let order_id = order_id.to_owned();
    Ok(Finish::Statement(LastStatement {
        steps: vec![
            PipelinedStep {
                what: "writing a fulfillment",
                statement,
                params,
            },
            event,
        ],
        value: Box::new(move |rows: Vec<Vec<Row>>| {
            let written = rows.first().and_then(|r| r.first()).ok_or_else(|| {
                StoreError::Internal("writing a fulfillment returned no row".into())
            })?;
            let (inserted, reserved): (i64, i64) = (written.get(0), written.get(1));
            if inserted == 0 {
                return Err(DomainError::DuplicateFulfillment(fulfillment.id).into());
            }
            if reserved != expected_reserved {
                return Err(StoreError::Internal(format!(
                    "writing fulfillment '{}' reserved {reserved} of {expected_reserved} lines",
                    fulfillment.id
                ))
                .into());
            }
            check_each_wrote_one(&order_id, rows.get(1..).unwrap_or(&[]))?;
            Ok(fulfillment)
        }),
    }))
}

/// What a status update or a replacement sets on a fulfillment's row.
struct FulfillmentState<'a> {
    status: ShipmentStatus,
    status_label: &'a Option<String>,
    estimated_delivery: Option<chrono::NaiveDate>,
    delivered_at: Option<Timestamp>,
    /// A carrier status's time: moves `last_tracking_at` forward.
    tracked_at: Option<Timestamp>,
    /// The fulfillment's exception reason after the change.
    exception_reason: Option<ExceptionReason>,
}

async fn update_fulfillment_row(
    tx: &Transaction<'_>,
    store_id: &str,
    fulfillment_id: &str,
    state: FulfillmentState<'_>,
    now: Timestamp,
) -> PgResult<()> {
    execute(
        tx,
        "updating a fulfillment",
        "UPDATE fulfillments SET status = $3, status_label = $4, estimated_delivery = $5,
                delivered_at = $6, updated_at = $7,
                last_tracking_at = GREATEST(last_tracking_at, $8), exception_reason = $9
         WHERE store_id = $1 AND id = $2",
        &[
            &store_id,
            &fulfillment_id,
            &state.status.as_str(),
            state.status_label,
            &state.estimated_delivery.map(time::format_date),
            &state.delivered_at.map(time::to_millis),
            &time::to_millis(now),
            &state.tracked_at.map(time::to_millis),
            &state.exception_reason.map(ExceptionReason::as_str),
        ],
    )
    .await?;
    Ok(())
}

fn quantities(f: &Fulfillment) -> PgResult<Vec<(String, Quantity)>> {
    f.lines
        .iter()
        .map(|l| {
            Quantity::new("quantity", i64::from(l.quantity))
                .map(|q| (l.line_item_id.clone(), q))
                .map_err(|e| StoreError::internal("decoding a stored quantity", e).into())
        })
        .collect()
}

/// What the first step of a status update found when the request named the order by its
/// external id, the order's row locked: what a creation's first step finds, and the
/// fulfillment, if the order has it.
pub(super) struct LockedStatus {
    locked: LockedOrder,
    fulfillment: Option<Fulfillment>,
}

/// The first step of a status update: the lock (which also reads the unit counts kept on the
/// order's row), the ledger and the fulfillment, in one round trip. As in
/// [`lock_for_fulfillment`], the reads after the lock take their snapshots once it is granted.
/// `None` when `order` is not an external id of the store.
pub(super) async fn lock_for_status(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    fulfillment_id: &str,
) -> PgResult<Option<LockedStatus>> {
    let Some((locked, fulfillment)) =
        lock_and_read(tx, store_id, order, Some(fulfillment_id)).await?
    else {
        return Ok(None);
    };
    Ok(Some(LockedStatus {
        locked,
        fulfillment: fulfillment.as_ref().map(decode_fulfillment).transpose()?,
    }))
}

/// The second step of a status update, after [`lock_for_status`]: applies the update to the
/// fulfillment and leaves the statements that write it (sent together, with the next request's
/// first step in a group). An order named by its internal id (or not found) is looked up and,
/// if found, written here.
pub(super) async fn plan_status_update(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    fulfillment_id: &str,
    update: &StatusUpdate,
    now: Timestamp,
    locked: Option<LockedStatus>,
) -> PgResult<Finish<Fulfillment>> {
    let Some(locked) = locked else {
        return apply_status_update(tx, store_id, order, fulfillment_id, update, now)
            .await
            .map(Finish::Value);
    };
    let current = locked
        .fulfillment
        .ok_or_else(|| DomainError::FulfillmentNotFound(fulfillment_id.to_owned()))?;
    let LockedOrder { order, ledger } = &locked.locked;
    let order_id: String = order.get(0);
    let counts = stored_unit_counts(order, ledger);
    let ledger = ledger_lines(ledger)?;
    let (change, steps) = status_steps(
        tx,
        store_id,
        &order_id,
        &current,
        update,
        now,
        counts,
        Some(&ledger),
    )
    .await?;
    Ok(Finish::Statement(LastStatement {
        steps,
        value: Box::new(move |rows| {
            check_each_wrote_one(&order_id, &rows)?;
            Ok(after_update(current, change, now))
        }),
    }))
}

/// Applies a status update to a fulfillment of an order named either way, in the caller's
/// transaction.
pub(super) async fn apply_status_update(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    fulfillment_id: &str,
    update: &StatusUpdate,
    now: Timestamp,
) -> PgResult<Fulfillment> {
    let (order_id, _) = resolve_order(tx, store_id, order, true).await?;
    let current = load_one_fulfillment(tx, store_id, &order_id, fulfillment_id).await?;
    let change = record_status_update(tx, store_id, &order_id, &current, update, now).await?;
    Ok(after_update(current, change, now))
}

/// `current` as [`record_status_update`] left it with `change`, without reading it again (two
/// round trips, with the order's lock held): the row's new columns, and the history with the
/// new entries where the stored order (time, then insertion) puts them. Instants need no
/// cutting: the core holds them at the milliseconds the columns keep.
/// `a_status_update_answers_what_a_read_then_finds` (crates/store/tests) compares it with a
/// fresh read.
fn after_update(mut current: Fulfillment, change: StatusChange, now: Timestamp) -> Fulfillment {
    current.status = change.status;
    current.status_label = change.status_label;
    current.estimated_delivery = change.estimated_delivery;
    current.delivered_at = change.delivered_at;
    current.updated_at = now;
    current
        .history
        .extend(std::iter::once(change.entry).chain(change.follow_up));
    // Stable: entries of one millisecond keep their insertion order, as their ids do.
    current.history.sort_by_key(|entry| entry.datetime);
    current
}

/// Records `update` on `current` (of the order `order_id`, whose row is locked): ledger,
/// fulfillment row, history, outbox event with automation runs, and the `arriving_early` it
/// may raise.
async fn record_status_update(
    tx: &Transaction<'_>,
    store_id: &str,
    order_id: &str,
    current: &Fulfillment,
    update: &StatusUpdate,
    now: Timestamp,
) -> PgResult<StatusChange> {
    let counts = count_units(tx, order_id).await?;
    let (change, steps) =
        status_steps(tx, store_id, order_id, current, update, now, counts, None).await?;
    let rows = run_steps(tx, steps).await?;
    check_each_wrote_one(order_id, &rows)?;
    Ok(change)
}

/// The change `update` makes to `current` (of the order `order_id`, whose row is locked and
/// whose units are `counts` before it), and the statements that write it: the fulfillment's
/// row with its first history entry, then its event; for an event the change raises too
/// (`arriving_early`), that entry, then its event. Each event's snapshot sees the entries
/// before it. A move on the ledger (a cancellation, or a cancelled fulfillment brought back),
/// which is rare, is written here, with the checks it needs; `ledger` is the order's ledger
/// when the caller has read it.
#[allow(clippy::too_many_arguments)]
async fn status_steps(
    tx: &Transaction<'_>,
    store_id: &str,
    order_id: &str,
    current: &Fulfillment,
    update: &StatusUpdate,
    now: Timestamp,
    mut counts: UnitCounts,
    ledger: Option<&[LedgerLine]>,
) -> PgResult<(StatusChange, Vec<PipelinedStep>)> {
    let fulfillment_id = current.id.as_str();
    let change = update.apply(current, now)?;
    let units = quantities(current)?;
    if change.ledger == LedgerEffect::Reserve {
        match ledger {
            Some(lines) => ledger::check_allocation(lines, &units)?,
            None => ledger::check_allocation(&load_ledger(tx, order_id).await?, &units)?,
        }
    }
    move_units(tx, order_id, &units, change.ledger).await?;
    if change.ledger == LedgerEffect::Release {
        super::returns::check_fulfillment_change(tx, order_id, fulfillment_id, "cancelled").await?;
    }
    let total: u64 = units.iter().map(|(_, q)| u64::from(q.get())).sum();
    counts.remove_fulfillment(current.status, total);
    counts.add_fulfillment(change.status, total);

    let mut steps = vec![status_write_step(tx, store_id, fulfillment_id, &change, now).await?];
    let entries = std::iter::once(&change.entry).chain(change.follow_up.as_ref());
    for (i, entry) in entries.enumerate() {
        if i > 0 {
            steps.push(history_step(tx, store_id, fulfillment_id, entry, now).await?);
        }
        let kind = match (i, update.change) {
            (0, StatusOrEvent::Status(_)) => "fulfillment.updated",
            _ => "fulfillment.event",
        };
        // The first entry reports the change from the current status (and moves the ledger);
        // a follow-up event happens to the status the change left.
        let (previous, ledger) = if i == 0 {
            (current.status, LedgerChange::of(change.ledger, &units))
        } else {
            (change.status, None)
        };
        let event = Event {
            kind,
            fulfillment_id: Some(fulfillment_id),
            data: EventData {
                ledger,
                reason: entry.reason.map(|r| r.as_str().to_owned()),
                ..EventData::status(&entry.status, Some(previous.as_str()))
            },
            trigger: Some(&entry.status),
            touched: Touched::OneFulfillment,
        };
        steps.push(event_step(tx, store_id, order_id, event, counts, now).await?);
    }
    Ok((change, steps))
}

/// Checks that each statement of a pipeline wrote its one row (each returns that count);
/// `subject` names what the change was to, for the error.
fn check_each_wrote_one(subject: &str, rows: &[Vec<Row>]) -> PgResult<()> {
    for (i, rows) in rows.iter().enumerate() {
        let written: i64 = rows.first().map(|r| r.get(0)).unwrap_or(0);
        if written != 1 {
            return Err(StoreError::Internal(format!(
                "statement {i} of a change to {subject} wrote {written} rows"
            ))
            .into());
        }
    }
    Ok(())
}

/// The history entry's columns after `store_id`, `fulfillment_id` (`$1`, `$2`): status,
/// message, time, location, reason, then the time it was received.
fn history_params(
    store_id: &str,
    fulfillment_id: &str,
    entry: &HistoryEntry,
    now: Timestamp,
) -> Vec<Param> {
    vec![
        Box::new(store_id.to_owned()),
        Box::new(fulfillment_id.to_owned()),
        Box::new(entry.status.clone()),
        Box::new(entry.message.clone()),
        Box::new(time::to_millis(entry.datetime)),
        Box::new(entry.location.clone().map(Json)),
        Box::new(entry.reason.map(ExceptionReason::as_str)),
        Box::new(time::to_millis(now)),
    ]
}

/// The statement that writes a history entry ([`history_params`]) and returns 1.
async fn history_step(
    tx: &Transaction<'_>,
    store_id: &str,
    fulfillment_id: &str,
    entry: &HistoryEntry,
    now: Timestamp,
) -> PgResult<PipelinedStep> {
    const SQL: &str = "WITH written AS (
             INSERT INTO tracking_events (store_id, fulfillment_id, status, message, happened_at,
                                          location, reason, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING 1)
         SELECT count(*) FROM written";
    Ok(PipelinedStep {
        what: "inserting a tracking event",
        statement: prepare(tx, "inserting a tracking event", SQL).await?,
        params: history_params(store_id, fulfillment_id, entry, now),
    })
}

/// The statement that writes a status change on the fulfillment's row and its first history
/// entry, and returns how many entries it wrote (1).
async fn status_write_step(
    tx: &Transaction<'_>,
    store_id: &str,
    fulfillment_id: &str,
    change: &StatusChange,
    now: Timestamp,
) -> PgResult<PipelinedStep> {
    const SQL: &str = "WITH updated AS (
             UPDATE fulfillments SET status = $9, status_label = $10, estimated_delivery = $11,
                    delivered_at = $12, updated_at = $8,
                    last_tracking_at = GREATEST(last_tracking_at, $13), exception_reason = $14
             WHERE store_id = $1 AND id = $2
             RETURNING 1),
         written AS (
             INSERT INTO tracking_events (store_id, fulfillment_id, status, message, happened_at,
                                          location, reason, received_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM updated
             RETURNING 1)
         SELECT count(*) FROM written";
    let tracked_at = change.is_tracking_update().then_some(change.entry.datetime);
    let mut params = history_params(store_id, fulfillment_id, &change.entry, now);
    params.extend([
        Box::new(change.status.as_str()) as Param,
        Box::new(change.status_label.clone()),
        Box::new(change.estimated_delivery.map(time::format_date)),
        Box::new(change.delivered_at.map(time::to_millis)),
        Box::new(tracked_at.map(time::to_millis)),
        Box::new(change.exception_reason.map(ExceptionReason::as_str)),
    ]);
    Ok(PipelinedStep {
        what: "updating a fulfillment",
        statement: prepare(tx, "updating a fulfillment", SQL).await?,
        params,
    })
}

/// Replaces a fulfillment's packages.
pub(super) async fn update_tracking(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    fulfillment_id: &str,
    packages: &[Package],
    now: Timestamp,
) -> PgResult<Fulfillment> {
    let (order_id, _) = resolve_order(tx, store_id, order, true).await?;
    load_one_fulfillment(tx, store_id, &order_id, fulfillment_id).await?;
    execute(
        tx,
        "clearing a fulfillment's packages",
        "DELETE FROM packages WHERE store_id = $1 AND fulfillment_id = $2",
        &[&store_id, &fulfillment_id],
    )
    .await?;
    insert_contents(tx, store_id, fulfillment_id, &[], packages).await?;
    execute(
        tx,
        "updating a fulfillment",
        "UPDATE fulfillments SET updated_at = $3 WHERE store_id = $1 AND id = $2",
        &[&store_id, &fulfillment_id, &time::to_millis(now)],
    )
    .await?;
    record_event(
        tx,
        store_id,
        &order_id,
        Event {
            kind: "fulfillment.updated",
            fulfillment_id: Some(fulfillment_id),
            data: EventData {
                tracking: Some(true),
                ..EventData::default()
            },
            trigger: None,
            touched: Touched::OneFulfillment,
        },
        now,
    )
    .await?;
    load_one_fulfillment(tx, store_id, &order_id, fulfillment_id).await
}

/// Records a carrier's report on the fulfillment with a package `tracking_number`.
pub(super) async fn apply_carrier_report(
    tx: &Transaction<'_>,
    store_id: &str,
    tracking_number: &str,
    carrier: Option<&str>,
    report: &CarrierReport,
    now: Timestamp,
) -> PgResult<Option<Fulfillment>> {
    let rows = query(
        tx,
        "finding a package by tracking number",
        "SELECT f.order_id, f.id, p.carrier FROM packages p
         JOIN fulfillments f ON f.store_id = p.store_id AND f.id = p.fulfillment_id
         WHERE p.store_id = $1 AND p.tracking_number = $2
         ORDER BY f.created_at DESC, f.id",
        &[&store_id, &tracking_number],
    )
    .await?;
    let matches: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let Some((order_id, fulfillment_id)) = pick_by_carrier(&matches, carrier) else {
        return Ok(None);
    };
    // Lock the order first, as every write does.
    lock_order(tx, &order_id).await?;
    let mut current = load_one_fulfillment(tx, store_id, &order_id, &fulfillment_id).await?;
    for step in carrier_update::plan(&current, report) {
        match step {
            Step::Append(entry) => {
                insert_history(tx, store_id, &fulfillment_id, &entry, now).await?;
            }
            Step::Update(update) => {
                record_status_update(tx, store_id, &order_id, &current, &update, now).await?;
                current = load_one_fulfillment(tx, store_id, &order_id, &fulfillment_id).await?;
            }
        }
    }
    load_one_fulfillment(tx, store_id, &order_id, &fulfillment_id)
        .await
        .map(Some)
}

/// Raises the time-based events due at `now`, at most `limit`.
pub(super) async fn raise_due_events(
    tx: &Transaction<'_>,
    now: Timestamp,
    limit: u32,
) -> PgResult<Vec<RaisedEvent>> {
    let rows = query(
        tx,
        "finding due shipment events",
        "SELECT f.store_id, f.order_id, f.id, COALESCE(s.stall_after_secs, 259200)
         FROM fulfillments f LEFT JOIN store_settings s ON s.store_id = f.store_id
         WHERE f.status = 'in_transit'
           AND f.last_tracking_at <= $1 - LEAST(259200,
                 (SELECT MIN(stall_after_secs) FROM store_settings)) * 1000
           AND f.last_tracking_at <= $1 - COALESCE(s.stall_after_secs, 259200) * 1000
           AND NOT EXISTS (SELECT 1 FROM tracking_events e
                           WHERE e.store_id = f.store_id AND e.fulfillment_id = f.id
                             AND e.status = 'stalled_in_transit')
         UNION
         SELECT f.store_id, f.order_id, f.id, COALESCE(s.stall_after_secs, 259200)
         FROM fulfillments f LEFT JOIN store_settings s ON s.store_id = f.store_id
         WHERE f.estimated_delivery IS NOT NULL
           AND f.status IN ('pre_transit', 'unknown', 'in_transit', 'out_for_delivery')
           AND f.estimated_delivery < $2
           AND NOT EXISTS (SELECT 1 FROM tracking_events e
                           WHERE e.store_id = f.store_id AND e.fulfillment_id = f.id
                             AND e.status = 'delayed')
         ORDER BY 2, 3
         LIMIT $3",
        &[
            &time::to_millis(now),
            &time::format_date(now.date_naive()),
            &i64::from(limit),
        ],
    )
    .await?;
    let mut raised = Vec::new();
    for row in rows {
        let (store_id, order_id, fulfillment_id, stall_secs): (String, String, String, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        // Lock the order, then decide on what is stored now.
        lock_order(tx, &order_id).await?;
        let mut current = load_one_fulfillment(tx, &store_id, &order_id, &fulfillment_id).await?;
        let stall_after = chrono::Duration::seconds(stall_secs);
        for event in time_events::due_events(&current, stall_after, now) {
            let mut update = StatusUpdate::new(StatusOrEvent::Event(event));
            update.datetime = Some(now);
            record_status_update(tx, &store_id, &order_id, &current, &update, now).await?;
            current = load_one_fulfillment(tx, &store_id, &order_id, &fulfillment_id).await?;
            raised.push(RaisedEvent {
                store_id: store_id.clone(),
                order_id: order_id.clone(),
                fulfillment_id: fulfillment_id.clone(),
                event,
            });
        }
    }
    Ok(raised)
}

pub(super) async fn delete_order(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    now: Timestamp,
) -> PgResult<Order> {
    let (order_id, seq) = resolve_order(tx, store_id, order, true).await?;
    let existing = load_order_by_id(tx, store_id, &order_id).await?;
    insert_outbox(
        tx,
        store_id,
        &order_id,
        seq + 1,
        "order.deleted",
        None,
        &EventData {
            order_id: Some(existing.external_id.clone()),
            previous_order_status: Some(order_status::derive(&existing).as_str().to_owned()),
            order: Some(existing.clone()),
            ..EventData::default()
        },
        now,
    )
    .await?;
    execute(
        tx,
        "deleting an order",
        "DELETE FROM orders WHERE id = $1",
        &[&order_id],
    )
    .await?;
    Ok(existing)
}

/// Creates a fulfillment, or replaces the contents of the one with the same id on this order.
pub(super) async fn upsert_fulfillment(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    new: &NewFulfillment,
    now: Timestamp,
) -> PgResult<(Fulfillment, bool)> {
    let (order_id, _) = resolve_order(tx, store_id, order, true).await?;
    let Some(id) = new.id.clone() else {
        return insert_fulfillment_locked(tx, store_id, &order_id, new, now)
            .await
            .map(|f| (f, true));
    };
    let owner = query_opt(
        tx,
        "looking up a fulfillment",
        "SELECT order_id FROM fulfillments WHERE store_id = $1 AND id = $2",
        &[&store_id, &id],
    )
    .await?
    .map(|r| r.get::<_, String>(0));
    match owner {
        None => {
            return insert_fulfillment_locked(tx, store_id, &order_id, new, now)
                .await
                .map(|f| (f, true));
        }
        Some(owner) if owner != order_id => {
            return Err(DomainError::DuplicateFulfillment(id).into());
        }
        Some(_) => {}
    }
    let current = load_one_fulfillment(tx, store_id, &order_id, &id).await?;
    if current.status.is_live() {
        move_units(tx, &order_id, &quantities(&current)?, LedgerEffect::Release).await?;
    }
    if new.status.is_live() {
        ledger::check_allocation(&load_ledger(tx, &order_id).await?, &new.lines)?;
        move_units(tx, &order_id, &new.lines, LedgerEffect::Reserve).await?;
    }
    super::returns::check_fulfillment_change(tx, &order_id, &id, "replaced").await?;
    for sql in [
        "DELETE FROM fulfillment_lines WHERE store_id = $1 AND fulfillment_id = $2",
        "DELETE FROM packages WHERE store_id = $1 AND fulfillment_id = $2",
    ] {
        execute(
            tx,
            "clearing a fulfillment's contents",
            sql,
            &[&store_id, &id],
        )
        .await?;
    }
    insert_contents(tx, store_id, &id, &new.lines, &new.packages).await?;
    let status_changed = current.status != new.status || current.status_label != new.status_label;
    let mut entry = new.first_entry(now);
    entry.datetime = now;
    let delivered_at = match (new.status, current.delivered_at) {
        (ShipmentStatus::Delivered, Some(at)) => Some(at),
        (ShipmentStatus::Delivered, None) => new.delivered_at(now),
        (_, at) => at,
    };
    update_fulfillment_row(
        tx,
        store_id,
        &id,
        FulfillmentState {
            status: new.status,
            status_label: &new.status_label,
            estimated_delivery: new.estimated_delivery.or(current.estimated_delivery),
            delivered_at,
            tracked_at: status_changed.then_some(now),
            exception_reason: if status_changed {
                waybill_core::reason::current(new.status, current.history.iter().chain([&entry]))
            } else {
                current.exception_reason()
            },
        },
        now,
    )
    .await?;
    if status_changed {
        insert_history(tx, store_id, &id, &entry, now).await?;
    }
    // The ledger moves when the fulfillment starts or stops counting.
    let ledger = LedgerChange::replacing(
        current.status.is_live(),
        new.status.is_live(),
        &quantities(&current)?,
        &new.lines,
    );
    record_event(
        tx,
        store_id,
        &order_id,
        Event {
            kind: "fulfillment.updated",
            fulfillment_id: Some(&id),
            data: EventData {
                ledger,
                ..EventData::status(new.status.as_str(), Some(current.status.as_str()))
            },
            trigger: status_changed.then_some(new.status.as_str()),
            touched: Touched::OneFulfillment,
        },
        now,
    )
    .await?;
    Ok((
        load_one_fulfillment(tx, store_id, &order_id, &id).await?,
        false,
    ))
}

pub(super) async fn update_order(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    update: &OrderUpdate,
    now: Timestamp,
) -> PgResult<Order> {
    let (order_id, _) = resolve_order(tx, store_id, order, true).await?;
    let existing = load_line_items(tx, &order_id).await?;
    let details = to_json("encoding order details", &update.details)?;
    execute(
        tx,
        "updating an order",
        "UPDATE orders SET details = $2, customer_email = $3, created_at = COALESCE($4, created_at)
         WHERE id = $1",
        &[
            &order_id,
            &details,
            &update.details.customer_email(),
            &update.created_at.map(time::to_millis),
        ],
    )
    .await?;
    let mut next_position = existing.len() as i32;
    for line in &update.line_items {
        if let Some(current) = existing.iter().find(|l| l.id == line.id) {
            if line.quantity.get() < current.fulfilled {
                return Err(DomainError::invalid(format!(
                    "line item '{}' has {} unit(s) fulfilled; its quantity cannot drop to {}",
                    line.id,
                    current.fulfilled,
                    line.quantity.get()
                ))
                .into());
            }
            let extra = to_json("encoding line item extras", &line.extra)?;
            execute(
                tx,
                "updating a line item",
                "UPDATE line_items SET product_id = $3, variant_id = $4, sku = $5, title = $6,
                        quantity = $7, price = $8, extra = $9
                 WHERE order_id = $1 AND id = $2",
                &[
                    &order_id,
                    &line.id,
                    &line.product_id,
                    &line.variant_id,
                    &line.sku,
                    &line.title,
                    &qty(&line.quantity),
                    &line.price.map(|p| p.to_string()),
                    &extra,
                ],
            )
            .await?;
        } else {
            insert_line(tx, &order_id, next_position, line).await?;
            next_position += 1;
        }
    }
    record_event(
        tx,
        store_id,
        &order_id,
        Event {
            kind: "order.updated",
            fulfillment_id: None,
            data: EventData::default(),
            trigger: None,
            touched: Touched::Order,
        },
        now,
    )
    .await?;
    load_order_by_id(tx, store_id, &order_id).await
}

async fn insert_line(
    tx: &Transaction<'_>,
    order_id: &str,
    position: i32,
    line: &NewLineItem,
) -> PgResult<()> {
    let extra = to_json("encoding line item extras", &line.extra)?;
    execute(
        tx,
        "inserting a line item",
        "INSERT INTO line_items (order_id, id, position, product_id, variant_id, sku,
                                 title, quantity, price, extra)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &order_id,
            &line.id,
            &position,
            &line.product_id,
            &line.variant_id,
            &line.sku,
            &line.title,
            &qty(&line.quantity),
            &line.price.map(|p| p.to_string()),
            &extra,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn list_orders(
    tx: &Transaction<'_>,
    store_id: &str,
    query_spec: &OrderQuery,
) -> PgResult<OrderPage> {
    let mut filters = String::from("store_id = $1");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(store_id.to_owned())];
    let push = |args: &mut Vec<Box<dyn ToSql + Sync + Send>>,
                value: Box<dyn ToSql + Sync + Send>| {
        args.push(value);
        args.len()
    };
    if let Some(email) = &query_spec.email {
        let n = push(&mut args, Box::new(email.clone()));
        filters.push_str(&format!(" AND lower(customer_email) = lower(${n})"));
    }
    for (bound, column, op) in [
        (query_spec.created_after, "created_at", ">"),
        (query_spec.created_before, "created_at", "<"),
        (query_spec.updated_after, "updated_at", ">"),
        (query_spec.updated_before, "updated_at", "<"),
    ] {
        if let Some(at) = bound {
            let n = push(&mut args, Box::new(time::to_millis(at)));
            filters.push_str(&format!(" AND {column} {op} ${n}"));
        }
    }
    if !query_spec.statuses.is_empty() {
        let statuses: Vec<String> = query_spec
            .statuses
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let n = push(&mut args, Box::new(statuses));
        filters.push_str(&format!(" AND status = ANY(${n})"));
    }
    if let Some(text) = query_spec.search_text() {
        // One indexed lookup per way an order can match, united; see OrderQuery::search.
        // external_id is COLLATE "C", so the range is a bytewise prefix match on its index.
        let n = push(&mut args, Box::new(text.to_owned()));
        let upper = match crate::prefix_upper_bound(text) {
            Some(bound) => {
                let m = push(&mut args, Box::new(bound));
                format!(" AND external_id < ${m}")
            }
            None => String::new(),
        };
        filters.push_str(&format!(
            " AND id IN (
                SELECT id FROM orders WHERE store_id = $1 AND external_id >= ${n}{upper}
                UNION SELECT id FROM orders
                 WHERE store_id = $1 AND lower(customer_email) = lower(${n})
                UNION SELECT l.order_id FROM line_items l JOIN orders o ON o.id = l.order_id
                 WHERE l.sku = ${n} AND o.store_id = $1
                UNION SELECT f.order_id FROM packages p
                  JOIN fulfillments f ON f.store_id = p.store_id AND f.id = p.fulfillment_id
                 WHERE p.store_id = $1 AND p.tracking_number = ${n})"
        ));
    }
    if let Some(carrier) = query_spec
        .carrier
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        let n = push(&mut args, Box::new(carrier.to_owned()));
        filters.push_str(&format!(
            " AND id IN (SELECT f.order_id FROM packages p
                  JOIN fulfillments f ON f.store_id = p.store_id AND f.id = p.fulfillment_id
                 WHERE p.store_id = $1 AND lower(p.carrier) = lower(${n}))"
        ));
    }
    if let Some(reason) = query_spec.exception_reason {
        let n = push(&mut args, Box::new(reason.as_str().to_owned()));
        filters.push_str(&format!(
            " AND id IN (SELECT f.order_id FROM fulfillments f
                 WHERE f.store_id = $1 AND f.exception_reason = ${n})"
        ));
    }
    if let Some((kind, now)) = query_spec.exception {
        let spec = crate::ExceptionQuery::new(now);
        let sub = crate::exceptions::orders_with_sql(
            kind,
            store_id,
            &spec,
            &mut super::exceptions::binder(&mut args),
        );
        filters.push_str(&format!(" AND id IN ({sub})"));
    }
    let params: Vec<&(dyn ToSql + Sync)> =
        args.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
    let total: i64 = tx
        .query_one(
            &format!("SELECT COUNT(*) FROM orders WHERE {filters}"),
            &params,
        )
        .await
        .map_err(|e| map_err("counting orders", e))?
        .get(0);

    let limit = query_spec.limit.clamp(1, MAX_PAGE_SIZE);
    let mut page_sql = format!("SELECT id FROM orders WHERE {filters}");
    let keyset = query_spec
        .after
        .as_ref()
        .filter(|_| query_spec.sort == crate::OrderSort::Id);
    if let Some(after) = keyset {
        let n = push(&mut args, Box::new(after.clone()));
        page_sql.push_str(&format!(" AND id > ${n}"));
    }
    let offset = if keyset.is_some() {
        0
    } else {
        i64::try_from(query_spec.offset).unwrap_or(i64::MAX)
    };
    let n_limit = push(&mut args, Box::new(i64::from(limit) + 1));
    let n_offset = push(&mut args, Box::new(offset));
    page_sql.push_str(&format!(
        " ORDER BY {} LIMIT ${n_limit} OFFSET ${n_offset}",
        query_spec.sort.order_by()
    ));
    let params: Vec<&(dyn ToSql + Sync)> =
        args.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
    let mut ids: Vec<String> = tx
        .query(&page_sql, &params)
        .await
        .map_err(|e| map_err("listing orders", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let has_more = ids.len() > limit as usize;
    ids.truncate(limit as usize);
    let orders = load_orders_by_id(tx, store_id, &ids).await?;
    Ok(OrderPage {
        orders,
        total: total.max(0) as u64,
        has_more,
    })
}
