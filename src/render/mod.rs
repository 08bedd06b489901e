//! What a GitOps controller applies for a source at a commit.
//!
//! Real GitOps repositories are rarely folders of finished manifests: Flux's
//! kustomize-controller applies `kustomize build` of a Kustomization's path, Argo CD applies
//! `kustomize build` or `helm template` of an Application's source. What Git approves is what
//! the controller applies, so gitgate indexes and checks the *rendered* objects, with the real
//! engines, never a re-implementation of them.
//!
//! ```text
//! repository.sources ──► Renderer::layout(repo, commit) ──► Layout { plain files, units }
//!                                                               │ (a unit: a kustomization or a chart,
//!                                                               │  keyed by the trees it reads)
//!                        Renderer::render(repo, units) ◄────────┘
//!                              │  cache hit, or a sandboxed `kustomize build` / `helm template`
//!                              ▼
//!                        Vec<Object { object, path, line }>   (origin annotations read and removed)
//! ```
//!
//! - [`spec`]: `repository.sources` and `render:` in the configuration.
//! - [`discover`]: the folders a source renders and its plain manifests (`auto` as Flux's
//!   generated kustomization).
//! - `layout`: what the sources hold at a commit, and for a source with `follow`, the walk
//!   through the controller objects found there; [`follow`] reads those objects (Flux
//!   Kustomizations and HelmReleases, Argo CD Applications) into what each applies, and
//!   [`overlay`] is what the controller changes in a build.
//! - [`kustomize`], [`helm`]: what each engine reads, refused inputs, where objects came from.
//! - [`sandbox`]: the temporary checkout written from Git objects, no network, time and output
//!   limits.
//!
//! **The cache.** A unit's key is a digest of what the render can read: the trees of its
//! folder and of every folder its kustomizations refer to (bases, components), or the chart's
//! tree and its values files, and the files of those folders that the controller's artifact
//! leaves out (`.sourceignore`, a GitRepository's `spec.ignore`: what the unit was laid out
//! with); the sandbox holds exactly those trees without those files, so a key that did not
//! change cannot render differently, and a commit that does not touch a source does not render
//! it again. The cache keeps what the last commit used ([`Renderer::end_commit`]).
//!
//! This module knows nothing of policies nor of provenance: `provenance::index` and `check`
//! call it and decide what the objects mean.

pub mod discover;
pub mod error;
pub mod follow;
pub mod helm;
pub mod ignore;
pub mod kustomize;
mod layout;
pub mod overlay;
pub mod paths;
pub mod sandbox;
pub mod spec;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use gix::ObjectId;
use serde_json::Value;
use sha2::Digest;

pub use error::RenderError;
pub use spec::{Follow, HelmSpec, Kind, Settings, SourceSpec};

use crate::git::{GitError, Repo};
use crate::input::Identity;
use crate::manifest::{self, Lines};
use discover::Discovery;
use follow::{Said, ThisRepository};
use overlay::Overlay;
use sandbox::{Failure, Sandbox};

/// One rendered object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// The object as the controller applies it (the origin annotation removed).
    pub object: Value,
    /// The file it came from (a repository path): the manifest a kustomization read, the
    /// kustomization that generated it, or the chart's template; else the unit's file.
    pub path: String,
    /// Its line in that file (1 when it cannot be known, as for a template).
    pub line: usize,
    /// The line of each field in that file, when the object was found there.
    pub lines: Lines,
}

/// A manifest file that is an object (or several) on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainFile {
    pub blob: ObjectId,
    /// The configured source it belongs to (`.` for the repository's root).
    pub source: Arc<str>,
    /// The source's namespace for namespaced objects that set none.
    pub namespace: Option<Arc<str>>,
}

/// A folder rendered by an engine: a kustomization or a chart.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The folder (a repository path, `""` for the root).
    pub dir: String,
    /// How messages and the diff name it: the folder, and the controller object whose build
    /// it is when followed (`apps/prod (Kustomization flux-system/apps)`).
    pub id: String,
    /// The controller object whose build it is (`Kustomization flux-system/apps`), when
    /// followed.
    pub by: Option<String>,
    /// [`Kind::Kustomize`] or [`Kind::Helm`].
    pub kind: Kind,
    /// The file findings about the unit point at: its kustomization or `Chart.yaml`.
    pub file: String,
    /// The namespace of its namespaced objects that set none.
    pub namespace: Option<String>,
    /// A digest of everything the render reads (see the module doc).
    pub key: String,
    /// What makes its output depend on the cluster (a chart that calls `lookup`, reads
    /// `.Capabilities.APIVersions`), with the template: Git alone cannot say what it applies.
    pub reads_cluster: Option<String>,
    helm: HelmSpec,
    /// What the controller changes in the build (a followed Kustomization's fields).
    overlay: Option<Arc<Overlay>>,
    /// The controller object's file and its patches: an object a patch changed is found
    /// there, at the patch's line.
    patched: Option<Arc<(String, Vec<follow::Patched>)>>,
    inputs: Result<Inputs, RenderError>,
}

impl Unit {
    /// The folder as messages name it.
    pub fn name(&self) -> &str {
        &self.id
    }
}

/// What a unit's render reads.
#[derive(Debug, Clone)]
struct Inputs {
    /// Folders written whole to the sandbox, with their kustomization's scan (kustomize).
    trees: Vec<(String, ObjectId, Option<Arc<Scanned>>)>,
    /// Single files written (Helm values files).
    blobs: Vec<(String, ObjectId)>,
    /// What Flux's generated kustomization of the folder lists, when it has none.
    generated: Option<Vec<String>>,
    /// The files of those folders that the controller's artifact leaves out (repository
    /// paths): never written to the sandbox, so the engine builds what the controller does.
    left_out: BTreeSet<String>,
}

/// The folders of `trees` under none of the others: written whole, with what is under them.
fn outermost(
    trees: &[(String, ObjectId, Option<Arc<Scanned>>)],
) -> impl Iterator<Item = (&str, ObjectId)> {
    trees
        .iter()
        .filter(|(dir, _, _)| {
            !trees
                .iter()
                .any(|(other, _, _)| other != dir && paths::under(dir, other))
        })
        .map(|(dir, tree, _)| (dir.as_str(), *tree))
}

/// A kustomization file and what it refers to.
#[derive(Debug)]
struct Scanned {
    file: String,
    scan: kustomize::Scan,
}

/// What a commit's sources hold.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Manifests that are objects on their own, by path.
    pub plain: BTreeMap<String, PlainFile>,
    /// Folders rendered by an engine.
    pub units: Vec<Unit>,
    /// Configured sources whose path the commit does not hold.
    pub absent: Vec<String>,
    /// What `follow` says of controller objects it does not follow (another repository, a
    /// chart from a chart repository, ...).
    pub said: Vec<Said>,
    /// The GitRepositories the followed sources hold, with their `spec.ignore`: what the
    /// cluster still holds while the next commit is applied ([`Renderer::layout_after`]).
    pub git_repositories: follow::GitRepositories,
}

