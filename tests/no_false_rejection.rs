//! No false rejection, end to end: every request of the real fixtures that applies what Git
//! holds is admitted by the webhook over TLS with provenance on and the built-in policies,
//! judged against a repository that evolves as the fixtures' story does (the Deployment
//! scaled to 3, then moved to podinfo 6.5.1, then deleted) and synced at each step.
//!
//! Which requests apply what Git holds (read from each fixture's userInfo and the fixtures'
//! README):
//! - the GitOps identity (`system:serviceaccount:flux-system:kustomize-controller`): 008-011
//!   (server-side apply of deploy.yaml, replicas 3, then image 6.5.1), 021 (the delete after
//!   Git removed it), 030 (quant.yaml, canonical quantities);
//! - `kubectl apply -f manifests/...` of Git's files by admin and alice: 004, 005, 006, 007
//!   (deploy.yaml with replicas 3), 024 (crd.yaml), 026 (widget.yaml);
//! - a cluster-scoped custom resource whose CRD is not in Git ([`ZONE`]), created by the GitOps
//!   identity as 026 was created, without a namespace: its scope comes from the request.
//!
//! Left out, because what they carry is in no manifest: 001-003, 012-014, 022 (`kubectl
//! create`), 015-020, 023, 027-029 (changes by hand, the gate's refusals are tested in
//! tests/traceability.rs and tests/serve.rs), 025 (the APIService the API server creates).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gitgate::config::Config;
use gitgate::policy::Options;
use gitgate::provenance::approval::Window;
use gitgate::provenance::mirror::{Mirror, Source};
use gitgate::provenance::verdict::{Status, judge};
use gitgate::serve::AppState;
use serde_json::Value;
use support::pki::Pki;

/// The steps of the story: what the repository holds, then the requests that apply it.
const STEPS: &[(&str, &[&str])] = &[
    (
        "the demo app as first applied",
        &[
            "004-create-deployments-web.json",
            "005-create-configmaps-web-config.json",
            "006-create-services-web.json",
            "024-create-customresourcedefinitions-widgets.example.com.json",
            "026-create-widgets-blue.json",
            "030-create-deployments-quant.json",
        ],
    ),
    (
        "web scaled to 3",
        &[
            "007-update-deployments-web.json",
            "008-update-deployments-web.json",
            "009-update-deployments-web.json",
            "010-update-deployments-web.json",
        ],
    ),
    ("web on podinfo 6.5.1", &["011-update-deployments-web.json"]),
    ("web removed", &["021-delete-deployments-web.json"]),
];

/// A cluster-scoped custom resource; its CRD is installed by other means, not from Git.
const ZONE: &str = "apiVersion: example.com/v1
kind: Zone
metadata:
  name: eu-west
spec:
  region: eu-west-1
";

/// The CREATE of [`ZONE`] as the API server sends it, shaped like fixture 026: the request
/// and the object have no namespace, the server-owned metadata is set.
fn zone_request(fixtures: &Path) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(
        &std::fs::read(fixtures.join("026-create-widgets-blue.json")).unwrap(),
    )
    .unwrap();
    let request = &mut review["request"];
    for field in ["kind", "requestKind"] {
        request[field]["kind"] = "Zone".into();
    }
    for field in ["resource", "requestResource"] {
        request[field]["resource"] = "zones".into();
    }
    request["name"] = "eu-west".into();
    request["userInfo"] = serde_json::json!({
        "username": "system:serviceaccount:flux-system:kustomize-controller",
        "groups": ["system:serviceaccounts", "system:authenticated"]});
    let request = request.as_object_mut().unwrap();
    request.remove("namespace");
    let object = request["object"].as_object_mut().unwrap();
    object.insert("kind".into(), "Zone".into());
    object.insert("spec".into(), serde_json::json!({"region": "eu-west-1"}));
    let meta = object["metadata"].as_object_mut().unwrap();
    meta.remove("namespace");
    meta.remove("annotations");
    meta.insert("name".into(), "eu-west".into());
    meta["managedFields"][0]["manager"] = "kustomize-controller".into();
    meta["managedFields"][0]["operation"] = "Apply".into();
    meta["managedFields"][0]["fieldsV1"] = serde_json::json!({"f:spec": {"f:region": {}}});
    serde_json::to_vec(&review).unwrap()
}

