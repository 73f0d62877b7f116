//! The PostgreSQL backend: a pool of connections, one transaction per command (or per group of
//! queued create-fulfillment and shipment-status requests, see [`group_commit`]), row locks for
//! the ledger, and bounded retries of deadlocks, serialization failures and connections lost
//! before commit.
//!
//! Several Waybill processes may share one database. Every write command first locks its
//! order's row (`SELECT … FOR UPDATE`), so commands on one order run one after another across
//! all processes, while commands on different orders run in parallel. The ledger's conditional
//! `UPDATE … WHERE fulfilled + q <= quantity` and the table's `CHECK` stay as second and third
//! guards.

mod automations;
pub mod engine;
mod exceptions;
mod group_commit;
mod idempotency;
mod migrations;
mod order_json;
mod orders;
mod replica;
mod returns;
mod sessions;
mod webhooks;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use waybill_core::{
    DomainError, Fulfillment, NewFulfillment, NewOrder, Order, OrderRef, StatusUpdate, Timestamp,
    time,
};

use crate::auth_cache::AuthCache;
use crate::secrets::{self, NewApiKey};
use crate::webhooks::{
    AttemptQuery, AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliveryRecord, DeliveryResult,
    NewWebhook, WebhookFlavor, WebhookRecord, WebhookStats, WebhookUpdate,
};
use crate::{
    ApiKeyRecord, OrderPage, OrderQuery, OrderUpdate, Store, StoreError, StoreRecord, StoreResult,
    redact_url,
};

/// Tuning for the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections the process holds open.
    pub pool_size: usize,
    /// How long a request waits for a free connection (or for a new one to open) before it is
    /// answered 503.
    pub acquire_timeout: Duration,
    /// The server-side limit on any one statement (`statement_timeout`).
    pub statement_timeout: Duration,
    /// How often a transaction that hit a deadlock, a serialization failure or a lost
    /// connection is run again before the request is answered 503.
    pub max_retries: u32,
    /// How long a live API key is remembered without asking the database (zero: always ask).
    pub auth_cache_ttl: Duration,
    /// Group commit: how many transactions at a time run queued create-fulfillment and
    /// shipment-status requests together (zero: one transaction per request).
    pub group_commit_workers: usize,
    /// A streaming replica's URL: list, get and export reads go there when it has caught up
    /// (see [`replica`] and docs/OPERATIONS.md, "Read replicas"). `None`: every read runs on
    /// the primary.
    pub read_url: Option<String>,
    /// The most the replica may trail the primary and still serve reads.
    pub read_max_lag: Duration,
    /// How often the primary's and the replica's WAL positions are sampled.
    pub read_check_interval: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            max_retries: 5,
            auth_cache_ttl: crate::DEFAULT_AUTH_CACHE_TTL,
            group_commit_workers: group_commit::DEFAULT_WORKERS,
            read_url: None,
            read_max_lag: Duration::from_secs(1),
            read_check_interval: Duration::from_millis(20),
        }
    }
}

/// Takes a transaction-scoped advisory lock of class `$1` for the current schema, so separate
/// Waybill instances sharing a database in different schemas never wait on each other.
pub(crate) const SCHEMA_LOCK_SQL: &str =
    "SELECT pg_advisory_xact_lock($1::int4, hashtext(COALESCE(current_schema(), '')))";

/// Whether a URL names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A failure inside a PostgreSQL transaction: either final, or worth running the transaction
/// again because nothing was committed and a fresh attempt may succeed.
#[derive(Debug)]
pub(crate) enum PgError {
    Store(StoreError),
    Retry(String),
}

impl From<StoreError> for PgError {
    fn from(err: StoreError) -> Self {
        PgError::Store(err)
    }
}

impl From<DomainError> for PgError {
    fn from(err: DomainError) -> Self {
        PgError::Store(StoreError::Domain(err))
    }
}

impl PgError {
    /// What the caller sees when no retry is left.
    fn into_store(self) -> StoreError {
        match self {
            PgError::Store(err) => err,
            PgError::Retry(detail) => StoreError::Unavailable(detail),
        }
    }
}

impl From<PgError> for StoreError {
    fn from(err: PgError) -> Self {
        err.into_store()
    }
}

pub(crate) type PgResult<T> = Result<T, PgError>;

/// Classifies a driver error: conflicts with other transactions and lost connections are
/// retried; timeouts and refused connections are `Unavailable`; anything else is `Internal`.
pub(crate) fn map_err(context: &str, err: tokio_postgres::Error) -> PgError {
    let detail = format!("{context}: {err}");
    if err.is_closed() {
        return PgError::Retry(detail);
    }
    match err.code() {
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN =>
        {
            PgError::Retry(detail)
        }
        Some(code)
            if *code == SqlState::QUERY_CANCELED
                || *code == SqlState::LOCK_NOT_AVAILABLE
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::CANNOT_CONNECT_NOW
                || code.code().starts_with("08") =>
        {
            PgError::Store(StoreError::Unavailable(detail))
        }
        Some(_) => PgError::Store(StoreError::Internal(detail)),
        // No SQLSTATE: an I/O or protocol failure on the connection.
        None => PgError::Retry(detail),
    }
}

/// Runs `$body` (a future using the transaction `$tx`) in one transaction and commits it. A
/// deadlock, a serialization failure or a connection lost before the commit rolls back and
/// runs the body again on a fresh connection, up to `max_retries` times; then the request is
/// answered `Unavailable`. `write_tx!` opens a read-write transaction and commits it;
/// `read_tx!` a read-only `REPEATABLE READ` one, so every query of a read sees one snapshot,
/// ended by [`end_read`].
macro_rules! transaction {
    ($store:expr, $what:expr, $begin:ident, $end:ident, |$tx:ident| $body:expr) => {{
        let store: &PgStore = $store;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result: PgResult<_> = async {
                let mut client = store.client().await?;
                let $tx = $begin(&mut client)
                    .await
                    .map_err(|e| map_err(concat!($what, ": starting a transaction"), e))?;
                let value = $body.await?;
                $end($tx, $what).await?;
                Ok(value)
            }
            .await;
            match result {
                Ok(value) => break Ok(value),
                Err(err) => match store.retry_after(err, attempt) {
                    Ok(pause) => tokio::time::sleep(pause).await,
                    Err(err) => break Err(err),
                },
            }
        }
    }};
}

/// A write not scoped to one store: once it finishes (whatever its outcome), no store's reads
/// go to the read replica until the replica has replayed past it. Writes for one store use
/// [`store_write_tx!`], which holds back only that store's reads.
macro_rules! write_tx {
    ($store:expr, $what:expr, |$tx:ident| $body:expr) => {{
        let store: &PgStore = $store;
        let result = transaction!(store, $what, begin_write, commit, |$tx| $body);
        store.note_write(None);
        result
    }};
}

/// A write the node makes on its own, not for a client: the webhook dispatcher's and the
/// automation runner's claims and results, due shipment events, purges. Not recorded for
/// read routing: what it changes reaches replica reads within the lag bound, like a write
/// through another node (docs/OPERATIONS.md, "Read replicas").
macro_rules! background_write_tx {
    ($store:expr, $what:expr, |$tx:ident| $body:expr) => {
        transaction!($store, $what, begin_write, commit, |$tx| $body)
    };
}

/// A write for one store (read-your-writes: see [`replica`]).
macro_rules! store_write_tx {
    ($store:expr, $store_id:expr, $what:expr, |$tx:ident| $body:expr) => {{
        let store: &PgStore = $store;
        let result = transaction!(store, $what, begin_write, commit, |$tx| $body);
        store.note_write(Some($store_id));
        result
    }};
}

/// A list, get or export read for `$scope` (a store id, or `None` across stores): runs on the
/// read replica when [`replica::ReadReplica::may_serve`] allows it, else (and when the replica
/// read fails for any reason but a domain error) as [`read_tx!`] on the primary.
macro_rules! routed_read {
    ($store:expr, $scope:expr, $what:expr, |$tx:ident| $body:expr) => {
        routed!($store, $scope, $what, begin_read, end_read, |$tx| $body)
    };
}

/// [`routed_read!`] for a read that is one statement: no transaction (one statement sees one
/// snapshot), so it costs one round trip. `$tx` is the pooled client.
macro_rules! routed_statement {
    ($store:expr, $scope:expr, $what:expr, |$tx:ident| $body:expr) => {
        routed!($store, $scope, $what, no_transaction, no_end, |$tx| $body)
    };
}

