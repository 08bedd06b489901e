//! The watch caches: one task per watched kind lists it, then watches it (see the module doc
//! of [`super`] for the protocol), and is the only writer of what it publishes; decisions
//! read [`View`]s, snapshots swapped in atomically.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures::{FutureExt, StreamExt};
use kube::api::WatchParams;
use kube::core::WatchEvent;
use regorus::Value as Rego;
use serde::Serialize;
use serde_json::Value;

use super::ClusterError;
use super::KindRef;
use super::client::{Connection, Resolved};
use super::inventory::{Inventory, Slot};
use super::sync::Needs;
use crate::input::json_to_rego;
use crate::policy::matcher::{NamespaceLabels, glob_match, labels_of};
use crate::provenance::matching::Picks;

/// Namespace name → its labels.
pub type NamespaceTable = HashMap<String, BTreeMap<String, String>>;

/// What the cluster's CRDs say of a custom kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Crd {
    pub group: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub versions: Vec<CrdVersion>,
}

/// One version of a CRD, with its structural schema (`openAPIV3Schema`).
#[derive(Debug, Clone, PartialEq)]
pub struct CrdVersion {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    pub schema: Option<Arc<Value>>,
}

/// The cluster's CRDs by (group, kind): the scope and the schema defaults of custom kinds
/// whose CRD is not in Git.
#[derive(Debug, Clone, Default)]
pub struct Crds(HashMap<(String, String), Crd>);

impl Crds {
    pub fn get(&self, group: &str, kind: &str) -> Option<&Crd> {
        self.0.get(&(group.to_string(), kind.to_string()))
    }

    /// Whether a custom kind is namespaced (`None`: no CRD defines it).
    pub fn namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        self.get(group, kind).map(|c| c.namespaced)
    }

    /// The structural schema of one version of a custom kind.
    pub fn schema(&self, group: &str, version: &str, kind: &str) -> Option<Arc<Value>> {
        self.get(group, kind)?
            .versions
            .iter()
            .find(|v| v.name == version)?
            .schema
            .clone()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The CRD of a custom kind as a manifest holding what provenance reads of it (its
    /// versions' structural schemas), for a custom resource whose CRD Git does not hold.
    pub fn manifest(&self, group: &str, kind: &str) -> Option<Arc<Value>> {
        let crd = self.get(group, kind)?;
        let versions: Vec<Value> = crd
            .versions
            .iter()
            .map(|v| {
                let mut version = serde_json::json!({"name": v.name, "served": v.served});
                if let Some(schema) = &v.schema {
                    version["schema"] = serde_json::json!({"openAPIV3Schema": &**schema});
                }
                version
            })
            .collect();
        Some(Arc::new(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{}.{}", crd.plural, crd.group)},
            "spec": {
                "group": crd.group,
                "names": {"kind": crd.kind, "plural": crd.plural},
                "scope": if crd.namespaced { "Namespaced" } else { "Cluster" },
                "versions": versions,
            }
        })))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The CRD an object defines, if it is a valid one.
    pub fn parse(obj: &Value) -> Option<Crd> {
        let spec = obj.get("spec")?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        Some(Crd {
            group: text(spec.get("group"))?,
            kind: text(spec.pointer("/names/kind"))?,
            plural: text(spec.pointer("/names/plural"))?,
            namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
            versions: spec
                .get("versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| {
                    Some(CrdVersion {
                        name: text(v.get("name"))?,
                        served: v.get("served").and_then(Value::as_bool).unwrap_or(false),
                        storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
                        schema: v.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new),
                    })
                })
                .collect(),
        })
    }
}

/// What a decision reads of the cluster: namespace labels and `data.inventory`, as they were
/// at one moment. Cheap to take (three pointer loads), never blocks.
#[derive(Clone)]
pub struct View {
    namespaces: Arc<NamespaceTable>,
    data: Option<Arc<Rego>>,
    available: bool,
}

impl View {
    /// No cluster and none needed: namespaces are unknown (a `namespaceSelector` sees a
    /// namespace without labels, as before the cluster was read).
    pub fn none() -> View {
        View {
            namespaces: Arc::default(),
            data: None,
            available: true,
        }
    }

    /// `cluster.enabled: false`: a `namespaceSelector` matches nothing.
    pub fn disabled() -> View {
        View {
            available: false,
            ..View::none()
        }
    }

