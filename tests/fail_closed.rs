//! A gate that cannot decide never says "passed": a panic inside a policy, a policy that
//! cannot run (an undefined function), a time limit passed inside one long built-in call, an
//! empty policy set; and a real policy library loads however many policies it holds. Each on
//! the real binary (and the webhook over real TLS), each failing on the code before it.

mod support;

use support::gitgate;
use support::pki::Pki;

use std::path::Path;
use std::time::{Duration, Instant};

use gitgate::config::{Config, FailureMode};
use gitgate::policy::load::{SourceFile, load};
use gitgate::policy::{Options, PolicySet};
use gitgate::serve::AppState;
use serde_json::{Value, json};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: \"nginx:1.25\"}]}
";

/// Built-ins that panic inside regorus 0.14.1 (reported upstream-style in the closing note):
/// `strings.count` of an empty string (directly and through a function) and
/// `numbers.range_step` by zero. (`object.subset` of an array by an empty array panicked too;
/// gitgate's host function takes its place now, see `policy::host`.)
const PANICS: &[(&str, &str)] = &[
    (
        "subset.rego",
        "package panics.subset\nimport rego.v1\nwindows(s) := strings.count(s, \"\")\ndeny contains \"never\" if { windows(\"abc\") > 0 }\n",
    ),
    (
        "count.rego",
        "package panics.count\nimport rego.v1\ndeny contains \"never\" if { strings.count(\"abc\", \"\") > 0 }\n",
    ),
    (
        "range.rego",
        "package panics.range\nimport rego.v1\ndeny contains \"never\" if { count(numbers.range_step(1, 3, 0)) > 0 }\n",
    ),
];

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

#[test]
fn a_panicking_policy_is_an_error_of_that_policy_never_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("d.yaml", DEPLOYMENT)]);
    write(&dir.path().join("policy"), PANICS);
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "policy", "d.yaml"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(!out.contains("passed"), "{out}");
    for policy in ["panics.subset", "panics.count", "panics.range"] {
        assert!(
            out.contains(&format!("[{policy}]")) && out.contains("panicked"),
            "the error names {policy}: {out}"
        );
    }
    // Caught and reported, not printed by the panic handler.
    assert!(!err.contains("panicked at"), "{err}");
}

#[test]
fn a_panicking_test_is_an_error_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "t_test.rego",
            "package t\nimport rego.v1\ntest_panics if { strings.count(\"abc\", \"\") > 0 }\ntest_fine if { 1 == 1 }\n",
        )],
    );
    let (code, out, err) = gitgate(dir.path(), &["test", "."]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("data.t.test_panics: ERROR"), "{out}");
    assert!(out.contains("panicked"), "{out}");
    assert!(out.contains("PASS: 1/2"), "the other test still ran: {out}");
}

#[test]
fn a_test_keeps_its_time_limit_inside_a_long_builtin() {
    // The engine's timer is not read inside one built-in call: `--timeout-ms 300` let this
    // test run for seconds (8 s here) before it was reported.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "t_test.rego",
            "package t\nimport rego.v1\ntest_slow if { count(numbers.range(1, 100000000)) > 0 }\ntest_fine if { 1 == 1 }\n",
        )],
    );
    let started = Instant::now();
    let (code, out, err) = gitgate(dir.path(), &["test", "--timeout-ms", "300", "."]);
    assert!(started.elapsed() < Duration::from_secs(4), "{out}{err}");
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("data.t.test_slow: ERROR"), "{out}");
    assert!(out.contains("no result within 300ms"), "{out}");
    assert!(out.contains("PASS: 1/2"), "the other test still ran: {out}");
}

