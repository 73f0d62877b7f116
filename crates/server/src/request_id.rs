//! Request ids: every request gets an `x-request-id` (the caller's own, if it sent one, else a
//! fresh UUID), carried by the request's tracing span so every log line of the request shows
//! it, and returned in the response.

use axum::body::Body;
use axum::http::Request;
use tracing::Span;

/// The header that carries the id, in both directions.
pub const HEADER: &str = "x-request-id";

/// The span every request runs in (`TraceLayer::make_span_with`). It is an INFO span of this
/// crate, so the default log filter keeps it and the handlers' own spans nest inside it.
pub fn span(request: &Request<Body>) -> Span {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}
