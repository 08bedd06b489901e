//! Custom resources: the `default`s of their CustomResourceDefinition's structural schema,
//! applied to Git's manifest as the API server applies them, so that a field the object
//! carries and Git does not is explained exactly when it is the schema's default there.
//!
//! The CRD comes from the approved window (Git holds it, as Flux's `gotk-components.yaml` or a
//! chart's `crds/` do): a custom resource whose CRD is not in Git has no known defaults, and
//! every field Git does not set is unattested.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::index::Index;
use crate::input::{Identity, Review};

/// The manifest of the CustomResourceDefinition of the request's resource, from the newest
/// approved commit that holds it; `None` for built-in kinds, and when Git holds no such CRD.
pub fn lookup(index: &Index, review: &Review) -> Option<Arc<Value>> {
    let resource = review.resource.as_ref()?;
    // Built-in groups have no dot (`apps`, `batch`, the core group) or are served by the API
    // server itself; a CRD is named `<plural>.<group>`.
    if !resource.group.contains('.') {
        return None;
    }
    let id = Identity {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        kind: "CustomResourceDefinition".into(),
        namespace: None,
        name: format!("{}.{}", resource.resource, resource.group),
    };
    index.lookup(&id).first().map(|v| v.manifest())
}

/// The structural schema of the CRD's version `version` (`spec.versions[].schema.openAPIV3Schema`).
pub fn schema<'c>(crd: &'c Value, version: &str) -> Option<&'c Value> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))?
        .pointer("/schema/openAPIV3Schema")
}

/// Git's manifest with the CRD's defaults applied, or `None` when the CRD has no schema for the
/// manifest's version or sets no default (nothing to explain then).
pub fn defaulted(git: &Value, crd: &Value) -> Option<Value> {
    let version = git
        .get("apiVersion")
        .and_then(Value::as_str)?
        .rsplit('/')
        .next()?;
    let schema = schema(crd, version)?;
    if !has_default(schema) {
        return None;
    }
    let mut out = git.clone();
    let root = out.as_object_mut()?;
    // `apiVersion`, `kind` and `metadata` are the API server's, not the schema's.
    let props = schema.get("properties").and_then(Value::as_object);
    if let Some(props) = props {
        for (k, prop) in props {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            default_property(root, k, prop);
        }
    }
    Some(out)
}

/// The structural defaulting algorithm (apiextensions-apiserver's `structuraldefaulting`):
/// a missing property (or a `null` one the schema does not allow) takes its default, then
/// every property, old or defaulted, is defaulted by its own schema; list items by `items`, map
/// values by `additionalProperties`.
fn default_value(x: &mut Value, schema: &Value) {
    match x {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, prop) in props {
                    default_property(map, k, prop);
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let known = schema.get("properties").and_then(Value::as_object);
                for (k, v) in map.iter_mut() {
                    if known.is_none_or(|p| !p.contains_key(k)) {
                        default_value(v, additional);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    default_value(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

fn default_property(map: &mut Map<String, Value>, k: &str, prop: &Value) {
    let nullable = prop.get("nullable") == Some(&Value::Bool(true));
    let missing = match map.get(k) {
        None => true,
        Some(Value::Null) => !nullable,
        Some(_) => false,
    };
    if missing && let Some(default) = prop.get("default") {
        map.insert(k.to_string(), default.clone());
    }
    if let Some(v) = map.get_mut(k) {
        default_value(v, prop);
    }
}

fn has_default(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.contains_key("default") || m.values().any(has_default),
        Value::Array(items) => items.iter().any(has_default),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_nest_into_defaults_items_and_maps() {
        let crd = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "interval": {"type": "string", "default": "5m"},
                "install": {"type": "object", "default": {}, "properties": {
                    "retries": {"type": "integer", "default": 3}}},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}}}},
                "labels": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"weight": {"type": "integer", "default": 1}}}},
                "note": {"type": "string", "default": "x"},
                "kept": {"type": "string", "nullable": true, "default": "y"}
            }}
        }}}}]}});
        let git = json!({"apiVersion": "example.com/v1", "kind": "W",
            "metadata": {"name": "w"},
            "spec": {"ports": [{"port": 80}], "labels": {"a": {}}, "note": null, "kept": null}});
        let out = defaulted(&git, &crd).unwrap();
        assert_eq!(
            out["spec"],
            json!({"ports": [{"port": 80, "protocol": "TCP"}], "labels": {"a": {"weight": 1}},
                   "note": "x", "kept": null, "interval": "5m", "install": {"retries": 3}})
        );
        // No schema for the version, or no default in it: nothing to apply.
        let other = json!({"apiVersion": "example.com/v2", "kind": "W"});
        assert!(defaulted(&other, &crd).is_none());
    }
}
