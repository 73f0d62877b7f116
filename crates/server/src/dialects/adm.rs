//! The ADM Order Connector dialect, under `/adm` (seed 002).
//!
//! Orders are addressed by their integer id (Waybill's external id), lines by SKU, and each
//! fulfillment carries one tracking number. Errors are `{"error": <title>, "message": <sentence>}`
//! with the vendor's titles.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use waybill_core::ledger::{KeyAllocationError, allocate_by_key};
use waybill_core::{DomainError, NewFulfillment, OrderRef, Package, ShipmentStatus};
use waybill_store::StoreError;

use crate::AppState;
use crate::auth::{AuthError, Caller};
use crate::extract::{BodyError, JsonBody};

pub fn routes() -> Router<AppState> {
    Router::new().route("/fulfillments/create", post(create_fulfillment))
}

/// An ADM error: a vendor title and a sentence.
#[derive(Debug)]
pub struct AdmError {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl AdmError {
    pub(crate) fn new(status: StatusCode, title: &'static str, message: String) -> Self {
        AdmError {
            status,
            title,
            message,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        AdmError {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid SKU or Quantity",
            message: message.into(),
        }
    }

    fn server_error() -> Self {
        AdmError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Server Error",
            message: "An error occurred on our server. Please try again later.".into(),
        }
    }
}

impl IntoResponse for AdmError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.title, "message": self.message })),
        )
            .into_response()
    }
}

impl From<BodyError> for AdmError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => AdmError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                title: "Payload Too Large",
                message: e.message(),
            },
            BodyError::Malformed(m) => AdmError::invalid(m),
        }
    }
}

impl From<StoreError> for AdmError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(DomainError::OrderNotFound(_)) => AdmError {
                status: StatusCode::NOT_FOUND,
                title: "Order Not Found",
                message: "The order with the specified ID was not found.".into(),
            },
            StoreError::Domain(d @ DomainError::OverFulfillment { .. }) => AdmError {
                status: StatusCode::CONFLICT,
                title: "Item Already Fulfilled",
                message: format!("The specified item was already fulfilled: {d}."),
            },
            StoreError::Domain(d) => AdmError::invalid(d.to_string()),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                AdmError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    title: "Service Unavailable",
                    message: "The service is temporarily unavailable. Please try again shortly."
                        .into(),
                }
            }
            StoreError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                AdmError::server_error()
            }
        }
    }
}

impl From<AuthError> for AdmError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(inner) => inner.into(),
            AuthError::Missing | AuthError::Invalid => AdmError {
                status: StatusCode::UNAUTHORIZED,
                title: "Unauthorized Request",
                message: "The key provided is invalid.".into(),
            },
        }
    }
}

/// A SKU as ADM documents it: an integer in the field list, a string in the example.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sku(String);

impl utoipa::PartialSchema for Sku {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::dialects::common::string_or_integer_schema()
    }
}

impl utoipa::ToSchema for Sku {}

impl<'de> Deserialize<'de> for Sku {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Sku(s)),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Sku(n.to_string())),
            other => Err(de::Error::invalid_type(
                de::Unexpected::Other(&other.to_string()),
                &"a SKU (string or integer)",
            )),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct CreateRequest {
    order_id: i64,
    line_items: Vec<LineRequest>,
    tracking_number: String,
}

