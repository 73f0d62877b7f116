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
use std::time::Duration;

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

/// Where a read that could have used the replica (one made while answering a `GET` or `HEAD`
/// request, with a replica configured) was answered, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadRoute {
    /// By the replica.
    Replica,
    /// By the primary: the replica has not answered the last probe, is not a standby, or has
    /// not been probed yet.
    Unavailable,
    /// By the primary: the replica trails the primary by more than the lag bound.
    Lagging,
    /// By the primary: the replica has not yet replayed this process's latest write for the
    /// read's store (read-your-writes).
    OwnWrite,
    /// By the primary, after the read failed on the replica.
    ReplicaError,
}

impl ReadRoute {
    /// Every route, in the order metrics list them.
    pub const ALL: [ReadRoute; 5] = [
        ReadRoute::Replica,
        ReadRoute::Unavailable,
        ReadRoute::Lagging,
        ReadRoute::OwnWrite,
        ReadRoute::ReplicaError,
    ];

    /// The server that answered: `replica` or `primary`.
    pub fn server(self) -> &'static str {
        match self {
            ReadRoute::Replica => "replica",
            _ => "primary",
        }
    }

    /// Why: `caught_up` for the replica; for the primary `unavailable`, `lagging`, `own_write`
    /// or `replica_error`.
    pub fn reason(self) -> &'static str {
        match self {
            ReadRoute::Replica => "caught_up",
            ReadRoute::Unavailable => "unavailable",
            ReadRoute::Lagging => "lagging",
            ReadRoute::OwnWrite => "own_write",
            ReadRoute::ReplicaError => "replica_error",
        }
    }
}

/// What a store with a read replica reports about it (`Store::read_replica_stats`): the reads
/// counted by route since the store was opened, and the replica's state now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaReadStats {
    /// Reads per route, in [`ReadRoute::ALL`]'s order.
    pub reads: [u64; 5],
    /// Whether the replica answered the last probe as a standby.
    pub up: bool,
    /// How far the replica trails: the time since the latest instant before which it holds
    /// every commit acknowledged by any process, as of the last probe (measured in steps of
    /// the check interval). `None` while the replica is down or not yet known.
    pub lag: Option<Duration>,
}

impl ReplicaReadStats {
    /// The reads counted for `route`.
    pub fn count(&self, route: ReadRoute) -> u64 {
        ReadRoute::ALL
            .iter()
            .position(|r| *r == route)
            .map_or(0, |i| self.reads[i])
    }
}
