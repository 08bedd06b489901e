//! `follow`, attacked as an outsider would: pull requests that Flux or Argo CD would apply
//! otherwise than gitgate renders them, and malformed controller objects. Each test is one
//! hole, named by what the controller really does.

mod support;

use gitgate::render::follow::{self, Build, Controllers, Found, ThisRepository};
use gitgate::render::overlay::{self, Overlay};
use serde_json::{Value, json};

fn found(objects: &[Value]) -> Vec<Found<'_>> {
    objects
        .iter()
        .map(|o| Found {
            object: o,
            path: "clusters/production/apps.yaml",
            line: 1,
            lines: None,
        })
        .collect()
}

fn this() -> ThisRepository {
    ThisRepository {
        url: Some("https://github.com/acme/fleet.git".into()),
        branch: "main".into(),
        learned: Vec::new(),
    }
}

fn git_repository(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
           "metadata": {"name": name, "namespace": "flux-system"}, "spec": spec})
}

fn kustomization(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
           "metadata": {"name": name, "namespace": "flux-system"}, "spec": spec})
}

fn application(source: Value) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
           "metadata": {"name": "web", "namespace": "argocd"},
           "spec": {"source": source, "destination": {"namespace": "web"}}})
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 200m, memory: 128Mi}
        securityContext: {runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false}
";

fn privileged() -> String {
    DEPLOYMENT
        .replace("name: web\nspec", "name: evil\nspec")
        .replace("allowPrivilegeEscalation: false", "privileged: true")
}

/// `check --base main --head pr` after `files` are committed on branch `pr`.
fn check_pr(base: &[(&str, &[u8])], pr: &[(&str, &[u8])], format: &str) -> (i32, String, String) {
    let repo = support::repo_with(base);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    support::commit_files(dir, pr, "the pull request");
    support::gitgate(
        dir,
        &["check", "--base", "main", "--head", "pr", "-o", format],
    )
}

// --- Flux sources -------------------------------------------------------------------------

/// A GitRepository without `ref` (or with an empty branch) is checked out by source-controller
/// at `master`: followed as the protected branch, `check` judged the pull request's files
/// while Flux applies whatever is pushed to `master`, which nobody reviews.
#[test]
fn a_git_repository_that_names_no_branch_follows_master_not_the_protected_branch() {
    for spec in [
        json!({"url": "https://github.com/acme/fleet"}),
        json!({"url": "https://github.com/acme/fleet", "ref": {}}),
        json!({"url": "https://github.com/acme/fleet", "ref": {"branch": ""}}),
    ] {
        let objects = vec![
            git_repository("fleet", spec.clone()),
            kustomization(
                "apps",
                json!({"sourceRef": {"kind": "GitRepository", "name": "fleet"}, "path": "./apps"}),
            ),
        ];
        let f = found(&objects);
        let (targets, said) = follow::targets(&f, &f, Controllers::Flux, &this());
        assert!(targets.is_empty(), "{spec}: followed {targets:?}");
        assert!(
            said.len() == 1 && said[0].message.contains("branch master"),
            "{spec}: {said:?}"
        );
    }
    // A repository whose protected branch is master follows it.
    let objects = vec![
        git_repository("fleet", json!({"url": "https://github.com/acme/fleet"})),
        kustomization(
            "apps",
            json!({"sourceRef": {"kind": "GitRepository", "name": "fleet"}, "path": "./apps"}),
        ),
    ];
    let f = found(&objects);
    let master = ThisRepository {
        branch: "master".into(),
        ..this()
    };
    let (targets, said) = follow::targets(&f, &f, Controllers::Flux, &master);
    assert_eq!(targets.len(), 1, "{said:?}");
}

/// fluxcd/pkg's generator (its current `GenerateManifest`) merges a Kustomization's image into
/// the folder's entry of the same name field by field, as a kustomize overlay does: a new name
/// keeps the folder's tag; a new tag or digest replaces both.
#[test]
fn a_flux_image_merges_into_the_folders_entry_of_that_name_as_fluxcd_pkg_does() {
    let objects = vec![kustomization(
        "apps",
        json!({"sourceRef": {"kind": "GitRepository", "name": "flux-system"}, "path": "./apps",
               "images": [{"name": "nginx", "newName": "mirror.example/nginx"},
                          {"name": "redis", "newTag": "7.4"}]}),
    )];
    let f = found(&objects);
    let (targets, said) = follow::targets(&f, &f, Controllers::Flux, &this());
    assert_eq!(targets.len(), 1, "{said:?}");
    let Build::Flux(o) = &targets[0].build else {
        panic!("{:?}", targets[0].build)
    };
    let k = o.kustomization(
        Some(json!({"resources": ["deploy.yaml"],
                    "images": [{"name": "nginx", "newTag": "1.27"}, {"name": "redis", "digest": "sha256:abc"}]})),
        &[],
    );
    assert_eq!(
        k["images"],
        json!([{"name": "nginx", "newTag": "1.27", "newName": "mirror.example/nginx"},
               {"name": "redis", "newTag": "7.4"}])
    );
}

