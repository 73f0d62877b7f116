//! Redo-shaped webhook subscriptions under `/v2.2/stores/{storeId}/webhooks`, with replay, the
//! delivery log and manual redelivery. Same auth and error format as the order endpoints.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use waybill_core::order::validate_id;
use waybill_core::time;
use waybill_store::webhooks::REDO_TOPICS;
use waybill_store::{
    AttemptQuery, AttemptRecord, DeliveryQuery, DeliveryRecord, DeliveryState, NewWebhook,
    WebhookFlavor, WebhookRecord, WebhookUpdate,
};

use super::{Body, RedoError, RedoPath, RedoStore};
use crate::AppState;
use crate::dialects::common;
use crate::webhooks::sign;
use crate::webhooks::ssrf::UrlRefusal;

/// `{"webhook": {...}}`: the body of create and update.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRequest {
    webhook: WebhookInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WebhookInput {
    callback: CallbackInput,
    /// `order`, `fulfillment` or `return`.
    #[schema(schema_with = topic_schema)]
    topic: String,
    /// The caller's key: creating again with the same one updates that webhook (200).
    #[serde(default)]
    #[schema(schema_with = common::optional_id_schema)]
    external_id: Option<String>,
    /// Update only: `true` re-enables a disabled webhook, `false` pauses it.
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CallbackInput {
    /// An http(s) URL of at most 2,048 characters, without credentials.
    #[schema(schema_with = common::callback_url_schema)]
    url: String,
    #[serde(default)]
    auth: Option<AuthInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
struct AuthInput {
    #[serde(default)]
    bearer: Option<BearerInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
struct BearerInput {
    /// Sent as `Authorization: Bearer <token>` with every delivery.
    #[schema(schema_with = common::text_schema::<1024>)]
    token: String,
}

fn topic_schema() -> utoipa::openapi::schema::Object {
    common::enum_schema(REDO_TOPICS.iter().copied())
}

/// A webhook as answered. `secret` appears only in the answer that created it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookJson {
    id: String,
    callback: CallbackJson,
    topic: String,
    external_id: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: String,
    updated_at: String,
    /// The Standard Webhooks signing secret (`whsec_…`), shown once, on creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct CallbackJson {
    url: String,
    /// `{"bearer": {"token": "***"}}` when a token is set (never echoed), else null.
    auth: Option<serde_json::Value>,
}

impl WebhookJson {
    fn new(w: &WebhookRecord, with_secret: bool) -> Self {
        WebhookJson {
            id: w.id.clone(),
            callback: CallbackJson {
                url: w.url.clone(),
                auth: w
                    .bearer_token
                    .as_ref()
                    .map(|_| json!({ "bearer": { "token": "***" } })),
            },
            topic: w.topics.join(","),
            external_id: w.external_id.clone(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone(),
            created_at: time::format(w.created_at),
            updated_at: time::format(w.updated_at),
            secret: with_secret.then(|| w.secret.clone()),
        }
    }
}

/// `{"webhook": {...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEnvelope {
    webhook: WebhookJson,
}

/// `{"webhooks": [...]}`
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    webhooks: Vec<WebhookJson>,
}

/// `{"start": date-time}`: replay the events the webhook selects that were written at or after
/// `start` (`since` is accepted too). Without `start`, every event since the webhook was
/// created: what it received or would have received. An explicit `start` earlier than that
/// also sends older events.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReplayRequest {
    #[serde(default, alias = "since")]
    #[schema(schema_with = common::optional_date_time_schema)]
    start: Option<String>,
}

/// How many deliveries were (re)queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enqueued {
    enqueued: u64,
}

/// One logged attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptJson {
    id: String,
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    order_id: String,
    seq: i64,
    attempt: u32,
    at: String,
    status_code: Option<u16>,
    latency_ms: u64,
    error: Option<String>,
    response_excerpt: Option<String>,
}

impl From<&AttemptRecord> for AttemptJson {
    fn from(a: &AttemptRecord) -> Self {
        AttemptJson {
            id: a.id.to_string(),
            event_id: a.event_id.clone(),
            event_type: a.event_type.clone(),
            order_id: a.order_id.clone(),
            seq: a.seq,
            attempt: a.attempt,
            at: time::format(a.at),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error.clone(),
            response_excerpt: a.response_excerpt.clone(),
        }
    }
}

