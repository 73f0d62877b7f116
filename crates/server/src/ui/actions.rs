//! The fulfillment page's actions: cancel (through a confirmation page), post a status or an
//! event, and replace the tracking (every parcel).
//!
//! Each goes through the same validation and the same store command as the Redo API: a status
//! through `UpdateStatusRequest::into_domain` and `Store::update_shipment_status` (cancelling is
//! `StatusUpdate::cancel()`, which returns the fulfillment's units to the ledger), tracking
//! through `lifecycle::check_packages` (carrier detection included) and `Store::update_tracking`.
//! A refused form shows the fulfillment page again with the reason beside the form and the
//! values kept, and changes nothing. The order is looked up in the signed-in store only, so
//! another store's order or fulfillment is not found (404).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use waybill_core::{
    DomainError, ExceptionReason, Fulfillment, Order, OrderRef, ShipmentEvent, ShipmentStatus,
    StatusUpdate,
};
use waybill_store::StoreError;

use super::Posted;
use super::pages::{FulfillmentBody, fulfillment_body, path_ids};
use super::render::{error_page, page, segment};
use super::{Form, Signed, not_found_page, redirect, store_error};
use crate::AppState;
use crate::dialects::redo::lifecycle::{MAX_PACKAGES, check_packages};
use crate::dialects::redo::types::UpdateStatusRequest;

/// Blank parcel rows offered below the existing ones.
const BLANK_PARCELS: usize = 2;

fn fulfillment_href(order_id: &str, fulfillment_id: &str) -> String {
    format!(
        "/ui/orders/{}/fulfillments/{}",
        segment(order_id),
        segment(fulfillment_id)
    )
}

/// A choice of the status form.
#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// What the status form carried.
#[derive(Serialize, Default)]
pub(super) struct StatusValues {
    status: String,
    message: String,
    datetime: String,
    eta: String,
    reason: String,
}

/// A parcel row of the tracking form.
#[derive(Serialize, Default, Clone)]
pub(super) struct ParcelValues {
    carrier: String,
    tracking_number: String,
    tracking_url: String,
    /// "Looks like a UPS number, but its check digit is wrong": shown beside the row, never a
    /// refusal (the number may still be right).
    warning: Option<String>,
}

/// The actions block of the fulfillment page (`fulfillment_actions.html`).
#[derive(Serialize, Default)]
pub(super) struct ActionsView {
    status_href: String,
    tracking_href: String,
    cancel_href: String,
    /// Whether cancelling is offered (not once delivered or cancelled).
    cancellable: bool,
    notice: Option<&'static str>,
    /// The refused form (`status` or `tracking`) and why.
    error_form: &'static str,
    error: Option<String>,
    statuses: Vec<Choice>,
    events: Vec<Choice>,
    /// The exception reasons (for failure, return_to_sender and delayed).
    reasons: Vec<Choice>,
    values: StatusValues,
    parcels: Vec<ParcelValues>,
    max_parcels: usize,
}

/// The notice for `?done=` after an action.
pub(super) fn notice(done: Option<&str>) -> Option<&'static str> {
    match done {
        Some("cancelled") => {
            Some("The fulfillment was cancelled; its items are back on the order to fulfil.")
        }
        Some("status") => Some("The status was posted."),
        Some("tracking") => Some("The tracking was saved."),
        _ => None,
    }
}

/// A parcel's tracking URL if it is its own: one that carrier detection built is left out of
/// the form, so that changing the number builds a new one instead of keeping a stale URL.
fn own_url(p: &waybill_core::Package) -> Option<String> {
    let built = waybill_carriers::normalize_package(&waybill_core::Package {
        tracking_url: None,
        ..p.clone()
    })
    .package
    .tracking_url;
    p.tracking_url
        .clone()
        .filter(|url| Some(url) != built.as_ref())
}

