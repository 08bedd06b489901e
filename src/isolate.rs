//! Work that must not take the process down nor overstay: a panic caught and turned into an
//! error, and work run against a deadline on a thread of its own, abandoned when it misses it.
//!
//! Why: a gate that loses its answer fails open. A panic inside the Rego engine (a built-in
//! that divides by zero) would otherwise unwind through `check` (which then reported the
//! object as passed) or cancel the webhook's HTTP stream (so the API server's failurePolicy
//! decided instead of gitgate's `failureMode`). And the engine's timer is read between steps
//! only, never inside one long built-in call, so a deadline needs a watchdog that answers
//! without waiting for the work.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::sync::mpsc;
use std::time::Duration;

/// The stack of the threads gitgate decides on (the webhook's runtime and decision threads, the
/// mirror's, `check`'s, and [`within`]'s): objects may nest up to
/// [`input::MAX_DEPTH`](crate::input::MAX_DEPTH) levels, and matching, the Rego conversion
/// and a policy walking the object each recurse once per level; 8 MiB leaves room for that
/// even in a debug build, where a level's frames are several times larger (the default is
/// 2 MiB). Memory is taken only as the stack is used.
pub const THREAD_STACK: usize = 8 << 20;

thread_local! {
    /// Set while [`catch_panic`] runs: the panic is the caller's to report, with its context
    /// (the policy's name), so the process-wide hook stays quiet.
    static CAUGHT: Cell<bool> = const { Cell::new(false) };
}

/// Installs the process's panic hook once: a panic that [`catch_panic`] catches is not printed
/// (its caller reports it as an error with context); any other is logged as an error and then
/// printed as usual.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAUGHT.with(Cell::get) {
                return;
            }
            tracing::error!(panic = %message(info.payload()), location = ?info.location().map(|l| format!("{}:{}", l.file(), l.line())), "internal error (panic)");
            previous(info);
        }));
    });
}

/// Runs `f`, turning a panic into `Err(message)`.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_panic_hook();
    let was = CAUGHT.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CAUGHT.with(|c| c.set(was));
    result.map_err(|payload| message(payload.as_ref()))
}

/// The text of a panic's payload.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Why [`within`] has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missed {
    /// The deadline passed first; the work goes on, abandoned, on its thread.
    #[error("no result within {}", humantime::format_duration(*.0))]
    Deadline(Duration),
    /// The work panicked.
    #[error("internal error (panic): {0}")]
    Panicked(String),
    /// No thread could be started.
    #[error("cannot start a thread: {0}")]
    Spawn(String),
}

/// Runs `f` on a thread of its own and waits at most `limit` for its result. When the limit
/// passes first, the thread is abandoned: it finishes (or hits the engine's own limit) on its
/// own, and its result is dropped.
pub fn within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Missed> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("gitgate-eval".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let _ = tx.send(catch_panic(f));
        })
        .map_err(|e| Missed::Spawn(e.to_string()))?;
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(Missed::Panicked(panic)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Missed::Deadline(limit)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(Missed::Panicked("the worker ended without a result".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_an_error() {
        let r: Result<(), String> = catch_panic(|| panic!("boom {}", 1));
        assert_eq!(r.unwrap_err(), "boom 1");
        assert_eq!(catch_panic(|| 7).unwrap(), 7);
    }

    #[test]
    fn the_deadline_answers_without_waiting_for_the_work() {
        let started = std::time::Instant::now();
        let r = within(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(3));
            1
        });
        assert_eq!(r, Err(Missed::Deadline(Duration::from_millis(50))));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(within(Duration::from_secs(5), || 2), Ok(2));
        assert!(matches!(
            within(Duration::from_secs(5), || -> u8 { panic!("x") }),
            Err(Missed::Panicked(_))
        ));
    }
}
