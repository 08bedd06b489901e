//! `gitgate check`: the pre-merge door. Turns a Git range (or files) into input documents,
//! decides each with [`decision::decide`] (the function the webhook calls), and returns one
//! result for every report format.

/// The objects of files and their diff, read below `check` and `provenance` alike.
pub use crate::objects as changes;
pub mod gate;
pub mod provenance;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::decision::findings::At;
use crate::decision::{self, Context, guard};
use crate::git::{GitError, Repo, is_manifest_path};
use crate::input::{Document, Identity, Source};
use crate::policy::PolicySet;
use crate::policy::matcher::NamespaceMap;
use crate::provenance::approval::Trust;
use changes::{Change, FileObject, Note, NoteKind, Scopes};
use gix::ObjectId;
use provenance::PullRequest;
use serde_json::Value;

pub use crate::decision::findings::{
    Audited, Checked, Counts, Item, Level, Range, Report, Verdict,
};

/// What to check.
#[derive(Debug, Clone)]
pub enum Target {
    /// A Git range of a repository: `base` defaults to the merge base of `head` (default
    /// `HEAD`) and the protected branch.
    Range {
        repo: PathBuf,
        base: Option<String>,
        head: Option<String>,
    },
    /// A range whose ends the gate already resolved (`head_label` names the head as it was
    /// given): the range is resolved once.
    Resolved {
        repo: PathBuf,
        base: ObjectId,
        head: ObjectId,
        head_label: String,
    },
    /// Files and directories, each document a CREATE (as conftest checks files).
    Files(Vec<PathBuf>),
}

/// What a check is given besides its target, its policies and its configuration.
#[derive(Default)]
pub struct Extras<'a> {
    /// The labels of the cluster's Namespaces (`--kubeconfig`), for `namespaceSelector`
    /// where the head holds no manifest of the Namespace.
    pub cluster_namespaces: Option<&'a crate::cluster::NamespaceTable>,
    /// Findings about the gate itself ([`gate::Gate::items`]), reported with the others.
    pub gate_items: Vec<Item>,
    /// Warnings fail the check (`--fail-on-warn`).
    pub fail_on_warn: bool,
}

/// Why a check could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Git(#[from] GitError),
    /// The trusted keys the pull request's commits are judged by could not be read.
    #[error(transparent)]
    Trust(crate::provenance::ProvenanceError),
    /// The gate (configuration and policies) of the protected branch cannot be read.
    #[error("{0}")]
    Gate(String),
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file or directory to check that does not exist.
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    /// A FIFO, socket or device named to check: never read (it could block forever).
    #[error("{path}: not a regular file or directory")]
    NotRegular { path: String },
    /// A directory to check with no manifest in it.
    #[error("{path}: no manifest file (.yaml, .yml or .json) under it")]
    NoManifests { path: String },
    /// A manifest root (`repository.paths`, or a path argument with a range) with no manifest
    /// under it at either end of the range: most likely a typo, never a silent pass.
    #[error("{key} {root:?} matches nothing at {head} nor at the merge base {base}")]
    RootMatchesNothing {
        /// `repository.paths:` or `the path argument`.
        key: &'static str,
        root: String,
        head: String,
        base: String,
    },
    /// The head is the merge base: nothing to compare.
    #[error(
        "nothing to check: {head} is the merge base with {base}, so the range is empty (the \
         protected branch itself, or a commit behind it); check a pull request's head, or \
         check every file with `gitgate check <paths>` (for example `gitgate check .`)"
    )]
    EmptyRange { head: String, base: String },
}

impl CheckError {
    /// For roots given as path arguments rather than `repository.paths`.
    pub fn roots_from_arguments(self) -> CheckError {
        match self {
            CheckError::RootMatchesNothing {
                root, head, base, ..
            } => CheckError::RootMatchesNothing {
                key: "the path argument",
                root,
                head,
                base,
            },
            other => other,
        }
    }
}

/// The labels of the Namespaces of the cluster a kubeconfig names (`check --kubeconfig`), read
/// on a runtime of its own.
pub fn cluster_namespaces(
    settings: &crate::cluster::Settings,
    kubeconfig: &std::path::Path,
) -> Result<crate::cluster::NamespaceTable, crate::cluster::ClusterError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::cluster::ClusterError::Request(e.to_string()))?;
    runtime.block_on(async {
        let connection = crate::cluster::connect(settings, Some(kubeconfig))
            .await?
            .ok_or(crate::cluster::ClusterError::NoCluster)?;
        connection.namespace_labels().await
    })
}

