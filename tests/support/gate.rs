//! The webhook as a cluster meets it: the real `gitgate serve` binary on loopback over TLS, a
//! repository given by path, and AdmissionReview requests shaped as kube-apiserver sends them
//! (`../shared/fixtures/admission-v1/`: server-owned metadata, managedFields, a null object
//! and the old object at DELETE).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::binary::{Served, free_port};
use super::pki::Pki;

/// A running webhook and a client that trusts it.
pub struct Gate {
    served: Served,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    _pki: Pki,
}

impl Gate {
    /// Writes `config` (YAML) to `dir/gitgate.yaml`, starts `gitgate serve` with it and waits
    /// until `/readyz` answers (ready or not).
    pub fn start(dir: &Path, config: &str) -> Gate {
        Gate::start_via(dir, config, &[])
    }

    /// [`Gate::start`] through a launcher ([`Served::start_via`]).
    pub fn start_via(dir: &Path, config: &str, launcher: &[String]) -> Gate {
        let file = dir.join("gitgate.yaml");
        std::fs::write(&file, config).unwrap();
        let pki = Pki::new();
        pki.issue("server", "gitgate");
        let port = free_port();
        let served = Served::start_via(
            launcher,
            &[
                "serve",
                "-c",
                file.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--tls-cert",
                pki.path("server.crt").to_str().unwrap(),
                "--tls-key",
                pki.path("server.key").to_str().unwrap(),
            ],
            &[],
        );
        let gate = Gate {
            served,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: pki.client(None),
            base: format!("https://localhost:{port}"),
            _pki: pki,
        };
        gate.wait_readyz("an answer", |_, _| true);
        gate
    }

    /// `/readyz`: status and body, or `None` while nothing listens.
    pub fn readyz(&self) -> Option<(u16, Value)> {
        self.runtime.block_on(async {
            let resp = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .ok()?;
            let status = resp.status().as_u16();
            Some((status, resp.json::<Value>().await.ok()?))
        })
    }

