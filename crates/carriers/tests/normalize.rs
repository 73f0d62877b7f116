//! Free-text carrier names, tracking URLs and the package rules.

use waybill_carriers::{
    CARRIERS, Evidence, carrier_by_code, detect, normalize_carrier_name, normalize_package,
    tracking_url,
};
use waybill_core::Package;

const UPS_1Z: &str = "1Z5R89390357567127";
const USPS_22: &str = "9400111206206406260787";
/// FedEx SmartPost, which USPS delivers: both carriers accept it.
const SMARTPOST: &str = "9261292700768711948021";

fn package(carrier: Option<&str>, number: &str) -> Package {
    Package {
        carrier: carrier.map(str::to_owned),
        tracking_number: number.to_owned(),
        tracking_url: None,
    }
}

fn candidate_codes(number: &str) -> Vec<&'static str> {
    detect(number).iter().map(|d| d.carrier.code).collect()
}

#[test]
fn free_text_names() {
    let table: &[(&str, Option<&str>)] = &[
        ("ups", Some("ups")),
        ("UPS", Some("ups")),
        ("U.P.S.", Some("ups")),
        ("u p s", Some("ups")),
        ("United Parcel Service", Some("ups")),
        ("United Parcel Service, Inc.", Some("ups")),
        ("UPS Ground", Some("ups")),
        ("UPS Next Day Air Saver", Some("ups")),
        ("UPS 2nd Day Air A.M.", Some("ups")),
        ("ups surepost", Some("ups")),
        ("UPS Worldwide Express", Some("ups")),
        ("FedEx", Some("fedex")),
        ("fed ex", Some("fedex")),
        ("Fed-Ex", Some("fedex")),
        ("FedEx Ground", Some("fedex")),
        ("FedEx Home Delivery", Some("fedex")),
        ("FedEx SmartPost", Some("fedex")),
        ("FEDEX 2Day", Some("fedex")),
        ("FedEx International Priority", Some("fedex")),
        ("Federal Express", Some("fedex")),
        ("usps", Some("usps")),
        ("U.S.P.S.", Some("usps")),
        ("United States Postal Service", Some("usps")),
        ("U.S. Postal Service", Some("usps")),
        ("US Mail", Some("usps")),
        ("USPS Priority Mail Express", Some("usps")),
        ("USPS First-Class Package", Some("usps")),
        ("USPS Ground Advantage", Some("usps")),
        ("DHL", Some("dhl_express")),
        ("DHL Express", Some("dhl_express")),
        ("dhl express worldwide", Some("dhl_express")),
        ("DHL eCommerce", Some("dhl_ecommerce")),
        ("dhl ecommerce", Some("dhl_ecommerce")),
        ("DHL E-Commerce", Some("dhl_ecommerce")),
        ("DHL Global Mail", Some("dhl_ecommerce")),
        ("DHL eCommerce Solutions", Some("dhl_ecommerce")),
        ("amazon", Some("amazon")),
        ("Amazon Logistics", Some("amazon")),
        ("AMZL", Some("amazon")),
        ("Amazon.com", Some("amazon")),
        ("Amazon Shipping", Some("amazon")),
        ("Canada Post", Some("canada_post")),
        ("Postes Canada", Some("canada_post")),
        ("Canada Post / Postes Canada", Some("canada_post")),
        ("Société canadienne des postes", Some("canada_post")),
        ("CanadaPost Xpresspost", Some("canada_post")),
        ("Royal Mail", Some("royal_mail")),
        ("Royal Mail Tracked 48", Some("royal_mail")),
        ("Deutsche Post", Some("deutsche_post")),
        ("La Poste", Some("la_poste")),
        ("Australia Post", Some("australia_post")),
        ("AusPost", Some("australia_post")),
        // Not recognised: other carriers, other divisions, and text that only looks close.
        ("UPS Freight", None),
        ("FedEx Freight", None),
        ("DHL Paket", None),
        ("DHL Parcel", None),
        ("DHL Supply Chain", None),
        ("Amazon Fresh", None),
        ("La Poste Monaco", None),
        ("Purolator", Some("purolator")),
        ("OnTrac", Some("ontrac")),
        ("DPD", Some("dpd")),
        ("Old Dominion Freight Line", Some("old_dominion")),
        ("ODFL", Some("old_dominion")),
        ("LaserShip", Some("lasership")),
        ("Canpar Express", Some("canpar")),
        ("GOFO Express", Some("gofo")),
        ("Landmark Global", Some("landmark")),
        ("Spee-Dee Delivery", Some("spee_dee")),
        ("Yodel", Some("yodel")),
        ("YunExpress", Some("yunexpress")),
        ("DPD Local", None),
        ("Landmark", None),
        ("Loomis Express", None),
        ("Priority Mail", None),
        ("upstate courier", None),
        ("fedexx", None),
        ("Почта России", None),
        ("", None),
        ("  ", None),
        ("...", None),
    ];
    for (text, expected) in table {
        assert_eq!(
            normalize_carrier_name(text).map(|c| c.code),
            *expected,
            "{text:?}"
        );
    }
}

