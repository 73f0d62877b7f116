//! The Fourthwall dialect, under `/open-api/v1.0` (seed 003).
//!
//! Orders are addressed by Waybill's internal id (a UUID), lines by `variantId`. Errors are
//! `{"code": ..., <context fields>}` with the seed's codes. Auth is HTTP Basic (store id and
//! secret) or a bearer secret.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;
use waybill_core::ledger::{KeyAllocationError, allocate_by_key};
use waybill_core::{
    DomainError, Money, NewFulfillment, Order, OrderRef, OrderStatus, Package, ShipmentStatus,
    order_status, time,
};
use waybill_store::{OrderQuery, StoreError};

use crate::AppState;
use crate::auth::{AuthError, Caller};
use crate::dialects::common;
use crate::extract::{BodyError, JsonBody};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/fulfillments", post(create_fulfillment))
        .route("/order", get(list_orders))
        .route("/order/{order_id}", get(get_order))
}

/// A Fourthwall error: a status and a `{code, ...}` body.
#[derive(Debug)]
pub struct FourthwallError(StatusCode, Value);

impl FourthwallError {
    /// An error with this status and `{code, ...}` body.
    pub(crate) fn new(status: StatusCode, body: Value) -> Self {
        FourthwallError(status, body)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        FourthwallError(
            StatusCode::BAD_REQUEST,
            json!({ "code": "INVALID_REQUEST", "message": message.into() }),
        )
    }

    fn order_not_found(id: &str) -> Self {
        FourthwallError(
            StatusCode::NOT_FOUND,
            json!({ "code": "ORDER_ID_NOT_FOUND", "id": id }),
        )
    }
}

impl IntoResponse for FourthwallError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<BodyError> for FourthwallError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => FourthwallError(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "code": "PAYLOAD_TOO_LARGE", "message": e.message() }),
            ),
            BodyError::Malformed(m) => FourthwallError::invalid(m),
        }
    }
}

impl From<StoreError> for FourthwallError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(DomainError::OrderNotFound(id)) => {
                FourthwallError::order_not_found(&id)
            }
            StoreError::Domain(d) => FourthwallError::invalid(d.to_string()),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                FourthwallError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "code": "SERVICE_UNAVAILABLE", "message": "retry shortly" }),
                )
            }
            StoreError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                FourthwallError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "code": "INTERNAL_ERROR", "message": "an internal error occurred" }),
                )
            }
        }
    }
}

impl From<AuthError> for FourthwallError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(inner) => inner.into(),
            AuthError::Missing | AuthError::Invalid => FourthwallError(
                StatusCode::UNAUTHORIZED,
                json!({ "code": "UNAUTHORIZED", "message": "invalid or missing credentials" }),
            ),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = FourthwallFulfillmentRequest)]
pub(crate) struct FulfillmentRequest {
    /// Waybill's internal order id.
    #[schema(format = "uuid")]
    order_id: String,
    /// The units to fulfill per variant; a variant may be listed more than once.
    #[schema(min_items = 1)]
    items: Vec<ItemRequest>,
    shipping_label: ShippingLabel,
}

/// A fulfillment request checked without the order: the order's id, the label's carrier and
/// number, and the units wanted per variant.
pub(crate) type CheckedRequest = (Uuid, String, String, Vec<(String, u32)>);

impl FulfillmentRequest {
    pub(crate) fn validate(&self) -> Result<CheckedRequest, FourthwallError> {
        let order_uuid = Uuid::parse_str(&self.order_id)
            .map_err(|_| FourthwallError::invalid("orderId must be a UUID"))?;
        let company = self.shipping_label.tracking_company.trim().to_owned();
        let number = self.shipping_label.tracking_number.trim().to_owned();
        if company.is_empty() || number.is_empty() {
            return Err(FourthwallError::invalid(
                "shippingLabel.trackingNumber and shippingLabel.trackingCompany must not be empty",
            ));
        }
        if self.items.is_empty() {
            return Err(FourthwallError::invalid(
                "items must contain at least one item",
            ));
        }
        let mut wanted = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            if !(1..=i64::from(waybill_core::Quantity::MAX)).contains(&item.quantity) {
                return Err(FourthwallError::invalid(format!(
                    "items[{i}].quantity must be between 1 and {}",
                    waybill_core::Quantity::MAX
                )));
            }
            wanted.push((item.variant_id.clone(), item.quantity as u32));
        }
        Ok((order_uuid, company, number, wanted))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = FourthwallItemRequest)]
