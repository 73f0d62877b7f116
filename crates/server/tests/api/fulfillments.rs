use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

fn lines(items: &[(&str, u32)]) -> Value {
    json!(
        items
            .iter()
            .map(|(id, q)| json!({"id": id, "quantity": q}))
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn create_fulfillment_matches_the_seed_schema_and_echoes_line_details() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    app.order(&t, "F-1", 3).await;
    let (status, body) = app
        .post(
            &t,
            "/orders/F-1/fulfillments",
            json!({
                "fulfillmentId": "ful-1",
                "lineItems": lines(&[("line-1", 2), ("line-2", 1)]),
                "tracking": {"carrier": "UPS", "code": "1Z999AA10123456784"}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_fulfillment_schema(&body);
    let f = &body["fulfillment"];
    assert_eq!(f["id"], "ful-1");
    assert_eq!(f["status"], "pre_transit");
    assert_eq!(f["trackingCompany"], "UPS");
    assert_eq!(f["trackingNumber"], "1Z999AA10123456784");
    assert_eq!(f["estimatedDeliveryDate"], Value::Null);
    assert_eq!(f["deliveredAt"], Value::Null);
    assert_eq!(
        f["lineItems"][0],
        json!({"id": "line-1", "quantity": 2, "title": "T-shirt", "productId": "prod-1",
               "variantId": "var-1", "sku": "SKU-1"})
    );
    assert_eq!(f["lineItems"][1]["title"], "Mug");
    assert_eq!(f["lineItems"][1]["sku"], Value::Null);
    assert_eq!(f["trackingHistory"].as_array().unwrap().len(), 1);
    assert_eq!(f["trackingHistory"][0]["status"], "pre_transit");

    let (_, order) = app.get(&t, "/orders/F-1").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 2);
    assert_eq!(order["lineItems"][1]["fulfilledQuantity"], 1);
    assert_eq!(order["fulfillments"][0], body["fulfillment"]);
}

#[tokio::test]
async fn fulfillment_through_the_internal_order_id_and_generated_ids() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let created = app.order(&t, "F-2", 2).await;
    let internal = created["orderId"].as_str().unwrap();
    let (status, a) = app
        .post(
            &t,
            &format!("/orders/{internal}/fulfillments"),
            json!({"lineItems": lines(&[("line-1", 1)]), "tracking": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_fulfillment_schema(&a);
    assert_eq!(a["fulfillment"]["trackingNumber"], Value::Null);
    let (_, b) = app
        .post(
            &t,
            "/orders/F-2/fulfillments",
            json!({"lineItems": lines(&[("line-1", 1)])}),
        )
        .await;
    assert_ne!(a["fulfillment"]["id"], b["fulfillment"]["id"]);
}

#[tokio::test]
async fn over_fulfillment_is_400_naming_what_remains_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    app.order(&t, "F-3", 5).await;
    let (status, _) = app
        .post(
            &t,
            "/orders/F-3/fulfillments",
            json!({"lineItems": lines(&[("line-1", 3)])}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The second line is fine but the first exceeds: the whole request is refused.
    let (status, body) = app
        .post(
            &t,
            "/orders/F-3/fulfillments",
            json!({"lineItems": lines(&[("line-2", 1), ("line-1", 3)])}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("line-1") && message.contains("2 unit(s) left"),
        "{message}"
    );
    let (_, order) = app.get(&t, "/orders/F-3").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 3);
    assert_eq!(order["lineItems"][1]["fulfilledQuantity"], 0);
    assert_eq!(order["fulfillments"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn request_validation_is_400() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    app.order(&t, "F-4", 5).await;
    let cases = [
        (
            json!({"lineItems": []}),
            "lineItems must contain at least one",
        ),
        (json!({}), "lineItems is required"),
        (
            json!({"lineItems": lines(&[("ghost", 1)])}),
            "line item 'ghost' does not exist",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 0)])}),
            "lineItems[0].quantity must be between 1 and 1000",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 1001)])}),
            "between 1 and 1000",
        ),
        (
            json!({"lineItems": [{"id": "line-1", "quantity": 1.5}]}),
            "lineItems[0].quantity must be an integer; got the number 1.5",
        ),
        (
            json!({"lineItems": [{"id": "line-1"}]}),
            "lineItems[0].quantity is required",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 600), ("line-1", 600)])}),
            "line item 'line-1' is listed with 1200 units in all; at most 1000",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 1)]), "tracking": {"code": "1Z"}}),
            "tracking.carrier is required",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 1)]), "tracking": {"carrier": "UPS"}}),
            "tracking.code is required",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 1)]), "tracking": {"carrier": "UPS", "code": " "}}),
            "tracking.code must not be empty",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 1)]), "useDummyTracking": true,
                "initialTracking": {"status": "delayed"}}),
            "initialTracking.status must be one of",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 1)]), "useDummyTracking": true,
                "initialTracking": {"status": "teleported"}}),
            "initialTracking.status must be one of",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 1)]), "useDummyTracking": "yes"}),
            "useDummyTracking must be true or false; got",
        ),
        (
            json!({"lineItems": lines(&[("line-1", 1)]), "useDummyTracking": true,
                "initialTracking": {"status": "in_transit", "datetime": "soon"}}),
            "initialTracking.datetime must be",
        ),
    ];
    for (body, expected) in cases {
        let (status, resp) = app.post(&t, "/orders/F-4/fulfillments", body.clone()).await;
        let message = assert_error(status, &resp, StatusCode::BAD_REQUEST);
        assert!(
            message.contains(expected),
            "expected '{expected}' in '{message}' for {body}"
        );
    }
    let (_, order) = app.get(&t, "/orders/F-4").await;
    assert_eq!(order["fulfillments"], json!([]));
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 0);
}

