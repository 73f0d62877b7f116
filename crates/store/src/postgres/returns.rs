//! Returns on PostgreSQL (see [`crate::returns`]). Every write locks the order's row first
//! (`FOR UPDATE`), as fulfillment writes do, so concurrent returns and fulfillments of one order
//! run one after another and the returnable units are read under the lock; the conditional
//! update of `line_items.returned` is the second guard.

use deadpool_postgres::Transaction;
use tokio_postgres::types::Json;
use waybill_core::carrier_update::CarrierReport;
use waybill_core::returns::{
    ReturnStep, ReturnableLine, check_returnable, check_returns_covered, plan_carrier_report,
};
use waybill_core::{
    DomainError, HistoryEntry, LedgerEffect, Location, NewReturn, OrderRef, Package, Return,
    ReturnLine, ReturnStatus, ReturnUpdate, ShipmentStatus, Timestamp, time,
};

use super::orders::{
    Event, LineCounter, Touched, lock_order, move_counter, parse_status, parse_uuid, record_event,
    resolve_order, stored_u32,
};
use super::{PgResult, execute, query, query_opt};
use crate::StoreError;
use crate::automations::AutomationTrigger;
use crate::events::EventData;
use crate::returns::ReturnQuery;

fn parse_return_status(text: &str) -> PgResult<ReturnStatus> {
    text.parse()
        .map_err(|e| StoreError::internal("decoding a stored return status", e).into())
}

async fn load_returnable(tx: &Transaction<'_>, order_id: &str) -> PgResult<Vec<ReturnableLine>> {
    query(
        tx,
        "loading the returnable units",
        "SELECT id, fulfilled, returned FROM line_items WHERE order_id = $1",
        &[&order_id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(ReturnableLine {
            id: r.get(0),
            fulfilled: stored_u32("decoding a stored quantity", r.get(1))?,
            returned: stored_u32("decoding a stored quantity", r.get(2))?,
        })
    })
    .collect()
}

/// Adds (`Reserve`) or gives back (`Release`) a return's units on its lines. Adding checks the
/// bound in the statement itself.
/// After a fulfillment of the order was cancelled or replaced in this transaction, under the
/// order's lock (which return writes take too): refuses the change when a line now has more
/// units in returns than fulfilled. The error rolls the whole change back.
pub(super) async fn check_fulfillment_change(
    tx: &Transaction<'_>,
    order_id: &str,
    fulfillment_id: &str,
    action: &str,
) -> PgResult<()> {
    let lines = load_returnable(tx, order_id).await?;
    check_returns_covered(fulfillment_id, action, &lines).map_err(StoreError::from)?;
    Ok(())
}

async fn move_returned(
    tx: &Transaction<'_>,
    order_id: &str,
    units: &[(String, u32)],
    effect: LedgerEffect,
) -> PgResult<()> {
    let units: Vec<(&str, u32)> = units.iter().map(|(id, q)| (id.as_str(), *q)).collect();
    move_counter(tx, order_id, LineCounter::Returned, &units, effect).await
}

