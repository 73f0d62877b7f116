//! What webhook bodies say: each event's body reports the state its own write left (not the
//! state at delivery time), says what changed, and is sent again byte for byte by replays and
//! redeliveries. A real loopback receiver that is down while the changes happen.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use waybill_store::{AttemptQuery, WebhookFlavor};

use crate::common::*;
use crate::webhooks::{
    Answer, Receipt, Receiver, hmac_b64, loopback_app, start_dispatcher, subscribe, test_config,
    verify_standard,
};

/// A dispatcher that keeps retrying (every 50 ms, 600 attempts) while the receiver is down.
fn patient_config() -> waybill_server::webhooks::DispatcherConfig {
    let mut config = test_config();
    config.schedule = std::iter::once(Duration::ZERO)
        .chain(std::iter::repeat_n(Duration::from_millis(50), 599))
        .collect();
    config.jitter = 0.0;
    config
}

/// The first successful receipt of every event id per subscription flavor (both flavors send
/// an event under its own id), in the order they arrived.
fn first_successes(receipts: &[Receipt]) -> Vec<Receipt> {
    let mut seen = std::collections::HashSet::new();
    receipts
        .iter()
        .filter(|r| {
            let id = r.json()["id"].as_str().unwrap_or("").to_owned();
            r.ok && seen.insert((is_fourthwall(r), id))
        })
        .cloned()
        .collect()
}

fn is_fourthwall(r: &Receipt) -> bool {
    !r.header("x-fourthwall-hmac-sha256").is_empty()
}

/// One expected Redo body: type, status or event, previous status, the fulfillment's status
/// in the body, ledger effect.
type Expected = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
);

