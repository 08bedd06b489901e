//! The index of the approved window: identity (group, kind, namespace, name) → the manifests
//! for it in each approved commit, with commit, path and line, so that an admission decision
//! looks an object up without walking Git. Blobs are parsed once and shared between commits
//! (most files do not change from one commit to the next), which is what makes folding a new
//! commit in cheap.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gix::ObjectId;
use serde_json::Value;

use super::approval::WindowCommit;
use crate::check::changes::{self, FileObject, Scopes};
use crate::git::{GitError, Repo};
use crate::input::Identity;

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

/// One manifest of an approved commit.
#[derive(Debug, Clone)]
pub struct Entry {
    pub commit: ObjectId,
    pub path: String,
    pub line: usize,
    pub object: Arc<Value>,
}

/// The objects of one blob, parsed once.
type Parsed = Arc<Vec<FileObject>>;

/// The index of a window.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// Approved commits of the window, newest first.
    pub commits: Vec<ObjectId>,
    /// Commits of the window that are not approved, with the reason.
    pub refused: Vec<(ObjectId, String)>,
    entries: HashMap<Key, Vec<Entry>>,
    /// Identities in the newest approved commit (a DELETE is traceable when Git no longer
    /// holds the object).
    newest: std::collections::HashSet<Key>,
    blobs: HashMap<ObjectId, Parsed>,
}

impl Index {
    /// Builds the index of `window` (newest first). `previous` lends its parsed blobs, so
    /// that rebuilding after a new commit parses only the blobs that commit changed.
    pub fn build(
        repo: &Repo,
        window: &[WindowCommit],
        roots: &[String],
        default_namespace: &str,
        previous: Option<&Index>,
    ) -> Result<Index, GitError> {
        let mut index = Index::default();
        let mut first = true;
        for c in window {
            let Ok(_) = &c.approval else {
                index.refused.push((
                    c.id,
                    c.approval
                        .as_ref()
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default(),
                ));
                continue;
            };
            index.commits.push(c.id);
            let files = repo.manifest_files(c.id, roots)?;
            let mut scopes = Scopes::default();
            let mut commit_objects: Vec<(String, Parsed)> = Vec::with_capacity(files.len());
            for (path, blob) in &files {
                let parsed = match index
                    .blobs
                    .get(blob)
                    .or_else(|| previous.and_then(|p| p.blobs.get(blob)))
                {
                    Some(p) => p.clone(),
                    None => {
                        let bytes = repo.read_blob(*blob, path)?;
                        let (objects, _) = changes::read_file_objects(path, &bytes);
                        Arc::new(objects)
                    }
                };
                index.blobs.insert(*blob, parsed.clone());
                scopes.learn(&parsed);
                commit_objects.push((path.clone(), parsed));
            }
            for (path, parsed) in commit_objects {
                let mut objects: Vec<FileObject> = parsed.as_ref().clone();
                changes::default_namespaces(&mut objects, &scopes, default_namespace);
                for o in objects {
                    let Some(id) = Identity::of_object(&o.object) else {
                        continue;
                    };
                    let k = key(&id);
                    if first {
                        index.newest.insert(k.clone());
                    }
                    index.entries.entry(k).or_default().push(Entry {
                        commit: c.id,
                        path: path.clone(),
                        line: o.line,
                        object: Arc::new(o.object),
                    });
                }
            }
            first = false;
        }
        Ok(index)
    }

    /// The manifests for an identity, newest commit first.
    pub fn lookup(&self, id: &Identity) -> &[Entry] {
        self.entries.get(&key(id)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether the newest approved commit holds the identity.
    pub fn in_newest(&self, id: &Identity) -> bool {
        self.newest.contains(&key(id))
    }

    /// Number of (identity, commit) manifests indexed.
    pub fn len(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Identities by number of manifests (for diagnostics).
    pub fn identities(&self) -> BTreeMap<String, usize> {
        self.entries
            .iter()
            .map(|((g, k, ns, n), v)| {
                (
                    format!("{g}/{k} {}/{n}", ns.as_deref().unwrap_or("")),
                    v.len(),
                )
            })
            .collect()
    }
}
