//! The connection to the API server ([`connect`]), discovery of a kind's resource
//! ([`Connection::resolve`]) and paged lists ([`Pages`]).
//!
//! Every request is bounded (`cluster.requestTimeout`), so that an API server that stops
//! answering is an error with the request named, never a hang.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, APIResourceList, ListMeta,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ClusterError;
use super::KindRef;

/// A client of one API server, with the limits its requests keep.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    /// Where its configuration came from (`kubeconfig /x`, `in-cluster`), for messages.
    pub origin: String,
    /// The API server's URL.
    pub server: String,
    /// Limit of one list or discovery request.
    pub request_timeout: Duration,
    /// How long one watch request lasts.
    pub watch_timeout: Duration,
    /// Objects per list page.
    pub page_size: u32,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("origin", &self.origin)
            .field("server", &self.server)
            .finish()
    }
}

/// Finds the cluster, in this order: `kubeconfig` (the `--kubeconfig` flag), then
/// `cluster.kubeconfig`, then `KUBECONFIG`, then the in-cluster service account
/// (`KUBERNETES_SERVICE_HOST`), then `~/.kube/config`. `Ok(None)` when there is none of them
/// (CI, the demo, a laptop without a cluster); an error when one is named but unusable.
pub async fn connect(
    settings: &super::Settings,
    kubeconfig: Option<&Path>,
) -> Result<Option<Connection>, ClusterError> {
    let options = KubeConfigOptions {
        context: settings.context.clone(),
        ..KubeConfigOptions::default()
    };
    let named = kubeconfig
        .map(Path::to_path_buf)
        .or_else(|| settings.kubeconfig.clone());
    let from_file = |path: PathBuf| async move {
        let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| ClusterError::Kubeconfig {
            path: path.display().to_string(),
            message: error_chain(&e),
        })?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map(|c| (c, format!("kubeconfig {}", path.display())))
            .map_err(|e| ClusterError::Kubeconfig {
                path: path.display().to_string(),
                message: error_chain(&e),
            })
    };
    let env_kubeconfig = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
    let home_kubeconfig = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".kube/config"))
        .filter(|p| p.is_file());
    let (mut config, origin) = if let Some(path) = named {
        from_file(path).await?
    } else if let Some(paths) = env_kubeconfig {
        let shown = paths.to_string_lossy().into_owned();
        let config = kube::Config::from_kubeconfig(&KubeConfigOptions {
            context: settings.context.clone(),
            ..KubeConfigOptions::default()
        })
        .await
        .map_err(|e| ClusterError::Kubeconfig {
            path: format!("KUBECONFIG={shown}"),
            message: error_chain(&e),
        })?;
        (config, format!("kubeconfig {shown} (KUBECONFIG)"))
    } else if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        let config =
            kube::Config::incluster().map_err(|e| ClusterError::InCluster(error_chain(&e)))?;
        (config, "the in-cluster service account".to_string())
    } else if let Some(path) = home_kubeconfig {
        from_file(path).await?
    } else {
        return Ok(None);
    };
    // Requests are bounded here, per request; a watch by its own idle limit.
    config.read_timeout = None;
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| ClusterError::Client {
        server: server.clone(),
        message: error_chain(&e),
    })?;
    Ok(Some(Connection {
        client,
        origin,
        server,
        request_timeout: settings.request_timeout,
        watch_timeout: settings
            .watch_timeout
            .clamp(Duration::from_secs(1), Duration::from_secs(290)),
        page_size: settings.page_size.max(1),
    }))
}

/// An error and its causes, in one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// A kind as the API server serves it: where to list and watch it, and its scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resolved {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The resource (plural) name.
    pub plural: String,
    pub namespaced: bool,
}

impl Resolved {
    /// Namespaces (known without discovery).
    pub fn namespaces() -> Resolved {
        Resolved {
            group: String::new(),
            version: "v1".into(),
            kind: "Namespace".into(),
            plural: "namespaces".into(),
            namespaced: false,
        }
    }

    /// CustomResourceDefinitions (known without discovery).
    pub fn crds() -> Resolved {
        Resolved {
            group: "apiextensions.k8s.io".into(),
            version: "v1".into(),
            kind: "CustomResourceDefinition".into(),
            plural: "customresourcedefinitions".into(),
            namespaced: false,
        }
    }

