//! Fourthwall-shaped webhooks under `/open-api/v1.0`: `GET/POST /webhooks`,
//! `GET/PUT/DELETE /webhooks/{id}` and `GET /webhook-events`.
//!
//! Deliveries are signed with `X-Fourthwall-Hmac-SHA256` = base64(HMAC-SHA256(the store's
//! webhook secret, raw body)). The store's secret is made the first time a webhook is created
//! and returned in the answer of every create (`secret`), so the store owner can read it there.

use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use waybill_core::time;
use waybill_store::{
    DeliveryQuery, DeliveryRecord, DeliveryState, NewWebhook, WebhookFlavor, WebhookRecord,
    WebhookUpdate,
};

use super::fourthwall::FourthwallError;
use crate::AppState;
use crate::auth::Caller;
use crate::dialects::common;
use crate::extract::JsonBody;
use crate::webhooks::payload::fourthwall_type;
use crate::webhooks::sign;
use crate::webhooks::ssrf::UrlRefusal;

/// Path parameters, with failures answered in Fourthwall's format (never axum's plain text).
#[derive(FromRequestParts)]
#[from_request(via(Path), rejection(FourthwallError))]
pub(crate) struct FwPath<T>(T);

impl From<axum::extract::rejection::PathRejection> for FourthwallError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        FourthwallError::invalid(e.body_text())
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/webhooks/{webhook_id}",
            get(get_webhook).put(update_webhook).delete(delete_webhook),
        )
        .route("/webhook-events", get(list_events))
        .route("/webhook-events/{event_id}", get(get_event))
}

/// `{url, allowedTypes}`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookConfigRequest {
    /// An absolute http(s) URL without credentials, at most 2048 characters. A host that is,
    /// or resolves to, an address the server's policy refuses is answered 400
    /// `WEBHOOK_URI_IP_NOT_ALLOWED`.
    #[schema(schema_with = common::callback_url_schema)]
    url: String,
    /// Event types: `ORDER_PLACED` and `ORDER_UPDATED` are sent; Fourthwall's other types are
    /// accepted and never fire; any other name is refused.
    #[schema(schema_with = event_types_schema)]
    allowed_types: Vec<String>,
}

/// The event types Fourthwall documents. Waybill sends `ORDER_PLACED` (an order is created) and
/// `ORDER_UPDATED` (a shipment moved the order, or the order was edited); the others are accepted
/// so that an existing client's subscription keeps working, and never fire.
pub const EVENT_TYPES: &[&str] = &[
    "ORDER_PLACED",
    "ORDER_UPDATED",
    "GIFT_PURCHASE",
    "DONATION",
    "SUBSCRIPTION_PURCHASED",
    "SUBSCRIPTION_EXPIRED",
    "SUBSCRIPTION_CHANGED",
    "PRODUCT_CREATED",
    "PRODUCT_UPDATED",
    "NEWSLETTER_SUBSCRIBED",
    "THANK_YOU_SENT",
    "PROMOTION_CREATED",
    "PROMOTION_UPDATED",
    "PROMOTION_STATUS_CHANGED",
    "GIFT_DRAW_STARTED",
    "GIFT_DRAW_ENDED",
    "COLLECTION_UPDATED",
    "PLATFORM_APP_DISCONNECTED",
];

/// Whether `name` is one of Fourthwall's [`EVENT_TYPES`].
pub(crate) fn is_event_type(name: &str) -> bool {
    EVENT_TYPES.contains(&name)
}

/// `allowedTypes`: at least one of [`EVENT_TYPES`].
fn event_types_schema() -> utoipa::openapi::schema::Array {
    let item = utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(EVENT_TYPES.iter().copied()));
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(item)
        .min_items(Some(1))
        .build()
}

/// A webhook configuration. `secret` (the store's webhook HMAC secret) is in create answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookConfigV1 {
    id: String,
    url: String,
    allowed_types: Vec<String>,
    enabled: bool,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WebhookConfigV1 {
    fn new(w: &WebhookRecord, secret: Option<String>) -> Self {
        WebhookConfigV1 {
            id: w.id.clone(),
            url: w.url.clone(),
            allowed_types: w.topics.clone(),
            enabled: w.enabled,
            created_at: time::format(w.created_at),
            secret,
        }
    }
}

/// `{results: [...]}`
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookConfigList {
    results: Vec<WebhookConfigV1>,
}

