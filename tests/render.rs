//! What Git approves is what the GitOps controller applies: repositories laid out as Flux's
//! and Argo CD's example repositories are (written here), rendered with the real engines,
//! indexed, judged at admission and checked in CI; and bad input to the renders, each refused
//! with an error naming its source, never a hang. Tests skip, saying which, where an engine is
//! missing (see `support::engines`).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gitgate::config::Config;
use gitgate::git::Repo;
use gitgate::input::parse_admission_review;
use gitgate::provenance::approval::{Window, window};
use gitgate::provenance::index::Index;
use gitgate::provenance::verdict::{Status, Verdict, judge};
use gitgate::render::Renderer;
use serde_json::{Value, json};
use support::{commit_files, engines, git, repo_with};

// ---------------------------------------------------------------------------------------
// A Flux layout: apps/base/<app>, apps/{staging,production} overlays, infrastructure/,
// clusters/<env>/.

const PODINFO_KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: podinfo
resources:
  - namespace.yaml
  - repository.yaml
  - release.yaml
";

const PODINFO_NAMESPACE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: podinfo
";

const PODINFO_REPOSITORY: &str = "apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: podinfo
  namespace: podinfo
spec:
  interval: 5m
  url: https://charts.example.org/podinfo
";

const PODINFO_RELEASE: &str = "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  releaseName: podinfo
  interval: 50m
  chart:
    spec:
      chart: podinfo
      version: \"6.5.x\"
      sourceRef:
        kind: HelmRepository
        name: podinfo
  values:
    replicaCount: 1
    ingress:
      enabled: true
      className: nginx
";

const ECHO_KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: echo
resources:
  - namespace.yaml
  - deployment.yaml
";

const ECHO_NAMESPACE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: echo
";

const ECHO_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  labels:
    app: echo
spec:
  replicas: 1
  selector:
    matchLabels:
      app: echo
  template:
    metadata:
      labels:
        app: echo
    spec:
      containers:
        - name: echo
          image: ghcr.io/example/echo:1.0.0
          resources:
            limits: {cpu: 100m, memory: 64Mi}
";

fn overlay_kustomization(tag: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base/podinfo
  - ../base/echo
patches:
  - path: podinfo-values.yaml
    target:
      kind: HelmRelease
images:
  - name: ghcr.io/example/echo
    newTag: \"{tag}\"
"
    )
}

fn overlay_values(version: &str, host: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
spec:
  chart:
    spec:
      version: \"{version}\"
  values:
    ingress:
      hosts:
        - host: {host}
"
    )
}

const INGRESS_NGINX: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: ingress-nginx
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: ingress-nginx
  namespace: ingress-nginx
spec:
  interval: 24h
  url: https://charts.example.org/ingress-nginx
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: ingress-nginx
  namespace: ingress-nginx
spec:
  interval: 30m
  chart:
    spec:
      chart: ingress-nginx
      version: \"*\"
      sourceRef:
        kind: HelmRepository
        name: ingress-nginx
";

const NETWORK_POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-from-other-namespaces
  namespace: podinfo
spec:
  podSelector: {}
  ingress:
    - from:
        - podSelector: {}
";

fn cluster_apps(env: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m0s
  dependsOn:
    - name: infra-configs
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./apps/{env}
  prune: true
  wait: true
"
    )
}

const CLUSTER_INFRASTRUCTURE: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra-controllers
  namespace: flux-system
spec:
  interval: 1h
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./infrastructure/controllers
  prune: true
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra-configs
  namespace: flux-system
spec:
  dependsOn:
    - name: infra-controllers
  interval: 1h
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: ./infrastructure/configs
  prune: true
";

fn gotk_sync(env: &str) -> String {
    format!(
        "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  url: ssh://git@git.example.org/fleet
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./clusters/{env}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"
    )
}

const FLUX_GATE: &str = "repository:
  sources:
    - {path: clusters/production}
    - {path: infrastructure/controllers}
    - {path: infrastructure/configs}
    - {path: apps/production}
";

fn flux_files() -> Vec<(String, String)> {
    let resources = |r: &str| {
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {r}\n"
        )
    };
    let files = vec![
        ("gitgate.yaml", FLUX_GATE.to_string()),
        (
            "apps/base/podinfo/kustomization.yaml",
            PODINFO_KUSTOMIZATION.into(),
        ),
        ("apps/base/podinfo/namespace.yaml", PODINFO_NAMESPACE.into()),
        (
            "apps/base/podinfo/repository.yaml",
            PODINFO_REPOSITORY.into(),
        ),
        ("apps/base/podinfo/release.yaml", PODINFO_RELEASE.into()),
        (
            "apps/base/echo/kustomization.yaml",
            ECHO_KUSTOMIZATION.into(),
        ),
        ("apps/base/echo/namespace.yaml", ECHO_NAMESPACE.into()),
        ("apps/base/echo/deployment.yaml", ECHO_DEPLOYMENT.into()),
        (
            "apps/production/kustomization.yaml",
            overlay_kustomization("1.1.0"),
        ),
        (
            "apps/production/podinfo-values.yaml",
            overlay_values(">=6.0.0", "podinfo.production.example.org"),
        ),
        (
            "apps/staging/kustomization.yaml",
            overlay_kustomization("1.2.0-rc.1"),
        ),
        (
            "apps/staging/podinfo-values.yaml",
            overlay_values(">=6.0.0-0", "podinfo.staging.example.org"),
        ),
        (
            "infrastructure/controllers/kustomization.yaml",
            resources("ingress-nginx.yaml"),
        ),
        (
            "infrastructure/controllers/ingress-nginx.yaml",
            INGRESS_NGINX.into(),
        ),
        (
            "infrastructure/configs/kustomization.yaml",
            resources("network-policy.yaml"),
        ),
        (
            "infrastructure/configs/network-policy.yaml",
            NETWORK_POLICY.into(),
        ),
    ];
    let mut owned: Vec<(String, String)> =
        files.into_iter().map(|(p, t)| (p.to_string(), t)).collect();
    for env in ["production", "staging"] {
        owned.push((format!("clusters/{env}/apps.yaml"), cluster_apps(env)));
        owned.push((
            format!("clusters/{env}/infrastructure.yaml"),
            CLUSTER_INFRASTRUCTURE.into(),
        ));
        owned.push((
            format!("clusters/{env}/flux-system/kustomization.yaml"),
            resources("gotk-sync.yaml"),
        ));
        owned.push((
            format!("clusters/{env}/flux-system/gotk-sync.yaml"),
            gotk_sync(env),
        ));
    }
    owned
}

