//! Sessions, the sign-in throttle, shared rate windows and retention purges on PostgreSQL.
//! Each purge is one statement over at most `limit` rows picked `FOR UPDATE SKIP LOCKED`, so
//! several processes purging at once take different rows and never wait on each other (or on
//! a request holding one of the rows).

use deadpool_postgres::Transaction;
use waybill_core::{Timestamp, time};

use super::{PgResult, execute, query_one, query_opt};
use crate::sessions::{NewSession, Purge, SessionRecord, decode_key_ids, encode_key_ids};

pub(super) async fn create(tx: &Transaction<'_>, s: &NewSession) -> PgResult<()> {
    execute(
        tx,
        "starting a dashboard session",
        "INSERT INTO dashboard_sessions (token_hash, store_id, key_ids, csrf, created_at,
                                         last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
        &[
            &s.token_hash,
            &s.store_id,
            &encode_key_ids(&s.key_ids),
            &s.csrf,
            &time::to_millis(s.created_at),
            &time::to_millis(s.expires_at),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn get(tx: &Transaction<'_>, token_hash: &str) -> PgResult<Option<SessionRecord>> {
    let row = query_opt(
        tx,
        "reading a dashboard session",
        "SELECT store_id, key_ids, csrf, created_at, last_seen_at, expires_at
         FROM dashboard_sessions WHERE token_hash = $1",
        &[&token_hash],
    )
    .await?;
    Ok(row.map(|r| SessionRecord {
        store_id: r.get(0),
        key_ids: decode_key_ids(r.get(1)),
        csrf: r.get(2),
        created_at: time::from_millis(r.get(3)),
        last_seen_at: time::from_millis(r.get(4)),
        expires_at: time::from_millis(r.get(5)),
    }))
}

pub(super) async fn touch(tx: &Transaction<'_>, token_hash: &str, now: Timestamp) -> PgResult<()> {
    execute(
        tx,
        "marking a dashboard session used",
        "UPDATE dashboard_sessions SET last_seen_at = GREATEST(last_seen_at, $2)
         WHERE token_hash = $1",
        &[&token_hash, &time::to_millis(now)],
    )
    .await?;
    Ok(())
}

pub(super) async fn delete(tx: &Transaction<'_>, token_hash: &str) -> PgResult<()> {
    execute(
        tx,
        "ending a dashboard session",
        "DELETE FROM dashboard_sessions WHERE token_hash = $1",
        &[&token_hash],
    )
    .await?;
    Ok(())
}

pub(super) async fn blocked_until(
    tx: &Transaction<'_>,
    client: &str,
    now: Timestamp,
) -> PgResult<Option<Timestamp>> {
    let row = query_opt(
        tx,
        "reading a sign-in block",
        "SELECT blocked_until FROM signin_blocks WHERE client = $1 AND blocked_until > $2",
        &[&client, &time::to_millis(now)],
    )
    .await?;
    Ok(row.map(|r| time::from_millis(r.get(0))))
}

pub(super) async fn record_failure(
    tx: &Transaction<'_>,
    client: &str,
    now: Timestamp,
    window_start: Timestamp,
) -> PgResult<u64> {
    let start = time::to_millis(window_start);
    execute(
        tx,
        "forgetting old sign-in failures",
        "DELETE FROM signin_failures WHERE client = $1 AND at < $2",
        &[&client, &start],
    )
    .await?;
    execute(
        tx,
        "recording a sign-in failure",
        "INSERT INTO signin_failures (client, at) VALUES ($1, $2)",
        &[&client, &time::to_millis(now)],
    )
    .await?;
    let row = query_one(
        tx,
        "counting sign-in failures",
        "SELECT count(*) FROM signin_failures WHERE client = $1 AND at >= $2",
        &[&client, &start],
    )
    .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

pub(super) async fn block(tx: &Transaction<'_>, client: &str, until: Timestamp) -> PgResult<()> {
    execute(
        tx,
        "blocking sign-ins",
        "INSERT INTO signin_blocks (client, blocked_until) VALUES ($1, $2)
         ON CONFLICT (client) DO UPDATE SET blocked_until = excluded.blocked_until",
        &[&client, &time::to_millis(until)],
    )
    .await?;
    Ok(())
}

pub(super) async fn clear(tx: &Transaction<'_>, client: &str) -> PgResult<()> {
    execute(
        tx,
        "forgetting sign-in failures",
        "DELETE FROM signin_failures WHERE client = $1",
        &[&client],
    )
    .await?;
    execute(
        tx,
        "lifting a sign-in block",
        "DELETE FROM signin_blocks WHERE client = $1",
        &[&client],
    )
    .await?;
    Ok(())
}

pub(super) async fn count_rate(
    tx: &Transaction<'_>,
    key: &str,
    window_start: Timestamp,
) -> PgResult<u64> {
    let row = query_one(
        tx,
        "counting a request in its rate window",
        "INSERT INTO rate_windows (key, window_start, count) VALUES ($1, $2, 1)
         ON CONFLICT (key) DO UPDATE SET
             count = CASE WHEN rate_windows.window_start = excluded.window_start
                          THEN rate_windows.count + 1 ELSE 1 END,
             window_start = excluded.window_start
         RETURNING count",
        &[&key, &time::to_millis(window_start)],
    )
    .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

pub(super) async fn purge(tx: &Transaction<'_>, purge: Purge, limit: u32) -> PgResult<u64> {
    let ms = time::to_millis;
    let limit = i64::from(limit);
    let what = format!("purging {}", purge.name());
    match purge {
        // Fan-out takes only rows not yet marked, so a marked row is never needed by it again.
        Purge::Outbox { before } => {
            execute(
                tx,
                &what,
                "DELETE FROM outbox WHERE id = ANY(ARRAY(
                     SELECT o.id FROM outbox o
                     WHERE o.fanned_out AND o.created_at < $1
                       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                       WHERE d.outbox_id = o.id
                                         AND d.status IN ('pending', 'in_flight'))
                       AND NOT EXISTS (SELECT 1 FROM automation_runs r
                                       WHERE r.outbox_id = o.id
                                         AND r.status IN ('pending', 'running'))
                     ORDER BY o.id LIMIT $2 FOR UPDATE SKIP LOCKED))",
                &[&ms(before), &limit],
            )
            .await
        }
        Purge::Deliveries { before } => {
            execute(
                tx,
                &what,
                "DELETE FROM webhook_deliveries WHERE id = ANY(ARRAY(
                     SELECT d.id FROM webhook_deliveries d
                     WHERE d.status IN ('delivered', 'failed') AND d.updated_at < $1
                       AND EXISTS (SELECT 1 FROM webhook_deliveries n
                                   WHERE n.order_id = d.order_id AND n.seq > d.seq
                                     AND n.subscription_id = d.subscription_id)
                     LIMIT $2 FOR UPDATE SKIP LOCKED))",
                &[&ms(before), &limit],
            )
            .await
        }
        Purge::Attempts { before } => {
            execute(
                tx,
                &what,
                "DELETE FROM webhook_attempts WHERE id = ANY(ARRAY(
                     SELECT id FROM webhook_attempts WHERE at < $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED))",
                &[&ms(before), &limit],
            )
            .await
        }
        Purge::IdempotencyKeys { now } => {
            execute(
                tx,
                &what,
                "DELETE FROM idempotency_keys WHERE (store_id, key) IN (
                     SELECT store_id, key FROM idempotency_keys WHERE expires_at <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&ms(now), &limit],
            )
            .await
        }
        Purge::Sessions { now, idle_before } => {
            execute(
                tx,
                &what,
                "DELETE FROM dashboard_sessions WHERE token_hash = ANY(ARRAY(
                     SELECT token_hash FROM dashboard_sessions
                     WHERE expires_at <= $1 OR last_seen_at < $2
                     LIMIT $3 FOR UPDATE SKIP LOCKED))",
                &[&ms(now), &ms(idle_before), &limit],
            )
            .await
        }
        Purge::SigninThrottle { now, before } => {
            let failures = execute(
                tx,
                &what,
                "DELETE FROM signin_failures WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM signin_failures WHERE at < $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED))",
                &[&ms(before), &limit],
            )
            .await?;
            let blocks = execute(
                tx,
                &what,
                "DELETE FROM signin_blocks WHERE client = ANY(ARRAY(
                     SELECT client FROM signin_blocks WHERE blocked_until <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED))",
                &[&ms(now), &limit],
            )
            .await?;
            Ok(failures.max(blocks))
        }
        Purge::RateWindows { before } => {
            execute(
                tx,
                &what,
                "DELETE FROM rate_windows WHERE key = ANY(ARRAY(
                     SELECT key FROM rate_windows WHERE window_start < $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED))",
                &[&ms(before), &limit],
            )
            .await
        }
    }
}