pub(crate) struct ItemRequest {
    variant_id: String,
    #[serde(deserialize_with = "common::integer")]
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = FourthwallShippingLabel)]
pub(crate) struct ShippingLabel {
    /// Not blank.
    #[schema(schema_with = common::non_blank_schema)]
    tracking_number: String,
    /// Not blank.
    #[schema(schema_with = common::non_blank_schema)]
    tracking_company: String,
}

/// A deterministic id for a fulfillment's content, so a repeated submission collides with the
/// first one in the database even when both arrive at once.
fn content_id(order_id: Uuid, company: &str, number: &str, lines: &[(String, u32)]) -> String {
    let mut key = format!("{company}\u{1f}{number}");
    for (line, quantity) in lines {
        key.push_str(&format!("\u{1f}{line}\u{1e}{quantity}"));
    }
    Uuid::new_v5(&order_id, key.as_bytes()).to_string()
}

#[utoipa::path(post, path = "/open-api/v1.0/fulfillments", tag = "Fourthwall",
    request_body = FulfillmentRequest,
    responses((status = 201, description = "Created", body = FulfillmentCreated),
        (status = 400, description = "FULFILLMENT_ALREADY_EXISTS, FULFILLMENT_ORDER_INVALID_VARIANT, FULFILLMENT_VARIANT_QUANTITY_TO_HIGH or INVALID_REQUEST", body = crate::openapi::FourthwallErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = crate::openapi::FourthwallErrorBody), (status = 404, description = "ORDER_ID_NOT_FOUND", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn create_fulfillment(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
    JsonBody(request, _): JsonBody<FulfillmentRequest, FourthwallError>,
) -> Result<(StatusCode, Json<FulfillmentCreated>), FourthwallError> {
    let (order_uuid, company, number, wanted) = request.validate()?;
    let order_ref = OrderRef::new(order_uuid.to_string());
    let order = state
        .store
        .get_order(&store_id, &order_ref)
        .await
        .map_err(|e| match e {
            StoreError::Domain(DomainError::OrderNotFound(_)) => {
                FourthwallError::order_not_found(&request.order_id)
            }
            other => other.into(),
        })?;
    let order_id = order.id.to_string();
    // The label as it will be stored (canonical carrier name), so a repeat that spells the
    // carrier differently ("ups" for "UPS") is still recognised as the same submission.
    let label = waybill_carriers::normalize_package(&Package {
        carrier: Some(company),
        tracking_number: number,
        tracking_url: None,
    })
    .package;
    let company = label.carrier.clone().unwrap_or_default();
    let number = label.tracking_number.clone();

    // The same items with the same label again: a repeated submission. This is checked before
    // the ledger: the first submission's own units are the ones that are gone.
    let mut requested: Vec<(String, u32)> = wanted.clone();
    requested.sort();
    if let Some(existing) = order.fulfillments.iter().find(|f| {
        let same_label = f.first_package().is_some_and(|p| {
            p.tracking_number == number && p.carrier.as_deref() == Some(company.as_str())
        });
        let mut items: Vec<(String, u32)> = f
            .lines
            .iter()
            .map(|l| (l.variant_id.clone().unwrap_or_default(), l.quantity))
            .collect();
        items.sort();
        f.status.is_live() && same_label && merge(items) == merge(requested.clone())
    }) {
        return Err(already_exists(&existing.id, &order_id));
    }

    let lines = allocate_by_key(
        order
            .line_items
            .iter()
            .map(|l| (l.id.as_str(), l.variant_id.as_deref(), l.remaining())),
        &wanted,
    )
    .map_err(|e| match e {
        KeyAllocationError::UnknownKey { key } => FourthwallError(
            StatusCode::BAD_REQUEST,
            json!({ "code": "FULFILLMENT_ORDER_INVALID_VARIANT", "orderId": order_id,
                    "variantId": key, "groupedId": null }),
        ),
        KeyAllocationError::TooMany {
            key,
            fulfillable,
            requested,
        } => too_high(&order_id, &key, fulfillable, requested),
        KeyAllocationError::Invalid(d) => FourthwallError::invalid(d.to_string()),
    })?;
    let id_lines: Vec<(String, u32)> = lines.iter().map(|(l, q)| (l.clone(), q.get())).collect();
    let id = content_id(order.id, &company, &number, &id_lines);
    let fulfillment = NewFulfillment::new(Some(id), lines, vec![label], ShipmentStatus::PreTransit)
        .map_err(|e| FourthwallError::invalid(e.to_string()))?;
    match state
        .store
        .create_fulfillment(&store_id, &order_ref, fulfillment)
        .await
    {
        Ok(created) => Ok((
            StatusCode::CREATED,
            Json(FulfillmentCreated {
                fulfillment_id: created.id,
            }),
        )),
        Err(StoreError::Domain(DomainError::DuplicateFulfillment(id))) => {
            Err(already_exists(&id, &order_id))
        }
        // Another request took the units between our read and this write.
        Err(StoreError::Domain(DomainError::OverFulfillment {
            line_item_id,
            requested,
            remaining,
        })) => {
            let variant = order
                .line_items
                .iter()
                .find(|l| l.id == line_item_id)
                .and_then(|l| l.variant_id.clone())
                .unwrap_or(line_item_id);
            Err(too_high(&order_id, &variant, remaining, requested))
        }
        Err(e) => Err(e.into()),
    }
}

fn merge(mut items: Vec<(String, u32)>) -> Vec<(String, u32)> {
    items.sort();
    let mut out: Vec<(String, u32)> = Vec::new();
    for (k, q) in items {
        match out.last_mut() {
            Some((last, total)) if *last == k => *total += q,
            _ => out.push((k, q)),
        }
    }
    out
}

fn already_exists(fulfillment_id: &str, order_id: &str) -> FourthwallError {
    FourthwallError(
        StatusCode::BAD_REQUEST,
        json!({ "code": "FULFILLMENT_ALREADY_EXISTS", "fulfillmentId": fulfillment_id,
                "orderId": order_id }),
    )
}

fn too_high(order_id: &str, variant: &str, fulfillable: u32, quantity: u32) -> FourthwallError {
    FourthwallError(
        StatusCode::BAD_REQUEST,
        json!({ "code": "FULFILLMENT_VARIANT_QUANTITY_TO_HIGH", "orderId": order_id,
                "variantId": variant, "fulfillable": fulfillable, "quantity": quantity }),
    )
}

/// The answer to creating a fulfillment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentCreated {
    fulfillment_id: String,
}

/// A page of orders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = FourthwallOrderList)]
pub struct OrderList {
    results: Vec<OrderV1>,
    total: u64,
    page: u32,
    size: u32,
    total_pages: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MoneyJson {
    value: f64,
    currency: String,
}

/// OrderV1, with the fields Waybill can fill.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderV1 {
    id: String,
    shop_id: String,
    friendly_id: String,
    #[schema(value_type = String)]
    status: &'static str,
    email: Option<String>,
    #[schema(value_type = Object)]
    amounts: Value,
    #[schema(value_type = Vec<Object>)]
    offers: Vec<Value>,
    created_at: String,
    updated_at: String,
}

impl From<&Order> for OrderV1 {
    fn from(o: &Order) -> Self {
        let currency = o
            .details
            .currency_code
            .clone()
            .unwrap_or_else(|| "USD".into());
        let money = |m: Option<Money>| {
            m.map(|m| MoneyJson {
                value: m.to_f64(),
                currency: currency.clone(),
            })
        };
        let d = &o.details;
        OrderV1 {
            id: o.id.to_string(),
            shop_id: o.store_id.clone(),
            friendly_id: o.external_id.clone(),
            status: order_status::derive(o).as_str(),
            email: d.customer_email().map(str::to_owned),
            amounts: json!({
                "subtotal": money(d.subtotal_price),
                "shipping": money(d.shipping.as_ref().and_then(|s| s.cost)),
                "tax": money(d.total_tax),
                "discount": money(d.total_discount),
                "total": money(d.total_price),
            }),
            offers: o
                .line_items
                .iter()
                .map(|l| {
                    json!({
                        "id": l.product_id.clone().unwrap_or_else(|| l.id.clone()),
                        "name": l.title,
                        "variant": {
                            "id": l.variant_id,
                            "name": l.title,
                            "sku": l.sku,
                            "quantity": l.quantity,
                            "unitPrice": money(l.price),
                        },
                    })
                })
                .collect(),
            created_at: time::format(o.created_at),
            updated_at: time::format(o.updated_at),
        }
    }
}

#[utoipa::path(get, path = "/open-api/v1.0/order/{orderId}", tag = "Fourthwall",
    params(("orderId" = String, Path, format = "uuid", description = "Waybill's internal order id")),
    responses((status = 200, description = "The order", body = OrderV1),
        (status = 401, description = "UNAUTHORIZED", body = crate::openapi::FourthwallErrorBody), (status = 404, description = "ORDER_ID_NOT_FOUND", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn get_order(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
    Path(order_id): Path<String>,
) -> Result<Json<OrderV1>, FourthwallError> {
    if Uuid::parse_str(&order_id).is_err() {
        return Err(FourthwallError::order_not_found(&order_id));
    }
    let order = state
        .store
        .get_order(&store_id, &OrderRef::new(order_id.clone()))
        .await
        .map_err(|e| match e {
            StoreError::Domain(DomainError::OrderNotFound(_)) => {
                FourthwallError::order_not_found(&order_id)
            }
            other => other.into(),
        })?;
    Ok(Json(OrderV1::from(&order)))
}

/// An order status as `GET /order` filters by it: one of the eight names, exactly.
pub(crate) struct OrderStatusName;

impl utoipa::PartialSchema for OrderStatusName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        common::enum_schema(OrderStatus::ALL.iter().map(|s| s.as_str())).into()
    }
}

impl utoipa::ToSchema for OrderStatusName {
    fn name() -> std::borrow::Cow<'static, str> {
        "FourthwallOrderStatus".into()
    }
}