    /// Polls `/readyz` (for up to 10 s) until `ok` holds; returns the body. `what` names the
    /// wait in the failure.
    pub fn wait_readyz(&self, what: &str, ok: impl Fn(u16, &Value) -> bool) -> Value {
        let mut last = None;
        for _ in 0..200 {
            if let Some((status, body)) = self.readyz() {
                if ok(status, &body) {
                    return body;
                }
                last = Some((status, body));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("/readyz never gave {what}; last: {last:?}");
    }

    /// Waits until ready (200).
    pub fn wait_ready(&self) -> Value {
        self.wait_readyz("ready", |status, _| status == 200)
    }

    /// `/metrics`.
    pub fn metrics(&self) -> String {
        self.runtime.block_on(async {
            self.client
                .get(format!("{}/metrics", self.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }

    /// Posts an AdmissionReview whose `request` is `request`; returns the `response`.
    pub fn review(&self, request: Value) -> Value {
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": request});
        self.runtime.block_on(async {
            let answer: Value = self
                .client
                .post(format!("{}/validate", self.base))
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["response"].clone()
        })
    }

    /// The CA and the server certificate's files (`server.crt`, `server.key`).
    pub fn pki(&self) -> &Pki {
        &self._pki
    }

    /// `https://localhost:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.served.pid()
    }

    /// Kills the server (SIGKILL) and returns its logs.
    pub fn kill(self) -> String {
        self.served.kill()
    }

    /// Posts `body` to `/validate`: the HTTP status and the JSON answer (null if none).
    pub fn post(&self, body: Vec<u8>) -> (u16, Value) {
        self.runtime.block_on(async {
            let resp = self
                .client
                .post(format!("{}/validate", self.base))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        })
    }

    /// Stops the server (SIGTERM) and returns its logs.
    pub fn stop(self) -> String {
        self.served.stop().1
    }
}

/// Whether a response allows, with the message for assertions.
pub fn allowed(response: &Value) -> bool {
    response["allowed"] == true
}

/// The denial message of a response.
pub fn message(response: &Value) -> String {
    response["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The group/version/kind/resource of a request.
#[derive(Clone, Copy)]
pub struct Gvr {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub resource: &'static str,
}

pub const CONFIGMAP: Gvr = Gvr {
    group: "",
    version: "v1",
    kind: "ConfigMap",
    resource: "configmaps",
};
pub const DEPLOYMENT: Gvr = Gvr {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    resource: "deployments",
};
pub const NAMESPACE: Gvr = Gvr {
    group: "",
    version: "v1",
    kind: "Namespace",
    resource: "namespaces",
};
pub const POD: Gvr = Gvr {
    group: "",
    version: "v1",
    kind: "Pod",
    resource: "pods",
};
pub const INGRESS: Gvr = Gvr {
    group: "networking.k8s.io",
    version: "v1",
    kind: "Ingress",
    resource: "ingresses",
};
pub const CLAIM: Gvr = Gvr {
    group: "",
    version: "v1",
    kind: "PersistentVolumeClaim",
    resource: "persistentvolumeclaims",
};

/// The identity of Flux's kustomize-controller, as the API server names it.
pub const FLUX: &str = "system:serviceaccount:flux-system:kustomize-controller";
/// A person with a kubeconfig.
pub const MALLORY: &str = "mallory@example.com";

/// An AdmissionRequest: `operation` (`CREATE`, `UPDATE`, `DELETE`) of `object` (at DELETE the
/// old object, with a null object), with `old` at UPDATE, through `subresource` if any, by
/// `user`. The namespace and name are the object's (a Namespace's request names itself).
pub fn request(
    operation: &str,
    gvr: Gvr,
    subresource: Option<&str>,
    user: &str,
    object: &Value,
    old: Option<&Value>,
) -> Value {
    let name = object["metadata"]["name"].clone();
    let namespace = if gvr.kind == "Namespace" {
        name.clone()
    } else {
        object["metadata"]["namespace"].clone()
    };
    let (object, old) = match operation {
        "DELETE" => (Value::Null, object.clone()),
        _ => (object.clone(), old.cloned().unwrap_or(Value::Null)),
    };
    let gvk = json!({"group": gvr.group, "version": gvr.version, "kind": gvr.kind});
    let resource = json!({"group": gvr.group, "version": gvr.version, "resource": gvr.resource});
    let mut request = json!({
        "uid": format!("{}-{}", operation.to_lowercase(), name.as_str().unwrap_or("x")),
        "kind": gvk, "resource": resource, "requestKind": gvk, "requestResource": resource,
        "name": name, "operation": operation,
        "userInfo": {"username": user, "groups": groups_of(user)},
        "object": object, "oldObject": old, "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": format!("{}Options",
            match operation { "CREATE" => "Create", "UPDATE" => "Update", _ => "Delete" })}
    });
    if let Some(ns) = namespace.as_str() {
        request["namespace"] = json!(ns);
    }
    if let Some(sub) = subresource {
        request["subResource"] = json!(sub);
        request["requestSubResource"] = json!(sub);
    }
    request
}

/// The groups the API server gives a user: a service account's, or a person's.
fn groups_of(user: &str) -> Value {
    match user.strip_prefix("system:serviceaccount:") {
        Some(rest) => {
            let ns = rest.split(':').next().unwrap_or_default();
            json!([
                "system:serviceaccounts",
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated"
            ])
        }
        None => json!(["system:authenticated"]),
    }
}

/// What the API server stores for a manifest: server-owned metadata added (uid, resource
/// version, creation time, managed fields), as in the fixtures. `manager` names the writer.
pub fn stored(manifest: &str, manager: &str) -> Value {
    let mut object: Value = serde_saphyr::from_str(manifest).unwrap();
    let api_version = object["apiVersion"].clone();
    let meta = object["metadata"].as_object_mut().unwrap();
    meta.insert("uid".into(), json!("2a06b223-f4a5-4958-820f-d7f288778fd8"));
    meta.insert("resourceVersion".into(), json!("4012"));
    meta.insert("creationTimestamp".into(), json!("2026-11-24T19:23:47Z"));
    meta.insert(
        "managedFields".into(),
        json!([{"apiVersion": api_version, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {}}, "manager": manager,
            "operation": "Apply", "time": "2026-11-24T19:23:47Z"}]),
    );
    object
}
