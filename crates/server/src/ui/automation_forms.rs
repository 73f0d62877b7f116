//! The forms that create, edit and delete automations.
//!
//! A form is turned into the Redo automations API's own input and checked by its own `check`
//! (trigger, carrier normalisation, email address, template compilation, the webhook URL
//! through the server's URL policy), then saved with the same store calls. A refused form is
//! shown again with the reason and changes nothing. A webhook action's signing secret is shown
//! once, on the page that created its subscription. Automations are looked up in the
//! signed-in store only, so another store's id is not found (404).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use waybill_core::{ReturnStatus, ShipmentEvent, ShipmentStatus};
use waybill_store::{AutomationAction, AutomationRecord, AutomationTrigger};

use super::Posted;
use super::pages::path_ids;
use super::render::{error_page, page, segment};
use super::{Form, Signed, not_found_page, redirect, store_error};
use crate::AppState;
use crate::dialects::redo::automations::{ActionInput, AutomationInput, check, new_secret};

fn edit_href(id: &str) -> String {
    format!("/ui/automations/{}/edit", segment(id))
}

/// What the form carries (and shows again when refused).
#[derive(Serialize, Default)]
struct Values {
    name: String,
    trigger: String,
    carrier: String,
    enabled: bool,
    /// `email` or `webhook`.
    action: String,
    to: String,
    subject: String,
    email_body: String,
    url: String,
    webhook_body: String,
}

impl Values {
    fn of(a: &AutomationRecord) -> Values {
        let mut values = Values {
            name: a.name.clone(),
            trigger: a.trigger.as_str().to_owned(),
            carrier: a.carrier.clone().unwrap_or_default(),
            enabled: a.enabled,
            ..Values::default()
        };
        match &a.action {
            AutomationAction::Email { to, subject, body } => {
                values.action = "email".into();
                values.to = to.clone().unwrap_or_default();
                values.subject = subject.clone();
                values.email_body = body.clone();
            }
            AutomationAction::Webhook { url, body } => {
                values.action = "webhook".into();
                values.url = url.clone();
                values.webhook_body = body.clone();
            }
        }
        values
    }

    fn parse(form: &Form) -> Values {
        let text = |name: &str| form.get(name).unwrap_or_default().to_owned();
        Values {
            name: text("name"),
            trigger: text("trigger"),
            carrier: text("carrier"),
            enabled: form
                .get("enabled")
                .is_some_and(|v| v == "on" || v == "true"),
            action: text("action"),
            to: text("to"),
            subject: text("subject"),
            email_body: text("email_body"),
            url: text("url"),
            webhook_body: text("webhook_body"),
        }
    }

    /// The API's input; `Err` when the action kind is neither.
    fn input(&self) -> Result<AutomationInput, String> {
        let action = match self.action.as_str() {
            "email" => ActionInput::Email {
                subject: self.subject.clone(),
                body: self.email_body.clone(),
                to: Some(self.to.clone()),
            },
            "webhook" => ActionInput::Webhook {
                url: self.url.clone(),
                body: self.webhook_body.clone(),
            },
            _ => return Err("Action: choose email or webhook.".into()),
        };
        Ok(AutomationInput {
            name: self.name.clone(),
            trigger: self.trigger.clone(),
            carrier: Some(self.carrier.clone()),
            enabled: Some(self.enabled),
            action,
        })
    }
}

#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: &'static str,
}

#[derive(Serialize)]
struct FormBody {
    /// Editing an existing automation (its id), or creating one.
    id: Option<String>,
    action_href: String,
    runs_href: Option<String>,
    delete_href: Option<String>,
    statuses: Vec<Choice>,
    events: Vec<Choice>,
    returns: Vec<Choice>,
    values: Values,
    notice: Option<&'static str>,
    error: Option<String>,
    /// A webhook action's signing secret, shown once.
    secret: Option<String>,
}

fn form_page(
    signed: &Signed,
    status: StatusCode,
    id: Option<&str>,
    values: Values,
    notice: Option<&'static str>,
    error: Option<String>,
    secret: Option<String>,
) -> Response {
    let title = if id.is_some() {
        "Edit automation"
    } else {
        "New automation"
    };
    let body = FormBody {
        id: id.map(str::to_owned),
        action_href: id.map_or_else(|| "/ui/automations".to_owned(), edit_href),
        runs_href: id.map(|id| format!("/ui/automations/{}", segment(id))),
        delete_href: id.map(|id| format!("/ui/automations/{}/delete", segment(id))),
        statuses: ShipmentStatus::ALL
            .into_iter()
            .filter(|s| *s != ShipmentStatus::Unknown)
            .map(|s| Choice {
                value: s.as_str(),
                label: s.description(),
            })
            .collect(),
        events: ShipmentEvent::ALL
            .into_iter()
            .map(|e| Choice {
                value: e.as_str(),
                label: e.description(),
            })
            .collect(),
        returns: ReturnStatus::ALL
            .into_iter()
            .map(|s| Choice {
                value: AutomationTrigger::Return(s).as_str(),
                label: s.description(),
            })
            .collect(),
        values,
        notice,
        error,
        secret,
    };
    page(
        status,
        "automation_form.html",
        &signed.layout(title, "automations"),
        &body,
    )
}

/// `GET /ui/automations/new`.
pub async fn new_form(signed: Signed) -> Response {
    let values = Values {
        enabled: true,
        action: "email".into(),
        trigger: "delivered".into(),
        ..Values::default()
    };
    form_page(&signed, StatusCode::OK, None, values, None, None, None)
}

