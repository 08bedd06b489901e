//! The traceability match against what a real kube-apiserver sent a webhook
//! (`../shared/fixtures/admission-v1/`) and the manifests that were applied
//! (`manifests/`): every object whose content is in Git is traceable, and every hand change in
//! the fixtures is caught with its path. Skips with a message where the fixtures are absent.

mod support;

use std::path::Path;

use gitgate::config::ControllerStamps;
use gitgate::provenance::matching::{MatchOptions, Outcome, Status, compare};
use serde_json::{Value, json};

/// `request.object` and `request.oldObject` of a fixture.
fn request(dir: &Path, name: &str) -> (Value, Option<Value>) {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let review: Value = serde_json::from_str(&text).unwrap();
    let req = &review["request"];
    let old = req.get("oldObject").filter(|v| !v.is_null()).cloned();
    (req["object"].clone(), old)
}

fn manifest(dir: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join("manifests").join(name)).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap()
}

/// A copy of `v` with the value at JSON pointer `pointer` replaced.
fn with(v: &Value, pointer: &str, new: Value) -> Value {
    let mut v = v.clone();
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} not in the manifest")) = new;
    v
}

/// The manifest kubectl applied, from the object's last-applied annotation.
fn last_applied(obj: &Value) -> Value {
    let text = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("a last-applied annotation");
    serde_json::from_str(text).unwrap()
}

fn none() -> MatchOptions {
    MatchOptions::default()
}

fn stamps() -> MatchOptions {
    MatchOptions::from(&ControllerStamps::default())
}

fn assert_traceable(out: &Outcome, what: &str) {
    assert_eq!(out.status, Status::Traceable, "{what}: {out:#?}");
    assert!(out.differing.is_empty(), "{what}: {out:#?}");
}

fn assert_modified(out: &Outcome, paths: &[&str], what: &str) {
    assert_eq!(out.status, Status::Modified, "{what}: {out:#?}");
    for p in paths {
        assert!(
            out.differing.iter().any(|d| d == p),
            "{what}: {p} not in differing {:?}",
            out.differing
        );
    }
}

const IMAGE: &str = "spec.template.spec.containers[name=web].image";
const POD: &str = "/spec/template/spec/containers/0/image";

/// deploy.yaml as Git held it after the changes of 007 (replicas 3) and 011 (image 6.5.1).
fn deploy_at(dir: &Path, replicas: u64, image: &str) -> Value {
    let d = with(
        &manifest(dir, "deploy.yaml"),
        "/spec/replicas",
        json!(replicas),
    );
    with(
        &d,
        POD,
        json!(format!("ghcr.io/stefanprodan/podinfo:{image}")),
    )
}

#[test]
fn create_004_matches_deploy_yaml_defaults_and_last_applied_allowed() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (obj, old) = request(&dir, "004-create-deployments-web.json");
    let out = compare(&manifest(&dir, "deploy.yaml"), &obj, old.as_ref(), &none());
    assert_traceable(&out, "004");
    // Every field the API server added is a known default: nothing left to report.
    assert!(out.unattested.is_empty(), "{out:#?}");
}

#[test]
fn create_030_quantities_compare_canonically() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (obj, old) = request(&dir, "030-create-deployments-quant.json");
    let git = manifest(&dir, "quant.yaml");
    // The manifest really says what the README says.
    let res = &git["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(res["requests"]["cpu"], json!(0.5));
    assert_eq!(res["limits"]["cpu"], json!("1.0"));
    assert_eq!(res["limits"]["memory"], json!("1.5Gi"));
    let out = compare(&git, &obj, old.as_ref(), &stamps());
    assert_traceable(&out, "030");
    assert!(out.unattested.is_empty(), "{out:#?}");

    // A real change of a quantity is still caught: 1.5Gi is not 1536Ki.
    let smaller = with(
        &obj,
        "/spec/template/spec/containers/0/resources/limits/memory",
        json!("1536Ki"),
    );
    let out = compare(&git, &smaller, None, &stamps());
    assert_modified(
        &out,
        &["spec.template.spec.containers[name=app].resources.limits.memory"],
        "030 with 1536Ki",
    );
    // And "1.0" compares as a quantity only where it is one.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "v", "namespace": "demo"}, "data": {"VERSION": "1.0"}});
    let edited = with(&cm, "/data/VERSION", json!("1"));
    assert_modified(
        &compare(&cm, &edited, None, &none()),
        &["data.VERSION"],
        "ConfigMap value 1.0 → 1",
    );
}

