//! `follow`: one entry point per cluster (issue 20). Repositories laid out as the public Flux
//! and Argo CD examples lay them out (written here), read through the controllers' own
//! objects, at both doors: `check` on pull requests and `serve` on what the controller applies.

mod support;

use serde_json::{Value, json};
use support::gate::{DEPLOYMENT, FLUX, Gate, Gvr, allowed, message, request};

const CLUSTER_ISSUER: Gvr = Gvr {
    group: "cert-manager.io",
    version: "v1",
    kind: "ClusterIssuer",
    resource: "clusterissuers",
};

const GOTK_SYNC: &str = "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 1m
  ref: {branch: main}
  url: ssh://git@github.com/acme/fleet
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 10m
  path: ./clusters/production
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
";

const ARTIFACTS: &str = "apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata: {name: flux-system, namespace: flux-system}
spec:
  sources:
  - {alias: monorepo, kind: GitRepository, name: flux-system}
  artifacts:
  - name: infrastructure
    copy:
    - {from: \"@monorepo/infrastructure/**\", to: \"@artifact/\"}
";

const INFRASTRUCTURE: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: infra-configs, namespace: flux-system}
spec:
  interval: 1h
  sourceRef: {kind: ExternalArtifact, name: infrastructure}
  path: ./configs
  prune: true
  patches:
  - patch: |
      - op: replace
        path: /spec/acme/server
        value: https://acme-v02.api.letsencrypt.org/directory
    target: {kind: ClusterIssuer, name: letsencrypt}
";

const WEB_KUSTOMIZATION: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: web, namespace: flux-system}
spec:
  interval: 1h
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./apps/web
  targetNamespace: web
  serviceAccountName: web-deployer
  prune: true
  postBuild:
    substitute: {version: \"1.27\"}
    substituteFrom:
    - {kind: ConfigMap, name: cluster-vars}
";

const CLUSTER_VARS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: cluster-vars, namespace: flux-system}
data: {replicas: \"3\"}
";

const STAGING: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: staging-only, namespace: flux-system}
spec:
  interval: 1h
  sourceRef: {kind: GitRepository, name: flux-system}
  path: ./apps/staging-only
  prune: true
";

const ISSUERS_KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [cluster-issuers.yaml]
";

const ISSUER: &str = "apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: letsencrypt
spec:
  acme:
    email: ops@example.com
    server: https://acme-staging-v02.api.letsencrypt.org/directory
    privateKeySecretRef: {name: letsencrypt}
";

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:${version}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 200m, memory: 128Mi}
        securityContext: {runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false}
";

const STAGING_CM: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: staging-only, namespace: web}
data: {a: b}
";

/// The production cluster of a Flux repository in the layout of the public
/// flux2-kustomize-helm-example: a bootstrap folder, an ArtifactGenerator, Kustomizations in
/// `clusters/production`, the folders they apply elsewhere; staging beside it.
fn flux_repository(config: &str) -> tempfile::TempDir {
    support::repo_with(&[
        ("gitgate.yaml", config.as_bytes()),
        (
            "clusters/production/flux-system/kustomization.yaml",
            b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [gotk-sync.yaml]\n",
        ),
        (
            "clusters/production/flux-system/gotk-sync.yaml",
            GOTK_SYNC.as_bytes(),
        ),
        ("clusters/production/artifacts.yaml", ARTIFACTS.as_bytes()),
        (
            "clusters/production/infrastructure.yaml",
            INFRASTRUCTURE.as_bytes(),
        ),
        ("clusters/production/web.yaml", WEB_KUSTOMIZATION.as_bytes()),
        ("clusters/production/vars.yaml", CLUSTER_VARS.as_bytes()),
        ("clusters/staging/apps.yaml", STAGING.as_bytes()),
        (
            "infrastructure/configs/kustomization.yaml",
            ISSUERS_KUSTOMIZATION.as_bytes(),
        ),
        ("infrastructure/configs/cluster-issuers.yaml", ISSUER.as_bytes()),
        ("apps/web/deploy.yaml", WEB.as_bytes()),
        ("apps/staging-only/cm.yaml", STAGING_CM.as_bytes()),
    ])
}

const FOLLOW_FLUX: &str =
    "repository:\n  sources:\n  - {path: clusters/production, follow: flux}\n";

