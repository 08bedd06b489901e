//! The two Rego engines decide alike: regorus's compiled VM (the default, for every rule it
//! can compile) and its interpreter (`Options { vm: false }`), over the built-in library on
//! every AdmissionReview of `../shared/fixtures/admission-v1/`, and over every case of the
//! gatekeeper-library's suites when `GITGATE_GK_LIBRARY` names an export of it. A policy the
//! VM cannot compile stays on the interpreter and still decides, beside one the VM runs.

use std::path::PathBuf;

use gitgate::decision::{self, Context, Decision, suite};
use gitgate::input::{Document, Status, Verdict, parse_admission_review};
use gitgate::policy::load::{SourceFile, load};
use gitgate::policy::rego::Engine;
use gitgate::policy::{Options, PolicySet};
use kube_core::admission::Operation;
use serde_json::json;

fn vm() -> Options {
    Options::default()
}

fn interpreter() -> Options {
    Options {
        vm: false,
        ..Options::default()
    }
}

fn fixtures() -> Option<Vec<(String, Vec<u8>)>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/admission-v1");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: {} is absent", dir.display());
        return None;
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    Some(out)
}

/// What the provenance policy reads, so that its messages are compared too.
fn modified() -> Verdict {
    Verdict {
        status: Status::Modified,
        reason: "spec.template.spec.containers[name=web].image differs from Git".into(),
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        path: Some("apps/web/deploy.yaml".into()),
        line: Some(3),
        source: None,
        differing: vec!["spec.template.spec.containers[name=web].image".into()],
        unattested: vec!["metadata.annotations[\"x\"]".into()],
        break_glass: None,
    }
}

/// A verdict with every field set: a break-glass change of a rendered source.
fn break_glass() -> Verdict {
    Verdict {
        status: Status::Exempt,
        source: Some("apps/web".into()),
        break_glass: Some(gitgate::input::BreakGlass {
            user: "oncall@example.com".into(),
            reason: "INC-4711: \"rollback\"".into(),
        }),
        ..modified()
    }
}

#[test]
fn the_builtin_library_runs_on_the_vm() {
    let on_vm = gitgate::builtin::policy_set(&vm()).unwrap();
    let interpreted = gitgate::builtin::policy_set(&interpreter()).unwrap();
    assert!(!on_vm.is_empty());
    for p in on_vm.policies() {
        assert_eq!(p.engine(), Engine::Vm, "{} is not on the VM", p.name);
    }
    for p in interpreted.policies() {
        assert!(
            matches!(p.engine(), Engine::Interpreter(_)),
            "{} is on the VM with vm: false",
            p.name
        );
    }
}

#[test]
fn both_engines_decide_every_fixture_alike() {
    let Some(fixtures) = fixtures() else { return };
    assert!(fixtures.len() >= 30, "{} fixtures", fixtures.len());
    let on_vm = gitgate::builtin::policy_set(&vm()).unwrap();
    let interpreted = gitgate::builtin::policy_set(&interpreter()).unwrap();
    let ctx = Context::default();
    let mut denied = 0;
    for (name, body) in &fixtures {
        let (_, review) = parse_admission_review(name, body).unwrap();
        for verdict in [None, Some(modified())] {
            let mut doc = Document::from_review(review.clone());
            doc.provenance = verdict.clone();
            let a = decision::decide(&on_vm, &doc, &ctx);
            let b = decision::decide(&interpreted, &doc, &ctx);
            assert_eq!(
                a,
                b,
                "{name} (provenance {:?}): the VM and the interpreter disagree",
                verdict.map(|v| v.status)
            );
            assert!(a.errors.is_empty(), "{name}: {:?}", a.errors);
            denied += usize::from(!a.allowed);
        }
    }
    // The fixtures deny something (a `:latest` image, a hostPath pod) and the modified
    // verdict is refused by the provenance policy: the comparison is not of empty decisions.
    assert!(denied > fixtures.len(), "only {denied} denials");
}

