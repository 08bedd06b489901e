//! The webhook's view of the GitOps repository: the index of the approved window, rebuilt off
//! the request path on a timer and swapped in atomically, so that a decision reads a snapshot
//! and never touches Git. Until the first sync the webhook is not ready; when a sync fails,
//! the last good index keeps deciding and its age is reported.
//!
//! The repository is either a local path (a clone kept fresh by something else) or a remote
//! that [`super::fetch`] fetches into a bare mirror under `repository.mirrorDir` before each
//! sync.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::approval::{Trust, Window, window};
use super::index::Index;
use crate::config::Config;
use crate::git::Repo;

/// A good index and when it was made.
pub struct Snapshot {
    pub index: Index,
    pub synced_at: Instant,
}

/// The shared, swappable state.
#[derive(Default)]
pub struct Mirror {
    current: ArcSwapOption<Snapshot>,
    last_error: ArcSwapOption<String>,
    /// Set by [`Mirror::request_sync`]; the mirror thread waits on it between timer syncs,
    /// so that a request never syncs on its own thread.
    wake: (Mutex<bool>, Condvar),
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
    pub default_namespace: String,
    pub window: Window,
    /// `Some` when signatures are required.
    pub trust: Option<Arc<Trust>>,
    pub refresh: Duration,
}

impl Source {
    /// The source a configuration names, or `None` when no repository is configured or
    /// provenance is turned off. Trusted keys are loaded here: a bad key file is an error.
    pub fn from_config(config: &Config) -> Result<Option<Source>, String> {
        let Some(url) = config.repository.url.clone() else {
            return Ok(None);
        };
        if config.provenance.enabled == Some(false) {
            return Ok(None);
        }
        let remote = super::fetch::is_remote(&url).then(|| super::fetch::Remote {
            url: url.clone(),
            branch: config.repository.branch.clone(),
            dir: config.repository.mirror_dir.clone(),
            credentials: config.repository.credentials.clone(),
            ca_file: config.repository.ca_file.clone(),
            // The window's first-parent chain lies within this depth of the tip (a merge's
            // other parents are history the window never reads).
            depth: u32::try_from(config.approval.window.commits.saturating_add(1))
                .ok()
                .and_then(std::num::NonZeroU32::new),
        });
        let trust = Trust::from_config(&config.approval)?.map(Arc::new);
        Ok(Some(Source {
            path: remote
                .as_ref()
                .map_or_else(|| PathBuf::from(&url), |r| r.dir.clone()),
            remote,
            branch: config.repository.branch.clone(),
            roots: config.repository.paths.clone(),
            default_namespace: config.repository.default_namespace.clone(),
            window: Window {
                commits: config.approval.window.commits,
                max_age: config.approval.window.max_age,
            },
            trust,
            refresh: config.repository.refresh,
        }))
    }
}

impl Mirror {
    /// The current snapshot, if a sync has succeeded.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    pub fn last_error(&self) -> Option<Arc<String>> {
        self.last_error.load_full()
    }

    /// One sync: the window and its index, folded into the previous one when it continues it.
    pub fn sync(&self, source: &Source) -> Result<(), String> {
        let result = (|| {
            let candidates = match &source.remote {
                Some(remote) => {
                    remote.fetch()?;
                    vec![format!("refs/remotes/origin/{}", source.branch)]
                }
                None => vec![source.branch.clone(), format!("origin/{}", source.branch)],
            };
            let repo = Repo::open(&source.path).map_err(|e| e.to_string())?;
            let tip = repo.resolve_first(&candidates).map_err(|e| e.to_string())?;
            let commits = window(&repo, tip, source.window, source.trust.as_deref())
                .map_err(|e| e.to_string())?;
            let index = match self.snapshot() {
                Some(previous) => previous.index.advance(&repo, &commits),
                None => Index::build(&repo, &commits, &source.roots, &source.default_namespace),
            }
            .map_err(|e| e.to_string())?;
            Ok::<Index, String>(index)
        })();
        match result {
            Ok(index) => {
                self.current.store(Some(Arc::new(Snapshot {
                    index,
                    synced_at: Instant::now(),
                })));
                self.last_error.store(None);
                metrics::counter!("gitgate_git_syncs_total", "result" => "ok").increment(1);
                Ok(())
            }
            Err(e) => {
                metrics::counter!("gitgate_git_syncs_total", "result" => "error").increment(1);
                tracing::warn!(error = %e, "the Git sync failed; the last good index keeps deciding");
                self.last_error.store(Some(Arc::new(e.clone())));
                Err(e)
            }
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
            .spawn(move || {
                loop {
                    // Errors are logged and counted by `sync`; the age gauge is set when
                    // /metrics is scraped.
                    let _ = mirror.sync(&source);
                    mirror.wait_for_next(source.refresh.max(Duration::from_millis(100)));
                }
            })
            .expect("a thread for the mirror");
    }
}
