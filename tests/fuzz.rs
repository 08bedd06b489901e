//! Fuzzing as ordinary tests (issue 23): structure-aware harnesses driven by `arbitrary` over
//! bytes from a seeded generator, each run a bounded number of cases here
//! (`GITGATE_FUZZ_CASES`, default 300) and as long as one likes by hand
//! (`GITGATE_FUZZ_CASES=1000000 cargo test --release --test fuzz`; a failing case prints its
//! seed, and `GITGATE_FUZZ_SEED` replays it). They assert invariants, not only "no panic":
//!
//! - **the decision path**: an AdmissionReview built by mutating the fixtures' requests (a
//!   field replaced, removed or added, a value nested deep, the wrong type) is parsed or
//!   refused with an error, never a panic; a parsed one always gets a decision, and the same
//!   input gives the same decision;
//! - **the manifest reader**: any bytes, and YAML put together from fragments (anchors,
//!   aliases, merge keys, tags, documents, lists), give documents or an error naming the file;
//! - **quantities**: a canonical form read back is the same quantity as what it came from, and
//!   canonical after one reading back (not always at once: the API server writes `1.953125Ki`
//!   as `2000`, which reads back as `2k`; a 1,000,000-case run found it);
//! - **the traceability match**: a field that Git sets, changed to another value in the
//!   object, never turns `modified` into `traceable` (identity aside: the request's kind,
//!   name and namespace are how the manifest is found, and are not compared).

mod support;

use arbitrary::{Arbitrary, Unstructured};
use gitgate::config::ControllerStamps;
use gitgate::decision::{self, Context};
use gitgate::input::{Document, parse_admission_review};
use gitgate::provenance::matching::{MatchOptions, Status, compare};
use serde_json::{Value, json};

/// How many cases each harness runs.
fn cases() -> u64 {
    std::env::var("GITGATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Runs `case` on the bytes of each seed (or of `GITGATE_FUZZ_SEED` only), naming the seed of
/// a case that panics.
fn run(name: &str, mut case: impl FnMut(&mut Unstructured<'_>)) {
    let seeds: Vec<u64> = match std::env::var("GITGATE_FUZZ_SEED") {
        Ok(seed) => vec![seed.parse().expect("GITGATE_FUZZ_SEED is a number")],
        Err(_) => (1..=cases()).collect(),
    };
    for seed in seeds {
        let bytes = bytes_of(seed, 4096);
        let mut u = Unstructured::new(&bytes);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut u)));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{name}: seed {seed} failed (GITGATE_FUZZ_SEED={seed} replays it): {message}");
        }
    }
}

