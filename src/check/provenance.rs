//! `input.provenance` for a pull request's own documents, in the shape the webhook gives
//! ([`Verdict`]): the commit of the pull request that last changed the document's file, its
//! path and line, and whether the pull request's commits are approved. A document is
//! `traceable` when every commit the pull request adds is approved (signed by a trusted key
//! when signatures are required, or signatures are not required), and `untraceable` naming an
//! unapproved commit otherwise: its content would not be approved once merged.

use std::collections::{BTreeMap, BTreeSet};

use gix::ObjectId;

use super::changes::{Note, NoteKind};
use crate::git::{Files, GitError, Repo};
use crate::provenance::approval::{self, Trust, WindowCommit};
use crate::provenance::verdict::{Status, Verdict, short};

/// At most this many commits of a pull request are walked.
const MAX_COMMITS: usize = 10_000;

/// What the pull request's commits say about its documents.
pub struct PullRequest {
    /// The commits the pull request adds, through every parent.
    commits: Vec<WindowCommit>,
    /// Changed path → the newest commit of the pull request that changed it.
    last_change: BTreeMap<String, ObjectId>,
    head: ObjectId,
    signatures_required: bool,
}

impl PullRequest {
    /// Judges every commit the pull request adds, through every parent (`hidden`: what the
    /// protected branch holds besides `base`), and finds, for each of `changed` (paths whose
    /// blob differs between `base_files` and `head_files`), the newest commit of the
    /// first-parent chain from `head` back to `base` that changed it.
    pub fn read(
        repo: &Repo,
        (base, base_files): (ObjectId, &Files),
        (head, head_files): (ObjectId, &Files),
        changed: BTreeSet<String>,
        trust: Option<&Trust>,
        (roots, hidden): (&[String], &[ObjectId]),
    ) -> Result<PullRequest, GitError> {
        let mut excluded = vec![base];
        excluded.extend(hidden.iter().copied().filter(|h| *h != head));
        let commits = approval::pull_request_commits(repo, head, &excluded, trust, MAX_COMMITS)?;
        let chain = approval::pull_request(repo, base, head, trust, MAX_COMMITS)?;
        let mut last_change = BTreeMap::new();
        let mut pending = changed;
        let mut files = head_files.clone();
        for commit in &chain {
            if pending.is_empty() {
                break;
            }
            let parent_files = match commit.parent {
                Some(p) if p == base => base_files.clone(),
                Some(p) => repo.manifest_files(p, roots)?,
                None => Files::new(),
            };
            pending.retain(|path| {
                let changed_here = files.get(path) != parent_files.get(path);
                if changed_here {
                    last_change.insert(path.clone(), commit.id);
                }
                !changed_here
            });
            files = parent_files;
        }
        Ok(PullRequest {
            commits,
            last_change,
            head,
            signatures_required: trust.is_some(),
        })
    }

    /// A report note for each commit that is not approved (they reject the pull request
    /// whatever the policies say).
    pub fn notes(&self, repo: &Repo) -> Result<Vec<Note>, GitError> {
        let mut notes = Vec::new();
        for commit in &self.commits {
            if let Err(problem) = &commit.approval {
                let info = repo.commit_info(commit.id)?;
                notes.push(Note {
                    path: String::new(),
                    line: 0,
                    message: format!(
                        "provenance: commit {} by {} is not approved: {problem}; sign it with a key in the trusted keys (git commit -S, or git rebase --exec 'git commit --amend --no-edit -S')",
                        short(&commit.id.to_string()),
                        info.committer_email
                    ),
                    kind: NoteKind::Rejects,
                });
            }
        }
        Ok(notes)
    }

    /// The verdict on the document at `path:line` of the pull request.
    pub fn verdict(&self, path: &str, line: usize) -> Verdict {
        let changed_by = self.last_change.get(path).copied().unwrap_or(self.head);
        let unapproved = self
            .commits
            .iter()
            .filter(|c| !c.approved())
            // The commit that changed the file first, if it is one of them.
            .min_by_key(|c| c.id != changed_by);
        let (status, reason) = match unapproved {
            Some(c) => (
                Status::Untraceable,
                format!(
                    "commit {} is not signed by a trusted key ({})",
                    short(&c.id.to_string()),
                    c.approval
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
            ),
            None if self.signatures_required => (
                Status::Traceable,
                format!(
                    "commit {} and every other commit of the pull request are signed by trusted keys",
                    short(&changed_by.to_string())
                ),
            ),
            None => (
                Status::Traceable,
                format!(
                    "commit {} of the pull request (signatures are not required)",
                    short(&changed_by.to_string())
                ),
            ),
        };
        Verdict::at(
            status,
            reason,
            changed_by.to_string(),
            path.to_string(),
            line,
        )
    }
}
