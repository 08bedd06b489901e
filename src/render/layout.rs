//! What the sources hold at a commit ([`Renderer::layout`]): each configured source's plain
//! files and units, and for a source with `follow`, what the controller objects found there
//! apply ([`follow`] reads them; this walk renders and adds what they name, in turn).

use std::sync::Arc;

use gix::ObjectId;
use serde_json::Value;
use sha2::Digest;

use super::follow::{self, Build, Said, ThisRepository};
use super::overlay::Overlay;
use super::{
    At, Follow, HelmSpec, How, Kind, Layout, Place, PlainFile, RenderError, Renderer, SourceSpec,
    Unit, kustomize, paths,
};
use crate::git::{GitError, Repo};
use crate::manifest::Lines;

impl Renderer {
    /// What the sources hold at `commit`: plain manifests and the units to render, each
    /// keyed by what it reads. Reading Git can fail; a unit that cannot be rendered carries
    /// its error, which [`Renderer::render`] returns. A source with `follow` renders its
    /// folder here, to read the controller objects it applies.
    pub fn layout(&self, repo: &Repo, commit: ObjectId) -> Result<Layout, GitError> {
        self.layout_in(repo, commit, None)
    }

    /// What the sources hold at `commit` applied over `before` (the layout of the commit the
    /// cluster holds, as a pull request's head over its base): where `before` holds a
    /// GitRepository with another `spec.ignore`, what a target of it applies is read from
    /// both artifacts, so a file counts as left out only where both leave it out, and a
    /// folder that builds otherwise in the cluster's artifact is rendered that way too.
    /// (source-controller packages the new commit with the `spec.ignore` the cluster holds,
    /// and Flux applies that artifact before it applies the new GitRepository.)
    pub fn layout_after(
        &self,
        repo: &Repo,
        commit: ObjectId,
        before: &Layout,
    ) -> Result<Layout, GitError> {
        self.layout_in(repo, commit, Some(&before.git_repositories))
    }

    fn layout_in(
        &self,
        repo: &Repo,
        commit: ObjectId,
        cluster: Option<&follow::GitRepositories>,
    ) -> Result<Layout, GitError> {
        // What source-controller leaves out of the artifact is not there for the controller.
        let at = At::new(repo, commit, cluster)?;
        let at = &at;
        let mut layout = Layout::default();
        for (i, spec) in self.sources.iter().enumerate() {
            if !spec.path.is_empty() && at.ignored.ignores(&spec.path) {
                layout.absent.push(spec.path.clone());
                continue;
            }
            let first_unit = layout.units.len();
            let mut new_plain = Vec::new();
            let from = Place {
                source: (i, &spec.path),
                namespace: spec.namespace.as_deref(),
                by: None,
            };
            match at.entry(&spec.path)? {
                None => layout.absent.push(spec.path.clone()),
                Some((blob, false)) => {
                    if matches!(spec.render, Kind::Auto | Kind::Plain) {
                        add_plain(&mut layout, &spec.path, blob, &from, &mut new_plain);
                    } else {
                        let unit =
                            self.unit(at, &spec.path, spec.render, How::of(spec, spec.render))?;
                        layout.units.push(unit);
                    }
                }
                Some((tree, true)) => {
                    self.add_folder(
                        at,
                        spec,
                        &from,
                        spec.render,
                        tree,
                        &mut layout,
                        &mut new_plain,
                    )?;
                }
            }
            if let Some(mode) = spec.follow {
                let new_units = (first_unit..layout.units.len()).collect();
                self.follow(at, (i, spec), mode, &mut layout, (new_plain, new_units))?;
                if mode != Follow::Argocd {
                    follow::bootstrap_source(&mut layout.git_repositories);
                }
            }
        }
        Ok(layout)
    }

