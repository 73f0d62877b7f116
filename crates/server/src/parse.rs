//! Each dialect's request bodies parsed and validated into domain commands, without a database:
//! the same code the handlers run between reading the body and calling the store. Exposed for
//! the fuzz targets in `fuzz/`; an error is the HTTP status the dialect would answer, and is
//! always a 4xx (a body can never cause a 5xx).

use axum::http::StatusCode;
use axum::response::IntoResponse;
use waybill_core::{NewFulfillment, NewOrder, StatusUpdate};

use crate::dialects::{adm, fourthwall, orderprotection, redo};
use crate::extract::{BodyError, parse_json};

pub use crate::dialects::adm::Checked as AdmRequest;

fn status_of(error: impl IntoResponse) -> StatusCode {
    error.into_response().status()
}

fn body<T: serde::de::DeserializeOwned, E: From<BodyError> + IntoResponse>(
    bytes: &[u8],
) -> Result<T, StatusCode> {
    parse_json::<T>(bytes).map_err(|e| status_of(E::from(e)))
}

/// Redo `POST /v2.2/stores/{storeId}/orders`.
pub fn parse_redo_order_request(bytes: &[u8]) -> Result<NewOrder, StatusCode> {
    let request: redo::types::CreateOrderRequest = body::<_, redo::RedoError>(bytes)?;
    request
        .into_domain()
        .map_err(|e| status_of(redo::RedoError::from(e)))
}

/// Redo `POST …/orders/{orderId}/fulfillments`, with carriers normalised as the handler does.
pub fn parse_redo_fulfillment_request(bytes: &[u8]) -> Result<NewFulfillment, StatusCode> {
    let request: redo::types::CreateFulfillmentRequest = body::<_, redo::RedoError>(bytes)?;
    request
        .into_domain()
        .map(crate::carriers::normalize)
        .map_err(|e| status_of(redo::RedoError::from(e)))
}

/// Redo `POST …/fulfillments/{fulfillmentId}/shipment-status`.
pub fn parse_redo_status_request(bytes: &[u8]) -> Result<StatusUpdate, StatusCode> {
    let request: redo::types::UpdateStatusRequest = body::<_, redo::RedoError>(bytes)?;
    request
        .into_domain()
        .map_err(|e| status_of(redo::RedoError::from(e)))
}

/// ADM `POST /adm/fulfillments/create`: the order, the units wanted per SKU (every unit left
/// when `None`) and the parcel.
pub fn parse_adm_request(bytes: &[u8]) -> Result<AdmRequest, StatusCode> {
    let request: adm::CreateRequest = body::<_, adm::AdmError>(bytes)?;
    request.validate().map_err(status_of)
}

/// A Fourthwall fulfillment request: the order, the label's carrier and number, and the units
/// wanted per variant.
pub type FourthwallRequest = (uuid::Uuid, String, String, Vec<(String, u32)>);

/// Fourthwall `POST /open-api/v1.0/fulfillments`.
pub fn parse_fourthwall_request(bytes: &[u8]) -> Result<FourthwallRequest, StatusCode> {
    let request: fourthwall::FulfillmentRequest = body::<_, fourthwall::FourthwallError>(bytes)?;
    request.validate().map_err(status_of)
}

/// OrderProtection `POST /v1/orders`: the order and the fulfillments it carries.
pub fn parse_orderprotection_order_request(
    bytes: &[u8],
) -> Result<(NewOrder, Vec<NewFulfillment>), StatusCode> {
    let request: orderprotection::OrderRequest = body::<_, orderprotection::OpError>(bytes)?;
    let (order, fulfillments) = request.into_domain().map_err(status_of)?;
    let fulfillments = fulfillments
        .into_iter()
        .enumerate()
        .map(|(i, f)| f.into_domain(&format!("fulfillments[{i}].")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(status_of)?;
    Ok((order, fulfillments))
}

/// OrderProtection `POST /v1/orders/{sourceOrderId}/fulfillments`.
pub fn parse_orderprotection_fulfillment_request(
    bytes: &[u8],
) -> Result<NewFulfillment, StatusCode> {
    let request: orderprotection::FulfillmentRequest = body::<_, orderprotection::OpError>(bytes)?;
    request.into_domain("").map_err(status_of)
}

/// OrderProtection `PUT /v1/orders/{sourceOrderId}/fulfillments/{sourceFulfillmentId}`.
pub fn parse_orderprotection_status_request(bytes: &[u8]) -> Result<StatusUpdate, StatusCode> {
    let request: orderprotection::StatusRequest = body::<_, orderprotection::OpError>(bytes)?;
    request.into_domain().map_err(status_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_bodies_parse_and_invalid_ones_are_4xx() {
        let order = br#"{"orderId":"1","createdAt":"2024-03-20T12:00:00Z",
            "lineItems":[{"id":"l","productId":"p","title":"t","quantity":2}]}"#;
        assert_eq!(
            parse_redo_order_request(order).map(|o| o.line_items.len()),
            Ok(1)
        );
        assert_eq!(
            parse_redo_order_request(b"{").err(),
            Some(StatusCode::BAD_REQUEST)
        );
        let adm =
            br#"{"order_id":7,"line_items":[{"sku":12,"quantity":1}],"tracking_number":"1Z"}"#;
        assert!(parse_adm_request(adm).is_ok());
        let adm =
            br#"{"order_id":7,"line_items":[{"sku":12,"quantity":0}],"tracking_number":"1Z"}"#;
        assert_eq!(parse_adm_request(adm).err(), Some(StatusCode::BAD_REQUEST));
        assert_eq!(
            parse_orderprotection_status_request(br#"{"status":"nope"}"#).err(),
            Some(StatusCode::BAD_REQUEST)
        );
        assert!(parse_orderprotection_status_request(br#"{"status":"delivered"}"#).is_ok());
    }
}