#[test]
fn check_follows_a_kustomizations_patch_and_points_at_it() {
    if !support::engines::kustomize() {
        return;
    }
    let repo = flux_repository(FOLLOW_FLUX);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    let changed = INFRASTRUCTURE.replace(
        "acme-v02.api.letsencrypt.org/directory",
        "acme.example.org/directory",
    );
    support::commit_files(
        dir,
        &[(
            "clusters/production/infrastructure.yaml",
            changed.as_bytes(),
        )],
        "another ACME server",
    );
    let (code, out, err) = support::gitgate(
        dir,
        &["check", "--base", "main", "--head", "pr", "-o", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let issuers: Vec<&Value> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["object"].as_str().unwrap().starts_with("ClusterIssuer"))
        .collect();
    // One UPDATE of the ClusterIssuer, at the file and line of the patch.
    assert_eq!(issuers.len(), 1, "{out}");
    assert_eq!(issuers[0]["operation"], "UPDATE");
    assert_eq!(
        issuers[0]["path"], "clusters/production/infrastructure.yaml",
        "{out}"
    );
    assert_eq!(issuers[0]["line"], 10, "{out}");
}

#[test]
fn check_reads_a_folder_only_a_flux_kustomization_names_with_its_namespace_and_variables() {
    if !support::engines::kustomize() {
        return;
    }
    // The layout of the common Flux monorepo template: a root kustomization listing each
    // app's Flux Kustomization; the app's objects in a folder only that Kustomization names.
    let app = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: web, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: flux-system}\n  path: ./apps/web/app\n  targetNamespace: web\n  postBuild:\n    substitute: {version: \"1.27\", replicas: \"2\"}\n";
    let files = |config: &str| {
        support::repo_with(&[
            ("gitgate.yaml", config.as_bytes()),
            (
                "kustomization.yaml",
                b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [apps/web/ks.yaml]\n",
            ),
            ("apps/web/ks.yaml", app.as_bytes()),
            ("apps/web/app/deploy.yaml", WEB.as_bytes()),
        ])
    };
    let privileged = WEB.replace("allowPrivilegeEscalation: false", "privileged: true");
    // Without follow: the folder is under a kustomization that does not name it. Nothing
    // renders it, and that is said, never "0 objects" alone.
    let repo = files("repository:\n  sources: [{path: .}]\n");
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    support::commit_files(
        dir,
        &[("apps/web/app/deploy.yaml", privileged.as_bytes())],
        "privileged",
    );
    for format in ["text", "json", "sarif", "junit", "github"] {
        let (code, out, err) = support::gitgate(
            dir,
            &["check", "--base", "main", "--head", "pr", "-o", format],
        );
        assert_eq!(code, 0, "{format}: {out}{err}");
        assert!(
            out.contains("apps/web/app/deploy.yaml") && out.contains("applied by no source"),
            "{format}: {out}"
        );
    }
    // The configuration is the base's: a repository configured to follow.
    let repo = files("repository:\n  sources: [{path: ., follow: flux}]\n  unrendered: error\n");
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    support::commit_files(
        dir,
        &[("apps/web/app/deploy.yaml", privileged.as_bytes())],
        "privileged",
    );
    // With follow: the Kustomization's path is rendered, in its target namespace, with its
    // variables; the privileged container refused at its line.
    for format in ["text", "json", "sarif", "junit", "github"] {
        let (code, out, err) = support::gitgate(
            dir,
            &["check", "--base", "main", "--head", "pr", "-o", format],
        );
        assert_eq!(code, 1, "{format}: {out}{err}");
        assert!(out.contains("privileged"), "{format}: {out}");
        assert!(!out.contains("applied by no source"), "{format}: {out}");
    }
    let (_, out, _) = support::gitgate(dir, &["check", "--base", "main", "--head", "pr"]);
    assert!(
        out.contains("apps/web/app/deploy.yaml:19") && out.contains("web/web"),
        "{out}"
    );
    // And `repository.unrendered: error` makes a file no source renders an error.
    support::commit_files(
        dir,
        &[(
            "apps/other/pod.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: y}\n",
        )],
        "unrendered",
    );
    let (code, out, _) = support::gitgate(dir, &["check", "--base", "main", "--head", "pr"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("apps/other/pod.yaml"), "{out}");
}

#[test]
fn a_kustomization_that_substitutes_from_a_secret_git_does_not_hold_is_unverifiable() {
    if !support::engines::kustomize() {
        return;
    }
    let config = FOLLOW_FLUX;
    let repo = flux_repository(config);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    let secret = WEB_KUSTOMIZATION.replace(
        "kind: ConfigMap, name: cluster-vars",
        "kind: Secret, name: keys",
    );
    support::commit_files(
        dir,
        &[("clusters/production/web.yaml", secret.as_bytes())],
        "variables from a Secret",
    );
    let (code, out, err) = support::gitgate(dir, &["check", "--base", "main", "--head", "pr"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("Secret flux-system/keys") && out.contains("cannot be known from Git"),
        "{out}"
    );
}

/// A live object as kustomize-controller applies it for Kustomization `ks`.
fn applied(mut object: Value, ks: &str) -> Value {
    let api_version = object["apiVersion"].clone();
    let meta = object["metadata"].as_object_mut().unwrap();
    meta.insert("uid".into(), json!("0c7b2f7e-94a1-4d5e-9b8d-0d4b1a3f5e21"));
    meta.insert("resourceVersion".into(), json!("811"));
    meta.insert("creationTimestamp".into(), json!("2026-12-01T10:00:00Z"));
    meta.insert(
        "labels".into(),
        json!({"kustomize.toolkit.fluxcd.io/name": ks, "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}),
    );
    meta.insert(
        "managedFields".into(),
        json!([{"apiVersion": api_version, "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}},
                "manager": "kustomize-controller", "operation": "Apply", "time": "2026-12-01T10:00:00Z"}]),
    );
    object
}

#[test]
fn serve_admits_what_flux_applies_through_its_kustomizations_and_nothing_else() {
    if !support::engines::kustomize() {
        return;
    }
    let repo = flux_repository("");
    // The webhook mirrors the repository by its path; the bootstrap GitRepository in the
    // entry gives the URL Flux reads it by (ssh://git@github.com/acme/fleet).
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(
        dir.path(),
        &format!(
            "repository:\n  url: {}\n  refresh: 100ms\n  sources:\n  - {{path: clusters/production, follow: flux}}\n",
            repo.path().display()
        ),
    );
    gate.wait_ready();
    let issuer = |server: &str| {
        applied(
            json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                   "metadata": {"name": "letsencrypt"},
                   "spec": {"acme": {"email": "ops@example.com", "server": server,
                                     "privateKeySecretRef": {"name": "letsencrypt"}}}}),
            "infra-configs",
        )
    };
    // The Kustomization's patch: Flux applies the production server.
    let patched = issuer("https://acme-v02.api.letsencrypt.org/directory");
    let answer = gate.review(request(
        "CREATE",
        CLUSTER_ISSUER,
        None,
        FLUX,
        &patched,
        None,
    ));
    assert!(allowed(&answer), "the patched object: {answer}");
    let unpatched = issuer("https://acme-staging-v02.api.letsencrypt.org/directory");
    let answer = gate.review(request(
        "CREATE",
        CLUSTER_ISSUER,
        None,
        FLUX,
        &unpatched,
        None,
    ));
    assert!(
        !allowed(&answer),
        "the manifest without the patch: {answer}"
    );
    assert!(message(&answer).contains("spec.acme.server"), "{answer}");
    // targetNamespace and the substituted variables (one from a Git-held ConfigMap).
    let web = |image: &str| {
        let mut d: Value = serde_saphyr::from_str(WEB).unwrap();
        d["metadata"]["namespace"] = json!("web");
        d["spec"]["replicas"] = json!(3);
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        applied(d, "web")
    };
    let answer = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        FLUX,
        &web("nginx:1.27"),
        None,
    ));
    assert!(allowed(&answer), "moved and substituted: {answer}");
    let answer = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        FLUX,
        &web("nginx:1.28"),
        None,
    ));
    assert!(!allowed(&answer), "another image: {answer}");
    // The Kustomization's service account (Flux's impersonation) applies its objects.
    const TENANT: &str = "system:serviceaccount:flux-system:web-deployer";
    let answer = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        TENANT,
        &web("nginx:1.27"),
        None,
    ));
    assert!(
        allowed(&answer),
        "the Kustomization's own account: {answer}"
    );
    // Flux's tracking labels name the Kustomization that renders the object, no other.
    let mut mislabelled = web("nginx:1.27");
    mislabelled["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!("infra-configs");
    let answer = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        FLUX,
        &mislabelled,
        None,
    ));
    assert!(!allowed(&answer), "another Kustomization's label: {answer}");
    // Also where the Kustomization's path is its ExternalArtifact's, not the repository's.
    let mut mislabelled = patched.clone();
    mislabelled["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!("web");
    let answer = gate.review(request(
        "CREATE",
        CLUSTER_ISSUER,
        None,
        FLUX,
        &mislabelled,
        None,
    ));
    assert!(!allowed(&answer), "another Kustomization's label: {answer}");
    // What only staging's Kustomization applies is not production's.
    let staging = applied(
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "staging-only", "namespace": "web"}, "data": {"a": "b"}}),
        "staging-only",
    );
    let answer = gate.review(request(
        "CREATE",
        support::gate::CONFIGMAP,
        None,
        FLUX,
        &staging,
        None,
    ));
    assert!(!allowed(&answer), "staging's object: {answer}");
}

