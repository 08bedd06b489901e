//! The one configuration file (`gitgate.yaml` by default) that `check` and `serve` share.
//! Every key is optional; an unknown key is an error that names the key and its line, so that
//! a typo never silently turns a protection off.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

pub use crate::cluster::{KindRef, Settings as Cluster};
pub(crate) use crate::manifest::{duration, write_duration};
pub use crate::provenance::fetch::Credentials;

use crate::policy::Enforcement;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    pub repository: Repository,
    pub approval: Approval,
    pub policies: Policies,
    pub provenance: Provenance,
    pub exempt: Exempt,
    pub break_glass: BreakGlass,
    pub server: Server,
    /// The engines that render sources and the limits of one render.
    pub render: crate::render::Settings,
    pub cluster: Cluster,
    pub inventory: Inventory,
    pub audit: Audit,
}

/// The GitOps repository (serve mirrors it; check reads the one it runs in).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Repository {
    pub url: Option<String>,
    /// The protected branch.
    pub branch: String,
    /// Manifest roots inside the repository (default: everything).
    pub paths: Vec<String>,
    /// What the GitOps controller applies, source by source (default: each of `paths`, or
    /// the whole repository, rendered `auto`).
    pub sources: Vec<crate::render::SourceSpec>,
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(with = "String")]
    pub refresh: Duration,
    pub credentials: Credentials,
    /// Where `serve` keeps its bare mirror of a remote repository (the chart mounts a volume
    /// here).
    pub mirror_dir: PathBuf,
    /// The certificate authorities (PEM) an HTTPS repository's server is verified with, for a
    /// Git server with a private CA, instead of the system's roots (as git's `http.sslCAInfo`).
    pub ca_file: Option<PathBuf>,
    /// The longest one HTTP(S) request of a fetch may take, the pack included: a Git server
    /// that stalls fails the sync after this (the last good index keeps deciding) instead of
    /// holding the mirror's thread, and with it every later sync and `/refresh`.
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(with = "String")]
    pub fetch_timeout: Duration,
    /// The namespace of namespaced objects whose manifest sets none (as `kubectl apply -n`,
    /// Flux's `targetNamespace` or Argo CD's destination namespace would give them).
    pub default_namespace: String,
    /// A manifest file a pull request changes that no source renders or reads (applied by
    /// nothing gitgate knows): `warn` (default) names it in a warning, `error` makes `check`
    /// exit 2.
    pub unrendered: Unrendered,
}

/// What `check` does with a changed manifest that no source renders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unrendered {
    #[default]
    Warn,
    Error,
}

impl Default for Repository {
    fn default() -> Self {
        Repository {
            url: None,
            branch: "main".into(),
            paths: Vec::new(),
            sources: Vec::new(),
            refresh: Duration::from_secs(30),
            credentials: Credentials::default(),
            mirror_dir: PathBuf::from("/var/lib/gitgate/mirror"),
            ca_file: None,
            fetch_timeout: Duration::from_secs(120),
            default_namespace: "default".into(),
            unrendered: Unrendered::Warn,
        }
    }
}

/// What makes a commit approved.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Approval {
    pub window: Window,
    pub require_signatures: bool,
    pub allowed_signers: Option<PathBuf>,
    pub openpgp_keys: Vec<PathBuf>,
    /// After the protected branch was rewound (its newest approved commit does not descend
    /// from the last one, or hides a newer approved commit behind an older first parent), the
    /// window stays where it was until an approved commit descends from the last one, or until
    /// this names the branch's tip as it is now (its id, or a prefix of at least 7 hex
    /// digits): an operator's explicit acknowledgement, spent once used (another push is
    /// another tip).
    pub acknowledge_rewind: Option<String>,
}

/// The window of recent approved commits that count.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Window {
    pub commits: usize,
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(with = "String")]
    pub max_age: Duration,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            commits: 20,
            max_age: Duration::from_secs(168 * 3600),
        }
    }
}

