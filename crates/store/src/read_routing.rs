//! Which reads may be answered from a PostgreSQL read replica.
//!
//! A read may go to the replica only while it runs inside [`allow_replica`]: the HTTP server
//! wraps `GET` and `HEAD` requests in it (list, get and export routes, dashboard pages, the CSV
//! export). Everything else — writes, the reads a write path makes before writing, idempotency,
//! authentication, background work such as the webhook dispatcher building a payload or an
//! automation acting on an order — reads from the primary. Inside the scope the PostgreSQL store
//! still sends a read to the primary unless the replica has caught up with the node's own writes
//! (see `postgres::replica` and docs/OPERATIONS.md, "Read replicas"). SQLite ignores the scope.

use std::future::Future;

tokio::task_local! {
    static REPLICA_ALLOWED: bool;
}

/// Runs `work` with reads allowed to go to a read replica.
pub async fn allow_replica<F: Future>(work: F) -> F::Output {
    REPLICA_ALLOWED.scope(true, work).await
}

/// Whether the current task runs inside [`allow_replica`].
pub fn replica_allowed() -> bool {
    REPLICA_ALLOWED
        .try_with(|allowed| *allowed)
        .unwrap_or(false)
}