#[test]
fn an_artifact_that_rearranges_folders_is_not_rendered_from_the_repositorys_folders() {
    let generator = |copies: Value| {
        json!({"apiVersion": "source.extensions.fluxcd.io/v1beta1", "kind": "ArtifactGenerator",
               "metadata": {"name": "gen", "namespace": "flux-system"},
               "spec": {"sources": [{"alias": "mono", "kind": "GitRepository", "name": "flux-system"}],
                        "artifacts": [{"name": "apps", "copy": copies}]}})
    };
    let ks = kustomization(
        "apps",
        json!({"sourceRef": {"kind": "ExternalArtifact", "name": "apps"}, "path": "./production"}),
    );
    for copies in [
        json!([{"from": "@mono/apps/production/**", "to": "@artifact/production/"},
               {"from": "@mono/shared/base/**", "to": "@artifact/base/"}]),
        json!([{"from": "@mono/apps/prod/**", "to": "@artifact/production/"}]),
        json!([{"from": "@mono/apps/base/**", "to": "@artifact/"},
               {"from": "@mono/evil/**", "to": "@artifact/"}]),
    ] {
        let objects = vec![generator(copies.clone()), ks.clone()];
        let f = found(&objects);
        let (targets, said) = follow::targets(&f, &f, Controllers::Flux, &this());
        assert_eq!(targets.len(), 1, "{copies}: {said:?}");
        assert!(
            matches!(&targets[0].build, Build::Unverifiable(m) if m.contains("ExternalArtifact")),
            "{copies}: {:?}",
            targets[0]
        );
    }
    // The repository's folders moved as one map back (the flux2 example's layout).
    let objects = vec![
        generator(json!([
            {"from": "@mono/apps/base/**", "to": "@artifact/base/"},
            {"from": "@mono/apps/production/**", "to": "@artifact/production/"}])),
        ks,
    ];
    let f = found(&objects);
    let (targets, _) = follow::targets(&f, &f, Controllers::Flux, &this());
    assert!(matches!(&targets[0].build, Build::Flux(_)), "{targets:?}");
    assert_eq!(targets[0].dir, "apps/production");
}

// --- Argo CD Applications -----------------------------------------------------------------

/// `spec.source.directory` is Argo CD's explicit type (`ExplicitType()`): the folder is read
/// as plain files even where it holds a kustomization. gitgate built the kustomization, which
/// names only the safe file; Argo CD applied every file of the folder.
#[test]
fn check_reads_an_explicit_directory_source_as_argo_cd_does_even_over_a_kustomization() {
    if !support::engines::kustomize() {
        return;
    }
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  source:\n    repoURL: https://github.com/acme/fleet\n    targetRevision: HEAD\n    path: web\n  destination: {namespace: web}\n";
    let explicit = app.replace(
        "    path: web\n",
        "    path: web\n    directory: {exclude: kustomization.yaml}\n",
    );
    let (code, out, err) = check_pr(
        &[
            (
                "gitgate.yaml",
                b"repository:\n  url: git@github.com:acme/fleet.git\n  sources: [{path: argocd, follow: argocd}]\n",
            ),
            ("argocd/web.yaml", app.as_bytes()),
            (
                "web/kustomization.yaml",
                b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n",
            ),
            ("web/deploy.yaml", DEPLOYMENT.as_bytes()),
        ],
        &[
            ("argocd/web.yaml", explicit.as_bytes()),
            ("web/evil.yaml", privileged().as_bytes()),
        ],
        "text",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("privileged") && out.contains("evil"), "{out}");
}

/// Argo CD matches `directory.exclude` and `include` against the path relative to the
/// Application's folder (`glob.Match(exclude, relPath)`), never the file's name alone:
/// `exclude: evil.yaml` leaves `sub/evil.yaml` applied. gitgate matched the name too and
/// left it out (a warning at most).
#[test]
fn check_excludes_only_what_argo_cd_excludes() {
    if !support::engines::kustomize() {
        return;
    }
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  source:\n    repoURL: https://github.com/acme/fleet\n    targetRevision: HEAD\n    path: web\n    directory: {recurse: true, exclude: evil.yaml}\n  destination: {namespace: web}\n";
    let (code, out, err) = check_pr(
        &[
            (
                "gitgate.yaml",
                b"repository:\n  url: git@github.com:acme/fleet.git\n  sources: [{path: argocd, follow: argocd}]\n",
            ),
            ("argocd/web.yaml", app.as_bytes()),
            ("web/deploy.yaml", DEPLOYMENT.as_bytes()),
        ],
        &[("web/sub/evil.yaml", privileged().as_bytes())],
        "text",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("privileged"), "{out}");
}

