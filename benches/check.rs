//! `gitgate check` of a pull request that adds 1,000 manifests (Deployments, ConfigMaps and
//! Services in 100 files of 10 documents) to a repository, against the built-in library.
//!
//! `cargo bench --bench check`; results are recorded in BENCHMARKS.md.

mod support;

use support::git;

use criterion::{Criterion, criterion_group};
use gitgate::check::{Target, run};
use gitgate::config::Config;
use gitgate::policy::Options;

fn manifest(i: usize) -> String {
    match i % 3 {
        0 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: team-{t}\n  labels: {{app: app-{i}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec:\n      containers:\n      - name: app\n        image: ghcr.io/example/app-{i}:1.{i}.0\n        ports: [{{containerPort: 8080}}]\n        resources: {{limits: {{cpu: 500m, memory: 256Mi}}}}\n      - name: sidecar\n        image: ghcr.io/example/proxy:2.0\n        resources: {{limits: {{cpu: 100m, memory: 64Mi}}}}\n",
            t = i % 10
        ),
        1 => format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-{i}\n  namespace: team-{}\ndata:\n  key: value-{i}\n",
            i % 10
        ),
        _ => format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: team-{}\nspec:\n  selector: {{app: app-{i}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n",
            i % 10
        ),
    }
}

fn check_1000(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(dir.path().join("README.md"), "gitops\n").unwrap();
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    git(dir.path(), &["checkout", "-q", "-b", "pr"]);
    for f in 0..100 {
        let docs: Vec<String> = (0..10).map(|d| manifest(f * 10 + d)).collect();
        let path = dir
            .path()
            .join(format!("clusters/prod/team-{}/file-{f}.yaml", f % 10));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, docs.join("---\n")).unwrap();
    }
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "1000 manifests"]);

    let config = Config::default();
    let set = gitgate::setup::from_config(&config, dir.path(), &[], Default::default()).unwrap();
    let target = Target::Range {
        repo: dir.path().to_path_buf(),
        base: None,
        head: None,
    };
    let report = run(&target, &set, &config).unwrap();
    assert_eq!(report.checked.len(), 1000);
    assert_eq!(
        report.verdict(),
        gitgate::check::Verdict::Passed,
        "{:?}",
        report.items.first()
    );

    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    group.bench_function("pull request of 1,000 manifests, built-in library", |b| {
        b.iter(|| run(&target, &set, &config).unwrap())
    });
    group.bench_function("load the built-in library", |b| {
        b.iter(|| gitgate::builtin::policy_set(&Options::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, check_1000);

fn main() {
    // As the gitgate binary does (see benches/policy.rs).
    // SAFETY: before any thread exists.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    benches();
    Criterion::default().configure_from_args().final_summary();
}
