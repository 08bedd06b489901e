//! The exit-code contract of every command, on the real binary: 0 nothing rejects, 1 a policy
//! rejects (or a warning under `--fail-on-warn`, or a failing test), 2 anything that could not
//! be checked (bad input, configuration, a policy that errors, a path that matches nothing).
//! And the closed stdout of `| head -1` ends a command quietly with that same code.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{commit_files, git, gitgate};

fn configmap(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata: {{k: v}}\n")
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n        resources: {{limits: {{cpu: 500m, memory: 128Mi}}}}\n"
    )
}

/// A repository whose main holds one ConfigMap, on a branch `pr` that adds `files`.
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

/// A conftest policy that fails at run time (two complete rules disagree) on objects named
/// `bad`, next to the built-in library (configured, not `-p`, which would replace it).
fn erring_policy(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("policy")).unwrap();
    std::fs::write(
        dir.join("policy/boom.rego"),
        "package main\nimport rego.v1\nboom := 1 if input.metadata.name == \"bad\"\nboom := 2 if input.metadata.name == \"bad\"\ndeny contains \"boom\" if boom == 1\n",
    )
    .unwrap();
    let config = dir.join("gitgate-test.yaml");
    std::fs::write(&config, "policies:\n  paths: [policy]\n").unwrap();
    config.display().to_string()
}

#[test]
fn unreadable_manifests_are_exit_2_not_a_rejection() {
    let huge = format!("# {}\n{}", "x".repeat(16 * 1024 * 1024), configmap("huge"));
    for (name, content, says) in [
        (
            "apps/broken.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n".to_vec(),
            "invalid YAML",
        ),
        (
            "apps/binary.yaml",
            vec![0u8, 159, 146, 150, 255, 0, 1],
            "not UTF-8",
        ),
        (
            "apps/list.yaml",
            b"- apiVersion: v1\n- kind: ConfigMap\n".to_vec(),
            "expected a mapping (an object), found a list",
        ),
        ("apps/huge.yaml", huge.into_bytes(), "larger than the limit"),
    ] {
        let dir = pull_request(&[(name, &content)]);
        let (code, out, err) = gitgate(dir.path(), &["check", "-o", "json"]);
        let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
        assert_eq!(code, 2, "{name}: {report:#}");
        assert_eq!(report["verdict"], "error", "{name}");
        assert_eq!(report["counts"]["unchecked"], 1, "{name}: {report:#}");
        let item = &report["items"][0];
        assert_eq!(item["path"], name);
        assert_eq!(item["unchecked"], true);
        assert!(
            item["message"].as_str().unwrap().contains(says),
            "{name}: {item}"
        );
        // The same file named on the command line (conftest's way) is exit 2 too.
        let (code, out, _) = gitgate(dir.path(), &["check", "--color", "never", name]);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(out.lines().last().unwrap().starts_with("error: "), "{out}");
    }
}

