//! Regressions of what Schemathesis (`scripts/schemathesis`) found against the OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, TestApp, assert_error};

/// A body that is not a JSON object is refused, even when its array form would match a
/// struct's fields in order (`[null, null]` used to pass as a settings change).
#[tokio::test]
async fn bodies_must_be_json_objects() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    for body in [json!([null, null]), json!([72, null]), json!("x"), json!(7)] {
        let (status, answer) = app
            .send(
                Method::PUT,
                &t.path("/settings"),
                Auth::Bearer(&t.secret),
                Some(body.clone()),
            )
            .await;
        let message = assert_error(status, &answer, StatusCode::BAD_REQUEST);
        assert!(message.contains("JSON object"), "{body}: {message}");
    }
    let (status, answer) = app
        .send(
            Method::POST,
            "/v1/orders",
            Auth::Bearer(&t.secret),
            Some(json!([{"sourceOrderId": 1}])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["status"], "error");
}

/// Fourthwall's `page` and `size` are documented as 32-bit integers; larger ones are refused.
#[tokio::test]
async fn fourthwall_paging_stays_within_the_documented_range() {
    let app = TestApp::spawn().await;
    let t = app.tenant("shop").await;
    let get = |query: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            app.send(
                Method::GET,
                &format!("/open-api/v1.0/order?{query}"),
                Auth::Basic(&t.id, &t.secret),
                None,
            )
            .await
        }
    };
    let (status, body) = get("page=2147483648").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "INVALID_REQUEST");
    let (status, body) = get("page=2147483647").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"], Value::Array(vec![]));
}

/// Schema names are unique in the document: Fourthwall's and OrderProtection's request bodies
/// and Redo's and Fourthwall's order lists used to share names, so one dialect's operations
/// were documented with the other's shapes.
#[tokio::test]
async fn each_operation_is_documented_with_its_own_shapes() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let schema_of = |path: &str, method: &str, pointer: &str| {
        doc["paths"][path][method]
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let body = "/requestBody/content/application~1json/schema/$ref";
    let ok = "/responses/200/content/application~1json/schema/$ref";
    let fw = schema_of("/open-api/v1.0/fulfillments", "post", body);
    let op = schema_of("/v1/orders/{sourceOrderId}/fulfillments", "post", body);
    assert_ne!(fw, op);
    let fw_schema = &doc["components"]["schemas"][&fw];
    assert!(
        fw_schema["properties"]["shippingLabel"].is_object(),
        "{fw_schema}"
    );
    let op_schema = &doc["components"]["schemas"][&op];
    // Its object comes first in an allOf that adds the trackingUrl/trackingNumber rule.
    assert!(
        op_schema["allOf"][0]["properties"]["fulfillmentStatus"].is_object(),
        "{op_schema}"
    );

    let redo = schema_of("/v2.2/stores/{storeId}/orders", "get", ok);
    let fourthwall = schema_of("/open-api/v1.0/order", "get", ok);
    assert_ne!(redo, fourthwall);
    assert!(doc["components"]["schemas"][&redo]["properties"]["orders"].is_object());
    assert!(doc["components"]["schemas"][&fourthwall]["properties"]["results"].is_object());
}
