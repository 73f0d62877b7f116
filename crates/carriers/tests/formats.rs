//! Every one of the 39 formats of the MIT-licensed `tracking_number_data` set, with its public
//! sample numbers: at least two valid numbers, each detected as the format's carrier and format
//! with the carrier's tracking URL, and at least one invalid one — for a format with a check
//! digit, a check-digit failure reported as such; for a format without one, a shape failure,
//! not detected. Then the ambiguity and check-digit-mismatch reports.
//!
//! The numbers are the data set's own samples except the few marked "constructed", where the
//! set's samples are one number written twice (spaced and not): those are built here with the
//! format's check digit.

use waybill_carriers::{
    CheckDigit, Evidence, FORMATS, Identification, canonical_tracking_number,
    check_digit_mismatches, detect, format_by_id, identify, normalize_package,
};
use waybill_core::Package;

struct Case {
    format: &'static str,
    /// The carrier code every valid sample is detected as.
    carrier: &'static str,
    valid: &'static [&'static str],
    invalid: &'static [&'static str],
}

const fn case(
    format: &'static str,
    carrier: &'static str,
    valid: &'static [&'static str],
    invalid: &'static [&'static str],
) -> Case {
    Case {
        format,
        carrier,
        valid,
        invalid,
    }
}

/// The 39 formats, in the order of [`FORMATS`]. S10 is listed separately: its carrier depends on
/// the country (see `s10_names_the_posting_operator`).
static CASES: [Case; 38] = [
    case(
        "amazon_logistics",
        "amazon",
        &["TBA000000000000", "TBC 000000000000", "TBM502887274000"],
        &["TBB000000000000", "TBA50288727400A"],
    ),
    case(
        "amazon_international",
        "amazon",
        &["C1004444443", "C1004444444"],
        &["D1234567890"],
    ),
    case(
        "canada_post",
        "canada_post",
        &["0073938000549297", "7035114477138472", "4002847016405018"],
        &["0073938000549292", "7035114477138471"],
    ),
    case(
        "canpar_22",
        "canpar",
        &[
            "D576002440000001718010",
            "L576002440000000001004",
            "S576002440000000025001",
        ],
        &["M576002440000002510003", "D57600244000000251000"],
    ),
    case(
        "dhl_express",
        "dhl_express",
        &["3318810025", "8487135506", "73891051146"],
        &["3318810010", "3318810034"],
    ),
    case(
        "dhl_express_piece_id",
        "dhl_express",
        &["JJD0099999999", "JVGL0999999990"],
        &["XJD0099999998"],
    ),
    case(
        "dhl_ecommerce",
        "dhl_ecommerce",
        &[
            "GM2951173225174494",
            "GM295117494011169042",
            "GM9E44608A27984866BA2D",
        ],
        &["GS295117494011169041", "GR295117494011169045"],
    ),
    case(
        "dhl_ecommerce_14",
        "dhl_ecommerce",
        &["60120172242323", "5108 7693037816", "60120174971147"],
        &["A60120172242323", "601201722X2323"],
    ),
    case(
        "dhl_ecommerce_30",
        "dhl_ecommerce",
        &[
            "420902459261290336128704042634",
            "420941179261290336128704062441",
        ],
        &["420941179261290336128704062442"],
    ),
    case(
        "dpd",
        "dpd",
        &[
            "00 81827 0998 0000 0200 33 350 276 C",
            "0081 827 0998 0000 0200 45 327 276 N",
        ],
        &[
            "008182709980000020033350276A",
            "0081 827 0998 0000 0200 45 000 000 N",
        ],
    ),
    case(
        "dpd_14",
        "dpd",
        &["09 9800 0002 0033 F", "0998 0000 0200 34D"],
        &["09980000020033D"],
    ),
    case(
        "fedex_12",
        "fedex",
        &["986578788855", "477179081230", "799531274483"],
        &["996578788855"],
    ),
    case(
        "fedex_34",
        "fedex",
        &[
            "1001921334250001000300779017972697",
            "1027590111820004833500785458233610",
        ],
        &["1001901781990001000300617767839438"],
    ),
    case(
        "fedex_smartpost",
        "fedex",
        &[
            "9261292700768711948021",
            "420 11213 92 6129098349792366623 8",
            "61299998820821171811",
        ],
        &["9261292700768711948020", "92 6129098349792366623 5"],
    ),
    case(
        "fedex_ground",
        "fedex",
        &["0414 4176 0228 964", "5682 8361 0012 000"],
        &["5682 8361 0012 732"],
    ),
    case(
        "fedex_ground_sscc_18",
        "fedex",
        // Constructed: the GS1 example SSCC 1 0614141 123456789 7.
        &["00 0123 4500 0000 0027", "106141411234567897"],
        &["000000000000000001"],
    ),
    case(
        "fedex_ground_96",
        "fedex",
        // Constructed: 96 12 345 1234567 7654321 + check digit 8.
        &["9611020987654312345672", "9612345123456776543218"],
        &["9600000000000000000001"],
    ),
    case(
        "fedex_ground_gsn",
        "fedex",
        &[
            "9622001900000000000000776632517510",
            "9632001560123456789900794808390594",
        ],
        &["9622001560001234567100794808390595"],
    ),
    case(
        "gofo_us",
        "gofo",
        &["GFUS01011884214464", "GFUS01011884214272"],
        &["GFUS0101188421446"],
    ),
    case(
        "landmark_global",
        "landmark",
        &["LTN74207623N1", "LTN74209518N1", "LTN74224021N1"],
        &["LSN74209518N1", "LSN74209518N2"],
    ),
    case(
        "lasership_lx",
        "lasership",
        &["LX17635036", "LI 129 79072", "LA28376237", "LN30083672"],
        &["XA17635036", "LX9763503N"],
    ),
    case(
        "lasership_1ls7",
        "lasership",
        &["1LS717793482164", "1LS724505321754"],
        &["1LX734505321754"],
    ),
    case(
        "lasership_1ls7_18",
        "lasership",
        // Constructed: 1LS7 2 20 01 4 123456 -1.
        &["1LS7119013618127-1", "1LS7220014123456-1"],
        &["1LS7119013618127-2"],
    ),
    case(
        "old_dominion",
        "old_dominion",
        &["07209562763", "77767553207", "77806528897"],
        &["07209562773"],
    ),
    case(
        "old_dominion_guaranteed",
        "old_dominion",
        &["80003280379", "80993847369"],
        &["80003280389"],
    ),
    case(
        "ontrac_c",
        "ontrac",
        &["C11031500001879", "C10999911320231", "C11121553156000"],
        &["C11031500001889", "C10000000000000"],
    ),
    case(
        "ontrac_d",
        "ontrac",
        &["D10011354453707", "D10011345983010", "D 100 113 459 830 10"],
        &["D10011345983012", "D10011342332144"],
    ),
    case(
        "purolator_numeric",
        "purolator",
        &["320595463938", "331426749957", "320606146993"],
        &["320595463939"],
    ),
    case(
        "purolator_alpha",
        "purolator",
        &["KYV009956937", "CGK002986959", "TLR000083964"],
        &["KY009956937"],
    ),
    case(
        "speedee",
        "spee_dee",
        &["SP029692510000920746", "SP029692510000901479"],
        &["SX029692510000920746", "029692510000920746"],
    ),
    case(
        "ups",
        "ups",
        &[
            "1Z5R89390357567127",
            "1Z879E930346834440",
            "1ZXX3150YW44070023",
        ],
        &["1Z5R89390357567128"],
    ),
    case(
        "ups_waybill",
        "ups",
        &["K1506235620", "J4603636537", "V0490119172"],
        &["K1506235622", "V0411335627"],
    ),
    case(
        "usps_20",
        "usps",
        &["0307 1790 0005 2348 3741", "7112 3456 7891 2345 6787"],
        &["0307 1790 0005 2348 3742"],
    ),
    case(
        "usps_22",
        "usps",
        &[
            "9400111206206406260787",
            "9434611206206406227577",
            "420787459400111206206406260787",
        ],
        &["9434611206206407667131"],
    ),
    case(
        "usps_34v2",
        "usps",
        &[
            "4201002334249200190132607600833457",
            "4201028200009261290113185417468510",
        ],
        &["4201028200009261290113185417468511"],
    ),
    case(
        "usps_91",
        "usps",
        &[
            "9101 1234 5678 9000 0000 13",
            "92748931507708513018050063",
            "420 22153 9101026837331000039521",
            "7196 9010 7560 0307 7385",
        ],
        &["9200000000000000000000"],
    ),
    case(
        "yodel",
        "yodel",
        &["JJD0002257639032011", "JD0002242617644732"],
        &["JC0002254405060992", "JD000225440506099"],
    ),
    case(
        "yunexpress",
        "yunexpress",
        &["YT2229521272164446", "YT2229521272164447"],
        &["YT123456789012345"],
    ),
];

