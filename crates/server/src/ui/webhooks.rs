//! The dashboard's webhook pages: the subscriptions of both flavours with their health, a
//! subscription with its delivery log (filtered by status and order, paged by cursor) and
//! attempts, and the forms that create, edit, disable, re-enable, delete a subscription and
//! rotate its secret.
//!
//! Every form goes through the same store calls and the same checks as the APIs: the callback
//! URL through the server's URL policy (`webhooks::ssrf`), Redo topics from `REDO_TOPICS`,
//! Fourthwall types by the Fourthwall dialect's rule, a bearer token by the Redo dialect's. A
//! refused form is shown again with the reason and changes nothing. Subscriptions are looked up
//! in the signed-in store only, so another store's id is simply not found (404). Automation
//! subscriptions belong to their automation and are not changed here.

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use waybill_store::webhooks::REDO_TOPICS;
use waybill_store::{
    AttemptQuery, DeliveryQuery, DeliveryRecord, DeliveryState, NewWebhook, WebhookFlavor,
    WebhookRecord, WebhookStats, WebhookUpdate,
};

use super::Posted;
use super::pages::{LOG_ROWS, order_href, path_ids, plausible_id};
use super::render::{When, error_page, page, segment};
use super::{Form, Signed, not_found_page, redirect, store_error};
use crate::AppState;
use crate::dialects::common;
use crate::dialects::fourthwall_webhooks::is_event_type;
use crate::webhooks::sign;

/// The Fourthwall event types offered on the forms (the ones Waybill sends).
const FOURTHWALL_TYPES: [&str; 2] = ["ORDER_PLACED", "ORDER_UPDATED"];
/// How long a rotated-out secret keeps signing (the API's default).
const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// Longest order filter taken (ids are at most this long).
const MAX_ORDER_CHARS: usize = 255;

fn flavor_name(flavor: WebhookFlavor) -> &'static str {
    match flavor {
        WebhookFlavor::Redo => "Redo",
        WebhookFlavor::Fourthwall => "Fourthwall",
        WebhookFlavor::Automation => "Automation",
    }
}

fn webhook_href(id: &str) -> String {
    format!("/ui/webhooks/{}", segment(id))
}

/// A subscription as shown: never its signing secret or bearer token.
#[derive(Serialize)]
struct WebhookRow {
    href: String,
    id: String,
    flavor: &'static str,
    url: String,
    topics: Vec<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<When>,
    created: When,
    has_bearer: bool,
    /// Health from the attempt log (absent if it could not be read).
    last_success: Option<When>,
    failures_in_a_row: u64,
    last_attempt: Option<When>,
}

fn webhook_row(w: &WebhookRecord, stats: WebhookStats) -> WebhookRow {
    WebhookRow {
        href: webhook_href(&w.id),
        id: w.id.clone(),
        flavor: flavor_name(w.flavor),
        url: w.url.clone(),
        topics: w.topics.clone(),
        enabled: w.enabled,
        disabled_reason: w.disabled_reason.clone(),
        failing_since: w.failing_since.map(When::from),
        created: w.created_at.into(),
        has_bearer: w.bearer_token.is_some(),
        last_success: stats.last_success_at.map(When::from),
        failures_in_a_row: stats.failures_in_a_row,
        last_attempt: stats.last_attempt_at.map(When::from),
    }
}

async fn stats_of(
    state: &AppState,
    store_id: &str,
    w: &WebhookRecord,
) -> Result<WebhookStats, waybill_store::StoreError> {
    Ok(state
        .store
        .webhook_stats(store_id, &w.id)
        .await?
        .unwrap_or_default())
}

// ---- the list ----

#[derive(Serialize)]
struct FlavorSection {
    name: &'static str,
    webhooks: Vec<WebhookRow>,
}

#[derive(Serialize)]
struct WebhooksBody {
    sections: Vec<FlavorSection>,
    notice: Option<&'static str>,
}

