//! conftest's command line and semantics on the real binary: `gitgate check FILES` with
//! conftest-style policies, and `gitgate test`/`verify -p` as conftest's `verify`. Each test is
//! written against conftest's documented behaviour (docs/options.md, docs/exceptions.md,
//! docs/output.md): the counts, the lines, the exit codes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs gitgate in `dir` with `args` (and `stdin`), returning (exit code, stdout, stderr).
fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

const KUBERNETES: &str = "package kubernetes\nimport rego.v1\nis_deployment if input.kind == \"Deployment\"\nis_service if input.kind == \"Service\"\n";

const DENY: &str = r#"package main
import rego.v1
import data.kubernetes

deny contains msg if {
  kubernetes.is_deployment
  not input.spec.template.spec.securityContext.runAsNonRoot
  msg := sprintf("%s runs as root", [input.metadata.name])
}

deny contains msg if {
  kubernetes.is_deployment
  not input.metadata.labels.app
  msg := "app label required"
}

warn contains msg if {
  kubernetes.is_service
  msg := sprintf("service %s", [input.metadata.name])
}
"#;

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec: {}\n";
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: front\n";

fn k8s_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("policy/kubernetes.rego", KUBERNETES),
            ("policy/deny.rego", DENY),
            ("deployment.yaml", DEPLOYMENT),
            ("service.yaml", SERVICE),
        ],
    );
    dir
}

#[test]
fn failures_are_printed_and_counted_as_conftest_does() {
    let dir = k8s_dir();
    let (code, out, err) = run(
        dir.path(),
        &["check", "-p", "policy", "deployment.yaml", "--no-color"],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        vec![
            // Messages in the order of the set (sorted), as OPA gives them.
            "FAIL - deployment.yaml - main - app label required",
            "FAIL - deployment.yaml - main - web runs as root",
            "3 tests, 1 passed, 0 warnings, 2 failures, 0 exceptions",
        ],
        "{out}"
    );
    assert!(!out.contains('\x1b'), "--no-color: {out:?}");
}

#[test]
fn warnings_pass_unless_fail_on_warn() {
    let dir = k8s_dir();
    let (code, out, _) = run(dir.path(), &["check", "-p", "policy", "service.yaml"], None);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARN - service.yaml - main - service front"),
        "{out}"
    );
    assert!(
        out.contains("3 tests, 2 passed, 1 warning, 0 failures, 0 exceptions"),
        "{out}"
    );
    let (code, _, _) = run(
        dir.path(),
        &["check", "--fail-on-warn", "-p", "policy", "service.yaml"],
        None,
    );
    assert_eq!(code, 1);
}

#[test]
fn a_failing_file_fails_the_run_whatever_its_place() {
    let dir = k8s_dir();
    let (code, out, _) = run(
        dir.path(),
        &["check", "-p", "policy", "deployment.yaml", "service.yaml"],
        None,
    );
    assert_eq!(code, 1, "{out}");
}

