//! The rest of a fulfillment's life, as Waybill extensions in Redo's style: list orders with
//! filters and `X-Page-*` paging, list and get fulfillments, cancel one (its units return to the
//! ledger), replace its tracking, a store's settings, and carrier detection.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waybill_core::{OrderRef, OrderStatus, Package, StatusUpdate, time};
use waybill_store::{OrderQuery, SettingsUpdate, StoreSettings};

use super::types::{FulfillmentJson, FulfillmentResponse, OrderJson};
use super::{Body, RedoError, RedoPath, RedoStore};
use crate::AppState;
use crate::dialects::common;

fn bad(message: impl Into<String>) -> RedoError {
    RedoError::plain(StatusCode::BAD_REQUEST, message)
}

/// Filters of the order listing.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderFilters {
    /// Derived statuses, comma-separated (`SHIPPED,DELIVERED`).
    #[serde(default)]
    status: Option<String>,
    /// The customer's email, matched case-insensitively.
    #[serde(default)]
    email: Option<String>,
    /// An order id (or its beginning), a customer email, a SKU or a tracking number.
    #[serde(default)]
    search: Option<String>,
    #[serde(default)]
    created_after: Option<String>,
    #[serde(default)]
    created_before: Option<String>,
    #[serde(default)]
    updated_after: Option<String>,
    #[serde(default)]
    updated_before: Option<String>,
}

/// `{"orders": [...]}`, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    orders: Vec<OrderJson>,
}

