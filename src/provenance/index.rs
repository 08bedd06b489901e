//! The index of the approved window: identity (group, kind, namespace, name) → the distinct
//! versions of its manifest in the window's approved commits, each with the newest and oldest
//! commit that hold it, its path and line. A decision looks an object up without walking Git.
//!
//! **When the window holds no approved commit** (every commit walked is unapproved), the index
//! holds no versions, and it keeps what the newest approved commit it knew held (the last good
//! index's, [`Index::last_approved`]): the gate fails closed, refusing DELETEs of those objects
//! ([`super::verdict`]), rather than reading "Git no longer holds it" from an empty window.
//!
//! Why versions and not one entry per commit: most objects do not change from one commit to
//! the next, so 10,000 manifests over 200 commits are ~10,000 versions, not 2,000,000 entries;
//! and a new commit is folded in by touching only what it holds ([`Index::advance`]).
//! Blobs are parsed once and shared.

use std::collections::{HashMap, HashSet, VecDeque};
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
    pub object: Arc<Value>,
    newest_seq: u64,
    oldest_seq: u64,
}

/// The objects of one blob, parsed (and defaulted) once: (key, line, object).
type Parsed = Arc<Vec<(Key, usize, Arc<Value>)>>;

/// The index of a window.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// Approved commits of the window with their sequence numbers, newest first.
    commits: VecDeque<(u64, ObjectId)>,
    /// Commits of the window that are not approved, with the reason, oldest first.
    pub refused: Vec<(ObjectId, String)>,
    versions: HashMap<Key, Vec<Version>>,
    /// Identities in the newest approved commit (a DELETE is traceable when Git no longer
    /// holds the object); when the window is empty, the last good window's.
    newest: HashSet<Key>,
    /// The newest approved commit: this window's, or when it is empty the last good window's.
    newest_commit: Option<ObjectId>,
    blobs: HashMap<ObjectId, Parsed>,
    next_seq: u64,
    roots: Vec<String>,
    default_namespace: String,
    scopes: Scopes,
}

impl Index {
    /// Builds the index of `window` (newest first, as [`approval::window`](super::approval::window)
    /// returns it).
    ///
    /// Namespaced objects without a namespace get `default_namespace`; which kinds are
    /// cluster-scoped is the built-in list plus the CustomResourceDefinitions seen.
    pub fn build(
        repo: &Repo,
        window: &[WindowCommit],
        roots: &[String],
        default_namespace: &str,
    ) -> Result<Index, GitError> {
        let mut index = Index {
            roots: roots.to_vec(),
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
                window.iter().all(|c| {
                    let is_known =
                        known.contains(&c.id) || self.refused.iter().any(|(id, _)| *id == c.id);
                    // New commits come first, then only known ones.
                    let ok = is_known || !seen_known;
                    seen_known |= is_known;
                    ok
                }) && seen_known
            }
        };
        if !continues {
            let mut next = Index::build(repo, window, &self.roots, &self.default_namespace)?;
            if next.commits.is_empty() {
                // Closed: what the last good index held is what DELETEs are judged against.
                next.newest = self.newest.clone();
                next.newest_commit = self.newest_commit;
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
        // Fold in the new commits, oldest first.
        for c in window.iter().rev() {
            if known.contains(&c.id) || refused_before.contains(&c.id) {
                continue;
            }
            match &c.approval {
                Ok(_) => self.push(repo, c.id)?,
                Err(e) => self.refused.push((c.id, e.to_string())),
            }
        }
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
        Ok(())
    }

    /// Adds the newest approved commit.
    fn push(&mut self, repo: &Repo, commit: ObjectId) -> Result<(), GitError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let previous = self.commits.front().map(|(s, _)| *s);
        let files = repo.manifest_files(commit, &self.roots)?;
        // Parse the new blobs first, so that CRDs among them inform the defaults.
        let mut fresh: Vec<(ObjectId, Vec<FileObject>)> = Vec::new();
        for (path, blob) in &files {
            if !self.blobs.contains_key(blob) && !fresh.iter().any(|(b, _)| b == blob) {
                let bytes = repo.read_blob(*blob, path)?;
                let (objects, _) = changes::read_file_objects(path, &bytes);
                self.scopes.learn(&objects);
                fresh.push((*blob, objects));
            }
        }
        for (blob, mut objects) in fresh {
            changes::default_namespaces(&mut objects, &self.scopes, &self.default_namespace);
            let parsed = objects
                .into_iter()
                .filter_map(|o| {
                    let id = Identity::of_object(&o.object)?;
                    Some((key(&id), o.line, Arc::new(o.object)))
                })
                .collect();
            self.blobs.insert(blob, Arc::new(parsed));
        }
        self.newest.clear();
        let mut used = HashSet::new();
        for (path, blob) in &files {
            used.insert(*blob);
            let parsed = self.blobs[blob].clone();
            let path: Arc<str> = Arc::from(path.as_str());
            for (k, line, object) in parsed.iter() {
                self.newest.insert(k.clone());
                let versions = self.versions.entry(k.clone()).or_default();
                match versions.first_mut() {
                    // The same manifest as in the previous approved commit: extend its run.
                    Some(v)
                        if Some(v.newest_seq) == previous
                            && (Arc::ptr_eq(&v.object, object) || v.object == *object)
                            && v.path == path =>
                    {
                        v.newest_seq = seq;
                        v.commit = commit;
                        v.line = *line;
                    }
                    _ => versions.insert(
                        0,
                        Version {
                            commit,
                            since: commit,
                            path: path.clone(),
                            line: *line,
                            object: object.clone(),
                            newest_seq: seq,
                            oldest_seq: seq,
                        },
                    ),
                }
            }
        }
        // Only the newest commit's blobs can be reused by the next one.
        self.blobs.retain(|b, _| used.contains(b));
        self.commits.push_front((seq, commit));
        self.newest_commit = Some(commit);
        Ok(())
    }

    /// The versions of an identity's manifest in the window, newest first.
    pub fn lookup(&self, id: &Identity) -> &[Version] {
        self.versions
            .get(&key(id))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether the newest approved commit holds the identity (when the window is empty, the
    /// newest approved commit of the last good window: see [`Index::last_approved`]).
    pub fn in_newest(&self, id: &Identity) -> bool {
        self.newest.contains(&key(id))
    }

    /// The objects of the newest approved commit of the window, each with the version that
    /// commit holds: what the cluster should hold (`audit` reports those it lacks). Empty
    /// when the window is.
    pub fn newest_objects(&self) -> impl Iterator<Item = (&Key, &Version)> + '_ {
        let newest = self.commits.front().map(|(_, id)| *id);
        self.newest.iter().filter_map(move |key| {
            let version = self
                .versions
                .get(key)?
                .iter()
                .find(|v| Some(v.commit) == newest)?;
            Some((key, version))
        })
    }

    /// Whether the window holds no approved commit: the gate fails closed.
    pub fn window_is_empty(&self) -> bool {
        self.commits.is_empty()
    }

    /// The newest approved commit: the window's, or when the window is empty the newest of the
    /// last window that had one (`None` when none was ever seen).
    pub fn last_approved(&self) -> Option<ObjectId> {
        self.newest_commit
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
        match self.newest_commit {
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

/// A commit id as messages show it (12 hex digits).
fn short(id: &ObjectId) -> String {
    let mut text = id.to_string();
    text.truncate(12);
    text
}
