//! Returns on SQLite (see [`crate::returns`]). Writes run on the writer's connection inside
//! its transaction, so every command on an order is serialized; the conditional update of
//! `line_items.returned` is the second guard of the returns rule.

use rusqlite::{Connection, OptionalExtension, params};
use waybill_core::carrier_update::CarrierReport;
use waybill_core::returns::{
    ReturnStep, ReturnableLine, check_returnable, check_returns_covered, plan_carrier_report,
};
use waybill_core::{
    DomainError, HistoryEntry, LedgerEffect, NewReturn, OrderRef, Package, Quantity, Return,
    ReturnLine, ReturnStatus, ReturnUpdate, ShipmentStatus, Timestamp, time,
};

use super::map_err;
use super::orders::{
    LineCounter, from_json, move_counter, parse_status, parse_uuid, record_event, resolve_order,
    to_json,
};
use crate::automations::AutomationTrigger;
use crate::events::EventData;
use crate::returns::ReturnQuery;
use crate::{StoreError, StoreResult};

fn parse_return_status(text: &str) -> StoreResult<ReturnStatus> {
    text.parse()
        .map_err(|e| StoreError::internal("decoding a stored return status", e))
}

fn load_returnable(conn: &Connection, order_id: &str) -> StoreResult<Vec<ReturnableLine>> {
    conn.prepare_cached("SELECT id, fulfilled, returned FROM line_items WHERE order_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_map([order_id], |r| {
                Ok(ReturnableLine {
                    id: r.get(0)?,
                    fulfilled: r.get(1)?,
                    returned: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("loading the returnable units", e))
}

/// Adds (`Reserve`) or gives back (`Release`) a return's units on its lines. Adding checks
/// the bound in the statement itself.
/// After a fulfillment of the order was cancelled or replaced (in this transaction, on the
/// single writer): refuses the change when a line now has more units in returns than
/// fulfilled. The error rolls the whole change back.
pub(super) fn check_fulfillment_change(
    conn: &Connection,
    order_id: &str,
    fulfillment_id: &str,
    action: &str,
) -> StoreResult<()> {
    check_returns_covered(fulfillment_id, action, &load_returnable(conn, order_id)?)?;
    Ok(())
}

fn move_returned(
    conn: &Connection,
    order_id: &str,
    units: &[(String, u32)],
    effect: LedgerEffect,
) -> StoreResult<()> {
    let units = units.iter().map(|(id, q)| (id.as_str(), *q));
    move_counter(conn, order_id, LineCounter::Returned, units, effect)
}

fn insert_history(
    conn: &Connection,
    store_id: &str,
    return_id: &str,
    entry: &HistoryEntry,
    now: Timestamp,
) -> StoreResult<()> {
    let location = entry
        .location
        .as_ref()
        .map(|l| to_json("encoding a location", l))
        .transpose()?;
    conn.prepare_cached(
        "INSERT INTO return_history (store_id, return_id, status, message, happened_at, location,
                                     received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            return_id,
            entry.status,
            entry.message,
            time::to_millis(entry.datetime),
            location,
            time::to_millis(now),
        ])
    })
    .map_err(|e| map_err("inserting a return history entry", e))?;
    Ok(())
}

/// Queues a run of every enabled automation of the store triggered by the return reaching
/// `status` (of the return's carrier, if the automation names one), tied to the order's event
/// `seq` (the `return.*` event just written). The unique key (automation, return, trigger)
/// makes a status reached again add nothing.
fn enqueue_return_runs(
    conn: &Connection,
    store_id: &str,
    order_id: &str,
    seq: i64,
    return_id: &str,
    status: ReturnStatus,
    now: Timestamp,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO automation_runs (automation_id, store_id, order_id, seq, outbox_id,
                                      return_id, trigger, next_attempt_at, created_at,
                                      updated_at)
         SELECT a.id, a.store_id, ?2, ?3,
                (SELECT o.id FROM outbox o WHERE o.order_id = ?2 AND o.seq = ?3),
                ?4, a.trigger, ?6, ?6, ?6
         FROM automations a
         WHERE a.store_id = ?1 AND a.trigger = ?5 AND a.enabled = 1
           AND (a.carrier IS NULL OR EXISTS (
                SELECT 1 FROM return_packages p
                WHERE p.store_id = ?1 AND p.return_id = ?4
                  AND lower(p.carrier) = lower(a.carrier)))
         ON CONFLICT (automation_id, return_id, trigger) DO NOTHING",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            order_id,
            seq,
            return_id,
            AutomationTrigger::Return(status).as_str(),
            time::to_millis(now)
        ])
    })
    .map_err(|e| map_err("queueing return automation runs", e))?;
    Ok(())
}

