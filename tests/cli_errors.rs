//! Bad input on the command line: each gets a clear error that names the input, exit code 2
//! (in every command, `gitgate test` included), and never a panic.

use std::path::Path;
use std::process::Command;

fn gitgate(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(args)
        .output()
        .expect("gitgate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "gitgate panicked:\n{text}");
    (out.status.code().unwrap_or(-1), text)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sdemo
spec:
  crd:
    spec:
      names:
        kind: K8sDemo
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdemo
        violation[{"msg": msg}] {
          input.review.object.metadata.labels.bad
          msg := "bad label"
        }
"#;

const CONSTRAINT: &str =
    "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sDemo\nmetadata:\n  name: demo\n";

const SUITE: &str = "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n- name: t\n  template: template.yaml\n  constraint: constraint.yaml\n  cases:\n  - name: bad\n    object: bad.yaml\n    assertions:\n    - violations: 1\n      message: bad label\n  - name: good\n    object: good.yaml\n    assertions:\n    - violations: no\n";

fn suite_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "template.yaml", TEMPLATE);
    write(dir.path(), "constraint.yaml", CONSTRAINT);
    write(dir.path(), "suite.yaml", SUITE);
    write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {bad: \"yes\"}}\n",
    );
    write(
        dir.path(),
        "good.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
    );
    dir
}

#[test]
fn a_passing_suite_exits_0_and_a_failing_one_1() {
    let dir = suite_dir();
    let suite = dir.path().join("suite.yaml");
    let (code, out) = gitgate(&["verify", suite.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 suites, 1 tests, 2 cases: 1 suites passed"),
        "{out}"
    );
    write(
        dir.path(),
        "good.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {bad: x}}\n",
    );
    let (code, out) = gitgate(&["verify", suite.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--- FAIL: good"), "{out}");
    assert!(out.contains("got 1 violations, want 0"), "{out}");
}

#[test]
fn a_template_that_does_not_compile_is_an_error_naming_file_and_line() {
    let dir = suite_dir();
    let broken = TEMPLATE.replace("msg := \"bad label\"", "msg := ");
    let file = write(dir.path(), "template.yaml", &broken);
    let (code, out) = gitgate(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    // The Rego starts on line 13 of the YAML file; the error is on its 5th line or after.
    assert!(
        out.contains(&format!("{file}:1")),
        "names the template and its line: {out}"
    );
    assert!(out.contains("does not compile"), "{out}");
}

#[test]
fn a_suite_naming_a_missing_file_is_an_error() {
    let dir = suite_dir();
    std::fs::remove_file(dir.path().join("bad.yaml")).unwrap();
    let (code, out) = gitgate(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("bad.yaml: cannot read"), "{out}");
}

#[test]
fn invalid_yaml_is_an_error_naming_file_and_line() {
    let dir = suite_dir();
    let file = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: [p\n",
    );
    let (code, out) = gitgate(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&format!("{file}:")), "{out}");
    assert!(out.contains("invalid YAML"), "{out}");
}

#[test]
fn an_alias_bomb_is_refused() {
    let dir = suite_dir();
    let mut bomb = String::from(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for i in 1..40 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    let file = write(dir.path(), "bad.yaml", &bomb);
    let (code, out) = gitgate(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&file), "{out}");
}

#[test]
fn a_constraint_without_template_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "constraint.yaml", CONSTRAINT);
    let (code, out) = gitgate(&["policies", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("{file}:1: constraint demo is of kind K8sDemo")),
        "{out}"
    );
}

#[test]
fn rego_that_does_not_parse_names_file_and_line_in_test() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.rego",
        "package p\n\nallow if {\n  input.x ==\n}\n",
    );
    let (code, out) = gitgate(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(
        code, 2,
        "policies that do not compile could not be tested: {out}"
    );
    assert!(
        out.contains(&format!("{file}:5:")) || out.contains(&format!("{file}:4:")),
        "{out}"
    );
}

#[test]
fn failing_rego_tests_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p_test.rego",
        "package p\nimport rego.v1\ntest_ok if true\ntest_no if false\n",
    );
    let (code, out) = gitgate(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("data.p.test_no: FAIL"), "{out}");
    assert!(
        out.contains("PASS: 1/2") && out.contains("FAIL: 1/2"),
        "{out}"
    );
    let (code, out) = gitgate(&["test", "--run", "test_ok", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn missing_paths_and_bad_flags_are_usage_errors() {
    let (code, out) = gitgate(&["verify", "/nonexistent/suites"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("/nonexistent/suites"), "{out}");
    let (code, _) = gitgate(&["verify"]);
    assert_eq!(code, 2);
    let (code, _) = gitgate(&["frobnicate"]);
    assert_eq!(code, 2);
}

#[test]
fn builtin_library_tests_pass() {
    let (code, out) = gitgate(&["test"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS: "), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn verify_with_a_closed_stdout_ends_quietly_with_its_code() {
    let dir = suite_dir();
    write(
        dir.path(),
        "good.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {bad: x}}\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(["verify", dir.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "the failing case's code");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
