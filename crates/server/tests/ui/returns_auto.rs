//! The dashboard's part of the loose ends of returns, over plain HTTP: the automation form
//! offers and saves a return trigger, and the tracking edit shows a warning (never a refusal)
//! for a number that looks like a carrier's but fails its check digit.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{App, TRACKING, csrf_in};

/// UPS's sample number with a wrong check digit.
const BAD_DIGIT: &str = "1Z999AA10123456785";

async fn shop(app: &App) -> (String, String) {
    let (record, key) = app.store.create_store("Returns shop").await.expect("store");
    let base = format!("/v2.2/stores/{}/orders", record.id);
    app.api(
        &key.secret,
        &base,
        json!({"orderId": "A", "createdAt": "2024-03-20T12:00:00Z",
               "lineItems": [{"id": "line-1", "productId": "p", "sku": "TEE", "title": "T-shirt", "quantity": 2}]}),
    )
    .await;
    app.api(
        &key.secret,
        &format!("{base}/A/fulfillments"),
        json!({"fulfillmentId": "fa", "lineItems": [{"id": "line-1", "quantity": 1}],
               "tracking": {"carrier": "UPS", "code": TRACKING}}),
    )
    .await;
    (record.id, key.secret)
}

#[tokio::test]
async fn a_failing_check_digit_is_a_warning_in_the_tracking_edit() {
    let app = App::spawn().await;
    let (store_id, secret) = shop(&app).await;
    let session = app.sign_in(&secret).await;
    let page = "/ui/orders/A/fulfillments/fa";
    let (status, html) = app.page(&session, page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("class=\"warning\""), "a good number: {html}");
    let csrf = csrf_in(&html).expect("token");
    let (status, location, _) = app
        .post_form(
            &session,
            &format!("{page}/tracking"),
            &[
                ("csrf", &csrf),
                ("carrier", ""),
                ("tracking_number", BAD_DIGIT),
                ("tracking_url", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "saved, not refused");
    let (_, html) = app.page(&session, &location).await;
    assert!(html.contains("The tracking was saved."), "{html}");
    assert!(
        html.contains("class=\"warning\" id=\"number-warning-1\"")
            && html.contains("looks like a UPS number, but its check digit is wrong"),
        "{html}"
    );
    assert!(
        html.contains("aria-describedby=\"number-warning-1\""),
        "{html}"
    );
    // Kept as given.
    let resp = app
        .client
        .get(app.url(&format!("/v2.2/stores/{store_id}/orders/A")))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("get order");
    let order: Value = resp.json().await.expect("JSON");
    let order = order.get("order").cloned().unwrap_or(order);
    assert_eq!(
        order["fulfillments"][0]["trackingNumber"], BAD_DIGIT,
        "{order}"
    );
}

#[tokio::test]
async fn the_automation_form_takes_a_return_trigger() {
    let app = App::spawn().await;
    let (store_id, secret) = shop(&app).await;
    let session = app.sign_in(&secret).await;
    let (status, html) = app.page(&session, "/ui/automations/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<optgroup label=\"Returns\">") && html.contains("value=\"return.received\""),
        "{html}"
    );
    let csrf = csrf_in(&html).expect("token");
    let (status, _, _) = app
        .post_form(
            &session,
            "/ui/automations",
            &[
                ("csrf", &csrf),
                ("name", "Tell me"),
                ("trigger", "return.received"),
                ("carrier", ""),
                ("enabled", "on"),
                ("action", "email"),
                ("to", "merchant@shop.example"),
                ("subject", "Return {{ return.id }} received"),
                ("email_body", "<p>{{ return.lines | length }} lines</p>"),
                ("url", ""),
                ("webhook_body", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let resp = app
        .client
        .get(app.url(&format!("/v2.2/stores/{store_id}/automations")))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("list");
    let list: Value = resp.json().await.expect("JSON");
    assert_eq!(
        list["automations"][0]["trigger"], "return.received",
        "{list}"
    );
    // A return trigger that is not a status is refused beside the form.
    let (status, _, html) = app
        .post_form(
            &session,
            "/ui/automations",
            &[
                ("csrf", &csrf),
                ("name", "Bad"),
                ("trigger", "return.lost"),
                ("action", "email"),
                ("subject", "x"),
                ("email_body", "x"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("automation.trigger must be"), "{html}");
}
