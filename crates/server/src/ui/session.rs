//! Dashboard sessions, kept in the database so that any server on it knows them.
//!
//! A session holds the store id, the ids of the API keys whose secret signed it in, and a CSRF
//! token; never the secret. The database keeps only the SHA-256 of the cookie value, so a dump
//! of the table gives no usable cookie. Sessions end after [`IDLE_TIMEOUT`] without a request
//! or [`MAX_AGE`] in all, on sign-out, and when their key is revoked (checked on every request
//! by the `Signed` extractor). A request marks its session used only when the mark is older
//! than [`TOUCH_INTERVAL`], so most page views write nothing (the idle timeout is therefore
//! exact to within that interval). Sessions survive a restart and are shared by every server
//! on the database; the retention task deletes expired ones.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use waybill_core::Timestamp;
use waybill_store::{NewSession, SessionRecord, Store, StoreResult};

/// The session cookie.
pub const SESSION_COOKIE: &str = "waybill_session";
/// The sign-in form's CSRF cookie (double submit: the form carries the same value).
pub const LOGIN_COOKIE: &str = "waybill_login";
/// A session unused for this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, however busy.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// A request marks its session used only if the last mark is older than this.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// What a signed-in browser is allowed to act as.
#[derive(Debug, Clone)]
pub struct Session {
    pub store_id: String,
    /// The live keys whose display prefix matched the secret at sign-in (almost always one);
    /// revoking any of them ends the session.
    pub key_ids: Vec<String>,
    /// Every POST form of the session carries this.
    pub csrf: String,
    created: Timestamp,
    last_seen: Timestamp,
}

fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

fn minus(t: Timestamp, d: Duration) -> Timestamp {
    t - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

impl Session {
    fn expired(&self, now: Timestamp) -> bool {
        elapsed(self.last_seen, now) > IDLE_TIMEOUT || elapsed(self.created, now) > MAX_AGE
    }

    fn from_record(r: SessionRecord) -> Session {
        Session {
            store_id: r.store_id,
            key_ids: r.key_ids,
            csrf: r.csrf,
            created: r.created_at,
            last_seen: r.last_seen_at,
        }
    }
}

/// The stored form of a cookie value: its SHA-256, in hex.
pub fn token_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Starts a session; returns the cookie value that names it.
pub async fn create(
    store: &dyn Store,
    store_id: String,
    key_ids: Vec<String>,
    now: Timestamp,
) -> StoreResult<String> {
    let id = random_token();
    store
        .create_session(NewSession {
            token_hash: token_hash(&id),
            store_id,
            key_ids,
            csrf: random_token(),
            created_at: now,
            expires_at: plus(now, MAX_AGE),
        })
        .await?;
    Ok(id)
}

/// The live session a cookie value names. An expired one is deleted; a live one is marked
/// used when its mark is older than [`TOUCH_INTERVAL`].
pub async fn get(store: &dyn Store, id: &str, now: Timestamp) -> StoreResult<Option<Session>> {
    let hash = token_hash(id);
    let Some(record) = store.get_session(&hash).await? else {
        return Ok(None);
    };
    let mut session = Session::from_record(record);
    if session.expired(now) {
        store.delete_session(&hash).await?;
        return Ok(None);
    }
    if elapsed(session.last_seen, now) >= TOUCH_INTERVAL {
        store.touch_session(&hash, now).await?;
        session.last_seen = now;
    }
    Ok(Some(session))
}

/// Ends the session a cookie value names (nothing if there is none).
pub async fn remove(store: &dyn Store, id: &str) -> StoreResult<()> {
    store.delete_session(&token_hash(id)).await
}

/// For retention: sessions last used before this are idle past the timeout.
pub fn idle_cutoff(now: Timestamp) -> Timestamp {
    minus(now, IDLE_TIMEOUT)
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
    fn idle_and_old_sessions_expire() {
        let start = waybill_core::time::now();
        let mut session = Session {
            store_id: "s".into(),
            key_ids: vec![],
            csrf: "t".into(),
            created: start,
            last_seen: start,
        };
        let second = Duration::from_secs(1);
        assert!(!session.expired(plus(start, IDLE_TIMEOUT - second)));
        assert!(session.expired(plus(start, IDLE_TIMEOUT + second)));
        // Kept busy, it still ends at MAX_AGE.
        session.last_seen = plus(start, MAX_AGE - second);
        assert!(!session.expired(plus(start, MAX_AGE)));
        assert!(session.expired(plus(start, MAX_AGE + second)));
    }

    #[test]
    fn only_the_hash_of_a_cookie_is_stored() {
        let id = random_token();
        assert_eq!(id.len(), 64);
        let hash = token_hash(&id);
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, id);
        assert_eq!(hash, token_hash(&id));
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
