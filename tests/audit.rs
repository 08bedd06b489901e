//! `gitgate audit` (the real binary) against the test API server of `support/apiserver.rs`
//! holding the fixtures' objects as the API server stores them, and a repository holding
//! their manifests: policy violations, drift (`modified`, `untraceable`), objects Git holds
//! that the cluster lacks, and the faults (no cluster, a forbidden list, an API server that
//! stops answering). And `check`: `data.inventory` holds the head's objects, so a referential
//! policy denies a second Ingress with the same host before merge.

#[path = "support/apiserver.rs"]
mod apiserver;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use apiserver::{ApiServer, fixture_object, ingress};
use serde_json::{Value, json};

/// Runs the binary off the runtime (the test API server runs on it), with `HOME` and the
/// cluster's environment variables under the test's control.
async fn gitgate(dir: &Path, args: &[&str]) -> (i32, String, String) {
    gitgate_with(dir, args, &[]).await
}

/// [`gitgate`] with more environment variables.
async fn gitgate_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
            .args(&args)
            .envs(env)
            .current_dir(&dir)
            .env("HOME", &dir)
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        )
    })
    .await
    .unwrap()
}

/// A repository whose main branch holds the fixtures' manifests (`demo/`).
fn gitops_repo(fixtures: &Path) -> tempfile::TempDir {
    let files: Vec<(String, Vec<u8>)> = ["deploy.yaml", "cm.yaml", "svc.yaml", "quant.yaml"]
        .iter()
        .map(|f| {
            (
                format!("demo/{f}"),
                std::fs::read(fixtures.join("manifests").join(f)).unwrap(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    support::repo_with(&refs)
}

fn with_status(mut obj: Value) -> Value {
    if obj["kind"] == "Deployment" {
        obj["status"] = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2});
    }
    obj
}

/// A privileged Pod a ReplicaSet owns (no Git holds Pods: their owner is audited).
fn owned_privileged_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-5d9c-abcde", "namespace": "demo",
        "labels": {"app": "web"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9c",
            "uid": "5e0c1c5e-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"containers": [{"name": "web", "image": "ghcr.io/stefanprodan/podinfo:6.5.0",
            "securityContext": {"privileged": true},
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"},
        "status": {"phase": "Running"}})
}

