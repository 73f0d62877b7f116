//! The orders list: search, filters (status, exception, exception reason, carrier, creation
//! dates), sort, paging
//! that keeps the filters, and a CSV export of the filtered list streamed page by page.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use serde::Serialize;
use waybill_core::order_status::{self, OrderStatus};
use waybill_core::{ExceptionReason, Order, Timestamp, time};
use waybill_store::{ExceptionKind, OrderQuery, OrderSort};

use super::exceptions::{KindView, kind_view};
use super::format::{Flag, csv_attachment, csv_bytes, csv_cell, money, order_flags};
use super::render::{When, page, segment};
use super::{Form, Signed, store_error};
use crate::AppState;

/// Orders per page of the list.
const PAGE_SIZE: u32 = 25;
/// Orders per store read while exporting.
const EXPORT_BATCH: u32 = 200;
/// Most rows one export writes (a bigger list is cut there, and says so in its last row).
const MAX_EXPORT_ROWS: u64 = 100_000;
/// Longest search or carrier text taken.
const MAX_TEXT_CHARS: usize = 256;
/// Highest page number accepted.
const MAX_PAGE: u64 = 100_000;

/// The list's filters and sort, as read from the query string (unknown values ignored, as the
/// form never sends them; a malformed date is reported).
#[derive(Debug, Clone, Default)]
struct Filters {
    q: String,
    statuses: Vec<OrderStatus>,
    exception: Option<ExceptionKind>,
    /// Orders with a shipment whose current exception reason is this one.
    reason: Option<ExceptionReason>,
    carrier: String,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    sort: Option<OrderSort>,
    /// What could not be read, for the page to say.
    problems: Vec<&'static str>,
}

fn text(form: &Form, name: &str) -> String {
    form.get(name)
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT_CHARS)
        .collect()
}

impl Filters {
    fn parse(form: &Form) -> Filters {
        let mut problems = Vec::new();
        let mut date = |name: &str, problem: &'static str| {
            let value = form.get(name).map(str::trim).filter(|v| !v.is_empty())?;
            let parsed = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok();
            if parsed.is_none() {
                problems.push(problem);
            }
            parsed
        };
        let from = date(
            "from",
            "The “created from” date was not a date (YYYY-MM-DD); it is ignored.",
        );
        let to = date(
            "to",
            "The “created to” date was not a date (YYYY-MM-DD); it is ignored.",
        );
        let mut statuses: Vec<OrderStatus> =
            form.all("status").filter_map(OrderStatus::parse).collect();
        statuses.sort_by_key(|s| s.as_str());
        statuses.dedup();
        Filters {
            q: text(form, "q"),
            statuses,
            exception: form.get("exception").and_then(ExceptionKind::parse),
            reason: form
                .get("reason")
                .and_then(|r| r.trim().parse::<ExceptionReason>().ok()),
            carrier: text(form, "carrier"),
            from,
            to,
            sort: form.get("sort").and_then(OrderSort::parse),
            problems,
        }
    }

    fn sort(&self) -> OrderSort {
        self.sort.unwrap_or(OrderSort::Newest)
    }

    fn filtered(&self) -> bool {
        !self.q.is_empty()
            || !self.statuses.is_empty()
            || self.exception.is_some()
            || self.reason.is_some()
            || !self.carrier.is_empty()
            || self.from.is_some()
            || self.to.is_some()
    }

    /// The store query for these filters (paging left to the caller).
    fn query(&self, now: Timestamp) -> OrderQuery {
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        OrderQuery {
            search: (!self.q.is_empty()).then(|| self.q.clone()),
            statuses: self.statuses.clone(),
            exception: self.exception.map(|k| (k, now)),
            exception_reason: self.reason,
            carrier: (!self.carrier.is_empty()).then(|| self.carrier.clone()),
            // Both ends inclusive, whole UTC days.
            created_after: self
                .from
                .and_then(midnight)
                .map(|t| time::from_millis(time::to_millis(t) - 1)),
            created_before: self.to.and_then(|d| d.succ_opt()).and_then(midnight),
            sort: self.sort(),
            ..OrderQuery::default()
        }
    }

    /// The query string of these filters (with a page number past the first).
    fn query_string(&self, page: u64) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            query.append_pair("q", &self.q);
        }
        for s in &self.statuses {
            query.append_pair("status", s.as_str());
        }
        if let Some(k) = self.exception {
            query.append_pair("exception", k.as_str());
        }
        if let Some(r) = self.reason {
            query.append_pair("reason", r.as_str());
        }
        if !self.carrier.is_empty() {
            query.append_pair("carrier", &self.carrier);
        }
        if let Some(d) = self.from {
            query.append_pair("from", &time::format_date(d));
        }
        if let Some(d) = self.to {
            query.append_pair("to", &time::format_date(d));
        }
        if let Some(sort) = self.sort {
            query.append_pair("sort", sort.as_str());
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        query.finish()
    }

    fn href(&self, path: &str, page: u64) -> String {
        let query = self.query_string(page);
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }
}