pub async fn webhooks(
    signed: Signed,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Response {
    let layout = signed.layout("Webhooks", "webhooks");
    let store_id = signed.store_id();
    let mut sections = Vec::new();
    for flavor in [WebhookFlavor::Redo, WebhookFlavor::Fourthwall] {
        let list = match state.store.list_webhooks(store_id, flavor).await {
            Ok(list) => list,
            Err(e) => return store_error(e, layout),
        };
        let mut rows = Vec::with_capacity(list.len());
        for w in &list {
            match stats_of(&state, store_id, w).await {
                Ok(stats) => rows.push(webhook_row(w, stats)),
                Err(e) => return store_error(e, layout),
            }
        }
        sections.push(FlavorSection {
            name: flavor_name(flavor),
            webhooks: rows,
        });
    }
    let notice = match Form::parse(raw.unwrap_or_default().as_bytes()).get("done") {
        Some("deleted") => Some("The subscription was deleted, with its delivery log."),
        _ => None,
    };
    page(
        StatusCode::OK,
        "webhooks.html",
        &layout,
        &WebhooksBody { sections, notice },
    )
}

// ---- creating ----

/// What a create or edit form carried, shown again when it is refused.
#[derive(Serialize, Default, Clone)]
struct FormValues {
    url: String,
    /// The Redo topic chosen.
    topic: String,
    /// The Fourthwall types ticked.
    types: Vec<String>,
}

#[derive(Serialize)]
struct NewBody {
    redo_topics: &'static [&'static str],
    fourthwall_types: [&'static str; 2],
    /// Which form the error and values belong to: `redo` or `fourthwall`.
    form: &'static str,
    values: FormValues,
    error: Option<String>,
}

fn new_page(
    signed: &Signed,
    status: StatusCode,
    form: &'static str,
    values: FormValues,
    error: Option<String>,
) -> Response {
    page(
        status,
        "webhook_new.html",
        &signed.layout("New webhook subscription", "webhooks"),
        &NewBody {
            redo_topics: REDO_TOPICS,
            fourthwall_types: FOURTHWALL_TYPES,
            form,
            values,
            error,
        },
    )
}

pub async fn new_webhook(signed: Signed) -> Response {
    new_page(&signed, StatusCode::OK, "", FormValues::default(), None)
}

/// A form's subscription, checked as the APIs check theirs.
struct Checked {
    url: String,
    topics: Vec<String>,
    bearer: Option<String>,
}

/// Reads and checks the url, the topics of `flavor` and (Redo, if `with_bearer`) the bearer
/// token. The message names the field and what it takes.
async fn check_form(
    state: &AppState,
    flavor: WebhookFlavor,
    form: &Form,
    with_bearer: bool,
) -> (FormValues, Result<Checked, String>) {
    let values = FormValues {
        url: form.get("url").unwrap_or_default().trim().to_owned(),
        topic: form.get("topic").unwrap_or_default().to_owned(),
        types: form.all("type").map(str::to_owned).collect(),
    };
    let result = async {
        let topics = match flavor {
            WebhookFlavor::Redo => {
                if !REDO_TOPICS.contains(&values.topic.as_str()) {
                    return Err(format!("Topic: choose one of {}.", REDO_TOPICS.join(", ")));
                }
                vec![values.topic.clone()]
            }
            _ => {
                if values.types.is_empty() {
                    return Err("Event types: choose at least one.".to_owned());
                }
                if let Some(bad) = values.types.iter().find(|t| !is_event_type(t)) {
                    return Err(format!("Event types: '{bad}' is not an event type."));
                }
                let mut types = values.types.clone();
                types.dedup();
                types
            }
        };
        if values.url.is_empty() {
            return Err("Callback URL: enter the http(s) URL to send events to.".to_owned());
        }
        let url = state
            .url_policy
            .check_url(&values.url)
            .await
            .map_err(|refusal| format!("Callback URL: {}", refusal.message()))?;
        let bearer = match form.get("bearer").map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) if with_bearer => {
                if !common::is_text(token, 1024) {
                    return Err("Bearer token: 1 to 1024 characters without control \
                                characters."
                        .to_owned());
                }
                Some(token.to_owned())
            }
            _ => None,
        };
        Ok(Checked {
            url: url.to_string(),
            topics,
            bearer,
        })
    }
    .await;
    (values, result)
}

