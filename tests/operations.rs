//! What an operator rolling gitgate out reads, on the real binary: the decision log line with
//! every field filtered on (the denial and dry-run messages, the provenance paths, `dry_run`),
//! parseable in both formats; dry-run requests counted apart; successful Git syncs logged;
//! `-v` without third-party frame traces; a 413 answered as JSON, logged and counted;
//! `/metrics` described and not empty at start; `--listen :PORT` and `localhost:PORT`; zero
//! durations refused; `gitgate version`.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::binary::{Served, free_port};
use support::pki::Pki;

const CONFIG_MAP: &[u8] =
    b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: demo}\ndata: {k: v}\n";

fn review(uid: &str, kind: &str, resource: &str, object: Value, dry_run: bool) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": resource},
        "name": object["metadata"]["name"], "namespace": "demo", "operation": "CREATE",
        "userInfo": {"username": "alice"}, "object": object, "oldObject": null,
        "dryRun": dry_run}})
}

/// The same request as an UPDATE of `old`.
fn update(mut review: Value, old: Value) -> Value {
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["oldObject"] = old;
    review
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Waits for `/readyz` to answer 200 on `port`.
async fn ready(client: &reqwest::Client, port: u16) {
    for _ in 0..400 {
        if let Ok(response) = client
            .get(format!("https://localhost:{port}/readyz"))
            .send()
            .await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never became ready");
}

async fn post(client: &reqwest::Client, port: u16, body: Vec<u8>) -> (u16, Value) {
    let response = client
        .post(format!("https://localhost:{port}/validate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn metrics(client: &reqwest::Client, port: u16) -> String {
    client
        .get(format!("https://localhost:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A logfmt line read back: `key=value` and `key="quoted \" value"`; the message (the first
/// words without `=`) is skipped. Fails on a value that would not read back.
fn logfmt(line: &str) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    let mut rest = line;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let word_end = rest.find([' ', '=']).unwrap_or(rest.len());
        if rest[word_end..].starts_with('=') {
            let key = rest[..word_end].to_string();
            let after = &rest[word_end + 1..];
            if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            let (_, escaped) = chars.next().expect("an escape ends a value");
                            value.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let end = end.unwrap_or_else(|| panic!("an unterminated value in {line}"));
                fields.insert(key, value);
                rest = &quoted[end + 1..];
                assert!(
                    rest.is_empty() || rest.starts_with(' '),
                    "a quoted value runs into text: {line}"
                );
            } else {
                let end = after.find(' ').unwrap_or(after.len());
                let value = &after[..end];
                assert!(
                    !value.contains('"'),
                    "an unquoted value holds a quote: {line}"
                );
                fields.insert(key, value.to_string());
                rest = &after[end..];
            }
        } else {
            rest = &rest[word_end..];
        }
    }
    fields
}

/// The decision lines of the two requests below, and the metrics after them.
fn decisions(format: &str) -> (String, String) {
    let repo = support::repo_with(&[("cm.yaml", CONFIG_MAP)]);
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let port = free_port();
    let config = pki.path("gitgate.yaml");
    std::fs::write(
        &config,
        format!(
            "repository: {{url: {}, refresh: 1h}}\npolicies:\n  enforcement: {{latest-tag: dryrun}}\nserver:\n  listen: 127.0.0.1:{port}\n  tlsCert: {}\n  tlsKey: {}\n",
            repo.path().display(),
            pki.path("server.crt").display(),
            pki.path("server.key").display(),
        ),
    )
    .unwrap();
    let served = Served::start(
        &[
            "-c",
            config.to_str().unwrap(),
            "serve",
            "--log-format",
            format,
        ],
        &[],
    );
    let metrics = runtime().block_on(async {
        let client = pki.client(None);
        ready(&client, port).await;
        // Git holds the ConfigMap with k: v; the cluster's copy has a label by hand (unattested),
        // and this dry-run UPDATE changes k and adds a key (differing).
        let old = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "demo", "labels": {"hand": "x"}},
            "data": {"k": "v"}});
        let mut modified = old.clone();
        modified["data"] = json!({"k": "changed", "added": "x"});
        let body = update(
            review("u-modified", "ConfigMap", "configmaps", modified, true),
            old,
        );
        let (status, answer) = post(&client, port, serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["response"]["allowed"], false, "{answer}");
        // A Pod Git does not hold, with a latest tag: refused by provenance, and a dry-run
        // finding of latest-tag.
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "demo"},
            "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}});
        let body = review("u-untraceable", "Pod", "pods", pod, false);
        let (status, answer) = post(&client, port, serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["response"]["allowed"], false, "{answer}");
        metrics(&client, port).await
    });
    let (status, logs) = served.stop();
    assert!(status.success(), "{status:?}\n{logs}");
    (logs, metrics)
}

fn the_line<'a>(logs: &'a str, uid: &str) -> &'a str {
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("admission decision") && l.contains(uid))
        .collect();
    assert_eq!(lines.len(), 1, "one line per decision:\n{logs}");
    lines[0]
}

/// The fields an operator filters a decision on, whatever the format.
fn check_decision_fields(get: impl Fn(&str, &str) -> String, logs: &str) {
    // The dry-run request refused as modified: the denial, the paths, dry_run.
    assert_eq!(get("u-modified", "dry_run"), "true", "{logs}");
    assert_eq!(get("u-modified", "verdict"), "denied", "{logs}");
    assert_eq!(get("u-modified", "provenance"), "modified", "{logs}");
    let denials = get("u-modified", "denials");
    assert!(
        denials.contains("[provenance] provenance: "),
        "{denials}\n{logs}"
    );
    assert_eq!(
        get("u-modified", "differing"),
        "data.added data.k",
        "{logs}"
    );
    assert_eq!(get("u-modified", "differing_count"), "2", "{logs}");
    assert_eq!(
        get("u-modified", "unattested"),
        "metadata.labels.hand",
        "{logs}"
    );
    // Paths only, never values.
    let line = the_line(logs, "u-modified");
    assert!(!line.contains("changed"), "a value reached the log: {line}");
    // The untraceable Pod: the provenance denial and the dry-run finding of latest-tag.
    assert_eq!(get("u-untraceable", "dry_run"), "false", "{logs}");
    assert_eq!(get("u-untraceable", "provenance"), "untraceable", "{logs}");
    assert!(
        get("u-untraceable", "denials").contains("[provenance] provenance: "),
        "{logs}"
    );
    let dryrun = get("u-untraceable", "dryrun_findings");
    assert!(dryrun.contains("[latest-tag] "), "{dryrun}\n{logs}");
    assert!(
        get("u-untraceable", "policies").contains("latest-tag:dryrun"),
        "{logs}"
    );
}

#[test]
fn the_decision_line_names_the_messages_the_paths_and_dry_run_in_json() {
    let (logs, metrics) = decisions("json");
    let parsed = |uid: &str| -> Value { serde_json::from_str(the_line(&logs, uid)).unwrap() };
    let get = |uid: &str, key: &str| -> String {
        let line = parsed(uid);
        // Flat: the fields beside the message, not nested under "fields".
        assert!(line.get("fields").is_none(), "{line}");
        assert_eq!(line["message"], "admission decision", "{line}");
        match &line[key] {
            Value::String(s) => s.clone(),
            Value::Null => panic!("no {key} in {line}"),
            other => other.to_string(),
        }
    };
    check_decision_fields(get, &logs);
    // Successful syncs are logged, with the newest approved commit and the count.
    let synced: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("the Git sync is done"))
        })
        .collect();
    assert_eq!(synced.len(), 1, "{logs}");
    assert_eq!(synced[0]["approved_commits"], 1, "{logs}");
    assert_eq!(
        synced[0]["newest_approved"].as_str().map(str::len),
        Some(40),
        "{logs}"
    );
    // Dry runs are counted apart.
    let counted = |dry_run: &str| {
        metrics.lines().any(|l| {
            l.starts_with("gitgate_admission_requests_total{")
                && l.contains("verdict=\"denied\"")
                && l.contains(&format!("dry_run=\"{dry_run}\""))
                && l.ends_with(" 1")
        })
    };
    assert!(counted("true") && counted("false"), "{metrics}");
}

#[test]
fn the_decision_line_in_text_reads_back_field_by_field() {
    let (logs, _) = decisions("text");
    let get = |uid: &str, key: &str| -> String {
        logfmt(the_line(&logs, uid))
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {}", the_line(&logs, uid)))
    };
    check_decision_fields(get, &logs);
    // A message with spaces is one quoted value.
    let line = the_line(&logs, "u-untraceable");
    assert!(
        line.contains(" denials=\"[provenance] provenance: "),
        "{line}"
    );
}

#[test]
fn a_body_over_the_limit_is_a_json_413_logged_and_counted_and_metrics_are_described_at_start() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let port = free_port();
    let config = pki.path("gitgate.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  maxBodyBytes: 2048\n  tlsCert: {}\n  tlsKey: {}\n",
            pki.path("server.crt").display(),
            pki.path("server.key").display(),
        ),
    )
    .unwrap();
    // `:PORT` listens on every interface, as Go's `:8443`; `-v` raises gitgate's level only.
    let listen = format!(":{port}");
    let served = Served::start(
        &[
            "-c",
            config.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
            "-v",
            "--log-format",
            "json",
        ],
        &[],
    );
    let (first, after) = runtime().block_on(async {
        let client = pki.client(None);
        ready(&client, port).await;
        let first = metrics(&client, port).await;
        let big = review(
            "u-big",
            "ConfigMap",
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "big", "namespace": "demo"},
                   "data": {"k": "x".repeat(4096)}}),
            false,
        );
        let (status, answer) = post(&client, port, serde_json::to_vec(&big).unwrap()).await;
        assert_eq!(status, 413, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("server.maxBodyBytes (2048 bytes)")),
            "{answer}"
        );
        (first, metrics(&client, port).await)
    });
    let (status, logs) = served.stop();
    assert!(status.success(), "{status:?}\n{logs}");
    // The first scrape: described, and the main counters at zero.
    for metric in [
        "gitgate_admission_requests_total",
        "gitgate_admission_bad_requests_total",
        "gitgate_internal_errors_total",
    ] {
        assert!(
            first.contains(&format!("# HELP {metric} ")),
            "{metric}:\n{first}"
        );
    }
    assert!(
        first.contains("gitgate_admission_bad_requests_total{reason=\"too_large\"} 0"),
        "{first}"
    );
    assert!(
        after.contains("gitgate_admission_bad_requests_total{reason=\"too_large\"} 1"),
        "{after}"
    );
    let refused = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("larger than server.maxBodyBytes"))
        })
        .unwrap_or_else(|| panic!("the 413 is not logged:\n{logs}"));
    assert_eq!(refused["level"], "WARN", "{refused}");
    assert_eq!(refused["limit_bytes"], 2048, "{refused}");
    // -v: gitgate's debug, none of rustls', h2's or hyper's.
    for line in logs.lines() {
        let line: Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("not a JSON line: {line}\n{logs}"));
        let target = line["target"].as_str().unwrap_or_default();
        assert!(
            target.starts_with("gitgate") || line["level"] == "WARN" || line["level"] == "ERROR",
            "a third-party line under -v: {line}"
        );
    }
}

#[test]
fn listen_takes_a_host_name() {
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let port = free_port();
    let listen = format!("localhost:{port}");
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    let served = Served::start(
        &[
            "serve",
            "--listen",
            &listen,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    runtime().block_on(async { ready(&pki.client(None), port).await });
    let (status, logs) = served.stop();
    assert!(status.success(), "{status:?}\n{logs}");
}

fn gitgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn refused_config(dir: &Path, text: &str, expected: &str) {
    let file = dir.join("gitgate.yaml");
    std::fs::write(&file, text).unwrap();
    let (code, out, err) = gitgate(&["-c", file.to_str().unwrap(), "serve"]);
    assert_eq!(code, 2, "{out}{err}");
    let expected = format!("{}:{expected}", file.display());
    assert!(err.contains(&expected), "{expected} in:\n{err}");
}

#[test]
fn zero_durations_are_refused_with_their_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    refused_config(
        dir.path(),
        "repository:\n  url: /nowhere\n  refresh: 0s\n",
        "3: repository.refresh must be longer than 0s",
    );
    refused_config(
        dir.path(),
        "policies:\n  timeout: 1s\nserver:\n  timeout: 0s\n",
        "4: server.timeout must be longer than 0s",
    );
    refused_config(
        dir.path(),
        "server:\n  timeout: 2s\npolicies:\n  timeout: 0ms\n",
        "4: policies.timeout must be longer than 0s",
    );
}

#[test]
fn version_prints_the_version() {
    let (code, out, err) = gitgate(&["version"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("gitgate {}\n", env!("CARGO_PKG_VERSION")));
    let (_, flag, _) = gitgate(&["--version"]);
    assert_eq!(out, flag);
}