/// `.sourceignore` is Flux's source-controller's: Argo CD reads the repository as it is. A
/// pull request that lists its own manifest in `.sourceignore` (or the kustomization that
/// leaves it out) hid it from gitgate, while Argo CD applied it.
#[test]
fn check_reads_an_argo_cd_folder_whole_whatever_sourceignore_says() {
    if !support::engines::kustomize() {
        return;
    }
    let app = |path: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: {path}, namespace: argocd}}\nspec:\n  source:\n    repoURL: https://github.com/acme/fleet\n    targetRevision: HEAD\n    path: {path}\n  destination: {{namespace: web}}\n"
        )
    };
    let built = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n";
    let evil = privileged();
    type Files<'a> = &'a [(&'a str, &'a [u8])];
    let cases: [(&str, Files); 2] = [
        // A directory source: the hidden file is applied.
        (
            "web/evil.yaml",
            &[
                ("web/evil.yaml", evil.as_bytes()),
                (".sourceignore", b"web/evil.yaml\n"),
            ],
        ),
        // A kustomize source: Argo CD builds the kustomization .sourceignore names, which
        // takes in the new file.
        (
            "built/kustomization.yaml",
            &[
                ("built/evil.yaml", evil.as_bytes()),
                (
                    "built/kustomization.yaml",
                    b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml, evil.yaml]\n",
                ),
                (".sourceignore", b"built/kustomization.yaml\nbuilt/evil.yaml\n"),
            ],
        ),
    ];
    for (what, pr) in cases {
        let (code, out, err) = check_pr(
            &[
                (
                    "gitgate.yaml",
                    b"repository:\n  url: git@github.com:acme/fleet.git\n  sources: [{path: argocd, follow: argocd}]\n",
                ),
                ("argocd/web.yaml", app("web").as_bytes()),
                ("argocd/built.yaml", app("built").as_bytes()),
                ("web/deploy.yaml", DEPLOYMENT.as_bytes()),
                ("built/kustomization.yaml", built.as_bytes()),
                ("built/deploy.yaml", DEPLOYMENT.as_bytes()),
            ],
            pr,
            "text",
        );
        assert_eq!(code, 1, "{what}: {out}{err}");
        assert!(out.contains("privileged"), "{what}: {out}");
    }
}

/// Argo CD evaluates `.jsonnet` files of a directory source; gitgate does not render Jsonnet
/// and did not name the file either (not a manifest path): `check` passed, exit 0.
#[test]
fn check_says_a_jsonnet_file_argo_cd_evaluates_cannot_be_checked() {
    if !support::engines::kustomize() {
        return;
    }
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web, namespace: argocd}\nspec:\n  source:\n    repoURL: https://github.com/acme/fleet\n    targetRevision: HEAD\n    path: web\n  destination: {namespace: web}\n";
    let (code, out, err) = check_pr(
        &[
            (
                "gitgate.yaml",
                b"repository:\n  url: git@github.com:acme/fleet.git\n  sources: [{path: argocd, follow: argocd}]\n",
            ),
            ("argocd/web.yaml", app.as_bytes()),
            ("web/deploy.yaml", DEPLOYMENT.as_bytes()),
        ],
        &[(
            "web/evil.jsonnet",
            b"{apiVersion: 'v1', kind: 'Pod', metadata: {name: 'evil'}, spec: {hostNetwork: true, containers: [{name: 'x', image: 'x', securityContext: {privileged: true}}]}}\n",
        )],
        "text",
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("web/evil.jsonnet"), "{out}");
}

/// `helm.valuesObject` takes the place of `helm.values` (Argo CD's `ValuesYAML()` reads one
/// or the other): gitgate merged both, so a hardening in `values` that Argo CD ignores was
/// taken as applied.
#[test]
fn argo_cd_values_object_takes_the_place_of_values() {
    let objects = vec![application(json!({
        "repoURL": "https://github.com/acme/fleet", "targetRevision": "HEAD", "path": "charts/web",
        "helm": {"values": "securityContext:\n  runAsNonRoot: true\nreplicaCount: 1\n",
                 "valuesObject": {"replicaCount": 2}}}))];
    let f = found(&objects);
    let (targets, said) = follow::targets(&f, &f, Controllers::ArgoCd, &this());
    assert_eq!(targets.len(), 1, "{said:?}");
    let Build::ArgoCd { helm, .. } = &targets[0].build else {
        panic!("{:?}", targets[0].build)
    };
    assert_eq!(helm.values, Some(json!({"replicaCount": 2})));
}