/// Each carrier's tracking page, written out here rather than read from the crate.
fn url_prefix(carrier: &str) -> &'static str {
    match carrier {
        "amazon" => "https://track.amazon.com/tracking/",
        "canada_post" => {
            "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor="
        }
        "canpar" => "https://www.canpar.com/en/track/tracking.jsp?locale=en&reference=",
        "dhl_express" => {
            "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id="
        }
        "dhl_ecommerce" => {
            "https://www.dhl.com/global-en/home/tracking/tracking-ecommerce.html?submit=1&tracking-id="
        }
        "dpd" => "https://www.dpdgroup.com/nl/mydpd/my-parcels/track?lang=en&parcelNumber=",
        "fedex" => "https://www.fedex.com/fedextrack/?trknbr=",
        "gofo" => "https://www.gofoexpress.com/tracking.html?searchID=",
        "landmark" => "https://track.landmarkglobal.com/?search=",
        "lasership" | "ontrac" => "https://www.ontrac.com/tracking/?number=",
        "old_dominion" => {
            "https://www.odfl.com/us/en/tools/trace-track-ltl-freight/trace.html?proNumbers="
        }
        "purolator" => "https://www.purolator.com/en/shipping/tracker?searchValue=",
        "royal_mail" => "https://www.royalmail.com/track-your-item#/tracking-results/",
        "spee_dee" => "https://www.speedeedelivery.com/track/?tracking=",
        "ups" => "https://www.ups.com/track?tracknum=",
        "usps" => "https://tools.usps.com/go/TrackConfirmAction?tLabels=",
        "yodel" => "https://www.yodel.co.uk/tracking/",
        "yunexpress" => "https://www.yuntrack.com/parcelTracking?id=",
        other => panic!("no URL written down for {other}"),
    }
}

