//! The index of the approved window: identity (group, kind, namespace, name) → the distinct
//! versions of its manifest in the window's approved commits, each with the newest and oldest
//! commit that hold it, its path and line. A decision looks an object up without walking Git.
//!
//! **When the window holds no approved commit** (every commit walked is unapproved), the index
//! holds no versions, and it keeps what the newest approved commit it knew held (the last good
//! index's, [`Index::last_approved`]): the gate fails closed, refusing DELETEs of those objects
//! ([`super::verdict`]), rather than reading "Git no longer holds it" from an empty window.
//!
//! **Scope is never guessed.** Namespaced objects without a namespace get the repository's
//! default one and cluster-scoped objects lose theirs (as the API server does), by the
//! built-in kinds and the CustomResourceDefinitions of the window. A custom resource whose
//! CRD is not in the window has no known scope: it is indexed as its manifest says (no
//! namespace when it sets none), and [`Index::lookup`] finds it both ways, as the request's
//! scope says: a namespaced request in the default namespace also finds the manifest without
//! a namespace, a cluster-scoped request also finds a manifest that named a namespace.
//!
//! **No cascade around the gate**: the index knows how many objects of the newest approved
//! commit lie inside each namespace and are of each kind ([`Index::inside_namespace`],
//! [`Index::of_kind`]), so that deleting a Namespace or a CRD, which would make the garbage
//! collector delete them, is refused ([`super::verdict`]).
//!
//! Why versions and not one entry per commit: most objects do not change from one commit to
//! the next, so 10,000 manifests over 200 commits are ~10,000 versions, not 2,000,000 entries;
//! and a new commit is folded in by touching only what it holds ([`Index::advance`]).
//! Blobs are parsed once and shared.
//!
//! **Memory and time on a real history** (issue 22: kube-prometheus, whose CRDs of up to
//! 0.8 MB change in one commit in four, so a 200-commit window holds ~40 distinct versions of
//! each): a parsed `serde_json::Value` costs several times its YAML, and one per distinct
//! version was ~450 MB. So a version is held parsed only while the newest approved commit
//! holds it (what nearly every request is matched against, at no extra cost); once a newer
//! commit changes it, it is kept compact ([`super::stored`]: its JSON, LZ4-compressed) and
//! parsed again when a decision reads it (a request matched against an older version, or the
//! `others` a removed picked value is checked against, read only then). Versions cannot share
//! unchanged subtrees: a `Value` owns its children, and a shared tree would need its own value
//! type through the whole match. A cold build keeps only each document's line (not each
//! field's, which only `check`'s findings use), skips the second YAML parse that looks for
//! tags when no `!` can start one, reads YAML straight into JSON (no position per field),
//! and parses the new blobs of the commits ahead on reader threads, as many as there are
//! cores, while it folds the commits in (a pipeline, at most 2 MB of YAML in flight so that
//! their parsed trees do not add up). A first start is ready sooner still: the webhook's
//! mirror indexes the newest approved commits first ([`super::mirror`]). BENCHMARKS.md has
//! the numbers, before and after each of these.
//!
//! **What is indexed is what the controller applies**: each configured source rendered at each
//! approved commit ([`crate::render`]): plain manifests as written, kustomizations built,
//! charts templated. A patch file is never an object; a rendered object's path and line are
//! those of the file it came from (its origin), and its [`Version::source`] the folder
//! rendered. A unit whose key (the trees it reads) did not change since the previous commit is
//! not rendered again. A unit that fails to render at the newest commit adds no version, and
//! what it rendered before still counts as held by the newest commit, so that a broken render
//! never makes a DELETE traceable ([`Index::render_errors`] says why). A unit that has not
//! rendered at any commit of the window is not known at all: what it would apply is
//! untraceable, and a DELETE of it is judged as of any object the newest commit does not hold.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use gix::ObjectId;
use serde_json::Value;

use super::approval::WindowCommit;
use super::stored::Stored;
use crate::git::{GitError, Repo};
use crate::input::Identity;
use crate::objects::{self as changes, FileObject, Scopes};
use crate::render::{RenderError, Renderer};

use super::matching::{LimitDefaults, Picks};

/// The key of the index: identity without the version (an object keeps its identity across
/// API versions).
pub type Key = (String, String, Option<String>, String);

/// The key of an identity.
pub fn key(id: &Identity) -> Key {
    (
        id.group.clone(),
        id.kind.clone(),
        id.namespace.clone(),
        id.name.clone(),
    )
}

/// The identity of a key, for messages (the version is not part of a key).
fn identity(key: &Key) -> Identity {
    let (group, kind, namespace, name) = key.clone();
    Identity {
        group,
        version: String::new(),
        kind,
        namespace,
        name,
    }
}

