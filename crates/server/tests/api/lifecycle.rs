//! The lifecycle extensions: cancel (units back in the ledger), tracking replacement with
//! carrier normalisation, fulfillment and order listings with `X-Page-*` paging, carrier
//! detection, and EasyPost tracker events replayed out of order.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn remaining(order: &Value, line: &str) -> i64 {
    let line = order["lineItems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == line)
        .unwrap_or_else(|| panic!("no line {line} in {order}"));
    line["quantity"].as_i64().unwrap() - line["fulfilledQuantity"].as_i64().unwrap()
}

async fn fulfill(
    app: &TestApp,
    t: &Tenant,
    order: &str,
    id: &str,
    quantity: u32,
) -> (StatusCode, Value) {
    app.post(
        t,
        &format!("/orders/{order}/fulfillments"),
        json!({"fulfillmentId": id, "lineItems": [{"id": "line-1", "quantity": quantity}],
               "tracking": {"carrier": "FedEx Ground", "code": "123456789012"}}),
    )
    .await
}

#[tokio::test]
async fn cancelling_returns_units_and_is_refused_once_delivered() {
    let app = TestApp::spawn().await;
    let t = app.tenant("cancel").await;
    app.order(&t, "A1", 4).await;
    let (status, body) = fulfill(&app, &t, "A1", "f1", 3).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, order) = app.get(&t, "/orders/A1").await;
    assert_eq!(remaining(&order, "line-1"), 1);
    let (status, body) = fulfill(&app, &t, "A1", "f2", 2).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    let (status, body) = app
        .post(&t, "/orders/A1/fulfillments/f1/cancel", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_fulfillment_schema(&body);
    assert_eq!(body["fulfillment"]["status"], "cancelled");
    let (_, order) = app.get(&t, "/orders/A1").await;
    assert_eq!(remaining(&order, "line-1"), 4, "units back in the ledger");
    // Cancelling again changes nothing.
    let (status, _) = app
        .post(&t, "/orders/A1/fulfillments/f1/cancel", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, order) = app.get(&t, "/orders/A1").await;
    assert_eq!(remaining(&order, "line-1"), 4);

    let (status, body) = fulfill(&app, &t, "A1", "f2", 4).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .post(
            &t,
            "/orders/A1/fulfillments/f2/shipment-status",
            json!({"status": "delivered"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(&t, "/orders/A1/fulfillments/f2/cancel", json!({}))
        .await;
    let message = assert_error(status, &body, StatusCode::CONFLICT);
    assert!(message.contains("delivered"), "{message}");
    let (_, order) = app.get(&t, "/orders/A1").await;
    assert_eq!(
        remaining(&order, "line-1"),
        0,
        "a refused cancel changes nothing"
    );
    let (status, body) = app
        .post(&t, "/orders/A1/fulfillments/nope/cancel", json!({}))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tracking_is_replaced_with_normalised_carriers() {
    let app = TestApp::spawn().await;
    let t = app.tenant("tracking").await;
    app.order(&t, "B1", 2).await;
    let (status, body) = fulfill(&app, &t, "B1", "f1", 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["fulfillment"]["trackingCompany"], "FedEx",
        "free text normalised"
    );
    assert!(
        body["fulfillment"]["trackingUrl"]
            .as_str()
            .unwrap()
            .contains("123456789012"),
        "{body}"
    );
    let (status, body) = app
        .call(
            Method::PUT,
            &t.path("/orders/B1/fulfillments/f1/tracking"),
            Some(&t.secret),
            Some(json!({"packages": [
                {"carrier": "U.P.S.", "trackingNumber": "1Z999AA10123456784"},
                {"trackingNumber": "1Z999AA10123456784", "trackingUrl": "https://track.example/x"},
                {"carrier": "Local Courier Co", "trackingNumber": "LC-42"}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let packages = body["fulfillment"]["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 3);
    assert_eq!(packages[0]["carrier"], "UPS");
    assert!(
        packages[0]["trackingUrl"]
            .as_str()
            .unwrap()
            .contains("ups.com")
    );
    assert_eq!(packages[1]["carrier"], "UPS", "detected from the number");
    assert_eq!(
        packages[1]["trackingUrl"], "https://track.example/x",
        "given URL kept"
    );
    assert_eq!(
        packages[2]["carrier"], "Local Courier Co",
        "unknown carrier kept verbatim"
    );
    assert_eq!(packages[2]["trackingUrl"], Value::Null);
    assert_eq!(body["fulfillment"]["trackingCompany"], "UPS");

    for bad in [
        json!({"packages": [{"trackingNumber": "  "}]}),
        json!({"packages": [{"trackingNumber": "1", "trackingUrl": "javascript:alert(1)"}]}),
        json!({"parcels": []}),
    ] {
        let (status, body) = app
            .call(
                Method::PUT,
                &t.path("/orders/B1/fulfillments/f1/tracking"),
                Some(&t.secret),
                Some(bad),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let (_, got) = app.get(&t, "/orders/B1/fulfillments/f1").await;
    assert_eq!(
        got["fulfillment"]["packages"].as_array().unwrap().len(),
        3,
        "refusals changed nothing"
    );
}

#[tokio::test]
async fn fulfillments_and_orders_are_listed_with_paging() {
    let app = TestApp::spawn().await;
    let t = app.tenant("lists").await;
    for n in 1..=5 {
        app.order(&t, &format!("C{n}"), 2).await;
    }
    fulfill(&app, &t, "C2", "c2-a", 1).await;
    fulfill(&app, &t, "C2", "c2-b", 1).await;
    let (status, body) = app.get(&t, "/orders/C2/fulfillments").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["fulfillments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c2-a", "c2-b"]);
    let (status, body) = app.get(&t, "/orders/C2/fulfillments/c2-b").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["fulfillment"]["id"], "c2-b");
    let (status, body) = app.get(&t, "/orders/C2/fulfillments/zzz").await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.get(&t, "/orders/nope/fulfillments").await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    // Pages of two, oldest first, until X-Page-Next is absent.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = app
            .client
            .get(format!("{}{}", app.base, t.path("/orders")))
            .bearer_auth(&t.secret)
            .header("X-Page-Size", "2");
        if let Some(c) = &cursor {
            req = req.header("X-Page-Continue", c);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let next = resp
            .headers()
            .get("x-page-next")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = resp.json().await.unwrap();
        let page: Vec<String> = body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["orderId"].as_str().unwrap().to_owned())
            .collect();
        assert!(page.len() <= 2);
        seen.extend(page);
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ["C1", "C2", "C3", "C4", "C5"]);

    let (status, body) = app.get(&t, "/orders?status=PARTIALLY_IN_PRODUCTION").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["C2"], "the only order with some units in fulfillment");
    let (status, body) = app.get(&t, "/orders?status=LOST").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let resp = app
        .client
        .get(format!("{}{}", app.base, t.path("/orders")))
        .bearer_auth(&t.secret)
        .header("X-Page-Size", "501")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let other = app.tenant("other").await;
    let (status, body) = app.get(&other, "/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["orders"].as_array().unwrap().is_empty(),
        "no other store's orders"
    );
}

#[tokio::test]
async fn carriers_are_detected_and_ambiguity_gives_candidates() {
    let app = TestApp::spawn().await;
    let t = app.tenant("detect").await;
    let (status, body) = app
        .get(&t, "/carriers/detect?trackingNumber=1Z999AA10123456784")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["carrier"]["code"], "ups");
    assert!(body["trackingUrl"].as_str().unwrap().contains("ups.com"));
    // A SmartPost number is also a USPS number: candidates, no guess.
    let (status, body) = app
        .get(
            &t,
            "/carriers/detect?trackingNumber=92612999897543581074711582",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["carrier"], Value::Null, "{body}");
    let codes: Vec<&str> = body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["carrier"]["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"usps") && codes.contains(&"fedex"),
        "{codes:?}"
    );
    let (status, body) = app
        .get(&t, "/carriers/detect?trackingNumber=1Z999AA10123456785")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["carrier"],
        Value::Null,
        "a bad check digit is nobody's: {body}"
    );
    let (status, body) = app.get(&t, "/carriers/detect").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------- EasyPost

fn tracker_event(details: &[(&str, &str, &str)], eta: &str) -> Value {
    json!({
        "id": "evt_1",
        "object": "Event",
        "description": "tracker.updated",
        "result": {
            "id": "trk_1",
            "object": "Tracker",
            "tracking_code": "EZ4000000004",
            "carrier": "USPS",
            "status": details.last().map(|d| d.0).unwrap_or("unknown"),
            "est_delivery_date": eta,
            "tracking_details": details.iter().map(|(status, at, message)| json!({
                "object": "TrackingDetail", "status": status, "datetime": at, "message": message,
                "tracking_location": {"city": "HOUSTON", "state": "TX", "country": "US", "zip": "77001"}
            })).collect::<Vec<_>>()
        }
    })
}

async fn post_easypost(
    app: &TestApp,
    t: &Tenant,
    secret: &str,
    event: &Value,
) -> (StatusCode, Value) {
    let body = serde_json::to_vec(event).unwrap();
    let resp = app
        .client
        .post(format!("{}/inbound/easypost/{}", app.base, t.id))
        .header("content-type", "application/json")
        .header(
            "x-hmac-signature",
            waybill_server::inbound::easypost_signature(secret, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn easypost_events_replayed_out_of_order_keep_the_newest_status() {
    let app = TestApp::spawn().await;
    let t = app.tenant("easypost").await;
    let (status, _) = app
        .call(
            Method::PUT,
            &t.path("/settings"),
            Some(&t.secret),
            Some(json!({"easypostWebhookSecret": "ep-secret"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.order(&t, "E1", 2).await;
    let (status, body) = app
        .post(
            &t,
            "/orders/E1/fulfillments",
            json!({
            "fulfillmentId": "e1-f", "lineItems": [{"id": "line-1", "quantity": 1}],
            "tracking": {"carrier": "USPS", "code": "EZ4000000004"},
            "useDummyTracking": true,
            "initialTracking": {"status": "pre_transit", "datetime": "2024-03-18T09:00:00Z"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let first = tracker_event(
        &[
            ("pre_transit", "2024-03-19T09:00:00Z", "Label printed"),
            ("in_transit", "2024-03-20T09:00:00Z", "Accepted at facility"),
        ],
        "2024-03-25T00:00:00Z",
    );
    let second = tracker_event(
        &[
            ("pre_transit", "2024-03-19T09:00:00Z", "Label printed"),
            ("in_transit", "2024-03-20T09:00:00Z", "Accepted at facility"),
            (
                "out_for_delivery",
                "2024-03-22T07:00:00Z",
                "Out for delivery",
            ),
        ],
        "2024-03-22T00:00:00Z",
    );
    // The newer event arrives first, then the older one, then the newer one again.
    for event in [&second, &first, &second] {
        let (status, body) = post_easypost(&app, &t, "ep-secret", event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "recorded");
        assert_eq!(
            body["shipmentStatus"], "out_for_delivery",
            "never moved back: {body}"
        );
    }
    let (_, got) = app.get(&t, "/orders/E1/fulfillments/e1-f").await;
    let f = &got["fulfillment"];
    assert_eq!(f["status"], "out_for_delivery");
    assert_eq!(
        f["estimatedDeliveryDate"], "2024-03-22",
        "the newest report's ETA"
    );
    let history: Vec<(&str, &str)> = f["trackingHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["status"].as_str().unwrap(),
                h["datetime"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("pre_transit", "2024-03-18T09:00:00.000Z"),
            ("pre_transit", "2024-03-19T09:00:00.000Z"),
            ("in_transit", "2024-03-20T09:00:00.000Z"),
            ("out_for_delivery", "2024-03-22T07:00:00.000Z"),
        ],
        "chronological, each scan once"
    );
    assert_eq!(f["trackingHistory"][3]["location"]["city"], "HOUSTON");

    // Refusals change nothing.
    let (status, body) = post_easypost(&app, &t, "wrong-secret", &second).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let unsigned = app
        .client
        .post(format!("{}/inbound/easypost/{}", app.base, t.id))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let mut bad_time = second.clone();
    bad_time["result"]["tracking_details"][2]["datetime"] = json!("yesterday");
    let (status, body) = post_easypost(&app, &t, "ep-secret", &bad_time).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let mut unknown = second.clone();
    unknown["result"]["tracking_code"] = json!("EZ9999999999");
    let (status, body) = post_easypost(&app, &t, "ep-secret", &unknown).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "unmatched");
    let (_, again) = app.get(&t, "/orders/E1/fulfillments/e1-f").await;
    assert_eq!(
        again["fulfillment"]["trackingHistory"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // A store without a secret cannot be posted to.
    let other = app.tenant("no-secret").await;
    let (status, body) = post_easypost(&app, &other, "ep-secret", &second).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
}
