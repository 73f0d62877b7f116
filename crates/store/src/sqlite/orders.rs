//! Orders, fulfillments and their history on SQLite. Every function here runs on a connection
//! that is already inside a transaction (the writer's) or on a read-only connection.

use std::collections::HashMap;
use std::sync::LazyLock;

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;
use waybill_core::NewLineItem;
use waybill_core::ledger::{self, LedgerEffect, LedgerLine};
use waybill_core::order_status::{self, UnitCounts};
use waybill_core::{
    DomainError, ExceptionReason, Fulfillment, FulfillmentLine, HistoryEntry, LineItem, Money,
    NewFulfillment, NewOrder, Order, OrderDetails, OrderRef, Package, Quantity, ShipmentStatus,
    StatusUpdate, Timestamp, time,
};

use super::map_err;
use crate::automations::pick_by_carrier;
use crate::events::{EventData, LedgerChange};
use crate::{
    MAX_PAGE_SIZE, OrderPage, OrderQuery, OrderSort, OrderUpdate, RaisedEvent, StoreError,
    StoreResult,
};
use waybill_core::carrier_update::{self, CarrierReport, Step};
use waybill_core::time_events;

/// The order a path names: its internal id and event sequence. The external id wins when a
/// string could be both.
pub(super) fn resolve_order(
    conn: &Connection,
    store_id: &str,
    order: &OrderRef,
) -> StoreResult<(String, i64)> {
    // Two plain indexed lookups: a plan that depends on bound values would be recompiled on
    // every execution.
    let by_external = conn
        .prepare_cached("SELECT id, event_seq FROM orders WHERE store_id = ?1 AND external_id = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![store_id, order.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .map_err(|e| map_err("looking up an order", e))?;
    if let Some(found) = by_external {
        return Ok(found);
    }
    let by_internal = match order.as_internal() {
        Some(id) => conn
            .prepare_cached("SELECT id, event_seq FROM orders WHERE id = ?1 AND store_id = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![id.to_string(), store_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(|e| map_err("looking up an order", e))?,
        None => None,
    };
    by_internal.ok_or_else(|| DomainError::OrderNotFound(order.as_str().to_owned()).into())
}

/// An order's units counted over its fulfillment lines, for its derived status (the core's
/// rule) and the counts its row keeps.
#[cfg(test)]
pub(super) fn recount(conn: &Connection, order_id: &str) -> StoreResult<UnitCounts> {
    // Formatted once: every write runs it.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT (SELECT COALESCE(SUM(quantity), 0) FROM line_items WHERE order_id = ?1),
                    COALESCE(SUM(fl.quantity), 0),
                    COALESCE(SUM(CASE WHEN f.status IN ({}) THEN fl.quantity END), 0),
                    COALESCE(SUM(CASE WHEN f.status = 'delivered' THEN fl.quantity END), 0)
             FROM fulfillments f
             JOIN fulfillment_lines fl ON fl.store_id = f.store_id AND fl.fulfillment_id = f.id
             WHERE f.order_id = ?1 AND f.status <> 'cancelled'",
            crate::shipped_statuses_sql()
        )
    });
    let counts = conn
        .prepare_cached(&SQL)
        .and_then(|mut stmt| {
            stmt.query_row([order_id], |r| {
                Ok(UnitCounts {
                    ordered: r.get::<_, i64>(0)?.max(0) as u64,
                    in_fulfillment: r.get::<_, i64>(1)?.max(0) as u64,
                    shipped: r.get::<_, i64>(2)?.max(0) as u64,
                    delivered: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })
        })
        .map_err(|e| map_err("counting an order's units", e))?;
    Ok(counts)
}

/// The unit counts an order's row keeps, with the units ordered summed from its `ledger`.
fn kept_counts(
    conn: &Connection,
    order_id: &str,
    ledger: &[LedgerLine],
) -> StoreResult<UnitCounts> {
    conn.prepare_cached(
        "SELECT units_in_fulfillment, units_shipped, units_delivered FROM orders WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row([order_id], |r| {
            Ok(UnitCounts {
                ordered: ledger.iter().map(|l| u64::from(l.ordered)).sum(),
                in_fulfillment: r.get::<_, i64>(0)?.max(0) as u64,
                shipped: r.get::<_, i64>(1)?.max(0) as u64,
                delivered: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })
    })
    .map_err(|e| map_err("reading an order's unit counts", e))
}

/// Appends an outbox event for a change to the order, bumps its sequence and `updated_at`, and
/// refreshes its derived status and kept unit counts from a recount. Returns the event's
/// sequence number.
pub(super) fn record_event(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
    event_type: &str,
    fulfillment_id: Option<&str>,
    data: EventData,
    now: Timestamp,
) -> StoreResult<i64> {
    // The order with every row of the change written: the event's snapshot, and its units
    // counted as `recount` would count them.
    let snapshot = load_order_by_id(conn, store_id, order_id)?;
    let counts = UnitCounts::of(&snapshot);
    write_event(
        conn,
        store_id,
        order_id,
        event_type,
        fulfillment_id,
        data,
        counts,
        Some(snapshot),
        now,
    )
}

/// [`record_event`] with the order's units after the change already known. The event's data
/// gets the order's derived status before and after, and the order as this transaction sees it
/// once the change is written (see [`crate::events`]).
#[allow(clippy::too_many_arguments)]
fn record_counted_event(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
    event_type: &str,
    fulfillment_id: Option<&str>,
    data: EventData,
    counts: UnitCounts,
    now: Timestamp,
) -> StoreResult<i64> {
    write_event(
        conn,
        store_id,
        order_id,
        event_type,
        fulfillment_id,
        data,
        counts,
        None,
        now,
    )
}

/// Writes the order's row and the event; `snapshot` is the order as loaded after the change's
/// rows (its `updated_at` is set here), or `None` to load it after the order's row.
#[allow(clippy::too_many_arguments)]
fn write_event(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
    event_type: &str,
    fulfillment_id: Option<&str>,
    mut data: EventData,
    counts: UnitCounts,
    snapshot: Option<Order>,
    now: Timestamp,
) -> StoreResult<i64> {
    let previous: String = conn
        .prepare_cached("SELECT status FROM orders WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([order_id], |r| r.get(0)))
        .map_err(|e| map_err("reading an order's status", e))?;
    // One write of the order row: its sequence, `updated_at`, derived status and counts.
    let kept = |units: u64| i64::try_from(units).unwrap_or(i64::MAX);
    let seq: i64 = conn
        .prepare_cached(
            "UPDATE orders SET event_seq = event_seq + 1, updated_at = ?2, status = ?3,
                               units_in_fulfillment = ?4, units_shipped = ?5,
                               units_delivered = ?6
             WHERE id = ?1 RETURNING event_seq",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    order_id,
                    time::to_millis(now),
                    counts.status().as_str(),
                    kept(counts.in_fulfillment),
                    kept(counts.shipped),
                    kept(counts.delivered),
                ],
                |r| r.get(0),
            )
        })
        .map_err(|e| map_err("sequencing an event", e))?;
    data.order_status = Some(counts.status().as_str().to_owned());
    if event_type != "order.created" {
        data.previous_order_status = Some(previous);
    }
    data.order = Some(match snapshot {
        Some(mut order) => {
            order.updated_at = now;
            order
        }
        None => load_order_by_id(conn, store_id, order_id)?,
    });
    insert_outbox(
        conn,
        store_id,
        order_id,
        seq,
        event_type,
        fulfillment_id,
        &data,
        now,
    )?;
    Ok(seq)
}