/// `input` is the document's JSON, whichever way it is built (the objects are converted
/// apart from the rest of the document, see `Document::to_rego`).
#[test]
fn the_input_is_the_documents_json() {
    let Some(fixtures) = fixtures() else { return };
    for (name, body) in &fixtures {
        let (_, review) = parse_admission_review(name, body).unwrap();
        for verdict in [None, Some(modified()), Some(break_glass())] {
            let mut doc = Document::from_review(review.clone());
            doc.provenance = verdict;
            // Against regorus's own reading of serde_json's text (json_to_rego is the same
            // serializer as to_rego, so it would check it against itself).
            let json = serde_json::to_string(&doc).unwrap();
            assert_eq!(
                doc.to_rego().unwrap(),
                regorus::Value::from_json_str(&json).unwrap(),
                "{name}"
            );
        }
    }
}

#[test]
fn both_engines_decide_every_gatekeeper_library_case_alike() {
    let Some(lib) = std::env::var_os("GITGATE_GK_LIBRARY") else {
        eprintln!(
            "skipping: set GITGATE_GK_LIBRARY to an export of open-policy-agent/gatekeeper-library to compare the engines on its suites"
        );
        return;
    };
    let files = suite::find_suites(&[PathBuf::from(lib).join("library")]).unwrap();
    assert!(!files.is_empty(), "no suite.yaml found");
    let (mut cases, mut findings) = (0, 0);
    let mut disagree = Vec::new();
    for file in &files {
        let a = suite::decide_cases(file, &vm());
        let b = suite::decide_cases(file, &interpreter());
        assert_eq!(a.len(), b.len(), "{}", file.display());
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            if x != y {
                disagree.push(format!(
                    "{} {name}:\n  vm:          {x:?}\n  interpreter: {y:?}",
                    file.display()
                ));
            }
            if let Ok(d) = x {
                cases += 1;
                findings += d.findings().count();
            }
        }
    }
    assert!(
        disagree.is_empty(),
        "the VM and the interpreter disagree on {} cases:\n{}",
        disagree.len(),
        disagree.join("\n")
    );
    eprintln!(
        "compared {cases} cases of {} suites ({findings} findings)",
        files.len()
    );
    assert!(cases >= 200, "only {cases} cases decided");
    assert!(findings >= 100, "only {findings} findings");
}

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.into(),
        text: text.into(),
    }
}

fn decide(set: &PolicySet, obj: serde_json::Value) -> Decision {
    let doc = Document::from_manifest(
        "t",
        Operation::Create,
        Some(obj),
        None,
        gitgate::input::Source::premerge(None, None),
    )
    .unwrap();
    decision::decide(set, &doc, &Context::default())
}

/// `walk` and `with`: constructs regorus's VM compiler refuses.
const WALKS: &str = r#"package team.walks
import rego.v1
deny contains msg if {
  walk(input.review.object, [path, value])
  value == "forbidden"
  msg := sprintf("forbidden value at %v", [path])
}
"#;

const WITH: &str = r#"package team.with
import rego.v1
flagged if input.flag
deny contains "flagged with `with`" if {
  flagged with input.flag as true
  input.review.object.metadata.name == "bad"
}
"#;

const PLAIN: &str = r#"package team.plain
import rego.v1
deny contains msg if {
  some c in input.review.object.spec.containers
  endswith(c.image, ":latest")
  msg := sprintf("container %v uses :latest", [c.name])
}
"#;

fn pod(name: &str, image: &str, label: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "demo", "labels": {"x": label}},
           "spec": {"containers": [{"name": "c", "image": image}]}})
}