#[test]
fn the_cases_cover_all_39_formats() {
    assert_eq!(FORMATS.len(), 39);
    let mut ids: Vec<&str> = CASES.iter().map(|c| c.format).collect();
    ids.push("s10");
    let expected: Vec<&str> = FORMATS.iter().map(|f| f.id).collect();
    assert_eq!(ids.len(), expected.len());
    for id in &expected {
        assert!(ids.contains(id), "no case for {id}");
    }
    // 18 couriers: the data set counts DHL as one and S10 as one.
    let mut couriers: Vec<&str> = FORMATS
        .iter()
        .map(|f| match f.carrier.code {
            "dhl_express" | "dhl_ecommerce" => "dhl",
            code => code,
        })
        .collect();
    couriers.dedup();
    assert_eq!(couriers.len(), 18, "{couriers:?}");
}

#[test]
fn valid_samples_are_detected_with_carrier_format_and_url() {
    for case in &CASES {
        let format = format_by_id(case.format).expect("a known format");
        assert_eq!(format.carrier.code, case.carrier, "{}", case.format);
        assert!(case.valid.len() >= 2, "{}: two valid samples", case.format);
        for number in case.valid {
            let found = detect(number);
            let Some(hit) = found.iter().find(|d| d.carrier.code == case.carrier) else {
                panic!("{} {number:?}: not detected, got {found:?}", case.format);
            };
            assert_eq!(hit.format.id, case.format, "{number:?}");
            assert_eq!(
                hit.tracking_url,
                format!(
                    "{}{}",
                    url_prefix(case.carrier),
                    canonical_tracking_number(number)
                ),
                "{number:?}"
            );
            let expected_evidence = match (format.check_digit, case.format) {
                (CheckDigit::None, "canpar_22" | "purolator_alpha" | "dhl_ecommerce_14") => {
                    Evidence::Pattern
                }
                (CheckDigit::None, "amazon_international") => Evidence::Pattern,
                (CheckDigit::None, _) => Evidence::Prefix,
                _ => Evidence::CheckDigit,
            };
            assert_eq!(hit.evidence, expected_evidence, "{number:?}");
            // A valid number is never reported as failing its own carrier's check digit.
            assert!(
                check_digit_mismatches(number)
                    .iter()
                    .all(|m| m.carrier.code != case.carrier),
                "{number:?}"
            );
        }
    }
}

