//! Crash safety: runs `waybill serve` under mixed write load, kills it with SIGKILL at random
//! moments, and after every kill checks the database directly:
//!
//! - every write a client saw acknowledged (200) is there: orders, fulfillments, each
//!   shipment-status update (by its unique message) and each cancellation;
//! - the outbox is complete: every order has exactly `event_seq` outbox rows, numbered 1..n;
//! - the ledger holds: each line's `fulfilled` is the sum of its units in live fulfillments and
//!   never more than ordered.
//!
//! The next cycle restarts the server on the same database, so recovery is exercised each time.
//! Driven by `scripts/crash-test`; on PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set (in a
//! schema of its own, dropped afterwards), on a temporary SQLite file otherwise.
//!
//! ```text
//! crash_test --bin target/debug/waybill [--cycles 20] [--clients 4] [--seed N]
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use waybill_store::testing::TestDatabase;

/// What the clients saw acknowledged, across all cycles.
#[derive(Default)]
struct Acknowledged {
    orders: Vec<String>,
    /// Fulfillment id → order external id.
    fulfillments: Vec<(String, String)>,
    /// Messages of acknowledged shipment-status updates.
    updates: Vec<String>,
    /// Fulfillment id → acknowledged cancellations.
    cancels: HashMap<String, u32>,
    /// Requests whose outcome is unknown (the server died first).
    unknown: u64,
}

/// A tiny deterministic generator (xorshift), so a failing run can be replayed with `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Args {
    bin: String,
    cycles: u32,
    clients: u32,
    seed: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        bin: "target/debug/waybill".into(),
        cycles: 20,
        clients: 4,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bin" => args.bin = value,
            "--cycles" => args.cycles = value.parse()?,
            "--clients" => args.clients = value.parse()?,
            "--seed" => args.seed = value.parse::<u64>()? | 1,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

fn waybill(bin: &str, db: &str, rest: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(bin)
        .args(rest)
        .env("WAYBILL_DATABASE_URL", db)
        .env("WAYBILL_LOG", "warn")
        .output()
        .context("running waybill")?;
    ensure!(out.status.success(), "waybill {rest:?} failed: {out:?}");
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Starts `waybill serve` on port 0 and returns it with its base URL.
fn serve(bin: &str, db: &str) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--no-dispatcher"])
        .env("WAYBILL_DATABASE_URL", db)
        .env("WAYBILL_LOG", "info")
        // The load comes from one key; per-key limits are not what this measures.
        .env("WAYBILL_RATE_LIMIT", "0")
        .env("WAYBILL_MAX_IN_FLIGHT_PER_STORE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning waybill serve")?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return Ok((child, format!("http://{addr}")));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!("waybill serve did not start")
}

/// One client's writes until the server stops answering.
async fn client(
    id: u32,
    cycle: u32,
    seed: u64,
    base: String,
    store: String,
    secret: String,
    acks: Arc<Mutex<Acknowledged>>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let mut rng = Rng(seed);
    let root = format!("{base}/v2.2/stores/{store}/orders");
    for n in 0u32.. {
        let tag = format!("{cycle}-{id}-{n}");
        let pick = |rng: &mut Rng, list: &[String]| -> Option<String> {
            (!list.is_empty()).then(|| list[rng.below(list.len() as u64) as usize].clone())
        };
        let (orders, fulfillments) = {
            let a = acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            let recent_orders: Vec<String> = a.orders.iter().rev().take(50).cloned().collect();
            let recent: Vec<(String, String)> =
                a.fulfillments.iter().rev().take(100).cloned().collect();
            (recent_orders, recent)
        };
        let roll = rng.below(100);
        enum Op {
            Order(String),
            Fulfillment(String, String),
            Update(String),
            Cancel(String),
        }
        let (op, request) = if roll < 25 || orders.is_empty() {
            let external = format!("o-{tag}");
            let body = json!({
                "orderId": external, "createdAt": "2024-03-20T12:00:00Z",
                "lineItems": [
                    {"id": "a", "productId": "p", "title": "A", "quantity": 4},
                    {"id": "b", "productId": "p", "title": "B", "quantity": 2}
                ]
            });
            (Op::Order(external), http.post(&root).json(&body))
        } else if roll < 55 || fulfillments.is_empty() {
            let order = pick(&mut rng, &orders).unwrap_or_default();
            let fid = format!("f-{tag}");
            let line = if rng.below(2) == 0 { "a" } else { "b" };
            let body = json!({"fulfillmentId": fid,
                "lineItems": [{"id": line, "quantity": 1 + rng.below(2)}],
                "tracking": {"carrier": "UPS", "code": format!("1Z{tag}")}});
            (
                Op::Fulfillment(fid, order.clone()),
                http.post(format!("{root}/{order}/fulfillments"))
                    .json(&body),
            )
        } else {
            let (fid, order) = &fulfillments[rng.below(fulfillments.len() as u64) as usize];
            let url = format!("{root}/{order}/fulfillments/{fid}");
            if roll < 85 {
                let statuses = [
                    "in_transit",
                    "out_for_delivery",
                    "delivered",
                    "pre_transit",
                    "failure",
                    "delayed",
                ];
                let status = statuses[rng.below(statuses.len() as u64) as usize];
                let message = format!("m-{tag}");
                (
                    Op::Update(message.clone()),
                    http.post(format!("{url}/shipment-status"))
                        .json(&json!({"status": status, "message": message})),
                )
            } else {
                (Op::Cancel(fid.clone()), http.post(format!("{url}/cancel")))
            }
        };
        let response = match request.bearer_auth(&secret).send().await {
            Ok(r) => r,
            Err(_) => {
                // The server died with this request in flight: its outcome is unknown.
                acks.lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .unknown += 1;
                return Ok(());
            }
        };
        let status = response.status().as_u16();
        let body = match response.text().await {
            Ok(b) => b,
            Err(_) => {
                acks.lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .unknown += 1;
                return Ok(());
            }
        };
        let mut a = acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        match (op, status) {
            (Op::Order(id), 200) => a.orders.push(id),
            (Op::Fulfillment(id, order), 200) => a.fulfillments.push((id, order)),
            (Op::Update(message), 200) => a.updates.push(message),
            (Op::Cancel(fid), 200) => *a.cancels.entry(fid).or_default() += 1,
            // Refusals the load makes on purpose: over-fulfillment (400), reviving a
            // fulfillment whose units were taken (400), cancelling a delivered one (409).
            (Op::Fulfillment(..) | Op::Update(_), 400) | (Op::Cancel(_), 409) => {}
            (_, status) => bail!("unexpected {status}: {body}"),
        }
    }
    Ok(())
}

