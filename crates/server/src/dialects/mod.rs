//! The vendor dialects. Each is a thin translation between a vendor's JSON, auth and error
//! format and the core's commands; none of them talks SQL.

pub mod adm;
pub mod common;
pub mod fourthwall;
pub mod fourthwall_webhooks;
pub mod orderprotection;
pub mod redo;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered outside any handler (limits, idempotency), in the format of the dialect
/// that owns `path`: `code` is Fourthwall's error code and ADM's title; other dialects use the
/// sentence only. Paths no dialect owns get problem JSON.
pub fn error_for_path(
    path: &str,
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    message: impl Into<String>,
) -> Response {
    let message = message.into();
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/v2.2") && status != StatusCode::FORBIDDEN {
        (status, Json(json!({ "error": message }))).into_response()
    } else if under("/adm") {
        (status, Json(json!({ "error": title, "message": message }))).into_response()
    } else if under("/open-api/v1.0") {
        (status, Json(json!({ "code": code, "message": message }))).into_response()
    } else if under("/v1") {
        (
            status,
            Json(json!({ "status": "error", "message": message })),
        )
            .into_response()
    } else {
        crate::problem::Problem::new(status, message).into_response()
    }
}
