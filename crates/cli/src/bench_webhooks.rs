//! `waybill bench-webhooks`: webhook deliveries per second from a temporary SQLite database to
//! a receiver on loopback that always answers 200 at once. It measures the dispatcher (fan-out,
//! claiming, signing, HTTP, recording each attempt), not the receiver.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use waybill_core::{OrderDetails, OrderRef};
use waybill_server::webhooks::{Dispatcher, DispatcherConfig, UrlPolicy, sign};
use waybill_store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use waybill_store::{NewWebhook, OrderUpdate, Store, WebhookFlavor};

#[derive(Debug, clap::Args)]
pub struct BenchWebhooksArgs {
    /// Events to deliver (spread evenly over the orders).
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Orders the events belong to (each order's events go out one at a time, in order).
    #[arg(long, default_value_t = 500)]
    orders: u64,
    /// Deliveries in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// SQLite durability: full (default) or normal.
    #[arg(long, default_value = "full")]
    synchronous: String,
}

pub async fn run(args: BenchWebhooksArgs) -> anyhow::Result<()> {
    if args.events == 0 || args.orders == 0 || args.concurrency == 0 || args.orders > args.events {
        bail!("--events, --orders and --concurrency must be positive, and orders <= events");
    }
    let synchronous = match args.synchronous.as_str() {
        "full" => Synchronous::Full,
        "normal" => Synchronous::Normal,
        other => bail!("--synchronous must be full or normal, not {other}"),
    };
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            &dir.path().join("bench.db"),
            SqliteOptions {
                synchronous,
                ..SqliteOptions::default()
            },
        )
        .await?,
    );

    // The receiver: count and answer 200.
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (shop, _) = store.create_store("webhook bench").await?;
    store
        .create_webhook(
            &shop.id,
            NewWebhook {
                flavor: WebhookFlavor::Redo,
                url: format!("http://{addr}/hook"),
                topics: vec!["order".into()],
                external_id: None,
                bearer_token: Some("bench".into()),
                secret: sign::generate_secret(),
            },
        )
        .await?;

    eprintln!(
        "preparing {} events over {} orders...",
        args.events, args.orders
    );
    let per_order = args.events / args.orders;
    let extra = args.events % args.orders;
    let mut writers = tokio::task::JoinSet::new();
    for o in 0..args.orders {
        let store = store.clone();
        let shop = shop.id.clone();
        let updates = per_order - 1 + u64::from(o < extra);
        writers.spawn(async move {
            let order = store
                .create_order(&shop, crate::bench::new_order(o)?)
                .await?;
            let id = OrderRef::new(order.id.to_string());
            for _ in 0..updates {
                store
                    .update_order(
                        &shop,
                        &id,
                        OrderUpdate {
                            created_at: None,
                            details: OrderDetails::default(),
                            line_items: vec![],
                        },
                    )
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = writers.join_next().await {
        done??;
    }

    let config = DispatcherConfig {
        max_in_flight: args.concurrency,
        timeout: Duration::from_secs(5),
        policy: Arc::new(UrlPolicy::allow_all()),
        ..DispatcherConfig::default()
    };
    let dispatcher = Dispatcher::new(store.clone(), config)?;
    let started = Instant::now();
    let task = tokio::spawn(dispatcher.run(std::future::pending()));
    let deadline = started + Duration::from_secs(600);
    while received.load(Ordering::Relaxed) < args.events {
        if Instant::now() > deadline {
            task.abort();
            bail!(
                "only {} of {} deliveries arrived within 10 minutes",
                received.load(Ordering::Relaxed),
                args.events
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    task.abort();
    let rate = args.events as f64 / elapsed.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "bench": "webhooks",
            "events": args.events,
            "orders": args.orders,
            "concurrency": args.concurrency,
            "synchronous": args.synchronous,
            "seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "deliveriesPerSecond": rate.round(),
        })
    );
    Ok(())
}
