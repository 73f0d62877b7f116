//! Tracking-number formats, matched by hand on the canonical bytes: no regular expression, no
//! allocation until a format has matched.

use serde::Serialize;

use crate::carrier::{self, Carrier, UPU_S10};
use crate::formats::{self as f, Format};
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
    /// The format that matched (one of [`crate::FORMATS`]).
    pub format: &'static Format,
    /// The format as read on this number ("UPS 1Z", "USPS IMpb (22) with ZIP routing",
    /// "S10 registered (GB)").
    pub service: String,
    /// The carrier's public tracking page for the canonical number.
    pub tracking_url: String,
    pub evidence: Evidence,
}

/// A number with the shape of a format that has a check digit — but the wrong check digit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckDigitMismatch {
    /// The carrier the number looks like (for S10, the posting country's operator where Waybill
    /// knows it).
    pub carrier: &'static Carrier,
    pub format: &'static Format,
    /// The check character the rest of the number calls for.
    pub expected: char,
    /// The check character the number has.
    pub found: char,
}

/// One answer about a tracking number's carrier, for callers that show one: see [`identify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identification {
    /// Exactly one carrier accepts the number, a specific one, on more than the number's shape
    /// (a check digit or a prefix of its own): the only case [`crate::normalize_package`]
    /// assigns a carrier.
    Carrier(Detection),
    /// Exactly one carrier accepts it, but on its shape alone ("any 14 digits") or as the
    /// generic UPU S10 carrier: a candidate, not an answer.
    Unconfirmed(Detection),
    /// Several carriers accept it (in [`crate::CARRIERS`] order); none is picked.
    Ambiguous(Vec<Detection>),
    /// No format accepts it, but it has the shape of these formats and fails their check digit:
    /// "looks like a UPS number, but its check digit is wrong". Several when formats share a
    /// shape (twelve digits are FedEx Express's and Purolator's).
    CheckDigitMismatch(Vec<CheckDigitMismatch>),
    /// No format fits at all.
    Unrecognised,
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
    scan(tracking_number).detections()
}

/// The formats whose shape the number has but whose check digit it fails, for carriers that do
/// not accept the number by another format; in [`crate::CARRIERS`] order, then format order.
/// A number that one carrier accepts can still fail another's check digit: this lists those too
/// (say, a merchant names UPS and the number looks like UPS's but does not check).
pub fn check_digit_mismatches(tracking_number: &str) -> Vec<CheckDigitMismatch> {
    scan(tracking_number).mismatches()
}

/// The one answer about a number's carrier: a single carrier, a single unconfirmed candidate,
/// an ambiguity (several candidates, none picked), a check-digit mismatch (the number looks like
/// some formats but fails their check digit, and no format accepts it), or nothing.
pub fn identify(tracking_number: &str) -> Identification {
    let scan = scan(tracking_number);
    let mut detections = scan.detections();
    match detections.len() {
        0 => {
            let mismatches = scan.mismatches();
            if mismatches.is_empty() {
                Identification::Unrecognised
            } else {
                Identification::CheckDigitMismatch(mismatches)
            }
        }
        1 => match detections.pop() {
            Some(only) if is_assignable(&only) => Identification::Carrier(only),
            Some(only) => Identification::Unconfirmed(only),
            None => Identification::Unrecognised,
        },
        _ => Identification::Ambiguous(detections),
    }
}

/// Whether a detection may stand alone as a package's carrier: specific, and resting on more than
/// the number's shape.
pub(crate) fn is_assignable(detection: &Detection) -> bool {
    detection.evidence > Evidence::Pattern && detection.carrier.is_specific()
}

/// The canonical number and what every format made of it.
struct Scan {
    number: [u8; MAX_LEN],
    len: usize,
    hits: Hits,
}

fn scan(tracking_number: &str) -> Scan {
    let mut scan = Scan {
        number: [0u8; MAX_LEN],
        len: 0,
        hits: Hits::default(),
    };
    for c in tracking_number.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        if !c.is_ascii_alphanumeric() || scan.len == MAX_LEN {
            scan.len = 0;
            return scan;
        }
        scan.number[scan.len] = c.to_ascii_uppercase() as u8;
        scan.len += 1;
    }
    let number = &scan.number[..scan.len];
    let hits = &mut scan.hits;
    let digits = !number.is_empty() && all_digits(number);
    ups(number, hits);
    if digits {
        usps(number, hits);
        fedex(number, hits);
        dhl_express_waybill(number, hits);
        canada_post(number, hits);
        old_dominion(number, hits);
        purolator_numeric(number, hits);
    }
    dhl_express_piece(number, hits);
    dhl_ecommerce(number, digits, hits);
    amazon(number, hits);
    dpd(number, hits);
    prefixed(number, hits);
    ontrac(number, hits);
    s10(number, hits);
    scan
}

