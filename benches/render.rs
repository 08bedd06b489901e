//! Indexing a window of rendered sources: a repository of 50 kustomize overlays over 10
//! shared bases and one Helm chart, 200 commits each bumping one overlay's image; the cold
//! index of the 200-commit window, then one new commit touching one overlay, and one touching
//! a shared base (five overlays render again). Then the same repository in follow mode: one
//! cluster entry (`clusters/production`, `follow: flux`) holding 50 Flux Kustomizations, one
//! per overlay, each with a `targetNamespace`; cold, and a new commit touching one overlay.
//!
//! `cargo bench --bench render`; kustomize is `kustomize` or `kubectl kustomize` on PATH, helm
//! is `helm` on PATH or the stand-in of the tests (Python with helm-python-sdk); the chart is
//! left out, saying so, without one. Results are recorded in BENCHMARKS.md.

mod support;

use support::{git, peak_rss_mib};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gitgate::git::Repo;
use gitgate::provenance::approval::{Window, window};
use gitgate::provenance::index::Index;
use gitgate::render::{Kind, Renderer, Settings, SourceSpec};

const OVERLAYS: usize = 50;
const BASES: usize = 10;
const COMMITS: usize = 200;

fn write(dir: &Path, path: &str, text: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn base(b: usize, port: usize) -> [(String, String); 3] {
    [
        (
            format!("bases/base-{b}/kustomization.yaml"),
            "resources: [deployment.yaml, service.yaml]\n".to_string(),
        ),
        (
            format!("bases/base-{b}/deployment.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {{app: web}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - name: web\n        image: ghcr.io/example/base-{b}:1.0.0\n        ports: [{{containerPort: {port}}}]\n        resources: {{limits: {{cpu: 500m, memory: 256Mi}}}}\n"
            ),
        ),
        (
            format!("bases/base-{b}/service.yaml"),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80, targetPort: {port}}}]\n"
            ),
        ),
    ]
}

fn overlay(i: usize, revision: usize) -> [(String, String); 2] {
    [
        (
            format!("overlays/app-{i:02}/kustomization.yaml"),
            format!(
                "namespace: team-{}\nnamePrefix: app-{i:02}-\nresources: [../../bases/base-{}]\npatches: [{{path: replicas.yaml}}]\nimages: [{{name: ghcr.io/example/base-{}, newTag: \"1.{revision}.0\"}}]\n",
                i % 10,
                i % BASES,
                i % BASES
            ),
        ),
        (
            format!("overlays/app-{i:02}/replicas.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {}\n",
                2 + i % 3
            ),
        ),
    ]
}