/// Queues a run of every enabled automation of the store that `trigger` (a status or event
/// name) sets off for the fulfillment, tied to the order's event `seq`. The unique key
/// (automation, fulfillment, trigger) makes a repeated trigger add nothing.
fn enqueue_runs(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
    seq: i64,
    fulfillment_id: &str,
    trigger: &str,
    now: Timestamp,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO automation_runs (automation_id, store_id, order_id, seq, outbox_id,
                                      fulfillment_id, trigger, next_attempt_at, created_at,
                                      updated_at)
         SELECT a.id, a.store_id, ?2, ?3,
                (SELECT o.id FROM outbox o WHERE o.order_id = ?2 AND o.seq = ?3),
                ?4, a.trigger, ?6, ?6, ?6
         FROM automations a
         WHERE a.store_id = ?1 AND a.trigger = ?5 AND a.enabled = 1
           AND (a.carrier IS NULL OR EXISTS (
                SELECT 1 FROM packages p
                WHERE p.store_id = ?1 AND p.fulfillment_id = ?4
                  AND lower(p.carrier) = lower(a.carrier)))
         ON CONFLICT (automation_id, fulfillment_id, trigger) DO NOTHING",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            order_id,
            seq,
            fulfillment_id,
            trigger,
            time::to_millis(now)
        ])
    })
    .map_err(|e| map_err("queueing automation runs", e))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn insert_outbox(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
    seq: i64,
    event_type: &str,
    fulfillment_id: Option<&str>,
    data: &EventData,
    now: Timestamp,
) -> StoreResult<()> {
    let data = to_json("encoding event data", data)?;
    conn.prepare_cached(
        "INSERT INTO outbox (event_id, store_id, order_id, seq, type, fulfillment_id, data, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            Uuid::now_v7().to_string(),
            store_id,
            order_id,
            seq,
            event_type,
            fulfillment_id,
            data,
            time::to_millis(now)
        ])
    })
    .map_err(|e| map_err("writing an outbox event", e))?;
    Ok(())
}

pub(super) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::internal(what, e))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::internal(what, e))
}

pub(super) fn insert_order(
    conn: &Connection,
    store_id: &str,
    order: NewOrder,
    now: Timestamp,
) -> StoreResult<Order> {
    let id = Uuid::now_v7();
    let details = to_json("encoding order details", &order.details)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO orders (id, store_id, external_id, created_at, inserted_at, updated_at,
                                 customer_email, details)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)
             ON CONFLICT (store_id, external_id) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                id.to_string(),
                store_id,
                order.external_id,
                time::to_millis(order.created_at),
                time::to_millis(now),
                order.details.customer_email(),
                details,
            ])
        })
        .map_err(|e| map_err("inserting an order", e))?;
    if inserted == 0 {
        return Err(DomainError::DuplicateOrder(order.external_id).into());
    }
    for (position, line) in order.line_items.iter().enumerate() {
        insert_line(conn, &id.to_string(), position as i64, line)?;
    }
    record_event(
        conn,
        store_id,
        &id.to_string(),
        "order.created",
        None,
        EventData::default(),
        now,
    )?;
    Ok(Order {
        id,
        store_id: store_id.to_owned(),
        external_id: order.external_id,
        created_at: order.created_at,
        updated_at: now,
        line_items: order
            .line_items
            .into_iter()
            .map(|l| LineItem {
                id: l.id,
                product_id: l.product_id,
                variant_id: l.variant_id,
                sku: l.sku,
                title: l.title,
                quantity: l.quantity.get(),
                fulfilled: 0,
                returned: 0,
                price: l.price,
                extra: l.extra,
            })
            .collect(),
        details: order.details,
        fulfillments: Vec::new(),
    })
}

/// A line item's columns as [`line_item_at`] reads them, `li` being `line_items`.
const LINE_ITEM_COLUMNS: &str = "li.id, li.position, li.product_id, li.variant_id, li.sku, \
     li.title, li.quantity, li.fulfilled, li.price, li.extra, li.returned";

/// The line item (and its position) in the eleven [`LINE_ITEM_COLUMNS`] from column `at` on, or
/// `None` where they are NULL (the outer join of an order without lines).
fn line_item_at(r: &rusqlite::Row<'_>, at: usize) -> StoreResult<Option<(i64, LineItem)>> {
    let read = |e| map_err("reading a line item", e);
    let Some(id) = r.get::<_, Option<String>>(at).map_err(read)? else {
        return Ok(None);
    };
    let price: Option<String> = r.get(at + 8).map_err(read)?;
    let extra: String = r.get(at + 9).map_err(read)?;
    let line = LineItem {
        id,
        product_id: r.get(at + 2).map_err(read)?,
        variant_id: r.get(at + 3).map_err(read)?,
        sku: r.get(at + 4).map_err(read)?,
        title: r.get(at + 5).map_err(read)?,
        quantity: r.get(at + 6).map_err(read)?,
        fulfilled: r.get(at + 7).map_err(read)?,
        returned: r.get(at + 10).map_err(read)?,
        price: price
            .map(|p| Money::parse("price", &p))
            .transpose()
            .map_err(|e| StoreError::internal("decoding a stored price", e))?,
        extra: from_json("decoding line item extras", &extra)?,
    };
    Ok(Some((r.get(at + 1).map_err(read)?, line)))
}

/// Rows tagged with a sort key, in the key's order, without their keys. Rows are ordered here
/// rather than by the query: an ORDER BY these queries' indexes do not give would build a
/// temporary B-tree on every read.
fn in_order<K: Ord, T>(mut keyed: Vec<(K, T)>) -> impl Iterator<Item = T> {
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, row)| row)
}

fn load_line_items(conn: &Connection, order_id: &str) -> StoreResult<Vec<LineItem>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {LINE_ITEM_COLUMNS} FROM line_items li WHERE li.order_id = ?1")
    });
    let mut stmt = conn
        .prepare_cached(&SQL)
        .map_err(|e| map_err("loading line items", e))?;
    let mut rows = stmt
        .query([order_id])
        .map_err(|e| map_err("loading line items", e))?;
    let mut lines = Vec::new();
    while let Some(row) = rows.next().map_err(|e| map_err("loading line items", e))? {
        lines.extend(line_item_at(row, 0)?);
    }
    Ok(in_order(lines).collect())
}

/// An order's row joined to its line items, one row per line: the order's columns, then
/// [`LINE_ITEM_COLUMNS`]. `{filter}` picks the order.
const ORDER_ROWS: &str =
    "SELECT o.id, o.external_id, o.created_at, o.updated_at, o.details, {lines}
     FROM orders o LEFT JOIN line_items li ON li.order_id = o.id
     WHERE {filter}";

