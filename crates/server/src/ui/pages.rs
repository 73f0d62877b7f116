//! The dashboard's pages: orders, an order, a fulfillment's tracking timeline, automations with
//! their runs (webhook subscriptions are in `webhooks.rs`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use waybill_core::order_status::{self, OrderStatus};
use waybill_core::{Fulfillment, Order, OrderRef, Package, time};
use waybill_store::AutomationAction;

use super::format::{Flag, fulfillment_flags, money};
use super::render::{When, location_text, page, safe_link, segment, status_text};
use super::{Form, Signed, not_found_page, store_error};
use crate::AppState;

/// Deliveries, attempts and runs shown per page.
pub(super) const LOG_ROWS: u32 = 50;

/// Whether a path or form value could be an id at all (ids are validated on the way in: not
/// blank, not too long, no control characters). Anything else is not found without a query,
/// which also keeps NUL bytes away from PostgreSQL.
pub(super) fn plausible_id(text: &str) -> bool {
    waybill_core::order::validate_id("id", text).is_ok()
}

/// The path's parameters if they could name something; `None` answers 404.
pub(super) fn path_ids<T>(
    path: Result<Path<T>, PathRejection>,
    ids: impl Fn(&T) -> Vec<&str>,
) -> Option<T> {
    let Path(value) = path.ok()?;
    ids(&value).into_iter().all(plausible_id).then_some(value)
}

pub(super) fn order_href(order_id: &str) -> String {
    format!("/ui/orders/{}", segment(order_id))
}

fn fulfillment_href(order_id: &str, fulfillment_id: &str) -> String {
    format!(
        "/ui/orders/{}/fulfillments/{}",
        segment(order_id),
        segment(fulfillment_id)
    )
}