async fn insert_history(
    tx: &Transaction<'_>,
    store_id: &str,
    return_id: &str,
    entry: &HistoryEntry,
    now: Timestamp,
) -> PgResult<()> {
    let location = entry.location.as_ref().map(Json);
    execute(
        tx,
        "inserting a return history entry",
        "INSERT INTO return_history (store_id, return_id, status, message, happened_at, location,
                                     received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &store_id,
            &return_id,
            &entry.status,
            &entry.message,
            &time::to_millis(entry.datetime),
            &location,
            &time::to_millis(now),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn create_return(
    tx: &Transaction<'_>,
    store_id: &str,
    order: &OrderRef,
    new: &NewReturn,
    now: Timestamp,
) -> PgResult<Return> {
    let (order_id, _) = resolve_order(tx, store_id, order, true).await?;
    let id = new.id_or_generate();
    if new.id.is_some()
        && query_opt(
            tx,
            "looking up a return",
            "SELECT 1 FROM returns WHERE store_id = $1 AND id = $2",
            &[&store_id, &id],
        )
        .await?
        .is_some()
    {
        return Err(StoreError::from(DomainError::DuplicateReturn(id)).into());
    }
    check_returnable(&load_returnable(tx, &order_id).await?, &new.units())
        .map_err(StoreError::from)?;
    let inserted = execute(
        tx,
        "inserting a return",
        "INSERT INTO returns (store_id, id, order_id, status, shipment_status, note, created_at,
                              updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         ON CONFLICT (store_id, id) DO NOTHING",
        &[
            &store_id,
            &id,
            &order_id,
            &ReturnStatus::Requested.as_str(),
            &ShipmentStatus::PreTransit.as_str(),
            &new.note,
            &time::to_millis(now),
        ],
    )
    .await?;
    if inserted == 0 {
        // Another order of the store took the id since the check above.
        return Err(StoreError::from(DomainError::DuplicateReturn(id)).into());
    }
    for (position, line) in new.lines.iter().enumerate() {
        let position = i32::try_from(position).unwrap_or(i32::MAX);
        let quantity = i32::try_from(line.quantity.get()).unwrap_or(i32::MAX);
        execute(
            tx,
            "inserting a return line",
            "INSERT INTO return_lines (store_id, return_id, line_item_id, position, quantity,
                                       reason, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &store_id,
                &id,
                &line.line_item_id,
                &position,
                &quantity,
                &line.reason.as_str(),
                &line.note,
            ],
        )
        .await?;
    }
    insert_packages(tx, store_id, &id, &new.packages).await?;
    let units: Vec<(String, u32)> = new.units().into_iter().map(|(l, q)| (l, q.get())).collect();
    move_returned(tx, &order_id, &units, LedgerEffect::Reserve).await?;
    insert_history(tx, store_id, &id, &new.first_entry(now), now).await?;
    let created = load_return(tx, store_id, &id).await?;
    record_event(
        tx,
        store_id,
        &order_id,
        Event {
            kind: "return.created",
            fulfillment_id: None,
            data: EventData {
                return_record: Some(created.clone()),
                ..EventData::status(created.status.as_str(), None)
            },
            trigger: None,
            touched: Touched::Order,
        },
        now,
    )
    .await?;
    enqueue_return_runs(tx, store_id, &order_id, &id, created.status, now).await?;
    Ok(created)
}

/// Queues a run of every enabled automation of the store triggered by the return reaching
/// `status` (of the return's carrier, if the automation names one), tied to the order's newest
/// event (the `return.*` event just written, under the order's lock). The unique key
/// (automation, return, trigger) makes a status reached again add nothing.
async fn enqueue_return_runs(
    tx: &Transaction<'_>,
    store_id: &str,
    order_id: &str,
    return_id: &str,
    status: ReturnStatus,
    now: Timestamp,
) -> PgResult<()> {
    execute(
        tx,
        "queueing return automation runs",
        "INSERT INTO automation_runs (automation_id, store_id, order_id, seq, outbox_id,
                                      return_id, trigger, next_attempt_at, created_at,
                                      updated_at)
         SELECT a.id, a.store_id, ord.id, o.seq, o.id, $3, a.trigger, $5, $5, $5
         FROM orders ord
         JOIN outbox o ON o.order_id = ord.id AND o.seq = ord.event_seq
         JOIN automations a ON a.store_id = $1 AND a.trigger = $4 AND a.enabled
         WHERE ord.id = $2
           AND (a.carrier IS NULL OR EXISTS (
                SELECT 1 FROM return_packages p
                WHERE p.store_id = $1 AND p.return_id = $3
                  AND lower(p.carrier) = lower(a.carrier)))
         ON CONFLICT (automation_id, return_id, trigger) DO NOTHING",
        &[
            &store_id,
            &order_id,
            &return_id,
            &AutomationTrigger::Return(status).as_str(),
            &time::to_millis(now),
        ],
    )
    .await?;
    Ok(())
}