/// `POST /ui/automations`: creates one, as `POST …/automations` does.
pub async fn create(State(state): State<AppState>, Posted(signed, form): Posted) -> Response {
    let values = Values::parse(&form);
    let refused = |values: Values, message: String| {
        form_page(
            &signed,
            StatusCode::BAD_REQUEST,
            None,
            values,
            None,
            Some(message),
            None,
        )
    };
    let input = match values.input() {
        Ok(input) => input,
        Err(message) => return refused(values, message),
    };
    let new = match check(&state, input, None).await {
        Ok(new) => new,
        Err(e) => return refused(values, e.into_parts().1),
    };
    let layout = || signed.layout("New automation", "automations");
    let store_id = signed.store_id();
    let created = match state.store.create_automation(store_id, new).await {
        Ok(created) => created,
        Err(e) => return store_error(e, layout()),
    };
    match new_secret(&state, store_id, None, &created).await {
        Ok(Some(secret)) => form_page(
            &signed,
            StatusCode::OK,
            Some(&created.id),
            Values::of(&created),
            Some("The automation was created."),
            None,
            Some(secret),
        ),
        Ok(None) => redirect(&format!("{}?done=created", edit_href(&created.id))),
        Err(e) => {
            let (status, message) = e.into_parts();
            tracing::error!(%status, %message, automation = %created.id, "reading a new automation's webhook");
            error_page(status, &message, &layout())
        }
    }
}

/// The store's automation named by the path; `Err` is the 404 (or failure) page.
async fn load(
    signed: &Signed,
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<AutomationRecord, Response> {
    let layout = || signed.layout("Automation", "automations");
    let Some(id) = path_ids(path, |id| vec![id.as_str()]) else {
        return Err(not_found_page(layout()));
    };
    match state.store.get_automation(signed.store_id(), &id).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(not_found_page(layout())),
        Err(e) => Err(store_error(e, layout())),
    }
}

/// `GET /ui/automations/{id}/edit`.
pub async fn edit_form(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    let record = match load(&signed, &state, path).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let notice = match Form::parse(raw.unwrap_or_default().as_bytes()).get("done") {
        Some("created") => Some("The automation was created."),
        Some("saved") => Some("The automation was saved."),
        _ => None,
    };
    form_page(
        &signed,
        StatusCode::OK,
        Some(&record.id),
        Values::of(&record),
        notice,
        None,
        None,
    )
}

/// `POST /ui/automations/{id}/edit`: replaces it, as `PUT …/automations/{id}` does.
pub async fn edit(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let current = match load(&signed, &state, path).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let values = Values::parse(&form);
    let refused = |values: Values, message: String| {
        form_page(
            &signed,
            StatusCode::BAD_REQUEST,
            Some(&current.id),
            values,
            None,
            Some(message),
            None,
        )
    };
    let input = match values.input() {
        Ok(input) => input,
        Err(message) => return refused(values, message),
    };
    let new = match check(&state, input, Some(current.enabled)).await {
        Ok(new) => new,
        Err(e) => return refused(values, e.into_parts().1),
    };
    let layout = || signed.layout("Edit automation", "automations");
    let store_id = signed.store_id();
    let updated = match state
        .store
        .update_automation(store_id, &current.id, new)
        .await
    {
        Ok(Some(updated)) => updated,
        Ok(None) => return not_found_page(layout()),
        Err(e) => return store_error(e, layout()),
    };
    match new_secret(&state, store_id, current.webhook_id.as_deref(), &updated).await {
        Ok(Some(secret)) => form_page(
            &signed,
            StatusCode::OK,
            Some(&updated.id),
            Values::of(&updated),
            Some("The automation was saved."),
            None,
            Some(secret),
        ),
        Ok(None) => redirect(&format!("{}?done=saved", edit_href(&updated.id))),
        Err(e) => {
            let (status, message) = e.into_parts();
            tracing::error!(%status, %message, automation = %updated.id, "reading an automation's new webhook");
            error_page(status, &message, &layout())
        }
    }
}

#[derive(Serialize)]
struct DeleteBody {
    name: String,
    trigger: &'static str,
    edit_href: String,
    delete_href: String,
}

/// `GET /ui/automations/{id}/delete`: the confirmation step.
pub async fn confirm_delete(
    signed: Signed,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let record = match load(&signed, &state, path).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let body = DeleteBody {
        name: record.name.clone(),
        trigger: record.trigger.description(),
        edit_href: edit_href(&record.id),
        delete_href: format!("/ui/automations/{}/delete", segment(&record.id)),
    };
    page(
        StatusCode::OK,
        "automation_delete.html",
        &signed.layout("Delete automation", "automations"),
        &body,
    )
}

/// `POST /ui/automations/{id}/delete` (with `confirm=yes`): deletes it with its runs, as
/// `DELETE …/automations/{id}` does.
pub async fn delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Posted(signed, form): Posted,
) -> Response {
    let record = match load(&signed, &state, path).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let layout = signed.layout("Delete automation", "automations");
    if form.get("confirm") != Some("yes") {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Confirm the deletion on the confirmation page.",
            &layout,
        );
    }
    match state
        .store
        .delete_automation(signed.store_id(), &record.id)
        .await
    {
        Ok(true) => redirect("/ui/automations?done=deleted"),
        Ok(false) => not_found_page(layout),
        Err(e) => store_error(e, layout),
    }
}