impl Scan {
    /// The number as matched: ASCII letters and digits by construction.
    fn number(&self) -> String {
        String::from_utf8_lossy(&self.number[..self.len]).into_owned()
    }

    fn detections(&self) -> Vec<Detection> {
        if self.hits.found.is_empty() {
            return Vec::new();
        }
        let number = self.number();
        let mut found: Vec<&Hit> = self.hits.found.iter().collect();
        found.sort_by_key(|hit| hit.carrier.rank());
        found
            .into_iter()
            .map(|hit| Detection {
                carrier: hit.carrier,
                format: hit.format,
                service: hit.service.label(),
                tracking_url: carrier::tracking_url(hit.carrier, &number),
                evidence: hit.evidence,
            })
            .collect()
    }

    fn mismatches(&self) -> Vec<CheckDigitMismatch> {
        let mut misses: Vec<&Miss> = self
            .hits
            .missed
            .iter()
            .filter(|miss| {
                !self
                    .hits
                    .found
                    .iter()
                    .any(|hit| hit.carrier.code == miss.carrier.code)
            })
            .collect();
        misses.sort_by_key(|miss| miss.carrier.rank());
        misses
            .into_iter()
            .map(|miss| CheckDigitMismatch {
                carrier: miss.carrier,
                format: miss.format,
                expected: char::from(miss.expected),
                found: char::from(miss.found),
            })
            .collect()
    }
}

#[derive(Default)]
struct Hits {
    found: Vec<Hit>,
    missed: Vec<Miss>,
}

struct Hit {
    carrier: &'static Carrier,
    format: &'static Format,
    service: Service,
    evidence: Evidence,
}

struct Miss {
    carrier: &'static Carrier,
    format: &'static Format,
    /// ASCII check characters.
    expected: u8,
    found: u8,
}

enum Service {
    Static(&'static str),
    /// A USPS-delivered form read behind a `420` + ZIP routing prefix.
    Routed(&'static str),
    S10 {
        kind: &'static str,
        country: [u8; 2],
    },
}

impl Service {
    fn label(&self) -> String {
        match self {
            Service::Static(s) => (*s).to_owned(),
            Service::Routed(s) => format!("{s} with ZIP routing"),
            Service::S10 { kind, country } => format!(
                "S10 {kind} ({}{})",
                char::from(country[0]),
                char::from(country[1])
            ),
        }
    }
}

impl Hits {
    /// Records a match, keeping only the strongest per carrier (the first among equals).
    fn add(&mut self, hit: Hit) {
        match self
            .found
            .iter_mut()
            .find(|h| h.carrier.code == hit.carrier.code)
        {
            Some(old) if old.evidence < hit.evidence => *old = hit,
            Some(_) => {}
            None => self.found.push(hit),
        }
    }

    /// A match of a format of the format's own carrier.
    fn found(&mut self, format: &'static Format, service: Service, evidence: Evidence) {
        self.add(Hit {
            carrier: format.carrier,
            format,
            service,
            evidence,
        });
    }

    /// Records a shape that fits but a check character that does not (once per format).
    fn miss(
        &mut self,
        carrier: &'static Carrier,
        format: &'static Format,
        expected: u8,
        found: u8,
    ) {
        if !self.missed.iter().any(|m| m.format.id == format.id) {
            self.missed.push(Miss {
                carrier,
                format,
                expected,
                found,
            });
        }
    }

    /// The number has `format`'s shape: a match when its check character `found` is the
    /// `expected` one, a mismatch otherwise.
    fn check(&mut self, format: &'static Format, service: Service, expected: u8, found: u8) {
        if expected == found {
            self.found(format, service, Evidence::CheckDigit);
        } else {
            self.miss(format.carrier, format, expected, found);
        }
    }
}

fn all_digits(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_digit)
}

fn all_letters(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_uppercase)
}

/// The ASCII digit of a check-digit value (0–9).
fn digit(value: u8) -> u8 {
    b'0' + value
}