#[test]
fn a_policy_the_vm_cannot_compile_falls_back_and_still_decides() {
    let files = [
        file("walks.rego", WALKS),
        file("with.rego", WITH),
        file("plain.rego", PLAIN),
    ];
    let set = load(&files, &vm()).unwrap();
    let interpreted = load(&files, &interpreter()).unwrap();
    let engine = |name: &str| {
        set.policies()
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .engine()
    };
    assert!(
        matches!(engine("team.walks"), Engine::Interpreter(ref why) if !why.is_empty()),
        "{:?}",
        engine("team.walks")
    );
    assert!(
        matches!(engine("team.with"), Engine::Interpreter(_)),
        "{:?}",
        engine("team.with")
    );
    assert_eq!(engine("team.plain"), Engine::Vm);

    let d = decide(&set, pod("bad", "nginx:latest", "forbidden"));
    let mut messages: Vec<&str> = d.violations.iter().map(|f| f.message.as_str()).collect();
    messages.sort();
    assert_eq!(
        messages,
        vec![
            "container c uses :latest",
            "flagged with `with`",
            "forbidden value at [\"metadata\", \"labels\", \"x\"]",
        ],
        "{d:?}"
    );
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    let ok = decide(&set, pod("good", "nginx:1.27", "fine"));
    assert!(ok.allowed && ok.violations.is_empty(), "{ok:?}");
    for obj in [
        pod("bad", "nginx:latest", "forbidden"),
        pod("good", "nginx:1.27", "fine"),
    ] {
        assert_eq!(decide(&set, obj.clone()), decide(&interpreted, obj));
    }
}

#[test]
fn a_slow_policy_on_the_vm_hits_its_time_limit() {
    let slow = "package team.slow\nimport rego.v1\ndeny contains n if { some i in numbers.range(1, 100000); some j in numbers.range(1, 100000); n := i * j; n < 0 }\n";
    let options = Options {
        eval_timeout: std::time::Duration::from_millis(50),
        ..Options::default()
    };
    let set = load(&[file("slow.rego", slow)], &options).unwrap();
    assert_eq!(set.policies()[0].engine(), Engine::Vm);
    let d = decide(&set, pod("p", "a:1", "y"));
    assert_eq!(d.errors.len(), 1, "{d:?}");
    assert!(
        d.errors[0].message.contains("time limit"),
        "{}",
        d.errors[0].message
    );
}

/// regorus 0.14's VM decides calls of a function with a `_` parameter differently from the
/// interpreter (found on the gatekeeper-library's `K8sPSPAllowedUsers`): such a program stays
/// on the interpreter, and decides as it always did.
#[test]
fn a_function_with_a_wildcard_parameter_stays_on_the_interpreter() {
    let text = r#"package team.groups
accept("RunAsAny", _, _)
accept("MustRunAs", value, ranges) := value >= ranges[0]
deny[msg] {
  params := input.parameters.rule
  not accept(params.rule, 1000, params.ranges)
  msg := "group 1000 is not accepted"
}
"#;
    let set = load(&[file("groups.rego", text)], &vm()).unwrap();
    let engine = set.policies()[0].engine();
    assert!(
        matches!(engine, Engine::Interpreter(ref why) if why.contains("`_` parameter")),
        "{engine:?}"
    );
}

/// The host functions (`regex.match` without regorus's size limit, `object.subset` of an
/// empty array, ...) are the interpreter's: the VM compiles a call of the same name to
/// regorus's own built-in. A policy calling one decided otherwise on the VM than under
/// `gitgate test` (here: the name pattern undefined, so every name was refused; the subset
/// a panic): it stays on the interpreter, and decides as its tests do.
#[test]
fn a_policy_calling_a_host_function_stays_on_the_interpreter() {
    let text = r#"package team.names
import rego.v1
deny contains "the name is not a DNS subdomain" if {
  not regex.match(`^[\w.-]{1,253}$`, input.review.object.metadata.name)
}
deny contains "an empty list is not a subset" if {
  not object.subset(input.review.object.spec.containers, [])
}
"#;
    let set = load(&[file("names.rego", text)], &vm()).unwrap();
    let engine = set.policies()[0].engine();
    assert!(
        matches!(engine, Engine::Interpreter(ref why) if why.contains("regex.match")),
        "{engine:?}"
    );
    let d = decide(&set, pod("web", "nginx:1.27", "y"));
    assert!(d.allowed && d.errors.is_empty(), "{d:?}");
    let d = decide(&set, pod("web/evil", "nginx:1.27", "y"));
    let messages: Vec<&str> = d.violations.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(messages, vec!["the name is not a DNS subdomain"], "{d:?}");
    let interpreted = load(&[file("names.rego", text)], &interpreter()).unwrap();
    for name in ["web", "web/evil"] {
        let obj = pod(name, "nginx:1.27", "y");
        assert_eq!(decide(&set, obj.clone()), decide(&interpreted, obj));
    }
}

