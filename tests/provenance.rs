//! Provenance over real repositories: approved commits with commits signed by SSH keys made in the test
//! (`ssh-keygen`, and git's own SSH signing): trusted, untrusted, unsigned, a principal that
//! does not match the committer, the window by count and age, and the first-parent chain; a
//! break-glass DELETE and a Job as the API server stores it.
#![recursion_limit = "256"]

mod support;

use std::path::Path;

use std::process::Command;
use std::time::Duration;
use support::signed::{DAY, SignedRepo};

use gitgate::git::Repo;
use gitgate::provenance::approval::{Trust, Window, window};
use gitgate::provenance::openpgp::OpenPgpKeys;
use gitgate::provenance::signers::{AllowedSigners, SignatureProblem};

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-V").output().is_ok()
        || Command::new(tool).arg("--version").output().is_ok()
}

/// The signed repository of `support/signed.rs`, one file per commit.
type Fixture = SignedRepo;

fn skip_without_tools() -> bool {
    !support::signed::tools_here()
}

fn ids(commits: &[gitgate::provenance::approval::WindowCommit]) -> Vec<String> {
    commits.iter().map(|c| c.id.to_string()).collect()
}

fn ssh_trust(allowed_signers: &str) -> Trust {
    Trust {
        ssh: AllowedSigners::parse("allowed_signers", allowed_signers).unwrap(),
        openpgp: OpenPgpKeys::default(),
    }
}

#[test]
fn signatures_decide_which_commits_are_approved() {
    if skip_without_tools() {
        return;
    }
    let f = Fixture::new();
    let trusted = f.key("trusted");
    f.key("stranger");
    let t0 = 1_780_000_000;
    let unsigned = f.commit_file("a.yaml", None, t0);
    let by_stranger = f.commit_file("b.yaml", Some("stranger"), t0 + 10);
    let good = f.commit_file("c.yaml", Some("trusted"), t0 + 20);
    let signers = ssh_trust(&format!("alice@example.com {trusted}\n"));
    let repo = Repo::open(&f.path()).unwrap();
    let tip = repo.resolve("main").unwrap();
    let w = window(
        &repo,
        tip,
        Window {
            commits: 10,
            max_age: Duration::from_secs(30 * DAY as u64),
        },
        Some(&signers),
    )
    .unwrap();
    assert_eq!(
        ids(&w),
        vec![good.clone(), by_stranger.clone(), unsigned.clone()],
        "newest first"
    );
    assert_eq!(w[0].approval.as_deref(), Ok("allowed_signers:1"));
    assert!(
        matches!(w[1].approval, Err(SignatureProblem::UntrustedKey { .. })),
        "{:?}",
        w[1].approval
    );
    assert_eq!(w[2].approval, Err(SignatureProblem::Unsigned));
    // Without required signatures every commit of the window is approved.
    let w = window(
        &repo,
        tip,
        Window {
            commits: 10,
            max_age: Duration::from_secs(30 * DAY as u64),
        },
        None,
    )
    .unwrap();
    assert!(w.iter().all(|c| c.approved()));
    // A trusted key, but for another principal than the committer: refused.
    let other = ssh_trust(&format!("bob@example.com {trusted}\n"));
    let w = window(
        &repo,
        tip,
        Window {
            commits: 1,
            max_age: Duration::from_secs(DAY as u64),
        },
        Some(&other),
    )
    .unwrap();
    assert!(matches!(
        w[0].approval,
        Err(SignatureProblem::UntrustedKey { .. })
    ));
}

