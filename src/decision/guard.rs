//! The guard every door decides under, and the one fan-out over many documents.
//!
//! - [`within`]: a decision made on a thread of its own and waited for at most a limit; a
//!   panic, or the limit passing first, is a failure of the document (it fails closed), never a
//!   pass.
//! - [`Limited`]: the same guard on an async runtime, for the webhook: at most a number of
//!   decisions in flight (abandoned ones included: a permit is held until the work really
//!   ends), each on a decision thread of its own pool, answered by a deadline whatever the
//!   work does.
//! - [`fan_out`]: work over many documents on as many threads as asked, in order, **never
//!   losing a result**: a document whose work panics (outside a policy, where the Rego guard
//!   does not reach: building its input, matching it against Git) gets `lost`'s result, and
//!   so does every document of a thread that ended without reporting. `check` and `audit` turn
//!   those into unchecked items (exit 2).

use std::time::Duration;

use super::Decision;
use crate::isolate::{THREAD_STACK, catch_panic};

/// Decides with `work` within `limit` (see the module documentation).
pub fn within(limit: Duration, work: impl FnOnce() -> Decision + Send + 'static) -> Decision {
    match crate::isolate::within(limit, work) {
        Ok(decision) => decision,
        Err(missed) => Decision::failed(format!(
            "the policies could not decide: {missed} (policies.timeout: {})",
            humantime::format_duration(limit)
        )),
    }
}

/// Why a guarded decision has no result ([`Limited::decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswered {
    /// No permit came free before the deadline: too many decisions in flight.
    Saturated,
    /// The deadline passed first; the work goes on, abandoned, holding its permit.
    Deadline,
    /// The work panicked (the message), or was cancelled.
    Failed(String),
}

/// At most `permits` decisions at once, each on a decision thread of the guard's own, each
/// answered by its deadline (the webhook's guard: `server.maxDecisions`, `server.timeout`).
///
/// The threads are fed by a channel and started as needed, never more than `permits` (each
/// running decision holds a permit, and a thread is started only when none is idle), so a
/// decision stuck in a built-in holds its thread and its permit, never another decision's.
/// They end when the guard is dropped (its last clone) and their work is done. This replaces
/// tokio's `spawn_blocking`, whose bookkeeping cost ~20 µs a decision (BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct Limited {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// How many permits there are.
    size: usize,
    pool: std::sync::Arc<Pool>,
}

/// A decision handed to a decision thread, with the permit it holds until it ends: the work
/// returns what delivers its result, called once the thread counts itself idle again.
type Job = (
    Box<dyn FnOnce() -> Box<dyn FnOnce() + Send> + Send>,
    tokio::sync::OwnedSemaphorePermit,
);

/// The decision threads: a channel of jobs, and how many threads are idle less the jobs
/// queued for them (below zero, a job waits for a thread that is being started).
#[derive(Debug)]
struct Pool {
    jobs: crossbeam_channel::Sender<Job>,
    queue: crossbeam_channel::Receiver<Job>,
    slack: std::sync::Arc<std::sync::atomic::AtomicIsize>,
}

impl Pool {
    /// Queues `job`, starting a thread for it when no idle thread can take it.
    fn submit(&self, job: Job) -> Result<(), String> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.slack.fetch_sub(1, SeqCst) <= 0 {
            // The new thread takes this job (or another queued one: either way one thread
            // more for one job more).
            let (queue, slack) = (self.queue.clone(), self.slack.clone());
            let started = std::thread::Builder::new()
                .name("gitgate-decide".into())
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    while let Ok((work, permit)) = queue.recv() {
                        let deliver = work();
                        // Idle before the permit is free and the result is delivered: the
                        // next decision finds this thread instead of starting another.
                        slack.fetch_add(1, SeqCst);
                        drop(permit);
                        deliver();
                    }
                });
            if let Err(e) = started {
                self.slack.fetch_add(1, SeqCst);
                return Err(format!("cannot start a decision thread: {e}"));
            }
            self.slack.fetch_add(1, SeqCst);
        }
        self.jobs
            .send(job)
            .map_err(|_| "the decision threads are gone".to_string())
    }
}

impl Limited {
    pub fn new(permits: usize) -> Limited {
        let (jobs, queue) = crossbeam_channel::unbounded();
        Limited {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(permits)),
            size: permits,
            pool: std::sync::Arc::new(Pool {
                jobs,
                queue,
                slack: Default::default(),
            }),
        }
    }

    /// How many decisions may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `work` on a decision thread once a permit is free, and waits for it until
    /// `deadline`; the permit is held by the work until it ends, answered or not.
    pub async fn decide<T: Send + 'static>(
        &self,
        deadline: tokio::time::Instant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Unanswered> {
        let permit =
            match tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                _ => return Err(Unanswered::Saturated),
            };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = move || {
            // Not `isolate::catch_panic`: a panic here is outside every policy, and the
            // process's hook logs it with its location.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .map_err(|payload| crate::isolate::message(payload.as_ref()));
            Box::new(move || {
                let _ = tx.send(result);
            }) as Box<dyn FnOnce() + Send>
        };
        if let Err(why) = self.pool.submit((Box::new(job), permit)) {
            return Err(Unanswered::Failed(why));
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(panic))) => Err(Unanswered::Failed(format!(
                "internal error (panic): {panic}"
            ))),
            Ok(Err(_)) => Err(Unanswered::Failed("the decision was cancelled".into())),
            Err(_) => Err(Unanswered::Deadline),
        }
    }
}

