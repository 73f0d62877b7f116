//! The delivery log (`Store::list_webhook_deliveries` with a `DeliveryQuery`), its count and a
//! subscription's health (`Store::webhook_stats`). On a real SQLite file, or on PostgreSQL when
//! `WAYBILL_TEST_POSTGRES_URL` is set: both backends pass the same test.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use waybill_core::{OrderRef, Timestamp, time};
use waybill_store::testing::TestDatabase;
use waybill_store::{
    AttemptLog, ClaimedDelivery, DeliveryNext, DeliveryQuery, DeliveryResult, DeliveryState,
    NewWebhook, Store, WebhookFlavor, WebhookHealth, WebhookRecord, WebhookUpdate,
};

fn at(base: Timestamp, ms: i64) -> Timestamp {
    base + chrono::Duration::milliseconds(ms)
}

async fn subscribe(
    store: &Arc<dyn Store>,
    shop: &str,
    flavor: WebhookFlavor,
    topic: &str,
) -> WebhookRecord {
    store
        .create_webhook(
            shop,
            NewWebhook {
                flavor,
                url: "http://example.com/h".into(),
                topics: vec![topic.into()],
                external_id: None,
                bearer_token: None,
                secret: "whsec_AAAA".into(),
            },
        )
        .await
        .unwrap()
        .0
}

/// Records one attempt with `code` (`None`: no answer, with an error) and moves on to `next`.
async fn finish(
    store: &Arc<dyn Store>,
    d: &ClaimedDelivery,
    code: Option<u16>,
    next: DeliveryNext,
    now: Timestamp,
) {
    let ok = next == DeliveryNext::Delivered;
    let result = DeliveryResult {
        delivery_id: d.delivery_id,
        claim: d.claim,
        webhook_id: d.webhook.id.clone(),
        attempt: AttemptLog {
            at: now,
            status_code: code,
            latency_ms: 2,
            error: code.is_none().then(|| "connection refused".to_owned()),
            response_excerpt: None,
        },
        next,
        health: if ok {
            WebhookHealth::Healthy
        } else {
            WebhookHealth::Failing
        },
        payload: Some("{}".into()),
    };
    assert!(store.finish_webhook_delivery(result, now).await.unwrap());
}

fn ids(list: &[waybill_store::DeliveryRecord]) -> Vec<i64> {
    list.iter().map(|d| d.id).collect()
}

