//! The CI door reads what the controller will apply (issue 19): pull requests laid out as Flux
//! and Argo CD read them, checked with the real binary in every format.

mod support;

/// A privileged Pod as a list item, indented by `indent` spaces.
fn privileged_pod(indent: usize) -> String {
    let pad = " ".repeat(indent);
    [
        "- apiVersion: v1",
        "  kind: Pod",
        "  metadata: {name: root, namespace: demo}",
        "  spec:",
        "    containers:",
        "    - name: c",
        "      image: busybox:1.36",
        "      securityContext: {privileged: true}",
    ]
    .iter()
    .map(|l| format!("{pad}{l}\n"))
    .collect()
}

/// A pull request on a repository with one harmless ConfigMap, adding `path` with `text`.
fn pull_request(path: &str, text: &str) -> tempfile::TempDir {
    let repo = support::repo_with(&[(
        "demo/cm.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base, namespace: demo}\ndata: {a: b}\n",
    )]);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    support::commit_files(dir, &[(path, text.as_bytes())], "the pull request");
    repo
}

#[test]
fn an_object_with_an_items_array_is_a_list_and_its_items_are_checked() {
    // A ConfigMap (not a `...List` kind) carrying a privileged Pod in `items`: Flux's reader,
    // kubectl and Helm apply only the items.
    let carrier = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: carrier, namespace: demo}}\nitems:\n{}",
        privileged_pod(0)
    );
    // And a List inside a List, flattened as kustomize does.
    let nested = format!(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n{}",
        privileged_pod(2)
    );
    for (name, text) in [("carrier", carrier), ("nested", nested)] {
        let repo = pull_request(&format!("demo/{name}.yaml"), &text);
        for format in ["text", "json", "sarif", "junit", "github"] {
            let (code, out, err) = support::gitgate(
                repo.path(),
                &["check", "--base", "main", "--head", "pr", "-o", format],
            );
            assert_eq!(code, 1, "{name} ({format}): {out}{err}");
            assert!(out.contains("privileged"), "{name} ({format}): {out}");
        }
        let (_, out, _) = support::gitgate(
            repo.path(),
            &["check", "--base", "main", "--head", "pr", "-o", "json"],
        );
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        let objects: Vec<&str> = report["checked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["object"].as_str().unwrap())
            .collect();
        assert_eq!(
            objects,
            ["Pod demo/root"],
            "{name}: only the items are objects"
        );
        let privileged = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["policy"] == "privileged-container")
            .unwrap();
        assert!(
            privileged["line"].as_u64().unwrap() > 1,
            "{name}: the finding points into the item, not at line 1: {privileged}"
        );
    }
}

#[test]
fn a_signed_merge_does_not_vouch_for_the_unsigned_commits_it_brings() {
    use support::signed::{DAY, EMAIL, SignedRepo, now, tools_here};
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    let signers = r.allowed_signers(&format!("{EMAIL} {trusted}\n"));
    let config = r.beside("gitgate.yaml");
    std::fs::write(
        &config,
        format!(
            "approval:\n  requireSignatures: true\n  allowedSigners: {}\n",
            signers.display()
        ),
    )
    .unwrap();
    let cm = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: demo}}\ndata: {{a: b}}\n"
        )
    };
    let t = now() - DAY;
    let c0 = r.commit(&[("demo/base.yaml", &cm("base"))], Some("trusted"), t);
    // An unsigned commit on a side branch, brought in by a merge commit signed by a trusted key.
    r.git(&["checkout", "-q", "-b", "feature"], None, t);
    let unsigned = r.commit(&[("demo/side.yaml", &cm("side"))], None, t + 10);
    r.git(&["checkout", "-q", "-b", "pr", &c0], None, t);
    r.git(
        &["merge", "-q", "--no-ff", "-m", "merge feature", "feature"],
        Some("trusted"),
        t + 20,
    );
    // A fully signed pull request with a merge of the same shape.
    r.git(&["checkout", "-q", "-b", "signed-feature", &c0], None, t);
    r.commit(
        &[("demo/other.yaml", &cm("other"))],
        Some("trusted"),
        t + 30,
    );
    r.git(&["checkout", "-q", "-b", "signed-pr", &c0], None, t);
    r.git(
        &["merge", "-q", "--no-ff", "-m", "merge", "signed-feature"],
        Some("trusted"),
        t + 40,
    );
    r.git(&["checkout", "-q", "main"], None, t);
    let cfg = config.to_str().unwrap();
    for format in ["text", "json", "sarif", "junit", "github"] {
        let (code, out, err) = support::gitgate(
            &r.path(),
            &[
                "check", "-c", cfg, "--base", "main", "--head", "pr", "-o", format,
            ],
        );
        assert_eq!(code, 1, "{format}: {out}{err}");
        assert!(
            out.contains(&unsigned[..12]),
            "{format}: names the commit: {out}"
        );
        let (code, out, err) = support::gitgate(
            &r.path(),
            &[
                "check",
                "-c",
                cfg,
                "--base",
                "main",
                "--head",
                "signed-pr",
                "-o",
                format,
            ],
        );
        assert_eq!(code, 0, "{format}: {out}{err}");
    }
}

