//! The closed world's other writers: besides Git and the API server, who may put a field into
//! an object that Git holds, and exactly which fields.
//!
//! - [`Stamps`]: the GitOps controller's tracking stamps (`provenance.controllerStamps`): label
//!   and annotation keys that say which controller and which source applied the object. Exact
//!   keys by default (Flux's `kustomize.toolkit.fluxcd.io/name` and `/namespace`,
//!   helm-controller's `helm.toolkit.fluxcd.io/name` and `/namespace`, Helm's release
//!   annotations and `app.kubernetes.io/managed-by=Helm`, Argo CD's
//!   `argocd.argoproj.io/tracking-id` and `installation-id` and its tracking label
//!   `app.kubernetes.io/instance`); prefixes when configured. A controller's **control keys**
//!   ([`CONTROL_KEYS`]: `kustomize.toolkit.fluxcd.io/reconcile`,
//!   `argocd.argoproj.io/sync-options`, ...) change what the controller does with the object,
//!   so they are never stamps, whatever the configuration says: one that Git does not set is
//!   drift.
//! - [`Allowance`]: a configured mutation allowance (`provenance.mutations`): paths of some
//!   kinds that a named mutating webhook or operator writes (an injected sidecar, a CA bundle,
//!   replicas set by an autoscaler). A path under an allowance is not compared at all.

use serde_json::Value;

use super::path::{Pattern, Seg};

/// Keys through which Flux and Argo CD are told what to do with an object: drift when Git does
/// not set them, even under a configured stamp prefix. (Prefixes are literal; a key is a
/// control key when it is one of these.)
pub const CONTROL_KEYS: &[&str] = &[
    // Flux kustomize-controller and helm-controller.
    "kustomize.toolkit.fluxcd.io/reconcile",
    "kustomize.toolkit.fluxcd.io/prune",
    "kustomize.toolkit.fluxcd.io/ssa",
    "kustomize.toolkit.fluxcd.io/force",
    "kustomize.toolkit.fluxcd.io/substitute",
    "kustomize.toolkit.fluxcd.io/decryption",
    "helm.toolkit.fluxcd.io/driftDetection",
    "helm.toolkit.fluxcd.io/reconcile",
    "reconcile.fluxcd.io/requestedAt",
    "reconcile.fluxcd.io/forceAt",
    "reconcile.fluxcd.io/resetAt",
    "fluxcd.io/ignore",
    // Argo CD.
    "argocd.argoproj.io/sync-options",
    "argocd.argoproj.io/compare-options",
    "argocd.argoproj.io/sync-wave",
    "argocd.argoproj.io/hook",
    "argocd.argoproj.io/hook-delete-policy",
    "argocd.argoproj.io/refresh",
    "argocd.argoproj.io/skip-reconcile",
    "argocd.argoproj.io/manifest-generate-paths",
    "argocd.argoproj.io/managed-by",
    "argocd.argoproj.io/secret-type",
    "argocd.argoproj.io/application-set-refresh",
];

/// Whether `key` is a known control key of a GitOps controller.
pub fn is_control_key(key: &str) -> bool {
    CONTROL_KEYS.contains(&key)
}

/// Argo CD's tracking annotation, whose value begins with the application's name.
const ARGO_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
/// Argo CD's tracking label (label tracking, its default before 3.0).
const ARGO_INSTANCE: &str = "app.kubernetes.io/instance";

/// The tracking stamps a GitOps controller may add to the object's own labels and annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamps {
    /// Exact label keys; `key=value` also fixes the value.
    pub labels: Vec<String>,
    pub annotations: Vec<String>,
    /// Key prefixes (end them with `/`); control keys are never stamps.
    pub label_prefixes: Vec<String>,
    pub annotation_prefixes: Vec<String>,
}

impl From<&crate::config::ControllerStamps> for Stamps {
    fn from(c: &crate::config::ControllerStamps) -> Self {
        Stamps {
            labels: c.labels.clone(),
            annotations: c.annotations.clone(),
            label_prefixes: c.label_prefixes.clone(),
            annotation_prefixes: c.annotation_prefixes.clone(),
        }
    }
}

