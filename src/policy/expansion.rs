//! Gatekeeper `ExpansionTemplate`s: a workload (a Deployment) is also judged as the resource it
//! generates (its Pods), so that Pod-only constraints such as the gatekeeper-library's refuse a
//! privileged Deployment instead of only its Pods, which GitOps never applies directly.
//!
//! As Gatekeeper does (`pkg/expansion`): the resultant is the object at `spec.templateSource` of
//! the parent, with `generatedGVK` as its apiVersion and kind and the parent's namespace; it is
//! reviewed as a request of the same operation, user and namespace; its findings are reported on
//! the parent, each message prefixed `[Implied by <template>]`, with the template's
//! `enforcementAction` instead of the policy's when the template sets one. A constraint's
//! `spec.match.source` chooses `Original`, `Generated` or `All` (the default) resources.
//! Templates chain (a CronJob expands to a Job, which expands to a Pod); a cycle is refused when
//! the templates load. Gatekeeper's mutators (`source: Generated`) are not applied.

use serde_json::Value;

use super::{Enforcement, PolicyError};
use crate::input::Document;
use crate::manifest::Document as ManifestDocument;

/// One `applyTo` entry: groups × kinds × versions (an empty list, or `*`, is any).
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyTo {
    pub groups: Vec<String>,
    pub kinds: Vec<String>,
    pub versions: Vec<String>,
}

/// A loaded ExpansionTemplate.
#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub apply_to: Vec<ApplyTo>,
    /// `spec.template`, as path segments.
    pub template_source: Vec<String>,
    /// (group, version, kind) of the resultant.
    pub generated: (String, String, String),
    pub enforcement: Option<Enforcement>,
}

/// Whether a document is an ExpansionTemplate.
pub fn is_expansion_template(value: &Value) -> bool {
    value.get("kind").and_then(Value::as_str) == Some("ExpansionTemplate")
        && value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|a| a.starts_with("expansion.gatekeeper.sh/"))
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Expansion {
    /// Reads an ExpansionTemplate document; what it lacks is an error at its line.
    pub fn parse(file: &str, doc: &ManifestDocument) -> Result<Expansion, PolicyError> {
        let v = &doc.value;
        let invalid = |message: String| PolicyError::Invalid {
            file: file.to_string(),
            line: doc.line,
            message,
        };
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("ExpansionTemplate without metadata.name".into()))?
            .to_string();
        let spec = v
            .get("spec")
            .ok_or_else(|| invalid(format!("ExpansionTemplate {name}: no spec")))?;
        let apply_to: Vec<ApplyTo> = spec
            .get("applyTo")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| ApplyTo {
                        groups: strings(e.get("groups")),
                        kinds: strings(e.get("kinds")),
                        versions: strings(e.get("versions")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if apply_to.is_empty() {
            return Err(invalid(format!(
                "ExpansionTemplate {name}: spec.applyTo names no resource to expand"
            )));
        }
        let source = spec
            .get("templateSource")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "ExpansionTemplate {name}: spec.templateSource is required (spec.template for Pod-generating workloads)"
                ))
            })?;
        let gvk = spec.get("generatedGVK");
        let field = |k: &str| {
            gvk.and_then(|g| g.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let generated = (field("group"), field("version"), field("kind"));
        if generated.1.is_empty() || generated.2.is_empty() {
            return Err(invalid(format!(
                "ExpansionTemplate {name}: spec.generatedGVK needs a version and a kind"
            )));
        }
        let enforcement = match spec.get("enforcementAction").and_then(Value::as_str) {
            None | Some("") => None,
            Some(a) => Some(Enforcement::parse(a).ok_or_else(|| {
                invalid(format!(
                    "ExpansionTemplate {name}: enforcementAction {a:?} is not deny, warn or dryrun"
                ))
            })?),
        };
        Ok(Expansion {
            name,
            file: file.to_string(),
            line: doc.line,
            apply_to,
            template_source: source.split('.').map(str::to_string).collect(),
            generated,
            enforcement,
        })
    }

    /// `Deployment, StatefulSet → Pod`: what it expands into what.
    pub fn describe(&self) -> String {
        let kinds: Vec<&str> = self
            .apply_to
            .iter()
            .flat_map(|a| a.kinds.iter().map(String::as_str))
            .collect();
        format!("{} → {}", kinds.join(", "), self.generated.2)
    }

    /// Whether this template expands resources of (group, version, kind).
    pub fn applies_to(&self, group: &str, version: &str, kind: &str) -> bool {
        let any = |list: &[String], value: &str| {
            list.is_empty() || list.iter().any(|x| x == "*" || x == value)
        };
        self.apply_to
            .iter()
            .any(|a| any(&a.groups, group) && any(&a.kinds, kind) && any(&a.versions, version))
    }

    /// The resultant of `doc`'s object, reviewed as a request of the same operation, or
    /// `None` when there is no object (a DELETE) or the object lacks the template source.
    pub fn expand(&self, doc: &Document) -> Option<Document> {
        let object = doc.review.object.as_ref().filter(|o| !o.is_null())?;
        let mut source = object;
        for segment in &self.template_source {
            source = source.get(segment)?;
        }
        let mut resultant = source.as_object()?.clone();
        let (group, version, kind) = &self.generated;
        let api_version = if group.is_empty() {
            version.clone()
        } else {
            format!("{group}/{version}")
        };
        resultant.insert("apiVersion".into(), Value::String(api_version));
        resultant.insert("kind".into(), Value::String(kind.clone()));
        let namespace = doc.review.namespace.clone().filter(|n| !n.is_empty());
        if let Some(ns) = &namespace {
            let metadata = resultant
                .entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(m) = metadata.as_object_mut() {
                m.insert("namespace".into(), Value::String(ns.clone()));
            }
        }
        let mut review = doc.review.clone();
        review.kind = kube_core::GroupVersionKind::gvk(group, version, kind);
        review.request_kind = None;
        review.resource = None;
        review.request_resource = None;
        review.sub_resource = None;
        review.request_sub_resource = None;
        review.name = String::new();
        review.object = Some(Value::Object(resultant));
        review.old_object = None;
        Some(Document {
            review,
            parameters: None,
            source: doc.source.clone(),
            // The resultant is judged by policies, never by provenance: Git holds the parent.
            provenance: None,
            as_written: None,
        })
    }
}

/// Refuses templates that expand into what they expand from, directly or through others.
pub fn check_cycles(expansions: &[Expansion]) -> Result<(), PolicyError> {
    for start in expansions {
        let mut seen = vec![start.name.as_str()];
        let mut frontier = vec![start];
        while let Some(t) = frontier.pop() {
            let (g, v, k) = &t.generated;
            for next in expansions.iter().filter(|n| n.applies_to(g, v, k)) {
                if next.name == start.name {
                    return Err(PolicyError::Invalid {
                        file: start.file.clone(),
                        line: start.line,
                        message: format!(
                            "ExpansionTemplate {}: expansion cycle through {}",
                            start.name,
                            seen.join(" -> ")
                        ),
                    });
                }
                if !seen.contains(&next.name.as_str()) {
                    seen.push(&next.name);
                    frontier.push(next);
                }
            }
        }
    }
    Ok(())
}