/// The database as the checks read it.
struct Snapshot {
    orders: HashSet<String>,
    fulfillments: HashSet<String>,
    messages: HashSet<String>,
    cancels: HashMap<String, u32>,
    /// (order, event_seq, outbox rows, highest outbox seq)
    outbox: Vec<(String, i64, i64, i64)>,
    /// (order, line, quantity, fulfilled, units in live fulfillments)
    ledger: Vec<(String, String, i64, i64, i64)>,
}

const Q_ORDERS: &str = "SELECT external_id FROM orders";
const Q_FULFILLMENTS: &str = "SELECT id FROM fulfillments";
const Q_MESSAGES: &str = "SELECT message FROM tracking_events WHERE message LIKE 'm-%'";
const Q_CANCELS: &str = "SELECT fulfillment_id, COUNT(*) FROM tracking_events \
     WHERE status = 'cancelled' GROUP BY fulfillment_id";
const Q_OUTBOX: &str = "SELECT o.id, o.event_seq, COUNT(x.seq), COALESCE(MAX(x.seq), 0) \
     FROM orders o LEFT JOIN outbox x ON x.order_id = o.id GROUP BY o.id, o.event_seq";
const Q_LEDGER: &str = "SELECT li.order_id, li.id, li.quantity, li.fulfilled, \
     COALESCE((SELECT SUM(fl.quantity) FROM fulfillment_lines fl \
       JOIN fulfillments f ON f.store_id = fl.store_id AND f.id = fl.fulfillment_id \
       WHERE f.order_id = li.order_id AND fl.line_item_id = li.id AND f.status <> 'cancelled'), 0) \
     FROM line_items li";

fn snapshot_sqlite(path: &std::path::Path) -> anyhow::Result<Snapshot> {
    let conn = rusqlite::Connection::open(path)?;
    let strings = |sql: &str| -> anyhow::Result<HashSet<String>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let orders = strings(Q_ORDERS)?;
    let fulfillments = strings(Q_FULFILLMENTS)?;
    let messages = strings(Q_MESSAGES)?;
    let mut stmt = conn.prepare(Q_CANCELS)?;
    let cancels = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u32))
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(Q_OUTBOX)?;
    let outbox = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(Q_LEDGER)?;
    let ledger = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(Snapshot {
        orders,
        fulfillments,
        messages,
        cancels,
        outbox,
        ledger,
    })
}