fn view(
    order: &Order,
    f: &Fulfillment,
    notice: Option<&'static str>,
    values: Option<StatusValues>,
    parcels: Option<Vec<ParcelValues>>,
) -> ActionsView {
    let href = fulfillment_href(&order.id.to_string(), &f.id);
    let values = values.unwrap_or_default();
    let mut parcels = parcels.unwrap_or_else(|| {
        f.packages
            .iter()
            .map(|p| ParcelValues {
                carrier: p.carrier.clone().unwrap_or_default(),
                tracking_number: p.tracking_number.clone(),
                tracking_url: own_url(p).unwrap_or_default(),
                warning: None,
            })
            .collect()
    });
    for parcel in &mut parcels {
        parcel.warning =
            crate::carriers::check_digit_warning(&parcel.tracking_number).map(|w| w.message);
    }
    let blanks = BLANK_PARCELS.min(MAX_PACKAGES.saturating_sub(parcels.len()));
    parcels.extend(std::iter::repeat_n(ParcelValues::default(), blanks));
    ActionsView {
        status_href: format!("{href}/status"),
        tracking_href: format!("{href}/tracking"),
        cancel_href: format!("{href}/cancel"),
        cancellable: !matches!(
            f.status,
            ShipmentStatus::Delivered | ShipmentStatus::Cancelled
        ),
        notice,
        error_form: "",
        error: None,
        statuses: ShipmentStatus::ALL
            .into_iter()
            .filter(|s| *s != ShipmentStatus::Unknown)
            .map(|s| Choice {
                value: s.as_str(),
                label: s.description(),
                selected: values.status == s.as_str(),
            })
            .collect(),
        events: ShipmentEvent::ALL
            .into_iter()
            .map(|e| Choice {
                value: e.as_str(),
                label: e.description(),
                selected: values.status == e.as_str(),
            })
            .collect(),
        reasons: ExceptionReason::ALL
            .into_iter()
            .map(|r| Choice {
                value: r.as_str(),
                label: r.label(),
                selected: values.reason == r.as_str(),
            })
            .collect(),
        values,
        parcels,
        max_parcels: MAX_PACKAGES,
    }
}

#[derive(Serialize)]
struct WithActions {
    #[serde(flatten)]
    base: FulfillmentBody,
    actions: ActionsView,
}

/// The fulfillment page with its actions block.
pub(super) fn fulfillment_page(
    signed: &Signed,
    status: StatusCode,
    order: &Order,
    f: &Fulfillment,
    actions: ActionsView,
) -> Response {
    let title = format!("Fulfillment {} of order {}", f.id, order.external_id);
    page(
        status,
        "fulfillment.html",
        &signed.layout(title, "orders"),
        &WithActions {
            base: fulfillment_body(order, f),
            actions,
        },
    )
}

/// The page as first shown (after `?done=` of an action, with its notice).
pub(super) fn shown(
    signed: &Signed,
    order: &Order,
    f: &Fulfillment,
    done: Option<&str>,
) -> Response {
    fulfillment_page(
        signed,
        StatusCode::OK,
        order,
        f,
        view(order, f, notice(done), None, None),
    )
}

/// The signed-in store's order and the path's fulfillment id; `Err` is the 404 (or failure)
/// page.
async fn load(
    signed: &Signed,
    state: &AppState,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(Order, String), Response> {
    let layout = || signed.layout("Fulfillment", "orders");
    let Some((order_ref, fulfillment_id)) = path_ids(path, |(o, f)| vec![o.as_str(), f.as_str()])
    else {
        return Err(not_found_page(layout()));
    };
    let order = state
        .store
        .get_order(signed.store_id(), &OrderRef::new(order_ref))
        .await
        .map_err(|e| store_error(e, layout()))?;
    if !order.fulfillments.iter().any(|f| f.id == fulfillment_id) {
        return Err(not_found_page(layout()));
    }
    Ok((order, fulfillment_id))
}

fn find<'a>(order: &'a Order, fulfillment_id: &str) -> Option<&'a Fulfillment> {
    order.fulfillments.iter().find(|f| f.id == fulfillment_id)
}

/// What a refused command becomes.
enum Refusal {
    /// A sentence to show beside the form, with its status.
    Shown(StatusCode, String),
    /// A page of its own (not found, store failure).
    Page(Response),
}

fn refusal(e: StoreError, signed: &Signed) -> Refusal {
    match e {
        StoreError::Domain(
            e @ (DomainError::OrderNotFound(_)
            | DomainError::FulfillmentNotFound(_)
            | DomainError::StoreNotFound(_)),
        ) => {
            tracing::info!(error = %e, "dashboard action: not found");
            Refusal::Page(not_found_page(signed.layout("Fulfillment", "orders")))
        }
        StoreError::Domain(e) => {
            Refusal::Shown(crate::dialects::common::status_for(&e), e.to_string())
        }
        other => Refusal::Page(store_error(other, signed.layout("Fulfillment", "orders"))),
    }
}

