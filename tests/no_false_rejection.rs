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
//! A second test adds the kinds the fixtures lack (a Job, a StatefulSet with claim templates, a
//! CronJob, a NetworkPolicy, a CRD and a custom resource with schema defaults), each as the API
//! server stores it, created and re-applied.
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
        acknowledge_rewind: None,
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

/// One `admission.k8s.io/v1` request as the API server sends it for the GitOps controller's
/// server-side apply.
fn flux_review(
    uid: &str,
    (group, version, kind, resource): (&str, &str, &str, &str),
    object: &Value,
    old_object: Option<&Value>,
) -> Value {
    let gvk = serde_json::json!({"group": group, "version": version, "kind": kind});
    let gvr = serde_json::json!({"group": group, "version": version, "resource": resource});
    let operation = if old_object.is_some() {
        "UPDATE"
    } else {
        "CREATE"
    };
    serde_json::json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": object["metadata"]["name"],
            "namespace": object["metadata"].get("namespace").cloned().unwrap_or(Value::Null),
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller",
                "uid": "f1", "groups": ["system:serviceaccounts",
                    "system:serviceaccounts:flux-system", "system:authenticated"]},
            "object": object, "oldObject": old_object.cloned().unwrap_or(Value::Null),
            "dryRun": false,
            "options": {"kind": "PatchOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kustomize-controller",
                        "force": true}
        }
    })
}

/// The object the API server stored, once more: a later reconciliation that changes nothing.
fn reapplied(stored: &Value) -> Value {
    let mut again = stored.clone();
    again["metadata"]["resourceVersion"] = serde_json::json!("9001");
    again
}

/// Server metadata and Flux's stamps, as on every object Flux creates.
fn stored_metadata(name: &str, namespace: Option<&str>, uid: &str) -> Value {
    let mut m = serde_json::json!({
        "name": name, "uid": uid, "resourceVersion": "1000", "generation": 1,
        "creationTimestamp": "2026-11-25T08:00:00Z",
        "labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                   "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
        "managedFields": [{"manager": "kustomize-controller", "operation": "Apply",
            "apiVersion": "v1", "time": "2026-11-25T08:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {}}, "f:spec": {}}}]
    });
    if let Some(ns) = namespace {
        m["namespace"] = serde_json::json!(ns);
    }
    m
}

/// The defaults of a pod template the API server writes (SetDefaults_PodSpec) around
/// `containers`, each given its container defaults.
fn pod_spec(containers: Value, restart_policy: &str) -> Value {
    let containers: Vec<Value> = containers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["resources"] = c.get("resources").cloned().unwrap_or(serde_json::json!({}));
            c["terminationMessagePath"] = serde_json::json!("/dev/termination-log");
            c["terminationMessagePolicy"] = serde_json::json!("File");
            c["imagePullPolicy"] = serde_json::json!("IfNotPresent");
            c
        })
        .collect();
    serde_json::json!({
        "containers": containers, "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "securityContext": {}, "schedulerName": "default-scheduler"
    })
}

const JOB: &str = "\
apiVersion: batch/v1
kind: Job
metadata: {name: db-migrate, namespace: demo}
spec:
  backoffLimit: 2
  template:
    metadata:
      labels: {app: db-migrate}
    spec:
      containers:
      - name: migrate
        image: ghcr.io/example/migrate:1.4.2
        command: [/migrate, up]
      restartPolicy: Never
";

const STATEFUL_SET: &str = "\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: demo}
spec:
  serviceName: db
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: postgres
        image: postgres:16.4
        ports:
        - {name: pg, containerPort: 5432}
        volumeMounts:
        - {name: data, mountPath: /var/lib/postgresql/data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {storage: 1Gi}
";

const CRON_JOB: &str = "\
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: demo}
spec:
  schedule: '0 3 * * *'
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: report
            image: ghcr.io/example/report:2.0.1
            args: [--since, 24h]
          restartPolicy: OnFailure
";

const NETWORK_POLICY: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: demo}
spec:
  podSelector:
    matchLabels: {app: db}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
    ports:
    - port: 5432
  egress:
  - to:
    - ipBlock: {cidr: 10.0.0.0/8}
