//! Nested request objects read from JSON objects only.
//!
//! A derived `Deserialize` for a struct also takes a JSON array of its fields in order, so
//! `"address": [null, null]` would pass for an address, while the document (and JSON Schema)
//! says an object. [`crate::extract::parse_json`] refuses a non-object body; these do the same
//! for fields, with `#[serde(deserialize_with = "...")]`, keeping the field path in errors.

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

/// An array of objects.
pub fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Item<T>(T);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Item<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            object(deserializer).map(Item)
        }
    }
    Vec::<Item<T>>::deserialize(deserializer).map(|items| items.into_iter().map(|i| i.0).collect())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: Option<u8>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        #[serde(default, deserialize_with = "super::optional_object")]
        maybe: Option<Inner>,
        #[serde(default, deserialize_with = "super::objects")]
        many: Vec<Inner>,
    }

    #[test]
    fn only_objects_pass_for_nested_structs() {
        let ok: Outer =
            serde_json::from_str(r#"{"maybe": {"a": 1}, "many": [{"a": null}]}"#).unwrap();
        assert_eq!(ok.maybe, Some(Inner { a: Some(1) }));
        assert_eq!(ok.many, vec![Inner { a: None }]);
        let none: Outer = serde_json::from_str(r#"{"maybe": null}"#).unwrap();
        assert_eq!(none.maybe, None);
        assert!(serde_json::from_str::<Outer>(r#"{"maybe": [1]}"#).is_err());
        assert!(serde_json::from_str::<Outer>(r#"{"many": [[1]]}"#).is_err());
        assert!(serde_json::from_str::<Outer>(r#"{"many": [null]}"#).is_err());
        // The field path survives for the caller's error message.
        let err = crate::extract::parse_json::<Outer>(br#"{"many": [{"a": "x"}]}"#).unwrap_err();
        assert!(err.message().starts_with("many[0].a"), "{}", err.message());
    }
}
