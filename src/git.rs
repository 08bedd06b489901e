//! Reading a Git repository with gix: revisions, merge bases, the manifest files of a commit
//! and their contents. Shared by `check` (a pull request's range) and provenance (approved
//! commits). Never shells out to `git`.

use std::collections::BTreeMap;
use std::path::Path;

use gix::ObjectId;

/// Why the repository could not be read. Messages name the repository and the revision.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{repo}: not a Git repository: {message}")]
    Open { repo: String, message: String },
    /// A revision that names nothing here. `what` says where it came from (`--base main`,
    /// `repository.branch main`); `hint` says what to fetch.
    #[error("{what}: {problem}{hint}")]
    Revision {
        what: String,
        problem: String,
        hint: String,
    },
    #[error("{repo}: {base} and {head} have no common ancestor{hint}")]
    NoMergeBase {
        repo: String,
        base: String,
        head: String,
        /// Why, when it is known: a shallow clone holds too little history.
        hint: String,
    },
    #[error("{repo}: cannot read {what}: {message}")]
    Read {
        repo: String,
        what: String,
        message: String,
    },
}

/// What to fetch when history is missing, as the CI systems spell it.
const HISTORY: &str = "the whole history (actions/checkout with `fetch-depth: 0`, GitLab's \
                       `GIT_DEPTH: 0`, or `git fetch --unshallow`)";

impl GitError {
    /// Names where a revision came from (`--base main`), for an error about one.
    pub fn named(self, name: impl Into<String>) -> GitError {
        match self {
            GitError::Revision { problem, hint, .. } => GitError::Revision {
                what: name.into(),
                problem,
                hint,
            },
            other => other,
        }
    }
}

/// An opened repository.
pub struct Repo {
    repo: gix::Repository,
    name: String,
}

/// A commit's manifest files: path → blob id.
pub type Files = BTreeMap<String, ObjectId>;

impl Repo {
    /// Opens the repository that contains `dir` (a work tree or a bare repository).
    pub fn open(dir: &Path) -> Result<Repo, GitError> {
        let name = dir.display().to_string();
        let mut repo = gix::discover(dir).map_err(|e| GitError::Open {
            repo: name.clone(),
            message: e.to_string(),
        })?;
        // Trees are read again and again (each commit's sources, the folders their renders
        // read): keep the recent ones decoded.
        repo.object_cache_size_if_unset(16 * 1024 * 1024);
        Ok(Repo { repo, name })
    }

    /// The name used in messages (the directory it was opened from).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Resolves a revision (`HEAD`, `main`, `origin/main`, a hash) to a commit.
    pub fn resolve(&self, rev: &str) -> Result<ObjectId, GitError> {
        let err = |problem: &str| GitError::Revision {
            what: format!("revision {rev}"),
            problem: problem.to_string(),
            hint: String::new(),
        };
        let id = self.repo.rev_parse_single(rev).map_err(|e| {
            // gix's words (`couldn't parse revision`, `delegate.traverse(..) failed`) say
            // nothing to a CI user; what is missing, and what to fetch, does.
            tracing::debug!(rev, error = %e, "cannot resolve a revision");
            self.unresolved(rev)
        })?;
        let commit = id
            .object()
            .map_err(|e| {
                tracing::debug!(rev, error = %e, "cannot read the object of a revision");
                err("names an object that cannot be read")
            })?
            .peel_to_commit()
            .map_err(|_| err("does not name a commit"))?;
        Ok(commit.id)
    }

    /// The commit the reference with exactly this full name (`refs/heads/main`) points to, or
    /// `None` when there is none. Unlike [`Repo::resolve`], which takes a revision as git's
    /// `rev-parse` does (where a tag `main` comes before the branch `main`), no other reference
    /// can stand in for it.
    pub fn resolve_ref(&self, full_name: &str) -> Result<Option<ObjectId>, GitError> {
        let err = |message: String| GitError::Revision {
            what: format!("{}: {full_name}", self.name),
            problem: message,
            hint: String::new(),
        };
        let Some(mut reference) = self
            .repo
            .try_find_reference(full_name)
            .map_err(|e| err(e.to_string()))?
        else {
            return Ok(None);
        };
        // A partial name falls back on `refs/tags/<name>` and others: only the exact name counts.
        if reference.name().as_bstr() != full_name.as_bytes() {
            return Ok(None);
        }
        let commit = reference.peel_to_commit().map_err(|e| err(e.to_string()))?;
        Ok(Some(commit.id))
    }