impl Layout {
    /// Whether a render or a plain file of the layout reads `path` (a file of a rendered
    /// folder, a values file, a plain manifest).
    pub fn reads(&self, path: &str) -> bool {
        self.plain.contains_key(path)
            || self.units.iter().any(|u| match &u.inputs {
                // A chart reads its whole folder; a kustomization what it names.
                Ok(i) => {
                    i.blobs.iter().any(|(p, _)| p == path)
                        || i.trees.iter().any(|(d, _, scanned)| match scanned {
                            Some(s) => {
                                s.file == path
                                    || s.scan
                                        .references
                                        .iter()
                                        .any(|r| paths::join(d, &r.raw).is_some_and(|t| t == path))
                            }
                            None => paths::under(path, d),
                        })
                }
                Err(_) => paths::under(path, &u.dir),
            })
    }

    /// The plain files as path → blob.
    pub fn plain_files(&self) -> crate::git::Files {
        self.plain
            .iter()
            .map(|(p, f)| (p.clone(), f.blob))
            .collect()
    }
}

/// The result of rendering one unit, shared by every commit whose unit has the same key.
pub type Rendered = Arc<Result<Vec<Object>, RenderError>>;

/// Renders the configured sources of commits, with a cache shared by its clones.
#[derive(Clone)]
pub struct Renderer {
    sources: Arc<[SourceSpec]>,
    this: Arc<ThisRepository>,
    settings: Arc<Settings>,
    default_namespace: Arc<str>,
    cache: Arc<Mutex<Cache>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("sources", &self.sources)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new(Vec::new(), &[], Settings::default(), "default")
    }
}

/// A folder's tree, its path and the fingerprint of the exclusions it was read with.
type ScanKey = (ObjectId, String, u64);

/// Entries used by the current or the previous commit are kept.
#[derive(Default)]
struct Cache {
    generation: u64,
    /// (source, its tree, the commit's `.sourceignore` files) → what it holds.
    discovered: HashMap<(usize, ObjectId, u64), (u64, Arc<Discovery>)>,
    /// (a folder's tree, its path, the exclusions) → its kustomization, read.
    scans: HashMap<ScanKey, (u64, Option<Arc<Scanned>>)>,
    /// (a folder's tree, its path, the exclusions) → the files the artifact leaves out of it.
    left_out: HashMap<ScanKey, (u64, Arc<[String]>)>,
    /// (a chart's tree, its path, the exclusions) → what in its templates reads the cluster.
    cluster_reads: HashMap<ScanKey, (u64, Option<String>)>,
    outputs: HashMap<String, (u64, Rendered)>,
}

impl Renderer {
    /// A renderer of `sources`; with none, each of `paths` (or the whole repository) is an
    /// `auto` source. Helm releases without a namespace go to `default_namespace`.
    pub fn new(
        sources: Vec<SourceSpec>,
        paths: &[String],
        settings: Settings,
        default_namespace: &str,
    ) -> Renderer {
        let mut sources: Vec<SourceSpec> = if sources.is_empty() {
            let paths = if paths.is_empty() {
                vec![String::new()]
            } else {
                paths.to_vec()
            };
            paths
                .iter()
                .map(|p| SourceSpec {
                    path: p.clone(),
                    ..SourceSpec::default()
                })
                .collect()
        } else {
            sources
        };
        for s in &mut sources {
            s.path = paths::clean(&s.path);
        }
        Renderer {
            sources: sources.into(),
            this: Arc::new(ThisRepository {
                url: None,
                branch: "main".into(),
                learned: Vec::new(),
            }),
            settings: Arc::new(settings),
            default_namespace: default_namespace.into(),
            cache: Arc::default(),
        }
    }

    /// The repository `follow` takes as this one (`repository.url` and `branch`).
    pub fn with_repository(mut self, this: ThisRepository) -> Renderer {
        self.this = Arc::new(this);
        self
    }

    /// Whether a source whose output depends on the cluster is an error (`render.strict`).
    pub fn strict(&self) -> bool {
        self.settings.strict
    }

    /// The sources rendered (paths cleaned).
    pub fn sources(&self) -> &[SourceSpec] {
        &self.sources
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops what neither this commit nor the one before it used; called once per commit
    /// by a caller that renders commits one after another. `used` are the keys of the units
    /// the commit holds, with their renders where the caller holds them: they are kept
    /// whenever they were rendered (a window built at once lays out and renders every commit
    /// before folding them in, so the newest commit's renders are older than the folds), and
    /// the next commit's walk of followed sources finds them.
    pub fn end_commit<'a>(&self, used: impl IntoIterator<Item = (&'a str, Option<&'a Rendered>)>) {
        let mut cache = self.cache();
        let generation = cache.generation;
        for (key, rendered) in used {
            match (cache.outputs.get_mut(key), rendered) {
                (Some((g, _)), _) => *g = generation,
                (None, Some(r)) if !matches!(&**r, Err(e) if e.is_transient()) => {
                    cache
                        .outputs
                        .insert(key.to_string(), (generation, r.clone()));
                }
                (None, _) => {}
            }
        }
        cache.generation += 1;
        let keep = cache.generation.saturating_sub(1);
        cache.discovered.retain(|_, (g, _)| *g >= keep);
        cache.scans.retain(|_, (g, _)| *g >= keep);
        cache.left_out.retain(|_, (g, _)| *g >= keep);
        cache.cluster_reads.retain(|_, (g, _)| *g >= keep);
        cache.outputs.retain(|_, (g, _)| *g >= keep);
    }

    /// What source `source` (its index and folder) holds at `tree`, without what
    /// source-controller ignores.
    fn discovery(
        &self,
        at: &At<'_>,
        (source, dir): (usize, &str),
        kind: Kind,
        tree: ObjectId,
    ) -> Result<Arc<Discovery>, GitError> {
        let key = (source, tree, at.ignored_fingerprint);
        let generation = {
            let mut cache = self.cache();
            let generation = cache.generation;
            if let Some((g, d)) = cache.discovered.get_mut(&key) {
                *g = generation;
                return Ok(d.clone());
            }
            generation
        };
        let mut files = at.repo.tree_files(tree)?;
        files.retain(|p, _| !at.ignored.ignores(&paths::child(dir, p)));
        let discovery = Arc::new(discover::discover(kind, &files));
        self.cache()
            .discovered
            .insert(key, (generation, discovery.clone()));
        Ok(discovery)
    }

