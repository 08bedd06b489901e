//! A Git repository with SSH-signed history, made in a temporary directory: keys made with
//! `ssh-keygen`, commits signed by git itself (`gpg.format=ssh`), committer dates chosen by
//! the test (what an attacker controls too).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `git` and `ssh-keygen` are here (the caller skips, saying why, when not).
pub fn tools_here() -> bool {
    let runs = |tool: &str, arg: &str| Command::new(tool).arg(arg).output().is_ok();
    if runs("git", "--version") && runs("ssh-keygen", "-V") {
        true
    } else {
        eprintln!(
            "skipping: ssh-keygen and git are needed to make signed commits (.ci/run installs openssh-client)"
        );
        false
    }
}

/// The committer of every commit.
pub const EMAIL: &str = "alice@example.com";

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub const DAY: i64 = 86_400;

/// A repository on `main` (in `<temp>/repo`) and the keys beside it.
pub struct SignedRepo {
    pub dir: tempfile::TempDir,
}

impl SignedRepo {
    pub fn new() -> SignedRepo {
        let repo = SignedRepo {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(repo.path()).unwrap();
        repo.git(&["init", "-q", "-b", "main"], None, 0);
        repo
    }

    /// The work tree.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// A file beside the repository (keys, allowed signers, configuration).
    pub fn beside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes the ed25519 key `name` and returns its public half (`ssh-ed25519 AAAA... name`).
    pub fn key(&self, name: &str) -> String {
        let path = self.beside(name);
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen");
        std::fs::read_to_string(path.with_extension("pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Writes an allowed signers file (git's format) beside the repository.
    pub fn allowed_signers(&self, text: &str) -> PathBuf {
        let path = self.beside("allowed_signers");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs git in the repository as [`EMAIL`] at `at` (seconds since the epoch), signing
    /// commits with the key `sign`; returns stdout, panics with stderr.
    pub fn git(&self, args: &[&str], sign: Option<&str>, at: i64) -> String {
        git_in(
            &self.path(),
            args,
            sign.map(|k| self.beside(k)).as_deref(),
            at,
        )
    }

    /// Writes `files` (path, content) and commits them at `at`, signed with `sign`; returns
    /// the commit id.
    pub fn commit(&self, files: &[(&str, &str)], sign: Option<&str>, at: i64) -> String {
        for (path, content) in files {
            let path = self.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        self.git(&["add", "-A"], None, at);
        self.git(
            &["commit", "-q", "--allow-empty", "-m", &format!("at {at}")],
            sign,
            at,
        );
        self.git(&["rev-parse", "HEAD"], None, at)
    }
}

impl SignedRepo {
    /// Writes `file` (its name and `at` as its content) and commits it at `at`, signed with
    /// `sign`, with the file's name as the message; returns the commit id.
    pub fn commit_file(&self, file: &str, sign: Option<&str>, at: i64) -> String {
        std::fs::write(self.path().join(file), format!("{file} {at}\n")).unwrap();
        self.git(&["add", "-A"], None, at);
        self.git(&["commit", "-q", "-m", file], sign, at);
        self.git(&["rev-parse", "HEAD"], None, at)
    }
}

/// Runs git in `dir` as [`EMAIL`] at `at`, signing commits with the private key at `key`.
pub fn git_in(dir: &Path, args: &[&str], key: Option<&Path>, at: i64) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", EMAIL)
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", EMAIL)
        .env("GIT_AUTHOR_DATE", format!("@{at} +0000"))
        .env("GIT_COMMITTER_DATE", format!("@{at} +0000"));
    if let Some(key) = key {
        cmd.args(["-c", "gpg.format=ssh", "-c"])
            .arg(format!("user.signingkey={}", key.display()))
            .args(["-c", "commit.gpgsign=true"]);
    }
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A ConfigMap manifest `name` in namespace `demo`.
pub fn configmap(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: demo}}\ndata: {{a: b}}\n"
    )
}
