//! `gitgate serve` over real HTTPS on loopback, with a CA and certificates made in the test:
//! every real AdmissionReview fixture gets its expected verdict, bad requests get clear
//! answers and the server keeps serving, certificates rotate without a failed request,
//! mutual TLS, the failure mode, graceful shutdown, and logs that never hold Secret data.

mod support;

use support::binary::{Served, free_port};
use support::pki::Pki;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gitgate::config::{Config, FailureMode};
use gitgate::policy::load::{SourceFile, load};
use gitgate::policy::{Options, PolicySet};
use gitgate::serve::{AppState, Running, start};
use serde_json::{Value, json};

fn review(uid: &str, object: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "p", "namespace": "demo", "operation": "CREATE",
        "userInfo": {"username": "alice"}, "object": object, "oldObject": null, "dryRun": false}})
}

fn pod(image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "demo"},
           "spec": {"containers": [{"name": "c", "image": image,
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}})
}

async fn serve(pki: &Pki, set: PolicySet, config: &Config) -> Running {
    pki.serve(AppState::new(set, config), config).await
}

fn builtin() -> PolicySet {
    gitgate::builtin::policy_set(&Options::default()).unwrap()
}

async fn post(
    client: &reqwest::Client,
    addr: SocketAddr,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let resp = client
        .post(format!("https://localhost:{}/validate", addr.port()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the request completes");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// (fixture, allowed, whether the response carries warnings).
const EXPECTED: &[(&str, bool, bool)] = &[
    ("001-create-namespaces-demo.json", true, false),
    ("002-create-rolebindings-devs-edit.json", true, false),
    (
        "003-create-clusterrolebindings-gitops-admin.json",
        true,
        false,
    ),
    ("004-create-deployments-web.json", true, false),
    ("005-create-configmaps-web-config.json", true, false),
    ("006-create-services-web.json", true, false),
    ("007-update-deployments-web.json", true, false),
    ("008-update-deployments-web.json", true, false),
    ("009-update-deployments-web.json", true, false),
    ("010-update-deployments-web.json", true, false),
    ("011-update-deployments-web.json", true, false),
    ("012-create-secrets-db-pass.json", true, false),
    ("013-create-roles-dev-all.json", true, false),
    ("014-create-rolebindings-dev-all.json", true, false),
    ("015-update-deployments-scale-web.json", true, false),
    ("016-update-deployments-web.json", false, false),
    ("017-update-configmaps-web-config.json", true, false),
    ("018-update-deployments-web.json", false, false),
    ("019-update-configmaps-web-config.json", true, false),
    ("020-delete-configmaps-web-config.json", true, false),
    ("021-delete-deployments-web.json", true, false),
    ("022-create-serviceaccounts-default.json", true, false),
    ("023-create-deployments-web2.json", true, false),
    (
        "024-create-customresourcedefinitions-widgets.example.com.json",
        true,
        false,
    ),
    ("025-create-apiservices-v1.example.com.json", true, false),
    ("026-create-widgets-blue.json", true, false),
    ("027-create-pods-debug.json", false, true),
    ("028-delete-pods-debug.json", true, false),
    ("029-delete-pods-debug.json", true, false),
    ("030-create-deployments-quant.json", true, false),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_gets_its_verdict_over_tls() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let server = serve(&pki, builtin(), &Config::default()).await;
    let client = pki.client(None);
    for (file, allowed, warned) in EXPECTED {
        let body = std::fs::read(dir.join(file)).unwrap();
        let request: Value = serde_json::from_slice(&body).unwrap();
        let (status, answer) = post(&client, server.addr, body).await;
        assert_eq!(status, 200, "{file}: {answer}");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{file}");
        assert_eq!(answer["kind"], "AdmissionReview");
        let response = &answer["response"];
        assert_eq!(
            response["uid"], request["request"]["uid"],
            "{file}: the uid is echoed"
        );
        assert_eq!(response["allowed"], *allowed, "{file}: {response}");
        assert_eq!(
            response.get("warnings").is_some(),
            *warned,
            "{file}: {response}"
        );
        if !allowed {
            assert_eq!(response["status"]["code"], 403, "{file}");
            let message = response["status"]["message"].as_str().unwrap();
            assert!(
                message.contains("[latest-tag]") || message.contains("[host-path]"),
                "{file}: {message}"
            );
        }
    }
    let metrics = client
        .get(format!("https://localhost:{}/metrics", server.addr.port()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "gitgate_admission_requests_total{operation=\"CREATE\",verdict=\"denied\",dry_run=\"false\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("gitgate_admission_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gitgate_policy_findings_total{policy=\"host-path\",action=\"deny\"}"),
        "{metrics}"
    );
    server.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_answers_and_the_server_keeps_serving() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let server = serve(&pki, builtin(), &Config::default()).await;
    let client = pki.client(None);
    let addr = server.addr;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "malformed JSON",
            b"{\"kind\": ".to_vec(),
            400,
            "malformed AdmissionReview JSON",
        ),
        ("empty body", Vec::new(), 400, "empty body"),
        (
            "wrong kind",
            br#"{"kind":"Pod","apiVersion":"v1"}"#.to_vec(),
            400,
            "expected kind AdmissionReview",
        ),
        (
            "wrong apiVersion",
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v2","request":{}}"#
                .to_vec(),
            400,
            "admission.k8s.io/v1 or v1beta1",
        ),
        (
            "no uid",
            serde_json::to_vec(&{
                let mut r = review("x", pod("a:1"));
                r["request"].as_object_mut().unwrap().remove("uid");
                r
            })
            .unwrap(),
            400,
            "no uid",
        ),
        (
            "no request",
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#.to_vec(),
            400,
            "no request",
        ),
    ];
    for (what, body, status, text) in cases {
        let (got, answer) = post(&client, addr, body).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert!(answer.to_string().contains(text), "{what}: {answer}");
    }
    // 20 MB: refused by the body limit (8 MiB by default).
    let mut big = review("big", pod("a:1"));
    big["request"]["object"]["metadata"]["annotations"] =
        json!({"x": "y".repeat(20 * 1024 * 1024)});
    let (got, _) = post(&client, addr, serde_json::to_vec(&big).unwrap()).await;
    assert_eq!(got, 413);
    // Still serving.
    let (got, answer) = post(
        &client,
        addr,
        serde_json::to_vec(&review("after", pod("a:1"))).unwrap(),
    )
    .await;
    assert_eq!(got, 200);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    server.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1beta1_is_answered_in_v1beta1_over_http2_and_http1() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let server = serve(&pki, builtin(), &Config::default()).await;
    let mut body = review("beta", pod("busybox"));
    body["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let client = pki.client(None);
    let resp = client
        .post(format!("https://localhost:{}/validate", server.addr.port()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.version(),
        reqwest::Version::HTTP_2,
        "ALPN negotiates HTTP/2"
    );
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(answer["response"]["allowed"], false);
    let http1 = reqwest::Client::builder()
        .tls_backend_preconfigured({
            let mut c = pki.rustls_client(None);
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            c
        })
        .http1_only()
        .build()
        .unwrap();
    let resp = http1
        .post(format!("https://localhost:{}/validate", server.addr.port()))
        .json(&review("one", pod("a:1")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.status(), 200);
    server.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_with_no_failed_request() {
    let pki = Pki::new();
    let first = pki.issue("server", "first");
    let server = serve(&pki, builtin(), &Config::default()).await;
    let addr = server.addr;
    // New connections for every request, so that each handshake shows the certificate served.
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(pki.rustls_client(None))
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let served = |resp: &reqwest::Response| {
        resp.extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .map(|c| c.to_vec())
            .unwrap()
    };
    let body = serde_json::to_vec(&review("r", pod("a:1"))).unwrap();
    let resp = client
        .post(format!("https://localhost:{}/validate", addr.port()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(served(&resp), first);
    let sender = {
        let client = client.clone();
        let body = body.clone();
        tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..150 {
                let resp = client
                    .post(format!("https://localhost:{}/validate", addr.port()))
                    .body(body.clone())
                    .send()
                    .await;
                let resp = resp.expect("no request fails during the rotation");
                assert_eq!(resp.status(), 200);
                ok += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ok
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = pki.issue("server", "second");
    let sent = sender.await.unwrap();
    assert_eq!(sent, 150);
    let resp = client
        .post(format!("https://localhost:{}/validate", addr.port()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(served(&resp), second, "the new certificate is served");
    server.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_requires_client_certificates_on_validate_only() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    pki.issue("apiserver", "kube-apiserver");
    let mut config = Config::default();
    config.server.client_ca = Some(pki.path("ca.crt"));
    let server = serve(&pki, builtin(), &config).await;
    let body = serde_json::to_vec(&review("m", pod("a:1"))).unwrap();
    let anonymous = pki.client(None);
    let (status, _) = post(&anonymous, server.addr, body.clone()).await;
    assert_eq!(status, 401, "no client certificate");
    let health = anonymous
        .get(format!("https://localhost:{}/healthz", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "probes need no client certificate");
    let apiserver = reqwest::Client::builder()
        .tls_backend_preconfigured(pki.rustls_client(Some("apiserver")))
        .build()
        .unwrap();
    let (status, answer) = post(&apiserver, server.addr, body).await;
    assert_eq!(status, 200, "{answer}");
    server.handle.shutdown();
}

fn slow_policy(ms_spin: u64) -> PolicySet {
    // A policy that takes a long time: a large comprehension.
    let n = 200 * ms_spin;
    let text = format!(
        "package team.slow\nimport rego.v1\ndeny contains \"slow\" if {{ count([x | some x in numbers.range(1, {n}); x < 0]) > 0 }}\n"
    );
    load(
        &[SourceFile {
            path: "slow.rego".into(),
            text,
        }],
        &Options::default(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_mode_answers_when_no_decision_comes_in_time() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    for (mode, allowed, code) in [
        (FailureMode::Deny, false, Some(500)),
        (FailureMode::Allow, true, None),
    ] {
        let mut config = Config::default();
        config.server.timeout = Duration::from_millis(20);
        config.server.failure_mode = mode;
        let server = serve(&pki, slow_policy(2000), &config).await;
        let (status, answer) = post(
            &pki.client(None),
            server.addr,
            serde_json::to_vec(&review("slow", pod("a:1"))).unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(answer["response"]["allowed"], allowed, "{mode:?}: {answer}");
        assert_eq!(
            answer["response"]["status"]["code"].as_u64(),
            code.map(|c: u64| c),
            "{answer}"
        );
        server.handle.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let mut config = Config::default();
    config.server.timeout = Duration::from_secs(30);
    let server = serve(&pki, slow_policy(2000), &config).await;
    let client = pki.client(None);
    let addr = server.addr;
    let in_flight = tokio::spawn(async move {
        post(
            &client,
            addr,
            serde_json::to_vec(&review("inflight", pod("a:1"))).unwrap(),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !in_flight.is_finished(),
        "the request is still in flight at shutdown"
    );
    server
        .handle
        .graceful_shutdown(Some(Duration::from_secs(20)));
    let (status, answer) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"]["uid"], "inflight");
    server.task.await.unwrap().unwrap();
}

/// Runs the real binary, posts fixture 012 (a Secret) and returns what it logged.
fn logs_of_binary_serving(pki: &Pki, fixture: &Path, format: &str) -> String {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    let served = Served::start(
        &[
            "serve",
            "--listen",
            &listen,
            "--log-format",
            format,
            "-vv",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = pki.client(None);
        let url = format!("https://localhost:{port}/validate");
        let body = std::fs::read(fixture).unwrap();
        for _ in 0..100 {
            if let Ok(resp) = client.post(&url).body(body.clone()).send().await {
                assert_eq!(resp.status(), 200);
                let answer: Value = resp.json().await.unwrap();
                assert_eq!(answer["response"]["allowed"], true);
                // A malformed copy too: its error must not echo the data either.
                let broken = String::from_utf8(body.clone())
                    .unwrap()
                    .replace("\"password\"", "\"password\": 1, \"x\"");
                let _ = client.post(&url).body(broken).send().await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not come up");
    });
    let (status, logs) = served.stop();
    assert!(
        status.success(),
        "SIGTERM ends the server cleanly: {status:?}"
    );
    logs
}

#[test]
fn secret_data_never_reaches_a_log() {
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let fixture = dir.join("012-create-secrets-db-pass.json");
    let request: Value = serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
    let encoded = request["request"]["object"]["data"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        encoded, "czNjcjN0",
        "the fixture's Secret holds s3cr3t, base64-encoded"
    );
    for format in ["json", "text"] {
        let logs = logs_of_binary_serving(&pki, &fixture, format);
        let uid = request["request"]["uid"].as_str().unwrap();
        assert!(
            logs.contains(uid),
            "the decision is logged ({format}):\n{logs}"
        );
        assert!(
            logs.contains("db-pass"),
            "with the object's name ({format})"
        );
        for secret in ["s3cr3t", &encoded] {
            assert!(
                !logs.contains(secret),
                "{format} logs hold the secret {secret:?}:\n{logs}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exempt_subresources_are_admitted_and_dry_runs_are_decided() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let server = serve(&pki, builtin(), &Config::default()).await;
    let client = pki.client(None);
    // A status update of a pod that breaks a policy: `status` is exempt by default.
    let mut status = review("status", pod("busybox"));
    status["request"]["subResource"] = json!("status");
    // As the API server sends a status write: the old object beside the new one, which
    // differ in status only.
    let mut old = status["request"]["object"].clone();
    old["status"] = json!({"phase": "Pending"});
    status["request"]["oldObject"] = old;
    status["request"]["operation"] = json!("UPDATE");
    let (_, answer) = post(&client, server.addr, serde_json::to_vec(&status).unwrap()).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    // The same object as a dry run is decided like any request.
    let mut dry = review("dry", pod("busybox"));
    dry["request"]["dryRun"] = json!(true);
    let (_, answer) = post(&client, server.addr, serde_json::to_vec(&dry).unwrap()).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    server.handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_refuses_what_git_does_not_hold() {
    use gitgate::provenance::approval::Window;
    use gitgate::provenance::mirror::{Mirror, Source};
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    // A GitOps repository holding the fixtures' manifests.
    let read = |f: &str| std::fs::read(dir.join("manifests").join(f)).unwrap();
    let (deploy, cm, svc, quant) = (
        read("deploy.yaml"),
        read("cm.yaml"),
        read("svc.yaml"),
        read("quant.yaml"),
    );
    let repo = support::repo_with(&[
        ("deploy.yaml", &deploy),
        ("cm.yaml", &cm),
        ("svc.yaml", &svc),
        ("quant.yaml", &quant),
    ]);
    let source = Source {
        remote: None,
        path: repo.path().to_path_buf(),
        branch: "main".into(),
        roots: Vec::new(),
        renderer: Default::default(),
        default_namespace: "default".into(),
        window: Window {
            commits: 20,
            max_age: Duration::from_secs(86_400),
        },
        trust: None,
        refresh: Duration::from_secs(30),
        acknowledge_rewind: None,
    };
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let mirror = Arc::new(Mirror::default());
    let config = Config::default();
    let server = pki
        .serve(
            AppState::new(builtin(), &config).with_mirror(mirror.clone()),
            &config,
        )
        .await;
    let client = pki.client(None);
    let ready = |client: reqwest::Client| async move {
        client
            .get(format!("https://localhost:{}/readyz", server.addr.port()))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        ready(client.clone()).await,
        503,
        "not ready before the first sync"
    );
    mirror.sync(&source).unwrap();
    assert_eq!(ready(client.clone()).await, 200);
    for (file, allowed) in [
        ("004-create-deployments-web.json", true),
        ("030-create-deployments-quant.json", true),
        ("016-update-deployments-web.json", false),
        ("018-update-deployments-web.json", false),
        ("020-delete-configmaps-web-config.json", false),
        ("022-create-serviceaccounts-default.json", false),
    ] {
        let (status, answer) =
            post(&client, server.addr, std::fs::read(dir.join(file)).unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(answer["response"]["allowed"], allowed, "{file}: {answer}");
        if !allowed {
            let message = answer["response"]["status"]["message"].as_str().unwrap();
            assert!(
                message.contains("[provenance] provenance:"),
                "{file}: {message}"
            );
        }
    }
    server.handle.shutdown();
}

/// `POST /refresh` with `headers` and `body`: the status and the JSON answer.
async fn post_refresh(
    client: &reqwest::Client,
    addr: SocketAddr,
    headers: &[(&str, String)],
    body: &'static str,
) -> (u16, Value) {
    let mut request = client.post(format!("https://localhost:{}/refresh", addr.port()));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let resp = request
        .body(body)
        .send()
        .await
        .expect("the request completes");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_syncs_the_mirror_now_for_an_authenticated_git_host() {
    use gitgate::provenance::mirror::{Mirror, Source};
    use hmac::Mac;
    let Some(dir) = support::fixtures_dir() else {
        return;
    };
    // A repository whose first commit holds the Deployment only; the ConfigMap comes later.
    let manifests = dir.join("manifests");
    let repo = support::repo_with(&[(
        "deploy.yaml",
        &std::fs::read(manifests.join("deploy.yaml")).unwrap(),
    )]);
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, "push-hook-token\n").unwrap();
    let config = Config::parse(
        "refresh.yaml",
        &format!(
            "repository:\n  url: {}\n  refresh: 1h\nserver:\n  refreshTokenFile: {}\n",
            repo.path().display(),
            token_file.display()
        ),
    )
    .unwrap();
    let source = Source::from_config(&config).unwrap().unwrap();
    let mirror = Arc::new(Mirror::default());
    mirror.spawn(source);
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let server = pki
        .serve(
            AppState::new(builtin(), &config).with_mirror(mirror.clone()),
            &config,
        )
        .await;
    let client = pki.client(None);
    let fixture = std::fs::read(dir.join("005-create-configmaps-web-config.json")).unwrap();
    let admitted = |client: reqwest::Client, fixture: Vec<u8>| async move {
        let (status, answer) = post(&client, server.addr, fixture).await;
        assert_eq!(status, 200, "{answer}");
        answer["response"]["allowed"] == true
    };
    for _ in 0..600 {
        if mirror.snapshot().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mirror.snapshot().is_some(), "the first sync never came");
    assert!(
        !admitted(client.clone(), fixture.clone()).await,
        "the ConfigMap is in no commit yet"
    );

    support::commit_files(
        repo.path(),
        &[(
            "cm.yaml",
            &std::fs::read(manifests.join("cm.yaml")).unwrap(),
        )],
        "web-config",
    );

    // Refused: no credentials, a wrong token, another scheme, a signature of another body.
    let body = r#"{"ref":"refs/heads/main"}"#;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"push-hook-token").unwrap();
    mac.update(br#"{"ref":"refs/heads/other"}"#);
    let other_body = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong-token".to_string())],
        vec![("authorization", "Basic cHVzaC1ob29rLXRva2Vu".to_string())],
        vec![("x-hub-signature-256", other_body)],
    ] {
        let (status, answer) = post_refresh(&client, server.addr, &headers, body).await;
        assert_eq!(status, 401, "{headers:?}: {answer}");
        let why = answer["error"].as_str().unwrap();
        assert!(!why.contains("push-hook-token"), "{why}");
    }
    assert!(
        !admitted(client.clone(), fixture.clone()).await,
        "a refused refresh syncs nothing (the timer is an hour away)"
    );

    // GitHub's signature of the body: accepted, and the new commit is in the index without
    // waiting for the timer.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"push-hook-token").unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let (status, answer) = post_refresh(
        &client,
        server.addr,
        &[("x-hub-signature-256", signature)],
        body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let mut seen = false;
    for _ in 0..600 {
        if admitted(client.clone(), fixture.clone()).await {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the ConfigMap's commit never reached the index");
    // A bearer token is accepted too.
    let (status, answer) = post_refresh(
        &client,
        server.addr,
        &[("authorization", "Bearer push-hook-token".to_string())],
        "",
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    server.handle.shutdown();

    // Without a token file the endpoint is off; without a repository there is nothing to do.
    let mut no_token = config.clone();
    no_token.server.refresh_token_file = None;
    let state = Arc::new(AppState::new(builtin(), &no_token).with_mirror(mirror.clone()));
    let server = start(state, "127.0.0.1:0", pki.files(false), 1 << 20)
        .await
        .unwrap();
    let auth = [("authorization", "Bearer push-hook-token".to_string())];
    let (status, answer) = post_refresh(&client, server.addr, &auth, "").await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("server.refreshTokenFile"),
        "{answer}"
    );
    server.handle.shutdown();
    let server = serve(&pki, builtin(), &Config::default()).await;
    let (status, answer) = post_refresh(&client, server.addr, &auth, "").await;
    assert_eq!(status, 404, "{answer}");
    server.handle.shutdown();
}

#[test]
fn the_refresh_token_never_reaches_a_log() {
    let repo = support::repo_with(&[(
        "cm.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: demo}\n",
    )]);
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    std::fs::write(pki.path("token"), "right-token-4711\n").unwrap();
    let port = free_port();
    std::fs::write(
        pki.path("gitgate.yaml"),
        format!(
            "repository: {{url: {}, refresh: 1h}}\nserver:\n  listen: 127.0.0.1:{port}\n  tlsCert: {}\n  tlsKey: {}\n  refreshTokenFile: {}\n",
            repo.path().display(),
            pki.path("server.crt").display(),
            pki.path("server.key").display(),
            pki.path("token").display()
        ),
    )
    .unwrap();
    let config = pki.path("gitgate.yaml");
    let served = Served::start(
        &[
            "-c",
            config.to_str().unwrap(),
            "serve",
            "--log-format",
            "json",
            "-vv",
        ],
        &[],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = pki.client(None);
        let url = format!("https://localhost:{port}/refresh");
        for _ in 0..200 {
            let Ok(resp) = client
                .post(&url)
                .bearer_auth("wrong-token-0815")
                .send()
                .await
            else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            assert_eq!(resp.status(), 401);
            let resp = client
                .post(&url)
                .bearer_auth("right-token-4711")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
            return;
        }
        panic!("the server did not come up");
    });
    // Close the client's connections, so that the graceful shutdown has nothing to wait for.
    drop(runtime);
    let (status, logs) = served.stop();
    assert!(status.success(), "{status:?}");
    assert!(logs.contains("POST /refresh refused"), "{logs}");
    assert!(
        logs.contains("a sync of the Git mirror was requested"),
        "{logs}"
    );
    for secret in ["right-token-4711", "wrong-token-0815"] {
        assert!(!logs.contains(secret), "the logs hold {secret}:\n{logs}");
    }
}

/// `gitgate_git_sync_age_seconds` and `/readyz` tell the index's age when they are read, also
/// long after the last sync (a refresh of minutes, or a remote that keeps failing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_age_grows_between_syncs() {
    use gitgate::provenance::mirror::{Mirror, Source};
    let repo = support::repo_with(&[(
        "cm.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: demo}\n",
    )]);
    let config = Config::parse(
        "age.yaml",
        &format!(
            "repository: {{url: {}, refresh: 1h}}\n",
            repo.path().display()
        ),
    )
    .unwrap();
    let mirror = Arc::new(Mirror::default());
    mirror
        .sync(&Source::from_config(&config).unwrap().unwrap())
        .unwrap();
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let server = pki
        .serve(
            AppState::new(builtin(), &config).with_mirror(mirror.clone()),
            &config,
        )
        .await;
    let client = pki.client(None);
    let age = || {
        let client = client.clone();
        async move {
            let text = client
                .get(format!("https://localhost:{}/metrics", server.addr.port()))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("gitgate_git_sync_age_seconds "))
                .unwrap_or_else(|| panic!("no age gauge in:\n{text}"))
                .parse::<f64>()
                .unwrap()
        }
    };
    let first = age().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = age().await;
    assert!(second >= first + 1.0, "{first} then {second}");
    server.handle.shutdown();
}

/// `server.metricsListen`: the real binary serves `/metrics` and `/healthz` over plain HTTP
/// on a port of its own (Prometheus needs no CA), and nothing else there: no `/validate`.
#[test]
fn metrics_are_served_over_plain_http_on_metrics_listen() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let port = free_port();
    let metrics_port = free_port();
    std::fs::write(
        pki.path("gitgate.yaml"),
        format!(
            "server:\n  listen: 127.0.0.1:{port}\n  metricsListen: 127.0.0.1:{metrics_port}\n  tlsCert: {}\n  tlsKey: {}\n",
            pki.path("server.crt").display(),
            pki.path("server.key").display(),
        ),
    )
    .unwrap();
    let config = pki.path("gitgate.yaml");
    let served = Served::start(&["-c", config.to_str().unwrap(), "serve"], &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Plain http:// URLs: no TLS is spoken on the metrics port.
        let client = pki.client(None);
        let base = format!("http://127.0.0.1:{metrics_port}");
        let mut body = None;
        for _ in 0..200 {
            match client.get(format!("{base}/metrics")).send().await {
                Ok(resp) => {
                    assert_eq!(resp.status(), 200);
                    body = Some(resp.text().await.unwrap());
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let body = body.expect("the metrics listener did not come up");
        assert!(body.contains("gitgate_admission_requests_total"), "{body}");
        assert!(body.contains("# HELP"), "{body}");
        let health = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        // Only metrics and liveness there: no decision, no readiness detail, no refresh.
        for (method, path) in [
            ("POST", "/validate"),
            ("GET", "/readyz"),
            ("POST", "/refresh"),
        ] {
            let resp = client
                .request(method.parse().unwrap(), format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 404, "{method} {path}");
        }
        // The webhook itself is still HTTPS on its own port.
        let resp = pki
            .client(None)
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    });
    drop(runtime);
    let (status, logs) = served.stop();
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(logs.contains("over plain HTTP"), "{logs}");
}
