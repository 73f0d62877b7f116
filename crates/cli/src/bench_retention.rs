//! `waybill bench-retention`: the database's size under a long steady load, with retention at
//! short ages (and, for comparison, without it), against a real `waybill serve` process.
//!
//! The server runs on a temporary SQLite file or in a PostgreSQL schema of its own (dropped at
//! the end), with retention sweeping every `--sweep` seconds and keeping outbox events,
//! finished deliveries and their attempts, and idempotency keys for `--keep` seconds. A webhook
//! on the `fulfillment` topic points at a receiver in this process (loopback), which answers
//! 200 at once, checks each delivery's Standard Webhooks signature and bearer token, and counts
//! the events it saw. Workers then replace a fulfillment's tracking (`PUT …/tracking`, each
//! with its own `Idempotency-Key`) `--events` times over a fixed set of orders: each write
//! records one outbox event, one delivery and one attempt, and one idempotency key, while the
//! order data stays the same size (the packages are replaced, not added to).
//!
//! Every `--events / --samples` events it prints the database's size, split into the tables
//! retention manages, the order data and the rest, and the row counts of the retention-managed
//! tables; at the end it waits until every event was delivered, then for a sweep, and fails if
//! a write failed, a delivery was missing or badly signed.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use waybill_server::webhooks::sign;
use waybill_store::OpenOptions;

use crate::bench::{BenchDatabase, interrupted, start_server};
use crate::bench_client::LoadClient;
use crate::bench_pg::BenchSql;

#[derive(Debug, clap::Args)]
pub struct BenchRetentionArgs {
    /// Writes to make, each one event (and one webhook delivery).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Orders the writes go to, round robin (each with one fulfillment).
    #[arg(long, default_value_t = 1000)]
    orders: u64,
    /// Concurrent workers writing.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Writes per second in all (0: as fast as the server answers).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Run on this PostgreSQL server (in a schema of its own, dropped afterwards) instead of a
    /// temporary SQLite file.
    #[arg(long)]
    postgres: Option<String>,
    /// SQLite durability: full (default) or normal.
    #[arg(long, default_value = "full")]
    synchronous: String,
    /// Seconds outbox events, finished deliveries, attempts and idempotency keys are kept.
    #[arg(long, default_value_t = 5)]
    keep: u64,
    /// Seconds between retention sweeps.
    #[arg(long, default_value_t = 1)]
    sweep: u64,
    /// Most rows one retention statement deletes (the server's `retention_batch`).
    #[arg(long, default_value_t = 1000)]
    retention_batch: u32,
    /// Milliseconds between full retention batches (the server's `retention_pause`).
    #[arg(long, default_value_t = 100)]
    retention_pause_ms: u64,
    /// Keep everything: outbox and delivery ages of 0, idempotency keys for 24 h.
    #[arg(long)]
    no_retention: bool,
    /// Samples taken during the load (one every `events / samples` events).
    #[arg(long, default_value_t = 20)]
    samples: u64,
    /// Longest wait, after the load, for every event to be delivered (seconds).
    #[arg(long, default_value_t = 1800)]
    drain_timeout: u64,
    /// PostgreSQL whose autovacuum is off (as on CI's server): run `VACUUM (ANALYZE)` on the
    /// schema's tables every this many seconds in its place, as autovacuum would (its
    /// `autovacuum_naptime` is a minute by default); 0: never. Ignored when autovacuum is on.
    #[arg(long, default_value_t = 60)]
    vacuum_interval: u64,
    /// Also print the run as one JSON object, the last line of the output.
    #[arg(long)]
    json: bool,
}

/// Tables whose rows retention deletes.
const RETENTION_TABLES: &[&str] = &[
    "outbox",
    "webhook_deliveries",
    "webhook_attempts",
    "idempotency_keys",
    "dashboard_sessions",
    "signin_failures",
    "signin_blocks",
    "rate_windows",
];

/// Tables holding orders and what happened to them: kept for good.
const ORDER_TABLES: &[&str] = &[
    "orders",
    "line_items",
    "fulfillments",
    "fulfillment_lines",
    "packages",
    "tracking_events",
    "returns",
    "return_lines",
    "return_packages",
    "return_history",
    "deleted_order_refs",
];