    /// The unit of `dir` rendered by `kind`, with its inputs and key.
    fn unit(&self, at: &At<'_>, dir: &str, kind: Kind, how: How<'_>) -> Result<Unit, GitError> {
        let How {
            helm,
            namespace,
            overlay,
            by,
        } = how;
        let (inputs, file) = match kind {
            Kind::Helm => (
                self.helm_inputs(at, dir, helm)?,
                paths::child(dir, "Chart.yaml"),
            ),
            _ => {
                let inputs = self.kustomize_inputs(at, dir, overlay.as_deref())?;
                let file = inputs
                    .as_ref()
                    .ok()
                    .and_then(|i| i.trees.first())
                    .and_then(|(_, _, s)| s.as_ref())
                    .map(|s| s.file.clone())
                    .unwrap_or_else(|| paths::child(dir, kustomize::FILE_NAMES[0]));
                (inputs, file)
            }
        };
        let mut digest = sha2::Sha256::new();
        digest.update(format!(
            "{}\n{dir}\n{namespace:?}\n{:?}\n{}\n",
            kind.as_str(),
            helm,
            self.default_namespace
        ));
        if let Some(o) = &overlay {
            digest.update(serde_json::to_string(&**o).unwrap_or_default());
            digest.update("\n");
        }
        match &inputs {
            Ok(i) => {
                for (path, id, _) in &i.trees {
                    digest.update(format!("tree {path} {id}\n"));
                }
                for (path, id) in &i.blobs {
                    digest.update(format!("blob {path} {id}\n"));
                }
                if let Some(g) = &i.generated {
                    digest.update(format!("generated {g:?}\n"));
                }
                for path in &i.left_out {
                    digest.update(format!("left out {path}\n"));
                }
            }
            Err(e) => digest.update(format!("error {e}\n")),
        }
        let reads_cluster = match (kind, &inputs) {
            (Kind::Helm, Ok(i)) => self.chart_reads_cluster(at, i)?,
            _ => None,
        };
        let id = match by {
            Some(by) => format!("{} ({by})", paths::display(dir)),
            None => paths::display(dir).to_string(),
        };
        Ok(Unit {
            dir: dir.to_string(),
            id,
            by: by.map(str::to_string),
            kind,
            file,
            namespace,
            key: hex::encode(digest.finalize()),
            reads_cluster,
            helm: helm.clone(),
            overlay,
            patched: None,
            inputs,
        })
    }

