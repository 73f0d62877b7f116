//! A return's whole life through the API and the dashboard in headless Chromium, with its
//! webhooks delivered: a real loopback receiver subscribed (through the Redo API) to the topic
//! `return`, the real dispatcher; the order and its fulfillment made through the API, the
//! return created and moved `in_transit → received → closed` in the dashboard, read back
//! through the Redo API; the receiver got `return.created` and each `return.updated` in order,
//! each with the right status and a signature that verifies. The new-return form, the return
//! page and the returns list are checked for sideways scrolling and shot at 1400 and 390 px.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fantoccini::{Client, Locator};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use waybill_server::webhooks::{Dispatcher, DispatcherConfig, UrlPolicy};

use crate::browser::{
    Driver, browser, click, program, sign_in, type_into, wait_for_path, wait_text,
};
use crate::exceptions::check_and_shoot;
use crate::harness::{App, TRACKING};

/// One request the receiver got: its signature headers and its body.
#[derive(Clone)]
struct Receipt {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

/// A webhook receiver on loopback: records every POST to `/hook` and answers 200.
async fn receiver() -> (String, Arc<Mutex<Vec<Receipt>>>) {
    let receipts: Arc<Mutex<Vec<Receipt>>> = Arc::default();
    let kept = receipts.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                kept.lock().expect("receipts").push(Receipt {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body: body.to_vec(),
                });
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, receipts)
}

/// Checks a Standard Webhooks signature as a receiver would.
fn verifies(secret: &str, r: &Receipt) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{}.{}.", r.id, r.timestamp).as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

fn dispatcher_config() -> DispatcherConfig {
    DispatcherConfig {
        schedule: vec![Duration::ZERO; 10],
        timeout: Duration::from_secs(2),
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_millis(25),
        policy: Arc::new(UrlPolicy::allow_all()),
        ..DispatcherConfig::default()
    }
}

#[tokio::test]
async fn a_returns_lifecycle_in_headless_chromium_with_webhooks() {
    let (Some(chromedriver), Some(chromium)) = (
        program("WAYBILL_CHROMEDRIVER", "chromedriver"),
        program("WAYBILL_CHROMIUM", "chromium"),
    ) else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("CI is set but chromium/chromedriver are not installed");
        }
        eprintln!("\n[waybill] *** returns browser test NOT RUN: no chromium ***");
        return;
    };
    tokio::time::timeout(
        Duration::from_secs(240),
        lifecycle(&chromedriver, &chromium),
    )
    .await
    .expect("the browser test finished in time");
}

/// Picks `value` in the `<select>` matching `css`.
async fn choose(client: &Client, css: &str, value: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
}

