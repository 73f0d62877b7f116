//! State that several Waybill processes on one database must share: dashboard sessions, the
//! sign-in throttle's failures and blocks, and the shared API rate-limit windows; and the
//! retention purges that keep these, the outbox and the delivery history bounded.
//!
//! Backends store rows; the policy (idle timeout, maximum age, delays, windows, ages) is the
//! server's. A session is found by the SHA-256 of its cookie value (hex), never the value.

use waybill_core::Timestamp;

/// A session as it is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Hex SHA-256 of the cookie value.
    pub token_hash: String,
    pub store_id: String,
    /// The API keys that signed in; revoking any of them ends the session.
    pub key_ids: Vec<String>,
    pub csrf: String,
    pub created_at: Timestamp,
    /// When the session ends however busy it is (its maximum age).
    pub expires_at: Timestamp,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub store_id: String,
    pub key_ids: Vec<String>,
    pub csrf: String,
    pub created_at: Timestamp,
    /// Last time a request used it, to within the server's touch interval.
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One bounded retention step: at most `limit` rows of one kind deleted by one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// Outbox events fanned out before `before`, none of whose deliveries or automation runs is
    /// still open. (SQLite also keeps the newest event, whose id the next one follows.)
    Outbox { before: Timestamp },
    /// Finished (delivered or failed) deliveries last updated before `before`, except the
    /// newest of each order on each webhook (an order's last payload is read from it). Their
    /// attempts go with them.
    Deliveries { before: Timestamp },
    /// Delivery attempts made before `before`.
    Attempts { before: Timestamp },
    /// Idempotency keys expired at `now`.
    IdempotencyKeys { now: Timestamp },
    /// Sessions past their maximum age at `now` or unused since `idle_before`.
    Sessions {
        now: Timestamp,
        idle_before: Timestamp,
    },
    /// Sign-in failures made before `before`, and blocks over at `now`.
    SigninThrottle { now: Timestamp, before: Timestamp },
    /// Shared rate-limit windows that started before `before`.
    RateWindows { before: Timestamp },
}

impl Purge {
    /// What the purge deletes, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Purge::Outbox { .. } => "outbox",
            Purge::Deliveries { .. } => "deliveries",
            Purge::Attempts { .. } => "attempts",
            Purge::IdempotencyKeys { .. } => "idempotency_keys",
            Purge::Sessions { .. } => "sessions",
            Purge::SigninThrottle { .. } => "signin_throttle",
            Purge::RateWindows { .. } => "rate_windows",
        }
    }
}

/// Key ids as stored: a JSON array.
pub(crate) fn encode_key_ids(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn decode_key_ids(text: &str) -> Vec<String> {
    // A row that does not parse names no key, so the session is treated as revoked.
    serde_json::from_str(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_round_trip_and_garbage_names_none() {
        let ids = vec!["key_1".to_owned(), "key \"2\"".to_owned()];
        assert_eq!(decode_key_ids(&encode_key_ids(&ids)), ids);
        assert!(decode_key_ids("not json").is_empty());
    }
}
