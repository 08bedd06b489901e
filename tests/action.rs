//! The GitHub Action (`action.yml`): its shell, `action/run.sh`, run as the action runs it
//! (the `INPUT_*` variables its inputs set, `GITHUB_OUTPUT`) against the binary under test on
//! pull requests made here, with no network: the exit code is `check`'s, the SARIF report is
//! written and named in the step's outputs. The download is tested from a `file://` release
//! directory laid out as GitHub's.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{commit_files, git};

fn configmap(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata: {{k: v}}\n")
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n        resources: {{limits: {{cpu: 500m, memory: 128Mi}}}}\n"
    )
}

/// A repository whose main holds one ConfigMap, checked out on a branch `pr` that adds
/// `files`.
fn pull_request(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = support::repo_with(&[("apps/base.yaml", configmap("base").as_bytes())]);
    git(
        dir.path(),
        "a@example.com",
        0,
        &["checkout", "-q", "-b", "pr"],
    );
    commit_files(dir.path(), files, "the pull request");
    dir
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("action/run.sh")
}

/// Runs action/run.sh in `repo` with `inputs` (name, value) as `INPUT_*` variables, as the
/// action's step does; returns the exit code, stderr and the step's outputs.
fn run_action(repo: &Path, inputs: &[(&str, &str)], env: &[(&str, &str)]) -> Run {
    let outputs = repo.join("github-output");
    std::fs::write(&outputs, "").unwrap();
    let mut command = Command::new("sh");
    command
        .arg(script())
        .current_dir(repo)
        .env("GITHUB_OUTPUT", &outputs)
        .env_remove("GITHUB_BASE_REF")
        .env_remove("GITHUB_PATH")
        .env_remove("RUST_BACKTRACE");
    for (name, value) in inputs {
        command.env(format!("INPUT_{name}"), value);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("sh runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        outputs,
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    outputs: String,
}

impl Run {
    fn output(&self, name: &str) -> Option<&str> {
        self.outputs
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
    }
}

const BINARY: &str = env!("CARGO_BIN_EXE_gitgate");

#[test]
fn a_rejected_pull_request_fails_the_step_and_writes_sarif() {
    let repo = pull_request(&[("apps/api.yaml", deployment("api", "busybox").as_bytes())]);
    let run = run_action(
        repo.path(),
        &[
            ("BINARY", BINARY),
            ("BASE", "main"),
            ("SARIF_FILE", "out.sarif"),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.output("exit-code"), Some("1"), "{}", run.outputs);
    assert_eq!(
        run.output("sarif-file"),
        Some("out.sarif"),
        "{}",
        run.outputs
    );
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.path().join("out.sarif")).unwrap())
            .unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "latest-tag" && r["level"] == "error"),
        "{sarif:#}"
    );
    // The report is the file's, not the log's.
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn a_passing_pull_request_passes_and_the_base_comes_from_github() {
    let repo = pull_request(&[("apps/api.yaml", deployment("api", "nginx:1.27").as_bytes())]);
    // On a pull request GitHub sets GITHUB_BASE_REF; the base is origin/<it>.
    git(
        repo.path(),
        "a@example.com",
        0,
        &["update-ref", "refs/remotes/origin/main", "main"],
    );
    let run = run_action(
        repo.path(),
        &[("BINARY", BINARY)],
        &[("GITHUB_BASE_REF", "main")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("--base origin/main"), "{}", run.stderr);
    assert_eq!(run.output("exit-code"), Some("0"));
    assert_eq!(run.output("sarif-file"), Some("gitgate.sarif"));
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.path().join("gitgate.sarif")).unwrap())
            .unwrap();
    assert_eq!(
        sarif["runs"][0]["properties"]["verdict"], "passed",
        "{sarif:#}"
    );
}

