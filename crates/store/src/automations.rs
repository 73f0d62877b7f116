//! Automation storage types, shared by every backend.
//!
//! An automation is a store's rule "when this status or event happens to a fulfillment (or
//! this status to a return), do this". Runs are written in the same transaction as the status
//! or event that triggers them, one per (automation, fulfillment, trigger) or (automation,
//! return, trigger), so a repeated status never runs an automation twice. The automation worker claims due runs under a lease, performs them and records the
//! outcome, much as the webhook dispatcher does with deliveries.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use waybill_core::{DomainError, ReturnStatus, ShipmentEvent, StatusOrEvent, Timestamp};

/// What sets an automation off: a fulfillment's shipment status or event (stored and written
/// as its name: `delivered`, `delayed`), or a return reaching a lifecycle status (stored and
/// written as `return.` and the status: `return.received`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutomationTrigger {
    Shipment(StatusOrEvent),
    Return(ReturnStatus),
}

impl AutomationTrigger {
    /// The prefix of a return trigger's name.
    pub const RETURN_PREFIX: &'static str = "return.";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shipment(t) => t.as_str(),
            Self::Return(ReturnStatus::Requested) => "return.requested",
            Self::Return(ReturnStatus::InTransit) => "return.in_transit",
            Self::Return(ReturnStatus::Received) => "return.received",
            Self::Return(ReturnStatus::Closed) => "return.closed",
            Self::Return(ReturnStatus::Rejected) => "return.rejected",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Shipment(t) => t.description(),
            Self::Return(s) => s.description(),
        }
    }

    /// Every trigger name a client may use: the shipment statuses (but `unknown`), the events,
    /// then the return statuses.
    pub fn names() -> impl Iterator<Item = &'static str> {
        waybill_core::ShipmentStatus::ALL
            .into_iter()
            .filter(|s| *s != waybill_core::ShipmentStatus::Unknown)
            .map(|s| StatusOrEvent::Status(s).as_str())
            .chain(ShipmentEvent::ALL.into_iter().map(|e| e.as_str()))
            .chain(
                ReturnStatus::ALL
                    .into_iter()
                    .map(|s| Self::Return(s).as_str()),
            )
    }

    /// Parses a stored or requested trigger name (`in_transit`, `delayed`, `return.received`).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.strip_prefix(Self::RETURN_PREFIX) {
            Some(status) => status.parse().map(Self::Return),
            None => StatusOrEvent::parse(s).map(Self::Shipment),
        }
    }
}

impl std::fmt::Display for AutomationTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an automation does when it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum AutomationAction {
    /// Mails the order's customer (or `to`). `subject` and `body` are templates; the body is
    /// HTML, with every substituted value escaped.
    Email {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        subject: String,
        body: String,
    },
    /// POSTs the rendered `body` (a JSON template) to `url` through the webhook dispatcher.
    Webhook { url: String, body: String },
}

impl AutomationAction {
    pub fn kind(&self) -> &'static str {
        match self {
            AutomationAction::Email { .. } => "email",
            AutomationAction::Webhook { .. } => "webhook",
        }
    }
}

/// An automation to create, or the full new state of one being replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAutomation {
    pub name: String,
    pub trigger: AutomationTrigger,
    /// Only fulfillments (returns) with a package of this carrier (compared
    /// case-insensitively).
    pub carrier: Option<String>,
    pub action: AutomationAction,
    pub enabled: bool,
    /// For a webhook action: the signing secret (`whsec_…`) its subscription gets when the store
    /// creates one. Made by the caller, like [`crate::NewWebhook::secret`].
    pub webhook_secret: String,
}

