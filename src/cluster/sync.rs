//! What the loaded policies and the configuration need from the cluster: the labels of
//! Namespaces (a policy with a `namespaceSelector`), the kinds synced into `data.inventory`
//! (`inventory.sync`, and Gatekeeper's own `Config` `spec.sync.syncOnly` and `SyncSet`
//! `spec.gvks` found among the policies, as Gatekeeper reads them), and the audit.
//!
//! Pure: reads a [`PolicySet`] and what the configuration syncs and audits, no I/O.

use serde_json::Value;

use super::KindRef;
use crate::policy::PolicySet;
use crate::policy::matcher::glob_match;

/// A kind synced into `data.inventory`, and who asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub kind: KindRef,
    /// `inventory.sync`, or `file:line` of a Gatekeeper `Config`/`SyncSet`.
    pub origin: String,
}

/// What needs the cluster.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// Policies that match by `namespaceSelector`.
    pub namespace_selectors: Vec<String>,
    /// Kinds synced into `data.inventory` (each once).
    pub sync: Vec<Synced>,
    /// Namespaces whose objects are not synced (a Gatekeeper `Config`'s `spec.match` for the
    /// `sync` process), as globs.
    pub sync_excluded_namespaces: Vec<String>,
    /// Namespaces whose objects are not audited: `audit.excludedNamespaces` and a Gatekeeper
    /// `Config`'s `spec.match` for the `audit` process, as globs.
    pub audit_excluded_namespaces: Vec<String>,
    /// Policies that read `data.inventory`.
    pub inventory_readers: Vec<String>,
    /// `audit.interval` is set.
    pub audit: bool,
    /// Gatekeeper sync documents that could not be read, with why.
    pub problems: Vec<String>,
}

impl Needs {
    /// What `set` needs, with the kinds `inventory.sync` names, whether `serve` audits on an
    /// interval, and the namespaces the audit leaves out.
    pub fn of_parts(
        set: &PolicySet,
        synced: &[KindRef],
        audit: bool,
        audit_excluded_namespaces: &[String],
    ) -> Needs {
        let mut needs = Needs {
            namespace_selectors: set
                .namespace_selector_policies()
                .into_iter()
                .map(str::to_string)
                .collect(),
            inventory_readers: set
                .inventory_policies()
                .into_iter()
                .map(str::to_string)
                .collect(),
            audit,
            audit_excluded_namespaces: audit_excluded_namespaces.to_vec(),
            ..Needs::default()
        };
        for kind in synced {
            needs.add_sync(kind.clone(), "inventory.sync".into());
        }
        for skipped in &set.skipped {
            let Some(doc) = &skipped.value else { continue };
            let origin = format!("{}:{}", skipped.file, skipped.line);
            match gatekeeper_sync(doc) {
                Ok((kinds, excluded)) => {
                    for kind in kinds {
                        needs.add_sync(kind, origin.clone());
                    }
                    for ns in excluded {
                        if !needs.sync_excluded_namespaces.contains(&ns) {
                            needs.sync_excluded_namespaces.push(ns);
                        }
                    }
                    for ns in excluded_for(doc, "audit") {
                        if !needs.audit_excluded_namespaces.contains(&ns) {
                            needs.audit_excluded_namespaces.push(ns);
                        }
                    }
                }
                Err(why) => needs.problems.push(format!("{origin}: {why}")),
            }
        }
        needs
    }

    fn add_sync(&mut self, kind: KindRef, origin: String) {
        let same = |s: &Synced| {
            s.kind.group == kind.group && s.kind.version == kind.version && s.kind.kind == kind.kind
        };
        if !self.sync.iter().any(same) {
            self.sync.push(Synced { kind, origin });
        }
    }

    /// Whether anything needs the cluster.
    pub fn any(&self) -> bool {
        !self.namespace_selectors.is_empty() || !self.sync.is_empty() || self.audit
    }

    /// Whether the objects of `namespace` are audited.
    pub fn audits_namespace(&self, namespace: Option<&str>) -> bool {
        namespace.is_none_or(|ns| {
            !self
                .audit_excluded_namespaces
                .iter()
                .any(|p| glob_match(p, ns))
        })
    }

    /// Whether the objects of `namespace` are synced.
    pub fn syncs_namespace(&self, namespace: Option<&str>) -> bool {
        namespace.is_none_or(|ns| {
            !self
                .sync_excluded_namespaces
                .iter()
                .any(|p| glob_match(p, ns))
        })
    }

