//! The traceability match: is every field of the object the API server sends an admission
//! webhook explained, and explained by Git where Git has something to say?
//!
//! [`compare`] is a pure function of the Git manifest, the object, the old object (at UPDATE),
//! the configured [`MatchOptions`] (controller stamps, mutation allowances) and a [`Context`]
//! (the CRD of a custom resource). It returns a [`Status`] and two lists of paths in the
//! syntax of [`super::path`] (`spec.template.spec.containers[name=web].image`): `differing`,
//! where the object contradicts Git or an UPDATE drifted, and `unattested`, fields the object
//! carries that nothing explains. Either makes the object [`Status::Modified`]. Finding the
//! manifest (identity, the approved window) and exemptions are decided elsewhere
//! ([`super::verdict`]).
//!
//! # The closed world
//!
//! No list of "dangerous fields" can be complete (a `command`, an `envFrom` of a Secret, an
//! SELinux type, an `externalIPs`, an `aggregationRule`, the `values` of a HelmRelease are each
//! harmless somewhere and an attack elsewhere), so nothing is allowed for not being on one.
//! **Every leaf of the object is explained by exactly one of:**
//!
//! 1. **Git**: every field Git sets must be in the object with the same value, or the path is
//!    `differing`. Values compare after the API server's canonical forms: quantities as
//!    `resource.Quantity` writes them, in quantity fields only ([`super::quantity`],
//!    [`super::schema::is_quantity`]); numbers by value (`2` = `2.0`); file modes by value (the
//!    manifest parser reads `0644` as 420, as kubectl does, so a decimal `256` is 0400 and
//!    nothing else). Lists match by their Kubernetes merge key (containers, env and volumes by
//!    `name`, container ports by `containerPort`+`protocol`, ...) through a hash map, as sets
//!    (tolerations, finalizers), or by position (everything else: Git's list is one value).
//!    A Git `null`, `{}` or `[]` attests nothing beyond "absent or empty" (Go drops empty
//!    `omitempty` maps and lists; a volume's `emptyDir: {}` is the exception and must be
//!    there), and a Git zero (`false`, `0`, `""`) equals absence except where absence means
//!    something else ([`super::schema::zero_is_absence`]). A Secret's `stringData` is folded
//!    into `data` first, as the API server does.
//! 2. **The API server**: a default it applies to that kind, when the value is exactly the
//!    default in that context ([`super::defaults`]: `protocol: TCP`, `imagePullPolicy:
//!    Always` only for a `:latest` image, a NetworkPolicy's `policyTypes` from its rules, a
//!    Service's allocated cluster IP); for a custom resource, the `default`s of its CRD's
//!    structural schema ([`super::crd`]); server-owned metadata and `status` (`uid`,
//!    `resourceVersion`, `managedFields`, the last-applied annotation, ...:
//!    [`super::schema::server_owned`]).
//! 3. **The GitOps controller's tracking stamps**, on the object's own labels and annotations,
//!    never its control keys ([`super::closed::Stamps`]).
//! 4. **A mutation allowance** (`provenance.mutations`): a path under one is not compared at
//!    all ([`super::closed::Allowance`]).
//!
//! Anything else is **unattested**. At CREATE a label, annotation or ConfigMap/Secret data key
//! Git does not set is listed as `differing` (nothing but a hand writes one); any other
//! unexplained field as `unattested`. A keyed list item, a set item or an atomic list that is
//! not explained is reported once, by its own path, not leaf by leaf.
//!
//! # Changes
//!
//! At UPDATE **every path whose value changes from `oldObject`, removals included, must end at
//! Git's value, or at the exact default where Git does not set it**; otherwise it is drift
//! (`differing`). So a changed default must be the default of the new object's context (a
//! NetworkPolicy with egress rules whose `policyTypes` shrinks to `[Ingress]` is drift); an
//! allocated value may appear but not change; a value a built-in controller writes later
//! (a claim's `volumeName`) is explained only unchanged; a removal of what the API server put
//! there (a storage-protection finalizer) is drift. An unchanged field is explained as at
//! CREATE, or by being the default of the old object's context (the API server does not
//! default a field again once it is set: a NetworkPolicy keeps `[Ingress, Egress]` after Git
//! drops its egress rules).
//!
//! # A Scale
//!
//! A `Scale` (the `scale` subresource, `kubectl scale`, an autoscaler) carries only
//! `spec.replicas` of the object it scales; it is compared with Git's `spec.replicas` (the
//! scaled kind's path, which is also the Scale's), and nothing else of the manifest. Defaults do
//! not apply: a Scale request is always someone's explicit choice; a mutation allowance of
//! `spec.replicas` for the scaled kind (an autoscaler) does.