    /// Adds what a folder holds (`kind`: how it is rendered) to the layout: its plain files
    /// (their paths pushed on `new_plain`) and its units (those with a key not there yet).
    #[allow(clippy::too_many_arguments)]
    fn add_folder(
        &self,
        at: &At<'_>,
        spec: &SourceSpec,
        from: &Place<'_>,
        kind: Kind,
        tree: ObjectId,
        layout: &mut Layout,
        new_plain: &mut Vec<String>,
    ) -> Result<(), GitError> {
        let discovery = self.discovery(at, from.source, kind, tree)?;
        let dir = from.source.1;
        for (rel, blob) in &discovery.plain {
            add_plain(layout, &paths::child(dir, rel), *blob, from, new_plain);
        }
        for (rel, kind) in &discovery.units {
            let unit_dir = paths::join(dir, rel).unwrap_or_default();
            let mut how = How::of(spec, *kind);
            if from.by.is_some() {
                how.namespace = from.namespace.map(str::to_string);
                how.by = from.by;
            }
            let unit = self.unit(at, &unit_dir, *kind, how)?;
            if !layout.units.iter().any(|u| u.key == unit.key) {
                layout.units.push(unit);
            }
        }
        Ok(())
    }

    /// Follows the controller objects of a source: renders what its plain files and units
    /// hold, reads the Flux and Argo CD objects there, adds what each applies from this
    /// repository, and does the same with what those add, to a depth of [`FOLLOW_DEPTH`].
    fn follow(
        &self,
        at: &At<'_>,
        (index, spec): (usize, &SourceSpec),
        mode: Follow,
        layout: &mut Layout,
        (mut new_plain, mut new_units): (Vec<String>, Vec<usize>),
    ) -> Result<(), GitError> {
        let first_unit = new_units.first().copied().unwrap_or(layout.units.len());
        let controllers = match mode {
            Follow::Flux => follow::Controllers::Flux,
            Follow::Argocd => follow::Controllers::ArgoCd,
            Follow::Auto => follow::Controllers::Both,
        };
        let mut this = ThisRepository::clone(&self.this);
        // Every object read so far: the pool the controller objects' references are read in.
        let mut pool: Vec<(Value, String, usize, Lines)> = Vec::new();
        // Targets whose variables or values Git did not hold when they were met: read again
        // with every object once the walk is over (a ConfigMap may come from a later build).
        let mut unresolved: Vec<(usize, usize)> = Vec::new();
        for depth in 0..=FOLLOW_DEPTH {
            let start = pool.len();
            for path in &new_plain {
                let Some(file) = layout.plain.get(path) else {
                    continue;
                };
                let bytes = at.repo.read_blob(file.blob, path)?;
                let (objects, _) = crate::objects::read_file_objects(path, &bytes);
                pool.extend(
                    objects
                        .into_iter()
                        .map(|o| (o.object, o.path, o.line, o.lines)),
                );
            }
            let units: Vec<&Unit> = new_units.iter().map(|i| &layout.units[*i]).collect();
            for rendered in self.render(at.repo, &units) {
                if let Ok(objects) = &*rendered {
                    pool.extend(
                        objects
                            .iter()
                            .map(|o| (o.object.clone(), o.path.clone(), o.line, o.lines.clone())),
                    );
                }
            }
            if pool.len() == start {
                break;
            }
            let found = |range: std::ops::Range<usize>| -> Vec<follow::Found<'_>> {
                pool[range]
                    .iter()
                    .map(|(object, path, line, lines)| follow::Found {
                        object,
                        path,
                        line: *line,
                        lines: Some(lines),
                    })
                    .collect()
            };
            // What this repository's URL is, from the source's own folder, where the
            // configuration cannot say it.
            if depth == 0 {
                this.learn(&found(0..pool.len()));
            }
            let (targets, said) = follow::targets(
                &found(start..pool.len()),
                &found(0..pool.len()),
                controllers,
                &this,
            );
            if depth == FOLLOW_DEPTH && !targets.is_empty() {
                layout.said.push(Said {
                    path: targets[0].path.clone(),
                    line: targets[0].line,
                    message: format!(
                        "{}: not followed: controller objects nest deeper than {FOLLOW_DEPTH} levels (a cycle?)",
                        targets[0].by
                    ),
                });
                break;
            }
            // The entry's own Kustomization (Flux's bootstrap `flux-system` applies the
            // folder it sits in) with patches of its own: what Flux applies from the folder is
            // that build, not the folder alone; its children are read from it (a parent that
            // patches its child Kustomizations is applied first, as Flux does).
            if depth == 0
                && let Some(i) = targets.iter().position(|t| {
                    t.dir == spec.path && matches!(&t.build, Build::Flux(o) if !o.is_empty())
                })
            {
                let own = targets.into_iter().nth(i).expect("found above");
                for path in &new_plain {
                    layout.plain.remove(path);
                }
                layout.units.truncate(first_unit);
                pool.clear();
                new_plain = Vec::new();
                new_units = Vec::new();
                self.add_target(
                    at,
                    (index, spec),
                    own,
                    layout,
                    (&mut new_plain, &mut new_units),
                )?;
                continue;
            }
            // Two artifacts of one commit (a GitRepository's spec.ignore changing) may hold the
            // same object: said once.
            for s in said {
                if !layout.said.contains(&s) {
                    layout.said.push(s);
                }
            }
            new_plain = Vec::new();
            new_units = Vec::new();
            for target in targets {
                let missing = matches!(&target.build, Build::Unverifiable(m) if m.contains("Git does not hold"))
                    .then(|| {
                        pool.iter()
                            .position(|(_, p, l, _)| *p == target.path && *l == target.line)
                    })
                    .flatten();
                let before = layout.units.len();
                self.add_target(
                    at,
                    (index, spec),
                    target,
                    layout,
                    (&mut new_plain, &mut new_units),
                )?;
                // Only the unit this target added is replaced, should a later build hold
                // what it lacked.
                if let Some(o) = missing
                    && layout.units.len() == before + 1
                {
                    unresolved.push((o, before));
                }
            }
            if new_plain.is_empty() && new_units.is_empty() {
                break;
            }
        }
        // A target read again with every object: what it names may have been rendered later.
        let all: Vec<follow::Found<'_>> = pool
            .iter()
            .map(|(object, path, line, lines)| follow::Found {
                object,
                path,
                line: *line,
                lines: Some(lines),
            })
            .collect();
        follow::git_repositories(&all, &mut layout.git_repositories);
        for (object, unit) in unresolved {
            let (targets, _) = follow::targets(&all[object..=object], &all, controllers, &this);
            let Some(target) = targets.into_iter().next() else {
                continue;
            };
            if matches!(target.build, Build::Unverifiable(_)) || unit >= layout.units.len() {
                continue;
            }
            let mut added = Layout::default();
            self.add_target(
                at,
                (index, spec),
                target,
                &mut added,
                (&mut Vec::new(), &mut Vec::new()),
            )?;
            let mut added = added.units.into_iter();
            if let Some(replacement) = added.next() {
                layout.units[unit] = replacement;
            }
            // The build of another artifact (the cluster's GitRepository's spec.ignore).
            for more in added {
                if !layout.units.iter().any(|u| u.key == more.key) {
                    layout.units.push(more);
                }
            }
        }
        Ok(())
    }

    /// Adds what one followed controller object applies: the artifact its source holds as
    /// written here and, where the cluster holds that GitRepository with another
    /// `spec.ignore`, the artifact packaged with that one too (Flux applies both in turn).
    /// What both hold is one plain file or one unit; a render only the cluster's artifact
    /// makes is a unit of its own, named after the GitRepository that packages it.
    fn add_target(
        &self,
        at: &At<'_>,
        (index, spec): (usize, &SourceSpec),
        target: follow::Target,
        layout: &mut Layout,
        (new_plain, new_units): (&mut Vec<String>, &mut Vec<usize>),
    ) -> Result<(), GitError> {
        // What cannot be rendered cannot be from any artifact: said once.
        let cluster = match target.build {
            Build::Unverifiable(_) => Vec::new(),
            _ => at.cluster_artifacts(&target.exclusions),
        };
        // What the target's controller leaves out of the files, where not the commit's own.
        let excluding = at.excluding(&target.exclusions);
        let own = excluding.as_ref().unwrap_or(at);
        let others: Vec<follow::Target> = cluster
            .iter()
            .map(|(_, which)| follow::Target {
                by: format!("{}, packaged by {which}", target.by),
                ..target.clone()
            })
            .collect();
        self.add_artifact(own, (index, spec), target, layout, (new_plain, new_units))?;
        for ((at, _), target) in cluster.iter().zip(others) {
            // A folder that artifact does not hold fails Flux's build: nothing is applied from
            // it (and the one written here says what is missing).
            let held = matches!(at.entry(&target.dir)?, Some((_, true)))
                && (target.dir.is_empty() || !at.ignored.ignores(&target.dir));
            if held {
                self.add_artifact(at, (index, spec), target, layout, (new_plain, new_units))?;
            }
        }
        Ok(())
    }

    /// Adds what one followed controller object applies from the commit as `at` holds it.
    fn add_artifact(
        &self,
        at: &At<'_>,
        (index, spec): (usize, &SourceSpec),
        target: follow::Target,
        layout: &mut Layout,
        (new_plain, new_units): (&mut Vec<String>, &mut Vec<usize>),
    ) -> Result<(), GitError> {
        let by = target.by.clone();
        let id = format!("{} ({by})", paths::display(&target.dir));
        let failed = |message: String| Unit {
            dir: target.dir.clone(),
            id: id.clone(),
            by: Some(by.clone()),
            kind: Kind::Kustomize,
            file: target.path.clone(),
            namespace: target.namespace.clone(),
            key: {
                let mut d = sha2::Sha256::new();
                d.update(format!("failed\n{id}\n{message}\n"));
                hex::encode(d.finalize())
            },
            reads_cluster: None,
            helm: HelmSpec::default(),
            overlay: None,
            patched: None,
            inputs: Err(RenderError::Source {
                unit: id.clone(),
                message,
            }),
        };
        fn push(layout: &mut Layout, new_units: &mut Vec<usize>, unit: Unit) {
            if !layout.units.iter().any(|u| u.key == unit.key) {
                new_units.push(layout.units.len());
                layout.units.push(unit);
            }
        }
        let entry = at.entry(&target.dir)?;
        let tree = match entry {
            Some((tree, true)) if !at.ignored.ignores(&target.dir) || target.dir.is_empty() => tree,
            _ => {
                let what = if matches!(entry, Some((_, false))) {
                    "a file, not a folder"
                } else {
                    "not in the commit"
                };
                push(
                    layout,
                    new_units,
                    failed(format!(
                        "{by} ({}:{}) applies {}, which is {what}",
                        target.path,
                        target.line,
                        paths::display(&target.dir)
                    )),
                );
                return Ok(());
            }
        };
        let place = Place {
            source: (usize::MAX - index, &target.dir),
            namespace: target.namespace.as_deref(),
            by: Some(&by),
        };
        let has_kustomization = kustomize::FILE_NAMES.iter().any(|n| {
            matches!(
                at.entry(&paths::child(&target.dir, n)),
                Ok(Some((_, false)))
            )
        });
        let has_chart = matches!(
            at.entry(&paths::child(&target.dir, "Chart.yaml"))?,
            Some((_, false))
        );
        let no_helm = HelmSpec::default();
        let overlaid = |overlay: Overlay| -> Result<Unit, GitError> {
            let unit = self.unit(
                at,
                &target.dir,
                Kind::Kustomize,
                How {
                    helm: &no_helm,
                    namespace: target.namespace.clone(),
                    overlay: Some(Arc::new(overlay)),
                    by: Some(&by),
                },
            )?;
            let generated = unit.inputs.as_ref().is_ok_and(|i| i.generated.is_some());
            Ok(Unit {
                patched: (!target.patched.is_empty())
                    .then(|| Arc::new((target.path.clone(), target.patched.clone()))),
                file: if generated {
                    target.path.clone()
                } else {
                    unit.file.clone()
                },
                ..unit
            })
        };
        let followed = |helm| How {
            helm,
            namespace: target.namespace.clone(),
            overlay: None,
            by: Some(&by),
        };
        match target.build {
            Build::Unverifiable(message) => push(layout, new_units, failed(message)),
            Build::Flux(overlay) if overlay.is_empty() => {
                // The folder as Flux builds it with nothing added: what `auto` reads.
                let before = layout.units.len();
                self.add_folder(at, spec, &place, Kind::Auto, tree, layout, new_plain)?;
                new_units.extend(before..layout.units.len());
            }
            Build::Flux(mut overlay) => {
                if overlay.ignore_missing_components {
                    let mut kept = Vec::new();
                    for c in std::mem::take(&mut overlay.components) {
                        let held = match paths::join(&target.dir, &c) {
                            Some(p) => at.entry(&p)?.is_some(),
                            None => true, // refused with its reference when built
                        };
                        if held {
                            kept.push(c);
                        }
                    }
                    overlay.components = kept;
                }
                let unit = overlaid(overlay)?;
                push(layout, new_units, unit);
            }
            Build::Helm(helm) => {
                let unit = self.unit(at, &target.dir, Kind::Helm, followed(&helm))?;
                push(layout, new_units, unit);
            }
            Build::ArgoCd {
                overlay,
                helm,
                directory,
            } => {
                if has_kustomization && !directory.explicit {
                    let unit = if overlay.is_empty() {
                        self.unit(at, &target.dir, Kind::Kustomize, followed(&no_helm))?
                    } else {
                        overlaid(overlay)?
                    };
                    push(layout, new_units, unit);
                } else if has_chart && !directory.explicit {
                    let unit = self.unit(at, &target.dir, Kind::Helm, followed(&helm))?;
                    push(layout, new_units, unit);
                } else {
                    match argo_directory(&directory) {
                        Ok(keep) => {
                            let files = at.repo.tree_files(tree)?;
                            // Argo CD evaluates Jsonnet in a directory; gitgate does not.
                            if let Some(rel) = files.keys().find(|rel| {
                                rel.ends_with(".jsonnet")
                                    && (directory.recurse || !rel.contains('/'))
                                    && keep(rel)
                                    && !at.ignored.ignores(&paths::child(&target.dir, rel))
                            }) {
                                push(
                                    layout,
                                    new_units,
                                    failed(format!(
                                        "{by} applies {}, which Argo CD evaluates as Jsonnet: gitgate does not render Jsonnet, so what it applies cannot be known",
                                        paths::child(&target.dir, rel)
                                    )),
                                );
                                return Ok(());
                            }
                            for (rel, blob) in files {
                                let path = paths::child(&target.dir, &rel);
                                if crate::git::is_manifest_path(&rel)
                                    && (directory.recurse || !rel.contains('/'))
                                    && keep(&rel)
                                    && !at.ignored.ignores(&path)
                                {
                                    add_plain(layout, &path, blob, &place, new_plain);
                                }
                            }
                        }
                        Err(message) => push(layout, new_units, failed(message)),
                    }
                }
            }
        }
        Ok(())
    }
}