#[test]
fn namespaces_are_selected_by_glob_or_all() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/main.rego",
                "package main\nimport rego.v1\ndeny contains \"main says no\" if input.x\n",
            ),
            (
                "policy/commands.rego",
                "package commands\nimport rego.v1\ndeny contains \"commands says no\" if input.x\n",
            ),
            (
                "policy/nested.rego",
                "package main.gke\nimport rego.v1\ndeny contains \"gke says no\" if input.x\n",
            ),
            ("in.json", "{\"x\": true}"),
        ],
    );
    let says = |args: &[&str]| {
        let mut all = vec!["check", "-p", "policy", "in.json"];
        all.extend_from_slice(args);
        let (code, out, err) = run(dir.path(), &all, None);
        (code, format!("{out}{err}"))
    };
    let (code, out) = says(&[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("main says no")
            && !out.contains("commands says no")
            && !out.contains("gke says no"),
        "{out}"
    );
    let (_, out) = says(&["--namespace", "c*"]);
    assert!(
        !out.contains("main says no") && out.contains("commands says no"),
        "{out}"
    );
    let (_, out) = says(&["-n", "main.gke"]);
    assert!(
        out.contains("gke says no")
            && out.contains("1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions"),
        "{out}"
    );
    let (_, out) = says(&["--namespace", "*"]);
    assert!(
        out.contains("main says no")
            && out.contains("commands says no")
            && out.contains("gke says no"),
        "{out}"
    );
    let (_, out) = says(&["--all-namespaces"]);
    assert!(
        out.contains("3 tests, 0 passed, 0 warnings, 3 failures"),
        "{out}"
    );
    let (code, out) = says(&["--namespace", "notpresent"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 tests, 0 passed"), "{out}");
}

#[test]
fn stdin_is_read_as_yaml_or_with_the_parser_given() {
    let dir = k8s_dir();
    let (code, out, _) = run(
        dir.path(),
        &["check", "-p", "policy", "-"],
        Some(DEPLOYMENT),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL - - main - web runs as root"),
        "stdin is `-`: {out}"
    );
    let json = "{\"kind\": \"Service\", \"metadata\": {\"name\": \"s\"}}";
    let (code, out, _) = run(
        dir.path(),
        &["check", "--parser", "json", "-p", "policy", "-"],
        Some(json),
    );
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = run(
        dir.path(),
        &["check", "--parser", "cue", "-p", "policy", "-"],
        Some("a = 1"),
    );
    assert_eq!(code, 1, "conftest's error exit");
    assert!(
        err.contains("\"cue\" parser is not supported") && err.contains("-: "),
        "the parser and the input are named: {err}"
    );
}

#[test]
fn conftest_toml_in_the_working_directory_is_read() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "conftest.toml",
                "# as conftest reads it\npolicy = \"rules\"\nnamespace = \"team\"\n",
            ),
            (
                "rules/deny.rego",
                "package team\nimport rego.v1\ndeny contains \"no root\" if not input.spec.runAsNonRoot\n",
            ),
            ("pod.yaml", "kind: Pod\nspec: {}\n"),
        ],
    );
    let (code, out, err) = run(dir.path(), &["check", "pod.yaml"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAIL - pod.yaml - team - no root"), "{out}");
    // -c FILE.toml names it.
    std::fs::rename(
        dir.path().join("conftest.toml"),
        dir.path().join("other.toml"),
    )
    .unwrap();
    let (code, out, _) = run(dir.path(), &["-c", "other.toml", "check", "pod.yaml"], None);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn data_flag_and_data_files_beside_policies_are_data() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/ports.rego",
                "package main\nimport rego.v1\nimport data.services\ndeny contains sprintf(\"port %v\", [p]) if { p := input.spec.ports[_].port; p == services.ports[_] }\n",
            ),
            ("exclusions/services.yaml", "services:\n  ports: [22, 21]\n"),
            ("svc.yaml", "kind: Service\nspec:\n  ports: [{port: 22}]\n"),
        ],
    );
    let (code, out, _) = run(dir.path(), &["check", "-p", "policy", "svc.yaml"], None);
    assert_eq!(code, 0, "no data, no finding: {out}");
    let (code, out, err) = run(
        dir.path(),
        &["check", "-p", "policy", "-d", "exclusions", "svc.yaml"],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("port 22"), "{out}");
    // A data file beside the policies is data too (an allow-list must not allow everything).
    write(
        dir.path(),
        &[("policy/data.json", "{\"services\": {\"ports\": [22]}}")],
    );
    let (code, out, _) = run(dir.path(), &["check", "-p", "policy", "svc.yaml"], None);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn combine_gives_one_input_of_paths_and_contents() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/dup.rego",
                "package main\nimport rego.v1\ndeny contains sprintf(\"duplicate %s in %s\", [input[i].contents.metadata.name, input[i].path]) if { some i, j; i != j; input[i].contents.metadata.name == input[j].contents.metadata.name }\n",
            ),
            ("a.yaml", "metadata: {name: x}\n"),
            ("b.yaml", "metadata: {name: y}\n---\nmetadata: {name: x}\n"),
        ],
    );
    let (code, out, err) = run(
        dir.path(),
        &["check", "--combine", "-p", "policy", "a.yaml", "b.yaml"],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("- Combined - main - duplicate x in a.yaml"),
        "{out}"
    );
    assert!(out.contains("duplicate x in b.yaml"), "{out}");
    let (code, out, _) = run(
        dir.path(),
        &["check", "-p", "policy", "a.yaml", "b.yaml"],
        None,
    );
    assert_eq!(code, 0, "without --combine each document alone: {out}");
}

#[test]
fn any_document_is_input_as_written() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/deny.rego",
                "package main\nimport rego.v1\ndeny contains \"a namespace is required\" if { input.kind == \"Deployment\"; not input.metadata.namespace }\ndeny contains \"no latest\" if endswith(input.services[_].image, \":latest\")\n",
            ),
            (
                "deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
            ),
            (
                "compose.yml",
                "version: \"3.9\"\nservices:\n  web: {image: \"nginx:latest\"}\n",
            ),
            (
                "plan.json",
                "{\"format_version\": \"1.2\", \"resource_changes\": []}",
            ),
        ],
    );
    let (code, out, err) = run(
        dir.path(),
        &[
            "check",
            "-p",
            "policy",
            "deploy.yaml",
            "compose.yml",
            "plan.json",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAIL - deploy.yaml - main - a namespace is required"),
        "no namespace injected: {out}"
    );
    assert!(
        out.contains("FAIL - compose.yml - main - no latest"),
        "a compose file is evaluated: {out}"
    );
    assert!(
        out.contains("6 tests, 4 passed, 0 warnings, 2 failures"),
        "{out}"
    );
}

