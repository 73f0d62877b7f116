//! API secrets: generated with enough entropy that a fast hash (SHA-256) is the right way to
//! store them; a slow password hash would only cost latency on every request.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every API secret starts with this, so leak scanners can find them.
pub const SECRET_PREFIX: &str = "wb_sk_";
/// How many characters of a secret are kept to recognise it in listings.
pub const DISPLAY_PREFIX_LEN: usize = SECRET_PREFIX.len() + 6;

/// A freshly created key: the only moment the secret exists outside the caller's hands.
#[derive(Clone)]
pub struct NewApiKey {
    pub id: String,
    pub store_id: String,
    pub secret: String,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("store_id", &self.store_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new secret: the prefix and 256 random bits.
pub fn generate_secret() -> String {
    format!("{SECRET_PREFIX}{}", random_hex(32))
}

/// A store id in the style Redo's documents show (24 hex characters).
pub fn generate_store_id() -> String {
    random_hex(12)
}

/// An API key id (not secret).
pub fn generate_key_id() -> String {
    format!("key_{}", random_hex(8))
}

/// The hex SHA-256 of a secret, the only form stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The recognisable start of a secret.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(DISPLAY_PREFIX_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_long_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(generate_store_id().len(), 24);
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = NewApiKey {
            id: "key_1".into(),
            store_id: "s".into(),
            secret: generate_secret(),
        };
        assert!(!format!("{key:?}").contains(&key.secret));
    }
}
