//! The 39 tracking-number formats of the `tracking_number_data` set, one static each: a stable id
//! (the data set's, where it gives one), a display name, the carrier and the check-digit rule.
//! The matching itself is in `detect.rs`; the tracking page is the carrier's
//! ([`crate::tracking_url`]).

use serde::Serialize;

use crate::carrier::{
    AMAZON, CANADA_POST, CANPAR, Carrier, DHL_ECOMMERCE, DHL_EXPRESS, DPD, FEDEX, GOFO, LANDMARK,
    LASERSHIP, OLD_DOMINION, ONTRAC, PUROLATOR, SPEE_DEE, UPS, UPU_S10, USPS, YODEL, YUNEXPRESS,
};

/// How a format's last character checks the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckDigit {
    /// No check character: only the shape (and a prefix, where the format has one) is checked.
    None,
    /// Weighted modulo 10 (GS1, USPS IMpb, Canada Post, FedEx Ground): weight 3 on the rightmost
    /// data digit, then 1, 3, …
    Mod10,
    /// UPS's modulo 10: weights 1, 2 from the leftmost data character, letters valued
    /// `(ASCII − 63) mod 10` (UPS and OnTrac).
    UpsMod10,
    /// FedEx's: weights 1, 3, 7 from the rightmost data digit, `(sum mod 11) mod 10`.
    FedexMod11,
    /// The data digits as a number, modulo 7 (DHL Express).
    Mod7,
    /// Luhn (Old Dominion, Purolator).
    Luhn,
    /// ISO/IEC 7064 MOD 37,36, a digit or a letter (DPD).
    Mod37_36,
    /// UPU S10: weights 8, 6, 4, 2, 3, 5, 9, 7, modulo 11.
    S10,
}

/// One tracking-number format. Serialises as `{"id": …, "name": …, "check_digit": …}`.
#[derive(Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Format {
    /// Stable id, as in the data set where it has one ("ups", "fedex_12", "usps_91", …).
    pub id: &'static str,
    /// The name people know the format by ("UPS 1Z", "FedEx Ground 96 (22)").
    pub name: &'static str,
    /// The carrier whose format it is. For S10 it is the generic postal carrier: a detection
    /// names the posting country's operator instead where Waybill knows it.
    #[serde(skip)]
    pub carrier: &'static Carrier,
    pub check_digit: CheckDigit,
}

const fn format(
    id: &'static str,
    name: &'static str,
    carrier: &'static Carrier,
    check_digit: CheckDigit,
) -> Format {
    Format {
        id,
        name,
        carrier,
        check_digit,
    }
}

use CheckDigit::{FedexMod11, Luhn, Mod7, Mod10, Mod37_36, None as NoCheck, S10, UpsMod10};

pub static AMAZON_LOGISTICS: Format =
    format("amazon_logistics", "Amazon Logistics", &AMAZON, NoCheck);
pub static AMAZON_INTERNATIONAL: Format = format(
    "amazon_international",
    "Amazon International",
    &AMAZON,
    NoCheck,
);
pub static CANADA_POST_16: Format = format("canada_post", "Canada Post (16)", &CANADA_POST, Mod10);
pub static CANPAR_22: Format = format("canpar_22", "Canpar (22)", &CANPAR, NoCheck);
pub static DHL_EXPRESS_WAYBILL: Format = format("dhl_express", "DHL Express", &DHL_EXPRESS, Mod7);
pub static DHL_EXPRESS_PIECE_ID: Format = format(
    "dhl_express_piece_id",
    "DHL Express (Piece ID)",
    &DHL_EXPRESS,
    NoCheck,
);
pub static DHL_ECOMMERCE_PREFIXED: Format =
    format("dhl_ecommerce", "DHL eCommerce", &DHL_ECOMMERCE, NoCheck);
pub static DHL_ECOMMERCE_14: Format = format(
    "dhl_ecommerce_14",
    "DHL eCommerce (14)",
    &DHL_ECOMMERCE,
    NoCheck,
);
pub static DHL_ECOMMERCE_30: Format = format(
    "dhl_ecommerce_30",
    "DHL eCommerce (30)",
    &DHL_ECOMMERCE,
    Mod10,
);
pub static DPD_28: Format = format("dpd", "DPD (28)", &DPD, Mod37_36);
pub static DPD_14: Format = format("dpd_14", "DPD (14)", &DPD, Mod37_36);
pub static FEDEX_12: Format = format("fedex_12", "FedEx Express (12)", &FEDEX, FedexMod11);
pub static FEDEX_34: Format = format("fedex_34", "FedEx Express (34)", &FEDEX, FedexMod11);
pub static FEDEX_SMARTPOST: Format = format("fedex_smartpost", "FedEx SmartPost", &FEDEX, Mod10);
pub static FEDEX_GROUND: Format = format("fedex_ground", "FedEx Ground (15)", &FEDEX, Mod10);
pub static FEDEX_GROUND_SSCC_18: Format = format(
    "fedex_ground_sscc_18",
    "FedEx Ground (SSCC-18)",
    &FEDEX,
    Mod10,
);
pub static FEDEX_GROUND_96: Format =
    format("fedex_ground_96", "FedEx Ground 96 (22)", &FEDEX, Mod10);