/// Runs a check.
pub fn run(target: &Target, set: &PolicySet, config: &Config) -> Result<Report, CheckError> {
    run_with(target, set, config, Extras::default())
}

/// Runs a check with [`Extras`]: the cluster's Namespaces (the head's win), the gate's own
/// findings, `--fail-on-warn`.
pub fn run_with(
    target: &Target,
    set: &PolicySet,
    config: &Config,
    extras: Extras<'_>,
) -> Result<Report, CheckError> {
    let cluster_namespaces = extras.cluster_namespaces;
    // The pull request's own commits must be approved too when signatures are required:
    // the trusted keys are read before anything else.
    let trust = Trust::from_config(&config.approval).map_err(CheckError::Trust)?;
    let want_namespaces = set.uses_namespace_selector();
    // Referential policies read `data.inventory`: the head's objects, as `gator test` gives
    // them (the object judged included; the gatekeeper-library's policies skip themselves).
    let want_inventory = set.uses_inventory();
    let mut unchanged = Vec::new();
    let Read {
        mut groups,
        notes,
        range,
        files,
        source,
        pull_request,
    } = match target {
        Target::Range { repo, base, head } => read_range(
            repo,
            Ends::Revisions {
                base: base.as_deref(),
                head: head.as_deref(),
            },
            config,
            trust.as_ref(),
            (want_namespaces || want_inventory).then_some(&mut unchanged),
        )?,
        Target::Resolved {
            repo,
            base,
            head,
            head_label,
        } => read_range(
            repo,
            Ends::Resolved {
                base: *base,
                head: *head,
                head_label,
            },
            config,
            trust.as_ref(),
            (want_namespaces || want_inventory).then_some(&mut unchanged),
        )?,
        Target::Files(paths) => {
            let (head, notes, files) = read_files(paths)?;
            Read {
                groups: vec![Group {
                    head,
                    ..Group::default()
                }],
                notes,
                range: None,
                files,
                source: Source::premerge(None, None),
                pull_request: None,
            }
        }
    };
    let (namespaces, inventory) = namespaces_and_inventory(
        &mut groups,
        unchanged,
        cluster_namespaces,
        config,
        want_inventory,
    );
    let mut changes = Vec::new();
    for g in &mut groups {
        let diffed = changes::diff(std::mem::take(&mut g.base), std::mem::take(&mut g.head));
        changes.extend(diffed.into_iter().map(|mut c| {
            c.rendered = g.rendered.clone();
            c
        }));
    }
    let changes = changes::pair_moves(changes);
    let mut report = Report {
        range,
        files,
        checked: changes.iter().map(checked).collect(),
        items: notes.into_iter().map(note_item).collect(),
        fail_on_warn: extras.fail_on_warn,
        audit: None,
    };
    let pull_request = pull_request.filter(|_| config.provenance.enabled != Some(false));
    let given = Given {
        set: Arc::new(set.clone()),
        namespaces: Arc::new(namespaces),
        inventory,
    };
    report.items.extend(decide_all(
        &changes,
        &given,
        &source,
        pull_request.as_ref(),
        config.policies.timeout,
    ));
    report.items.extend(extras.gate_items);
    report.items.sort_by(|a, b| {
        (a.path.as_str(), a.line, a.level).cmp(&(b.path.as_str(), b.line, b.level))
    });
    Ok(report)
}

/// The Namespaces' labels the policies see (the head's, then the cluster's where the head
/// holds none) and `data.inventory` (the head's objects) when a policy reads it; the groups'
/// objects get their namespaces as the API server would give them.
fn namespaces_and_inventory(
    groups: &mut [Group],
    mut unchanged: Vec<FileObject>,
    cluster_namespaces: Option<&crate::cluster::NamespaceTable>,
    config: &Config,
    want_inventory: bool,
) -> (NamespaceMap, Option<Arc<regorus::Value>>) {
    let mut namespaces = NamespaceMap::default();
    let mut scopes = Scopes::default();
    for g in groups.iter() {
        for o in &g.head {
            namespaces.learn(&o.object);
        }
        scopes.learn(&g.base);
        scopes.learn(&g.head);
    }
    for o in &unchanged {
        namespaces.learn(&o.object);
    }
    for (name, labels) in cluster_namespaces.into_iter().flatten() {
        namespaces
            .0
            .entry(name.clone())
            .or_insert_with(|| labels.clone());
    }
    scopes.learn(&unchanged);
    changes::default_namespaces(
        &mut unchanged,
        &scopes,
        &config.repository.default_namespace,
        None,
    );
    for g in groups.iter_mut() {
        let namespace = g
            .namespace
            .as_deref()
            .unwrap_or(&config.repository.default_namespace);
        changes::default_namespaces(&mut g.base, &scopes, namespace, g.namespace.as_deref());
        changes::default_namespaces(&mut g.head, &scopes, namespace, g.namespace.as_deref());
    }
    let inventory = want_inventory.then(|| {
        let objects = groups
            .iter()
            .flat_map(|g| &g.head)
            .chain(&unchanged)
            .map(|o| &o.object);
        Arc::new(crate::cluster::inventory::Inventory::of(objects).data())
    });
    (namespaces, inventory)
}

