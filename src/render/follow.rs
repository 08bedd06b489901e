//! `follow`: what the GitOps controller's own objects, found in a source, say it applies.
//!
//! - Flux `Kustomization`s whose source is this repository (a `GitRepository` with its URL, or
//!   an `ExternalArtifact` that an `ArtifactGenerator` copies from folders of it): `spec.path`
//!   built as Flux builds it, with every field that changes what is applied ([`Overlay`]).
//! - Flux `HelmRelease`s whose chart is a folder of this repository: the chart templated with
//!   the release's values, name and namespace as helm-controller computes them. A chart from a
//!   chart repository cannot be rendered from Git: said.
//! - Argo CD `Application`s whose `repoURL` is this repository and whose revision is the
//!   protected branch: the path as Argo CD detects it (a kustomization, a chart, a directory)
//!   with its `kustomize`, `helm` and `directory` options and its destination namespace.
//!
//! This module reads objects and says what to render ([`Target`]) or why not ([`Said`]); the
//! renderer renders the targets, whose output is followed in turn.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::overlay::{self, Overlay};
use super::paths;
use super::spec::HelmSpec;

/// Which controller's objects are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controllers {
    Flux,
    ArgoCd,
    Both,
}

/// An object found in a source, with where it is written.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    pub object: &'a Value,
    pub path: &'a str,
    pub line: usize,
    /// The lines of its fields, where known.
    pub lines: Option<&'a crate::manifest::Lines>,
}

/// A patch of a controller object: what it targets and the line it is written on (findings
/// about what it changes point there).
#[derive(Debug, Clone, PartialEq)]
pub struct Patched {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub line: usize,
}

impl Patched {
    /// Whether it may have patched `object`.
    pub fn targets(&self, object: &Value) -> bool {
        let kind = object.get("kind").and_then(Value::as_str);
        let name = object.pointer("/metadata/name").and_then(Value::as_str);
        self.kind.as_deref().is_none_or(|k| Some(k) == kind)
            && self.name.as_deref().is_none_or(|n| {
                name.is_some_and(|name| n == name || name.contains(n.trim_matches(['^', '$'])))
            })
    }
}

/// The patches written at `pointer` (an array) of a controller object, with their lines.
fn patched_at(f: &Found<'_>, pointer: &str) -> Vec<Patched> {
    f.object
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| Patched {
            kind: text(p, "/target/kind").map(str::to_string),
            name: text(p, "/target/name").map(str::to_string),
            line: f
                .lines
                .and_then(|l| l.find(&format!("{pointer}/{i}")))
                .unwrap_or(f.line),
        })
        .collect()
}

/// What one controller object applies from this repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The folder (a repository path).
    pub dir: String,
    pub build: Build,
    /// The namespace of namespaced objects that set none.
    pub namespace: Option<String>,
    /// The controller object, for messages: `Kustomization flux-system/apps`.
    pub by: String,
    /// Where it is written.
    pub path: String,
    pub line: usize,
    /// Its patches.
    pub patched: Vec<Patched>,
    /// What the controller leaves out of the files it reads.
    pub exclusions: Exclusions,
}

/// What a controller leaves out of the repository's files before it builds a folder.
#[derive(Debug, Clone, PartialEq)]
pub enum Exclusions {
    /// Flux's source-controller: its defaults, the commit's `.sourceignore` files, then the
    /// GitRepository's own `spec.ignore` (patterns from the root, last, so they can re-include).
    Flux {
        /// The GitRepositories the files come from (`namespace/name`): one the cluster already
        /// holds packages this commit with its `spec.ignore` there before Flux applies the
        /// one written here.
        repositories: Vec<String>,
        /// Their `spec.ignore` as written here.
        ignore: Option<String>,
    },
    /// Argo CD reads the repository's files as they are.
    None,
}

/// How a target's folder is built.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a handful per layout: boxing would buy nothing
pub enum Build {
    /// As Flux builds a Kustomization's path (a generated kustomization where it has none).
    Flux(Overlay),
    /// As Argo CD builds an Application's path: a kustomization with `overlay`, a chart with
    /// `helm`, else a directory.
    ArgoCd {
        overlay: Overlay,
        helm: HelmSpec,
        directory: Directory,
    },
    /// A chart templated (a HelmRelease's).
    Helm(HelmSpec),
    /// What cannot be rendered from Git (a substitution from a Secret Git does not hold):
    /// the target is an error of its source.
    Unverifiable(String),
}

/// Argo CD's `directory` options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    /// Set explicitly (`spec.source.directory`): the folder is a directory even where it
    /// holds a kustomization or a chart, as Argo CD reads it.
    pub explicit: bool,
    pub recurse: bool,
    pub include: Option<String>,
    pub exclude: Option<String>,
}

/// Something said about a controller object that is not followed.
#[derive(Debug, Clone, PartialEq)]
pub struct Said {
    pub path: String,
    pub line: usize,
    pub message: String,
}

/// The repository the controllers' objects are compared with.
#[derive(Debug, Clone, Default)]
pub struct ThisRepository {
    /// `repository.url`, when configured.
    pub url: Option<String>,
    /// The protected branch.
    pub branch: String,
    /// Where `url` says nothing a controller could name (none is configured, or it is a path
    /// on this machine): the URLs the entry's own controller objects give this repository
    /// (see [`ThisRepository::learn`]). With none either, any URL is taken as this
    /// repository's.
    pub learned: Vec<String>,
}

impl ThisRepository {
    /// Whether `repository.url` names a remote a controller would name too (not a path).
    fn remote(&self) -> Option<&str> {
        self.url
            .as_deref()
            .filter(|u| !(u.starts_with('/') || u.starts_with('.') || u.starts_with("file://")))
    }

    fn is(&self, url: &str) -> bool {
        if let Some(mine) = self.remote() {
            return normalize(mine) == normalize(url);
        }
        self.learned.is_empty() || self.learned.contains(&normalize(url))
    }