macro_rules! routed {
    ($store:expr, $scope:expr, $what:expr, $begin:ident, $end:ident, |$tx:ident| $body:expr) => {{
        let store: &PgStore = $store;
        let mut answered = None;
        if let Some(replica) = store.replica.as_ref().filter(|r| r.may_serve($scope)) {
            let result: PgResult<_> = async {
                let mut client = replica.client().await?;
                let $tx = $begin(&mut client).await.map_err(|e| {
                    map_err(concat!($what, " (read replica): starting a transaction"), e)
                })?;
                let value = $body.await?;
                $end($tx, $what).await?;
                Ok(value)
            }
            .await;
            match result {
                Ok(value) => {
                    replica.served();
                    answered = Some(Ok(value))
                }
                Err(PgError::Store(StoreError::Domain(err))) => {
                    replica.served();
                    answered = Some(Err(StoreError::Domain(err)))
                }
                Err(err) => replica.failed($what, &err),
            }
        }
        match answered {
            Some(answer) => answer,
            None => transaction!(store, $what, $begin, $end, |$tx| $body),
        }
    }};
}

macro_rules! read_tx {
    ($store:expr, $what:expr, |$tx:ident| $body:expr) => {
        transaction!($store, $what, begin_read, end_read, |$tx| $body)
    };
}

async fn begin_write(
    client: &mut deadpool_postgres::Object,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    client.transaction().await
}

async fn no_transaction(
    client: &mut deadpool_postgres::Object,
) -> Result<&deadpool_postgres::Client, tokio_postgres::Error> {
    Ok(client)
}

async fn no_end(_: &deadpool_postgres::Client, _what: &str) -> PgResult<()> {
    Ok(())
}

async fn begin_read(
    client: &mut deadpool_postgres::Object,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

pub struct PgStore {
    pool: Pool,
    description: String,
    options: PgOptions,
    auth_cache: AuthCache,
    group_commit: Option<group_commit::GroupCommit>,
    replica: Option<replica::ReadReplica>,
}

/// The connection settings a URL names, with Waybill's server-side timeouts added.
fn connection_config(url: &str, options: &PgOptions) -> StoreResult<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        StoreError::Internal(format!("invalid PostgreSQL URL '{}': {e}", redact_url(url)))
    })?;
    // Keep any options the URL sets (such as a search_path) and add the statement timeout.
    let mut server_options = config.get_options().unwrap_or_default().to_owned();
    if !server_options.is_empty() {
        server_options.push(' ');
    }
    // A Waybill transaction never waits on its client; one left idle (a client that
    // stalled mid-transaction) is ended by the server rather than holding its locks.
    server_options.push_str(&format!(
        "-c statement_timeout={0} -c idle_in_transaction_session_timeout={0}",
        options.statement_timeout.as_millis()
    ));
    config.options(&server_options);
    config.connect_timeout(options.acquire_timeout);
    if config.get_application_name().is_none() {
        config.application_name("waybill");
    }
    Ok(config)
}

fn build_pool(
    config: tokio_postgres::Config,
    size: usize,
    options: &PgOptions,
) -> StoreResult<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.acquire_timeout))
        .create_timeout(Some(options.acquire_timeout))
        .recycle_timeout(Some(options.acquire_timeout))
        .build()
        .map_err(|e| StoreError::internal("building the PostgreSQL pool", e))
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names and applies pending migrations
    /// (under an advisory lock, so several processes may start at once). With a read URL, also
    /// opens the replica's pool and starts sampling both servers' WAL positions.
    pub async fn open(url: &str, options: PgOptions) -> StoreResult<PgStore> {
        let config = connection_config(url, &options)?;
        let pool = build_pool(config.clone(), options.pool_size, &options)?;
        let replica = match options.read_url.as_deref() {
            Some(read_url) => {
                let replica_config = connection_config(read_url, &options)?;
                let description = redact_url(read_url);
                tracing::info!(replica = %description, "reads may use a read replica");
                Some(replica::ReadReplica::start(
                    build_pool(replica_config.clone(), options.pool_size, &options)?,
                    build_pool(config, 1, &options)?,
                    build_pool(replica_config, 1, &options)?,
                    description,
                    options.read_max_lag,
                    options.read_check_interval,
                ))
            }
            None => None,
        };
        let store = PgStore {
            pool: pool.clone(),
            description: redact_url(url),
            auth_cache: AuthCache::new(options.auth_cache_ttl),
            group_commit: (options.group_commit_workers > 0).then(|| {
                group_commit::GroupCommit::start(
                    pool.clone(),
                    options.group_commit_workers,
                    group_commit::MAX_BATCH,
                    options.max_retries,
                )
            }),
            replica,
            options,
        };
        let applied = write_tx!(&store, "applying migrations", |tx| migrations::migrate(&tx))?;
        if applied > 0 {
            tracing::info!(applied, database = %store.description, "applied PostgreSQL migrations");
        }
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        acquire(&self.pool).await
    }

    fn note_write(&self, store: Option<&str>) {
        if let Some(replica) = &self.replica {
            replica.note_write(store);
        }
    }

    fn retry_after(&self, err: PgError, attempt: u32) -> Result<Duration, StoreError> {
        retry_pause(err, attempt, self.options.max_retries)
    }
}

async fn acquire(pool: &Pool) -> Result<deadpool_postgres::Object, PgError> {
    pool.get().await.map_err(|e| {
        PgError::Store(StoreError::Unavailable(format!(
            "getting a PostgreSQL connection: {e}"
        )))
    })
}

/// After a failed attempt: how long to wait before the next one, or the error to answer with
/// when the failure is final or no retry is left.
fn retry_pause(err: PgError, attempt: u32, max_retries: u32) -> Result<Duration, StoreError> {
    match err {
        PgError::Retry(detail) if attempt <= max_retries => {
            tracing::debug!(attempt, %detail, "retrying a PostgreSQL transaction");
            Ok(Duration::from_millis(
                5 * u64::from(attempt) + rand::random_range(0..10u64),
            ))
        }
        err => Err(err.into_store()),
    }
}

/// Ends a read-only transaction without waiting for it: dropping it queues a `ROLLBACK` on the
/// connection, ahead of whatever the connection's next user sends, so the answer is not held
/// for a round trip whose outcome could change nothing (the reads are done, and a read-only
/// transaction has nothing to keep).
async fn end_read(tx: Transaction<'_>, _what: &str) -> PgResult<()> {
    drop(tx);
    Ok(())
}

/// Commits a transaction. A lost connection during the commit is not retried: whether the
/// commit took effect is unknown, so the request is answered `Unavailable`.
pub(crate) async fn commit(tx: Transaction<'_>, what: &str) -> PgResult<()> {
    tx.commit().await.map_err(|e| match map_err(what, e) {
        PgError::Retry(detail) => PgError::Store(StoreError::Unavailable(format!(
            "the commit's outcome is unknown: {detail}"
        ))),
        other => other,
    })
}

pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Runs a statement through the connection's prepared-statement cache.
pub(crate) async fn query<C: GenericClient>(
    tx: &C,
    what: &str,
    sql: &str,
    params: &Params<'_>,
) -> PgResult<Vec<Row>> {
    let stmt = tx.prepare_cached(sql).await.map_err(|e| map_err(what, e))?;
    tx.query(&stmt, params).await.map_err(|e| map_err(what, e))
}

pub(crate) async fn query_opt<C: GenericClient>(
    tx: &C,
    what: &str,
    sql: &str,
    params: &Params<'_>,
) -> PgResult<Option<Row>> {
    let stmt = tx.prepare_cached(sql).await.map_err(|e| map_err(what, e))?;
    tx.query_opt(&stmt, params)
        .await
        .map_err(|e| map_err(what, e))
}

pub(crate) async fn query_one<C: GenericClient>(
    tx: &C,
    what: &str,
    sql: &str,
    params: &Params<'_>,
) -> PgResult<Row> {
    let stmt = tx.prepare_cached(sql).await.map_err(|e| map_err(what, e))?;
    tx.query_one(&stmt, params)
        .await
        .map_err(|e| map_err(what, e))
}

pub(crate) async fn execute<C: GenericClient>(
    tx: &C,
    what: &str,
    sql: &str,
    params: &Params<'_>,
) -> PgResult<u64> {
    let stmt = tx.prepare_cached(sql).await.map_err(|e| map_err(what, e))?;
    tx.execute(&stmt, params)
        .await
        .map_err(|e| map_err(what, e))
}

/// A statement parameter owned by the value that sends it.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// What a write command leaves to do once its reads and checks are done: nothing more (its
/// value), or a few last statements whose rows make its value. A group-commit batch sends the
/// last statements of one request together with the next request's first reads.
pub(crate) enum Finish<T> {
    Value(T),
    Statement(LastStatement<T>),
}

/// One prepared statement of a [`LastStatement`] pipeline, with its parameters.
pub(crate) struct PipelinedStep {
    pub(crate) what: &'static str,
    pub(crate) statement: tokio_postgres::Statement,
    pub(crate) params: Vec<Param>,
}

/// Prepared statements with their parameters, sent together (one round trip; each sees what
/// the ones before it wrote), and what makes the command's value from the rows each returns
/// (or refuses the command).
pub(crate) struct LastStatement<T> {
    pub(crate) steps: Vec<PipelinedStep>,
    pub(crate) value: Box<dyn FnOnce(Vec<Vec<Row>>) -> PgResult<T> + Send>,
}

