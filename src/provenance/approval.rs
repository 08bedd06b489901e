//! Approved commits: the first-parent chain of the protected branch (what was merged through
//! pull requests), limited to a window of the newest approved commits and a maximum age so that
//! an old approved configuration cannot be re-applied, each signed by a trusted key when
//! signatures are required. A commit that is not approved keeps the reason why.
//!
//! # The window's rules
//!
//! - **It counts approved commits only**, the newest first along the first parent: a commit
//!   that is not approved (unsigned, signed by an untrusted key, dated in the future) takes no
//!   slot, so commits pushed on top of the branch cannot push the approved ones out. The walk
//!   goes past them until it has `window.commits` approved commits, and at most
//!   [`walk_limit`] commits (four times the window and 64 more, at most 10,000): a branch
//!   with more unapproved commits on top than that has an empty window, and the gate fails
//!   closed ([`super::index`], [`super::verdict`]).
//! - **`maxAge` is measured by the mirror's clock**: a commit's age is the time since the
//!   mirror first saw it ([`super::seen`]), never its own dates, which its author chose. The
//!   newest approved commit always counts, whatever its age.
//! - **A key's `valid-after`/`valid-before` is judged when the mirror first saw the commit**,
//!   so a commit backdated into the validity of a retired key is not approved.
//! - **A commit dated in the future is not approved**: its committer date may be at most
//!   [`MAX_SKEW`] seconds after the mirror first saw it (clock skew), a stable verdict.
//!
//! In CI ([`pull_request`]) the same rules judge a pull request's commits at the time of the
//! check, the moment gitgate first sees them.

use std::collections::{HashMap, HashSet, VecDeque};
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
    /// Checks a commit signature: OpenPGP against the trusted keys, SSH against the allowed
    /// signers for the committer's email whose entry is valid at `time` (when the commit was
    /// first seen). Returns who signed.
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
use super::seen::{self, FirstSeen};
use crate::git::{CommitInfo, GitError, Repo};

/// How far a committer date may be after the time the commit was first seen (clock skew
/// between the committer's machine and the mirror's): five minutes.
pub const MAX_SKEW: i64 = 300;

/// The most commits a walk reads, however large the window.
pub const MAX_WALK: usize = 10_000;

/// How many commits the walk of a window of `commits` approved commits reads at most: four
/// times the window and 64 more (at most [`MAX_WALK`], at least the window). Unapproved
/// commits beyond that many on top of the branch leave the window empty (closed), rather
/// than making every sync read the whole history.
pub fn walk_limit(commits: usize) -> usize {
    let commits = commits.max(1);
    commits
        .saturating_mul(4)
        .saturating_add(64)
        .min(MAX_WALK)
        .max(commits)
}

/// The window of recent commits that count.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// At most this many approved commits, the newest first (at least 1: the newest approved
    /// commit always counts).
    pub commits: usize,
    /// Approved commits first seen longer ago than this fall out (the newest approved never
    /// does).
    pub max_age: Duration,
}

/// One commit of the window and whether it is approved.
#[derive(Debug, Clone)]
pub struct WindowCommit {
    pub id: ObjectId,
    /// Committer time, seconds since the epoch (what the commit says; reported, never judged).
    pub time: i64,
    /// When the mirror first saw it, seconds since the epoch (what the window is judged by).
    pub first_seen: i64,
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

/// What a walk of the first-parent chain found.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// The window, newest first: the approved commits that count and the unapproved ones
    /// between them.
    pub commits: Vec<WindowCommit>,
    /// How many commits were read (the window and, when it ended by age, the commit that
    /// ended it).
    pub read: usize,
    /// The walk reached the end of the history the repository holds (the boundary of a
    /// shallow fetch, or a missing commit) before it had `window.commits` approved commits
    /// and before [`walk_limit`]: a deeper fetch may find more.
    pub truncated: bool,
}

impl Walk {
    /// Number of approved commits in the window.
    pub fn approved(&self) -> usize {
        self.commits.iter().filter(|c| c.approved()).count()
    }
}

/// The window from `tip`, every commit first seen now (no earlier sight is known): what a
/// one-off reading of a repository uses. The webhook's mirror uses [`walk`] with the times
/// it keeps.
pub fn window(
    repo: &Repo,
    tip: ObjectId,
    window: Window,
    trust: Option<&Trust>,
) -> Result<Vec<WindowCommit>, GitError> {
    let mut seen = FirstSeen::in_memory();
    Ok(walk(repo, tip, window, trust, &mut seen, seen::now())?.commits)
}