#[test]
fn an_empty_document_is_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/deny.rego",
                "package main\nimport rego.v1\ndeny contains \"empty\" if input == null\n",
            ),
            ("empty.yaml", "# nothing\n"),
        ],
    );
    let (code, out, _) = run(dir.path(), &["check", "-p", "policy", "empty.yaml"], None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("1 test, 0 passed, 0 warnings, 1 failure"),
        "{out}"
    );
}

const EXCEPTIONS: &str = r#"package main
import rego.v1

deny_run_as_root contains "runs as root" if input.kind == "Deployment"

exception contains rules if {
  input.metadata.name == "allowed"
  rules := ["run_as_root"]
}
"#;

#[test]
fn exceptions_are_counted_printed_and_suppressible() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("policy/p.rego", EXCEPTIONS),
            (
                "d.yaml",
                "kind: Deployment\nmetadata: {name: allowed}\n---\nkind: Deployment\nmetadata: {name: other}\n",
            ),
        ],
    );
    let (code, out, _) = run(dir.path(), &["check", "-p", "policy", "d.yaml"], None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("EXCP - d.yaml - main - data.main.exception[_][_] == \"run_as_root\""),
        "{out}"
    );
    assert!(
        out.contains("2 tests, 0 passed, 0 warnings, 1 failure, 1 exception"),
        "{out}"
    );
    let (_, out, _) = run(
        dir.path(),
        &["check", "--suppress-exceptions", "-p", "policy", "d.yaml"],
        None,
    );
    assert!(!out.contains("EXCP"), "{out}");
    assert!(
        out.contains("1 failure, 1 exception"),
        "still counted: {out}"
    );
}

#[test]
fn tap_table_json_and_quiet() {
    let dir = k8s_dir();
    let (_, out, _) = run(
        dir.path(),
        &["check", "-p", "policy", "-o", "tap", "deployment.yaml"],
        None,
    );
    assert!(
        out.starts_with("1..3\nnot ok 1 - deployment.yaml - main - app label required"),
        "{out}"
    );
    assert!(
        out.contains("ok 3 - deployment.yaml - main - SUCCESS"),
        "{out}"
    );
    let (_, out, _) = run(
        dir.path(),
        &["check", "-p", "policy", "-o", "table", "deployment.yaml"],
        None,
    );
    assert!(out.contains("failure") && out.contains("success"), "{out}");
    let (code, out, _) = run(
        dir.path(),
        &["check", "-p", "policy", "-o", "json", "deployment.yaml"],
        None,
    );
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["items"][0]["policy"], "main", "{report:#}");
    assert_eq!(report["items"].as_array().unwrap().len(), 2);
    let (code, out, _) = run(
        dir.path(),
        &["check", "--quiet", "-p", "policy", "service.yaml"],
        None,
    );
    assert_eq!(
        (code, out.as_str()),
        (0, ""),
        "a run that passes prints nothing: {out}"
    );
    let (code, out, _) = run(
        dir.path(),
        &["check", "--quiet", "-p", "policy", "deployment.yaml"],
        None,
    );
    assert_eq!(code, 1);
    assert!(out.contains("2 failures"), "a failing run prints: {out}");
    let (code, _, _) = run(
        dir.path(),
        &["check", "--no-fail", "-p", "policy", "deployment.yaml"],
        None,
    );
    assert_eq!(code, 0, "--no-fail");
    let (code, _, _) = run(
        dir.path(),
        &[
            "check",
            "--ignore",
            "deploy",
            "-p",
            "policy",
            "deployment.yaml",
            "service.yaml",
        ],
        None,
    );
    assert_eq!(code, 0, "--ignore skips deployment.yaml");
}

#[test]
fn print_output_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/p.rego",
                "package main\nimport rego.v1\ndeny contains \"x\" if {\n  print(input.name)\n  input.name == \"web\"\n}\n",
            ),
            ("in.yaml", "name: web\n"),
        ],
    );
    let (_, out, _) = run(
        dir.path(),
        &["check", "--no-color", "-p", "policy", "in.yaml"],
        None,
    );
    let first = out.lines().next().unwrap_or("");
    assert_eq!(first, "PRNT   policy/p.rego:4: web", "{out}");
}

