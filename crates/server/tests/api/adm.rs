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

    // Each refusal: the seed's 400, titled "Invalid SKU or Quantity" when a line is at fault
    // and "Invalid Request" otherwise, with a message that names the field as ADM spells it
    // and says what was expected (no parser internals).
    let sku = "Invalid SKU or Quantity";
    let request = "Invalid Request";
    let invalid = [
        (
            json!({"order_id": 77, "line_items": [{"sku": "NOPE", "quantity": 1}], "tracking_number": "T"}),
            sku,
            "SKU 'NOPE' is not on order 77.",
        ),
        (
            json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941", "quantity": 0}], "tracking_number": "T"}),
            sku,
            "line_items[0].quantity must be between 1 and 1000; got 0.",
        ),
        (
            json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941"}], "tracking_number": "T"}),
            sku,
            "line_items[0].quantity is required",
        ),
        (
            json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941", "quantity": "1"}], "tracking_number": "T"}),
            sku,
            "line_items[0].quantity must be an integer; got the string \"1\"",
        ),
        (
            json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941", "quantity": 2}], "tracking_number": "T"}),
            sku,
            "SKU 'RPBF24-1941' has 1 unit(s) left to fulfill on order 77; 2 requested.",
        ),
        (
            json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941", "quantity": 1}]}),
            request,
            "tracking_number is required: the parcel's tracking number, as a string.",
        ),
        (
            json!({"order_id": "77", "line_items": [{"sku": "RPBF24-1941", "quantity": 1}], "tracking_number": "T"}),
            request,
            "order_id must be an integer; got the string \"77\"",
        ),
        (
            json!({"order_id": 77, "line_items": [], "tracking_number": "T"}),
            sku,
            "line_items must contain at least one item; leave it out to fulfill every remaining unit.",
        ),
        (
            json!({"order_id": 77, "line_items": [{"sku": "RPBF24-1941", "quantity": 1}], "tracking_number": " "}),
            request,
            "tracking_number must not be blank.",
        ),
        (
            json!({"line_items": [{"sku": "RPBF24-1941", "quantity": 1}], "tracking_number": "T"}),
            request,
            "order_id is required (or line_items_by_fulfillment_order): the ID of the order you are fulfilling, as an integer.",
        ),
        (
            json!({"order_id": 77, "line_items_by_fulfillment_order": [{"order_id": 77}], "tracking_number": "T"}),
            request,
            "send either order_id (with line_items) or line_items_by_fulfillment_order, not both.",
        ),
        (
            json!({"line_items_by_fulfillment_order": [{"order_id": 77}, {"order_id": 78}], "tracking_number": "T"}),
            request,
            "line_items_by_fulfillment_order[1].order_id is 78, but entry 0 names order 77: one fulfillment belongs to one order; send one request per order.",
        ),
        (
            json!({"line_items_by_fulfillment_order": [{"order_id": 77, "line_items": [{"sku": 5, "quantity": 1.5}]}], "tracking_number": "T"}),
            sku,
            "line_items_by_fulfillment_order[0].line_items[0].quantity must be an integer; got the number 1.5",
        ),
    ];
    for (body, title, message) in invalid {
        let (status, resp) = create(&app, Some(&t.secret), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp, json!({"error": title, "message": message}), "{body}");
    }
    let (_, order) = app.get(&t, "/orders/77").await;
    assert_eq!(order["fulfillments"], json!([]), "refusals change nothing");

    let (status, _) = create(&app, Some(&t.secret), good.clone()).await;
    assert_eq!(status, StatusCode::OK);
    // Over-fulfilment is the seed's 400 (it lists no 409), naming the SKU and what is left.
    let (status, body) = create(&app, Some(&t.secret), good).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": sku, "message": "SKU 'RPBF24-1941' has 0 unit(s) left to fulfill on order 77; 1 requested."})
    );
    let (_, order) = app.get(&t, "/orders/77").await;
    assert_eq!(order["fulfillments"].as_array().unwrap().len(), 1);
}

/// The seed's parameter list groups lines by fulfillment order
/// (`line_items_by_fulfillment_order`) while its example is flat: both are accepted, and a
/// request without `line_items` fulfills every unit the order has left.
#[tokio::test]
async fn grouped_form_and_omitted_line_items_follow_the_seed() {
    let app = TestApp::spawn().await;
    let t = app.tenant("adm").await;
    adm_order(&app, &t, "501", 3).await;
    adm_order(&app, &t, "502", 3).await;

    // Grouped: two entries of the same order, their lines added up per SKU.
    let (status, body) = create(
        &app,
        Some(&t.secret),
        json!({"line_items_by_fulfillment_order": [
                  {"order_id": 501, "line_items": [{"sku": "RPBF24-1941", "quantity": 1}]},
                  {"order_id": 501, "line_items": [{"sku": "RPBF24-1941", "quantity": 1}, {"sku": 12345, "quantity": 1}]}],
               "tracking_number": "1ZE356F8YW01937117"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order_id"], 501);
    assert_eq!(
        body["line_items"],
        json!([{"sku": "RPBF24-1941", "quantity": 2}, {"sku": "12345", "quantity": 1}])
    );

    // No line_items (grouped): the one unit left of order 501.
    let (status, body) = create(
        &app,
        Some(&t.secret),
        json!({"line_items_by_fulfillment_order": [{"order_id": 501}], "tracking_number": "T-501-2"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["line_items"],
        json!([{"sku": "RPBF24-1941", "quantity": 1}])
    );
    let (_, order) = app.get(&t, "/orders/501").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 3);
    assert_eq!(order["lineItems"][1]["fulfilledQuantity"], 1);

    // Nothing left: a 400 that says so, and nothing changes.
    let (status, body) = create(
        &app,
        Some(&t.secret),
        json!({"order_id": 501, "tracking_number": "T-501-3"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "Invalid SKU or Quantity", "message": "order 501 has no units left to fulfill."})
    );
    let (_, order) = app.get(&t, "/orders/501").await;
    assert_eq!(order["fulfillments"].as_array().unwrap().len(), 2);

    // No line_items (flat): every unit of every line of order 502.
    let (status, body) = create(
        &app,
        Some(&t.secret),
        json!({"order_id": 502, "tracking_number": "T-502"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["line_items"],
        json!([{"sku": "RPBF24-1941", "quantity": 3}, {"sku": "12345", "quantity": 1}])
    );

    // Unknown order in the grouped form: the seed's 404.
    let (status, body) = create(
        &app,
        Some(&t.secret),
        json!({"line_items_by_fulfillment_order": [{"order_id": 999}], "tracking_number": "T"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "Order Not Found");
}
