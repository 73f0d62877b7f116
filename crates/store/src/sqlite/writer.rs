//! The single writer.
//!
//! SQLite allows one writer at a time, so every write goes through one thread that owns the
//! write connection. The thread takes whatever requests are waiting (up to a batch limit) and
//! runs them in one transaction, each under its own savepoint: a request that fails is rolled
//! back to its savepoint alone, and the others commit together with one fsync (group commit).
//! No request is answered before the transaction that holds it has committed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreResult};

/// How many requests may wait for the writer before callers are made to wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

trait Job: Send {
    /// Runs inside the open transaction. Returns whether it succeeded (and must be kept).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Hands the result back once the transaction's fate is known.
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
    /// What the request is, for the slow-batch warning: the type of its closure, which names
    /// the store method that queued it.
    fn kind(&self) -> &'static str;
}

struct Pending<T, F> {
    work: Option<F>,
    outcome: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
            Err(StoreError::Internal(
                "a write request panicked; it was rolled back".into(),
            ))
        });
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let outcome = match (self.outcome, committed) {
            (Some(Ok(_)), Err(e)) => Err(StoreError::Unavailable(format!(
                "the transaction could not be committed: {e}"
            ))),
            (Some(outcome), _) => outcome,
            (None, _) => Err(StoreError::Internal("a write request never ran".into())),
        };
        // The caller may have gone away (client disconnected); the write stands regardless.
        let _ = self.reply.send(outcome);
    }

    fn kind(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// The store method in a closure's type name
/// (`waybill_store::sqlite::<impl …>::create_fulfillment::{{closure}}` → `create_fulfillment`).
fn method_of(type_name: &'static str) -> &'static str {
    let mut name = type_name;
    while let Some(outer) = name.strip_suffix("::{{closure}}") {
        name = outer;
    }
    // A generic method's arguments (`raise_due_events<'_, '_>`) go too.
    if name.ends_with('>') {
        let mut depth = 0usize;
        for (at, c) in name.char_indices().rev() {
            match c {
                '>' => depth += 1,
                '<' => {
                    depth -= 1;
                    if depth == 0 {
                        name = &name[..at];
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    name.rsplit("::").next().unwrap_or(name)
}

/// A handle to the writer thread. Dropping every handle stops the thread once its queue is
/// drained.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
    /// Transactions committed so far (one per batch); read by the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
}

impl Writer {
    pub(crate) fn spawn(conn: Connection, max_batch: usize) -> std::io::Result<Writer> {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        thread::Builder::new()
            .name("waybill-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch.max(1), &counter))?;
        Ok(Writer { queue, commits })
    }

    /// How many batches have been committed.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// How many requests wait in the queue.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Runs `work` in a write transaction and returns its result after the commit.
    pub(crate) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            outcome: None,
            reply,
        });
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Internal("the SQLite writer dropped a request".into()))?
    }
}

fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    commits: &AtomicU64,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(&conn, &mut batch);
        if committed.is_ok() {
            commits.fetch_add(1, Ordering::Release);
        }
        for job in batch.drain(..) {
            job.finish(committed.as_ref().map(|_| ()));
        }
    }
    tracing::debug!("SQLite writer stopped");
}

/// A batch that takes longer than this is logged: every write waiting behind it waited as long.
const SLOW_BATCH: Duration = Duration::from_millis(100);

/// Runs one batch in one transaction. `Err` means nothing of the batch was committed.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut commit_started = None;
    // The request that took longest, and how long: named in the slow-batch warning.
    let mut slowest: Option<(Duration, &'static str)> = None;
    super::run_cached(conn, "BEGIN IMMEDIATE", "starting a write transaction")?;
    let result = (|| {
        for job in batch.iter_mut() {
            let job_started = Instant::now();
            super::run_cached(conn, "SAVEPOINT request", "opening a savepoint")?;
            let kept = job.run(conn);
            let took = job_started.elapsed();
            if slowest.is_none_or(|(longest, _)| took > longest) {
                slowest = Some((took, job.kind()));
            }
            if !kept {
                super::run_cached(
                    conn,
                    "ROLLBACK TO request",
                    "rolling back a refused request",
                )?;
            }
            super::run_cached(conn, "RELEASE request", "releasing a savepoint")?;
        }
        commit_started = Some(Instant::now());
        super::run_cached(conn, "COMMIT", "committing")
    })();
    let elapsed = started.elapsed();
    if elapsed > SLOW_BATCH {
        tracing::warn!(
            batch = batch.len(),
            total_ms = elapsed.as_millis() as u64,
            commit_ms = commit_started.map(|t| t.elapsed().as_millis() as u64),
            slowest_request = slowest.map(|(_, kind)| method_of(kind)),
            slowest_request_ms = slowest.map(|(took, _)| took.as_millis() as u64),
            "slow SQLite write batch"
        );
    }
    if let Err(e) = &result {
        tracing::error!(error = %e, batch = batch.len(), "write batch failed; rolling back");
        if !conn.is_autocommit()
            && let Err(rollback) = conn.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %rollback, "rollback after a failed batch failed");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_request_is_named_by_the_store_method_that_queued_it() {
        assert_eq!(
            method_of(
                "waybill_store::sqlite::<impl waybill_store::Store for waybill_store::sqlite::SqliteStore>::create_fulfillment::{{closure}}::{{closure}}"
            ),
            "create_fulfillment"
        );
        assert_eq!(method_of("plain"), "plain");
        assert_eq!(
            method_of(
                "waybill_store::sqlite::orders::raise_due_events<'_, alloc::string::String>::{{closure}}"
            ),
            "raise_due_events"
        );

        // The name comes from the closure's own type, so it follows the code as it is.
        fn kind_of<F: FnOnce(&Connection) -> StoreResult<()> + Send + 'static>(
            work: F,
        ) -> &'static str {
            let (reply, _answer) = oneshot::channel();
            let job: Box<dyn Job> = Box::new(Pending {
                work: Some(work),
                outcome: None,
                reply,
            });
            method_of(job.kind())
        }
        fn raise_due_events() -> &'static str {
            kind_of(|_| Ok(()))
        }
        assert_eq!(raise_due_events(), "raise_due_events");
    }
}
