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

use super::matching::{ExpectedStamps, Writer};
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

/// What a stamp's value is known to be.
enum Known {
    /// The value is what the controller writes (or is not).
    Value(bool),
    /// Git does not say.
    Unknown,
}

impl Stamps {
    /// The label or annotation key of a tracking stamp at `path`: a key of the object's own
    /// metadata (never a pod template's) that is listed or under a prefix, and is no control
    /// key. Returns (`labels` or `annotations`, key).
    pub fn stamp_key<'p>(&self, path: &'p [Seg]) -> Option<(&'p str, &'p str)> {
        let [Seg::Field(m), Seg::Field(map), Seg::Field(key)] = path else {
            return None;
        };
        if m != "metadata" || is_control_key(key) {
            return None;
        }
        let (exact, prefixes) = match map.as_ref() {
            "labels" => (&self.labels, &self.label_prefixes),
            "annotations" => (&self.annotations, &self.annotation_prefixes),
            _ => return None,
        };
        let listed = exact
            .iter()
            .any(|entry| entry.split_once('=').map_or(entry.as_str(), |(k, _)| k) == key);
        (listed || prefixes.iter().any(|p| key.starts_with(p.as_str())))
            .then_some((map.as_ref(), key.as_ref()))
    }

    /// Whether `value` at `path` (Git silent there) is a tracking stamp the GitOps controller
    /// wrote ([`Stamps::stamp_key`]), judged exactly:
    /// - its value must be the one the controller writes for this object where that is known
    ///   (a `key=value` entry; Argo CD's instance label is the application its tracking id
    ///   names; the tracking id names this object; Flux's labels name the Kustomization that
    ///   applies it, [`ExpectedStamps`]);
    /// - a value known not to be the controller's is never explained;
    /// - at UPDATE an unchanged stamp stays explained; a stamp added or changed is explained
    ///   only when the GitOps controller's identity writes it ([`Writer::Controller`]);
    /// - at CREATE anyone else may only carry a stamp whose value is known to be the
    ///   controller's. Where the writer is not known (an audit), the value alone decides.
    #[allow(clippy::too_many_arguments)]
    pub fn explains(
        &self,
        path: &[Seg],
        value: &Value,
        old: Option<&Value>,
        update: bool,
        root: &Value,
        writer: Writer,
        expected: Option<&ExpectedStamps>,
    ) -> bool {
        let Some((map, key)) = self.stamp_key(path) else {
            return false;
        };
        // A value known not to be the controller's is never explained, unchanged or not: a
        // wrong stamp that got on once (break-glass, before gitgate) would otherwise pass
        // every later UPDATE and the audit.
        let known = self.known(map, key, value, root, expected);
        if matches!(known, Known::Value(false)) {
            return false;
        }
        if update && old.is_some_and(|o| o == value) {
            return true;
        }
        match writer {
            Writer::Controller | Writer::Unknown => true,
            Writer::Other => !update && matches!(known, Known::Value(true)),
        }
    }

    /// Whether `value` is known to be what the controller writes for this object.
    fn known(
        &self,
        map: &str,
        key: &str,
        value: &Value,
        root: &Value,
        expected: Option<&ExpectedStamps>,
    ) -> Known {
        let exact = if map == "labels" {
            &self.labels
        } else {
            &self.annotations
        };
        if let Some(fixed) = exact.iter().find_map(|entry| {
            entry
                .split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v)
        }) {
            return Known::Value(value.as_str() == Some(fixed));
        }
        let text = value.as_str();
        let is = |want: &str| Known::Value(text == Some(want));
        let tracking_app = || {
            root.pointer("/metadata/annotations")
                .and_then(|a| a.get(ARGO_TRACKING_ID))
                .and_then(Value::as_str)
                .and_then(|id| id.split_once(':'))
                .map(|(app, _)| app.to_string())
        };
        match (map, key) {
            ("labels", FLUX_NAME) => match expected.and_then(|e| e.flux.as_ref()) {
                Some((name, _)) => is(name),
                None => Known::Unknown,
            },
            ("labels", FLUX_NAMESPACE) => match expected.and_then(|e| e.flux.as_ref()) {
                Some((_, namespace)) => is(namespace),
                None => Known::Unknown,
            },
            ("labels", ARGO_INSTANCE) => {
                match expected
                    .and_then(|e| e.argo_app.clone())
                    .or_else(tracking_app)
                {
                    Some(app) => is(&app),
                    None => Known::Unknown,
                }
            }
            ("annotations", ARGO_TRACKING_ID) => {
                let Some((app, rest)) = text.and_then(|t| t.split_once(':')) else {
                    return Known::Value(false);
                };
                if rest != tracking_id_of(root) {
                    return Known::Value(false);
                }
                match expected.and_then(|e| e.argo_app.as_deref()) {
                    Some(want) => Known::Value(app == want),
                    None => Known::Unknown,
                }
            }
            _ => Known::Unknown,
        }
    }
}

/// Flux's tracking labels.
const FLUX_NAME: &str = "kustomize.toolkit.fluxcd.io/name";
const FLUX_NAMESPACE: &str = "kustomize.toolkit.fluxcd.io/namespace";

