//! State shared by every server on one database (dashboard sessions, the sign-in throttle,
//! shared rate windows) and the retention purges. On a real SQLite file, or on PostgreSQL when
//! `WAYBILL_TEST_POSTGRES_URL` is set: both backends pass the same tests. "Two servers" are two
//! stores opened on the one database.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use waybill_core::{OrderRef, Timestamp};
use waybill_store::testing::{TestDatabase, one_line_order};
use waybill_store::{
    AttemptLog, AttemptQuery, DeliveryNext, DeliveryQuery, DeliveryResult, NewSession, NewWebhook,
    Purge, Store, WebhookFlavor, WebhookHealth, WebhookRecord,
};

fn at(base: Timestamp, secs: i64) -> Timestamp {
    base + chrono::Duration::seconds(secs)
}

fn session(hash: &str, store_id: &str, created: Timestamp, expires: Timestamp) -> NewSession {
    NewSession {
        token_hash: hash.into(),
        store_id: store_id.into(),
        key_ids: vec!["key_a".into(), "key_b".into()],
        csrf: format!("csrf-{hash}"),
        created_at: created,
        expires_at: expires,
    }
}

#[tokio::test]
async fn sessions_are_shared_by_two_stores_and_survive_a_reopen() {
    let db = TestDatabase::new().await.unwrap();
    let one: Arc<dyn Store> = db.open().await.unwrap();
    let two: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = one.create_store("s").await.unwrap();
    let now = Utc::now();
    one.create_session(session("h1", &shop.id, now, at(now, 3600)))
        .await
        .unwrap();

    let seen = two
        .get_session("h1")
        .await
        .unwrap()
        .expect("visible to the other server");
    assert_eq!(seen.store_id, shop.id);
    assert_eq!(seen.key_ids, vec!["key_a".to_owned(), "key_b".to_owned()]);
    assert_eq!(seen.csrf, "csrf-h1");
    assert_eq!(seen.last_seen_at.timestamp_millis(), now.timestamp_millis());
    assert!(two.get_session("other").await.unwrap().is_none());

    // A touch moves last_seen forward only.
    two.touch_session("h1", at(now, 90)).await.unwrap();
    two.touch_session("h1", at(now, 30)).await.unwrap();
    let seen = one.get_session("h1").await.unwrap().unwrap();
    assert_eq!(seen.last_seen_at.timestamp(), at(now, 90).timestamp());

    // A restart: a fresh store on the same database still finds it.
    drop(one);
    let three: Arc<dyn Store> = db.open().await.unwrap();
    assert!(three.get_session("h1").await.unwrap().is_some());
    three.delete_session("h1").await.unwrap();
    assert!(
        two.get_session("h1").await.unwrap().is_none(),
        "signed out everywhere"
    );
    three.delete_session("h1").await.unwrap();
}

#[tokio::test]
async fn the_sign_in_throttle_counts_across_stores_in_a_sliding_window() {
    let db = TestDatabase::new().await.unwrap();
    let one: Arc<dyn Store> = db.open().await.unwrap();
    let two: Arc<dyn Store> = db.open().await.unwrap();
    let now = Utc::now();
    let window = |t: Timestamp| at(t, -900);
    // Failures at -1000 s and -850 s, then at -10 s (the first is out of its window) and now.
    assert_eq!(
        one.record_signin_failure("192.0.2.1", at(now, -1000), window(at(now, -1000)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        two.record_signin_failure("192.0.2.1", at(now, -850), window(at(now, -850)))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        one.record_signin_failure("192.0.2.1", at(now, -10), window(at(now, -10)))
            .await
            .unwrap(),
        2,
        "the first fell out of the window"
    );
    assert_eq!(
        two.record_signin_failure("192.0.2.1", now, window(now))
            .await
            .unwrap(),
        3,
        "counted across both stores"
    );
    assert_eq!(
        one.record_signin_failure("192.0.2.2", now, window(now))
            .await
            .unwrap(),
        1,
        "per client"
    );

    assert_eq!(
        one.signin_blocked_until("192.0.2.1", now).await.unwrap(),
        None
    );
    one.block_signin("192.0.2.1", at(now, 30)).await.unwrap();
    let until = two.signin_blocked_until("192.0.2.1", now).await.unwrap();
    assert_eq!(until.map(|t| t.timestamp()), Some(at(now, 30).timestamp()));
    assert_eq!(
        two.signin_blocked_until("192.0.2.1", at(now, 31))
            .await
            .unwrap(),
        None,
        "a block ends"
    );
    assert_eq!(
        two.signin_blocked_until("192.0.2.2", now).await.unwrap(),
        None
    );

    two.clear_signin_failures("192.0.2.1").await.unwrap();
    assert_eq!(
        one.signin_blocked_until("192.0.2.1", now).await.unwrap(),
        None
    );
    assert_eq!(
        one.record_signin_failure("192.0.2.1", now, window(now))
            .await
            .unwrap(),
        1,
        "a success starts the count afresh"
    );
}

#[tokio::test]
async fn rate_windows_count_across_stores_and_start_over() {
    let db = TestDatabase::new().await.unwrap();
    let one: Arc<dyn Store> = db.open().await.unwrap();
    let two: Arc<dyn Store> = db.open().await.unwrap();
    let w0 = Utc::now();
    let w1 = at(w0, 1);
    assert_eq!(one.count_rate_window("k", w0).await.unwrap(), 1);
    assert_eq!(two.count_rate_window("k", w0).await.unwrap(), 2);
    assert_eq!(one.count_rate_window("other", w0).await.unwrap(), 1);
    assert_eq!(
        two.count_rate_window("k", w1).await.unwrap(),
        1,
        "a new window"
    );
    assert_eq!(one.count_rate_window("k", w1).await.unwrap(), 2);

    // Concurrent upserts lose no count.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = if i % 2 == 0 { one.clone() } else { two.clone() };
            let w2 = at(w0, 2);
            tokio::spawn(async move { store.count_rate_window("c", w2).await.unwrap() })
        })
        .collect();
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<u64>>());

    // Retention drops windows that started before the cutoff.
    let n = one
        .purge(Purge::RateWindows { before: w1 }, 1000)
        .await
        .unwrap();
    assert_eq!(n, 1, "only 'other' (window w0) is old");
    assert_eq!(two.count_rate_window("other", at(w0, 5)).await.unwrap(), 1);
}

