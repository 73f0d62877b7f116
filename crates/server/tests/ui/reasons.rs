//! Exception reasons in the dashboard, over plain HTTP: the exceptions view and the orders list
//! show each shipment's reason and filter by it (the counts follow); the post-status form offers
//! the vocabulary, records a reason exactly as the API does, and refuses one on a status that
//! cannot carry it, changing nothing. Data goes in through the Redo API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{App, csrf_in};

struct Shop {
    store_id: String,
    secret: String,
}

impl Shop {
    fn orders(&self, rest: &str) -> String {
        format!("/v2.2/stores/{}/orders{rest}", self.store_id)
    }

    async fn shipped(&self, app: &App, order: &str) {
        app.api(
            &self.secret,
            &self.orders(""),
            json!({"orderId": order, "createdAt": "2024-03-20T12:00:00Z",
                   "lineItems": [{"id": "l", "productId": "p", "title": "Thing", "quantity": 1}]}),
        )
        .await;
        app.api(
            &self.secret,
            &self.orders(&format!("/{order}/fulfillments")),
            json!({"fulfillmentId": format!("f-{order}"), "lineItems": [{"id": "l", "quantity": 1}],
                   "tracking": {"carrier": "UPS", "code": format!("1Z999AA10000000{order}")}}),
        )
        .await;
    }

    async fn post(&self, app: &App, order: &str, body: Value) {
        app.api(
            &self.secret,
            &self.orders(&format!("/{order}/fulfillments/f-{order}/shipment-status")),
            body,
        )
        .await;
    }

    async fn fulfillment(&self, app: &App, order: &str) -> Value {
        let resp = app
            .client
            .get(app.url(&self.orders(&format!("/{order}/fulfillments/f-{order}"))))
            .bearer_auth(&self.secret)
            .send()
            .await
            .expect("get fulfillment");
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("JSON");
        body["fulfillment"].clone()
    }
}

/// The order ids linked from a page's table rows.
fn linked_orders(html: &str) -> Vec<String> {
    let mut ids: Vec<String> = html
        .split("<th scope=\"row\"><a href=\"/ui/orders/")
        .skip(1)
        .filter_map(|rest| {
            let text = rest.split_once("\">")?.1;
            Some(text.split_once("</a>")?.0.to_owned())
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test]
async fn exceptions_and_orders_show_and_filter_by_reason() {
    let app = App::spawn().await;
    let (record, key) = app.store.create_store("Reasons shop").await.expect("store");
    let shop = Shop {
        store_id: record.id,
        secret: key.secret,
    };
    for order in ["1", "2", "3", "4"] {
        shop.shipped(&app, order).await;
    }
    shop.post(&app, "1", json!({"status": "delayed", "reason": "weather"}))
        .await;
    shop.post(
        &app,
        "2",
        json!({"status": "failure", "reason": "address_issue"}),
    )
    .await;
    shop.post(
        &app,
        "3",
        json!({"status": "return_to_sender", "reason": "refused"}),
    )
    .await;
    shop.post(&app, "4", json!({"status": "failure"})).await;
    let session = app.sign_in(&shop.secret).await;

    let (status, html) = app.page(&session, "/ui/exceptions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(linked_orders(&html), ["1", "2", "3", "4"]);
    for label in ["Weather", "Address issue", "Refused by recipient"] {
        assert!(
            html.contains(&format!("<td class=\"exc-reason\">{label}</td>")),
            "{label} not shown in {html}"
        );
    }
    assert!(html.contains("<select id=\"reason-choice\" name=\"reason\">"));

    let (status, html) = app
        .page(&session, "/ui/exceptions?reason=address_issue")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(linked_orders(&html), ["2"]);
    assert!(html.contains("<option value=\"address_issue\" selected>Address issue</option>"));
    assert!(html.contains("id=\"reason-filter\">Address issue</strong>"));
    assert!(
        html.contains("1</span> <span class=\"what\">Delivery failed</span>"),
        "the counts follow the filter: {html}"
    );
    // Kind and reason together; an unknown reason is ignored.
    let (_, html) = app
        .page(&session, "/ui/exceptions?kind=delayed&reason=weather")
        .await;
    assert_eq!(linked_orders(&html), ["1"]);
    let (status, html) = app.page(&session, "/ui/exceptions?reason=stolen").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(linked_orders(&html), ["1", "2", "3", "4"]);

    let (status, html) = app.page(&session, "/ui/orders?reason=refused").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(linked_orders(&html), ["3"]);
    assert!(html.contains("<span class=\"badge flag reason\">Refused by recipient</span>"));
    assert!(html.contains("<option value=\"refused\" selected>Refused by recipient</option>"));
    let (_, html) = app.page(&session, "/ui/orders?reason=lost").await;
    assert!(linked_orders(&html).is_empty(), "{html}");

    // The CSV export carries each order's current reasons, and filters by reason like the list.
    let (status, text) = app.page(&session, "/ui/orders.csv").await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let column = reader
        .headers()
        .expect("header")
        .iter()
        .position(|h| h == "exception_reasons")
        .expect("an exception_reasons column");
    let mut reasons: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            (r[0].to_owned(), r[column].to_owned())
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("1".to_owned(), "weather".to_owned()),
            ("2".to_owned(), "address_issue".to_owned()),
            ("3".to_owned(), "refused".to_owned()),
            ("4".to_owned(), String::new()),
        ]
    );
    let (_, text) = app.page(&session, "/ui/orders.csv?reason=refused").await;
    assert_eq!(text.lines().count(), 2, "the header and order 3: {text}");
}

#[tokio::test]
async fn the_status_form_records_a_reason_as_the_api_does() {
    let app = App::spawn().await;
    let (record, key) = app.store.create_store("Form shop").await.expect("store");
    let shop = Shop {
        store_id: record.id,
        secret: key.secret,
    };
    shop.shipped(&app, "5").await;
    let session = app.sign_in(&shop.secret).await;
    let page = "/ui/orders/5/fulfillments/f-5";
    let (status, html) = app.page(&session, page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<select id=\"status-reason\" name=\"reason\">"));
    assert!(
        html.contains("<option value=\"recipient_unavailable\">Recipient unavailable</option>")
    );
    let csrf = csrf_in(&html).expect("token");

    let before = shop.fulfillment(&app, "5").await;
    let (status, _, html) = app
        .post_form(
            &session,
            &format!("{page}/status"),
            &[
                ("csrf", &csrf),
                ("status", "in_transit"),
                ("reason", "lost"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let alert = html.split("role=\"alert\"").nth(1).unwrap_or_default();
    assert!(
        alert.contains("only allowed with status failure"),
        "{alert}"
    );
    assert!(
        html.contains("<option value=\"lost\" selected>Lost</option>"),
        "the form keeps the reason"
    );
    assert_eq!(shop.fulfillment(&app, "5").await, before, "unchanged");

    let (status, _, _) = app
        .post_form(
            &session,
            &format!("{page}/status"),
            &[
                ("csrf", &csrf),
                ("status", "failure"),
                ("reason", "recipient_unavailable"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let after = shop.fulfillment(&app, "5").await;
    assert_eq!(after["status"], "failure");
    assert_eq!(after["exceptionReason"], "recipient_unavailable");
    let last = after["trackingHistory"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["reason"], "recipient_unavailable");
    let (_, html) = app.page(&session, page).await;
    assert!(
        html.contains("<span class=\"reason\">Reason: Recipient unavailable</span>"),
        "the timeline shows the reason: {html}"
    );
}
