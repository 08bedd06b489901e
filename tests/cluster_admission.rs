//! The webhook with the cluster (the test API server of `support/apiserver.rs`): a
//! `namespaceSelector` matches the cached labels of the request's namespace, a referential
//! policy reads `data.inventory` of the synced kinds (a second Ingress with the same host is
//! denied), `/readyz` waits for the caches and says why not, and without the cluster the
//! policies that need it fail closed unless `cluster.enabled: false`.

#[path = "support/apiserver.rs"]
mod apiserver;
mod support;

use std::sync::Arc;
use std::time::Duration;

use apiserver::{ApiServer, ingress, namespace};
use gitgate::cluster::Cluster;
use gitgate::cluster::sync::Needs;
use gitgate::config::Config;
use gitgate::policy::PolicySet;
use gitgate::policy::load::{SourceFile, load};
use gitgate::serve::AppState;
use serde_json::{Value, json};

/// A template that denies Pods in namespaces labelled `env: prod` (tests/data).
const DENY_IN_PROD: &str = include_str!("data/deny-pods-in-prod.yaml");

/// A small referential template, written for this test after the gatekeeper-library's
/// `uniqueingresshost`, and Gatekeeper's own sync config naming what it reads.
const UNIQUE_HOST_POLICY: &str = include_str!("data/unique-host.yaml");

/// Gatekeeper's sync config naming what the template reads.
const SYNC: &str = r#"apiVersion: config.gatekeeper.sh/v1alpha1
kind: Config
metadata: {name: config, namespace: gatekeeper-system}
spec:
  sync:
    syncOnly:
    - {group: extensions, version: v1beta1, kind: Ingress}
    - {group: networking.k8s.io, version: v1, kind: Ingress}
"#;

fn policies(text: &str) -> PolicySet {
    load(
        &[SourceFile {
            path: "policies.yaml".into(),
            text: text.into(),
        }],
        &gitgate::policy::Options::default(),
    )
    .unwrap()
}

fn config(extra: &str) -> Config {
    let text = format!("cluster:\n  watchTimeout: 60s\n  requestTimeout: 2s\n{extra}");
    Config::parse("gitgate.yaml", &text).unwrap()
}

/// Serves `state` on plain HTTP (the router the TLS server runs), returns its base URL.
async fn serve(state: AppState) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = gitgate::serve::router(Arc::new(state), 1 << 20);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn state(set: PolicySet, config: &Config, kubeconfig: Option<&std::path::Path>) -> AppState {
    let needs = Needs::of(&set, config);
    let cluster = Cluster::start(config, &needs, kubeconfig, false).await;
    AppState::new(set, config).with_cluster(cluster, needs)
}

fn review(operation: &str, object: Value) -> Value {
    let kind = object["kind"].as_str().unwrap().to_string();
    let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "0b4a7e7e-0000-4000-8000-000000000001",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
        "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"],
        "operation": operation, "userInfo": {"username": "alice", "groups": ["developers"]},
        "object": object, "oldObject": null, "dryRun": false}})
}

fn pod(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})
}

async fn decide(url: &str, body: &Value) -> Value {
    let answer: Value = reqwest::Client::new()
        .post(format!("{url}/validate"))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["response"].clone()
}

async fn get(url: &str, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("{url}{path}")).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Polls `f` until it is true, for up to 20 s.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 20 s: {what}");
}

