//! Gatekeeper ExpansionTemplates: a privileged Deployment is refused by a Pod-only constraint,
//! as Gatekeeper refuses it, in `check`, at admission and in `verify`; the template's
//! enforcementAction and a constraint's `match.source` are honoured; a cycle is refused.

mod support;

use std::path::Path;

use gitgate::decision::{self, Context};
use gitgate::input::{Document, parse_admission_review};
use gitgate::policy::Options;
use gitgate::policy::load::load_paths;
use serde_json::json;
use support::gitgate;

/// A Pod-only constraint template of our own (the gatekeeper-library's privileged-containers
/// has the same shape).
const TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8snoprivileged
spec:
  crd:
    spec:
      names:
        kind: K8sNoPrivileged
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8snoprivileged
        violation[{"msg": msg}] {
          c := input.review.object.spec.containers[_]
          c.securityContext.privileged
          msg := sprintf("privileged container is not allowed: %v", [c.name])
        }
"#;

fn constraint(source: Option<&str>) -> String {
    let source = source
        .map(|s| format!("    source: {s}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNoPrivileged
metadata:
  name: no-privileged-pods
spec:
  match:
    kinds:
      - apiGroups: [\"\"]
        kinds: [\"Pod\"]
{source}"
    )
}

fn expansion(action: Option<&str>) -> String {
    let action = action
        .map(|a| format!("  enforcementAction: {a}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: expansion.gatekeeper.sh/v1beta1
kind: ExpansionTemplate
metadata:
  name: expand-deployments
spec:
  applyTo:
    - groups: [\"apps\"]
      kinds: [\"Deployment\", \"StatefulSet\"]
      versions: [\"v1\"]
  templateSource: \"spec.template\"
{action}  generatedGVK:
    kind: Pod
    group: \"\"
    version: v1
"
    )
}

const PRIVILEGED: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.25
          securityContext: {privileged: true}
";

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

#[test]
fn check_refuses_a_privileged_deployment_through_its_pods() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("web.yaml", PRIVILEGED),
            ("policy/template.yaml", TEMPLATE),
            ("policy/constraint.yaml", &constraint(None)),
        ],
    );
    // Without the ExpansionTemplate the Pod-only constraint never sees the Deployment.
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "policy", "web.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    write(dir.path(), &[("policy/expansion.yaml", &expansion(None))]);
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "policy", "web.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(
            "[no-privileged-pods] [Implied by expand-deployments] privileged container is not allowed: web"
        ),
        "{out}"
    );
    // Not a skipped document: `policies` lists it as what it is.
    let (code, out, _) = gitgate(dir.path(), &["policies", "policy"]);
    assert_eq!(code, 0);
    assert!(!out.contains("skipped"), "{out}");
    assert!(out.contains("expand-deployments"), "{out}");
}

#[test]
fn the_templates_action_and_the_constraints_source_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("web.yaml", PRIVILEGED),
            ("warn/template.yaml", TEMPLATE),
            ("warn/constraint.yaml", &constraint(None)),
            ("warn/expansion.yaml", &expansion(Some("warn"))),
            ("original/template.yaml", TEMPLATE),
            ("original/constraint.yaml", &constraint(Some("Original"))),
            ("original/expansion.yaml", &expansion(None)),
            ("generated/template.yaml", TEMPLATE),
            ("generated/constraint.yaml", &constraint(Some("Generated"))),
            ("generated/expansion.yaml", &expansion(None)),
        ],
    );
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "warn", "web.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("warning [no-privileged-pods] [Implied by"),
        "{out}"
    );
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "original", "web.yaml"]);
    assert_eq!(
        code, 0,
        "a constraint on original resources never sees the Pod: {out}{err}"
    );
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "generated", "web.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    // A privileged Pod itself is not a generated resource.
    write(
        dir.path(),
        &[(
            "pod.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers: [{name: c, image: nginx:1.25, securityContext: {privileged: true}}]\n",
        )],
    );
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "generated", "pod.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn the_webhook_refuses_the_deployment_as_gatekeeper_does() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("policy/template.yaml", TEMPLATE),
            ("policy/constraint.yaml", &constraint(None)),
            ("policy/expansion.yaml", &expansion(None)),
        ],
    );
    let set = load_paths(&[dir.path().join("policy")], &Options::default()).unwrap();
    let object: serde_json::Value = serde_saphyr::from_str(PRIVILEGED).unwrap();
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": "shop", "operation": "CREATE",
        "userInfo": {"username": "alice"}, "object": object, "oldObject": null}});
    let (_, review) = parse_admission_review("t", &serde_json::to_vec(&body).unwrap()).unwrap();
    let decision = decision::decide(&set, &Document::from_review(review), &Context::default());
    assert!(!decision.allowed);
    assert_eq!(decision.violations.len(), 1, "{decision:?}");
    assert!(
        decision.violations[0]
            .message
            .starts_with("[Implied by expand-deployments]")
    );
}