/// What a refused form carried, shown again.
enum Kept {
    Nothing,
    Status(StatusValues),
    Parcels(Vec<ParcelValues>),
}

/// Shows the page again with `message` beside `form`, nothing changed.
fn refused(
    signed: &Signed,
    order: &Order,
    fulfillment_id: &str,
    status: StatusCode,
    form: &'static str,
    message: String,
    kept: Kept,
) -> Response {
    let Some(f) = find(order, fulfillment_id) else {
        return not_found_page(signed.layout("Fulfillment", "orders"));
    };
    let (values, parcels) = match kept {
        Kept::Nothing => (None, None),
        Kept::Status(values) => (Some(values), None),
        Kept::Parcels(parcels) => (None, Some(parcels)),
    };
    let mut actions = view(order, f, None, values, parcels);
    actions.error_form = form;
    actions.error = Some(message);
    fulfillment_page(signed, status, order, f, actions)
}

/// A `datetime-local` value (`2024-03-21T08:00`, no zone) is read as UTC; anything else goes
/// to the API's parser as it is (RFC 3339).
fn datetime_text(value: &str) -> String {
    let value = value.trim();
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if chrono::NaiveDateTime::parse_from_str(value, format).is_ok() {
            let seconds = if value.len() == 16 { ":00" } else { "" };
            return format!("{value}{seconds}Z");
        }
    }
    value.to_owned()
}

