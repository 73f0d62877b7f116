//! The dashboard's webhook pages over plain HTTP: creating, editing, disabling, re-enabling,
//! rotating and deleting subscriptions through the forms (each refused without its CSRF token,
//! each refused with a clear error on bad input, none reachable from another store), and the
//! delivery log's filters and paging.

use reqwest::StatusCode;
use serde_json::json;
use waybill_store::{NewWebhook, WebhookFlavor, WebhookRecord};

use crate::harness::{App, csrf_in};

async fn redo_hooks(app: &App, store_id: &str) -> Vec<WebhookRecord> {
    app.store
        .list_webhooks(store_id, WebhookFlavor::Redo)
        .await
        .expect("list")
}

/// How many rows the delivery log shows (each has a Redeliver form).
fn log_rows(html: &str) -> usize {
    html.matches("name=\"event_id\"").count()
}

/// The first `href` in the page that starts with `prefix` (entities decoded).
fn href_starting(html: &str, prefix: &str) -> Option<String> {
    let needle = format!("href=\"{}", prefix.replace('&', "&amp;"));
    let start = html.find(&needle)? + "href=\"".len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].replace("&amp;", "&"))
}

#[tokio::test]
async fn subscriptions_are_created_edited_disabled_rotated_and_deleted_through_forms() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let session = app.sign_in(&seeded.secret).await;
    let store_id = seeded.store_id.as_str();
    let (status, html) = app.page(&session, "/ui/webhooks/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<label for=\"redo-url\">Callback URL</label>"),
        "{html}"
    );
    let csrf = csrf_in(&html).expect("token");
    let create = |pairs: Vec<(&'static str, String)>| {
        let (app, session) = (&app, &session);
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_form(session, "/ui/webhooks", &pairs).await
        }
    };
    let redo = |csrf: &str, url: &str, topic: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("flavor", "redo".to_owned()),
            ("url", url.to_owned()),
            ("topic", topic.to_owned()),
            ("bearer", "tok-123".to_owned()),
        ]
    };

    // Without the token, with a bad URL or a bad topic: refused, and nothing is created.
    let (status, _, _) = create(redo("", "http://127.0.0.1:9/hook", "order")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (url, topic, message) in [
        ("ftp://example.com/hook", "order", "Callback URL:"),
        ("not a url", "order", "Callback URL:"),
        ("", "order", "Callback URL: enter"),
        (
            "http://127.0.0.1:9/hook",
            "shipping",
            "Topic: choose one of order, fulfillment, return.",
        ),
    ] {
        let (status, _, html) = create(redo(&csrf, url, topic)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url} {topic}");
        assert!(html.contains(message), "{message} not in {html}");
        assert!(html.contains("role=\"alert\""), "{html}");
    }
    assert!(redo_hooks(&app, store_id).await.is_empty());

    // Created: the page shows the signing secret once, and the store has it.
    let (status, _, html) = create(redo(&csrf, "http://127.0.0.1:9/hook", "fulfillment")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let hooks = redo_hooks(&app, store_id).await;
    assert_eq!(hooks.len(), 1);
    let hook = hooks[0].clone();
    assert_eq!(hook.url, "http://127.0.0.1:9/hook");
    assert_eq!(hook.topics, ["fulfillment"]);
    assert_eq!(hook.bearer_token.as_deref(), Some("tok-123"));
    assert!(html.contains(&hook.secret), "the new secret is shown");
    assert!(!html.contains("tok-123"), "the bearer token is never shown");
    let page_path = format!("/ui/webhooks/{}", hook.id);
    let (_, html) = app.page(&session, &page_path).await;
    assert!(!html.contains(&hook.secret), "and shown only once");
    let (_, list) = app.page(&session, "/ui/webhooks").await;
    assert!(
        list.contains("http://127.0.0.1:9/hook") && list.contains("Never"),
        "{list}"
    );

    // Another store's session finds none of it, through any route, and changes nothing.
    let (other, other_key) = app.store.create_store("Other shop").await.expect("store");
    let intruder = app.sign_in(&other_key.secret).await;
    let (_, their_page) = app.page(&intruder, "/ui/webhooks").await;
    assert!(!their_page.contains("127.0.0.1:9"), "{their_page}");
    let their_csrf = csrf_in(&their_page).expect("token");
    for path in [page_path.clone(), format!("{page_path}/delete")] {
        assert_eq!(
            app.page(&intruder, &path).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    for (path, extra) in [
        (
            page_path.clone(),
            vec![("url", "http://127.0.0.1:9/x"), ("topic", "order")],
        ),
        (format!("{page_path}/enabled"), vec![("enabled", "false")]),
        (format!("{page_path}/rotate"), vec![]),
        (format!("{page_path}/delete"), vec![("confirm", "yes")]),
        (format!("{page_path}/redeliver"), vec![("event_id", "evt")]),
    ] {
        let mut pairs = vec![("csrf", their_csrf.as_str())];
        pairs.extend(extra);
        let (status, _, _) = app.post_form(&intruder, &path, &pairs).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        redo_hooks(&app, store_id).await,
        vec![hook.clone()],
        "unchanged"
    );
    assert!(redo_hooks(&app, &other.id).await.is_empty());

    // Every state-changing form without the token: 403, nothing changes.
    for (path, extra) in [
        (
            page_path.clone(),
            vec![("url", "http://127.0.0.1:9/x"), ("topic", "order")],
        ),
        (format!("{page_path}/enabled"), vec![("enabled", "false")]),
        (format!("{page_path}/rotate"), vec![]),
        (format!("{page_path}/delete"), vec![("confirm", "yes")]),
    ] {
        let (status, _, _) = app.post_form(&session, &path, &extra).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        let mut wrong = vec![("csrf", their_csrf.as_str())];
        wrong.extend(extra);
        let (status, _, _) = app.post_form(&session, &path, &wrong).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{path} with another session's token"
        );
    }
    assert_eq!(
        redo_hooks(&app, store_id).await,
        vec![hook.clone()],
        "unchanged"
    );

    // Edit: a bad URL is refused with the form kept; a good one is saved (the token stays).
    let (status, _, html) = app
        .post_form(
            &session,
            &page_path,
            &[("csrf", &csrf), ("url", "http://"), ("topic", "order")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("Callback URL:") && html.contains("aria-invalid=\"true\""),
        "{html}"
    );
    assert_eq!(
        redo_hooks(&app, store_id).await,
        vec![hook.clone()],
        "unchanged"
    );
    let (status, location, _) = app
        .post_form(
            &session,
            &page_path,
            &[
                ("csrf", &csrf),
                ("url", "http://127.0.0.1:9/edited"),
                ("topic", "order"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("{page_path}?done=updated"));
    let edited = app
        .store
        .get_webhook(store_id, &hook.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.url, "http://127.0.0.1:9/edited");
    assert_eq!(edited.topics, ["order"]);
    assert_eq!(edited.bearer_token.as_deref(), Some("tok-123"));

    // Disable, then enable again.
    let (status, _, _) = app
        .post_form(
            &session,
            &format!("{page_path}/enabled"),
            &[("csrf", &csrf), ("enabled", "false")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let disabled = app
        .store
        .get_webhook(store_id, &hook.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!disabled.enabled);
    let (_, html) = app
        .page(&session, &format!("{page_path}?done=disabled"))
        .await;
    assert!(
        html.contains("Disabled: disabled by the store") && html.contains("Enable again"),
        "{html}"
    );
    let (_, list) = app.page(&session, "/ui/webhooks").await;
    assert!(list.contains("badge failed\">Disabled"), "{list}");
    app.post_form(
        &session,
        &format!("{page_path}/enabled"),
        &[("csrf", &csrf), ("enabled", "true")],
    )
    .await;
    assert!(
        app.store
            .get_webhook(store_id, &hook.id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );

    // Rotate: a new secret, shown once; the old one signs beside it for a while.
    let (status, _, html) = app
        .post_form(&session, &format!("{page_path}/rotate"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let rotated = app
        .store
        .get_webhook(store_id, &hook.id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(rotated.secret, hook.secret);
    assert_eq!(
        rotated.previous_secret.as_deref(),
        Some(hook.secret.as_str())
    );
    assert!(
        html.contains(&rotated.secret) && html.contains("New signing secret"),
        "{html}"
    );

    // Fourthwall: types are checked; the store's secret is shown; there is nothing to rotate.
    let fw = |types: &[&str]| {
        let mut pairs = vec![
            ("csrf", csrf.clone()),
            ("flavor", "fourthwall".to_owned()),
            ("url", "http://127.0.0.1:9/fw".to_owned()),
        ];
        pairs.extend(types.iter().map(|t| ("type", (*t).to_owned())));
        pairs
    };
    let (status, _, html) = create(fw(&[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Event types: choose at least one."), "{html}");
    let (status, _, html) = create(fw(&["order placed"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("is not an event type"), "{html}");
    let (status, _, html) = create(fw(&["ORDER_PLACED", "ORDER_UPDATED"])).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let store_secret = app
        .store
        .store_webhook_secret(store_id, "unused")
        .await
        .unwrap();
    assert!(html.contains(&store_secret), "{html}");
    let fw_hooks = app
        .store
        .list_webhooks(store_id, WebhookFlavor::Fourthwall)
        .await
        .unwrap();
    assert_eq!(fw_hooks.len(), 1);
    assert_eq!(fw_hooks[0].topics, ["ORDER_PLACED", "ORDER_UPDATED"]);
    let (status, _, _) = app
        .post_form(
            &session,
            &format!("/ui/webhooks/{}/rotate", fw_hooks[0].id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Delete: a confirmation step first; without its confirmation nothing is deleted.
    let (status, html) = app.page(&session, &format!("{page_path}/delete")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Delete this subscription?") && html.contains("http://127.0.0.1:9/edited")
    );
    let (status, _, _) = app
        .post_form(&session, &format!("{page_path}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(redo_hooks(&app, store_id).await.len(), 1);
    let (status, location, _) = app
        .post_form(
            &session,
            &format!("{page_path}/delete"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/ui/webhooks?done=deleted");
    assert!(redo_hooks(&app, store_id).await.is_empty());
    assert_eq!(
        app.page(&session, &page_path).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_delivery_log_is_filtered_and_paged_with_its_filters() {
    let app = App::spawn().await;
    let seeded = app.seed().await;
    let session = app.sign_in(&seeded.secret).await;
    let (hook, _) = app
        .store
        .create_webhook(
            &seeded.store_id,
            NewWebhook {
                flavor: WebhookFlavor::Redo,
                url: "http://127.0.0.1:9/hook".into(),
                topics: vec!["fulfillment".into()],
                external_id: None,
                bearer_token: None,
                secret: "whsec_AAAA".into(),
            },
        )
        .await
        .expect("webhook");
    let status_path = format!(
        "/v2.2/stores/{}/orders/{}/fulfillments/{}/shipment-status",
        seeded.store_id, seeded.order, seeded.fulfillment
    );
    for _ in 0..53 {
        app.api(
            &seeded.secret,
            &status_path,
            json!({"status": "out_for_delivery"}),
        )
        .await;
    }
    // One delivered, one failing and waiting for a retry, the rest held back behind it.
    assert_eq!(app.play_deliveries(&hook.id).await, (1, 1));
    let page_path = format!("/ui/webhooks/{}", hook.id);

    let (status, html) = app.page(&session, &page_path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log_rows(&html), 50, "a page of 50");
    assert!(
        html.contains("<label for=\"status\">Status</label>"),
        "{html}"
    );
    assert!(
        html.contains(">1001</a>"),
        "the order's own id is shown: {html}"
    );
    let (_, html) = app
        .page(&session, &format!("{page_path}?status=delivered"))
        .await;
    assert_eq!(log_rows(&html), 1);
    assert!(
        html.contains("badge delivered") && !html.contains("badge pending\""),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"delivered\" selected>"),
        "{html}"
    );
    let (_, html) = app
        .page(&session, &format!("{page_path}?status=failed"))
        .await;
    assert_eq!(log_rows(&html), 0);
    assert!(html.contains("No deliveries match."), "{html}");
    let (_, html) = app
        .page(&session, &format!("{page_path}?status=pending&order=1001"))
        .await;
    assert_eq!(log_rows(&html), 50);
    assert!(!html.contains("badge delivered"), "{html}");
    assert!(
        html.contains("badge failed\">500"),
        "the failing one's response: {html}"
    );
    // Paging keeps the filters.
    let older = href_starting(
        &html,
        &format!("{page_path}?status=pending&order=1001&before="),
    )
    .expect("an Older link with the filters");
    let pending = app
        .store
        .count_webhook_deliveries(
            &seeded.store_id,
            waybill_store::DeliveryQuery {
                webhook_id: Some(hook.id.clone()),
                status: Some(waybill_store::DeliveryState::Pending),
                ..waybill_store::DeliveryQuery::new(WebhookFlavor::Redo, 1)
            },
        )
        .await
        .expect("count");
    assert!((51..100).contains(&pending), "{pending}");
    let (_, html) = app.page(&session, &older).await;
    assert_eq!(
        log_rows(&html) as u64,
        pending - 50,
        "the rest of the pending ones"
    );
    assert!(!html.contains("badge delivered"), "{html}");
    let newest = href_starting(&html, &format!("{page_path}?status=pending&order=1001#log"))
        .expect("a Newest link with the filters");
    assert!(!newest.contains("before="), "{newest}");
    assert!(
        href_starting(
            &html,
            &format!("{page_path}?status=pending&order=1001&before=")
        )
        .is_none()
    );
    let (_, html) = app.page(&session, &format!("{page_path}?order=nope")).await;
    assert_eq!(log_rows(&html), 0);
    // Values a form could not send are ignored, not errors.
    let (status, html) = app
        .page(&session, &format!("{page_path}?status=bogus&before=x"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log_rows(&html), 50);
}
