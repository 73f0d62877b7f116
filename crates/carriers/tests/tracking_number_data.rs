//! Detection against the MIT-licensed `tracking_number_data` set, as shipped inside the
//! `tracking-numbers` crate (a dev-dependency): every valid test number must be detected as its
//! carrier, every invalid one must not be accepted as that carrier, and on random numbers our
//! detection must agree with the crate's own `track()`.
//!
//! The crate embeds 12 of the data set's 18 couriers (32 of its 39 formats); the six couriers
//! added to the set later (Canpar, GOFO, Purolator, Spee-Dee, Yodel, YunExpress) are checked
//! with their sample numbers in `tests/formats.rs`, and left out of the comparison with
//! `track()`, which does not know them.
//!
//! The crate does not expose its data, so the tests read the JSON files from the crate's source,
//! which `cargo metadata` locates wherever Cargo keeps it (registry, vendor directory, …).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::LazyLock;

use serde_json::Value;
use waybill_carriers::{
    Evidence, canonical_tracking_number, carrier_by_code, detect, normalize_package, tracking_url,
};
use waybill_core::Package;

/// The data set's courier files the crate embeds, by file name.
const IN_SCOPE: [&str; 12] = [
    "ups",
    "usps",
    "fedex",
    "dhl",
    "amazon",
    "canadapost",
    "s10",
    "dpd",
    "landmark",
    "lasership",
    "old_dominion",
    "ontrac",
];

/// Carriers of the data set's couriers that the embedded copy predates.
const NOT_EMBEDDED: [&str; 6] = [
    "canpar",
    "gofo",
    "purolator",
    "spee_dee",
    "yodel",
    "yunexpress",
];

fn data_dir() -> PathBuf {
    // Offline first: the crate is built, so its source is on disk. But `cargo metadata` reads
    // the manifest of every package in the lock file, for every platform, and a fresh machine
    // has only downloaded the ones it builds; then it is asked again, allowed to fetch them.
    let metadata = |offline: bool| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["metadata", "--format-version", "1", "--locked"]);
        if offline {
            command.arg("--offline");
        }
        command
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .output()
            .expect("cargo metadata runs")
    };
    let mut output = metadata(true);
    if !output.status.success() {
        output = metadata(false);
    }
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let package = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "tracking-numbers")
        .expect("tracking-numbers is a dev-dependency");
    PathBuf::from(package["manifest_path"].as_str().expect("manifest_path"))
        .parent()
        .expect("the manifest's directory")
        .join("tracking_number_data/couriers")
}

struct NumberType {
    file: &'static str,
    name: String,
    valid: Vec<String>,
    invalid: Vec<String>,
}

static DATA: LazyLock<Vec<NumberType>> = LazyLock::new(|| {
    let dir = data_dir();
    let mut types = Vec::new();
    for file in IN_SCOPE {
        let path = dir.join(format!("{file}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let courier: Value = serde_json::from_str(&text).expect("courier JSON");
        for entry in courier["tracking_numbers"]
            .as_array()
            .expect("tracking_numbers")
        {
            let list = |kind: &str| -> Vec<String> {
                entry["test_numbers"][kind]
                    .as_array()
                    .expect("test number list")
                    .iter()
                    .map(|n| n.as_str().expect("test number").to_owned())
                    .collect()
            };
            types.push(NumberType {
                file,
                name: entry["name"].as_str().expect("type name").to_owned(),
                valid: list("valid"),
                invalid: list("invalid"),
            });
        }
    }
    types
});

/// The carrier a data-set number belongs to.
fn expected_carrier(file: &str, type_name: &str, number: &str) -> &'static str {
    match file {
        "ups" => "ups",
        "usps" => "usps",
        "fedex" => "fedex",
        "dhl" if type_name.starts_with("DHL Express") => "dhl_express",
        "dhl" => "dhl_ecommerce",
        "amazon" => "amazon",
        "canadapost" => "canada_post",
        "s10" => s10_carrier(number),
        "dpd" => "dpd",
        "landmark" => "landmark",
        "lasership" => "lasership",
        "old_dominion" => "old_dominion",
        "ontrac" => "ontrac",
        _ => panic!("{file} is not in scope"),
    }
}

fn s10_carrier(number: &str) -> &'static str {
    let number = canonical_tracking_number(number);
    match number.get(number.len().saturating_sub(2)..) {
        Some("US") => "usps",
        Some("CA") => "canada_post",
        Some("GB") => "royal_mail",
        Some("DE") => "deutsche_post",
        Some("FR") => "la_poste",
        Some("AU") => "australia_post",
        _ => "upu_s10",
    }
}

