//! Idempotency keys, per-key limits and webhook secret rotation.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use waybill_server::limits::LimitSettings;
use waybill_server::webhooks::UrlPolicy;

use crate::common::*;
use crate::webhooks::{Answer, Receiver, start_dispatcher, test_config};

async fn post_keyed(
    app: &TestApp,
    secret: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Option<String>, Value) {
    let resp = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(secret)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let replayed = resp
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, replayed, resp.json().await.unwrap())
}

async fn order_count(app: &TestApp, t: &Tenant) -> u64 {
    app.store
        .list_orders(
            &t.id,
            waybill_store::OrderQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .total
}

#[tokio::test]
async fn a_repeated_key_replays_the_first_answer_and_a_changed_request_is_refused() {
    let app = TestApp::spawn().await;
    let t = app.tenant("idem").await;
    let body = order_body("K1", 3);
    let path = t.path("/orders");
    let (status, replayed, first) = post_keyed(&app, &t.secret, &path, "key-1", &body).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(replayed.as_deref(), Some("false"));
    let (status, replayed, again) = post_keyed(&app, &t.secret, &path, "key-1", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(again, first, "the same answer, byte for byte");
    assert_eq!(order_count(&app, &t).await, 1);

    // A 4xx answer is stored and replayed too.
    let (status, _, refused) = post_keyed(&app, &t.secret, &path, "key-2", &body).await;
    assert_error(status, &refused, StatusCode::CONFLICT);
    let (status, replayed, refused_again) =
        post_keyed(&app, &t.secret, &path, "key-2", &body).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::CONFLICT, Some("true"))
    );
    assert_eq!(refused_again, refused);

    // The same key with another request: 422 in the dialect's format, nothing created.
    let (status, _, mismatch) =
        post_keyed(&app, &t.secret, &path, "key-1", &order_body("K2", 1)).await;
    let message = assert_error(status, &mismatch, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("different request"), "{message}");
    assert_eq!(order_count(&app, &t).await, 1);

    // A fulfillment without an id of the caller's: one fulfillment, units counted once.
    let f = json!({"lineItems": [{"id": "line-1", "quantity": 2}]});
    let fpath = t.path("/orders/K1/fulfillments");
    let (s1, _, a) = post_keyed(&app, &t.secret, &fpath, "ful-1", &f).await;
    let (s2, _, b) = post_keyed(&app, &t.secret, &fpath, "ful-1", &f).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a["fulfillment"]["id"], b["fulfillment"]["id"]);
    let (_, order) = app.get(&t, "/orders/K1").await;
    assert_eq!(order["lineItems"][0]["fulfilledQuantity"], 2);
    assert_eq!(order["fulfillments"].as_array().unwrap().len(), 1);

    // Keys belong to their store.
    let other = app.tenant("other").await;
    let (status, replayed, theirs) =
        post_keyed(&app, &other.secret, &other.path("/orders"), "key-1", &body).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::OK, Some("false")),
        "{theirs}"
    );

    // A bad key is refused before anything runs.
    let long = "k".repeat(256);
    let (status, _, bad) = post_keyed(&app, &t.secret, &path, &long, &order_body("K3", 1)).await;
    assert_error(status, &bad, StatusCode::BAD_REQUEST);
    assert_eq!(order_count(&app, &t).await, 1);

    // Expired keys are purged; the key is then free for a new request.
    let later = waybill_core::time::now() + chrono::Duration::hours(25);
    assert!(app.store.purge_idempotency_keys(later).await.unwrap() >= 3);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_run_once() {
    let app = TestApp::spawn().await;
    let t = app.tenant("race").await;
    let body = order_body("R1", 1);
    let path = t.path("/orders");
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (app_base, client, secret, path, body) = (
                app.base.clone(),
                app.client.clone(),
                t.secret.clone(),
                path.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                let resp = client
                    .post(format!("{app_base}{path}"))
                    .bearer_auth(secret)
                    .header("Idempotency-Key", "same")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                (status, resp.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut ok = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => ok.push(body),
            StatusCode::CONFLICT => {
                let message = assert_error(status, &body, StatusCode::CONFLICT);
                assert!(message.contains("in progress"), "{message}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!ok.is_empty());
    assert!(
        ok.windows(2).all(|w| w[0] == w[1]),
        "every success is the same answer"
    );
    assert_eq!(order_count(&app, &t).await, 1);
}

#[tokio::test]
async fn other_dialects_answer_idempotency_errors_in_their_format() {
    let app = TestApp::spawn().await;
    let t = app.tenant("formats").await;
    let op = |id: &str| {
        json!({"sourceOrderId": id, "sourceOrderNumber": id, "currency": "USD", "total": 1,
               "customerEmail": "a@example.com",
               "orderItems": [{"sourceItemId": "i1", "productName": "Mug", "sku": "M", "quantity": 1, "price": 1}]})
    };
    let (status, _, body) = post_keyed(&app, &t.secret, "/v1/orders", "op-1", &op("OP1")).await;
    assert!(status.is_success(), "{status} {body}");
    let (status, _, body) = post_keyed(&app, &t.secret, "/v1/orders", "op-1", &op("OP2")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["status"], "error", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
}

#[tokio::test]
async fn a_key_over_its_rate_is_told_when_to_retry() {
    let app = TestApp::spawn_configured(|s| {
        s.with_limits(LimitSettings {
            rate_per_second: 2,
            burst: 3,
            ..LimitSettings::default()
        })
    })
    .await;
    let t = app.tenant("limited").await;
    let other = app.tenant("unlimited").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let resp = app
            .client
            .get(format!("{}{}", app.base, t.path("/orders")))
            .bearer_auth(&t.secret)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status());
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
            // Redo answers 429 under the seeds' `default` response: problem details.
            assert_eq!(
                resp.headers()["content-type"],
                "application/problem+json",
                "429 content type"
            );
            let body: Value = resp.json().await.unwrap();
            assert!(
                body["detail"].as_str().unwrap().contains("rate limit"),
                "{body}"
            );
        }
    }
    assert_eq!(&statuses[..3], [StatusCode::OK; 3], "the burst passes");
    assert!(
        statuses[3..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Another key has its own budget.
    let (status, _) = app.get(&other, "/orders").await;
    assert_eq!(status, StatusCode::OK);
    // Oversized headers: 431.
    let resp = app
        .client
        .get(format!("{}{}", app.base, other.path("/orders")))
        .bearer_auth(&other.secret)
        .header("x-padding", "p".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

fn sign(secret: &str, msg: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(msg);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn a_rotated_webhook_secret_signs_beside_the_old_one_during_the_overlap() {
    let app = TestApp::spawn_with(UrlPolicy::allow_all()).await;
    let t = app.tenant("rotate").await;
    let receiver = Receiver::start(|_, _| Answer::Ok).await;
    let (status, created) = app
        .post(
            &t,
            "/webhooks",
            json!({"webhook": {"callback": {"url": receiver.url}, "topic": "order"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    let old = created["webhook"]["secret"].as_str().unwrap().to_owned();
    let (status, rotated) = app
        .post(
            &t,
            &format!("/webhooks/{id}/rotate-secret"),
            json!({"overlapHours": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["webhook"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let (status, body) = app
        .post(
            &t,
            &format!("/webhooks/{id}/rotate-secret"),
            json!({"overlapHours": 0}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .call(
            Method::POST,
            &t.path("/webhooks/wh_nope/rotate-secret"),
            Some(&t.secret),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    let dispatcher = start_dispatcher(app.store.clone(), test_config());
    app.order(&t, "W1", 1).await;
    receiver
        .wait_for("a delivery", Duration::from_secs(10), |r| {
            r.iter().any(|x| x.ok)
        })
        .await;
    dispatcher.abort();
    let r = &receiver.all()[0];
    let mut msg = format!(
        "{}.{}.",
        r.header("webhook-id"),
        r.header("webhook-timestamp")
    )
    .into_bytes();
    msg.extend_from_slice(&r.body);
    let signatures: Vec<&str> = r.header("webhook-signature").split(' ').collect();
    assert_eq!(
        signatures,
        [sign(&new, &msg), sign(&old, &msg)],
        "new first, then old"
    );
}

#[tokio::test]
async fn a_store_in_flight_bound_counts_all_its_keys() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_configured(|s| {
        s.with_limits(LimitSettings {
            max_in_flight_per_store: 1,
            ..LimitSettings::default()
        })
    })
    .await;
    let t = app.tenant("busy").await;
    let second_key = app.store.create_api_key(&t.id).await.unwrap().secret;
    let other = app.tenant("calm").await;
    // Each key's store is learned on its first request.
    for secret in [&t.secret, &second_key] {
        let (status, _) = app
            .call(Method::GET, &t.path("/orders"), Some(secret), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // A request whose body is still arriving holds the store's only slot.
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut held = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{{",
        t.path("/orders"),
        t.secret
    );
    held.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = app
        .call(Method::GET, &t.path("/orders"), Some(&second_key), None)
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the store's other key: {body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("in flight"),
        "{body}"
    );
    let (status, _) = app.get(&other, "/orders").await;
    assert_eq!(status, StatusCode::OK, "another store is not held back");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = app
        .call(Method::GET, &t.path("/orders"), Some(&second_key), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the slot is free once the request ends"
    );
}