    /// `apps/v1`, `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The collection across all namespaces: `/apis/apps/v1/deployments`.
    pub fn url_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}/{}", self.version, self.plural)
        } else {
            format!("/apis/{}/{}/{}", self.group, self.version, self.plural)
        }
    }

    /// The path of one object: `/apis/apps/v1/namespaces/web/deployments/web`.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{base}/namespaces/{ns}/{}/{name}", self.plural),
            None => format!("{base}/{}/{name}", self.plural),
        }
    }

    /// `deployments.apps`, `namespaces`: as RBAC and the API server's messages name it.
    pub fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `apps/v1 Deployment`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.api_version(), self.kind)
    }

    /// The kind as the configuration names it.
    pub fn kind_ref(&self) -> KindRef {
        KindRef {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
            resource: Some(self.plural.clone()),
        }
    }
}

/// The kind `wanted` among what a group version serves.
pub fn pick(served: &[Resolved], wanted: &KindRef) -> Result<Resolved, ClusterError> {
    served
        .iter()
        .find(|r| r.kind == wanted.kind)
        .cloned()
        .ok_or_else(|| ClusterError::NotServed {
            kind: super::sync::describe_kind(wanted),
            why: format!(
                "{} has no kind {} that can be listed and watched",
                if wanted.group.is_empty() {
                    wanted.version.clone()
                } else {
                    format!("{}/{}", wanted.group, wanted.version)
                },
                wanted.kind
            ),
        })
}

/// One page of a list.
#[derive(Debug, Deserialize)]
struct List {
    #[serde(default)]
    metadata: ListMeta,
    #[serde(default, deserialize_with = "null_as_empty")]
    items: Vec<Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    Ok(Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default())
}

