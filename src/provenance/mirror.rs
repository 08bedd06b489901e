//! The webhook's view of the GitOps repository: the index of the approved window, rebuilt off
//! the request path on a timer and swapped in atomically, so that a decision reads a snapshot
//! and never touches Git. Until the first sync the webhook is not ready; when a sync fails,
//! the last good index keeps deciding and its age is reported.
//!
//! **A first sync is ready on the newest approved commit.** It indexes that commit first and
//! stores it (the webhook is ready and decides), then the newest 16 approved commits, then
//! the whole window, which on a long history of large manifests takes seconds. Meanwhile a
//! request that what is stored does not trace may be an older version of the window: it is
//! judged again on each stage stored, for half the request deadline at most (then it stays
//! refused), and the periodic audit waits for the whole window. A later sync folds new
//! commits into the whole window as before.
//!
//! The repository is either a local path (a clone kept fresh by something else) or a remote
//! that [`super::fetch`] fetches into a bare mirror under `repository.mirrorDir` before each
//! sync.
//!
//! # What a sync reads
//!
//! - **The protected branch resolves through `refs/heads/<branch>`** (a local repository) or
//!   **`refs/remotes/origin/<branch>`** (a fetched mirror, or a local clone's remote-tracking
//!   branch) and nothing else: not a tag, not a revision as `git rev-parse` reads one, where a
//!   tag `main` would come before the branch `main`.
//! - **The window counts approved commits only** ([`super::approval`]): unapproved commits on
//!   top take no slot and the walk goes past them. A fetched mirror is shallow,
//!   `window.commits + 1` commits deep; when the walk reaches that boundary before it has the
//!   window's approved commits, the sync fetches again, [`walk_limit`] + 1 deep (the most a
//!   walk reads), and walks again. The deeper depth is kept while the window needs it, so a
//!   branch with unapproved commits on top does not pay two fetches on every sync; one
//!   bounded deepening rather than step by step, so that a sync is at most two round trips.
//! - **Ages are measured by the mirror's clock** ([`super::seen`]): when it first saw each
//!   commit, persisted in the fetched mirror's directory, in memory for a local repository.
//! - **An empty window fails closed**: when no commit walked is approved, the new index holds
//!   nothing traceable and keeps what the last good index's newest approved commit held, so
//!   that DELETEs of those objects are refused; `/readyz` says not ready and why, the gauge
//!   `gitgate_window_approved_commits` reads 0, and every such sync logs an error.
//! - **The approved state never moves backwards** ([`approval::rewind`]): when the newest
//!   approved commit along first parents does not descend from the last one accepted (kept with
//!   the first-seen times, so a restart remembers it), or is an ancestor of another approved
//!   commit the tip reaches through any parent (a merge that puts an old commit first, a
//!   force-push), the window does not move: the last good index keeps deciding (at a first
//!   start there is none, and the webhook stays not ready), every such sync logs an error
//!   naming the commits, `gitgate_window_rewound` reads 1 and `/readyz` gives the reason. An
//!   approved commit on top of the last one, or `approval.acknowledgeRewind` naming the tip
//!   of the rewound branch (once: the acknowledgement is spent), moves it on.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::ProvenanceError;
use super::approval::{
    self, Forward, Rewind, RewindProblem, Trust, Walk, Window, walk, walk_limit,
};
use super::index::Index;
use super::seen::{self, FirstSeen};
use crate::git::Repo;
use crate::input::{Status, Verdict};

/// A good index and when it was made.
pub struct Snapshot {
    pub index: Index,
    pub synced_at: Instant,
    /// Whether the index holds the whole window. At a first start the newest approved
    /// commit is indexed first and decides while the older commits are read
    /// ([`Mirror::sync`]); until the whole window is in, what that index does not trace may
    /// still be an older version: [`Mirror::whole_window`] waits for it.
    pub complete: bool,
}

