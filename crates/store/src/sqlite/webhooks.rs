//! Webhook subscriptions, fan-out, claiming and the delivery log on SQLite.
//!
//! Every function here runs on a connection handed out by the writer (inside its transaction)
//! or by the read pool. The SQL is plain on purpose: the PostgreSQL backend ports it, claiming
//! with `FOR UPDATE SKIP LOCKED` where SQLite relies on its single writer.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;
use waybill_core::{Timestamp, time};

use super::map_err;
use crate::delivery_log::{self, Dialect, Param};
use crate::webhooks::{
    AttemptQuery, AttemptRecord, ClaimedDelivery, DeliveryNext, DeliveryQuery, DeliveryRecord,
    DeliveryResult, DeliveryState, NewWebhook, OutboxEvent, WebhookFlavor, WebhookHealth,
    WebhookRecord, WebhookStats, WebhookUpdate, success_codes, topic_selects,
};
use crate::{StoreError, StoreResult};

const SUBSCRIPTION_COLUMNS: &str = "id, store_id, flavor, url, topics, external_id, bearer_token, secret, enabled, disabled_reason, failing_since, created_at, updated_at, previous_secret, previous_secret_until";

fn topics_text(topics: &[String]) -> String {
    topics.join(",")
}

fn topics_list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn webhook_from_row(r: &Row<'_>) -> rusqlite::Result<WebhookRecord> {
    let flavor: String = r.get(2)?;
    Ok(WebhookRecord {
        id: r.get(0)?,
        store_id: r.get(1)?,
        flavor: WebhookFlavor::parse(&flavor).unwrap_or(WebhookFlavor::Redo),
        url: r.get(3)?,
        topics: topics_list(&r.get::<_, String>(4)?),
        external_id: r.get(5)?,
        bearer_token: r.get(6)?,
        secret: r.get(7)?,
        enabled: r.get::<_, i64>(8)? != 0,
        disabled_reason: r.get(9)?,
        failing_since: r.get::<_, Option<i64>>(10)?.map(time::from_millis),
        created_at: time::from_millis(r.get(11)?),
        updated_at: time::from_millis(r.get(12)?),
        previous_secret: r.get(13)?,
        previous_secret_until: r.get::<_, Option<i64>>(14)?.map(time::from_millis),
    })
}

pub(super) fn load_webhook(
    conn: &Connection,
    store_id: &str,
    webhook_id: &str,
) -> StoreResult<Option<WebhookRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE store_id = ?1 AND id = ?2"
    ))
    .and_then(|mut stmt| {
        stmt.query_row(params![store_id, webhook_id], webhook_from_row)
            .optional()
    })
    .map_err(|e| map_err("loading a webhook", e))
}

fn load_webhook_by_id(conn: &Connection, webhook_id: &str) -> StoreResult<Option<WebhookRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = ?1"
    ))
    .and_then(|mut stmt| {
        stmt.query_row(params![webhook_id], webhook_from_row)
            .optional()
    })
    .map_err(|e| map_err("loading a webhook", e))
}

pub(super) fn create_webhook(
    conn: &Connection,
    store_id: &str,
    new: NewWebhook,
    now: Timestamp,
) -> StoreResult<(WebhookRecord, bool)> {
    if !super::store_exists(conn, store_id)? {
        return Err(waybill_core::DomainError::StoreNotFound(store_id.to_owned()).into());
    }
    let now_ms = time::to_millis(now);
    if let Some(external_id) = &new.external_id {
        let existing: Option<String> = conn
            .prepare_cached(
                "SELECT id FROM webhook_subscriptions
                 WHERE store_id = ?1 AND flavor = ?2 AND external_id = ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![store_id, new.flavor.as_str(), external_id], |r| {
                    r.get(0)
                })
                .optional()
            })
            .map_err(|e| map_err("looking up a webhook by externalId", e))?;
        if let Some(id) = existing {
            conn.prepare_cached(
                "UPDATE webhook_subscriptions SET url = ?2, topics = ?3, bearer_token = ?4,
                 updated_at = ?5 WHERE id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    id,
                    new.url,
                    topics_text(&new.topics),
                    new.bearer_token,
                    now_ms
                ])
            })
            .map_err(|e| map_err("updating a webhook", e))?;
            let record = load_webhook(conn, store_id, &id)?
                .ok_or_else(|| StoreError::Internal("an updated webhook vanished".into()))?;
            return Ok((record, false));
        }
    }
    let id = format!("wh_{}", Uuid::now_v7().simple());
    conn.prepare_cached(
        "INSERT INTO webhook_subscriptions (id, store_id, flavor, url, topics, external_id,
             bearer_token, secret, enabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            id,
            store_id,
            new.flavor.as_str(),
            new.url,
            topics_text(&new.topics),
            new.external_id,
            new.bearer_token,
            new.secret,
            now_ms
        ])
    })
    .map_err(|e| map_err("inserting a webhook", e))?;
    let record = load_webhook(conn, store_id, &id)?
        .ok_or_else(|| StoreError::Internal("a created webhook vanished".into()))?;
    Ok((record, true))
}

