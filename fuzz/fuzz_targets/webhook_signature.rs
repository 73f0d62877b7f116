//! Standard Webhooks and Fourthwall signing on arbitrary secrets, ids, timestamps and bodies:
//! never a panic, deterministic, always `v1,` + base64 of a 32-byte HMAC, and bound to the body.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use waybill_server::webhooks::sign;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (ts, rest) = data.split_at(8);
    let timestamp = i64::from_le_bytes(ts.try_into().unwrap_or_default());
    let mut parts = rest.splitn(3, |b| *b == 0);
    let secret = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let id = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();

    let _ = sign::signing_key(&secret);
    let signature = sign::standard_signature(&secret, &id, timestamp, body);
    assert_eq!(signature, sign::standard_signature(&secret, &id, timestamp, body));
    let mac = signature.strip_prefix("v1,").map(|s| STANDARD.decode(s));
    assert!(matches!(mac, Some(Ok(ref m)) if m.len() == 32), "{signature}");
    let mut other = body.to_vec();
    other.push(0);
    assert_ne!(signature, sign::standard_signature(&secret, &id, timestamp, &other));

    let fourthwall = sign::fourthwall_signature(&secret, body);
    assert!(matches!(STANDARD.decode(&fourthwall), Ok(m) if m.len() == 32));
});