impl Connection {
    /// Sends `request` within the request limit; `what` names it in errors.
    pub async fn call<T: DeserializeOwned>(
        &self,
        what: &str,
        request: http::Request<Vec<u8>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.request_timeout, self.client.request::<T>(request)).await {
            Err(_) => Err(ClusterError::Timeout {
                what: what.to_string(),
                after: self.request_timeout,
            }),
            Ok(result) => result.map_err(|e| ClusterError::from_kube(what, e)),
        }
    }

    /// Finds the resource of a kind with discovery (`/api/v1`, `/apis/GROUP/VERSION`).
    pub async fn resolve(&self, kind: &KindRef) -> Result<Resolved, ClusterError> {
        let served = self.discover(&kind.group, &kind.version).await?;
        pick(&served, kind)
    }

    /// The kinds one group version serves that can be listed and watched (discovery:
    /// `/api/v1`, `/apis/GROUP/VERSION`); `NotServed` when the API server does not serve it.
    pub async fn discover(
        &self,
        group: &str,
        version: &str,
    ) -> Result<Vec<Resolved>, ClusterError> {
        let (path, gv) = if group.is_empty() {
            (format!("/api/{version}"), version.to_string())
        } else {
            let gv = format!("{group}/{version}");
            (format!("/apis/{gv}"), gv)
        };
        let request = http::Request::get(&path)
            .body(Vec::new())
            .map_err(|e| ClusterError::Request(e.to_string()))?;
        let list: APIResourceList = match self.call(&format!("discovery of {gv}"), request).await {
            Ok(list) => list,
            Err(ClusterError::Api { code: 404, .. }) => {
                return Err(ClusterError::NotServed {
                    kind: gv.clone(),
                    why: format!("the API server does not serve {gv}"),
                });
            }
            Err(e) => return Err(e),
        };
        Ok(list
            .resources
            .iter()
            .filter(|r| !r.name.contains('/'))
            .filter(|r| r.verbs.iter().any(|v| v == "list") && r.verbs.iter().any(|v| v == "watch"))
            .map(|r| Resolved {
                group: group.to_string(),
                version: version.to_string(),
                kind: r.kind.clone(),
                plural: r.name.clone(),
                namespaced: r.namespaced,
            })
            .collect())
    }

    /// The version the API server prefers for `group` (`None` when it does not serve it).
    pub async fn preferred_version(&self, group: &str) -> Result<Option<String>, ClusterError> {
        if group.is_empty() {
            return Ok(Some("v1".into()));
        }
        let request = http::Request::get(format!("/apis/{group}"))
            .body(Vec::new())
            .map_err(|e| ClusterError::Request(e.to_string()))?;
        match self
            .call::<APIGroup>(&format!("discovery of {group}"), request)
            .await
        {
            Ok(g) => Ok(g
                .preferred_version
                .or_else(|| g.versions.first().cloned())
                .map(|v| v.version)),
            Err(ClusterError::Api { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every group the API server serves with its preferred version (`/apis`), the core group
    /// (`v1`) first.
    pub async fn served_groups(&self) -> Result<Vec<(String, String)>, ClusterError> {
        let request = http::Request::get("/apis")
            .body(Vec::new())
            .map_err(|e| ClusterError::Request(e.to_string()))?;
        let list: APIGroupList = self.call("discovery of the API groups", request).await?;
        let mut out = vec![(String::new(), "v1".to_string())];
        for g in list.groups {
            if let Some(v) = g.preferred_version.or_else(|| g.versions.first().cloned()) {
                out.push((g.name, v.version));
            }
        }
        Ok(out)
    }

    /// The pages of a list of every object of `kind` (all namespaces).
    pub fn pages<'a>(&'a self, kind: &'a Resolved) -> Pages<'a> {
        Pages {
            conn: self,
            kind,
            next: None,
            done: false,
            resource_version: None,
            inconsistent: false,
        }
    }
}

impl Connection {
    /// The labels of every Namespace, read with one (paged) list.
    pub async fn namespace_labels(&self) -> Result<super::NamespaceTable, ClusterError> {
        let kind = Resolved::namespaces();
        let mut table = super::NamespaceTable::new();
        let mut pages = self.pages(&kind);
        while let Some(items) = pages.next().await? {
            for ns in items {
                if let Some(name) = ns.pointer("/metadata/name").and_then(Value::as_str) {
                    table.insert(
                        name.to_string(),
                        crate::policy::matcher::labels_of(Some(&ns)),
                    );
                }
            }
        }
        Ok(table)
    }
}

/// A paged list (`limit` and `continue`), one page at a time, so that what is held is one
/// page, whatever the size of the cluster.
pub struct Pages<'a> {
    conn: &'a Connection,
    kind: &'a Resolved,
    next: Option<String>,
    done: bool,
    /// The list's resourceVersion (every page of one list has the same).
    pub resource_version: Option<String>,
    /// The continue token expired mid-list and the list went on with the token the API server
    /// offered for that (objects changed meanwhile may be missed or seen twice).
    pub inconsistent: bool,
}

impl Pages<'_> {
    /// The next page (its objects with `apiVersion` and `kind` set: the API server leaves
    /// them out of the items of built-in lists), or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<Value>>, ClusterError> {
        if self.done {
            return Ok(None);
        }
        let params = kube::api::ListParams {
            limit: Some(self.conn.page_size),
            continue_token: self.next.clone(),
            ..Default::default()
        };
        let request = kube::core::Request::new(self.kind.url_path())
            .list(&params)
            .map_err(|e| ClusterError::Request(e.to_string()))?;
        let what = format!("list of {}", self.kind.resource_name());
        let list: List = match self.conn.call(&what, request).await {
            Ok(list) => list,
            // The continue token is too old (etcd compacted past it): the API server offers
            // one to go on with, inconsistently, in the Status.
            Err(ClusterError::Api {
                code: 410,
                continue_token: Some(token),
                ..
            }) if self.next.is_some() => {
                tracing::warn!(resource = %self.kind.resource_name(), "a list's continue token expired; going on with an inconsistent list");
                self.inconsistent = true;
                self.next = Some(token);
                return Box::pin(self.next()).await;
            }
            Err(e) => return Err(e),
        };
        if self.resource_version.is_none() {
            self.resource_version = list.metadata.resource_version.clone();
        }
        self.next = list.metadata.continue_.filter(|c| !c.is_empty());
        self.done = self.next.is_none();
        let api_version = self.kind.api_version();
        let mut items = list.items;
        for item in &mut items {
            if let Some(map) = item.as_object_mut() {
                map.entry("apiVersion")
                    .or_insert_with(|| Value::String(api_version.clone()));
                map.entry("kind")
                    .or_insert_with(|| Value::String(self.kind.kind.clone()));
            }
        }
        Ok(Some(items))
    }
}
