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
    /// Shared by every entry of the same file.
    pub path: Arc<str>,
    pub line: usize,
    pub object: Arc<Value>,
}

/// The objects of one blob, parsed once and shared by every commit that holds the blob:
/// (key, line, object).
type Parsed = Arc<Vec<(Key, usize, Arc<Value>)>>;

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
    ///
    /// Namespaced objects without a namespace get `default_namespace`; which kinds are
    /// cluster-scoped is the built-in list plus every CustomResourceDefinition in the window.
    pub fn build(
        repo: &Repo,
        window: &[WindowCommit],
        roots: &[String],
        default_namespace: &str,
        previous: Option<&Index>,
    ) -> Result<Index, GitError> {
        let mut index = Index::default();
        // First pass: the files of every approved commit, and the blobs not parsed yet.
        let mut trees: Vec<(ObjectId, Vec<(Arc<str>, ObjectId)>)> = Vec::new();
        let mut fresh: HashMap<ObjectId, Vec<FileObject>> = HashMap::new();
        let mut scopes = Scopes::default();
        for c in window {
            if let Err(e) = &c.approval {
                index.refused.push((c.id, e.to_string()));
                continue;
            }
            index.commits.push(c.id);
            let files = repo.manifest_files(c.id, roots)?;
            let mut tree = Vec::with_capacity(files.len());
            for (path, blob) in files {
                let known = index.blobs.contains_key(&blob) || fresh.contains_key(&blob);
                if !known {
                    match previous.and_then(|p| p.blobs.get(&blob)) {
                        Some(parsed) => {
                            index.blobs.insert(blob, parsed.clone());
                        }
                        None => {
                            let bytes = repo.read_blob(blob, &path)?;
                            let (objects, _) = changes::read_file_objects(&path, &bytes);
                            scopes.learn(&objects);
                            fresh.insert(blob, objects);
                        }
                    }
                }
                tree.push((Arc::from(path.as_str()), blob));
            }
            trees.push((c.id, tree));
        }
        // Second pass: defaults applied once per new blob, then every commit's entries.
        for (blob, mut objects) in fresh {
            changes::default_namespaces(&mut objects, &scopes, default_namespace);
            let parsed: Vec<(Key, usize, Arc<Value>)> = objects
                .into_iter()
                .filter_map(|o| {
                    let id = Identity::of_object(&o.object)?;
                    Some((key(&id), o.line, Arc::new(o.object)))
                })
                .collect();
            index.blobs.insert(blob, Arc::new(parsed));
        }
        for (i, (commit, tree)) in trees.into_iter().enumerate() {
            for (path, blob) in tree {
                let Some(parsed) = index.blobs.get(&blob).cloned() else {
                    continue;
                };
                for (k, line, object) in parsed.iter() {
                    if i == 0 {
                        index.newest.insert(k.clone());
                    }
                    index.entries.entry(k.clone()).or_default().push(Entry {
                        commit,
                        path: path.clone(),
                        line: *line,
                        object: object.clone(),
                    });
                }
            }
        }
        // `blobs` holds only this window's blobs: what left the window is dropped with `previous`.
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