const ARGO_ROOT: &str = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: root, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://github.com/acme/fleet.git, path: argocd/apps, targetRevision: HEAD}
  destination: {server: https://kubernetes.default.svc, namespace: argocd}
";

const ARGO_GUESTBOOK: &str = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: kustomize-guestbook, namespace: argocd}
spec:
  project: default
  source:
    repoURL: https://github.com/acme/fleet.git
    path: kustomize-guestbook
    targetRevision: main
    kustomize: {namePrefix: kg-}
  destination: {server: https://kubernetes.default.svc, namespace: guestbook}
";

const ARGO_ELSEWHERE: &str = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: elsewhere, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://github.com/acme/other.git, path: x, targetRevision: HEAD}
  destination: {server: https://kubernetes.default.svc, namespace: x}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: pinned, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://github.com/acme/fleet.git, path: kustomize-guestbook, targetRevision: v0.1.0}
  destination: {server: https://kubernetes.default.svc, namespace: x}
";

#[test]
fn check_follows_an_argo_cd_app_of_apps_and_reports_what_it_does_not_follow() {
    if !support::engines::kustomize() {
        return;
    }
    let deployment = WEB
        .replace("  replicas: ${replicas}\n", "")
        .replace("${version}", "1.27");
    let repo = support::repo_with(&[
        (
            "gitgate.yaml",
            b"repository:\n  sources: [{path: argocd/root.yaml, follow: argocd}]\n",
        ),
        ("argocd/root.yaml", ARGO_ROOT.as_bytes()),
        ("argocd/apps/guestbook.yaml", ARGO_GUESTBOOK.as_bytes()),
        ("argocd/apps/elsewhere.yaml", ARGO_ELSEWHERE.as_bytes()),
        (
            "kustomize-guestbook/kustomization.yaml",
            b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n",
        ),
        ("kustomize-guestbook/deploy.yaml", deployment.as_bytes()),
    ]);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    let prefix = ARGO_GUESTBOOK.replace("namePrefix: kg-", "namePrefix: guestbook-");
    support::commit_files(
        dir,
        &[("argocd/apps/guestbook.yaml", prefix.as_bytes())],
        "another prefix",
    );
    let (code, out, err) = support::gitgate(
        dir,
        &["check", "--base", "main", "--head", "pr", "-o", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let objects: Vec<(String, String)> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["operation"].as_str().unwrap().to_string(),
                c["object"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The objects the Application applies, renamed, in its destination namespace.
    assert!(
        objects.contains(&(
            "CREATE".into(),
            "Deployment.apps guestbook/guestbook-web".into()
        )) && objects.contains(&("DELETE".into(), "Deployment.apps guestbook/kg-web".into())),
        "{objects:?}"
    );
    let (_, text, _) = support::gitgate(dir, &["check", "--base", "main", "--head", "pr"]);
    assert!(
        text.contains("Application argocd/elsewhere: not followed")
            && text.contains("Application argocd/pinned: not followed: its revision v0.1.0"),
        "{text}"
    );
}

const PODINFO_RELEASE: &str = "apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: podinfo, namespace: podinfo}
spec:
  interval: 5m
  url: https://stefanprodan.github.io/podinfo
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: podinfo}
spec:
  interval: 50m
  releaseName: podinfo
  chart:
    spec:
      chart: podinfo
      version: 6.9.2
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
    replicaCount: 2
";

/// What helm-controller writes for release `podinfo/podinfo` in `namespace`.
fn from_the_chart(namespace: &str) -> Value {
    let mut d: Value = serde_saphyr::from_str(
        &WEB.replace("${replicas}", "2")
            .replace("${version}", "6.9.2"),
    )
    .unwrap();
    d["metadata"] = json!({
        "name": "podinfo", "namespace": namespace,
        "uid": "5d1c0f7e-94a1-4d5e-9b8d-0d4b1a3f5e22", "resourceVersion": "912",
        "creationTimestamp": "2026-12-01T10:00:00Z",
        "labels": {"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "podinfo",
                   "app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": "podinfo", "meta.helm.sh/release-namespace": "podinfo"},
        "managedFields": [{"apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}},
                           "manager": "helm-controller", "operation": "Update", "time": "2026-12-01T10:00:00Z"}]
    });
    d
}

#[test]
fn what_helm_controller_writes_for_a_chart_repository_release_is_delegated_to_it() {
    let repo = support::repo_with(&[
        (
            "clusters/production/podinfo.yaml",
            PODINFO_RELEASE.as_bytes(),
        ),
        ("clusters/production/vars.yaml", CLUSTER_VARS.as_bytes()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(
        dir.path(),
        &format!(
            "repository:\n  url: {}\n  refresh: 100ms\n  sources:\n  - {{path: clusters/production, follow: flux}}\n",
            repo.path().display()
        ),
    );
    gate.wait_ready();
    const HELM: &str = "system:serviceaccount:flux-system:helm-controller";
    let answer = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        HELM,
        &from_the_chart("podinfo"),
        None,
    ));
    assert!(allowed(&answer), "helm-controller's object: {answer}");
    assert_eq!(
        answer["auditAnnotations"]["provenance"], "delegated",
        "{answer}"
    );
    // Another identity, another namespace: refused.
    let answer = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        FLUX,
        &from_the_chart("podinfo"),
        None,
    ));
    assert!(!allowed(&answer), "another writer: {answer}");
    assert!(
        message(&answer).contains("only system:serviceaccount:flux-system:helm-controller"),
        "{answer}"
    );
    let answer = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        HELM,
        &from_the_chart("shop"),
        None,
    ));
    assert!(!allowed(&answer), "another namespace: {answer}");
    // The release removed from Git: nothing is delegated to it any more.
    support::git(
        repo.path(),
        "a@example.com",
        1,
        &["rm", "-q", "clusters/production/podinfo.yaml"],
    );
    support::git(
        repo.path(),
        "a@example.com",
        1,
        &["commit", "-qm", "no podinfo"],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let answer = gate.review(request(
            "CREATE",
            DEPLOYMENT,
            None,
            HELM,
            &from_the_chart("podinfo"),
            None,
        ));
        if !allowed(&answer) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still delegated: {answer}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_helm_release_with_a_chart_of_this_repository_is_templated_as_helm_controller_does() {
    let Some(helm) = support::engines::helm() else {
        return;
    };
    let release = |privileged: bool| {
        format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {{name: web, namespace: flux-system}}\nspec:\n  targetNamespace: prod\n  chart:\n    spec:\n      chart: ./charts/web\n      sourceRef: {{kind: GitRepository, name: flux-system}}\n  values:\n    privileged: {privileged}\n"
        )
    };
    let template = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    securityContext: {privileged: {{ .Values.privileged }}}\n";
    let config = format!(
        "repository:\n  sources: [{{path: clusters/production, follow: flux}}]\nrender:\n  helmBinary: {}\n",
        helm.display()
    );
    let repo = support::repo_with(&[
        ("gitgate.yaml", config.as_bytes()),
        ("clusters/production/web.yaml", release(false).as_bytes()),
        (
            "charts/web/Chart.yaml",
            b"apiVersion: v2\nname: web\nversion: 0.1.0\n",
        ),
        ("charts/web/values.yaml", b"privileged: false\n"),
        ("charts/web/templates/pod.yaml", template.as_bytes()),
    ]);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    support::commit_files(
        dir,
        &[("clusters/production/web.yaml", release(true).as_bytes())],
        "privileged values",
    );
    for format in ["text", "json", "sarif", "junit", "github"] {
        let (code, out, err) = support::gitgate(
            dir,
            &["check", "--base", "main", "--head", "pr", "-o", format],
        );
        assert_eq!(code, 1, "{format}: {out}{err}");
        assert!(out.contains("privileged"), "{format}: {out}");
    }
    // Released as helm-controller names it: `<targetNamespace>-<name>` in the target namespace.
    let (_, out, _) = support::gitgate(dir, &["check", "--base", "main", "--head", "pr"]);
    assert!(out.contains("Pod prod/prod-web"), "{out}");
}

#[test]
fn a_helm_releases_values_files_replace_the_charts_own_values_as_source_controller_does() {
    let Some(helm) = support::engines::helm() else {
        return;
    };
    // source-controller merges `valuesFiles` into the chart's defaults in place of its
    // values.yaml: a default the chart's values.yaml turns off is on again where the list
    // leaves values.yaml out.
    let release = |spec: &str| {
        format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {{name: web, namespace: flux-system}}\nspec:\n  targetNamespace: prod\n  chart:\n    spec:\n      chart: ./charts/web\n      sourceRef: {{kind: GitRepository, name: flux-system}}\n{spec}"
        )
    };
    let template = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\nspec:\n  containers:\n  - name: c\n    image: busybox:{{ .Values.tag }}\n    securityContext: {privileged: {{ if hasKey .Values \"privileged\" }}{{ .Values.privileged }}{{ else }}true{{ end }}}\n";
    let config = format!(
        "repository:\n  sources: [{{path: clusters/production, follow: flux}}]\nrender:\n  helmBinary: {}\n",
        helm.display()
    );
    let repo = support::repo_with(&[
        ("gitgate.yaml", config.as_bytes()),
        ("clusters/production/web.yaml", release("").as_bytes()),
        (
            "charts/web/Chart.yaml",
            b"apiVersion: v2\nname: web\nversion: 0.1.0\n",
        ),
        (
            "charts/web/values.yaml",
            b"privileged: false\ntag: \"1.36\"\n",
        ),
        ("charts/web/values-prod.yaml", b"tag: \"1.37\"\n"),
        ("charts/web/templates/pod.yaml", template.as_bytes()),
    ]);
    let dir = repo.path();
    let cases = [
        // values.yaml left out: privileged, as Flux applies it.
        ("      valuesFiles: [charts/web/values-prod.yaml]\n", 1),
        // values.yaml listed first: its values count, the next file's go over them.
        (
            "      valuesFiles: [charts/web/values.yaml, charts/web/values-prod.yaml]\n",
            0,
        ),
        // A file Git does not hold: source-controller fails the chart...
        (
            "      valuesFiles: [charts/web/values.yaml, charts/web/missing.yaml]\n",
            2,
        ),
        // ...unless told to leave missing files out.
        (
            "      valuesFiles: [charts/web/values.yaml, charts/web/missing.yaml]\n      ignoreMissingValuesFiles: true\n",
            0,
        ),
    ];
    for (i, (spec, expected)) in cases.into_iter().enumerate() {
        let branch = format!("pr{i}");
        support::git(
            dir,
            "a@example.com",
            0,
            &["checkout", "-q", "-B", &branch, "main"],
        );
        support::commit_files(
            dir,
            &[("clusters/production/web.yaml", release(spec).as_bytes())],
            "values files",
        );
        let (code, out, err) =
            support::gitgate(dir, &["check", "--base", "main", "--head", &branch]);
        assert_eq!(code, expected, "{spec}: {out}{err}");
        if expected == 1 {
            assert!(out.contains("privileged"), "{out}");
            assert!(out.contains("Pod prod/prod-web"), "{out}");
        }
        if expected == 2 {
            assert!(
                out.contains("missing.yaml") || err.contains("missing.yaml"),
                "{out}{err}"
            );
        }
    }
}

#[test]
fn a_parent_that_patches_its_child_kustomizations_is_applied_first() {
    if !support::engines::kustomize() {
        return;
    }
    let repo = flux_repository(FOLLOW_FLUX);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    // The bootstrap Kustomization patches every child Kustomization's variables.
    let parent = format!(
        "{GOTK_SYNC}  patches:\n  - patch: |\n      - op: replace\n        path: /spec/postBuild/substitute/version\n        value: \"1.28\"\n    target: {{kind: Kustomization, name: web}}\n"
    );
    support::commit_files(
        dir,
        &[(
            "clusters/production/flux-system/gotk-sync.yaml",
            parent.as_bytes(),
        )],
        "a newer version for every child",
    );
    let (code, out, err) = support::gitgate(
        dir,
        &["check", "--base", "main", "--head", "pr", "-o", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let deployments: Vec<&Value> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["object"] == "Deployment.apps web/web")
        .collect();
    assert_eq!(deployments.len(), 1, "{out}");
    assert_eq!(deployments[0]["operation"], "UPDATE", "{out}");
}

#[test]
fn serve_admits_what_an_argo_cd_application_applies_with_its_tracking_label() {
    if !support::engines::kustomize() {
        return;
    }
    let deployment = WEB
        .replace("  replicas: ${replicas}\n", "")
        .replace("${version}", "1.27");
    let repo = support::repo_with(&[
        (
            "kustomize-guestbook/kustomization.yaml",
            b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n",
        ),
        ("kustomize-guestbook/deploy.yaml", deployment.as_bytes()),
    ]);
    // The webhook mirrors the repository by its path: the Applications' own URL is learned
    // from the root Application, which the entry holds.
    support::commit_files(
        repo.path(),
        &[
            ("argocd/root.yaml", ARGO_ROOT.as_bytes()),
            ("argocd/apps/guestbook.yaml", ARGO_GUESTBOOK.as_bytes()),
            ("argocd/apps/elsewhere.yaml", ARGO_ELSEWHERE.as_bytes()),
        ],
        "the applications",
    );
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(
        dir.path(),
        &format!(
            "repository:\n  url: {}\n  refresh: 100ms\n  sources:\n  - {{path: argocd/root.yaml, follow: argocd}}\n",
            repo.path().display()
        ),
    );
    gate.wait_ready();
    const ARGO: &str = "system:serviceaccount:argocd:argocd-application-controller";
    let live = |instance: &str| {
        let mut d: Value = serde_saphyr::from_str(&deployment).unwrap();
        d["metadata"] = json!({
            "name": "kg-web", "namespace": "guestbook",
            "uid": "7d1c0f7e-94a1-4d5e-9b8d-0d4b1a3f5e23", "resourceVersion": "77",
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "labels": {"app.kubernetes.io/instance": instance},
            "managedFields": [{"apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}},
                               "manager": "argocd-controller", "operation": "Apply", "time": "2026-12-01T10:00:00Z"}]
        });
        d
    };
    let answer = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        ARGO,
        &live("kustomize-guestbook"),
        None,
    ));
    assert!(allowed(&answer), "the Application's object: {answer}");
    let answer = gate.review(request(
        "CREATE",
        DEPLOYMENT,
        None,
        ARGO,
        &live("another-app"),
        None,
    ));
    assert!(!allowed(&answer), "another Application's label: {answer}");
}

#[test]
fn variables_from_a_config_map_another_kustomization_applies_are_read() {
    if !support::engines::kustomize() {
        return;
    }
    let web = WEB_KUSTOMIZATION.replace(
        "  postBuild:\n    substitute: {version: \"1.27\"}\n",
        "  postBuild:\n    substitute: {replicas: \"2\"}\n",
    );
    let vars = |version: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cluster-vars, namespace: flux-system}}\ndata: {{version: \"{version}\"}}\n"
        )
    };
    let config_ks = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: config, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: flux-system}\n  path: ./config\n";
    let repo = support::repo_with(&[
        ("gitgate.yaml", FOLLOW_FLUX.as_bytes()),
        (
            "clusters/production/flux-system/gotk-sync.yaml",
            GOTK_SYNC.as_bytes(),
        ),
        ("clusters/production/web.yaml", web.as_bytes()),
        ("clusters/production/config.yaml", config_ks.as_bytes()),
        ("config/vars.yaml", vars("1.27").as_bytes()),
        ("apps/web/deploy.yaml", WEB.as_bytes()),
    ]);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    support::commit_files(
        dir,
        &[("config/vars.yaml", vars("1.28").as_bytes())],
        "a newer version",
    );
    let (code, out, err) = support::gitgate(
        dir,
        &["check", "--base", "main", "--head", "pr", "-o", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["object"] == "Deployment.apps web/web" && c["operation"] == "UPDATE"),
        "{out}"
    );
}

// --- What source-controller's artifact holds ------------------------------------------------

/// Files to commit: (path, content).
type Files<'a> = &'a [(&'a str, &'a [u8])];

/// A kustomization in `apps/web` that names `extra.yaml`, which `.sourceignore` leaves out.
const LEFT_OUT: Files = &[
    (
        "apps/web/kustomization.yaml",
        b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml, extra.yaml]\n",
    ),
    (
        "apps/web/extra.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: b}\n",
    ),
    (".sourceignore", b"apps/web/extra.yaml\n"),
];