// ---------------------------------------------------------------------------------------
// An Argo CD layout: a plain folder, a kustomize app (namePrefix, configMapGenerator, images,
// a patch), a Helm chart with values-production.yaml.

const GUESTBOOK_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: 1
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app: guestbook-ui
  template:
    metadata:
      labels:
        app: guestbook-ui
    spec:
      containers:
        - image: registry.example.org/guestbook-ui:0.1
          name: guestbook-ui
          ports:
            - containerPort: 80
";

const GUESTBOOK_SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: guestbook-ui
spec:
  ports:
    - port: 80
      targetPort: 80
  selector:
    app: guestbook-ui
";

fn kustomize_guestbook(tag: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namePrefix: kustomize-
resources:
  - guestbook-ui-deployment.yaml
  - guestbook-ui-svc.yaml
patches:
  - path: replicas.yaml
configMapGenerator:
  - name: guestbook-config
    literals:
      - GREETING=hello
images:
  - name: registry.example.org/guestbook-ui
    newTag: \"{tag}\"
"
    )
}

const REPLICAS_PATCH: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: 3
";

const CHART: &str = "apiVersion: v2
name: helm-guestbook
description: A guestbook as a Helm chart
type: application
version: 0.1.0
appVersion: \"1.0\"
";

const CHART_VALUES: &str = "replicaCount: 1
image:
  repository: registry.example.org/guestbook-ui
  tag: \"0.1\"
service:
  type: ClusterIP
  port: 80
";

const CHART_VALUES_PRODUCTION: &str = "replicaCount: 3
service:
  type: LoadBalancer
";

const CHART_HELPERS: &str = "{{- define \"helm-guestbook.fullname\" -}}
{{- printf \"%s-%s\" .Release.Name .Chart.Name | trunc 63 | trimSuffix \"-\" -}}
{{- end -}}
";

const CHART_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include \"helm-guestbook.fullname\" . }}
  labels:
    app: {{ .Chart.Name }}
    release: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Chart.Name }}
      release: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Chart.Name }}
        release: {{ .Release.Name }}
    spec:
      containers:
        - name: {{ .Chart.Name }}
          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"
          ports:
            - containerPort: 80
";

const CHART_SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: {{ include \"helm-guestbook.fullname\" . }}
spec:
  type: {{ .Values.service.type }}
  ports:
    - port: {{ .Values.service.port }}
      targetPort: 80
  selector:
    app: {{ .Chart.Name }}
    release: {{ .Release.Name }}
";

fn argo_gate(helm: &Path) -> String {
    format!(
        "repository:
  sources:
    - {{path: guestbook, render: plain, namespace: guestbook}}
    - {{path: kustomize-guestbook, namespace: kustomize-guestbook}}
    - path: helm-guestbook
      render: helm
      namespace: helm-guestbook
      helm: {{releaseName: helm-guestbook, valueFiles: [values-production.yaml]}}
render:
  helmBinary: {}
",
        helm.display()
    )
}

fn argo_files(helm: &Path) -> Vec<(String, String)> {
    [
        ("gitgate.yaml", argo_gate(helm)),
        (
            "guestbook/guestbook-ui-deployment.yaml",
            GUESTBOOK_DEPLOYMENT.into(),
        ),
        ("guestbook/guestbook-ui-svc.yaml", GUESTBOOK_SERVICE.into()),
        (
            "kustomize-guestbook/kustomization.yaml",
            kustomize_guestbook("0.2"),
        ),
        (
            "kustomize-guestbook/guestbook-ui-deployment.yaml",
            GUESTBOOK_DEPLOYMENT.into(),
        ),
        (
            "kustomize-guestbook/guestbook-ui-svc.yaml",
            GUESTBOOK_SERVICE.into(),
        ),
        ("kustomize-guestbook/replicas.yaml", REPLICAS_PATCH.into()),
        ("helm-guestbook/Chart.yaml", CHART.into()),
        ("helm-guestbook/values.yaml", CHART_VALUES.into()),
        (
            "helm-guestbook/values-production.yaml",
            CHART_VALUES_PRODUCTION.into(),
        ),
        (
            "helm-guestbook/templates/_helpers.tpl",
            CHART_HELPERS.into(),
        ),
        (
            "helm-guestbook/templates/deployment.yaml",
            CHART_DEPLOYMENT.into(),
        ),
        (
            "helm-guestbook/templates/service.yaml",
            CHART_SERVICE.into(),
        ),
        (
            "helm-guestbook/templates/NOTES.txt",
            "Thank you for installing {{ .Chart.Name }}.\n".into(),
        ),
    ]
    .into_iter()
    .map(|(p, t)| (p.to_string(), t))
    .collect()
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn repo_of(files: &[(String, String)]) -> tempfile::TempDir {
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_bytes()))
        .collect();
    repo_with(&refs)
}

fn config_of(dir: &Path) -> Config {
    let text = std::fs::read_to_string(dir.join("gitgate.yaml")).unwrap_or_default();
    Config::parse("gitgate.yaml", &text).unwrap()
}

/// The index of the repository's `main` as the configuration renders it.
fn index_of(dir: &Path, config: &Config) -> Index {
    let repo = Repo::open(dir).unwrap();
    let tip = repo.resolve_ref("refs/heads/main").unwrap().unwrap();
    let w = window(
        &repo,
        tip,
        Window {
            commits: 10,
            max_age: Duration::from_secs(3650 * 86_400),
        },
        None,
    )
    .unwrap();
    Index::build_with(
        &repo,
        &w,
        Renderer::from_config(config),
        &config.repository.default_namespace,
    )
    .unwrap()
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// The verdict on a CREATE of `object` by the controller.
fn admit(index: &Index, config: &Config, object: &Value) -> Verdict {
    let api = object["apiVersion"].as_str().unwrap();
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d8f6b1c-1b1a-4d8e-9d3e-1c2b3a4d5e6f",
            "kind": {"group": group, "version": version, "kind": object["kind"]},
            "resource": {"group": group, "version": version, "resource": "things"},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"].get("namespace").cloned().unwrap_or(Value::Null),
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller"},
            "object": object,
            "oldObject": null
        }
    });
    let (_, review) = parse_admission_review("test", review.to_string().as_bytes()).unwrap();
    judge(&review, index, config)
}