/// `policies.memoryLimit` in bytes: `None` for `off`, and for `auto` 80% of the container's
/// memory limit (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`) or, without one, of
/// the machine's memory (2 GiB when neither can be read).
pub fn memory_limit(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    match text {
        "off" => return Ok(None),
        "auto" => {
            let cgroup = [
                "/sys/fs/cgroup/memory.max",
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            ]
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok()?.trim().parse::<u64>().ok())
            // cgroup v1 says "no limit" with a huge number.
            .find(|&n| n < 1 << 50);
            let machine = || {
                let info = std::fs::read_to_string("/proc/meminfo").ok()?;
                let kib = info.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
                kib.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()?
                    .checked_mul(1024)
            };
            let total = cgroup.or_else(machine).unwrap_or(5 << 29);
            return Ok(Some(total / 5 * 4));
        }
        _ => {}
    }
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let times: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => {
            return Err(format!(
                "write auto, off or a size such as 512Mi or 2Gi, got {text:?}"
            ));
        }
    };
    match digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(times))
    {
        Some(n) if n >= 16 << 20 => Ok(Some(n)),
        Some(_) => Err(format!(
            "{text:?} is too small for any evaluation: at least 16Mi"
        )),
        None => Err(format!(
            "write auto, off or a size such as 512Mi or 2Gi, got {text:?}"
        )),
    }
}

/// Where policies come from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Policies {
    /// The embedded `policies/` library. With provenance on, its `provenance` policy is
    /// loaded even when this is false (weaken it with `enforcement: {provenance: warn}`).
    pub builtin: bool,
    /// Rego directories, ConstraintTemplates + constraints, conftest-style policies.
    pub paths: Vec<PathBuf>,
    /// Per-policy override of the enforcement action.
    pub enforcement: HashMap<String, Enforcement>,
    /// Limit of evaluating one document (all the policies that apply to it).
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Run with no policy at all (by default an empty policy set is an error: a gate that
    /// checks nothing must not say "passed").
    pub allow_empty: bool,
    /// The process's heap above which a Rego evaluation stops with an error of its policy
    /// (fail closed) instead of growing until the kernel kills the process: `auto` (80% of
    /// the container's memory limit, or of the machine's memory without one), a size
    /// (`384Mi`, `2Gi`, bytes), or `off`.
    pub memory_limit: String,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            builtin: true,
            paths: Vec::new(),
            enforcement: HashMap::new(),
            timeout: Duration::from_millis(1000),
            allow_empty: false,
            memory_limit: "auto".into(),
        }
    }
}

/// Traceability to an approved commit.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Provenance {
    /// On when a repository is configured, unless set to false.
    pub enabled: Option<bool>,
    pub controller_stamps: ControllerStamps,
    /// Fields other writers (mutating webhooks, operators) add to objects Git holds.
    pub mutations: Vec<Mutation>,
    /// The GitOps controllers' identities (user names, or groups such as
    /// `system:serviceaccounts:flux-system` where Flux impersonates tenants' service
    /// accounts): only they may add or change a tracking stamp, or create an object with one
    /// whose value Git does not say.
    pub controllers: Vec<String>,
    /// helm-controller's user name: what it writes for a HelmRelease of the newest approved
    /// commit whose chart comes from a chart repository is `delegated` to that release (in its
    /// target namespace; a release with `serviceAccountName` is applied as that account).
    pub helm_controller: String,
}

impl Default for Provenance {
    fn default() -> Self {
        Provenance {
            enabled: None,
            controller_stamps: ControllerStamps::default(),
            mutations: Vec::new(),
            controllers: vec![
                "system:serviceaccount:flux-system:kustomize-controller".into(),
                "system:serviceaccount:flux-system:helm-controller".into(),
                "system:serviceaccount:argocd:argocd-application-controller".into(),
            ],
            helm_controller: "system:serviceaccount:flux-system:helm-controller".into(),
        }
    }
}

/// The tracking stamps a GitOps controller adds to the labels and annotations of what it
/// applies: exact keys (a label entry `key=value` also fixes the value), and prefixes. A
/// controller's control keys (`kustomize.toolkit.fluxcd.io/reconcile`,
/// `argocd.argoproj.io/sync-options`, ...) are never stamps, even under a prefix.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ControllerStamps {
    pub labels: Vec<String>,
    pub annotations: Vec<String>,
    pub label_prefixes: Vec<String>,
    pub annotation_prefixes: Vec<String>,
}

