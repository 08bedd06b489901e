//! The two doors decide alike: the document `check` builds from a manifest in Git and the one
//! `serve` builds from the API server's AdmissionReview for the same object get the same
//! verdicts from the same policies. Uses the real fixtures; skips where they are absent.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use gitgate::check::changes::{Change, read_file_objects};
use gitgate::decision::{Context, Decision, decide};
use gitgate::input::{Document, Source, parse_admission_review};
use gitgate::policy::Options;
use kube_core::admission::Operation;

fn verdicts(d: &Decision) -> BTreeSet<(String, String, String)> {
    d.violations
        .iter()
        .chain(&d.warnings)
        .chain(&d.dryrun)
        .map(|f| {
            (
                f.policy.clone(),
                f.action.as_str().to_string(),
                f.message.clone(),
            )
        })
        .collect()
}

/// Decides the manifest `file` as `check` would (with `edit` applied to its text) and the
/// fixture `review` as `serve` would, and compares.
fn compare(
    dir: &Path,
    file: &str,
    edit: impl Fn(String) -> String,
    operation: Operation,
    review: &str,
    allowed: bool,
) {
    let set = gitgate::builtin::policy_set(&Options::default()).unwrap();
    let text = edit(std::fs::read_to_string(dir.join("manifests").join(file)).unwrap());
    let (objects, notes) = read_file_objects(file, text.as_bytes());
    assert!(notes.is_empty(), "{notes:?}");
    let body = std::fs::read(dir.join(review)).unwrap();
    let (_, admission) = parse_admission_review(review, &body).unwrap();
    let old = admission.old_object.clone();
    let change = Change {
        operation,
        object: Some(objects[0].object.clone()),
        old_object: old,
        path: file.into(),
        line: objects[0].line,
        lines: objects[0].lines.clone(),
        rendered: None,
    };
    let premerge = gitgate::check::document(&change, &Source::premerge(None, None)).unwrap();
    let at_admission = Document::from_review(admission);
    let (a, b) = (
        decide(&set, &premerge, &Context::default()),
        decide(&set, &at_admission, &Context::default()),
    );
    assert_eq!(verdicts(&a), verdicts(&b), "{file} vs {review}");
    assert_eq!(
        (a.allowed, b.allowed),
        (allowed, allowed),
        "{file} vs {review}: {a:?}"
    );
    // What CI cannot know is absent, not faked; what it knows is the same.
    assert!(premerge.review.user_info.is_none());
    assert_eq!(premerge.review.kind, at_admission.review.kind);
    assert_eq!(premerge.review.name, at_admission.review.name);
    assert_eq!(premerge.review.namespace, at_admission.review.namespace);
    assert_eq!(premerge.review.operation, at_admission.review.operation);
}

#[test]
fn a_create_is_decided_alike() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    compare(
        &dir,
        "deploy.yaml",
        |t| t,
        Operation::Create,
        "004-create-deployments-web.json",
        true,
    );
    compare(
        &dir,
        "quant.yaml",
        |t| t,
        Operation::Create,
        "030-create-deployments-quant.json",
        true,
    );
    compare(
        &dir,
        "cm.yaml",
        |t| t,
        Operation::Create,
        "005-create-configmaps-web-config.json",
        true,
    );
}

#[test]
fn a_rejected_update_is_rejected_alike() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    // 016: `kubectl set image deployment/web web=evil.example/miner:latest`; the same change
    // made in Git must be refused by the same policy with the same message.
    compare(
        &dir,
        "deploy.yaml",
        |t| {
            t.replace(
                "ghcr.io/stefanprodan/podinfo:6.5.0",
                "evil.example/miner:latest",
            )
            .replace("replicas: 2", "replicas: 3")
        },
        Operation::Update,
        "016-update-deployments-web.json",
        false,
    );
}
