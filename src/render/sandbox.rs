//! Where an engine runs: a fresh temporary directory holding exactly the part of the commit's
//! tree the render reads (written from Git objects, never a working tree), a home of its own,
//! no network, and limits on time and output.
//!
//! - **The tree.** Only blobs are written: a symbolic link in Git is not a link here (and so
//!   can never point out of the checkout), nor is a submodule. Nor is a file the controller's
//!   artifact leaves out (the caller names them): the engine sees what the controller builds
//!   from, so a kustomization naming such a file fails here as it fails in the cluster.
//! - **No network.** The environment is cleared; proxies point at a closed port on loopback,
//!   Helm's and kustomize's homes, caches and plugin folders are empty folders in the
//!   temporary directory, and the engines' own flags keep them local (see [`super::kustomize`]
//!   and [`super::helm`]). What the engines would fetch is refused before they run.
//! - **Limits.** The engine runs in a process group of its own. Past `render.timeout`, or once
//!   it has written `render.maxOutputBytes`, the whole group is killed with SIGKILL and the
//!   render is an error; a render never hangs a sync or a check.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gix::ObjectId;

use crate::git::Repo;

/// Where closed-port proxies point: nothing listens on the discard port of loopback, so a
/// connection fails at once instead of waiting for a timeout.
const NO_PROXY_ADDRESS: &str = "http://127.0.0.1:9";

/// The most of an engine's standard error kept for its message.
const MAX_STDERR: usize = 64 * 1024;

/// Why the temporary checkout could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A Git object of the source could not be read.
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    #[error("cannot write {path} to the temporary checkout: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A temporary checkout and home for one render. Removed when dropped.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> std::io::Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix("gitgate-render-")
            .tempdir()?;
        for sub in [
            "repo",
            "home",
            "home/.config",
            "home/.cache",
            "home/.local/share",
            "helm/cache/repository",
            "helm/config",
            "helm/data",
            "helm/plugins",
            "kustomize-plugins",
        ] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        std::fs::write(dir.path().join("helm/repositories.yaml"), "")?;
        std::fs::write(dir.path().join("helm/registry.json"), "{}")?;
        Ok(Sandbox { dir })
    }

    /// The checkout: repository paths are relative to it.
    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// A path of the sandbox outside the checkout (Helm's files, inline values).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes every blob of `tree` under the checkout's `dir`, except those whose repository
    /// path is in `left_out` (what the controller's artifact does not hold).
    pub fn write_tree(
        &self,
        repo: &Repo,
        dir: &str,
        tree: ObjectId,
        left_out: &BTreeSet<String>,
    ) -> Result<(), SandboxError> {
        let files = repo.tree_files(tree)?;
        for (rel, blob) in files {
            let path = super::paths::child(dir, &rel);
            if !left_out.contains(&path) {
                self.write_blob(repo, &path, blob)?;
            }
        }
        Ok(())
    }

    /// Writes one blob at the checkout's `path`.
    pub fn write_blob(&self, repo: &Repo, path: &str, blob: ObjectId) -> Result<(), SandboxError> {
        let bytes = repo.read_blob(blob, path)?;
        self.write_file(path, &bytes)
    }

    /// Writes `bytes` at the checkout's `path`.
    pub fn write_file(&self, path: &str, bytes: &[u8]) -> Result<(), SandboxError> {
        let target = self.repo().join(path);
        let failed = |source| SandboxError::Write {
            path: path.to_string(),
            source,
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        std::fs::write(&target, bytes).map_err(failed)
    }

    /// The command for `program`, to run in the checkout with a clean environment: `PATH`
    /// kept (an engine may be a script), a home of its own, proxies to a closed port.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        let home = self.path("home");
        cmd.current_dir(self.repo()).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let env: [(&str, OsString); 11] = [
            ("HOME", home.clone().into()),
            ("XDG_CONFIG_HOME", home.join(".config").into()),
            ("XDG_CACHE_HOME", home.join(".cache").into()),
            ("XDG_DATA_HOME", home.join(".local/share").into()),
            ("KUBECONFIG", home.join("no-kubeconfig").into()),
            (
                "KUSTOMIZE_PLUGIN_HOME",
                self.path("kustomize-plugins").into(),
            ),
            ("HELM_CACHE_HOME", self.path("helm/cache").into()),
            ("HELM_CONFIG_HOME", self.path("helm/config").into()),
            ("HELM_DATA_HOME", self.path("helm/data").into()),
            ("HELM_PLUGINS", self.path("helm/plugins").into()),
            ("GIT_TERMINAL_PROMPT", "0".into()),
        ];
        cmd.envs(env);
        for proxy in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env(proxy, NO_PROXY_ADDRESS);
        }
        cmd.env("NO_PROXY", "").env("no_proxy", "");
        cmd
    }
}