impl Default for ControllerStamps {
    /// The tracking keys of Flux (kustomize-controller and helm-controller), Helm and Argo CD.
    fn default() -> Self {
        ControllerStamps {
            labels: vec![
                "kustomize.toolkit.fluxcd.io/name".into(),
                "kustomize.toolkit.fluxcd.io/namespace".into(),
                "helm.toolkit.fluxcd.io/name".into(),
                "helm.toolkit.fluxcd.io/namespace".into(),
                "app.kubernetes.io/managed-by=Helm".into(),
                // Argo CD's label tracking (its default before 3.0).
                "app.kubernetes.io/instance".into(),
            ],
            annotations: vec![
                "argocd.argoproj.io/tracking-id".into(),
                "argocd.argoproj.io/installation-id".into(),
                "meta.helm.sh/release-name".into(),
                "meta.helm.sh/release-namespace".into(),
            ],
            label_prefixes: Vec::new(),
            annotation_prefixes: Vec::new(),
        }
    }
}

/// A mutation allowance: paths of some kinds that a named writer (a mutating webhook, an
/// operator, an autoscaler) sets in objects Git holds. The paths are written as gitgate reports
/// them (`spec.containers[name=istio-proxy]`, `metadata.annotations["sidecar.istio.io/status"]`),
/// with `*` in names and `[*]` for any list item; a path covers everything below it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Mutation {
    /// Kind names (`Pod`, `Deployment`); `*` for every kind.
    pub kinds: Vec<String>,
    pub paths: Vec<String>,
    /// Who writes them, for the people who read the configuration.
    pub by: Option<String>,
}

/// Who and what is exempt from provenance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Exempt {
    pub namespaces: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub controllers: Vec<String>,
    pub subresources: Vec<String>,
}

impl Default for Exempt {
    fn default() -> Self {
        Exempt {
            namespaces: vec![
                "kube-system".into(),
                "kube-public".into(),
                "kube-node-lease".into(),
            ],
            // Every kube-controller-manager controller: the objects they write (a claim
            // template's PVC, an aggregated ClusterRole, a VolumeAttachment, a Deployment's
            // revision) follow from what Git holds, or from nothing Git could hold.
            users: crate::provenance::kcm::CONTROLLER_MANAGER_IDENTITIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            groups: vec!["system:nodes".into()],
            controllers: vec!["system:serviceaccount:kube-system:replicaset-controller".into()],
            subresources: vec!["status".into()],
        }
    }
}

/// The audited emergency path.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct BreakGlass {
    pub groups: Vec<String>,
    pub reason_annotation: String,
}

impl Default for BreakGlass {
    fn default() -> Self {
        BreakGlass {
            groups: Vec::new(),
            reason_annotation: "gitgate.dev/break-glass-reason".into(),
        }
    }
}

/// What an internal error answers at admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    #[default]
    Deny,
    Allow,
}

/// The webhook's server.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Server {
    pub listen: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    #[serde(rename = "clientCA")]
    pub client_ca: Option<PathBuf>,
    pub failure_mode: FailureMode,
    /// Decisions that may run at once, evaluations abandoned at their deadline included
    /// (0: four per core, at least 8).
    pub max_decisions: usize,
    /// Requests to `/validate` in flight at once, their bodies included, so that what requests
    /// hold in memory is bounded by `maxRequests` × `maxBodyBytes`: one more waits for a place
    /// (without reading its body) up to `timeout`, then is refused (429); a request whose body
    /// and answer take longer than twice `timeout` (a client that sends its body slowly) is
    /// cut off (408) and frees its place.
    pub max_requests: usize,
    pub max_body_bytes: usize,
    #[serde(deserialize_with = "duration", serialize_with = "write_duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// A file holding the shared token of `POST /refresh` (Git host webhooks asking for a
    /// sync now). Unset turns the endpoint off; the token is never logged.
    pub refresh_token_file: Option<PathBuf>,
    /// A second, plain-HTTP listener serving only `/metrics` and `/healthz` (e.g.
    /// `0.0.0.0:9090`), so that Prometheus needs no certificate authority to scrape. Unset
    /// (the default) leaves it off; `/metrics` is always served over HTTPS on `listen`.
    pub metrics_listen: Option<String>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "0.0.0.0:8443".into(),
            tls_cert: "/tls/tls.crt".into(),
            tls_key: "/tls/tls.key".into(),
            client_ca: None,
            failure_mode: FailureMode::Deny,
            max_body_bytes: 8 * 1024 * 1024,
            timeout: Duration::from_millis(2500),
            refresh_token_file: None,
            metrics_listen: None,
            max_decisions: 0,
            max_requests: 64,
        }
    }
}