fn helm() -> Option<PathBuf> {
    if let Some(helm) = gitgate::render::sandbox::which("helm") {
        return Some(helm);
    }
    let sdk = Command::new("python3")
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success());
    sdk.then(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/helm_stand_in.py"))
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    if gitgate::render::sandbox::which("kustomize").is_none()
        && gitgate::render::sandbox::which("kubectl").is_none()
    {
        eprintln!("skipping: neither kustomize nor kubectl is on PATH");
        return;
    }
    let helm = helm();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    for b in 0..BASES {
        for (p, t) in base(b, 8080) {
            write(d, &p, &t);
        }
    }
    for i in 0..OVERLAYS {
        for (p, t) in overlay(i, 0) {
            write(d, &p, &t);
        }
    }
    let mut sources: Vec<SourceSpec> = (0..OVERLAYS)
        .map(|i| SourceSpec {
            path: format!("overlays/app-{i:02}"),
            ..SourceSpec::default()
        })
        .collect();
    match &helm {
        Some(_) => {
            write(
                d,
                "charts/web/Chart.yaml",
                "apiVersion: v2\nname: web\nversion: 1.0.0\n",
            );
            write(
                d,
                "charts/web/values.yaml",
                "replicas: 2\nimage: ghcr.io/example/web:1.0.0\n",
            );
            write(
                d,
                "charts/web/templates/deployment.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        image: {{ .Values.image }}\n",
            );
            sources.push(SourceSpec {
                path: "charts/web".into(),
                render: Kind::Helm,
                namespace: Some("web".into()),
                ..SourceSpec::default()
            });
        }
        None => eprintln!("note: no helm binary and no helm-python-sdk: the chart is left out"),
    }
    git(d, &["add", "-A"]);
    git(
        d,
        &[
            "commit",
            "-q",
            "-m",
            "50 overlays over 10 bases and a chart",
        ],
    );
    let setup = Instant::now();
    for c in 1..COMMITS {
        let i = c % OVERLAYS;
        for (p, t) in overlay(i, c) {
            write(d, &p, &t);
        }
        git(d, &["commit", "-q", "-am", &format!("app-{i:02} 1.{c}.0")]);
    }
    eprintln!("made {COMMITS} commits in {:?}", setup.elapsed());
    let settings = Settings {
        helm_binary: helm.clone(),
        ..Settings::default()
    };
    let renderer = || Renderer::new(sources.clone(), &[], settings.clone(), "default");
    let repo = Repo::open(d).unwrap();
    let w = Window {
        commits: COMMITS,
        max_age: Duration::from_secs(365 * 86_400),
    };
    let tip = repo.resolve("main").unwrap();
    let t = Instant::now();
    let commits = window(&repo, tip, w, None).unwrap();
    let index = Index::build_with(&repo, &commits, renderer(), "default").unwrap();
    let cold = t.elapsed();
    assert_eq!(commits.len(), COMMITS);
    assert!(
        index.render_errors().is_empty(),
        "{:?}",
        index.render_errors()
    );
    println!(
        "| cold: {COMMITS}-commit window, {} kustomize sources{} ({} versions) | {:.2} s | peak RSS {:.0} MiB |",
        OVERLAYS,
        if helm.is_some() { " + 1 chart" } else { "" },
        index.len(),
        cold.as_secs_f64(),
        peak_rss_mib()
    );

    // One new commit touching one overlay: one render.
    for (p, t) in overlay(7, 999) {
        write(d, &p, &t);
    }
    git(d, &["commit", "-q", "-am", "one overlay"]);
    let tip = repo.resolve("main").unwrap();
    let t = Instant::now();
    let commits = window(&repo, tip, w, None).unwrap();
    let folded = index.advance(&repo, &commits).unwrap();
    println!(
        "| a new commit touching one overlay | {:.0} ms | |",
        t.elapsed().as_secs_f64() * 1000.0
    );

    // One touching a shared base: the five overlays over it render again.
    for (p, t) in base(3, 9090) {
        write(d, &p, &t);
    }
    git(d, &["commit", "-q", "-am", "one base"]);
    let tip = repo.resolve("main").unwrap();
    let t = Instant::now();
    let commits = window(&repo, tip, w, None).unwrap();
    let _folded = folded.advance(&repo, &commits).unwrap();
    println!(
        "| a new commit touching a base of five overlays | {:.0} ms | peak RSS {:.0} MiB |",
        t.elapsed().as_secs_f64() * 1000.0,
        peak_rss_mib()
    );
    follow(d, &repo, w);
}

/// The follow-mode rows: 50 Flux Kustomizations in one cluster folder, followed.
fn follow(d: &Path, repo: &Repo, w: Window) {
    write(
        d,
        "clusters/production/flux-system/gotk-sync.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: flux-system, namespace: flux-system}\nspec: {url: https://example.com/fleet, ref: {branch: main}}\n",
    );
    for i in 0..OVERLAYS {
        write(
            d,
            &format!("clusters/production/app-{i:02}.yaml"),
            &format!(
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: app-{i:02}, namespace: flux-system}}\nspec:\n  sourceRef: {{kind: GitRepository, name: flux-system}}\n  path: ./overlays/app-{i:02}\n  targetNamespace: prod-{i:02}\n"
            ),
        );
    }
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "50 Flux Kustomizations"]);
    for c in 1..COMMITS {
        let i = c % OVERLAYS;
        for (p, t) in overlay(i, 2000 + c) {
            write(d, &p, &t);
        }
        git(d, &["commit", "-q", "-am", &format!("app-{i:02} 2.{c}.0")]);
    }
    let sources = vec![SourceSpec {
        path: "clusters/production".into(),
        follow: Some(gitgate::render::Follow::Flux),
        ..SourceSpec::default()
    }];
    let renderer = Renderer::new(sources, &[], Settings::default(), "default");
    let tip = repo.resolve("main").unwrap();
    let t = Instant::now();
    let commits = window(repo, tip, w, None).unwrap();
    let index = Index::build_with(repo, &commits, renderer, "default").unwrap();
    let cold = t.elapsed();
    assert!(
        index.render_errors().is_empty(),
        "{:?}",
        index.render_errors()
    );
    println!(
        "| follow: cold {COMMITS}-commit window, 1 cluster entry, {OVERLAYS} Flux Kustomizations ({} versions) | {:.2} s | peak RSS {:.0} MiB |",
        index.len(),
        cold.as_secs_f64(),
        peak_rss_mib()
    );
    for (p, t) in overlay(7, 9999) {
        write(d, &p, &t);
    }
    git(d, &["commit", "-q", "-am", "one overlay, followed"]);
    let tip = repo.resolve("main").unwrap();
    let t = Instant::now();
    let commits = window(repo, tip, w, None).unwrap();
    let _ = index.advance(repo, &commits).unwrap();
    println!(
        "| follow: a new commit touching one overlay | {:.0} ms | |",
        t.elapsed().as_secs_f64() * 1000.0
    );
}