/// `data` followed by its check digit: the split every check-digit format makes.
fn split_check(s: &[u8]) -> Option<(&[u8], u8)> {
    let (&check, data) = s.split_last()?;
    check.is_ascii_digit().then_some((data, check))
}

/// Several readings of a number, each with the check character it calls for: the first that
/// checks is a match; if none does, the first is a mismatch.
#[derive(Default)]
struct Readings(Option<(&'static Format, u8, u8)>);

impl Readings {
    /// Returns whether this reading checks (and then records the match).
    fn try_one(
        &mut self,
        hits: &mut Hits,
        format: &'static Format,
        service: Service,
        (expected, found): (u8, u8),
    ) -> bool {
        if expected == found {
            hits.found(format, service, Evidence::CheckDigit);
            return true;
        }
        self.0.get_or_insert((format, expected, found));
        false
    }

    fn finish(self, hits: &mut Hits) {
        if let Some((format, expected, found)) = self.0 {
            hits.miss(format.carrier, format, expected, found);
        }
    }
}

/// The expected and the actual check digit of `core` under the modulo-10 rule (weight 3 on the
/// rightmost data digit), counting `implied` as printed in front.
fn mod10_check(implied: &[u8], core: &[u8]) -> (u8, u8) {
    match split_check(core) {
        Some((data, check)) => (digit(checksum::mod10(implied, data, 3, 1)), check),
        None => (0, 1),
    }
}

/// UPS: `1Z` + 6 shipper + 2 service + 7 package characters + check digit; and waybills, a service
/// letter (A, H, J, K, T, V) + 9 digits + check digit. Both use the UPS modulo-10 scheme.
fn ups(s: &[u8], hits: &mut Hits) {
    if s.len() == 18 && s.starts_with(b"1Z") && s[17].is_ascii_digit() {
        let expected = digit(checksum::ups(&s[2..17]));
        hits.check(&f::UPS_1Z, Service::Static("UPS 1Z"), expected, s[17]);
    }
    if s.len() == 11 && b"AHJKTV".contains(&s[0]) && all_digits(&s[1..]) {
        let expected = digit(checksum::ups(&s[1..10]));
        hits.check(
            &f::UPS_WAYBILL,
            Service::Static("UPS waybill"),
            expected,
            s[10],
        );
    }
}

/// The routing prefix in front of a USPS Intelligent Mail package barcode.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Routing {
    None,
    /// `420` + ZIP.
    Zip5,
    /// `420` + ZIP+4.
    Zip9,
}

/// The ways to read a USPS Intelligent Mail package barcode: as printed, or after the routing
/// prefix `420` + ZIP (5 digits) or `420` + ZIP+4 (9 digits).
fn impb_cores(s: &[u8]) -> impl Iterator<Item = (&[u8], Routing)> {
    let routed = |zip: usize, routing: Routing| {
        (s.starts_with(b"420") && s.len() > 3 + zip).then(|| (&s[3 + zip..], routing))
    };
    [
        Some((s, Routing::None)),
        routed(5, Routing::Zip5),
        routed(9, Routing::Zip9),
    ]
    .into_iter()
    .flatten()
}

/// Whether a core starts with the application identifier `9` + one of `second`.
fn ai(core: &[u8], second: std::ops::RangeInclusive<u8>) -> bool {
    core.len() > 2 && core[0] == b'9' && second.contains(&core[1])
}

/// USPS: IMpb tracking numbers — 22 digits starting with the application identifier 91–98, or
/// 26 starting with 91–95 — the older 20-digit numbers, and 20 or 24 digits that leave the
/// application identifier 91 off (it still counts in the check); each optionally behind a
/// routing prefix. The check digit is modulo 10 with weight 3 on the rightmost data digit.
///
/// The data set's formats: behind ZIP+4 routing, `usps_34v2`; 22 digits from 94–98, `usps_22`;
/// 20 digits checked as printed and not routed, `usps_20`; every other form, `usps_91`.
fn usps(s: &[u8], hits: &mut Hits) {
    let mut readings = Readings::default();
    for (core, routing) in impb_cores(s) {
        let service = |name: &'static str| match routing {
            Routing::None => Service::Static(name),
            _ => Service::Routed(name),
        };
        let impb = |short: &'static Format| match routing {
            Routing::Zip9 => &f::USPS_34V2,
            _ => short,
        };
        let found = match core.len() {
            22 if ai(core, b'1'..=b'8') => {
                let format = if ai(core, b'4'..=b'8') {
                    impb(&f::USPS_22)
                } else {
                    impb(&f::USPS_91)
                };
                readings.try_one(
                    hits,
                    format,
                    service("USPS IMpb (22)"),
                    mod10_check(b"", core),
                )
            }
            26 if ai(core, b'1'..=b'5') => readings.try_one(
                hits,
                impb(&f::USPS_91),
                service("USPS IMpb (26)"),
                mod10_check(b"", core),
            ),
            20 => {
                let printed = match routing {
                    Routing::None => &f::USPS_20,
                    Routing::Zip5 => &f::USPS_91,
                    Routing::Zip9 => &f::USPS_34V2,
                };
                readings.try_one(hits, printed, service("USPS (20)"), mod10_check(b"", core))
                    || (!ai(core, b'1'..=b'5')
                        && readings.try_one(
                            hits,
                            impb(&f::USPS_91),
                            service("USPS (20)"),
                            mod10_check(b"91", core),
                        ))
            }
            24 if routing != Routing::Zip9 && !ai(core, b'1'..=b'5') => readings.try_one(
                hits,
                &f::USPS_91,
                service("USPS IMpb (24)"),
                mod10_check(b"91", core),
            ),
            _ => false,
        };
        if found {
            return;
        }
    }
    readings.finish(hits);
}

