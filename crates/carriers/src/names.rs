//! Free-text carrier names ("U.P.S.", "fed ex", "FedEx Ground", "Postes Canada") to carriers.
//!
//! The text is folded to lower-case letters and digits (accents dropped, every other character
//! removed), so "U.P.S.", "u p s" and "UPS" read alike. It is recognised when it starts with one
//! of a carrier's names and the rest splits into words of a closed service vocabulary ("ground",
//! "next day air", "priority mail") or repeats the carrier's name ("Canada Post / Postes Canada").
//! Anything else — "UPS Freight", "DHL Paket", "Amazon Fresh" — is not recognised: a wrong
//! canonical name would be worse than the merchant's own words, which are then kept.

use crate::carrier::{
    AMAZON, AUSTRALIA_POST, CANADA_POST, CANPAR, Carrier, DEUTSCHE_POST, DHL_ECOMMERCE,
    DHL_EXPRESS, DPD, FEDEX, GOFO, LA_POSTE, LANDMARK, LASERSHIP, OLD_DOMINION, ONTRAC, PUROLATOR,
    ROYAL_MAIL, SPEE_DEE, UPS, USPS, YODEL, YUNEXPRESS,
};

/// Longer texts are not carrier names.
const MAX_FOLDED_LEN: usize = 80;