/// `gitgate check -o json` in `dir`: (exit code, report).
fn check(dir: &Path) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(["check", "-o", "json"])
        .current_dir(dir)
        .output()
        .expect("gitgate runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn branch(dir: &Path, name: &str) {
    git(dir, "a@example.com", 0, &["checkout", "-q", "-b", name]);
}

// ---------------------------------------------------------------------------------------
// Flux.

/// The podinfo HelmRelease as Flux applies it from apps/production: the base patched by
/// podinfo-values.yaml, with Flux's tracking labels.
fn production_release() -> Value {
    yaml(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
  labels:
    kustomize.toolkit.fluxcd.io/name: apps
    kustomize.toolkit.fluxcd.io/namespace: flux-system
spec:
  releaseName: podinfo
  interval: 50m
  chart:
    spec:
      chart: podinfo
      version: \">=6.0.0\"
      sourceRef:
        kind: HelmRepository
        name: podinfo
  values:
    replicaCount: 1
    ingress:
      enabled: true
      className: nginx
      hosts:
        - host: podinfo.production.example.org
",
    )
}

fn echo_deployment(tag: &str) -> Value {
    let mut d = yaml(ECHO_DEPLOYMENT);
    d["metadata"]["namespace"] = json!("echo");
    d["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!(format!("ghcr.io/example/echo:{tag}"));
    d
}

#[test]
fn flux_objects_are_traceable_to_the_file_they_came_from() {
    if !engines::kustomize() {
        return;
    }
    let dir = repo_of(&flux_files());
    let config = config_of(dir.path());
    let index = index_of(dir.path(), &config);
    assert!(
        index.render_errors().is_empty(),
        "{:?}",
        index.render_errors()
    );
    let traceable = |object: &Value, path: &str, line: usize, source: &str| {
        let v = admit(&index, &config, object);
        assert_eq!(v.status, Status::Traceable, "{}", v.reason);
        assert_eq!(
            (v.path.as_deref(), v.line, v.source.as_deref()),
            (Some(path), Some(line), Some(source)),
            "{}",
            v.reason
        );
    };
    traceable(
        &production_release(),
        "apps/base/podinfo/release.yaml",
        1,
        "apps/production",
    );
    traceable(
        &yaml(PODINFO_NAMESPACE),
        "apps/base/podinfo/namespace.yaml",
        1,
        "apps/production",
    );
    traceable(
        &echo_deployment("1.1.0"),
        "apps/base/echo/deployment.yaml",
        1,
        "apps/production",
    );
    let mut ingress = yaml(INGRESS_NGINX.split("---\n").nth(2).unwrap());
    ingress["metadata"]["labels"] =
        json!({"kustomize.toolkit.fluxcd.io/name": "infra-controllers"});
    traceable(
        &ingress,
        "infrastructure/controllers/ingress-nginx.yaml",
        15,
        "infrastructure/controllers",
    );
    // A plain file of clusters/production, its second document.
    traceable(
        &yaml(CLUSTER_INFRASTRUCTURE.split("---\n").nth(1).unwrap()),
        "clusters/production/infrastructure.yaml",
        14,
        "clusters/production",
    );
    traceable(
        &yaml(gotk_sync("production").split("---\n").next().unwrap()),
        "clusters/production/flux-system/gotk-sync.yaml",
        1,
        "clusters/production/flux-system",
    );

    // The patch file's partial HelmRelease is no object: with anything added to it (another
    // value, privileged), it matches nothing Git approved.
    let mut partial = yaml(&overlay_values(">=6.0.0", "podinfo.production.example.org"));
    partial["metadata"]["namespace"] = json!("podinfo");
    partial["spec"]["values"]["securityContext"] = json!({"privileged": true});
    let v = admit(&index, &config, &partial);
    assert_ne!(v.status, Status::Traceable, "{}", v.reason);
    let id = gitgate::input::Identity::of_object(&partial).unwrap();
    assert!(
        index
            .lookup(&id)
            .iter()
            .all(|version| !version.path.ends_with("podinfo-values.yaml")),
        "a patch is never indexed as an object"
    );

    // Applied from the base while the overlay changes it: modified.
    let mut from_base = yaml(PODINFO_RELEASE);
    from_base["metadata"]["labels"] = production_release()["metadata"]["labels"].clone();
    let v = admit(&index, &config, &from_base);
    assert_eq!(v.status, Status::Modified, "{}", v.reason);
    assert!(
        v.differing.iter().any(|p| p.contains("version")),
        "{:?}",
        v.differing
    );
    let v = admit(&index, &config, &echo_deployment("1.0.0"));
    assert_eq!(v.status, Status::Modified, "{}", v.reason);
    assert!(
        v.differing.iter().any(|p| p.contains("image")),
        "{:?}",
        v.differing
    );
    // Staging's object is not what the production cluster applies.
    let v = admit(&index, &config, &echo_deployment("1.2.0-rc.1"));
    assert_eq!(v.status, Status::Modified, "{}", v.reason);
}

#[test]
fn a_whole_flux_repository_renders_each_overlay_and_its_base_as_flux_generates() {
    if !engines::kustomize() {
        return;
    }
    let files: Vec<(String, String)> = flux_files()
        .into_iter()
        .filter(|(p, _)| p != "gitgate.yaml")
        .collect();
    let dir = repo_of(&files);
    let config = Config::default();
    let index = index_of(dir.path(), &config);
    assert!(
        index.render_errors().is_empty(),
        "{:?}",
        index.render_errors()
    );
    let id = gitgate::input::Identity::of_object(&production_release()).unwrap();
    let mut sources: Vec<String> = index
        .lookup(&id)
        .iter()
        .map(|v| {
            format!(
                "{} {}",
                v.source,
                v.manifest()["spec"]["chart"]["spec"]["version"]
            )
        })
        .collect();
    sources.sort();
    // Flux's generated kustomization of the repository's root lists the base folder too:
    // it is applied on its own as well as through each overlay.
    assert_eq!(
        sources,
        vec![
            "apps/base/podinfo \"6.5.x\"".to_string(),
            "apps/production \">=6.0.0\"".to_string(),
            "apps/staging \">=6.0.0-0\"".to_string()
        ],
        "both overlays and the base"
    );
    assert_eq!(
        admit(&index, &config, &production_release()).status,
        Status::Traceable
    );
}

#[test]
fn check_reports_an_image_bump_in_a_flux_overlay_as_one_update() {
    if !engines::kustomize() {
        return;
    }
    let dir = repo_of(&flux_files());
    branch(dir.path(), "bump");
    commit_files(
        dir.path(),
        &[(
            "apps/production/kustomization.yaml",
            overlay_kustomization("1.1.1").as_bytes(),
        )],
        "echo 1.1.1 in production",
    );
    let (_, report) = check(dir.path());
    assert_eq!(
        report["checked"],
        json!([{
            "path": "apps/base/echo/deployment.yaml",
            "line": 1,
            "operation": "UPDATE",
            "object": "Deployment.apps echo/echo"
        }]),
        "{report:#}"
    );
    let items = report["items"].as_array().unwrap();
    assert!(
        items.iter().all(|i| !i["message"]
            .as_str()
            .unwrap_or("")
            .contains("not a Kubernetes object")),
        "no notes about kustomization.yaml or patches: {report:#}"
    );
    assert!(
        items.iter().all(|i| i["unchecked"] != json!(true)),
        "{report:#}"
    );
    // A finding about what the overlay sets points at the overlay, not at the base's line.
    commit_files(
        dir.path(),
        &[(
            "apps/production/kustomization.yaml",
            overlay_kustomization("latest").as_bytes(),
        )],
        "echo latest in production",
    );
    let (code, report) = check(dir.path());
    assert_eq!(code, 1, "{report:#}");
    let latest = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["policy"] == "latest-tag")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(
        latest["path"], "apps/production/kustomization.yaml",
        "{report:#}"
    );
}