/// Walks the first-parent chain from `tip` and judges each commit: see the module
/// documentation for the rules. `trust` is `Some` when signatures are required; `seen` holds
/// (and gets) the first-seen times; `now` is the mirror's clock.
pub fn walk(
    repo: &Repo,
    tip: ObjectId,
    window: Window,
    trust: Option<&Trust>,
    seen: &mut FirstSeen,
    now: i64,
) -> Result<Walk, GitError> {
    let wanted = window.commits.max(1);
    let limit = walk_limit(window.commits);
    let max_age = i64::try_from(window.max_age.as_secs()).unwrap_or(i64::MAX);
    let mut out = Walk::default();
    let mut approved = 0;
    let mut next = Some(tip);
    // A commit is first seen no later than the commit after it on the chain.
    let mut child_seen = now;
    while let Some(id) = next {
        if approved >= wanted || out.read >= limit {
            break;
        }
        if !repo.has_object(id) {
            out.truncated = true;
            break;
        }
        let info = repo.commit_info(id)?;
        out.read += 1;
        let first_seen = seen.observe(id, now, child_seen);
        child_seen = first_seen;
        // Older than the window: so is everything before it (first-seen times only grow
        // older along the chain).
        if approved > 0 && now.saturating_sub(first_seen) > max_age {
            break;
        }
        let commit = judged_commit(&info, trust, first_seen);
        approved += usize::from(commit.approved());
        next = commit.parent;
        out.commits.push(commit);
    }
    Ok(out)
}

/// Why the newest approved commit along first parents cannot become the approved state: the
/// branch moved backwards (see [`rewind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewind {
    /// The tip of the branch: what an operator's acknowledgement names.
    pub tip: ObjectId,
    /// The newest approved commit the walk found along first parents.
    pub newest: ObjectId,
    /// What it should have descended from, or what descends from it.
    pub problem: RewindProblem,
}

/// How the branch moved backwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewindProblem {
    /// It does not descend from the last approved state the mirror accepted (a force-push, or
    /// a merge that puts an old commit first).
    NotDescendant { last: ObjectId },
    /// Another approved commit reachable from the tip (through any parent) descends from it:
    /// something newer was approved and is now hidden behind an older first parent.
    Behind { approved: ObjectId },
    /// Whether it moved backwards cannot be told from the history the mirror holds, even
    /// fetched as deep as it goes: the gate fails closed.
    Undecided { why: String },
}

/// What [`rewind`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// The newest approved commit moves the approved state forward (or there is none).
    Yes,
    /// The branch was rewound.
    Rewound(Rewind),
    /// The history needed to tell ends before the answer (a shallow mirror's boundary, or the
    /// most a walk reads): fetch deeper and ask again; with all of it, fail closed.
    Incomplete {
        tip: ObjectId,
        newest: ObjectId,
        why: String,
    },
}

impl std::fmt::Display for Rewind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let newest = short(&self.newest);
        match &self.problem {
            RewindProblem::NotDescendant { last } => write!(
                f,
                "the protected branch was rewound: its newest approved commit along first parents, {newest}, does not descend from the last approved commit {} (a force-push, or a merge that puts an older commit first); the window stays at {}",
                short(last),
                short(last)
            ),
            RewindProblem::Behind { approved } => write!(
                f,
                "the protected branch was rewound: its newest approved commit along first parents, {newest}, is an ancestor of the approved commit {} that the tip still reaches through another parent (a merge that puts an older commit first)",
                short(approved)
            ),
            RewindProblem::Undecided { why } => write!(
                f,
                "the protected branch may have been rewound: whether its newest approved commit along first parents, {newest}, moves the approved state forward cannot be told ({why}); the window does not move"
            ),
        }?;
        write!(
            f,
            "; an approved commit on top of the last approved state moves it on, or acknowledge the branch as it is now with approval.acknowledgeRewind: {}",
            self.tip
        )
    }
}

/// A commit id as messages show it (12 hex digits).
fn short(id: &ObjectId) -> String {
    let mut text = id.to_string();
    text.truncate(12);
    text
}