fn checked(c: &Change) -> Checked {
    let subject = c.object.as_ref().or(c.old_object.as_ref());
    Checked {
        path: c.path.clone(),
        line: c.line,
        operation: crate::input::operation_name(&c.operation).to_string(),
        object: subject
            .and_then(Identity::of_object)
            .map(|id| id.describe())
            .unwrap_or_default(),
    }
}

fn note_item(n: Note) -> Item {
    Item {
        path: n.path,
        line: n.line,
        level: match n.kind {
            NoteKind::Info => Level::Note,
            NoteKind::Unverifiable => Level::Warning,
            NoteKind::Unreadable | NoteKind::Rejects => Level::Error,
        },
        policy: "gitgate".into(),
        message: n.message,
        operation: None,
        object: None,
        unchecked: n.kind == NoteKind::Unreadable,
    }
}

/// What every decision of a check reads besides its document.
struct Given {
    set: Arc<PolicySet>,
    /// The head's Namespaces, for `namespaceSelector`.
    namespaces: Arc<NamespaceMap>,
    /// `{"inventory": ...}` of the head's objects, when a policy reads it.
    inventory: Option<Arc<regorus::Value>>,
}

/// Decides every change, on as many threads as the machine has; a change whose decision
/// panics outside the policies' guard is unchecked, never lost ([`guard::fan_out`]).
fn decide_all(
    changes: &[Change],
    given: &Given,
    source: &Source,
    pull_request: Option<&PullRequest>,
    limit: Duration,
) -> Vec<Item> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    guard::fan_out(
        changes.iter().collect(),
        threads,
        |c| *c,
        |c| decide_one(c, given, source, pull_request, limit),
        |c, why| vec![internal_error(c, why)],
    )
    .into_iter()
    .flatten()
    .collect()
}

/// The item of a change that could not be decided because of an internal error.
fn internal_error(change: &Change, why: &str) -> Item {
    Item {
        path: change.path.clone(),
        line: change.line,
        level: Level::Error,
        policy: "gitgate".into(),
        message: format!("internal error (panic): {why}"),
        operation: Some(crate::input::operation_name(&change.operation).to_string()),
        object: None,
        unchecked: true,
    }
}

/// The document for a change, as the webhook would build it for the same object, apart from
/// what CI cannot know (the user, the uid).
pub fn document(change: &Change, source: &Source) -> Option<Document> {
    let mut source = source.clone();
    source.path = Some(change.path.clone());
    source.line = Some(change.line);
    source.rendered = change.rendered.clone();
    let mut doc = Document::from_manifest(
        &change.path,
        change.operation.clone(),
        change.object.clone(),
        change.old_object.clone(),
        source,
    )
    .ok()?;
    // conftest-style policies read the manifest as written: not the namespace gitgate gave
    // an object whose file sets none (a YAML file says which fields it writes).
    if change.rendered.is_none()
        && !change.lines.is_empty()
        && change.lines.exact("/metadata/namespace").is_none()
        && let Some(mut object) = change.object.clone()
        && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.remove("namespace").is_some()
    {
        doc.as_written = Some(object);
    }
    Some(doc)
}