/// Runs `work` on every item, on at most `threads` threads (8 MiB stacks), and returns the
/// results in the items' order. `key` is taken of each item before its work starts: an item
/// whose work panics gets `lost(key, why)`, and so does each item of a thread that ended
/// without its results.
pub fn fan_out<T, K, R>(
    items: Vec<T>,
    threads: usize,
    key: impl Fn(&T) -> K + Sync,
    work: impl Fn(T) -> R + Sync,
    lost: impl Fn(K, &str) -> R + Sync,
) -> Vec<R>
where
    T: Send,
    K: Send + Clone,
    R: Send,
{
    let one = |item: T| {
        let k = key(&item);
        catch_panic(|| work(item)).unwrap_or_else(|why| lost(k, &why))
    };
    let threads = threads.max(1).min(items.len().max(1));
    if threads == 1 {
        return items.into_iter().map(one).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut parts: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut rest = items.into_iter();
    loop {
        let part: Vec<T> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    let keys: Vec<Vec<K>> = parts
        .iter()
        .map(|part| part.iter().map(&key).collect())
        .collect();
    let one = &one;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                std::thread::Builder::new()
                    .stack_size(THREAD_STACK)
                    .spawn_scoped(s, move || part.into_iter().map(one).collect::<Vec<R>>())
            })
            .collect();
        handles
            .into_iter()
            .zip(keys)
            .flat_map(|(handle, keys)| {
                let joined = match handle {
                    Ok(h) => h
                        .join()
                        .map_err(|payload| crate::isolate::message(payload.as_ref())),
                    Err(e) => Err(format!("cannot start a thread: {e}")),
                };
                match joined {
                    Ok(results) => results,
                    Err(why) => keys.into_iter().map(|k| lost(k, &why)).collect(),
                }
            })
            .collect()
    })
}

/// A test hook: with `GITGATE_TEST_PANIC_ON=<text>` in the environment, the work on a
/// document whose description (`Kind namespace/name`) contains `<text>` panics outside the
/// policies' guard, so that a test of the real binary can see that nothing is lost. Read once;
/// unset, it costs one load.
pub fn injected_panic(what: &str) {
    static ON: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let on = ON.get_or_init(|| {
        std::env::var("GITGATE_TEST_PANIC_ON")
            .ok()
            .filter(|t| !t.is_empty())
    });
    if let Some(text) = on
        && what.contains(text.as_str())
    {
        panic!("injected panic (GITGATE_TEST_PANIC_ON) on {what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_lost_when_work_panics() {
        let items: Vec<u32> = (0..10).collect();
        let out = fan_out(
            items,
            3,
            |i| *i,
            |i| {
                if i == 4 {
                    panic!("boom at {i}");
                }
                format!("ok {i}")
            },
            |k, why| format!("lost {k}: {why}"),
        );
        assert_eq!(out.len(), 10);
        assert_eq!(out[4], "lost 4: boom at 4");
        assert_eq!(out[9], "ok 9");
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    fn after(ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(ms)
    }

    #[test]
    fn a_stuck_decision_holds_its_own_thread_and_permit_only() {
        runtime().block_on(async {
            let limited = Limited::new(3);
            let (release, stuck) = std::sync::mpsc::channel::<()>();
            let abandoned = limited.decide(after(50), move || {
                let _ = stuck.recv_timeout(Duration::from_secs(10));
                "late"
            });
            assert_eq!(abandoned.await, Err(Unanswered::Deadline));
            // The stuck work keeps its permit and thread; the others still decide at once.
            for i in 0..20 {
                assert_eq!(limited.decide(after(2_000), move || i * 2).await, Ok(i * 2));
            }
            // Two permits left: a third stuck decision leaves none, and the next waits for a
            // permit until its deadline.
            let (release2, stuck2) = std::sync::mpsc::channel::<()>();
            let (release3, stuck3) = std::sync::mpsc::channel::<()>();
            for stuck in [stuck2, stuck3] {
                let r = limited.decide(after(30), move || {
                    let _ = stuck.recv_timeout(Duration::from_secs(10));
                });
                assert_eq!(r.await, Err(Unanswered::Deadline));
            }
            assert_eq!(
                limited.decide(after(30), || ()).await,
                Err(Unanswered::Saturated)
            );
            for r in [release, release2, release3] {
                r.send(()).unwrap();
            }
            assert_eq!(limited.decide(after(2_000), || 7).await, Ok(7));
        });
    }

    #[test]
    fn decisions_run_on_reused_decision_threads_with_panics_caught() {
        runtime().block_on(async {
            let limited = Limited::new(8);
            let mut threads = std::collections::HashSet::new();
            for _ in 0..50 {
                let (id, name) = limited
                    .decide(after(2_000), || {
                        let t = std::thread::current();
                        (t.id(), t.name().map(str::to_string))
                    })
                    .await
                    .unwrap();
                assert_eq!(name.as_deref(), Some("gitgate-decide"));
                threads.insert(id);
            }
            // One request at a time: one thread, taken again each time.
            assert_eq!(threads.len(), 1, "{threads:?}");
            let r: Result<(), _> = limited.decide(after(2_000), || panic!("boom")).await;
            assert_eq!(
                r,
                Err(Unanswered::Failed("internal error (panic): boom".into()))
            );
            assert_eq!(limited.decide(after(2_000), || 1).await, Ok(1));
        });
    }
}
