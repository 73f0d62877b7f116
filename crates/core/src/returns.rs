//! Returns: fulfilled units coming back, with their reasons, their own parcel and a lifecycle.
//!
//! A return names line items and units. Per line, the units in live returns (every status but
//! `rejected`) never exceed the units in live fulfillments: stores call [`check_returnable`] on
//! the counts they loaded under the order's row lock. The lifecycle is
//! `requested → in_transit → received → closed`, or `rejected` from `requested` or
//! `in_transit`; a rejected return gives its units back. The return's parcel has a shipment
//! status and a tracking history like an outbound shipment, and its carrier reports move the
//! lifecycle forward ([`ReturnUpdate::apply`]).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::fulfillment::{HistoryEntry, Location, Package};
use crate::ledger::LedgerEffect;
use crate::order::validate_id;
use crate::{DomainError, Quantity, ShipmentStatus, Timestamp};

/// Longest free-text note on a return or one of its lines.
pub const MAX_NOTE_LEN: usize = 1000;

/// Where a return is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    Requested,
    InTransit,
    Received,
    Closed,
    Rejected,
}

impl ReturnStatus {
    pub const ALL: [ReturnStatus; 5] = [
        Self::Requested,
        Self::InTransit,
        Self::Received,
        Self::Closed,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::InTransit => "in_transit",
            Self::Received => "received",
            Self::Closed => "closed",
            Self::Rejected => "rejected",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Requested => "Return requested",
            Self::InTransit => "Return parcel in transit",
            Self::Received => "Return received",
            Self::Closed => "Return closed",
            Self::Rejected => "Return rejected",
        }
    }

    /// Whether the return's units count against what can still be returned.
    pub fn is_live(self) -> bool {
        self != Self::Rejected
    }

    /// Position on the forward path (`rejected` is off it).
    fn rank(self) -> Option<u8> {
        match self {
            Self::Requested => Some(0),
            Self::InTransit => Some(1),
            Self::Received => Some(2),
            Self::Closed => Some(3),
            Self::Rejected => None,
        }
    }

    /// Whether a return in this status may move to `next`: forward along
    /// `requested → in_transit → received → closed` (skipping `in_transit` is allowed: a
    /// parcel may arrive untracked; `closed` only from `received`), or to `rejected` from
    /// `requested` and `in_transit`.
    pub fn can_move_to(self, next: ReturnStatus) -> bool {
        match (self.rank(), next) {
            (Some(rank), ReturnStatus::Rejected) => rank <= 1,
            (Some(rank), ReturnStatus::Closed) => rank == 2,
            (Some(rank), next) => next.rank().is_some_and(|n| n > rank),
            (None, _) => false,
        }
    }
}

impl fmt::Display for ReturnStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReturnStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(format!(
                    "'{s}' is not a return status; expected one of {}",
                    Self::ALL.map(|s| s.as_str()).join(", ")
                ))
            })
    }
}

/// Why a unit comes back: a fixed vocabulary (with an optional free-text note beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnReason {
    Damaged,
    Defective,
    WrongItem,
    TooSmall,
    TooLarge,
    NotAsDescribed,
    ChangedMind,
    Other,
}

impl ReturnReason {
    pub const ALL: [ReturnReason; 8] = [
        Self::Damaged,
        Self::Defective,
        Self::WrongItem,
        Self::TooSmall,
        Self::TooLarge,
        Self::NotAsDescribed,
        Self::ChangedMind,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Damaged => "damaged",
            Self::Defective => "defective",
            Self::WrongItem => "wrong_item",
            Self::TooSmall => "too_small",
            Self::TooLarge => "too_large",
            Self::NotAsDescribed => "not_as_described",
            Self::ChangedMind => "changed_mind",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for ReturnReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReturnReason {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(format!(
                    "'{s}' is not a return reason; expected one of {}",
                    Self::ALL.map(|r| r.as_str()).join(", ")
                ))
            })
    }
}

/// One line of a stored return, with the order line's descriptive fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub line_item_id: String,
    pub quantity: u32,
    pub reason: ReturnReason,
    pub note: Option<String>,
    pub title: String,
    pub sku: Option<String>,
}

