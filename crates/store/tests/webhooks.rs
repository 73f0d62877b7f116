//! The webhook part of the `Store` contract: fan-out, per-order claiming, leases, fencing,
//! retries, failure, disabling, replay. On a real SQLite file, or on PostgreSQL when
//! `WAYBILL_TEST_POSTGRES_URL` is set: both backends pass the same test.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use waybill_core::{NewOrder, OrderDetails, OrderRef, Timestamp, time};
use waybill_store::testing::{Backend, TestDatabase};
use waybill_store::{
    AttemptLog, AttemptQuery, ClaimedDelivery, DeliveryNext, DeliveryResult, NewWebhook,
    OrderUpdate, Store, WebhookFlavor, WebhookHealth,
};

fn order(id: &str) -> NewOrder {
    waybill_store::testing::one_line_order(id, 1)
}

fn result(d: &ClaimedDelivery, next: DeliveryNext, health: WebhookHealth) -> DeliveryResult {
    DeliveryResult {
        delivery_id: d.delivery_id,
        claim: d.claim,
        webhook_id: d.webhook.id.clone(),
        attempt: AttemptLog {
            at: time::now(),
            status_code: Some(if next == DeliveryNext::Delivered {
                200
            } else {
                500
            }),
            latency_ms: 3,
            error: None,
            response_excerpt: Some("body".into()),
        },
        next,
        health,
        payload: Some(format!("{{\"seq\":{}}}", d.event.seq)),
    }
}

fn at(base: Timestamp, ms: i64) -> Timestamp {
    base + chrono::Duration::milliseconds(ms)
}