/// How deep `follow` goes (a Kustomization applying Kustomizations applying ...).
pub const FOLLOW_DEPTH: usize = 10;

/// Adds a plain file (unless a source before has it), its path pushed on `new_plain`.
fn add_plain(
    layout: &mut Layout,
    path: &str,
    blob: ObjectId,
    from: &Place<'_>,
    new_plain: &mut Vec<String>,
) {
    if layout.plain.contains_key(path) {
        return;
    }
    layout.plain.insert(
        path.to_string(),
        PlainFile {
            blob,
            source: match from.by {
                Some(by) => format!("{} ({by})", paths::display(from.source.1)).into(),
                None => paths::display(from.source.1).into(),
            },
            namespace: from.namespace.map(Arc::from),
        },
    );
    new_plain.push(path.to_string());
}

/// Argo CD's `directory.include` and `exclude` as a test of a path relative to the folder.
fn argo_directory(directory: &follow::Directory) -> Result<impl Fn(&str) -> bool + use<>, String> {
    let glob = |pattern: &Option<String>| -> Result<Option<globset::GlobMatcher>, String> {
        pattern
            .as_deref()
            .map(|p| {
                globset::Glob::new(p)
                    .map(|g| g.compile_matcher())
                    .map_err(|e| format!("directory pattern {p:?}: {e}"))
            })
            .transpose()
    };
    let include = glob(&directory.include)?;
    let exclude = glob(&directory.exclude)?;
    // Argo CD matches the path relative to the Application's folder, never a file's name
    // alone (`exclude: evil.yaml` leaves `sub/evil.yaml` in).
    Ok(move |rel: &str| {
        let hit = |g: &globset::GlobMatcher| g.is_match(rel);
        include.as_ref().is_none_or(hit) && !exclude.as_ref().is_some_and(hit)
    })
}
