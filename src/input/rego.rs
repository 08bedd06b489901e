//! The one conversion to Rego values: a `serde` serializer whose output is a
//! [`regorus::Value`], so that anything serde can write as JSON (the input document's typed
//! parts, a JSON value, a policy's parameters) becomes the Rego value of that JSON in one walk,
//! with no JSON value built in between.
//!
//! It writes what `serde_json::to_value` would write, then reads as Rego: map keys are strings
//! (numbers and booleans as their text, as serde_json does), a non-finite float is `null`,
//! bytes are an array of numbers, an enum's unit variant is its name and any other variant is
//! a one-key object.
//!
//! Empty objects and arrays are one shared value each: a managed-fields tree is mostly `{}`,
//! and a shared value costs a reference count where a new one costs an allocation.
//!
//! And back: [`to_json`], what a policy's result becomes when gitgate reads it, which never
//! fails (a Rego number can be larger than any JSON number serde_json holds).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regorus::Value;
use serde::ser::{self, Serialize};

/// Why a value could not be written as a Rego value: only what JSON cannot hold either.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ToRegoError(String);

impl ser::Error for ToRegoError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ToRegoError(msg.to_string())
    }
}

/// `value` as the Rego value of its JSON.
pub fn to_rego<T: Serialize + ?Sized>(value: &T) -> Result<Value, ToRegoError> {
    value.serialize(Serializer)
}

static EMPTY_OBJECT: LazyLock<Value> = LazyLock::new(|| Value::from(BTreeMap::new()));
static EMPTY_ARRAY: LazyLock<Value> = LazyLock::new(|| Value::from(Vec::<Value>::new()));

fn object(map: BTreeMap<Value, Value>) -> Value {
    if map.is_empty() {
        EMPTY_OBJECT.clone()
    } else {
        Value::from(map)
    }
}

fn array(items: Vec<Value>) -> Value {
    if items.is_empty() {
        EMPTY_ARRAY.clone()
    } else {
        Value::from(items)
    }
}

fn float(f: f64) -> Value {
    if f.is_finite() {
        Value::from(f)
    } else {
        Value::Null
    }
}

fn variant_of(variant: &str, value: Value) -> Value {
    let mut map = BTreeMap::new();
    map.insert(Value::from(variant), value);
    Value::from(map)
}