#[test]
fn invalid_samples_fail_their_check_digit_or_their_shape() {
    for case in &CASES {
        let format = format_by_id(case.format).expect("a known format");
        assert!(!case.invalid.is_empty(), "{}", case.format);
        for number in case.invalid {
            let found = detect(number);
            assert!(
                found.iter().all(|d| d.format.id != case.format),
                "{} invalid {number:?} accepted: {found:?}",
                case.format
            );
            let mismatches = check_digit_mismatches(number);
            let mine = mismatches.iter().find(|m| m.format.id == case.format);
            if format.check_digit == CheckDigit::None {
                assert!(mine.is_none(), "{number:?}: {mismatches:?}");
                continue;
            }
            let Some(mine) = mine else {
                panic!(
                    "{} invalid {number:?}: no check-digit mismatch, got {mismatches:?}",
                    case.format
                );
            };
            assert_eq!(mine.carrier.code, case.carrier);
            assert_ne!(mine.expected, mine.found);
            let canonical = canonical_tracking_number(number);
            assert_eq!(Some(mine.found), canonical.chars().last(), "{number:?}");
            // With no carrier accepting the number, that is the one answer.
            if found.is_empty() {
                match identify(number) {
                    Identification::CheckDigitMismatch(all) => assert_eq!(all, mismatches),
                    other => panic!("{number:?}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn s10_names_the_posting_operator() {
    let cases = [
        ("RB123456785GB", "royal_mail"),
        ("RB123456785US", "usps"),
        (" R B 1 2 3 4 5 6 7 8 5 C F ", "upu_s10"),
        ("RB123456785CV", "upu_s10"),
    ];
    for (number, carrier) in cases {
        let found = detect(number);
        assert_eq!(found.len(), 1, "{number:?}");
        assert_eq!(found[0].carrier.code, carrier);
        assert_eq!(found[0].format.id, "s10");
        let url = if carrier == "upu_s10" {
            "https://globaltracktrace.ptc.post/gtt.web/Search.aspx".to_owned()
        } else {
            format!(
                "{}{}",
                url_prefix(carrier),
                canonical_tracking_number(number)
            )
        };
        assert_eq!(found[0].tracking_url, url);
    }
    // A wrong check digit: S10 by shape, the US operator's, and the answer says so.
    match identify("RB123456786US") {
        Identification::CheckDigitMismatch(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].carrier.code, "usps");
            assert_eq!(m[0].format.id, "s10");
            assert_eq!((m[0].expected, m[0].found), ('5', '6'));
        }
        other => panic!("{other:?}"),
    }
    // An unassigned country code is not an S10 shape at all.
    assert_eq!(identify("RB123456785XX"), Identification::Unrecognised);
}

#[test]
fn a_wrong_check_digit_is_reported_instead_of_nothing() {
    // "Looks like a UPS number, but its check digit is wrong."
    let Identification::CheckDigitMismatch(m) = identify("1Z 5R8 939 0357 5671 28") else {
        panic!("expected a mismatch");
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].carrier.code, "ups");
    assert_eq!(m[0].carrier.name, "UPS");
    assert_eq!(m[0].format.id, "ups");
    assert_eq!(m[0].format.name, "UPS 1Z");
    assert_eq!((m[0].expected, m[0].found), ('7', '8'));
    assert!(detect("1Z5R89390357567128").is_empty());
    assert_eq!(
        serde_json::to_value(&m[0]).expect("serialises"),
        serde_json::json!({
            "carrier": {"code": "ups", "name": "UPS"},
            "format": {"id": "ups", "name": "UPS 1Z", "check_digit": "ups_mod10"},
            "expected": "7",
            "found": "8",
        })
    );

    // A shape two formats share: every one that fails is listed, in carrier order.
    let Identification::CheckDigitMismatch(m) = identify("320595463939") else {
        panic!("expected a mismatch");
    };
    let pairs: Vec<(&str, &str)> = m.iter().map(|m| (m.carrier.code, m.format.id)).collect();
    assert_eq!(
        pairs,
        [("fedex", "fedex_12"), ("purolator", "purolator_numeric")]
    );

    // A DPD check character is a letter.
    let Identification::CheckDigitMismatch(m) = identify("008182709980000020033350276A") else {
        panic!("expected a mismatch");
    };
    assert_eq!(
        (m[0].format.id, m[0].expected, m[0].found),
        ("dpd", 'C', 'A')
    );

    // Nothing is assigned to a package whose number fails its check digit.
    let n = normalize_package(&Package {
        carrier: None,
        tracking_number: "1Z5R89390357567128".to_owned(),
        tracking_url: None,
    });
    assert_eq!(n.carrier_code, None);
    assert!(n.candidates.is_empty());

    // A carrier that accepts the number by one format hides its own mismatches by another
    // (a 20-digit USPS number checked as printed, whatever the implied-91 reading says), but
    // another carrier's mismatch is still listed.
    assert!(check_digit_mismatches("0307 1790 0005 2348 3741").is_empty());
    let m = check_digit_mismatches("477179081230");
    assert_eq!(detect("477179081230")[0].carrier.code, "fedex");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].format.id, "purolator_numeric");

    // Shapes of no format with a check digit, and text, are simply unrecognised.
    assert_eq!(identify("order #1234"), Identification::Unrecognised);
    assert_eq!(identify(""), Identification::Unrecognised);
    assert_eq!(identify("HELLO"), Identification::Unrecognised);
}

