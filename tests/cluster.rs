//! The watch caches against a test API server that speaks the list and watch protocol
//! (`support/apiserver.rs`): the first list, events, a watch that breaks (resumed from its
//! resourceVersion, no new list), a `410 Gone` that forces a new list, a forbidden list
//! (RBAC), and an API server that stops answering (the cache keeps its last state and
//! reports its age).

#[path = "support/apiserver.rs"]
mod apiserver;
mod support;

use std::time::Duration;

use apiserver::{ApiServer, ingress, namespace};
use gitgate::cluster::sync::{Needs, Synced};
use gitgate::cluster::{Connection, View, Watch, connect};
use gitgate::config::KindRef;
use gitgate::policy::matcher::NamespaceLabels;
use serde_json::{Value, json};

/// Polls `done` every 20 ms for up to 20 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within 20 s: {what}");
}

async fn connection(server: &ApiServer, dir: &std::path::Path, watch_timeout: u64) -> Connection {
    let settings = gitgate::config::Cluster {
        watch_timeout: Duration::from_secs(watch_timeout),
        request_timeout: Duration::from_secs(2),
        page_size: 2,
        ..Default::default()
    };
    connect(&settings, Some(&server.kubeconfig(dir)))
        .await
        .expect("the kubeconfig is usable")
        .expect("a cluster")
}

fn needs() -> Needs {
    Needs {
        namespace_selectors: vec!["prod-only".into()],
        sync: vec![Synced {
            kind: KindRef {
                group: "networking.k8s.io".into(),
                version: "v1".into(),
                kind: "Ingress".into(),
                resource: None,
            },
            origin: "inventory.sync".into(),
        }],
        ..Needs::default()
    }
}

fn ingresses(view: &View) -> Value {
    let data = serde_json::to_value(view.data().expect("an inventory")).unwrap();
    let mut out = serde_json::Map::new();
    for (ns, gvs) in data["inventory"]["namespace"]
        .as_object()
        .into_iter()
        .flatten()
    {
        for (name, obj) in gvs["networking.k8s.io/v1"]["Ingress"]
            .as_object()
            .into_iter()
            .flatten()
        {
            out.insert(format!("{ns}/{name}"), obj.clone());
        }
    }
    Value::Object(out)
}

fn lists(server: &ApiServer, plural: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| {
            r.contains(&format!("/{plural}?"))
                && !r.contains("watch=true")
                && !r.contains("continue=")
        })
        .count()
}

#[tokio::test]
async fn caches_list_then_follow_the_watch() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.apply(namespace("prod", json!({"env": "prod"})));
    server.apply(namespace("dev", json!({"env": "dev"})));
    server.apply(namespace("web", json!({})));
    for i in 0..5 {
        server.apply(ingress("web", &format!("i{i}"), &format!("h{i}.example")));
    }
    let watch = Watch::start(connection(&server, dir.path(), 60).await, &needs(), false);
    eventually("the first lists", || watch.ready().is_ok()).await;
    let view = watch.view();
    assert_eq!(view.labels("prod").unwrap()["env"], "prod");
    assert!(view.labels("nowhere").is_none());
    let seen = ingresses(&view);
    assert_eq!(seen.as_object().unwrap().len(), 5, "{seen}");
    // Lists are paged (page size 2): 5 ingresses take three pages.
    let pages = server
        .requests()
        .iter()
        .filter(|r| r.contains("/ingresses?") && !r.contains("watch="))
        .count();
    assert_eq!(pages, 3, "{:?}", server.requests());
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.contains("ingresses?") || r.contains("limit=2") || r.contains("watch="))
    );
    // What the list items lacked (apiVersion, kind) is filled in, and managedFields are left
    // out of the inventory.
    assert_eq!(seen["web/i0"]["kind"], "Ingress");
    assert!(seen["web/i0"]["metadata"]["managedFields"].is_null());
    // Events: add, change, delete.
    server.apply(ingress("web", "new", "new.example"));
    server.apply(namespace("dev", json!({"env": "staging"})));
    server.delete("networking.k8s.io/v1", "Ingress", Some("web"), "i0");
    eventually("the events", || {
        let v = watch.view();
        let seen = ingresses(&v);
        seen.get("web/new").is_some()
            && seen.get("web/i0").is_none()
            && v.labels("dev").is_some_and(|l| l["env"] == "staging")
    })
    .await;
    let status = watch.statuses();
    assert!(
        status.iter().all(|s| s.synced && s.age().is_zero()),
        "{status:?}"
    );
    assert_eq!(
        status
            .iter()
            .find(|s| s.kind.contains("Ingress"))
            .unwrap()
            .objects,
        5
    );
}

