//! Bounded work on the request path (issue 12), on the real binary over TLS:
//! - an object nested deeper than gitgate reads is decided (refused, naming the limit), never
//!   answered with HTTP 400;
//! - objects nested up to the limits gitgate accepts (a JSON request near serde_json's 128
//!   levels, a YAML manifest in Git at the parser's 64) overflow no thread's stack: the
//!   runtime's threads, the decision threads and the mirror's have room, and manifest parsing
//!   fits a 2 MiB thread;
//! - a routine apply sent while a huge object is being decided is answered meanwhile.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::binary::{Served, free_port};
use support::pki::Pki;

/// `{"child": {"child": ... {"leaf": 1}}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    let mut value = json!({"leaf": 1});
    for _ in 1..levels {
        value = json!({ "child": value });
    }
    value
}

/// A custom resource `demo/<name>` whose spec is `levels` objects deep.
fn tree(name: &str, levels: usize) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Tree",
        "metadata": {"name": name, "namespace": "demo"}, "spec": nested(levels)})
}

/// The CREATE of `object` as the API server sends it (shaped like fixture 026).
fn create(uid: &str, resource: (&str, &str, &str, &str), object: &Value) -> Vec<u8> {
    let (group, version, kind, plural) = resource;
    let mut object = object.clone();
    let meta = object["metadata"].as_object_mut().unwrap();
    meta.insert("uid".into(), json!("2a06b223-f4a5-4958-820f-d7f288778fd8"));
    meta.insert("creationTimestamp".into(), json!("2026-11-24T19:23:47Z"));
    meta.insert("generation".into(), json!(1));
    let review = json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": plural},
            "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller",
                "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object, "oldObject": null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                "fieldManager": "kustomize-controller"}}});
    // serde_json writes deep values recursively: on a thread with room.
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || serde_json::to_vec(&review).unwrap())
        .unwrap()
        .join()
        .unwrap()
}

const TREE: (&str, &str, &str, &str) = ("example.com", "v1", "Tree", "trees");
const DEPLOYMENT: (&str, &str, &str, &str) = ("apps", "v1", "Deployment", "deployments");

/// YAML nested `levels` deep as block mappings: `a:\n  a:\n    ...`.
fn deep_yaml(levels: usize) -> String {
    let mut text = String::new();
    for i in 0..levels - 1 {
        text += &format!("{}a:\n", "  ".repeat(i));
    }
    text += &format!("{}leaf: 1\n", "  ".repeat(levels - 1));
    text
}