pub(super) fn load_order(
    conn: &Connection,
    store_id: &str,
    order: &OrderRef,
) -> StoreResult<Order> {
    // The order is found by its external id in the same statement that loads it (reads name
    // orders by external id far more often than by internal id).
    static BY_EXTERNAL: LazyLock<String> = LazyLock::new(|| {
        ORDER_ROWS
            .replace("{lines}", LINE_ITEM_COLUMNS)
            .replace("{filter}", "o.store_id = ?1 AND o.external_id = ?2")
    });
    let found = query_order(
        conn,
        store_id,
        &BY_EXTERNAL,
        params![store_id, order.as_str()],
    )?;
    let found = match (found, order.as_internal()) {
        (Some(order), _) => Some(order),
        (None, Some(id)) => find_order_by_id(conn, store_id, &id.to_string())?,
        (None, None) => None,
    };
    found.ok_or_else(|| DomainError::OrderNotFound(order.as_str().to_owned()).into())
}

/// The order of the store with internal id `order_id`, if any.
fn find_order_by_id(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
) -> StoreResult<Option<Order>> {
    static BY_ID: LazyLock<String> = LazyLock::new(|| {
        ORDER_ROWS
            .replace("{lines}", LINE_ITEM_COLUMNS)
            .replace("{filter}", "o.id = ?1 AND o.store_id = ?2")
    });
    query_order(conn, store_id, &BY_ID, params![order_id, store_id])
}

/// An order this transaction has found already (by [`resolve_order`] or a listing).
fn load_order_by_id(conn: &Connection, store_id: &str, order_id: &str) -> StoreResult<Order> {
    find_order_by_id(conn, store_id, order_id)?
        .ok_or_else(|| StoreError::Internal(format!("order {order_id} vanished while loading")))
}

/// The order an [`ORDER_ROWS`] statement finds, with its line items and fulfillments.
fn query_order(
    conn: &Connection,
    store_id: &str,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Option<Order>> {
    let what = "loading an order";
    let mut stmt = conn.prepare_cached(sql).map_err(|e| map_err(what, e))?;
    let mut rows = stmt.query(params).map_err(|e| map_err(what, e))?;
    let mut head: Option<(String, Order)> = None;
    let mut lines = Vec::new();
    while let Some(row) = rows.next().map_err(|e| map_err(what, e))? {
        if head.is_none() {
            head = Some(order_head(row, store_id)?);
        }
        lines.extend(line_item_at(row, 5)?);
    }
    drop(rows);
    let Some((order_id, mut order)) = head else {
        return Ok(None);
    };
    order.line_items = in_order(lines).collect();
    order.fulfillments = load_fulfillments(conn, store_id, &order_id, None)?;
    Ok(Some(order))
}

/// An order's own columns (its id as stored, and the order without lines or fulfillments).
fn order_head(r: &rusqlite::Row<'_>, store_id: &str) -> StoreResult<(String, Order)> {
    let read = |e| map_err("reading an order", e);
    let id: String = r.get(0).map_err(read)?;
    let details: String = r.get(4).map_err(read)?;
    let order = Order {
        id: parse_uuid(&id)?,
        store_id: store_id.to_owned(),
        external_id: r.get(1).map_err(read)?,
        created_at: time::from_millis(r.get(2).map_err(read)?),
        updated_at: time::from_millis(r.get(3).map_err(read)?),
        line_items: Vec::new(),
        details: from_json::<OrderDetails>("decoding order details", &details)?,
        fulfillments: Vec::new(),
    };
    Ok((id, order))
}

pub(super) fn parse_uuid(text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::internal("decoding a stored order id", e))
}

pub(super) fn parse_reason(text: &str) -> StoreResult<ExceptionReason> {
    text.parse()
        .map_err(|e| StoreError::internal("decoding a stored exception reason", e))
}

pub(super) fn parse_status(text: &str) -> StoreResult<ShipmentStatus> {
    text.parse()
        .map_err(|e| StoreError::internal("decoding a stored shipment status", e))
}

/// An order's fulfillments with their lines, packages and history, in one statement: each row
/// is one of the four, told apart by its first column (0 to 3), the fulfillment's id second,
/// its sort key third. `{filter}` narrows it to one fulfillment.
const FULFILLMENT_ROWS: &str = "
    SELECT 0, f.id, f.created_at, f.updated_at, f.status, f.status_label, f.estimated_delivery,
           f.delivered_at, NULL
    FROM fulfillments f
    WHERE f.order_id = ?1 {filter}
    UNION ALL
    SELECT 1, f.id, fl.position, fl.quantity, fl.line_item_id, li.title, li.product_id,
           li.variant_id, li.sku
    FROM fulfillments f
    JOIN fulfillment_lines fl ON fl.store_id = f.store_id AND fl.fulfillment_id = f.id
    JOIN line_items li ON li.order_id = f.order_id AND li.id = fl.line_item_id
    WHERE f.order_id = ?1 {filter}
    UNION ALL
    SELECT 2, f.id, p.position, NULL, p.carrier, p.tracking_number, p.tracking_url, NULL, NULL
    FROM fulfillments f
    JOIN packages p ON p.store_id = f.store_id AND p.fulfillment_id = f.id
    WHERE f.order_id = ?1 {filter}
    UNION ALL
    SELECT 3, f.id, e.happened_at, e.id, e.status, e.message, e.location, e.reason, NULL
    FROM fulfillments f
    JOIN tracking_events e ON e.store_id = f.store_id AND e.fulfillment_id = f.id
    WHERE f.order_id = ?1 {filter}";

