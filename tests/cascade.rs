//! Provenance that cannot be talked around (issue 12), over real repositories:
//! - **no cascade around the gate**: deleting a Namespace that holds objects of the newest
//!   approved commit, or a CustomResourceDefinition whose custom resources it holds, is
//!   refused, naming one of them and how many, whether or not Git holds the Namespace or the
//!   CRD itself, and admitted once Git no longer holds what it would take with it;
//! - **scope is never guessed**: a custom resource whose CRD is not in Git is indexed as its
//!   manifest says and found as its request's scope says; a cluster-scoped one is traceable
//!   at CREATE and its DELETE refused while Git holds it.
//!
//! Requests are shaped like the captured ones in `fixtures/admission-v1/` (`001`, `024`,
//! `026`): what the API server sends, with server-owned metadata and, at DELETE, a null
//! object and the old object set.

mod support;

use std::path::Path;

use gitgate::config::Config;
use gitgate::provenance::index::Index;
use gitgate::provenance::verdict::{Status, Verdict, judge};
use serde_json::{Value, json};

use support::index_of;

/// Removes `paths` from the repository at `dir` in one commit.
fn remove(dir: &Path, paths: &[&str], message: &str) {
    let mut args = vec!["rm", "-q"];
    args.extend(paths);
    support::git(dir, "a@example.com", 1_780_000_100, &args);
    support::git(
        dir,
        "a@example.com",
        1_780_000_100,
        &["commit", "-q", "-m", message],
    );
}

/// What the API server stores for `manifest`: server-owned metadata added, as in the
/// fixtures.
fn stored(manifest: &str) -> Value {
    let mut object: Value = serde_saphyr::from_str(manifest).unwrap();
    let api_version = object["apiVersion"].clone();
    let meta = object["metadata"].as_object_mut().unwrap();
    meta.insert("uid".into(), json!("2a06b223-f4a5-4958-820f-d7f288778fd8"));
    meta.insert("creationTimestamp".into(), json!("2026-11-24T19:23:47Z"));
    meta.insert("generation".into(), json!(1));
    meta.insert(
        "managedFields".into(),
        json!([{"apiVersion": api_version, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {}}, "manager": "kustomize-controller",
            "operation": "Apply", "time": "2026-11-24T19:23:47Z"}]),
    );
    object
}

/// An AdmissionReview `operation` of `object` (at DELETE the object is null and the old
/// object set), by the GitOps identity; `namespace` as the request carries it.
fn review(
    operation: &str,
    (group, version, kind, resource): (&str, &str, &str, &str),
    namespace: Option<&str>,
    object: &Value,
) -> gitgate::input::Review {
    let name = object["metadata"]["name"].clone();
    let (object, old) = match operation {
        "DELETE" => (Value::Null, object.clone()),
        _ => (object.clone(), Value::Null),
    };
    let mut request = json!({
        "uid": "bbc14d35-a87a-44bb-828c-ccd2a828fdca",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": name,
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller",
            "groups": ["system:serviceaccounts", "system:authenticated"]},
        "object": object, "oldObject": old, "dryRun": false
    });
    if let Some(ns) = namespace {
        request["namespace"] = json!(ns);
    }
    let body =
        json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request});
    gitgate::input::parse_admission_review("test", body.to_string().as_bytes())
        .unwrap()
        .1
}

fn judged(index: &Index, review: &gitgate::input::Review) -> Verdict {
    judge(review, index, &Config::default())
}

const NAMESPACE: (&str, &str, &str, &str) = ("", "v1", "Namespace", "namespaces");
const CRD: (&str, &str, &str, &str) = (
    "apiextensions.k8s.io",
    "v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
);

/// The Namespace demo as the API server stores it (the request's namespace is its name, as
/// in fixture 001).
fn namespace_demo() -> Value {
    let mut ns = stored("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n");
    ns["metadata"]["labels"] = json!({"kubernetes.io/metadata.name": "demo"});
    ns["spec"] = json!({"finalizers": ["kubernetes"]});
    ns["status"] = json!({"phase": "Active"});
    ns
}

