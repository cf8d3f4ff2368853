//! JSON objects that keep their key order, as Ruby hashes do: what `secrets fetch` prints and
//! `secrets extract` searches ("the first key ending in /NAME") depend on it.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::Secret;

/// A JSON object read with its keys in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderedObject(pub Vec<(String, Value)>);

impl OrderedObject {
    /// Parses `text` as a JSON object, keeping key order. Later duplicate keys replace earlier
    /// ones in place, as Ruby's `JSON.parse` does.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = OrderedObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut entries: Vec<(String, Value)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
                        slot.1 = value;
                    } else {
                        entries.push((key, value));
                    }
                }
                Ok(OrderedObject(entries))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Secrets fetched from a vault: names in the order the vault returned them, values secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretMap(Vec<(String, Secret<Value>)>);

impl SecretMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`, keeping its first position if it is already present (Ruby `Hash#[]=`).
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = Secret::new(value);
        } else {
            self.0.push((key, Secret::new(value)));
        }
    }

    /// `Hash#merge!`.
    pub fn merge(&mut self, other: SecretMap) {
        for (key, value) in other.0 {
            self.insert(key, value.into_inner());
        }
    }

    pub fn get(&self, key: &str) -> Option<&Secret<Value>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Secret<Value>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The compact JSON object Kamal's `JSON.dump` prints, in insertion order. The result holds
    /// every secret value in clear text: it is for stdout of `secrets fetch` only.
    pub fn to_json(&self) -> Secret<String> {
        let mut out = String::from("{");
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&Value::String(key.clone()).to_string());
            out.push(':');
            out.push_str(&value.expose().to_string());
        }
        out.push('}');
        Secret::new(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_replaces_duplicates_in_place() {
        let object = OrderedObject::parse(r#"{"b":1,"a":"x","b":2}"#).unwrap();
        assert_eq!(
            object.0,
            vec![
                ("b".to_owned(), Value::from(2)),
                ("a".to_owned(), Value::from("x"))
            ]
        );
        assert!(OrderedObject::parse("[1]").is_err());
    }

    #[test]
    fn dumps_compact_json_in_order() {
        let mut map = SecretMap::new();
        map.insert("z", Value::from("1\"\n"));
        map.insert("a", Value::from(2));
        map.insert("z", Value::from("3"));
        assert_eq!(map.to_json().expose(), r#"{"z":"3","a":2}"#);
        assert_eq!(
            format!("{map:?}"),
            r#"SecretMap([("z", [REDACTED]), ("a", [REDACTED])])"#
        );
    }
}
