//! `Idempotency-Key` on every POST and PUT of every dialect.
//!
//! A request carrying the header (1–255 visible ASCII characters) is matched, within its
//! store, against earlier requests with the same key: the first one runs and its answer (unless
//! a server error) is stored; a later one with the same method, path and body gets that answer
//! again, marked `Idempotent-Replayed: true`; one with a different request is refused with 422;
//! one arriving while the first is still running is refused with 409. Keys live for the
//! configured time (24 h by default) and are purged by the scheduler.
//!
//! The answer is stored after the command has committed, in a second transaction. If the
//! process dies between the two, the key stays reserved until its lease runs out (a minute),
//! and a retry after that runs the command again: a create with the caller's own id then meets
//! its duplicate check. A request abandoned by the time limit keeps its reservation the same way.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use waybill_store::{IdempotencyBegin, IdempotencyRequest, StoredResponse};

use crate::dialects::error_for_path;
use crate::{AppState, MAX_BODY_BYTES, auth};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a first request holds its key before a retry may take it over.
pub const LEASE: Duration = Duration::from_secs(60);
/// Largest answer stored for replay (answers are far smaller).
const MAX_STORED: usize = 4 * 1024 * 1024;

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// The middleware.
pub async fn handle(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::POST | Method::PUT) {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_owned();
    let key = match value.to_str() {
        Ok(k) if valid_key(k.trim()) => k.trim().to_owned(),
        _ => {
            return error_for_path(
                &path,
                StatusCode::BAD_REQUEST,
                "INVALID_IDEMPOTENCY_KEY",
                "Invalid Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            );
        }
    };
    // An unauthenticated request runs as it is: its handler answers 401 in its own format.
    let Ok(store_id) = auth::authenticate(state.store.as_ref(), request.headers()).await else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error_for_path(
                &path,
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "Payload Too Large",
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            );
        }
    };
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str().as_bytes());
    hash.update(b" ");
    hash.update(
        parts
            .uri
            .path_and_query()
            .map_or(path.as_str(), |p| p.as_str())
            .as_bytes(),
    );
    hash.update(b"\n");
    hash.update(&bytes);
    let fingerprint = hex::encode(hash.finalize());
    let begin = state
        .store
        .idempotency_begin(
            IdempotencyRequest {
                store_id: store_id.clone(),
                key: key.clone(),
                fingerprint,
                lease: LEASE,
                ttl: state.idempotency_ttl,
            },
            waybill_core::time::now(),
        )
        .await;
    match begin {
        Ok(IdempotencyBegin::Proceed) => {}
        Ok(IdempotencyBegin::Replay(stored)) => return replay(stored),
        Ok(IdempotencyBegin::Mismatch) => {
            return error_for_path(
                &path,
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "Idempotency Key Reused",
                "this Idempotency-Key was used with a different request; use a new key for a new request",
            );
        }
        Ok(IdempotencyBegin::InProgress) => {
            return error_for_path(
                &path,
                StatusCode::CONFLICT,
                "IDEMPOTENCY_KEY_IN_PROGRESS",
                "Request In Progress",
                "a request with this Idempotency-Key is still in progress; retry shortly",
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "idempotency key could not be reserved");
            return error_for_path(
                &path,
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Service Unavailable",
                "the service is temporarily unavailable; retry shortly",
            );
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status();
    if status.is_server_error() {
        if let Err(e) = state.store.idempotency_release(&store_id, &key).await {
            tracing::warn!(error = %e, "an idempotency key could not be released; it frees itself when its lease ends");
        }
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_STORED).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "an answer could not be read for storing");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let stored = StoredResponse {
        status: status.as_u16(),
        content_type: parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: bytes.to_vec(),
    };
    if let Err(e) = state
        .store
        .idempotency_complete(&store_id, &key, stored)
        .await
    {
        // The command committed; only its replay is lost. A retry after the lease runs again.
        tracing::warn!(error = %e, "an idempotent answer could not be stored");
    }
    parts
        .headers
        .insert(REPLAYED, HeaderValue::from_static("false"));
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.remove(CONTENT_TYPE);
    if let Some(value) = stored
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