// ---------------------------------------------------------------------------------------
// Argo CD.

#[test]
fn argo_cd_objects_are_traceable_to_the_file_they_came_from() {
    if !engines::kustomize() {
        return;
    }
    let Some(helm) = engines::helm() else { return };
    let dir = repo_of(&argo_files(&helm));
    let config = config_of(dir.path());
    let index = index_of(dir.path(), &config);
    assert!(
        index.render_errors().is_empty(),
        "{:?}",
        index.render_errors()
    );
    let traceable = |object: &Value, path: &str, source: &str| -> Verdict {
        let v = admit(&index, &config, object);
        assert_eq!(v.status, Status::Traceable, "{}", v.reason);
        assert_eq!(
            (v.path.as_deref(), v.source.as_deref()),
            (Some(path), Some(source)),
            "{}",
            v.reason
        );
        v
    };
    // Plain: as written, in the source's namespace.
    let mut plain = yaml(GUESTBOOK_DEPLOYMENT);
    plain["metadata"]["namespace"] = json!("guestbook");
    traceable(
        &plain,
        "guestbook/guestbook-ui-deployment.yaml",
        "guestbook",
    );

    // namePrefix, the images override and the patch: applied as
    // kustomize-guestbook/kustomize-guestbook-ui.
    let mut kustomized = yaml(GUESTBOOK_DEPLOYMENT);
    kustomized["metadata"]["name"] = json!("kustomize-guestbook-ui");
    kustomized["metadata"]["namespace"] = json!("kustomize-guestbook");
    kustomized["metadata"]["annotations"] = json!({"argocd.argoproj.io/tracking-id": "kustomize-guestbook:apps/Deployment:kustomize-guestbook/kustomize-guestbook-ui"});
    kustomized["spec"]["replicas"] = json!(3);
    kustomized["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example.org/guestbook-ui:0.2");
    let v = traceable(
        &kustomized,
        "kustomize-guestbook/guestbook-ui-deployment.yaml",
        "kustomize-guestbook",
    );
    assert_eq!(v.line, Some(1));

    // The generated ConfigMap, with its hash suffix, from the kustomization's generator.
    let repo = Repo::open(dir.path()).unwrap();
    let tip = repo.resolve_ref("refs/heads/main").unwrap().unwrap();
    let renderer = Renderer::from_config(&config);
    let layout = renderer.layout(&repo, tip).unwrap();
    let units: Vec<_> = layout.units.iter().collect();
    let rendered = renderer.render(&repo, &units);
    let generated = rendered
        .iter()
        .filter_map(|r| r.as_ref().as_ref().ok())
        .flatten()
        .find(|o| o.object["kind"] == "ConfigMap")
        .expect("a generated ConfigMap")
        .object
        .clone();
    let name = generated["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("kustomize-guestbook-config-") && name.len() > 27,
        "{name}"
    );
    assert!(
        generated["metadata"].get("annotations").is_none(),
        "origin annotations removed: {generated}"
    );
    let mut cm = generated.clone();
    cm["metadata"]["namespace"] = json!("kustomize-guestbook");
    let v = traceable(
        &cm,
        "kustomize-guestbook/kustomization.yaml",
        "kustomize-guestbook",
    );
    assert_eq!(v.line, Some(9), "the configMapGenerator line");

    // The chart with values-production.yaml, in the release namespace.
    let chart_deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "helm-guestbook-helm-guestbook", "namespace": "helm-guestbook",
                     "labels": {"app": "helm-guestbook", "release": "helm-guestbook"}},
        "spec": {"replicas": 3,
                 "selector": {"matchLabels": {"app": "helm-guestbook", "release": "helm-guestbook"}},
                 "template": {"metadata": {"labels": {"app": "helm-guestbook", "release": "helm-guestbook"}},
                              "spec": {"containers": [{"name": "helm-guestbook",
                                        "image": "registry.example.org/guestbook-ui:0.1",
                                        "ports": [{"containerPort": 80}]}]}}}
    });
    traceable(
        &chart_deployment,
        "helm-guestbook/templates/deployment.yaml",
        "helm-guestbook",
    );
    // The chart's defaults (values.yaml alone) are not what Argo CD applies.
    let mut defaults = chart_deployment.clone();
    defaults["spec"]["replicas"] = json!(1);
    assert_eq!(admit(&index, &config, &defaults).status, Status::Modified);

    // The patch's partial Deployment matches nothing.
    let mut partial = yaml(REPLICAS_PATCH);
    partial["metadata"]["name"] = json!("kustomize-guestbook-ui");
    partial["metadata"]["namespace"] = json!("kustomize-guestbook");
    assert_ne!(admit(&index, &config, &partial).status, Status::Traceable);
    // Applied from the folder's own file, without the overlay's image and replicas: modified.
    let mut unrendered = yaml(GUESTBOOK_DEPLOYMENT);
    unrendered["metadata"]["name"] = json!("kustomize-guestbook-ui");
    unrendered["metadata"]["namespace"] = json!("kustomize-guestbook");
    let v = admit(&index, &config, &unrendered);
    assert_eq!(v.status, Status::Modified, "{}", v.reason);
}