#[tokio::test]
async fn fan_out_claim_lease_retry_fail_disable() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let (other, _) = store.create_store("other").await.unwrap();
    let (hook, created) = store
        .create_webhook(
            &shop.id,
            NewWebhook {
                flavor: WebhookFlavor::Redo,
                url: "http://example.com/h".into(),
                topics: vec!["order".into()],
                external_id: Some("x".into()),
                bearer_token: None,
                secret: "whsec_AAAA".into(),
            },
        )
        .await
        .unwrap();
    assert!(created);
    // Another store's events never reach this subscription.
    store
        .create_order(&other.id, order("O-other"))
        .await
        .unwrap();
    let o = store.create_order(&shop.id, order("O-1")).await.unwrap();
    let r = OrderRef::new(o.id.to_string());
    for _ in 0..2 {
        store
            .update_order(
                &shop.id,
                &r,
                OrderUpdate {
                    created_at: None,
                    details: OrderDetails::default(),
                    line_items: vec![],
                },
            )
            .await
            .unwrap();
    }
    let now = Utc::now();
    // Four events in the outbox (one of the other store), read in two batches.
    let fan = |limit| store.fan_out_webhook_events("c", limit, now);
    assert_eq!(fan(3).await.unwrap(), 3);
    assert_eq!(fan(3).await.unwrap(), 1);
    assert_eq!(fan(3).await.unwrap(), 0);
    // A second cursor re-reads the outbox (SQLite) or finds every event already fanned out
    // (PostgreSQL marks rows instead of keeping cursors); either way nothing is inserted twice,
    // as the claims below show.
    let again = store.fan_out_webhook_events("d", 100, now).await.unwrap();
    match Backend::from_env() {
        Backend::Sqlite => assert_eq!(again, 4),
        Backend::Postgres => assert_eq!(again, 0),
    }

    let lease = Duration::from_secs(1);
    let first = store
        .claim_webhook_deliveries(now, 10, lease)
        .await
        .unwrap();
    assert_eq!(
        first.len(),
        1,
        "only the lowest seq of the order is claimable"
    );
    assert_eq!(first[0].event.seq, 1);
    assert_eq!(first[0].event.event_type, "order.created");
    assert_eq!(first[0].attempt, 1);
    assert!(
        store
            .claim_webhook_deliveries(now, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );

    // The lease expires: another worker takes the same delivery over.
    let later = at(now, 1500);
    let again = store
        .claim_webhook_deliveries(later, 10, lease)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery_id, first[0].delivery_id);
    assert_eq!(again[0].attempt, 2);
    assert!(again[0].claim > first[0].claim);
    // The first worker's late answer is fenced off; the second one's counts.
    let stale = result(&first[0], DeliveryNext::Delivered, WebhookHealth::Healthy);
    assert!(!store.finish_webhook_delivery(stale, later).await.unwrap());
    let done = result(&again[0], DeliveryNext::Delivered, WebhookHealth::Healthy);
    assert!(store.finish_webhook_delivery(done, later).await.unwrap());

    // seq 2 fails and is retried later; meanwhile seq 3 waits.
    let second = store
        .claim_webhook_deliveries(later, 10, lease)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].event.seq, 2);
    assert_eq!(second[0].payload, None);
    let retry_at = at(later, 10_000);
    let failing = result(
        &second[0],
        DeliveryNext::RetryAt(retry_at),
        WebhookHealth::Failing,
    );
    assert!(store.finish_webhook_delivery(failing, later).await.unwrap());
    assert!(
        store
            .claim_webhook_deliveries(at(later, 9_000), 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = store
        .claim_webhook_deliveries(retry_at, 10, lease)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].event.seq, 2);
    assert_eq!(
        retried[0].payload.as_deref(),
        Some("{\"seq\":2}"),
        "the first body is kept"
    );
    assert!(retried[0].webhook.failing_since.is_some());
    // Out of attempts: failed, and the order's next event goes on.
    let failed = result(&retried[0], DeliveryNext::Failed, WebhookHealth::Failing);
    assert!(
        store
            .finish_webhook_delivery(failed, retry_at)
            .await
            .unwrap()
    );
    let third = store
        .claim_webhook_deliveries(retry_at, 10, lease)
        .await
        .unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].event.seq, 3);
    // Disabling stops claiming.
    let gone = result(
        &third[0],
        DeliveryNext::Failed,
        WebhookHealth::Disable("410".into()),
    );
    assert!(store.finish_webhook_delivery(gone, retry_at).await.unwrap());
    let disabled = store
        .get_webhook(&shop.id, &hook.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("410"));

    // Every attempt is logged, newest first, and scoped to the store.
    let log = store
        .list_webhook_attempts(
            &shop.id,
            AttemptQuery {
                webhook_id: Some(hook.id.clone()),
                flavor: WebhookFlavor::Redo,
                before: None,
                limit: 50,
            },
        )
        .await
        .unwrap();
    assert_eq!(log.len(), 5);
    assert_eq!(log[0].seq, 3);
    assert!(log.windows(2).all(|w| w[0].id > w[1].id));
    let foreign = store
        .list_webhook_attempts(
            &other.id,
            AttemptQuery {
                webhook_id: Some(hook.id.clone()),
                flavor: WebhookFlavor::Redo,
                before: None,
                limit: 50,
            },
        )
        .await
        .unwrap();
    assert!(foreign.is_empty());
    assert!(
        store
            .get_webhook(&other.id, &hook.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.delete_webhook(&other.id, &hook.id).await.unwrap());

    // Re-enabled and replayed: all three go out again, in order, first attempt each.
    let update = waybill_store::WebhookUpdate {
        enabled: Some(true),
        ..Default::default()
    };
    let enabled = store
        .update_webhook(&shop.id, &hook.id, update)
        .await
        .unwrap()
        .unwrap();
    assert!(enabled.enabled && enabled.failing_since.is_none());
    let n = store
        .replay_webhook(&shop.id, &hook.id, at(now, -60_000))
        .await
        .unwrap();
    assert_eq!(n, Some(3));
    let t = Utc::now();
    let replayed = store.claim_webhook_deliveries(t, 10, lease).await.unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!((replayed[0].event.seq, replayed[0].attempt), (1, 1));
    // Redelivering an event while it is in flight: not sent twice at once, and the attempt in
    // flight cannot mark it done; it goes out again when the lease ends.
    let event_id = replayed[0].event.event_id.clone();
    assert!(
        store
            .redeliver_webhook_event(&shop.id, &hook.id, &event_id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .redeliver_webhook_event(&shop.id, &hook.id, "nope")
            .await
            .unwrap()
    );
    assert!(
        !store
            .redeliver_webhook_event(&other.id, &hook.id, &event_id)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_webhook_deliveries(t, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let in_flight = result(
        &replayed[0],
        DeliveryNext::Delivered,
        WebhookHealth::Healthy,
    );
    assert!(!store.finish_webhook_delivery(in_flight, t).await.unwrap());
    let resent = store
        .claim_webhook_deliveries(at(t, 1500), 10, lease)
        .await
        .unwrap();
    assert_eq!(resent.len(), 1);
    assert_eq!(
        (resent[0].event.event_id.as_str(), resent[0].attempt),
        (event_id.as_str(), 1)
    );

    // Same externalId: updated in place, secret kept.
    let (same, created) = store
        .create_webhook(
            &shop.id,
            NewWebhook {
                flavor: WebhookFlavor::Redo,
                url: "http://example.com/other".into(),
                topics: vec!["fulfillment".into()],
                external_id: Some("x".into()),
                bearer_token: Some("t".into()),
                secret: "whsec_BBBB".into(),
            },
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(
        (same.id.as_str(), same.secret.as_str()),
        (hook.id.as_str(), "whsec_AAAA")
    );

    // The store's Fourthwall secret is made once.
    let s1 = store.store_webhook_secret(&shop.id, "first").await.unwrap();
    let s2 = store
        .store_webhook_secret(&shop.id, "second")
        .await
        .unwrap();
    assert_eq!((s1.as_str(), s2.as_str()), ("first", "first"));
}

/// `webhook_backlog` counts outbox events until they are fanned out, then open deliveries
/// until they are delivered.
#[tokio::test]
async fn backlog_counts_unfanned_events_then_open_deliveries() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    store
        .create_webhook(
            &shop.id,
            NewWebhook {
                flavor: WebhookFlavor::Redo,
                url: "http://example.com/h".into(),
                topics: vec!["order".into()],
                external_id: None,
                bearer_token: None,
                secret: "whsec_AAAA".into(),
            },
        )
        .await
        .unwrap();
    let empty = store.webhook_backlog("deliveries").await.unwrap();
    assert_eq!((empty.unfanned_events, empty.open_deliveries), (0, 0));
    for id in ["B-1", "B-2", "B-3"] {
        store.create_order(&shop.id, order(id)).await.unwrap();
    }
    let before = store.webhook_backlog("deliveries").await.unwrap();
    assert_eq!((before.unfanned_events, before.open_deliveries), (3, 0));

    let now = Utc::now();
    assert_eq!(
        store
            .fan_out_webhook_events("deliveries", 100, now)
            .await
            .unwrap(),
        3
    );
    let fanned = store.webhook_backlog("deliveries").await.unwrap();
    assert_eq!((fanned.unfanned_events, fanned.open_deliveries), (0, 3));

    let claimed = store
        .claim_webhook_deliveries(now, 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    // In flight still counts as open.
    assert_eq!(
        store
            .webhook_backlog("deliveries")
            .await
            .unwrap()
            .open_deliveries,
        3
    );
    for d in &claimed[..2] {
        let done = result(d, DeliveryNext::Delivered, WebhookHealth::Healthy);
        assert!(store.finish_webhook_delivery(done, now).await.unwrap());
    }
    let after = store.webhook_backlog("deliveries").await.unwrap();
    assert_eq!((after.unfanned_events, after.open_deliveries), (0, 1));
}
