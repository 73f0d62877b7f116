//! Fulfillments: which units left in which parcel, and where that parcel has been.

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ledger::LedgerEffect;
use crate::order::{FieldNames, validate_id};
use crate::time_events;
use crate::{
    DomainError, ExceptionReason, Quantity, ShipmentEvent, ShipmentStatus, StatusOrEvent,
    Timestamp, reason,
};

/// Where a tracking event happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

impl Location {
    pub fn is_empty(&self) -> bool {
        self.city.is_none()
            && self.state.is_none()
            && self.country.is_none()
            && self.postal_code.is_none()
    }
}

/// One parcel of a fulfillment: a carrier's tracking number and where to follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub carrier: Option<String>,
    pub tracking_number: String,
    pub tracking_url: Option<String>,
}

/// One entry of a fulfillment's tracking history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// A shipment status or an event name.
    pub status: String,
    pub message: String,
    pub datetime: Timestamp,
    pub location: Option<Location>,
    /// Why the shipment failed, is returning or is delayed (only on `failure`,
    /// `return_to_sender` and `delayed` entries; see [`crate::reason`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ExceptionReason>,
}

/// A line of a stored fulfillment, with the order line's descriptive fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentLine {
    pub line_item_id: String,
    pub quantity: u32,
    pub title: String,
    pub product_id: Option<String>,
    pub variant_id: Option<String>,
    pub sku: Option<String>,
}

/// A stored fulfillment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fulfillment {
    pub id: String,
    pub order_id: Uuid,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub status: ShipmentStatus,
    /// The status exactly as the caller's dialect named it, when the dialect has its own
    /// vocabulary (OrderProtection's `FULFILLED`, say).
    pub status_label: Option<String>,
    pub packages: Vec<Package>,
    pub estimated_delivery: Option<NaiveDate>,
    pub delivered_at: Option<Timestamp>,
    pub lines: Vec<FulfillmentLine>,
    /// Chronological by `datetime`.
    pub history: Vec<HistoryEntry>,
}

impl Fulfillment {
    pub fn first_package(&self) -> Option<&Package> {
        self.packages.first()
    }

    /// Whether the history already holds `event` (raised by a client or by time).
    pub fn has_raised(&self, event: ShipmentEvent) -> bool {
        self.history.iter().any(|h| h.status == event.as_str())
    }

    /// When the carrier last reported a status: the latest history entry that is a status (events
    /// are not tracking updates), or the creation time.
    pub fn last_tracking_at(&self) -> Timestamp {
        self.history
            .iter()
            .filter(|h| h.status.parse::<ShipmentStatus>().is_ok())
            .map(|h| h.datetime)
            .max()
            .unwrap_or(self.created_at)
    }

    /// The shipment's current exception reason (see [`reason::current`]).
    pub fn exception_reason(&self) -> Option<ExceptionReason> {
        reason::current(self.status, &self.history)
    }
}

/// The first tracking entry a caller may supply with a new fulfillment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitialTracking {
    pub message: Option<String>,
    pub datetime: Option<Timestamp>,
    pub location: Option<Location>,
}

/// A validated request to create a fulfillment.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFulfillment {
    /// The caller's id, or `None` to have one generated.
    pub id: Option<String>,
    pub lines: Vec<(String, Quantity)>,
    pub packages: Vec<Package>,
    pub status: ShipmentStatus,
    pub status_label: Option<String>,
    pub estimated_delivery: Option<NaiveDate>,
    pub initial: InitialTracking,
}

impl NewFulfillment {
    /// [`NewFulfillment::new_named`] with Redo's field names.
    pub fn new(
        id: Option<String>,
        lines: Vec<(String, Quantity)>,
        packages: Vec<Package>,
        status: ShipmentStatus,
    ) -> Result<Self, DomainError> {
        Self::new_named(FieldNames::REDO, id, lines, packages, status)
    }

