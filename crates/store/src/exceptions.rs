//! Exceptions: the shipments that need someone's attention (delayed, stalled, past their
//! estimated delivery, failed, returning to the sender, waiting at a pickup point too long).
//!
//! Each kind is one store-scoped lookup over `fulfillments` or `tracking_events` through an
//! index of its own (see the `exceptions` migrations); the SQL is built here once for both
//! backends, with their placeholders given by the caller.

use std::time::Duration;

use chrono::NaiveDate;
use waybill_core::{ExceptionReason, Timestamp};

/// Why a shipment is listed as an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExceptionKind {
    /// A `delayed` event was raised and the shipment is not delivered (nor cancelled).
    Delayed,
    /// A `stalled_in_transit` event was raised and the shipment is not delivered since.
    Stalled,
    /// Its estimated delivery date is before today and it is not delivered or cancelled.
    PastEta,
    /// Status `failure`.
    Failure,
    /// Status `return_to_sender`.
    ReturnToSender,
    /// Status `available_for_pickup` for longer than [`ExceptionQuery::pickup_grace`].
    PickupWaiting,
}

impl ExceptionKind {
    pub const ALL: [ExceptionKind; 6] = [
        Self::Delayed,
        Self::Stalled,
        Self::PastEta,
        Self::Failure,
        Self::ReturnToSender,
        Self::PickupWaiting,
    ];

    /// The kind's name in URLs and CSV (`delayed`, `stalled`, `past_eta`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delayed => "delayed",
            Self::Stalled => "stalled",
            Self::PastEta => "past_eta",
            Self::Failure => "failure",
            Self::ReturnToSender => "return_to_sender",
            Self::PickupWaiting => "pickup_waiting",
        }
    }

    pub fn parse(text: &str) -> Option<ExceptionKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether shipments of this kind carry an exception reason (delayed, failure,
    /// return_to_sender).
    pub fn has_reasons(self) -> bool {
        matches!(self, Self::Delayed | Self::Failure | Self::ReturnToSender)
    }

    /// A short label for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Delayed => "Delayed",
            Self::Stalled => "Stalled",
            Self::PastEta => "Past ETA",
            Self::Failure => "Delivery failed",
            Self::ReturnToSender => "Returning to sender",
            Self::PickupWaiting => "Waiting for pickup",
        }
    }
}

/// How long a parcel may wait at a pickup point before it is an exception, unless configured.
pub const DEFAULT_PICKUP_GRACE: Duration = Duration::from_secs(3 * 24 * 3600);

/// Which exceptions to list or count.
#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionQuery {
    /// Kinds to keep; empty keeps all.
    pub kinds: Vec<ExceptionKind>,
    /// Keep only shipments with this exception reason: failures and returns whose current
    /// reason it is, delays whose latest `delayed` event carried it. Kinds without reasons
    /// (stalled, past ETA, waiting for pickup) then list nothing.
    pub reason: Option<ExceptionReason>,
    /// "Now": what is overdue and how long a parcel has waited are judged against it.
    pub now: Timestamp,
    /// How long `available_for_pickup` may last before it is an exception.
    pub pickup_grace: Duration,
    pub offset: u64,
    /// At most [`crate::MAX_PAGE_SIZE`].
    pub limit: u32,
}

impl ExceptionQuery {
    pub fn new(now: Timestamp) -> ExceptionQuery {
        ExceptionQuery {
            kinds: Vec::new(),
            reason: None,
            now,
            pickup_grace: DEFAULT_PICKUP_GRACE,
            offset: 0,
            limit: 50,
        }
    }

    pub(crate) fn selected(&self) -> Vec<ExceptionKind> {
        let mut kinds = if self.kinds.is_empty() {
            ExceptionKind::ALL.to_vec()
        } else {
            let mut kinds = self.kinds.clone();
            kinds.sort();
            kinds.dedup();
            kinds
        };
        if self.reason.is_some() {
            kinds.retain(|k| k.has_reasons());
        }
        kinds
    }

    pub(crate) fn today(&self) -> String {
        waybill_core::time::format_date(self.now.date_naive())
    }

    pub(crate) fn pickup_cutoff(&self) -> i64 {
        let grace = chrono::Duration::from_std(self.pickup_grace)
            .unwrap_or_else(|_| chrono::Duration::days(36_500));
        let cutoff = self
            .now
            .checked_sub_signed(grace)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        waybill_core::time::to_millis(cutoff)
    }
}