    /// Whether a chart's templates (its own and its vendored subcharts', but those the artifact
    /// leaves out) make its output depend on the cluster ([`helm::reads_cluster`]); memoized
    /// by the chart's tree, its path and the exclusions.
    fn chart_reads_cluster(
        &self,
        at: &At<'_>,
        inputs: &Inputs,
    ) -> Result<Option<String>, GitError> {
        for (dir, tree, _) in &inputs.trees {
            let key = (*tree, dir.clone(), at.ignored_fingerprint);
            {
                let mut cache = self.cache();
                let generation = cache.generation;
                if let Some((g, found)) = cache.cluster_reads.get_mut(&key) {
                    *g = generation;
                    if found.is_some() {
                        return Ok(found.clone());
                    }
                    continue;
                }
            }
            let mut found = None;
            for (path, blob) in at.repo.tree_files(*tree)? {
                let in_templates = path.starts_with("templates/") || path.contains("/templates/");
                if !in_templates {
                    continue;
                }
                let full = paths::child(dir, &path);
                if inputs.left_out.contains(&full) {
                    continue;
                }
                let text = String::from_utf8_lossy(&at.repo.read_blob(blob, &full)?).into_owned();
                if let Some(what) = helm::reads_cluster(&text) {
                    found = Some(format!("{what} ({full})"));
                    break;
                }
            }
            let mut cache = self.cache();
            let generation = cache.generation;
            cache.cluster_reads.insert(key, (generation, found.clone()));
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The kustomization of a folder (memoized by the folder's tree), `None` when it has
    /// none.
    fn scanned(
        &self,
        at: &At<'_>,
        dir: &str,
        tree: ObjectId,
    ) -> Result<Result<Option<Arc<Scanned>>, String>, GitError> {
        // A kustomization the controller leaves out is not there: what is left out depends
        // on where the tree is and on the exclusions.
        let key = (tree, dir.to_string(), at.ignored_fingerprint);
        {
            let mut cache = self.cache();
            let generation = cache.generation;
            if let Some((g, s)) = cache.scans.get_mut(&key) {
                *g = generation;
                return Ok(Ok(s.clone()));
            }
        }
        let mut found = None;
        for name in kustomize::FILE_NAMES {
            let file = paths::child(dir, name);
            if at.ignored.ignores(&file) {
                continue;
            }
            if let Some((blob, false)) = at.entry(&file)? {
                found = Some((file, blob));
                break;
            }
        }
        let scanned = match found {
            None => None,
            Some((file, blob)) => {
                let bytes = at.repo.read_blob(blob, &file)?;
                let text = String::from_utf8_lossy(&bytes);
                match kustomize::scan(&file, &text) {
                    Ok(scan) => Some(Arc::new(Scanned { file, scan })),
                    // Not cached: the message names this path.
                    Err(e) => return Ok(Err(e)),
                }
            }
        };
        let mut cache = self.cache();
        let generation = cache.generation;
        cache.scans.insert(key, (generation, scanned.clone()));
        Ok(Ok(scanned))
    }

    /// The folders a kustomization reads: its own and, transitively, those its resources,
    /// bases and components name. Remote and outside references are errors here, before
    /// anything runs.
    ///
    /// With an `overlay` (a followed controller object's build), a folder without a
    /// kustomization gets Flux's generated one, and the overlay's components are read too.
    fn kustomize_inputs(
        &self,
        at: &At<'_>,
        dir: &str,
        overlay: Option<&Overlay>,
    ) -> Result<Result<Inputs, RenderError>, GitError> {
        let unit = paths::display(dir).to_string();
        let mut trees: Vec<(String, ObjectId, Option<Arc<Scanned>>)> = Vec::new();
        let mut generated = None;
        let mut queue = vec![(dir.to_string(), None::<(String, &'static str, String)>)];
        if let Some(o) = overlay {
            let file = paths::child(dir, kustomize::FILE_NAMES[0]);
            for c in o.components.iter().rev() {
                match paths::join(dir, c) {
                    Some(target) => {
                        queue.insert(0, (target, Some((file.clone(), "components", c.clone()))))
                    }
                    None => {
                        return Ok(Err(RenderError::Outside {
                            unit,
                            file,
                            field: "components".into(),
                            reference: c.clone(),
                        }));
                    }
                }
            }
        }
        while let Some((folder, referrer)) = queue.pop() {
            if trees.iter().any(|(d, _, _)| *d == folder) {
                continue;
            }
            let missing = |what: &str| match &referrer {
                Some((file, field, raw)) => RenderError::Missing {
                    unit: unit.clone(),
                    file: file.clone(),
                    field: field.to_string(),
                    reference: format!("{raw} ({what})"),
                },
                None => RenderError::Source {
                    unit: unit.clone(),
                    message: format!("{what}: nothing to build"),
                },
            };
            let tree = match at.entry(&folder)? {
                Some((tree, true)) => tree,
                Some((_, false)) => return Ok(Err(missing("a file, not a folder"))),
                None => return Ok(Err(missing("no such folder"))),
            };
            let scanned = match self.scanned(at, &folder, tree)? {
                Ok(Some(s)) => s,
                Ok(None) if overlay.is_some() && folder == dir => {
                    // Flux's generated kustomization: every YAML file and the outermost
                    // folders holding a kustomization, without what the artifact leaves out.
                    let mut files = at.repo.tree_files(tree)?;
                    files.retain(|p, _| !at.ignored.ignores(&paths::child(dir, p)));
                    let (plain, built) = discover::generated(&files);
                    let list: Vec<String> = plain.into_iter().chain(built).collect();
                    let scan = kustomize::Scan {
                        references: list
                            .iter()
                            .map(|raw| kustomize::Reference {
                                field: "resources",
                                raw: raw.clone(),
                                may_be_folder: true,
                            })
                            .collect(),
                        ..kustomize::Scan::default()
                    };
                    generated = Some(list);
                    Arc::new(Scanned {
                        file: paths::child(dir, kustomize::FILE_NAMES[0]),
                        scan,
                    })
                }
                Ok(None) => {
                    return Ok(Err(missing(&format!(
                        "{} holds no kustomization.yaml",
                        paths::display(&folder)
                    ))));
                }
                Err(message) => {
                    return Ok(Err(RenderError::Source { unit, message }));
                }
            };
            for r in &scanned.scan.references {
                let problem =
                    |reference: String| (scanned.file.clone(), r.field.to_string(), reference);
                if r.may_be_folder && kustomize::is_remote(&r.raw) {
                    let (file, field, reference) = problem(r.raw.clone());
                    return Ok(Err(RenderError::Remote {
                        unit,
                        file,
                        field,
                        reference,
                    }));
                }
                let Some(target) = paths::join(&folder, &r.raw) else {
                    let (file, field, reference) = problem(r.raw.clone());
                    return Ok(Err(RenderError::Outside {
                        unit,
                        file,
                        field,
                        reference,
                    }));
                };
                if !r.may_be_folder {
                    continue;
                }
                match at.entry(&target)? {
                    Some((_, true)) => {
                        queue.push((target, Some((scanned.file.clone(), r.field, r.raw.clone()))))
                    }
                    Some((_, false)) => {}
                    None => {
                        let (file, field, reference) = problem(r.raw.clone());
                        return Ok(Err(RenderError::Missing {
                            unit,
                            file,
                            field,
                            reference,
                        }));
                    }
                }
            }
            trees.push((folder, tree, Some(scanned)));
        }
        // The folder itself first: its kustomization is the top one.
        if let Some(i) = trees.iter().position(|(d, _, _)| d == dir) {
            let top = trees.remove(i);
            trees.insert(0, top);
        }
        let left_out = self.left_out(at, &trees)?;
        Ok(Ok(Inputs {
            trees,
            blobs: Vec::new(),
            generated,
            left_out,
        }))
    }

    /// A chart's folder and its values files.
    fn helm_inputs(
        &self,
        at: &At<'_>,
        dir: &str,
        helm: &HelmSpec,
    ) -> Result<Result<Inputs, RenderError>, GitError> {
        let unit = paths::display(dir).to_string();
        let source_error = |message: String| {
            Ok(Err(RenderError::Source {
                unit: unit.clone(),
                message,
            }))
        };
        let tree = match at.entry(dir)? {
            Some((tree, true)) => tree,
            _ => return source_error("no such folder: no chart to template".into()),
        };
        let chart = paths::child(dir, "Chart.yaml");
        if !matches!(at.entry(&chart)?, Some((_, false))) {
            return source_error(format!("{chart} is missing: not a Helm chart"));
        }
        let mut blobs = Vec::new();
        for f in &helm.value_files {
            let Some(path) = paths::join(dir, f) else {
                return Ok(Err(RenderError::Outside {
                    unit,
                    file: "repository.sources".into(),
                    field: "helm.valueFiles".into(),
                    reference: f.clone(),
                }));
            };
            // A file the controller leaves out is not there for it.
            let entry = match at.ignored.ignores(&path) {
                true => None,
                false => at.entry(&path)?,
            };
            match entry {
                Some((blob, false)) => blobs.push((path, blob)),
                None if helm.ignore_missing_values_files => {}
                _ => {
                    return Ok(Err(RenderError::Missing {
                        unit,
                        file: "repository.sources".into(),
                        field: "helm.valueFiles".into(),
                        reference: f.clone(),
                    }));
                }
            }
        }
        let trees = vec![(dir.to_string(), tree, None)];
        let left_out = self.left_out(at, &trees)?;
        Ok(Ok(Inputs {
            trees,
            blobs,
            generated: None,
            left_out,
        }))
    }

    /// The files of the folders `trees` writes that the artifact `at` reads leaves out
    /// (memoized by each folder's tree, its path and the exclusions).
    fn left_out(
        &self,
        at: &At<'_>,
        trees: &[(String, ObjectId, Option<Arc<Scanned>>)],
    ) -> Result<BTreeSet<String>, GitError> {
        let mut all = BTreeSet::new();
        for (dir, tree) in outermost(trees) {
            let key = (tree, dir.to_string(), at.ignored_fingerprint);
            let cached = {
                let mut cache = self.cache();
                let generation = cache.generation;
                cache.left_out.get_mut(&key).map(|(g, found)| {
                    *g = generation;
                    found.clone()
                })
            };
            let found = match cached {
                Some(found) => found,
                None => {
                    let found: Arc<[String]> = at
                        .repo
                        .tree_files(tree)?
                        .into_keys()
                        .map(|rel| paths::child(dir, &rel))
                        .filter(|path| at.ignored.ignores(path))
                        .collect();
                    let mut cache = self.cache();
                    let generation = cache.generation;
                    cache.left_out.insert(key, (generation, found.clone()));
                    found
                }
            };
            all.extend(found.iter().cloned());
        }
        Ok(all)
    }

    /// Renders `units` (from [`Renderer::layout`] of the same repository), from the cache
    /// where their key was rendered before, else in sandboxes, as many at once as the
    /// machine has cores. One result per unit, in order.
    pub fn render(&self, repo: &Repo, units: &[&Unit]) -> Vec<Rendered> {
        // One render per distinct key.
        let mut by_key: HashMap<&str, Option<Rendered>> = HashMap::new();
        {
            let mut cache = self.cache();
            let generation = cache.generation;
            for unit in units {
                let hit = cache.outputs.get_mut(&unit.key).map(|(g, r)| {
                    *g = generation;
                    r.clone()
                });
                by_key.insert(&unit.key, hit);
            }
        }
        let mut jobs = Vec::new();
        for unit in units {
            if let Some(slot @ None) = by_key.get_mut(unit.key.as_str()) {
                match self.prepare(repo, unit) {
                    Ok(job) => jobs.push(job),
                    Err(e) => *slot = Some(Arc::new(Err(e))),
                }
                // Prepared once: later units of the same key share its result. Until a
                // worker gives it (a worker that panics never does), it is an error.
                if slot.is_none() {
                    *slot = Some(Arc::new(Err(RenderError::Io {
                        unit: unit.name().to_string(),
                        message: "the render did not finish".into(),
                    })));
                }
            }
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(jobs.len())
            .max(1);
        let queue = Mutex::new(jobs.into_iter());
        let done: Vec<(String, Rendered)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
                            let Some(job) = next else { break };
                            let key = job.unit.key.clone();
                            out.push((key, Arc::new(job.run(&self.settings))));
                        }
                        out
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect()
        });
        let mut cache = self.cache();
        let generation = cache.generation;
        for (key, rendered) in done {
            if let Some(slot) = by_key.get_mut(key.as_str()) {
                *slot = Some(rendered.clone());
            }
            if !matches!(&*rendered, Err(e) if e.is_transient()) {
                cache.outputs.insert(key, (generation, rendered));
            }
        }
        units
            .iter()
            .map(|unit| {
                by_key
                    .get(unit.key.as_str())
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| {
                        Arc::new(Err(RenderError::Io {
                            unit: unit.name().to_string(),
                            message: "the render did not finish".into(),
                        }))
                    })
            })
            .collect()
    }

    /// Writes a unit's inputs into a sandbox and checks them, ready to run.
    fn prepare(&self, repo: &Repo, unit: &Unit) -> Result<Job, RenderError> {
        let inputs = unit.inputs.clone()?;
        let name = unit.name().to_string();
        let io = |message: String| RenderError::Io {
            unit: name.clone(),
            message,
        };
        let sandbox = Sandbox::new().map_err(|e| io(format!("cannot make a sandbox: {e}")))?;
        // Nested folders are written once, with their parent; what the artifact leaves out,
        // never.
        for (dir, tree) in outermost(&inputs.trees) {
            sandbox
                .write_tree(repo, dir, tree, &inputs.left_out)
                .map_err(|e| io(e.to_string()))?;
        }
        for (path, blob) in &inputs.blobs {
            sandbox
                .write_blob(repo, path, *blob)
                .map_err(|e| io(e.to_string()))?;
        }
        match unit.kind {
            Kind::Helm => self.prepare_helm(unit, sandbox),
            _ => self.prepare_kustomize(unit, &inputs, sandbox),
        }
    }

    fn prepare_kustomize(
        &self,
        unit: &Unit,
        inputs: &Inputs,
        sandbox: Sandbox,
    ) -> Result<Job, RenderError> {
        let name = unit.name().to_string();
        // What would run a program is refused before kustomize runs.
        for (dir, _, scanned) in &inputs.trees {
            let Some(scanned) = scanned else { continue };
            let plugin = |what: String| RenderError::Plugin {
                unit: name.clone(),
                file: scanned.file.clone(),
                what,
            };
            if scanned.scan.helm_charts {
                return Err(plugin(
                    "helmCharts would run helm and pull the chart; make the chart a helm source \
                     (repository.sources) instead"
                        .into(),
                ));
            }
            for (field, raw) in &scanned.scan.plugins {
                let (label, text) = if raw.contains('\n') {
                    (format!("an inline entry of {field}"), raw.clone())
                } else {
                    let Some(path) = paths::join(dir, raw) else {
                        return Err(RenderError::Outside {
                            unit: name.clone(),
                            file: scanned.file.clone(),
                            field: field.to_string(),
                            reference: raw.clone(),
                        });
                    };
                    let on_disk = sandbox.repo().join(&path);
                    if on_disk.is_dir() {
                        return Err(plugin(format!(
                            "{field}: {raw} is a folder of plugin configurations"
                        )));
                    }
                    match std::fs::read_to_string(&on_disk) {
                        Ok(text) => (format!("{field}: {raw}"), text),
                        Err(_) => {
                            return Err(RenderError::Missing {
                                unit: name.clone(),
                                file: scanned.file.clone(),
                                field: field.to_string(),
                                reference: raw.clone(),
                            });
                        }
                    }
                };
                let docs = manifest::parse_str(&label, &text).map_err(|e| RenderError::Source {
                    unit: name.clone(),
                    message: e.to_string(),
                })?;
                for d in docs {
                    if let Some(problem) = kustomize::plugin_problem(&d.value) {
                        return Err(plugin(format!("{label}: {problem}")));
                    }
                }
            }
        }
        // Origin annotations on the copy of the top kustomization, unless a kustomization of
        // the build asks for them itself: then the controller applies them, and they stay.
        let top = inputs.trees.first().and_then(|(_, _, s)| s.clone());
        let own_origins = inputs
            .trees
            .iter()
            .any(|(_, _, s)| s.as_ref().is_some_and(|s| s.scan.origin_annotations));
        let mut original = None;
        let mut added_origins = false;
        if let (Some(top), Some(overlay)) = (&top, &unit.overlay) {
            // The controller's fields merged into the kustomization (or into the one Flux
            // generates), read and written again as the controller does.
            let current = match &inputs.generated {
                Some(_) => None,
                None => {
                    let text =
                        std::fs::read_to_string(sandbox.repo().join(&top.file)).map_err(|e| {
                            RenderError::Io {
                                unit: name.clone(),
                                message: format!("cannot read {}: {e}", top.file),
                            }
                        })?;
                    if let Some((line, what)) = manifest::disputed(&text) {
                        return Err(RenderError::Source {
                            unit: name.clone(),
                            message: format!(
                                "{}:{line}: uses {what}, which YAML readers read differently: {} merges its fields into this kustomization through its own reader; write the values out",
                                top.file,
                                unit.by.as_deref().unwrap_or("the controller")
                            ),
                        });
                    }
                    let docs =
                        manifest::parse_str(&top.file, &text).map_err(|e| RenderError::Source {
                            unit: name.clone(),
                            message: e.to_string(),
                        })?;
                    original = Some((top.file.clone(), text));
                    docs.into_iter()
                        .find(|d| !d.value.is_null())
                        .map(|d| d.value)
                }
            };
            let mut k = overlay.kustomization(current, inputs.generated.as_deref().unwrap_or(&[]));
            if !own_origins {
                added_origins = true;
                let metadata = k.as_object_mut().map(|k| {
                    k.entry("buildMetadata")
                        .or_insert_with(|| Value::Array(Vec::new()))
                });
                if let Some(Value::Array(m)) = metadata {
                    m.push(Value::String("originAnnotations".into()));
                }
            }
            let text = serde_json::to_string_pretty(&k).unwrap_or_default();
            // A kustomization named otherwise is replaced by the one written.
            for n in kustomize::FILE_NAMES {
                let _ = std::fs::remove_file(sandbox.repo().join(paths::child(&unit.dir, n)));
            }
            let file = paths::child(&unit.dir, kustomize::FILE_NAMES[0]);
            sandbox
                .write_file(&file, text.as_bytes())
                .map_err(|e| RenderError::Io {
                    unit: name.clone(),
                    message: e.to_string(),
                })?;
        } else if let (Some(top), false) = (&top, own_origins) {
            let on_disk = sandbox.repo().join(&top.file);
            let text = std::fs::read_to_string(&on_disk).map_err(|e| RenderError::Io {
                unit: name.clone(),
                message: format!("cannot read {}: {e}", top.file),
            })?;
            if let Some(with) = kustomize::with_origin_annotations(&text) {
                original = Some((top.file.clone(), text));
                added_origins = true;
                sandbox
                    .write_file(&top.file, with.as_bytes())
                    .map_err(|e| RenderError::Io {
                        unit: name.clone(),
                        message: e.to_string(),
                    })?;
            }
        }
        let (program, sub) =
            kustomize_binary(&self.settings).ok_or_else(|| RenderError::Unavailable {
                unit: name.clone(),
                engine: "kustomize".into(),
                message: "neither kustomize nor kubectl is on PATH (set render.kustomizeBinary)"
                    .into(),
            })?;
        let mut cmd = sandbox.command(&program);
        cmd.arg(sub)
            .arg(sandbox.repo().join(&unit.dir))
            .args(["--load-restrictor", "LoadRestrictionsRootOnly"]);
        Ok(Job {
            unit: unit.clone(),
            engine: if sub == "kustomize" {
                "kubectl kustomize"
            } else {
                "kustomize build"
            },
            sandbox,
            cmd,
            strip_origins: added_origins,
            original,
        })
    }

    fn prepare_helm(&self, unit: &Unit, sandbox: Sandbox) -> Result<Job, RenderError> {
        let name = unit.name().to_string();
        let chart_dir = sandbox.repo().join(&unit.dir);
        // Dependencies must be vendored: helm template never pulls them here.
        let chart_yaml = std::fs::read_to_string(chart_dir.join("Chart.yaml")).unwrap_or_default();
        let requirements = std::fs::read_to_string(chart_dir.join("requirements.yaml")).ok();
        let mut vendored = Vec::new();
        if let Ok(entries) = std::fs::read_dir(chart_dir.join("charts")) {
            for entry in entries.flatten() {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().join("Chart.yaml").is_file() {
                    vendored.push(format!("{file_name}/Chart.yaml"));
                } else if entry.path().is_file() {
                    vendored.push(file_name);
                }
            }
        }
        for dep in helm::dependencies(&chart_yaml, requirements.as_deref()) {
            if !helm::is_vendored(&dep, &vendored) {
                return Err(RenderError::Dependency {
                    unit: name,
                    repository: if dep.repository.is_empty() {
                        "no repository".into()
                    } else {
                        dep.repository
                    },
                    name: dep.name,
                });
            }
        }
        let program = self
            .settings
            .helm_binary
            .clone()
            .or_else(|| sandbox::which("helm"))
            .ok_or_else(|| RenderError::Unavailable {
                unit: name.clone(),
                engine: "helm".into(),
                message: "helm is not on PATH (set render.helmBinary)".into(),
            })?;
        let release = unit.helm.release_name.clone().unwrap_or_else(|| {
            unit.dir
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("release")
                .to_string()
        });
        let namespace = unit
            .namespace
            .clone()
            .unwrap_or_else(|| self.default_namespace.to_string());
        let mut cmd = sandbox.command(&program);
        cmd.arg("template")
            .arg(&release)
            .arg(&chart_dir)
            .arg("--namespace")
            .arg(&namespace);
        if unit.helm.include_crds.unwrap_or(true) {
            cmd.arg("--include-crds");
        }
        // Flux's values files are the chart's defaults: its own values.yaml is moved out of
        // the chart (read from there only where the list names it) and an empty one left.
        let own_values = paths::child(&unit.dir, "values.yaml");
        let moved = sandbox.path("chart-values.yaml");
        if unit.helm.replace_chart_values {
            let on_disk = sandbox.repo().join(&own_values);
            // A chart need not have a values.yaml: then there is nothing to move.
            let held = match std::fs::read(&on_disk) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                read => read,
            };
            held.and_then(|held| std::fs::write(&moved, held))
                .and_then(|()| std::fs::write(&on_disk, b"{}\n"))
                .map_err(|e| RenderError::Io {
                    unit: name.clone(),
                    message: format!("cannot set the chart's values from its values files: {e}"),
                })?;
        }
        for f in &unit.helm.value_files {
            if let Some(path) = paths::join(&unit.dir, f) {
                let on_disk = if unit.helm.replace_chart_values && path == own_values {
                    moved.clone()
                } else {
                    sandbox.repo().join(&path)
                };
                // What the unit's inputs hold (a file left out, missing or excluded, only
                // with ignoreMissingValuesFiles, is not there for the controller either).
                let held = unit
                    .inputs
                    .as_ref()
                    .is_ok_and(|i| i.blobs.iter().any(|(p, _)| *p == path));
                if held {
                    cmd.arg("--values").arg(on_disk);
                }
            }
        }
        if let Some(values) = &unit.helm.values {
            let file: PathBuf = sandbox.path("values-inline.json");
            std::fs::write(&file, values.to_string()).map_err(|e| RenderError::Io {
                unit: name.clone(),
                message: format!("cannot write the inline values: {e}"),
            })?;
            cmd.arg("--values").arg(file);
        }
        cmd.arg("--repository-cache")
            .arg(sandbox.path("helm/cache/repository"))
            .arg("--repository-config")
            .arg(sandbox.path("helm/repositories.yaml"))
            .arg("--registry-config")
            .arg(sandbox.path("helm/registry.json"));
        Ok(Job {
            unit: unit.clone(),
            engine: "helm template",
            sandbox,
            cmd,
            strip_origins: false,
            original: None,
        })
    }
}

/// The kustomize program and its subcommand: `render.kustomizeBinary` (run as
/// `kubectl kustomize` when it is named `kubectl`), else `kustomize build`, else
/// `kubectl kustomize`.
fn kustomize_binary(settings: &Settings) -> Option<(PathBuf, &'static str)> {
    let sub = |p: &std::path::Path| {
        if p.file_name().is_some_and(|n| n == "kubectl") {
            "kustomize"
        } else {
            "build"
        }
    };
    if let Some(b) = &settings.kustomize_binary {
        return Some((b.clone(), sub(b)));
    }
    sandbox::which("kustomize")
        .map(|p| (p, "build"))
        .or_else(|| sandbox::which("kubectl").map(|p| (p, "kustomize")))
}

/// How a unit is built: the chart's options, the namespace of its objects that set none,
/// what the controller changes in the build, and the controller object it is followed from.
struct How<'a> {
    helm: &'a HelmSpec,
    namespace: Option<String>,
    overlay: Option<Arc<Overlay>>,
    by: Option<&'a str>,
}

impl<'a> How<'a> {
    /// As a configured source says.
    fn of(spec: &'a SourceSpec, kind: Kind) -> How<'a> {
        How {
            helm: &spec.helm,
            namespace: match kind {
                Kind::Helm => spec.helm.namespace.clone().or(spec.namespace.clone()),
                _ => spec.namespace.clone(),
            },
            overlay: None,
            by: None,
        }
    }
}

/// Where plain files and units come from: the source (its index and folder; a followed
/// folder has its own), the namespace it gives, the controller object it is followed from.
struct Place<'a> {
    source: (usize, &'a str),
    namespace: Option<&'a str>,
    by: Option<&'a str>,
}

/// A commit's tree, its paths looked up once per layout.
struct At<'a> {
    repo: &'a Repo,
    root: ObjectId,
    /// What source-controller leaves out of the commit's artifact.
    ignored: ignore::Ignored,
    /// A digest of the `.sourceignore` files (what the exclusions depend on).
    ignored_fingerprint: u64,
    /// The GitRepositories the cluster holds while this commit is applied, where known (the
    /// layout before it): their `spec.ignore` leaves files out of an artifact too.
    cluster: Option<&'a follow::GitRepositories>,
    seen: std::cell::RefCell<HashMap<String, Option<(ObjectId, bool)>>>,
}

impl<'a> At<'a> {
    fn new(
        repo: &'a Repo,
        commit: ObjectId,
        cluster: Option<&'a follow::GitRepositories>,
    ) -> Result<At<'a>, GitError> {
        let ignored = ignore::Ignored::of(repo, commit)?;
        let ignored_fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            ignored.files.hash(&mut h);
            h.finish()
        };
        Ok(At {
            repo,
            root: repo.root_tree(commit)?,
            ignored,
            ignored_fingerprint,
            cluster,
            seen: Default::default(),
        })
    }

    /// The same commit read with other exclusions: a followed object's controller's (Flux
    /// with its GitRepository's `spec.ignore`, or Argo CD, which leaves nothing out). `None`
    /// where they are this commit's own.
    fn excluding(&self, exclusions: &follow::Exclusions) -> Option<At<'a>> {
        match exclusions {
            follow::Exclusions::Flux { ignore: None, .. } => None,
            follow::Exclusions::Flux {
                ignore: Some(patterns),
                ..
            } => Some(self.with_spec_ignore(Some(patterns))),
            follow::Exclusions::None => {
                Some(self.with_ignored(ignore::Ignored::nothing(), "\0argocd"))
            }
        }
    }

    /// The same commit as a GitRepository with `patterns` for `spec.ignore` packages it
    /// (none: the commit's own exclusions).
    fn with_spec_ignore(&self, patterns: Option<&str>) -> At<'a> {
        match patterns {
            Some(p) => self.with_ignored(self.ignored.with_patterns(p), p),
            None => At {
                ignored: self.ignored.clone(),
                cluster: self.cluster,
                seen: self.seen.clone(),
                ..*self
            },
        }
    }

    /// The same commit with `ignored` for exclusions (`salt` tells them from the commit's
    /// own in the caches' keys).
    fn with_ignored(&self, ignored: ignore::Ignored, salt: &str) -> At<'a> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.ignored_fingerprint, salt).hash(&mut h);
        At {
            repo: self.repo,
            root: self.root,
            ignored,
            ignored_fingerprint: h.finish(),
            cluster: self.cluster,
            seen: self.seen.clone(),
        }
    }

    /// The other artifacts Flux applies of this commit for a target with `exclusions`: a
    /// GitRepository the cluster holds (see [`At::cluster`]) with another `spec.ignore` than
    /// the one written here packages the commit with the cluster's first, and Flux applies
    /// that artifact before the GitRepository written here replaces it. Each with the
    /// GitRepository and its `spec.ignore`, for messages.
    fn cluster_artifacts(&self, exclusions: &follow::Exclusions) -> Vec<(At<'a>, String)> {
        let follow::Exclusions::Flux {
            repositories,
            ignore,
        } = exclusions
        else {
            return Vec::new();
        };
        let Some(cluster) = self.cluster else {
            return Vec::new();
        };
        let mut held: Vec<(&String, &Option<String>)> = Vec::new();
        for r in repositories {
            for i in cluster.get(r).into_iter().flatten() {
                if i != ignore && !held.iter().any(|(_, h)| *h == i) {
                    held.push((r, i));
                }
            }
        }
        held.into_iter()
            .map(|(repository, patterns)| {
                let what = match patterns {
                    Some(p) => format!("its spec.ignore {:?}", p.trim_end()),
                    None => "no spec.ignore".to_string(),
                };
                (
                    self.with_spec_ignore(patterns.as_deref()),
                    format!("GitRepository {repository} as the cluster holds it ({what})"),
                )
            })
            .collect()
    }

    /// What `path` names (see [`Repo::entry_in`]).
    fn entry(&self, path: &str) -> Result<Option<(ObjectId, bool)>, GitError> {
        if let Some(found) = self.seen.borrow().get(path) {
            return Ok(*found);
        }
        let found = self.repo.entry_in(self.root, path)?;
        self.seen.borrow_mut().insert(path.to_string(), found);
        Ok(found)
    }
}