#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct OrderRow {
    href: String,
    external_id: String,
    created: When,
    email: Option<String>,
    status: String,
    status_class: String,
    flags: Vec<Flag>,
    eta: Option<String>,
    total: Option<String>,
    ordered: u32,
    fulfilled: u32,
    carriers: Vec<String>,
    tracking_numbers: Vec<String>,
    /// The labels of its shipments' current exception reasons.
    reasons: Vec<&'static str>,
}

#[derive(Serialize)]
struct OrdersBody {
    q: String,
    carrier: String,
    from: String,
    to: String,
    statuses: Vec<Choice>,
    exceptions: Vec<Choice>,
    exception: Option<KindView>,
    reasons: Vec<super::exceptions::ReasonChoice>,
    sorts: Vec<Choice>,
    problems: Vec<&'static str>,
    filtered: bool,
    orders: Vec<OrderRow>,
    total: u64,
    page: u64,
    pages: u64,
    first_shown: u64,
    last_shown: u64,
    prev_href: Option<String>,
    next_href: Option<String>,
    csv_href: String,
}

pub(super) fn status_label(status: OrderStatus) -> String {
    let text = status.as_str().replace('_', " ").to_lowercase();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// The earliest estimated delivery of the order's open shipments.
fn next_eta(order: &Order) -> Option<NaiveDate> {
    order
        .fulfillments
        .iter()
        .filter(|f| {
            !matches!(
                f.status,
                waybill_core::ShipmentStatus::Delivered | waybill_core::ShipmentStatus::Cancelled
            )
        })
        .filter_map(|f| f.estimated_delivery)
        .min()
}

fn carriers(order: &Order) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in order.fulfillments.iter().flat_map(|f| f.packages.iter()) {
        if let Some(c) = &p.carrier
            && !out.contains(c)
        {
            out.push(c.clone());
        }
    }
    out
}

fn total_text(order: &Order) -> Option<String> {
    order
        .details
        .total_price
        .map(|p| money(p, order.details.currency_code.as_deref()))
}

fn order_row(order: &Order, today: NaiveDate) -> OrderRow {
    let status = order_status::derive(order);
    OrderRow {
        href: format!("/ui/orders/{}", segment(&order.id.to_string())),
        external_id: order.external_id.clone(),
        created: order.created_at.into(),
        email: order.details.customer_email().map(str::to_owned),
        status: status_label(status),
        status_class: status.as_str().to_lowercase(),
        flags: order_flags(&order.fulfillments, today),
        eta: next_eta(order).map(time::format_date),
        total: total_text(order),
        ordered: order.line_items.iter().map(|l| l.quantity).sum(),
        fulfilled: order.line_items.iter().map(|l| l.fulfilled).sum(),
        carriers: carriers(order),
        tracking_numbers: order
            .fulfillments
            .iter()
            .flat_map(|f| f.packages.iter().map(|p| p.tracking_number.clone()))
            .collect(),
        reasons: {
            let mut reasons: Vec<ExceptionReason> = order
                .fulfillments
                .iter()
                .filter_map(|f| f.exception_reason())
                .collect();
            reasons.sort();
            reasons.dedup();
            reasons.into_iter().map(ExceptionReason::label).collect()
        },
    }
}

