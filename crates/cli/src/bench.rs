//! `waybill bench`: throughput and latency of the write and read paths, straight through the
//! store (the raw baseline), straight in the database (pgbench, on PostgreSQL), and over HTTP on
//! loopback against a real `waybill serve` process, side by side from one run.
//!
//! The load generator runs on the same cores as the server, as the performance targets assume.
//! Maximum-rate phases are closed-loop: `concurrency` workers each send their next request when
//! the previous one is answered. Fixed-rate phases are open-loop: requests are sent on a
//! schedule whatever the answers do, and latency is measured from each request's scheduled
//! time, so a stall shows up in the figures instead of slowing the load down (coordinated
//! omission).

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use waybill_core::fulfillment::InitialTracking;
use waybill_core::order::LineItemExtra;
use waybill_core::{
    NewFulfillment, NewLineItem, NewOrder, OrderDetails, OrderRef, Quantity, ShipmentStatus, time,
};
use waybill_store::sqlite::Synchronous;
use waybill_store::{OpenOptions, Store};

use crate::bench_client::LoadClient;
use crate::bench_pg::{BenchSql, Template};

/// The pgbench script of the equivalent transaction.
const PGBENCH_SCRIPT: &str = include_str!("../../../bench/pgbench/create_fulfillment.sql");

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Orders prepared before measuring.
    #[arg(long, default_value_t = 100_000)]
    orders: u64,
    /// Concurrent workers per maximum-rate phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// SQLite durability: full (default, survives power loss) or normal.
    #[arg(long, default_value = "full")]
    synchronous: String,
    /// Run on this PostgreSQL server (in a schema of its own, dropped afterwards) instead of a
    /// temporary SQLite file.
    #[arg(long)]
    postgres: Option<String>,
    /// Request rates (per second) of the open-loop create-fulfillment phases.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    rates: Vec<u64>,
    /// pgbench clients for the database's own rate (PostgreSQL only).
    #[arg(long, default_value_t = 8)]
    pgbench_clients: u32,
    /// Run only these phases (all by default). The orders are prepared whatever is chosen.
    #[arg(long, value_enum, value_delimiter = ',')]
    phases: Vec<Phase>,
    /// PostgreSQL only: run the pgbench phase and the HTTP create-fulfillment phase alternately
    /// this many times (pgbench, HTTP, pgbench, HTTP, ...) on the same data, and report each
    /// pair's ratio and their median.
    #[arg(long, default_value_t = 1)]
    pairs: u32,
    /// PostgreSQL only: orders made through the store before the rest are copied from one of
    /// them in SQL.
    #[arg(long, default_value_t = 1000)]
    store_orders: u64,
}

/// The phases of a run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    /// Create fulfillment straight through the store.
    RawCreate,
    /// Get order straight through the store.
    RawGet,
    /// The equivalent transaction in pgbench (PostgreSQL only).
    Pgbench,
    /// Create fulfillment over HTTP at maximum rate.
    HttpCreate,
    /// Create fulfillment over HTTP at each of `--rates`.
    HttpRates,
    /// Shipment status update over HTTP.
    HttpStatus,
    /// Get order over HTTP.
    HttpGet,
    /// `GET /healthz` over HTTP: the HTTP stack and the load generator, no database work.
    HttpFloor,
}

impl BenchArgs {
    fn runs(&self, phase: Phase) -> bool {
        self.phases.is_empty() || self.phases.contains(&phase)
    }
}

type Op = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Longest wait for one answer; a request still unanswered then counts as failed, so a stuck
/// exchange cannot hold a phase (and the run) forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Most requests of a fixed-rate phase in flight at once, each on its own connection. Past a
/// rate the server sustains, the backlog grows every second; unbounded, it would open a
/// connection per waiting request until both processes ran out of file descriptors. Requests
/// over the bound wait their turn, their latency still counted from when they were due.
const MAX_IN_FLIGHT: usize = 1024;

