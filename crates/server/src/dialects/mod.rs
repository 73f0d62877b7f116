//! The vendor dialects. Each is a thin translation between a vendor's JSON, auth and error
//! format and the core's commands; none of them talks SQL.

pub mod adm;
pub mod common;
pub mod fourthwall;
pub mod fourthwall_webhooks;
pub mod objects;
pub mod orderprotection;
pub mod redo;
pub mod schema;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered outside any handler (limits, idempotency), built with the error type of
/// the dialect that owns `path`, so each format is written in one place: `code` is
/// Fourthwall's error code and `title` ADM's title. Paths no dialect owns get problem JSON.
pub fn error_for_path(
    path: &str,
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    message: impl Into<String>,
) -> Response {
    let message = message.into();
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/v2.2") {
        redo::RedoError::plain(status, message).into_response()
    } else if under("/adm") {
        adm::AdmError::new(status, title, message).into_response()
    } else if under("/open-api/v1.0") {
        fourthwall::FourthwallError::new(status, json!({ "code": code, "message": message }))
            .into_response()
    } else if under("/v1") {
        orderprotection::OpError::new(status, message).into_response()
    } else {
        crate::problem::Problem::new(status, message).into_response()
    }
}