#[test]
fn undefined_functions_and_wrong_arities_are_refused_at_load_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("d.yaml", DEPLOYMENT),
            (
                "undefined/p.rego",
                "package undefined\nimport rego.v1\n\ndeny contains \"x\" if {\n  input.kind == \"Nope\"\n  nosuch.fn(input)\n}\n",
            ),
            (
                "arity/p.rego",
                "package arity\nimport rego.v1\ndeny contains \"x\" if { count(input.a, 1, 2) == 1 }\n",
            ),
            (
                "fine/p.rego",
                "package fine\nimport rego.v1\nimport data.fine.lib as l\ndeny contains m if { m := l.f(input.review.object.kind); count(m, 3) }\n",
            ),
            (
                "fine/lib.rego",
                "package fine.lib\nimport rego.v1\nf(k) := concat(\"\", [\"x\", k])\n",
            ),
        ],
    );
    for (policy, wanted) in [
        (
            "undefined",
            "undefined/p.rego:6:3: undefined function nosuch.fn",
        ),
        ("arity", "arity/p.rego:3:"),
    ] {
        for args in [
            vec!["policies", policy],
            vec!["check", "-p", policy, "d.yaml"],
        ] {
            let (code, out, err) = gitgate(dir.path(), &args);
            // `check` of files with these raw-input policies is conftest's mode, whose exit
            // code for a policy that does not compile is 1; elsewhere gitgate's 2.
            let expected = if args[0] == "check" { 1 } else { 2 };
            assert_eq!(code, expected, "{args:?}: {out}{err}");
            assert!(err.contains(wanted), "{args:?}: {err}");
        }
    }
    // Functions reached through imports, and the output-argument form, are fine.
    let (code, out, err) = gitgate(dir.path(), &["policies", "fine"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn recursive_functions_are_refused_at_load_never_a_stack_overflow() {
    // regorus recurses on the thread's stack for a recursive function, with no limit: a
    // depth taken from the object overflowed it and aborted the process (exit 134 in
    // `check`; at admission, the webhook went down with the request). OPA refuses
    // recursion at compile time; so does gitgate, directly or through another package.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("d.yaml", DEPLOYMENT),
            (
                "direct/p.rego",
                "package direct\nimport rego.v1\nf(n) := 0 if n <= 0\nf(n) := y if { n > 0; y := f(n - 1) + 1 }\ndeny contains \"x\" if { f(100000) > 0 }\n",
            ),
            (
                "mutual/p.rego",
                "package mutual\nimport rego.v1\nimport data.mutual.lib as l\ng(n) := l.h(n)\ndeny contains \"x\" if { g(3) > 0 }\n",
            ),
            (
                "mutual/lib.rego",
                "package mutual.lib\nimport rego.v1\nh(n) := data.mutual.g(n)\n",
            ),
        ],
    );
    for (policy, wanted) in [
        (
            "direct",
            "direct/p.rego:4:28: function data.direct.f calls itself; Rego does not allow recursion",
        ),
        (
            "mutual",
            "mutual/p.rego:4:9: function data.mutual.g is recursive: it calls data.mutual.lib.h",
        ),
    ] {
        for args in [
            vec!["policies", policy],
            vec!["check", "-p", policy, "d.yaml"],
        ] {
            let (code, out, err) = gitgate(dir.path(), &args);
            assert_eq!(code, 2, "{args:?}: {out}{err}");
            assert!(err.contains(wanted), "{args:?}: {err}");
        }
    }
}

#[test]
fn a_thousand_policies_in_one_directory_load_and_decide() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    for i in 0..1000 {
        std::fs::write(
            policies.join(format!("p{i:04}.rego")),
            format!(
                "package org.team_with_a_long_name.policy_number_{i:04}\nimport rego.v1\ndeny contains \"policy {i} refuses web\" if {{ input.review.object.metadata.name == \"web\"; {i} == 999 }}\n"
            ),
        )
        .unwrap();
    }
    // An unoptimised test build evaluates a thousand policies slower than the default limit.
    write(
        dir.path(),
        &[
            ("d.yaml", DEPLOYMENT),
            ("gitgate.yaml", "policies: {timeout: 60s}\n"),
        ],
    );
    let (code, out, err) = gitgate(dir.path(), &["policies", "policies"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1000, "{out}");
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "policies", "d.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("policy 999 refuses web"), "{out}");
}

