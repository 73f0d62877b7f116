//! A status update answers the fulfillment as it is then stored: PostgreSQL builds the answer
//! from what it wrote instead of reading the fulfillment again, so every kind of update is
//! compared here with a fresh read. On a real SQLite file, or on PostgreSQL when
//! `WAYBILL_TEST_POSTGRES_URL` is set.

use waybill_core::{
    Fulfillment, Location, OrderRef, ShipmentEvent, ShipmentStatus, StatusOrEvent, StatusUpdate,
    time,
};
use waybill_store::testing::{TestDatabase, one_line_order, units_of_l};

fn at(text: &str) -> waybill_core::Timestamp {
    time::parse_datetime("datetime", text).unwrap()
}

fn status(s: ShipmentStatus) -> StatusUpdate {
    StatusUpdate::new(StatusOrEvent::Status(s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_update_answers_what_a_read_then_finds() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let (record, _) = store.create_store("shop").await.unwrap();
    let store_id = record.id;
    store
        .create_order(&store_id, one_line_order("O-1", 2))
        .await
        .unwrap();
    let order = OrderRef::new("O-1");
    let created = store
        .create_fulfillment(&store_id, &order, units_of_l(None, 1))
        .await
        .unwrap();
    let id = created.id.clone();

    let mut updates = Vec::new();
    // A carrier status with a time in sub-milliseconds, a location, a label and an ETA.
    let mut first = status(ShipmentStatus::InTransit);
    first.datetime = Some(at("2030-03-20T10:00:00.123456Z"));
    first.status_label = Some("Departed facility".into());
    first.estimated_delivery = chrono::NaiveDate::from_ymd_opt(2030, 3, 25);
    first.location = Some(Location {
        city: Some("Leeds".into()),
        ..Location::default()
    });
    first.message = Some("left the hub".into());
    updates.push(first);
    // One that happened earlier than the last: it goes before it in the history.
    let mut late_report = status(ShipmentStatus::PreTransit);
    late_report.datetime = Some(at("2030-03-19T08:00:00Z"));
    updates.push(late_report);
    // Two in the same millisecond: insertion order.
    let mut same = status(ShipmentStatus::InTransit);
    same.datetime = Some(at("2030-03-21T09:00:00.500Z"));
    updates.push(same.clone());
    updates.push(same);
    // An event, which keeps the status.
    updates.push(StatusUpdate::new(StatusOrEvent::Event(
        ShipmentEvent::Delayed,
    )));
    // Delivered days before the ETA: `delivered_at` and an `arriving_early` follow-up.
    let mut delivered = status(ShipmentStatus::Delivered);
    delivered.datetime = Some(at("2030-03-22T12:00:00.999Z"));
    updates.push(delivered);
    // A cancellation after the delivery (its refusal turned off here), then a
    // plain update without a time.
    let mut cancel = StatusUpdate::cancel();
    cancel.refuse_if_delivered = false;
    updates.push(cancel);
    updates.push(status(ShipmentStatus::Unknown));

    let mut raised_early = false;
    for (n, update) in updates.into_iter().enumerate() {
        let answered = store
            .update_shipment_status(&store_id, &order, &id, update)
            .await
            .unwrap();
        let read: Fulfillment = store
            .get_order(&store_id, &order)
            .await
            .unwrap()
            .fulfillments
            .into_iter()
            .find(|f| f.id == id)
            .unwrap();
        assert_eq!(answered, read, "update {n}");
        raised_early |= read.history.iter().any(|e| e.status == "arriving_early");
    }
    assert!(raised_early, "the early delivery raised its follow-up");
}