/// One shipment in one exception (a shipment in several kinds is listed once per kind).
#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionRow {
    pub kind: ExceptionKind,
    /// The order's internal id.
    pub order_id: String,
    pub order_external_id: String,
    pub customer_email: Option<String>,
    pub fulfillment_id: String,
    /// The fulfillment's status (`in_transit`, …).
    pub status: String,
    pub estimated_delivery: Option<NaiveDate>,
    /// When the exception began as far as the store knows: the latest such event, or the
    /// fulfillment's last update.
    pub since: Timestamp,
    /// The first package's carrier and tracking number.
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    /// The reason of this exception: the fulfillment's current reason for a failure or a
    /// return, the latest `delayed` event's for a delay; `None` for the other kinds.
    pub reason: Option<ExceptionReason>,
}

/// A bound value of the generated SQL.
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// Statuses after which nothing is overdue or delayed any more.
const CLOSED: &str = "('delivered', 'cancelled')";

/// The reason of the latest `delayed` event of the fulfillment `f`.
const DELAY_REASON: &str = "(SELECT d.reason FROM tracking_events d
     WHERE d.store_id = f.store_id AND d.fulfillment_id = f.id AND d.status = 'delayed'
     ORDER BY d.happened_at DESC, d.id DESC LIMIT 1)";

/// The rows `(kind, order_id, fulfillment_id, since)` of one kind of exception in one store;
/// `p` binds a value and returns its placeholder.
pub(crate) fn kind_sql(
    kind: ExceptionKind,
    store_id: &str,
    query: &ExceptionQuery,
    p: &mut dyn FnMut(Arg) -> String,
) -> String {
    // Binds the reason filter (when there is one) after the store id, as SQLite's `?` needs.
    let reason = query.reason;
    let event = |status: &str, p: &mut dyn FnMut(Arg) -> String| {
        let s = p(Arg::Text(store_id.to_owned()));
        let by_reason = match reason {
            Some(r) => format!(
                " AND {DELAY_REASON} = {}",
                p(Arg::Text(r.as_str().to_owned()))
            ),
            None => String::new(),
        };
        format!(
            "SELECT '{kind}' AS kind, f.order_id AS order_id, f.id AS fulfillment_id,
                    MAX(e.happened_at) AS since
               FROM tracking_events e
               JOIN fulfillments f ON f.store_id = e.store_id AND f.id = e.fulfillment_id
              WHERE e.store_id = {s} AND e.status = '{status}' AND f.status NOT IN {CLOSED}
                    {by_reason}
              GROUP BY f.order_id, f.id",
            kind = kind.as_str()
        )
    };
    let status = |status: &str, p: &mut dyn FnMut(Arg) -> String| {
        let s = p(Arg::Text(store_id.to_owned()));
        let by_reason = match reason {
            Some(r) => format!(
                " AND f.exception_reason = {}",
                p(Arg::Text(r.as_str().to_owned()))
            ),
            None => String::new(),
        };
        format!(
            "SELECT '{kind}' AS kind, f.order_id AS order_id, f.id AS fulfillment_id,
                    f.updated_at AS since
               FROM fulfillments f WHERE f.store_id = {s} AND f.status = '{status}'{by_reason}",
            kind = kind.as_str()
        )
    };
    match kind {
        ExceptionKind::Delayed => event("delayed", p),
        ExceptionKind::Stalled => event("stalled_in_transit", p),
        ExceptionKind::Failure => status("failure", p),
        ExceptionKind::ReturnToSender => status("return_to_sender", p),
        ExceptionKind::PastEta => {
            let s = p(Arg::Text(store_id.to_owned()));
            let today = p(Arg::Text(query.today()));
            format!(
                "SELECT 'past_eta' AS kind, f.order_id AS order_id, f.id AS fulfillment_id,
                        f.updated_at AS since
                   FROM fulfillments f
                  WHERE f.store_id = {s} AND f.estimated_delivery < {today}
                    AND f.status NOT IN {CLOSED}"
            )
        }
        ExceptionKind::PickupWaiting => {
            // In order of appearance: SQLite's `?` binds positionally.
            let s = p(Arg::Text(store_id.to_owned()));
            let s2 = p(Arg::Text(store_id.to_owned()));
            let cutoff = p(Arg::Int(query.pickup_cutoff()));
            format!(
                "SELECT 'pickup_waiting' AS kind, f.order_id AS order_id, f.id AS fulfillment_id,
                        w.since AS since
                   FROM fulfillments f
                   JOIN (SELECT f2.id AS id, COALESCE(MAX(e.happened_at), MAX(f2.updated_at)) AS since
                           FROM fulfillments f2
                           LEFT JOIN tracking_events e ON e.store_id = f2.store_id
                                 AND e.fulfillment_id = f2.id AND e.status = 'available_for_pickup'
                          WHERE f2.store_id = {s} AND f2.status = 'available_for_pickup'
                          GROUP BY f2.id) w ON w.id = f.id
                  WHERE f.store_id = {s2} AND w.since < {cutoff}"
            )
        }
    }
}