#[test]
fn create_005_configmap_and_006_service() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (cm, _) = request(&dir, "005-create-configmaps-web-config.json");
    let out = compare(&manifest(&dir, "cm.yaml"), &cm, None, &none());
    assert_traceable(&out, "005");
    assert!(out.unattested.is_empty(), "{out:#?}");
    let (svc, _) = request(&dir, "006-create-services-web.json");
    let out = compare(&manifest(&dir, "svc.yaml"), &svc, None, &none());
    assert_traceable(&out, "006");
    // clusterIP, ipFamilies, protocol, type, ...: allocated or defaulted.
    assert!(out.unattested.is_empty(), "{out:#?}");
}

#[test]
fn creates_of_other_kinds_are_traceable() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let cases = [
        (
            "001-create-namespaces-demo.json",
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "demo", "labels": {"capture": "yes"}}}),
        ),
        (
            "002-create-rolebindings-devs-edit.json",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "devs-edit", "namespace": "demo"},
                   "subjects": [{"kind": "Group", "name": "developers"}],
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "edit"}}),
        ),
        (
            "013-create-roles-dev-all.json",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "dev-all", "namespace": "demo"},
                   "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        ),
        (
            "012-create-secrets-db-pass.json",
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "db-pass", "namespace": "demo"},
                   "stringData": {"password": "s3cr3t"}}),
        ),
        (
            "022-create-serviceaccounts-default.json",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "default", "namespace": "demo"}}),
        ),
    ];
    for (fixture, git) in cases {
        let (obj, _) = request(&dir, fixture);
        let out = compare(&git, &obj, None, &none());
        assert_traceable(&out, fixture);
        assert!(out.unattested.is_empty(), "{fixture}: {out:#?}");
    }
    let (crd, _) = request(
        &dir,
        "024-create-customresourcedefinitions-widgets.example.com.json",
    );
    let out = compare(&manifest(&dir, "crd.yaml"), &crd, None, &none());
    assert_traceable(&out, "024");
    assert!(out.unattested.is_empty(), "{out:#?}");
    let (widget, _) = request(&dir, "026-create-widgets-blue.json");
    let out = compare(&manifest(&dir, "widget.yaml"), &widget, None, &none());
    assert_traceable(&out, "026");
    let changed = with(&widget, "/spec/size", json!(30));
    assert_modified(
        &compare(&manifest(&dir, "widget.yaml"), &changed, None, &none()),
        &["spec.size"],
        "026 with size 30",
    );
}

/// What kubectl applied is in each object's last-applied annotation: used as the Git
/// manifest, every client-side apply is traceable and the two hand edits on top of a stale
/// annotation (017, 019) are not.
#[test]
fn every_client_side_apply_matches_its_own_last_applied() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    for fixture in [
        "001-create-namespaces-demo.json",
        "004-create-deployments-web.json",
        "005-create-configmaps-web-config.json",
        "006-create-services-web.json",
        "007-update-deployments-web.json",
        "008-update-deployments-web.json",
        "009-update-deployments-web.json",
        "023-create-deployments-web2.json",
        "024-create-customresourcedefinitions-widgets.example.com.json",
        "026-create-widgets-blue.json",
    ] {
        let (obj, old) = request(&dir, fixture);
        let out = compare(&last_applied(&obj), &obj, old.as_ref(), &stamps());
        assert_traceable(&out, fixture);
        assert!(out.unattested.is_empty(), "{fixture}: {out:#?}");
    }
    for (fixture, path) in [
        ("017-update-configmaps-web-config.json", "data.LOG_LEVEL"),
        (
            "019-update-configmaps-web-config.json",
            "metadata.annotations.note",
        ),
    ] {
        let (obj, old) = request(&dir, fixture);
        let out = compare(&last_applied(&obj), &obj, old.as_ref(), &stamps());
        assert_modified(&out, &[path], fixture);
    }
}

#[test]
fn update_007_replicas_3_is_traceable_only_against_the_new_manifest() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (obj, old) = request(&dir, "007-update-deployments-web.json");
    let out = compare(&deploy_at(&dir, 3, "6.5.0"), &obj, old.as_ref(), &none());
    assert_traceable(&out, "007 vs replicas 3");
    let out = compare(&manifest(&dir, "deploy.yaml"), &obj, old.as_ref(), &none());
    assert_modified(&out, &["spec.replicas"], "007 vs replicas 2");
    assert_eq!(out.differing, vec!["spec.replicas"]);
}

