//! The time-event scheduler's scan: each store's stalled-in-transit threshold decides, whether it
//! is shorter or longer than the default of 72 hours. The scan is bounded by the shortest
//! threshold any store has, so a store with a longer one must still be found once its own time
//! has come, and one with a shorter one before the default's. On a real SQLite file, or on
//! PostgreSQL when `WAYBILL_TEST_POSTGRES_URL` is set.

use std::time::Duration;

use waybill_core::{OrderRef, ShipmentEvent, ShipmentStatus, StatusOrEvent, StatusUpdate, time};
use waybill_store::automations::SettingsUpdate;
use waybill_store::testing::{TestDatabase, one_line_order, units_of_l};

const HOUR: i64 = 3600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_store_is_stalled_after_its_own_threshold() {
    let db = TestDatabase::new().await.unwrap();
    let store = db.open().await.unwrap();
    let started = time::now();
    // (store name, its threshold in hours; None keeps the default of 72)
    let shops = [("short", Some(24)), ("default", None), ("long", Some(96))];
    let mut ids = Vec::new();
    for (name, hours) in shops {
        let (record, _) = store.create_store(name).await.unwrap();
        if let Some(hours) = hours {
            store
                .update_store_settings(
                    &record.id,
                    SettingsUpdate {
                        stall_after: Some(Duration::from_secs(hours * 3600)),
                        easypost_secret: None,
                    },
                )
                .await
                .unwrap();
        }
        store
            .create_order(&record.id, one_line_order("O-1", 1))
            .await
            .unwrap();
        let created = store
            .create_fulfillment(&record.id, &OrderRef::new("O-1"), units_of_l(None, 1))
            .await
            .unwrap();
        let mut update = StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::InTransit));
        update.datetime = Some(started);
        store
            .update_shipment_status(
                &record.id,
                &OrderRef::new("O-1"),
                &created.id.to_string(),
                update,
            )
            .await
            .unwrap();
        ids.push(record.id);
    }

    let raised_at = async |hours: i64| -> Vec<String> {
        let now = started + chrono::Duration::seconds(hours * HOUR + 60);
        let raised = store.raise_due_events(now, 100).await.unwrap();
        assert!(
            raised
                .iter()
                .all(|r| r.event == ShipmentEvent::StalledInTransit),
            "{raised:?}"
        );
        raised.into_iter().map(|r| r.store_id).collect()
    };
    assert_eq!(
        raised_at(23).await,
        Vec::<String>::new(),
        "nothing is due yet"
    );
    assert_eq!(raised_at(24).await, vec![ids[0].clone()], "the 24 h store");
    assert_eq!(
        raised_at(72).await,
        vec![ids[1].clone()],
        "the default store"
    );
    assert_eq!(
        raised_at(80).await,
        Vec::<String>::new(),
        "the 96 h store is not due at 80 h"
    );
    assert_eq!(raised_at(96).await, vec![ids[2].clone()], "the 96 h store");
    assert_eq!(raised_at(200).await, Vec::<String>::new(), "each once");
}