#[test]
fn ambiguous_numbers_pick_no_carrier() {
    // Each valid by check digit for two carriers: FedEx Express and Purolator share 12 digits,
    // DHL Express and Old Dominion share 11, FedEx SmartPost is a USPS IMpb.
    let cases: [(&str, &[&str]); 4] = [
        ("287809468872", &["fedex", "purolator"]),
        ("320610804900", &["fedex", "purolator"]),
        ("78045768393", &["dhl_express", "old_dominion"]),
        ("9261292700768711948021", &["usps", "fedex"]),
    ];
    for (number, carriers) in cases {
        let Identification::Ambiguous(found) = identify(number) else {
            panic!("{number}: expected an ambiguity");
        };
        let codes: Vec<&str> = found.iter().map(|d| d.carrier.code).collect();
        assert_eq!(codes, carriers, "{number}");
        assert!(found.iter().all(|d| d.evidence == Evidence::CheckDigit));
        let n = normalize_package(&Package {
            carrier: None,
            tracking_number: number.to_owned(),
            tracking_url: None,
        });
        assert_eq!(n.carrier_code, None, "{number}");
        assert_eq!(n.package.tracking_url, None, "{number}");
        assert_eq!(n.candidates, found);
    }
    // A DHL Express piece ID by prefix, and Purolator's letters + 9 digits by pattern.
    let Identification::Ambiguous(found) = identify("JFV247545960") else {
        panic!("expected an ambiguity");
    };
    let pairs: Vec<(&str, Evidence)> = found.iter().map(|d| (d.format.id, d.evidence)).collect();
    assert_eq!(
        pairs,
        [
            ("dhl_express_piece_id", Evidence::Prefix),
            ("purolator_alpha", Evidence::Pattern)
        ]
    );
}

#[test]
fn one_answer_for_single_candidates() {
    // Check digit or own prefix, a specific carrier: the carrier.
    for (number, carrier) in [
        ("C11031500001879", "ontrac"),
        ("SP029692510000920746", "spee_dee"),
        ("YT2229521272164446", "yunexpress"),
        ("RB123456785GB", "royal_mail"),
    ] {
        let Identification::Carrier(d) = identify(number) else {
            panic!("{number}: expected one carrier");
        };
        assert_eq!(d.carrier.code, carrier);
        let n = normalize_package(&Package {
            carrier: None,
            tracking_number: number.to_owned(),
            tracking_url: None,
        });
        assert_eq!(n.carrier_code, Some(carrier));
        assert_eq!(
            n.package.tracking_url.as_deref(),
            Some(d.tracking_url.as_str())
        );
    }
    // Shape only, or the generic S10 carrier: a candidate, not an answer, and not assigned.
    for (number, carrier) in [
        ("D576002440000001718010", "canpar"),
        ("KYV009956937", "purolator"),
        ("60120172242323", "dhl_ecommerce"),
        ("RB123456785CV", "upu_s10"),
    ] {
        let Identification::Unconfirmed(d) = identify(number) else {
            panic!("{number}: expected an unconfirmed candidate");
        };
        assert_eq!(d.carrier.code, carrier);
        let n = normalize_package(&Package {
            carrier: None,
            tracking_number: number.to_owned(),
            tracking_url: None,
        });
        assert_eq!(n.carrier_code, None, "{number}");
    }
}
