//! Group commit on PostgreSQL.
//!
//! Create-fulfillment and shipment-status requests are queued to a few batch workers instead
//! of each opening its own transaction. A worker takes whatever requests are waiting (up to a
//! batch limit), sorts them by order so that concurrent batches lock orders in one sequence,
//! and runs them in one transaction, each under its own savepoint: a request that fails is
//! rolled back to its savepoint alone and answered with its own error, and the others commit
//! together. No request is answered before the transaction that holds it has committed.
//!
//! A request comes in steps: a first one that locks and reads, a second that checks and may
//! write, and a few last statements sent together. The batch sends one request's last
//! statements together with the next request's savepoint and first step, so a creation or a
//! status update costs one round trip. Statements reach the server in the order their futures
//! are first polled, and the last statements are polled first; the next request's savepoint
//! therefore opens after them. A request refused at one of its last statements is rolled back
//! to its savepoint, which also undoes the next request's savepoint and first step; that
//! request then starts again.
//!
//! A request that meets a deadlock or a serialization failure inside a batch is rolled back to
//! its savepoint and run again on its own after the batch. If the batch itself fails before
//! its commit (a lost connection), nothing of it was committed, and every request is run again
//! on its own, with the usual retries. If the commit's outcome is unknown, every request of the
//! batch is answered `Unavailable`, as a lone request would be.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::{Pool, Transaction};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Finish, PgError, PgResult, acquire, commit, map_err, retry_pause};
use crate::{StoreError, StoreResult};

/// How many requests may wait for a batch worker before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

/// The first step of a request (its reads and locks), run inside a transaction it does not
/// own; what it found goes to the second.
type Read<I, R> = for<'a> fn(&'a Transaction<'a>, &'a I) -> BoxFuture<'a, PgResult<R>>;
/// The second step of a request: its checks and any writes that need round trips of their own,
/// leaving a few last statements sent together ([`Finish`]).
type Plan<I, R, T> =
    for<'a> fn(&'a Transaction<'a>, &'a I, R) -> BoxFuture<'a, PgResult<Finish<T>>>;

/// A request that is done after its first step.
#[cfg(test)]
fn done<'a, I, T: Send + 'static>(
    _: &'a Transaction<'a>,
    _: &'a I,
    value: T,
) -> BoxFuture<'a, PgResult<Finish<T>>> {
    Box::pin(std::future::ready(Ok(Finish::Value(value))))
}

/// A step's outcome, with a panic turned into the request's own failure (the worker goes on).
async fn guarded<T>(step: impl std::future::Future<Output = PgResult<T>>) -> PgResult<T> {
    AssertUnwindSafe(step)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Internal("a write request panicked; it was rolled back".into()).into())
        })
}

trait Job: Send {
    /// The order the request locks: batches take their orders' locks in this sequence.
    fn key(&self) -> (&str, &str);
    /// Runs the request's first step in the open transaction, keeping what it found.
    fn read<'a>(&'a mut self, tx: &'a Transaction<'a>) -> BoxFuture<'a, PgResult<()>>;
    /// Runs the request's second step, keeping what is left to do.
    fn plan<'a>(&'a mut self, tx: &'a Transaction<'a>) -> BoxFuture<'a, PgResult<()>>;
    /// Does what is left: sends the last statements, if any, when first polled (so that the
    /// next request's statements, polled after it, go out after it), and keeps the value.
    fn last<'a>(&'a mut self, tx: &'a Transaction<'a>) -> BoxFuture<'a, PgResult<()>>;
    /// Answers the request: with its value if `outcome` is `Ok`, else with the error.
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
}

struct Pending<I, R, T> {
    store_id: String,
    order: String,
    input: I,
    read: Read<I, R>,
    plan: Plan<I, R, T>,
    found: Option<R>,
    left: Option<Finish<T>>,
    value: Option<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<I, R, T> Job for Pending<I, R, T>
where
    I: Send + Sync + 'static,
    R: Send + 'static,
    T: Send + 'static,
{
    fn key(&self) -> (&str, &str) {
        (&self.store_id, &self.order)
    }

    fn read<'a>(&'a mut self, tx: &'a Transaction<'a>) -> BoxFuture<'a, PgResult<()>> {
        Box::pin(async move {
            self.found = Some(guarded((self.read)(tx, &self.input)).await?);
            Ok(())
        })
    }

    fn plan<'a>(&'a mut self, tx: &'a Transaction<'a>) -> BoxFuture<'a, PgResult<()>> {
        Box::pin(async move {
            let found = self.found.take().ok_or_else(|| {
                StoreError::Internal("a grouped request was planned before its read".into())
            })?;
            self.left = Some(guarded((self.plan)(tx, &self.input, found)).await?);
            Ok(())
        })
    }

    fn last<'a>(&'a mut self, tx: &'a Transaction<'a>) -> BoxFuture<'a, PgResult<()>> {
        Box::pin(async move {
            let left = self.left.take().ok_or_else(|| {
                StoreError::Internal("a grouped request was finished before its plan".into())
            })?;
            self.value = Some(guarded(left.run(tx)).await?);
            Ok(())
        })
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>) {
        let answer = match (outcome, self.value) {
            (Ok(()), Some(value)) => Ok(value),
            (Ok(()), None) => Err(StoreError::Internal(
                "a grouped request committed without a result".into(),
            )),
            (Err(e), _) => Err(e),
        };
        // The caller may have gone away (client disconnected); the write stands regardless.
        let _ = self.reply.send(answer);
    }
}

