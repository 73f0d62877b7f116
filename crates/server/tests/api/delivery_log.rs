//! The delivery log through both dialects, on real deliveries: a loopback receiver that
//! accepts one order's events and fails the other's, and one that answers 410 (which fails
//! its delivery and disables its webhook, leaving the rest `disabled`).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;
use crate::webhooks::{
    Answer, Receiver, fulfilled_order, loopback_app, start_dispatcher, subscribe, test_config,
};

/// GET with the tenant's secret and extra headers; status, `X-Page-Next` and JSON body.
async fn get_page(
    app: &TestApp,
    t: &Tenant,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<String>, Value) {
    let mut req = app
        .client
        .get(format!("{}{}", app.base, t.path(path)))
        .bearer_auth(&t.secret);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let next = resp
        .headers()
        .get("x-page-next")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, next, resp.json().await.expect("JSON body"))
}

/// Polls the webhook's delivery log until `done` holds for its entries.
async fn wait_log(
    app: &TestApp,
    t: &Tenant,
    id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = get_page(
            app,
            t,
            &format!("/webhooks/{id}/events"),
            &[("X-Page-Size", "100")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if done(&events) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn statuses(events: &Value) -> Vec<String> {
    events
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["status"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_shows_and_filters_real_deliveries() {
    let app = loopback_app().await;
    let t = app.tenant("log").await;
    // DL-2's events fail (500); everything else is accepted.
    let picky = Receiver::start(|_, body| {
        if body.to_string().contains("DL-2") {
            Answer::Status(500)
        } else {
            Answer::Ok
        }
    })
    .await;
    let gone = Receiver::start(|_, _| Answer::Status(410)).await;
    let (hook, _) = subscribe(&app, &t, &picky.url, "fulfillment").await;
    let (gone_hook, _) = subscribe(&app, &t, &gone.url, "fulfillment").await;
    let (status, fw) = app
        .send(
            Method::POST,
            "/open-api/v1.0/webhooks",
            Auth::Basic(&t.id, &t.secret),
            Some(json!({"url": picky.url, "allowedTypes": ["ORDER_PLACED", "ORDER_UPDATED"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fw}");
    let mut internal = Vec::new();
    for order in ["DL-1", "DL-2"] {
        let path = fulfilled_order(&app, &t, order).await;
        let (code, body) = app.post(&t, &path, json!({"status": "in_transit"})).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let (_, got) = app.get(&t, &format!("/orders/{order}")).await;
        internal.push(got["id"].as_str().map(str::to_owned));
    }

    // Every event is written before the dispatcher starts, so the 410 (which disables its
    // webhook, after which fan-out skips it) cannot come before all four are fanned out.
    // Two quick attempts, then the next one an hour away: a failing delivery stays pending.
    // A generous timeout: a slow answer under load must not count as a failure here.
    let mut config = test_config();
    config.timeout = Duration::from_secs(5);
    config.lease = Duration::from_secs(10);
    config.schedule = vec![
        Duration::ZERO,
        Duration::from_millis(10),
        Duration::from_secs(3600),
    ];
    let _dispatcher = start_dispatcher(app.store.clone(), config);

    // DL-1: both delivered; DL-2: its first event failed twice and waits, its second waits
    // behind it.
    wait_log(
        &app,
        &t,
        &hook,
        "DL-1 delivered and DL-2 retried",
        |events| {
            events.len() == 4
                && events.iter().filter(|e| e["status"] == "delivered").count() == 2
                && events
                    .iter()
                    .any(|e| e["attempts"] == 2 && e["status"] == "pending")
        },
    )
    .await;
    let (status, next, all) = get_page(&app, &t, &format!("/webhooks/{hook}/events"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(next, None);
    let events = all["events"].as_array().expect("events");
    let ids: Vec<i64> = events
        .iter()
        .map(|e| {
            e["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("numeric id")
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    for e in events {
        let delivered = e["orderId"] == "DL-1";
        assert_eq!(
            e["status"],
            if delivered { "delivered" } else { "pending" },
            "{e:#}"
        );
        assert!(
            e["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("fulfillment.")),
            "{e:#}"
        );
        assert!(e["eventId"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(
            e["internalOrderId"]
                .as_str()
                .is_some_and(|s| s != "DL-1" && s != "DL-2")
        );
        if delivered {
            assert_eq!(e["lastResponseCode"], 200, "{e:#}");
            assert_eq!(e["nextAttemptAt"], Value::Null, "{e:#}");
            assert_eq!(e["attempts"], 1);
        } else {
            assert!(e["nextAttemptAt"].is_string(), "{e:#}");
        }
    }
    let retried = events
        .iter()
        .find(|e| e["attempts"] == 2)
        .expect("the retried one");
    assert_eq!(retried["lastResponseCode"], 500);
    assert_eq!(retried["lastError"], "HTTP 500");
    assert_eq!(
        retried["seq"], 2,
        "DL-2's fulfillment.created (seq 1 is order.created)"
    );
    let held = events
        .iter()
        .find(|e| e["orderId"] == "DL-2" && e["attempts"] == 0)
        .expect("the held-back one");
    assert_eq!(held["lastResponseCode"], Value::Null);

    // Filters: status, order (external or internal id), both.
    let log = |query: String| {
        let (app, t, hook) = (&app, &t, &hook);
        async move {
            let (status, _, body) =
                get_page(app, t, &format!("/webhooks/{hook}/events{query}"), &[]).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body["events"].clone()
        }
    };
    let delivered = log("?status=delivered".into()).await;
    assert_eq!(statuses(&delivered), ["delivered", "delivered"]);
    assert!(
        delivered
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["orderId"] == "DL-1")
    );
    let pending = log("?status=pending".into()).await;
    assert_eq!(statuses(&pending), ["pending", "pending"]);
    assert!(
        log("?status=failed".into())
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let dl2 = log("?order=DL-2".into()).await;
    assert_eq!(dl2, pending);
    let dl1_internal = internal[0].clone().expect("DL-1's id");
    assert!(
        delivered
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["internalOrderId"] == dl1_internal.as_str()),
        "{delivered:#}"
    );
    let by_internal = log(format!("?order={dl1_internal}")).await;
    assert_eq!(by_internal, delivered);
    assert!(
        log("?order=DL-1&status=pending".into())
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        log("?order=nope".into())
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Paging keeps the filter.
    let path = format!("/webhooks/{hook}/events?status=delivered");
    let (_, next, first) = get_page(&app, &t, &path, &[("X-Page-Size", "1")]).await;
    let next = next.expect("a second page");
    let (_, after, second) = get_page(
        &app,
        &t,
        &path,
        &[("X-Page-Size", "1"), ("X-Page-Continue", &next)],
    )
    .await;
    assert_eq!(after, None);
    assert_eq!(
        json!([first["events"][0], second["events"][0]]),
        delivered,
        "two pages make the filtered list"
    );

    // Bad input: 400 {"error"} naming the parameter and what it takes.
    for (query, headers, needle) in [
        (
            "?status=in_flight",
            vec![],
            "status must be one of pending, delivered, failed, disabled",
        ),
        ("?status=", vec![], "status must be one of"),
        ("?order=", vec![], "order"),
        ("", vec![("X-Page-Continue", "abc")], "X-Page-Continue"),
        ("", vec![("X-Page-Size", "0")], "X-Page-Size"),
    ] {
        let (status, _, body) = get_page(
            &app,
            &t,
            &format!("/webhooks/{hook}/events{query}"),
            &headers,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{query}: {body}");
    }
    // Unknown webhook; another store's webhook; another store's path.
    let (status, _, body) = get_page(&app, &t, "/webhooks/wh_nope/events", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let other = app.tenant("log-other").await;
    let (status, _, body) = get_page(&app, &other, &format!("/webhooks/{hook}/events"), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .call(
            Method::GET,
            &t.path(&format!("/webhooks/{hook}/events")),
            Some(&other.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // The 410 failed its delivery and disabled the webhook: the rest show as disabled.
    wait_log(
        &app,
        &t,
        &gone_hook,
        "the 410 to disable the webhook",
        |events| {
            events.len() == 4
                && events.iter().any(|e| e["status"] == "failed")
                && events
                    .iter()
                    .all(|e| e["status"] == "failed" || e["status"] == "disabled")
        },
    )
    .await;
    let failed = log_of(&app, &t, &gone_hook, "?status=failed").await;
    assert!(!failed.is_empty());
    assert!(
        failed
            .iter()
            .all(|e| e["lastResponseCode"] == 410 && e["nextAttemptAt"].is_null())
    );
    let disabled = log_of(&app, &t, &gone_hook, "?status=disabled").await;
    assert_eq!(failed.len() + disabled.len(), 4);
    assert!(disabled.iter().all(|e| e["nextAttemptAt"].is_null()));

    // The attempt log keeps its old endpoint and shape.
    let (status, _, attempts) =
        get_page(&app, &t, &format!("/webhooks/{hook}/deliveries"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{attempts}");
    assert!(
        attempts["deliveries"]
            .as_array()
            .is_some_and(|a| a.len() >= 4)
    );

    // Fourthwall: the same log, paged by number and filtered by type, status and order.
    let fw_id = fw["id"].as_str().expect("webhook id").to_owned();
    let fw_list = |query: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            app.send(
                Method::GET,
                &format!("/open-api/v1.0/webhook-events{query}"),
                Auth::Basic(&t.id, &t.secret),
                None,
            )
            .await
        }
    };
    // ORDER_PLACED twice (DL-2's fails), ORDER_UPDATED four times (2 fulfillments, 2 updates).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = fw_list("?status=delivered&type=ORDER_PLACED").await;
        if body["total"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "Fourthwall deliveries: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, all) = fw_list("").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 6, "{all:#}");
    assert_eq!(all["page"], 0);
    assert_eq!(all["size"], 100);
    assert_eq!(all["totalPages"], 1);
    assert!(
        all["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["webhookId"] == fw_id.as_str())
    );
    let (_, placed) = fw_list("?type=ORDER_PLACED").await;
    assert_eq!(placed["total"], 2);
    assert!(
        placed["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "ORDER_PLACED")
    );
    let (_, page) = fw_list("?type=ORDER_UPDATED&size=3&page=1").await;
    assert_eq!(
        (page["total"].clone(), page["totalPages"].clone()),
        (json!(4), json!(2))
    );
    assert_eq!(page["results"].as_array().map(Vec::len), Some(1));
    assert!(page["results"][0]["type"] == "ORDER_UPDATED");
    let (_, dl2) = fw_list("?order=DL-2&type=ORDER_PLACED").await;
    assert_eq!(dl2["total"], 1, "{dl2:#}");
    let e = &dl2["results"][0];
    assert_eq!(e["orderFriendlyId"], "DL-2");
    assert_eq!(e["status"], "pending");
    assert_eq!(e["lastResponseCode"], 500);
    for (query, needle) in [
        (
            "?type=GIFT_PURCHASE",
            "type must be one of ORDER_PLACED, ORDER_UPDATED",
        ),
        (
            "?status=in_flight",
            "status must be one of pending, delivered, failed, disabled",
        ),
        ("?size=0", "size"),
        ("?page=-1", "page"),
    ] {
        let (status, body) = fw_list(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["code"], "INVALID_REQUEST", "{query}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains(needle)),
            "{query}: {body}"
        );
    }
    // Another store sees none of it.
    let (status, theirs) = app
        .send(
            Method::GET,
            "/open-api/v1.0/webhook-events",
            Auth::Basic(&other.id, &other.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(theirs["total"], 0, "{theirs}");
}

async fn log_of(app: &TestApp, t: &Tenant, hook: &str, query: &str) -> Vec<Value> {
    let (status, _, body) = get_page(app, t, &format!("/webhooks/{hook}/events{query}"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"].as_array().cloned().unwrap_or_default()
}
