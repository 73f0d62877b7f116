//! Sessions, the sign-in throttle, shared rate windows and retention purges on SQLite (writes
//! run on the writer; each purge is one statement of at most `limit` rows, one writer job).

use rusqlite::{Connection, OptionalExtension, params};
use waybill_core::{Timestamp, time};

use super::map_err;
use crate::StoreResult;
use crate::sessions::{NewSession, Purge, SessionRecord, decode_key_ids, encode_key_ids};

pub(super) fn create(conn: &Connection, s: &NewSession) -> StoreResult<()> {
    let created = time::to_millis(s.created_at);
    conn.prepare_cached(
        "INSERT INTO dashboard_sessions (token_hash, store_id, key_ids, csrf, created_at,
                                         last_seen_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            s.token_hash,
            s.store_id,
            encode_key_ids(&s.key_ids),
            s.csrf,
            created,
            time::to_millis(s.expires_at)
        ])
    })
    .map_err(|e| map_err("starting a dashboard session", e))?;
    Ok(())
}

pub(super) fn get(conn: &Connection, token_hash: &str) -> StoreResult<Option<SessionRecord>> {
    conn.prepare_cached(
        "SELECT store_id, key_ids, csrf, created_at, last_seen_at, expires_at
         FROM dashboard_sessions WHERE token_hash = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row([token_hash], |r| {
            Ok(SessionRecord {
                store_id: r.get(0)?,
                key_ids: decode_key_ids(&r.get::<_, String>(1)?),
                csrf: r.get(2)?,
                created_at: time::from_millis(r.get(3)?),
                last_seen_at: time::from_millis(r.get(4)?),
                expires_at: time::from_millis(r.get(5)?),
            })
        })
        .optional()
    })
    .map_err(|e| map_err("reading a dashboard session", e))
}

pub(super) fn touch(conn: &Connection, token_hash: &str, now: Timestamp) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE dashboard_sessions SET last_seen_at = max(last_seen_at, ?2) WHERE token_hash = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![token_hash, time::to_millis(now)]))
    .map_err(|e| map_err("marking a dashboard session used", e))?;
    Ok(())
}

pub(super) fn delete(conn: &Connection, token_hash: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM dashboard_sessions WHERE token_hash = ?1")
        .and_then(|mut stmt| stmt.execute([token_hash]))
        .map_err(|e| map_err("ending a dashboard session", e))?;
    Ok(())
}

pub(super) fn blocked_until(
    conn: &Connection,
    client: &str,
    now: Timestamp,
) -> StoreResult<Option<Timestamp>> {
    conn.prepare_cached(
        "SELECT blocked_until FROM signin_blocks WHERE client = ?1 AND blocked_until > ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![client, time::to_millis(now)], |r| {
            r.get::<_, i64>(0)
        })
        .optional()
    })
    .map(|until| until.map(time::from_millis))
    .map_err(|e| map_err("reading a sign-in block", e))
}

pub(super) fn record_failure(
    conn: &Connection,
    client: &str,
    now: Timestamp,
    window_start: Timestamp,
) -> StoreResult<u64> {
    let start = time::to_millis(window_start);
    conn.prepare_cached("DELETE FROM signin_failures WHERE client = ?1 AND at < ?2")
        .and_then(|mut stmt| stmt.execute(params![client, start]))
        .map_err(|e| map_err("forgetting old sign-in failures", e))?;
    conn.prepare_cached("INSERT INTO signin_failures (client, at) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![client, time::to_millis(now)]))
        .map_err(|e| map_err("recording a sign-in failure", e))?;
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM signin_failures WHERE client = ?1 AND at >= ?2")
        .and_then(|mut stmt| stmt.query_row(params![client, start], |r| r.get(0)))
        .map_err(|e| map_err("counting sign-in failures", e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn block(conn: &Connection, client: &str, until: Timestamp) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO signin_blocks (client, blocked_until) VALUES (?1, ?2)
         ON CONFLICT (client) DO UPDATE SET blocked_until = excluded.blocked_until",
    )
    .and_then(|mut stmt| stmt.execute(params![client, time::to_millis(until)]))
    .map_err(|e| map_err("blocking sign-ins", e))?;
    Ok(())
}

pub(super) fn clear(conn: &Connection, client: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM signin_failures WHERE client = ?1")
        .and_then(|mut stmt| stmt.execute([client]))
        .map_err(|e| map_err("forgetting sign-in failures", e))?;
    conn.prepare_cached("DELETE FROM signin_blocks WHERE client = ?1")
        .and_then(|mut stmt| stmt.execute([client]))
        .map_err(|e| map_err("lifting a sign-in block", e))?;
    Ok(())
}

pub(super) fn count_rate(
    conn: &Connection,
    key: &str,
    window_start: Timestamp,
) -> StoreResult<u64> {
    conn.prepare_cached(
        "INSERT INTO rate_windows (key, window_start, count) VALUES (?1, ?2, 1)
         ON CONFLICT (key) DO UPDATE SET
             count = CASE WHEN rate_windows.window_start = excluded.window_start
                          THEN rate_windows.count + 1 ELSE 1 END,
             window_start = excluded.window_start
         RETURNING count",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![key, time::to_millis(window_start)], |r| {
            r.get::<_, i64>(0)
        })
    })
    .map(|n| u64::try_from(n).unwrap_or(0))
    .map_err(|e| map_err("counting a request in its rate window", e))
}

