//! Automations under `/v2.2/stores/{storeId}/automations` (a Waybill extension in Redo's
//! style): rules "when this status or event happens to a fulfillment (or this status to a
//! return), email the customer or call a webhook", and the record of their runs.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waybill_core::time;
use waybill_store::{
    AutomationAction, AutomationRecord, AutomationRun, AutomationTrigger, NewAutomation,
};

use super::{Body, RedoError, RedoPath, RedoStore};
use crate::AppState;
use crate::automations::templates::{self, Kind};
use crate::dialects::common;
use crate::webhooks::sign;
use crate::webhooks::ssrf::UrlRefusal;

/// `{"automation": {...}}`: the body of create and replace.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AutomationRequest {
    automation: AutomationInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AutomationInput {
    #[schema(schema_with = common::text_schema::<200>)]
    pub(crate) name: String,
    /// A shipment status (`in_transit`, `delivered`, …) or an event (`stalled_in_transit`,
    /// `delayed`, `arriving_early`) of a fulfillment, or a return reaching a status
    /// (`return.requested`, `return.in_transit`, `return.received`, `return.closed`,
    /// `return.rejected`).
    #[schema(schema_with = trigger_schema)]
    pub(crate) trigger: String,
    /// Only fulfillments (returns) with a package of this carrier (free text is normalised:
    /// "U.P.S." is UPS; blank is none).
    #[serde(default)]
    #[schema(max_length = 100)]
    pub(crate) carrier: Option<String>,
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    /// An object (an internally tagged enum would also take an array of its fields).
    #[serde(deserialize_with = "crate::dialects::objects::object")]
    #[schema(schema_with = action_schema)]
    pub(crate) action: ActionInput,
}

/// Every trigger name [`AutomationTrigger::parse`] takes from a client.
fn trigger_schema() -> utoipa::openapi::schema::Object {
    common::enum_schema(AutomationTrigger::names())
}

/// The action's schema, written out: each variant refuses unknown fields (as the server does),
/// templates are at most 16,384 characters, and a webhook body is a JSON object. Template syntax and what a template renders are checked when the automation is
/// saved; the patterns here describe template-free text that always passes.
fn action_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let text = common::non_blank_pattern();
    let limit = MAX_TEMPLATE;
    let schema = serde_json::json!({
        "description": "`{\"type\": \"email\", \"subject\", \"body\", \"to\"?}` or `{\"type\": \"webhook\", \"url\", \"body\"}`. Templates are minijinja; they see `order`, `fulfillment` (a shipment trigger) or `return` (a return trigger: `id`, `status`, `shipment_status`, `note`, `lines` with `reason`, `packages`), `carrier`, `tracking_number`, `tracking_url`, `eta`, `last_event` and `trigger`. A webhook body must render a JSON object.",
        "oneOf": [
            {
                "type": "object",
                "required": ["type", "subject", "body"],
                "additionalProperties": false,
                "properties": {
                    "type": {"type": "string", "enum": ["email"]},
                    "subject": {"type": "string", "minLength": 1, "maxLength": limit, "pattern": text, "description": "A template"},
                    "body": {"type": "string", "minLength": 1, "maxLength": limit, "pattern": text, "description": "An HTML template"},
                    "to": {"oneOf": [
                        {"type": "null"},
                        {"type": "string", "format": "email", "pattern": "^[A-Za-z0-9_+-]+(\\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$"},
                        {"type": "string", "pattern": format!("^[{}]*$", common::WHITESPACE)}
                    ], "description": "The recipient; the order's customer when left out or blank"}
                }
            },
            {
                "type": "object",
                "required": ["type", "url", "body"],
                "additionalProperties": false,
                "properties": {
                    "type": {"type": "string", "enum": ["webhook"]},
                    "url": common::callback_url_schema(),
                    "body": {"type": "string", "maxLength": limit,
                             "pattern": "^\\{(\"[a-z_]{1,20}\": ?\"[ !#-\\[\\]-z|~]{0,50}\")?\\}$",
                             "description": "A JSON template that renders a JSON object"}
                }
            }
        ]
    });
    serde_json::from_value(schema).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the automation action schema does not parse");
        utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::default())
    })
}