";

const BACKUP_CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: backups.example.com}
spec:
  group: example.com
  names: {kind: Backup, plural: backups}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              schedule: {type: string, default: '@daily'}
              retention:
                type: object
                default: {}
                properties:
                  days: {type: integer, default: 7}
              targets:
                type: array
                items:
                  type: object
                  properties:
                    host: {type: string}
                    port: {type: integer, default: 5432}
";

const BACKUP: &str = "\
apiVersion: example.com/v1
kind: Backup
metadata: {name: db, namespace: demo}
spec:
  targets:
  - host: db.demo.svc
";

/// Jobs, StatefulSets, CronJobs, NetworkPolicies and a custom resource whose CRD Git holds,
/// each as the API server stores it when Flux applies it (built from kube-apiserver's
/// defaulting: SetDefaults_Job and the Job strategy's selector and labels, SetDefaults_StatefulSet
/// and the claim templates, SetDefaults_CronJob, SetDefaults_NetworkPolicy, the CRD's
/// structural defaults), created and then re-applied unchanged: every one is admitted as
/// traceable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_kinds_as_the_api_server_stores_them_are_admitted() {
    use serde_json::json;
    let repo = support::repo_with(&[
        ("job.yaml", JOB.as_bytes()),
        ("sts.yaml", STATEFUL_SET.as_bytes()),
        ("cronjob.yaml", CRON_JOB.as_bytes()),
        ("netpol.yaml", NETWORK_POLICY.as_bytes()),
        ("crd.yaml", BACKUP_CRD.as_bytes()),
        ("backup.yaml", BACKUP.as_bytes()),
    ]);
    let index = support::index_of(repo.path());

    const JOB_UID: &str = "0f9b7a52-5d3c-4a84-9f5e-2c0e8d1b7a61";
    let job_labels = json!({"app": "db-migrate", "batch.kubernetes.io/controller-uid": JOB_UID,
        "batch.kubernetes.io/job-name": "db-migrate", "controller-uid": JOB_UID,
        "job-name": "db-migrate"});
    let job = json!({
        "kind": "Job", "apiVersion": "batch/v1",
        "metadata": stored_metadata("db-migrate", Some("demo"), JOB_UID),
        "spec": {
            "parallelism": 1, "completions": 1, "backoffLimit": 2,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": JOB_UID}},
            "manualSelector": false,
            "template": {"metadata": {"creationTimestamp": null, "labels": job_labels},
                "spec": pod_spec(json!([{"name": "migrate", "image": "ghcr.io/example/migrate:1.4.2",
                    "command": ["/migrate", "up"]}]), "Never")},
            "completionMode": "NonIndexed", "suspend": false,
            "podReplacementPolicy": "TerminatingOrFailed"
        },
        "status": {}
    });

    let sts_spec = pod_spec(
        json!([{"name": "postgres", "image": "postgres:16.4",
            "ports": [{"name": "pg", "containerPort": 5432, "protocol": "TCP"}],
            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]}]),
        "Always",
    );
    let sts = json!({
        "kind": "StatefulSet", "apiVersion": "apps/v1",
        "metadata": stored_metadata("db", Some("demo"), "5b0c9f3e-1a2b-4c3d-8e4f-5a6b7c8d9e0f"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "db"}},
                         "spec": sts_spec},
            "volumeClaimTemplates": [{
                "kind": "PersistentVolumeClaim", "apiVersion": "v1",
                "metadata": {"name": "data", "creationTimestamp": null},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}},
                         "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}}],
            "serviceName": "db",
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}
        },
        "status": {"replicas": 0, "availableReplicas": 0}
    });

    let cron = json!({
        "kind": "CronJob", "apiVersion": "batch/v1",
        "metadata": stored_metadata("report", Some("demo"), "9c8b7a65-4321-4fed-9cba-876543210fed"),
        "spec": {
            "schedule": "0 3 * * *", "concurrencyPolicy": "Allow", "suspend": false,
            "jobTemplate": {"metadata": {"creationTimestamp": null}, "spec": {"template": {
                "metadata": {"creationTimestamp": null},
                "spec": pod_spec(json!([{"name": "report", "image": "ghcr.io/example/report:2.0.1",
                    "args": ["--since", "24h"]}]), "OnFailure")}}},
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1
        },
        "status": {}
    });

    let netpol = json!({
        "kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
        "metadata": stored_metadata("db", Some("demo"), "1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f"),
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"ports": [{"protocol": "TCP", "port": 5432}],
                "from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
            "policyTypes": ["Ingress", "Egress"]
        }
    });

    let crd = json!({
        "kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1",
        "metadata": stored_metadata("backups.example.com", None, "aa11bb22-cc33-4d44-8e55-ff6677889900"),
        "spec": {
            "group": "example.com",
            "names": {"plural": "backups", "singular": "backup", "kind": "Backup",
                      "listKind": "BackupList"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object", "properties": {
                        "schedule": {"type": "string", "default": "@daily"},
                        "retention": {"type": "object", "default": {},
                            "properties": {"days": {"type": "integer", "default": 7}}},
                        "targets": {"type": "array", "items": {"type": "object", "properties": {
                            "host": {"type": "string"},
                            "port": {"type": "integer", "default": 5432}}}}}}}}}}],
            "conversion": {"strategy": "None"}
        },
        "status": {"conditions": null, "acceptedNames": {"plural": "", "kind": ""},
                   "storedVersions": ["v1"]}
    });

    let backup = json!({
        "apiVersion": "example.com/v1", "kind": "Backup",
        "metadata": stored_metadata("db", Some("demo"), "b4c5d6e7-f809-4a1b-8c2d-3e4f5a6b7c8d"),
        "spec": {"retention": {"days": 7}, "schedule": "@daily",
                 "targets": [{"host": "db.demo.svc", "port": 5432}]}
    });

    let cases = [
        ("Job", ("batch", "v1", "Job", "jobs"), job),
        (
            "StatefulSet",
            ("apps", "v1", "StatefulSet", "statefulsets"),
            sts,
        ),
        ("CronJob", ("batch", "v1", "CronJob", "cronjobs"), cron),
        (
            "NetworkPolicy",
            (
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
            ),
            netpol,
        ),
        (
            "CustomResourceDefinition",
            (
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
            ),
            crd,
        ),
        ("Backup", ("example.com", "v1", "Backup", "backups"), backup),
    ];
    let config = Config::default();
    let policies = gitgate::builtin::policy_set(&Options::default()).unwrap();
    let mut admitted = 0;
    for (what, gvr, stored) in cases {
        for (uid, old) in [("create", None), ("update", Some(reapplied(&stored)))] {
            let mut stored = stored.clone();
            if uid == "update" && what == "CustomResourceDefinition" {
                // The API server's finalizer controller adds its finalizer once the CRD exists.
                stored["metadata"]["finalizers"] =
                    json!(["customresourcecleanup.apiextensions.k8s.io"]);
            }
            let old = old.map(|mut o| {
                if let Some(f) = stored["metadata"].get("finalizers") {
                    o["metadata"]["finalizers"] = f.clone();
                }
                o
            });
            let body = flux_review(uid, gvr, &stored, old.as_ref());
            let (_, review) =
                gitgate::input::parse_admission_review(what, body.to_string().as_bytes()).unwrap();
            let verdict = judge(&review, &index, &config);
            assert_eq!(
                verdict.status,
                Status::Traceable,
                "{what} ({uid}): {} {:?} {:?}",
                verdict.reason,
                verdict.differing,
                verdict.unattested
            );
            let mut doc = gitgate::input::Document::from_review(review);
            doc.provenance = Some(verdict);
            let decision =
                gitgate::decision::decide(&policies, &doc, &gitgate::decision::Context::default());
            assert!(
                decision.allowed,
                "{what} ({uid}) is refused: {:?}",
                decision.violations
            );
            admitted += 1;
        }
    }
    assert_eq!(admitted, 12);
}