fn decide_one(
    change: &Change,
    given: &Given,
    source: &Source,
    pull_request: Option<&PullRequest>,
    limit: Duration,
) -> Vec<Item> {
    let operation = crate::input::operation_name(&change.operation);
    // Unreachable for objects the diff made (each has a kind and a name), but a change that
    // cannot become a document must not pass unseen.
    let Some(mut doc) = document(change, source) else {
        return vec![Item {
            path: change.path.clone(),
            line: change.line,
            level: Level::Error,
            policy: "gitgate".into(),
            message: "cannot build the input document of this object".into(),
            operation: Some(operation.to_string()),
            object: None,
            unchecked: true,
        }];
    };
    if let Some(pr) = pull_request {
        doc.provenance = Some(pr.verdict(&change.path, change.line));
    }
    let identity = doc
        .subject()
        .and_then(Identity::of_object)
        .map(|id| id.describe());
    guard::injected_panic(identity.as_deref().unwrap_or_default());
    let decision = decide_within(given, doc, limit);
    // A finding whose details name a path (`details.path`, as the built-in policies give)
    // points at that field's line; others at the object's first line. A field a kustomize
    // build set or changed (a prefix, an `images:` override, a patch) is not in the file the
    // object came from: the finding points at the kustomization.
    let located = |details: Option<&serde_json::Value>| -> (String, usize) {
        let Some(field) = details
            .and_then(|d| d.get("path"))
            .and_then(serde_json::Value::as_str)
        else {
            return (change.path.clone(), change.line);
        };
        let pointer = crate::manifest::pointer_of(field);
        if let Some(r) = change.rendered.as_ref().filter(|r| r.engine == "kustomize")
            && change.lines.exact("").is_some()
            && change.lines.exact(&pointer).is_none()
            && change
                .object
                .as_ref()
                .and_then(|o| o.pointer(&pointer))
                .is_some()
        {
            return (r.file.clone(), 1);
        }
        (
            change.path.clone(),
            change.lines.find(&pointer).unwrap_or(change.line),
        )
    };
    Item::of_decision(
        &decision,
        &At {
            operation,
            object: identity.as_deref(),
        },
        located,
    )
}

/// Decides a document within `limit` (`policies.timeout`): a decision that misses it, or
/// panics, is an error of the document, never a pass.
fn decide_within(given: &Given, doc: Document, limit: Duration) -> decision::Decision {
    let (set, namespaces, inventory) = (
        given.set.clone(),
        given.namespaces.clone(),
        given.inventory.clone(),
    );
    guard::within(limit, move || {
        let ctx = Context {
            namespaces: &*namespaces,
            data: inventory.as_deref(),
        };
        decision::decide(&set, &doc, &ctx)
    })
}

/// Objects diffed together: the plain manifests, or one rendered unit's.
#[derive(Default)]
struct Group {
    base: Vec<FileObject>,
    head: Vec<FileObject>,
    /// The namespace of namespaced objects that set none (default: the configuration's).
    namespace: Option<String>,
    rendered: Option<crate::input::Rendered>,
}

/// What was read of the repository or the files.
struct Read {
    groups: Vec<Group>,
    notes: Vec<Note>,
    range: Option<Range>,
    files: usize,
    source: Source,
    /// The pull request's commits, for a range.
    pull_request: Option<PullRequest>,
}

/// The two ends of a range as given: revisions to resolve, or commits the gate resolved.
enum Ends<'a> {
    Revisions {
        base: Option<&'a str>,
        head: Option<&'a str>,
    },
    Resolved {
        base: ObjectId,
        head: ObjectId,
        head_label: &'a str,
    },
}

/// The merge base of the range and its head: what the pull request changed is measured from
/// where it forked, as `git diff base...head` and the pull request's page do (a base that
/// moved on since does not add its own changes). An empty range is an error.
fn resolve_range(
    repo: &Repo,
    ends: &Ends<'_>,
    branch: &str,
) -> Result<(ObjectId, ObjectId, String), CheckError> {
    let (base, head) = match ends {
        Ends::Resolved {
            base,
            head,
            head_label,
        } => {
            if base == head {
                return Err(CheckError::EmptyRange {
                    head: format!("{head_label} ({})", short(&head.to_string())),
                    base: branch.to_string(),
                });
            }
            return Ok((*base, *head, head_label.to_string()));
        }
        Ends::Revisions { base, head } => (*base, *head),
    };
    let head_rev = head.unwrap_or("HEAD");
    let head_id = repo
        .resolve(head_rev)
        .map_err(|e| e.named(head.map_or("HEAD".into(), |h| format!("--head {h}"))))?;
    let base_id = match base {
        Some(rev) => repo.merge_base(
            repo.resolve(rev)
                .map_err(|e| e.named(format!("--base {rev}")))?,
            head_id,
        )?,
        None => repo.merge_base(repo.protected_branch(branch)?, head_id)?,
    };
    if base_id == head_id {
        return Err(CheckError::EmptyRange {
            head: format!("{head_rev} ({})", short(&head_id.to_string())),
            base: base.unwrap_or(branch).to_string(),
        });
    }
    Ok((base_id, head_id, head_rev.to_string()))
}