#[test]
fn dockerfiles_are_read_as_conftest_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/images.rego",
                "package main\nimport rego.v1\ndeny contains sprintf(\"image %s\", [v]) if { input[i].Cmd == \"from\"; v := input[i].Value[0]; startswith(v, \"openjdk\") }\n",
            ),
            (
                "policy/commands.rego",
                "package commands\nimport rego.v1\ndeny contains sprintf(\"run %s\", [v]) if { input[i].Cmd == \"run\"; v := input[i].Value[0]; contains(v, \"apk\") }\n",
            ),
            (
                "Dockerfile",
                "FROM openjdk:8-jdk-alpine\nRUN apk add --no-cache \\\n    curl\n",
            ),
        ],
    );
    let (code, out, err) = run(
        dir.path(),
        &["check", "-p", "policy", "Dockerfile", "--all-namespaces"],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("image openjdk:8-jdk-alpine"), "{out}");
    assert!(out.contains("run apk add --no-cache"), "{out}");
}

#[test]
fn conftest_builtins_read_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/p.rego",
                "package main\nimport rego.v1\ndeny contains \"no replicas\" if not input.spec.replicas\n",
            ),
            (
                "policy/p_test.rego",
                "package main\nimport rego.v1\ntest_file if {\n  cfg := parse_config_file(\"fixture.yaml\")\n  deny[\"no replicas\"] with input as cfg\n}\ntest_combined if {\n  all := parse_combined_config_files([\"fixture.yaml\", \"other.json\"])\n  count(all) == 2\n  all[1].contents.a == 1\n}\ntest_parse_config if {\n  parse_config(\"json\", \"{\\\"a\\\": 2}\").a == 2\n}\n",
            ),
            ("policy/fixture.yaml", "kind: Deployment\nspec: {}\n"),
            ("policy/other.json", "{\"a\": 1}"),
        ],
    );
    let (code, out, err) = run(dir.path(), &["test", "-p", "policy"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("3 tests, 3 passed, 0 warnings, 0 failures, 0 exceptions"),
        "{out}"
    );
}

#[test]
fn verify_counts_filters_and_reports() {
    let dir = k8s_dir();
    write(
        dir.path(),
        &[(
            "policy/deny_test.rego",
            "package main\nimport rego.v1\ntest_root if deny[\"x runs as root\"] with input as {\"kind\": \"Deployment\", \"metadata\": {\"name\": \"x\"}}\ntest_service_warns if count(warn) == 1 with input as {\"kind\": \"Service\", \"metadata\": {\"name\": \"s\"}}\n",
        )],
    );
    for command in ["test", "verify"] {
        let (code, out, err) = run(dir.path(), &[command, "-p", "policy"], None);
        assert_eq!(code, 0, "{command}: {out}{err}");
        assert!(out.contains("2 tests, 2 passed"), "{command}: {out}");
    }
    let (_, out, _) = run(
        dir.path(),
        &["test", "-p", "policy", "--namespace", "ma*"],
        None,
    );
    assert!(out.contains("2 tests, 2 passed"), "{out}");
    let (code, out, _) = run(
        dir.path(),
        &["test", "-p", "policy", "--namespace", "none"],
        None,
    );
    assert_eq!(code, 0);
    assert!(out.contains("0 tests, 0 passed"), "{out}");
    let (_, out, _) = run(
        dir.path(),
        &["test", "-p", "policy", "--report", "fails"],
        None,
    );
    assert!(
        out.contains("data.main.test_root: PASS") && out.contains("PASS: 2/2"),
        "{out}"
    );
    let (_, out, err) = run(
        dir.path(),
        &["test", "-p", "policy", "-o", "json", "--report", "fails"],
        None,
    );
    assert!(format!("{out}{err}").contains("report flag is supported with stdout only"));
    let (_, out, _) = run(dir.path(), &["test", "-p", "policy", "-o", "tap"], None);
    assert!(out.contains("ok 1"), "{out}");
    let (_, out, _) = run(dir.path(), &["test", "-p", "policy", "--trace"], None);
    assert!(out.contains("data.kubernetes.is_deployment"), "{out}");
    write(
        dir.path(),
        &[(
            "policy/fail_test.rego",
            "package main\nimport rego.v1\ntest_fails if {\n  trace(\"a note\")\n  false\n}\n",
        )],
    );
    let (code, out, _) = run(
        dir.path(),
        &["test", "-p", "policy", "--report", "fails"],
        None,
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILURES")
            && out.contains("data.main.test_fails: FAIL")
            && out.contains("FAIL: 1/3"),
        "{out}"
    );
    assert!(
        !out.contains("Note"),
        "notes with --report notes only: {out}"
    );
    let (_, out, _) = run(
        dir.path(),
        &["test", "-p", "policy", "--report", "notes"],
        None,
    );
    assert!(out.contains("Note \"a note\""), "{out}");
}

