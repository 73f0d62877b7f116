//! A small pool of read-only connections, used from blocking threads or, for short reads, on
//! the calling async worker.
//!
//! Each call runs in its own read transaction, so the several queries that load an order see
//! one consistent snapshot.
//!
//! In WAL mode readers never block the writer nor each other. Connections are opened lazily up
//! to `size` (plus one per async worker thread, for short reads) and handed back after each use; a connection whose closure panicked is dropped and
//! replaced on demand. (deadpool-sqlite does the same but runs an extra query on every
//! checkout, which costs a blocking-thread round trip per read.)

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::{StoreError, StoreResult};

type Opener = dyn Fn() -> StoreResult<Connection> + Send + Sync;

pub(crate) struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    open: Box<Opener>,
}

impl ReadPool {
    pub(crate) fn new(size: usize, open: Box<Opener>) -> Arc<ReadPool> {
        Arc::new(ReadPool {
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size.max(1)),
            open,
        })
    }

    pub(crate) async fn read<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the read pool is closed".into()))?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = match idle {
                Some(conn) => conn,
                None => (pool.open)()?,
            };
            let result = in_read_transaction(&conn, work);
            pool.put_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::internal("a read task failed", e))?
    }

    /// Runs a short read (a handful of indexed lookups, tens of microseconds) on the calling
    /// thread when a connection is idle, and on a blocking thread otherwise.
    ///
    /// Handing a read to a blocking thread and waking the task again costs two context
    /// switches, which on the get-order path took more CPU than SQLite itself. A short read
    /// holds the async worker about as long as serialising its answer does. Reads whose length
    /// grows with the data (lists, backlogs) go through [`ReadPool::read`].
    pub(crate) async fn read_short<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        // No permit: an inline read finishes before its thread runs anything else, so at most
        // one per async worker thread is under way and the pool holds at most that many
        // connections beyond `size`.
        let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) else {
            return self.read(work).await;
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| in_read_transaction(&conn, work))) {
            Ok(result) => {
                self.put_back(conn);
                result
            }
            // The connection may be mid-transaction: dropping it rolls back.
            Err(_) => Err(StoreError::Internal("a read panicked".into())),
        }
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

/// One read transaction per call: every query of a read sees the same snapshot, even while the
/// writer commits.
fn in_read_transaction<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    super::run_cached(conn, "BEGIN", "starting a read transaction")?;
    let result = work(conn);
    if let Err(e) = super::run_cached(conn, "COMMIT", "ending a read transaction") {
        tracing::warn!(error = %e, "ending a read transaction failed");
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pool(dir: &std::path::Path, opened: Arc<AtomicUsize>) -> Arc<ReadPool> {
        let path = dir.join("pool.db");
        let setup = Connection::open(&path).expect("creating the database");
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);",
            )
            .expect("creating a table");
        ReadPool::new(
            2,
            Box::new(move || {
                opened.fetch_add(1, Ordering::SeqCst);
                Connection::open(&path).map_err(|e| StoreError::internal("opening", e))
            }),
        )
    }

    fn count(conn: &Connection) -> StoreResult<i64> {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .map_err(|e| StoreError::internal("counting", e))
    }

    #[tokio::test]
    async fn a_short_read_runs_on_the_calling_thread_once_a_connection_is_idle() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let opened = Arc::new(AtomicUsize::new(0));
        let pool = pool(dir.path(), opened.clone());
        let caller = std::thread::current().id();

        // No idle connection yet: the first read opens one on a blocking thread.
        let first = pool
            .read_short(move |conn| Ok((std::thread::current().id(), count(conn)?)))
            .await
            .expect("the first read");
        assert_ne!(first.0, caller);
        assert_eq!(first.1, 1);

        let second = pool
            .read_short(move |conn| Ok((std::thread::current().id(), count(conn)?)))
            .await
            .expect("the second read");
        assert_eq!(
            second.0, caller,
            "an idle connection serves the read inline"
        );
        assert_eq!(opened.load(Ordering::SeqCst), 1, "the connection is reused");
    }

    #[tokio::test]
    async fn a_short_read_that_panics_fails_alone_and_the_pool_goes_on() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let opened = Arc::new(AtomicUsize::new(0));
        let pool = pool(dir.path(), opened.clone());
        pool.read(count).await.expect("warming the pool");

        let failed = pool
            .read_short(|_conn| -> StoreResult<i64> { panic!("a bug in a read") })
            .await;
        assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");

        assert_eq!(pool.read_short(count).await.expect("the next read"), 1);
        assert_eq!(
            opened.load(Ordering::SeqCst),
            2,
            "the connection of the panicked read was dropped and another opened"
        );
    }
}