pub(super) fn list_webhooks(
    conn: &Connection,
    store_id: &str,
    flavor: WebhookFlavor,
) -> StoreResult<Vec<WebhookRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
         WHERE store_id = ?1 AND flavor = ?2 ORDER BY created_at, id"
    ))
    .and_then(|mut stmt| {
        stmt.query_map(params![store_id, flavor.as_str()], webhook_from_row)?
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e| map_err("listing webhooks", e))
}

pub(super) fn update_webhook(
    conn: &Connection,
    store_id: &str,
    webhook_id: &str,
    update: WebhookUpdate,
    now: Timestamp,
) -> StoreResult<Option<WebhookRecord>> {
    let Some(current) = load_webhook(conn, store_id, webhook_id)? else {
        return Ok(None);
    };
    let url = update.url.unwrap_or(current.url);
    let topics = update.topics.unwrap_or(current.topics);
    let bearer = update.bearer_token.unwrap_or(current.bearer_token);
    let (enabled, reason, failing_since) = match update.enabled {
        Some(true) => (true, None, None),
        Some(false) => (false, Some("disabled by the store".to_owned()), None),
        None => (
            current.enabled,
            current.disabled_reason,
            current.failing_since.map(time::to_millis),
        ),
    };
    conn.prepare_cached(
        "UPDATE webhook_subscriptions SET url = ?2, topics = ?3, bearer_token = ?4, enabled = ?5,
             disabled_reason = ?6, failing_since = ?7, updated_at = ?8
         WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            webhook_id,
            url,
            topics_text(&topics),
            bearer,
            i64::from(enabled),
            reason,
            failing_since,
            time::to_millis(now)
        ])
    })
    .map_err(|e| map_err("updating a webhook", e))?;
    load_webhook(conn, store_id, webhook_id)
}

