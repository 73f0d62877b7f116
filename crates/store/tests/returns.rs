//! The returns part of the `Store` contract: concurrent returns never exceed the fulfilled
//! units, the lifecycle and its refusals, the units an order shows, and one outbox event per
//! change (with the return and the order as of the change). On a real SQLite file, or on
//! PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set: both backends pass the same test.

use std::sync::Arc;
use std::time::Duration;

use waybill_core::returns::ReturnFieldNames;
use waybill_core::{
    DomainError, NewReturn, NewReturnLine, OrderRef, Package, Quantity, ReturnReason, ReturnStatus,
    ReturnUpdate, ShipmentStatus, StatusUpdate, time,
};
use waybill_store::testing::{TestDatabase, one_line_order, units_of_l};
use waybill_store::{
    AttemptLog, DeliveryNext, DeliveryResult, EventData, LineUnits, NewWebhook, ReturnQuery, Store,
    StoreError, WebhookFlavor, WebhookHealth,
};

const NAMES: ReturnFieldNames<'static> = ReturnFieldNames {
    id: "id",
    lines: "items",
    line_id: "lineItemId",
    note: "notes",
};

fn units(id: Option<&str>, quantity: i64) -> NewReturn {
    NewReturn::new(
        id.map(str::to_owned),
        vec![NewReturnLine {
            line_item_id: "L".into(),
            quantity: Quantity::new("quantity", quantity).unwrap(),
            reason: ReturnReason::TooSmall,
            note: Some("a size up, please".into()),
        }],
        vec![Package {
            carrier: Some("UPS".into()),
            tracking_number: "1Z999AA10123456784".into(),
            tracking_url: None,
        }],
        None,
        NAMES,
    )
    .unwrap()
}

fn to(status: ReturnStatus) -> ReturnUpdate {
    ReturnUpdate {
        status: Some(status),
        ..ReturnUpdate::default()
    }
}