#[test]
fn strict_and_capabilities_refuse_what_conftest_refuses() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/p.rego",
                "package main\nimport rego.v1\nf(x, y) if input.a == x\ndeny contains \"d\" if {\n  unused := 1\n  f(1, 2)\n}\n",
            ),
            (
                "send/p.rego",
                "package main\nimport rego.v1\ndeny contains \"d\" if http.send({\"url\": \"https://x\", \"method\": \"GET\"}).status_code == 200\n",
            ),
            ("caps.json", "{\"builtins\": [{\"name\": \"count\"}]}"),
            ("in.yaml", "a: 1\n"),
        ],
    );
    let (code, _, err) = run(
        dir.path(),
        &["check", "--strict", "-p", "policy", "in.yaml"],
        None,
    );
    assert_eq!(
        code, 1,
        "conftest answers 1 when its policies do not compile"
    );
    assert!(
        err.contains("assigned var unused unused") && err.contains("unused argument y"),
        "{err}"
    );
    let (code, _, err) = run(
        dir.path(),
        &[
            "check",
            "--capabilities",
            "caps.json",
            "-p",
            "send",
            "in.yaml",
        ],
        None,
    );
    assert_eq!(
        code, 1,
        "conftest answers 1 when its policies do not compile"
    );
    assert!(err.contains("undefined function http.send"), "{err}");
}

#[test]
fn a_package_that_follows_no_convention_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "policy/security.rego",
            "package kubernetes.security\nimport rego.v1\ndeny contains \"privileged\" if input.spec.privileged\n",
        )],
    );
    let (code, out, err) = run(dir.path(), &["policies", "policy"], None);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("policy/security.rego")
            && err.contains("package kubernetes.security")
            && err.contains("no policy convention"),
        "{err}"
    );
    // conftest mode evaluates it when asked for its namespace.
    write(dir.path(), &[("pod.yaml", "spec: {privileged: true}\n")]);
    let (code, out, _) = run(
        dir.path(),
        &[
            "check",
            "-p",
            "policy",
            "--namespace",
            "kubernetes.security",
            "pod.yaml",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}");
}

#[test]
fn beside_gitgate_policies_conftest_policies_still_read_the_manifest_as_written() {
    // A gitgate policy in the set: gitgate's mode (every document a CREATE), where a
    // namespaced object with no namespace is given the default one; conftest-style policies
    // still see the manifest as written.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/ns.rego",
                "package main\nimport rego.v1\ndeny contains \"a namespace is required\" if not input.metadata.namespace\n",
            ),
            (
                "policy/native.rego",
                "# METADATA\n# custom:\n#   name: no-debug\npackage team.nodebug\nimport rego.v1\nviolation contains {\"msg\": \"debug\"} if input.review.object.metadata.name == \"debug\"\n",
            ),
            (
                "deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
            ),
            (
                "ok.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ok, namespace: default}\n",
            ),
        ],
    );
    let (code, out, err) = run(
        dir.path(),
        &[
            "check",
            "-o",
            "json",
            "-p",
            "policy",
            "deploy.yaml",
            "ok.yaml",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{report:#}");
    assert_eq!(items[0]["message"], "a namespace is required");
    assert_eq!(items[0]["path"], "deploy.yaml");
}

/// conftest's exit codes in its mode (docs/options.md, `--fail-on-warn`): a run that cannot
/// start (no policy under `-p`, a policy that does not compile) is its command's error, exit 1;
/// under `--fail-on-warn`, failures are 2 and warnings alone 1.
#[test]
fn exit_codes_are_conftests() {
    let dir = k8s_dir();
    write(dir.path(), &[("empty/readme.md", "no policies here\n")]);
    let (code, _, err) = run(
        dir.path(),
        &["check", "-p", "empty", "deployment.yaml"],
        None,
    );
    assert_eq!(code, 1, "no policies: {err}");
    assert!(err.contains("no policies found"), "{err}");
    let (code, _, _) = run(dir.path(), &["test", "-p", "empty"], None);
    assert_eq!(code, 1, "verify without policies");
    let (code, _, _) = run(
        dir.path(),
        &["check", "--fail-on-warn", "-p", "policy", "deployment.yaml"],
        None,
    );
    assert_eq!(code, 2, "failures under --fail-on-warn");
    let (code, _, _) = run(
        dir.path(),
        &["check", "--fail-on-warn", "-p", "policy", "service.yaml"],
        None,
    );
    assert_eq!(code, 1, "warnings only under --fail-on-warn");
}

/// HCL: `.tf`, `.tfvars` and `.hcl` files are HCL 2 in hcl2json's shape (a block's labels
/// nest, its body is a list); `--parser hcl1` gives HCL 1's lists of objects.
#[test]
fn terraform_is_read_as_hcl2_and_hcl1() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "main.tf",
                "provider \"cloud\" {\n  region = \"eu-1\"\n}\n\nresource \"lb_listener\" \"web\" {\n  port     = 80\n  protocol = \"HTTP\"\n  target   = \"${lb.web.arn}\"\n}\n",
            ),
            (
                "policy/lb.rego",
                "package main\nimport rego.v1\ndeny contains msg if {\n  some name, listeners in input.resource.lb_listener\n  listeners[0].protocol == \"HTTP\"\n  msg := sprintf(\"listener %s uses HTTP (%v)\", [name, listeners[0].target])\n}\n",
            ),
            (
                "hcl1/p.rego",
                "package main\nimport rego.v1\ndeny contains \"region\" if input.provider[0].cloud[0].region != \"us-1\"\n",
            ),
        ],
    );
    let (code, out, err) = run(dir.path(), &["check", "-p", "policy", "main.tf"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAIL - main.tf - main - listener web uses HTTP (${lb.web.arn})"),
        "{out}"
    );
    let (code, out, _) = run(
        dir.path(),
        &["check", "--parser", "hcl1", "-p", "hcl1", "main.tf"],
        None,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL - main.tf - main - region"), "{out}");
    write(dir.path(), &[("bad.tf", "resource \"a\" {\n")]);
    let (code, _, err) = run(dir.path(), &["check", "-p", "policy", "bad.tf"], None);
    assert_eq!(code, 1);
    assert!(err.contains("bad.tf: invalid hcl2"), "{err}");
}

/// XML as goxml2json gives it: attributes `-name`, repeated elements a list, text a string.
#[test]
fn xml_is_read_as_goxml2json_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "app.xml",
                "<?xml version=\"1.0\"?>\n<app version=\"2\">\n  <module><name>core</name><level>1</level></module>\n  <module><name>web &amp; api</name><level>3</level></module>\n</app>\n",
            ),
            (
                "policy/xml.rego",
                "package main\nimport rego.v1\ndeny contains msg if {\n  some m in input.app.module\n  to_number(m.level) > 2\n  msg := sprintf(\"%s is level %s of app v%s\", [m.name, m.level, input.app[\"-version\"]])\n}\n",
            ),
        ],
    );
    let (code, out, err) = run(dir.path(), &["check", "-p", "policy", "app.xml"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("web & api is level 3 of app v2"), "{out}");
}

