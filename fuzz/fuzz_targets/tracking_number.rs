//! Tracking-number detection and package normalisation on arbitrary text: never a panic, and
//! detection depends only on the canonical form of the number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waybill_carriers::{canonical_tracking_number, detect, normalize_package};
use waybill_core::Package;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line is the carrier text, the rest the tracking number.
    let (carrier, number) = text.split_once('\n').unwrap_or(("", &text));
    let found = detect(number);
    let canonical = canonical_tracking_number(number);
    assert_eq!(canonical_tracking_number(&canonical), canonical);
    let again = detect(&canonical);
    assert_eq!(
        found.iter().map(|d| d.carrier.code).collect::<Vec<_>>(),
        again.iter().map(|d| d.carrier.code).collect::<Vec<_>>()
    );
    let normalized = normalize_package(&Package {
        carrier: (!carrier.is_empty()).then(|| carrier.to_owned()),
        tracking_number: number.to_owned(),
        tracking_url: None,
    });
    if let Some(code) = normalized.carrier_code {
        assert!(waybill_carriers::carrier_by_code(code).is_some(), "{code}");
    }
});