fn instant(field: &str, value: Option<String>) -> Result<Option<time::Timestamp>, RedoError> {
    value
        .map(|v| time::parse_datetime(field, &v))
        .transpose()
        .map_err(|e| bad(e.to_string()))
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/orders", tag = "Waybill lifecycle",
    params(("storeId" = String, Path, description = "Store id"),
        ("status" = Option<String>, Query, pattern = "^[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:CONFIRMED|PARTIALLY_IN_PRODUCTION|IN_PRODUCTION|PARTIALLY_SHIPPED|SHIPPED|PARTIALLY_DELIVERED|DELIVERED|CANCELLED)?[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:,[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:CONFIRMED|PARTIALLY_IN_PRODUCTION|IN_PRODUCTION|PARTIALLY_SHIPPED|SHIPPED|PARTIALLY_DELIVERED|DELIVERED|CANCELLED)?[\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*)*$", description = "Derived statuses, comma-separated"),
        ("email" = Option<String>, Query, description = "Customer email"),
        ("search" = Option<String>, Query, description = "An order id or its beginning, a customer email, a SKU or a tracking number"),
        ("createdAfter" = Option<String>, Query, format = DateTime, description = "RFC 3339"), ("createdBefore" = Option<String>, Query, format = DateTime, description = "RFC 3339"),
        ("updatedAfter" = Option<String>, Query, format = DateTime, description = "RFC 3339"), ("updatedBefore" = Option<String>, Query, format = DateTime, description = "RFC 3339"),
        ("X-Page-Size" = Option<String>, Header, nullable = false, pattern = "^0*(?:[1-9][0-9]?|[1-4][0-9]{2}|500)$", description = "1-500, default 20"),
        ("X-Page-Continue" = Option<uuid::Uuid>, Header, nullable = false, description = "The X-Page-Next of the previous page")),
    responses((status = 200, description = "A page of orders, oldest first; X-Page-Next names the next page when there is one", body = OrderList),
        (status = 400, description = "Bad filter or paging header", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn list_orders(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    headers: HeaderMap,
    filters: Result<Query<OrderFilters>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, RedoError> {
    let Query(filters) = filters.map_err(|e| bad(e.body_text()))?;
    let limit = super::page_size(&headers)?;
    let after = match headers.get("x-page-continue") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|t| uuid::Uuid::parse_str(t.trim()).ok())
                .ok_or_else(|| bad("X-Page-Continue must be the X-Page-Next of an earlier page"))?
                .to_string(),
        ),
    };
    let statuses = match filters.status.as_deref() {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                OrderStatus::parse(s).ok_or_else(|| {
                    bad(format!(
                        "status must list order statuses ({}); got '{s}'",
                        OrderStatus::ALL.map(|s| s.as_str()).join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let query = OrderQuery {
        email: filters.email.filter(|e| !e.trim().is_empty()),
        search: filters
            .search
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        created_after: instant("createdAfter", filters.created_after)?,
        created_before: instant("createdBefore", filters.created_before)?,
        updated_after: instant("updatedAfter", filters.updated_after)?,
        updated_before: instant("updatedBefore", filters.updated_before)?,
        statuses,
        after,
        offset: 0,
        limit,
        ..OrderQuery::default()
    };
    let page = state.store.list_orders(&store_id, query).await?;
    let mut response = Json(OrderList {
        orders: page.orders.iter().map(OrderJson::from).collect(),
    })
    .into_response();
    if page.has_more
        && let Some(last) = page.orders.last()
        && let Ok(value) = HeaderValue::from_str(&last.id.to_string())
    {
        response.headers_mut().insert("x-page-next", value);
    }
    Ok(response)
}

/// `{"fulfillments": [...]}`, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FulfillmentList {
    fulfillments: Vec<FulfillmentJson>,
}

/// `{"fulfillment": {...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct FulfillmentEnvelope {
    fulfillment: FulfillmentJson,
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/orders/{orderId}/fulfillments", tag = "Waybill lifecycle",
    params(("storeId" = String, Path, description = "Store id"), ("orderId" = String, Path, description = "The caller's order id or Waybill's internal id")),
    responses((status = 200, description = "The order's fulfillments", body = FulfillmentList),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Order not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, order_id = %order_id))]
pub(crate) async fn list_fulfillments(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, order_id)): RedoPath<(String, String)>,
) -> Result<Json<FulfillmentList>, RedoError> {
    let order = state
        .store
        .get_order(&store_id, &OrderRef::new(order_id))
        .await?;
    Ok(Json(FulfillmentList {
        fulfillments: order
            .fulfillments
            .iter()
            .map(FulfillmentJson::from)
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/orders/{orderId}/fulfillments/{fulfillmentId}", tag = "Waybill lifecycle",
    params(("storeId" = String, Path, description = "Store id"), ("orderId" = String, Path, description = "The caller's order id or Waybill's internal id"), ("fulfillmentId" = String, Path, description = "Fulfillment id")),
    responses((status = 200, description = "The fulfillment with its tracking history", body = FulfillmentEnvelope),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Order or fulfillment not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, order_id = %order_id, fulfillment_id = %fulfillment_id))]
pub(crate) async fn get_fulfillment(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, order_id, fulfillment_id)): RedoPath<(String, String, String)>,
) -> Result<Json<FulfillmentEnvelope>, RedoError> {
    let order = state
        .store
        .get_order(&store_id, &OrderRef::new(order_id))
        .await?;
    let fulfillment = order
        .fulfillments
        .iter()
        .find(|f| f.id == fulfillment_id)
        .ok_or_else(|| {
            RedoError::from(waybill_core::DomainError::FulfillmentNotFound(
                fulfillment_id.clone(),
            ))
        })?;
    Ok(Json(FulfillmentEnvelope {
        fulfillment: FulfillmentJson::from(fulfillment),
    }))
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/orders/{orderId}/fulfillments/{fulfillmentId}/cancel", tag = "Waybill lifecycle",
    params(("storeId" = String, Path, description = "Store id"), ("orderId" = String, Path, description = "The caller's order id or Waybill's internal id"), ("fulfillmentId" = String, Path, description = "Fulfillment id")),
    responses((status = 200, description = "Cancelled: status `cancelled`, its units back in the ledger", body = FulfillmentResponse),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Order or fulfillment not found", body = crate::openapi::RedoErrorBody),
        (status = 409, description = "Already delivered", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, order_id = %order_id, fulfillment_id = %fulfillment_id))]
pub(crate) async fn cancel_fulfillment(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, order_id, fulfillment_id)): RedoPath<(String, String, String)>,
) -> Result<Json<FulfillmentResponse>, RedoError> {
    let cancelled = state
        .store
        .update_shipment_status(
            &store_id,
            &OrderRef::new(order_id),
            &fulfillment_id,
            StatusUpdate::cancel(),
        )
        .await?;
    Ok(Json(FulfillmentResponse::new(&cancelled)))
}

/// `{"packages": [{carrier?, trackingNumber, trackingUrl?}]}`: the fulfillment's new parcels.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackingRequest {
    #[schema(max_items = 50)]
    packages: Vec<PackageInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PackageInput {
    #[serde(default)]
    carrier: Option<String>,
    #[schema(schema_with = common::text_schema::<100>)]
    tracking_number: String,
    #[serde(default)]
    #[schema(schema_with = common::optional_http_url_schema)]
    tracking_url: Option<String>,
}

/// Most packages one fulfillment may have.
pub(crate) const MAX_PACKAGES: usize = 50;