#[test]
fn check_reports_an_image_bump_in_an_argo_cd_kustomization_as_one_update() {
    if !engines::kustomize() {
        return;
    }
    let Some(helm) = engines::helm() else { return };
    let dir = repo_of(&argo_files(&helm));
    branch(dir.path(), "bump");
    commit_files(
        dir.path(),
        &[(
            "kustomize-guestbook/kustomization.yaml",
            kustomize_guestbook("0.3").as_bytes(),
        )],
        "guestbook 0.3",
    );
    let (_, report) = check(dir.path());
    assert_eq!(
        report["checked"],
        json!([{
            "path": "kustomize-guestbook/guestbook-ui-deployment.yaml",
            "line": 1,
            "operation": "UPDATE",
            "object": "Deployment.apps kustomize-guestbook/kustomize-guestbook-ui"
        }]),
        "{report:#}"
    );
    // And a values change of the chart: the rendered Deployment and Service, nothing else.
    commit_files(
        dir.path(),
        &[(
            "helm-guestbook/values-production.yaml",
            b"replicaCount: 5\nservice:\n  type: LoadBalancer\n".as_slice(),
        )],
        "five replicas",
    );
    let (_, report) = check(dir.path());
    let checked: Vec<String> = report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {}", c["operation"], c["object"], c["path"]).replace('"', ""))
        .collect();
    assert_eq!(
        checked,
        vec![
            "UPDATE Deployment.apps kustomize-guestbook/kustomize-guestbook-ui kustomize-guestbook/guestbook-ui-deployment.yaml",
            "UPDATE Deployment.apps helm-guestbook/helm-guestbook-helm-guestbook helm-guestbook/templates/deployment.yaml",
        ],
        "{report:#}"
    );
}

// ---------------------------------------------------------------------------------------
// Bad input: each refused with an error naming its source, never a hang; the other sources
// still count.

const CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: apps
data:
  level: info
";

const EXEC_GENERATOR: &str = "apiVersion: example.com/v1
kind: SecretsFromVault
metadata:
  name: secrets
  annotations:
    config.kubernetes.io/function: |
      exec:
        path: ./fetch-secrets.sh
";

