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
//!
//! Exception reasons come from each scan's `status_detail` (or, for the newest scan without
//! one, the tracker's): see [`reason_for`]. A `failure` or `return_to_sender` scan with a detail
//! outside the mapping gets `other`, one without a detail gets none; a scan of a parcel still
//! on its way with a delay detail (`weather_delay`, `delayed`, `customs_hold`, …) raises a
//! `delayed` event with that reason; any other detail is not a reason.

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
use waybill_core::{ExceptionReason, HistoryEntry, Location, ShipmentStatus, time};
use waybill_store::StoreError;

use crate::AppState;
use crate::problem::Problem;

pub fn routes() -> Router<AppState> {
    Router::new().route("/easypost/{store_id}", post(easypost))
}

/// The events whose tracker is recorded; any other is acknowledged and ignored.
const TRACKER_EVENTS: [&str; 2] = ["tracker.updated", "tracker.created"];

#[derive(Debug, Deserialize)]
pub(crate) struct EasyPostEvent {
    description: String,
    #[serde(default)]
    result: Option<Tracker>,
}

/// An event: a tracker event with its tracker in `result`, or any other (ignored), whose
/// `result` is still read as a tracker when it is there.
impl utoipa::PartialSchema for EasyPostEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let tracker = || Ref::from_schema_name(<Tracker as utoipa::ToSchema>::name());
        let recorded = ObjectBuilder::new()
            .property(
                "description",
                crate::dialects::common::enum_schema(TRACKER_EVENTS),
            )
            .property("result", tracker())
            .required("description")
            .required("result");
        let ignored = ObjectBuilder::new()
            .property(
                "description",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^(?!tracker\.(?:updated|created)$)")),
            )
            .property("result", crate::dialects::common::or_null(tracker()))
            .required("description");
        OneOfBuilder::new()
            .item(recorded)
            .item(ignored)
            .description(Some(
                "An EasyPost event: `tracker.updated` or `tracker.created` with its tracker in \
                 `result`, or another event, acknowledged and ignored",
            ))
            .into()
    }
}

impl utoipa::ToSchema for EasyPostEvent {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            <Tracker as utoipa::ToSchema>::name().into(),
            <Tracker as utoipa::PartialSchema>::schema(),
        ));
        <Tracker as utoipa::ToSchema>::schemas(schemas);
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = EasyPostTracker)]
pub(crate) struct Tracker {
    tracking_code: String,
    #[serde(default)]
    carrier: Option<String>,
    /// A date-time or a date; blank or `null` for none.
    #[serde(default)]
    #[schema(schema_with = optional_eta_schema)]
    est_delivery_date: Option<String>,
    #[serde(default)]
    tracking_details: Vec<TrackingDetail>,
    /// The current status's detail (`weather_delay`, `address_correction`, …); used for the
    /// newest scan when that has none of its own.
    #[serde(default)]
    status_detail: Option<String>,
}

/// `est_delivery_date`: an RFC 3339 date-time, a `YYYY-MM-DD` date, blank, or `null`.
fn optional_eta_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let date = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)));
    let blank = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!(
            "^[{}]*$",
            crate::dialects::common::WHITESPACE
        )));
    utoipa::openapi::schema::Schema::OneOf(
        OneOfBuilder::new()
            .item(crate::dialects::common::date_time_schema())
            .item(date)
            .item(blank)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = EasyPostTrackingDetail)]
