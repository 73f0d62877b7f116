//! Store isolation, generated from the route table: every operation of the OpenAPI document the
//! server serves (`GET /openapi.json`, built from the handlers) is called with store B's secret
//! on store A's resources, and must be refused in its dialect's format (or, for listings and
//! creations in the dialects where the key picks the store, must show B none of A's data). A's
//! orders, webhooks, automations, settings and deliveries are compared through the Store trait
//! before and after: nothing B sent changed them.
//!
//! The test fails when the document gains an operation it does not cover: Redo operations under
//! `/v2.2/stores/{storeId}` are covered generically; every other operation needs an entry in
//! [`expectation`].

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use waybill_core::OrderRef;
use waybill_server::webhooks::UrlPolicy;
use waybill_store::webhooks::WebhookFlavor;

use crate::common::{Auth, Tenant, TestApp, order_body};

/// Operations that act on no store: health and readiness.
const NOT_STORE_SCOPED: [&str; 3] = ["GET /healthz", "GET /readyz", "GET /metrics"];

/// Store A's real resources, used to fill path parameters and bodies.
struct Resources {
    a: Tenant,
    order_uuid: String,
    redo_webhook: String,
    redo_event: String,
    automation: String,
    fw_webhook: String,
    fw_event: String,
}

/// What B's request on A's resources must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Refused with this status.
    Refused(u16),
    /// Answered for B's own store (a listing, a creation): any 2xx, and the body must not name
    /// any of A's resources.
    OwnStoreOnly,
}

/// The expectation for an operation of a dialect whose store comes from the key.
fn expectation(op: &str) -> Option<Expect> {
    use Expect::*;
    Some(match op {
        "POST /adm/fulfillments/create" => Refused(404),
        // Signed with the store's own EasyPost secret, which B does not have.
        "POST /inbound/easypost/{storeId}" => Refused(401),
        "POST /open-api/v1.0/fulfillments" => Refused(404),
        "GET /open-api/v1.0/order" => OwnStoreOnly,
        "GET /open-api/v1.0/order/{orderId}" => Refused(404),
        "GET /open-api/v1.0/webhook-events" => OwnStoreOnly,
        "GET /open-api/v1.0/webhook-events/{eventId}" => Refused(404),
        "GET /open-api/v1.0/webhooks" => OwnStoreOnly,
        "POST /open-api/v1.0/webhooks" => OwnStoreOnly,
        "GET /open-api/v1.0/webhooks/{webhookId}" => Refused(404),
        "PUT /open-api/v1.0/webhooks/{webhookId}" => Refused(404),
        "DELETE /open-api/v1.0/webhooks/{webhookId}" => Refused(404),
        "GET /v1/orders" => OwnStoreOnly,
        "POST /v1/orders" => OwnStoreOnly,
        "GET /v1/orders/{sourceOrderId}" => Refused(404),
        "PUT /v1/orders/{sourceOrderId}" => Refused(404),
        "GET /v1/orders/{sourceOrderId}/fulfillments" => Refused(404),
        "POST /v1/orders/{sourceOrderId}/fulfillments" => Refused(404),
        "PUT /v1/orders/{sourceOrderId}/fulfillments/{sourceFulfillmentId}" => Refused(404),
        // A return's store is the secret's: A's return is not found with B's secret.
        "GET /v2.2/returns/{returnId}" => Refused(404),
        "GET /v2.2/returns/{returnId}/status" => Refused(404),
        "PUT /v2.2/returns/{returnId}/status" => Refused(404),
        _ => return None,
    })
}

