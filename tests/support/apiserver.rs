//! A small Kubernetes API server for tests, on loopback over plain HTTP, that speaks the parts
//! of the real protocol gitgate uses, as kube-apiserver speaks them:
//!
//! - discovery: `/api`, `/api/v1`, `/apis`, `/apis/GROUP`, `/apis/GROUP/VERSION`;
//! - lists of a collection (all namespaces or one), paged with `limit` and an opaque
//!   `continue` token, `metadata.resourceVersion` on the list; the items of built-in kinds
//!   carry no `apiVersion`/`kind` (the real server leaves them out), custom kinds' do;
//! - watches (`?watch=1`) from a `resourceVersion`: chunked `application/json`, one event a
//!   line (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` when `allowWatchBookmarks`), ended by
//!   `timeoutSeconds`; a resourceVersion older than the last compaction gets an `ERROR`
//!   event with a `410 Gone` Status (`reason: Expired`), as the real server's watch cache
//!   sends it, and an expired `continue` token a 410 answer;
//! - `403 Forbidden` Status answers for resources RBAC forbids;
//! - creates and deletes of objects through [`ApiServer`]'s methods (not over HTTP), each
//!   with a new resourceVersion, seen by running watches.
//!
//! Faults: [`ApiServer::break_watches`] cuts every running watch mid-stream (no final
//! chunk), [`ApiServer::compact`] expires every resourceVersion so far, [`ApiServer::forbid`]
//! answers 403, [`ApiServer::freeze`] stops answering (requests hang, watches go silent).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A kind the server serves.
#[derive(Debug, Clone)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    /// Built into Kubernetes (its list items carry no apiVersion/kind).
    pub builtin: bool,
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The kinds served by default.
pub fn default_kinds() -> Vec<Kind> {
    let k = |group, version, kind, plural, namespaced, builtin| Kind {
        group,
        version,
        kind,
        plural,
        namespaced,
        builtin,
    };
    vec![
        k("", "v1", "Namespace", "namespaces", false, true),
        k("", "v1", "ConfigMap", "configmaps", true, true),
        k("", "v1", "Service", "services", true, true),
        k("", "v1", "Pod", "pods", true, true),
        k("apps", "v1", "Deployment", "deployments", true, true),
        k(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            true,
            true,
        ),
        k(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            true,
        ),
        k(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
        ),
        k("example.com", "v1", "Widget", "widgets", true, false),
        k(
            "wgpolicyk8s.io",
            "v1alpha2",
            "PolicyReport",
            "policyreports",
            true,
            false,
        ),
        k(
            "wgpolicyk8s.io",
            "v1alpha2",
            "ClusterPolicyReport",
            "clusterpolicyreports",
            false,
            false,
        ),
    ]
}

/// One change, as watches send it.
#[derive(Debug, Clone)]
struct Event {
    rv: u64,
    plural: String,
    group: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Store {
    rv: u64,
    compacted: u64,
    /// (group, plural, namespace, name) → object.
    objects: BTreeMap<(String, String, String, String), Value>,
    log: Vec<Event>,
    forbidden: HashSet<String>,
}

struct Inner {
    kinds: Vec<Kind>,
    store: Mutex<Store>,
    events: broadcast::Sender<Event>,
    /// Bumped to cut every running watch.
    breaks: broadcast::Sender<()>,
    frozen: AtomicBool,
    bookmark_every: Duration,
    /// Every request, as `GET /path?query`.
    requests: Mutex<Vec<String>>,
    watches: AtomicUsize,
}

impl Inner {
    fn kind_of(&self, obj: &Value) -> Option<Kind> {
        let api = obj["apiVersion"].as_str()?;
        let kind = obj["kind"].as_str()?;
        self.kinds
            .iter()
            .find(|k| k.api_version() == api && k.kind == kind)
            .cloned()
    }

