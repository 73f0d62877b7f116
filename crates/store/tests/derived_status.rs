//! The order status a creation stores is the core's rule (`order_status::derive`) applied to
//! the order as it then stands, whatever status the new fulfillment is created in. On a real
//! SQLite file, or on PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set (where the status is
//! computed from the counts read before the writes plus the new fulfillment's units).

use waybill_core::order_status::derive;
use waybill_core::{NewFulfillment, OrderRef, OrderStatus, Quantity, ShipmentStatus};
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
