//! What a GitOps controller changes in a folder's build: a Flux `Kustomization`'s
//! `targetNamespace`, `patches`, `images`, `components`, name prefix and suffix (merged into
//! the folder's kustomization as fluxcd/pkg's generator merges them), its `commonMetadata` and
//! `postBuild` substitutions (applied to each object after the build, as kustomize-controller
//! does); an Argo CD `Application`'s `kustomize` options (what `kustomize edit` writes).
//!
//! The kustomization is read and written again for this, as the controllers do (they unmarshal
//! and marshal it): a kustomization that YAML readers read differently is refused first.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// The edits of one controller object to the build of one folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overlay {
    /// The kustomization's `namespace` (Flux's `targetNamespace`, Argo CD's
    /// `kustomize.namespace`).
    pub namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    /// Entries appended to `patches` (`{patch, target}`).
    pub patches: Vec<Value>,
    /// Entries appended to `patchesStrategicMerge` (inline objects, written as YAML text).
    pub patches_strategic_merge: Vec<Value>,
    /// Entries appended to `patchesJson6902` (`{patch, target}`, the patch as a JSON string).
    pub patches_json6902: Vec<Value>,
    /// Images (`{name, newName, newTag, digest}`), merged by name.
    pub images: Vec<Value>,
    /// Whether an image of the same name replaces the kustomization's entry whole (Flux's
    /// generator does) rather than field by field (Argo CD's `kustomize edit set image`).
    pub replace_images: bool,
    /// Argo CD's `kustomize.replicas` (`{name, count}`), merged by name into `replicas`.
    pub replicas: Vec<Value>,
    /// Components appended (paths relative to the folder).
    pub components: Vec<String>,
    /// Flux's `ignoreMissingComponents`: a component the commit does not hold is left out.
    pub ignore_missing_components: bool,
    /// Argo CD's `commonLabels` and `commonAnnotations` (kustomize's fields of those names).
    pub common_labels: Map<String, Value>,
    pub common_annotations: Map<String, Value>,
    /// Flux's `commonMetadata`: labels and annotations set on every object after the build.
    pub metadata_labels: Map<String, Value>,
    pub metadata_annotations: Map<String, Value>,
    /// Flux's `postBuild` variables, when it substitutes (`None`: no substitution).
    pub substitute: Option<BTreeMap<String, String>>,
}

impl Overlay {
    /// Whether it changes nothing in the build (the folder renders as it does on its own).
    pub fn is_empty(&self) -> bool {
        *self == Overlay::default()
    }