/// A stored return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Return {
    pub id: String,
    pub order_id: Uuid,
    /// The order's external id (the caller's).
    pub order_external_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub status: ReturnStatus,
    /// Where the return parcel is, as its carrier reports it.
    pub shipment_status: ShipmentStatus,
    pub packages: Vec<Package>,
    pub lines: Vec<ReturnLine>,
    pub note: Option<String>,
    /// Chronological by `datetime`: lifecycle changes (`return.<status>`) and shipment
    /// statuses.
    pub history: Vec<HistoryEntry>,
}

impl Return {
    /// Units per line this return holds.
    pub fn units(&self) -> Vec<(String, u32)> {
        self.lines
            .iter()
            .map(|l| (l.line_item_id.clone(), l.quantity))
            .collect()
    }
}

/// A requested line of a new return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReturnLine {
    pub line_item_id: String,
    pub quantity: Quantity,
    pub reason: ReturnReason,
    pub note: Option<String>,
}

/// A validated request to create a return.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReturn {
    /// The caller's id, or `None` to have one generated.
    pub id: Option<String>,
    pub lines: Vec<NewReturnLine>,
    pub packages: Vec<Package>,
    pub note: Option<String>,
}

fn check_note(field: &str, note: &Option<String>) -> Result<(), DomainError> {
    if let Some(note) = note {
        let length = note.chars().count();
        if length > MAX_NOTE_LEN {
            return Err(DomainError::invalid(format!(
                "{field} must be at most {MAX_NOTE_LEN} characters long; got {length}"
            )));
        }
    }
    Ok(())
}

impl NewReturn {
    /// Checks a request: a valid id if one is given, at least one line, no line named twice,
    /// notes of at most [`MAX_NOTE_LEN`] characters, non-blank tracking numbers. `lines` names
    /// the lines' field in messages.
    pub fn new(
        id: Option<String>,
        lines: Vec<NewReturnLine>,
        packages: Vec<Package>,
        note: Option<String>,
        names: ReturnFieldNames<'_>,
    ) -> Result<Self, DomainError> {
        if let Some(id) = &id {
            validate_id(names.id, id)?;
        }
        if lines.is_empty() {
            return Err(DomainError::invalid(format!(
                "{} must contain at least one line item",
                names.lines
            )));
        }
        let mut seen = HashSet::new();
        for (index, line) in lines.iter().enumerate() {
            validate_id(
                &format!("{}[{index}].{}", names.lines, names.line_id),
                &line.line_item_id,
            )?;
            check_note(
                &format!("{}[{index}].{}", names.lines, names.note),
                &line.note,
            )?;
            if !seen.insert(line.line_item_id.as_str()) {
                return Err(DomainError::invalid(format!(
                    "line item '{}' is listed more than once; list each line once with its total quantity",
                    line.line_item_id
                )));
            }
        }
        check_note(names.note, &note)?;
        for package in &packages {
            if package.tracking_number.trim().is_empty() {
                return Err(DomainError::invalid("tracking number must not be empty"));
            }
        }
        Ok(NewReturn {
            id,
            lines,
            packages,
            note,
        })
    }

    /// The id to store: the caller's, or a fresh one.
    pub fn id_or_generate(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| Uuid::now_v7().to_string())
    }

    /// Units per line requested.
    pub fn units(&self) -> Vec<(String, Quantity)> {
        self.lines
            .iter()
            .map(|l| (l.line_item_id.clone(), l.quantity))
            .collect()
    }

    /// The first history entry.
    pub fn first_entry(&self, now: Timestamp) -> HistoryEntry {
        HistoryEntry {
            status: history_status(ReturnStatus::Requested),
            message: ReturnStatus::Requested.description().to_owned(),
            datetime: now,
            location: None,
            reason: None,
        }
    }
}

/// How a dialect names a return's fields, for messages.
#[derive(Debug, Clone, Copy)]
pub struct ReturnFieldNames<'a> {
    pub id: &'a str,
    pub lines: &'a str,
    pub line_id: &'a str,
    pub note: &'a str,
}

