//! `gitgate audit` from the command line: connect, build the approved window's index (when a
//! repository is configured), read what the policies read of the cluster (namespace labels,
//! the synced kinds for `data.inventory`) with one list each, then audit on every core.

use std::path::Path;

use super::{Context, Outcome, plan, run};
use crate::cluster::inventory::Inventory;
use crate::cluster::sync::Needs;
use crate::cluster::{ClusterError, Connection, NamespaceTable, View, connect};
use crate::config::Config;
use crate::policy::PolicySet;

/// Why an audit could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cluster.enabled is false: there is no cluster to audit")]
    Disabled,
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The approved window could not be read.
    #[error("the approved window of {repository}: {source}")]
    Provenance {
        repository: String,
        #[source]
        source: crate::provenance::ProvenanceError,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs an audit with a configuration and its policies.
pub fn audit(
    config: &Config,
    policies: &PolicySet,
    kubeconfig: Option<&Path>,
) -> Result<Outcome, AuditError> {
    if config.cluster.enabled == Some(false) {
        return Err(AuditError::Disabled);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(AuditError::Runtime)?;
    let connection = runtime
        .block_on(connect(&config.cluster, kubeconfig))?
        .ok_or(ClusterError::NoCluster)?;
    tracing::info!(server = %connection.server, from = %connection.origin, "auditing the cluster");
    let snapshot = match crate::provenance::mirror::Source::from_config(config) {
        Ok(Some(source)) => {
            let mirror = crate::provenance::mirror::Mirror::default();
            let repository = config.repository.url.clone().unwrap_or_default();
            mirror
                .sync(&source)
                .map_err(|source| AuditError::Provenance {
                    repository: crate::provenance::fetch::redact(&repository),
                    source,
                })?;
            mirror.snapshot()
        }
        Ok(None) => None,
        Err(source) => {
            return Err(AuditError::Provenance {
                repository: crate::provenance::fetch::redact(
                    &config.repository.url.clone().unwrap_or_default(),
                ),
                source,
            });
        }
    };
    let needs = Needs::of(policies, config);
    for problem in &needs.problems {
        tracing::warn!("{problem}");
    }
    let view = runtime.block_on(read_view(&connection, &needs))?;
    let ctx = Context {
        connection: &connection,
        runtime: runtime.handle(),
        policies,
        config,
        index: snapshot.as_ref().map(|s| &s.index),
        view: &view,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        keep_subjects: false,
    };
    let plan = plan(&ctx, &needs);
    Ok(run(&ctx, plan))
}

/// What the policies read of the cluster, read once: the labels of every Namespace (when a
/// policy matches by `namespaceSelector`) and the synced kinds (`data.inventory`).
pub async fn read_view(connection: &Connection, needs: &Needs) -> Result<View, ClusterError> {
    let namespaces = if needs.namespace_selectors.is_empty() {
        NamespaceTable::new()
    } else {
        connection.namespace_labels().await?
    };
    if needs.sync.is_empty() {
        return Ok(View::of(namespaces, None));
    }
    let mut inventory = Inventory::default();
    for synced in &needs.sync {
        let kind = match connection.resolve(&synced.kind).await {
            Ok(kind) => kind,
            // Not served: the cluster holds none of it.
            Err(ClusterError::NotServed { .. }) => continue,
            Err(e) => return Err(e),
        };
        let mut pages = connection.pages(&kind);
        while let Some(items) = pages.next().await? {
            for mut obj in items {
                let ns = obj
                    .pointer("/metadata/namespace")
                    .and_then(|n| n.as_str())
                    .map(str::to_string);
                if !needs.syncs_namespace(ns.as_deref()) {
                    continue;
                }
                if let Some(meta) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                    meta.remove("managedFields");
                }
                inventory.insert(&obj);
            }
        }
    }
    Ok(View::of(namespaces, Some(&inventory)))
}