/// `{"deliveries": [...]}`, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptList {
    deliveries: Vec<AttemptJson>,
}

fn not_found(id: &str) -> RedoError {
    RedoError::plain(
        StatusCode::NOT_FOUND,
        format!("webhook '{id}' was not found"),
    )
}

/// The store's Redo-shaped webhook `id`; other flavors (Fourthwall's, automations' own) are
/// not this API's to see or change.
async fn ensure_redo(
    state: &AppState,
    store_id: &str,
    id: &str,
) -> Result<WebhookRecord, RedoError> {
    match state.store.get_webhook(store_id, id).await? {
        Some(w) if w.flavor == WebhookFlavor::Redo => Ok(w),
        _ => Err(not_found(id)),
    }
}

fn bad(message: impl Into<String>) -> RedoError {
    RedoError::plain(StatusCode::BAD_REQUEST, message)
}

struct Checked {
    url: String,
    topic: String,
    bearer: Option<String>,
}

async fn check(state: &AppState, input: &WebhookInput) -> Result<Checked, RedoError> {
    if !REDO_TOPICS.contains(&input.topic.as_str()) {
        return Err(bad(format!(
            "webhook.topic must be one of {}; got '{}'",
            REDO_TOPICS.join(", "),
            input.topic
        )));
    }
    if let Some(external_id) = &input.external_id {
        validate_id("webhook.externalId", external_id)?;
    }
    let url = state
        .url_policy
        .check_url(input.callback.url.trim())
        .await
        .map_err(|refusal| match refusal {
            UrlRefusal::Invalid(m) | UrlRefusal::AddressNotAllowed(m) => {
                bad(format!("webhook.callback.url: {m}"))
            }
        })?;
    let bearer = match input.callback.auth.as_ref().and_then(|a| a.bearer.as_ref()) {
        Some(b) => {
            let token = b.token.trim();
            if !common::is_text(&b.token, 1024) {
                return Err(bad(
                    "webhook.callback.auth.bearer.token must be 1 to 1024 characters without control characters",
                ));
            }
            Some(token.to_owned())
        }
        None => None,
    };
    Ok(Checked {
        url: url.to_string(),
        topic: input.topic.clone(),
        bearer,
    })
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/webhooks", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id")),
    responses((status = 200, description = "The store's webhooks", body = WebhookList),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
) -> Result<Json<WebhookList>, RedoError> {
    let list = state
        .store
        .list_webhooks(&store_id, WebhookFlavor::Redo)
        .await?;
    Ok(Json(WebhookList {
        webhooks: list.iter().map(|w| WebhookJson::new(w, false)).collect(),
    }))
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/webhooks", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id")), request_body = WebhookRequest,
    responses((status = 201, description = "Created; the answer carries the signing secret, shown only here", body = WebhookEnvelope),
        (status = 200, description = "The webhook with the same externalId was updated", body = WebhookEnvelope),
        (status = 400, description = "Validation error, or a callback URL that points at a private address", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    crate::extract::JsonBody(request, _): Body<WebhookRequest>,
) -> Result<Response, RedoError> {
    let input = request.webhook;
    let checked = check(&state, &input).await?;
    let (record, created) = state
        .store
        .create_webhook(
            &store_id,
            NewWebhook {
                flavor: WebhookFlavor::Redo,
                url: checked.url,
                topics: vec![checked.topic],
                external_id: input.external_id,
                bearer_token: checked.bearer,
                secret: sign::generate_secret(),
            },
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(WebhookEnvelope {
            webhook: WebhookJson::new(&record, created),
        }),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/webhooks/{webhookId}", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id"), ("webhookId" = String, Path, description = "Webhook id")),
    responses((status = 200, description = "The webhook", body = WebhookEnvelope),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhook not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, webhook_id)): RedoPath<(String, String)>,
) -> Result<Json<WebhookEnvelope>, RedoError> {
    let record = ensure_redo(&state, &store_id, &webhook_id).await?;
    Ok(Json(WebhookEnvelope {
        webhook: WebhookJson::new(&record, false),
    }))
}

