//! Webhook subscriptions, fan-out, claiming and the delivery log on PostgreSQL.
//!
//! The same rules as the SQLite backend, with two differences that come from several
//! dispatchers sharing one database:
//!
//! - **Fan-out** takes the outbox rows not yet marked `fanned_out` (not a cursor over ids:
//!   identity values are assigned at insert, not at commit, so a late-committing transaction
//!   could hide behind a cursor). One dispatcher fans out at a time (an advisory lock); because
//!   an order's events commit one after another (its row is locked by each command), the rows
//!   of one order become visible in `seq` order, so deliveries are inserted in that order too.
//! - **Claiming** runs under an advisory lock as well, and locks the rows it takes with
//!   `FOR UPDATE SKIP LOCKED`: two dispatchers never claim the same delivery, and the "lowest
//!   open `seq` of its (subscription, order)" rule is checked by one claimer at a time.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;
use waybill_core::{DomainError, Timestamp, time};

use super::{PgResult, execute, query, query_one, query_opt, store_exists};
use crate::StoreError;
use crate::delivery_log::{self, Dialect, Param};
use crate::webhooks::{
    AttemptQuery, AttemptRecord, ClaimedDelivery, DeliveryNext, DeliveryQuery, DeliveryRecord,
    DeliveryResult, DeliveryState, NewWebhook, OutboxEvent, WebhookFlavor, WebhookHealth,
    WebhookRecord, WebhookStats, WebhookUpdate, success_codes, topic_selects,
};

/// Advisory lock classes; the second key is the schema's hash, so Waybill instances in other
/// schemas of the same database do not wait on each other.
const FAN_OUT_LOCK: i32 = 0x7766_6f75; // "wfou"
const CLAIM_LOCK: i32 = 0x7763_6c6d; // "wclm"

const SUBSCRIPTION_COLUMNS: &str = "id, store_id, flavor, url, topics, external_id, bearer_token, secret, enabled, disabled_reason, failing_since, created_at, updated_at, previous_secret, previous_secret_until";

const OUTBOX_COLUMNS: &str =
    "id, event_id, store_id, order_id, seq, type, fulfillment_id, data::text, created_at";

fn topics_text(topics: &[String]) -> String {
    topics.join(",")
}

fn topics_list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn webhook_from_row(r: &Row) -> WebhookRecord {
    let flavor: &str = r.get(2);
    WebhookRecord {
        id: r.get(0),
        store_id: r.get(1),
        flavor: WebhookFlavor::parse(flavor).unwrap_or(WebhookFlavor::Redo),
        url: r.get(3),
        topics: topics_list(r.get(4)),
        external_id: r.get(5),
        bearer_token: r.get(6),
        secret: r.get(7),
        enabled: r.get(8),
        disabled_reason: r.get(9),
        failing_since: r.get::<_, Option<i64>>(10).map(time::from_millis),
        created_at: time::from_millis(r.get(11)),
        updated_at: time::from_millis(r.get(12)),
        previous_secret: r.get(13),
        previous_secret_until: r.get::<_, Option<i64>>(14).map(time::from_millis),
    }
}

fn event_from_row(r: &Row) -> OutboxEvent {
    OutboxEvent {
        outbox_id: r.get(0),
        event_id: r.get(1),
        store_id: r.get(2),
        order_id: r.get(3),
        seq: r.get(4),
        event_type: r.get(5),
        fulfillment_id: r.get(6),
        data: r.get(7),
        created_at: time::from_millis(r.get(8)),
    }
}

pub(super) async fn load_webhook(
    tx: &Transaction<'_>,
    store_id: &str,
    webhook_id: &str,
) -> PgResult<Option<WebhookRecord>> {
    Ok(query_opt(
        tx,
        "loading a webhook",
        &format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE store_id = $1 AND id = $2"
        ),
        &[&store_id, &webhook_id],
    )
    .await?
    .as_ref()
    .map(webhook_from_row))
}