/// `helm.namespace` is the namespace Argo CD templates the chart in (`.Release.Namespace`);
/// gitgate templated in the destination's.
#[test]
fn argo_cd_helm_namespace_is_the_release_namespace() {
    let objects = vec![application(json!({
        "repoURL": "https://github.com/acme/fleet", "targetRevision": "HEAD", "path": "charts/web",
        "helm": {"namespace": "kube-system"}}))];
    let f = found(&objects);
    let (targets, said) = follow::targets(&f, &f, Controllers::ArgoCd, &this());
    assert_eq!(targets.len(), 1, "{said:?}");
    let Build::ArgoCd { helm, .. } = &targets[0].build else {
        panic!("{:?}", targets[0].build)
    };
    assert_eq!(helm.namespace.as_deref(), Some("kube-system"));
}

/// `kustomize.replicas` (`kustomize edit set replicas`) changes what Argo CD applies; gitgate
/// ignored it (the webhook refused Argo CD's replica count; a policy on replicas never saw
/// it).
#[test]
fn argo_cd_kustomize_replicas_are_applied() {
    let objects = vec![application(json!({
        "repoURL": "https://github.com/acme/fleet", "targetRevision": "HEAD", "path": "web",
        "kustomize": {"replicas": [{"name": "web", "count": 50}, {"name": "db", "count": "3"}]}}))];
    let f = found(&objects);
    let (targets, said) = follow::targets(&f, &f, Controllers::ArgoCd, &this());
    assert_eq!(targets.len(), 1, "{said:?}");
    let Build::ArgoCd { overlay, .. } = &targets[0].build else {
        panic!("{:?}", targets[0].build)
    };
    let k = overlay.kustomization(
        Some(json!({"resources": ["deploy.yaml"], "replicas": [{"name": "web", "count": 2}]})),
        &[],
    );
    assert_eq!(
        k["replicas"],
        json!([{"name": "web", "count": 50}, {"name": "db", "count": 3}])
    );
}

/// Two explicit types (`ExplicitType()` errors: "multiple application sources defined"), or
/// a plugin, are not rendered as if the folder decided.
#[test]
fn argo_cd_sources_with_several_types_or_a_plugin_are_said() {
    for source in [
        json!({"repoURL": "https://github.com/acme/fleet", "targetRevision": "HEAD", "path": "web",
               "kustomize": {"namePrefix": "a-"}, "directory": {"recurse": true}}),
        json!({"repoURL": "https://github.com/acme/fleet", "targetRevision": "HEAD", "path": "web",
               "plugin": {"name": "sops"}}),
    ] {
        let objects = vec![application(source.clone())];
        let f = found(&objects);
        let (targets, said) = follow::targets(&f, &f, Controllers::ArgoCd, &this());
        assert!(targets.is_empty(), "{source}: {targets:?}");
        assert_eq!(said.len(), 1, "{source}");
    }
}

// --- Malformed controller objects ---------------------------------------------------------

/// A long release name of non-ASCII text (Git may hold any) was cut inside a character: a
/// panic while reading the controller's objects.
#[test]
fn a_long_non_ascii_release_name_does_not_panic() {
    let name = format!("a{}", "é".repeat(30));
    let objects = vec![
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"releaseName": name,
                 "chart": {"spec": {"chart": "./charts/web", "sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}}}}}),
    ];
    let f = found(&objects);
    let (targets, _) = follow::targets(&f, &f, Controllers::Flux, &this());
    let Build::Helm(h) = &targets[0].build else {
        panic!("{:?}", targets[0].build)
    };
    assert!(h.release_name.as_deref().unwrap().len() <= 53);
}

/// An unclosed `${` followed by non-ASCII text was quoted by cutting inside a character.
#[test]
fn an_unclosed_substitution_before_non_ascii_text_does_not_panic() {
    let vars = [("a".to_string(), "b".to_string())].into_iter().collect();
    let text = format!("x: ${{{}", "é".repeat(40));
    assert!(overlay::envsubst(&text, &vars).is_err());
}

/// Fields of the wrong type (arrays where maps are, numbers where strings are) are read
/// without a panic.
#[test]
fn malformed_controller_objects_do_not_panic() {
    let objects = vec![
        git_repository("fleet", json!({"url": 7, "ref": ["main"]})),
        kustomization(
            "a",
            json!({"sourceRef": ["x"], "path": 3, "images": "nginx", "patches": {"a": 1},
                   "patchesJson6902": ["x", {"patch": 5}], "postBuild": ["x"], "components": [1, {}]}),
        ),
        kustomization(
            "b",
            json!({"sourceRef": {"kind": "GitRepository", "name": "fleet"}, "path": "./x",
                   "postBuild": {"substitute": ["x"], "substituteFrom": {"kind": "ConfigMap"}},
                   "commonMetadata": ["x"], "images": [1, {"name": 2}]}),
        ),
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
               "metadata": {"name": ["x"]},
               "spec": {"chart": {"spec": {"chart": 1, "sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}, "valuesFiles": {}}},
                        "valuesFrom": [{"kind": "ConfigMap", "name": "v", "targetPath": 1}], "values": []}}),
        application(json!({"repoURL": ["x"]})),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {},
               "spec": {"sources": [{"repoURL": "https://github.com/acme/fleet", "path": ".",
                                     "helm": {"parameters": [{"name": "a..b[0]", "value": "{x"}, 3], "values": 5},
                                     "kustomize": {"images": [3, "x=y@sha:1"], "replicas": [{"name": "w", "count": "x"}]}}]}}),
    ];
    let f = found(&objects);
    let _ = follow::targets(&f, &f, Controllers::Both, &this());
}

