//! The guard every door decides under, and the one fan-out over many documents.
//!
//! - [`within`]: a decision made on a thread of its own and waited for at most a limit; a
//!   panic, or the limit passing first, is a failure of the document (it fails closed), never a
//!   pass.
//! - [`Limited`]: the same guard on an async runtime, for the webhook: at most a number of
//!   decisions in flight (abandoned ones included: a permit is held until the work really
//!   ends), each on the blocking pool, answered by a deadline whatever the work does.
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

/// At most `permits` decisions at once, on tokio's blocking pool, each answered by its
/// deadline (the webhook's guard: `server.maxDecisions`, `server.timeout`).
#[derive(Debug, Clone)]
pub struct Limited {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Limited {
    pub fn new(permits: usize) -> Limited {
        Limited {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    /// Runs `work` on the blocking pool once a permit is free, and waits for it until
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
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        });
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if e.is_panic() => Err(Unanswered::Failed(format!(
                "internal error (panic): {}",
                crate::isolate::message(&*e.into_panic())
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
}