/// Reads the changed files of a range. With `unchanged`, the objects of the head the range
/// does not change are collected there too (for `namespaceSelector` and `data.inventory`).
/// `trust` is `Some` when the pull request's commits must be signed.
fn read_range(
    repo_dir: &Path,
    ends: Ends<'_>,
    config: &Config,
    trust: Option<&Trust>,
    unchanged: Option<&mut Vec<FileObject>>,
) -> Result<Read, CheckError> {
    let repo = Repo::open(repo_dir)?;
    let (base_id, head_id, head_rev) = resolve_range(&repo, &ends, &config.repository.branch)?;
    let renderer = crate::render::Renderer::from_config(config);
    let base_layout = renderer.layout(&repo, base_id)?;
    // What Flux applies from the head while the cluster still holds the base's
    // GitRepositories (their spec.ignore) counts as well.
    let head_layout = renderer.layout_after(&repo, head_id, &base_layout)?;
    sources_match(
        config,
        (base_id, &base_layout),
        (&head_rev, head_id, &head_layout),
    )?;
    // What the protected branch already holds was approved there: a pull request that merged
    // main in is not judged for main's commits.
    let protected = repo.protected_branch(&config.repository.branch).ok();
    let pull_request = read_pull_request(
        &repo,
        &renderer,
        (base_id, head_id),
        trust,
        protected.as_slice(),
    )?;
    let mut notes = pull_request.notes(&repo)?;
    notes.extend(unread_changes(&repo, &renderer, (base_id, head_id))?);
    notes.extend(head_layout.said.iter().map(|s| Note {
        path: s.path.clone(),
        line: s.line,
        message: s.message.clone(),
        kind: NoteKind::Info,
    }));
    notes.extend(unrendered_changes(
        &repo,
        config,
        (base_id, &base_layout),
        (head_id, &head_layout),
    )?);
    let mut files = 0;
    let mut groups = read_plain(
        &repo,
        (&base_layout, &head_layout),
        &mut notes,
        &mut files,
        unchanged,
        &renderer,
    )?;
    read_rendered(
        &repo,
        &renderer,
        (&base_layout, &head_layout),
        &mut groups,
        &mut notes,
        &mut files,
    );
    let source = Source {
        context: crate::input::Context::Premerge,
        repository: Some(
            config
                .repository
                .url
                .clone()
                .unwrap_or_else(|| repo.name().to_string()),
        ),
        commit: Some(head_id.to_string()),
        path: None,
        line: None,
        rendered: None,
    };
    Ok(Read {
        groups,
        notes,
        range: Some(Range {
            base: base_id.to_string(),
            head: head_id.to_string(),
        }),
        files,
        source,
        pull_request: Some(pull_request),
    })
}

/// The pull request's own commits, each judged, and for each changed manifest file the commit
/// that last changed it: every manifest file of the sources counts (kustomizations, patches,
/// values included).
fn read_pull_request(
    repo: &Repo,
    renderer: &crate::render::Renderer,
    (base_id, head_id): (ObjectId, ObjectId),
    trust: Option<&Trust>,
    hidden: &[ObjectId],
) -> Result<PullRequest, CheckError> {
    // A followed source applies folders anywhere in the repository.
    let roots: Vec<String> = if renderer.sources().iter().any(|s| s.follow.is_some()) {
        Vec::new()
    } else {
        renderer
            .sources()
            .iter()
            .map(|s| s.path.clone())
            .filter(|p| !p.is_empty())
            .collect()
    };
    let base_all = repo.manifest_files(base_id, &roots)?;
    let head_all = repo.manifest_files(head_id, &roots)?;
    let changed = head_all
        .iter()
        .filter(|(path, id)| base_all.get(*path) != Some(id))
        .chain(
            base_all
                .iter()
                .filter(|(path, id)| head_all.get(*path) != Some(id)),
        )
        .map(|(path, _)| path.clone())
        .collect();
    Ok(PullRequest::read(
        repo,
        (base_id, &base_all),
        (head_id, &head_all),
        changed,
        trust,
        (&roots, hidden),
    )?)
}