async fn lifecycle(chromedriver: &Path, chromium: &Path) {
    let app = App::spawn().await;
    // The order 1001 and its fulfillment ful-1 (one T-shirt by UPS), through the Redo API.
    let seeded = app.seed().await;
    let (hook_url, receipts) = receiver().await;
    let subscribed = app
        .api(
            &seeded.secret,
            &format!("/v2.2/stores/{}/webhooks", seeded.store_id),
            json!({"webhook": {"callback": {"url": hook_url}, "topic": "return"}}),
        )
        .await;
    let secret = subscribed["webhook"]["secret"]
        .as_str()
        .expect("signing secret")
        .to_owned();
    let dispatcher = Dispatcher::new(app.store.clone(), dispatcher_config()).expect("dispatcher");
    let dispatcher = tokio::spawn(dispatcher.run(std::future::pending()));

    let driver = Driver::start(chromedriver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = browser(&driver, chromium, profile.path()).await;
    let base = app.base.clone();
    sign_in(&client, &base, &seeded.secret).await;
    wait_for_path(&client, "exceptions", |p| p == "/ui/exceptions").await;

    // The order page links to the form; the form takes one T-shirt back with a parcel.
    client
        .goto(&format!("{base}/ui/orders/1001"))
        .await
        .expect("order page");
    wait_text(&client, "main h1", |t| t == "Order 1001").await;
    click(&client, "#new-return").await;
    wait_for_path(&client, "new return", |p| p.ends_with("/returns/new")).await;
    wait_text(&client, "main h1", |t| t.starts_with("New return")).await;
    check_and_shoot(&client, "return-new").await;
    type_into(&client, "#quantity-1", "1").await;
    choose(&client, "#reason-1", "too_small").await;
    type_into(&client, "#return-tracking", TRACKING).await;
    type_into(&client, "#return-note", "A size up, please").await;
    click(&client, "#create-return button[type=submit]").await;
    let path = wait_for_path(&client, "the new return", |p| p.ends_with("?done=created")).await;
    let return_id = path
        .strip_prefix("/ui/returns/")
        .and_then(|p| p.strip_suffix("?done=created"))
        .expect("return path")
        .to_owned();
    wait_text(&client, "#return-status", |t| t == "Requested").await;
    let parcel = wait_text(&client, "ul.packages", |t| t.contains(TRACKING)).await;
    assert!(parcel.contains("UPS"), "the carrier was detected: {parcel}");

    // Along the lifecycle, one form post at a time.
    for (value, label) in [
        ("in_transit", "In transit"),
        ("received", "Received"),
        ("closed", "Closed"),
    ] {
        choose(&client, "#return-next", value).await;
        type_into(&client, "#return-message", &format!("Now {label}")).await;
        click(&client, "#return-status-form button[type=submit]").await;
        wait_text(&client, "#return-status", |t| t == label).await;
        wait_text(&client, "#return-notice", |t| t.contains("updated")).await;
        if value == "received" {
            check_and_shoot(&client, "return").await;
        }
    }
    let history = wait_text(&client, "ol.timeline", |t| t.contains("Return closed")).await;
    assert!(history.contains("Now In transit"), "{history}");
    // A closed return offers no further move.
    assert!(
        client
            .find(Locator::Id("return-status-form"))
            .await
            .is_err(),
        "no status form once closed"
    );

    // The returns list with it, and the order page with its units.
    client
        .goto(&format!("{base}/ui/returns"))
        .await
        .expect("returns list");
    wait_text(&client, "main table", |t| t.contains(&return_id)).await;
    check_and_shoot(&client, "returns").await;
    client
        .goto(&format!("{base}/ui/orders/1001"))
        .await
        .expect("order page");
    let lines = wait_text(&client, "main table", |t| t.contains("T-shirt")).await;
    // Ordered, fulfilled, remaining, returned, returnable.
    assert!(
        lines.contains("T-shirt (line-1) TEE-M 2 1 1 1 0"),
        "{lines}"
    );

    // Read back through the Redo API.
    let got: Value = app
        .client
        .get(app.url(&format!("/v2.2/returns/{return_id}")))
        .bearer_auth(&seeded.secret)
        .send()
        .await
        .expect("get return")
        .json()
        .await
        .expect("JSON");
    let r = &got["return"];
    assert_eq!(r["status"], "complete", "{got}");
    assert_eq!(r["lifecycleStatus"], "closed", "{got}");
    assert_eq!(r["externalOrderId"], "1001");
    assert_eq!(r["items"][0]["quantity"], 1);
    assert_eq!(r["items"][0]["reason"], "too_small");
    assert_eq!(r["notes"], "A size up, please");
    assert_eq!(r["shipment"]["carrier"], "UPS");
    let statuses: Vec<&str> = r["shipment"]["trackingHistory"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "return.requested",
            "return.in_transit",
            "return.received",
            "return.closed"
        ]
    );
    assert_eq!(got["order"]["lineItems"][0]["returnedQuantity"], 1);

    // The webhooks: created, then each update, in order, signed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let received = loop {
        let now = receipts.lock().expect("receipts").clone();
        if now.len() >= 4 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "only {} webhook(s) arrived",
            now.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received_all = receipts.lock().expect("receipts").clone();
    assert_eq!(received_all.len(), 4, "exactly four events");
    let mut seen = Vec::new();
    for receipt in &received {
        assert!(verifies(&secret, receipt), "the signature verifies");
        let body: Value = serde_json::from_slice(&receipt.body).expect("JSON body");
        assert_eq!(body["return"]["id"], return_id.as_str(), "{body}");
        seen.push((
            body["type"].as_str().unwrap_or_default().to_owned(),
            body["change"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body["return"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
    }
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        seen,
        vec![
            s("return.created", "requested", "open"),
            s("return.updated", "in_transit", "in_transit"),
            s("return.updated", "received", "delivered"),
            s("return.updated", "closed", "complete"),
        ]
    );
    dispatcher.abort();
}
