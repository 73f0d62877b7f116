//! Redo's returns API under `/v2.2`: `GET`/`POST /stores/{storeId}/returns`,
//! `GET /returns/{returnId}`, `GET`/`PUT /returns/{returnId}/status`, with Redo's paths, field
//! names and status vocabulary. A return's store is the secret's: another store's return is not
//! found.
//!
//! Redo's return statuses map onto Waybill's lifecycle: `open` ↔ `requested`, `in_transit` ↔
//! `in_transit`, `delivered` ↔ `received`, `complete` ↔ `closed`, `rejected` ↔ `rejected`.
//! Redo's other statuses (`needs_review`, `in_review`, `flagged`, `pre_shipment`, `deleted`) are
//! refused with 400. Waybill's own lifecycle names are accepted as input too, and every return
//! carries its `lifecycleStatus` (Waybill extension). Reasons are Waybill's fixed vocabulary
//! (`damaged`, `defective`, `wrong_item`, `too_small`, `too_large`, `not_as_described`,
//! `changed_mind`, `other`), the free text goes in `notes`.

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use waybill_core::returns::ReturnFieldNames;
use waybill_core::time::{self, format};
use waybill_core::{
    DomainError, Location, NewReturn, NewReturnLine, OrderRef, Package, Quantity, Return,
    ReturnReason, ReturnStatus, ReturnUpdate, ShipmentStatus,
};
use waybill_store::ReturnQuery;

use super::types::{OrderJson, PackageJson};
use super::{Body, RedoError, RedoPath, RedoStore, page_size};
use crate::AppState;
use crate::auth;
use crate::dialects::common::{self, LocationJson};

const NAMES: ReturnFieldNames<'static> = ReturnFieldNames {
    id: "data.returnId",
    lines: "data.items",
    line_id: "lineItemId",
    note: "data.notes",
};

/// Redo's name of a lifecycle status.
pub fn redo_status(status: ReturnStatus) -> &'static str {
    match status {
        ReturnStatus::Requested => "open",
        ReturnStatus::InTransit => "in_transit",
        ReturnStatus::Received => "delivered",
        ReturnStatus::Closed => "complete",
        ReturnStatus::Rejected => "rejected",
    }
}

/// The lifecycle status a Redo (or Waybill) status name means.
fn parse_status(field: &str, text: &str) -> Result<ReturnStatus, DomainError> {
    let status = match text {
        "open" | "requested" => ReturnStatus::Requested,
        "in_transit" => ReturnStatus::InTransit,
        "delivered" | "received" => ReturnStatus::Received,
        "complete" | "closed" => ReturnStatus::Closed,
        "rejected" => ReturnStatus::Rejected,
        other => {
            return Err(DomainError::invalid(format!(
                "{field} must be one of open, in_transit, delivered, complete, rejected (or \
                 Waybill's requested, received, closed); got '{other}'"
            )));
        }
    };
    Ok(status)
}

fn return_status_schema() -> utoipa::openapi::schema::Object {
    common::enum_schema([
        "open",
        "in_transit",
        "delivered",
        "complete",
        "rejected",
        "requested",
        "received",
        "closed",
    ])
}

fn redo_status_schema() -> utoipa::openapi::schema::Object {
    common::enum_schema(["open", "in_transit", "delivered", "complete", "rejected"])
}

fn lifecycle_schema() -> utoipa::openapi::schema::Object {
    common::enum_schema(ReturnStatus::ALL.iter().map(|s| s.as_str()))
}