#[test]
fn an_empty_policy_set_is_an_error_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("d.yaml", DEPLOYMENT),
            ("empty/README.md", "nothing here\n"),
            (
                "kyverno/require-labels.yaml",
                "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: require-labels}\nspec: {rules: []}\n",
            ),
            ("off.yaml", "policies: {builtin: false}\n"),
            (
                "off-allowed.yaml",
                "policies: {builtin: false, allowEmpty: true}\n",
            ),
        ],
    );
    // Files and a `-p` holding no policy at all, no gitgate.yaml: conftest's command, whose
    // answer is its "no policies found", exit 1 (README, "Coming from conftest"); never a pass.
    let (code, _, err) = gitgate(dir.path(), &["check", "-p", "empty", "d.yaml"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no policies found in [empty]"), "{err}");
    // The same under gitgate's configuration: gitgate's exit 2 and its hint.
    write(
        dir.path(),
        &[("plain.yaml", "policies: {builtin: false}\n")],
    );
    let (code, _, err) = gitgate(
        dir.path(),
        &["check", "-c", "plain.yaml", "-p", "empty", "d.yaml"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no policy loaded") && err.contains("allowEmpty"),
        "{err}"
    );
    let (code, _, err) = gitgate(dir.path(), &["check", "-p", "kyverno", "d.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("kyverno/require-labels.yaml:1") && err.contains("ClusterPolicy"),
        "the skipped document is named: {err}"
    );
    let (code, _, err) = gitgate(dir.path(), &["check", "-c", "off.yaml", "d.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("policies.builtin is false"), "{err}");
    let (code, out, err) = gitgate(dir.path(), &["check", "-c", "off-allowed.yaml", "d.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = gitgate(dir.path(), &["policies", "kyverno"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ClusterPolicy"), "{err}");
}

#[test]
fn documents_that_are_not_policies_are_listed_once() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("d.yaml", DEPLOYMENT),
            (
                "policy/p.rego",
                "package p\nimport rego.v1\ndeny contains \"x\" if { false }\n",
            ),
            (
                "policy/sync.yaml",
                "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config, namespace: gatekeeper-system}\n",
            ),
        ],
    );
    let (code, out, err) = gitgate(dir.path(), &["policies", "policy"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("policy/sync.yaml:1").count(), 1, "{out}");
    assert!(out.contains("kind Config"), "{out}");
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "policy", "d.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(err.matches("policy/sync.yaml").count(), 1, "{err}");
    assert!(err.contains("WARN"), "{err}");
}

/// A rule whose time goes into one built-in call, where regorus's own timer is not read.
const SLOW_BUILTIN: &str = "package slow\nimport rego.v1\ndeny contains \"slow\" if { count(numbers.range(1, 50000000)) == 1 }\n";

#[test]
fn check_keeps_policies_timeout_inside_a_long_builtin() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("d.yaml", DEPLOYMENT),
            ("policy/slow.rego", SLOW_BUILTIN),
            ("gitgate.yaml", "policies: {timeout: 500ms}\n"),
        ],
    );
    let started = Instant::now();
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "policy", "d.yaml"]);
    // The built-in alone runs for many seconds; the answer does not wait for it.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("no result within 500ms"), "{out}");
    assert!(!out.contains("passed"), "{out}");
}

fn review(uid: &str) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": "default", "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}},
        "oldObject": null, "dryRun": false}})
}

fn policies(files: &[(&str, &str)]) -> PolicySet {
    let files: Vec<SourceFile> = files
        .iter()
        .map(|(path, text)| SourceFile {
            path: path.to_string(),
            text: text.to_string(),
        })
        .collect();
    load(&files, &Options::default()).unwrap()
}