/// A valid body for each operation that takes one (so a refusal is never a 400 in disguise).
fn body_for(op: &str, r: &Resources) -> Option<Value> {
    let path = op.split_once(' ').map_or(op, |(_, p)| p);
    let method = op.split(' ').next().unwrap_or_default();
    let redo = path.strip_prefix("/v2.2/stores/{storeId}");
    Some(match (method, redo, path) {
        ("POST", Some("/orders"), _) => order_body("b-own-order", 1),
        ("POST", Some("/orders/{orderId}/fulfillments"), _) => {
            json!({"fulfillmentId": "b-f", "lineItems": [{"id": "line-1", "quantity": 1}]})
        }
        ("POST", Some(p), _) if p.ends_with("/shipment-status") => {
            json!({"status": "delivered", "message": "by B"})
        }
        ("PUT", Some(p), _) if p.ends_with("/tracking") => {
            json!({"packages": [{"carrier": "UPS", "trackingNumber": "1Z999AA10123456784"}]})
        }
        ("PUT", Some("/settings"), _) => json!({"stalledAfterHours": 1}),
        ("POST", Some("/returns"), _) => json!({"data": {"externalOrderId": "1001",
            "items": [{"lineItemId": "line-1", "quantity": 1, "reason": "other"}]}}),
        ("PUT", _, "/v2.2/returns/{returnId}/status") => json!({"status": "rejected"}),
        ("POST" | "PUT", Some(p), _) if p.starts_with("/automations") => json!({"automation": {
            "name": "B's", "trigger": "delivered",
            "action": {"type": "email", "subject": "s", "body": "b"}}}),
        ("POST" | "PUT", Some(p), _) if p.starts_with("/webhooks") && !p.ends_with("/replay") => {
            json!({"webhook": {"callback": {"url": "http://127.0.0.1:9/b", "auth": null},
                               "topic": "order"}})
        }
        ("POST", Some(p), _) if p.ends_with("/replay") => json!({"start": "2020-01-01T00:00:00Z"}),
        ("POST", _, "/adm/fulfillments/create") => json!({"order_id": 1001,
            "line_items": [{"sku": "SKU-1", "quantity": 1}], "tracking_number": "1Z999AA10123456784"}),
        ("POST", _, "/open-api/v1.0/fulfillments") => json!({"orderId": r.order_uuid,
            "items": [{"variantId": "var-1", "quantity": 1}],
            "shippingLabel": {"trackingNumber": "1Z999AA10123456784", "trackingCompany": "UPS"}}),
        ("POST" | "PUT", _, p) if p.starts_with("/open-api/v1.0/webhooks") => {
            json!({"url": "http://127.0.0.1:9/b-fw", "allowedTypes": ["ORDER_UPDATED"]})
        }
        // A new order of B's own (its id is not one of A's).
        ("POST", _, "/v1/orders") => json!({"sourceOrderId": "b-own-op",
            "orderItems": [{"sourceItemId": "i", "quantity": 1}]}),
        ("PUT", _, "/v1/orders/{sourceOrderId}") => json!({"sourceOrderId": "1001",
            "orderItems": [{"sourceItemId": "line-1", "quantity": 5}]}),
        ("POST", _, "/v1/orders/{sourceOrderId}/fulfillments") => json!({
            "sourceFulfillmentId": "b-op-f", "fulfillmentStatus": "IN_TRANSIT",
            "sourceItemIds": [{"sourceItemId": "line-1", "quantity": 1}]}),
        ("PUT", _, "/v1/orders/{sourceOrderId}/fulfillments/{sourceFulfillmentId}") => {
            json!({"status": "DELIVERED"})
        }
        _ => return None,
    })
}

/// Fills a path template with A's resources; `store` goes in `{storeId}`.
fn fill(template: &str, r: &Resources, store: &str) -> String {
    let fw = template.starts_with("/open-api/");
    template
        .replace("{storeId}", store)
        .replace("{orderId}", if fw { &r.order_uuid } else { "1001" })
        .replace("{sourceOrderId}", "1001")
        .replace("{fulfillmentId}", "a-f1")
        .replace("{sourceFulfillmentId}", "a-f1")
        .replace("{automationId}", &r.automation)
        .replace("{returnId}", "a-r1")
        .replace(
            "{webhookId}",
            if fw { &r.fw_webhook } else { &r.redo_webhook },
        )
        .replace("{eventId}", if fw { &r.fw_event } else { &r.redo_event })
}

