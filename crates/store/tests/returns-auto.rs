//! The loose ends of returns in the `Store` contract: automations triggered by a return's
//! status (one run per automation, return and status, however often the status is reached and
//! however many workers claim), a cancellation (or replacement) of a fulfillment whose units
//! are in returns refused, also when it races a return, and a carrier report on a return
//! parcel applying every new scan in order. On a real SQLite file, or on PostgreSQL when
//! `WAYBILL_TEST_POSTGRES_URL` is set.

use std::sync::Arc;
use std::time::Duration;

use waybill_core::carrier_update::CarrierReport;
use waybill_core::returns::ReturnFieldNames;
use waybill_core::{
    DomainError, HistoryEntry, NewReturn, NewReturnLine, OrderRef, Package, Quantity, ReturnReason,
    ReturnStatus, ReturnUpdate, ShipmentStatus, StatusUpdate, time,
};
use waybill_store::testing::{TestDatabase, one_line_order, units_of_l};
use waybill_store::{
    AutomationAction, AutomationTrigger, LineUnits, NewAutomation, Store, StoreError,
};

const NAMES: ReturnFieldNames<'static> = ReturnFieldNames {
    id: "id",
    lines: "items",
    line_id: "lineItemId",
    note: "notes",
};

const TRACKING: &str = "1Z999AA10123456784";

