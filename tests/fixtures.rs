//! The built-in policies against the real AdmissionReview requests in
//! `../shared/fixtures/admission-v1/`: each request gets the verdict a reader of that README
//! would expect. Skips with a message where the fixtures are absent.

mod support;

use std::collections::BTreeSet;

use gitgate::decision::{self, Context};
use gitgate::input::{Document, parse_admission_review};
use gitgate::policy::Options;

/// (fixture, policies that deny it, policies that warn about it).
const EXPECTED: &[(&str, &[&str], &[&str])] = &[
    ("001-create-namespaces-demo.json", &[], &[]),
    ("002-create-rolebindings-devs-edit.json", &[], &[]),
    ("003-create-clusterrolebindings-gitops-admin.json", &[], &[]),
    ("004-create-deployments-web.json", &[], &[]),
    ("005-create-configmaps-web-config.json", &[], &[]),
    ("006-create-services-web.json", &[], &[]),
    ("007-update-deployments-web.json", &[], &[]),
    ("008-update-deployments-web.json", &[], &[]),
    ("009-update-deployments-web.json", &[], &[]),
    ("010-update-deployments-web.json", &[], &[]),
    ("011-update-deployments-web.json", &[], &[]),
    ("012-create-secrets-db-pass.json", &[], &[]),
    ("013-create-roles-dev-all.json", &[], &[]),
    ("014-create-rolebindings-dev-all.json", &[], &[]),
    // A Scale is not a workload: pod policies do not apply to it.
    ("015-update-deployments-scale-web.json", &[], &[]),
    // `kubectl set image ... evil.example/miner:latest`
    ("016-update-deployments-web.json", &["latest-tag"], &[]),
    ("017-update-configmaps-web-config.json", &[], &[]),
    // Still carries the :latest image that 016 set.
    ("018-update-deployments-web.json", &["latest-tag"], &[]),
    ("019-update-configmaps-web-config.json", &[], &[]),
    ("020-delete-configmaps-web-config.json", &[], &[]),
    ("021-delete-deployments-web.json", &[], &[]),
    ("022-create-serviceaccounts-default.json", &[], &[]),
    ("023-create-deployments-web2.json", &[], &[]),
    (
        "024-create-customresourcedefinitions-widgets.example.com.json",
        &[],
        &[],
    ),
    ("025-create-apiservices-v1.example.com.json", &[], &[]),
    ("026-create-widgets-blue.json", &[], &[]),
    // `kubectl run debug` with a hostPath of / and runAsUser 0, image busybox (no tag).
    (
        "027-create-pods-debug.json",
        &["host-path", "latest-tag", "run-as-root"],
        &["container-resources"],
    ),
    ("028-delete-pods-debug.json", &[], &[]),
    ("029-delete-pods-debug.json", &[], &[]),
    ("030-create-deployments-quant.json", &[], &[]),
];

#[test]
fn builtin_policies_give_the_expected_verdicts() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let set = gitgate::builtin::policy_set(&Options::default()).expect("built-in policies load");
    let mut seen = 0;
    for (file, deny, warn) in EXPECTED {
        let body = std::fs::read(dir.join(file)).expect("fixture readable");
        let (_, review) = parse_admission_review(file, &body).expect("fixture parses");
        let decision = decision::decide(&set, &Document::from_review(review), &Context::default());
        let denied: BTreeSet<&str> = decision
            .violations
            .iter()
            .map(|f| f.policy.as_str())
            .collect();
        let warned: BTreeSet<&str> = decision
            .warnings
            .iter()
            .map(|f| f.policy.as_str())
            .collect();
        assert_eq!(
            denied,
            deny.iter().copied().collect(),
            "{file}: deny findings {:?}",
            decision.violations
        );
        assert_eq!(
            warned,
            warn.iter().copied().collect(),
            "{file}: warn findings {:?}",
            decision.warnings
        );
        assert!(decision.errors.is_empty(), "{file}: {:?}", decision.errors);
        assert_eq!(decision.allowed, deny.is_empty(), "{file}");
        for f in decision.violations.iter().chain(&decision.warnings) {
            assert!(
                f.message.starts_with(&format!("{}:", f.policy)),
                "{file}: message names its policy: {}",
                f.message
            );
        }
        seen += 1;
    }
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(seen, on_disk, "every fixture has an expected verdict");
}

#[test]
fn policies_see_the_document_shape() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let body = std::fs::read(dir.join("020-delete-configmaps-web-config.json")).unwrap();
    let (_, review) = parse_admission_review("020", &body).unwrap();
    let doc = Document::from_review(review);
    let v = serde_json::to_value(&doc).unwrap();
    assert_eq!(v["review"]["operation"], "DELETE");
    assert!(
        v["review"]["object"].is_null(),
        "DELETE carries object: null"
    );
    assert_eq!(v["review"]["oldObject"]["kind"], "ConfigMap");
    assert_eq!(v["review"]["userInfo"]["username"], "alice");
    assert_eq!(v["source"]["context"], "admission");
    assert!(
        v.get("provenance").is_none(),
        "absent until provenance is configured"
    );
}