/// The retention-managed tables whose rows each sample counts (the load writes these).
const COUNTED: &[&str] = &[
    "outbox",
    "webhook_deliveries",
    "webhook_attempts",
    "idempotency_keys",
];

/// Longest wait for one write's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The event type each write records.
const EVENT_TYPE: &str = "fulfillment.updated";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Retention,
    Order,
    Other,
}

fn class(table: &str) -> Class {
    if RETENTION_TABLES.contains(&table) {
        Class::Retention
    } else if ORDER_TABLES.contains(&table) {
        Class::Order
    } else {
        Class::Other
    }
}

/// The database at one point of the run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Sample {
    /// `start` (after the orders were made), `load`, `drained` (every event delivered) or
    /// `swept` (a sweep after that).
    phase: &'static str,
    events: u64,
    seconds: f64,
    /// Writes per second since the previous sample.
    events_per_second: f64,
    /// Events of the load the receiver has seen (each once).
    delivered: u64,
    /// SQLite: pages in use; PostgreSQL: the schema's tables with their indexes and TOAST.
    in_use_bytes: u64,
    /// SQLite: the database file and its WAL; PostgreSQL: `pg_database_size` (the whole
    /// database, other schemas too).
    files_bytes: u64,
    retention_bytes: u64,
    order_bytes: u64,
    other_bytes: u64,
    /// Row counts of [`COUNTED`].
    rows: BTreeMap<String, i64>,
    /// PostgreSQL: the age in seconds of the oldest transaction open in the database (any
    /// client's): VACUUM cannot remove rows deleted after it started.
    oldest_transaction: Option<f64>,
    #[serde(skip)]
    tables: BTreeMap<String, u64>,
}

/// Sizes and row counts as the probe reads them.
struct Measure {
    in_use: u64,
    files: u64,
    tables: BTreeMap<String, u64>,
    rows: BTreeMap<String, i64>,
    oldest_transaction: Option<f64>,
}

/// Reads the database's size beside the server.
enum Probe {
    Sqlite(PathBuf),
    Postgres(BenchSql),
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Probe {
    async fn open(db: &BenchDatabase) -> anyhow::Result<Probe> {
        if let Some((server, schema)) = &db.schema {
            return Ok(Probe::Postgres(BenchSql::connect(server, schema).await?));
        }
        let path = waybill_store::sqlite::path_from_url(&db.url)
            .context("the bench database is neither SQLite nor PostgreSQL")?;
        Ok(Probe::Sqlite(path))
    }

    /// Sizes of every table, the whole, and the rows of `counted` (all tables when `None`).
    async fn measure(&self, counted: Option<&[&str]>) -> anyhow::Result<Measure> {
        match self {
            Probe::Sqlite(path) => {
                let path = path.clone();
                let counted: Option<Vec<String>> =
                    counted.map(|c| c.iter().map(|t| (*t).to_owned()).collect());
                tokio::task::spawn_blocking(move || sqlite_measure(&path, counted.as_deref()))
                    .await
                    .context("measuring the SQLite database")?
            }
            Probe::Postgres(sql) => {
                let (client, schema) = (sql.client(), sql.schema());
                let rows = client
                    .query(
                        "SELECT c.relname::text, pg_total_relation_size(c.oid)::bigint
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
                        &[&schema],
                    )
                    .await
                    .context("reading the schema's table sizes")?;
                let tables: BTreeMap<String, u64> = rows
                    .iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
                    .collect();
                let files: i64 = client
                    .query_one("SELECT pg_database_size(current_database())::bigint", &[])
                    .await
                    .context("reading the database's size")?
                    .get(0);
                let names: Vec<String> = match counted {
                    Some(c) => c.iter().map(|t| (*t).to_owned()).collect(),
                    None => tables.keys().cloned().collect(),
                };
                let mut counts = BTreeMap::new();
                for table in names {
                    let n: i64 = client
                        .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
                        .await
                        .with_context(|| format!("counting the rows of {table}"))?
                        .get(0);
                    counts.insert(table, n);
                }
                let oldest: f64 = client
                    .query_one(
                        "SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8
                         FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()",
                        &[],
                    )
                    .await
                    .context("reading the oldest open transaction")?
                    .get(0);
                Ok(Measure {
                    in_use: tables.values().sum(),
                    files: files.max(0) as u64,
                    tables,
                    rows: counts,
                    oldest_transaction: Some(oldest),
                })
            }
        }
    }

    /// PostgreSQL: whether the server runs autovacuum.
    async fn autovacuum(&self) -> anyhow::Result<Option<bool>> {
        let Probe::Postgres(sql) = self else {
            return Ok(None);
        };
        let client = sql.client();
        let on: String = client
            .query_one("SELECT current_setting('autovacuum')", &[])
            .await
            .context("reading the server's autovacuum setting")?
            .get(0);
        Ok(Some(on == "on"))
    }

    /// PostgreSQL: each table's dead rows, how often it was vacuumed (by autovacuum or by
    /// hand), and the size of its indexes.
    async fn vacuum_stats(&self) -> anyhow::Result<BTreeMap<String, (i64, i64, i64)>> {
        let Probe::Postgres(sql) = self else {
            return Ok(BTreeMap::new());
        };
        let (client, schema) = (sql.client(), sql.schema());
        let rows = client
            .query(
                "SELECT relname::text, n_dead_tup, vacuum_count + autovacuum_count,
                        pg_indexes_size(relid)
                 FROM pg_stat_user_tables WHERE schemaname = $1",
                &[&schema],
            )
            .await
            .context("reading the schema's vacuum statistics")?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
            .collect())
    }
}