/// What follows the application's name in Argo CD's tracking id of `object`:
/// `<group>/<kind>:<namespace>/<name>` (the group empty for the core group, the namespace
/// for a cluster-scoped object).
fn tracking_id_of(object: &Value) -> String {
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
    let group = text("/apiVersion").rsplit_once('/').map_or("", |(g, _)| g);
    format!(
        "{group}/{}:{}/{}",
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name")
    )
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
            None,
            false,
            &root,
            Writer::Unknown,
            None
        ));
        assert!(stamps.explains(
            &label("kustomize.toolkit.fluxcd.io/namespace"),
            &json!("flux-system"),
            None,
            false,
            &root,
            Writer::Unknown,
            None
        ));
        assert!(!stamps.explains(
            &label("kustomize.toolkit.fluxcd.io/reconcile"),
            &json!("disabled"),
            None,
            false,
            &root,
            Writer::Unknown,
            None
        ));
        assert!(!stamps.explains(
            &label("kustomize.toolkit.fluxcd.io.evil/name"),
            &json!("x"),
            None,
            false,
            &root,
            Writer::Unknown,
            None
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
            None,
            false,
            &root,
            Writer::Unknown,
            None
        ));
        assert!(!stamps.explains(
            &label("app.kubernetes.io/managed-by"),
            &json!("me"),
            None,
            false,
            &root,
            Writer::Unknown,
            None
        ));
        assert!(stamps.explains(
            &label("app.kubernetes.io/instance"),
            &json!("shop"),
            None,
            false,
            &root,
            Writer::Unknown,
            None
        ));
        let tracked = json!({"metadata": {"annotations": {
            "argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}}});
        assert!(stamps.explains(
            &label("app.kubernetes.io/instance"),
            &json!("shop"),
            None,
            false,
            &tracked,
            Writer::Unknown,
            None
        ));
        assert!(!stamps.explains(
            &label("app.kubernetes.io/instance"),
            &json!("pay"),
            None,
            false,
            &tracked,
            Writer::Unknown,
            None
        ));
    }

    #[test]
    fn a_stamp_is_added_or_changed_by_the_controller_only() {
        let stamps = Stamps::from(&crate::config::ControllerStamps::default());
        let root = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}});
        let path = label("app.kubernetes.io/instance");
        let v = json!("payments");
        // Added at UPDATE by a hand: drift; by the controller: a stamp.
        assert!(!stamps.explains(&path, &v, None, true, &root, Writer::Other, None));
        assert!(stamps.explains(&path, &v, None, true, &root, Writer::Controller, None));
        // Changed by a hand.
        let old = json!("shop");
        assert!(!stamps.explains(&path, &v, Some(&old), true, &root, Writer::Other, None));
        // Unchanged: still explained.
        assert!(stamps.explains(&path, &v, Some(&v), true, &root, Writer::Other, None));
        // At CREATE by a hand, with a value nothing says is the controller's.
        assert!(!stamps.explains(&path, &v, None, false, &root, Writer::Other, None));
        // The expected application: only its name.
        let expected = ExpectedStamps {
            argo_app: Some("shop".into()),
            ..ExpectedStamps::default()
        };
        assert!(!stamps.explains(
            &path,
            &v,
            None,
            false,
            &root,
            Writer::Controller,
            Some(&expected)
        ));
        assert!(stamps.explains(
            &path,
            &old,
            None,
            false,
            &root,
            Writer::Controller,
            Some(&expected)
        ));
        assert!(stamps.explains(
            &path,
            &old,
            None,
            false,
            &root,
            Writer::Other,
            Some(&expected)
        ));
    }

    #[test]
    fn a_wrong_stamp_is_not_explained_by_being_unchanged() {
        let stamps = Stamps::from(&crate::config::ControllerStamps::default());
        let root = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"}});
        let path = label("app.kubernetes.io/managed-by");
        let evil = json!("Evil");
        assert!(!stamps.explains(&path, &evil, None, false, &root, Writer::Other, None));
        // The same value, unchanged by an UPDATE: still not the controller's.
        for writer in [Writer::Other, Writer::Controller, Writer::Unknown] {
            assert!(!stamps.explains(&path, &evil, Some(&evil), true, &root, writer, None));
        }
        let helm = json!("Helm");
        assert!(stamps.explains(&path, &helm, Some(&helm), true, &root, Writer::Other, None));
    }

    #[test]
    fn the_tracking_id_names_this_object() {
        let stamps = Stamps::from(&crate::config::ControllerStamps::default());
        let root = json!({"kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "namespace": "shop"}});
        let path = vec![
            Seg::Field(Cow::Borrowed("metadata")),
            Seg::Field(Cow::Borrowed("annotations")),
            Seg::Field(Cow::Borrowed("argocd.argoproj.io/tracking-id")),
        ];
        let good = json!("shop:apps/Deployment:shop/web");
        let other = json!("shop:apps/Deployment:shop/api");
        assert!(stamps.explains(&path, &good, None, false, &root, Writer::Controller, None));
        assert!(!stamps.explains(&path, &other, None, false, &root, Writer::Controller, None));
    }
}
