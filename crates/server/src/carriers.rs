//! Carrier intelligence at the edge: every fulfillment a dialect accepts has its packages
//! normalised (canonical carrier name from free text or from the tracking number, tracking URL
//! built when missing) before it reaches the store. See `waybill-carriers` for the rules.

use waybill_core::{NewFulfillment, Package};

/// Normalises each package in place.
pub fn normalize_packages(packages: &mut [Package]) {
    for package in packages {
        *package = waybill_carriers::normalize_package(package).package;
    }
}

/// Normalises a new fulfillment's packages.
pub fn normalize(mut fulfillment: NewFulfillment) -> NewFulfillment {
    normalize_packages(&mut fulfillment.packages);
    fulfillment
}

/// A format whose shape a tracking number has, but whose check digit it fails.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LooksLike {
    /// The carrier's code (`ups`, `fedex`, …).
    pub carrier_code: String,
    /// The carrier's name.
    pub carrier: String,
    /// The format's id (`ups`, `fedex_12`, `usps_91`, …).
    pub format: String,
    /// The check character the rest of the number calls for.
    pub expected: String,
    /// The check character the number has.
    pub found: String,
}

/// Waybill's word on a tracking number that looks like a carrier's but fails its check digit
/// (`waybill_carriers::Identification::CheckDigitMismatch`). A warning only: the number is
/// kept as given (it may still be right), and no carrier is assigned from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckDigitWarning {
    pub tracking_number: String,
    /// A sentence for people: "looks like a UPS number, but its check digit is wrong …".
    pub message: String,
    /// Every format it looks like (several when formats share a shape).
    pub looks_like: Vec<LooksLike>,
}

/// The warning for `tracking_number`, if it looks like a carrier's number but fails the check
/// digit; `None` for a number that passes, fits no format, or is ambiguous.
pub fn check_digit_warning(tracking_number: &str) -> Option<CheckDigitWarning> {
    let waybill_carriers::Identification::CheckDigitMismatch(mismatches) =
        waybill_carriers::identify(tracking_number)
    else {
        return None;
    };
    let first = mismatches.first()?;
    let mut carriers: Vec<&str> = mismatches.iter().map(|m| m.carrier.name).collect();
    carriers.dedup();
    let message = format!(
        "'{}' looks like a {} number, but its check digit is wrong (expected {}, found {}); check the number",
        tracking_number.trim(),
        carriers.join(" or "),
        first.expected,
        first.found
    );
    Some(CheckDigitWarning {
        tracking_number: tracking_number.trim().to_owned(),
        message,
        looks_like: mismatches
            .iter()
            .map(|m| LooksLike {
                carrier_code: m.carrier.code.to_owned(),
                carrier: m.carrier.name.to_owned(),
                format: m.format.id.to_owned(),
                expected: m.expected.to_string(),
                found: m.found.to_string(),
            })
            .collect(),
    })
}

/// The warnings for a set of parcels, in their order.
pub fn check_digit_warnings(packages: &[Package]) -> Vec<CheckDigitWarning> {
    packages
        .iter()
        .filter_map(|p| check_digit_warning(&p.tracking_number))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_check_digit_is_a_warning_and_a_right_one_is_not() {
        // 1Z999AA10123456784 is UPS's published sample; the last digit is its check digit.
        assert_eq!(check_digit_warning("1Z999AA10123456784"), None);
        let warning = check_digit_warning("1Z999AA10123456785").expect("a warning");
        assert_eq!(warning.looks_like.len(), 1, "{warning:?}");
        assert_eq!(warning.looks_like[0].carrier, "UPS");
        assert_eq!(warning.looks_like[0].expected, "4");
        assert_eq!(warning.looks_like[0].found, "5");
        assert!(
            warning.message.contains("looks like a UPS number"),
            "{}",
            warning.message
        );
        assert_eq!(check_digit_warning("hello"), None);
        // The package itself is left as given: no carrier is assigned from a failing number.
        let mut packages = vec![Package {
            carrier: None,
            tracking_number: "1Z999AA10123456785".into(),
            tracking_url: None,
        }];
        normalize_packages(&mut packages);
        assert_eq!(packages[0].carrier, None);
        assert_eq!(check_digit_warnings(&packages).len(), 1);
    }
}
