//! The policy engine as `check` and `serve` will use it: every kind of policy loads from files,
//! matches by Gatekeeper rules, takes its enforcement action, and one failing policy never
//! stops the others from deciding. Evaluation is shared between threads.

use std::sync::Arc;

use gitgate::decision::{self, Context, Decision};
use gitgate::input::{Document, Source};
use gitgate::policy::load::{SourceFile, load};
use gitgate::policy::{Enforcement, Options, PolicySet};
use kube_core::admission::Operation;
use serde_json::{Value, json};

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.into(),
        text: text.into(),
    }
}

fn pod(name: &str, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "demo", "labels": {"app": name}},
           "spec": {"containers": [{"name": "c", "image": image}]}})
}

fn decide(set: &PolicySet, obj: Value) -> Decision {
    let doc = Document::from_manifest(
        "t",
        Operation::Create,
        Some(obj),
        None,
        Source::premerge(None, None),
    )
    .unwrap();
    decision::decide(set, &doc, &Context::default())
}

const TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8srequiredlabels}
spec:
  crd: {spec: {names: {kind: K8sRequiredLabels}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8srequiredlabels
      import data.lib.helpers.missing
      violation[{"msg": msg, "details": {"missing": m}}] {
        m := missing(input.review.object, input.parameters.labels)
        count(m) > 0
        msg := sprintf("missing labels: %v", [m])
      }
    libs:
    - |
      package lib.helpers
      missing(obj, required) = m {
        m := {l | l := required[_]; not obj.metadata.labels[l]}
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata: {name: must-have-team}
spec:
  enforcementAction: warn
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
    excludedNamespaces: ["kube-*"]
  parameters: {labels: ["team"]}
"#;

const CONFTEST: &str = r#"package main

deny[msg] {
  endswith(input.spec.containers[_].image, ":latest")
  msg := "no latest"
}

warn_registry[msg] {
  not startswith(input.spec.containers[_].image, "ghcr.io/")
  msg := "not from ghcr.io"
}

exception[rules] {
  input.metadata.name == "allowed"
  rules := ["registry"]
}
"#;

const NATIVE: &str = r#"# METADATA
# title: No debug pods
# custom:
#   name: no-debug
#   enforcement: dryrun
#   match:
#     kinds: [{apiGroups: [""], kinds: [Pod]}]
package team.nodebug

import rego.v1

violation contains {"msg": "no-debug: debug pods are not allowed"} if input.review.object.metadata.name == "debug"
"#;

const BROKEN_AT_RUNTIME: &str = r#"# METADATA
# custom:
#   name: divides-by-zero
package team.broken

import rego.v1

# Two definitions that disagree: an evaluation conflict, an error in OPA and regorus alike.
value := 1 if input.review.object.kind == "Pod"

value := 2 if input.review.object.metadata.name != ""

deny contains msg if {
  msg := sprintf("%v", [value])
}
"#;

fn all() -> PolicySet {
    load(
        &[
            file("policy/required.yaml", TEMPLATE),
            file("policy/main.rego", CONFTEST),
            file("policy/nodebug.rego", NATIVE),
            file("policy/broken.rego", BROKEN_AT_RUNTIME),
            file("policy/main_test.rego", "package main\ntest_x { false }\n"),
        ],
        &Options::default(),
    )
    .expect("policies load")
}

#[test]
fn every_flavour_loads_with_its_name_and_action() {
    let set = all();
    let mut got: Vec<(String, Enforcement)> = set
        .policies()
        .iter()
        .map(|p| (p.name.clone(), p.enforcement))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("divides-by-zero".to_string(), Enforcement::Deny),
            ("main".to_string(), Enforcement::Deny),
            ("must-have-team".to_string(), Enforcement::Warn),
            ("no-debug".to_string(), Enforcement::Dryrun),
        ],
        "test files are not policies"
    );
}

#[test]
fn actions_route_findings_and_a_failing_policy_does_not_stop_the_others() {
    let set = all();
    let d = decide(&set, pod("debug", "nginx:latest"));
    // conftest deny → violation; conftest warn_ rule → warning; template with warn → warning.
    let msgs =
        |v: &[gitgate::policy::Finding]| v.iter().map(|f| f.message.clone()).collect::<Vec<_>>();
    assert_eq!(msgs(&d.violations), vec!["no latest"]);
    let mut warnings = msgs(&d.warnings);
    warnings.sort();
    assert_eq!(
        warnings,
        vec!["missing labels: {\"team\"}", "not from ghcr.io"]
    );
    assert_eq!(
        msgs(&d.dryrun),
        vec!["no-debug: debug pods are not allowed"]
    );
    // The broken policy failed, was reported by name, and the others still decided.
    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    assert_eq!(d.errors[0].policy, "divides-by-zero");
    assert!(!d.allowed);
    assert_eq!(
        d.warnings
            .iter()
            .find(|f| f.policy == "must-have-team")
            .unwrap()
            .details,
        Some(json!({"missing": ["team"]}))
    );
}

#[test]
fn conftest_exceptions_silence_their_rule() {
    let set = all();
    let d = decide(&set, pod("allowed", "nginx:1.27"));
    assert!(
        d.warnings.iter().all(|f| f.rule != "warn_registry"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn match_excludes_namespaces_and_kinds() {
    let set = all();
    let mut p = pod("x", "ghcr.io/a:1");
    p["metadata"]["namespace"] = json!("kube-system");
    let d = decide(&set, p);
    assert!(
        !d.evaluated.contains(&"must-have-team".to_string()),
        "{:?}",
        d.evaluated
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "demo"}});
    let d = decide(&set, cm);
    assert!(!d.evaluated.contains(&"no-debug".to_string()));
    assert!(
        d.evaluated.contains(&"main".to_string()),
        "policies without a match apply to every kind"
    );
}

#[test]
fn enforcement_overrides_apply_by_name() {
    let mut set = all();
    let unknown = set.override_enforcement(
        &[
            ("main".to_string(), Enforcement::Warn),
            ("typo".to_string(), Enforcement::Deny),
        ]
        .into(),
    );
    assert_eq!(unknown, vec!["typo"]);
    let d = decide(&set, pod("debug", "nginx:latest"));
    assert!(d.violations.is_empty(), "{:?}", d.violations);
}

#[test]
fn a_slow_policy_hits_its_time_limit() {
    let slow = "package team.slow\nimport rego.v1\ndeny contains n if { some i in numbers.range(1, 100000); some j in numbers.range(1, 100000); n := i * j; n < 0 }\n";
    let options = Options {
        eval_timeout: std::time::Duration::from_millis(50),
        ..Options::default()
    };
    let set = load(&[file("slow.rego", slow)], &options).unwrap();
    let d = decide(&set, pod("p", "a:1"));
    assert_eq!(d.errors.len(), 1, "{d:?}");
    assert_eq!(d.errors[0].policy, "team.slow");
}

#[test]
fn one_policy_set_decides_on_many_threads() {
    let set = Arc::new(gitgate::builtin::policy_set(&Options::default()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let set = set.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let image = if (t + i) % 2 == 0 {
                        "busybox"
                    } else {
                        "ghcr.io/x/y:1.0"
                    };
                    let mut p = pod("p", image);
                    p["spec"]["containers"][0]["resources"] =
                        json!({"limits": {"cpu": "1", "memory": "1Gi"}});
                    let d = decide(&set, p);
                    assert_eq!(d.allowed, image != "busybox", "{d:?}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("no thread panicked");
    }
}

/// Issue 21: `not x[key]` with an undefined key fails the body in OPA (the key is evaluated
/// outside the negation); regorus made the `not` true, a verdict that differed. Both Rego v1's
/// one-line body and a braced v0 body, with the key present, absent from `x`, and undefined.
#[test]
fn not_with_an_undefined_index_fails_the_body_as_in_opa() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v1.rego"),
        "package v1\n\nimport rego.v1\n\nallowed contains \"a\"\n\ndeny if not allowed[input.x]\n\ntest_undefined_key if {\n\tnot deny with input as {}\n}\n\ntest_missing_key if {\n\tdeny with input as {\"x\": \"b\"}\n}\n\ntest_present_key if {\n\tnot deny with input as {\"x\": \"a\"}\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("v0.rego"),
        "package v0\n\nallowed[x] {\n\tx := \"a\"\n}\n\ndeny {\n\tnot allowed[input.x]\n}\n\ntest_undefined_key {\n\tnot deny with input as {}\n}\n\ntest_missing_key {\n\tdeny with input as {\"x\": \"b\"}\n}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(["test"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PASS: 5/5"), "{stdout}");
}