#[test]
fn server_side_applies_008_to_011_by_the_gitops_identity() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    for (fixture, image) in [
        ("008-update-deployments-web.json", "6.5.0"),
        ("009-update-deployments-web.json", "6.5.0"),
        ("010-update-deployments-web.json", "6.5.0"),
        ("011-update-deployments-web.json", "6.5.1"),
    ] {
        let (obj, old) = request(&dir, fixture);
        let git = deploy_at(&dir, 3, image);
        let out = compare(&git, &obj, old.as_ref(), &stamps());
        assert_traceable(&out, fixture);
        assert!(out.unattested.is_empty(), "{fixture}: {out:#?}");
    }
    // 011 against the manifest before the image change.
    let (obj, old) = request(&dir, "011-update-deployments-web.json");
    let out = compare(&deploy_at(&dir, 3, "6.5.0"), &obj, old.as_ref(), &stamps());
    assert_modified(&out, &[IMAGE], "011 vs 6.5.0");
    assert_eq!(out.differing, vec![IMAGE]);
}

#[test]
fn scale_015_is_compared_on_replicas() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (obj, old) = request(&dir, "015-update-deployments-scale-web.json");
    assert_eq!(obj["kind"], "Scale");
    let out = compare(&manifest(&dir, "deploy.yaml"), &obj, old.as_ref(), &none());
    assert_modified(&out, &["spec.replicas"], "015 vs replicas 2");
    assert_eq!(out.differing, vec!["spec.replicas"]);
    let out = compare(&deploy_at(&dir, 3, "6.5.1"), &obj, old.as_ref(), &none());
    assert_eq!(out.differing, vec!["spec.replicas"], "015 vs replicas 3");
    // Scaling to what Git says is traceable; nothing else of the Scale is compared.
    let out = compare(&deploy_at(&dir, 5, "6.5.1"), &obj, old.as_ref(), &none());
    assert_traceable(&out, "015 vs replicas 5");
    assert!(out.unattested.is_empty(), "{out:#?}");
    // A manifest without replicas leaves them to someone else: a change is drift.
    let mut git = manifest(&dir, "deploy.yaml");
    git["spec"].as_object_mut().unwrap().remove("replicas");
    let out = compare(&git, &obj, old.as_ref(), &none());
    assert_modified(&out, &["spec.replicas"], "015 vs no replicas");
}

#[test]
fn set_image_016_is_caught() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (obj, old) = request(&dir, "016-update-deployments-web.json");
    assert_eq!(obj.pointer(POD), Some(&json!("evil.example/miner:latest")));
    // Against Git with the replicas the Scale (015) left, only the image differs.
    let out = compare(&deploy_at(&dir, 5, "6.5.1"), &obj, old.as_ref(), &none());
    assert_eq!(out.differing, vec![IMAGE], "{out:#?}");
    let out = compare(&deploy_at(&dir, 3, "6.5.1"), &obj, old.as_ref(), &none());
    assert_modified(&out, &[IMAGE, "spec.replicas"], "016");
}

#[test]
fn hand_label_018_and_annotation_019() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (obj, old) = request(&dir, "018-update-deployments-web.json");
    // Even against a manifest that agrees with everything else, the label is drift.
    let git = with(
        &deploy_at(&dir, 5, "6.5.1"),
        POD,
        json!("evil.example/miner:latest"),
    );
    let out = compare(&git, &obj, old.as_ref(), &stamps());
    assert_eq!(out.status, Status::Modified);
    assert_eq!(out.differing, vec!["metadata.labels.team"]);
    let out = compare(&deploy_at(&dir, 3, "6.5.1"), &obj, old.as_ref(), &stamps());
    assert_modified(
        &out,
        &["metadata.labels.team", IMAGE, "spec.replicas"],
        "018",
    );

    let (cm, old) = request(&dir, "019-update-configmaps-web-config.json");
    let debug = with(
        &manifest(&dir, "cm.yaml"),
        "/data/LOG_LEVEL",
        json!("debug"),
    );
    let out = compare(&debug, &cm, old.as_ref(), &stamps());
    assert_eq!(out.status, Status::Modified);
    assert_eq!(out.differing, vec!["metadata.annotations.note"]);
    let out = compare(&manifest(&dir, "cm.yaml"), &cm, old.as_ref(), &stamps());
    assert_modified(
        &out,
        &["metadata.annotations.note", "data.LOG_LEVEL"],
        "019 vs cm.yaml",
    );
}

#[test]
fn patch_017_changes_data() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (cm, old) = request(&dir, "017-update-configmaps-web-config.json");
    let out = compare(&manifest(&dir, "cm.yaml"), &cm, old.as_ref(), &none());
    assert_modified(&out, &["data.LOG_LEVEL"], "017");
    let debug = with(
        &manifest(&dir, "cm.yaml"),
        "/data/LOG_LEVEL",
        json!("debug"),
    );
    assert_traceable(&compare(&debug, &cm, old.as_ref(), &none()), "017 vs debug");
}

