//! The carriers Waybill knows by name, and their public tracking pages.

use serde::Serialize;

/// A carrier Waybill recognises: a stable code for machines and the name people know it by.
/// Serialises as `{"code": …, "name": …}`.
#[derive(Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Carrier {
    pub code: &'static str,
    pub name: &'static str,
    /// The public tracking page; the URL-encoded number is appended to it.
    #[serde(skip)]
    url_prefix: &'static str,
    /// Whether the page takes the number at all (false only for the generic S10 carrier, whose
    /// page is the UPU's search form).
    #[serde(skip)]
    url_takes_number: bool,
}

const fn carrier(code: &'static str, name: &'static str, url_prefix: &'static str) -> Carrier {
    Carrier {
        code,
        name,
        url_prefix,
        url_takes_number: true,
    }
}

pub static UPS: Carrier = carrier("ups", "UPS", "https://www.ups.com/track?tracknum=");
pub static USPS: Carrier = carrier(
    "usps",
    "USPS",
    "https://tools.usps.com/go/TrackConfirmAction?tLabels=",
);
pub static FEDEX: Carrier = carrier(
    "fedex",
    "FedEx",
    "https://www.fedex.com/fedextrack/?trknbr=",
);
pub static DHL_EXPRESS: Carrier = carrier(
    "dhl_express",
    "DHL Express",
    "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id=",
);
pub static DHL_ECOMMERCE: Carrier = carrier(
    "dhl_ecommerce",
    "DHL eCommerce",
    "https://www.dhl.com/global-en/home/tracking/tracking-ecommerce.html?submit=1&tracking-id=",
);
pub static AMAZON: Carrier = carrier(
    "amazon",
    "Amazon Logistics",
    "https://track.amazon.com/tracking/",
);
pub static CANADA_POST: Carrier = carrier(
    "canada_post",
    "Canada Post",
    "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=",
);
pub static ROYAL_MAIL: Carrier = carrier(
    "royal_mail",
    "Royal Mail",
    "https://www.royalmail.com/track-your-item#/tracking-results/",
);
pub static DEUTSCHE_POST: Carrier = carrier(
    "deutsche_post",
    "Deutsche Post",
    "https://www.deutschepost.de/de/s/sendungsverfolgung.html?piececode=",
);
pub static LA_POSTE: Carrier = carrier(
    "la_poste",
    "La Poste",
    "https://www.laposte.fr/outils/suivre-vos-envois?code=",
);
pub static AUSTRALIA_POST: Carrier = carrier(
    "australia_post",
    "Australia Post",
    "https://auspost.com.au/mypost/track/#/details/",
);
pub static CANPAR: Carrier = carrier(
    "canpar",
    "Canpar",
    "https://www.canpar.com/en/track/tracking.jsp?locale=en&reference=",
);
pub static DPD: Carrier = carrier(
    "dpd",
    "DPD",
    "https://www.dpdgroup.com/nl/mydpd/my-parcels/track?lang=en&parcelNumber=",
);
pub static GOFO: Carrier = carrier(
    "gofo",
    "GOFO Express",
    "https://www.gofoexpress.com/tracking.html?searchID=",
);
pub static LANDMARK: Carrier = carrier(
    "landmark",
    "Landmark Global",
    "https://track.landmarkglobal.com/?search=",
);
/// LaserShip is part of OnTrac, whose tracking page takes LaserShip numbers (the data set names
/// no page of LaserShip's own).
pub static LASERSHIP: Carrier = carrier(
    "lasership",
    "LaserShip",
    "https://www.ontrac.com/tracking/?number=",
);
pub static OLD_DOMINION: Carrier = carrier(
    "old_dominion",
    "Old Dominion",
    "https://www.odfl.com/us/en/tools/trace-track-ltl-freight/trace.html?proNumbers=",
);
pub static ONTRAC: Carrier = carrier(
    "ontrac",
    "OnTrac",
    "https://www.ontrac.com/tracking/?number=",
);
pub static PUROLATOR: Carrier = carrier(
    "purolator",
    "Purolator",
    "https://www.purolator.com/en/shipping/tracker?searchValue=",
);
pub static SPEE_DEE: Carrier = carrier(
    "spee_dee",
    "Spee-Dee Delivery",
    "https://www.speedeedelivery.com/track/?tracking=",
);
pub static YODEL: Carrier = carrier("yodel", "Yodel", "https://www.yodel.co.uk/tracking/");
pub static YUNEXPRESS: Carrier = carrier(
    "yunexpress",
    "YunExpress",
    "https://www.yuntrack.com/parcelTracking?id=",
);
/// An S10 item from a postal operator Waybill has no entry for. Only ever a candidate: it is never
/// assigned to a package, because "some post office" is not a carrier a customer can act on.
pub static UPU_S10: Carrier = Carrier {
    code: "upu_s10",
    name: "International postal item (UPU S10)",
    url_prefix: "https://globaltracktrace.ptc.post/gtt.web/Search.aspx",
    url_takes_number: false,
};