impl CreateRequest {
    /// Checks what can be checked without the order: a tracking number, at least one line,
    /// quantities in range. Returns the units wanted per SKU and the parcel.
    pub(crate) fn validate(&self) -> Result<(Vec<(String, u32)>, Package), AdmError> {
        if self.tracking_number.trim().is_empty() {
            return Err(AdmError::invalid("tracking_number must not be empty."));
        }
        if self.line_items.is_empty() {
            return Err(AdmError::invalid(
                "line_items must contain at least one item.",
            ));
        }
        let mut wanted = Vec::with_capacity(self.line_items.len());
        for (i, line) in self.line_items.iter().enumerate() {
            if !(1..=i64::from(waybill_core::Quantity::MAX)).contains(&line.quantity) {
                return Err(AdmError::invalid(format!(
                    "line_items[{i}].quantity must be between 1 and {}.",
                    waybill_core::Quantity::MAX
                )));
            }
            wanted.push((line.sku.0.clone(), line.quantity as u32));
        }
        let package = Package {
            carrier: None,
            tracking_number: self.tracking_number.trim().to_owned(),
            tracking_url: None,
        };
        Ok((wanted, package))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct LineRequest {
    sku: Sku,
    quantity: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedResponse {
    id: String,
    order_id: i64,
    status: &'static str,
    tracking_number: String,
    created_at: String,
    line_items: Vec<CreatedLine>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedLine {
    sku: Option<String>,
    quantity: u32,
}

#[utoipa::path(post, path = "/adm/fulfillments/create", tag = "ADM",
    request_body = CreateRequest,
    responses((status = 200, description = "The fulfillment was created", body = CreatedResponse),
        (status = 400, description = "Invalid SKU or Quantity", body = crate::openapi::AdmErrorBody), (status = 401, description = "Unauthorized Request", body = crate::openapi::AdmErrorBody), (status = 404, description = "Order Not Found", body = crate::openapi::AdmErrorBody),
        (status = 409, description = "Item Already Fulfilled", body = crate::openapi::AdmErrorBody), (status = 500, description = "Server Error", body = crate::openapi::AdmErrorBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn create_fulfillment(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<AdmError>,
    JsonBody(request, _): JsonBody<CreateRequest, AdmError>,
) -> Result<Json<CreatedResponse>, AdmError> {
    let (wanted, package) = request.validate()?;
    let order_ref = OrderRef::new(request.order_id.to_string());
    let order = state.store.get_order(&store_id, &order_ref).await?;
    let lines = allocate_by_key(
        order
            .line_items
            .iter()
            .map(|l| (l.id.as_str(), l.sku.as_deref(), l.remaining())),
        &wanted,
    )
    .map_err(|e| match e {
        KeyAllocationError::UnknownKey { key } => {
            AdmError::invalid(format!("SKU '{key}' is not on order {}.", request.order_id))
        }
        KeyAllocationError::TooMany {
            key,
            fulfillable,
            requested,
        } => AdmError {
            status: StatusCode::CONFLICT,
            title: "Item Already Fulfilled",
            message: format!(
                "The specified item was already fulfilled: SKU '{key}' has {fulfillable} unit(s) left; {requested} requested."
            ),
        },
        KeyAllocationError::Invalid(d) => AdmError::invalid(d.to_string()),
    })?;
    let fulfillment = NewFulfillment::new(None, lines, vec![package], ShipmentStatus::PreTransit)
        .map_err(|e| AdmError::invalid(e.to_string()))?;
    let created = state
        .store
        .create_fulfillment(
            &store_id,
            &order_ref,
            crate::carriers::normalize(fulfillment),
        )
        .await?;

    // Several order lines may share a SKU; report units per SKU as requested.
    let mut per_sku: Vec<CreatedLine> = Vec::new();
    for l in &created.lines {
        match per_sku.iter_mut().find(|c| c.sku == l.sku) {
            Some(c) => c.quantity += l.quantity,
            None => per_sku.push(CreatedLine {
                sku: l.sku.clone(),
                quantity: l.quantity,
            }),
        }
    }
    Ok(Json(CreatedResponse {
        id: created.id.clone(),
        order_id: request.order_id,
        status: "created",
        tracking_number: package_number(&created),
        created_at: created
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        line_items: per_sku,
    }))
}

fn package_number(f: &waybill_core::Fulfillment) -> String {
    f.first_package()
        .map(|p| p.tracking_number.clone())
        .unwrap_or_default()
}
