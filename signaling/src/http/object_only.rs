//! Request bodies that are JSON objects and nothing else.
//!
//! serde's derived `Deserialize` for a struct accepts a JSON *array* as well as an object
//! (`[null, null]` fills the fields in order), so without help a body such as
//! `{"legs": [[null, null]]}` passes for `{"legs": [{}]}`. OpenAPI schemas say `object`, so
//! every request type of the REST API reads objects only:
//!
//! ```ignore
//! #[derive(Deserialize, ToSchema)]
//! #[serde(remote = "Self", deny_unknown_fields)]
//! pub struct Body { /* fields */ }
//! supernode_signaling::deserialize_object_only!(Body, "a body object");
//! ```
//!
//! `remote = "Self"` makes the derive an inherent `Body::deserialize` (the field logic, with
//! `deny_unknown_fields`); the macro writes the trait impl, which asks the deserializer for a
//! map only (an array or scalar is `invalid type: …, expected a body object`) and hands the
//! map to the derived logic. Nested request types do the same, so the rule holds at every
//! depth.

/// Implements `serde::Deserialize` for `$ty` (which derives `Deserialize` with
/// `#[serde(remote = "Self")]`) so that only a JSON object is accepted; `$expecting` names
/// it in the error (`expected $expecting`). See [the module docs](crate::http::object_only).
#[macro_export]
macro_rules! deserialize_object_only {
    ($ty:ty, $expecting:literal) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                struct ObjectOnly;
                impl<'de> ::serde::de::Visitor<'de> for ObjectOnly {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> ::std::result::Result<$ty, A::Error> {
                        <$ty>::deserialize(::serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                d.deserialize_map(ObjectOnly)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields)]
    struct Inner {
        a: Option<u8>,
    }
    crate::deserialize_object_only!(Inner, "an inner object");

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields)]
    struct Outer {
        items: Vec<Inner>,
        one: Option<Inner>,
    }
    crate::deserialize_object_only!(Outer, "an outer object");

    fn parse(s: &str) -> Result<Outer, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }

    #[test]
    fn objects_are_read_at_every_depth() {
        let o = parse(r#"{"items": [{}, {"a": 3}], "one": {"a": null}}"#).unwrap();
        assert_eq!(o.items, vec![Inner { a: None }, Inner { a: Some(3) }]);
        assert_eq!(o.one, Some(Inner { a: None }));
        // Through `serde_json::Value` too (what the API's extractor does).
        let v: serde_json::Value = serde_json::from_str(r#"{"items": [{"a": 1}]}"#).unwrap();
        assert_eq!(serde_json::from_value::<Outer>(v).unwrap().items.len(), 1);
    }

    #[test]
    fn arrays_and_scalars_are_not_objects() {
        for (body, expected) in [
            (r#"{"items": [[null]]}"#, "expected an inner object"),
            (r#"{"items": [], "one": [7]}"#, "expected an inner object"),
            (r#"{"items": [3]}"#, "expected an inner object"),
            (r#"[[]]"#, "expected an outer object"),
            (r#"[[], null]"#, "expected an outer object"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.contains(expected), "{body}: {e}");
        }
        let v: serde_json::Value = serde_json::from_str(r#"{"items": [[null]]}"#).unwrap();
        assert!(serde_json::from_value::<Outer>(v).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = parse(r#"{"items": [{"b": 1}]}"#).unwrap_err();
        assert!(e.contains("unknown field `b`"), "{e}");
        let e = parse(r#"{"items": [], "extra": true}"#).unwrap_err();
        assert!(e.contains("unknown field `extra`"), "{e}");
    }
}
