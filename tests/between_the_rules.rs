//! Nothing slips between the rules (issue 17), on the real binary: `gitgate serve` over TLS
//! with a repository made here, and requests shaped as a real kube-apiserver sends them. One
//! test per hole, each of which the webhook admitted before:
//!
//! 1. the approved state never moves backwards (an unsigned merge that puts an old approved
//!    commit first: the window does not move, the reason is logged and exposed, re-create,
//!    delete and image rollback are refused; an approved commit on top moves it on);
//! 2. no resurrection: a CREATE of what the newest approved commit removed is refused;
//! 3. a status write that changes labels or annotations is judged as an UPDATE;
//! 4. tracking stamps are exact, and added or changed by the GitOps controller only;
//! 5. values an admission plugin picks are explained only as the plugin would pick them;
//! 6. a manifest of unknown scope is found under its source's namespace;
//! 7. `exempt.namespaces` never exempts a Namespace object itself;
//! 8. the default exemptions keep a cluster running (kube-controller-manager's controllers,
//!    Leases and Events).

mod support;

use serde_json::{Value, json};
use support::gate::{
    CLAIM, CONFIGMAP, DEPLOYMENT, FLUX, Gate, Gvr, INGRESS, MALLORY, NAMESPACE, POD, allowed,
    message, request, stored,
};
use support::signed::{DAY, EMAIL, SignedRepo, now, tools_here};

fn configmap(name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  a: b\n"
    )
}

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
        resources:
          requests: {{cpu: 100m}}
          limits: {{cpu: 200m, memory: 128Mi}}
        securityContext: {{runAsNonRoot: true, runAsUser: 1000}}
"
    )
}

/// A configuration serving the repository at `url`, unsigned commits approved.
fn plain_config(url: &std::path::Path, extra: &str) -> String {
    format!(
        "repository:\n  url: {}\n  refresh: 100ms\n{extra}",
        url.display()
    )
}

fn assert_denied(response: &Value, needle: &str, what: &str) {
    assert!(!allowed(response), "{what}: admitted: {response}");
    let msg = message(response);
    assert!(msg.contains(needle), "{what}: {msg}");
}

fn assert_allowed(response: &Value, what: &str) {
    assert!(allowed(response), "{what}: refused: {response}");
}

// --- 1. the approved state never moves backwards -------------------------------------------

#[test]
fn an_unsigned_merge_that_puts_an_old_approved_commit_first_does_not_move_the_window() {
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    let signers = r.allowed_signers(&format!("{EMAIL} {trusted}\n"));
    let t = now() - DAY;
    let old_cm = configmap("old", "shop");
    let c1 = r.commit(
        &[("web.yaml", &deployment("web:1.0")), ("old.yaml", &old_cm)],
        Some("trusted"),
        t,
    );
    // The security fix, which also removes `old`.
    std::fs::remove_file(r.path().join("old.yaml")).unwrap();
    let c2 = r.commit(
        &[("web.yaml", &deployment("web:1.1"))],
        Some("trusted"),
        t + 10,
    );
    let new_cm = configmap("new", "shop");
    let c3 = r.commit(&[("new.yaml", &new_cm)], Some("trusted"), t + 20);
    let gate = Gate::start(
        &r.beside(""),
        &format!(
            "repository:\n  url: {}\n  refresh: 100ms\napproval:\n  window: {{commits: 2}}\n  requireSignatures: true\n  allowedSigners: {}\n",
            r.path().display(),
            signers.display()
        ),
    );
    gate.wait_ready();

    // A fast-forward push, no force: an unsigned merge whose first parent is the old approved
    // commit and whose tree is the old one, the current tip as its second parent.
    r.git(&["checkout", "-q", &c1], None, t + 30);
    r.git(
        &["merge", "-q", "--no-ff", "-s", "ours", "-m", "sync", &c3],
        None,
        t + 30,
    );
    let merge = r.git(&["rev-parse", "HEAD"], None, t + 30);
    r.git(&["branch", "-q", "-f", "main", &merge], None, t + 30);

    let body = gate.wait_readyz("the rewind reported", |_, body| {
        body["provenance"]["rewound"].is_string()
    });
    let reason = body["provenance"]["rewound"].as_str().unwrap();
    assert!(reason.contains("rewound"), "{reason}");
    assert!(reason.contains(&c1[..12]), "names the old commit: {reason}");
    assert_eq!(
        body["ready"], true,
        "the last good index keeps deciding: {body}"
    );
    let metrics = gate.metrics();
    assert!(
        metrics.lines().any(|l| l == "gitgate_window_rewound 1"),
        "{metrics}"
    );

    // Re-create what the fix removed, delete what was added since, roll the image back.
    let recreate = gate.review(request(
        "CREATE",
        CONFIGMAP,
        None,
        FLUX,
        &stored(&old_cm, "kustomize-controller"),
        None,
    ));
    assert_denied(&recreate, "provenance", "re-create of a removed object");
    let delete = gate.review(request(
        "DELETE",
        CONFIGMAP,
        None,
        FLUX,
        &stored(&new_cm, "kustomize-controller"),
        None,
    ));
    assert_denied(
        &delete,
        "newest approved commit",
        "delete of an object added since",
    );
    let rollback = gate.review(request(
        "UPDATE",
        DEPLOYMENT,
        None,
        FLUX,
        &stored(&deployment("web:1.0"), "kustomize-controller"),
        Some(&stored(&deployment("web:1.1"), "kustomize-controller")),
    ));
    assert_denied(&rollback, "provenance", "image rollback");

    // An approved commit on top of the merge descends from the last approved state.
    r.git(&["checkout", "-q", "main"], None, t + 40);
    let extra = configmap("extra", "shop");
    let c4 = r.commit(&[("extra.yaml", &extra)], Some("trusted"), t + 40);
    gate.wait_readyz("the window moved on", |status, body| {
        status == 200 && body["provenance"].get("rewound").is_none()
    });
    let created = gate.review(request(
        "CREATE",
        CONFIGMAP,
        None,
        FLUX,
        &stored(&extra, "kustomize-controller"),
        None,
    ));
    assert_allowed(&created, "an object of the new approved commit");
    let metrics = gate.metrics();
    assert!(
        metrics.lines().any(|l| l == "gitgate_window_rewound 0"),
        "{metrics}"
    );
    let logs = gate.stop();
    assert!(
        logs.lines().any(|l| l.contains("ERROR")
            && l.contains("would move backwards")
            && l.contains(&c1)
            && l.contains(&c3)),
        "an error naming the commits: {logs}"
    );
    let _ = (c2, c4);
}