/// Whether the approved state moves forward: **the newest approved commit along first parents
/// must descend from `last`** (the newest approved commit of the previous sync, kept with the
/// first-seen times so that a restart remembers it), **and must not be an ancestor of another
/// approved commit that the tip reaches through any parent**. The first catches a force-push
/// and a merge whose first parent is an old approved commit; the second catches the merge even
/// when nothing was remembered (a first start).
///
/// Only the commits between the tip and the newest approved commit are read for the second
/// rule (none when the tip is approved, the usual case), at most [`MAX_WALK`]; the first reads
/// the window's first-parent chain and, when `last` is not on it, the history from the newest
/// approved commit, at most [`MAX_WALK`] commits. **Missing history never reads as an
/// answer**: when either walk reaches the end of what the repository holds (a shallow
/// mirror's boundary) or [`MAX_WALK`] before it can tell, the result is
/// [`Forward::Incomplete`], for the caller to fetch deeper, and to fail closed when it cannot.
pub fn rewind(
    repo: &Repo,
    walk: &Walk,
    last: Option<ObjectId>,
    trust: Option<&Trust>,
    seen: &FirstSeen,
    now: i64,
) -> Result<Forward, GitError> {
    let Some(position) = walk.commits.iter().position(WindowCommit::approved) else {
        return Ok(Forward::Yes);
    };
    let newest = walk.commits[position].id;
    let tip = walk.commits[0].id;
    if let Some(last) = last
        && last != newest
        && !walk.commits[position..].iter().any(|c| c.id == last)
    {
        match reaches(repo, newest, last)? {
            Reach::Found => {}
            Reach::NotFound => {
                return Ok(Forward::Rewound(Rewind {
                    tip,
                    newest,
                    problem: RewindProblem::NotDescendant { last },
                }));
            }
            Reach::Truncated => {
                return Ok(Forward::Incomplete {
                    tip,
                    newest,
                    why: format!(
                        "the history from {} ends before it reaches the last approved commit {}",
                        short(&newest),
                        short(&last)
                    ),
                });
            }
        }
    }
    if position == 0 {
        // The tip itself is the newest approved commit: nothing lies above it.
        return Ok(Forward::Yes);
    }
    // The history between the tip and `newest`, through every parent: what descends from
    // `newest` is what reaches it.
    let judged: HashMap<ObjectId, bool> =
        walk.commits.iter().map(|c| (c.id, c.approved())).collect();
    let below: HashSet<ObjectId> = walk.commits[position..].iter().map(|c| c.id).collect();
    let mut parents: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    let mut queue = VecDeque::from([walk.commits[0].id]);
    let mut infos: HashMap<ObjectId, CommitInfo> = HashMap::new();
    let mut truncated = false;
    while let Some(id) = queue.pop_front() {
        if parents.contains_key(&id) {
            continue;
        }
        if parents.len() >= MAX_WALK {
            truncated = true;
            break;
        }
        // `newest` and what the window's first-parent chain holds below it are its ancestors:
        // nothing past them descends from it.
        if below.contains(&id) {
            parents.insert(id, Vec::new());
            continue;
        }
        if !repo.has_object(id) {
            truncated = true;
            parents.insert(id, Vec::new());
            continue;
        }
        let info = repo.commit_info(id)?;
        queue.extend(info.parents.iter().copied());
        parents.insert(id, info.parents.clone());
        infos.insert(id, info);
    }
    // What reaches `newest`: up the child edges from it.
    let mut children: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    for (id, ps) in &parents {
        for p in ps {
            children.entry(*p).or_default().push(*id);
        }
    }
    let mut reaching = HashSet::from([newest]);
    let mut up = vec![newest];
    while let Some(id) = up.pop() {
        for child in children.get(&id).into_iter().flatten() {
            if reaching.insert(*child) {
                up.push(*child);
            }
        }
    }
    let approved = |id: &ObjectId| match judged.get(id) {
        Some(approved) => *approved,
        None => infos.get(id).is_some_and(|info| {
            let first_seen = seen.get(id).unwrap_or(now);
            judged_commit(info, trust, first_seen).approved()
        }),
    };
    let mut descendants: Vec<&ObjectId> = reaching.iter().filter(|id| **id != newest).collect();
    descendants.sort();
    if let Some(hidden) = descendants.into_iter().find(|id| approved(id)) {
        return Ok(Forward::Rewound(Rewind {
            tip,
            newest,
            problem: RewindProblem::Behind { approved: *hidden },
        }));
    }
    if truncated {
        // An approved commit the walk could not connect to `newest` either way may descend
        // from it through the history that is missing.
        let mut unknown: Vec<&ObjectId> = infos
            .keys()
            .filter(|id| !reaching.contains(*id) && !below.contains(*id))
            .collect();
        unknown.sort();
        if let Some(id) = unknown.into_iter().find(|id| approved(id)) {
            return Ok(Forward::Incomplete {
                tip,
                newest,
                why: format!(
                    "the approved commit {} that the tip reaches may descend from it through history the mirror does not hold",
                    short(id)
                ),
            });
        }
    }
    Ok(Forward::Yes)
}