/// Counters for tests and diagnostics.
#[derive(Default)]
pub(super) struct Stats {
    /// Transactions committed with more than one request in them.
    pub(super) groups: AtomicU64,
    /// Requests committed in those transactions.
    pub(super) grouped: AtomicU64,
    /// Requests sent to run again alone after a deadlock or serialization failure in a group.
    pub(super) again: AtomicU64,
}

/// The queue in front of the batch workers. Dropping it stops the workers once the queue is
/// drained.
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Box<dyn Job>>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) stats: Arc<Stats>,
}

/// What a worker needs to run batches.
#[derive(Clone)]
struct Worker {
    pool: Pool,
    max_batch: usize,
    max_retries: u32,
    stats: Arc<Stats>,
}

impl GroupCommit {
    /// Starts `workers` batch workers on the pool (on the current Tokio runtime).
    pub(super) fn start(
        pool: Pool,
        workers: usize,
        max_batch: usize,
        max_retries: u32,
    ) -> GroupCommit {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(Stats::default());
        let worker = Worker {
            pool,
            max_batch: max_batch.max(1),
            max_retries,
            stats: stats.clone(),
        };
        for _ in 0..workers.max(1) {
            tokio::spawn(worker.clone().run(rx.clone()));
        }
        GroupCommit { queue, stats }
    }

    /// How many requests wait in the queue.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Runs `work` on `input` in a batch transaction; its result once that has committed.
    #[cfg(test)]
    pub(super) async fn submit<I, T>(
        &self,
        store_id: &str,
        order: &str,
        input: I,
        work: Read<I, T>,
    ) -> StoreResult<T>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.submit_in_steps(store_id, order, input, work, done::<I, T>)
            .await
    }

    /// Runs `read`, then `plan` with what it found, then what `plan` left, on `input` in a
    /// batch transaction; the result once that has committed. The last statements go out
    /// together with the next request's first step.
    pub(super) async fn submit_in_steps<I, R, T>(
        &self,
        store_id: &str,
        order: &str,
        input: I,
        read: Read<I, R>,
        plan: Plan<I, R, T>,
    ) -> StoreResult<T>
    where
        I: Send + Sync + 'static,
        R: Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            store_id: store_id.to_owned(),
            order: order.to_owned(),
            input,
            read,
            plan,
            found: None,
            left: None,
            value: None,
            reply,
        });
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the group-commit workers have stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Internal("a group-commit worker dropped a request".into()))?
    }
}

/// How one request of a batch came out.
enum Outcome {
    Done,
    Refused(StoreError),
    /// A deadlock or serialization failure: run it again on its own.
    Again,
}

impl Worker {
    async fn run(self, rx: Arc<Mutex<mpsc::Receiver<Box<dyn Job>>>>) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(self.max_batch);
        loop {
            {
                // One worker at a time waits for work; it takes what is queued and lets go.
                let mut rx = rx.lock().await;
                let Some(first) = rx.recv().await else {
                    break;
                };
                batch.push(first);
                while batch.len() < self.max_batch {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
            }
            if batch.len() == 1 {
                for job in batch.drain(..) {
                    self.run_alone(job).await;
                }
                continue;
            }
            batch.sort_by(|a, b| a.key().cmp(&b.key()));
            match self.run_batch(&mut batch).await {
                Ok(outcomes) => {
                    let mut again = Vec::new();
                    let mut done = 0;
                    for (job, outcome) in batch.drain(..).zip(outcomes) {
                        match outcome {
                            Outcome::Done => {
                                done += 1;
                                job.finish(Ok(()));
                            }
                            Outcome::Refused(e) => job.finish(Err(e)),
                            Outcome::Again => again.push(job),
                        }
                    }
                    self.stats.groups.fetch_add(1, Ordering::Release);
                    self.stats.grouped.fetch_add(done, Ordering::Release);
                    self.stats
                        .again
                        .fetch_add(again.len() as u64, Ordering::Release);
                    for job in again {
                        self.run_alone(job).await;
                    }
                }
                Err(BatchError::NotCommitted(detail)) => {
                    tracing::debug!(%detail, batch = batch.len(), "group transaction failed; running its requests one by one");
                    for job in batch.drain(..) {
                        self.run_alone(job).await;
                    }
                }
                Err(BatchError::Unknown(e)) => {
                    tracing::error!(error = %e, batch = batch.len(), "group commit's outcome unknown");
                    for job in batch.drain(..) {
                        job.finish(Err(StoreError::Unavailable(e.to_string())));
                    }
                }
            }
        }
        tracing::debug!("PostgreSQL group-commit worker stopped");
    }