/// SPDX's tag-value form is read (as the SPDX JSON document), and `gitgate parse` prints
/// what conftest mode reads, as `conftest parse` does.
#[test]
fn spdx_tag_value_and_parse() {
    let dir = k8s_dir();
    write(
        dir.path(),
        &[
            (
                "sbom.spdx",
                "SPDXVersion: SPDX-2.2\nDataLicense: CC0-1.0\nSPDXID: SPDXRef-DOCUMENT\nDocumentName: demo\nDocumentNamespace: https://example.com/demo\nCreator: Tool: handmade\nCreated: 2024-01-01T00:00:00Z\n",
            ),
            (
                "spdx/p.rego",
                "package main\nimport rego.v1\ndeny contains msg if {\n  input.dataLicense != \"MIT\"\n  msg := sprintf(\"data license %s\", [input.dataLicense])\n}\n",
            ),
            ("Dockerfile", "FROM alpine\nRUN echo hi\n"),
        ],
    );
    let (code, out, err) = run(dir.path(), &["check", "-p", "spdx", "sbom.spdx"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("data license CC0-1.0"), "{out}");

    let (code, out, _) = run(dir.path(), &["parse", "deployment.yaml"], None);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["kind"], "Deployment", "one file: its document");
    assert!(
        out.contains("\n  \"kind\": \"Deployment\""),
        "indented: {out}"
    );
    let (code, out, _) = run(
        dir.path(),
        &["parse", "deployment.yaml", "service.yaml"],
        None,
    );
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["service.yaml"]["kind"], "Service",
        "by file name: {out}"
    );
    let (code, out, _) = run(
        dir.path(),
        &["parse", "--parser", "dockerfile", "-"],
        Some("# syntax=docker/dockerfile:1.4\nFROM alpine\nCOPY --link /a /b\n"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"Cmd\": \"copy\""), "{out}");
    let (code, _, err) = run(
        dir.path(),
        &["parse", "--parser", "cue", "Dockerfile"],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("Dockerfile") && err.contains("\"cue\""),
        "{err}"
    );
}

/// A file of a format gitgate has no parser for is an error naming the parser and the file,
/// never a silent pass.
#[test]
fn a_format_without_a_parser_is_named() {
    let dir = k8s_dir();
    write(dir.path(), &[("app.cue", "a: 1\n")]);
    let (code, out, err) = run(dir.path(), &["check", "-p", "policy", "app.cue"], None);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("app.cue") && err.contains("\"cue\" parser is not supported"),
        "{err}"
    );
}