fn codes(number: &str) -> Vec<&'static str> {
    detect(number).iter().map(|d| d.carrier.code).collect()
}

fn package(carrier: Option<&str>, number: &str) -> Package {
    Package {
        carrier: carrier.map(str::to_owned),
        tracking_number: number.to_owned(),
        tracking_url: None,
    }
}

/// Why a valid data-set number is accepted by more than one carrier; panics on an overlap nobody
/// explained.
fn overlap_reason(number: &str, carriers: &[&str]) -> &'static str {
    let n = canonical_tracking_number(number);
    let set: BTreeSet<&str> = carriers.iter().copied().collect();
    let routed_core = |zip: usize| n.get(3 + zip..).filter(|_| n.starts_with("420"));
    let smartpost = n.starts_with("926129")
        || n.starts_with("6129")
        || routed_core(5).is_some_and(|c| c.starts_with("926129"))
        || routed_core(9).is_some_and(|c| c.starts_with("926129"));
    let dhl_impb = n.len() == 30 && routed_core(5).is_some_and(|c| c.starts_with('9'));
    match set.iter().copied().collect::<Vec<_>>().as_slice() {
        ["fedex", "usps"] if smartpost => {
            "FedEx SmartPost numbers are USPS IMpb numbers (USPS delivers them)"
        }
        ["fedex", "usps"] if n.len() == 22 && n.starts_with("96") => {
            "22 digits from 96 are both FedEx Ground 96 and USPS IMpb (96: insured mail)"
        }
        ["dhl_ecommerce", "usps"] if dhl_impb => {
            "DHL eCommerce's 30-digit numbers are USPS IMpb numbers (USPS delivers them)"
        }
        ["dhl_ecommerce", "fedex", "usps"] if dhl_impb && smartpost => {
            "the data set's DHL eCommerce IMpb numbers carry the SmartPost signature 92 61 29"
        }
        ["dhl_express", "old_dominion"] if n.len() == 11 => {
            "11 digits with a Luhn check digit (Old Dominion) can also be a multiple of 7 plus its \
             last digit (DHL Express)"
        }
        _ => panic!("unexplained overlap for {number}: {carriers:?}"),
    }
}

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
}

#[test]
fn data_set_numbers_are_detected_as_their_carrier() {
    let mut tally: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut overlaps: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for number_type in DATA.iter() {
        assert!(
            !number_type.valid.is_empty(),
            "{} has no valid numbers",
            number_type.name
        );
        for number in &number_type.valid {
            let expected = expected_carrier(number_type.file, &number_type.name, number);
            let found = detect(number);
            let carriers: Vec<&str> = found.iter().map(|d| d.carrier.code).collect();
            assert!(
                carriers.contains(&expected),
                "{} {number:?}: expected {expected}, detected {carriers:?}",
                number_type.name
            );
            tally.entry(expected).or_default().valid += 1;

            let normalized = normalize_package(&package(None, number));
            assert_eq!(normalized.candidates, found);
            assert_eq!(normalized.package.tracking_number, *number, "kept as given");
            if found.len() > 1 {
                // Several carriers: nothing assigned, every candidate reported.
                let reason = overlap_reason(number, &carriers);
                overlaps.entry(reason).or_default().push(number.clone());
                assert_eq!(normalized.carrier_code, None, "{number}");
                assert_eq!(normalized.package.carrier, None, "{number}");
                assert_eq!(normalized.package.tracking_url, None, "{number}");
            } else {
                let only = &found[0];
                let assign = only.evidence != Evidence::Pattern && only.carrier.is_specific();
                if assign {
                    assert_eq!(normalized.carrier_code, Some(expected), "{number}");
                    assert_eq!(
                        normalized.package.carrier.as_deref(),
                        Some(only.carrier.name)
                    );
                    assert_eq!(
                        normalized.package.tracking_url,
                        Some(tracking_url(only.carrier, number))
                    );
                } else {
                    assert_eq!(normalized.carrier_code, None, "{number}: {only:?}");
                    assert_eq!(normalized.package.carrier, None);
                }
            }

            // Given the right carrier by name, the merchant's carrier stands.
            if let Some(carrier) = carrier_by_code(expected).filter(|c| c.is_specific()) {
                let given = normalize_package(&package(Some(carrier.name), number));
                assert_eq!(given.carrier_code, Some(expected), "{number}");
                assert_eq!(given.package.carrier.as_deref(), Some(carrier.name));
            }
        }
        for number in &number_type.invalid {
            let expected = expected_carrier(number_type.file, &number_type.name, number);
            let carriers = codes(number);
            assert!(
                !carriers.contains(&expected),
                "{} invalid {number:?} accepted as {expected}",
                number_type.name
            );
            tally.entry(expected).or_default().invalid += 1;
        }
    }

    println!("data-set numbers checked, by carrier:");
    for (carrier, t) in &tally {
        println!(
            "  {carrier:<15} {:>3} valid {:>3} invalid",
            t.valid, t.invalid
        );
    }
    for (reason, numbers) in &overlaps {
        println!("overlap ({} numbers): {reason}: {numbers:?}", numbers.len());
    }
    for carrier in [
        "ups",
        "usps",
        "fedex",
        "dhl_express",
        "dhl_ecommerce",
        "amazon",
        "canada_post",
        "dpd",
        "landmark",
        "lasership",
        "old_dominion",
        "ontrac",
    ] {
        let t = tally.get(carrier).map_or((0, 0), |t| (t.valid, t.invalid));
        assert!(t.0 > 0 && t.1 > 0, "{carrier}: {t:?}");
    }
}

