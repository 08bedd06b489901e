//! `gitgate check`: the pre-merge door. Turns a Git range (or files) into input documents,
//! decides each with [`decision::decide`] (the function the webhook calls), and returns one
//! result for every report format.

pub mod changes;
pub mod gate;
pub mod provenance;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube_core::admission::Operation;
use serde::Serialize;

use crate::config::Config;
use crate::decision::{self, Context};
use crate::git::{GitError, Repo, is_manifest_path};
use crate::input::{Document, Identity, Source};
use crate::policy::matcher::NamespaceMap;
use crate::policy::{Enforcement, PolicySet};
use changes::{Change, FileObject, Note, Scopes};
use provenance::PullRequest;

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
    /// Files and directories, each document a CREATE (as conftest checks files).
    Files(Vec<PathBuf>),
}

/// How serious a report item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Rejects the pull request: a `deny` finding, a policy that failed, an unreadable file.
    Error,
    /// Reported, does not reject (unless `--fail-on-warn`).
    Warning,
    /// `dryrun` findings and skipped documents.
    Note,
}

/// One line of the report: a finding at a file and line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub path: String,
    pub line: usize,
    pub level: Level,
    /// The policy (or `gitgate` for problems of the input itself).
    pub policy: String,
    pub message: String,
    /// CREATE, UPDATE or DELETE, when the item is about an object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// `Kind namespace/name`, when the item is about an object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

/// The range checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Range {
    pub base: String,
    pub head: String,
}

/// An object that was decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checked {
    pub path: String,
    pub line: usize,
    pub operation: String,
    pub object: String,
}

/// The result of a check, fed to every report format.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    /// Files read: the changed files of the range (added, modified or deleted), or the files given.
    pub files: usize,
    /// Every object decided (creates, updates, deletes), in order.
    pub checked: Vec<Checked>,
    pub items: Vec<Item>,
}

impl Report {
    pub fn count(&self, level: Level) -> usize {
        self.items.iter().filter(|i| i.level == level).count()
    }

    /// Whether the check fails: any error, or any warning with `fail_on_warn`.
    pub fn rejected(&self, fail_on_warn: bool) -> bool {
        self.count(Level::Error) > 0 || (fail_on_warn && self.count(Level::Warning) > 0)
    }
}