fn optional(form: &Form, name: &str) -> Option<String> {
    form.get(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `POST …/fulfillments/{id}/status`: a status or an event, with optional message, time,
/// estimated delivery date and exception reason, exactly as `POST …/shipment-status` takes them.
pub async fn post_status(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let (order, fulfillment_id) = match load(&signed, &state, path).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let values = StatusValues {
        status: form.get("status").unwrap_or_default().trim().to_owned(),
        message: form.get("message").unwrap_or_default().to_owned(),
        datetime: form.get("datetime").unwrap_or_default().trim().to_owned(),
        eta: form.get("eta").unwrap_or_default().trim().to_owned(),
        reason: form.get("reason").unwrap_or_default().trim().to_owned(),
    };
    let request = UpdateStatusRequest::from_form(
        values.status.clone(),
        optional(&form, "eta"),
        form.get("message").map(str::to_owned),
        optional(&form, "datetime").map(|d| datetime_text(&d)),
        optional(&form, "reason"),
    );
    let update = match request.into_domain() {
        Ok(update) => update,
        Err(e) => {
            let status = crate::dialects::common::status_for(&e);
            return refused(
                &signed,
                &order,
                &fulfillment_id,
                status,
                "status",
                e.to_string(),
                Kept::Status(values),
            );
        }
    };
    apply(
        &signed,
        &state,
        &order,
        &fulfillment_id,
        update,
        "status",
        Kept::Status(values),
    )
    .await
}

/// Runs a status update; on success back to the page with `?done=`.
async fn apply(
    signed: &Signed,
    state: &AppState,
    order: &Order,
    fulfillment_id: &str,
    update: StatusUpdate,
    done: &'static str,
    kept: Kept,
) -> Response {
    let result = state
        .store
        .update_shipment_status(
            signed.store_id(),
            &OrderRef::new(order.id.to_string()),
            fulfillment_id,
            update,
        )
        .await;
    match result {
        Ok(_) => redirect(&format!(
            "{}?done={done}",
            fulfillment_href(&order.id.to_string(), fulfillment_id)
        )),
        Err(e) => match refusal(e, signed) {
            Refusal::Shown(status, message) => refused(
                signed,
                order,
                fulfillment_id,
                status,
                if done == "cancelled" {
                    "cancel"
                } else {
                    "status"
                },
                message,
                kept,
            ),
            Refusal::Page(response) => response,
        },
    }
}

/// `POST …/fulfillments/{id}/tracking`: replaces the parcels with the form's rows (a row left
/// wholly blank is skipped), as `PUT …/tracking` does.
pub async fn post_tracking(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let (order, fulfillment_id) = match load(&signed, &state, path).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let carriers: Vec<&str> = form.all("carrier").collect();
    let numbers: Vec<&str> = form.all("tracking_number").collect();
    let urls: Vec<&str> = form.all("tracking_url").collect();
    let rows = carriers.len().max(numbers.len()).max(urls.len());
    let parcels: Vec<ParcelValues> = (0..rows)
        .map(|i| ParcelValues {
            carrier: carriers.get(i).copied().unwrap_or_default().to_owned(),
            tracking_number: numbers.get(i).copied().unwrap_or_default().to_owned(),
            tracking_url: urls.get(i).copied().unwrap_or_default().to_owned(),
            warning: None,
        })
        .filter(|p| {
            !(p.carrier.trim().is_empty()
                && p.tracking_number.trim().is_empty()
                && p.tracking_url.trim().is_empty())
        })
        .collect();
    let checked = check_packages(
        parcels
            .clone()
            .into_iter()
            .map(|p| (Some(p.carrier), p.tracking_number, Some(p.tracking_url))),
    );
    let packages = match checked {
        Ok(packages) => packages,
        Err(message) => {
            return refused(
                &signed,
                &order,
                &fulfillment_id,
                StatusCode::BAD_REQUEST,
                "tracking",
                message,
                Kept::Parcels(parcels),
            );
        }
    };
    let result = state
        .store
        .update_tracking(
            signed.store_id(),
            &OrderRef::new(order.id.to_string()),
            &fulfillment_id,
            packages,
        )
        .await;
    match result {
        Ok(_) => redirect(&format!(
            "{}?done=tracking",
            fulfillment_href(&order.id.to_string(), &fulfillment_id)
        )),
        Err(e) => match refusal(e, &signed) {
            Refusal::Shown(status, message) => refused(
                &signed,
                &order,
                &fulfillment_id,
                status,
                "tracking",
                message,
                Kept::Parcels(parcels),
            ),
            Refusal::Page(response) => response,
        },
    }
}

#[derive(Serialize)]
struct CancelBody {
    fulfillment_href: String,
    order_href: String,
    order_external_id: String,
    id: String,
    status: &'static str,
    /// Units that go back to the order.
    units: u64,
    cancel_href: String,
}

/// `GET …/fulfillments/{id}/cancel`: the confirmation step.
pub async fn confirm_cancel(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let (order, fulfillment_id) = match load(&signed, &state, path).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(f) = find(&order, &fulfillment_id) else {
        return not_found_page(signed.layout("Fulfillment", "orders"));
    };
    let href = fulfillment_href(&order.id.to_string(), &f.id);
    let body = CancelBody {
        order_href: super::pages::order_href(&order.id.to_string()),
        order_external_id: order.external_id.clone(),
        id: f.id.clone(),
        status: f.status.description(),
        units: f.lines.iter().map(|l| u64::from(l.quantity)).sum(),
        cancel_href: format!("{href}/cancel"),
        fulfillment_href: href,
    };
    page(
        StatusCode::OK,
        "fulfillment_cancel.html",
        &signed.layout("Cancel fulfillment", "orders"),
        &body,
    )
}

/// `POST …/fulfillments/{id}/cancel` (with `confirm=yes`): status `cancelled`, its units back
/// in the ledger, as `POST …/cancel` does.
pub async fn cancel(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let (order, fulfillment_id) = match load(&signed, &state, path).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if form.get("confirm") != Some("yes") {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Confirm the cancellation on the confirmation page.",
            &signed.layout("Cancel fulfillment", "orders"),
        );
    }
    apply(
        &signed,
        &state,
        &order,
        &fulfillment_id,
        StatusUpdate::cancel(),
        "cancelled",
        Kept::Nothing,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_datetimes_are_read_as_utc() {
        assert_eq!(datetime_text("2024-03-21T08:00"), "2024-03-21T08:00:00Z");
        assert_eq!(datetime_text("2024-03-21T08:00:30"), "2024-03-21T08:00:30Z");
        assert_eq!(
            datetime_text("2024-03-21T08:00:00+02:00"),
            "2024-03-21T08:00:00+02:00"
        );
        assert_eq!(datetime_text("soon"), "soon");
    }

    #[test]
    fn notices_name_the_action() {
        assert!(notice(Some("cancelled")).is_some_and(|n| n.contains("cancelled")));
        assert!(notice(Some("tracking")).is_some());
        assert!(notice(Some("other")).is_none());
        assert!(notice(None).is_none());
    }
}
