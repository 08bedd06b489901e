//! The traceability match alone (no index, no policies): fixture 004 (a Deployment as the API
//! server sends it) against deploy.yaml, and an object with 30,000 `env` entries against a
//! manifest that sets them all (keyed lists are matched by hash, so this stays linear).
//!
//! `cargo bench --bench matching`; results are recorded in BENCHMARKS.md.

use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use gitgate::config::ControllerStamps;
use gitgate::provenance::matching::{MatchOptions, Status, compare};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/admission-v1")
}

/// Fixture 004's object and deploy.yaml, or a stand-in of the same shape when the shared
/// fixtures are absent.
fn fixture_004() -> (Value, Value) {
    let dir = fixtures();
    match (
        std::fs::read(dir.join("004-create-deployments-web.json")),
        std::fs::read_to_string(dir.join("manifests/deploy.yaml")),
    ) {
        (Ok(body), Ok(yaml)) => {
            let review: Value = serde_json::from_slice(&body).unwrap();
            let git: Value = serde_saphyr::from_str(&yaml).unwrap();
            (git, review["request"]["object"].clone())
        }
        _ => {
            eprintln!("{} is absent: using a stand-in", dir.display());
            let (git, obj) = env_pair(1);
            (git, obj)
        }
    }
}

/// A Deployment whose one container has `n` env entries, in Git and as the API server stores
/// it (defaults filled in, server metadata, Flux's labels).
fn env_pair(n: usize) -> (Value, Value) {
    let env: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("value-{i}")}))
        .collect();
    let git = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "big", "namespace": "demo", "labels": {"app": "big"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "big"}},
            "template": {"metadata": {"labels": {"app": "big"}}, "spec": {"containers": [
                {"name": "app", "image": "nginx:1.27", "env": env}]}}}
    });
    let obj = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "big", "namespace": "demo", "uid": "u", "generation": 1,
            "creationTimestamp": "2026-11-24T19:23:27Z",
            "labels": {"app": "big", "kustomize.toolkit.fluxcd.io/name": "apps",
                       "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "big"}},
            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "big"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "env": env,
                    "resources": {}, "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst", "securityContext": {},
                "schedulerName": "default-scheduler"}},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
        "status": {}
    });
    (git, obj)
}

fn matching(c: &mut Criterion) {
    let options = MatchOptions::from(&ControllerStamps::default());
    let (git, obj) = fixture_004();
    assert_eq!(
        compare(&git, &obj, None, &options).status,
        Status::Traceable
    );
    c.bench_function("match: fixture 004 vs deploy.yaml (closed world)", |b| {
        b.iter(|| compare(&git, &obj, None, &options))
    });

    let (git, obj) = env_pair(30_000);
    // One timed run first, so that a quadratic match shows even where criterion would take
    // minutes to sample it.
    let started = Instant::now();
    let out = compare(&git, &obj, Some(&obj), &options);
    eprintln!(
        "match: 30,000 env entries, one UPDATE: {:?} ({:?})",
        started.elapsed(),
        out.status
    );
    let mut group = c.benchmark_group("match: 30,000 env entries");
    group.sample_size(10);
    group.bench_function("CREATE", |b| b.iter(|| compare(&git, &obj, None, &options)));
    group.bench_function("UPDATE", |b| {
        b.iter(|| compare(&git, &obj, Some(&obj), &options))
    });
    group.finish();
}

criterion_group!(benches, matching);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