impl<T> LastStatement<T> {
    /// Runs the statements. Their messages go out when the future is first polled, in order,
    /// so futures polled in sequence reach the server in that sequence. When one fails, the
    /// transaction is aborted and the ones after it fail too: the first failure is the answer.
    pub(crate) async fn run(self, tx: &Transaction<'_>) -> PgResult<T> {
        let LastStatement { steps, value } = self;
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> = steps
            .iter()
            .map(|step| {
                step.params
                    .iter()
                    .map(|p| &**p as &(dyn ToSql + Sync))
                    .collect()
            })
            .collect();
        // `join_all` polls a short list in order, so the statements are sent in order.
        let results =
            futures_util::future::join_all(steps.iter().zip(&refs).map(|(step, params)| async {
                tx.query(&step.statement, params)
                    .await
                    .map_err(|e| map_err(step.what, e))
            }))
            .await;
        value(results.into_iter().collect::<PgResult<Vec<_>>>()?)
    }
}

impl<T> Finish<T> {
    /// Runs what is left, alone.
    pub(crate) async fn run(self, tx: &Transaction<'_>) -> PgResult<T> {
        match self {
            Finish::Value(value) => Ok(value),
            Finish::Statement(last) => last.run(tx).await,
        }
    }
}

/// Prepares (or takes from the connection's cache) the statements a pipelined batch needs,
/// so that every request of the batch is sent on its future's first poll, in order.
pub(crate) async fn prepare(
    tx: &Transaction<'_>,
    what: &str,
    sql: &str,
) -> PgResult<tokio_postgres::Statement> {
    tx.prepare_cached(sql).await.map_err(|e| map_err(what, e))
}

async fn insert_api_key(tx: &Transaction<'_>, store_id: &str) -> PgResult<NewApiKey> {
    let key = NewApiKey {
        id: secrets::generate_key_id(),
        store_id: store_id.to_owned(),
        secret: secrets::generate_secret(),
    };
    tx.execute(
        "INSERT INTO api_keys (id, store_id, secret_hash, secret_prefix, created_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &key.id,
            &key.store_id,
            &secrets::hash_secret(&key.secret),
            &secrets::display_prefix(&key.secret),
            &time::to_millis(time::now()),
        ],
    )
    .await
    .map_err(|e| map_err("inserting an API key", e))?;
    Ok(key)
}

pub(crate) async fn store_exists(tx: &Transaction<'_>, store_id: &str) -> PgResult<bool> {
    let row = tx
        .query_opt("SELECT 1 FROM stores WHERE id = $1", &[&store_id])
        .await
        .map_err(|e| map_err("looking up a store", e))?;
    Ok(row.is_some())
}

/// Runs SQL (one or more statements) on a connection of its own, outside any pool: for
/// administrative work such as creating or dropping the schema of a test or a benchmark.
pub async fn run_sql(url: &str, sql: &str) -> StoreResult<()> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(format!("connecting to {}: {e}", redact_url(url))))?;
    let task = tokio::spawn(connection);
    let result = client
        .batch_execute(sql)
        .await
        .map_err(|e| StoreError::internal("running administrative SQL", e));
    drop(client);
    let _ = task.await;
    result
}

#[async_trait]
impl Store for PgStore {
    async fn create_session(&self, session: crate::NewSession) -> StoreResult<()> {
        write_tx!(self, "starting a dashboard session", |tx| sessions::create(
            &tx, &session
        ))
    }

    async fn get_session(&self, token_hash: &str) -> StoreResult<Option<crate::SessionRecord>> {
        read_tx!(self, "reading a dashboard session", |tx| sessions::get(
            &tx, token_hash
        ))
    }

    async fn touch_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<()> {
        write_tx!(self, "marking a dashboard session used", |tx| {
            sessions::touch(&tx, token_hash, now)
        })
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        write_tx!(self, "ending a dashboard session", |tx| sessions::delete(
            &tx, token_hash
        ))
    }

    async fn signin_blocked_until(
        &self,
        client: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        read_tx!(self, "reading a sign-in block", |tx| {
            sessions::blocked_until(&tx, client, now)
        })
    }

    async fn record_signin_failure(
        &self,
        client: &str,
        now: Timestamp,
        window_start: Timestamp,
    ) -> StoreResult<u64> {
        write_tx!(self, "recording a sign-in failure", |tx| {
            sessions::record_failure(&tx, client, now, window_start)
        })
    }

    async fn block_signin(&self, client: &str, until: Timestamp) -> StoreResult<()> {
        write_tx!(self, "blocking sign-ins", |tx| sessions::block(
            &tx, client, until
        ))
    }

    async fn clear_signin_failures(&self, client: &str) -> StoreResult<()> {
        write_tx!(self, "forgetting sign-in failures", |tx| sessions::clear(
            &tx, client
        ))
    }

    async fn count_rate_window(&self, key: &str, window_start: Timestamp) -> StoreResult<u64> {
        write_tx!(self, "counting a request in its rate window", |tx| {
            sessions::count_rate(&tx, key, window_start)
        })
    }

    async fn purge(&self, purge: crate::Purge, limit: u32) -> StoreResult<u64> {
        write_tx!(self, "purging old rows", |tx| sessions::purge(
            &tx, purge, limit
        ))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.client().await.map_err(PgError::into_store)?;
        client.simple_query("SELECT 1").await.map_err(|e| {
            match map_err("pinging the database", e) {
                PgError::Retry(detail) => StoreError::Unavailable(detail),
                PgError::Store(err) => err,
            }
        })?;
        Ok(())
    }

    async fn create_store(&self, name: &str) -> StoreResult<(StoreRecord, NewApiKey)> {
        let name = name.trim();
        if name.is_empty() {
            return Err(DomainError::invalid("a store needs a name").into());
        }
        write_tx!(self, "creating a store", |tx| async {
            let record = StoreRecord {
                id: secrets::generate_store_id(),
                name: name.to_owned(),
                created_at: time::now(),
            };
            tx.execute(
                "INSERT INTO stores (id, name, created_at) VALUES ($1, $2, $3)",
                &[
                    &record.id,
                    &record.name,
                    &time::to_millis(record.created_at),
                ],
            )
            .await
            .map_err(|e| map_err("inserting a store", e))?;
            let key = insert_api_key(&tx, &record.id).await?;
            Ok::<_, PgError>((record, key))
        })
    }

    async fn list_stores(&self) -> StoreResult<Vec<StoreRecord>> {
        read_tx!(self, "listing stores", |tx| async {
            let rows = tx
                .query(
                    "SELECT id, name, created_at FROM stores ORDER BY created_at, id",
                    &[],
                )
                .await
                .map_err(|e| map_err("listing stores", e))?;
            Ok::<_, PgError>(
                rows.iter()
                    .map(|r| StoreRecord {
                        id: r.get(0),
                        name: r.get(1),
                        created_at: time::from_millis(r.get(2)),
                    })
                    .collect(),
            )
        })
    }

    async fn store_exists(&self, store_id: &str) -> StoreResult<bool> {
        read_tx!(self, "looking up a store", |tx| store_exists(&tx, store_id))
    }

    async fn create_api_key(&self, store_id: &str) -> StoreResult<NewApiKey> {
        store_write_tx!(self, store_id, "creating an API key", |tx| async {
            if !store_exists(&tx, store_id).await? {
                return Err(DomainError::StoreNotFound(store_id.to_owned()).into());
            }
            insert_api_key(&tx, store_id).await
        })
    }

    async fn list_api_keys(&self, store_id: &str) -> StoreResult<Vec<ApiKeyRecord>> {
        read_tx!(self, "listing API keys", |tx| async {
            let rows = tx
                .query(
                    "SELECT id, store_id, secret_prefix, created_at, revoked_at FROM api_keys
                     WHERE store_id = $1 ORDER BY created_at, id",
                    &[&store_id],
                )
                .await
                .map_err(|e| map_err("listing API keys", e))?;
            Ok::<_, PgError>(
                rows.iter()
                    .map(|r| ApiKeyRecord {
                        id: r.get(0),
                        store_id: r.get(1),
                        prefix: r.get(2),
                        created_at: time::from_millis(r.get(3)),
                        revoked_at: r.get::<_, Option<i64>>(4).map(time::from_millis),
                    })
                    .collect(),
            )
        })
    }

    async fn revoke_api_key(&self, key_id: &str) -> StoreResult<bool> {
        let revoked = write_tx!(self, "revoking an API key", |tx| async {
            let changed = tx
                .execute(
                    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    &[&key_id, &time::to_millis(time::now())],
                )
                .await
                .map_err(|e| map_err("revoking an API key", e))?;
            Ok::<_, PgError>(changed == 1)
        });
        // After the commit, so no lookup can read the key as live and be remembered after.
        self.auth_cache.forget_all();
        revoked
    }