const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_PAGE_SIZE: u32 = 100;

/// Reads `GET /order`'s query: `page` (from 0), `size`, `email`, `createdAt[gt|lt]`,
/// `updatedAt[gt|lt]` and `status`, which may repeat.
fn parse_list_query(raw: Option<&str>) -> Result<(u32, u32, OrderQuery), FourthwallError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| FourthwallError::invalid(format!("the query string is malformed: {e}")))?;
    let mut query = OrderQuery::default();
    let (mut page, mut size) = (0u32, DEFAULT_PAGE_SIZE);
    // Both are documented as 32-bit integers (`Option<u32>` renders as int32), so larger values
    // are refused rather than silently accepted.
    let number = |key: &str, v: &str| {
        v.parse::<u32>()
            .ok()
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| {
                FourthwallError::invalid(format!(
                    "{key} must be an integer from 0 to {}; got '{v}'",
                    i32::MAX
                ))
            })
    };
    for (key, value) in &pairs {
        match key.as_str() {
            "page" => page = number(key, value)?,
            "size" => size = number(key, value)?,
            "email" => query.email = Some(value.clone()),
            "createdAt[gt]" => query.created_after = Some(time::parse_datetime(key, value)?),
            "createdAt[lt]" => query.created_before = Some(time::parse_datetime(key, value)?),
            "updatedAt[gt]" => query.updated_after = Some(time::parse_datetime(key, value)?),
            "updatedAt[lt]" => query.updated_before = Some(time::parse_datetime(key, value)?),
            "status" => {
                let status = OrderStatus::parse(value).ok_or_else(|| {
                    FourthwallError::invalid(format!(
                        "status must be one of {}; got '{value}'",
                        OrderStatus::ALL.map(|s| s.as_str()).join(", ")
                    ))
                })?;
                query.statuses.push(status);
            }
            _ => {}
        }
    }
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(FourthwallError::invalid(format!(
            "size must be between 1 and {MAX_PAGE_SIZE}; got {size}"
        )));
    }
    query.limit = size;
    query.offset = u64::from(page) * u64::from(size);
    Ok((page, size, query))
}

