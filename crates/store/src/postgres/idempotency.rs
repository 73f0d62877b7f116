//! Idempotency keys and webhook secret rotation on PostgreSQL. A key is reserved by an
//! `INSERT … ON CONFLICT DO NOTHING`: of two requests racing with one key, the second waits for
//! the first's row to commit and then finds it in progress.

use std::time::Duration;

use deadpool_postgres::Transaction;
use waybill_core::{DomainError, Timestamp, time};

use super::{PgResult, execute, query_opt, store_exists};
use crate::idempotency::{
    IdempotencyBegin, IdempotencyHold, IdempotencyRequest, StoredResponse, after,
};
use crate::webhooks::WebhookRecord;

pub(super) async fn begin(
    tx: &Transaction<'_>,
    request: &IdempotencyRequest,
    now: Timestamp,
) -> PgResult<IdempotencyBegin> {
    if !store_exists(tx, &request.store_id).await? {
        return Err(DomainError::StoreNotFound(request.store_id.clone()).into());
    }
    let now_ms = time::to_millis(now);
    let (locked_until, expires_at) = (after(now, request.lease), after(now, request.ttl));
    let inserted = execute(
        tx,
        "reserving an idempotency key",
        "INSERT INTO idempotency_keys (store_id, key, fingerprint, state, locked_until,
                                       created_at, expires_at, holder)
         VALUES ($1, $2, $3, 'in_progress', $4, $5, $6, $7)
         ON CONFLICT (store_id, key) DO NOTHING",
        &[
            &request.store_id,
            &request.key,
            &request.fingerprint,
            &locked_until,
            &now_ms,
            &expires_at,
            &request.token,
        ],
    )
    .await?;
    if inserted == 1 {
        return Ok(IdempotencyBegin::Proceed);
    }
    let Some(row) = query_opt(
        tx,
        "looking up an idempotency key",
        "SELECT fingerprint, state, locked_until, status, content_type, body, expires_at
         FROM idempotency_keys WHERE store_id = $1 AND key = $2 FOR UPDATE",
        &[&request.store_id, &request.key],
    )
    .await?
    else {
        // Deleted (released or purged) between the two statements: the retry takes it.
        return Err(super::PgError::Retry("an idempotency key vanished".into()));
    };
    let live = row.get::<_, i64>(6) > now_ms;
    if live {
        if row.get::<_, &str>(0) != request.fingerprint {
            return Ok(IdempotencyBegin::Mismatch);
        }
        if row.get::<_, &str>(1) == "done" {
            return Ok(IdempotencyBegin::Replay(StoredResponse {
                status: row
                    .get::<_, Option<i32>>(3)
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(200),
                content_type: row.get(4),
                body: row.get::<_, Option<Vec<u8>>>(5).unwrap_or_default(),
            }));
        }
        if row
            .get::<_, Option<i64>>(2)
            .is_some_and(|until| until > now_ms)
        {
            return Ok(IdempotencyBegin::InProgress);
        }
    }
    execute(
        tx,
        "taking over an idempotency key",
        "UPDATE idempotency_keys SET fingerprint = $3, state = 'in_progress', locked_until = $4,
                status = NULL, content_type = NULL, body = NULL, created_at = $5, expires_at = $6,
                holder = $7
         WHERE store_id = $1 AND key = $2",
        &[
            &request.store_id,
            &request.key,
            &request.fingerprint,
            &locked_until,
            &now_ms,
            &expires_at,
            &request.token,
        ],
    )
    .await?;
    Ok(IdempotencyBegin::Proceed)
}

/// Moves the lease of the reservation `hold` names to `now + lease`; whether it still held it.
/// A renewal racing the holder's own completion waits for the row and then finds it done.
pub(super) async fn renew(
    tx: &Transaction<'_>,
    hold: &IdempotencyHold,
    lease: Duration,
    now: Timestamp,
) -> PgResult<bool> {
    let changed = execute(
        tx,
        "renewing an idempotency key's lease",
        "UPDATE idempotency_keys SET locked_until = $4
         WHERE store_id = $1 AND key = $2 AND holder = $3 AND state = 'in_progress'",
        &[&hold.store_id, &hold.key, &hold.token, &after(now, lease)],
    )
    .await?;
    Ok(changed == 1)
}

pub(super) async fn complete(
    tx: &Transaction<'_>,
    hold: &IdempotencyHold,
    response: &StoredResponse,
) -> PgResult<bool> {
    let changed = execute(
        tx,
        "storing an idempotent answer",
        "UPDATE idempotency_keys SET state = 'done', locked_until = NULL, status = $4,
                content_type = $5, body = $6
         WHERE store_id = $1 AND key = $2 AND holder = $3 AND state = 'in_progress'",
        &[
            &hold.store_id,
            &hold.key,
            &hold.token,
            &i32::from(response.status),
            &response.content_type,
            &response.body,
        ],
    )
    .await?;
    Ok(changed == 1)
}

pub(super) async fn release(tx: &Transaction<'_>, hold: &IdempotencyHold) -> PgResult<bool> {
    let changed = execute(
        tx,
        "releasing an idempotency key",
        "DELETE FROM idempotency_keys
         WHERE store_id = $1 AND key = $2 AND holder = $3 AND state = 'in_progress'",
        &[&hold.store_id, &hold.key, &hold.token],
    )
    .await?;
    Ok(changed == 1)
}

pub(super) async fn purge(tx: &Transaction<'_>, now: Timestamp) -> PgResult<u64> {
    execute(
        tx,
        "purging idempotency keys",
        "DELETE FROM idempotency_keys WHERE expires_at <= $1",
        &[&time::to_millis(now)],
    )
    .await
}

pub(super) async fn rotate_secret(
    tx: &Transaction<'_>,
    store_id: &str,
    webhook_id: &str,
    new_secret: &str,
    overlap: Duration,
    now: Timestamp,
) -> PgResult<Option<WebhookRecord>> {
    let changed = execute(
        tx,
        "rotating a webhook secret",
        "UPDATE webhook_subscriptions SET previous_secret = secret, secret = $3,
                previous_secret_until = $4, updated_at = $5
         WHERE store_id = $1 AND id = $2",
        &[
            &store_id,
            &webhook_id,
            &new_secret,
            &after(now, overlap),
            &time::to_millis(now),
        ],
    )
    .await?;
    if changed == 0 {
        return Ok(None);
    }
    super::webhooks::load_webhook(tx, store_id, webhook_id).await
}