// --- The entry and its own Kustomizations -------------------------------------------------

const GOTK_SYNC: &str = "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec:
  ref: {branch: main}
  url: ssh://git@github.com/acme/fleet
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec:
  path: ./clusters/production
  sourceRef: {kind: GitRepository, name: flux-system}
";

/// A regression guard (this passed before the fixes): a second Kustomization of the entry's
/// folder, with a patch that points a child Kustomization elsewhere in its own build, does not
/// hide the child's real folder, which the bootstrap Kustomization still applies as written.
#[test]
fn a_decoy_kustomization_of_the_entry_folder_hides_no_child() {
    if !support::engines::kustomize() {
        return;
    }
    let web = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: web, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: flux-system}\n  path: ./apps/web\n  targetNamespace: web\n";
    let decoy = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: decoy, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: flux-system}\n  path: ./clusters/production\n  patches:\n  - patch: |\n      - op: replace\n        path: /spec/path\n        value: ./apps/decoy\n    target: {kind: Kustomization, name: web}\n";
    let (code, out, err) = check_pr(
        &[
            (
                "gitgate.yaml",
                b"repository:\n  sources: [{path: clusters/production, follow: flux}]\n",
            ),
            (
                "clusters/production/flux-system/kustomization.yaml",
                b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [gotk-sync.yaml]\n",
            ),
            (
                "clusters/production/flux-system/gotk-sync.yaml",
                GOTK_SYNC.as_bytes(),
            ),
            ("clusters/production/web.yaml", web.as_bytes()),
            ("apps/web/deploy.yaml", DEPLOYMENT.as_bytes()),
        ],
        &[
            ("clusters/production/decoy.yaml", decoy.as_bytes()),
            ("apps/decoy/deploy.yaml", DEPLOYMENT.as_bytes()),
            ("apps/web/evil.yaml", privileged().as_bytes()),
        ],
        "text",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("privileged") && out.contains("web/evil"),
        "{out}"
    );
}

/// Substituted text is read back as YAML, as Flux reads it: a variable holding a flow map
/// becomes a map (what Flux applies), not a string gitgate would judge instead.
#[test]
fn a_substituted_flow_map_is_a_map_as_flux_reads_it() {
    let o = Overlay {
        substitute: Some(
            [("sc".to_string(), "{privileged: true}".to_string())]
                .into_iter()
                .collect(),
        ),
        ..Overlay::default()
    };
    let out = o
        .after_build(json!({"kind": "Pod", "metadata": {"name": "a"},
                            "spec": {"containers": [{"name": "a", "securityContext": "${sc}"}]}}))
        .unwrap();
    assert_eq!(
        out["spec"]["containers"][0]["securityContext"],
        json!({"privileged": true})
    );
}

/// `spec.include` copies another source's files into the artifact (over this repository's,
/// at `toPath`): what Flux builds there is not the repository's folder.
#[test]
fn a_git_repository_that_includes_another_source_is_unverifiable() {
    let objects = vec![
        git_repository(
            "fleet",
            json!({"url": "https://github.com/acme/fleet", "ref": {"branch": "main"},
                   "include": [{"repository": {"name": "other"}, "fromPath": "deploy", "toPath": "apps/web"}]}),
        ),
        kustomization(
            "web",
            json!({"sourceRef": {"kind": "GitRepository", "name": "fleet"}, "path": "./apps/web"}),
        ),
    ];
    let f = found(&objects);
    let (targets, said) = follow::targets(&f, &f, Controllers::Flux, &this());
    assert_eq!(targets.len(), 1, "{said:?}");
    assert!(
        matches!(&targets[0].build, Build::Unverifiable(m) if m.contains("spec.include")),
        "{:?}",
        targets[0].build
    );
}

