//! The dashboard's actions over plain HTTP: cancelling a fulfillment, posting a status or an
//! event, editing tracking, and creating, editing and deleting automations. Each action is
//! compared with the same call made through the Redo API on a twin order (or automation), read
//! back through the Redo GET APIs; each is refused without its CSRF token and from another
//! store, changing nothing. Also: sign-in throttling and the cookies' attributes.

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};
use waybill_server::AppState;
use waybill_server::ui::DashboardSettings;
use waybill_server::webhooks::UrlPolicy;
use waybill_store::testing::TestDatabase;

use crate::harness::{App, FormBody, TRACKING, csrf_in, set_cookie_header};

/// A store with orders A and B, each of two T-shirts, with fulfillment `fa` (of A) and `fb`
/// (of B) of one T-shirt by UPS: the twins the dashboard and the API act on.
struct Twins {
    store_id: String,
    secret: String,
}

impl Twins {
    async fn new(app: &App) -> Twins {
        let (record, key) = app.store.create_store("Actions shop").await.expect("store");
        let twins = Twins {
            store_id: record.id,
            secret: key.secret,
        };
        for (order, ful) in [("A", "fa"), ("B", "fb")] {
            app.api(
                &twins.secret,
                &twins.base(""),
                json!({
                    "orderId": order,
                    "createdAt": "2024-03-20T12:00:00Z",
                    "customer": {"email": "ada@example.com"},
                    "lineItems": [{"id": "line-1", "productId": "p", "sku": "TEE", "title": "T-shirt", "quantity": 2}]
                }),
            )
            .await;
            app.api(
                &twins.secret,
                &twins.base(&format!("/{order}/fulfillments")),
                json!({"fulfillmentId": ful, "lineItems": [{"id": "line-1", "quantity": 1}],
                       "tracking": {"carrier": "UPS", "code": TRACKING}}),
            )
            .await;
        }
        twins
    }

    /// `/v2.2/stores/{store}/orders{rest}`.
    fn base(&self, rest: &str) -> String {
        format!("/v2.2/stores/{}/orders{rest}", self.store_id)
    }

    /// The order as the Redo GET API answers it.
    async fn order(&self, app: &App, order: &str) -> Value {
        let resp = app
            .client
            .get(app.url(&self.base(&format!("/{order}"))))
            .bearer_auth(&self.secret)
            .send()
            .await
            .expect("get order");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("JSON")
    }

    /// What an action changes in a fulfillment: status, ETA, packages, and the history without
    /// the creation entry's time (stamped when it was made).
    async fn outcome(&self, app: &App, order: &str) -> Value {
        let order = self.order(app, order).await;
        let order = order.get("order").cloned().unwrap_or(order);
        let f = &order["fulfillments"][0];
        let history: Vec<Value> = f["trackingHistory"]
            .as_array()
            .expect("history")
            .iter()
            .map(|h| {
                // Entries stamped when they were made (not by the test) differ by milliseconds.
                let mut h = h.clone();
                if !h["datetime"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("2024-"))
                {
                    h["datetime"] = Value::Null;
                }
                h
            })
            .collect();
        json!({
            "status": f["status"],
            "eta": f["estimatedDeliveryDate"],
            "packages": f["packages"],
            "history": history,
            "orderStatus": order["status"],
        })
    }