    /// The branch the remote's `HEAD` points to (`main` of `refs/remotes/origin/HEAD ->
    /// refs/remotes/origin/main`, as `git clone` records it), if this clone knows it.
    pub fn remote_default_branch(&self) -> Option<String> {
        let reference = self
            .repo
            .try_find_reference("refs/remotes/origin/HEAD")
            .ok()??;
        if reference.name().as_bstr() != "refs/remotes/origin/HEAD".as_bytes() {
            return None;
        }
        match reference.target() {
            gix::refs::TargetRef::Symbolic(name) => std::str::from_utf8(name.as_bstr())
                .ok()?
                .strip_prefix("refs/remotes/origin/")
                .map(str::to_string),
            gix::refs::TargetRef::Object(_) => None,
        }
    }

    /// The tip of the protected branch: `refs/heads/<branch>`, else the remote-tracking
    /// `refs/remotes/origin/<branch>` (a CI clone), never a tag or any other ref that a short
    /// name would also find.
    pub fn protected_branch(&self, branch: &str) -> Result<ObjectId, GitError> {
        for name in [
            format!("refs/heads/{branch}"),
            format!("refs/remotes/origin/{branch}"),
        ] {
            if let Some(id) = self.resolve_ref(&name)? {
                return Ok(id);
            }
        }
        Err(GitError::Revision {
            what: format!("repository.branch {branch}"),
            problem: format!(
                "the protected branch is neither refs/heads/{branch} nor refs/remotes/origin/{branch}"
            ),
            hint: format!(
                "; fetch it (`git fetch origin {branch}`) or {HISTORY}, or name the base with --base"
            ),
        })
    }

    /// Whether the repository holds the object `id` (a shallow clone lacks the parents of
    /// its boundary commits).
    pub fn has_object(&self, id: ObjectId) -> bool {
        self.repo.has_object(id)
    }

    /// Why `rev` does not resolve: an ancestor that is not in the clone (`HEAD~1` in a shallow
    /// clone), or a name that is not here at all; either way, what to fetch.
    fn unresolved(&self, rev: &str) -> GitError {
        let start = rev.find(['~', '^']).map(|i| &rev[..i]);
        let ancestor_missing =
            start.is_some_and(|s| !s.is_empty() && self.repo.rev_parse_single(s).is_ok());
        if ancestor_missing {
            GitError::Revision {
                what: format!("revision {rev}"),
                problem: "the history it names is not in this clone".into(),
                hint: format!("; fetch {}", HISTORY),
            }
        } else {
            let branch = rev
                .strip_prefix("refs/remotes/origin/")
                .or_else(|| rev.strip_prefix("origin/"))
                .unwrap_or(rev);
            GitError::Revision {
                what: format!("revision {rev}"),
                problem: "no such branch or commit".into(),
                hint: format!("; fetch it (`git fetch origin {branch}`) or {HISTORY}"),
            }
        }
    }

    /// " in this shallow clone: fetch ..." when the repository is shallow, for errors that
    /// missing history explains.
    fn shallow_hint(&self) -> String {
        if self.repo.is_shallow().unwrap_or(false) {
            format!(" in this shallow clone: fetch {HISTORY}")
        } else {
            String::new()
        }
    }