    async fn authenticate(&self, secret: &str) -> StoreResult<Option<String>> {
        let hash = secrets::hash_secret(secret);
        let lookup = async {
            // One statement: no transaction around it.
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let result = async {
                let client = self.client().await?;
                let stmt = client
                    .prepare_cached(
                        "SELECT store_id FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL",
                    )
                    .await
                    .map_err(|e| map_err("authenticating", e))?;
                let row = client
                    .query_opt(&stmt, &[&hash])
                    .await
                    .map_err(|e| map_err("authenticating", e))?;
                Ok::<_, PgError>(row.map(|r| r.get::<_, String>(0)))
            }
            .await;
                match result {
                    Ok(found) => return Ok(found),
                    Err(err) => tokio::time::sleep(self.retry_after(err, attempt)?).await,
                }
            }
        };
        self.auth_cache.lookup(&hash, lookup).await
    }

    async fn create_order(&self, store_id: &str, order: NewOrder) -> StoreResult<Order> {
        store_write_tx!(self, store_id, "creating an order", |tx| {
            orders::insert_order(&tx, store_id, &order, time::now())
        })
    }

    async fn get_order(&self, store_id: &str, order: &OrderRef) -> StoreResult<Order> {
        routed_statement!(self, Some(store_id), "reading an order", |client| {
            orders::load_order(client, store_id, order)
        })
    }

    async fn delete_order(&self, store_id: &str, order: &OrderRef) -> StoreResult<Order> {
        store_write_tx!(self, store_id, "deleting an order", |tx| {
            orders::delete_order(&tx, store_id, order, time::now())
        })
    }

    async fn create_fulfillment(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment: NewFulfillment,
    ) -> StoreResult<Fulfillment> {
        if let Some(group) = &self.group_commit {
            let input = (store_id.to_owned(), order.clone(), fulfillment);
            let result = group
                .submit_in_steps(
                    store_id,
                    order.as_str(),
                    input,
                    |tx, (store_id, order, _)| {
                        Box::pin(orders::lock_for_fulfillment(tx, store_id, order))
                    },
                    |tx, (store_id, order, new), locked| {
                        Box::pin(orders::plan_fulfillment(
                            tx,
                            store_id,
                            order,
                            new,
                            time::now(),
                            locked,
                        ))
                    },
                )
                .await;
            self.note_write(Some(store_id));
            return result;
        }
        store_write_tx!(self, store_id, "creating a fulfillment", |tx| {
            orders::insert_fulfillment(&tx, store_id, order, &fulfillment, time::now())
        })
    }

    async fn upsert_fulfillment(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment: NewFulfillment,
    ) -> StoreResult<(Fulfillment, bool)> {
        store_write_tx!(self, store_id, "upserting a fulfillment", |tx| {
            orders::upsert_fulfillment(&tx, store_id, order, &fulfillment, time::now())
        })
    }

    async fn update_order(
        &self,
        store_id: &str,
        order: &OrderRef,
        update: OrderUpdate,
    ) -> StoreResult<Order> {
        store_write_tx!(self, store_id, "updating an order", |tx| {
            orders::update_order(&tx, store_id, order, &update, time::now())
        })
    }

    async fn list_orders(&self, store_id: &str, query: OrderQuery) -> StoreResult<OrderPage> {
        routed_read!(self, Some(store_id), "listing orders", |tx| {
            orders::list_orders(&tx, store_id, &query)
        })
    }

    async fn update_shipment_status(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment_id: &str,
        update: StatusUpdate,
    ) -> StoreResult<Fulfillment> {
        if let Some(group) = &self.group_commit {
            let input = (
                store_id.to_owned(),
                order.clone(),
                fulfillment_id.to_owned(),
                update,
            );
            let result = group
                .submit_in_steps(
                    store_id,
                    order.as_str(),
                    input,
                    |tx, (store_id, order, fulfillment_id, _)| {
                        Box::pin(orders::lock_for_status(tx, store_id, order, fulfillment_id))
                    },
                    |tx, (store_id, order, fulfillment_id, update), locked| {
                        Box::pin(orders::plan_status_update(
                            tx,
                            store_id,
                            order,
                            fulfillment_id,
                            update,
                            time::now(),
                            locked,
                        ))
                    },
                )
                .await;
            self.note_write(Some(store_id));
            return result;
        }
        store_write_tx!(self, store_id, "updating a shipment status", |tx| {
            orders::apply_status_update(&tx, store_id, order, fulfillment_id, &update, time::now())
        })
    }

    async fn update_tracking(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment_id: &str,
        packages: Vec<waybill_core::Package>,
    ) -> StoreResult<Fulfillment> {
        store_write_tx!(self, store_id, "updating tracking", |tx| {
            orders::update_tracking(&tx, store_id, order, fulfillment_id, &packages, time::now())
        })
    }

    async fn apply_carrier_report(
        &self,
        store_id: &str,
        tracking_number: &str,
        carrier: Option<&str>,
        report: waybill_core::carrier_update::CarrierReport,
    ) -> StoreResult<Option<Fulfillment>> {
        store_write_tx!(self, store_id, "recording a carrier report", |tx| {
            orders::apply_carrier_report(
                &tx,
                store_id,
                tracking_number,
                carrier,
                &report,
                time::now(),
            )
        })
    }

    async fn raise_due_events(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<crate::RaisedEvent>> {
        background_write_tx!(self, "raising due shipment events", |tx| {
            orders::raise_due_events(&tx, now, limit)
        })
    }

    async fn list_exceptions(
        &self,
        store_id: &str,
        query: crate::ExceptionQuery,
    ) -> StoreResult<Vec<crate::ExceptionRow>> {
        routed_read!(self, Some(store_id), "listing exceptions", |tx| {
            exceptions::list_exceptions(&tx, store_id, &query)
        })
    }

    async fn count_exceptions(
        &self,
        store_id: &str,
        query: crate::ExceptionQuery,
    ) -> StoreResult<Vec<(crate::ExceptionKind, u64)>> {
        routed_read!(self, Some(store_id), "counting exceptions", |tx| {
            exceptions::count_exceptions(&tx, store_id, &query)
        })
    }

    async fn store_settings(&self, store_id: &str) -> StoreResult<crate::StoreSettings> {
        routed_read!(self, Some(store_id), "loading store settings", |tx| {
            automations::settings(&tx, store_id)
        })
    }

    async fn update_store_settings(
        &self,
        store_id: &str,
        update: crate::SettingsUpdate,
    ) -> StoreResult<crate::StoreSettings> {
        store_write_tx!(self, store_id, "saving store settings", |tx| {
            automations::update_settings(&tx, store_id, &update, time::now())
        })
    }

    async fn create_automation(
        &self,
        store_id: &str,
        new: crate::NewAutomation,
    ) -> StoreResult<crate::AutomationRecord> {
        store_write_tx!(self, store_id, "creating an automation", |tx| {
            automations::create(&tx, store_id, &new, time::now())
        })
    }

    async fn list_automations(&self, store_id: &str) -> StoreResult<Vec<crate::AutomationRecord>> {
        routed_read!(self, Some(store_id), "listing automations", |tx| {
            automations::list(&tx, store_id)
        })
    }

    async fn get_automation(
        &self,
        store_id: &str,
        automation_id: &str,
    ) -> StoreResult<Option<crate::AutomationRecord>> {
        routed_read!(self, Some(store_id), "loading an automation", |tx| {
            automations::get(&tx, store_id, automation_id)
        })
    }

    async fn update_automation(
        &self,
        store_id: &str,
        automation_id: &str,
        new: crate::NewAutomation,
    ) -> StoreResult<Option<crate::AutomationRecord>> {
        store_write_tx!(self, store_id, "updating an automation", |tx| {
            automations::update(&tx, store_id, automation_id, &new, time::now())
        })
    }

    async fn delete_automation(&self, store_id: &str, automation_id: &str) -> StoreResult<bool> {
        store_write_tx!(self, store_id, "deleting an automation", |tx| {
            automations::delete(&tx, store_id, automation_id)
        })
    }

    async fn list_automation_runs(
        &self,
        store_id: &str,
        automation_id: &str,
        limit: u32,
    ) -> StoreResult<Option<Vec<crate::AutomationRun>>> {
        routed_read!(self, Some(store_id), "listing automation runs", |tx| {
            automations::list_runs(&tx, store_id, automation_id, limit)
        })
    }

    async fn claim_automation_runs(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<crate::ClaimedRun>> {
        background_write_tx!(self, "claiming automation runs", |tx| automations::claim(
            &tx, now, limit, lease
        ))
    }

    async fn finish_automation_run(
        &self,
        run_id: i64,
        claim: i64,
        outcome: crate::RunOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        background_write_tx!(self, "finishing an automation run", |tx| {
            automations::finish(&tx, run_id, claim, &outcome, now)
        })
    }

    async fn idempotency_begin(
        &self,
        request: crate::IdempotencyRequest,
        now: Timestamp,
    ) -> StoreResult<crate::IdempotencyBegin> {
        store_write_tx!(
            self,
            &request.store_id,
            "reserving an idempotency key",
            |tx| { idempotency::begin(&tx, &request, now) }
        )
    }

    async fn idempotency_renew(
        &self,
        hold: &crate::IdempotencyHold,
        lease: Duration,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // Not a change a client reads (nor one the read replica serves): no read routing.
        background_write_tx!(self, "renewing an idempotency key's lease", |tx| {
            idempotency::renew(&tx, hold, lease, now)
        })
    }

    async fn idempotency_complete(
        &self,
        hold: &crate::IdempotencyHold,
        response: crate::StoredResponse,
    ) -> StoreResult<bool> {
        store_write_tx!(self, &hold.store_id, "storing an idempotent answer", |tx| {
            idempotency::complete(&tx, hold, &response)
        })
    }

    async fn idempotency_release(&self, hold: &crate::IdempotencyHold) -> StoreResult<bool> {
        store_write_tx!(self, &hold.store_id, "releasing an idempotency key", |tx| {
            idempotency::release(&tx, hold)
        })
    }

    async fn purge_idempotency_keys(&self, now: Timestamp) -> StoreResult<u64> {
        background_write_tx!(self, "purging idempotency keys", |tx| idempotency::purge(
            &tx, now
        ))
    }

    async fn rotate_webhook_secret(
        &self,
        store_id: &str,
        webhook_id: &str,
        new_secret: &str,
        overlap: Duration,
    ) -> StoreResult<Option<WebhookRecord>> {
        store_write_tx!(self, store_id, "rotating a webhook secret", |tx| {
            idempotency::rotate_secret(&tx, store_id, webhook_id, new_secret, overlap, time::now())
        })
    }

    // ---- webhooks ----

    async fn create_webhook(
        &self,
        store_id: &str,
        new: NewWebhook,
    ) -> StoreResult<(WebhookRecord, bool)> {
        store_write_tx!(self, store_id, "creating a webhook", |tx| {
            webhooks::create_webhook(&tx, store_id, &new, time::now())
        })
    }

    async fn list_webhooks(
        &self,
        store_id: &str,
        flavor: WebhookFlavor,
    ) -> StoreResult<Vec<WebhookRecord>> {
        routed_read!(self, Some(store_id), "listing webhooks", |tx| {
            webhooks::list_webhooks(&tx, store_id, flavor)
        })
    }

    async fn get_webhook(
        &self,
        store_id: &str,
        webhook_id: &str,
    ) -> StoreResult<Option<WebhookRecord>> {
        routed_read!(self, Some(store_id), "loading a webhook", |tx| {
            webhooks::load_webhook(&tx, store_id, webhook_id)
        })
    }

    async fn update_webhook(
        &self,
        store_id: &str,
        webhook_id: &str,
        update: WebhookUpdate,
    ) -> StoreResult<Option<WebhookRecord>> {
        store_write_tx!(self, store_id, "updating a webhook", |tx| {
            webhooks::update_webhook(&tx, store_id, webhook_id, &update, time::now())
        })
    }

    async fn delete_webhook(&self, store_id: &str, webhook_id: &str) -> StoreResult<bool> {
        store_write_tx!(self, store_id, "deleting a webhook", |tx| {
            webhooks::delete_webhook(&tx, store_id, webhook_id)
        })
    }

    async fn store_webhook_secret(&self, store_id: &str, candidate: &str) -> StoreResult<String> {
        store_write_tx!(self, store_id, "storing a webhook secret", |tx| {
            webhooks::store_secret(&tx, store_id, candidate, time::now())
        })
    }

    async fn replay_webhook(
        &self,
        store_id: &str,
        webhook_id: &str,
        since: Timestamp,
    ) -> StoreResult<Option<u64>> {
        store_write_tx!(
            self,
            store_id,
            "replaying a webhook",
            |tx| webhooks::replay(&tx, store_id, webhook_id, since, time::now())
        )
    }

    async fn redeliver_webhook_event(
        &self,
        store_id: &str,
        webhook_id: &str,
        event_id: &str,
    ) -> StoreResult<bool> {
        store_write_tx!(self, store_id, "redelivering an event", |tx| {
            webhooks::redeliver(&tx, store_id, webhook_id, event_id, time::now())
        })
    }

    async fn list_webhook_attempts(
        &self,
        store_id: &str,
        query: AttemptQuery,
    ) -> StoreResult<Vec<AttemptRecord>> {
        routed_read!(self, Some(store_id), "listing delivery attempts", |tx| {
            webhooks::list_attempts(&tx, store_id, &query)
        })
    }

    async fn list_webhook_deliveries(
        &self,
        store_id: &str,
        query: DeliveryQuery,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        routed_read!(self, Some(store_id), "listing deliveries", |tx| {
            webhooks::list_deliveries(&tx, store_id, &query)
        })
    }

    async fn count_webhook_deliveries(
        &self,
        store_id: &str,
        query: DeliveryQuery,
    ) -> StoreResult<u64> {
        routed_read!(self, Some(store_id), "counting deliveries", |tx| {
            webhooks::count_deliveries(&tx, store_id, &query)
        })
    }

    async fn webhook_stats(
        &self,
        store_id: &str,
        webhook_id: &str,
    ) -> StoreResult<Option<WebhookStats>> {
        routed_read!(self, Some(store_id), "reading a webhook's health", |tx| {
            webhooks::stats(&tx, store_id, webhook_id)
        })
    }

    /// The cursor name is not used: PostgreSQL marks each outbox row once it is fanned out
    /// (see `postgres/webhooks.rs`).
    async fn fan_out_webhook_events(
        &self,
        _cursor: &str,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<u64> {
        background_write_tx!(self, "fanning out events", |tx| webhooks::fan_out(
            &tx, limit, now
        ))
    }

    async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        background_write_tx!(self, "claiming deliveries", |tx| webhooks::claim(
            &tx, now, limit, lease_ms
        ))
    }

    async fn finish_webhook_delivery(
        &self,
        result: DeliveryResult,
        now: Timestamp,
    ) -> StoreResult<bool> {
        background_write_tx!(self, "finishing a delivery", |tx| webhooks::finish(
            &tx, &result, now
        ))
    }

    async fn last_order_payload(&self, order_id: &str) -> StoreResult<Option<String>> {
        read_tx!(self, "finding an order's last payload", |tx| {
            webhooks::last_order_payload(&tx, order_id)
        })
    }

    async fn webhook_backlog(&self, _cursor: &str) -> StoreResult<crate::WebhookBacklog> {
        read_tx!(self, "measuring the webhook backlog", |tx| {
            webhooks::backlog(&tx)
        })
    }

    fn read_replica_stats(&self) -> Option<crate::read_routing::ReplicaReadStats> {
        self.replica.as_ref().map(replica::ReadReplica::stats)
    }

    async fn create_return(
        &self,
        store_id: &str,
        order: &OrderRef,
        new: waybill_core::NewReturn,
    ) -> StoreResult<waybill_core::Return> {
        store_write_tx!(self, store_id, "creating a return", |tx| {
            returns::create_return(&tx, store_id, order, &new, time::now())
        })
    }

    async fn get_return(
        &self,
        store_id: &str,
        return_id: &str,
    ) -> StoreResult<waybill_core::Return> {
        routed_read!(self, Some(store_id), "reading a return", |tx| {
            returns::load_return(&tx, store_id, return_id)
        })
    }

    async fn list_returns(
        &self,
        store_id: &str,
        query: crate::ReturnQuery,
    ) -> StoreResult<Vec<waybill_core::Return>> {
        routed_read!(self, Some(store_id), "listing returns", |tx| {
            returns::list_returns(&tx, store_id, &query)
        })
    }

    async fn update_return_status(
        &self,
        store_id: &str,
        return_id: &str,
        update: waybill_core::ReturnUpdate,
    ) -> StoreResult<waybill_core::Return> {
        store_write_tx!(self, store_id, "updating a return", |tx| {
            returns::update_return(&tx, store_id, return_id, &update, time::now())
        })
    }

    async fn apply_return_carrier_report(
        &self,
        store_id: &str,
        tracking_number: &str,
        report: waybill_core::carrier_update::CarrierReport,
    ) -> StoreResult<Option<waybill_core::Return>> {
        store_write_tx!(
            self,
            store_id,
            "recording a carrier report on a return",
            |tx| {
                returns::apply_carrier_report(&tx, store_id, tracking_number, &report, time::now())
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::testing::{Backend, POSTGRES_ENV, TestDatabase};

    use crate::testing::{one_line_order as order, units_of_l as units};

    /// A new database on PostgreSQL. The tests that call this are ignored unless the crate was
    /// built with `WAYBILL_TEST_POSTGRES_URL` set (see build.rs); run without it anyway (the
    /// test binary started by hand), they fail rather than pass having tested nothing.
    async fn postgres_database() -> TestDatabase {
        assert_eq!(
            Backend::from_env(),
            Backend::Postgres,
            "this test needs PostgreSQL: set {POSTGRES_ENV}"
        );
        TestDatabase::new().await.unwrap()
    }

    /// A store with one batch worker, holding one order of `quantity` units.
    async fn one_worker_store(
        external_id: &str,
        quantity: i64,
    ) -> (TestDatabase, Arc<PgStore>, String) {
        let db = postgres_database().await;
        let options = PgOptions {
            group_commit_workers: 1,
            ..PgOptions::default()
        };
        let store = Arc::new(PgStore::open(&db.url, options).await.unwrap());
        let (record, _) = store.create_store("shop").await.unwrap();
        store
            .create_order(&record.id, order(external_id, quantity))
            .await
            .unwrap();
        (db, store, record.id)
    }

    /// Waits until `n` requests wait in the store's group-commit queue.
    async fn wait_queued(store: &PgStore, n: usize) {
        let group = store.group_commit.as_ref().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while group.queued() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{n} requests never queued"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A create-fulfillment request on `external_id`, running in a task of its own.
    fn spawn_create(
        store: &Arc<PgStore>,
        store_id: &str,
        external_id: &str,
        fulfillment: NewFulfillment,
    ) -> tokio::task::JoinHandle<StoreResult<Fulfillment>> {
        let (store, store_id) = (store.clone(), store_id.to_owned());
        let order = OrderRef::new(external_id);
        tokio::spawn(async move {
            store
                .create_fulfillment(&store_id, &order, fulfillment)
                .await
        })
    }

    /// The order an event stores is the order as its write left it, built by PostgreSQL from
    /// the rows (`order_json`): after every kind of write, the last event's snapshot equals a
    /// read of the order, and what the write answered is what the read finds. The order uses
    /// every field a snapshot carries: details, prices and extras, packages with carriers and
    /// links, locations, reasons, an estimated delivery, a delivery time, a cancellation (units
    /// given back) and an `arriving_early` raised by the same write as its delivery (two events:
    /// the first one's snapshot has no `arriving_early` entry yet).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(waybill_postgres),
        ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
    )]
    async fn each_event_holds_the_order_as_its_write_left_it() {
        use waybill_core::{
            Location, NewLineItem, NewOrder, Package, Quantity, ShipmentStatus, StatusOrEvent,
        };

        let db = postgres_database().await;
        let store = PgStore::open(&db.url, PgOptions::default()).await.unwrap();
        let (record, _) = store.create_store("shop").await.unwrap();
        let store_id = record.id;
        let details = serde_json::from_value(serde_json::json!({
            "customer": {"email": "ada@example.com", "first_name": "Ada"},
            "shipping": {"method": "Express", "cost": "4.95",
                         "address": {"city": "Lyon", "country": "FR", "postal_code": "69001"}},
            "total_price": "59.90", "tags": ["vip", "gift"], "currency_code": "EUR",
            "extra": {"channel": "web"}
        }))
        .unwrap();
        let line = |id: &str, quantity: i64, price: Option<&str>| NewLineItem {
            id: id.into(),
            product_id: Some(format!("P-{id}")),
            variant_id: Some(format!("V-{id}")),
            sku: Some(format!("SKU-{id}")),
            title: format!("Item {id}"),
            quantity: Quantity::new("quantity", quantity).unwrap(),
            price: price.map(|p| waybill_core::Money::parse("price", p).unwrap()),
            extra: serde_json::from_value(
                serde_json::json!({"image_url": format!("https://img.example/{id}.png")}),
            )
            .unwrap(),
        };
        let new_order = NewOrder::new(
            "SNAP-1".into(),
            time::from_millis(1_700_000_000_007),
            vec![line("b", 3, Some("19.95")), line("a", 2, None)],
            details,
        )
        .unwrap();
        let created = store.create_order(&store_id, new_order).await.unwrap();
        let order_ref = OrderRef::new("SNAP-1");

        let order_id = created.id.to_string();
        let check =
            |what: &'static str| check_snapshot(&store, &store_id, "SNAP-1", &order_id, what);
        let read = check("creation").await;
        assert_eq!(read, created, "a new order reads as it was answered");

        let mut new = NewFulfillment::new(
            Some("F-1".into()),
            vec![
                ("b".into(), Quantity::new("q", 2).unwrap()),
                ("a".into(), Quantity::new("q", 1).unwrap()),
            ],
            vec![
                Package {
                    carrier: Some("UPS".into()),
                    tracking_number: "1Z999AA10123456784".into(),
                    tracking_url: Some("https://ups.example/1Z999AA10123456784".into()),
                },
                Package {
                    carrier: None,
                    tracking_number: "PARCEL-2".into(),
                    tracking_url: None,
                },
            ],
            ShipmentStatus::PreTransit,
        )
        .unwrap();
        let eta = (time::now() + chrono::Duration::days(10)).date_naive();
        new.estimated_delivery = Some(eta);
        new.initial.location = Some(Location {
            city: Some("Lyon".into()),
            country: Some("FR".into()),
            ..Location::default()
        });
        let f1 = store
            .create_fulfillment(&store_id, &order_ref, new)
            .await
            .unwrap();
        let read = check("a new fulfillment").await;
        assert_eq!(read.fulfillments, [f1]);
        assert_eq!(read.line_items[0].fulfilled, 2);

        let f2 = store
            .create_fulfillment(&store_id, &order_ref, one_unit_of("F-2", "a"))
            .await
            .unwrap();
        check("a second fulfillment").await;

        let mut failure = StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::Failure));
        failure.reason = Some(waybill_core::ExceptionReason::Weather);
        failure.message = Some("Storm".into());
        failure.datetime = Some(time::from_millis(1_700_000_100_123));
        failure.location = Some(Location {
            city: Some("Paris".into()),
            ..Location::default()
        });
        let after = store
            .update_shipment_status(&store_id, &order_ref, "F-1", failure)
            .await
            .unwrap();
        let read = check("a failure with a reason").await;
        assert_eq!(
            read.fulfillments[0], after,
            "the update answers what a read finds"
        );

        let delivered = StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::Delivered));
        let after = store
            .update_shipment_status(&store_id, &order_ref, "F-1", delivered)
            .await
            .unwrap();
        let read = check("a delivery that raises arriving_early").await;
        assert_eq!(read.fulfillments[0], after);
        assert!(after.delivered_at.is_some());
        let statuses: Vec<&str> = after.history.iter().map(|h| h.status.as_str()).collect();
        assert!(
            statuses.ends_with(&["delivered", "arriving_early"]),
            "{statuses:?}"
        );
        // The delivery's own event, before the arriving_early one: its snapshot stops at the
        // delivery entry.
        let (_, data) = event_from_last(&store, &order_id, 1).await;
        let snapshot = data.order.unwrap();
        let history = &snapshot.fulfillments[0].history;
        assert_eq!(history.last().map(|h| h.status.as_str()), Some("delivered"));
        assert_eq!(history.len(), after.history.len() - 1);

        // A carrier's scan older than the delivery is only appended to the history, with no
        // event: the row's kept order is set aside and reads build the order from its rows.
        let scan = waybill_core::HistoryEntry {
            status: "in_transit".into(),
            message: "Older scan".into(),
            datetime: time::from_millis(1_700_000_050_000),
            location: None,
            reason: None,
        };
        let report = waybill_core::carrier_update::CarrierReport {
            estimated_delivery: None,
            details: vec![scan],
        };
        store
            .apply_carrier_report(&store_id, "1Z999AA10123456784", Some("UPS"), report)
            .await
            .unwrap()
            .unwrap();
        let read = store.get_order(&store_id, &order_ref).await.unwrap();
        assert!(
            read.fulfillments[0]
                .history
                .iter()
                .any(|h| h.message == "Older scan"),
            "the appended scan is read"
        );
        assert_eq!(read, built_from_rows(&store, &store_id, &order_id).await);

        let cancelled = store
            .update_shipment_status(&store_id, &order_ref, &f2.id, StatusUpdate::cancel())
            .await
            .unwrap();
        let read = check("a cancellation").await;
        assert_eq!(read.fulfillments[1], cancelled);
        assert_eq!(read.line_items[1].fulfilled, 1, "F-2's units given back");

        // By Waybill's internal id: the slower path, same snapshot rule.
        let by_id = OrderRef::new(created.id.to_string());
        store
            .update_shipment_status(
                &store_id,
                &by_id,
                &f2.id,
                StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::PreTransit)),
            )
            .await
            .unwrap();
        check("an update naming the order by its internal id").await;

        // A change to one fulfillment edits the kept order rather than building it again:
        // what the kept order says beyond that fulfillment and the units is carried over.
        // (Made visible here by a mark put on the kept order by hand.)
        let client = store.client().await.unwrap();
        let mark = |value: &'static str| {
            format!(
                "UPDATE orders SET snapshot = jsonb_set(snapshot, '{{details,extra,mark}}', \
                 '\"{value}\"') WHERE id = $1"
            )
        };
        client.execute(&mark("kept"), &[&order_id]).await.unwrap();
        let packages = vec![Package {
            carrier: Some("DHL".into()),
            tracking_number: "JD014600006281230704".into(),
            tracking_url: None,
        }];
        store
            .update_tracking(&store_id, &order_ref, "F-1", packages.clone())
            .await
            .unwrap();
        let (_, data) = event_from_last(&store, &order_id, 0).await;
        let snapshot = data.order.unwrap();
        assert_eq!(
            snapshot.details.extra.get("mark"),
            Some(&serde_json::json!("kept")),
            "a tracking update edits the kept order"
        );
        assert_eq!(snapshot.fulfillments[0].packages, packages);
        // Taken off again, by a change to the order itself (built from its rows).
        client
            .execute(
                "UPDATE orders SET snapshot = NULL WHERE id = $1",
                &[&order_id],
            )
            .await
            .unwrap();
        store
            .update_tracking(&store_id, &order_ref, "F-1", packages)
            .await
            .unwrap();
        check("a tracking update").await;

        // A write to the order's rows from outside Waybill that moves `updated_at` (as the
        // bench's pgbench script does) sets the kept order aside: the next change builds it.
        // Here it moves F-2 a day ahead and changes the order's details.
        client
            .execute(
                "UPDATE fulfillments SET created_at = created_at + 86400000
                 WHERE store_id = $1 AND id = 'F-2'",
                &[&store_id],
            )
            .await
            .unwrap();
        client
            .execute(
                "UPDATE orders SET updated_at = updated_at + 1,
                                   details = jsonb_set(details, '{extra,channel}', '\"phone\"')
                 WHERE id = $1",
                &[&order_id],
            )
            .await
            .unwrap();
        store
            .update_shipment_status(
                &store_id,
                &order_ref,
                "F-2",
                StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::InTransit)),
            )
            .await
            .unwrap();
        let read = check("a change after a write from outside").await;
        assert_eq!(
            read.details.extra.get("channel"),
            Some(&serde_json::json!("phone"))
        );
        // A fulfillment written by a node whose clock is behind another's sorts before the
        // other's (F-2, now a day ahead): it is not appended, the order is built.
        store
            .create_fulfillment(&store_id, &order_ref, one_unit_of("F-3", "b"))
            .await
            .unwrap();
        let read = check("a fulfillment that sorts before the last").await;
        let ids: Vec<&str> = read.fulfillments.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["F-1", "F-3", "F-2"]);
        let mut replacement = one_unit_of("F-3", "b");
        replacement.packages = vec![Package {
            carrier: Some("USPS".into()),
            tracking_number: "9400111899223197428490".into(),
            tracking_url: None,
        }];
        store
            .upsert_fulfillment(&store_id, &order_ref, replacement)
            .await
            .unwrap();
        let read = check("a fulfillment replaced in the middle").await;
        assert_eq!(
            read.fulfillments[1].packages[0].carrier.as_deref(),
            Some("USPS")
        );
    }

    /// The outbox data of the order's `skip`-th last event, with its type.
    async fn event_from_last(
        store: &PgStore,
        order_id: &str,
        skip: i64,
    ) -> (String, crate::events::EventData) {
        let client = store.client().await.unwrap();
        let row = client
            .query_one(
                "SELECT type, data::text FROM outbox WHERE order_id = $1
                 ORDER BY seq DESC OFFSET $2 LIMIT 1",
                &[&order_id, &skip],
            )
            .await
            .unwrap();
        (row.get(0), serde_json::from_str(row.get(1)).unwrap())
    }

    /// Reads the order and checks that its last event's snapshot is what the read found.
    async fn check_snapshot(
        store: &PgStore,
        store_id: &str,
        external_id: &str,
        order_id: &str,
        what: &str,
    ) -> Order {
        let read = store
            .get_order(store_id, &OrderRef::new(external_id))
            .await
            .unwrap();
        let (kind, data) = event_from_last(store, order_id, 0).await;
        assert_eq!(
            data.order.as_ref(),
            Some(&read),
            "{what}: {kind}'s snapshot"
        );
        assert_eq!(
            read,
            built_from_rows(store, store_id, order_id).await,
            "{what}: kept"
        );
        read
    }

    /// The order built from its rows now, whatever its row keeps.
    async fn built_from_rows(store: &PgStore, store_id: &str, order_id: &str) -> Order {
        let client = store.client().await.unwrap();
        let client: &deadpool_postgres::Client = &client;
        orders::load_orders_by_id(client, store_id, &[order_id.to_owned()])
            .await
            .unwrap()
            .pop()
            .unwrap()
    }

    fn one_unit_of(id: &str, line: &str) -> NewFulfillment {
        NewFulfillment::new(
            Some(id.into()),
            vec![(line.into(), waybill_core::Quantity::new("q", 1).unwrap())],
            vec![],
            waybill_core::ShipmentStatus::PreTransit,
        )
        .unwrap()
    }

    /// Group commit: five requests queue while the one batch worker is busy, then run in one
    /// transaction. The two that repeat a fulfillment id (refused by their last statement,
    /// after the next request's first step went out with it) and the one that over-fulfills
    /// are rolled back to their savepoints alone; the other two commit together, and the
    /// ledger holds exactly their units. The second repeat, right behind the first, must have
    /// opened its savepoint again after the first's rollback undid it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(waybill_postgres),
        ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
    )]
    async fn a_refused_request_does_not_sink_its_group() {
        let (_db, store, store_id) = one_worker_store("G-1", 3).await;
        let group = store.group_commit.as_ref().unwrap();

        // Hold the only worker, inside a transaction of its own, until the four are queued.
        let (release, blocker) = hold_worker(&store, &store_id).await;

        let mut requests = Vec::new();
        let requests_in_order = [
            (Some("F-1"), 1),
            (Some("F-1"), 1),
            (Some("F-1"), 1),
            (None, 1),
            (None, 2),
        ];
        for (i, (id, quantity)) in requests_in_order.into_iter().enumerate() {
            requests.push(spawn_create(&store, &store_id, "G-1", units(id, quantity)));
            // One at a time, so the batch holds them in this order.
            wait_queued(&store, i + 1).await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        let mut results = Vec::new();
        for r in requests {
            results.push(r.await.unwrap());
        }
        assert!(results[0].is_ok(), "{:?}", results[0]);
        for repeat in &results[1..3] {
            assert!(
                matches!(
                    repeat,
                    Err(StoreError::Domain(DomainError::DuplicateFulfillment(_)))
                ),
                "{repeat:?}"
            );
        }
        assert!(results[3].is_ok(), "{:?}", results[3]);
        assert!(
            matches!(
                results[4],
                Err(StoreError::Domain(DomainError::OverFulfillment { .. }))
            ),
            "{:?}",
            results[4]
        );
        assert_eq!(group.stats.groups.load(Ordering::Acquire), 1);
        assert_eq!(group.stats.grouped.load(Ordering::Acquire), 2);

        let stored = store
            .get_order(&store_id, &OrderRef::new("G-1"))
            .await
            .unwrap();
        assert_eq!(stored.line_items[0].fulfilled, 2);
        assert_eq!(stored.fulfillments.len(), 2);
        let client = store.pool.get().await.unwrap();
        let events: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM outbox WHERE type = 'fulfillment.created'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(events, 2, "the refused requests wrote no event");
    }

    /// Many concurrent requests on a few orders through several workers: every acknowledged
    /// unit is in the ledger, nothing more, and no order is over-fulfilled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(waybill_postgres),
        ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
    )]
    async fn concurrent_groups_keep_the_ledger_exact() {
        let db = postgres_database().await;
        let store = Arc::new(PgStore::open(&db.url, PgOptions::default()).await.unwrap());
        let (record, _) = store.create_store("shop").await.unwrap();
        let store_id = record.id;
        for o in 0..4 {
            store
                .create_order(&store_id, order(&format!("C-{o}"), 40))
                .await
                .unwrap();
        }
        let mut requests = Vec::new();
        for i in 0..240 {
            let (store, store_id) = (store.clone(), store_id.clone());
            requests.push(tokio::spawn(async move {
                let order = OrderRef::new(format!("C-{}", i % 4));
                store
                    .create_fulfillment(&store_id, &order, units(None, 1))
                    .await
                    .map(|_| order)
            }));
        }
        let mut acknowledged = std::collections::HashMap::<String, u32>::new();
        for r in requests {
            match r.await.unwrap() {
                Ok(order) => *acknowledged.entry(order.as_str().to_owned()).or_default() += 1,
                Err(StoreError::Domain(DomainError::OverFulfillment { .. })) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        for o in 0..4 {
            let id = format!("C-{o}");
            let stored = store
                .get_order(&store_id, &OrderRef::new(&id))
                .await
                .unwrap();
            assert_eq!(
                stored.line_items[0].fulfilled, 40,
                "{id} is fully fulfilled"
            );
            assert_eq!(
                acknowledged.get(&id).copied(),
                Some(40),
                "{id}: acknowledged units"
            );
            assert_eq!(stored.fulfillments.len(), 40);
        }
        assert!(
            group_stats(&store).0 > 0,
            "some requests shared a transaction"
        );
    }

    /// Occupies a store's batch worker (a store with one worker) with a request that waits,
    /// inside its transaction, until the returned sender fires.
    async fn hold_worker(
        store: &Arc<PgStore>,
        store_id: &str,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<StoreResult<()>>,
    ) {
        let (release, held) = tokio::sync::oneshot::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let gate = tokio::sync::Mutex::new(Some((started, held)));
        let blocker = {
            let store = store.clone();
            let store_id = store_id.to_owned();
            tokio::spawn(async move {
                let group = store.group_commit.as_ref().unwrap();
                group
                    .submit(&store_id, "G-0", gate, |_, gate| {
                        Box::pin(async move {
                            if let Some((started, held)) = gate.lock().await.take() {
                                let _ = started.send(());
                                let _ = held.await;
                            }
                            Ok(())
                        })
                    })
                    .await
            })
        };
        running.await.unwrap();
        (release, blocker)
    }

    /// A request that meets a deadlock inside a group is rolled back to its savepoint, the rest
    /// of the group commits, and the request then runs again alone and commits.
    ///
    /// The deadlock is made on purpose: another transaction holds order Y, the group locks X
    /// and waits for Y, then the other transaction asks for X. The other transaction's
    /// `deadlock_timeout` is long, so PostgreSQL's detector (1 s by default) picks the group.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(waybill_postgres),
        ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
    )]
    async fn a_deadlocked_request_runs_again_alone() {
        let (_db, store, store_id) = one_worker_store("X", 5).await;
        store.create_order(&store_id, order("Y", 5)).await.unwrap();
        let group = store.group_commit.as_ref().unwrap();
        let lock = "SELECT 1 FROM orders WHERE store_id = $1 AND external_id = $2 FOR UPDATE";

        let other = store.pool.get().await.unwrap();
        other
            .batch_execute("SET deadlock_timeout = '60s'; BEGIN")
            .await
            .unwrap();
        other.execute(lock, &[&store_id, &"Y"]).await.unwrap();

        let (release, blocker) = hold_worker(&store, &store_id).await;
        let mut requests = Vec::new();
        for (i, external_id) in ["X", "Y"].into_iter().enumerate() {
            requests.push(spawn_create(&store, &store_id, external_id, units(None, 1)));
            wait_queued(&store, i + 1).await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        // The group has locked X and waits for Y. (The test's connections all carry the
        // test's schema as their application name.)
        let watcher = store.pool.get().await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity
                     WHERE application_name = current_setting('application_name')
                       AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the group never waited for Y"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // Close the cycle. The other transaction is not the victim: its lock on X is granted
        // once the group has committed without the deadlocked request.
        let closing = {
            let store_id = store_id.clone();
            tokio::spawn(async move {
                other.execute(lock, &[&store_id, &"X"]).await?;
                other.batch_execute("COMMIT").await
            })
        };
        closing.await.unwrap().unwrap();
        for request in requests {
            let result = request.await.unwrap();
            assert!(result.is_ok(), "{result:?}");
        }
        assert_eq!(group.stats.again.load(Ordering::Acquire), 1);
        assert_eq!(group.stats.groups.load(Ordering::Acquire), 1);
        assert_eq!(group.stats.grouped.load(Ordering::Acquire), 1);
        for external_id in ["X", "Y"] {
            let stored = store
                .get_order(&store_id, &OrderRef::new(external_id))
                .await
                .unwrap();
            assert_eq!(stored.line_items[0].fulfilled, 1, "order {external_id}");
            assert_eq!(stored.fulfillments.len(), 1, "order {external_id}");
        }
    }

    /// A request that panics inside a group fails alone: the request beside it commits, and
    /// the worker goes on to serve the next one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(waybill_postgres),
        ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
    )]
    async fn a_panicking_request_fails_alone() {
        let (_db, store, store_id) = one_worker_store("P-1", 5).await;
        let (release, blocker) = hold_worker(&store, &store_id).await;

        let panicking = {
            let store = store.clone();
            let store_id = store_id.clone();
            tokio::spawn(async move {
                let group = store.group_commit.as_ref().unwrap();
                group
                    .submit(&store_id, "P-1", (), |tx, ()| {
                        Box::pin(async move {
                            tx.execute("SELECT 1", &[]).await.ok();
                            panic!("a bug in a request");
                        })
                    })
                    .await
            })
        };
        wait_queued(&store, 1).await;
        let fine = spawn_create(&store, &store_id, "P-1", units(None, 1));
        wait_queued(&store, 2).await;
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        let panicked: StoreResult<()> = panicking.await.unwrap();
        assert!(
            matches!(panicked, Err(StoreError::Internal(_))),
            "{panicked:?}"
        );
        fine.await.unwrap().unwrap();
        assert_eq!(
            group_stats(&store),
            (1, 1),
            "one group, one request committed"
        );
        let after = store
            .create_fulfillment(&store_id, &OrderRef::new("P-1"), units(None, 1))
            .await;
        assert!(after.is_ok(), "the worker still runs: {after:?}");
        let stored = store
            .get_order(&store_id, &OrderRef::new("P-1"))
            .await
            .unwrap();
        assert_eq!(stored.line_items[0].fulfilled, 2);
    }

    fn group_stats(store: &PgStore) -> (u64, u64) {
        let stats = &store.group_commit.as_ref().unwrap().stats;
        (
            stats.groups.load(Ordering::Acquire),
            stats.grouped.load(Ordering::Acquire),
        )
    }

    #[test]
    fn recognises_postgres_urls() {
        assert!(is_postgres_url("postgres://u@127.0.0.1:5432/test"));
        assert!(is_postgres_url("postgresql://u@h/db"));
        assert!(!is_postgres_url("sqlite://waybill.db"));
    }

    /// The unit counts kept on an order's row match a recount of its fulfillment lines after
    /// creations, status changes and a cancellation, and the migration's backfill finds the
    /// same counts.
    #[tokio::test]
    #[cfg_attr(
        not(waybill_postgres),
        ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
    )]
    async fn kept_unit_counts_match_a_recount() {
        let db = postgres_database().await;
        let store = PgStore::open(&db.url, PgOptions::default()).await.unwrap();
        let (record, _) = store.create_store("shop").await.unwrap();
        let store_id = record.id;
        store
            .create_order(&store_id, order("K-1", 10))
            .await
            .unwrap();
        let o = OrderRef::new("K-1");
        for (id, quantity) in [("A", 3), ("B", 2), ("C", 4)] {
            store
                .create_fulfillment(&store_id, &o, units(Some(id), quantity))
                .await
                .unwrap();
        }
        for (id, status) in [
            ("A", waybill_core::ShipmentStatus::InTransit),
            ("B", waybill_core::ShipmentStatus::Delivered),
            ("C", waybill_core::ShipmentStatus::Cancelled),
        ] {
            let update = StatusUpdate::new(waybill_core::StatusOrEvent::Status(status));
            store
                .update_shipment_status(&store_id, &o, id, update)
                .await
                .unwrap();
        }
        let client = store.pool.get().await.unwrap();
        let kept = || async {
            let row = client
                .query_one(
                    "SELECT units_in_fulfillment, units_shipped, units_delivered FROM orders
                     WHERE external_id = 'K-1'",
                    &[],
                )
                .await
                .unwrap();
            (
                row.get::<_, i64>(0),
                row.get::<_, i64>(1),
                row.get::<_, i64>(2),
            )
        };
        let order_id: String = client
            .query_one("SELECT id FROM orders WHERE external_id = 'K-1'", &[])
            .await
            .unwrap()
            .get(0);
        let recount = client
            .query_one(orders::counts_sql(), &[&order_id])
            .await
            .unwrap();
        let recounted = (
            recount.get::<_, i64>(1),
            recount.get::<_, i64>(2),
            recount.get::<_, i64>(3),
        );
        assert_eq!(
            recounted,
            (5, 5, 2),
            "A in transit, B delivered, C cancelled"
        );
        assert_eq!(kept().await, recounted);

        // The migration's backfill, on counts wiped.
        client
            .batch_execute(
                "UPDATE orders SET units_in_fulfillment = 0, units_shipped = 0, units_delivered = 0",
            )
            .await
            .unwrap();
        let migration = include_str!("migrations/0006_unit_counts.sql");
        let backfill = &migration[migration.find("UPDATE orders").unwrap()..];
        client.batch_execute(backfill).await.unwrap();
        assert_eq!(kept().await, recounted);
    }
}