/// `data.inventory`: the kinds whose objects policies can read (Gatekeeper's `syncOnly`).
/// Gatekeeper `Config` and `SyncSet` documents among the policies add theirs.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Inventory {
    pub sync: Vec<KindRef>,
}

/// What is already in the cluster, judged with the same policies and provenance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Audit {
    /// `serve` runs the audit this often (off when unset).
    #[serde(deserialize_with = "optional_duration")]
    #[schemars(with = "Option<String>")]
    pub interval: Option<Duration>,
    /// The kinds audited. Empty: the synced kinds, the kinds the policies name, and the
    /// kinds of the newest approved commit.
    pub kinds: Vec<KindRef>,
    /// `serve` writes each audit's findings as PolicyReports (one per namespace) and a
    /// ClusterPolicyReport (`wgpolicyk8s.io/v1alpha2`, as Kyverno does), named
    /// `gitgate-audit`.
    pub policy_reports: bool,
    /// Namespaces whose objects are not audited (globs), as the webhook is not sent them
    /// (the chart leaves the system namespaces out of it). A Gatekeeper `Config`'s
    /// `spec.match` for the `audit` process adds its own.
    pub excluded_namespaces: Vec<String>,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            interval: None,
            kinds: Vec::new(),
            policy_reports: false,
            excluded_namespaces: vec![
                "kube-system".into(),
                "kube-public".into(),
                "kube-node-lease".into(),
            ],
        }
    }
}

/// An optional duration (`null` or absent: `None`).
fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => humantime::parse_duration(&text).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {text:?} ({e}); write it like 30s, 2500ms or 168h"
            ))
        }),
    }
}

/// Why the configuration could not be used. Messages name the file and line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    /// Keys that parse but do not make sense together; `message` names them.
    #[error("{file}: {message}")]
    Inconsistent { file: String, message: String },
}

