//! Carrier intelligence: which carrier a tracking number belongs to, what a merchant's free-text
//! carrier name means, and where the parcel can be followed. No I/O.
//!
//! # Rules
//!
//! * [`detect`] reports every carrier whose format accepts a number (after removing whitespace and
//!   dashes and upper-casing) — and its check digit, where the format has one — with the
//!   [`Evidence`] it rests on. Formats overlap (a FedEx SmartPost number is a USPS number too), so
//!   one number can have several candidates; `detect` never picks one.
//! * [`normalize_carrier_name`] maps free text ("U.P.S.", "fed ex", "FedEx Ground", "Postes
//!   Canada") to a canonical [`Carrier`]; text it does not recognise gives `None`.
//! * [`normalize_package`] applies both to a fulfillment's package:
//!   - a carrier given and recognised becomes the canonical name, even when the number validly
//!     matches another carrier (the merchant knows best; the candidates are still reported). Plain
//!     "DHL" becomes DHL eCommerce when the number is DHL eCommerce's and not DHL Express's, DHL
//!     Express otherwise;
//!   - a carrier given but not recognised is kept exactly as given;
//!   - with no carrier (or a blank one), a carrier is assigned only when exactly one carrier
//!     accepts the number, by check digit or by a prefix of its own, and it is a specific carrier
//!     (not the generic UPU S10 one). Several candidates, or a shape-only match, assign nothing:
//!     never a wrong guess;
//!   - a tracking URL given is kept; a missing one is built when the carrier is known;
//!   - the tracking number itself is always kept as given.
//!
//! # Formats and check digits
//!
//! | carrier | format | check digit |
//! | --- | --- | --- |
//! | UPS | `1Z` + 15 letters/digits + check | letters valued (ASCII − 63) mod 10 (A = 2); weights 1, 2 alternating from the rightmost data character; check = (10 − sum mod 10) mod 10 |
//! | UPS | waybill: A/H/J/K/T/V + 9 digits + check | the same over the 9 digits |
//! | USPS | IMpb: 22 digits from `91`–`98`, 26 from `91`–`95`; older 20 digits; optional routing `420` + ZIP or ZIP+4 | mod 10, weight 3 on the rightmost data digit, then 1, 3, …; 20-digit numbers also with the implied application identifier `91` |
//! | USPS, Canada Post, others | UPU S10: 2 letters + 8 digits + check + ISO 3166 country | weights 8, 6, 4, 2, 3, 5, 9, 7; c = 11 − sum mod 11; 10 → 0, 11 → 5 |
//! | FedEx | Express 12 digits; Express 34 (`10…`); Ground GSN 34 (`96…`, last 13 data digits) | weights 1, 3, 7 repeating from the rightmost data digit; check = (sum mod 11) mod 10 |
//! | FedEx | Ground 15 digits; Ground 96 (22 digits, check over the last 14 data digits); SSCC-18 | mod 10, weight 3 on the rightmost data digit (GS1) |
//! | FedEx | SmartPost: USPS IMpb `92 61 29…` (20/24 digits without the `92`) | USPS mod 10, `92` counted even when not printed |
//! | DHL Express | 10 or 11 digits | the data digits as a number, mod 7 |
//! | DHL Express | piece ID `J` + 2–3 letters + 9–10 digits | none (prefix) |
//! | DHL eCommerce | `GM` (prefix) or `LX RX UV CN SG TH IN HK MY` (pattern) + 10–39 characters from a digit; 14 digits (pattern); `420` + ZIP5 + IMpb `92`–`95` | USPS mod 10 for the IMpb; none otherwise |
//! | Amazon Logistics | `TBA`/`TBC`/`TBM` + 12 digits (prefix); A/F/C + 10 digits (pattern) | none |
//! | Canada Post | 16 digits | mod 10, weight 3 on the rightmost data digit |
//!
//! S10 numbers name the posting country's operator: US → USPS, CA → Canada Post, GB → Royal
//! Mail, DE → Deutsche Post, FR → La Poste, AU → Australia Post, any other assigned ISO 3166
//! code → the generic `upu_s10` candidate.
//!
//! # Sources
//!
//! The formats follow the MIT-licensed `tracking_number_data` set (as embedded in the
//! `tracking-numbers` crate), whose valid and invalid test numbers the tests check against; the
//! check-digit rules are the carriers' published ones (GS1 modulo 10, UPU S10, USPS IMpb). The
//! detection here is written by hand rather than taken from that crate: its `track()` returns
//! only one match, and it needs PCRE2. Deliberate differences from the set: ZIP+4 routing
//! prefixes are accepted for every IMpb form, SSCC-18 check digits cover all 17 data digits, and
//! S10 countries are all assigned ISO 3166 codes.

mod carrier;
mod checksum;
mod countries;
mod detect;
mod formats;
mod names;

pub use carrier::{CARRIERS, Carrier, carrier_by_code, tracking_url};
pub use detect::{
    CheckDigitMismatch, Detection, Evidence, Identification, canonical_tracking_number,
    check_digit_mismatches, detect, identify,
};
pub use formats::{CheckDigit, FORMATS, Format, format_by_id};

use waybill_core::Package;

/// Free text ("U.P.S.", "FedEx Ground", "Postes Canada") to the canonical carrier; `None` when
/// not recognised.
pub fn normalize_carrier_name(text: &str) -> Option<&'static Carrier> {
    names::recognise(text).map(|(carrier, _)| carrier)
}

/// The outcome of normalising one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPackage {
    /// The package with its carrier and tracking URL normalised (see the crate's rules).
    pub package: Package,
    /// The canonical carrier's code, when the given carrier was recognised or one was assigned.
    pub carrier_code: Option<&'static str>,
    /// Every carrier that accepts the tracking number ([`detect`]), whatever was assigned.
    pub candidates: Vec<Detection>,
}

/// Normalises a package's carrier and tracking URL; see the crate-level rules.
pub fn normalize_package(package: &Package) -> NormalizedPackage {
    let candidates = detect(&package.tracking_number);
    let given = package
        .carrier
        .as_deref()
        .filter(|text| !text.trim().is_empty());
    let carrier = match given {
        Some(text) => names::recognise(text).map(|(carrier, dhl_family)| {
            if dhl_family && only_dhl_ecommerce(&candidates) {
                &carrier::DHL_ECOMMERCE
            } else {
                carrier
            }
        }),
        None => assignable(&candidates),
    };

    let mut normalized = package.clone();
    if let Some(carrier) = carrier {
        normalized.carrier = Some(carrier.name.to_owned());
        let url_missing = normalized
            .tracking_url
            .as_deref()
            .is_none_or(|url| url.trim().is_empty());
        if url_missing && !canonical_tracking_number(&package.tracking_number).is_empty() {
            normalized.tracking_url = Some(tracking_url(carrier, &package.tracking_number));
        }
    }
    NormalizedPackage {
        package: normalized,
        carrier_code: carrier.map(|c| c.code),
        candidates,
    }
}

/// The one carrier a carrier-less package may be given: the only candidate, specific, and
/// resting on more than its shape.
fn assignable(candidates: &[Detection]) -> Option<&'static Carrier> {
    match candidates {
        [only] if detect::is_assignable(only) => Some(only.carrier),
        _ => None,
    }
}

fn only_dhl_ecommerce(candidates: &[Detection]) -> bool {
    let has = |code: &str| candidates.iter().any(|d| d.carrier.code == code);
    has("dhl_ecommerce") && !has("dhl_express")
}