/// `POST /ui/webhooks`: creates a subscription and shows it, with its signing secret (the
/// only time it is shown).
pub async fn create_webhook(
    State(state): State<AppState>,
    Posted(signed, form): Posted,
) -> Response {
    let layout = signed.layout("New webhook subscription", "webhooks");
    let (flavor, form_name) = match form.get("flavor") {
        Some("redo") => (WebhookFlavor::Redo, "redo"),
        Some("fourthwall") => (WebhookFlavor::Fourthwall, "fourthwall"),
        _ => {
            return new_page(
                &signed,
                StatusCode::BAD_REQUEST,
                "",
                FormValues::default(),
                Some("Choose Redo or Fourthwall.".into()),
            );
        }
    };
    let (values, checked) = check_form(&state, flavor, &form, flavor == WebhookFlavor::Redo).await;
    let checked = match checked {
        Ok(checked) => checked,
        Err(message) => {
            return new_page(
                &signed,
                StatusCode::BAD_REQUEST,
                form_name,
                values,
                Some(message),
            );
        }
    };
    let store_id = signed.store_id();
    // Fourthwall deliveries are signed with the store's secret, made with the first one.
    let store_secret = if flavor == WebhookFlavor::Fourthwall {
        match state
            .store
            .store_webhook_secret(store_id, &sign::generate_store_secret())
            .await
        {
            Ok(secret) => Some(secret),
            Err(e) => return store_error(e, layout),
        }
    } else {
        None
    };
    let created = state
        .store
        .create_webhook(
            store_id,
            NewWebhook {
                flavor,
                url: checked.url,
                topics: checked.topics,
                external_id: None,
                bearer_token: checked.bearer,
                secret: sign::generate_secret(),
            },
        )
        .await;
    let record = match created {
        Ok((record, _)) => record,
        Err(e) => return store_error(e, layout),
    };
    let secret = match store_secret {
        Some(secret) => Revealed {
            value: secret,
            what: "The store's Fourthwall webhook secret",
            note: "Every Fourthwall delivery is signed with it (X-Fourthwall-Hmac-SHA256).",
        },
        None => Revealed {
            value: record.secret.clone(),
            what: "Signing secret",
            note: "Copy it now: it is not shown again. Deliveries carry Standard Webhooks \
                   signatures made with it.",
        },
    };
    show(
        &signed,
        &state,
        record,
        View {
            notice: Some("The subscription was created."),
            secret: Some(secret),
            ..View::default()
        },
        "",
    )
    .await
}

// ---- one subscription ----

#[derive(Serialize)]
struct DeliveryRow {
    event_id: String,
    event_type: String,
    seq: i64,
    order_href: String,
    order_external_id: Option<String>,
    status: &'static str,
    attempts: u32,
    last_response_code: Option<u16>,
    last_error: Option<String>,
    next_attempt: Option<When>,
    created: When,
}

fn delivery_row(d: DeliveryRecord) -> DeliveryRow {
    DeliveryRow {
        order_href: order_href(&d.order_id),
        order_external_id: d.order_external_id,
        event_id: d.event_id,
        event_type: d.event_type,
        seq: d.seq,
        status: d.status.as_str(),
        attempts: d.attempts,
        last_response_code: d.last_response_code,
        last_error: d.last_error,
        next_attempt: d.next_attempt_at.map(When::from),
        created: d.created_at.into(),
    }
}

#[derive(Serialize)]
struct AttemptRow {
    event_id: String,
    event_type: String,
    attempt: u32,
    at: When,
    status_code: Option<u16>,
    latency_ms: u64,
    error: Option<String>,
}

#[derive(Serialize)]
struct StatusChoice {
    value: &'static str,
    selected: bool,
}

/// A secret shown once, right after it was made.
#[derive(Serialize)]
struct Revealed {
    value: String,
    what: &'static str,
    note: &'static str,
}