#[test]
fn canonical_names() {
    let names: Vec<(&str, &str)> = CARRIERS.iter().map(|c| (c.code, c.name)).collect();
    assert_eq!(
        names,
        [
            ("ups", "UPS"),
            ("usps", "USPS"),
            ("fedex", "FedEx"),
            ("dhl_express", "DHL Express"),
            ("dhl_ecommerce", "DHL eCommerce"),
            ("amazon", "Amazon Logistics"),
            ("canada_post", "Canada Post"),
            ("royal_mail", "Royal Mail"),
            ("deutsche_post", "Deutsche Post"),
            ("la_poste", "La Poste"),
            ("australia_post", "Australia Post"),
            ("canpar", "Canpar"),
            ("dpd", "DPD"),
            ("gofo", "GOFO Express"),
            ("landmark", "Landmark Global"),
            ("lasership", "LaserShip"),
            ("old_dominion", "Old Dominion"),
            ("ontrac", "OnTrac"),
            ("purolator", "Purolator"),
            ("spee_dee", "Spee-Dee Delivery"),
            ("yodel", "Yodel"),
            ("yunexpress", "YunExpress"),
            ("upu_s10", "International postal item (UPU S10)"),
        ]
    );
    // Every specific carrier's own name reads back as itself.
    for carrier in CARRIERS.iter().filter(|c| c.is_specific()) {
        assert_eq!(normalize_carrier_name(carrier.name), Some(*carrier));
    }
}

#[test]
fn tracking_urls() {
    let url =
        |code: &str, number: &str| tracking_url(carrier_by_code(code).expect("known code"), number);
    assert_eq!(
        url("ups", "1z 5r8 939 0357567127"),
        "https://www.ups.com/track?tracknum=1Z5R89390357567127"
    );
    assert_eq!(
        url("usps", "9400 1112 0620 6406 2607 87"),
        "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111206206406260787"
    );
    assert_eq!(
        url("fedex", "986578788855"),
        "https://www.fedex.com/fedextrack/?trknbr=986578788855"
    );
    assert_eq!(
        url("dhl_express", "3318810025"),
        "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id=3318810025"
    );
    assert_eq!(
        url("dhl_ecommerce", "GM2951173225174494"),
        "https://www.dhl.com/global-en/home/tracking/tracking-ecommerce.html?submit=1&tracking-id=GM2951173225174494"
    );
    assert_eq!(
        url("amazon", "tba000000000000"),
        "https://track.amazon.com/tracking/TBA000000000000"
    );
    assert_eq!(
        url("canada_post", "0073938000549297"),
        "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=0073938000549297"
    );
    assert_eq!(
        url("royal_mail", "RB123456785GB"),
        "https://www.royalmail.com/track-your-item#/tracking-results/RB123456785GB"
    );
    assert_eq!(
        url("deutsche_post", "RB123456785DE"),
        "https://www.deutschepost.de/de/s/sendungsverfolgung.html?piececode=RB123456785DE"
    );
    assert_eq!(
        url("la_poste", "RB123456785FR"),
        "https://www.laposte.fr/outils/suivre-vos-envois?code=RB123456785FR"
    );
    assert_eq!(
        url("australia_post", "RB123456785AU"),
        "https://auspost.com.au/mypost/track/#/details/RB123456785AU"
    );
    // Anything outside letters, digits and - . _ ~ is percent-encoded (UTF-8 bytes).
    assert_eq!(
        url("ups", "A&B=C?D#E/F+G%H ü"),
        "https://www.ups.com/track?tracknum=A%26B%3DC%3FD%23E%2FF%2BG%25H%C3%BC"
    );
}