mod walk;

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

pub use super::closed::{Allowance, Stamps};
use super::value::is_zero;
pub use super::value::same_value;

/// The configured other writers: the GitOps controller's tracking stamps
/// (`provenance.controllerStamps`) and the mutation allowances (`provenance.mutations`).
/// Plain data, built once from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchOptions {
    pub stamps: Stamps,
    pub mutations: Vec<Allowance>,
}

/// The other versions of a manifest in the window, read only when a comparison needs them
/// (an older version is kept compact by the index and parsed when read).
pub trait Others {
    /// Whether `sets` holds for one of them.
    fn any(&self, sets: &mut dyn FnMut(&Value) -> bool) -> bool;
}

/// No other version.
struct NoOthers;

impl Others for NoOthers {
    fn any(&self, _: &mut dyn FnMut(&Value) -> bool) -> bool {
        false
    }
}

impl Default for &dyn Others {
    fn default() -> Self {
        &NoOthers
    }
}

impl std::fmt::Debug for dyn Others + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Others")
    }
}

/// What one comparison may borrow besides the options: the CustomResourceDefinition of a
/// custom resource (its schema's defaults explain fields), when Git holds it; who makes the
/// request; what the admission plugins would pick; the stamps' expected values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub crd: Option<&'a Value>,
    /// Who writes: a tracking stamp may be added or changed by the GitOps controller only.
    pub writer: Writer,
    /// The default classes Git's newest approved commit holds: what the admission plugins
    /// would pick. `None`: nothing is known, and a picked value is unattested.
    pub picks: Option<&'a Picks>,
    /// The same, as the watched cluster holds them (either is a source the plugin reads).
    pub cluster_picks: Option<&'a Picks>,
    /// The values the GitOps controller would stamp this object with, where known.
    pub expected: Option<&'a ExpectedStamps>,
    /// `automountServiceAccountToken` of the Pod's service account as Git holds it (`None`:
    /// Git does not hold it, and automount is on, as the API server's default).
    pub automount: Option<bool>,
    /// The other versions of the manifest in the window: a picked value may vanish at UPDATE
    /// when one of them set it (Git dropped it).
    pub others: &'a dyn Others,
    /// `minReplicas..=maxReplicas` of a HorizontalPodAutoscaler Git's newest approved commit
    /// holds for this object: it explains `spec.replicas` within that range.
    pub replicas: Option<(i64, i64)>,
    /// The container defaults of the LimitRanges Git's newest approved commit holds in the
    /// object's namespace: the LimitRanger admission plugin fills a Pod's containers' limits
    /// and requests from them.
    pub limits: Option<&'a LimitDefaults>,
}

/// What the LimitRanges of a namespace give a container that sets no limit or request
/// (`spec.limits[type=Container]`: `default`, and `defaultRequest`, which the API server
/// fills from `default` where it is not set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitDefaults {
    pub limits: Map<String, Value>,
    pub requests: Map<String, Value>,
}

impl LimitDefaults {
    /// Learns the container defaults of a LimitRange.
    pub fn learn(&mut self, limit_range: &Value) {
        let items = limit_range
            .pointer("/spec/limits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|i| i.get("type").and_then(Value::as_str) == Some("Container"));
        for item in items {
            let default = item.get("default").and_then(Value::as_object);
            for (r, v) in default.into_iter().flatten() {
                self.limits.entry(r.clone()).or_insert(v.clone());
            }
            let request = item
                .get("defaultRequest")
                .and_then(Value::as_object)
                .or(default);
            for (r, v) in request.into_iter().flatten() {
                self.requests.entry(r.clone()).or_insert(v.clone());
            }
        }
    }
}

/// Who makes the request, as far as tracking stamps go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Writer {
    /// Not known (an audit of what the cluster holds, a comparison outside admission): a
    /// stamp is judged by its value.
    #[default]
    Unknown,
    /// The GitOps controller's identity (`provenance.controllers`).
    Controller,
    /// Anyone else: may not add or change a stamp, nor create an object with one whose value
    /// is not known to be the controller's.
    Other,
}