/// Loads the fulfillments of an order (or just `only`), each with its lines, packages and
/// chronological history, in one query whatever their number.
fn load_fulfillments(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
    only: Option<&str>,
) -> StoreResult<Vec<Fulfillment>> {
    // Separate statements for a whole order and for one fulfillment: an `?2 IS NULL OR ...`
    // filter would make SQLite recompile the statement on every run.
    static ALL: LazyLock<String> = LazyLock::new(|| FULFILLMENT_ROWS.replace("{filter}", ""));
    static ONE: LazyLock<String> =
        LazyLock::new(|| FULFILLMENT_ROWS.replace("{filter}", "AND f.store_id = ?2 AND f.id = ?3"));
    let what = "loading fulfillments";
    let mut stmt = match only {
        Some(_) => conn.prepare_cached(&ONE),
        None => conn.prepare_cached(&ALL),
    }
    .map_err(|e| map_err(what, e))?;
    let mut rows = match only {
        Some(id) => stmt.query(params![order_id, store_id, id]),
        None => stmt.query([order_id]),
    }
    .map_err(|e| map_err(what, e))?;

    let order_uuid = parse_uuid(order_id)?;
    let mut fulfillments = Vec::new();
    let mut lines = Vec::new();
    let mut packages = Vec::new();
    let mut history = Vec::new();
    while let Some(r) = rows.next().map_err(|e| map_err(what, e))? {
        let read = |e| map_err(what, e);
        let kind: i64 = r.get(0).map_err(read)?;
        let id: String = r.get(1).map_err(read)?;
        let key: i64 = r.get(2).map_err(read)?;
        match kind {
            0 => {
                let status: String = r.get(4).map_err(read)?;
                let eta: Option<String> = r.get(6).map_err(read)?;
                let delivered: Option<i64> = r.get(7).map_err(read)?;
                let fulfillment = Fulfillment {
                    order_id: order_uuid,
                    created_at: time::from_millis(key),
                    updated_at: time::from_millis(r.get(3).map_err(read)?),
                    status: parse_status(&status)?,
                    status_label: r.get(5).map_err(read)?,
                    packages: Vec::new(),
                    estimated_delivery: eta
                        .map(|d| time::parse_date_or_datetime("estimated delivery", &d))
                        .transpose()
                        .map_err(|e| StoreError::internal("decoding a stored date", e))?,
                    delivered_at: delivered.map(time::from_millis),
                    lines: Vec::new(),
                    history: Vec::new(),
                    id: id.clone(),
                };
                fulfillments.push(((key, id), fulfillment));
            }
            1 => lines.push((
                key,
                (
                    id,
                    FulfillmentLine {
                        quantity: r.get(3).map_err(read)?,
                        line_item_id: r.get(4).map_err(read)?,
                        title: r.get(5).map_err(read)?,
                        product_id: r.get(6).map_err(read)?,
                        variant_id: r.get(7).map_err(read)?,
                        sku: r.get(8).map_err(read)?,
                    },
                ),
            )),
            2 => packages.push((
                key,
                (
                    id,
                    Package {
                        carrier: r.get(4).map_err(read)?,
                        tracking_number: r.get(5).map_err(read)?,
                        tracking_url: r.get(6).map_err(read)?,
                    },
                ),
            )),
            3 => {
                let location: Option<String> = r.get(6).map_err(read)?;
                let reason: Option<String> = r.get(7).map_err(read)?;
                let entry = HistoryEntry {
                    reason: reason.as_deref().map(parse_reason).transpose()?,
                    status: r.get(4).map_err(read)?,
                    message: r.get(5).map_err(read)?,
                    datetime: time::from_millis(key),
                    location: location
                        .map(|l| from_json("decoding a tracking location", &l))
                        .transpose()?,
                };
                let event_id: i64 = r.get(3).map_err(read)?;
                history.push(((key, event_id), (id, entry)));
            }
            other => {
                return Err(StoreError::Internal(format!(
                    "loading fulfillments: a row of unknown kind {other}"
                )));
            }
        }
    }
    drop(rows);

    let mut fulfillments: Vec<Fulfillment> = in_order(fulfillments).collect();
    let index: HashMap<String, usize> = fulfillments
        .iter()
        .enumerate()
        .map(|(i, f)| (f.id.clone(), i))
        .collect();
    let of = |id: &str| index.get(id).copied();
    for (id, line) in in_order(lines) {
        if let Some(i) = of(&id) {
            fulfillments[i].lines.push(line);
        }
    }
    for (id, package) in in_order(packages) {
        if let Some(i) = of(&id) {
            fulfillments[i].packages.push(package);
        }
    }
    for (id, entry) in in_order(history) {
        if let Some(i) = of(&id) {
            fulfillments[i].history.push(entry);
        }
    }
    Ok(fulfillments)
}

fn load_one_fulfillment(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
    fulfillment_id: &str,
) -> StoreResult<Fulfillment> {
    load_fulfillments(conn, store_id, order_id, Some(fulfillment_id))?
        .into_iter()
        .next()
        .ok_or_else(|| DomainError::FulfillmentNotFound(fulfillment_id.to_owned()).into())
}

fn load_ledger(conn: &Connection, order_id: &str) -> StoreResult<Vec<LedgerLine>> {
    conn.prepare_cached("SELECT id, quantity, fulfilled FROM line_items WHERE order_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_map([order_id], |r| {
                Ok(LedgerLine {
                    id: r.get(0)?,
                    ordered: r.get(1)?,
                    fulfilled: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("loading the ledger", e))
}

/// A line item's title, product id, variant id and SKU.
type LineDetails = (String, Option<String>, Option<String>, Option<String>);

/// The ledger and each line's details in one query.
fn load_ledger_with_details(
    conn: &Connection,
    order_id: &str,
) -> StoreResult<(Vec<LedgerLine>, HashMap<String, LineDetails>)> {
    let mut ledger = Vec::new();
    let mut details = HashMap::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, quantity, fulfilled, title, product_id, variant_id, sku
             FROM line_items WHERE order_id = ?1",
        )
        .map_err(|e| map_err("loading the ledger", e))?;
    let mut rows = stmt
        .query([order_id])
        .map_err(|e| map_err("loading the ledger", e))?;
    while let Some(r) = rows.next().map_err(|e| map_err("loading the ledger", e))? {
        let read = |e| map_err("reading the ledger", e);
        let id: String = r.get(0).map_err(read)?;
        ledger.push(LedgerLine {
            id: id.clone(),
            ordered: r.get(1).map_err(read)?,
            fulfilled: r.get(2).map_err(read)?,
        });
        let line: LineDetails = (
            r.get(3).map_err(read)?,
            r.get(4).map_err(read)?,
            r.get(5).map_err(read)?,
            r.get(6).map_err(read)?,
        );
        details.insert(id, line);
    }
    Ok((ledger, details))
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
pub(super) fn move_counter<'a>(
    conn: &Connection,
    order_id: &str,
    counter: LineCounter,
    units: impl IntoIterator<Item = (&'a str, u32)>,
    effect: LedgerEffect,
) -> StoreResult<()> {
    let sql = match (counter, effect) {
        (_, LedgerEffect::None) => return Ok(()),
        (LineCounter::Fulfilled, LedgerEffect::Reserve) => {
            "UPDATE line_items SET fulfilled = fulfilled + ?3
             WHERE order_id = ?1 AND id = ?2 AND fulfilled + ?3 <= quantity"
        }
        (LineCounter::Fulfilled, LedgerEffect::Release) => {
            "UPDATE line_items SET fulfilled = fulfilled - ?3
             WHERE order_id = ?1 AND id = ?2 AND fulfilled >= ?3"
        }
        (LineCounter::Returned, LedgerEffect::Reserve) => {
            "UPDATE line_items SET returned = returned + ?3
             WHERE order_id = ?1 AND id = ?2 AND returned + ?3 <= fulfilled"
        }
        (LineCounter::Returned, LedgerEffect::Release) => {
            "UPDATE line_items SET returned = returned - ?3
             WHERE order_id = ?1 AND id = ?2 AND returned >= ?3"
        }
    };
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| map_err("preparing a ledger update", e))?;
    for (line_id, quantity) in units {
        let changed = stmt
            .execute(params![order_id, line_id, quantity])
            .map_err(|e| map_err("updating the ledger", e))?;
        if changed != 1 {
            return Err(StoreError::Internal(format!(
                "{counter:?} update for line '{line_id}' matched {changed} rows"
            )));
        }
    }
    Ok(())
}

/// Moves fulfilled units in the ledger.
fn move_units(
    conn: &Connection,
    order_id: &str,
    lines: &[(String, Quantity)],
    effect: LedgerEffect,
) -> StoreResult<()> {
    let units = lines.iter().map(|(id, q)| (id.as_str(), q.get()));
    move_counter(conn, order_id, LineCounter::Fulfilled, units, effect)
}

fn insert_history(
    conn: &Connection,
    store_id: &str,
    fulfillment_id: &str,
    entry: &HistoryEntry,
    now: Timestamp,
) -> StoreResult<()> {
    let location = entry
        .location
        .as_ref()
        .map(|l| to_json("encoding a location", l))
        .transpose()?;
    conn.prepare_cached(
        "INSERT INTO tracking_events (store_id, fulfillment_id, status, message, happened_at,
                                      location, received_at, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            fulfillment_id,
            entry.status,
            entry.message,
            time::to_millis(entry.datetime),
            location,
            time::to_millis(now),
            entry.reason.map(ExceptionReason::as_str),
        ])
    })
    .map_err(|e| map_err("inserting a tracking event", e))?;
    Ok(())
}