pub(super) fn delete_webhook(
    conn: &Connection,
    store_id: &str,
    webhook_id: &str,
) -> StoreResult<bool> {
    let changed = conn
        .prepare_cached("DELETE FROM webhook_subscriptions WHERE store_id = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.execute(params![store_id, webhook_id]))
        .map_err(|e| map_err("deleting a webhook", e))?;
    Ok(changed == 1)
}

pub(super) fn store_secret(
    conn: &Connection,
    store_id: &str,
    candidate: &str,
    now: Timestamp,
) -> StoreResult<String> {
    if !super::store_exists(conn, store_id)? {
        return Err(waybill_core::DomainError::StoreNotFound(store_id.to_owned()).into());
    }
    conn.prepare_cached(
        "INSERT INTO webhook_store_secrets (store_id, secret, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (store_id) DO NOTHING",
    )
    .and_then(|mut stmt| stmt.execute(params![store_id, candidate, time::to_millis(now)]))
    .map_err(|e| map_err("storing a store's webhook secret", e))?;
    conn.prepare_cached("SELECT secret FROM webhook_store_secrets WHERE store_id = ?1")
        .and_then(|mut stmt| stmt.query_row(params![store_id], |r| r.get(0)))
        .map_err(|e| map_err("reading a store's webhook secret", e))
}

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<OutboxEvent> {
    Ok(OutboxEvent {
        outbox_id: r.get(0)?,
        event_id: r.get(1)?,
        store_id: r.get(2)?,
        order_id: r.get(3)?,
        seq: r.get(4)?,
        event_type: r.get(5)?,
        fulfillment_id: r.get(6)?,
        data: r.get(7)?,
        created_at: time::from_millis(r.get(8)?),
    })
}

const OUTBOX_COLUMNS: &str =
    "id, event_id, store_id, order_id, seq, type, fulfillment_id, data, created_at";

/// Inserts a pending delivery of `event` to `webhook_id`, or, with `reset`, puts an existing one
/// back to pending with its attempts cleared (replay, redelivery). A reset keeps any lease (a
/// delivery in flight is not sent twice at once) but bumps the claim counter, so the attempt in
/// flight cannot mark the reset delivery done; it goes out again once the lease ends. Returns
/// whether a row changed.
fn enqueue(
    conn: &Connection,
    webhook_id: &str,
    event: &OutboxEvent,
    now_ms: i64,
    reset: bool,
) -> StoreResult<bool> {
    let sql = if reset {
        "INSERT INTO webhook_deliveries (subscription_id, outbox_id, event_id, store_id, order_id,
             seq, type, fulfillment_id, data, event_at, status, attempts, next_attempt_at,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', 0, ?11, ?11, ?11)
         ON CONFLICT (subscription_id, outbox_id) DO UPDATE SET status = 'pending', attempts = 0,
             claims = webhook_deliveries.claims + 1,
             next_attempt_at = excluded.next_attempt_at, last_error = NULL,
             updated_at = excluded.updated_at"
    } else {
        "INSERT INTO webhook_deliveries (subscription_id, outbox_id, event_id, store_id, order_id,
             seq, type, fulfillment_id, data, event_at, status, attempts, next_attempt_at,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', 0, ?11, ?11, ?11)
         ON CONFLICT (subscription_id, outbox_id) DO NOTHING"
    };
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                webhook_id,
                event.outbox_id,
                event.event_id,
                event.store_id,
                event.order_id,
                event.seq,
                event.event_type,
                event.fulfillment_id,
                event.data,
                time::to_millis(event.created_at),
                now_ms
            ])
        })
        .map_err(|e| map_err("enqueueing a delivery", e))?;
    Ok(changed > 0)
}

/// Copies outbox events past the cursor into deliveries for every enabled subscription that
/// selects them (and existed when the event was written). Advances the cursor and returns how
/// many outbox events it passed.
pub(super) fn fan_out(
    conn: &Connection,
    cursor: &str,
    limit: u32,
    now: Timestamp,
) -> StoreResult<u64> {
    let position: i64 = conn
        .prepare_cached("SELECT outbox_id FROM webhook_cursors WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([cursor], |r| r.get(0)).optional())
        .map_err(|e| map_err("reading the fan-out cursor", e))?
        .unwrap_or(0);
    let events: Vec<OutboxEvent> = conn
        .prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(params![position, limit], event_from_row)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("reading the outbox", e))?;
    let Some(last) = events.last().map(|e| e.outbox_id) else {
        return Ok(0);
    };
    let mut by_store: HashMap<String, Vec<WebhookRecord>> = HashMap::new();
    let now_ms = time::to_millis(now);
    for event in &events {
        if !by_store.contains_key(&event.store_id) {
            let subs = conn
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
                     WHERE store_id = ?1 AND enabled = 1"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map([&event.store_id], webhook_from_row)?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(|e| map_err("loading subscriptions for fan-out", e))?;
            by_store.insert(event.store_id.clone(), subs);
        }
        for sub in by_store.get(&event.store_id).into_iter().flatten() {
            if sub.created_at <= event.created_at
                && topic_selects(sub.flavor, &sub.topics, &event.event_type)
            {
                enqueue(conn, &sub.id, event, now_ms, false)?;
            }
        }
    }
    conn.prepare_cached(
        "INSERT INTO webhook_cursors (name, outbox_id) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET outbox_id = excluded.outbox_id",
    )
    .and_then(|mut stmt| stmt.execute(params![cursor, last]))
    .map_err(|e| map_err("advancing the fan-out cursor", e))?;
    Ok(events.len() as u64)
}

