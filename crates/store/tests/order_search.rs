//! `OrderQuery::search`: an order is found by its external id (exactly or by prefix), its
//! customer email (case-insensitively), a line's SKU or a package's tracking number, only in
//! its own store, combined with the other filters and paging. On a real SQLite file, or on
//! PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set.

use std::sync::Arc;

use waybill_core::order::LineItemExtra;
use waybill_core::{
    Customer, NewFulfillment, NewLineItem, NewOrder, OrderDetails, OrderRef, OrderStatus, Package,
    Quantity, ShipmentStatus, time,
};
use waybill_store::testing::TestDatabase;
use waybill_store::{OrderQuery, Store};

fn order(id: &str, email: &str, sku: &str) -> NewOrder {
    NewOrder::new(
        id.into(),
        time::now(),
        vec![NewLineItem {
            id: "L".into(),
            product_id: None,
            variant_id: None,
            sku: Some(sku.into()),
            title: "Item".into(),
            quantity: Quantity::new("quantity", 2).unwrap(),
            price: None,
            extra: LineItemExtra::default(),
        }],
        OrderDetails {
            customer: Some(Customer {
                email: Some(email.into()),
                ..Customer::default()
            }),
            ..OrderDetails::default()
        },
    )
    .unwrap()
}

async fn ship(store: &Arc<dyn Store>, store_id: &str, order: &str, tracking: &str) {
    let fulfillment = NewFulfillment::new(
        None,
        vec![("L".into(), Quantity::new("quantity", 1).unwrap())],
        vec![Package {
            carrier: Some("UPS".into()),
            tracking_number: tracking.into(),
            tracking_url: None,
        }],
        ShipmentStatus::InTransit,
    )
    .unwrap();
    store
        .create_fulfillment(store_id, &OrderRef::new(order), fulfillment)
        .await
        .unwrap();
}

async fn found(store: &Arc<dyn Store>, store_id: &str, query: OrderQuery) -> Vec<String> {
    let page = store
        .list_orders(
            store_id,
            OrderQuery {
                limit: query.limit.max(50),
                ..query
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.total as usize,
        page.orders.len(),
        "total counts the same matches"
    );
    page.orders.into_iter().map(|o| o.external_id).collect()
}

fn search(text: &str) -> OrderQuery {
    OrderQuery {
        search: Some(text.into()),
        ..OrderQuery::default()
    }
}

#[tokio::test]
async fn search_matches_id_prefix_email_sku_and_tracking_number_in_one_store() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (mine, _) = store.create_store("Mine").await.unwrap();
    let (theirs, _) = store.create_store("Theirs").await.unwrap();
    let s = mine.id.as_str();

    store
        .create_order(s, order("1001", "Ada@Example.com", "MUG-RED"))
        .await
        .unwrap();
    store
        .create_order(s, order("1002", "grace@example.com", "TEE-L"))
        .await
        .unwrap();
    store
        .create_order(s, order("2001", "alan@example.com", "1001"))
        .await
        .unwrap();
    store
        .create_order(s, order("10\u{10ffff}", "x@example.com", "X"))
        .await
        .unwrap();
    ship(&store, s, "1002", "1Z999AA10123456784").await;
    store
        .create_order(&theirs.id, order("1001", "ada@example.com", "MUG-RED"))
        .await
        .unwrap();
    ship(&store, &theirs.id, "1001", "1Z999AA10123456784").await;

    // External id: exact and prefix (and "1001" is also another order's SKU).
    assert_eq!(found(&store, s, search("1001")).await, ["1001", "2001"]);
    assert_eq!(
        found(&store, s, search("10")).await,
        ["1001", "1002", "10\u{10ffff}"]
    );
    assert_eq!(found(&store, s, search("100")).await, ["1001", "1002"]);
    assert_eq!(
        found(&store, s, search("10\u{10ffff}")).await,
        ["10\u{10ffff}"]
    );
    // Email, whatever its case; not by prefix.
    assert_eq!(found(&store, s, search("ADA@example.COM")).await, ["1001"]);
    assert!(found(&store, s, search("ada@")).await.is_empty());
    // SKU and tracking number, exactly; surrounding blanks do not count.
    assert_eq!(found(&store, s, search("TEE-L")).await, ["1002"]);
    assert!(found(&store, s, search("TEE")).await.is_empty());
    assert_eq!(
        found(&store, s, search("  1Z999AA10123456784 ")).await,
        ["1002"]
    );
    assert!(
        found(&store, s, search("1Z999AA1012345678"))
            .await
            .is_empty()
    );
    // A blank search is no search.
    assert_eq!(found(&store, s, search("  ")).await.len(), 4);
    // Another store's orders are never found.
    assert_eq!(
        found(&store, &theirs.id, search("1Z999AA10123456784")).await,
        ["1001"]
    );

    // Combined with the status filter.
    let shipped = OrderQuery {
        statuses: vec![OrderStatus::PartiallyShipped],
        ..search("10")
    };
    assert_eq!(found(&store, s, shipped).await, ["1002"]);

    // And paged: total counts every match, pages hold `limit`.
    let page = store
        .list_orders(
            s,
            OrderQuery {
                limit: 2,
                ..search("10")
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert!(page.has_more);
    assert_eq!(page.orders.len(), 2);
    let rest = store
        .list_orders(
            s,
            OrderQuery {
                limit: 2,
                offset: 2,
                ..search("10")
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.orders.len(), 1);
    assert!(!rest.has_more);
}