pub(super) fn insert_fulfillment(
    conn: &Connection,
    store_id: &str,
    order: &OrderRef,
    new: NewFulfillment,
    now: Timestamp,
) -> StoreResult<Fulfillment> {
    let (order_id, _) = resolve_order(conn, store_id, order)?;
    let (ledger_lines, details) = load_ledger_with_details(conn, &order_id)?;
    if let Err(refused) = ledger::check_allocation(&ledger_lines, &new.lines) {
        // A retry of a fulfillment that was created is a duplicate, whatever the ledger says
        // now (its own units may be the ones that are gone).
        if let Some(id) = &new.id
            && fulfillment_exists(conn, store_id, id)?
        {
            return Err(DomainError::DuplicateFulfillment(id.clone()).into());
        }
        return Err(refused.into());
    }
    // The counts with this fulfillment's units added, as a recount would find them after the
    // writes.
    let mut counts = kept_counts(conn, &order_id, &ledger_lines)?;
    counts.add_fulfillment(
        new.status,
        new.lines.iter().map(|(_, q)| u64::from(q.get())).sum(),
    );

    let id = new.id_or_generate();
    let first = new.first_entry(now);
    let delivered_at = new.delivered_at(now);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO fulfillments (store_id, id, order_id, created_at, updated_at, status,
                                       status_label, estimated_delivery, delivered_at,
                                       last_tracking_at)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (store_id, id) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                store_id,
                id,
                order_id,
                time::to_millis(now),
                new.status.as_str(),
                new.status_label,
                new.estimated_delivery.map(time::format_date),
                delivered_at.map(time::to_millis),
                time::to_millis(first.datetime),
            ])
        })
        .map_err(|e| map_err("inserting a fulfillment", e))?;
    if inserted == 0 {
        return Err(DomainError::DuplicateFulfillment(id).into());
    }
    let effect = if new.status.is_live() {
        LedgerEffect::Reserve
    } else {
        LedgerEffect::None
    };
    move_units(conn, &order_id, &new.lines, effect)?;
    insert_contents(conn, store_id, &id, &new.lines, &new.packages)?;
    insert_history(conn, store_id, &id, &first, now)?;
    let seq = record_counted_event(
        conn,
        store_id,
        &order_id,
        "fulfillment.created",
        Some(&id),
        EventData {
            ledger: LedgerChange::of(effect, &new.lines),
            ..EventData::status(new.status.as_str(), None)
        },
        counts,
        now,
    )?;
    enqueue_runs(
        conn,
        store_id,
        &order_id,
        seq,
        &id,
        new.status.as_str(),
        now,
    )?;

    let lines: Vec<(String, u32)> = new
        .lines
        .iter()
        .map(|(line_id, quantity)| (line_id.clone(), quantity.get()))
        .collect();
    Ok(Fulfillment {
        id,
        order_id: parse_uuid(&order_id)?,
        created_at: now,
        updated_at: now,
        status: new.status,
        status_label: new.status_label,
        packages: new.packages,
        estimated_delivery: new.estimated_delivery,
        delivered_at,
        lines: lines
            .into_iter()
            .map(|(line_id, quantity)| {
                let d = details.get(&line_id);
                FulfillmentLine {
                    title: d.map(|d| d.0.clone()).unwrap_or_default(),
                    product_id: d.and_then(|d| d.1.clone()),
                    variant_id: d.and_then(|d| d.2.clone()),
                    sku: d.and_then(|d| d.3.clone()),
                    line_item_id: line_id,
                    quantity,
                }
            })
            .collect(),
        history: vec![first],
    })
}

