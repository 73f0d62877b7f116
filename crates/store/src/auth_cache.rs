//! A short-lived, in-process memory of which store an API secret belongs to.
//!
//! Every request authenticates, and the lookup cost a database read (on SQLite a hop to a
//! blocking thread and a read transaction) that was as dear as the request's own work. Live
//! keys are remembered for `ttl` by the hash of their secret; unknown secrets are never
//! remembered, so guessing cannot fill the memory. A key revoked through this process is
//! forgotten at once; one revoked by another process (`waybill keys revoke` beside a running
//! server, or another server on the same PostgreSQL database) stops working within `ttl`.

use std::sync::RwLock;
use std::time::Duration;

use moka::sync::Cache;

use crate::StoreResult;

/// Most secrets remembered at once (each entry is two short strings).
const CAPACITY: u64 = 10_000;

pub(crate) struct AuthCache {
    /// Secret hash → store id. `None` when caching is turned off (`ttl` of zero).
    entries: Option<Cache<String, String>>,
    /// Bumped by every revocation. A lookup remembers its answer only if no revocation came
    /// between its read and its `remember`, so an answer read just before a revocation
    /// committed is not kept after it.
    generation: RwLock<u64>,
}

/// What a lookup saw before asking the database; hand it back to [`AuthCache::remember`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Generation(u64);

impl AuthCache {
    pub(crate) fn new(ttl: Duration) -> AuthCache {
        let entries = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build()
        });
        AuthCache {
            entries,
            generation: RwLock::new(0),
        }
    }

    /// The store whose live key has this secret hash: remembered, else asked of `fetch` (an
    /// unpolled database lookup) and remembered if live. Both backends authenticate through this.
    pub(crate) async fn lookup(
        &self,
        secret_hash: &str,
        fetch: impl Future<Output = StoreResult<Option<String>>>,
    ) -> StoreResult<Option<String>> {
        if let Some(store_id) = self.get(secret_hash) {
            return Ok(Some(store_id));
        }
        let seen = self.generation();
        let found = fetch.await?;
        if let Some(store_id) = &found {
            self.remember(seen, secret_hash.to_owned(), store_id.clone());
        }
        Ok(found)
    }

    /// The store of a remembered live key.
    fn get(&self, secret_hash: &str) -> Option<String> {
        self.entries.as_ref()?.get(secret_hash)
    }

    /// Call before reading the database, and pass to [`AuthCache::remember`].
    fn generation(&self) -> Generation {
        Generation(self.generation.read().map(|g| *g).unwrap_or(u64::MAX))
    }

    fn remember(&self, seen: Generation, secret_hash: String, store_id: String) {
        let Some(entries) = &self.entries else { return };
        // Held while inserting, so a revocation cannot slip between the check and the insert.
        if let Ok(current) = self.generation.read()
            && *current == seen.0
        {
            entries.insert(secret_hash, store_id);
        }
    }

    /// After a revocation: the revoked key's secret is not known here (only its id), and
    /// revocations are rare, so everything is forgotten.
    pub(crate) fn forget_all(&self) {
        let Some(entries) = &self.entries else { return };
        match self.generation.write() {
            Ok(mut current) => {
                *current = current.wrapping_add(1);
                entries.invalidate_all();
            }
            // A poisoned lock: `remember` then refuses every insert, which is safe.
            Err(_) => entries.invalidate_all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_forgotten_and_not_when_off() {
        let cache = AuthCache::new(Duration::from_secs(60));
        cache.remember(cache.generation(), "h".into(), "store".into());
        assert_eq!(cache.get("h").as_deref(), Some("store"));
        cache.forget_all();
        assert_eq!(cache.get("h"), None);

        let off = AuthCache::new(Duration::ZERO);
        off.remember(off.generation(), "h".into(), "store".into());
        assert_eq!(off.get("h"), None);
    }

    #[test]
    fn an_answer_read_before_a_revocation_is_not_kept() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let seen = cache.generation();
        cache.forget_all();
        cache.remember(seen, "h".into(), "store".into());
        assert_eq!(cache.get("h"), None);
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let cache = AuthCache::new(Duration::from_millis(50));
        cache.remember(cache.generation(), "h".into(), "store".into());
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(cache.get("h"), None);
    }
}
