//! ADM's create-fulfillment body: parsed, validated, then allocated by SKU against a fixed
//! order as the handler does. Never a panic; refusals are 4xx; an allocation never exceeds
//! what a line has left.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waybill_core::ledger::allocate_by_key;
use waybill_core::{NewFulfillment, ShipmentStatus};
use waybill_server::parse;

const LINES: [(&str, Option<&str>, u32); 3] = [
    ("a", Some("12"), 2),
    ("b", Some("12"), 3),
    ("c", Some("SKU-C"), 1000),
];

fuzz_target!(|data: &[u8]| {
    match parse::parse_adm_request(data) {
        Err(status) => assert!(status.is_client_error(), "{status}"),
        Ok(parse::AdmRequest {
            wanted, package, ..
        }) => {
            let Some(wanted) = wanted else { return };
            if let Ok(lines) = allocate_by_key(LINES.iter().copied(), &wanted) {
                for (id, q) in &lines {
                    let left = LINES.iter().find(|l| l.0 == id).map_or(0, |l| l.2);
                    assert!(q.get() <= left);
                }
                let _ = NewFulfillment::new(None, lines, vec![package], ShipmentStatus::PreTransit);
            }
        }
    }
});
