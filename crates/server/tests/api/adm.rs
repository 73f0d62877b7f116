use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

async fn adm_order(app: &TestApp, t: &Tenant, id: &str, quantity: u32) {
    let (status, body) = app
        .post(
            t,
            "/orders",
            json!({
                "orderId": id, "createdAt": "2024-04-30T12:00:00Z",
                "lineItems": [
                    {"id": "1", "productId": "p", "title": "Tee", "sku": "RPBF24-1941", "quantity": quantity},
                    {"id": "2", "productId": "p2", "title": "Cap", "sku": "12345", "quantity": 1}
                ]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn create(app: &TestApp, secret: Option<&str>, body: Value) -> (StatusCode, Value) {
    let auth = secret.map_or(Auth::None, Auth::Bearer);
    app.send(Method::POST, "/adm/fulfillments/create", auth, Some(body))
        .await
}

#[tokio::test]
async fn creates_a_fulfillment_by_integer_order_id_and_sku() {
    let app = TestApp::spawn().await;
    let t = app.tenant("adm").await;
    adm_order(&app, &t, "450789469", 2).await;
    let (status, body) = create(
        &app,
        Some(&t.secret),
        json!({"order_id": 450789469, "line_items": [{"sku": "RPBF24-1941", "quantity": 1}, {"sku": 12345, "quantity": 1}],
               "tracking_number": "1ZE356F8YW01937117"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_id"], 450789469);
    assert_eq!(body["status"], "created");
    assert_eq!(body["tracking_number"], "1ZE356F8YW01937117");
    let created_at = body["created_at"].as_str().unwrap();
    assert!(created_at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert!(body["id"].is_string());
    assert_eq!(
        body["line_items"],
        json!([{"sku": "RPBF24-1941", "quantity": 1}, {"sku": "12345", "quantity": 1}])
    );
    let (_, order) = app.get(&t, "/orders/450789469").await;
    assert_eq!(
        order["fulfillments"][0]["trackingNumber"],
        "1ZE356F8YW01937117"
    );
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 1);
}

#[tokio::test]
async fn errors_have_the_vendor_shape() {
    let app = TestApp::spawn().await;
    let t = app.tenant("adm").await;
    adm_order(&app, &t, "77", 1).await;
    let good = json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941", "quantity": 1}], "tracking_number": "T1"});

    for secret in [None, Some("wb_sk_nope")] {
        let (status, body) = create(&app, secret, good.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({"error": "Unauthorized Request", "message": "The key provided is invalid."})
        );
    }

    let (status, body) = create(&app, Some(&t.secret), json!({"order_id": 78, "line_items": [{"sku": "RPBF24-1941", "quantity": 1}], "tracking_number": "T"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "Order Not Found", "message": "The order with the specified ID was not found."})
    );

    let invalid = [
        json!({"order_id": 77, "line_items": [{"sku": "NOPE", "quantity": 1}], "tracking_number": "T"}),
        json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941", "quantity": 0}], "tracking_number": "T"}),
        json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941"}], "tracking_number": "T"}),
        json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941", "quantity": 1}]}),
        json!({"order_id": "77", "line_items": [{"sku": "RPBF24-1941", "quantity": 1}], "tracking_number": "T"}),
        json!({"order_id": 77, "line_items": [], "tracking_number": "T"}),
        json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941", "quantity": 1}], "tracking_number": " "}),
    ];
    for body in invalid {
        let (status, resp) = create(&app, Some(&t.secret), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp["error"], "Invalid SKU or Quantity", "{body}");
        assert!(resp["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    let (status, _) = create(&app, Some(&t.secret), good.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = create(&app, Some(&t.secret), good).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "Item Already Fulfilled");
    let (_, order) = app.get(&t, "/orders/77").await;
    assert_eq!(order["fulfillments"].as_array().unwrap().len(), 1);
}
