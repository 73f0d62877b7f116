use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

/// One order, one ledger: fulfilled partly through each dialect, the unit that would exceed the
/// ordered quantity is refused whichever dialect asks.
#[tokio::test]
async fn every_dialect_shares_one_ledger() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let (status, created) = app
        .post(&t, "/orders", json!({
            "orderId": "900", "createdAt": "2024-03-20T12:00:00Z",
            "lineItems": [{"id": "L", "productId": "p", "title": "Box", "sku": "BOX", "variantId": "v-box", "quantity": 4}]
        }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let order_id = created["orderId"].as_str().unwrap().to_owned();

    let adm = json!({"order_id": 900, "line_items": [{"sku": "BOX", "quantity": 1}], "tracking_number": "ADM1"});
    let fw = |n: &str| {
        json!({"orderId": order_id, "items": [{"variantId": "v-box", "quantity": 1}],
                               "shippingLabel": {"trackingNumber": n, "trackingCompany": "UPS"}})
    };
    let op = |id: &str| {
        json!({"sourceFulfillmentId": id, "fulfillmentStatus": "FULFILLED",
                                "sourceItemIds": [{"sourceItemId": "L", "quantity": 1}]})
    };
    let redo = json!({"lineItems": [{"id": "L", "quantity": 1}]});
    let bearer = Auth::Bearer(&t.secret);

    let (s, b) = app
        .send(
            Method::POST,
            "/adm/fulfillments/create",
            Auth::Bearer(&t.secret),
            Some(adm.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .send(
            Method::POST,
            "/open-api/v1.0/fulfillments",
            Auth::Basic(&t.id, &t.secret),
            Some(fw("FW1")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .send(
            Method::POST,
            "/v1/orders/900/fulfillments",
            Auth::Bearer(&t.secret),
            Some(op("op-1")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app.post(&t, "/orders/900/fulfillments", redo.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // All four units are gone: each dialect refuses the fifth in its own format.
    let (s, b) = app
        .send(Method::POST, "/adm/fulfillments/create", bearer, Some(adm))
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid SKU or Quantity"))
    );
    assert!(
        b["message"]
            .as_str()
            .is_some_and(|m| m.contains("0 unit(s) left")),
        "{b}"
    );
    let (s, b) = app
        .send(
            Method::POST,
            "/open-api/v1.0/fulfillments",
            Auth::Basic(&t.id, &t.secret),
            Some(fw("FW2")),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["code"], "FULFILLMENT_VARIANT_QUANTITY_TO_HIGH");
    assert_eq!(b["fulfillable"], 0);
    let (s, b) = app
        .send(
            Method::POST,
            "/v1/orders/900/fulfillments",
            Auth::Bearer(&t.secret),
            Some(op("op-2")),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::BAD_REQUEST, Some("error"))
    );
    let (s, b) = app.post(&t, "/orders/900/fulfillments", redo).await;
    let message = assert_error(s, &b, StatusCode::BAD_REQUEST);
    assert!(message.contains("0 unit(s) left"));

    let (_, order) = app.get(&t, "/orders/900").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 4);
    assert_eq!(order["fulfillments"].as_array().unwrap().len(), 4);
}

/// A retry of a fulfillment that was created is answered as a duplicate in every dialect that
/// has fulfillment ids, even once its own units have used the line up: the duplicate check
/// comes before the ledger's.
#[tokio::test]
async fn a_retry_is_a_duplicate_before_it_is_over_fulfillment() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let (status, created) = app
        .post(&t, "/orders", json!({
            "orderId": "910", "createdAt": "2024-03-20T12:00:00Z",
            "lineItems": [{"id": "L", "productId": "p", "title": "Box", "variantId": "v-box", "quantity": 2}]
        }))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let order_id = created["orderId"].as_str().unwrap().to_owned();

    // Redo: the whole line in one fulfillment, then the same request again: 409 (the seeds'
    // `default`, problem details), not 400 "0 unit(s) left".
    let redo = json!({"fulfillmentId": "ful-910", "lineItems": [{"id": "L", "quantity": 2}]});
    let (s, b) = app.post(&t, "/orders/910/fulfillments", redo.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app.post(&t, "/orders/910/fulfillments", redo).await;
    let message = assert_error(s, &b, StatusCode::CONFLICT);
    assert!(message.contains("ful-910"), "{message}");

    // Fourthwall: the line is used up again after a cancellation and a new label; the same
    // submission repeated, with the carrier spelled differently, is FULFILLMENT_ALREADY_EXISTS.
    let (s, b) = app
        .post(&t, "/orders/910/fulfillments/ful-910/cancel", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let basic = || Auth::Basic(&t.id, &t.secret);
    let fw = |carrier: &str| {
        json!({"orderId": order_id, "items": [{"variantId": "v-box", "quantity": 2}],
               "shippingLabel": {"trackingNumber": "1Z999AA10123456784", "trackingCompany": carrier}})
    };
    let (s, b) = app
        .send(
            Method::POST,
            "/open-api/v1.0/fulfillments",
            basic(),
            Some(fw("UPS")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let first = b["fulfillmentId"].as_str().unwrap().to_owned();
    for carrier in ["UPS", "ups", "United Parcel Service"] {
        let (s, b) = app
            .send(
                Method::POST,
                "/open-api/v1.0/fulfillments",
                basic(),
                Some(fw(carrier)),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{carrier}: {b}");
        assert_eq!(
            b,
            json!({"code": "FULFILLMENT_ALREADY_EXISTS", "fulfillmentId": first, "orderId": order_id}),
            "{carrier}"
        );
    }
    let (_, order) = app.get(&t, "/orders/910").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 2);
    assert_eq!(order["fulfillments"].as_array().unwrap().len(), 2);
}