fn kustomization(body: &str) -> String {
    format!("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n{body}")
}

#[test]
fn bad_kustomizations_and_charts_are_refused_naming_their_source() {
    if !engines::kustomize() {
        return;
    }
    let files: Vec<(String, String)> = [
        (
            "gitgate.yaml",
            "repository:\n  sources:\n    - {path: good}\n    - {path: outside}\n    - {path: patch-outside}\n    - {path: remote}\n    - {path: exec}\n    - {path: cycle/a}\n    - {path: chart}\n    - {path: missing}\n"
                .to_string(),
        ),
        ("good/settings.yaml", CONFIG_MAP.to_string()),
        ("outside/kustomization.yaml", kustomization("resources:\n  - ../../../../../etc\n")),
        (
            "patch-outside/kustomization.yaml",
            kustomization("resources: [cm.yaml]\npatches:\n  - path: ../../../../etc/hostname\n"),
        ),
        ("patch-outside/cm.yaml", CONFIG_MAP.to_string()),
        (
            "remote/kustomization.yaml",
            kustomization("resources:\n  - github.com/example/podinfo//kustomize?ref=6.5.0\n"),
        ),
        (
            "exec/kustomization.yaml",
            kustomization("resources: [cm.yaml]\ngenerators: [vault.yaml]\n"),
        ),
        ("exec/cm.yaml", CONFIG_MAP.to_string()),
        ("exec/vault.yaml", EXEC_GENERATOR.to_string()),
        ("cycle/a/kustomization.yaml", kustomization("resources: [../b]\n")),
        ("cycle/b/kustomization.yaml", kustomization("resources: [../a]\n")),
        (
            "chart/Chart.yaml",
            "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n  - name: redis\n    version: 19.x\n    repository: https://charts.example.org/bitnami\n"
                .to_string(),
        ),
        ("chart/values.yaml", "{}\n".to_string()),
        ("missing/kustomization.yaml", kustomization("resources: [../nowhere]\n")),
    ]
    .into_iter()
    .map(|(p, t)| (p.to_string(), t))
    .collect();
    let dir = repo_of(&files);
    let config = config_of(dir.path());
    let started = std::time::Instant::now();
    let index = index_of(dir.path(), &config);
    let errors: Vec<String> = index
        .render_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let expect = |source: &str, words: &[&str]| {
        let e = errors
            .iter()
            .find(|e| e.starts_with(&format!("{source}: ")))
            .unwrap_or_else(|| panic!("no error for {source}: {errors:#?}"));
        for w in words {
            assert!(e.contains(w), "{source}: {w:?} not in {e}");
        }
    };
    expect("outside", &["outside the repository", "../../../../../etc"]);
    expect("patch-outside", &["outside the repository", "patches"]);
    expect(
        "remote",
        &[
            "remote",
            "github.com/example/podinfo//kustomize?ref=6.5.0",
            "never fetched",
        ],
    );
    expect("exec", &["KRM function", "SecretsFromVault", "never run"]);
    expect("cycle/a", &["kustomize"]);
    expect(
        "chart",
        &[
            "redis",
            "https://charts.example.org/bitnami",
            "not vendored",
        ],
    );
    expect("missing", &["../nowhere", "not in the commit"]);
    assert_eq!(errors.len(), 7, "{errors:#?}");
    // The good source still counts.
    let v = admit(&index, &config, &yaml(CONFIG_MAP));
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);
    assert!(started.elapsed() < Duration::from_secs(60));

    // In CI: a pull request that breaks a source cannot be checked (exit 2), and says which.
    branch(dir.path(), "break");
    commit_files(
        dir.path(),
        &[(
            "exec/cm.yaml",
            CONFIG_MAP.replace("info", "debug").as_bytes(),
        )],
        "debug",
    );
    let (code, report) = check(dir.path());
    assert_eq!(code, 2, "{report:#}");
    let item = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["unchecked"] == json!(true))
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(item["path"], "exec/kustomization.yaml", "{report:#}");
    assert!(
        item["message"].as_str().unwrap().contains("exec: "),
        "{report:#}"
    );
}

/// A script standing in for an engine, in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

const SMALL_CHART: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\n";

/// The one render error of a repository holding `chart/` rendered with `render`.
fn chart_error(templates: &[(&str, &str)], render: &str) -> (String, Duration) {
    let mut files = vec![
        (
            "gitgate.yaml".to_string(),
            format!(
                "repository:\n  sources: [{{path: good}}, {{path: chart, render: helm}}]\nrender: {render}\n"
            ),
        ),
        ("good/settings.yaml".to_string(), CONFIG_MAP.to_string()),
        ("chart/Chart.yaml".to_string(), SMALL_CHART.to_string()),
    ];
    for (p, t) in templates {
        files.push((format!("chart/templates/{p}"), t.to_string()));
    }
    let dir = repo_of(&files);
    let config = config_of(dir.path());
    let started = std::time::Instant::now();
    let index = index_of(dir.path(), &config);
    let elapsed = started.elapsed();
    assert_eq!(
        admit(&index, &config, &yaml(CONFIG_MAP)).status,
        Status::Traceable,
        "the other source still counts"
    );
    let errors: Vec<String> = index
        .render_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    (errors[0].clone(), elapsed)
}