fn status_label(status: OrderStatus) -> String {
    let text = status.as_str().replace('_', " ").to_lowercase();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

// ---- an order ----

#[derive(Serialize)]
struct LineRow {
    id: String,
    title: String,
    sku: Option<String>,
    ordered: u32,
    fulfilled: u32,
    remaining: u32,
    returned: u32,
    returnable: u32,
}

#[derive(Serialize)]
struct FulfillmentRow {
    href: String,
    id: String,
    status: String,
    status_class: &'static str,
    /// Every parcel, each linked to its carrier's tracking page when known.
    packages: Vec<PackageView>,
    flags: Vec<Flag>,
    eta: Option<String>,
    updated: When,
    units: u32,
}

#[derive(Serialize)]
struct OrderBody {
    external_id: String,
    internal_id: String,
    created: When,
    updated: When,
    status: String,
    status_class: String,
    email: Option<String>,
    customer_name: Option<String>,
    total: Option<String>,
    lines: Vec<LineRow>,
    fulfillments: Vec<FulfillmentRow>,
    returns: super::returns::OrderReturns,
}

async fn load_order(
    signed: &Signed,
    state: &AppState,
    order: &str,
    title: &str,
) -> Result<Order, Response> {
    state
        .store
        .get_order(signed.store_id(), &OrderRef::new(order))
        .await
        .map_err(|e| store_error(e, signed.layout(title, "orders")))
}

pub async fn order(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(order_ref) = path_ids(path, |id| vec![id.as_str()]) else {
        return not_found_page(signed.layout("Order", "orders"));
    };
    let order = match load_order(&signed, &state, &order_ref, "Order").await {
        Ok(order) => order,
        Err(response) => return response,
    };
    let returns = match super::returns::order_returns(&state, signed.store_id(), &order).await {
        Ok(returns) => returns,
        Err(e) => return store_error(e, signed.layout("Order", "orders")),
    };
    let status = order_status::derive(&order);
    let internal_id = order.id.to_string();
    let today = time::now().date_naive();
    let customer = order.details.customer.as_ref();
    let body = OrderBody {
        external_id: order.external_id.clone(),
        created: order.created_at.into(),
        updated: order.updated_at.into(),
        status: status_label(status),
        status_class: status.as_str().to_lowercase(),
        email: order.details.customer_email().map(str::to_owned),
        customer_name: customer.and_then(|c| {
            c.name.clone().or_else(|| {
                let parts: Vec<&str> = [c.first_name.as_deref(), c.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
        }),
        total: order
            .details
            .total_price
            .map(|p| money(p, order.details.currency_code.as_deref())),
        lines: order
            .line_items
            .iter()
            .map(|l| {
                let (returned, returnable) = returns.units.get(&l.id).copied().unwrap_or_default();
                LineRow {
                    id: l.id.clone(),
                    title: l.title.clone(),
                    sku: l.sku.clone(),
                    ordered: l.quantity,
                    fulfilled: l.fulfilled,
                    remaining: l.remaining(),
                    returned,
                    returnable,
                }
            })
            .collect(),
        fulfillments: order
            .fulfillments
            .iter()
            .map(|f| FulfillmentRow {
                href: fulfillment_href(&internal_id, &f.id),
                id: f.id.clone(),
                status: f.status.description().to_owned(),
                status_class: f.status.as_str(),
                packages: f.packages.iter().map(package_view).collect(),
                flags: fulfillment_flags(f, today),
                eta: f.estimated_delivery.map(time::format_date),
                updated: f.updated_at.into(),
                units: f.lines.iter().map(|l| l.quantity).sum(),
            })
            .collect(),
        internal_id,
        returns,
    };
    let title = format!("Order {}", order.external_id);
    page(
        StatusCode::OK,
        "order.html",
        &signed.layout(title, "orders"),
        &body,
    )
}

// ---- a fulfillment ----

#[derive(Serialize)]
pub(super) struct PackageView {
    carrier: Option<String>,
    tracking_number: String,
    tracking_url: Option<String>,
}

#[derive(Serialize)]
struct TimelineEntry {
    status: String,
    status_code: String,
    message: Option<String>,
    at: When,
    location: Option<String>,
    /// The exception reason's label, if the entry carried one.
    reason: Option<&'static str>,
}

#[derive(Serialize)]
struct FulfillmentLineView {
    title: String,
    sku: Option<String>,
    quantity: u32,
}

#[derive(Serialize)]
pub(super) struct FulfillmentBody {
    id: String,
    order_external_id: String,
    order_href: String,
    status: String,
    status_class: &'static str,
    status_label: Option<String>,
    flags: Vec<Flag>,
    eta: Option<String>,
    delivered: Option<When>,
    created: When,
    packages: Vec<PackageView>,
    lines: Vec<FulfillmentLineView>,
    timeline: Vec<TimelineEntry>,
}

/// A package as shown: its own tracking URL when it has a usable one, otherwise the carrier's
/// public tracking page when the carrier is recognised (`waybill_carriers`).
pub(super) fn package_view(package: &Package) -> PackageView {
    let own = package.tracking_url.as_deref().and_then(safe_link);
    let tracking_url = own.or_else(|| {
        waybill_carriers::normalize_package(package)
            .package
            .tracking_url
            .as_deref()
            .and_then(safe_link)
    });
    PackageView {
        carrier: package.carrier.clone(),
        tracking_number: package.tracking_number.clone(),
        tracking_url,
    }
}

pub(super) fn fulfillment_body(order: &Order, f: &Fulfillment) -> FulfillmentBody {
    FulfillmentBody {
        id: f.id.clone(),
        order_external_id: order.external_id.clone(),
        order_href: order_href(&order.id.to_string()),
        status: f.status.description().to_owned(),
        status_class: f.status.as_str(),
        status_label: f.status_label.clone(),
        flags: fulfillment_flags(f, time::now().date_naive()),
        eta: f.estimated_delivery.map(time::format_date),
        delivered: f.delivered_at.map(When::from),
        created: f.created_at.into(),
        packages: f.packages.iter().map(package_view).collect(),
        lines: f
            .lines
            .iter()
            .map(|l| FulfillmentLineView {
                title: l.title.clone(),
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect(),
        // History is stored and read back in event-time order: oldest first.
        timeline: f
            .history
            .iter()
            .map(|h| {
                let status = status_text(&h.status);
                TimelineEntry {
                    // A message that only repeats the status is not shown twice.
                    message: (h.message.trim() != status && !h.message.trim().is_empty())
                        .then(|| h.message.clone()),
                    status,
                    status_code: h.status.clone(),
                    at: h.datetime.into(),
                    location: location_text(h.location.as_ref()),
                    reason: h.reason.map(waybill_core::ExceptionReason::label),
                }
            })
            .collect(),
    }
}

pub async fn fulfillment(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some((order_ref, fulfillment_id)) = path_ids(path, |(o, f)| vec![o.as_str(), f.as_str()])
    else {
        return not_found_page(signed.layout("Fulfillment", "orders"));
    };
    let order = match load_order(&signed, &state, &order_ref, "Fulfillment").await {
        Ok(order) => order,
        Err(response) => return response,
    };
    let Some(f) = order.fulfillments.iter().find(|f| f.id == fulfillment_id) else {
        return not_found_page(signed.layout("Fulfillment", "orders"));
    };
    let query = Form::parse(raw.unwrap_or_default().as_bytes());
    super::actions::shown(&signed, &order, f, query.get("done"))
}

// ---- automations ----

#[derive(Serialize)]
struct AutomationRow {
    href: String,
    id: String,
    name: String,
    trigger: &'static str,
    carrier: Option<String>,
    action: &'static str,
    action_detail: String,
    enabled: bool,
    created: When,
}

fn automation_row(a: &waybill_store::AutomationRecord) -> AutomationRow {
    AutomationRow {
        href: format!("/ui/automations/{}", segment(&a.id)),
        id: a.id.clone(),
        name: a.name.clone(),
        trigger: a.trigger.description(),
        carrier: a.carrier.clone(),
        action: a.action.kind(),
        action_detail: match &a.action {
            AutomationAction::Email { to, subject, .. } => match to {
                Some(to) => format!("“{subject}” to {to}"),
                None => format!("“{subject}” to the customer"),
            },
            AutomationAction::Webhook { url, .. } => format!("POST to {url}"),
        },
        enabled: a.enabled,
        created: a.created_at.into(),
    }
}

#[derive(Serialize)]
struct AutomationsBody {
    automations: Vec<AutomationRow>,
    notice: Option<&'static str>,
}

pub async fn automations(
    signed: Signed,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Response {
    let notice = match Form::parse(raw.unwrap_or_default().as_bytes()).get("done") {
        Some("deleted") => Some("The automation was deleted, with its runs."),
        _ => None,
    };
    let layout = signed.layout("Automations", "automations");
    match state.store.list_automations(signed.store_id()).await {
        Ok(list) => page(
            StatusCode::OK,
            "automations.html",
            &layout,
            &AutomationsBody {
                automations: list.iter().map(automation_row).collect(),
                notice,
            },
        ),
        Err(e) => store_error(e, layout),
    }
}

#[derive(Serialize)]
struct RunRow {
    id: i64,
    order_href: String,
    fulfillment_href: String,
    fulfillment_id: String,
    trigger: String,
    status: String,
    attempts: u32,
    last_error: Option<String>,
    detail: Option<String>,
    delivery_status: Option<String>,
    created: When,
    updated: When,
}

#[derive(Serialize)]
struct AutomationBody {
    automation: AutomationRow,
    runs: Vec<RunRow>,
}

pub async fn automation(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let layout = signed.layout("Automation", "automations");
    let Some(automation_id) = path_ids(path, |id| vec![id.as_str()]) else {
        return not_found_page(layout);
    };
    let store_id = signed.store_id();
    let record = match state.store.get_automation(store_id, &automation_id).await {
        Ok(Some(record)) => record,
        Ok(None) => return not_found_page(layout),
        Err(e) => return store_error(e, layout),
    };
    let runs = match state
        .store
        .list_automation_runs(store_id, &record.id, LOG_ROWS * 2)
        .await
    {
        Ok(Some(runs)) => runs,
        Ok(None) => return not_found_page(layout),
        Err(e) => return store_error(e, layout),
    };
    let body = AutomationBody {
        automation: automation_row(&record),
        runs: runs
            .into_iter()
            .map(|r| RunRow {
                id: r.id,
                order_href: order_href(&r.order_id),
                // A return's run links to the return's page.
                fulfillment_href: match (&r.fulfillment_id, &r.return_id) {
                    (Some(f), _) => fulfillment_href(&r.order_id, f),
                    (None, Some(id)) => super::returns::return_href(id),
                    (None, None) => order_href(&r.order_id),
                },
                fulfillment_id: match (r.fulfillment_id, r.return_id) {
                    (Some(f), _) => f,
                    (None, r) => format!("return {}", r.unwrap_or_default()),
                },
                trigger: super::returns::trigger_text(&r.trigger)
                    .unwrap_or_else(|| status_text(&r.trigger)),
                status: r.status,
                attempts: r.attempts,
                last_error: r.last_error,
                detail: r.detail,
                delivery_status: r.delivery_status,
                created: r.created_at.into(),
                updated: r.updated_at.into(),
            })
            .collect(),
    };
    let title = format!("Automation {}", record.name);
    page(
        StatusCode::OK,
        "automation.html",
        &signed.layout(title, "automations"),
        &body,
    )
}

// ---- CSV import ----

/// Rows of the report shown on the page (the summary counts them all).
const REPORT_ROWS_SHOWN: usize = 1000;

#[derive(Serialize, Default)]
struct ImportPage {
    error: Option<String>,
    report: Vec<ImportRow>,
    summary: Option<ImportSummary>,
    truncated: bool,
}

#[derive(Serialize)]
struct ImportRow {
    row: u64,
    result: &'static str,
    fulfillment_id: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct ImportSummary {
    total: u64,
    created: u64,
    duplicate: u64,
    error: u64,
}

pub async fn import_form(signed: Signed) -> Response {
    page(
        StatusCode::OK,
        "import.html",
        &signed.layout("Import", "import"),
        &ImportPage::default(),
    )
}

/// Runs an uploaded CSV through the importer (the same as `waybill import fulfillments`) and
/// shows its report: errors first, then the rest, in row order.
pub async fn import(
    signed: Signed,
    State(state): State<AppState>,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let layout = signed.layout("Import", "import");
    let refused = |message: String| {
        page(
            StatusCode::BAD_REQUEST,
            "import.html",
            &layout,
            &ImportPage {
                error: Some(message),
                ..ImportPage::default()
            },
        )
    };
    let Ok(mut multipart) = multipart else {
        return refused("the form could not be read; choose a CSV file and try again".into());
    };
    let (mut csrf, mut file, mut kind) = (None, None, None);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                match field.bytes().await {
                    Ok(bytes) if name == "csrf" => {
                        csrf = Some(String::from_utf8_lossy(&bytes).into_owned());
                    }
                    Ok(bytes) if name == "file" => file = Some(bytes),
                    Ok(bytes) if name == "kind" => {
                        kind = Some(String::from_utf8_lossy(&bytes).into_owned());
                    }
                    Ok(_) => {}
                    Err(e) => return refused(format!("the upload could not be read: {e}")),
                }
            }
            Ok(None) => break,
            Err(e) => return refused(format!("the upload could not be read: {e}")),
        }
    }
    if !super::session::tokens_match(&signed.session.csrf, csrf.as_deref().unwrap_or_default()) {
        return signed.forbidden();
    }
    let Some(file) = file.filter(|f| !f.is_empty()) else {
        return refused("choose a non-empty CSV file".into());
    };
    let store_id = signed.store_id().to_owned();
    // Fulfillments (the default) or returns: the same importers as `waybill import …`.
    type Results =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = crate::import::ReportRow> + Send>>;
    let results: Results = if kind.as_deref() == Some("returns") {
        match crate::import::returns::parse(&store_id, file.as_ref()) {
            Ok(rows) => Box::pin(crate::import::returns::execute(
                state.store.clone(),
                store_id,
                rows,
                8,
            )),
            Err(e) => return refused(e.to_string()),
        }
    } else {
        match crate::import::parse(&store_id, file.as_ref()) {
            Ok(rows) => Box::pin(crate::import::execute(
                state.store.clone(),
                store_id,
                rows,
                8,
            )),
            Err(e) => return refused(e.to_string()),
        }
    };
    let mut results = results;
    let mut summary = crate::import::Summary::default();
    let mut report = Vec::new();
    while let Some(row) = futures_util::StreamExt::next(&mut results).await {
        summary.add(&row);
        report.push(row);
    }
    report.sort_by_key(|r| (r.result != crate::import::RowResult::Error, r.row));
    let truncated = report.len() > REPORT_ROWS_SHOWN;
    report.truncate(REPORT_ROWS_SHOWN);
    page(
        StatusCode::OK,
        "import.html",
        &layout,
        &ImportPage {
            error: None,
            report: report
                .into_iter()
                .map(|r| ImportRow {
                    row: r.row,
                    result: r.result.as_str(),
                    fulfillment_id: r.fulfillment_id,
                    error: r.error,
                })
                .collect(),
            summary: Some(ImportSummary {
                total: summary.rows,
                created: summary.created,
                duplicate: summary.duplicate,
                error: summary.error,
            }),
            truncated,
        },
    )
}
