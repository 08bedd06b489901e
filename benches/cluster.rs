//! What the cluster adds to a decision (criterion): a referential policy reading a
//! `data.inventory` of 50,000 objects (as the webhook's caches publish it), and the built-in
//! library with that inventory present (its policies do not read it, so it is not given to
//! them).
//!
//! `cargo bench --bench cluster`; results are recorded in BENCHMARKS.md.

use criterion::{Criterion, criterion_group, criterion_main};
use gitgate::cluster::inventory::Inventory;
use gitgate::decision::{self, Context};
use gitgate::input::{Document, Source};
use gitgate::policy::Options;
use gitgate::policy::load::{SourceFile, load};
use gitgate::policy::matcher::NoNamespaces;
use kube_core::admission::Operation;
use serde_json::{Value, json};

/// A referential template and its constraint (`data.inventory`), shared with the tests.
const UNIQUE_HOST: &str = include_str!("../tests/data/unique-host.yaml");

fn ingress(ns: &str, name: &str, host: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns, "uid": "u", "resourceVersion": "1"},
        "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}})
}

/// 100 namespaces × (20 Ingresses, 480 ConfigMaps).
fn inventory() -> Inventory {
    let mut inventory = Inventory::default();
    for n in 0..100 {
        let ns = format!("team-{n:03}");
        for i in 0..20 {
            inventory.insert(&ingress(
                &ns,
                &format!("web-{i}"),
                &format!("{ns}-{i}.example.com"),
            ));
        }
        for i in 0..480 {
            inventory.insert(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("config-{i}"), "namespace": ns},
                "data": {"LOG_LEVEL": "info"}}));
        }
    }
    inventory
}

fn decide_with_inventory(c: &mut Criterion) {
    let inventory = inventory();
    assert_eq!(inventory.len(), 50_000);
    let data = inventory.data();
    let ctx = Context {
        namespaces: &NoNamespaces,
        data: Some(&data),
    };
    let set = load(
        &[SourceFile {
            path: "unique-host.yaml".into(),
            text: UNIQUE_HOST.into(),
        }],
        &Options::default(),
    )
    .unwrap();
    let doc = |host: &str| {
        Document::from_manifest(
            "bench",
            Operation::Create,
            Some(ingress("shop", "shop", host)),
            None,
            Source::admission(),
        )
        .unwrap()
    };
    let taken = doc("team-050-7.example.com");
    assert!(!decision::decide(&set, &taken, &ctx).allowed);
    c.bench_function(
        "decide: unique host against a 50,000-object inventory (denied)",
        |b| b.iter(|| decision::decide(&set, &taken, &ctx)),
    );
    let free = doc("free.example.com");
    assert!(decision::decide(&set, &free, &ctx).allowed);
    c.bench_function(
        "decide: unique host against a 50,000-object inventory (allowed)",
        |b| b.iter(|| decision::decide(&set, &free, &ctx)),
    );
    // The same policy and an inventory of one Ingress: what the engine costs besides the
    // inventory's size (the data added to the evaluation, the program prepared again).
    let small = Inventory::of([&ingress("team-000", "web-0", "team-000-0.example.com")]).data();
    // 49,999 ConfigMaps and one Ingress: the inventory's size without the policy's work.
    let mut big = inventory.clone();
    for n in 0..100 {
        for i in 0..20 {
            let ing = ingress(&format!("team-{n:03}"), &format!("web-{i}"), "x");
            big.remove(&gitgate::cluster::inventory::Slot::of(&ing).unwrap());
        }
    }
    big.insert(&ingress("team-000", "web-0", "team-000-0.example.com"));
    let big = big.data();
    let big_ctx = Context {
        namespaces: &NoNamespaces,
        data: Some(&big),
    };
    c.bench_function(
        "decide: unique host, 1 Ingress among 49,999 ConfigMaps (allowed)",
        |b| b.iter(|| decision::decide(&set, &free, &big_ctx)),
    );
    let small_ctx = Context {
        namespaces: &NoNamespaces,
        data: Some(&small),
    };
    c.bench_function(
        "decide: unique host against a 1-object inventory (allowed)",
        |b| b.iter(|| decision::decide(&set, &free, &small_ctx)),
    );
    let builtin = gitgate::builtin::policy_set(&Options::default()).unwrap();
    c.bench_function(
        "decide: built-in library with a 50,000-object inventory present",
        |b| b.iter(|| decision::decide(&builtin, &free, &ctx)),
    );
    c.bench_function(
        "inventory: one change and a new snapshot (50,000 objects)",
        |b| {
            let mut inventory = inventory.clone();
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                inventory.insert(&ingress("team-042", "web-3", &format!("h{i}.example.com")));
                inventory.data()
            })
        },
    );
}

criterion_group!(benches, decide_with_inventory);
criterion_main!(benches);
