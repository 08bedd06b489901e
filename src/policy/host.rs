//! Host functions: built-ins that OPA has and regorus lacks or limits, registered on every
//! compiled program as regorus extensions (which it looks up before its own built-ins).
//!
//! - **`regex.match` without regorus's 100 KiB program limit**: regorus refuses to compile a
//!   pattern whose automaton is over 100 KiB, and the call is then undefined (a test fails,
//!   a `deny` never fires). Go's RE2 has no such limit; a Unicode class under a counted
//!   repetition (`^[\w.-]{1,253}$`) passes it easily. Here the limit is the `regex` crate's own
//!   default (10 MiB). A pattern that is still too large (that class repeated 253 times is
//!   tens of megabytes of UTF-8 automaton) is matched against ASCII text with ASCII classes,
//!   which for an ASCII haystack is the same match; against other text it stays undefined.
//!   Compiled patterns are kept in a small cache, as regorus does.
//! - **`regex.is_valid`** by the same limits, so that a pattern `regex.match` takes is valid.
//! - **`object.subset`** as OPA has it: regorus panics on an empty array as the subset (a
//!   library helper that walks to a path `[]` loses the test); an empty array is a subset of
//!   every array, as in OPA.
//! - **`all` and `any`**, OPA's deprecated built-ins over a collection of booleans, which v0
//!   policies still call and regorus does not have.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use regorus::Value;

/// The compiled-program limit of one pattern (the `regex` crate's default).
const REGEX_SIZE_LIMIT: usize = 10 * 1024 * 1024;
/// Patterns kept compiled; the cache is emptied when it is full.
const CACHE_ENTRIES: usize = 512;

/// A compiled pattern: with Unicode classes, or, when that is over the limit, with ASCII
/// classes over bytes (for ASCII text only), or neither (an invalid pattern).
#[derive(Clone)]
enum Compiled {
    Unicode(Regex),
    Ascii(regex::bytes::Regex),
    Invalid,
}

static CACHE: LazyLock<Mutex<HashMap<String, Compiled>>> = LazyLock::new(Default::default);

/// The host functions and their number of arguments (the linter knows them by this list).
pub const FUNCTIONS: &[(&str, u8)] = &[
    ("regex.match", 2),
    ("regex.is_valid", 1),
    ("all", 1),
    ("any", 1),
    ("object.subset", 2),
];

/// Registers the host functions on `engine`.
pub fn register(engine: &mut regorus::Engine) -> anyhow::Result<()> {
    engine.add_extension("regex.match".to_string(), 2, Box::new(regex_match))?;
    engine.add_extension("regex.is_valid".to_string(), 1, Box::new(regex_is_valid))?;
    engine.add_extension("object.subset".to_string(), 2, Box::new(object_subset))?;
    engine.add_extension(
        "all".to_string(),
        1,
        Box::new(|a: Vec<Value>| every(a, true)),
    )?;
    engine.add_extension(
        "any".to_string(),
        1,
        Box::new(|a: Vec<Value>| every(a, false)),
    )?;
    Ok(())
}

/// `all(c)` (`want_all`) or `any(c)` over an array or set of booleans; undefined otherwise.
fn every(args: Vec<Value>, want_all: bool) -> anyhow::Result<Value> {
    let items: Vec<&Value> = match args.first() {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Set(s)) => s.iter().collect(),
        _ => return Ok(Value::Undefined),
    };
    let t = Value::Bool(true);
    Ok(Value::Bool(if want_all {
        items.iter().all(|v| **v == t)
    } else {
        items.iter().any(|v| **v == t)
    }))
}

/// `object.subset(super, sub)`: objects key by key (recursively), sets by members, an array
/// as a contiguous run of another (the empty array is one of every array), an array and a set
/// by the array's members; undefined (OPA's type error) unless both are collections.
fn object_subset(args: Vec<Value>) -> anyhow::Result<Value> {
    let collection = |v: &Value| matches!(v, Value::Object(_) | Value::Set(_) | Value::Array(_));
    match (args.first(), args.get(1)) {
        (Some(sup), Some(sub)) if collection(sup) && collection(sub) => {
            Ok(Value::Bool(is_subset(sup, sub)))
        }
        _ => Ok(Value::Undefined),
    }
}

