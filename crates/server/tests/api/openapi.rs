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

const API_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API.md");
const START: &str = "<!-- webhook-events:start -->\n";
const END: &str = "<!-- webhook-events:end -->";

/// docs/API.md's event catalogue is the generated one (regenerated with openapi.json).
#[test]
fn api_md_lists_every_webhook_event_with_its_example() {
    let generated = waybill_server::webhooks::catalog::markdown();
    let text = std::fs::read_to_string(API_MD).expect("docs/API.md");
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        panic!("docs/API.md lacks the webhook-events markers");
    };
    let start = start + START.len();
    if std::env::var_os("WAYBILL_UPDATE_OPENAPI").is_some() && text[start..end] != generated {
        let updated = format!("{}{generated}{}", &text[..start], &text[end..]);
        std::fs::write(API_MD, updated).expect("write docs/API.md");
        return;
    }
    assert!(
        text[start..end] == generated,
        "docs/API.md's event types are stale: run WAYBILL_UPDATE_OPENAPI=1 cargo test -p waybill-server --test api openapi"
    );
}

/// Every event type is under `webhooks`, and its example is valid by its own schema.
#[test]
fn every_webhook_event_has_a_schema_and_a_valid_example() {
    let doc = waybill_server::openapi::document();
    let webhooks = doc["webhooks"].as_object().expect("webhooks");
    let names: Vec<&str> = webhooks.keys().map(String::as_str).collect();
    for name in [
        "order.created",
        "order.updated",
        "order.deleted",
        "fulfillment.created",
        "fulfillment.updated",
        "fulfillment.event",
        "ORDER_PLACED",
        "ORDER_UPDATED",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for (name, item) in webhooks {
        let content = &item["post"]["requestBody"]["content"]["application/json"];
        let example = &content["example"];
        assert_eq!(example["type"], name.as_str(), "{name}");
        assert!(
            webhook_body_is_valid(&doc, name, example),
            "{name}: its example does not match its schema"
        );
        // And the schema is not vacuous: a body without its order is refused.
        let mut broken = example.clone();
        if let Some(o) = broken.as_object_mut() {
            o.remove("order");
            o.remove("data");
        }
        assert!(!webhook_body_is_valid(&doc, name, &broken), "{name}");
    }
}

/// Whether `body` is valid by the schema the document gives webhook event `name`.
pub(crate) fn webhook_body_is_valid(doc: &Value, name: &str, body: &Value) -> bool {
    let schema =
        &doc["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "no schema for webhook {name}");
    let root = serde_json::json!({"components": doc["components"], "allOf": [schema]});
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .expect("the document's schema compiles")
        .is_valid(body)
}