    /// Checks the invariants of a request: a valid id if one is given, at least one line, no line
    /// named twice, non-blank tracking numbers. Messages use `names`.
    pub fn new_named(
        names: FieldNames<'_>,
        id: Option<String>,
        lines: Vec<(String, Quantity)>,
        packages: Vec<Package>,
        status: ShipmentStatus,
    ) -> Result<Self, DomainError> {
        if let Some(id) = &id {
            validate_id(names.fulfillment_id, id)?;
        }
        if lines.is_empty() {
            return Err(DomainError::invalid(format!(
                "{} must contain at least one line item",
                names.lines
            )));
        }
        let mut seen = HashSet::new();
        for (index, (line_id, _)) in lines.iter().enumerate() {
            validate_id(
                &format!("{}[{index}].{}", names.lines, names.line_id),
                line_id,
            )?;
            if !seen.insert(line_id.as_str()) {
                return Err(DomainError::invalid(format!(
                    "line item '{line_id}' is listed more than once; list each line once with its total quantity"
                )));
            }
        }
        for package in &packages {
            if package.tracking_number.trim().is_empty() {
                return Err(DomainError::invalid("tracking number must not be empty"));
            }
        }
        Ok(NewFulfillment {
            id,
            lines,
            packages,
            status,
            status_label: None,
            estimated_delivery: None,
            initial: InitialTracking::default(),
        })
    }

    /// The id to store: the caller's, or a fresh one.
    pub fn id_or_generate(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| Uuid::now_v7().to_string())
    }

    /// The first history entry: the caller's initial tracking, or a note of the initial status.
    pub fn first_entry(&self, now: Timestamp) -> HistoryEntry {
        HistoryEntry {
            status: self.status.as_str().to_owned(),
            message: self
                .initial
                .message
                .clone()
                .unwrap_or_else(|| self.status.description().to_owned()),
            datetime: self.initial.datetime.unwrap_or(now),
            location: self.initial.location.clone().filter(|l| !l.is_empty()),
            reason: None,
        }
    }

    /// When the shipment was delivered, if it starts delivered.
    pub fn delivered_at(&self, now: Timestamp) -> Option<Timestamp> {
        (self.status == ShipmentStatus::Delivered).then(|| self.initial.datetime.unwrap_or(now))
    }
}

/// A shipment-status update: a new status or an event, and optionally a new ETA and the details
/// of a tracking history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub change: StatusOrEvent,
    pub status_label: Option<String>,
    pub estimated_delivery: Option<NaiveDate>,
    pub message: Option<String>,
    pub datetime: Option<Timestamp>,
    pub location: Option<Location>,
    /// Why (only with `failure`, `return_to_sender` or `delayed`; checked by `apply`).
    pub reason: Option<ExceptionReason>,
    /// Refuse the update if the fulfillment is already delivered (a cancellation: a parcel
    /// that reached the customer cannot be un-shipped).
    pub refuse_if_delivered: bool,
}

impl StatusUpdate {
    pub fn new(change: StatusOrEvent) -> Self {
        StatusUpdate {
            change,
            status_label: None,
            estimated_delivery: None,
            message: None,
            datetime: None,
            location: None,
            reason: None,
            refuse_if_delivered: false,
        }
    }

