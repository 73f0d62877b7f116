use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

/// Every dialect answers a body over 1 MiB with 413 in its own error format.
#[tokio::test]
async fn oversized_bodies_are_413_in_each_dialects_format() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let big = json!({"padding": "x".repeat(1_100_000)});
    let cases = [
        ("/adm/fulfillments/create", Auth::Bearer(&t.secret), "error"),
        (
            "/open-api/v1.0/fulfillments",
            Auth::Basic(&t.id, &t.secret),
            "code",
        ),
        ("/v1/orders", Auth::Bearer(&t.secret), "status"),
    ];
    for (path, auth, key) in cases {
        let (status, body) = app.send(Method::POST, path, auth, Some(big.clone())).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(body[key].is_string(), "{path}: {body}");
    }
}

/// An OrderProtection fulfillment id already used on another order is a conflict.
#[tokio::test]
async fn a_fulfillment_id_of_another_order_is_409() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    app.order(&t, "A", 1).await;
    app.order(&t, "B", 1).await;
    let body = json!({"sourceFulfillmentId": "shared", "fulfillmentStatus": "FULFILLED",
                      "sourceItemIds": [{"sourceItemId": "line-1", "quantity": 1}]});
    let (status, _) = app
        .send(
            Method::POST,
            "/v1/orders/A/fulfillments",
            Auth::Bearer(&t.secret),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, resp) = app
        .send(
            Method::POST,
            "/v1/orders/B/fulfillments",
            Auth::Bearer(&t.secret),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{resp}");
    assert_eq!(resp["status"], "error");
    let (_, order) = app.get(&t, "/orders/B").await;
    assert_eq!(order["fulfillments"], json!([]));
}
