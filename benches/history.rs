//! The provenance index on a history of kube-prometheus's shape (issue 22): 85 files under
//! `manifests/`, ~5.7 MB at the head, six CustomResourceDefinitions of 0.5-0.8 MB and a
//! 1 MB ConfigMapList of dashboards whose text changes in about one commit in five, and 78
//! small manifests changing now and then; 220 commits. Measured: the time to build the index
//! of a 200-commit and of a 20-commit window, each in a child process of its own, whose peak
//! RSS (`VmHWM` of /proc/self/status, read by the child when its index is ready) is the
//! index's; then, in the 200-commit child, the verdict on the newest and on an older version
//! of the largest CRD (lookup + match).
//!
//! `cargo bench --bench history`; `GITGATE_HISTORY_REPO=/path/to/clone` measures a real
//! repository instead (its `manifests/` folder, `GITGATE_HISTORY_SOURCE` to change that),
//! never committed. Results are recorded in BENCHMARKS.md.

mod support;

use support::{git, peak_rss_mib, per_run};

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A deterministic number in 0..n from (a, b).
fn pick(a: usize, b: usize, n: usize) -> usize {
    let mut x = (a as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % n as u64) as usize
}

const WORDS: [&str; 16] = [
    "the",
    "field",
    "selects",
    "which",
    "Prometheus",
    "instances",
    "should",
    "be",
    "configured",
    "when",
    "empty",
    "defaults",
    "to",
    "namespace",
    "of",
    "object",
];

