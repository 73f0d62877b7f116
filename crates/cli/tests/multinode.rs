//! Several `waybill serve` processes on one PostgreSQL database, and one of them killed with
//! SIGKILL under load (docs/RELIABILITY.md, "Several nodes on one database").
//!
//! Three real `waybill serve` processes share one fresh schema, each with its webhook
//! dispatcher, automation worker and scheduler on (short leases, fast retries). A real receiver
//! on loopback is subscribed to every Redo topic, and is the target of an automation's webhook
//! action on `delivered`; it checks every signature. A client spreads writes round-robin over the nodes
//! with a bounded number of workers: orders, fulfillments racing for the same units from three
//! nodes at once, shipment statuses, each with an `Idempotency-Key` so that a request lost with
//! a node is retried on another. A third of the way through, one node is killed with SIGKILL;
//! two thirds of the way through, it is started again. Afterwards:
//!
//! - every acknowledged write is there, as acknowledged;
//! - no line is fulfilled beyond its ordered units, and each line's count is its live
//!   fulfillments' units;
//! - every outbox event is delivered (answered 2xx) at least once, and no delivery fails;
//! - for every subscription and order, first deliveries arrive in `seq` order;
//! - the automation ran once per fulfillment that reached `delivered`, and each run's webhook
//!   reached the receiver;
//! - an event is delivered twice only if its first delivery was answered before the kill (the
//!   killed node held its lease); the claims lost with the node are at most its
//!   `webhook_max_in_flight`, and the duplicates at most those; no event is ever in flight to
//!   the receiver twice at once;
//! - an `Idempotency-Key` whose request died with the node is refused as in progress for at
//!   most its lease (`waybill_server::idempotency::LEASE`, 10 s), then runs on another node, so
//!   no write is left with an unknown outcome;
//! - shipments already late when created (in transit for five days, ETA three days ago), some
//!   while the killed node is down, get `stalled_in_transit` and `delayed` exactly once each
//!   from the schedulers of whichever nodes are up (their claims are per transaction: a
//!   killed node holds nothing another must wait out).
//!
//! The test needs PostgreSQL: without `WAYBILL_TEST_POSTGRES_URL` at build time it is ignored,
//! with the reason in the test summary (see build.rs); run without it anyway, it fails.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use waybill_store::WebhookFlavor;
use waybill_store::testing::{Backend, POSTGRES_ENV, TestDatabase};
use waybill_store::webhooks::{REDO_TOPICS, topic_selects};

const BIN: &str = env!("CARGO_BIN_EXE_waybill");

/// Processes sharing the database.
const NODES: usize = 3;
/// The node killed mid-load (and started again later).
const VICTIM: usize = 1;
/// Each dispatcher's `webhook_max_in_flight`: the most leases one node holds at once, and so
/// the most events its death can leave delivered but not recorded.
const MAX_IN_FLIGHT: usize = 8;
/// Each dispatcher's lease and timeout: a killed node's deliveries are sent again after this.
const LEASE: &str = "4s";
const TIMEOUT: &str = "2s";
/// The receiver's path for the automation's webhook action.
const AUTOMATION: &str = "automation";
/// Orders written, and the workers writing them at once.
const ORDERS: usize = 240;
const WORKERS: usize = 8;
/// The load stops starting orders after this, whatever is left.
const LOAD_LIMIT: Duration = Duration::from_secs(60);
/// After the load, the longest wait for every event to be delivered.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// Every this many orders, one more order gets a shipment that is late from the start.
const LATE_EVERY: usize = 6;
/// How often each node's scheduler looks for due time-based events.
const SCHEDULER_INTERVAL: &str = "500ms";
/// What a millisecond count of a day is.
const DAY_MS: i64 = 86_400_000;

/// The tests here are ignored unless this crate was built with `WAYBILL_TEST_POSTGRES_URL` set
/// (see build.rs). Run without it anyway (the test binary started by hand), they fail rather
/// than pass having tested nothing.
fn require_postgres() {
    assert_eq!(
        Backend::from_env(),
        Backend::Postgres,
        "this test needs PostgreSQL: set {POSTGRES_ENV}"
    );
}

// ---------------------------------------------------------------- nodes

/// One `waybill serve` process.
struct Node {
    child: Child,
    base: String,
    /// Webhook attempts this process logged (its dispatcher's share of the work).
    attempts: Arc<AtomicUsize>,
    /// Time-based events its scheduler logged as raised.
    raised: Arc<AtomicUsize>,
    /// Log lines at ERROR level, and panics.
    errors: Arc<Mutex<Vec<String>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `waybill` with no WAYBILL_* variable from the environment but the database.
fn command(db_url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("WAYBILL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("WAYBILL_DATABASE_URL", db_url);
    cmd
}

/// Starts `waybill serve` on a free loopback port with its dispatcher on, and waits for its
/// address in the start-up log.
fn start_node(db_url: &str) -> Node {
    let mut child = command(db_url)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env(
            "WAYBILL_LOG",
            "info,waybill_server::webhooks::dispatcher=debug,tower_http=warn,tokio_postgres=warn",
        )
        .env("WAYBILL_PG_POOL_SIZE", "4")
        .env("WAYBILL_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("WAYBILL_WEBHOOK_TIMEOUT", TIMEOUT)
        .env("WAYBILL_WEBHOOK_LEASE", LEASE)
        .env(
            "WAYBILL_WEBHOOK_RETRY_SCHEDULE",
            "0s,100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
        )
        .env("WAYBILL_WEBHOOK_RETRY_JITTER", "0")
        .env("WAYBILL_WEBHOOK_MAX_IN_FLIGHT", MAX_IN_FLIGHT.to_string())
        .env("WAYBILL_AUTOMATION_LEASE", LEASE)
        .env("WAYBILL_SCHEDULER_INTERVAL", SCHEDULER_INTERVAL)
        .env("WAYBILL_SHUTDOWN_GRACE", "2")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn waybill serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            let attempts = Arc::new(AtomicUsize::new(0));
            let raised = Arc::new(AtomicUsize::new(0));
            let errors = Arc::new(Mutex::new(Vec::new()));
            let (a, r, e) = (attempts.clone(), raised.clone(), errors.clone());
            // Keep reading the log, so the process never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    if line.contains("\"webhook attempt\"") {
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    if line.contains("time-based shipment events raised") {
                        r.fetch_add(raised_in(&line), Ordering::Relaxed);
                    }
                    if line.contains("\"level\":\"ERROR\"") || line.contains("panicked") {
                        e.lock().unwrap().push(line);
                    }
                }
            });
            return Node {
                child,
                base: format!("http://{addr}"),
                attempts,
                raised,
                errors,
            };
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("waybill serve did not report its address: {seen:#?}");
}