async fn post(pki: &Pki, addr: std::net::SocketAddr, uid: &str) -> Value {
    let resp = pki
        .client(None)
        .post(format!("https://localhost:{}/validate", addr.port()))
        .json(&review(uid))
        .send()
        .await
        .expect("an answer, not a cancelled stream");
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_a_panic_with_its_failure_mode_and_keeps_serving() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    for (mode, allowed) in [(FailureMode::Deny, false), (FailureMode::Allow, true)] {
        let mut config = Config::default();
        config.server.failure_mode = mode;
        let server = pki
            .serve(AppState::new(policies(PANICS), &config), &config)
            .await;
        for uid in ["first", "second"] {
            let answer = post(&pki, server.addr, uid).await;
            assert_eq!(answer["response"]["uid"], uid);
            assert_eq!(answer["response"]["allowed"], allowed, "{mode:?}: {answer}");
            let text = answer.to_string();
            assert!(text.contains("panics."), "names the policy: {text}");
        }
        server.handle.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_at_its_deadline_while_a_builtin_still_runs() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let mut config = Config::default();
    config.server.timeout = Duration::from_millis(300);
    config.server.failure_mode = FailureMode::Deny;
    let server = pki
        .serve(
            AppState::new(policies(&[("slow.rego", SLOW_BUILTIN)]), &config),
            &config,
        )
        .await;
    let started = Instant::now();
    let answer = post(&pki, server.addr, "slow").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert!(
        answer.to_string().contains("no decision within 300 ms"),
        "{answer}"
    );
    server.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_evaluations_are_bounded_and_the_excess_gets_the_failure_mode() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let mut config = Config::default();
    config.server.timeout = Duration::from_millis(300);
    config.server.max_decisions = 1;
    let server = pki
        .serve(
            AppState::new(policies(&[("slow.rego", SLOW_BUILTIN)]), &config),
            &config,
        )
        .await;
    // The first evaluation is abandoned at its deadline and still runs its built-in...
    let first = post(&pki, server.addr, "first").await;
    assert!(
        first.to_string().contains("no decision within 300 ms"),
        "{first}"
    );
    // ... so it keeps the only slot: the next request is not given another evaluation.
    let second = post(&pki, server.addr, "second").await;
    assert_eq!(second["response"]["allowed"], false, "{second}");
    assert!(
        second
            .to_string()
            .contains("too many decisions in progress"),
        "{second}"
    );
    server.handle.shutdown();
}

#[test]
fn a_failing_advisory_policy_is_reported_at_its_level_and_a_deny_one_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let failing = |action: &str| {
        format!(
            "# METADATA\n# custom:\n#   name: failing-{action}\n#   enforcement: {action}\npackage failing.{action}\nimport rego.v1\ndeny contains \"never\" if {{ strings.count(\"abc\", \"\") > 0 }}\n"
        )
    };
    write(
        dir.path(),
        &[
            ("d.yaml", DEPLOYMENT),
            ("warn/p.rego", &failing("warn")),
            ("deny/p.rego", &failing("deny")),
        ],
    );
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "warn", "d.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("warning [failing-warn] could not decide") && out.contains("panicked"),
        "{out}"
    );
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "deny", "d.yaml"]);
    assert_eq!(code, 2, "{out}{err}");
}

#[test]
fn a_number_json_cannot_hold_costs_a_finding_its_details_never_the_rules_findings() {
    // A manifest's author chooses the quantity; a policy reports it parsed in `details`. A
    // number beyond JSON's range made the whole rule's value unreadable, and every finding of
    // the rule (the 2Gi container's too) was dropped: "passed".
    let huge = "9".repeat(400);
    let deployment = format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: greedy, image: \"nginx:1.25\", resources: {{limits: {{memory: \"{huge}\"}}}}}}
      - {{name: big, image: \"nginx:1.25\", resources: {{limits: {{memory: 2Gi}}}}}}
"
    );
    let policy = "# METADATA
# custom:
#   name: memory-ceiling
#   enforcement: deny
package memory

import rego.v1

violation contains {\"msg\": msg, \"details\": {\"container\": c.name, \"bytes\": b}} if {
	some c in input.review.object.spec.template.spec.containers
	b := units.parse_bytes(c.resources.limits.memory)
	b > 1073741824
	msg := sprintf(\"container %s asks for more than 1Gi of memory\", [c.name])
}
";
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("d.yaml", &deployment), ("policy/memory.rego", policy)],
    );
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "policy", "d.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    for container in ["greedy", "big"] {
        assert!(
            out.contains(&format!("container {container} asks for more than 1Gi")),
            "{out}"
        );
    }
    assert!(out.contains("2 errors"), "{out}");
}