    /// The commits reachable from `head` through any parent and from none of `hidden` (as
    /// `git rev-list head ^hidden...`), at most `limit`.
    pub fn commits_between(
        &self,
        head: ObjectId,
        hidden: &[ObjectId],
        limit: usize,
    ) -> Result<Vec<ObjectId>, GitError> {
        let read = |message: String| GitError::Read {
            repo: self.name.clone(),
            what: format!("the commits of {head} not in {hidden:?}"),
            message,
        };
        let walk = self
            .repo
            .rev_walk([head])
            .with_hidden(hidden.iter().copied())
            .all()
            .map_err(|e| read(e.to_string()))?;
        let mut out = Vec::new();
        for info in walk {
            let info = info.map_err(|e| read(format!("{e}{}", self.shallow_hint())))?;
            out.push(info.id);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The merge base of two commits.
    pub fn merge_base(&self, base: ObjectId, head: ObjectId) -> Result<ObjectId, GitError> {
        let none = || GitError::NoMergeBase {
            repo: self.name.clone(),
            base: base.to_string(),
            head: head.to_string(),
            hint: self.shallow_hint(),
        };
        match self.repo.merge_base(base, head) {
            Ok(Some(id)) => Ok(id.detach()),
            Ok(None) => Err(none()),
            Err(e) => Err(GitError::Read {
                repo: self.name.clone(),
                what: format!("the merge base of {base} and {head}"),
                message: format!("{e}{}", self.shallow_hint()),
            }),
        }
    }

    /// Every blob of a commit's tree whose path is under one of `roots` (all when empty) and
    /// whose name ends in `.yaml`, `.yml` or `.json`.
    pub fn manifest_files(&self, commit: ObjectId, roots: &[String]) -> Result<Files, GitError> {
        self.files_where(commit, |path| {
            is_manifest_path(path) && under_roots(path, roots)
        })
    }

    /// The work tree's root, when the repository has one.
    pub fn workdir(&self) -> Option<&Path> {
        self.repo.workdir()
    }

    /// Every entry of a commit's tree, walked breadth first.
    fn entries(
        &self,
        commit: ObjectId,
    ) -> Result<Vec<gix::traverse::tree::recorder::Entry>, GitError> {
        let read = |what: &str, message: String| GitError::Read {
            repo: self.name.clone(),
            what: format!("{what} of commit {commit}"),
            message,
        };
        self.repo
            .find_commit(commit)
            .map_err(|e| read("the commit", e.to_string()))?
            .tree()
            .map_err(|e| read("the tree", e.to_string()))?
            .traverse()
            .breadthfirst
            .files()
            .map_err(|e| read("the tree", e.to_string()))
    }

    /// Every blob of a commit's tree whose path `keep` accepts.
    pub fn files_where(
        &self,
        commit: ObjectId,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Files, GitError> {
        let mut files = Files::new();
        for entry in self.entries(commit)? {
            if !entry.mode.is_blob() {
                continue;
            }
            let path = entry.filepath.to_string();
            if keep(&path) {
                files.insert(path, entry.oid);
            }
        }
        Ok(files)
    }

    /// The entries of a commit's tree that are not files gitgate reads, whose path `keep`
    /// accepts: symbolic links and submodules, path → (id, what it is in words).
    pub fn unread_entries(
        &self,
        commit: ObjectId,
        keep: impl Fn(&str) -> bool,
    ) -> Result<BTreeMap<String, (ObjectId, &'static str)>, GitError> {
        let mut out = BTreeMap::new();
        for entry in self.entries(commit)? {
            let what = if entry.mode.is_link() {
                "a symbolic link"
            } else if entry.mode.is_commit() {
                "a submodule"
            } else {
                continue;
            };
            let path = entry.filepath.to_string();
            if keep(&path) {
                out.insert(path, (entry.oid, what));
            }
        }
        Ok(out)
    }

    /// The id of what `path` names in `commit`'s tree (`""` for the root tree) and whether it
    /// is a tree; `None` when the commit holds nothing there.
    pub fn entry_at(
        &self,
        commit: ObjectId,
        path: &str,
    ) -> Result<Option<(ObjectId, bool)>, GitError> {
        self.entry_in(self.root_tree(commit)?, path)
    }

    /// The root tree of `commit`.
    pub fn root_tree(&self, commit: ObjectId) -> Result<ObjectId, GitError> {
        let read = |what: &str, message: String| GitError::Read {
            repo: self.name.clone(),
            what: format!("{what} of commit {commit}"),
            message,
        };
        Ok(self
            .repo
            .find_commit(commit)
            .map_err(|e| read("the commit", e.to_string()))?
            .tree_id()
            .map_err(|e| read("the tree", e.to_string()))?
            .detach())
    }

    /// What `path` names under the tree `tree` (`""`: the tree itself) and whether it is a
    /// tree; `None` when nothing is there.
    pub fn entry_in(
        &self,
        tree: ObjectId,
        path: &str,
    ) -> Result<Option<(ObjectId, bool)>, GitError> {
        let path = path.trim_matches('/');
        if path.is_empty() || path == "." {
            return Ok(Some((tree, true)));
        }
        let read = |message: String| GitError::Read {
            repo: self.name.clone(),
            what: format!("{path} in tree {tree}"),
            message,
        };
        let entry = self
            .repo
            .find_tree(tree)
            .map_err(|e| read(e.to_string()))?
            .lookup_entry_by_path(path)
            .map_err(|e| read(e.to_string()))?;
        Ok(entry.map(|e| (e.object_id(), e.mode().is_tree())))
    }

    /// Every blob under the tree `tree`, by its path relative to that tree. Symbolic links and
    /// submodules are not blobs here: they are left out.
    pub fn tree_files(&self, tree: ObjectId) -> Result<Files, GitError> {
        let read = |message: String| GitError::Read {
            repo: self.name.clone(),
            what: format!("tree {tree}"),
            message,
        };
        let entries = self
            .repo
            .find_tree(tree)
            .map_err(|e| read(e.to_string()))?
            .traverse()
            .breadthfirst
            .files()
            .map_err(|e| read(e.to_string()))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.mode.is_blob())
            .map(|e| (e.filepath.to_string(), e.oid))
            .collect())
    }

    /// The contents of a blob (`path` names it in errors).
    pub fn read_blob(&self, id: ObjectId, path: &str) -> Result<Vec<u8>, GitError> {
        let blob = self.repo.find_blob(id).map_err(|e| GitError::Read {
            repo: self.name.clone(),
            what: format!("{path} (blob {id})"),
            message: e.to_string(),
        })?;
        Ok(blob.data.clone())
    }
}

/// What approval needs to know of a commit.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: ObjectId,
    pub parents: Vec<ObjectId>,
    /// Committer time, seconds since the epoch.
    pub time: i64,
    pub committer_email: String,
    /// The `gpgsig` header (armored SSH or OpenPGP signature) and the bytes it signs.
    pub signature: Option<(String, Vec<u8>)>,
}