    async fn api_post(&self, app: &App, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = app
            .client
            .post(app.url(&self.base(path)))
            .bearer_auth(&self.secret)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

const FA: &str = "/ui/orders/A/fulfillments/fa";

#[tokio::test]
async fn fulfillment_actions_change_the_order_exactly_as_the_api_does() {
    let app = App::spawn().await;
    let twins = Twins::new(&app).await;
    let session = app.sign_in(&twins.secret).await;
    let (status, html) = app.page(&session, FA).await;
    assert_eq!(status, StatusCode::OK);
    for form in [
        "id=\"post-status\"",
        "id=\"edit-tracking\"",
        "id=\"cancel-link\"",
        "<label for=\"status-choice\">Status or event</label>",
        "<label for=\"number-1\">Tracking number</label>",
        "value=\"delayed\"",
        "value=\"return_to_sender\"",
    ] {
        assert!(html.contains(form), "{form} not in {html}");
    }
    let csrf = csrf_in(&html).expect("token");
    let before = twins.outcome(&app, "A").await;

    // Bad input: a clear error beside the form, the values kept, nothing changed.
    for (pairs, message) in [
        (
            vec![("status", "teleported")],
            "status must be one of pre_transit",
        ),
        (
            vec![("status", "in_transit"), ("datetime", "yesterday")],
            "datetime",
        ),
        (
            vec![("status", "in_transit"), ("eta", "2024-13-45")],
            "estimatedDeliveryDate",
        ),
    ] {
        let mut form = vec![("csrf", csrf.as_str()), ("message", "Kept text")];
        form.extend(pairs);
        let (status, _, html) = app
            .post_form(&session, &format!("{FA}/status"), &form)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert!(
            html.contains("role=\"alert\"") && html.contains(message),
            "{message} not in {html}"
        );
        assert!(
            html.contains("value=\"Kept text\""),
            "the form keeps its values"
        );
    }
    assert_eq!(twins.outcome(&app, "A").await, before, "unchanged");

    // A status with message, time and ETA; then an event.
    let (status, location, _) = app
        .post_form(
            &session,
            &format!("{FA}/status"),
            &[
                ("csrf", &csrf),
                ("status", "in_transit"),
                ("message", "Departed facility"),
                ("datetime", "2024-03-21T08:00"),
                ("eta", "2024-03-25"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.ends_with("/fulfillments/fa?done=status"),
        "{location}"
    );
    let (_, html) = app.page(&session, &location).await;
    assert!(html.contains("The status was posted."), "{html}");
    assert!(html.contains("Departed facility"), "shown in the timeline");
    twins
        .api_post(
            &app,
            "/B/fulfillments/fb/shipment-status",
            json!({"status": "in_transit", "message": "Departed facility",
                   "datetime": "2024-03-21T08:00:00Z", "estimatedDeliveryDate": "2024-03-25"}),
        )
        .await;
    let (status, _, _) = app
        .post_form(
            &session,
            &format!("{FA}/status"),
            &[
                ("csrf", &csrf),
                ("status", "delayed"),
                ("message", "Weather"),
                ("datetime", "2024-03-22T09:30"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    twins
        .api_post(
            &app,
            "/B/fulfillments/fb/shipment-status",
            json!({"status": "delayed", "message": "Weather", "datetime": "2024-03-22T09:30:00Z"}),
        )
        .await;
    let a = twins.outcome(&app, "A").await;
    assert_eq!(a, twins.outcome(&app, "B").await);
    assert_eq!(a["status"], "in_transit", "an event keeps the status: {a}");
    assert_eq!(a["eta"], "2024-03-25");
    let delayed = a["history"]
        .as_array()
        .and_then(|h| h.iter().find(|e| e["status"] == "delayed"))
        .cloned();
    assert_eq!(
        delayed.map(|e| e["message"].clone()),
        Some(json!("Weather")),
        "the event is in the history: {a}"
    );

    // Tracking: two parcels, carriers detected and normalised as the API does; a bad URL is
    // refused with the rows kept.
    let (status, _, html) = app
        .post_form(
            &session,
            &format!("{FA}/tracking"),
            &[
                ("csrf", &csrf),
                ("carrier", ""),
                ("tracking_number", TRACKING),
                ("tracking_url", "ftp://example.com/t"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("packages[0].trackingUrl must be an http(s) URL")
            && html.contains("ftp://example.com/t"),
        "{html}"
    );
    assert_eq!(twins.outcome(&app, "A").await, a, "unchanged");
    let (status, location, _) = app
        .post_form(
            &session,
            &format!("{FA}/tracking"),
            &[
                ("csrf", &csrf),
                ("carrier", ""),
                ("tracking_number", TRACKING),
                ("tracking_url", ""),
                ("carrier", "U.S.P.S."),
                ("tracking_number", "9400111899223334445566"),
                ("tracking_url", ""),
                ("carrier", ""),
                ("tracking_number", ""),
                ("tracking_url", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.ends_with("/fulfillments/fa?done=tracking"),
        "{location}"
    );
    let (status, _) = twins
        .client_put(
            &app,
            "/B/fulfillments/fb/tracking",
            json!({"packages": [{"trackingNumber": TRACKING},
                                {"carrier": "U.S.P.S.", "trackingNumber": "9400111899223334445566"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let a = twins.outcome(&app, "A").await;
    assert_eq!(a, twins.outcome(&app, "B").await);
    assert_eq!(a["packages"].as_array().map(Vec::len), Some(2), "{a}");
    assert_eq!(a["packages"][0]["carrier"], "UPS", "detected: {a}");
    let (_, html) = app.page(&session, &location).await;
    assert!(
        html.contains("The tracking was saved.") && html.contains("9400111899223334445566"),
        "{html}"
    );

    // Cancel: the ledger is full (a second T-shirt fulfillment fits, a third does not) …
    let more = |id: &'static str, quantity: u32| json!({"fulfillmentId": id, "lineItems": [{"id": "line-1", "quantity": quantity}]});
    let (status, _) = twins
        .api_post(&app, "/A/fulfillments", more("fa-2", 2))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "over-fulfilment refused");
    // … through the confirmation page …
    let (status, html) = app.page(&session, &format!("{FA}/cancel")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Cancel this fulfillment?") && html.contains("id=\"confirm-cancel\""),
        "{html}"
    );
    let (status, _, _) = app
        .post_form(&session, &format!("{FA}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not without confirming");
    assert_eq!(twins.outcome(&app, "A").await, a, "unchanged");
    let (status, location, _) = app
        .post_form(
            &session,
            &format!("{FA}/cancel"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.ends_with("/fulfillments/fa?done=cancelled"),
        "{location}"
    );
    let (status, _) = twins
        .api_post(&app, "/B/fulfillments/fb/cancel", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let a = twins.outcome(&app, "A").await;
    assert_eq!(a, twins.outcome(&app, "B").await);
    assert_eq!(a["status"], "cancelled", "{a}");
    let (_, html) = app.page(&session, &location).await;
    assert!(
        html.contains("The fulfillment was cancelled") && !html.contains("id=\"cancel-link\""),
        "{html}"
    );
    // … and its unit is back: two T-shirts fit now.
    let (status, body) = twins
        .api_post(&app, "/A/fulfillments", more("fa-2", 2))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _) = twins
        .api_post(&app, "/B/fulfillments", more("fb-2", 2))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Bringing the cancelled fulfillment back would take units the order no longer has: the
    // ledger refuses it, with its reason beside the form, as the API does.
    let before = twins.outcome(&app, "A").await;
    let (status, _, html) = app
        .post_form(
            &session,
            &format!("{FA}/status"),
            &[("csrf", &csrf), ("status", "delivered")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let alert = html.split("role=\"alert\"").nth(1).unwrap_or_default();
    assert!(alert.contains("left to fulfill"), "{alert}");
    assert_eq!(twins.outcome(&app, "A").await, before, "unchanged");
    let (api_status, body) = twins
        .api_post(
            &app,
            "/B/fulfillments/fb/shipment-status",
            json!({"status": "delivered"}),
        )
        .await;
    assert_eq!(api_status, StatusCode::BAD_REQUEST, "{body}");
}

impl Twins {
    async fn client_put(&self, app: &App, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = app
            .client
            .put(app.url(&self.base(path)))
            .bearer_auth(&self.secret)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn automations(&self, app: &App) -> Vec<Value> {
        let resp = app
            .client
            .get(app.url(&format!("/v2.2/stores/{}/automations", self.store_id)))
            .bearer_auth(&self.secret)
            .send()
            .await
            .expect("list automations");
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("JSON");
        body["automations"].as_array().cloned().unwrap_or_default()
    }
}

/// An automation's fields that a form sets (not its id or times).
fn fields(a: &Value) -> Value {
    json!({"name": a["name"], "trigger": a["trigger"], "carrier": a["carrier"],
           "enabled": a["enabled"], "action": a["action"]})
}

#[tokio::test]
async fn automations_are_created_edited_and_deleted_as_the_api_does() {
    let app = App::spawn().await;
    let twins = Twins::new(&app).await;
    let session = app.sign_in(&twins.secret).await;
    let (status, html) = app.page(&session, "/ui/automations/new").await;
    assert_eq!(status, StatusCode::OK);
    for label in [
        "<label for=\"name\">Name</label>",
        "<label for=\"trigger\">When</label>",
        "value=\"stalled_in_transit\"",
        "<label for=\"subject\">Subject template</label>",
    ] {
        assert!(html.contains(label), "{label} not in {html}");
    }
    let (_, list) = app.page(&session, "/ui/automations").await;
    assert!(list.contains("href=\"/ui/automations/new\""), "{list}");
    let csrf = csrf_in(&html).expect("token");
    let email = |name: &'static str, trigger: &'static str, subject: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", name.to_owned()),
            ("trigger", trigger.to_owned()),
            ("carrier", "U.P.S.".to_owned()),
            ("enabled", "on".to_owned()),
            ("action", "email".to_owned()),
            ("to", "".to_owned()),
            ("subject", subject.to_owned()),
            ("email_body", "<p>{{ order.id }} is late</p>".to_owned()),
            ("url", "".to_owned()),
            ("webhook_body", "".to_owned()),
        ]
    };
    let post = |path: String, pairs: Vec<(&'static str, String)>| {
        let (app, session) = (&app, &session);
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_form(session, &path, &pairs).await
        }
    };

    // Refused with the API's reasons, nothing created.
    for (pairs, message) in [
        (
            email("Late", "teleported", "Late"),
            "automation.trigger must be",
        ),
        (
            email("Late", "delayed", "{{ unclosed"),
            "automation.action.subject",
        ),
        (email("", "delayed", "Late"), "automation.name must be"),
    ] {
        let (status, _, html) = post("/ui/automations".into(), pairs).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            html.contains("role=\"alert\"") && html.contains(message),
            "{message} not in {html}"
        );
    }
    assert!(twins.automations(&app).await.is_empty());

    // Created, as the API creates its twin.
    let (status, location, _) = post(
        "/ui/automations".into(),
        email("Late", "delayed", "Order late"),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.ends_with("/edit?done=created"), "{location}");
    let (_, html) = app.page(&session, &location).await;
    assert!(html.contains("The automation was created."), "{html}");
    let resp = app
        .client
        .post(app.url(&format!("/v2.2/stores/{}/automations", twins.store_id)))
        .bearer_auth(&twins.secret)
        .json(
            &json!({"automation": {"name": "Late", "trigger": "delayed", "carrier": "U.P.S.",
            "enabled": true, "action": {"type": "email", "subject": "Order late",
            "body": "<p>{{ order.id }} is late</p>", "to": ""}}}),
        )
        .send()
        .await
        .expect("API create");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let list = twins.automations(&app).await;
    assert_eq!(list.len(), 2);
    assert_eq!(fields(&list[0]), fields(&list[1]));
    assert_eq!(list[0]["carrier"], "UPS", "normalised: {}", list[0]);
    let id = list[0]["id"].as_str().expect("id").to_owned();
    let edit = format!("/ui/automations/{id}/edit");
    assert!(location.starts_with(&edit), "{location}");

    // Edited into a webhook: the new subscription's secret is shown once.
    let webhook = vec![
        ("csrf", csrf.clone()),
        ("name", "Late hook".to_owned()),
        ("trigger", "stalled_in_transit".to_owned()),
        ("carrier", "".to_owned()),
        ("action", "webhook".to_owned()),
        ("url", "http://127.0.0.1:9/late".to_owned()),
        ("webhook_body", "{\"order\": {{ order.id }}}".to_owned()),
    ];
    let mut bad = webhook.clone();
    bad[5].1 = "ftp://127.0.0.1/late".to_owned();
    let (status, _, html) = post(edit.clone(), bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("automation.action.url"), "{html}");
    assert_eq!(
        fields(&twins.automations(&app).await[0]),
        fields(&list[0]),
        "unchanged"
    );
    let (status, _, html) = post(edit.clone(), webhook).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("The automation was saved."), "{html}");
    let secret_start = html.find("id=\"revealed-secret\">").expect("secret shown") + 21;
    let secret = &html[secret_start..secret_start + 6];
    assert_eq!(secret, "whsec_", "{html}");
    let edited = twins.automations(&app).await;
    assert_eq!(
        fields(&edited[0]),
        json!({"name": "Late hook", "trigger": "stalled_in_transit", "carrier": null,
               "enabled": false,
               "action": {"type": "webhook", "url": "http://127.0.0.1:9/late",
                          "body": "{\"order\": {{ order.id }}}"}}),
        "an unticked box disables it"
    );
    let (_, html) = app.page(&session, &edit).await;
    assert!(!html.contains("revealed-secret"), "shown only once");

    // Deleted through the confirmation page, as the API deletes.
    let delete = format!("/ui/automations/{id}/delete");
    let (status, html) = app.page(&session, &delete).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Delete this automation?"), "{html}");
    let (status, _, _) = post(delete.clone(), vec![("csrf", csrf.clone())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not without confirming");
    assert_eq!(twins.automations(&app).await.len(), 2);
    let (status, location, _) = post(
        delete.clone(),
        vec![("csrf", csrf.clone()), ("confirm", "yes".to_owned())],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/ui/automations?done=deleted");
    let (_, html) = app.page(&session, &location).await;
    assert!(html.contains("The automation was deleted"), "{html}");
    let left = twins.automations(&app).await;
    assert_eq!(left.len(), 1);
    assert_ne!(left[0]["id"], json!(id));
    let resp = app
        .client
        .get(app.url(&format!("/v2.2/stores/{}/automations/{id}", twins.store_id)))
        .bearer_auth(&twins.secret)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// Every state-changing route of this change, with a form that would act.
fn action_posts(automation: &str) -> Vec<(String, Vec<(&'static str, String)>)> {
    let s = |v: &str| v.to_owned();
    vec![
        (
            format!("{FA}/status"),
            vec![("status", s("delivered")), ("message", s("x"))],
        ),
        (
            format!("{FA}/tracking"),
            vec![("carrier", s("UPS")), ("tracking_number", s("1ZX"))],
        ),
        (format!("{FA}/cancel"), vec![("confirm", s("yes"))]),
        (
            "/ui/automations".into(),
            vec![
                ("name", s("x")),
                ("trigger", s("delivered")),
                ("action", s("email")),
                ("subject", s("s")),
                ("email_body", s("b")),
            ],
        ),
        (
            format!("/ui/automations/{automation}/edit"),
            vec![
                ("name", s("changed")),
                ("trigger", s("delivered")),
                ("action", s("email")),
                ("subject", s("s")),
                ("email_body", s("b")),
            ],
        ),
        (
            format!("/ui/automations/{automation}/delete"),
            vec![("confirm", s("yes"))],
        ),
    ]
}

async fn create_automation(app: &App, twins: &Twins) -> String {
    let resp = app
        .client
        .post(app.url(&format!("/v2.2/stores/{}/automations", twins.store_id)))
        .bearer_auth(&twins.secret)
        .json(
            &json!({"automation": {"name": "Kept", "trigger": "delivered",
            "action": {"type": "email", "subject": "s", "body": "b"}}}),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("JSON");
    body["automation"]["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn no_action_works_without_the_csrf_token_or_from_another_store() {
    let app = App::spawn().await;
    let twins = Twins::new(&app).await;
    let automation = create_automation(&app, &twins).await;
    let session = app.sign_in(&twins.secret).await;
    let (other, other_key) = app.store.create_store("Other shop").await.expect("store");
    let intruder = app.sign_in(&other_key.secret).await;
    let (_, their_page) = app.page(&intruder, "/ui/automations").await;
    let their_csrf = csrf_in(&their_page).expect("token");
    let order_before = twins.order(&app, "A").await;
    let automations_before = twins.automations(&app).await;

    for (path, pairs) in action_posts(&automation) {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // No token, and another session's token: 403.
        let (status, _, html) = app.post_form(&session, &path, &pairs).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("This form has expired"), "{html}");
        let mut wrong = vec![("csrf", their_csrf.as_str())];
        wrong.extend(pairs.iter().copied());
        let (status, _, _) = app.post_form(&session, &path, &wrong).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} with a foreign token");
        // Another store with its own valid token: not found (creating is the one route with
        // nothing to find; there it creates in the intruder's own store, checked below).
        if path != "/ui/automations" {
            let (status, _, _) = app.post_form(&intruder, &path, &wrong).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path} from another store");
        }
    }
    for path in [
        FA.to_owned(),
        format!("{FA}/cancel"),
        format!("/ui/automations/{automation}/edit"),
        format!("/ui/automations/{automation}/delete"),
    ] {
        let (status, html) = app.page(&intruder, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!html.contains("Kept"), "{html}");
    }
    assert_eq!(
        twins.order(&app, "A").await,
        order_before,
        "order unchanged"
    );
    assert_eq!(
        twins.automations(&app).await,
        automations_before,
        "automations unchanged"
    );
    assert!(
        app.store
            .list_automations(&other.id)
            .await
            .expect("list")
            .is_empty()
    );
}

/// Posts the sign-in form with `secret`; the status and `Retry-After`.
async fn try_sign_in(app: &App, secret: &str) -> (StatusCode, Option<u64>) {
    let (cookie, token) = app.login_form().await;
    let resp = app
        .client
        .post(app.url("/ui/login"))
        .header(COOKIE, format!("waybill_login={cookie}"))
        .form_body(&[("csrf", token.as_str()), ("secret", secret)])
        .send()
        .await
        .expect("sign in");
    let retry = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (resp.status(), retry)
}

#[tokio::test]
async fn failed_sign_ins_are_slowed_down_and_a_success_resets_the_count() {
    let app = App::spawn().await;
    let twins = Twins::new(&app).await;
    let wrong = "wb_sk_not-a-real-secret-0000000000000000";

    // Four failures, then a success: the count starts again …
    for _ in 0..4 {
        assert_eq!(try_sign_in(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        try_sign_in(&app, &twins.secret).await.0,
        StatusCode::SEE_OTHER
    );
    // … so five more failures are answered as failures, not throttled.
    for i in 0..5 {
        assert_eq!(
            try_sign_in(&app, wrong).await,
            (StatusCode::UNAUTHORIZED, None),
            "failure {i} after the reset"
        );
    }
    // The sixth attempt in the window (even with the right secret) waits.
    let (status, retry) = try_sign_in(&app, &twins.secret).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let first_wait = retry.expect("Retry-After");
    assert!((1..=30).contains(&first_wait), "{first_wait}");
    let (status, retry) = try_sign_in(&app, wrong).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|r| r <= first_wait));
}

/// A server like `App::spawn`'s, with dashboard settings.
async fn spawn_with(settings: DashboardSettings) -> App {
    let db = TestDatabase::new().await.expect("test database");
    let store = db.open().await.expect("open store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = AppState::new(store.clone())
        .with_url_policy(UrlPolicy::allow_all())
        .with_dashboard(settings);
    tokio::spawn(waybill_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    App {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        store,
        _db: std::sync::Arc::new(db),
    }
}

/// The `Set-Cookie` headers of the sign-in form and of a sign-in.
async fn cookies(app: &App, secret: &str) -> (String, String) {
    let resp = app
        .client
        .get(app.url("/ui/login"))
        .send()
        .await
        .expect("form");
    let login = set_cookie_header(&resp, "waybill_login").expect("login cookie");
    let html = resp.text().await.expect("html");
    let token = csrf_in(&html).expect("token");
    let value = login
        .split(';')
        .next()
        .and_then(|p| p.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("value");
    let resp = app
        .client
        .post(app.url("/ui/login"))
        .header(COOKIE, format!("waybill_login={value}"))
        .form_body(&[("csrf", token.as_str()), ("secret", secret)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = set_cookie_header(&resp, "waybill_session").expect("session cookie");
    (login, session)
}

#[tokio::test]
async fn cookies_are_http_only_same_site_and_secure_under_an_https_public_url() {
    let plain = App::spawn().await;
    let (_, key) = plain.store.create_store("Plain").await.expect("store");
    for cookie in <[String; 2]>::from(cookies(&plain, &key.secret).await) {
        assert!(
            cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict"),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    }
    let https = spawn_with(DashboardSettings {
        public_https: true,
        trust_proxy: false,
    })
    .await;
    let (_, key) = https.store.create_store("Tls").await.expect("store");
    for cookie in <[String; 2]>::from(cookies(&https, &key.secret).await) {
        assert!(
            cookie.contains("; HttpOnly")
                && cookie.contains("; SameSite=Strict")
                && cookie.contains("; Secure"),
            "{cookie}"
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_per_forwarded_client() {
    let app = spawn_with(DashboardSettings {
        public_https: false,
        trust_proxy: true,
    })
    .await;
    let wrong = "wb_sk_not-a-real-secret-0000000000000000";
    let attempt = |client_ip: &'static str| {
        let app = &app;
        async move {
            let (cookie, token) = app.login_form().await;
            app.client
                .post(app.url("/ui/login"))
                .header(COOKIE, format!("waybill_login={cookie}"))
                .header("x-forwarded-for", format!("198.51.100.7, {client_ip}"))
                .form_body(&[("csrf", token.as_str()), ("secret", wrong)])
                .send()
                .await
                .expect("sign in")
                .status()
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("203.0.113.1").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attempt("203.0.113.1").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        attempt("203.0.113.2").await,
        StatusCode::UNAUTHORIZED,
        "another client behind the same proxy is not held back"
    );
}