#[tokio::test]
async fn unknown_order_is_404_and_duplicate_fulfillment_id_is_409() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let (status, body) = app
        .post(
            &t,
            "/orders/missing/fulfillments",
            json!({"lineItems": lines(&[("line-1", 1)])}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    app.order(&t, "F-5", 5).await;
    let body = json!({"fulfillmentId": "dup", "lineItems": lines(&[("line-1", 1)])});
    let (status, _) = app.post(&t, "/orders/F-5/fulfillments", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, resp) = app.post(&t, "/orders/F-5/fulfillments", body).await;
    assert_error(status, &resp, StatusCode::CONFLICT);
    let (_, order) = app.get(&t, "/orders/F-5").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 1);
}

#[tokio::test]
async fn dummy_tracking_sets_the_initial_status_eta_and_first_history_entry() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    app.order(&t, "F-6", 5).await;
    let (status, body) = app
        .post(
            &t,
            "/orders/F-6/fulfillments",
            json!({
                "lineItems": lines(&[("line-1", 1)]),
                "useDummyTracking": true,
                "initialTracking": {
                    "status": "in_transit",
                    "estimatedDeliveryDate": "2024-03-25T18:00:00-07:00",
                    "message": "Picked up by carrier",
                    "datetime": "2024-03-21T08:00:00Z",
                    "location": {"city": "Reno", "state": "NV", "country": "US", "postalCode": "89501"}
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_fulfillment_schema(&body);
    let f = &body["fulfillment"];
    assert_eq!(f["status"], "in_transit");
    assert_eq!(f["estimatedDeliveryDate"], "2024-03-25");
    assert_eq!(
        f["trackingHistory"],
        json!([{
            "message": "Picked up by carrier",
            "status": "in_transit",
            "datetime": "2024-03-21T08:00:00.000Z",
            "location": {"city": "Reno", "state": "NV", "country": "US", "postalCode": "89501"}
        }])
    );

    // Without useDummyTracking the initial tracking is not applied.
    let (_, body) = app
        .post(
            &t,
            "/orders/F-6/fulfillments",
            json!({"lineItems": lines(&[("line-1", 1)]), "initialTracking": {"status": "delivered"}}),
        )
        .await;
    assert_eq!(body["fulfillment"]["status"], "pre_transit");
    assert_eq!(body["fulfillment"]["deliveredAt"], Value::Null);

    // A fulfillment that starts delivered has deliveredAt.
    let (_, body) = app
        .post(
            &t,
            "/orders/F-6/fulfillments",
            json!({"lineItems": lines(&[("line-1", 1)]), "useDummyTracking": true,
                   "initialTracking": {"status": "delivered", "datetime": "2024-03-22T10:00:00Z"}}),
        )
        .await;
    assert_eq!(
        body["fulfillment"]["deliveredAt"],
        "2024-03-22T10:00:00.000Z"
    );
}

/// A line listed twice is fulfilled by the sum of its entries (as ADM and Fourthwall add up a
/// repeated SKU or variant), in one fulfillment line.
#[tokio::test]
async fn a_line_listed_twice_is_fulfilled_by_the_sum() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    app.order(&t, "F-SUM", 5).await;
    let (status, body) = app
        .post(
            &t,
            "/orders/F-SUM/fulfillments",
            json!({"lineItems": lines(&[("line-1", 2), ("line-2", 1), ("line-1", 1)])}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["fulfillment"]["lineItems"].as_array().unwrap();
    let quantities: Vec<(&str, i64)> = items
        .iter()
        .map(|l| (l["id"].as_str().unwrap(), l["quantity"].as_i64().unwrap()))
        .collect();
    assert_eq!(quantities, vec![("line-1", 3), ("line-2", 1)]);
    let (_, order) = app.get(&t, "/orders/F-SUM").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 3);
}
