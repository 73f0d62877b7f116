//! The Redo dialect, under `/v2.2` (seeds 000 and 001, and the order endpoints around them).
//!
//! Errors follow the seeds: 400, 401 and 404 are `{"error": "<sentence>"}`, and every other
//! status (403, 409, 413, 429, 5xx, ...) falls under the seeds' `default` response, RFC 9457
//! problem JSON. A secret used on a path whose store is not its own is answered 403 whether or
//! not that store exists, so a key holder cannot probe for other stores' ids.

pub(crate) mod automations;
pub(crate) mod lifecycle;
pub(crate) mod returns;
pub(crate) mod types;
pub(crate) mod webhooks;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use waybill_core::{DomainError, OrderRef};
use waybill_store::StoreError;

use crate::AppState;
use crate::auth::{self, Access, AuthError};
use crate::extract::{BodyError, JsonBody};
use crate::problem::Problem;
use types::{
    CreateFulfillmentRequest, CreateOrderRequest, CreatedOrder, DeletedOrder, FulfillmentResponse,
    OrderJson, UpdateStatusRequest,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/stores/{store_id}/orders",
            post(create_order).get(lifecycle::list_orders),
        )
        .route(
            "/stores/{store_id}/orders/{order_id}",
            get(get_order).delete(delete_order),
        )
        .route(
            "/stores/{store_id}/orders/{order_id}/fulfillments",
            post(create_fulfillment).get(lifecycle::list_fulfillments),
        )
        .route(
            "/stores/{store_id}/orders/{order_id}/fulfillments/{fulfillment_id}",
            get(lifecycle::get_fulfillment),
        )
        .route(
            "/stores/{store_id}/orders/{order_id}/fulfillments/{fulfillment_id}/cancel",
            post(lifecycle::cancel_fulfillment),
        )
        .route(
            "/stores/{store_id}/orders/{order_id}/fulfillments/{fulfillment_id}/tracking",
            axum::routing::put(lifecycle::update_tracking),
        )
        .route(
            "/stores/{store_id}/settings",
            get(lifecycle::get_settings).put(lifecycle::update_settings),
        )
        .route(
            "/stores/{store_id}/carriers/detect",
            get(lifecycle::detect_carrier),
        )
        .route(
            "/stores/{store_id}/automations",
            get(automations::list_automations).post(automations::create_automation),
        )
        .route(
            "/stores/{store_id}/automations/{automation_id}",
            get(automations::get_automation)
                .put(automations::update_automation)
                .delete(automations::delete_automation),
        )
        .route(
            "/stores/{store_id}/automations/{automation_id}/runs",
            get(automations::list_runs),
        )
        .route(
            "/stores/{store_id}/orders/{order_id}/fulfillments/{fulfillment_id}/shipment-status",
            post(update_shipment_status),
        )
        .route(
            "/stores/{store_id}/returns",
            get(returns::list_returns).post(returns::create_return),
        )
        .route("/returns/{return_id}", get(returns::get_return))
        .route(
            "/returns/{return_id}/status",
            get(returns::get_return_status).put(returns::update_return_status),
        )
        .route(
            "/stores/{store_id}/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/stores/{store_id}/webhooks/{webhook_id}",
            get(webhooks::get_webhook)
                .put(webhooks::update_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route(
            "/stores/{store_id}/webhooks/{webhook_id}/replay",
            post(webhooks::replay_webhook),
        )
        .route(
            "/stores/{store_id}/webhooks/{webhook_id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/stores/{store_id}/webhooks/{webhook_id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route(
            "/stores/{store_id}/webhooks/{webhook_id}/events",
            get(webhooks::list_events),
        )
        .route(
            "/stores/{store_id}/webhooks/{webhook_id}/deliveries/{event_id}/redeliver",
            post(webhooks::redeliver),
        )
}

/// A Redo error response.
#[derive(Debug)]
pub enum RedoError {
    /// A status and a sentence: `{"error": message}` for the statuses the seeds list (400, 401,
    /// 404), problem JSON for the rest.
    Plain(StatusCode, String),
    /// Problem JSON.
    Problem(Problem),
}

/// The statuses for which the seeds document `{"error": ...}`; the rest are `default`.
fn has_error_body(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND
    )
}