    fn apply(&self, mut obj: Value) -> Value {
        let kind = self.kind_of(&obj).expect("a kind the test server serves");
        let mut store = self.store.lock().unwrap();
        store.rv += 1;
        let rv = store.rv;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .expect("a name")
            .to_string();
        assert_eq!(
            kind.namespaced,
            !ns.is_empty(),
            "{name}: namespace and scope disagree"
        );
        let key = (
            kind.group.to_string(),
            kind.plural.to_string(),
            ns,
            name.clone(),
        );
        let existed = store.objects.get(&key).cloned();
        let meta = obj["metadata"].as_object_mut().unwrap();
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        match &existed {
            Some(old) => {
                meta.insert("uid".into(), old["metadata"]["uid"].clone());
                meta.insert(
                    "creationTimestamp".into(),
                    old["metadata"]["creationTimestamp"].clone(),
                );
            }
            None => {
                meta.entry("uid")
                    .or_insert_with(|| json!(format!("00000000-0000-4000-8000-{rv:012}")));
                meta.entry("creationTimestamp")
                    .or_insert_with(|| json!("2026-11-24T19:23:17Z"));
            }
        }
        store.objects.insert(key, obj.clone());
        let event = Event {
            rv,
            plural: kind.plural.to_string(),
            group: kind.group.to_string(),
            kind: if existed.is_some() {
                "MODIFIED"
            } else {
                "ADDED"
            },
            object: obj.clone(),
        };
        store.log.push(event.clone());
        let _ = self.events.send(event);
        obj
    }

    fn get(&self, kind: &Kind, namespace: Option<&str>, name: &str) -> Option<Value> {
        let key = (
            kind.group.to_string(),
            kind.plural.to_string(),
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        self.store.lock().unwrap().objects.get(&key).cloned()
    }
}

/// A running test API server.
#[derive(Clone)]
pub struct ApiServer {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
}

impl ApiServer {
    /// Serves `default_kinds()` on loopback; bookmarks every 200 ms.
    pub async fn start() -> ApiServer {
        ApiServer::start_with(default_kinds(), Duration::from_millis(200)).await
    }

    pub async fn start_with(kinds: Vec<Kind>, bookmark_every: Duration) -> ApiServer {
        let (events, _) = broadcast::channel(65536);
        let (breaks, _) = broadcast::channel(16);
        let inner = Arc::new(Inner {
            kinds,
            store: Mutex::new(Store {
                rv: 1000,
                ..Store::default()
            }),
            events,
            breaks,
            frozen: AtomicBool::new(false),
            bookmark_every,
            requests: Mutex::new(Vec::new()),
            watches: AtomicUsize::new(0),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ApiServer { inner, addr }
    }

    /// A kubeconfig pointing at this server (bearer token, plain HTTP).
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: http://{}\nusers:\n- name: test\n  user:\n    token: test-token\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\ncurrent-context: test\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn kind_of(&self, obj: &Value) -> Kind {
        self.inner
            .kind_of(obj)
            .unwrap_or_else(|| panic!("the test server does not serve {obj}"))
    }

    /// Creates or replaces an object (a new resourceVersion; a uid and creationTimestamp
    /// when new). Returns the stored object.
    pub fn apply(&self, obj: Value) -> Value {
        self.inner.apply(obj)
    }

    /// Deletes an object; `false` when there was none.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let probe = json!({"apiVersion": api_version, "kind": kind});
        let kind = self.kind_of(&probe);
        let mut store = self.inner.store.lock().unwrap();
        let key = (
            kind.group.to_string(),
            kind.plural.to_string(),
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        let Some(mut obj) = store.objects.remove(&key) else {
            return false;
        };
        store.rv += 1;
        let rv = store.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let event = Event {
            rv,
            plural: kind.plural.to_string(),
            group: kind.group.to_string(),
            kind: "DELETED",
            object: obj,
        };
        store.log.push(event.clone());
        let _ = self.inner.events.send(event);
        true
    }

    /// Every resourceVersion so far expires: a watch resumed from one gets `410 Gone`, a list
    /// after it (at a new resourceVersion) can be watched from.
    pub fn compact(&self) {
        let mut store = self.inner.store.lock().unwrap();
        store.rv += 1;
        store.compacted = store.rv;
        store.log.clear();
    }

    /// Cuts every running watch mid-stream.
    pub fn break_watches(&self) {
        let _ = self.inner.breaks.send(());
    }

    /// Lists and watches of `plural` (of `group`) are answered 403 Forbidden, or no longer.
    pub fn forbid(&self, group: &str, plural: &str, forbidden: bool) {
        let key = format!("{group}/{plural}");
        let mut store = self.inner.store.lock().unwrap();
        if forbidden {
            store.forbidden.insert(key);
        } else {
            store.forbidden.remove(&key);
        }
    }

    /// Stops answering (requests hang, watches send nothing), or answers again.
    pub fn freeze(&self, frozen: bool) {
        self.inner.frozen.store(frozen, Ordering::SeqCst);
    }

    /// The requests served so far, as `GET /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// The objects stored of a kind.
    pub fn objects(&self, group: &str, plural: &str) -> Vec<Value> {
        let store = self.inner.store.lock().unwrap();
        store
            .objects
            .iter()
            .filter(|((g, p, _, _), _)| g == group && p == plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Watches running now.
    pub fn watches(&self) -> usize {
        self.inner.watches.load(Ordering::SeqCst)
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.store.lock().unwrap().rv
    }
}

fn status(code: u16, reason: &str, message: &str, details: Value) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code});
    (
        StatusCode::from_u16(code).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(q: Option<&str>) -> BTreeMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

async fn handle(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let uri = request.uri().clone();
    let method = request.method().clone();
    inner.requests.lock().unwrap().push(format!(
        "{} {}",
        request.method(),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
    ));
    while inner.frozen.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let q = query(uri.query());
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    if method != axum::http::Method::GET
        || matches!(
            segments.as_slice(),
            ["apis", _, _, _, _]
                | ["apis", _, _, "namespaces", _, _, _]
                | ["api", _, _, _]
                | ["api", _, "namespaces", _, _, _]
        )
    {
        let body = axum::body::to_bytes(request.into_body(), 64 << 20)
            .await
            .unwrap_or_default();
        return object_request(&inner, &method, &segments, &body);
    }
    match segments.as_slice() {
        ["api"] => ok(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]})),
        ["api", v] => resource_list(&inner, "", v),
        ["apis"] => {
            let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for k in inner.kinds.iter().filter(|k| !k.group.is_empty()) {
                groups.entry(k.group).or_default().push(k.version);
            }
            let groups: Vec<Value> = groups.iter().map(|(g, vs)| group_json(g, vs)).collect();
            ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        ["apis", g] => {
            let versions: Vec<&str> = inner
                .kinds
                .iter()
                .filter(|k| k.group == *g)
                .map(|k| k.version)
                .collect();
            if versions.is_empty() {
                return status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                    json!({}),
                );
            }
            ok(group_json(g, &versions))
        }
        ["apis", g, v] => resource_list(&inner, g, v),
        ["api", v, plural] => collection(&inner, &q, "", v, plural, None).await,
        ["api", v, "namespaces", ns, plural] => {
            collection(&inner, &q, "", v, plural, Some(ns)).await
        }
        ["apis", g, v, plural] => collection(&inner, &q, g, v, plural, None).await,
        ["apis", g, v, "namespaces", ns, plural] => {
            collection(&inner, &q, g, v, plural, Some(ns)).await
        }
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        ),
    }
}

