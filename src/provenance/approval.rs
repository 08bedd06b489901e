//! Approved commits: the first-parent chain of the protected branch (what was merged through
//! pull requests), limited to a window of the newest commits and a maximum age so that an old
//! approved configuration cannot be re-applied, each signed by a trusted key when signatures
//! are required. A commit that is not approved keeps the reason why.

use std::time::Duration;

use gix::ObjectId;

use super::openpgp::OpenPgpKeys;
use super::signers::{AllowedSigners, SignatureProblem};

/// Who may sign approved commits.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub ssh: AllowedSigners,
    pub openpgp: OpenPgpKeys,
}

impl Trust {
    /// The trusted keys the configuration names, or `None` when signatures are not required.
    /// A key file that cannot be read or parsed is an error naming it.
    pub fn from_config(approval: &crate::config::Approval) -> Result<Option<Trust>, String> {
        if !approval.require_signatures {
            return Ok(None);
        }
        let ssh = match &approval.allowed_signers {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
                AllowedSigners::parse(&path.display().to_string(), &text)
                    .map_err(|e| e.to_string())?
            }
            None => AllowedSigners::default(),
        };
        let openpgp = OpenPgpKeys::load(&approval.openpgp_keys).map_err(|e| e.to_string())?;
        Ok(Some(Trust { ssh, openpgp }))
    }

    /// Checks a commit signature: OpenPGP against the trusted keys, SSH against the allowed
    /// signers for the committer's email. Returns who signed.
    pub fn verify(
        &self,
        armored: &str,
        data: &[u8],
        email: &str,
        time: i64,
    ) -> Result<String, SignatureProblem> {
        if armored.contains("BEGIN PGP SIGNATURE") {
            if self.openpgp.is_empty() {
                return Err(SignatureProblem::OpenPgpNotTrusted);
            }
            self.openpgp.verify(armored, data)
        } else {
            self.ssh
                .verify_commit(armored, data, email, time)
                .map(|entry| entry.source.clone())
        }
    }
}
use crate::git::{CommitInfo, GitError, Repo};

/// The window of recent commits that count.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// At most this many commits, the newest first (at least 1: the tip always counts).
    pub commits: usize,
    /// Commits older than this, relative to the tip's time, fall out (the tip never does).
    pub max_age: Duration,
}

/// One commit of the window and whether it is approved.
#[derive(Debug, Clone)]
pub struct WindowCommit {
    pub id: ObjectId,
    /// Committer time, seconds since the epoch.
    pub time: i64,
    /// The first parent: the commit before it on the chain.
    pub parent: Option<ObjectId>,
    /// `Ok(signer)` (the allowed-signers entry, or `"unsigned (signatures not required)"`),
    /// or the reason it is not approved.
    pub approval: Result<String, SignatureProblem>,
}

impl WindowCommit {
    pub fn approved(&self) -> bool {
        self.approval.is_ok()
    }
}

/// Walks the first-parent chain from `tip` and judges each commit of the window.
/// `trust` is `Some` when signatures are required.
pub fn window(
    repo: &Repo,
    tip: ObjectId,
    window: Window,
    trust: Option<&Trust>,
) -> Result<Vec<WindowCommit>, GitError> {
    let mut out = Vec::new();
    let mut next = Some(tip);
    let mut tip_time = None;
    while let Some(id) = next {
        if out.len() >= window.commits.max(1) {
            break;
        }
        let info = repo.commit_info(id)?;
        let newest = *tip_time.get_or_insert(info.time);
        if !out.is_empty() && newest - info.time > window.max_age.as_secs() as i64 {
            break;
        }
        out.push(judged(&info, trust));
        next = info.parents.first().copied();
    }
    Ok(out)
}

/// A pull request's own commits, the newest first: the first-parent chain from `head` back
/// to `base` (not included). Commits of the protected branch merged into the pull request
/// were approved there and are not walked; at most `limit` commits are.
pub fn pull_request(
    repo: &Repo,
    base: ObjectId,
    head: ObjectId,
    trust: Option<&Trust>,
    limit: usize,
) -> Result<Vec<WindowCommit>, GitError> {
    let mut out = Vec::new();
    let mut next = Some(head);
    while let Some(id) = next {
        if id == base || out.len() >= limit {
            break;
        }
        let info = repo.commit_info(id)?;
        next = info.parents.first().copied();
        out.push(judged(&info, trust));
    }
    Ok(out)
}

/// One commit judged: approved when signatures are not required (`trust` is `None`), or
/// when a trusted key signed it.
fn judged(info: &CommitInfo, trust: Option<&Trust>) -> WindowCommit {
    let approval = match trust {
        None => Ok("unsigned (signatures not required)".to_string()),
        Some(trust) => match &info.signature {
            None => Err(SignatureProblem::Unsigned),
            Some((armored, data)) => trust.verify(armored, data, &info.committer_email, info.time),
        },
    };
    WindowCommit {
        id: info.id,
        time: info.time,
        parent: info.parents.first().copied(),
        approval,
    }
}
