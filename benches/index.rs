//! The provenance index: 10,000 manifests (200 files of 50 documents) over a window of 200
//! commits, each commit changing one file; then one more commit folded in, and lookups.
//!
//! `cargo bench --bench index`; results are recorded in BENCHMARKS.md (peak RSS from
//! /proc/self/status).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gitgate::git::Repo;
use gitgate::provenance::approval::{Window, window};
use gitgate::provenance::index::Index;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@example.com")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git {args:?}");
}

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

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
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
}