/// Claims up to `limit` due deliveries: for each (subscription, order) only the lowest-seq one
/// not yet delivered or failed, and only if its lease (if any) has expired.
pub(super) fn claim(
    conn: &Connection,
    now: Timestamp,
    limit: u32,
    lease_ms: i64,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let now_ms = time::to_millis(now);
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT d.id FROM webhook_deliveries d
             JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.enabled = 1
             WHERE d.status IN ('pending', 'in_flight')
               AND d.next_attempt_at <= ?1
               AND (d.lease_until IS NULL OR d.lease_until <= ?1)
               AND NOT EXISTS (
                   SELECT 1 FROM webhook_deliveries e
                   WHERE e.subscription_id = d.subscription_id AND e.order_id = d.order_id
                     AND e.status IN ('pending', 'in_flight') AND e.seq < d.seq)
             ORDER BY d.next_attempt_at, d.id
             LIMIT ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![now_ms, limit], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("finding due deliveries", e))?;
    let mut webhooks: HashMap<String, WebhookRecord> = HashMap::new();
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let row = conn
            .prepare_cached(
                "UPDATE webhook_deliveries SET status = 'in_flight', lease_until = ?2,
                     attempts = attempts + 1, claims = claims + 1, updated_at = ?3
                 WHERE id = ?1
                 RETURNING subscription_id, claims, attempts, outbox_id, event_id, store_id,
                     order_id, seq, type, fulfillment_id, data, event_at, payload",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![id, now_ms + lease_ms, now_ms], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        OutboxEvent {
                            outbox_id: r.get(3)?,
                            event_id: r.get(4)?,
                            store_id: r.get(5)?,
                            order_id: r.get(6)?,
                            seq: r.get(7)?,
                            event_type: r.get(8)?,
                            fulfillment_id: r.get(9)?,
                            data: r.get(10)?,
                            created_at: time::from_millis(r.get(11)?),
                        },
                        r.get::<_, Option<String>>(12)?,
                    ))
                })
            })
            .map_err(|e| map_err("claiming a delivery", e))?;
        let (webhook_id, claim, attempts, event, payload) = row;
        if !webhooks.contains_key(&webhook_id) {
            let Some(record) = load_webhook_by_id(conn, &webhook_id)? else {
                continue;
            };
            webhooks.insert(webhook_id.clone(), record);
        }
        let Some(webhook) = webhooks.get(&webhook_id).cloned() else {
            continue;
        };
        claimed.push(ClaimedDelivery {
            delivery_id: id,
            claim,
            attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
            webhook,
            event,
            payload,
        });
    }
    Ok(claimed)
}

/// Records an attempt and moves the delivery on, unless its claim is stale (then only the
/// attempt is logged). Returns whether the delivery was updated.
pub(super) fn finish(
    conn: &Connection,
    result: DeliveryResult,
    now: Timestamp,
) -> StoreResult<bool> {
    let now_ms = time::to_millis(now);
    let attempt_no: Option<i64> = conn
        .prepare_cached("SELECT attempts FROM webhook_deliveries WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([result.delivery_id], |r| r.get(0))
                .optional()
        })
        .map_err(|e| map_err("reading a delivery", e))?;
    let Some(attempt_no) = attempt_no else {
        // The subscription (and with it the delivery) was deleted meanwhile.
        return Ok(false);
    };
    let log = &result.attempt;
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (delivery_id, subscription_id, attempt, at, status_code,
             latency_ms, error, response_excerpt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            result.delivery_id,
            result.webhook_id,
            attempt_no,
            time::to_millis(log.at),
            log.status_code,
            i64::try_from(log.latency_ms).unwrap_or(i64::MAX),
            log.error,
            log.response_excerpt
        ])
    })
    .map_err(|e| map_err("logging an attempt", e))?;
    let (status, next_at) = match result.next {
        DeliveryNext::Delivered => ("delivered", now_ms),
        DeliveryNext::RetryAt(at) => ("pending", time::to_millis(at)),
        DeliveryNext::Failed => ("failed", now_ms),
    };
    let error = match (&log.error, log.status_code) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(code)) if !matches!(result.next, DeliveryNext::Delivered) => {
            Some(format!("HTTP {code}"))
        }
        _ => None,
    };
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = ?3, next_attempt_at = ?4, lease_until = NULL,
                 last_error = ?5, payload = COALESCE(payload, ?6), updated_at = ?7
             WHERE id = ?1 AND claims = ?2",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                result.delivery_id,
                result.claim,
                status,
                next_at,
                error,
                result.payload,
                now_ms
            ])
        })
        .map_err(|e| map_err("updating a delivery", e))?;
    let health = match &result.health {
        WebhookHealth::Healthy => conn
            .prepare_cached(
                "UPDATE webhook_subscriptions SET failing_since = NULL
                 WHERE id = ?1 AND failing_since IS NOT NULL",
            )
            .and_then(|mut stmt| stmt.execute(params![result.webhook_id])),
        WebhookHealth::Failing => conn
            .prepare_cached(
                "UPDATE webhook_subscriptions SET failing_since = ?2
                 WHERE id = ?1 AND failing_since IS NULL",
            )
            .and_then(|mut stmt| stmt.execute(params![result.webhook_id, now_ms])),
        WebhookHealth::Disable(reason) => conn
            .prepare_cached(
                "UPDATE webhook_subscriptions SET enabled = 0, disabled_reason = ?2,
                     updated_at = ?3 WHERE id = ?1",
            )
            .and_then(|mut stmt| stmt.execute(params![result.webhook_id, reason, now_ms])),
    };
    health.map_err(|e| map_err("updating a webhook's health", e))?;
    Ok(changed == 1)
}