#[test]
fn a_symlink_and_a_submodule_are_named_never_skipped_in_silence() {
    let repo = pull_request(
        "demo/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: demo}\ndata: {a: b}\n",
    );
    let dir = repo.path();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("demo/link.yaml")).unwrap();
    support::git(dir, "a@example.com", 0, &["add", "demo/link.yaml"]);
    let head = support::git(dir, "a@example.com", 0, &["rev-parse", "HEAD"]);
    support::git(
        dir,
        "a@example.com",
        0,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{head},demo/vendored"),
        ],
    );
    support::git(
        dir,
        "a@example.com",
        1_780_000_100,
        &["commit", "-q", "-m", "a link and a submodule"],
    );
    let (code, out, err) = support::gitgate(
        dir,
        &["check", "--base", "main", "--head", "pr", "-o", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let notes: Vec<String> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["level"] == "note")
        .map(|i| format!("{} {}", i["path"], i["message"]))
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("demo/link.yaml") && n.contains("symbolic link")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("demo/vendored") && n.contains("submodule")),
        "{notes:?}"
    );
    assert!(report["counts"]["notes"].as_u64().unwrap() >= 2, "{report}");
    for format in ["text", "sarif", "junit", "github"] {
        let (_, out, _) = support::gitgate(
            dir,
            &["check", "--base", "main", "--head", "pr", "-o", format],
        );
        assert!(
            out.contains("demo/link.yaml") && out.contains("demo/vendored"),
            "{format}: {out}"
        );
    }
}

#[test]
fn a_kustomization_listed_in_sourceignore_is_not_built_and_its_folder_is_plain() {
    if !support::engines::kustomize() {
        return;
    }
    let kustomization =
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\n";
    let cm =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: demo}\ndata: {a: b}\n";
    let repo = support::repo_with(&[
        ("apps/prod/kustomization.yaml", kustomization.as_bytes()),
        ("apps/prod/cm.yaml", cm.as_bytes()),
    ]);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    // Flux no longer sees the kustomization: it applies the folder as plain manifests,
    // the Pod beside it included.
    let pod = format!("apiVersion: v1\nkind: List\nitems:\n{}", privileged_pod(0));
    support::commit_files(
        dir,
        &[
            (".sourceignore", b"apps/prod/kustomization.yaml\n"),
            ("apps/prod/pod.yaml", pod.as_bytes()),
        ],
        "ignore the kustomization",
    );
    for format in ["text", "json", "sarif", "junit", "github"] {
        let (code, out, err) = support::gitgate(
            dir,
            &["check", "--base", "main", "--head", "pr", "-o", format],
        );
        assert_eq!(code, 1, "{format}: {out}{err}");
        assert!(out.contains("privileged"), "{format}: {out}");
    }
}

#[test]
fn a_chart_that_reads_the_cluster_is_reported_unverifiable() {
    let Some(helm) = support::engines::helm() else {
        return;
    };
    let chart = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
    let template = "{{- $existing := lookup \"v1\" \"ConfigMap\" .Release.Namespace \"web\" }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  size: {{ .Values.size | quote }}
{{- if $existing }}
  existed: \"yes\"
{{- end }}
";
    for strict in [false, true] {
        let gate = format!(
            "repository:\n  sources:\n  - {{path: web, render: helm, namespace: demo}}\nrender:\n  helmBinary: {}\n  strict: {strict}\n",
            helm.display()
        );
        let repo = support::repo_with(&[
            ("gitgate.yaml", gate.as_bytes()),
            ("web/Chart.yaml", chart.as_bytes()),
            ("web/values.yaml", b"size: \"1\"\n"),
            ("web/templates/cm.yaml", template.as_bytes()),
        ]);
        let dir = repo.path();
        support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
        support::commit_files(dir, &[("web/values.yaml", b"size: \"2\"\n")], "bigger");
        for format in ["text", "json", "sarif", "junit", "github"] {
            let (code, out, err) = support::gitgate(
                dir,
                &["check", "--base", "main", "--head", "pr", "-o", format],
            );
            let want = if strict { 2 } else { 0 };
            assert_eq!(code, want, "strict {strict}, {format}: {out}{err}");
            assert!(
                out.contains("unverifiable") && out.contains("lookup"),
                "strict {strict}, {format}: {out}"
            );
        }
    }
}