#[test]
fn the_window_counts_commits_and_age_and_follows_first_parents() {
    if skip_without_tools() {
        return;
    }
    let f = Fixture::new();
    let t0 = 1_780_000_000;
    let old = f.commit_file("old.yaml", None, t0);
    let c1 = f.commit_file("one.yaml", None, t0 + 10 * DAY);
    // A side branch merged into main: its commit is not on the first-parent chain.
    f.git(&["checkout", "-q", "-b", "side"], None, t0);
    let side = f.commit_file("side.yaml", None, t0 + 11 * DAY);
    f.git(&["checkout", "-q", "main"], None, t0);
    let c2 = f.commit_file("two.yaml", None, t0 + 12 * DAY);
    f.git(
        &["merge", "-q", "--no-ff", "-m", "merge side", "side"],
        None,
        t0 + 13 * DAY,
    );
    let merge = f.git(&["rev-parse", "HEAD"], None, 0);
    let repo = Repo::open(&f.path()).unwrap();
    let tip = repo.resolve("main").unwrap();
    let all = window(
        &repo,
        tip,
        Window {
            commits: 100,
            max_age: Duration::from_secs(100 * DAY as u64),
        },
        None,
    )
    .unwrap();
    assert_eq!(
        ids(&all),
        vec![merge.clone(), c2.clone(), c1.clone(), old.clone()]
    );
    assert!(
        !ids(&all).contains(&side),
        "the side branch's own commit is not approved by itself"
    );
    let by_count = window(
        &repo,
        tip,
        Window {
            commits: 2,
            max_age: Duration::from_secs(100 * DAY as u64),
        },
        None,
    )
    .unwrap();
    assert_eq!(ids(&by_count), vec![merge.clone(), c2.clone()]);
    // Ages are the mirror's: here it saw each commit when it was made, and it is now the
    // merge's time (tests/window.rs: dates alone never decide).
    let mut seen = gitgate::provenance::seen::FirstSeen::in_memory();
    for (c, at) in [(&old, t0), (&c1, t0 + 10 * DAY), (&c2, t0 + 12 * DAY)] {
        seen.record(gix::ObjectId::from_hex(c.as_bytes()).unwrap(), at);
    }
    let by_age = gitgate::provenance::approval::walk(
        &repo,
        tip,
        Window {
            commits: 100,
            max_age: Duration::from_secs(5 * DAY as u64),
        },
        None,
        &mut seen,
        t0 + 13 * DAY,
    )
    .unwrap();
    assert_eq!(
        ids(&by_age.commits),
        vec![merge.clone(), c2, c1],
        "the commit first seen 13 days ago is out"
    );
    let tip_only = window(
        &repo,
        tip,
        Window {
            commits: 0,
            max_age: Duration::ZERO,
        },
        None,
    )
    .unwrap();
    assert_eq!(ids(&tip_only), vec![merge], "the tip always counts");
    let _ = Path::new("");
}

#[test]
fn a_tampered_commit_does_not_verify() {
    if skip_without_tools() {
        return;
    }
    let f = Fixture::new();
    let trusted = f.key("trusted");
    let t0 = 1_780_000_000;
    f.commit_file("a.yaml", Some("trusted"), t0);
    // The same commit, signature kept, message changed: what a forger would try.
    let raw = f.git(&["cat-file", "commit", "HEAD"], None, t0);
    let forged = raw.replace("\n\na.yaml", "\n\nforged");
    assert_ne!(raw, forged);
    let path = f.beside("forged");
    std::fs::write(&path, format!("{forged}\n")).unwrap();
    let id = f.git(
        &["hash-object", "-t", "commit", "-w", path.to_str().unwrap()],
        None,
        t0,
    );
    f.git(&["update-ref", "refs/heads/main", &id], None, t0);
    let signers = ssh_trust(&format!("alice@example.com {trusted}\n"));
    let repo = Repo::open(&f.path()).unwrap();
    let tip = repo.resolve("main").unwrap();
    assert_eq!(tip.to_string(), id);
    let w = window(
        &repo,
        tip,
        Window {
            commits: 1,
            max_age: Duration::from_secs(DAY as u64),
        },
        Some(&signers),
    )
    .unwrap();
    assert!(
        matches!(w[0].approval, Err(SignatureProblem::Invalid(_))),
        "{:?}",
        w[0].approval
    );
}