#[test]
fn a_force_push_to_an_old_approved_commit_does_not_move_the_window() {
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    let signers = r.allowed_signers(&format!("{EMAIL} {trusted}\n"));
    let t = now() - DAY;
    let old_cm = configmap("old", "shop");
    let c1 = r.commit(&[("old.yaml", &old_cm)], Some("trusted"), t);
    std::fs::remove_file(r.path().join("old.yaml")).unwrap();
    let c2 = r.commit(
        &[("new.yaml", &configmap("new", "shop"))],
        Some("trusted"),
        t + 10,
    );
    let gate = Gate::start(
        &r.beside(""),
        &format!(
            "repository:\n  url: {}\n  refresh: 100ms\napproval:\n  requireSignatures: true\n  allowedSigners: {}\n",
            r.path().display(),
            signers.display()
        ),
    );
    gate.wait_ready();
    r.git(&["branch", "-q", "-f", "rewound", &c1], None, t);
    r.git(&["checkout", "-q", "rewound"], None, t);
    r.git(&["branch", "-q", "-f", "main", &c1], None, t);
    let body = gate.wait_readyz("the rewind reported", |_, body| {
        body["provenance"]["rewound"].is_string()
    });
    let reason = body["provenance"]["rewound"].as_str().unwrap();
    assert!(
        reason.contains(&c2[..12]) && reason.contains("does not descend"),
        "{reason}"
    );
    let recreate = gate.review(request(
        "CREATE",
        CONFIGMAP,
        None,
        FLUX,
        &stored(&old_cm, "kustomize-controller"),
        None,
    ));
    assert_denied(&recreate, "provenance", "re-create after a force-push");
    gate.stop();
}

// --- 2. no resurrection ------------------------------------------------------------------