/// Required query parameters get a plausible value, so they cannot be why a request fails.
fn query_for(operation: &Value) -> String {
    let mut pairs = Vec::new();
    for p in operation["parameters"].as_array().into_iter().flatten() {
        if p["in"] == "query" && p["required"] == true {
            let name = p["name"].as_str().unwrap_or_default();
            let value = if name == "trackingNumber" {
                "1Z999AA10123456784"
            } else {
                "1"
            };
            pairs.push(format!("{name}={value}"));
        }
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// Everything of A's that B must not change, as the Store trait returns it.
async fn snapshot(app: &TestApp, a: &str) -> String {
    let s = &app.store;
    let order = s.get_order(a, &OrderRef::new("1001")).await.unwrap();
    let orders = s.list_orders(a, Default::default()).await.unwrap();
    let redo = s.list_webhooks(a, WebhookFlavor::Redo).await.unwrap();
    let fw = s.list_webhooks(a, WebhookFlavor::Fourthwall).await.unwrap();
    let automations = s.list_automations(a).await.unwrap();
    let settings = s.store_settings(a).await.unwrap();
    let returns = s.list_returns(a, Default::default()).await.unwrap();
    let redo_deliveries = s
        .list_webhook_deliveries(
            a,
            waybill_store::DeliveryQuery::new(WebhookFlavor::Redo, 100),
        )
        .await
        .unwrap();
    let fw_deliveries = s
        .list_webhook_deliveries(
            a,
            waybill_store::DeliveryQuery::new(WebhookFlavor::Fourthwall, 100),
        )
        .await
        .unwrap();
    format!(
        "{order:?}\n{orders:?}\n{redo:?}\n{fw:?}\n{automations:?}\n{settings:?}\n{returns:?}\n{redo_deliveries:?}\n{fw_deliveries:?}"
    )
}

/// Store A with an order `1001` (fulfillment `a-f1`), a Redo webhook with a delivery, a
/// Fourthwall webhook with an event, and an automation.
async fn store_a(app: &TestApp) -> Resources {
    let a = app.tenant("A").await;
    let (status, wh) = app
        .post(
            &a,
            "/webhooks",
            json!({"webhook": {"callback": {"url": "http://127.0.0.1:9/a", "auth": null},
                               "topic": "order"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{wh}");
    let (status, fw) = app
        .send(
            Method::POST,
            "/open-api/v1.0/webhooks",
            Auth::Basic(&a.id, &a.secret),
            Some(json!({"url": "http://127.0.0.1:9/a-fw",
                        "allowedTypes": ["ORDER_PLACED", "ORDER_UPDATED"]})),
        )
        .await;
    assert!(status.is_success(), "{fw}");
    let (status, auto) = app
        .post(
            &a,
            "/automations",
            json!({"automation": {"name": "A's", "trigger": "delivered",
                "action": {"type": "email", "subject": "s", "body": "b"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{auto}");
    let created = app.order(&a, "1001", 3).await;
    let (status, f) = app
        .post(
            &a,
            "/orders/1001/fulfillments",
            json!({"fulfillmentId": "a-f1", "lineItems": [{"id": "line-1", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{f}");
    // Turn the outbox into deliveries, as a dispatcher would.
    app.store
        .fan_out_webhook_events("isolation", 100, chrono::Utc::now())
        .await
        .unwrap();
    let redo_event = app
        .store
        .list_webhook_deliveries(
            &a.id,
            waybill_store::DeliveryQuery::new(WebhookFlavor::Redo, 1),
        )
        .await
        .unwrap()
        .first()
        .map(|d| d.event_id.clone())
        .expect("a Redo delivery for A");
    let fw_event = app
        .store
        .list_webhook_deliveries(
            &a.id,
            waybill_store::DeliveryQuery::new(WebhookFlavor::Fourthwall, 1),
        )
        .await
        .unwrap()
        .first()
        .map(|d| d.event_id.clone())
        .expect("a Fourthwall event for A");
    Resources {
        order_uuid: created["orderId"].as_str().unwrap().to_owned(),
        redo_webhook: wh["webhook"]["id"].as_str().unwrap().to_owned(),
        redo_event,
        automation: auto["automation"]["id"].as_str().unwrap().to_owned(),
        fw_webhook: fw["id"].as_str().unwrap().to_owned(),
        fw_event,
        a,
    }
}

/// Asserts a refusal is in the dialect's own error format.
fn assert_dialect_error(path: &str, status: StatusCode, body: &Value) {
    let context = format!("{path} → {status}: {body}");
    let problem = || {
        assert_eq!(body["status"], status.as_u16(), "problem JSON: {context}");
        assert!(body["title"].is_string(), "problem JSON: {context}");
    };
    if path.starts_with("/v2.2/") {
        if matches!(status.as_u16(), 400 | 401 | 404) {
            assert!(body["error"].is_string(), "{{\"error\"}}: {context}");
        } else {
            problem();
        }
    } else if path.starts_with("/inbound/") {
        problem();
    } else if path.starts_with("/adm/") {
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{context}"
        );
    } else if path.starts_with("/open-api/") {
        assert!(body["code"].is_string(), "{context}");
    } else if path.starts_with("/v1/") {
        assert_eq!(body["status"], "error", "{context}");
        assert!(body["message"].is_string(), "{context}");
    } else {
        panic!("no dialect for {context}");
    }
}

/// Asserts a body names none of A's resources.
fn assert_blind(op: &str, body: &Value, r: &Resources) {
    let text = body.to_string();
    for secret in [
        &r.a.id,
        &r.order_uuid,
        &r.redo_webhook,
        &r.redo_event,
        &r.automation,
        &r.fw_webhook,
        &r.fw_event,
        &"a-f1".to_owned(),
        &"a-r1".to_owned(),
    ] {
        assert!(
            !text.contains(secret.as_str()),
            "{op} showed B {secret}: {text}"
        );
    }
}

#[tokio::test]
async fn no_operation_lets_one_store_reach_another() {
    let app = TestApp::spawn_with(UrlPolicy::allow_all()).await;
    let r = store_a(&app).await;
    let b = app.tenant("B").await;
    let before = snapshot(&app, &r.a.id).await;

    let (status, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut in_document = BTreeSet::new();
    let mut visited = BTreeSet::new();
    let mut requests = 0;
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let Ok(http_method) = method.to_uppercase().parse::<Method>() else {
                continue; // `parameters`, `summary`…
            };
            let op = format!("{http_method} {template}");
            in_document.insert(op.clone());
            if NOT_STORE_SCOPED.contains(&op.as_str()) {
                continue;
            }
            let query = query_for(operation);
            let body = body_for(&op, &r);

            if template.starts_with("/v2.2/stores/{storeId}") {
                // 1. A's store in the path, B's secret: 403 problem JSON, whatever follows.
                let path = format!("{}{query}", fill(template, &r, &r.a.id));
                for auth in [Auth::Bearer(&b.secret), Auth::Basic(&b.id, &b.secret)] {
                    let (status, answer) = app
                        .send(http_method.clone(), &path, auth, body.clone())
                        .await;
                    requests += 1;
                    assert_eq!(status, StatusCode::FORBIDDEN, "{op}: {answer}");
                    assert_dialect_error(&path, status, &answer);
                }
                // B's secret presented as A's (Basic user A): not authenticated at all.
                let (status, answer) = app
                    .send(
                        http_method.clone(),
                        &path,
                        Auth::Basic(&r.a.id, &b.secret),
                        body.clone(),
                    )
                    .await;
                requests += 1;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{op}: {answer}");
                assert_dialect_error(&path, status, &answer);

                // 2. B's own store, A's resource ids: not found. (Operations on the store
                // itself, such as listing or creating, act on B's store: no A data shows.)
                let own = format!("{}{query}", fill(template, &r, &b.id));
                // Creating a return names A's order in its body: not found in B's store.
                let has_resource = template.matches('{').count() > 1
                    || op == "POST /v2.2/stores/{storeId}/returns";
                let (status, answer) = app
                    .send(
                        http_method.clone(),
                        &own,
                        Auth::Bearer(&b.secret),
                        body.clone(),
                    )
                    .await;
                requests += 1;
                if has_resource {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{op} on B's store: {answer}");
                    assert_dialect_error(&own, status, &answer);
                } else {
                    assert!(status.is_success(), "{op} on B's store: {status} {answer}");
                    assert_blind(&op, &answer, &r);
                }
            } else {
                let expect = expectation(&op).unwrap_or_else(|| {
                    panic!("{op} is not covered by the isolation test: add it to `expectation`")
                });
                let path = format!("{}{query}", fill(template, &r, &b.id));
                let mut auths = vec![Auth::Bearer(&b.secret)];
                if template.starts_with("/open-api/") {
                    auths.push(Auth::Basic(&b.id, &b.secret));
                }
                for auth in auths {
                    let (status, answer) = app
                        .send(http_method.clone(), &path, auth, body.clone())
                        .await;
                    requests += 1;
                    match expect {
                        Expect::Refused(code) => {
                            assert_eq!(status.as_u16(), code, "{op}: {answer}");
                            assert_dialect_error(&path, status, &answer);
                        }
                        Expect::OwnStoreOnly => {
                            assert!(status.is_success(), "{op}: {status} {answer}");
                            // (A refusal may echo the id B sent; an answer must show nothing.)
                            assert_blind(&op, &answer, &r);
                        }
                    }
                }
            }
            visited.insert(op);
        }
    }

    let expected: BTreeSet<String> = in_document
        .iter()
        .filter(|op| !NOT_STORE_SCOPED.contains(&op.as_str()))
        .cloned()
        .collect();
    assert_eq!(
        visited, expected,
        "every store-scoped operation was visited"
    );
    assert!(visited.len() >= 40, "only {} operations", visited.len());
    assert!(requests > visited.len(), "{requests} requests");
    assert_eq!(
        snapshot(&app, &r.a.id).await,
        before,
        "B's requests changed store A's data"
    );
}