fn reason_schema() -> utoipa::openapi::schema::Object {
    common::enum_schema(ReturnReason::ALL.iter().map(|r| r.as_str()))
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Redo's create-return body: the return under `data`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateReturnRequest {
    data: CreateReturnData,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateReturnData {
    /// Waybill extension: the caller's id for the return (a retry with the same id is refused
    /// with 409 instead of creating a second return). Generated when absent.
    #[serde(default)]
    #[schema(schema_with = common::optional_id_schema)]
    return_id: Option<String>,
    /// The order: the caller's order id or Waybill's internal id.
    #[schema(schema_with = common::id_schema)]
    external_order_id: String,
    /// The returned lines; each line once.
    #[schema(min_items = 1)]
    items: Vec<ReturnItemRequest>,
    /// The return parcel's label.
    #[serde(default)]
    label: Option<LabelRequest>,
    #[serde(default)]
    #[schema(schema_with = common::optional_text_schema::<1000>)]
    notes: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReturnItemRequest {
    #[schema(schema_with = common::id_schema)]
    line_item_id: String,
    #[serde(deserialize_with = "common::integer")]
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
    /// One of Waybill's return reasons.
    #[schema(schema_with = reason_schema)]
    reason: String,
    #[serde(default)]
    #[schema(schema_with = common::optional_text_schema::<1000>)]
    notes: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ReturnLabel)]
struct LabelRequest {
    #[schema(schema_with = common::non_blank_schema)]
    tracking_number: String,
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    tracking_url: Option<String>,
}

impl CreateReturnRequest {
    pub(crate) fn into_domain(self) -> Result<(OrderRef, NewReturn), DomainError> {
        let data = self.data;
        let mut lines = Vec::with_capacity(data.items.len());
        for (i, item) in data.items.into_iter().enumerate() {
            let quantity = Quantity::new(&format!("data.items[{i}].quantity"), item.quantity)?;
            let reason: ReturnReason = item.reason.parse().map_err(|e: DomainError| {
                DomainError::invalid(format!("data.items[{i}].reason: {e}"))
            })?;
            lines.push(NewReturnLine {
                line_item_id: item.line_item_id,
                quantity,
                reason,
                note: item.notes.filter(|n| !n.trim().is_empty()),
            });
        }
        let packages = match data.label {
            Some(label) => vec![Package {
                carrier: label.carrier.filter(|c| !c.trim().is_empty()),
                tracking_number: label.tracking_number,
                tracking_url: label.tracking_url.filter(|u| !u.trim().is_empty()),
            }],
            None => Vec::new(),
        };
        waybill_core::order::validate_id("data.externalOrderId", &data.external_order_id)?;
        let new = NewReturn::new(
            data.return_id,
            lines,
            packages,
            data.notes.filter(|n| !n.trim().is_empty()),
            NAMES,
        )?;
        Ok((OrderRef::new(data.external_order_id), new))
    }
}

/// Redo's status update, with Waybill's parcel tracking beside it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateReturnStatusRequest {
    /// The new status (Redo's names, or Waybill's). At least one of `status` and
    /// `shipmentStatus` is required.
    #[serde(default)]
    #[schema(schema_with = return_status_schema)]
    status: Option<String>,
    /// Waybill extension: where the return parcel is. `in_transit` and the other shipped
    /// statuses move an `open` return to `in_transit`; `delivered` moves it to `delivered`.
    #[serde(default)]
    #[schema(schema_with = common::shipment_status_schema)]
    shipment_status: Option<String>,
    /// Waybill extension: the history entry's message.
    #[serde(default)]
    message: Option<String>,
    /// Waybill extension: when it happened (default: now).
    #[serde(default)]
    #[schema(schema_with = common::optional_date_time_schema)]
    datetime: Option<String>,
    /// Waybill extension: where it happened.
    #[serde(default)]
    location: Option<LocationJson>,
}