    /// Learns this repository's URL from the controller objects of a source's own folder,
    /// where `repository.url` cannot say it: Flux's bootstrap `GitRepository`
    /// (`flux-system/flux-system`, the source of the folder that holds it) and the sources
    /// of the Argo CD Applications written there.
    pub fn learn(&mut self, found: &[Found<'_>]) {
        if self.remote().is_some() {
            return;
        }
        for f in found {
            let urls: Vec<&str> = match group_kind(f.object) {
                ("source.toolkit.fluxcd.io", "GitRepository")
                    if name_of(f.object) == "flux-system"
                        && namespace_or(f.object, "flux-system") == "flux-system" =>
                {
                    text(f.object, "/spec/url").into_iter().collect()
                }
                ("argoproj.io", "Application") => items(f.object, "/spec/sources")
                    .chain(f.object.pointer("/spec/source"))
                    .filter_map(|s| text(s, "/repoURL"))
                    .collect(),
                _ => Vec::new(),
            };
            for url in urls {
                let url = normalize(url);
                if !url.is_empty() && !self.learned.contains(&url) {
                    self.learned.push(url);
                }
            }
        }
    }

    fn on_branch(&self, revision: &str) -> bool {
        let r = revision.trim();
        r.is_empty()
            || r == "HEAD"
            || r == self.branch
            || r.strip_prefix("refs/heads/") == Some(self.branch.as_str())
    }
}

/// A Git URL without what does not name the repository: scheme, user, `.git`, trailing `/`,
/// case of the host; `git@host:org/repo` as `host/org/repo`.
pub fn normalize(url: &str) -> String {
    let mut u = url.trim().to_string();
    if let Some(i) = u.find("://") {
        u = u[i + 3..].to_string();
    } else if let Some((host, path)) = u.split_once(':')
        && !host.contains('/')
    {
        u = format!("{host}/{path}");
    }
    if let Some(i) = u.find('@')
        && u[..i].find('/').is_none()
    {
        u = u[i + 1..].to_string();
    }
    let u = u.trim_end_matches('/');
    let u = u.strip_suffix(".git").unwrap_or(u);
    match u.split_once('/') {
        Some((host, rest)) => {
            // A port of the ssh form (`host:22/org/repo`) is not part of the name.
            let host = host.split(':').next().unwrap_or(host);
            format!("{}/{rest}", host.to_ascii_lowercase())
        }
        None => u.to_ascii_lowercase(),
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn group_kind(v: &Value) -> (&str, &str) {
    let api = text(v, "/apiVersion").unwrap_or("");
    let group = api.rsplit_once('/').map_or("", |(g, _)| g);
    (group, text(v, "/kind").unwrap_or(""))
}

fn name_of(v: &Value) -> &str {
    text(v, "/metadata/name").unwrap_or("")
}

/// The namespace an object is written in, else `default` (a controller object without one
/// is applied into the namespace its own Kustomization or `kubectl -n` gives: flux-system
/// for Flux's, argocd for Argo CD's, by convention).
fn namespace_or<'a>(v: &'a Value, default: &'a str) -> &'a str {
    text(v, "/metadata/namespace")
        .filter(|s| !s.is_empty())
        .unwrap_or(default)
}

/// The targets of the controller objects among `found`; `pool` is every object known (for
/// the GitRepositories, ArtifactGenerators, ConfigMaps and Secrets they refer to).
pub fn targets(
    found: &[Found<'_>],
    pool: &[Found<'_>],
    controllers: Controllers,
    this: &ThisRepository,
) -> (Vec<Target>, Vec<Said>) {
    let mut targets = Vec::new();
    let mut said = Vec::new();
    let flux = matches!(controllers, Controllers::Flux | Controllers::Both);
    let argo = matches!(controllers, Controllers::ArgoCd | Controllers::Both);
    for f in found {
        let say = |message: String| Said {
            path: f.path.to_string(),
            line: f.line,
            message,
        };
        match group_kind(f.object) {
            ("kustomize.toolkit.fluxcd.io", "Kustomization") if flux => {
                match flux_kustomization(f, pool, this) {
                    Ok(t) => targets.push(t),
                    Err(m) => said.push(say(m)),
                }
            }
            ("helm.toolkit.fluxcd.io", "HelmRelease") if flux => match helm_release(f, pool, this)
            {
                Ok(t) => targets.push(t),
                Err(m) => said.push(say(m)),
            },
            ("argoproj.io", "Application") if argo => match application(f, this) {
                Ok(ts) => targets.extend(ts),
                Err(m) => said.push(say(m)),
            },
            ("argoproj.io", "ApplicationSet") if argo => said.push(say(format!(
                "ApplicationSet {}: the Applications it generates are not followed (list them as Applications, or as sources)",
                name_of(f.object)
            ))),
            _ => {}
        }
    }
    (targets, said)
}

/// Where a Flux source reference leads in this repository: the path prefix mapping
/// (artifact path → repository path) and the source's own exclusions (`spec.ignore`), or why
/// it is not this repository.
fn flux_source(
    source: &Value,
    own_namespace: &str,
    pool: &[Found<'_>],
    this: &ThisRepository,
) -> Result<(Mapping, Exclusions), String> {
    let kind = text(source, "/kind").unwrap_or("");
    let name = text(source, "/name").unwrap_or("");
    let namespace = text(source, "/namespace")
        .filter(|s| !s.is_empty())
        .unwrap_or(own_namespace);
    match kind {
        "GitRepository" => git_repository(name, namespace, pool, this).map(|ignore| {
            (
                Mapping::Same,
                Exclusions::Flux {
                    repositories: vec![format!("{namespace}/{name}")],
                    ignore,
                },
            )
        }),
        "ExternalArtifact" => {
            let generator = pool.iter().find(|g| {
                group_kind(g.object) == ("source.extensions.fluxcd.io", "ArtifactGenerator")
                    && namespace_or(g.object, "flux-system") == namespace
                    && g.object
                        .pointer("/spec/artifacts")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|x| text(x, "/name") == Some(name)))
            });
            let Some(generator) = generator else {
                return Err(format!(
                    "its source, ExternalArtifact {namespace}/{name}, is made by no ArtifactGenerator found here"
                ));
            };
            let artifact = generator
                .object
                .pointer("/spec/artifacts")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|x| text(x, "/name") == Some(name)))
                .cloned()
                .unwrap_or(Value::Null);
            let sources: BTreeMap<&str, &Value> = generator
                .object
                .pointer("/spec/sources")
                .and_then(Value::as_array)
                .map(|s| {
                    s.iter()
                        .filter_map(|s| text(s, "/alias").map(|a| (a, s)))
                        .collect()
                })
                .unwrap_or_default();
            let mut copies = Vec::new();
            let mut ignores = BTreeSet::new();
            let mut repositories = BTreeSet::new();
            for copy in artifact
                .get("copy")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let from = text(copy, "/from").unwrap_or("");
                let to = text(copy, "/to").unwrap_or("");
                let Some((alias, path)) = from.strip_prefix('@').and_then(|f| f.split_once('/'))
                else {
                    return Err(format!("ArtifactGenerator copy from {from:?}: not read"));
                };
                let Some(source) = sources.get(alias) else {
                    return Err(format!(
                        "ArtifactGenerator copy from {from:?}: no source {alias}"
                    ));
                };
                if text(source, "/kind") != Some("GitRepository") {
                    return Err(format!(
                        "ArtifactGenerator source {alias} is not a GitRepository"
                    ));
                }
                let (repository, repository_namespace) = (
                    text(source, "/name").unwrap_or(""),
                    text(source, "/namespace")
                        .filter(|s| !s.is_empty())
                        .unwrap_or(namespace),
                );
                ignores.insert(git_repository(
                    repository,
                    repository_namespace,
                    pool,
                    this,
                )?);
                repositories.insert(format!("{repository_namespace}/{repository}"));
                let Some(src) = path.strip_suffix("/**").or(path.strip_suffix("/*")) else {
                    return Err(format!(
                        "ArtifactGenerator copy from {from:?}: gitgate reads copies of a folder's content (@source/dir/**) only"
                    ));
                };
                let Some(dest) = to.strip_prefix("@artifact") else {
                    return Err(format!("ArtifactGenerator copy to {to:?}: not read"));
                };
                copies.push((
                    paths::clean(dest.trim_start_matches('/')),
                    paths::clean(src),
                ));
            }
            if ignores.len() > 1 {
                return Err(format!(
                    "ExternalArtifact {namespace}/{name} copies from GitRepositories that leave out different files (spec.ignore): what it holds is not read"
                ));
            }
            Ok((
                Mapping::Copies(copies),
                Exclusions::Flux {
                    repositories: repositories.into_iter().collect(),
                    ignore: ignores.pop_first().flatten(),
                },
            ))
        }
        "" => Err("it has no sourceRef".into()),
        other => Err(format!(
            "its source is {other} {namespace}/{name}, not this repository"
        )),
    }
}

/// How paths of a source map to repository paths.
enum Mapping {
    Same,
    /// (artifact folder, repository folder), as an ArtifactGenerator copies them.
    Copies(Vec<(String, String)>),
}

impl Mapping {
    /// Why the artifact's folders are not the repository's folders moved as one (a copy into
    /// a folder of another name, two folders copied side by side from different places, or
    /// over each other): then a relative reference (`../base`) or a folder's content differs
    /// between the artifact and the repository, and building the repository's folder would
    /// judge something else than Flux applies.
    fn rearranged(&self) -> Option<String> {
        let Mapping::Copies(copies) = self else {
            return None;
        };
        let mut offset: Option<&str> = None;
        for (dest, src) in copies {
            let here = if dest.is_empty() {
                Some(src.as_str())
            } else if src == dest {
                Some("")
            } else {
                src.strip_suffix(dest.as_str())
                    .and_then(|o| o.strip_suffix('/'))
            };
            let Some(here) = here else {
                return Some(format!("copies {src} into {dest}, another folder"));
            };
            match offset {
                None => offset = Some(here),
                Some(o) if o == here => {}
                Some(_) => {
                    return Some(format!(
                        "copies {src} beside folders from elsewhere in the repository"
                    ));
                }
            }
        }
        None
    }