impl Config {
    /// Reads `path`. A missing file is the default configuration only when `required` is
    /// false (the default path); a file named on the command line must exist.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default());
            }
            Err(source) => return Err(ConfigError::Io { file, source }),
        };
        Config::parse(&file, &text)
    }

    /// Parses configuration text named `file` in errors.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config = serde_saphyr::from_str::<Config>(text).map_err(|e| ConfigError::Invalid {
            file: file.to_string(),
            line: e.location().map(|l| l.line() as usize).unwrap_or(0),
            message: crate::manifest::yaml_error(&e),
        })?;
        config.validate(file, text)?;
        Ok(config)
    }

    /// The JSON Schema (draft 2020-12) of the file, for editors and other tools: every key
    /// with its type, default and description; `additionalProperties: false` wherever an
    /// unknown key is an error. Durations are strings (`30s`). What only [`Config::parse`]
    /// checks (keys that must agree, mutation paths, zero durations) is not in it.
    pub fn json_schema() -> serde_json::Value {
        let generated = schemars::schema_for!(Config).to_value();
        let mut schema = serde_json::Map::new();
        schema.insert("$schema".into(), generated["$schema"].clone());
        schema.insert("title".into(), "gitgate.yaml".into());
        schema.insert(
            "description".into(),
            "The configuration of gitgate (check, serve, audit). Every key is optional; an \
             unknown key is an error."
                .into(),
        );
        if let serde_json::Value::Object(rest) = generated {
            for (key, value) in rest {
                schema.entry(key).or_insert(value);
            }
        }
        serde_json::Value::Object(schema)
    }

    /// Checks what each key cannot check alone. Signatures required with no trusted key would
    /// refuse every commit, or, worse, read as "signatures checked" while nothing can pass.
    fn validate(&self, file: &str, text: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| Err(at_key(file, text, key, message));
        let approval = &self.approval;
        if approval.require_signatures
            && approval.allowed_signers.is_none()
            && approval.openpgp_keys.is_empty()
        {
            return invalid(
                "requireSignatures",
                "approval.requireSignatures is true but no key is trusted: set \
                 approval.allowedSigners (an SSH allowed_signers file) or \
                 approval.openpgpKeys (OpenPGP public keys)"
                    .into(),
            );
        }
        if let Some(ack) = &approval.acknowledge_rewind {
            let ack = ack.trim();
            if ack.len() < 7 || ack.len() > 64 || !ack.chars().all(|c| c.is_ascii_hexdigit()) {
                return invalid(
                    "acknowledgeRewind",
                    format!(
                        "approval.acknowledgeRewind must name a commit by its id (at least 7 hex digits), got {ack:?}"
                    ),
                );
            }
        }
        if let Err(e) = memory_limit(&self.policies.memory_limit) {
            return Err(at_nested_key(
                file,
                text,
                "policies",
                "memoryLimit",
                format!("policies.memoryLimit: {e}"),
            ));
        }
        if self.server.max_requests == 0 {
            return Err(at_nested_key(
                file,
                text,
                "server",
                "maxRequests",
                "server.maxRequests must be at least 1".into(),
            ));
        }
        if self.cluster.page_size == 0 {
            return invalid("pageSize", "cluster.pageSize must be at least 1".into());
        }
        // A zero duration would sync without pause, or time every decision out.
        for (section, key, zero, why) in [
            (
                "repository",
                "refresh",
                self.repository.refresh.is_zero(),
                "the time between two Git syncs",
            ),
            (
                "server",
                "timeout",
                self.server.timeout.is_zero(),
                "the deadline of an admission decision",
            ),
            (
                "policies",
                "timeout",
                self.policies.timeout.is_zero(),
                "the time limit of evaluating one document",
            ),
        ] {
            if zero {
                return Err(at_nested_key(
                    file,
                    text,
                    section,
                    key,
                    format!("{section}.{key} must be longer than 0s ({why})"),
                ));
            }
        }
        if let Some(metrics) = &self.server.metrics_listen {
            let metrics = metrics.trim();
            if metrics.is_empty() || !metrics.contains(':') {
                return invalid(
                    "metricsListen",
                    format!(
                        "server.metricsListen must be an address like 0.0.0.0:9090 or :9090 (leave it out to turn the plain-HTTP metrics listener off), got {metrics:?}"
                    ),
                );
            }
            if metrics == self.server.listen.trim() {
                return invalid(
                    "metricsListen",
                    format!(
                        "server.metricsListen ({metrics}) is server.listen's address: the metrics listener needs a port of its own"
                    ),
                );
            }
        }
        if self.audit.interval.is_some_and(|i| i.is_zero()) {
            return invalid(
                "interval",
                "audit.interval must be longer than 0 (leave it out to turn the audit off)".into(),
            );
        }
        if self.audit.interval.is_some() && self.cluster.enabled == Some(false) {
            return invalid(
                "interval",
                "audit.interval is set but cluster.enabled is false: the audit reads the cluster"
                    .into(),
            );
        }
        for source in &self.repository.sources {
            if crate::render::paths::join("", &source.path).is_none() {
                return invalid(
                    "sources",
                    format!(
                        "repository.sources: the path {:?} leaves the repository (a source is a folder inside it)",
                        source.path
                    ),
                );
            }
        }
        self.validate_provenance(file, text)
    }

    /// Mutation paths must parse (one that does not would allow nothing, silently), and a
    /// controller's control key is never a stamp.
    fn validate_provenance(&self, file: &str, text: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, message: String| Err(at_key(file, text, key, message));
        for (i, m) in self.provenance.mutations.iter().enumerate() {
            if m.kinds.is_empty() || m.paths.is_empty() {
                return fail(
                    "mutations",
                    format!("provenance.mutations[{i}] needs kinds and paths"),
                );
            }
            if let Err(e) = crate::provenance::closed::Allowance::parse(m) {
                return fail("mutations", format!("provenance.mutations[{i}].paths: {e}"));
            }
        }
        let stamps = &self.provenance.controller_stamps;
        for key in stamps.labels.iter().chain(&stamps.annotations) {
            let bare = key.split_once('=').map_or(key.as_str(), |(k, _)| k);
            if crate::provenance::closed::is_control_key(bare) {
                return fail(
                    "controllerStamps",
                    format!(
                        "provenance.controllerStamps: {bare} is a control key of a GitOps controller, never a tracking stamp"
                    ),
                );
            }
        }
        Ok(())
    }
}