impl RedoError {
    pub(crate) fn plain(status: StatusCode, message: impl Into<String>) -> Self {
        RedoError::Plain(status, message.into())
    }

    /// The status and the sentence of this error, for the dashboard to show.
    pub(crate) fn into_parts(self) -> (StatusCode, String) {
        match self {
            RedoError::Plain(status, message) => (status, message),
            RedoError::Problem(problem) => (
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST),
                problem.detail,
            ),
        }
    }

    fn internal() -> Self {
        RedoError::plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "an internal error occurred; it has been logged",
        )
    }

    fn unavailable() -> Self {
        RedoError::plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is temporarily unavailable; retry shortly",
        )
    }
}

impl IntoResponse for RedoError {
    fn into_response(self) -> Response {
        match self {
            RedoError::Plain(status, message) if has_error_body(status) => {
                (status, Json(json!({ "error": message }))).into_response()
            }
            RedoError::Plain(status, message) => Problem::new(status, message).into_response(),
            RedoError::Problem(problem) => problem.into_response(),
        }
    }
}

impl From<BodyError> for RedoError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => RedoError::plain(StatusCode::PAYLOAD_TOO_LARGE, e.message()),
            BodyError::Malformed(m) => RedoError::plain(StatusCode::BAD_REQUEST, m),
        }
    }
}

impl From<DomainError> for RedoError {
    fn from(e: DomainError) -> Self {
        let status = crate::dialects::common::status_for(&e);
        RedoError::plain(status, e.to_string())
    }
}

impl From<StoreError> for RedoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                RedoError::unavailable()
            }
            StoreError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                RedoError::internal()
            }
        }
    }
}

impl From<AuthError> for RedoError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(inner) => inner.into(),
            other => RedoError::plain(StatusCode::UNAUTHORIZED, other.message()),
        }
    }
}

/// The store a request acts for: authenticated by its bearer secret and allowed on the
/// `{store_id}` of its path.
pub struct RedoStore(pub String);

impl FromRequestParts<AppState> for RedoStore {
    type Rejection = RedoError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let authenticated = auth::authenticate(state.store.as_ref(), &parts.headers).await?;
        let Path(params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|e| RedoError::plain(StatusCode::BAD_REQUEST, e.body_text()))?;
        let requested = params.get("store_id").cloned().unwrap_or_default();
        match auth::check_store_access(&authenticated, &requested) {
            Access::Allowed => Ok(RedoStore(authenticated)),
            // The same answer for another store and for no store: a key holder learns nothing
            // about which store ids exist.
            Access::Forbidden => Err(RedoError::Problem(Problem::new(
                StatusCode::FORBIDDEN,
                "this API secret does not belong to the store in the path",
            ))),
        }
    }
}

type Body<T> = JsonBody<T, RedoError>;

/// Items per page when `X-Page-Size` is not sent.
const DEFAULT_PAGE: u32 = 20;

/// `X-Page-Size`: 1 to [`waybill_store::MAX_PAGE_SIZE`], 20 when absent. The document states
/// it as the string pattern `^0*(?:[1-9][0-9]?|[1-4][0-9]{2}|500)$` (a header is text, and an
/// integer-typed header cannot be validated as sent).
fn page_size(headers: &axum::http::HeaderMap) -> Result<u32, RedoError> {
    match headers.get("x-page-size") {
        None => Ok(DEFAULT_PAGE),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|n| (1..=waybill_store::MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                RedoError::plain(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "X-Page-Size must be a whole number from 1 to {}",
                        waybill_store::MAX_PAGE_SIZE
                    ),
                )
            }),
    }
}

/// Path parameters, with failures answered in Redo's format.
#[derive(FromRequestParts)]
#[from_request(via(Path), rejection(RedoError))]
pub(crate) struct RedoPath<T>(T);