/// Whether a walk found a commit.
enum Reach {
    Found,
    NotFound,
    /// The history the repository holds (or [`MAX_WALK`]) ended first.
    Truncated,
}

/// Whether `ancestor` is reachable from `from` through any parent, reading at most
/// [`MAX_WALK`] commits.
fn reaches(repo: &Repo, from: ObjectId, ancestor: ObjectId) -> Result<Reach, GitError> {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([from]);
    let mut truncated = false;
    while let Some(id) = queue.pop_front() {
        if id == ancestor {
            return Ok(Reach::Found);
        }
        if !seen.insert(id) {
            continue;
        }
        if seen.len() > MAX_WALK || !repo.has_object(id) {
            truncated = true;
            continue;
        }
        queue.extend(repo.commit_info(id)?.parents);
    }
    Ok(if truncated {
        Reach::Truncated
    } else {
        Reach::NotFound
    })
}

/// A pull request's own commits, the newest first: the first-parent chain from `head` back
/// to `base` (not included). Commits of the protected branch merged into the pull request
/// were approved there and are not walked; at most `limit` commits are. They are judged now,
/// when the check first sees them.
pub fn pull_request(
    repo: &Repo,
    base: ObjectId,
    head: ObjectId,
    trust: Option<&Trust>,
    limit: usize,
) -> Result<Vec<WindowCommit>, GitError> {
    let now = seen::now();
    let mut out = Vec::new();
    let mut next = Some(head);
    while let Some(id) = next {
        if id == base || out.len() >= limit {
            break;
        }
        let info = repo.commit_info(id)?;
        next = info.parents.first().copied();
        out.push(judged_commit(&info, trust, now));
    }
    Ok(out)
}

/// Every commit a pull request adds, through every parent: reachable from `head` and from
/// none of `hidden` (the merge base, the protected branch's tip: what main already holds was
/// approved there), each judged now. A merge commit signed by a trusted key does not vouch for
/// the unsigned commits on its other parents. At most `limit` commits.
pub fn pull_request_commits(
    repo: &Repo,
    head: ObjectId,
    hidden: &[ObjectId],
    trust: Option<&Trust>,
    limit: usize,
) -> Result<Vec<WindowCommit>, GitError> {
    let now = seen::now();
    repo.commits_between(head, hidden, limit)?
        .into_iter()
        .map(|id| Ok(judged_commit(&repo.commit_info(id)?, trust, now)))
        .collect()
}

/// One commit judged at `first_seen`: not approved when its committer date is later than that
/// (beyond [`MAX_SKEW`]); otherwise approved when signatures are not required (`trust` is
/// `None`), or when a key that is trusted at `first_seen` signed it.
fn judged_commit(info: &CommitInfo, trust: Option<&Trust>, first_seen: i64) -> WindowCommit {
    let ahead = info.time.saturating_sub(first_seen);
    let approval = if ahead > MAX_SKEW {
        Err(SignatureProblem::FutureDated {
            date: info.time,
            ahead,
            skew: MAX_SKEW,
        })
    } else {
        match trust {
            None => Ok("unsigned (signatures not required)".to_string()),
            Some(trust) => match &info.signature {
                None => Err(SignatureProblem::Unsigned),
                Some((armored, data)) => {
                    trust.verify(armored, data, &info.committer_email, first_seen)
                }
            },
        }
    };
    WindowCommit {
        id: info.id,
        time: info.time,
        first_seen,
        parent: info.parents.first().copied(),
        approval,
    }
}