#[derive(Serialize)]
struct WebhookBody {
    webhook: WebhookRow,
    /// Automation subscriptions are shown, not changed.
    editable: bool,
    redo: bool,
    redo_topics: &'static [&'static str],
    fourthwall_types: [&'static str; 2],
    /// The edit form's values (the subscription's, or a refused submission's).
    values: FormValues,
    notice: Option<&'static str>,
    error: Option<String>,
    secret: Option<Revealed>,
    // The delivery log.
    statuses: Vec<StatusChoice>,
    order: String,
    filtered: bool,
    deliveries: Vec<DeliveryRow>,
    newer_href: Option<String>,
    older_href: Option<String>,
    attempts: Vec<AttemptRow>,
    redeliver_href: String,
    edit_href: String,
    enabled_href: String,
    rotate_href: String,
    delete_href: String,
}

/// How the subscription page is shown after an action.
struct View {
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    secret: Option<Revealed>,
    values: Option<FormValues>,
}

impl Default for View {
    fn default() -> Self {
        View {
            status: StatusCode::OK,
            notice: None,
            error: None,
            secret: None,
            values: None,
        }
    }
}

/// The delivery log's filters from the query string; values a form could not send are
/// ignored, as on the orders page.
struct LogFilters {
    status: Option<DeliveryState>,
    order: String,
    before: Option<i64>,
}

impl LogFilters {
    fn parse(query: &Form) -> LogFilters {
        let order: String = query
            .get("order")
            .unwrap_or_default()
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_ORDER_CHARS)
            .collect();
        LogFilters {
            status: query.get("status").and_then(DeliveryState::parse),
            order: if plausible_id(&order) {
                order
            } else {
                String::new()
            },
            before: query
                .get("before")
                .and_then(|b| b.trim().parse::<i64>().ok())
                .filter(|b| *b > 0),
        }
    }

    /// The page's URL with these filters and `before` as the cursor.
    fn href(&self, webhook_id: &str, before: Option<i64>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(status) = self.status {
            query.append_pair("status", status.as_str());
        }
        if !self.order.is_empty() {
            query.append_pair("order", &self.order);
        }
        if let Some(before) = before {
            query.append_pair("before", &before.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            webhook_href(webhook_id)
        } else {
            format!("{}?{query}", webhook_href(webhook_id))
        }
    }
}

/// Renders the subscription page for `record` with `view` and the log filters in `raw_query`.
async fn show(
    signed: &Signed,
    state: &AppState,
    record: WebhookRecord,
    view: View,
    raw_query: &str,
) -> Response {
    let layout = signed.layout(format!("Webhook {}", record.id), "webhooks");
    let store_id = signed.store_id();
    let filters = LogFilters::parse(&Form::parse(raw_query.as_bytes()));
    let stats = match stats_of(state, store_id, &record).await {
        Ok(stats) => stats,
        Err(e) => return store_error(e, layout),
    };
    let listed = state
        .store
        .list_webhook_deliveries(
            store_id,
            DeliveryQuery {
                webhook_id: Some(record.id.clone()),
                status: filters.status,
                order: (!filters.order.is_empty()).then(|| filters.order.clone()),
                before: filters.before,
                ..DeliveryQuery::new(record.flavor, LOG_ROWS + 1)
            },
        )
        .await;
    let mut deliveries = match listed {
        Ok(list) => list,
        Err(e) => return store_error(e, layout),
    };
    let more = deliveries.len() > LOG_ROWS as usize;
    deliveries.truncate(LOG_ROWS as usize);
    let older_href = more
        .then(|| {
            deliveries
                .last()
                .map(|d| filters.href(&record.id, Some(d.id)))
        })
        .flatten();
    let newer_href = filters
        .before
        .is_some()
        .then(|| filters.href(&record.id, None));
    let attempts = match state
        .store
        .list_webhook_attempts(
            store_id,
            AttemptQuery {
                webhook_id: Some(record.id.clone()),
                flavor: record.flavor,
                before: None,
                limit: LOG_ROWS,
            },
        )
        .await
    {
        Ok(list) => list,
        Err(e) => return store_error(e, layout),
    };
    let href = webhook_href(&record.id);
    let values = view.values.unwrap_or_else(|| FormValues {
        url: record.url.clone(),
        topic: record.topics.first().cloned().unwrap_or_default(),
        types: record.topics.clone(),
    });
    let body = WebhookBody {
        editable: record.flavor != WebhookFlavor::Automation,
        redo: record.flavor == WebhookFlavor::Redo,
        redo_topics: REDO_TOPICS,
        fourthwall_types: FOURTHWALL_TYPES,
        values,
        notice: view.notice,
        error: view.error,
        secret: view.secret,
        statuses: DeliveryState::ALL
            .into_iter()
            .map(|s| StatusChoice {
                value: s.as_str(),
                selected: filters.status == Some(s),
            })
            .collect(),
        filtered: filters.status.is_some() || !filters.order.is_empty(),
        order: filters.order.clone(),
        deliveries: deliveries.into_iter().map(delivery_row).collect(),
        newer_href,
        older_href,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptRow {
                event_id: a.event_id,
                event_type: a.event_type,
                attempt: a.attempt,
                at: a.at.into(),
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error,
            })
            .collect(),
        redeliver_href: format!("{href}/redeliver"),
        edit_href: href.clone(),
        enabled_href: format!("{href}/enabled"),
        rotate_href: format!("{href}/rotate"),
        delete_href: format!("{href}/delete"),
        webhook: webhook_row(&record, stats),
    };
    page(view.status, "webhook.html", &layout, &body)
}

