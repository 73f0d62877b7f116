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