/// FedEx: Express (12 digits, or 34 starting `10`) and Ground GSN (34 starting `96`) with the
/// FedEx modulo-11 check; Ground (15), Ground 96 (22; its last 15 digits are a Ground number) and
/// SSCC-18 with the modulo-10 check; SmartPost, a USPS IMpb with the signature `92 61 29`.
fn fedex(s: &[u8], hits: &mut Hits) {
    let Some((data, check)) = split_check(s) else {
        return;
    };
    let mod11 = |data: &[u8]| digit(checksum::fedex_mod11(data));
    let mod10 = |data: &[u8]| digit(checksum::mod10(b"", data, 3, 1));
    let (format, service, expected) = match s.len() {
        12 => (&f::FEDEX_12, "FedEx Express (12)", mod11(data)),
        15 => (&f::FEDEX_GROUND, "FedEx Ground (15)", mod10(data)),
        18 => (
            &f::FEDEX_GROUND_SSCC_18,
            "FedEx Ground (SSCC-18)",
            mod10(data),
        ),
        22 if s.starts_with(b"96") => (
            &f::FEDEX_GROUND_96,
            "FedEx Ground 96 (22)",
            mod10(&data[7..]),
        ),
        34 if s.starts_with(b"96") => (
            &f::FEDEX_GROUND_GSN,
            "FedEx Ground GSN (34)",
            mod11(&data[20..]),
        ),
        34 if s.starts_with(b"10") => (&f::FEDEX_34, "FedEx Express (34)", mod11(&data[20..])),
        _ => {
            smartpost(s, hits);
            return;
        }
    };
    hits.check(format, Service::Static(service), expected, check);
    smartpost(s, hits);
}

/// `92 61 29` + 8-digit shipper + 7 or 11 package digits + check digit, optionally behind a routing
/// prefix; printed without the application identifier 92 it is still counted in the check.
fn smartpost(s: &[u8], hits: &mut Hits) {
    let service = || Service::Static("FedEx SmartPost");
    let mut readings = Readings::default();
    for (core, _) in impb_cores(s) {
        if matches!(core.len(), 22 | 26)
            && core.starts_with(b"926129")
            && readings.try_one(hits, &f::FEDEX_SMARTPOST, service(), mod10_check(b"", core))
        {
            return;
        }
    }
    if matches!(s.len(), 20 | 24)
        && s.starts_with(b"6129")
        && readings.try_one(hits, &f::FEDEX_SMARTPOST, service(), mod10_check(b"92", s))
    {
        return;
    }
    readings.finish(hits);
}