/// `{"type": "email", "subject", "body", "to"?}` or `{"type": "webhook", "url", "body"}`.
/// Templates are minijinja; they see `order`, `fulfillment` (a shipment trigger) or `return`
/// (a return trigger), `carrier`, `tracking_number`, `tracking_url`, `eta`, `last_event` and
/// `trigger`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum ActionInput {
    Email {
        subject: String,
        body: String,
        #[serde(default)]
        to: Option<String>,
    },
    Webhook {
        url: String,
        body: String,
    },
}

/// An automation as answered. `secret` (the webhook action's signing secret) appears only in
/// the answer that created its webhook.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutomationJson {
    id: String,
    name: String,
    trigger: String,
    carrier: Option<String>,
    enabled: bool,
    #[schema(value_type = Object)]
    action: serde_json::Value,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl AutomationJson {
    fn new(a: &AutomationRecord, secret: Option<String>) -> Self {
        AutomationJson {
            id: a.id.clone(),
            name: a.name.clone(),
            trigger: a.trigger.as_str().to_owned(),
            carrier: a.carrier.clone(),
            enabled: a.enabled,
            action: serde_json::to_value(&a.action).unwrap_or(serde_json::Value::Null),
            created_at: time::format(a.created_at),
            updated_at: time::format(a.updated_at),
            secret,
        }
    }
}

/// `{"automation": {...}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationEnvelope {
    automation: AutomationJson,
}

/// `{"automations": [...]}`, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationList {
    automations: Vec<AutomationJson>,
}

/// One run of an automation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunJson {
    id: String,
    /// Waybill's internal order id.
    order_id: String,
    /// The fulfillment a shipment trigger fired for (null for a return trigger).
    fulfillment_id: Option<String>,
    /// The return a return trigger fired for (null for a shipment trigger).
    return_id: Option<String>,
    trigger: String,
    /// `pending`, `running`, `succeeded` or `failed`.
    status: String,
    attempts: u32,
    last_error: Option<String>,
    detail: Option<String>,
    /// A webhook action's delivery: `pending`, `in_flight`, `delivered` or `failed`.
    delivery_status: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<&AutomationRun> for RunJson {
    fn from(r: &AutomationRun) -> Self {
        RunJson {
            id: r.id.to_string(),
            order_id: r.order_id.clone(),
            fulfillment_id: r.fulfillment_id.clone(),
            return_id: r.return_id.clone(),
            trigger: r.trigger.clone(),
            status: r.status.clone(),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            detail: r.detail.clone(),
            delivery_status: r.delivery_status.clone(),
            created_at: time::format(r.created_at),
            updated_at: time::format(r.updated_at),
        }
    }
}

/// `{"runs": [...]}`, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    runs: Vec<RunJson>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RunQuery {
    /// At most this many runs (1–500, default 50).
    #[serde(default)]
    limit: Option<u32>,
}

fn bad(message: impl Into<String>) -> RedoError {
    RedoError::plain(StatusCode::BAD_REQUEST, message)
}

fn not_found(id: &str) -> RedoError {
    RedoError::plain(
        StatusCode::NOT_FOUND,
        format!("automation '{id}' was not found"),
    )
}

/// Longest template accepted, in characters (at most 64 KiB of UTF-8).
const MAX_TEMPLATE: usize = 16 * 1024;

fn template(field: &str, kind: Kind, source: &str) -> Result<String, RedoError> {
    if source.trim().is_empty() || source.chars().count() > MAX_TEMPLATE {
        return Err(bad(format!(
            "{field} must be a template of 1 to {MAX_TEMPLATE} characters"
        )));
    }
    templates::validate(kind, source).map_err(|e| bad(format!("{field}: {e}")))?;
    Ok(source.to_owned())
}