/// A prepared render: the sandbox and the engine's command.
struct Job {
    unit: Unit,
    engine: &'static str,
    sandbox: Sandbox,
    cmd: std::process::Command,
    /// Remove the origin annotations gitgate added.
    strip_origins: bool,
    /// The top kustomization as Git holds it (path, text), when the sandbox holds a copy
    /// with origin annotations.
    original: Option<(String, String)>,
}

impl Job {
    fn run(mut self, settings: &Settings) -> Result<Vec<Object>, RenderError> {
        let unit = self.unit.name().to_string();
        let engine = self.engine.to_string();
        let cmd = std::mem::replace(&mut self.cmd, std::process::Command::new("true"));
        // The engine names files by their place in the sandbox: by their repository path here.
        let checkout = self.sandbox.repo().display().to_string();
        let relative = |message: String| {
            message
                .replace(&format!("{checkout}/"), "")
                .replace(&checkout, ".")
        };
        let output = sandbox::run(cmd, settings.timeout, settings.max_output_bytes).map_err(
            |f| match f {
                Failure::Spawn(e) => RenderError::Unavailable {
                    unit: unit.clone(),
                    engine: engine.clone(),
                    message: e.to_string(),
                },
                Failure::Exit(message) => RenderError::Engine {
                    unit: unit.clone(),
                    engine: engine.clone(),
                    message: said_left_out(
                        relative(if self.unit.kind == Kind::Kustomize {
                            kustomize::message(&message)
                        } else {
                            message.trim_start_matches("Error: ").to_string()
                        }),
                        &self.unit,
                    ),
                },
                Failure::Timeout => RenderError::Timeout {
                    unit: unit.clone(),
                    engine: engine.clone(),
                    limit: humantime::format_duration(settings.timeout).to_string(),
                },
                Failure::TooLarge => RenderError::TooLarge {
                    unit: unit.clone(),
                    engine: engine.clone(),
                    limit: settings.max_output_bytes,
                },
            },
        )?;
        let text = String::from_utf8(output).map_err(|_| RenderError::Output {
            unit: unit.clone(),
            engine: engine.clone(),
            message: "not UTF-8 text".into(),
        })?;
        objects(&self.unit, &engine, &text, &self)
    }
}

