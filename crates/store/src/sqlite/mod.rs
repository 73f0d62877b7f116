//! The SQLite backend: one file in WAL mode, one writer thread with group commit, a small pool
//! of read-only connections.

mod automations;
mod backup;
mod exceptions;
mod idempotency;
mod migrations;
mod orders;
mod read_pool;
mod returns;
mod sessions;
mod webhooks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use waybill_core::{
    Fulfillment, NewFulfillment, NewOrder, Order, OrderRef, StatusUpdate, Timestamp, time,
};

use crate::auth_cache::AuthCache;
use crate::secrets::{self, NewApiKey};
use crate::webhooks::{
    AttemptQuery, AttemptRecord, ClaimedDelivery, DeliveryQuery, DeliveryRecord, DeliveryResult,
    NewWebhook, WebhookFlavor, WebhookRecord, WebhookStats, WebhookUpdate,
};
use crate::{
    ApiKeyRecord, OrderPage, OrderQuery, OrderUpdate, Store, StoreError, StoreRecord, StoreResult,
};
use read_pool::ReadPool;
use writer::Writer;

pub use backup::{BackupReport, backup};

/// How durable a commit is. `Full` (the default) survives power loss; `Normal` may lose the
/// last transactions on power loss (never on a process crash) and is faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    #[default]
    Full,
    Normal,
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another process before giving up.
    pub busy_timeout: Duration,
    /// Read-only connections kept open.
    pub read_connections: usize,
    /// Most write requests committed together in one transaction.
    pub max_batch: usize,
    /// How long a live API key is remembered without asking the database (zero: always ask).
    pub auth_cache_ttl: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            max_batch: 256,
            auth_cache_ttl: crate::DEFAULT_AUTH_CACHE_TTL,
        }
    }
}

/// The file path a `sqlite:` URL names, or `None` for another scheme.
pub fn path_from_url(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    Some(PathBuf::from(rest))
}

pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReadPool>,
    auth_cache: AuthCache,
}

/// Turns a SQLite error into a store error: lock contention is `Unavailable` (retryable),
/// anything else `Internal`, with `context` saying what was being done.
pub(crate) fn map_err(context: &str, err: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!("{context}: the database is locked ({err})"))
        }
        _ => StoreError::internal(context, err),
    }
}

/// Expired idempotency keys deleted per writer job (see [`idempotency::purge`]).
const PURGE_BATCH: u32 = 1000;

/// Runs one statement without parameters from the connection's statement cache: transaction
/// control runs several times per request, and `execute_batch` would compile it every time.
pub(crate) fn run_cached(conn: &Connection, sql: &str, context: &str) -> StoreResult<()> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
        .map_err(|e| map_err(context, e))
}

fn configure(conn: &Connection, options: &SqliteOptions, writer: bool) -> StoreResult<()> {
    conn.busy_timeout(options.busy_timeout)
        .map_err(|e| map_err("setting busy_timeout", e))?;
    let synchronous = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous}; PRAGMA cache_size = -16000; PRAGMA temp_store = MEMORY;"
    ))
    .map_err(|e| map_err("setting connection pragmas", e))?;
    if !writer {
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(|e| map_err("making a reader read-only", e))?;
    }
    // Query planner stability: without it, SQLite marks any statement whose plan *might*
    // depend on a bound value (here: every query on `fulfillments`, because of its partial
    // index) to be compiled again on every run, which took a third of the read path's CPU.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(|e| map_err("enabling query planner stability", e))?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

