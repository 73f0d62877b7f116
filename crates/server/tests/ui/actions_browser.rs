//! The dashboard's actions in headless Chromium: post an event, edit tracking with a second
//! parcel, a POST without its CSRF token refused, cancel through the confirmation page, and an
//! automation created, edited and deleted through its form; screenshots of the fulfillment page
//! with its action forms and of the automation form at 1400 and 390 px.

use std::io::Write;

use fantoccini::Locator;
use serde_json::Value;

use crate::browser::{
    Driver, browser, click, program, shoot, sign_in, text, type_into, wait_for_path, wait_text,
};
use crate::harness::App;

#[tokio::test]
async fn fulfillment_actions_and_automation_forms_in_headless_chromium() {
    let (Some(chromedriver), Some(chromium)) = (
        program("WAYBILL_CHROMEDRIVER", "chromedriver"),
        program("WAYBILL_CHROMIUM", "chromium"),
    ) else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but chromium/chromedriver are not installed");
        }
        let _ = std::io::stderr()
            .write_all(b"\n[waybill] *** actions browser test NOT RUN: no chromium ***\n");
        return;
    };
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = browser(&driver, &chromium, profile.path()).await;
    let base = app.base.clone();
    let order_api = format!("/v2.2/stores/{}/orders/{}", seeded.store_id, seeded.order);
    let fulfillment = || {
        let (app, secret, path) = (&app, seeded.secret.clone(), order_api.clone());
        async move {
            let order: Value = app
                .client
                .get(app.url(&path))
                .bearer_auth(&secret)
                .send()
                .await
                .expect("get order")
                .json()
                .await
                .expect("JSON");
            let order = order.get("order").cloned().unwrap_or(order);
            order["fulfillments"][0].clone()
        }
    };
    sign_in(&client, &base, &seeded.secret).await;
    wait_for_path(&client, "the exceptions view", |p| p == "/ui/exceptions").await;
    let page = format!(
        "{base}/ui/orders/{}/fulfillments/{}",
        seeded.order, seeded.fulfillment
    );

    // Post an event with a message.
    client.goto(&page).await.expect("fulfillment");
    client
        .find(Locator::Id("status-choice"))
        .await
        .expect("status select")
        .select_by_value("delayed")
        .await
        .expect("choose delayed");
    type_into(&client, "#status-message", "Held by weather").await;
    click(&client, "#post-status button[type=submit]").await;
    wait_for_path(&client, "posted", |p| p.ends_with("done=status")).await;
    let notice = wait_text(&client, "#action-notice", |t| !t.is_empty()).await;
    assert_eq!(notice, "The status was posted.");
    let timeline = text(&client, "ol.timeline").await;
    assert!(timeline.contains("Held by weather"), "{timeline}");
    let f = fulfillment().await;
    let history = f["trackingHistory"].as_array().cloned().unwrap_or_default();
    assert!(
        history
            .iter()
            .any(|h| h["status"] == "delayed" && h["message"] == "Held by weather"),
        "{f}"
    );
    assert_eq!(f["status"], "out_for_delivery", "an event keeps the status");

    // A second parcel, its carrier detected from nothing but free text.
    type_into(&client, "#carrier-2", "fedex").await;
    type_into(&client, "#number-2", "449044304137821").await;
    click(&client, "#edit-tracking button[type=submit]").await;
    wait_for_path(&client, "tracking saved", |p| p.ends_with("done=tracking")).await;
    let packages = text(&client, "ul.packages").await;
    assert!(packages.contains("449044304137821"), "{packages}");
    let f = fulfillment().await;
    assert_eq!(f["packages"].as_array().map(Vec::len), Some(2), "{f}");
    assert_eq!(f["packages"][1]["carrier"], "FedEx", "{f}");

    // Screenshots of the page scrolled to its action forms.
    client
        .goto(&format!("{page}#actions-heading"))
        .await
        .expect("the actions");
    shoot(&client, 1400, "fulfillment-actions.png").await;
    shoot(&client, 390, "fulfillment-actions-phone.png").await;
    client
        .set_window_size(1280, 900)
        .await
        .expect("resize back");

    // A POST without the CSRF token is refused and changes nothing.
    client
        .execute(
            "document.querySelector('#post-status input[name=csrf]').remove();",
            vec![],
        )
        .await
        .expect("drop the token");
    client
        .find(Locator::Id("status-choice"))
        .await
        .expect("status select")
        .select_by_value("failure")
        .await
        .expect("choose failure");
    click(&client, "#post-status button[type=submit]").await;
    let heading = wait_text(&client, "main h1", |t| t.contains("403")).await;
    assert_eq!(heading, "403 Forbidden");
    assert_eq!(fulfillment().await["status"], "out_for_delivery");

    // Cancel through the confirmation page.
    client.goto(&page).await.expect("fulfillment");
    click(&client, "#cancel-link").await;
    wait_text(&client, "main h1", |t| t == "Cancel this fulfillment?").await;
    assert_eq!(fulfillment().await["status"], "out_for_delivery", "not yet");
    click(&client, "#confirm-cancel button").await;
    wait_for_path(&client, "cancelled", |p| p.ends_with("done=cancelled")).await;
    let notice = wait_text(&client, "#action-notice", |t| !t.is_empty()).await;
    assert!(notice.contains("cancelled"), "{notice}");
    assert_eq!(fulfillment().await["status"], "cancelled");

    // An automation: created through the form (a bad template first), edited, deleted.
    client
        .goto(&format!("{base}/ui/automations"))
        .await
        .expect("automations");
    click(&client, "a.button").await;
    wait_text(&client, "main h1", |t| t == "New automation").await;
    type_into(&client, "#name", "Tell the customer").await;
    client
        .find(Locator::Id("trigger"))
        .await
        .expect("trigger")
        .select_by_value("delayed")
        .await
        .expect("choose delayed");
    type_into(&client, "#subject", "Order {{ order.id").await;
    type_into(&client, "#email-body", "<p>Your parcel is late.</p>").await;
    click(&client, "#automation-form button[type=submit]").await;
    let error = wait_text(&client, "#form-error", |t| !t.is_empty()).await;
    assert!(error.contains("automation.action.subject"), "{error}");
    let store = app.store.clone();
    assert!(
        store
            .list_automations(&seeded.store_id)
            .await
            .expect("list")
            .is_empty()
    );
    shoot(&client, 1400, "automation-form.png").await;
    shoot(&client, 390, "automation-form-phone.png").await;
    client
        .set_window_size(1280, 900)
        .await
        .expect("resize back");
    type_into(&client, "#subject", "Order {{ order.id }} is late").await;
    click(&client, "#automation-form button[type=submit]").await;
    wait_for_path(&client, "created", |p| p.ends_with("done=created")).await;
    let list = store
        .list_automations(&seeded.store_id)
        .await
        .expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "Tell the customer");
    assert_eq!(list[0].trigger.as_str(), "delayed");
    type_into(&client, "#name", "Tell them early").await;
    click(&client, "#automation-form button[type=submit]").await;
    wait_for_path(&client, "saved", |p| p.ends_with("done=saved")).await;
    let list = store
        .list_automations(&seeded.store_id)
        .await
        .expect("list");
    assert_eq!(list[0].name, "Tell them early");
    click(&client, "#delete-link").await;
    wait_text(&client, "main h1", |t| t == "Delete this automation?").await;
    click(&client, "#confirm-delete button").await;
    wait_for_path(&client, "deleted", |p| p == "/ui/automations?done=deleted").await;
    assert!(
        store
            .list_automations(&seeded.store_id)
            .await
            .expect("list")
            .is_empty()
    );

    client.close().await.expect("close the browser");
}