/// A stored automation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomationRecord {
    pub id: String,
    pub store_id: String,
    pub name: String,
    pub trigger: AutomationTrigger,
    pub carrier: Option<String>,
    pub action: AutomationAction,
    pub enabled: bool,
    /// The subscription (flavor `automation`) that carries a webhook action's deliveries.
    pub webhook_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomationRun {
    pub id: i64,
    pub automation_id: String,
    /// Waybill's internal order id.
    pub order_id: String,
    /// The fulfillment a shipment trigger fired for; `None` for a return trigger.
    pub fulfillment_id: Option<String>,
    /// The return a return trigger fired for; `None` for a shipment trigger.
    pub return_id: Option<String>,
    pub trigger: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// What the run did (`mailed a@b.c`, `queued delivery`).
    pub detail: Option<String>,
    /// For a webhook action: the state of its delivery (`pending`, `delivered`, `failed` …).
    pub delivery_status: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A run the worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    pub run: AutomationRun,
    /// Fencing token, as for deliveries: finishing with a stale one changes nothing.
    pub claim: i64,
    pub automation: AutomationRecord,
    /// The data of the outbox event that set the run off ([`crate::EventData`], as stored):
    /// the order as that event left it, which the run's templates describe.
    pub event_data: Option<String>,
}

/// What became of a run's attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Done; `detail` says what was done.
    Succeeded { detail: String },
    /// A webhook action: put the rendered body in the dispatcher's queue (delivered, signed and
    /// retried there) and count the run as done.
    QueueWebhook { payload: String },
    /// Try again at the given time.
    RetryAt { at: Timestamp, error: String },
    /// Give up.
    Failed { error: String },
}

/// A store's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// How long a shipment in transit may go without a tracking update before
    /// `stalled_in_transit` is raised.
    pub stall_after: Duration,
    /// The secret EasyPost signs this store's tracker webhooks with.
    pub easypost_secret: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            stall_after: Duration::from_secs(72 * 3600),
            easypost_secret: None,
        }
    }
}

/// A change to a store's settings; `None` keeps the field, `Some(None)` clears the secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsUpdate {
    pub stall_after: Option<Duration>,
    pub easypost_secret: Option<Option<String>>,
}

/// An event the scheduler raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaisedEvent {
    pub store_id: String,
    pub order_id: String,
    pub fulfillment_id: String,
    pub event: ShipmentEvent,
}

/// Of the fulfillments `(order id, fulfillment id, package carrier)` whose package has a
/// reported tracking number (newest first), the one a report of `carrier` is about: the only
/// one, or the only one whose carrier matches (letters and digits compared case-insensitively,
/// so `DHLExpress` matches `DHL Express`), or else the newest.
pub(crate) fn pick_by_carrier(
    matches: &[(String, String, Option<String>)],
    carrier: Option<&str>,
) -> Option<(String, String)> {
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let by_carrier: Vec<_> = match carrier {
        Some(wanted) if matches.len() > 1 => matches
            .iter()
            .filter(|m| m.2.as_deref().is_some_and(|c| key(c) == key(wanted)))
            .collect(),
        _ => Vec::new(),
    };
    let chosen = match by_carrier.as_slice() {
        [only] => Some(*only),
        _ => matches.first(),
    };
    chosen.map(|(order, fulfillment, _)| (order.clone(), fulfillment.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_round_trip_and_refuse_others() {
        for name in AutomationTrigger::names() {
            assert_eq!(AutomationTrigger::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(
            AutomationTrigger::parse("return.received").unwrap(),
            AutomationTrigger::Return(ReturnStatus::Received)
        );
        for bad in [
            "return.",
            "return.delivered",
            "returned",
            "Return.received",
            "",
        ] {
            assert!(AutomationTrigger::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(AutomationTrigger::names().count(), 9 + 3 + 5);
    }

    #[test]
    fn a_report_picks_its_fulfillment_by_carrier_when_numbers_collide() {
        let m = |o: &str, c: &str| (o.to_owned(), format!("f-{o}"), Some(c.to_owned()));
        let both = [m("new", "UPS"), m("old", "DHL Express")];
        assert_eq!(
            pick_by_carrier(&both, Some("DHLExpress")).map(|p| p.0),
            Some("old".into())
        );
        assert_eq!(
            pick_by_carrier(&both, Some("FedEx")).map(|p| p.0),
            Some("new".into())
        );
        assert_eq!(pick_by_carrier(&[], Some("UPS")), None);
    }
}