    /// A view of given namespaces and inventory (what `audit` builds from one list).
    pub fn of(namespaces: NamespaceTable, inventory: Option<&Inventory>) -> View {
        View {
            namespaces: Arc::new(namespaces),
            data: inventory.map(|i| Arc::new(i.data())),
            available: true,
        }
    }

    /// `{"inventory": ...}`, when kinds are synced.
    pub fn data(&self) -> Option<&Rego> {
        self.data.as_deref()
    }

    pub fn namespaces(&self) -> &NamespaceTable {
        &self.namespaces
    }
}

impl NamespaceLabels for View {
    fn labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.get(name).cloned()
    }

    fn available(&self) -> bool {
        self.available
    }
}

/// The state of one cache, for `/readyz`, `/metrics` and logs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindStatus {
    /// `networking.k8s.io/v1 Ingress`.
    pub kind: String,
    /// Why it is watched: `namespaces`, `inventory`, `crds`.
    pub roles: Vec<&'static str>,
    /// A complete list has been read at least once.
    pub synced: bool,
    pub objects: usize,
    /// Complete lists read (the first, and each one a `410 Gone` forced).
    pub lists: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Something to know that is no error (the kind is not served).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When the last complete list was read.
    #[serde(skip)]
    pub listed_at: Option<Instant>,
    /// When the watch was lost, while it is (`None`: watching).
    #[serde(skip)]
    pub lost_since: Option<Instant>,
    #[serde(skip)]
    created: Instant,
}

impl KindStatus {
    /// How long the cache may have missed changes: zero while its watch runs; since the
    /// watch was lost (or since the start, before the first list) otherwise.
    pub fn age(&self) -> Duration {
        match (self.synced, self.lost_since) {
            (false, _) => self.created.elapsed(),
            (true, Some(since)) => since.elapsed(),
            (true, None) => Duration::ZERO,
        }
    }
}

/// What the caches publish.
struct Shared {
    namespaces: ArcSwap<NamespaceTable>,
    inventory: ArcSwap<Rego>,
    crds: ArcSwap<Crds>,
    /// What the admission plugins pick: the default IngressClass and StorageClass, the
    /// global default PriorityClass and every class's value, merged from the three class
    /// caches' parts (`parts`, by kind, written under its lock).
    picks: ArcSwap<Picks>,
    parts: Mutex<HashMap<String, Picks>>,
    /// The inventory the synced kinds' writers change in turn (never read on the request
    /// path: decisions read the published snapshot).
    writer: Mutex<Inventory>,
    /// Caches that have read their first complete list (read on the request path: no lock).
    synced: AtomicUsize,
}

/// The running caches of one cluster. Dropping it stops the watches.
pub struct Watch {
    shared: Arc<Shared>,
    statuses: Vec<Arc<Mutex<KindStatus>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    has_inventory: bool,
    pub connection: Connection,
}

impl Drop for Watch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Why a kind is watched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Roles {
    namespaces: bool,
    inventory: bool,
    crds: bool,
    /// IngressClasses, StorageClasses and PriorityClasses: what the admission plugins pick.
    classes: bool,
}

impl Roles {
    fn names(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.namespaces {
            out.push("namespaces");
        }
        if self.inventory {
            out.push("inventory");
        }
        if self.crds {
            out.push("crds");
        }
        if self.classes {
            out.push("classes");
        }
        out
    }
}

/// A kind to watch: known, or to find with discovery.
enum Target {
    Known(Resolved),
    Discover(KindRef),
}

impl Target {
    fn same(&self, group: &str, version: &str, kind: &str) -> bool {
        match self {
            Target::Known(r) => r.group == group && r.version == version && r.kind == kind,
            Target::Discover(k) => k.group == group && k.version == version && k.kind == kind,
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Known(r) => r.describe(),
            Target::Discover(k) => super::sync::describe_kind(k),
        }
    }
}