#[test]
fn other_formats_print_and_args_are_passed_on() {
    let repo = pull_request(&[("apps/api.yaml", deployment("api", "busybox").as_bytes())]);
    let run = run_action(
        repo.path(),
        &[
            ("BINARY", BINARY),
            ("BASE", "main"),
            ("FORMAT", "json"),
            ("ARGS", "--head  HEAD --fail-on-warn"),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("--head HEAD --fail-on-warn"),
        "{}",
        run.stderr
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(report.is_object(), "{report}");
    assert_eq!(run.output("sarif-file"), Some(""));
    assert!(!repo.path().join("gitgate.sarif").exists());
}

#[test]
fn what_cannot_be_checked_is_exit_2_with_no_report() {
    let repo = pull_request(&[("apps/api.yaml", configmap("api").as_bytes())]);
    let run = run_action(
        repo.path(),
        &[
            ("BINARY", BINARY),
            ("BASE", "main"),
            ("CONFIG", "missing.yaml"),
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.output("exit-code"), Some("2"));
    assert_eq!(run.output("sarif-file"), Some(""));
    assert!(!repo.path().join("gitgate.sarif").exists());
    // A binary that is not there is the action's own error.
    let run = run_action(repo.path(), &[("BINARY", "/nonexistent/gitgate")], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not an executable"), "{}", run.stderr);
}

/// The Rust target of this machine's release archive, as run.sh names it.
fn target() -> Option<String> {
    let os = match std::env::consts::OS {
        "linux" => "unknown-linux-gnu",
        "macos" => "apple-darwin",
        _ => return None,
    };
    Some(format!("{}-{os}", std::env::consts::ARCH))
}

#[test]
fn a_release_is_installed_for_this_platform() {
    let tools = ["curl", "tar"]
        .iter()
        .all(|t| Command::new(t).arg("--version").output().is_ok());
    let Some(target) = target().filter(|_| tools) else {
        eprintln!("skipping: needs curl and tar on Linux or macOS");
        return;
    };
    // A release directory as GitHub lays it out: download/v0.1.0/ and latest/download/.
    let releases = tempfile::tempdir().unwrap();
    let staged = releases.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::copy(BINARY, staged.join("gitgate")).unwrap();
    let archive = format!("gitgate-{target}.tar.gz");
    for dir in ["download/v0.1.0", "latest/download"] {
        let dir = releases.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tar = Command::new("tar")
            .arg("-czf")
            .arg(dir.join(&archive))
            .arg("-C")
            .arg(&staged)
            .arg("gitgate")
            .output()
            .unwrap();
        assert!(
            tar.status.success(),
            "{}",
            String::from_utf8_lossy(&tar.stderr)
        );
    }
    let url = format!("file://{}", releases.path().display());
    let repo = pull_request(&[("apps/api.yaml", deployment("api", "busybox").as_bytes())]);
    for version in ["v0.1.0", "latest"] {
        let runner_temp = tempfile::tempdir().unwrap();
        let path_file = runner_temp.path().join("github-path");
        let run = run_action(
            repo.path(),
            &[("VERSION", version), ("BASE", "main")],
            &[
                ("GITGATE_RELEASES", &url),
                ("RUNNER_TEMP", runner_temp.path().to_str().unwrap()),
                ("GITHUB_PATH", path_file.to_str().unwrap()),
            ],
        );
        assert_eq!(run.code, 1, "{version}: {}", run.stderr);
        assert!(run.stderr.contains(&archive), "{}", run.stderr);
        // Later steps find gitgate on PATH.
        let added = std::fs::read_to_string(&path_file).unwrap();
        assert!(Path::new(added.trim()).join("gitgate").is_file(), "{added}");
        assert!(repo.path().join("gitgate.sarif").is_file());
    }
    // A release that does not exist: exit 2, said.
    let run = run_action(
        repo.path(),
        &[("VERSION", "9.9.9")],
        &[("GITGATE_RELEASES", &url)],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot download"), "{}", run.stderr);
}

#[test]
fn the_action_runs_the_script_with_its_inputs() {
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("action.yml"))
            .unwrap();
    let action: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    assert_eq!(action["inputs"]["format"]["default"], "sarif");
    assert_eq!(action["inputs"]["version"]["default"], "latest");
    let steps = action["runs"]["steps"].as_array().unwrap();
    assert!(steps[0]["run"].as_str().unwrap().contains("action/run.sh"));
    // Every input but the upload's own reaches the script.
    let env = steps[0]["env"].as_object().unwrap();
    for name in action["inputs"].as_object().unwrap().keys() {
        if ["category", "upload"].contains(&name.as_str()) {
            continue;
        }
        let var = format!("INPUT_{}", name.to_uppercase().replace('-', "_"));
        assert!(env.contains_key(&var), "{var}");
    }
    assert!(
        steps[1]["uses"]
            .as_str()
            .unwrap()
            .starts_with("github/codeql-action/upload-sarif@")
    );
    let hooks: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(hooks[0]["id"], "gitgate-check");
    assert_eq!(hooks[0]["entry"], "gitgate check");
    assert_eq!(hooks[0]["language"], "system");
}