impl Repo {
    /// Reads a commit's parents, committer and signature.
    pub fn commit_info(&self, id: ObjectId) -> Result<CommitInfo, GitError> {
        let read = |message: String| GitError::Read {
            repo: self.name.clone(),
            what: format!("commit {id}"),
            message,
        };
        let commit = self
            .repo
            .find_commit(id)
            .map_err(|e| read(format!("{e}{}", self.shallow_hint())))?;
        let committer = commit.committer().map_err(|e| read(e.to_string()))?;
        let time = committer.time().map_err(|e| read(e.to_string()))?.seconds;
        let committer_email = committer.email.to_string();
        let parents = commit.parent_ids().map(|p| p.detach()).collect();
        let signature = commit
            .signature()
            .map_err(|e| read(e.to_string()))?
            .map(|(sig, data)| (sig.to_string(), data.to_bstring().to_vec()));
        Ok(CommitInfo {
            id,
            parents,
            time,
            committer_email,
            signature,
        })
    }
}

/// Whether a path names a manifest file.
pub fn is_manifest_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Whether `path` is under one of `roots` (every path is when there are none).
pub fn under_roots(path: &str, roots: &[String]) -> bool {
    roots.is_empty()
        || roots.iter().any(|root| {
            let root = root.trim_matches('/');
            root.is_empty()
                || root == "."
                || path == root
                || path
                    .strip_prefix(root)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_match_whole_components() {
        let roots = vec!["clusters/prod".to_string()];
        assert!(under_roots("clusters/prod/a.yaml", &roots));
        assert!(!under_roots("clusters/production/a.yaml", &roots));
        assert!(under_roots("x.yaml", &[]));
        assert!(under_roots("x.yaml", &[".".to_string()]));
    }
}