/// Flux's kustomize-controller builds from source-controller's artifact, which does not hold
/// what `.sourceignore` leaves out: a kustomization that names such a file fails to build and
/// nothing is applied, while gitgate built it from the commit and judged its output. Argo CD
/// reads the repository as it is and builds it.
#[test]
fn a_file_the_artifact_leaves_out_fails_fluxs_build_but_not_argo_cds() {
    if !support::engines::kustomize() {
        return;
    }
    let deployment = WEB
        .replace("  replicas: ${replicas}\n", "")
        .replace("${version}", "1.27");
    let flux = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: web, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: flux-system}\n  path: ./apps/web\n  targetNamespace: web\n";
    let argo = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  source:\n    repoURL: https://github.com/acme/fleet\n    targetRevision: HEAD\n    path: apps/web\n  destination: {namespace: web}\n";
    let entries: [(&str, Files); 2] = [
        (
            "flux",
            &[
                (
                    "clusters/production/flux-system/gotk-sync.yaml",
                    GOTK_SYNC.as_bytes(),
                ),
                ("clusters/production/web.yaml", flux.as_bytes()),
            ],
        ),
        (
            "argocd",
            &[("clusters/production/web.yaml", argo.as_bytes())],
        ),
    ];
    for (controller, entry) in entries {
        let config = format!(
            "repository:\n  url: git@github.com:acme/fleet.git\n  sources: [{{path: clusters/production, follow: {controller}}}]\n"
        );
        let mut base: Vec<(&str, &[u8])> = vec![
            ("gitgate.yaml", config.as_bytes()),
            (
                "apps/web/kustomization.yaml",
                b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n",
            ),
            ("apps/web/deploy.yaml", deployment.as_bytes()),
        ];
        base.extend_from_slice(entry);
        let repo = support::repo_with(&base);
        let dir = repo.path();
        support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
        support::commit_files(dir, LEFT_OUT, "a resource the artifact leaves out");
        let (code, out, err) = support::gitgate(
            dir,
            &["check", "--base", "main", "--head", "pr", "-o", "json"],
        );
        let report: Value = serde_json::from_str(&out).unwrap_or_default();
        let created = report["checked"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["object"] == "ConfigMap web/extra" && c["operation"] == "CREATE");
        if controller == "flux" {
            // The build fails, naming the source and the file it lacks.
            assert_eq!(code, 2, "{out}{err}");
            let (_, text, _) = support::gitgate(dir, &["check", "--base", "main", "--head", "pr"]);
            assert!(
                text.contains("apps/web (Kustomization flux-system/web)")
                    && text
                        .contains("(apps/web/extra.yaml left out of the artifact by .sourceignore"),
                "{text}"
            );
            assert!(!created, "{out}");
        } else {
            assert_eq!(code, 0, "{out}{err}");
            assert!(created, "Argo CD applies the file: {out}");
        }
    }
}

