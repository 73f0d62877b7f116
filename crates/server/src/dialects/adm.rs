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
use crate::dialects::common;
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

    /// A 400 about a line item: an unknown SKU, a quantity out of range or over what is left.
    fn invalid_line(message: impl Into<String>) -> Self {
        AdmError {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid SKU or Quantity",
            message: message.into(),
        }
    }

    /// A 400 about anything else in the request (its JSON, the order id, the tracking number).
    fn invalid(message: impl Into<String>) -> Self {
        AdmError {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid Request",
            message: message.into(),
        }
    }

    fn order_not_found() -> Self {
        AdmError {
            status: StatusCode::NOT_FOUND,
            title: "Order Not Found",
            message: "The order with the specified ID was not found.".into(),
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
            BodyError::Malformed(m) if names_a_line_field(&m) => AdmError::invalid_line(m),
            BodyError::Malformed(m) => AdmError::invalid(m),
        }
    }
}

/// Whether a parser message is about a line's `sku` or `quantity` (its path comes first, as
/// `line_items[0].quantity` or `line_items_by_fulfillment_order[0].line_items[1].sku`).
fn names_a_line_field(message: &str) -> bool {
    let path = message.split([':', ' ']).next().unwrap_or_default();
    path.contains("line_items[") && (path.ends_with(".sku") || path.ends_with(".quantity"))
}

impl From<StoreError> for AdmError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(DomainError::OrderNotFound(_)) => AdmError::order_not_found(),
            StoreError::Domain(
                d @ (DomainError::OverFulfillment { .. } | DomainError::UnknownLineItem { .. }),
            ) => AdmError::invalid_line(d.to_string()),
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

/// Largest integer SKU: 9 × 10^15, within the integers a JSON number carries exactly.
const MAX_INTEGER_SKU: i64 = 9_000_000_000_000_000;

impl<'de> Deserialize<'de> for Sku {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expected = "a SKU (a string, or an integer of at most 9 × 10^15)";
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Sku(s)),
            // `12.0` is the integer 12 in JSON Schema's eyes.
            serde_json::Value::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_INTEGER_SKU as f64)
                        .map(|f| f as i64)
                })
                .filter(|i| i.unsigned_abs() <= MAX_INTEGER_SKU.unsigned_abs())
                .map(|i| Sku(i.to_string()))
                .ok_or_else(|| {
                    de::Error::invalid_value(de::Unexpected::Other(&n.to_string()), &expected)
                }),
            other => Err(de::Error::invalid_type(
                de::Unexpected::Other(&other.to_string()),
                &expected,
            )),
        }
    }
}

/// The body of `fulfillments/create` in either of the seed's forms: flat, as its example
/// (`order_id` and `line_items`), or grouped, as its parameter list
/// (`line_items_by_fulfillment_order: [{order_id, line_items}]`). Leaving `line_items` out
/// (or `null`) fulfills every unit the order has left.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateRequest {
    #[serde(default, deserialize_with = "common::optional_integer")]
    order_id: Option<i64>,
    #[serde(default)]
    line_items: Option<Vec<LineRequest>>,
    #[serde(default)]
    line_items_by_fulfillment_order: Option<Vec<FulfillmentOrderLines>>,
    #[serde(default)]
    tracking_number: Option<String>,
}

/// The two forms as JSON Schema, one branch each, so that a body is valid exactly when the
/// handler can read it: the flat form has `order_id` and no groups, the grouped form groups
/// and no top-level `order_id` or `line_items` (`null` counts as left out, as the handler
/// reads it). `tracking_number` is required in both.
impl utoipa::PartialSchema for CreateRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let lines = serde_json::json!({
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "required": ["sku", "quantity"],
                "properties": {
                    "sku": {"type": ["string", "integer"], "minimum": -MAX_INTEGER_SKU, "maximum": MAX_INTEGER_SKU, "description": "The line's SKU"},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": waybill_core::Quantity::MAX}
                }
            }
        });
        let tracking = serde_json::json!({
            "type": "string", "minLength": 1, "maxLength": waybill_core::order::MAX_ID_LEN,
            "pattern": common::text_pattern(),
            "description": "The parcel's tracking number"
        });
        let absent = serde_json::json!({"type": "null"});
        let schema = serde_json::json!({
            "description": "Either form of the seed: flat (`order_id`, `line_items`) or grouped (`line_items_by_fulfillment_order`). Without `line_items`, every unit the order has left is fulfilled.",
            "oneOf": [
                {
                    "title": "Flat",
                    "type": "object", "required": ["order_id", "tracking_number"],
                    "properties": {
                        "order_id": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX, "description": "The ID of the order you are fulfilling"},
                        "line_items": {"oneOf": [lines, absent]},
                        "line_items_by_fulfillment_order": absent,
                        "tracking_number": tracking
                    }
                },
                {
                    "title": "Grouped",
                    "type": "object", "required": ["line_items_by_fulfillment_order", "tracking_number"],
                    "properties": {
                        "line_items_by_fulfillment_order": {
                            "type": "array", "minItems": 1,
                            "description": "One entry per fulfillment order; every entry names the same order",
                            "items": {
                                "type": "object", "required": ["order_id"],
                                "properties": {
                                    "order_id": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
                                    "line_items": {"oneOf": [lines, absent]}
                                }
                            }
                        },
                        "order_id": absent,
                        "line_items": absent,
                        "tracking_number": tracking
                    }
                }
            ]
        });
        serde_json::from_value(schema).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the ADM request schema does not parse");
            utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::default())
        })
    }
}

