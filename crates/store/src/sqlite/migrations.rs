//! Embedded schema migrations, applied in order and recorded in `schema_migrations`.

use rusqlite::{Connection, TransactionBehavior};

use crate::{StoreError, StoreResult};

/// `(version, name, sql)`, in the order they apply.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("migrations/0001_init.sql")),
    (
        2,
        "order_status",
        include_str!("migrations/0002_order_status.sql"),
    ),
    (3, "webhooks", include_str!("migrations/0003_webhooks.sql")),
    (
        4,
        "automations",
        include_str!("migrations/0004_automations.sql"),
    ),
    (
        5,
        "order_search",
        include_str!("migrations/0005_order_search.sql"),
    ),
    (
        6,
        "idempotency",
        include_str!("migrations/0006_idempotency.sql"),
    ),
    (
        7,
        "unit_counts",
        include_str!("migrations/0007_unit_counts.sql"),
    ),
    (
        8,
        "delivery_log",
        include_str!("migrations/0008_delivery_log.sql"),
    ),
    (
        9,
        "exceptions",
        include_str!("migrations/0009_exceptions.sql"),
    ),
    (10, "returns", include_str!("migrations/0010_returns.sql")),
    (
        11,
        "exception_reasons",
        include_str!("migrations/0011_exception_reasons.sql"),
    ),
    (12, "sessions", include_str!("migrations/0012_sessions.sql")),
    (
        13,
        "return_automations",
        include_str!("migrations/0013_return_automations.sql"),
    ),
    (
        14,
        "idempotency_holder",
        include_str!("migrations/0014_idempotency_holder.sql"),
    ),
];

/// Applies every migration not yet recorded. Runs in one IMMEDIATE transaction, so two
/// processes starting at once cannot both apply the same step.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<usize> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| super::map_err("starting the migration transaction", e))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
    .map_err(|e| super::map_err("creating schema_migrations", e))?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(|e| super::map_err("reading the schema version", e))?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > latest {
        return Err(StoreError::Internal(format!(
            "the database is at schema version {current}, newer than this binary knows ({latest}); upgrade Waybill"
        )));
    }
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql)
            .map_err(|e| super::map_err(&format!("applying migration {version} ({name})"), e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                version,
                name,
                waybill_core::time::to_millis(waybill_core::time::now())
            ],
        )
        .map_err(|e| super::map_err("recording a migration", e))?;
        applied += 1;
    }
    tx.commit()
        .map_err(|e| super::map_err("committing migrations", e))?;
    Ok(applied)
}
