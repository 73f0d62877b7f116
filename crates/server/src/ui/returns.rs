//! Returns in the dashboard: the order page's returns section, the "Create return" form, a
//! return's page with its status form, the `/ui/returns` list and its CSV export.
//!
//! Creating a return and moving it along go through the Redo dialect's own request types
//! (`CreateReturnRequest::into_domain`, `UpdateReturnStatusRequest::into_domain`), carrier
//! normalisation and the same store commands (`Store::create_return`,
//! `Store::update_return_status`) as `POST /v2.2/stores/{storeId}/returns` and
//! `PUT /v2.2/returns/{returnId}/status`: the same checks, messages, history, ledger and
//! `return.*` outbox events. A refused form is shown again with the API's sentence and the
//! values kept, and nothing changes. Every lookup uses the signed-in store, so another store's
//! order or return is not found (404).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::json;
use waybill_core::{DomainError, Order, OrderRef, Return, ReturnReason, ReturnStatus, time};
use waybill_store::{LineUnits, MAX_PAGE_SIZE, ReturnQuery, StoreError};

use super::format::{csv_attachment, csv_bytes, csv_cell};
use super::pages::{PackageView, order_href, package_view, path_ids};
use super::render::{When, location_text, page, segment, status_text};
use super::{Form, Posted, Signed, not_found_page, redirect, store_error};
use crate::AppState;
use crate::dialects::redo::returns::{CreateReturnRequest, UpdateReturnStatusRequest, redo_status};

/// Returns per page of the list.
const PAGE_SIZE: u32 = 25;
/// Most rows one export writes.
const MAX_EXPORT_ROWS: usize = 100_000;
/// Longest search text taken.
const MAX_TEXT_CHARS: usize = 256;

pub(super) fn return_href(return_id: &str) -> String {
    format!("/ui/returns/{}", segment(return_id))
}

/// "Return received", … for an automation trigger on a return's status (`return.received`);
/// `None` for any other trigger.
pub(super) fn trigger_text(trigger: &str) -> Option<String> {
    let status: ReturnStatus = trigger.strip_prefix("return.")?.parse().ok()?;
    Some(format!("Return {}", status_label(status).to_lowercase()))
}

fn new_return_href(order_id: &str) -> String {
    format!("{}/returns/new", order_href(order_id))
}

/// "Return requested", … for a lifecycle status.
fn status_label(status: ReturnStatus) -> &'static str {
    match status {
        ReturnStatus::Requested => "Requested",
        ReturnStatus::InTransit => "In transit",
        ReturnStatus::Received => "Received",
        ReturnStatus::Closed => "Closed",
        ReturnStatus::Rejected => "Rejected",
    }
}

fn reason_label(reason: ReturnReason) -> &'static str {
    match reason {
        ReturnReason::Damaged => "Damaged",
        ReturnReason::Defective => "Defective",
        ReturnReason::WrongItem => "Wrong item",
        ReturnReason::TooSmall => "Too small",
        ReturnReason::TooLarge => "Too large",
        ReturnReason::NotAsDescribed => "Not as described",
        ReturnReason::ChangedMind => "Changed mind",
        ReturnReason::Other => "Other",
    }
}

/// A history entry's readable status: a lifecycle change (`return.received`) or a shipment
/// status of the return parcel.
fn history_text(status: &str) -> String {
    match status
        .strip_prefix("return.")
        .and_then(|s| s.parse::<ReturnStatus>().ok())
    {
        Some(s) => s.description().to_owned(),
        None => status_text(status),
    }
}

/// A store failure on a returns page: a missing order or return is "not found".
fn failed(e: StoreError, signed: &Signed, title: &str) -> Response {
    match e {
        StoreError::Domain(DomainError::ReturnNotFound(_) | DomainError::OrderNotFound(_)) => {
            not_found_page(signed.layout(title, "returns"))
        }
        other => store_error(other, signed.layout(title, "returns")),
    }
}