/// `--combine` over a policy whose comprehension declares again a variable of its rule (valid
/// OPA: the comprehension's own local), and `net.lookup_ip_addr`, whose failure is a built-in
/// error (`--show-builtin-errors` fails the run with it).
#[test]
fn combined_policies_and_builtin_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("a.yaml", "metadata:\n  name: x\n"),
            ("b.yaml", "metadata:\n  name: x\n"),
            (
                "policy/dup.rego",
                "package main\nimport rego.v1\ndeny contains msg if {\n  name := input[_].contents.metadata.name\n  same := [name | some i; input[i].contents.metadata.name == name; name := input[i].path]\n  count(same) > 1\n  msg := sprintf(\"%s in %v\", [name, same])\n}\n",
            ),
            (
                "dns/p.rego",
                "package main\nimport rego.v1\ndeny contains \"resolves\" if net.lookup_ip_addr(\"no-such-host.invalid\")\n",
            ),
        ],
    );
    let (code, out, err) = run(
        dir.path(),
        &[
            "check",
            "--combine",
            "-p",
            "policy",
            "a.yaml",
            "b.yaml",
            "--no-color",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAIL - Combined - main - x in [\"a.yaml\", \"b.yaml\"]"),
        "{out}"
    );
    let (code, out, _) = run(dir.path(), &["check", "-p", "dns", "a.yaml"], None);
    assert_eq!(code, 0, "an error is undefined: {out}");
    let (code, _, err) = run(
        dir.path(),
        &["check", "--show-builtin-errors", "-p", "dns", "a.yaml"],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("built-in error") && err.contains("no-such-host.invalid"),
        "{err}"
    );
}

/// VCL as go-vcl decodes it: declarations by type and name, `.field = "value"` attributes, an
/// ACL's entries as a list.
#[test]
fn vcl_declarations_are_read() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "cache.vcl",
                "vcl 4.1;\nbackend api {\n    .host = \"10.1.2.3\";\n    .port = \"9090\";\n}\nacl admins {\n    \"192.168.0.1\";\n}\nsub vcl_recv {\n    return (pass);\n}\n",
            ),
            (
                "policy/vcl.rego",
                "package main\nimport rego.v1\ndeny contains msg if {\n  input.backend.api.port != \"80\"\n  msg := sprintf(\"api backend on port %s\", [input.backend.api.port])\n}\ndeny contains msg if {\n  some a in input.acl.admins\n  msg := sprintf(\"admin %s\", [a])\n}\n",
            ),
        ],
    );
    let (code, out, err) = run(dir.path(), &["check", "-p", "policy", "cache.vcl"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("api backend on port 9090"), "{out}");
    assert!(out.contains("admin 192.168.0.1"), "{out}");
}

/// EDN as conftest's parser gives it: keyword keys and values as their text (`":env"`), other
/// scalars as strings.
#[test]
fn edn_is_read_with_keywords_as_text() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "app.edn",
                ";; settings\n{:env :staging\n :replicas 3\n :zones #{:a :b}\n :db {:host \"db.local\"}}\n",
            ),
            (
                "policy/edn.rego",
                "package main\nimport rego.v1\ndeny contains msg if {\n  input[\":env\"] == \":staging\"\n  input[\":replicas\"] == \"3\"\n  msg := sprintf(\"staging on %s in %d zones\", [input[\":db\"][\":host\"], count(input[\":zones\"])])\n}\n",
            ),
        ],
    );
    let (code, out, err) = run(dir.path(), &["check", "-p", "policy", "app.edn"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("staging on db.local in 2 zones"), "{out}");
    write(dir.path(), &[("bad.edn", "{:a \n")]);
    let (code, _, err) = run(dir.path(), &["check", "-p", "policy", "bad.edn"], None);
    assert_eq!(code, 1);
    assert!(err.contains("bad.edn: invalid edn"), "{err}");
}

/// Text protos: the `# proto-message:` type looked up in the `.proto` files of
/// `--proto-file-dirs`, the message as protobuf's JSON with proto field names; without the
/// flag, the type cannot be looked up and the run says so.
#[test]
fn text_protos_are_read_through_their_proto_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "protos/limits.proto",
                "syntax = \"proto3\";\npackage shop.config;\nmessage Limits {\n  string service_name = 1;\n  int32 max_connections = 2;\n}\n",
            ),
            (
                "limits.textproto",
                "# proto-message: shop.config.Limits\nservice_name: \"cart\"\nmax_connections: 5000\n",
            ),
            (
                "policy/limits.rego",
                "package main\nimport rego.v1\ndeny contains msg if {\n  input.max_connections > 1000\n  msg := sprintf(\"%s allows %d connections\", [input.service_name, input.max_connections])\n}\n",
            ),
        ],
    );
    let (code, out, err) = run(
        dir.path(),
        &[
            "check",
            "--proto-file-dirs",
            "protos",
            "-p",
            "policy",
            "limits.textproto",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("cart allows 5000 connections"), "{out}");
    let (code, _, err) = run(
        dir.path(),
        &["check", "-p", "policy", "limits.textproto"],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("limits.textproto")
            && err.contains("look up message type \"shop.config.Limits\""),
        "{err}"
    );
}