    /// What needs the cluster, in words (for `/readyz`, logs and errors).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.namespace_selectors.is_empty() {
            parts.push(format!(
                "{} match by namespaceSelector",
                names(&self.namespace_selectors, "policy", "policies")
            ));
        }
        if !self.sync.is_empty() {
            let kinds: Vec<String> = self
                .sync
                .iter()
                .map(|s| format!("{} (from {})", describe_kind(&s.kind), s.origin))
                .collect();
            parts.push(format!("data.inventory syncs {}", kinds.join(", ")));
        }
        if self.audit {
            parts.push("audit.interval is set".to_string());
        }
        parts.join("; ")
    }
}

/// `networking.k8s.io/v1 Ingress`.
pub fn describe_kind(kind: &KindRef) -> String {
    if kind.group.is_empty() {
        format!("{} {}", kind.version, kind.kind)
    } else {
        format!("{}/{} {}", kind.group, kind.version, kind.kind)
    }
}

fn names(list: &[String], one: &str, many: &str) -> String {
    let shown: Vec<&str> = list.iter().take(5).map(String::as_str).collect();
    let more = list.len().saturating_sub(shown.len());
    let word = if list.len() == 1 { one } else { many };
    let mut text = format!("{word} {}", shown.join(", "));
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// The kinds and excluded namespaces of a Gatekeeper `Config` (`spec.sync.syncOnly`,
/// `spec.match[]` whose `processes` hold `sync` or `*`) or `SyncSet` (`spec.gvks`).
pub fn gatekeeper_sync(doc: &Value) -> Result<(Vec<KindRef>, Vec<String>), String> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let entries = match kind {
        "Config" => doc.pointer("/spec/sync/syncOnly"),
        "SyncSet" => doc.pointer("/spec/gvks"),
        other => return Err(format!("kind {other} is not a Gatekeeper sync document")),
    };
    let mut kinds = Vec::new();
    for (i, entry) in entries
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
        match (field("version"), field("kind")) {
            (Some(version), Some(k)) if !version.is_empty() && !k.is_empty() => {
                kinds.push(KindRef {
                    group: field("group").unwrap_or_default(),
                    version,
                    kind: k,
                    resource: None,
                })
            }
            _ => {
                return Err(format!(
                    "entry {i} of the sync list needs a version and a kind"
                ));
            }
        }
    }
    Ok((kinds, excluded_for(doc, "sync")))
}

/// The namespaces a Gatekeeper `Config`'s `spec.match` excludes from `process` (`sync`,
/// `audit`; entries for `*` count for every process).
pub fn excluded_for(doc: &Value, process: &str) -> Vec<String> {
    if doc.get("kind").and_then(Value::as_str) != Some("Config") {
        return Vec::new();
    }
    let mut excluded = Vec::new();
    for m in doc
        .pointer("/spec/match")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let processes: Vec<&str> = m
            .get("processes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if processes.iter().any(|p| *p == "*" || *p == process) {
            excluded.extend(
                m.get("excludedNamespaces")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            );
        }
    }
    excluded
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gatekeeper_config_and_syncset() {
        let config = json!({"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
            "metadata": {"name": "config", "namespace": "gatekeeper-system"},
            "spec": {"sync": {"syncOnly": [
                {"group": "", "version": "v1", "kind": "Namespace"},
                {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"}]},
              "match": [{"excludedNamespaces": ["kube-*"], "processes": ["*"]},
                        {"excludedNamespaces": ["audit-only"], "processes": ["audit"]}]}});
        let (kinds, excluded) = gatekeeper_sync(&config).unwrap();
        assert_eq!(kinds.len(), 2);
        assert_eq!(kinds[0].group, "");
        assert_eq!(kinds[1].kind, "Ingress");
        assert_eq!(excluded, vec!["kube-*"]);
        assert_eq!(excluded_for(&config, "audit"), vec!["kube-*", "audit-only"]);
        let set = json!({"apiVersion": "syncset.gatekeeper.sh/v1alpha1", "kind": "SyncSet",
            "metadata": {"name": "s"}, "spec": {"gvks": [{"group": "apps", "version": "v1", "kind": "Deployment"}]}});
        assert_eq!(gatekeeper_sync(&set).unwrap().0[0].kind, "Deployment");
        let bad = json!({"kind": "SyncSet", "spec": {"gvks": [{"group": "apps"}]}});
        assert!(gatekeeper_sync(&bad).unwrap_err().contains("entry 0"));
    }
}
