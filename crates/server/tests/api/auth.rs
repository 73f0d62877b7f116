use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn missing_or_invalid_secret_is_401() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let path = t.path("/orders");
    let (status, body) = app
        .call(Method::POST, &path, None, Some(order_body("X", 1)))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    for bad in ["wrong", "wb_sk_0000", &format!("{}x", t.secret)] {
        let (status, body) = app
            .call(Method::POST, &path, Some(bad), Some(order_body("X", 1)))
            .await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED);
    }
    let resp = app
        .client
        .get(format!("{}{}", app.base, t.path("/orders/X")))
        .header("authorization", format!("Basic {}", t.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_stores_secret_and_an_unknown_store_are_the_same_403_problem() {
    let app = TestApp::spawn().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    app.order(&a, "A-1", 5).await;

    // Store B's secret on store A's paths: refused, whatever the method.
    let reads = [
        (Method::GET, a.path("/orders/A-1"), None),
        (Method::DELETE, a.path("/orders/A-1"), None),
        (
            Method::POST,
            a.path("/orders"),
            Some(order_body("B-in-A", 1)),
        ),
        (
            Method::POST,
            a.path("/orders/A-1/fulfillments"),
            Some(json!({"lineItems": [{"id": "line-1", "quantity": 1}]})),
        ),
        (
            Method::POST,
            a.path("/orders/A-1/fulfillments/f/shipment-status"),
            Some(json!({"status": "delivered"})),
        ),
    ];
    for (method, path, body) in reads {
        let (status, resp) = app.call(method, &path, Some(&b.secret), body).await;
        assert_problem(status, &resp, StatusCode::FORBIDDEN);
    }
    // Nothing changed in store A.
    let (status, order) = app.get(&a, "/orders/A-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 0);
    assert_eq!(order["fulfillments"], json!([]));
    let (status, _) = app.get(&a, "/orders/B-in-A").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Store B cannot reach A's order through its own path either.
    let (status, body) = app.get(&b, "/orders/A-1").await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    // A path naming no store at all gets exactly the answer another store's path gets, so a
    // key holder cannot tell which store ids exist.
    let (status, unknown) = app
        .call(
            Method::GET,
            "/v2.2/stores/000000000000000000000000/orders/A-1",
            Some(&a.secret),
            None,
        )
        .await;
    assert_problem(status, &unknown, StatusCode::FORBIDDEN);
    let (status, other) = app
        .call(Method::GET, &b.path("/orders/A-1"), Some(&a.secret), None)
        .await;
    assert_problem(status, &other, StatusCode::FORBIDDEN);
    assert_eq!(unknown, other);
}

#[tokio::test]
async fn a_second_key_works_and_revocation_takes_effect_at_once() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let second = app.store.create_api_key(&t.id).await.unwrap();
    let (status, _) = app
        .call(
            Method::POST,
            &t.path("/orders"),
            Some(&second.secret),
            Some(order_body("K-1", 1)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.store.revoke_api_key(&second.id).await.unwrap());
    let (status, body) = app
        .call(
            Method::GET,
            &t.path("/orders/K-1"),
            Some(&second.secret),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    // The first key still works.
    let (status, _) = app.get(&t, "/orders/K-1").await;
    assert_eq!(status, StatusCode::OK);
}