    fn map(&self, path: &str) -> Option<String> {
        let path = paths::clean(path);
        match self {
            Mapping::Same => Some(path),
            Mapping::Copies(copies) => copies
                .iter()
                .filter(|(dest, _)| paths::under(&path, dest))
                .max_by_key(|(dest, _)| dest.len())
                .map(|(dest, src)| {
                    let rest = path[dest.len()..].trim_start_matches('/');
                    paths::child(src, rest).trim_end_matches('/').to_string()
                }),
        }
    }
}

/// What a GitRepository Git holds puts in its artifact beyond the repository's own files:
/// `spec.include` (another source's files copied in, over this repository's), which Git does
/// not hold. (`spec.ignore` is read: the target's [`Exclusions`].)
fn artifact_caveat(source: &Value, own_namespace: &str, pool: &[Found<'_>]) -> Option<String> {
    if text(source, "/kind") != Some("GitRepository") {
        return None;
    }
    let name = text(source, "/name").unwrap_or("");
    let namespace = text(source, "/namespace")
        .filter(|s| !s.is_empty())
        .unwrap_or(own_namespace);
    let g = pool.iter().find(|g| {
        group_kind(g.object) == ("source.toolkit.fluxcd.io", "GitRepository")
            && name_of(g.object) == name
            && namespace_or(g.object, "flux-system") == namespace
    })?;
    if g.object
        .pointer("/spec/include")
        .is_some_and(|i| i.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Some(format!(
            "GitRepository {namespace}/{name} includes other sources' files (spec.include)"
        ));
    }
    None
}

/// Whether GitRepository `namespace/name` is this repository on its protected branch: one
/// Git holds with this repository's URL, or Flux's bootstrap source (`flux-system`), which
/// Git need not hold. Its `spec.ignore`, where it has one.
fn git_repository(
    name: &str,
    namespace: &str,
    pool: &[Found<'_>],
    this: &ThisRepository,
) -> Result<Option<String>, String> {
    let held = pool.iter().find(|g| {
        group_kind(g.object) == ("source.toolkit.fluxcd.io", "GitRepository")
            && name_of(g.object) == name
            && namespace_or(g.object, "flux-system") == namespace
    });
    match held {
        Some(g) => {
            let url = text(g.object, "/spec/url").unwrap_or("");
            if !this.is(url) {
                return Err(format!(
                    "its source, GitRepository {namespace}/{name}, is {url}, not this repository"
                ));
            }
            let reference = g.object.pointer("/spec/ref");
            for pinned in ["tag", "semver", "commit", "name"] {
                if let Some(v) = reference
                    .and_then(|r| r.get(pinned))
                    .and_then(Value::as_str)
                    && !v.is_empty()
                {
                    return Err(format!(
                        "its source, GitRepository {namespace}/{name}, follows {pinned} {v}, not the protected branch {}",
                        this.branch
                    ));
                }
            }
            // source-controller checks out `master` when the reference names no branch.
            let branch = reference
                .and_then(|r| r.get("branch"))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .unwrap_or("master");
            if branch == this.branch {
                Ok(text(g.object, "/spec/ignore").map(str::to_string))
            } else {
                Err(format!(
                    "its source, GitRepository {namespace}/{name}, follows branch {branch}{}, not the protected branch {}",
                    if reference.and_then(|r| r.get("branch")).is_none() {
                        " (it names none: source-controller's default)"
                    } else {
                        ""
                    },
                    this.branch
                ))
            }
        }
        None if name == "flux-system" && namespace == "flux-system" => Ok(None),
        None => Err(format!(
            "its source, GitRepository {namespace}/{name}, is not in this repository, so which repository it reads cannot be told"
        )),
    }
}

/// The GitRepositories a commit holds, by `namespace/name`, with their `spec.ignore` (each one
/// written, should two folders hold different ones).
pub type GitRepositories = BTreeMap<String, BTreeSet<Option<String>>>;

/// Adds the GitRepositories among `found` to `into`.
pub fn git_repositories(found: &[Found<'_>], into: &mut GitRepositories) {
    for g in found {
        if group_kind(g.object) == ("source.toolkit.fluxcd.io", "GitRepository") {
            let key = format!(
                "{}/{}",
                namespace_or(g.object, "flux-system"),
                name_of(g.object)
            );
            into.entry(key)
                .or_default()
                .insert(text(g.object, "/spec/ignore").map(str::to_string));
        }
    }
}

/// Adds Flux's bootstrap source to `into` where Git does not hold it: without a
/// `spec.ignore`, as a reference to it reads it.
pub fn bootstrap_source(into: &mut GitRepositories) {
    into.entry("flux-system/flux-system".to_string())
        .or_insert_with(|| BTreeSet::from([None]));
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn object_at(v: &Value, pointer: &str) -> Map<String, Value> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn flux_kustomization(
    f: &Found<'_>,
    pool: &[Found<'_>],
    this: &ThisRepository,
) -> Result<Target, String> {
    let k = f.object;
    let name = name_of(k);
    let namespace = namespace_or(k, "flux-system");
    let by = format!("Kustomization {namespace}/{name}");
    let source = k.pointer("/spec/sourceRef").cloned().unwrap_or(Value::Null);
    let (mapping, exclusions) = flux_source(&source, namespace, pool, this)
        .map_err(|m| format!("{by}: not followed: {m}"))?;
    let path = text(k, "/spec/path").unwrap_or("./");
    let Some(dir) = paths::join("", path).and_then(|p| mapping.map(&p)) else {
        return Err(format!(
            "{by}: not followed: its path {path} is not in what its source copies"
        ));
    };
    let rearranged = mapping.rearranged();
    let spec = |p: &str| text(k, &format!("/spec/{p}")).map(str::to_string);
    let array = |p: &str| {
        k.pointer(&format!("/spec/{p}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut overlay = Overlay {
        namespace: spec("targetNamespace").filter(|s| !s.is_empty()),
        name_prefix: spec("namePrefix"),
        name_suffix: spec("nameSuffix"),
        patches: array("patches"),
        patches_strategic_merge: array("patchesStrategicMerge"),
        patches_json6902: array("patchesJson6902")
            .into_iter()
            .map(|mut p| {
                // Flux holds the operations as objects; kustomize takes them as text.
                if let Some(ops) = p.get("patch").filter(|o| !o.is_string()).cloned() {
                    p["patch"] = Value::String(ops.to_string());
                }
                p
            })
            .collect(),
        // fluxcd/pkg's generator merges an entry of the same name field by field (a tag and a
        // digest together), as a kustomize overlay does.
        replace_images: false,
        images: array("images"),
        components: strings(k.pointer("/spec/components")),
        ignore_missing_components: k.pointer("/spec/ignoreMissingComponents")
            == Some(&Value::Bool(true)),
        metadata_labels: object_at(k, "/spec/commonMetadata/labels"),
        metadata_annotations: object_at(k, "/spec/commonMetadata/annotations"),
        ..Overlay::default()
    };
    for c in &overlay.components {
        if c.starts_with('/') || c.contains("://") {
            return Err(format!(
                "{by}: component path '{c}' must be local and relative"
            ));
        }
    }
    let target = |build: Build| Target {
        dir: dir.clone(),
        build,
        namespace: overlay_namespace(k),
        by: by.clone(),
        path: f.path.to_string(),
        line: f.line,
        patched: [
            patched_at(f, "/spec/patches"),
            patched_at(f, "/spec/patchesJson6902"),
        ]
        .concat(),
        exclusions: exclusions.clone(),
    };
    if let Some(why) = rearranged {
        return Ok(target(Build::Unverifiable(format!(
            "{by} builds an ExternalArtifact that {why}: what Flux applies from it cannot be rendered from the repository's folders"
        ))));
    }
    if let Some(why) = artifact_caveat(&source, namespace, pool) {
        return Ok(target(Build::Unverifiable(format!(
            "{by}: its source {why}: what Flux applies from it cannot be known from the repository's files"
        ))));
    }
    if let Some(post) = k.pointer("/spec/postBuild").filter(|p| !p.is_null()) {
        match variables(post, namespace, pool) {
            Ok(vars) => overlay.substitute = Some(vars),
            Err(why) => {
                return Ok(target(Build::Unverifiable(format!(
                    "{by} substitutes variables {why}: what Flux applies cannot be known from Git"
                ))));
            }
        }
    }
    Ok(target(Build::Flux(overlay)))
}

/// The namespace a Kustomization's objects without one get: its `targetNamespace`, else the
/// namespace of the Kustomization itself is not used by Flux (objects without a namespace are
/// created in the default namespace of the cluster's API): none.
fn overlay_namespace(k: &Value) -> Option<String> {
    text(k, "/spec/targetNamespace")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A Kustomization's `postBuild` variables: `substituteFrom` in order, then `substitute` on
/// top; `Err` says what cannot be read from Git.
fn variables(
    post: &Value,
    namespace: &str,
    pool: &[Found<'_>],
) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    for reference in items(post, "/substituteFrom") {
        let DataRef {
            kind,
            name,
            optional,
            held,
        } = data_ref(reference, namespace, pool);
        let Some(held) = held else {
            if optional {
                continue;
            }
            return Err(format!(
                "from {kind} {namespace}/{name}, which Git does not hold"
            ));
        };
        for (k, v) in data_of(held.object, kind)
            .map_err(|why| format!("from {kind} {namespace}/{name}, {why}"))?
        {
            vars.insert(k, v.replace('\n', ""));
        }
    }
    for (k, v) in object_at(post, "/substitute") {
        let v = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        vars.insert(k, v.replace('\n', ""));
    }
    if let Some(bad) = vars.keys().find(|k| !overlay::valid_name(k)) {
        return Err(format!(
            "with the invalid name '{bad}' (a name must match ^[_[:alpha:]][_[:alpha:][:digit:]]*$)"
        ));
    }
    Ok(vars)
}

/// The items of the array at `pointer` (none where there is no array).
fn items<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A reference to a ConfigMap or a Secret (`{kind, name, optional}`), and the object of it
/// Git holds in the referrer's namespace.
struct DataRef<'a> {
    kind: &'a str,
    name: &'a str,
    optional: bool,
    held: Option<&'a Found<'a>>,
}

fn data_ref<'a>(reference: &'a Value, namespace: &str, pool: &'a [Found<'a>]) -> DataRef<'a> {
    let kind = text(reference, "/kind").unwrap_or("");
    let name = text(reference, "/name").unwrap_or("");
    DataRef {
        kind,
        name,
        optional: reference.get("optional") == Some(&Value::Bool(true)),
        held: pool.iter().find(|o| {
            group_kind(o.object) == ("", kind)
                && name_of(o.object) == name
                && namespace_or(o.object, namespace) == namespace
        }),
    }
}

/// The string data of a Git-held ConfigMap or Secret; a Secret encrypted with SOPS cannot be
/// read here.
fn data_of(object: &Value, kind: &str) -> Result<Vec<(String, String)>, String> {
    use base64::Engine;
    if object.get("sops").is_some() {
        return Err("which Git holds encrypted (SOPS)".into());
    }
    let mut out = Vec::new();
    if kind == "Secret" {
        for (k, v) in object_at(object, "/data") {
            let decoded = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| format!("whose data key {k} is not base64 text"))?;
            out.push((k, decoded));
        }
        for (k, v) in object_at(object, "/stringData") {
            out.push((k, v.as_str().unwrap_or_default().to_string()));
        }
    } else {
        for (k, v) in object_at(object, "/data") {
            out.push((k, v.as_str().unwrap_or_default().to_string()));
        }
    }
    Ok(out)
}

/// helm-controller's release name: `spec.releaseName`, else `[targetNamespace-]name`,
/// shortened past 53 characters as helm-controller shortens it.
fn release_name(hr: &Value) -> String {
    use sha2::Digest;
    let name = match text(hr, "/spec/releaseName").filter(|s| !s.is_empty()) {
        Some(n) => n.to_string(),
        None => match text(hr, "/spec/targetNamespace").filter(|s| !s.is_empty()) {
            Some(ns) => format!("{ns}-{}", name_of(hr)),
            None => name_of(hr).to_string(),
        },
    };
    if name.len() <= 53 {
        return name;
    }
    let sum = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    // Git may hold any text here: cut where a character begins.
    let cut = (0..=40)
        .rev()
        .find(|i| name.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}-{}", &name[..cut], &sum[..12])
}

fn helm_release(
    f: &Found<'_>,
    pool: &[Found<'_>],
    this: &ThisRepository,
) -> Result<Target, String> {
    let hr = f.object;
    let namespace = namespace_or(hr, "flux-system");
    let by = format!("HelmRelease {namespace}/{}", name_of(hr));
    if let Some(reference) = hr.pointer("/spec/chartRef").filter(|r| !r.is_null()) {
        return Err(format!(
            "{by}: its chart comes from {} {}: what helm-controller applies for it cannot be rendered from Git (the pinned chart version is what Git approves)",
            text(reference, "/kind").unwrap_or("a chart source"),
            text(reference, "/name").unwrap_or("")
        ));
    }
    let chart = text(hr, "/spec/chart/spec/chart").unwrap_or("");
    let source = hr
        .pointer("/spec/chart/spec/sourceRef")
        .cloned()
        .unwrap_or(Value::Null);
    if text(&source, "/kind") != Some("GitRepository") {
        return Err(format!(
            "{by}: its chart {chart} comes from {} {}: what helm-controller applies for it cannot be rendered from Git (the pinned chart version is what Git approves)",
            text(&source, "/kind").unwrap_or("a chart source"),
            text(&source, "/name").unwrap_or("")
        ));
    }
    let (mapping, exclusions) = flux_source(&source, namespace, pool, this)
        .map_err(|m| format!("{by}: not followed: {m}"))?;
    let Some(dir) = paths::join("", chart).and_then(|p| mapping.map(&p)) else {
        return Err(format!(
            "{by}: its chart path {chart} leaves the repository"
        ));
    };
    let release_namespace = text(hr, "/spec/targetNamespace")
        .filter(|s| !s.is_empty())
        .unwrap_or(namespace)
        .to_string();
    let caveat = artifact_caveat(&source, namespace, pool);
    // Values files of the chart's source are relative to the repository's root.
    let up = "../".repeat(dir.split('/').filter(|s| !s.is_empty()).count());
    let value_files: Vec<String> = strings(hr.pointer("/spec/chart/spec/valuesFiles"))
        .into_iter()
        .map(|f| format!("{up}{}", paths::clean(&f)))
        .collect();
    // source-controller merges the listed files into the chart's defaults, in place of its
    // values.yaml; helm-controller's values go over those.
    let replace_chart_values = !value_files.is_empty();
    let target = |build: Build| Target {
        dir: dir.clone(),
        build,
        namespace: Some(release_namespace.clone()),
        by: by.clone(),
        path: f.path.to_string(),
        line: f.line,
        patched: Vec::new(),
        exclusions: exclusions.clone(),
    };
    if let Some(why) = caveat {
        return Ok(target(Build::Unverifiable(format!(
            "{by}: its chart's source {why}: what helm-controller applies cannot be known from the repository's files"
        ))));
    }
    let mut values = Value::Object(Map::new());
    for reference in items(hr, "/spec/valuesFrom") {
        let key = text(reference, "/valuesKey").unwrap_or("values.yaml");
        let DataRef {
            kind,
            name,
            optional,
            held,
        } = data_ref(reference, namespace, pool);
        let data = match held.map(|h| data_of(h.object, kind)) {
            Some(Ok(data)) => data,
            Some(Err(why)) => {
                return Ok(target(Build::Unverifiable(format!(
                    "{by} takes values from {kind} {namespace}/{name}, {why}"
                ))));
            }
            None if optional => continue,
            None => {
                return Ok(target(Build::Unverifiable(format!(
                    "{by} takes values from {kind} {namespace}/{name}, which Git does not hold"
                ))));
            }
        };
        let Some((_, text)) = data.into_iter().find(|(k, _)| k == key) else {
            if optional {
                continue;
            }
            return Ok(target(Build::Unverifiable(format!(
                "{by} takes values from key {key} of {kind} {namespace}/{name}, which it does not have"
            ))));
        };
        match text_of(reference, "/targetPath") {
            Some(path) => set_path(&mut values, &path, Value::String(text)),
            None => {
                let Some(v) = crate::manifest::parse_str(name, &text)
                    .ok()
                    .and_then(|d| d.into_iter().next())
                    .map(|d| d.value)
                else {
                    return Ok(target(Build::Unverifiable(format!(
                        "{by}: the values in {kind} {namespace}/{name} are not YAML"
                    ))));
                };
                merge(&mut values, v);
            }
        }
    }
    if let Some(inline) = hr.pointer("/spec/values").filter(|v| v.is_object()) {
        merge(&mut values, inline.clone());
    }
    let helm = HelmSpec {
        release_name: Some(release_name(hr)),
        namespace: Some(release_namespace.clone()),
        value_files,
        values: values
            .as_object()
            .is_some_and(|m| !m.is_empty())
            .then_some(values),
        include_crds: Some(true),
        replace_chart_values,
        ignore_missing_values_files: hr
            .pointer("/spec/chart/spec/ignoreMissingValuesFiles")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    Ok(target(Build::Helm(helm)))
}

fn text_of(v: &Value, pointer: &str) -> Option<String> {
    text(v, pointer)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Helm's merge of values: maps merged key by key, anything else replaced, `null` deletes.
pub fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    a.remove(&k);
                    continue;
                }
                match a.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (into, from) => *into = from,
    }
}

/// Sets `a.b.c` in `values` (Helm's `--set` paths, without indexes).
fn set_path(values: &mut Value, path: &str, value: Value) {
    let mut at = values;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(map) = at else { return };
        if i == parts.len() - 1 {
            map.insert(part.to_string(), value);
            return;
        }
        at = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The sources of an Argo CD Application (`spec.source`, or each of `spec.sources`).
fn application(f: &Found<'_>, this: &ThisRepository) -> Result<Vec<Target>, String> {
    let app = f.object;
    let name = name_of(app);
    let by = format!("Application {}/{name}", namespace_or(app, "argocd"));
    let sources: Vec<&Value> = match app.pointer("/spec/sources").and_then(Value::as_array) {
        Some(s) if !s.is_empty() => s.iter().collect(),
        _ => app.pointer("/spec/source").into_iter().collect(),
    };
    if sources.is_empty() {
        return Err(format!("{by}: not followed: it has no source"));
    }
    let destination = text(app, "/spec/destination/namespace")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    // Sources that only lend their files to the others (`ref: values`, written `$values/...`
    // in value files): those of this repository on the protected branch.
    let refs: Vec<&str> = sources
        .iter()
        .filter(|s| {
            this.is(text(s, "/repoURL").unwrap_or(""))
                && this.on_branch(text(s, "/targetRevision").unwrap_or(""))
        })
        .filter_map(|s| text(s, "/ref"))
        .collect();
    let mut out = Vec::new();
    for source in sources {
        let url = text(source, "/repoURL").unwrap_or("");
        if text(source, "/chart").is_some() {
            return Err(format!(
                "{by}: not followed: its chart {} comes from the chart repository {url}",
                text(source, "/chart").unwrap_or("")
            ));
        }
        if !this.is(url) {
            return Err(format!(
                "{by}: not followed: its source {url} is not this repository"
            ));
        }
        let revision = text(source, "/targetRevision").unwrap_or("");
        if !this.on_branch(revision) {
            return Err(format!(
                "{by}: not followed: its revision {revision} is not the protected branch {}",
                this.branch
            ));
        }
        // A source that only gives value files to the others (`ref`) renders nothing.
        if source.get("ref").is_some() && source.get("path").is_none() {
            continue;
        }
        let Some(dir) = paths::join("", text(source, "/path").unwrap_or(".")) else {
            return Err(format!("{by}: its path leaves the repository"));
        };
        let k = |p: &str| text(source, &format!("/kustomize/{p}")).map(str::to_string);
        let images = strings(source.pointer("/kustomize/images"))
            .iter()
            .map(|i| argo_image(i))
            .collect();
        let overlay = Overlay {
            namespace: k("namespace").filter(|s| !s.is_empty()),
            name_prefix: k("namePrefix"),
            name_suffix: k("nameSuffix"),
            patches: source
                .pointer("/kustomize/patches")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            images,
            components: strings(source.pointer("/kustomize/components")),
            replicas: source
                .pointer("/kustomize/replicas")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let name = text(r, "/name")?;
                    let count = match r.get("count")? {
                        Value::String(s) => s.trim().parse::<i64>().ok()?,
                        other => other.as_i64()?,
                    };
                    Some(serde_json::json!({"name": name, "count": count}))
                })
                .collect(),
            common_labels: object_at(source, "/kustomize/commonLabels"),
            common_annotations: object_at(source, "/kustomize/commonAnnotations"),
            ..Overlay::default()
        };
        let mut values = Value::Object(Map::new());
        // `valuesObject` takes the place of `values` (Argo CD reads one or the other).
        if let Some(v) = source
            .pointer("/helm/valuesObject")
            .filter(|v| !v.is_null())
        {
            if !v.is_object() {
                return Err(format!("{by}: its helm.valuesObject is not a map"));
            }
            merge(&mut values, v.clone());
        } else if let Some(v) = text(source, "/helm/values").filter(|v| !v.trim().is_empty()) {
            match crate::manifest::parse_str("helm.values", v)
                .ok()
                .and_then(|d| d.into_iter().next())
            {
                Some(d) if d.value.is_object() || d.value.is_null() => merge(&mut values, d.value),
                _ => return Err(format!("{by}: its helm.values are not a YAML map")),
            }
        }
        for p in source
            .pointer("/helm/parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(n), Some(v)) = (text(p, "/name"), text(p, "/value")) else {
                continue;
            };
            let value = if p.get("forceString") == Some(&Value::Bool(true)) {
                Value::String(v.to_string())
            } else {
                crate::manifest::parse_str("parameter", v)
                    .ok()
                    .and_then(|d| d.into_iter().next())
                    .map(|d| d.value)
                    .filter(|v| !v.is_object() && !v.is_array())
                    .unwrap_or_else(|| Value::String(v.to_string()))
            };
            set_path(&mut values, n, value);
        }
        let helm = HelmSpec {
            release_name: Some(
                text(source, "/helm/releaseName")
                    .filter(|s| !s.is_empty())
                    .unwrap_or(name)
                    .to_string(),
            ),
            // `helm.namespace`, else the destination's, is what the chart is templated in.
            namespace: text_of(source, "/helm/namespace").or_else(|| destination.clone()),
            value_files: {
                let up = "../".repeat(dir.split('/').filter(|s| !s.is_empty()).count());
                let mut files = Vec::new();
                for f in strings(source.pointer("/helm/valueFiles")) {
                    match f.strip_prefix('$').and_then(|r| r.split_once('/')) {
                        Some((name, rest)) if refs.contains(&name) => {
                            files.push(format!("{up}{}", paths::clean(rest)))
                        }
                        Some((name, _)) => {
                            return Err(format!(
                                "{by}: not followed: its value file {f} comes from source ${name}, which is not this repository's protected branch"
                            ));
                        }
                        None => files.push(f),
                    }
                }
                files
            },
            values: values
                .as_object()
                .is_some_and(|m| !m.is_empty())
                .then_some(values),
            include_crds: Some(!matches!(
                source.pointer("/helm/skipCrds"),
                Some(Value::Bool(true))
            )),
            // Argo CD layers its value files over the chart's values.yaml, as `helm -f`.
            replace_chart_values: false,
            ignore_missing_values_files: matches!(
                source.pointer("/helm/ignoreMissingValueFiles"),
                Some(Value::Bool(true))
            ),
        };
        // An explicit type (`kustomize`, `helm`, `directory`, `plugin`: one of them) is how
        // Argo CD builds the path, whatever the folder holds.
        let explicit: Vec<&str> = ["kustomize", "helm", "directory", "plugin"]
            .into_iter()
            .filter(|t| source.get(*t).is_some_and(|v| !v.is_null()))
            .collect();
        match explicit.as_slice() {
            [] | ["kustomize"] | ["helm"] | ["directory"] => {}
            ["plugin"] => {
                return Err(format!(
                    "{by}: not followed: a config management plugin renders it, which gitgate does not run"
                ));
            }
            many => {
                return Err(format!(
                    "{by}: not followed: multiple application sources defined: {}",
                    many.join(",")
                ));
            }
        }
        let directory = Directory {
            explicit: explicit == ["directory"],
            recurse: source.pointer("/directory/recurse") == Some(&Value::Bool(true)),
            include: text_of(source, "/directory/include"),
            exclude: text_of(source, "/directory/exclude"),
        };
        out.push(Target {
            dir,
            build: Build::ArgoCd {
                overlay,
                helm,
                directory,
            },
            namespace: destination.clone(),
            by: by.clone(),
            path: f.path.to_string(),
            line: f.line,
            patched: patched_at(f, "/spec/source/kustomize/patches"),
            exclusions: Exclusions::None,
        });
    }
    Ok(out)
}

/// An image of Argo CD's `kustomize.images` (`kustomize edit set image` syntax:
/// `name=new:tag`, `name=new@digest`, `name:tag`) as kustomize's image entry.
fn argo_image(spec: &str) -> Value {
    let (name, target) = match spec.split_once('=') {
        Some((n, t)) => (n.to_string(), t),
        None => {
            let (n, _, _) = split_image(spec);
            (n.to_string(), spec)
        }
    };
    let (new_name, tag, digest) = split_image(target);
    let mut m = Map::new();
    m.insert("name".into(), name.clone().into());
    if new_name != name {
        m.insert("newName".into(), new_name.into());
    }
    if let Some(t) = tag {
        m.insert("newTag".into(), t.into());
    }
    if let Some(d) = digest {
        m.insert("digest".into(), d.into());
    }
    Value::Object(m)
}

/// `repo[:tag][@digest]`, the tag's colon being after the last `/` (a registry's port is not
/// a tag).
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(objects: &[Value]) -> Vec<Found<'_>> {
        objects
            .iter()
            .map(|o| Found {
                object: o,
                path: "clusters/prod/apps.yaml",
                line: 1,
                lines: None,
            })
            .collect()
    }

