//! Exception reasons in the store: a reason is kept on its history entry and is the
//! fulfillment's current reason; a reason where none is allowed changes nothing; the outbox
//! event carries it; the exceptions list and the order list filter by it. On a real SQLite
//! file, or on PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use waybill_core::{
    DomainError, ExceptionReason, NewFulfillment, OrderRef, Package, Quantity, ShipmentStatus,
    StatusOrEvent, StatusUpdate, time,
};
use waybill_store::events::EventData;
use waybill_store::testing::{TestDatabase, one_line_order};
use waybill_store::{
    ExceptionKind, ExceptionQuery, NewWebhook, OrderQuery, Store, StoreError, WebhookFlavor,
};

async fn shipped(store: &Arc<dyn Store>, store_id: &str, order: &str) {
    store
        .create_order(store_id, one_line_order(order, 1))
        .await
        .unwrap();
    let f = NewFulfillment::new(
        Some(format!("ful-{order}")),
        vec![("L".into(), Quantity::new("quantity", 1).unwrap())],
        vec![Package {
            carrier: Some("UPS".into()),
            tracking_number: format!("TRK{order}"),
            tracking_url: None,
        }],
        ShipmentStatus::InTransit,
    )
    .unwrap();
    store
        .create_fulfillment(store_id, &OrderRef::new(order), f)
        .await
        .unwrap();
}

async fn post(
    store: &Arc<dyn Store>,
    store_id: &str,
    order: &str,
    change: &str,
    reason: Option<ExceptionReason>,
    ago_hours: i64,
) -> Result<waybill_core::Fulfillment, StoreError> {
    let mut u = StatusUpdate::new(StatusOrEvent::parse(change).unwrap());
    u.reason = reason;
    u.datetime = Some(time::now() - Duration::hours(ago_hours));
    store
        .update_shipment_status(store_id, &OrderRef::new(order), &format!("ful-{order}"), u)
        .await
}