/// The shared, swappable state.
#[derive(Default)]
pub struct Mirror {
    current: ArcSwapOption<Snapshot>,
    last_error: ArcSwapOption<String>,
    /// Why the window did not move at the last sync: the branch was rewound.
    rewound: ArcSwapOption<String>,
    /// Set by [`Mirror::request_sync`]; the mirror thread waits on it between timer syncs,
    /// so that a request never syncs on its own thread.
    wake: (Mutex<bool>, Condvar),
    /// When each commit was first seen (loaded at the first sync); held for a whole sync.
    seen: Mutex<Option<FirstSeen>>,
    /// The depth the next fetch starts at, once a sync needed more than the window's
    /// (`Some(None)`: all of the history).
    depth: Mutex<Option<Option<NonZeroU32>>>,
    /// The depth the rewind check once needed to tell whether the branch moved forward: kept,
    /// since a shallower fetch would only need it again.
    history: Mutex<Option<Option<NonZeroU32>>>,
    /// Notified whenever a snapshot is stored ([`Mirror::newer_than`] waits on it).
    stored: (Mutex<()>, Condvar),
    /// Requests waiting for the next stage of a first sync ([`Mirror::wait_slot`]).
    waiting: std::sync::atomic::AtomicUsize,
    /// Whether a first sync stores its stages ([`Mirror::deciding`]).
    staged: bool,
}

/// A place among the requests that wait for the next stage of a first sync.
pub struct WaitSlot<'m>(&'m std::sync::atomic::AtomicUsize);

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What a sync needs from the configuration.
#[derive(Clone)]
pub struct Source {
    /// The repository read: the local path, or the bare mirror of `remote`.
    pub path: PathBuf,
    /// Fetched before each sync when the repository is remote.
    pub remote: Option<super::fetch::Remote>,
    pub branch: String,
    pub roots: Vec<String>,
    /// The sources rendered at each approved commit, with its cache.
    pub renderer: crate::render::Renderer,
    pub default_namespace: String,
    pub window: Window,
    /// `Some` when signatures are required.
    pub trust: Option<Arc<Trust>>,
    pub refresh: Duration,
    /// `approval.acknowledgeRewind`: the commit (or a prefix of at least 7 hex digits) an
    /// operator accepts as the new newest approved commit after a rewind.
    pub acknowledge_rewind: Option<String>,
}

impl Source {
    /// Where the first-seen times are persisted: in a fetched mirror's directory; a local
    /// repository keeps them in memory.
    pub fn first_seen_file(&self) -> Option<PathBuf> {
        self.remote
            .as_ref()
            .map(|r| r.dir.join(super::seen::FILE_NAME))
    }
}

impl Mirror {
    /// A mirror that decides while it syncs (the webhook's): a first sync of a long window
    /// stores the index of its newest approved commits first ([`stages`]). A default one
    /// (`gitgate audit`, which reads the index once synced) stores the whole window only.
    pub fn deciding() -> Mirror {
        Mirror {
            staged: true,
            ..Mirror::default()
        }
    }