/// A policy that walks every value of the object, as policies that look for a value anywhere
/// do: its evaluation recurses as deep as the object nests.
const WALKS: &str = "package team.walks
import rego.v1
deny contains msg if {
	walk(input.review.object, [path, value])
	value == \"forbidden\"
	msg := sprintf(\"forbidden value at %v\", [path])
}
";

/// A policy whose work grows with the square of a container's `env`: each pair of entries is
/// compared, as a naive "no variable twice" check does. For the huge object it runs until
/// its time limit, whatever else in the decision gets faster.
const PAIRWISE: &str = "package team.unique_env
import rego.v1
deny contains msg if {
\tsome c in input.review.object.spec.template.spec.containers
\tsome i, j
\tc.env[i].name == c.env[j].name
\ti < j
\tmsg := sprintf(\"container %s sets %s twice\", [c.name, c.env[i].name])
}
";

/// The webhook binary serving `repo` with the built-in policies, [`WALKS`] and
/// [`PAIRWISE`], its port.
fn serve(pki: &Pki, repo: &Path) -> (Served, u16) {
    let port = free_port();
    let policies = pki.path("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("walks.rego"), WALKS).unwrap();
    std::fs::write(policies.join("pairwise.rego"), PAIRWISE).unwrap();
    std::fs::write(
        pki.path("gitgate.yaml"),
        format!(
            "repository: {{url: {}, refresh: 1h}}\npolicies: {{paths: [{}]}}\nserver:\n  listen: 127.0.0.1:{port}\n  tlsCert: {}\n  tlsKey: {}\n  timeout: 5s\n",
            repo.display(),
            policies.display(),
            pki.path("server.crt").display(),
            pki.path("server.key").display(),
        ),
    )
    .unwrap();
    let config = pki.path("gitgate.yaml");
    let served = Served::start(&["-c", config.to_str().unwrap(), "serve"], &[]);
    (served, port)
}

async fn wait_ready(client: &reqwest::Client, port: u16) {
    for _ in 0..400 {
        if let Ok(resp) = client
            .get(format!("https://localhost:{port}/readyz"))
            .send()
            .await
            && resp.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready");
}

async fn post(client: &reqwest::Client, port: u16, body: Vec<u8>) -> (u16, Value) {
    let resp = client
        .post(format!("https://localhost:{port}/validate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("an answer");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn deep_objects_are_decided_and_overflow_no_stack() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    // Git holds a custom resource nested near the most a request may be (JSON), and a
    // manifest nested as deep as the YAML parser accepts, which the mirror's thread reads.
    // The request: review, request, object, then the spec 124 levels deep: 127, the most
    // serde_json reads.
    let accepted = tree("deep", 124);
    let manifest = serde_json::to_vec_pretty(&accepted).unwrap();
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n  namespace: demo\ndata:\n  x: y\nextra:\n{}",
        deep_yaml(60)
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    let repo = support::repo_with(&[("tree.json", &manifest), ("deep.yaml", yaml.as_bytes())]);
    let (served, port) = serve(&pki, repo.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = pki.client(None);
        wait_ready(&client, port).await;
        // Accepted: decided as any object (Git holds it as it is).
        let (status, answer) = post(&client, port, create("deep-ok", TREE, &accepted)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["response"]["uid"], "deep-ok");
        assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
        // A policy walking it reaches its deepest value.
        let mut forbidden = accepted.clone();
        let mut leaf = &mut forbidden["spec"];
        while leaf.get("child").is_some() {
            leaf = &mut leaf["child"];
        }
        leaf["leaf"] = json!("forbidden");
        let (status, answer) = post(&client, port, create("deep-no", TREE, &forbidden)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
        let message = answer["response"]["status"]["message"].as_str().unwrap();
        assert!(message.contains("forbidden value at"), "{message}");
        // Deeper than gitgate reads: an AdmissionReview answer, refused, naming the limit.
        let (status, answer) = post(
            &client,
            port,
            create("too-deep", TREE, &tree("deeper", 140)),
        )
        .await;
        assert_eq!(status, 200, "a decision, not a bad request: {answer}");
        assert_eq!(answer["response"]["uid"], "too-deep");
        assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
        let message = answer["response"]["status"]["message"].as_str().unwrap();
        assert!(message.contains("deeper than 128 levels"), "{message}");
        // The server is still there.
        let (status, answer) = post(&client, port, create("after", TREE, &accepted)).await;
        assert_eq!(
            (status, &answer["response"]["allowed"]),
            (200, &json!(true))
        );
    });
    drop(runtime);
    let (status, logs) = served.stop();
    assert!(status.success(), "{status:?}: {logs}");
}

#[test]
fn yaml_nested_to_the_limit_parses_on_a_2_mib_thread() {
    for levels in [40, 60, 64] {
        let text = deep_yaml(levels);
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                gitgate::manifest::parse_str("deep.yaml", &text)
                    .map(|docs| docs.len())
                    .map_err(|e| e.to_string())
            })
            .unwrap()
            .join()
            .expect("no overflow");
        assert_eq!(parsed, Ok(1), "{levels} levels");
    }
    // One level more than the parser accepts is an error in gitgate's words.
    let text = deep_yaml(66);
    let parsed = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || gitgate::manifest::parse_str("deep.yaml", &text).map(|_| ()))
        .unwrap()
        .join()
        .expect("no overflow");
    let e = parsed.unwrap_err().to_string();
    assert!(e.contains("nested deeper than 64 levels"), "{e}");
}

/// A Deployment `demo/<name>` with `env` entries in its one container.
fn deployment(name: &str, env: usize) -> Value {
    let env: Vec<Value> = (0..env)
        .map(|i| json!({"name": format!("VAR_{i:05}"), "value": format!("value-{i}")}))
        .collect();
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/example/app:1.0.0",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                    "env": env}]}}}})
}

#[test]
fn a_routine_apply_is_answered_while_a_huge_object_is_decided() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let (huge, small) = (deployment("huge", 30_000), deployment("small", 2));
    let repo = support::repo_with(&[
        ("huge.json", &serde_json::to_vec_pretty(&huge).unwrap()),
        ("small.json", &serde_json::to_vec_pretty(&small).unwrap()),
    ]);
    let (served, port) = serve(&pki, repo.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = pki.client(None);
        wait_ready(&client, port).await;
        let (huge_body, small_body) = (
            create("huge", DEPLOYMENT, &huge),
            create("small", DEPLOYMENT, &small),
        );
        let started = Instant::now();
        let big = tokio::spawn({
            let client = client.clone();
            async move {
                let answer = post(&client, port, huge_body).await;
                (answer, started.elapsed())
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = started.elapsed();
        let (status, answer) = post(&pki.client(None), port, small_body).await;
        let small_took = started.elapsed();
        eprintln!("small sent at {sent:?}");
        let big_done = big.is_finished();
        let ((big_status, big_answer), big_took) = big.await.unwrap();
        eprintln!("small answered at {small_took:?}, huge at {big_took:?}");
        assert_eq!(status, 200);
        assert_eq!(answer["response"]["uid"], "small");
        assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
        assert!(
            !big_done,
            "the small request was answered after the huge one ({small_took:?}, {big_took:?})"
        );
        // The huge one is answered too, by the failure mode at its deadline.
        assert_eq!(big_status, 200);
        assert_eq!(big_answer["response"]["uid"], "huge");
        assert_eq!(big_answer["response"]["allowed"], false, "{big_answer}");
    });
    drop(runtime);
    // The decision abandoned at the deadline does not hold up the shutdown.
    let stopping = Instant::now();
    let (status, logs) = served.stop();
    assert!(status.success(), "{status:?}: {logs}");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "{:?}",
        stopping.elapsed()
    );
}