#[test]
fn verify_runs_a_suite_with_an_expansion() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("template.yaml", TEMPLATE),
            ("constraint.yaml", &constraint(None)),
            ("expansion.yaml", &expansion(None)),
            ("privileged.yaml", PRIVILEGED),
            (
                "fine.yaml",
                &PRIVILEGED.replace("privileged: true", "privileged: false"),
            ),
            (
                "suite.yaml",
                "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n- name: expanded\n  template: template.yaml\n  constraint: constraint.yaml\n  expansion: expansion.yaml\n  cases:\n  - name: privileged\n    object: privileged.yaml\n    assertions: [{violations: yes}]\n  - name: fine\n    object: fine.yaml\n    assertions: [{violations: no}]\n",
            ),
        ],
    );
    let (code, out, err) = gitgate(dir.path(), &["verify", "."]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn an_expansion_cycle_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let back = expansion(None)
        .replace("name: expand-deployments", "name: pods-back")
        .replace("groups: [\"apps\"]", "groups: [\"\"]")
        .replace(
            "kinds: [\"Deployment\", \"StatefulSet\"]",
            "kinds: [\"Pod\"]",
        )
        .replace(
            "kind: Pod\n    group: \"\"",
            "kind: Deployment\n    group: apps",
        );
    write(
        dir.path(),
        &[
            ("policy/template.yaml", TEMPLATE),
            ("policy/constraint.yaml", &constraint(None)),
            ("policy/expansion.yaml", &expansion(None)),
            ("policy/back.yaml", &back),
        ],
    );
    let (code, _, err) = gitgate(dir.path(), &["policies", "policy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expansion cycle"), "{err}");
}

#[test]
fn gatekeeper_library_pod_constraints_refuse_a_privileged_deployment() {
    let Some(lib) = std::env::var_os("GITGATE_GK_LIBRARY").map(std::path::PathBuf::from) else {
        eprintln!(
            "skipping: set GITGATE_GK_LIBRARY to an export of open-policy-agent/gatekeeper-library"
        );
        return;
    };
    let psp = lib.join("library/pod-security-policy/privileged-containers");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy");
    std::fs::create_dir_all(&policy).unwrap();
    std::fs::copy(psp.join("template.yaml"), policy.join("template.yaml")).unwrap();
    std::fs::copy(
        psp.join("samples/psp-privileged-container/constraint.yaml"),
        policy.join("constraint.yaml"),
    )
    .unwrap();
    write(
        dir.path(),
        &[
            ("policy/expansion.yaml", &expansion(None)),
            ("web.yaml", PRIVILEGED),
        ],
    );
    let (code, out, err) = gitgate(dir.path(), &["check", "-p", "policy", "web.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("[Implied by expand-deployments] Privileged container is not allowed: web"),
        "{out}"
    );
}
