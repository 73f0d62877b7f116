//! `waybill bench`: throughput and latency of the write and read paths, straight through the
//! store (the raw baseline) and over HTTP on loopback, side by side from one run.
//!
//! The load generator runs in this process, on the same cores as the server, as the
//! performance targets assume. Each phase runs closed-loop at maximum rate: `concurrency`
//! workers each send their next request when the previous one is answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::json;
use waybill_core::fulfillment::InitialTracking;
use waybill_core::order::LineItemExtra;
use waybill_core::{
    NewFulfillment, NewLineItem, NewOrder, OrderDetails, OrderRef, Quantity, ShipmentStatus, time,
};
use waybill_server::AppState;
use waybill_store::Store;
use waybill_store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Orders prepared before measuring.
    #[arg(long, default_value_t = 100_000)]
    orders: u64,
    /// Concurrent workers per phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// SQLite durability: full (default, survives power loss) or normal.
    #[arg(long, default_value = "full")]
    synchronous: String,
}

type Op = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

struct PhaseResult {
    name: &'static str,
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

async fn phase(name: &'static str, concurrency: usize, seconds: u64, op: Op) -> PhaseResult {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (next, op) = (next.clone(), op.clone());
        workers.push(tokio::spawn(async move {
            let mut histogram =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let t0 = Instant::now();
                if op(n).await {
                    ok += 1;
                } else {
                    failed += 1;
                }
                let _ = histogram.record(t0.elapsed().as_micros().max(1) as u64);
            }
            (ok, failed, histogram)
        }));
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let (mut ok, mut failed) = (0, 0);
    for worker in workers {
        if let Ok((o, f, h)) = worker.await {
            ok += o;
            failed += f;
            let _ = latency.add(h);
        }
    }
    PhaseResult {
        name,
        ok,
        failed,
        elapsed: started.elapsed(),
        latency,
    }
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
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

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.orders == 0 || args.concurrency == 0 || args.seconds == 0 {
        bail!("--orders, --concurrency and --seconds must be positive");
    }
    let synchronous = match args.synchronous.as_str() {
        "full" => Synchronous::Full,
        "normal" => Synchronous::Normal,
        other => bail!("--synchronous must be full or normal, not {other}"),
    };
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let options = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("bench.db"), options)
            .await
            .context("opening the bench database")?,
    );
    let (record, key) = store.create_store("bench").await?;
    let store_id = Arc::new(record.id);

    println!(
        "preparing {} orders (each with one line of 1000 units and one fulfillment)...",
        args.orders
    );
    let prepared = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (store, store_id, next) = (store.clone(), store_id.clone(), next.clone());
        let total = args.orders;
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
    println!("prepared in {:.1} s", prepared.elapsed().as_secs_f64());

    let orders = args.orders;
    let mut results = Vec::new();

    let raw_store = store.clone();
    let raw_id = store_id.clone();
    let raw: Op = Arc::new(move |n| {
        let (store, store_id) = (raw_store.clone(), raw_id.clone());
        Box::pin(async move {
            let Ok(f) = one_unit(None) else { return false };
            store
                .create_fulfillment(&store_id, &OrderRef::new(format!("B-{}", n % orders)), f)
                .await
                .is_ok()
        })
    });
    results.push(
        phase(
            "raw create fulfillment",
            args.concurrency,
            args.seconds,
            raw,
        )
        .await,
    );

    let read_store = store.clone();
    let read_id = store_id.clone();
    let raw_get: Op = Arc::new(move |n| {
        let (store, store_id) = (read_store.clone(), read_id.clone());
        Box::pin(async move {
            let i = orders - 1 - (n % orders.div_ceil(2));
            store
                .get_order(&store_id, &OrderRef::new(format!("B-{i}")))
                .await
                .is_ok()
        })
    });
    results.push(phase("raw get order", args.concurrency, args.seconds, raw_get).await);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(waybill_server::serve(
        listener,
        AppState::new(store.clone()),
        std::future::pending(),
    ));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let base = Arc::new(format!("http://{addr}/v2.2/stores/{store_id}/orders"));
    let secret = Arc::new(key.secret.clone());

    let (c, b, s) = (client.clone(), base.clone(), secret.clone());
    let create: Op = Arc::new(move |n| {
        let (c, b, s) = (c.clone(), b.clone(), s.clone());
        Box::pin(async move {
            c.post(format!("{b}/B-{}/fulfillments", n % orders))
                .bearer_auth(s.as_str())
                .json(&json!({"lineItems": [{"id": "L", "quantity": 1}]}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
    });
    results.push(
        phase(
            "http create fulfillment",
            args.concurrency,
            args.seconds,
            create,
        )
        .await,
    );

    let (c, b, s) = (client.clone(), base.clone(), secret.clone());
    let status: Op = Arc::new(move |n| {
        let (c, b, s) = (c.clone(), b.clone(), s.clone());
        Box::pin(async move {
            let i = n % orders;
            c.post(format!("{b}/B-{i}/fulfillments/F-{i}/shipment-status"))
                .bearer_auth(s.as_str())
                .json(&json!({"status": "in_transit", "message": "bench"}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
    });
    results.push(
        phase(
            "http shipment status",
            args.concurrency,
            args.seconds,
            status,
        )
        .await,
    );

    let (c, b, s) = (client.clone(), base.clone(), secret.clone());
    let get: Op = Arc::new(move |n| {
        let (c, b, s) = (c.clone(), b.clone(), s.clone());
        Box::pin(async move {
            // Orders not touched by the write phases: one line, one fulfillment, one entry.
            let i = orders - 1 - (n % orders.div_ceil(2));
            c.get(format!("{b}/B-{i}"))
                .bearer_auth(s.as_str())
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
    });
    results.push(phase("http get order", args.concurrency, args.seconds, get).await);

    println!();
    println!(
        "sqlite synchronous={} orders={} concurrency={} seconds/phase={}",
        args.synchronous, args.orders, args.concurrency, args.seconds
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
    if let (Some(raw), Some(http)) = (results.first(), results.get(2)) {
        println!(
            "HTTP/raw create-fulfillment ratio: {:.2}",
            http.rate() / raw.rate()
        );
    }
    if let Some(mb) = peak_rss_mb() {
        println!("peak RSS (server and load generator together): {mb:.0} MB");
    }
    let failed: u64 = results.iter().map(|r| r.failed).sum();
    if failed > 0 {
        bail!("{failed} request(s) failed; the figures above are not valid");
    }
    Ok(())
}
