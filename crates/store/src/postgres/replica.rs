//! Reads from a PostgreSQL streaming replica, with read-your-writes for this node.
//!
//! The rule (docs/OPERATIONS.md, "Read replicas"):
//!
//! - A monitor samples the primary's `pg_current_wal_lsn()` and then the replica's
//!   `pg_last_wal_replay_lsn()` every check interval, on connections of its own. Each primary
//!   sample carries the instant its query was *sent*, so every commit acknowledged (by any node)
//!   before that instant lies at or below the sampled LSN. The newest sample the replica has
//!   replayed gives `caught_up_to`: the replica holds every commit acknowledged before it.
//! - Every write this node makes for a client records the instant it finished, for its store
//!   (or for all stores when the command is not scoped to one, such as creating a store). The
//!   node's own background writes (the webhook dispatcher's and the automation runner's claims
//!   and results, due shipment events, purges) are not recorded: like writes through another
//!   node, they reach replica reads within the lag bound.
//! - A read allowed on the replica (see [`crate::read_routing`]) goes there only if
//!   `caught_up_to` is set, no older than the maximum lag, and later than the last write this
//!   node made for the read's store. Otherwise, and whenever the replica read fails for any
//!   reason but a domain error, the read runs on the primary.
//!
//! So a client always sees its own writes through the node that made them, and through any node
//! sees every write acknowledged more than the maximum lag (plus one check interval) earlier.
//!
//! Every read that could have used the replica is counted by where it went and why
//! ([`ReadRoute`]), and the replica's lag is kept as of the last probe; the server's
//! `/metrics` reports both (`Store::read_replica_stats`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::time::MissedTickBehavior;
use tokio_postgres::types::PgLsn;

use super::{PgError, acquire};
use crate::read_routing::{ReadRoute, ReplicaReadStats};

/// How long one probe of the primary or the replica may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most primary samples kept while the replica is behind (the oldest go first).
const MAX_SAMPLES: usize = 4096;

/// The replica's pool and the routing state its monitor keeps current.
pub(crate) struct ReadReplica {
    pool: Pool,
    description: String,
    state: Arc<Mutex<Routing>>,
    max_lag: Duration,
    monitor: tokio::task::JoinHandle<()>,
    /// Reads that could have used the replica, per route (in [`ReadRoute::ALL`]'s order).
    reads: [AtomicU64; 5],
}