pub(crate) struct TrackingDetail {
    #[serde(default)]
    message: Option<String>,
    status: String,
    #[schema(schema_with = crate::dialects::common::date_time_schema)]
    datetime: String,
    #[serde(default)]
    tracking_location: Option<TrackingLocation>,
    /// EasyPost's detail of the scan's status (`weather_delay`, `refused`, …), mapped to an
    /// exception reason.
    #[serde(default)]
    status_detail: Option<String>,
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

/// The exception reason an EasyPost `status_detail` names, for a scan of `status`. Details that
/// name a reason map to it; a `failure` or `return_to_sender` with any other detail is `other`;
/// on a parcel still on its way only delay details (weather, carrier delays, customs) count.
pub(crate) fn reason_for(status: ShipmentStatus, detail: Option<&str>) -> Option<ExceptionReason> {
    let detail = detail.map(str::trim).filter(|d| !d.is_empty())?;
    let named =
        match detail.to_ascii_lowercase().as_str() {
            "address_correction"
            | "address_not_found"
            | "address_issue"
            | "incorrect_address"
            | "undeliverable_address"
            | "insufficient_address"
            | "bad_address" => Some(ExceptionReason::AddressIssue),
            "recipient_not_available"
            | "recipient_unavailable"
            | "no_one_available"
            | "customer_not_available"
            | "business_closed" => Some(ExceptionReason::RecipientUnavailable),
            "refused" | "refused_by_recipient" | "recipient_refused" | "delivery_refused" => {
                Some(ExceptionReason::Refused)
            }
            "damaged" | "package_damaged" => Some(ExceptionReason::Damaged),
            "lost" | "missing" | "package_lost" => Some(ExceptionReason::Lost),
            "weather_delay" | "weather" => Some(ExceptionReason::Weather),
            "customs_hold" | "customs_delay" | "customs" | "held_in_customs"
            | "customs_exception" => Some(ExceptionReason::Customs),
            "delayed" | "transit_exception" | "missorted" | "carrier_delay"
            | "mechanical_delay" => Some(ExceptionReason::CarrierDelay),
            "expired" | "not_collected" | "unclaimed" => Some(ExceptionReason::NotCollected),
            "prohibited_item" | "hazardous_material" | "postage_due" | "rejected" => {
                Some(ExceptionReason::ShipmentRejected)
            }
            _ => None,
        };
    match status {
        ShipmentStatus::Failure | ShipmentStatus::ReturnToSender => {
            Some(named.unwrap_or(ExceptionReason::Other))
        }
        ShipmentStatus::PreTransit
        | ShipmentStatus::Unknown
        | ShipmentStatus::InTransit
        | ShipmentStatus::OutForDelivery => named.filter(|r| {
            matches!(
                r,
                ExceptionReason::Weather | ExceptionReason::CarrierDelay | ExceptionReason::Customs
            )
        }),
        _ => None,
    }
}

fn report(tracker: &Tracker) -> Result<CarrierReport, String> {
    let estimated_delivery = tracker
        .est_delivery_date
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .map(|d| time::parse_date_or_datetime("result.est_delivery_date", d))
        .transpose()
        .map_err(|e| e.to_string())?;
    let newest = tracker.tracking_details.len().checked_sub(1);
    let details = tracker
        .tracking_details
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let detail = d.status_detail.as_deref().or_else(|| {
                (Some(i) == newest)
                    .then_some(tracker.status_detail.as_deref())
                    .flatten()
            });
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
                reason: reason_for(status, detail),
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
    responses((status = 200, description = "{status: recorded, fulfillmentId, shipmentStatus}; for a return parcel {status: recorded, returnId, shipmentStatus, returnStatus}; {status: unmatched} for an unknown tracking code, or {status: ignored} for another event type", body = Object),
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
    if !TRACKER_EVENTS.contains(&event.description.as_str()) {
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
        Ok(None) => return_report(&state, &store_id, &tracker).await,
        Err(e) => store_problem(e),
    }
}

/// A tracker no fulfillment has may follow a return parcel: its report goes to the newest
/// return with that tracking number (`{status: recorded, returnId, shipmentStatus,
/// returnStatus}`), or nowhere (`{status: unmatched}`).
async fn return_report(state: &AppState, store_id: &str, tracker: &Tracker) -> Response {
    let report = match report(tracker) {
        Ok(r) => r,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, detail),
    };
    match state
        .store
        .apply_return_carrier_report(store_id, tracker.tracking_code.trim(), report)
        .await
    {
        Ok(Some(r)) => Json(json!({
            "status": "recorded",
            "returnId": r.id,
            "shipmentStatus": r.shipment_status.as_str(),
            "returnStatus": r.status.as_str(),
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

    /// Whether the handler takes `body` once its signature is checked: it parses, and a tracker
    /// event has a tracker whose report reads.
    fn handler_takes(body: &serde_json::Value) -> bool {
        let Ok(event) = crate::extract::parse_json::<EasyPostEvent>(body.to_string().as_bytes())
        else {
            return false;
        };
        if !TRACKER_EVENTS.contains(&event.description.as_str()) {
            return true;
        }
        event.result.is_some_and(|tracker| report(&tracker).is_ok())
    }

    fn document_takes(body: &serde_json::Value) -> bool {
        let doc: serde_json::Value =
            serde_json::from_str(&crate::openapi::document_json()).unwrap();
        let schema = &doc["paths"]["/inbound/easypost/{storeId}"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"];
        let root = json!({"components": doc["components"], "allOf": [schema]});
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap()
            .is_valid(body)
    }

    #[test]
    fn the_document_states_which_events_are_taken() {
        let tracker = |details: serde_json::Value, eta: serde_json::Value| {
            json!({"tracking_code": "9400111", "carrier": "USPS", "est_delivery_date": eta,
                   "tracking_details": details})
        };
        let scan = json!([{"status": "in_transit", "datetime": "2024-03-20T12:00:00-05:00",
                           "tracking_location": {"city": "Reno"}}]);
        for (body, taken) in [
            (
                json!({"description": "tracker.updated", "result": tracker(scan.clone(), json!("2024-03-25"))}),
                true,
            ),
            (
                json!({"description": "tracker.created", "result": tracker(json!([]), json!(" "))}),
                true,
            ),
            (
                json!({"description": "tracker.updated", "result": tracker(scan.clone(), json!(null))}),
                true,
            ),
            (json!({"description": "batch.created"}), true),
            (
                json!({"description": "batch.created", "result": null}),
                true,
            ),
            (json!({"description": "tracker.updated"}), false),
            (
                json!({"description": "tracker.updated", "result": null}),
                false,
            ),
            (
                json!({"description": "batch.created", "result": [1]}),
                false,
            ),
            (
                json!({"description": "tracker.updated", "result": tracker(json!([[1]]), json!(null))}),
                false,
            ),
            (
                json!({"description": "tracker.updated", "result": tracker(scan.clone(), json!("next tuesday"))}),
                false,
            ),
            (
                json!({"description": "tracker.updated", "result": tracker(
                json!([{"status": "in_transit", "datetime": "2024-03-20 12:00"}]), json!(null))}),
                false,
            ),
            (json!({"result": null}), false),
        ] {
            assert_eq!(handler_takes(&body), taken, "{body}");
            assert_eq!(document_takes(&body), taken, "{body}");
        }
    }

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
