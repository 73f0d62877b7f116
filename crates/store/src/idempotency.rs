//! Idempotency keys: a client's `Idempotency-Key` header, scoped to its store. The first request
//! with a key reserves it (in progress, under a short lease that the request renews while it
//! runs); its answer, unless a server error, is stored and replayed to every later request with
//! the same key and the same request, until the key expires. The same key with a different
//! request is refused, and so is one still in progress. A reservation whose lease ran out (its
//! request died with its process, or stopped renewing) is taken over by the next request.
//!
//! Each reservation carries its holder's token ([`IdempotencyRequest::token`]): renewing,
//! completing and releasing name it, so a request only ever touches the reservation it still
//! holds, never one another request took over after its lease ran out, and never a completed
//! one. Backends store the rows; the HTTP layer decides what to do with the outcomes.

use std::time::Duration;

use waybill_core::Timestamp;

/// What a request with an idempotency key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is now reserved for this request: run it, then complete or release the key.
    Proceed,
    /// The key's first answer, to send again.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// Another request with this key is still running.
    InProgress,
}

/// An answer as stored for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// How a key is reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRequest {
    pub store_id: String,
    pub key: String,
    /// A hash of the request (method, path, body): the same key must come with the same one.
    pub fingerprint: String,
    /// This reservation's own token, unique per request (the HTTP layer uses a random UUID):
    /// [`crate::Store::idempotency_renew`], `idempotency_complete` and `idempotency_release`
    /// act only while the key is still reserved under it.
    pub token: String,
    /// How long a reservation holds, unless renewed, before another request may take it over
    /// (its request is presumed dead).
    pub lease: Duration,
    /// How long the key, and its stored answer, live.
    pub ttl: Duration,
}

impl IdempotencyRequest {
    /// The reservation this request holds once it may proceed.
    pub fn hold(&self) -> IdempotencyHold {
        IdempotencyHold {
            store_id: self.store_id.clone(),
            key: self.key.clone(),
            token: self.token.clone(),
        }
    }
}

/// A reservation as its holder names it: the key, and the token it was reserved under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyHold {
    pub store_id: String,
    pub key: String,
    pub token: String,
}

/// `now + d`, saturating.
pub(crate) fn after(now: Timestamp, d: Duration) -> i64 {
    waybill_core::time::to_millis(now)
        .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