#[tokio::test]
async fn a_reason_is_stored_on_its_entry_and_refused_where_not_allowed() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let s = shop.id.as_str();
    shipped(&store, s, "o1").await;

    let answered = post(
        &store,
        s,
        "o1",
        "delayed",
        Some(ExceptionReason::Weather),
        3,
    )
    .await
    .unwrap();
    let delayed = answered.history.iter().find(|h| h.status == "delayed");
    assert_eq!(
        delayed.and_then(|h| h.reason),
        Some(ExceptionReason::Weather)
    );
    assert_eq!(answered.exception_reason(), Some(ExceptionReason::Weather));

    // Not allowed on in_transit: refused naming the field, nothing recorded.
    let before = store.get_order(s, &OrderRef::new("o1")).await.unwrap();
    let refused = post(
        &store,
        s,
        "o1",
        "in_transit",
        Some(ExceptionReason::Lost),
        0,
    )
    .await
    .unwrap_err();
    match refused {
        StoreError::Domain(DomainError::Invalid(m)) => assert!(m.starts_with("reason:"), "{m}"),
        other => panic!("expected a validation error, got {other:?}"),
    }
    let after = store.get_order(s, &OrderRef::new("o1")).await.unwrap();
    assert_eq!(before, after, "a refused update changes nothing");

    post(
        &store,
        s,
        "o1",
        "failure",
        Some(ExceptionReason::AddressIssue),
        1,
    )
    .await
    .unwrap();
    let read = store.get_order(s, &OrderRef::new("o1")).await.unwrap();
    let f = &read.fulfillments[0];
    let reasons: Vec<(&str, Option<ExceptionReason>)> = f
        .history
        .iter()
        .map(|h| (h.status.as_str(), h.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("delayed", Some(ExceptionReason::Weather)),
            ("failure", Some(ExceptionReason::AddressIssue)),
            ("in_transit", None),
        ],
        "chronological: the updates were back-dated before the creation"
    );
    assert_eq!(f.exception_reason(), Some(ExceptionReason::AddressIssue));
    let listed = store
        .list_orders(
            s,
            OrderQuery {
                exception_reason: Some(ExceptionReason::AddressIssue),
                limit: 10,
                ..OrderQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.total, 1);

    // Delivered after all: no current reason, and the order list no longer finds it.
    post(&store, s, "o1", "delivered", None, 0).await.unwrap();
    let read = store.get_order(s, &OrderRef::new("o1")).await.unwrap();
    assert_eq!(read.fulfillments[0].exception_reason(), None);
    let listed = store
        .list_orders(
            s,
            OrderQuery {
                exception_reason: Some(ExceptionReason::AddressIssue),
                limit: 10,
                ..OrderQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.total, 0);
}

#[tokio::test]
async fn the_outbox_event_carries_the_reason() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let s = shop.id.as_str();
    store
        .create_webhook(
            s,
            NewWebhook {
                flavor: WebhookFlavor::Redo,
                url: "http://example.com/h".into(),
                topics: vec!["fulfillment".into()],
                external_id: None,
                bearer_token: None,
                secret: "whsec_AAAA".into(),
            },
        )
        .await
        .unwrap();
    shipped(&store, s, "o1").await;
    post(
        &store,
        s,
        "o1",
        "return_to_sender",
        Some(ExceptionReason::Refused),
        0,
    )
    .await
    .unwrap();
    let now = time::now() + Duration::seconds(1);
    while store.fan_out_webhook_events("c", 100, now).await.unwrap() > 0 {}
    // One delivery per order at a time: claim, finish, claim the next.
    let mut seen = Vec::new();
    for _ in 0..4 {
        let claimed = store
            .claim_webhook_deliveries(now, 10, StdDuration::from_secs(60))
            .await
            .unwrap();
        let Some(d) = claimed.into_iter().next() else {
            break;
        };
        let data = EventData::parse(d.event.data.as_deref());
        seen.push((d.event.event_type.clone(), data.status, data.reason));
        store
            .finish_webhook_delivery(
                waybill_store::DeliveryResult {
                    delivery_id: d.delivery_id,
                    claim: d.claim,
                    webhook_id: d.webhook.id.clone(),
                    attempt: waybill_store::AttemptLog {
                        at: now,
                        status_code: Some(200),
                        latency_ms: 1,
                        error: None,
                        response_excerpt: None,
                    },
                    next: waybill_store::DeliveryNext::Delivered,
                    health: waybill_store::WebhookHealth::Healthy,
                    payload: Some("{}".into()),
                },
                now,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        seen,
        [
            (
                "fulfillment.created".to_owned(),
                Some("in_transit".to_owned()),
                None
            ),
            (
                "fulfillment.updated".to_owned(),
                Some("return_to_sender".to_owned()),
                Some("refused".to_owned())
            ),
        ]
    );
}

#[tokio::test]
async fn exceptions_and_orders_filter_by_reason() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (mine, _) = store.create_store("Mine").await.unwrap();
    let (theirs, _) = store.create_store("Theirs").await.unwrap();
    let s = mine.id.as_str();

    shipped(&store, s, "addr").await;
    post(
        &store,
        s,
        "addr",
        "failure",
        Some(ExceptionReason::AddressIssue),
        2,
    )
    .await
    .unwrap();
    shipped(&store, s, "damaged").await;
    post(
        &store,
        s,
        "damaged",
        "failure",
        Some(ExceptionReason::Damaged),
        2,
    )
    .await
    .unwrap();
    shipped(&store, s, "refused").await;
    post(
        &store,
        s,
        "refused",
        "return_to_sender",
        Some(ExceptionReason::Refused),
        2,
    )
    .await
    .unwrap();
    // Two delays: the latest one's reason counts.
    shipped(&store, s, "storm").await;
    post(
        &store,
        s,
        "storm",
        "delayed",
        Some(ExceptionReason::CarrierDelay),
        5,
    )
    .await
    .unwrap();
    post(
        &store,
        s,
        "storm",
        "delayed",
        Some(ExceptionReason::Weather),
        4,
    )
    .await
    .unwrap();
    // Delayed by weather, then failed for its address: one row per kind, each its own reason.
    shipped(&store, s, "both").await;
    post(
        &store,
        s,
        "both",
        "delayed",
        Some(ExceptionReason::Weather),
        3,
    )
    .await
    .unwrap();
    post(
        &store,
        s,
        "both",
        "failure",
        Some(ExceptionReason::AddressIssue),
        1,
    )
    .await
    .unwrap();
    // A failure without a reason, and a stalled shipment.
    shipped(&store, s, "plain").await;
    post(&store, s, "plain", "failure", None, 1).await.unwrap();
    shipped(&store, s, "stalled").await;
    post(&store, s, "stalled", "stalled_in_transit", None, 1)
        .await
        .unwrap();
    // Another store's weather delay.
    shipped(&store, &theirs.id, "storm").await;
    post(
        &store,
        &theirs.id,
        "storm",
        "delayed",
        Some(ExceptionReason::Weather),
        1,
    )
    .await
    .unwrap();

    let now = time::now();
    let rows_for = |reason: Option<ExceptionReason>, kinds: Vec<ExceptionKind>| {
        let store = store.clone();
        let s = s.to_owned();
        async move {
            let mut q = ExceptionQuery::new(now);
            q.reason = reason;
            q.kinds = kinds;
            q.limit = 100;
            let mut rows: Vec<(ExceptionKind, String, Option<ExceptionReason>)> = store
                .list_exceptions(&s, q)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.kind, r.order_external_id, r.reason))
                .collect();
            rows.sort();
            rows
        }
    };

    // Unfiltered, every row shows its own reason (none for kinds without reasons).
    let all = rows_for(None, vec![]).await;
    assert_eq!(
        all,
        [
            (
                ExceptionKind::Delayed,
                "both".to_owned(),
                Some(ExceptionReason::Weather)
            ),
            (
                ExceptionKind::Delayed,
                "storm".to_owned(),
                Some(ExceptionReason::Weather)
            ),
            (ExceptionKind::Stalled, "stalled".to_owned(), None),
            (
                ExceptionKind::Failure,
                "addr".to_owned(),
                Some(ExceptionReason::AddressIssue)
            ),
            (
                ExceptionKind::Failure,
                "both".to_owned(),
                Some(ExceptionReason::AddressIssue)
            ),
            (
                ExceptionKind::Failure,
                "damaged".to_owned(),
                Some(ExceptionReason::Damaged)
            ),
            (ExceptionKind::Failure, "plain".to_owned(), None),
            (
                ExceptionKind::ReturnToSender,
                "refused".to_owned(),
                Some(ExceptionReason::Refused)
            ),
        ]
    );

    let addr = rows_for(Some(ExceptionReason::AddressIssue), vec![]).await;
    assert_eq!(
        addr.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["addr", "both"]
    );
    let weather = rows_for(Some(ExceptionReason::Weather), vec![]).await;
    assert_eq!(
        weather
            .iter()
            .map(|r| (r.0, r.1.as_str()))
            .collect::<Vec<_>>(),
        [
            (ExceptionKind::Delayed, "both"),
            (ExceptionKind::Delayed, "storm")
        ]
    );
    // The superseded delay reason no longer matches.
    assert!(
        rows_for(Some(ExceptionReason::CarrierDelay), vec![])
            .await
            .is_empty()
    );
    // A reason with only kinds that have none: nothing, and no error.
    assert!(
        rows_for(Some(ExceptionReason::Weather), vec![ExceptionKind::Stalled])
            .await
            .is_empty()
    );

    let mut q = ExceptionQuery::new(now);
    q.reason = Some(ExceptionReason::AddressIssue);
    let counts = store.count_exceptions(s, q).await.unwrap();
    assert_eq!(
        counts,
        [
            (ExceptionKind::Delayed, 0),
            (ExceptionKind::Failure, 2),
            (ExceptionKind::ReturnToSender, 0)
        ]
    );

    // The order list: orders with a shipment whose current reason is the one asked for.
    let orders_with = |reason: ExceptionReason| {
        let store = store.clone();
        let s = s.to_owned();
        async move {
            let mut ids: Vec<String> = store
                .list_orders(
                    &s,
                    OrderQuery {
                        exception_reason: Some(reason),
                        limit: 50,
                        ..OrderQuery::default()
                    },
                )
                .await
                .unwrap()
                .orders
                .into_iter()
                .map(|o| o.external_id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(
        orders_with(ExceptionReason::AddressIssue).await,
        ["addr", "both"]
    );
    assert_eq!(orders_with(ExceptionReason::Weather).await, ["storm"]);
    assert_eq!(orders_with(ExceptionReason::Refused).await, ["refused"]);
    assert!(orders_with(ExceptionReason::Lost).await.is_empty());
}
