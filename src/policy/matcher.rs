//! Which objects a policy applies to, with Gatekeeper's `spec.match` semantics, so that a
//! policy that does not apply is never evaluated.
//!
//! - `kinds`: any entry whose `apiGroups` and `kinds` both contain the object's (`*` = any,
//!   an empty list = any).
//! - `namespaces` / `excludedNamespaces` / `namespaceSelector`: apply to namespaced objects and
//!   to Namespaces (by their own name and labels); other cluster-scoped objects pass them.
//!   Where namespace labels cannot be known (the cluster turned off), a `namespaceSelector`
//!   matches nothing.
//!   Names accept one `*` at the front or end (`kube-*`, `*-system`).
//! - `labelSelector`: the object's own labels (the old object's for a DELETE).
//! - An UPDATE is matched when its object or its old object matches (Gatekeeper's
//!   `matchAny`): taking the matching label away in the same change is no way out.
//! - `scope`: `*`, `Cluster` or `Namespaced`; a Namespace is cluster-scoped whatever
//!   namespace the request names (the API server writes its own name there). `name`: the
//!   object's name, same globs.
//! - `source`: `Original`, `Generated` (made by an ExpansionTemplate) or `All`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::Document;

/// A kind selector: `apiGroups` × `kinds`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KindSelector {
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// Gatekeeper's `spec.match`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    #[serde(default)]
    pub kinds: Vec<KindSelector>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// `Original`, `Generated` (resources an ExpansionTemplate makes) or `All` (the default).
    #[serde(default)]
    pub source: Option<String>,
}

/// Finds the labels of a namespace (from the cluster, a suite's inventory or the repository).
pub trait NamespaceLabels {
    /// The labels of namespace `name`, or `None` when it is not known.
    fn labels(&self, name: &str) -> Option<BTreeMap<String, String>>;

    /// Whether namespace labels can be known at all. `false` when the cluster is turned off
    /// by configuration (`cluster.enabled: false`): a `namespaceSelector` then matches
    /// nothing, rather than judging every namespace as one without labels.
    fn available(&self) -> bool {
        true
    }
}

/// Namespaces known from their manifests (a suite's inventory, a repository's head).
#[derive(Debug, Clone, Default)]
pub struct NamespaceMap(pub BTreeMap<String, BTreeMap<String, String>>);

impl NamespaceMap {
    /// Remembers `obj` when it is a Namespace.
    pub fn learn(&mut self, obj: &Value) {
        let is_namespace = obj.get("kind").and_then(Value::as_str) == Some("Namespace")
            && obj.get("apiVersion").and_then(Value::as_str) == Some("v1");
        if let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str)
            && is_namespace
        {
            self.0.insert(name.to_string(), labels_of(Some(obj)));
        }
    }
}

impl NamespaceLabels for NamespaceMap {
    fn labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.0.get(name).cloned()
    }
}

/// No namespace is known: a `namespaceSelector` then sees a namespace without labels.
pub struct NoNamespaces;

impl NamespaceLabels for NoNamespaces {
    fn labels(&self, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
}

impl Match {
    /// The (group, kind) pairs this match is limited to, or `None` when it may match any kind
    /// (used to index policies by kind).
    pub fn kind_keys(&self) -> Option<Vec<(String, String)>> {
        if self.kinds.is_empty() {
            return None;
        }
        let mut keys = Vec::new();
        for sel in &self.kinds {
            let groups: &[String] = &sel.api_groups;
            if groups.is_empty()
                || groups.iter().any(|g| g == "*")
                || sel.kinds.is_empty()
                || sel.kinds.iter().any(|k| k == "*")
            {
                return None;
            }
            for g in groups {
                for k in &sel.kinds {
                    keys.push((g.clone(), k.clone()));
                }
            }
        }
        Some(keys)
    }

    /// Whether this match takes resources of this origin: `generated` when an
    /// ExpansionTemplate made the resource (`source: Generated` takes only those, `Original`
    /// none of them).
    pub fn takes_source(&self, generated: bool) -> bool {
        match self.source.as_deref() {
            Some("Generated") => generated,
            Some("Original") => !generated,
            _ => true,
        }
    }

    /// Whether the policy applies to this document: as Gatekeeper's matcher, when the object
    /// or the old object matches (an UPDATE that takes the matching label away, or moves a
    /// Namespace out of a `namespaceSelector`, is still judged).
    pub fn matches(&self, doc: &Document, namespaces: &dyn NamespaceLabels) -> bool {
        let kind = &doc.review.kind;
        if !self.kinds_match(&kind.group, &kind.kind) {
            return false;
        }
        fn present(o: &Option<Value>) -> Option<&Value> {
            o.as_ref().filter(|v| !v.is_null())
        }
        match (present(&doc.review.object), present(&doc.review.old_object)) {
            (None, None) => self.matches_object(doc, None, namespaces),
            (object, old) => [object, old]
                .into_iter()
                .flatten()
                .any(|o| self.matches_object(doc, Some(o), namespaces)),
        }
    }

