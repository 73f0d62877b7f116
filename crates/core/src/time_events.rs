//! Events that time raises: a shipment that stopped moving, one that missed its estimated
//! delivery date, one that arrived well before it.
//!
//! Each is raised at most once per fulfillment: a fulfillment whose history already holds the
//! event (sent by a client or raised earlier) never gets it again. The rules only read the
//! fulfillment and the clock, so a scheduler can ask them with any `now`.

use chrono::{Duration, NaiveDate};

use crate::{Fulfillment, ShipmentEvent, ShipmentStatus, Timestamp};

/// How long a shipment in transit may go without a tracking update before it counts as stalled,
/// unless its store says otherwise.
pub const DEFAULT_STALL_AFTER: Duration = Duration::hours(72);

/// Statuses in which a missed ETA means the parcel is late. A parcel waiting at a pickup point,
/// delivered, returned or failed is not "delayed".
const AWAITING_DELIVERY: [ShipmentStatus; 4] = [
    ShipmentStatus::PreTransit,
    ShipmentStatus::Unknown,
    ShipmentStatus::InTransit,
    ShipmentStatus::OutForDelivery,
];

/// The instant an estimated delivery date starts (midnight UTC).
pub fn eta_start(eta: NaiveDate) -> Timestamp {
    eta.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Whether a parcel that arrived (delivered or out for delivery) at `at` is more than a day early
/// for `eta`.
pub fn is_early(at: Timestamp, eta: NaiveDate) -> bool {
    at + Duration::days(1) < eta_start(eta)
}

/// The time-based events due for `f` at `now`, in the order they should be recorded. An
/// `arriving_early` is raised by the status update that makes it true (see
/// [`crate::StatusUpdate::apply`]); this is for what only the passing of time can raise.
pub fn due_events(f: &Fulfillment, stall_after: Duration, now: Timestamp) -> Vec<ShipmentEvent> {
    let mut due = Vec::new();
    if f.status == ShipmentStatus::InTransit
        && !f.has_raised(ShipmentEvent::StalledInTransit)
        && now - f.last_tracking_at() >= stall_after
    {
        due.push(ShipmentEvent::StalledInTransit);
    }
    if let Some(eta) = f.estimated_delivery
        && AWAITING_DELIVERY.contains(&f.status)
        && !f.has_raised(ShipmentEvent::Delayed)
        && now >= eta_start(eta) + Duration::days(1)
    {
        due.push(ShipmentEvent::Delayed);
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HistoryEntry, time};
    use uuid::Uuid;

    fn at(s: &str) -> Timestamp {
        time::parse_datetime("t", s).unwrap()
    }

    fn entry(status: &str, datetime: &str) -> HistoryEntry {
        HistoryEntry {
            status: status.into(),
            message: String::new(),
            datetime: at(datetime),
            location: None,
            reason: None,
        }
    }

    fn shipment(status: ShipmentStatus, history: Vec<HistoryEntry>) -> Fulfillment {
        Fulfillment {
            id: "f".into(),
            order_id: Uuid::nil(),
            created_at: at("2024-03-01T00:00:00Z"),
            updated_at: at("2024-03-01T00:00:00Z"),
            status,
            status_label: None,
            packages: vec![],
            estimated_delivery: NaiveDate::from_ymd_opt(2024, 3, 10),
            delivered_at: None,
            lines: vec![],
            history,
        }
    }

    #[test]
    fn stalls_after_the_threshold_without_a_tracking_update() {
        let f = shipment(
            ShipmentStatus::InTransit,
            vec![entry("in_transit", "2024-03-02T00:00:00Z")],
        );
        assert!(due_events(&f, DEFAULT_STALL_AFTER, at("2024-03-04T23:59:59Z")).is_empty());
        assert_eq!(
            due_events(&f, DEFAULT_STALL_AFTER, at("2024-03-05T00:00:00Z")),
            vec![ShipmentEvent::StalledInTransit]
        );
        // A shorter store setting.
        assert_eq!(
            due_events(&f, Duration::hours(24), at("2024-03-03T00:00:00Z")),
            vec![ShipmentEvent::StalledInTransit]
        );
    }

    #[test]
    fn events_do_not_count_as_tracking_updates_and_are_raised_once() {
        let mut f = shipment(
            ShipmentStatus::InTransit,
            vec![
                entry("in_transit", "2024-03-02T00:00:00Z"),
                entry("delayed", "2024-03-04T00:00:00Z"),
            ],
        );
        assert_eq!(f.last_tracking_at(), at("2024-03-02T00:00:00Z"));
        assert_eq!(
            due_events(&f, DEFAULT_STALL_AFTER, at("2024-03-06T00:00:00Z")),
            vec![ShipmentEvent::StalledInTransit]
        );
        f.history
            .push(entry("stalled_in_transit", "2024-03-06T00:00:00Z"));
        assert!(due_events(&f, DEFAULT_STALL_AFTER, at("2024-03-30T00:00:00Z")).is_empty());
    }

    #[test]
    fn delayed_once_the_eta_day_is_over() {
        let f = shipment(
            ShipmentStatus::OutForDelivery,
            vec![entry("out_for_delivery", "2024-03-10T08:00:00Z")],
        );
        assert!(due_events(&f, DEFAULT_STALL_AFTER, at("2024-03-10T23:59:59Z")).is_empty());
        assert_eq!(
            due_events(&f, DEFAULT_STALL_AFTER, at("2024-03-11T00:00:00Z")),
            vec![ShipmentEvent::Delayed]
        );
        let delivered = shipment(ShipmentStatus::Delivered, vec![]);
        assert!(due_events(&delivered, DEFAULT_STALL_AFTER, at("2024-04-01T00:00:00Z")).is_empty());
        let mut no_eta = shipment(ShipmentStatus::PreTransit, vec![]);
        no_eta.estimated_delivery = None;
        assert!(due_events(&no_eta, DEFAULT_STALL_AFTER, at("2024-04-01T00:00:00Z")).is_empty());
    }

    #[test]
    fn early_means_more_than_a_day_before_the_eta() {
        let eta = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        assert!(is_early(at("2024-03-08T23:59:59Z"), eta));
        assert!(!is_early(at("2024-03-09T00:00:00Z"), eta));
        assert!(!is_early(at("2024-03-09T10:00:00Z"), eta));
    }
}