/// Every carrier, in the order [`crate::detect`] reports them.
pub static CARRIERS: [&Carrier; 23] = [
    &UPS,
    &USPS,
    &FEDEX,
    &DHL_EXPRESS,
    &DHL_ECOMMERCE,
    &AMAZON,
    &CANADA_POST,
    &ROYAL_MAIL,
    &DEUTSCHE_POST,
    &LA_POSTE,
    &AUSTRALIA_POST,
    &CANPAR,
    &DPD,
    &GOFO,
    &LANDMARK,
    &LASERSHIP,
    &OLD_DOMINION,
    &ONTRAC,
    &PUROLATOR,
    &SPEE_DEE,
    &YODEL,
    &YUNEXPRESS,
    &UPU_S10,
];

impl Carrier {
    /// False for the generic S10 carrier, which stands for "a postal operator" rather than one
    /// carrier and so is never assigned to a package.
    pub fn is_specific(&self) -> bool {
        self.url_takes_number
    }

    /// This carrier's position in [`CARRIERS`], the order detections are reported in.
    pub(crate) fn rank(&self) -> usize {
        CARRIERS
            .iter()
            .position(|c| c.code == self.code)
            .unwrap_or(CARRIERS.len())
    }
}

/// The carrier with this code (`"ups"`, `"dhl_express"`, …), exactly as spelled in
/// [`Carrier::code`].
pub fn carrier_by_code(code: &str) -> Option<&'static Carrier> {
    CARRIERS.iter().copied().find(|c| c.code == code)
}

/// The postal operator of an S10 item's two-letter country code, if Waybill knows it by name.
pub(crate) fn postal_carrier(country: &[u8; 2]) -> Option<&'static Carrier> {
    Some(match country {
        b"US" => &USPS,
        b"CA" => &CANADA_POST,
        b"GB" => &ROYAL_MAIL,
        b"DE" => &DEUTSCHE_POST,
        b"FR" => &LA_POSTE,
        b"AU" => &AUSTRALIA_POST,
        _ => return None,
    })
}

/// The carrier's public tracking page for this number: the number is canonicalised like
/// [`crate::detect`] does (whitespace and dashes removed, ASCII upper-cased) and then
/// percent-encoded, everything but `A-Z a-z 0-9 - . _ ~` escaped. The generic S10 carrier has no
/// per-item page and gets the UPU's Global Track and Trace search form.
pub fn tracking_url(carrier: &Carrier, tracking_number: &str) -> String {
    if !carrier.url_takes_number {
        return carrier.url_prefix.to_owned();
    }
    let number = crate::canonical_tracking_number(tracking_number);
    let mut url = String::with_capacity(carrier.url_prefix.len() + number.len() * 3);
    url.push_str(carrier.url_prefix);
    percent_encode_into(&number, &mut url);
    url
}

fn percent_encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_found() {
        for (i, c) in CARRIERS.iter().enumerate() {
            assert_eq!(carrier_by_code(c.code), Some(*c));
            assert_eq!(c.rank(), i);
        }
        assert_eq!(carrier_by_code("UPS"), None);
        assert_eq!(carrier_by_code("dhl"), None);
    }

    #[test]
    fn urls_encode_the_number() {
        assert_eq!(
            tracking_url(&UPS, " 1z 5r8-939 "),
            "https://www.ups.com/track?tracknum=1Z5R8939"
        );
        assert_eq!(
            tracking_url(&FEDEX, "a/b?c&d#é"),
            "https://www.fedex.com/fedextrack/?trknbr=A%2FB%3FC%26D%23%C3%A9"
        );
        assert_eq!(
            tracking_url(&UPU_S10, "RB123456785CV"),
            "https://globaltracktrace.ptc.post/gtt.web/Search.aspx"
        );
    }

    #[test]
    fn serialises_code_and_name_only() {
        let json = serde_json::to_string(&DHL_ECOMMERCE).unwrap();
        assert_eq!(json, r#"{"code":"dhl_ecommerce","name":"DHL eCommerce"}"#);
    }
}
