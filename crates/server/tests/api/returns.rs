//! Returns through Redo's returns API: a return's whole life with its webhooks delivered in
//! order to a real loopback receiver subscribed to the topic `return`; bad input refused in
//! Redo's format, changing nothing; another store's returns out of reach; concurrent requests
//! never returning more than was fulfilled.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::openapi::webhook_body_is_valid;
use crate::webhooks::{
    Answer, Receiver, fulfilled_order, loopback_app, start_dispatcher, subscribe, test_config,
    verify_standard,
};

fn return_body(order: &str, id: Option<&str>, quantity: i64) -> Value {
    let mut data = json!({
        "externalOrderId": order,
        "items": [{"lineItemId": "line-1", "quantity": quantity, "reason": "too_small",
                   "notes": "a size up, please"}],
        "label": {"trackingNumber": "1Z999AA10123456784"},
    });
    if let Some(id) = id {
        data["returnId"] = json!(id);
    }
    json!({ "data": data })
}

/// `PUT /v2.2/returns/{id}/status`: the status code, and the body if there is one.
async fn put_status(app: &TestApp, t: &Tenant, id: &str, body: Value) -> (StatusCode, Value) {
    let resp = app
        .client
        .put(format!("{}/v2.2/returns/{id}/status", app.base))
        .bearer_auth(&t.secret)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("a JSON error body")
    };
    (status, json)
}

async fn returned_quantity(app: &TestApp, t: &Tenant, order: &str) -> Value {
    let (status, body) = app.get(t, &format!("/orders/{order}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lineItems"][0]["id"], "line-1");
    body["lineItems"][0]["returnedQuantity"].clone()
}