/// Validates a request into the store's form; `enabled` defaults to `current` (or true).
pub(crate) async fn check(
    state: &AppState,
    input: AutomationInput,
    current: Option<bool>,
) -> Result<NewAutomation, RedoError> {
    if !common::is_text(&input.name, 200) {
        return Err(bad(
            "automation.name must be 1 to 200 characters without control characters",
        ));
    }
    let name = input.name.trim().to_owned();
    let trigger = AutomationTrigger::parse(&input.trigger)
        .ok()
        .filter(|t| {
            *t != AutomationTrigger::Shipment(waybill_core::StatusOrEvent::Status(
                waybill_core::ShipmentStatus::Unknown,
            ))
        })
        .ok_or_else(|| {
            bad(format!(
                "automation.trigger must be a shipment status, an event (stalled_in_transit, delayed, arriving_early) or a return status (return.requested, return.in_transit, return.received, return.closed, return.rejected); got '{}'",
                input.trigger
            ))
        })?;
    let carrier = match input.carrier.as_deref() {
        Some(text) if text.chars().count() > 100 => {
            return Err(bad("automation.carrier must be at most 100 characters"));
        }
        _ => input.carrier.as_deref().map(str::trim),
    };
    let carrier = match carrier {
        None | Some("") => None,
        Some(text) => Some(
            waybill_carriers::normalize_carrier_name(text)
                .map_or_else(|| text.to_owned(), |c| c.name.to_owned()),
        ),
    };
    let action =
        match input.action {
            ActionInput::Email { subject, body, to } => {
                let to = match to.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(address) => {
                        address.parse::<lettre::Address>().map_err(|e| {
                            bad(format!("automation.action.to is not an email address: {e}"))
                        })?;
                        Some(address.to_owned())
                    }
                };
                AutomationAction::Email {
                    to,
                    subject: template("automation.action.subject", Kind::Subject, &subject)?,
                    body: template("automation.action.body", Kind::HtmlBody, &body)?,
                }
            }
            ActionInput::Webhook { url, body } => {
                let body = template("automation.action.body", Kind::JsonBody, &body)?;
                let url =
                    state.url_policy.check_url(url.trim()).await.map_err(
                        |refusal| match refusal {
                            UrlRefusal::Invalid(m) | UrlRefusal::AddressNotAllowed(m) => {
                                bad(format!("automation.action.url: {m}"))
                            }
                        },
                    )?;
                AutomationAction::Webhook {
                    url: url.to_string(),
                    body,
                }
            }
        };
    Ok(NewAutomation {
        name,
        trigger,
        carrier,
        action,
        enabled: input.enabled.or(current).unwrap_or(true),
        webhook_secret: sign::generate_secret(),
    })
}

