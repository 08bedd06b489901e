//! The Helm chart in `charts/gitgate`: `Chart.yaml` and `values.yaml` parse, and every
//! `.Values.a.b` path the templates use exists in `values.yaml` (a typo there renders as
//! nothing, silently). Rendering with `helm template` is tested where helm is installed (the
//! status webhook's test also with the stand-in on Helm's own engine, `engines::helm`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

// Only `engines::helm` is used here.
#[allow(dead_code)]
#[path = "support/engines.rs"]
mod engines;

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/gitgate")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn chart_and_values_parse() {
    let chart_yaml = yaml(&chart().join("Chart.yaml"));
    assert_eq!(chart_yaml["apiVersion"], "v2");
    assert_eq!(chart_yaml["name"], "gitgate");
    let values = yaml(&chart().join("values.yaml"));
    assert!(values.is_object());
}

/// Every `.Values.x.y...` reference in a template, with the file it is in.
fn value_paths() -> Vec<(String, String)> {
    let re = regex::Regex::new(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)").unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(chart().join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for c in re.captures_iter(&text) {
            out.push((path.display().to_string(), c[1].to_string()));
        }
    }
    out
}

#[test]
fn every_values_path_in_the_templates_exists() {
    let values = yaml(&chart().join("values.yaml"));
    let paths = value_paths();
    assert!(paths.len() > 20, "templates use .Values: {}", paths.len());
    let mut missing = Vec::new();
    for (file, path) in &paths {
        let mut node = &values;
        for key in path.trim_start_matches('.').split('.') {
            match node.get(key) {
                Some(next) => node = next,
                None => {
                    missing.push(format!("{file}: .Values{path}"));
                    break;
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths missing from values.yaml:\n{}",
        missing.join("\n")
    );
}

#[test]
fn helm_template_renders_objects() {
    if std::process::Command::new("helm")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("skipping: helm is not installed on this machine");
        return;
    }
    // Defaults; generated certificates; and a private repository over SSH with trusted keys,
    // required signatures, a policy file, a refresh token and a ServiceMonitor.
    let full: &[&str] = &[
        "--set",
        "config.repository.url=ssh://git@git.example.com/org/gitops.git",
        "--set",
        "gitCredentials.type=ssh",
        "--set",
        "gitCredentials.sshPrivateKey=KEY",
        "--set",
        "gitCredentials.knownHosts=git.example.com ssh-ed25519 AAAA",
        "--set",
        "trustedKeys.allowedSigners=a@example.com ssh-ed25519 AAAA",
        "--set",
        "config.approval.requireSignatures=true",
        "--set",
        "policyFiles.team\\.rego=package team",
        "--set",
        "serviceMonitor.enabled=true",
    ];
    for extra in [&[][..], &["--set", "certManager.enabled=false"][..], full] {
        let out = std::process::Command::new("helm")
            .args([
                "template",
                "gg",
                chart().to_str().unwrap(),
                "--namespace",
                "gitgate-system",
                // A cluster as recent as the chart's oldest supported one at least (helm's
                // own default is older than the chart's kubeVersion).
                "--kube-version",
                "1.33.0",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        // Read as kubectl reads it (YAML 1.1 octal modes such as 0440 included).
        let docs: Vec<Value> = gitgate::manifest::parse_str("helm template", &text)
            .unwrap()
            .into_iter()
            .map(|d| d.value)
            .filter(|v| !v.is_null())
            .collect();
        assert!(
            docs.iter()
                .all(|d| d["kind"].is_string() && d["apiVersion"].is_string())
        );
        for doc in &docs {
            is_an_object_of_its_kind(doc);
        }
        // The configuration the chart renders is one gitgate accepts (unknown keys refused).
        let config = docs
            .iter()
            .find_map(|d| d["data"]["gitgate.yaml"].as_str())
            .expect("a ConfigMap with gitgate.yaml");
        if let Err(e) = gitgate::config::Config::parse("gitgate.yaml", config) {
            panic!("{e}\n{config}");
        }
        let webhook = docs
            .iter()
            .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
            .expect("a webhook configuration");
        let hook = &webhook["webhooks"][0];
        let service = docs
            .iter()
            .find(|d| d["kind"] == "Service")
            .expect("a Service");
        let target = &hook["clientConfig"]["service"];
        assert_eq!(target["path"], "/validate");
        assert_eq!(target["name"], service["metadata"]["name"], "{target}");
        assert_eq!(target["namespace"], "gitgate-system", "{target}");
        let port = target["port"].as_i64().unwrap_or(443);
        assert!(
            service["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"].as_i64() == Some(port)),
            "the Service serves port {port}: {service}"
        );
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["admissionReviewVersions"], serde_json::json!(["v1"]));
        let excluded = hook["namespaceSelector"].to_string();
        for ns in [
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "gitgate-system",
        ] {
            assert!(excluded.contains(ns), "{ns} excluded: {excluded}");
        }
    }
}

/// Reads a rendered document as the Kubernetes type its kind names (k8s-openapi), so that a
/// field of the wrong type or shape fails here rather than at `helm install`.
fn is_an_object_of_its_kind(doc: &Value) {
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, apps::v1 as apps, core::v1 as core,
        policy::v1 as policy, rbac::v1 as rbac,
    };
    fn read<T: serde::de::DeserializeOwned>(doc: &Value) {
        if let Err(e) = serde_json::from_value::<T>(doc.clone()) {
            panic!(
                "{} {} is not a valid {}: {e}",
                doc["kind"],
                doc["metadata"]["name"],
                std::any::type_name::<T>()
            );
        }
    }
    assert!(doc["metadata"]["name"].is_string(), "{doc}");
    match doc["kind"].as_str().unwrap_or_default() {
        "Deployment" => read::<apps::Deployment>(doc),
        "Service" => read::<core::Service>(doc),
        "ServiceAccount" => read::<core::ServiceAccount>(doc),
        "ConfigMap" => read::<core::ConfigMap>(doc),
        "Secret" => read::<core::Secret>(doc),
        "PodDisruptionBudget" => read::<policy::PodDisruptionBudget>(doc),
        "ValidatingWebhookConfiguration" => read::<admission::ValidatingWebhookConfiguration>(doc),
        "ClusterRole" => read::<rbac::ClusterRole>(doc),
        "ClusterRoleBinding" => read::<rbac::ClusterRoleBinding>(doc),
        "Role" => read::<rbac::Role>(doc),
        "RoleBinding" => read::<rbac::RoleBinding>(doc),
        // cert-manager's and the Prometheus Operator's kinds have no types here.
        "Issuer" | "Certificate" | "ServiceMonitor" => {
            assert!(doc["spec"].is_object(), "{doc}")
        }
        other => panic!("an unexpected kind in the chart: {other}"),
    }
}

/// The ClusterRole's rules rendered with `args` (`None` without helm).
fn cluster_role_rules(args: &[&str]) -> Option<Vec<Value>> {
    if std::process::Command::new("helm")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("skipping: helm is not installed on this machine");
        return None;
    }
    let out = std::process::Command::new("helm")
        .args([
            "template",
            "gg",
            chart().to_str().unwrap(),
            "--namespace",
            "gitgate-system",
        ])
        .args(["--kube-version", "1.33.0"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let role = gitgate::manifest::parse_str("helm template", &text)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .find(|d| d["kind"] == "ClusterRole")
        .expect("a ClusterRole");
    Some(role["rules"].as_array().cloned().unwrap_or_default())
}

#[test]
fn rbac_grants_exactly_what_the_configuration_reads() {
    // Nothing configured reads the cluster: nothing is granted.
    let Some(rules) = cluster_role_rules(&[]) else {
        return;
    };
    assert!(rules.is_empty(), "{rules:?}");
    let sync = "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config}\nspec:\n  sync:\n    syncOnly:\n    - {group: \"\", version: v1, kind: Service}\n";
    let policy = "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sX\nmetadata: {name: x}\nspec:\n  match:\n    namespaceSelector: {matchLabels: {env: prod}}\n";
    let rules = cluster_role_rules(&[
        "--set-json",
        r#"config.inventory.sync=[{"group":"networking.k8s.io","version":"v1","kind":"Ingress"}]"#,
        "--set-json",
        r#"config.audit.kinds=[{"group":"apps","version":"v1","kind":"Deployment"}]"#,
        "--set",
        "config.audit.interval=1h",
        "--set",
        "config.repository.url=https://git.example.com/org/gitops.git",
        "--set-string",
        &format!("policyFiles.sync\\.yaml={sync}"),
        "--set-string",
        &format!("policyFiles.x\\.yaml={policy}"),
    ])
    .unwrap();
    let grants = |group: &str, resource: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|r| r["apiGroups"][0] == group && r["resources"][0] == resource)
            .flat_map(|r| {
                r["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
            })
            .collect()
    };
    let watch = vec!["get", "list", "watch"];
    assert_eq!(grants("", "namespaces"), watch, "{rules:?}");
    assert_eq!(grants("networking.k8s.io", "ingresses"), watch, "{rules:?}");
    assert_eq!(grants("", "services"), watch, "{rules:?}");
    assert_eq!(
        grants("apiextensions.k8s.io", "customresourcedefinitions"),
        watch,
        "{rules:?}"
    );
    assert_eq!(grants("apps", "deployments"), vec!["list"], "{rules:?}");
    // The classes the admission plugins pick from, read beside the CRDs.
    assert_eq!(
        grants("networking.k8s.io", "ingressclasses"),
        watch,
        "{rules:?}"
    );
    assert_eq!(
        grants("storage.k8s.io", "storageclasses"),
        watch,
        "{rules:?}"
    );
    assert_eq!(
        grants("scheduling.k8s.io", "priorityclasses"),
        watch,
        "{rules:?}"
    );
    assert_eq!(rules.len(), 8, "{rules:?}");
}

/// The documents the chart renders with the values file `values` (YAML; "" for the defaults),
/// with helm where it is installed, else with the stand-in on Helm's own engine
/// (tests/support/helm_stand_in.py); `None`, with a message, when neither can run.
fn render_with_values(values: &str) -> Option<Vec<Value>> {
    let helm = engines::helm()?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let mut command = std::process::Command::new(&helm);
    command.args([
        "template",
        "gg",
        chart().to_str().unwrap(),
        "--namespace",
        "gitgate-system",
    ]);
    // helm's own default cluster version is older than the chart's kubeVersion; the stand-in
    // (Helm v4's engine) defaults to a recent one and knows no --kube-version.
    if !helm.ends_with("helm_stand_in.py") {
        command.args(["--kube-version", "1.33.0"]);
    }
    let out = command.arg("--values").arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        gitgate::manifest::parse_str("helm template", &text)
            .unwrap()
            .into_iter()
            .map(|d| d.value)
            .filter(|v| !v.is_null())
            .collect(),
    )
}

