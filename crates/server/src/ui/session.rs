//! Dashboard sessions: an in-memory map from a random cookie id to the signed-in store.
//!
//! A session holds the store id, the ids of the API keys whose secret signed it in, and a CSRF
//! token; never the secret. The map is keyed by the SHA-256 of the cookie value, so neither a
//! lookup's timing nor a dump of the map gives a usable cookie. Sessions end after
//! [`IDLE_TIMEOUT`] without a request or [`MAX_AGE`] in all, on sign-out, and when their key is
//! revoked (checked on every request by the `Signed` extractor). Sessions live in one process:
//! a restart, or a second server behind a load balancer without sticky sessions, signs people
//! out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie.
pub const SESSION_COOKIE: &str = "waybill_session";
/// The sign-in form's CSRF cookie (double submit: the form carries the same value).
pub const LOGIN_COOKIE: &str = "waybill_login";
/// A session unused for this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, however busy.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// Most sessions kept at once; signing in beyond that ends the least recently used one.
pub const MAX_SESSIONS: usize = 10_000;

/// What a signed-in browser is allowed to act as.
#[derive(Debug, Clone)]
pub struct Session {
    pub store_id: String,
    /// The live keys whose display prefix matched the secret at sign-in (almost always one);
    /// revoking any of them ends the session.
    pub key_ids: Vec<String>,
    /// Every POST form of the session carries this.
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.last_seen) > IDLE_TIMEOUT
            || now.duration_since(self.created) > MAX_AGE
    }
}

/// The live sessions of one server.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock cannot leave the map half-written (every change is
        // one insert or remove), so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session; returns the cookie value that names it.
    pub fn create(&self, store_id: String, key_ids: Vec<String>) -> String {
        let id = random_token();
        let now = Instant::now();
        let session = Session {
            store_id,
            key_ids,
            csrf: random_token(),
            created: now,
            last_seen: now,
        };
        let mut map = self.lock();
        map.retain(|_, s| !s.expired(now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(key, _)| *key)
        {
            map.remove(&oldest);
        }
        map.insert(digest(&id), session);
        id
    }

    /// The live session a cookie value names, marked as used now.
    pub fn get(&self, id: &str) -> Option<Session> {
        let key = digest(id);
        let now = Instant::now();
        let mut map = self.lock();
        let session = map.get_mut(&key)?;
        if session.expired(now) {
            map.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    /// How many sessions are held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 256 random bits as 64 hex characters.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a submitted token equals the expected one, in time that does not depend on where
/// they differ. An empty expected token never matches.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The value of the named cookie in a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the browser reached us over HTTPS, as a TLS-terminating proxy in front of Waybill
/// reports it (`X-Forwarded-Proto` or `Forwarded: proto=`). Waybill itself speaks plain HTTP.
pub fn is_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| {
            v.split(';').any(|part| {
                part.trim().split_once('=').is_some_and(|(k, val)| {
                    k.trim().eq_ignore_ascii_case("proto")
                        && val.trim().trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    forwarded_proto || forwarded
}

/// A `Set-Cookie` value for a dashboard cookie: HttpOnly, SameSite=Strict, scoped to `/ui`,
/// Secure when the browser came over HTTPS; kept for the browser session only.
pub fn set_cookie(name: &str, value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict{secure}")
}

/// A `Set-Cookie` value that deletes the named cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn sessions_are_found_by_their_cookie_and_end_on_removal() {
        let sessions = Sessions::default();
        let id = sessions.create("store".into(), vec!["key_1".into()]);
        assert_eq!(id.len(), 64);
        let s = sessions.get(&id).expect("live session");
        assert_eq!(s.store_id, "store");
        assert_eq!(s.csrf.len(), 64);
        assert_ne!(s.csrf, id);
        assert!(sessions.get("not-a-session").is_none());
        sessions.remove(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn idle_and_old_sessions_expire() {
        // Later instants are made by adding (subtracting could reach before the clock's start).
        let start = Instant::now();
        let mut session = Session {
            store_id: "s".into(),
            key_ids: vec![],
            csrf: "t".into(),
            created: start,
            last_seen: start,
        };
        let second = Duration::from_secs(1);
        assert!(!session.expired(start + IDLE_TIMEOUT - second));
        assert!(session.expired(start + IDLE_TIMEOUT + second));
        // Kept busy, it still ends at MAX_AGE.
        session.last_seen = start + MAX_AGE - second;
        assert!(!session.expired(start + MAX_AGE));
        assert!(session.expired(start + MAX_AGE + second));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(!tokens_match("abc", ""));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn cookies_and_https_are_read_from_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; waybill_session=xyz ; b="),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
        assert_eq!(cookie(&h, "c"), None);
        assert!(!is_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(is_https(&h));
        let mut h = HeaderMap::new();
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=1.2.3.4;proto=\"HTTPS\";host=x"),
        );
        assert!(is_https(&h));
        assert!(set_cookie("n", "v", true).ends_with("; Secure"));
        assert!(!set_cookie("n", "v", false).contains("Secure"));
    }
}