/// Rules that could produce two values: OPA fails the evaluation ("complete rules must not
/// produce multiple outputs"), regorus's VM kept the last value, so the verdict hung on the
/// order of the containers and a pod with a bad image first passed.
#[test]
fn a_rule_that_could_conflict_runs_on_the_interpreter_and_a_conflict_is_an_error() {
    let cases = [
        // A complete rule whose body iterates.
        (
            "iterating",
            "package c.iterating\nimport rego.v1\nviolation contains {\"msg\": \"bad registry\"} if { not startswith(image, \"registry.example.com/\") }\nimage := img if { img := input.review.object.spec.containers[_].image }\n",
            "",
        ),
        // A function whose body iterates.
        (
            "function",
            "package c.function\nimport rego.v1\nviolation contains {\"msg\": \"bad registry\"} if { not startswith(first(input.review.object), \"registry.example.com/\") }\nfirst(o) := img if { some c in o.spec.containers; img := c.image }\n",
            "",
        ),
        // One complete rule defined in two modules of the package.
        (
            "two_modules",
            "package c.two_modules\nimport rego.v1\nviolation contains {\"msg\": \"level 2\"} if { level == 2 }\nlevel := 1 if { input.review.object.kind == \"Pod\" }\n",
            "package c.two_modules\nimport rego.v1\nlevel := 2 if { input.review.object.metadata.name == \"bad\" }\n",
        ),
        // A function defined twice for the same arguments.
        (
            "two_definitions",
            "package c.two_definitions\nimport rego.v1\nviolation contains {\"msg\": \"two\"} if { f(1) == 2 }\nf(x) := 1 if { x == 1 }\nf(x) := 2 if { x == 1 }\n",
            "",
        ),
    ];
    let obj = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bad", "namespace": "demo"},
        "spec": {"containers": [{"name": "evil", "image": "docker.io/evil:1"},
                                {"name": "ok", "image": "registry.example.com/ok:1"}]}});
    for (name, text, second) in cases {
        let mut files = vec![file(&format!("{name}.rego"), text)];
        if !second.is_empty() {
            files.push(file(&format!("{name}_more.rego"), second));
        }
        let set = load(&files, &vm()).unwrap();
        let engine = set.policies()[0].engine();
        assert!(
            matches!(engine, Engine::Interpreter(ref why) if why.contains(&format!("{name}.rego")) || why.contains("_more.rego")),
            "{name}: {engine:?}"
        );
        let d = decide(&set, obj.clone());
        assert!(!d.allowed, "{name}: a conflict never passes: {d:?}");
        assert!(
            !d.errors.is_empty(),
            "{name}: the conflict is the policy's error, as in OPA: {d:?}"
        );
    }
    // Several definitions a constant argument keeps apart, and rules that read one value,
    // stay on the VM.
    let apart = "package c.apart\nimport rego.v1\nviolation contains {\"msg\": message(\"latest\")} if { input.review.object.kind == \"Pod\" }\nmessage(\"\") := \"no tag\"\nmessage(\"latest\") := \"latest tag\"\nkind := k if { k := input.review.object.kind }\n";
    let set = load(&[file("apart.rego", apart)], &vm()).unwrap();
    assert_eq!(set.policies()[0].engine(), Engine::Vm);
}
