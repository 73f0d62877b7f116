//! Webhooks end to end: real receivers on loopback (raw TCP, so they can fail in every way a
//! network does), the real dispatcher, the real SQLite file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use waybill_server::webhooks::{Dispatcher, DispatcherConfig, UrlPolicy};
use waybill_store::Store;

use crate::common::*;

// ---------------------------------------------------------------- the receiver

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Answer {
    Ok,
    Status(u16),
    RetryAfter(u16, u32),
    /// Answer 200 only after this long (beyond the dispatcher's timeout), i.e. too late.
    Slow(Duration),
    /// Close the connection without answering.
    Drop,
    /// Answer 200 after this delay (within the timeout).
    Delayed(Duration),
    /// 307 to this URL.
    Redirect(&'static str),
}

#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    pub at: Instant,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// Whether the receiver answered 2xx.
    pub ok: bool,
}

impl Receipt {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

type Decide = Arc<dyn Fn(usize, &Value) -> Answer + Send + Sync>;

pub(crate) struct Receiver {
    pub url: String,
    receipts: Arc<Mutex<Vec<Receipt>>>,
}

impl Receiver {
    pub async fn start(
        decide: impl Fn(usize, &Value) -> Answer + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Receiver::start_on(listener, decide)
    }

    /// A receiver on a listener the caller bound (say, on the port of one that was down).
    pub fn start_on(
        listener: TcpListener,
        decide: impl Fn(usize, &Value) -> Answer + Send + Sync + 'static,
    ) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let receipts = Arc::new(Mutex::new(Vec::new()));
        let decide: Decide = Arc::new(decide);
        let counter = Arc::new(AtomicUsize::new(0));
        let r = receipts.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(
                    stream,
                    decide.clone(),
                    r.clone(),
                    counter.clone(),
                ));
            }
        });
        Receiver { url, receipts }
    }

    pub fn all(&self) -> Vec<Receipt> {
        self.receipts.lock().unwrap().clone()
    }

    /// Waits (bounded) until `done` holds for the receipts; panics with `what` otherwise.
    pub async fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&[Receipt]) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.all()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; {} receipts",
                self.all().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Reads what is there (0 at end of stream), without tokio's io-util.
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    decide: Decide,
    receipts: Arc<Mutex<Vec<Receipt>>>,
    counter: Arc<AtomicUsize>,
) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            let mut chunk = [0u8; 8192];
            match read_some(&stream, &mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut headers = HashMap::new();
        for line in head.lines().skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while buf.len() < body_start + length {
            let mut chunk = [0u8; 8192];
            match read_some(&stream, &mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[body_start..body_start + length].to_vec();
        buf.drain(..body_start + length);
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = decide(n, &parsed);
        let ok = matches!(answer, Answer::Ok | Answer::Delayed(_));
        receipts.lock().unwrap().push(Receipt {
            at: Instant::now(),
            headers,
            body,
            ok,
        });
        let response = match answer {
            Answer::Ok => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_owned(),
            Answer::Delayed(d) => {
                tokio::time::sleep(d).await;
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_owned()
            }
            Answer::Status(code) => {
                format!("HTTP/1.1 {code} Nope\r\ncontent-length: 12\r\n\r\nreceiver-err")
            }
            Answer::RetryAfter(code, secs) => format!(
                "HTTP/1.1 {code} Busy\r\nretry-after: {secs}\r\ncontent-length: 4\r\n\r\nbusy"
            ),
            Answer::Redirect(to) => {
                format!("HTTP/1.1 307 Moved\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
            }
            Answer::Slow(d) => {
                tokio::time::sleep(d).await;
                return;
            }
            Answer::Drop => return,
        };
        if write_all(&stream, response.as_bytes()).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- helpers

pub(crate) fn test_config() -> DispatcherConfig {
    let mut schedule = vec![Duration::ZERO, Duration::from_millis(10)];
    schedule.extend(std::iter::repeat_n(Duration::from_millis(30), 18));
    DispatcherConfig {
        schedule,
        jitter: 0.2,
        timeout: Duration::from_millis(400),
        lease: Duration::from_secs(3),
        poll_interval: Duration::from_millis(20),
        policy: Arc::new(UrlPolicy::allow_all()),
        ..DispatcherConfig::default()
    }
}

pub(crate) fn start_dispatcher(
    store: Arc<dyn Store>,
    config: DispatcherConfig,
) -> tokio::task::JoinHandle<()> {
    let dispatcher = Dispatcher::new(store, config).expect("dispatcher");
    tokio::spawn(dispatcher.run(std::future::pending()))
}

pub(crate) async fn loopback_app() -> TestApp {
    TestApp::spawn_with(UrlPolicy::allow_all()).await
}

/// Creates a Redo webhook; returns its id and secret.
pub(crate) async fn subscribe(
    app: &TestApp,
    t: &Tenant,
    url: &str,
    topic: &str,
) -> (String, String) {
    let (status, body) = app
        .post(
            t,
            "/webhooks",
            json!({"webhook": {"callback": {"url": url, "auth": {"bearer": {"token": "rcv-token"}}}, "topic": topic}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["webhook"]["id"].as_str().unwrap().to_owned(),
        body["webhook"]["secret"].as_str().unwrap().to_owned(),
    )
}

pub(crate) fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Verifies a Standard Webhooks signature the way a receiver would.
pub(crate) fn verify_standard(secret: &str, r: &Receipt) {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    let mut msg = format!("{id}.{ts}.").into_bytes();
    msg.extend_from_slice(&r.body);
    let expected = format!("v1,{}", hmac_b64(&key, &msg));
    assert_eq!(r.header("webhook-signature"), expected, "bad signature");
    let ts: i64 = ts.parse().expect("numeric timestamp");
    assert!(
        (chrono::Utc::now().timestamp() - ts).abs() < 300,
        "stale timestamp"
    );
}

/// An order with one fulfillment; returns the shipment-status path.
pub(crate) async fn fulfilled_order(app: &TestApp, t: &Tenant, order: &str) -> String {
    app.order(t, order, 4).await;
    let (status, body) = app
        .post(
            t,
            &format!("/orders/{order}/fulfillments"),
            json!({"fulfillmentId": format!("{order}-f"), "lineItems": [{"id": "line-1", "quantity": 2}],
                   "tracking": {"carrier": "FedEx", "code": "123456789012"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    format!("/orders/{order}/fulfillments/{order}-f/shipment-status")
}

/// For every order, the seqs in the order their first successful receipt arrived.
fn first_success_seqs(receipts: &[Receipt]) -> BTreeMap<String, Vec<i64>> {
    let mut seen = HashSet::new();
    let mut per_order: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in receipts.iter().filter(|r| r.ok) {
        let body = r.json();
        let id = body["id"].as_str().unwrap().to_owned();
        if seen.insert(id) {
            per_order
                .entry(body["order"]["id"].as_str().unwrap().to_owned())
                .or_default()
                .push(body["seq"].as_i64().unwrap());
        }
    }
    per_order
}

fn assert_no_inversions(per_order: &BTreeMap<String, Vec<i64>>) {
    for (order, seqs) in per_order {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "order {order} received out of order: {seqs:?}"
        );
    }
}

fn distinct_ok(receipts: &[Receipt]) -> usize {
    receipts
        .iter()
        .filter(|r| r.ok)
        .map(|r| r.header("webhook-id").to_owned())
        .collect::<HashSet<_>>()
        .len()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_arrive_in_order_through_a_flaky_receiver() {
    const ORDERS: usize = 50;
    const PER_ORDER: usize = 20;
    let app = loopback_app().await;
    let t = app.tenant("chaos").await;
    // ~30 % of requests fail: 10 % 5xx, 10 % too slow, 10 % dropped connections. A tiny
    // xorshift keeps it reproducible.
    let receiver = Receiver::start(|n, _| {
        let mut x = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        match x % 10 {
            0 => Answer::Status(503),
            1 => Answer::Slow(Duration::from_millis(800)),
            2 => Answer::Drop,
            _ => Answer::Ok,
        }
    })
    .await;
    let (_, secret) = subscribe(&app, &t, &receiver.url, "fulfillment").await;
    let dispatcher = start_dispatcher(app.store.clone(), test_config());

    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    let app = Arc::new(app);
    for o in 0..ORDERS {
        let (app, t) = (app.clone(), t.clone());
        writers.spawn(async move {
            let order = format!("C-{o}");
            let path = fulfilled_order(&app, &t, &order).await;
            for i in 1..PER_ORDER {
                let status = if i % 2 == 0 { "in_transit" } else { "delayed" };
                let (code, body) = app.post(&t, &path, json!({ "status": status })).await;
                assert_eq!(code, StatusCode::OK, "{body}");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer");
    }
    receiver
        .wait_for("1000 distinct events", Duration::from_secs(60), |r| {
            distinct_ok(r) == ORDERS * PER_ORDER
        })
        .await;
    let elapsed = started.elapsed();
    dispatcher.abort();

    let receipts = receiver.all();
    let failed = receipts.iter().filter(|r| !r.ok).count();
    assert!(
        failed * 100 / receipts.len() >= 15,
        "the receiver should have failed a good share of attempts ({failed} of {})",
        receipts.len()
    );
    let per_order = first_success_seqs(&receipts);
    assert_eq!(per_order.len(), ORDERS);
    assert!(per_order.values().all(|s| s.len() == PER_ORDER));
    assert_no_inversions(&per_order);

    // Retries carry the same webhook-id (the body's event id), the same body, and valid
    // signatures; so does everything else.
    let mut bodies: HashMap<String, Vec<u8>> = HashMap::new();
    let mut retried = 0;
    for r in &receipts {
        verify_standard(&secret, r);
        assert_eq!(r.header("authorization"), "Bearer rcv-token");
        let body = r.json();
        assert_eq!(r.header("webhook-id"), body["id"].as_str().unwrap());
        assert!(body["type"].as_str().unwrap().starts_with("fulfillment."));
        assert_eq!(
            body["fulfillment"]["id"],
            json!(format!("{}-f", body["order"]["orderId"].as_str().unwrap()))
        );
        match bodies.get(r.header("webhook-id")) {
            Some(first) => {
                retried += 1;
                assert_eq!(first, &r.body, "a retry changed the body");
            }
            None => {
                bodies.insert(r.header("webhook-id").to_owned(), r.body.clone());
            }
        }
    }
    assert!(retried > 0, "no event was retried");
    eprintln!(
        "chaos: {} attempts, {failed} failed, {retried} retries, {:?}",
        receipts.len(),
        elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_dispatcher_loses_nothing_and_keeps_order() {
    let app = loopback_app().await;
    let t = app.tenant("kill").await;
    let receiver = Receiver::start(|_, _| Answer::Delayed(Duration::from_millis(100))).await;
    let (webhook_id, secret) = subscribe(&app, &t, &receiver.url, "fulfillment").await;
    let mut expected = 0;
    for o in 0..4 {
        let path = fulfilled_order(&app, &t, &format!("K-{o}")).await;
        expected += 1;
        for _ in 0..5 {
            let (code, body) = app.post(&t, &path, json!({"status": "in_transit"})).await;
            assert_eq!(code, StatusCode::OK, "{body}");
            expected += 1;
        }
    }
    let mut config = test_config();
    config.lease = Duration::from_millis(1500);
    let first = start_dispatcher(app.store.clone(), config.clone());
    // Kill it while requests are in flight (each answer takes 100 ms).
    receiver
        .wait_for("some deliveries", Duration::from_secs(20), |r| r.len() >= 6)
        .await;
    first.abort();
    let _ = first.await;
    let killed_at = Instant::now();
    let before = receiver.all().len();
    assert!(
        distinct_ok(&receiver.all()) < expected,
        "everything was delivered before the kill"
    );

    // A new worker on a freshly opened store over the same file takes over once leases expire.
    let reopened: Arc<dyn Store> = app.db.open().await.expect("reopen");
    let second = start_dispatcher(reopened, config);
    receiver
        .wait_for(
            "every event after the restart",
            Duration::from_secs(30),
            |r| distinct_ok(r) == expected,
        )
        .await;
    second.abort();
    let receipts = receiver.all();
    assert!(receipts.len() > before);
    // The deliveries cut off by the kill were sent again with the same id, after the lease.
    let ids_before: HashSet<String> = receipts[..before]
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    let resent: Vec<&Receipt> = receipts[before..]
        .iter()
        .filter(|r| ids_before.contains(r.header("webhook-id")))
        .collect();
    assert!(!resent.is_empty(), "no interrupted delivery was resent");
    for r in &resent {
        assert!(r.at >= killed_at, "resent before the kill");
        verify_standard(&secret, r);
    }
    let per_order = first_success_seqs(&receipts);
    assert_eq!(per_order.len(), 4);
    assert_no_inversions(&per_order);
    // The delivery log shows every attempt.
    let (status, log) = app
        .call(
            Method::GET,
            &t.path(&format!("/webhooks/{webhook_id}/deliveries")),
            Some(&t.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert!(!log["deliveries"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_request_emits_no_event() {
    let app = loopback_app().await;
    let t = app.tenant("refused").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    let (_, _) = subscribe(&app, &t, &receiver.url, "fulfillment").await;
    app.order(&t, "R-1", 1).await;
    let fulfill = |id: &str| {
        json!({"fulfillmentId": id, "lineItems": [{"id": "line-1", "quantity": 1}],
               "tracking": {"carrier": "UPS", "code": "1Z999AA10123456784"}})
    };
    let (status, body) = app
        .post(&t, "/orders/R-1/fulfillments", fulfill("R-1-a"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(&t, "/orders/R-1/fulfillments", fulfill("R-1-b"))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .post(
            &t,
            "/orders/R-1/fulfillments/R-1-a/shipment-status",
            json!({"status": "delivered"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let _d = start_dispatcher(app.store.clone(), test_config());
    receiver
        .wait_for("two events", Duration::from_secs(20), |r| {
            distinct_ok(r) >= 2
        })
        .await;
    // Seqs are per order and gap-free: order.created = 1, fulfillment.created = 2, the status
    // update = 3. An event from the refused request would have taken 3.
    let seqs: Vec<(i64, String)> = receiver
        .all()
        .iter()
        .map(|r| {
            let b = r.json();
            (
                b["seq"].as_i64().unwrap(),
                b["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seqs,
        vec![
            (2, "fulfillment.created".to_owned()),
            (3, "fulfillment.updated".to_owned())
        ]
    );
}

#[tokio::test]
async fn gone_disables_and_retry_after_is_honoured() {
    let app = loopback_app().await;
    let t = app.tenant("gone").await;
    let gone = Receiver::start(|_, _| Answer::Status(410)).await;
    let (gone_id, _) = subscribe(&app, &t, &gone.url, "order").await;
    let busy = Receiver::start(|n, _| {
        if n == 0 {
            Answer::RetryAfter(503, 1)
        } else {
            Answer::Ok
        }
    })
    .await;
    let (busy_id, secret) = subscribe(&app, &t, &busy.url, "order").await;
    let _d = start_dispatcher(app.store.clone(), test_config());
    app.order(&t, "G-1", 1).await;

    busy.wait_for("the retry", Duration::from_secs(20), |r| r.len() >= 2)
        .await;
    let r = busy.all();
    // The schedule says 10 ms; Retry-After says 1 s. (Times are kept in whole milliseconds,
    // hence the 5 ms of slack.)
    let gap = r[1].at - r[0].at;
    assert!(gap >= Duration::from_millis(995), "retried after {gap:?}");
    assert_eq!(r[0].header("webhook-id"), r[1].header("webhook-id"));
    verify_standard(&secret, &r[1]);

    // 410 switched the other subscription off.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app.get(&t, &format!("/webhooks/{gone_id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["webhook"]["enabled"] == false {
            assert!(
                body["webhook"]["disabledReason"]
                    .as_str()
                    .unwrap()
                    .contains("410")
            );
            break;
        }
        assert!(Instant::now() < deadline, "410 did not disable the webhook");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        gone.all().len(),
        1,
        "a gone receiver got more than one attempt"
    );

    // The receiver counts an attempt before the dispatcher records it: wait for both to be
    // logged.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app
            .get(&t, &format!("/webhooks/{busy_id}/deliveries"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["deliveries"].as_array().map_or(0, Vec::len) >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the attempts were not logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The delivery log pages through both attempts, newest first.
    let resp = app
        .client
        .get(format!(
            "{}{}",
            app.base,
            t.path(&format!("/webhooks/{busy_id}/deliveries"))
        ))
        .bearer_auth(&t.secret)
        .header("X-Page-Size", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let next = resp.headers()["x-page-next"].to_str().unwrap().to_owned();
    let page: Value = resp.json().await.unwrap();
    let newest = &page["deliveries"][0];
    assert_eq!(newest["statusCode"], 200);
    assert_eq!(newest["type"], "order.created");
    let resp = app
        .client
        .get(format!(
            "{}{}",
            app.base,
            t.path(&format!("/webhooks/{busy_id}/deliveries"))
        ))
        .bearer_auth(&t.secret)
        .header("X-Page-Size", "1")
        .header("X-Page-Continue", next)
        .send()
        .await
        .unwrap();
    let page: Value = resp.json().await.unwrap();
    let oldest = &page["deliveries"][0];
    assert_eq!(oldest["statusCode"], 503);
    assert_eq!(oldest["responseExcerpt"], "busy");
    assert_eq!(oldest["eventId"], newest["eventId"]);

    // Manual redelivery and replay send the same event again, with the same id.
    let event_id = newest["eventId"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(
            &t,
            &format!("/webhooks/{busy_id}/deliveries/{event_id}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    busy.wait_for("the redelivery", Duration::from_secs(20), |r| r.len() >= 3)
        .await;
    let (status, body) = app
        .post(
            &t,
            &format!("/webhooks/{busy_id}/replay"),
            json!({"start": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["enqueued"], 1);
    busy.wait_for("the replay", Duration::from_secs(20), |r| r.len() >= 4)
        .await;
    assert!(
        busy.all()
            .iter()
            .all(|r| r.header("webhook-id") == event_id)
    );
    let (status, body) = app
        .post(
            &t,
            &format!("/webhooks/{busy_id}/deliveries/nope/redeliver"),
            json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fourthwall_order_updated_is_signed_over_the_raw_body() {
    let app = loopback_app().await;
    let t = app.tenant("fw").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    let (status, created) = app
        .send(
            Method::POST,
            "/open-api/v1.0/webhooks",
            Auth::Basic(&t.id, &t.secret),
            Some(json!({"url": receiver.url, "allowedTypes": ["ORDER_UPDATED"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    let webhook_id = created["id"].as_str().unwrap().to_owned();

    let order = app.order(&t, "FW-1", 2).await;
    let order_id = order["orderId"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(
            &t,
            "/orders/FW-1/fulfillments",
            json!({"fulfillmentId": "FW-1-f", "lineItems": [{"id": "line-1", "quantity": 2}, {"id": "line-2", "quantity": 1}],
                   "tracking": {"carrier": "USPS", "code": "9400111899223197428490"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let _d = start_dispatcher(app.store.clone(), test_config());
    receiver
        .wait_for("ORDER_UPDATED", Duration::from_secs(20), |r| !r.is_empty())
        .await;
    let r = &receiver.all()[0];
    let expected = hmac_b64(secret.as_bytes(), &r.body);
    assert_eq!(r.header("x-fourthwall-hmac-sha256"), expected);
    let body = r.json();
    assert_eq!(body["type"], "ORDER_UPDATED");
    assert_eq!(body["apiVersion"], "V1");
    assert_eq!(body["webhookId"], webhook_id);
    assert_eq!(body["shopId"], t.id);
    assert_eq!(body["testMode"], false);
    assert_eq!(body["data"]["update"]["type"], "STATUS");
    assert_eq!(body["data"]["order"]["id"], order_id);
    // The order's status moved with the fulfillment, and the webhook says so.
    let (_, current) = app
        .send(
            Method::GET,
            &format!("/open-api/v1.0/order/{order_id}"),
            Auth::Basic(&t.id, &t.secret),
            None,
        )
        .await;
    assert_ne!(current["status"], "CONFIRMED");
    assert_eq!(body["data"]["order"]["status"], current["status"]);
    // order.created is not ORDER_UPDATED, so exactly one event went out.
    assert_eq!(receiver.all().len(), 1);

    let (status, events) = app
        .send(
            Method::GET,
            "/open-api/v1.0/webhook-events",
            Auth::Basic(&t.id, &t.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    assert_eq!(events["results"][0]["type"], "ORDER_UPDATED");
    assert_eq!(events["results"][0]["id"], body["id"]);
    let event_id = body["id"].as_str().unwrap();
    let (status, one) = app
        .send(
            Method::GET,
            &format!("/open-api/v1.0/webhook-events/{event_id}"),
            Auth::Basic(&t.id, &t.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["webhookId"], webhook_id);
    // Another store cannot read it.
    let other = app.tenant("fw-other").await;
    let (status, missing) = app
        .send(
            Method::GET,
            &format!("/open-api/v1.0/webhook-events/{event_id}"),
            Auth::Basic(&other.id, &other.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert_eq!(missing["code"], "WEBHOOK_EVENT_NOT_FOUND");
}

#[tokio::test]
async fn subscriptions_are_managed_per_store() {
    let app = loopback_app().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let body = |url: &str, topic: &str| json!({"webhook": {"callback": {"url": url, "auth": null}, "topic": topic, "externalId": "main"}});
    let (status, created) = app
        .post(&a, "/webhooks", body("http://127.0.0.1:9/a", "order"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    let secret = created["webhook"]["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);
    // Same externalId: updated, 200, no secret.
    let (status, again) = app
        .post(&a, "/webhooks", body("http://127.0.0.1:9/b", "fulfillment"))
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["webhook"]["id"], id.as_str());
    assert_eq!(again["webhook"]["topic"], "fulfillment");
    assert!(again["webhook"].get("secret").is_none());
    let (status, body_) = app
        .post(&a, "/webhooks", body("http://127.0.0.1:9/b", "shipments"))
        .await;
    assert_error(status, &body_, StatusCode::BAD_REQUEST);
    let (status, body_) = app
        .post(&a, "/webhooks", json!({"webhook": {"topic": "order"}}))
        .await;
    assert_error(status, &body_, StatusCode::BAD_REQUEST);
    let (status, body_) = app
        .post(&a, "/webhooks", body("ftp://example.com/x", "order"))
        .await;
    assert_error(status, &body_, StatusCode::BAD_REQUEST);

    // Store B can neither see nor touch A's webhook.
    let (status, body_) = app
        .call(Method::GET, &a.path("/webhooks"), Some(&b.secret), None)
        .await;
    assert_problem(status, &body_, StatusCode::FORBIDDEN);
    let (status, body_) = app
        .call(
            Method::DELETE,
            &a.path(&format!("/webhooks/{id}")),
            Some(&b.secret),
            None,
        )
        .await;
    assert_problem(status, &body_, StatusCode::FORBIDDEN);
    for method in [Method::GET, Method::DELETE] {
        let (status, body_) = app
            .call(
                method,
                &b.path(&format!("/webhooks/{id}")),
                Some(&b.secret),
                None,
            )
            .await;
        assert_error(status, &body_, StatusCode::NOT_FOUND);
    }
    let (status, body_) = app
        .call(
            Method::PUT,
            &b.path(&format!("/webhooks/{id}")),
            Some(&b.secret),
            Some(body("http://127.0.0.1:9/evil", "order")),
        )
        .await;
    assert_error(status, &body_, StatusCode::NOT_FOUND);
    let (status, body_) = app
        .post(
            &b,
            &format!("/webhooks/{id}/replay"),
            json!({"start": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(status, &body_, StatusCode::NOT_FOUND);
    let (status, body_) = app
        .send(
            Method::GET,
            &format!("/open-api/v1.0/webhooks/{id}"),
            Auth::Basic(&b.id, &b.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body_}");
    assert_eq!(body_["code"], "WEBHOOK_NOT_FOUND");
    // A path that is not UTF-8 is answered in Fourthwall's format, not as plain text.
    let (status, body_) = app
        .send(
            Method::GET,
            "/open-api/v1.0/webhooks/%FF",
            Auth::Basic(&b.id, &b.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body_}");
    assert_eq!(body_["code"], "INVALID_REQUEST");
    let (_, list) = app.get(&b, "/webhooks").await;
    assert_eq!(list["webhooks"], json!([]));

    // A's webhook is untouched; A can update and delete it.
    let (status, got) = app.get(&a, &format!("/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["webhook"]["callback"]["url"], "http://127.0.0.1:9/b");
    let (status, put) = app
        .call(
            Method::PUT,
            &a.path(&format!("/webhooks/{id}")),
            Some(&a.secret),
            Some(json!({"webhook": {"callback": {"url": "http://127.0.0.1:9/c", "auth": {"bearer": {"token": "t0k"}}}, "topic": "order"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["webhook"]["callback"]["auth"]["bearer"]["token"], "***");
    let (status, body_) = app
        .post(
            &a,
            &format!("/webhooks/{id}/replay"),
            json!({"start": "yesterday"}),
        )
        .await;
    assert_error(status, &body_, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .call(
            Method::DELETE,
            &a.path(&format!("/webhooks/{id}")),
            Some(&a.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body_) = app.get(&a, &format!("/webhooks/{id}")).await;
    assert_error(status, &body_, StatusCode::NOT_FOUND);
    let (status, body_) = app
        .call(Method::GET, &a.path("/webhooks"), None, None)
        .await;
    assert_error(status, &body_, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_ssrf_guard_refuses_private_addresses_by_default() {
    let app = TestApp::spawn().await;
    let t = app.tenant("ssrf").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://localhost/hook",
    ] {
        let (status, body) = app
            .post(
                &t,
                "/webhooks",
                json!({"webhook": {"callback": {"url": url}, "topic": "order"}}),
            )
            .await;
        let message = assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert!(message.contains("address"), "{url}: {message}");
        let (status, body) = app
            .send(
                Method::POST,
                "/open-api/v1.0/webhooks",
                Auth::Basic(&t.id, &t.secret),
                Some(json!({"url": url, "allowedTypes": ["ORDER_UPDATED"]})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["code"], "WEBHOOK_URI_IP_NOT_ALLOWED", "{url}");
    }
    let (_, list) = app.get(&t, "/webhooks").await;
    assert_eq!(list["webhooks"], json!([]));
}

#[tokio::test]
async fn the_dispatcher_refuses_private_addresses_at_connect_time() {
    // Registered while private addresses were allowed, delivered by a dispatcher that does not
    // allow them: the attempt is refused before any connection, and logged.
    let app = loopback_app().await;
    let t = app.tenant("connect").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    let (id, _) = subscribe(&app, &t, &receiver.url, "order").await;
    let mut config = test_config();
    config.policy = Arc::new(UrlPolicy::default());
    config.schedule = vec![Duration::ZERO];
    let _d = start_dispatcher(app.store.clone(), config);
    app.order(&t, "P-1", 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let (_, log) = app.get(&t, &format!("/webhooks/{id}/deliveries")).await;
        if !log["deliveries"].as_array().unwrap().is_empty() {
            break log;
        }
        assert!(Instant::now() < deadline, "no attempt logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let attempt = &log["deliveries"][0];
    assert!(attempt["statusCode"].is_null());
    assert!(
        attempt["error"].as_str().unwrap().contains("127.0.0.1"),
        "{attempt}"
    );
    assert!(receiver.all().is_empty());
}

/// Waits (bounded) until the webhook's delivery log holds `n` attempts.
async fn attempts_logged(app: &TestApp, t: &Tenant, id: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = app.get(t, &format!("/webhooks/{id}/deliveries")).await;
        let logged = body["deliveries"].as_array().map_or(0, Vec::len);
        if logged >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{logged} of {n} attempts logged: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A clock that runs with real time plus an offset the test moves.
pub(crate) struct ShiftedClock(pub std::sync::atomic::AtomicI64);

impl waybill_server::webhooks::Clock for ShiftedClock {
    fn now(&self) -> waybill_core::Timestamp {
        chrono::Utc::now() + chrono::Duration::milliseconds(self.0.load(Ordering::SeqCst))
    }
}

#[tokio::test]
async fn a_subscription_failing_for_five_days_is_disabled() {
    let app = loopback_app().await;
    let t = app.tenant("failing").await;
    let receiver = Receiver::start(|_, _| Answer::Status(500)).await;
    let (id, _) = subscribe(&app, &t, &receiver.url, "order").await;
    let clock = Arc::new(ShiftedClock(std::sync::atomic::AtomicI64::new(0)));
    let mut config = test_config();
    config.clock = clock.clone();
    // Retries an hour apart (on the injected clock).
    config.schedule = vec![Duration::ZERO; 1]
        .into_iter()
        .chain(std::iter::repeat_n(Duration::from_secs(3600), 10))
        .collect();
    config.jitter = 0.0;
    let _d = start_dispatcher(app.store.clone(), config);
    app.order(&t, "F-1", 1).await;
    receiver
        .wait_for("the first failure", Duration::from_secs(20), |r| {
            r.len() == 1
        })
        .await;
    // The clock may move only once the dispatcher has recorded the attempt (the receiver sees
    // it first): an attempt recorded after the jump would be rescheduled from the new time.
    attempts_logged(&app, &t, &id, 1).await;
    // Two hours later: due again, fails again, but the subscription has failed for only 2 h.
    clock.0.store(2 * 3_600_000, Ordering::SeqCst);
    receiver
        .wait_for("the second failure", Duration::from_secs(20), |r| {
            r.len() == 2
        })
        .await;
    attempts_logged(&app, &t, &id, 2).await;
    let (_, body) = app.get(&t, &format!("/webhooks/{id}")).await;
    assert_eq!(body["webhook"]["enabled"], true, "{body}");
    // Five days and a bit after the first failure: the next failure disables it.
    clock.0.store(5 * 86_400_000 + 7_200_000, Ordering::SeqCst);
    receiver
        .wait_for("the third failure", Duration::from_secs(20), |r| {
            r.len() == 3
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = app.get(&t, &format!("/webhooks/{id}")).await;
        if body["webhook"]["enabled"] == false {
            assert!(
                body["webhook"]["disabledReason"]
                    .as_str()
                    .unwrap()
                    .contains("120 hours"),
                "{body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not disabled: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Re-enabling through PUT clears the failure state.
    let (status, body) = app
        .call(
            Method::PUT,
            &t.path(&format!("/webhooks/{id}")),
            Some(&t.secret),
            Some(json!({"webhook": {"callback": {"url": receiver.url}, "topic": "order", "enabled": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["webhook"]["enabled"], true);
}

#[tokio::test]
async fn order_deleted_carries_the_last_known_order() {
    let app = loopback_app().await;
    let t = app.tenant("deleted").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    let (_, secret) = subscribe(&app, &t, &receiver.url, "order").await;
    let _d = start_dispatcher(app.store.clone(), test_config());
    app.order(&t, "D-1", 2).await;
    receiver
        .wait_for("order.created", Duration::from_secs(20), |r| r.len() == 1)
        .await;
    let (status, body) = app
        .call(
            Method::DELETE,
            &t.path("/orders/D-1"),
            Some(&t.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    receiver
        .wait_for("order.deleted", Duration::from_secs(20), |r| r.len() == 2)
        .await;
    let all = receiver.all();
    let (created, deleted) = (all[0].json(), all[1].json());
    assert_eq!(created["type"], "order.created");
    assert_eq!(deleted["type"], "order.deleted");
    assert_eq!(deleted["seq"], 2);
    // The snapshot is the order as last sent, in the Redo GET shape.
    assert_eq!(deleted["order"], created["order"]);
    assert_eq!(deleted["order"]["orderId"], "D-1");
    verify_standard(&secret, &all[1]);

    // Deleted before anything was sent: only the ids are known.
    let quiet = Receiver::start(|_, _| Answer::Ok).await;
    let t2 = app.tenant("deleted-early").await;
    app.order(&t2, "D-2", 1).await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &t2.path("/orders/D-2"),
            Some(&t2.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (id, _) = subscribe(&app, &t2, &quiet.url, "order").await;
    let (status, body) = app
        .post(
            &t2,
            &format!("/webhooks/{id}/replay"),
            json!({"start": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["enqueued"], 2);
    quiet
        .wait_for("the replayed events", Duration::from_secs(20), |r| {
            r.len() == 2
        })
        .await;
    let last = quiet.all()[1].json();
    assert_eq!(last["type"], "order.deleted");
    assert_eq!(last["order"]["orderId"], "D-2");
    assert!(last["order"]["id"].is_string());
}

#[tokio::test]
async fn https_callbacks_speak_tls() {
    // A "receiver" that answers in plain text before any handshake: the dispatcher must try TLS
    // (and fail the handshake), not send the event in the clear.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen_plaintext = Arc::new(AtomicUsize::new(0));
    let seen = seen_plaintext.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            if let Ok(n) = read_some(&stream, &mut buf).await
                && buf[..n].starts_with(b"POST")
            {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            let _ = write_all(&stream, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        }
    });
    let app = loopback_app().await;
    let t = app.tenant("tls").await;
    let (id, _) = subscribe(&app, &t, &format!("https://{addr}/hook"), "order").await;
    let mut config = test_config();
    config.schedule = vec![Duration::ZERO];
    let _d = start_dispatcher(app.store.clone(), config);
    app.order(&t, "TLS-1", 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let attempt = loop {
        let (_, log) = app.get(&t, &format!("/webhooks/{id}/deliveries")).await;
        if let Some(a) = log["deliveries"].as_array().unwrap().first() {
            break a.clone();
        }
        assert!(Instant::now() < deadline, "no attempt logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(attempt["statusCode"].is_null(), "{attempt}");
    assert_eq!(
        seen_plaintext.load(Ordering::SeqCst),
        0,
        "the event went out in the clear"
    );
    let error = attempt["error"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        error.contains("corrupt") || error.contains("tls") || error.contains("handshake"),
        "{error}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = loopback_app().await;
    let t = app.tenant("redirect").await;
    let target = Receiver::start(|_, _| Answer::Ok).await;
    let to: &'static str = Box::leak(target.url.clone().into_boxed_str());
    let redirecting = Receiver::start(move |_, _| Answer::Redirect(to)).await;
    let (id, _) = subscribe(&app, &t, &redirecting.url, "order").await;
    let mut config = test_config();
    config.schedule = vec![Duration::ZERO, Duration::from_millis(10)];
    let _d = start_dispatcher(app.store.clone(), config);
    app.order(&t, "RD-1", 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let (_, log) = app.get(&t, &format!("/webhooks/{id}/deliveries")).await;
        if log["deliveries"].as_array().unwrap().len() == 2 {
            break log;
        }
        assert!(Instant::now() < deadline, "attempts not logged: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for attempt in log["deliveries"].as_array().unwrap() {
        assert_eq!(attempt["statusCode"], 307, "{attempt}");
    }
    assert_eq!(redirecting.all().len(), 2);
    assert!(target.all().is_empty(), "a redirect was followed");
}

/// Two dispatchers (as two `waybill worker` processes would be) share one database: every
/// event is delivered exactly once to a receiver that always answers 200, and each order's
/// events arrive in sequence. On PostgreSQL this exercises the claim lock and
/// `FOR UPDATE SKIP LOCKED`; on SQLite, the single writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_share_the_work_without_double_sending() {
    const ORDERS: usize = 10;
    const PER_ORDER: usize = 10;
    let app = Arc::new(loopback_app().await);
    let t = app.tenant("shared").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    let (_, secret) = subscribe(&app, &t, &receiver.url, "fulfillment").await;
    let second_store = app.db.open().await.expect("a second store on the database");
    let first = start_dispatcher(app.store.clone(), test_config());
    let second = start_dispatcher(second_store, test_config());

    let mut writers = tokio::task::JoinSet::new();
    for o in 0..ORDERS {
        let (app, t) = (app.clone(), t.clone());
        writers.spawn(async move {
            let path = fulfilled_order(&app, &t, &format!("S-{o}")).await;
            for _ in 1..PER_ORDER {
                let (code, body) = app.post(&t, &path, json!({"status": "in_transit"})).await;
                assert_eq!(code, StatusCode::OK, "{body}");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer");
    }
    receiver
        .wait_for("every event", Duration::from_secs(60), |r| {
            distinct_ok(r) == ORDERS * PER_ORDER
        })
        .await;
    // Give a double send, if there were one, time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.abort();
    second.abort();

    let receipts = receiver.all();
    assert_eq!(
        receipts.len(),
        ORDERS * PER_ORDER,
        "every event was sent exactly once"
    );
    for r in &receipts {
        verify_standard(&secret, r);
    }
    let per_order = first_success_seqs(&receipts);
    assert_eq!(per_order.len(), ORDERS);
    assert_no_inversions(&per_order);
}

/// Name resolution is the network's state, not the request's: a callback host that does not
/// resolve now is accepted at registration (its deliveries fail and retry with that reason),
/// while a literal address webhooks may not reach is still refused.
#[tokio::test]
async fn an_unresolvable_callback_host_is_accepted_and_a_private_address_is_not() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let body = |url: &str| json!({"webhook": {"callback": {"url": url}, "topic": "order"}});
    let (status, created) = app
        .post(&t, "/webhooks", body("https://waybill-test.invalid/hooks"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["webhook"]["callback"]["url"],
        "https://waybill-test.invalid/hooks"
    );
    let (status, refused) = app
        .post(&t, "/webhooks", body("http://10.0.0.1/hooks"))
        .await;
    let message = assert_error(status, &refused, StatusCode::BAD_REQUEST);
    assert!(message.contains("10.0.0.1"), "{message}");
}
