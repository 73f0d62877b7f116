//! The order status a creation stores is the core's rule (`order_status::derive`) applied to
//! the order as it then stands, whatever status the new fulfillment is created in. On a real
//! SQLite file, or on PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set (where the status is
//! computed from the counts read before the writes plus the new fulfillment's units).

use waybill_core::order_status::derive;
use waybill_core::{
    NewFulfillment, OrderRef, OrderStatus, Quantity, ShipmentStatus, StatusOrEvent, StatusUpdate,
};
use waybill_store::testing::{TestDatabase, one_line_order};
use waybill_store::{OrderQuery, Store};

fn units(quantity: i64, status: ShipmentStatus) -> NewFulfillment {
    NewFulfillment::new(
        None,
        vec![("L".into(), Quantity::new("quantity", quantity).unwrap())],
        vec![],
        status,
    )
    .unwrap()
}

/// The order's stored status, as the status filter of the order list finds it.
async fn stored_status(store: &dyn Store, store_id: &str) -> OrderStatus {
    let mut found = Vec::new();
    for status in OrderStatus::ALL {
        let query = OrderQuery {
            statuses: vec![status],
            limit: 10,
            ..OrderQuery::default()
        };
        if store.list_orders(store_id, query).await.unwrap().total > 0 {
            found.push(status);
        }
    }
    assert_eq!(found.len(), 1, "the order has one stored status: {found:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_stores_the_status_the_core_derives() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (record, _) = store.create_store("shop").await.unwrap();
    let store_id = record.id;
    store
        .create_order(&store_id, one_line_order("S-1", 5))
        .await
        .unwrap();
    let steps = [
        (
            1,
            ShipmentStatus::PreTransit,
            OrderStatus::PartiallyInProduction,
        ),
        (1, ShipmentStatus::InTransit, OrderStatus::PartiallyShipped),
        (
            2,
            ShipmentStatus::Delivered,
            OrderStatus::PartiallyDelivered,
        ),
        // Not live: its units count nowhere, so the status stays.
        (
            1,
            ShipmentStatus::Cancelled,
            OrderStatus::PartiallyDelivered,
        ),
    ];
    for (quantity, status, expected) in steps {
        store
            .create_fulfillment(&store_id, &OrderRef::new("S-1"), units(quantity, status))
            .await
            .unwrap();
        let order = store
            .get_order(&store_id, &OrderRef::new("S-1"))
            .await
            .unwrap();
        assert_eq!(derive(&order), expected, "after a {status:?} fulfillment");
        assert_eq!(
            stored_status(store.as_ref(), &store_id).await,
            expected,
            "after a {status:?} fulfillment"
        );
    }
}

/// A creation after status changes and a cancellation stores the status the core derives:
/// the unit counts a creation starts from must have followed every earlier change (on both
/// backends the order's row keeps them, and every other change refreshes them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_after_status_changes_stores_the_status_the_core_derives() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (record, _) = store.create_store("shop").await.unwrap();
    let store_id = record.id;
    let order = OrderRef::new("S-2");
    store
        .create_order(&store_id, one_line_order("S-2", 4))
        .await
        .unwrap();
    let set = |id: String, status: ShipmentStatus| {
        let (store, store_id, order) = (store.clone(), store_id.clone(), order.clone());
        async move {
            let update = StatusUpdate::new(StatusOrEvent::Status(status));
            store
                .update_shipment_status(&store_id, &order, &id, update)
                .await
                .unwrap();
        }
    };
    let create = |quantity: i64, expected: OrderStatus| {
        let (store, store_id, order) = (store.clone(), store_id.clone(), order.clone());
        async move {
            let created = store
                .create_fulfillment(
                    &store_id,
                    &order,
                    units(quantity, ShipmentStatus::PreTransit),
                )
                .await
                .unwrap();
            let stored = store.get_order(&store_id, &order).await.unwrap();
            assert_eq!(derive(&stored), expected, "after creating {quantity} units");
            assert_eq!(
                stored_status(store.as_ref(), &store_id).await,
                expected,
                "after creating {quantity} units"
            );
            created.id
        }
    };
    let a = create(2, OrderStatus::PartiallyInProduction).await;
    set(a, ShipmentStatus::Cancelled).await;
    // Counted with the cancelled units, 5 of 4 would be in production.
    let b = create(3, OrderStatus::PartiallyInProduction).await;
    set(b, ShipmentStatus::InTransit).await;
    // Counted without the shipment, all 4 units would be merely in production.
    create(1, OrderStatus::PartiallyShipped).await;
}