    /// The folder's kustomization (`None`: Flux generates one listing `generated`) with the
    /// edits merged in, as fluxcd/pkg's generator merges them.
    pub fn kustomization(&self, current: Option<Value>, generated: &[String]) -> Value {
        let mut k = match current {
            Some(Value::Object(k)) => k,
            _ => {
                let mut k = Map::new();
                k.insert(
                    "apiVersion".into(),
                    "kustomize.config.k8s.io/v1beta1".into(),
                );
                k.insert("kind".into(), "Kustomization".into());
                let resources: Vec<Value> = generated
                    .iter()
                    .map(|p| Value::String(format!("./{p}")))
                    .collect();
                if !resources.is_empty() {
                    k.insert("resources".into(), Value::Array(resources));
                }
                k
            }
        };
        let set = |k: &mut Map<String, Value>, field: &str, v: &Option<String>| {
            if let Some(v) = v {
                k.insert(field.into(), Value::String(v.clone()));
            }
        };
        set(&mut k, "namespace", &self.namespace);
        set(&mut k, "namePrefix", &self.name_prefix);
        set(&mut k, "nameSuffix", &self.name_suffix);
        let append = |k: &mut Map<String, Value>, field: &str, items: Vec<Value>| {
            if items.is_empty() {
                return;
            }
            match k.get_mut(field) {
                Some(Value::Array(existing)) => existing.extend(items),
                _ => {
                    k.insert(field.into(), Value::Array(items));
                }
            }
        };
        append(&mut k, "patches", self.patches.clone());
        append(
            &mut k,
            "patchesStrategicMerge",
            self.patches_strategic_merge
                .iter()
                .map(|p| Value::String(p.to_string()))
                .collect(),
        );
        append(&mut k, "patchesJson6902", self.patches_json6902.clone());
        append(
            &mut k,
            "components",
            self.components.iter().cloned().map(Value::String).collect(),
        );
        for image in &self.images {
            let name = image.get("name").and_then(Value::as_str).unwrap_or("");
            let images = k
                .entry("images")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !images.is_array() {
                *images = Value::Array(Vec::new());
            }
            let Value::Array(images) = images else {
                continue;
            };
            let field = |f: &str| {
                image
                    .get(f)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            };
            match images
                .iter_mut()
                .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
            {
                Some(existing) if self.replace_images => *existing = image.clone(),
                Some(Value::Object(existing)) => {
                    if let Some(n) = field("newName") {
                        existing.insert("newName".into(), n.into());
                    }
                    // A tag and a digest select the version together: setting one clears
                    // the other (as kustomize's image transformer replaces both).
                    if field("newTag").is_some() || field("digest").is_some() {
                        existing.remove("newTag");
                        existing.remove("digest");
                        for f in ["newTag", "digest"] {
                            if let Some(v) = field(f) {
                                existing.insert(f.into(), v.into());
                            }
                        }
                    }
                }
                _ => images.push(image.clone()),
            }
        }
        for replica in &self.replicas {
            let name = replica.get("name").and_then(Value::as_str).unwrap_or("");
            let entry = k
                .entry("replicas")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !entry.is_array() {
                *entry = Value::Array(Vec::new());
            }
            let Value::Array(replicas) = entry else {
                continue;
            };
            match replicas
                .iter_mut()
                .find(|r| r.get("name").and_then(Value::as_str) == Some(name))
            {
                Some(existing) => *existing = replica.clone(),
                None => replicas.push(replica.clone()),
            }
        }
        for (field, map) in [
            ("commonLabels", &self.common_labels),
            ("commonAnnotations", &self.common_annotations),
        ] {
            if map.is_empty() {
                continue;
            }
            let entry = k.entry(field).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(existing) = entry {
                existing.extend(map.clone());
            }
        }
        Value::Object(k)
    }

    /// What kustomize-controller does to each object after the build: `postBuild`
    /// substitutions (unless the object opts out), then `commonMetadata`.
    pub fn after_build(&self, object: Value) -> Result<Value, String> {
        let mut object = match &self.substitute {
            Some(vars) if !vars.is_empty() && !opts_out(&object) => substitute(&object, vars)?,
            _ => object,
        };
        for (field, map) in [
            ("labels", &self.metadata_labels),
            ("annotations", &self.metadata_annotations),
        ] {
            if map.is_empty() {
                continue;
            }
            let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
                continue;
            };
            let entry = metadata
                .entry(field)
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(existing) = entry {
                existing.extend(map.clone());
            }
        }
        Ok(object)
    }
}

/// `kustomize.toolkit.fluxcd.io/substitute: disabled` as a label or an annotation.
fn opts_out(object: &Value) -> bool {
    ["labels", "annotations"].iter().any(|f| {
        object
            .pointer(&format!(
                "/metadata/{f}/kustomize.toolkit.fluxcd.io~1substitute"
            ))
            .and_then(Value::as_str)
            == Some("disabled")
    })
}

/// Whether `name` is a variable name Flux accepts (`^[_[:alpha:]][_[:alpha:][:digit:]]*$`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Substitutes `vars` in the object's YAML text and reads it back, as Flux does (so that
/// `replicas: ${n}` becomes a number).
fn substitute(object: &Value, vars: &BTreeMap<String, String>) -> Result<Value, String> {
    let text = serde_saphyr::to_string(object).map_err(|e| format!("cannot write YAML: {e}"))?;
    let out = envsubst(&text, vars)?;
    let docs = crate::manifest::parse_str("substituted", &out)
        .map_err(|e| format!("the substituted object is not YAML: {e}"))?;
    docs.into_iter()
        .find(|d| !d.value.is_null())
        .map(|d| d.value)
        .ok_or_else(|| "the substituted object is empty".to_string())
}