enum Brand {
    Carrier(&'static Carrier),
    /// Plain "DHL": Express or eCommerce depending on the words that follow.
    Dhl,
}

/// Carrier names, folded. Matched as a prefix of the folded text.
static BRANDS: &[(&str, Brand)] = &[
    ("ups", Brand::Carrier(&UPS)),
    ("unitedparcelservice", Brand::Carrier(&UPS)),
    ("usps", Brand::Carrier(&USPS)),
    ("uspostalservice", Brand::Carrier(&USPS)),
    ("unitedstatespostalservice", Brand::Carrier(&USPS)),
    ("usmail", Brand::Carrier(&USPS)),
    ("fedex", Brand::Carrier(&FEDEX)),
    ("federalexpress", Brand::Carrier(&FEDEX)),
    ("dhl", Brand::Dhl),
    ("amazon", Brand::Carrier(&AMAZON)),
    ("amazonlogistics", Brand::Carrier(&AMAZON)),
    ("amazoncom", Brand::Carrier(&AMAZON)),
    ("amzl", Brand::Carrier(&AMAZON)),
    ("canadapost", Brand::Carrier(&CANADA_POST)),
    ("postescanada", Brand::Carrier(&CANADA_POST)),
    ("societecanadiennedespostes", Brand::Carrier(&CANADA_POST)),
    ("royalmail", Brand::Carrier(&ROYAL_MAIL)),
    ("deutschepost", Brand::Carrier(&DEUTSCHE_POST)),
    ("laposte", Brand::Carrier(&LA_POSTE)),
    ("australiapost", Brand::Carrier(&AUSTRALIA_POST)),
    ("auspost", Brand::Carrier(&AUSTRALIA_POST)),
    ("canpar", Brand::Carrier(&CANPAR)),
    ("dpd", Brand::Carrier(&DPD)),
    ("gofo", Brand::Carrier(&GOFO)),
    ("landmarkglobal", Brand::Carrier(&LANDMARK)),
    ("lasership", Brand::Carrier(&LASERSHIP)),
    ("olddominion", Brand::Carrier(&OLD_DOMINION)),
    ("olddominionfreightline", Brand::Carrier(&OLD_DOMINION)),
    ("odfl", Brand::Carrier(&OLD_DOMINION)),
    ("ontrac", Brand::Carrier(&ONTRAC)),
    ("purolator", Brand::Carrier(&PUROLATOR)),
    ("speedee", Brand::Carrier(&SPEE_DEE)),
    ("yodel", Brand::Carrier(&YODEL)),
    ("yunexpress", Brand::Carrier(&YUNEXPRESS)),
];

/// Words that may follow a carrier's name: service levels and company suffixes.
static SERVICE_WORDS: &[&str] = &[
    "1",
    "1day",
    "2",
    "24",
    "2day",
    "2nd",
    "3",
    "3day",
    "3rd",
    "48",
    "advantage",
    "air",
    "am",
    "class",
    "co",
    "corp",
    "corporation",
    "day",
    "delivery",
    "domestic",
    "early",
    "economy",
    "expedited",
    "express",
    "first",
    "ground",
    "home",
    "inc",
    "innovations",
    "international",
    "intl",
    "lettermail",
    "llc",
    "logistics",
    "ltd",
    "mail",
    "media",
    "next",
    "one",
    "overnight",
    "package",
    "packet",
    "parcel",
    "parcels",
    "plus",
    "premium",
    "priority",
    "registered",
    "retail",
    "return",
    "returns",
    "saver",
    "second",
    "select",
    "service",
    "services",
    "shipping",
    "signature",
    "smartpost",
    "standard",
    "surepost",
    "three",
    "tracked",
    "tracking",
    "two",
    "us",
    "usa",
    "worldwide",
    "xpresspost",
];

/// Words after "DHL" that keep it DHL Express.
static DHL_EXPRESS_WORDS: &[&str] = &[
    "co",
    "corp",
    "domestic",
    "economy",
    "express",
    "inc",
    "international",
    "intl",
    "llc",
    "ltd",
    "select",
    "service",
    "services",
    "shipping",
    "worldwide",
];

/// Words after "DHL" that name its eCommerce division; one of them must be present.
static DHL_ECOMMERCE_MARKERS: &[&str] = &["ecom", "ecommerce", "globalmail"];

/// Words that may accompany an eCommerce marker.
static DHL_ECOMMERCE_WORDS: &[&str] = &[
    "americas",
    "co",
    "corp",
    "direct",
    "domestic",
    "ecom",
    "ecommerce",
    "expedited",
    "global",
    "globalmail",
    "ground",
    "inc",
    "international",
    "intl",
    "llc",
    "ltd",
    "mail",
    "max",
    "packet",
    "parcel",
    "plus",
    "priority",
    "service",
    "services",
    "shipping",
    "solutions",
    "standard",
    "tracked",
];

/// The canonical carrier of a free-text name, and whether the text named only the DHL family
/// ("DHL" alone, which reads as DHL Express unless the number says eCommerce).
pub(crate) fn recognise(text: &str) -> Option<(&'static Carrier, bool)> {
    let folded = fold(text)?;
    for (alias, brand) in BRANDS {
        let Some(rest) = folded.strip_prefix(alias) else {
            continue;
        };
        let found = match brand {
            Brand::Carrier(carrier) => {
                let words =
                    |w: &str| SERVICE_WORDS.binary_search(&w).is_ok() || is_alias_of(w, carrier);
                segments(rest, words).then_some((*carrier, false))
            }
            Brand::Dhl => dhl(rest),
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn dhl(rest: &str) -> Option<(&'static Carrier, bool)> {
    let words = |list: &'static [&'static str]| move |w: &str| list.binary_search(&w).is_ok();
    if DHL_ECOMMERCE_MARKERS.iter().any(|m| rest.contains(m)) {
        segments(rest, words(DHL_ECOMMERCE_WORDS)).then_some((&DHL_ECOMMERCE, false))
    } else {
        segments(rest, words(DHL_EXPRESS_WORDS)).then_some((&DHL_EXPRESS, rest.is_empty()))
    }
}

fn is_alias_of(word: &str, carrier: &Carrier) -> bool {
    BRANDS.iter().any(|(alias, brand)| {
        *alias == word && matches!(brand, Brand::Carrier(c) if c.code == carrier.code)
    })
}

/// Whether `text` is a concatenation of words accepted by `is_word` (the empty text is).
fn segments(text: &str, is_word: impl Fn(&str) -> bool) -> bool {
    // ends[i]: text[..i] splits into words. Folded text is ASCII, so byte indices are boundaries.
    let mut ends = vec![false; text.len() + 1];
    ends[0] = true;
    for end in 1..=text.len() {
        ends[end] = (0..end).any(|start| ends[start] && is_word(&text[start..end]));
    }
    ends[text.len()]
}

/// Lower-case ASCII letters and digits only; Latin accents folded; `None` when nothing is left,
/// the text is too long, or it has letters no carrier name uses.
fn fold(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if let Some(f) = fold_accent(c) {
            out.push_str(f);
        } else if c.is_alphanumeric() {
            return None;
        }
        if out.len() > MAX_FOLDED_LEN {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

fn fold_accent(c: char) -> Option<&'static str> {
    Some(match c.to_lowercase().next()? {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'ç' => "c",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' => "o",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'ý' | 'ÿ' => "y",
        'ß' => "ss",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists_are_sorted_for_binary_search() {
        for list in [
            SERVICE_WORDS,
            DHL_EXPRESS_WORDS,
            DHL_ECOMMERCE_MARKERS,
            DHL_ECOMMERCE_WORDS,
        ] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
    }

    #[test]
    fn folding() {
        assert_eq!(fold(" U.P.S. ").as_deref(), Some("ups"));
        assert_eq!(
            fold("Société canadienne des postes").as_deref(),
            Some("societecanadiennedespostes")
        );
        assert_eq!(fold("--"), None);
        assert_eq!(fold("Почта России"), None);
    }

    #[test]
    fn segmentation() {
        let words = |w: &str| SERVICE_WORDS.binary_search(&w).is_ok();
        assert!(segments("", words));
        assert!(segments("nextdayairsaver", words));
        assert!(!segments("freight", words));
        assert!(!segments("groundx", words));
    }

    #[test]
    fn plain_dhl_is_the_family() {
        assert_eq!(
            recognise("DHL").map(|(c, f)| (c.code, f)),
            Some(("dhl_express", true))
        );
        assert_eq!(
            recognise("DHL Express").map(|(c, f)| (c.code, f)),
            Some(("dhl_express", false))
        );
    }
}