fn a_return(id: &str, quantity: i64) -> NewReturn {
    NewReturn::new(
        Some(id.to_owned()),
        vec![NewReturnLine {
            line_item_id: "L".into(),
            quantity: Quantity::new("quantity", quantity).unwrap(),
            reason: ReturnReason::Damaged,
            note: None,
        }],
        vec![Package {
            carrier: Some("UPS".into()),
            tracking_number: TRACKING.into(),
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

fn conflict(err: StoreError) -> String {
    match err {
        StoreError::Domain(DomainError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn mail_on(trigger: AutomationTrigger, carrier: Option<&str>) -> NewAutomation {
    NewAutomation {
        name: format!("mail on {trigger}"),
        trigger,
        carrier: carrier.map(str::to_owned),
        action: AutomationAction::Email {
            to: Some("merchant@shop.example".into()),
            subject: "Return {{ return.id }} {{ return.status }}".into(),
            body: "<p>{{ return.lines[0].reason }}</p>".into(),
        },
        enabled: true,
        webhook_secret: "whsec_test".into(),
    }
}

/// `(fulfilled, returned)` of line `L`.
async fn units(store: &dyn Store, shop: &str, order: &str) -> (u32, u32) {
    let lines = LineUnits::of(&store.get_order(shop, &OrderRef::new(order)).await.unwrap());
    (lines[0].fulfilled, lines[0].returned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_return_status_runs_each_automation_once_per_return() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let received = AutomationTrigger::Return(ReturnStatus::Received);
    let on_received = store
        .create_automation(&shop.id, mail_on(received, None))
        .await
        .unwrap();
    assert_eq!(on_received.trigger, received);
    let fedex_only = store
        .create_automation(&shop.id, mail_on(received, Some("FedEx")))
        .await
        .unwrap();
    let on_requested = store
        .create_automation(
            &shop.id,
            mail_on(AutomationTrigger::Return(ReturnStatus::Requested), None),
        )
        .await
        .unwrap();
    // A shipment trigger of the same name as a return's status is another trigger.
    let shipment_in_transit = store
        .create_automation(
            &shop.id,
            mail_on(AutomationTrigger::parse("in_transit").unwrap(), Some("UPS")),
        )
        .await
        .unwrap();

    store
        .create_order(&shop.id, one_line_order("A-1", 6))
        .await
        .unwrap();
    let order = OrderRef::new("A-1");
    store
        .create_fulfillment(&shop.id, &order, units_of_l(Some("F1"), 4))
        .await
        .unwrap();
    store
        .create_return(&shop.id, &order, a_return("RA-1", 2))
        .await
        .unwrap();
    store
        .create_return(&shop.id, &order, a_return("RA-2", 1))
        .await
        .unwrap();
    // RA-1 is received three ways: by its parcel's carrier, by a status, and again.
    let delivered = CarrierReport {
        estimated_delivery: None,
        details: vec![HistoryEntry {
            status: "delivered".into(),
            message: "Delivered to the warehouse".into(),
            datetime: time::now(),
            location: None,
            reason: None,
        }],
    };
    let after = store
        .apply_return_carrier_report(&shop.id, TRACKING, delivered.clone())
        .await
        .unwrap()
        .unwrap();
    // The newest return with that number is RA-2.
    assert_eq!(
        (after.id.as_str(), after.status),
        ("RA-2", ReturnStatus::Received)
    );
    for _ in 0..2 {
        store
            .update_return_status(&shop.id, "RA-1", to(ReturnStatus::Received))
            .await
            .unwrap();
    }
    store
        .apply_return_carrier_report(&shop.id, TRACKING, delivered)
        .await
        .unwrap();

    let runs = |id: String| {
        let store = store.clone();
        let shop = shop.id.clone();
        async move {
            store
                .list_automation_runs(&shop, &id, 100)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let mut got: Vec<(Option<String>, Option<String>, String)> = runs(on_received.id.clone())
        .await
        .into_iter()
        .map(|r| (r.return_id, r.fulfillment_id, r.trigger))
        .collect();
    got.sort();
    let run = |r: &str| (Some(r.to_owned()), None, "return.received".to_owned());
    assert_eq!(got, vec![run("RA-1"), run("RA-2")]);
    assert!(
        runs(fedex_only.id.clone()).await.is_empty(),
        "carrier filter"
    );
    assert_eq!(runs(on_requested.id.clone()).await.len(), 2);
    assert!(runs(shipment_in_transit.id.clone()).await.is_empty());

    // Several workers claim at once: each run is claimed by one of them.
    let mut claimers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            store
                .claim_automation_runs(time::now(), 10, Duration::from_secs(60))
                .await
                .unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for c in claimers {
        claimed.extend(c.await.unwrap());
    }
    let mut ids: Vec<i64> = claimed.iter().map(|c| c.run.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), claimed.len(), "a run claimed twice");
    assert_eq!(claimed.len(), 4, "two received and two requested runs");
    for c in &claimed {
        let data = waybill_store::EventData::parse(c.event_data.as_deref());
        let record = data
            .return_record
            .expect("the run's event carries the return");
        assert_eq!(Some(&record.id), c.run.return_id.as_ref());
        assert_eq!(
            format!("return.{}", record.status.as_str()),
            c.run.trigger,
            "the event is the one that reached the status"
        );
    }
}

#[tokio::test]
async fn cancelling_a_fulfillment_whose_units_are_returned_is_refused() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    store
        .create_order(&shop.id, one_line_order("C-1", 10))
        .await
        .unwrap();
    let order = OrderRef::new("C-1");
    store
        .create_fulfillment(&shop.id, &order, units_of_l(Some("F1"), 4))
        .await
        .unwrap();
    store
        .create_return(&shop.id, &order, a_return("RC-1", 2))
        .await
        .unwrap();
    let before = store.get_order(&shop.id, &order).await.unwrap();

    let message = conflict(
        store
            .update_shipment_status(&shop.id, &order, "F1", StatusUpdate::cancel())
            .await
            .unwrap_err(),
    );
    assert!(
        message.contains("'F1' cannot be cancelled") && message.contains("in returns"),
        "{message}"
    );
    // Nothing changed: not the fulfillment, its history, the ledger or the order's events.
    let after = store.get_order(&shop.id, &order).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(units(store.as_ref(), &shop.id, "C-1").await, (4, 2));

    // Replacing it with fewer units than are returned is refused the same way.
    let message = conflict(
        store
            .upsert_fulfillment(&shop.id, &order, units_of_l(Some("F1"), 1))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("'F1' cannot be replaced"), "{message}");
    assert_eq!(units(store.as_ref(), &shop.id, "C-1").await, (4, 2));

    // With the returned units covered by another fulfillment, the cancel goes through.
    store
        .create_fulfillment(&shop.id, &order, units_of_l(Some("F2"), 3))
        .await
        .unwrap();
    store
        .update_shipment_status(&shop.id, &order, "F1", StatusUpdate::cancel())
        .await
        .unwrap();
    assert_eq!(units(store.as_ref(), &shop.id, "C-1").await, (3, 2));
    // And once the return is rejected, its units no longer hold a fulfillment back.
    store
        .update_return_status(&shop.id, "RC-1", to(ReturnStatus::Rejected))
        .await
        .unwrap();
    store
        .update_shipment_status(&shop.id, &order, "F2", StatusUpdate::cancel())
        .await
        .unwrap();
    assert_eq!(units(store.as_ref(), &shop.id, "C-1").await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_racing_a_return_never_leaves_more_returned_than_fulfilled() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let rounds = 12;
    let mut tasks = Vec::new();
    for i in 0..rounds {
        let order_id = format!("X-{i}");
        store
            .create_order(&shop.id, one_line_order(&order_id, 3))
            .await
            .unwrap();
        store
            .create_fulfillment(
                &shop.id,
                &OrderRef::new(&order_id),
                units_of_l(Some(&format!("F-{i}")), 2),
            )
            .await
            .unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let (shop1, shop2) = (shop.id.clone(), shop.id.clone());
        let (o1, o2) = (order_id.clone(), order_id.clone());
        let fulfillment_id = format!("F-{i}");
        let ret = tokio::spawn(async move {
            s1.create_return(&shop1, &OrderRef::new(&o1), a_return(&format!("R-{o1}"), 2))
                .await
        });
        let cancel = tokio::spawn(async move {
            s2.update_shipment_status(
                &shop2,
                &OrderRef::new(&o2),
                &fulfillment_id,
                StatusUpdate::cancel(),
            )
            .await
        });
        tasks.push((order_id, ret, cancel));
    }
    let (mut returns_won, mut cancels_won) = (0, 0);
    for (order_id, ret, cancel) in tasks {
        let (ret, cancel) = (ret.await.unwrap(), cancel.await.unwrap());
        match (&ret, &cancel) {
            (Ok(_), Err(StoreError::Domain(DomainError::Conflict(_)))) => returns_won += 1,
            (Err(StoreError::Domain(DomainError::OverReturn { .. })), Ok(_)) => cancels_won += 1,
            other => panic!("{order_id}: exactly one of the two must win, got {other:?}"),
        }
        let (fulfilled, returned) = units(store.as_ref(), &shop.id, &order_id).await;
        assert!(
            returned <= fulfilled,
            "{order_id}: {returned} returned of {fulfilled}"
        );
    }
    assert_eq!(returns_won + cancels_won, rounds);
}

#[tokio::test]
async fn a_carrier_report_applies_every_new_scan_to_a_return_in_order() {
    let db = TestDatabase::new().await.unwrap();
    let store: Arc<dyn Store> = db.open().await.unwrap();
    let (shop, _) = store.create_store("s").await.unwrap();
    let in_transit = store
        .create_automation(
            &shop.id,
            mail_on(AutomationTrigger::Return(ReturnStatus::InTransit), None),
        )
        .await
        .unwrap();
    store
        .create_order(&shop.id, one_line_order("S-1", 2))
        .await
        .unwrap();
    let order = OrderRef::new("S-1");
    store
        .create_fulfillment(&shop.id, &order, units_of_l(Some("F1"), 2))
        .await
        .unwrap();
    store
        .create_return(&shop.id, &order, a_return("RS-1", 1))
        .await
        .unwrap();
    let at = |s: &str| time::parse_datetime("t", s).unwrap();
    let scan = |status: &str, when: &str| HistoryEntry {
        status: status.into(),
        message: format!("{status} scan"),
        datetime: at(when),
        location: None,
        reason: None,
    };
    // Out of order, with a duplicate: every new scan counts, oldest first.
    let report = CarrierReport {
        estimated_delivery: None,
        details: vec![
            scan("delivered", "2030-01-04T10:00:00Z"),
            scan("in_transit", "2030-01-02T10:00:00Z"),
            scan("out_for_delivery", "2030-01-04T07:00:00Z"),
            scan("in_transit", "2030-01-02T10:00:00Z"),
        ],
    };
    let after = store
        .apply_return_carrier_report(&shop.id, TRACKING, report.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, ReturnStatus::Received);
    assert_eq!(after.shipment_status, ShipmentStatus::Delivered);
    let statuses: Vec<&str> = after.history.iter().map(|h| h.status.as_str()).collect();
    for expected in [
        "in_transit",
        "return.in_transit",
        "out_for_delivery",
        "delivered",
        "return.received",
    ] {
        assert_eq!(
            statuses.iter().filter(|s| **s == expected).count(),
            1,
            "{expected} in {statuses:?}"
        );
    }
    let position = |s: &str| statuses.iter().position(|x| *x == s).unwrap();
    assert!(position("in_transit") < position("out_for_delivery"));
    assert!(position("out_for_delivery") < position("delivered"));
    // The middle scan went through the status path: its lifecycle step ran the automation.
    let runs = store
        .list_automation_runs(&shop.id, &in_transit.id, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");

    // A replay brings nothing; an older scan joins the history without moving anything back.
    let mut replay = report;
    replay
        .details
        .push(scan("pre_transit", "2030-01-01T10:00:00Z"));
    let again = store
        .apply_return_carrier_report(&shop.id, TRACKING, replay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.history.len(), after.history.len() + 1);
    assert_eq!(again.shipment_status, ShipmentStatus::Delivered);
    assert_eq!(again.status, ReturnStatus::Received);
}
