//! Automation templates with arbitrary sources, rendered on the sample order for each kind:
//! never a panic, never a hang (libFuzzer's -timeout turns a slow input into a crash), and
//! the output keeps each kind's promise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waybill_server::automations::templates::{Kind, TemplateContext, render};

fuzz_target!(|data: &[u8]| {
    let Some((&which, source)) = data.split_first() else {
        return;
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let kind = match which % 3 {
        0 => Kind::Subject,
        1 => Kind::HtmlBody,
        _ => Kind::JsonBody,
    };
    if let Ok(out) = render(kind, source, &TemplateContext::sample()) {
        match kind {
            Kind::Subject => assert!(!out.chars().any(char::is_control), "{out:?}"),
            Kind::JsonBody => assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok(), "{out:?}"),
            Kind::HtmlBody => {}
        }
    }
});