/// Flux's variable substitution (fluxcd/pkg/envsubst) over `text`: `${var}`,
/// `${var:=default}`, `${var:-default}`, `${var=default}`, `${var-default}`; `$$` is a `$`.
/// A variable that is not set is empty. The string functions of the syntax (`${#var}`,
/// `${var^^}`, `${var/a/b}`, ...) are refused: gitgate does not guess what they give.
pub fn envsubst(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(more) = after.strip_prefix('$') {
            out.push('$');
            rest = more;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = closing(inner) else {
                let end = (i..=rest.len().min(i + 40))
                    .rev()
                    .find(|e| rest.is_char_boundary(*e))
                    .unwrap_or(i);
                return Err(format!("unclosed ${{ in {:?}", &rest[i..end]));
            };
            out.push_str(&expression(&inner[..end], vars)?);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes an expression (nested `${...}` in a default counted).
fn closing(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = inner.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn expression(expr: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let name_end = expr
        .find(|c: char| !(c == '_' || c.is_alphanumeric()))
        .unwrap_or(expr.len());
    let (name, op) = expr.split_at(name_end);
    if name.is_empty() {
        return Err(format!(
            "${{{expr}}}: gitgate substitutes ${{var}} and its defaults only"
        ));
    }
    let value = vars.get(name);
    let default = |d: &str| envsubst(d, vars);
    match op {
        "" => Ok(value.cloned().unwrap_or_default()),
        _ if op.starts_with(":=") || op.starts_with(":-") => match value {
            Some(v) if !v.is_empty() => Ok(v.clone()),
            _ => default(&op[2..]),
        },
        _ if op.starts_with('=') || op.starts_with('-') => match value {
            Some(v) => Ok(v.clone()),
            None => default(&op[1..]),
        },
        _ => Err(format!(
            "${{{expr}}}: gitgate substitutes ${{var}} and its defaults only"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_as_flux_does() {
        let v = vars(&[("env", "prod"), ("empty", "")]);
        assert_eq!(envsubst("a-${env}-b", &v).unwrap(), "a-prod-b");
        assert_eq!(envsubst("${missing}", &v).unwrap(), "");
        assert_eq!(envsubst("${missing:=x}", &v).unwrap(), "x");
        assert_eq!(envsubst("${empty:-x}", &v).unwrap(), "x");
        assert_eq!(envsubst("${empty-x}", &v).unwrap(), "");
        assert_eq!(envsubst("${missing:=${env}}", &v).unwrap(), "prod");
        assert_eq!(envsubst("$$ $${env} $env", &v).unwrap(), "$ ${env} $env");
        assert!(envsubst("${env^^}", &v).is_err());
        assert!(envsubst("${env", &v).is_err());
    }

    #[test]
    fn a_substituted_number_is_a_number_and_an_object_may_opt_out() {
        let o = Overlay {
            substitute: Some(vars(&[("n", "3")])),
            ..Overlay::default()
        };
        let out = o
            .after_build(json!({"kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": "${n}"}}))
            .unwrap();
        assert_eq!(out["spec"]["replicas"], json!(3));
        let off = json!({"kind": "Deployment", "metadata": {"name": "a", "annotations": {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}}, "spec": {"replicas": "${n}"}});
        assert_eq!(o.after_build(off.clone()).unwrap(), off);
    }

    #[test]
    fn images_merge_by_name_and_patches_append() {
        let o = Overlay {
            namespace: Some("apps".into()),
            images: vec![json!({"name": "nginx", "newTag": "1.27"})],
            patches: vec![
                json!({"patch": "- op: remove\n  path: /x", "target": {"kind": "Deployment"}}),
            ],
            ..Overlay::default()
        };
        let k = o.kustomization(
            Some(json!({"resources": ["a.yaml"], "images": [{"name": "nginx", "newName": "mirror/nginx", "digest": "sha256:abc"}], "patches": [{"path": "p.yaml"}]})),
            &[],
        );
        assert_eq!(k["namespace"], "apps");
        assert_eq!(
            k["images"],
            json!([{"name": "nginx", "newName": "mirror/nginx", "newTag": "1.27"}])
        );
        assert_eq!(k["patches"].as_array().unwrap().len(), 2);
        let generated = o.kustomization(None, &["a.yaml".into(), "sub".into()]);
        assert_eq!(generated["resources"], json!(["./a.yaml", "./sub"]));
    }
}
