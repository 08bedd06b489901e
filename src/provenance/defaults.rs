//! The API server's own values: what kube-apiserver writes into an object that Git did not set,
//! known exactly. Each rule below is one of the API server's defaulting functions
//! (`pkg/apis/<group>/<version>/defaults.go` and the declarative defaults of
//! `zz_generated.defaults.go` in kubernetes/kubernetes), one of its mutating admission plugins
//! (ServiceAccount, DefaultTolerationSeconds, Priority, DefaultStorageClass,
//! StorageObjectInUseProtection, DefaultIngressClass, RuntimeClass), or what a registry
//! strategy generates (a Job's selector and labels, a Service's cluster IP), with the context
//! each depends on: `maxSurge: 25%` only under a `RollingUpdate` strategy, `imagePullPolicy:
//! Always` only for a `:latest` or untagged image, a NetworkPolicy's `policyTypes` from the
//! rules it holds. A value that matches no rule is not the API server's; [`super::matching`]
//! reports it.
//!
//! The question asked is always "is `value` at `path` what the API server writes there", for a
//! value the object carries and Git does not set ([`At`]). The answer says how sure it is
//! ([`Defaulted`]).

use serde_json::{Value, json};

use super::path::Seg;
use super::quantity;
use super::value::same_value;

/// How a value the object carries and Git does not can be the API server's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defaulted {
    /// Exactly what the API server writes there, given the rest of the object: the object is
    /// what applying Git produces, whether or not the value was also typed by hand. At UPDATE a
    /// change to it is what happens when Git drops the field (the API server defaults it again).
    Exact,
    /// A value the API server allocates or derives from the cluster's state (a Service's
    /// cluster IP, a node port, a pod's priority, the default storage class): any value is the
    /// API server's at CREATE; at UPDATE only a newly allocated one is (a changed allocation is
    /// drift).
    Allocated,
    /// A value a built-in controller or subresource writes after the object exists (a pod's
    /// `nodeName` by the scheduler's binding, a claim's `volumeName` by the volume binder, a
    /// service-account token's data): never at CREATE, and at UPDATE only unchanged.
    Later,
    /// A value an admission plugin picks at CREATE from the cluster's state: explained only
    /// when it is what the plugin would pick (the default class Git or the watched cluster
    /// holds, the token volume where automount is on: [`super::matching::Context`]), and
    /// after CREATE it may neither appear, change nor vanish unless Git changes it.
    Picked(Pick),
}

/// What an admission plugin picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// DefaultIngressClass: an Ingress's `spec.ingressClassName`.
    IngressClass,
    /// DefaultStorageClass: a claim's `spec.storageClassName`.
    StorageClass,
    /// Priority: a Pod's `spec.priorityClassName` (the `globalDefault` class).
    PriorityClass,
    /// Priority: a Pod's `spec.priority` (the value of its class, 0 without one).
    Priority,
    /// ServiceAccount: the projected token volume and its mounts, where automount is on.
    TokenVolume,
}

/// A value the object carries at `path` and Git does not set, with what its defaults depend
/// on. (For the old object's context at UPDATE, the same with the old object's nodes.)
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub kind: &'a str,
    pub path: &'a [Seg<'a>],
    pub value: &'a Value,
    /// The object's node holding `value` (its siblings), and that node's parent.
    pub parent: Option<&'a Value>,
    pub grandparent: Option<&'a Value>,
    /// The whole object.
    pub root: &'a Value,
    /// Git's node at the path of `parent`, when Git has one (what was submitted there), and
    /// Git's manifest.
    pub git_parent: Option<&'a Value>,
    pub git: &'a Value,
}

impl<'a> At<'a> {
    fn sibling(&self, name: &str) -> Option<&'a Value> {
        self.parent?.get(name).filter(|v| !v.is_null())
    }

    fn exact(&self, want: Value) -> Option<Defaulted> {
        same_value(self.value, &want).then_some(Defaulted::Exact)
    }

    fn exact_str(&self, want: &str) -> Option<Defaulted> {
        (self.value.as_str() == Some(want)).then_some(Defaulted::Exact)
    }

    fn exact_same(&self, want: Option<&Value>) -> Option<Defaulted> {
        want.filter(|w| same_value(self.value, w))
            .map(|_| Defaulted::Exact)
    }

    fn pointer(&self, p: &str) -> Option<&'a Value> {
        self.root.pointer(p).filter(|v| !v.is_null())
    }

    fn str_at(&self, p: &str) -> Option<&'a str> {
        self.pointer(p).and_then(Value::as_str)
    }
}