/// What the API server's admission plugins would pick for an object Git does not set it for,
/// from the classes Git's newest approved commit (and the watched cluster) hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picks {
    /// IngressClasses annotated `ingressclass.kubernetes.io/is-default-class: "true"`.
    pub ingress_classes: Vec<String>,
    /// StorageClasses annotated `storageclass.kubernetes.io/is-default-class: "true"` (or
    /// the beta annotation).
    pub storage_classes: Vec<String>,
    /// PriorityClasses with `globalDefault: true`.
    pub global_priority_classes: Vec<String>,
    /// Every PriorityClass's value by name, the system classes included.
    pub priority_values: std::collections::BTreeMap<String, i64>,
}

impl Picks {
    /// The two classes every cluster has.
    pub fn with_system_classes() -> Picks {
        let mut picks = Picks::default();
        picks
            .priority_values
            .insert("system-cluster-critical".into(), 2_000_000_000);
        picks
            .priority_values
            .insert("system-node-critical".into(), 2_000_001_000);
        picks
    }

    /// Learns the default classes and priority values from objects (Git's, or the cluster's).
    pub fn learn<'v>(&mut self, objects: impl IntoIterator<Item = &'v Value>) {
        let is_true = |o: &Value, key: &str| {
            o.pointer("/metadata/annotations")
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        for o in objects {
            let group = o
                .get("apiVersion")
                .and_then(Value::as_str)
                .map(|v| v.rsplit_once('/').map_or("", |(g, _)| g));
            let Some(name) = o.pointer("/metadata/name").and_then(Value::as_str) else {
                continue;
            };
            let push = |list: &mut Vec<String>| {
                if !list.iter().any(|n| n == name) {
                    list.push(name.to_string());
                }
            };
            match (group, o.get("kind").and_then(Value::as_str)) {
                (Some("networking.k8s.io"), Some("IngressClass"))
                    if is_true(o, "ingressclass.kubernetes.io/is-default-class") =>
                {
                    push(&mut self.ingress_classes)
                }
                (Some("storage.k8s.io"), Some("StorageClass"))
                    if is_true(o, "storageclass.kubernetes.io/is-default-class")
                        || is_true(o, "storageclass.beta.kubernetes.io/is-default-class") =>
                {
                    push(&mut self.storage_classes)
                }
                (Some("scheduling.k8s.io"), Some("PriorityClass")) => {
                    if let Some(value) = o.get("value").and_then(Value::as_i64) {
                        self.priority_values.insert(name.to_string(), value);
                    }
                    if o.get("globalDefault") == Some(&Value::Bool(true)) {
                        push(&mut self.global_priority_classes)
                    }
                }
                _ => {}
            }
        }
    }
}

/// The values the GitOps controller writes into its tracking stamps for one object, where Git
/// says them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedStamps {
    /// The Flux Kustomization that applies the object: `kustomize.toolkit.fluxcd.io/name` and
    /// `/namespace`.
    pub flux: Option<(String, String)>,
    /// The Argo CD Application that applies it: `app.kubernetes.io/instance` and the first
    /// part of `argocd.argoproj.io/tracking-id`.
    pub argo_app: Option<String>,
}

/// The verdict of the match. (`untraceable` and `exempt` are decided before a match: no
/// manifest in the window, or an exemption.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every field is explained, and every field Git sets has Git's value.
    Traceable,
    /// Some field differs from Git, drifted in this UPDATE, or is explained by nothing.
    Modified,
}

/// The result of [`compare`], in the shape `input.provenance` gives it to policies
/// (`status`, `differing`, `unattested`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub status: Status,
    /// Paths where the object differs from Git, that this UPDATE changed away from Git and the
    /// defaults, or a label, annotation or data key that Git does not set at CREATE. (Both
    /// lists are sorted.)
    pub differing: Vec<String>,
    /// Paths the object carries that nothing explains: not Git, not an API-server default,
    /// not server-owned, not a tracking stamp, not a mutation allowance.
    pub unattested: Vec<String>,
}

