//! The OrderProtection dialect, under `/v1` (seed 004).
//!
//! Orders are addressed by `sourceOrderId` (Waybill's external id), lines by `sourceItemId`
//! (the line id). Statuses are OrderProtection's 19 values, matched case-insensitively and kept
//! as sent. Errors are always `{"status": "error", "message": "<sentence>"}`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use waybill_core::fulfillment::InitialTracking;
use waybill_core::order::LineItemExtra;
use waybill_core::{
    Address, Customer, DomainError, FieldNames, Fulfillment, NewFulfillment, NewLineItem, NewOrder,
    Order, OrderDetails, OrderRef, Package, Quantity, ShipmentEvent, ShipmentStatus, Shipping,
    StatusOrEvent, StatusUpdate, time,
};
use waybill_store::{OrderQuery, OrderUpdate, StoreError};

use crate::AppState;
use crate::auth::{AuthError, Caller};
use crate::dialects::common::{self, Amount, money};
use crate::dialects::schema::{case_insensitive_pattern, json_integer_schema};
use crate::extract::{BodyError, JsonBody};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create_order).get(list_orders))
        .route(
            "/orders/{source_order_id}",
            get(get_order).put(update_order),
        )
        .route(
            "/orders/{source_order_id}/fulfillments",
            post(create_fulfillment).get(list_fulfillments),
        )
        .route(
            "/orders/{source_order_id}/fulfillments/{source_fulfillment_id}",
            put(update_fulfillment_status),
        )
}

/// The 19 OrderProtection fulfillment statuses and what each means to the core.
const STATUSES: [(&str, StatusOrEvent); 19] = {
    use ShipmentStatus as S;
    use StatusOrEvent::{Event, Status};
    [
        ("UNFULFILLED", Status(S::PreTransit)),
        ("PARTIALLY_FULFILLED", Status(S::PreTransit)),
        ("AWAITING_SHIPMENT", Status(S::PreTransit)),
        ("SCHEDULED", Status(S::PreTransit)),
        ("ON_HOLD", Status(S::PreTransit)),
        ("CONFIRMED", Status(S::PreTransit)),
        ("LABEL_PRINTED", Status(S::PreTransit)),
        ("LABEL_PURCHASED", Status(S::PreTransit)),
        ("FULFILLED", Status(S::PreTransit)),
        ("CARRIER_PICKED_UP", Status(S::InTransit)),
        ("IN_TRANSIT", Status(S::InTransit)),
        ("ATTEMPTED_DELIVERY", Status(S::InTransit)),
        ("OUT_FOR_DELIVERY", Status(S::OutForDelivery)),
        ("READY_FOR_PICKUP", Status(S::AvailableForPickup)),
        ("PICKED_UP", Status(S::Delivered)),
        ("DELIVERED", Status(S::Delivered)),
        ("FAILURE", Status(S::Failure)),
        ("NOT_DELIVERED", Status(S::Failure)),
        ("DELAYED", Event(ShipmentEvent::Delayed)),
    ]
};

/// Parses a status case-insensitively; returns its canonical name and core meaning.
fn parse_status(field: &str, raw: &str) -> Result<(&'static str, StatusOrEvent), OpError> {
    STATUSES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(raw.trim()))
        .map(|(name, meaning)| (*name, *meaning))
        .ok_or_else(|| {
            OpError::bad_request(format!(
                "{field} '{raw}' is not a fulfillment status; expected one of {}",
                STATUSES.map(|s| s.0).join(", ")
            ))
        })
}

/// A status as [`parse_status`] takes it: one of the 19 names in any letter case, with
/// surrounding white space.
fn status_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(case_insensitive_pattern(STATUSES.iter().map(|s| s.0))))
        .description(Some(format!(
            "One of {}, in any letter case; kept as sent.",
            STATUSES.map(|s| s.0).join(", ")
        )))
        .build()
}

/// The status to show for a fulfillment: the one the caller sent, or the closest name for a
/// status set through another dialect.
fn status_label(f: &Fulfillment) -> String {
    if let Some(label) = &f.status_label {
        return label.clone();
    }
    match f.status {
        ShipmentStatus::PreTransit | ShipmentStatus::Unknown => "FULFILLED",
        ShipmentStatus::InTransit => "IN_TRANSIT",
        ShipmentStatus::OutForDelivery => "OUT_FOR_DELIVERY",
        ShipmentStatus::AvailableForPickup => "READY_FOR_PICKUP",
        ShipmentStatus::Delivered => "DELIVERED",
        ShipmentStatus::ReturnToSender | ShipmentStatus::Error => "FAILURE",
        ShipmentStatus::Failure => "NOT_DELIVERED",
        ShipmentStatus::Cancelled => "UNFULFILLED",
    }
    .to_owned()
}

/// `{"status": "error", "message": ...}` with a status code.
#[derive(Debug)]
pub struct OpError(StatusCode, String);