/// Time-based events the nodes other than the victim have logged as raised.
fn survivors_raised(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != VICTIM)
        .map(|(_, n)| n.raised.load(Ordering::Relaxed))
        .sum()
}

/// The count of a `time-based shipment events raised` log line (`"raised":N`).
fn raised_in(line: &str) -> usize {
    line.split("\"raised\":")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Starts `count` nodes at once (they race to migrate the new schema).
fn start_nodes(db_url: &str, count: usize) -> Vec<Node> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..count).map(|_| s.spawn(|| start_node(db_url))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// `waybill stores create`: the store's id and API secret.
fn create_store(db_url: &str) -> (String, String) {
    let out = command(db_url)
        .args(["stores", "create", "--name", "Multinode"])
        .env("WAYBILL_LOG", "warn")
        .output()
        .expect("run waybill stores create");
    assert!(out.status.success(), "{out:?}");
    let created: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    (
        created["storeId"].as_str().expect("storeId").to_owned(),
        created["apiSecret"].as_str().expect("apiSecret").to_owned(),
    )
}

// ---------------------------------------------------------------- the webhook receiver

#[derive(Clone)]
struct Receipt {
    topic: String,
    headers: HashMap<String, String>,
    body: Bytes,
    /// When the request arrived, and when the receiver answered (`None`: the sender went away
    /// before the answer).
    start: Instant,
    end: Option<Instant>,
    /// Answered 2xx.
    ok: bool,
}

impl Receipt {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a webhook body is JSON")
    }
}

#[derive(Default)]
struct Receiver {
    receipts: Mutex<Vec<Receipt>>,
    /// Events already refused once (each event is refused at most once).
    refused: Mutex<HashSet<String>>,
}

