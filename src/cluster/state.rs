//! The cluster as the webhook sees it: off, turned off, needed but out of reach, or watched;
//! what a decision reads of it, whether it may decide, and what `/readyz` says.

use std::path::Path;

use serde_json::{Value, json};

use super::sync::Needs;
use super::{View, Watch, connect};

/// The cluster, for `serve`.
pub enum Cluster {
    /// Nothing needs the cluster and none was asked for: decisions run as without one.
    Off,
    /// `cluster.enabled: false`: nothing is read; a `namespaceSelector` matches nothing and
    /// `data.inventory` is empty.
    Disabled,
    /// Needed but out of reach (no cluster, a kubeconfig that cannot be used): not ready,
    /// and decisions that need it fail closed, with this reason.
    Unavailable(String),
    Watching(Box<Watch>),
}

impl Cluster {
    /// Connects and starts the caches when something needs them ([`Needs`]) or
    /// `cluster.enabled: true` asks for it. CRDs are watched when `crds` (provenance on).
    /// Never fails: what goes wrong is [`Cluster::Unavailable`], logged here and reported
    /// by `/readyz`.
    pub async fn start_with(
        settings: &super::Settings,
        needs: &Needs,
        kubeconfig: Option<&Path>,
        crds: bool,
    ) -> Cluster {
        for problem in &needs.problems {
            tracing::warn!("{problem}");
        }
        if needs.sync.is_empty() && !needs.inventory_readers.is_empty() {
            tracing::warn!(
                policies = %needs.inventory_readers.join(","),
                "policies read data.inventory, but no kind is synced (inventory.sync, or a Gatekeeper Config or SyncSet among the policies): they see an empty inventory"
            );
        }
        let enabled = settings.enabled;
        if enabled == Some(false) {
            if needs.any() {
                tracing::warn!(
                    "cluster.enabled is false: {}; a namespaceSelector matches nothing and data.inventory is empty",
                    needs.describe()
                );
            }
            return Cluster::Disabled;
        }
        if !needs.any() && enabled != Some(true) {
            return Cluster::Off;
        }
        let wanted = if needs.any() {
            needs.describe()
        } else {
            "cluster.enabled is true".to_string()
        };
        match connect(settings, kubeconfig).await {
            Ok(Some(connection)) => {
                tracing::info!(server = %connection.server, from = %connection.origin, "watching the cluster: {wanted}");
                Cluster::Watching(Box::new(Watch::start(connection, needs, crds)))
            }
            Ok(None) => {
                let reason = format!(
                    "{wanted}, but there is no cluster: no in-cluster service account and no kubeconfig \
                     (--kubeconfig, cluster.kubeconfig, KUBECONFIG, ~/.kube/config); set cluster.enabled: \
                     false to run without one"
                );
                tracing::error!("{reason}");
                Cluster::Unavailable(reason)
            }
            Err(e) => {
                let reason = format!("{wanted}, but the cluster cannot be reached: {e}");
                tracing::error!("{reason}");
                Cluster::Unavailable(reason)
            }
        }
    }

    /// What a decision reads now.
    pub fn view(&self) -> View {
        match self {
            Cluster::Off | Cluster::Unavailable(_) => View::none(),
            Cluster::Disabled => View::disabled(),
            Cluster::Watching(watch) => watch.view(),
        }
    }

    /// Why decisions cannot be made now, when the policies need the cluster and it is out of
    /// reach or its caches have not read their first lists. No lock is taken.
    pub fn blocks_decisions(&self, needs: &Needs) -> Option<String> {
        if needs.namespace_selectors.is_empty() && needs.sync.is_empty() {
            return None;
        }
        match self {
            Cluster::Unavailable(reason) => Some(reason.clone()),
            Cluster::Watching(watch) if !watch.is_synced() => {
                Some("the cluster caches are not synced yet".to_string())
            }
            _ => None,
        }
    }

    /// The `cluster` part of `/readyz`, and whether it is ready.
    pub fn readiness(&self) -> (bool, Value) {
        match self {
            Cluster::Off => (true, json!({"state": "off"})),
            Cluster::Disabled => (true, json!({"state": "disabled"})),
            Cluster::Unavailable(reason) => {
                (false, json!({"state": "unavailable", "reason": reason}))
            }
            Cluster::Watching(watch) => {
                let caches: Vec<Value> = watch
                    .statuses()
                    .into_iter()
                    .map(|s| {
                        let mut v = serde_json::to_value(&s).unwrap_or(Value::Null);
                        v["ageSeconds"] = json!(s.age().as_secs_f64());
                        v
                    })
                    .collect();
                let mut body = json!({"state": "watching", "server": watch.connection.server, "caches": caches});
                match watch.ready() {
                    Ok(()) => (true, body),
                    Err(reason) => {
                        body["reason"] = json!(reason);
                        (false, body)
                    }
                }
            }
        }
    }

    /// Sets the caches' gauges (at a scrape).
    pub fn record_metrics(&self) {
        if let Cluster::Watching(watch) = self {
            watch.record_metrics();
        }
    }
}
