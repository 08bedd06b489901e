//! What the benchmarks that make Git repositories share: git, the mean time of a run, the
//! peak RSS.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `git args` in `dir` as a fixed author, with no global configuration.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@example.com")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git {args:?}");
}

/// Mean time of `f` over `n` runs.
#[allow(dead_code)] // not every benchmark times runs
pub fn per_run(n: u32, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

/// This process's peak resident set (`VmHWM`), in MiB; NaN where /proc cannot say.
#[allow(dead_code)] // not every benchmark reads it
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}