pub(super) async fn create_webhook(
    tx: &Transaction<'_>,
    store_id: &str,
    new: &NewWebhook,
    now: Timestamp,
) -> PgResult<(WebhookRecord, bool)> {
    if !store_exists(tx, store_id).await? {
        return Err(DomainError::StoreNotFound(store_id.to_owned()).into());
    }
    let now_ms = time::to_millis(now);
    if let Some(external_id) = &new.external_id {
        let existing = query_opt(
            tx,
            "looking up a webhook by externalId",
            "SELECT id FROM webhook_subscriptions
             WHERE store_id = $1 AND flavor = $2 AND external_id = $3
             FOR UPDATE",
            &[&store_id, &new.flavor.as_str(), external_id],
        )
        .await?;
        if let Some(row) = existing {
            let id: String = row.get(0);
            execute(
                tx,
                "updating a webhook",
                "UPDATE webhook_subscriptions SET url = $2, topics = $3, bearer_token = $4,
                 updated_at = $5 WHERE id = $1",
                &[
                    &id,
                    &new.url,
                    &topics_text(&new.topics),
                    &new.bearer_token,
                    &now_ms,
                ],
            )
            .await?;
            let record = load_webhook(tx, store_id, &id)
                .await?
                .ok_or_else(|| StoreError::Internal("an updated webhook vanished".into()))?;
            return Ok((record, false));
        }
    }
    let id = format!("wh_{}", Uuid::now_v7().simple());
    execute(
        tx,
        "inserting a webhook",
        "INSERT INTO webhook_subscriptions (id, store_id, flavor, url, topics, external_id,
             bearer_token, secret, enabled, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9, $9)",
        &[
            &id,
            &store_id,
            &new.flavor.as_str(),
            &new.url,
            &topics_text(&new.topics),
            &new.external_id,
            &new.bearer_token,
            &new.secret,
            &now_ms,
        ],
    )
    .await?;
    let record = load_webhook(tx, store_id, &id)
        .await?
        .ok_or_else(|| StoreError::Internal("a created webhook vanished".into()))?;
    Ok((record, true))
}

pub(super) async fn list_webhooks(
    tx: &Transaction<'_>,
    store_id: &str,
    flavor: WebhookFlavor,
) -> PgResult<Vec<WebhookRecord>> {
    Ok(query(
        tx,
        "listing webhooks",
        &format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
             WHERE store_id = $1 AND flavor = $2 ORDER BY created_at, id"
        ),
        &[&store_id, &flavor.as_str()],
    )
    .await?
    .iter()
    .map(webhook_from_row)
    .collect())
}

pub(super) async fn update_webhook(
    tx: &Transaction<'_>,
    store_id: &str,
    webhook_id: &str,
    update: &WebhookUpdate,
    now: Timestamp,
) -> PgResult<Option<WebhookRecord>> {
    let Some(current) = load_webhook(tx, store_id, webhook_id).await? else {
        return Ok(None);
    };
    let url = update.url.clone().unwrap_or(current.url);
    let topics = update.topics.clone().unwrap_or(current.topics);
    let bearer = update.bearer_token.clone().unwrap_or(current.bearer_token);
    let (enabled, reason, failing_since) = match update.enabled {
        Some(true) => (true, None, None),
        Some(false) => (false, Some("disabled by the store".to_owned()), None),
        None => (
            current.enabled,
            current.disabled_reason,
            current.failing_since.map(time::to_millis),
        ),
    };
    execute(
        tx,
        "updating a webhook",
        "UPDATE webhook_subscriptions SET url = $2, topics = $3, bearer_token = $4, enabled = $5,
             disabled_reason = $6, failing_since = $7, updated_at = $8
         WHERE id = $1",
        &[
            &webhook_id,
            &url,
            &topics_text(&topics),
            &bearer,
            &enabled,
            &reason,
            &failing_since,
            &time::to_millis(now),
        ],
    )
    .await?;
    load_webhook(tx, store_id, webhook_id).await
}

