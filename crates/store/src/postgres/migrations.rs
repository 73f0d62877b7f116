//! Embedded PostgreSQL migrations, applied in order under an advisory lock and recorded in
//! `schema_migrations`.

use tokio_postgres::Transaction;

use super::{PgResult, map_err};
use crate::StoreError;

/// `(version, name, sql)`, in the order they apply.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("migrations/0001_init.sql")),
    (2, "webhooks", include_str!("migrations/0002_webhooks.sql")),
    (
        3,
        "automations",
        include_str!("migrations/0003_automations.sql"),
    ),
    (
        4,
        "order_search",
        include_str!("migrations/0004_order_search.sql"),
    ),
    (
        5,
        "idempotency",
        include_str!("migrations/0005_idempotency.sql"),
    ),
    (
        6,
        "unit_counts",
        include_str!("migrations/0006_unit_counts.sql"),
    ),
    (
        7,
        "delivery_log",
        include_str!("migrations/0007_delivery_log.sql"),
    ),
    (
        8,
        "exceptions",
        include_str!("migrations/0008_exceptions.sql"),
    ),
    (9, "returns", include_str!("migrations/0009_returns.sql")),
    (
        10,
        "exception_reasons",
        include_str!("migrations/0010_exception_reasons.sql"),
    ),
    (11, "sessions", include_str!("migrations/0011_sessions.sql")),
    (
        12,
        "return_automations",
        include_str!("migrations/0012_return_automations.sql"),
    ),
    (
        13,
        "order_snapshot",
        include_str!("migrations/0013_order_snapshot.sql"),
    ),
    (
        14,
        "idempotency_holder",
        include_str!("migrations/0014_idempotency_holder.sql"),
    ),
];

/// The advisory lock class of migrations ("wmig"), taken per schema.
const MIGRATION_LOCK: i32 = 0x776d_6967;

/// Applies every migration not yet recorded, inside the caller's transaction. The advisory
/// lock is held until that transaction ends, so of several processes starting at once, one
/// migrates and the others wait and then find nothing left to do.
pub(super) async fn migrate(tx: &Transaction<'_>) -> PgResult<usize> {
    super::engine::check(tx).await?;
    tx.execute(super::SCHEMA_LOCK_SQL, &[&MIGRATION_LOCK])
        .await
        .map_err(|e| map_err("taking the migration lock", e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .await
    .map_err(|e| map_err("creating schema_migrations", e))?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await
        .map_err(|e| map_err("reading the schema version", e))?
        .get(0);
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > latest {
        return Err(StoreError::Internal(format!(
            "the database is at schema version {current}, newer than this binary knows ({latest}); upgrade Waybill"
        ))
        .into());
    }
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| map_err(&format!("applying migration {version} ({name})"), e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[
                version,
                name,
                &waybill_core::time::to_millis(waybill_core::time::now()),
            ],
        )
        .await
        .map_err(|e| map_err("recording a migration", e))?;
        applied += 1;
    }
    Ok(applied)
}