#[test]
fn a_policy_error_is_exit_2_unless_a_deny_rejects_the_same_object() {
    // Only the erring policy's object: exit 2, and every format says so.
    let dir = pull_request(&[("apps/bad.yaml", configmap("bad").as_bytes())]);
    let config = erring_policy(dir.path());
    let (code, out, _) = gitgate(
        dir.path(),
        &["check", "--trust-head", "-c", &config, "-o", "json"],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["verdict"], "error");
    let item = &report["items"][0];
    assert!(
        item["message"]
            .as_str()
            .unwrap()
            .contains("evaluation failed"),
        "{item}"
    );
    assert_eq!(item["unchecked"], true);
    let (code, out, _) = gitgate(
        dir.path(),
        &["check", "--trust-head", "-c", &config, "-o", "junit"],
    );
    assert_eq!(code, 2);
    assert!(out.contains(r#"failures="0" errors="1""#), "{out}");
    assert!(out.contains("<error message=\"[main] policy main"), "{out}");

    // The same object rejected anyway by a deny (latest-tag): exit 1.
    let dir = pull_request(&[("apps/bad.yaml", deployment("bad", "busybox").as_bytes())]);
    let config = erring_policy(dir.path());
    let (code, out, _) = gitgate(
        dir.path(),
        &["check", "--trust-head", "-c", &config, "-o", "json"],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["verdict"], "rejected");
    assert_eq!(report["counts"]["unchecked"], 1, "{report:#}");

    // A rejection of another object does not cover the error: exit 2.
    let dir = pull_request(&[
        ("apps/bad.yaml", configmap("bad").as_bytes()),
        ("apps/web.yaml", deployment("web", "busybox").as_bytes()),
    ]);
    let config = erring_policy(dir.path());
    let (code, out, _) = gitgate(
        dir.path(),
        &["check", "--trust-head", "-c", &config, "--color", "never"],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("error [latest-tag]") && out.contains("evaluation failed"),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("error: 2 objects in 2 files"),
        "{out}"
    );
    assert!(out.contains("1 could not be checked"), "{out}");
}

#[test]
fn a_rejection_and_a_pass_in_json() {
    let dir = pull_request(&[("apps/web.yaml", deployment("web", "busybox").as_bytes())]);
    let (code, out, _) = gitgate(dir.path(), &["check", "-o", "json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1);
    assert_eq!(report["verdict"], "rejected");
    assert_eq!(report["exitCode"], 1);
    assert_eq!(report["counts"]["errors"], 1, "{report:#}");
    assert_eq!(report["counts"]["unchecked"], 0, "{report:#}");
    let dir = pull_request(&[("apps/web.yaml", deployment("web", "nginx:1.27").as_bytes())]);
    let (code, out, _) = gitgate(dir.path(), &["check", "-o", "json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 0);
    assert_eq!(report["verdict"], "passed");
    assert_eq!(report["exitCode"], 0);
}

/// Runs gitgate with stdout a pipe closed before it writes (`| head -0`); returns the exit
/// code and stderr.
fn closed_stdout(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), stderr)
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_verdicts_code() {
    let dir = pull_request(&[("apps/web.yaml", deployment("web", "busybox").as_bytes())]);
    for format in ["text", "json", "sarif", "junit", "github"] {
        let (code, err) = closed_stdout(dir.path(), &["check", "-o", format]);
        assert_eq!(code, 1, "{format}: the verdict's code: {err}");
        assert!(err.is_empty(), "{format}: quiet: {err}");
    }
    let (code, err) = closed_stdout(dir.path(), &["policies"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let (code, err) = closed_stdout(dir.path(), &["test", "-v"]);
    assert_eq!((code, err.as_str()), (0, ""));
    // A shell pipeline, as CI writes it: no "Broken pipe", the verdict's code.
    let script = format!(
        "set -o pipefail; '{}' check -o json | head -1",
        env!("CARGO_BIN_EXE_gitgate")
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "{");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn gitgate_test_exits_0_pass_1_fail_2_error() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        dir.path().join(name.split('/').next().unwrap())
    };
    let pass = write(
        "pass/p_test.rego",
        "package p\nimport rego.v1\ntest_ok if true\ntodo_test_later if false\n",
    );
    let fail = write(
        "fail/p_test.rego",
        "package p\nimport rego.v1\ntest_ok if true\ntest_no if false\n",
    );
    let error = write(
        "error/p_test.rego",
        "package p\nimport rego.v1\nx := 1 if true\nx := 2 if true\ntest_conflict if x == 1\ntest_no if false\n",
    );
    let broken = write(
        "broken/p.rego",
        "package p\n\nallow if {\n  input.x ==\n}\n",
    );
    let run = |path: &Path, extra: &[&str]| {
        let mut args = vec!["test"];
        args.extend_from_slice(extra);
        args.push(path.to_str().unwrap());
        gitgate(dir.path(), &args)
    };
    let (code, out, _) = run(&pass, &[]);
    assert_eq!(code, 0, "a skipped todo_ test does not fail the run: {out}");
    assert!(out.contains("SKIPPED: 1/2"), "{out}");
    let (code, out, _) = run(&fail, &[]);
    assert_eq!(code, 1, "a failing test: {out}");
    assert!(out.contains("data.p.test_no: FAIL"), "{out}");
    let (code, out, _) = run(&error, &[]);
    assert_eq!(code, 2, "a test that errors, beside one that fails: {out}");
    assert!(out.contains("ERROR"), "{out}");
    let (code, _, err) = run(&broken, &[]);
    assert_eq!(code, 2, "policies that do not compile: {err}");
    let (code, _, err) = run(&pass, &["--run", "nothing_matches"]);
    assert_eq!(code, 2, "no test run is not a pass: {err}");
    assert!(
        err.contains("no test_ rule found matching --run nothing_matches"),
        "{err}"
    );
    let (code, _, err) = run(&dir.path().join("nonexistent"), &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_root_that_matches_nothing_is_an_error_naming_it() {
    let dir = pull_request(&[("apps/web.yaml", deployment("web", "nginx:1.27").as_bytes())]);
    std::fs::write(
        dir.path().join("typo.yaml"),
        "repository:\n  paths: [apps, nope]\n",
    )
    .unwrap();
    let (code, _, err) = gitgate(dir.path(), &["check", "--trust-head", "-c", "typo.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("repository.paths: \"nope\" matches nothing at HEAD ("),
        "{err}"
    );
    // As a path argument with a range: named as one.
    let (code, _, err) = gitgate(dir.path(), &["check", "--base", "main", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the path argument \"nope\" matches nothing"),
        "{err}"
    );
    // A root that exists at one end only (removed by the pull request) is fine.
    let (code, out, err) = gitgate(dir.path(), &["check", "--base", "main", "apps"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn paths_that_do_not_exist_or_are_not_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = gitgate(dir.path(), &["check", "missing.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("missing.yaml: no such file or directory"),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("empty/README.md"), "no manifests").unwrap();
    let (code, _, err) = gitgate(dir.path(), &["check", "empty"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("empty: no manifest file"), "{err}");
    // A FIFO named explicitly is never opened (it would block forever).
    let fifo = dir.path().join("pipe.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping the FIFO case: mkfifo is not available");
        return;
    }
    let (code, _, err) = gitgate(dir.path(), &["check", "pipe.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pipe.yaml: not a regular file"), "{err}");
}

#[test]
fn checking_the_protected_branch_itself_is_an_empty_range() {
    let dir = support::repo_with(&[("apps/web.yaml", deployment("web", "busybox").as_bytes())]);
    let (code, out, err) = gitgate(dir.path(), &["check"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("the range is empty"), "{err}");
    assert!(
        err.contains("gitgate check <paths>"),
        "says how to check every file: {err}"
    );
    // ... which does check every file.
    let (code, out, _) = gitgate(dir.path(), &["check", "apps"]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn required_signatures_without_a_trusted_key_is_a_configuration_error() {
    let dir = pull_request(&[("apps/web.yaml", configmap("web").as_bytes())]);
    std::fs::write(
        dir.path().join("signed.yaml"),
        "approval:\n  requireSignatures: true\n",
    )
    .unwrap();
    let (code, out, err) = gitgate(dir.path(), &["check", "--trust-head", "-c", "signed.yaml"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("signed.yaml:2: approval.requireSignatures"),
        "{err}"
    );
    assert!(
        err.contains("approval.allowedSigners") && err.contains("approval.openpgpKeys"),
        "{err}"
    );
}

#[test]
fn revisions_are_named_by_flag_with_what_to_fetch() {
    let dir = pull_request(&[("apps/web.yaml", configmap("web").as_bytes())]);
    let (code, _, err) = gitgate(dir.path(), &["check", "--base", "nosuchbranch"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--base nosuchbranch: no such branch or commit"),
        "{err}"
    );
    assert!(err.contains("git fetch origin nosuchbranch"), "{err}");
    assert!(
        !err.contains("couldn't parse") && !err.contains("input="),
        "{err}"
    );
    let (code, _, err) = gitgate(dir.path(), &["check", "--head", "nosuchhead"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--head nosuchhead: no such branch"), "{err}");
    std::fs::write(
        dir.path().join("other.yaml"),
        "repository:\n  branch: trunk\n",
    )
    .unwrap();
    let (code, _, err) = gitgate(dir.path(), &["check", "--trust-head", "-c", "other.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "repository.branch trunk: the protected branch is neither refs/heads/trunk nor refs/remotes/origin/trunk; fetch it (`git fetch origin trunk`)"
        ),
        "{err}"
    );

    // A shallow clone: the history is missing, and the message says how to fetch it.
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    git(
        clone.path(),
        "a@example.com",
        0,
        &["clone", "-q", "--depth", "1", "--branch", "pr", &url, "c"],
    );
    let (code, _, err) = gitgate(&clone.path().join("c"), &["check", "--base", "HEAD~1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--base HEAD~1: the history it names is not in this clone"),
        "{err}"
    );
    assert!(
        err.contains("fetch-depth: 0") && err.contains("git fetch --unshallow"),
        "{err}"
    );
    assert!(
        !err.contains("delegate") && !err.contains("NthAncestor"),
        "{err}"
    );
}

#[test]
fn yaml_limits_are_said_in_gitgate_words() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..40 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    let deep = format!("a: {}{}\n", "[".repeat(70), "]".repeat(70));
    let dir = pull_request(&[
        ("apps/bomb.yaml", bomb.as_bytes()),
        ("apps/deep.yaml", deep.as_bytes()),
        (
            "apps/dup.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata:\n  x: 1\n  x: 2\n",
        ),
    ]);
    let (code, out, _) = gitgate(dir.path(), &["check", "--color", "never"]);
    assert_eq!(code, 2, "{out}");
    for want in [
        "apps/bomb.yaml:6: error [gitgate] invalid YAML: more than 250000 YAML nodes (an alias bomb?)",
        "apps/deep.yaml:1: error [gitgate] invalid YAML: nested deeper than 64 levels",
        "apps/dup.yaml:6: error [gitgate] invalid YAML: duplicate key `x`",
    ] {
        assert!(out.lines().any(|l| l == want), "{want}\n{out}");
    }
    for library in [
        "budget",
        "Nodes {",
        "Depth {",
        "DuplicateKeyPolicy",
        "Options",
    ] {
        assert!(!out.contains(library), "{library}: {out}");
    }
}

#[test]
fn an_override_naming_no_policy_names_the_file_and_key() {
    let dir = pull_request(&[("apps/web.yaml", configmap("web").as_bytes())]);
    std::fs::write(
        dir.path().join("gitgate.yaml"),
        "policies:\n  enforcement: {latest-tags: warn}\n",
    )
    .unwrap();
    let (code, _, err) = gitgate(dir.path(), &["check", "--trust-head"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "gitgate.yaml: policies.enforcement.latest-tags: no policy is named \"latest-tags\""
        ),
        "{err}"
    );
    assert!(!err.contains(":0:"), "{err}");
}