#[test]
fn deleting_a_namespace_that_holds_what_git_approved_is_refused() {
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let read = |f: &str| std::fs::read(fixtures.join("manifests").join(f)).unwrap();
    let (deploy, cm) = (read("deploy.yaml"), read("cm.yaml"));
    let ns = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n";
    // Git holds the Namespace and two objects inside it.
    let repo = support::repo_with(&[("ns.yaml", ns), ("cm.yaml", &cm), ("deploy.yaml", &deploy)]);
    let delete = review("DELETE", NAMESPACE, Some("demo"), &namespace_demo());
    let v = judged(&index_of(repo.path()), &delete);
    assert_eq!(v.status, Status::Untraceable, "{}", v.reason);

    // The newest approved commit no longer holds the Namespace, but still what is inside it.
    remove(repo.path(), &["ns.yaml"], "the namespace leaves Git");
    let index = index_of(repo.path());
    let v = judged(&index, &delete);
    assert_eq!(
        v.status,
        Status::Untraceable,
        "the garbage collector would delete what Git approved: {}",
        v.reason
    );
    for part in [
        "Namespace demo",
        "2 object(s)",
        "ConfigMap demo/web-config",
        "remove them from Git first",
    ] {
        assert!(v.reason.contains(part), "{part:?} in {}", v.reason);
    }
    assert_eq!(
        v.commit.as_deref(),
        index.last_approved().map(|c| c.to_string()).as_deref()
    );

    // A Namespace that Git never held and that holds nothing of Git's: its DELETE is fine.
    let mut other = namespace_demo();
    other["metadata"]["name"] = json!("scratch");
    let v = judged(
        &index,
        &review("DELETE", NAMESPACE, Some("scratch"), &other),
    );
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);

    // Once Git no longer holds anything inside it, the Namespace may go.
    remove(
        repo.path(),
        &["cm.yaml", "deploy.yaml"],
        "the app leaves Git",
    );
    let v = judged(&index_of(repo.path()), &delete);
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);
}

#[test]
fn deleting_a_crd_whose_custom_resources_git_holds_is_refused() {
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let read = |f: &str| std::fs::read(fixtures.join("manifests").join(f)).unwrap();
    let (crd, widget) = (read("crd.yaml"), read("widget.yaml"));
    let repo = support::repo_with(&[("crd.yaml", &crd), ("widget.yaml", &widget)]);
    // The CRD as the API server stores it (fixture 024), deleted.
    let stored_crd = stored(std::str::from_utf8(&crd).unwrap());
    let delete = review("DELETE", CRD, None, &stored_crd);
    let v = judged(&index_of(repo.path()), &delete);
    assert_eq!(v.status, Status::Untraceable, "{}", v.reason);

    // The newest approved commit no longer holds the CRD, but still a Widget.
    remove(repo.path(), &["crd.yaml"], "the CRD leaves Git");
    let v = judged(&index_of(repo.path()), &delete);
    assert_eq!(
        v.status,
        Status::Untraceable,
        "deleting the CRD deletes every Widget: {}",
        v.reason
    );
    for part in [
        "CustomResourceDefinition.apiextensions.k8s.io widgets.example.com",
        "1 object(s) of the kind it defines",
        "Widget.example.com demo/blue",
    ] {
        assert!(v.reason.contains(part), "{part:?} in {}", v.reason);
    }

    // The CRD of another group and kind is not held back by Widgets.
    let mut gadgets = stored_crd.clone();
    gadgets["metadata"]["name"] = json!("gadgets.example.org");
    gadgets["spec"]["group"] = json!("example.org");
    gadgets["spec"]["names"] = json!({"kind": "Gadget", "plural": "gadgets"});
    let v = judged(
        &index_of(repo.path()),
        &review("DELETE", CRD, None, &gadgets),
    );
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);

    // Once Git holds no Widget, the CRD may go.
    remove(repo.path(), &["widget.yaml"], "the widget leaves Git");
    let v = judged(&index_of(repo.path()), &delete);
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);
}

/// A cluster-scoped custom resource; its CRD is not in Git (installed by a chart, say).
const ZONE: &str = "apiVersion: example.com/v1
kind: Zone
metadata:
  name: eu-west
spec:
  region: eu-west-1
  weight: 3
";
const ZONE_KIND: (&str, &str, &str, &str) = ("example.com", "v1", "Zone", "zones");

