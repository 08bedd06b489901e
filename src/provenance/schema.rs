//! What the traceability match needs to know about Kubernetes' built-in types, in one place:
//! how lists merge, which fields are quantities, what the API server owns or fills in, and which
//! fields matter for security. Everything here is keyed by the object's kind and a [`Seg`] path,
//! and everything errs on the side of *reporting*: a field this file does not know is compared
//! exactly and, when only the object has it, listed as unattested. Nothing here can make a
//! differing Git-set value look equal.

use serde_json::{Value, json};

use super::matching::same_value;
use super::path::{Seg, ends_with, is, resolve, strip};

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

/// Whether a field is a file mode (`defaultMode`, `items[].mode`), where YAML's octal `0644`
/// needs care: Go's YAML 1.1 reads it as 420, serde-saphyr as 644.
pub fn is_file_mode(path: &[Seg]) -> bool {
    matches!(
        path.last().and_then(Seg::field),
        Some("defaultMode" | "mode")
    )
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
/// identity, `status`, server-owned metadata, the API server's own labels and annotations,
/// and the configured controller stamps (label and annotation prefixes, on the object's own
/// metadata: that is where Flux and Argo CD put them).
pub fn server_owned(
    kind: &str,
    path: &[Seg],
    label_prefixes: &[String],
    annotation_prefixes: &[String],
) -> bool {
    if is(path, &["apiVersion|kind|status"])
        || is(path, &["metadata", "name|namespace|generateName"])
        || SERVER_METADATA.iter().any(|f| is(path, &["metadata", f]))
        || is(path, &["spec", "volumeClaimTemplates", "[]", "status"])
    {
        return true;
    }
    if is(path, &["metadata", "annotations", "*"]) {
        let key = path[2].field().unwrap_or_default();
        return SERVER_ANNOTATIONS.contains(&key)
            || annotation_prefixes
                .iter()
                .any(|p| key.starts_with(p.as_str()));
    }
    if is(path, &["metadata", "labels", "*"]) {
        let key = path[2].field().unwrap_or_default();
        return (kind == "Namespace" && key == "kubernetes.io/metadata.name")
            || label_prefixes.iter().any(|p| key.starts_with(p.as_str()));
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

/// Where the pod spec of a workload kind lives.
pub fn pod_spec_prefix(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => Some(&["spec", "template", "spec"]),
        "PodTemplate" => Some(&["template", "spec"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// How a value the object carries and Git does not can be the API server's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defaulted {
    /// The value the API server (defaulting, an admission plugin) writes there when the field is
    /// absent. The object is then exactly what applying Git produces, whether or not the value
    /// was typed by hand; and at UPDATE, a change to it is what happens when Git drops the field
    /// (kubectl and server-side apply remove it and the API server defaults it again).
    Exact,
    /// A value the API server allocates or derives (a Service's cluster IP, a node port, a pod's
    /// priority, the service-account token volume). Any value is the API server's at CREATE; at
    /// UPDATE only a newly allocated one is (a changed allocation is drift).
    Allocated,
}

/// Whether `value` at `path` of the object `root` is the API server's default there.
///
/// Only exact (path, value) pairs are listed, and no security-relevant field has a default, so a
/// missing entry only makes the unattested list longer.
pub fn default_at(kind: &str, path: &[Seg], value: &Value, root: &Value) -> Option<Defaulted> {
    let exact = |want: Value| same_value(value, &want).then_some(Defaulted::Exact);
    if let Some(prefix) = pod_spec_prefix(kind)
        && let Some(rest) = strip(path, prefix)
        && let Some(d) = pod_spec_default(kind == "Pod", rest, path, value, root)
    {
        return Some(d);
    }
    let sibling = |name: &str| -> Option<&Value> {
        let parent = resolve(root, &path[..path.len() - 1], &key_default)?;
        parent.get(name)
    };
    match kind {
        "Deployment" => {
            if is(path, &["spec", "replicas"]) {
                return exact(json!(1));
            }
            if is(path, &["spec", "revisionHistoryLimit"]) {
                return exact(json!(10));
            }
            if is(path, &["spec", "progressDeadlineSeconds"]) {
                return exact(json!(600));
            }
            if is(path, &["spec", "strategy", "type"]) {
                return exact(json!("RollingUpdate"));
            }
            if is(
                path,
                &[
                    "spec",
                    "strategy",
                    "rollingUpdate",
                    "maxUnavailable|maxSurge",
                ],
            ) {
                return exact(json!("25%"));
            }
        }
        "ReplicaSet" | "ReplicationController"
            if is(path, &["spec", "replicas"]) => {
                return exact(json!(1));
            }
        "StatefulSet" => {
            if is(path, &["spec", "replicas"]) {
                return exact(json!(1));
            }
            if is(path, &["spec", "revisionHistoryLimit"]) {
                return exact(json!(10));
            }
            if is(path, &["spec", "podManagementPolicy"]) {
                return exact(json!("OrderedReady"));
            }
            if is(path, &["spec", "updateStrategy", "type"]) {
                return exact(json!("RollingUpdate"));
            }
            if is(
                path,
                &["spec", "updateStrategy", "rollingUpdate", "partition"],
            ) {
                return exact(json!(0));
            }
            if is(
                path,
                &[
                    "spec",
                    "persistentVolumeClaimRetentionPolicy",
                    "whenDeleted|whenScaled",
                ],
            ) {
                return exact(json!("Retain"));
            }
            if is(
                path,
                &["spec", "volumeClaimTemplates", "[]", "spec", "volumeMode"],
            ) {
                return exact(json!("Filesystem"));
            }
            // Written into each claim template by the API server.
            if is(path, &["spec", "volumeClaimTemplates", "[]", "apiVersion"]) {
                return exact(json!("v1"));
            }
            if is(path, &["spec", "volumeClaimTemplates", "[]", "kind"]) {
                return exact(json!("PersistentVolumeClaim"));
            }
        }
        "DaemonSet" => {
            if is(path, &["spec", "revisionHistoryLimit"]) {
                return exact(json!(10));
            }
            if is(path, &["spec", "updateStrategy", "type"]) {
                return exact(json!("RollingUpdate"));
            }
            if is(
                path,
                &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
            ) {
                return exact(json!(1));
            }
            if is(
                path,
                &["spec", "updateStrategy", "rollingUpdate", "maxSurge"],
            ) {
                return exact(json!(0));
            }
        }
        "Job" => {
            for (field, want) in [
                ("completions", json!(1)),
                ("parallelism", json!(1)),
                ("completionMode", json!("NonIndexed")),
                ("suspend", json!(false)),
                ("manualSelector", json!(false)),
            ] {
                if is(path, &["spec", field]) {
                    return exact(want);
                }
            }
            // With a per-index backoff limit, the overall one is unlimited (SetDefaults_Job).
            if is(path, &["spec", "backoffLimit"]) {
                let per_index = sibling("backoffLimitPerIndex").is_some_and(|v| !v.is_null());
                return exact(json!(if per_index { i32::MAX } else { 6 }));
            }
            // `Failed` when a pod failure policy is set (SetDefaults_Job).
            if is(path, &["spec", "podReplacementPolicy"]) {
                let failure_policy = sibling("podFailurePolicy").is_some_and(|p| !p.is_null());
                return exact(json!(if failure_policy { "Failed" } else { "TerminatingOrFailed" }));
            }
            // The Job strategy generates the selector and the pod template's labels (legacy
            // and `batch.kubernetes.io/`), with the Job's own name and uid; the Job's labels
            // get them too when they are the template's (SetDefaults_Job shares the map).
            const JOB_LABELS: &[(&str, &str)] = &[
                ("controller-uid", "/metadata/uid"),
                ("job-name", "/metadata/name"),
                ("batch.kubernetes.io/controller-uid", "/metadata/uid"),
                ("batch.kubernetes.io/job-name", "/metadata/name"),
            ];
            if is(path, &["spec", "selector", "matchLabels", "*"])
                || is(path, &["spec", "template", "metadata", "labels", "*"])
                || is(path, &["metadata", "labels", "*"])
            {
                let key = path.last().and_then(Seg::field)?;
                let (_, from) = JOB_LABELS.iter().find(|(label, _)| *label == key)?;
                return exact(root.pointer(from)?.clone());
            }
            // Written by API servers 1.23 to 1.26 when they tracked Jobs with finalizers.
            if is_annotation(path, "batch.kubernetes.io/job-tracking") {
                return exact(json!(""));
            }
        }
        "CronJob" => {
            for (field, want) in [
                ("concurrencyPolicy", json!("Allow")),
                ("suspend", json!(false)),
                ("successfulJobsHistoryLimit", json!(3)),
                ("failedJobsHistoryLimit", json!(1)),
            ] {
                if is(path, &["spec", field]) {
                    return exact(want);
                }
            }
        }
        "Service" => {
            if is(
                path,
                &[
                    "spec",
                    "clusterIP|clusterIPs|ipFamilies|healthCheckNodePort",
                ],
            ) || is(path, &["spec", "ports", "[]", "nodePort"])
            {
                return Some(Defaulted::Allocated);
            }
            for (field, want) in [
                ("type", json!("ClusterIP")),
                ("sessionAffinity", json!("None")),
                ("ipFamilyPolicy", json!("SingleStack")),
                ("internalTrafficPolicy", json!("Cluster")),
                ("externalTrafficPolicy", json!("Cluster")),
                ("allocateLoadBalancerNodePorts", json!(true)),
            ] {
                if is(path, &["spec", field]) {
                    return exact(want);
                }
            }
            if is(path, &["spec", "ports", "[]", "protocol"]) {
                return exact(json!("TCP"));
            }
            if is(path, &["spec", "ports", "[]", "targetPort"]) {
                return sibling("port").and_then(|p| exact(p.clone()));
            }
            if is(
                path,
                &[
                    "spec",
                    "sessionAffinityConfig",
                    "clientIP",
                    "timeoutSeconds",
                ],
            ) {
                return exact(json!(10800));
            }
        }
        "RoleBinding" | "ClusterRoleBinding"
            // SetDefaults_Subject: a User or Group subject's apiGroup.
            if is(path, &["subjects", "[]", "apiGroup"])
                && sibling("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k == "User" || k == "Group")
            => {
                return exact(json!("rbac.authorization.k8s.io"));
            }
        "Namespace"
            if is(path, &["spec", "finalizers", "[]"]) => {
                return exact(json!("kubernetes"));
            }
        "Secret"
            if is(path, &["type"]) => {
                return exact(json!("Opaque"));
            }
        "CustomResourceDefinition" => {
            if is(path, &["spec", "names", "listKind"]) {
                let kind = root.pointer("/spec/names/kind").and_then(Value::as_str)?;
                return exact(json!(format!("{kind}List")));
            }
            if is(path, &["spec", "conversion", "strategy"]) {
                return exact(json!("None"));
            }
        }
        "PersistentVolumeClaim"
            if is(path, &["spec", "volumeMode"]) => {
                return exact(json!("Filesystem"));
            }
        "NetworkPolicy" => {
            if is(path, &["spec", "policyTypes"]) {
                return Some(Defaulted::Allocated);
            }
            if is(
                path,
                &["spec", "ingress|egress", "[]", "ports", "[]", "protocol"],
            ) {
                return exact(json!("TCP"));
            }
        }
        _ => {}
    }
    None
}

/// The default of a merge-key field that an item may leave out.
pub fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| json!("TCP"))
}

/// Defaults inside a pod spec (`rest` is the path below it); `is_pod` for what only a Pod gets
/// (admission plugins: service account, default tolerations, priority).
fn pod_spec_default(
    is_pod: bool,
    rest: &[Seg],
    path: &[Seg],
    value: &Value,
    root: &Value,
) -> Option<Defaulted> {
    let exact = |want: Value| same_value(value, &want).then_some(Defaulted::Exact);
    let sibling = |name: &str| -> Option<&Value> {
        resolve(root, &path[..path.len() - 1], &key_default)?.get(name)
    };
    for (field, want) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
    ] {
        if is(rest, &[field]) {
            return exact(want);
        }
    }
    // `serviceAccount` is the deprecated copy of `serviceAccountName` that v1 always writes.
    if is(rest, &["serviceAccount"]) {
        return sibling("serviceAccountName").and_then(|v| exact(v.clone()));
    }
    if is_pod {
        if is(rest, &["serviceAccountName"]) {
            return exact(json!("default"));
        }
        if is(rest, &["enableServiceLinks"]) {
            return exact(json!(true));
        }
        if is(rest, &["preemptionPolicy"]) {
            return exact(json!("PreemptLowerPriority"));
        }
        if is(rest, &["priority"]) {
            // Set by the Priority admission plugin from priorityClassName; a pod that sets
            // another value is refused by it.
            return Some(Defaulted::Allocated);
        }
        if is(rest, &["tolerations", "[]"]) {
            // DefaultTolerationSeconds.
            for key in [
                "node.kubernetes.io/not-ready",
                "node.kubernetes.io/unreachable",
            ] {
                if same_value(
                    value,
                    &json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                            "tolerationSeconds": 300}),
                ) {
                    return Some(Defaulted::Exact);
                }
            }
        }
        if is(rest, &["volumes", "[]"]) && is_token_volume(value) {
            return Some(Defaulted::Allocated);
        }
        if is(rest, &[CONTAINER_LISTS, "[]", "volumeMounts", "[]"]) && is_token_mount(value) {
            return Some(Defaulted::Allocated);
        }
    }
    if let Some(c) = strip(rest, &[CONTAINER_LISTS, "[]"]) {
        for (field, want) in [
            ("terminationMessagePath", json!("/dev/termination-log")),
            ("terminationMessagePolicy", json!("File")),
            ("resources", json!({})),
        ] {
            if is(c, &[field]) {
                return exact(want);
            }
        }
        if is(c, &["imagePullPolicy"]) {
            let image = sibling("image").and_then(Value::as_str)?;
            return exact(json!(default_pull_policy(image)));
        }
        if is(c, &["ports", "[]", "protocol"]) {
            return exact(json!("TCP"));
        }
        let probe = "livenessProbe|readinessProbe|startupProbe";
        for (field, want) in [
            ("timeoutSeconds", json!(1)),
            ("periodSeconds", json!(10)),
            ("successThreshold", json!(1)),
            ("failureThreshold", json!(3)),
        ] {
            if is(c, &[probe, field]) {
                return exact(want);
            }
        }
        if is(c, &[probe, "httpGet", "scheme"])
            || is(c, &["lifecycle", "postStart|preStop", "httpGet", "scheme"])
        {
            return exact(json!("HTTP"));
        }
        if is(c, &["env", "[]", "valueFrom", "fieldRef", "apiVersion"]) {
            return exact(json!("v1"));
        }
    }
    if is(
        rest,
        &[
            "volumes",
            "[]",
            "secret|configMap|projected|downwardAPI",
            "defaultMode",
        ],
    ) {
        return exact(json!(420));
    }
    if is(rest, &["volumes", "[]", "hostPath", "type"]) {
        return exact(json!(""));
    }
    if is(
        rest,
        &[
            "volumes",
            "[]",
            "downwardAPI",
            "items",
            "[]",
            "fieldRef",
            "apiVersion",
        ],
    ) || is(
        rest,
        &[
            "volumes",
            "[]",
            "projected",
            "sources",
            "[]",
            "downwardAPI",
            "items",
            "[]",
            "fieldRef",
            "apiVersion",
        ],
    ) {
        return exact(json!("v1"));
    }
    None
}

/// The kubelet's default pull policy, as the API server defaults it: `Always` for `:latest` or
/// an image with neither tag nor digest, `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

/// The projected service-account token volume the ServiceAccount admission plugin adds to a
/// Pod (`kube-api-access-xxxxx`), exactly as it writes it.
fn is_token_volume(item: &Value) -> bool {
    let Some(name) = item.get("name").and_then(Value::as_str) else {
        return false;
    };
    name.starts_with("kube-api-access-")
        && same_value(
            item,
            &json!({
                "name": name,
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt",
                                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                    ],
                    "defaultMode": 420
                }
            }),
        )
}