    fn this() -> ThisRepository {
        ThisRepository {
            url: Some("https://github.com/acme/fleet.git".into()),
            branch: "main".into(),
            learned: Vec::new(),
        }
    }

    #[test]
    fn urls_name_one_repository_however_written() {
        assert_eq!(
            normalize("git@github.com:acme/fleet.git"),
            normalize("https://GitHub.com/acme/fleet/")
        );
        assert_eq!(
            normalize("ssh://git@github.com/acme/fleet"),
            "github.com/acme/fleet"
        );
        assert_ne!(
            normalize("https://github.com/acme/other"),
            normalize("https://github.com/acme/fleet")
        );
    }

    #[test]
    fn a_kustomization_of_this_repository_is_followed_with_its_fields() {
        let objects = vec![
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                   "metadata": {"name": "fleet", "namespace": "flux-system"},
                   "spec": {"url": "ssh://git@github.com/acme/fleet", "ref": {"branch": "main"}}}),
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                   "metadata": {"name": "other", "namespace": "flux-system"},
                   "spec": {"url": "https://github.com/acme/other"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "vars", "namespace": "flux-system"},
                   "data": {"env": "prod", "n": "2"}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "apps", "namespace": "flux-system"},
                   "spec": {"sourceRef": {"kind": "GitRepository", "name": "fleet"}, "path": "./apps/prod",
                            "targetNamespace": "web",
                            "postBuild": {"substitute": {"n": "3"}, "substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]}}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "theirs", "namespace": "flux-system"},
                   "spec": {"sourceRef": {"kind": "GitRepository", "name": "other"}, "path": "./x"}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "secret", "namespace": "flux-system"},
                   "spec": {"sourceRef": {"kind": "GitRepository", "name": "fleet"}, "path": "./y",
                            "postBuild": {"substituteFrom": [{"kind": "Secret", "name": "keys"}]}}}),
        ];
        let f = found(&objects);
        let (targets, said) = targets(&f, &f, Controllers::Flux, &this());
        assert_eq!(targets.len(), 2, "{said:?}");
        assert_eq!(targets[0].dir, "apps/prod");
        assert_eq!(targets[0].namespace.as_deref(), Some("web"));
        let Build::Flux(o) = &targets[0].build else {
            panic!("{:?}", targets[0].build)
        };
        assert_eq!(o.namespace.as_deref(), Some("web"));
        let vars = o.substitute.as_ref().unwrap();
        assert_eq!(vars["env"], "prod");
        assert_eq!(vars["n"], "3", "inline variables win");
        assert!(
            matches!(&targets[1].build, Build::Unverifiable(m) if m.contains("Secret flux-system/keys"))
        );
        assert_eq!(said.len(), 1);
        assert!(
            said[0].message.contains("not this repository"),
            "{}",
            said[0].message
        );
    }

    #[test]
    fn an_external_artifact_maps_back_to_the_folders_it_copies() {
        let objects = vec![
            json!({"apiVersion": "source.extensions.fluxcd.io/v1beta1", "kind": "ArtifactGenerator",
                   "metadata": {"name": "flux-system", "namespace": "flux-system"},
                   "spec": {"sources": [{"alias": "monorepo", "kind": "GitRepository", "name": "flux-system"}],
                            "artifacts": [{"name": "apps", "copy": [
                                {"from": "@monorepo/apps/base/**", "to": "@artifact/base/"},
                                {"from": "@monorepo/apps/production/**", "to": "@artifact/production/"}]},
                                {"name": "infrastructure", "copy": [{"from": "@monorepo/infrastructure/**", "to": "@artifact/"}]}]}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "apps", "namespace": "flux-system"},
                   "spec": {"sourceRef": {"kind": "ExternalArtifact", "name": "apps"}, "path": "./production"}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "infra-configs", "namespace": "flux-system"},
                   "spec": {"sourceRef": {"kind": "ExternalArtifact", "name": "infrastructure"}, "path": "./configs",
                            "patches": [{"patch": "- op: replace\n  path: /spec/x\n  value: y\n", "target": {"kind": "ClusterIssuer"}}]}}),
        ];
        let f = found(&objects);
        let (targets, said) = targets(&f, &f, Controllers::Flux, &this());
        assert!(said.is_empty(), "{said:?}");
        let dirs: Vec<&str> = targets.iter().map(|t| t.dir.as_str()).collect();
        assert_eq!(dirs, vec!["apps/production", "infrastructure/configs"]);
    }

    #[test]
    fn the_git_repositories_a_commit_holds_and_where_targets_come_from() {
        let objects = vec![
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                   "metadata": {"name": "fleet", "namespace": "apps"},
                   "spec": {"url": "https://github.com/acme/fleet", "ref": {"branch": "main"}, "ignore": "/x\n"}}),
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                   "metadata": {"name": "other"},
                   "spec": {"url": "https://github.com/acme/fleet", "ref": {"branch": "main"}}}),
            json!({"apiVersion": "source.extensions.fluxcd.io/v1beta1", "kind": "ArtifactGenerator",
                   "metadata": {"name": "gen", "namespace": "flux-system"},
                   "spec": {"sources": [{"alias": "a", "kind": "GitRepository", "name": "other"},
                                        {"alias": "b", "kind": "GitRepository", "name": "flux-system"}],
                            "artifacts": [{"name": "apps", "copy": [
                                {"from": "@a/apps/**", "to": "@artifact/apps/"},
                                {"from": "@b/infra/**", "to": "@artifact/infra/"}]}]}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "web", "namespace": "apps"},
                   "spec": {"sourceRef": {"kind": "GitRepository", "name": "fleet"}, "path": "./web"}}),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "apps", "namespace": "flux-system"},
                   "spec": {"sourceRef": {"kind": "ExternalArtifact", "name": "apps"}, "path": "./apps"}}),
        ];
        let f = found(&objects);
        let mut held = GitRepositories::new();
        git_repositories(&f, &mut held);
        bootstrap_source(&mut held);
        assert_eq!(
            held,
            GitRepositories::from([
                ("apps/fleet".into(), BTreeSet::from([Some("/x\n".into())])),
                ("flux-system/other".into(), BTreeSet::from([None])),
                ("flux-system/flux-system".into(), BTreeSet::from([None])),
            ])
        );
        let (targets, said) = targets(&f, &f, Controllers::Flux, &this());
        assert!(said.is_empty(), "{said:?}");
        let exclusions: Vec<&Exclusions> = targets.iter().map(|t| &t.exclusions).collect();
        assert_eq!(
            exclusions,
            vec![
                &Exclusions::Flux {
                    repositories: vec!["apps/fleet".into()],
                    ignore: Some("/x\n".into())
                },
                &Exclusions::Flux {
                    repositories: vec![
                        "flux-system/flux-system".into(),
                        "flux-system/other".into()
                    ],
                    ignore: None
                },
            ]
        );
    }

    #[test]
    fn helm_releases_and_applications() {
        let objects = vec![
            json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                   "metadata": {"name": "web", "namespace": "apps"},
                   "spec": {"targetNamespace": "prod", "chart": {"spec": {"chart": "./charts/web", "sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}}},
                            "values": {"replicas": 2}}}),
            json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                   "metadata": {"name": "podinfo", "namespace": "podinfo"},
                   "spec": {"chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}}}),
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                   "metadata": {"name": "guestbook", "namespace": "argocd"},
                   "spec": {"source": {"repoURL": "git@github.com:acme/fleet.git", "path": "guestbook", "targetRevision": "HEAD",
                                       "kustomize": {"namePrefix": "gb-", "images": ["nginx=mirror/nginx:1.27"]}},
                            "destination": {"namespace": "guestbook"}}}),
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                   "metadata": {"name": "pinned", "namespace": "argocd"},
                   "spec": {"source": {"repoURL": "https://github.com/acme/fleet", "path": "x", "targetRevision": "v1.0.0"}}}),
        ];
        let f = found(&objects);
        let (targets, said) = targets(&f, &f, Controllers::Both, &this());
        assert_eq!(targets.len(), 2, "{said:?}");
        let Build::Helm(h) = &targets[0].build else {
            panic!()
        };
        assert_eq!(targets[0].dir, "charts/web");
        assert_eq!(h.release_name.as_deref(), Some("prod-web"));
        assert_eq!(h.namespace.as_deref(), Some("prod"));
        let Build::ArgoCd { overlay, .. } = &targets[1].build else {
            panic!()
        };
        assert_eq!(overlay.name_prefix.as_deref(), Some("gb-"));
        assert_eq!(
            overlay.images,
            vec![json!({"name": "nginx", "newName": "mirror/nginx", "newTag": "1.27"})]
        );
        assert_eq!(said.len(), 2);
        assert!(said[0].message.contains("HelmRepository podinfo"));
        assert!(said[1].message.contains("revision v1.0.0"));
    }

    #[test]
    fn a_multi_source_application_reads_value_files_of_its_ref_source() {
        let app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "web", "namespace": "argocd"},
            "spec": {"sources": [
                {"repoURL": "https://github.com/acme/fleet", "path": "charts/web", "targetRevision": "main",
                 "helm": {"valueFiles": ["$values/envs/prod/web.yaml", "values-extra.yaml"]}},
                {"repoURL": "https://github.com/acme/fleet", "targetRevision": "main", "ref": "values"}],
                "destination": {"namespace": "web"}}});
        let objects = vec![app];
        let f = found(&objects);
        let (targets, said) = targets(&f, &f, Controllers::ArgoCd, &this());
        assert!(said.is_empty(), "{said:?}");
        let Build::ArgoCd { helm, .. } = &targets[0].build else {
            panic!()
        };
        assert_eq!(
            helm.value_files,
            vec![
                "../../envs/prod/web.yaml".to_string(),
                "values-extra.yaml".into()
            ]
        );
    }

    #[test]
    fn without_a_remote_url_this_repository_is_what_the_entrys_own_objects_name() {
        let objects = vec![
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                   "metadata": {"name": "root", "namespace": "argocd"},
                   "spec": {"source": {"repoURL": "https://github.com/acme/fleet.git", "path": "apps"}}}),
        ];
        let mut local = ThisRepository {
            url: Some("/tmp/mirror".into()),
            branch: "main".into(),
            learned: Vec::new(),
        };
        assert!(
            local.is("https://github.com/acme/anything"),
            "nothing learned: any"
        );
        local.learn(&found(&objects));
        assert!(local.is("git@github.com:acme/fleet"));
        assert!(!local.is("https://github.com/acme/other"));
        // A remote URL configured is the one compared.
        let mut strict = this();
        strict.learn(&found(&objects));
        assert!(strict.learned.is_empty());
    }

    #[test]
    fn long_release_names_are_shortened_as_helm_controller_does() {
        let hr = json!({"metadata": {"name": "a".repeat(60)}});
        let name = release_name(&hr);
        assert_eq!(name.len(), 53);
        assert!(name.starts_with(&"a".repeat(40)));
    }
}
