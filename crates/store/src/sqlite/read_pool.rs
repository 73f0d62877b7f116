//! A small pool of read-only connections used from blocking threads.
//!
//! Each call runs in its own read transaction, so the several queries that load an order see
//! one consistent snapshot.
//!
//! In WAL mode readers never block the writer nor each other. Connections are opened lazily up
//! to `size` and handed back after each use; a connection whose closure panicked is dropped and
//! replaced on demand. (deadpool-sqlite does the same but runs an extra query on every
//! checkout, which costs a blocking-thread round trip per read.)

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
            // One read transaction per call: every query of a read sees the same snapshot, even
            // while the writer commits.
            let result = match super::run_cached(&conn, "BEGIN", "starting a read transaction") {
                Ok(()) => {
                    let result = work(&conn);
                    if let Err(e) = super::run_cached(&conn, "COMMIT", "ending a read transaction")
                    {
                        tracing::warn!(error = %e, "ending a read transaction failed");
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    result
                }
                Err(e) => Err(e),
            };
            if let Ok(mut idle) = pool.idle.lock() {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::internal("a read task failed", e))?
    }
}