#[tokio::test]
async fn namespace_selector_reads_the_cached_namespace_labels() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.apply(namespace("prod", json!({"env": "prod"})));
    server.apply(namespace("dev", json!({"env": "dev"})));
    let kubeconfig = server.kubeconfig(dir.path());
    let url = serve(state(policies(DENY_IN_PROD), &config(""), Some(&kubeconfig)).await).await;
    eventually("ready", || async { get(&url, "/readyz").await.0 == 200 }).await;
    let denied = decide(&url, &review("CREATE", pod("prod"))).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(
        denied["status"]["message"]
            .as_str()
            .unwrap()
            .contains("no Pod in a production namespace"),
        "{denied}"
    );
    assert_eq!(
        decide(&url, &review("CREATE", pod("dev"))).await["allowed"],
        true
    );
    // A namespace labelled later is seen through the watch.
    server.apply(namespace("dev", json!({"env": "prod"})));
    eventually("dev relabelled", || async {
        decide(&url, &review("CREATE", pod("dev"))).await["allowed"] == false
    })
    .await;
    let (_, ready) = get(&url, "/readyz").await;
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["cluster"]["state"], "watching", "{ready}");
    assert_eq!(
        ready["cluster"]["caches"][0]["kind"], "v1 Namespace",
        "{ready}"
    );
    assert_eq!(ready["cluster"]["caches"][0]["objects"], 2, "{ready}");
    let (_, metrics) = get(&url, "/metrics").await;
    assert!(
        metrics.contains("gitgate_cluster_cache_objects{kind=\"v1 Namespace\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gitgate_cluster_cache_age_seconds{kind=\"v1 Namespace\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn data_inventory_holds_the_synced_kinds_at_admission() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.apply(namespace("web", json!({})));
    server.apply(namespace("shop", json!({})));
    server.apply(ingress("web", "web", "shop.example.com"));
    let kubeconfig = server.kubeconfig(dir.path());
    let set = policies(&format!("{UNIQUE_HOST_POLICY}---\n{SYNC}"));
    let needs = Needs::of(&set, &Config::default());
    assert_eq!(
        needs.sync.len(),
        2,
        "the Gatekeeper Config among the policies is read"
    );
    assert!(
        needs.sync[0].origin.starts_with("policies.yaml:"),
        "{:?}",
        needs.sync
    );
    let url = serve(state(set, &config(""), Some(&kubeconfig)).await).await;
    // Ready although the first kind is not served (the cluster has none of it).
    eventually("ready", || async { get(&url, "/readyz").await.0 == 200 }).await;
    let (_, ready) = get(&url, "/readyz").await;
    assert!(ready.contains("not served"), "{ready}");
    let second = ingress("shop", "shop", "shop.example.com");
    let denied = decide(&url, &review("CREATE", second)).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(
        denied["status"]["message"]
            .as_str()
            .unwrap()
            .contains("host shop.example.com is taken by ingress web/web"),
        "{denied}"
    );
    // Another host, and the same ingress updated, are admitted.
    assert_eq!(
        decide(
            &url,
            &review("CREATE", ingress("shop", "shop", "other.example.com"))
        )
        .await["allowed"],
        true
    );
    assert_eq!(
        decide(
            &url,
            &review("UPDATE", ingress("web", "web", "shop.example.com"))
        )
        .await["allowed"],
        true
    );
    // Once the first ingress is gone, the host is free.
    server.delete("networking.k8s.io/v1", "Ingress", Some("web"), "web");
    eventually("the deletion seen", || async {
        decide(
            &url,
            &review("CREATE", ingress("shop", "shop", "shop.example.com")),
        )
        .await["allowed"]
            == true
    })
    .await;
}

#[tokio::test]
async fn the_gatekeeper_library_uniqueingresshost_when_it_is_here() {
    let Some(library) = std::env::var_os("GITGATE_GK_LIBRARY") else {
        eprintln!("skipping: GITGATE_GK_LIBRARY is not set");
        return;
    };
    let dir = std::path::PathBuf::from(library).join("library/general/uniqueingresshost");
    let read = |p: &str| SourceFile {
        path: p.into(),
        text: std::fs::read_to_string(dir.join(p)).unwrap(),
    };
    let set = load(
        &[
            read("template.yaml"),
            read("samples/unique-ingress-host/constraint.yaml"),
            read("sync.yaml"),
        ],
        &gitgate::policy::Options::default(),
    )
    .unwrap();
    let server = ApiServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    server.apply(namespace("web", json!({})));
    server.apply(ingress("web", "web", "shop.example.com"));
    let kubeconfig = server.kubeconfig(tmp.path());
    let mut cfg = config("");
    if Needs::of(&set, &cfg).sync.is_empty() {
        cfg = config(
            "inventory:\n  sync: [{group: networking.k8s.io, version: v1, kind: Ingress}]\n",
        );
    }
    let url = serve(state(set, &cfg, Some(&kubeconfig)).await).await;
    eventually("ready", || async { get(&url, "/readyz").await.0 == 200 }).await;
    let denied = decide(
        &url,
        &review("CREATE", ingress("shop", "shop", "shop.example.com")),
    )
    .await;
    assert_eq!(denied["allowed"], false, "{denied}");
    assert!(
        denied["status"]["message"]
            .as_str()
            .unwrap()
            .contains("ingress host conflicts"),
        "{denied}"
    );
}

#[tokio::test]
async fn not_ready_until_the_caches_are_synced_and_decisions_fail_closed_meanwhile() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.apply(namespace("prod", json!({"env": "prod"})));
    server.forbid("", "namespaces", true);
    let kubeconfig = server.kubeconfig(dir.path());
    let url = serve(state(policies(DENY_IN_PROD), &config(""), Some(&kubeconfig)).await).await;
    eventually("the reason", || async {
        let (code, body) = get(&url, "/readyz").await;
        code == 503 && body.contains("forbidden")
    })
    .await;
    let answer = decide(&url, &review("CREATE", pod("dev"))).await;
    assert_eq!(answer["allowed"], false, "failureMode deny: {answer}");
    assert!(
        answer["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not synced"),
        "{answer}"
    );
    server.forbid("", "namespaces", false);
    eventually("ready", || async { get(&url, "/readyz").await.0 == 200 }).await;
    assert_eq!(
        decide(&url, &review("CREATE", pod("dev"))).await["allowed"],
        true
    );
}

