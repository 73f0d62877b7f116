//! Inbound carrier updates: `POST /inbound/easypost/{storeId}` takes EasyPost's
//! `tracker.updated` events for a store.
//!
//! The body is verified against the store's EasyPost webhook secret (header
//! `X-Hmac-Signature: hmac-sha256-hex=<hex of HMAC-SHA256(secret, raw body)>`, compared in
//! constant time) before anything is read from it. The tracker's `tracking_code` (and carrier,
//! when two fulfillments share a number) names the fulfillment; its scans are recorded as
//! [`waybill_core::carrier_update::plan`] decides, so a repeated event records nothing and an
//! older one never moves the status back. Errors are problem JSON. An event about an unknown
//! tracking code is acknowledged (200, `unmatched`), so EasyPost does not retry it for days.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use waybill_core::carrier_update::CarrierReport;
use waybill_core::{HistoryEntry, Location, ShipmentStatus, time};
use waybill_store::StoreError;

use crate::AppState;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new().route("/easypost/{store_id}", post(easypost))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = EasyPostEvent)]
pub(crate) struct EasyPostEvent {
    description: String,
    #[serde(default)]
    result: Option<Tracker>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = EasyPostTracker)]
pub(crate) struct Tracker {
    tracking_code: String,
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    est_delivery_date: Option<String>,
    #[serde(default)]
    tracking_details: Vec<TrackingDetail>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = EasyPostTrackingDetail)]
pub(crate) struct TrackingDetail {
    #[serde(default)]
    message: Option<String>,
    status: String,
    datetime: String,
    #[serde(default)]
    tracking_location: Option<TrackingLocation>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = EasyPostTrackingLocation)]
pub(crate) struct TrackingLocation {
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    zip: Option<String>,
}

fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    Problem::new(status, detail).into_response()
}

fn store_problem(e: StoreError) -> Response {
    match e {
        StoreError::Domain(d) => problem(crate::dialects::common::status_for(&d), d.to_string()),
        StoreError::Unavailable(detail) => {
            tracing::warn!(%detail, "database unavailable");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is temporarily unavailable; retry shortly",
            )
        }
        StoreError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "an internal error occurred; it has been logged",
            )
        }
    }
}

/// Whether `header` is `hmac-sha256-hex=<hex>` of the body under `secret`.
pub fn easypost_signature_valid(secret: &str, header: &str, body: &[u8]) -> bool {
    let Some(hex_digest) = header.trim().strip_prefix("hmac-sha256-hex=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The `X-Hmac-Signature` value EasyPost would send for `body`.
pub fn easypost_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!(
        "hmac-sha256-hex={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn report(tracker: &Tracker) -> Result<CarrierReport, String> {
    let estimated_delivery = tracker
        .est_delivery_date
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .map(|d| time::parse_date_or_datetime("result.est_delivery_date", d))
        .transpose()
        .map_err(|e| e.to_string())?;
    let details = tracker
        .tracking_details
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let status = d
                .status
                .parse::<ShipmentStatus>()
                .unwrap_or(ShipmentStatus::Unknown);
            let datetime = time::parse_datetime(
                &format!("result.tracking_details[{i}].datetime"),
                &d.datetime,
            )
            .map_err(|e| e.to_string())?;
            let location = d.tracking_location.as_ref().map(|l| Location {
                city: l.city.clone(),
                state: l.state.clone(),
                country: l.country.clone(),
                postal_code: l.zip.clone(),
            });
            Ok(HistoryEntry {
                status: status.as_str().to_owned(),
                message: d
                    .message
                    .clone()
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| status.description().to_owned()),
                datetime,
                location: location.filter(|l| !l.is_empty()),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(CarrierReport {
        estimated_delivery,
        details,
    })
}

#[utoipa::path(post, path = "/inbound/easypost/{storeId}", tag = "Inbound",
    params(("storeId" = String, Path, description = "The store the tracker belongs to"),
        ("X-Hmac-Signature" = String, Header, description = "hmac-sha256-hex=<hex of HMAC-SHA256(store's easypostWebhookSecret, raw body)>")),
    request_body = EasyPostEvent,
    responses((status = 200, description = "{status: recorded, fulfillmentId, shipmentStatus}, {status: unmatched} for an unknown tracking code, or {status: ignored} for another event type", body = Object),
        (status = 400, description = "The event is not a valid tracker event", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No secret for this store, or the signature does not match", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = "default", description = "Any other error", body = crate::problem::Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(store_id = %store_id))]
pub(crate) async fn easypost(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // An unknown store answers as one without a secret: the endpoint does not tell which
    // store ids exist.
    let settings = match state.store.store_settings(&store_id).await {
        Ok(s) => s,
        Err(StoreError::Domain(_)) => Default::default(),
        Err(e) => return store_problem(e),
    };
    let Some(secret) = settings.easypost_secret else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "this store has no EasyPost webhook secret; set easypostWebhookSecret in its settings",
        );
    };
    let signature = headers
        .get("x-hmac-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !easypost_signature_valid(&secret, signature, &body) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "X-Hmac-Signature is missing or does not match the body",
        );
    }
    let event: EasyPostEvent = match crate::extract::parse_json(&body) {
        Ok(e) => e,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("the event is not valid: {}", e.message()),
            );
        }
    };
    if event.description != "tracker.updated" && event.description != "tracker.created" {
        return Json(json!({ "status": "ignored" })).into_response();
    }
    let Some(tracker) = event.result else {
        return problem(StatusCode::BAD_REQUEST, "the event has no result tracker");
    };
    let report = match report(&tracker) {
        Ok(r) => r,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, detail),
    };
    match state
        .store
        .apply_carrier_report(
            &store_id,
            tracker.tracking_code.trim(),
            tracker.carrier.as_deref(),
            report,
        )
        .await
    {
        Ok(Some(f)) => Json(json!({
            "status": "recorded",
            "fulfillmentId": f.id,
            "shipmentStatus": f.status.as_str(),
        }))
        .into_response(),
        Ok(None) => {
            tracing::info!(tracking_code = %tracker.tracking_code, "EasyPost event for an unknown tracking code");
            Json(json!({ "status": "unmatched" })).into_response()
        }
        Err(e) => store_problem(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let header = easypost_signature("s3cret", b"{}");
        assert!(header.starts_with("hmac-sha256-hex="));
        assert!(easypost_signature_valid("s3cret", &header, b"{}"));
        assert!(!easypost_signature_valid("other", &header, b"{}"));
        assert!(!easypost_signature_valid("s3cret", &header, b"{ }"));
        assert!(!easypost_signature_valid("s3cret", "", b"{}"));
        assert!(!easypost_signature_valid(
            "s3cret",
            "hmac-sha256-hex=zz",
            b"{}"
        ));
    }
}