#[test]
fn controller_stamps_are_allowed_only_when_configured() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let label = r#"metadata.labels["kustomize.toolkit.fluxcd.io/name"]"#;
    let annotation = r#"metadata.annotations["argocd.argoproj.io/tracking-id"]"#;
    let stamp = |obj: &Value| {
        let mut obj = obj.clone();
        obj["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!("apps");
        obj["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] =
            json!("apps:apps/Deployment:demo/web");
        obj
    };
    // At CREATE.
    let (obj, _) = request(&dir, "004-create-deployments-web.json");
    let git = manifest(&dir, "deploy.yaml");
    let stamped = stamp(&obj);
    let out = compare(&git, &stamped, None, &stamps());
    assert_traceable(&out, "stamped 004, prefixes configured");
    assert!(out.unattested.is_empty(), "{out:#?}");
    let out = compare(&git, &stamped, None, &none());
    assert_modified(&out, &[label, annotation], "stamped 004, no prefixes");
    assert_eq!(out.differing.len(), 2, "{out:#?}");
    // At UPDATE (the stamp added by this request).
    let (obj, old) = request(&dir, "008-update-deployments-web.json");
    let git = deploy_at(&dir, 3, "6.5.0");
    let stamped = stamp(&obj);
    assert_traceable(
        &compare(&git, &stamped, old.as_ref(), &stamps()),
        "stamped 008, prefixes configured",
    );
    assert_modified(
        &compare(&git, &stamped, old.as_ref(), &none()),
        &[label, annotation],
        "stamped 008, no prefixes",
    );
    // A prefix is a prefix of the key, not of anything: a look-alike is still drift.
    let mut fake = obj.clone();
    fake["metadata"]["labels"]["kustomize.toolkit.fluxcd.io.evil/name"] = json!("x");
    assert_modified(
        &compare(&git, &fake, old.as_ref(), &stamps()),
        &[r#"metadata.labels["kustomize.toolkit.fluxcd.io.evil/name"]"#],
        "look-alike stamp",
    );
}

/// 027: `kubectl run debug` with a hostPath of / and runAsUser 0, against a manifest with the
/// same pod but neither. Git's fields all match, but the hostPath volume, its mount and
/// runAsUser are explained by nothing: the pod is `modified`, with those paths unattested.
/// Everything the API server added (token volume and mount, tolerations, priority, pull policy,
/// ...) is a known default and not reported.
#[test]
fn debug_pod_027_unattested_fields() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (obj, _) = request(&dir, "027-create-pods-debug.json");
    let git: Value = serde_saphyr::from_str(
        "apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: demo
  labels: {run: debug}
spec:
  containers:
  - name: debug
    image: busybox
  restartPolicy: Never
",
    )
    .unwrap();
    let out = compare(&git, &obj, None, &stamps());
    assert_eq!(out.status, Status::Modified, "{out:#?}");
    assert!(out.differing.is_empty(), "{out:#?}");
    assert_eq!(
        out.unattested,
        vec![
            "spec.containers[name=debug].securityContext.runAsUser",
            "spec.containers[name=debug].volumeMounts[mountPath=/host]",
            "spec.volumes[name=root]",
        ],
        "{out:#?}"
    );
    // With the hostPath volume and the user in Git, everything is explained.
    let full = with(
        &git,
        "/spec/containers/0",
        json!({"name": "debug", "image": "busybox",
               "volumeMounts": [{"name": "root", "mountPath": "/host"}],
               "securityContext": {"runAsUser": 0}}),
    );
    let mut full = full;
    full["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
    let out = compare(&full, &obj, None, &stamps());
    assert_traceable(&out, "027 vs full manifest");
    assert!(out.unattested.is_empty(), "{out:#?}");
}

#[test]
fn dry_run_023_and_a_hand_made_deployment() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let (obj, _) = request(&dir, "023-create-deployments-web2.json");
    let git = last_applied(&obj);
    assert_traceable(&compare(&git, &obj, None, &none()), "023");
    // Created by hand with an extra template label: labels are never defaulted.
    let mut hand = obj.clone();
    hand["spec"]["template"]["metadata"]["labels"]["debug"] = json!("1");
    assert_modified(
        &compare(&git, &hand, None, &none()),
        &["spec.template.metadata.labels.debug"],
        "023 with a hand label",
    );
}