impl Drop for ReadReplica {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

impl ReadReplica {
    /// Starts the monitor. `pool` serves reads; `primary_probe` and `replica_probe` are small
    /// pools of their own, so a busy request pool never delays a sample.
    pub(crate) fn start(
        pool: Pool,
        primary_probe: Pool,
        replica_probe: Pool,
        description: String,
        max_lag: Duration,
        check_interval: Duration,
    ) -> ReadReplica {
        let state = Arc::new(Mutex::new(Routing::default()));
        let monitor = tokio::spawn(monitor(
            primary_probe,
            replica_probe,
            state.clone(),
            check_interval.max(Duration::from_millis(1)),
            max_lag + check_interval,
            description.clone(),
        ));
        ReadReplica {
            pool,
            description,
            state,
            max_lag,
            monitor,
            reads: Default::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, Routing> {
        lock(&self.state)
    }

    /// Whether a read for `store` (`None`: a read across stores) may run on the replica now.
    /// Reads made outside [`crate::read_routing::allow_replica`] never may, and are not
    /// counted; the others are counted here when they go to the primary, and by
    /// [`ReadReplica::served`] or [`ReadReplica::failed`] once the replica has answered.
    pub(crate) fn may_serve(&self, store: Option<&str>) -> bool {
        if !crate::read_routing::replica_allowed() {
            return false;
        }
        let route = self.state().route(store, Instant::now(), self.max_lag);
        if route == ReadRoute::Replica {
            return true;
        }
        self.count(route);
        false
    }

    /// A read [`ReadReplica::may_serve`] sent to the replica was answered there.
    pub(crate) fn served(&self) {
        self.count(ReadRoute::Replica);
    }

    fn count(&self, route: ReadRoute) {
        if let Some(i) = ReadRoute::ALL.iter().position(|r| *r == route) {
            self.reads[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The reads counted so far, and the replica's state as of the last probe.
    pub(crate) fn stats(&self) -> ReplicaReadStats {
        let (up, lag) = self.state().health(Instant::now());
        ReplicaReadStats {
            reads: std::array::from_fn(|i| self.reads[i].load(Ordering::Relaxed)),
            up,
            lag,
        }
    }

    /// Records that a write for `store` (`None`: not scoped to one store) has just finished,
    /// successfully or not (a write whose commit outcome is unknown may have committed).
    pub(crate) fn note_write(&self, store: Option<&str>) {
        self.state().note_write(store, Instant::now());
    }

    /// A read on the replica failed: reads go to the primary until the next good probe.
    pub(crate) fn failed(&self, what: &str, err: &PgError) {
        tracing::warn!(
            replica = %self.description,
            error = ?err,
            "{what}: the read replica failed; reading from the primary"
        );
        self.count(ReadRoute::ReplicaError);
        self.state().replica_down();
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        acquire(&self.pool).await
    }
}

fn lock(state: &Mutex<Routing>) -> MutexGuard<'_, Routing> {
    // The state is a cache of facts that are each valid on their own; a panic elsewhere while
    // holding the lock leaves nothing half-done that matters.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Samples the primary's and the replica's WAL positions every `interval`.
async fn monitor(
    primary: Pool,
    replica: Pool,
    state: Arc<Mutex<Routing>>,
    interval: Duration,
    keep: Duration,
    description: String,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut healthy: Option<bool> = None;
    loop {
        ticker.tick().await;
        let sent = Instant::now();
        match probe(&primary, "SELECT pg_current_wal_lsn()").await {
            Ok(Some(lsn)) => lock(&state).primary_at(sent, lsn),
            Ok(None) => tracing::debug!("the primary reported no WAL position"),
            Err(detail) => tracing::debug!(%detail, "sampling the primary's WAL position"),
        }
        let problem = match probe(&replica, "SELECT pg_last_wal_replay_lsn()").await {
            Ok(Some(lsn)) => {
                lock(&state).replica_at(lsn, Instant::now(), keep);
                None
            }
            Ok(None) => Some(
                "the read URL names a server that is not a standby (pg_last_wal_replay_lsn() is \
                 NULL)"
                    .to_owned(),
            ),
            Err(detail) => Some(detail),
        };
        match problem {
            None => {
                if healthy != Some(true) {
                    tracing::info!(replica = %description, "the read replica answers; reads may use it");
                }
                healthy = Some(true);
            }
            Some(detail) => {
                lock(&state).replica_down();
                if healthy != Some(false) {
                    tracing::warn!(
                        replica = %description,
                        %detail,
                        "the read replica cannot be used; reading from the primary"
                    );
                }
                healthy = Some(false);
            }
        }
    }
}

/// One WAL position from `sql` on a connection of `pool`, within [`PROBE_TIMEOUT`].
async fn probe(pool: &Pool, sql: &str) -> Result<Option<u64>, String> {
    let work = async {
        let client = acquire(pool).await.map_err(|e| format!("{e:?}"))?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
        let row = client
            .query_one(&statement, &[])
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
        let lsn: Option<PgLsn> = row.try_get(0).map_err(|e| format!("{sql}: {e}"))?;
        Ok(lsn.map(u64::from))
    };
    match tokio::time::timeout(PROBE_TIMEOUT, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("{sql}: no answer within {PROBE_TIMEOUT:?}")),
    }
}

/// What the monitor knows and what this node wrote: enough to route each read.
#[derive(Default)]
struct Routing {
    /// Primary WAL positions, oldest first, each with the instant its query was sent.
    samples: VecDeque<(Instant, u64)>,
    /// The replica holds every commit acknowledged before this instant; `None` while it is
    /// down, not a standby, or behind every kept sample.
    caught_up_to: Option<Instant>,
    /// When this node last finished a write not scoped to one store.
    unscoped_write: Option<Instant>,
    /// When this node last finished any write.
    latest_write: Option<Instant>,
    /// When this node last finished a write for each store (entries the replica has caught up
    /// with are dropped).
    store_writes: HashMap<String, Instant>,
    /// Whether the replica answered the last probe as a standby (it may still be behind every
    /// kept sample, when `caught_up_to` is `None`).
    answering: bool,
    /// The latest instant the replica is known to hold every commit acknowledged before, for
    /// the lag metric: unlike `caught_up_to` it stays when its sample ages out of the kept
    /// ones, so a replica that falls far behind shows a growing lag. Cleared while the
    /// replica is down, and when it comes back behind a position it had replayed.
    held_to: Option<Instant>,
    /// The replica's replay position at the last probe.
    replayed: Option<u64>,
}

impl Routing {
    fn note_write(&mut self, store: Option<&str>, at: Instant) {
        self.latest_write = Some(self.latest_write.map_or(at, |w| w.max(at)));
        match store {
            Some(id) => {
                let entry = self.store_writes.entry(id.to_owned()).or_insert(at);
                *entry = (*entry).max(at);
            }
            None => self.unscoped_write = Some(self.unscoped_write.map_or(at, |w| w.max(at))),
        }
    }

    /// Where a read for `store` goes now, and why.
    fn route(&self, store: Option<&str>, now: Instant, max_lag: Duration) -> ReadRoute {
        let Some(caught) = self.caught_up_to else {
            // Answering but behind every kept sample: behind by more than the bound.
            return if self.answering {
                ReadRoute::Lagging
            } else {
                ReadRoute::Unavailable
            };
        };
        if now.saturating_duration_since(caught) > max_lag {
            return ReadRoute::Lagging;
        }
        // A write finished at the very instant a sample was sent may not be in it: strict.
        let pending = |write: Option<Instant>| write.is_some_and(|w| w >= caught);
        let own = pending(self.unscoped_write)
            || match store {
                Some(id) => pending(self.store_writes.get(id).copied()),
                None => pending(self.latest_write),
            };
        if own {
            ReadRoute::OwnWrite
        } else {
            ReadRoute::Replica
        }
    }

    #[cfg(test)]
    fn may_serve(&self, store: Option<&str>, now: Instant, max_lag: Duration) -> bool {
        self.route(store, now, max_lag) == ReadRoute::Replica
    }

    /// Whether the replica answers, and how far it trails (`None` while unknown).
    fn health(&self, now: Instant) -> (bool, Option<Duration>) {
        if !self.answering {
            return (false, None);
        }
        (
            true,
            self.held_to.map(|held| now.saturating_duration_since(held)),
        )
    }

    fn primary_at(&mut self, sent: Instant, lsn: u64) {
        self.samples.push_back((sent, lsn));
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// The replica has replayed up to `lsn`: finds the newest primary sample it has reached.
    fn replica_at(&mut self, lsn: u64, now: Instant, keep: Duration) {
        let reached = self
            .samples
            .iter()
            .rposition(|(_, sampled)| *sampled <= lsn);
        self.caught_up_to = reached.map(|i| self.samples[i].0);
        self.answering = true;
        if self.replayed.is_some_and(|before| lsn < before) {
            // Restarted behind what it had replayed: only what it replays again counts.
            self.held_to = None;
        }
        self.replayed = Some(lsn);
        if let Some(caught) = self.caught_up_to {
            self.held_to = Some(self.held_to.map_or(caught, |held| held.max(caught)));
        }
        if let Some(i) = reached {
            // Older samples can never matter again (the newest reached one is kept, in case
            // the replica restarts behind a later one).
            self.samples.drain(..i);
        }
        while self
            .samples
            .front()
            .is_some_and(|(sent, _)| now.saturating_duration_since(*sent) > keep)
        {
            self.samples.pop_front();
        }
        if let Some(caught) = self.caught_up_to {
            self.store_writes.retain(|_, written| *written >= caught);
        }
    }

    fn replica_down(&mut self) {
        self.caught_up_to = None;
        self.answering = false;
        self.held_to = None;
        self.replayed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: Duration = Duration::from_secs(1);
    const KEEP: Duration = Duration::from_secs(2);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nothing_is_served_before_the_replica_is_known() {
        let routing = Routing::default();
        assert!(!routing.may_serve(Some("s"), Instant::now(), LAG));
        assert!(!routing.may_serve(None, Instant::now(), LAG));
    }

    #[test]
    fn a_write_waits_for_a_later_sample_the_replica_has_replayed() {
        let t0 = Instant::now();
        let mut r = Routing::default();
        r.primary_at(t0, 100);
        r.replica_at(100, t0 + ms(2), KEEP);
        assert!(r.may_serve(Some("a"), t0 + ms(3), LAG));

        // Store a is written at t0+5: its reads need a sample sent after that.
        r.note_write(Some("a"), t0 + ms(5));
        assert!(!r.may_serve(Some("a"), t0 + ms(6), LAG));
        assert!(
            r.may_serve(Some("b"), t0 + ms(6), LAG),
            "other stores are unaffected"
        );
        assert!(
            !r.may_serve(None, t0 + ms(6), LAG),
            "a read across stores waits too"
        );

        // A sample sent after the write, not yet replayed: still the primary.
        r.primary_at(t0 + ms(10), 200);
        r.replica_at(150, t0 + ms(11), KEEP);
        assert!(!r.may_serve(Some("a"), t0 + ms(12), LAG));
        // Replayed: the replica serves store a again, and forgets the write.
        r.replica_at(200, t0 + ms(13), KEEP);
        assert!(r.may_serve(Some("a"), t0 + ms(14), LAG));
        assert!(r.store_writes.is_empty());
    }

    #[test]
    fn a_write_at_the_instant_of_a_sample_is_not_assumed_in_it() {
        let t0 = Instant::now();
        let mut r = Routing::default();
        r.note_write(Some("a"), t0);
        r.primary_at(t0, 100);
        r.replica_at(100, t0 + ms(1), KEEP);
        assert!(!r.may_serve(Some("a"), t0 + ms(2), LAG));
    }

    #[test]
    fn an_unscoped_write_holds_every_store() {
        let t0 = Instant::now();
        let mut r = Routing::default();
        r.primary_at(t0, 100);
        r.replica_at(100, t0, KEEP);
        r.note_write(None, t0 + ms(1));
        assert!(!r.may_serve(Some("a"), t0 + ms(2), LAG));
        r.primary_at(t0 + ms(3), 120);
        r.replica_at(120, t0 + ms(4), KEEP);
        assert!(r.may_serve(Some("a"), t0 + ms(5), LAG));
    }

    #[test]
    fn a_lagging_replica_is_not_used_past_the_bound() {
        let t0 = Instant::now();
        let mut r = Routing::default();
        r.primary_at(t0, 100);
        r.replica_at(100, t0, KEEP);
        // The primary moves on; the replica stays (paused, or slow).
        for i in 1..=15 {
            r.primary_at(t0 + ms(100 * i), 100 + i);
            r.replica_at(100, t0 + ms(100 * i), KEEP);
        }
        assert!(!r.may_serve(Some("a"), t0 + ms(1500), LAG));
        // It catches up: served again.
        r.primary_at(t0 + ms(1600), 300);
        r.replica_at(300, t0 + ms(1601), KEEP);
        assert!(r.may_serve(Some("a"), t0 + ms(1602), LAG));
    }

    #[test]
    fn each_read_is_routed_with_its_reason() {
        let t0 = Instant::now();
        let mut r = Routing::default();
        assert_eq!(r.route(Some("a"), t0, LAG), ReadRoute::Unavailable);
        r.primary_at(t0, 100);
        r.replica_at(100, t0 + ms(1), KEEP);
        assert_eq!(r.route(Some("a"), t0 + ms(2), LAG), ReadRoute::Replica);
        r.note_write(Some("a"), t0 + ms(3));
        assert_eq!(r.route(Some("a"), t0 + ms(4), LAG), ReadRoute::OwnWrite);
        assert_eq!(r.route(Some("b"), t0 + ms(4), LAG), ReadRoute::Replica);
        assert_eq!(r.route(None, t0 + ms(4), LAG), ReadRoute::OwnWrite);
        // Past the bound, and later behind every kept sample: lagging either way.
        assert_eq!(r.route(Some("b"), t0 + ms(1001), LAG), ReadRoute::Lagging);
        for i in 1..=30 {
            r.primary_at(t0 + ms(100 * i), 100 + i);
            r.replica_at(100, t0 + ms(100 * i), KEEP);
        }
        assert!(r.caught_up_to.is_none(), "the reached sample aged out");
        assert_eq!(r.route(Some("b"), t0 + ms(3001), LAG), ReadRoute::Lagging);
        let (up, lag) = r.health(t0 + ms(3001));
        assert!(up);
        assert_eq!(
            lag,
            Some(ms(3001)),
            "the lag keeps growing past the kept samples"
        );
        r.replica_down();
        assert_eq!(
            r.route(Some("b"), t0 + ms(3002), LAG),
            ReadRoute::Unavailable
        );
        assert_eq!(r.health(t0 + ms(3002)), (false, None));
    }

    #[test]
    fn the_lag_is_the_time_since_the_newest_sample_replayed() {
        let t0 = Instant::now();
        let mut r = Routing::default();
        r.primary_at(t0, 100);
        r.replica_at(100, t0 + ms(5), KEEP);
        assert_eq!(r.health(t0 + ms(7)), (true, Some(ms(7))));
        r.primary_at(t0 + ms(20), 150);
        r.replica_at(120, t0 + ms(25), KEEP);
        assert_eq!(
            r.health(t0 + ms(30)),
            (true, Some(ms(30))),
            "still at the first"
        );
        r.replica_at(150, t0 + ms(40), KEEP);
        assert_eq!(r.health(t0 + ms(40)), (true, Some(ms(20))));
        // Restarted behind its earlier position: nothing is known until it replays a sample.
        r.replica_at(90, t0 + ms(50), KEEP);
        assert_eq!(r.health(t0 + ms(50)), (true, None));
    }

    #[test]
    fn a_replica_that_went_down_or_back_is_not_trusted() {
        let t0 = Instant::now();
        let mut r = Routing::default();
        r.primary_at(t0, 100);
        r.replica_at(100, t0, KEEP);
        r.replica_down();
        assert!(!r.may_serve(Some("a"), t0 + ms(1), LAG));
        // Back, but behind the only kept sample (restarted from an older restart point).
        r.replica_at(90, t0 + ms(2), KEEP);
        assert!(!r.may_serve(Some("a"), t0 + ms(3), LAG));
        r.replica_at(100, t0 + ms(4), KEEP);
        assert!(r.may_serve(Some("a"), t0 + ms(5), LAG));
    }
}