#[test]
fn detections_carry_url_service_and_evidence() {
    let found = detect(UPS_1Z);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].carrier.code, "ups");
    assert_eq!(found[0].service, "UPS 1Z");
    assert_eq!(found[0].evidence, Evidence::CheckDigit);
    assert_eq!(
        found[0].tracking_url,
        "https://www.ups.com/track?tracknum=1Z5R89390357567127"
    );
    let json = serde_json::to_value(&found[0]).expect("serialises");
    assert_eq!(
        json,
        serde_json::json!({
            "carrier": {"code": "ups", "name": "UPS"},
            "format": {"id": "ups", "name": "UPS 1Z", "check_digit": "ups_mod10"},
            "service": "UPS 1Z",
            "tracking_url": "https://www.ups.com/track?tracknum=1Z5R89390357567127",
            "evidence": "check_digit",
        })
    );
    assert_eq!(detect("TBA000000000000")[0].evidence, Evidence::Prefix);
    assert_eq!(detect("60120172242323")[0].evidence, Evidence::Pattern);
}

#[test]
fn no_carrier_and_one_candidate_assigns_it() {
    let n = normalize_package(&package(None, UPS_1Z));
    assert_eq!(n.carrier_code, Some("ups"));
    assert_eq!(n.package.carrier.as_deref(), Some("UPS"));
    assert_eq!(
        n.package.tracking_url.as_deref(),
        Some("https://www.ups.com/track?tracknum=1Z5R89390357567127")
    );
    assert_eq!(n.package.tracking_number, UPS_1Z);
    assert_eq!(n.candidates, detect(UPS_1Z));

    // A spaced, lower-case number keeps its spelling; the URL uses the canonical form.
    let n = normalize_package(&package(None, "1z 5r8 939 0357567127"));
    assert_eq!(n.carrier_code, Some("ups"));
    assert_eq!(n.package.tracking_number, "1z 5r8 939 0357567127");
    assert_eq!(
        n.package.tracking_url.as_deref(),
        Some("https://www.ups.com/track?tracknum=1Z5R89390357567127")
    );

    // Prefix evidence is enough: TBA is Amazon's own.
    assert_eq!(
        normalize_package(&package(None, "TBA010000000000")).carrier_code,
        Some("amazon")
    );
    // S10 from a country with a known operator.
    let n = normalize_package(&package(None, "RB123456785US"));
    assert_eq!(n.carrier_code, Some("usps"));
    assert_eq!(n.package.carrier.as_deref(), Some("USPS"));
}

#[test]
fn ambiguous_number_assigns_nothing_and_lists_candidates() {
    assert_eq!(candidate_codes(SMARTPOST), ["usps", "fedex"]);
    let n = normalize_package(&package(None, SMARTPOST));
    assert_eq!(n.carrier_code, None);
    assert_eq!(n.package.carrier, None);
    assert_eq!(n.package.tracking_url, None);
    assert_eq!(
        n.package,
        package(None, SMARTPOST),
        "the package is untouched"
    );
    assert_eq!(n.candidates.len(), 2);
    assert_eq!(n.candidates[1].service, "FedEx SmartPost");

    // An S10 number with a DHL eCommerce prefix: Royal Mail by check digit, DHL by pattern.
    assert_eq!(
        candidate_codes("LX123456785GB"),
        ["dhl_ecommerce", "royal_mail"]
    );
    assert_eq!(
        normalize_package(&package(None, "LX123456785GB")).carrier_code,
        None
    );
}

#[test]
fn weak_or_generic_single_candidates_are_not_assigned() {
    // Any 14 digits fit DHL eCommerce's pattern; nothing confirms it.
    let n = normalize_package(&package(None, "60120172242323"));
    assert_eq!(candidate_codes("60120172242323"), ["dhl_ecommerce"]);
    assert_eq!(n.carrier_code, None);
    assert_eq!(n.package.carrier, None);
    // An S10 item of a postal operator Waybill has no entry for.
    let n = normalize_package(&package(None, "RB123456785CV"));
    assert_eq!(candidate_codes("RB123456785CV"), ["upu_s10"]);
    assert_eq!(n.candidates[0].service, "S10 registered (CV)");
    assert_eq!(n.carrier_code, None);
    assert_eq!(n.package.carrier, None);
}