#[tokio::test]
async fn a_cluster_out_of_reach_is_not_ready_unless_turned_off() {
    // A kubeconfig that cannot be read: the policies that need the cluster cannot decide.
    let missing = std::path::Path::new("/nonexistent/kubeconfig");
    let url = serve(state(policies(DENY_IN_PROD), &config(""), Some(missing)).await).await;
    let (code, body) = get(&url, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("no-pods-in-prod match by namespaceSelector"),
        "{body}"
    );
    assert!(body.contains("/nonexistent/kubeconfig"), "{body}");
    let answer = decide(&url, &review("CREATE", pod("dev"))).await;
    assert_eq!(answer["allowed"], false, "{answer}");
    // Turned off: ready, and the namespaceSelector matches nothing.
    let off = config("  enabled: false\n");
    let url = serve(state(policies(DENY_IN_PROD), &off, Some(missing)).await).await;
    let (code, body) = get(&url, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"disabled\""), "{body}");
    assert_eq!(
        decide(&url, &review("CREATE", pod("prod"))).await["allowed"],
        true
    );
    // Nothing needs the cluster: no connection is tried at all, and all is as before.
    let url = serve(state(PolicySet::default(), &config(""), Some(missing)).await).await;
    let (code, body) = get(&url, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"off\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_audits_on_an_interval_and_sets_gauges() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.apply(namespace("web", json!({})));
    server.apply(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "root", "namespace": "web"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
            "securityContext": {"privileged": true},
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}));
    let kubeconfig = server.kubeconfig(dir.path());
    let set = gitgate::builtin::policy_set(&gitgate::policy::Options::default()).unwrap();
    let cfg = config("audit:\n  interval: 1h\n  policyReports: true\n");
    let state = Arc::new(state(set, &cfg, Some(&kubeconfig)).await);
    gitgate::serve::audit::spawn(&state);
    let app = gitgate::serve::router(state.clone(), 1 << 20);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    eventually("the audit's gauges", || async {
        get(&url, "/metrics")
            .await
            .1
            .contains("gitgate_audit_last_run_timestamp_seconds")
    })
    .await;
    let (_, metrics) = get(&url, "/metrics").await;
    assert!(
        metrics.contains(
            "gitgate_audit_violations{policy=\"privileged-container\",action=\"deny\"} 1"
        ),
        "{metrics}"
    );
    // No repository: no provenance verdict.
    assert!(
        metrics.contains("gitgate_audit_objects{status=\"none\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gitgate_audit_runs_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert_eq!(get(&url, "/readyz").await.0, 200);
    // The findings as a PolicyReport of the namespace.
    let report = || {
        server
            .objects("wgpolicyk8s.io", "policyreports")
            .into_iter()
            .find(|r| {
                r["metadata"]["namespace"] == "web" && r["metadata"]["name"] == "gitgate-audit"
            })
    };
    eventually("the policy report", || async { report().is_some() }).await;
    let first = report().unwrap();
    assert_eq!(first["summary"]["fail"], 1, "{first}");
    let result = &first["results"][0];
    assert_eq!(result["policy"], "privileged-container", "{first}");
    assert_eq!(result["result"], "fail");
    assert_eq!(result["resources"][0]["name"], "root");
    // The next audit replaces it (create refused: get, then update).
    let audited = state.clone();
    let handle = tokio::runtime::Handle::current();
    let outcome =
        tokio::task::spawn_blocking(move || gitgate::serve::audit::once(&audited, &handle))
            .await
            .unwrap()
            .expect("an audit");
    let gitgate::cluster::Cluster::Watching(watch) = &state.cluster else {
        panic!("watching")
    };
    gitgate::serve::policy_reports::write(&watch.connection, &outcome)
        .await
        .unwrap();
    let second = report().unwrap();
    assert_ne!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    assert_eq!(second["summary"]["fail"], 1, "{second}");
}

/// Issue 17: a value an admission plugin picks is explained only as the plugin would pick it,
/// from the default class Git or the watched cluster holds: here the cluster's default
/// StorageClass, which Git does not hold.
#[tokio::test]
async fn the_watched_clusters_default_storage_class_explains_a_claims_class() {
    use gitgate::provenance::mirror::{Mirror, Source};
    let mut kinds = apiserver::default_kinds();
    kinds.push(apiserver::Kind {
        group: "storage.k8s.io",
        version: "v1",
        kind: "StorageClass",
        plural: "storageclasses",
        namespaced: false,
        builtin: true,
    });
    let server = ApiServer::start_with(kinds, Duration::from_millis(200)).await;
    server.apply(
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path"}),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path());
    let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: shop\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests: {storage: 1Gi}\n";
    let repo = support::repo_with(&[("claim.yaml", claim.as_bytes())]);
    let config = config(&format!(
        "  enabled: true\nrepository:\n  url: {}\n",
        repo.path().display()
    ));
    let source = Source::from_config(&config).unwrap().unwrap();
    let mirror = Arc::new(Mirror::default());
    mirror.sync(&source).unwrap();
    let set = gitgate::builtin::policy_set(&gitgate::policy::Options::default()).unwrap();
    let needs = Needs::of(&set, &config);
    let cluster = Cluster::start(&config, &needs, Some(&kubeconfig), true).await;
    let url = serve(
        AppState::new(set, &config)
            .with_cluster(cluster, needs)
            .with_mirror(mirror),
    )
    .await;
    eventually("ready", || async { get(&url, "/readyz").await.0 == 200 }).await;
    let with_class = |class: &str| {
        let mut object: Value = serde_saphyr::from_str(claim).unwrap();
        object["spec"]["storageClassName"] = json!(class);
        object["spec"]["volumeMode"] = json!("Filesystem");
        review("CREATE", object)
    };
    // The class caches read their first list before the webhook is ready.
    let standard = decide(&url, &with_class("standard")).await;
    assert_eq!(standard["allowed"], true, "{standard}");
    let fast = decide(&url, &with_class("fast")).await;
    assert_eq!(fast["allowed"], false, "{fast}");
    assert!(
        fast["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.storageClassName"),
        "{fast}"
    );
}