/// One event sent (or being sent) to a webhook.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEventV1 {
    id: String,
    webhook_id: String,
    #[serde(rename = "type")]
    event_type: String,
    /// Waybill's id of the order (the order's `id`).
    order_id: String,
    /// The order's `friendlyId` (its external id), kept after the order is deleted.
    order_friendly_id: Option<String>,
    /// When the event was written.
    created_at: String,
    /// `pending` (waiting for an attempt or in flight), `delivered`, `failed` (given up), or
    /// `disabled` (still to be sent, but the webhook is switched off).
    #[schema(schema_with = delivery_status_schema)]
    status: String,
    attempts: u32,
    /// The HTTP status of the last attempt, if it got one.
    last_response_code: Option<u16>,
    last_error: Option<String>,
    /// When the next attempt is due; only while `pending`.
    next_attempt_at: Option<String>,
}

fn delivery_status_schema() -> utoipa::openapi::schema::Object {
    common::enum_schema(DeliveryState::ALL.map(DeliveryState::as_str))
}

/// A page of events, newest first: `{results, total, page, size, totalPages}` as Fourthwall's
/// other lists.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEventList {
    results: Vec<WebhookEventV1>,
    total: u64,
    page: u32,
    size: u32,
    total_pages: u64,
}

/// The event types `type` may name: the ones Waybill sends.
const SENT_TYPES: [&str; 2] = ["ORDER_PLACED", "ORDER_UPDATED"];

/// [`SENT_TYPES`], as the document states them.
#[derive(Debug, ToSchema)]
#[allow(clippy::upper_case_acronyms, non_camel_case_types, dead_code)]
enum SentType {
    ORDER_PLACED,
    ORDER_UPDATED,
}
/// Events per page unless `size` says otherwise (the list's length before it was paged).
const EVENTS_PAGE_SIZE: u32 = 100;
const MAX_EVENTS_PAGE_SIZE: u32 = 100;

/// Reads `GET /webhook-events`' query: `page` (from 0), `size` (1–100), and the filters `type`,
/// `status` and `order` (an order's `id` or `friendlyId`). Unknown parameters are ignored, as
/// on the other lists.
fn parse_events_query(raw: Option<&str>) -> Result<(u32, u32, DeliveryQuery), FourthwallError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| FourthwallError::invalid(format!("the query string is malformed: {e}")))?;
    let mut query = DeliveryQuery::new(WebhookFlavor::Fourthwall, EVENTS_PAGE_SIZE);
    let (mut page, mut size) = (0u32, EVENTS_PAGE_SIZE);
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
            "type" => {
                if !SENT_TYPES.contains(&value.as_str()) {
                    return Err(FourthwallError::invalid(format!(
                        "type must be one of {}; got '{value}'",
                        SENT_TYPES.join(", ")
                    )));
                }
                query.topic = Some(value.clone());
            }
            "status" => {
                let state = DeliveryState::parse(value).ok_or_else(|| {
                    FourthwallError::invalid(format!(
                        "status must be one of {}; got '{value}'",
                        DeliveryState::names()
                    ))
                })?;
                query.status = Some(state);
            }
            "order" => {
                // Any id up to the longest an order may have: one that names no order matches
                // nothing (a filter, not a reference that must exist).
                let length = value.chars().count();
                if !(1..=waybill_core::order::MAX_ID_LEN).contains(&length) {
                    return Err(FourthwallError::invalid(format!(
                        "order must be 1 to {} characters long; got {length}",
                        waybill_core::order::MAX_ID_LEN
                    )));
                }
                query.order = Some(value.clone());
            }
            _ => {}
        }
    }
    if !(1..=MAX_EVENTS_PAGE_SIZE).contains(&size) {
        return Err(FourthwallError::invalid(format!(
            "size must be between 1 and {MAX_EVENTS_PAGE_SIZE}; got {size}"
        )));
    }
    query.limit = size;
    query.offset = u64::from(page) * u64::from(size);
    Ok((page, size, query))
}

fn not_found(id: &str) -> FourthwallError {
    FourthwallError::new(
        StatusCode::NOT_FOUND,
        json!({ "code": "WEBHOOK_NOT_FOUND", "id": id }),
    )
}

