//! Helpers shared by the integration tests (each test file includes this module; not every
//! file uses every helper).
#![allow(dead_code)]

pub mod binary;
pub mod engines;
pub mod gate;
pub mod pki;
pub mod signed;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The real AdmissionReview fixtures in `../shared`, or `None` (with a message saying why
/// the caller skips) where they are absent.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/admission-v1");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} is absent (the shared fixtures live beside the repository)",
            dir.display()
        );
        None
    }
}

/// Runs `git` in `dir` as `email`, with author and committer dates `at` (seconds since the
/// epoch), ignoring the user's global configuration; returns stdout, panics with stderr.
pub fn git(dir: &Path, email: &str, at: i64, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", email)
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", email)
        .env("GIT_AUTHOR_DATE", format!("@{at} +0000"))
        .env("GIT_COMMITTER_DATE", format!("@{at} +0000"))
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes `files` (path, content) into the repository at `dir` and commits them on its
/// current branch.
pub fn commit_files(dir: &Path, files: &[(&str, &[u8])], message: &str) {
    for (path, content) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, content).unwrap();
    }
    git(dir, "a@example.com", 1_780_000_000, &["add", "-A"]);
    git(
        dir,
        "a@example.com",
        1_780_000_000,
        &["commit", "-q", "-m", message],
    );
}

/// A new repository on `main` whose first commit holds `files`.
pub fn repo_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(
        dir.path(),
        "a@example.com",
        0,
        &["init", "-q", "-b", "main"],
    );
    commit_files(dir.path(), files, "the first commit");
    dir
}

/// Runs the real `gitgate` binary with `args` in `dir`; returns the exit code, stdout and
/// stderr. A panic message on stderr fails the test: gitgate reports, it never panics.
pub fn gitgate(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("gitgate runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The index of the approved window of `dir`'s `main` (5 commits, a day), with no signatures
/// required.
pub fn index_of(dir: &Path) -> gitgate::provenance::index::Index {
    use gitgate::provenance::approval::{Window, window};
    let repo = gitgate::git::Repo::open(dir).unwrap();
    let tip = repo.resolve_ref("refs/heads/main").unwrap().unwrap();
    let w = window(
        &repo,
        tip,
        Window {
            commits: 5,
            max_age: std::time::Duration::from_secs(86_400),
        },
        None,
    )
    .unwrap();
    gitgate::provenance::index::Index::build(&repo, &w, &[], "default").unwrap()
}
