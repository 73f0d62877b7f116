//! Tracking updates pushed by a carrier aggregator (EasyPost's `tracker.updated`): a tracker's
//! full list of scans, which may arrive twice or out of order.
//!
//! [`plan`] compares a report with what the fulfillment already holds and decides what to
//! record: scans already in the history are skipped, so a replay records nothing; a scan newer
//! than the latest known status becomes a status update (with its outbox event and
//! automations); an older one is only added to the history, in its chronological place, and
//! never moves the status back.
//!
//! A scan may carry an exception reason (mapped from the carrier's own detail code). On a
//! `failure` or `return_to_sender` scan it rides on that status update; on a newer scan of a
//! parcel still on its way (a weather delay reported with `in_transit`, say) it raises a
//! `delayed` event with that reason, unless the history already holds a `delayed` event with
//! the same reason. An older scan keeps its reason only where a reason is allowed.

use chrono::NaiveDate;

use crate::{
    Fulfillment, HistoryEntry, ShipmentEvent, ShipmentStatus, StatusOrEvent, StatusUpdate, reason,
};

/// A carrier's report on one tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct CarrierReport {
    pub estimated_delivery: Option<NaiveDate>,
    /// The tracker's scans, in any order. Each `status` is one of the ten shipment statuses;
    /// `reason` is the carrier's reason mapped to the vocabulary, whatever the status (see the
    /// module's documentation for where it ends up).
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
    // The delayed events this plan raises, so one report raises each reason once.
    let mut delays: Vec<HistoryEntry> = Vec::new();
    for detail in fresh {
        let status = match detail.status.parse::<ShipmentStatus>() {
            Ok(status) if detail.datetime >= latest => status,
            _ => {
                let mut entry = detail.clone();
                let allowed = StatusOrEvent::parse(&entry.status).is_ok_and(reason::allowed_on);
                if !allowed {
                    entry.reason = None;
                }
                steps.push(Step::Append(entry));
                continue;
            }
        };
        latest = detail.datetime;
        let change = StatusOrEvent::Status(status);
        let mut update = StatusUpdate::new(change);
        update.message = Some(detail.message.clone());
        update.datetime = Some(detail.datetime);
        update.location = detail.location.clone();
        if reason::allowed_on(change) {
            update.reason = detail.reason;
        }
        steps.push(Step::Update(update));
        let on_its_way = matches!(
            status,
            ShipmentStatus::PreTransit
                | ShipmentStatus::Unknown
                | ShipmentStatus::InTransit
                | ShipmentStatus::OutForDelivery
        );
        if let Some(why) = detail.reason.filter(|_| on_its_way) {
            let delayed = ShipmentEvent::Delayed.as_str();
            let known = current
                .history
                .iter()
                .chain(delays.iter())
                .any(|h| h.status == delayed && h.reason == Some(why));
            if !known {
                let mut event = StatusUpdate::new(StatusOrEvent::Event(ShipmentEvent::Delayed));
                event.datetime = Some(detail.datetime);
                event.location = detail.location.clone();
                event.reason = Some(why);
                delays.push(HistoryEntry {
                    status: delayed.to_owned(),
                    message: String::new(),
                    datetime: detail.datetime,
                    location: None,
                    reason: Some(why),
                });
                steps.push(Step::Update(event));
            }
        }
    }
    // The ETA rides on the newest status update: an old report carries an old estimate.
    if let Some(Step::Update(update)) = steps
        .iter_mut()
        .rev()
        .find(|s| matches!(s, Step::Update(u) if matches!(u.change, StatusOrEvent::Status(_))))
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
            reason: None,
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

    #[test]
    fn reasons_ride_on_failures_and_raise_a_delay_on_the_way() {
        use crate::ExceptionReason;
        let current = fulfillment(vec![scan("pre_transit", "2024-03-01T00:00:00Z")]);
        let mut weather = scan("in_transit", "2024-03-02T08:00:00Z");
        weather.reason = Some(ExceptionReason::Weather);
        let mut failed = scan("failure", "2024-03-03T08:00:00Z");
        failed.reason = Some(ExceptionReason::AddressIssue);
        let report = CarrierReport {
            estimated_delivery: None,
            details: vec![weather.clone(), failed],
        };
        let steps = plan(&current, &report);
        let updates: Vec<(&str, Option<ExceptionReason>)> = steps
            .iter()
            .map(|s| match s {
                Step::Update(u) => (u.change.as_str(), u.reason),
                Step::Append(e) => (e.status.as_str(), e.reason),
            })
            .collect();
        assert_eq!(
            updates,
            vec![
                ("in_transit", None),
                ("delayed", Some(ExceptionReason::Weather)),
                ("failure", Some(ExceptionReason::AddressIssue)),
            ]
        );
        // A delay already recorded with that reason is not raised again.
        let mut delayed = scan("delayed", "2024-03-02T08:00:00Z");
        delayed.reason = Some(ExceptionReason::Weather);
        let known = fulfillment(vec![scan("pre_transit", "2024-03-01T00:00:00Z"), delayed]);
        let again = CarrierReport {
            estimated_delivery: None,
            details: vec![weather],
        };
        assert_eq!(plan(&known, &again).len(), 1);
    }
}