/// The store's subscription `id` from the path; `Err` is the 404 (or store failure) page.
async fn load(
    signed: &Signed,
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    editable_only: bool,
) -> Result<WebhookRecord, Response> {
    let layout = signed.layout("Webhook", "webhooks");
    let Some(webhook_id) = path_ids(path, |id| vec![id.as_str()]) else {
        return Err(not_found_page(layout));
    };
    match state
        .store
        .get_webhook(signed.store_id(), &webhook_id)
        .await
    {
        Ok(Some(record)) if !editable_only || record.flavor != WebhookFlavor::Automation => {
            Ok(record)
        }
        Ok(_) => Err(not_found_page(layout)),
        Err(e) => Err(store_error(e, layout)),
    }
}

pub async fn webhook(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    let record = match load(&signed, &state, path, false).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let raw = raw.unwrap_or_default();
    let notice = match Form::parse(raw.as_bytes()).get("done") {
        Some("redelivered") => Some("The event is queued for delivery again."),
        Some("updated") => Some("The subscription was saved."),
        Some("disabled") => {
            Some("The subscription is disabled: nothing is sent until it is enabled again.")
        }
        Some("enabled") => Some("The subscription is enabled; waiting deliveries go out again."),
        _ => None,
    };
    show(
        &signed,
        &state,
        record,
        View {
            notice,
            ..View::default()
        },
        &raw,
    )
    .await
}

/// `POST /ui/webhooks/{id}`: a new callback URL and topics (the bearer token is kept).
pub async fn edit_webhook(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let record = match load(&signed, &state, path, true).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let (values, checked) = check_form(&state, record.flavor, &form, false).await;
    let checked = match checked {
        Ok(checked) => checked,
        Err(message) => {
            return show(
                &signed,
                &state,
                record,
                View {
                    status: StatusCode::BAD_REQUEST,
                    error: Some(message),
                    values: Some(values),
                    ..View::default()
                },
                "",
            )
            .await;
        }
    };
    let updated = state
        .store
        .update_webhook(
            signed.store_id(),
            &record.id,
            WebhookUpdate {
                url: Some(checked.url),
                topics: Some(checked.topics),
                bearer_token: None,
                enabled: None,
            },
        )
        .await;
    match updated {
        Ok(Some(_)) => redirect(&format!("{}?done=updated", webhook_href(&record.id))),
        Ok(None) => not_found_page(signed.layout("Webhook", "webhooks")),
        Err(e) => store_error(e, signed.layout("Webhook", "webhooks")),
    }
}

