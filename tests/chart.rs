//! The Helm chart in `charts/gitgate`: `Chart.yaml` and `values.yaml` parse, and every
//! `.Values.a.b` path the templates use exists in `values.yaml` (a typo there renders as
//! nothing, silently). Every documented option set is rendered and linted (`helm lint --strict`,
//! values.schema.json applied) with helm, or with the stand-in on Helm's own engine
//! (`engines::helm`), and every object parses as its kind.

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
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
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
        "NetworkPolicy" => read::<networking::NetworkPolicy>(doc),
        // cert-manager's and the Prometheus Operator's kinds have no types here: their shape
        // as the CRDs define it.
        "Issuer" | "Certificate" => assert!(doc["spec"].is_object(), "{doc}"),
        "ServiceMonitor" => {
            assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1", "{doc}");
            assert!(doc["spec"]["selector"]["matchLabels"].is_object(), "{doc}");
            let endpoints = doc["spec"]["endpoints"].as_array().expect("endpoints");
            assert!(!endpoints.is_empty(), "{doc}");
            for e in endpoints {
                assert!(e["port"].is_string(), "{e}");
                assert!(
                    matches!(e["scheme"].as_str(), Some("http" | "https")),
                    "{e}"
                );
                assert_eq!(e["path"], "/metrics", "{e}");
                if !e["tlsConfig"].is_null() {
                    assert!(e["tlsConfig"].is_object(), "{e}");
                }
            }
        }
        "PrometheusRule" => {
            assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1", "{doc}");
            let duration = regex::Regex::new(r"^[0-9]+[smhdwy]$").unwrap();
            let groups = doc["spec"]["groups"].as_array().expect("groups");
            assert!(!groups.is_empty(), "{doc}");
            for g in groups {
                assert!(g["name"].is_string(), "{g}");
                for r in g["rules"].as_array().expect("rules") {
                    assert!(r["alert"].is_string() || r["record"].is_string(), "{r}");
                    assert!(r["expr"].is_string(), "{r}");
                    for key in ["labels", "annotations"] {
                        if let Some(map) = r.get(key) {
                            assert!(
                                map.as_object().unwrap().values().all(Value::is_string),
                                "{key} of {r}"
                            );
                        }
                    }
                    if let Some(f) = r.get("for") {
                        assert!(duration.is_match(f.as_str().unwrap()), "{r}");
                    }
                }
            }
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

/// `helm lint --strict` with the values file `values`: with helm where it is installed, else
/// with the stand-in (the SDK's lint). Values are validated against values.schema.json there.
fn lint_with_values(values: &str) {
    let Some(helm) = engines::helm() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let mut command = std::process::Command::new(&helm);
    command.args([
        "lint",
        chart().to_str().unwrap(),
        "--strict",
        "--namespace",
        "gitgate-system",
    ]);
    if !helm.ends_with("helm_stand_in.py") {
        command.args(["--kube-version", "1.33.0"]);
    }
    let out = command.arg("--values").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("only runs `helm template`") {
        eprintln!("skipping helm lint: this stand-in cannot lint");
        return;
    }
    assert!(
        out.status.success(),
        "helm lint with {values:?}:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The documented option sets of the chart's README, as values files.
const OPTION_SETS: &[(&str, &str)] = &[
    ("defaults", ""),
    ("generated certificates", "certManager:\n  enabled: false\n"),
    ("no NetworkPolicy", "networkPolicy:\n  enabled: false\n"),
    ("no plain-HTTP metrics port", "metrics:\n  enabled: false\n"),
    (
        "monitoring over plain HTTP",
        "serviceMonitor:\n  enabled: true\nprometheusRule:\n  enabled: true\n",
    ),
    (
        "monitoring over HTTPS",
        "serviceMonitor:\n  enabled: true\n  scheme: https\nprometheusRule:\n  enabled: true\n  alertLabels: {team: platform}\n",
    ),
    ("status rules off", "webhook:\n  statusRules: []\n"),
    ("default priority class", "priorityClassName: \"\"\n"),
    (
        "narrowed NetworkPolicy",
        "networkPolicy:\n  webhook:\n    from: [{ipBlock: {cidr: 10.0.0.0/24}}]\n  metrics:\n    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}\n  kubernetesApi:\n    cidrs: [10.0.0.10/32]\n    ports: [{port: 6443, protocol: TCP}]\n  git:\n    cidrs: [192.0.2.0/24]\n    ports: [{port: 22, protocol: TCP}]\n  extraEgress: [{to: [{ipBlock: {cidr: 10.1.0.0/16}}], ports: [{port: 3128, protocol: TCP}]}]\n",
    ),
    (
        "private repository over SSH",
        "config:\n  repository: {url: \"ssh://git@git.example.com/org/gitops.git\"}\n  approval: {requireSignatures: true}\n  audit: {interval: 1h, kinds: [{group: apps, version: v1, kind: Deployment}]}\ngitCredentials: {type: ssh, sshPrivateKey: KEY, knownHosts: \"git.example.com ssh-ed25519 AAAA\"}\ntrustedKeys: {allowedSigners: \"a@example.com ssh-ed25519 AAAA\"}\npolicyFiles: {team.rego: \"package team\"}\nserviceMonitor: {enabled: true}\n",
    ),
];

fn find<'a>(docs: &'a [Value], kind: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind)
}

/// Every documented option set renders (values.schema.json accepts it), lints, and every
/// object parses as its kind; the webhook's rules, failurePolicy and namespaceSelector, the
/// NetworkPolicy's ports and the pods' priority class are what the values say.
#[test]
fn every_option_set_renders_lints_and_parses() {
    for (name, values) in OPTION_SETS {
        let Some(docs) = render_with_values(values) else {
            return;
        };
        lint_with_values(values);
        for doc in &docs {
            is_an_object_of_its_kind(doc);
        }
        // The configuration is one gitgate accepts.
        let config = docs
            .iter()
            .find_map(|d| d["data"]["gitgate.yaml"].as_str())
            .expect("a ConfigMap with gitgate.yaml");
        let parsed = gitgate::config::Config::parse("gitgate.yaml", config)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{config}"));

        // The webhook: every write of everything, fail closed, system namespaces excluded.
        let webhooks = webhooks_of(&docs);
        let main = webhooks
            .iter()
            .find(|w| w["name"] == "validate.gitgate.dev")
            .expect("the main webhook");
        assert_eq!(main["failurePolicy"], "Fail", "{name}");
        assert_eq!(
            main["rules"],
            serde_json::json!([{"apiGroups": ["*"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE", "DELETE"], "resources": ["*", "*/scale"],
                "scope": "*"}]),
            "{name}"
        );
        let expressions = main["namespaceSelector"]["matchExpressions"]
            .as_array()
            .expect("namespaceSelector.matchExpressions");
        let not_in = expressions
            .iter()
            .find(|e| e["key"] == "kubernetes.io/metadata.name" && e["operator"] == "NotIn")
            .unwrap_or_else(|| panic!("{name}: {expressions:?}"));
        for ns in [
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "gitgate-system",
        ] {
            assert!(
                not_in["values"].as_array().unwrap().iter().any(|v| v == ns),
                "{name}: {ns} excluded: {not_in}"
            );
        }
        let status_hooks = webhooks.len() - 1;
        assert_eq!(
            status_hooks,
            usize::from(!name.contains("status rules off")),
            "{name}"
        );

        // The pods: priority class, ports, the metrics listener in the configuration.
        let deployment = find(&docs, "Deployment").expect("a Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        if *name == "default priority class" {
            assert!(pod["priorityClassName"].is_null(), "{name}: {pod}");
        } else {
            assert_eq!(
                pod["priorityClassName"], "system-cluster-critical",
                "{name}"
            );
        }
        let ports = &pod["containers"][0]["ports"];
        let port_named = |n: &str| {
            ports
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == n)
                .map(|p| p["containerPort"].as_i64().unwrap())
        };
        assert_eq!(port_named("https"), Some(8443), "{name}");
        let service = find(&docs, "Service").expect("a Service");
        let service_port = |n: &str| {
            service["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == n)
                .cloned()
        };
        if *name == "no plain-HTTP metrics port" {
            assert_eq!(port_named("metrics"), None, "{name}");
            assert!(service_port("metrics").is_none(), "{name}");
            assert_eq!(parsed.server.metrics_listen, None, "{name}");
        } else {
            assert_eq!(port_named("metrics"), Some(9090), "{name}");
            let p = service_port("metrics").expect("a metrics Service port");
            assert_eq!(p["port"], 9090, "{name}");
            assert_eq!(p["targetPort"], "metrics", "{name}");
            assert_eq!(
                parsed.server.metrics_listen.as_deref(),
                Some("0.0.0.0:9090"),
                "{name}"
            );
        }

        // The NetworkPolicy: the ports it opens are the pods' ports.
        let policy = find(&docs, "NetworkPolicy");
        if *name == "no NetworkPolicy" {
            assert!(policy.is_none(), "{name}");
        } else {
            let policy = policy.expect("a NetworkPolicy");
            network_policy_ports(name, policy, pod);
        }

        // Monitoring.
        match find(&docs, "ServiceMonitor") {
            Some(monitor) => {
                let endpoint = &monitor["spec"]["endpoints"][0];
                if name.contains("HTTPS") {
                    assert_eq!(endpoint["port"], "https", "{name}");
                    assert_eq!(endpoint["scheme"], "https", "{name}");
                    assert_eq!(endpoint["tlsConfig"]["ca"]["secret"]["key"], "ca.crt");
                } else {
                    assert_eq!(endpoint["port"], "metrics", "{name}");
                    assert_eq!(endpoint["scheme"], "http", "{name}");
                    assert!(endpoint["tlsConfig"].is_null(), "{name}: {endpoint}");
                }
            }
            None => assert!(!values.contains("serviceMonitor"), "{name}"),
        }
        match find(&docs, "PrometheusRule") {
            Some(rule) => prometheus_rule_alerts(name, rule),
            None => assert!(!values.contains("prometheusRule"), "{name}"),
        }
    }
}

/// The NetworkPolicy of the default values (or of the narrowed option set): ingress to the
/// webhook port from anywhere (or the given peers), to the metrics port from the metrics
/// selector, egress to DNS, the API server and the Git server on their ports.
fn network_policy_ports(name: &str, policy: &Value, pod: &Value) {
    let spec = &policy["spec"];
    assert_eq!(
        spec["policyTypes"],
        serde_json::json!(["Ingress", "Egress"]),
        "{name}"
    );
    let pod_port_names: Vec<&str> = pod["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let narrowed = name == "narrowed NetworkPolicy";
    let ingress = spec["ingress"].as_array().unwrap();
    let webhook = ingress
        .iter()
        .find(|r| r["ports"][0]["port"] == "https")
        .expect("an ingress rule for the webhook port");
    assert_eq!(webhook["ports"][0]["protocol"], "TCP");
    if narrowed {
        assert_eq!(
            webhook["from"],
            serde_json::json!([{"ipBlock": {"cidr": "10.0.0.0/24"}}])
        );
    } else {
        // No `from`: every source, the API server included.
        assert!(webhook["from"].is_null(), "{name}: {webhook}");
    }
    let metrics = ingress.iter().find(|r| r["ports"][0]["port"] == "metrics");
    // No metrics port, no rule for it.
    assert_eq!(
        metrics.is_some(),
        pod_port_names.contains(&"metrics"),
        "{name}: {ingress:?}"
    );
    if let Some(metrics) = metrics {
        let peer = &metrics["from"][0];
        if narrowed {
            assert_eq!(
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                "monitoring"
            );
        } else {
            assert_eq!(peer["namespaceSelector"], serde_json::json!({}), "{name}");
        }
    }
    for rule in ingress {
        for p in rule["ports"].as_array().unwrap() {
            let port = p["port"].as_str().unwrap();
            assert!(pod_port_names.contains(&port), "{name}: {port}");
        }
    }
    let egress = spec["egress"].as_array().unwrap();
    let ports_of = |rule: &Value| -> Vec<(i64, String)> {
        rule["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["port"].as_i64().unwrap(),
                    p["protocol"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let tcp = |p: i64| (p, "TCP".to_string());
    assert_eq!(
        ports_of(&egress[0]),
        vec![(53, "UDP".to_string()), tcp(53)],
        "{name}: DNS"
    );
    assert_eq!(
        egress[0]["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
        "kube-dns"
    );
    let cidrs = |rule: &Value| -> Vec<String> {
        rule["to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["ipBlock"]["cidr"].as_str().unwrap().to_string())
            .collect()
    };
    if narrowed {
        assert_eq!(ports_of(&egress[1]), vec![tcp(6443)]);
        assert_eq!(cidrs(&egress[1]), vec!["10.0.0.10/32"]);
        assert_eq!(ports_of(&egress[2]), vec![tcp(22)]);
        assert_eq!(cidrs(&egress[2]), vec!["192.0.2.0/24"]);
        assert_eq!(ports_of(&egress[3]), vec![tcp(3128)]);
    } else {
        assert_eq!(
            ports_of(&egress[1]),
            vec![tcp(443), tcp(6443)],
            "{name}: API"
        );
        assert_eq!(ports_of(&egress[2]), vec![tcp(443), tcp(22)], "{name}: Git");
        for rule in &egress[1..] {
            assert_eq!(cidrs(rule), vec!["0.0.0.0/0", "::/0"], "{name}");
        }
        assert_eq!(egress.len(), 3, "{name}");
    }
}

/// The PrometheusRule's alerts, each on the metric it is about, scoped to this release.
fn prometheus_rule_alerts(name: &str, rule: &Value) {
    let rules = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    let expr_of = |alert: &str| -> String {
        rules
            .iter()
            .find(|r| r["alert"] == alert)
            .unwrap_or_else(|| panic!("{name}: the alert {alert}"))["expr"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (alert, wants) in [
        (
            "GitgateIndexStale",
            &["gitgate_git_sync_age_seconds", "> 600"][..],
        ),
        (
            "GitgateGitSyncFailing",
            &["gitgate_git_syncs_total", "result=\"error\"", "increase("][..],
        ),
        (
            "GitgateBranchRewound",
            &["gitgate_window_rewound", "== 1", "result=\"rewound\""][..],
        ),
        (
            "GitgateWindowEmpty",
            &["gitgate_window_approved_commits", "== 0"][..],
        ),
        (
            "GitgateInternalErrors",
            &["gitgate_internal_errors_total"][..],
        ),
        ("GitgatePolicyErrors", &["gitgate_policy_errors_total"][..]),
        (
            "GitgateBreakGlassUsed",
            &["gitgate_break_glass_total", "increase("][..],
        ),
    ] {
        let expr = expr_of(alert);
        for want in wants {
            assert!(expr.contains(want), "{name}: {alert}: {want} in {expr}");
        }
        assert!(
            expr.contains("namespace=\"gitgate-system\",service=\"gg-gitgate\""),
            "{name}: {alert} is scoped to the release: {expr}"
        );
    }
    // Prometheus' own templating survives Helm's.
    let stale = rules
        .iter()
        .find(|r| r["alert"] == "GitgateIndexStale")
        .unwrap();
    assert!(
        stale["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("{{ $labels.pod }}"),
        "{stale}"
    );
    if name.contains("HTTPS") {
        assert!(
            rules.iter().all(|r| r["labels"]["team"] == "platform"),
            "{name}"
        );
    }
}

/// values.schema.json is JSON Schema draft-07, types every value of values.yaml, and refuses
/// a misspelled key or a value of the wrong type at render time.
#[test]
fn the_values_schema_types_every_value_and_refuses_bad_ones() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(chart().join("values.schema.json")).unwrap())
            .unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let values = yaml(&chart().join("values.yaml"));
    fn walk(path: &str, value: &Value, schema: &Value, missing: &mut Vec<String>) {
        if schema["type"].is_null() && schema["enum"].is_null() {
            missing.push(format!("{path}: no type"));
        }
        if let Some(map) = value.as_object() {
            for (k, v) in map {
                let sub = &schema["properties"][k];
                if sub.is_null() {
                    missing.push(format!("{path}.{k}: not in the schema"));
                } else {
                    walk(&format!("{path}.{k}"), v, sub, missing);
                }
            }
        }
    }
    let mut missing = Vec::new();
    walk("", &values, &schema, &mut missing);
    assert!(missing.is_empty(), "{}", missing.join("\n"));

    let Some(helm) = engines::helm() else {
        return;
    };
    for bad in [
        "replicaCount: two\n",
        "networkPolicy:\n  enabeld: true\n",
        "webhook:\n  failurePolicy: Sometimes\n",
        "serviceMonitor:\n  scheme: ftp\n",
        "metrics:\n  port: \"9090\"\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, bad).unwrap();
        let out = std::process::Command::new(&helm)
            .args(["template", "gg", chart().to_str().unwrap(), "--values"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("schema"), "{bad:?}: {stderr}");
    }
}