pub(super) async fn delete_webhook(
    tx: &Transaction<'_>,
    store_id: &str,
    webhook_id: &str,
) -> PgResult<bool> {
    let changed = execute(
        tx,
        "deleting a webhook",
        "DELETE FROM webhook_subscriptions WHERE store_id = $1 AND id = $2",
        &[&store_id, &webhook_id],
    )
    .await?;
    Ok(changed == 1)
}

pub(super) async fn store_secret(
    tx: &Transaction<'_>,
    store_id: &str,
    candidate: &str,
    now: Timestamp,
) -> PgResult<String> {
    if !store_exists(tx, store_id).await? {
        return Err(DomainError::StoreNotFound(store_id.to_owned()).into());
    }
    execute(
        tx,
        "storing a store's webhook secret",
        "INSERT INTO webhook_store_secrets (store_id, secret, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (store_id) DO NOTHING",
        &[&store_id, &candidate, &time::to_millis(now)],
    )
    .await?;
    Ok(query_one(
        tx,
        "reading a store's webhook secret",
        "SELECT secret FROM webhook_store_secrets WHERE store_id = $1",
        &[&store_id],
    )
    .await?
    .get(0))
}

/// Inserts a pending delivery of `event` to `webhook_id`, or, with `reset`, puts an existing
/// one back to pending with its attempts cleared (replay, redelivery). A reset keeps any lease
/// (a delivery in flight is not sent twice at once) but bumps the claim counter, so the attempt
/// in flight cannot mark the reset delivery done. Whether a row changed.
async fn enqueue(
    tx: &Transaction<'_>,
    webhook_id: &str,
    event: &OutboxEvent,
    now_ms: i64,
    reset: bool,
) -> PgResult<bool> {
    let sql = if reset {
        "INSERT INTO webhook_deliveries (subscription_id, outbox_id, event_id, store_id, order_id,
             seq, type, fulfillment_id, data, event_at, status, attempts, next_attempt_at,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $11, $11, $11)
         ON CONFLICT (subscription_id, outbox_id) DO UPDATE SET status = 'pending', attempts = 0,
             claims = webhook_deliveries.claims + 1,
             next_attempt_at = excluded.next_attempt_at, last_error = NULL,
             updated_at = excluded.updated_at"
    } else {
        "INSERT INTO webhook_deliveries (subscription_id, outbox_id, event_id, store_id, order_id,
             seq, type, fulfillment_id, data, event_at, status, attempts, next_attempt_at,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $11, $11, $11)
         ON CONFLICT (subscription_id, outbox_id) DO NOTHING"
    };
    let changed = execute(
        tx,
        "enqueueing a delivery",
        sql,
        &[
            &webhook_id,
            &event.outbox_id,
            &event.event_id,
            &event.store_id,
            &event.order_id,
            &event.seq,
            &event.event_type,
            &event.fulfillment_id,
            &event.data,
            &time::to_millis(event.created_at),
            &now_ms,
        ],
    )
    .await?;
    Ok(changed > 0)
}

