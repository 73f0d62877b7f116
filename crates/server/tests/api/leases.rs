//! Idempotency-key leases over HTTP, with the lease shortened to one second: a request slower
//! than several leases keeps its key (it renews it while it runs), a request dropped by the
//! time limit stops renewing and frees its key one lease later, and a reservation left by a
//! holder that never renews (a process that died) is taken over once its lease has run out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::IntoResponse;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Notify;
use waybill_server::AppState;
use waybill_server::limits::LimitSettings;
use waybill_store::testing::{Backend, POSTGRES_ENV, TestDatabase};
use waybill_store::{IdempotencyBegin, IdempotencyRequest, Store};

use crate::common::*;

const LEASE: Duration = Duration::from_secs(1);

/// A handler that counts its runs and answers only when the test lets it.
#[derive(Default)]
struct Gate {
    runs: AtomicUsize,
    entered: Notify,
    release: Notify,
}

async fn gated(State(gate): State<Arc<Gate>>) -> axum::response::Response {
    let run = gate.runs.fetch_add(1, Ordering::SeqCst) + 1;
    gate.entered.notify_one();
    gate.release.notified().await;
    (StatusCode::CREATED, axum::Json(json!({"run": run}))).into_response()
}

/// Serves one Redo-shaped route, `POST /v2.2/stores/{store}/slow`, under the real
/// idempotency middleware (and the real limits, for the time limit) over `store`.
async fn serve_gated(store: Arc<dyn Store>, limits: LimitSettings) -> (String, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let state = AppState::new(store)
        .with_idempotency_lease(LEASE)
        .with_limits(limits);
    let app = axum::Router::new()
        .route("/v2.2/stores/{store_id}/slow", axum::routing::post(gated))
        .with_state(gate.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            waybill_server::idempotency::handle,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state,
            waybill_server::limits::enforce,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    (base, gate)
}

struct Answer {
    status: StatusCode,
    replayed: Option<String>,
    body: Value,
}

async fn post(client: &reqwest::Client, url: &str, secret: &str, key: &str, body: &[u8]) -> Answer {
    let resp = client
        .post(url)
        .bearer_auth(secret)
        .header("Idempotency-Key", key)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let replayed = resp
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        replayed,
        body,
    }
}

fn in_progress(answer: &Answer) -> bool {
    answer.status == StatusCode::CONFLICT
        && answer.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("still in progress"))
}