fn items_of<'a>(report: &'a Value, policy: &str) -> Vec<&'a Value> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["policy"] == policy)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reports_violations_drift_and_missing_objects() {
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let repo = gitops_repo(&fixtures);
    let server = ApiServer::start().await;
    // The approved state, mostly: the configmap and the quant deployment as Git has them;
    // web modified by hand (its image); a debug pod no Git holds; a privileged pod a
    // ReplicaSet owns; and no Service web, which Git holds.
    for file in [
        "005-create-configmaps-web-config.json",
        "030-create-deployments-quant.json",
        "016-update-deployments-web.json",
        "027-create-pods-debug.json",
    ] {
        server.apply(with_status(fixture_object(file).unwrap()));
    }
    server.apply(owned_privileged_pod());
    // The system namespaces are not audited (the webhook is not sent them either).
    let mut system = owned_privileged_pod();
    system["metadata"]["namespace"] = json!("kube-system");
    system["metadata"]["name"] = json!("kube-proxy-abcde");
    system["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    server.apply(system);
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(work.path());
    std::fs::write(
        work.path().join("gitgate.yaml"),
        format!(
            "repository:\n  url: {}\ncluster:\n  requestTimeout: 5s\n  pageSize: 1\n",
            repo.path().display()
        ),
    )
    .unwrap();
    let (code, out, err) = gitgate(
        work.path(),
        &[
            "audit",
            "-o",
            "json",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verdict"], "rejected", "{report:#}");
    let audit = &report["audit"];
    assert_eq!(audit["provenance"]["traceable"], 2, "{audit}");
    assert_eq!(audit["provenance"]["modified"], 1, "{audit}");
    assert_eq!(audit["provenance"]["untraceable"], 1, "{audit}");
    assert_eq!(audit["provenance"]["exempt"], 1, "{audit}");
    assert_eq!(audit["missing"], 1, "{audit}");
    let kinds: Vec<&str> = audit["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    for kind in ["apps/v1 Deployment", "v1 ConfigMap", "v1 Service", "v1 Pod"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }

    // Drift: the modified deployment with the differing path, at its manifest in Git; the
    // debug pod at its API path.
    let provenance = items_of(&report, "provenance");
    assert_eq!(provenance.len(), 2, "{provenance:#?}");
    let web = provenance
        .iter()
        .find(|i| i["object"] == "Deployment.apps demo/web")
        .unwrap();
    assert_eq!(web["path"], "demo/deploy.yaml");
    assert!(web["message"].as_str().unwrap().contains("image"), "{web}");
    let debug = provenance
        .iter()
        .find(|i| i["object"] == "Pod demo/debug")
        .unwrap();
    assert_eq!(debug["path"], "/api/v1/namespaces/demo/pods/debug");
    assert!(
        debug["message"]
            .as_str()
            .unwrap()
            .contains("no approved commit"),
        "{debug}"
    );
    // Violations of the policies themselves.
    assert!(
        items_of(&report, "latest-tag")
            .iter()
            .any(|i| i["object"] == "Deployment.apps demo/web")
    );
    assert!(
        items_of(&report, "host-path")
            .iter()
            .any(|i| i["object"] == "Pod demo/debug")
    );
    let privileged = items_of(&report, "privileged-container");
    assert_eq!(privileged.len(), 1, "{privileged:#?}");
    assert_eq!(privileged[0]["object"], "Pod demo/web-5d9c-abcde");
    // Git holds a Service web that the cluster lacks.
    let missing = items_of(&report, "missing-in-cluster");
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert_eq!(missing[0]["path"], "demo/svc.yaml");
    assert_eq!(missing[0]["object"], "Service demo/web");
    assert!(
        missing[0]["message"]
            .as_str()
            .unwrap()
            .contains("not in the cluster")
    );
    assert!(!out.contains("kube-system"), "{out}");
    // Every object was listed in pages of 1 and judged once.
    assert_eq!(
        report["checked"].as_array().unwrap().len(),
        5,
        "{:#}",
        report["checked"]
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.contains("/pods?") && r.contains("continue="))
    );

    // The text format says where each finding is, and sums up the cluster.
    let (code, text, _) = gitgate(
        work.path(),
        &["audit", "--kubeconfig", kubeconfig.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        text.contains("demo/svc.yaml:1: error [missing-in-cluster]"),
        "{text}"
    );
    assert!(
        text.contains("/api/v1/namespaces/demo/pods/debug: error [provenance]"),
        "{text}"
    );
    assert!(text.contains("rejected: 5 objects in"), "{text}");

    // JUnit: one case per object, and one for the object the cluster lacks.
    let (code, junit, _) = gitgate(
        work.path(),
        &[
            "audit",
            "-o",
            "junit",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1);
    assert!(junit.contains("[missing-in-cluster]"), "{junit}");
    assert!(junit.contains(r#"tests="6" failures="4""#), "{junit}");

    // In the approved state (the drift undone, the service back), nothing is reported.
    server.apply(with_status(
        fixture_object("004-create-deployments-web.json").unwrap(),
    ));
    server.apply(fixture_object("006-create-services-web.json").unwrap());
    server.delete("v1", "Pod", Some("demo"), "debug");
    server.delete("v1", "Pod", Some("demo"), "web-5d9c-abcde");
    let (code, out, err) = gitgate(
        work.path(),
        &[
            "audit",
            "-o",
            "json",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    )
    .await;
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert_eq!(report["audit"]["provenance"]["traceable"], 4, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_faults_are_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    // No cluster at all: no kubeconfig, no in-cluster service account.
    let (code, out, err) = gitgate(work.path(), &["audit"]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("gitgate audit: no cluster"), "{err}");
    assert!(out.is_empty(), "{out}");

    // A forbidden list: the report says which kind could not be read, the rest is audited,
    // and the verdict is "could not check" (exit 2).
    let server = ApiServer::start().await;
    server.apply(apiserver::namespace("web", json!({})));
    server.apply(ingress("web", "a", "a.example"));
    server.forbid("", "pods", true);
    let kubeconfig = server.kubeconfig(work.path());
    let (code, out, err) = gitgate(
        work.path(),
        &[
            "audit",
            "-o",
            "json",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 2, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verdict"], "error");
    let forbidden = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| {
            i["message"]
                .as_str()
                .unwrap()
                .contains("cannot list v1 Pod")
        })
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(forbidden["unchecked"], true);
    assert!(
        forbidden["message"]
            .as_str()
            .unwrap()
            .contains("403 Forbidden"),
        "{forbidden}"
    );

    // An API server that stops answering: an error naming the request, within the limit.
    std::fs::write(
        work.path().join("gitgate.yaml"),
        "cluster:\n  requestTimeout: 1s\n",
    )
    .unwrap();
    server.forbid("", "pods", false);
    server.freeze(true);
    let (code, out, err) = gitgate(
        work.path(),
        &["audit", "--kubeconfig", kubeconfig.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("no answer within 1s"),
        "{out}\n{err}"
    );
}

/// A referential template and its constraint (`data.inventory`).
const UNIQUE_HOST: &str = include_str!("data/unique-host.yaml");

fn yaml(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

/// The policies to use: the gatekeeper-library's own template and constraint when
/// GITGATE_GK_LIBRARY is set, else the small one above.
fn unique_host_policies() -> Vec<(String, Vec<u8>)> {
    if let Some(library) = std::env::var_os("GITGATE_GK_LIBRARY") {
        let dir = PathBuf::from(library).join("library/general/uniqueingresshost");
        return vec![
            (
                "policies/template.yaml".into(),
                std::fs::read(dir.join("template.yaml")).unwrap(),
            ),
            (
                "policies/constraint.yaml".into(),
                std::fs::read(dir.join("samples/unique-ingress-host/constraint.yaml")).unwrap(),
            ),
        ];
    }
    vec![(
        "policies/unique-host.yaml".into(),
        UNIQUE_HOST.as_bytes().to_vec(),
    )]
}

#[test]
fn check_gives_referential_policies_the_heads_objects() {
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "gitgate.yaml".into(),
            b"policies:\n  builtin: false\n  paths: [policies]\n".to_vec(),
        ),
        (
            "apps/web/ingress.json".into(),
            yaml(&ingress("web", "web", "shop.example.com")),
        ),
    ];
    files.extend(unique_host_policies());
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let repo = support::repo_with(&refs);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    // A second Ingress with the same host, in a file of its own: denied before merge.
    support::commit_files(
        dir,
        &[(
            "apps/shop/ingress.json",
            &yaml(&ingress("shop", "shop", "shop.example.com")),
        )],
        "shop ingress",
    );
    let (code, out, err) = support::gitgate(dir, &["check", "-o", "json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let denial = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"] == "apps/shop/ingress.json")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(denial["level"], "error");
    let message = denial["message"].as_str().unwrap();
    assert!(message.contains("shop.example.com"), "{message}");
    // The ingress that was there first, unchanged, is not judged again; and another host passes.
    support::commit_files(
        dir,
        &[(
            "apps/shop/ingress.json",
            &yaml(&ingress("shop", "shop", "other.example.com")),
        )],
        "another host",
    );
    let (code, out, err) = support::gitgate(dir, &["check"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// A template that denies Pods in namespaces labelled `env: prod` (tests/data).
const DENY_IN_PROD: &str = include_str!("data/deny-pods-in-prod.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_the_clusters_namespace_labels_with_a_kubeconfig() {
    let repo = support::repo_with(&[
        (
            "gitgate.yaml",
            b"policies:\n  builtin: false\n  paths: [policies]\n",
        ),
        ("policies/deny.yaml", DENY_IN_PROD.as_bytes()),
    ]);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}});
    support::commit_files(dir, &[("apps/pod.json", &yaml(&pod))], "a pod");
    // The repository has no manifest of Namespace prod: its labels are unknown.
    let (code, out, err) = gitgate(dir, &["check"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    // The cluster's Namespace says env=prod.
    let server = ApiServer::start().await;
    server.apply(apiserver::namespace("prod", json!({"env": "prod"})));
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(work.path());
    let (code, out, err) = gitgate(
        dir,
        &["check", "--kubeconfig", kubeconfig.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("no Pod in a production namespace"), "{out}");
    // A kubeconfig that cannot be used is an error, never a pass.
    let (code, _, err) = gitgate(dir, &["check", "--kubeconfig", "/nonexistent/kubeconfig"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/kubeconfig"), "{err}");
}

/// Issue 18: the work on one object of a page panics outside the policies' guard (a test hook
/// injects it): that object is reported unchecked and the audit exits 2. (Before, the whole
/// chunk of the page that thread judged vanished from the report, and the audit passed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_whose_work_panics_is_unchecked_never_dropped() {
    let server = ApiServer::start().await;
    for name in ["a", "b", "c", "d", "e", "f"] {
        server.apply(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"containers": [{"name": "web", "image": "ghcr.io/stefanprodan/podinfo:6.5.0",
                "securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
                "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m", "memory": "128Mi"}}}]},
            "status": {"phase": "Running"}}));
    }
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(work.path());
    std::fs::write(
        work.path().join("gitgate.yaml"),
        "cluster:\n  requestTimeout: 5s\n",
    )
    .unwrap();
    let args = [
        "audit",
        "-o",
        "json",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ];
    let (code, out, err) = gitgate(work.path(), &args).await;
    assert_eq!(code, 0, "a clean audit passes: {out}{err}");
    let (code, out, err) = gitgate_with(
        work.path(),
        &args,
        &[("GITGATE_TEST_PANIC_ON", "Pod demo/c")],
    )
    .await;
    assert_eq!(code, 2, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let checked: Vec<&str> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["object"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Pod demo/")
        })
        .map(|c| c["object"].as_str().unwrap())
        .collect();
    assert_eq!(checked.len(), 6, "every pod is in the report: {checked:?}");
    let unchecked: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["unchecked"] == true)
        .collect();
    assert_eq!(unchecked.len(), 1, "{unchecked:?}");
    assert_eq!(unchecked[0]["object"], "Pod demo/c");
    assert!(
        unchecked[0]["message"]
            .as_str()
            .unwrap()
            .contains("injected panic"),
        "{unchecked:?}"
    );
}

/// Issue 20: a policy that matches every kind (no `kinds` in its match) audits every kind the
/// cluster serves, as Gatekeeper's audit does; and an audit of nothing is exit 2, never
/// "passed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_matches_every_kind_audits_every_served_kind() {
    let server = ApiServer::start().await;
    server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "marked", "namespace": "demo", "labels": {"forbidden": "yes"}},
        "data": {"a": "b"}}));
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(work.path());
    let template = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sforbiddenlabel}
spec:
  crd: {spec: {names: {kind: K8sForbiddenLabel}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8sforbiddenlabel
      violation[{"msg": msg}] {
        input.review.object.metadata.labels.forbidden
        msg := sprintf("%v carries the forbidden label", [input.review.object.metadata.name])
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sForbiddenLabel
metadata: {name: no-forbidden-label}
"#;
    std::fs::create_dir(work.path().join("policies")).unwrap();
    std::fs::write(work.path().join("policies/forbidden.yaml"), template).unwrap();
    std::fs::write(
        work.path().join("gitgate.yaml"),
        "policies:\n  builtin: false\n  paths: [policies]\ncluster:\n  requestTimeout: 5s\n",
    )
    .unwrap();
    let args = [
        "audit",
        "-o",
        "json",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ];
    let (code, out, err) = gitgate(work.path(), &args).await;
    assert_eq!(code, 1, "the ConfigMap is found: {out}{err}");
    assert!(out.contains("marked carries the forbidden label"), "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["audit"]["kinds"].as_array().unwrap().len() > 3,
        "every served kind: {report}"
    );
    // Nothing to audit: no kind is named, synced or held by Git.
    let pod_only = template.replace(
        "metadata: {name: no-forbidden-label}\n",
        "metadata: {name: no-forbidden-label}\nspec:\n  match:\n    kinds: [{apiGroups: [\"nothing.example\"], kinds: [\"Nothing\"]}]\n",
    );
    std::fs::write(work.path().join("policies/forbidden.yaml"), pod_only).unwrap();
    let (code, out, err) = gitgate(work.path(), &args).await;
    assert_eq!(code, 2, "an audit of nothing: {out}{err}");
    assert!(out.contains("nothing to audit"), "{out}");
}
