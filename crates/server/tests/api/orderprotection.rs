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

/// Whether the OpenAPI document's request body for `method path` takes `body`, formats
/// included: the same reading Schemathesis has of the document.
pub(crate) fn document_accepts(method: &str, path: &str, body: &Value) -> bool {
    let doc: Value = serde_json::from_str(&waybill_server::openapi::document_json()).unwrap();
    let schema =
        &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "no request body for {method} {path}");
    validates(&doc, schema, body)
}

/// Whether the document's schema of the query parameter `name` of `GET path` takes `value`.
pub(crate) fn document_accepts_query(path: &str, name: &str, value: &Value) -> bool {
    let doc: Value = serde_json::from_str(&waybill_server::openapi::document_json()).unwrap();
    let parameter = doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no parameter {name} on GET {path}"))
        .clone();
    validates(&doc, &parameter["schema"], value)
}

fn validates(doc: &Value, schema: &Value, instance: &Value) -> bool {
    let root = json!({"components": doc["components"], "allOf": [schema]});
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .expect("the document's schema compiles")
        .is_valid(instance)
}

#[tokio::test]
async fn the_document_states_what_fulfillments_accept() {
    let app = TestApp::spawn().await;
    let t = app.tenant("op").await;
    assert!(document_accepts("post", "/v1/orders", &op_order("DOC-1")));
    let (status, body) = op(&app, &t, Method::POST, "/orders", Some(op_order("DOC-1"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    const PATH: &str = "/v1/orders/{sourceOrderId}/fulfillments";
    let with = |changes: Value| {
        let mut f = op_fulfillment("doc-f", json!([{"sourceItemId": "1478", "quantity": 1}]));
        for (k, v) in changes.as_object().unwrap() {
            f[k] = v.clone();
        }
        f
    };
    // Schema-valid edge values, each accepted (a fulfillment id posted again replaces it).
    for good in [
        with(json!({"fulfillmentStatus": " in_Transit\u{3000}"})),
        with(json!({"fulfillmentStatus": "delayed", "trackingUrl": []})),
        // 1479.0 is the integer 1479 to JSON Schema, and the line sent as 1479.
        with(json!({"sourceItemIds": [{"sourceItemId": 1479.0, "quantity": 1.0}]})),
        with(
            json!({"trackingNumber": ["1"], "trackingUrl": ["u"], "createdAt": "2024-03-20T12:00:00.5+23:59"}),
        ),
        with(json!({"sourceFulfillmentId": 18446744073709551615u64, "updatedAt": null})),
    ] {
        assert!(document_accepts("post", PATH, &good), "{good}");
        let (status, body) = op(
            &app,
            &t,
            Method::POST,
            "/orders/DOC-1/fulfillments",
            Some(good.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{good}: {body}");
    }
    // Schema-invalid requests, each refused.
    for bad in [
        with(json!({"fulfillmentStatus": "LOST"})),
        with(json!({"fulfillmentStatus": "IN TRANSIT"})),
        with(json!({"trackingNumber": ["1"], "trackingUrl": ["u", "v"]})),
        with(json!({"trackingNumber": [" \t"]})),
        with(json!({"sourceItemIds": []})),
        with(json!({"sourceItemIds": [["1478", 1]]})),
        with(json!({"sourceItemIds": [{"sourceItemId": "1478", "quantity": 1.5}]})),
        with(
            json!({"sourceItemIds": [{"sourceItemId": "1478", "quantity": 1}, {"sourceItemId": "1478", "quantity": 1}]}),
        ),
        with(json!({"sourceFulfillmentId": " "})),
        with(json!({"sourceFulfillmentId": 1.5})),
        with(json!({"createdAt": "2024-03-20T12:00:00"})),
    ] {
        assert!(!document_accepts("post", PATH, &bad), "{bad}");
        let (status, body) = op(
            &app,
            &t,
            Method::POST,
            "/orders/DOC-1/fulfillments",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["status"], "error");
    }
    // The status update takes the same spellings.
    const STATUS_PATH: &str = "/v1/orders/{sourceOrderId}/fulfillments/{sourceFulfillmentId}";
    for (status_name, ok) in [
        ("out_for_DELIVERY ", true),
        ("", false),
        ("OUT-FOR-DELIVERY", false),
    ] {
        let body = json!({"status": status_name});
        assert_eq!(document_accepts("put", STATUS_PATH, &body), ok, "{body}");
        let (status, answer) = op(
            &app,
            &t,
            Method::PUT,
            "/orders/DOC-1/fulfillments/doc-f",
            Some(body.clone()),
        )
        .await;
        let expected = if ok {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, expected, "{body}: {answer}");
    }
}

#[tokio::test]
async fn the_document_states_what_orders_and_updates_accept() {
    let app = TestApp::spawn().await;
    let t = app.tenant("op").await;
    let mut good = op_order("DOC-2");
    good["sourceOrderId"] = json!(-7.0);
    good["platformId"] = json!(null);
    good["orderItems"][0]["sourceVariantId"] = json!(12);
    assert!(document_accepts("post", "/v1/orders", &good));
    let (status, body) = op(&app, &t, Method::POST, "/orders", Some(good)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, order) = op(&app, &t, Method::GET, "/orders/-7", None).await;
    assert_eq!(status, StatusCode::OK, "{order}");

    for (field, value) in [
        ("sourceOrderId", json!("")),
        ("sourceCreatedAt", json!("")),
        ("platformId", json!("Shopify")),
        ("address", json!([null, null])),
        ("orderItems", json!([])),
        (
            "orderItems",
            json!([{"sourceItemId": "1", "quantity": 1001}]),
        ),
        (
            "orderItems",
            json!([{"sourceItemId": "1", "quantity": 1}, {"sourceItemId": "1", "quantity": 1}]),
        ),
    ] {
        let mut bad = op_order("DOC-3");
        bad[field] = value;
        assert!(!document_accepts("post", "/v1/orders", &bad), "{bad}");
        let (status, body) = op(&app, &t, Method::POST, "/orders", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // An update names the order in its path; orderItems may be empty, fulfillments must be.
    const PATH: &str = "/v1/orders/{sourceOrderId}";
    let good = json!({"customerName": "Ada", "orderItems": [], "fulfillments": []});
    assert!(document_accepts("put", PATH, &good));
    let (status, body) = op(&app, &t, Method::PUT, "/orders/-7", Some(good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = op(
        &app,
        &t,
        Method::PUT,
        "/orders/-7",
        Some(json!({"sourceOrderId": -7})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an integer id that spells the path's: {body}"
    );
    for bad in [
        json!({"orderItems": [{"sourceItemId": " ", "quantity": 1}]}),
        json!({"orderItems": [{"sourceItemId": "n", "quantity": 1}, {"sourceItemId": "n", "quantity": 1}]}),
        json!({"fulfillments": [op_fulfillment("f", json!([{"sourceItemId": "1478", "quantity": 1}]))]}),
        json!({"sourceUpdatedAt": "yesterday"}),
    ] {
        assert!(!document_accepts("put", PATH, &bad), "{bad}");
        let (status, body) = op(&app, &t, Method::PUT, "/orders/-7", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    // Lines with the same id are refused on update as on create, also when they differ
    // otherwise (which the document cannot state).
    let (status, body) = op(
        &app,
        &t,
        Method::PUT,
        "/orders/-7",
        Some(json!({"orderItems": [{"sourceItemId": "n", "quantity": 1}, {"sourceItemId": "n", "quantity": 2}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["message"],
        "orderItems[1].sourceItemId 'n' is used by more than one line item"
    );
}

#[tokio::test]
async fn listing_parameters_follow_the_document() {
    let app = TestApp::spawn().await;
    let t = app.tenant("op").await;
    for i in 0..3 {
        op(
            &app,
            &t,
            Method::POST,
            "/orders",
            Some(op_order(&format!("C-{i}"))),
        )
        .await;
    }
    let (status, page) = op(&app, &t, Method::GET, "/orders?size=1&cursor=", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    assert!(document_accepts_query(
        "/v1/orders",
        "cursor",
        &json!(cursor)
    ));
    assert!(document_accepts_query("/v1/orders", "cursor", &json!("")));
    // Hex digits in either case name the same order.
    let (status, next) = op(
        &app,
        &t,
        Method::GET,
        &format!("/orders?size=1&cursor={}", cursor.to_uppercase()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(next["orders"][0]["sourceOrderId"], "C-1");
    for (name, value) in [
        ("size", json!(0)),
        ("size", json!(101)),
        ("cursor", json!("!!")),
        ("cursor", json!(format!("{cursor}0"))),
    ] {
        assert!(
            !document_accepts_query("/v1/orders", name, &value),
            "{name}={value}"
        );
        let text = value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        let (status, body) = op(
            &app,
            &t,
            Method::GET,
            &format!("/orders?{name}={text}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}={text}: {body}");
    }
}