impl utoipa::ToSchema for CreateRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "AdmCreateRequest".into()
    }
}

/// One entry of `line_items_by_fulfillment_order`.
#[derive(Debug, Deserialize)]
pub(crate) struct FulfillmentOrderLines {
    #[serde(deserialize_with = "common::integer")]
    order_id: i64,
    #[serde(default)]
    line_items: Option<Vec<LineRequest>>,
}

/// A request checked without the order.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub order_id: i64,
    /// An entry of the grouped form that names another order than the first (its index and
    /// order): refused once the first order is known to exist.
    pub other_order: Option<(usize, i64)>,
    /// Units wanted per SKU, in the order sent; `None`: every unit the order has left.
    pub wanted: Option<Vec<(String, u32)>>,
    pub package: Package,
}

impl CreateRequest {
    /// Checks what can be checked without the order: which order, a tracking number, lines
    /// with quantities in range.
    pub(crate) fn validate(self) -> Result<Checked, AdmError> {
        let number = match self.tracking_number.as_deref() {
            None => {
                return Err(AdmError::invalid(
                    "tracking_number is required: the parcel's tracking number, as a string.",
                ));
            }
            Some(n) if n.trim().is_empty() => {
                return Err(AdmError::invalid("tracking_number must not be blank."));
            }
            Some(n) => {
                waybill_core::order::validate_id("tracking_number", n)
                    .map_err(|e| AdmError::invalid(format!("{e}.")))?;
                n.trim().to_owned()
            }
        };
        let mut other_order = None;
        let (order_id, lines) = match (self.order_id, self.line_items_by_fulfillment_order) {
            (Some(_), Some(_)) => {
                return Err(AdmError::invalid(
                    "send either order_id (with line_items) or line_items_by_fulfillment_order, \
                     not both.",
                ));
            }
            (None, None) => {
                return Err(AdmError::invalid(
                    "order_id is required (or line_items_by_fulfillment_order): the ID of the \
                     order you are fulfilling, as an integer.",
                ));
            }
            (Some(order_id), None) => (order_id, self.line_items.map(|l| ("line_items", l))),
            (None, Some(groups)) => {
                if self.line_items.is_some() {
                    return Err(AdmError::invalid(
                        "line_items belongs inside each entry of line_items_by_fulfillment_order \
                         when that form is used.",
                    ));
                }
                let (order_id, other, lines) = grouped_lines(groups)?;
                other_order = other;
                (order_id, lines)
            }
        };
        let wanted = match lines {
            None => None,
            Some((field, lines)) => Some(wanted_units(field, &lines)?),
        };
        Ok(Checked {
            order_id,
            other_order,
            wanted,
            package: Package {
                carrier: None,
                tracking_number: number,
                tracking_url: None,
            },
        })
    }
}

