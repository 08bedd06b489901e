//! The doors' outputs, byte for byte, against what they gave before the decision core moved
//! (issue 18): the full AdmissionReview answer of each of the 30 captured requests in
//! `../shared/fixtures/admission-v1/` (built-in policies, provenance on, a repository holding
//! the fixtures' manifests), and `check -o json` of pull requests against such a repository.
//! The expected outputs live in `tests/data/differential/`; `GITGATE_BLESS=1 cargo test --test
//! differential` writes them again (only when a change of output is meant).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gitgate::config::Config;
use gitgate::provenance::mirror::{Mirror, Source};
use gitgate::serve::AppState;
use serde_json::Value;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/differential")
}

/// Compares `actual` with the golden file `name`, or writes it under `GITGATE_BLESS`.
fn compare(name: &str, actual: &str) -> Option<String> {
    let path = golden_dir().join(name);
    if std::env::var_os("GITGATE_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (GITGATE_BLESS=1 writes it)", path.display()));
    (expected != actual).then(|| format!("{name}:\n--- expected\n{expected}\n--- actual\n{actual}"))
}

/// A repository (fixed dates, so fixed commit ids) holding the fixtures' manifests under demo/.
fn gitops_repo(fixtures: &Path) -> tempfile::TempDir {
    let read = |f: &str| std::fs::read(fixtures.join("manifests").join(f)).unwrap();
    let files: Vec<(String, Vec<u8>)> = ["deploy.yaml", "cm.yaml", "svc.yaml", "quant.yaml"]
        .iter()
        .map(|f| (format!("demo/{f}"), read(f)))
        .collect();
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    support::repo_with(&files)
}

/// `value` with the keys of every object in order (a map's order, such as the audit
/// annotations', is not part of the answer).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admission_answers_of_the_fixtures_are_unchanged() {
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let repo = gitops_repo(&fixtures);
    let config = Config::parse(
        "gitgate.yaml",
        &format!("repository:\n  url: {}\n", repo.path().display()),
    )
    .unwrap();
    let source = Source::from_config(&config).unwrap().unwrap();
    let mirror = Arc::new(Mirror::default());
    mirror.sync(&source).unwrap();
    let set = gitgate::builtin::policy_set(&gitgate::policy::Options::default()).unwrap();
    let state = AppState::new(set, &config).with_mirror(mirror);
    let app = gitgate::serve::router(Arc::new(state), 8 << 20);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let mut names: Vec<String> = std::fs::read_dir(&fixtures)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.ends_with(".json").then_some(name)
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 30, "{names:?}");
    let mut out = String::new();
    for name in &names {
        let body = std::fs::read(fixtures.join(name)).unwrap();
        let answer: Value = client
            .post(format!("http://{addr}/validate"))
            .body(body)
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out += &format!(
            "{name}\n{}\n",
            serde_json::to_string_pretty(&sorted(&answer)).unwrap()
        );
    }
    if let Some(diff) = compare("admission.txt", &out) {
        panic!("{diff}");
    }
}

#[test]
fn check_reports_of_pull_requests_are_unchanged() {
    let Some(fixtures) = support::fixtures_dir() else {
        return;
    };
    let repo = gitops_repo(&fixtures);
    let dir = repo.path();
    let deploy = std::fs::read_to_string(dir.join("demo/deploy.yaml")).unwrap();
    let mut diffs = Vec::new();
    // (branch, files written, files removed)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "latest-and-hostpath",
            vec![
                (
                    "demo/deploy.yaml",
                    deploy.replace("image: ", "image: evil.example/miner:latest #"),
                ),
                (
                    "demo/debug.yaml",
                    "apiVersion: v1\nkind: Pod\nmetadata: {name: debug, namespace: demo}\nspec:\n  containers:\n  - name: d\n    image: busybox\n    securityContext: {runAsUser: 0, privileged: true}\n    volumeMounts: [{name: root, mountPath: /host}]\n  volumes:\n  - {name: root, hostPath: {path: /}}\n".to_string(),
                ),
            ],
            vec!["demo/cm.yaml"],
        ),
        ("harmless", vec![("demo/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: demo}\ndata: {a: b}\n".to_string())], vec![]),
    ];
    for (name, writes, removes) in cases {
        support::git(
            dir,
            "a@example.com",
            0,
            &["checkout", "-q", "-B", name, "main"],
        );
        for (path, text) in &writes {
            std::fs::write(dir.join(path), text).unwrap();
        }
        for path in &removes {
            std::fs::remove_file(dir.join(path)).unwrap();
        }
        support::git(dir, "a@example.com", 1_780_000_500, &["add", "-A"]);
        support::git(
            dir,
            "a@example.com",
            1_780_000_500,
            &["commit", "-q", "-m", name],
        );
        support::git(dir, "a@example.com", 0, &["checkout", "-q", "main"]);
        for format in ["json", "text"] {
            let (code, stdout, _) = support::gitgate(
                dir,
                &["check", "--base", "main", "--head", name, "-o", format],
            );
            let text = format!(
                "exit {code}\n{}",
                stdout.replace(&dir.display().to_string(), "<repo>")
            );
            diffs.extend(compare(&format!("check-{name}.{format}"), &text));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
