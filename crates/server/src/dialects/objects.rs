//! An internally tagged enum read from a JSON object only.
//!
//! [`crate::strict`] makes every derived struct refuse a JSON array of its fields, but serde
//! buffers an internally tagged enum (`#[serde(tag = "type")]`) and reads its variant from that
//! buffer, out of the adapter's reach, so `["email", "subject", "body"]` would still pass for
//! an email action. [`object`] on such a field (`#[serde(deserialize_with = "...")]`) requires
//! an object first, keeping the field path in errors.

use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }
}

/// An object, or `null` (`None`).
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_any(ObjectVisitor(PhantomData))
}

/// An object (not `null`).
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    optional_object(deserializer)?
        .ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &"an object"))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Action {
        Email { subject: String },
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        #[serde(deserialize_with = "super::object")]
        action: Action,
    }

    #[test]
    fn a_tagged_enum_is_read_from_an_object_only() {
        let ok: Outer =
            crate::extract::parse_json(br#"{"action": {"type": "email", "subject": "s"}}"#)
                .unwrap();
        assert_eq!(
            ok.action,
            Action::Email {
                subject: "s".into()
            }
        );
        // Without `object`, serde reads this array as the email action.
        let err =
            crate::extract::parse_json::<Outer>(br#"{"action": ["email", "s"]}"#).unwrap_err();
        assert!(
            err.message().starts_with("action must be an object"),
            "{}",
            err.message()
        );
        let err = crate::extract::parse_json::<Outer>(br#"{"action": null}"#).unwrap_err();
        assert!(
            err.message().starts_with("action must be an object"),
            "{}",
            err.message()
        );
    }
}
