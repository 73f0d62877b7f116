//! Idempotency keys and webhook secret rotation on SQLite (run by the writer).

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use waybill_core::{DomainError, Timestamp, time};

use super::map_err;
use crate::StoreResult;
use crate::idempotency::{
    IdempotencyBegin, IdempotencyHold, IdempotencyRequest, StoredResponse, after,
};
use crate::webhooks::WebhookRecord;

type Row = (
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<Vec<u8>>,
    i64,
);

pub(super) fn begin(
    conn: &Connection,
    request: &IdempotencyRequest,
    now: Timestamp,
) -> StoreResult<IdempotencyBegin> {
    if !super::store_exists(conn, &request.store_id)? {
        return Err(DomainError::StoreNotFound(request.store_id.clone()).into());
    }
    let now_ms = time::to_millis(now);
    let existing: Option<Row> = conn
        .prepare_cached(
            "SELECT fingerprint, state, locked_until, status, content_type, body, expires_at
             FROM idempotency_keys WHERE store_id = ?1 AND key = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![request.store_id, request.key], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .optional()
        })
        .map_err(|e| map_err("looking up an idempotency key", e))?;
    if let Some((fingerprint, state, locked_until, status, content_type, body, expires_at)) =
        existing
        && expires_at > now_ms
    {
        if fingerprint != request.fingerprint {
            return Ok(IdempotencyBegin::Mismatch);
        }
        if state == "done" {
            return Ok(IdempotencyBegin::Replay(StoredResponse {
                status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
                content_type,
                body: body.unwrap_or_default(),
            }));
        }
        if locked_until.is_some_and(|until| until > now_ms) {
            return Ok(IdempotencyBegin::InProgress);
        }
    }
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (store_id, key, fingerprint, state, locked_until,
                                       created_at, expires_at, holder)
         VALUES (?1, ?2, ?3, 'in_progress', ?4, ?5, ?6, ?7)
         ON CONFLICT (store_id, key) DO UPDATE SET fingerprint = excluded.fingerprint,
             state = 'in_progress', locked_until = excluded.locked_until, status = NULL,
             content_type = NULL, body = NULL, created_at = excluded.created_at,
             expires_at = excluded.expires_at, holder = excluded.holder",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            request.store_id,
            request.key,
            request.fingerprint,
            after(now, request.lease),
            now_ms,
            after(now, request.ttl),
            request.token,
        ])
    })
    .map_err(|e| map_err("reserving an idempotency key", e))?;
    Ok(IdempotencyBegin::Proceed)
}

/// Moves the lease of the reservation `hold` names to `now + lease`; whether it still held it.
pub(super) fn renew(
    conn: &Connection,
    hold: &IdempotencyHold,
    lease: Duration,
    now: Timestamp,
) -> StoreResult<bool> {
    conn.prepare_cached(
        "UPDATE idempotency_keys SET locked_until = ?4
         WHERE store_id = ?1 AND key = ?2 AND holder = ?3 AND state = 'in_progress'",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            hold.store_id,
            hold.key,
            hold.token,
            after(now, lease)
        ])
    })
    .map(|n| n == 1)
    .map_err(|e| map_err("renewing an idempotency key's lease", e))
}

pub(super) fn complete(
    conn: &Connection,
    hold: &IdempotencyHold,
    response: &StoredResponse,
) -> StoreResult<bool> {
    conn.prepare_cached(
        "UPDATE idempotency_keys SET state = 'done', locked_until = NULL, status = ?4,
                content_type = ?5, body = ?6
         WHERE store_id = ?1 AND key = ?2 AND holder = ?3 AND state = 'in_progress'",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            hold.store_id,
            hold.key,
            hold.token,
            i64::from(response.status),
            response.content_type,
            response.body
        ])
    })
    .map(|n| n == 1)
    .map_err(|e| map_err("storing an idempotent answer", e))
}

pub(super) fn release(conn: &Connection, hold: &IdempotencyHold) -> StoreResult<bool> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys
         WHERE store_id = ?1 AND key = ?2 AND holder = ?3 AND state = 'in_progress'",
    )
    .and_then(|mut stmt| stmt.execute(params![hold.store_id, hold.key, hold.token]))
    .map(|n| n == 1)
    .map_err(|e| map_err("releasing an idempotency key", e))
}

/// Deletes at most `limit` keys expired at `now`; how many. The caller repeats it while a whole
/// `limit` goes: each call is one job of the single writer, which every write waits behind, so
/// a day's worth of expired keys must not go in one.
pub(super) fn purge(conn: &Connection, now: Timestamp, limit: u32) -> StoreResult<u64> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE (store_id, key) IN
             (SELECT store_id, key FROM idempotency_keys WHERE expires_at <= ?1 LIMIT ?2)",
    )
    .and_then(|mut stmt| stmt.execute(params![time::to_millis(now), limit]))
    .map(|n| n as u64)
    .map_err(|e| map_err("purging idempotency keys", e))
}

pub(super) fn rotate_secret(
    conn: &Connection,
    store_id: &str,
    webhook_id: &str,
    new_secret: &str,
    overlap: Duration,
    now: Timestamp,
) -> StoreResult<Option<WebhookRecord>> {
    let changed = conn
        .prepare_cached(
            "UPDATE webhook_subscriptions SET previous_secret = secret, secret = ?3,
                    previous_secret_until = ?4, updated_at = ?5
             WHERE store_id = ?1 AND id = ?2",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                store_id,
                webhook_id,
                new_secret,
                after(now, overlap),
                time::to_millis(now)
            ])
        })
        .map_err(|e| map_err("rotating a webhook secret", e))?;
    if changed == 0 {
        return Ok(None);
    }
    super::webhooks::load_webhook(conn, store_id, webhook_id)
}