/// Why a check could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{0}")]
    Trust(String),
    /// The gate (configuration and policies) of the protected branch cannot be read.
    #[error("{0}")]
    Gate(String),
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs a check.
pub fn run(target: &Target, set: &PolicySet, config: &Config) -> Result<Report, CheckError> {
    let want_namespaces = set.uses_namespace_selector();
    let mut namespaces = NamespaceMap::default();
    let Read {
        mut base,
        mut head,
        notes,
        range,
        files,
        source,
        pull_request,
    } = match target {
        Target::Range { repo, base, head } => read_range(
            repo,
            base.as_deref(),
            head.as_deref(),
            config,
            want_namespaces.then_some(&mut namespaces),
        )?,
        Target::Files(paths) => {
            let (head, notes, files) = read_files(paths)?;
            Read {
                base: Vec::new(),
                head,
                notes,
                range: None,
                files,
                source: Source::premerge(None, None),
                pull_request: None,
            }
        }
    };
    for o in &head {
        namespaces.learn(&o.object);
    }
    let mut scopes = Scopes::default();
    scopes.learn(&base);
    scopes.learn(&head);
    let namespace = &config.repository.default_namespace;
    changes::default_namespaces(&mut base, &scopes, namespace);
    changes::default_namespaces(&mut head, &scopes, namespace);
    let changes = changes::diff(base, head);
    let mut report = Report {
        range,
        files,
        checked: changes.iter().map(checked).collect(),
        items: notes.into_iter().map(note_item).collect(),
    };
    let pull_request = pull_request.filter(|_| config.provenance.enabled != Some(false));
    report.items.extend(decide_all(
        &changes,
        &Arc::new(set.clone()),
        &source,
        &Arc::new(namespaces),
        pull_request.as_ref(),
        config.policies.timeout,
    ));
    report.items.sort_by(|a, b| {
        (a.path.as_str(), a.line, a.level).cmp(&(b.path.as_str(), b.line, b.level))
    });
    Ok(report)
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn checked(c: &Change) -> Checked {
    let subject = c.object.as_ref().or(c.old_object.as_ref());
    Checked {
        path: c.path.clone(),
        line: c.line,
        operation: operation_name(&c.operation).to_string(),
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
        level: if n.problem { Level::Error } else { Level::Note },
        policy: "gitgate".into(),
        message: n.message,
        operation: None,
        object: None,
    }
}

/// Decides every change, on as many threads as the machine has.
fn decide_all(
    changes: &[Change],
    set: &Arc<PolicySet>,
    source: &Source,
    namespaces: &Arc<NamespaceMap>,
    pull_request: Option<&PullRequest>,
    limit: Duration,
) -> Vec<Item> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(changes.len().max(1));
    let chunk = changes.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = changes
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .flat_map(|c| decide_one(c, set, source, namespaces, pull_request, limit))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// The document for a change, as the webhook would build it for the same object, apart from
/// what CI cannot know (the user, the uid).
pub fn document(change: &Change, source: &Source) -> Option<Document> {
    let mut source = source.clone();
    source.path = Some(change.path.clone());
    source.line = Some(change.line);
    Document::from_manifest(
        &change.path,
        change.operation.clone(),
        change.object.clone(),
        change.old_object.clone(),
        source,
    )
    .ok()
}

fn decide_one(
    change: &Change,
    set: &Arc<PolicySet>,
    source: &Source,
    namespaces: &Arc<NamespaceMap>,
    pull_request: Option<&PullRequest>,
    limit: Duration,
) -> Vec<Item> {
    let Some(mut doc) = document(change, source) else {
        return Vec::new();
    };
    if let Some(pr) = pull_request {
        doc.provenance = Some(pr.verdict(&change.path, change.line).to_value());
    }
    let identity = doc
        .subject()
        .and_then(Identity::of_object)
        .map(|id| id.describe());
    let operation = operation_name(&change.operation);
    let decision = decide_within(set, namespaces, doc, limit);
    // A finding whose details name a path (`details.path`, as the built-in policies give)
    // points at that field's line; others at the object's first line.
    let item =
        |level: Level, policy: &str, message: String, details: Option<&serde_json::Value>| Item {
            path: change.path.clone(),
            line: details
                .and_then(|d| d.get("path"))
                .and_then(serde_json::Value::as_str)
                .and_then(|p| change.lines.find_path(p))
                .unwrap_or(change.line),
            level,
            policy: policy.to_string(),
            message,
            operation: Some(operation.to_string()),
            object: identity.clone(),
        };
    let mut items = Vec::new();
    for f in decision
        .violations
        .iter()
        .chain(&decision.warnings)
        .chain(&decision.dryrun)
    {
        let level = match f.action {
            Enforcement::Deny => Level::Error,
            Enforcement::Warn => Level::Warning,
            Enforcement::Dryrun => Level::Note,
        };
        items.push(item(
            level,
            &f.policy,
            f.message.clone(),
            f.details.as_ref(),
        ));
    }
    for e in &decision.errors {
        items.push(item(Level::Error, &e.policy, e.message.clone(), None));
    }
    items
}

/// Decides a document within `limit` (`policies.timeout`): a decision that misses it, or
/// panics, is an error of the document, never a pass.
fn decide_within(
    set: &Arc<PolicySet>,
    namespaces: &Arc<NamespaceMap>,
    doc: Document,
    limit: Duration,
) -> decision::Decision {
    let (set, namespaces) = (set.clone(), namespaces.clone());
    let work = move || {
        let ctx = Context {
            namespaces: &*namespaces,
            data: None,
        };
        decision::decide(&set, &doc, &ctx)
    };
    match crate::isolate::within(limit, work) {
        Ok(decision) => decision,
        Err(missed) => decision::Decision {
            allowed: false,
            errors: vec![decision::PolicyFailure {
                policy: "gitgate".into(),
                message: format!(
                    "the policies could not decide: {missed} (policies.timeout: {})",
                    humantime::format_duration(limit)
                ),
            }],
            ..Default::default()
        },
    }
}

/// What was read of the repository or the files.
struct Read {
    base: Vec<FileObject>,
    head: Vec<FileObject>,
    notes: Vec<Note>,
    range: Option<Range>,
    files: usize,
    source: Source,
    /// The pull request's commits, for a range.
    pull_request: Option<PullRequest>,
}

/// Reads the changed files of a range. With `namespaces`, the labels of every Namespace at the
/// head (changed or not) are collected too, for `namespaceSelector`.
fn read_range(
    repo_dir: &Path,
    base: Option<&str>,
    head: Option<&str>,
    config: &Config,
    namespaces: Option<&mut NamespaceMap>,
) -> Result<Read, CheckError> {
    let repo = Repo::open(repo_dir)?;
    let head_rev = head.unwrap_or("HEAD");
    let head_id = repo.resolve(head_rev)?;
    // What the pull request changed is measured from where it forked, as `git diff base...head`
    // and the pull request's page do: a base that moved on since does not add its own changes.
    let base_id = match base {
        Some(rev) => repo.merge_base(repo.resolve(rev)?, head_id)?,
        None => repo.merge_base(repo.protected_branch(&config.repository.branch)?, head_id)?,
    };
    let roots = &config.repository.paths;
    let base_files = repo.manifest_files(base_id, roots)?;
    let head_files = repo.manifest_files(head_id, roots)?;
    // The pull request's own commits must be approved too when signatures are required.
    let trust = crate::provenance::approval::Trust::from_config(&config.approval)
        .map_err(CheckError::Trust)?;
    let changed = head_files
        .iter()
        .filter(|(path, id)| base_files.get(*path) != Some(id))
        .chain(
            base_files
                .iter()
                .filter(|(path, id)| head_files.get(*path) != Some(id)),
        )
        .map(|(path, _)| path.clone())
        .collect();
    let pull_request = PullRequest::read(
        &repo,
        (base_id, &base_files),
        (head_id, &head_files),
        changed,
        trust.as_ref(),
        roots,
    )?;
    let mut notes = pull_request.notes(&repo)?;
    let mut base_objects = Vec::new();
    let mut head_objects = Vec::new();
    let mut files = 0;
    // Only changed files matter: a path whose blob is the same at both ends holds the same
    // objects (an object moved out of it changes it).
    for (path, id) in &head_files {
        if base_files.get(path) == Some(id) {
            continue;
        }
        files += 1;
        let (objects, n) = changes::read_file_objects(path, &repo.read_blob(*id, path)?);
        head_objects.extend(objects);
        notes.extend(n);
    }
    if let Some(namespaces) = namespaces {
        for (path, id) in &head_files {
            if base_files.get(path) != Some(id) {
                continue; // changed files are read above
            }
            let (objects, _) = changes::read_file_objects(path, &repo.read_blob(*id, path)?);
            for o in &objects {
                namespaces.learn(&o.object);
            }
        }
    }
    for (path, id) in &base_files {
        if head_files.get(path) == Some(id) {
            continue;
        }
        // A file changed at both ends counts once.
        if !head_files.contains_key(path) {
            files += 1;
        }
        // Problems of the base are not the pull request's: only its objects count.
        let (objects, _) = changes::read_file_objects(path, &repo.read_blob(*id, path)?);
        base_objects.extend(objects);
    }
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
    };
    let range = Range {
        base: base_id.to_string(),
        head: head_id.to_string(),
    };
    Ok(Read {
        base: base_objects,
        head: head_objects,
        notes,
        range: Some(range),
        files,
        source,
        pull_request: Some(pull_request),
    })
}

fn read_files(paths: &[PathBuf]) -> Result<(Vec<FileObject>, Vec<Note>, usize), CheckError> {
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    let mut files = 0;
    for root in paths {
        let is_dir = root.is_dir();
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
            let bytes = std::fs::read(entry.path()).map_err(|source| CheckError::Io {
                path: path.clone(),
                source,
            })?;
            files += 1;
            let (o, n) = changes::read_file_objects(&path, &bytes);
            objects.extend(o);
            notes.extend(n);
        }
    }
    Ok((objects, notes, files))
}