/// The courier `track()` names, as our carrier code; `None` for couriers out of scope.
fn their_carrier(result: &tracking_numbers::TrackingResult) -> Option<&'static str> {
    Some(match result.courier.as_str() {
        "UPS" => "ups",
        "United States Postal Service" => "usps",
        "FedEx" => "fedex",
        "DHL" if result.service.starts_with("DHL Express") => "dhl_express",
        "DHL" => "dhl_ecommerce",
        "Amazon" => "amazon",
        "Canada Post" => "canada_post",
        "S10 International Standard" => s10_carrier(&result.tracking_number),
        "DPD" => "dpd",
        "Landmark Global LTN" => "landmark",
        "LaserShip" => "lasership",
        "Old Dominion Freight Line" => "old_dominion",
        "OnTrac" => "ontrac",
        _ => return None,
    })
}

#[test]
fn valid_numbers_agree_with_the_crates_track() {
    let mut compared = 0;
    for number_type in DATA.iter() {
        for number in &number_type.valid {
            let Some(theirs) = tracking_numbers::track(number) else {
                panic!("track() rejects its own valid {number:?}");
            };
            // track()'s DHL eCommerce pattern counts spaces among its 10 to 39 characters, so a
            // spaced LaserShip LX number ("LX 176 35035", 8 digits) reads as DHL there.
            let spaced_lx = theirs.courier == "DHL"
                && canonical_tracking_number(number).len() < 12
                && codes(number) == ["lasership"];
            if spaced_lx {
                continue;
            }
            if let Some(carrier) = their_carrier(&theirs) {
                assert!(
                    codes(number).contains(&carrier),
                    "{number:?}: track() says {carrier}, we say {:?}",
                    codes(number)
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 80, "only {compared} compared");
}

/// A small deterministic generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self, chars: &[u8]) -> char {
        char::from(chars[(self.next() % chars.len() as u64) as usize])
    }

    fn string(&mut self, chars: &[u8], len: usize) -> String {
        (0..len).map(|_| self.pick(chars)).collect()
    }
}

const DIGITS: &[u8] = b"0123456789";
const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Random numbers shaped like each format with check digits left to chance (so about one in ten
/// is valid): wherever `track()` names a carrier in scope we must detect it, and wherever it
/// finds nothing we must find nothing it could see (it hides SmartPost and DHL's IMpb numbers
/// behind USPS, and does not know the couriers added to the data set after it, so those
/// detections are left out of the comparison).
#[test]
fn random_numbers_agree_with_the_crates_track() {
    let s10_countries: Vec<String> = {
        let path = data_dir().join("s10.json");
        let s10: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("s10.json"))
            .expect("s10 JSON");
        s10["tracking_numbers"][0]["additional"]
            .as_array()
            .expect("additional")
            .iter()
            .find(|a| a["name"] == "Courier")
            .expect("the Courier lookup")["lookup"]
            .as_array()
            .expect("lookup")
            .iter()
            .map(|l| l["matches"].as_str().expect("country").to_owned())
            .collect()
    };
    type Shape = fn(&mut Random, &[String]) -> String;
    let shapes: [(&str, Shape); 21] = [
        ("UPS 1Z", |r, _| {
            format!("1Z{}{}", r.string(ALNUM, 15), r.string(DIGITS, 1))
        }),
        ("UPS waybill", |r, _| {
            format!("{}{}", r.pick(b"HJKTV"), r.string(DIGITS, 10))
        }),
        ("10 digits", |r, _| r.string(DIGITS, 10)),
        ("11 digits", |r, _| r.string(DIGITS, 11)),
        ("12 digits", |r, _| r.string(DIGITS, 12)),
        ("15 digits", |r, _| r.string(DIGITS, 15)),
        ("16 digits", |r, _| r.string(DIGITS, 16)),
        ("SSCC-18", |r, _| format!("00{}", r.string(DIGITS, 16))),
        ("20 digits", |r, _| r.string(DIGITS, 20)),
        ("IMpb 22", |r, _| {
            format!("9{}{}", r.pick(b"12345678"), r.string(DIGITS, 20))
        }),
        ("IMpb 26", |r, _| {
            format!("9{}{}", r.pick(b"12345"), r.string(DIGITS, 24))
        }),
        ("SmartPost 22", |r, _| {
            format!("926129{}", r.string(DIGITS, 16))
        }),
        ("SmartPost 20", |r, _| {
            format!("6129{}", r.string(DIGITS, 16))
        }),
        ("routed IMpb 30", |r, _| {
            format!(
                "420{}9{}{}",
                r.string(DIGITS, 5),
                r.pick(b"12345678"),
                r.string(DIGITS, 20)
            )
        }),
        ("FedEx 34", |r, _| {
            format!(
                "{}{}",
                if r.next() % 2 == 0 { "10" } else { "96" },
                r.string(DIGITS, 32)
            )
        }),
        ("FedEx Ground 96", |r, _| {
            format!("96{}", r.string(DIGITS, 20))
        }),
        ("Old Dominion", |r, _| {
            let prefix = ["072", "777", "778", "780", "80"][(r.next() % 5) as usize];
            format!("{prefix}{}", r.string(DIGITS, 11 - prefix.len()))
        }),
        ("OnTrac", |r, _| {
            format!("{}{}", r.pick(b"CD"), r.string(DIGITS, 14))
        }),
        ("DPD 14", |r, _| {
            format!("{}{}", r.string(DIGITS, 14), r.string(ALNUM, 1))
        }),
        ("DPD 28", |r, _| {
            format!("{}{}", r.string(DIGITS, 27), r.string(ALNUM, 1))
        }),
        ("S10", |r, countries| {
            let country = &countries[(r.next() % countries.len() as u64) as usize];
            format!("{}{}{country}", r.string(LETTERS, 2), r.string(DIGITS, 9))
        }),
    ];
    let mut random = Random(0x5EED_CA22_1E25);
    for (shape, make) in shapes {
        let (mut agreed, mut accepted, mut skipped) = (0, 0, 0);
        for _ in 0..400 {
            let number = make(&mut random, &s10_countries);
            let ours = detect(&number);
            let theirs = tracking_numbers::track(&number);
            match theirs.as_ref().map(their_carrier) {
                Some(Some(carrier)) => {
                    let codes: Vec<&str> = ours.iter().map(|d| d.carrier.code).collect();
                    assert!(
                        codes.contains(&carrier),
                        "{shape} {number}: track() says {carrier}, we say {codes:?}"
                    );
                    accepted += 1;
                }
                Some(None) => {
                    skipped += 1;
                    continue;
                }
                None => {
                    let visible: Vec<_> = ours
                        .iter()
                        .filter(|d| {
                            d.service != "FedEx SmartPost"
                                && d.service != "DHL eCommerce (USPS IMpb)"
                                && !NOT_EMBEDDED.contains(&d.carrier.code)
                        })
                        .collect();
                    assert!(
                        visible.is_empty(),
                        "{shape} {number}: track() finds nothing, we say {visible:?}"
                    );
                }
            }
            agreed += 1;
        }
        println!("{shape:<16} {agreed} agreed ({accepted} accepted), {skipped} out of scope");
        assert!(accepted > 0, "{shape}: no valid number generated");
        assert!(skipped < 200, "{shape}: mostly out of scope");
    }
}