async fn set_status(app: &TestApp, t: &Tenant, order: &str, status: &str) {
    let (code, body) = app
        .post(
            t,
            &format!("/orders/{order}/fulfillments/{order}-f/shipment-status"),
            json!({ "status": status }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{status}: {body}");
}

async fn fulfill(app: &TestApp, t: &Tenant, order: &str) {
    app.order(t, order, 4).await;
    let (code, body) = app
        .post(
            t,
            &format!("/orders/{order}/fulfillments"),
            json!({"fulfillmentId": format!("{order}-f"), "lineItems": [{"id": "line-1", "quantity": 2}],
                   "tracking": {"carrier": "FedEx", "code": "123456789012"}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_report_their_own_event_after_the_receiver_was_down() {
    let app = loopback_app().await;
    let t = app.tenant("event-time").await;
    // A port nobody listens on: every attempt is refused until the receiver comes up there.
    let parked = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = parked.local_addr().unwrap();
    drop(parked);
    let url = format!("http://{addr}/hook");
    let (redo_id, secret) = subscribe(&app, &t, &url, "fulfillment").await;
    let (status, fw) = app
        .send(
            Method::POST,
            "/open-api/v1.0/webhooks",
            Auth::Basic(&t.id, &t.secret),
            Some(json!({"url": url, "allowedTypes": ["ORDER_PLACED", "ORDER_UPDATED"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fw}");
    let fw_secret = fw["secret"].as_str().unwrap().to_owned();
    let dispatcher = start_dispatcher(app.store.clone(), patient_config());

    // Order A: five events on one fulfillment (an event among the statuses); order B: four,
    // ending in a cancellation that gives its units back.
    fulfill(&app, &t, "EV-A").await;
    fulfill(&app, &t, "EV-B").await;
    for status in ["in_transit", "delayed", "out_for_delivery", "delivered"] {
        set_status(&app, &t, "EV-A", status).await;
    }
    for status in ["in_transit", "out_for_delivery", "cancelled"] {
        set_status(&app, &t, "EV-B", status).await;
    }

    // The receiver was really down: attempts failed before it came up.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let attempts = app
            .store
            .list_webhook_attempts(
                &t.id,
                AttemptQuery {
                    webhook_id: Some(redo_id.clone()),
                    flavor: WebhookFlavor::Redo,
                    before: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        if attempts.len() >= 3 {
            assert!(
                attempts
                    .iter()
                    .all(|a| a.status_code.is_none() && a.error.is_some())
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no failed attempts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listener = TcpListener::bind(addr)
        .await
        .expect("rebind the receiver's port");
    let receiver = Receiver::start_on(listener, |_, _| Answer::Ok);
    // Redo: 5 + 4 fulfillment events. Fourthwall: 2 ORDER_PLACED and 9 ORDER_UPDATED.
    receiver
        .wait_for("20 distinct events", Duration::from_secs(60), |r| {
            first_successes(r).len() == 20
        })
        .await;

    let firsts = first_successes(&receiver.all());
    // Every body is what the document's `webhooks` says it is.
    let doc = waybill_server::openapi::document();
    for r in &firsts {
        let body = r.json();
        let name = body["type"].as_str().unwrap().to_owned();
        assert!(
            crate::openapi::webhook_body_is_valid(&doc, &name, &body),
            "{name} does not match the document: {body}"
        );
    }
    for r in receiver.all() {
        if is_fourthwall(&r) {
            assert_eq!(
                r.header("x-fourthwall-hmac-sha256"),
                hmac_b64(fw_secret.as_bytes(), &r.body)
            );
        } else {
            verify_standard(&secret, &r);
        }
    }

    // Redo bodies, per order in arrival order: (type, status or event, previous status,
    // the fulfillment's status in the body, ledger effect).
    let expected: BTreeMap<&str, Vec<Expected>> = [
        (
            "EV-A",
            vec![
                (
                    "fulfillment.created",
                    "pre_transit",
                    None,
                    "pre_transit",
                    Some("reserved"),
                ),
                (
                    "fulfillment.updated",
                    "in_transit",
                    Some("pre_transit"),
                    "in_transit",
                    None,
                ),
                (
                    "fulfillment.event",
                    "delayed",
                    Some("in_transit"),
                    "in_transit",
                    None,
                ),
                (
                    "fulfillment.updated",
                    "out_for_delivery",
                    Some("in_transit"),
                    "out_for_delivery",
                    None,
                ),
                (
                    "fulfillment.updated",
                    "delivered",
                    Some("out_for_delivery"),
                    "delivered",
                    None,
                ),
            ],
        ),
        (
            "EV-B",
            vec![
                (
                    "fulfillment.created",
                    "pre_transit",
                    None,
                    "pre_transit",
                    Some("reserved"),
                ),
                (
                    "fulfillment.updated",
                    "in_transit",
                    Some("pre_transit"),
                    "in_transit",
                    None,
                ),
                (
                    "fulfillment.updated",
                    "out_for_delivery",
                    Some("in_transit"),
                    "out_for_delivery",
                    None,
                ),
                (
                    "fulfillment.updated",
                    "cancelled",
                    Some("out_for_delivery"),
                    "cancelled",
                    Some("released"),
                ),
            ],
        ),
    ]
    .into_iter()
    .collect();
    let mut redo: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in firsts.iter().filter(|r| !is_fourthwall(r)) {
        let body = r.json();
        assert_eq!(r.header("webhook-id"), body["id"].as_str().unwrap());
        redo.entry(body["order"]["orderId"].as_str().unwrap().to_owned())
            .or_default()
            .push(body);
    }
    assert_eq!(redo.len(), 2, "{redo:?}");
    for (order, bodies) in &redo {
        let want = &expected[order.as_str()];
        assert_eq!(bodies.len(), want.len(), "{order}: {bodies:?}");
        let seqs: Vec<i64> = bodies.iter().map(|b| b["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{order}: {seqs:?}");
        for (body, (kind, status, previous, shown, ledger)) in bodies.iter().zip(want) {
            let what = format!("{order} seq {}", body["seq"]);
            assert_eq!(body["type"], *kind, "{what}");
            assert_eq!(body["change"]["status"], *status, "{what}");
            assert_eq!(
                body["change"]["previousStatus"].as_str(),
                *previous,
                "{what}"
            );
            assert_eq!(body["fulfillment"]["status"], *shown, "{what}");
            // The order in the body is the order as this event left it.
            assert_eq!(body["order"]["fulfillments"][0]["status"], *shown, "{what}");
            assert_eq!(
                body["change"]["ledger"]["effect"].as_str(),
                *ledger,
                "{what}"
            );
            if ledger.is_some() {
                assert_eq!(
                    body["change"]["ledger"]["units"],
                    json!([{"lineItemId": "line-1", "quantity": 2}]),
                    "{what}"
                );
            }
            // The order's progress before and after, in the shape Fourthwall's statuses use.
            assert!(body["change"]["orderStatus"].is_string(), "{what}");
            assert!(body["change"]["previousOrderStatus"].is_string(), "{what}");
        }
        // The history in each body ends with that body's own entry.
        for (body, (_, status, ..)) in bodies.iter().zip(want) {
            let history = body["fulfillment"]["trackingHistory"]
                .as_array()
                .expect("trackingHistory");
            let last = history.last().expect("a history entry");
            assert_eq!(last["status"], *status, "{order}: {history:?}");
        }
    }

    // Fourthwall: the order's status in each body is the status after that event, and each
    // update names the status before it.
    let mut fw_by_order: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in firsts.iter().filter(|r| is_fourthwall(r)) {
        let body = r.json();
        let order = match body["type"].as_str().unwrap() {
            "ORDER_PLACED" => body["data"]["id"].as_str().unwrap().to_owned(),
            "ORDER_UPDATED" => body["data"]["order"]["id"].as_str().unwrap().to_owned(),
            other => panic!("unexpected Fourthwall type {other}"),
        };
        fw_by_order.entry(order).or_default().push(body);
    }
    assert_eq!(fw_by_order.len(), 2);
    for bodies in fw_by_order.values() {
        assert_eq!(bodies[0]["type"], "ORDER_PLACED");
        // Placed, then shipped: the placed body still says CONFIRMED.
        assert_eq!(bodies[0]["data"]["status"], "CONFIRMED");
        let mut previous = "CONFIRMED".to_owned();
        for body in &bodies[1..] {
            assert_eq!(body["type"], "ORDER_UPDATED");
            let update = &body["data"]["update"];
            assert_eq!(update["type"], "STATUS");
            assert_eq!(update["previousStatus"], previous.as_str(), "{body}");
            assert!(update["fulfillment"]["status"].is_string(), "{body}");
            previous = body["data"]["order"]["status"].as_str().unwrap().to_owned();
        }
    }
    let last_status = |external: &str| {
        let bodies = redo[external].last().unwrap();
        bodies["change"]["orderStatus"].as_str().unwrap().to_owned()
    };
    assert_eq!(last_status("EV-A"), "PARTIALLY_DELIVERED");
    assert_eq!(last_status("EV-B"), "CONFIRMED");

    // Replay (from an explicit earlier start) and redelivery send the original bodies again.
    let originals: HashMap<String, Vec<u8>> = firsts
        .iter()
        .filter(|r| !is_fourthwall(r))
        .map(|r| (r.header("webhook-id").to_owned(), r.body.clone()))
        .collect();
    let before = receiver.all().len();
    let (status, body) = app
        .post(
            &t,
            &format!("/webhooks/{redo_id}/replay"),
            json!({"start": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["enqueued"], 9);
    let some_event = redo["EV-A"][2]["id"].as_str().unwrap().to_owned();
    receiver
        .wait_for("the replay", Duration::from_secs(30), |r| {
            r[before..].iter().filter(|r| !is_fourthwall(r)).count() >= 9
        })
        .await;
    let (status, body) = app
        .post(
            &t,
            &format!("/webhooks/{redo_id}/deliveries/{some_event}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    receiver
        .wait_for("the redelivery", Duration::from_secs(30), |r| {
            r[before..].iter().filter(|r| !is_fourthwall(r)).count() >= 10
        })
        .await;
    let again: Vec<Receipt> = receiver.all()[before..]
        .iter()
        .filter(|r| !is_fourthwall(r))
        .cloned()
        .collect();
    assert_eq!(again.len(), 10);
    for r in &again {
        verify_standard(&secret, r);
        let original = &originals[r.header("webhook-id")];
        assert_eq!(
            String::from_utf8_lossy(original),
            String::from_utf8_lossy(&r.body),
            "a replayed body differs from the original"
        );
    }
    dispatcher.abort();
}

#[tokio::test]
async fn replay_sends_what_the_subscription_would_have_received() {
    let app = loopback_app().await;
    let t = app.tenant("replay-window").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    fulfill(&app, &t, "RW-1").await;
    set_status(&app, &t, "RW-1", "in_transit").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (id, _) = subscribe(&app, &t, &receiver.url, "fulfillment").await;
    set_status(&app, &t, "RW-1", "out_for_delivery").await;

    // Without a start: only what came after the subscription.
    let (status, body) = app
        .post(&t, &format!("/webhooks/{id}/replay"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["enqueued"], 1);
    // An explicit earlier start reaches back (the order's three fulfillment events).
    let (status, body) = app
        .post(
            &t,
            &format!("/webhooks/{id}/replay"),
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["enqueued"], 3);

    // Bad input is refused in Redo's format, and queues nothing.
    for bad in [
        json!({"start": "yesterday"}),
        json!({"start": 5}),
        json!({"start": "2024-13-01T00:00:00Z"}),
    ] {
        let (status, body) = app
            .post(&t, &format!("/webhooks/{id}/replay"), bad.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("start"), "{body}");
    }
    for bad in [
        json!({"webhook": {"callback": {"url": "not a url"}, "topic": "fulfillment"}}),
        json!({"webhook": {"callback": {"url": receiver.url}, "topic": "fulfillment.created"}}),
        json!({"webhook": {"callback": {"url": receiver.url}, "topic": "ORDER_UPDATED"}}),
    ] {
        let (status, body) = app.post(&t, "/webhooks", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (_, list) = app.get(&t, "/webhooks").await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
}
