//! An audit's findings as PolicyReports (`wgpolicyk8s.io/v1alpha2`, the Policy Working
//! Group's format that Kyverno writes and its UI and Policy Reporter read): one
//! `PolicyReport` per namespace and one `ClusterPolicyReport` for cluster-scoped objects, each
//! named `gitgate-audit`, replaced after every audit (`audit.policyReports: true`).
//!
//! A result per finding (`fail` for what `deny` policies found, `warn` for `warn`, `skip` for
//! `dryrun`, `error` for what could not be checked), naming the object; `summary.pass` counts
//! the objects without any. A report keeps at most [`MAX_RESULTS`] results (an object is
//! stored whole in etcd, 1.5 MiB at most); the summary counts them all. Written with create,
//! then get and update when it exists (the chart's RBAC: get, create, update); a namespace
//! that no longer holds an audited object keeps its last report.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::audit::{Outcome, Subject};
use crate::cluster::{ClusterError, Connection};
use crate::decision::findings::Level;

/// The name of every report gitgate writes.
pub const NAME: &str = "gitgate-audit";

/// The most results one report holds.
pub const MAX_RESULTS: usize = 1000;

/// Builds the reports of an outcome: (namespace, report); `None` is the cluster's.
pub fn reports(outcome: &Outcome, now: i64) -> BTreeMap<Option<String>, Value> {
    let mut by_namespace: BTreeMap<Option<String>, Vec<&Subject>> = BTreeMap::new();
    for s in &outcome.subjects {
        by_namespace.entry(s.namespace.clone()).or_default().push(s);
    }
    by_namespace
        .into_iter()
        .map(|(ns, subjects)| {
            let report = report(ns.as_deref(), &subjects, now);
            (ns, report)
        })
        .collect()
}

fn report(namespace: Option<&str>, subjects: &[&Subject], now: i64) -> Value {
    let mut summary = BTreeMap::from([
        ("pass", 0),
        ("fail", 0),
        ("warn", 0),
        ("error", 0),
        ("skip", 0),
    ]);
    let mut results = Vec::new();
    for s in subjects {
        if s.findings.is_empty() {
            *summary.entry("pass").or_default() += 1;
            continue;
        }
        for f in &s.findings {
            let result = match (f.level, f.unchecked) {
                (_, true) => "error",
                (Level::Error, false) => "fail",
                (Level::Warning, false) => "warn",
                (Level::Note, false) => "skip",
            };
            *summary.entry(result).or_default() += 1;
            if results.len() < MAX_RESULTS {
                let mut resource =
                    json!({"apiVersion": s.api_version, "kind": s.kind, "name": s.name});
                if let Some(ns) = &s.namespace {
                    resource["namespace"] = json!(ns);
                }
                if let Some(uid) = &s.uid {
                    resource["uid"] = json!(uid);
                }
                results.push(json!({
                    "source": "gitgate",
                    "policy": f.policy,
                    "message": f.message,
                    "result": result,
                    "scored": true,
                    "timestamp": {"seconds": now, "nanos": 0},
                    "resources": [resource],
                }));
            }
        }
    }
    let mut metadata = json!({"name": NAME, "labels": {"app.kubernetes.io/managed-by": "gitgate"}});
    let kind = match namespace {
        Some(ns) => {
            metadata["namespace"] = json!(ns);
            "PolicyReport"
        }
        None => "ClusterPolicyReport",
    };
    json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": kind, "metadata": metadata,
           "summary": summary, "results": results})
}

/// Writes the reports of an outcome; returns how many were written.
pub async fn write(connection: &Connection, outcome: &Outcome) -> Result<usize, ClusterError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let reports = reports(outcome, now);
    for (namespace, report) in &reports {
        put(connection, namespace.as_deref(), report.clone()).await?;
    }
    Ok(reports.len())
}

/// Creates the report, or replaces it when it exists.
async fn put(
    connection: &Connection,
    namespace: Option<&str>,
    mut report: Value,
) -> Result<(), ClusterError> {
    let collection = match namespace {
        Some(ns) => format!("/apis/wgpolicyk8s.io/v1alpha2/namespaces/{ns}/policyreports"),
        None => "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports".to_string(),
    };
    let what = format!("writing {collection}/{NAME}");
    let request = |method: http::Method, uri: &str, body: &Value| {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default())
            .map_err(|e| ClusterError::Request(e.to_string()))
    };
    match connection
        .call::<Value>(&what, request(http::Method::POST, &collection, &report)?)
        .await
    {
        Err(ClusterError::Api { code: 409, .. }) => {}
        other => return other.map(|_| ()),
    }
    let path = format!("{collection}/{NAME}");
    let get = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| ClusterError::Request(e.to_string()))?;
    let current: Value = connection.call(&what, get).await?;
    report["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    connection
        .call::<Value>(&what, request(http::Method::PUT, &path, &report)?)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::findings::{Item, Report};

    fn subject(ns: Option<&str>, name: &str, findings: Vec<(Level, &str)>) -> Subject {
        Subject {
            api_version: "v1".into(),
            kind: if ns.is_some() { "Pod" } else { "Namespace" }.into(),
            namespace: ns.map(str::to_string),
            name: name.into(),
            uid: Some("u".into()),
            findings: findings
                .into_iter()
                .map(|(level, policy)| Item {
                    path: String::new(),
                    line: 0,
                    level,
                    policy: policy.into(),
                    message: format!("{policy} found it"),
                    operation: Some("AUDIT".into()),
                    object: None,
                    unchecked: false,
                })
                .collect(),
        }
    }

    #[test]
    fn one_report_per_namespace_and_one_for_the_cluster() {
        let outcome = Outcome {
            report: Report::default(),
            violations: BTreeMap::new(),
            duration: std::time::Duration::ZERO,
            subjects: vec![
                subject(
                    Some("web"),
                    "a",
                    vec![
                        (Level::Error, "privileged-container"),
                        (Level::Warning, "resources"),
                    ],
                ),
                subject(Some("web"), "b", vec![]),
                subject(None, "web", vec![(Level::Note, "team-label")]),
            ],
        };
        let reports = reports(&outcome, 42);
        let web = &reports[&Some("web".to_string())];
        assert_eq!(web["kind"], "PolicyReport");
        assert_eq!(web["metadata"]["namespace"], "web");
        assert_eq!(
            web["summary"],
            json!({"pass": 1, "fail": 1, "warn": 1, "error": 0, "skip": 0})
        );
        assert_eq!(web["results"][0]["resources"][0]["name"], "a");
        assert_eq!(web["results"][0]["timestamp"]["seconds"], 42);
        let cluster = &reports[&None];
        assert_eq!(cluster["kind"], "ClusterPolicyReport");
        assert!(cluster["metadata"]["namespace"].is_null());
        assert_eq!(cluster["results"][0]["result"], "skip");
    }
}