/// An engine's message, saying which of the files it names the artifact leaves out: they are
/// in Git, but not in what the controller builds from (nor in the sandbox).
fn said_left_out(message: String, unit: &Unit) -> String {
    let named: Vec<&str> = match &unit.inputs {
        Ok(i) => i
            .left_out
            .iter()
            .filter(|path| mentions(&message, path))
            .map(String::as_str)
            .collect(),
        Err(_) => Vec::new(),
    };
    if named.is_empty() {
        return message;
    }
    format!(
        "{message} ({} left out of the artifact by .sourceignore, spec.ignore or \
         source-controller's default exclusions)",
        named.join(", ")
    )
}

/// Whether `text` names the repository path `path` whole (not as a part of a longer path; a
/// full stop may end the sentence).
fn mentions(text: &str, path: &str) -> bool {
    let in_path = |c: char| c.is_alphanumeric() || "_-/".contains(c);
    text.match_indices(path).any(|(at, _)| {
        let rest = &text[at + path.len()..];
        let longer = rest.starts_with(in_path)
            || rest
                .strip_prefix('.')
                .is_some_and(|r| r.starts_with(in_path));
        let within = text[..at]
            .chars()
            .next_back()
            .is_some_and(|c| in_path(c) || c == '.');
        !longer && !within
    })
}