impl UpdateReturnStatusRequest {
    pub(crate) fn into_domain(self) -> Result<ReturnUpdate, DomainError> {
        let status = self
            .status
            .map(|s| parse_status("status", &s))
            .transpose()?;
        let shipment_status = self
            .shipment_status
            .map(|s| {
                s.parse::<ShipmentStatus>()
                    .map_err(|e| DomainError::invalid(format!("shipmentStatus: {e}")))
            })
            .transpose()?;
        if status.is_none() && shipment_status.is_none() {
            return Err(DomainError::invalid("status or shipmentStatus is required"));
        }
        Ok(ReturnUpdate {
            status,
            shipment_status,
            message: self.message.filter(|m| !m.trim().is_empty()),
            datetime: self
                .datetime
                .map(|d| time::parse_datetime("datetime", &d))
                .transpose()?,
            location: self.location.map(Location::from),
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListReturnsQuery {
    /// Only returns in this status (Redo's names, or Waybill's).
    #[serde(default)]
    #[param(schema_with = return_status_schema)]
    status: Option<String>,
    /// Waybill extension: only the returns of this order (the caller's id or Waybill's).
    #[serde(default)]
    order_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A return in Redo's shape, with Waybill's extensions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReturnJson {
    id: String,
    created_at: String,
    updated_at: String,
    /// Redo's status name.
    #[schema(schema_with = redo_status_schema)]
    status: &'static str,
    /// Waybill extension: the lifecycle status (`requested → in_transit → received → closed`,
    /// or `rejected`).
    #[schema(schema_with = lifecycle_schema)]
    lifecycle_status: &'static str,
    /// Waybill's internal order id.
    order_id: String,
    /// The caller's order id.
    external_order_id: String,
    items: Vec<ReturnItemJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
    /// Waybill extension: the return parcel.
    shipment: ReturnShipmentJson,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReturnItemJson {
    /// The returned line's id.
    id: String,
    order_item: OrderItemRef,
    quantity: u32,
    #[schema(schema_with = reason_schema)]
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_comment: Option<String>,
    /// Waybill extension.
    title: String,
    /// Waybill extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    sku: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct OrderItemRef {
    id: String,
    line_item_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReturnShipmentJson {
    #[schema(schema_with = common::shipment_status_schema)]
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_url: Option<String>,
    packages: Vec<PackageJson>,
    /// Lifecycle changes (`return.<status>`) and the parcel's shipment statuses, oldest first.
    tracking_history: Vec<ReturnHistoryJson>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReturnHistoryJson {
    message: String,
    status: String,
    datetime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<LocationJson>,
}

impl From<&Return> for ReturnJson {
    fn from(r: &Return) -> Self {
        let first = r.packages.first();
        ReturnJson {
            id: r.id.clone(),
            created_at: format(r.created_at),
            updated_at: format(r.updated_at),
            status: redo_status(r.status),
            lifecycle_status: r.status.as_str(),
            order_id: r.order_id.to_string(),
            external_order_id: r.order_external_id.clone(),
            items: r
                .lines
                .iter()
                .map(|l| ReturnItemJson {
                    id: l.line_item_id.clone(),
                    order_item: OrderItemRef {
                        id: l.line_item_id.clone(),
                        line_item_id: l.line_item_id.clone(),
                    },
                    quantity: l.quantity,
                    reason: l.reason.as_str(),
                    customer_comment: l.note.clone(),
                    title: l.title.clone(),
                    sku: l.sku.clone(),
                })
                .collect(),
            notes: r.note.clone(),
            shipment: ReturnShipmentJson {
                status: r.shipment_status.as_str(),
                carrier: first.and_then(|p| p.carrier.clone()),
                tracking_number: first.map(|p| p.tracking_number.clone()),
                tracking_url: first.and_then(|p| p.tracking_url.clone()),
                packages: r.packages.iter().map(PackageJson::from).collect(),
                tracking_history: r
                    .history
                    .iter()
                    .map(|h| ReturnHistoryJson {
                        message: h.message.clone(),
                        status: h.status.clone(),
                        datetime: format(h.datetime),
                        location: h.location.as_ref().map(LocationJson::from),
                    })
                    .collect(),
            },
        }
    }
}

/// One return (`POST …/returns`, `GET /returns/{returnId}`), with its order on a `GET`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReturnResponse {
    #[serde(rename = "return")]
    return_: ReturnJson,
    /// The order, with `returnedQuantity` per line (`GET` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<OrderJson>,
    /// Tracking numbers of the return parcel that look like a carrier's but fail its check
    /// digit (`POST` only): a warning, the return is created with the number as given.
    #[serde(rename = "carrierWarnings", skip_serializing_if = "Vec::is_empty")]
    carrier_warnings: Vec<crate::carriers::CheckDigitWarning>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReturnList {
    returns: Vec<ReturnJson>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReturnStatusJson {
    #[schema(schema_with = redo_status_schema)]
    status: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/// The store of the request's secret (paths without a `{storeId}`: the return is looked up in
/// that store only).
pub struct SecretStore(pub String);

impl FromRequestParts<AppState> for SecretStore {
    type Rejection = RedoError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let store_id = auth::authenticate(state.store.as_ref(), &parts.headers).await?;
        Ok(SecretStore(store_id))
    }
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/returns", tag = "Redo",
    params(("storeId" = String, Path, description = "Store id")), request_body = CreateReturnRequest,
    responses((status = 200, description = "Created, in status `open`", body = ReturnResponse),
        (status = 400, description = "Validation error, an unknown line, or more units than were fulfilled and not yet returned", body = crate::openapi::RedoErrorBody), (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Order not found", body = crate::openapi::RedoErrorBody), (status = 409, description = "Duplicate returnId", body = crate::problem::Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn create_return(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    crate::extract::JsonBody(request, _): Body<CreateReturnRequest>,
) -> Result<Json<ReturnResponse>, RedoError> {
    let (order, mut new) = request.into_domain()?;
    crate::carriers::normalize_packages(&mut new.packages);
    let carrier_warnings = crate::carriers::check_digit_warnings(&new.packages);
    let created = state.store.create_return(&store_id, &order, new).await?;
    Ok(Json(ReturnResponse {
        return_: ReturnJson::from(&created),
        order: None,
        carrier_warnings,
    }))
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/returns", tag = "Redo",
    params(("storeId" = String, Path, description = "Store id"), ListReturnsQuery,
        ("X-Page-Size" = Option<String>, Header, nullable = false, description = "Returns per page, 1 to 500 (default 20)", pattern = "^0*(?:[1-9][0-9]?|[1-4][0-9]{2}|500)$"),
        ("X-Page-Continue" = Option<String>, Header, nullable = false, description = "The X-Page-Next of the previous page")),
    responses((status = 200, description = "The store's returns, oldest first; `X-Page-Next` when more follow", body = ReturnList),
        (status = 400, description = "Invalid filter", body = crate::openapi::RedoErrorBody), (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The orderId filter or X-Page-Continue names nothing in this store", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn list_returns(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    headers: axum::http::HeaderMap,
    query: Result<Query<ListReturnsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, RedoError> {
    let Query(query) =
        query.map_err(|e| RedoError::plain(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = page_size(&headers)?;
    let after = headers
        .get("x-page-continue")
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                RedoError::plain(StatusCode::BAD_REQUEST, "X-Page-Continue must be text")
            })
        })
        .transpose()?;
    let status = query
        .status
        .map(|s| parse_status("status", &s))
        .transpose()?;
    let returns = state
        .store
        .list_returns(
            &store_id,
            ReturnQuery {
                order: query.order_id.map(OrderRef::new),
                status,
                // One more than the page, to know whether another follows.
                limit: limit + 1,
                after,
                ..ReturnQuery::default()
            },
        )
        .await?;
    let more = returns.len() > limit as usize;
    let page: Vec<ReturnJson> = returns
        .iter()
        .take(limit as usize)
        .map(ReturnJson::from)
        .collect();
    let next = page.last().filter(|_| more).map(|r| r.id.clone());
    let mut response = Json(ReturnList { returns: page }).into_response();
    if let Some(next) = next
        && let Ok(value) = axum::http::HeaderValue::from_str(&next)
    {
        response.headers_mut().insert("x-page-next", value);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/v2.2/returns/{returnId}", tag = "Redo",
    params(("returnId" = String, Path, description = "Return id")),
    responses((status = 200, description = "The return and its order (with returnedQuantity per line)", body = ReturnResponse),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 404, description = "No such return in the secret's store", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, return_id = %return_id))]
pub(crate) async fn get_return(
    State(state): State<AppState>,
    SecretStore(store_id): SecretStore,
    RedoPath(return_id): RedoPath<String>,
) -> Result<Json<ReturnResponse>, RedoError> {
    let found = state.store.get_return(&store_id, &return_id).await?;
    let order_ref = OrderRef::new(found.order_id.to_string());
    let order = state.store.get_order(&store_id, &order_ref).await?;
    Ok(Json(ReturnResponse {
        return_: ReturnJson::from(&found),
        order: Some(OrderJson::with_returned(&order)),
        carrier_warnings: Vec::new(),
    }))
}

#[utoipa::path(get, path = "/v2.2/returns/{returnId}/status", tag = "Redo",
    params(("returnId" = String, Path, description = "Return id")),
    responses((status = 200, description = "The return's status", body = ReturnStatusJson),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 404, description = "No such return in the secret's store", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, return_id = %return_id))]
pub(crate) async fn get_return_status(
    State(state): State<AppState>,
    SecretStore(store_id): SecretStore,
    RedoPath(return_id): RedoPath<String>,
) -> Result<Json<ReturnStatusJson>, RedoError> {
    let found = state.store.get_return(&store_id, &return_id).await?;
    Ok(Json(ReturnStatusJson {
        status: redo_status(found.status),
    }))
}

#[utoipa::path(put, path = "/v2.2/returns/{returnId}/status", tag = "Redo",
    params(("returnId" = String, Path, description = "Return id")), request_body = UpdateReturnStatusRequest,
    responses((status = 204, description = "Updated"),
        (status = 400, description = "Validation error", body = crate::openapi::RedoErrorBody), (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 404, description = "No such return in the secret's store", body = crate::openapi::RedoErrorBody),
        (status = 409, description = "The lifecycle does not allow this move (e.g. a complete return cannot be rejected)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, return_id = %return_id))]
pub(crate) async fn update_return_status(
    State(state): State<AppState>,
    SecretStore(store_id): SecretStore,
    RedoPath(return_id): RedoPath<String>,
    crate::extract::JsonBody(request, _): Body<UpdateReturnStatusRequest>,
) -> Result<StatusCode, RedoError> {
    let update = request.into_domain()?;
    state
        .store
        .update_return_status(&store_id, &return_id, update)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
