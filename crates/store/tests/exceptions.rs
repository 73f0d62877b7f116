//! `Store::list_exceptions` / `count_exceptions` and the order list's exception, carrier and
//! sort options: delayed, stalled, past-ETA, failed, returning and long-waiting-at-pickup
//! shipments are found, on-time and delivered ones are not, and only in their own store. On a
//! real SQLite file, or on PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use waybill_core::{
    NewFulfillment, OrderRef, Package, Quantity, ShipmentStatus, StatusOrEvent, StatusUpdate, time,
};
use waybill_store::testing::{TestDatabase, one_line_order};
use waybill_store::{ExceptionKind, ExceptionQuery, OrderQuery, OrderSort, Store};

async fn shipped(
    store: &Arc<dyn Store>,
    store_id: &str,
    order: &str,
    carrier: &str,
    eta: Option<NaiveDate>,
) {
    store
        .create_order(store_id, one_line_order(order, 1))
        .await
        .unwrap();
    let mut f = NewFulfillment::new(
        Some(format!("ful-{order}")),
        vec![("L".into(), Quantity::new("quantity", 1).unwrap())],
        vec![Package {
            carrier: Some(carrier.into()),
            tracking_number: format!("TRK{order}"),
            tracking_url: None,
        }],
        ShipmentStatus::InTransit,
    )
    .unwrap();
    f.estimated_delivery = eta;
    store
        .create_fulfillment(store_id, &OrderRef::new(order), f)
        .await
        .unwrap();
}

async fn update(
    store: &Arc<dyn Store>,
    store_id: &str,
    order: &str,
    change: StatusOrEvent,
    ago: i64,
) {
    let mut u = StatusUpdate::new(change);
    u.datetime = Some(time::now() - Duration::days(ago));
    store
        .update_shipment_status(store_id, &OrderRef::new(order), &format!("ful-{order}"), u)
        .await
        .unwrap();
}

fn status(s: &str) -> StatusOrEvent {
    StatusOrEvent::parse(s).unwrap()
}

