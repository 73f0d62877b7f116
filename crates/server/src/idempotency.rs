//! `Idempotency-Key` on every POST and PUT of every dialect.
//!
//! A request carrying the header (1–255 visible ASCII characters) is matched, within its
//! store, against earlier requests with the same key: the first one runs and its answer (unless
//! a server error) is stored; a later one with the same method, path and body gets that answer
//! again, marked `Idempotent-Replayed: true`; one with a different request is refused with 422;
//! one arriving while the first is still running is refused with 409. Keys live for the
//! configured time (24 h by default) and are purged by the scheduler.
//!
//! The reservation holds under a short lease ([`LEASE`], 10 s) that the request renews every
//! third of it while its handler runs ([`keep_reserved`], polled beside the handler in one
//! `select!`, so it stops the moment the handler finishes or the request is dropped). A live
//! request however slow keeps its key; one whose process died stops renewing, and a retry on
//! any process takes the key over once the lease has run out, within 10 s of the death instead
//! of the minute a fixed lease once took. Renewing, storing the answer and releasing name the
//! reservation's own token, so none of them touches a reservation another request has taken
//! over, and a renewal never brings back a completed or released key. A failed renewal is
//! logged and tried again at the next turn; the request goes on.
//!
//! The answer is stored after the command has committed, in a second transaction. If the
//! process dies between the two, the key stays reserved until its lease runs out, and a retry
//! after that runs the command again: a create with the caller's own id then meets its
//! duplicate check. A request abandoned by the time limit stops renewing and frees its key the
//! same way.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use waybill_store::{IdempotencyBegin, IdempotencyHold, IdempotencyRequest, Store, StoredResponse};

use crate::dialects::error_for_path;
use crate::{AppState, MAX_BODY_BYTES, auth};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a first request holds its key, unless it renews it, before a retry may take it
/// over: the default of [`crate::AppState::with_idempotency_lease`]. It bounds how long a key
/// stays reserved after its process died (or its request was dropped).
pub const LEASE: Duration = Duration::from_secs(10);
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
    let fingerprint = fingerprint(
        &parts.method,
        parts
            .uri
            .path_and_query()
            .map_or(path.as_str(), |p| p.as_str()),
        &bytes,
    );
    let lease = state.idempotency_lease;
    let request = IdempotencyRequest {
        store_id,
        key,
        fingerprint,
        token: uuid::Uuid::new_v4().to_string(),
        lease,
        ttl: state.idempotency_ttl,
    };
    let hold = request.hold();
    let begin = state
        .store
        .idempotency_begin(request, waybill_core::time::now())
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
    // The handler runs beside the renewals; whichever way it ends (answered, or dropped with
    // the request), the renewals end with it.
    let handler = next.run(Request::from_parts(parts, Body::from(bytes)));
    let response = tokio::select! {
        response = handler => response,
        never = keep_reserved(state.store.as_ref(), &hold, lease) => match never {},
    };
    let status = response.status();
    if status.is_server_error() {
        match state.store.idempotency_release(&hold).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                key = %hold.key,
                "an idempotency key was no longer held by its request when it was to be released"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "an idempotency key could not be released; it frees itself when its lease ends")
            }
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
    match state.store.idempotency_complete(&hold, stored).await {
        Ok(true) => {}
        // The lease ran out without a renewal (the database was unreachable for that long) and
        // a retry took the key over; that request's answer is the one kept.
        Ok(false) => tracing::warn!(
            key = %hold.key,
            "an idempotent answer was not stored: another request had taken the key over"
        ),
        // The command committed; only its replay is lost. A retry after the lease runs again.
        Err(e) => tracing::warn!(error = %e, "an idempotent answer could not be stored"),
    }
    parts
        .headers
        .insert(REPLAYED, HeaderValue::from_static("false"));
    Response::from_parts(parts, Body::from(bytes))
}

/// The hash a key's requests must share: method, path with query, and body.
pub fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b" ");
    hash.update(path_and_query.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hex::encode(hash.finalize())
}

/// How often a running request renews its key: three times per lease, so that a renewal may
/// fail or come late and the next one still lands before the lease runs out.
pub fn renewal_interval(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(10))
}

/// Renews `hold`'s lease every [`renewal_interval`] for as long as it is polled; never returns.
/// A renewal that fails is logged and tried again at the next turn. Once the key is found no
/// longer held (taken over after a lease that ran out unrenewed), it stops renewing.
pub async fn keep_reserved(
    store: &dyn Store,
    hold: &IdempotencyHold,
    lease: Duration,
) -> Infallible {
    let every = renewal_interval(lease);
    let mut turns = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    turns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        turns.tick().await;
        match store
            .idempotency_renew(hold, lease, waybill_core::time::now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    key = %hold.key,
                    "an idempotency key's lease ran out and another request took the key over; \
                     this request no longer holds it"
                );
                return std::future::pending().await;
            }
            Err(e) => tracing::warn!(
                key = %hold.key,
                error = %e,
                "an idempotency key's lease could not be renewed; trying again"
            ),
        }
    }
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