/// A small deterministic hash, to pick answer times and refusals from the event id.
fn spread(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h: u64, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Takes a delivery: answers within 5–45 ms (so a node usually holds leases when it dies),
/// and refuses (503) the first attempt of about one
/// event in 20, so that retries (which may go out from another node) are part of the run.
async fn hook(
    State(receiver): State<Arc<Receiver>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let id = headers.get("webhook-id").cloned().unwrap_or_default();
    let index = {
        let mut receipts = receiver.receipts.lock().unwrap();
        receipts.push(Receipt {
            topic,
            headers,
            body,
            start: Instant::now(),
            end: None,
            ok: false,
        });
        receipts.len() - 1
    };
    let h = spread(&id);
    tokio::time::sleep(Duration::from_millis(5 + h % 41)).await;
    let refuse = h % 20 == 7 && receiver.refused.lock().unwrap().insert(id);
    let mut receipts = receiver.receipts.lock().unwrap();
    receipts[index].end = Some(Instant::now());
    receipts[index].ok = !refuse;
    if refuse {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// Starts the receiver on loopback; returns it and its base URL (`…/hook/{topic}`).
async fn start_receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook/{topic}", axum::routing::post(hook))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let base = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (receiver, base)
}

/// Checks a Standard Webhooks signature as a receiver would: `v1,` and the base64 HMAC-SHA256
/// of `id.timestamp.body` under the secret's key.
fn signature_valid(secret: &str, r: &Receipt) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(r.header("webhook-id").as_bytes());
    mac.update(b".");
    mac.update(r.header("webhook-timestamp").as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.header("webhook-signature")
        .split(' ')
        .any(|s| s == expected)
}

// ---------------------------------------------------------------- the client

#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    connection_errors: AtomicUsize,
    /// 409 "in progress" (the key's first request died with its node), 429 and 503: waited
    /// and retried.
    waits: AtomicUsize,
    /// Writes given up without an answer: their outcome is unknown, so they do not count.
    unknown: AtomicUsize,
    acknowledged: AtomicUsize,
    /// Fulfillments refused because another one took the units first.
    race_lost: AtomicUsize,
    /// Answers no step expected (the test fails if there are any).
    unexpected: Mutex<Vec<String>>,
    /// Keys refused as in progress (their first request died with its node): how long from
    /// the first refusal until the key ran again (`None`: it never did within the bound).
    key_waits: Mutex<Vec<Option<Duration>>>,
}

enum Reply {
    /// 2xx: acknowledged.
    Ack,
    /// Refused with this status; `after_lost` if an earlier try of the same write went to a
    /// node that died (so a 409 may mean the lost try had committed).
    Refused(u16, Value, bool),
    /// No answer within the bounds: the outcome is unknown.
    Unknown,
}

struct Cluster {
    http: reqwest::Client,
    nodes: Mutex<Vec<String>>,
    next: AtomicUsize,
    keys: AtomicUsize,
    store: String,
    secret: String,
    stats: Stats,
}

impl Cluster {
    fn base(&self, node: usize) -> String {
        self.nodes.lock().unwrap()[node % NODES].clone()
    }

    /// The node for a request: `preferred`, or the next one round-robin.
    fn pick(&self, preferred: Option<usize>) -> usize {
        preferred.unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed)) % NODES
    }

    /// POSTs a write with a fresh `Idempotency-Key`. A connection error (the node is down, or
    /// died with the request) is retried at once on the next node with the same key; 409 "in
    /// progress", 429 and 503 are retried after a pause. Bounded: 15 s per write.
    async fn write(&self, path: &str, body: &Value, preferred: Option<usize>) -> Reply {
        let key = format!("mn-{}", self.keys.fetch_add(1, Ordering::Relaxed));
        let mut node = self.pick(preferred);
        let mut lost = false;
        let mut refused_since: Option<Instant> = None;
        let deadline = Instant::now() + Duration::from_secs(15);
        let reply = loop {
            if Instant::now() >= deadline {
                break Reply::Unknown;
            }
            let url = format!("{}/v2.2/stores/{}{path}", self.base(node), self.store);
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .http
                .post(url)
                .bearer_auth(&self.secret)
                .header("idempotency-key", &key)
                .json(body)
                .send()
                .await;
            let answer = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    resp.bytes().await.map(|b| (status, b))
                }
                Err(e) => Err(e),
            };
            let (status, bytes) = match answer {
                Ok(a) => a,
                Err(_) => {
                    self.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                    lost = true;
                    node = (node + 1) % NODES;
                    continue;
                }
            };
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let in_progress = status == 409 && value.to_string().contains("still in progress");
            if in_progress {
                refused_since.get_or_insert_with(Instant::now);
            }
            if in_progress || status == 429 || status == 503 {
                self.stats.waits.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(150)).await;
                node = (node + 1) % NODES;
                continue;
            }
            if (200..300).contains(&status) {
                self.stats.acknowledged.fetch_add(1, Ordering::Relaxed);
                break Reply::Ack;
            }
            break Reply::Refused(status, value, lost);
        };
        if let Some(since) = refused_since {
            let waited = (!matches!(reply, Reply::Unknown)).then(|| since.elapsed());
            self.stats.key_waits.lock().unwrap().push(waited);
        }
        if matches!(reply, Reply::Unknown) {
            self.stats.unknown.fetch_add(1, Ordering::Relaxed);
        }
        reply
    }

    /// GETs a resource, round-robin, retrying a node that is down on the next one.
    async fn get(&self, path: &str) -> (u16, Value) {
        let mut node = self.pick(None);
        for _ in 0..(3 * NODES) {
            let url = format!("{}/v2.2/stores/{}{path}", self.base(node), self.store);
            let sent = self.http.get(url).bearer_auth(&self.secret).send().await;
            if let Ok(resp) = sent {
                let status = resp.status().as_u16();
                if let Ok(value) = resp.json::<Value>().await {
                    return (status, value);
                }
            }
            node = (node + 1) % NODES;
        }
        panic!("GET {path}: no node answered");
    }

    fn unexpected(&self, what: String) {
        self.stats.unexpected.lock().unwrap().push(what);
    }
}

/// What the client saw acknowledged for one order.
#[derive(Default, Debug)]
struct AckedOrder {
    /// Fulfillment id → (line → units, acknowledged status messages).
    fulfillments: BTreeMap<String, (BTreeMap<String, u64>, Vec<String>)>,
}

/// The units each line of an order has: a ×3, b ×2.
const ORDERED: [(&str, u64); 2] = [("a", 3), ("b", 2)];

