//! An order reads back with each of its lists in its defined order, on a real SQLite file or on
//! PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set: line items and a fulfillment's lines as
//! they were sent, fulfillments by creation, packages as sent, history by date. Ids are chosen
//! so that none of these is the order of the keys the rows are stored under.

use std::time::Duration;

use waybill_core::{
    NewFulfillment, NewLineItem, NewOrder, OrderRef, Package, Quantity, ShipmentStatus,
    StatusOrEvent, StatusUpdate, time,
};
use waybill_store::Store;
use waybill_store::testing::TestDatabase;

fn quantity(n: i64) -> Quantity {
    Quantity::new("quantity", n).unwrap()
}

fn line(id: &str) -> NewLineItem {
    NewLineItem {
        id: id.into(),
        product_id: None,
        variant_id: None,
        sku: None,
        title: format!("Item {id}"),
        quantity: quantity(2),
        price: None,
        extra: Default::default(),
    }
}

fn package(number: &str) -> Package {
    Package {
        carrier: None,
        tracking_number: number.into(),
        tracking_url: None,
    }
}

fn fulfillment(id: &str, lines: &[&str], packages: Vec<Package>) -> NewFulfillment {
    let lines = lines.iter().map(|l| (l.to_string(), quantity(1))).collect();
    NewFulfillment::new(Some(id.into()), lines, packages, ShipmentStatus::PreTransit).unwrap()
}

async fn post_status(store: &dyn Store, store_id: &str, id: &str, at: &str) {
    let mut update = StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::InTransit));
    update.message = Some(format!("scanned {at}"));
    update.datetime = Some(at.parse().unwrap());
    store
        .update_shipment_status(store_id, &OrderRef::new("R-1"), id, update)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reads_back_with_every_list_in_order() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (record, _) = store.create_store("shop").await.unwrap();
    let store_id = record.id;
    let order = NewOrder::new(
        "R-1".into(),
        time::now(),
        vec![line("c"), line("a"), line("b")],
        Default::default(),
    )
    .unwrap();
    store.create_order(&store_id, order).await.unwrap();
    let order_ref = OrderRef::new("R-1");

    let packages = vec![package("Z-9"), package("A-1"), package("M-5")];
    store
        .create_fulfillment(
            &store_id,
            &order_ref,
            fulfillment("F-b", &["c", "a"], packages),
        )
        .await
        .unwrap();
    // Creation times are in milliseconds: a pause keeps the two apart.
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .create_fulfillment(&store_id, &order_ref, fulfillment("F-a", &["b"], vec![]))
        .await
        .unwrap();
    for at in [
        "2024-03-22T10:00:00Z",
        "2024-03-20T10:00:00Z",
        "2024-03-21T10:00:00Z",
    ] {
        post_status(store.as_ref(), &store_id, "F-b", at).await;
    }

    let by_external = store.get_order(&store_id, &order_ref).await.unwrap();
    let by_internal = store
        .get_order(&store_id, &OrderRef::new(by_external.id.to_string()))
        .await
        .unwrap();
    assert_eq!(
        by_external, by_internal,
        "both ways to name an order read the same"
    );
    for order in [by_external, by_internal] {
        let ids: Vec<&str> = order.line_items.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["c", "a", "b"], "line items as sent");
        let ids: Vec<&str> = order.fulfillments.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["F-b", "F-a"], "fulfillments by creation");
        let first = &order.fulfillments[0];
        let lines: Vec<&str> = first
            .lines
            .iter()
            .map(|l| l.line_item_id.as_str())
            .collect();
        assert_eq!(lines, ["c", "a"], "a fulfillment's lines as sent");
        assert_eq!(first.lines[0].title, "Item c");
        let numbers: Vec<&str> = first
            .packages
            .iter()
            .map(|p| p.tracking_number.as_str())
            .collect();
        assert_eq!(numbers, ["Z-9", "A-1", "M-5"], "packages as sent");
        let messages: Vec<&str> = first.history.iter().map(|h| h.message.as_str()).collect();
        assert_eq!(
            first.history.len(),
            4,
            "the creation's entry and three updates"
        );
        assert_eq!(
            messages[..3],
            [
                "scanned 2024-03-20T10:00:00Z",
                "scanned 2024-03-21T10:00:00Z",
                "scanned 2024-03-22T10:00:00Z"
            ],
            "history by date, the creation's entry (dated now) last"
        );
        let second = &order.fulfillments[1];
        assert_eq!(second.lines.len(), 1);
        assert_eq!(second.lines[0].line_item_id, "b");
        assert!(second.packages.is_empty() && second.history.len() == 1);
    }
}
