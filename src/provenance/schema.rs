//! What the traceability match needs to know about the shape of Kubernetes' built-in types, in
//! one place: how lists merge, which fields are quantities, which metadata the API server owns,
//! where a Git zero means absence. (What the API server fills in is [`super::defaults`].)
//! Everything here is keyed by the object's kind and a [`Seg`] path, and everything errs on the
//! side of *reporting*: a field this file does not know is compared exactly and, when only the
//! object has it, listed as unattested. Nothing here can make a differing Git-set value look
//! equal.

use serde_json::Value;

use super::path::{Seg, ends_with, is};

/// How the items of a list are matched between Git and the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// By merge key (Kubernetes' `patchMergeKey` / `listMapKeys`); a key field the item leaves
    /// out has the default given (a port's `protocol` is `TCP`).
    Keyed(&'static [(&'static str, Option<&'static str>)]),
    /// Unordered, by whole value: every Git item must be in the object; the object may hold
    /// more (the API server's admission plugins add tolerations and finalizers).
    Set,
    /// Git's items must begin the object's list (a Service's `ipFamilies` / `clusterIPs`: the
    /// API server appends the second family of a dual-stack Service).
    Prefix,
    /// The list is one value (`args`, `command`, RBAC `rules`): item by position, same length.
    Atomic,
}

const NAME: &[(&str, Option<&str>)] = &[("name", None)];
const CONTAINER_LISTS: &str = "containers|initContainers|ephemeralContainers";

/// The list kind of the list at `path` (the path of the list itself).
pub fn list_kind(kind: &str, path: &[Seg]) -> ListKind {
    let Some(field) = path.last().and_then(Seg::field) else {
        return ListKind::Atomic;
    };
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => ListKind::Keyed(NAME),
        "volumeMounts" => ListKind::Keyed(&[("mountPath", None)]),
        "volumeDevices" => ListKind::Keyed(&[("devicePath", None)]),
        "hostAliases" => ListKind::Keyed(&[("ip", None)]),
        "topologySpreadConstraints" => {
            ListKind::Keyed(&[("topologyKey", None), ("whenUnsatisfiable", None)])
        }
        "ownerReferences" if is(path, &["metadata", "ownerReferences"]) => {
            ListKind::Keyed(&[("uid", None)])
        }
        "claims" if ends_with(path, &["resources", "claims"]) => ListKind::Keyed(NAME),
        "webhooks"
            if matches!(
                kind,
                "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
            ) =>
        {
            ListKind::Keyed(NAME)
        }
        "ports" if ends_with(path, &[CONTAINER_LISTS, "[]", "ports"]) => {
            ListKind::Keyed(&[("containerPort", None), ("protocol", Some("TCP"))])
        }
        "ports" if kind == "Service" && is(path, &["spec", "ports"]) => {
            ListKind::Keyed(&[("port", None), ("protocol", Some("TCP"))])
        }
        "tolerations" => ListKind::Set,
        "finalizers" if path.len() == 2 => ListKind::Set,
        "ipFamilies" | "clusterIPs" if kind == "Service" && path.len() == 2 => ListKind::Prefix,
        _ => ListKind::Atomic,
    }
}

/// Whether the value at `path` is a `resource.Quantity`, so that it compares in canonical form.
///
/// Decided by path, not by "does it parse as a quantity": many strings parse as quantities
/// (`"1.0"`, `"1e3"`, a ConfigMap value `"10"`), and treating a ConfigMap's `VERSION: "1.0"` →
/// `"1"` as equal would miss a real edit. The locations are those of the core types:
/// `ResourceRequirements` anywhere (containers, pod-level resources, PVCs and claim templates,
/// and pod specs embedded in custom resources), `emptyDir.sizeLimit`, pod `overhead`,
/// RuntimeClass `overhead.podFixed`, ResourceQuota `spec.hard`, LimitRange `spec.limits[]`,
/// PersistentVolume `spec.capacity`, CSIStorageCapacity `capacity` / `maximumVolumeSize`.
pub fn is_quantity(kind: &str, path: &[Seg]) -> bool {
    ends_with(path, &["resources", "limits|requests", "*"])
        || ends_with(path, &["emptyDir", "sizeLimit"])
        || ends_with(path, &["overhead", "*"])
        || ends_with(path, &["overhead", "podFixed", "*"])
        || (kind == "ResourceQuota" && is(path, &["spec", "hard", "*"]))
        || (kind == "LimitRange"
            && is(
                path,
                &[
                    "spec",
                    "limits",
                    "[]",
                    "max|min|default|defaultRequest|maxLimitRequestRatio",
                    "*",
                ],
            ))
        || (kind == "PersistentVolume" && is(path, &["spec", "capacity", "*"]))
        || (kind == "CSIStorageCapacity" && is(path, &["capacity|maximumVolumeSize"]))
}

/// Annotations the API server or a built-in controller writes itself (never in Git).
const SERVER_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deprecated.daemonset.template.generation",
];