/// `n` bytes of a xorshift generator seeded with `seed`.
fn bytes_of(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An arbitrary JSON value, at most `depth` levels deep.
fn value(u: &mut Unstructured<'_>, depth: usize) -> Value {
    let choice = if depth == 0 {
        u.int_in_range(0..=4).unwrap_or(0)
    } else {
        u.int_in_range(0..=6).unwrap_or(0)
    };
    match choice {
        0 => Value::Null,
        1 => json!(bool::arbitrary(u).unwrap_or(false)),
        2 => json!(i64::arbitrary(u).unwrap_or(0)),
        3 => json!(
            f64::arbitrary(u)
                .ok()
                .filter(|f| f.is_finite())
                .unwrap_or(0.5)
        ),
        4 => json!(text(u)),
        5 => Value::Array(
            (0..u.int_in_range(0..=3).unwrap_or(0))
                .map(|_| value(u, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..u.int_in_range(0..=3).unwrap_or(0))
                .map(|_| (text(u), value(u, depth - 1)))
                .collect(),
        ),
    }
}

/// Text that is often a Kubernetes-looking word, sometimes anything.
fn text(u: &mut Unstructured<'_>) -> String {
    const WORDS: &[&str] = &[
        "metadata",
        "spec",
        "containers",
        "name",
        "image",
        "kind",
        "Pod",
        "Deployment",
        "apps/v1",
        "v1",
        "namespace",
        "labels",
        "annotations",
        "securityContext",
        "privileged",
        "hostPath",
        "volumes",
        "100m",
        "1Gi",
        "0.5",
        "latest",
        "nginx:latest",
        "",
        "<<",
        "*",
        "items",
        "status",
        "replicas",
        "kube-system",
    ];
    if bool::arbitrary(u).unwrap_or(true) {
        WORDS[u.choose_index(WORDS.len()).unwrap_or(0)].to_string()
    } else {
        String::arbitrary(u).unwrap_or_default()
    }
}

/// Replaces, removes or adds something at a random place of `v`.
fn mutate(u: &mut Unstructured<'_>, v: &mut Value, depth: usize) {
    let descend = depth < 12 && bool::arbitrary(u).unwrap_or(false);
    match v {
        Value::Object(map) if descend && !map.is_empty() => {
            let i = u.choose_index(map.len()).unwrap_or(0);
            let key = map.keys().nth(i).cloned().unwrap_or_default();
            if let Some(child) = map.get_mut(&key) {
                mutate(u, child, depth + 1);
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = u.choose_index(items.len()).unwrap_or(0);
            mutate(u, &mut items[i], depth + 1);
        }
        Value::Object(map) => match u.int_in_range(0..=2).unwrap_or(0) {
            0 if !map.is_empty() => {
                let i = u.choose_index(map.len()).unwrap_or(0);
                let key = map.keys().nth(i).cloned().unwrap_or_default();
                map.remove(&key);
            }
            1 => {
                let (k, nv) = (text(u), value(u, 3));
                map.insert(k, nv);
            }
            _ => *v = value(u, 3),
        },
        _ => {
            *v = if u.ratio(1, 20).unwrap_or(false) {
                // Deep nesting: what a custom resource can carry.
                let levels = u.int_in_range(100..=400).unwrap_or(200);
                (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }))
            } else {
                value(u, 3)
            }
        }
    }
}

/// The fixtures' AdmissionReview bodies (a stand-in when the fixtures are absent).
fn fixture_bodies() -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(dir) = support::fixtures_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension().is_some_and(|x| x == "json")).then_some(p)
            })
            .collect();
        names.sort();
        for p in names {
            out.push(serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap());
        }
    }
    if out.is_empty() {
        out.push(
            serde_json::from_str(include_str!("data/deployment-review.json"))
                .expect("the stand-in review"),
        );
    }
    out
}