async fn check(
    state: &AppState,
    request: &WebhookConfigRequest,
) -> Result<String, FourthwallError> {
    if request.allowed_types.is_empty() {
        return Err(FourthwallError::invalid("allowedTypes must not be empty"));
    }
    if let Some(bad) = request.allowed_types.iter().find(|t| !is_event_type(t)) {
        return Err(FourthwallError::invalid(format!(
            "allowedTypes: '{bad}' is not a Fourthwall event type; use ORDER_PLACED or \
             ORDER_UPDATED (Waybill sends these two; Fourthwall's other types are accepted \
             and never fire)"
        )));
    }
    let url = request.url.trim();
    state
        .url_policy
        .check_url(url)
        .await
        .map_err(|refusal| match refusal {
            UrlRefusal::AddressNotAllowed(_) => FourthwallError::new(
                StatusCode::BAD_REQUEST,
                json!({ "code": "WEBHOOK_URI_IP_NOT_ALLOWED", "uri": url }),
            ),
            other => FourthwallError::invalid(format!("url: {}", other.message())),
        })?;
    Ok(url.to_owned())
}

#[utoipa::path(get, path = "/open-api/v1.0/webhooks", tag = "Fourthwall webhooks",
    responses((status = 200, description = "The store's webhook configurations", body = WebhookConfigList),
        (status = 401, description = "Missing or invalid credentials", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
) -> Result<Json<WebhookConfigList>, FourthwallError> {
    let list = state
        .store
        .list_webhooks(&store_id, WebhookFlavor::Fourthwall)
        .await?;
    Ok(Json(WebhookConfigList {
        results: list.iter().map(|w| WebhookConfigV1::new(w, None)).collect(),
    }))
}

#[utoipa::path(post, path = "/open-api/v1.0/webhooks", tag = "Fourthwall webhooks",
    request_body = WebhookConfigRequest,
    responses((status = 200, description = "Created; `secret` is the store's webhook HMAC secret", body = WebhookConfigV1),
        (status = 400, description = "Invalid request, or a URL at a private address (WEBHOOK_URI_IP_NOT_ALLOWED)", body = crate::openapi::FourthwallErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = crate::openapi::FourthwallErrorBody),
        (status = 413, description = "Body over 1 MiB", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
    JsonBody(request, _): JsonBody<WebhookConfigRequest, FourthwallError>,
) -> Result<Json<WebhookConfigV1>, FourthwallError> {
    let url = check(&state, &request).await?;
    let secret = state
        .store
        .store_webhook_secret(&store_id, &sign::generate_store_secret())
        .await?;
    let (record, _) = state
        .store
        .create_webhook(
            &store_id,
            NewWebhook {
                flavor: WebhookFlavor::Fourthwall,
                url,
                topics: request.allowed_types,
                external_id: None,
                bearer_token: None,
                // Fourthwall deliveries are signed with the store's secret; this one is unused.
                secret: sign::generate_secret(),
            },
        )
        .await?;
    Ok(Json(WebhookConfigV1::new(&record, Some(secret))))
}

#[utoipa::path(get, path = "/open-api/v1.0/webhooks/{webhookId}", tag = "Fourthwall webhooks",
    params(("webhookId" = String, Path, description = "Webhook id")),
    responses((status = 200, description = "The webhook configuration", body = WebhookConfigV1),
        (status = 401, description = "Missing or invalid credentials", body = crate::openapi::FourthwallErrorBody),
        (status = 404, description = "Unknown webhook (WEBHOOK_NOT_FOUND)", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
    FwPath(webhook_id): FwPath<String>,
) -> Result<Json<WebhookConfigV1>, FourthwallError> {
    let record = state
        .store
        .get_webhook(&store_id, &webhook_id)
        .await?
        .filter(|w| w.flavor == WebhookFlavor::Fourthwall)
        .ok_or_else(|| not_found(&webhook_id))?;
    Ok(Json(WebhookConfigV1::new(&record, None)))
}

#[utoipa::path(put, path = "/open-api/v1.0/webhooks/{webhookId}", tag = "Fourthwall webhooks",
    params(("webhookId" = String, Path, description = "Webhook id")), request_body = WebhookConfigRequest,
    responses((status = 200, description = "Updated", body = WebhookConfigV1),
        (status = 400, description = "Invalid request or URL", body = crate::openapi::FourthwallErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = crate::openapi::FourthwallErrorBody),
        (status = 404, description = "Unknown webhook (WEBHOOK_NOT_FOUND)", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn update_webhook(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
    FwPath(webhook_id): FwPath<String>,
    JsonBody(request, _): JsonBody<WebhookConfigRequest, FourthwallError>,
) -> Result<Json<WebhookConfigV1>, FourthwallError> {
    let url = check(&state, &request).await?;
    let existing = state.store.get_webhook(&store_id, &webhook_id).await?;
    if !existing.is_some_and(|w| w.flavor == WebhookFlavor::Fourthwall) {
        return Err(not_found(&webhook_id));
    }
    let record = state
        .store
        .update_webhook(
            &store_id,
            &webhook_id,
            WebhookUpdate {
                url: Some(url),
                topics: Some(request.allowed_types),
                bearer_token: None,
                enabled: Some(true),
            },
        )
        .await?
        .ok_or_else(|| not_found(&webhook_id))?;
    Ok(Json(WebhookConfigV1::new(&record, None)))
}

#[utoipa::path(delete, path = "/open-api/v1.0/webhooks/{webhookId}", tag = "Fourthwall webhooks",
    params(("webhookId" = String, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid credentials", body = crate::openapi::FourthwallErrorBody),
        (status = 404, description = "Unknown webhook (WEBHOOK_NOT_FOUND)", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
    FwPath(webhook_id): FwPath<String>,
) -> Result<StatusCode, FourthwallError> {
    let existing = state.store.get_webhook(&store_id, &webhook_id).await?;
    if !existing.is_some_and(|w| w.flavor == WebhookFlavor::Fourthwall)
        || !state.store.delete_webhook(&store_id, &webhook_id).await?
    {
        return Err(not_found(&webhook_id));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/open-api/v1.0/webhook-events", tag = "Fourthwall webhooks",
    params(("page" = Option<u32>, Query, minimum = 0, maximum = 2147483647, description = "Page, from 0"),
        ("size" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, default 100"),
        ("type" = inline(Option<SentType>), Query, description = "Only events of this type"),
        ("status" = inline(Option<crate::dialects::redo::webhooks::DeliveryStatusName>), Query, description = "Only events in this state"),
        ("order" = Option<String>, Query, min_length = 1, max_length = 255, description = "Only events of this order: its `id` or its `friendlyId`")),
    responses((status = 200, description = "A page of the events sent (or to be sent) to the store's webhooks, newest first", body = WebhookEventList),
        (status = 400, description = "INVALID_REQUEST: a bad page, size, type, status or order (the message names the parameter and the accepted values)", body = crate::openapi::FourthwallErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
    RawQuery(raw): RawQuery,
) -> Result<Json<WebhookEventList>, FourthwallError> {
    let (page, size, query) = parse_events_query(raw.as_deref())?;
    let total = state
        .store
        .count_webhook_deliveries(&store_id, query.clone())
        .await?;
    let list = state
        .store
        .list_webhook_deliveries(&store_id, query)
        .await?;
    Ok(Json(WebhookEventList {
        results: list.iter().map(WebhookEventV1::from).collect(),
        total,
        page,
        size,
        total_pages: total.div_ceil(u64::from(size)),
    }))
}

impl From<&DeliveryRecord> for WebhookEventV1 {
    fn from(d: &DeliveryRecord) -> Self {
        WebhookEventV1 {
            id: d.event_id.clone(),
            webhook_id: d.webhook_id.clone(),
            event_type: fourthwall_type(&d.event_type).to_owned(),
            order_id: d.order_id.clone(),
            order_friendly_id: d.order_external_id.clone(),
            created_at: time::format(d.event_at),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_response_code: d.last_response_code,
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at.map(time::format),
        }
    }
}

#[utoipa::path(get, path = "/open-api/v1.0/webhook-events/{eventId}", tag = "Fourthwall webhooks",
    params(("eventId" = String, Path, description = "Event id (the envelope's `id`)")),
    responses((status = 200, description = "The event's delivery (to the first of the store's webhooks that got it)", body = WebhookEventV1),
        (status = 401, description = "Missing or invalid credentials", body = crate::openapi::FourthwallErrorBody),
        (status = 404, description = "Unknown event (WEBHOOK_EVENT_NOT_FOUND)", body = crate::openapi::FourthwallErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, event_id = %event_id))]
pub(crate) async fn get_event(
    State(state): State<AppState>,
    Caller(store_id, _): Caller<FourthwallError>,
    FwPath(event_id): FwPath<String>,
) -> Result<Json<WebhookEventV1>, FourthwallError> {
    let list = state
        .store
        .list_webhook_deliveries(
            &store_id,
            DeliveryQuery {
                event_id: Some(event_id.clone()),
                ..DeliveryQuery::new(WebhookFlavor::Fourthwall, 1)
            },
        )
        .await?;
    let event = list.first().ok_or_else(|| {
        FourthwallError::new(
            StatusCode::NOT_FOUND,
            json!({ "code": "WEBHOOK_EVENT_NOT_FOUND", "id": event_id }),
        )
    })?;
    Ok(Json(WebhookEventV1::from(event)))
}