/// Copies up to `limit` outbox events not yet fanned out into deliveries for every enabled
/// subscription that selects them (and existed when the event was written), and marks them.
/// Returns how many outbox events it passed (0: caught up).
pub(super) async fn fan_out(tx: &Transaction<'_>, limit: u32, now: Timestamp) -> PgResult<u64> {
    execute(
        tx,
        "taking the fan-out lock",
        super::SCHEMA_LOCK_SQL,
        &[&FAN_OUT_LOCK],
    )
    .await?;
    let events: Vec<OutboxEvent> = query(
        tx,
        "reading the outbox",
        &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE NOT fanned_out ORDER BY id LIMIT $1"),
        &[&i64::from(limit)],
    )
    .await?
    .iter()
    .map(event_from_row)
    .collect();
    if events.is_empty() {
        return Ok(0);
    }
    let mut by_store: HashMap<String, Vec<WebhookRecord>> = HashMap::new();
    let now_ms = time::to_millis(now);
    for event in &events {
        if !by_store.contains_key(&event.store_id) {
            let subs = query(
                tx,
                "loading subscriptions for fan-out",
                &format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
                     WHERE store_id = $1 AND enabled"
                ),
                &[&event.store_id],
            )
            .await?
            .iter()
            .map(webhook_from_row)
            .collect();
            by_store.insert(event.store_id.clone(), subs);
        }
        for sub in by_store.get(&event.store_id).into_iter().flatten() {
            if sub.created_at <= event.created_at
                && topic_selects(sub.flavor, &sub.topics, &event.event_type)
            {
                enqueue(tx, &sub.id, event, now_ms, false).await?;
            }
        }
    }
    let ids: Vec<i64> = events.iter().map(|e| e.outbox_id).collect();
    execute(
        tx,
        "marking events fanned out",
        "UPDATE outbox SET fanned_out = true WHERE id = ANY($1)",
        &[&ids],
    )
    .await?;
    Ok(events.len() as u64)
}

/// Claims up to `limit` due deliveries: for each (subscription, order) only the lowest-seq one
/// not yet delivered or failed, and only if its lease (if any) has expired.
pub(super) async fn claim(
    tx: &Transaction<'_>,
    now: Timestamp,
    limit: u32,
    lease_ms: i64,
) -> PgResult<Vec<ClaimedDelivery>> {
    execute(
        tx,
        "taking the claim lock",
        super::SCHEMA_LOCK_SQL,
        &[&CLAIM_LOCK],
    )
    .await?;
    let now_ms = time::to_millis(now);
    let rows = query(
        tx,
        "claiming deliveries",
        "WITH due AS (
             SELECT d.id FROM webhook_deliveries d
             JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.enabled
             WHERE d.status IN ('pending', 'in_flight')
               AND d.next_attempt_at <= $1
               AND (d.lease_until IS NULL OR d.lease_until <= $1)
               AND NOT EXISTS (
                   SELECT 1 FROM webhook_deliveries e
                   WHERE e.subscription_id = d.subscription_id AND e.order_id = d.order_id
                     AND e.status IN ('pending', 'in_flight') AND e.seq < d.seq)
             ORDER BY d.next_attempt_at, d.id
             LIMIT $2
             FOR UPDATE OF d SKIP LOCKED)
         UPDATE webhook_deliveries w SET status = 'in_flight', lease_until = $3,
             attempts = attempts + 1, claims = claims + 1, updated_at = $1
         FROM due WHERE w.id = due.id
         RETURNING w.id, w.subscription_id, w.claims, w.attempts, w.outbox_id, w.event_id,
             w.store_id, w.order_id, w.seq, w.type, w.fulfillment_id, w.data, w.event_at,
             w.payload",
        &[&now_ms, &i64::from(limit), &(now_ms + lease_ms)],
    )
    .await?;
    let mut webhooks: HashMap<String, WebhookRecord> = HashMap::new();
    let mut claimed = Vec::with_capacity(rows.len());
    for r in &rows {
        let webhook_id: String = r.get(1);
        if !webhooks.contains_key(&webhook_id) {
            let found = query_opt(
                tx,
                "loading a webhook",
                &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"),
                &[&webhook_id],
            )
            .await?;
            let Some(row) = found else { continue };
            webhooks.insert(webhook_id.clone(), webhook_from_row(&row));
        }
        let Some(webhook) = webhooks.get(&webhook_id).cloned() else {
            continue;
        };
        claimed.push(ClaimedDelivery {
            delivery_id: r.get(0),
            claim: r.get(2),
            attempt: u32::try_from(r.get::<_, i32>(3)).unwrap_or(u32::MAX),
            webhook,
            event: OutboxEvent {
                outbox_id: r.get(4),
                event_id: r.get(5),
                store_id: r.get(6),
                order_id: r.get(7),
                seq: r.get(8),
                event_type: r.get(9),
                fulfillment_id: r.get(10),
                data: r.get(11),
                created_at: time::from_millis(r.get(12)),
            },
            payload: r.get(13),
        });
    }
    // Deliveries come back in the order they were claimed (due time, then id).
    claimed.sort_by_key(|c| c.delivery_id);
    Ok(claimed)
}

