//! What an outbox event records: the change it reports and the state of its order as of the
//! write that produced it.
//!
//! Every backend writes an [`EventData`] into `outbox.data` inside the transaction of the change,
//! after the change's own rows, so the snapshot is exactly what a read at commit would have
//! returned. Webhook bodies are rendered from it, never from the order as it is at delivery
//! time; a retry, a redelivery or a replay therefore sends the same body as the first attempt.
//!
//! Events written before snapshots existed carry only the first few fields (`status`,
//! `tracking`, `orderId`), which is why every field is optional.

use serde::{Deserialize, Serialize};
use waybill_core::{LedgerEffect, Order, Quantity, Return};

/// The stored data of one outbox event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    /// The status or event name a fulfillment event reports (`in_transit`, `delayed`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The fulfillment's status before this change; `None` for a new fulfillment and for order
    /// events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<String>,
    /// The exception reason the fulfillment status or event carried (`weather`, `lost`, …; see
    /// `waybill_core::ExceptionReason`), when it carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The order's derived status after the change (`PARTIALLY_SHIPPED`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    /// The order's derived status before the change; `None` for a new order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_order_status: Option<String>,
    /// Units the change reserved on the ledger or gave back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerChange>,
    /// Set when the change replaced the fulfillment's packages (tracking numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<bool>,
    /// The order's external id (kept on `order.deleted`, whose order row is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The order as of this event, with its lines, ledger counts and fulfillments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    /// The return a `return.*` event reports, as of this event (its lines and units, status,
    /// parcel and history); `status` / `previousStatus` are then the return's lifecycle
    /// statuses.
    #[serde(default, rename = "return", skip_serializing_if = "Option::is_none")]
    pub return_record: Option<Return>,
}

/// Units moved on the ledger by one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerChange {
    /// `reserved`: the units now count against the ordered quantity; `released`: they no
    /// longer do (a cancellation).
    pub effect: String,
    pub units: Vec<UnitsOfLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitsOfLine {
    pub line_item_id: String,
    pub quantity: u32,
}

impl LedgerChange {
    /// The change for `units` moved by `effect`; `None` when the effect moves nothing.
    pub fn of(effect: LedgerEffect, units: &[(String, Quantity)]) -> Option<LedgerChange> {
        let effect = match effect {
            LedgerEffect::Reserve => "reserved",
            LedgerEffect::Release => "released",
            LedgerEffect::None => return None,
        };
        Some(LedgerChange {
            effect: effect.to_owned(),
            units: units
                .iter()
                .map(|(line_item_id, quantity)| UnitsOfLine {
                    line_item_id: line_item_id.clone(),
                    quantity: quantity.get(),
                })
                .collect(),
        })
    }
}

impl LedgerChange {
    /// The change when a fulfillment's contents are replaced: its old units are released when
    /// it stops counting, its new ones reserved when it starts; a fulfillment that counts (or
    /// does not) before and after moves nothing on balance worth reporting.
    pub fn replacing(
        was_live: bool,
        is_live: bool,
        old: &[(String, Quantity)],
        new: &[(String, Quantity)],
    ) -> Option<LedgerChange> {
        match (was_live, is_live) {
            (true, false) => LedgerChange::of(LedgerEffect::Release, old),
            (false, true) => LedgerChange::of(LedgerEffect::Reserve, new),
            _ => None,
        }
    }
}

impl EventData {
    /// The data of a fulfillment status change or event.
    pub fn status(status: &str, previous: Option<&str>) -> EventData {
        EventData {
            status: Some(status.to_owned()),
            previous_status: previous.map(str::to_owned),
            ..EventData::default()
        }
    }

    /// Parses stored data; unreadable data (which no backend writes) counts as empty.
    pub fn parse(text: Option<&str>) -> EventData {
        text.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }
}
