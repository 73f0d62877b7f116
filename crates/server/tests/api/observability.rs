//! `/metrics` and request ids, over real HTTP.
//!
//! The metrics registry is process-wide and the tests of this binary run in parallel, so
//! counters are compared with a reading taken before this test's own requests (at least the
//! difference this test made), never with absolute numbers.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use waybill_server::AppState;

use crate::common::*;
use crate::webhooks::{Answer, Receiver, loopback_app, start_dispatcher, subscribe, test_config};

/// Fetches `/metrics` as text, asserting the OpenMetrics content type.
async fn scrape(app: &TestApp) -> String {
    let resp = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = resp.text().await.expect("metrics body");
    assert!(
        body.ends_with("# EOF\n"),
        "an OpenMetrics exposition ends with # EOF"
    );
    body
}

/// The value of the sample named exactly `series` (name with its labels), or 0 when absent.
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().expect("numeric sample"))
}

const ORDERS_ROUTE: &str = "/v2.2/stores/{store_id}/orders";
const ORDER_ROUTE: &str = "/v2.2/stores/{store_id}/orders/{order_id}";

fn requests(method: &str, route: &str, status: u16) -> String {
    format!(
        r#"http_requests_total{{dialect="redo",method="{method}",route="{route}",status="{status}"}}"#
    )
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_webhook_attempts() {
    let app = loopback_app().await;
    let t = app.tenant("Metrics").await;
    let before = scrape(&app).await;
    for family in [
        "http_requests",
        "http_request_duration_seconds",
        "webhook_outbox_unfanned_events",
        "webhook_open_deliveries",
        "webhook_attempts",
        "webhook_failures",
        "automation_runs",
    ] {
        assert!(
            before.contains(&format!("# TYPE {family} ")),
            "{family} is registered before it is used:\n{before}"
        );
    }

    // The first delivery attempt fails, the retry succeeds.
    let receiver = Receiver::start(|n, _| {
        if n == 0 {
            Answer::Status(500)
        } else {
            Answer::Ok
        }
    })
    .await;
    subscribe(&app, &t, &receiver.url, "order").await;
    for i in 0..3 {
        app.order(&t, &format!("M-{i}"), 2).await;
    }
    let (status, _) = app.get(&t, "/orders/M-404").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&t, "/orders/M-0").await;
    assert_eq!(status, StatusCode::OK);

    // Nothing has fanned the three order.created events out yet.
    let queued = scrape(&app).await;
    assert_eq!(sample(&queued, "webhook_outbox_unfanned_events"), 3.0);
    assert_eq!(sample(&queued, "webhook_open_deliveries"), 0.0);
    let posted = requests("POST", ORDERS_ROUTE, 200);
    assert!(
        sample(&queued, &posted) - sample(&before, &posted) >= 3.0,
        "{queued}"
    );
    let missing = requests("GET", ORDER_ROUTE, 404);
    assert!(
        sample(&queued, &missing) - sample(&before, &missing) >= 1.0,
        "{queued}"
    );
    let latency = format!(
        r#"http_request_duration_seconds_count{{dialect="redo",method="POST",route="{ORDERS_ROUTE}"}}"#
    );
    assert!(sample(&queued, &latency) - sample(&before, &latency) >= 3.0);
    let all_buckets = format!(
        r#"http_request_duration_seconds_bucket{{le="+Inf",dialect="redo",method="POST",route="{ORDERS_ROUTE}"}}"#
    );
    assert_eq!(sample(&queued, &all_buckets), sample(&queued, &latency));
    // Routes are templates: no store id or order id becomes a label value.
    assert!(!queued.contains(&t.id), "a raw path leaked into a label");
    assert!(!queued.contains("M-404"), "a raw path leaked into a label");

    let dispatcher = start_dispatcher(app.store.clone(), test_config());
    receiver
        .wait_for("three deliveries", Duration::from_secs(10), |r| {
            r.iter().filter(|r| r.ok).count() >= 3
        })
        .await;
    // The receiver sees the answer before the dispatcher records it: wait for the backlog.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let delivered = loop {
        let body = scrape(&app).await;
        if sample(&body, "webhook_open_deliveries") == 0.0 {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries stayed open:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    dispatcher.abort();
    assert_eq!(sample(&delivered, "webhook_outbox_unfanned_events"), 0.0);
    let attempts = r#"webhook_attempts_total{flavor="redo"}"#;
    let failures = r#"webhook_failures_total{flavor="redo"}"#;
    assert!(sample(&delivered, attempts) - sample(&before, attempts) >= 4.0);
    assert!(sample(&delivered, failures) - sample(&before, failures) >= 1.0);
    assert!(sample(&delivered, failures) < sample(&delivered, attempts));

    waybill_server::metrics::automation_run("observability-test", "ok");
    let after = scrape(&app).await;
    assert_eq!(
        sample(
            &after,
            r#"automation_runs_total{action="observability-test",result="ok"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let db = waybill_store::testing::TestDatabase::new()
        .await
        .expect("test database");
    let store = db.open().await.expect("open store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(waybill_server::serve(
        listener,
        AppState::new(store).with_metrics(false),
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("request");
    assert_eq!(metrics.status(), StatusCode::NOT_FOUND);
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_an_incoming_one_is_echoed() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Ids").await;
    let mut generated = Vec::new();
    for (method, path) in [
        (Method::GET, "/healthz".to_owned()),
        (Method::GET, "/no/such/route".to_owned()),
        (Method::GET, t.path("/orders/none")),
    ] {
        let resp = app
            .client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&t.secret)
            .send()
            .await
            .expect("request");
        let id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path} answered without x-request-id"))
            .to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
        generated.push(id);
    }
    generated.sort();
    generated.dedup();
    assert_eq!(generated.len(), 3, "each request gets its own id");

    let resp = app
        .client
        .post(format!("{}{}", app.base, t.path("/orders")))
        .bearer_auth(&t.secret)
        .header("x-request-id", "client-trace-42")
        .json(
            &json!({"orderId": "R-1", "createdAt": "2024-03-20T12:00:00Z",
                      "lineItems": [{"id": "l", "productId": "p", "title": "t", "quantity": 1}]}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("client-trace-42")
    );
}
