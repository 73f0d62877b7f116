//! Slowing down repeated failed sign-ins, in the database so every server counts together.
//!
//! Failures are counted per client address over a sliding [`WINDOW`]. After
//! [`FREE_FAILURES`] of them the address is blocked for [`BASE_DELAY`], and each further
//! failure blocks it for twice as long as the one before (up to [`MAX_DELAY`]); while blocked,
//! every sign-in from it (right or wrong) is answered 429 with `Retry-After`. A successful
//! sign-in forgets the address's failures.
//!
//! Every server on the database shares the count (a failure on one blocks the address on all)
//! and a restart forgets nothing; the retention task deletes failures older than the window
//! and blocks that are over. The key is the TCP peer's address (the proxy's, behind a reverse
//! proxy, unless the server is told to trust `X-Forwarded-For`). Secrets are 256-bit random
//! values, so this is about noise and log floods more than guessing; it never locks an
//! account, only an address.

use std::net::IpAddr;
use std::time::Duration;

use waybill_core::Timestamp;
use waybill_store::{Store, StoreResult};

/// Failures are counted over this long.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures within the window that block further attempts (the last of them starts the
/// first delay).
pub const FREE_FAILURES: u64 = 5;
/// The delay after the first failure beyond the free ones; it doubles with each further one.
pub const BASE_DELAY: Duration = Duration::from_secs(30);
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// The delay after the `n`th failure beyond the free ones (1-based).
fn delay(n: u64) -> Duration {
    let doublings = u32::try_from(n.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(16);
    BASE_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// How long an address must wait after its `failures`th failure within the window, if at all.
pub fn wait_after(failures: u64) -> Option<Duration> {
    // The FREE_FAILURES-th failure starts the first delay.
    let beyond = (failures + 1).saturating_sub(FREE_FAILURES);
    (beyond > 0).then(|| delay(beyond))
}

fn key(ip: IpAddr) -> String {
    ip.to_string()
}

fn offset(t: Timestamp, d: Duration, forward: bool) -> Timestamp {
    let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
    if forward { t + d } else { t - d }
}

/// `Err(wait)` when the address must wait before trying again.
pub async fn check(
    store: &dyn Store,
    ip: IpAddr,
    now: Timestamp,
) -> StoreResult<Result<(), Duration>> {
    Ok(match store.signin_blocked_until(&key(ip), now).await? {
        Some(until) => Err((until - now).to_std().unwrap_or(Duration::ZERO)),
        None => Ok(()),
    })
}

/// Records a failure; returns how long the address must now wait, if at all.
pub async fn failed(
    store: &dyn Store,
    ip: IpAddr,
    now: Timestamp,
) -> StoreResult<Option<Duration>> {
    let failures = store
        .record_signin_failure(&key(ip), now, offset(now, WINDOW, false))
        .await?;
    let wait = wait_after(failures);
    if let Some(wait) = wait {
        store
            .block_signin(&key(ip), offset(now, wait, true))
            .await?;
    }
    Ok(wait)
}

/// A successful sign-in: the address starts afresh.
pub async fn succeeded(store: &dyn Store, ip: IpAddr) -> StoreResult<()> {
    store.clear_signin_failures(&key(ip)).await
}

/// For retention: failures made before this are outside every window.
pub fn window_cutoff(now: Timestamp) -> Timestamp {
    offset(now, WINDOW, false)
}

/// Seconds for `Retry-After`, rounded up (never 0).
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_each_one_blocks_for_longer() {
        for n in 1..FREE_FAILURES {
            assert_eq!(wait_after(n), None, "failure {n}");
        }
        assert_eq!(wait_after(FREE_FAILURES), Some(BASE_DELAY), "the fifth");
        assert_eq!(wait_after(FREE_FAILURES + 1), Some(BASE_DELAY * 2));
        assert_eq!(wait_after(FREE_FAILURES + 2), Some(BASE_DELAY * 4));
        assert_eq!(wait_after(FREE_FAILURES + 100), Some(MAX_DELAY));
        assert_eq!(delay(100), MAX_DELAY);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