/// The symbolic links and submodules the pull request adds or changes under its sources:
/// nothing gitgate reads (the controller may), so each is named in a note, never skipped in
/// silence.
fn unread_changes(
    repo: &Repo,
    renderer: &crate::render::Renderer,
    (base_id, head_id): (ObjectId, ObjectId),
) -> Result<Vec<Note>, CheckError> {
    let roots: Vec<String> = renderer
        .sources()
        .iter()
        .map(|s| s.path.clone())
        .filter(|p| !p.is_empty() && p != ".")
        .collect();
    let keep = |path: &str| crate::git::under_roots(path, &roots);
    let base = repo.unread_entries(base_id, keep)?;
    let head = repo.unread_entries(head_id, keep)?;
    Ok(head
        .into_iter()
        .filter(|(path, entry)| base.get(path) != Some(entry))
        .map(|(path, (_, what))| Note {
            message: format!(
                "not checked: {what} (gitgate reads the files Git stores; what it points to is not read here)"
            ),
            path,
            line: 0,
            kind: NoteKind::Info,
        })
        .collect())
}

/// The manifest files the pull request changes that no source renders or reads, at either
/// end: applied by nothing gitgate knows, each named (a warning, or an error under
/// `repository.unrendered: error`), never passed in silence. What source-controller leaves
/// out of the artifact (`.sourceignore`, CI files) is not applied by anything and not named.
fn unrendered_changes(
    repo: &Repo,
    config: &Config,
    (base_id, base_layout): (ObjectId, &crate::render::Layout),
    (head_id, head_layout): (ObjectId, &crate::render::Layout),
) -> Result<Vec<Note>, CheckError> {
    let roots: Vec<String> = if config.repository.sources.is_empty() {
        config.repository.paths.clone()
    } else {
        Vec::new()
    };
    let base = repo.manifest_files(base_id, &roots)?;
    let head = repo.manifest_files(head_id, &roots)?;
    let ignored = crate::render::ignore::Ignored::of(repo, head_id)?;
    let changed: std::collections::BTreeSet<&String> = head
        .iter()
        .filter(|(p, id)| base.get(*p) != Some(id))
        .chain(base.iter().filter(|(p, _)| !head.contains_key(*p)))
        .map(|(p, _)| p)
        .collect();
    let error = config.repository.unrendered == crate::config::Unrendered::Error;
    Ok(changed
        .into_iter()
        // A file the head holds counts as the head reads it; a removed one as the base did.
        .filter(|p| {
            let read = if head.contains_key(*p) {
                head_layout.reads(p)
            } else {
                base_layout.reads(p)
            };
            !ignored.ignores(p) && !read
        })
        .map(|path| Note {
            path: path.clone(),
            line: 0,
            message: format!(
                "applied by no source: no source renders or reads this file, so what it holds is not checked; add its folder to repository.sources, or let a source follow the GitOps controller's objects that apply it (follow: flux|argocd){}",
                if error {
                    "; repository.unrendered: error"
                } else {
                    "; repository.unrendered: error makes this an error"
                }
            ),
            kind: if error {
                NoteKind::Unreadable
            } else {
                NoteKind::Unverifiable
            },
        })
        .collect())
}

/// The group of plain manifests whose source gives them `namespace`.
fn plain_group<'a>(plain: &'a mut Vec<Group>, namespace: Option<&str>) -> &'a mut Group {
    let i = match plain
        .iter()
        .position(|g| g.namespace.as_deref() == namespace)
    {
        Some(i) => i,
        None => {
            plain.push(Group {
                namespace: namespace.map(str::to_string),
                ..Group::default()
            });
            plain.len() - 1
        }
    };
    &mut plain[i]
}