impl OpError {
    pub(crate) fn new(status: StatusCode, message: String) -> Self {
        OpError(status, message)
    }

    fn bad_request(message: impl Into<String>) -> Self {
        OpError(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for OpError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({ "status": "error", "message": self.1 })),
        )
            .into_response()
    }
}

impl From<BodyError> for OpError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => OpError(StatusCode::PAYLOAD_TOO_LARGE, e.message()),
            BodyError::Malformed(m) => OpError::bad_request(m),
        }
    }
}

impl From<DomainError> for OpError {
    fn from(e: DomainError) -> Self {
        let status = crate::dialects::common::status_for(&e);
        OpError(status, e.to_string())
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                OpError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the service is temporarily unavailable; retry shortly".into(),
                )
            }
            StoreError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                OpError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "an internal error occurred; it has been logged".into(),
                )
            }
        }
    }
}

impl From<AuthError> for OpError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(inner) => inner.into(),
            other => OpError(StatusCode::UNAUTHORIZED, other.message().to_owned()),
        }
    }
}

fn ok(status: StatusCode) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "status": "ok" })))
}

// ---- orders ----------------------------------------------------------------------------------

/// An id OrderProtection may send as a string or a number.
#[derive(Debug, Clone)]
pub(crate) struct SourceId(String);

/// A caller-chosen id sent as a string or an integer: a string is checked as
/// [`waybill_core::order::validate_id`] checks it; an integer always passes.
fn source_id_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::Schema::OneOf(
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(common::id_schema())
            .item(json_integer_schema())
            .build(),
    )
}

/// A product or variant id: any string or integer, or `null`.
fn optional_any_id_schema() -> utoipa::openapi::schema::Schema {
    common::or_null(utoipa::openapi::schema::Schema::OneOf(
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String),
            )
            .item(json_integer_schema())
            .build(),
    ))
}

impl<'de> Deserialize<'de> for SourceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match &value {
            Value::String(s) => return Ok(SourceId(s.clone())),
            Value::Number(n) => {
                if let Some(id) = integer_text(n) {
                    return Ok(SourceId(id));
                }
            }
            _ => {}
        }
        Err(serde::de::Error::invalid_type(
            serde::de::Unexpected::Other(&value.to_string()),
            &"an id (string or integer)",
        ))
    }
}

/// The digits of a JSON integer in the range of `i64` or `u64` (what [`json_integer_schema`]
/// states), including one written with a zero fraction (`8.0`), as JSON Schema counts it.
/// Integers outside the range arrive as floats rounded to the range's ends (-2^63, 2^64), so
/// whole floats are taken strictly between them.
fn integer_text(n: &serde_json::Number) -> Option<String> {
    const MIN: f64 = -9_223_372_036_854_775_808.0;
    const MAX: f64 = 18_446_744_073_709_551_616.0;
    if n.is_i64() || n.is_u64() {
        return Some(n.to_string());
    }
    let f = n.as_f64()?;
    if f.fract() != 0.0 || f <= MIN || f >= MAX {
        None
    } else if f < 0.0 {
        Some((f as i64).to_string())
    } else {
        Some((f as u64).to_string())
    }
}

const PLATFORMS: [&str; 5] = ["shopify", "woocommerce", "magento", "bigcommerce", "api"];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderRequest {
    #[schema(schema_with = source_id_schema)]
    source_order_id: SourceId,
    #[serde(default)]
    source_order_number: Option<String>,
    #[serde(default)]
    #[schema(schema_with = common::optional_date_time_schema)]
    source_created_at: Option<String>,
    #[serde(default)]
    #[schema(schema_with = common::optional_date_time_schema)]
    source_updated_at: Option<String>,
    #[serde(default)]
    #[schema(schema_with = platform_schema)]
    platform_id: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    total: Option<Amount>,
    #[serde(default)]
    subtotal: Option<Amount>,
    #[serde(default)]
    tax: Option<Amount>,
    #[serde(default)]
    shipping_cost: Option<Amount>,
    #[serde(default)]
    discount_total: Option<Amount>,
    #[serde(default)]
    customer_email: Option<String>,
    #[serde(default)]
    customer_name: Option<String>,
    #[serde(default)]
    customer_phone: Option<String>,
    #[serde(default)]
    address: Option<AddressRequest>,
    /// Comma-separated.
    #[serde(default)]
    tags: Option<String>,
    #[serde(default)]
    #[schema(schema_with = order_items_schema, required = true)]
    order_items: Vec<ItemRequest>,
    #[serde(default)]
    #[schema(schema_with = order_fulfillments_schema)]
    fulfillments: Vec<FulfillmentRequest>,
}

