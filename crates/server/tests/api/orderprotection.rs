use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

async fn op(
    app: &TestApp,
    t: &Tenant,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.send(method, &format!("/v1{path}"), Auth::Bearer(&t.secret), body)
        .await
}

fn op_order(id: &str) -> Value {
    json!({
        "sourceOrderId": id,
        "sourceOrderNumber": "#1001",
        "sourceCreatedAt": "2024-03-20T12:00:00Z",
        "platformId": "shopify",
        "currency": "USD",
        "total": "42.50",
        "subtotal": 40,
        "tax": "2.5",
        "customerEmail": "grace@example.com",
        "customerName": "Grace Hopper",
        "address": {"firstName": "Grace", "city": "Arlington", "state": "VA", "zip": "22201", "country": "US"},
        "tags": "vip, gift",
        "orderItems": [
            {"sourceItemId": "1478", "productName": "Socks", "sku": "SOCK", "quantity": 2, "price": "10.00"},
            {"sourceItemId": 1479, "productName": "Hat", "quantity": 3, "price": 6.5}
        ]
    })
}

fn op_fulfillment(id: &str, items: Value) -> Value {
    json!({
        "sourceItemIds": items,
        "fulfillmentStatus": "Fulfilled",
        "sourceFulfillmentId": id,
        "trackingCompany": "FedEx",
        "trackingNumber": ["AB0303456", "CD0303457"],
        "trackingUrl": ["https://example-follow-shipment.com/AB0303456", "https://example-follow-shipment.com/CD0303457"],
        "createdAt": "2024-03-20T12:00:00Z",
        "updatedAt": "2024-03-20T12:00:00Z"
    })
}

#[tokio::test]
async fn orders_are_created_read_and_refused_twice() {
    let app = TestApp::spawn().await;
    let t = app.tenant("op").await;
    let (status, body) = op(&app, &t, Method::POST, "/orders", Some(op_order("5001"))).await;
    assert_eq!(
        (status, body),
        (StatusCode::CREATED, json!({"status": "ok"}))
    );
    let (status, body) = op(&app, &t, Method::POST, "/orders", Some(op_order("5001"))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["status"], "error");
    assert!(body["message"].as_str().unwrap().contains("5001"));

    let (status, order) = op(&app, &t, Method::GET, "/orders/5001", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["sourceOrderId"], "5001");
    assert_eq!(order["sourceOrderNumber"], "#1001");
    assert_eq!(order["platformId"], "shopify");
    assert_eq!(order["total"], 42.5);
    assert_eq!(order["subtotal"], 40.0);
    assert_eq!(order["customerEmail"], "grace@example.com");
    assert_eq!(order["address"]["zip"], "22201");
    assert_eq!(order["tags"], "vip,gift");
    assert_eq!(order["orderItems"][1]["sourceItemId"], "1479");
    assert_eq!(order["orderItems"][1]["price"], 6.5);

    let (status, body) = op(&app, &t, Method::GET, "/orders/none", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "error");

    for (patch, field) in [
        (json!({"platformId": "etsy"}), "platformId"),
        (json!({"total": "lots"}), "total"),
        (json!({"orderItems": []}), "orderItems"),
        (json!({"sourceCreatedAt": "last week"}), "sourceCreatedAt"),
    ] {
        let mut body = op_order("5002");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, resp) = op(&app, &t, Method::POST, "/orders", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
        assert_eq!(resp["status"], "error");
        let message = resp["message"].as_str().unwrap();
        assert!(
            message.contains(field) || message.contains("line item"),
            "{field}: {message}"
        );
    }
    let (status, _) = op(&app, &t, Method::GET, "/orders/5002", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = app
        .send(Method::GET, "/v1/orders/5001", Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], "error");
}