    /// Runs the batch in one transaction, each request under a savepoint of its own.
    ///
    /// A request's savepoint and first step go out together, and so do its last statements and
    /// the next request's savepoint and first step: about one round trip per request. When a
    /// request fails, rolling back to its savepoint also undoes the next request's savepoint
    /// and first step if they went out, and the next request starts again.
    async fn run_batch(&self, batch: &mut [Box<dyn Job>]) -> Result<Vec<Outcome>, BatchError> {
        let not_committed = |e: PgError| BatchError::NotCommitted(e.into_store().to_string());
        let mut client = acquire(&self.pool).await.map_err(not_committed)?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| not_committed(map_err("starting a group transaction", e)))?;
        let mut outcomes = Vec::with_capacity(batch.len());
        // The savepoint's and the first step's outcomes of a request that went out early.
        let mut opened: Option<(Result<(), tokio_postgres::Error>, PgResult<()>)> = None;
        for i in 0..batch.len() {
            let (done, waiting) = batch.split_at_mut(i + 1);
            let job = &mut done[i];
            let (savepoint, read) = match opened.take() {
                Some(sent) => sent,
                None => {
                    let savepoint = savepoint_sql(i);
                    futures_util::join!(tx.batch_execute(&savepoint), job.read(&tx))
                }
            };
            savepoint.map_err(|e| not_committed(map_err("opening a savepoint", e)))?;
            let mut result = read;
            if result.is_ok() {
                result = job.plan(&tx).await;
            }
            if result.is_ok() {
                result = match waiting.first_mut() {
                    // `join!` polls in order and each future sends when first polled, so the
                    // server gets this request's last statements before the next savepoint.
                    Some(next) => {
                        let next_savepoint = savepoint_sql(i + 1);
                        let (last, savepoint, read) = futures_util::join!(
                            job.last(&tx),
                            tx.batch_execute(&next_savepoint),
                            next.read(&tx)
                        );
                        opened = Some((savepoint, read));
                        last
                    }
                    None => job.last(&tx).await,
                };
            }
            match result {
                Ok(()) => outcomes.push(Outcome::Done),
                Err(err) => {
                    opened = None;
                    tx.batch_execute(&format!("ROLLBACK TO SAVEPOINT request_{i}"))
                        .await
                        .map_err(|e| not_committed(map_err("rolling back a refused request", e)))?;
                    outcomes.push(match err {
                        PgError::Retry(_) => Outcome::Again,
                        PgError::Store(e) => Outcome::Refused(e),
                    });
                }
            }
        }
        commit(tx, "committing a group")
            .await
            .map_err(|e| match e {
                PgError::Store(StoreError::Unavailable(detail)) => {
                    BatchError::Unknown(StoreError::Unavailable(detail))
                }
                other => not_committed(other),
            })?;
        Ok(outcomes)
    }

    /// Runs one request in a transaction of its own, with the usual retries, and answers it.
    async fn run_alone(&self, mut job: Box<dyn Job>) {
        let mut attempt = 0u32;
        let outcome = loop {
            attempt += 1;
            let result: PgResult<()> = async {
                let mut client = acquire(&self.pool).await?;
                let tx = client
                    .transaction()
                    .await
                    .map_err(|e| map_err("starting a transaction", e))?;
                job.read(&tx).await?;
                job.plan(&tx).await?;
                job.last(&tx).await?;
                commit(tx, "committing").await
            }
            .await;
            match result {
                Ok(()) => break Ok(()),
                Err(err) => match retry_pause(err, attempt, self.max_retries) {
                    Ok(pause) => tokio::time::sleep(pause).await,
                    Err(err) => break Err(err),
                },
            }
        };
        job.finish(outcome);
    }
}

/// The savepoint of the `i`th request of a batch.
fn savepoint_sql(i: usize) -> String {
    format!("SAVEPOINT request_{i}")
}

enum BatchError {
    /// Nothing of the batch was committed; its requests may run again.
    NotCommitted(String),
    /// The commit's outcome is unknown.
    Unknown(StoreError),
}

/// The default number of batch workers.
pub const DEFAULT_WORKERS: usize = 4;
/// The most requests one group transaction holds. PostgreSQL keeps up to 64 subtransaction ids
/// per backend in shared memory before every snapshot must look them up elsewhere; one savepoint
/// per request stays well under that.
pub const MAX_BATCH: usize = 32;