#[tokio::test]
async fn the_delivery_log_filters_pages_and_outlives_orders() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let (other, _) = store.create_store("other").await.unwrap();
    let a = subscribe(&store, &shop.id, WebhookFlavor::Redo, "order").await;
    let b = subscribe(&store, &shop.id, WebhookFlavor::Redo, "order").await;
    let fw = subscribe(&store, &shop.id, WebhookFlavor::Fourthwall, "ORDER_PLACED").await;
    let theirs = subscribe(&store, &other.id, WebhookFlavor::Redo, "order").await;

    // O-1: created and updated; O-2: created; the other store: one order.
    let o1 = store
        .create_order(&shop.id, waybill_store::testing::one_line_order("O-1", 1))
        .await
        .unwrap();
    store
        .update_order(
            &shop.id,
            &OrderRef::new("O-1"),
            waybill_store::OrderUpdate {
                created_at: None,
                details: waybill_core::OrderDetails::default(),
                line_items: vec![],
            },
        )
        .await
        .unwrap();
    let o2 = store
        .create_order(&shop.id, waybill_store::testing::one_line_order("O-2", 1))
        .await
        .unwrap();
    store
        .create_order(&other.id, waybill_store::testing::one_line_order("O-1", 1))
        .await
        .unwrap();
    let now = Utc::now();
    while store.fan_out_webhook_events("c", 100, now).await.unwrap() > 0 {}

    // a: O-1 #1 delivered, then O-1 #2 fails for good; O-2 #1 fails once and waits for a
    // retry. b, fw and theirs are left pending.
    let lease = Duration::from_secs(30);
    let claimed = store
        .claim_webhook_deliveries(now, 100, lease)
        .await
        .unwrap();
    let retry_at = at(now, 60_000);
    for d in claimed.iter().filter(|d| d.webhook.id == a.id) {
        if d.event.order_id == o1.id.to_string() {
            finish(&store, d, Some(200), DeliveryNext::Delivered, now).await;
        } else {
            finish(&store, d, Some(500), DeliveryNext::RetryAt(retry_at), now).await;
        }
    }
    let claimed = store
        .claim_webhook_deliveries(now, 100, lease)
        .await
        .unwrap();
    let second = claimed
        .iter()
        .find(|d| d.webhook.id == a.id)
        .expect("O-1 #2 of a is claimable once #1 is delivered");
    assert_eq!(second.event.seq, 2);
    finish(&store, second, None, DeliveryNext::Failed, now).await;

    let query = |webhook: &WebhookRecord| DeliveryQuery {
        webhook_id: Some(webhook.id.clone()),
        ..DeliveryQuery::new(webhook.flavor, 50)
    };
    let log = store
        .list_webhook_deliveries(&shop.id, query(&a))
        .await
        .unwrap();
    assert_eq!(log.len(), 3, "{log:#?}");
    let mut sorted = ids(&log);
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(ids(&log), sorted, "newest first");
    let find = |order: &str, seq: i64| {
        log.iter()
            .find(|d| d.order_external_id.as_deref() == Some(order) && d.seq == seq)
            .unwrap_or_else(|| panic!("{order} #{seq} in {log:#?}"))
            .clone()
    };
    let delivered = find("O-1", 1);
    assert_eq!(delivered.status, DeliveryState::Delivered);
    assert_eq!(delivered.event_type, "order.created");
    assert_eq!(delivered.order_id, o1.id.to_string());
    assert_eq!(delivered.attempts, 1);
    assert_eq!(delivered.last_response_code, Some(200));
    assert_eq!(delivered.last_error, None);
    assert_eq!(delivered.next_attempt_at, None);
    let failed = find("O-1", 2);
    assert_eq!(failed.status, DeliveryState::Failed);
    assert_eq!(failed.event_type, "order.updated");
    assert_eq!(failed.last_response_code, None);
    assert_eq!(failed.last_error.as_deref(), Some("connection refused"));
    assert_eq!(failed.next_attempt_at, None);
    let pending = find("O-2", 1);
    assert_eq!(pending.status, DeliveryState::Pending);
    assert_eq!(pending.last_response_code, Some(500));
    assert_eq!(pending.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(
        pending.next_attempt_at.map(time::to_millis),
        Some(time::to_millis(retry_at))
    );
    assert!(pending.created_at >= pending.event_at);

    // Status filters.
    let by_status = |state| {
        let store = store.clone();
        let (shop, q) = (shop.id.clone(), query(&a));
        async move {
            store
                .list_webhook_deliveries(
                    &shop,
                    DeliveryQuery {
                        status: Some(state),
                        ..q
                    },
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(
        ids(&by_status(DeliveryState::Delivered).await),
        vec![delivered.id]
    );
    assert_eq!(
        ids(&by_status(DeliveryState::Failed).await),
        vec![failed.id]
    );
    assert_eq!(
        ids(&by_status(DeliveryState::Pending).await),
        vec![pending.id]
    );
    assert!(by_status(DeliveryState::Disabled).await.is_empty());

    // By order: the external id or the internal one.
    for order in ["O-1".to_owned(), o1.id.to_string()] {
        let list = store
            .list_webhook_deliveries(
                &shop.id,
                DeliveryQuery {
                    order: Some(order.clone()),
                    ..query(&a)
                },
            )
            .await
            .unwrap();
        assert_eq!(ids(&list), vec![failed.id, delivered.id], "order {order}");
    }
    assert!(
        store
            .list_webhook_deliveries(
                &shop.id,
                DeliveryQuery {
                    order: Some("O-404".into()),
                    ..query(&a)
                },
            )
            .await
            .unwrap()
            .is_empty()
    );

    // Paging by cursor, with a filter kept across pages.
    let page1 = store
        .list_webhook_deliveries(
            &shop.id,
            DeliveryQuery {
                limit: 2,
                ..query(&a)
            },
        )
        .await
        .unwrap();
    assert_eq!(page1.len(), 2);
    let page2 = store
        .list_webhook_deliveries(
            &shop.id,
            DeliveryQuery {
                limit: 2,
                before: page1.last().map(|d| d.id),
                ..query(&a)
            },
        )
        .await
        .unwrap();
    assert_eq!(page2.len(), 1);
    let mut all = ids(&page1);
    all.extend(ids(&page2));
    assert_eq!(all, ids(&log));
    let order_page = store
        .list_webhook_deliveries(
            &shop.id,
            DeliveryQuery {
                order: Some("O-1".into()),
                limit: 1,
                before: Some(failed.id),
                ..query(&a)
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&order_page), vec![delivered.id]);
    // Offset paging and counts.
    let offset = store
        .list_webhook_deliveries(
            &shop.id,
            DeliveryQuery {
                offset: 1,
                limit: 1,
                ..query(&a)
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&offset), vec![ids(&log)[1]]);
    assert_eq!(
        store
            .count_webhook_deliveries(&shop.id, query(&a))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .count_webhook_deliveries(
                &shop.id,
                DeliveryQuery {
                    status: Some(DeliveryState::Failed),
                    before: Some(0),
                    ..query(&a)
                },
            )
            .await
            .unwrap(),
        1,
        "the count ignores the cursor"
    );

    // By event: that event's deliveries to every Redo subscription of the store.
    let by_event = store
        .list_webhook_deliveries(
            &shop.id,
            DeliveryQuery {
                event_id: Some(delivered.event_id.clone()),
                ..DeliveryQuery::new(WebhookFlavor::Redo, 10)
            },
        )
        .await
        .unwrap();
    let mut hooks: Vec<&str> = by_event.iter().map(|d| d.webhook_id.as_str()).collect();
    hooks.sort();
    let mut expected = vec![a.id.as_str(), b.id.as_str()];
    expected.sort();
    assert_eq!(hooks, expected);

    // The whole flavour of the store, and topics: Fourthwall's ORDER_PLACED sees two
    // order.created events; ORDER_UPDATED none (the subscription never got one).
    let redo_all = store
        .list_webhook_deliveries(&shop.id, DeliveryQuery::new(WebhookFlavor::Redo, 50))
        .await
        .unwrap();
    assert_eq!(redo_all.len(), 6, "3 events to each of a and b");
    assert!(redo_all.iter().all(|d| d.webhook_id != theirs.id));
    let placed = DeliveryQuery {
        topic: Some("ORDER_PLACED".into()),
        ..DeliveryQuery::new(WebhookFlavor::Fourthwall, 50)
    };
    let fw_log = store
        .list_webhook_deliveries(&shop.id, placed.clone())
        .await
        .unwrap();
    assert_eq!(fw_log.len(), 2);
    assert!(fw_log.iter().all(|d| d.webhook_id == fw.id));
    for (topic, n) in [("ORDER_UPDATED", 0), ("NOT_A_TYPE", 0)] {
        let q = DeliveryQuery {
            topic: Some(topic.into()),
            ..placed.clone()
        };
        assert_eq!(
            store.count_webhook_deliveries(&shop.id, q).await.unwrap(),
            n,
            "{topic}"
        );
    }

    // Disabling b turns its pending deliveries into "disabled".
    store
        .update_webhook(
            &shop.id,
            &b.id,
            WebhookUpdate {
                enabled: Some(false),
                ..WebhookUpdate::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    let b_log = store
        .list_webhook_deliveries(&shop.id, query(&b))
        .await
        .unwrap();
    assert_eq!(b_log.len(), 3);
    assert!(
        b_log
            .iter()
            .all(|d| d.status == DeliveryState::Disabled && d.next_attempt_at.is_none()),
        "{b_log:#?}"
    );
    let disabled = DeliveryQuery {
        status: Some(DeliveryState::Disabled),
        ..query(&b)
    };
    assert_eq!(
        store
            .count_webhook_deliveries(&shop.id, disabled)
            .await
            .unwrap(),
        3
    );

    // Another store sees nothing of this store's subscriptions, even by id.
    assert!(
        store
            .list_webhook_deliveries(&other.id, query(&a))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_webhook_deliveries(&other.id, query(&theirs))
            .await
            .unwrap()
            .len(),
        1
    );

    // Deleting O-2 keeps its external id on its deliveries; an order deleted before fan-out
    // reached it (O-3) gets its external id from what was kept of it.
    store
        .delete_order(&shop.id, &OrderRef::new("O-2"))
        .await
        .unwrap();
    let o3 = store
        .create_order(&shop.id, waybill_store::testing::one_line_order("O-3", 1))
        .await
        .unwrap();
    store
        .delete_order(&shop.id, &OrderRef::new("O-3"))
        .await
        .unwrap();
    while store.fan_out_webhook_events("c", 100, now).await.unwrap() > 0 {}
    for (external, internal, events) in
        [("O-2", o2.id.to_string(), 2), ("O-3", o3.id.to_string(), 2)]
    {
        let list = store
            .list_webhook_deliveries(
                &shop.id,
                DeliveryQuery {
                    order: Some(external.into()),
                    ..query(&a)
                },
            )
            .await
            .unwrap();
        assert_eq!(list.len(), events, "{external}: {list:#?}");
        assert!(
            list.iter()
                .all(|d| d.order_id == internal
                    && d.order_external_id.as_deref() == Some(external)),
            "{list:#?}"
        );
        assert_eq!(list[0].event_type, "order.deleted");
    }
}

#[tokio::test]
async fn webhook_stats_count_failures_since_the_last_success() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let (other, _) = store.create_store("other").await.unwrap();
    let hook = subscribe(&store, &shop.id, WebhookFlavor::Redo, "order").await;
    let fresh = store.webhook_stats(&shop.id, &hook.id).await.unwrap();
    assert_eq!(fresh, Some(waybill_store::WebhookStats::default()));
    assert_eq!(
        store.webhook_stats(&other.id, &hook.id).await.unwrap(),
        None
    );

    store
        .create_order(&shop.id, waybill_store::testing::one_line_order("O-1", 1))
        .await
        .unwrap();
    let now = Utc::now();
    store.fan_out_webhook_events("c", 100, now).await.unwrap();
    let lease = Duration::from_secs(1);
    // Fail twice, succeed, fail three times (retrying the same delivery each time).
    let outcomes = [500, 503, 200, 500, 502, 500];
    let mut t = now;
    for (i, code) in outcomes.into_iter().enumerate() {
        let claimed = store.claim_webhook_deliveries(t, 1, lease).await.unwrap();
        let d = claimed.first().unwrap_or_else(|| panic!("claim {i}"));
        // A success here is recorded as a retry too, so the same delivery goes on.
        let next = DeliveryNext::RetryAt(at(t, 10));
        let ok = code == 200;
        let result = DeliveryResult {
            delivery_id: d.delivery_id,
            claim: d.claim,
            webhook_id: d.webhook.id.clone(),
            attempt: AttemptLog {
                at: t,
                status_code: Some(code),
                latency_ms: 1,
                error: None,
                response_excerpt: None,
            },
            next,
            health: if ok {
                WebhookHealth::Healthy
            } else {
                WebhookHealth::Failing
            },
            payload: None,
        };
        assert!(store.finish_webhook_delivery(result, t).await.unwrap());
        if ok {
            let stats = store
                .webhook_stats(&shop.id, &hook.id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stats.failures_in_a_row, 0);
            assert_eq!(
                stats.last_success_at.map(time::to_millis),
                Some(time::to_millis(t))
            );
        }
        t = at(t, 20);
    }
    let stats = store
        .webhook_stats(&shop.id, &hook.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.failures_in_a_row, 3);
    assert_eq!(
        stats.last_success_at.map(time::to_millis),
        Some(time::to_millis(at(now, 40)))
    );
    assert_eq!(
        stats.last_attempt_at.map(time::to_millis),
        Some(time::to_millis(at(now, 100)))
    );
}
