use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const FULFILLMENTS: &str = "/open-api/v1.0/fulfillments";

async fn fw_create(app: &TestApp, t: &Tenant, body: Value) -> (StatusCode, Value) {
    app.send(
        Method::POST,
        FULFILLMENTS,
        Auth::Basic(&t.id, &t.secret),
        Some(body),
    )
    .await
}

async fn fw_order(app: &TestApp, t: &Tenant, id: &str) -> (StatusCode, Value) {
    app.send(
        Method::GET,
        &format!("/open-api/v1.0/order/{id}"),
        Auth::Basic(&t.id, &t.secret),
        None,
    )
    .await
}

fn label(number: &str) -> Value {
    json!({"trackingNumber": number, "trackingCompany": "USPS"})
}

#[tokio::test]
async fn creates_fulfillments_by_variant_with_the_seed_error_codes() {
    let app = TestApp::spawn().await;
    let t = app.tenant("fw").await;
    let created = app.order(&t, "FW-1", 3).await;
    let order_id = created["orderId"].as_str().unwrap();

    let body = json!({"orderId": order_id, "items": [{"variantId": "var-1", "quantity": 2}], "shippingLabel": label("9400111")});
    let (status, resp) = fw_create(&app, &t, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_schema("fourthwall_fulfillment_response.schema.json", &resp);
    let fulfillment_id = resp["fulfillmentId"].as_str().unwrap().to_owned();
    assert_eq!(resp, json!({"fulfillmentId": fulfillment_id}));

    // The same submission again.
    let (status, resp) = fw_create(&app, &t, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        resp,
        json!({"code": "FULFILLMENT_ALREADY_EXISTS", "fulfillmentId": fulfillment_id, "orderId": order_id})
    );

    let (status, resp) = fw_create(&app, &t, json!({"orderId": order_id, "items": [{"variantId": "nope", "quantity": 1}], "shippingLabel": label("2")})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        resp,
        json!({"code": "FULFILLMENT_ORDER_INVALID_VARIANT", "orderId": order_id, "variantId": "nope", "groupedId": null})
    );

    let (status, resp) = fw_create(&app, &t, json!({"orderId": order_id, "items": [{"variantId": "var-1", "quantity": 5}], "shippingLabel": label("3")})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        resp,
        json!({"code": "FULFILLMENT_VARIANT_QUANTITY_TO_HIGH", "orderId": order_id, "variantId": "var-1", "fulfillable": 1, "quantity": 5})
    );

    let missing = "00000000-0000-4000-8000-000000000000";
    let (status, resp) = fw_create(&app, &t, json!({"orderId": missing, "items": [{"variantId": "var-1", "quantity": 1}], "shippingLabel": label("4")})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(resp, json!({"code": "ORDER_ID_NOT_FOUND", "id": missing}));

    for bad in [
        json!({"orderId": order_id, "items": [{"variantId": "var-1", "quantity": 1}], "shippingLabel": {"trackingNumber": "", "trackingCompany": "USPS"}}),
        json!({"orderId": order_id, "items": [{"variantId": "var-1", "quantity": 1}], "shippingLabel": {"trackingNumber": "5"}}),
        json!({"orderId": order_id, "items": [{"variantId": "var-1", "quantity": 0}], "shippingLabel": label("6")}),
        json!({"orderId": order_id, "items": [], "shippingLabel": label("7")}),
        json!({"orderId": "not-a-uuid", "items": [{"variantId": "var-1", "quantity": 1}], "shippingLabel": label("8")}),
        json!({"items": [{"variantId": "var-1", "quantity": 1}], "shippingLabel": label("9")}),
    ] {
        let (status, resp) = fw_create(&app, &t, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(resp["code"].is_string(), "{resp}");
    }
    let (_, order) = app.get(&t, "/orders/FW-1").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 2);
    assert_eq!(order["fulfillments"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn basic_and_bearer_auth() {
    let app = TestApp::spawn().await;
    let t = app.tenant("fw").await;
    let other = app.tenant("other").await;
    let created = app.order(&t, "FW-2", 1).await;
    let path = format!(
        "/open-api/v1.0/order/{}",
        created["orderId"].as_str().unwrap()
    );
    let (status, _) = app
        .send(Method::GET, &path, Auth::Bearer(&t.secret), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for auth in [
        Auth::None,
        Auth::Basic(&other.id, &t.secret),
        Auth::Basic(&t.id, "wb_sk_x"),
        Auth::Bearer("wrong"),
    ] {
        let (status, body) = app.send(Method::GET, &path, auth, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "UNAUTHORIZED");
    }
    // Another store's credentials do not see the order.
    let (status, body) = app
        .send(
            Method::GET,
            &path,
            Auth::Basic(&other.id, &other.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "ORDER_ID_NOT_FOUND");
}

#[tokio::test]
async fn order_v1_fields_and_the_derived_status_follow_updates_from_other_dialects() {
    let app = TestApp::spawn().await;
    let t = app.tenant("fw").await;
    let created = app.order(&t, "FW-3", 2).await; // line-1 ×2 (var-1), line-2 ×1
    let id = created["orderId"].as_str().unwrap();
    let status_of = |body: &Value| body["status"].as_str().unwrap().to_owned();

    let (status, order) = fw_order(&app, &t, id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["id"], id);
    assert_eq!(order["shopId"], t.id);
    assert_eq!(order["friendlyId"], "FW-3");
    assert_eq!(order["email"], "ada@example.com");
    assert_eq!(
        order["amounts"]["total"],
        json!({"value": 59.97, "currency": "USD"})
    );
    assert_eq!(order["offers"][0]["variant"]["id"], "var-1");
    assert_eq!(order["offers"][0]["variant"]["sku"], "SKU-1");
    assert_eq!(order["offers"][0]["variant"]["quantity"], 2);
    assert_eq!(status_of(&order), "CONFIRMED");

    // Redo: one unit into a fulfillment.
    let (_, f) = app
        .post(
            &t,
            "/orders/FW-3/fulfillments",
            json!({"fulfillmentId": "a", "lineItems": [{"id": "line-1", "quantity": 1}]}),
        )
        .await;
    assert_eq!(f["fulfillment"]["id"], "a");
    assert_eq!(
        status_of(&fw_order(&app, &t, id).await.1),
        "PARTIALLY_IN_PRODUCTION"
    );
    // OrderProtection: the rest.
    let (status, _) = app
        .send(Method::POST, "/v1/orders/FW-3/fulfillments", Auth::Bearer(&t.secret), Some(json!({
            "sourceFulfillmentId": "b", "fulfillmentStatus": "label_printed",
            "sourceItemIds": [{"sourceItemId": "line-1", "quantity": 1}, {"sourceItemId": "line-2", "quantity": 1}]
        })))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(status_of(&fw_order(&app, &t, id).await.1), "IN_PRODUCTION");
    let redo_status = |s: &'static str| json!({"status": s});
    app.post(
        &t,
        "/orders/FW-3/fulfillments/a/shipment-status",
        redo_status("in_transit"),
    )
    .await;
    assert_eq!(
        status_of(&fw_order(&app, &t, id).await.1),
        "PARTIALLY_SHIPPED"
    );
    let (status, _) = app
        .send(
            Method::PUT,
            "/v1/orders/FW-3/fulfillments/b",
            Auth::Bearer(&t.secret),
            Some(json!({"status": "Carrier_Picked_Up"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_of(&fw_order(&app, &t, id).await.1), "SHIPPED");
    app.post(
        &t,
        "/orders/FW-3/fulfillments/a/shipment-status",
        redo_status("delivered"),
    )
    .await;
    assert_eq!(
        status_of(&fw_order(&app, &t, id).await.1),
        "PARTIALLY_DELIVERED"
    );
    app.send(
        Method::PUT,
        "/v1/orders/FW-3/fulfillments/b",
        Auth::Bearer(&t.secret),
        Some(json!({"status": "DELIVERED"})),
    )
    .await;
    assert_eq!(status_of(&fw_order(&app, &t, id).await.1), "DELIVERED");
}

#[tokio::test]
async fn orders_are_listed_with_paging_and_filters() {
    let app = TestApp::spawn().await;
    let t = app.tenant("fw").await;
    for i in 0..5 {
        let mut body = order_body(&format!("P-{i}"), 1);
        body["createdAt"] = json!(format!("2024-03-2{i}T12:00:00Z"));
        if i == 4 {
            body["customer"]["email"] = json!("Other@Example.com");
        }
        app.post(&t, "/orders", body).await;
    }
    // P-1 and P-2 shipped entirely, P-3 partly.
    for (order, lines) in [
        (
            "P-1",
            json!([{"id": "line-1", "quantity": 1}, {"id": "line-2", "quantity": 1}]),
        ),
        (
            "P-2",
            json!([{"id": "line-1", "quantity": 1}, {"id": "line-2", "quantity": 1}]),
        ),
        ("P-3", json!([{"id": "line-1", "quantity": 1}])),
    ] {
        app.post(
            &t,
            &format!("/orders/{order}/fulfillments"),
            json!({"fulfillmentId": order, "lineItems": lines,
            "useDummyTracking": true, "initialTracking": {"status": "in_transit"}}),
        )
        .await;
    }
    let list = |q: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            let (status, body) = app
                .send(
                    Method::GET,
                    &format!("/open-api/v1.0/order{q}"),
                    Auth::Basic(&t.id, &t.secret),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            body
        }
    };
    let ids = |body: &Value| -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["friendlyId"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = list("").await;
    assert_eq!(
        (
            all["total"].as_u64(),
            all["page"].as_u64(),
            all["size"].as_u64(),
            all["totalPages"].as_u64()
        ),
        (Some(5), Some(0), Some(20), Some(1))
    );
    let page = list("?page=1&size=2").await;
    assert_eq!(ids(&page), ["P-2", "P-3"]);
    assert_eq!(page["totalPages"], 3);
    assert_eq!(ids(&list("?status=SHIPPED").await), ["P-1", "P-2"]);
    assert_eq!(
        ids(&list("?status=SHIPPED&status=PARTIALLY_SHIPPED").await),
        ["P-1", "P-2", "P-3"]
    );
    assert_eq!(ids(&list("?status=CONFIRMED").await), ["P-0", "P-4"]);
    assert_eq!(ids(&list("?email=other%40example.com").await), ["P-4"]);
    assert_eq!(
        ids(&list(
            "?createdAt%5Bgt%5D=2024-03-21T00:00:00Z&createdAt%5Blt%5D=2024-03-23T00:00:00Z"
        )
        .await),
        ["P-1", "P-2"]
    );

    for bad in [
        "?status=LOST",
        "?size=0",
        "?page=-1",
        "?createdAt%5Bgt%5D=monday",
    ] {
        let (status, body) = app
            .send(
                Method::GET,
                &format!("/open-api/v1.0/order{bad}"),
                Auth::Basic(&t.id, &t.secret),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["code"], "INVALID_REQUEST");
    }
}

#[tokio::test]
async fn the_document_states_what_fulfillments_accept() {
    use crate::orderprotection::document_accepts;
    let app = TestApp::spawn().await;
    let t = app.tenant("fw").await;
    let created = app.order(&t, "FW-DOC", 3).await;
    let order_id = created["orderId"].as_str().unwrap();
    let body = |items: Value, label: Value| json!({"orderId": order_id, "items": items, "shippingLabel": label});

    // 1.0 is an integer to JSON Schema, and a quantity here.
    let good = body(
        json!([{"variantId": "var-1", "quantity": 1.0}]),
        label("\u{3000}DOC-1"),
    );
    assert!(document_accepts("post", FULFILLMENTS, &good));
    let (status, resp) = fw_create(&app, &t, good).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");

    for bad in [
        body(
            json!([{"variantId": "var-1", "quantity": 1.5}]),
            label("DOC-2"),
        ),
        body(
            json!([{"variantId": "var-1", "quantity": 1001}]),
            label("DOC-3"),
        ),
        body(json!([["var-1", 1]]), label("DOC-4")),
        body(
            json!([{"variantId": "var-1", "quantity": 1}]),
            json!(["DOC-5", "USPS"]),
        ),
        body(
            json!([{"variantId": "var-1", "quantity": 1}]),
            label("\u{3000}\t"),
        ),
        json!({"orderId": "", "items": [{"variantId": "var-1", "quantity": 1}], "shippingLabel": label("DOC-6")}),
    ] {
        assert!(!document_accepts("post", FULFILLMENTS, &bad), "{bad}");
        let (status, resp) = fw_create(&app, &t, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {resp}");
        assert_eq!(resp["code"], "INVALID_REQUEST", "{resp}");
    }
}

#[tokio::test]
async fn listing_parameters_follow_the_document() {
    use crate::orderprotection::document_accepts_query;
    let app = TestApp::spawn().await;
    let t = app.tenant("fw").await;
    const PATH: &str = "/open-api/v1.0/order";
    // (query, parameter, its value as the document reads it, accepted)
    for (query, name, value, ok) in [
        ("size=100&page=0", "size", json!(100), true),
        ("page=2147483647", "page", json!(2147483647), true),
        (
            "createdAt%5Bgt%5D=0001-01-01T00:00:00%2B23:59",
            "createdAt[gt]",
            json!("0001-01-01T00:00:00+23:59"),
            true,
        ),
        (
            "updatedAt%5Blt%5D=9999-12-31T23:59:59.999999-23:59",
            "updatedAt[lt]",
            json!("9999-12-31T23:59:59.999999-23:59"),
            true,
        ),
        (
            "status=CANCELLED&status=SHIPPED",
            "status",
            json!(["CANCELLED", "SHIPPED"]),
            true,
        ),
        ("size=101", "size", json!(101), false),
        ("page=2147483648", "page", json!(2147483648u64), false),
        ("createdAt%5Bgt%5D=", "createdAt[gt]", json!(""), false),
        (
            "createdAt%5Blt%5D=2024-01-01T12%3A99%3A00Z",
            "createdAt[lt]",
            json!("2024-01-01T12:99:00Z"),
            false,
        ),
        ("status=shipped", "status", json!(["shipped"]), false),
    ] {
        assert_eq!(
            document_accepts_query(PATH, name, &value),
            ok,
            "{name}={value}"
        );
        let (status, body) = app
            .send(
                Method::GET,
                &format!("{PATH}?{query}"),
                Auth::Basic(&t.id, &t.secret),
                None,
            )
            .await;
        let expected = if ok {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, expected, "{query}: {body}");
    }
}

#[tokio::test]
async fn webhook_urls_and_event_types_follow_the_document() {
    use crate::orderprotection::document_accepts;
    let app = TestApp::spawn().await;
    let t = app.tenant("fw").await;
    const PATH: &str = "/open-api/v1.0/webhooks";
    let webhook = |url: &str, types: Value| json!({"url": url, "allowedTypes": types});
    // Public IP literals, or hosts that do not resolve (taken: deliveries resolve them again).
    for good in [
        webhook(
            "https://93.184.216.34:8443/hooks?x=ü",
            json!(["ORDER_PLACED"]),
        ),
        webhook(
            "HTTP:\\\\hooks.example.invalid*\\x",
            json!(["DONATION", "ORDER_UPDATED"]),
        ),
        webhook(
            "http://hooks-1.example.invalid.:65535",
            json!(["ORDER_PLACED", "ORDER_UPDATED", "GIFT_PURCHASE"]),
        ),
    ] {
        assert!(document_accepts("post", PATH, &good), "{good}");
        let (status, body) = app
            .send(
                Method::POST,
                PATH,
                Auth::Basic(&t.id, &t.secret),
                Some(good.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{good}: {body}");
    }
    for bad in [
        // A last label that is a number makes the host an IPv4 address, and this one is not.
        webhook("http://hooks.example.1/x", json!(["ORDER_PLACED"])),
        webhook("http://user@93.184.216.34/", json!(["ORDER_PLACED"])),
        webhook("ftp://93.184.216.34/", json!(["ORDER_PLACED"])),
        webhook("http://93.184.216.34:65536/", json!(["ORDER_PLACED"])),
        webhook("https://xn--a.example.invalid/", json!(["ORDER_PLACED"])),
        webhook(
            &format!("https://93.184.216.34/{}", "a".repeat(2048)),
            json!(["ORDER_PLACED"]),
        ),
        webhook("https://93.184.216.34/", json!([])),
        webhook("https://93.184.216.34/", json!(["order_placed"])),
        webhook("https://93.184.216.34/", json!(["A".repeat(65)])),
        // Not a Fourthwall event type (Waybill's internal names included).
        webhook("https://93.184.216.34/", json!(["SOME_FUTURE_TYPE"])),
        webhook("https://93.184.216.34/", json!(["fulfillment.created"])),
    ] {
        assert!(!document_accepts("post", PATH, &bad), "{bad}");
        let (status, body) = app
            .send(
                Method::POST,
                PATH,
                Auth::Basic(&t.id, &t.secret),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}