fn sqlite_measure(path: &std::path::Path, counted: Option<&[String]>) -> anyhow::Result<Measure> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} to measure it", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))
        .context("setting a busy timeout")?;
    // One read transaction: every figure of the sample from the same snapshot.
    conn.execute_batch("BEGIN")
        .context("starting a read transaction")?;
    let pragma = |name: &str| -> anyhow::Result<i64> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .with_context(|| format!("reading PRAGMA {name}"))
    };
    let in_use = (pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?;
    // dbstat: every b-tree's pages (a table's and its indexes'), named after its table.
    let mut stmt = conn
        .prepare(
            "SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize)
             FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name
             GROUP BY 1",
        )
        .context("reading table sizes from dbstat")?;
    let tables: BTreeMap<String, u64> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .context("reading table sizes from dbstat")?
        .into_iter()
        .map(|(t, n)| (t, n.max(0) as u64))
        .collect();
    drop(stmt);
    let names: Vec<String> = match counted {
        Some(c) => c.to_vec(),
        None => {
            let mut stmt = conn
                .prepare(
                    "SELECT name FROM sqlite_schema
                     WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                )
                .context("listing tables")?;
            stmt.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .context("listing tables")?
        }
    };
    let mut rows = BTreeMap::new();
    for table in names {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
                r.get(0)
            })
            .with_context(|| format!("counting the rows of {table}"))?;
        rows.insert(table, n);
    }
    conn.execute_batch("COMMIT")
        .context("ending the read transaction")?;
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let files = size(path.to_path_buf()) + size(PathBuf::from(wal));
    Ok(Measure {
        in_use: in_use.max(0) as u64,
        files,
        tables,
        rows,
        oldest_transaction: None,
    })
}

/// What the receiver saw.
#[derive(Default)]
struct Received {
    /// The subscription's signing secret, known once it is created (before any event).
    secret: OnceLock<String>,
    /// Event ids of the load seen so far.
    seen: Mutex<HashSet<u128>>,
    /// Deliveries of load events (a repeat counts again).
    deliveries: AtomicU64,
    /// Distinct load events.
    events: AtomicU64,
    /// Deliveries of other event types (none are expected).
    other: AtomicU64,
    /// Deliveries with a missing or wrong signature, token or id.
    bad: AtomicU64,
}

const BEARER: &str = "Bearer retention-bench";

#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
}