/// Every selected kind, united (`UNION ALL`: one row per kind and shipment).
pub(crate) fn union_sql(
    store_id: &str,
    query: &ExceptionQuery,
    p: &mut dyn FnMut(Arg) -> String,
) -> String {
    let kinds = query.selected();
    if kinds.is_empty() {
        // Nothing selected (a reason filter on kinds without reasons): no rows, same columns.
        return "SELECT CAST(NULL AS TEXT) AS kind, CAST(NULL AS TEXT) AS order_id,
                       CAST(NULL AS TEXT) AS fulfillment_id, CAST(0 AS BIGINT) AS since
                 WHERE 1 = 0"
            .to_owned();
    }
    kinds
        .into_iter()
        .map(|k| kind_sql(k, store_id, query, p))
        .collect::<Vec<_>>()
        .join("\n UNION ALL ")
}

/// The page of exception rows, newest first: columns kind, order_id, external_id,
/// customer_email, fulfillment_id, status, estimated_delivery, since, carrier,
/// tracking_number, reason.
pub(crate) fn list_sql(
    store_id: &str,
    query: &ExceptionQuery,
    p: &mut dyn FnMut(Arg) -> String,
) -> String {
    let union = union_sql(store_id, query, p);
    let s = p(Arg::Text(store_id.to_owned()));
    let limit = p(Arg::Int(i64::from(
        query.limit.clamp(1, crate::MAX_PAGE_SIZE),
    )));
    let offset = p(Arg::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
    format!(
        "SELECT x.kind, x.order_id, o.external_id, o.customer_email, x.fulfillment_id, f.status,
                f.estimated_delivery, x.since,
                (SELECT pk.carrier FROM packages pk WHERE pk.store_id = f.store_id
                    AND pk.fulfillment_id = f.id ORDER BY pk.position LIMIT 1),
                (SELECT pk.tracking_number FROM packages pk WHERE pk.store_id = f.store_id
                    AND pk.fulfillment_id = f.id ORDER BY pk.position LIMIT 1),
                CASE x.kind WHEN 'delayed' THEN {DELAY_REASON}
                            WHEN 'failure' THEN f.exception_reason
                            WHEN 'return_to_sender' THEN f.exception_reason END
           FROM ({union}) x
           JOIN fulfillments f ON f.store_id = {s} AND f.id = x.fulfillment_id
           JOIN orders o ON o.id = x.order_id
          ORDER BY x.since DESC, x.fulfillment_id, x.kind
          LIMIT {limit} OFFSET {offset}"
    )
}

/// `(kind, count)` per selected kind that has any.
pub(crate) fn count_sql(
    store_id: &str,
    query: &ExceptionQuery,
    p: &mut dyn FnMut(Arg) -> String,
) -> String {
    let union = union_sql(store_id, query, p);
    format!("SELECT x.kind, COUNT(*) FROM ({union}) x GROUP BY x.kind")
}

/// The orders with an exception of `kind`, as a subquery of order ids.
pub(crate) fn orders_with_sql(
    kind: ExceptionKind,
    store_id: &str,
    query: &ExceptionQuery,
    p: &mut dyn FnMut(Arg) -> String,
) -> String {
    let inner = kind_sql(kind, store_id, query, p);
    format!("SELECT x.order_id FROM ({inner}) x")
}

/// Counts in [`ExceptionKind::ALL`] order, zero for kinds without any.
pub(crate) fn counts_in_order(found: Vec<(String, i64)>) -> Vec<(ExceptionKind, u64)> {
    ExceptionKind::ALL
        .into_iter()
        .map(|k| {
            let n = found
                .iter()
                .filter(|(name, _)| name == k.as_str())
                .map(|(_, n)| (*n).max(0) as u64)
                .sum();
            (k, n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in ExceptionKind::ALL {
            assert_eq!(ExceptionKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ExceptionKind::parse("late"), None);
    }

    #[test]
    fn pickup_cutoff_is_grace_before_now() {
        let now = waybill_core::time::parse_datetime("t", "2024-03-10T00:00:00Z").unwrap();
        let q = ExceptionQuery::new(now);
        assert_eq!(q.today(), "2024-03-10");
        let expected = waybill_core::time::parse_datetime("t", "2024-03-07T00:00:00Z").unwrap();
        assert_eq!(q.pickup_cutoff(), waybill_core::time::to_millis(expected));
    }
}