    /// The current snapshot, if a sync has succeeded.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// A snapshot other than `seen`, waited for until `until` while `seen` is still the
    /// current one; `None` when none came by then. While a first sync reads the window
    /// ([`Snapshot::complete`] false), each of its stages is stored in turn.
    pub fn newer_than(&self, seen: &Arc<Snapshot>, until: Instant) -> Option<Arc<Snapshot>> {
        let (lock, stored) = &self.stored;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(s) = self.snapshot().filter(|s| !Arc::ptr_eq(s, seen)) {
                return Some(s);
            }
            let left = until.checked_duration_since(Instant::now())?;
            guard = stored
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The verdict of `judge` on `first`, settled for the window. What a stage of a first
    /// sync (`complete` false) traces, the window traces too, except where the window's other
    /// commits count: what the stage does not trace (an older version), a DELETE (`delete`:
    /// an older commit's last good render of a source the newest commit fails to render is
    /// still held) and a verdict that read the cluster's CRD (`judge`'s second value: an older
    /// commit's CRD may be in the window). Those are judged again on each stage stored,
    /// until `until`, while fewer than `most` requests wait (each holds a decision permit);
    /// one still unsettled then is refused, never admitted on a stage.
    pub fn judge_settled(
        &self,
        first: Arc<Snapshot>,
        until: Instant,
        most: usize,
        delete: bool,
        mut judge: impl FnMut(&Index) -> (Verdict, bool),
    ) -> Verdict {
        let unsettled = |(v, read_cluster_crd): &(Verdict, bool)| {
            v.break_glass.is_none()
                && (matches!(v.status, Status::Untraceable | Status::Modified)
                    || (!matches!(v.status, Status::Exempt | Status::Delegated)
                        && (delete || *read_cluster_crd)))
        };
        let mut seen = first;
        let mut judged = judge(&seen.index);
        if seen.complete || !unsettled(&judged) {
            return judged.0;
        }
        let slot = self.wait_slot(most);
        while slot.is_some() && !seen.complete {
            let Some(next) = self.newer_than(&seen, until) else {
                break;
            };
            seen = next;
            judged = judge(&seen.index);
            if !unsettled(&judged) {
                return judged.0;
            }
        }
        if seen.complete || !unsettled(&judged) {
            return judged.0;
        }
        tracing::warn!(
            approved_commits = seen.index.commits().count(),
            "the window's older commits are still being read: a request they may explain is refused until they are"
        );
        match judged.0.status {
            Status::Traceable => Verdict::simple(
                Status::Untraceable,
                format!(
                    "gitgate is still reading the approved window's older commits (a first start; {} read): {} is judged on the whole window, retry in a moment",
                    seen.index.commits().count(),
                    if delete {
                        "a DELETE"
                    } else {
                        "a custom resource the cluster's CRD defaults"
                    }
                ),
            ),
            _ => judged.0,
        }
    }

    /// A place to wait for the next stage, while fewer than `most` requests wait: each one
    /// waiting holds a decision permit, and those must stay for the others.
    pub fn wait_slot(&self, most: usize) -> Option<WaitSlot<'_>> {
        use std::sync::atomic::Ordering;
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < most).then_some(n + 1)
            })
            .ok()
            .map(|_| WaitSlot(&self.waiting))
    }

    /// Stores a snapshot and wakes whoever waits for the next stage.
    fn store(&self, index: Index, complete: bool) {
        let (lock, stored) = &self.stored;
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.current.store(Some(Arc::new(Snapshot {
            index,
            synced_at: Instant::now(),
            complete,
        })));
        stored.notify_all();
    }

    pub fn last_error(&self) -> Option<Arc<String>> {
        self.last_error.load_full()
    }

    /// Why the window did not move at the last sync (the branch was rewound), if it did not.
    pub fn rewound(&self) -> Option<Arc<String>> {
        self.rewound.load_full()
    }

    /// One sync: the window and its index, folded into the previous one when it continues it.
    /// A rewound branch leaves the window where it was (see the module documentation).
    pub fn sync(&self, source: &Source) -> Result<(), ProvenanceError> {
        let result = (|| {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let seen = match &mut *seen {
                Some(seen) => seen,
                empty => empty.insert(match source.first_seen_file() {
                    Some(file) => FirstSeen::load(&file)?,
                    None => FirstSeen::in_memory(),
                }),
            };
            let now = seen.clock(seen::now());
            // Whether the approved state moves forward, on history deep enough to tell: a
            // fetched mirror fetches deeper (as deep as a walk reads, then all of it) until
            // it can; what still cannot be told fails closed.
            let mut at_least = None;
            let (repo, walk, forward) = loop {
                let (repo, walk, at) = self.read(source, seen, now, at_least)?;
                let forward = approval::rewind(
                    &repo,
                    &walk,
                    seen.newest_approved(),
                    source.trust.as_deref(),
                    seen,
                    now,
                )?;
                if let Forward::Incomplete { why, .. } = &forward
                    && source.remote.is_some()
                    && let Some(next) = deeper(at, source.window.commits)
                {
                    tracing::info!(depth = next.map_or(0, NonZeroU32::get), reason = %why,
                        "fetching deeper to tell whether the protected branch moved forward (0: all of its history)");
                    at_least = Some(next);
                    continue;
                }
                break (repo, walk, forward);
            };
            let rewind = match forward {
                Forward::Yes => None,
                Forward::Rewound(rewind) => Some(rewind),
                Forward::Incomplete { tip, newest, why } => Some(Rewind {
                    tip,
                    newest,
                    problem: RewindProblem::Undecided { why },
                }),
            };
            if let Some(rewind) = rewind {
                let named = acknowledged(source.acknowledge_rewind.as_deref(), &rewind);
                if named && seen.acknowledged() != Some(rewind.tip) {
                    tracing::warn!(branch = %source.branch, tip = %rewind.tip, newest = %rewind.newest, reason = %rewind,
                        "the protected branch was rewound, and approval.acknowledgeRewind accepts the branch as it is: the window moves to its newest approved commit (the acknowledgement is spent)");
                    seen.set_acknowledged(rewind.tip);
                } else {
                    if named {
                        tracing::error!(branch = %source.branch, tip = %rewind.tip,
                            "approval.acknowledgeRewind names a tip an acknowledgement was already spent on: it does not accept another rewind to it");
                    }
                    if let Err(e) = seen.save() {
                        tracing::warn!(error = %e, "cannot save when commits were first seen");
                    }
                    return Ok(Synced::Rewound(rewind));
                }
            }
            if let Some(newest) = walk.commits.iter().find(|c| c.approved()) {
                seen.set_newest_approved(newest.id);
            }
            // Times that cannot be saved are still used: the next restart forgets them.
            if let Err(e) = seen.save() {
                tracing::warn!(error = %e, "cannot save when commits were first seen");
            }
            let index = match self.snapshot() {
                Some(previous) if previous.complete => previous.index.advance(&repo, &walk.commits),
                previous => {
                    // A first build decides early: the newest approved commit is indexed
                    // first (the webhook is ready), then the newest [`FIRST_STAGE`] approved
                    // commits, while the rest of the window is read (a long window of large
                    // manifests takes seconds).
                    // (A stage already decides when the last whole-window build failed: it
                    // is not built again, the whole window is.)
                    let staged = if previous.is_some() || !self.staged {
                        Vec::new()
                    } else {
                        stages(&walk.commits)
                    };
                    for stage in staged {
                        let started = Instant::now();
                        let first = Index::build_with(
                            &repo,
                            stage,
                            source.renderer.clone(),
                            &source.default_namespace,
                        )?;
                        if first.empty_window_reason().is_some() {
                            break;
                        }
                        tracing::info!(branch = %source.branch,
                            newest_approved = %first.last_approved().map_or_else(String::new, |c| c.to_string()),
                            approved_commits = first.commits().count(),
                            duration_ms = started.elapsed().as_millis() as u64,
                            "the newest approved commits are indexed and decide while the rest of the window is read (what they do not trace waits for it)");
                        self.store(first, false);
                    }
                    Index::build_with(
                        &repo,
                        &walk.commits,
                        source.renderer.clone(),
                        &source.default_namespace,
                    )
                }
            }?;
            for e in index.render_errors() {
                tracing::error!(branch = %source.branch, error = %e,
                    "a source of the newest approved commit cannot be rendered: its objects of older commits still count, and DELETEs of what it last rendered are refused");
            }
            if let Some(reason) = index.empty_window_reason() {
                tracing::error!(branch = %source.branch, read = walk.read, reason = %reason,
                    "the approved window is empty: gitgate fails closed (not ready; DELETEs of what Git held are refused)");
            }
            Ok::<Synced, ProvenanceError>(Synced::Index(Box::new(index)))
        })();
        match result {
            Ok(Synced::Index(index)) => {
                tracing::info!(
                    branch = %source.branch,
                    newest_approved = %index.last_approved().map_or_else(String::new, |c| c.to_string()),
                    approved_commits = index.commits().count(),
                    "the Git sync is done: the window is at the newest approved commit"
                );
                self.store(*index, true);
                self.last_error.store(None);
                self.rewound.store(None);
                metrics::gauge!("gitgate_window_rewound").set(0.0);
                metrics::counter!("gitgate_git_syncs_total", "result" => "ok").increment(1);
                Ok(())
            }
            Ok(Synced::Rewound(rewind)) => {
                let reason = rewind.to_string();
                let kept = match self.snapshot() {
                    Some(s) => format!(
                        "the last good index (newest approved commit {}) keeps deciding",
                        s.index
                            .last_approved()
                            .map_or_else(|| "none".to_string(), |c| c.to_string())
                    ),
                    None => "no index was ever built: gitgate is not ready".to_string(),
                };
                let (last, hidden) = match &rewind.problem {
                    RewindProblem::NotDescendant { last } => (Some(*last), None),
                    RewindProblem::Behind { approved } => (None, Some(*approved)),
                    RewindProblem::Undecided { .. } => (None, None),
                };
                tracing::error!(branch = %source.branch, newest = %rewind.newest,
                    last_approved = %last.map(|c| c.to_string()).unwrap_or_default(),
                    hidden_approved = %hidden.map(|c| c.to_string()).unwrap_or_default(),
                    reason = %reason, "the approved state would move backwards: the window does not move; {kept}");
                metrics::gauge!("gitgate_window_rewound").set(1.0);
                metrics::counter!("gitgate_git_syncs_total", "result" => "rewound").increment(1);
                self.rewound.store(Some(Arc::new(reason.clone())));
                self.last_error.store(Some(Arc::new(reason)));
                Err(ProvenanceError::Rewound(rewind))
            }
            Err(e) => {
                metrics::counter!("gitgate_git_syncs_total", "result" => "error").increment(1);
                if self.snapshot().is_some() {
                    tracing::warn!(error = %e, "the Git sync failed; the last good index keeps deciding");
                } else {
                    tracing::warn!(error = %e, "the Git sync failed; no index was ever built: gitgate is not ready");
                }
                self.last_error.store(Some(Arc::new(e.to_string())));
                Err(e)
            }
        }
    }

    /// Fetches (a remote), resolves the protected branch and walks its window, fetching deeper
    /// once when the shallow history ends before the window's approved commits.
    /// `at_least` is a depth the fetch must reach (the rewind check needs more history);
    /// returns the depth fetched (`None`: all of it, as a local repository holds it).
    fn read(
        &self,
        source: &Source,
        seen: &mut FirstSeen,
        now: i64,
        at_least: Option<Option<NonZeroU32>>,
    ) -> Result<(Repo, Walk, Option<NonZeroU32>), ProvenanceError> {
        let trust = source.trust.as_deref();
        let Some(remote) = &source.remote else {
            let repo = Repo::open(&source.path)?;
            let tip = branch_tip(&repo, &source.branch, true)?;
            let walk = walk(&repo, tip, source.window, trust, seen, now)?;
            return Ok((repo, walk, None));
        };
        let shallow = remote.depth;
        let deep = depth(walk_limit(source.window.commits).saturating_add(1));
        let kept = *self.depth.lock().unwrap_or_else(PoisonError::into_inner);
        let mut at = kept.unwrap_or(shallow);
        let history = *self.history.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(wanted) = at_least.or(history) {
            at = deepest(at, wanted);
        }
        loop {
            remote.fetch_at(at)?;
            let repo = Repo::open(&source.path)?;
            let tip = branch_tip(&repo, &source.branch, false)?;
            let walk = walk(&repo, tip, source.window, trust, seen, now)?;
            if walk.truncated && at.is_some() && at < deep {
                // (`at` is `Some` here: a depth, not all of the history.)
                tracing::info!(
                    depth = deep.map_or(0, NonZeroU32::get),
                    "unapproved commits on top of the branch: fetching deeper for the window's approved commits"
                );
                at = deep;
                continue;
            }
            // Keep the deeper fetch while the window reaches beyond the shallow depth, and
            // the depth the rewind check needed (a shallower fetch would only need it again).
            let needed = u32::try_from(walk.read.saturating_add(1)).ok();
            let keep = if needed.is_some_and(|n| shallow.is_some_and(|s| n > s.get())) {
                Some(at)
            } else {
                None
            };
            *self.depth.lock().unwrap_or_else(PoisonError::into_inner) = keep;
            if let Some(wanted) = at_least {
                *self.history.lock().unwrap_or_else(PoisonError::into_inner) = Some(wanted);
            }
            return Ok((repo, walk, at));
        }
    }

    /// Asks the mirror thread to sync now (a push was announced) instead of at its next tick.
    /// Returns at once; requests made during a sync are served by one more sync after it.
    pub fn request_sync(&self) {
        let (flag, wake) = &self.wake;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }

    /// Waits until `refresh` has passed or a sync was requested.
    fn wait_for_next(&self, refresh: Duration) {
        let (flag, wake) = &self.wake;
        let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut requested, _) = wake
            .wait_timeout_while(guard, refresh, |requested| !*requested)
            .unwrap_or_else(PoisonError::into_inner);
        *requested = false;
    }

    /// Syncs now, then every `source.refresh` or when [`Mirror::request_sync`] asks, on a
    /// thread of its own.
    pub fn spawn(self: &Arc<Self>, source: Source) {
        let mirror = self.clone();
        std::thread::Builder::new()
            .name("gitgate-mirror".into())
            .stack_size(crate::isolate::THREAD_STACK)
            .spawn(move || {
                loop {
                    // Errors are logged and counted by `sync`; the age gauge is set when
                    // /metrics is scraped. A panic is an error of this sync, not the end of
                    // syncing.
                    if let Err(what) = crate::isolate::catch_panic(|| mirror.sync(&source)) {
                        tracing::error!(error = %what, "the Git sync panicked; the last good index keeps deciding");
                        metrics::counter!("gitgate_git_syncs_total", "result" => "error").increment(1);
                        mirror.last_error.store(Some(Arc::new(format!("the Git sync panicked: {what}"))));
                    }
                    mirror.wait_for_next(source.refresh.max(Duration::from_millis(100)));
                }
            })
            .expect("a thread for the mirror");
    }
}