/// Switches the database to WAL and returns the journal mode it is in. Two processes opening a
/// new file at once can each hold the lock the other's switch needs; SQLite then answers
/// `SQLITE_BUSY` at once, without waiting in its busy handler (which could deadlock), so the
/// switch is tried again here until `timeout` has passed.
fn switch_to_wal(conn: &Connection, timeout: Duration) -> StoreResult<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.map_err(|e| map_err("switching to WAL", e)),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub async fn open(path: &Path, options: SqliteOptions) -> StoreResult<SqliteStore> {
        let path = path.to_path_buf();
        let opts = options.clone();
        let open_path = path.clone();
        let writer_conn = tokio::task::spawn_blocking(move || -> StoreResult<Connection> {
            if let Some(parent) = open_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::internal(&format!("creating {}", parent.display()), e)
                })?;
            }
            let mut conn = Connection::open(&open_path)
                .map_err(|e| map_err(&format!("opening {}", open_path.display()), e))?;
            conn.busy_timeout(opts.busy_timeout)
                .map_err(|e| map_err("setting busy_timeout", e))?;
            let mode = switch_to_wal(&conn, opts.busy_timeout)?;
            if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
                return Err(StoreError::Internal(format!(
                    "could not switch {} to WAL mode (got {mode})",
                    open_path.display()
                )));
            }
            configure(&conn, &opts, true)?;
            let applied = migrations::migrate(&mut conn)?;
            if applied > 0 {
                tracing::info!(applied, path = %open_path.display(), "applied SQLite migrations");
            }
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::internal("opening the database", e))??;

        let writer = Writer::spawn(writer_conn, options.max_batch)
            .map_err(|e| StoreError::internal("starting the SQLite writer thread", e))?;
        let reader_path = path.clone();
        let reader_opts = options.clone();
        let readers = ReadPool::new(
            options.read_connections,
            Box::new(move || {
                let conn = Connection::open_with_flags(
                    &reader_path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| map_err("opening a read connection", e))?;
                configure(&conn, &reader_opts, false)?;
                Ok(conn)
            }),
        );
        Ok(SqliteStore {
            path,
            writer,
            readers,
            auth_cache: AuthCache::new(options.auth_cache_ttl),
        })
    }

    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.readers.read(work).await
    }

    /// A read of a few indexed lookups, run on the calling thread (see [`ReadPool::read_short`]).
    async fn read_short<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.readers.read_short(work).await
    }

    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.write(work).await
    }
}

fn insert_api_key(conn: &Connection, store_id: &str) -> StoreResult<NewApiKey> {
    let key = NewApiKey {
        id: secrets::generate_key_id(),
        store_id: store_id.to_owned(),
        secret: secrets::generate_secret(),
    };
    conn.prepare_cached(
        "INSERT INTO api_keys (id, store_id, secret_hash, secret_prefix, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            key.id,
            key.store_id,
            secrets::hash_secret(&key.secret),
            secrets::display_prefix(&key.secret),
            time::to_millis(time::now()),
        ])
    })
    .map_err(|e| map_err("inserting an API key", e))?;
    Ok(key)
}