#[utoipa::path(put, path = "/v2.2/stores/{storeId}/webhooks/{webhookId}", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id"), ("webhookId" = String, Path, description = "Webhook id")),
    request_body = WebhookRequest,
    responses((status = 200, description = "Updated (callback, auth and topic are replaced; `enabled: true` re-enables)", body = WebhookEnvelope),
        (status = 400, description = "Validation error", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhook not found", body = crate::openapi::RedoErrorBody),
        (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn update_webhook(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, webhook_id)): RedoPath<(String, String)>,
    crate::extract::JsonBody(request, _): Body<WebhookRequest>,
) -> Result<Json<WebhookEnvelope>, RedoError> {
    ensure_redo(&state, &store_id, &webhook_id).await?;
    let input = request.webhook;
    let checked = check(&state, &input).await?;
    let record = state
        .store
        .update_webhook(
            &store_id,
            &webhook_id,
            WebhookUpdate {
                url: Some(checked.url),
                topics: Some(vec![checked.topic]),
                bearer_token: Some(checked.bearer),
                enabled: input.enabled,
            },
        )
        .await?
        .ok_or_else(|| not_found(&webhook_id))?;
    Ok(Json(WebhookEnvelope {
        webhook: WebhookJson::new(&record, false),
    }))
}

#[utoipa::path(delete, path = "/v2.2/stores/{storeId}/webhooks/{webhookId}", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id"), ("webhookId" = String, Path, description = "Webhook id")),
    responses((status = 200, description = "Deleted with its delivery log: `{\"success\": true}`"),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhook not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, webhook_id)): RedoPath<(String, String)>,
) -> Result<Json<serde_json::Value>, RedoError> {
    ensure_redo(&state, &store_id, &webhook_id).await?;
    if !state.store.delete_webhook(&store_id, &webhook_id).await? {
        return Err(not_found(&webhook_id));
    }
    Ok(Json(json!({ "success": true })))
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/webhooks/{webhookId}/replay", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id"), ("webhookId" = String, Path, description = "Webhook id")),
    request_body = ReplayRequest,
    responses((status = 202, description = "The webhook's events since `start` (default: since the webhook was created) are queued again, in per-order order", body = Enqueued),
        (status = 400, description = "Validation error", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhook not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn replay_webhook(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, webhook_id)): RedoPath<(String, String)>,
    crate::extract::JsonBody(request, _): Body<ReplayRequest>,
) -> Result<Response, RedoError> {
    let webhook = ensure_redo(&state, &store_id, &webhook_id).await?;
    let since = match &request.start {
        Some(start) => time::parse_datetime("start", start)?,
        None => webhook.created_at,
    };
    let count = state
        .store
        .replay_webhook(&store_id, &webhook_id, since)
        .await?
        .ok_or_else(|| not_found(&webhook_id))?;
    Ok((StatusCode::ACCEPTED, Json(Enqueued { enqueued: count })).into_response())
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/webhooks/{webhookId}/deliveries", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id"), ("webhookId" = String, Path, description = "Webhook id"),
        ("X-Page-Size" = Option<String>, Header, nullable = false, pattern = "^0*(?:[1-9][0-9]?|[1-4][0-9]{2}|500)$", description = "Page size, 1 to 500 (default 20)"),
        ("X-Page-Continue" = Option<String>, Header, nullable = false, pattern = "^[+-]?[0-9]{1,18}$", description = "The X-Page-Next of the previous page")),
    responses((status = 200, description = "Every attempt, newest first; `X-Page-Next` is set when more follow", body = AttemptList),
        (status = 400, description = "Invalid paging header", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhook not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, webhook_id)): RedoPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, RedoError> {
    ensure_redo(&state, &store_id, &webhook_id).await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let size = super::page_size(&headers)?;
    let before = match header("x-page-continue") {
        Some(v) => Some(
            v.trim()
                .parse::<i64>()
                .map_err(|_| bad("X-Page-Continue is not a token this API issued"))?,
        ),
        None => None,
    };
    let mut page = state
        .store
        .list_webhook_attempts(
            &store_id,
            AttemptQuery {
                webhook_id: Some(webhook_id),
                flavor: WebhookFlavor::Redo,
                before,
                limit: size + 1,
            },
        )
        .await?;
    let more = page.len() > size as usize;
    page.truncate(size as usize);
    let mut response = Json(AttemptList {
        deliveries: page.iter().map(AttemptJson::from).collect(),
    })
    .into_response();
    if more
        && let Some(last) = page.last()
        && let Ok(value) = HeaderValue::from_str(&last.id.to_string())
    {
        response.headers_mut().insert("x-page-next", value);
    }
    Ok(response)
}