/// Creates (POST to the collection), reads (GET) or replaces (PUT, with the current
/// resourceVersion) one object.
fn object_request(
    inner: &Inner,
    method: &axum::http::Method,
    segments: &[&str],
    body: &[u8],
) -> Response {
    let (group, version, namespace, plural, name) = match segments {
        ["apis", g, v, "namespaces", ns, p] => (*g, *v, Some(*ns), *p, None),
        ["apis", g, v, "namespaces", ns, p, n] => (*g, *v, Some(*ns), *p, Some(*n)),
        ["apis", g, v, p] => (*g, *v, None, *p, None),
        ["apis", g, v, p, n] => (*g, *v, None, *p, Some(*n)),
        ["api", v, "namespaces", ns, p] => ("", *v, Some(*ns), *p, None),
        ["api", v, "namespaces", ns, p, n] => ("", *v, Some(*ns), *p, Some(*n)),
        ["api", v, p] => ("", *v, None, *p, None),
        ["api", v, p, n] => ("", *v, None, *p, Some(*n)),
        _ => {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource",
                json!({}),
            );
        }
    };
    let Some(kind) = inner
        .kinds
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
        .cloned()
    else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        );
    };
    if inner
        .store
        .lock()
        .unwrap()
        .forbidden
        .contains(&format!("{group}/{plural}"))
    {
        return forbidden(&kind, &method.as_str().to_lowercase());
    }
    let not_found = |name: &str| {
        status(
            404,
            "NotFound",
            &format!("{} \"{name}\" not found", kind.plural),
            json!({"name": name, "kind": kind.plural}),
        )
    };
    match (method.as_str(), name) {
        ("GET", Some(name)) => match inner.get(&kind, namespace, name) {
            Some(obj) => ok(obj),
            None => not_found(name),
        },
        ("POST", None) => {
            let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the body is not JSON", json!({}));
            };
            if let Some(ns) = namespace {
                obj["metadata"]["namespace"] = json!(ns);
            }
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            if inner.get(&kind, namespace, &name).is_some() {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("{} \"{name}\" already exists", kind.plural),
                    json!({"name": name, "kind": kind.plural}),
                );
            }
            let created = inner.apply(obj);
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                created.to_string(),
            )
                .into_response()
        }
        ("PUT", Some(name)) => {
            let Ok(obj) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the body is not JSON", json!({}));
            };
            let Some(current) = inner.get(&kind, namespace, name) else {
                return not_found(name);
            };
            if obj["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                return status(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                        kind.plural
                    ),
                    json!({"name": name, "kind": kind.plural}),
                );
            }
            ok(inner.apply(obj))
        }
        _ => status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            json!({}),
        ),
    }
}