/// Records an attempt and moves the delivery on, unless its claim is stale (then only the
/// attempt is logged). Whether the delivery was updated.
pub(super) async fn finish(
    tx: &Transaction<'_>,
    result: &DeliveryResult,
    now: Timestamp,
) -> PgResult<bool> {
    let now_ms = time::to_millis(now);
    let attempt_no = query_opt(
        tx,
        "reading a delivery",
        "SELECT attempts FROM webhook_deliveries WHERE id = $1",
        &[&result.delivery_id],
    )
    .await?
    .map(|r| r.get::<_, i32>(0));
    let Some(attempt_no) = attempt_no else {
        // The subscription (and with it the delivery) was deleted meanwhile.
        return Ok(false);
    };
    let log = &result.attempt;
    execute(
        tx,
        "logging an attempt",
        "INSERT INTO webhook_attempts (delivery_id, subscription_id, attempt, at, status_code,
             latency_ms, error, response_excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &result.delivery_id,
            &result.webhook_id,
            &attempt_no,
            &time::to_millis(log.at),
            &log.status_code.map(i32::from),
            &i64::try_from(log.latency_ms).unwrap_or(i64::MAX),
            &log.error,
            &log.response_excerpt,
        ],
    )
    .await?;
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
    let changed = execute(
        tx,
        "updating a delivery",
        "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, lease_until = NULL,
             last_error = $5, payload = COALESCE(payload, $6), updated_at = $7
         WHERE id = $1 AND claims = $2",
        &[
            &result.delivery_id,
            &result.claim,
            &status,
            &next_at,
            &error,
            &result.payload,
            &now_ms,
        ],
    )
    .await?;
    match &result.health {
        WebhookHealth::Healthy => {
            execute(
                tx,
                "updating a webhook's health",
                "UPDATE webhook_subscriptions SET failing_since = NULL
                 WHERE id = $1 AND failing_since IS NOT NULL",
                &[&result.webhook_id],
            )
            .await?
        }
        WebhookHealth::Failing => {
            execute(
                tx,
                "updating a webhook's health",
                "UPDATE webhook_subscriptions SET failing_since = $2
                 WHERE id = $1 AND failing_since IS NULL",
                &[&result.webhook_id, &now_ms],
            )
            .await?
        }
        WebhookHealth::Disable(reason) => {
            execute(
                tx,
                "updating a webhook's health",
                "UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2,
                     updated_at = $3 WHERE id = $1",
                &[&result.webhook_id, reason, &now_ms],
            )
            .await?
        }
    };
    Ok(changed == 1)
}

/// Puts the subscription's events since `since` (back) in its queue. `None` if no such
/// subscription.
pub(super) async fn replay(
    tx: &Transaction<'_>,
    store_id: &str,
    webhook_id: &str,
    since: Timestamp,
    now: Timestamp,
) -> PgResult<Option<u64>> {
    let Some(webhook) = load_webhook(tx, store_id, webhook_id).await? else {
        return Ok(None);
    };
    let events: Vec<OutboxEvent> = query(
        tx,
        "reading the outbox for a replay",
        &format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE store_id = $1 AND created_at >= $2
             ORDER BY id"
        ),
        &[&store_id, &time::to_millis(since)],
    )
    .await?
    .iter()
    .map(event_from_row)
    .collect();
    let now_ms = time::to_millis(now);
    let mut count = 0;
    for event in events
        .iter()
        .filter(|e| topic_selects(webhook.flavor, &webhook.topics, &e.event_type))
    {
        if enqueue(tx, &webhook.id, event, now_ms, true).await? {
            count += 1;
        }
    }
    Ok(Some(count))
}