/// Validates parcels given as (carrier, tracking number, tracking URL) into packages with
/// carriers normalised and tracking URLs built, as `PUT …/tracking` stores them; `Err` is the
/// sentence to answer with.
pub(crate) fn check_packages(
    inputs: impl ExactSizeIterator<Item = (Option<String>, String, Option<String>)>,
) -> Result<Vec<Package>, String> {
    if inputs.len() > MAX_PACKAGES {
        return Err(format!("packages may list at most {MAX_PACKAGES} parcels"));
    }
    let mut packages = Vec::with_capacity(inputs.len());
    for (i, (carrier, tracking_number, tracking_url)) in inputs.enumerate() {
        let number = tracking_number.trim();
        if !common::is_text(&tracking_number, 100) {
            return Err(format!(
                "packages[{i}].trackingNumber must be 1 to 100 characters without control characters"
            ));
        }
        let url = match tracking_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) => match common::http_url(u) {
                Some(_) => Some(u.to_owned()),
                None => return Err(format!("packages[{i}].trackingUrl must be an http(s) URL")),
            },
        };
        packages.push(Package {
            carrier: carrier
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty()),
            tracking_number: number.to_owned(),
            tracking_url: url,
        });
    }
    crate::carriers::normalize_packages(&mut packages);
    Ok(packages)
}

#[utoipa::path(put, path = "/v2.2/stores/{storeId}/orders/{orderId}/fulfillments/{fulfillmentId}/tracking", tag = "Waybill lifecycle",
    params(("storeId" = String, Path, description = "Store id"), ("orderId" = String, Path, description = "The caller's order id or Waybill's internal id"), ("fulfillmentId" = String, Path, description = "Fulfillment id")),
    request_body = TrackingRequest,
    responses((status = 200, description = "Tracking replaced; carriers normalised, tracking URLs built", body = FulfillmentResponse),
        (status = 400, description = "Validation error", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Order or fulfillment not found", body = crate::openapi::RedoErrorBody),
        (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, order_id = %order_id, fulfillment_id = %fulfillment_id))]
pub(crate) async fn update_tracking(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, order_id, fulfillment_id)): RedoPath<(String, String, String)>,
    crate::extract::JsonBody(request, _): Body<TrackingRequest>,
) -> Result<Json<FulfillmentResponse>, RedoError> {
    let packages = check_packages(
        request
            .packages
            .into_iter()
            .map(|p| (p.carrier, p.tracking_number, p.tracking_url)),
    )
    .map_err(bad)?;
    let updated = state
        .store
        .update_tracking(
            &store_id,
            &OrderRef::new(order_id),
            &fulfillment_id,
            packages,
        )
        .await?;
    Ok(Json(FulfillmentResponse::new(&updated)))
}

/// A store's settings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsJson {
    /// Hours without a tracking update before `stalled_in_transit` is raised (default 72).
    stalled_after_hours: u64,
    /// Whether an EasyPost webhook secret is set (the secret itself is never shown).
    easypost_webhook_secret_set: bool,
}

impl From<&StoreSettings> for SettingsJson {
    fn from(s: &StoreSettings) -> Self {
        SettingsJson {
            stalled_after_hours: s.stall_after.as_secs() / 3600,
            easypost_webhook_secret_set: s.easypost_secret.is_some(),
        }
    }
}

/// `{"settings": {...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsEnvelope {
    settings: SettingsJson,
}

/// A change to the settings; fields left out keep their value. `easypostWebhookSecret: null`
/// removes the secret.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsRequest {
    #[serde(default, deserialize_with = "common::optional_integer")]
    #[schema(minimum = 1, maximum = 8760)]
    stalled_after_hours: Option<i64>,
    #[serde(default, with = "serde_with_double_option")]
    #[schema(schema_with = common::optional_text_schema::<512>)]
    easypost_webhook_secret: Option<Option<String>>,
}

/// Tells a field left out (`None`) from one sent as null (`Some(None)`).
mod serde_with_double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(deserializer).map(Some)
    }
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/settings", tag = "Waybill lifecycle",
    params(("storeId" = String, Path, description = "Store id")),
    responses((status = 200, description = "The store's settings", body = SettingsEnvelope),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
) -> Result<Json<SettingsEnvelope>, RedoError> {
    let settings = state.store.store_settings(&store_id).await?;
    Ok(Json(SettingsEnvelope {
        settings: SettingsJson::from(&settings),
    }))
}