#[test]
fn given_carrier_is_normalised_and_kept_over_detection() {
    let n = normalize_package(&package(Some("fed ex"), SMARTPOST));
    assert_eq!(n.carrier_code, Some("fedex"));
    assert_eq!(n.package.carrier.as_deref(), Some("FedEx"));
    assert_eq!(
        n.package.tracking_url.as_deref(),
        Some("https://www.fedex.com/fedextrack/?trknbr=9261292700768711948021")
    );
    assert_eq!(candidate_codes(SMARTPOST).len(), n.candidates.len());

    // The number is USPS's, the merchant says UPS: UPS stays, USPS is reported.
    let n = normalize_package(&package(Some("U.P.S."), USPS_22));
    assert_eq!(n.carrier_code, Some("ups"));
    assert_eq!(n.package.carrier.as_deref(), Some("UPS"));
    assert_eq!(
        n.package.tracking_url.as_deref(),
        Some("https://www.ups.com/track?tracknum=9400111206206406260787")
    );
    assert_eq!(n.candidates.len(), 1);
    assert_eq!(n.candidates[0].carrier.code, "usps");
}

#[test]
fn plain_dhl_follows_the_number_within_the_family() {
    let code = |number: &str| normalize_package(&package(Some("DHL"), number)).carrier_code;
    assert_eq!(code("GM2951173225174494"), Some("dhl_ecommerce"));
    assert_eq!(code("3318810025"), Some("dhl_express"));
    assert_eq!(code(UPS_1Z), Some("dhl_express"));
    // Named explicitly, the division stands whatever the number says.
    let n = normalize_package(&package(Some("DHL Express"), "GM2951173225174494"));
    assert_eq!(n.carrier_code, Some("dhl_express"));
}

#[test]
fn unrecognised_carrier_and_number_stay_as_given() {
    let n = normalize_package(&package(Some("  Loomis Express Inc. "), UPS_1Z));
    assert_eq!(n.package.carrier.as_deref(), Some("  Loomis Express Inc. "));
    assert_eq!(n.carrier_code, None);
    assert_eq!(
        n.package.tracking_url, None,
        "no URL for a carrier we don't know"
    );
    assert_eq!(candidate_codes(UPS_1Z), ["ups"]);
    assert_eq!(n.candidates.len(), 1, "the candidates are still reported");

    let p = package(None, "order #1234-AB");
    let n = normalize_package(&p);
    assert_eq!(n.package, p);
    assert_eq!(n.carrier_code, None);
    assert!(n.candidates.is_empty());

    // A known carrier with a number no format accepts: name normalised, number untouched.
    let n = normalize_package(&package(Some("ups ground"), "abc 123"));
    assert_eq!(n.package.carrier.as_deref(), Some("UPS"));
    assert_eq!(n.package.tracking_number, "abc 123");
    assert_eq!(
        n.package.tracking_url.as_deref(),
        Some("https://www.ups.com/track?tracknum=ABC123")
    );
    assert!(n.candidates.is_empty());
}

#[test]
fn given_tracking_url_is_kept_and_blank_ones_are_filled() {
    let mut p = package(None, UPS_1Z);
    p.tracking_url = Some("https://shop.example/track/42".to_owned());
    let n = normalize_package(&p);
    assert_eq!(n.carrier_code, Some("ups"));
    assert_eq!(
        n.package.tracking_url.as_deref(),
        Some("https://shop.example/track/42")
    );

    p.tracking_url = Some(" ".to_owned());
    let n = normalize_package(&p);
    assert_eq!(
        n.package.tracking_url.as_deref(),
        Some("https://www.ups.com/track?tracknum=1Z5R89390357567127")
    );
}

#[test]
fn blank_carrier_counts_as_missing() {
    let n = normalize_package(&package(Some("   "), UPS_1Z));
    assert_eq!(n.carrier_code, Some("ups"));
    assert_eq!(n.package.carrier.as_deref(), Some("UPS"));
    // ...but is kept when nothing replaces it.
    let n = normalize_package(&package(Some(""), SMARTPOST));
    assert_eq!(n.package.carrier.as_deref(), Some(""));
    assert_eq!(n.carrier_code, None);
}