/// Why a run did not produce output.
#[derive(Debug)]
pub enum Failure {
    /// The program could not be started.
    Spawn(std::io::Error),
    /// It exited unsuccessfully; its standard error (trimmed).
    Exit(String),
    /// It ran past the time limit and was killed.
    Timeout,
    /// It wrote more than the output limit and was killed.
    TooLarge,
}

/// What the reader of standard output saw.
enum Event {
    Eof(Vec<u8>),
    TooLarge,
    Error(std::io::Error),
}

/// Runs `cmd` in a process group of its own and returns its standard output, killing the
/// whole group when it runs past `timeout` or writes more than `max_output` bytes.
pub fn run(mut cmd: Command, timeout: Duration, max_output: usize) -> Result<Vec<u8>, Failure> {
    let deadline = Instant::now() + timeout;
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(Failure::Spawn)?;
    let group = child.id() as libc::pid_t;
    let kill = |child: &mut std::process::Child| {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads; the
        // child is not reaped yet, so its pid (and group id) cannot have been reused.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = child.wait();
    };
    let (out_tx, out_rx) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let event = loop {
            match stdout.read(&mut chunk) {
                Ok(0) => break Event::Eof(buf),
                Ok(n) if buf.len() + n > max_output => break Event::TooLarge,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Event::Error(e),
            }
        };
        let _ = out_tx.send(event);
    });
    let (err_tx, err_rx) = mpsc::channel();
    let mut stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match stderr.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let room = MAX_STDERR.saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = err_tx.send(kept);
    });
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let output = match out_rx.recv_timeout(remaining()) {
        Ok(Event::Eof(bytes)) => bytes,
        Ok(Event::TooLarge) => {
            kill(&mut child);
            return Err(Failure::TooLarge);
        }
        Ok(Event::Error(e)) => {
            kill(&mut child);
            return Err(Failure::Exit(format!("cannot read its output: {e}")));
        }
        Err(_) => {
            kill(&mut child);
            return Err(Failure::Timeout);
        }
    };
    // Standard output is closed: the program is exiting (or has detached it).
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill(&mut child);
                return Err(Failure::Timeout);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                kill(&mut child);
                return Err(Failure::Exit(format!("cannot wait for it: {e}")));
            }
        }
    };
    // A process it left behind holding standard error must not hold the render.
    let stderr = err_rx
        .recv_timeout(remaining().min(Duration::from_secs(1)))
        .unwrap_or_default();
    if status.success() {
        Ok(output)
    } else {
        let text = String::from_utf8_lossy(&stderr);
        let message = engine_message(&text);
        Err(Failure::Exit(if message.is_empty() {
            format!("exited with {status} and said nothing")
        } else {
            message
        }))
    }
}

/// The useful part of an engine's standard error: its last lines, trimmed, on one line each.
fn engine_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(8);
    let mut message = lines[start..].join("; ");
    if message.len() > 2000 {
        let mut cut = 2000;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    message
}

/// The first executable file named `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[test]
    fn output_and_errors() {
        let out = run(sh("echo hello"), Duration::from_secs(10), 1024).unwrap();
        assert_eq!(out, b"hello\n");
        match run(sh("echo broken >&2; exit 3"), Duration::from_secs(10), 1024) {
            Err(Failure::Exit(message)) => assert_eq!(message, "broken"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_render_that_loops_is_killed_with_its_children() {
        let started = Instant::now();
        // The child shell and its background sleeper both hold the pipes open.
        let result = run(
            sh("sleep 30 & while :; do :; done"),
            Duration::from_millis(300),
            1024,
        );
        assert!(matches!(result, Err(Failure::Timeout)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_render_that_writes_too_much_is_stopped() {
        let started = Instant::now();
        let result = run(sh("yes"), Duration::from_secs(20), 1024 * 1024);
        assert!(matches!(result, Err(Failure::TooLarge)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