impl Watch {
    /// Starts the caches `needs` asks for (Namespaces for `namespaceSelector`, the synced
    /// kinds), and CRDs when `crds`. Returns at once; [`Watch::ready`] says when every cache
    /// has its first list.
    pub fn start(connection: Connection, needs: &Needs, crds: bool) -> Watch {
        let mut targets: Vec<(Target, Roles)> = Vec::new();
        let mut add = |target: Target, roles: Roles| {
            let (g, v, k) = match &target {
                Target::Known(r) => (r.group.clone(), r.version.clone(), r.kind.clone()),
                Target::Discover(k) => (k.group.clone(), k.version.clone(), k.kind.clone()),
            };
            match targets.iter_mut().find(|(t, _)| t.same(&g, &v, &k)) {
                Some((_, r)) => {
                    r.namespaces |= roles.namespaces;
                    r.inventory |= roles.inventory;
                    r.crds |= roles.crds;
                    r.classes |= roles.classes;
                }
                None => targets.push((target, roles)),
            }
        };
        if !needs.namespace_selectors.is_empty() {
            add(
                Target::Known(Resolved::namespaces()),
                Roles {
                    namespaces: true,
                    ..Roles::default()
                },
            );
        }
        if crds {
            add(
                Target::Known(Resolved::crds()),
                Roles {
                    crds: true,
                    ..Roles::default()
                },
            );
            // The classes the admission plugins pick from (found with discovery: a cluster
            // that does not serve one has none of it).
            for (group, version, kind) in CLASSES {
                add(
                    Target::Discover(KindRef {
                        group: group.to_string(),
                        version: version.to_string(),
                        kind: kind.to_string(),
                        resource: None,
                    }),
                    Roles {
                        classes: true,
                        ..Roles::default()
                    },
                );
            }
        }
        for synced in &needs.sync {
            let k = &synced.kind;
            let target = if Resolved::namespaces().kind_ref().same_kind(k) {
                Target::Known(Resolved::namespaces())
            } else if Resolved::crds().kind_ref().same_kind(k) {
                Target::Known(Resolved::crds())
            } else {
                Target::Discover(k.clone())
            };
            add(
                target,
                Roles {
                    inventory: true,
                    ..Roles::default()
                },
            );
        }
        let inventory = Inventory::default();
        let shared = Arc::new(Shared {
            namespaces: ArcSwap::default(),
            inventory: ArcSwap::from_pointee(inventory.data()),
            crds: ArcSwap::default(),
            picks: ArcSwap::from_pointee(Picks::with_system_classes()),
            parts: Mutex::new(HashMap::new()),
            writer: Mutex::new(inventory),
            synced: AtomicUsize::new(0),
        });
        let has_inventory = targets.iter().any(|(_, r)| r.inventory);
        let mut statuses = Vec::new();
        let mut tasks = Vec::new();
        for (target, roles) in targets {
            let status = Arc::new(Mutex::new(KindStatus {
                kind: target.describe(),
                roles: roles.names(),
                synced: false,
                objects: 0,
                lists: 0,
                errors: 0,
                last_error: None,
                note: None,
                listed_at: None,
                lost_since: None,
                created: Instant::now(),
            }));
            statuses.push(status.clone());
            let writer = Writer {
                shared: shared.clone(),
                status,
                roles,
                excluded: if roles.inventory {
                    needs.sync_excluded_namespaces.clone()
                } else {
                    Vec::new()
                },
                kind: None,
                keys: HashSet::new(),
                namespaces: NamespaceTable::new(),
                crds: Crds::default(),
                classes: BTreeMap::new(),
                ops: Vec::new(),
                dirty: false,
            };
            tasks.push(tokio::spawn(run(connection.clone(), target, writer)));
        }
        Watch {
            shared,
            statuses,
            tasks,
            has_inventory,
            connection,
        }
    }

    /// What a decision reads now.
    pub fn view(&self) -> View {
        View {
            namespaces: self.shared.namespaces.load_full(),
            data: self
                .has_inventory
                .then(|| self.shared.inventory.load_full()),
            available: true,
        }
    }

    /// Whether every cache has read its first complete list (cheap: for the request path).
    pub fn is_synced(&self) -> bool {
        self.shared.synced.load(Ordering::Acquire) >= self.statuses.len()
    }

    /// The CRDs known now.
    pub fn crds(&self) -> Arc<Crds> {
        self.shared.crds.load_full()
    }

    /// What the admission plugins pick in this cluster, as its class caches hold it now.
    pub fn picks(&self) -> Arc<Picks> {
        self.shared.picks.load_full()
    }

    /// The state of each cache.
    pub fn statuses(&self) -> Vec<KindStatus> {
        self.statuses
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect()
    }