#[tokio::test]
async fn exceptions_are_found_per_kind_and_only_in_their_store() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (mine, _) = store.create_store("Mine").await.unwrap();
    let (theirs, _) = store.create_store("Theirs").await.unwrap();
    let s = mine.id.as_str();
    let today = time::now().date_naive();

    shipped(&store, s, "on-time", "UPS", Some(today + Duration::days(3))).await;
    shipped(&store, s, "delayed", "UPS", None).await;
    update(&store, s, "delayed", status("delayed"), 1).await;
    shipped(&store, s, "stalled", "FedEx", None).await;
    update(&store, s, "stalled", status("stalled_in_transit"), 0).await;
    shipped(&store, s, "late", "USPS", Some(today - Duration::days(2))).await;
    shipped(&store, s, "failed", "UPS", None).await;
    update(&store, s, "failed", status("failure"), 0).await;
    shipped(&store, s, "returning", "UPS", None).await;
    update(&store, s, "returning", status("return_to_sender"), 0).await;
    shipped(&store, s, "pickup-old", "UPS", None).await;
    update(&store, s, "pickup-old", status("available_for_pickup"), 5).await;
    shipped(&store, s, "pickup-new", "UPS", None).await;
    update(&store, s, "pickup-new", status("available_for_pickup"), 1).await;
    // Delayed, then delivered: no longer an exception.
    shipped(
        &store,
        s,
        "delivered",
        "UPS",
        Some(today - Duration::days(5)),
    )
    .await;
    update(&store, s, "delivered", status("delayed"), 3).await;
    update(&store, s, "delivered", status("delivered"), 0).await;
    // Another store's delayed shipment.
    shipped(&store, &theirs.id, "delayed", "UPS", None).await;
    update(&store, &theirs.id, "delayed", status("delayed"), 0).await;

    let now = time::now();
    let mut all = ExceptionQuery::new(now);
    all.limit = 100;
    let rows = store.list_exceptions(s, all.clone()).await.unwrap();
    let mut found: Vec<(ExceptionKind, String)> = rows
        .iter()
        .map(|r| (r.kind, r.order_external_id.clone()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (ExceptionKind::Delayed, "delayed".to_owned()),
            (ExceptionKind::Stalled, "stalled".to_owned()),
            (ExceptionKind::PastEta, "late".to_owned()),
            (ExceptionKind::Failure, "failed".to_owned()),
            (ExceptionKind::ReturnToSender, "returning".to_owned()),
            (ExceptionKind::PickupWaiting, "pickup-old".to_owned()),
        ]
    );
    let delayed = rows
        .iter()
        .find(|r| r.kind == ExceptionKind::Delayed)
        .unwrap();
    assert_eq!(delayed.tracking_number.as_deref(), Some("TRKdelayed"));
    assert_eq!(delayed.carrier.as_deref(), Some("UPS"));
    assert_eq!(delayed.fulfillment_id, "ful-delayed");
    // Newest first: the stalled event (today) before the delayed one (a day ago).
    let pos = |k| rows.iter().position(|r| r.kind == k).unwrap();
    assert!(pos(ExceptionKind::Stalled) < pos(ExceptionKind::Delayed));

    let counts = store.count_exceptions(s, all.clone()).await.unwrap();
    assert_eq!(counts.len(), ExceptionKind::ALL.len());
    assert!(counts.iter().all(|(_, n)| *n == 1), "{counts:?}");
    let theirs_counts = store
        .count_exceptions(&theirs.id, all.clone())
        .await
        .unwrap();
    assert_eq!(
        theirs_counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>(),
        [&(ExceptionKind::Delayed, 1)]
    );

    // One kind, and paging.
    let mut only = all.clone();
    only.kinds = vec![ExceptionKind::Stalled];
    let rows = store.list_exceptions(s, only.clone()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].order_external_id, "stalled");
    assert_eq!(
        store.count_exceptions(s, only).await.unwrap(),
        [(ExceptionKind::Stalled, 1)]
    );
    let mut page = all.clone();
    page.limit = 2;
    page.offset = 5;
    assert_eq!(store.list_exceptions(s, page).await.unwrap().len(), 1);

    // The order list filtered by exception and by carrier, and sorted.
    let list = |q: OrderQuery| {
        let store = store.clone();
        async move {
            store
                .list_orders(s, OrderQuery { limit: 50, ..q })
                .await
                .unwrap()
                .orders
                .into_iter()
                .map(|o| o.external_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(OrderQuery {
            exception: Some((ExceptionKind::Delayed, now)),
            ..OrderQuery::default()
        })
        .await,
        ["delayed"]
    );
    assert_eq!(
        list(OrderQuery {
            carrier: Some("fedex".into()),
            ..OrderQuery::default()
        })
        .await,
        ["stalled"]
    );
    let newest = list(OrderQuery {
        sort: OrderSort::Newest,
        ..OrderQuery::default()
    })
    .await;
    let oldest = list(OrderQuery::default()).await;
    assert_eq!(oldest.first().map(String::as_str), Some("on-time"));
    assert_eq!(newest.last().map(String::as_str), Some("on-time"));
    assert_eq!(newest.first().map(String::as_str), Some("delivered"));
    let by_eta = list(OrderQuery {
        sort: OrderSort::Eta,
        ..OrderQuery::default()
    })
    .await;
    // "late" is due first, then "on-time"; the delivered one has no open ETA.
    assert_eq!(&by_eta[..2], ["late", "on-time"]);
    let by_status: Vec<&'static str> = store
        .list_orders(
            s,
            OrderQuery {
                sort: OrderSort::Status,
                limit: 50,
                ..OrderQuery::default()
            },
        )
        .await
        .unwrap()
        .orders
        .iter()
        .map(|o| waybill_core::order_status::derive(o).as_str())
        .collect();
    assert_eq!(by_status.len(), 9);
    assert!(by_status.windows(2).all(|w| w[0] <= w[1]), "{by_status:?}");
    assert!(by_status.first() != by_status.last(), "{by_status:?}");
}
