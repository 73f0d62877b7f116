//! The loose ends of returns through the Redo API: "email the merchant when a return is
//! received" (a real SMTP receiver on loopback, exactly one mail per return however often the
//! status comes), a webhook action on a return's status, bad triggers refused; a fulfillment
//! whose units are in a return cannot be cancelled; a tracking number that fails its carrier's
//! check digit is reported, never refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use waybill_server::automations;

use crate::automations::{SmtpReceiver, config};
use crate::common::*;
use crate::webhooks::{Answer, Receiver, loopback_app, start_dispatcher, test_config};

/// An order of 4 units of `line-1` with a fulfillment `<order>-f` of 2.
async fn fulfilled(app: &TestApp, t: &Tenant, order: &str) {
    app.order(t, order, 4).await;
    let (status, body) = app
        .post(
            t,
            &format!("/orders/{order}/fulfillments"),
            json!({"fulfillmentId": format!("{order}-f"), "lineItems": [{"id": "line-1", "quantity": 2}],
                   "tracking": {"carrier": "FedEx", "code": "123456789012"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn new_return(app: &TestApp, t: &Tenant, order: &str, id: &str, tracking: &str) -> Value {
    let (status, created) = app
        .post(
            t,
            "/returns",
            json!({"data": {"externalOrderId": order, "returnId": id,
                            "items": [{"lineItemId": "line-1", "quantity": 1, "reason": "damaged"}],
                            "label": {"trackingNumber": tracking}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created
}

async fn put_status(app: &TestApp, t: &Tenant, id: &str, body: Value) {
    let resp = app
        .client
        .put(format!("{}/v2.2/returns/{id}/status", app.base))
        .bearer_auth(&t.secret)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{body}");
}

async fn runs(app: &TestApp, t: &Tenant, automation_id: &str) -> Vec<Value> {
    let (status, body) = app
        .get(t, &format!("/automations/{automation_id}/runs"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["runs"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_merchant_is_mailed_once_when_a_return_is_received() {
    let app = TestApp::spawn().await;
    let t = app.tenant("return-mail").await;
    let smtp = SmtpReceiver::start(0).await;
    let (status, created) = app
        .post(
            &t,
            "/automations",
            json!({"automation": {
                "name": "tell the merchant",
                "trigger": "return.received",
                "action": {"type": "email", "to": "merchant@shop.example",
                           "subject": "Return {{ return.id }} of order {{ order.id }}: {{ return.status }}",
                           "body": "<p>{% for l in return.lines %}{{ l.quantity }} x {{ l.title }} ({{ l.reason }}){% endfor %}, parcel {{ tracking_number }}</p>"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let rule = created["automation"].clone();
    assert_eq!(rule["trigger"], "return.received");

    fulfilled(&app, &t, "RM-1").await;
    new_return(&app, &t, "RM-1", "RM-1-r", "1Z999AA10123456784").await;
    // Not received yet: nothing to run.
    put_status(&app, &t, "RM-1-r", json!({"shipmentStatus": "in_transit"})).await;
    assert!(
        runs(&app, &t, rule["id"].as_str().unwrap())
            .await
            .is_empty()
    );
    // Received by the carrier's delivery, then said again by the merchant.
    put_status(&app, &t, "RM-1-r", json!({"shipmentStatus": "delivered"})).await;
    put_status(&app, &t, "RM-1-r", json!({"status": "delivered"})).await;

    let cfg = config(Some(&smtp));
    assert_eq!(
        automations::run_due(app.store.as_ref(), &cfg)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        automations::run_due(app.store.as_ref(), &cfg)
            .await
            .unwrap(),
        0
    );
    let mails = smtp.all();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, vec!["<merchant@shop.example>".to_owned()]);
    assert!(
        mails[0]
            .data
            .contains("Subject: Return RM-1-r of order RM-1: received"),
        "{}",
        mails[0].data
    );
    let body = mails[0].data.replace("=\r\n", "");
    assert!(
        body.contains("1 x ") && body.contains("(damaged)") && body.contains("1Z999AA10123456784"),
        "{body}"
    );
    let list = runs(&app, &t, rule["id"].as_str().unwrap()).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["returnId"], "RM-1-r");
    assert_eq!(list[0]["fulfillmentId"], Value::Null);
    assert_eq!(list[0]["trigger"], "return.received");
    assert_eq!(list[0]["status"], "succeeded");
    assert_eq!(list[0]["detail"], "mailed merchant@shop.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_action_reports_a_rejected_return() {
    let app = loopback_app().await;
    let t = app.tenant("return-hook").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    let (status, created) = app
        .post(
            &t,
            "/automations",
            json!({"automation": {
                "name": "rejections",
                "trigger": "return.rejected",
                "action": {"type": "webhook", "url": receiver.url,
                           "body": "{\"return\": {{ return.id }}, \"status\": {{ return.status }}, \"reason\": {{ return.lines[0].reason }}, \"fulfillment\": {{ fulfillment.id }}}"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    fulfilled(&app, &t, "RW-1").await;
    new_return(&app, &t, "RW-1", "RW-1-r", "1Z999AA10123456784").await;
    put_status(&app, &t, "RW-1-r", json!({"status": "rejected"})).await;
    let cfg = config(None);
    assert_eq!(
        automations::run_due(app.store.as_ref(), &cfg)
            .await
            .unwrap(),
        1
    );
    let dispatcher = start_dispatcher(app.store.clone(), test_config());
    receiver
        .wait_for("the automation's webhook", Duration::from_secs(20), |r| {
            r.iter().any(|r| r.ok)
        })
        .await;
    dispatcher.abort();
    let got = receiver.all();
    let body = got.iter().find(|r| r.ok).unwrap().json();
    assert_eq!(
        body,
        json!({"return": "RW-1-r", "status": "rejected", "reason": "damaged", "fulfillment": null})
    );
}

#[tokio::test]
async fn bad_return_triggers_are_refused() {
    let app = TestApp::spawn().await;
    let t = app.tenant("return-bad").await;
    for trigger in [
        "return.",
        "return.delivered",
        "return.open",
        "returned",
        "RETURN.received",
    ] {
        let (status, body) = app
            .post(
                &t,
                "/automations",
                json!({"automation": {"name": "x", "trigger": trigger,
                       "action": {"type": "email", "subject": "x", "body": "x"}}}),
            )
            .await;
        let message = assert_error(status, &body, StatusCode::BAD_REQUEST);
        assert!(message.contains("return.received"), "{trigger}: {message}");
    }
    let (_, list) = app.get(&t, "/automations").await;
    assert_eq!(list["automations"], json!([]));
}

#[tokio::test]
async fn a_fulfillment_whose_units_are_in_a_return_is_not_cancelled() {
    let app = TestApp::spawn().await;
    let t = app.tenant("return-cancel").await;
    fulfilled(&app, &t, "RC-1").await;
    new_return(&app, &t, "RC-1", "RC-1-r", "1Z999AA10123456784").await;
    let (_, before) = app.get(&t, "/orders/RC-1").await;
    let (status, body) = app
        .post(&t, "/orders/RC-1/fulfillments/RC-1-f/cancel", json!({}))
        .await;
    let message = assert_error(status, &body, StatusCode::CONFLICT);
    assert!(
        message.contains("cannot be cancelled") && message.contains("in returns"),
        "{message}"
    );
    let (status, body) = app
        .post(
            &t,
            "/orders/RC-1/fulfillments/RC-1-f/shipment-status",
            json!({"status": "cancelled"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (_, after) = app.get(&t, "/orders/RC-1").await;
    assert_eq!(after, before, "nothing changed");
    assert_eq!(after["fulfillments"][0]["status"], "pre_transit", "{after}");
    // Rejected, the return no longer holds the fulfillment back.
    put_status(&app, &t, "RC-1-r", json!({"status": "rejected"})).await;
    let (status, body) = app
        .post(&t, "/orders/RC-1/fulfillments/RC-1-f/cancel", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_failing_check_digit_is_reported_and_never_refused() {
    let app = TestApp::spawn().await;
    let t = app.tenant("return-digit").await;
    fulfilled(&app, &t, "RD-1").await;
    // UPS's published sample with its last (check) digit changed.
    let created = new_return(&app, &t, "RD-1", "RD-1-r", "1Z999AA10123456785").await;
    assert_eq!(created["return"]["id"], "RD-1-r");
    let warnings = created["carrierWarnings"].as_array().expect("a warning");
    assert_eq!(warnings.len(), 1, "{created}");
    assert_eq!(warnings[0]["trackingNumber"], "1Z999AA10123456785");
    assert_eq!(warnings[0]["looksLike"][0]["carrier"], "UPS");
    assert_eq!(warnings[0]["looksLike"][0]["expected"], "4");
    assert_eq!(warnings[0]["looksLike"][0]["found"], "5");
    assert!(
        warnings[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("looks like a UPS number")),
        "{created}"
    );
    // No carrier is made up from a failing number.
    assert_eq!(
        created["return"]["shipment"]["carrier"],
        Value::Null,
        "{created}"
    );
    // A good number has no warning at all.
    let good = new_return(&app, &t, "RD-1", "RD-1-s", "1Z999AA10123456784").await;
    assert!(good.get("carrierWarnings").is_none(), "{good}");
    // Detection says the same.
    let (status, body) = app
        .get(&t, "/carriers/detect?trackingNumber=1Z999AA10123456785")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["checkDigitMismatch"]["looksLike"][0]["carrierCode"],
        "ups"
    );
    let (_, body) = app
        .get(&t, "/carriers/detect?trackingNumber=1Z999AA10123456784")
        .await;
    assert!(body.get("checkDigitMismatch").is_none(), "{body}");
}
