use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::*;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");

/// The committed `openapi.json` is the generated document. Regenerate it with
/// `WAYBILL_UPDATE_OPENAPI=1 cargo test -p waybill-server --test api openapi`.
#[test]
fn committed_openapi_json_is_current() {
    let generated = waybill_server::openapi::document_json();
    if std::env::var_os("WAYBILL_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json is stale: run WAYBILL_UPDATE_OPENAPI=1 cargo test -p waybill-server --test api openapi"
    );
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_and_covers_every_dialect() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let generated: Value = serde_json::from_str(&waybill_server::openapi::document_json()).unwrap();
    assert_eq!(doc, generated);
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v2.2/stores/{storeId}/orders", "post"),
        ("/v2.2/stores/{storeId}/orders/{orderId}", "get"),
        ("/v2.2/stores/{storeId}/orders/{orderId}", "delete"),
        (
            "/v2.2/stores/{storeId}/orders/{orderId}/fulfillments",
            "post",
        ),
        (
            "/v2.2/stores/{storeId}/orders/{orderId}/fulfillments/{fulfillmentId}/shipment-status",
            "post",
        ),
        ("/adm/fulfillments/create", "post"),
        ("/open-api/v1.0/fulfillments", "post"),
        ("/open-api/v1.0/order", "get"),
        ("/open-api/v1.0/order/{orderId}", "get"),
        ("/v1/orders", "post"),
        ("/v1/orders", "get"),
        ("/v1/orders/{sourceOrderId}", "get"),
        ("/v1/orders/{sourceOrderId}", "put"),
        ("/v1/orders/{sourceOrderId}/fulfillments", "post"),
        ("/v1/orders/{sourceOrderId}/fulfillments", "get"),
        (
            "/v1/orders/{sourceOrderId}/fulfillments/{sourceFulfillmentId}",
            "put",
        ),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["basic"]["scheme"], "basic");
}