fn store_exists(conn: &Connection, store_id: &str) -> StoreResult<bool> {
    conn.prepare_cached("SELECT 1 FROM stores WHERE id = ?1")
        .and_then(|mut stmt| stmt.exists([store_id]))
        .map_err(|e| map_err("looking up a store", e))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_session(&self, session: crate::NewSession) -> StoreResult<()> {
        self.write(move |conn| sessions::create(conn, &session))
            .await
    }

    async fn get_session(&self, token_hash: &str) -> StoreResult<Option<crate::SessionRecord>> {
        let token_hash = token_hash.to_owned();
        self.read_short(move |conn| sessions::get(conn, &token_hash))
            .await
    }

    async fn touch_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(move |conn| sessions::touch(conn, &token_hash, now))
            .await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(move |conn| sessions::delete(conn, &token_hash))
            .await
    }

    async fn signin_blocked_until(
        &self,
        client: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        let client = client.to_owned();
        self.read_short(move |conn| sessions::blocked_until(conn, &client, now))
            .await
    }

    async fn record_signin_failure(
        &self,
        client: &str,
        now: Timestamp,
        window_start: Timestamp,
    ) -> StoreResult<u64> {
        let client = client.to_owned();
        self.write(move |conn| sessions::record_failure(conn, &client, now, window_start))
            .await
    }

    async fn block_signin(&self, client: &str, until: Timestamp) -> StoreResult<()> {
        let client = client.to_owned();
        self.write(move |conn| sessions::block(conn, &client, until))
            .await
    }

    async fn clear_signin_failures(&self, client: &str) -> StoreResult<()> {
        let client = client.to_owned();
        self.write(move |conn| sessions::clear(conn, &client)).await
    }

    async fn count_rate_window(&self, key: &str, window_start: Timestamp) -> StoreResult<u64> {
        let key = key.to_owned();
        self.write(move |conn| sessions::count_rate(conn, &key, window_start))
            .await
    }

    async fn purge(&self, purge: crate::Purge, limit: u32) -> StoreResult<u64> {
        self.write(move |conn| sessions::purge(conn, purge, limit))
            .await
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read_short(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|e| map_err("pinging the database", e))
        })
        .await
    }

    async fn create_store(&self, name: &str) -> StoreResult<(StoreRecord, NewApiKey)> {
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(waybill_core::DomainError::invalid("a store needs a name").into());
        }
        self.write(move |conn| {
            let record = StoreRecord {
                id: secrets::generate_store_id(),
                name,
                created_at: time::now(),
            };
            conn.execute(
                "INSERT INTO stores (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![record.id, record.name, time::to_millis(record.created_at)],
            )
            .map_err(|e| map_err("inserting a store", e))?;
            let key = insert_api_key(conn, &record.id)?;
            Ok((record, key))
        })
        .await
    }

    async fn list_stores(&self) -> StoreResult<Vec<StoreRecord>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT id, name, created_at FROM stores ORDER BY created_at, id")
                .map_err(|e| map_err("listing stores", e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(StoreRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at: time::from_millis(r.get(2)?),
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| map_err("listing stores", e))?;
            Ok(rows)
        })
        .await
    }

    async fn store_exists(&self, store_id: &str) -> StoreResult<bool> {
        let store_id = store_id.to_owned();
        self.read_short(move |conn| store_exists(conn, &store_id))
            .await
    }

    async fn create_api_key(&self, store_id: &str) -> StoreResult<NewApiKey> {
        let store_id = store_id.to_owned();
        self.write(move |conn| {
            if !store_exists(conn, &store_id)? {
                return Err(waybill_core::DomainError::StoreNotFound(store_id).into());
            }
            insert_api_key(conn, &store_id)
        })
        .await
    }

    async fn list_api_keys(&self, store_id: &str) -> StoreResult<Vec<ApiKeyRecord>> {
        let store_id = store_id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT id, store_id, secret_prefix, created_at, revoked_at FROM api_keys
                     WHERE store_id = ?1 ORDER BY created_at, id",
                )
                .map_err(|e| map_err("listing API keys", e))?;
            stmt.query_map([&store_id], |r| {
                Ok(ApiKeyRecord {
                    id: r.get(0)?,
                    store_id: r.get(1)?,
                    prefix: r.get(2)?,
                    created_at: time::from_millis(r.get(3)?),
                    revoked_at: r.get::<_, Option<i64>>(4)?.map(time::from_millis),
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| map_err("listing API keys", e))
        })
        .await
    }

    async fn revoke_api_key(&self, key_id: &str) -> StoreResult<bool> {
        let key_id = key_id.to_owned();
        let revoked = self
            .write(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                        params![key_id, time::to_millis(time::now())],
                    )
                    .map_err(|e| map_err("revoking an API key", e))?;
                Ok(changed == 1)
            })
            .await;
        // After the commit, so no lookup can read the key as live and be remembered after.
        self.auth_cache.forget_all();
        revoked
    }

    async fn authenticate(&self, secret: &str) -> StoreResult<Option<String>> {
        let hash = secrets::hash_secret(secret);
        let key = hash.clone();
        let lookup = self.read_short(move |conn| {
            conn.prepare_cached(
                "SELECT store_id FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL",
            )
            .and_then(|mut stmt| stmt.query_row([&key], |r| r.get(0)).optional())
            .map_err(|e| map_err("authenticating", e))
        });
        self.auth_cache.lookup(&hash, lookup).await
    }

    async fn create_order(&self, store_id: &str, order: NewOrder) -> StoreResult<Order> {
        let store_id = store_id.to_owned();
        self.write(move |conn| orders::insert_order(conn, &store_id, order, time::now()))
            .await
    }

    async fn get_order(&self, store_id: &str, order: &OrderRef) -> StoreResult<Order> {
        let (store_id, order) = (store_id.to_owned(), order.clone());
        self.read_short(move |conn| orders::load_order(conn, &store_id, &order))
            .await
    }

    async fn delete_order(&self, store_id: &str, order: &OrderRef) -> StoreResult<Order> {
        let (store_id, order) = (store_id.to_owned(), order.clone());
        self.write(move |conn| orders::delete_order(conn, &store_id, &order, time::now()))
            .await
    }

    async fn create_fulfillment(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment: NewFulfillment,
    ) -> StoreResult<Fulfillment> {
        let (store_id, order) = (store_id.to_owned(), order.clone());
        self.write(move |conn| {
            orders::insert_fulfillment(conn, &store_id, &order, fulfillment, time::now())
        })
        .await
    }

    async fn upsert_fulfillment(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment: NewFulfillment,
    ) -> StoreResult<(Fulfillment, bool)> {
        let (store_id, order) = (store_id.to_owned(), order.clone());
        self.write(move |conn| {
            orders::upsert_fulfillment(conn, &store_id, &order, fulfillment, time::now())
        })
        .await
    }

    async fn update_order(
        &self,
        store_id: &str,
        order: &OrderRef,
        update: OrderUpdate,
    ) -> StoreResult<Order> {
        let (store_id, order) = (store_id.to_owned(), order.clone());
        self.write(move |conn| orders::update_order(conn, &store_id, &order, update, time::now()))
            .await
    }

    async fn list_orders(&self, store_id: &str, query: OrderQuery) -> StoreResult<OrderPage> {
        let store_id = store_id.to_owned();
        self.read(move |conn| orders::list_orders(conn, &store_id, &query))
            .await
    }

    async fn update_shipment_status(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment_id: &str,
        update: StatusUpdate,
    ) -> StoreResult<Fulfillment> {
        let (store_id, order, fulfillment_id) = (
            store_id.to_owned(),
            order.clone(),
            fulfillment_id.to_owned(),
        );
        self.write(move |conn| {
            orders::apply_status_update(
                conn,
                &store_id,
                &order,
                &fulfillment_id,
                update,
                time::now(),
            )
        })
        .await
    }

    async fn update_tracking(
        &self,
        store_id: &str,
        order: &OrderRef,
        fulfillment_id: &str,
        packages: Vec<waybill_core::Package>,
    ) -> StoreResult<Fulfillment> {
        let (store_id, order, fulfillment_id) = (
            store_id.to_owned(),
            order.clone(),
            fulfillment_id.to_owned(),
        );
        self.write(move |conn| {
            orders::update_tracking(
                conn,
                &store_id,
                &order,
                &fulfillment_id,
                &packages,
                time::now(),
            )
        })
        .await
    }

    async fn apply_carrier_report(
        &self,
        store_id: &str,
        tracking_number: &str,
        carrier: Option<&str>,
        report: waybill_core::carrier_update::CarrierReport,
    ) -> StoreResult<Option<Fulfillment>> {
        let (store_id, tracking_number, carrier) = (
            store_id.to_owned(),
            tracking_number.to_owned(),
            carrier.map(str::to_owned),
        );
        self.write(move |conn| {
            orders::apply_carrier_report(
                conn,
                &store_id,
                &tracking_number,
                carrier.as_deref(),
                &report,
                time::now(),
            )
        })
        .await
    }

    async fn raise_due_events(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<crate::RaisedEvent>> {
        self.write(move |conn| orders::raise_due_events(conn, now, limit))
            .await
    }

    async fn list_exceptions(
        &self,
        store_id: &str,
        query: crate::ExceptionQuery,
    ) -> StoreResult<Vec<crate::ExceptionRow>> {
        let store_id = store_id.to_owned();
        self.read(move |conn| exceptions::list_exceptions(conn, &store_id, &query))
            .await
    }

    async fn count_exceptions(
        &self,
        store_id: &str,
        query: crate::ExceptionQuery,
    ) -> StoreResult<Vec<(crate::ExceptionKind, u64)>> {
        let store_id = store_id.to_owned();
        self.read(move |conn| exceptions::count_exceptions(conn, &store_id, &query))
            .await
    }

    async fn store_settings(&self, store_id: &str) -> StoreResult<crate::StoreSettings> {
        let store_id = store_id.to_owned();
        self.read_short(move |conn| automations::settings(conn, &store_id))
            .await
    }

    async fn update_store_settings(
        &self,
        store_id: &str,
        update: crate::SettingsUpdate,
    ) -> StoreResult<crate::StoreSettings> {
        let store_id = store_id.to_owned();
        self.write(move |conn| automations::update_settings(conn, &store_id, update, time::now()))
            .await
    }

    async fn create_automation(
        &self,
        store_id: &str,
        new: crate::NewAutomation,
    ) -> StoreResult<crate::AutomationRecord> {
        let store_id = store_id.to_owned();
        self.write(move |conn| automations::create(conn, &store_id, new, time::now()))
            .await
    }

    async fn list_automations(&self, store_id: &str) -> StoreResult<Vec<crate::AutomationRecord>> {
        let store_id = store_id.to_owned();
        self.read(move |conn| automations::list(conn, &store_id))
            .await
    }

    async fn get_automation(
        &self,
        store_id: &str,
        automation_id: &str,
    ) -> StoreResult<Option<crate::AutomationRecord>> {
        let (store_id, id) = (store_id.to_owned(), automation_id.to_owned());
        self.read_short(move |conn| automations::get(conn, &store_id, &id))
            .await
    }

    async fn update_automation(
        &self,
        store_id: &str,
        automation_id: &str,
        new: crate::NewAutomation,
    ) -> StoreResult<Option<crate::AutomationRecord>> {
        let (store_id, id) = (store_id.to_owned(), automation_id.to_owned());
        self.write(move |conn| automations::update(conn, &store_id, &id, new, time::now()))
            .await
    }

    async fn delete_automation(&self, store_id: &str, automation_id: &str) -> StoreResult<bool> {
        let (store_id, id) = (store_id.to_owned(), automation_id.to_owned());
        self.write(move |conn| automations::delete(conn, &store_id, &id))
            .await
    }

    async fn list_automation_runs(
        &self,
        store_id: &str,
        automation_id: &str,
        limit: u32,
    ) -> StoreResult<Option<Vec<crate::AutomationRun>>> {
        let (store_id, id) = (store_id.to_owned(), automation_id.to_owned());
        self.read(move |conn| automations::list_runs(conn, &store_id, &id, limit))
            .await
    }

    async fn claim_automation_runs(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<crate::ClaimedRun>> {
        self.write(move |conn| automations::claim(conn, now, limit, lease))
            .await
    }

    async fn finish_automation_run(
        &self,
        run_id: i64,
        claim: i64,
        outcome: crate::RunOutcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write(move |conn| automations::finish(conn, run_id, claim, outcome, now))
            .await
    }

    async fn idempotency_begin(
        &self,
        request: crate::IdempotencyRequest,
        now: Timestamp,
    ) -> StoreResult<crate::IdempotencyBegin> {
        self.write(move |conn| idempotency::begin(conn, &request, now))
            .await
    }

    async fn idempotency_renew(
        &self,
        hold: &crate::IdempotencyHold,
        lease: Duration,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let hold = hold.clone();
        self.write(move |conn| idempotency::renew(conn, &hold, lease, now))
            .await
    }

    async fn idempotency_complete(
        &self,
        hold: &crate::IdempotencyHold,
        response: crate::StoredResponse,
    ) -> StoreResult<bool> {
        let hold = hold.clone();
        self.write(move |conn| idempotency::complete(conn, &hold, &response))
            .await
    }

    async fn idempotency_release(&self, hold: &crate::IdempotencyHold) -> StoreResult<bool> {
        let hold = hold.clone();
        self.write(move |conn| idempotency::release(conn, &hold))
            .await
    }

    async fn purge_idempotency_keys(&self, now: Timestamp) -> StoreResult<u64> {
        let mut purged = 0;
        loop {
            let n = self
                .write(move |conn| idempotency::purge(conn, now, PURGE_BATCH))
                .await?;
            purged += n;
            if n < u64::from(PURGE_BATCH) {
                return Ok(purged);
            }
        }
    }

    async fn rotate_webhook_secret(
        &self,
        store_id: &str,
        webhook_id: &str,
        new_secret: &str,
        overlap: Duration,
    ) -> StoreResult<Option<WebhookRecord>> {
        let (store_id, webhook_id, new_secret) = (
            store_id.to_owned(),
            webhook_id.to_owned(),
            new_secret.to_owned(),
        );
        self.write(move |conn| {
            idempotency::rotate_secret(
                conn,
                &store_id,
                &webhook_id,
                &new_secret,
                overlap,
                time::now(),
            )
        })
        .await
    }

    async fn create_webhook(
        &self,
        store_id: &str,
        new: NewWebhook,
    ) -> StoreResult<(WebhookRecord, bool)> {
        let store_id = store_id.to_owned();
        self.write(move |conn| webhooks::create_webhook(conn, &store_id, new, time::now()))
            .await
    }

    async fn list_webhooks(
        &self,
        store_id: &str,
        flavor: WebhookFlavor,
    ) -> StoreResult<Vec<WebhookRecord>> {
        let store_id = store_id.to_owned();
        self.read(move |conn| webhooks::list_webhooks(conn, &store_id, flavor))
            .await
    }

    async fn get_webhook(
        &self,
        store_id: &str,
        webhook_id: &str,
    ) -> StoreResult<Option<WebhookRecord>> {
        let (store_id, webhook_id) = (store_id.to_owned(), webhook_id.to_owned());
        self.read_short(move |conn| webhooks::load_webhook(conn, &store_id, &webhook_id))
            .await
    }

    async fn update_webhook(
        &self,
        store_id: &str,
        webhook_id: &str,
        update: WebhookUpdate,
    ) -> StoreResult<Option<WebhookRecord>> {
        let (store_id, webhook_id) = (store_id.to_owned(), webhook_id.to_owned());
        self.write(move |conn| {
            webhooks::update_webhook(conn, &store_id, &webhook_id, update, time::now())
        })
        .await
    }

    async fn delete_webhook(&self, store_id: &str, webhook_id: &str) -> StoreResult<bool> {
        let (store_id, webhook_id) = (store_id.to_owned(), webhook_id.to_owned());
        self.write(move |conn| webhooks::delete_webhook(conn, &store_id, &webhook_id))
            .await
    }

    async fn store_webhook_secret(&self, store_id: &str, candidate: &str) -> StoreResult<String> {
        let (store_id, candidate) = (store_id.to_owned(), candidate.to_owned());
        self.write(move |conn| webhooks::store_secret(conn, &store_id, &candidate, time::now()))
            .await
    }

    async fn replay_webhook(
        &self,
        store_id: &str,
        webhook_id: &str,
        since: Timestamp,
    ) -> StoreResult<Option<u64>> {
        let (store_id, webhook_id) = (store_id.to_owned(), webhook_id.to_owned());
        self.write(move |conn| webhooks::replay(conn, &store_id, &webhook_id, since, time::now()))
            .await
    }

    async fn redeliver_webhook_event(
        &self,
        store_id: &str,
        webhook_id: &str,
        event_id: &str,
    ) -> StoreResult<bool> {
        let (store_id, webhook_id, event_id) = (
            store_id.to_owned(),
            webhook_id.to_owned(),
            event_id.to_owned(),
        );
        self.write(move |conn| {
            webhooks::redeliver(conn, &store_id, &webhook_id, &event_id, time::now())
        })
        .await
    }

    async fn list_webhook_attempts(
        &self,
        store_id: &str,
        query: AttemptQuery,
    ) -> StoreResult<Vec<AttemptRecord>> {
        let store_id = store_id.to_owned();
        self.read(move |conn| webhooks::list_attempts(conn, &store_id, &query))
            .await
    }

    async fn list_webhook_deliveries(
        &self,
        store_id: &str,
        query: DeliveryQuery,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let store_id = store_id.to_owned();
        self.read(move |conn| webhooks::list_deliveries(conn, &store_id, &query))
            .await
    }

    async fn count_webhook_deliveries(
        &self,
        store_id: &str,
        query: DeliveryQuery,
    ) -> StoreResult<u64> {
        let store_id = store_id.to_owned();
        self.read(move |conn| webhooks::count_deliveries(conn, &store_id, &query))
            .await
    }

    async fn webhook_stats(
        &self,
        store_id: &str,
        webhook_id: &str,
    ) -> StoreResult<Option<WebhookStats>> {
        let (store_id, webhook_id) = (store_id.to_owned(), webhook_id.to_owned());
        self.read(move |conn| webhooks::stats(conn, &store_id, &webhook_id))
            .await
    }

    async fn fan_out_webhook_events(
        &self,
        cursor: &str,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let cursor = cursor.to_owned();
        self.write(move |conn| webhooks::fan_out(conn, &cursor, limit, now))
            .await
    }

    async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        self.write(move |conn| webhooks::claim(conn, now, limit, lease_ms))
            .await
    }

    async fn finish_webhook_delivery(
        &self,
        result: DeliveryResult,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write(move |conn| webhooks::finish(conn, result, now))
            .await
    }

    async fn last_order_payload(&self, order_id: &str) -> StoreResult<Option<String>> {
        let order_id = order_id.to_owned();
        self.read(move |conn| webhooks::last_order_payload(conn, &order_id))
            .await
    }

    async fn webhook_backlog(&self, cursor: &str) -> StoreResult<crate::WebhookBacklog> {
        let cursor = cursor.to_owned();
        self.read(move |conn| webhooks::backlog(conn, &cursor))
            .await
    }

    async fn create_return(
        &self,
        store_id: &str,
        order: &OrderRef,
        new: waybill_core::NewReturn,
    ) -> StoreResult<waybill_core::Return> {
        let (store_id, order) = (store_id.to_owned(), order.clone());
        self.write(move |conn| returns::create_return(conn, &store_id, &order, new, time::now()))
            .await
    }

    async fn get_return(
        &self,
        store_id: &str,
        return_id: &str,
    ) -> StoreResult<waybill_core::Return> {
        let (store_id, return_id) = (store_id.to_owned(), return_id.to_owned());
        self.read_short(move |conn| returns::load_return(conn, &store_id, &return_id))
            .await
    }

    async fn list_returns(
        &self,
        store_id: &str,
        query: crate::ReturnQuery,
    ) -> StoreResult<Vec<waybill_core::Return>> {
        let store_id = store_id.to_owned();
        self.read(move |conn| returns::list_returns(conn, &store_id, &query))
            .await
    }

    async fn update_return_status(
        &self,
        store_id: &str,
        return_id: &str,
        update: waybill_core::ReturnUpdate,
    ) -> StoreResult<waybill_core::Return> {
        let (store_id, return_id) = (store_id.to_owned(), return_id.to_owned());
        self.write(move |conn| {
            returns::update_return(conn, &store_id, &return_id, update, time::now())
        })
        .await
    }

    async fn apply_return_carrier_report(
        &self,
        store_id: &str,
        tracking_number: &str,
        report: waybill_core::carrier_update::CarrierReport,
    ) -> StoreResult<Option<waybill_core::Return>> {
        let (store_id, tracking_number) = (store_id.to_owned(), tracking_number.to_owned());
        self.write(move |conn| {
            returns::apply_carrier_report(conn, &store_id, &tracking_number, &report, time::now())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waybill_core::{DomainError, ShipmentStatus};

    fn order(external_id: &str, quantity: i64) -> NewOrder {
        crate::testing::one_line_order(external_id, quantity)
    }

    fn one_unit() -> NewFulfillment {
        crate::testing::units_of_l(None, 1)
    }

    /// A cached statement on `fulfillments` runs again without being compiled again: the
    /// table's partial index made SQLite recompile every such query on each run until the
    /// connections asked for query planner stability.
    #[tokio::test]
    async fn cached_statements_are_not_compiled_again_on_each_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let store = SqliteStore::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        let (record, _) = store.create_store("shop").await.unwrap();
        for n in 0..3 {
            let external = format!("Q-{n}");
            store
                .create_order(&record.id, order(&external, 5))
                .await
                .unwrap();
            store
                .create_fulfillment(&record.id, &OrderRef::new(external), one_unit())
                .await
                .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        configure(&conn, &SqliteOptions::default(), false).unwrap();
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM orders")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let sql = "SELECT id, status FROM fulfillments WHERE order_id = ?1 ORDER BY created_at";
        for id in &ids {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let found = stmt.query_map([id], |_| Ok(())).unwrap().count();
            assert_eq!(found, 1);
        }
        let stmt = conn.prepare_cached(sql).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    /// The migration's backfill of the unit counts kept on orders finds what a recount finds
    /// (and what the writes kept): A in transit, B delivered, C cancelled.
    #[tokio::test]
    async fn the_unit_count_backfill_matches_a_recount() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = SqliteStore::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        let (record, _) = store.create_store("shop").await.unwrap();
        let o = OrderRef::new("K-1");
        store
            .create_order(&record.id, order("K-1", 10))
            .await
            .unwrap();
        for (id, quantity, status) in [
            ("A", 3, ShipmentStatus::InTransit),
            ("B", 2, ShipmentStatus::Delivered),
            ("C", 4, ShipmentStatus::Cancelled),
        ] {
            store
                .create_fulfillment(
                    &record.id,
                    &o,
                    crate::testing::units_of_l(Some(id), quantity),
                )
                .await
                .unwrap();
            let update =
                waybill_core::StatusUpdate::new(waybill_core::StatusOrEvent::Status(status));
            store
                .update_shipment_status(&record.id, &o, id, update)
                .await
                .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let kept = |conn: &Connection| -> (i64, i64, i64) {
            conn.query_row(
                "SELECT units_in_fulfillment, units_shipped, units_delivered FROM orders",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
        };
        let order_id: String = conn
            .query_row("SELECT id FROM orders", [], |r| r.get(0))
            .unwrap();
        let recounted = orders::recount(&conn, &order_id).unwrap();
        assert_eq!(
            (
                recounted.in_fulfillment,
                recounted.shipped,
                recounted.delivered
            ),
            (5, 5, 2)
        );
        assert_eq!(kept(&conn), (5, 5, 2));
        conn.execute_batch(
            "UPDATE orders SET units_in_fulfillment = 0, units_shipped = 0, units_delivered = 0",
        )
        .unwrap();
        let migration = include_str!("migrations/0007_unit_counts.sql");
        let backfill = &migration[migration.find("UPDATE orders").unwrap()..];
        conn.execute_batch(backfill).unwrap();
        assert_eq!(kept(&conn), (5, 5, 2));
    }

    /// Expired idempotency keys go in writer jobs of at most `PURGE_BATCH`, so other writes
    /// run between them; every expired key goes and no live one does.
    #[tokio::test]
    async fn expired_idempotency_keys_are_purged_in_bounded_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db"), SqliteOptions::default())
            .await
            .unwrap();
        let (record, _) = store.create_store("shop").await.unwrap();
        let store_id = record.id;
        let expired = 2 * PURGE_BATCH + 500;
        store
            .write(move |conn| {
                let mut insert = conn
                    .prepare(
                        "INSERT INTO idempotency_keys
                             (store_id, key, fingerprint, state, created_at, expires_at)
                         VALUES (?1, ?2, 'f', 'done', 0, ?3)",
                    )
                    .map_err(|e| map_err("preparing", e))?;
                for n in 0..=expired {
                    // Key 0 expires in the future; the others have expired.
                    let expires = if n == 0 { i64::MAX } else { 1 };
                    insert
                        .execute(params![store_id, format!("k-{n}"), expires])
                        .map_err(|e| map_err("inserting a key", e))?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let commits_before = store.writer.commits();
        let purged = store.purge_idempotency_keys(time::now()).await.unwrap();
        assert_eq!(purged, u64::from(expired));
        assert_eq!(
            store.writer.commits() - commits_before,
            3,
            "two full jobs and the rest"
        );
        let left: i64 = store
            .read(|conn| {
                conn.query_row("SELECT COUNT(*) FROM idempotency_keys", [], |r| r.get(0))
                    .map_err(|e| map_err("counting keys", e))
            })
            .await
            .unwrap();
        assert_eq!(left, 1, "the live key stays");
    }

    /// The scheduler's scan reads index ranges, never every in-transit fulfillment: it runs
    /// inside the writer, which every write waits behind.
    #[tokio::test]
    async fn the_due_events_scan_reads_index_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        drop(
            SqliteStore::open(&path, SqliteOptions::default())
                .await
                .unwrap(),
        );
        let conn = Connection::open(&path).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", orders::DUE_EVENTS))
            .unwrap()
            .query_map(params![0, "2026-01-01", 100], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("SEARCH f USING INDEX fulfillments_in_transit (last_tracking_at<?)"),
            "{plan}"
        );
        assert!(
            plan.contains("SEARCH f USING INDEX fulfillments_eta"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN f"), "{plan}");
    }

    /// Group commit: four requests wait while the writer is busy, then run as one batch in one
    /// transaction. The one that over-fulfills is refused and leaves no trace; the other three
    /// commit together.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_request_does_not_sink_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("w.db"), SqliteOptions::default())
                .await
                .unwrap(),
        );
        let (record, _) = store.create_store("shop").await.unwrap();
        let store_id = record.id;
        store
            .create_order(&store_id, order("G-1", 3))
            .await
            .unwrap();

        // Hold the writer (once it is running the blocker, so the blocker's batch is its
        // own) until the four requests are queued behind it.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let writer = store.writer.clone();
        let blocker = tokio::spawn(async move {
            writer
                .write(move |_| {
                    let _ = started.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        running.await.unwrap();
        let mut requests = Vec::new();
        for _ in 0..4 {
            let (store, store_id) = (store.clone(), store_id.clone());
            requests.push(tokio::spawn(async move {
                store
                    .create_fulfillment(&store_id, &OrderRef::new("G-1"), one_unit())
                    .await
            }));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.writer.queued() < 4 {
            assert!(
                std::time::Instant::now() < deadline,
                "the requests never queued"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let commits_before = store.writer.commits();
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        let mut ok = 0;
        let mut refused = 0;
        for r in requests {
            match r.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Domain(DomainError::OverFulfillment { .. })) => refused += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!((ok, refused), (3, 1));
        assert_eq!(
            store.writer.commits() - commits_before,
            2,
            "the blocker's batch, then all four requests in one transaction"
        );
        let stored = store
            .get_order(&store_id, &OrderRef::new("G-1"))
            .await
            .unwrap();
        assert_eq!(stored.line_items[0].fulfilled, 3);
        assert_eq!(stored.fulfillments.len(), 3);
        let events: i64 = store
            .read(|conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM outbox WHERE type = 'fulfillment.created'",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| map_err("counting events", e))
            })
            .await
            .unwrap();
        assert_eq!(events, 3, "the refused request wrote no event");
    }

    #[test]
    fn sqlite_urls() {
        assert_eq!(
            path_from_url("sqlite://waybill.db"),
            Some(PathBuf::from("waybill.db"))
        );
        assert_eq!(
            path_from_url("sqlite:///var/lib/w.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/w.db"))
        );
        assert_eq!(path_from_url("sqlite:w.db"), Some(PathBuf::from("w.db")));
        assert_eq!(path_from_url("postgres://x"), None);
    }
}