/// The history entry status of a lifecycle change (`return.received`, …), kept apart from the
/// parcel's shipment statuses.
pub fn history_status(status: ReturnStatus) -> String {
    format!("return.{}", status.as_str())
}

/// One line item as the returns rule sees it: units in live fulfillments and in live returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnableLine {
    pub id: String,
    pub fulfilled: u32,
    pub returned: u32,
}

impl ReturnableLine {
    /// Units that may still be returned (never negative, even if a fulfillment was cancelled
    /// after its units came back).
    pub fn returnable(&self) -> u32 {
        self.fulfilled.saturating_sub(self.returned)
    }
}

/// Checks that every requested line exists on the order and has enough fulfilled, not yet
/// returned units.
pub fn check_returnable(
    lines: &[ReturnableLine],
    request: &[(String, Quantity)],
) -> Result<(), DomainError> {
    for (line_id, quantity) in request {
        let line = lines.iter().find(|l| &l.id == line_id).ok_or_else(|| {
            DomainError::UnknownLineItem {
                line_item_id: line_id.clone(),
            }
        })?;
        if quantity.get() > line.returnable() {
            return Err(DomainError::OverReturn {
                line_item_id: line_id.clone(),
                requested: quantity.get(),
                returnable: line.returnable(),
            });
        }
    }
    Ok(())
}

/// Refuses a change to a fulfillment (`action`: "cancelled", "replaced") that leaves a line
/// of its order with more units in live returns than in live fulfillments. `lines` are the
/// order's counts as the change leaves them; the caller checks them before committing, under
/// the order's lock, so a cancellation racing a return never leaves `returned > fulfilled`.
pub fn check_returns_covered(
    fulfillment_id: &str,
    action: &str,
    lines: &[ReturnableLine],
) -> Result<(), DomainError> {
    match lines.iter().find(|l| l.returned > l.fulfilled) {
        None => Ok(()),
        Some(line) => Err(DomainError::Conflict(format!(
            "fulfillment '{fulfillment_id}' cannot be {action}: {} unit(s) of line item '{}' are in returns, and only {} would stay fulfilled; reject those returns first",
            line.returned, line.id, line.fulfilled
        ))),
    }
}

/// A change to a return: a lifecycle status, a shipment status of its parcel, or both, with
/// the details of the history entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReturnUpdate {
    pub status: Option<ReturnStatus>,
    pub shipment_status: Option<ShipmentStatus>,
    pub message: Option<String>,
    pub datetime: Option<Timestamp>,
    pub location: Option<Location>,
}

/// The outcome of [`ReturnUpdate::apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnChange {
    pub status: ReturnStatus,
    pub shipment_status: ShipmentStatus,
    /// The history entries to append, in order.
    pub entries: Vec<HistoryEntry>,
    /// `Release` when the return is rejected: its units may be returned again.
    pub ledger: LedgerEffect,
}

impl ReturnUpdate {
    /// Decides what the update does to `current`. A shipment status moves the lifecycle
    /// forward on its own (a parcel on its way: `in_transit`; delivered: `received`) unless a
    /// status is given; a status that is not a legal move is refused as a conflict.
    pub fn apply(&self, current: &Return, now: Timestamp) -> Result<ReturnChange, DomainError> {
        if self.status.is_none() && self.shipment_status.is_none() {
            return Err(DomainError::invalid(
                "an update must give a status or a shipment status",
            ));
        }
        let datetime = self.datetime.unwrap_or(now);
        let location = self.location.clone().filter(|l| !l.is_empty());
        let mut entries = Vec::new();
        let shipment_status = self.shipment_status.unwrap_or(current.shipment_status);
        if let Some(shipment) = self.shipment_status {
            entries.push(HistoryEntry {
                status: shipment.as_str().to_owned(),
                message: self
                    .message
                    .clone()
                    .unwrap_or_else(|| shipment.description().to_owned()),
                datetime,
                location: location.clone(),
                reason: None,
            });
        }
        let implied = self.shipment_status.and_then(|s| match s {
            ShipmentStatus::Delivered => Some(ReturnStatus::Received),
            s if s.is_shipped() => Some(ReturnStatus::InTransit),
            _ => None,
        });
        let status = match (self.status, implied) {
            (Some(status), _) => {
                if status != current.status && !current.status.can_move_to(status) {
                    return Err(DomainError::Conflict(format!(
                        "return '{}' is {} and cannot become {status}",
                        current.id, current.status
                    )));
                }
                status
            }
            (None, Some(implied)) if current.status.can_move_to(implied) => implied,
            (None, _) => current.status,
        };
        if status != current.status {
            entries.push(HistoryEntry {
                status: history_status(status),
                message: match (self.shipment_status, &self.message) {
                    (None, Some(message)) => message.clone(),
                    _ => status.description().to_owned(),
                },
                datetime,
                location: if self.shipment_status.is_some() {
                    None
                } else {
                    location
                },
                reason: None,
            });
        }
        let ledger = match (current.status.is_live(), status.is_live()) {
            (true, false) => LedgerEffect::Release,
            _ => LedgerEffect::None,
        };
        Ok(ReturnChange {
            status,
            shipment_status,
            entries,
            ledger,
        })
    }
}

