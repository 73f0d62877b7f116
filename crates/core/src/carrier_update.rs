//! Tracking updates pushed by a carrier aggregator (EasyPost's `tracker.updated`): a tracker's
//! full list of scans, which may arrive twice or out of order.
//!
//! [`plan`] compares a report with what the fulfillment already holds and decides what to
//! record: scans already in the history are skipped, so a replay records nothing; a scan newer
//! than the latest known status becomes a status update (with its outbox event and
//! automations); an older one is only added to the history, in its chronological place, and
//! never moves the status back.

use chrono::NaiveDate;

use crate::{Fulfillment, HistoryEntry, ShipmentStatus, StatusOrEvent, StatusUpdate};

/// A carrier's report on one tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct CarrierReport {
    pub estimated_delivery: Option<NaiveDate>,
    /// The tracker's scans, in any order. Each `status` is one of the ten shipment statuses.
    pub details: Vec<HistoryEntry>,
}

/// One thing to record.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A scan older than the current status: history only.
    Append(HistoryEntry),
    /// A scan at least as new as the current status: a status update.
    Update(StatusUpdate),
}

/// What to record for `report` on `current`, oldest scan first.
pub fn plan(current: &Fulfillment, report: &CarrierReport) -> Vec<Step> {
    let mut fresh: Vec<&HistoryEntry> = report
        .details
        .iter()
        .filter(|d| {
            !current
                .history
                .iter()
                .any(|h| h.status == d.status && h.datetime == d.datetime && h.message == d.message)
        })
        .collect();
    fresh.sort_by_key(|d| d.datetime);
    fresh.dedup_by(|a, b| a == b);
    let mut latest = current.last_tracking_at();
    let mut steps = Vec::with_capacity(fresh.len());
    for detail in fresh {
        let status = match detail.status.parse::<ShipmentStatus>() {
            Ok(status) if detail.datetime >= latest => status,
            _ => {
                steps.push(Step::Append(detail.clone()));
                continue;
            }
        };
        latest = detail.datetime;
        let mut update = StatusUpdate::new(StatusOrEvent::Status(status));
        update.message = Some(detail.message.clone());
        update.datetime = Some(detail.datetime);
        update.location = detail.location.clone();
        steps.push(Step::Update(update));
    }
    // The ETA rides on the newest status update: an old report carries an old estimate.
    if let Some(Step::Update(update)) = steps
        .iter_mut()
        .rev()
        .find(|s| matches!(s, Step::Update(_)))
    {
        update.estimated_delivery = report.estimated_delivery;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time;
    use uuid::Uuid;

    fn scan(status: &str, at: &str) -> HistoryEntry {
        HistoryEntry {
            status: status.into(),
            message: format!("{status} scan"),
            datetime: time::parse_datetime("t", at).unwrap(),
            location: None,
        }
    }

    fn fulfillment(history: Vec<HistoryEntry>) -> Fulfillment {
        Fulfillment {
            id: "f".into(),
            order_id: Uuid::nil(),
            created_at: time::parse_datetime("t", "2024-03-01T00:00:00Z").unwrap(),
            updated_at: time::parse_datetime("t", "2024-03-01T00:00:00Z").unwrap(),
            status: ShipmentStatus::PreTransit,
            status_label: None,
            packages: vec![],
            estimated_delivery: None,
            delivered_at: None,
            lines: vec![],
            history,
        }
    }

    #[test]
    fn new_scans_become_updates_in_order_and_replays_record_nothing() {
        let current = fulfillment(vec![scan("pre_transit", "2024-03-01T00:00:00Z")]);
        let report = CarrierReport {
            estimated_delivery: NaiveDate::from_ymd_opt(2024, 3, 6),
            details: vec![
                scan("out_for_delivery", "2024-03-04T08:00:00Z"),
                scan("pre_transit", "2024-03-01T00:00:00Z"),
                scan("in_transit", "2024-03-02T08:00:00Z"),
            ],
        };
        let steps = plan(&current, &report);
        assert_eq!(steps.len(), 2);
        let Step::Update(first) = &steps[0] else {
            panic!("{steps:?}")
        };
        assert_eq!(first.change.as_str(), "in_transit");
        assert_eq!(first.estimated_delivery, None);
        let Step::Update(last) = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(last.change.as_str(), "out_for_delivery");
        assert_eq!(last.estimated_delivery, report.estimated_delivery);

        let mut after = current.clone();
        after.history.extend(report.details.iter().cloned());
        assert!(plan(&after, &report).is_empty());
    }

    #[test]
    fn an_older_scan_is_history_only() {
        let current = fulfillment(vec![
            scan("pre_transit", "2024-03-01T00:00:00Z"),
            scan("delivered", "2024-03-05T08:00:00Z"),
        ]);
        let late = CarrierReport {
            estimated_delivery: NaiveDate::from_ymd_opt(2024, 3, 9),
            details: vec![scan("in_transit", "2024-03-02T08:00:00Z")],
        };
        assert_eq!(
            plan(&current, &late),
            vec![Step::Append(scan("in_transit", "2024-03-02T08:00:00Z"))]
        );
    }
}