/// A delivery's state in the delivery log (documents the `status` filter and field).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RedoDeliveryStatus)]
pub enum DeliveryStatusName {
    /// Waiting for its first attempt or a retry, or being sent.
    Pending,
    Delivered,
    /// Given up after the last retry (replay or redeliver to send it again).
    Failed,
    /// Still to be sent, but the webhook is disabled.
    Disabled,
}

/// One delivery of an event to the webhook.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJson {
    /// The delivery's id; also what `X-Page-Next` carries.
    id: String,
    /// The event's id (its `webhook-id` header).
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    /// The order's id as this API names it (`/orders/{orderId}`); kept after the order is
    /// deleted. Null only for orders deleted before Waybill kept it.
    order_id: Option<String>,
    /// Waybill's internal id of the order.
    internal_order_id: String,
    /// The event's number within its order.
    seq: i64,
    status: DeliveryStatusName,
    /// Attempts so far (reset by a replay or redelivery).
    attempts: u32,
    /// The HTTP status of the last attempt, if it got one.
    last_response_code: Option<u16>,
    last_error: Option<String>,
    /// When the next attempt is due; only while `pending`.
    next_attempt_at: Option<String>,
    /// When the event was written.
    event_at: String,
    /// When the delivery was queued.
    created_at: String,
}

impl From<&DeliveryRecord> for DeliveryJson {
    fn from(d: &DeliveryRecord) -> Self {
        DeliveryJson {
            id: d.id.to_string(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            order_id: d.order_external_id.clone(),
            internal_order_id: d.order_id.clone(),
            seq: d.seq,
            status: match d.status {
                DeliveryState::Pending => DeliveryStatusName::Pending,
                DeliveryState::Delivered => DeliveryStatusName::Delivered,
                DeliveryState::Failed => DeliveryStatusName::Failed,
                DeliveryState::Disabled => DeliveryStatusName::Disabled,
            },
            attempts: d.attempts,
            last_response_code: d.last_response_code,
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at.map(time::format),
            event_at: time::format(d.event_at),
            created_at: time::format(d.created_at),
        }
    }
}

/// `{"events": [...]}`, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    events: Vec<DeliveryJson>,
}