/// The path as names, list items written `[]`.
fn names<'p>(path: &'p [Seg<'p>]) -> Vec<&'p str> {
    path.iter().map(|s| s.field().unwrap_or("[]")).collect()
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
const PROBES: [&str; 3] = ["livenessProbe", "readinessProbe", "startupProbe"];

/// Whether `at.value` is the API server's value at `at.path` (see the module documentation).
pub fn default_at(at: &At) -> Option<Defaulted> {
    let n = names(at.path);
    let n = n.as_slice();
    if let ["metadata", rest @ ..] = n {
        return metadata(at, rest);
    }
    if let Some(rest) = pod_spec_rest(at.kind, n)
        && let Some(d) = pod_spec(at, at.kind == "Pod", rest)
    {
        return Some(d);
    }
    match at.kind {
        "Deployment" => deployment(at, n),
        "ReplicaSet" => match n {
            ["spec", "replicas"] => at.exact(json!(1)),
            _ => None,
        },
        "ReplicationController" => match n {
            ["spec", "replicas"] => at.exact(json!(1)),
            // SetDefaults_ReplicationController: an empty selector is the template's labels.
            ["spec", "selector", key] if !git_has(at.git, "/spec/selector") => at
                .exact_same(at.pointer(&format!("/spec/template/metadata/labels/{}", escape(key)))),
            _ => None,
        },
        "StatefulSet" => stateful_set(at, n),
        "DaemonSet" => daemon_set(at, n),
        "Job" => job_spec(at, n, true),
        "CronJob" => match n {
            ["spec", "concurrencyPolicy"] => at.exact_str("Allow"),
            ["spec", "suspend"] => at.exact(json!(false)),
            ["spec", "successfulJobsHistoryLimit"] => at.exact(json!(3)),
            ["spec", "failedJobsHistoryLimit"] => at.exact(json!(1)),
            ["spec", "jobTemplate", rest @ ..] => job_spec(at, rest, false),
            _ => None,
        },
        "Service" => service(at, n),
        "Endpoints" => match n {
            ["subsets", "[]", "ports", "[]", "protocol"] => at.exact_str("TCP"),
            _ => None,
        },
        "RoleBinding" | "ClusterRoleBinding" => match n {
            ["roleRef", "apiGroup"] => at.exact_str("rbac.authorization.k8s.io"),
            // SetDefaults_Subject: a User's or Group's apiGroup.
            ["subjects", "[]", "apiGroup"] => match at.sibling("kind").and_then(Value::as_str) {
                Some("User" | "Group") => at.exact_str("rbac.authorization.k8s.io"),
                _ => None,
            },
            _ => None,
        },
        // The aggregation controller writes the rules of a ClusterRole with an aggregation
        // rule that Git sets.
        "ClusterRole" => match n {
            ["rules"] if git_has(at.git, "/aggregationRule") => Some(Defaulted::Later),
            _ => None,
        },
        "Namespace" => match n {
            ["spec", "finalizers", "[]"] => at.exact_str("kubernetes"),
            _ => None,
        },
        "Secret" => match n {
            ["type"] => at.exact_str("Opaque"),
            // The token controller fills a service-account token Secret.
            ["data", "token" | "ca.crt" | "namespace"]
                if at.str_at("/type") == Some("kubernetes.io/service-account-token") =>
            {
                Some(Defaulted::Later)
            }
            _ => None,
        },
        // Token Secrets the token controller of Kubernetes < 1.24 created and listed.
        "ServiceAccount" => match n {
            ["secrets"] => {
                let name = at.str_at("/metadata/name")?;
                let prefix = format!("{name}-token-");
                at.value
                    .as_array()?
                    .iter()
                    .all(|s| {
                        s.as_object().is_some_and(|o| o.len() == 1)
                            && s.get("name")
                                .and_then(Value::as_str)
                                .is_some_and(|n| n.starts_with(&prefix))
                    })
                    .then_some(Defaulted::Later)
            }
            _ => None,
        },
        "PersistentVolumeClaim" => match n {
            ["spec", rest @ ..] => claim_spec(at, rest, true),
            _ => None,
        },
        "PersistentVolume" => match n {
            ["spec", "persistentVolumeReclaimPolicy"] => at.exact_str("Retain"),
            ["spec", "volumeMode"] => at.exact_str("Filesystem"),
            ["spec", "hostPath", "type"] => at.exact_str(""),
            ["spec", "claimRef"] => Some(Defaulted::Later),
            ["spec", source, field] => volume_source(at, source, field),
            _ => None,
        },
        "CustomResourceDefinition" => match n {
            ["spec", "names", "singular"] => {
                let kind = at.str_at("/spec/names/kind")?;
                at.exact(json!(kind.to_lowercase()))
            }
            ["spec", "names", "listKind"] => {
                let kind = at.str_at("/spec/names/kind")?;
                at.exact(json!(format!("{kind}List")))
            }
            ["spec", "conversion", "strategy"] => at.exact_str("None"),
            [
                "spec",
                "conversion",
                "webhook",
                "clientConfig",
                "service",
                "port",
            ] => at.exact(json!(443)),
            _ => None,
        },
        "NetworkPolicy" => match n {
            // SetDefaults_NetworkPolicy: Ingress, and Egress when there are egress rules.
            ["spec", "policyTypes"] => {
                let egress = at
                    .sibling("egress")
                    .and_then(Value::as_array)
                    .is_some_and(|e| !e.is_empty());
                at.exact(if egress {
                    json!(["Ingress", "Egress"])
                } else {
                    json!(["Ingress"])
                })
            }
            [
                "spec",
                "ingress" | "egress",
                "[]",
                "ports",
                "[]",
                "protocol",
            ] => at.exact_str("TCP"),
            _ => None,
        },
        // The DefaultIngressClass admission plugin, unless the legacy annotation names one.
        "Ingress" => match n {
            ["spec", "ingressClassName"]
                if at
                    .pointer("/metadata/annotations/kubernetes.io~1ingress.class")
                    .is_none() =>
            {
                Some(Defaulted::Picked(Pick::IngressClass))
            }
            _ => None,
        },
        "IngressClass" => match n {
            ["spec", "parameters", "scope"] => at.exact_str("Cluster"),
            _ => None,
        },
        "HorizontalPodAutoscaler" => autoscaler(at, n),
        "StorageClass" => match n {
            ["reclaimPolicy"] => at.exact_str("Delete"),
            ["volumeBindingMode"] => at.exact_str("Immediate"),
            _ => None,
        },
        "PriorityClass" => match n {
            ["preemptionPolicy"] => at.exact_str("PreemptLowerPriority"),
            _ => None,
        },
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => match n {
            ["webhooks", "[]", "failurePolicy"] => at.exact_str("Fail"),
            ["webhooks", "[]", "matchPolicy"] => at.exact_str("Equivalent"),
            ["webhooks", "[]", "timeoutSeconds"] => at.exact(json!(10)),
            ["webhooks", "[]", "reinvocationPolicy"] if at.kind.starts_with("Mutating") => {
                at.exact_str("Never")
            }
            ["webhooks", "[]", "rules", "[]", "scope"] => at.exact_str("*"),
            ["webhooks", "[]", "clientConfig", "service", "port"] => at.exact(json!(443)),
            _ => None,
        },
        "APIService" => match n {
            ["spec", "service", "port"] => at.exact(json!(443)),
            _ => None,
        },
        "LimitRange" => limit_range(at, n),
        _ => None,
    }
}

fn git_has(git: &Value, pointer: &str) -> bool {
    git.pointer(pointer).is_some_and(|v| !v.is_null())
}

/// A key as a JSON pointer token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// What the API server writes into `metadata`: a Namespace's name label, a Job's generated
/// labels, finalizers of the storage-protection admission plugin, annotations of the volume
/// binder and of the token controller.
fn metadata(at: &At, rest: &[&str]) -> Option<Defaulted> {
    match (at.kind, rest) {
        // SetDefaults_Namespace.
        ("Namespace", ["labels", "kubernetes.io/metadata.name"]) => {
            at.exact_same(at.pointer("/metadata/name"))
        }
        ("Job", ["labels", key]) => {
            // SetDefaults_Job gives a Job submitted without labels its template's (the same
            // map, so the generated ones land in both). A Job Git gives labels keeps exactly
            // those; one the GitOps controller stamps gets none copied.
            let own = at
                .git
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .is_some_and(|l| !l.is_empty());
            if own {
                return None;
            }
            job_label(at, key).or_else(|| {
                at.exact_same(
                    at.pointer("/spec/template/metadata/labels")
                        .and_then(|l| l.get(*key)),
                )
            })
        }
        // Written by API servers 1.23 to 1.26, which tracked Jobs with finalizers.
        ("Job", ["annotations", "batch.kubernetes.io/job-tracking"]) => at.exact_str(""),
        ("PersistentVolumeClaim", ["finalizers", "[]"]) => {
            at.exact_str("kubernetes.io/pvc-protection")
        }
        ("PersistentVolume", ["finalizers", "[]"]) => at.exact_str("kubernetes.io/pv-protection"),
        ("Service", ["finalizers", "[]"])
            if at.value.as_str() == Some("service.kubernetes.io/load-balancer-cleanup") =>
        {
            Some(Defaulted::Later)
        }
        // The API server's CRD finalizer controller, right after the CRD is created.
        ("CustomResourceDefinition", ["finalizers", "[]"])
            if at.value.as_str() == Some("customresourcecleanup.apiextensions.k8s.io") =>
        {
            Some(Defaulted::Later)
        }
        // The volume binder and the scheduler annotate claims and volumes.
        (
            "PersistentVolumeClaim" | "PersistentVolume",
            [
                "annotations",
                "pv.kubernetes.io/bind-completed"
                | "pv.kubernetes.io/bound-by-controller"
                | "pv.kubernetes.io/provisioned-by"
                | "pv.kubernetes.io/migrated-to"
                | "volume.beta.kubernetes.io/storage-provisioner"
                | "volume.kubernetes.io/storage-provisioner"
                | "volume.kubernetes.io/selected-node",
            ],
        ) => Some(Defaulted::Later),
        ("Secret", ["annotations", "kubernetes.io/service-account.uid"])
        | (
            "Secret",
            [
                "labels",
                "kubernetes.io/legacy-token-last-used" | "kubernetes.io/legacy-token-invalid-since",
            ],
        ) if at.str_at("/type") == Some("kubernetes.io/service-account-token") => {
            Some(Defaulted::Later)
        }
        // The API server's own finalizers while it deletes an object.
        (_, ["finalizers", "[]"])
            if at.pointer("/metadata/deletionTimestamp").is_some()
                && matches!(at.value.as_str(), Some("foregroundDeletion" | "orphan")) =>
        {
            Some(Defaulted::Exact)
        }
        _ => None,
    }
}

/// The labels the Job strategy generates, from the Job's own name and uid.
fn job_label(at: &At, key: &str) -> Option<Defaulted> {
    let from = match key {
        "controller-uid" | "batch.kubernetes.io/controller-uid" => "/metadata/uid",
        "job-name" | "batch.kubernetes.io/job-name" => "/metadata/name",
        _ => return None,
    };
    at.exact_same(at.pointer(from))
}

/// The path below the pod spec of a workload kind.
fn pod_spec_rest<'n>(kind: &str, n: &'n [&'n str]) -> Option<&'n [&'n str]> {
    match (kind, n) {
        ("Pod", ["spec", rest @ ..]) => Some(rest),
        (
            "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "DaemonSet"
            | "Job"
            | "ReplicationController",
            ["spec", "template", "spec", rest @ ..],
        ) => Some(rest),
        ("PodTemplate", ["template", "spec", rest @ ..]) => Some(rest),
        ("CronJob", ["spec", "jobTemplate", "spec", "template", "spec", rest @ ..]) => Some(rest),
        _ => None,
    }
}

/// The JSON pointer of a workload kind's pod spec.
fn pod_spec_pointer(kind: &str) -> &'static str {
    match kind {
        "Pod" => "/spec",
        "PodTemplate" => "/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    }
}

/// Defaults inside a pod spec (`rest` is the path below it); `is_pod` for what only a Pod
/// gets (SetDefaults_Pod, and the admission plugins: service account, default tolerations,
/// priority, runtime class, the scheduler's binding).
fn pod_spec(at: &At, is_pod: bool, rest: &[&str]) -> Option<Defaulted> {
    match rest {
        // SetDefaults_PodSpec.
        ["dnsPolicy"] => return at.exact_str("ClusterFirst"),
        ["restartPolicy"] => return at.exact_str("Always"),
        ["securityContext"] => return at.exact(json!({})),
        ["terminationGracePeriodSeconds"] => return at.exact(json!(30)),
        ["schedulerName"] => return at.exact_str("default-scheduler"),
        // v1's deprecated copy of serviceAccountName, written both ways by the conversion.
        ["serviceAccount"] => return at.exact_same(at.sibling("serviceAccountName")),
        ["serviceAccountName"] => {
            // Only from a `serviceAccount` Git sets: the two fields never explain each other.
            if let Some(d) = at.exact_same(at.git_parent.and_then(|g| g.get("serviceAccount"))) {
                return Some(d);
            }
            // The ServiceAccount admission plugin.
            return if is_pod {
                at.exact_str("default")
            } else {
                None
            };
        }
        _ => {}
    }
    if is_pod {
        match rest {
            ["enableServiceLinks"] => return at.exact(json!(true)),
            // The Priority admission plugin: the global default class when Git names none,
            // and the value of the class.
            ["priorityClassName"] => return Some(Defaulted::Picked(Pick::PriorityClass)),
            ["priority"] => return Some(Defaulted::Picked(Pick::Priority)),
            ["preemptionPolicy"] => {
                return match at.value.as_str() {
                    Some("PreemptLowerPriority") => Some(Defaulted::Exact),
                    Some("Never") if at.sibling("priorityClassName").is_some() => {
                        Some(Defaulted::Allocated)
                    }
                    _ => None,
                };
            }
            // The RuntimeClass admission plugin, from the runtime class Git names.
            ["overhead", ..] if at.git.pointer("/spec/runtimeClassName").is_some() => {
                return Some(Defaulted::Allocated);
            }
            // The scheduler binds the pod after it exists.
            ["nodeName"] => return Some(Defaulted::Later),
            // DefaultTolerationSeconds.
            ["tolerations", "[]"] => {
                for key in [
                    "node.kubernetes.io/not-ready",
                    "node.kubernetes.io/unreachable",
                ] {
                    if same_value(
                        at.value,
                        &json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": 300}),
                    ) {
                        return Some(Defaulted::Exact);
                    }
                }
                return None;
            }
            // The ServiceAccount admission plugin's token volume and its mounts.
            ["volumes", "[]"] if is_token_volume(at.value) => {
                return Some(Defaulted::Picked(Pick::TokenVolume));
            }
            [c, "[]", "volumeMounts", "[]"]
                if CONTAINER_LISTS.contains(c) && is_token_mount(at.value) =>
            {
                return Some(Defaulted::Picked(Pick::TokenVolume));
            }
            // SetDefaults_Pod: requests default to limits.
            [c, "[]", "resources", "requests", resource] if CONTAINER_LISTS.contains(c) => {
                let limit = at.grandparent?.get("limits")?.get(*resource)?;
                return (same_value(at.value, limit)
                    || quantity::same(at.value, limit) == Some(true))
                .then_some(Defaulted::Exact);
            }
            _ => {}
        }
    }
    // With host networking, host ports are the container ports (SetDefaults_Pod; before
    // Kubernetes 1.28, SetDefaults_PodSpec, so pod templates too).
    if let [c, "[]", "ports", "[]", "hostPort"] = rest
        && CONTAINER_LISTS.contains(c)
    {
        let host_network = format!("{}/hostNetwork", pod_spec_pointer(at.kind));
        return if at.pointer(&host_network) == Some(&Value::Bool(true)) {
            at.exact_same(at.sibling("containerPort"))
        } else {
            None
        };
    }
    if let [c, "[]", crest @ ..] = rest
        && CONTAINER_LISTS.contains(c)
    {
        return container(at, crest);
    }
    if let ["volumes", "[]", source, vrest @ ..] = rest {
        return volume(at, source, vrest);
    }
    None
}

/// SetDefaults_Container and the defaults of what a container holds.
fn container(at: &At, rest: &[&str]) -> Option<Defaulted> {
    match rest {
        ["terminationMessagePath"] => at.exact_str("/dev/termination-log"),
        ["terminationMessagePolicy"] => at.exact_str("File"),
        // A struct without `omitempty`: always written, empty when Git says nothing.
        ["resources"] => at.exact(json!({})),
        ["imagePullPolicy"] => {
            let image = at.sibling("image").and_then(Value::as_str)?;
            at.exact_str(default_pull_policy(image))
        }
        ["ports", "[]", "protocol"] => at.exact_str("TCP"),
        ["env", "[]", "valueFrom", "fieldRef", "apiVersion"] => at.exact_str("v1"),
        // A zero Quantity is a struct, written even when Git leaves it out.
        ["env", "[]", "valueFrom", "resourceFieldRef", "divisor"] => at.exact_str("0"),
        [probe, field] if PROBES.contains(probe) => match *field {
            "timeoutSeconds" => at.exact(json!(1)),
            "periodSeconds" => at.exact(json!(10)),
            "successThreshold" => at.exact(json!(1)),
            "failureThreshold" => at.exact(json!(3)),
            _ => None,
        },
        [probe, "httpGet", field] if PROBES.contains(probe) => http_get(at, field),
        [probe, "grpc", "service"] if PROBES.contains(probe) => at.exact_str(""),
        ["lifecycle", "postStart" | "preStop", "httpGet", field] => http_get(at, field),
        _ => None,
    }
}

/// SetDefaults_HTTPGetAction.
fn http_get(at: &At, field: &str) -> Option<Defaulted> {
    match field {
        "path" => at.exact_str("/"),
        "scheme" => at.exact_str("HTTP"),
        _ => None,
    }
}

/// The defaults of a pod's volume (`source` is the volume source: `secret`, `configMap`, ...).
fn volume(at: &At, source: &str, rest: &[&str]) -> Option<Defaulted> {
    match (source, rest) {
        ("secret" | "configMap" | "projected" | "downwardAPI", ["defaultMode"]) => {
            at.exact(json!(420))
        }
        ("downwardAPI", ["items", "[]", "fieldRef", "apiVersion"])
        | (
            "projected",
            [
                "sources",
                "[]",
                "downwardAPI",
                "items",
                "[]",
                "fieldRef",
                "apiVersion",
            ],
        ) => at.exact_str("v1"),
        ("downwardAPI", ["items", "[]", "resourceFieldRef", "divisor"])
        | (
            "projected",
            [
                "sources",
                "[]",
                "downwardAPI",
                "items",
                "[]",
                "resourceFieldRef",
                "divisor",
            ],
        ) => at.exact_str("0"),
        // SetDefaults_ServiceAccountTokenProjection: one hour.
        ("projected", ["sources", "[]", "serviceAccountToken", "expirationSeconds"]) => {
            at.exact(json!(3600))
        }
        ("ephemeral", ["volumeClaimTemplate", "spec", crest @ ..]) => claim_spec(at, crest, false),
        // SetDefaults_Volume: an image volume's pull policy, as a container's.
        ("image", ["pullPolicy"]) => {
            let reference = at.sibling("reference").and_then(Value::as_str)?;
            at.exact_str(default_pull_policy(reference))
        }
        (source, [field]) => volume_source(at, source, field),
        _ => None,
    }
}

/// Defaults of in-tree volume sources, shared by pods and PersistentVolumes.
fn volume_source(at: &At, source: &str, field: &str) -> Option<Defaulted> {
    match (source, field) {
        ("hostPath", "type") => at.exact_str(""),
        ("iscsi", "iscsiInterface") => at.exact_str("default"),
        ("rbd", "pool") => at.exact_str("rbd"),
        ("rbd", "user") => at.exact_str("admin"),
        ("rbd", "keyring") => at.exact_str("/etc/ceph/keyring"),
        ("azureDisk", "cachingMode") => at.exact_str("ReadWrite"),
        ("azureDisk", "fsType") => at.exact_str("ext4"),
        ("azureDisk", "readOnly") => at.exact(json!(false)),
        ("azureDisk", "kind") => at.exact_str("Shared"),
        ("scaleIO", "storageMode") => at.exact_str("ThinProvisioned"),
        ("scaleIO", "fsType") => at.exact_str("xfs"),
        _ => None,
    }
}

/// A PersistentVolumeClaim's spec (`is_claim` for a claim object, which the admission
/// plugins and the volume binder also write; a claim template only gets the volume mode).
fn claim_spec(at: &At, rest: &[&str], is_claim: bool) -> Option<Defaulted> {
    match rest {
        ["volumeMode"] => at.exact_str("Filesystem"),
        // DefaultStorageClass: the cluster's default class, when Git names none.
        ["storageClassName"] if is_claim => Some(Defaulted::Picked(Pick::StorageClass)),
        // The volume binder.
        ["volumeName"] if is_claim => Some(Defaulted::Later),
        _ => None,
    }
}

fn deployment(at: &At, n: &[&str]) -> Option<Defaulted> {
    match n {
        ["spec", "replicas"] => at.exact(json!(1)),
        ["spec", "revisionHistoryLimit"] => at.exact(json!(10)),
        ["spec", "progressDeadlineSeconds"] => at.exact(json!(600)),
        ["spec", "strategy", "type"] => at.exact_str("RollingUpdate"),
        [
            "spec",
            "strategy",
            "rollingUpdate",
            "maxUnavailable" | "maxSurge",
        ] if at.str_at("/spec/strategy/type") == Some("RollingUpdate") => at.exact_str("25%"),
        _ => None,
    }
}

fn stateful_set(at: &At, n: &[&str]) -> Option<Defaulted> {
    match n {
        ["spec", "replicas"] => at.exact(json!(1)),
        ["spec", "revisionHistoryLimit"] => at.exact(json!(10)),
        ["spec", "podManagementPolicy"] => at.exact_str("OrderedReady"),
        ["spec", "updateStrategy", "type"] => at.exact_str("RollingUpdate"),
        ["spec", "updateStrategy", "rollingUpdate", "partition"]
            if at.str_at("/spec/updateStrategy/type") == Some("RollingUpdate") =>
        {
            at.exact(json!(0))
        }
        [
            "spec",
            "persistentVolumeClaimRetentionPolicy",
            "whenDeleted" | "whenScaled",
        ] => at.exact_str("Retain"),
        // Each claim template is a PersistentVolumeClaim: its type is written in, and its
        // spec defaulted.
        ["spec", "volumeClaimTemplates", "[]", "apiVersion"] => at.exact_str("v1"),
        ["spec", "volumeClaimTemplates", "[]", "kind"] => at.exact_str("PersistentVolumeClaim"),
        ["spec", "volumeClaimTemplates", "[]", "spec", rest @ ..] => claim_spec(at, rest, false),
        _ => None,
    }
}

fn daemon_set(at: &At, n: &[&str]) -> Option<Defaulted> {
    let rolling = || at.str_at("/spec/updateStrategy/type") == Some("RollingUpdate");
    match n {
        ["spec", "revisionHistoryLimit"] => at.exact(json!(10)),
        ["spec", "updateStrategy", "type"] => at.exact_str("RollingUpdate"),
        ["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"] if rolling() => {
            at.exact(json!(1))
        }
        ["spec", "updateStrategy", "rollingUpdate", "maxSurge"] if rolling() => at.exact(json!(0)),
        _ => None,
    }
}

/// SetDefaults_Job (`job`), and what applies to a CronJob's job template too (the defaults of
/// types inside a JobSpec; SetDefaults_Job itself is the Job's).
fn job_spec(at: &At, n: &[&str], job: bool) -> Option<Defaulted> {
    if let [
        "spec",
        "podFailurePolicy",
        "rules",
        "[]",
        "onPodConditions",
        "[]",
        "status",
    ] = n
    {
        return at.exact_str("True");
    }
    if !job {
        return None;
    }
    match n {
        // Both unset: both 1; otherwise only parallelism.
        ["spec", "completions"] => {
            let git_spec = at.git.get("spec");
            let git_parallelism = git_spec
                .and_then(|s| s.get("parallelism"))
                .is_some_and(|v| !v.is_null());
            if git_parallelism {
                None
            } else {
                at.exact(json!(1))
            }
        }
        ["spec", "parallelism"] => at.exact(json!(1)),
        ["spec", "completionMode"] => at.exact_str("NonIndexed"),
        ["spec", "suspend"] => at.exact(json!(false)),
        ["spec", "manualSelector"] => at.exact(json!(false)),
        // Unlimited when each index has its own limit.
        ["spec", "backoffLimit"] => {
            let per_index = at.sibling("backoffLimitPerIndex").is_some();
            at.exact(json!(if per_index { i32::MAX as i64 } else { 6 }))
        }
        ["spec", "podReplacementPolicy"] => {
            let failure_policy = at.sibling("podFailurePolicy").is_some();
            at.exact_str(if failure_policy {
                "Failed"
            } else {
                "TerminatingOrFailed"
            })
        }
        // The Job strategy generates the selector and the template's labels, with the Job's
        // own name and uid (unless the selector is manual).
        ["spec", "selector", "matchLabels", key]
            if at.pointer("/spec/manualSelector") != Some(&Value::Bool(true)) =>
        {
            job_label(at, key)
        }
        ["spec", "template", "metadata", "labels", key] => job_label(at, key),
        _ => None,
    }
}

fn service(at: &At, n: &[&str]) -> Option<Defaulted> {
    let kind = at.str_at("/spec/type").unwrap_or("ClusterIP");
    let external_ips = at
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty());
    // service.ExternallyAccessible.
    let externally_accessible =
        matches!(kind, "LoadBalancer" | "NodePort") || (kind == "ClusterIP" && external_ips);
    match n {
        ["spec", "type"] => at.exact_str("ClusterIP"),
        ["spec", "sessionAffinity"] => at.exact_str("None"),
        [
            "spec",
            "sessionAffinityConfig",
            "clientIP",
            "timeoutSeconds",
        ] if at.str_at("/spec/sessionAffinity") == Some("ClientIP") => at.exact(json!(10800)),
        ["spec", "ports", "[]", "protocol"] => at.exact_str("TCP"),
        ["spec", "ports", "[]", "targetPort"] => at.exact_same(at.sibling("port")),
        ["spec", "externalTrafficPolicy"] if externally_accessible => at.exact_str("Cluster"),
        ["spec", "internalTrafficPolicy"]
            if matches!(kind, "ClusterIP" | "NodePort" | "LoadBalancer") =>
        {
            at.exact_str("Cluster")
        }
        ["spec", "allocateLoadBalancerNodePorts"] if kind == "LoadBalancer" => {
            at.exact(json!(true))
        }
        // Allocated by the registry: an address (never `None`, which is a choice), the
        // families of the cluster, node ports for the types that have them.
        ["spec", "clusterIP"] if kind != "ExternalName" => at
            .value
            .as_str()
            .is_some_and(is_ip)
            .then_some(Defaulted::Allocated),
        ["spec", "clusterIPs"] if kind != "ExternalName" => {
            let ips = at.value.as_array()?;
            let first = ips.first()?;
            let primary = at.pointer("/spec/clusterIP")?;
            (same_value(first, primary)
                && ips.iter().enumerate().all(|(i, ip)| {
                    ip.as_str()
                        .is_some_and(|s| is_ip(s) || (i == 0 && s == "None"))
                }))
            .then_some(Defaulted::Allocated)
        }
        ["spec", "ipFamilies"] if kind != "ExternalName" => {
            let families = at.value.as_array()?;
            (!families.is_empty()
                && families.len() <= 2
                && families
                    .iter()
                    .all(|f| matches!(f.as_str(), Some("IPv4" | "IPv6"))))
            .then_some(Defaulted::Allocated)
        }
        ["spec", "ipFamilyPolicy"] if kind != "ExternalName" => {
            let families = at
                .pointer("/spec/ipFamilies")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            at.exact_str(if families == 2 {
                "RequireDualStack"
            } else {
                "SingleStack"
            })
        }
        ["spec", "ports", "[]", "nodePort"]
            if kind == "NodePort"
                || (kind == "LoadBalancer"
                    && at.pointer("/spec/allocateLoadBalancerNodePorts")
                        != Some(&Value::Bool(false))) =>
        {
            Some(Defaulted::Allocated)
        }
        ["spec", "healthCheckNodePort"]
            if kind == "LoadBalancer"
                && at.str_at("/spec/externalTrafficPolicy") == Some("Local") =>
        {
            Some(Defaulted::Allocated)
        }
        _ => None,
    }
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// SetDefaults_HorizontalPodAutoscaler (autoscaling/v2; v1 has only minReplicas).
fn autoscaler(at: &At, n: &[&str]) -> Option<Defaulted> {
    let scale_up = || {
        json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    };
    let scale_down = || {
        json!({"selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    };
    match n {
        ["spec", "minReplicas"] => at.exact(json!(1)),
        ["spec", "metrics"] if at.str_at("/apiVersion") != Some("autoscaling/v1") => at
            .exact(json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}])),
        // With a behavior, every unset rule is filled in.
        ["spec", "behavior", "scaleUp"] => at.exact(scale_up()),
        ["spec", "behavior", "scaleDown"] => at.exact(scale_down()),
        ["spec", "behavior", "scaleUp", field] => at.exact_same(scale_up().get(*field)),
        ["spec", "behavior", "scaleDown", field] => at.exact_same(scale_down().get(*field)),
        _ => None,
    }
}

/// SetDefaults_LimitRangeItem: for containers, a default limit is the max, a default request
/// the default limit or the min.
fn limit_range(at: &At, n: &[&str]) -> Option<Defaulted> {
    let item = at.grandparent?;
    if item.get("type").and_then(Value::as_str) != Some("Container") {
        return None;
    }
    let same = |want: Option<&Value>| {
        want.is_some_and(|w| same_value(at.value, w) || quantity::same(at.value, w) == Some(true))
    };
    match n {
        ["spec", "limits", "[]", "default", resource] => {
            same(item.get("max").and_then(|m| m.get(*resource))).then_some(Defaulted::Exact)
        }
        ["spec", "limits", "[]", "defaultRequest", resource] => {
            let from_default = item.get("default").and_then(|m| m.get(*resource));
            let from_min = item.get("min").and_then(|m| m.get(*resource));
            let want = from_default.or(from_min);
            same(want).then_some(Defaulted::Exact)
        }
        _ => None,
    }
}

/// The default of a merge-key field that an item may leave out.
pub fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| json!("TCP"))
}

/// The kubelet's default pull policy, as the API server defaults it: `Always` when the image's
/// tag is `latest` (an image with neither tag nor digest is `:latest`), `IfNotPresent`
/// otherwise.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn path(fields: &[&'static str]) -> Vec<Seg<'static>> {
        fields
            .iter()
            .map(|f| {
                if *f == "[]" {
                    Seg::Index(0)
                } else {
                    Seg::Field(Cow::Borrowed(f))
                }
            })
            .collect()
    }

    fn at<'a>(kind: &'a str, p: &'a [Seg<'a>], value: &'a Value, root: &'a Value) -> At<'a> {
        At {
            kind,
            path: p,
            value,
            parent: None,
            grandparent: None,
            root,
            git_parent: None,
            git: root,
        }
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
    fn rolling_update_defaults_need_the_rolling_strategy() {
        let p = path(&["spec", "strategy", "rollingUpdate", "maxSurge"]);
        let v = json!("25%");
        let rolling = json!({"spec": {"strategy": {"type": "RollingUpdate"}}});
        assert_eq!(
            default_at(&at("Deployment", &p, &v, &rolling)),
            Some(Defaulted::Exact)
        );
        let recreate = json!({"spec": {"strategy": {"type": "Recreate"}}});
        assert_eq!(default_at(&at("Deployment", &p, &v, &recreate)), None);
    }

    #[test]
    fn host_ports_follow_host_networking_in_templates_too() {
        let p = path(&[
            "spec",
            "template",
            "spec",
            "containers",
            "[]",
            "ports",
            "[]",
            "hostPort",
        ]);
        let port = json!({"containerPort": 8080});
        let v = json!(8080);
        let host = json!({"spec": {"template": {"spec": {"hostNetwork": true}}}});
        let mut a = at("DaemonSet", &p, &v, &host);
        a.parent = Some(&port);
        assert_eq!(default_at(&a), Some(Defaulted::Exact));
        let pod_network = json!({"spec": {"template": {"spec": {}}}});
        let mut a = at("DaemonSet", &p, &v, &pod_network);
        a.parent = Some(&port);
        assert_eq!(default_at(&a), None);
    }

    #[test]
    fn service_defaults_follow_the_type() {
        let root = json!({"spec": {"type": "ClusterIP"}});
        let p = path(&["spec", "allocateLoadBalancerNodePorts"]);
        let t = json!(true);
        assert_eq!(default_at(&at("Service", &p, &t, &root)), None);
        let lb = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(
            default_at(&at("Service", &p, &t, &lb)),
            Some(Defaulted::Exact)
        );
        let p = path(&["spec", "clusterIP"]);
        let none = json!("None");
        assert_eq!(default_at(&at("Service", &p, &none, &root)), None);
        let ip = json!("10.96.0.1");
        assert_eq!(
            default_at(&at("Service", &p, &ip, &root)),
            Some(Defaulted::Allocated)
        );
        let p = path(&["spec", "externalTrafficPolicy"]);
        let cluster = json!("Cluster");
        assert_eq!(default_at(&at("Service", &p, &cluster, &root)), None);
        let external = json!({"spec": {"type": "ClusterIP", "externalIPs": ["1.2.3.4"]}});
        assert_eq!(
            default_at(&at("Service", &p, &cluster, &external)),
            Some(Defaulted::Exact)
        );
    }
}