fn domain(err: StoreError) -> DomainError {
    match err {
        StoreError::Domain(d) => d,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

async fn returned(store: &dyn Store, shop: &str, order: &str) -> u32 {
    let lines = LineUnits::of(&store.get_order(shop, &OrderRef::new(order)).await.unwrap());
    assert_eq!(lines.len(), 1);
    lines[0].returned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_returns_never_exceed_fulfilled_units() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    store
        .create_order(&shop.id, one_line_order("R-1", 20))
        .await
        .unwrap();
    let order = OrderRef::new("R-1");
    store
        .create_fulfillment(&shop.id, &order, units_of_l(Some("F1"), 4))
        .await
        .unwrap();
    store
        .create_fulfillment(&shop.id, &order, units_of_l(Some("F2"), 3))
        .await
        .unwrap();
    // A cancelled fulfillment's units cannot come back.
    store
        .create_fulfillment(&shop.id, &order, units_of_l(Some("F3"), 5))
        .await
        .unwrap();
    store
        .update_shipment_status(&shop.id, &order, "F3", StatusUpdate::cancel())
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        let shop = shop.id.clone();
        // 1 or 2 units each: 36 requested against 7 fulfilled.
        let quantity = 1 + (i % 2);
        tasks.push(tokio::spawn(async move {
            store
                .create_return(&shop, &OrderRef::new("R-1"), units(None, quantity))
                .await
                .map(|r| r.lines[0].quantity)
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(q) => accepted += q,
            Err(e) => assert!(
                matches!(domain(e), DomainError::OverReturn { .. }),
                "only over-returns are refused"
            ),
        }
    }
    assert!(accepted <= 7, "{accepted} units returned of 7 fulfilled");
    // The last refusal saw nothing returnable, or 1 unit against a 2-unit request.
    assert!(
        accepted >= 6,
        "requests stopped before the units ran out: {accepted}"
    );
    assert_eq!(returned(store.as_ref(), &shop.id, "R-1").await, accepted);
    let live: u32 = store
        .list_returns(
            &shop.id,
            ReturnQuery {
                order: Some(order.clone()),
                ..ReturnQuery::default()
            },
        )
        .await
        .unwrap()
        .iter()
        .filter(|r| r.status.is_live())
        .map(|r| r.lines[0].quantity)
        .sum();
    assert_eq!(live, accepted);
}

#[tokio::test]
async fn lifecycle_units_and_one_event_per_change() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let (hook, _) = store
        .create_webhook(
            &shop.id,
            NewWebhook {
                flavor: WebhookFlavor::Redo,
                url: "http://example.com/h".into(),
                topics: vec!["return".into()],
                external_id: None,
                bearer_token: None,
                secret: "whsec_AAAA".into(),
            },
        )
        .await
        .unwrap();
    store
        .create_order(&shop.id, one_line_order("R-2", 5))
        .await
        .unwrap();
    let order = OrderRef::new("R-2");
    store
        .create_fulfillment(&shop.id, &order, units_of_l(None, 3))
        .await
        .unwrap();

    let created = store
        .create_return(&shop.id, &order, units(Some("RET-1"), 2))
        .await
        .unwrap();
    assert_eq!(created.status, ReturnStatus::Requested);
    assert_eq!(created.shipment_status, ShipmentStatus::PreTransit);
    assert_eq!(created.order_external_id, "R-2");
    assert_eq!(created.lines[0].reason, ReturnReason::TooSmall);
    assert_eq!(created.lines[0].title, "Item");
    assert_eq!(created.packages[0].tracking_number, "1Z999AA10123456784");
    assert_eq!(created.history[0].status, "return.requested");
    assert_eq!(returned(store.as_ref(), &shop.id, "R-2").await, 2);

    // The parcel moves the lifecycle.
    let moving = store
        .update_return_status(
            &shop.id,
            "RET-1",
            ReturnUpdate {
                shipment_status: Some(ShipmentStatus::InTransit),
                ..ReturnUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moving.status, ReturnStatus::InTransit);
    let received = store
        .update_return_status(
            &shop.id,
            "RET-1",
            ReturnUpdate {
                shipment_status: Some(ShipmentStatus::Delivered),
                ..ReturnUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(received.status, ReturnStatus::Received);
    assert_eq!(received.shipment_status, ShipmentStatus::Delivered);
    let closed = store
        .update_return_status(&shop.id, "RET-1", to(ReturnStatus::Closed))
        .await
        .unwrap();
    assert_eq!(closed.status, ReturnStatus::Closed);
    let statuses: Vec<&str> = closed.history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "return.requested",
            "in_transit",
            "return.in_transit",
            "delivered",
            "return.received",
            "return.closed"
        ]
    );
    // A closed return cannot be rejected; nothing changes.
    let refused = store
        .update_return_status(&shop.id, "RET-1", to(ReturnStatus::Rejected))
        .await
        .unwrap_err();
    assert!(matches!(domain(refused), DomainError::Conflict(_)));
    assert_eq!(
        store.get_return(&shop.id, "RET-1").await.unwrap().status,
        ReturnStatus::Closed
    );

    // One unit is left to return; a rejected return gives its units back.
    let over = store
        .create_return(&shop.id, &order, units(None, 2))
        .await
        .unwrap_err();
    assert_eq!(
        domain(over),
        DomainError::OverReturn {
            line_item_id: "L".into(),
            requested: 2,
            returnable: 1
        }
    );
    store
        .create_return(&shop.id, &order, units(Some("RET-2"), 1))
        .await
        .unwrap();
    assert_eq!(returned(store.as_ref(), &shop.id, "R-2").await, 3);
    store
        .update_return_status(&shop.id, "RET-2", to(ReturnStatus::Rejected))
        .await
        .unwrap();
    let lines = LineUnits::of(&store.get_order(&shop.id, &order).await.unwrap());
    assert_eq!(
        (
            lines[0].ordered,
            lines[0].fulfilled,
            lines[0].returned,
            lines[0].remaining()
        ),
        (5, 3, 2, 2)
    );

    // Every change wrote one `return.*` event, in order, with the return as of the change.
    let now = time::now();
    store.fan_out_webhook_events("t", 100, now).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let claimed = store
            .claim_webhook_deliveries(now, 10, Duration::from_secs(30))
            .await
            .unwrap();
        if claimed.is_empty() {
            break;
        }
        for d in claimed {
            assert_eq!(d.webhook.id, hook.id);
            let data = EventData::parse(d.event.data.as_deref());
            let ret = data
                .return_record
                .clone()
                .expect("the return is in the event");
            assert_eq!(
                data.order.as_ref().map(|o| o.external_id.as_str()),
                Some("R-2")
            );
            assert_eq!(data.status.as_deref(), Some(ret.status.as_str()));
            assert!(d.event.fulfillment_id.is_none());
            seen.push((
                d.event.event_type.clone(),
                ret.id.clone(),
                data.previous_status.clone(),
                data.status.clone().unwrap_or_default(),
            ));
            store
                .finish_webhook_delivery(
                    DeliveryResult {
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
                        payload: None,
                    },
                    now,
                )
                .await
                .unwrap();
        }
    }
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(
        seen,
        vec![
            (
                "return.created".into(),
                "RET-1".into(),
                None,
                "requested".into()
            ),
            (
                "return.updated".into(),
                "RET-1".into(),
                s("requested"),
                "in_transit".into()
            ),
            (
                "return.updated".into(),
                "RET-1".into(),
                s("in_transit"),
                "received".into()
            ),
            (
                "return.updated".into(),
                "RET-1".into(),
                s("received"),
                "closed".into()
            ),
            (
                "return.created".into(),
                "RET-2".into(),
                None,
                "requested".into()
            ),
            (
                "return.updated".into(),
                "RET-2".into(),
                s("requested"),
                "rejected".into()
            ),
        ]
    );
}

#[tokio::test]
async fn refusals_change_nothing_and_stores_are_isolated() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let (other, _) = store.create_store("other").await.unwrap();
    store
        .create_order(&shop.id, one_line_order("R-3", 5))
        .await
        .unwrap();
    let order = OrderRef::new("R-3");
    // Nothing fulfilled: nothing to return.
    let err = store
        .create_return(&shop.id, &order, units(None, 1))
        .await
        .unwrap_err();
    assert!(matches!(
        domain(err),
        DomainError::OverReturn { returnable: 0, .. }
    ));
    store
        .create_fulfillment(&shop.id, &order, units_of_l(None, 2))
        .await
        .unwrap();
    let unknown_line = NewReturn::new(
        None,
        vec![NewReturnLine {
            line_item_id: "nope".into(),
            quantity: Quantity::new("q", 1).unwrap(),
            reason: ReturnReason::Other,
            note: None,
        }],
        vec![],
        None,
        NAMES,
    )
    .unwrap();
    let err = store
        .create_return(&shop.id, &order, unknown_line)
        .await
        .unwrap_err();
    assert!(matches!(domain(err), DomainError::UnknownLineItem { .. }));
    store
        .create_return(&shop.id, &order, units(Some("DUP"), 1))
        .await
        .unwrap();
    let err = store
        .create_return(&shop.id, &order, units(Some("DUP"), 1))
        .await
        .unwrap_err();
    assert_eq!(domain(err), DomainError::DuplicateReturn("DUP".into()));
    assert_eq!(returned(store.as_ref(), &shop.id, "R-3").await, 1);

    // Another store sees neither the order nor the return.
    let err = store
        .create_return(&other.id, &order, units(None, 1))
        .await
        .unwrap_err();
    assert!(matches!(domain(err), DomainError::OrderNotFound(_)));
    let err = store.get_return(&other.id, "DUP").await.unwrap_err();
    assert_eq!(domain(err), DomainError::ReturnNotFound("DUP".into()));
    let err = store
        .update_return_status(&other.id, "DUP", to(ReturnStatus::Rejected))
        .await
        .unwrap_err();
    assert!(matches!(domain(err), DomainError::ReturnNotFound(_)));
    assert!(
        store
            .list_returns(&other.id, ReturnQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get_return(&shop.id, "DUP").await.unwrap().status,
        ReturnStatus::Requested
    );
    // Listing filters by status and pages by id.
    let requested = store
        .list_returns(
            &shop.id,
            ReturnQuery {
                status: Some(ReturnStatus::Requested),
                ..ReturnQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(requested.len(), 1);
    let after = store
        .list_returns(
            &shop.id,
            ReturnQuery {
                after: Some("DUP".into()),
                ..ReturnQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(after.is_empty());
    // Deleting the order takes its returns with it.
    store.delete_order(&shop.id, &order).await.unwrap();
    let err = store.get_return(&shop.id, "DUP").await.unwrap_err();
    assert!(matches!(domain(err), DomainError::ReturnNotFound(_)));
}

#[tokio::test]
async fn a_carrier_report_on_a_return_parcel_moves_the_return() {
    use waybill_core::HistoryEntry;
    use waybill_core::carrier_update::CarrierReport;
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    store
        .create_order(&shop.id, one_line_order("R-4", 2))
        .await
        .unwrap();
    let order = OrderRef::new("R-4");
    store
        .create_fulfillment(&shop.id, &order, units_of_l(None, 2))
        .await
        .unwrap();
    store
        .create_return(&shop.id, &order, units(Some("RET-4"), 1))
        .await
        .unwrap();
    let scan = |status: &str, at: &str| HistoryEntry {
        status: status.into(),
        message: format!("{status} scan"),
        datetime: time::parse_datetime("d", at).unwrap(),
        location: None,
        reason: None,
    };
    let report = CarrierReport {
        estimated_delivery: None,
        details: vec![
            scan("in_transit", "2030-01-01T10:00:00Z"),
            scan("delivered", "2030-01-02T10:00:00Z"),
        ],
    };
    let moved = store
        .apply_return_carrier_report(&shop.id, "1Z999AA10123456784", report.clone())
        .await
        .unwrap()
        .expect("the return has that parcel");
    assert_eq!(moved.status, ReturnStatus::Received);
    assert_eq!(moved.shipment_status, ShipmentStatus::Delivered);
    let again = store
        .apply_return_carrier_report(&shop.id, "1Z999AA10123456784", report.clone())
        .await
        .unwrap()
        .expect("still that return");
    assert_eq!(again.history, moved.history, "nothing new, nothing added");
    assert!(
        store
            .apply_return_carrier_report(&shop.id, "unknown", report.clone())
            .await
            .unwrap()
            .is_none()
    );
    // Listing by any part of the parcel's number, without spaces, in any case.
    let by_tracking = |text: &str| ReturnQuery {
        tracking: Some(text.into()),
        ..ReturnQuery::default()
    };
    for text in ["1Z999AA10123456784", "z999 aa1", " 6784"] {
        let found = store
            .list_returns(&shop.id, by_tracking(text))
            .await
            .unwrap();
        assert_eq!(
            found.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["RET-4"],
            "{text}"
        );
    }
    for text in ["1Z999AA10123456785", "%", "_"] {
        let found = store
            .list_returns(&shop.id, by_tracking(text))
            .await
            .unwrap();
        assert!(found.is_empty(), "{text} finds nothing");
    }
    let all = store
        .list_returns(&shop.id, by_tracking("  "))
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "a blank filter is no filter");
    let (other, _) = store.create_store("other").await.unwrap();
    assert!(
        store
            .list_returns(&other.id, by_tracking("6784"))
            .await
            .unwrap()
            .is_empty(),
        "another store's parcel is not listed"
    );
    assert!(
        store
            .apply_return_carrier_report(&other.id, "1Z999AA10123456784", report)
            .await
            .unwrap()
            .is_none(),
        "another store's parcel is not found"
    );
}