/// Object metadata the API server owns.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Whether a Git field is skipped: the API server ignores or overwrites it (`status`, server
/// metadata in a manifest saved with `kubectl get -o yaml`, a stray last-applied annotation),
/// or it is identity that the caller has already matched (`apiVersion`, `kind`).
pub fn git_skips(path: &[Seg]) -> bool {
    is(path, &["apiVersion|kind|status"])
        || SERVER_METADATA.iter().any(|f| is(path, &["metadata", f]))
        || is_annotation(path, SERVER_ANNOTATIONS[0])
        || is(path, &["spec", "volumeClaimTemplates", "[]", "status"])
}

fn is_annotation(path: &[Seg], name: &str) -> bool {
    is(path, &["metadata", "annotations", "*"]) && path[2].field() == Some(name)
}

/// Whether a field the object carries and Git does not is simply not part of the match:
/// identity, `status`, server-owned metadata and the annotations the API server or kubectl
/// write themselves (the last-applied configuration, a Deployment's revision).
pub fn server_owned(path: &[Seg]) -> bool {
    if is(path, &["apiVersion|kind|status"])
        || is(path, &["metadata", "name|namespace|generateName"])
        || SERVER_METADATA.iter().any(|f| is(path, &["metadata", f]))
        || is(path, &["spec", "volumeClaimTemplates", "[]", "status"])
    {
        return true;
    }
    if is(path, &["metadata", "annotations", "*"]) {
        let key = path[2].field().unwrap_or_default();
        return SERVER_ANNOTATIONS.contains(&key);
    }
    false
}

/// Whether a map entry the object has and Git does not can only have been written by hand:
/// labels and annotations (at any level: the object's, a pod template's) and the data of a
/// ConfigMap or Secret. No API-server default ever adds one.
pub fn never_defaulted(kind: &str, path: &[Seg]) -> bool {
    ends_with(path, &["metadata", "labels|annotations", "*"])
        || (matches!(kind, "ConfigMap" | "Secret")
            && is(path, &["data|binaryData|stringData", "*"]))
}

/// Whether a Git zero value (`false`, `0`, `""`) equals the field's absence in the object.
///
/// Go's JSON encoder leaves out the zero value of an `omitempty` field, so `hostNetwork: false`
/// or `subPath: ""` in Git comes back absent. The exceptions are pointer fields whose absence
/// means something other than zero and that no default fills in (absent
/// `automountServiceAccountToken`, `allowPrivilegeEscalation` and `hostUsers` mean true,
/// absent `storageClassName` the default class, absent `replicas` 1, a PodDisruptionBudget
/// without `maxUnavailable`/`minAvailable` lets every eviction through, a pod template without
/// `enableServiceLinks` gets service links, a Job without `ttlSecondsAfterFinished` is never
/// cleaned up, absent `runAsUser`/`runAsGroup`/`fsGroup` are the image's): there the object
/// must hold Git's zero. (A defaulted pointer field, `backoffLimit`, arrives defaulted, not
/// absent; a custom resource, and at UPDATE a zero the old object held, are the walker's.)
pub fn zero_is_absence(path: &[Seg], git: &Value) -> bool {
    let zero = match git {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    zero && !matches!(
        path.last().and_then(Seg::field),
        Some(
            "automountServiceAccountToken"
                | "allowPrivilegeEscalation"
                | "hostUsers"
                | "storageClassName"
                | "replicas"
                | "maxUnavailable"
                | "minAvailable"
                | "enableServiceLinks"
                | "ttlSecondsAfterFinished"
                | "startingDeadlineSeconds"
                | "activeDeadlineSeconds"
                | "runAsUser"
                | "runAsGroup"
                | "fsGroup"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(fields: &[&str]) -> Vec<Seg<'static>> {
        fields
            .iter()
            .map(|f| Seg::Field(f.to_string().into()))
            .collect()
    }

    #[test]
    fn quantity_fields() {
        assert!(is_quantity(
            "Deployment",
            &p(&[
                "spec",
                "template",
                "spec",
                "containers",
                "x",
                "resources",
                "limits",
                "cpu"
            ])
        ));
        assert!(is_quantity(
            "ResourceQuota",
            &p(&["spec", "hard", "requests.cpu"])
        ));
        assert!(!is_quantity("ConfigMap", &p(&["data", "VERSION"])));
        assert!(!is_quantity("ConfigMap", &p(&["spec", "hard", "x"])));
    }

    #[test]
    fn zero_values() {
        assert!(zero_is_absence(&p(&["spec", "hostNetwork"]), &json!(false)));
        assert!(zero_is_absence(&p(&["subPath"]), &json!("")));
        assert!(!zero_is_absence(
            &p(&["spec", "automountServiceAccountToken"]),
            &json!(false)
        ));
        assert!(!zero_is_absence(&p(&["spec", "hostNetwork"]), &json!(true)));
    }
}