/// Three fulfillments that race for one order's units: any two of them exceed a line except
/// the first with the third, so each race has losers.
fn racing_fulfillments() -> [Vec<(&'static str, u64)>; 3] {
    [
        vec![("a", 2)],
        vec![("a", 2), ("b", 1)],
        vec![("a", 1), ("b", 2)],
    ]
}

/// A shipment acknowledged late from the start.
struct LateShipment {
    fulfillment: String,
    /// When it was acknowledged, on the test's clock and as Unix milliseconds.
    acked: Instant,
    acked_ms: i64,
}

/// One order with a shipment that is late from the start: in transit since five days ago
/// (past the default 72 h stall threshold) with an ETA three days ago, so `stalled_in_transit`
/// and `delayed` are both due at once, for the nodes' schedulers to raise.
async fn run_late_shipment(cluster: &Cluster, i: usize, late: &Mutex<Vec<LateShipment>>) {
    let order = format!("MN-LATE-{i:04}");
    let body = json!({"orderId": order, "createdAt": "2026-12-07T12:00:00Z", "lineItems": [
        {"id": "a", "productId": "p", "title": "A", "quantity": 1}]});
    match cluster.write("/orders", &body, None).await {
        Reply::Ack => {}
        Reply::Refused(409, _, true) | Reply::Unknown => return,
        Reply::Refused(status, value, _) => {
            cluster.unexpected(format!("create {order}: {status} {value}"));
            return;
        }
    }
    let now = waybill_core::time::to_millis(waybill_core::time::now());
    let since = waybill_core::time::format(waybill_core::time::from_millis(now - 5 * DAY_MS));
    let eta = waybill_core::time::format(waybill_core::time::from_millis(now - 3 * DAY_MS));
    let fulfillment = format!("{order}-f");
    let body = json!({
        "fulfillmentId": fulfillment,
        "lineItems": [{"id": "a", "quantity": 1}],
        "tracking": {"carrier": "FedEx", "code": format!("{:012}", 200_000_000 + i)},
        "useDummyTracking": true,
        "initialTracking": {"status": "in_transit", "datetime": since,
                            "estimatedDeliveryDate": &eta[..10]},
    });
    match cluster
        .write(&format!("/orders/{order}/fulfillments"), &body, None)
        .await
    {
        Reply::Ack => late.lock().unwrap().push(LateShipment {
            fulfillment,
            acked: Instant::now(),
            acked_ms: waybill_core::time::to_millis(waybill_core::time::now()),
        }),
        Reply::Refused(409, _, true) | Reply::Unknown => {}
        Reply::Refused(status, value, _) => {
            cluster.unexpected(format!("late fulfillment {fulfillment}: {status} {value}"));
        }
    }
}

/// One order's writes: create it, race three fulfillments for its units from three different
/// nodes at once, then move each acknowledged fulfillment in transit and to delivered.
async fn run_order(
    cluster: &Cluster,
    i: usize,
    acked: &Mutex<BTreeMap<String, AckedOrder>>,
    late: &Mutex<Vec<LateShipment>>,
) {
    if i.is_multiple_of(LATE_EVERY) {
        run_late_shipment(cluster, i, late).await;
    }
    let order = format!("MN-{i:04}");
    let lines: Vec<Value> = ORDERED
        .iter()
        .map(|(id, q)| json!({"id": id, "productId": "p", "title": id.to_uppercase(), "quantity": q}))
        .collect();
    let body = json!({"orderId": order, "createdAt": "2026-12-07T12:00:00Z", "lineItems": lines});
    match cluster.write("/orders", &body, None).await {
        Reply::Ack => {
            acked
                .lock()
                .unwrap()
                .insert(order.clone(), AckedOrder::default());
        }
        Reply::Refused(409, _, true) | Reply::Unknown => return,
        Reply::Refused(status, value, _) => {
            cluster.unexpected(format!("create {order}: {status} {value}"));
            return;
        }
    }

    let racers = racing_fulfillments()
        .into_iter()
        .enumerate()
        .map(|(j, units)| {
            let id = format!("{order}-f{j}");
            let items: Vec<Value> = units
                .iter()
                .map(|(line, q)| json!({"id": line, "quantity": q}))
                .collect();
            let body = json!({
                "fulfillmentId": id,
                "lineItems": items,
                "tracking": {"carrier": "FedEx", "code": format!("{:012}", 100_000_000 + i * 10 + j)},
            });
            let path = format!("/orders/{order}/fulfillments");
            async move {
                // Each racer starts on a different node.
                let reply = cluster.write(&path, &body, Some(i + j)).await;
                (id, units, reply)
            }
        });
    let mut won = Vec::new();
    for (id, units, reply) in futures_util::future::join_all(racers).await {
        match reply {
            Reply::Ack => {
                let units = units.iter().map(|(l, q)| ((*l).to_owned(), *q)).collect();
                if let Some(o) = acked.lock().unwrap().get_mut(&order) {
                    o.fulfillments.insert(id.clone(), (units, Vec::new()));
                }
                won.push(id);
            }
            Reply::Refused(400, value, _)
                if value["error"].as_str().is_some_and(|e| e.contains("left")) =>
            {
                cluster.stats.race_lost.fetch_add(1, Ordering::Relaxed);
            }
            Reply::Refused(409, _, true) | Reply::Unknown => {}
            Reply::Refused(status, value, _) => {
                cluster.unexpected(format!("fulfillment {id}: {status} {value}"));
            }
        }
    }

    for id in won {
        for status in ["in_transit", "delivered"] {
            let message = format!("{id} {status}");
            let path = format!("/orders/{order}/fulfillments/{id}/shipment-status");
            let body = json!({"status": status, "message": message});
            match cluster.write(&path, &body, None).await {
                Reply::Ack => {
                    if let Some((_, messages)) = acked
                        .lock()
                        .unwrap()
                        .get_mut(&order)
                        .and_then(|o| o.fulfillments.get_mut(&id))
                    {
                        messages.push(message);
                    }
                }
                Reply::Unknown => {}
                Reply::Refused(status, value, _) => {
                    cluster.unexpected(format!("status of {id}: {status} {value}"));
                }
            }
        }
    }
}

// ---------------------------------------------------------------- the test

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(waybill_postgres),
    ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
)]
async fn three_nodes_share_the_work_and_survive_a_kill() {
    require_postgres();
    let started = Instant::now();
    let db = TestDatabase::new().await.expect("test database");
    let url = db.url.clone();
    let mut nodes: Vec<Node> = tokio::task::spawn_blocking(move || start_nodes(&url, NODES))
        .await
        .unwrap();
    let (store, secret) = create_store(&db.url);

    // The receiver, subscribed to every Redo topic (one subscription each), through node 0.
    let (receiver, hook_base) = start_receiver().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut secrets: HashMap<String, String> = HashMap::new();
    for topic in REDO_TOPICS {
        let resp = http
            .post(format!("{}/v2.2/stores/{store}/webhooks", nodes[0].base))
            .bearer_auth(&secret)
            .json(&json!({"webhook": {"callback": {"url": format!("{hook_base}/{topic}")}, "topic": topic}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "subscribing to {topic}");
        let body: Value = resp.json().await.unwrap();
        let webhook_secret = body["webhook"]["secret"].as_str().expect("secret");
        secrets.insert((*topic).to_owned(), webhook_secret.to_owned());
    }
    // An automation with a webhook action on `delivered`, through node 2: its runs are
    // claimed by the nodes' automation workers, its deliveries sent by their dispatchers.
    let resp = http
        .post(format!("{}/v2.2/stores/{store}/automations", nodes[2].base))
        .bearer_auth(&secret)
        .json(&json!({"automation": {"name": "notify", "trigger": "delivered", "action": {
            "type": "webhook", "url": format!("{hook_base}/{AUTOMATION}"),
            "body": "{\"order\": {{ order.id }}, \"fulfillment\": {{ fulfillment.id }}, \"status\": {{ fulfillment.status }}}"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "creating the automation");
    let body: Value = resp.json().await.unwrap();
    let automation_secret = body["automation"]["secret"].as_str().expect("secret");
    secrets.insert(AUTOMATION.to_owned(), automation_secret.to_owned());

    let cluster = Arc::new(Cluster {
        http,
        nodes: Mutex::new(nodes.iter().map(|n| n.base.clone()).collect()),
        next: AtomicUsize::new(0),
        keys: AtomicUsize::new(0),
        store,
        secret,
        stats: Stats::default(),
    });
    let acked: Arc<Mutex<BTreeMap<String, AckedOrder>>> = Arc::default();
    let late: Arc<Mutex<Vec<LateShipment>>> = Arc::default();

    // The load: WORKERS workers take the orders one after another.
    let next_order = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let load_started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (cluster, acked, late) = (cluster.clone(), acked.clone(), late.clone());
        let (next_order, done) = (next_order.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next_order.fetch_add(1, Ordering::Relaxed);
                if i >= ORDERS || load_started.elapsed() > LOAD_LIMIT {
                    break;
                }
                run_order(&cluster, i, &acked, &late).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let all_done = Arc::new(AtomicBool::new(false));
    let wait_for = |count: usize| {
        let (done, all_done) = (done.clone(), all_done.clone());
        async move {
            while done.load(Ordering::Relaxed) < count && !all_done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let finished = {
        let all_done = all_done.clone();
        tokio::spawn(async move {
            for w in workers {
                w.await.expect("a load worker panicked");
            }
            all_done.store(true, Ordering::Relaxed);
        })
    };

    // A third of the way through: SIGKILL one node.
    wait_for(ORDERS / 3).await;
    let victim_attempts = nodes[VICTIM].attempts.clone();
    let victim_raised = nodes[VICTIM].raised.clone();
    nodes[VICTIM].child.kill().expect("SIGKILL the node");
    nodes[VICTIM].child.wait().expect("reap the node");
    let killed_at = Instant::now();
    let survivors_raised_before = survivors_raised(&nodes);
    let killed_after = done.load(Ordering::Relaxed);

    // Two thirds of the way through: start it again (on a new port).
    wait_for(2 * ORDERS / 3).await;
    let url = db.url.clone();
    let restarting_at = Instant::now();
    let survivors_raised_while_down = survivors_raised(&nodes) - survivors_raised_before;
    let restarted = tokio::task::spawn_blocking(move || start_node(&url))
        .await
        .unwrap();
    cluster.nodes.lock().unwrap()[VICTIM] = restarted.base.clone();
    let old = std::mem::replace(&mut nodes[VICTIM], restarted);
    drop(old);
    let restarted_after = done.load(Ordering::Relaxed);

    finished.await.unwrap();
    let load_seconds = load_started.elapsed().as_secs_f64();
    let stats = &cluster.stats;
    let unexpected = stats.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:#?}");
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() >= ORDERS / 2,
        "only {} of {ORDERS} orders were acknowledged",
        acked.len()
    );
    assert!(
        stats.connection_errors.load(Ordering::Relaxed) > 0,
        "no request met the killed node"
    );
    // A key whose request died with its node is usable again on another node within the
    // lease (plus the client's pause between retries and a loaded machine's delays), so every
    // write got an answer.
    let key_waits = stats.key_waits.lock().unwrap().clone();
    let idempotency_lease = waybill_server::idempotency::LEASE;
    let longest_key_wait = key_waits
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or_default();
    for waited in &key_waits {
        let waited = waited.unwrap_or_else(|| {
            panic!("a key refused as in progress never ran again within its write's 15 s")
        });
        assert!(
            waited <= idempotency_lease + Duration::from_secs(2),
            "a key was refused as in progress for {waited:?}, past its {idempotency_lease:?} lease"
        );
    }
    assert_eq!(
        stats.unknown.load(Ordering::Relaxed),
        0,
        "writes left with an unknown outcome"
    );

    // Every acknowledged write is there, and no line is over-fulfilled.
    let mut fulfillments_acked = 0;
    let mut statuses_acked = 0;
    for (order, expected) in &acked {
        let (status, body) = cluster.get(&format!("/orders/{order}")).await;
        assert_eq!(status, 200, "acknowledged order {order} is missing: {body}");
        let stored: HashMap<&str, &Value> = body["fulfillments"]
            .as_array()
            .expect("fulfillments")
            .iter()
            .map(|f| (f["id"].as_str().unwrap_or_default(), f))
            .collect();
        for (id, (units, messages)) in &expected.fulfillments {
            fulfillments_acked += 1;
            statuses_acked += messages.len();
            let f = stored
                .get(id.as_str())
                .unwrap_or_else(|| panic!("acknowledged fulfillment {id} is missing: {body}"));
            let got: BTreeMap<String, u64> = f["lineItems"]
                .as_array()
                .expect("lineItems")
                .iter()
                .map(|l| {
                    (
                        l["id"].as_str().unwrap_or_default().to_owned(),
                        l["quantity"].as_u64().unwrap_or_default(),
                    )
                })
                .collect();
            assert_eq!(&got, units, "fulfillment {id} holds other units");
            let history: Vec<&str> = f["trackingHistory"]
                .as_array()
                .expect("trackingHistory")
                .iter()
                .filter_map(|h| h["message"].as_str())
                .collect();
            for m in messages {
                assert!(
                    history.contains(&m.as_str()),
                    "status '{m}' is missing: {f}"
                );
            }
        }
        for (line, ordered) in ORDERED {
            let stored_line = body["lineItems"]
                .as_array()
                .expect("lineItems")
                .iter()
                .find(|l| l["id"] == line)
                .unwrap_or_else(|| panic!("line {line} of {order} is missing"));
            assert_eq!(stored_line["quantity"], ordered);
            let fulfilled = stored_line["fulfilledQuantity"].as_u64().expect("count");
            let live: u64 = stored
                .values()
                .filter(|f| f["status"] != "cancelled")
                .flat_map(|f| f["lineItems"].as_array().into_iter().flatten())
                .filter(|l| l["id"] == line)
                .map(|l| l["quantity"].as_u64().unwrap_or_default())
                .sum();
            let acknowledged: u64 = expected
                .fulfillments
                .values()
                .filter_map(|(units, _)| units.get(line))
                .sum();
            assert!(
                fulfilled <= ordered,
                "{order} line {line} over-fulfilled: {fulfilled} of {ordered}"
            );
            assert_eq!(
                fulfilled, live,
                "{order} line {line}: the count is not its fulfillments' units"
            );
            assert!(acknowledged <= fulfilled, "{order} line {line}");
        }
    }

    // Every outbox event is delivered: wait (bounded) until each has a 2xx receipt on the
    // subscription whose topic selects it, and every delivery row is settled.
    let (pg, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test schema");
    tokio::spawn(connection);

    // The late shipments: each gets `stalled_in_transit` and `delayed` exactly once, whichever
    // nodes' schedulers were up (waited for before the outbox is read, so that their events'
    // deliveries are checked below like every other's).
    let late = std::mem::take(&mut *late.lock().unwrap());
    let late_during_downtime = late
        .iter()
        .filter(|l| l.acked >= killed_at && l.acked < restarting_at)
        .count();
    assert!(
        late.len() >= ORDERS / LATE_EVERY / 2,
        "only {} late shipments were acknowledged",
        late.len()
    );
    assert!(
        late_during_downtime > 0,
        "no late shipment was acknowledged while node {VICTIM} was down"
    );
    let raise_started = Instant::now();
    let raised_at: HashMap<String, i64> = loop {
        let rows = pg
            .query(
                "SELECT f.id,
                        count(e.id) FILTER (WHERE e.status = 'stalled_in_transit'),
                        count(e.id) FILTER (WHERE e.status = 'delayed'),
                        max(e.received_at)
                 FROM fulfillments f
                 LEFT JOIN tracking_events e ON e.store_id = f.store_id AND e.fulfillment_id = f.id
                      AND e.status IN ('stalled_in_transit', 'delayed')
                 WHERE f.id LIKE 'MN-LATE-%'
                 GROUP BY f.id",
                &[],
            )
            .await
            .expect("read the late shipments' events");
        let mut raised = HashMap::new();
        for row in &rows {
            let (id, stalled, delayed, at): (String, i64, i64, Option<i64>) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            assert!(
                stalled <= 1 && delayed <= 1,
                "{id} got stalled_in_transit {stalled} times and delayed {delayed} times"
            );
            if let (1, 1, Some(at)) = (stalled, delayed, at) {
                raised.insert(id, at);
            }
        }
        if raised.len() == rows.len() && late.iter().all(|l| raised.contains_key(&l.fulfillment)) {
            break raised;
        }
        assert!(
            raise_started.elapsed() < Duration::from_secs(30),
            "{} of {} late shipments still without both events",
            rows.len() - raised.len(),
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Each was raised soon after it was acknowledged (the schedulers tick every 500 ms), also
    // those acknowledged while node 1 was down.
    let raise_delays: Vec<i64> = late
        .iter()
        .map(|l| raised_at[&l.fulfillment] - l.acked_ms)
        .collect();
    let slowest_raise = raise_delays.iter().copied().max().unwrap_or_default();
    assert!(
        slowest_raise <= 10_000,
        "a late shipment's events were raised {slowest_raise} ms after it was acknowledged"
    );
    // One event per raise in the outbox too: two `fulfillment.event`s per late shipment.
    let late_events: i64 = pg
        .query_one(
            "SELECT count(*) FROM outbox WHERE type = 'fulfillment.event'
               AND fulfillment_id LIKE 'MN-LATE-%'",
            &[],
        )
        .await
        .expect("count the late shipments' events")
        .get(0);
    assert_eq!(
        late_events,
        2 * i64::try_from(raised_at.len()).unwrap(),
        "time-based events in the outbox"
    );
    assert!(
        survivors_raised_while_down > 0,
        "the surviving nodes' schedulers raised nothing while node {VICTIM} was down"
    );
    let events: Vec<(String, String)> = pg
        .query("SELECT event_id, type FROM outbox ORDER BY id", &[])
        .await
        .expect("read the outbox")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: HashSet<(String, String)> = events
        .iter()
        .flat_map(|(id, kind)| {
            REDO_TOPICS
                .iter()
                .filter(|t| topic_selects(WebhookFlavor::Redo, &[(**t).to_owned()], kind))
                .map(|t| ((*t).to_owned(), id.clone()))
        })
        .collect();
    assert!(expected.len() >= events.len(), "an event no topic selects");
    let drain_started = Instant::now();
    loop {
        let delivered: HashSet<(String, String)> = receiver
            .receipts
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.ok)
            .map(|r| (r.topic.clone(), r.header("webhook-id").to_owned()))
            .collect();
        let open: i64 = pg
            .query_one(
                "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'",
                &[],
            )
            .await
            .expect("count open deliveries")
            .get(0);
        let runs_open: i64 = pg
            .query_one(
                "SELECT count(*) FROM automation_runs WHERE status <> 'succeeded'",
                &[],
            )
            .await
            .expect("count open automation runs")
            .get(0);
        let missing = expected.difference(&delivered).count();
        if missing == 0 && open == 0 && runs_open == 0 {
            break;
        }
        assert!(
            drain_started.elapsed() < DRAIN_LIMIT,
            "{missing} events never delivered, {open} deliveries and {runs_open} automation runs \
             not settled after {DRAIN_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    let failed: i64 = pg
        .query_one(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(failed, 0, "deliveries failed");
    // Every order has exactly `event_seq` outbox rows (no change without its event).
    let gaps: i64 = pg
        .query_one(
            "SELECT count(*) FROM orders o
             WHERE o.event_seq <> (SELECT count(*) FROM outbox x WHERE x.order_id = o.id)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        gaps, 0,
        "orders whose outbox rows do not match their event_seq"
    );

    // Deliveries claimed more often than attempts were recorded for them: the claims the
    // killed node took with it, which another node took over once the lease ran out.
    let taken_over: i64 = pg
        .query_one(
            "SELECT count(*) FROM webhook_deliveries d
             WHERE d.attempts > (SELECT count(*) FROM webhook_attempts a WHERE a.delivery_id = d.id)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let taken_over = usize::try_from(taken_over).unwrap_or(usize::MAX);
    assert!(
        taken_over <= MAX_IN_FLIGHT,
        "{taken_over} deliveries lost their claim; the killed node held at most {MAX_IN_FLIGHT}"
    );

    // What the receiver saw.
    let receipts = receiver.receipts.lock().unwrap().clone();
    for r in &receipts {
        assert!(
            signature_valid(&secrets[&r.topic], r),
            "bad signature on a {} delivery",
            r.topic
        );
        if r.topic != AUTOMATION {
            let body = r.json();
            assert_eq!(
                body["id"],
                r.header("webhook-id"),
                "webhook-id is the event id"
            );
        }
    }
    let event_ids: HashSet<&str> = events.iter().map(|(id, _)| id.as_str()).collect();
    let mut by_event: BTreeMap<(String, String), Vec<&Receipt>> = BTreeMap::new();
    for r in &receipts {
        assert!(
            event_ids.contains(r.header("webhook-id")),
            "a delivery of an event not in the outbox"
        );
        by_event
            .entry((r.topic.clone(), r.header("webhook-id").to_owned()))
            .or_default()
            .push(r);
    }
    let mut duplicates = 0;
    for ((topic, id), mut tries) in by_event {
        tries.sort_by_key(|r| r.start);
        // Never in flight to the receiver twice at once.
        for w in tries.windows(2) {
            let first_end = w[0].end.unwrap_or(w[0].start);
            assert!(
                w[1].start >= first_end,
                "{topic} event {id} was sent again while a delivery was in flight"
            );
        }
        let ok: Vec<&&Receipt> = tries.iter().filter(|r| r.ok).collect();
        if ok.len() > 1 {
            duplicates += ok.len() - 1;
            // Only the killed node's leases are sent again: the first delivery was answered
            // before the kill, the repeat after it.
            let first = ok[0].end.unwrap_or(ok[0].start);
            assert!(
                first <= killed_at && ok[1].start >= killed_at,
                "{topic} event {id} delivered twice, not across the kill"
            );
        }
    }
    // Each duplicate is a delivery the killed node sent but could not record.
    assert!(
        duplicates <= taken_over,
        "{duplicates} duplicate deliveries, but only {taken_over} claims were lost with the node"
    );

    // Per subscription and order, first deliveries arrive in seq order.
    let mut first_seen = HashSet::new();
    let mut sorted: Vec<&Receipt> = receipts.iter().filter(|r| r.ok).collect();
    sorted.sort_by_key(|r| r.start);
    let mut per_order: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for r in sorted.into_iter().filter(|r| r.topic != AUTOMATION) {
        if first_seen.insert((r.topic.clone(), r.header("webhook-id").to_owned())) {
            let body = r.json();
            per_order
                .entry((
                    r.topic.clone(),
                    body["order"]["id"].as_str().unwrap_or_default().to_owned(),
                ))
                .or_default()
                .push(body["seq"].as_i64().expect("seq"));
        }
    }
    for ((topic, order), seqs) in &per_order {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{topic} events of order {order} arrived out of order: {seqs:?}"
        );
    }

    // The automation: one run per fulfillment that reached `delivered` (however many nodes
    // saw it), each run's webhook delivered to the receiver, naming its fulfillment.
    let runs: Vec<(String, i32)> = pg
        .query("SELECT fulfillment_id, attempts FROM automation_runs", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let run_fulfillments: HashSet<&str> = runs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        run_fulfillments.len(),
        runs.len(),
        "a fulfillment with two runs"
    );
    let automation_received: HashSet<String> = receipts
        .iter()
        .filter(|r| r.ok && r.topic == AUTOMATION)
        .map(|r| {
            r.json()["fulfillment"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let delivered_acked: Vec<&String> = acked
        .values()
        .flat_map(|o| o.fulfillments.iter())
        .filter(|(id, (_, messages))| messages.contains(&format!("{id} delivered")))
        .map(|(id, _)| id)
        .collect();
    assert!(!delivered_acked.is_empty());
    for id in &delivered_acked {
        assert!(run_fulfillments.contains(id.as_str()), "no run for {id}");
        assert!(
            automation_received.contains(id.as_str()),
            "no automation webhook for {id}"
        );
    }
    assert_eq!(
        automation_received.len(),
        runs.len(),
        "automation webhooks received vs runs"
    );
    let runs_repeated = runs.iter().filter(|(_, attempts)| *attempts > 1).count();

    // Every node's dispatcher took part; no node logged an error.
    let attempts: Vec<usize> = nodes
        .iter()
        .map(|n| n.attempts.load(Ordering::Relaxed))
        .collect();
    let victim_before = victim_attempts.load(Ordering::Relaxed);
    for (i, n) in nodes.iter().enumerate() {
        let errors = n.errors.lock().unwrap();
        assert!(errors.is_empty(), "node {i} logged errors: {errors:#?}");
    }
    let survivors_sharing = (0..NODES)
        .filter(|i| *i != VICTIM)
        .filter(|i| attempts[*i] > 0)
        .count();
    assert_eq!(
        survivors_sharing,
        NODES - 1,
        "a surviving node's dispatcher sent nothing: {attempts:?}"
    );

    let refused_once = receiver.refused.lock().unwrap().len();
    println!(
        "multinode: {nodes} nodes, {workers} workers; load {load_seconds:.1} s, drain {drain_seconds:.1} s, total {total:.1} s\n\
         multinode: {requests} requests ({connection_errors} connection errors, {waits} waits for 409/429/503), \
         {acks} acknowledged writes ({orders} orders, {fulfillments_acked} fulfillments, {statuses_acked} statuses), \
         {race_lost} fulfillments lost their race, {unknown} outcomes unknown\n\
         multinode: node {VICTIM} killed after {killed_after} orders, restarted after {restarted_after}\n\
         multinode: {runs} automation runs ({runs_repeated} performed again after a lost lease)\n\
         multinode: {late_count} late shipments ({late_during_downtime} while node {VICTIM} was down), \
         each raised stalled_in_transit and delayed once, at most {slowest_raise} ms after acknowledged; \
         raised per node {raised_per_node:?} (node {VICTIM} before the kill: {victim_raised_before}; \
         survivors while it was down: {survivors_raised_while_down})\n\
         multinode: {key_wait_count} keys refused as in progress after their request died, for at most {longest_key_wait:?} \
         (lease {idempotency_lease:?})\n\
         multinode: {events} events, {receipts} receipts, {refused_once} refused once by the receiver, \
         {taken_over} claims taken over after the lease (bound {MAX_IN_FLIGHT}), {duplicates} duplicates; attempts logged per node {attempts:?} \
         (node {VICTIM} before the kill: {victim_before})",
        nodes = NODES,
        workers = WORKERS,
        total = started.elapsed().as_secs_f64(),
        requests = stats.requests.load(Ordering::Relaxed),
        connection_errors = stats.connection_errors.load(Ordering::Relaxed),
        waits = stats.waits.load(Ordering::Relaxed),
        acks = stats.acknowledged.load(Ordering::Relaxed),
        orders = acked.len(),
        race_lost = stats.race_lost.load(Ordering::Relaxed),
        unknown = stats.unknown.load(Ordering::Relaxed),
        events = events.len(),
        receipts = receipts.len(),
        runs = runs.len(),
        late_count = raised_at.len(),
        raised_per_node = nodes
            .iter()
            .map(|n| n.raised.load(Ordering::Relaxed))
            .collect::<Vec<_>>(),
        victim_raised_before = victim_raised.load(Ordering::Relaxed),
        key_wait_count = key_waits.len(),
    );
}

// ---------------------------------------------------------------- dashboard sessions

/// A cookie the response sets.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The first hidden CSRF token in a page.
fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_owned())
}

/// A dashboard session is not tied to the process that started it: the sign-in form comes
/// from one node, the sign-in goes to the next, the pages are read from the third, and
/// signing out on one ends the session on all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(waybill_postgres),
    ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
)]
async fn a_dashboard_session_moves_between_nodes() {
    require_postgres();
    let db = TestDatabase::new().await.expect("test database");
    let url = db.url.clone();
    let nodes: Vec<Node> = tokio::task::spawn_blocking(move || start_nodes(&url, NODES))
        .await
        .unwrap();
    let (store, secret) = create_store(&db.url);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let order = json!({"orderId": "MN-UI-1", "createdAt": "2026-12-07T12:00:00Z",
        "lineItems": [{"id": "a", "productId": "p", "title": "A", "quantity": 1}]});
    let resp = http
        .post(format!("{}/v2.2/stores/{store}/orders", nodes[0].base))
        .bearer_auth(&secret)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The form from node 0, the sign-in on node 1.
    let resp = http
        .get(format!("{}/ui/login", nodes[0].base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let login_cookie = set_cookie(&resp, "waybill_login").expect("login cookie");
    let token = csrf_in(&resp.text().await.unwrap()).expect("token in the form");
    let resp = http
        .post(format!("{}/ui/login", nodes[1].base))
        .header("cookie", format!("waybill_login={login_cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&secret={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "sign-in on node 1");
    let session = set_cookie(&resp, "waybill_session").expect("session cookie");

    // Every node knows the session.
    let mut csrf = None;
    for node in nodes.iter().rev() {
        let resp = http
            .get(format!("{}/ui/orders/MN-UI-1", node.base))
            .header("cookie", format!("waybill_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "the session on {}", node.base);
        let html = resp.text().await.unwrap();
        assert!(html.contains("MN-UI-1"));
        csrf = csrf_in(&html).or(csrf);
    }

    // Signing out on node 2 ends it on node 0 as well.
    let csrf = csrf.expect("a form with a CSRF token on the order page");
    let resp = http
        .post(format!("{}/ui/logout", nodes[2].base))
        .header("cookie", format!("waybill_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "sign-out on node 2");
    let resp = http
        .get(format!("{}/ui/orders", nodes[0].base))
        .header("cookie", format!("waybill_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "the session ended everywhere");
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(location.starts_with("/ui/login"), "{location}");
}