/// `spec.ignore` of a GitRepository adds `.sourceignore` patterns for its artifact; gitgate
/// honoured the commit's `.sourceignore` files only. Ignoring a folder's `kustomization.yaml`
/// there makes Flux apply the folder's files raw (the unpatched base, files the kustomization
/// does not name) while gitgate built the kustomization. (Once the new GitRepository is
/// applied: before, the cluster's packages the commit with the kustomization, which is read
/// too.)
#[test]
fn check_honours_a_git_repositorys_own_ignore_patterns() {
    if !support::engines::kustomize() {
        return;
    }
    let sync = GOTK_SYNC.replace(
        "  ref: {branch: main}\n",
        "  ref: {branch: main}\n  ignore: |\n    apps/web/kustomization.yaml\n",
    );
    let web = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: web, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: flux-system}\n  path: ./apps/web\n  targetNamespace: web\n";
    let (code, out, err) = check_pr(
        &[
            (
                "gitgate.yaml",
                b"repository:\n  sources: [{path: clusters/production, follow: flux}]\n",
            ),
            (
                "clusters/production/flux-system/kustomization.yaml",
                b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [gotk-sync.yaml]\n",
            ),
            (
                "clusters/production/flux-system/gotk-sync.yaml",
                GOTK_SYNC.as_bytes(),
            ),
            ("clusters/production/web.yaml", web.as_bytes()),
            (
                "apps/web/kustomization.yaml",
                b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n",
            ),
            ("apps/web/deploy.yaml", DEPLOYMENT.as_bytes()),
        ],
        &[
            (
                "clusters/production/flux-system/gotk-sync.yaml",
                sync.as_bytes(),
            ),
            ("apps/web/evil.yaml", privileged().as_bytes()),
        ],
        "text",
    );
    assert_eq!(code, 1, "{out}{err}");
}

/// source-controller leaves its default exclusions (CI files, `.sops.yaml`, images, ...) out
/// only where the repository has no `.sourceignore` of its own, and filters file by file, so
/// a negation re-includes a file under an excluded folder. A pull request that added any
/// `.sourceignore` and a manifest named like a CI file, or re-included one, had it applied
/// by Flux and skipped by gitgate.
#[test]
fn check_reads_what_source_controller_puts_in_the_artifact() {
    let evil = privileged();
    type Files<'a> = &'a [(&'a str, &'a [u8])];
    let cases: [(&str, Files); 2] = [
        (
            "a default exclusion once a .sourceignore exists",
            &[
                (".sourceignore", b"*.md\n"),
                ("apps/cloudbuild.yaml", evil.as_bytes()),
            ],
        ),
        (
            "a file re-included under an excluded folder",
            &[
                (".sourceignore", b"apps/extra/\n!apps/extra/evil.yaml\n"),
                ("apps/extra/evil.yaml", evil.as_bytes()),
            ],
        ),
    ];
    for (what, pr) in cases {
        let (code, out, err) = check_pr(
            &[
                ("gitgate.yaml", b"repository:\n  sources: [{path: apps}]\n"),
                ("apps/deploy.yaml", DEPLOYMENT.as_bytes()),
            ],
            pr,
            "text",
        );
        assert_eq!(code, 1, "{what}: {out}{err}");
        assert!(out.contains("privileged"), "{what}: {out}");
    }
}

// --- spec.ignore while it changes ---------------------------------------------------------

/// The bootstrap GitRepository (`gotk-sync.yaml`) with `ignore` as its `spec.ignore`.
fn sync_ignoring(ignore: &str) -> String {
    let ignore: String = ignore.lines().map(|l| format!("    {l}\n")).collect();
    GOTK_SYNC.replace(
        "  ref: {branch: main}\n",
        &format!("  ref: {{branch: main}}\n  ignore: |\n{ignore}"),
    )
}

/// A fleet whose bootstrap GitRepository holds `sync`, whose Kustomization `web` applies
/// `apps/web` as it is (plain files, no kustomize needed), with `more` files; `check` of a
/// pull request committing `pr` on top.
fn check_fleet_pr(sync: &str, more: &[(&str, &[u8])], pr: &[(&str, &[u8])]) -> (i32, String) {
    let web = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: web, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: flux-system}\n  path: ./apps/web\n";
    let mut base: Vec<(&str, &[u8])> = vec![
        (
            "gitgate.yaml",
            b"repository:\n  sources: [{path: clusters/production, follow: flux}]\n",
        ),
        (
            "clusters/production/flux-system/kustomization.yaml",
            b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [gotk-sync.yaml]\n",
        ),
        ("clusters/production/flux-system/gotk-sync.yaml", sync.as_bytes()),
        ("clusters/production/web.yaml", web.as_bytes()),
        ("apps/web/deploy.yaml", DEPLOYMENT.as_bytes()),
    ];
    base.extend_from_slice(more);
    let (code, out, err) = check_pr(&base, pr, "text");
    (code, format!("{out}{err}"))
}