/// One thing to record for a carrier's report on the return parcel.
#[derive(Debug, Clone, PartialEq)]
pub enum ReturnStep {
    /// A scan older than the parcel's latest status: history only (never moves it back).
    Append(HistoryEntry),
    /// A scan at least as new as the parcel's latest status: a shipment-status update, which
    /// may move the lifecycle forward.
    Update(ReturnUpdate),
}

/// What a carrier's report on the return parcel changes, oldest scan first, as
/// [`crate::carrier_update::plan`] decides for an outbound parcel: scans already in the
/// history are skipped (a replay records nothing), each newer scan becomes a shipment-status
/// update in turn, and an older one only joins the history.
pub fn plan_carrier_report(
    current: &Return,
    report: &crate::carrier_update::CarrierReport,
) -> Vec<ReturnStep> {
    let mut latest = current
        .history
        .iter()
        .filter(|h| h.status.parse::<ShipmentStatus>().is_ok())
        .map(|h| h.datetime)
        .max();
    let mut fresh: Vec<&HistoryEntry> = report
        .details
        .iter()
        .filter(|d| {
            !current
                .history
                .iter()
                .any(|h| h.status == d.status && h.datetime == d.datetime)
        })
        .collect();
    fresh.sort_by_key(|d| d.datetime);
    fresh.dedup_by(|a, b| a.status == b.status && a.datetime == b.datetime);
    let mut steps = Vec::with_capacity(fresh.len());
    for detail in fresh {
        let status = match detail.status.parse::<ShipmentStatus>() {
            Ok(status) if latest.is_none_or(|at| detail.datetime >= at) => status,
            _ => {
                steps.push(ReturnStep::Append(detail.clone()));
                continue;
            }
        };
        latest = Some(detail.datetime);
        steps.push(ReturnStep::Update(ReturnUpdate {
            status: None,
            shipment_status: Some(status),
            message: Some(detail.message.clone()),
            datetime: Some(detail.datetime),
            location: detail.location.clone(),
        }));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time;

    fn q(n: i64) -> Quantity {
        Quantity::new("q", n).unwrap()
    }

    const NAMES: ReturnFieldNames<'static> = ReturnFieldNames {
        id: "id",
        lines: "items",
        line_id: "lineItemId",
        note: "notes",
    };

    fn line(id: &str, n: i64) -> NewReturnLine {
        NewReturnLine {
            line_item_id: id.into(),
            quantity: q(n),
            reason: ReturnReason::Damaged,
            note: None,
        }
    }

    fn a_return(status: ReturnStatus) -> Return {
        Return {
            id: "r".into(),
            order_id: Uuid::nil(),
            order_external_id: "o".into(),
            created_at: time::now(),
            updated_at: time::now(),
            status,
            shipment_status: ShipmentStatus::PreTransit,
            packages: vec![],
            lines: vec![],
            note: None,
            history: vec![],
        }
    }

    #[test]
    fn statuses_and_reasons_round_trip_and_refuse_others() {
        for s in ReturnStatus::ALL {
            assert_eq!(s.as_str().parse::<ReturnStatus>().unwrap(), s);
        }
        for r in ReturnReason::ALL {
            assert_eq!(r.as_str().parse::<ReturnReason>().unwrap(), r);
        }
        let err = "lost".parse::<ReturnReason>().unwrap_err();
        assert!(err.to_string().contains("wrong_item"), "{err}");
        assert!("open".parse::<ReturnStatus>().is_err());
    }

    #[test]
    fn the_lifecycle_moves_forward_or_to_rejected_only() {
        use ReturnStatus::*;
        let allowed = [
            (Requested, InTransit),
            (Requested, Received),
            (Requested, Rejected),
            (InTransit, Received),
            (InTransit, Rejected),
            (Received, Closed),
        ];
        for from in ReturnStatus::ALL {
            for to in ReturnStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn new_return_validation() {
        assert!(NewReturn::new(None, vec![], vec![], None, NAMES).is_err());
        let dup = NewReturn::new(None, vec![line("a", 1), line("a", 1)], vec![], None, NAMES);
        assert!(dup.unwrap_err().to_string().contains("more than once"));
        let long = Some("x".repeat(MAX_NOTE_LEN + 1));
        let err = NewReturn::new(None, vec![line("a", 1)], vec![], long, NAMES).unwrap_err();
        assert!(
            err.to_string().starts_with("notes must be at most"),
            "{err}"
        );
        let blank = Package {
            carrier: None,
            tracking_number: " ".into(),
            tracking_url: None,
        };
        assert!(NewReturn::new(None, vec![line("a", 1)], vec![blank], None, NAMES).is_err());
        let ok =
            NewReturn::new(Some("R1".into()), vec![line("a", 2)], vec![], None, NAMES).unwrap();
        assert_eq!(ok.id_or_generate(), "R1");
        assert_eq!(ok.units(), vec![("a".to_owned(), q(2))]);
    }

    #[test]
    fn returnable_units_are_fulfilled_minus_returned() {
        let lines = vec![
            ReturnableLine {
                id: "a".into(),
                fulfilled: 3,
                returned: 1,
            },
            ReturnableLine {
                id: "b".into(),
                fulfilled: 0,
                returned: 0,
            },
        ];
        assert!(check_returnable(&lines, &[("a".into(), q(2))]).is_ok());
        assert_eq!(
            check_returnable(&lines, &[("a".into(), q(3))]).unwrap_err(),
            DomainError::OverReturn {
                line_item_id: "a".into(),
                requested: 3,
                returnable: 2
            }
        );
        assert!(matches!(
            check_returnable(&lines, &[("b".into(), q(1))]),
            Err(DomainError::OverReturn { returnable: 0, .. })
        ));
        assert!(matches!(
            check_returnable(&lines, &[("zz".into(), q(1))]),
            Err(DomainError::UnknownLineItem { .. })
        ));
        let cancelled_after = ReturnableLine {
            id: "c".into(),
            fulfilled: 1,
            returned: 2,
        };
        assert_eq!(cancelled_after.returnable(), 0);
    }

    #[test]
    fn a_carrier_status_moves_the_lifecycle_forward() {
        let now = time::now();
        let update = ReturnUpdate {
            shipment_status: Some(ShipmentStatus::InTransit),
            ..ReturnUpdate::default()
        };
        let change = update
            .apply(&a_return(ReturnStatus::Requested), now)
            .unwrap();
        assert_eq!(change.status, ReturnStatus::InTransit);
        assert_eq!(change.shipment_status, ShipmentStatus::InTransit);
        let names: Vec<&str> = change.entries.iter().map(|e| e.status.as_str()).collect();
        assert_eq!(names, ["in_transit", "return.in_transit"]);

        let delivered = ReturnUpdate {
            shipment_status: Some(ShipmentStatus::Delivered),
            ..ReturnUpdate::default()
        };
        let change = delivered
            .apply(&a_return(ReturnStatus::InTransit), now)
            .unwrap();
        assert_eq!(change.status, ReturnStatus::Received);
        // A closed return keeps its status when a late scan arrives.
        let change = delivered
            .apply(&a_return(ReturnStatus::Closed), now)
            .unwrap();
        assert_eq!(change.status, ReturnStatus::Closed);
        assert_eq!(change.entries.len(), 1);
    }

    #[test]
    fn a_carrier_report_brings_every_new_scan_in_order() {
        use crate::carrier_update::CarrierReport;
        let at = |s: &str| time::parse_datetime("d", s).unwrap();
        let scan = |status: &str, when: &str| HistoryEntry {
            status: status.into(),
            message: format!("{status} scan"),
            datetime: at(when),
            location: None,
            reason: None,
        };
        let mut current = a_return(ReturnStatus::Requested);
        current
            .history
            .push(scan("in_transit", "2024-03-20T10:00:00Z"));
        let report = CarrierReport {
            estimated_delivery: None,
            details: vec![
                scan("delivered", "2024-03-22T10:00:00Z"),
                scan("pre_transit", "2024-03-19T10:00:00Z"),
                scan("in_transit", "2024-03-20T10:00:00Z"),
                scan("out_for_delivery", "2024-03-22T07:00:00Z"),
                scan("delivered", "2024-03-22T10:00:00Z"),
            ],
        };
        let steps = plan_carrier_report(&current, &report);
        assert_eq!(steps.len(), 3, "{steps:?}");
        // The older scan joins the history only; the newer ones apply oldest first.
        assert!(matches!(&steps[0], ReturnStep::Append(h) if h.status == "pre_transit"));
        let updates: Vec<&ReturnUpdate> = steps
            .iter()
            .filter_map(|s| match s {
                ReturnStep::Update(u) => Some(u),
                ReturnStep::Append(_) => None,
            })
            .collect();
        assert_eq!(
            updates
                .iter()
                .map(|u| u.shipment_status)
                .collect::<Vec<_>>(),
            vec![
                Some(ShipmentStatus::OutForDelivery),
                Some(ShipmentStatus::Delivered)
            ]
        );
        let mut state = current.clone();
        for update in &updates {
            state.status = update.apply(&state, time::now()).unwrap().status;
        }
        assert_eq!(state.status, ReturnStatus::Received);
        // A replay of what is now known brings nothing.
        for h in ["pre_transit", "out_for_delivery", "delivered"] {
            let when = report.details.iter().find(|d| d.status == h).unwrap();
            current.history.push(when.clone());
        }
        assert!(plan_carrier_report(&current, &report).is_empty());
    }

    #[test]
    fn a_fulfillment_change_must_keep_returned_units_fulfilled() {
        let line = |id: &str, fulfilled, returned| ReturnableLine {
            id: id.into(),
            fulfilled,
            returned,
        };
        assert!(
            check_returns_covered("f", "cancelled", &[line("a", 2, 2), line("b", 0, 0)]).is_ok()
        );
        let err = check_returns_covered("f", "cancelled", &[line("a", 3, 1), line("b", 0, 2)])
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("'f' cannot be cancelled") && text.contains("'b'"),
            "{text}"
        );
    }

    #[test]
    fn illegal_moves_are_conflicts_and_rejection_releases() {
        let now = time::now();
        let to = |s| ReturnUpdate {
            status: Some(s),
            ..ReturnUpdate::default()
        };
        let err = to(ReturnStatus::Closed)
            .apply(&a_return(ReturnStatus::Requested), now)
            .unwrap_err();
        assert!(matches!(err, DomainError::Conflict(_)), "{err:?}");
        assert!(
            to(ReturnStatus::Rejected)
                .apply(&a_return(ReturnStatus::Received), now)
                .is_err()
        );
        let change = to(ReturnStatus::Rejected)
            .apply(&a_return(ReturnStatus::InTransit), now)
            .unwrap();
        assert_eq!(change.ledger, LedgerEffect::Release);
        assert_eq!(change.entries[0].status, "return.rejected");
        let same = to(ReturnStatus::Requested)
            .apply(&a_return(ReturnStatus::Requested), now)
            .unwrap();
        assert!(same.entries.is_empty());
        assert_eq!(same.ledger, LedgerEffect::None);
        assert!(
            ReturnUpdate::default()
                .apply(&a_return(ReturnStatus::Requested), now)
                .is_err()
        );
    }
}