/// The plain manifests of the changed files at both ends, grouped by the namespace their
/// source gives them; with `unchanged`, the head's unchanged objects (plain and rendered) too.
fn read_plain(
    repo: &Repo,
    (base_layout, head_layout): (&crate::render::Layout, &crate::render::Layout),
    notes: &mut Vec<Note>,
    files: &mut usize,
    unchanged: Option<&mut Vec<FileObject>>,
    renderer: &crate::render::Renderer,
) -> Result<Vec<Group>, CheckError> {
    let base_files = base_layout.plain_files();
    let head_files = head_layout.plain_files();
    let namespace_of = |layout: &crate::render::Layout, path: &str| {
        layout
            .plain
            .get(path)
            .and_then(|f| f.namespace.as_deref().map(str::to_string))
    };
    let mut plain: Vec<Group> = Vec::new();
    // Only changed files matter: a path whose blob is the same at both ends holds the same
    // objects (an object moved out of it changes it).
    for (path, id) in &head_files {
        if base_files.get(path) == Some(id) {
            continue;
        }
        *files += 1;
        let (objects, n) = changes::read_file_objects(path, &repo.read_blob(*id, path)?);
        plain_group(&mut plain, namespace_of(head_layout, path).as_deref())
            .head
            .extend(objects);
        notes.extend(n);
    }
    if let Some(unchanged) = unchanged {
        for (path, id) in &head_files {
            if base_files.get(path) != Some(id) {
                continue; // changed files are read above
            }
            let (objects, _) = changes::read_file_objects(path, &repo.read_blob(*id, path)?);
            unchanged.extend(objects);
        }
        // What the head's rendered sources apply, changed or not (the changed ones are
        // rendered once: the renderer keeps them for the diff); a changed object is then
        // there twice, which the namespaces and the inventory take as one.
        let units: Vec<&crate::render::Unit> = head_layout.units.iter().collect();
        for rendered in renderer.render(repo, &units) {
            for o in rendered.as_ref().as_ref().map(Vec::as_slice).unwrap_or(&[]) {
                unchanged.push(file_object(o));
            }
        }
    }
    for (path, id) in &base_files {
        if head_files.get(path) == Some(id) {
            continue;
        }
        // A file changed at both ends counts once.
        if !head_files.contains_key(path) {
            *files += 1;
        }
        // Problems of the base are not the pull request's: only its objects count.
        let (objects, _) = changes::read_file_objects(path, &repo.read_blob(*id, path)?);
        plain_group(&mut plain, namespace_of(base_layout, path).as_deref())
            .base
            .extend(objects);
    }
    Ok(plain)
}

/// The rendered units whose inputs changed: both ends rendered, each unit a group. A unit that
/// cannot be rendered at the head is an unreadable note, and its base objects are not deleted.
fn read_rendered(
    repo: &Repo,
    renderer: &crate::render::Renderer,
    (base_layout, head_layout): (&crate::render::Layout, &crate::render::Layout),
    groups: &mut Vec<Group>,
    notes: &mut Vec<Note>,
    files: &mut usize,
) {
    let key_at = |layout: &crate::render::Layout, id: &str| {
        layout
            .units
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.key.clone())
    };
    let head_units: Vec<&crate::render::Unit> = head_layout
        .units
        .iter()
        .filter(|u| key_at(base_layout, &u.id).as_ref() != Some(&u.key))
        .collect();
    let base_units: Vec<&crate::render::Unit> = base_layout
        .units
        .iter()
        .filter(|u| key_at(head_layout, &u.id).as_ref() != Some(&u.key))
        .collect();
    let head_rendered = renderer.render(repo, &head_units);
    let rendered_of = |unit: &crate::render::Unit| crate::input::Rendered {
        source: unit.name().to_string(),
        engine: unit.kind.as_str().to_string(),
        file: unit.file.clone(),
    };
    let mut failed = Vec::new();
    for (unit, result) in head_units.iter().zip(&head_rendered) {
        *files += 1;
        // What the cluster's render would answer differently (`lookup`, `.Capabilities`) is
        // not known from Git: said, and an error under `render.strict`.
        if let Some(what) = &unit.reads_cluster {
            notes.push(Note {
                path: unit.file.clone(),
                line: 1,
                message: format!(
                    "unverifiable: the chart {what}, so what the controller renders in the cluster can differ from what is checked here{}",
                    if renderer.strict() {
                        " (render.strict)"
                    } else {
                        "; set render.strict: true to make this an error"
                    }
                ),
                kind: if renderer.strict() {
                    NoteKind::Unreadable
                } else {
                    NoteKind::Unverifiable
                },
            });
        }
        let mut group = Group {
            namespace: unit.namespace.clone(),
            rendered: Some(rendered_of(unit)),
            ..Group::default()
        };
        match &**result {
            Ok(objects) => group.head = objects.iter().map(file_object).collect(),
            Err(e) => {
                failed.push(unit.id.clone());
                notes.push(Note {
                    path: unit.file.clone(),
                    line: 1,
                    message: format!("cannot be rendered: {e}"),
                    kind: NoteKind::Unreadable,
                });
            }
        }
        groups.push(group);
    }
    // A source that cannot be rendered at the head is not checked: its base objects are
    // not deleted either.
    let base_units: Vec<&crate::render::Unit> = base_units
        .into_iter()
        .filter(|u| !failed.contains(&u.id))
        .collect();
    let base_rendered = renderer.render(repo, &base_units);
    for (unit, result) in base_units.iter().zip(&base_rendered) {
        let group = match groups
            .iter()
            .position(|g| g.rendered.as_ref().is_some_and(|r| r.source == unit.name()))
        {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Group {
                    namespace: unit.namespace.clone(),
                    rendered: Some(rendered_of(unit)),
                    ..Group::default()
                });
                groups.last_mut().expect("just pushed")
            }
        };
        match &**result {
            Ok(objects) => group.base = objects.iter().map(file_object).collect(),
            // Problems of the base are not the pull request's; its objects are new then.
            Err(e) => notes.push(Note {
                path: unit.file.clone(),
                line: 1,
                message: format!(
                    "the merge base's render failed, so this source's objects are checked as new: {e}"
                ),
                kind: NoteKind::Info,
            }),
        }
    }
}