/// A Rego value as JSON, as regorus writes it (a set is its sorted array, a key that is not
/// a string is its JSON text), except that it never fails: a number beyond what serde_json
/// holds (a policy's `units.parse_bytes` of a 400-digit quantity) is written as a string of
/// its decimal digits, and only the part that holds it differs. A reader that dropped the
/// whole value there would drop what a policy reported with it.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    if let Ok(json) = serde_json::to_value(value) {
        return json;
    }
    match value {
        Value::Number(n) => Json::String(n.format_decimal()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Set(items) => Json::Array(items.iter_sorted().map(to_json).collect()),
        Value::Object(fields) => Json::Object(
            fields
                .iter_sorted()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.to_string(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        // What regorus writes for these cannot fail; for completeness.
        Value::Undefined => Json::String("<undefined>".into()),
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.to_string()),
    }
}

/// The serializer (see the module's documentation).
pub struct Serializer;

impl ser::Serializer for Serializer {
    type Ok = Value;
    type Error = ToRegoError;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Seq;
    type SerializeMap = Map;
    type SerializeStruct = Map;
    type SerializeStructVariant = Map;

    fn serialize_bool(self, v: bool) -> Result<Value, ToRegoError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ToRegoError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ToRegoError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ToRegoError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ToRegoError> {
        Ok(Value::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ToRegoError> {
        i64::try_from(v)
            .map(Value::from)
            .or_else(|_| u64::try_from(v).map(Value::from))
            .map_err(|_| ToRegoError(format!("the number {v} is out of range")))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ToRegoError> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ToRegoError> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ToRegoError> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ToRegoError> {
        // As serde_json reads a number: an i64 when it fits (the same Rego number either way).
        Ok(i64::try_from(v).map_or_else(|_| Value::from(v), Value::from))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ToRegoError> {
        u64::try_from(v)
            .map(Value::from)
            .map_err(|_| ToRegoError(format!("the number {v} is out of range")))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ToRegoError> {
        Ok(float(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ToRegoError> {
        Ok(float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ToRegoError> {
        Ok(Value::from(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ToRegoError> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ToRegoError> {
        Ok(array(
            v.iter().map(|b| Value::from(u64::from(*b))).collect(),
        ))
    }
    fn serialize_none(self) -> Result<Value, ToRegoError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ToRegoError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ToRegoError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, ToRegoError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, ToRegoError> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value, ToRegoError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ToRegoError> {
        Ok(variant_of(variant, value.serialize(self)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, ToRegoError> {
        Ok(Seq {
            items: Vec::with_capacity(len.unwrap_or(0)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, ToRegoError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq, ToRegoError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Seq, ToRegoError> {
        Ok(Seq {
            items: Vec::with_capacity(len),
            variant: Some(variant),
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Map, ToRegoError> {
        Ok(Map {
            map: BTreeMap::new(),
            key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Map, ToRegoError> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Map, ToRegoError> {
        Ok(Map {
            map: BTreeMap::new(),
            key: None,
            variant: Some(variant),
        })
    }
}

/// An array (or a tuple variant's, inside its one-key object).
pub struct Seq {
    items: Vec<Value>,
    variant: Option<&'static str>,
}

impl Seq {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ToRegoError> {
        self.items.push(value.serialize(Serializer)?);
        Ok(())
    }
    fn finish(self) -> Value {
        let value = array(self.items);
        match self.variant {
            Some(variant) => variant_of(variant, value),
            None => value,
        }
    }
}

/// The four sequence traits of serde, one body: an element or field is pushed, the end is the
/// array.
macro_rules! sequence {
    ($($trait:ident :: $method:ident),+) => {$(
        impl ser::$trait for Seq {
            type Ok = Value;
            type Error = ToRegoError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ToRegoError> {
                self.push(value)
            }
            fn end(self) -> Result<Value, ToRegoError> {
                Ok(self.finish())
            }
        }
    )+};
}

sequence!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// An object (or a struct variant's, inside its one-key object). A key given twice keeps
/// its last value, as serde_json's map does.
pub struct Map {
    map: BTreeMap<Value, Value>,
    key: Option<Value>,
    variant: Option<&'static str>,
}

impl Map {
    fn finish(self) -> Value {
        let value = object(self.map);
        match self.variant {
            Some(variant) => variant_of(variant, value),
            None => value,
        }
    }
}

impl ser::SerializeMap for Map {
    type Ok = Value;
    type Error = ToRegoError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ToRegoError> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ToRegoError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ToRegoError("a map value came without its key".into()))?;
        self.map.insert(key, value.serialize(Serializer)?);
        Ok(())
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), ToRegoError> {
        let key = key.serialize(KeySerializer)?;
        self.map.insert(key, value.serialize(Serializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ToRegoError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for Map {
    type Ok = Value;
    type Error = ToRegoError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ToRegoError> {
        self.map
            .insert(Value::from(key), value.serialize(Serializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ToRegoError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for Map {
    type Ok = Value;
    type Error = ToRegoError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ToRegoError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<Value, ToRegoError> {
        Ok(self.finish())
    }
}

/// A map key: a string, or a number, boolean or character written as its text (serde_json's
/// rule).
struct KeySerializer;

fn key_error() -> ToRegoError {
    ToRegoError("a map key must be a string, a finite number or a boolean".into())
}

/// Key methods that write a scalar as its text.
macro_rules! key_as_text {
    ($($method:ident: $t:ty),+) => {$(
        fn $method(self, v: $t) -> Result<Value, ToRegoError> {
            Ok(Value::from(v.to_string()))
        }
    )+};
}

impl ser::Serializer for KeySerializer {
    type Ok = Value;
    type Error = ToRegoError;
    type SerializeSeq = ser::Impossible<Value, ToRegoError>;
    type SerializeTuple = ser::Impossible<Value, ToRegoError>;
    type SerializeTupleStruct = ser::Impossible<Value, ToRegoError>;
    type SerializeTupleVariant = ser::Impossible<Value, ToRegoError>;
    type SerializeMap = ser::Impossible<Value, ToRegoError>;
    type SerializeStruct = ser::Impossible<Value, ToRegoError>;
    type SerializeStructVariant = ser::Impossible<Value, ToRegoError>;

    fn serialize_str(self, v: &str) -> Result<Value, ToRegoError> {
        Ok(Value::from(v))
    }
    key_as_text!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128
    );
    fn serialize_f32(self, v: f32) -> Result<Value, ToRegoError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ToRegoError> {
        // serde_json writes a finite float key as its JSON text.
        if v.is_finite() {
            serde_json::to_string(&v)
                .map(Value::from)
                .map_err(|e| ToRegoError(e.to_string()))
        } else {
            Err(key_error())
        }
    }
    fn serialize_char(self, v: char) -> Result<Value, ToRegoError> {
        Ok(Value::from(v.to_string()))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Value, ToRegoError> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<Value, ToRegoError> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ToRegoError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ToRegoError> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, ToRegoError> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, ToRegoError> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value, ToRegoError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Value, ToRegoError> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, ToRegoError> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, ToRegoError> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, ToRegoError> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ToRegoError> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, ToRegoError> {
        Err(key_error())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, ToRegoError> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, ToRegoError> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde_json::json;

    /// What serde_json writes, read as Rego the long way (JSON text parsed by regorus).
    fn through_json<T: Serialize>(value: &T) -> Value {
        let text = serde_json::to_string(value).unwrap();
        Value::from_json_str(&text).unwrap()
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Typed {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        absent: Option<u8>,
        present: Option<u8>,
        kind: Kind,
        shapes: Vec<Shape>,
        by_number: BTreeMap<u32, bool>,
        by_flag: BTreeMap<bool, i8>,
        pair: (i32, f64),
        nan: f64,
        letter: char,
        nothing: (),
    }

    #[derive(Serialize)]
    enum Kind {
        Plain,
    }

    #[derive(Serialize)]
    enum Shape {
        Circle(f64),
        Rect { w: u16, h: u16 },
        Line(i8, i8),
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let typed = Typed {
            name: "web".into(),
            absent: None,
            present: None,
            kind: Kind::Plain,
            shapes: vec![
                Shape::Circle(1.5),
                Shape::Rect { w: 2, h: 3 },
                Shape::Line(-1, 1),
            ],
            by_number: BTreeMap::from([(7, true), (10, false)]),
            by_flag: BTreeMap::from([(true, 1)]),
            pair: (-3, 0.25),
            nan: f64::NAN,
            letter: 'x',
            nothing: (),
        };
        assert_eq!(to_rego(&typed).unwrap(), through_json(&typed));
        let json = json!({"a": [], "b": {}, "c": [{}, [[]], null, true, -1, 18446744073709551615u64,
            1.0e300, "s", {"d": {"e": []}}], "": 0});
        assert_eq!(to_rego(&json).unwrap(), through_json(&json));
    }

    /// A map keyed by floats (serde_json writes a finite one as its text).
    struct FloatKeys(Vec<(f64, i32)>);

    impl Serialize for FloatKeys {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeMap;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }

    #[test]
    fn float_and_optional_keys_are_written_as_serde_json_writes_them() {
        let floats = FloatKeys(vec![(1.5, 1), (-2.0, 2), (1e300, 3)]);
        assert_eq!(to_rego(&floats).unwrap(), through_json(&floats));
        let optional = BTreeMap::from([(Some("k"), 1)]);
        assert_eq!(to_rego(&optional).unwrap(), through_json(&optional));
        let err = to_rego(&FloatKeys(vec![(f64::NAN, 1)])).unwrap_err();
        assert!(err.to_string().contains("map key"), "{err}");
    }

    #[test]
    fn a_key_json_cannot_write_is_an_error() {
        let map = BTreeMap::from([(vec![1u8], 1)]);
        let err = to_rego(&map).unwrap_err();
        assert!(err.to_string().contains("map key"), "{err}");
    }

    #[test]
    fn a_number_json_cannot_hold_is_its_digits_and_the_rest_is_kept() {
        let digits = "9".repeat(400);
        let mut engine = regorus::Engine::new();
        let query = format!(
            "x := {{\"n\": units.parse_bytes(\"{digits}\"), \"s\": {{2, 1}}, \"k\": {{[1]: \"a\"}}}}"
        );
        let x = engine.eval_query(query, false).unwrap().result[0].bindings["x"].clone();
        assert!(
            serde_json::to_value(&x).is_err(),
            "regorus's own writing fails"
        );
        assert_eq!(
            to_json(&x),
            json!({"n": digits, "s": [1, 2], "k": {"[1]": "a"}})
        );
        let fine = to_rego(&json!({"a": [1, "b", null]})).unwrap();
        assert_eq!(to_json(&fine), json!({"a": [1, "b", null]}));
    }

    #[test]
    fn shared_empty_values_are_still_values_apart() {
        let mut a = to_rego(&json!({})).unwrap();
        let b = to_rego(&json!({})).unwrap();
        a.as_object_mut()
            .unwrap()
            .insert(Value::from("k"), Value::Null);
        assert_eq!(
            b,
            Value::from(BTreeMap::new()),
            "a change to one is not seen in another"
        );
        assert_eq!(to_rego(&json!({})).unwrap(), b);
    }
}