/// Puts the subscription's events since `since` (back) in its queue. `None` if no such
/// subscription.
pub(super) fn replay(
    conn: &Connection,
    store_id: &str,
    webhook_id: &str,
    since: Timestamp,
    now: Timestamp,
) -> StoreResult<Option<u64>> {
    let Some(webhook) = load_webhook(conn, store_id, webhook_id)? else {
        return Ok(None);
    };
    let events: Vec<OutboxEvent> = conn
        .prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE store_id = ?1 AND created_at >= ?2
             ORDER BY id"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(params![store_id, time::to_millis(since)], event_from_row)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("reading the outbox for a replay", e))?;
    let now_ms = time::to_millis(now);
    let mut count = 0;
    for event in events
        .iter()
        .filter(|e| topic_selects(webhook.flavor, &webhook.topics, &e.event_type))
    {
        if enqueue(conn, &webhook.id, event, now_ms, true)? {
            count += 1;
        }
    }
    Ok(Some(count))
}

/// Puts one event (by event id) back in the subscription's queue. `false` if the subscription
/// or the event is unknown in this store.
pub(super) fn redeliver(
    conn: &Connection,
    store_id: &str,
    webhook_id: &str,
    event_id: &str,
    now: Timestamp,
) -> StoreResult<bool> {
    let Some(webhook) = load_webhook(conn, store_id, webhook_id)? else {
        return Ok(false);
    };
    let event = conn
        .prepare_cached(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE store_id = ?1 AND event_id = ?2"
        ))
        .and_then(|mut stmt| {
            stmt.query_row(params![store_id, event_id], event_from_row)
                .optional()
        })
        .map_err(|e| map_err("finding an event", e))?;
    let Some(event) = event else {
        return Ok(false);
    };
    enqueue(conn, &webhook.id, &event, time::to_millis(now), true)
}

