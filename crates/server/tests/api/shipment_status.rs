use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn fulfilled(app: &TestApp, t: &Tenant, order: &str) -> String {
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

#[tokio::test]
async fn statuses_change_the_status_and_events_do_not() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let path = fulfilled(&app, &t, "S-1").await;

    let (status, body) = app
        .post(
            &t,
            &path,
            json!({"status": "in_transit", "message": "Departed facility",
                               "datetime": "2024-03-21T08:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_fulfillment_schema(&body);
    assert_eq!(body["fulfillment"]["status"], "in_transit");

    for event in ["stalled_in_transit", "delayed", "arriving_early"] {
        let (status, body) = app
            .post(
                &t,
                &path,
                json!({"status": event, "estimatedDeliveryDate": "2024-03-28T12:00:00Z"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_fulfillment_schema(&body);
        let f = &body["fulfillment"];
        assert_eq!(
            f["status"], "in_transit",
            "event {event} changed the status"
        );
        assert_eq!(f["estimatedDeliveryDate"], "2024-03-28");
        let last = f["trackingHistory"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["status"], event);
    }

    let (_, body) = app
        .post(&t, &path, json!({"status": "out_for_delivery"}))
        .await;
    assert_eq!(body["fulfillment"]["status"], "out_for_delivery");
    // Every status of the update enum is accepted.
    for s in [
        "pre_transit",
        "available_for_pickup",
        "return_to_sender",
        "failure",
        "error",
        "in_transit",
    ] {
        let (status, body) = app.post(&t, &path, json!({"status": s})).await;
        assert_eq!(status, StatusCode::OK, "{s}: {body}");
        assert_eq!(body["fulfillment"]["status"], s);
    }
}

#[tokio::test]
async fn delivered_sets_delivered_at_from_the_datetime_or_now() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let path = fulfilled(&app, &t, "S-2").await;
    let (_, body) = app
        .post(
            &t,
            &path,
            json!({"status": "delivered", "datetime": "2024-03-24T15:30:00+01:00"}),
        )
        .await;
    assert_fulfillment_schema(&body);
    assert_eq!(
        body["fulfillment"]["deliveredAt"],
        "2024-03-24T14:30:00.000Z"
    );

    let path = fulfilled(&app, &t, "S-3").await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let (_, body) = app.post(&t, &path, json!({"status": "delivered"})).await;
    let at: chrono::DateTime<chrono::Utc> = body["fulfillment"]["deliveredAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(at >= before && at <= chrono::Utc::now() + chrono::Duration::seconds(1));
}

#[tokio::test]
async fn history_is_chronological_by_datetime() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let path = fulfilled(&app, &t, "S-4").await;
    // Sent out of order; an entry without datetime takes the time it was received (now).
    for (s, dt) in [
        ("in_transit", Some("2024-03-22T10:00:00Z")),
        ("out_for_delivery", None),
        ("in_transit", Some("2024-03-21T09:00:00Z")),
    ] {
        let mut body = json!({"status": s, "message": format!("{s} at {dt:?}")});
        if let Some(dt) = dt {
            body["datetime"] = json!(dt);
        }
        let (status, _) = app.post(&t, &path, body).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, order) = app.get(&t, "/orders/S-4").await;
    let history = order["fulfillments"][0]["trackingHistory"]
        .as_array()
        .unwrap()
        .clone();
    let times: Vec<&str> = history
        .iter()
        .map(|h| h["datetime"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "history not chronological: {history:#?}");
    assert_eq!(history[0]["datetime"], "2024-03-21T09:00:00.000Z");
    assert_eq!(history[1]["datetime"], "2024-03-22T10:00:00.000Z");
    assert_eq!(history.len(), 4);
    // The current status is the last one posted, out_for_delivery then in_transit.
    assert_eq!(order["fulfillments"][0]["status"], "in_transit");
}

#[tokio::test]
async fn eta_is_answered_as_a_date() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let path = fulfilled(&app, &t, "S-5").await;
    let (_, body) = app
        .post(
            &t,
            &path,
            json!({"status": "in_transit", "estimatedDeliveryDate": "2024-04-02T23:59:00-08:00"}),
        )
        .await;
    assert_eq!(body["fulfillment"]["estimatedDeliveryDate"], "2024-04-02");
    // A later update without an ETA keeps it.
    let (_, body) = app
        .post(&t, &path, json!({"status": "out_for_delivery"}))
        .await;
    assert_eq!(body["fulfillment"]["estimatedDeliveryDate"], "2024-04-02");
    assert_fulfillment_schema(&body);
}

#[tokio::test]
async fn bad_updates_are_400_and_unknown_fulfillments_404() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let path = fulfilled(&app, &t, "S-6").await;
    for (body, expected) in [
        (json!({"status": "unknown"}), "status must be one of"),
        (json!({"status": "IN_TRANSIT"}), "status must be one of"),
        (
            json!({"status": 3}),
            "status must be a string; got the number 3",
        ),
        (json!({}), "status is required"),
        (
            json!({"status": "delayed", "estimatedDeliveryDate": "tomorrow"}),
            "estimatedDeliveryDate must be",
        ),
        (
            json!({"status": "in_transit", "datetime": "2024-13-45T00:00:00Z"}),
            "datetime must be",
        ),
        (
            json!({"status": "in_transit", "location": "Reno"}),
            "location must be an object; got",
        ),
    ] {
        let (status, resp) = app.post(&t, &path, body.clone()).await;
        let message = assert_error(status, &resp, StatusCode::BAD_REQUEST);
        assert!(
            message.contains(expected),
            "expected '{expected}' in '{message}' for {body}"
        );
    }
    let (_, order) = app.get(&t, "/orders/S-6").await;
    assert_eq!(order["fulfillments"][0]["status"], "pre_transit");
    assert_eq!(
        order["fulfillments"][0]["trackingHistory"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (status, body) = app
        .post(
            &t,
            "/orders/S-6/fulfillments/nope/shipment-status",
            json!({"status": "delivered"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .post(
            &t,
            "/orders/nope/fulfillments/S-6-f/shipment-status",
            json!({"status": "delivered"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    // A fulfillment of another order is not found through this order.
    app.order(&t, "S-7", 1).await;
    let (status, body) = app
        .post(
            &t,
            "/orders/S-7/fulfillments/S-6-f/shipment-status",
            json!({"status": "delivered"}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cancelling_releases_units_and_reviving_needs_them_back() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let path = fulfilled(&app, &t, "S-8").await; // 2 of 4 units of line-1
    let (_, body) = app.post(&t, &path, json!({"status": "cancelled"})).await;
    assert_eq!(body["fulfillment"]["status"], "cancelled");
    let (_, order) = app.get(&t, "/orders/S-8").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 0);

    // The released units can be fulfilled again...
    let (status, _) = app
        .post(
            &t,
            "/orders/S-8/fulfillments",
            json!({"lineItems": [{"id": "line-1", "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // ...so reviving the cancelled one (2 units, 1 left) is refused and changes nothing.
    let (status, resp) = app.post(&t, &path, json!({"status": "in_transit"})).await;
    let message = assert_error(status, &resp, StatusCode::BAD_REQUEST);
    assert!(message.contains("1 unit(s) left"), "{message}");
    let (_, order) = app.get(&t, "/orders/S-8").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 3);
    assert_eq!(order["fulfillments"][0]["status"], "cancelled");
    assert_eq!(
        order["fulfillments"][0]["trackingHistory"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let _: Value = order;
}