fn return_exists(conn: &Connection, store_id: &str, id: &str) -> StoreResult<bool> {
    conn.prepare_cached("SELECT 1 FROM returns WHERE store_id = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.exists(params![store_id, id]))
        .map_err(|e| map_err("looking up a return", e))
}

pub(super) fn create_return(
    conn: &Connection,
    store_id: &str,
    order: &OrderRef,
    new: NewReturn,
    now: Timestamp,
) -> StoreResult<Return> {
    let (order_id, _) = resolve_order(conn, store_id, order)?;
    if let Some(id) = &new.id
        && return_exists(conn, store_id, id)?
    {
        return Err(DomainError::DuplicateReturn(id.clone()).into());
    }
    check_returnable(&load_returnable(conn, &order_id)?, &new.units())?;
    let id = new.id_or_generate();
    conn.prepare_cached(
        "INSERT INTO returns (store_id, id, order_id, status, shipment_status, note, created_at,
                              updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            id,
            order_id,
            ReturnStatus::Requested.as_str(),
            ShipmentStatus::PreTransit.as_str(),
            new.note,
            time::to_millis(now),
        ])
    })
    .map_err(|e| map_err("inserting a return", e))?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO return_lines (store_id, return_id, line_item_id, position, quantity,
                                       reason, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(|e| map_err("preparing return line insert", e))?;
    for (position, line) in new.lines.iter().enumerate() {
        stmt.execute(params![
            store_id,
            id,
            line.line_item_id,
            position as i64,
            line.quantity.get(),
            line.reason.as_str(),
            line.note,
        ])
        .map_err(|e| map_err("inserting a return line", e))?;
    }
    insert_packages(conn, store_id, &id, &new.packages)?;
    let units: Vec<(String, u32)> = new
        .units()
        .into_iter()
        .map(|(l, q): (String, Quantity)| (l, q.get()))
        .collect();
    move_returned(conn, &order_id, &units, LedgerEffect::Reserve)?;
    insert_history(conn, store_id, &id, &new.first_entry(now), now)?;
    let created = load_return(conn, store_id, &id)?;
    let seq = record_event(
        conn,
        store_id,
        &order_id,
        "return.created",
        None,
        EventData {
            return_record: Some(created.clone()),
            ..EventData::status(created.status.as_str(), None)
        },
        now,
    )?;
    enqueue_return_runs(conn, store_id, &order_id, seq, &id, created.status, now)?;
    Ok(created)
}

fn insert_packages(
    conn: &Connection,
    store_id: &str,
    return_id: &str,
    packages: &[Package],
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO return_packages (store_id, return_id, position, carrier, tracking_number,
                                          tracking_url)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(|e| map_err("preparing return package insert", e))?;
    for (position, p) in packages.iter().enumerate() {
        stmt.execute(params![
            store_id,
            return_id,
            position as i64,
            p.carrier,
            p.tracking_number,
            p.tracking_url
        ])
        .map_err(|e| map_err("inserting a return package", e))?;
    }
    Ok(())
}

pub(super) fn update_return(
    conn: &Connection,
    store_id: &str,
    return_id: &str,
    update: ReturnUpdate,
    now: Timestamp,
) -> StoreResult<Return> {
    let current = load_return(conn, store_id, return_id)?;
    let order_id = current.order_id.to_string();
    let change = update.apply(&current, now)?;
    let units = current.units();
    move_returned(conn, &order_id, &units, change.ledger)?;
    conn.prepare_cached(
        "UPDATE returns SET status = ?3, shipment_status = ?4, updated_at = ?5
         WHERE store_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            store_id,
            return_id,
            change.status.as_str(),
            change.shipment_status.as_str(),
            time::to_millis(now),
        ])
    })
    .map_err(|e| map_err("updating a return", e))?;
    for entry in &change.entries {
        insert_history(conn, store_id, return_id, entry, now)?;
    }
    let updated = load_return(conn, store_id, return_id)?;
    let seq = record_event(
        conn,
        store_id,
        &order_id,
        "return.updated",
        None,
        EventData {
            return_record: Some(updated.clone()),
            ..EventData::status(updated.status.as_str(), Some(current.status.as_str()))
        },
        now,
    )?;
    if updated.status != current.status {
        enqueue_return_runs(
            conn,
            store_id,
            &order_id,
            seq,
            return_id,
            updated.status,
            now,
        )?;
    }
    Ok(updated)
}