async fn receive(
    State(received): State<Arc<Received>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = match (
        received.secret.get(),
        header("webhook-id"),
        header("webhook-timestamp").and_then(|t| t.parse::<i64>().ok()),
        header("webhook-signature"),
    ) {
        (Some(secret), Some(id), Some(ts), Some(signature)) => {
            let expected = sign::standard_signature(secret, id, ts, &body);
            signature.split(' ').any(|s| s == expected)
        }
        _ => false,
    };
    let id =
        header("webhook-id").and_then(|id| u128::from_str_radix(&id.replace('-', ""), 16).ok());
    if !signed || id.is_none() || header("authorization") != Some(BEARER) {
        received.bad.fetch_add(1, Ordering::Relaxed);
    }
    match serde_json::from_slice::<Envelope>(&body) {
        Ok(e) if e.kind == EVENT_TYPE => {
            received.deliveries.fetch_add(1, Ordering::Relaxed);
            let new = match (id, received.seen.lock()) {
                (Some(id), Ok(mut seen)) => seen.insert(id),
                _ => false,
            };
            if new {
                received.events.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(_) => {
            received.other.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            received.bad.fetch_add(1, Ordering::Relaxed);
        }
    }
    StatusCode::OK
}

/// Starts the receiver on a free loopback port; its URL.
async fn start_receiver(received: Arc<Received>) -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the webhook receiver")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/hook"))
}

/// Vacuums done in autovacuum's place, and their time.
#[derive(Default)]
struct Vacuums {
    runs: AtomicU64,
    millis: AtomicU64,
}

/// `VACUUM (ANALYZE)` on every table of `schema`, every `interval`, on a connection of its own,
/// until dropped (aborted).
async fn vacuum_loop(
    server: String,
    schema: String,
    interval: Duration,
    done: Arc<Vacuums>,
) -> anyhow::Result<()> {
    let sql = BenchSql::connect(&server, &schema).await?;
    let client = sql.client();
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1",
            &[&schema],
        )
        .await
        .context("listing the schema's tables to vacuum")?;
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    // The first right away, before the load: analyzed, the tables have statistics the planner
    // needs (autovacuum, when on, analyzes a new table after its first 50 changed rows).
    loop {
        let started = Instant::now();
        for table in &tables {
            client
                .batch_execute(&format!("VACUUM (ANALYZE) \"{schema}\".\"{table}\""))
                .await
                .with_context(|| format!("vacuuming {table}"))?;
        }
        done.runs.fetch_add(1, Ordering::Relaxed);
        done.millis
            .fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        tokio::time::sleep(interval).await;
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn run(args: BenchRetentionArgs, store: OpenOptions) -> anyhow::Result<()> {
    if args.events == 0 || args.orders == 0 || args.concurrency == 0 || args.samples == 0 {
        bail!("--events, --orders, --concurrency and --samples must be positive");
    }
    if args.keep == 0 || args.sweep == 0 || args.retention_batch == 0 {
        bail!("--keep, --sweep and --retention-batch must be positive (--no-retention keeps all)");
    }
    if !matches!(args.synchronous.as_str(), "full" | "normal") {
        bail!(
            "--synchronous must be full or normal, not {}",
            args.synchronous
        );
    }
    let db =
        BenchDatabase::create(args.postgres.as_deref(), &args.synchronous, "wbretention").await?;
    // The schema goes whatever ends the run: an error, a panic, Ctrl-C or SIGTERM.
    let run = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run_on(
        &args, &db, store,
    )));
    let outcome = tokio::select! {
        outcome = run => outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("the bench panicked"))),
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
    };
    db.drop_schema().await;
    outcome
}