/// helm-controller templates the chart source-controller packages from its artifact: a
/// template `.sourceignore` leaves out is not in it, its objects are never applied, and its
/// call of `lookup` does not make the release depend on the cluster.
#[test]
fn a_chart_template_the_artifact_leaves_out_is_not_rendered() {
    let Some(helm) = support::engines::helm() else {
        return;
    };
    let release = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: web, namespace: flux-system}\nspec:\n  targetNamespace: prod\n  chart:\n    spec:\n      chart: ./charts/web\n      sourceRef: {kind: GitRepository, name: flux-system}\n";
    let pod = |name: &str, privileged: bool| {
        let lookup = if privileged {
            "{{- $held := lookup \"v1\" \"Pod\" .Release.Namespace \"evil\" }}\n"
        } else {
            ""
        };
        format!(
            "{lookup}apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {{{{ .Release.Namespace }}}}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    securityContext: {{privileged: {privileged}}}\n"
        )
    };
    let config = format!(
        "repository:\n  sources: [{{path: clusters/production, follow: flux}}]\nrender:\n  helmBinary: {}\n",
        helm.display()
    );
    let repo = support::repo_with(&[
        ("gitgate.yaml", config.as_bytes()),
        ("clusters/production/web.yaml", release.as_bytes()),
        (
            "charts/web/Chart.yaml",
            b"apiVersion: v2\nname: web\nversion: 0.1.0\n",
        ),
        (
            "charts/web/templates/pod.yaml",
            pod("web", false).as_bytes(),
        ),
    ]);
    let dir = repo.path();
    let evil = pod("evil", true);
    for (branch, ignore) in [
        ("held", None),
        ("left-out", Some("charts/web/templates/evil.yaml\n")),
    ] {
        support::git(
            dir,
            "a@example.com",
            0,
            &["checkout", "-q", "-B", branch, "main"],
        );
        let mut pr: Vec<(&str, &[u8])> = vec![("charts/web/templates/evil.yaml", evil.as_bytes())];
        if let Some(ignore) = ignore {
            pr.push((".sourceignore", ignore.as_bytes()));
        }
        support::commit_files(dir, &pr, "a privileged template");
        let (code, out, err) =
            support::gitgate(dir, &["check", "--base", "main", "--head", branch]);
        if ignore.is_none() {
            assert_eq!(code, 1, "{out}{err}");
            assert!(out.contains("Pod prod/evil"), "{out}");
            assert!(out.contains("calls lookup"), "{out}");
        } else {
            assert_eq!(code, 0, "{out}{err}");
            assert!(!out.contains("evil") && !out.contains("lookup"), "{out}");
        }
    }
}