async fn subscribe(store: &Arc<dyn Store>, shop: &str) -> WebhookRecord {
    store
        .create_webhook(
            shop,
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
        .unwrap()
        .0
}

/// Claims what is due and marks it delivered; how many.
async fn deliver_due(store: &Arc<dyn Store>, webhook: &str, now: Timestamp) -> usize {
    let claimed = store
        .claim_webhook_deliveries(now, 100, Duration::from_secs(30))
        .await
        .unwrap();
    let mut n = 0;
    for d in claimed.iter().filter(|d| d.webhook.id == webhook) {
        let result = DeliveryResult {
            delivery_id: d.delivery_id,
            claim: d.claim,
            webhook_id: d.webhook.id.clone(),
            attempt: AttemptLog {
                at: now,
                status_code: Some(200),
                latency_ms: 1,
                error: None,
                response_excerpt: None,
            },
            next: DeliveryNext::Delivered,
            health: WebhookHealth::Healthy,
            payload: Some("{}".into()),
        };
        assert!(store.finish_webhook_delivery(result, now).await.unwrap());
        n += 1;
    }
    n
}

async fn fan_out(store: &Arc<dyn Store>) {
    while store
        .fan_out_webhook_events("dispatcher", 100, Utc::now())
        .await
        .unwrap()
        > 0
    {}
}

#[tokio::test]
async fn retention_deletes_old_finished_rows_and_keeps_recent_and_open_ones() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let (quiet, _) = store.create_store("quiet").await.unwrap();
    let hook = subscribe(&store, &shop.id).await;

    // Order A: two events, both delivered. Order B: one event, never delivered. The quiet
    // store (no webhook yet) gets order D now and order E after the cutoff.
    store
        .create_order(&shop.id, one_line_order("A", 1))
        .await
        .unwrap();
    store
        .update_order(
            &shop.id,
            &OrderRef::new("A"),
            waybill_store::OrderUpdate {
                created_at: None,
                details: waybill_core::OrderDetails::default(),
                line_items: vec![],
            },
        )
        .await
        .unwrap();
    store
        .create_order(&quiet.id, one_line_order("D", 1))
        .await
        .unwrap();
    fan_out(&store).await;
    let now = Utc::now();
    assert_eq!(deliver_due(&store, &hook.id, now).await, 1, "A #1");
    assert_eq!(deliver_due(&store, &hook.id, now).await, 1, "A #2");
    store
        .create_order(&shop.id, one_line_order("B", 1))
        .await
        .unwrap();
    fan_out(&store).await;
    let all = store
        .list_webhook_deliveries(&shop.id, DeliveryQuery::new(WebhookFlavor::Redo, 100))
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let event = |order: &str, seq: i64| {
        all.iter()
            .find(|d| d.order_external_id.as_deref() == Some(order) && d.seq == seq)
            .map(|d| d.event_id.clone())
            .unwrap()
    };
    let (a1, a2, b1) = (event("A", 1), event("A", 2), event("B", 1));

    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store
        .create_order(&quiet.id, one_line_order("E", 1))
        .await
        .unwrap();
    fan_out(&store).await;

    // Deliveries first: A #1 goes, A #2 stays (the order's newest on the webhook), B is open.
    let n = store
        .purge(Purge::Deliveries { before: cutoff }, 1000)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let left = store
        .list_webhook_deliveries(&shop.id, DeliveryQuery::new(WebhookFlavor::Redo, 100))
        .await
        .unwrap();
    let mut left: Vec<_> = left.iter().map(|d| d.event_id.clone()).collect();
    left.sort();
    let mut expected = vec![a2.clone(), b1.clone()];
    expected.sort();
    assert_eq!(left, expected);
    assert!(store.last_order_payload(&all[0].order_id).await.is_ok());

    // Attempts made before the cutoff go (A #1's went with its delivery).
    let attempts = |store: Arc<dyn Store>| {
        let shop = shop.id.clone();
        let hook = hook.id.clone();
        async move {
            store
                .list_webhook_attempts(
                    &shop,
                    AttemptQuery {
                        webhook_id: Some(hook),
                        flavor: WebhookFlavor::Redo,
                        before: None,
                        limit: 100,
                    },
                )
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(attempts(store.clone()).await, 1);
    assert_eq!(
        store
            .purge(Purge::Attempts { before: cutoff }, 1000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(attempts(store.clone()).await, 0);

    // The outbox: A's two events and D go; B (undelivered) and E (recent) stay. In bounded
    // batches: one row per statement here.
    let mut purged = 0;
    loop {
        let n = store
            .purge(Purge::Outbox { before: cutoff }, 1)
            .await
            .unwrap();
        assert!(n <= 1, "a batch never exceeds its limit");
        if n == 0 {
            break;
        }
        purged += n;
    }
    assert_eq!(purged, 3);
    assert!(
        !store
            .redeliver_webhook_event(&shop.id, &hook.id, &a1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .redeliver_webhook_event(&shop.id, &hook.id, &a2)
            .await
            .unwrap()
    );
    assert!(
        store
            .redeliver_webhook_event(&shop.id, &hook.id, &b1)
            .await
            .unwrap()
    );
    let quiet_hook = {
        // Replay reads the outbox: of the quiet store's two events only E is left.
        tokio::time::sleep(Duration::from_millis(5)).await;
        subscribe(&store, &quiet.id).await
    };
    let replayed = store
        .replay_webhook(&quiet.id, &quiet_hook.id, at(cutoff, -3600))
        .await
        .unwrap();
    assert_eq!(replayed, Some(1));

    // Nothing is old at a cutoff far back.
    let long_ago = at(cutoff, -86_400);
    assert_eq!(
        store
            .purge(Purge::Outbox { before: long_ago }, 1000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge(Purge::Deliveries { before: long_ago }, 1000)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn retention_ends_expired_and_idle_sessions_and_old_throttle_rows() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let now = Utc::now();
    // Past its maximum age; idle; live; and two more past their age, for batching.
    store
        .create_session(session("old", &shop.id, at(now, -50_000), at(now, -10)))
        .await
        .unwrap();
    store
        .create_session(session("idle", &shop.id, at(now, -3600), at(now, 3600)))
        .await
        .unwrap();
    store
        .create_session(session("live", &shop.id, at(now, -3600), at(now, 3600)))
        .await
        .unwrap();
    store.touch_session("live", at(now, -60)).await.unwrap();
    for name in ["old2", "old3"] {
        store
            .create_session(session(name, &shop.id, at(now, -50_000), at(now, -1)))
            .await
            .unwrap();
    }
    let purge = Purge::Sessions {
        now,
        idle_before: at(now, -1800),
    };
    assert_eq!(
        store.purge(purge, 3).await.unwrap(),
        3,
        "bounded by the batch"
    );
    assert_eq!(store.purge(purge, 3).await.unwrap(), 1);
    assert_eq!(store.purge(purge, 3).await.unwrap(), 0);
    for gone in ["old", "idle", "old2", "old3"] {
        assert!(store.get_session(gone).await.unwrap().is_none(), "{gone}");
    }
    assert!(store.get_session("live").await.unwrap().is_some());

    // Throttle rows: a failure outside the window and a block that is over go.
    store
        .record_signin_failure("a", at(now, -2000), at(now, -2900))
        .await
        .unwrap();
    store
        .record_signin_failure("b", now, at(now, -900))
        .await
        .unwrap();
    store.block_signin("a", at(now, -1)).await.unwrap();
    store.block_signin("b", at(now, 60)).await.unwrap();
    let n = store
        .purge(
            Purge::SigninThrottle {
                now,
                before: at(now, -900),
            },
            1000,
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        store
            .record_signin_failure("b", now, at(now, -900))
            .await
            .unwrap(),
        2,
        "b's recent failure stayed"
    );
    assert!(
        store
            .signin_blocked_until("b", now)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .record_signin_failure("a", now, at(now, -3000))
            .await
            .unwrap(),
        1,
        "a's old failure went, even counted over a longer window"
    );
}
