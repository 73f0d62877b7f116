//! Limits that keep one caller from hurting the others: a rate per API key (429 with
//! `Retry-After`), a bound on each store's requests in flight (429), a time limit per request
//! (503), and a bound on the request's header bytes (431). Requests without credentials are
//! counted per client address. A key's store is learned the first time the key authenticates
//! (one lookup per key and process); until then, and for a key that does not authenticate, the
//! bound applies to the key itself. Every limit is configurable and answered in the format of the
//! dialect the path belongs to. Body size (413) and page sizes (at most 500) are bounded where
//! they are read.
//!
//! Several servers on one database: with [`LimitSettings::shared_rate`] the rate holds across
//! all of them. Each request a server's own (in-memory) limiter admits is then also counted in
//! the database, one atomic upsert per request into the key's fixed window of
//! [`shared_window`] (`burst / rate` seconds, at least one), which admits `rate × window`
//! requests. The local limiter stays in front as a fast path: a key over the limit on one
//! server alone is over it everywhere, so a flood at one server is refused without touching the
//! database. If the database cannot count, the request is let through (and logged): the limit
//! protects the service and must not be what takes it down. The in-flight bound stays per
//! server (see docs/OPERATIONS.md).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::dialects::error_for_path;

/// The limits' settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Sustained requests per second per API key; 0 turns rate limiting off.
    pub rate_per_second: u32,
    /// Requests a key may send at once above the sustained rate.
    pub burst: u32,
    /// Requests of one store (all its keys together) in flight at once; 0 turns the bound off.
    pub max_in_flight_per_store: usize,
    /// A request not answered within this is answered 503.
    pub request_timeout: Duration,
    /// Largest sum of header names and values accepted.
    pub max_header_bytes: usize,
    /// Count the rate in the database too, so it holds across every server on it.
    pub shared_rate: bool,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            rate_per_second: 0,
            burst: 0,
            max_in_flight_per_store: 0,
            request_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            shared_rate: false,
        }
    }
}

type Key = [u8; 32];

/// The limits' state, shared by every request.
pub struct Limits {
    settings: LimitSettings,
    rate: Option<DefaultKeyedRateLimiter<Key>>,
    in_flight: Mutex<HashMap<Key, usize>>,
    /// The store each key that authenticated belongs to (cleared when it grows large).
    stores: Mutex<HashMap<Key, Key>>,
    seen: AtomicU64,
}

/// Keys remembered with their store before the map is cleared.
const MAX_KNOWN_KEYS: usize = 100_000;

impl Limits {
    pub fn new(settings: LimitSettings) -> Limits {
        let rate = NonZeroU32::new(settings.rate_per_second).map(|per_second| {
            let burst = NonZeroU32::new(settings.burst).unwrap_or(per_second);
            RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
        });
        Limits {
            settings,
            rate,
            in_flight: Mutex::new(HashMap::new()),
            stores: Mutex::new(HashMap::new()),
            seen: AtomicU64::new(0),
        }
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// Whom the in-flight bound counts a request against: its key's store when known (looked
    /// up once per key), else the key itself.
    async fn holder(
        &self,
        key: Key,
        store: &dyn waybill_store::Store,
        headers: &axum::http::HeaderMap,
    ) -> Key {
        if let Some(found) = self.stores.lock().ok().and_then(|m| m.get(&key).copied()) {
            return found;
        }
        if headers.get(AUTHORIZATION).is_none() {
            return key;
        }
        match crate::auth::authenticate(store, headers).await {
            Ok(store_id) => {
                let holder: Key = Sha256::digest(format!("store:{store_id}").as_bytes()).into();
                if let Ok(mut map) = self.stores.lock() {
                    if map.len() >= MAX_KNOWN_KEYS {
                        map.clear();
                    }
                    map.insert(key, holder);
                }
                holder
            }
            Err(_) => key,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(LimitSettings::default())
    }
}

/// The shared rate's window and how many requests it admits: `burst / rate` seconds (at least
/// one second) and `rate` per second of it, so the sustained rate is `rate` and a burst of
/// `burst` fits in one window. `None` when the rate is off.
pub fn shared_window(settings: &LimitSettings) -> Option<(Duration, u64)> {
    let rate = u64::from(settings.rate_per_second);
    if rate == 0 {
        return None;
    }
    let burst = u64::from(settings.burst).max(rate);
    let window_ms = (burst * 1000).div_ceil(rate).max(1000);
    let allowed = (rate * window_ms).div_ceil(1000).max(burst);
    Some((Duration::from_millis(window_ms), allowed))
}

/// Counts a request in its key's shared window; `Err(wait)` when the window is full.
async fn check_shared(
    store: &dyn waybill_store::Store,
    settings: &LimitSettings,
    key: &Key,
) -> Result<(), Duration> {
    let Some((window, allowed)) = shared_window(settings) else {
        return Ok(());
    };
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let now_ms = waybill_core::time::to_millis(waybill_core::time::now());
    let start_ms = now_ms - now_ms.rem_euclid(window_ms);
    match store
        .count_rate_window(&hex::encode(key), waybill_core::time::from_millis(start_ms))
        .await
    {
        Ok(n) if n > allowed => Err(Duration::from_millis(
            u64::try_from(start_ms + window_ms - now_ms).unwrap_or(1000),
        )),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "shared rate limit: could not count; request let through");
            Ok(())
        }
    }
}