async fn insert_packages(
    tx: &Transaction<'_>,
    store_id: &str,
    return_id: &str,
    packages: &[Package],
) -> PgResult<()> {
    for (position, p) in packages.iter().enumerate() {
        let position = i32::try_from(position).unwrap_or(i32::MAX);
        execute(
            tx,
            "inserting a return package",
            "INSERT INTO return_packages (store_id, return_id, position, carrier, tracking_number,
                                          tracking_url)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &store_id,
                &return_id,
                &position,
                &p.carrier,
                &p.tracking_number,
                &p.tracking_url,
            ],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn update_return(
    tx: &Transaction<'_>,
    store_id: &str,
    return_id: &str,
    update: &ReturnUpdate,
    now: Timestamp,
) -> PgResult<Return> {
    let order_id: String = query_opt(
        tx,
        "looking up a return",
        "SELECT order_id FROM returns WHERE store_id = $1 AND id = $2",
        &[&store_id, &return_id],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| StoreError::from(DomainError::ReturnNotFound(return_id.to_owned())))?;
    lock_order(tx, &order_id).await?;
    // Read under the lock: the status another request may just have changed.
    let current = load_return(tx, store_id, return_id).await?;
    let change = update.apply(&current, now).map_err(StoreError::from)?;
    move_returned(tx, &order_id, &current.units(), change.ledger).await?;
    execute(
        tx,
        "updating a return",
        "UPDATE returns SET status = $3, shipment_status = $4, updated_at = $5
         WHERE store_id = $1 AND id = $2",
        &[
            &store_id,
            &return_id,
            &change.status.as_str(),
            &change.shipment_status.as_str(),
            &time::to_millis(now),
        ],
    )
    .await?;
    for entry in &change.entries {
        insert_history(tx, store_id, return_id, entry, now).await?;
    }
    let updated = load_return(tx, store_id, return_id).await?;
    record_event(
        tx,
        store_id,
        &order_id,
        Event {
            kind: "return.updated",
            fulfillment_id: None,
            data: EventData {
                return_record: Some(updated.clone()),
                ..EventData::status(updated.status.as_str(), Some(current.status.as_str()))
            },
            trigger: None,
            touched: Touched::Order,
        },
        now,
    )
    .await?;
    if updated.status != current.status {
        enqueue_return_runs(tx, store_id, &order_id, return_id, updated.status, now).await?;
    }
    Ok(updated)
}

/// The return of the store with this id.
pub(super) async fn load_return(
    tx: &Transaction<'_>,
    store_id: &str,
    return_id: &str,
) -> PgResult<Return> {
    let what = "loading a return";
    let head = query_opt(
        tx,
        what,
        "SELECT r.order_id, o.external_id, r.status, r.shipment_status, r.note, r.created_at,
                r.updated_at
         FROM returns r JOIN orders o ON o.id = r.order_id
         WHERE r.store_id = $1 AND r.id = $2",
        &[&store_id, &return_id],
    )
    .await?
    .ok_or_else(|| StoreError::from(DomainError::ReturnNotFound(return_id.to_owned())))?;
    let order_id: String = head.get(0);

    let lines = query(
        tx,
        what,
        "SELECT rl.line_item_id, rl.quantity, rl.reason, rl.note, li.title, li.sku
         FROM return_lines rl
         JOIN line_items li ON li.order_id = $3 AND li.id = rl.line_item_id
         WHERE rl.store_id = $1 AND rl.return_id = $2
         ORDER BY rl.position",
        &[&store_id, &return_id, &order_id],
    )
    .await?
    .iter()
    .map(|r| {
        let reason: String = r.get(2);
        Ok(ReturnLine {
            line_item_id: r.get(0),
            quantity: stored_u32("decoding a stored quantity", r.get(1))?,
            reason: reason
                .parse()
                .map_err(|e| StoreError::internal("decoding a stored return reason", e))?,
            note: r.get(3),
            title: r.get(4),
            sku: r.get(5),
        })
    })
    .collect::<PgResult<Vec<_>>>()?;

    let packages = query(
        tx,
        what,
        "SELECT carrier, tracking_number, tracking_url FROM return_packages
         WHERE store_id = $1 AND return_id = $2 ORDER BY position",
        &[&store_id, &return_id],
    )
    .await?
    .iter()
    .map(|r| Package {
        carrier: r.get(0),
        tracking_number: r.get(1),
        tracking_url: r.get(2),
    })
    .collect();

    let history = query(
        tx,
        what,
        "SELECT status, message, happened_at, location FROM return_history
         WHERE store_id = $1 AND return_id = $2 ORDER BY happened_at, id",
        &[&store_id, &return_id],
    )
    .await?
    .iter()
    .map(|r| {
        let location: Option<Json<Location>> = r.get(3);
        HistoryEntry {
            status: r.get(0),
            message: r.get(1),
            datetime: time::from_millis(r.get(2)),
            location: location.map(|l| l.0),
            reason: None,
        }
    })
    .collect();

    let status: String = head.get(2);
    let shipment: String = head.get(3);
    Ok(Return {
        id: return_id.to_owned(),
        order_id: parse_uuid(&order_id)?,
        order_external_id: head.get(1),
        created_at: time::from_millis(head.get(5)),
        updated_at: time::from_millis(head.get(6)),
        status: parse_return_status(&status)?,
        shipment_status: parse_status(&shipment)?,
        packages,
        lines,
        note: head.get(4),
        history,
    })
}

pub(super) async fn list_returns(
    tx: &Transaction<'_>,
    store_id: &str,
    q: &ReturnQuery,
) -> PgResult<Vec<Return>> {
    let order_id = match &q.order {
        Some(order) => Some(resolve_order(tx, store_id, order, false).await?.0),
        None => None,
    };
    let after = match &q.after {
        Some(id) => {
            let row = query_opt(
                tx,
                "looking up a return",
                "SELECT created_at, id FROM returns WHERE store_id = $1 AND id = $2",
                &[&store_id, id],
            )
            .await?
            .ok_or_else(|| StoreError::from(DomainError::ReturnNotFound(id.clone())))?;
            Some((row.get::<_, i64>(0), row.get::<_, String>(1)))
        }
        None => None,
    };
    let limit = i64::from(q.page_size());
    let status = q.status.map(|s| s.as_str());
    let tracking = q.tracking_needle();
    let ids: Vec<String> = query(
        tx,
        "listing returns",
        "SELECT id FROM returns
         WHERE store_id = $1 AND ($2::text IS NULL OR order_id = $2)
           AND ($3::text IS NULL OR status = $3)
           AND ($4::bigint IS NULL OR (created_at, id) > ($4, $5::text))
           AND ($7::text IS NULL OR EXISTS (
               SELECT 1 FROM return_packages p
               WHERE p.store_id = returns.store_id AND p.return_id = returns.id
                 AND strpos(lower(replace(p.tracking_number, ' ', '')), $7) > 0))
         ORDER BY created_at, id LIMIT $6",
        &[
            &store_id,
            &order_id,
            &status,
            &after.as_ref().map(|a| a.0),
            &after.as_ref().map(|a| a.1.clone()),
            &limit,
            &tracking,
        ],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut returns = Vec::with_capacity(ids.len());
    for id in ids {
        returns.push(load_return(tx, store_id, &id).await?);
    }
    Ok(returns)
}

pub(super) async fn apply_carrier_report(
    tx: &Transaction<'_>,
    store_id: &str,
    tracking_number: &str,
    report: &CarrierReport,
    now: Timestamp,
) -> PgResult<Option<Return>> {
    let found = query_opt(
        tx,
        "finding a return by tracking number",
        "SELECT r.id FROM return_packages p
         JOIN returns r ON r.store_id = p.store_id AND r.id = p.return_id
         WHERE p.store_id = $1 AND p.tracking_number = $2
         ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
        &[&store_id, &tracking_number],
    )
    .await?;
    let Some(row) = found else {
        return Ok(None);
    };
    let return_id: String = row.get(0);
    // `update_return` locks the order and reads the return again under the lock; the plan is
    // made from that read.
    let order_id: String = query_opt(
        tx,
        "looking up a return",
        "SELECT order_id FROM returns WHERE store_id = $1 AND id = $2",
        &[&store_id, &return_id],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| StoreError::from(DomainError::ReturnNotFound(return_id.clone())))?;
    lock_order(tx, &order_id).await?;
    let current = load_return(tx, store_id, &return_id).await?;
    let steps = plan_carrier_report(&current, report);
    if steps.is_empty() {
        return Ok(Some(current));
    }
    for step in steps {
        match step {
            ReturnStep::Append(entry) => {
                insert_history(tx, store_id, &return_id, &entry, now).await?;
            }
            ReturnStep::Update(update) => {
                update_return(tx, store_id, &return_id, &update, now).await?;
            }
        }
    }
    load_return(tx, store_id, &return_id).await.map(Some)
}