pub async fn orders(
    signed: Signed,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Response {
    let form = Form::parse(raw.unwrap_or_default().as_bytes());
    let filters = Filters::parse(&form);
    let page_no = form
        .get("page")
        .and_then(|p| p.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_PAGE);
    let layout = signed.layout("Orders", "orders");
    let now = time::now();
    let query = OrderQuery {
        offset: (page_no - 1) * u64::from(PAGE_SIZE),
        limit: PAGE_SIZE,
        ..filters.query(now)
    };
    let listed = match state.store.list_orders(signed.store_id(), query).await {
        Ok(page) => page,
        Err(e) => return store_error(e, layout),
    };
    let today = now.date_naive();
    let rows: Vec<OrderRow> = listed.orders.iter().map(|o| order_row(o, today)).collect();
    let first_shown = (page_no - 1) * u64::from(PAGE_SIZE) + 1;
    let body = OrdersBody {
        q: filters.q.clone(),
        carrier: filters.carrier.clone(),
        from: filters.from.map(time::format_date).unwrap_or_default(),
        to: filters.to.map(time::format_date).unwrap_or_default(),
        statuses: OrderStatus::ALL
            .into_iter()
            .map(|s| Choice {
                value: s.as_str(),
                label: status_label(s),
                selected: filters.statuses.contains(&s),
            })
            .collect(),
        exceptions: ExceptionKind::ALL
            .into_iter()
            .map(|k| Choice {
                value: k.as_str(),
                label: k.label().to_owned(),
                selected: filters.exception == Some(k),
            })
            .collect(),
        exception: filters.exception.map(kind_view),
        reasons: super::exceptions::reason_choices(filters.reason),
        sorts: [
            (OrderSort::Newest, "Newest first"),
            (OrderSort::Id, "Oldest first"),
            (OrderSort::Status, "Status"),
            (OrderSort::Eta, "Estimated delivery (soonest first)"),
        ]
        .into_iter()
        .map(|(s, label)| Choice {
            value: s.as_str(),
            label: label.to_owned(),
            selected: filters.sort() == s,
        })
        .collect(),
        problems: filters.problems.clone(),
        filtered: filters.filtered(),
        total: listed.total,
        page: page_no,
        pages: listed.total.div_ceil(u64::from(PAGE_SIZE)).max(1),
        first_shown: if rows.is_empty() { 0 } else { first_shown },
        last_shown: first_shown + rows.len() as u64 - 1,
        prev_href: (page_no > 1).then(|| filters.href("/ui/orders", page_no - 1)),
        next_href: listed
            .has_more
            .then(|| filters.href("/ui/orders", page_no + 1)),
        csv_href: filters.href("/ui/orders.csv", 1),
        orders: rows,
    };
    page(StatusCode::OK, "orders.html", &layout, &body)
}

// ---- CSV export ----

const CSV_HEADER: [&str; 14] = [
    "order_id",
    "created_at",
    "status",
    "exceptions",
    "exception_reasons",
    "customer_email",
    "total",
    "currency",
    "units_ordered",
    "units_fulfilled",
    "estimated_delivery",
    "carriers",
    "tracking_numbers",
    "fulfillments",
];

fn csv_record(order: &Order, today: NaiveDate) -> Vec<String> {
    let status = order_status::derive(order);
    let flags: Vec<&str> = order_flags(&order.fulfillments, today)
        .iter()
        .map(|f| f.label)
        .collect();
    let tracking: Vec<&str> = order
        .fulfillments
        .iter()
        .flat_map(|f| f.packages.iter().map(|p| p.tracking_number.as_str()))
        .collect();
    let fulfillments: Vec<&str> = order.fulfillments.iter().map(|f| f.id.as_str()).collect();
    // The current reason of each shipment that has one, each code once, in fulfillment order.
    let mut reasons: Vec<&str> = Vec::new();
    for reason in order
        .fulfillments
        .iter()
        .filter_map(|f| f.exception_reason())
    {
        if !reasons.contains(&reason.as_str()) {
            reasons.push(reason.as_str());
        }
    }
    [
        order.external_id.clone(),
        time::format(order.created_at),
        status.as_str().to_owned(),
        flags.join("; "),
        reasons.join("; "),
        order
            .details
            .customer_email()
            .unwrap_or_default()
            .to_owned(),
        order
            .details
            .total_price
            .map(|p| p.to_string())
            .unwrap_or_default(),
        order.details.currency_code.clone().unwrap_or_default(),
        order
            .line_items
            .iter()
            .map(|l| l.quantity)
            .sum::<u32>()
            .to_string(),
        order
            .line_items
            .iter()
            .map(|l| l.fulfilled)
            .sum::<u32>()
            .to_string(),
        next_eta(order).map(time::format_date).unwrap_or_default(),
        carriers(order).join("; "),
        tracking.join("; "),
        fulfillments.join("; "),
    ]
    .iter()
    .map(|c| csv_cell(c))
    .collect()
}

struct Export {
    state: AppState,
    store_id: String,
    query: OrderQuery,
    today: NaiveDate,
    written: u64,
    header: bool,
    done: bool,
}

/// The next chunk of the export: the header first, then one store page at a time.
async fn next_chunk(mut ex: Export) -> Option<(Result<Bytes, std::io::Error>, Export)> {
    if ex.done {
        return None;
    }
    if ex.header {
        ex.header = false;
        let header = vec![CSV_HEADER.iter().map(|s| (*s).to_owned()).collect()];
        return Some((csv_bytes(header).map_err(std::io::Error::other), ex));
    }
    let query = OrderQuery {
        offset: ex.written,
        limit: EXPORT_BATCH,
        ..ex.query.clone()
    };
    match ex.state.store.list_orders(&ex.store_id, query).await {
        Ok(page) => {
            ex.written += page.orders.len() as u64;
            ex.done = !page.has_more || page.orders.is_empty() || ex.written >= MAX_EXPORT_ROWS;
            let today = ex.today;
            let chunk = csv_bytes(page.orders.iter().map(|o| csv_record(o, today)));
            if let Err(e) = &chunk {
                tracing::error!(store = %ex.store_id, error = %e, "dashboard: writing the orders CSV");
                ex.done = true;
            }
            Some((chunk.map_err(std::io::Error::other), ex))
        }
        Err(e) => {
            // The response has started: all that can be done is to end it short and log why.
            tracing::error!(
                store = %ex.store_id,
                offset = ex.written,
                error = %e,
                "dashboard: reading orders for the CSV export"
            );
            ex.done = true;
            Some((Err(std::io::Error::other(e.to_string())), ex))
        }
    }
}

pub async fn orders_csv(
    signed: Signed,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Response {
    let form = Form::parse(raw.unwrap_or_default().as_bytes());
    let filters = Filters::parse(&form);
    let now = time::now();
    let store_id = signed.store_id().to_owned();
    // Ask once before the stream starts, so that a store failure is still a proper error page.
    let probe = OrderQuery {
        limit: 1,
        ..filters.query(now)
    };
    if let Err(e) = state.store.list_orders(&store_id, probe).await {
        return store_error(e, signed.layout("Orders", "orders"));
    }
    let export = Export {
        state,
        store_id,
        query: filters.query(now),
        today: now.date_naive(),
        written: 0,
        header: true,
        done: false,
    };
    let stream = futures_util::stream::unfold(export, next_chunk);
    csv_attachment(
        Body::from_stream(stream),
        "attachment; filename=\"orders.csv\"",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_as_rfc_4180_says() {
        let bytes = csv_bytes([vec![
            "plain".to_owned(),
            "a,b".to_owned(),
            "say \"hi\"".to_owned(),
            "two\nlines".to_owned(),
        ]])
        .expect("CSV");
        assert_eq!(
            std::str::from_utf8(&bytes).expect("UTF-8"),
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
    }

    #[test]
    fn filters_round_trip_through_their_query_string() {
        let form = Form::parse(
            b"q=1Z9&status=SHIPPED&exception=delayed&carrier=UPS&from=2024-03-01&to=2024-03-31&sort=eta&page=3",
        );
        let f = Filters::parse(&form);
        assert!(f.problems.is_empty());
        assert_eq!(
            f.href("/ui/orders", 2),
            "/ui/orders?q=1Z9&status=SHIPPED&exception=delayed&carrier=UPS&from=2024-03-01&to=2024-03-31&sort=eta&page=2"
        );
        let bad = Filters::parse(&Form::parse(b"from=yesterday"));
        assert_eq!(bad.from, None);
        assert_eq!(bad.problems.len(), 1);
        assert_eq!(bad.sort(), OrderSort::Newest);
    }
}
