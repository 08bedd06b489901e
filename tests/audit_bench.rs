//! The audit of a 50,000-object cluster (the test API server of `support/apiserver.rs`), with
//! the built-in library: wall time and peak RSS of the `gitgate audit` process, for
//! BENCHMARKS.md. Run by hand (it is ignored otherwise):
//!
//! ```sh
//! cargo test --release --test audit_bench -- --ignored --nocapture
//! ```

#[path = "support/apiserver.rs"]
mod apiserver;
mod support;

use std::process::Command;
use std::time::Instant;

use apiserver::{ApiServer, fixture_object, namespace};
use serde_json::{Value, json};

const NAMESPACES: usize = 100;
/// Per namespace: Deployments, ConfigMaps, Pods (500 objects, 50,000 in all).
const PER_NAMESPACE: (usize, usize, usize) = (50, 250, 200);

fn renamed(mut obj: Value, ns: &str, name: &str) -> Value {
    obj["metadata"]["namespace"] = json!(ns);
    obj["metadata"]["name"] = json!(name);
    obj["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    obj["metadata"].as_object_mut().unwrap().remove("uid");
    obj
}

/// A Pod as a ReplicaSet's controller writes it (owner, defaults, status).
fn pod(ns: &str, name: &str, deployment: &Value) -> Value {
    let mut spec = deployment["spec"]["template"]["spec"].clone();
    spec["nodeName"] = json!("node-1");
    spec["serviceAccountName"] = json!("default");
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "web", "pod-template-hash": "5d9c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9c",
                "uid": "5e0c1c5e-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": deployment["metadata"]["managedFields"].clone()},
        "spec": spec,
        "status": {"phase": "Running", "podIP": "10.0.0.1", "hostIP": "192.168.0.1",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-24T19:23:30Z"}],
            "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "image": "ghcr.io/stefanprodan/podinfo:6.5.0",
                "imageID": "ghcr.io/stefanprodan/podinfo@sha256:0000", "started": true,
                "state": {"running": {"startedAt": "2026-11-24T19:23:29Z"}}}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by hand (see the module doc)"]
async fn audit_of_50000_objects() {
    let (Some(deployment), Some(config_map)) = (
        fixture_object("004-create-deployments-web.json"),
        fixture_object("005-create-configmaps-web-config.json"),
    ) else {
        return;
    };
    let server = ApiServer::start().await;
    let (deployments, config_maps, pods) = PER_NAMESPACE;
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:03}");
        server.apply(namespace(&ns, json!({"team": ns.clone()})));
        for i in 0..deployments {
            server.apply(renamed(deployment.clone(), &ns, &format!("web-{i}")));
        }
        for i in 0..config_maps {
            server.apply(renamed(config_map.clone(), &ns, &format!("config-{i}")));
        }
        for i in 0..pods {
            server.apply(pod(&ns, &format!("web-5d9c-{i:05}"), &deployment));
        }
    }
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(work.path());
    std::fs::write(
        work.path().join("gitgate.yaml"),
        "audit:\n  kinds:\n  - {group: apps, version: v1, kind: Deployment}\n  - {group: \"\", version: v1, kind: ConfigMap}\n  - {group: \"\", version: v1, kind: Pod}\n",
    )
    .unwrap();
    // Without a repository (policies only), then with one holding the Deployments'
    // manifests (provenance: Deployments traceable, ConfigMaps untraceable, Pods exempt).
    run(work.path(), &kubeconfig, "policies only").await;
    let manifest = std::fs::read_to_string(
        support::fixtures_dir()
            .unwrap()
            .join("manifests/deploy.yaml"),
    )
    .unwrap();
    let mut files = Vec::new();
    for n in 0..NAMESPACES {
        for i in 0..deployments {
            let text = manifest.replace(
                "name: web\n  namespace: demo",
                &format!("name: web-{i}\n  namespace: team-{n:03}"),
            );
            files.push((format!("apps/team-{n:03}/web-{i}.yaml"), text.into_bytes()));
        }
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let repo = support::repo_with(&refs);
    let config = std::fs::read_to_string(work.path().join("gitgate.yaml")).unwrap();
    std::fs::write(
        work.path().join("gitgate.yaml"),
        format!("{config}repository:\n  url: {}\n", repo.path().display()),
    )
    .unwrap();
    run(work.path(), &kubeconfig, "with provenance").await;
}

/// Runs `gitgate audit -o json` in `dir` under `/usr/bin/time -v`; prints wall time, peak RSS
/// and what was found.
async fn run(dir: &std::path::Path, kubeconfig: &std::path::Path, what: &str) {
    let binary = env!("CARGO_BIN_EXE_gitgate").to_string();
    let dir = dir.to_path_buf();
    let kubeconfig = kubeconfig.display().to_string();
    let (wall, out, err) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args([
                "-v",
                &binary,
                "audit",
                "-o",
                "json",
                "--kubeconfig",
                &kubeconfig,
            ])
            .current_dir(&dir)
            .env("HOME", &dir)
            .output()
            .unwrap();
        (
            started.elapsed(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    let objects = report["checked"].as_array().unwrap().len();
    let rss = err
        .lines()
        .find(|l| l.contains("Maximum resident set size"))
        .unwrap_or("")
        .trim()
        .to_string();
    println!(
        "{what}: audit of {objects} objects: {:.2} s wall, {rss}; {} findings, verdict {}, provenance {}",
        wall.as_secs_f64(),
        report["items"].as_array().unwrap().len(),
        report["verdict"],
        report["audit"]["provenance"]
    );
    let (deployments, config_maps, pods) = PER_NAMESPACE;
    assert_eq!(objects, NAMESPACES * (deployments + config_maps + pods));
}