/// Whom a request is counted against: its credentials, else its client address.
fn caller(request: &Request) -> Key {
    let mut hash = Sha256::new();
    match request.headers().get(AUTHORIZATION) {
        Some(value) => {
            hash.update(b"auth:");
            hash.update(value.as_bytes());
        }
        None => {
            hash.update(b"addr:");
            if let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
                hash.update(addr.ip().to_string().as_bytes());
            }
        }
    }
    hash.finalize().into()
}

/// Releases a key's in-flight slot when the request ends, however it ends.
struct Slot<'a> {
    limits: &'a Limits,
    key: Key,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.limits.in_flight.lock()
            && let Some(n) = map.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

fn too_many(path: &str, retry_after: Duration, message: &str) -> Response {
    let mut response = error_for_path(
        path,
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_REQUESTS",
        "Too Many Requests",
        message,
    );
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// The limits, as middleware.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = state.limits.clone();
    let path = request.uri().path().to_owned();
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > limits.settings.max_header_bytes {
        return error_for_path(
            &path,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            "Request Header Fields Too Large",
            format!(
                "the request's headers hold {header_bytes} bytes; at most {} are accepted",
                limits.settings.max_header_bytes
            ),
        );
    }
    let key = caller(&request);
    if let Some(rate) = &limits.rate {
        if limits.seen.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            rate.retain_recent();
        }
        if let Err(not_until) = rate.check_key(&key) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(rate.clock()));
            return too_many(
                &path,
                wait,
                &format!(
                    "rate limit of {} requests per second for this API key exceeded; retry after the Retry-After header's seconds",
                    limits.settings.rate_per_second
                ),
            );
        }
        if limits.settings.shared_rate
            && let Err(wait) = check_shared(state.store.as_ref(), &limits.settings, &key).await
        {
            return too_many(
                &path,
                wait,
                &format!(
                    "rate limit of {} requests per second for this API key exceeded (counted across all servers); retry after the Retry-After header's seconds",
                    limits.settings.rate_per_second
                ),
            );
        }
    }
    let _slot = if limits.settings.max_in_flight_per_store > 0 {
        let key = limits
            .holder(key, state.store.as_ref(), request.headers())
            .await;
        let admitted = match limits.in_flight.lock() {
            Ok(mut map) => {
                let n = map.entry(key).or_insert(0);
                if *n >= limits.settings.max_in_flight_per_store {
                    false
                } else {
                    *n += 1;
                    true
                }
            }
            Err(_) => true,
        };
        if !admitted {
            return too_many(
                &path,
                Duration::from_secs(1),
                &format!(
                    "this store already has {} requests in flight; retry when one has finished",
                    limits.settings.max_in_flight_per_store
                ),
            );
        }
        Some(Slot {
            limits: &limits,
            key,
        })
    } else {
        None
    };
    match tokio::time::timeout(limits.settings.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%path, "request timed out");
            error_for_path(
                &path,
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                "Service Unavailable",
                "the request took too long and was abandoned; its outcome is unknown, so retry it with the same Idempotency-Key",
            )
        }
    }
}

/// Shared handle, as `AppState` keeps it.
pub type SharedLimits = Arc<Limits>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_window_holds_the_burst_at_the_sustained_rate() {
        let settings = |rate, burst| LimitSettings {
            rate_per_second: rate,
            burst,
            ..LimitSettings::default()
        };
        assert_eq!(shared_window(&settings(0, 10)), None);
        assert_eq!(
            shared_window(&settings(1000, 2000)),
            Some((Duration::from_secs(2), 2000))
        );
        assert_eq!(
            shared_window(&settings(5, 0)),
            Some((Duration::from_secs(1), 5))
        );
        assert_eq!(
            shared_window(&settings(3, 10)),
            Some((Duration::from_millis(3334), 11))
        );
    }
}