#[test]
fn yaml_that_readers_read_differently_is_refused_with_its_line() {
    let cases = [
        (
            "merge",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: m, namespace: demo}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    securityContext:\n      privileged: false\n      <<: {privileged: true}\n",
            10,
        ),
        (
            "tagged-merge",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: t, namespace: demo}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    securityContext:\n      ! <<: {privileged: true}\n",
            9,
        ),
        (
            "non-specific-tag",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: n, namespace: demo}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    securityContext:\n      privileged: ! true\n",
            9,
        ),
    ];
    for (name, text, line) in cases {
        let repo = pull_request(&format!("demo/{name}.yaml"), text);
        for format in ["text", "json", "sarif", "junit", "github"] {
            let (code, out, err) = support::gitgate(
                repo.path(),
                &["check", "--base", "main", "--head", "pr", "-o", format],
            );
            assert_eq!(code, 2, "{name} ({format}): {out}{err}");
        }
        let (_, out, _) =
            support::gitgate(repo.path(), &["check", "--base", "main", "--head", "pr"]);
        assert!(
            out.contains(&format!("demo/{name}.yaml:{line}:")) && out.contains("YAML readers"),
            "{name}: {out}"
        );
    }
}

#[test]
fn a_kustomization_is_built_as_written_never_rewritten_by_gitgate() {
    if !support::engines::kustomize() {
        return;
    }
    // A tagged merge key: kustomize's reader merges it; gitgate's would keep a literal `<<`.
    let kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\ncommonLabels:\n  ! <<: {team: web}\n";
    let cm =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: demo}\ndata: {a: b}\n";
    let repo = support::repo_with(&[("apps/prod/cm.yaml", cm.as_bytes())]);
    let dir = repo.path();
    support::git(dir, "a@example.com", 0, &["checkout", "-q", "-b", "pr"]);
    support::commit_files(
        dir,
        &[("apps/prod/kustomization.yaml", kustomization.as_bytes())],
        "a kustomization",
    );
    let (code, out, err) = support::gitgate(
        dir,
        &["check", "--base", "main", "--head", "pr", "-o", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["object"] == "ConfigMap demo/web"),
        "{report}"
    );
}

#[test]
fn what_a_folder_renders_depends_on_that_folder_alone() {
    if !support::engines::kustomize() {
        return;
    }
    let kustomization =
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [pod.yaml]\n";
    let pod = |privileged: bool| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web, namespace: demo}}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n    securityContext: {{privileged: {privileged}}}\n"
        )
    };
    let base = || {
        let repo = support::repo_with(&[
            ("apps/prod/kustomization.yaml", kustomization.as_bytes()),
            ("apps/prod/pod.yaml", pod(false).as_bytes()),
        ]);
        support::git(
            repo.path(),
            "a@example.com",
            0,
            &["checkout", "-q", "-b", "pr"],
        );
        repo
    };
    // A decoy kustomization elsewhere that builds the folder and deletes the Pod: the folder
    // is still built on its own, as Flux builds it.
    let repo = base();
    let decoy = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../apps/prod]\npatches:\n- patch: |\n    $patch: delete\n    apiVersion: v1\n    kind: Pod\n    metadata: {name: web, namespace: demo}\n";
    support::commit_files(
        repo.path(),
        &[
            ("docs/example/kustomization.yaml", decoy.as_bytes()),
            ("apps/prod/pod.yaml", pod(true).as_bytes()),
        ],
        "a decoy",
    );
    for format in ["text", "json", "sarif", "junit", "github"] {
        let (code, out, err) = support::gitgate(
            repo.path(),
            &["check", "--base", "main", "--head", "pr", "-o", format],
        );
        assert_eq!(code, 1, "{format}: {out}{err}");
        assert!(out.contains("privileged"), "{format}: {out}");
    }
    // An empty kustomization above it: where the source is the repository's root, Flux's
    // generated kustomization would build `apps` alone; the Pod's file, read by no source, is
    // named in every format, never passed in silence.
    let repo = base();
    support::commit_files(
        repo.path(),
        &[
            (
                "apps/kustomization.yaml",
                b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
            ),
            ("apps/prod/pod.yaml", pod(true).as_bytes()),
        ],
        "an empty parent",
    );
    for format in ["text", "json", "sarif", "junit", "github"] {
        let (_, out, err) = support::gitgate(
            repo.path(),
            &["check", "--base", "main", "--head", "pr", "-o", format],
        );
        assert!(
            out.contains("apps/prod/pod.yaml") && out.contains("applied by no source"),
            "{format}: {out}{err}"
        );
    }
}