#[utoipa::path(put, path = "/v2.2/stores/{storeId}/settings", tag = "Waybill lifecycle",
    params(("storeId" = String, Path, description = "Store id")), request_body = SettingsRequest,
    responses((status = 200, description = "The settings after the change", body = SettingsEnvelope),
        (status = 400, description = "Validation error", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn update_settings(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    crate::extract::JsonBody(request, _): Body<SettingsRequest>,
) -> Result<Json<SettingsEnvelope>, RedoError> {
    let stall_after = match request.stalled_after_hours {
        None => None,
        Some(h @ 1..=8760) => Some(std::time::Duration::from_secs(h.unsigned_abs() * 3600)),
        Some(h) => {
            return Err(bad(format!(
                "stalledAfterHours must be from 1 to 8760; got {h}"
            )));
        }
    };
    let easypost_secret = match request.easypost_webhook_secret {
        Some(Some(secret)) => {
            if !common::is_text(&secret, 512) {
                return Err(bad(
                    "easypostWebhookSecret must be 1 to 512 characters without control characters",
                ));
            }
            Some(Some(secret.trim().to_owned()))
        }
        other => other,
    };
    let settings = state
        .store
        .update_store_settings(
            &store_id,
            SettingsUpdate {
                stall_after,
                easypost_secret,
            },
        )
        .await?;
    Ok(Json(SettingsEnvelope {
        settings: SettingsJson::from(&settings),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetectQuery {
    tracking_number: String,
    /// Free-text carrier to normalise alongside.
    #[serde(default)]
    carrier: Option<String>,
}

/// A carrier's code and name.
#[derive(Debug, Serialize, ToSchema)]
pub struct CarrierJson {
    code: String,
    name: String,
}

/// A carrier whose format and check digit accept the number.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateJson {
    carrier: CarrierJson,
    service: String,
    tracking_url: String,
    /// `check_digit`, `prefix` or `pattern`: how strongly the number points at the carrier.
    evidence: String,
}

/// What a tracking number (and a free-text carrier) says.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectionJson {
    tracking_number: String,
    /// The carrier Waybill would record: the normalised free text, or the one carrier the
    /// number points at; null when ambiguous or unknown.
    carrier: Option<CarrierJson>,
    tracking_url: Option<String>,
    candidates: Vec<CandidateJson>,
    /// Present when the number has the shape of a carrier's format but fails its check
    /// digit ("looks like a UPS number, but its check digit is wrong"): a warning, not a
    /// refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    check_digit_mismatch: Option<crate::carriers::CheckDigitWarning>,
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/carriers/detect", tag = "Waybill lifecycle",
    params(("storeId" = String, Path, description = "Store id"),
        ("trackingNumber" = String, Query, min_length = 1, max_length = 100, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\t\\n\\u000b\\u000c\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$", description = "The tracking number"),
        ("carrier" = Option<String>, Query, description = "Free-text carrier, e.g. `U.P.S.`")),
    responses((status = 200, description = "The detected carrier and every candidate", body = DetectionJson),
        (status = 400, description = "Missing or bad tracking number", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn detect_carrier(
    RedoStore(_): RedoStore,
    query: Result<Query<DetectQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DetectionJson>, RedoError> {
    let Query(query) = query.map_err(|e| bad(e.body_text()))?;
    let number = query.tracking_number.trim();
    if !common::is_text(&query.tracking_number, 100) {
        return Err(bad(
            "trackingNumber must be 1 to 100 characters without control characters",
        ));
    }
    let normalized = waybill_carriers::normalize_package(&Package {
        carrier: query.carrier.filter(|c| !c.trim().is_empty()),
        tracking_number: number.to_owned(),
        tracking_url: None,
    });
    let carrier = normalized
        .carrier_code
        .and_then(waybill_carriers::carrier_by_code)
        .map(|c| CarrierJson {
            code: c.code.to_owned(),
            name: c.name.to_owned(),
        });
    Ok(Json(DetectionJson {
        tracking_number: number.to_owned(),
        carrier,
        tracking_url: normalized.package.tracking_url,
        candidates: normalized
            .candidates
            .iter()
            .map(|d| CandidateJson {
                carrier: CarrierJson {
                    code: d.carrier.code.to_owned(),
                    name: d.carrier.name.to_owned(),
                },
                service: d.service.clone(),
                tracking_url: d.tracking_url.clone(),
                evidence: serde_json::to_value(d.evidence)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            })
            .collect(),
        check_digit_mismatch: crate::carriers::check_digit_warning(number),
    }))
}
