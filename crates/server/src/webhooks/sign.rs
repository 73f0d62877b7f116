//! Webhook secrets and signatures.
//!
//! Redo-shaped subscriptions are signed the Standard Webhooks way: `webhook-signature` is
//! `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")), where the key is
//! the base64-decoded part of the subscription's `whsec_…` secret. Fourthwall-shaped ones carry
//! `X-Fourthwall-Hmac-SHA256` = base64(HMAC-SHA256(store secret as UTF-8 bytes, body)).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn random_base64() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

/// A fresh subscription signing secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    format!("whsec_{}", random_base64())
}

/// A fresh Fourthwall store webhook secret: base64 of 32 random bytes.
pub fn generate_store_secret() -> String {
    random_base64()
}

fn hmac_base64(key: &[u8], parts: &[&[u8]]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    for part in parts {
        mac.update(part);
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The Standard Webhooks signing key of a `whsec_…` secret.
pub fn signing_key(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

/// The `webhook-signature` header value.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let sig = hmac_base64(
        &signing_key(secret),
        &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
    );
    format!("v1,{sig}")
}

/// The `X-Fourthwall-Hmac-SHA256` header value.
pub fn fourthwall_signature(secret: &str, body: &[u8]) -> String {
    hmac_base64(secret.as_bytes(), &[body])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = standard_signature(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_have_32_random_bytes() {
        let s = generate_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(signing_key(&s).len(), 32);
        assert_ne!(s, generate_secret());
    }
}