    /// `Ok` once every cache has read its first complete list (a cache that lost its watch
    /// later stays ready, deciding on what it knows, and reports its age); otherwise why not.
    pub fn ready(&self) -> Result<(), String> {
        let waiting: Vec<String> = self
            .statuses()
            .into_iter()
            .filter(|s| !s.synced)
            .map(|s| match s.last_error {
                Some(e) => format!("{}: {e}", s.kind),
                None => format!("{}: the first list is not read yet", s.kind),
            })
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the cluster caches are not synced: {}",
                waiting.join("; ")
            ))
        }
    }

    /// Sets the gauges of the caches (at each scrape: between events nothing else moves them).
    pub fn record_metrics(&self) {
        for s in self.statuses() {
            let kind = s.kind.clone();
            metrics::gauge!("gitgate_cluster_cache_objects", "kind" => kind.clone())
                .set(s.objects as f64);
            metrics::gauge!("gitgate_cluster_cache_age_seconds", "kind" => kind.clone())
                .set(s.age().as_secs_f64());
            metrics::gauge!("gitgate_cluster_cache_synced", "kind" => kind).set(if s.synced {
                1.0
            } else {
                0.0
            });
        }
    }
}

/// A change waiting to go into the shared inventory.
enum Op {
    Clear(String, String),
    Put(Slot, Rego),
    Remove(Slot),
}

/// The one writer of a kind's part of the caches.
struct Writer {
    shared: Arc<Shared>,
    status: Arc<Mutex<KindStatus>>,
    roles: Roles,
    /// Namespaces whose objects are not synced into the inventory (globs).
    excluded: Vec<String>,
    kind: Option<Resolved>,
    /// (namespace, name) of the objects known.
    keys: HashSet<(Option<String>, String)>,
    namespaces: NamespaceTable,
    crds: Crds,
    /// The class objects of a class cache, by name (only what [`Picks::learn`] reads).
    classes: BTreeMap<String, Value>,
    ops: Vec<Op>,
    dirty: bool,
}

/// A complete list being read, put in place only once it is complete.
#[derive(Default)]
struct Staged {
    keys: HashSet<(Option<String>, String)>,
    namespaces: NamespaceTable,
    crds: Crds,
    classes: BTreeMap<String, Value>,
    objects: Vec<(Slot, Rego)>,
}

/// The class kinds the admission plugins pick from.
const CLASSES: [(&str, &str, &str); 3] = [
    ("networking.k8s.io", "v1", "IngressClass"),
    ("storage.k8s.io", "v1", "StorageClass"),
    ("scheduling.k8s.io", "v1", "PriorityClass"),
];

/// What [`Picks::learn`] reads of a class object: its kind, name, annotations, `value` and
/// `globalDefault`.
fn slim_class(obj: &Value) -> Value {
    serde_json::json!({
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {"name": obj.pointer("/metadata/name"),
            "annotations": obj.pointer("/metadata/annotations")},
        "value": obj.get("value"),
        "globalDefault": obj.get("globalDefault"),
    })
}

fn key_of(obj: &Value) -> Option<(Option<String>, String)> {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str)?;
    let namespace = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    Some((namespace.map(str::to_string), name.to_string()))
}

/// The object as the inventory keeps it: without `managedFields` (often half of an object,
/// and what no policy reads), so that the cache of a large cluster stays small.
fn for_inventory(obj: &mut Value) -> Option<(Slot, Rego)> {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    Some((Slot::of(obj)?, json_to_rego(obj)))
}