    /// The criteria past `kinds` for one of the request's objects.
    fn matches_object(
        &self,
        doc: &Document,
        subject: Option<&Value>,
        namespaces: &dyn NamespaceLabels,
    ) -> bool {
        let kind = &doc.review.kind;
        let is_namespace = kind.group.is_empty() && kind.kind == "Namespace";
        let namespace = doc.review.namespace.as_deref().filter(|n| !n.is_empty());
        let name = if doc.review.name.is_empty() {
            subject
                .and_then(|o| o.pointer("/metadata/name"))
                .and_then(Value::as_str)
                .unwrap_or("")
        } else {
            doc.review.name.as_str()
        };
        // Gatekeeper's scopeMatch: a Namespace is cluster-scoped, whatever namespace the API
        // server writes in its request (its own name).
        match self.scope.as_deref() {
            Some("Cluster") if !(is_namespace || namespace.is_none()) => return false,
            Some("Namespaced") if is_namespace || namespace.is_none() => return false,
            _ => {}
        }
        if let Some(pattern) = &self.name
            && !glob_match(pattern, name)
        {
            return false;
        }
        // The namespace the namespace criteria look at: a Namespace's own name.
        let ns_for_criteria = if is_namespace { Some(name) } else { namespace };
        if let Some(ns) = ns_for_criteria {
            if !self.namespaces.is_empty() && !self.namespaces.iter().any(|p| glob_match(p, ns)) {
                return false;
            }
            if self.excluded_namespaces.iter().any(|p| glob_match(p, ns)) {
                return false;
            }
            if let Some(sel) = &self.namespace_selector {
                if !namespaces.available() {
                    return false;
                }
                let labels = if is_namespace {
                    labels_of(subject)
                } else {
                    namespaces.labels(ns).unwrap_or_default()
                };
                if !selector_matches(sel, &labels) {
                    return false;
                }
            }
        }
        if let Some(sel) = &self.label_selector
            && !selector_matches(sel, &labels_of(subject))
        {
            return false;
        }
        true
    }