/// Lines as sent, with the field they came in (for messages).
type SentLines = (&'static str, Vec<LineRequest>);

/// The grouped form read: the first entry's order, the first entry naming another order (its
/// index and order), and the lines (`None`: everything left).
type Grouped = (i64, Option<(usize, i64)>, Option<SentLines>);

/// The order and lines of the grouped form, and the first entry (if any) naming another order
/// than the first: every entry must name the same order (a fulfillment belongs to one order).
/// Entries without `line_items` fulfill everything left.
fn grouped_lines(groups: Vec<FulfillmentOrderLines>) -> Result<Grouped, AdmError> {
    let Some(first) = groups.first().map(|g| g.order_id) else {
        return Err(AdmError::invalid(
            "line_items_by_fulfillment_order must contain at least one entry.",
        ));
    };
    let other = groups
        .iter()
        .enumerate()
        .find(|(_, g)| g.order_id != first)
        .map(|(i, g)| (i, g.order_id));
    if groups.iter().any(|g| g.line_items.is_none()) {
        return Ok((first, other, None));
    }
    let lines = groups
        .into_iter()
        .flat_map(|g| g.line_items.unwrap_or_default())
        .collect();
    Ok((
        first,
        other,
        Some(("line_items_by_fulfillment_order[].line_items", lines)),
    ))
}

fn wanted_units(field: &str, lines: &[LineRequest]) -> Result<Vec<(String, u32)>, AdmError> {
    if lines.is_empty() {
        return Err(AdmError::invalid_line(format!(
            "{field} must contain at least one item; leave it out to fulfill every remaining unit."
        )));
    }
    let mut wanted = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if !(1..=i64::from(waybill_core::Quantity::MAX)).contains(&line.quantity) {
            return Err(AdmError::invalid_line(format!(
                "{field}[{i}].quantity must be between 1 and {}; got {}.",
                waybill_core::Quantity::MAX,
                line.quantity
            )));
        }
        wanted.push((line.sku.0.clone(), line.quantity as u32));
    }
    Ok(wanted)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LineRequest {
    sku: Sku,
    #[serde(deserialize_with = "common::integer")]
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
        (status = 400, description = "Invalid SKU or Quantity (an unknown SKU, a quantity out of range or over what is left), or Invalid Request", body = crate::openapi::AdmErrorBody),
        (status = 401, description = "Unauthorized Request", body = crate::openapi::AdmErrorBody),
        (status = 404, description = "Order Not Found", body = crate::openapi::AdmErrorBody),
        (status = 413, description = "Payload Too Large: a body over 1,048,576 bytes", body = crate::openapi::AdmErrorBody),
        (status = 500, description = "Server Error", body = crate::openapi::AdmErrorBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
pub(crate) async fn create_fulfillment(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<AdmError>,
    JsonBody(request, _): JsonBody<CreateRequest, AdmError>,
) -> Result<Json<CreatedResponse>, AdmError> {
    let Checked {
        order_id,
        other_order,
        wanted,
        package,
    } = request.validate()?;
    let order_ref = OrderRef::new(order_id.to_string());
    let order = state.store.get_order(&store_id, &order_ref).await?;
    if let Some((i, other)) = other_order {
        return Err(AdmError::invalid(format!(
            "line_items_by_fulfillment_order[{i}].order_id is {other}, but entry 0 names order \
             {order_id}: one fulfillment belongs to one order; send one request per order."
        )));
    }
    let lines = match wanted {
        Some(wanted) => allocate_by_key(
            order
                .line_items
                .iter()
                .map(|l| (l.id.as_str(), l.sku.as_deref(), l.remaining())),
            &wanted,
        )
        .map_err(|e| match e {
            KeyAllocationError::UnknownKey { key } => {
                AdmError::invalid_line(format!("SKU '{key}' is not on order {order_id}."))
            }
            KeyAllocationError::TooMany {
                key,
                fulfillable,
                requested,
            } => AdmError::invalid_line(format!(
                "SKU '{key}' has {fulfillable} unit(s) left to fulfill on order {order_id}; \
                 {requested} requested."
            )),
            KeyAllocationError::Invalid(d) => AdmError::invalid_line(d.to_string()),
        })?,
        None => everything_left(&order)?,
    };
    let fulfillment = NewFulfillment::new(None, lines, vec![package], ShipmentStatus::PreTransit)
        .map_err(|e| AdmError::invalid(e.to_string()))?;
    let created = state
        .store
        .create_fulfillment(
            &store_id,
            &order_ref,
            crate::carriers::normalize(fulfillment),
        )
        .await
        .map_err(|e| match e {
            // Another request took the units between the read and this write: name the SKU.
            StoreError::Domain(DomainError::OverFulfillment {
                line_item_id,
                requested,
                remaining,
            }) => {
                let sku = order
                    .line_items
                    .iter()
                    .find(|l| l.id == line_item_id)
                    .and_then(|l| l.sku.clone())
                    .unwrap_or(line_item_id);
                AdmError::invalid_line(format!(
                    "SKU '{sku}' has {remaining} unit(s) left to fulfill on order {order_id}; \
                     {requested} requested."
                ))
            }
            other => other.into(),
        })?;

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
        order_id,
        status: "created",
        tracking_number: package_number(&created),
        created_at: created
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        line_items: per_sku,
    }))
}

/// Every unit the order has left, line by line: what a request without `line_items` fulfills.
fn everything_left(
    order: &waybill_core::Order,
) -> Result<Vec<(String, waybill_core::Quantity)>, AdmError> {
    let mut lines = Vec::new();
    for line in &order.line_items {
        let left = line.remaining();
        if left > 0 {
            let quantity = waybill_core::Quantity::new("quantity", i64::from(left))
                .map_err(|e| AdmError::invalid_line(e.to_string()))?;
            lines.push((line.id.clone(), quantity));
        }
    }
    if lines.is_empty() {
        return Err(AdmError::invalid_line(format!(
            "order {} has no units left to fulfill.",
            order.external_id
        )));
    }
    Ok(lines)
}

fn package_number(f: &waybill_core::Fulfillment) -> String {
    f.first_package()
        .map(|p| p.tracking_number.clone())
        .unwrap_or_default()
}
