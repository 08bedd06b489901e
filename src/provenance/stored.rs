//! A version's manifest as the index keeps it ([`super::index`]): parsed while the newest
//! approved commit holds it (what nearly every decision reads), compact once it is only an
//! older version of the window (its JSON, LZ4-compressed), and parsed again when a decision
//! reads it.
//!
//! Why: a parsed `serde_json::Value` costs many times its text (a node, a map entry and a
//! string allocation for each field), and a CustomResourceDefinition of 0.8 MB whose text
//! changes in 40 commits of a window is 40 distinct versions. Their compact forms are a few
//! times smaller than their text, and one is parsed back in milliseconds.
//!
//! The compact form round-trips exactly, so the parsed-again manifest equals the one the
//! index read from Git and the match is as strict on an older version as on the newest:
//! `serde_json` keeps the key order (`preserve_order`) and reads integers and strings back
//! as it wrote them. A floating-point number might come back one unit in the last place off
//! (serde_json's fast float reader; its exact one, `float_roundtrip`, would rebuild every
//! crate that uses serde_json), so a manifest holding one (rare in Kubernetes manifests) is
//! kept parsed; so is one nested deeper than serde_json reads back ([`READ_BACK_DEPTH`]),
//! which a rendered object could be.
//!
//! A manifest parsed again is shared while anything holds it (a weak reference in its
//! compact form), and the few parsed last are held ([`RECENT`]), so that the requests of a
//! rollout against the same older version parse it once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use serde_json::Value;

/// Nesting below serde_json's recursion limit (128), so that a compact form always reads back.
const READ_BACK_DEPTH: usize = 100;

/// How many manifests parsed again from their compact form are kept parsed.
const RECENT: usize = 4;

static RECENTLY_PARSED: Mutex<VecDeque<Arc<Value>>> = Mutex::new(VecDeque::new());

/// A version's manifest: parsed, or compact.
#[derive(Debug, Clone)]
pub struct Stored(Form);

#[derive(Debug, Clone)]
enum Form {
    Parsed(Arc<Value>),
    Compact(Arc<Compact>),
}

#[derive(Debug)]
struct Compact {
    /// LZ4 of the manifest's JSON, its length first.
    bytes: Box<[u8]>,
    /// The manifest parsed again, while something holds it.
    parsed: Mutex<Weak<Value>>,
}

impl Stored {
    /// A parsed manifest.
    pub fn parsed(value: Arc<Value>) -> Stored {
        Stored(Form::Parsed(value))
    }

    /// Whether it is held parsed.
    pub fn is_parsed(&self) -> bool {
        matches!(self.0, Form::Parsed(_))
    }

    /// The manifest, parsed (again, when it is compact and nothing holds it parsed).
    pub fn get(&self) -> Arc<Value> {
        match &self.0 {
            Form::Parsed(value) => value.clone(),
            Form::Compact(compact) => compact.get(),
        }
    }

    /// Whether it is `value` (the same allocation, or an equal manifest).
    pub fn is(&self, value: &Arc<Value>) -> bool {
        match &self.0 {
            Form::Parsed(v) => Arc::ptr_eq(v, value) || **v == **value,
            Form::Compact(compact) => *compact.get() == **value,
        }
    }

    /// Keeps it compact from now on.
    pub fn compact(&mut self) {
        if let Form::Parsed(value) = &self.0
            && !keep_parsed(value, 0)
        {
            let json = serde_json::to_vec(&**value).expect("a JSON value is written as JSON");
            self.0 = Form::Compact(Arc::new(Compact {
                bytes: lz4_flex::block::compress_prepend_size(&json).into_boxed_slice(),
                parsed: Mutex::new(Weak::new()),
            }));
        }
    }
}

/// Whether `value` (at `depth`) must stay parsed: a floating-point number is in it, or it
/// nests deeper than its JSON reads back.
fn keep_parsed(value: &Value, depth: usize) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(_) | Value::Object(_) if depth >= READ_BACK_DEPTH => true,
        Value::Array(items) => items.iter().any(|v| keep_parsed(v, depth + 1)),
        Value::Object(map) => map.values().any(|v| keep_parsed(v, depth + 1)),
        _ => false,
    }
}

impl Compact {
    fn get(&self) -> Arc<Value> {
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = parsed.upgrade() {
            return value;
        }
        // Both steps read what `Stored::compact` wrote in this process, never deeper than
        // serde_json reads (`keep_parsed`): they cannot fail.
        let json = lz4_flex::block::decompress_size_prepended(&self.bytes)
            .expect("the index's own compact form decompresses");
        let value: Arc<Value> =
            Arc::new(serde_json::from_slice(&json).expect("the index's own JSON parses"));
        *parsed = Arc::downgrade(&value);
        drop(parsed);
        let mut recent = RECENTLY_PARSED.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_back();
        }
        recent.push_front(value.clone());
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_compact_form_parses_back_to_the_same_manifest() {
        let manifest = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            // Key order kept, numbers as they were (floats exactly), nesting, unicode.
            "metadata": {"name": "x", "labels": {"z": "1", "a": "2"}},
            "data": {"j": u64::MAX, "k": i64::MIN, "s": "é\u{1F600}\n\"", "n": null,
                     "l": [true, false, [], {}, 0, -1]}
        });
        let mut stored = Stored::parsed(Arc::new(manifest.clone()));
        stored.compact();
        assert!(!stored.is_parsed());
        let back = stored.get();
        assert_eq!(*back, manifest);
        assert_eq!(
            serde_json::to_string(&*back).unwrap(),
            serde_json::to_string(&manifest).unwrap(),
            "same key order and number forms"
        );
        assert!(stored.is(&Arc::new(manifest)));
        // Parsed once while something holds it.
        assert!(Arc::ptr_eq(&back, &stored.get()));
    }

    #[test]
    fn a_manifest_with_a_float_stays_parsed() {
        let manifest = json!({"spec": {"items": [{"ratio": 1.0000000000000002}]}});
        let mut stored = Stored::parsed(Arc::new(manifest.clone()));
        stored.compact();
        assert!(stored.is_parsed(), "a float could come back one unit off");
        assert_eq!(*stored.get(), manifest);
    }

    #[test]
    fn a_manifest_nested_deeper_than_json_reads_back_stays_parsed() {
        let deep =
            |levels: usize| (0..levels).fold(json!("leaf"), |inner, _| json!({ "a": [inner] }));
        // 2 × 70 levels: past serde_json's limit of 128, which reading it back would hit.
        let mut stored = Stored::parsed(Arc::new(deep(70)));
        stored.compact();
        assert!(stored.is_parsed());
        let mut shallow = Stored::parsed(Arc::new(deep(20)));
        shallow.compact();
        assert!(!shallow.is_parsed());
        assert_eq!(*shallow.get(), deep(20));
    }
}