pub static FEDEX_GROUND_GSN: Format = format(
    "fedex_ground_gsn",
    "FedEx Ground GSN (34)",
    &FEDEX,
    FedexMod11,
);
pub static GOFO_US: Format = format("gofo_us", "GOFO Express (US)", &GOFO, NoCheck);
pub static LANDMARK_GLOBAL: Format =
    format("landmark_global", "Landmark Global LTN", &LANDMARK, NoCheck);
pub static LASERSHIP_LX: Format = format("lasership_lx", "LaserShip LX", &LASERSHIP, NoCheck);
pub static LASERSHIP_1LS7: Format =
    format("lasership_1ls7", "LaserShip 1LS7 (15)", &LASERSHIP, NoCheck);
pub static LASERSHIP_1LS7_18: Format = format(
    "lasership_1ls7_18",
    "LaserShip 1LS7 (18)",
    &LASERSHIP,
    NoCheck,
);
pub static OLD_DOMINION_PRO: Format = format("old_dominion", "Old Dominion", &OLD_DOMINION, Luhn);
pub static OLD_DOMINION_GUARANTEED: Format = format(
    "old_dominion_guaranteed",
    "Old Dominion Guaranteed Shipment",
    &OLD_DOMINION,
    Luhn,
);
pub static ONTRAC_C: Format = format("ontrac_c", "OnTrac C", &ONTRAC, UpsMod10);
pub static ONTRAC_D: Format = format("ontrac_d", "OnTrac D", &ONTRAC, UpsMod10);
pub static PUROLATOR_NUMERIC: Format =
    format("purolator_numeric", "Purolator (12)", &PUROLATOR, Luhn);
pub static PUROLATOR_ALPHA: Format = format(
    "purolator_alpha",
    "Purolator (alpha + 9)",
    &PUROLATOR,
    NoCheck,
);
pub static S10_ITEM: Format = format("s10", "UPU S10", &UPU_S10, S10);
pub static SPEE_DEE_20: Format = format("speedee", "Spee-Dee (20)", &SPEE_DEE, NoCheck);
pub static UPS_1Z: Format = format("ups", "UPS 1Z", &UPS, UpsMod10);
pub static UPS_WAYBILL: Format = format("ups_waybill", "UPS Waybill", &UPS, UpsMod10);
pub static USPS_20: Format = format("usps_20", "USPS 20", &USPS, Mod10);
pub static USPS_22: Format = format("usps_22", "USPS 22", &USPS, Mod10);
pub static USPS_34V2: Format = format("usps_34v2", "USPS 34v2 (420 + ZIP+4)", &USPS, Mod10);
pub static USPS_91: Format = format("usps_91", "USPS 91 (IMpb)", &USPS, Mod10);
pub static YODEL_JD: Format = format("yodel", "Yodel", &YODEL, NoCheck);
pub static YUNEXPRESS_YT: Format = format("yunexpress", "YunExpress", &YUNEXPRESS, NoCheck);

/// Every format, grouped by carrier in the data set's order of couriers.
pub static FORMATS: [&Format; 39] = [
    &AMAZON_LOGISTICS,
    &AMAZON_INTERNATIONAL,
    &CANADA_POST_16,
    &CANPAR_22,
    &DHL_EXPRESS_WAYBILL,
    &DHL_EXPRESS_PIECE_ID,
    &DHL_ECOMMERCE_PREFIXED,
    &DHL_ECOMMERCE_14,
    &DHL_ECOMMERCE_30,
    &DPD_28,
    &DPD_14,
    &FEDEX_12,
    &FEDEX_34,
    &FEDEX_SMARTPOST,
    &FEDEX_GROUND,
    &FEDEX_GROUND_SSCC_18,
    &FEDEX_GROUND_96,
    &FEDEX_GROUND_GSN,
    &GOFO_US,
    &LANDMARK_GLOBAL,
    &LASERSHIP_LX,
    &LASERSHIP_1LS7,
    &LASERSHIP_1LS7_18,
    &OLD_DOMINION_PRO,
    &OLD_DOMINION_GUARANTEED,
    &ONTRAC_C,
    &ONTRAC_D,
    &PUROLATOR_NUMERIC,
    &PUROLATOR_ALPHA,
    &S10_ITEM,
    &SPEE_DEE_20,
    &UPS_1Z,
    &UPS_WAYBILL,
    &USPS_20,
    &USPS_22,
    &USPS_34V2,
    &USPS_91,
    &YODEL_JD,
    &YUNEXPRESS_YT,
];

/// The format with this id (`"ups"`, `"fedex_12"`, …), exactly as spelled in [`Format::id`].
pub fn format_by_id(id: &str) -> Option<&'static Format> {
    FORMATS.iter().copied().find(|f| f.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_found() {
        for f in FORMATS {
            assert_eq!(format_by_id(f.id), Some(f));
        }
        assert_eq!(format_by_id("UPS"), None);
    }

    #[test]
    fn serialises_id_name_and_check_digit() {
        let json = serde_json::to_string(&ONTRAC_C).unwrap();
        assert_eq!(
            json,
            r#"{"id":"ontrac_c","name":"OnTrac C","check_digit":"ups_mod10"}"#
        );
    }
}