/// source-controller packages the merged commit with the `spec.ignore` the cluster holds
/// (the base's GitRepository), and Flux applies that artifact before the flux-system
/// Kustomization applies the new GitRepository. A pull request that added
/// `ignore: /apps/web/evil.yaml` with that file passed `check`, which read the head's
/// `spec.ignore` only, while Flux's first reconcile applied the file.
#[test]
fn check_reads_what_the_clusters_git_repository_still_packages() {
    if !support::engines::kustomize() {
        return;
    }
    let evil = privileged();
    let (code, out) = check_fleet_pr(
        GOTK_SYNC,
        &[],
        &[
            (
                "clusters/production/flux-system/gotk-sync.yaml",
                sync_ignoring("/apps/web/evil.yaml").as_bytes(),
            ),
            ("apps/web/evil.yaml", evil.as_bytes()),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("privileged"), "{out}");
}

/// A regression guard: a `spec.ignore` the pull request leaves as it is still leaves its
/// files out (the cluster's artifact leaves them out too): no refusal for a file neither
/// artifact holds.
#[test]
fn an_unchanged_spec_ignore_still_leaves_its_files_out() {
    if !support::engines::kustomize() {
        return;
    }
    let sync = sync_ignoring("/apps/web/evil.yaml");
    let evil = privileged();
    // The GitRepository itself changed elsewhere, and not at all.
    let moved = sync.replace("ref: {branch: main}", "interval: 5m\n  ref: {branch: main}");
    for (what, pr) in [
        (
            "the GitRepository untouched",
            vec![("apps/web/evil.yaml", evil.as_bytes())],
        ),
        (
            "the GitRepository changed, not its ignore",
            vec![
                ("apps/web/evil.yaml", evil.as_bytes()),
                (
                    "clusters/production/flux-system/gotk-sync.yaml",
                    moved.as_bytes(),
                ),
            ],
        ),
    ] {
        let (code, out) = check_fleet_pr(&sync, &[], &pr);
        assert_eq!(code, 0, "{what}: {out}");
    }
}

/// A GitRepository the pull request adds is new to the cluster too: its own `spec.ignore`
/// is the only one that packages the commit.
#[test]
fn a_new_git_repository_packages_with_its_own_ignore() {
    if !support::engines::kustomize() {
        return;
    }
    let evil = privileged();
    let source = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: extra, namespace: flux-system}\nspec:\n  url: https://github.com/acme/fleet\n  ref: {branch: main}\n  ignore: |\n    /apps/extra/evil.yaml\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: extra, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: extra}\n  path: ./apps/extra\n";
    let ok = DEPLOYMENT.replace("name: web\nspec", "name: extra\nspec");
    let (code, out) = check_fleet_pr(
        GOTK_SYNC,
        &[],
        &[
            ("clusters/production/extra.yaml", source.as_bytes()),
            ("apps/extra/deploy.yaml", ok.as_bytes()),
            ("apps/extra/evil.yaml", evil.as_bytes()),
        ],
    );
    assert_eq!(code, 0, "{out}");
    // The same files without the ignore line: the file is read.
    let bare = source.replace("  ignore: |\n    /apps/extra/evil.yaml\n", "");
    let (code, out) = check_fleet_pr(
        GOTK_SYNC,
        &[],
        &[
            ("clusters/production/extra.yaml", bare.as_bytes()),
            ("apps/extra/deploy.yaml", ok.as_bytes()),
            ("apps/extra/evil.yaml", evil.as_bytes()),
        ],
    );
    assert_eq!(code, 1, "{out}");
}

/// A pull request that removes an ignore line puts the file in the new artifact: it is read,
/// whether the pull request adds the file or it was already in the repository, left out.
#[test]
fn a_removed_ignore_line_puts_its_file_in_the_artifact() {
    if !support::engines::kustomize() {
        return;
    }
    let evil = privileged();
    let sync = sync_ignoring("/apps/web/evil.yaml\n/docs/");
    let removed = sync_ignoring("/docs/");
    let (code, out) = check_fleet_pr(
        &sync,
        &[],
        &[
            (
                "clusters/production/flux-system/gotk-sync.yaml",
                removed.as_bytes(),
            ),
            ("apps/web/evil.yaml", evil.as_bytes()),
        ],
    );
    assert_eq!(code, 1, "added with the line removed: {out}");
    assert!(out.contains("privileged"), "{out}");
    let (code, out) = check_fleet_pr(
        &sync,
        &[("apps/web/evil.yaml", evil.as_bytes())],
        &[(
            "clusters/production/flux-system/gotk-sync.yaml",
            removed.as_bytes(),
        )],
    );
    assert_eq!(code, 1, "already there, left out until now: {out}");
    assert!(out.contains("privileged"), "{out}");
}