fn group_json(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs,
           "preferredVersion": vs[0]})
}

fn resource_list(inner: &Inner, group: &str, version: &str) -> Response {
    let resources: Vec<Value> = inner
        .kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| {
            json!({"name": k.plural, "singularName": k.kind.to_lowercase(), "namespaced": k.namespaced,
                   "kind": k.kind, "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                   "storageVersionHash": "aGFzaA=="})
        })
        .collect();
    if resources.is_empty() {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        );
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

fn forbidden(kind: &Kind, verb: &str) -> Response {
    let resource = kind.plural;
    let group = kind.group;
    let message = if group.is_empty() {
        format!(
            "{resource} is forbidden: User \"system:serviceaccount:gitgate:gitgate\" cannot {verb} resource \"{resource}\" in API group \"\" at the cluster scope"
        )
    } else {
        format!(
            "{resource}.{group} is forbidden: User \"system:serviceaccount:gitgate:gitgate\" cannot {verb} resource \"{resource}\" in API group \"{group}\" at the cluster scope"
        )
    };
    status(
        403,
        "Forbidden",
        &message,
        json!({"group": group, "kind": resource}),
    )
}

async fn collection(
    inner: &Arc<Inner>,
    q: &BTreeMap<String, String>,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
) -> Response {
    let Some(kind) = inner
        .kinds
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
        .cloned()
    else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        );
    };
    let watch = matches!(q.get("watch").map(String::as_str), Some("1" | "true"));
    if inner
        .store
        .lock()
        .unwrap()
        .forbidden
        .contains(&format!("{group}/{plural}"))
    {
        return forbidden(&kind, if watch { "watch" } else { "list" });
    }
    if watch {
        return watch_response(inner.clone(), kind, q, namespace.map(str::to_string));
    }
    list_response(inner, &kind, q, namespace)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Continue {
    rv: u64,
    start: String,
}

fn list_response(
    inner: &Inner,
    kind: &Kind,
    q: &BTreeMap<String, String>,
    namespace: Option<&str>,
) -> Response {
    let store = inner.store.lock().unwrap();
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let (list_rv, start) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let Some(c) = base64::engine::general_purpose::STANDARD
                .decode(token)
                .ok()
                .and_then(|b| serde_json::from_slice::<Continue>(&b).ok())
            else {
                return status(
                    400,
                    "BadRequest",
                    "continue key is not valid: illegal base64 data",
                    json!({}),
                );
            };
            if c.rv <= store.compacted {
                // As the real server: the token is too old; here is one to go on with,
                // inconsistently.
                let token = base64::engine::general_purpose::STANDARD.encode(
                    serde_json::to_vec(&Continue {
                        rv: store.rv,
                        start: c.start.clone(),
                    })
                    .unwrap(),
                );
                let body = json!({"kind": "Status", "apiVersion": "v1",
                    "metadata": {"continue": token}, "status": "Failure",
                    "message": "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    "reason": "Expired", "code": 410});
                return (
                    StatusCode::GONE,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response();
            }
            (c.rv, Some(c.start))
        }
        None => (store.rv, None),
    };
    let mut items = Vec::new();
    let mut next = None;
    for ((g, p, ns, name), obj) in &store.objects {
        if g != kind.group || p != kind.plural || namespace.is_some_and(|n| n != ns) {
            continue;
        }
        let key = format!("{ns}/{name}");
        if start.as_ref().is_some_and(|s| key <= *s) {
            continue;
        }
        if items.len() == limit {
            let last = items
                .last()
                .map(|(k, _): &(String, Value)| k.clone())
                .unwrap_or_default();
            next = Some(
                base64::engine::general_purpose::STANDARD.encode(
                    serde_json::to_vec(&Continue {
                        rv: list_rv,
                        start: last,
                    })
                    .unwrap(),
                ),
            );
            break;
        }
        let mut item = obj.clone();
        if kind.builtin {
            let map = item.as_object_mut().unwrap();
            map.remove("apiVersion");
            map.remove("kind");
        }
        items.push((key, item));
    }
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if let Some(token) = next {
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(1);
    }
    let items: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
    ok(
        json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(),
              "metadata": metadata, "items": items}),
    )
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn watch_response(
    inner: Arc<Inner>,
    kind: Kind,
    q: &BTreeMap<String, String>,
    namespace: Option<String>,
) -> Response {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1800),
    );
    let mut events = inner.events.subscribe();
    let mut breaks = inner.breaks.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1024);
    let matches = {
        let kind = kind.clone();
        move |e: &Event| {
            e.group == kind.group
                && e.plural == kind.plural
                && namespace
                    .as_deref()
                    .is_none_or(|ns| e.object["metadata"]["namespace"].as_str() == Some(ns))
        }
    };
    // What happened since `from`, or 410 when it was compacted away.
    let (backlog, expired, compacted) = {
        let store = inner.store.lock().unwrap();
        if from != 0 && from < store.compacted {
            (Vec::new(), true, store.compacted)
        } else {
            (
                store
                    .log
                    .iter()
                    .filter(|e| e.rv > from && matches(e))
                    .cloned()
                    .collect::<Vec<_>>(),
                false,
                store.compacted,
            )
        }
    };
    inner.watches.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let _guard = scopeguard(inner.clone());
        if expired {
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {from} ({compacted})"), "reason": "Expired", "code": 410});
            let _ = tx.send(Ok(line("ERROR", &status))).await;
            return;
        }
        let mut last = from;
        for e in backlog {
            last = last.max(e.rv);
            if tx.send(Ok(line(e.kind, &e.object))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tick = tokio::time::interval(inner.bookmark_every);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = breaks.recv() => {
                    let _ = tx.send(Err(std::io::Error::other("watch cut by the test"))).await;
                    return;
                }
                e = events.recv() => match e {
                    Ok(e) if e.rv > last && matches(&e) => {
                        while inner.frozen.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        last = e.rv;
                        if tx.send(Ok(line(e.kind, &e.object))).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    if inner.frozen.load(Ordering::SeqCst) { continue; }
                    let rv = inner.store.lock().unwrap().rv.max(last);
                    let bm = json!({"kind": kind.kind, "apiVersion": kind.api_version(),
                        "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null}});
                    if tx.send(Ok(line("BOOKMARK", &bm))).await.is_err() { return; }
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(stream))
        .unwrap()
}

struct WatchGuard(Arc<Inner>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.watches.fetch_sub(1, Ordering::SeqCst);
    }
}

fn scopeguard(inner: Arc<Inner>) -> WatchGuard {
    WatchGuard(inner)
}

/// The object of a fixture request (`../shared/fixtures/admission-v1/NAME`), with its
/// namespace set from the request (the API server leaves it out of a CREATE's object when
/// the manifest has none), or `None` without the fixtures.
pub fn fixture_object(name: &str) -> Option<Value> {
    let dir = crate::support::fixtures_dir()?;
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let review: Value = serde_json::from_str(&text).unwrap();
    let mut object = review["request"]["object"].clone();
    if let Some(ns) = review["request"]["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
    {
        object["metadata"]["namespace"] = json!(ns);
    }
    Some(object)
}

/// An Ingress as the API server returns it (defaults, managedFields, status).
pub fn ingress(namespace: &str, name: &str, host: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 1,
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "networking.k8s.io/v1", "time": "2026-11-24T19:23:27Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:rules": {}}}}]
        },
        "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {}}
    })
}

/// A Namespace as the API server returns it.
pub fn namespace(name: &str, labels: Value) -> Value {
    let mut labels = labels;
    labels["kubernetes.io/metadata.name"] = json!(name);
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": labels},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}