#[test]
fn openpgp_signed_commits_verify_against_trusted_keys() {
    if skip_without_tools() || !have("gpg") {
        eprintln!(
            "skipping: gpg is needed to make OpenPGP-signed commits (.ci/run installs gnupg)"
        );
        return;
    }
    let f = Fixture::new();
    let home = f.beside("gnupg");
    std::fs::create_dir(&home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    gpg(&[
        "--quick-gen-key",
        "Alice <alice@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    gpg(&[
        "--quick-gen-key",
        "Mallory <mallory@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    let alice_key = gpg(&["--armor", "--export", "alice@example.com"]);
    let t0 = 1_780_000_000;
    let sign_as = |who: &str, file: &str, at: i64| {
        std::fs::write(f.path().join(file), format!("{file}\n")).unwrap();
        f.git(&["add", "-A"], None, at);
        let out = Command::new("git")
            .current_dir(f.path())
            .env("GNUPGHOME", &home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_COMMITTER_NAME", "Alice")
            .env("GIT_COMMITTER_EMAIL", "alice@example.com")
            .env("GIT_AUTHOR_NAME", "Alice")
            .env("GIT_AUTHOR_EMAIL", "alice@example.com")
            .env("GIT_COMMITTER_DATE", format!("@{at} +0000"))
            .args([
                "-c",
                &format!("user.signingkey={who}"),
                "commit",
                "-q",
                "-S",
                "-m",
                file,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sign_as("mallory@example.com", "a.yaml", t0);
    sign_as("alice@example.com", "b.yaml", t0 + 10);
    let trust = Trust {
        ssh: AllowedSigners::default(),
        openpgp: OpenPgpKeys::parse("alice.asc", &alice_key).unwrap(),
    };
    let repo = Repo::open(&f.path()).unwrap();
    let tip = repo.resolve("main").unwrap();
    let w = window(
        &repo,
        tip,
        Window {
            commits: 5,
            max_age: Duration::from_secs(DAY as u64),
        },
        Some(&trust),
    )
    .unwrap();
    assert!(
        w[0].approval
            .as_ref()
            .is_ok_and(|s| s.starts_with("alice.asc")),
        "{:?}",
        w[0].approval
    );
    assert_eq!(
        w[1].approval,
        Err(SignatureProblem::UntrustedOpenPgp),
        "Mallory's key is not trusted"
    );
    // Without trusted OpenPGP keys an OpenPGP signature is refused with that reason.
    let none = ssh_trust("");
    let w = window(
        &repo,
        tip,
        Window {
            commits: 1,
            max_age: Duration::from_secs(DAY as u64),
        },
        Some(&none),
    )
    .unwrap();
    assert_eq!(w[0].approval, Err(SignatureProblem::OpenPgpNotTrusted));
}

#[test]
fn the_index_holds_each_identity_of_the_approved_window() {
    if skip_without_tools() {
        return;
    }
    use gitgate::provenance::index::Index;
    let f = Fixture::new();
    let t0 = 1_780_000_000;
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: demo\nspec:\n  replicas: 2\n";
    std::fs::create_dir_all(f.path().join("apps")).unwrap();
    std::fs::write(f.path().join("apps/deploy.yaml"), deploy).unwrap();
    std::fs::write(
        f.path().join("apps/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n",
    )
    .unwrap();
    std::fs::write(f.path().join("README.md"), "not a manifest\n").unwrap();
    f.git(&["add", "-A"], None, t0);
    f.git(&["commit", "-q", "-m", "one"], None, t0);
    let one = f.git(&["rev-parse", "HEAD"], None, t0);
    std::fs::write(
        f.path().join("apps/deploy.yaml"),
        deploy.replace("replicas: 2", "replicas: 3"),
    )
    .unwrap();
    f.git(&["commit", "-q", "-am", "two"], None, t0 + 10);
    let two = f.git(&["rev-parse", "HEAD"], None, t0);
    std::fs::remove_file(f.path().join("apps/cm.yaml")).unwrap();
    f.git(&["commit", "-q", "-am", "three"], None, t0 + 20);
    let three = f.git(&["rev-parse", "HEAD"], None, t0);

    let repo = Repo::open(&f.path()).unwrap();
    let tip = repo.resolve("main").unwrap();
    let w = window(
        &repo,
        tip,
        Window {
            commits: 10,
            max_age: Duration::from_secs(DAY as u64),
        },
        None,
    )
    .unwrap();
    let index = Index::build(&repo, &w, &[], "default").unwrap();
    let id = |v: &str| {
        gitgate::input::Identity::of_object(
            &serde_saphyr::from_str::<serde_json::Value>(v).unwrap(),
        )
        .unwrap()
    };
    let web = id(deploy);
    let cm =
        id("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\n");
    // Two versions of the Deployment: replicas 3 (commits two and three), replicas 2 (one).
    let versions = index.lookup(&web);
    assert_eq!(versions.len(), 2, "{versions:#?}");
    assert_eq!(
        (
            versions[0].commit.to_string(),
            versions[0].since.to_string()
        ),
        (three.clone(), two.clone())
    );
    assert_eq!(versions[0].manifest()["spec"]["replicas"], 3);
    assert_eq!(
        (
            versions[1].commit.to_string(),
            versions[1].since.to_string()
        ),
        (one.clone(), one.clone())
    );
    assert_eq!(versions[1].manifest()["spec"]["replicas"], 2);
    assert_eq!(
        (&*versions[0].path, versions[0].line),
        ("apps/deploy.yaml", 1)
    );
    let cm_versions = index.lookup(&cm);
    assert_eq!(
        cm_versions.len(),
        1,
        "the ConfigMap got the default namespace"
    );
    assert_eq!(
        (
            cm_versions[0].commit.to_string(),
            cm_versions[0].since.to_string()
        ),
        (two.clone(), one.clone())
    );
    assert!(index.in_newest(&web));
    assert!(
        !index.in_newest(&cm),
        "it left in three: a DELETE of it is traceable"
    );

    // A new commit folded in, with a window of 2: one leaves, versions are trimmed.
    std::fs::write(
        f.path().join("apps/deploy.yaml"),
        deploy.replace("replicas: 2", "replicas: 4"),
    )
    .unwrap();
    f.git(&["commit", "-q", "-am", "four"], None, t0 + 30);
    let four = f.git(&["rev-parse", "HEAD"], None, t0);
    let tip = repo.resolve("main").unwrap();
    let w2 = window(
        &repo,
        tip,
        Window {
            commits: 2,
            max_age: Duration::from_secs(DAY as u64),
        },
        None,
    )
    .unwrap();
    let folded = index.advance(&repo, &w2).unwrap();
    let rebuilt = Index::build(&repo, &w2, &[], "default").unwrap();
    for idx in [&folded, &rebuilt] {
        let v = idx.lookup(&web);
        assert_eq!(v.len(), 2, "{v:#?}");
        assert_eq!(
            (v[0].commit.to_string(), v[0].since.to_string()),
            (four.clone(), four.clone())
        );
        assert_eq!(
            (v[1].commit.to_string(), v[1].since.to_string()),
            (three.clone(), three.clone()),
            "trimmed to the window"
        );
        assert!(
            idx.lookup(&cm).is_empty(),
            "the ConfigMap is in no commit of the window"
        );
        assert_eq!(
            idx.commits().map(|c| c.to_string()).collect::<Vec<_>>(),
            vec![four.clone(), three.clone()]
        );
    }
}

/// The index of a repository whose one commit holds `files`.
fn index_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, gitgate::provenance::index::Index) {
    let dir = support::repo_with(files);
    let repo = Repo::open(dir.path()).unwrap();
    let tip = repo.resolve_ref("refs/heads/main").unwrap().unwrap();
    let w = window(
        &repo,
        tip,
        Window {
            commits: 5,
            max_age: Duration::from_secs(DAY as u64),
        },
        None,
    )
    .unwrap();
    let index = gitgate::provenance::index::Index::build(&repo, &w, &[], "default").unwrap();
    (dir, index)
}

#[test]
fn a_break_glass_delete_reads_its_reason_from_the_old_object() {
    use gitgate::provenance::verdict::{Status, judge};
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let cm = std::fs::read(fixtures.join("manifests/cm.yaml")).unwrap();
    let (_dir, index) = index_with(&[("cm.yaml", &cm)]);
    let config = gitgate::config::Config::parse(
        "gitgate.yaml",
        "breakGlass: {groups: [oncall], reasonAnnotation: gitgate.dev/break-glass-reason}\n",
    )
    .unwrap();
    // The API server's DELETE: object null, the object being deleted in oldObject.
    let fixture = fixtures.join("020-delete-configmaps-web-config.json");
    let mut request: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
    assert!(request["request"]["object"].is_null());
    request["request"]["userInfo"]["groups"] =
        serde_json::json!(["oncall", "system:authenticated"]);
    let judged = |request: &serde_json::Value| {
        let (_, review) =
            gitgate::input::parse_admission_review("020", request.to_string().as_bytes()).unwrap();
        judge(&review, &index, &config)
    };
    let v = judged(&request);
    assert_eq!(
        v.status,
        Status::Untraceable,
        "no reason given: {}",
        v.reason
    );
    request["request"]["oldObject"]["metadata"]["annotations"]["gitgate.dev/break-glass-reason"] =
        serde_json::json!("INC-4711: the config crashes the web tier");
    let v = judged(&request);
    assert_eq!(v.status, Status::Exempt, "{}", v.reason);
    let bg = v.break_glass.expect("a break-glass verdict");
    assert_eq!(
        (bg.user.as_str(), bg.reason.as_str()),
        ("alice", "INC-4711: the config crashes the web tier")
    );
}

/// The Job manifest in Git: no labels on the Job itself, template labels, no selector.
const JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: db-migrate
  namespace: demo
spec:
  backoffLimit: 2
  template:
    metadata:
      labels:
        app: db-migrate
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: ghcr.io/example/migrate:1.4.2
          command: [/migrate, up]
";

const JOB_UID: &str = "5f0c7a0e-3b7e-4f7e-9d55-2f1c0e6a9b41";

/// The CREATE a kube-apiserver (v1.30) sends a validating webhook for `kubectl apply -f
/// job.yaml` (client-side apply): the Job strategy has generated the selector and the pod
/// template's `controller-uid`/`job-name` labels (legacy and `batch.kubernetes.io/`), and
/// the Job's own labels are the template's (SetDefaults_Job copies them when the Job has
/// none, sharing the map the selector generation then writes into).
fn job_create(job_labels: serde_json::Value) -> serde_json::Value {
    let labels = serde_json::json!({
        "app": "db-migrate",
        "batch.kubernetes.io/controller-uid": JOB_UID,
        "batch.kubernetes.io/job-name": "db-migrate",
        "controller-uid": JOB_UID,
        "job-name": "db-migrate"
    });
    let job_labels = if job_labels.is_null() {
        labels.clone()
    } else {
        job_labels
    };
    serde_json::json!({
      "kind": "AdmissionReview",
      "apiVersion": "admission.k8s.io/v1",
      "request": {
        "uid": "0c5a8f5e-2d55-4a40-a0a4-86c7a3f1f3b2",
        "kind": {"group": "batch", "version": "v1", "kind": "Job"},
        "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
        "requestKind": {"group": "batch", "version": "v1", "kind": "Job"},
        "requestResource": {"group": "batch", "version": "v1", "resource": "jobs"},
        "name": "db-migrate",
        "namespace": "demo",
        "operation": "CREATE",
        "userInfo": {"username": "admin", "uid": "1", "groups": ["system:masters", "system:authenticated"]},
        "object": {
          "kind": "Job",
          "apiVersion": "batch/v1",
          "metadata": {
            "name": "db-migrate",
            "namespace": "demo",
            "uid": JOB_UID,
            "generation": 1,
            "creationTimestamp": "2026-11-25T09:12:41Z",
            "labels": job_labels,
            "annotations": {
              "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"annotations\":{},\"name\":\"db-migrate\",\"namespace\":\"demo\"},\"spec\":{\"backoffLimit\":2,\"template\":{\"metadata\":{\"labels\":{\"app\":\"db-migrate\"}},\"spec\":{\"containers\":[{\"command\":[\"/migrate\",\"up\"],\"image\":\"ghcr.io/example/migrate:1.4.2\",\"name\":\"migrate\"}],\"restartPolicy\":\"Never\"}}}}\n"
            },
            "managedFields": [{
              "manager": "kubectl-client-side-apply",
              "operation": "Update",
              "apiVersion": "batch/v1",
              "time": "2026-11-25T09:12:41Z",
              "fieldsType": "FieldsV1",
              "fieldsV1": {
                "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                "f:spec": {
                  "f:backoffLimit": {}, "f:completionMode": {}, "f:completions": {}, "f:manualSelector": {},
                  "f:parallelism": {}, "f:podReplacementPolicy": {}, "f:suspend": {},
                  "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                      "f:containers": {"k:{\"name\":\"migrate\"}": {
                        ".": {}, "f:command": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                        "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
                      "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                      "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}
                    }
                  }
                }
              }
            }]
          },
          "spec": {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": 2,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": JOB_UID}},
            "manualSelector": false,
            "template": {
              "metadata": {"creationTimestamp": null, "labels": labels},
              "spec": {
                "containers": [{
                  "name": "migrate",
                  "image": "ghcr.io/example/migrate:1.4.2",
                  "command": ["/migrate", "up"],
                  "resources": {},
                  "terminationMessagePath": "/dev/termination-log",
                  "terminationMessagePolicy": "File",
                  "imagePullPolicy": "IfNotPresent"
                }],
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "securityContext": {},
                "schedulerName": "default-scheduler"
              }
            },
            "completionMode": "NonIndexed",
            "suspend": false,
            "podReplacementPolicy": "TerminatingOrFailed"
          },
          "status": {}
        },
        "oldObject": null,
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
      }
    })
}

#[test]
fn a_job_as_the_api_server_stores_it_is_traceable() {
    use gitgate::provenance::verdict::{Status, judge};
    if !have("git") {
        return;
    }
    let judged = |manifest: &str, request: &serde_json::Value| {
        let (_dir, index) = index_with(&[("job.yaml", manifest.as_bytes())]);
        let (_, review) =
            gitgate::input::parse_admission_review("job", request.to_string().as_bytes()).unwrap();
        judge(&review, &index, &gitgate::config::Config::default())
    };
    let v = judged(JOB, &job_create(serde_json::Value::Null));
    assert_eq!(
        v.status,
        Status::Traceable,
        "{}: {:?}",
        v.reason,
        v.differing
    );
    assert!(v.unattested.is_empty(), "{:?}", v.unattested);

    // With labels of its own in Git, the Job keeps exactly those.
    let labelled = JOB.replace(
        "  namespace: demo\n",
        "  namespace: demo\n  labels:\n    team: data\n",
    );
    let v = judged(&labelled, &job_create(serde_json::json!({"team": "data"})));
    assert_eq!(
        v.status,
        Status::Traceable,
        "{}: {:?}",
        v.reason,
        v.differing
    );
    // ... and a template label copied onto it is drift, as is one typed by hand.
    let v = judged(
        &labelled,
        &job_create(serde_json::json!({"team": "data", "app": "db-migrate"})),
    );
    assert_eq!(v.status, Status::Modified, "{}", v.reason);
    assert_eq!(v.differing, vec!["metadata.labels.app"]);

    // The generated labels must be the Job's own name and uid.
    let mut forged = job_create(serde_json::Value::Null);
    forged["request"]["object"]["spec"]["template"]["metadata"]["labels"]["job-name"] =
        serde_json::json!("someone-else");
    let v = judged(JOB, &forged);
    assert_eq!(v.status, Status::Modified, "{}", v.reason);
    assert_eq!(
        v.differing,
        vec!["spec.template.metadata.labels.job-name"],
        "not the API server's: a hand-written label"
    );
}

/// A cold build reads each new blob ahead on reader threads while it folds commits in; the
/// index it makes is the one folding the same commits in one at a time makes, over renames,
/// a blob at two paths, a file that leaves and comes back and more blobs than are read ahead
/// at once.
#[test]
fn a_cold_build_makes_the_index_that_folding_commit_by_commit_makes() {
    use gitgate::input::Identity;
    let f = SignedRepo::new();
    let t0 = support::signed::now() - DAY;
    let cm = |name: &str, rev: usize, size: usize| {
        let mut text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: demo}}\ndata:\n  rev: \"{rev}\"\n"
        );
        for k in 0..size {
            text.push_str(&format!("  key-{k}: value {k} of {rev}\n"));
        }
        text
    };
    for c in 0..30usize {
        let mut files: Vec<(String, String)> = vec![
            // ~250 kB changing in every commit: 7 MB in all, more than is read ahead at once.
            ("big.yaml".into(), cm("big", c, 6000)),
            // Changes one commit in three.
            ("apps/web.yaml".into(), cm("web", c / 3, 3)),
        ];
        if c % 5 == 0 {
            // The same blob at a second path, then renamed.
            files.push((format!("copies/copy-{c}.yaml"), cm("web", c / 3, 3)));
        }
        match c % 7 {
            0..=2 => files.push(("away.yaml".into(), cm("away", 0, 2))),
            _ => {
                let _ = std::fs::remove_file(f.path().join("away.yaml"));
            }
        }
        let _ = std::fs::remove_dir_all(f.path().join("copies"));
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        f.commit(&files, None, t0 + c as i64);
    }
    let repo = Repo::open(&f.path()).unwrap();
    let tip = repo.resolve("main").unwrap();
    let w = |commits| {
        window(
            &repo,
            tip,
            Window {
                commits,
                max_age: Duration::from_secs(DAY as u64 * 2),
            },
            None,
        )
        .unwrap()
    };
    let whole = w(40);
    let cold = gitgate::provenance::index::Index::build(&repo, &whole, &[], "default").unwrap();
    let mut folded =
        gitgate::provenance::index::Index::build(&repo, &whole[whole.len() - 1..], &[], "default")
            .unwrap();
    for n in (1..whole.len()).rev() {
        folded = folded.advance(&repo, &whole[n - 1..]).unwrap();
    }
    assert_eq!(cold.len(), folded.len());
    for name in ["big", "web", "away"] {
        let id = Identity {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("demo".into()),
            name: name.into(),
        };
        let read = |index: &gitgate::provenance::index::Index| {
            index
                .lookup(&id)
                .iter()
                .map(|v| {
                    (
                        v.commit,
                        v.since,
                        v.path.to_string(),
                        v.line,
                        (*v.manifest()).clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let (a, b) = (read(&cold), read(&folded));
        assert!(!a.is_empty(), "{name}");
        assert!(a == b, "{name}: the cold build and the fold differ");
    }
}