/// `orderItems`: at least one line, no two alike. (Lines must also differ in `sourceItemId`,
/// which JSON Schema cannot state: `uniqueItems` compares whole items.)
fn order_items_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(<ItemRequest as utoipa::PartialSchema>::schema())
        .min_items(Some(1))
        .unique_items(true)
        .description(Some(
            "At least one line; no two lines may have the same sourceItemId.",
        ))
        .build()
}

/// `fulfillments` of a new order. Each line they name must be one of `orderItems`, and together
/// they may not take more units of a line than it has: relations between values JSON Schema
/// cannot state.
fn order_fulfillments_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::RefOr::T(fulfillment_schema()))
        .description(Some(
            "Fulfillments created with the order: each line they name must be one of \
             orderItems, and together they may not take more units of a line than it has.",
        ))
        .build()
}

/// `platformId`: one of [`PLATFORMS`], or `null`.
fn platform_schema() -> utoipa::openapi::schema::Schema {
    common::or_null(common::enum_schema(PLATFORMS))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddressRequest {
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    address1: Option<String>,
    #[serde(default)]
    address2: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    zip: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemRequest {
    #[schema(schema_with = source_id_schema)]
    source_item_id: SourceId,
    #[serde(default)]
    #[schema(schema_with = optional_any_id_schema)]
    source_product_id: Option<SourceId>,
    #[serde(default)]
    #[schema(schema_with = optional_any_id_schema)]
    source_variant_id: Option<SourceId>,
    #[serde(default)]
    product_name: Option<String>,
    #[serde(default)]
    sku: Option<String>,
    #[serde(deserialize_with = "common::integer")]
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
    #[serde(default)]
    price: Option<Amount>,
}

/// An order request translated for the core, before the create/update distinction.
pub(crate) struct ParsedOrder {
    external_id: String,
    created_at: Option<waybill_core::Timestamp>,
    lines: Vec<NewLineItem>,
    details: OrderDetails,
    fulfillments: Vec<FulfillmentRequest>,
}

impl OrderRequest {
    pub(crate) fn into_domain(self) -> Result<(NewOrder, Vec<FulfillmentRequest>), OpError> {
        let parsed = self.parse()?;
        let order = NewOrder::new_named(
            FieldNames {
                order_id: "sourceOrderId",
                fulfillment_id: "sourceFulfillmentId",
                lines: "orderItems",
                line_id: "sourceItemId",
            },
            parsed.external_id,
            parsed.created_at.unwrap_or_else(time::now),
            parsed.lines,
            parsed.details,
        )?;
        Ok((order, parsed.fulfillments))
    }

    fn parse(self) -> Result<ParsedOrder, OpError> {
        let created_at = self
            .source_created_at
            .as_deref()
            .map(|t| time::parse_datetime("sourceCreatedAt", t))
            .transpose()?;
        let mut extra = Map::new();
        if let Some(p) = &self.platform_id {
            if !PLATFORMS.contains(&p.as_str()) {
                return Err(OpError::bad_request(format!(
                    "platformId must be one of {}; got '{p}'",
                    PLATFORMS.join(", ")
                )));
            }
            extra.insert("platformId".into(), json!(p));
        }
        if let Some(n) = self.source_order_number {
            extra.insert("sourceOrderNumber".into(), json!(n));
        }
        if let Some(t) = &self.source_updated_at {
            time::parse_datetime("sourceUpdatedAt", t)?;
            extra.insert("sourceUpdatedAt".into(), json!(t));
        }
        let mut lines = Vec::with_capacity(self.order_items.len());
        for (i, item) in self.order_items.into_iter().enumerate() {
            lines.push(NewLineItem {
                quantity: Quantity::new(&format!("orderItems[{i}].quantity"), item.quantity)?,
                price: money(&format!("orderItems[{i}].price"), item.price)?,
                id: item.source_item_id.0,
                product_id: item.source_product_id.map(|p| p.0),
                variant_id: item.source_variant_id.map(|v| v.0),
                sku: item.sku,
                title: item.product_name.unwrap_or_default(),
                extra: LineItemExtra::default(),
            });
        }
        let customer = (self.customer_email.is_some()
            || self.customer_name.is_some()
            || self.customer_phone.is_some())
        .then(|| Customer {
            email: self.customer_email,
            name: self.customer_name,
            phone: self.customer_phone,
            ..Customer::default()
        });
        let address = self.address.map(|a| Address {
            first_name: a.first_name,
            last_name: a.last_name,
            address1: a.address1,
            address2: a.address2,
            city: a.city,
            province: a.state,
            country: a.country,
            postal_code: a.zip,
        });
        let details = OrderDetails {
            customer,
            shipping: Some(Shipping {
                method: None,
                cost: money("shippingCost", self.shipping_cost)?,
                address,
            })
            .filter(|s| s.cost.is_some() || s.address.is_some()),
            billing_address: None,
            total_price: money("total", self.total)?,
            subtotal_price: money("subtotal", self.subtotal)?,
            total_tax: money("tax", self.tax)?,
            total_discount: money("discountTotal", self.discount_total)?,
            tags: self
                .tags
                .map(|t| {
                    t.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            currency_code: self.currency,
            location_id: None,
            extra,
        };
        Ok(ParsedOrder {
            external_id: self.source_order_id.0,
            created_at,
            lines,
            details,
            fulfillments: self.fulfillments,
        })
    }
}

fn order_json(o: &Order) -> Value {
    let d = &o.details;
    let amount = |m: Option<waybill_core::Money>| m.map(|m| m.to_f64());
    let customer = d.customer.clone().unwrap_or_default();
    let address = d.shipping.as_ref().and_then(|s| s.address.clone());
    json!({
        "id": o.id.to_string(),
        "sourceOrderId": o.external_id,
        "sourceOrderNumber": d.extra.get("sourceOrderNumber"),
        "sourceCreatedAt": time::format(o.created_at),
        "sourceUpdatedAt": d.extra.get("sourceUpdatedAt"),
        "platformId": d.extra.get("platformId"),
        "currency": d.currency_code,
        "total": amount(d.total_price),
        "subtotal": amount(d.subtotal_price),
        "tax": amount(d.total_tax),
        "shippingCost": amount(d.shipping.as_ref().and_then(|s| s.cost)),
        "discountTotal": amount(d.total_discount),
        "customerEmail": customer.email,
        "customerName": customer.name,
        "customerPhone": customer.phone,
        "address": address.map(|a| json!({
            "firstName": a.first_name, "lastName": a.last_name, "address1": a.address1,
            "address2": a.address2, "city": a.city, "state": a.province, "zip": a.postal_code,
            "country": a.country,
        })),
        "tags": d.tags.join(","),
        "orderItems": o.line_items.iter().map(|l| json!({
            "sourceItemId": l.id,
            "sourceProductId": l.product_id,
            "sourceVariantId": l.variant_id,
            "productName": l.title,
            "sku": l.sku,
            "quantity": l.quantity,
            "fulfilledQuantity": l.fulfilled,
            "price": amount(l.price),
        })).collect::<Vec<_>>(),
        "fulfillments": o.fulfillments.iter().map(|f| fulfillment_json(&o.external_id, f)).collect::<Vec<_>>(),
        "createdAt": time::format(o.created_at),
        "updatedAt": time::format(o.updated_at),
    })
}

#[utoipa::path(post, path = "/v1/orders", tag = "OrderProtection", request_body = OrderRequest,
    responses((status = 201, description = "Created", body = crate::openapi::StatusBody), (status = 400, description = "Validation error", body = crate::openapi::StatusBody), (status = 401, description = "Unauthorized", body = crate::openapi::StatusBody), (status = 409, description = "Duplicate sourceOrderId", body = crate::openapi::StatusBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn create_order(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<OpError>,
    JsonBody(request, _): JsonBody<OrderRequest, OpError>,
) -> Result<(StatusCode, Json<Value>), OpError> {
    let (order, fulfillments) = request.into_domain()?;
    // Fulfillments sent with the order are checked against it before anything is written, so a
    // refused request changes nothing.
    let mut planned = Vec::with_capacity(fulfillments.len());
    let mut used: Vec<(String, u32)> = Vec::new();
    for (i, f) in fulfillments.into_iter().enumerate() {
        let new = f.into_domain(&format!("fulfillments[{i}]."))?;
        for (line, q) in &new.lines {
            let ordered = order
                .line_items
                .iter()
                .find(|l| &l.id == line)
                .map(|l| l.quantity.get())
                .ok_or_else(|| DomainError::UnknownLineItem {
                    line_item_id: line.clone(),
                })?;
            let so_far = match used.iter_mut().find(|(l, _)| l == line) {
                Some((_, n)) => {
                    *n += q.get();
                    *n
                }
                None => {
                    used.push((line.clone(), q.get()));
                    q.get()
                }
            };
            if so_far > ordered {
                return Err(DomainError::OverFulfillment {
                    line_item_id: line.clone(),
                    requested: so_far,
                    remaining: ordered,
                }
                .into());
            }
        }
        planned.push(new);
    }
    let created = state.store.create_order(&store_id, order).await?;
    let order_ref = OrderRef::new(created.external_id.clone());
    for f in planned {
        state
            .store
            .create_fulfillment(&store_id, &order_ref, crate::carriers::normalize(f))
            .await?;
    }
    Ok(ok(StatusCode::CREATED))
}

#[utoipa::path(get, path = "/v1/orders/{sourceOrderId}", tag = "OrderProtection", params(("sourceOrderId" = String, Path, description = "The caller's order id")),
    responses((status = 200, description = "The order with its items and fulfillments", body = Object),
        (status = 401, description = "Unauthorized", body = crate::openapi::StatusBody), (status = 404, description = "Order not found", body = crate::openapi::StatusBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn get_order(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<OpError>,
    Path(source_order_id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let order = state
        .store
        .get_order(&store_id, &OrderRef::new(source_order_id))
        .await?;
    Ok(Json(order_json(&order)))
}

/// The body of `PUT /orders/{sourceOrderId}`: [`OrderRequest`]'s fields, where `orderItems`
/// may be empty (lines are updated by id or added) and `fulfillments`, if sent, must be. The
/// order is the path's: `sourceOrderId` is left out of the schema, since a body may repeat it
/// but not differ from the path, a relation JSON Schema cannot state.
pub(crate) struct OrderUpdateRequest;

impl utoipa::PartialSchema for OrderUpdateRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        let mut schema = <OrderRequest as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object
                .required
                .retain(|name| name != "sourceOrderId" && name != "orderItems");
            object.properties = std::mem::take(&mut object.properties)
                .into_iter()
                .filter(|(name, _)| name != "sourceOrderId")
                .collect();
            for (name, property) in object.properties.iter_mut() {
                let RefOr::T(Schema::Array(array)) = property else {
                    continue;
                };
                match name.as_str() {
                    "orderItems" => {
                        array.min_items = None;
                        array.description = Some(
                            "Lines to update (by sourceItemId) or add; sourceItemIds must differ \
                             (a rule JSON Schema cannot state)."
                                .into(),
                        );
                    }
                    "fulfillments" => {
                        array.max_items = Some(0);
                        array.description = Some(
                            "Not taken on update: send fulfillments to \
                             /orders/{sourceOrderId}/fulfillments."
                                .into(),
                        );
                    }
                    _ => {}
                }
            }
            object.description = Some(
                "The order's new details and lines. sourceOrderId may be repeated but must be \
                 the path's."
                    .into(),
            );
        }
        schema
    }
}

impl utoipa::ToSchema for OrderUpdateRequest {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <OrderRequest as utoipa::ToSchema>::schemas(schemas);
    }
}

#[utoipa::path(put, path = "/v1/orders/{sourceOrderId}", tag = "OrderProtection", params(("sourceOrderId" = String, Path, description = "The caller's order id")),
    request_body = OrderUpdateRequest,
    responses((status = 200, description = "Updated", body = crate::openapi::StatusBody), (status = 400, description = "Validation error", body = crate::openapi::StatusBody), (status = 401, description = "Unauthorized", body = crate::openapi::StatusBody), (status = 404, description = "Order not found", body = crate::openapi::StatusBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn update_order(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<OpError>,
    Path(source_order_id): Path<String>,
    JsonBody(mut body, _): JsonBody<Value, OpError>,
) -> Result<Json<Value>, OpError> {
    // The path names the order; a body may repeat the id but not change it.
    let Some(fields) = body.as_object_mut() else {
        return Err(OpError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    match fields.get("sourceOrderId") {
        None => {
            fields.insert("sourceOrderId".into(), json!(source_order_id));
        }
        Some(Value::String(id)) if *id == source_order_id => {}
        // An integer id is the id its digits spell, as in every other request.
        Some(Value::Number(n)) if integer_text(n).as_deref() == Some(source_order_id.as_str()) => {}
        Some(id) => {
            return Err(OpError::bad_request(format!(
                "sourceOrderId {id} does not match the order in the path ('{source_order_id}')"
            )));
        }
    }
    let request: OrderRequest = crate::extract::parse_json(body.to_string().as_bytes())?;
    let parsed = request.parse()?;
    if !parsed.fulfillments.is_empty() {
        return Err(OpError::bad_request(
            "send fulfillments to /orders/{sourceOrderId}/fulfillments when updating an order",
        ));
    }
    // The lines' ids follow the rules of a new order's (which `NewOrder` checks on create).
    let mut seen = std::collections::HashSet::new();
    for (i, line) in parsed.lines.iter().enumerate() {
        let field = format!("orderItems[{i}].sourceItemId");
        waybill_core::order::validate_id(&field, &line.id)?;
        if !seen.insert(line.id.as_str()) {
            return Err(OpError::bad_request(format!(
                "{field} '{}' is used by more than one line item",
                line.id
            )));
        }
    }
    let update = OrderUpdate {
        created_at: parsed.created_at,
        details: parsed.details,
        line_items: parsed.lines,
    };
    state
        .store
        .update_order(&store_id, &OrderRef::new(source_order_id), update)
        .await?;
    Ok(Json(json!({ "status": "ok" })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct ListQuery {
    #[serde(default)]
    size: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

/// A cursor: the last listed order's internal id as 32 hex digits (the `cursor` parameter's
/// pattern in the document).
fn encode_cursor(order_id: &uuid::Uuid) -> String {
    order_id.simple().to_string()
}

/// The internal id (hyphenated, as orders are keyed) a non-empty cursor names.
fn decode_cursor(cursor: &str) -> Option<String> {
    if cursor.len() != 32 || !cursor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    uuid::Uuid::try_parse(cursor)
        .ok()
        .map(|id| id.hyphenated().to_string())
}

#[utoipa::path(get, path = "/v1/orders", tag = "OrderProtection",
    params(("size" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, default 20"),
        ("cursor" = Option<String>, Query, pattern = r"^(?:[0-9A-Fa-f]{32})?$", description = "nextCursor of the previous page; empty for the first")),
    responses((status = 200, description = "A page of orders: {orders, size, total, nextCursor}", body = Object),
        (status = 400, description = "Validation error", body = crate::openapi::StatusBody), (status = 401, description = "Unauthorized", body = crate::openapi::StatusBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn list_orders(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<OpError>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, OpError> {
    let Query(query) = query.map_err(|e| OpError::bad_request(e.body_text()))?;
    let size = query.size.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&size) {
        return Err(OpError::bad_request(format!(
            "size must be between 1 and {MAX_PAGE}; got {size}"
        )));
    }
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(
            decode_cursor(c).ok_or_else(|| OpError::bad_request("cursor is not a valid cursor"))?,
        ),
        None => None,
    };
    let page = state
        .store
        .list_orders(
            &store_id,
            OrderQuery {
                after,
                limit: size,
                ..OrderQuery::default()
            },
        )
        .await?;
    let next = page
        .has_more
        .then(|| page.orders.last().map(|o| encode_cursor(&o.id)))
        .flatten();
    Ok(Json(json!({
        "orders": page.orders.iter().map(order_json).collect::<Vec<_>>(),
        "size": size,
        "total": page.total,
        "nextCursor": next,
    })))
}

// ---- fulfillments ------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FulfillmentRequest {
    #[schema(schema_with = item_quantities_schema)]
    source_item_ids: Vec<ItemQuantity>,
    #[schema(schema_with = status_schema)]
    fulfillment_status: String,
    #[schema(schema_with = source_id_schema)]
    source_fulfillment_id: SourceId,
    #[serde(default)]
    tracking_company: Option<String>,
    /// One per parcel; not blank.
    #[serde(default)]
    #[schema(schema_with = tracking_numbers_schema)]
    tracking_number: Vec<String>,
    /// The parcels' tracking pages, in `trackingNumber`'s order: no more entries than it has.
    #[serde(default)]
    tracking_url: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = common::optional_date_time_schema)]
    created_at: Option<String>,
    #[serde(default)]
    #[schema(schema_with = common::optional_date_time_schema)]
    updated_at: Option<String>,
}

/// `sourceItemIds`: at least one line, no two alike. (Lines must also differ in
/// `sourceItemId`, which JSON Schema cannot state: `uniqueItems` compares whole items.)
fn item_quantities_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(<ItemQuantity as utoipa::PartialSchema>::schema())
        .min_items(Some(1))
        .unique_items(true)
        .description(Some(
            "At least one line; each sourceItemId once, with its total quantity.",
        ))
        .build()
}

/// Up to how many `trackingUrl` entries the document states that there are no more of them
/// than of `trackingNumber`.
const STATED_TRACKING_URLS: usize = 8;

/// A fulfillment request: the fields, and that `trackingUrl` has no more entries than
/// `trackingNumber`. JSON Schema cannot compare two arrays' lengths, so the rule is stated
/// as "at most n URLs and at least n numbers" for some n up to [`STATED_TRACKING_URLS`],
/// or more numbers than that (with any number of URLs, which the server still checks).
fn fulfillment_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{
        AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema,
    };
    let counts = |numbers: usize, urls: Option<usize>| {
        let mut object = ObjectBuilder::new().property(
            "trackingNumber",
            ArrayBuilder::new().min_items(Some(numbers)),
        );
        if let Some(urls) = urls {
            object = object.property("trackingUrl", ArrayBuilder::new().max_items(Some(urls)));
        }
        if numbers > 0 {
            object = object.required("trackingNumber");
        }
        object
    };
    let mut relation = AnyOfBuilder::new().description(Some(format!(
        "trackingUrl has no more entries than trackingNumber (stated for up to \
         {STATED_TRACKING_URLS} URLs)"
    )));
    for n in 0..=STATED_TRACKING_URLS {
        relation = relation.item(counts(n, Some(n)));
    }
    relation = relation.item(counts(STATED_TRACKING_URLS + 1, None));
    Schema::AllOf(
        AllOfBuilder::new()
            .item(<FulfillmentRequest as utoipa::PartialSchema>::schema())
            .item(relation)
            .build(),
    )
}

/// The body of `POST /orders/{sourceOrderId}/fulfillments`: [`fulfillment_schema`].
pub(crate) struct FulfillmentBody;

impl utoipa::PartialSchema for FulfillmentBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        fulfillment_schema().into()
    }
}

impl utoipa::ToSchema for FulfillmentBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "FulfillmentRequest".into()
    }
}

/// `trackingNumber`: strings that are not blank.
fn tracking_numbers_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(common::non_blank_schema())
        .build()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemQuantity {
    #[schema(schema_with = source_id_schema)]
    source_item_id: SourceId,
    #[serde(deserialize_with = "common::integer")]
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
}

impl FulfillmentRequest {
    /// `prefix` locates the fulfillment in error messages (`fulfillments[0].`).
    pub(crate) fn into_domain(self, prefix: &str) -> Result<NewFulfillment, OpError> {
        let (label, meaning) = parse_status(
            &format!("{prefix}fulfillmentStatus"),
            &self.fulfillment_status,
        )?;
        let lines = self
            .source_item_ids
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                Quantity::new(
                    &format!("{prefix}sourceItemIds[{i}].quantity"),
                    item.quantity,
                )
                .map(|q| (item.source_item_id.0, q))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.tracking_url.len() > self.tracking_number.len() {
            return Err(OpError::bad_request(format!(
                "{prefix}trackingUrl has more entries than {prefix}trackingNumber"
            )));
        }
        let carrier = self.tracking_company.filter(|c| !c.trim().is_empty());
        let packages = self
            .tracking_number
            .into_iter()
            .enumerate()
            .map(|(i, number)| Package {
                carrier: carrier.clone(),
                tracking_number: number,
                tracking_url: self.tracking_url.get(i).cloned(),
            })
            .collect();
        // An event (DELAYED) on a new fulfillment leaves it at its starting status.
        let status = match meaning {
            StatusOrEvent::Status(s) => s,
            StatusOrEvent::Event(_) => ShipmentStatus::PreTransit,
        };
        let lines_field = format!("{prefix}sourceItemIds");
        let fulfillment_id_field = format!("{prefix}sourceFulfillmentId");
        let names = FieldNames {
            order_id: "sourceOrderId",
            fulfillment_id: &fulfillment_id_field,
            lines: &lines_field,
            line_id: "sourceItemId",
        };
        let mut new = NewFulfillment::new_named(
            names,
            Some(self.source_fulfillment_id.0),
            lines,
            packages,
            status,
        )?;
        new.status_label = Some(label.to_owned());
        new.initial = InitialTracking {
            message: None,
            datetime: self
                .created_at
                .as_deref()
                .map(|t| time::parse_datetime(&format!("{prefix}createdAt"), t))
                .transpose()?,
            location: None,
        };
        if let Some(t) = &self.updated_at {
            time::parse_datetime(&format!("{prefix}updatedAt"), t)?;
        }
        Ok(new)
    }
}

fn fulfillment_json(source_order_id: &str, f: &Fulfillment) -> Value {
    json!({
        "id": f.id,
        "sourceFulfillmentId": f.id,
        "sourceOrderId": source_order_id,
        "fulfillmentStatus": status_label(f),
        "trackingCompany": f.first_package().and_then(|p| p.carrier.clone()),
        "trackingNumber": f.packages.iter().map(|p| p.tracking_number.clone()).collect::<Vec<_>>(),
        "trackingUrl": f.packages.iter().filter_map(|p| p.tracking_url.clone()).collect::<Vec<_>>(),
        "sourceItemIds": f.lines.iter().map(|l| json!({
            "sourceItemId": l.line_item_id, "quantity": l.quantity,
        })).collect::<Vec<_>>(),
        "createdAt": time::format(f.created_at),
        "updatedAt": time::format(f.updated_at),
    })
}

#[utoipa::path(post, path = "/v1/orders/{sourceOrderId}/fulfillments", tag = "OrderProtection", params(("sourceOrderId" = String, Path, description = "The caller's order id")),
    request_body = FulfillmentBody,
    responses((status = 201, description = "Created, or the fulfillment with this sourceFulfillmentId replaced", body = crate::openapi::StatusBody), (status = 400, description = "Validation error, including over-fulfillment", body = crate::openapi::StatusBody),
        (status = 401, description = "Unauthorized", body = crate::openapi::StatusBody), (status = 404, description = "Order not found", body = crate::openapi::StatusBody), (status = 409, description = "sourceFulfillmentId used by another order", body = crate::openapi::StatusBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn create_fulfillment(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<OpError>,
    Path(source_order_id): Path<String>,
    JsonBody(request, _): JsonBody<FulfillmentRequest, OpError>,
) -> Result<(StatusCode, Json<Value>), OpError> {
    let new = request.into_domain("")?;
    // Posting a known sourceFulfillmentId again replaces that fulfillment.
    state
        .store
        .upsert_fulfillment(
            &store_id,
            &OrderRef::new(source_order_id),
            crate::carriers::normalize(new),
        )
        .await?;
    Ok(ok(StatusCode::CREATED))
}

#[utoipa::path(get, path = "/v1/orders/{sourceOrderId}/fulfillments", tag = "OrderProtection", params(("sourceOrderId" = String, Path, description = "The caller's order id")),
    responses((status = 200, description = "The order's fulfillments", body = Vec<Object>),
        (status = 401, description = "Unauthorized", body = crate::openapi::StatusBody), (status = 404, description = "Order not found", body = crate::openapi::StatusBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn list_fulfillments(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<OpError>,
    Path(source_order_id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let order = state
        .store
        .get_order(&store_id, &OrderRef::new(source_order_id))
        .await?;
    Ok(Json(Value::Array(
        order
            .fulfillments
            .iter()
            .map(|f| fulfillment_json(&order.external_id, f))
            .collect(),
    )))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct StatusRequest {
    #[schema(schema_with = status_schema)]
    status: String,
}

impl StatusRequest {
    pub(crate) fn into_domain(self) -> Result<StatusUpdate, OpError> {
        let (label, meaning) = parse_status("status", &self.status)?;
        let mut update = StatusUpdate::new(meaning);
        update.status_label = Some(label.to_owned());
        Ok(update)
    }
}

#[utoipa::path(put, path = "/v1/orders/{sourceOrderId}/fulfillments/{sourceFulfillmentId}", tag = "OrderProtection",
    params(("sourceOrderId" = String, Path, description = "The caller's order id"), ("sourceFulfillmentId" = String, Path, description = "The caller's fulfillment id")),
    request_body = StatusRequest,
    responses((status = 200, description = "Updated", body = crate::openapi::StatusBody), (status = 400, description = "Unknown status", body = crate::openapi::StatusBody), (status = 401, description = "Unauthorized", body = crate::openapi::StatusBody), (status = 404, description = "Order or fulfillment not found", body = crate::openapi::StatusBody)),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn update_fulfillment_status(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<OpError>,
    Path((source_order_id, fulfillment_id)): Path<(String, String)>,
    JsonBody(request, _): JsonBody<StatusRequest, OpError>,
) -> Result<Json<Value>, OpError> {
    let update = request.into_domain()?;
    state
        .store
        .update_shipment_status(
            &store_id,
            &OrderRef::new(source_order_id),
            &fulfillment_id,
            update,
        )
        .await?;
    Ok(Json(json!({ "status": "ok" })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_case_insensitively_and_map_as_documented() {
        assert_eq!(
            parse_status("s", "Fulfilled").unwrap(),
            (
                "FULFILLED",
                StatusOrEvent::Status(ShipmentStatus::PreTransit)
            )
        );
        assert_eq!(
            parse_status("s", "picked_up").unwrap().1,
            StatusOrEvent::Status(ShipmentStatus::Delivered)
        );
        assert_eq!(
            parse_status("s", "not_delivered").unwrap().1,
            StatusOrEvent::Status(ShipmentStatus::Failure)
        );
        assert_eq!(
            parse_status("s", "DELAYED").unwrap().1,
            StatusOrEvent::Event(ShipmentEvent::Delayed)
        );
        assert!(parse_status("s", "LOST").is_err());
        assert_eq!(STATUSES.len(), 19);
    }

    #[test]
    fn ids_are_strings_or_integers_in_the_documented_range() {
        let id = |text: &str| serde_json::from_str::<SourceId>(text).map(|id| id.0);
        assert_eq!(id(r#""A-1""#).unwrap(), "A-1");
        assert_eq!(id("-9223372036854775808").unwrap(), "-9223372036854775808");
        assert_eq!(id("18446744073709551615").unwrap(), "18446744073709551615");
        // Whole numbers written with a fraction are integers to JSON Schema.
        assert_eq!(id("8.0").unwrap(), "8");
        assert_eq!(id("-7e0").unwrap(), "-7");
        // Past the range serde reads a float, rounded onto the range's ends: refused.
        assert!(id("-9223372036854775809").is_err());
        assert!(id("18446744073709551616").is_err());
        assert!(id("1.5").is_err());
        assert!(id("null").is_err());
    }

    #[test]
    fn the_status_pattern_takes_what_parse_status_takes() {
        let pattern = case_insensitive_pattern(STATUSES.iter().map(|s| s.0));
        let validator = jsonschema::validator_for(&json!({"type": "string", "pattern": pattern}))
            .expect("the pattern compiles");
        let regex = |text: &str| validator.is_valid(&json!(text));
        for (name, _) in STATUSES {
            for spelling in [
                name.to_owned(),
                name.to_lowercase(),
                format!("\u{3000}{name}\t"),
            ] {
                assert!(parse_status("s", &spelling).is_ok(), "{spelling}");
                assert!(regex(&spelling), "{spelling}");
            }
        }
        for wrong in ["", "LOST", "IN TRANSIT", "DELIVERED!"] {
            assert!(parse_status("s", wrong).is_err(), "{wrong}");
            assert!(!regex(wrong), "{wrong}");
        }
    }
}