impl Stamps {
    /// Whether `value` at `path` (Git silent there) is a tracking stamp: a label or annotation
    /// of the object's own metadata (never a pod template's) whose key is listed or under a
    /// prefix, and is no control key.
    pub fn explains(&self, path: &[Seg], value: &Value, root: &Value) -> bool {
        let [Seg::Field(m), Seg::Field(map), Seg::Field(key)] = path else {
            return false;
        };
        if m != "metadata" || is_control_key(key) {
            return false;
        }
        let (exact, prefixes) = match map.as_ref() {
            "labels" => (&self.labels, &self.label_prefixes),
            "annotations" => (&self.annotations, &self.annotation_prefixes),
            _ => return false,
        };
        let listed = exact.iter().any(|entry| match entry.split_once('=') {
            Some((k, v)) => k == key && value.as_str() == Some(v),
            None => entry == key,
        });
        if !listed && !prefixes.iter().any(|p| key.starts_with(p.as_str())) {
            return false;
        }
        // With both Argo CD stamps on the object, the label must name the tracked application.
        if map == "labels" && key == ARGO_INSTANCE {
            let tracked = root
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(ARGO_TRACKING_ID))
                .and_then(Value::as_str)
                .and_then(|id| id.split_once(':'))
                .map(|(app, _)| app);
            if let Some(app) = tracked {
                return value.as_str() == Some(app);
            }
        }
        true
    }
}

/// One configured mutation allowance, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// Kind names (`Pod`, `Deployment`); `*` for every kind.
    pub kinds: Vec<String>,
    pub paths: Vec<Pattern>,
    /// Who writes these paths (for people reading the configuration and the verdicts).
    pub by: Option<String>,
}

impl Allowance {
    /// The allowance of a configuration entry; `Err` names the path that does not parse.
    pub fn parse(m: &crate::config::Mutation) -> Result<Allowance, String> {
        Ok(Allowance {
            kinds: m.kinds.clone(),
            paths: m
                .paths
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<_, _>>()?,
            by: m.by.clone(),
        })
    }

    /// Whether it applies to objects of `kind`.
    pub fn applies_to(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == "*" || k == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::borrow::Cow;

    fn label(key: &'static str) -> Vec<Seg<'static>> {
        vec![
            Seg::Field(Cow::Borrowed("metadata")),
            Seg::Field(Cow::Borrowed("labels")),
            Seg::Field(Cow::Borrowed(key)),
        ]
    }

    #[test]
    fn control_keys_are_never_stamps() {
        let stamps = Stamps {
            labels: vec!["kustomize.toolkit.fluxcd.io/name".into()],
            label_prefixes: vec!["kustomize.toolkit.fluxcd.io/".into()],
            ..Stamps::default()
        };
        let root = json!({});
        assert!(stamps.explains(
            &label("kustomize.toolkit.fluxcd.io/name"),
            &json!("apps"),
            &root
        ));
        assert!(stamps.explains(
            &label("kustomize.toolkit.fluxcd.io/namespace"),
            &json!("flux-system"),
            &root
        ));
        assert!(!stamps.explains(
            &label("kustomize.toolkit.fluxcd.io/reconcile"),
            &json!("disabled"),
            &root
        ));
        assert!(!stamps.explains(
            &label("kustomize.toolkit.fluxcd.io.evil/name"),
            &json!("x"),
            &root
        ));
    }

    #[test]
    fn fixed_values_and_the_argo_instance_label() {
        let stamps = Stamps {
            labels: vec![
                "app.kubernetes.io/managed-by=Helm".into(),
                "app.kubernetes.io/instance".into(),
            ],
            ..Stamps::default()
        };
        let root = json!({});
        assert!(stamps.explains(
            &label("app.kubernetes.io/managed-by"),
            &json!("Helm"),
            &root
        ));
        assert!(!stamps.explains(&label("app.kubernetes.io/managed-by"), &json!("me"), &root));
        assert!(stamps.explains(&label("app.kubernetes.io/instance"), &json!("shop"), &root));
        let tracked = json!({"metadata": {"annotations": {
            "argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}}});
        assert!(stamps.explains(
            &label("app.kubernetes.io/instance"),
            &json!("shop"),
            &tracked
        ));
        assert!(!stamps.explains(
            &label("app.kubernetes.io/instance"),
            &json!("pay"),
            &tracked
        ));
    }
}