async fn snapshot_postgres(url: &str) -> anyhow::Result<Snapshot> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(connection);
    // Cast everything to text / bigint so one row reader serves both id types.
    let text = |sql: &str| sql.replace("SELECT o.id,", "SELECT o.id::text,");
    let strings = |rows: Vec<tokio_postgres::Row>| -> HashSet<String> {
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    };
    let orders = strings(client.query(Q_ORDERS, &[]).await?);
    let fulfillments = strings(client.query(Q_FULFILLMENTS, &[]).await?);
    let messages = strings(client.query(Q_MESSAGES, &[]).await?);
    let cancels = client
        .query(Q_CANCELS, &[])
        .await?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u32))
        .collect();
    let outbox = client
        .query(
            &text(Q_OUTBOX).replace(
                "COUNT(x.seq), COALESCE(MAX(x.seq), 0)",
                "COUNT(x.seq)::bigint, COALESCE(MAX(x.seq), 0)::bigint",
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let ledger_sql = Q_LEDGER
        .replace("SELECT li.order_id,", "SELECT li.order_id::text,")
        .replace(
            "li.quantity, li.fulfilled,",
            "li.quantity::bigint, li.fulfilled::bigint,",
        )
        .replace("'cancelled'), 0)", "'cancelled'), 0)::bigint");
    let ledger = client
        .query(&ledger_sql, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    drop(client);
    let _ = task.await;
    Ok(Snapshot {
        orders,
        fulfillments,
        messages,
        cancels,
        outbox,
        ledger,
    })
}

/// Checks the snapshot against what was acknowledged; returns how many facts were checked.
fn check(s: &Snapshot, a: &Acknowledged) -> anyhow::Result<u64> {
    for o in &a.orders {
        ensure!(s.orders.contains(o), "acknowledged order {o} was lost");
    }
    for (f, _) in &a.fulfillments {
        ensure!(
            s.fulfillments.contains(f),
            "acknowledged fulfillment {f} was lost"
        );
    }
    for m in &a.updates {
        ensure!(
            s.messages.contains(m),
            "acknowledged status update {m} was lost"
        );
    }
    for (f, n) in &a.cancels {
        let stored = s.cancels.get(f).copied().unwrap_or(0);
        ensure!(
            stored >= *n,
            "fulfillment {f}: {n} cancellations acknowledged, {stored} stored"
        );
    }
    for (order, event_seq, rows, max_seq) in &s.outbox {
        ensure!(
            event_seq == rows && event_seq == max_seq,
            "order {order}: event_seq {event_seq} but {rows} outbox rows (highest seq {max_seq})"
        );
    }
    for (order, line, quantity, fulfilled, live) in &s.ledger {
        ensure!(
            fulfilled == live && fulfilled <= quantity,
            "order {order} line {line}: fulfilled {fulfilled}, live units {live}, ordered {quantity}"
        );
    }
    Ok((a.orders.len() + a.fulfillments.len() + a.updates.len() + a.cancels.len()) as u64)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let db = TestDatabase::new().await?;
    let backend = if waybill_store::sqlite::path_from_url(&db.url).is_some() {
        "sqlite"
    } else {
        "postgres"
    };
    println!(
        "crash test: {} cycles on {backend}, {} clients, seed {}",
        args.cycles, args.clients, args.seed
    );
    let created = waybill(&args.bin, &db.url, &["stores", "create", "--name", "crash"])?;
    let store = created["storeId"].as_str().context("storeId")?.to_owned();
    let secret = created["apiSecret"]
        .as_str()
        .context("apiSecret")?
        .to_owned();
    let acks = Arc::new(Mutex::new(Acknowledged::default()));
    let mut rng = Rng(args.seed);
    let started = Instant::now();
    let mut checked = 0u64;
    for cycle in 0..args.cycles {
        let (mut child, base) = serve(&args.bin, &db.url)?;
        let mut clients = Vec::new();
        for c in 0..args.clients {
            clients.push(tokio::spawn(client(
                c,
                cycle,
                rng.next(),
                base.clone(),
                store.clone(),
                secret.clone(),
                acks.clone(),
            )));
        }
        // Kill at a random moment: sometimes at once, mostly mid-load.
        tokio::time::sleep(Duration::from_millis(rng.below(400))).await;
        child.kill().context("SIGKILL")?;
        child.wait()?;
        for c in clients {
            c.await??;
        }
        let snapshot = match waybill_store::sqlite::path_from_url(&db.url) {
            Some(path) => snapshot_sqlite(&path)?,
            None => snapshot_postgres(&db.url).await?,
        };
        let a = acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let facts = check(&snapshot, &a).with_context(|| format!("cycle {cycle}"))?;
        checked += facts;
        if cycle % 50 == 49 || cycle + 1 == args.cycles {
            println!(
                "cycle {}: {} orders, {} fulfillments, {} status updates, {} cancellations acknowledged; {} in flight at a kill",
                cycle + 1,
                a.orders.len(),
                a.fulfillments.len(),
                a.updates.len(),
                a.cancels.values().sum::<u32>(),
                a.unknown
            );
        }
    }
    let a = acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let writes = a.orders.len() + a.fulfillments.len() + a.updates.len();
    println!(
        "crash test passed: {} cycles on {backend} in {:.1}s; {} acknowledged writes ({} cancellations), {} checks of acknowledged writes after kills, outbox and ledger verified after every kill",
        args.cycles,
        started.elapsed().as_secs_f64(),
        writes + a.cancels.values().sum::<u32>() as usize,
        a.cancels.values().sum::<u32>(),
        checked
    );
    Ok(())
}
