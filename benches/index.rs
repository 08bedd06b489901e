//! The provenance index: 10,000 manifests (200 files of 50 documents) over a window of 200
//! commits, each commit changing one file; then one more commit folded in, lookups, and the
//! verdict on a Deployment as the API server sends it (lookup + traceability match).
//!
//! `cargo bench --bench index`; results are recorded in BENCHMARKS.md (peak RSS from
//! /proc/self/status).

mod support;

use support::{git, peak_rss_mib, per_run};

use std::time::{Duration, Instant};

use gitgate::git::Repo;
use gitgate::provenance::approval::{Window, window};
use gitgate::provenance::index::Index;

fn file(f: usize, revision: usize) -> String {
    (0..50)
        .map(|d| {
            let i = f * 50 + d;
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: team-{}\n  labels: {{app: app-{i}}}\nspec:\n  replicas: {}\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec:\n      containers:\n      - name: app\n        image: ghcr.io/example/app-{i}:1.{revision}.0\n        resources: {{limits: {{cpu: 500m, memory: 256Mi}}}}\n",
                f % 20,
                2 + revision % 3
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Manifest `i` of `file(f, revision)` as the API server sends it when the GitOps controller
/// applies it, in the shape of fixture 004: server metadata, the last-applied annotation,
/// managed fields, every default of a Deployment and its pod template, an empty status.
fn as_admitted(i: usize, f: usize, revision: usize, image: &str) -> serde_json::Value {
    let app = format!("app-{i}");
    let limits = serde_json::json!({"cpu": "500m", "memory": "256Mi"});
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": app, "namespace": format!("team-{}", f % 20),
            "uid": "9ba4d032-9826-42c8-8013-3cd791e82145", "generation": 1,
            "creationTimestamp": "2026-11-24T19:23:27Z",
            "labels": {"app": app, "kustomize.toolkit.fluxcd.io/name": "apps",
                       "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
            "managedFields": [{"manager": "kustomize-controller", "operation": "Apply",
                "apiVersion": "apps/v1", "time": "2026-11-24T19:23:27Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {},
                    "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {},
                    "f:name": {}, "f:resources": {"f:limits": {"f:cpu": {}, "f:memory": {}}}}}}}}}}]
        },
        "spec": {
            "replicas": 2 + revision % 3,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": app}},
                "spec": {
                    "containers": [{"name": "app", "image": image,
                        "resources": {"limits": limits},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {},
                    "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600
        },
        "status": {}
    })
}

/// An AdmissionRequest from Flux's kustomize-controller for `object` (`old` for an UPDATE).
fn review(object: serde_json::Value, old: Option<serde_json::Value>) -> gitgate::input::Review {
    let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "b6a3f4d2-0000-4000-8000-000000000001",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"],
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object, "oldObject": old, "dryRun": false
        }
    });
    gitgate::input::parse_admission_review("bench", &serde_json::to_vec(&body).unwrap())
        .unwrap()
        .1
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path();
    git(repo_dir, &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(repo_dir.join("apps")).unwrap();
    for f in 0..200 {
        std::fs::write(repo_dir.join(format!("apps/file-{f:03}.yaml")), file(f, 0)).unwrap();
    }
    git(repo_dir, &["add", "-A"]);
    git(repo_dir, &["commit", "-q", "-m", "10,000 manifests"]);
    let setup = Instant::now();
    for c in 1..200 {
        let f = c % 200;
        std::fs::write(repo_dir.join(format!("apps/file-{f:03}.yaml")), file(f, c)).unwrap();
        git(repo_dir, &["commit", "-q", "-am", &format!("change {c}")]);
    }
    eprintln!("made 200 commits in {:?}", setup.elapsed());
    let repo = Repo::open(repo_dir).unwrap();
    let w = Window {
        commits: 200,
        max_age: Duration::from_secs(365 * 86_400),
    };
    let tip = repo.resolve("main").unwrap();
    let t = Instant::now();
    let commits = window(&repo, tip, w, None).unwrap();
    let index = Index::build(&repo, &commits, &[], "default").unwrap();
    let build = t.elapsed();
    assert_eq!(commits.len(), 200);
    println!(
        "| build: 10,000 manifests × 200-commit window ({} versions) | {:.2} s | peak RSS {:.0} MiB |",
        index.len(),
        build.as_secs_f64(),
        peak_rss_mib()
    );

    // One new commit, folded in with the previous index's parsed blobs.
    std::fs::write(repo_dir.join("apps/file-007.yaml"), file(7, 999)).unwrap();
    git(repo_dir, &["commit", "-q", "-am", "one more"]);
    let tip = repo.resolve("main").unwrap();
    let t = Instant::now();
    let commits = window(&repo, tip, w, None).unwrap();
    let folded = index.advance(&repo, &commits).unwrap();
    let fold = t.elapsed();
    println!(
        "| fold one new commit into the window | {:.0} ms | peak RSS {:.0} MiB |",
        fold.as_secs_f64() * 1000.0,
        peak_rss_mib()
    );

    let ids: Vec<gitgate::input::Identity> = (0..10_000)
        .step_by(37)
        .map(|i| gitgate::input::Identity {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: Some(format!("team-{}", (i / 50) % 20)),
            name: format!("app-{i}"),
        })
        .collect();
    let t = Instant::now();
    let mut found = 0;
    for _ in 0..100 {
        for id in &ids {
            found += folded.lookup(id).len().min(1);
        }
    }
    let per = t.elapsed() / (100 * ids.len() as u32);
    assert_eq!(found, 100 * ids.len());
    println!(
        "| lookup of one identity (no match yet) | {:.2} µs | |",
        per.as_secs_f64() * 1e6
    );

    // The verdict (lookup + match) on what the API server sends for a manifest of the newest
    // commit; and on an UPDATE whose image is not in Git, compared with all three versions of
    // the window before it is called modified.
    use gitgate::provenance::verdict::{Status, judge};
    let config = gitgate::config::Config::default();
    let (i, f) = (7 * 50 + 3, 7);
    let traceable = review(
        as_admitted(i, f, 999, &format!("ghcr.io/example/app-{i}:1.999.0")),
        None,
    );
    assert_eq!(
        judge(&traceable, &folded, &config).status,
        Status::Traceable
    );
    let drifted = review(
        as_admitted(i, f, 999, "ghcr.io/example/app-x:6.6.6"),
        Some(as_admitted(
            i,
            f,
            999,
            &format!("ghcr.io/example/app-{i}:1.999.0"),
        )),
    );
    assert_eq!(
        folded
            .lookup(&gitgate::input::Identity::of_object(drifted.object.as_ref().unwrap()).unwrap())
            .len(),
        3,
        "revisions 0 (the commits before change 7), 7 and 999"
    );
    assert_eq!(judge(&drifted, &folded, &config).status, Status::Modified);
    for (what, review) in [
        ("traceable CREATE", &traceable),
        ("modified UPDATE (3 versions compared)", &drifted),
    ] {
        let mut sink = 0;
        let judged = per_run(20_000, || {
            sink += judge(review, &folded, &config).differing.len();
        });
        let with_value = per_run(20_000, || {
            sink += judge(review, &folded, &config)
                .to_value()
                .as_object()
                .map_or(0, |o| o.len());
        });
        std::hint::black_box(sink);
        println!(
            "| verdict on a Deployment as the API server sends it, {what}: lookup + match | {:.1} µs ({:.1} µs with input.provenance as JSON) | |",
            judged.as_secs_f64() * 1e6,
            with_value.as_secs_f64() * 1e6
        );
    }
}