/// `POST /ui/webhooks/{id}/enabled` with `enabled=true|false`.
pub async fn set_enabled(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let record = match load(&signed, &state, path, true).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let layout = signed.layout("Webhook", "webhooks");
    let enabled = match form.get("enabled") {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The form must say whether to enable or disable the subscription.",
                &layout,
            );
        }
    };
    let updated = state
        .store
        .update_webhook(
            signed.store_id(),
            &record.id,
            WebhookUpdate {
                enabled: Some(enabled),
                ..WebhookUpdate::default()
            },
        )
        .await;
    let done = if enabled { "enabled" } else { "disabled" };
    match updated {
        Ok(Some(_)) => redirect(&format!("{}?done={done}", webhook_href(&record.id))),
        Ok(None) => not_found_page(layout),
        Err(e) => store_error(e, layout),
    }
}

/// `POST /ui/webhooks/{id}/rotate`: a new signing secret, shown once; the old one keeps
/// signing beside it for a day (as the API's default).
pub async fn rotate_secret(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Posted(signed, _): Posted,
) -> Response {
    let record = match load(&signed, &state, path, true).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let layout = signed.layout("Webhook", "webhooks");
    if record.flavor != WebhookFlavor::Redo {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Fourthwall subscriptions are signed with the store's Fourthwall secret; they have \
             no secret of their own to rotate.",
            &layout,
        );
    }
    let rotated = state
        .store
        .rotate_webhook_secret(
            signed.store_id(),
            &record.id,
            &sign::generate_secret(),
            ROTATION_OVERLAP,
        )
        .await;
    match rotated {
        Ok(Some(record)) => {
            let secret = Revealed {
                value: record.secret.clone(),
                what: "New signing secret",
                note: "Copy it now: it is not shown again. For the next 24 hours deliveries \
                       carry signatures by both the old and the new secret.",
            };
            show(
                &signed,
                &state,
                record,
                View {
                    notice: Some("The signing secret was rotated."),
                    secret: Some(secret),
                    ..View::default()
                },
                "",
            )
            .await
        }
        Ok(None) => not_found_page(layout),
        Err(e) => store_error(e, layout),
    }
}

#[derive(Serialize)]
struct DeleteBody {
    webhook: WebhookRow,
    delete_href: String,
}

/// `GET /ui/webhooks/{id}/delete`: the confirmation step.
pub async fn confirm_delete(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let record = match load(&signed, &state, path, true).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let body = DeleteBody {
        delete_href: format!("{}/delete", webhook_href(&record.id)),
        webhook: webhook_row(&record, WebhookStats::default()),
    };
    page(
        StatusCode::OK,
        "webhook_delete.html",
        &signed.layout("Delete webhook subscription", "webhooks"),
        &body,
    )
}

/// `POST /ui/webhooks/{id}/delete` (with `confirm=yes`): deletes it with its delivery log.
pub async fn delete_webhook(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let record = match load(&signed, &state, path, true).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let layout = signed.layout("Delete webhook subscription", "webhooks");
    if form.get("confirm") != Some("yes") {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Confirm the deletion on the confirmation page.",
            &layout,
        );
    }
    match state
        .store
        .delete_webhook(signed.store_id(), &record.id)
        .await
    {
        Ok(true) => redirect("/ui/webhooks?done=deleted"),
        Ok(false) => not_found_page(layout),
        Err(e) => store_error(e, layout),
    }
}

/// `POST /ui/webhooks/{id}/redeliver`: puts one event back in the subscription's queue.
pub async fn redeliver(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let layout = signed.layout("Redeliver", "webhooks");
    let Some(webhook_id) = path_ids(path, |id| vec![id.as_str()]) else {
        return not_found_page(layout);
    };
    let event_id = form.get("event_id").unwrap_or_default().trim();
    if !plausible_id(event_id) {
        return not_found_page(layout);
    }
    match state
        .store
        .redeliver_webhook_event(signed.store_id(), &webhook_id, event_id)
        .await
    {
        Ok(true) => redirect(&format!("{}?done=redelivered", webhook_href(&webhook_id))),
        Ok(false) => not_found_page(layout),
        Err(e) => store_error(e, layout),
    }
}