#[test]
fn a_render_that_loops_or_writes_too_much_is_stopped() {
    let bin = tempfile::tempdir().unwrap();
    let looping = script(
        bin.path(),
        "helm-loops",
        "sleep 60 & while :; do sleep 0.05; done",
    );
    let (e, elapsed) = chart_error(
        &[],
        &format!("{{helmBinary: {}, timeout: 1s}}", looping.display()),
    );
    assert!(
        e.starts_with("chart: helm template did not finish within 1s"),
        "{e}"
    );
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    let chatty = script(bin.path(), "helm-floods", "yes 'a: b'");
    let (e, elapsed) = chart_error(
        &[],
        &format!(
            "{{helmBinary: {}, maxOutputBytes: 1048576}}",
            chatty.display()
        ),
    );
    assert!(
        e.starts_with("chart: helm template wrote more than 1048576 bytes"),
        "{e}"
    );
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}

#[test]
fn a_template_that_floods_or_writes_invalid_yaml_is_refused_with_helm_engine() {
    let Some(helm) = engines::helm() else { return };
    let flood = "{{- range $i := until 100000 }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{{ $i }}\n{{- end }}\n";
    let (e, _) = chart_error(
        &[("flood.yaml", flood)],
        &format!(
            "{{helmBinary: {}, maxOutputBytes: 1048576}}",
            helm.display()
        ),
    );
    assert!(e.starts_with("chart: helm template wrote more than"), "{e}");
    let invalid = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  list: [{{ .Release.Name }}\n";
    let (e, _) = chart_error(
        &[("broken.yaml", invalid)],
        &format!("{{helmBinary: {}}}", helm.display()),
    );
    assert!(e.starts_with("chart: "), "{e}");
    assert!(e.contains("broken.yaml") && e.contains("YAML"), "{e}");
}

// ---------------------------------------------------------------------------------------
// The cache and the origin annotations.

/// A kustomize that counts its runs in a file, then runs the real engine (`build DIR ...` as
/// kustomize takes it): the script, and the file. `None` (with a message) where no engine runs.
fn counting_kustomize(bin: &Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    if !engines::kustomize() {
        return None;
    }
    let engine = gitgate::render::sandbox::which("kustomize")
        .map(|k| (k, "build"))
        .or_else(|| gitgate::render::sandbox::which("kubectl").map(|k| (k, "kustomize")))?;
    let counter = bin.join("renders");
    let wrapper = script(
        bin,
        "counting-kustomize",
        &format!(
            "echo run >> {}\nshift\nexec {} {} \"$@\"",
            counter.display(),
            engine.0.display(),
            engine.1
        ),
    );
    Some((wrapper, counter))
}

fn runs(counter: &Path) -> usize {
    std::fs::read_to_string(counter)
        .unwrap_or_default()
        .lines()
        .count()
}

fn window_of(repo: &Repo) -> Vec<gitgate::provenance::approval::WindowCommit> {
    let tip = repo.resolve_ref("refs/heads/main").unwrap().unwrap();
    window(
        repo,
        tip,
        Window {
            commits: 10,
            max_age: Duration::from_secs(3650 * 86_400),
        },
        None,
    )
    .unwrap()
}

#[test]
fn a_commit_that_does_not_touch_a_source_does_not_render_it_again() {
    let bin = tempfile::tempdir().unwrap();
    let Some((wrapper, counter)) = counting_kustomize(bin.path()) else {
        return;
    };
    let gate = format!(
        "repository:\n  sources: [{{path: apps/prod}}, {{path: other}}]\nrender: {{kustomizeBinary: {}}}\n",
        wrapper.display()
    );
    let dir = repo_of(&[
        ("gitgate.yaml".into(), gate),
        (
            "apps/base/kustomization.yaml".into(),
            kustomization("resources: [deployment.yaml]\n"),
        ),
        ("apps/base/deployment.yaml".into(), ECHO_DEPLOYMENT.into()),
        (
            "apps/prod/kustomization.yaml".into(),
            kustomization("namespace: prod\nresources: [../base]\n"),
        ),
        ("other/settings.yaml".into(), CONFIG_MAP.into()),
    ]);
    commit_files(
        dir.path(),
        &[(
            "other/settings.yaml",
            CONFIG_MAP.replace("info", "debug").as_bytes(),
        )],
        "another source",
    );
    let config = config_of(dir.path());
    let index = index_of(dir.path(), &config);
    assert_eq!(
        runs(&counter),
        1,
        "two commits, one render: the second did not touch apps/"
    );
    // A change to the base the overlay refers to renders it again.
    commit_files(
        dir.path(),
        &[(
            "apps/base/deployment.yaml",
            ECHO_DEPLOYMENT
                .replace("replicas: 1", "replicas: 2")
                .as_bytes(),
        )],
        "the base",
    );
    let repo = Repo::open(dir.path()).unwrap();
    let index = index.advance(&repo, &window_of(&repo)).unwrap();
    assert_eq!(runs(&counter), 2);
    let mut two = echo_deployment("1.0.0");
    two["metadata"]["namespace"] = json!("prod");
    two["spec"]["replicas"] = json!(2);
    let v = admit(&index, &config, &two);
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);
    assert_eq!(v.source.as_deref(), Some("apps/prod"));
}