/// An error about `key`'s value, at the line the key is written on when it can be found.
fn at_key(file: &str, text: &str, key: &str, message: String) -> ConfigError {
    match line_of(text, key) {
        Some(line) => ConfigError::Invalid {
            file: file.to_string(),
            line,
            message,
        },
        None => ConfigError::Inconsistent {
            file: file.to_string(),
            message,
        },
    }
}

/// An error about `section.key`'s value, at the line `key:` is written on after `section:`
/// (`timeout` is a key of several sections).
fn at_nested_key(file: &str, text: &str, section: &str, key: &str, message: String) -> ConfigError {
    let top = format!("{section}:");
    let after = text
        .lines()
        .position(|l| l.starts_with(&top))
        .map(|i| i + 1)
        .or_else(|| line_of(text, section))
        .unwrap_or(1);
    let line = text.lines().enumerate().skip(after - 1).find_map(|(i, l)| {
        let code = l.split('#').next().unwrap_or("");
        // On the section's own line, only after the section's name (`server: {timeout: 0s}`).
        let code = if i + 1 == after {
            code.split_once(':').map_or("", |(_, rest)| rest)
        } else {
            code
        };
        code.match_indices(key)
            .any(|(j, _)| code[j + key.len()..].trim_start().starts_with(':'))
            .then_some(i + 1)
    });
    match line {
        Some(line) => ConfigError::Invalid {
            file: file.to_string(),
            line,
            message,
        },
        None => at_key(file, text, key, message),
    }
}