#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn reason_choices(selected: &str) -> Vec<Choice> {
    ReturnReason::ALL
        .into_iter()
        .map(|r| Choice {
            value: r.as_str(),
            label: reason_label(r),
            selected: selected == r.as_str(),
        })
        .collect()
}

// ---- the order page's section ----

/// A return as a row of a table.
#[derive(Serialize)]
pub(super) struct ReturnRow {
    href: String,
    id: String,
    order_external_id: String,
    order_href: String,
    status: &'static str,
    status_code: &'static str,
    units: u32,
    reasons: String,
    packages: Vec<PackageView>,
    created: When,
    updated: When,
}

fn return_row(r: &Return) -> ReturnRow {
    let mut reasons: Vec<&str> = r.lines.iter().map(|l| reason_label(l.reason)).collect();
    reasons.dedup();
    ReturnRow {
        href: return_href(&r.id),
        id: r.id.clone(),
        order_external_id: r.order_external_id.clone(),
        order_href: order_href(&r.order_id.to_string()),
        status: status_label(r.status),
        status_code: r.status.as_str(),
        units: r.lines.iter().map(|l| l.quantity).sum(),
        reasons: reasons.join(", "),
        packages: r.packages.iter().map(package_view).collect(),
        created: r.created_at.into(),
        updated: r.updated_at.into(),
    }
}

/// What the order page shows about returns: units per line, the order's returns, and the link
/// to the form when something can be returned.
#[derive(Serialize, Default)]
pub(super) struct OrderReturns {
    pub returns: Vec<ReturnRow>,
    pub new_href: Option<String>,
    /// Units in live returns and units still returnable, by line item id.
    #[serde(skip)]
    pub units: HashMap<String, (u32, u32)>,
}

/// Reads the order's returns and units (in the signed-in store).
pub(super) async fn order_returns(
    state: &AppState,
    store_id: &str,
    order: &Order,
) -> Result<OrderReturns, StoreError> {
    let order_ref = OrderRef::new(order.id.to_string());
    let units = LineUnits::of(order);
    let returns = state
        .store
        .list_returns(
            store_id,
            ReturnQuery {
                order: Some(order_ref),
                limit: MAX_PAGE_SIZE,
                ..ReturnQuery::default()
            },
        )
        .await?;
    let units: HashMap<String, (u32, u32)> = units
        .into_iter()
        .map(|u| {
            let returnable = u.fulfilled.saturating_sub(u.returned);
            (u.line_item_id, (u.returned, returnable))
        })
        .collect();
    let any_returnable = units.values().any(|(_, n)| *n > 0);
    Ok(OrderReturns {
        returns: returns.iter().map(return_row).collect(),
        new_href: any_returnable.then(|| new_return_href(&order.id.to_string())),
        units,
    })
}

// ---- the "Create return" form ----

#[derive(Serialize)]
struct NewLine {
    id: String,
    title: String,
    sku: Option<String>,
    fulfilled: u32,
    returned: u32,
    returnable: u32,
    quantity: String,
    reasons: Vec<Choice>,
}

#[derive(Serialize)]
struct NewReturnBody {
    order_external_id: String,
    order_href: String,
    action: String,
    lines: Vec<NewLine>,
    carrier: String,
    tracking_number: String,
    note: String,
    error: Option<String>,
}

/// What the form carried (or blanks), by line id.
#[derive(Default)]
struct NewValues {
    lines: HashMap<String, (String, String)>,
    carrier: String,
    tracking_number: String,
    note: String,
}

fn new_body(
    order: &Order,
    units: &[LineUnits],
    values: NewValues,
    error: Option<String>,
) -> NewReturnBody {
    let internal = order.id.to_string();
    let lines = order
        .line_items
        .iter()
        .filter_map(|l| {
            let u = units.iter().find(|u| u.line_item_id == l.id)?;
            let returnable = u.fulfilled.saturating_sub(u.returned);
            (returnable > 0).then(|| {
                let (quantity, reason) = values.lines.get(&l.id).cloned().unwrap_or_default();
                NewLine {
                    id: l.id.clone(),
                    title: l.title.clone(),
                    sku: l.sku.clone(),
                    fulfilled: u.fulfilled,
                    returned: u.returned,
                    returnable,
                    quantity,
                    reasons: reason_choices(&reason),
                }
            })
        })
        .collect();
    NewReturnBody {
        order_external_id: order.external_id.clone(),
        order_href: order_href(&internal),
        action: format!("{}/returns", order_href(&internal)),
        lines,
        carrier: values.carrier,
        tracking_number: values.tracking_number,
        note: values.note,
        error,
    }
}