#[tokio::test]
async fn fulfillments_keep_tracking_lists_and_the_status_as_sent() {
    let app = TestApp::spawn().await;
    let t = app.tenant("op").await;
    op(&app, &t, Method::POST, "/orders", Some(op_order("6001"))).await;
    let (status, body) = op(
        &app, &t, Method::POST, "/orders/6001/fulfillments",
        Some(op_fulfillment("fulfillment-123", json!([{"sourceItemId": "1478", "quantity": 1}, {"sourceItemId": "1479", "quantity": 2}]))),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::CREATED, json!({"status": "ok"}))
    );

    let (status, list) = op(&app, &t, Method::GET, "/orders/6001/fulfillments", None).await;
    assert_eq!(status, StatusCode::OK);
    let f = &list[0];
    assert_eq!(f["id"], "fulfillment-123");
    assert_eq!(f["sourceOrderId"], "6001");
    assert_eq!(f["fulfillmentStatus"], "FULFILLED");
    assert_eq!(f["trackingCompany"], "FedEx");
    assert_eq!(f["trackingNumber"], json!(["AB0303456", "CD0303457"]));
    assert_eq!(
        f["trackingUrl"][1],
        "https://example-follow-shipment.com/CD0303457"
    );
    assert_eq!(
        f["sourceItemIds"],
        json!([{"sourceItemId": "1478", "quantity": 1}, {"sourceItemId": "1479", "quantity": 2}])
    );

    let path = "/orders/6001/fulfillments/fulfillment-123";
    let (status, body) = op(
        &app,
        &t,
        Method::PUT,
        path,
        Some(json!({"status": "out_for_delivery"})),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (_, list) = op(&app, &t, Method::GET, "/orders/6001/fulfillments", None).await;
    assert_eq!(list[0]["fulfillmentStatus"], "OUT_FOR_DELIVERY");
    // DELAYED is an event: the status stays.
    let (status, _) = op(
        &app,
        &t,
        Method::PUT,
        path,
        Some(json!({"status": "Delayed"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = op(&app, &t, Method::GET, "/orders/6001/fulfillments", None).await;
    assert_eq!(list[0]["fulfillmentStatus"], "OUT_FOR_DELIVERY");
    let (_, redo) = app.get(&t, "/orders/6001").await;
    let f = &redo["fulfillments"][0];
    assert_eq!(f["status"], "out_for_delivery");
    assert_eq!(
        f["trackingHistory"].as_array().unwrap().last().unwrap()["status"],
        "delayed"
    );

    let (status, body) = op(
        &app,
        &t,
        Method::PUT,
        path,
        Some(json!({"status": "LOST_AT_SEA"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("LOST_AT_SEA"));
    let (status, _) = op(
        &app,
        &t,
        Method::PUT,
        "/orders/6001/fulfillments/ghost",
        Some(json!({"status": "DELIVERED"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Over-fulfillment and unknown orders.
    let (status, body) = op(
        &app,
        &t,
        Method::POST,
        "/orders/6001/fulfillments",
        Some(op_fulfillment(
            "f-2",
            json!([{"sourceItemId": "1478", "quantity": 2}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("1 unit(s) left"),
        "{body}"
    );
    let (status, _) = op(
        &app,
        &t,
        Method::POST,
        "/orders/none/fulfillments",
        Some(op_fulfillment(
            "f-3",
            json!([{"sourceItemId": "1478", "quantity": 1}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = op(&app, &t, Method::POST, "/orders/6001/fulfillments",
        Some(json!({"sourceItemIds": [{"sourceItemId": "1478", "quantity": 1}], "fulfillmentStatus": "shipped", "sourceFulfillmentId": "f-4"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn an_order_may_carry_its_fulfillments_and_is_refused_whole_when_they_exceed_it() {
    let app = TestApp::spawn().await;
    let t = app.tenant("op").await;
    let mut body = op_order("7001");
    body["fulfillments"] = json!([op_fulfillment(
        "a",
        json!([{"sourceItemId": "1478", "quantity": 2}])
    )]);
    let (status, _) = op(&app, &t, Method::POST, "/orders", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = op(&app, &t, Method::GET, "/orders/7001/fulfillments", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    let mut body = op_order("7002");
    body["fulfillments"] = json!([
        op_fulfillment("a", json!([{"sourceItemId": "1478", "quantity": 2}])),
        op_fulfillment("b", json!([{"sourceItemId": "1478", "quantity": 1}]))
    ]);
    let (status, _) = op(&app, &t, Method::POST, "/orders", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = op(&app, &t, Method::GET, "/orders/7002", None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused order must not exist"
    );
}

#[tokio::test]
async fn posting_a_known_fulfillment_id_again_replaces_it() {
    let app = TestApp::spawn().await;
    let t = app.tenant("op").await;
    op(&app, &t, Method::POST, "/orders", Some(op_order("8001"))).await; // 1478 ×2, 1479 ×3
    let path = "/orders/8001/fulfillments";
    let (status, _) = op(
        &app,
        &t,
        Method::POST,
        path,
        Some(op_fulfillment(
            "f",
            json!([{"sourceItemId": "1478", "quantity": 2}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let mut again = op_fulfillment(
        "f",
        json!([{"sourceItemId": "1478", "quantity": 1}, {"sourceItemId": "1479", "quantity": 3}]),
    );
    again["trackingNumber"] = json!(["ZZ1"]);
    again["trackingUrl"] = json!([]);
    again["fulfillmentStatus"] = json!("IN_TRANSIT");
    let (status, body) = op(&app, &t, Method::POST, path, Some(again)).await;
    assert_eq!(
        (status, body),
        (StatusCode::CREATED, json!({"status": "ok"}))
    );
    let (_, list) = op(&app, &t, Method::GET, path, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "updated, not duplicated");
    assert_eq!(list[0]["trackingNumber"], json!(["ZZ1"]));
    assert_eq!(list[0]["fulfillmentStatus"], "IN_TRANSIT");
    assert_eq!(
        list[0]["sourceItemIds"],
        json!([{"sourceItemId": "1478", "quantity": 1}, {"sourceItemId": "1479", "quantity": 3}])
    );
    let (_, order) = app.get(&t, "/orders/8001").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 1);
    assert_eq!(order["lineItems"][1]["fulfilledQuantity"], 3);
    assert_eq!(order["fulfillments"][0]["status"], "in_transit");

    // The replacement is re-checked against the ledger; a refused one changes nothing.
    op(
        &app,
        &t,
        Method::POST,
        path,
        Some(op_fulfillment(
            "g",
            json!([{"sourceItemId": "1478", "quantity": 1}]),
        )),
    )
    .await;
    let (status, body) = op(
        &app,
        &t,
        Method::POST,
        path,
        Some(op_fulfillment(
            "f",
            json!([{"sourceItemId": "1478", "quantity": 2}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, order) = app.get(&t, "/orders/8001").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 2);
    assert_eq!(order["lineItems"][1]["fulfilledQuantity"], 3);
}

#[tokio::test]
async fn put_updates_an_order_and_keeps_the_ledger_sound() {
    let app = TestApp::spawn().await;
    let t = app.tenant("op").await;
    op(&app, &t, Method::POST, "/orders", Some(op_order("9001"))).await;
    op(
        &app,
        &t,
        Method::POST,
        "/orders/9001/fulfillments",
        Some(op_fulfillment(
            "f",
            json!([{"sourceItemId": "1478", "quantity": 2}]),
        )),
    )
    .await;
    let mut update = op_order("9001");
    update["customerEmail"] = json!("new@example.com");
    update["orderItems"] = json!([
        {"sourceItemId": "1478", "productName": "Socks (pair)", "quantity": 4},
        {"sourceItemId": "1480", "productName": "Scarf", "quantity": 1}
    ]);
    let (status, body) = op(&app, &t, Method::PUT, "/orders/9001", Some(update)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (_, order) = op(&app, &t, Method::GET, "/orders/9001", None).await;
    assert_eq!(order["customerEmail"], "new@example.com");
    let items = order["orderItems"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["productName"], "Socks (pair)");
    assert_eq!(items[0]["quantity"], 4);
    assert_eq!(items[0]["fulfilledQuantity"], 2);
    assert_eq!(items[2]["sourceItemId"], "1480");

    let mut shrink = op_order("9001");
    shrink["orderItems"] = json!([{"sourceItemId": "1478", "quantity": 1}]);
    let (status, body) = op(&app, &t, Method::PUT, "/orders/9001", Some(shrink)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("2 unit(s) fulfilled")
    );
    let mut other = op_order("9002");
    other["orderItems"] = json!([]);
    let (status, _) = op(&app, &t, Method::PUT, "/orders/9001", Some(other)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a body naming another order is refused"
    );
    let (status, _) = op(
        &app,
        &t,
        Method::PUT,
        "/orders/none",
        Some(json!({"orderItems": []})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn orders_are_listed_with_a_cursor() {
    let app = TestApp::spawn().await;
    let t = app.tenant("op").await;
    let other = app.tenant("other").await;
    for i in 0..5 {
        op(
            &app,
            &t,
            Method::POST,
            "/orders",
            Some(op_order(&format!("L-{i}"))),
        )
        .await;
    }
    op(
        &app,
        &other,
        Method::POST,
        "/orders",
        Some(op_order("not-mine")),
    )
    .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/orders?size=2&cursor={c}"),
            None => "/orders?size=2".to_owned(),
        };
        let (status, page) = op(&app, &t, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 5);
        for o in page["orders"].as_array().unwrap() {
            seen.push(o["sourceOrderId"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["L-0", "L-1", "L-2", "L-3", "L-4"]);
    for bad in [
        "/orders?size=0",
        "/orders?size=101",
        "/orders?cursor=!!",
        "/orders?size=x",
    ] {
        let (status, body) = op(&app, &t, Method::GET, bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["status"], "error");
    }
}