/// Writes a fulfillment's lines and packages.
fn insert_contents(
    conn: &Connection,
    store_id: &str,
    fulfillment_id: &str,
    lines: &[(String, Quantity)],
    packages: &[Package],
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO fulfillment_lines (store_id, fulfillment_id, line_item_id, position, quantity)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(|e| map_err("preparing fulfillment line insert", e))?;
    for (position, (line_id, quantity)) in lines.iter().enumerate() {
        stmt.execute(params![
            store_id,
            fulfillment_id,
            line_id,
            position as i64,
            quantity.get()
        ])
        .map_err(|e| map_err("inserting a fulfillment line", e))?;
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO packages (store_id, fulfillment_id, position, carrier, tracking_number, tracking_url)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(|e| map_err("preparing package insert", e))?;
    for (position, p) in packages.iter().enumerate() {
        stmt.execute(params![
            store_id,
            fulfillment_id,
            position as i64,
            p.carrier,
            p.tracking_number,
            p.tracking_url
        ])
        .map_err(|e| map_err("inserting a package", e))?;
    }
    Ok(())
}

pub(super) fn apply_status_update(
    conn: &Connection,
    store_id: &str,
    order: &OrderRef,
    fulfillment_id: &str,
    update: StatusUpdate,
    now: Timestamp,
) -> StoreResult<Fulfillment> {
    let (order_id, _) = resolve_order(conn, store_id, order)?;
    let current = load_one_fulfillment(conn, store_id, &order_id, fulfillment_id)?;
    record_status_update(conn, store_id, &order_id, &current, &update, now)?;
    load_one_fulfillment(conn, store_id, &order_id, fulfillment_id)
}

/// Records `update` on `current` (of the order `order_id`): ledger, fulfillment row, history,
/// outbox event and automation runs, and the `arriving_early` it may raise.
fn record_status_update(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
    current: &Fulfillment,
    update: &StatusUpdate,
    now: Timestamp,
) -> StoreResult<()> {
    let fulfillment_id = current.id.as_str();
    let change = update.apply(current, now)?;
    let units = quantities(current)?;
    if change.ledger == LedgerEffect::Reserve {
        ledger::check_allocation(&load_ledger(conn, order_id)?, &units)?;
    }
    move_units(conn, order_id, &units, change.ledger)?;
    if change.ledger == LedgerEffect::Release {
        super::returns::check_fulfillment_change(conn, order_id, fulfillment_id, "cancelled")?;
    }
    let tracked_at = change
        .is_tracking_update()
        .then(|| time::to_millis(change.entry.datetime));
    conn.prepare_cached(
        "UPDATE fulfillments SET status = ?3, status_label = ?4, estimated_delivery = ?5,
                delivered_at = ?6, updated_at = ?7,
                last_tracking_at = max(COALESCE(last_tracking_at, 0), COALESCE(?8, 0)),
                exception_reason = ?9
         WHERE store_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            fulfillment_id,
            change.status.as_str(),
            change.status_label,
            change.estimated_delivery.map(time::format_date),
            change.delivered_at.map(time::to_millis),
            time::to_millis(now),
            tracked_at,
            change.exception_reason.map(ExceptionReason::as_str),
        ])
    })
    .map_err(|e| map_err("updating a fulfillment", e))?;
    let entries = std::iter::once(&change.entry).chain(change.follow_up.as_ref());
    for (i, entry) in entries.enumerate() {
        insert_history(conn, store_id, fulfillment_id, entry, now)?;
        let event_type = match (i, update.change) {
            (0, waybill_core::StatusOrEvent::Status(_)) => "fulfillment.updated",
            _ => "fulfillment.event",
        };
        // The first entry reports the change from the current status (and moves the ledger);
        // a follow-up event happens to the status the change left.
        let (previous, ledger) = if i == 0 {
            (current.status, LedgerChange::of(change.ledger, &units))
        } else {
            (change.status, None)
        };
        let seq = record_event(
            conn,
            store_id,
            order_id,
            event_type,
            Some(fulfillment_id),
            EventData {
                ledger,
                reason: entry.reason.map(|r| r.as_str().to_owned()),
                ..EventData::status(&entry.status, Some(previous.as_str()))
            },
            now,
        )?;
        enqueue_runs(
            conn,
            store_id,
            order_id,
            seq,
            fulfillment_id,
            &entry.status,
            now,
        )?;
    }
    Ok(())
}

