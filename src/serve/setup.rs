//! From a configuration to a state ready to serve: the policies, compiled with an evaluation
//! limit no longer than the request deadline, the Git mirror when a repository is
//! configured, and the cluster's caches when something needs them ([`with_cluster`]). `gitgate serve` and `gitgate demo` start the webhook through here, so the demo
//! runs what a cluster runs.

use std::path::Path;
use std::sync::Arc;

use super::AppState;
use crate::config::Config;
use crate::policy::rego::RegoVersion;
use crate::provenance::mirror::{Mirror, Source};

/// Why the webhook cannot start: each names the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Policies(#[from] crate::policy::PolicyError),
    /// `server.refreshTokenFile` cannot be read.
    #[error("server.refreshTokenFile: {0}")]
    RefreshToken(String),
    /// The repository's source or its trusted keys.
    #[error(transparent)]
    Provenance(#[from] crate::provenance::ProvenanceError),
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The server failed (its address, its certificate).
    #[error(transparent)]
    Server(#[from] super::ServeError),
}

/// `gitgate serve`: the state, then the webhook on a runtime of its own until SIGTERM.
pub fn serve(
    config: &Config,
    config_dir: &Path,
    rego_version: RegoVersion,
    kubeconfig: Option<&Path>,
) -> Result<(), SetupError> {
    let state = state(config, config_dir, rego_version)?;
    // Workers get room for deep objects (the decision threads have theirs: decision::guard).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(crate::isolate::THREAD_STACK)
        .enable_all()
        .build()
        .map_err(SetupError::Runtime)?;
    let files = super::TlsFiles {
        cert: config.server.tls_cert.clone(),
        key: config.server.tls_key.clone(),
        client_ca: config.server.client_ca.clone(),
    };
    let result = runtime.block_on(async {
        let state = Arc::new(with_cluster(state, config, kubeconfig).await);
        super::audit::spawn(&state);
        super::run(
            state,
            &config.server.listen,
            config.server.metrics_listen.as_deref(),
            files,
            config.server.max_body_bytes,
        )
        .await
    });
    // In-flight requests have had their answers (`run` waits for them); a decision abandoned
    // at its deadline may still run on a decision thread, which nobody waits for; the
    // runtime's blocking pool (a token read by /refresh) is not waited for either.
    runtime.shutdown_background();
    Ok(result?)
}

/// Loads the policies and starts the mirror's sync thread (provenance on) or logs that
/// provenance is off. Errors name the file or key at fault.
pub fn state(
    config: &Config,
    config_dir: &Path,
    rego_version: RegoVersion,
) -> Result<AppState, SetupError> {
    // No evaluation may outlast the request deadline (decisions are abandoned at the deadline, and this limit ends them).
    let mut limited = config.clone();
    limited.policies.timeout = config.policies.timeout.min(config.server.timeout);
    let set = crate::setup::from_config(&limited, config_dir, &[], rego_version)?;
    set.log_skipped();
    tracing::info!(policies = set.len(), "policies loaded");
    // The refresh token is read on every POST /refresh; a file that cannot serve is an error now.
    if let Some(path) = &config.server.refresh_token_file {
        super::refresh::read_token(path).map_err(|e| SetupError::RefreshToken(e.to_string()))?;
    }
    let mut state = AppState::new(set, config);
    match Source::from_config(config)? {
        Some(source) => {
            let mirror = Arc::new(Mirror::deciding());
            mirror.spawn(source);
            state = state.with_mirror(mirror);
        }
        None => tracing::info!("no repository configured: provenance is off"),
    }
    Ok(state)
}

/// Adds the cluster to a state: what its policies and configuration need
/// ([`Needs`](crate::cluster::sync::Needs)), and the caches that serve it (CRDs too when
/// provenance is on). Runs inside the runtime (the caches are tasks of it).
pub async fn with_cluster(state: AppState, config: &Config, kubeconfig: Option<&Path>) -> AppState {
    let needs = crate::cluster::sync::Needs::of(&state.policies, config);
    let crds = state.mirror.is_some();
    let cluster = crate::cluster::Cluster::start(config, &needs, kubeconfig, crds).await;
    state.with_cluster(cluster, needs)
}