/// A JSON request through reqwest (the set-up's few requests); the answer's body.
async fn call(
    http: &reqwest::Client,
    secret: &str,
    url: String,
    body: Value,
) -> anyhow::Result<Value> {
    let response = http
        .post(&url)
        .bearer_auth(secret)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("reading the answer of POST {url}"))?;
    if !status.is_success() {
        bail!("POST {url}: {status} {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("the answer of POST {url}: {text}"))
}

async fn run_on(
    args: &BenchRetentionArgs,
    db: &BenchDatabase,
    options: OpenOptions,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // The store and its key, made here; the process's store is closed before the server opens
    // the database.
    let (store_id, secret) = {
        let store = waybill_store::open_with(&db.url, &options)
            .await
            .context("opening the bench database")?;
        let (record, key) = store.create_store("retention bench").await?;
        (record.id, key.secret)
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let retention = !args.no_retention;
    let keep = format!("{}s", args.keep);
    let (ages, ttl) = if retention {
        (keep.clone(), keep.clone())
    } else {
        ("0".to_owned(), "24h".to_owned())
    };
    let env = [
        ("WAYBILL_WEBHOOK_ALLOW_PRIVATE", "true".to_owned()),
        ("WAYBILL_RETENTION_INTERVAL", format!("{}s", args.sweep)),
        ("WAYBILL_RETENTION_OUTBOX_AGE", ages.clone()),
        ("WAYBILL_RETENTION_DELIVERY_AGE", ages),
        ("WAYBILL_RETENTION_BATCH", args.retention_batch.to_string()),
        (
            "WAYBILL_RETENTION_PAUSE",
            format!("{}ms", args.retention_pause_ms),
        ),
        ("WAYBILL_IDEMPOTENCY_TTL", ttl),
    ];
    let server = start_server(&db.url, &args.synchronous, &env).await?;
    let received = Arc::new(Received::default());
    let hook = start_receiver(received.clone()).await?;
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("building the set-up's HTTP client")?;
    let api = format!("{}/v2.2/stores/{store_id}", server.base);

    let created = call(
        &http,
        &secret,
        format!("{api}/webhooks"),
        json!({"webhook": {
            "callback": {"url": hook, "auth": {"bearer": {"token": "retention-bench"}}},
            "topic": "fulfillment",
        }}),
    )
    .await
    .context("subscribing the receiver")?;
    let signing = created["webhook"]["secret"]
        .as_str()
        .context("no signing secret in the new webhook's answer")?;
    let _ = received.secret.set(signing.to_owned());

    // The orders: made before the load, each with one line and one fulfillment (its
    // `fulfillment.created` event is delivered too, and not counted as the load's).
    let next = Arc::new(AtomicU64::new(0));
    let mut makers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.min(16) {
        let (http, secret, api, next) = (http.clone(), secret.clone(), api.clone(), next.clone());
        let orders = args.orders;
        makers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= orders {
                    return anyhow::Ok(());
                }
                call(
                    &http,
                    &secret,
                    format!("{api}/orders"),
                    json!({"orderId": format!("R-{i}"), "createdAt": "2026-01-01T00:00:00Z",
                           "lineItems": [{"id": "L", "productId": "P", "title": "Retention item",
                                          "quantity": 1}]}),
                )
                .await?;
                call(
                    &http,
                    &secret,
                    format!("{api}/orders/R-{i}/fulfillments"),
                    json!({"fulfillmentId": format!("F-{i}"),
                           "lineItems": [{"id": "L", "quantity": 1}],
                           "tracking": {"carrier": "UPS", "code": "1Z999AA10123456784"}}),
                )
                .await?;
            }
        });
    }
    while let Some(done) = makers.join_next().await {
        done.context("an order-making task failed")??;
    }
    println!(
        "{}; {} orders made in {:.1} s",
        db.label,
        args.orders,
        started.elapsed().as_secs_f64()
    );
    println!(
        "retention {}; {} tracking updates (PUT .../tracking with Idempotency-Key, {} workers{}) \
         over {} orders, one webhook (topic fulfillment) to a receiver on loopback",
        if retention {
            format!(
                "on: sweep every {} s, outbox/deliveries/attempts/idempotency keys kept {} s, \
                 batches of {} rows, {} ms apart",
                args.sweep, args.keep, args.retention_batch, args.retention_pause_ms
            )
        } else {
            "off: outbox and delivery ages 0 (kept), idempotency keys kept 24 h".to_owned()
        },
        args.events,
        args.concurrency,
        if args.rate > 0 {
            format!(", at most {}/s", args.rate)
        } else {
            String::new()
        },
        args.orders,
    );

    let probe = Probe::open(db).await?;
    let vacuums = Arc::new(Vacuums::default());
    let mut vacuum_task = None;
    match (probe.autovacuum().await?, &db.schema) {
        (Some(true), _) => println!("PostgreSQL autovacuum: on"),
        (Some(false), Some((server, schema))) if args.vacuum_interval > 0 => {
            println!(
                "PostgreSQL autovacuum: OFF on this server; the bench runs VACUUM (ANALYZE) on \
                 the schema's tables every {} s in its place",
                args.vacuum_interval
            );
            vacuum_task = Some(AbortOnDrop(tokio::spawn(vacuum_loop(
                server.clone(),
                schema.clone(),
                Duration::from_secs(args.vacuum_interval),
                vacuums.clone(),
            ))));
            // The load starts on analyzed tables.
            while vacuums.runs.load(Ordering::Relaxed) == 0
                && vacuum_task.as_ref().is_some_and(|t| !t.0.is_finished())
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        (Some(false), _) => println!(
            "PostgreSQL autovacuum: OFF on this server, and nothing vacuums in its place \
             (--vacuum-interval 0): dead rows are never reclaimed"
        ),
        (None, _) => {}
    }
    let first = probe.measure(None).await?;
    for table in COUNTED {
        if !first.tables.contains_key(*table) {
            bail!("the database has no table {table}: update bench_retention's table lists");
        }
    }
    let others: Vec<&String> = first
        .tables
        .keys()
        .filter(|t| class(t) == Class::Other)
        .collect();
    let pg = db.schema.is_some();
    println!(
        "retention-managed tables: {}\norder data: {}\nother (settings, keys, subscriptions{}): {}",
        RETENTION_TABLES.join(", "),
        ORDER_TABLES.join(", "),
        if pg { "" } else { ", SQLite's own" },
        others
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let (in_use, files) = if pg {
        ("schema MiB", "db MiB")
    } else {
        ("in use MiB", "files MiB")
    };
    println!(
        "sizes in MiB: {}; retention = retention-managed tables, order = order data",
        if pg {
            "schema = the schema's tables with indexes and TOAST (pg_total_relation_size), db = \
             pg_database_size (all schemas); oldest tx = the oldest transaction open in the \
             database (any client's), older dead rows VACUUM cannot remove"
        } else {
            "in use = pages in use, files = database file + WAL; tables by dbstat"
        },
    );
    println!();
    let header = format!(
        "{:<7} {:>9} {:>7} {:>6} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9}",
        "phase",
        "events",
        "secs",
        "ev/s",
        "delivered",
        in_use,
        files,
        "retention",
        "order",
        "other",
        "outbox",
        "deliveries",
        "attempts",
        "idem keys"
    );
    let header = if pg {
        format!("{header} {:>9}", "oldest tx")
    } else {
        header
    };
    println!("{header}");

    let load_started = Instant::now();
    let sample = |phase: &'static str, m: Measure, events: u64, prev: Option<&Sample>| {
        let seconds = load_started.elapsed().as_secs_f64();
        let events_per_second = match prev {
            Some(p) if seconds > p.seconds => (events - p.events) as f64 / (seconds - p.seconds),
            _ => 0.0,
        };
        let by = |c: Class| {
            m.tables
                .iter()
                .filter(|(t, _)| class(t) == c)
                .map(|(_, n)| n)
                .sum()
        };
        let rows = COUNTED
            .iter()
            .map(|t| ((*t).to_owned(), m.rows.get(*t).copied().unwrap_or(0)))
            .collect();
        Sample {
            phase,
            events,
            seconds,
            events_per_second,
            delivered: received.events.load(Ordering::Relaxed),
            in_use_bytes: m.in_use,
            files_bytes: m.files,
            retention_bytes: by(Class::Retention),
            order_bytes: by(Class::Order),
            other_bytes: by(Class::Other),
            rows,
            oldest_transaction: m.oldest_transaction,
            tables: m.tables,
        }
    };
    let print = |s: &Sample| {
        let row = |t: &str| s.rows.get(t).copied().unwrap_or(0);
        println!(
            "{:<7} {:>9} {:>7.0} {:>6.0} {:>9} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>10} {:>9} {:>9}{}",
            s.phase,
            s.events,
            s.seconds,
            s.events_per_second,
            s.delivered,
            mib(s.in_use_bytes),
            mib(s.files_bytes),
            mib(s.retention_bytes),
            mib(s.order_bytes),
            mib(s.other_bytes),
            row("outbox"),
            row("webhook_deliveries"),
            row("webhook_attempts"),
            row("idempotency_keys"),
            s.oldest_transaction
                .map_or(String::new(), |age| format!(" {age:>8.0}s")),
        );
    };
    let start_rows = first.rows.clone();
    let mut samples = vec![sample("start", first, 0, None)];
    print(&samples[0]);

    // The load.
    let client = Arc::new(LoadClient::new(&server.base, &secret)?);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    let base = Arc::new(format!("/v2.2/stores/{store_id}/orders"));
    let tick = Instant::now();
    for _ in 0..args.concurrency {
        let (client, next, done, failed, base) = (
            client.clone(),
            next.clone(),
            done.clone(),
            failed.clone(),
            base.clone(),
        );
        let (events, orders, rate) = (args.events, args.orders, args.rate);
        workers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return;
                }
                if rate > 0 {
                    let due = tick + Duration::from_secs_f64(n as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let i = n % orders;
                // Two tracking numbers in turn: each write replaces the package.
                let body = Bytes::from(format!(
                    r#"{{"packages":[{{"carrier":"UPS","trackingNumber":"1Z999AA1012345678{}"}}]}}"#,
                    n % 2 * 5 + 4
                ));
                let ok = match HeaderValue::from_str(&format!("retention-{n}")) {
                    Ok(key) => tokio::time::timeout(
                        REQUEST_TIMEOUT,
                        client.put_idempotent(
                            format!("{base}/R-{i}/fulfillments/F-{i}/tracking"),
                            body,
                            key,
                        ),
                    )
                    .await
                    .unwrap_or(false),
                    Err(_) => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // A sample every `every` events, and one when the last write is answered.
    let every = args.events.div_ceil(args.samples);
    let mut threshold = every.min(args.events);
    let mut progress = (0, Instant::now());
    loop {
        let now = done.load(Ordering::Relaxed);
        if now > progress.0 {
            progress = (now, Instant::now());
        } else if progress.1.elapsed() > 2 * REQUEST_TIMEOUT {
            bail!("the load stopped at {now} of {} events", args.events);
        }
        if now >= threshold {
            let m = probe.measure(Some(COUNTED)).await?;
            // The events written by the time the figures were read.
            let written = done.load(Ordering::Relaxed);
            let s = sample("load", m, written, samples.last());
            print(&s);
            samples.push(s);
            if written >= args.events {
                break;
            }
            while threshold <= written {
                threshold = (threshold + every).min(args.events);
            }
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while let Some(worker) = workers.join_next().await {
        worker.context("a load worker failed")?;
    }
    let load_seconds = tick.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);

    // Delivery catches up.
    let drain = Instant::now();
    let deadline = drain + Duration::from_secs(args.drain_timeout);
    let mut stalled = (received.events.load(Ordering::Relaxed), Instant::now());
    loop {
        let seen = received.events.load(Ordering::Relaxed);
        if seen >= args.events - failed {
            break;
        }
        if seen > stalled.0 {
            stalled = (seen, Instant::now());
        }
        if Instant::now() > deadline || stalled.1.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {seen} of {} events were delivered {:.0} s after the load",
                args.events - failed,
                drain.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = probe.measure(Some(COUNTED)).await?;
    let s = sample("drained", m, args.events, None);
    print(&s);
    samples.push(s);
    if retention {
        // Past the ages, then a sweep and the next.
        tokio::time::sleep(Duration::from_secs(args.keep + 2 * args.sweep + 1)).await;
    }
    let last = probe.measure(None).await?;
    let end_rows = last.rows.clone();
    let s = sample("swept", last, args.events, None);
    print(&s);
    samples.push(s);
    let vacuum = probe.vacuum_stats().await?;
    drop(server);
    if let Some(mut task) = vacuum_task.take() {
        if task.0.is_finished() {
            // It only ends on an error.
            (&mut task.0)
                .await
                .context("the vacuum task failed")?
                .context("vacuuming in autovacuum's place")?;
        }
        let runs = vacuums.runs.load(Ordering::Relaxed);
        println!(
            "the bench vacuumed the schema {runs} times in autovacuum's place ({:.1} s each on \
             average)",
            vacuums.millis.load(Ordering::Relaxed) as f64 / 1000.0 / runs.max(1) as f64
        );
    }

    // Growth over the second half of the load, per 1,000 events.
    let load: Vec<&Sample> = samples.iter().filter(|s| s.phase == "load").collect();
    let half = load.iter().find(|s| s.events >= args.events / 2).copied();
    if let (Some(mid), Some(end)) = (half, load.last().copied())
        && end.events > mid.events
    {
        let per = |a: u64, b: u64| {
            (b as f64 - a as f64) / 1024.0 * 1000.0 / (end.events - mid.events) as f64
        };
        println!();
        println!(
            "growth from {} to {} events, KiB per 1,000 events: in use {:+.1}, retention-managed \
             {:+.1}, order data {:+.1}, other {:+.1}",
            mid.events,
            end.events,
            per(mid.in_use_bytes, end.in_use_bytes),
            per(mid.retention_bytes, end.retention_bytes),
            per(mid.order_bytes, end.order_bytes),
            per(mid.other_bytes, end.other_bytes),
        );
    }

    // Each table from the start to the end.
    let start_tables = &samples[0].tables;
    let end_tables = samples.last().map(|s| s.tables.clone()).unwrap_or_default();
    println!();
    println!(
        "{:<22} {:<9} {:>10} {:>10} {:>10} {:>10}{}",
        "table",
        "class",
        "start KiB",
        "end KiB",
        "start rows",
        "end rows",
        if pg {
            format!(" {:>10} {:>9} {:>8}", "index KiB", "dead rows", "vacuums")
        } else {
            String::new()
        }
    );
    let names: std::collections::BTreeSet<&String> =
        start_tables.keys().chain(end_tables.keys()).collect();
    for table in names {
        let kib = |m: &BTreeMap<String, u64>| m.get(table).copied().unwrap_or(0) / 1024;
        let rows =
            |m: &BTreeMap<String, i64>| m.get(table).map_or("-".to_owned(), |n| n.to_string());
        let class = match class(table) {
            Class::Retention => "retention",
            Class::Order => "order",
            Class::Other => "other",
        };
        let stats = match vacuum.get(table) {
            Some((dead, vacuums, index)) => {
                format!(" {:>10} {dead:>9} {vacuums:>8}", index / 1024)
            }
            None if pg => format!(" {:>10} {:>9} {:>8}", "-", "-", "-"),
            None => String::new(),
        };
        println!(
            "{:<22} {:<9} {:>10} {:>10} {:>10} {:>10}{stats}",
            table,
            class,
            kib(start_tables),
            kib(&end_tables),
            rows(&start_rows),
            rows(&end_rows),
        );
    }

    let delivered = received.events.load(Ordering::Relaxed);
    let deliveries = received.deliveries.load(Ordering::Relaxed);
    let bad = received.bad.load(Ordering::Relaxed);
    let rate = (args.events - failed) as f64 / load_seconds;
    println!();
    println!(
        "{} events in {:.0} s: {:.0} events/s; {} failed; {} delivered ({} deliveries, {} repeats), \
         {} other events delivered, {} deliveries badly signed",
        args.events,
        load_seconds,
        rate,
        failed,
        delivered,
        deliveries,
        deliveries.saturating_sub(delivered),
        received.other.load(Ordering::Relaxed),
        bad
    );
    let verdict = if failed > 0 {
        Err(anyhow::anyhow!(
            "{failed} write(s) failed; the figures above are not valid"
        ))
    } else if bad > 0 {
        Err(anyhow::anyhow!(
            "{bad} deliveries came without a valid signature, token or event id"
        ))
    } else if delivered != args.events {
        Err(anyhow::anyhow!(
            "{delivered} of {} events were delivered",
            args.events
        ))
    } else {
        println!("every event was delivered");
        Ok(())
    };
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "retention",
                "backend": if pg { "postgresql" } else { "sqlite" },
                "retention": retention,
                "events": args.events,
                "orders": args.orders,
                "keepSeconds": args.keep,
                "sweepSeconds": args.sweep,
                "seconds": load_seconds,
                "eventsPerSecond": rate,
                "failed": failed,
                "delivered": delivered,
                "deliveries": deliveries,
                "badlySigned": bad,
                "samples": samples,
            })
        );
    }
    verdict
}