/// The objects of an engine's output, each with the file it came from.
fn objects(unit: &Unit, engine: &str, text: &str, job: &Job) -> Result<Vec<Object>, RenderError> {
    let sandbox = &job.sandbox;
    let name = unit.name().to_string();
    let sources = if unit.kind == Kind::Helm {
        helm::sources(&unit.dir, text)
    } else {
        Vec::new()
    };
    let from = |line: usize| -> String {
        helm::source_of(&sources, line)
            .map(|s| format!(" (from {s})"))
            .unwrap_or_default()
    };
    let output_error = |message: String| RenderError::Output {
        unit: name.clone(),
        engine: engine.to_string(),
        message,
    };
    let docs = manifest::parse_str("output", text).map_err(|e| {
        let line = e.line().unwrap_or(0);
        let text = e.to_string();
        let message = text
            .strip_prefix(&format!("output:{line}: "))
            .unwrap_or(&text)
            .to_string();
        output_error(format!("line {line}{}: {message}", from(line)))
    })?;
    let mut files: HashMap<String, Option<Vec<manifest::Document>>> = HashMap::new();
    let mut out = Vec::new();
    for mut doc in manifest::expand_lists(docs) {
        if doc.value.is_null() {
            continue;
        }
        if !doc.value.is_object() {
            return Err(output_error(format!(
                "line {}{}: a document that is not a mapping",
                doc.line,
                from(doc.line)
            )));
        }
        // What the controller does after the build (substitutions, common metadata).
        if let Some(overlay) = &unit.overlay {
            let value = std::mem::take(&mut doc.value);
            doc.value = overlay
                .after_build(value)
                .map_err(|e| RenderError::Source {
                    unit: name.clone(),
                    message: format!(
                        "{} (postBuild): {e}",
                        unit.by.as_deref().unwrap_or("the controller")
                    ),
                })?;
        }
        let Some(identity) = Identity::of_object(&doc.value) else {
            return Err(output_error(format!(
                "line {}{}: a document with no apiVersion, kind or metadata.name",
                doc.line,
                from(doc.line)
            )));
        };
        let mut object = doc.value;
        let (path, line, lines) = match unit.kind {
            Kind::Helm => (
                helm::source_of(&sources, doc.line)
                    .map(str::to_string)
                    .unwrap_or_else(|| unit.file.clone()),
                1,
                Lines::default(),
            ),
            _ => match kustomize::origin(&unit.dir, &object) {
                Some(kustomize::Origin::File(path)) => {
                    let docs = files.entry(path.clone()).or_insert_with(|| {
                        std::fs::read(sandbox.repo().join(&path))
                            .ok()
                            .and_then(|b| manifest::parse_bytes(&path, &b).ok())
                    });
                    match docs.as_ref().and_then(|d| locate(d, &identity)) {
                        Some(d) => {
                            // Lines of the file only where the build kept its value: a field
                            // the build set or changed (a prefix, an image, a patch) is not
                            // on that line.
                            let mut lines = d.lines.clone();
                            let mut changed = false;
                            lines.retain(|pointer| {
                                let kept = match (d.value.pointer(pointer), object.pointer(pointer))
                                {
                                    (Some(a @ (Value::Object(_) | Value::Array(_))), Some(b)) => {
                                        a.is_object() == b.is_object()
                                            && a.is_array() == b.is_array()
                                    }
                                    (Some(a), Some(b)) => a == b,
                                    _ => false,
                                };
                                changed |= !kept && !pointer.starts_with("/metadata");
                                kept
                            });
                            // What a controller object's patch changed is found at the patch.
                            let patch = unit.patched.as_ref().filter(|_| changed).and_then(|p| {
                                p.1.iter()
                                    .find(|x| x.targets(&object))
                                    .map(|x| (p.0.clone(), x.line))
                            });
                            match patch {
                                Some((file, line)) => (file, line, Lines::default()),
                                None => (path, d.line, lines),
                            }
                        }
                        None => (path, 1, Lines::default()),
                    }
                }
                Some(kustomize::Origin::Generated { file, generator }) => {
                    let text = match &job.original {
                        Some((path, text)) if *path == file => Some(text.clone()),
                        _ => std::fs::read_to_string(sandbox.repo().join(&file)).ok(),
                    };
                    let line = text
                        .and_then(|t| generator_line(&t, &generator))
                        .unwrap_or(1);
                    (file, line, Lines::default())
                }
                None => (unit.file.clone(), 1, Lines::default()),
            },
        };
        if job.strip_origins {
            kustomize::strip_origin(&mut object);
        }
        out.push(Object {
            object,
            path,
            line,
            lines,
        });
    }
    Ok(out)
}