/// How many approved commits the second stage of a first sync holds ([`stages`]).
const FIRST_STAGE: usize = 16;

/// The prefixes of `window` a first sync indexes before the whole of it, where the window is
/// long enough for it to take a while: down to its newest approved commit (a window of more
/// than [`FIRST_STAGE`] approved commits), then down to its [`FIRST_STAGE`]th (of more than
/// four times that).
fn stages(window: &[approval::WindowCommit]) -> Vec<&[approval::WindowCommit]> {
    let approved: Vec<usize> = window
        .iter()
        .enumerate()
        .filter(|(_, c)| c.approved())
        .map(|(i, _)| i)
        .collect();
    [(1, FIRST_STAGE), (FIRST_STAGE, 4 * FIRST_STAGE)]
        .into_iter()
        .filter(|(_, longer)| approved.len() > *longer)
        .map(|(n, _)| &window[..=approved[n - 1]])
        .collect()
}

/// What a sync made: a new index, or nothing because the branch was rewound.
enum Synced {
    Index(Box<Index>),
    Rewound(Rewind),
}

/// Whether `acknowledged` (a full commit id, or a prefix of at least 7 hex digits) names the
/// tip of the rewound branch: the operator accepts the branch as it is at that commit (a later
/// push, another rewind included, is a new tip that needs a new acknowledgement).
fn acknowledged(acknowledged: Option<&str>, rewind: &Rewind) -> bool {
    acknowledged.is_some_and(|a| {
        let a = a.trim().to_ascii_lowercase();
        a.len() >= 7 && rewind.tip.to_string().starts_with(&a)
    })
}