/// The return of the store with this id.
pub(super) fn load_return(
    conn: &Connection,
    store_id: &str,
    return_id: &str,
) -> StoreResult<Return> {
    let what = "loading a return";
    let head = conn
        .prepare_cached(
            "SELECT r.order_id, o.external_id, r.status, r.shipment_status, r.note, r.created_at,
                    r.updated_at
             FROM returns r JOIN orders o ON o.id = r.order_id
             WHERE r.store_id = ?1 AND r.id = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![store_id, return_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .optional()
        })
        .map_err(|e| map_err(what, e))?
        .ok_or_else(|| DomainError::ReturnNotFound(return_id.to_owned()))?;
    let (order_id, external_id, status, shipment, note, created, updated) = head;

    let lines = conn
        .prepare_cached(
            "SELECT rl.line_item_id, rl.quantity, rl.reason, rl.note, li.title, li.sku
             FROM return_lines rl
             JOIN line_items li ON li.order_id = ?3 AND li.id = rl.line_item_id
             WHERE rl.store_id = ?1 AND rl.return_id = ?2
             ORDER BY rl.position",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![store_id, return_id, order_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err(what, e))?
        .into_iter()
        .map(|(line_item_id, quantity, reason, note, title, sku)| {
            Ok(ReturnLine {
                line_item_id,
                quantity,
                reason: reason
                    .parse()
                    .map_err(|e| StoreError::internal("decoding a stored return reason", e))?,
                note,
                title,
                sku,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;

    let packages = conn
        .prepare_cached(
            "SELECT carrier, tracking_number, tracking_url FROM return_packages
             WHERE store_id = ?1 AND return_id = ?2 ORDER BY position",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![store_id, return_id], |r| {
                Ok(Package {
                    carrier: r.get(0)?,
                    tracking_number: r.get(1)?,
                    tracking_url: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err(what, e))?;

    let history = conn
        .prepare_cached(
            "SELECT status, message, happened_at, location FROM return_history
             WHERE store_id = ?1 AND return_id = ?2 ORDER BY happened_at, id",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![store_id, return_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err(what, e))?
        .into_iter()
        .map(|(status, message, at, location)| {
            Ok(HistoryEntry {
                status,
                message,
                datetime: time::from_millis(at),
                location: location
                    .map(|l| from_json("decoding a return history location", &l))
                    .transpose()?,
                reason: None,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;

    Ok(Return {
        id: return_id.to_owned(),
        order_id: parse_uuid(&order_id)?,
        order_external_id: external_id,
        created_at: time::from_millis(created),
        updated_at: time::from_millis(updated),
        status: parse_return_status(&status)?,
        shipment_status: parse_status(&shipment)?,
        packages,
        lines,
        note,
        history,
    })
}

pub(super) fn list_returns(
    conn: &Connection,
    store_id: &str,
    query: &ReturnQuery,
) -> StoreResult<Vec<Return>> {
    let order_id = match &query.order {
        Some(order) => Some(resolve_order(conn, store_id, order)?.0),
        None => None,
    };
    let after = match &query.after {
        Some(id) => {
            let found: Option<(i64, String)> = conn
                .prepare_cached(
                    "SELECT created_at, id FROM returns WHERE store_id = ?1 AND id = ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![store_id, id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(|e| map_err("looking up a return", e))?;
            Some(found.ok_or_else(|| DomainError::ReturnNotFound(id.clone()))?)
        }
        None => None,
    };
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM returns
             WHERE store_id = ?1 AND (?2 IS NULL OR order_id = ?2)
               AND (?3 IS NULL OR status = ?3)
               AND (?4 IS NULL OR (created_at, id) > (?4, ?5))
               AND (?7 IS NULL OR EXISTS (
                   SELECT 1 FROM return_packages p
                   WHERE p.store_id = returns.store_id AND p.return_id = returns.id
                     AND instr(lower(replace(p.tracking_number, ' ', '')), ?7) > 0))
             ORDER BY created_at, id LIMIT ?6",
        )
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    store_id,
                    order_id,
                    query.status.map(|s| s.as_str()),
                    after.as_ref().map(|a| a.0),
                    after.as_ref().map(|a| a.1.clone()),
                    query.page_size(),
                    query.tracking_needle(),
                ],
                |r| r.get(0),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("listing returns", e))?;
    ids.iter()
        .map(|id| load_return(conn, store_id, id))
        .collect()
}

pub(super) fn apply_carrier_report(
    conn: &Connection,
    store_id: &str,
    tracking_number: &str,
    report: &CarrierReport,
    now: Timestamp,
) -> StoreResult<Option<Return>> {
    let found: Option<String> = conn
        .prepare_cached(
            "SELECT r.id FROM return_packages p
             JOIN returns r ON r.store_id = p.store_id AND r.id = p.return_id
             WHERE p.store_id = ?1 AND p.tracking_number = ?2
             ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![store_id, tracking_number], |r| r.get(0))
                .optional()
        })
        .map_err(|e| map_err("finding a return by tracking number", e))?;
    let Some(return_id) = found else {
        return Ok(None);
    };
    let current = load_return(conn, store_id, &return_id)?;
    let steps = plan_carrier_report(&current, report);
    if steps.is_empty() {
        return Ok(Some(current));
    }
    for step in steps {
        match step {
            ReturnStep::Append(entry) => insert_history(conn, store_id, &return_id, &entry, now)?,
            ReturnStep::Update(update) => {
                update_return(conn, store_id, &return_id, update, now)?;
            }
        }
    }
    load_return(conn, store_id, &return_id).map(Some)
}