#[tokio::test]
async fn a_broken_watch_resumes_and_a_410_lists_again() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.apply(namespace("web", json!({})));
    server.apply(ingress("web", "a", "a.example"));
    let watch = Watch::start(connection(&server, dir.path(), 60).await, &needs(), false);
    eventually("the first lists", || watch.ready().is_ok()).await;
    assert_eq!(lists(&server, "ingresses"), 1);

    // A watch cut mid-stream is resumed from its resourceVersion: no new list, no event lost.
    server.break_watches();
    server.apply(ingress("web", "b", "b.example"));
    eventually("the change after the break", || {
        ingresses(&watch.view()).get("web/b").is_some()
    })
    .await;
    assert_eq!(lists(&server, "ingresses"), 1, "{:?}", server.requests());

    // The resourceVersion it would resume from is compacted away: 410 Gone, a new list, and
    // what changed meanwhile (a deletion no watch saw) is right.
    server.freeze(true);
    server.delete("networking.k8s.io/v1", "Ingress", Some("web"), "a");
    server.apply(ingress("web", "c", "c.example"));
    server.compact();
    server.break_watches();
    server.freeze(false);
    eventually("the new list", || {
        let seen = ingresses(&watch.view());
        seen.get("web/a").is_none() && seen.get("web/c").is_some() && seen.get("web/b").is_some()
    })
    .await;
    // One new list, not a loop of them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(lists(&server, "ingresses"), 2, "{:?}", server.requests());
    let status = watch.statuses();
    let ing = status.iter().find(|s| s.kind.contains("Ingress")).unwrap();
    assert_eq!(ing.lists, 2, "{ing:?}");
    assert_eq!(ing.objects, 2);
}

#[tokio::test]
async fn a_forbidden_list_is_not_ready_with_the_reason_until_rbac_allows_it() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.forbid("networking.k8s.io", "ingresses", true);
    let watch = Watch::start(connection(&server, dir.path(), 60).await, &needs(), false);
    eventually("the error", || {
        watch
            .ready()
            .is_err_and(|e| e.contains("forbidden") && e.contains("403"))
    })
    .await;
    let why = watch.ready().unwrap_err();
    assert!(why.contains("networking.k8s.io/v1 Ingress"), "{why}");
    assert!(why.contains("cannot list resource \"ingresses\""), "{why}");
    server.forbid("networking.k8s.io", "ingresses", false);
    eventually("ready once allowed", || watch.ready().is_ok()).await;
}

#[tokio::test]
async fn an_api_server_that_stops_answering_leaves_the_last_cache_deciding_and_aging() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.apply(namespace("prod", json!({"env": "prod"})));
    server.apply(namespace("web", json!({})));
    server.apply(ingress("web", "a", "a.example"));
    // A watch lasts 1 s: a silent one is taken for lost soon after.
    let watch = Watch::start(connection(&server, dir.path(), 1).await, &needs(), false);
    eventually("the first lists", || watch.ready().is_ok()).await;
    server.freeze(true);
    eventually("the loss noticed", || {
        watch
            .statuses()
            .iter()
            .all(|s| s.last_error.is_some() && !s.age().is_zero())
    })
    .await;
    // Still ready, still deciding on what it knew, and saying how stale.
    assert!(watch.ready().is_ok());
    let view = watch.view();
    assert_eq!(view.labels("prod").unwrap()["env"], "prod");
    assert!(ingresses(&view).get("web/a").is_some());
    let status = watch.statuses();
    let error = status[0].last_error.clone().unwrap();
    assert!(
        error.contains("no answer within") || error.contains("sent nothing"),
        "{error}"
    );
    server.freeze(false);
    server.apply(ingress("web", "b", "b.example"));
    eventually("recovered", || {
        ingresses(&watch.view()).get("web/b").is_some()
            && watch.statuses().iter().all(|s| s.age().is_zero())
    })
    .await;
}

#[tokio::test]
async fn a_kubeconfig_that_cannot_be_read_is_an_error_naming_it() {
    let settings = gitgate::config::Cluster::default();
    let err = connect(
        &settings,
        Some(std::path::Path::new("/nonexistent/kubeconfig")),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("/nonexistent/kubeconfig"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("kubeconfig");
    std::fs::write(&bad, "apiVersion: v1\nkind: Config\nclusters: [}\n").unwrap();
    let err = connect(&settings, Some(&bad))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot use the kubeconfig"), "{err}");
}

#[tokio::test]
async fn namespaces_a_gatekeeper_config_excludes_from_sync_are_not_in_the_inventory() {
    let server = ApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.apply(ingress("web", "a", "a.example"));
    server.apply(ingress("kube-system", "b", "b.example"));
    let mut needs = needs();
    needs.sync_excluded_namespaces = vec!["kube-*".into()];
    let watch = Watch::start(connection(&server, dir.path(), 60).await, &needs, false);
    eventually("the first lists", || watch.ready().is_ok()).await;
    server.apply(ingress("kube-public", "c", "c.example"));
    server.apply(ingress("web", "d", "d.example"));
    eventually("the events", || {
        ingresses(&watch.view()).get("web/d").is_some()
    })
    .await;
    let seen = ingresses(&watch.view());
    assert_eq!(seen.as_object().unwrap().len(), 2, "{seen}");
    assert!(seen.get("kube-system/b").is_none() && seen.get("kube-public/c").is_none());
}