/// `op(n)`, failed if it takes longer than [`REQUEST_TIMEOUT`].
async fn attempt(op: &Op, n: u64) -> bool {
    tokio::time::timeout(REQUEST_TIMEOUT, op(n))
        .await
        .unwrap_or(false)
}

struct PhaseResult {
    name: String,
    ok: u64,
    failed: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits: always valid bounds.
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Closed loop at maximum rate.
async fn phase(name: &str, concurrency: usize, seconds: u64, op: Op) -> PhaseResult {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (next, op) = (next.clone(), op.clone());
        workers.push(tokio::spawn(async move {
            let mut histogram = histogram();
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                if attempt(&op, n).await {
                    ok += 1;
                } else {
                    failed += 1;
                }
                let _ = histogram.record(t0.elapsed().as_micros().max(1) as u64);
            }
            (ok, failed, histogram)
        }));
    }
    let mut latency = histogram();
    let (mut ok, mut failed) = (0, 0);
    for worker in workers {
        if let Ok((o, f, h)) = worker.await {
            ok += o;
            failed += f;
            let _ = latency.add(h);
        }
    }
    PhaseResult {
        name: name.to_owned(),
        ok,
        failed,
        elapsed: started.elapsed(),
        latency,
    }
}

/// Open loop at a fixed rate: request `n` is due at `start + n / rate` and its latency counts
/// from then, however late it could be sent. The phase's rate is what was answered over the time
/// until the last answer, so a rate the server cannot keep up shows as a lower one.
async fn fixed_rate(name: String, rate: u64, seconds: u64, op: Op) -> PhaseResult {
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let latency = Arc::new(Mutex::new(histogram()));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut inflight = Vec::with_capacity(total as usize);
    for n in 0..total {
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due).await;
        let (op, latency, ok, failed) = (op.clone(), latency.clone(), ok.clone(), failed.clone());
        let in_flight = in_flight.clone();
        inflight.push(tokio::spawn(async move {
            let success = match in_flight.acquire_owned().await {
                Ok(_permit) => attempt(&op, n).await,
                Err(_) => false,
            };
            let micros = due.elapsed().as_micros().max(1) as u64;
            if let Ok(mut h) = latency.lock() {
                let _ = h.record(micros);
            }
            if success { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for task in inflight {
        let _ = task.await;
    }
    let latency = latency
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| histogram());
    PhaseResult {
        name,
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: started.elapsed().max(Duration::from_secs(seconds)),
        latency,
    }
}

/// A `/proc/PID/status` field in MB (`VmRSS`, `VmHWM`).
fn proc_mb(pid: Option<u32>, field: &str) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub(crate) fn new_order(i: u64) -> anyhow::Result<NewOrder> {
    Ok(NewOrder::new(
        format!("B-{i}"),
        time::now(),
        vec![NewLineItem {
            id: "L".into(),
            product_id: Some("P".into()),
            variant_id: Some("V".into()),
            sku: Some("SKU".into()),
            title: "Bench item".into(),
            quantity: Quantity::new("quantity", 1000)?,
            price: None,
            extra: LineItemExtra::default(),
        }],
        OrderDetails::default(),
    )?)
}

fn one_unit(id: Option<String>) -> anyhow::Result<NewFulfillment> {
    let mut f = NewFulfillment::new(
        id,
        vec![("L".into(), Quantity::new("quantity", 1)?)],
        vec![],
        ShipmentStatus::PreTransit,
    )?;
    f.initial = InitialTracking::default();
    Ok(f)
}

/// Where the bench's data lives, and how to clean it up.
pub(crate) struct BenchDatabase {
    pub(crate) url: String,
    pub(crate) label: String,
    /// SQLite: the directory holding the database and the copy of it as prepared.
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the server URL and the schema to drop at the end.
    pub(crate) schema: Option<(String, String)>,
}

async fn pg_execute(url: &str, sql: &str) -> anyhow::Result<()> {
    Ok(waybill_store::postgres::run_sql(url, sql).await?)
}

impl BenchDatabase {
    /// A temporary SQLite file, or on the PostgreSQL server `postgres` a fresh schema named
    /// `{prefix}_{pid}`.
    pub(crate) async fn create(
        postgres: Option<&str>,
        synchronous: &str,
        prefix: &str,
    ) -> anyhow::Result<BenchDatabase> {
        match postgres {
            None => {
                let dir = tempfile::tempdir().context("creating a temporary directory")?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Ok(BenchDatabase {
                    url,
                    label: format!("sqlite synchronous={synchronous}"),
                    _dir: Some(dir),
                    schema: None,
                })
            }
            Some(server) => {
                let schema = format!("{prefix}_{}", std::process::id());
                pg_execute(
                    server,
                    &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
                )
                .await?;
                let sep = if server.contains('?') { '&' } else { '?' };
                Ok(BenchDatabase {
                    url: format!("{server}{sep}options=-c%20search_path%3D{schema}"),
                    label: format!("postgresql schema={schema}"),
                    _dir: None,
                    schema: Some((server.to_owned(), schema)),
                })
            }
        }
    }

    /// The database URL the server is to run on. SQLite: a copy of the database as it is now
    /// (SQLite's backup API, page for page, so the copy has the same layout), beside it, so
    /// HTTP creation starts from the data the raw baseline started from instead of from the
    /// rows the raw phase added. PostgreSQL: the same schema.
    async fn for_server(&self) -> anyhow::Result<String> {
        let Some(source) = waybill_store::sqlite::path_from_url(&self.url) else {
            return Ok(self.url.clone());
        };
        let dest = source.with_file_name("prepared.db");
        let url = format!("sqlite://{}", dest.display());
        let started = Instant::now();
        tokio::task::spawn_blocking(move || waybill_store::sqlite::backup(&source, &dest, false))
            .await
            .context("copying the prepared database")?
            .context("copying the prepared database")?;
        println!(
            "copied the prepared database for the server in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(url)
    }

    pub(crate) async fn drop_schema(&self) {
        if let Some((server, schema)) = &self.schema
            && let Err(e) =
                pg_execute(server, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await
        {
            eprintln!("could not drop the bench schema {schema}: {e:#}");
        }
    }
}

/// A `waybill serve` child process on the bench database.
pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) base: String,
    startup: Duration,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `waybill serve` on `database_url`; `env` adds settings (or overrides the bench's).
pub(crate) async fn start_server(
    database_url: &str,
    synchronous: &str,
    env: &[(&str, String)],
) -> anyhow::Result<ServerProcess> {
    let exe = std::env::current_exe().context("finding the waybill binary")?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("WAYBILL_DATABASE_URL", database_url)
        .env("WAYBILL_SQLITE_SYNCHRONOUS", synchronous)
        .env("WAYBILL_LOG", "info,tower_http=warn")
        // One API key drives the whole load: per-key limits would measure themselves.
        .env("WAYBILL_RATE_LIMIT", "0")
        .env("WAYBILL_MAX_IN_FLIGHT_PER_STORE", "0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("starting waybill serve")?;
    let stderr = child.stderr.take().context("reading the server's log")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(rest) = line.split("listening on http://").nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                let _ = tx.send(addr);
                sent = true;
            }
            // The server's warnings and errors (a slow write batch, a failed request) belong
            // beside the figures they may explain.
            if line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\"") {
                eprintln!("server: {line}");
            }
        }
    });
    let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120)))
        .await?
        .context("the server did not report its address")?;
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    loop {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the server did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(ServerProcess {
        child,
        base,
        startup: started.elapsed(),
    })
}

