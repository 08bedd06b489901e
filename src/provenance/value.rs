//! Equality of JSON values as the API server means it, and the hash keys that let the match
//! find list items in constant time. A leaf of `provenance`: it knows nothing of paths or kinds
//! (quantities, which depend on the path, are compared by the walker).

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Equality of two JSON values as the API server means it: numbers by value (`2` = `2.0`),
/// everything else structurally (object keys in any order).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// Numbers by value: `2` = `2.0`, and no float rounding between two integers.
pub fn same_number(x: &Number, y: &Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Whether a value is the number zero.
pub fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

/// A text that two values share exactly when [`same_value`] holds between them: the key of a
/// hash map of list items. Numbers are written by value (`2` and `2.0` give `2`), object keys
/// sorted, strings quoted, so that no two different values meet.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Appends [`canonical`] of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push('n'),
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Number(n) => write_number(n, out),
        // Quoted and escaped: `a","b` does not meet `a`, `b`.
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
    }
}

/// A string in quotes, with `"`, `\\` and control characters escaped.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(n: &Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            let _ = write!(out, "{}", f as i64);
        } else {
            let _ = write!(out, "{f:e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_agrees_with_same_value() {
        let pairs = [
            (json!(2), json!(2.0), true),
            (
                json!({"a": 1, "b": [1, "x"]}),
                json!({"b": [1.0, "x"], "a": 1}),
                true,
            ),
            (json!("1"), json!(1), false),
            (json!(["a,b"]), json!(["a", "b"]), false),
            (json!({"a": null}), json!({}), false),
            (json!(0.5), json!(0.5), true),
            (json!(u64::MAX), json!(u64::MAX), true),
        ];
        for (a, b, same) in pairs {
            assert_eq!(same_value(&a, &b), same, "{a} {b}");
            assert_eq!(canonical(&a) == canonical(&b), same, "{a} {b}");
        }
    }
}