/// Replaces a fulfillment's packages.
pub(super) fn update_tracking(
    conn: &Connection,
    store_id: &str,
    order: &OrderRef,
    fulfillment_id: &str,
    packages: &[Package],
    now: Timestamp,
) -> StoreResult<Fulfillment> {
    let (order_id, _) = resolve_order(conn, store_id, order)?;
    load_one_fulfillment(conn, store_id, &order_id, fulfillment_id)?;
    conn.prepare_cached("DELETE FROM packages WHERE store_id = ?1 AND fulfillment_id = ?2")
        .and_then(|mut stmt| stmt.execute(params![store_id, fulfillment_id]))
        .map_err(|e| map_err("clearing a fulfillment's packages", e))?;
    insert_contents(conn, store_id, fulfillment_id, &[], packages)?;
    conn.prepare_cached("UPDATE fulfillments SET updated_at = ?3 WHERE store_id = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.execute(params![store_id, fulfillment_id, time::to_millis(now)]))
        .map_err(|e| map_err("updating a fulfillment", e))?;
    record_event(
        conn,
        store_id,
        &order_id,
        "fulfillment.updated",
        Some(fulfillment_id),
        EventData {
            tracking: Some(true),
            ..EventData::default()
        },
        now,
    )?;
    load_one_fulfillment(conn, store_id, &order_id, fulfillment_id)
}

/// Records a carrier's report on the fulfillment with a package `tracking_number`.
pub(super) fn apply_carrier_report(
    conn: &Connection,
    store_id: &str,
    tracking_number: &str,
    carrier: Option<&str>,
    report: &CarrierReport,
    now: Timestamp,
) -> StoreResult<Option<Fulfillment>> {
    let matches: Vec<(String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT f.order_id, f.id, p.carrier FROM packages p
             JOIN fulfillments f ON f.store_id = p.store_id AND f.id = p.fulfillment_id
             WHERE p.store_id = ?1 AND p.tracking_number = ?2
             ORDER BY f.created_at DESC, f.id",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![store_id, tracking_number], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("finding a package by tracking number", e))?;
    let chosen = pick_by_carrier(&matches, carrier);
    let Some((order_id, fulfillment_id)) = chosen else {
        return Ok(None);
    };
    let mut current = load_one_fulfillment(conn, store_id, &order_id, &fulfillment_id)?;
    for step in carrier_update::plan(&current, report) {
        match step {
            Step::Append(entry) => insert_history(conn, store_id, &fulfillment_id, &entry, now)?,
            Step::Update(update) => {
                record_status_update(conn, store_id, &order_id, &current, &update, now)?;
                current = load_one_fulfillment(conn, store_id, &order_id, &fulfillment_id)?;
            }
        }
    }
    load_one_fulfillment(conn, store_id, &order_id, &fulfillment_id).map(Some)
}

/// The fulfillments the scheduler may have an event for: in transit without a carrier report
/// for their store's threshold, or past their estimated delivery day while still on the way;
/// each not yet given that event. The first bound on `last_tracking_at`, the shortest threshold
/// of any store, makes the stalled half a range of `fulfillments_in_transit`: the per-store
/// bound depends on the joined row, and alone it had SQLite scan every in-transit fulfillment,
/// inside the writer, on every tick (247 ms at 100,000 in transit).
pub(super) const DUE_EVENTS: &str =
    "SELECT f.store_id, f.order_id, f.id, COALESCE(s.stall_after_secs, 259200)
    FROM fulfillments f LEFT JOIN store_settings s ON s.store_id = f.store_id
    WHERE f.status = 'in_transit'
      AND f.last_tracking_at <= ?1 - MIN(259200, COALESCE(
            (SELECT MIN(stall_after_secs) FROM store_settings), 259200)) * 1000
      AND f.last_tracking_at <= ?1 - COALESCE(s.stall_after_secs, 259200) * 1000
      AND NOT EXISTS (SELECT 1 FROM tracking_events e
                      WHERE e.store_id = f.store_id AND e.fulfillment_id = f.id
                        AND e.status = 'stalled_in_transit')
    UNION
    SELECT f.store_id, f.order_id, f.id, COALESCE(s.stall_after_secs, 259200)
    FROM fulfillments f LEFT JOIN store_settings s ON s.store_id = f.store_id
    WHERE f.estimated_delivery IS NOT NULL
      AND f.status IN ('pre_transit', 'unknown', 'in_transit', 'out_for_delivery')
      AND f.estimated_delivery < ?2
      AND NOT EXISTS (SELECT 1 FROM tracking_events e
                      WHERE e.store_id = f.store_id AND e.fulfillment_id = f.id
                        AND e.status = 'delayed')
    ORDER BY 2, 3
    LIMIT ?3";

/// Raises the time-based events due at `now`, at most `limit`.
pub(super) fn raise_due_events(
    conn: &Connection,
    now: Timestamp,
    limit: u32,
) -> StoreResult<Vec<RaisedEvent>> {
    let now_ms = time::to_millis(now);
    // Candidates by the indexed columns (see DUE_EVENTS); the core rule decides on each.
    let candidates: Vec<(String, String, String, i64)> = conn
        .prepare_cached(DUE_EVENTS)
        .and_then(|mut stmt| {
            stmt.query_map(
                params![now_ms, time::format_date(now.date_naive()), limit],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("finding due shipment events", e))?;
    let mut raised = Vec::new();
    for (store_id, order_id, fulfillment_id, stall_secs) in candidates {
        let mut current = load_one_fulfillment(conn, &store_id, &order_id, &fulfillment_id)?;
        let stall_after = chrono::Duration::seconds(stall_secs);
        for event in time_events::due_events(&current, stall_after, now) {
            let mut update = StatusUpdate::new(waybill_core::StatusOrEvent::Event(event));
            update.datetime = Some(now);
            record_status_update(conn, &store_id, &order_id, &current, &update, now)?;
            current = load_one_fulfillment(conn, &store_id, &order_id, &fulfillment_id)?;
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

pub(super) fn delete_order(
    conn: &Connection,
    store_id: &str,
    order: &OrderRef,
    now: Timestamp,
) -> StoreResult<Order> {
    let existing = load_order(conn, store_id, order)?;
    let order_id = existing.id.to_string();
    let (_, seq) = resolve_order(conn, store_id, order)?;
    insert_outbox(
        conn,
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
    )?;
    conn.prepare_cached("DELETE FROM orders WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([&order_id]))
        .map_err(|e| map_err("deleting an order", e))?;
    Ok(existing)
}

/// Whether the store has a fulfillment with this id (on any order).
fn fulfillment_exists(conn: &Connection, store_id: &str, id: &str) -> StoreResult<bool> {
    conn.prepare_cached("SELECT 1 FROM fulfillments WHERE store_id = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.exists(params![store_id, id]))
        .map_err(|e| map_err("looking up a fulfillment", e))
}

/// Creates a fulfillment, or replaces the contents of the one with the same id on this order.
pub(super) fn upsert_fulfillment(
    conn: &Connection,
    store_id: &str,
    order: &OrderRef,
    new: NewFulfillment,
    now: Timestamp,
) -> StoreResult<(Fulfillment, bool)> {
    let (order_id, _) = resolve_order(conn, store_id, order)?;
    let Some(id) = new.id.clone() else {
        return insert_fulfillment(conn, store_id, order, new, now).map(|f| (f, true));
    };
    let owner: Option<String> = conn
        .prepare_cached("SELECT order_id FROM fulfillments WHERE store_id = ?1 AND id = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![store_id, id], |r| r.get(0))
                .optional()
        })
        .map_err(|e| map_err("looking up a fulfillment", e))?;
    match owner {
        None => return insert_fulfillment(conn, store_id, order, new, now).map(|f| (f, true)),
        Some(owner) if owner != order_id => {
            return Err(DomainError::DuplicateFulfillment(id).into());
        }
        Some(_) => {}
    }
    let current = load_one_fulfillment(conn, store_id, &order_id, &id)?;
    if current.status.is_live() {
        move_units(
            conn,
            &order_id,
            &quantities(&current)?,
            LedgerEffect::Release,
        )?;
    }
    if new.status.is_live() {
        ledger::check_allocation(&load_ledger(conn, &order_id)?, &new.lines)?;
        move_units(conn, &order_id, &new.lines, LedgerEffect::Reserve)?;
    }
    super::returns::check_fulfillment_change(conn, &order_id, &id, "replaced")?;
    for table in ["fulfillment_lines", "packages"] {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE store_id = ?1 AND fulfillment_id = ?2"
        ))
        .and_then(|mut stmt| stmt.execute(params![store_id, id]))
        .map_err(|e| map_err("clearing a fulfillment's contents", e))?;
    }
    insert_contents(conn, store_id, &id, &new.lines, &new.packages)?;
    let status_changed = current.status != new.status || current.status_label != new.status_label;
    let delivered_at = match (new.status, current.delivered_at) {
        (ShipmentStatus::Delivered, Some(at)) => Some(at),
        (ShipmentStatus::Delivered, None) => new.delivered_at(now),
        (_, at) => at,
    };
    conn.prepare_cached(
        "UPDATE fulfillments SET status = ?3, status_label = ?4, estimated_delivery = ?5,
                delivered_at = ?6, updated_at = ?7
         WHERE store_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            id,
            new.status.as_str(),
            new.status_label,
            new.estimated_delivery
                .or(current.estimated_delivery)
                .map(time::format_date),
            delivered_at.map(time::to_millis),
            time::to_millis(now),
        ])
    })
    .map_err(|e| map_err("updating a fulfillment", e))?;
    if status_changed {
        let mut entry = new.first_entry(now);
        entry.datetime = now;
        insert_history(conn, store_id, &id, &entry, now)?;
        let reason =
            waybill_core::reason::current(new.status, current.history.iter().chain([&entry]));
        conn.prepare_cached(
            "UPDATE fulfillments SET last_tracking_at = ?3, exception_reason = ?4
             WHERE store_id = ?1 AND id = ?2",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                store_id,
                id,
                time::to_millis(now),
                reason.map(ExceptionReason::as_str)
            ])
        })
        .map_err(|e| map_err("updating a fulfillment", e))?;
    }
    // The ledger moves when the fulfillment starts or stops counting.
    let ledger = LedgerChange::replacing(
        current.status.is_live(),
        new.status.is_live(),
        &quantities(&current)?,
        &new.lines,
    );
    let seq = record_event(
        conn,
        store_id,
        &order_id,
        "fulfillment.updated",
        Some(&id),
        EventData {
            ledger,
            ..EventData::status(new.status.as_str(), Some(current.status.as_str()))
        },
        now,
    )?;
    if status_changed {
        enqueue_runs(
            conn,
            store_id,
            &order_id,
            seq,
            &id,
            new.status.as_str(),
            now,
        )?;
    }
    Ok((load_one_fulfillment(conn, store_id, &order_id, &id)?, false))
}

fn quantities(f: &Fulfillment) -> StoreResult<Vec<(String, Quantity)>> {
    f.lines
        .iter()
        .map(|l| {
            Quantity::new("quantity", i64::from(l.quantity))
                .map(|q| (l.line_item_id.clone(), q))
                .map_err(|e| StoreError::internal("decoding a stored quantity", e))
        })
        .collect()
}