impl From<DomainError> for FourthwallError {
    fn from(e: DomainError) -> Self {
        FourthwallError::invalid(e.to_string())
    }
}

#[utoipa::path(get, path = "/open-api/v1.0/order", tag = "Fourthwall",
    params(("page" = Option<u32>, Query, minimum = 0, maximum = 2147483647, description = "Page, from 0"),
        ("size" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, default 20"),
        ("email" = Option<String>, Query, description = "Customer email"),
        ("createdAt[gt]" = Option<String>, Query, format = DateTime, description = "Created after"),
        ("createdAt[lt]" = Option<String>, Query, format = DateTime, description = "Created before"),
        ("updatedAt[gt]" = Option<String>, Query, format = DateTime, description = "Updated after"),
        ("updatedAt[lt]" = Option<String>, Query, format = DateTime, description = "Updated before"),
        ("status" = inline(Option<Vec<OrderStatusName>>), Query, description = "Order status; may repeat")),
    responses((status = 200, description = "A page of orders", body = OrderList),
        (status = 400, description = "INVALID_REQUEST", body = crate::openapi::FourthwallErrorBody), (status = 401, description = "UNAUTHORIZED", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn list_orders(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
    RawQuery(raw): RawQuery,
) -> Result<Json<OrderList>, FourthwallError> {
    let (page, size, query) = parse_list_query(raw.as_deref())?;
    let result = state.store.list_orders(&store_id, query).await?;
    Ok(Json(OrderList {
        results: result.orders.iter().map(OrderV1::from).collect(),
        total: result.total,
        page,
        size,
        total_pages: result.total.div_ceil(u64::from(size)),
    }))
}
