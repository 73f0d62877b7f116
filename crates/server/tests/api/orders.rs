use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn create_then_get_by_external_and_internal_id() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let created = app.order(&t, "1001", 2).await;
    assert_eq!(created["externalOrderId"], "1001");
    let internal = created["orderId"].as_str().unwrap().to_owned();
    assert_ne!(internal, "1001");

    for id in ["1001", internal.as_str()] {
        let (status, order) = app.get(&t, &format!("/orders/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{order}");
        assert_eq!(order["id"], internal.as_str());
        assert_eq!(order["orderId"], "1001");
        assert_eq!(order["createdAt"], "2024-03-20T12:00:00.000Z");
        assert_eq!(order["lineItems"][0]["quantity"], 2);
        assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 0);
        assert_eq!(order["lineItems"][0]["price"], 19.99);
        assert_eq!(order["customer"]["email"], "ada@example.com");
        assert_eq!(order["totalPrice"], 59.97);
        assert_eq!(order["fulfillments"], json!([]));
    }
}

#[tokio::test]
async fn duplicate_order_id_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let first = app.order(&t, "A-1", 3).await;
    let (status, body) = app.post(&t, "/orders", order_body("A-1", 9)).await;
    let message = assert_error(status, &body, StatusCode::CONFLICT);
    assert!(message.contains("A-1"), "{message}");
    let (_, order) = app.get(&t, "/orders/A-1").await;
    assert_eq!(order["id"], first["orderId"]);
    assert_eq!(order["lineItems"][0]["quantity"], 3);
}

#[tokio::test]
async fn the_same_external_id_may_exist_in_two_stores() {
    let app = TestApp::spawn().await;
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    app.order(&a, "1", 1).await;
    app.order(&b, "1", 1).await;
}

#[tokio::test]
async fn validation_failures_are_400_with_a_clear_sentence() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let base = order_body("V-1", 1);
    let mut cases: Vec<(serde_json::Value, &str)> = Vec::new();

    let mut v = base.clone();
    v["lineItems"][0]["quantity"] = json!(0);
    cases.push((v, "lineItems[0].quantity must be between 1 and 1000"));
    let mut v = base.clone();
    v["lineItems"][0]["quantity"] = json!(1001);
    cases.push((v, "between 1 and 1000"));
    let mut v = base.clone();
    v["lineItems"][0]["quantity"] = json!("two");
    cases.push((
        v,
        "lineItems[0].quantity must be an integer; got the string \"two\"",
    ));
    let mut v = base.clone();
    v["lineItems"] = json!([]);
    cases.push((v, "lineItems must contain at least one"));
    let mut v = base.clone();
    v.as_object_mut().unwrap().remove("createdAt");
    cases.push((v, "createdAt is required"));
    let mut v = base.clone();
    v["createdAt"] = json!("yesterday");
    cases.push((v, "createdAt must be an ISO 8601 date-time"));
    let mut v = base.clone();
    v["lineItems"][1]["id"] = json!("line-1");
    cases.push((v, "used by more than one line item"));
    let mut v = base.clone();
    v["lineItems"][0].as_object_mut().unwrap().remove("title");
    cases.push((v, "lineItems[0].title is required"));
    let mut v = base.clone();
    v["lineItems"][0]["price"] = json!(-5);
    cases.push((v, "lineItems[0].price must not be negative"));
    let mut v = base.clone();
    v["currencyCode"] = json!("dollars");
    cases.push((v, "currencyCode must be a three-letter ISO 4217 code"));
    let mut v = base.clone();
    v["orderId"] = json!(42);
    cases.push((v, "orderId must be"));
    let mut v = base.clone();
    v["lineItems"][0]["imageUrl"] = json!("x".repeat(2049));
    cases.push((v, "imageUrl must be at most 2048"));

    for (body, expected) in cases {
        let (status, resp) = app.post(&t, "/orders", body.clone()).await;
        let message = assert_error(status, &resp, StatusCode::BAD_REQUEST);
        assert!(
            message.contains(expected),
            "expected '{expected}' in '{message}' for {body}"
        );
    }
    let (status, _) = app.get(&t, "/orders/V-1").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused order must not exist"
    );
}