/// What the newest approved commit holds: its identities, and for the cascade rule how many
/// of them lie inside each namespace and are of each kind, each count with its first object
/// (in path order) as an example.
#[derive(Debug, Default, Clone)]
struct Newest {
    commit: Option<ObjectId>,
    keys: HashSet<Key>,
    /// namespace → (objects inside it, the first).
    inside: HashMap<String, (usize, Key)>,
    /// group → kind → (objects of it, the first).
    of_kind: HashMap<String, HashMap<String, (usize, Key)>>,
    /// The default classes and priority values it holds: what the admission plugins pick.
    picks: Picks,
    /// Its Flux Kustomizations: (name, namespace, `spec.path` without `./`), which say the
    /// values of Flux's tracking labels.
    flux: Vec<(String, String, String)>,
    /// Its HorizontalPodAutoscalers: (namespace, target kind, target name) → (min, max).
    autoscaled: HashMap<(Option<String>, String, String), (i64, i64)>,
    /// Its LimitRanges' container defaults, by namespace.
    limits: HashMap<String, LimitDefaults>,
    /// Its HelmReleases whose chart comes from a chart repository (nothing renders them
    /// from Git): (namespace, name) → what helm-controller's objects for it may be.
    delegated: HashMap<(String, String), Delegation>,
    /// Its Flux Kustomizations' `serviceAccountName`s: (namespace, name) → account.
    flux_accounts: HashMap<(String, String), String>,
}

/// A HelmRelease whose chart comes from a chart repository: the objects helm-controller
/// writes for it are delegated to it, in its target namespace, from the identity it applies
/// as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// Where its objects go: `spec.targetNamespace`, else its own namespace.
    pub namespace: String,
    /// `spec.serviceAccountName` (Flux's multi-tenancy impersonation), when set: the
    /// release's objects are written as `system:serviceaccount:<its namespace>:<name>`.
    pub service_account: Option<String>,
    /// The chart and its pinned version, for messages.
    pub chart: String,
}

