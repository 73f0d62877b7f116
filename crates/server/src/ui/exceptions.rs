//! The exceptions view (the landing page): the store's shipments that need attention, by
//! kind, with counts, and its failing webhook subscriptions. `?reason=` keeps the shipments
//! with that exception reason (delays, failures and returns to sender).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use waybill_core::{ExceptionReason, time};
use waybill_store::{ExceptionKind, ExceptionQuery, ExceptionRow, WebhookFlavor};

use super::render::{When, page, segment, status_text};
use super::{Form, Signed, store_error};
use crate::AppState;

/// Rows per page.
const PAGE_SIZE: u32 = 50;
/// Highest page number accepted.
const MAX_PAGE: u64 = 10_000;

#[derive(Serialize)]
pub(super) struct KindView {
    pub value: &'static str,
    pub label: &'static str,
    /// The CSS class of its badge (`exc-delayed`, …): a colour of its own, beside its text.
    pub class: String,
}

pub(super) fn kind_view(kind: ExceptionKind) -> KindView {
    KindView {
        value: kind.as_str(),
        label: kind.label(),
        class: format!("exc-{}", kind.as_str().replace('_', "-")),
    }
}

#[derive(Serialize)]
struct CountView {
    kind: KindView,
    count: u64,
    href: String,
    current: bool,
}

#[derive(Serialize)]
struct RowView {
    kind: KindView,
    order_href: String,
    order_external_id: String,
    fulfillment_href: String,
    fulfillment_id: String,
    email: Option<String>,
    status: String,
    status_class: String,
    carrier: Option<String>,
    tracking_number: Option<String>,
    eta: Option<String>,
    since: When,
    /// The exception reason's label, if it has one.
    reason: Option<&'static str>,
}

/// A choice of the reason filter.
#[derive(Serialize)]
pub(super) struct ReasonChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// Every exception reason, `current` selected.
pub(super) fn reason_choices(current: Option<ExceptionReason>) -> Vec<ReasonChoice> {
    ExceptionReason::ALL
        .into_iter()
        .map(|r| ReasonChoice {
            value: r.as_str(),
            label: r.label(),
            selected: current == Some(r),
        })
        .collect()
}

#[derive(Serialize)]
struct WebhookView {
    href: String,
    url: String,
    flavor: &'static str,
    state: &'static str,
    state_class: &'static str,
    failing_since: Option<When>,
    reason: Option<String>,
}

#[derive(Serialize)]
struct ExceptionsBody {
    counts: Vec<CountView>,
    total: u64,
    kind: Option<KindView>,
    /// The kind filter's value, kept by the reason form.
    kind_value: Option<&'static str>,
    reason: Option<&'static str>,
    reasons: Vec<ReasonChoice>,
    rows: Vec<RowView>,
    webhooks: Vec<WebhookView>,
    page: u64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

fn exceptions_href(
    kind: Option<ExceptionKind>,
    reason: Option<ExceptionReason>,
    page: u64,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(kind) = kind {
        query.append_pair("kind", kind.as_str());
    }
    if let Some(reason) = reason {
        query.append_pair("reason", reason.as_str());
    }
    if page > 1 {
        query.append_pair("page", &page.to_string());
    }
    let query = query.finish();
    if query.is_empty() {
        "/ui/exceptions".to_owned()
    } else {
        format!("/ui/exceptions?{query}")
    }
}

fn row_view(r: ExceptionRow) -> RowView {
    RowView {
        kind: kind_view(r.kind),
        order_href: format!("/ui/orders/{}", segment(&r.order_id)),
        fulfillment_href: format!(
            "/ui/orders/{}/fulfillments/{}",
            segment(&r.order_id),
            segment(&r.fulfillment_id)
        ),
        order_external_id: r.order_external_id,
        fulfillment_id: r.fulfillment_id,
        email: r.customer_email,
        status: status_text(&r.status),
        status_class: r.status,
        carrier: r.carrier,
        tracking_number: r.tracking_number,
        eta: r.estimated_delivery.map(time::format_date),
        since: r.since.into(),
        reason: r.reason.map(ExceptionReason::label),
    }
}

pub async fn exceptions(
    signed: Signed,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Form::parse(raw.unwrap_or_default().as_bytes());
    // An unknown kind is ignored (all kinds are shown), as the page's links never send one.
    let kind = query.get("kind").and_then(ExceptionKind::parse);
    // So is an unknown reason (the form only offers the vocabulary).
    let reason = query
        .get("reason")
        .and_then(|r| r.trim().parse::<ExceptionReason>().ok());
    let page_no = query
        .get("page")
        .and_then(|p| p.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_PAGE);
    let layout = signed.layout("Exceptions", "exceptions");
    let store_id = signed.store_id();
    let now = time::now();

    let mut counted = ExceptionQuery::new(now);
    counted.reason = reason;
    let counts = match state.store.count_exceptions(store_id, counted).await {
        Ok(counts) => counts,
        Err(e) => return store_error(e, layout),
    };
    let mut list = ExceptionQuery::new(now);
    list.kinds = kind.into_iter().collect();
    list.reason = reason;
    list.offset = (page_no - 1) * u64::from(PAGE_SIZE);
    list.limit = PAGE_SIZE + 1;
    let mut rows = match state.store.list_exceptions(store_id, list).await {
        Ok(rows) => rows,
        Err(e) => return store_error(e, layout),
    };
    let has_more = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);

    let mut webhooks = Vec::new();
    for flavor in [
        WebhookFlavor::Redo,
        WebhookFlavor::Fourthwall,
        WebhookFlavor::Automation,
    ] {
        let listed = match state.store.list_webhooks(store_id, flavor).await {
            Ok(listed) => listed,
            Err(e) => return store_error(e, layout),
        };
        webhooks.extend(
            listed
                .into_iter()
                .filter(|w| !w.enabled || w.failing_since.is_some())
                .map(|w| WebhookView {
                    href: format!("/ui/webhooks/{}", segment(&w.id)),
                    url: w.url,
                    flavor: match flavor {
                        WebhookFlavor::Redo => "Redo",
                        WebhookFlavor::Fourthwall => "Fourthwall",
                        WebhookFlavor::Automation => "Automation",
                    },
                    state: if w.enabled { "Failing" } else { "Disabled" },
                    state_class: if w.enabled { "failure" } else { "disabled" },
                    failing_since: w.failing_since.map(When::from),
                    reason: w.disabled_reason,
                }),
        );
    }

    let body = ExceptionsBody {
        total: counts.iter().map(|(_, n)| n).sum(),
        counts: counts
            .into_iter()
            .map(|(k, count)| CountView {
                kind: kind_view(k),
                count,
                href: exceptions_href(Some(k), reason, 1),
                current: kind == Some(k),
            })
            .collect(),
        kind: kind.map(kind_view),
        kind_value: kind.map(ExceptionKind::as_str),
        reason: reason.map(ExceptionReason::label),
        reasons: reason_choices(reason),
        rows: rows.into_iter().map(row_view).collect(),
        webhooks,
        page: page_no,
        prev_href: (page_no > 1).then(|| exceptions_href(kind, reason, page_no - 1)),
        next_href: has_more.then(|| exceptions_href(kind, reason, page_no + 1)),
    };
    page(StatusCode::OK, "exceptions.html", &layout, &body)
}