impl Outcome {
    /// What is wrong, in words for a denial: the differing and unattested paths, at most
    /// `limit` of each (`and N more`).
    pub fn describe(&self, limit: usize) -> String {
        let list = |paths: &[String]| {
            let mut text = paths
                .iter()
                .take(limit)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if paths.len() > limit {
                text += &format!(" and {} more", paths.len() - limit);
            }
            text
        };
        let mut parts = Vec::new();
        if !self.differing.is_empty() {
            parts.push(format!("differs at {}", list(&self.differing)));
        }
        if !self.unattested.is_empty() {
            parts.push(format!(
                "sets what Git does not (unattested): {}",
                list(&self.unattested)
            ));
        }
        parts.join("; ")
    }
}

/// Compares the manifest `git` with the `object` of an admission request (and `old_object` at
/// UPDATE), with no CRD. See the module documentation for the rules.
pub fn compare(
    git: &Value,
    object: &Value,
    old_object: Option<&Value>,
    options: &MatchOptions,
) -> Outcome {
    compare_in(git, object, old_object, options, Context::default())
}

/// [`compare`] with a [`Context`].
pub fn compare_in(
    git: &Value,
    object: &Value,
    old_object: Option<&Value>,
    options: &MatchOptions,
    context: Context<'_>,
) -> Outcome {
    let object_kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let git_kind = git.get("kind").and_then(Value::as_str).unwrap_or("");
    let scale = object_kind == "Scale"
        && git_kind != "Scale"
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("autoscaling/"));
    let git: Cow<'_, Value> = if scale {
        Cow::Owned(scale_view(git))
    } else {
        normalize(git_kind, git)
    };
    let crd_defaults = match context.crd {
        Some(crd) if !scale => super::crd::defaulted(&git, crd),
        _ => None,
    };
    // Allowances are the scaled kind's for a Scale (its `spec.replicas` is the kind's).
    let allowance_kind = if scale { git_kind } else { object_kind };
    let mutations = options
        .mutations
        .iter()
        .filter(|a| a.applies_to(allowance_kind))
        .flat_map(|a| a.paths.iter())
        .collect();
    let walker = walk::Walker::new(walk::Setup {
        kind: object_kind,
        git: &git,
        object,
        old_object,
        crd_defaults: crd_defaults.as_ref(),
        stamps: &options.stamps,
        mutations,
        defaults: !scale,
        custom: context.crd.is_some() || !builtin_group(object),
        context,
    });
    let (mut differing, mut unattested) = walker.run();
    // Sorted, so that the outcome does not depend on the key order of the manifest.
    differing.sort();
    differing.dedup();
    unattested.sort();
    unattested.dedup();
    Outcome {
        status: if differing.is_empty() && unattested.is_empty() {
            Status::Traceable
        } else {
            Status::Modified
        },
        differing,
        unattested,
    }
}

/// What a `Scale` can say about a manifest: its `spec.replicas`.
fn scale_view(git: &Value) -> Value {
    match git.pointer("/spec/replicas") {
        Some(r) if !r.is_null() => serde_json::json!({"spec": {"replicas": r}}),
        _ => serde_json::json!({}),
    }
}

