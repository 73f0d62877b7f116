//! Slowing down repeated failed sign-ins, in memory.
//!
//! Failures are counted per client address over a sliding [`WINDOW`]. After
//! [`FREE_FAILURES`] of them the address is blocked for [`BASE_DELAY`], and each further
//! failure blocks it for twice as long as the one before (up to [`MAX_DELAY`]); while blocked,
//! every sign-in from it (right or wrong) is answered 429 with `Retry-After`. A successful sign-in forgets
//! the address's failures.
//!
//! Kept per process, like the sessions: a restart forgets it, and servers behind a load
//! balancer each count their own (moving it to the database is a separate change). The key is
//! the TCP peer's address (the proxy's, behind a reverse proxy, unless the server is told to
//! trust `X-Forwarded-For`). Secrets are 256-bit random values, so this is about noise and
//! log floods more than guessing; it never locks an account, only an address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures are counted over this long.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures within the window that block further attempts (the last of them starts the
/// first delay).
pub const FREE_FAILURES: usize = 5;
/// The delay after the first failure beyond the free ones; it doubles with each further one.
pub const BASE_DELAY: Duration = Duration::from_secs(30);
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Most addresses tracked; beyond that the stalest are forgotten.
const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug, Default)]
struct Entry {
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Entry {
    fn forget_old(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            self.failures.pop_front();
        }
    }

    fn stale(&self, now: Instant) -> bool {
        self.failures.is_empty() && self.blocked_until.is_none_or(|until| until <= now)
    }
}

/// Failed sign-ins per client address.
#[derive(Debug, Default)]
pub struct Throttle {
    map: Mutex<HashMap<IpAddr, Entry>>,
}

/// The delay after the `n`th failure beyond the free ones (1-based).
fn delay(n: usize) -> Duration {
    let doublings = u32::try_from(n.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(16);
    BASE_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        // Every change is a whole-entry update, so a poisoned lock is still consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(wait)` when the address must wait before trying again.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.lock().get(&ip).and_then(|e| e.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failure; returns how long the address must now wait, if at all.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut map = self.lock();
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            map.retain(|_, e| {
                e.forget_old(now);
                !e.stale(now)
            });
            if map.len() >= MAX_ADDRESSES {
                // Still full of live entries: forget the one blocked the shortest.
                if let Some(key) = map
                    .iter()
                    .min_by_key(|(_, e)| e.failures.back().copied())
                    .map(|(k, _)| *k)
                {
                    map.remove(&key);
                }
            }
        }
        let entry = map.entry(ip).or_default();
        entry.forget_old(now);
        entry.failures.push_back(now);
        // The FREE_FAILURES-th failure starts the first delay.
        let beyond = (entry.failures.len() + 1).saturating_sub(FREE_FAILURES);
        if beyond == 0 {
            return None;
        }
        let wait = delay(beyond);
        entry.blocked_until = Some(now + wait);
        Some(wait)
    }

    /// A successful sign-in: the address starts afresh.
    pub fn succeeded(&self, ip: IpAddr) {
        self.lock().remove(&ip);
    }
}

/// Seconds for `Retry-After`, rounded up (never 0).
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn five_failures_are_free_then_each_one_blocks_for_longer() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for i in 1..FREE_FAILURES {
            assert_eq!(throttle.failed(IP, start), None, "failure {i}");
            assert!(throttle.check(IP, start).is_ok());
        }
        assert_eq!(throttle.failed(IP, start), Some(BASE_DELAY), "the fifth");
        assert_eq!(throttle.check(IP, start), Err(BASE_DELAY));
        assert!(throttle.check(OTHER, start).is_ok(), "only that address");
        let later = start + BASE_DELAY + Duration::from_secs(1);
        assert!(throttle.check(IP, later).is_ok(), "the delay ends");
        assert_eq!(throttle.failed(IP, later), Some(BASE_DELAY * 2));
        assert_eq!(throttle.failed(IP, later), Some(BASE_DELAY * 4));
        assert_eq!(delay(100), MAX_DELAY);
    }

    #[test]
    fn success_resets_and_old_failures_expire() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for _ in 1..FREE_FAILURES {
            throttle.failed(IP, start);
        }
        throttle.succeeded(IP);
        assert_eq!(throttle.failed(IP, start), None, "counting starts again");
        let throttle = Throttle::default();
        for _ in 1..FREE_FAILURES {
            throttle.failed(IP, start);
        }
        let after_window = start + WINDOW + Duration::from_secs(1);
        assert_eq!(throttle.failed(IP, after_window), None, "old ones expired");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