/// The signing secret to show: a webhook action's, when this request created its subscription.
pub(crate) async fn new_secret(
    state: &AppState,
    store_id: &str,
    before: Option<&str>,
    after: &AutomationRecord,
) -> Result<Option<String>, RedoError> {
    match after.webhook_id.as_deref() {
        Some(id) if Some(id) != before => Ok(state
            .store
            .get_webhook(store_id, id)
            .await?
            .map(|w| w.secret)),
        _ => Ok(None),
    }
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/automations", tag = "Waybill automations",
    params(("storeId" = String, Path, description = "Store id")),
    responses((status = 200, description = "The store's automations", body = AutomationList),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn list_automations(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
) -> Result<Json<AutomationList>, RedoError> {
    let list = state.store.list_automations(&store_id).await?;
    Ok(Json(AutomationList {
        automations: list.iter().map(|a| AutomationJson::new(a, None)).collect(),
    }))
}

#[utoipa::path(post, path = "/v2.2/stores/{storeId}/automations", tag = "Waybill automations",
    params(("storeId" = String, Path, description = "Store id")), request_body = AutomationRequest,
    responses((status = 201, description = "Created; a webhook action's signing secret is shown only here", body = AutomationEnvelope),
        (status = 400, description = "Validation error (unknown trigger, a template that does not compile, a private webhook address)", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn create_automation(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    crate::extract::JsonBody(request, _): Body<AutomationRequest>,
) -> Result<Response, RedoError> {
    let new = check(&state, request.automation, None).await?;
    let created = state.store.create_automation(&store_id, new).await?;
    let secret = new_secret(&state, &store_id, None, &created).await?;
    Ok((
        StatusCode::CREATED,
        Json(AutomationEnvelope {
            automation: AutomationJson::new(&created, secret),
        }),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/automations/{automationId}", tag = "Waybill automations",
    params(("storeId" = String, Path, description = "Store id"), ("automationId" = String, Path, description = "Automation id")),
    responses((status = 200, description = "The automation", body = AutomationEnvelope),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Automation not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, automation_id = %id))]
pub(crate) async fn get_automation(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, id)): RedoPath<(String, String)>,
) -> Result<Json<AutomationEnvelope>, RedoError> {
    let found = state
        .store
        .get_automation(&store_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(AutomationEnvelope {
        automation: AutomationJson::new(&found, None),
    }))
}

#[utoipa::path(put, path = "/v2.2/stores/{storeId}/automations/{automationId}", tag = "Waybill automations",
    params(("storeId" = String, Path, description = "Store id"), ("automationId" = String, Path, description = "Automation id")),
    request_body = AutomationRequest,
    responses((status = 200, description = "Replaced", body = AutomationEnvelope),
        (status = 400, description = "Validation error", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Automation not found", body = crate::openapi::RedoErrorBody),
        (status = 413, description = "Body over 1,048,576 bytes", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, automation_id = %id))]
pub(crate) async fn update_automation(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, id)): RedoPath<(String, String)>,
    crate::extract::JsonBody(request, _): Body<AutomationRequest>,
) -> Result<Json<AutomationEnvelope>, RedoError> {
    let current = state
        .store
        .get_automation(&store_id, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let new = check(&state, request.automation, Some(current.enabled)).await?;
    let updated = state
        .store
        .update_automation(&store_id, &id, new)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let secret = new_secret(&state, &store_id, current.webhook_id.as_deref(), &updated).await?;
    Ok(Json(AutomationEnvelope {
        automation: AutomationJson::new(&updated, secret),
    }))
}

#[utoipa::path(delete, path = "/v2.2/stores/{storeId}/automations/{automationId}", tag = "Waybill automations",
    params(("storeId" = String, Path, description = "Store id"), ("automationId" = String, Path, description = "Automation id")),
    responses((status = 204, description = "Deleted with its runs"),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Automation not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, automation_id = %id))]
pub(crate) async fn delete_automation(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, id)): RedoPath<(String, String)>,
) -> Result<StatusCode, RedoError> {
    if state.store.delete_automation(&store_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

#[utoipa::path(get, path = "/v2.2/stores/{storeId}/automations/{automationId}/runs", tag = "Waybill automations",
    params(("storeId" = String, Path, description = "Store id"), ("automationId" = String, Path, description = "Automation id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "At most this many runs (1-500, default 50)")),
    responses((status = 200, description = "The automation's runs, newest first", body = RunList),
        (status = 400, description = "Bad limit", body = crate::openapi::RedoErrorBody),
        (status = 401, description = "Missing or invalid secret", body = crate::openapi::RedoErrorBody),
        (status = 403, description = "The secret does not belong to this store, or no such store", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Automation not found", body = crate::openapi::RedoErrorBody),
        (status = "default", description = "Any other error (RFC 9457 problem details)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(store_id = %store_id, automation_id = %id))]
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    RedoStore(store_id): RedoStore,
    RedoPath((_, id)): RedoPath<(String, String)>,
    query: Result<Query<RunQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RunList>, RedoError> {
    let Query(query) = query.map_err(|e| bad(e.body_text()))?;
    let limit = match query.limit {
        None => 50,
        Some(n @ 1..=500) => n,
        Some(n) => return Err(bad(format!("limit must be between 1 and 500; got {n}"))),
    };
    let runs = state
        .store
        .list_automation_runs(&store_id, &id, limit)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(RunList {
        runs: runs.iter().map(RunJson::from).collect(),
    }))
}
