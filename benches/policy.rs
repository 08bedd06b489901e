//! Policy benchmarks (criterion): one decision of all built-in policies against fixture 004
//! (and the denials 016 and 027 when ../shared is there),
//! a status write answered on the fast path (an exempt controller's, and anyone's that changes
//! status only) beside it, and `gitgate verify` over the whole gatekeeper-library when `GITGATE_GK_LIBRARY` is set.
//!
//! `cargo bench --bench policy`; results are recorded in BENCHMARKS.md.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group};
use gitgate::decision::suite;
use gitgate::decision::{self, Context};
use gitgate::input::{Document, parse_admission_review};
use gitgate::policy::Options;

/// Fixture 004 (a Deployment created with `kubectl apply`), from ../shared when present, or a
/// copy of its object otherwise so that the benchmark always runs.
fn fixture_004() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/admission-v1/004-create-deployments-web.json");
    std::fs::read(&path).unwrap_or_else(|_| {
        eprintln!("{} is absent: using a built-in stand-in", path.display());
        include_bytes!("../tests/data/deployment-review.json").to_vec()
    })
}

fn decide_builtin(c: &mut Criterion) {
    let set = gitgate::builtin::policy_set(&Options::default()).expect("built-in policies");
    let body = fixture_004();
    let (_, review) = parse_admission_review("004", &body).expect("fixture parses");
    let doc = Document::from_review(review);
    let ctx = Context::default();
    assert!(decision::decide(&set, &doc, &ctx).allowed);
    c.bench_function("decide: built-in library, fixture 004", |b| {
        b.iter(|| decision::decide(&set, &doc, &ctx))
    });
    c.bench_function("input: Document::to_rego, fixture 004", |b| {
        b.iter(|| doc.to_rego().unwrap())
    });
    let interpreted = gitgate::builtin::policy_set(&Options {
        vm: false,
        ..Options::default()
    })
    .expect("built-in policies");
    c.bench_function(
        "decide: built-in library, fixture 004, interpreter only",
        |b| b.iter(|| decision::decide(&interpreted, &doc, &ctx)),
    );
    c.bench_function("decide: parse AdmissionReview + decide, fixture 004", |b| {
        b.iter(|| {
            let (_, review) = parse_admission_review("004", &body).unwrap();
            decision::decide(&set, &Document::from_review(review), &ctx)
        })
    });
    // The denials `benches/serve.rs` loads: an UPDATE (two objects, one finding) and a Pod
    // with three findings.
    for (name, file) in [
        ("016", "016-update-deployments-web.json"),
        ("027", "027-create-pods-debug.json"),
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/admission-v1")
            .join(file);
        let Ok(body) = std::fs::read(&path) else {
            eprintln!("{} is absent: no denial benchmark", path.display());
            continue;
        };
        let (_, review) = parse_admission_review(name, &body).expect("fixture parses");
        let doc = Document::from_review(review);
        assert!(
            !decision::decide(&set, &doc, &ctx).allowed,
            "{name} is denied"
        );
        c.bench_function(&format!("decide: built-in library, fixture {name}"), |b| {
            b.iter(|| decision::decide(&set, &doc, &ctx))
        });
        c.bench_function(&format!("input: Document::to_rego, fixture {name}"), |b| {
            b.iter(|| doc.to_rego().unwrap())
        });
    }
}

/// Fixture 004's Deployment written through `deployments/status` by `user`: the old object is
/// the fixture's, the new one has a status (only).
fn status_write(body: &[u8], user: &str) -> Vec<u8> {
    let mut review: serde_json::Value = serde_json::from_slice(body).unwrap();
    let request = &mut review["request"];
    let object = request["object"].clone();
    let mut updated = object.clone();
    updated["status"] = serde_json::json!({"observedGeneration": 1, "replicas": 2,
        "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
            "lastUpdateTime": "2026-11-24T19:24:00Z", "lastTransitionTime": "2026-11-24T19:24:00Z"}]});
    updated["metadata"]["resourceVersion"] = serde_json::json!("9999");
    request["operation"] = serde_json::json!("UPDATE");
    request["subResource"] = serde_json::json!("status");
    request["object"] = updated;
    request["oldObject"] = object;
    request["userInfo"] =
        serde_json::json!({"username": user, "groups": ["system:serviceaccounts"]});
    serde_json::to_vec(&review).unwrap()
}