/// CycloneDX's XML form is read as the JSON document of its specification version.
#[test]
fn cyclonedx_xml_is_read_as_its_json_form() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "bom.xml",
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<bom xmlns=\"http://cyclonedx.org/schema/bom/1.4\" version=\"1\">\n  <components>\n    <component type=\"library\">\n      <name>left-pad</name>\n      <version>1.0.0</version>\n    </component>\n  </components>\n</bom>\n",
            ),
            (
                "policy/bom.rego",
                "package main\nimport rego.v1\ndeny contains msg if {\n  some c in input.components\n  c.name == \"left-pad\"\n  msg := sprintf(\"%s %s in a CycloneDX %s BOM\", [c.name, c.version, input.specVersion])\n}\n",
            ),
        ],
    );
    let (code, out, err) = run(
        dir.path(),
        &["check", "--parser", "cyclonedx", "-p", "policy", "bom.xml"],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("left-pad 1.0.0 in a CycloneDX 1.4 BOM"),
        "{out}"
    );
}

/// Jsonnet is evaluated (standard library included) and its JSON is the input; an error names
/// the file.
#[test]
fn jsonnet_is_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "app.jsonnet",
                "local replicas = 2 * 3;\n{\n  name: std.asciiUpper('web'),\n  replicas: replicas,\n  ports: [8080 + i for i in std.range(0, 1)],\n}\n",
            ),
            (
                "policy/app.rego",
                "package main\nimport rego.v1\ndeny contains msg if {\n  input.replicas > 4\n  msg := sprintf(\"%s has %d replicas on %v\", [input.name, input.replicas, input.ports])\n}\n",
            ),
            ("bad.jsonnet", "{ a: 1 + }\n"),
        ],
    );
    let (code, out, err) = run(dir.path(), &["check", "-p", "policy", "app.jsonnet"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("WEB has 6 replicas on [8080, 8081]"), "{out}");
    let (code, _, err) = run(dir.path(), &["check", "-p", "policy", "bad.jsonnet"], None);
    assert_eq!(code, 1);
    assert!(err.contains("bad.jsonnet: invalid jsonnet"), "{err}");
}

#[test]
fn a_number_json_cannot_hold_never_turns_a_failure_into_a_pass() {
    // The file's author chooses the quantity; the policy reports it parsed. Read as one JSON
    // value, a 400-digit number made the rule's value unreadable, and unreadable read as a
    // pass (OPA, whose numbers have no such limit, fails both).
    let huge = "9".repeat(400);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/memory.rego",
                "package main\nimport rego.v1\n\ndeny contains {\"msg\": msg, \"bytes\": b} if {\n  some c in input.spec.containers\n  b := units.parse_bytes(c.memory)\n  b > 1073741824\n  msg := sprintf(\"%s asks for more than 1Gi\", [c.name])\n}\n",
            ),
            (
                "pod.yaml",
                &format!(
                    "kind: Pod\nspec:\n  containers:\n  - {{name: greedy, memory: \"{huge}\"}}\n  - {{name: big, memory: 2Gi}}\n"
                ),
            ),
        ],
    );
    let (code, out, err) = run(dir.path(), &["check", "-p", "policy", "pod.yaml"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAIL - pod.yaml - main - big asks for more than 1Gi"),
        "{out}"
    );
    assert!(
        out.contains("FAIL - pod.yaml - main - greedy asks for more than 1Gi"),
        "{out}"
    );
    assert!(out.contains("2 failures"), "{out}");
}

#[test]
fn an_indented_rule_is_queried_as_conftest_queries_it() {
    // conftest lists a module's rules from its parsed heads; indentation is not Rego's concern.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "policy/deny.rego",
                "package main\n\ndeny[msg] {\n  input.kind == \"Pod\"\n  msg := \"pods are checked\"\n}\n\n  deny_latest[msg] {\n    endswith(input.spec.containers[_].image, \":latest\")\n    msg := \"indented rule fires\"\n  }\n",
            ),
            (
                "pod.yaml",
                "kind: Pod\nspec:\n  containers:\n  - {name: a, image: \"nginx:latest\"}\n",
            ),
        ],
    );
    let (code, out, err) = run(dir.path(), &["check", "-p", "policy", "pod.yaml"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("FAIL - pod.yaml - main - indented rule fires"),
        "{out}"
    );
    assert!(
        out.contains("2 tests, 0 passed, 0 warnings, 2 failures"),
        "{out}"
    );
}