impl Writer {
    fn lock_status(&self) -> std::sync::MutexGuard<'_, KindStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn synced_namespace(&self, namespace: Option<&str>) -> bool {
        namespace.is_none_or(|ns| !self.excluded.iter().any(|p| glob_match(p, ns)))
    }

    fn stage(&self, staged: &mut Staged, mut obj: Value) {
        let Some(key) = key_of(&obj) else { return };
        if self.roles.namespaces {
            staged
                .namespaces
                .insert(key.1.clone(), labels_of(Some(&obj)));
        }
        if self.roles.classes {
            staged.classes.insert(key.1.clone(), slim_class(&obj));
        }
        if self.roles.crds
            && let Some(crd) = Crds::parse(&obj)
        {
            staged
                .crds
                .0
                .insert((crd.group.clone(), crd.kind.clone()), crd);
        }
        if self.roles.inventory
            && self.synced_namespace(key.0.as_deref())
            && let Some(entry) = for_inventory(&mut obj)
        {
            staged.objects.push(entry);
        }
        staged.keys.insert(key);
    }

    /// Puts a complete list in place of what the cache held.
    fn commit(&mut self, staged: Staged) {
        self.keys = staged.keys;
        self.namespaces = staged.namespaces;
        self.crds = staged.crds;
        self.classes = staged.classes;
        if self.roles.inventory
            && let Some(kind) = &self.kind
        {
            self.ops.clear();
            self.ops
                .push(Op::Clear(kind.api_version(), kind.kind.clone()));
            self.ops
                .extend(staged.objects.into_iter().map(|(s, v)| Op::Put(s, v)));
        }
        self.dirty = true;
        self.publish();
        let mut status = self.lock_status();
        if !status.synced {
            self.shared.synced.fetch_add(1, Ordering::Release);
        }
        status.synced = true;
        status.note = None;
        status.lists += 1;
        status.listed_at = Some(Instant::now());
        status.lost_since = None;
    }

    fn apply(&mut self, mut obj: Value) {
        let Some(key) = key_of(&obj) else { return };
        if self.roles.namespaces {
            self.namespaces.insert(key.1.clone(), labels_of(Some(&obj)));
        }
        if self.roles.crds
            && let Some(crd) = Crds::parse(&obj)
        {
            self.crds
                .0
                .insert((crd.group.clone(), crd.kind.clone()), crd);
        }
        if self.roles.classes {
            self.classes.insert(key.1.clone(), slim_class(&obj));
        }
        if self.roles.inventory
            && self.synced_namespace(key.0.as_deref())
            && let Some((slot, value)) = for_inventory(&mut obj)
        {
            self.ops.push(Op::Put(slot, value));
        }
        self.keys.insert(key);
        self.dirty = true;
    }

    fn delete(&mut self, obj: &Value) {
        let Some(key) = key_of(obj) else { return };
        if self.roles.namespaces {
            self.namespaces.remove(&key.1);
        }
        if self.roles.crds
            && let Some(crd) = Crds::parse(obj)
        {
            self.crds.0.remove(&(crd.group, crd.kind));
        }
        if self.roles.classes {
            self.classes.remove(&key.1);
        }
        if self.roles.inventory
            && let Some(slot) = Slot::of(obj)
        {
            self.ops.push(Op::Remove(slot));
        }
        self.keys.remove(&key);
        self.dirty = true;
    }

    /// Publishes what changed since the last time: the snapshots decisions read.
    fn publish(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        if self.roles.namespaces {
            self.shared
                .namespaces
                .store(Arc::new(self.namespaces.clone()));
        }
        if self.roles.crds {
            self.shared.crds.store(Arc::new(self.crds.clone()));
        }
        if self.roles.classes
            && let Some(kind) = &self.kind
        {
            let mut part = Picks::default();
            part.learn(self.classes.values());
            let mut parts = self
                .shared
                .parts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            parts.insert(kind.kind.clone(), part);
            let mut merged = Picks::with_system_classes();
            for part in parts.values() {
                merged
                    .ingress_classes
                    .extend(part.ingress_classes.iter().cloned());
                merged
                    .storage_classes
                    .extend(part.storage_classes.iter().cloned());
                merged
                    .global_priority_classes
                    .extend(part.global_priority_classes.iter().cloned());
                merged
                    .priority_values
                    .extend(part.priority_values.iter().map(|(k, v)| (k.clone(), *v)));
            }
            // Stored under the lock: a later change is never overwritten by an earlier one.
            self.shared.picks.store(Arc::new(merged));
        }
        if self.roles.inventory && !self.ops.is_empty() {
            let mut inventory = self
                .shared
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for op in self.ops.drain(..) {
                match op {
                    Op::Clear(gv, kind) => inventory.clear_kind(&gv, &kind),
                    Op::Put(slot, value) => inventory.insert_at(&slot, value),
                    Op::Remove(slot) => {
                        inventory.remove(&slot);
                    }
                }
            }
            // Stored under the lock, so that a later change is never overwritten by an
            // earlier snapshot of another writer.
            self.shared.inventory.store(Arc::new(inventory.data()));
        }
        self.lock_status().objects = self.keys.len();
    }

    /// The cluster does not serve the kind: the cache is complete with no object.
    fn not_served(&self, why: &str) {
        let mut status = self.lock_status();
        if !status.synced {
            self.shared.synced.fetch_add(1, Ordering::Release);
            tracing::info!(kind = %status.kind, "{why}: data.inventory holds none of it");
        }
        status.synced = true;
        status.note = Some(why.to_string());
        status.lost_since = None;
    }

    /// The watch runs again: the cache is current.
    fn watching(&self) {
        self.lock_status().lost_since = None;
    }

    /// A failure: counted, kept as the last error, and the cache ages from now on (when it
    /// did not already).
    fn failed(&self, error: &str) {
        let mut status = self.lock_status();
        status.errors += 1;
        status.last_error = Some(error.to_string());
        status.lost_since.get_or_insert_with(Instant::now);
        metrics::counter!("gitgate_cluster_watch_errors_total", "kind" => status.kind.clone())
            .increment(1);
        tracing::warn!(kind = %status.kind, error = %error, "a cluster cache lost its watch; deciding on what it last knew");
    }
}