/// The 1-based line where `key:` is first written (outside comments), for errors about a key
/// whose value parsed.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let code = l.split('#').next().unwrap_or("");
            code.match_indices(key)
                .any(|(i, _)| code[i + key.len()..].trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_says_what_serde_reads() {
        let schema = Config::json_schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema.get("required").is_none(), "every key is optional");
        let defs = &schema["$defs"];
        let server = &defs["Server"];
        assert_eq!(server["additionalProperties"], false);
        assert!(server["properties"]["clientCA"].is_object(), "{server:#}");
        assert_eq!(server["properties"]["timeout"]["type"], "string");
        assert_eq!(server["properties"]["timeout"]["default"], "2500ms");
        assert_eq!(defs["Window"]["properties"]["maxAge"]["default"], "168h");
        assert_eq!(
            defs["Repository"]["properties"]["refresh"]["default"],
            "30s"
        );
        assert_eq!(
            defs["Repository"]["properties"]["branch"]["default"],
            "main"
        );
        let render = &defs["RenderSettings"]["properties"];
        assert_eq!(render["timeout"]["default"], "1m");
        assert_eq!(
            defs["ClusterSettings"]["properties"]["watchTimeout"]["default"],
            "290s"
        );
        assert_eq!(defs["KindRef"]["additionalProperties"], false);
        let required = defs["KindRef"]["required"].as_array().unwrap();
        assert!(required.contains(&"kind".into()) && !required.contains(&"group".into()));
        assert!(
            defs["HelmSpec"]["properties"]["includeCRDs"].is_object(),
            "{:#}",
            defs["HelmSpec"]
        );
        let interval = &defs["Audit"]["properties"]["interval"];
        assert_eq!(interval["type"], serde_json::json!(["string", "null"]));
    }

    #[test]
    fn every_key_is_optional() {
        let c = Config::parse("g.yaml", "").unwrap();
        assert_eq!(c.repository.branch, "main");
        assert!(c.policies.builtin);
        assert_eq!(c.approval.window.commits, 20);
        assert_eq!(c.server.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
repository:
  url: https://git.example.com/org/gitops.git
  branch: main
  paths: [clusters/prod]
  sources:
    - {path: apps/production, render: auto}
    - {path: charts/web, render: helm, namespace: web, helm: {releaseName: web, valueFiles: [values-prod.yaml]}}
  refresh: 30s
  credentials: {usernameFile: /u, passwordFile: /p}
approval:
  window: {commits: 20, maxAge: 168h}
  requireSignatures: true
  allowedSigners: /etc/gitgate/allowed_signers
  openpgpKeys: [/etc/gitgate/keys/release.asc]
policies:
  builtin: true
  paths: [./policy]
  enforcement: {latest-tag: warn}
provenance:
  enabled: true
  controllerStamps: {labelPrefixes: [kustomize.toolkit.fluxcd.io/], annotationPrefixes: [argocd.argoproj.io/]}
  mutations: [{kinds: [Pod], paths: ["spec.containers[name=istio-proxy]"], by: istio-sidecar-injector}]
exempt:
  namespaces: [kube-system, kube-public, kube-node-lease]
  users: []
  groups: [system:nodes]
  controllers: [system:serviceaccount:kube-system:replicaset-controller]
  subresources: [status]
breakGlass:
  groups: [oncall]
  reasonAnnotation: gitgate.dev/break-glass-reason
server:
  listen: 0.0.0.0:8443
  tlsCert: /tls/tls.crt
  tlsKey: /tls/tls.key
  clientCA: null
  failureMode: deny
  maxBodyBytes: 8388608
  timeout: 2500ms
  refreshTokenFile: /etc/gitgate/refresh/token
  metricsListen: 0.0.0.0:9090
render:
  kustomizeBinary: /usr/local/bin/kustomize
  helmBinary: /usr/local/bin/helm
  timeout: 60s
  maxOutputBytes: 67108864
"#;
        let c = Config::parse("g.yaml", text).unwrap();
        assert_eq!(c.policies.enforcement["latest-tag"], Enforcement::Warn);
        assert_eq!(c.approval.window.max_age, Duration::from_secs(168 * 3600));
        assert_eq!(c.repository.paths, vec!["clusters/prod"]);
    }

    #[test]
    fn sources_and_render_settings_parse() {
        let text = "repository:
  sources:
    - {path: apps/production, render: auto}
    - {path: charts/web, render: helm, namespace: web, helm: {releaseName: web, valueFiles: [values-prod.yaml], includeCRDs: false, values: {a: 1}}}
render: {kustomizeBinary: /usr/bin/kubectl, helmBinary: /opt/helm, timeout: 30s, maxOutputBytes: 1024}
";
        let c = Config::parse("g.yaml", text).unwrap();
        let s = &c.repository.sources;
        assert_eq!(s[0].render, crate::render::Kind::Auto);
        assert_eq!(s[1].render, crate::render::Kind::Helm);
        assert_eq!(s[1].helm.release_name.as_deref(), Some("web"));
        assert_eq!(s[1].helm.include_crds, Some(false));
        assert_eq!(c.render.timeout, Duration::from_secs(30));
        assert_eq!(c.render.max_output_bytes, 1024);
        let err = Config::parse(
            "g.yaml",
            "repository:\n  sources:\n    - {path: a, render: jsonnet}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("g.yaml:3:"), "{err}");
        let err = Config::parse(
            "g.yaml",
            "repository:\n  sources:\n    - {path: a, helm: {valuesFile: x}}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("valuesFile"), "{err}");
        let err = Config::parse("g.yaml", "repository:\n  sources: [{path: ../other}]\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("g.yaml:2: repository.sources"), "{err}");
    }

    #[test]
    fn unknown_keys_name_key_and_line() {
        let err =
            Config::parse("g.yaml", "repository:\n  branch: main\n  pahts: [x]\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("g.yaml:3:"), "{msg}");
        assert!(msg.contains("pahts"), "{msg}");
    }

    #[test]
    fn required_signatures_need_a_trusted_key() {
        let text = "approval:\n  # signatures\n  requireSignatures: true\n";
        let err = Config::parse("g.yaml", text).unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:3: approval.requireSignatures"),
            "{err}"
        );
        assert!(
            err.contains("approval.allowedSigners") && err.contains("approval.openpgpKeys"),
            "{err}"
        );
        let flow = "approval: {requireSignatures: true}\n";
        let err = Config::parse("g.yaml", flow).unwrap_err().to_string();
        assert!(err.starts_with("g.yaml:1: "), "{err}");
        let keyed = "approval: {requireSignatures: true, openpgpKeys: [k.asc]}\n";
        assert!(Config::parse("g.yaml", keyed).is_ok());
    }

    #[test]
    fn mutations_and_stamps_are_checked() {
        let text = "provenance:\n  mutations:\n  - kinds: [Pod]\n    paths: [\"spec.containers[name=x\"]\n";
        let err = Config::parse("g.yaml", text).unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:2: provenance.mutations[0].paths"),
            "{err}"
        );
        let text = "provenance:\n  mutations: [{kinds: [Pod]}]\n";
        assert!(Config::parse("g.yaml", text).is_err());
        let text = "provenance:\n  controllerStamps:\n    annotations: [argocd.argoproj.io/sync-options]\n";
        let err = Config::parse("g.yaml", text).unwrap_err().to_string();
        assert!(err.contains("control key"), "{err}");
        // Setting prefixes keeps the default exact keys.
        let text = "provenance:\n  controllerStamps: {labelPrefixes: [example.com/]}\n";
        let c = Config::parse("g.yaml", text).unwrap();
        assert!(
            c.provenance
                .controller_stamps
                .labels
                .contains(&"kustomize.toolkit.fluxcd.io/name".to_string())
        );
    }

    #[test]
    fn bad_values_name_the_line() {
        let err =
            Config::parse("g.yaml", "policies:\n  enforcement: {latest-tag: block}\n").unwrap_err();
        assert!(err.to_string().starts_with("g.yaml:2:"), "{err}");
        let err = Config::parse("g.yaml", "repository:\n  refresh: soon\n").unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
    }

    #[test]
    fn metrics_listen_is_off_by_default_and_needs_a_port_of_its_own() {
        assert_eq!(
            Config::parse("g.yaml", "").unwrap().server.metrics_listen,
            None
        );
        let c = Config::parse("g.yaml", "server:\n  metricsListen: 0.0.0.0:9090\n").unwrap();
        assert_eq!(c.server.metrics_listen.as_deref(), Some("0.0.0.0:9090"));
        for (text, want) in [
            (
                "server:\n  listen: 0.0.0.0:8443\n  metricsListen: 0.0.0.0:8443\n",
                "g.yaml:3: server.metricsListen (0.0.0.0:8443) is server.listen's address",
            ),
            (
                "server:\n  metricsListen: \"\"\n",
                "g.yaml:2: server.metricsListen must be an address",
            ),
        ] {
            let err = Config::parse("g.yaml", text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn zero_durations_are_refused_at_their_line() {
        let text = "policies:\n  timeout: 1s\nrender: {timeout: 0s}\nserver:\n  listen: :8443\n  timeout: 0s\n";
        let err = Config::parse("g.yaml", text).unwrap_err().to_string();
        assert!(
            err.starts_with("g.yaml:6: server.timeout must be longer than 0s"),
            "{err}"
        );
        let err = Config::parse("g.yaml", "server: {timeout: 1s}\npolicies: {timeout: 0s}\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("g.yaml:2: policies.timeout"), "{err}");
        let err = Config::parse("g.yaml", "repository:\n  refresh: 0s\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("g.yaml:2: repository.refresh"), "{err}");
    }
}