/// Puts one event (by event id) back in the subscription's queue. `false` if the
/// subscription or the event is unknown in this store.
pub(super) async fn redeliver(
    tx: &Transaction<'_>,
    store_id: &str,
    webhook_id: &str,
    event_id: &str,
    now: Timestamp,
) -> PgResult<bool> {
    let Some(webhook) = load_webhook(tx, store_id, webhook_id).await? else {
        return Ok(false);
    };
    let event = query_opt(
        tx,
        "finding an event",
        &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE store_id = $1 AND event_id = $2"),
        &[&store_id, &event_id],
    )
    .await?
    .as_ref()
    .map(event_from_row);
    let Some(event) = event else {
        return Ok(false);
    };
    enqueue(tx, &webhook.id, &event, time::to_millis(now), true).await
}

pub(super) async fn list_attempts(
    tx: &Transaction<'_>,
    store_id: &str,
    query_spec: &AttemptQuery,
) -> PgResult<Vec<AttemptRecord>> {
    let rows = query(
        tx,
        "listing delivery attempts",
        "SELECT a.id, a.subscription_id, d.event_id, d.type, d.order_id, d.seq, a.attempt, a.at,
                a.status_code, a.latency_ms, a.error, a.response_excerpt
         FROM webhook_attempts a
         JOIN webhook_deliveries d ON d.id = a.delivery_id
         JOIN webhook_subscriptions s ON s.id = a.subscription_id
         WHERE s.store_id = $1 AND s.flavor = $2
           AND ($3::text IS NULL OR a.subscription_id = $3)
           AND ($4::bigint IS NULL OR a.id < $4)
         ORDER BY a.id DESC LIMIT $5",
        &[
            &store_id,
            &query_spec.flavor.as_str(),
            &query_spec.webhook_id,
            &query_spec.before,
            &i64::from(query_spec.limit),
        ],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| AttemptRecord {
            id: r.get(0),
            webhook_id: r.get(1),
            event_id: r.get(2),
            event_type: r.get(3),
            order_id: r.get(4),
            seq: r.get(5),
            attempt: u32::try_from(r.get::<_, i32>(6)).unwrap_or(u32::MAX),
            at: time::from_millis(r.get(7)),
            status_code: r
                .get::<_, Option<i32>>(8)
                .and_then(|c| u16::try_from(c).ok()),
            latency_ms: u64::try_from(r.get::<_, i64>(9)).unwrap_or(0),
            error: r.get(10),
            response_excerpt: r.get(11),
        })
        .collect())
}

/// Binds the delivery log's parameters: text as text, integers as `bigint`.
fn pg_params(params: &[Param]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(t) => Box::new(t.clone()),
                Param::Int(i) => Box::new(*i),
            }
        })
        .collect()
}

fn delivery_from_row(r: &Row) -> DeliveryRecord {
    let status = DeliveryState::of(r.get::<_, &str>(7), r.get(8));
    DeliveryRecord {
        id: r.get(0),
        webhook_id: r.get(1),
        event_id: r.get(2),
        event_type: r.get(3),
        order_id: r.get(4),
        order_external_id: r.get(5),
        seq: r.get(6),
        status,
        attempts: u32::try_from(r.get::<_, i32>(9)).unwrap_or(u32::MAX),
        last_response_code: r
            .get::<_, Option<i32>>(10)
            .and_then(|c| u16::try_from(c).ok()),
        last_error: r.get(11),
        next_attempt_at: (status == DeliveryState::Pending).then(|| time::from_millis(r.get(12))),
        event_at: time::from_millis(r.get(13)),
        created_at: time::from_millis(r.get(14)),
    }
}