/// Its mount in each container.
fn is_token_mount(item: &Value) -> bool {
    let Some(name) = item.get("name").and_then(Value::as_str) else {
        return false;
    };
    name.starts_with("kube-api-access-")
        && same_value(
            item,
            &json!({"name": name, "readOnly": true,
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}),
        )
}

/// Whether a Git zero value (`false`, `0`, `""`) equals the field's absence in the object.
///
/// Go's JSON encoder leaves out the zero value of an `omitempty` field, so `hostNetwork: false`
/// or `subPath: ""` in Git comes back absent. The exceptions are pointer fields whose absence
/// means something other than zero (absent `automountServiceAccountToken` and
/// `allowPrivilegeEscalation` mean true, absent `hostUsers` means true, absent
/// `storageClassName` means the default class, absent `replicas` means 1): there the object
/// must hold Git's zero.
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
        )
    )
}

/// Whether an unattested value is one the built-in provenance policy refuses: no API-server
/// default ever sets it, and it widens what the workload can do on its node.
pub fn security_relevant(path: &[Seg], value: &Value) -> bool {
    let is_true = value == &Value::Bool(true);
    (ends_with(
        path,
        &["securityContext", "privileged|allowPrivilegeEscalation"],
    ) && is_true)
        || (ends_with(path, &["securityContext", "runAsUser|runAsGroup"])
            && same_value(value, &json!(0)))
        || (ends_with(path, &["securityContext", "procMount"]) && value == "Unmasked")
        || (ends_with(
            path,
            &["securityContext", "seccompProfile|appArmorProfile", "type"],
        ) && value == "Unconfined")
        || (path
            .windows(3)
            .any(|w| is(w, &["securityContext", "capabilities", "add"]))
            && value.as_array().is_none_or(|a| !a.is_empty()))
        || path.iter().any(|s| s.field() == Some("hostPath"))
        || (ends_with(path, &["hostNetwork|hostPID|hostIPC"]) && is_true)
        || (ends_with(path, &["hostUsers"]) && value == &Value::Bool(false))
        || (ends_with(path, &["ports", "[]", "hostPort"]) && !same_value(value, &json!(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(fields: &[&str]) -> Vec<Seg<'static>> {
        fields
            .iter()
            .map(|f| Seg::Field(f.to_string().into()))
            .collect()
    }

    #[test]
    fn pull_policy() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("evil.example/miner:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/app:1"), "IfNotPresent");
        assert_eq!(default_pull_policy("app@sha256:abc"), "IfNotPresent");
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