#[test]
fn a_cluster_scoped_custom_resource_without_its_crd_in_git_is_traceable() {
    let repo = support::repo_with(&[("zone.yaml", ZONE.as_bytes())]);
    let index = index_of(repo.path());
    let zone = stored(ZONE);
    // Created as the cluster has it: no namespace.
    let v = judged(&index, &review("CREATE", ZONE_KIND, None, &zone));
    assert_eq!(
        v.status,
        Status::Traceable,
        "{}: {:?}",
        v.reason,
        v.differing
    );
    // Its DELETE is refused while Git holds it.
    let v = judged(&index, &review("DELETE", ZONE_KIND, None, &zone));
    assert_eq!(v.status, Status::Untraceable, "{}", v.reason);
    assert!(
        v.reason.contains("still in the newest approved commit"),
        "{}",
        v.reason
    );
    // A changed one is modified, not untraceable: Git holds it.
    let mut changed = zone.clone();
    changed["spec"]["weight"] = json!(9);
    let v = judged(&index, &review("CREATE", ZONE_KIND, None, &changed));
    assert_eq!(v.status, Status::Modified, "{}", v.reason);

    // Had the kind been namespaced, the manifest without a namespace lands in the default
    // namespace, and only there.
    let mut in_default = zone.clone();
    in_default["metadata"]["namespace"] = json!("default");
    let v = judged(
        &index,
        &review("CREATE", ZONE_KIND, Some("default"), &in_default),
    );
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);
    let mut elsewhere = zone.clone();
    elsewhere["metadata"]["namespace"] = json!("demo");
    let v = judged(
        &index,
        &review("CREATE", ZONE_KIND, Some("demo"), &elsewhere),
    );
    assert_eq!(v.status, Status::Untraceable, "{}", v.reason);
    let v = judged(
        &index,
        &review("DELETE", ZONE_KIND, Some("default"), &in_default),
    );
    assert_eq!(v.status, Status::Untraceable, "{}", v.reason);

    // Once Git no longer holds it, its DELETE is traceable.
    support::commit_files(repo.path(), &[("other.yaml", b"# nothing\n")], "keep");
    remove(repo.path(), &["zone.yaml"], "the zone leaves Git");
    let v = judged(
        &index_of(repo.path()),
        &review("DELETE", ZONE_KIND, None, &zone),
    );
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);
}

#[test]
fn a_namespace_the_api_server_drops_does_not_hide_an_object() {
    // A manifest that names a namespace for a kind the cluster keeps cluster-scoped: the API
    // server drops it, and the request comes without one.
    let named = ZONE.replace("  name: eu-west\n", "  name: eu-west\n  namespace: infra\n");
    let crd = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: regions.example.com
spec:
  group: example.com
  names: {kind: Region, plural: regions}
  scope: Cluster
  versions: [{name: v1, served: true, storage: true}]
";
    let region = ZONE
        .replace("kind: Zone", "kind: Region")
        .replace("  name: eu-west\n", "  name: eu-west\n  namespace: infra\n");
    let repo = support::repo_with(&[
        ("zone.yaml", named.as_bytes()),
        ("crd.yaml", crd.as_bytes()),
        ("region.yaml", region.as_bytes()),
    ]);
    let index = index_of(repo.path());
    // CRD not in Git: found by the request's scope.
    let zone = stored(ZONE);
    let v = judged(&index, &review("CREATE", ZONE_KIND, None, &zone));
    assert_eq!(
        v.status,
        Status::Traceable,
        "{}: {:?}",
        v.reason,
        v.differing
    );
    let v = judged(&index, &review("DELETE", ZONE_KIND, None, &zone));
    assert_eq!(v.status, Status::Untraceable, "{}", v.reason);
    // CRD in Git, scope Cluster: indexed without the namespace.
    let region = stored(&ZONE.replace("kind: Zone", "kind: Region"));
    let kind = ("example.com", "v1", "Region", "regions");
    let v = judged(&index, &review("CREATE", kind, None, &region));
    assert_eq!(
        v.status,
        Status::Traceable,
        "{}: {:?}",
        v.reason,
        v.differing
    );
    let v = judged(&index, &review("DELETE", kind, None, &region));
    assert_eq!(v.status, Status::Untraceable, "{}", v.reason);
}
