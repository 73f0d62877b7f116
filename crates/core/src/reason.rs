//! Exception reasons: why a shipment failed, is going back to its sender or is delayed.
//!
//! A reason is a fixed code, never free text (the history message stays free text). It may
//! only ride on a history entry whose status is `failure` or `return_to_sender`, or on the
//! `delayed` event ([`allowed_on`]); anywhere else it is a validation error.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{DomainError, HistoryEntry, ShipmentEvent, ShipmentStatus, StatusOrEvent};

/// Why a parcel is in trouble, in one stable snake_case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionReason {
    /// The address is incomplete, wrong or undeliverable.
    AddressIssue,
    /// Nobody was there to receive the parcel (or to sign for it).
    RecipientUnavailable,
    /// The recipient refused the parcel.
    Refused,
    /// The parcel was damaged.
    Damaged,
    /// The carrier lost the parcel.
    Lost,
    /// Weather or a natural disaster held the parcel up.
    Weather,
    /// Held in customs (duties unpaid, documents missing, inspection).
    Customs,
    /// A delay on the carrier's side: missed connection, capacity, sorting, vehicle.
    CarrierDelay,
    /// The parcel could not be delivered to a locker or pickup point, or was not picked up in
    /// time.
    NotCollected,
    /// The shipment was refused by the carrier for its contents (prohibited, dangerous goods,
    /// postage due).
    ShipmentRejected,
    /// A reason outside this vocabulary.
    Other,
}

impl ExceptionReason {
    pub const ALL: [ExceptionReason; 11] = [
        Self::AddressIssue,
        Self::RecipientUnavailable,
        Self::Refused,
        Self::Damaged,
        Self::Lost,
        Self::Weather,
        Self::Customs,
        Self::CarrierDelay,
        Self::NotCollected,
        Self::ShipmentRejected,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AddressIssue => "address_issue",
            Self::RecipientUnavailable => "recipient_unavailable",
            Self::Refused => "refused",
            Self::Damaged => "damaged",
            Self::Lost => "lost",
            Self::Weather => "weather",
            Self::Customs => "customs",
            Self::CarrierDelay => "carrier_delay",
            Self::NotCollected => "not_collected",
            Self::ShipmentRejected => "shipment_rejected",
            Self::Other => "other",
        }
    }

    /// A short label for people (the dashboard).
    pub fn label(self) -> &'static str {
        match self {
            Self::AddressIssue => "Address issue",
            Self::RecipientUnavailable => "Recipient unavailable",
            Self::Refused => "Refused by recipient",
            Self::Damaged => "Damaged",
            Self::Lost => "Lost",
            Self::Weather => "Weather",
            Self::Customs => "Customs",
            Self::CarrierDelay => "Carrier delay",
            Self::NotCollected => "Not collected",
            Self::ShipmentRejected => "Rejected by carrier",
            Self::Other => "Other",
        }
    }

    /// Parses a code; the error names `field` and lists the vocabulary.
    pub fn parse_field(field: &str, s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(format!(
                    "{field}: '{s}' is not an exception reason; expected one of {}",
                    Self::ALL.map(|r| r.as_str()).join(", ")
                ))
            })
    }
}

impl fmt::Display for ExceptionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExceptionReason {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_field("reason", s)
    }
}

/// Whether a reason may ride on an update of `change`: statuses `failure` and
/// `return_to_sender`, and the `delayed` event.
pub fn allowed_on(change: StatusOrEvent) -> bool {
    matches!(
        change,
        StatusOrEvent::Status(ShipmentStatus::Failure | ShipmentStatus::ReturnToSender)
            | StatusOrEvent::Event(ShipmentEvent::Delayed)
    )
}

/// Checks that `reason` (if any) is allowed on `change`; the error names `field`.
pub fn check(
    field: &str,
    change: StatusOrEvent,
    reason: Option<ExceptionReason>,
) -> Result<(), DomainError> {
    match reason {
        Some(reason) if !allowed_on(change) => Err(DomainError::invalid(format!(
            "{field}: a reason ('{reason}') is only allowed with status failure or \
             return_to_sender or the delayed event, not with '{change}'"
        ))),
        _ => Ok(()),
    }
}

/// The exception reason a shipment in `status` with `history` currently has: for `failure` and
/// `return_to_sender`, the reason of the latest entry of that status; for a shipment still on
/// its way, the reason of the latest `delayed` event; none once delivered or cancelled.
/// History entries count in order of `datetime`, the later of two equal ones last.
pub fn current<'a>(
    status: ShipmentStatus,
    history: impl IntoIterator<Item = &'a HistoryEntry>,
) -> Option<ExceptionReason> {
    let wanted = match status {
        ShipmentStatus::Delivered | ShipmentStatus::Cancelled => return None,
        ShipmentStatus::Failure | ShipmentStatus::ReturnToSender => status.as_str(),
        _ => ShipmentEvent::Delayed.as_str(),
    };
    history
        .into_iter()
        .filter(|h| h.status == wanted)
        .fold(None::<&HistoryEntry>, |latest, h| match latest {
            Some(l) if l.datetime > h.datetime => Some(l),
            _ => Some(h),
        })
        .and_then(|h| h.reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time;

    fn entry(status: &str, at: &str, reason: Option<ExceptionReason>) -> HistoryEntry {
        HistoryEntry {
            status: status.into(),
            message: String::new(),
            datetime: time::parse_datetime("t", at).unwrap(),
            location: None,
            reason,
        }
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_name_the_field() {
        for r in ExceptionReason::ALL {
            assert_eq!(r.as_str().parse::<ExceptionReason>(), Ok(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
            assert!(!r.label().is_empty());
        }
        let err = ExceptionReason::parse_field("shipmentStatus.reason", "stolen").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("shipmentStatus.reason:"), "{text}");
        assert!(text.contains("address_issue"), "{text}");
    }

    #[test]
    fn reasons_only_on_failure_return_to_sender_and_delayed() {
        let mut allowed = Vec::new();
        for s in ShipmentStatus::ALL {
            if allowed_on(StatusOrEvent::Status(s)) {
                allowed.push(s.as_str());
            }
        }
        for e in ShipmentEvent::ALL {
            if allowed_on(StatusOrEvent::Event(e)) {
                allowed.push(e.as_str());
            }
        }
        assert_eq!(allowed, ["return_to_sender", "failure", "delayed"]);
        let err = check(
            "reason",
            StatusOrEvent::Status(ShipmentStatus::Delivered),
            Some(ExceptionReason::Lost),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("reason:"), "{err}");
        assert!(
            check(
                "reason",
                StatusOrEvent::Status(ShipmentStatus::Delivered),
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn the_current_reason_follows_the_status() {
        let history = vec![
            entry(
                "delayed",
                "2024-03-02T00:00:00Z",
                Some(ExceptionReason::Weather),
            ),
            entry(
                "failure",
                "2024-03-04T00:00:00Z",
                Some(ExceptionReason::AddressIssue),
            ),
            entry(
                "failure",
                "2024-03-03T00:00:00Z",
                Some(ExceptionReason::Damaged),
            ),
        ];
        assert_eq!(
            current(ShipmentStatus::Failure, &history),
            Some(ExceptionReason::AddressIssue)
        );
        assert_eq!(
            current(ShipmentStatus::InTransit, &history),
            Some(ExceptionReason::Weather)
        );
        assert_eq!(current(ShipmentStatus::ReturnToSender, &history), None);
        assert_eq!(current(ShipmentStatus::Delivered, &history), None);
    }
}