    /// A cancellation: status `cancelled`, refused once delivered.
    pub fn cancel() -> Self {
        StatusUpdate {
            refuse_if_delivered: true,
            ..StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::Cancelled))
        }
    }

    /// Decides what the update does to a fulfillment currently in `current`.
    pub fn apply(
        &self,
        current: &Fulfillment,
        now: Timestamp,
    ) -> Result<StatusChange, DomainError> {
        reason::check("reason", self.change, self.reason)?;
        if self.refuse_if_delivered && current.status == ShipmentStatus::Delivered {
            return Err(DomainError::Conflict(format!(
                "fulfillment '{}' was delivered and can no longer be cancelled",
                current.id
            )));
        }
        let status = match self.change {
            StatusOrEvent::Status(status) => status,
            StatusOrEvent::Event(_) => current.status,
        };
        let datetime = self.datetime.unwrap_or(now);
        let delivered_at = match self.change {
            StatusOrEvent::Status(ShipmentStatus::Delivered) => Some(datetime),
            _ => current.delivered_at,
        };
        let ledger = match (current.status.is_live(), status.is_live()) {
            (true, false) => LedgerEffect::Release,
            (false, true) => LedgerEffect::Reserve,
            _ => LedgerEffect::None,
        };
        let status_label = match self.change {
            StatusOrEvent::Status(_) => self.status_label.clone(),
            StatusOrEvent::Event(_) => current.status_label.clone(),
        };
        let estimated_delivery = self.estimated_delivery.or(current.estimated_delivery);
        let arrived = matches!(
            self.change,
            StatusOrEvent::Status(ShipmentStatus::Delivered | ShipmentStatus::OutForDelivery)
        );
        let early = match estimated_delivery {
            Some(eta) if arrived && !current.has_raised(ShipmentEvent::ArrivingEarly) => {
                time_events::is_early(datetime, eta)
            }
            _ => false,
        };
        let entry = HistoryEntry {
            status: self.change.as_str().to_owned(),
            message: self
                .message
                .clone()
                .unwrap_or_else(|| self.change.description().to_owned()),
            datetime,
            location: self.location.clone().filter(|l| !l.is_empty()),
            reason: self.reason,
        };
        Ok(StatusChange {
            status,
            status_label,
            estimated_delivery,
            delivered_at,
            follow_up: early.then(|| HistoryEntry {
                status: ShipmentEvent::ArrivingEarly.as_str().to_owned(),
                message: ShipmentEvent::ArrivingEarly.description().to_owned(),
                datetime,
                location: None,
                reason: None,
            }),
            exception_reason: reason::current(status, current.history.iter().chain([&entry])),
            entry,
            ledger,
        })
    }
}

/// The outcome of [`StatusUpdate::apply`]: the fulfillment's new state, the history entry to
/// append and what moves in the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub status: ShipmentStatus,
    pub status_label: Option<String>,
    pub estimated_delivery: Option<NaiveDate>,
    pub delivered_at: Option<Timestamp>,
    pub entry: HistoryEntry,
    /// An `arriving_early` event the update raises (recorded after `entry`, with its own outbox
    /// event and automations).
    pub follow_up: Option<HistoryEntry>,
    /// The shipment's exception reason after the change ([`reason::current`] over the history
    /// with `entry`).
    pub exception_reason: Option<ExceptionReason>,
    pub ledger: LedgerEffect,
}

impl StatusChange {
    /// Whether `entry` is a carrier status (moves `last_tracking_at`) rather than an event.
    pub fn is_tracking_update(&self) -> bool {
        self.entry.status.parse::<ShipmentStatus>().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ShipmentEvent, time};

    fn q(n: i64) -> Quantity {
        Quantity::new("q", n).unwrap()
    }

    fn fulfillment(status: ShipmentStatus) -> Fulfillment {
        Fulfillment {
            id: "f".into(),
            order_id: Uuid::nil(),
            created_at: time::now(),
            updated_at: time::now(),
            status,
            status_label: None,
            packages: vec![],
            estimated_delivery: NaiveDate::from_ymd_opt(2024, 3, 25),
            delivered_at: None,
            lines: vec![],
            history: vec![],
        }
    }

    #[test]
    fn new_fulfillment_validation() {
        assert!(NewFulfillment::new(None, vec![], vec![], ShipmentStatus::PreTransit).is_err());
        assert!(
            NewFulfillment::new(
                None,
                vec![("a".into(), q(1)), ("a".into(), q(2))],
                vec![],
                ShipmentStatus::PreTransit
            )
            .is_err()
        );
        let blank = Package {
            carrier: Some("UPS".into()),
            tracking_number: "  ".into(),
            tracking_url: None,
        };
        assert!(
            NewFulfillment::new(
                None,
                vec![("a".into(), q(1))],
                vec![blank],
                ShipmentStatus::PreTransit
            )
            .is_err()
        );
    }