pub(super) fn purge(conn: &Connection, purge: Purge, limit: u32) -> StoreResult<u64> {
    let ms = time::to_millis;
    let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> StoreResult<u64> {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(p))
            .map(|n| n as u64)
            .map_err(|e| map_err(&format!("purging {}", purge.name()), e))
    };
    match purge {
        // Only events behind every fan-out cursor go, and never the newest event: SQLite
        // gives a new row the largest id plus one, which must stay above the cursor.
        Purge::Outbox { before } => run(
            "DELETE FROM outbox WHERE id IN (
                 SELECT o.id FROM outbox o
                 WHERE o.created_at < ?1
                   AND o.id <= (SELECT COALESCE(min(outbox_id), 0) FROM webhook_cursors)
                   AND o.id < (SELECT max(id) FROM outbox)
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                   WHERE d.outbox_id = o.id
                                     AND d.status IN ('pending', 'in_flight'))
                   AND NOT EXISTS (SELECT 1 FROM automation_runs r
                                   WHERE r.outbox_id = o.id
                                     AND r.status IN ('pending', 'running'))
                 ORDER BY o.id LIMIT ?2)",
            &[&ms(before), &limit],
        ),
        Purge::Deliveries { before } => run(
            "DELETE FROM webhook_deliveries WHERE id IN (
                 SELECT d.id FROM webhook_deliveries d
                 WHERE d.status IN ('delivered', 'failed') AND d.updated_at < ?1
                   AND EXISTS (SELECT 1 FROM webhook_deliveries n
                               WHERE n.order_id = d.order_id AND n.seq > d.seq
                                 AND n.subscription_id = d.subscription_id)
                 LIMIT ?2)",
            &[&ms(before), &limit],
        ),
        Purge::Attempts { before } => run(
            "DELETE FROM webhook_attempts WHERE id IN (
                 SELECT id FROM webhook_attempts WHERE at < ?1 LIMIT ?2)",
            &[&ms(before), &limit],
        ),
        Purge::IdempotencyKeys { now } => super::idempotency::purge(conn, now, limit),
        Purge::Sessions { now, idle_before } => run(
            "DELETE FROM dashboard_sessions WHERE token_hash IN (
                 SELECT token_hash FROM dashboard_sessions
                 WHERE expires_at <= ?1 OR last_seen_at < ?2 LIMIT ?3)",
            &[&ms(now), &ms(idle_before), &limit],
        ),
        Purge::SigninThrottle { now, before } => {
            let failures = run(
                "DELETE FROM signin_failures WHERE rowid IN (
                     SELECT rowid FROM signin_failures WHERE at < ?1 LIMIT ?2)",
                &[&ms(before), &limit],
            )?;
            let blocks = run(
                "DELETE FROM signin_blocks WHERE client IN (
                     SELECT client FROM signin_blocks WHERE blocked_until <= ?1 LIMIT ?2)",
                &[&ms(now), &limit],
            )?;
            Ok(failures.max(blocks))
        }
        Purge::RateWindows { before } => run(
            "DELETE FROM rate_windows WHERE key IN (
                 SELECT key FROM rate_windows WHERE window_start < ?1 LIMIT ?2)",
            &[&ms(before), &limit],
        ),
    }
}