/// Runs the equivalent transaction through pgbench on orders `B-0` to `B-{orders - 1}`; its
/// transactions per second.
async fn run_pgbench(
    db: &BenchDatabase,
    store_id: &str,
    orders: u64,
    args: &BenchArgs,
) -> anyhow::Result<f64> {
    let Some((server, schema)) = db.schema.clone() else {
        bail!("pgbench runs on PostgreSQL only");
    };
    let script = tempfile::NamedTempFile::new().context("writing the pgbench script")?;
    std::fs::write(script.path(), PGBENCH_SCRIPT).context("writing the pgbench script")?;
    let mut command = Command::new("pgbench");
    command
        .args(["-n", "-M", "prepared"])
        .args(["-c", &args.pgbench_clients.to_string()])
        .args(["-j", "2"])
        .args(["-T", &args.seconds.to_string()])
        .args(["-D", &format!("store={store_id}")])
        .args(["-D", &format!("norders={orders}")])
        .arg("-f")
        .arg(script.path())
        .arg(&server)
        .env("PGOPTIONS", format!("-c search_path={schema}"));
    // Waited for off the runtime's threads, which stay free for the signals that end the run.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("running pgbench")?
        .context("running pgbench (Debian package postgresql-client)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|tps| tps.parse::<f64>().ok())
        })
        .with_context(|| format!("no tps in pgbench's output: {stdout}"))
}

