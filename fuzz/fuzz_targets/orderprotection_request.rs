//! OrderProtection bodies (order with embedded fulfillments, fulfillment, status): never a
//! panic; refusals are 4xx.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waybill_server::parse;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let refused = match which % 3 {
        0 => parse::parse_orderprotection_order_request(body).map(|(order, fulfillments)| {
            assert!(!order.line_items.is_empty());
            assert!(fulfillments.iter().all(|f| !f.lines.is_empty()));
        }),
        1 => parse::parse_orderprotection_fulfillment_request(body).map(|_| ()),
        _ => parse::parse_orderprotection_status_request(body).map(|_| ()),
    };
    if let Err(status) = refused {
        assert!(status.is_client_error(), "{status}");
    }
});