/// A render's key holds what the artifact leaves out of the folders it reads, and only that:
/// a `.sourceignore` that leaves out nothing there renders nothing again, one that leaves out
/// a file the kustomization names renders it again, and the build fails as Flux's does.
#[test]
fn what_the_artifact_leaves_out_of_a_folder_is_in_its_key_and_nothing_else() {
    let bin = tempfile::tempdir().unwrap();
    let Some((wrapper, counter)) = counting_kustomize(bin.path()) else {
        return;
    };
    let gate = format!(
        "repository:\n  sources: [{{path: apps/prod}}, {{path: other}}]\nrender: {{kustomizeBinary: {}}}\n",
        wrapper.display()
    );
    let dir = repo_of(&[
        ("gitgate.yaml".into(), gate),
        (
            "apps/base/kustomization.yaml".into(),
            kustomization("resources: [deployment.yaml]\n"),
        ),
        ("apps/base/deployment.yaml".into(), ECHO_DEPLOYMENT.into()),
        (
            "apps/prod/kustomization.yaml".into(),
            kustomization("namespace: prod\nresources: [../base]\n"),
        ),
        ("other/settings.yaml".into(), CONFIG_MAP.into()),
    ]);
    commit_files(
        dir.path(),
        &[(".sourceignore", b"other/\n")],
        "leave out another folder",
    );
    let config = config_of(dir.path());
    let index = index_of(dir.path(), &config);
    assert!(
        index.render_errors().is_empty(),
        "{:?}",
        index.render_errors()
    );
    assert_eq!(
        runs(&counter),
        1,
        "nothing of apps/ is left out: one render"
    );
    commit_files(
        dir.path(),
        &[(".sourceignore", b"other/\napps/base/deployment.yaml\n")],
        "leave out the base's deployment",
    );
    let repo = Repo::open(dir.path()).unwrap();
    let index = index.advance(&repo, &window_of(&repo)).unwrap();
    assert_eq!(runs(&counter), 2, "the overlay is rendered again");
    let errors: Vec<String> = index
        .render_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.len() == 1
            && errors[0].starts_with("apps/prod: ")
            && errors[0].contains("apps/base/deployment.yaml"),
        "{errors:?}"
    );
}

/// A Flux Kustomization of the followed entry, applying `./apps/NAME`.
fn flux_app(name: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: {name}, namespace: flux-system}}\nspec:\n  interval: 10m\n  sourceRef: {{kind: GitRepository, name: flux-system}}\n  path: ./apps/{name}\n  targetNamespace: {name}\n  prune: true\n"
    )
}

#[test]
fn a_followed_entry_renders_only_what_a_new_commit_changed() {
    let bin = tempfile::tempdir().unwrap();
    let Some((wrapper, counter)) = counting_kustomize(bin.path()) else {
        return;
    };
    let gate = format!(
        "repository:\n  sources: [{{path: clusters/prod, follow: flux}}]\nrender: {{kustomizeBinary: {}}}\n",
        wrapper.display()
    );
    let sync = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: flux-system, namespace: flux-system}\nspec:\n  interval: 1m\n  ref: {branch: main}\n  url: ssh://git@example.com/acme/fleet\n";
    let dir = repo_of(&[
        ("gitgate.yaml".into(), gate),
        (
            "clusters/prod/flux-system/gotk-sync.yaml".into(),
            sync.into(),
        ),
        ("clusters/prod/a.yaml".into(), flux_app("a")),
        ("clusters/prod/b.yaml".into(), flux_app("b")),
        (
            "apps/a/kustomization.yaml".into(),
            kustomization("resources: [deployment.yaml]\n"),
        ),
        ("apps/a/deployment.yaml".into(), ECHO_DEPLOYMENT.into()),
        (
            "apps/b/kustomization.yaml".into(),
            kustomization("resources: [settings.yaml]\n"),
        ),
        ("apps/b/settings.yaml".into(), CONFIG_MAP.into()),
    ]);
    for level in ["debug", "trace"] {
        commit_files(
            dir.path(),
            &[(
                "apps/b/settings.yaml",
                CONFIG_MAP.replace("info", level).as_bytes(),
            )],
            "b's level",
        );
    }
    let config = config_of(dir.path());
    let index = index_of(dir.path(), &config);
    assert!(
        index.render_errors().is_empty(),
        "{:?}",
        index.render_errors()
    );
    // a once, b once per distinct content: three commits of b.
    assert_eq!(runs(&counter), 4, "each distinct build once in the window");
    // The first commit after the window was built renders what it changed, and only that
    // (the walk of the entry finds the other build in the cache).
    commit_files(
        dir.path(),
        &[(
            "apps/a/deployment.yaml",
            ECHO_DEPLOYMENT
                .replace("replicas: 1", "replicas: 3")
                .as_bytes(),
        )],
        "a's replicas",
    );
    let repo = Repo::open(dir.path()).unwrap();
    let index = index.advance(&repo, &window_of(&repo)).unwrap();
    assert_eq!(runs(&counter), 5, "only apps/a was rendered again");
    let mut three = echo_deployment("1.0.0");
    three["metadata"]["namespace"] = json!("a");
    three["spec"]["replicas"] = json!(3);
    let v = admit(&index, &config, &three);
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);
}

#[test]
fn origin_annotations_a_kustomization_asks_for_stay() {
    if !engines::kustomize() {
        return;
    }
    let dir = repo_of(&[
        (
            "gitgate.yaml".into(),
            "repository:\n  sources: [{path: app}]\n".into(),
        ),
        (
            "app/kustomization.yaml".into(),
            kustomization("resources: [settings.yaml]\nbuildMetadata: [originAnnotations]\n"),
        ),
        ("app/settings.yaml".into(), CONFIG_MAP.into()),
    ]);
    let config = config_of(dir.path());
    let index = index_of(dir.path(), &config);
    let mut applied = yaml(CONFIG_MAP);
    applied["metadata"]["annotations"] =
        json!({"config.kubernetes.io/origin": "path: settings.yaml\n"});
    let v = admit(&index, &config, &applied);
    assert_eq!(v.status, Status::Traceable, "{}", v.reason);
    assert_eq!(v.path.as_deref(), Some("app/settings.yaml"));
    // Without them, the object is not what the controller applies.
    let v = admit(&index, &config, &yaml(CONFIG_MAP));
    assert_ne!(v.status, Status::Traceable, "{}", v.reason);
}