pub(super) fn update_order(
    conn: &Connection,
    store_id: &str,
    order: &OrderRef,
    update: OrderUpdate,
    now: Timestamp,
) -> StoreResult<Order> {
    let (order_id, _) = resolve_order(conn, store_id, order)?;
    let existing = load_line_items(conn, &order_id)?;
    let details = to_json("encoding order details", &update.details)?;
    conn.prepare_cached(
        "UPDATE orders SET details = ?2, customer_email = ?3, created_at = COALESCE(?4, created_at)
         WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            order_id,
            details,
            update.details.customer_email(),
            update.created_at.map(time::to_millis),
        ])
    })
    .map_err(|e| map_err("updating an order", e))?;
    let mut next_position = existing.len() as i64;
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
            conn.prepare_cached(
                "UPDATE line_items SET product_id = ?3, variant_id = ?4, sku = ?5, title = ?6,
                        quantity = ?7, price = ?8, extra = ?9
                 WHERE order_id = ?1 AND id = ?2",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    order_id,
                    line.id,
                    line.product_id,
                    line.variant_id,
                    line.sku,
                    line.title,
                    line.quantity.get(),
                    line.price.map(|p| p.to_string()),
                    extra,
                ])
            })
            .map_err(|e| map_err("updating a line item", e))?;
        } else {
            insert_line(conn, &order_id, next_position, line)?;
            next_position += 1;
        }
    }
    record_event(
        conn,
        store_id,
        &order_id,
        "order.updated",
        None,
        EventData::default(),
        now,
    )?;
    load_order_by_id(conn, store_id, &order_id)
}

fn insert_line(
    conn: &Connection,
    order_id: &str,
    position: i64,
    line: &NewLineItem,
) -> StoreResult<()> {
    let extra = to_json("encoding line item extras", &line.extra)?;
    conn.prepare_cached(
        "INSERT INTO line_items (order_id, id, position, product_id, variant_id, sku,
                                 title, quantity, price, extra)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            order_id,
            line.id,
            position,
            line.product_id,
            line.variant_id,
            line.sku,
            line.title,
            line.quantity.get(),
            line.price.map(|p| p.to_string()),
            extra,
        ])
    })
    .map_err(|e| map_err("inserting a line item", e))?;
    Ok(())
}

pub(super) fn list_orders(
    conn: &Connection,
    store_id: &str,
    query: &OrderQuery,
) -> StoreResult<OrderPage> {
    // With a search, its few matches drive the query through the primary key; the unary `+`
    // keeps SQLite from walking all the store's orders on a store_id index instead.
    let mut filters = String::from(if query.search_text().is_some() {
        "+store_id = ?"
    } else {
        "store_id = ?"
    });
    let mut args: Vec<rusqlite::types::Value> = vec![store_id.to_owned().into()];
    if let Some(email) = &query.email {
        filters.push_str(" AND customer_email = ? COLLATE NOCASE");
        args.push(email.clone().into());
    }
    for (bound, column, op) in [
        (query.created_after, "created_at", ">"),
        (query.created_before, "created_at", "<"),
        (query.updated_after, "updated_at", ">"),
        (query.updated_before, "updated_at", "<"),
    ] {
        if let Some(at) = bound {
            filters.push_str(&format!(" AND {column} {op} ?"));
            args.push(time::to_millis(at).into());
        }
    }
    if !query.statuses.is_empty() {
        let marks = vec!["?"; query.statuses.len()].join(", ");
        filters.push_str(&format!(" AND status IN ({marks})"));
        args.extend(query.statuses.iter().map(|s| s.as_str().to_owned().into()));
    }
    if let Some(text) = query.search_text() {
        // One indexed lookup per way an order can match, united; see OrderQuery::search.
        // (CROSS JOIN fixes SQLite's join order: from the SKU or tracking number index.)
        let upper = crate::prefix_upper_bound(text);
        filters.push_str(
            " AND id IN (
                SELECT id FROM orders WHERE store_id = ? AND external_id >= ?",
        );
        args.extend([store_id.to_owned().into(), text.to_owned().into()]);
        if let Some(upper) = upper {
            filters.push_str(" AND external_id < ?");
            args.push(upper.into());
        }
        filters.push_str(
            "
                UNION SELECT id FROM orders
                 WHERE store_id = ? AND customer_email = ? COLLATE NOCASE
                UNION SELECT l.order_id FROM line_items l CROSS JOIN orders o ON o.id = l.order_id
                 WHERE l.sku = ? AND o.store_id = ?
                UNION SELECT f.order_id FROM packages p
                  CROSS JOIN fulfillments f ON f.store_id = p.store_id AND f.id = p.fulfillment_id
                 WHERE p.store_id = ? AND p.tracking_number = ?)",
        );
        args.extend([
            store_id.to_owned().into(),
            text.to_owned().into(),
            text.to_owned().into(),
            store_id.to_owned().into(),
            store_id.to_owned().into(),
            text.to_owned().into(),
        ]);
    }
    if let Some(carrier) = query
        .carrier
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        filters.push_str(
            " AND id IN (SELECT f.order_id FROM packages p
                  CROSS JOIN fulfillments f ON f.store_id = p.store_id AND f.id = p.fulfillment_id
                 WHERE p.store_id = ? AND p.carrier = ? COLLATE NOCASE)",
        );
        args.extend([store_id.to_owned().into(), carrier.to_owned().into()]);
    }
    if let Some(reason) = query.exception_reason {
        filters.push_str(
            " AND id IN (SELECT f.order_id FROM fulfillments f
                 WHERE f.store_id = ? AND f.exception_reason = ?)",
        );
        args.extend([
            store_id.to_owned().into(),
            reason.as_str().to_owned().into(),
        ]);
    }
    if let Some((kind, now)) = query.exception {
        let spec = crate::ExceptionQuery::new(now);
        let sub = crate::exceptions::orders_with_sql(
            kind,
            store_id,
            &spec,
            &mut super::exceptions::binder(&mut args),
        );
        filters.push_str(&format!(" AND id IN ({sub})"));
    }
    let total: i64 = conn
        .prepare(&format!("SELECT COUNT(*) FROM orders WHERE {filters}"))
        .and_then(|mut stmt| stmt.query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0)))
        .map_err(|e| map_err("counting orders", e))?;
    let limit = query.limit.clamp(1, MAX_PAGE_SIZE);
    let mut page_sql = format!("SELECT id FROM orders WHERE {filters}");
    let mut page_args = args;
    let keyset = query.after.as_ref().filter(|_| query.sort == OrderSort::Id);
    if let Some(after) = keyset {
        page_sql.push_str(" AND id > ?");
        page_args.push(after.clone().into());
    }
    page_sql.push_str(&format!(
        " ORDER BY {} LIMIT ? OFFSET ?",
        query.sort.order_by()
    ));
    page_args.push(i64::from(limit + 1).into());
    let offset = if keyset.is_some() { 0 } else { query.offset };
    page_args.push(i64::try_from(offset).unwrap_or(i64::MAX).into());
    let mut ids: Vec<String> = conn
        .prepare(&page_sql)
        .and_then(|mut stmt| {
            stmt.query_map(rusqlite::params_from_iter(page_args.iter()), |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("listing orders", e))?;
    let has_more = ids.len() > limit as usize;
    ids.truncate(limit as usize);
    let orders = ids
        .iter()
        .map(|id| load_order_by_id(conn, store_id, id))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(OrderPage {
        orders,
        total: total.max(0) as u64,
        has_more,
    })
}