fn is_subset(sup: &Value, sub: &Value) -> bool {
    match (sup, sub) {
        (Value::Object(sup), Value::Object(sub)) => sub
            .iter()
            .all(|(k, v)| sup.get(k).is_some_and(|s| is_subset(s, v))),
        (Value::Set(sup), Value::Set(sub)) => sub.iter().all(|v| sup.contains(v)),
        (Value::Array(sup), Value::Array(sub)) => {
            let (sup, sub) = (sup.as_slice(), sub.as_slice());
            sub.is_empty() || sup.windows(sub.len()).any(|w| w == sub)
        }
        (Value::Array(sup), Value::Set(sub)) => sub.iter().all(|v| sup.as_slice().contains(v)),
        (sup, sub) => sup == sub,
    }
}

fn compiled(pattern: &str) -> Compiled {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(re) = cache.get(pattern) {
        return re.clone();
    }
    let re = match regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
    {
        Ok(re) => Compiled::Unicode(re),
        Err(regex::Error::CompiledTooBig(_)) => regex::bytes::RegexBuilder::new(pattern)
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_or(Compiled::Invalid, Compiled::Ascii),
        Err(_) => Compiled::Invalid,
    };
    if cache.len() >= CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert(pattern.to_string(), re.clone());
    re
}

/// `regex.match(pattern, value)`: undefined (OPA's non-strict built-in error) when an argument
/// is not a string or the pattern does not compile.
fn regex_match(args: Vec<Value>) -> anyhow::Result<Value> {
    let (Some(Value::String(pattern)), Some(Value::String(value))) = (args.first(), args.get(1))
    else {
        return Ok(Value::Undefined);
    };
    Ok(match compiled(pattern) {
        Compiled::Unicode(re) => Value::Bool(re.is_match(value)),
        Compiled::Ascii(re) if value.is_ascii() => Value::Bool(re.is_match(value.as_bytes())),
        Compiled::Ascii(_) | Compiled::Invalid => Value::Undefined,
    })
}

/// `regex.is_valid(pattern)`, by the same limits as `regex.match` (a pattern it matches with
/// is valid); `false` for anything else, as OPA.
fn regex_is_valid(args: Vec<Value>) -> anyhow::Result<Value> {
    Ok(Value::Bool(match args.first() {
        Some(Value::String(pattern)) => !matches!(compiled(pattern), Compiled::Invalid),
        _ => false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_subset_as_opa() {
        let v = |s: &str| Value::from_json_str(s).unwrap();
        let subset = |a: &str, b: &str| object_subset(vec![v(a), v(b)]).unwrap();
        assert_eq!(subset("[1, 2]", "[]"), Value::Bool(true), "the empty array");
        assert_eq!(subset("[]", "[]"), Value::Bool(true));
        assert_eq!(subset("[1, 2, 3]", "[2, 3]"), Value::Bool(true));
        assert_eq!(subset("[1, 2, 3]", "[1, 3]"), Value::Bool(false));
        assert_eq!(subset("[1]", "[1, 2]"), Value::Bool(false));
        assert_eq!(
            subset(r#"{"a": {"b": 1, "c": 2}}"#, r#"{"a": {"b": 1}}"#),
            Value::Bool(true)
        );
        assert_eq!(subset(r#"{"a": 1}"#, r#"{"a": 2}"#), Value::Bool(false));
        assert_eq!(subset("[1, 2]", "1"), Value::Undefined, "not a collection");
    }

    #[test]
    fn all_and_any() {
        let arr = |v: Vec<bool>| {
            vec![Value::from(
                v.into_iter().map(Value::from).collect::<Vec<Value>>(),
            )]
        };
        assert_eq!(
            every(arr(vec![true, true]), true).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            every(arr(vec![true, false]), true).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(every(arr(vec![]), true).unwrap(), Value::Bool(true));
        assert_eq!(
            every(arr(vec![false, true]), false).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(every(arr(vec![]), false).unwrap(), Value::Bool(false));
        assert_eq!(
            every(vec![Value::from(1)], false).unwrap(),
            Value::Undefined
        );
    }

    #[test]
    fn large_patterns_match() {
        let m = |p: &str, v: &str| regex_match(vec![Value::from(p), Value::from(v)]).unwrap();
        assert_eq!(m(r"^[\w.-]{1,253}$", "a.b-c"), Value::Bool(true));
        assert_eq!(m(r"^[\w.-]{1,253}$", "a b"), Value::Bool(false));
        assert_eq!(m(r"(", "a"), Value::Undefined);
        let valid = |p: &str| regex_is_valid(vec![Value::from(p)]).unwrap();
        assert_eq!(valid(r"^[\w.-]{1,253}$"), Value::Bool(true));
        assert_eq!(valid(r"("), Value::Bool(false));
        assert_eq!(
            regex_match(vec![Value::from(1), Value::from("a")]).unwrap(),
            Value::Undefined
        );
    }
}