/// The `status` and `order` filters of the delivery log; other parameters are ignored.
fn delivery_filters(
    raw: Option<&str>,
) -> Result<(Option<DeliveryState>, Option<String>), RedoError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| bad(format!("the query string is malformed: {e}")))?;
    let (mut status, mut order) = (None, None);
    for (key, value) in pairs {
        match key.as_str() {
            "status" => {
                status = Some(DeliveryState::parse(&value).ok_or_else(|| {
                    bad(format!(
                        "status must be one of {}; got '{value}'",
                        DeliveryState::names()
                    ))
                })?);
            }
            "order" => {
                // Any id up to the longest an order may have: one that names no order matches
                // nothing (a filter, not a reference that must exist).
                let length = value.chars().count();
                if !(1..=waybill_core::order::MAX_ID_LEN).contains(&length) {
                    return Err(bad(format!(
                        "order must be 1 to {} characters long; got {length}",
                        waybill_core::order::MAX_ID_LEN
                    )));
                }
                order = Some(value);
            }
            _ => {}
        }
    }
    Ok((status, order))
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/webhooks/{webhookId}/events", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id"), ("webhookId" = String, Path, description = "Webhook id"),
        ("status" = inline(Option<DeliveryStatusName>), Query, description = "Only deliveries in this state"),
        ("order" = Option<String>, Query, min_length = 1, max_length = 255, description = "Only deliveries of this order: its `orderId` (also one since deleted) or Waybill's internal id"),
        ("X-Page-Size" = Option<String>, Header, nullable = false, pattern = "^0*(?:[1-9][0-9]?|[1-4][0-9]{2}|500)$", description = "Page size, 1 to 500 (default 20)"),
        ("X-Page-Continue" = Option<String>, Header, nullable = false, pattern = "^[+-]?[0-9]{1,18}$", description = "The X-Page-Next of the previous page (with the same filters)")),
    responses((status = 200, description = "The delivery log: one entry per event sent (or to be sent) to the webhook, newest first; `X-Page-Next` is set when more follow", body = DeliveryList),
        (status = 400, description = "A bad filter (the message names the parameter and the accepted values) or paging header", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhook not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, webhook_id)): RedoPath<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, RedoError> {
    ensure_redo(&state, &store_id, &webhook_id).await?;
    let (status, order) = delivery_filters(raw.as_deref())?;
    let size = super::page_size(&headers)?;
    let before = match headers.get("x-page-continue") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| bad("X-Page-Continue is not a token this API issued"))?,
        ),
        None => None,
    };
    let mut page = state
        .store
        .list_webhook_deliveries(
            &store_id,
            DeliveryQuery {
                webhook_id: Some(webhook_id),
                status,
                order,
                before,
                ..DeliveryQuery::new(WebhookFlavor::Redo, size + 1)
            },
        )
        .await?;
    let more = page.len() > size as usize;
    page.truncate(size as usize);
    let mut response = Json(DeliveryList {
        events: page.iter().map(DeliveryJson::from).collect(),
    })
    .into_response();
    if more
        && let Some(last) = page.last()
        && let Ok(value) = HeaderValue::from_str(&last.id.to_string())
    {
        response.headers_mut().insert("x-page-next", value);
    }
    Ok(response)
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/webhooks/{webhookId}/deliveries/{eventId}/redeliver", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id"), ("webhookId" = String, Path, description = "Webhook id"), ("eventId" = String, Path, description = "The event's id (its `webhook-id`)")),
    responses((status = 202, description = "The event is queued again for this webhook", body = Enqueued),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhook or event not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id, event_id = %event_id))]
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, webhook_id, event_id)): RedoPath<(String, String, String)>,
) -> Result<Response, RedoError> {
    ensure_redo(&state, &store_id, &webhook_id).await?;
    if !state
        .store
        .redeliver_webhook_event(&store_id, &webhook_id, &event_id)
        .await?
    {
        return Err(RedoError::plain(
            StatusCode::NOT_FOUND,
            format!("event '{event_id}' was not found in this store"),
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(Enqueued { enqueued: 1 })).into_response())
}

/// `{"overlapHours": 1–168}` (default 24): how long the old secret keeps signing.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateRequest {
    #[serde(default, deserialize_with = "common::optional_integer")]
    #[schema(minimum = 1, maximum = 168)]
    overlap_hours: Option<i64>,
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/webhooks/{webhookId}/rotate-secret", tag = "Redo webhooks",
    params(("storeId" = String, Path, description = "Store id"), ("webhookId" = String, Path, description = "Webhook id")),
    request_body(content = Option<RotateRequest>, description = "Optional; an empty body keeps the default overlap"),
    responses((status = 200, description = "The webhook with its new secret (shown only here); until the overlap ends, deliveries carry signatures by both secrets", body = WebhookEnvelope),
        (status = 400, description = "Bad overlap", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Webhook not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, webhook_id = %webhook_id))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, webhook_id)): RedoPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<WebhookEnvelope>, RedoError> {
    ensure_redo(&state, &store_id, &webhook_id).await?;
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        crate::extract::parse_json(&body).map_err(|e| bad(e.message()))?
    };
    let hours = match request.overlap_hours {
        None => 24,
        Some(h @ 1..=168) => h,
        Some(h) => return Err(bad(format!("overlapHours must be from 1 to 168; got {h}"))),
    };
    let rotated = state
        .store
        .rotate_webhook_secret(
            &store_id,
            &webhook_id,
            &sign::generate_secret(),
            std::time::Duration::from_secs(hours.unsigned_abs() * 3600),
        )
        .await?
        .ok_or_else(|| not_found(&webhook_id))?;
    Ok(Json(WebhookEnvelope {
        webhook: WebhookJson::new(&rotated, true),
    }))
}