impl Newest {
    /// What an object it holds says of the cluster: a default class, a priority value, a
    /// Flux Kustomization.
    fn learn(&mut self, key: &Key, object: &Value) {
        match (key.0.as_str(), key.1.as_str()) {
            ("networking.k8s.io", "IngressClass")
            | ("storage.k8s.io", "StorageClass")
            | ("scheduling.k8s.io", "PriorityClass") => {
                self.picks.learn(std::iter::once(object));
            }
            ("", "LimitRange") => {
                if let Some(ns) = &key.2 {
                    self.limits.entry(ns.clone()).or_default().learn(object);
                }
            }
            ("autoscaling", "HorizontalPodAutoscaler") => {
                let target = |field: &str| {
                    object
                        .pointer(&format!("/spec/scaleTargetRef/{field}"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                if let (Some(kind), Some(name)) = (target("kind"), target("name")) {
                    let min = object
                        .pointer("/spec/minReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    let max = object
                        .pointer("/spec/maxReplicas")
                        .and_then(Value::as_i64)
                        .unwrap_or(min);
                    self.autoscaled
                        .insert((key.2.clone(), kind, name), (min, max));
                }
            }
            ("helm.toolkit.fluxcd.io", "HelmRelease") => {
                let text = |p: &str| object.pointer(p).and_then(Value::as_str);
                let from_repository = object.pointer("/spec/chartRef").is_some()
                    || text("/spec/chart/spec/sourceRef/kind")
                        .is_some_and(|k| k != "GitRepository");
                let namespace = key.2.clone().unwrap_or_else(|| "flux-system".into());
                if from_repository {
                    let chart = match object.pointer("/spec/chartRef") {
                        Some(r) => format!(
                            "{} {}",
                            r.get("kind").and_then(Value::as_str).unwrap_or(""),
                            r.get("name").and_then(Value::as_str).unwrap_or("")
                        ),
                        None => format!(
                            "{} {}",
                            text("/spec/chart/spec/chart").unwrap_or(""),
                            text("/spec/chart/spec/version").unwrap_or("*")
                        ),
                    };
                    self.delegated.insert(
                        (namespace.clone(), key.3.clone()),
                        Delegation {
                            namespace: text("/spec/targetNamespace")
                                .filter(|s| !s.is_empty())
                                .unwrap_or(&namespace)
                                .to_string(),
                            service_account: text("/spec/serviceAccountName")
                                .filter(|s| !s.is_empty())
                                .map(str::to_string),
                            chart,
                        },
                    );
                }
            }
            ("kustomize.toolkit.fluxcd.io", "Kustomization") => {
                let path = object
                    .pointer("/spec/path")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let path = crate::render::paths::join("", path).unwrap_or_default();
                let namespace = key.2.clone().unwrap_or_default();
                if let Some(sa) = object
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    self.flux_accounts
                        .insert((namespace.clone(), key.3.clone()), sa.to_string());
                }
                if !self
                    .flux
                    .iter()
                    .any(|(n, ns, _)| *n == key.3 && *ns == namespace)
                {
                    self.flux.push((key.3.clone(), namespace, path));
                }
            }
            _ => {}
        }
    }

    fn insert(&mut self, key: &Key) {
        if !self.keys.insert(key.clone()) {
            return;
        }
        if let Some(ns) = &key.2 {
            match self.inside.get_mut(ns.as_str()) {
                Some((n, _)) => *n += 1,
                None => {
                    self.inside.insert(ns.clone(), (1, key.clone()));
                }
            }
        }
        let kinds = match self.of_kind.get_mut(key.0.as_str()) {
            Some(kinds) => kinds,
            None => self.of_kind.entry(key.0.clone()).or_default(),
        };
        match kinds.get_mut(key.1.as_str()) {
            Some((n, _)) => *n += 1,
            None => {
                kinds.insert(key.1.clone(), (1, key.clone()));
            }
        }
    }
}

/// One version of a manifest, held by a run of consecutive approved commits.
#[derive(Debug, Clone)]
pub struct Version {
    /// The newest approved commit that holds this version.
    pub commit: ObjectId,
    /// The oldest approved commit of the window that holds it.
    pub since: ObjectId,
    /// Shared by every version of the same file.
    pub path: Arc<str>,
    pub line: usize,
    /// The source it comes from: the folder rendered (a kustomization's, a chart's), or for
    /// a plain manifest the configured source holding it (`.` for the repository).
    pub source: Arc<str>,
    /// The manifest: parsed while the newest approved commit holds it, else compact.
    stored: Stored,
    newest_seq: u64,
    oldest_seq: u64,
}

impl Version {
    /// The manifest of this version: at hand for a version the newest approved commit holds,
    /// parsed from its compact form for an older one ([`Stored`]).
    pub fn manifest(&self) -> Arc<Value> {
        self.stored.get()
    }
}

/// The objects of one blob, parsed (and defaulted) once: (key, line, object).
type Parsed = Arc<Vec<(Key, usize, Arc<Value>)>>;

/// The objects of one rendered unit, defaulted once: (key, path, line, object).
type Rendered = Arc<Vec<(Key, Arc<str>, usize, Arc<Value>)>>;

/// A blob as parsed for a namespace: its objects default to it.
type BlobKey = (ObjectId, Option<Arc<str>>);

/// An object a commit holds: (key, path, source, line, object).
type Held<'a> = (&'a Key, Arc<str>, Arc<str>, usize, &'a Arc<Value>);

/// The index of a window.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// Approved commits of the window with their sequence numbers, newest first.
    commits: VecDeque<(u64, ObjectId)>,
    /// Commits of the window that are not approved, with the reason, oldest first.
    pub refused: Vec<(ObjectId, String)>,
    versions: HashMap<Key, Vec<Version>>,
    /// What the newest approved commit holds (a DELETE is traceable when Git no longer holds
    /// the object); when the window is empty, the last good window's.
    newest: Newest,
    /// (group, kind, name) → the namespaces manifests gave objects of a kind whose scope was
    /// not known: a cluster-scoped request finds them there too.
    unscoped: HashMap<(String, String, String), BTreeSet<String>>,
    /// Parsed blobs by id and the namespace their objects default to.
    blobs: HashMap<BlobKey, Parsed>,
    /// Rendered units by key (those of the newest commit).
    units: HashMap<String, Rendered>,
    /// The last good render of each unit, by folder: what a unit that fails to render at the
    /// newest commit is taken to still hold.
    last_good: HashMap<String, Rendered>,
    /// The render errors of the newest approved commit.
    render_errors: Vec<RenderError>,
    next_seq: u64,
    renderer: Renderer,
    default_namespace: String,
    scopes: Scopes,
}

impl Index {
    /// Builds the index of `window` (newest first, as [`approval::window`](super::approval::window)
    /// returns it).
    ///
    /// Namespaced objects without a namespace get `default_namespace`; which kinds are
    /// cluster-scoped is the built-in list plus the CustomResourceDefinitions seen.
    ///
    /// Each of `roots` (or the whole repository) is an `auto` source rendered with the default
    /// settings; [`Index::build_with`] takes a configured [`Renderer`].
    pub fn build(
        repo: &Repo,
        window: &[WindowCommit],
        roots: &[String],
        default_namespace: &str,
    ) -> Result<Index, GitError> {
        let renderer = Renderer::new(
            Vec::new(),
            roots,
            crate::render::Settings::default(),
            default_namespace,
        );
        Index::build_with(repo, window, renderer, default_namespace)
    }

    /// Builds the index of `window` with the sources and engines of `renderer`.
    pub fn build_with(
        repo: &Repo,
        window: &[WindowCommit],
        renderer: Renderer,
        default_namespace: &str,
    ) -> Result<Index, GitError> {
        let mut index = Index {
            renderer,
            default_namespace: default_namespace.to_string(),
            ..Index::default()
        };
        index.advance_in_place(repo, window)?;
        Ok(index)
    }

    /// The index of a newer window: the commits it adds are folded in, those that left it
    /// are dropped. The window must continue this one (its older commits are this index's
    /// newest); otherwise (a force-push of the branch) the index is rebuilt.
    pub fn advance(&self, repo: &Repo, window: &[WindowCommit]) -> Result<Index, GitError> {
        let continues = match (window.last(), self.commits.is_empty()) {
            (_, true) | (None, _) => false,
            (Some(_), false) => {
                let known: HashSet<ObjectId> = self.commits.iter().map(|(_, id)| *id).collect();
                let mut seen_known = false;
                // The newest approved commit this index holds must still be in the window
                // (after a rewind an operator acknowledged, it is not: rebuilt).
                let newest = self.commits.front().map(|(_, id)| *id);
                window.iter().all(|c| {
                    let is_known =
                        known.contains(&c.id) || self.refused.iter().any(|(id, _)| *id == c.id);
                    // New commits come first, then only known ones.
                    let ok = is_known || !seen_known;
                    seen_known |= is_known;
                    ok
                }) && seen_known
                    && window.iter().any(|c| Some(c.id) == newest)
            }
        };
        if !continues {
            let mut next =
                Index::build_with(repo, window, self.renderer.clone(), &self.default_namespace)?;
            if next.commits.is_empty() {
                // Closed: what the last good index held is what DELETEs are judged against.
                next.newest = self.newest.clone();
                next.unscoped = self.unscoped.clone();
                next.scopes = self.scopes.clone();
                next.prune_unscoped();
            }
            return Ok(next);
        }
        let mut next = self.clone();
        next.advance_in_place(repo, window)?;
        Ok(next)
    }

    fn advance_in_place(&mut self, repo: &Repo, window: &[WindowCommit]) -> Result<(), GitError> {
        let known: HashSet<ObjectId> = self.commits.iter().map(|(_, id)| *id).collect();
        let refused_before: HashSet<ObjectId> = self.refused.iter().map(|(id, _)| *id).collect();
        // Several new approved commits (a cold build): their units are rendered first, all
        // at once, as many at a time as there are cores, rather than one commit after the
        // other.
        let new: Vec<ObjectId> = window
            .iter()
            .rev()
            .filter(|c| !known.contains(&c.id) && !refused_before.contains(&c.id))
            .filter(|c| c.approval.is_ok())
            .map(|c| c.id)
            .collect();
        let mut layouts: HashMap<ObjectId, crate::render::Layout> = HashMap::new();
        let mut prefetched: HashMap<String, crate::render::Rendered> = HashMap::new();
        if new.len() > 1 {
            for id in &new {
                layouts.insert(*id, self.renderer.layout(repo, *id)?);
            }
            let mut keys = HashSet::new();
            let units: Vec<&crate::render::Unit> = new
                .iter()
                .flat_map(|id| &layouts[id].units)
                .filter(|u| !self.units.contains_key(&u.key) && keys.insert(u.key.as_str()))
                .collect();
            let rendered = self.renderer.render(repo, &units);
            prefetched = units.iter().map(|u| u.key.clone()).zip(rendered).collect();
        }
        // Fold in the new commits, oldest first; with several, the new blobs of the commits
        // ahead (up to [`AHEAD_BYTES`] at a time) are parsed meanwhile on reader threads, as
        // many as there are cores, while this one folds.
        let readers = if layouts.is_empty() {
            0
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        std::thread::scope(|scope| -> Result<(), GitError> {
            let mut ahead = Ahead::start(scope, readers);
            let mut position = 0;
            for c in window.iter().rev() {
                if known.contains(&c.id) || refused_before.contains(&c.id) {
                    continue;
                }
                match &c.approval {
                    Ok(_) => {
                        let upcoming = new[position..].iter().filter_map(|id| layouts.get(id));
                        ahead.read_ahead(repo, &self.blobs, upcoming)?;
                        position += 1;
                        let layout = match layouts.remove(&c.id) {
                            Some(layout) => layout,
                            None => self.renderer.layout(repo, c.id)?,
                        };
                        // What `follow` does not follow, said once, for the newest commit.
                        if window.first().is_some_and(|n| n.id == c.id) {
                            for said in &layout.said {
                                tracing::info!(commit = %c.id, file = %said.path, line = said.line, "{}", said.message);
                            }
                        }
                        self.push(repo, c.id, layout, &prefetched, &mut ahead)?
                    }
                    Err(e) => self.refused.push((c.id, e.to_string())),
                }
            }
            Ok(())
        })?;
        // Drop what left the window.
        let in_window: HashSet<ObjectId> = window.iter().map(|c| c.id).collect();
        self.refused.retain(|(id, _)| in_window.contains(id));
        while let Some((_, id)) = self.commits.back() {
            if in_window.contains(id) {
                break;
            }
            self.commits.pop_back();
        }
        let Some(&(oldest_seq, oldest_id)) = self.commits.back() else {
            // No approved commit left: nothing is traceable, and `newest` keeps what the last
            // approved commit held.
            self.versions.clear();
            self.blobs.clear();
            self.units.clear();
            self.prune_unscoped();
            return Ok(());
        };
        self.versions.retain(|_, versions| {
            versions.retain_mut(|v| {
                if v.oldest_seq < oldest_seq {
                    v.oldest_seq = oldest_seq;
                    v.since = oldest_id;
                }
                v.newest_seq >= oldest_seq
            });
            !versions.is_empty()
        });
        self.prune_unscoped();
        Ok(())
    }

    /// Drops the namespaces of `unscoped` that neither the window nor the newest approved
    /// commit holds any more.
    fn prune_unscoped(&mut self) {
        let (versions, newest) = (&self.versions, &self.newest.keys);
        self.unscoped.retain(|(group, kind, name), namespaces| {
            namespaces.retain(|ns| {
                let key = (group.clone(), kind.clone(), Some(ns.clone()), name.clone());
                versions.contains_key(&key) || newest.contains(&key)
            });
            !namespaces.is_empty()
        });
    }

    /// Adds the newest approved commit.
    ///
    /// `layout` is the commit's ([`Renderer::layout`]); `prefetched` holds renders made
    /// ahead, by key.
    fn push(
        &mut self,
        repo: &Repo,
        commit: ObjectId,
        layout: crate::render::Layout,
        prefetched: &HashMap<String, crate::render::Rendered>,
        ahead: &mut Ahead<'_>,
    ) -> Result<(), GitError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let previous = self.commits.front().map(|(s, _)| *s);
        // Parse the new blobs and render the new units first, so that CRDs among them inform
        // the defaults.
        let mut fresh: Vec<(BlobKey, Vec<FileObject>)> = Vec::new();
        for (path, file) in &layout.plain {
            let blob = (file.blob, file.namespace.clone());
            if self.blobs.contains_key(&blob) || fresh.iter().any(|(b, _)| *b == blob) {
                ahead.forget(&(file.blob, path.clone()));
            } else {
                let objects = match ahead.take(&(file.blob, path.clone())) {
                    Some(objects) => objects,
                    None => read_blob_objects(path, &repo.read_blob(file.blob, path)?),
                };
                self.scopes.learn(&objects);
                fresh.push((blob, objects));
            }
        }
        let to_render: Vec<&crate::render::Unit> = layout
            .units
            .iter()
            .filter(|u| !self.units.contains_key(&u.key))
            .collect();
        let missing: Vec<&crate::render::Unit> = to_render
            .iter()
            .filter(|u| !prefetched.contains_key(&u.key))
            .copied()
            .collect();
        let mut fresh_renders = self.renderer.render(repo, &missing).into_iter();
        let rendered: Vec<crate::render::Rendered> = to_render
            .iter()
            .map(|u| match prefetched.get(&u.key) {
                Some(r) => r.clone(),
                None => fresh_renders.next().expect("one render per missing unit"),
            })
            .collect();
        let mut fresh_units = Vec::new();
        for (unit, result) in to_render.iter().zip(&rendered) {
            if let Ok(objects) = &**result {
                let objects: Vec<FileObject> = objects
                    .iter()
                    .map(|o| FileObject {
                        path: o.path.clone(),
                        line: o.line,
                        object: o.object.clone(),
                        lines: Default::default(),
                    })
                    .collect();
                self.scopes.learn(&objects);
                fresh_units.push((*unit, objects));
            }
        }
        for (blob, mut objects) in fresh {
            let namespace = blob.1.as_deref().unwrap_or(&self.default_namespace);
            changes::default_namespaces(&mut objects, &self.scopes, namespace, blob.1.as_deref());
            let parsed = objects
                .into_iter()
                .filter_map(|o| {
                    let id = Identity::of_object(&o.object)?;
                    Some((key(&id), o.line, Arc::new(o.object)))
                })
                .collect();
            self.blobs.insert(blob, Arc::new(parsed));
        }
        for (unit, mut objects) in fresh_units {
            let namespace = unit.namespace.as_deref().unwrap_or(&self.default_namespace);
            changes::default_namespaces(
                &mut objects,
                &self.scopes,
                namespace,
                unit.namespace.as_deref(),
            );
            let mut paths: HashMap<String, Arc<str>> = HashMap::new();
            let parsed = objects
                .into_iter()
                .filter_map(|o| {
                    let id = Identity::of_object(&o.object)?;
                    let path = paths
                        .entry(o.path.clone())
                        .or_insert_with(|| Arc::from(o.path.as_str()))
                        .clone();
                    Some((key(&id), path, o.line, Arc::new(o.object)))
                })
                .collect();
            self.units.insert(unit.key.clone(), Arc::new(parsed));
        }
        let mut held: Vec<Held<'_>> = Vec::new();
        let mut used = HashSet::new();
        for (path, file) in &layout.plain {
            let blob = (file.blob, file.namespace.clone());
            let path: Arc<str> = Arc::from(path.as_str());
            for (k, line, object) in self.blobs[&blob].iter() {
                held.push((k, path.clone(), file.source.clone(), *line, object));
            }
            used.insert(blob);
        }
        self.render_errors.clear();
        let mut used_units = HashSet::new();
        let mut still_held: Vec<Key> = Vec::new();
        for unit in &layout.units {
            let source: Arc<str> = Arc::from(unit.name());
            match self.units.get(&unit.key) {
                Some(parsed) => {
                    used_units.insert(unit.key.clone());
                    self.last_good.insert(unit.id.clone(), parsed.clone());
                    for (k, path, line, object) in parsed.iter() {
                        held.push((k, path.clone(), source.clone(), *line, object));
                    }
                }
                None => {
                    let error = to_render
                        .iter()
                        .position(|u| u.key == unit.key)
                        .and_then(|i| rendered[i].as_ref().as_ref().err().cloned());
                    if let Some(e) = error {
                        tracing::warn!(commit = %commit, error = %e, "a source of an approved commit cannot be rendered: it adds nothing to the window, and what it rendered before is still taken as held");
                        self.render_errors.push(e);
                    }
                    if let Some(last) = self.last_good.get(&unit.id) {
                        still_held.extend(last.iter().map(|(k, ..)| k.clone()));
                    }
                }
            }
        }
        let mut newest = Newest {
            commit: Some(commit),
            picks: Picks::with_system_classes(),
            ..Newest::default()
        };
        for (k, path, source, line, object) in held {
            newest.insert(k);
            newest.learn(k, object);
            if let Some(ns) = &k.2
                && self.scopes.cluster_scoped(&k.0, &k.1).is_none()
            {
                self.unscoped
                    .entry((k.0.clone(), k.1.clone(), k.3.clone()))
                    .or_default()
                    .insert(ns.clone());
            }
            let versions = self.versions.entry(k.clone()).or_default();
            // Only versions the previous or this commit holds are compared: parsed ones.
            let same = |v: &Version| v.path == path && v.stored.is(object);
            // The same identity twice in one commit (two overlays of one base) is one
            // version each; the same object twice is one.
            if versions.iter().any(|v| v.newest_seq == seq && same(v)) {
                continue;
            }
            // The same manifest as in the previous approved commit: extend its run.
            match versions
                .iter()
                .position(|v| Some(v.newest_seq) == previous && same(v))
            {
                Some(i) => {
                    let mut v = versions.remove(i);
                    v.newest_seq = seq;
                    v.commit = commit;
                    v.line = line;
                    v.source = source;
                    versions.insert(0, v);
                }
                None => versions.insert(
                    0,
                    Version {
                        commit,
                        since: commit,
                        path,
                        line,
                        source,
                        stored: Stored::parsed(object.clone()),
                        newest_seq: seq,
                        oldest_seq: seq,
                    },
                ),
            }
        }
        for k in &still_held {
            newest.insert(k);
        }
        // The versions the previous commit held and this one does not are older versions
        // now: kept compact.
        for k in &self.newest.keys {
            for v in self.versions.get_mut(k).into_iter().flatten() {
                if v.newest_seq != seq && v.stored.is_parsed() {
                    v.stored.compact();
                }
            }
        }
        // Only the newest commit's blobs and units can be reused by the next one.
        self.blobs.retain(|b, _| used.contains(b));
        self.units.retain(|k, _| used_units.contains(k));
        let dirs: HashSet<&str> = layout.units.iter().map(|u| u.id.as_str()).collect();
        self.last_good.retain(|d, _| dirs.contains(d.as_str()));
        self.renderer.end_commit(layout.units.iter().map(|u| {
            let rendered = to_render
                .iter()
                .position(|r| r.key == u.key)
                .map(|i| &rendered[i]);
            (u.key.as_str(), rendered)
        }));
        self.commits.push_front((seq, commit));
        self.newest = newest;
        Ok(())
    }

    /// Why sources of the newest approved commit could not be rendered (each names its
    /// source and the engine's message); empty when every source rendered.
    pub fn render_errors(&self) -> &[RenderError] {
        &self.render_errors
    }

    /// The keys a request's identity may be indexed under, its own first. The request says
    /// the scope: a namespaced request in the default namespace may be a manifest that set no
    /// namespace for a kind whose scope the index did not know, and a cluster-scoped request
    /// may be a manifest that set one (the API server drops it).
    fn candidates(&self, id: &Identity) -> Vec<Key> {
        let mut keys = vec![key(id)];
        let scope = self.scopes.cluster_scoped(&id.group, &id.kind);
        match &id.namespace {
            Some(ns) if *ns == self.default_namespace && scope != Some(true) => {
                keys.push((id.group.clone(), id.kind.clone(), None, id.name.clone()));
            }
            None if scope != Some(false) => {
                let by_name = (id.group.clone(), id.kind.clone(), id.name.clone());
                for ns in self.unscoped.get(&by_name).into_iter().flatten() {
                    keys.push((
                        id.group.clone(),
                        id.kind.clone(),
                        Some(ns.clone()),
                        id.name.clone(),
                    ));
                }
            }
            _ => {}
        }
        keys
    }

    /// The versions of an identity's manifest in the window, newest first: those under its
    /// own key, or else under another key its request's scope allows (see the module doc).
    /// A version found under another key names the namespace its manifest gave.
    pub fn lookup(&self, id: &Identity) -> &[Version] {
        self.candidates(id)
            .iter()
            .find_map(|k| self.versions.get(k).filter(|v| !v.is_empty()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether the newest approved commit holds the identity (when the window is empty, the
    /// newest approved commit of the last good window: see [`Index::last_approved`]), under
    /// any key its request's scope allows.
    pub fn in_newest(&self, id: &Identity) -> bool {
        self.candidates(id)
            .iter()
            .any(|k| self.newest.keys.contains(k))
    }

    /// How many objects of the newest approved commit lie inside `namespace`, with the first
    /// of them; `None` when none does.
    pub fn inside_namespace(&self, namespace: &str) -> Option<(usize, Identity)> {
        self.newest
            .inside
            .get(namespace)
            .map(|(n, example)| (*n, identity(example)))
    }

    /// How many objects of the newest approved commit are of `group`/`kind`, with the first of
    /// them; `None` when none is.
    pub fn of_kind(&self, group: &str, kind: &str) -> Option<(usize, Identity)> {
        self.newest
            .of_kind
            .get(group)
            .and_then(|kinds| kinds.get(kind))
            .map(|(n, example)| (*n, identity(example)))
    }

    /// The objects of the newest approved commit of the window, each with the version that
    /// commit holds: what the cluster should hold (`audit` reports those it lacks). Empty
    /// when the window is.
    pub fn newest_objects(&self) -> impl Iterator<Item = (&Key, &Version)> + '_ {
        let newest = self.commits.front().map(|(_, id)| *id);
        self.newest.keys.iter().filter_map(move |key| {
            let version = self
                .versions
                .get(key)?
                .iter()
                .find(|v| Some(v.commit) == newest)?;
            Some((key, version))
        })
    }

    /// The default classes and priority values the newest approved commit holds.
    pub fn picks(&self) -> &Picks {
        &self.newest.picks
    }

    /// The Flux Kustomization of the newest approved commit that applies a manifest rendered
    /// from `source` (a folder) at `path`: the one whose `spec.path` holds the source (or the
    /// file) most closely, as (name, namespace); `None` when none does, or when two with the
    /// same path do.
    pub fn flux_kustomization(&self, source: &str, path: &str) -> Option<(String, String)> {
        // A followed source names the Kustomization that builds it: `dir (Kustomization ns/name)`.
        if let Some(by) = source
            .strip_suffix(')')
            .and_then(|s| s.rsplit_once(" (Kustomization "))
            .and_then(|(_, by)| by.split_once('/'))
        {
            return Some((by.1.to_string(), by.0.to_string()));
        }
        if source.ends_with(')') && source.contains(" (") {
            // Followed from another controller object (a HelmRelease, an Application).
            return None;
        }
        let under = |dir: &str, p: &str| {
            dir.is_empty() || p == dir || p.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
        };
        let place = if source.is_empty() || source == "." {
            path
        } else {
            source
        };
        let mut best: Option<(&(String, String, String), usize)> = None;
        let mut tied = false;
        for k in &self.newest.flux {
            if !under(&k.2, place) {
                continue;
            }
            match best {
                Some((_, len)) if k.2.len() < len => {}
                Some((_, len)) if k.2.len() == len => tied = true,
                _ => {
                    best = Some((k, k.2.len()));
                    tied = false;
                }
            }
        }
        match best {
            Some(((name, namespace, _), _)) if !tied => Some((name.clone(), namespace.clone())),
            _ => None,
        }
    }

    /// The replica range a HorizontalPodAutoscaler of the newest approved commit gives the
    /// object of `kind` and `name` in `namespace`, if one targets it.
    pub fn autoscaled(
        &self,
        namespace: Option<&str>,
        kind: &str,
        name: &str,
    ) -> Option<(i64, i64)> {
        self.newest
            .autoscaled
            .get(&(
                namespace.map(str::to_string),
                kind.to_string(),
                name.to_string(),
            ))
            .copied()
    }

    /// The container defaults the LimitRanges of the newest approved commit give `namespace`.
    pub fn limit_defaults(&self, namespace: &str) -> Option<&LimitDefaults> {
        self.newest.limits.get(namespace)
    }

    /// The manifest of an identity as the newest approved commit holds it (the first version
    /// of that commit), if it does.
    pub fn in_newest_version(&self, id: &Identity) -> Option<&Version> {
        let newest = self.commits.front().map(|(_, c)| *c)?;
        self.candidates(id).iter().find_map(|k| {
            self.versions
                .get(k)
                .and_then(|vs| vs.iter().find(|v| v.commit == newest))
        })
    }

    /// The approved commit that removed an identity the newest approved commit does not hold:
    /// the first approved commit of the window after the newest one that held it. `None` when
    /// the newest holds it, or no commit of the window held it.
    pub fn removed_by(&self, id: &Identity) -> Option<ObjectId> {
        if self.in_newest(id) {
            return None;
        }
        let held = self.lookup(id).iter().map(|v| v.newest_seq).max()?;
        self.commits
            .iter()
            .rev()
            .find(|(seq, _)| *seq > held)
            .map(|(_, c)| *c)
    }

    /// The HelmRelease `namespace/name` of the newest approved commit, when its chart comes
    /// from a chart repository (what helm-controller writes for it is delegated to it).
    pub fn delegation(&self, namespace: &str, name: &str) -> Option<&Delegation> {
        self.newest
            .delegated
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// The `serviceAccountName` of Flux Kustomization `namespace/name` of the newest approved
    /// commit, when it sets one.
    pub fn flux_service_account(&self, namespace: &str, name: &str) -> Option<&str> {
        self.newest
            .flux_accounts
            .get(&(namespace.to_string(), name.to_string()))
            .map(String::as_str)
    }

    /// Whether the window holds no approved commit: the gate fails closed.
    pub fn window_is_empty(&self) -> bool {
        self.commits.is_empty()
    }

    /// The newest approved commit: the window's, or when the window is empty the newest of the
    /// last window that had one (`None` when none was ever seen).
    pub fn last_approved(&self) -> Option<ObjectId> {
        self.newest.commit
    }

    /// Why the gate fails closed, when the window holds no approved commit: what the walk
    /// found instead, in words for `/readyz`, a log and a denial.
    pub fn empty_window_reason(&self) -> Option<String> {
        if !self.window_is_empty() {
            return None;
        }
        let mut reason = format!(
            "the window holds no approved commit: {} commit(s) of the protected branch were read and none is approved",
            self.refused.len()
        );
        // `refused` is kept oldest first.
        if let Some((id, why)) = self.refused.last() {
            reason += &format!(" (the newest, {}: {why})", short(id));
        }
        match self.newest.commit {
            Some(last) => {
                reason += &format!(
                    "; DELETEs of what the last approved commit {} held are refused",
                    short(&last)
                )
            }
            None => reason += "; no approved commit was ever seen, so every DELETE is refused",
        }
        Some(reason)
    }

    /// The approved commits of the window, newest first.
    pub fn commits(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.commits.iter().map(|(_, id)| *id)
    }

    /// Number of versions indexed.
    pub fn len(&self) -> usize {
        self.versions.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }
}

/// How many bytes of new blobs a cold build parses at once: enough to keep the cores busy,
/// few enough that their parsed trees (several times their text) do not add up.
const AHEAD_BYTES: usize = 2 << 20;

/// A blob by id and path (a path ending in `.json` is read as JSON).
type BlobAt = (ObjectId, String);

/// Blobs parsed ahead of the fold on reader threads (a YAML reader's stack each, so deep
/// files are read at once): the fold reads each commit's blobs from Git and hands them over
/// up to [`AHEAD_BYTES`] ahead of the commit it folds, and takes each one's objects when it
/// folds the commit that holds it.
struct Ahead<'scope> {
    /// Handed over and not taken yet, with its size.
    pending: HashMap<BlobAt, usize>,
    /// Those of `pending` parsed (`None`: its reader panicked, the fold parses it).
    done: HashMap<BlobAt, Option<Vec<FileObject>>>,
    /// Every blob handed over (a blob is parsed ahead once).
    handed: HashSet<BlobAt>,
    /// The bytes of `pending`.
    in_flight: usize,
    jobs: Option<crossbeam_channel::Sender<(BlobAt, Vec<u8>)>>,
    results: crossbeam_channel::Receiver<(BlobAt, Option<Vec<FileObject>>)>,
    _readers: std::marker::PhantomData<&'scope ()>,
}

impl<'scope> Ahead<'scope> {
    /// `readers` reader threads in `scope` (none: nothing is parsed ahead, the fold parses
    /// each blob itself). They end when this is dropped.
    fn start(scope: &'scope std::thread::Scope<'scope, '_>, readers: usize) -> Ahead<'scope> {
        let (jobs, queue) = crossbeam_channel::unbounded::<(BlobAt, Vec<u8>)>();
        let (done, results) = crossbeam_channel::unbounded();
        let mut started = 0;
        for _ in 0..readers {
            let (queue, done) = (queue.clone(), done.clone());
            let reader = crate::manifest::deep_reader(scope, move || {
                for (blob, bytes) in queue {
                    let objects = std::panic::catch_unwind(|| read_blob_objects(&blob.1, &bytes));
                    if done.send((blob, objects.ok())).is_err() {
                        break;
                    }
                }
            });
            started += usize::from(reader.is_ok());
        }
        Ahead {
            pending: HashMap::new(),
            done: HashMap::new(),
            handed: HashSet::new(),
            in_flight: 0,
            // No reader: nothing is handed over.
            jobs: (started > 0).then_some(jobs),
            results,
            _readers: std::marker::PhantomData,
        }
    }

    /// Hands over the blobs of the `upcoming` commits' layouts (the one folded next first)
    /// that the index has not parsed: the next one's all, the others' until [`AHEAD_BYTES`]
    /// are in flight.
    fn read_ahead<'l>(
        &mut self,
        repo: &Repo,
        parsed: &HashMap<BlobKey, Parsed>,
        upcoming: impl Iterator<Item = &'l crate::render::Layout>,
    ) -> Result<(), GitError> {
        let Some(jobs) = &self.jobs else {
            return Ok(());
        };
        // The commit folded next is handed over whole (its objects are all held once it is
        // folded, and the readers share its parse); the commits after it while fewer than
        // [`AHEAD_BYTES`] are in flight.
        for (n, layout) in upcoming.enumerate() {
            for (path, file) in &layout.plain {
                if n > 0 && self.in_flight >= AHEAD_BYTES {
                    return Ok(());
                }
                let blob = (file.blob, path.clone());
                if self.handed.contains(&blob)
                    || parsed.contains_key(&(file.blob, file.namespace.clone()))
                {
                    continue;
                }
                let bytes = repo.read_blob(file.blob, path)?;
                let size = bytes.len();
                self.handed.insert(blob.clone());
                if jobs.send((blob.clone(), bytes)).is_ok() {
                    self.in_flight += size;
                    self.pending.insert(blob, size);
                }
            }
        }
        Ok(())
    }

    /// The objects of `blob`, parsed ahead: waited for while a reader has it; `None` when it
    /// was not handed over or its reader failed, for the fold to parse it.
    fn take(&mut self, blob: &BlobAt) -> Option<Vec<FileObject>> {
        let size = self.pending.remove(blob)?;
        self.in_flight -= size;
        if let Some(objects) = self.done.remove(blob) {
            return objects;
        }
        while let Ok((got, objects)) = self.results.recv() {
            if got == *blob {
                return objects;
            }
            // Kept only while the fold still wants it.
            if self.pending.contains_key(&got) {
                self.done.insert(got, objects);
            }
        }
        None
    }

    /// Forgets `blob`: the fold has its objects already (the same blob at another path).
    fn forget(&mut self, blob: &BlobAt) {
        if let Some(size) = self.pending.remove(blob) {
            self.in_flight -= size;
        }
        self.done.remove(blob);
    }
}

/// The objects of a blob at `path`. The index keeps a document's line, not each field's.
fn read_blob_objects(path: &str, bytes: &[u8]) -> Vec<FileObject> {
    changes::read_file_objects_unlined(path, bytes).0
}

/// A commit id as messages show it (12 hex digits).
fn short(id: &ObjectId) -> String {
    let mut text = id.to_string();
    text.truncate(12);
    text
}