/// The webhooks of the rendered ValidatingWebhookConfiguration.
fn webhooks_of(docs: &[Value]) -> Vec<Value> {
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .expect("a webhook configuration");
    is_an_object_of_its_kind(config);
    config["webhooks"].as_array().cloned().unwrap_or_default()
}

/// The operations on `group`/`resource` (e.g. "namespaces/status") that some webhook's rules
/// send, matched as the API server matches them: "*" is every group, and as a resource every
/// resource but no subresource; "*/status" is the status subresource of every resource.
fn operations_sent(webhooks: &[Value], group: &str, resource: &str) -> BTreeSet<String> {
    let has = |list: &Value, want: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str() == Some(want))
    };
    let subresource = resource.split_once('/').map(|(_, sub)| sub);
    let mut out = BTreeSet::new();
    for webhook in webhooks {
        for rule in webhook["rules"].as_array().unwrap() {
            let group_matches = has(&rule["apiGroups"], "*") || has(&rule["apiGroups"], group);
            let resource_matches = has(&rule["resources"], resource)
                || match subresource {
                    None => has(&rule["resources"], "*"),
                    Some(sub) => has(&rule["resources"], format!("*/{sub}").as_str()),
                };
            if group_matches && resource_matches {
                for op in rule["operations"].as_array().unwrap() {
                    out.insert(op.as_str().unwrap().to_string());
                }
            }
        }
    }
    out
}