/// Retries `key` every 100 ms for `span`, asserting each retry is refused as in progress;
/// how many were.
async fn refused_throughout(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    key: &str,
    span: Duration,
) -> usize {
    let started = Instant::now();
    let mut refused = 0;
    while started.elapsed() < span {
        let answer = post(client, url, secret, key, b"{}").await;
        assert!(
            in_progress(&answer),
            "a retry {:?} into a running request was not refused as in progress: {} {}",
            started.elapsed(),
            answer.status,
            answer.body
        );
        refused += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    refused
}

#[tokio::test]
async fn a_request_slower_than_the_lease_keeps_its_key() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (shop, key) = store.create_store("slow").await.unwrap();
    let (base, gate) = serve_gated(store, LimitSettings::default()).await;
    let url = format!("{base}/v2.2/stores/{}/slow", shop.id);
    let client = reqwest::Client::new();

    let first = tokio::spawn({
        let (client, url, secret) = (client.clone(), url.clone(), key.secret.clone());
        async move { post(&client, &url, &secret, "slow-1", b"{}").await }
    });
    tokio::time::timeout(Duration::from_secs(10), gate.entered.notified())
        .await
        .expect("the first request reached its handler");
    // Three and a half leases: without renewals the key would be taken over after the first.
    let refused = refused_throughout(&client, &url, &key.secret, "slow-1", LEASE * 7 / 2).await;
    assert!(refused >= 10, "only {refused} retries in 3.5 s");
    gate.release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.replayed.as_deref(), Some("false"));
    assert_eq!(first.body["run"], 1);

    // Its answer is stored: a retry is a replay, and the handler ran once.
    let again = post(&client, &url, &key.secret, "slow-1", b"{}").await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.replayed.as_deref(), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(gate.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_request_dropped_by_the_time_limit_frees_its_key_after_one_lease() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (shop, key) = store.create_store("dropped").await.unwrap();
    let limits = LimitSettings {
        request_timeout: Duration::from_millis(1500),
        ..LimitSettings::default()
    };
    let (base, gate) = serve_gated(store, limits).await;
    let url = format!("{base}/v2.2/stores/{}/slow", shop.id);
    let client = reqwest::Client::new();

    // The first request renews its key until the time limit drops it (503) at 1.5 s.
    let first = tokio::spawn({
        let (client, url, secret) = (client.clone(), url.clone(), key.secret.clone());
        async move { post(&client, &url, &secret, "dropped-1", b"{}").await }
    });
    tokio::time::timeout(Duration::from_secs(10), gate.entered.notified())
        .await
        .expect("the first request reached its handler");
    let entered = Instant::now();
    refused_throughout(
        &client,
        &url,
        &key.secret,
        "dropped-1",
        Duration::from_millis(1200),
    )
    .await;
    let first = first.await.unwrap();
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        first.body
    );
    let dropped = entered.elapsed();

    // Its last renewal (at most a third of a lease before the drop) holds the key for one
    // lease; after that a retry runs (and is let through at once).
    gate.release.notify_one();
    let (freed, taken_over) = loop {
        let answer = post(&client, &url, &key.secret, "dropped-1", b"{}").await;
        if !in_progress(&answer) {
            break (entered.elapsed(), answer);
        }
        assert!(
            entered.elapsed() < dropped + LEASE * 3,
            "the dropped request's key was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        taken_over.status,
        StatusCode::CREATED,
        "{}",
        taken_over.body
    );
    assert_eq!(taken_over.body["run"], 2, "the retry ran the handler again");
    assert_eq!(gate.runs.load(Ordering::SeqCst), 2);
    eprintln!("leases: a request dropped after {dropped:?}; its key was free after {freed:?}");
    assert!(
        freed >= dropped,
        "the key was free {freed:?} after the request started, before it was dropped"
    );
    assert!(
        freed <= dropped + LEASE + Duration::from_millis(800),
        "the key was free only {freed:?} after the request started (dropped at {dropped:?})"
    );
}

#[tokio::test]
async fn a_dead_holders_key_is_taken_over_after_the_lease() {
    let app = TestApp::spawn_configured(|s| s.with_idempotency_lease(LEASE)).await;
    let t = app.tenant("dead").await;
    let path = t.path("/orders");
    let body = serde_json::to_vec(&order_body("DEAD-1", 2)).unwrap();
    // A holder reserves the key for exactly this request, then never renews it: its process
    // died before the order was written.
    let dead = IdempotencyRequest {
        store_id: t.id.clone(),
        key: "dead-1".into(),
        fingerprint: waybill_server::idempotency::fingerprint(
            &axum::http::Method::POST,
            &path,
            &body,
        ),
        token: "the dead holder".into(),
        lease: LEASE,
        ttl: Duration::from_secs(3600),
    };
    let reserved = Instant::now();
    assert_eq!(
        app.store
            .idempotency_begin(dead.clone(), waybill_core::time::now())
            .await
            .unwrap(),
        IdempotencyBegin::Proceed
    );

    let url = format!("{}{path}", app.base);
    let mut refused = 0;
    let (taken_over, answer) = loop {
        let answer = post(&app.client, &url, &t.secret, "dead-1", &body).await;
        if !in_progress(&answer) {
            break (reserved.elapsed(), answer);
        }
        refused += 1;
        assert!(
            reserved.elapsed() < LEASE * 5,
            "the dead holder's key was never taken over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("leases: a dead holder's key was taken over {taken_over:?} after it was reserved");
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.replayed.as_deref(), Some("false"));
    assert_eq!(answer.body["externalOrderId"], "DEAD-1", "{}", answer.body);
    assert!(
        refused > 0,
        "the key was never refused while the holder's lease ran"
    );
    assert!(
        taken_over >= LEASE - Duration::from_millis(50),
        "taken over after {taken_over:?}, within the dead holder's lease"
    );
    assert!(
        taken_over <= LEASE + Duration::from_secs(1),
        "taken over only after {taken_over:?}"
    );

    // The dead holder wakes up: it cannot renew, release or answer for the key any more.
    let hold = dead.hold();
    let now = waybill_core::time::now();
    assert!(
        !app.store
            .idempotency_renew(&hold, LEASE, now)
            .await
            .unwrap()
    );
    assert!(!app.store.idempotency_release(&hold).await.unwrap());
    let replay = post(&app.client, &url, &t.secret, "dead-1", &body).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.replayed.as_deref(), Some("true"));
    assert_eq!(replay.body, answer.body);
    let (status, order) = app.get(&t, "/orders/DEAD-1").await;
    assert_eq!(status, StatusCode::OK, "{order}");
}