/// Writes the repository's state for step `n` and commits it.
fn commit_step(repo: &Path, manifests: &Path, n: usize, message: &str) {
    let deploy = std::fs::read_to_string(manifests.join("deploy.yaml")).unwrap();
    match n {
        0 => {
            for f in [
                "deploy.yaml",
                "cm.yaml",
                "svc.yaml",
                "quant.yaml",
                "crd.yaml",
                "widget.yaml",
            ] {
                std::fs::copy(manifests.join(f), repo.join(f)).unwrap();
            }
            std::fs::write(repo.join("zone.yaml"), ZONE).unwrap();
        }
        1 => std::fs::write(
            repo.join("deploy.yaml"),
            deploy.replace("replicas: 2", "replicas: 3"),
        )
        .unwrap(),
        2 => std::fs::write(
            repo.join("deploy.yaml"),
            deploy
                .replace("replicas: 2", "replicas: 3")
                .replace("podinfo:6.5.0", "podinfo:6.5.1"),
        )
        .unwrap(),
        _ => std::fs::remove_file(repo.join("deploy.yaml")).unwrap(),
    }
    let at = 1_780_000_000 + 100 * n as i64;
    support::git(repo, "gitops@example.com", at, &["add", "-A"]);
    support::git(
        repo,
        "gitops@example.com",
        at,
        &["commit", "-q", "-m", message],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_applying_what_git_holds_is_admitted() {
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let manifests = fixtures.join("manifests");
    let repo = tempfile::tempdir().unwrap();
    support::git(
        repo.path(),
        "gitops@example.com",
        0,
        &["init", "-q", "-b", "main"],
    );
    let source = Source {
        remote: None,
        path: repo.path().to_path_buf(),
        branch: "main".into(),
        roots: Vec::new(),
        renderer: Default::default(),
        default_namespace: "default".into(),
        window: Window {
            commits: 20,
            max_age: Duration::from_secs(7 * 86_400),
        },
        trust: None,
        refresh: Duration::from_secs(3600),
    };
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let mirror = Arc::new(Mirror::default());
    let config = Config::default();
    let policies = gitgate::builtin::policy_set(&Options::default()).unwrap();
    let server = pki
        .serve(
            AppState::new(policies, &config).with_mirror(mirror.clone()),
            &config,
        )
        .await;
    let client = pki.client(None);
    let post = |file: &'static str, body: Vec<u8>| {
        let client = client.clone();
        async move {
            let resp = client
                .post(format!("https://localhost:{}/validate", server.addr.port()))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{file}");
            resp.json::<Value>().await.unwrap()
        }
    };
    let decide = |file: &'static str| post(file, std::fs::read(fixtures.join(file)).unwrap());
    let mut admitted = 0;
    for (n, (message, requests)) in STEPS.iter().enumerate() {
        commit_step(repo.path(), &manifests, n, message);
        mirror.sync(&source).unwrap();
        let mut bodies: Vec<(&str, Vec<u8>)> = requests
            .iter()
            .map(|file| (*file, std::fs::read(fixtures.join(file)).unwrap()))
            .collect();
        if n == 0 {
            bodies.push(("the cluster-scoped Zone", zone_request(&fixtures)));
        }
        for (file, body) in bodies {
            let answer = post(file, body.clone()).await;
            assert_eq!(
                answer["response"]["allowed"], true,
                "{file} applies what Git holds ({message}) and is refused: {answer:#}"
            );
            // Admitted as traceable, not by an exemption.
            let (_, review) = gitgate::input::parse_admission_review(file, &body).unwrap();
            let snapshot = mirror.snapshot().unwrap();
            let verdict = judge(&review, &snapshot.index, &config);
            assert_eq!(
                verdict.status,
                Status::Traceable,
                "{file}: {}",
                verdict.reason
            );
            admitted += 1;
        }
    }
    assert_eq!(admitted, 13);
    // The gate is on: a change by hand is refused by provenance.
    let answer = decide("016-update-deployments-web.json").await;
    assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("[provenance]"), "{message}");
    server.handle.shutdown();
}