/// A description of `n` words, the same for the same (seed, revision).
fn words(seed: usize, n: usize) -> String {
    (0..n)
        .map(|i| WORDS[pick(seed, i, WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The properties of a schema, nested, as a CRD's openAPIV3Schema: each has a description
/// (one in 40 says which revision it is at, so the text changes from one revision to the next).
fn properties(
    out: &mut String,
    seed: usize,
    depth: usize,
    indent: usize,
    budget: &mut isize,
    rev: usize,
) {
    let pad = " ".repeat(indent);
    let fan = if depth == 0 {
        12
    } else {
        2 + pick(seed, depth, 5)
    };
    for p in 0..fan {
        if *budget <= 0 {
            return;
        }
        let id = seed.wrapping_mul(31).wrapping_add(p + 1);
        let name = format!("{}{}", WORDS[pick(id, 1, 16)], id % 1000);
        let mut text = words(id, 12 + pick(id, 2, 30));
        if pick(id, 3, 40) == 0 {
            let _ = write!(text, " (revision {rev})");
        }
        let before = out.len();
        let _ = writeln!(out, "{pad}{name}:");
        let _ = writeln!(out, "{pad}  description: {text}");
        if depth < 6 && pick(id, 4, 3) != 0 {
            let _ = writeln!(out, "{pad}  properties:");
            *budget -= (out.len() - before) as isize;
            properties(out, id, depth + 1, indent + 4, budget, rev);
            let _ = writeln!(out, "{pad}  type: object");
        } else {
            let ty = ["string", "integer", "boolean"][pick(id, 5, 3)];
            let _ = writeln!(out, "{pad}  type: {ty}");
            *budget -= (out.len() - before) as isize;
        }
    }
}

/// CRD `n` (0..6) at revision `rev`, about `bytes` long.
fn crd(n: usize, bytes: usize, rev: usize) -> String {
    let plural = format!("things{n}");
    let mut out = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  annotations:\n    controller-gen.kubebuilder.io/version: v0.{rev}.0\n  name: {plural}.monitoring.example.com\nspec:\n  group: monitoring.example.com\n  names:\n    kind: Thing{n}\n    listKind: Thing{n}List\n    plural: {plural}\n    singular: thing{n}\n  scope: Namespaced\n  versions:\n  - name: v1\n    schema:\n      openAPIV3Schema:\n        description: Thing{n} at revision {rev}\n        x-kubernetes-validations:\n        - rule: '!has(self.a) || has(self.b)'\n        properties:\n"
    );
    let mut budget = bytes as isize;
    properties(&mut out, 1000 + n, 0, 10, &mut budget, rev);
    out.push_str("        type: object\n    served: true\n    storage: true\n    subresources:\n      status: {}\n");
    out
}

/// The dashboards: a ConfigMapList of 25 ConfigMaps, each one a JSON dashboard of ~40 kB.
fn dashboards(rev: usize) -> String {
    let mut out = String::from("apiVersion: v1\nkind: ConfigMapList\nitems:\n");
    for d in 0..25 {
        let _ = write!(
            out,
            "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: grafana-dashboard-{d}\n    namespace: monitoring\n  data:\n    dashboard-{d}.json: |-\n"
        );
        for panel in 0..180 {
            let r = if pick(d, panel, 30) == 0 { rev } else { 0 };
            let _ = writeln!(
                out,
                "      {{\"id\": {panel}, \"title\": \"{}\", \"expr\": \"sum(rate(metric_{panel}{{code!=\\\"200\\\"}}[5m])) by (job) # {r}\"}},",
                words(d * 1000 + panel, 6)
            );
        }
    }
    out
}

/// Small manifest `f` at revision `rev`: a Deployment, a ClusterRole, a Service or a Thing.
fn small(f: usize, rev: usize) -> String {
    let name = format!("component-{f}");
    match f % 4 {
        0 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: monitoring\n  labels: {{app: {name}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: main\n        image: quay.io/example/{name}:v0.{rev}.0\n        args: [--web.listen-address=:9090, --log.level=info]\n        resources: {{limits: {{cpu: 200m, memory: 200Mi}}}}\n"
        ),
        1 => {
            let mut out = format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {name}\n  labels: {{revision: \"{rev}\"}}\nrules:\n"
            );
            for r in 0..(5 + f % 30) {
                let _ = writeln!(
                    out,
                    "- apiGroups: [\"\"]\n  resources: [{}]\n  verbs: [get, list, watch]",
                    WORDS[pick(f, r, 16)]
                );
            }
            out
        }
        2 => format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: monitoring\n  labels: {{revision: \"{rev}\"}}\nspec:\n  ports:\n  - {{name: web, port: 9090, targetPort: web}}\n  selector: {{app: {name}}}\n"
        ),
        _ => {
            let mut out = format!(
                "apiVersion: monitoring.example.com/v1\nkind: Thing{}\nmetadata:\n  name: {name}\n  namespace: monitoring\nspec:\n  revision: {rev}\n  rules:\n",
                f % 6
            );
            // One large rule file, as kube-prometheus's control-plane rules (~90 kB).
            let rules = if f == 3 { 700 } else { 20 + f % 40 };
            for r in 0..rules {
                let _ = writeln!(
                    out,
                    "  - alert: Alert{r}\n    expr: sum(rate(requests_total{{code!~\"2..\", job=\"{name}\"}}[5m])) > {}",
                    if pick(f, r, 25) == 0 { rev } else { 0 }
                );
            }
            out
        }
    }
}

const CRD_BYTES: [usize; 6] = [810_000, 750_000, 690_000, 680_000, 600_000, 580_000];
const SMALL: usize = 78;

/// Writes the files of revision `c`: what commit `c` changes (all of it for `c == 0`).
fn write_commit(root: &Path, c: usize) {
    let setup = root.join("manifests/setup");
    for (n, bytes) in CRD_BYTES.iter().enumerate() {
        // Each CRD changes in about one commit in five.
        if c == 0 || pick(c, n, 5) == 0 {
            std::fs::write(
                setup.join(format!("0thing{n}CustomResourceDefinition.yaml")),
                crd(n, *bytes, c),
            )
            .unwrap();
        }
    }
    if c == 0 || pick(c, 99, 5) == 0 {
        std::fs::write(
            root.join("manifests/grafana-dashboardDefinitions.yaml"),
            dashboards(c),
        )
        .unwrap();
    }
    for f in 0..SMALL {
        // One or two small files change in most commits.
        if c == 0 || pick(c, 200 + f, SMALL / 2) == 0 {
            std::fs::write(
                root.join(format!("manifests/component-{f:02}.yaml")),
                small(f, c),
            )
            .unwrap();
        }
    }
}

/// In the child: builds the index of the `commits`-commit window of `repo` and prints the
/// time and the peak RSS; with `judge`, then the verdicts on the largest CRD.
fn child(repo: &Path, source: &str, commits: usize, verdicts: bool) {
    let rss_before = peak_rss_mib();
    // As `serve` syncs at a first start: ready when the first snapshot is stored (the
    // newest approved commit), whole when the window is.
    let config = gitgate::config::Config::parse(
        "bench",
        &format!(
            "repository:\n  url: {}\n  paths: [{source}]\napproval:\n  window: {{commits: {commits}, maxAge: 876000h}}\n",
            repo.display()
        ),
    )
    .unwrap();
    let mirror = std::sync::Arc::new(gitgate::provenance::mirror::Mirror::deciding());
    let sync = gitgate::provenance::mirror::Source::from_config(&config)
        .unwrap()
        .unwrap();
    let t = Instant::now();
    let syncing = {
        let mirror = mirror.clone();
        std::thread::spawn(move || mirror.sync(&sync).unwrap())
    };
    let mut ready = None;
    while !syncing.is_finished() {
        if ready.is_none() && mirror.snapshot().is_some() {
            ready = Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    syncing.join().unwrap();
    let build = t.elapsed();
    let ready = ready.unwrap_or(build);
    let snapshot = mirror.snapshot().unwrap();
    assert!(snapshot.complete);
    let index = &snapshot.index;
    println!(
        "| first sync: {}-commit window ({} versions) | ready {:.3} s, whole window {:.2} s | peak RSS {:.0} MiB (at start {:.0} MiB) |",
        index.commits().count(),
        index.len(),
        ready.as_secs_f64(),
        build.as_secs_f64(),
        peak_rss_mib(),
        rss_before,
    );
    if !verdicts {
        return;
    }
    // The verdict on the largest CRD as the newest commit holds it, and as an older version
    // of the window holds it (a CREATE carrying the manifest: lookup + match).
    use gitgate::provenance::verdict::{Status, judge};
    let config = gitgate::config::Config::default();
    let Some((key, newest)) = index
        .newest_objects()
        .filter(|(k, _)| k.1 == "CustomResourceDefinition")
        .max_by_key(|(_, v)| serde_json::to_vec(&*v.manifest()).unwrap().len())
    else {
        return;
    };
    let id = gitgate::input::Identity {
        group: key.0.clone(),
        version: "v1".into(),
        kind: key.1.clone(),
        namespace: key.2.clone(),
        name: key.3.clone(),
    };
    let versions = index.lookup(&id);
    let oldest = versions.last().unwrap();
    // Drifted: one description the window never held, compared with every version.
    let mut drifted = (*newest.manifest()).clone();
    drifted["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] =
        "changed in the cluster".into();
    for (what, object, status) in [
        (
            "newest version",
            (*newest.manifest()).clone(),
            Status::Traceable,
        ),
        (
            "oldest version",
            (*oldest.manifest()).clone(),
            Status::Traceable,
        ),
        (
            "drifted (every version compared)",
            drifted,
            Status::Modified,
        ),
    ] {
        let review = review(object);
        assert_eq!(judge(&review, index, &config).status, status);
        let mut sink = 0;
        let judged = per_run(20, || {
            sink += judge(&review, index, &config).differing.len();
        });
        std::hint::black_box(sink);
        println!(
            "| verdict on the largest CRD ({} versions in the window), {what}: lookup + match | {:.2} ms | peak RSS {:.0} MiB |",
            versions.len(),
            judged.as_secs_f64() * 1e3,
            peak_rss_mib()
        );
    }
}

/// A CREATE of `object` by Flux's kustomize-controller.
fn review(object: serde_json::Value) -> gitgate::input::Review {
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "b6a3f4d2-0000-4000-8000-000000000001",
            "kind": {"group": "apiextensions.k8s.io", "version": "v1", "kind": "CustomResourceDefinition"},
            "resource": {"group": "apiextensions.k8s.io", "version": "v1", "resource": "customresourcedefinitions"},
            "name": object["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object, "dryRun": false
        }
    });
    gitgate::input::parse_admission_review("bench", &serde_json::to_vec(&body).unwrap())
        .unwrap()
        .1
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let source = std::env::var("GITGATE_HISTORY_SOURCE").unwrap_or_else(|_| "manifests".into());
    if let Ok(spec) = std::env::var("GITGATE_HISTORY_CHILD") {
        let (commits, repo) = spec.split_once(':').unwrap();
        let commits: usize = commits.parse().unwrap();
        child(Path::new(repo), &source, commits, commits >= 200);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // GITGATE_HISTORY_MAKE=dir: the history is made there and kept (to time the children
    // with other tools), nothing is measured.
    let make = std::env::var("GITGATE_HISTORY_MAKE").ok();
    let repo_dir = match std::env::var("GITGATE_HISTORY_REPO") {
        Ok(path) => std::path::PathBuf::from(path),
        Err(_) => {
            let root = make.as_deref().map_or(dir.path(), Path::new);
            std::fs::create_dir_all(root).unwrap();
            git(root, &["init", "-q", "-b", "main"]);
            std::fs::create_dir_all(root.join("manifests/setup")).unwrap();
            let t = Instant::now();
            write_commit(root, 0);
            git(root, &["add", "-A"]);
            git(root, &["commit", "-q", "-m", "kube-prometheus's shape"]);
            for c in 1..220 {
                write_commit(root, c);
                git(
                    root,
                    &[
                        "commit",
                        "-q",
                        "--allow-empty",
                        "-am",
                        &format!("change {c}"),
                    ],
                );
            }
            let head: u64 = std::fs::read_dir(root.join("manifests"))
                .unwrap()
                .chain(std::fs::read_dir(root.join("manifests/setup")).unwrap())
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum();
            eprintln!(
                "made 220 commits in {:?}; {:.1} MB under manifests/ at the head",
                t.elapsed(),
                head as f64 / 1e6
            );
            root.to_path_buf()
        }
    };
    if make.is_some() {
        return;
    }
    let me = std::env::current_exe().unwrap();
    for commits in [20, 200] {
        let out = Command::new(&me)
            .env(
                "GITGATE_HISTORY_CHILD",
                format!("{commits}:{}", repo_dir.display()),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