/// The real thing on PostgreSQL: a fulfillment waits on its order's row lock, held by another
/// transaction, for three leases; retries with its key are refused as in progress the whole
/// time, and once the lock goes the request finishes and its answer is replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(waybill_postgres),
    ignore = "needs PostgreSQL: set WAYBILL_TEST_POSTGRES_URL"
)]
async fn a_fulfillment_waiting_on_a_lock_past_the_lease_keeps_its_key() {
    assert_eq!(
        Backend::from_env(),
        Backend::Postgres,
        "this test needs PostgreSQL: set {POSTGRES_ENV}"
    );
    let app = Arc::new(TestApp::spawn_configured(|s| s.with_idempotency_lease(LEASE)).await);
    let t = app.tenant("locked").await;
    app.order(&t, "LOCK-1", 3).await;
    let (mut pg, connection) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let lock = pg.transaction().await.unwrap();
    let locked = lock
        .execute(
            "SELECT 1 FROM orders WHERE store_id = $1 AND external_id = 'LOCK-1' FOR UPDATE",
            &[&t.id],
        )
        .await
        .unwrap();
    assert_eq!(locked, 1);

    let url = format!("{}{}", app.base, t.path("/orders/LOCK-1/fulfillments"));
    let body = serde_json::to_vec(&json!({"fulfillmentId": "F-LOCK",
        "lineItems": [{"id": "line-1", "quantity": 2}]}))
    .unwrap();
    let first = tokio::spawn({
        let (app, url, secret, body) = (app.clone(), url.clone(), t.secret.clone(), body.clone());
        async move { post(&app.client, &url, &secret, "locked-1", &body).await }
    });
    // Wait until the request has reserved its key (seen from a connection of the test's own),
    // so that the retries below cannot be the ones to reserve it.
    let (watch, connection) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let started = Instant::now();
    loop {
        let reserved = watch
            .query_opt(
                "SELECT state FROM idempotency_keys WHERE store_id = $1 AND key = 'locked-1'",
                &[&t.id],
            )
            .await
            .unwrap();
        if reserved.is_some_and(|row| row.get::<_, &str>(0) == "in_progress") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the first request never reserved its key"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut refused = 0;
    let span = Instant::now();
    while span.elapsed() < LEASE * 3 {
        let answer = post(&app.client, &url, &t.secret, "locked-1", &body).await;
        assert!(
            in_progress(&answer),
            "a retry {:?} into the waiting request was not refused: {} {}",
            span.elapsed(),
            answer.status,
            answer.body
        );
        refused += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !first.is_finished(),
        "the fulfillment did not wait on the lock"
    );
    lock.commit().await.unwrap();
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.replayed.as_deref(), Some("false"));
    let again = post(&app.client, &url, &t.secret, "locked-1", &body).await;
    assert_eq!(again.replayed.as_deref(), Some("true"));
    assert_eq!(again.body, first.body);
    let (_, order) = app.get(&t, "/orders/LOCK-1").await;
    assert_eq!(
        order["fulfillments"].as_array().unwrap().len(),
        1,
        "{order}"
    );
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 2);
    eprintln!("leases: {refused} retries refused while the fulfillment waited 3 leases");
}