    fn kinds_match(&self, group: &str, kind: &str) -> bool {
        self.kinds.is_empty()
            || self.kinds.iter().any(|sel| {
                let group_ok = sel.api_groups.is_empty()
                    || sel.api_groups.iter().any(|g| g == "*" || g == group);
                let kind_ok =
                    sel.kinds.is_empty() || sel.kinds.iter().any(|k| k == "*" || k == kind);
                group_ok && kind_ok
            })
    }
}

/// `metadata.labels` of an object as a map (non-string values are ignored).
pub fn labels_of(obj: Option<&Value>) -> BTreeMap<String, String> {
    obj.and_then(|o| o.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A Kubernetes label selector against a label set (matchLabels AND every matchExpression).
pub fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_ok
        && sel
            .match_expressions
            .iter()
            .flatten()
            .all(|e| requirement_matches(e, labels))
}

fn requirement_matches(req: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = req.values.as_deref().unwrap_or(&[]);
    let value = labels.get(&req.key);
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        // An unknown operator selects nothing, as the API server would refuse it.
        _ => false,
    }
}

/// Gatekeeper's name globs: exact, or one `*` at the front (suffix match) or the end (prefix).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return name.starts_with(prefix);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return name.ends_with(suffix);
    }
    pattern == name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Source;
    use kube_core::admission::Operation;
    use serde_json::json;

    fn doc(obj: Value) -> Document {
        Document::from_manifest("t", Operation::Create, Some(obj), None, Source::admission())
            .unwrap()
    }

    fn m(v: Value) -> Match {
        serde_json::from_value(v).unwrap()
    }

    fn pod(ns: &str, labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": ns, "labels": labels}})
    }

    struct Ns;
    impl NamespaceLabels for Ns {
        fn labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
            (name == "prod").then(|| BTreeMap::from([("env".into(), "prod".into())]))
        }
    }

    #[test]
    fn kinds_and_groups() {
        let sel = m(json!({"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}));
        assert!(sel.matches(&doc(pod("a", json!({}))), &NoNamespaces));
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        assert!(!sel.matches(&doc(dep.clone()), &NoNamespaces));
        let any = m(json!({"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]}));
        assert!(any.matches(&doc(dep), &NoNamespaces));
        assert_eq!(sel.kind_keys(), Some(vec![("".into(), "Pod".into())]));
        assert_eq!(any.kind_keys(), None);
    }

    #[test]
    fn namespaces_with_globs() {
        let sel = m(json!({"namespaces": ["team-*"], "excludedNamespaces": ["*-test"]}));
        assert!(sel.matches(&doc(pod("team-a", json!({}))), &NoNamespaces));
        assert!(!sel.matches(&doc(pod("team-a-test", json!({}))), &NoNamespaces));
        assert!(!sel.matches(&doc(pod("other", json!({}))), &NoNamespaces));
        // Cluster-scoped objects other than Namespaces pass namespace criteria.
        let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1",
                         "kind": "ClusterRoleBinding", "metadata": {"name": "x"}});
        assert!(sel.matches(&doc(crb), &NoNamespaces));
        // A Namespace is judged by its own name.
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}});
        assert!(!sel.matches(&doc(ns), &NoNamespaces));
    }

    #[test]
    fn label_and_namespace_selectors() {
        let sel = m(json!({"labelSelector": {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web"]},
            {"key": "debug", "operator": "DoesNotExist"}]}}));
        assert!(sel.matches(&doc(pod("a", json!({"tier": "web"}))), &NoNamespaces));
        assert!(!sel.matches(
            &doc(pod("a", json!({"tier": "web", "debug": "1"}))),
            &NoNamespaces
        ));
        let nssel = m(json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}}));
        assert!(nssel.matches(&doc(pod("prod", json!({}))), &Ns));
        assert!(!nssel.matches(&doc(pod("dev", json!({}))), &Ns));
    }

    #[test]
    fn namespace_selector_matches_nothing_without_labels_to_read() {
        struct Off;
        impl NamespaceLabels for Off {
            fn labels(&self, _: &str) -> Option<BTreeMap<String, String>> {
                None
            }
            fn available(&self) -> bool {
                false
            }
        }
        let sel = m(json!({"namespaceSelector": {"matchExpressions": [
            {"key": "env", "operator": "DoesNotExist"}]}}));
        assert!(sel.matches(&doc(pod("dev", json!({}))), &NoNamespaces));
        assert!(!sel.matches(&doc(pod("dev", json!({}))), &Off));
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}});
        assert!(!sel.matches(&doc(ns), &Off));
        // Policies without a namespaceSelector are not affected.
        let plain = m(json!({"namespaces": ["dev"]}));
        assert!(plain.matches(&doc(pod("dev", json!({}))), &Off));
    }

    #[test]
    fn an_update_matches_when_the_object_or_the_old_object_does() {
        let sel = m(json!({"labelSelector": {"matchLabels": {"regulated": "true"}}}));
        let update = |old: Value, new: Value| {
            Document::from_manifest(
                "t",
                Operation::Update,
                Some(new),
                Some(old),
                Source::admission(),
            )
            .unwrap()
        };
        let labelled = pod("a", json!({"regulated": "true"}));
        let bare = pod("a", json!({}));
        // The label taken away in the change that is judged: still judged.
        assert!(sel.matches(&update(labelled.clone(), bare.clone()), &NoNamespaces));
        assert!(sel.matches(&update(bare.clone(), labelled), &NoNamespaces));
        assert!(!sel.matches(&update(bare.clone(), bare), &NoNamespaces));
        // A Namespace leaving a namespaceSelector's set.
        let nssel = m(json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}}));
        let ns = |labels: Value| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "shop", "labels": labels}})
        };
        assert!(nssel.matches(
            &update(ns(json!({"env": "prod"})), ns(json!({}))),
            &NoNamespaces
        ));
    }

    #[test]
    fn a_namespace_is_cluster_scoped_whatever_namespace_the_request_names() {
        // The API server writes a Namespace's own name as the request's namespace.
        let mut doc = doc(json!({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": "team-a"}}));
        doc.review.namespace = Some("team-a".into());
        assert!(m(json!({"scope": "Cluster"})).matches(&doc, &NoNamespaces));
        assert!(!m(json!({"scope": "Namespaced"})).matches(&doc, &NoNamespaces));
        assert!(m(json!({"scope": "*"})).matches(&doc, &NoNamespaces));
        let pod_doc = super::tests::doc(pod("a", json!({})));
        assert!(m(json!({"scope": "Namespaced"})).matches(&pod_doc, &NoNamespaces));
    }

    #[test]
    fn scope_and_name() {
        let sel = m(json!({"scope": "Cluster"}));
        assert!(!sel.matches(&doc(pod("a", json!({}))), &NoNamespaces));
        let sel = m(json!({"name": "p*"}));
        assert!(sel.matches(&doc(pod("a", json!({}))), &NoNamespaces));
        let sel = m(json!({"name": "q"}));
        assert!(!sel.matches(&doc(pod("a", json!({}))), &NoNamespaces));
    }
}
