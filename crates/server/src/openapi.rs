//! The OpenAPI 3.1 document of every dialect, generated from the handlers' annotations and
//! served at `/openapi.json`. The committed `openapi.json` at the repository root is checked
//! against it by the test suite, so the two cannot drift.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::dialects::redo::webhooks as redo_webhooks;
use crate::dialects::{adm, fourthwall, fourthwall_webhooks, orderprotection, redo};
use crate::{health, inbound, metrics, problem};

/// `{"error": "<sentence>"}`: Redo's order-endpoint error.
#[derive(Serialize, ToSchema)]
pub struct RedoErrorBody {
    pub error: String,
}

/// `{"error": <title>, "message": <sentence>}`: ADM's error.
#[derive(Serialize, ToSchema)]
pub struct AdmErrorBody {
    pub error: String,
    pub message: String,
}

/// `{"code": <CODE>, ...context}`: Fourthwall's error. The context fields depend on the code.
#[derive(Serialize, ToSchema)]
pub struct FourthwallErrorBody {
    pub code: String,
}

/// `{"status": "ok"}` or `{"status": "error", "message": <sentence>}`: OrderProtection's answers.
#[derive(Serialize, ToSchema)]
pub struct StatusBody {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Waybill",
        description = "Self-hosted fulfillment and shipment tracking. One ledger, several vendors' APIs: Redo (/v2.2), ADM Order Connector (/adm), Fourthwall (/open-api/v1.0) and OrderProtection (/v1)."
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::serve,
        inbound::easypost,
        redo::create_order,
        redo::get_order,
        redo::delete_order,
        redo::create_fulfillment,
        redo::update_shipment_status,
        redo::returns::create_return,
        redo::returns::list_returns,
        redo::returns::get_return,
        redo::returns::get_return_status,
        redo::returns::update_return_status,
        redo::lifecycle::list_orders,
        redo::lifecycle::list_fulfillments,
        redo::lifecycle::get_fulfillment,
        redo::lifecycle::cancel_fulfillment,
        redo::lifecycle::update_tracking,
        redo::lifecycle::get_settings,
        redo::lifecycle::update_settings,
        redo::lifecycle::detect_carrier,
        redo::automations::list_automations,
        redo::automations::create_automation,
        redo::automations::get_automation,
        redo::automations::update_automation,
        redo::automations::delete_automation,
        redo::automations::list_runs,
        redo_webhooks::list_webhooks,
        redo_webhooks::create_webhook,
        redo_webhooks::get_webhook,
        redo_webhooks::update_webhook,
        redo_webhooks::delete_webhook,
        redo_webhooks::replay_webhook,
        redo_webhooks::rotate_secret,
        redo_webhooks::list_deliveries,
        redo_webhooks::list_events,
        redo_webhooks::redeliver,
        adm::create_fulfillment,
        fourthwall::create_fulfillment,
        fourthwall::list_orders,
        fourthwall::get_order,
        fourthwall_webhooks::list_webhooks,
        fourthwall_webhooks::create_webhook,
        fourthwall_webhooks::get_webhook,
        fourthwall_webhooks::update_webhook,
        fourthwall_webhooks::delete_webhook,
        fourthwall_webhooks::list_events,
        fourthwall_webhooks::get_event,
        orderprotection::create_order,
        orderprotection::list_orders,
        orderprotection::get_order,
        orderprotection::update_order,
        orderprotection::create_fulfillment,
        orderprotection::list_fulfillments,
        orderprotection::update_fulfillment_status,
    ),
    components(schemas(
        problem::Problem,
        crate::webhooks::catalog::RedoEvent,
        crate::webhooks::catalog::RedoReturnEvent,
        crate::webhooks::catalog::FourthwallOrderPlaced,
        crate::webhooks::catalog::FourthwallOrderUpdated,
    )),
    modifiers(&Security),
    tags(
        (name = "Redo", description = "Redo API 2.2 orders and fulfillments"),
        (name = "ADM", description = "ADM Order Connector"),
        (name = "Redo webhooks", description = "Webhook subscriptions in Redo's shape, signed the Standard Webhooks way"),
        (name = "Fourthwall", description = "Fourthwall Open API v1.0"),
        (name = "Fourthwall webhooks", description = "Webhook configurations in Fourthwall's shape, signed with X-Fourthwall-Hmac-SHA256"),
        (name = "OrderProtection", description = "OrderProtection API v1"),
        (name = "Operations", description = "Health, readiness and metrics"),
        (name = "Inbound", description = "Carrier tracking updates pushed to Waybill (EasyPost tracker webhooks)"),
    )
)]
pub struct ApiDoc;

/// The document, with the OpenAPI 3.1 `webhooks` (which utoipa does not model): every event
/// type of [`crate::webhooks::catalog`], its body's schema and an example.
pub fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let mut webhooks = serde_json::Map::new();
    for event in crate::webhooks::catalog::event_types() {
        let tag = if event.schema.starts_with("Redo") {
            "Redo webhooks"
        } else {
            "Fourthwall webhooks"
        };
        webhooks.insert(
            event.name.to_owned(),
            serde_json::json!({
                "post": {
                    "tags": [tag],
                    "summary": event.summary,
                    "description": format!("Sent to subscriptions selected by {}.", event.selected_by),
                    "operationId": format!("webhook-{}", event.name.replace('.', "-").to_lowercase()),
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {
                            "schema": {"$ref": format!("#/components/schemas/{}", event.schema)},
                            "example": event.example,
                        }},
                    },
                    "responses": {
                        "2XX": {"description": "Received. Redo subscriptions: any 2xx; Fourthwall: 200. Anything else is retried."},
                    },
                },
            }),
        );
    }
    if let Some(object) = document.as_object_mut() {
        object.insert("webhooks".to_owned(), serde_json::Value::Object(webhooks));
    }
    // A rule the derive cannot state: a return's status update names `status`, or
    // `shipmentStatus`, or both (`dialects::redo::returns::UpdateReturnStatusRequest`).
    if let Some(schema) = document
        .pointer_mut("/components/schemas/UpdateReturnStatusRequest")
        .and_then(serde_json::Value::as_object_mut)
    {
        schema.insert(
            "anyOf".to_owned(),
            serde_json::json!([{"required": ["status"]}, {"required": ["shipmentStatus"]}]),
        );
    }
    // Another: an exception reason goes only with `failure`, `return_to_sender` or the `delayed`
    // event (`waybill_core::reason`); with any other status it is absent or null.
    if let Some(schema) = document
        .pointer_mut("/components/schemas/UpdateStatusRequest")
        .and_then(serde_json::Value::as_object_mut)
    {
        schema.insert(
            "anyOf".to_owned(),
            serde_json::json!([
                {"properties": {"reason": {"type": "null"}}},
                {"properties": {"status": {"enum": ["failure", "return_to_sender", "delayed"]}}},
            ]),
        );
    }
    document
}

/// The document as the committed `openapi.json` holds it.
pub fn document_json() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

pub async fn serve() -> Json<serde_json::Value> {
    Json(document())
}