/// The delivery log (see `delivery_log` for the statement and the indexes it walks).
pub(super) async fn list_deliveries(
    tx: &Transaction<'_>,
    store_id: &str,
    spec: &DeliveryQuery,
) -> PgResult<Vec<DeliveryRecord>> {
    let statement = delivery_log::list(Dialect::Postgres, store_id, spec);
    let owned = pg_params(&statement.params);
    let params: Vec<&(dyn ToSql + Sync)> = owned
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = query(tx, "listing deliveries", &statement.sql, &params).await?;
    Ok(rows.iter().map(delivery_from_row).collect())
}

pub(super) async fn count_deliveries(
    tx: &Transaction<'_>,
    store_id: &str,
    spec: &DeliveryQuery,
) -> PgResult<u64> {
    let statement = delivery_log::count(Dialect::Postgres, store_id, spec);
    let owned = pg_params(&statement.params);
    let params: Vec<&(dyn ToSql + Sync)> = owned
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let row = query_one(tx, "counting deliveries", &statement.sql, &params).await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// The latest successful attempt and the attempts since (`webhook_attempts_subscription`,
/// walked back from the newest).
pub(super) async fn stats(
    tx: &Transaction<'_>,
    store_id: &str,
    webhook_id: &str,
) -> PgResult<Option<WebhookStats>> {
    let Some(webhook) = load_webhook(tx, store_id, webhook_id).await? else {
        return Ok(None);
    };
    let (lo, hi) = success_codes(webhook.flavor);
    let success = query_opt(
        tx,
        "finding a webhook's last success",
        "SELECT id, at FROM webhook_attempts
         WHERE subscription_id = $1 AND error IS NULL AND status_code BETWEEN $2 AND $3
         ORDER BY id DESC LIMIT 1",
        &[&webhook_id, &i32::from(lo), &i32::from(hi)],
    )
    .await?
    .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
    let row = query_one(
        tx,
        "counting a webhook's failures",
        "SELECT count(*), max(at) FROM webhook_attempts WHERE subscription_id = $1 AND id > $2",
        &[&webhook_id, &success.map_or(0, |s| s.0)],
    )
    .await?;
    let failures: i64 = row.get(0);
    let last_at: Option<i64> = row.get(1);
    Ok(Some(WebhookStats {
        last_success_at: success.map(|s| time::from_millis(s.1)),
        failures_in_a_row: u64::try_from(failures).unwrap_or(0),
        last_attempt_at: last_at.or(success.map(|s| s.1)).map(time::from_millis),
    }))
}

/// The latest Redo payload rendered for an order (for `order.deleted`, whose order is gone).
pub(super) async fn last_order_payload(
    tx: &Transaction<'_>,
    order_id: &str,
) -> PgResult<Option<String>> {
    Ok(query_opt(
        tx,
        "finding an order's last payload",
        "SELECT d.payload FROM webhook_deliveries d
         JOIN webhook_subscriptions s ON s.id = d.subscription_id
         WHERE d.order_id = $1 AND s.flavor = 'redo' AND d.payload IS NOT NULL
           AND d.type <> 'order.deleted'
         ORDER BY d.seq DESC LIMIT 1",
        &[&order_id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Outbox events not marked fanned out and open deliveries (see `Store::webhook_backlog`;
/// PostgreSQL has no cursor, so its name is not needed). Both counts read partial indexes.
pub(super) async fn backlog(tx: &Transaction<'_>) -> PgResult<crate::WebhookBacklog> {
    let row = query_one(
        tx,
        "measuring the webhook backlog",
        "SELECT (SELECT count(*) FROM outbox WHERE NOT fanned_out),
                (SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'in_flight'))",
        &[],
    )
    .await?;
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok(crate::WebhookBacklog {
        unfanned_events: count(0),
        open_deliveries: count(1),
    })
}