async fn load_order(
    signed: &Signed,
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<(Order, Vec<LineUnits>), Response> {
    let Some(order_ref) = path_ids(path, |id| vec![id.as_str()]) else {
        return Err(not_found_page(signed.layout("New return", "returns")));
    };
    let store_id = signed.store_id();
    let order = state
        .store
        .get_order(store_id, &OrderRef::new(order_ref))
        .await
        .map_err(|e| failed(e, signed, "New return"))?;
    let units = LineUnits::of(&order);
    Ok((order, units))
}

fn new_page(signed: &Signed, status: StatusCode, body: &NewReturnBody) -> Response {
    let title = format!("New return for order {}", body.order_external_id);
    page(
        status,
        "return_new.html",
        &signed.layout(title, "returns"),
        body,
    )
}

/// `GET /ui/orders/{order}/returns/new`.
pub async fn new_form(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    match load_order(&signed, &state, path).await {
        Ok((order, units)) => new_page(
            &signed,
            StatusCode::OK,
            &new_body(&order, &units, NewValues::default(), None),
        ),
        Err(response) => response,
    }
}

fn trimmed(form: &Form, name: &str) -> String {
    form.get(name).unwrap_or_default().trim().to_owned()
}

/// The API's create body from the form: each line with a quantity other than blank or 0.
/// A quantity that is not a whole number is refused here, in the API's words.
fn create_request(order: &Order, form: &Form) -> Result<serde_json::Value, String> {
    let values = form_values(form);
    let quantities: Vec<&str> = form.all("quantity").collect();
    let reasons: Vec<&str> = form.all("reason").collect();
    let mut items = Vec::new();
    for (i, id) in form.all("line").enumerate() {
        let quantity = quantities.get(i).map(|q| q.trim()).unwrap_or_default();
        let reason = reasons.get(i).map(|r| r.trim()).unwrap_or_default();
        if quantity.is_empty() || quantity == "0" {
            continue;
        }
        let Ok(n) = quantity.parse::<i64>() else {
            return Err(format!(
                "data.items[{}].quantity must be a whole number; got '{quantity}'",
                items.len()
            ));
        };
        items.push(json!({ "lineItemId": id, "quantity": n, "reason": reason }));
    }
    let mut data = json!({
        "externalOrderId": order.id.to_string(),
        "items": items,
    });
    if !values.note.trim().is_empty() {
        data["notes"] = json!(values.note);
    }
    if !values.tracking_number.is_empty() {
        let mut label = json!({ "trackingNumber": values.tracking_number });
        if !values.carrier.is_empty() {
            label["carrier"] = json!(values.carrier);
        }
        data["label"] = label;
    } else if !values.carrier.is_empty() {
        return Err("a carrier needs a tracking number: give the return parcel's number, or leave the carrier blank".to_owned());
    }
    Ok(json!({ "data": data }))
}

/// `POST /ui/orders/{order}/returns`: creates the return as `POST …/returns` does.
pub async fn create(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let (order, units) = match load_order(&signed, &state, path).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let refused = |status: StatusCode, message: String| {
        new_page(
            &signed,
            status,
            &new_body(&order, &units, form_values(&form), Some(message)),
        )
    };
    let body = match create_request(&order, &form) {
        Ok(body) => body,
        Err(message) => return refused(StatusCode::BAD_REQUEST, message),
    };
    let request: CreateReturnRequest = match serde_json::from_value(body) {
        Ok(request) => request,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let (order_ref, mut new) = match request.into_domain() {
        Ok(parsed) => parsed,
        Err(e) => return refused(crate::dialects::common::status_for(&e), e.to_string()),
    };
    crate::carriers::normalize_packages(&mut new.packages);
    match state
        .store
        .create_return(signed.store_id(), &order_ref, new)
        .await
    {
        Ok(created) => redirect(&format!("{}?done=created", return_href(&created.id))),
        Err(StoreError::Domain(DomainError::OrderNotFound(_))) => {
            not_found_page(signed.layout("New return", "returns"))
        }
        Err(StoreError::Domain(e)) => {
            refused(crate::dialects::common::status_for(&e), e.to_string())
        }
        Err(other) => store_error(other, signed.layout("New return", "returns")),
    }
}

/// The form's values as sent, for showing a refused form again.
fn form_values(form: &Form) -> NewValues {
    let quantities: Vec<&str> = form.all("quantity").collect();
    let reasons: Vec<&str> = form.all("reason").collect();
    NewValues {
        lines: form
            .all("line")
            .enumerate()
            .map(|(i, id)| {
                (
                    id.to_owned(),
                    (
                        quantities.get(i).copied().unwrap_or_default().to_owned(),
                        reasons.get(i).copied().unwrap_or_default().to_owned(),
                    ),
                )
            })
            .collect(),
        carrier: trimmed(form, "carrier"),
        tracking_number: trimmed(form, "tracking_number"),
        note: form.get("note").unwrap_or_default().to_owned(),
    }
}

// ---- a return ----

#[derive(Serialize)]
struct LineView {
    id: String,
    title: String,
    sku: Option<String>,
    quantity: u32,
    reason: &'static str,
    note: Option<String>,
}

#[derive(Serialize)]
struct TimelineEntry {
    status: String,
    status_code: String,
    message: Option<String>,
    at: When,
    location: Option<String>,
}

#[derive(Serialize)]
struct ReturnBody {
    id: String,
    order_external_id: String,
    order_href: String,
    status: &'static str,
    status_code: &'static str,
    redo_status: &'static str,
    shipment_status: &'static str,
    created: When,
    updated: When,
    note: Option<String>,
    lines: Vec<LineView>,
    packages: Vec<PackageView>,
    timeline: Vec<TimelineEntry>,
    status_action: String,
    next_statuses: Vec<Choice>,
    message: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

fn return_body(
    r: &Return,
    notice: Option<&'static str>,
    error: Option<String>,
    chosen: &str,
    message: String,
) -> ReturnBody {
    ReturnBody {
        id: r.id.clone(),
        order_external_id: r.order_external_id.clone(),
        order_href: order_href(&r.order_id.to_string()),
        status: status_label(r.status),
        status_code: r.status.as_str(),
        redo_status: redo_status(r.status),
        shipment_status: r.shipment_status.description(),
        created: r.created_at.into(),
        updated: r.updated_at.into(),
        note: r.note.clone(),
        lines: r
            .lines
            .iter()
            .map(|l| LineView {
                id: l.line_item_id.clone(),
                title: l.title.clone(),
                sku: l.sku.clone(),
                quantity: l.quantity,
                reason: reason_label(l.reason),
                note: l.note.clone(),
            })
            .collect(),
        packages: r.packages.iter().map(package_view).collect(),
        timeline: r
            .history
            .iter()
            .map(|h| {
                let status = history_text(&h.status);
                TimelineEntry {
                    message: (h.message.trim() != status && !h.message.trim().is_empty())
                        .then(|| h.message.clone()),
                    status,
                    status_code: h.status.replace('.', "-"),
                    at: h.datetime.into(),
                    location: location_text(h.location.as_ref()),
                }
            })
            .collect(),
        status_action: format!("{}/status", return_href(&r.id)),
        next_statuses: ReturnStatus::ALL
            .into_iter()
            .filter(|s| r.status.can_move_to(*s))
            .map(|s| Choice {
                value: s.as_str(),
                label: status_label(s),
                selected: chosen == s.as_str(),
            })
            .collect(),
        message,
        notice,
        error,
    }
}

fn return_page(signed: &Signed, status: StatusCode, body: &ReturnBody) -> Response {
    let title = format!("Return {}", body.id);
    page(
        status,
        "return.html",
        &signed.layout(title, "returns"),
        body,
    )
}

fn return_id(path: Result<Path<String>, PathRejection>) -> Option<String> {
    path_ids(path, |id| vec![id.as_str()])
}

/// `GET /ui/returns/{return}`.
pub async fn show(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(id) = return_id(path) else {
        return not_found_page(signed.layout("Return", "returns"));
    };
    let found = match state.store.get_return(signed.store_id(), &id).await {
        Ok(found) => found,
        Err(e) => return failed(e, &signed, "Return"),
    };
    let notice = match Form::parse(raw.unwrap_or_default().as_bytes()).get("done") {
        Some("created") => Some("The return was created."),
        Some("status") => Some("The return's status was updated."),
        _ => None,
    };
    return_page(
        &signed,
        StatusCode::OK,
        &return_body(&found, notice, None, "", String::new()),
    )
}

/// `POST /ui/returns/{return}/status`: a lifecycle move with an optional message, as
/// `PUT /v2.2/returns/{returnId}/status` takes it.
pub async fn post_status(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let Some(id) = return_id(path) else {
        return not_found_page(signed.layout("Return", "returns"));
    };
    let store_id = signed.store_id();
    let current = match state.store.get_return(store_id, &id).await {
        Ok(found) => found,
        Err(e) => return failed(e, &signed, "Return"),
    };
    let status = trimmed(&form, "status");
    let message = form.get("message").unwrap_or_default().to_owned();
    let refused = |code: StatusCode, text: String| {
        return_page(
            &signed,
            code,
            &return_body(&current, None, Some(text), &status, message.clone()),
        )
    };
    let mut body = json!({ "status": status });
    if !message.trim().is_empty() {
        body["message"] = json!(message);
    }
    let request: UpdateReturnStatusRequest = match serde_json::from_value(body) {
        Ok(request) => request,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let update = match request.into_domain() {
        Ok(update) => update,
        Err(e) => return refused(crate::dialects::common::status_for(&e), e.to_string()),
    };
    match state
        .store
        .update_return_status(store_id, &id, update)
        .await
    {
        Ok(_) => redirect(&format!("{}?done=status", return_href(&id))),
        Err(StoreError::Domain(DomainError::ReturnNotFound(_))) => {
            not_found_page(signed.layout("Return", "returns"))
        }
        Err(StoreError::Domain(e)) => {
            refused(crate::dialects::common::status_for(&e), e.to_string())
        }
        Err(other) => store_error(other, signed.layout("Return", "returns")),
    }
}

// ---- the list and its export ----

/// The list's filters, from the query string (an unknown status is ignored, as the form never
/// sends one).
#[derive(Debug, Clone, Default, PartialEq)]
struct Filters {
    status: Option<ReturnStatus>,
    q: String,
    after: Option<String>,
}

impl Filters {
    fn parse(form: &Form) -> Filters {
        let text = |name: &str| -> String {
            form.get(name)
                .unwrap_or_default()
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_TEXT_CHARS)
                .collect()
        };
        let after = text("after");
        Filters {
            status: form.get("status").and_then(|s| s.parse().ok()),
            q: text("q"),
            after: (!after.is_empty() && super::pages::plausible_id(&after)).then_some(after),
        }
    }

    fn href(&self, path: &str, after: Option<&str>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = self.status {
            query.append_pair("status", s.as_str());
        }
        if !self.q.is_empty() {
            query.append_pair("q", &self.q);
        }
        if let Some(after) = after {
            query.append_pair("after", after);
        }
        let query = query.finish();
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }
}

/// How the search text selects returns: an order's (when it names one of the store's orders)
/// or those whose parcel has a tracking number containing it (case and spaces aside).
enum Search {
    All,
    Order(OrderRef),
    Tracking(String),
}

fn squeeze(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

async fn search_of(state: &AppState, store_id: &str, q: &str) -> Result<Search, StoreError> {
    if q.is_empty() {
        return Ok(Search::All);
    }
    if super::pages::plausible_id(q) {
        match state.store.get_order(store_id, &OrderRef::new(q)).await {
            Ok(order) => return Ok(Search::Order(OrderRef::new(order.id.to_string()))),
            Err(StoreError::Domain(DomainError::OrderNotFound(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Search::Tracking(squeeze(q)))
}

/// One selection of returns, oldest first.
struct Selection {
    returns: Vec<Return>,
    /// More match after these.
    more: bool,
}

/// Up to `want` returns the filters select, after the cursor; the store filters by order,
/// status and tracking number.
async fn select(
    state: &AppState,
    store_id: &str,
    status: Option<ReturnStatus>,
    search: &Search,
    after: Option<String>,
    want: usize,
) -> Result<Selection, StoreError> {
    let want = want.min(MAX_PAGE_SIZE as usize);
    let (order, tracking) = match search {
        Search::All => (None, None),
        Search::Order(order) => (Some(order.clone()), None),
        Search::Tracking(text) => (None, Some(text.clone())),
    };
    let mut returns = state
        .store
        .list_returns(
            store_id,
            ReturnQuery {
                order,
                status,
                tracking,
                // One more than wanted, to know whether another page follows.
                limit: u32::try_from(want + 1).unwrap_or(MAX_PAGE_SIZE + 1),
                after,
            },
        )
        .await?;
    let more = returns.len() > want;
    returns.truncate(want);
    Ok(Selection { returns, more })
}

#[derive(Serialize)]
struct ListBody {
    q: String,
    statuses: Vec<Choice>,
    filtered: bool,
    returns: Vec<ReturnRow>,
    first_href: Option<String>,
    next_href: Option<String>,
    csv_href: String,
}

/// `GET /ui/returns`: filter by status, search by order id or tracking number, oldest first,
/// paged by a cursor that keeps the filters.
pub async fn list(
    signed: Signed,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Response {
    let filters = Filters::parse(&Form::parse(raw.unwrap_or_default().as_bytes()));
    let store_id = signed.store_id();
    let search = match search_of(&state, store_id, &filters.q).await {
        Ok(search) => search,
        Err(e) => return failed(e, &signed, "Returns"),
    };
    let selection = match select(
        &state,
        store_id,
        filters.status,
        &search,
        filters.after.clone(),
        PAGE_SIZE as usize,
    )
    .await
    {
        Ok(selection) => selection,
        // A cursor that names no return of the store starts over.
        Err(StoreError::Domain(DomainError::ReturnNotFound(_))) => {
            return redirect(&filters.href("/ui/returns", None));
        }
        Err(e) => return failed(e, &signed, "Returns"),
    };
    let body = ListBody {
        q: filters.q.clone(),
        statuses: ReturnStatus::ALL
            .into_iter()
            .map(|s| Choice {
                value: s.as_str(),
                label: status_label(s),
                selected: filters.status == Some(s),
            })
            .collect(),
        filtered: filters.status.is_some() || !filters.q.is_empty(),
        first_href: filters
            .after
            .as_ref()
            .map(|_| filters.href("/ui/returns", None)),
        next_href: selection
            .more
            .then(|| selection.returns.last())
            .flatten()
            .map(|r| filters.href("/ui/returns", Some(&r.id))),
        csv_href: filters.href("/ui/returns.csv", None),
        returns: selection.returns.iter().map(return_row).collect(),
    };
    page(
        StatusCode::OK,
        "returns.html",
        &signed.layout("Returns", "returns"),
        &body,
    )
}

const CSV_HEADER: [&str; 13] = [
    "return_id",
    "order_id",
    "created_at",
    "updated_at",
    "status",
    "shipment_status",
    "line_item_id",
    "sku",
    "quantity",
    "reason",
    "carrier",
    "tracking_number",
    "note",
];

/// One row per return line (a return with several lines spans several rows, its own fields
/// repeated); formula-like cells are defused.
fn csv_records(r: &Return) -> Vec<Vec<String>> {
    let carriers: Vec<&str> = r
        .packages
        .iter()
        .filter_map(|p| p.carrier.as_deref())
        .collect();
    let tracking: Vec<&str> = r
        .packages
        .iter()
        .map(|p| p.tracking_number.as_str())
        .collect();
    r.lines
        .iter()
        .map(|l| {
            [
                r.id.clone(),
                r.order_external_id.clone(),
                time::format(r.created_at),
                time::format(r.updated_at),
                r.status.as_str().to_owned(),
                r.shipment_status.as_str().to_owned(),
                l.line_item_id.clone(),
                l.sku.clone().unwrap_or_default(),
                l.quantity.to_string(),
                l.reason.as_str().to_owned(),
                carriers.join("; "),
                tracking.join("; "),
                l.note
                    .clone()
                    .or_else(|| r.note.clone())
                    .unwrap_or_default(),
            ]
            .iter()
            .map(|c| csv_cell(c))
            .collect()
        })
        .collect()
}

/// `GET /ui/returns.csv`: every return the list's filters select (all pages), one row per
/// returned line.
pub async fn export(
    signed: Signed,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Response {
    let filters = Filters::parse(&Form::parse(raw.unwrap_or_default().as_bytes()));
    let store_id = signed.store_id().to_owned();
    let search = match search_of(&state, &store_id, &filters.q).await {
        Ok(search) => search,
        Err(e) => return failed(e, &signed, "Returns"),
    };
    let header = vec![CSV_HEADER.iter().map(|s| (*s).to_owned()).collect()];
    let mut chunks: Vec<Result<Bytes, std::io::Error>> =
        vec![csv_bytes(header).map_err(std::io::Error::other)];
    let mut after = None;
    let mut written = 0usize;
    loop {
        let selection = match select(
            &state,
            &store_id,
            filters.status,
            &search,
            after.clone(),
            MAX_PAGE_SIZE as usize,
        )
        .await
        {
            Ok(selection) => selection,
            Err(e) => return failed(e, &signed, "Returns"),
        };
        written += selection.returns.len();
        after = selection.returns.last().map(|r| r.id.clone());
        chunks.push(
            csv_bytes(selection.returns.iter().flat_map(csv_records))
                .map_err(std::io::Error::other),
        );
        if !selection.more || after.is_none() || written >= MAX_EXPORT_ROWS {
            break;
        }
    }
    csv_attachment(
        Body::from_stream(futures_util::stream::iter(chunks)),
        "attachment; filename=\"returns.csv\"",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_triggers_read_as_words_and_others_are_left_alone() {
        assert_eq!(
            trigger_text("return.received").as_deref(),
            Some("Return received")
        );
        assert_eq!(
            trigger_text("return.in_transit").as_deref(),
            Some("Return in transit")
        );
        assert_eq!(trigger_text("return.lost"), None);
        assert_eq!(trigger_text("delivered"), None);
    }

    #[test]
    fn filters_round_trip_and_ignore_unknown_statuses() {
        let f = Filters::parse(&Form::parse(b"status=in_transit&q=1Z+999&after=R-1"));
        assert_eq!(f.status, Some(ReturnStatus::InTransit));
        assert_eq!(
            f.href("/ui/returns", Some("R-9")),
            "/ui/returns?status=in_transit&q=1Z+999&after=R-9"
        );
        let odd = Filters::parse(&Form::parse(b"status=lost&q=%00"));
        assert_eq!(odd.status, None);
        assert_eq!(odd.q, "");
        assert_eq!(odd.href("/ui/returns.csv", None), "/ui/returns.csv");
    }

    #[test]
    fn history_reads_well() {
        assert_eq!(
            history_text("return.in_transit"),
            "Return parcel in transit"
        );
        assert_eq!(history_text("delivered"), status_text("delivered"));
        assert_eq!(squeeze(" 1z 99 AB "), "1z99ab");
    }
}