#[test]
fn an_object_a_newer_approved_commit_removed_is_not_created_again() {
    let cm = configmap("web-config", "shop");
    let repo = support::repo_with(&[("cm.yaml", cm.as_bytes())]);
    support::git(
        repo.path(),
        "a@example.com",
        1_780_000_100,
        &["rm", "-q", "cm.yaml"],
    );
    support::commit_files(
        repo.path(),
        &[("other.yaml", configmap("other", "shop").as_bytes())],
        "remove web-config",
    );
    let removed_by = support::git(repo.path(), "a@example.com", 0, &["rev-parse", "HEAD"]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(dir.path(), &plain_config(repo.path(), ""));
    gate.wait_ready();
    let object = stored(&cm, "kubectl-client-side-apply");
    for user in [
        MALLORY,
        FLUX,
        "system:serviceaccount:argocd:argocd-application-controller",
    ] {
        let create = gate.review(request("CREATE", CONFIGMAP, None, user, &object, None));
        assert_denied(&create, &removed_by[..12], &format!("re-create by {user}"));
        assert!(message(&create).contains("revert"), "{create}");
    }
    // The controller may lag a commit behind: an UPDATE of the live object stays admitted.
    let update = gate.review(request(
        "UPDATE",
        CONFIGMAP,
        None,
        FLUX,
        &object,
        Some(&object),
    ));
    assert_allowed(&update, "an UPDATE inside the window");
    gate.stop();
}

// --- 3. status writes carry metadata ------------------------------------------------------

const NAMESPACE_DEMO: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels:
    pod-security.kubernetes.io/enforce: restricted
";

/// The Namespace as the API server stores it.
fn stored_namespace(enforce: &str) -> Value {
    let mut ns = stored(NAMESPACE_DEMO, "kustomize-controller");
    ns["metadata"]["labels"] = json!({"kubernetes.io/metadata.name": "demo",
        "pod-security.kubernetes.io/enforce": enforce});
    ns["spec"] = json!({"finalizers": ["kubernetes"]});
    ns["status"] = json!({"phase": "Active"});
    ns
}

#[test]
fn a_status_write_that_changes_labels_or_annotations_is_judged() {
    let web = deployment("web:1.0");
    let repo = support::repo_with(&[
        ("ns.yaml", NAMESPACE_DEMO.as_bytes()),
        ("web.yaml", web.as_bytes()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(dir.path(), &plain_config(repo.path(), ""));
    gate.wait_ready();
    let ns = stored_namespace("restricted");
    // The PodSecurity label turned through namespaces/status.
    let privileged = gate.review(request(
        "UPDATE",
        NAMESPACE,
        Some("status"),
        MALLORY,
        &stored_namespace("privileged"),
        Some(&ns),
    ));
    assert_denied(
        &privileged,
        "pod-security.kubernetes.io/enforce",
        "namespaces/status",
    );
    // A status write that changes only status is admitted.
    let mut terminating = ns.clone();
    terminating["status"] = json!({"phase": "Active", "conditions": [
        {"type": "NamespaceDeletionDiscoveryFailure", "status": "False",
         "reason": "ResourcesDiscovered", "lastTransitionTime": "2026-11-24T19:30:00Z"}]});
    terminating["metadata"]["resourceVersion"] = json!("4013");
    let status_only = gate.review(request(
        "UPDATE",
        NAMESPACE,
        Some("status"),
        MALLORY,
        &terminating,
        Some(&ns),
    ));
    assert_allowed(&status_only, "a write of status only");
    // deployments/status adding Flux's reconcile switch.
    let live = stored(&web, "kustomize-controller");
    let mut paused = live.clone();
    paused["metadata"]["annotations"] =
        json!({"kustomize.toolkit.fluxcd.io/reconcile": "disabled"});
    let disabled = gate.review(request(
        "UPDATE",
        DEPLOYMENT,
        Some("status"),
        MALLORY,
        &paused,
        Some(&live),
    ));
    assert_denied(
        &disabled,
        "kustomize.toolkit.fluxcd.io/reconcile",
        "deployments/status",
    );
    // The deployment controller's status writes: the fast path.
    let mut progressed = live.clone();
    progressed["status"] = json!({"observedGeneration": 1, "replicas": 1});
    let controller = gate.review(request(
        "UPDATE",
        DEPLOYMENT,
        Some("status"),
        "system:serviceaccount:kube-system:deployment-controller",
        &progressed,
        Some(&live),
    ));
    assert_allowed(&controller, "the deployment controller's status write");
    gate.stop();
}

// --- 4. stamps with any value -------------------------------------------------------------

const POD_WEB: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  containers:
  - name: web
    image: web:1.0
    resources:
      requests: {cpu: 100m}
      limits: {cpu: 200m, memory: 128Mi}
    securityContext: {runAsNonRoot: true, runAsUser: 1000}
";

const FLUX_APPS: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
";

#[test]
fn tracking_stamps_are_exact_and_written_by_the_controller_only() {
    let repo = support::repo_with(&[
        ("apps/pod.yaml", POD_WEB.as_bytes()),
        ("clusters/apps.yaml", FLUX_APPS.as_bytes()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(dir.path(), &plain_config(repo.path(), ""));
    gate.wait_ready();
    let live = stored(POD_WEB, "kustomize-controller");
    let with_label = |key: &str, value: &str| {
        let mut o = live.clone();
        o["metadata"]["labels"][key] = json!(value);
        o
    };
    let instance = with_label("app.kubernetes.io/instance", "payments");
    // Added by a hand: the payments Service would select the Pod.
    let added = gate.review(request(
        "UPDATE",
        POD,
        None,
        MALLORY,
        &instance,
        Some(&live),
    ));
    assert_denied(
        &added,
        "app.kubernetes.io/instance",
        "instance label added by a hand",
    );
    let created = gate.review(request("CREATE", POD, None, MALLORY, &instance, None));
    assert_denied(
        &created,
        "app.kubernetes.io/instance",
        "created with the label by a hand",
    );
    // Changed by a hand.
    let shop = with_label("app.kubernetes.io/instance", "shop");
    let changed = gate.review(request(
        "UPDATE",
        POD,
        None,
        MALLORY,
        &instance,
        Some(&shop),
    ));
    assert_denied(
        &changed,
        "app.kubernetes.io/instance",
        "instance label changed by a hand",
    );
    // Flux's labels name the Kustomization that applies the Pod, and only that one.
    let mut flux = live.clone();
    flux["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!("apps");
    flux["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/namespace"] = json!("flux-system");
    let applied = gate.review(request("CREATE", POD, None, FLUX, &flux, None));
    assert_allowed(&applied, "Flux's own stamps");
    let mut wrong = flux.clone();
    wrong["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!("payments");
    let forged = gate.review(request("CREATE", POD, None, FLUX, &wrong, None));
    assert_denied(
        &forged,
        "kustomize.toolkit.fluxcd.io/name",
        "another Kustomization's name",
    );
    gate.stop();
}

// --- 5. values an admission plugin picks ----------------------------------------------------

const INGRESS_WEB: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service: {name: web, port: {number: 80}}
";

const NGINX_DEFAULT: &str = "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
  annotations:
    ingressclass.kubernetes.io/is-default-class: \"true\"
spec:
  controller: k8s.io/ingress-nginx
";

const CLAIM_DATA: &str = "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: shop
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: {storage: 1Gi}
";

const POD_NO_TOKEN: &str = "apiVersion: v1
kind: Pod
metadata:
  name: quiet
  namespace: shop
spec:
  automountServiceAccountToken: false
  containers:
  - name: web
    image: web:1.0
    resources:
      requests: {cpu: 100m}
      limits: {cpu: 200m, memory: 128Mi}
    securityContext: {runAsNonRoot: true, runAsUser: 1000}
";

/// A Pod as the ServiceAccount admission plugin leaves it: the token volume and its mount.
fn with_token(pod: &Value) -> Value {
    let mut pod = pod.clone();
    pod["spec"]["volumes"] = json!([{"name": "kube-api-access-5x2kq", "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}],
        "defaultMode": 420}}]);
    pod["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "kube-api-access-5x2kq",
        "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]);
    pod["spec"]["serviceAccountName"] = json!("default");
    pod["spec"]["serviceAccount"] = json!("default");
    pod
}

#[test]
fn picked_values_are_only_what_the_admission_plugin_would_pick() {
    let repo = support::repo_with(&[
        ("ingress.yaml", INGRESS_WEB.as_bytes()),
        ("nginx.yaml", NGINX_DEFAULT.as_bytes()),
        ("claim.yaml", CLAIM_DATA.as_bytes()),
        ("pod.yaml", POD_WEB.as_bytes()),
        ("quiet.yaml", POD_NO_TOKEN.as_bytes()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(dir.path(), &plain_config(repo.path(), ""));
    gate.wait_ready();
    let ingress = stored(INGRESS_WEB, "kustomize-controller");
    let class = |name: &str| {
        let mut o = ingress.clone();
        o["spec"]["ingressClassName"] = json!(name);
        o
    };
    // CREATE: the default class Git holds, and no other.
    let nginx = gate.review(request(
        "CREATE",
        INGRESS,
        None,
        FLUX,
        &class("nginx"),
        None,
    ));
    assert_allowed(&nginx, "the default IngressClass");
    let internal = gate.review(request(
        "CREATE",
        INGRESS,
        None,
        FLUX,
        &class("internal"),
        None,
    ));
    assert_denied(&internal, "spec.ingressClassName", "another IngressClass");
    // After CREATE: the class may not appear, change or vanish.
    let appears = gate.review(request(
        "UPDATE",
        INGRESS,
        None,
        MALLORY,
        &class("nginx"),
        Some(&ingress),
    ));
    assert_denied(
        &appears,
        "spec.ingressClassName",
        "a class added to a live Ingress",
    );
    let vanishes = gate.review(request(
        "UPDATE",
        INGRESS,
        None,
        MALLORY,
        &ingress,
        Some(&class("nginx")),
    ));
    assert_denied(
        &vanishes,
        "spec.ingressClassName",
        "the picked class removed",
    );
    let kept = gate.review(request(
        "UPDATE",
        INGRESS,
        None,
        FLUX,
        &class("nginx"),
        Some(&class("nginx")),
    ));
    assert_allowed(&kept, "the picked class kept");
    // No default StorageClass in Git (and no cluster watched): nothing explains a class.
    let mut claim = stored(CLAIM_DATA, "kustomize-controller");
    claim["spec"]["storageClassName"] = json!("fast");
    claim["spec"]["volumeMode"] = json!("Filesystem");
    let picked = gate.review(request("CREATE", CLAIM, None, FLUX, &claim, None));
    assert_denied(
        &picked,
        "spec.storageClassName",
        "a storage class nothing picks",
    );
    // The token: only where automount is on.
    let pod = with_token(&stored(POD_WEB, "kustomize-controller"));
    let token = gate.review(request("CREATE", POD, None, FLUX, &pod, None));
    assert_allowed(&token, "the token of a Pod with automount on");
    let quiet = with_token(&stored(POD_NO_TOKEN, "kustomize-controller"));
    let mounted = gate.review(request("CREATE", POD, None, FLUX, &quiet, None));
    assert_denied(
        &mounted,
        "kube-api-access",
        "a token where Git turns automount off",
    );
    gate.stop();
}

// --- 6. scope of unknown kinds --------------------------------------------------------------

const WIDGET: Gvr = Gvr {
    group: "example.com",
    version: "v1",
    kind: "Widget",
    resource: "widgets",
};

#[test]
fn a_manifest_of_unknown_scope_is_found_under_its_sources_namespace() {
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: blue\nspec:\n  size: 3\n";
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: billing\n";
    let repo = support::repo_with(&[
        ("billing/widget.yaml", widget.as_bytes()),
        ("namespaces/billing.yaml", ns.as_bytes()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(
        dir.path(),
        &plain_config(
            repo.path(),
            "  sources:\n  - {path: billing, namespace: billing}\n  - {path: namespaces}\n",
        ),
    );
    gate.wait_ready();
    let mut object = stored(widget, "kustomize-controller");
    object["metadata"]["namespace"] = json!("billing");
    let created = gate.review(request("CREATE", WIDGET, None, FLUX, &object, None));
    assert_allowed(
        &created,
        "Flux's CREATE of the custom resource in its source's namespace",
    );
    let mut namespace = stored(ns, "kustomize-controller");
    namespace["metadata"]["labels"] = json!({"kubernetes.io/metadata.name": "billing"});
    let delete = gate.review(request(
        "DELETE", NAMESPACE, None, MALLORY, &namespace, None,
    ));
    assert_denied(&delete, "Widget", "deleting the namespace that holds it");
    gate.stop();
}

// --- 7. a namespace exempted by its own name ------------------------------------------------

#[test]
fn a_namespace_is_never_exempt_by_its_own_name() {
    let repo = support::repo_with(&[("cm.yaml", configmap("web", "shop").as_bytes())]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(
        dir.path(),
        &plain_config(repo.path(), "exempt:\n  namespaces: [\"kube-*\"]\n"),
    );
    gate.wait_ready();
    let mut ns = stored(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kube-mallory\n",
        "kubectl-create",
    );
    ns["metadata"]["labels"] = json!({"kubernetes.io/metadata.name": "kube-mallory"});
    let create = gate.review(request("CREATE", NAMESPACE, None, MALLORY, &ns, None));
    assert_denied(
        &create,
        "provenance",
        "a Namespace named like an exempt pattern",
    );
    let delete_system = gate.review(request(
        "DELETE",
        NAMESPACE,
        None,
        MALLORY,
        &stored(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kube-public\n",
            "kube-apiserver",
        ),
        None,
    ));
    // Judged (its verdict is in the audit annotations), never exempt by its own name.
    let verdict = delete_system["auditAnnotations"]["provenance"].as_str();
    assert!(
        verdict.is_some_and(|v| v != "exempt"),
        "a Namespace is judged by provenance: {delete_system}"
    );
    // What is inside an exempt namespace stays exempt.
    let inside = gate.review(request(
        "CREATE",
        CONFIGMAP,
        None,
        MALLORY,
        &stored(&configmap("tuning", "kube-system"), "kubectl-create"),
        None,
    ));
    assert_allowed(&inside, "a ConfigMap inside an exempt namespace");
    gate.stop();
}

// --- 8. defaults that keep a cluster running ------------------------------------------------

#[test]
fn the_controller_managers_controllers_leases_and_events_are_not_judged_by_default() {
    let repo = support::repo_with(&[("cm.yaml", configmap("web", "shop").as_bytes())]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(dir.path(), &plain_config(repo.path(), ""));
    gate.wait_ready();
    // A claim template's PVC: no ownerReference with the default retention policy.
    let pvc = stored(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data-db-0\n  namespace: shop\n  labels: {app: db}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests: {storage: 1Gi}\n",
        "kube-controller-manager",
    );
    let claim = gate.review(request(
        "CREATE",
        CLAIM,
        None,
        "system:serviceaccount:kube-system:statefulset-controller",
        &pvc,
        None,
    ));
    assert_allowed(&claim, "statefulset-controller's claim");
    // The aggregated ClusterRole filled by its controller.
    let role = stored(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: monitoring\naggregationRule:\n  clusterRoleSelectors:\n  - matchLabels: {rbac.example.com/aggregate-to-monitoring: \"true\"}\nrules: []\n",
        "clusterrole-aggregation-controller",
    );
    let mut filled = role.clone();
    filled["rules"] = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
    let aggregated = gate.review(request(
        "UPDATE",
        Gvr {
            group: "rbac.authorization.k8s.io",
            version: "v1",
            kind: "ClusterRole",
            resource: "clusterroles",
        },
        None,
        "system:serviceaccount:kube-system:clusterrole-aggregation-controller",
        &filled,
        Some(&role),
    ));
    assert_allowed(&aggregated, "clusterrole-aggregation-controller");
    let attachment = stored(
        "apiVersion: storage.k8s.io/v1\nkind: VolumeAttachment\nmetadata:\n  name: csi-0a1b\nspec:\n  attacher: ebs.csi.aws.com\n  nodeName: node-1\n  source: {persistentVolumeName: pv-1}\n",
        "kube-controller-manager",
    );
    let attach = gate.review(request(
        "CREATE",
        Gvr {
            group: "storage.k8s.io",
            version: "v1",
            kind: "VolumeAttachment",
            resource: "volumeattachments",
        },
        None,
        "system:serviceaccount:kube-system:attachdetach-controller",
        &attachment,
        None,
    ));
    assert_allowed(&attach, "attachdetach-controller's VolumeAttachment");
    // Flux's leader election (no matchConditions before Kubernetes 1.28).
    let lease = stored(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: kustomize-controller-leader-election\n  namespace: flux-system\nspec:\n  holderIdentity: kustomize-controller-7d9f\n  leaseDurationSeconds: 35\n",
        "kustomize-controller",
    );
    let mut renewed = lease.clone();
    renewed["spec"]["renewTime"] = json!("2026-11-24T19:24:12.000000Z");
    let renewal = gate.review(request(
        "UPDATE",
        Gvr {
            group: "coordination.k8s.io",
            version: "v1",
            kind: "Lease",
            resource: "leases",
        },
        None,
        FLUX,
        &renewed,
        Some(&lease),
    ));
    assert_allowed(&renewal, "Flux's Lease renewal");
    let event = stored(
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: web.17a\n  namespace: shop\ninvolvedObject: {kind: Pod, name: web, namespace: shop}\nreason: Pulled\nmessage: pulled\ntype: Normal\n",
        "kubelet",
    );
    let recorded = gate.review(request(
        "CREATE",
        Gvr {
            group: "",
            version: "v1",
            kind: "Event",
            resource: "events",
        },
        None,
        "system:node:node-1",
        &event,
        None,
    ));
    assert_allowed(&recorded, "an Event");
    gate.stop();
}

// --- 1, without a server: a first start, and the operator's acknowledgement ------------------

/// The mirror of the local repository at `dir`, signatures required.
fn mirror_source(
    r: &SignedRepo,
    acknowledge: Option<String>,
) -> gitgate::provenance::mirror::Source {
    use gitgate::provenance::approval::{Trust, Window};
    use gitgate::provenance::signers::AllowedSigners;
    let signers = std::fs::read_to_string(r.beside("allowed_signers")).unwrap();
    let trust = Trust {
        ssh: AllowedSigners::parse("allowed_signers", &signers).unwrap(),
        ..Trust::default()
    };
    gitgate::provenance::mirror::Source {
        remote: None,
        path: r.path(),
        branch: "main".into(),
        roots: Vec::new(),
        renderer: Default::default(),
        default_namespace: "default".into(),
        window: Window {
            commits: 20,
            max_age: std::time::Duration::from_secs(30 * DAY as u64),
        },
        trust: Some(std::sync::Arc::new(trust)),
        refresh: std::time::Duration::from_secs(30),
        acknowledge_rewind: acknowledge,
    }
}

#[test]
fn at_a_first_start_a_hidden_newer_approved_commit_is_a_rewind_until_acknowledged() {
    if !tools_here() {
        return;
    }
    use gitgate::provenance::mirror::Mirror;
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    r.allowed_signers(&format!("{EMAIL} {trusted}\n"));
    let t = now() - DAY;
    let c1 = r.commit(
        &[("old.yaml", &configmap("old", "shop"))],
        Some("trusted"),
        t,
    );
    let c2 = r.commit(
        &[("new.yaml", &configmap("new", "shop"))],
        Some("trusted"),
        t + 10,
    );
    r.git(&["checkout", "-q", &c1], None, t + 20);
    r.git(
        &["merge", "-q", "--no-ff", "-s", "ours", "-m", "sync", &c2],
        None,
        t + 20,
    );
    let merge = r.git(&["rev-parse", "HEAD"], None, t + 20);
    r.git(&["branch", "-q", "-f", "main", &merge], None, t + 20);
    // Nothing remembered: the newer approved commit the tip still reaches gives it away.
    let mirror = Mirror::default();
    let err = mirror
        .sync(&mirror_source(&r, None))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&c1[..12]) && err.contains(&c2[..12]), "{err}");
    assert!(mirror.snapshot().is_none(), "no index: not ready");
    assert!(mirror.rewound().is_some());
    // An acknowledgement of another commit changes nothing; of the branch's tip, moves.
    let err = mirror
        .sync(&mirror_source(&r, Some(c1[..10].to_string())))
        .unwrap_err()
        .to_string();
    assert!(err.contains("rewound") && err.contains(&merge), "{err}");
    mirror
        .sync(&mirror_source(&r, Some(merge[..10].to_string())))
        .unwrap();
    let snapshot = mirror.snapshot().unwrap();
    assert_eq!(snapshot.index.last_approved().unwrap().to_string(), c1);
    assert!(mirror.rewound().is_none());
}

#[test]
fn an_unsigned_commit_on_top_and_a_signed_merge_are_no_rewind() {
    if !tools_here() {
        return;
    }
    use gitgate::provenance::mirror::Mirror;
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    r.allowed_signers(&format!("{EMAIL} {trusted}\n"));
    let t = now() - DAY;
    let c1 = r.commit(&[("a.yaml", &configmap("a", "shop"))], Some("trusted"), t);
    let mirror = Mirror::default();
    let source = mirror_source(&r, None);
    mirror.sync(&source).unwrap();
    // Unsigned on top: the window stays at c1, and that is no rewind.
    r.commit(&[("b.yaml", &configmap("b", "shop"))], None, t + 10);
    mirror.sync(&source).unwrap();
    assert_eq!(
        mirror
            .snapshot()
            .unwrap()
            .index
            .last_approved()
            .unwrap()
            .to_string(),
        c1
    );
    // A feature branch merged with a signed merge commit.
    r.git(&["checkout", "-q", "-b", "feature", &c1], None, t + 20);
    r.commit(
        &[("c.yaml", &configmap("c", "shop"))],
        Some("trusted"),
        t + 20,
    );
    r.git(&["checkout", "-q", "main"], None, t + 30);
    r.git(
        &["merge", "-q", "--no-ff", "-m", "merge feature", "feature"],
        Some("trusted"),
        t + 30,
    );
    let merged = r.git(&["rev-parse", "HEAD"], None, t + 30);
    mirror.sync(&source).unwrap();
    assert_eq!(
        mirror
            .snapshot()
            .unwrap()
            .index
            .last_approved()
            .unwrap()
            .to_string(),
        merged
    );
}

// --- 1, on the edges: a spent acknowledgement, a shallow mirror, a burst of approved commits --

/// A remote (`file://`, shallow like any remote) source over `r`, mirrored into `mirror_dir`.
fn remote_source(
    r: &SignedRepo,
    mirror_dir: &std::path::Path,
    commits: usize,
) -> gitgate::provenance::mirror::Source {
    let yaml = format!(
        "repository:\n  url: file://{}\n  mirrorDir: {}\napproval:\n  window: {{commits: {commits}}}\n  requireSignatures: true\n  allowedSigners: {}\n",
        r.path().display(),
        mirror_dir.display(),
        r.beside("allowed_signers").display()
    );
    let config = gitgate::config::Config::parse("gitgate.yaml", &yaml).unwrap();
    gitgate::provenance::mirror::Source::from_config(&config)
        .unwrap()
        .unwrap()
}

fn newest(mirror: &gitgate::provenance::mirror::Mirror) -> String {
    mirror
        .snapshot()
        .unwrap()
        .index
        .last_approved()
        .unwrap()
        .to_string()
}

/// An unsigned merge on `main` whose first parent is `old` and second `tip`, with the tree of
/// `old`; returns it.
fn rewinding_merge(r: &SignedRepo, old: &str, tip: &str, at: i64) -> String {
    r.git(&["checkout", "-q", "--detach", old], None, at);
    r.git(
        &["merge", "-q", "--no-ff", "-s", "ours", "-m", "sync", tip],
        None,
        at,
    );
    let merge = r.git(&["rev-parse", "HEAD"], None, at);
    r.git(&["branch", "-q", "-f", "main", &merge], None, at);
    r.git(&["checkout", "-q", "main"], None, at);
    merge
}

fn signed_repo() -> SignedRepo {
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    r.allowed_signers(&format!("{EMAIL} {trusted}\n"));
    r
}

#[test]
fn an_acknowledgement_is_spent_and_moves_the_running_window() {
    if !tools_here() {
        return;
    }
    use gitgate::provenance::mirror::Mirror;
    let r = signed_repo();
    let t = now() - DAY;
    let c1 = r.commit(
        &[("old.yaml", &configmap("old", "shop"))],
        Some("trusted"),
        t,
    );
    std::fs::remove_file(r.path().join("old.yaml")).unwrap();
    let c2 = r.commit(
        &[("new.yaml", &configmap("new", "shop"))],
        Some("trusted"),
        t + 10,
    );
    let mirror = Mirror::default();
    mirror.sync(&mirror_source(&r, None)).unwrap();
    assert_eq!(newest(&mirror), c2);
    let first = rewinding_merge(&r, &c1, &c2, t + 20);
    mirror.sync(&mirror_source(&r, None)).unwrap_err();
    // The operator accepts the branch as it is (the key stays in the configuration): the
    // running index moves to c1, as a restarted one would.
    let ack = Some(first[..12].to_string());
    mirror.sync(&mirror_source(&r, ack.clone())).unwrap();
    assert_eq!(newest(&mirror), c1, "the running window moved");
    // An approved commit on top: the window moves on.
    let c3 = r.commit(
        &[("new.yaml", &configmap("new", "shop"))],
        Some("trusted"),
        t + 30,
    );
    mirror.sync(&mirror_source(&r, ack.clone())).unwrap();
    assert_eq!(newest(&mirror), c3);
    // The same trick again: another tip, which the old acknowledgement does not name, on the
    // running mirror and on a restarted one.
    rewinding_merge(&r, &c1, &c3, t + 40);
    let running = mirror.sync(&mirror_source(&r, ack.clone()));
    let fresh = Mirror::default().sync(&mirror_source(&r, ack));
    assert!(
        running.is_err() && fresh.is_err(),
        "running {running:?}, restarted {fresh:?}"
    );
}

#[test]
fn a_first_start_on_a_shallow_mirror_fetches_deeper_and_sees_the_rewinding_merge() {
    if !tools_here() {
        return;
    }
    use gitgate::provenance::mirror::Mirror;
    let r = signed_repo();
    let t = now() - DAY;
    r.commit(
        &[("base.yaml", &configmap("base", "shop"))],
        Some("trusted"),
        t,
    );
    let c1 = r.commit(
        &[("old.yaml", &configmap("old", "shop"))],
        Some("trusted"),
        t + 1,
    );
    std::fs::remove_file(r.path().join("old.yaml")).unwrap();
    let mut tip = String::new();
    for i in 0..6 {
        tip = r.commit(
            &[(
                &format!("n{i}.yaml") as &str,
                &configmap(&format!("n{i}"), "shop"),
            )],
            Some("trusted"),
            t + 10 + i,
        );
    }
    rewinding_merge(&r, &c1, &tip, t + 30);
    let dir = tempfile::tempdir().unwrap();
    let mirror = Mirror::default();
    let result = mirror.sync(&remote_source(&r, &dir.path().join("mirror"), 2));
    let err = result
        .expect_err("the old approved commit was taken as the newest")
        .to_string();
    assert!(err.contains(&c1[..12]), "{err}");
}

#[test]
fn a_fast_forward_of_more_approved_commits_than_a_shallow_mirror_holds_is_no_rewind() {
    if !tools_here() {
        return;
    }
    use gitgate::provenance::mirror::Mirror;
    let r = signed_repo();
    let t = now() - DAY;
    r.commit(&[("a.yaml", &configmap("a", "shop"))], Some("trusted"), t);
    r.commit(
        &[("b.yaml", &configmap("b", "shop"))],
        Some("trusted"),
        t + 1,
    );
    let dir = tempfile::tempdir().unwrap();
    let source = remote_source(&r, &dir.path().join("mirror"), 2);
    let mirror = Mirror::default();
    mirror.sync(&source).unwrap();
    let mut tip = String::new();
    for i in 0..6 {
        tip = r.commit(
            &[(
                &format!("n{i}.yaml") as &str,
                &configmap(&format!("n{i}"), "shop"),
            )],
            Some("trusted"),
            t + 10 + i,
        );
    }
    let result = mirror.sync(&source);
    assert!(result.is_ok(), "a fast-forward was refused: {result:?}");
    assert_eq!(newest(&mirror), tip);
}
