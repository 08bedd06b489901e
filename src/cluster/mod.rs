//! The cluster: what gitgate reads from the Kubernetes API server, with kube-rs (rustls on
//! ring, as everywhere else).
//!
//! - [`connect`]: the client, from `--kubeconfig`, `cluster.kubeconfig`, `KUBECONFIG`, the
//!   in-cluster service account or `~/.kube/config`; `None` when there is no cluster (CI, the
//!   demo, a laptop), which is not an error until something needs one ([`sync::Needs`]).
//! - [`Watch`]: watch caches (reflectors) of Namespaces (for `namespaceSelector`), CRDs
//!   (scope and structural schemas) and the synced kinds (`data.inventory`). A decision reads
//!   a [`View`]: snapshots swapped in atomically, no lock, no request to the API server.
//! - [`Connection::pages`]: paged lists, for `audit`.
//! - [`inventory`]: `data.inventory` in Gatekeeper's layout (also filled by `check` from the
//!   head's objects).
//!
//! # Keeping to the protocol
//!
//! A cache lists its kind (paged, `limit` and `continue`), then watches from the list's
//! `resourceVersion` with bookmarks; each event and bookmark moves the resourceVersion on. A
//! watch that ends (its `timeoutSeconds`, a dropped connection) is resumed from the last
//! resourceVersion; a `410 Gone` (an `ERROR` event, or the response to the watch request:
//! the resourceVersion was compacted away) forces a new list. Failures back off
//! exponentially (0.5 s to 30 s). A watch that sends nothing for `cluster.watchTimeout` plus
//! a margin is taken for lost (an API server that stopped answering), and every list and
//! discovery request has a limit (`cluster.requestTimeout`).
//!
//! Why not `kube_runtime::watcher`: it does the same list-then-watch, but says nothing when a
//! watch is re-established, so a cache that recovered would look stale until its next event;
//! this loop knows when each watch starts, so the staleness it reports is the truth. While a
//! watch is lost the cache keeps deciding on what it last knew, and `/readyz` and the
//! `gitgate_cluster_cache_age_seconds` gauge say for how long.

mod client;
pub mod inventory;
mod state;
pub mod sync;
mod watch;

use std::time::Duration;

pub use client::{Connection, Pages, Resolved, connect, pick};
pub use state::Cluster;
pub use watch::{Crd, CrdVersion, Crds, KindStatus, NamespaceTable, View, Watch};

/// Why the cluster could not be read. Every message names what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A kubeconfig that cannot be read or used.
    #[error("{path}: cannot use the kubeconfig: {message}")]
    Kubeconfig { path: String, message: String },
    /// The in-cluster service account cannot be used.
    #[error("cannot use the in-cluster service account: {0}")]
    InCluster(String),
    #[error("cannot make a client for {server}: {message}")]
    Client { server: String, message: String },
    /// No kubeconfig and no in-cluster service account.
    #[error(
        "no cluster: no kubeconfig (--kubeconfig, cluster.kubeconfig, KUBECONFIG or \
         ~/.kube/config) and no in-cluster service account"
    )]
    NoCluster,
    /// The API server answered with an error status (403: RBAC forbids it).
    #[error("{what}: {message} ({code}{})", if reason.is_empty() { String::new() } else { format!(" {reason}") })]
    Api {
        what: String,
        code: u16,
        reason: String,
        message: String,
        /// A 410's offer to go on with an expired list.
        continue_token: Option<String>,
    },
    /// No answer in time.
    #[error("{what}: no answer within {}", humantime::format_duration(*after))]
    Timeout { what: String, after: Duration },
    /// The request did not complete (connection refused or reset, an unreadable answer).
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
    /// A kind the API server does not serve.
    #[error("{kind} is not served: {why}")]
    NotServed { kind: String, why: String },
    #[error("cannot build a request: {0}")]
    Request(String),
}

impl ClusterError {
    pub(crate) fn from_kube(what: &str, e: kube::Error) -> ClusterError {
        match e {
            kube::Error::Api(status) => ClusterError::Api {
                what: what.to_string(),
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
                continue_token: status
                    .metadata
                    .as_ref()
                    .and_then(|m| m.continue_.clone())
                    .filter(|c| !c.is_empty()),
            },
            other => ClusterError::Transport {
                what: what.to_string(),
                message: client::error_chain(&other),
            },
        }
    }

    /// Whether trying again later may help (the API server was unreachable, slow, or
    /// overloaded) rather than the setup being wrong (RBAC, a kind not served, a kubeconfig).
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Timeout { .. } | ClusterError::Transport { .. } => true,
            ClusterError::Api { code, .. } => matches!(code, 410 | 429 | 500..),
            _ => false,
        }
    }
}

/// The Kubernetes API server gitgate reads (in-cluster, or a kubeconfig): Namespaces for
/// `namespaceSelector`, the synced kinds for `data.inventory`, CRDs, and what `audit` lists.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "ClusterSettings")]
pub struct Settings {
    /// Unset (auto): connect when something needs the cluster (a policy's `namespaceSelector`,
    /// a sync list, the in-cluster audit) and one is configured. `true`: connect, and be not
    /// ready without. `false`: never connect; a `namespaceSelector` then matches nothing and
    /// `data.inventory` is empty (both reported at start).
    pub enabled: Option<bool>,
    /// A kubeconfig file (`--kubeconfig` wins; then this; then `KUBECONFIG`; then the
    /// in-cluster service account; then `~/.kube/config`).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context (default: its current context).
    pub context: Option<String>,
    /// How long one watch request lasts (`timeoutSeconds`); a watch that sends nothing for
    /// this long plus a margin is taken for lost (an API server that stopped answering).
    #[serde(
        deserialize_with = "crate::manifest::duration",
        serialize_with = "crate::manifest::write_duration"
    )]
    #[schemars(with = "String")]
    pub watch_timeout: Duration,
    /// Limit of one list or discovery request.
    #[serde(
        deserialize_with = "crate::manifest::duration",
        serialize_with = "crate::manifest::write_duration"
    )]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// Objects per list page (`limit`), for the caches and `audit`.
    pub page_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: None,
            kubeconfig: None,
            context: None,
            watch_timeout: Duration::from_secs(290),
            request_timeout: Duration::from_secs(30),
            page_size: 500,
        }
    }
}

/// A kind of the cluster, as Gatekeeper's sync lists name one.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KindRef {
    /// The API group (`""` for the core group).
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
    /// The resource (plural) name, when discovery should not be asked (the chart's RBAC also
    /// reads it; by default the kind's lower-case plural).
    #[serde(default)]
    pub resource: Option<String>,
}

impl KindRef {
    /// The same group, version and kind (the resource name aside).
    pub fn same_kind(&self, other: &KindRef) -> bool {
        self.group == other.group && self.version == other.version && self.kind == other.kind
    }
}
