//! EasyPost's `X-Hmac-Signature` check: arbitrary secrets, headers and bodies never panic; the
//! signature computed for a body verifies, and one for a different body does not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waybill_server::inbound::{easypost_signature, easypost_signature_valid};

fuzz_target!(|data: &[u8]| {
    // secret \0 header \0 body
    let mut parts = data.splitn(3, |b| *b == 0);
    let secret = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();

    let accepted = easypost_signature_valid(&secret, &header, body);
    let good = easypost_signature(&secret, body);
    assert!(easypost_signature_valid(&secret, &good, body));
    if accepted {
        // Only the right digest is accepted (hex is case-insensitive).
        let digest = header.trim().trim_start_matches("hmac-sha256-hex=");
        assert_eq!(
            hex::decode(digest).ok(),
            hex::decode(good.trim_start_matches("hmac-sha256-hex=")).ok()
        );
    }
    let mut other = body.to_vec();
    other.push(b'x');
    assert!(!easypost_signature_valid(&secret, &good, &other));
});