async fn get_return(app: &TestApp, t: &Tenant, id: &str) -> (StatusCode, Value) {
    app.call(
        Method::GET,
        &format!("/v2.2/returns/{id}"),
        Some(&t.secret),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_lives_through_the_api_with_its_webhooks_in_order() {
    let app = loopback_app().await;
    let t = app.tenant("returns").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    let (_, secret) = subscribe(&app, &t, &receiver.url, "return").await;
    let dispatcher = start_dispatcher(app.store.clone(), test_config());
    fulfilled_order(&app, &t, "RT-1").await;
    assert_eq!(returned_quantity(&app, &t, "RT-1").await, 0);

    let (status, created) = app
        .post(&t, "/returns", return_body("RT-1", Some("RT-1-r"), 2))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let r = &created["return"];
    assert_eq!(r["id"], "RT-1-r");
    assert_eq!(r["status"], "open");
    assert_eq!(r["lifecycleStatus"], "requested");
    assert_eq!(r["externalOrderId"], "RT-1");
    assert_eq!(r["items"][0]["orderItem"]["line_item_id"], "line-1");
    assert_eq!(r["items"][0]["quantity"], 2);
    assert_eq!(r["items"][0]["reason"], "too_small");
    assert_eq!(r["items"][0]["customerComment"], "a size up, please");
    // The label went through carrier detection, as a fulfillment's tracking does.
    assert_eq!(r["shipment"]["carrier"], "UPS", "{r}");
    assert!(
        r["shipment"]["trackingUrl"]
            .as_str()
            .is_some_and(|u| u.contains("1Z999AA10123456784")),
        "{r}"
    );
    assert_eq!(r["shipment"]["status"], "pre_transit");
    assert_eq!(returned_quantity(&app, &t, "RT-1").await, 2);

    // The parcel moves; then the merchant closes the return.
    for (body, expected) in [
        (
            json!({"shipmentStatus": "in_transit", "message": "Dropped off"}),
            "in_transit",
        ),
        (json!({"shipmentStatus": "delivered"}), "delivered"),
        (json!({"status": "complete"}), "complete"),
    ] {
        let (status, answer) = put_status(&app, &t, "RT-1-r", body.clone()).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}: {answer}");
        let (status, now) = app
            .call(
                Method::GET,
                "/v2.2/returns/RT-1-r/status",
                Some(&t.secret),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(now, json!({ "status": expected }));
    }
    let (status, got) = get_return(&app, &t, "RT-1-r").await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["return"]["lifecycleStatus"], "closed");
    assert_eq!(got["return"]["shipment"]["status"], "delivered");
    let history: Vec<&str> = got["return"]["shipment"]["trackingHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "return.requested",
            "in_transit",
            "return.in_transit",
            "delivered",
            "return.received",
            "return.closed"
        ]
    );
    assert_eq!(
        got["return"]["shipment"]["trackingHistory"][1]["message"],
        "Dropped off"
    );
    assert_eq!(got["order"]["orderId"], "RT-1");
    assert_eq!(got["order"]["lineItems"][0]["returnedQuantity"], 2);
    assert_eq!(got["order"]["lineItems"][0]["fulfilledQuantity"], 2);

    let (status, list) = app.get(&t, "/returns?orderId=RT-1").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["returns"].as_array().map(Vec::len), Some(1));
    let (_, open) = app.get(&t, "/returns?status=open").await;
    assert_eq!(open["returns"], json!([]));

    // Four events, in order, each reporting its own change, signed, valid by the document.
    receiver
        .wait_for("four return events", Duration::from_secs(20), |r| {
            r.iter().filter(|r| r.ok).count() >= 4
        })
        .await;
    let doc = waybill_server::openapi::document();
    let bodies: Vec<Value> = receiver
        .all()
        .iter()
        .filter(|r| r.ok)
        .map(|r| {
            verify_standard(&secret, r);
            r.json()
        })
        .collect();
    let seen: Vec<(String, String, Value, String)> = bodies
        .iter()
        .map(|b| {
            assert_eq!(b["return"]["id"], "RT-1-r", "{b}");
            assert_eq!(b["order"]["orderId"], "RT-1", "{b}");
            let name = b["type"].as_str().unwrap_or_default();
            assert!(webhook_body_is_valid(&doc, name, b), "{b:#}");
            (
                name.to_owned(),
                b["change"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                b["change"]["previousStatus"].clone(),
                b["return"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, p: Value, c: &str| (a.to_owned(), b.to_owned(), p, c.to_owned());
    assert_eq!(
        seen,
        vec![
            s("return.created", "requested", Value::Null, "open"),
            s(
                "return.updated",
                "in_transit",
                json!("requested"),
                "in_transit"
            ),
            s(
                "return.updated",
                "received",
                json!("in_transit"),
                "delivered"
            ),
            s("return.updated", "closed", json!("received"), "complete"),
        ]
    );
    let seqs: Vec<i64> = bodies.iter().map(|b| b["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    dispatcher.abort();
}

#[tokio::test]
async fn bad_input_is_refused_in_redos_format_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("refusals").await;
    fulfilled_order(&app, &t, "RT-2").await; // 2 of line-1's 4 units fulfilled

    let refusals = [
        (
            return_body("RT-2", None, 3),
            StatusCode::BAD_REQUEST,
            "not yet returned",
        ),
        (
            return_body("RT-2", None, 0),
            StatusCode::BAD_REQUEST,
            "data.items[0].quantity",
        ),
        (
            return_body("nope", None, 1),
            StatusCode::NOT_FOUND,
            "'nope' was not found",
        ),
        (
            json!({"data": {"externalOrderId": "RT-2", "items": []}}),
            StatusCode::BAD_REQUEST,
            "at least one line item",
        ),
        (
            json!({"data": {"externalOrderId": "RT-2",
                   "items": [{"lineItemId": "line-1", "quantity": 1, "reason": "meh"}]}}),
            StatusCode::BAD_REQUEST,
            "not a return reason",
        ),
        (
            json!({"data": {"externalOrderId": "RT-2",
                   "items": [{"lineItemId": "zzz", "quantity": 1, "reason": "other"}]}}),
            StatusCode::BAD_REQUEST,
            "'zzz' does not exist",
        ),
        (
            json!({"data": {"externalOrderId": "RT-2",
                   "items": [{"lineItemId": "line-2", "quantity": 1, "reason": "other"}]}}),
            StatusCode::BAD_REQUEST,
            "0 unit(s) fulfilled",
        ),
        (json!({"items": []}), StatusCode::BAD_REQUEST, "data"),
    ];
    for (body, expected, says) in refusals {
        let (status, answer) = app.post(&t, "/returns", body.clone()).await;
        let message = assert_error(status, &answer, expected);
        assert!(message.contains(says), "{body}: {message}");
    }
    let (status, answer) = app
        .call(Method::GET, "/v2.2/returns/none", Some(&t.secret), None)
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
    let (status, answer) = app
        .call(Method::GET, "/v2.2/returns/none", None, None)
        .await;
    assert_error(status, &answer, StatusCode::UNAUTHORIZED);
    let (status, answer) = app.get(&t, "/returns").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["returns"], json!([]), "no refusal created a return");
    assert_eq!(returned_quantity(&app, &t, "RT-2").await, 0);

    // Status changes: unknown statuses and illegal moves are refused; nothing moves.
    let (status, _) = app
        .post(&t, "/returns", return_body("RT-2", Some("RT-2-r"), 1))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = app
        .post(&t, "/returns", return_body("RT-2", Some("RT-2-r"), 1))
        .await;
    assert_error(status, &answer, StatusCode::CONFLICT);
    for (body, expected) in [
        (json!({"status": "flagged"}), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::BAD_REQUEST),
        (
            json!({"shipmentStatus": "teleported"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"status": "complete"}), StatusCode::CONFLICT),
    ] {
        let (status, answer) = put_status(&app, &t, "RT-2-r", body.clone()).await;
        assert_error(status, &answer, expected);
    }
    let (status, answer) = put_status(&app, &t, "none", json!({"status": "rejected"})).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
    let (_, got) = get_return(&app, &t, "RT-2-r").await;
    assert_eq!(got["return"]["status"], "open");
    assert_eq!(
        got["return"]["shipment"]["trackingHistory"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(returned_quantity(&app, &t, "RT-2").await, 1);

    // A rejection gives the units back.
    let (status, _) = put_status(&app, &t, "RT-2-r", json!({"status": "rejected"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(returned_quantity(&app, &t, "RT-2").await, 0);
    let (status, answer) = put_status(&app, &t, "RT-2-r", json!({"status": "open"})).await;
    assert_error(status, &answer, StatusCode::CONFLICT);
}

#[tokio::test]
async fn another_stores_returns_are_out_of_reach() {
    let app = TestApp::spawn().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    fulfilled_order(&app, &a, "RT-3").await;
    let (status, _) = app
        .post(&a, "/returns", return_body("RT-3", Some("RT-3-r"), 1))
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, answer) = get_return(&app, &b, "RT-3-r").await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
    let (status, answer) = put_status(&app, &b, "RT-3-r", json!({"status": "rejected"})).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
    // B's secret on A's path, and B's own path naming A's order.
    let (status, answer) = app
        .call(
            Method::POST,
            &a.path("/returns"),
            Some(&b.secret),
            Some(return_body("RT-3", None, 1)),
        )
        .await;
    assert_problem(status, &answer, StatusCode::FORBIDDEN);
    let (status, answer) = app.post(&b, "/returns", return_body("RT-3", None, 1)).await;
    assert_error(status, &answer, StatusCode::NOT_FOUND);
    let (status, answer) = app
        .call(Method::GET, &a.path("/returns"), Some(&b.secret), None)
        .await;
    assert_problem(status, &answer, StatusCode::FORBIDDEN);
    let (_, list) = app.get(&b, "/returns").await;
    assert_eq!(list["returns"], json!([]));

    let (_, got) = get_return(&app, &a, "RT-3-r").await;
    assert_eq!(got["return"]["status"], "open");
    assert_eq!(returned_quantity(&app, &a, "RT-3").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_returns_never_exceed_fulfilled_units() {
    let app = TestApp::spawn().await;
    let t = app.tenant("race").await;
    fulfilled_order(&app, &t, "RT-4").await; // 2 units fulfilled
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (client, base, secret, path) = (
            app.client.clone(),
            app.base.clone(),
            t.secret.clone(),
            t.path("/returns"),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}{path}"))
                .bearer_auth(secret)
                .json(&return_body("RT-4", None, 1))
                .send()
                .await
                .expect("request")
                .status()
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => created += 1,
            other => assert_eq!(other, StatusCode::BAD_REQUEST),
        }
    }
    assert_eq!(created, 2);
    assert_eq!(returned_quantity(&app, &t, "RT-4").await, 2);
    let (_, list) = app.get(&t, "/returns?orderId=RT-4").await;
    assert_eq!(list["returns"].as_array().map(Vec::len), Some(2));
}

fn easypost_event(tracking_code: &str, details: &[(&str, &str)]) -> Value {
    json!({
        "id": "evt_r", "object": "Event", "description": "tracker.updated",
        "result": {
            "id": "trk_r", "object": "Tracker", "tracking_code": tracking_code, "carrier": "UPS",
            "status": details.last().map(|d| d.0).unwrap_or("unknown"),
            "tracking_details": details.iter().map(|(status, at)| json!({
                "object": "TrackingDetail", "status": status, "datetime": at,
                "message": format!("{status} scan"),
                "tracking_location": {"city": "RENO", "state": "NV", "country": "US"}
            })).collect::<Vec<_>>()
        }
    })
}

#[tokio::test]
async fn easypost_updates_on_a_return_parcel_move_the_return() {
    let app = TestApp::spawn().await;
    let t = app.tenant("return-tracking").await;
    let (status, _) = app
        .call(
            Method::PUT,
            &t.path("/settings"),
            Some(&t.secret),
            Some(json!({"easypostWebhookSecret": "ep-secret"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    fulfilled_order(&app, &t, "RT-5").await;
    let (status, _) = app
        .post(&t, "/returns", return_body("RT-5", Some("RT-5-r"), 1))
        .await;
    assert_eq!(status, StatusCode::OK);

    let post = |event: Value| {
        let body = serde_json::to_vec(&event).unwrap();
        app.client
            .post(format!("{}/inbound/easypost/{}", app.base, t.id))
            .header("content-type", "application/json")
            .header(
                "x-hmac-signature",
                waybill_server::inbound::easypost_signature("ep-secret", &body),
            )
            .body(body)
            .send()
    };
    let scans = [
        ("in_transit", "2024-03-20T09:00:00Z"),
        ("delivered", "2024-03-22T09:00:00Z"),
    ];
    for (upto, shipment, lifecycle) in [
        (1, "in_transit", "in_transit"),
        (2, "delivered", "received"),
    ] {
        let resp = post(easypost_event("1Z999AA10123456784", &scans[..upto]))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"status": "recorded", "returnId": "RT-5-r",
                   "shipmentStatus": shipment, "returnStatus": lifecycle})
        );
    }
    // The same report again adds nothing.
    let resp = post(easypost_event("1Z999AA10123456784", &scans))
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["returnStatus"], "received");
    let (_, got) = get_return(&app, &t, "RT-5-r").await;
    assert_eq!(got["return"]["status"], "delivered");
    let history = got["return"]["shipment"]["trackingHistory"]
        .as_array()
        .unwrap();
    assert_eq!(history.len(), 5, "{history:?}");
    let scan = history
        .iter()
        .find(|h| h["status"] == "in_transit")
        .expect("the in-transit scan");
    assert_eq!(scan["location"]["city"], "RENO");
    assert_eq!(scan["datetime"], "2024-03-20T09:00:00.000Z");
    // A number nobody has is still unmatched.
    let resp = post(easypost_event("1Z0000000000000000", &scans))
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"status": "unmatched"}));
}
