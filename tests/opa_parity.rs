//! Policy authors at home: `gitgate test` as `opa test`, engine parity with OPA on what
//! changes verdicts, `gitgate eval` as `opa eval`, `gitgate input`, and gator's `verify --run`
//! and `-o`. Each library here is written for this file, in OPA's layouts (`policy.rego` +
//! `tests/*_test.rego`, one package), in Rego v0 and v1.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs the binary: exit code, stdout, stderr. Never a panic.
fn gitgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(args)
        .output()
        .expect("gitgate runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!stderr.contains("panicked"), "gitgate panicked:\n{stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
}

fn library(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    dir
}

fn test(args: &[&str], dir: &Path) -> (i32, String, String) {
    let mut all = vec!["test"];
    all.extend_from_slice(args);
    all.push(dir.to_str().unwrap());
    gitgate(&all)
}

/// An OPA library: two policies, each `policy.rego` + `tests/policy_test.rego` in one package,
/// one v0 and one v1, the v1 tests parameterized.
const LIBRARY: &[(&str, &str)] = &[
    (
        "k8s/labels/policy.rego",
        "package k8s.labels\n\nrequired := {\"app\", \"owner\"}\n\ndeny[msg] {\n  missing := required - {l | input.metadata.labels[l]}\n  count(missing) > 0\n  msg := sprintf(\"missing labels: %v\", [missing])\n}\n",
    ),
    (
        "k8s/labels/tests/policy_test.rego",
        "package k8s.labels\n\ntest_missing {\n  count(deny) == 1 with input as {\"metadata\": {\"labels\": {\"app\": \"a\"}}}\n}\n\ntest_complete {\n  print(\"complete labels\")\n  count(deny) == 0 with input as {\"metadata\": {\"labels\": {\"app\": \"a\", \"owner\": \"b\"}}}\n}\n",
    ),
    (
        "k8s/images/policy.rego",
        "package k8s.images\nimport rego.v1\n\ndeny contains msg if {\n  some c in input.spec.containers\n  endswith(c.image, \":latest\")\n  not data.allowed_images[c.image]\n  msg := sprintf(\"%s uses latest\", [c.image])\n}\n",
    ),
    (
        "k8s/images/tests/policy_test.rego",
        "package k8s.images\nimport rego.v1\n\ncases := {\n  \"latest\": {\"image\": \"x:latest\", \"want\": 1},\n  \"pinned\": {\"image\": \"x:1.0\", \"want\": 0},\n  \"allowed\": {\"image\": \"ok:latest\", \"want\": 0},\n}\n\ntest_images[name] if {\n  some name, tc in cases\n  count(deny) == tc.want with input as {\"spec\": {\"containers\": [{\"image\": tc.image}]}}\n}\n",
    ),
    ("data.json", "{\"allowed_images\": {\"ok:latest\": true}}"),
];

#[test]
fn an_opa_library_passes_as_a_whole_tree_and_per_directory_with_no_test_twice() {
    let dir = library(LIBRARY);
    let (code, out, err) = test(&["-v"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    // Two plain tests and three sub-cases, each once.
    assert!(out.contains("PASS: 5/5"), "{out}");
    assert_eq!(
        out.matches("data.k8s.labels.test_missing: PASS").count(),
        1,
        "{out}"
    );
    assert!(
        !out.contains("note:"),
        "one program, no per-directory note: {out}"
    );
    // Per directory, as a Makefile runs `opa test DIR` per policy (the data beside it).
    write(
        &dir.path().join("k8s/images"),
        &[("data.json", "{\"allowed_images\": {\"ok:latest\": true}}")],
    );
    for (policy, want) in [("k8s/labels", "PASS: 2/2"), ("k8s/images", "PASS: 3/3")] {
        let (code, out, err) = test(&[], &dir.path().join(policy));
        assert_eq!(code, 0, "{policy}: {out}{err}");
        assert!(out.contains(want), "{policy}: {out}");
    }
}

#[test]
fn the_gatekeeper_library_layout_is_tested_per_directory_and_says_so() {
    let lib = "package lib.helpers\nname(o) := o.metadata.name\n";
    let dir = library(&[
        ("a/lib/helpers.rego", lib),
        (
            "a/src.rego",
            "package a\nimport data.lib.helpers\nok { helpers.name(input) == \"x\" }\n",
        ),
        (
            "a/src_test.rego",
            "package a\ntest_a { ok with input as {\"metadata\": {\"name\": \"x\"}} }\n",
        ),
        ("b/lib/helpers.rego", lib),
        (
            "b/src.rego",
            "package b\nimport data.lib.helpers\nok { helpers.name(input) == \"y\" }\n",
        ),
        (
            "b/src_test.rego",
            "package b\ntest_b { ok with input as {\"metadata\": {\"name\": \"y\"}} }\n",
        ),
    ]);
    let (code, out, err) = test(&[], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS: 2/2"), "{out}");
    assert!(out.contains("note: policy directories"), "{out}");
}

#[test]
fn parameterized_tests_report_each_sub_case_and_count_them() {
    let dir = library(&[(
        "p_test.rego",
        "package p\nimport rego.v1\n\nlimits := {\"small\": 1, \"medium\": 5, \"large\": 50}\n\ntest_under_ten[name] if {\n  some name, n in limits\n  n < 10\n}\n",
    )]);
    let (code, out, err) = test(&[], dir.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("data.p.test_under_ten: FAIL"), "{out}");
    assert!(out.contains("  large: FAIL"), "{out}");
    assert!(
        !out.contains("  small: PASS"),
        "passing sub-cases only with -v: {out}"
    );
    assert!(
        out.contains("PASS: 2/3") && out.contains("FAIL: 1/3"),
        "{out}"
    );
    let (_, json, _) = test(&["-f", "json"], dir.path());
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["fail"], true, "{v}");
    assert_eq!(v[0]["sub_results"]["large"]["fail"], true, "{v}");
    assert_eq!(v[0]["sub_results"]["small"]["name"], "small", "{v}");
}

#[test]
fn run_filter_verbose_prints_json_and_exit_codes() {
    let dir = library(LIBRARY);
    let (code, out, _) = test(&["-r", "test_complete$"], dir.path());
    assert_eq!(code, 0);
    assert!(out.contains("PASS: 1/1"), "{out}");
    // print() output under its test with -v.
    let (_, out, _) = test(&["-v", "-r", "test_complete"], dir.path());
    let at = out.find("test_complete: PASS").expect("the test");
    assert!(out[at..].contains("\n  complete labels\n"), "{out}");
    // OPA's JSON shape.
    let (_, json, _) = test(&["-f", "json", "-r", "test_complete"], dir.path());
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["package"], "data.k8s.labels");
    assert_eq!(v[0]["name"], "test_complete");
    assert_eq!(v[0]["location"]["row"], 7);
    assert_eq!(v[0]["output"], "Y29tcGxldGUgbGFiZWxzCg=="); // "complete labels\n"
    assert!(v[0]["duration"].is_u64());
    // A failing test: 1; an erroring one: 2.
    write(
        dir.path(),
        &[(
            "k8s/labels/tests/more_test.rego",
            "package k8s.labels\ntest_wrong { count(deny) == 5 }\n",
        )],
    );
    assert_eq!(test(&[], dir.path()).0, 1);
    write(
        dir.path(),
        &[(
            "k8s/labels/tests/more_test.rego",
            "package k8s.labels\ntest_wrong { to_number(\"x\") == 1 }\n",
        )],
    );
    let (code, out, err) = test(&[], dir.path());
    assert!(code == 1 || code == 2, "{out}{err}");
    write(
        dir.path(),
        &[(
            "k8s/labels/tests/more_test.rego",
            "package k8s.labels\ntest_slow { count([x | some x in numbers.range(1, 100000000)]) > 0 }\n",
        )],
    );
    let (code, out, err) = test(&["--timeout-ms", "200"], dir.path());
    assert_eq!(code, 2, "{out}{err}");
}

#[test]
fn coverage_per_file_and_line_in_text_and_json() {
    let dir = library(&[
        (
            "policy.rego",
            "package c\nimport rego.v1\n\nallow if input.role == \"admin\"\n\nallow if {\n  input.role == \"dev\"\n  input.env == \"test\"\n}\n",
        ),
        (
            "tests/policy_test.rego",
            "package c\nimport rego.v1\n\ntest_admin if allow with input as {\"role\": \"admin\"}\n",
        ),
    ]);
    let (code, out, err) = test(&["--coverage"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("policy.rego:") && !l.contains("tests"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("not covered: 8"), "{line}");
    let (_, json, _) = test(&["--coverage", "-f", "json"], dir.path());
    let v: Value = serde_json::from_str(&json).unwrap();
    let file = v["files"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.ends_with("/policy.rego"))
        .unwrap()
        .1;
    assert!(file["covered_lines"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        file["not_covered"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["start"]["row"].as_u64().unwrap() <= 8
                && r["end"]["row"].as_u64().unwrap() >= 8),
        "{v}"
    );
    assert!(v["coverage"].as_f64().unwrap() < 100.0, "{v}");
}

#[test]
fn a_file_that_does_not_compile_is_reported_and_the_rest_runs() {
    let dir = library(&[
        ("a/policy.rego", "package a\nimport rego.v1\nok if true\n"),
        (
            "a/tests/a_test.rego",
            "package a\nimport rego.v1\ntest_ok if ok\n",
        ),
        (
            "b/policy.rego",
            "package b\nimport rego.v1\nbroken if {\n  x :=\n}\n",
        ),
    ]);
    let (code, out, err) = test(&[], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("b/policy.rego:"), "{err}");
    assert!(
        out.contains("PASS: 1/2") && out.contains("ERROR: 1/2"),
        "{out}"
    );
}

/// A test file per parity difference; each failed (or could not compile) before the fix.
#[test]
fn engine_parity_with_opa() {
    let long_list = vec!["\"registry.example.com/team/image\""; 60].join(", ");
    let long = format!(
        "package long\nimport rego.v1\nallowed := {{{long_list}}}\ntest_long_line if count(allowed) == 1\n"
    );
    assert!(long.lines().any(|l| l.len() > 1024));
    let dir = library(&[
        // not x[key] with an undefined key: the body fails (the verdict changes).
        (
            "not_index/policy.rego",
            "package not_index\nimport rego.v1\nallowed := {\"a\"}\ndeny if { not allowed[input.kind] }\ndeny_v0_style if {\n  not allowed[input.kind]\n}\n",
        ),
        (
            "not_index/tests/policy_test.rego",
            "package not_index\nimport rego.v1\ntest_undefined_key_denies_nothing if { not deny with input as {} }\ntest_undefined_key_multi_line if { not deny_v0_style with input as {} }\ntest_unknown_key_denies if { deny with input as {\"kind\": \"b\"} }\n",
        ),
        ("long/policy_test.rego", long.as_str()),
        (
            "builtins/policy_test.rego",
            "package builtins\n\n# METADATA\n# title: Patched\n# custom:\n#   severity: high\npatched := json.patch({\"a\": 1}, [{\"op\": \"add\", \"path\": \"/b\", \"value\": 2}]) {\n  meta := rego.metadata.rule()\n  meta.custom.severity == \"high\"\n}\n\ntest_json_patch { patched == {\"a\": 1, \"b\": 2} }\ntest_re_match { re_match(\"^v[0-9]+$\", \"v12\") }\ntest_metadata_chain { rego.metadata.chain()[0].path == [\"data\", \"builtins\", \"test_metadata_chain\"] }\ntest_all_any { all([true, true]); any([false, true]); not any([false]) }\n",
        ),
        (
            "engine/policy.rego",
            "package engine\nimport rego.v1\n\nlevels := {\"low\": 1, \"high\": 3}\nlevel(x) := levels[k] if { k := x.severity } else := 0\n\nlimit := 3\nover if input.n > limit\n",
        ),
        (
            "engine/tests/policy_test.rego",
            "package engine\nimport rego.v1\n\ntest_else_value if { [level({\"severity\": \"high\"}), level({})] == [3, 0] }\n\n# `limit` is a rule of policy.rego, another file of the package.\ntest_with_bare_rule if { over with input as {\"n\": 2} with limit as 1 }\n\ntest_large_regex if regex.match(`^[\\w.-]{1,253}$`, \"my-app.example\")\n",
        ),
    ]);
    let (code, out, err) = test(&["-v"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    for t in [
        "test_undefined_key_denies_nothing",
        "test_undefined_key_multi_line",
        "test_unknown_key_denies",
        "test_long_line",
        "test_json_patch",
        "test_re_match",
        "test_metadata_chain",
        "test_all_any",
        "test_else_value",
        "test_with_bare_rule",
        "test_large_regex",
    ] {
        assert!(out.contains(&format!("{t}: PASS")), "{t}: {out}");
    }
}

#[test]
fn eval_is_opa_eval() {
    let dir = library(LIBRARY);
    write(
        dir.path(),
        &[(
            "input.json",
            "{\"spec\": {\"containers\": [{\"image\": \"x:latest\"}, {\"image\": \"ok:latest\"}]}}",
        )],
    );
    let input = dir.path().join("input.json");
    let (code, out, err) = gitgate(&[
        "eval",
        "-d",
        dir.path().join("k8s").to_str().unwrap(),
        "-d",
        dir.path().join("data.json").to_str().unwrap(),
        "-i",
        input.to_str().unwrap(),
        "data.k8s.images.deny",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["result"][0]["expressions"][0]["value"],
        serde_json::json!(["x:latest uses latest"]),
        "{v}"
    );
    assert_eq!(
        v["result"][0]["expressions"][0]["text"],
        "data.k8s.images.deny"
    );
    let (code, out, _) = gitgate(&[
        "eval",
        "-d",
        dir.path().to_str().unwrap(),
        "--fail",
        "data.k8s.nothing",
    ]);
    assert_eq!((code, out.trim()), (1, "{}"));
    let (code, _, err) = gitgate(&[
        "eval",
        "-d",
        dir.path().to_str().unwrap(),
        "data.k8s[",
        "--fail",
    ]);
    assert_eq!(code, 2, "{err}");
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  containers:\n  - name: web\n    image: nginx:latest\n";

#[test]
fn input_is_the_document_a_policy_sees() {
    let dir = library(&[
        ("pod.yaml", POD),
        ("old.yaml", &POD.replace("latest", "1.0")),
        (
            "review.json",
            "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},\"resource\":{\"group\":\"\",\"version\":\"v1\",\"resource\":\"pods\"},\"name\":\"web\",\"namespace\":\"prod\",\"operation\":\"CREATE\",\"userInfo\":{\"username\":\"alice\"},\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\",\"namespace\":\"prod\"}}}}",
        ),
    ]);
    let path = |n: &str| dir.path().join(n).display().to_string();
    let (code, out, err) = gitgate(&["input", &path("pod.yaml")]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["review"]["operation"], "CREATE");
    assert_eq!(
        v["review"]["object"]["spec"]["containers"][0]["image"],
        "nginx:latest"
    );
    assert_eq!(v["source"]["context"], "premerge");
    assert_eq!(v["source"]["line"], 1);
    let (_, out, _) = gitgate(&["input", "--old", &path("old.yaml"), &path("pod.yaml")]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["review"]["operation"], "UPDATE");
    assert_eq!(
        v["review"]["oldObject"]["spec"]["containers"][0]["image"],
        "nginx:1.0"
    );
    let (_, out, _) = gitgate(&["input", &path("review.json")]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["review"]["userInfo"]["username"], "alice");
    assert_eq!(v["source"]["context"], "admission");
    // As one policy sees it: with its parameters.
    let (code, out, err) = gitgate(&["input", "--for", "allowed-registries", &path("pod.yaml")]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["parameters"].is_object(), "{v}");
    let (code, _, err) = gitgate(&["input", "--for", "no-such-policy", &path("pod.yaml")]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn verify_run_and_output_as_gator() {
    let template = "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: k8sdemo\nspec:\n  crd:\n    spec:\n      names:\n        kind: K8sDemo\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package k8sdemo\n        violation[{\"msg\": msg}] {\n          input.review.object.metadata.labels.bad\n          msg := \"bad label\"\n        }\n";
    let suite = "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n- name: labels\n  template: template.yaml\n  constraint: constraint.yaml\n  cases:\n  - name: bad\n    object: bad.yaml\n    assertions:\n    - violations: 1\n  - name: good\n    object: good.yaml\n    assertions:\n    - violations: no\n";
    let dir = library(&[
        ("template.yaml", template),
        (
            "constraint.yaml",
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sDemo\nmetadata:\n  name: demo\n",
        ),
        ("suite.yaml", suite),
        (
            "bad.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {bad: \"yes\"}}\n",
        ),
        (
            "good.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {bad: \"yes\"}}\n",
        ),
    ]);
    let d = dir.path().to_str().unwrap();
    assert_eq!(gitgate(&["verify", d]).0, 1, "good.yaml is bad");
    let (code, out, err) = gitgate(&["verify", "--run", "^bad$", d]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 tests, 1 cases"), "{out}");
    let (code, out, _) = gitgate(&["verify", "-o", "json", d]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["tests"][0]["cases"][1]["name"], "good");
    assert!(
        !v[0]["tests"][0]["cases"][1]["failures"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (_, out, _) = gitgate(&["verify", "-o", "yaml", d]);
    assert!(out.contains("name: labels"), "{out}");
    assert_eq!(gitgate(&["verify", "--run", "nothing", d]).0, 2);
}

#[test]
fn input_of_a_pull_request_is_what_check_decides() {
    let dir = library(&[("apps/web.yaml", &POD.replace("latest", "1.0"))]);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=a", "-c", "user.email=a@example.com"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "base"]);
    git(&["checkout", "-qb", "pr"]);
    write(dir.path(), &[("apps/web.yaml", POD)]);
    git(&["commit", "-qam", "latest"]);
    let repo = dir.path().to_str().unwrap();
    let (code, out, err) = gitgate(&["input", "--repo", repo, "--base", "main", "--head", "pr"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["review"]["operation"], "UPDATE", "{v}");
    assert_eq!(
        v["review"]["object"]["spec"]["containers"][0]["image"],
        "nginx:latest"
    );
    assert_eq!(
        v["review"]["oldObject"]["spec"]["containers"][0]["image"],
        "nginx:1.0"
    );
    assert_eq!(v["source"]["path"], "apps/web.yaml");
    assert!(v.get("parameters").is_none(), "{v}");
}

#[test]
fn opa_test_flags_are_accepted() {
    let dir = library(LIBRARY);
    // --ignore leaves out the parameterized tests' directory.
    let (code, out, err) = test(
        &["--ignore", "images", "--explain", "fails", "-b"],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS: 2/2"), "{out}");
    // --v1-compatible reads every module as v1: the v0 modules (labels) no longer parse.
    let (code, _, _) = test(&["--v1-compatible"], dir.path());
    assert_eq!(code, 2);
    let (code, _, _) = test(&["--v1-compatible", "--ignore", "labels"], dir.path());
    assert_eq!(code, 0);
    assert_eq!(test(&["--v0-compatible"], dir.path()).0, 0);
    // --threshold with --coverage.
    let (code, _, err) = test(&["--coverage", "--threshold", "100.5"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("below the threshold"), "{err}");
}

/// A library written for a host that adds a built-in (`host.report.make`) is tested with a
/// stand-in passed as one more path, as `opa test` is run with the host's built-ins; the
/// tests mock it with `with` too. Without the stand-in, the policy is reported as calling an
/// undefined function (nothing passes in silence).
#[test]
fn a_host_built_in_takes_a_stand_in_given_as_a_path() {
    let dir = library(&[
        (
            "lib/policy.rego",
            "package checks.ports\nimport rego.v1\n\ndeny contains r if {\n  some p in input.ports\n  p.number == 22\n  r := host.report.make(\"ssh is open\", p)\n}\n",
        ),
        (
            "lib/tests/policy_test.rego",
            "package checks.ports\nimport rego.v1\n\ntest_ssh if {\n  r := deny with input as {\"ports\": [{\"number\": 22, \"line\": 4}]}\n  r == {{\"msg\": \"ssh is open\", \"line\": 4}}\n}\n\ntest_mocked if {\n  r := deny with input as {\"ports\": [{\"number\": 22}]} with host.report.make as mock\n  r == {\"mocked\"}\n}\n\nmock(_, _) := \"mocked\"\n",
        ),
    ]);
    let stand_ins = library(&[(
        "host.rego",
        "package host.report\nimport rego.v1\n\nmake(msg, at) := {\"msg\": msg, \"line\": object.get(at, \"line\", 0)}\n",
    )]);
    let stand_in = stand_ins.path().join("host.rego");
    let (code, out, err) = gitgate(&[
        "test",
        "-v",
        stand_in.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("test_ssh: PASS") && out.contains("test_mocked: PASS"),
        "{out}"
    );
    let (code, out, err) = test(&[], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("undefined function host.report.make"), "{err}");
}

/// Among many files, each that does not compile is reported once, with its own error, and
/// every other file's tests run; OPA binds `x` in `x = r[x]` through the reference.
#[test]
fn broken_files_are_each_reported_and_the_rest_of_a_whole_tree_runs() {
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..12 {
        files.push((
            format!("p{i}/policy.rego"),
            format!("package p{i}\n\nitems[x] {{\n  x := input.items[_]\n}}\n\nself[x] {{\n  x = items[x]\n}}\n"),
        ));
        files.push((
            format!("p{i}/tests/policy_test.rego"),
            format!("package p{i}\n\ntest_self {{\n  self == {{\"a\"}} with input as {{\"items\": [\"a\"]}}\n}}\n"),
        ));
    }
    for i in 0..5 {
        files.push((
            format!("broken{i}/policy.rego"),
            format!("package broken{i}\n\ntest_never {{\n  not_a_function_{i}(1)\n}}\n"),
        ));
    }
    files.push((
        "syntax/policy.rego".into(),
        "package syntax\n\nx := {\n".into(),
    ));
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dir = library(&borrowed);
    let (code, out, err) = test(&[], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("PASS: 12/"), "{out}{err}");
    for i in 0..5 {
        assert_eq!(
            err.matches(&format!("undefined function not_a_function_{i}"))
                .count(),
            1,
            "{err}"
        );
    }
    assert!(err.contains("syntax/policy.rego:"), "{err}");
}

/// One package whose parts sit in directories apart (`policy/lib` and `policy/release/lib`),
/// defining different names, is one program as `opa test` merges it, not the gatekeeper-library
/// layout: a test of one part reads the other's rule.
#[test]
fn parts_of_one_package_in_directories_apart_are_one_program() {
    let dir = library(&[
        (
            "policy/lib/strings.rego",
            "package lib\nimport rego.v1\nquoted(s) := sprintf(\"%q\", [s])\n",
        ),
        (
            "policy/release/lib/att.rego",
            "package lib\nimport rego.v1\nkinds := {\"a\"}\n",
        ),
        (
            "policy/lib/lib_test.rego",
            "package lib_test\nimport rego.v1\nimport data.lib\ntest_both if { lib.quoted(\"a\") == `\"a\"`; lib.kinds == {\"a\"} }\n",
        ),
    ]);
    let (code, out, err) = test(&[], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS: 1/1"), "{out}");
    assert!(!out.contains("note: policy directories"), "{out}");
}