#[tokio::test]
async fn malformed_and_empty_bodies_are_400_json() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    for raw in ["{", "", "[1,2]", "null", "{\"orderId\": }"] {
        let resp = app
            .client
            .post(format!("{}{}", app.base, t.path("/orders")))
            .bearer_auth(&t.secret)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.expect("JSON error body");
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413_json() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let mut body = order_body("BIG", 1);
    body["tags"] = json!(vec!["x".repeat(1000); 1100]);
    let (status, resp) = app.post(&t, "/orders", body).await;
    assert_error(status, &resp, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = app.get(&t, "/orders/BIG").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_order_is_404() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let (status, body) = app.get(&t, "/orders/nope").await;
    let message = assert_error(status, &body, StatusCode::NOT_FOUND);
    assert!(message.contains("nope"));
    let (status, body) = app
        .call(
            Method::DELETE,
            &t.path("/orders/nope"),
            Some(&t.secret),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_removes_the_order_and_frees_its_id() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let created = app.order(&t, "D-1", 2).await;
    let (status, _) = app
        .post(
            &t,
            "/orders/D-1/fulfillments",
            json!({"lineItems": [{"id": "line-1", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .call(
            Method::DELETE,
            &t.path("/orders/D-1"),
            Some(&t.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"success": true, "orderId": created["orderId"], "externalOrderId": "D-1"})
    );
    let (status, _) = app.get(&t, "/orders/D-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let again = app.order(&t, "D-1", 1).await;
    assert_ne!(again["orderId"], created["orderId"]);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json() {
    let app = TestApp::spawn().await;
    let (status, body) = app.call(Method::GET, "/nowhere", None, None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .call(Method::PUT, "/v2.2/stores/x/orders", None, None)
        .await;
    assert_problem(status, &body, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let (status, body) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
}

/// The document's rules and the server's agree at their edges: what the schema calls valid is
/// accepted (`2.0` is an integer, an amount of 10^28, a 255-character id of two-byte
/// characters), and what it calls invalid is refused with a sentence naming the field (an
/// array where an object goes, an amount over 10^28, an amount string with an exponent).
#[tokio::test]
async fn schema_edges_agree_with_the_server() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let mut body = order_body("é".repeat(255).as_str(), 2);
    body["lineItems"][0]["quantity"] = json!(2.0);
    body["totalPrice"] = json!(1e28);
    let (status, created) = app.post(&t, "/orders", body).await;
    assert_eq!(status, StatusCode::OK, "{created}");

    let refused = [
        (
            "billingAddress",
            json!([null, null]),
            "billingAddress must be an object; got an array",
        ),
        (
            "customer",
            json!(["c-1", "ada@example.com"]),
            "customer must be an object; got an array",
        ),
        (
            "totalPrice",
            json!(1.5e28),
            "totalPrice must be at most 10^28",
        ),
        (
            "totalTax",
            json!("1e5"),
            "totalTax must be a non-negative decimal amount",
        ),
    ];
    for (field, value, expected) in refused {
        let mut body = order_body("EDGE-1", 1);
        body[field] = value;
        let (status, resp) = app.post(&t, "/orders", body).await;
        let message = assert_error(status, &resp, StatusCode::BAD_REQUEST);
        assert!(message.starts_with(expected), "{field}: {message}");
    }
    let (status, _) = app.get(&t, "/orders/EDGE-1").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no refused order was written"
    );
}

/// Statuses the seeds do not list (here 409 and 413) fall under their `default` response:
/// `application/problem+json`; the statuses they list (400, 404) keep `{"error"}` as JSON.
#[tokio::test]
async fn unlisted_statuses_are_problem_json_and_listed_ones_are_error_json() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    app.order(&t, "P-1", 1).await;
    let send = |body: String| {
        app.client
            .post(format!("{}{}", app.base, t.path("/orders")))
            .bearer_auth(&t.secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases = [
        (
            order_body("P-1", 1).to_string(),
            409,
            "application/problem+json",
        ),
        (
            format!("{{\"pad\": \"{}\"}}", "x".repeat(1024 * 1024)),
            413,
            "application/problem+json",
        ),
        ("{}".to_owned(), 400, "application/json"),
    ];
    for (body, status, content_type) in cases {
        let resp = send(body).await.unwrap();
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(resp.headers()["content-type"], content_type, "{status}");
        let body: serde_json::Value = resp.json().await.unwrap();
        if status == 400 {
            assert!(body["error"].is_string(), "{body}");
        } else {
            assert_eq!(body["status"], status, "{body}");
            assert!(body["detail"].is_string(), "{body}");
        }
    }
}