#[test]
fn the_decision_path_always_answers_and_answers_the_same() {
    let bodies = fixture_bodies();
    let set = gitgate::builtin::policy_set(&gitgate::policy::Options::default()).unwrap();
    let ctx = Context::default();
    run("decide", |u| {
        let mut body = bodies[u.choose_index(bodies.len()).unwrap_or(0)].clone();
        for _ in 0..u.int_in_range(1..=4).unwrap_or(1) {
            mutate(u, &mut body, 0);
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        let Ok((_, review)) = parse_admission_review("fuzz", &bytes) else {
            return; // refused with an error: what a bad request gets
        };
        let doc = Document::from_review(review);
        let first = decision::decide(&set, &doc, &ctx);
        let again = decision::decide(&set, &doc, &ctx);
        assert_eq!(first, again, "the same input gives the same decision");
        assert_eq!(
            first.allowed,
            first.violations.is_empty() && first.errors.is_empty(),
            "a decision is allowed exactly when nothing denies or fails"
        );
    });
}

#[test]
fn the_manifest_reader_reads_or_refuses_never_panics() {
    const FRAGMENTS: &[&str] = &[
        "apiVersion: v1\n",
        "kind: List\n",
        "items:\n- a: 1\n",
        "metadata: &m {name: x}\n",
        "spec: *m\n",
        "<<: *m\n",
        "! <<: {a: b}\n",
        "a: !!str 1\n",
        "b: !custom x\n",
        "---\n",
        "...\n",
        "- [1, 2, {c: d}]\n",
        "x: [[[[[[[[[[1]]]]]]]]]]\n",
        "\"q\": 'r'\n",
        "%YAML 1.2\n",
        "k: |\n  block\n",
        "\t tab: 1\n",
        "{\"json\": true}\n",
    ];
    run("manifest", |u| {
        let bytes: Vec<u8> = if bool::arbitrary(u).unwrap_or(false) {
            Vec::<u8>::arbitrary(u).unwrap_or_default()
        } else {
            (0..u.int_in_range(1..=12).unwrap_or(1))
                .map(|_| FRAGMENTS[u.choose_index(FRAGMENTS.len()).unwrap_or(0)])
                .collect::<String>()
                .into_bytes()
        };
        match gitgate::manifest::parse_bytes("fuzz.yaml", &bytes) {
            Ok(docs) => {
                let _ = gitgate::manifest::expand_lists(docs);
            }
            Err(e) => assert!(e.to_string().contains("fuzz.yaml"), "names the file: {e}"),
        }
        let (_, notes) = gitgate::objects::read_file_objects("fuzz.yaml", &bytes);
        assert!(notes.iter().all(|n| n.path == "fuzz.yaml"));
    });
}

#[test]
fn canonical_quantities_are_canonical_and_the_same_quantity() {
    use gitgate::provenance::quantity::{canonical, same};
    run("quantity", |u| {
        let digits = u64::arbitrary(u).unwrap_or(0) % 100_000;
        let fraction = u64::arbitrary(u).unwrap_or(0) % 1000;
        const SUFFIXES: &[&str] = &[
            "", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "e3", "E-2", "u", "n",
        ];
        let suffix = SUFFIXES[u.choose_index(SUFFIXES.len()).unwrap_or(0)];
        let text = if bool::arbitrary(u).unwrap_or(false) {
            format!("{digits}.{fraction}{suffix}")
        } else {
            format!("{digits}{suffix}")
        };
        if let Some(c) = canonical(&text) {
            // Read back, a canonical form is the same quantity (not always the same text: the
            // API server writes `1.953125Ki` as `2000`, which reads back as `2k`).
            let again = canonical(&c).unwrap_or_else(|| panic!("{text} → {c}: not a quantity"));
            assert_eq!(
                canonical(&again).as_deref(),
                Some(again.as_str()),
                "{c} → {again}"
            );
            assert_eq!(same(&json!(text), &json!(c)), Some(true), "{text} and {c}");
            assert_eq!(
                same(&json!(c), &json!(again)),
                Some(true),
                "{c} and {again}"
            );
            assert_eq!(
                same(&json!(text), &json!(again)),
                Some(true),
                "{text} and {again}"
            );
        }
    });
}

#[test]
fn a_field_git_sets_changed_in_the_object_is_never_traceable() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let git: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(dir.join("manifests/deploy.yaml")).unwrap(),
    )
    .unwrap();
    let review: Value = serde_json::from_slice(
        &std::fs::read(dir.join("004-create-deployments-web.json")).unwrap(),
    )
    .unwrap();
    let object = review["request"]["object"].clone();
    let options = MatchOptions::from(&ControllerStamps::default());
    assert_eq!(
        compare(&git, &object, None, &options).status,
        Status::Traceable
    );
    // Every leaf Git sets, as a JSON pointer.
    let mut leaves = Vec::new();
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| {
                walk(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                )
            }),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, c)| walk(c, format!("{at}/{i}"), out)),
            _ => out.push(at),
        }
    }
    walk(&git, String::new(), &mut leaves);
    // Identity is the index's (the request's kind, name and namespace find the manifest),
    // never compared: an object keeps its identity across API versions.
    leaves.retain(|p| {
        !matches!(
            p.as_str(),
            "/apiVersion" | "/kind" | "/metadata/name" | "/metadata/namespace"
        )
    });
    run("match", |u| {
        let pointer = &leaves[u.choose_index(leaves.len()).unwrap_or(0)];
        let mut changed = object.clone();
        let Some(slot) = changed.pointer_mut(pointer) else {
            return;
        };
        let before = slot.clone();
        let new = value(u, 1);
        // Another value, not merely another spelling of the same one.
        if gitgate::provenance::matching::same_value(&before, &new)
            || gitgate::provenance::quantity::same(&before, &new) == Some(true)
        {
            return;
        }
        *slot = new;
        let outcome = compare(&git, &changed, None, &options);
        assert_eq!(
            outcome.status,
            Status::Modified,
            "{pointer}: {before} → {} was taken as traceable",
            changed.pointer(pointer).unwrap()
        );
    });
}