/// The cluster's `spec.ignore` leaves a folder's `kustomization.yaml` out and the pull
/// request's no longer does: Flux applies the folder as plain files first (every manifest
/// in it, named by the kustomization or not), then built. Both are read.
#[test]
fn a_kustomization_one_artifact_leaves_out_is_read_both_ways() {
    if !support::engines::kustomize() {
        return;
    }
    let evil = privileged();
    let kustomization: &[u8] =
        b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n";
    let (code, out) = check_fleet_pr(
        &sync_ignoring("/apps/web/kustomization.yaml"),
        &[("apps/web/kustomization.yaml", kustomization)],
        &[
            (
                "clusters/production/flux-system/gotk-sync.yaml",
                sync_ignoring("/docs/").as_bytes(),
            ),
            ("apps/web/evil.yaml", evil.as_bytes()),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("privileged"), "{out}");
}

/// Flux's bootstrap GitRepository need not be in Git: a reference to it is read without a
/// `spec.ignore`, and so is what the cluster holds of it. A pull request that writes it with
/// an ignore line and the file it leaves out is read as the cluster packages it first.
#[test]
fn a_bootstrap_source_git_did_not_hold_packages_without_an_ignore_first() {
    if !support::engines::kustomize() {
        return;
    }
    let evil = privileged();
    let web = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: web, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: flux-system}\n  path: ./apps/web\n";
    let sync = sync_ignoring("/apps/web/evil.yaml");
    let (code, out, err) = check_pr(
        &[
            (
                "gitgate.yaml",
                b"repository:\n  sources: [{path: clusters/production, follow: flux}]\n",
            ),
            ("clusters/production/web.yaml", web.as_bytes()),
            ("apps/web/deploy.yaml", DEPLOYMENT.as_bytes()),
        ],
        &[
            ("clusters/production/gotk-sync.yaml", sync.as_bytes()),
            ("apps/web/evil.yaml", evil.as_bytes()),
        ],
        "text",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("privileged"), "{out}");
}

/// Where both artifacts hold a controller object that is not followed, it is said once.
#[test]
fn what_both_artifacts_hold_is_said_once() {
    if !support::engines::kustomize() {
        return;
    }
    let theirs = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: theirs, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: nowhere}\n  path: ./x\n";
    let kustomization: &[u8] = b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml, theirs.yaml]\n";
    let (code, out) = check_fleet_pr(
        &sync_ignoring("/apps/web/kustomization.yaml"),
        &[
            ("apps/web/kustomization.yaml", kustomization),
            ("apps/web/theirs.yaml", theirs.as_bytes()),
        ],
        &[(
            "clusters/production/flux-system/gotk-sync.yaml",
            sync_ignoring("/docs/").as_bytes(),
        )],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.matches("Kustomization flux-system/theirs: not followed")
            .count(),
        1,
        "{out}"
    );
}

/// What cannot be rendered from Git is said once, whichever artifact it would be read from;
/// a target whose variables a later build holds is read again from both artifacts.
#[test]
fn a_target_read_again_is_read_from_both_artifacts() {
    if !support::engines::kustomize() {
        return;
    }
    let evil = privileged();
    let web = |kind: &str| {
        format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: web, namespace: flux-system}}\nspec:\n  sourceRef: {{kind: GitRepository, name: flux-system}}\n  path: ./apps/web\n  postBuild:\n    substituteFrom:\n    - {{kind: {kind}, name: vars}}\n"
        )
    };
    let config = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: config, namespace: flux-system}\nspec:\n  sourceRef: {kind: GitRepository, name: flux-system}\n  path: ./config\n";
    let vars = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vars, namespace: flux-system}\ndata: {env: prod}\n";
    let kustomization: &[u8] =
        b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deploy.yaml]\n";
    let sync = sync_ignoring("/apps/web/kustomization.yaml");
    let pr_sync = sync_ignoring("/docs/");
    // The ConfigMap comes from a later build: the cluster's artifact (no kustomization)
    // applies evil.yaml.
    let from_config = web("ConfigMap");
    let (code, out) = check_fleet_pr(
        &sync,
        &[
            ("apps/web/kustomization.yaml", kustomization),
            ("clusters/production/web.yaml", from_config.as_bytes()),
            ("clusters/production/config.yaml", config.as_bytes()),
            ("config/vars.yaml", vars.as_bytes()),
        ],
        &[
            (
                "clusters/production/flux-system/gotk-sync.yaml",
                pr_sync.as_bytes(),
            ),
            ("apps/web/evil.yaml", evil.as_bytes()),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("privileged"), "{out}");
    // From a Secret: not renderable, said once.
    let from_secret = web("Secret");
    let (code, out) = check_fleet_pr(
        &sync,
        &[("apps/web/kustomization.yaml", kustomization)],
        &[
            (
                "clusters/production/flux-system/gotk-sync.yaml",
                pr_sync.as_bytes(),
            ),
            ("clusters/production/web.yaml", from_secret.as_bytes()),
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert_eq!(out.matches("cannot be known from Git").count(), 1, "{out}");
}