/// The document of a file an object was built from: the one of the same kind whose name the
/// object's name contains (a prefix or suffix may have been added), else the only one of
/// that kind.
fn locate<'a>(docs: &'a [manifest::Document], id: &Identity) -> Option<&'a manifest::Document> {
    let same_kind: Vec<&manifest::Document> = docs
        .iter()
        .filter(|d| d.value.get("kind").and_then(Value::as_str) == Some(id.kind.as_str()))
        .collect();
    let named = |d: &&manifest::Document| {
        d.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty() && id.name.contains(n))
    };
    same_kind
        .iter()
        .copied()
        .filter(named)
        .max_by_key(|d| {
            d.value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map_or(0, str::len)
        })
        .or_else(|| (same_kind.len() == 1).then(|| same_kind[0]))
}

/// The line of a generator's field (`configMapGenerator:`) in a kustomization.
fn generator_line(text: &str, generator: &str) -> Option<usize> {
    let mut field = generator.to_string();
    if let Some(first) = field.get(..1) {
        field = first.to_ascii_lowercase() + &field[1..];
    }
    text.lines()
        .position(|l| l.trim_start().starts_with(&format!("{field}:")))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn a_message_mentions_a_path_only_whole() {
        let message =
            "accumulating resources from 'extra.yaml': lstat apps/web/extra.yaml: no such file";
        assert!(mentions(message, "apps/web/extra.yaml"));
        assert!(!mentions(message, "web/extra.yaml"));
        assert!(!mentions(message, "apps/web/extra.y"));
        assert!(mentions("cannot read apps/a.yaml.", "apps/a.yaml"));
        assert!(!mentions("cannot read apps/a.yaml.bak", "apps/a.yaml"));
        assert!(!mentions("cannot read xapps/a.yaml", "apps/a.yaml"));
    }
}
