//! Tracking-number formats, matched by hand on the canonical bytes: no regular expression, no
//! allocation until a format has matched.

use serde::Serialize;

use crate::carrier::{
    self, AMAZON, CANADA_POST, Carrier, DHL_ECOMMERCE, DHL_EXPRESS, FEDEX, UPS, UPU_S10, USPS,
};
use crate::{checksum, countries};

/// The longest number any format takes (DHL eCommerce: 2 + 39 characters).
const MAX_LEN: usize = 41;

/// How much a detection rests on, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Only the shape (length, digits) fits, with no check digit and no prefix of the carrier's
    /// own: "any 14 digits". Reported as a candidate, never assigned on its own.
    Pattern,
    /// A prefix the carrier uses (`TBA`, `GM`, `JJD`) and the shape fit; there is no check digit.
    Prefix,
    /// The format fits and its check digit is right.
    CheckDigit,
}

/// One carrier whose format accepts a tracking number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    pub carrier: &'static Carrier,
    /// The format that matched ("UPS 1Z", "FedEx Ground (15)", "S10 registered (GB)").
    pub service: String,
    /// The carrier's public tracking page for the canonical number.
    pub tracking_url: String,
    pub evidence: Evidence,
}

/// The number as the formats see it: whitespace and dashes removed, ASCII letters upper-cased.
/// Other characters are kept (and then match no format).
pub fn canonical_tracking_number(tracking_number: &str) -> String {
    tracking_number
        .chars()
        .filter(|&c| !c.is_whitespace() && c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Every carrier whose format accepts the number — and its check digit, where the format has one
/// — after removing whitespace and dashes and upper-casing. One detection per carrier (its
/// strongest), in the order of [`crate::CARRIERS`]; empty when no format fits.
pub fn detect(tracking_number: &str) -> Vec<Detection> {
    let mut buf = [0u8; MAX_LEN];
    let mut len = 0;
    for c in tracking_number.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        if !c.is_ascii_alphanumeric() || len == MAX_LEN {
            return Vec::new();
        }
        buf[len] = c.to_ascii_uppercase() as u8;
        len += 1;
    }
    let number = &buf[..len];
    let mut hits = Hits::default();
    let digits = !number.is_empty() && all_digits(number);
    ups(number, &mut hits);
    if digits {
        usps(number, &mut hits);
        fedex(number, &mut hits);
        dhl_express_waybill(number, &mut hits);
        canada_post(number, &mut hits);
    }
    dhl_express_piece(number, &mut hits);
    dhl_ecommerce(number, digits, &mut hits);
    amazon(number, &mut hits);
    s10(number, &mut hits);
    hits.into_detections(number)
}

#[derive(Default)]
struct Hits(Vec<(&'static Carrier, Service, Evidence)>);

enum Service {
    Static(&'static str),
    S10 {
        kind: &'static str,
        country: [u8; 2],
    },
}

impl Hits {
    /// Records a match, keeping only the strongest per carrier (the first among equals).
    fn add(&mut self, carrier: &'static Carrier, service: Service, evidence: Evidence) {
        match self.0.iter_mut().find(|(c, _, _)| c.code == carrier.code) {
            Some(hit) if hit.2 < evidence => *hit = (carrier, service, evidence),
            Some(_) => {}
            None => self.0.push((carrier, service, evidence)),
        }
    }

    fn found(&mut self, carrier: &'static Carrier, service: &'static str, evidence: Evidence) {
        self.add(carrier, Service::Static(service), evidence);
    }

    fn into_detections(mut self, number: &[u8]) -> Vec<Detection> {
        if self.0.is_empty() {
            return Vec::new();
        }
        // The number is ASCII letters and digits by construction.
        let number = String::from_utf8_lossy(number);
        self.0.sort_by_key(|(c, _, _)| c.rank());
        self.0
            .into_iter()
            .map(|(carrier, service, evidence)| Detection {
                carrier,
                service: match service {
                    Service::Static(s) => s.to_owned(),
                    Service::S10 { kind, country } => format!(
                        "S10 {kind} ({}{})",
                        char::from(country[0]),
                        char::from(country[1])
                    ),
                },
                tracking_url: carrier::tracking_url(carrier, &number),
                evidence,
            })
            .collect()
    }
}

fn all_digits(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_digit)
}

fn all_letters(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_uppercase)
}

/// Whether `check` (an ASCII digit) is the digit `expected`.
fn is(check: u8, expected: u8) -> bool {
    check == b'0' + expected
}

/// `data` followed by its check digit: the split every check-digit format makes.
fn split_check(s: &[u8]) -> Option<(&[u8], u8)> {
    let (&check, data) = s.split_last()?;
    check.is_ascii_digit().then_some((data, check))
}

/// UPS: `1Z` + 6 shipper + 2 service + 7 package characters + check digit; and waybills, a service
/// letter (A, H, J, K, T, V) + 9 digits + check digit. Both use the UPS modulo-10 scheme.
fn ups(s: &[u8], hits: &mut Hits) {
    if s.len() == 18
        && s.starts_with(b"1Z")
        && let Some((data, check)) = split_check(&s[2..])
        && is(check, checksum::ups(data))
    {
        hits.found(&UPS, "UPS 1Z", Evidence::CheckDigit);
    }
    if s.len() == 11
        && b"AHJKTV".contains(&s[0])
        && all_digits(&s[1..])
        && is(s[10], checksum::ups(&s[1..10]))
    {
        hits.found(&UPS, "UPS waybill", Evidence::CheckDigit);
    }
}

/// The ways to read a USPS Intelligent Mail package barcode: as printed, or after the routing
/// prefix `420` + ZIP (5 digits) or `420` + ZIP+4 (9 digits). Returns (core, has routing).
fn impb_cores(s: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let routed =
        |zip: usize| (s.starts_with(b"420") && s.len() > 3 + zip).then(|| (&s[3 + zip..], true));
    [Some((s, false)), routed(5), routed(9)]
        .into_iter()
        .flatten()
}

/// USPS: IMpb tracking numbers — 22 digits starting with the application identifier 91–98, or
/// 26 starting with 91–95 — and the older 20-digit numbers, each optionally behind a routing
/// prefix. The check digit is modulo 10 with weight 3 on the rightmost data digit; the 20-digit
/// form may also be checked with the application identifier 91 it leaves off.
fn usps(s: &[u8], hits: &mut Hits) {
    for (core, routed) in impb_cores(s) {
        let Some((data, check)) = split_check(core) else {
            continue;
        };
        let ai = |range: std::ops::RangeInclusive<u8>| core[0] == b'9' && range.contains(&core[1]);
        let service = match core.len() {
            22 if ai(b'1'..=b'8') && is(check, checksum::mod10(b"", data, 3, 1)) => {
                "USPS IMpb (22)"
            }
            26 if ai(b'1'..=b'5') && is(check, checksum::mod10(b"", data, 3, 1)) => {
                "USPS IMpb (26)"
            }
            20 if is(check, checksum::mod10(b"", data, 3, 1))
                || (!ai(b'1'..=b'5') && is(check, checksum::mod10(b"91", data, 3, 1))) =>
            {
                "USPS (20)"
            }
            _ => continue,
        };
        let service = match (routed, service) {
            (false, service) => service,
            (true, "USPS IMpb (22)") => "USPS IMpb (22) with ZIP routing",
            (true, "USPS IMpb (26)") => "USPS IMpb (26) with ZIP routing",
            (true, _) => "USPS (20) with ZIP routing",
        };
        hits.found(&USPS, service, Evidence::CheckDigit);
        return;
    }
}

/// FedEx: Express (12 digits, or 34 starting `10`) and Ground GSN (34 starting `96`) with the
/// FedEx modulo-11 check; Ground (15), Ground 96 (22; its last 15 digits are a Ground number) and
/// SSCC-18 with the modulo-10 check; SmartPost, a USPS IMpb with the signature `92 61 29`.
fn fedex(s: &[u8], hits: &mut Hits) {
    let Some((data, check)) = split_check(s) else {
        return;
    };
    let service = match s.len() {
        12 if is(check, checksum::fedex_mod11(data)) => Some("FedEx Express (12)"),
        15 if is(check, checksum::mod10(b"", data, 3, 1)) => Some("FedEx Ground (15)"),
        18 if is(check, checksum::mod10(b"", data, 3, 1)) => Some("FedEx Ground (SSCC-18)"),
        22 if s.starts_with(b"96") && is(check, checksum::mod10(b"", &data[7..], 3, 1)) => {
            Some("FedEx Ground 96 (22)")
        }
        34 if s.starts_with(b"96") && is(check, checksum::fedex_mod11(&data[20..])) => {
            Some("FedEx Ground GSN (34)")
        }
        34 if s.starts_with(b"10") && is(check, checksum::fedex_mod11(&data[20..])) => {
            Some("FedEx Express (34)")
        }
        _ => None,
    };
    if let Some(service) = service {
        hits.found(&FEDEX, service, Evidence::CheckDigit);
    }
    if smartpost(s) {
        hits.found(&FEDEX, "FedEx SmartPost", Evidence::CheckDigit);
    }
}

/// `92 61 29` + 8-digit shipper + 7 or 11 package digits + check digit, optionally behind a routing
/// prefix; printed without the application identifier 92 it is still counted in the check.
fn smartpost(s: &[u8]) -> bool {
    let checks = |implied: &[u8], core: &[u8]| {
        split_check(core)
            .is_some_and(|(data, check)| is(check, checksum::mod10(implied, data, 3, 1)))
    };
    impb_cores(s).any(|(core, _)| {
        matches!(core.len(), 22 | 26) && core.starts_with(b"926129") && checks(b"", core)
    }) || (matches!(s.len(), 20 | 24) && s.starts_with(b"6129") && checks(b"92", s))
}

/// DHL Express waybills: 10 or 11 digits, the last being the others modulo 7.
fn dhl_express_waybill(s: &[u8], hits: &mut Hits) {
    if matches!(s.len(), 10 | 11)
        && let Some((data, check)) = split_check(s)
        && checksum::mod7(data).is_some_and(|c| is(check, c))
    {
        hits.found(&DHL_EXPRESS, "DHL Express", Evidence::CheckDigit);
    }
}

/// DHL Express piece IDs (licence plates): `J` + 2 or 3 letters + 9 or 10 digits.
fn dhl_express_piece(s: &[u8], hits: &mut Hits) {
    if s.first() != Some(&b'J') {
        return;
    }
    let letters = s[1..].iter().take_while(|b| b.is_ascii_uppercase()).count();
    let digits = &s[1 + letters..];
    if matches!(letters, 2 | 3) && matches!(digits.len(), 9 | 10) && all_digits(digits) {
        hits.found(&DHL_EXPRESS, "DHL Express piece ID", Evidence::Prefix);
    }
}

/// DHL eCommerce: a prefix (`GM` for Global Mail, or one of its Asian origins) + 10 to 39 letters
/// and digits starting with a digit; 14 digits; or a USPS IMpb behind a 420 + ZIP routing prefix
/// with application identifier 92–95 (delivered by USPS). None of them has a check digit of DHL's
/// own, so only `GM` and the IMpb's USPS check count for more than a pattern.
fn dhl_ecommerce(s: &[u8], digits: bool, hits: &mut Hits) {
    const PREFIXES: [&[u8; 2]; 10] = [
        b"GM", b"LX", b"RX", b"UV", b"CN", b"SG", b"TH", b"IN", b"HK", b"MY",
    ];
    if digits
        && s.len() == 30
        && s.starts_with(b"420")
        && s[8] == b'9'
        && (b'2'..=b'5').contains(&s[9])
        && let Some((data, check)) = split_check(&s[8..])
        && is(check, checksum::mod10(b"", data, 3, 1))
    {
        hits.found(
            &DHL_ECOMMERCE,
            "DHL eCommerce (USPS IMpb)",
            Evidence::CheckDigit,
        );
    }
    if s.len() >= 12
        && let Some(prefix) = PREFIXES.iter().find(|p| s.starts_with(&p[..]))
        && (10..=39).contains(&(s.len() - 2))
        && s[2].is_ascii_digit()
    {
        let evidence = if *prefix == b"GM" {
            Evidence::Prefix
        } else {
            Evidence::Pattern
        };
        hits.found(&DHL_ECOMMERCE, "DHL eCommerce", evidence);
    }
    if digits && s.len() == 14 {
        hits.found(&DHL_ECOMMERCE, "DHL eCommerce (14)", Evidence::Pattern);
    }
}

/// Amazon Logistics: `TBA`, `TBC` or `TBM` + 12 digits; Amazon international: `A`, `F` or `C` +
/// 10 digits. Neither has a check digit.
fn amazon(s: &[u8], hits: &mut Hits) {
    if s.len() == 15 && s.starts_with(b"TB") && b"ACM".contains(&s[2]) && all_digits(&s[3..]) {
        hits.found(&AMAZON, "Amazon Logistics (TBA)", Evidence::Prefix);
    }
    if s.len() == 11 && b"AFC".contains(&s[0]) && all_digits(&s[1..]) {
        hits.found(&AMAZON, "Amazon international", Evidence::Pattern);
    }
}

/// Canada Post: 16 digits, modulo-10 check with weight 3 on the rightmost data digit.
fn canada_post(s: &[u8], hits: &mut Hits) {
    if s.len() == 16
        && let Some((data, check)) = split_check(s)
        && is(check, checksum::mod10(b"", data, 3, 1))
    {
        hits.found(&CANADA_POST, "Canada Post (16)", Evidence::CheckDigit);
    }
}

/// UPU S10: 2-letter service indicator + 8-digit serial + check digit + ISO 3166 country code of
/// the posting operator, which names the carrier where Waybill knows it.
fn s10(s: &[u8], hits: &mut Hits) {
    let Ok(s) = <&[u8; 13]>::try_from(s) else {
        return;
    };
    let (service, rest) = s.split_at(2);
    let (serial, rest) = rest.split_at(8);
    let (check, country) = rest.split_at(1);
    let (Ok(serial), Ok(country)) = (<&[u8; 8]>::try_from(serial), <[u8; 2]>::try_from(country))
    else {
        return;
    };
    if all_letters(service)
        && all_letters(&country)
        && all_digits(serial)
        && is(check[0], checksum::s10(serial))
        && countries::is_country_code(&country)
    {
        let carrier = carrier::postal_carrier(&country).unwrap_or(&UPU_S10);
        let kind = match service[0] {
            b'E' => "EMS",
            b'C' => "parcel",
            b'H' => "e-commerce parcel",
            b'L' => "express letter",
            b'R' => "registered",
            b'V' => "insured",
            b'U' => "letter",
            b'M' => "M-bag",
            b'Q' => "IBRS",
            _ => "item",
        };
        hits.add(
            carrier,
            Service::S10 { kind, country },
            Evidence::CheckDigit,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(number: &str) -> Vec<&'static str> {
        detect(number).iter().map(|d| d.carrier.code).collect()
    }

    #[test]
    fn canonical_form() {
        assert_eq!(canonical_tracking_number(" 1z-5r8 9 "), "1Z5R89");
        assert_eq!(codes(" 1z 5r8-939 0357 567127 "), ["ups"]);
        assert!(detect("").is_empty());
        assert!(detect("1Z5R89390357567127/").is_empty());
        assert!(detect(&"9".repeat(200)).is_empty());
    }

    #[test]
    fn one_detection_per_carrier_with_the_strongest_evidence() {
        // A GM number is DHL eCommerce by prefix, not by pattern.
        let found = detect("GM2951173225174494");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].evidence, Evidence::Prefix);
        assert_eq!(found[0].service, "DHL eCommerce");
    }

    #[test]
    fn s10_service_names_the_country() {
        let found = detect("RB123456785GB");
        assert_eq!(found[0].carrier.code, "royal_mail");
        assert_eq!(found[0].service, "S10 registered (GB)");
        assert_eq!(
            found[0].tracking_url,
            "https://www.royalmail.com/track-your-item#/tracking-results/RB123456785GB"
        );
    }
}
