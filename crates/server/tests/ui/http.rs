//! The dashboard over plain HTTP: sign-in, sessions, CSRF, revocation, headers, and what the
//! pages show.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION};
use waybill_core::{ShipmentStatus, StatusOrEvent};
use waybill_store::{AutomationAction, NewAutomation, NewWebhook, OrderQuery, WebhookFlavor};

use crate::harness::{App, FormBody, TRACKING, cookie_value, csrf_in, set_cookie_header};

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn signing_in_takes_a_live_secret_and_sets_a_strict_http_only_cookie() {
    let app = App::spawn().await;
    let seeded = app.seed().await;

    // A wrong secret, of the right shape or not, is refused with the form again (401).
    for wrong in [
        "wb_sk_0000000000000000000000000000000000000000000000000000000000000000",
        "not-a-secret",
        "",
    ] {
        let (cookie, token) = app.login_form().await;
        let resp = app
            .client
            .post(app.url("/ui/login"))
            .header(COOKIE, format!("waybill_login={cookie}"))
            .form_body(&[("csrf", token.as_str()), ("secret", wrong)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        assert_eq!(cookie_value(&resp, "waybill_session"), None);
        let html = resp.text().await.unwrap();
        assert!(html.contains("not a live API secret"), "{html}");
    }

    // The right one starts a session: a random id in an HttpOnly, SameSite=Strict cookie.
    let (cookie, token) = app.login_form().await;
    let resp = app
        .client
        .post(app.url("/ui/login"))
        .header(COOKIE, format!("waybill_login={cookie}"))
        .form_body(&[("csrf", token.as_str()), ("secret", seeded.secret.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/ui/exceptions");
    let set = set_cookie_header(&resp, "waybill_session").expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP gets no Secure cookie: {set}"
    );
    let session = cookie_value(&resp, "waybill_session").unwrap();
    assert_eq!(session.len(), 64);
    assert!(!session.contains(&seeded.secret) && !set.contains(&seeded.secret));
    let (status, html) = app.page(&session, "/ui/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&seeded.store_id));
    assert!(
        !html.contains(&seeded.secret),
        "the secret is never shown again"
    );

    // Behind a TLS-terminating proxy the cookie is Secure.
    let (cookie, token) = app.login_form().await;
    let resp = app
        .client
        .post(app.url("/ui/login"))
        .header(COOKIE, format!("waybill_login={cookie}"))
        .header("x-forwarded-proto", "https")
        .form_body(&[("csrf", token.as_str()), ("secret", seeded.secret.as_str())])
        .send()
        .await
        .unwrap();
    let set = set_cookie_header(&resp, "waybill_session").expect("session cookie");
    assert!(set.contains("; Secure"), "{set}");
}

#[tokio::test]
async fn pages_need_a_session() {
    let app = App::spawn().await;
    for path in [
        "/ui/exceptions",
        "/ui/orders",
        "/ui/orders.csv",
        "/ui/orders/1001",
        "/ui/webhooks",
        "/ui/automations",
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&resp), "/ui/login");
        let (status, _) = app.page("made-up-session", path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
    }
    let resp = app.client.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/ui/exceptions");
}

#[tokio::test]
async fn posts_without_the_right_csrf_token_are_refused() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let session = app.sign_in(&seeded.secret).await;
    let other = app.sign_in(&seeded.secret).await;
    let (_, html) = app.page(&other, "/ui/orders").await;
    let others_token = csrf_in(&html).unwrap();

    // Sign-out with no token, a wrong one, or another session's: 403, and the session lives on.
    for form in [
        vec![],
        vec![("csrf", "0".repeat(64))],
        vec![("csrf", others_token.clone())],
    ] {
        let resp = app
            .client
            .post(app.url("/ui/logout"))
            .header(COOKIE, format!("waybill_session={session}"))
            .form_body(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{form:?}");
        assert!(resp.text().await.unwrap().contains("403"));
        assert_eq!(app.page(&session, "/ui/orders").await.0, StatusCode::OK);
    }

    // Sign-in without the form's token (or with a token but not its cookie): 403.
    let (cookie, token) = app.login_form().await;
    for (cookie, token) in [
        (cookie.clone(), String::new()),
        (String::new(), token.clone()),
        (cookie.clone(), "f".repeat(64)),
    ] {
        let resp = app
            .client
            .post(app.url("/ui/login"))
            .header(COOKIE, format!("waybill_login={cookie}"))
            .form_body(&[("csrf", token.as_str()), ("secret", seeded.secret.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(cookie_value(&resp, "waybill_session"), None);
    }

    // Redeliver without a token: 403.
    let resp = app
        .client
        .post(app.url("/ui/webhooks/wh_x/redeliver"))
        .header(COOKIE, format!("waybill_session={session}"))
        .form_body(&[("event_id", "evt")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // With its own token, sign-out works and ends the session.
    let (_, html) = app.page(&session, "/ui/orders").await;
    let token = csrf_in(&html).unwrap();
    let resp = app
        .client
        .post(app.url("/ui/logout"))
        .header(COOKIE, format!("waybill_session={session}"))
        .form_body(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/ui/login?ended=signed-out");
    assert!(
        set_cookie_header(&resp, "waybill_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        app.page(&session, "/ui/orders").await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.page(&other, "/ui/orders").await.0, StatusCode::OK);
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions_on_the_next_request() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let second = app.store.create_api_key(&seeded.store_id).await.unwrap();
    let session = app.sign_in(&seeded.secret).await;
    let by_second = app.sign_in(&second.secret).await;

    // Revoking another key of the store leaves this session alone.
    assert!(app.store.revoke_api_key(&second.id).await.unwrap());
    assert_eq!(app.page(&session, "/ui/orders").await.0, StatusCode::OK);
    let resp = app
        .client
        .get(app.url("/ui/orders"))
        .header(COOKIE, format!("waybill_session={by_second}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/ui/login?ended=revoked");

    // Revoking its own key ends it, and the cookie is cleared.
    assert!(app.store.revoke_api_key(&seeded.key_id).await.unwrap());
    let resp = app
        .client
        .get(app.url("/ui/orders/1001"))
        .header(COOKIE, format!("waybill_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/ui/login?ended=revoked");
    assert!(
        set_cookie_header(&resp, "waybill_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    let resp = app
        .client
        .get(app.url("/ui/login?ended=revoked"))
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("API key was revoked"));
    // The session is gone, not just refused once; the revoked secret cannot sign in again.
    assert_eq!(
        app.page(&session, "/ui/orders").await.0,
        StatusCode::SEE_OTHER
    );
    let (cookie, token) = app.login_form().await;
    let resp = app
        .client
        .post(app.url("/ui/login"))
        .header(COOKIE, format!("waybill_login={cookie}"))
        .form_body(&[("csrf", token.as_str()), ("secret", seeded.secret.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn responses_carry_security_headers_and_assets_are_cached() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let session = app.sign_in(&seeded.secret).await;
    let (_, html) = app.page(&session, "/ui/orders").await;
    let css_href = html
        .split("href=\"")
        .find(|s| s.starts_with("/ui/static/ui.css"))
        .and_then(|s| s.split('"').next())
        .expect("stylesheet link")
        .to_owned();
    assert!(css_href.contains("?v="), "{css_href}");
    assert!(
        !html.contains("<script>") && !html.contains("style=\""),
        "no inline script or style"
    );

    for (path, with_session) in [
        ("/ui/login", false),
        ("/ui/orders", true),
        ("/ui/no-such-page", true),
        (css_href.as_str(), false),
        ("/ui/static/ui.js", false),
    ] {
        let mut req = app.client.get(app.url(path));
        if with_session {
            req = req.header(COOKIE, format!("waybill_session={session}"));
        }
        let resp = req.send().await.unwrap();
        let h = resp.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY", "{path}");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer", "{path}");
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
    }

    let page = app
        .client
        .get(app.url("/ui/orders"))
        .header(COOKIE, format!("waybill_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    assert!(
        page.headers()
            .get(CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let css = app.client.get(app.url(&css_href)).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(
        css.headers().get(CONTENT_TYPE).unwrap(),
        "text/css; charset=utf-8"
    );
    assert!(
        css.headers()
            .get(CACHE_CONTROL)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let old = app
        .client
        .get(app.url("/ui/static/ui.css?v=old"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.headers().get(CACHE_CONTROL).unwrap(),
        "public, max-age=300"
    );

    let missing = app.page(&session, "/ui/no-such-page").await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
    assert!(missing.1.contains("<h1>404"));
}

#[tokio::test]
async fn orders_are_searched_filtered_and_paged() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let base = format!("/v2.2/stores/{}", seeded.store_id);
    for n in 0..30 {
        app.api(
            &seeded.secret,
            &format!("{base}/orders"),
            serde_json::json!({
                "orderId": format!("2{n:03}"),
                "createdAt": "2024-03-20T12:00:00Z",
                "customer": {"email": format!("buyer{n}@example.com")},
                "lineItems": [{"id": "l", "productId": "p", "sku": format!("SKU-{n}"),
                               "title": "Thing", "quantity": 1}]
            }),
        )
        .await;
    }
    let session = app.sign_in(&seeded.secret).await;
    let rows = |html: &str| {
        html.matches("<th scope=\"row\"><a href=\"/ui/orders/")
            .count()
    };

    let (status, html) = app.page(&session, "/ui/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&html), 25);
    assert!(html.contains("Showing 1–25 of 31 orders"), "{html}");
    assert!(html.contains("Page 1 of 2"));
    let next = html
        .split("href=\"")
        .find(|s| s.starts_with("/ui/orders?page=2"))
        .and_then(|s| s.split('"').next())
        .expect("next link")
        .replace("&amp;", "&");
    let (_, html) = app.page(&session, &next).await;
    assert_eq!(rows(&html), 6);
    assert!(html.contains("Showing 26–31 of 31 orders"));
    assert!(html.contains("rel=\"prev\""));

    for (q, expect) in [
        (TRACKING, "1001"),
        ("TEE-M", "1001"),
        ("ADA@EXAMPLE.COM", "1001"),
        ("SKU-7", "2007"),
        ("2029", "2029"),
    ] {
        let (_, html) = app.page(&session, &format!("/ui/orders?q={q}")).await;
        assert_eq!(rows(&html), 1, "{q}");
        assert!(html.contains(&format!(">{expect}</a>")), "{q}");
        assert!(
            html.contains(&format!("value=\"{q}\"")),
            "the box keeps {q}"
        );
    }
    // A prefix of the external id.
    let (_, html) = app.page(&session, "/ui/orders?q=201").await;
    assert_eq!(rows(&html), 10);
    let (_, html) = app.page(&session, "/ui/orders?q=nothing-like-it").await;
    assert!(html.contains("No orders match."));

    // Status filter, with unknown values ignored and absurd pages clamped.
    let (_, html) = app
        .page(&session, "/ui/orders?status=PARTIALLY_SHIPPED&status=BOGUS")
        .await;
    assert_eq!(rows(&html), 1);
    assert!(html.contains(">1001</a>"));
    assert!(html.contains("value=\"PARTIALLY_SHIPPED\" checked"));
    let (_, html) = app.page(&session, "/ui/orders?status=CONFIRMED&q=20").await;
    assert_eq!(rows(&html), 25);
    for odd in [
        "page=0",
        "page=-1",
        "page=99999999999999999999",
        "page=x",
        "q=%FF%FE",
        "q=%00abc",
        "q=%E2%80%AE1001",
    ] {
        let (status, _) = app.page(&session, &format!("/ui/orders?{odd}")).await;
        assert_eq!(status, StatusCode::OK, "{odd}");
    }
    // The store call behind it agrees.
    let page = app
        .store
        .list_orders(
            &seeded.store_id,
            OrderQuery {
                search: Some(TRACKING.into()),
                limit: 10,
                ..OrderQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 1);
}

#[tokio::test]
async fn order_fulfillment_webhook_and_automation_pages_show_the_store_data() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let store_id = seeded.store_id.as_str();
    let session = app.sign_in(&seeded.secret).await;

    // The order: lines with ordered / fulfilled / remaining, and its fulfillment.
    let (status, html) = app.page(&session, "/ui/orders/1001").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Order 1001</h1>"));
    assert!(html.contains("Ada Lovelace, ada@example.com"));
    let t_shirt = html.split("T-shirt").nth(1).expect("T-shirt line");
    let cells: Vec<&str> = t_shirt
        .split("<td class=\"num\">")
        .skip(1)
        .take(3)
        .map(|c| c.split('<').next().unwrap_or_default())
        .collect();
    assert_eq!(cells, ["2", "1", "1"], "ordered, fulfilled, remaining");
    assert!(html.contains("/ui/orders/") && html.contains("/fulfillments/ful-1\">ful-1</a>"));
    assert!(html.contains(TRACKING));

    // The fulfillment: its timeline in event-time order, with the carrier's tracking page.
    let order = app
        .store
        .get_order(store_id, &waybill_core::OrderRef::new("1001"))
        .await
        .unwrap();
    let path = format!("/ui/orders/{}/fulfillments/ful-1", order.id);
    let (status, html) = app.page(&session, &path).await;
    assert_eq!(status, StatusCode::OK);
    let timeline = html
        .split("<ol class=\"timeline\"")
        .nth(1)
        .expect("a timeline");
    let mut last = 0;
    for message in &seeded.messages {
        let at = timeline
            .find(message)
            .unwrap_or_else(|| panic!("{message}"));
        assert!(at > last, "{message} out of order");
        last = at;
    }
    assert!(html.contains("Louisville, KY, US"));
    assert!(html.contains("Evanston, IL, 60201, US"));
    assert!(html.contains(&format!("https://www.ups.com/track?tracknum={TRACKING}")));
    assert!(html.contains("Out for delivery"));
    // The same fulfillment is reached through the external order id too.
    assert_eq!(
        app.page(&session, "/ui/orders/1001/fulfillments/ful-1")
            .await
            .0,
        StatusCode::OK
    );

    // Webhooks: a Redo subscription with its deliveries, and Redeliver.
    let (hook, _) = app
        .store
        .create_webhook(
            store_id,
            NewWebhook {
                flavor: WebhookFlavor::Redo,
                url: "http://127.0.0.1:9/hooks?<b>".into(),
                topics: vec!["fulfillment".into(), "order".into()],
                external_id: None,
                bearer_token: Some("bearer-secret-token".into()),
                secret: "whsec_dGVzdHNlY3JldA==".into(),
            },
        )
        .await
        .unwrap();
    app.api(
        &seeded.secret,
        &format!("/v2.2/stores/{store_id}/orders/1001/fulfillments/ful-1/shipment-status"),
        serde_json::json!({"status": "delivered", "message": "Left at front door"}),
    )
    .await;
    app.store
        .fan_out_webhook_events("ui-test", 100, waybill_core::time::now())
        .await
        .unwrap();
    let (status, html) = app.page(&session, "/ui/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("http://127.0.0.1:9/hooks?&lt;b&gt;"),
        "escaped URL"
    );
    assert!(html.contains("No Fourthwall subscriptions."));
    assert!(!html.contains("whsec_") && !html.contains("bearer-secret-token"));
    let (status, html) = app
        .page(&session, &format!("/ui/webhooks/{}", hook.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("fulfillment.updated"), "{html}");
    assert!(!html.contains("whsec_") && !html.contains("bearer-secret-token"));
    let deliveries = app
        .store
        .list_webhook_deliveries(
            store_id,
            waybill_store::DeliveryQuery::new(WebhookFlavor::Redo, 10),
        )
        .await
        .unwrap();
    let event = &deliveries[0].event_id;
    let token = csrf_in(&html).unwrap();
    let redeliver = |event: String, token: String| {
        app.client
            .post(app.url(&format!("/ui/webhooks/{}/redeliver", hook.id)))
            .header(COOKIE, format!("waybill_session={session}"))
            .form_body(&[("csrf", token), ("event_id", event)])
            .send()
    };
    let resp = redeliver(event.clone(), token.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&resp),
        format!("/ui/webhooks/{}?done=redelivered", hook.id)
    );
    let (_, html) = app.page(&session, &location(&resp)).await;
    assert!(html.contains("queued for delivery again"));
    let resp = redeliver("evt_unknown".into(), token.clone())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.page(&session, "/ui/webhooks/wh_nope").await.0,
        StatusCode::NOT_FOUND
    );

    // Automations and their runs.
    let automation = app
        .store
        .create_automation(
            store_id,
            NewAutomation {
                name: "Tell the customer <now>".into(),
                trigger: waybill_store::AutomationTrigger::Shipment(StatusOrEvent::Status(
                    ShipmentStatus::Delivered,
                )),
                carrier: None,
                action: AutomationAction::Email {
                    to: None,
                    subject: "Delivered".into(),
                    body: "<p>Here</p>".into(),
                },
                enabled: true,
                webhook_secret: "whsec_dGVzdHNlY3JldA==".into(),
            },
        )
        .await
        .unwrap();
    app.api(
        &seeded.secret,
        &format!("/v2.2/stores/{store_id}/orders/1001/fulfillments"),
        serde_json::json!({"fulfillmentId": "ful-2", "lineItems": [{"id": "line-2", "quantity": 1}]}),
    )
    .await;
    app.api(
        &seeded.secret,
        &format!("/v2.2/stores/{store_id}/orders/1001/fulfillments/ful-2/shipment-status"),
        serde_json::json!({"status": "delivered"}),
    )
    .await;
    let (status, html) = app.page(&session, "/ui/automations").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Tell the customer &lt;now&gt;"));
    let (status, html) = app
        .page(&session, &format!("/ui/automations/{}", automation.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("/fulfillments/ful-2\">ful-2</a>"), "{html}");
    assert_eq!(
        app.page(&session, "/ui/automations/nope").await.0,
        StatusCode::NOT_FOUND
    );

    // Whatever is asked for that does not exist is a 404 page, never a 500.
    for path in [
        "/ui/orders/nope",
        "/ui/orders/1001/fulfillments/nope",
        "/ui/orders/%00%FF/fulfillments/x",
        "/ui/orders/..%2F..%2Fetc",
        "/ui/webhooks/%00",
        "/ui/automations/%FF",
    ] {
        let (status, html) = app.page(&session, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains("<h1>404"), "{path}");
    }

    // Another store's session sees none of it.
    let (_, other_key) = app.store.create_store("Other").await.unwrap();
    let other = app.sign_in(&other_key.secret).await;
    assert_eq!(
        app.page(&other, "/ui/orders/1001").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.page(&other, &format!("/ui/webhooks/{}", hook.id))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, html) = app.page(&other, &format!("/ui/orders?q={TRACKING}")).await;
    assert!(html.contains("No orders match."));
}

#[tokio::test]
async fn hostile_order_data_is_escaped() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let nasty = "<img src=x onerror=alert(1)>\"'&";
    app.api(
        &seeded.secret,
        &format!("/v2.2/stores/{}/orders", seeded.store_id),
        serde_json::json!({
            "orderId": nasty,
            "createdAt": "2024-03-20T12:00:00Z",
            "customer": {"email": "<script>alert(1)</script>@x"},
            "lineItems": [{"id": "l", "productId": "p", "title": "<b>bold</b>", "quantity": 1}]
        }),
    )
    .await;
    let session = app.sign_in(&seeded.secret).await;
    let (_, list) = app.page(&session, "/ui/orders").await;
    let order = app
        .store
        .get_order(&seeded.store_id, &waybill_core::OrderRef::new(nasty))
        .await
        .unwrap();
    let (status, detail) = app
        .page(&session, &format!("/ui/orders/{}", order.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    for html in [&list, &detail] {
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
    }
    assert!(detail.contains("&lt;b&gt;bold&lt;/b&gt;"));
}

/// A multipart/form-data body with a CSRF field and a file.
fn upload(csrf: &str, csv: &str) -> (String, String) {
    let boundary = "waybill-test-boundary-7f3a";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_csv_uploaded_in_the_dashboard_is_imported_once_with_a_report() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let session = app.sign_in(&seeded.secret).await;
    let (status, html) = app.page(&session, "/ui/import").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("enctype=\"multipart/form-data\""), "{html}");
    let csrf = csrf_in(&html).unwrap();
    // Line 1 has one unit left, the mug one.
    let csv = "Order ID,SKU,Qty,Carrier,Tracking Number\n\
               1001,TEE-M,1,ups,1Z999AA10123456784\n\
               1001,MUG,1,USPS,9400111899223100000000\n\
               1001,TEE-M,5,UPS,1Z999AA10123456784\n\
               nope,MUG,1,UPS,X1\n";
    let post = |csrf: String| {
        let (content_type, body) = upload(&csrf, csv);
        app.client
            .post(app.url("/ui/import"))
            .header(COOKIE, format!("waybill_session={session}"))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let resp = post(csrf.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let report = resp.text().await.unwrap();
    assert!(
        report.contains("2 created, 0 already imported, 2 refused, of 4 rows"),
        "{report}"
    );
    assert!(
        report.contains("has 0 unit(s) left") || report.contains("left to fulfill"),
        "{report}"
    );
    assert!(
        report.contains("nope"),
        "the unknown order is named: {report}"
    );
    let order = app
        .store
        .get_order(&seeded.store_id, &waybill_core::OrderRef::new("1001"))
        .await
        .unwrap();
    assert_eq!(order.fulfillments.len(), 3);
    // Found by tracking number: the two imported fulfillments may share a creation millisecond,
    // and then their order is their ids'.
    let imported = order
        .fulfillments
        .iter()
        .find(|f| f.id.starts_with("imp_") && f.packages[0].tracking_number == "1Z999AA10123456784")
        .unwrap();
    assert_eq!(
        imported.packages[0].carrier.as_deref(),
        Some("UPS"),
        "normalised"
    );

    // The same file again creates nothing.
    let again = post(csrf).await.unwrap().text().await.unwrap();
    assert!(
        again.contains("0 created, 2 already imported, 2 refused"),
        "{again}"
    );
    let order = app
        .store
        .get_order(&seeded.store_id, &waybill_core::OrderRef::new("1001"))
        .await
        .unwrap();
    assert_eq!(order.fulfillments.len(), 3);
    // Without the session's token: 403, nothing imported.
    let resp = post("0".repeat(64)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