/// The deeper of two fetch depths (`None`: all of the history).
fn deepest(a: Option<NonZeroU32>, b: Option<NonZeroU32>) -> Option<NonZeroU32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

/// The next depth to fetch after `at` did not hold enough history to tell whether the
/// branch moved forward: as deep as a walk reads, then all of it; `None` when `at` was all.
fn deeper(at: Option<NonZeroU32>, window: usize) -> Option<Option<NonZeroU32>> {
    let deep = depth(walk_limit(window).saturating_add(1));
    match at {
        None => None,
        Some(n) if deep.is_some_and(|d| n < d) => Some(deep),
        Some(_) => Some(None),
    }
}

/// A fetch depth of `commits` (at least 1).
pub(crate) fn depth(commits: usize) -> Option<NonZeroU32> {
    NonZeroU32::new(u32::try_from(commits).unwrap_or(u32::MAX).max(1))
}

/// The tip of the protected branch: `refs/heads/<branch>` (a local repository) and then
/// `refs/remotes/origin/<branch>`, never another reference (a tag named like the branch).
fn branch_tip(repo: &Repo, branch: &str, local: bool) -> Result<gix::ObjectId, ProvenanceError> {
    let name = branch.trim_start_matches("refs/heads/");
    let mut candidates = Vec::new();
    if local {
        candidates.push(format!("refs/heads/{name}"));
    }
    candidates.push(format!("refs/remotes/origin/{name}"));
    for candidate in &candidates {
        if let Some(id) = repo.resolve_ref(candidate)? {
            return Ok(id);
        }
    }
    Err(ProvenanceError::NoBranch {
        repo: repo.name().to_string(),
        branch: name.to_string(),
        looked_for: candidates.join(" and "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::approval::WindowCommit;
    use crate::provenance::signers::SignatureProblem;

    fn commit(n: u8, approved: bool) -> WindowCommit {
        WindowCommit {
            id: gix::ObjectId::from_bytes_or_panic(&[n; 20]),
            time: 0,
            first_seen: 0,
            parent: None,
            approval: if approved {
                Ok("unsigned (signatures not required)".into())
            } else {
                Err(SignatureProblem::Unsigned)
            },
        }
    }

    #[test]
    fn a_first_sync_indexes_the_newest_approved_commits_first() {
        // Newest first: an unapproved commit on top, then 100 approved ones.
        let mut window = vec![commit(0, false)];
        window.extend((1..=100).map(|n| commit(n, true)));
        let two = stages(&window);
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].len(), 2, "down to the newest approved commit");
        assert_eq!(two[1].len(), 1 + FIRST_STAGE);
        // A short window is built at once; one of 17 to 64 approved commits in two steps.
        assert!(stages(&window[..=FIRST_STAGE]).is_empty());
        assert_eq!(stages(&window[..FIRST_STAGE + 2]).len(), 1);
        assert_eq!(stages(&window[..=4 * FIRST_STAGE]).len(), 1);
        assert!(stages(&[commit(0, false)]).is_empty());
    }

    #[test]
    fn a_stage_admits_only_what_the_window_would() {
        use crate::input::{Status, Verdict};
        let traceable = || Verdict::simple(Status::Traceable, "as Git holds it");
        let staged = Mirror::default();
        staged.store(Index::default(), false);
        let stage = staged.snapshot().unwrap();
        let soon = || Instant::now() + Duration::from_millis(30);
        // Traced by the stage: as the window would.
        let v = staged.judge_settled(stage.clone(), soon(), 4, false, |_| (traceable(), false));
        assert_eq!(v.status, Status::Traceable);
        // A DELETE, or a verdict read from the cluster's CRD: not settled by a stage; refused
        // when the window is not in by then.
        for (delete, crd) in [(true, false), (false, true)] {
            let v = staged.judge_settled(stage.clone(), soon(), 4, delete, |_| (traceable(), crd));
            assert_eq!(v.status, Status::Untraceable, "{}", v.reason);
            assert!(v.reason.contains("still reading"), "{}", v.reason);
        }
        // No place to wait: refused at once.
        let v = staged.judge_settled(
            stage.clone(),
            soon() + Duration::from_secs(60),
            0,
            true,
            |_| (traceable(), false),
        );
        assert_eq!(v.status, Status::Untraceable);
        // Judged again on the whole window when it is stored meanwhile.
        let staged = Arc::new(staged);
        let storing = {
            let staged = staged.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                staged.store(Index::default(), true);
            })
        };
        let mut judged = 0;
        let v = staged.judge_settled(
            stage,
            Instant::now() + Duration::from_secs(60),
            4,
            true,
            |_| {
                judged += 1;
                (traceable(), false)
            },
        );
        storing.join().unwrap();
        assert_eq!((v.status, judged), (Status::Traceable, 2));
    }

    #[test]
    fn a_request_waits_for_the_next_stage_and_no_longer_than_it_may() {
        let mirror = Arc::new(Mirror::default());
        mirror.store(Index::default(), false);
        let first = mirror.snapshot().unwrap();
        // Nothing newer: `None` once the time is up.
        assert!(
            mirror
                .newer_than(&first, Instant::now() + Duration::from_millis(50))
                .is_none()
        );
        // Stored while it waits: woken with it.
        let storing = {
            let mirror = mirror.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                mirror.store(Index::default(), true);
            })
        };
        let next = mirror
            .newer_than(&first, Instant::now() + Duration::from_secs(60))
            .expect("the stage stored meanwhile");
        assert!(next.complete);
        storing.join().unwrap();
    }
}