impl From<axum::extract::rejection::PathRejection> for RedoError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        RedoError::plain(StatusCode::BAD_REQUEST, e.body_text())
    }
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/orders", tag = "Redo",
    params(("storeId" = String, Path, description = "Store id")), request_body = types::CreateOrderRequest,
    responses((status = 200, description = "Created", body = types::CreatedOrder),
        (status = 400, description = "Validation error", body = crate::openapi::RedoErrorBody), (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"), (status = 409, description = "Duplicate orderId", body = crate::problem::Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn create_order(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    JsonBody(request, _): Body<CreateOrderRequest>,
) -> Result<Json<CreatedOrder>, RedoError> {
    let order = request.into_domain()?;
    let created = state.store.create_order(&store_id, order).await?;
    Ok(Json(CreatedOrder {
        order_id: created.id.to_string(),
        external_order_id: created.external_id,
    }))
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/orders/{orderId}", tag = "Redo",
    params(("storeId" = String, Path, description = "Store id"), ("orderId" = String, Path, description = "The caller's order id or Waybill's internal id")),
    responses((status = 200, description = "The order with its fulfillments", body = types::OrderJson),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Order not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, order_id = %order_id))]
pub(crate) async fn get_order(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, order_id)): RedoPath<(String, String)>,
) -> Result<Json<OrderJson>, RedoError> {
    let order_ref = OrderRef::new(order_id);
    let order = state.store.get_order(&store_id, &order_ref).await?;
    Ok(Json(OrderJson::with_returned(&order)))
}

#[utoipa::path(delete, path = "/v2.2/stores/{storeId}/orders/{orderId}", tag = "Redo",
    params(("storeId" = String, Path, description = "Store id"), ("orderId" = String, Path, description = "The caller's order id or Waybill's internal id")),
    responses((status = 200, description = "Deleted", body = types::DeletedOrder),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Order not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, order_id = %order_id))]
pub(crate) async fn delete_order(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, order_id)): RedoPath<(String, String)>,
) -> Result<Json<DeletedOrder>, RedoError> {
    let deleted = state
        .store
        .delete_order(&store_id, &OrderRef::new(order_id))
        .await?;
    Ok(Json(DeletedOrder {
        success: true,
        order_id: deleted.id.to_string(),
        external_order_id: deleted.external_id,
    }))
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/orders/{orderId}/fulfillments", tag = "Redo",
    params(("storeId" = String, Path, description = "Store id"), ("orderId" = String, Path, description = "The caller's order id or Waybill's internal id")), request_body = types::CreateFulfillmentRequest,
    responses((status = 200, description = "Success", body = types::FulfillmentResponse),
        (status = 400, description = "Validation error, including over-fulfillment", body = crate::openapi::RedoErrorBody), (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Order not found", body = crate::openapi::RedoErrorBody), (status = 409, description = "Duplicate fulfillmentId", body = crate::problem::Problem, content_type = "application/problem+json"), (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, order_id = %order_id))]
pub(crate) async fn create_fulfillment(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, order_id)): RedoPath<(String, String)>,
    JsonBody(request, _): Body<CreateFulfillmentRequest>,
) -> Result<Json<FulfillmentResponse>, RedoError> {
    let fulfillment = request.into_domain()?;
    let created = state
        .store
        .create_fulfillment(
            &store_id,
            &OrderRef::new(order_id),
            crate::carriers::normalize(fulfillment),
        )
        .await?;
    Ok(Json(FulfillmentResponse::new(&created)))
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/orders/{orderId}/fulfillments/{fulfillmentId}/shipment-status", tag = "Redo",
    params(("storeId" = String, Path, description = "Store id"), ("orderId" = String, Path, description = "The caller's order id or Waybill's internal id"), ("fulfillmentId" = String, Path, description = "Fulfillment id")),
    request_body = types::UpdateStatusRequest,
    responses((status = 200, description = "Success", body = types::FulfillmentResponse),
        (status = 400, description = "Validation error", body = crate::openapi::RedoErrorBody), (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Fulfillment not found", body = crate::openapi::RedoErrorBody), (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(
    skip_all,
    fields(store_id = %store_id, order_id = %order_id, fulfillment_id = %fulfillment_id)
)]
pub(crate) async fn update_shipment_status(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, order_id, fulfillment_id)): RedoPath<(String, String, String)>,
    JsonBody(request, _): Body<UpdateStatusRequest>,
) -> Result<Json<FulfillmentResponse>, RedoError> {
    let update = request.into_domain()?;
    let updated = state
        .store
        .update_shipment_status(&store_id, &OrderRef::new(order_id), &fulfillment_id, update)
        .await?;
    Ok(Json(FulfillmentResponse::new(&updated)))
}