/// A rendered object as the diff reads it.
fn file_object(o: &crate::render::Object) -> FileObject {
    FileObject {
        path: o.path.clone(),
        line: o.line,
        object: o.object.clone(),
        lines: o.lines.clone(),
    }
}

/// Every configured root (`repository.paths`) or source (`repository.sources`) must hold a
/// manifest or a rendered folder at the base or at the head: one that matches nothing (a
/// typo, a moved directory) would make every pull request pass unseen.
fn sources_match(
    config: &Config,
    (base_id, base): (gix::ObjectId, &crate::render::Layout),
    (head_rev, head_id, head): (&str, gix::ObjectId, &crate::render::Layout),
) -> Result<(), CheckError> {
    let (key, roots): (&'static str, Vec<&String>) = if config.repository.sources.is_empty() {
        (
            "repository.paths:",
            config.repository.paths.iter().collect(),
        )
    } else {
        (
            "repository.sources:",
            config.repository.sources.iter().map(|s| &s.path).collect(),
        )
    };
    for root in roots {
        let dir = crate::render::paths::clean(root);
        let matches = |layout: &crate::render::Layout| {
            layout
                .plain
                .keys()
                .any(|p| crate::render::paths::under(p, &dir))
                || layout
                    .units
                    .iter()
                    .any(|u| crate::render::paths::under(&u.dir, &dir))
        };
        if !matches(base) && !matches(head) {
            return Err(CheckError::RootMatchesNothing {
                key,
                root: root.clone(),
                head: format!("{head_rev} ({})", short(&head_id.to_string())),
                base: short(&base_id.to_string()).to_string(),
            });
        }
    }
    Ok(())
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Reads the files and directories named to check. Each must exist; a named file must be a
/// regular file (a FIFO would block the check forever) and a directory must hold a manifest.
fn read_files(paths: &[PathBuf]) -> Result<(Vec<FileObject>, Vec<Note>, usize), CheckError> {
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    let mut files = 0;
    for root in paths {
        let named = root.display().to_string();
        let meta = std::fs::metadata(root).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => CheckError::NotFound {
                path: named.clone(),
            },
            _ => CheckError::Io {
                path: named.clone(),
                source,
            },
        })?;
        let is_dir = meta.is_dir();
        if !is_dir && !meta.is_file() {
            return Err(CheckError::NotRegular { path: named });
        }
        let before = files;
        for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
            let entry = entry.map_err(|e| CheckError::Io {
                path: root.display().to_string(),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk error")),
            })?;
            let path = entry.path().display().to_string();
            // Named files are read whatever their name; directories contribute manifests.
            if !entry.file_type().is_file() || (is_dir && !is_manifest_path(&path)) {
                continue;
            }
            files += 1;
            let io = |source| CheckError::Io {
                path: path.clone(),
                source,
            };
            let size = entry.metadata().map_err(|e| io(e.into()))?.len() as usize;
            if size > crate::manifest::MAX_FILE_BYTES {
                let e = crate::manifest::ManifestError::TooLarge {
                    file: path.clone(),
                    size,
                    limit: crate::manifest::MAX_FILE_BYTES,
                };
                notes.push(changes::unreadable(&path, &e));
                continue;
            }
            let bytes = std::fs::read(entry.path()).map_err(io)?;
            let (o, n) = changes::read_file_objects(&path, &bytes);
            objects.extend(o);
            notes.extend(n);
        }
        if is_dir && files == before {
            return Err(CheckError::NoManifests { path: named });
        }
    }
    Ok((objects, notes, files))
}