pub(super) fn list_attempts(
    conn: &Connection,
    store_id: &str,
    query: &AttemptQuery,
) -> StoreResult<Vec<AttemptRecord>> {
    conn.prepare_cached(
        "SELECT a.id, a.subscription_id, d.event_id, d.type, d.order_id, d.seq, a.attempt, a.at,
                a.status_code, a.latency_ms, a.error, a.response_excerpt
         FROM webhook_attempts a
         JOIN webhook_deliveries d ON d.id = a.delivery_id
         JOIN webhook_subscriptions s ON s.id = a.subscription_id
         WHERE s.store_id = ?1 AND s.flavor = ?2
           AND (?3 IS NULL OR a.subscription_id = ?3)
           AND (?4 IS NULL OR a.id < ?4)
         ORDER BY a.id DESC LIMIT ?5",
    )
    .and_then(|mut stmt| {
        stmt.query_map(
            params![
                store_id,
                query.flavor.as_str(),
                query.webhook_id,
                query.before,
                query.limit
            ],
            |r| {
                Ok(AttemptRecord {
                    id: r.get(0)?,
                    webhook_id: r.get(1)?,
                    event_id: r.get(2)?,
                    event_type: r.get(3)?,
                    order_id: r.get(4)?,
                    seq: r.get(5)?,
                    attempt: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(u32::MAX),
                    at: time::from_millis(r.get(7)?),
                    status_code: r
                        .get::<_, Option<i64>>(8)?
                        .and_then(|c| u16::try_from(c).ok()),
                    latency_ms: u64::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
                    error: r.get(10)?,
                    response_excerpt: r.get(11)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e| map_err("listing delivery attempts", e))
}

fn sqlite_params(params: &[Param]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match p {
            Param::Text(t) => rusqlite::types::Value::Text(t.clone()),
            Param::Int(i) => rusqlite::types::Value::Integer(*i),
        })
        .collect()
}

fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    let stored: String = r.get(7)?;
    let status = DeliveryState::of(&stored, r.get::<_, i64>(8)? != 0);
    Ok(DeliveryRecord {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        event_id: r.get(2)?,
        event_type: r.get(3)?,
        order_id: r.get(4)?,
        order_external_id: r.get(5)?,
        seq: r.get(6)?,
        status,
        attempts: u32::try_from(r.get::<_, i64>(9)?).unwrap_or(u32::MAX),
        last_response_code: r
            .get::<_, Option<i64>>(10)?
            .and_then(|c| u16::try_from(c).ok()),
        last_error: r.get(11)?,
        next_attempt_at: (status == DeliveryState::Pending)
            .then(|| r.get::<_, i64>(12).map(time::from_millis))
            .transpose()?,
        event_at: time::from_millis(r.get(13)?),
        created_at: time::from_millis(r.get(14)?),
    })
}

/// The delivery log (see `delivery_log` for the statement and the indexes it walks).
pub(super) fn list_deliveries(
    conn: &Connection,
    store_id: &str,
    query: &DeliveryQuery,
) -> StoreResult<Vec<DeliveryRecord>> {
    let statement = delivery_log::list(Dialect::Sqlite, store_id, query);
    conn.prepare_cached(&statement.sql)
        .and_then(|mut stmt| {
            stmt.query_map(
                rusqlite::params_from_iter(sqlite_params(&statement.params)),
                delivery_from_row,
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| map_err("listing deliveries", e))
}

pub(super) fn count_deliveries(
    conn: &Connection,
    store_id: &str,
    query: &DeliveryQuery,
) -> StoreResult<u64> {
    let statement = delivery_log::count(Dialect::Sqlite, store_id, query);
    let n: i64 = conn
        .prepare_cached(&statement.sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                rusqlite::params_from_iter(sqlite_params(&statement.params)),
                |r| r.get(0),
            )
        })
        .map_err(|e| map_err("counting deliveries", e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The latest successful attempt and the attempts since (`webhook_attempts_subscription`,
/// walked back from the newest).
pub(super) fn stats(
    conn: &Connection,
    store_id: &str,
    webhook_id: &str,
) -> StoreResult<Option<WebhookStats>> {
    let Some(webhook) = load_webhook(conn, store_id, webhook_id)? else {
        return Ok(None);
    };
    let (lo, hi) = success_codes(webhook.flavor);
    let success: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT id, at FROM webhook_attempts
             WHERE subscription_id = ?1 AND error IS NULL AND status_code BETWEEN ?2 AND ?3
             ORDER BY id DESC LIMIT 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![webhook_id, lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(|e| map_err("finding a webhook's last success", e))?;
    let (failures, last_at): (i64, Option<i64>) = conn
        .prepare_cached(
            "SELECT count(*), max(at) FROM webhook_attempts WHERE subscription_id = ?1 AND id > ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![webhook_id, success.map_or(0, |s| s.0)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .map_err(|e| map_err("counting a webhook's failures", e))?;
    Ok(Some(WebhookStats {
        last_success_at: success.map(|s| time::from_millis(s.1)),
        failures_in_a_row: u64::try_from(failures).unwrap_or(0),
        last_attempt_at: last_at.or(success.map(|s| s.1)).map(time::from_millis),
    }))
}

/// The latest Redo payload rendered for an order (for `order.deleted`, whose order is gone).
pub(super) fn last_order_payload(conn: &Connection, order_id: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached(
        "SELECT d.payload FROM webhook_deliveries d
         JOIN webhook_subscriptions s ON s.id = d.subscription_id
         WHERE d.order_id = ?1 AND s.flavor = 'redo' AND d.payload IS NOT NULL
           AND d.type <> 'order.deleted'
         ORDER BY d.seq DESC LIMIT 1",
    )
    .and_then(|mut stmt| stmt.query_row([order_id], |r| r.get(0)).optional())
    .map_err(|e| map_err("finding an order's last payload", e))
}

/// Outbox events past the cursor and open deliveries (see `Store::webhook_backlog`).
pub(super) fn backlog(conn: &Connection, cursor: &str) -> StoreResult<crate::WebhookBacklog> {
    let count = |sql: &str, context: &str, param: Option<&str>| -> StoreResult<u64> {
        let n: i64 = conn
            .prepare_cached(sql)
            .and_then(|mut stmt| match param {
                Some(p) => stmt.query_row([p], |r| r.get(0)),
                None => stmt.query_row([], |r| r.get(0)),
            })
            .map_err(|e| map_err(context, e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(crate::WebhookBacklog {
        unfanned_events: count(
            "SELECT count(*) FROM outbox
             WHERE id > COALESCE((SELECT outbox_id FROM webhook_cursors WHERE name = ?1), 0)",
            "counting outbox events not fanned out",
            Some(cursor),
        )?,
        open_deliveries: count(
            "SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'in_flight')",
            "counting open webhook deliveries",
            None,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape of the delivery log's statement walks an index, newest first, without
    /// scanning the table or sorting it: a page is an index range.
    #[test]
    fn delivery_log_pages_are_index_ranges() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        conn.execute_batch("ANALYZE").unwrap();
        let base = DeliveryQuery::new(WebhookFlavor::Redo, 20);
        let one = DeliveryQuery {
            webhook_id: Some("wh_1".into()),
            before: Some(100),
            ..base.clone()
        };
        let mut shapes = vec![("store", base.clone()), ("subscription", one.clone())];
        for state in DeliveryState::ALL {
            shapes.push((
                state.as_str(),
                DeliveryQuery {
                    status: Some(state),
                    ..one.clone()
                },
            ));
        }
        shapes.push((
            "order",
            DeliveryQuery {
                order: Some("1001".into()),
                ..one.clone()
            },
        ));
        shapes.push((
            "event",
            DeliveryQuery {
                event_id: Some("e".into()),
                ..base.clone()
            },
        ));
        for (name, query) in shapes {
            let statement = delivery_log::list(Dialect::Sqlite, "st", &query);
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", statement.sql))
                .unwrap();
            let plan: Vec<String> = stmt
                .query_map(
                    rusqlite::params_from_iter(sqlite_params(&statement.params)),
                    |r| r.get::<_, String>(3),
                )
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let text = plan.join("\n");
            assert!(
                !plan
                    .iter()
                    .any(|l| l.starts_with("SCAN d") || l.starts_with("SCAN x")),
                "{name}: a table scan\n{text}"
            );
            let index = match name {
                "store" => "webhook_deliveries_store_log (",
                "subscription" => "webhook_deliveries_log (",
                "pending" | "disabled" => "webhook_deliveries_log_open (",
                "delivered" | "failed" => "webhook_deliveries_log_status (",
                "order" => "webhook_deliveries_order (",
                _ => "webhook_deliveries_event (",
            };
            assert!(
                plan.first()
                    .is_some_and(|l| l.starts_with("SEARCH d") && l.contains(index)),
                "{name}: not {index}\n{text}"
            );
            // Only one order's deliveries are ever sorted.
            if name != "order" && name != "event" {
                assert!(!text.contains("TEMP B-TREE"), "{name}: sorts\n{text}");
            }
        }
    }
}