/// The middle value (the mean of the two middle ones for an even count); `None` if empty.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Longest wait for the server to fan out the outbox events written before a phase.
const SETTLE_LIMIT: Duration = Duration::from_secs(1800);

/// PostgreSQL: waits until the server has fanned out every outbox event written so far.
async fn settle(sql: Option<&BenchSql>) -> anyhow::Result<()> {
    if let Some(sql) = sql {
        sql.settle(SETTLE_LIMIT).await?;
    }
    Ok(())
}

/// Runs the bench. `store` is the configured tuning (pool size, group commit, ...), used by the
/// raw phases as the server (which reads the same configuration) uses it.
pub async fn run(args: BenchArgs, store: OpenOptions) -> anyhow::Result<()> {
    if args.orders == 0 || args.concurrency == 0 || args.seconds == 0 {
        bail!("--orders, --concurrency and --seconds must be positive");
    }
    let synchronous = match args.synchronous.as_str() {
        "full" => Synchronous::Full,
        "normal" => Synchronous::Normal,
        other => bail!("--synchronous must be full or normal, not {other}"),
    };
    if args.pairs == 0 {
        bail!("--pairs must be positive");
    }
    if args.pairs > 1 && args.postgres.is_none() {
        bail!("--pairs alternates pgbench and HTTP creation: PostgreSQL only (--postgres)");
    }
    let db = BenchDatabase::create(args.postgres.as_deref(), &args.synchronous, "wbbench").await?;
    // The schema goes whatever ends the run: an error, a panic, Ctrl-C or SIGTERM (dropping the
    // run stops the server process; pgbench ends with its -T).
    let run = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run_on(
        &args,
        &db,
        store,
        synchronous,
    )));
    let outcome = tokio::select! {
        outcome = run => outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("the bench panicked"))),
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
    };
    db.drop_schema().await;
    outcome
}

/// Resolves on Ctrl-C or SIGTERM, with the signal's name.
pub(crate) async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = async {
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctrl_c() => "SIGINT",
            _ = term => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        ctrl_c().await;
        "Ctrl-C"
    }
}