/// What answering a status write costs: parsing and the fast path, for the deployment
/// controller (exempt: no comparison) and for anyone else (the old and new objects compared
/// outside `status`), beside a whole decision.
fn status_fast_path(c: &mut Criterion) {
    let exempt =
        gitgate::provenance::verdict::Rules::from(&gitgate::config::Config::default()).exempt;
    let body = fixture_004();
    let controller = status_write(
        &body,
        "system:serviceaccount:kube-system:deployment-controller",
    );
    let someone = status_write(&body, "someone@example.com");
    for (name, body) in [
        ("exempt controller", &controller),
        ("status only, not exempt", &someone),
    ] {
        let (_, review) = parse_admission_review("status", body).unwrap();
        assert!(gitgate::provenance::verdict::fast_path(&review, &exempt).is_some());
        c.bench_function(&format!("status write: parse + fast path, {name}"), |b| {
            b.iter(|| {
                let (_, review) = parse_admission_review("status", body).unwrap();
                gitgate::provenance::verdict::fast_path(&review, &exempt)
            })
        });
    }
}

/// What the webhook's hand-off to a decision thread costs (`decision::guard::Limited`, a
/// permit, a channel to the guard's threads and a timeout), beside the same work run inline in the async task:
/// for no work at all (the hand-off alone), and for a decision of fixture 004.
fn hand_off(c: &mut Criterion) {
    use std::sync::Arc;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let limited = decision::guard::Limited::new(8);
    let deadline = || tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    c.bench_function(
        "hand-off: nothing, on a decision thread (Limited::decide)",
        |b| b.iter(|| runtime.block_on(limited.decide(deadline(), || ()))),
    );
    c.bench_function("hand-off: nothing, inline", |b| {
        b.iter(|| runtime.block_on(async {}))
    });
    let set = Arc::new(gitgate::builtin::policy_set(&Options::default()).expect("built-in"));
    let body = fixture_004();
    let (_, review) = parse_admission_review("004", &body).expect("fixture parses");
    let doc = Arc::new(Document::from_review(review));
    c.bench_function("hand-off: decide fixture 004 on a decision thread", |b| {
        b.iter(|| {
            let (set, doc) = (set.clone(), doc.clone());
            runtime.block_on(limited.decide(deadline(), move || {
                decision::decide(&set, &doc, &Context::default())
            }))
        })
    });
    c.bench_function("hand-off: decide fixture 004 inline", |b| {
        b.iter(|| {
            let (set, doc) = (set.clone(), doc.clone());
            runtime.block_on(async move { decision::decide(&set, &doc, &Context::default()) })
        })
    });
}

fn verify_library(c: &mut Criterion) {
    let Some(lib) = std::env::var_os("GITGATE_GK_LIBRARY") else {
        eprintln!(
            "skipping verify benchmark: set GITGATE_GK_LIBRARY to an export of the gatekeeper-library"
        );
        return;
    };
    let files = suite::find_suites(&[PathBuf::from(lib).join("library")]).expect("suites");
    let options = Options::default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("verify: gatekeeper-library (49 suites)");
    group.sample_size(10);
    group.bench_function(format!("{threads} threads"), |b| {
        b.iter(|| suite::run_suites(&files, &options, threads))
    });
    group.bench_function("1 thread", |b| {
        b.iter(|| suite::run_suites(&files, &options, 1))
    });
    group.finish();
}

criterion_group!(
    benches,
    decide_builtin,
    status_fast_path,
    hand_off,
    verify_library
);

fn main() {
    // As the gitgate binary does: no backtrace capture for every Rego error (RUST_BACKTRACE
    // is often set on developer machines and would be measured too).
    // SAFETY: before any thread exists.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    benches();
    Criterion::default().configure_from_args().final_summary();
}
