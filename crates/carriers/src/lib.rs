//! Carrier intelligence: which carrier a tracking number belongs to, what a merchant's free-text
//! carrier name means, and where the parcel can be followed. No I/O.
//!
//! # Rules
//!
//! * [`detect`] reports every carrier whose format accepts a number (after removing whitespace and
//!   dashes and upper-casing) — and its check digit, where the format has one — with the
//!   [`Format`] that matched and the [`Evidence`] it rests on. Formats overlap (a FedEx SmartPost
//!   number is a USPS number too), so one number can have several candidates; `detect` never
//!   picks one.
//! * [`check_digit_mismatches`] lists the formats whose shape a number has but whose check digit
//!   it fails (for carriers that do not accept it by another format), with the expected and the
//!   found check character.
//! * [`identify`] gives one answer: [`Identification::Carrier`] when exactly one specific
//!   carrier accepts the number on more than its shape; [`Identification::Unconfirmed`] for a
//!   single shape-only or generic-S10 candidate; [`Identification::Ambiguous`] when several
//!   carriers accept it (none is picked); [`Identification::CheckDigitMismatch`] when none
//!   accepts it but some formats' shapes fit and their check digits fail ("looks like a UPS
//!   number, but its check digit is wrong"); [`Identification::Unrecognised`] otherwise.
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
//!     (not the generic UPU S10 one) — what `identify` calls [`Identification::Carrier`].
//!     Several candidates, a shape-only match or a check-digit mismatch assign nothing: never a
//!     wrong guess;
//!   - a tracking URL given is kept; a missing one is built when the carrier is known;
//!   - the tracking number itself is always kept as given.
//!
//! # Formats and check digits
//!
//! The 39 formats of the data set's 18 couriers ([`FORMATS`]; ids as in the data set). Evidence
//! is *check digit* where there is one, *prefix* for a prefix of the carrier's own, *pattern*
//! for a shape only.
//!
//! | carrier | format ids | shape | check digit |
//! | --- | --- | --- | --- |
//! | UPS | `ups` | `1Z` + 15 letters/digits + check | UPS mod 10: letters valued (ASCII − 63) mod 10 (A = 2); weights 1, 2 alternating from the leftmost data character; check = (10 − sum mod 10) mod 10 |
//! | UPS | `ups_waybill` | A/H/J/K/T/V + 9 digits + check | the same over the 9 digits |
//! | USPS | `usps_20`, `usps_22`, `usps_34v2`, `usps_91` | IMpb: 22 digits from `91`–`98`, 26 from `91`–`95`; 20 digits; 20 or 24 digits without the application identifier `91`; optional routing `420` + ZIP (`usps_22`, `usps_91`) or ZIP+4 (`usps_34v2`) | mod 10, weight 3 on the rightmost data digit, then 1, 3, …; the implied `91` counted when not printed |
//! | USPS, Canada Post, others | `s10` | UPU S10: 2 letters + 8 digits + check + ISO 3166 country | weights 8, 6, 4, 2, 3, 5, 9, 7; c = 11 − sum mod 11; 10 → 0, 11 → 5 |
//! | FedEx | `fedex_12`, `fedex_34`, `fedex_ground_gsn` | Express 12 digits; Express 34 (`10…`); Ground GSN 34 (`96…`, last 13 data digits) | weights 1, 3, 7 repeating from the rightmost data digit; check = (sum mod 11) mod 10 |
//! | FedEx | `fedex_ground`, `fedex_ground_96`, `fedex_ground_sscc_18` | Ground 15 digits; Ground 96 (22 digits, check over the last 14 data digits); SSCC-18 | mod 10, weight 3 on the rightmost data digit (GS1) |
//! | FedEx | `fedex_smartpost` | USPS IMpb `92 61 29…` (20/24 digits without the `92`), optionally routed | USPS mod 10, `92` counted even when not printed |
//! | DHL Express | `dhl_express` | 10 or 11 digits | the data digits as a number, mod 7 |
//! | DHL Express | `dhl_express_piece_id` | `J` + 2–3 letters + 9–10 digits | none (prefix) |
//! | DHL eCommerce | `dhl_ecommerce`, `dhl_ecommerce_14`, `dhl_ecommerce_30` | `GM` (prefix) or `LX RX UV CN SG TH IN HK MY` (pattern) + 10–39 characters from a digit; 14 digits (pattern); `420` + ZIP5 + IMpb `92`–`95` | USPS mod 10 for the 30 digits; none otherwise |
//! | Amazon Logistics | `amazon_logistics`, `amazon_international` | `TBA`/`TBC`/`TBM` + 12 digits (prefix); A/F/C + 10 digits (pattern) | none |
//! | Canada Post | `canada_post` | 16 digits | mod 10, weight 3 on the rightmost data digit |
//! | Canpar | `canpar_22` | C/D/K/L/S/U/X/Z + 21 digits | none (pattern) |
//! | DPD | `dpd`, `dpd_14` | 27 digits + check; 14 digits + check | ISO/IEC 7064 MOD 37,36: a digit or a letter |
//! | GOFO Express | `gofo_us` | `GFUS` + 14 digits | none (prefix) |
//! | Landmark Global | `landmark_global` | `LTN` + 8 digits + `N1` | none (prefix) |
//! | LaserShip | `lasership_lx`, `lasership_1ls7`, `lasership_1ls7_18` | `L` + A/I/E/H/N/X + 1–3 + 7 digits; `1LS7` + 1/2 + 10 digits; `1LS7` + 1/2 + 2 digits + `01` + 1–4 + 6 digits + `-1` | none (prefix) |
//! | Old Dominion | `old_dominion`, `old_dominion_guaranteed` | 11 digits from `072`/`777`/`778`/`780`; from `80` | Luhn |
//! | OnTrac | `ontrac_c`, `ontrac_d` | `C` or `D` + 13 digits + check | UPS mod 10 over the letter (C = 4, D = 5) and the digits; a serial already starting with the letter's value is checked without the letter, as the data set does |
//! | Purolator | `purolator_numeric`, `purolator_alpha` | 12 digits from `0`–`5`; 3 letters + 9 digits | Luhn; none (pattern) |
//! | Spee-Dee Delivery | `speedee` | `SP` + 18 digits | none (prefix) |
//! | Yodel | `yodel` | `JD` or `JJD` + 16 digits | none (prefix) |
//! | YunExpress | `yunexpress` | `YT` + 16 digits | none (prefix) |
//!
//! S10 numbers name the posting country's operator: US → USPS, CA → Canada Post, GB → Royal
//! Mail, DE → Deutsche Post, FR → La Poste, AU → Australia Post, any other assigned ISO 3166
//! code → the generic `upu_s10` candidate. Each carrier has one tracking page
//! ([`tracking_url`]); LaserShip's is OnTrac's, which LaserShip numbers are tracked on.
//!
//! # Sources
//!
//! The formats follow the MIT-licensed `tracking_number_data` set: 12 of its couriers as
//! embedded in the `tracking-numbers` crate, whose valid and invalid test numbers the tests
//! check against, and the six added to the set since (Canpar, GOFO, Purolator, Spee-Dee, Yodel,
//! YunExpress), whose sample numbers `tests/formats.rs` carries. The check-digit rules are the
//! carriers' published ones (GS1 modulo 10, UPU S10, USPS IMpb, Luhn, ISO/IEC 7064). The
//! detection here is written by hand rather than taken from that crate: its `track()` returns
//! only one match, and it needs PCRE2. Deliberate differences from the set: ZIP+4 routing
//! prefixes are accepted for every IMpb form, SSCC-18 check digits cover all 17 data digits, S10
//! countries are all assigned ISO 3166 codes, and DHL eCommerce's prefixed numbers continue with
//! a digit and count no spaces.

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
