//! Exception reasons over HTTP: `reason` on Redo's shipment-status update is accepted on
//! `failure`, `return_to_sender` and `delayed`, refused (400 `{"error"}`, nothing changed)
//! elsewhere or outside the vocabulary, and shown on the history and the fulfillment; EasyPost
//! `status_detail` values become reasons.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

async fn fulfilled(app: &TestApp, t: &Tenant, order: &str, tracking: &str) -> String {
    app.order(t, order, 2).await;
    let (status, body) = app
        .post(
            t,
            &format!("/orders/{order}/fulfillments"),
            json!({"fulfillmentId": format!("{order}-f"), "lineItems": [{"id": "line-1", "quantity": 1}],
                   "tracking": {"carrier": "USPS", "code": tracking}, "useDummyTracking": true,
                   "initialTracking": {"status": "in_transit", "datetime": "2024-03-18T09:00:00Z"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    format!("/orders/{order}/fulfillments/{order}-f")
}

#[tokio::test]
async fn a_reason_is_accepted_where_allowed_refused_elsewhere_and_shown() {
    let app = TestApp::spawn().await;
    let t = app.tenant("reasons").await;
    let f = fulfilled(&app, &t, "R-1", "9400100000000000000001").await;
    let status_path = format!("{f}/shipment-status");

    let (status, body) = app
        .post(
            &t,
            &status_path,
            json!({"status": "delayed", "reason": "weather", "datetime": "2024-03-19T09:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_fulfillment_schema(&body);
    let history = body["fulfillment"]["trackingHistory"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["reason"], "weather");
    assert!(
        history[0].get("reason").is_none(),
        "no reason where none was given"
    );
    assert_eq!(body["fulfillment"]["exceptionReason"], "weather");

    let (_, before) = app.get(&t, &f).await;
    for (request, expected) in [
        (
            json!({"status": "in_transit", "reason": "lost"}),
            "only allowed with status failure or return_to_sender or the delayed event",
        ),
        (
            json!({"status": "failure", "reason": "stolen"}),
            "'stolen' is not an exception reason",
        ),
        (json!({"status": "failure", "reason": 7}), "reason"),
        (
            json!({"status": "arriving_early", "reason": "weather"}),
            "not with 'arriving_early'",
        ),
    ] {
        let (status, body) = app.post(&t, &status_path, request.clone()).await;
        let message = assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert!(
            message.contains(expected),
            "expected '{expected}' in '{message}' for {request}"
        );
    }
    let (_, after) = app.get(&t, &f).await;
    assert_eq!(before, after, "refused updates change nothing");

    let (status, body) = app
        .post(
            &t,
            &status_path,
            json!({"status": "failure", "reason": "address_issue",
                   "message": "Addressee unknown", "datetime": "2024-03-20T09:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, order) = app.get(&t, "/orders/R-1").await;
    let shown = &order["fulfillments"][0];
    assert_eq!(shown["status"], "failure");
    assert_eq!(shown["exceptionReason"], "address_issue");
    let reasons: Vec<(&str, Option<&str>)> = shown["trackingHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["status"].as_str().unwrap(), h["reason"].as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("in_transit", None),
            ("delayed", Some("weather")),
            ("failure", Some("address_issue")),
        ]
    );
}

fn tracker(code: &str, details: &[(&str, &str, Option<&str>)]) -> Value {
    json!({
        "id": "evt_r",
        "object": "Event",
        "description": "tracker.updated",
        "result": {
            "id": "trk_r",
            "object": "Tracker",
            "tracking_code": code,
            "carrier": "USPS",
            "status": details.last().map(|d| d.0).unwrap_or("unknown"),
            "tracking_details": details.iter().map(|(status, at, detail)| json!({
                "object": "TrackingDetail", "status": status, "datetime": at,
                "message": format!("{status} scan"), "status_detail": detail,
            })).collect::<Vec<_>>()
        }
    })
}

async fn post_easypost(app: &TestApp, t: &Tenant, event: &Value) -> (StatusCode, Value) {
    let body = serde_json::to_vec(event).unwrap();
    let resp = app
        .client
        .post(format!("{}/inbound/easypost/{}", app.base, t.id))
        .header("content-type", "application/json")
        .header(
            "x-hmac-signature",
            waybill_server::inbound::easypost_signature("ep-secret", &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn easypost_status_details_become_reasons() {
    let app = TestApp::spawn().await;
    let t = app.tenant("ep-reasons").await;
    let (status, _) = app
        .call(
            Method::PUT,
            &t.path("/settings"),
            Some(&t.secret),
            Some(json!({"easypostWebhookSecret": "ep-secret"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let code = "9400100000000000000002";
    let f = fulfilled(&app, &t, "R-2", code).await;

    // A weather delay reported with in_transit, then a failed delivery for the address.
    let event = tracker(
        code,
        &[
            ("in_transit", "2024-03-19T09:00:00Z", Some("weather_delay")),
            ("failure", "2024-03-21T09:00:00Z", Some("address_not_found")),
        ],
    );
    for _ in 0..2 {
        let (status, body) = post_easypost(&app, &t, &event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["shipmentStatus"], "failure");
    }
    let (_, got) = app.get(&t, &f).await;
    let shown = &got["fulfillment"];
    let reasons: Vec<(&str, Option<&str>)> = shown["trackingHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["status"].as_str().unwrap(), h["reason"].as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("in_transit", None),
            ("in_transit", None),
            ("delayed", Some("weather")),
            ("failure", Some("address_issue")),
        ],
        "the replay recorded nothing more"
    );
    assert_eq!(shown["exceptionReason"], "address_issue");

    // A return to sender with a detail outside the mapping is `other`.
    let event = tracker(
        code,
        &[(
            "return_to_sender",
            "2024-03-22T09:00:00Z",
            Some("something_new"),
        )],
    );
    let (status, body) = post_easypost(&app, &t, &event).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, got) = app.get(&t, &f).await;
    assert_eq!(got["fulfillment"]["exceptionReason"], "other");
}