/// Resolves on Ctrl-C; never if it cannot be listened for.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn run_on(
    args: &BenchArgs,
    db: &BenchDatabase,
    mut options: OpenOptions,
    synchronous: Synchronous,
) -> anyhow::Result<()> {
    options.sqlite.synchronous = synchronous;
    let store: Arc<dyn Store> = waybill_store::open_with(&db.url, &options)
        .await
        .context("opening the bench database")?;
    let (record, key) = store.create_store("bench").await?;
    let store_id = Arc::new(record.id);

    println!(
        "{}: preparing {} orders (each with one line of 1000 units and one fulfillment)...",
        db.label, args.orders
    );
    // PostgreSQL: the store makes the first orders and the rest are copies of one of them, made
    // in SQL (bench_pg), as through the store it would take over an hour for a million.
    let made = match db.schema {
        Some(_) => args.orders.min(args.store_orders.max(1)),
        None => args.orders,
    };
    let mut sql = match &db.schema {
        Some((server, schema)) => Some(BenchSql::connect(server, schema).await?),
        None => None,
    };
    let before = match &sql {
        Some(sql) if made < args.orders => sql.table_counts().await?,
        _ => Vec::new(),
    };
    let prepared = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (store, store_id, next) = (store.clone(), store_id.clone(), next.clone());
        let total = made;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                store.create_order(&store_id, new_order(i)?).await?;
                store
                    .create_fulfillment(
                        &store_id,
                        &OrderRef::new(format!("B-{i}")),
                        one_unit(Some(format!("F-{i}")))?,
                    )
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await.context("a preparation task failed")??;
    }
    if let Some(sql) = sql.as_mut().filter(|_| made < args.orders) {
        println!(
            "made {made} orders through the store in {:.1} s; copying the other {} in SQL...",
            prepared.elapsed().as_secs_f64(),
            args.orders - made
        );
        let template = Template {
            index: 0,
            order: store
                .get_order(&store_id, &OrderRef::new("B-0".to_owned()))
                .await
                .context("reading the template order")?,
        };
        sql.copy_orders(&store_id, &template, &before, made, args.orders)
            .await?;
        // The first and the last copy, read as the server will read them.
        for i in [made, args.orders - 1] {
            let copy = store
                .get_order(&store_id, &OrderRef::new(format!("B-{i}")))
                .await
                .with_context(|| format!("reading the copied order B-{i}"))?;
            crate::bench_pg::check_copy(&template, i, &copy)?;
        }
    }
    let prepare_secs = prepared.elapsed().as_secs_f64();
    println!("prepared in {prepare_secs:.1} s");
    let server_url = db.for_server().await?;

    let orders = args.orders;
    // The write phases work on the first half of the orders and the reads on the second, so
    // every read finds an order as prepared: one line, one fulfillment, one history entry,
    // however many writes ran before.
    let written = (orders / 2).max(1);
    let read = move |n: u64| orders - 1 - n % (orders - written).max(1);
    let mut results = Vec::new();

    let raw_store = store.clone();
    let raw_id = store_id.clone();
    let raw: Op = Arc::new(move |n| {
        let (store, store_id) = (raw_store.clone(), raw_id.clone());
        Box::pin(async move {
            let Ok(f) = one_unit(None) else { return false };
            store
                .create_fulfillment(&store_id, &OrderRef::new(format!("B-{}", n % written)), f)
                .await
                .is_ok()
        })
    });
    if args.runs(Phase::RawCreate) {
        results.push(
            phase(
                "raw create fulfillment",
                args.concurrency,
                args.seconds,
                raw,
            )
            .await,
        );
    }

    let read_store = store.clone();
    let read_id = store_id.clone();
    let raw_get: Op = Arc::new(move |n| {
        let (store, store_id) = (read_store.clone(), read_id.clone());
        Box::pin(async move {
            let i = read(n);
            store
                .get_order(&store_id, &OrderRef::new(format!("B-{i}")))
                .await
                .is_ok()
        })
    });
    if args.runs(Phase::RawGet) {
        results.push(phase("raw get order", args.concurrency, args.seconds, raw_get).await);
    }

    // The HTTP phases run against a server process of its own, so its memory is its own.
    drop(store);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = start_server(&server_url, &args.synchronous, &[]).await?;
    let server_pid = server.child.id();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // PostgreSQL: the server's dispatcher first fans out the events of the prepared orders (two
    // per order; with no webhook subscription it only marks them). Measuring starts once it has.
    if let Some(sql) = &sql {
        let (fanned_out, took) = sql.settle(SETTLE_LIMIT).await?;
        if fanned_out > 0 {
            println!(
                "the server fanned out {fanned_out} events of the preparation in {:.1} s",
                took.as_secs_f64()
            );
        }
    }
    let idle_rss = proc_mb(Some(server_pid), "VmRSS:");

    let client = Arc::new(LoadClient::new(&server.base, &key.secret)?);
    let base = Arc::new(format!("/v2.2/stores/{store_id}/orders"));

    let (c, b) = (client.clone(), base.clone());
    let create: Op = Arc::new(move |n| {
        let (c, b) = (c.clone(), b.clone());
        Box::pin(async move {
            let body = Bytes::from_static(br#"{"lineItems":[{"id":"L","quantity":1}]}"#);
            c.post(format!("{b}/B-{}/fulfillments", n % written), body)
                .await
        })
    });
    // pgbench and HTTP creation alternate, `--pairs` times, on the same orders (the first
    // half). The server process stays up, idle, while pgbench runs, rather than being stopped
    // and started around it: its background work is then the same in both phases of a pair (its
    // dispatcher fans out the outbox events pgbench writes as it fans out its own), and the
    // HTTP runs after the first do not start from a cold process. Before each phase the bench
    // waits until the outbox has nothing left to fan out, so neither phase pays for the tail of
    // the other's events.
    let pgbench = db.schema.is_some() && args.runs(Phase::Pgbench);
    let mut pairs: Vec<(Option<f64>, Option<f64>)> = Vec::new();
    for pair in 1..=args.pairs {
        let label = if args.pairs > 1 {
            format!(" (pair {pair}/{})", args.pairs)
        } else {
            String::new()
        };
        let tps = if pgbench {
            settle(sql.as_ref()).await?;
            match run_pgbench(db, &store_id, written, args).await {
                Ok(tps) => {
                    println!("pgbench{label}: {tps:.0} tx/s");
                    Some(tps)
                }
                Err(e) => {
                    eprintln!("pgbench phase{label} skipped: {e:#}");
                    None
                }
            }
        } else {
            None
        };
        let http = if args.runs(Phase::HttpCreate) {
            settle(sql.as_ref()).await?;
            let name = if args.pairs > 1 {
                format!("http create fulfillment #{pair}")
            } else {
                "http create fulfillment".to_owned()
            };
            let result = phase(&name, args.concurrency, args.seconds, create.clone()).await;
            println!("http create fulfillment{label}: {:.0} req/s", result.rate());
            let rate = result.rate();
            results.push(result);
            Some(rate)
        } else {
            None
        };
        pairs.push((tps, http));
    }
    let rates = args
        .rates
        .iter()
        .filter(|r| **r > 0 && args.runs(Phase::HttpRates));
    for &rate in rates {
        results.push(
            fixed_rate(
                format!("http create @ {rate}/s"),
                rate,
                args.seconds,
                create.clone(),
            )
            .await,
        );
    }

    let (c, b) = (client.clone(), base.clone());
    let status: Op = Arc::new(move |n| {
        let (c, b) = (c.clone(), b.clone());
        Box::pin(async move {
            let i = n % written;
            let body = Bytes::from_static(br#"{"status":"in_transit","message":"bench"}"#);
            c.post(
                format!("{b}/B-{i}/fulfillments/F-{i}/shipment-status"),
                body,
            )
            .await
        })
    });
    if args.runs(Phase::HttpStatus) {
        results.push(
            phase(
                "http shipment status",
                args.concurrency,
                args.seconds,
                status,
            )
            .await,
        );
    }

    let (c, b) = (client.clone(), base.clone());
    let get: Op = Arc::new(move |n| {
        let (c, b) = (c.clone(), b.clone());
        Box::pin(async move {
            let i = read(n);
            c.get(format!("{b}/B-{i}")).await
        })
    });
    if args.runs(Phase::HttpGet) {
        results.push(phase("http get order", args.concurrency, args.seconds, get).await);
    }

    let c = client.clone();
    let floor: Op = Arc::new(move |_| {
        let c = c.clone();
        Box::pin(async move { c.get("/healthz".to_owned()).await })
    });
    if args.runs(Phase::HttpFloor) {
        results.push(
            phase(
                "http floor (/healthz)",
                args.concurrency,
                args.seconds,
                floor,
            )
            .await,
        );
    }
    let server_peak = proc_mb(Some(server_pid), "VmHWM:");
    let startup = server.startup;
    drop(server);

    println!();
    println!(
        "{} orders={} concurrency={} seconds/phase={}",
        db.label, args.orders, args.concurrency, args.seconds
    );
    println!(
        "{:<26} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "phase", "ok", "failed", "req/s", "p50 ms", "p99 ms", "p99.9 ms"
    );
    for r in &results {
        let ms = |q: f64| r.latency.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{:<26} {:>9} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            r.name,
            r.ok,
            r.failed,
            r.rate(),
            ms(0.5),
            ms(0.99),
            ms(0.999)
        );
    }
    let by_name = |name: &str| results.iter().find(|r| r.name == name);
    let http_rates: Vec<f64> = pairs.iter().filter_map(|(_, http)| *http).collect();
    let http_create = median(&http_rates);
    if let (Some(raw), Some(http)) = (by_name("raw create fulfillment"), http_create) {
        let of = if http_rates.len() > 1 {
            " (median HTTP rate)"
        } else {
            ""
        };
        println!(
            "HTTP/raw create-fulfillment ratio{of}: {:.2}",
            http / raw.rate()
        );
    }
    if args.pairs > 1 {
        println!(
            "alternated pairs (pgbench with {} clients, then HTTP create fulfillment, {} s each):",
            args.pgbench_clients, args.seconds
        );
        for (i, (tps, http)) in pairs.iter().enumerate() {
            let show = |v: &Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
            let ratio = match (tps, http) {
                (Some(tps), Some(http)) => format!("{:.2}", http / tps),
                _ => "-".to_owned(),
            };
            println!(
                "  pair {}: pgbench {} tx/s, HTTP {} req/s, HTTP/pgbench {ratio}",
                i + 1,
                show(tps),
                show(http)
            );
        }
    }
    let tps: Vec<f64> = pairs.iter().filter_map(|(tps, _)| *tps).collect();
    if let Some(median_tps) = median(&tps) {
        let ratios: Vec<f64> = pairs
            .iter()
            .filter_map(|pair| match pair {
                (Some(tps), Some(http)) => Some(http / tps),
                _ => None,
            })
            .collect();
        let (of, ratio_of) = if args.pairs > 1 {
            (
                format!(", median of {}", tps.len()),
                format!(" (median of {} pairs)", ratios.len()),
            )
        } else {
            (String::new(), String::new())
        };
        let ratio = median(&ratios)
            .map(|r| format!("; HTTP/pgbench ratio{ratio_of}: {r:.2}"))
            .unwrap_or_default();
        println!(
            "pgbench equivalent transaction ({} clients{of}): {median_tps:.0} tx/s{ratio}",
            args.pgbench_clients
        );
    }
    println!(
        "preparation: {:.0} orders+fulfillments/s",
        args.orders as f64 / prepare_secs
    );
    println!(
        "server start-up to ready with {} orders: {:.0} ms",
        args.orders,
        startup.as_secs_f64() * 1000.0
    );
    if let Some(mb) = idle_rss {
        println!("server RSS idle: {mb:.0} MB");
    }
    if let Some(mb) = server_peak {
        println!("server peak RSS under load: {mb:.0} MB");
    }
    if let Some(mb) = proc_mb(None, "VmHWM:") {
        println!("load generator peak RSS (raw phases ran here too): {mb:.0} MB");
    }
    // A fixed rate above what the server sustains makes requests wait past their timeouts:
    // those failures are the finding. At maximum rate nothing may fail.
    let failed: u64 = results
        .iter()
        .filter(|r| !r.name.contains(" @ "))
        .map(|r| r.failed)
        .sum();
    if failed > 0 {
        bail!("{failed} request(s) failed; the figures above are not valid");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