    #[test]
    fn a_status_changes_the_status_and_an_event_does_not() {
        let now = time::now();
        let current = fulfillment(ShipmentStatus::InTransit);
        let change = StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::OutForDelivery))
            .apply(&current, now)
            .unwrap();
        assert_eq!(change.status, ShipmentStatus::OutForDelivery);
        assert_eq!(change.entry.status, "out_for_delivery");

        let mut update = StatusUpdate::new(StatusOrEvent::Event(ShipmentEvent::Delayed));
        update.estimated_delivery = NaiveDate::from_ymd_opt(2024, 4, 1);
        let change = update.apply(&current, now).unwrap();
        assert_eq!(change.status, ShipmentStatus::InTransit);
        assert_eq!(
            change.estimated_delivery,
            NaiveDate::from_ymd_opt(2024, 4, 1)
        );
        assert_eq!(change.entry.status, "delayed");
        assert_eq!(change.entry.message, "Shipment is delayed");
        assert_eq!(change.entry.datetime, now);
        assert_eq!(change.ledger, LedgerEffect::None);
    }

    #[test]
    fn delivered_sets_delivered_at_from_the_event_or_now() {
        let now = time::now();
        let current = fulfillment(ShipmentStatus::OutForDelivery);
        let update = StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::Delivered));
        assert_eq!(update.apply(&current, now).unwrap().delivered_at, Some(now));
        let at = time::parse_datetime("d", "2024-03-21T09:00:00Z").unwrap();
        let mut update = update.clone();
        update.datetime = Some(at);
        assert_eq!(update.apply(&current, now).unwrap().delivered_at, Some(at));
    }

    #[test]
    fn cancelling_releases_and_reviving_reserves() {
        let now = time::now();
        let cancel = StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::Cancelled));
        assert_eq!(
            cancel
                .apply(&fulfillment(ShipmentStatus::InTransit), now)
                .unwrap()
                .ledger,
            LedgerEffect::Release
        );
        assert_eq!(
            cancel
                .apply(&fulfillment(ShipmentStatus::Cancelled), now)
                .unwrap()
                .ledger,
            LedgerEffect::None
        );
        let revive = StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::InTransit));
        assert_eq!(
            revive
                .apply(&fulfillment(ShipmentStatus::Cancelled), now)
                .unwrap()
                .ledger,
            LedgerEffect::Reserve
        );
    }

    #[test]
    fn a_delivered_fulfillment_cannot_be_cancelled() {
        let now = time::now();
        let err = StatusUpdate::cancel()
            .apply(&fulfillment(ShipmentStatus::Delivered), now)
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)), "{err:?}");
        let change = StatusUpdate::cancel()
            .apply(&fulfillment(ShipmentStatus::InTransit), now)
            .unwrap();
        assert_eq!(change.ledger, LedgerEffect::Release);
    }

    #[test]
    fn arriving_more_than_a_day_early_raises_arriving_early_once() {
        // ETA 2024-03-25.
        let current = fulfillment(ShipmentStatus::InTransit);
        let mut update = StatusUpdate::new(StatusOrEvent::Status(ShipmentStatus::Delivered));
        update.datetime = Some(time::parse_datetime("d", "2024-03-23T09:00:00Z").unwrap());
        let change = update.apply(&current, time::now()).unwrap();
        assert!(change.is_tracking_update());
        let follow_up = change.follow_up.expect("early delivery raises an event");
        assert_eq!(follow_up.status, "arriving_early");

        update.datetime = Some(time::parse_datetime("d", "2024-03-24T09:00:00Z").unwrap());
        assert!(
            update
                .apply(&current, time::now())
                .unwrap()
                .follow_up
                .is_none()
        );

        let mut raised = fulfillment(ShipmentStatus::OutForDelivery);
        raised.history.push(follow_up);
        update.datetime = Some(time::parse_datetime("d", "2024-03-20T09:00:00Z").unwrap());
        assert!(
            update
                .apply(&raised, time::now())
                .unwrap()
                .follow_up
                .is_none()
        );
    }
}