/// DHL Express waybills: 10 or 11 digits, the last being the others modulo 7.
fn dhl_express_waybill(s: &[u8], hits: &mut Hits) {
    if matches!(s.len(), 10 | 11)
        && let Some((data, check)) = split_check(s)
        && let Some(expected) = checksum::mod7(data)
    {
        hits.check(
            &f::DHL_EXPRESS_WAYBILL,
            Service::Static("DHL Express"),
            digit(expected),
            check,
        );
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
        hits.found(
            &f::DHL_EXPRESS_PIECE_ID,
            Service::Static("DHL Express piece ID"),
            Evidence::Prefix,
        );
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
    if digits && s.len() == 30 && s.starts_with(b"420") && ai(&s[8..], b'2'..=b'5') {
        let (expected, found) = mod10_check(b"", &s[8..]);
        hits.check(
            &f::DHL_ECOMMERCE_30,
            Service::Static("DHL eCommerce (USPS IMpb)"),
            expected,
            found,
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
        hits.found(
            &f::DHL_ECOMMERCE_PREFIXED,
            Service::Static("DHL eCommerce"),
            evidence,
        );
    }
    if digits && s.len() == 14 {
        hits.found(
            &f::DHL_ECOMMERCE_14,
            Service::Static("DHL eCommerce (14)"),
            Evidence::Pattern,
        );
    }
}

/// Amazon Logistics: `TBA`, `TBC` or `TBM` + 12 digits; Amazon international: `A`, `F` or `C` +
/// 10 digits. Neither has a check digit.
fn amazon(s: &[u8], hits: &mut Hits) {
    if s.len() == 15 && s.starts_with(b"TB") && b"ACM".contains(&s[2]) && all_digits(&s[3..]) {
        hits.found(
            &f::AMAZON_LOGISTICS,
            Service::Static("Amazon Logistics (TBA)"),
            Evidence::Prefix,
        );
    }
    if s.len() == 11 && b"AFC".contains(&s[0]) && all_digits(&s[1..]) {
        hits.found(
            &f::AMAZON_INTERNATIONAL,
            Service::Static("Amazon international"),
            Evidence::Pattern,
        );
    }
}

/// Canada Post: 16 digits, modulo-10 check with weight 3 on the rightmost data digit.
fn canada_post(s: &[u8], hits: &mut Hits) {
    if s.len() == 16 {
        let (expected, found) = mod10_check(b"", s);
        hits.check(
            &f::CANADA_POST_16,
            Service::Static("Canada Post (16)"),
            expected,
            found,
        );
    }
}

/// Old Dominion PRO numbers: 11 digits starting `072`, `777`, `778` or `780`, and guaranteed
/// shipments starting `80`; the last digit is the Luhn check of the others.
fn old_dominion(s: &[u8], hits: &mut Hits) {
    if s.len() != 11 {
        return;
    }
    let format = if [b"072", b"777", b"778", b"780"]
        .iter()
        .any(|p| s.starts_with(&p[..]))
    {
        &f::OLD_DOMINION_PRO
    } else if s.starts_with(b"80") {
        &f::OLD_DOMINION_GUARANTEED
    } else {
        return;
    };
    let expected = digit(checksum::luhn(&s[..10]));
    hits.check(format, Service::Static(format.name), expected, s[10]);
}

/// Purolator: 12 digits starting 0–5 with a Luhn check digit.
fn purolator_numeric(s: &[u8], hits: &mut Hits) {
    if s.len() == 12 && (b'0'..=b'5').contains(&s[0]) {
        let expected = digit(checksum::luhn(&s[..11]));
        hits.check(
            &f::PUROLATOR_NUMERIC,
            Service::Static(f::PUROLATOR_NUMERIC.name),
            expected,
            s[11],
        );
    }
}

/// DPD: 27 digits (destination, parcel number, service, country) or the 14-digit parcel number,
/// each followed by an ISO 7064 MOD 37,36 check character (a digit or a letter).
fn dpd(s: &[u8], hits: &mut Hits) {
    let format = match s.len() {
        28 => &f::DPD_28,
        15 => &f::DPD_14,
        _ => return,
    };
    let Some((&found, data)) = s.split_last() else {
        return;
    };
    if all_digits(data)
        && let Some(expected) = checksum::mod37_36(data)
    {
        hits.check(format, Service::Static(format.name), expected, found);
    }
}

/// OnTrac: `C` or `D` + 13 digits + check digit, the UPS scheme over the letter and the digits
/// (the letter valued C = 4, D = 5, as UPS values letters). As the data set computes it, a
/// serial that already starts with the letter's value (C + `4…`, D + `5…`) is checked without
/// the letter.
fn ontrac(s: &[u8], hits: &mut Hits) {
    if s.len() != 15 || !all_digits(&s[1..]) {
        return;
    }
    let (format, value) = match s[0] {
        b'C' => (&f::ONTRAC_C, b'4'),
        b'D' => (&f::ONTRAC_D, b'5'),
        _ => return,
    };
    let data = if s[1] == value { &s[1..14] } else { &s[..14] };
    let expected = digit(checksum::ups(data));
    hits.check(format, Service::Static(format.name), expected, s[14]);
}

/// The formats without a check digit that a prefix of the carrier's own marks, and the two that
/// only a shape marks (Canpar's letter + 21 digits, Purolator's 3 letters + 9 digits).
fn prefixed(s: &[u8], hits: &mut Hits) {
    let digits_from = |at: usize| s.len() > at && all_digits(&s[at..]);
    let prefix = |format: &'static Format| (format, Service::Static(format.name), Evidence::Prefix);
    let found = match s.len() {
        // Landmark Global: LTN + 8 digits + N1.
        13 if s.starts_with(b"LTN") && all_digits(&s[3..11]) && s.ends_with(b"N1") => {
            Some(prefix(&f::LANDMARK_GLOBAL))
        }
        // LaserShip: L + A/I/E/H/N/X + 1–3 + 7 digits.
        10 if s[0] == b'L'
            && b"AIEHNX".contains(&s[1])
            && (b'1'..=b'3').contains(&s[2])
            && digits_from(3) =>
        {
            Some(prefix(&f::LASERSHIP_LX))
        }
        // LaserShip: 1LS7 + 1/2 + 10 digits.
        15 if s.starts_with(b"1LS7") && b"12".contains(&s[4]) && digits_from(5) => {
            Some(prefix(&f::LASERSHIP_1LS7))
        }
        // LaserShip: 1LS7 + 1/2 + 2 digits + 01 + 1–4 + 6 digits, then the piece suffix "-1"
        // (whose dash the canonical form drops).
        17 if s.starts_with(b"1LS7")
            && b"12".contains(&s[4])
            && digits_from(5)
            && &s[7..9] == b"01"
            && (b'1'..=b'4').contains(&s[9])
            && s[16] == b'1' =>
        {
            Some(prefix(&f::LASERSHIP_1LS7_18))
        }
        // Yodel: JD or JJD + 16 digits; YunExpress: YT + 16 digits; GOFO: GFUS + 14 digits.
        18 if s.starts_with(b"JD") && digits_from(2) => Some(prefix(&f::YODEL_JD)),
        19 if s.starts_with(b"JJD") && digits_from(3) => Some(prefix(&f::YODEL_JD)),
        18 if s.starts_with(b"YT") && digits_from(2) => Some(prefix(&f::YUNEXPRESS_YT)),
        18 if s.starts_with(b"GFUS") && digits_from(4) => Some(prefix(&f::GOFO_US)),
        // Spee-Dee: SP + 18 digits.
        20 if s.starts_with(b"SP") && digits_from(2) => Some(prefix(&f::SPEE_DEE_20)),
        // Canpar: one of C D K L S U X Z + 21 digits; letters others use too, so a pattern.
        22 if b"CDKLSUXZ".contains(&s[0]) && digits_from(1) => Some((
            &f::CANPAR_22,
            Service::Static(f::CANPAR_22.name),
            Evidence::Pattern,
        )),
        // Purolator: 3 letters + 9 digits; any letters, so a pattern.
        12 if all_letters(&s[..3]) && digits_from(3) => Some((
            &f::PUROLATOR_ALPHA,
            Service::Static(f::PUROLATOR_ALPHA.name),
            Evidence::Pattern,
        )),
        _ => None,
    };
    if let Some((format, service, evidence)) = found {
        hits.found(format, service, evidence);
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
    if !(all_letters(service)
        && all_letters(&country)
        && all_digits(serial)
        && check[0].is_ascii_digit()
        && countries::is_country_code(&country))
    {
        return;
    }
    let carrier = carrier::postal_carrier(&country).unwrap_or(&UPU_S10);
    let expected = digit(checksum::s10(serial));
    if expected != check[0] {
        hits.miss(carrier, &f::S10_ITEM, expected, check[0]);
        return;
    }
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
    hits.add(Hit {
        carrier,
        format: &f::S10_ITEM,
        service: Service::S10 { kind, country },
        evidence: Evidence::CheckDigit,
    });
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
