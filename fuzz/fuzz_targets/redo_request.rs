//! Redo request bodies (create order, create fulfillment, shipment status): any bytes either
//! parse into a valid command or are refused with a 4xx, never a panic or a 5xx.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waybill_server::parse;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let refused = match which % 3 {
        0 => parse::parse_redo_order_request(body).map(|order| {
            assert!(!order.line_items.is_empty());
        }),
        1 => parse::parse_redo_fulfillment_request(body).map(|f| {
            assert!(!f.lines.is_empty());
            assert!(f.packages.iter().all(|p| !p.tracking_number.trim().is_empty()));
        }),
        _ => parse::parse_redo_status_request(body).map(|_| ()),
    };
    if let Err(status) = refused {
        assert!(status.is_client_error(), "{status}");
    }
});