/// Git's manifest as the API server would store it, where that differs by more than defaults:
/// a Secret's `stringData` is written into `data` (base64, winning over `data`); a Service's
/// empty `clusterIP` and zero node ports mean "allocate one". (A Job's labels copied from its
/// template are a default, [`super::defaults`]: whether they are copied depends on what the
/// submitter added, such as a controller's stamps.) Other kinds are compared as written (borrowed: no copy on the request path).
fn normalize<'a>(kind: &str, git: &'a Value) -> Cow<'a, Value> {
    if kind != "Secret" && kind != "Service" {
        return Cow::Borrowed(git);
    }
    let mut git = git.clone();
    match kind {
        "Secret" => {
            if let Some(obj) = git.as_object_mut()
                && let Some(Value::Object(string_data)) = obj.remove("stringData")
            {
                let data = obj
                    .entry("data")
                    .or_insert_with(|| Value::Object(Map::new()));
                if data.is_null() {
                    *data = Value::Object(Map::new());
                }
                if let Some(data) = data.as_object_mut() {
                    for (k, v) in string_data {
                        if let Some(s) = v.as_str() {
                            data.insert(k, Value::String(base64(s.as_bytes())));
                        }
                    }
                }
            }
        }
        "Service" => {
            if let Some(spec) = git.get_mut("spec").and_then(Value::as_object_mut) {
                if spec.get("clusterIP").is_some_and(|v| v == "") {
                    spec.remove("clusterIP");
                }
                if spec.get("healthCheckNodePort").is_some_and(is_zero) {
                    spec.remove("healthCheckNodePort");
                }
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        if port.get("nodePort").is_some_and(is_zero) {
                            port.remove("nodePort");
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Cow::Owned(git)
}

/// Standard base64 with padding (what the API server writes for `data`).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether an object's API group is one of Kubernetes' own built-in groups (whose objects
/// the API server decodes into Go types, dropping `omitempty` zeros): the core group, the
/// unsuffixed ones, and `*.k8s.io` except the groups of CRD-defined APIs (Gateway API,
/// admin network policies, volume snapshots). Anything else is a custom resource, stored as
/// sent; a CRD-defined group taken for a built-in one only gets the built-in kinds' reading.
fn builtin_group(object: &Value) -> bool {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    matches!(
        group,
        "" | "apps" | "batch" | "policy" | "autoscaling" | "extensions"
    ) || (group.ends_with(".k8s.io")
        && !matches!(
            group,
            "gateway.networking.k8s.io"
                | "policy.networking.k8s.io"
                | "snapshot.storage.k8s.io"
                | "groupsnapshot.storage.k8s.io"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none() -> MatchOptions {
        MatchOptions::default()
    }

    #[test]
    fn base64_matches_the_api_server() {
        assert_eq!(base64(b"s3cr3t"), "czNjcjN0");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn secret_string_data() {
        let git = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-pass", "namespace": "demo"},
            "stringData": {"password": "s3cr3t"}});
        let obj = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-pass", "namespace": "demo", "uid": "x"},
            "data": {"password": "czNjcjN0"}, "type": "Opaque"});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.status, Status::Traceable, "{out:?}");
        assert!(out.unattested.is_empty(), "{out:?}");
        let tampered = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-pass", "namespace": "demo"},
            "data": {"password": "czNjcjN0", "extra": "eA=="}, "type": "Opaque"});
        let out = compare(&git, &tampered, None, &none());
        assert_eq!(out.differing, vec!["data.extra"]);
    }

    #[test]
    fn zero_values_and_empties() {
        let git = json!({"kind": "Pod", "spec": {"hostNetwork": false, "containers": [
            {"name": "a", "image": "x:1", "args": [], "env": []}],
            "automountServiceAccountToken": false}});
        let obj = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x:1"}],
            "automountServiceAccountToken": false}});
        assert_eq!(compare(&git, &obj, None, &none()).status, Status::Traceable);
        let obj = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.differing, vec!["spec.automountServiceAccountToken"]);
    }

    #[test]
    fn a_zero_that_means_something_must_stay() {
        // A PodDisruptionBudget without maxUnavailable lets every eviction through.
        let pdb = |spec: Value| {
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                   "metadata": {"name": "web", "namespace": "demo"}, "spec": spec})
        };
        let git = pdb(json!({"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}}));
        let removed = pdb(json!({"selector": {"matchLabels": {"app": "web"}}}));
        assert_eq!(compare(&git, &git, None, &none()).status, Status::Traceable);
        let out = compare(&git, &removed, None, &none());
        assert_eq!(out.differing, vec!["spec.maxUnavailable"], "at CREATE");
        let out = compare(&git, &removed, Some(&git), &none());
        assert_eq!(out.differing, vec!["spec.maxUnavailable"], "at UPDATE");
        // A pod template without enableServiceLinks gets service links in every Pod.
        let deployment = |pod: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "demo"},
                   "spec": {"template": {"spec": pod}}})
        };
        let git = deployment(json!({"enableServiceLinks": false, "hostNetwork": false}));
        let out = compare(&git, &deployment(json!({})), None, &none());
        assert_eq!(
            out.differing,
            vec!["spec.template.spec.enableServiceLinks"],
            "hostNetwork: false comes back absent (a plain field), enableServiceLinks does not"
        );
    }

    #[test]
    fn a_zero_the_old_object_held_is_removed_by_an_update() {
        // A field this crate knows nothing of: the old object shows the API server keeps it.
        let job = |spec: Value| {
            json!({"apiVersion": "batch/v1", "kind": "CronJob",
                   "metadata": {"name": "n", "namespace": "demo"}, "spec": spec})
        };
        let git = job(json!({"schedule": "@daily", "suspend": false, "concurrencyWeight": 0}));
        let kept = job(json!({"schedule": "@daily", "suspend": false, "concurrencyWeight": 0}));
        let dropped = job(json!({"schedule": "@daily", "suspend": false}));
        let out = compare(&git, &dropped, Some(&kept), &none());
        assert_eq!(out.differing, vec!["spec.concurrencyWeight"]);
        // Where the old object lacked it too, it is a plain field the server drops.
        let out = compare(&git, &dropped, Some(&dropped), &none());
        assert_eq!(out.status, Status::Traceable, "{out:?}");
        // A plain field brought back to Git's zero from a drift is Git's value again.
        let git = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"hostNetwork": false}});
        let drifted = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                             "spec": {"hostNetwork": true}});
        let back = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                          "spec": {}});
        let out = compare(&git, &back, Some(&drifted), &none());
        assert_eq!(out.status, Status::Traceable, "{out:?}");
    }

    #[test]
    fn a_custom_resource_keeps_its_zeros() {
        let widget = |spec: Value| {
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                   "metadata": {"name": "w", "namespace": "demo"}, "spec": spec})
        };
        let git = widget(json!({"enabled": false, "size": 0, "note": ""}));
        assert_eq!(compare(&git, &git, None, &none()).status, Status::Traceable);
        let out = compare(&git, &widget(json!({"size": 0, "note": ""})), None, &none());
        assert_eq!(out.differing, vec!["spec.enabled"]);
        assert!(builtin_group(
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1"})
        ));
        assert!(builtin_group(&json!({"apiVersion": "v1"})));
        assert!(!builtin_group(
            &json!({"apiVersion": "gateway.networking.k8s.io/v1"})
        ));
        assert!(!builtin_group(
            &json!({"apiVersion": "cluster.x-k8s.io/v1beta1"})
        ));
    }

    #[test]
    fn empty_dir_must_stay() {
        let git = json!({"kind": "Pod", "spec": {"volumes": [{"name": "c", "emptyDir": {}}],
            "nodeSelector": {}}});
        let obj = json!({"kind": "Pod", "spec": {"volumes": [{"name": "c", "emptyDir": {}}]}});
        assert_eq!(compare(&git, &obj, None, &none()).status, Status::Traceable);
        let obj = json!({"kind": "Pod", "spec": {"volumes": [
            {"name": "c", "secret": {"secretName": "s"}}]}});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.differing, vec!["spec.volumes[name=c].emptyDir"]);
    }

    #[test]
    fn file_modes_compare_by_value() {
        // The manifest parser reads `0644` as 420 (kubectl's YAML 1.1); a decimal 256 is 0400
        // and is not also read as octal 0256 (174).
        let pod = |mode: u64| {
            json!({"kind": "Pod", "spec": {"volumes": [
                {"name": "c", "secret": {"secretName": "c", "defaultMode": mode}}]}})
        };
        assert_eq!(
            compare(&pod(420), &pod(420), None, &none()).status,
            Status::Traceable
        );
        let out = compare(&pod(256), &pod(174), None, &none());
        assert_eq!(
            out.differing,
            vec!["spec.volumes[name=c].secret.defaultMode"]
        );
        let out = compare(&pod(644), &pod(420), None, &none());
        assert_eq!(out.status, Status::Modified);
    }

    #[test]
    fn lists() {
        // Atomic lists: Git owns the whole value.
        let git = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "x:1", "args": ["1", "2"]}]}});
        let obj = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "x:1", "args": ["1", "2", "3"]}]}});
        assert_eq!(
            compare(&git, &obj, None, &none()).differing,
            vec!["spec.containers[name=a].args[2]"]
        );
        // Keyed lists: order of containers does not matter, order of env does.
        let git = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"},
                                                  {"name": "B", "value": "$(A)"}]},
            {"name": "b", "image": "y:1"}]}});
        let obj = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "b", "image": "y:1"},
            {"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"},
                                                  {"name": "B", "value": "$(A)"}]}]}});
        assert_eq!(compare(&git, &obj, None, &none()).status, Status::Traceable);
        let obj = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "B", "value": "$(A)"},
                                                  {"name": "A", "value": "1"}]},
            {"name": "b", "image": "y:1"}]}});
        assert_eq!(
            compare(&git, &obj, None, &none()).differing,
            vec!["spec.containers[name=a].env"]
        );
        // A missing keyed item.
        let obj = json!({"kind": "Pod", "spec": {"containers": [{"name": "b", "image": "y:1"}]}});
        assert_eq!(
            compare(&git, &obj, None, &none()).differing,
            vec!["spec.containers[name=a]"]
        );
    }

    #[test]
    fn anything_unexplained_is_unattested() {
        let git = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let obj = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x:1",
            "command": ["sh", "-c", "id"],
            "securityContext": {"seLinuxOptions": {"type": "spc_t"}}}],
            "initContainers": [{"name": "miner", "image": "evil:1"}]}});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.status, Status::Modified);
        assert!(out.differing.is_empty(), "{out:?}");
        assert_eq!(
            out.unattested,
            vec![
                "spec.containers[name=a].command",
                "spec.containers[name=a].securityContext.seLinuxOptions.type",
                "spec.initContainers[name=miner]",
            ]
        );
        // The same change at UPDATE is drift.
        let out = compare(
            &git,
            &obj,
            Some(&json!({"kind": "Pod", "spec": git["spec"]})),
            &none(),
        );
        assert_eq!(out.differing.len(), 3, "{out:?}");
        assert!(out.unattested.is_empty(), "{out:?}");
        // Unchanged at UPDATE, still unattested.
        let out = compare(&git, &obj, Some(&obj), &none());
        assert_eq!(out.unattested.len(), 3, "{out:?}");
        assert_eq!(out.status, Status::Modified);
    }

    #[test]
    fn mutation_allowances_explain_their_paths() {
        let git = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let obj = json!({"kind": "Pod", "metadata": {"annotations": {
            "sidecar.istio.io/status": "{}"}},
            "spec": {"containers": [{"name": "a", "image": "x:1"},
                                    {"name": "istio-proxy", "image": "istio/proxyv2:1.22"}]}});
        let config = crate::config::Provenance {
            mutations: vec![crate::config::Mutation {
                kinds: vec!["Pod".into()],
                paths: vec![
                    "spec.containers[name=istio-proxy]".into(),
                    r#"metadata.annotations["sidecar.istio.io/*"]"#.into(),
                ],
                by: Some("istio-sidecar-injector".into()),
            }],
            ..Default::default()
        };
        let options = MatchOptions::from(&config);
        let out = compare(&git, &obj, None, &options);
        assert_eq!(out.status, Status::Traceable, "{out:?}");
        // Only for the kinds named.
        let mut deployment = obj.clone();
        deployment["kind"] = json!("Deployment");
        let mut git_d = git.clone();
        git_d["kind"] = json!("Deployment");
        let out = compare(&git_d, &deployment, None, &options);
        assert_eq!(out.status, Status::Modified);
    }

    #[test]
    fn an_autoscaler_allowance_covers_replicas_and_its_scale_requests() {
        let git = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"selector": {}}});
        let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {}}});
        let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "web", "uid": "u"}, "spec": {"replicas": 5},
            "status": {"replicas": 3}});
        let old_scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "web"}, "spec": {"replicas": 3}});
        assert_eq!(
            compare(&git, &old, Some(&old), &none()).unattested,
            vec!["spec.replicas"]
        );
        assert_eq!(
            compare(&git, &scale, Some(&old_scale), &none()).differing,
            vec!["spec.replicas"]
        );
        let config = crate::config::Provenance {
            mutations: vec![crate::config::Mutation {
                kinds: vec!["Deployment".into()],
                paths: vec!["spec.replicas".into()],
                by: Some("horizontal-pod-autoscaler".into()),
            }],
            ..Default::default()
        };
        let options = MatchOptions::from(&config);
        assert_eq!(
            compare(&git, &old, Some(&old), &options).status,
            Status::Traceable
        );
        assert_eq!(
            compare(&git, &scale, Some(&old_scale), &options).status,
            Status::Traceable
        );
    }

    #[test]
    fn removing_what_git_does_not_set_is_allowed() {
        let git = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let old = json!({"kind": "ConfigMap", "metadata": {"name": "c",
            "labels": {"hand": "x"}}, "data": {"a": "1"}});
        let obj = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let out = compare(&git, &obj, Some(&old), &none());
        assert_eq!(out.status, Status::Traceable, "{out:?}");
        // An unchanged hand label at UPDATE is unattested (not this request's drift, but not
        // explained either).
        let out = compare(&git, &old, Some(&old), &none());
        assert_eq!(out.status, Status::Modified, "{out:?}");
        assert_eq!(out.unattested, vec!["metadata.labels.hand"]);
        assert!(out.differing.is_empty());
        // At CREATE it is drift.
        let out = compare(&git, &old, None, &none());
        assert_eq!(out.differing, vec!["metadata.labels.hand"]);
    }

    #[test]
    fn exact_default_restored_when_git_drops_a_field() {
        let git = json!({"kind": "Deployment", "spec": {"selector": {}}});
        let old = json!({"kind": "Deployment", "spec": {"replicas": 3, "selector": {}}});
        let obj = json!({"kind": "Deployment", "spec": {"replicas": 1, "selector": {}}});
        assert_eq!(
            compare(&git, &obj, Some(&old), &none()).status,
            Status::Traceable
        );
        let obj = json!({"kind": "Deployment", "spec": {"replicas": 4, "selector": {}}});
        assert_eq!(
            compare(&git, &obj, Some(&old), &none()).differing,
            vec!["spec.replicas"]
        );
    }

    #[test]
    fn job_defaults_follow_their_siblings() {
        let git = json!({"kind": "Job", "metadata": {"name": "j"}, "spec": {
            "podFailurePolicy": {"rules": []}, "backoffLimitPerIndex": 1,
            "template": {"spec": {"restartPolicy": "Never"}}}});
        let obj = json!({"kind": "Job", "metadata": {"name": "j", "uid": "u"}, "spec": {
            "podFailurePolicy": {"rules": []}, "backoffLimitPerIndex": 1,
            "backoffLimit": 2147483647, "podReplacementPolicy": "Failed",
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
            "template": {"metadata": {"labels": {"job-name": "j", "controller-uid": "u"}},
                         "spec": {"restartPolicy": "Never"}}}});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.status, Status::Traceable, "{out:?}");
        assert!(out.unattested.is_empty(), "{out:?}");
        let mut other = obj.clone();
        other["spec"]["podReplacementPolicy"] = json!("TerminatingOrFailed");
        other["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] = json!("v");
        let out = compare(&git, &other, None, &none());
        assert_eq!(out.status, Status::Modified);
        assert_eq!(
            out.unattested,
            vec![
                "spec.podReplacementPolicy",
                "spec.selector.matchLabels[\"batch.kubernetes.io/controller-uid\"]"
            ]
        );
    }

    #[test]
    fn outcome_serializes_for_policies() {
        let out = Outcome {
            status: Status::Modified,
            differing: vec!["spec.replicas".into()],
            unattested: vec!["spec.template.spec.containers[name=a].command".into()],
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({"status": "modified", "differing": ["spec.replicas"],
                   "unattested": ["spec.template.spec.containers[name=a].command"]})
        );
        assert_eq!(
            out.describe(10),
            "differs at spec.replicas; sets what Git does not (unattested): \
             spec.template.spec.containers[name=a].command"
        );
    }
}