#[test]
fn status_writes_are_sent_where_the_api_server_keeps_their_metadata() {
    // Defaults: a second webhook sends the status writes of the kinds where labels and
    // annotations survive a write through status, as UPDATEs, to the same place as the first.
    let Some(docs) = render_with_values("") else {
        return;
    };
    let webhooks = webhooks_of(&docs);
    assert_eq!(webhooks.len(), 2, "{webhooks:?}");
    let main = webhooks
        .iter()
        .find(|w| w["name"] == "validate.gitgate.dev")
        .expect("the main webhook");
    let status = webhooks
        .iter()
        .find(|w| w["name"] == "status.validate.gitgate.dev")
        .expect("the status webhook");
    for key in [
        "clientConfig",
        "namespaceSelector",
        "failurePolicy",
        "matchPolicy",
        "sideEffects",
        "admissionReviewVersions",
        "matchConditions",
    ] {
        assert_eq!(status[key], main[key], "{key}");
    }
    assert!(status["timeoutSeconds"].as_i64().is_some(), "{status}");
    let update: BTreeSet<String> = ["UPDATE".to_string()].into();
    for (group, resource) in [
        ("", "namespaces/status"),
        ("apps", "deployments/status"),
        ("apps", "statefulsets/status"),
        ("apps", "daemonsets/status"),
        ("apps", "replicasets/status"),
        ("batch", "jobs/status"),
        ("batch", "cronjobs/status"),
    ] {
        assert_eq!(
            operations_sent(&webhooks, group, resource),
            update,
            "{group}/{resource}"
        );
    }
    // Only UPDATEs through the status webhook: a status write is never anything else.
    for rule in status["rules"].as_array().unwrap() {
        assert_eq!(rule["operations"], serde_json::json!(["UPDATE"]), "{rule}");
    }
    // The kubelets' constant status writes are not sent.
    for resource in ["pods/status", "nodes/status"] {
        assert!(
            operations_sent(&webhooks, "", resource).is_empty(),
            "{resource}"
        );
    }
    // The main webhook is unchanged: every write of the objects themselves.
    assert_eq!(
        operations_sent(&webhooks, "apps", "deployments"),
        ["CREATE", "DELETE", "UPDATE"]
            .map(String::from)
            .into_iter()
            .collect::<BTreeSet<_>>()
    );

    // Every kube-controller-manager identity is exempt, e.g. the ones the old list lacked.
    let config = docs
        .iter()
        .find_map(|d| d["data"]["gitgate.yaml"].as_str())
        .expect("a ConfigMap with gitgate.yaml");
    let config: Value = serde_saphyr::from_str(config).unwrap();
    let users = &config["exempt"]["users"];
    for user in [
        "system:serviceaccount:kube-system:statefulset-controller",
        "system:serviceaccount:kube-system:clusterrole-aggregation-controller",
        "system:serviceaccount:kube-system:attachdetach-controller",
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:apiserver",
    ] {
        assert!(
            users.as_array().unwrap().iter().any(|u| u == user),
            "{user} in {users}"
        );
    }

    // statusRules [] (or null) leaves the second webhook out; the first stays as it was.
    for values in [
        "webhook:\n  statusRules: []\n",
        "webhook:\n  statusRules: null\n",
    ] {
        let docs = render_with_values(values).unwrap();
        let without = webhooks_of(&docs);
        assert_eq!(without.len(), 1, "{values}: {without:?}");
        assert_eq!(&without[0], main, "{values}");
        for (group, resource) in [("", "namespaces/status"), ("apps", "deployments/status")] {
            assert!(
                operations_sent(&without, group, resource).is_empty(),
                "{values}: {group}/{resource}"
            );
        }
    }
}
