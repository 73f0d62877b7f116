//! Schema pieces for rules the OrderProtection and inbound documents state (the shared text
//! rules are in [`super::common`]).

use super::common::WHITESPACE;

/// A regular expression taking any of `names` in any ASCII letter case, with surrounding white
/// space (what `str::trim` removes) and nothing else: what `eq_ignore_ascii_case` on a trimmed
/// value accepts. ECMA-262 has no inline case-insensitivity flag, so each letter is a class
/// (`[Dd][Ee]…`).
pub fn case_insensitive_pattern<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let alternatives: Vec<String> = names
        .into_iter()
        .map(|name| {
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else if c.is_ascii_alphanumeric() || c == '_' {
                        c.to_string()
                    } else {
                        format!("\\{c}")
                    }
                })
                .collect()
        })
        .collect();
    format!(
        "^[{WHITESPACE}]*(?:{})[{WHITESPACE}]*$",
        alternatives.join("|")
    )
}

/// An integer that `serde_json` reads as one (`i64` or `u64`; larger ones become floats).
pub fn json_integer_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(i64::MIN))
        .maximum(Some(u64::MAX))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_patterns_spell_every_letter_both_ways() {
        assert_eq!(
            case_insensitive_pattern(["IN_TRANSIT", "A.1"]),
            format!(
                "^[{WHITESPACE}]*(?:[Ii][Nn]_[Tt][Rr][Aa][Nn][Ss][Ii][Tt]|[Aa]\\.1)[{WHITESPACE}]*$"
            )
        );
    }
}