/// Exponential backoff with jitter: 0.5 s doubling to 30 s.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const MIN: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(30);

    fn new() -> Backoff {
        Backoff { next: Self::MIN }
    }

    fn reset(&mut self) {
        self.next = Self::MIN;
    }

    fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        // ±20%, so that many replicas do not retry in step.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let factor = 0.8 + f64::from(nanos % 1000) / 2500.0;
        base.mul_f64(factor)
    }
}

/// How long a watch may send nothing before it is taken for lost: its own timeout (the API
/// server ends it then) and a margin.
fn idle_limit(watch_timeout: Duration) -> Duration {
    watch_timeout + (watch_timeout / 2).clamp(Duration::from_millis(200), Duration::from_secs(5))
}

/// How one watch ended.
enum Ended {
    /// Normally (its timeout) or by a dropped connection: resume from the resourceVersion.
    Resume,
    /// `410 Gone`: list again.
    Expired,
    /// A failure (already recorded): back off, then resume.
    Failed,
}

/// How often discovery is asked again for a synced kind the cluster does not serve.
const NOT_SERVED_RECHECK: Duration = Duration::from_secs(60);

/// One kind's list-then-watch loop; runs until the [`Watch`] is dropped.
async fn run(conn: Connection, target: Target, mut writer: Writer) {
    let mut backoff = Backoff::new();
    let kind = match target {
        Target::Known(kind) => kind,
        Target::Discover(wanted) => loop {
            match conn.resolve(&wanted).await {
                Ok(kind) => break kind,
                // A kind the cluster does not serve has no objects: that is what the cache
                // holds (the gatekeeper-library's sync lists name old API versions too), and
                // discovery is asked again in case a CRD brings it.
                Err(e @ ClusterError::NotServed { .. }) => {
                    writer.not_served(&e.to_string());
                    tokio::time::sleep(NOT_SERVED_RECHECK).await;
                }
                Err(e) => {
                    writer.failed(&e.to_string());
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        },
    };
    writer.kind = Some(kind.clone());
    backoff.reset();
    let mut resource_version: Option<String> = None;
    // A 410 right after a list is the API server's trouble, not a compaction: back off.
    let mut expired_in_a_row = 0;
    loop {
        let rv = match resource_version.clone() {
            Some(rv) => rv,
            None => match list(&conn, &kind, &mut writer).await {
                Ok(rv) => {
                    backoff.reset();
                    rv
                }
                Err(e) => {
                    writer.failed(&e.to_string());
                    tokio::time::sleep(backoff.next()).await;
                    continue;
                }
            },
        };
        resource_version = Some(rv.clone());
        let started = Instant::now();
        let ended = watch(&conn, &kind, &rv, &mut writer, &mut resource_version).await;
        if !matches!(ended, Ended::Expired) {
            expired_in_a_row = 0;
        }
        match ended {
            Ended::Resume if started.elapsed() >= Duration::from_secs(1) => backoff.reset(),
            // A watch that ends at once, again and again, must not spin.
            Ended::Resume => tokio::time::sleep(backoff.next()).await,
            Ended::Expired => {
                tracing::info!(kind = %kind.describe(), "the watch's resourceVersion expired (410 Gone): listing again");
                resource_version = None;
                expired_in_a_row += 1;
                if expired_in_a_row > 1 {
                    tokio::time::sleep(backoff.next()).await;
                }
            }
            Ended::Failed => tokio::time::sleep(backoff.next()).await,
        }
    }
}

/// Reads a complete list (paged) and puts it in place; returns its resourceVersion.
async fn list(
    conn: &Connection,
    kind: &Resolved,
    writer: &mut Writer,
) -> Result<String, ClusterError> {
    let mut staged = Staged::default();
    let mut pages = conn.pages(kind);
    while let Some(items) = pages.next().await? {
        for obj in items {
            writer.stage(&mut staged, obj);
        }
    }
    let rv = pages
        .resource_version
        .clone()
        .filter(|rv| !rv.is_empty())
        .ok_or_else(|| ClusterError::Transport {
            what: format!("list of {}", kind.resource_name()),
            message: "the list has no metadata.resourceVersion to watch from".into(),
        })?;
    writer.commit(staged);
    Ok(rv)
}

/// Watches from `rv`, applying events in batches (published when no more are ready).
async fn watch(
    conn: &Connection,
    kind: &Resolved,
    rv: &str,
    writer: &mut Writer,
    resource_version: &mut Option<String>,
) -> Ended {
    let what = format!("watch of {}", kind.resource_name());
    let params = WatchParams {
        bookmarks: true,
        timeout: Some(conn.watch_timeout.as_secs().max(1) as u32),
        ..WatchParams::default()
    };
    let request = match kube::core::Request::new(kind.url_path()).watch(&params, rv) {
        Ok(r) => r,
        Err(e) => {
            writer.failed(&format!("{what}: cannot build the request: {e}"));
            return Ended::Failed;
        }
    };
    let started = tokio::time::timeout(
        conn.request_timeout,
        conn.client.request_events::<Value>(request),
    )
    .await;
    let stream = match started {
        Err(_) => {
            writer.failed(
                &ClusterError::Timeout {
                    what,
                    after: conn.request_timeout,
                }
                .to_string(),
            );
            return Ended::Failed;
        }
        Ok(Err(e)) => {
            let e = ClusterError::from_kube(&what, e);
            if matches!(e, ClusterError::Api { code: 410, .. }) {
                return Ended::Expired;
            }
            writer.failed(&e.to_string());
            return Ended::Failed;
        }
        Ok(Ok(stream)) => stream,
    };
    writer.watching();
    let mut stream = std::pin::pin!(stream);
    let idle = idle_limit(conn.watch_timeout);
    loop {
        let first = match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => {
                writer.publish();
                writer.failed(&format!(
                    "{what}: the API server sent nothing for {}",
                    humantime::format_duration(idle)
                ));
                return Ended::Failed;
            }
            Ok(None) => {
                writer.publish();
                return Ended::Resume;
            }
            Ok(Some(item)) => item,
        };
        let mut item = Some(first);
        let mut handled = 0;
        while let Some(event) = item.take() {
            match event {
                Ok(WatchEvent::Added(obj) | WatchEvent::Modified(obj)) => {
                    advance(resource_version, &obj);
                    writer.apply(obj);
                }
                Ok(WatchEvent::Deleted(obj)) => {
                    advance(resource_version, &obj);
                    writer.delete(&obj);
                }
                Ok(WatchEvent::Bookmark(b)) => {
                    if !b.metadata.resource_version.is_empty() {
                        *resource_version = Some(b.metadata.resource_version);
                    }
                }
                Ok(WatchEvent::Error(status)) => {
                    writer.publish();
                    if status.code == 410 {
                        return Ended::Expired;
                    }
                    writer.failed(&format!(
                        "{what}: {} ({} {})",
                        status.message, status.code, status.reason
                    ));
                    return Ended::Failed;
                }
                Err(e) => {
                    writer.publish();
                    let e = ClusterError::from_kube(&what, e);
                    if matches!(e, ClusterError::Api { code: 410, .. }) {
                        return Ended::Expired;
                    }
                    writer.failed(&e.to_string());
                    return Ended::Failed;
                }
            }
            handled += 1;
            // Take the events already there, then publish them together.
            if handled < 1024 {
                match stream.next().now_or_never() {
                    Some(Some(next)) => item = Some(next),
                    Some(None) => {
                        writer.publish();
                        return Ended::Resume;
                    }
                    None => {}
                }
            }
        }
        writer.publish();
    }
}

fn advance(resource_version: &mut Option<String>, obj: &Value) {
    if let Some(rv) = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty())
    {
        *resource_version = Some(rv.to_string());
    }
}
