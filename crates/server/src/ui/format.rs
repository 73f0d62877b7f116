//! Small formatters the dashboard's pages and exports share: money by currency, CSV cells safe
//! to open in a spreadsheet, and the exception pills of a shipment.

use axum::body::{Body, Bytes};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Serialize;
use waybill_core::{Fulfillment, Money, ShipmentStatus};

/// How a currency is written: its symbol (or code), where it goes, and its minor digits.
fn currency_style(code: &str) -> (&'static str, u32) {
    match code {
        "USD" => ("$", 2),
        "EUR" => ("€", 2),
        "GBP" => ("£", 2),
        "JPY" => ("¥", 0),
        "CNY" => ("CN¥", 2),
        "KRW" => ("₩", 0),
        "INR" => ("₹", 2),
        "CAD" => ("CA$", 2),
        "AUD" => ("A$", 2),
        "NZD" => ("NZ$", 2),
        "MXN" => ("MX$", 2),
        "BRL" => ("R$", 2),
        "ILS" => ("₪", 2),
        "VND" => ("₫", 0),
        "CLP" | "ISK" | "HUF" | "TWD" => ("", 0),
        _ => ("", 2),
    }
}

/// Digits of the integer part grouped by threes with commas: `1234567` → `1,234,567`.
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An amount in its currency: `$54.00`, `€12.50`, `¥1,200`, `CHF 9.90` (a code without a
/// symbol of ours goes first, followed by a space; a negative amount, were there one, leads
/// with `-`). Without a currency, the number
/// with two decimals.
pub fn money(amount: Money, currency: Option<&str>) -> String {
    let code = currency.map(|c| c.trim().to_ascii_uppercase());
    let (symbol, digits) = match code.as_deref() {
        Some(c) => currency_style(c),
        None => ("", 2),
    };
    let mut value = amount.as_decimal();
    value.rescale(digits);
    let text = value.abs().to_string();
    let (int_part, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_owned(), Some(f.to_owned())),
        None => (text.clone(), None),
    };
    let mut number = group_thousands(&int_part);
    if let Some(frac) = frac {
        number.push('.');
        number.push_str(&frac);
    }
    let sign = if value.is_sign_negative() && !value.is_zero() {
        "-"
    } else {
        ""
    };
    match (symbol, code) {
        ("", Some(code)) if !code.is_empty() => format!("{sign}{code} {number}"),
        ("", _) => format!("{sign}{number}"),
        (symbol, _) => format!("{sign}{symbol}{number}"),
    }
}

/// A CSV cell that a spreadsheet will not run as a formula: text starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'`. (RFC 4180 quoting is the CSV writer's.)
pub fn csv_cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// A pill that flags a shipment needing attention.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Flag {
    /// The CSS class (`flag-delayed`, `flag-stalled`, `flag-overdue`).
    pub class: &'static str,
    pub label: &'static str,
}

const DELAYED: Flag = Flag {
    class: "flag-delayed",
    label: "Delayed",
};
const STALLED: Flag = Flag {
    class: "flag-stalled",
    label: "Stalled",
};
const OVERDUE: Flag = Flag {
    class: "flag-overdue",
    label: "Past ETA",
};

fn closed(status: ShipmentStatus) -> bool {
    matches!(
        status,
        ShipmentStatus::Delivered | ShipmentStatus::Cancelled
    )
}

/// The shipment's flags as of `today`: delayed or stalled (such an event in its history, not
/// delivered or cancelled since), past its estimated delivery date.
pub fn fulfillment_flags(f: &Fulfillment, today: NaiveDate) -> Vec<Flag> {
    if closed(f.status) {
        return Vec::new();
    }
    let mut flags = Vec::new();
    if f.history.iter().any(|h| h.status == "delayed") {
        flags.push(DELAYED);
    }
    if f.history.iter().any(|h| h.status == "stalled_in_transit") {
        flags.push(STALLED);
    }
    if f.estimated_delivery.is_some_and(|eta| eta < today) {
        flags.push(OVERDUE);
    }
    flags
}

/// The flags of any of an order's shipments, each once.
pub fn order_flags<'a>(
    fulfillments: impl IntoIterator<Item = &'a Fulfillment>,
    today: NaiveDate,
) -> Vec<Flag> {
    let mut flags: Vec<Flag> = Vec::new();
    for f in fulfillments {
        for flag in fulfillment_flags(f, today) {
            if !flags.contains(&flag) {
                flags.push(flag);
            }
        }
    }
    flags
}

/// Rows as CSV (RFC 4180: CRLF line ends, fields quoted when they hold a comma, a quote or a
/// line break, quotes doubled).
pub fn csv_bytes(rows: impl IntoIterator<Item = Vec<String>>) -> Result<Bytes, String> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        writer.write_record(&row).map_err(|e| e.to_string())?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// A CSV download: `body` as `text/csv` with a header row, saved as the file
/// `content_disposition` names, never cached.
pub fn csv_attachment(body: Body, content_disposition: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
    );
    headers.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static(content_disposition),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Money {
        Money::parse("amount", text).expect("a test amount")
    }

    #[test]
    fn money_is_written_by_currency() {
        assert_eq!(money(m("54"), Some("USD")), "$54.00");
        assert_eq!(money(m("12.5"), Some("EUR")), "€12.50");
        assert_eq!(money(m("12.5"), Some("eur")), "€12.50");
        assert_eq!(money(m("1200"), Some("JPY")), "¥1,200");
        assert_eq!(money(m("1234567.891"), Some("GBP")), "£1,234,567.89");
        assert_eq!(money(m("9.9"), Some("CHF")), "CHF 9.90");
        assert_eq!(money(m("0"), Some("USD")), "$0.00");
        assert_eq!(money(m("999.5"), None), "999.50");
        assert_eq!(money(m("100"), Some("CAD")), "CA$100.00");
    }

    #[test]
    fn formulas_are_defused() {
        for risky in ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "\rx"] {
            assert_eq!(csv_cell(risky), format!("'{risky}"));
        }
        assert_eq!(csv_cell("ada@example.com"), "ada@example.com");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands("1"), "1");
        assert_eq!(group_thousands("123"), "123");
        assert_eq!(group_thousands("1234"), "1,234");
        assert_eq!(group_thousands("123456"), "123,456");
    }
}
