//! Fourthwall's create-fulfillment body: parsed, validated, then allocated by variant against a
//! fixed order. Never a panic; refusals are 4xx.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waybill_core::ledger::allocate_by_key;
use waybill_server::parse;

const LINES: [(&str, Option<&str>, u32); 2] = [("a", Some("v1"), 2), ("b", Some("v2"), 1)];

fuzz_target!(|data: &[u8]| {
    match parse::parse_fourthwall_request(data) {
        Err(status) => assert!(status.is_client_error(), "{status}"),
        Ok((_order, company, number, wanted)) => {
            assert!(!company.is_empty() && !number.is_empty() && !wanted.is_empty());
            if let Ok(lines) = allocate_by_key(LINES.iter().copied(), &wanted) {
                let total: u32 = lines.iter().map(|(_, q)| q.get()).sum();
                assert!(total <= 3);
            }
        }
    }
});
