//! Keeping a bare mirror of the GitOps repository fresh with gix: HTTPS (reqwest over rustls
//! with the process's ring provider), SSH (the `ssh` program, as git runs it) or `file://`.
//! Only the protected branch is fetched (no tags: a tag named like the branch must not stand in
//! for it), and only as deep as the approved window reaches (a shallow fetch, deepened by
//! [`crate::provenance::mirror`] when unapproved commits on top push the approved ones below
//! it), into `refs/remotes/origin/<branch>`, where [`crate::provenance::mirror`] reads it. Credentials come from files, read on every fetch so
//! that a rotated Secret needs no restart, and never reach an error message or a log: URLs are
//! shown without their user-info part.
//!
//! A fetch fails in bounded time (`repository.fetchTimeout` per HTTP request: a server that
//! stalls mid-pack does not hold the mirror's thread) and leaves the mirror usable whatever
//! ends it: a fetch claims the directory ([`claim`]) and removes the lock files a process
//! killed mid-fetch left, which would otherwise fail every later fetch (`tests/faults.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use gix::remote::Direction;

/// Where and how to fetch.
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    pub branch: String,
    /// The bare mirror on local disk (created on the first fetch).
    pub dir: PathBuf,
    pub credentials: Credentials,
    /// How many commits of history [`Remote::fetch`] fetches (the approved window and one
    /// more), or all. [`Remote::fetch_at`] takes another depth.
    pub depth: Option<std::num::NonZeroU32>,
    /// The certificate authorities (PEM) an HTTPS Git server with a private CA is verified
    /// with, instead of the system's roots (as git's `http.sslCAInfo`).
    pub ca_file: Option<PathBuf>,
    /// The longest one HTTP request of a fetch may take, the pack included
    /// (`repository.fetchTimeout`). A stalled server fails the sync (the last good index keeps
    /// deciding) instead of holding the mirror's thread.
    pub timeout: std::time::Duration,
}

/// Whether a `repository.url` names a remote to fetch (rather than a local path).
pub fn is_remote(url: &str) -> bool {
    url.contains("://") || scp_like(url)
}

/// `git@host:org/repo.git`, git's scp-like SSH syntax (a drive letter or a path is not).
fn scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((host, _)) => host.contains('@') && !host.contains('/'),
        None => false,
    }
}

/// The URL as it may be shown: without a password in its user-info part, nor a user name
/// over HTTP(S), where it may be a token (`https://TOKEN@host/...`). SSH user names (`git@`)
/// stay.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) if !scheme.starts_with("http") => format!("{user}:***"),
        _ if scheme.starts_with("http") => "***".to_string(),
        _ => userinfo.to_string(),
    };
    format!("{scheme}://{user}@{host}{path}")
}

impl Remote {
    /// Fetches the protected branch into the mirror. Errors name the URL (redacted) and say
    /// what failed, never a credential. A panic inside the transport is caught and reported
    /// as an error, so that it cannot end the mirror's thread.
    pub fn fetch(&self) -> Result<(), super::ProvenanceError> {
        self.fetch_at(self.depth)
    }

    /// [`Remote::fetch`] with `depth` commits of history (`None`: all of it).
    pub fn fetch_at(
        &self,
        depth: Option<std::num::NonZeroU32>,
    ) -> Result<(), super::ProvenanceError> {
        // reqwest builds its client with the process's default provider: ring, as `main`
        // installs it (a no-op then; needed where gitgate is used as a library).
        let _ = rustls::crypto::ring::default_provider().install_default();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.fetch_inner(depth)))
            .unwrap_or_else(|_| {
                Err(format!(
                    "{}: the Git transport failed unexpectedly (a panic; see the log)",
                    redact(&self.url)
                ))
            })
            .map_err(super::ProvenanceError::Fetch)
    }

    fn fetch_inner(&self, depth: Option<std::num::NonZeroU32>) -> Result<(), String> {
        let shown = redact(&self.url);
        let fail = |what: &str, e: &(dyn std::error::Error + 'static)| {
            // gix's messages may quote the URL as configured: take its user-info out too.
            let message = causes(e).replace(&self.url, &shown);
            format!("{shown}: {what}: {message}")
        };
        let mut repo =
            open_or_init(&self.dir).map_err(|e| format!("{shown}: cannot open the mirror: {e}"))?;
        // Held until the fetch ends: the lock files a fetch leaves behind are then stale.
        let _claim = claim(&self.dir).map_err(|e| format!("{shown}: {e}"))?;
        if let Some(command) = self.ssh_command() {
            let mut config = repo.config_snapshot_mut();
            config
                .set_value(&gix::config::tree::Core::SSH_COMMAND, command.as_str())
                .map_err(|e| fail("cannot configure ssh", &e))?;
            config
                .commit()
                .map_err(|e| fail("cannot configure ssh", &e))?;
        }
        let refspec = format!(
            "+refs/heads/{0}:refs/remotes/origin/{0}",
            self.branch.trim_start_matches("refs/heads/")
        );
        let remote = repo
            .remote_at(self.url.as_str())
            .map_err(|e| fail("not a Git URL", &e))?
            .with_refspecs(Some(refspec.as_str()), Direction::Fetch)
            .map_err(|e| fail("bad branch name", &e))?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        let mut connection = remote
            .connect(Direction::Fetch)
            .map_err(|e| fail("cannot connect", &e))?;
        if let Some(account) = self.account()? {
            connection.set_credentials(move |action| match action {
                gix::credentials::helper::Action::Get(context) => {
                    Ok(Some(gix::credentials::protocol::Outcome {
                        identity: account.clone(),
                        next: context.into(),
                    }))
                }
                _ => Ok(None),
            });
        }
        if self.url.starts_with("http://") || self.url.starts_with("https://") {
            use gix::protocol::transport::client::blocking_io::http;
            // The options git's configuration gives this URL (proxy, user agent, ...), with
            // reqwest given a time limit (a stalled server must not hold the mirror's thread
            // forever) and, with `caFile`, the CAs to verify the server with.
            let mut options = repo
                .transport_options(self.url.as_str(), None)
                .map_err(|e| fail("cannot read the transport's configuration", &e))?
                .and_then(|o| o.downcast::<http::Options>().ok())
                .unwrap_or_default();
            let tls = self.tls_config()?;
            let timeout = self.timeout;
            let backend = http::reqwest::Options {
                configure_client: Some(Box::new(move |builder| {
                    let builder = builder.timeout(timeout).connect_timeout(timeout);
                    Ok(match &tls {
                        Some(tls) => builder.tls_backend_preconfigured((**tls).clone()),
                        None => builder,
                    })
                })),
                configure_request: None,
            };
            options.backend = Some(Arc::new(std::sync::Mutex::new(backend)));
            connection.set_transport_options(options);
        }
        let mut prepared = connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| fail("cannot list the remote's branches", &e))?;
        if let Some(depth) = depth {
            // Only the window's history: a long-lived GitOps repository need not be fetched
            // whole for a decision that reads its last N commits.
            prepared = prepared.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth));
        }
        prepared
            .receive(gix::progress::Discard, &AtomicBool::new(false))
            .map_err(|e| fail("cannot fetch", &e))?;
        Ok(())
    }

    /// HTTPS basic credentials from `usernameFile` and `passwordFile` (a token is a password).
    fn account(&self) -> Result<Option<gix::sec::identity::Account>, String> {
        let c = &self.credentials;
        let Some(password_file) = &c.password_file else {
            return Ok(None);
        };
        let password = read_secret(password_file, "repository.credentials.passwordFile")?;
        let username = match &c.username_file {
            Some(file) => read_secret(file, "repository.credentials.usernameFile")?,
            // Git hosts take any name with a token; this is the one GitHub documents.
            None => "x-access-token".to_string(),
        };
        Ok(Some(gix::sec::identity::Account {
            username,
            password,
            oauth_refresh_token: None,
        }))
    }

    /// `ssh` with the configured key and known hosts, strict host key checking and no prompts:
    /// a host key that is not in `knownHostsFile` fails the fetch instead of being trusted. A
    /// server that does not answer, or stops answering for a minute, fails the fetch too.
    fn ssh_command(&self) -> Option<String> {
        let c = &self.credentials;
        if c.ssh_key_file.is_none() && c.known_hosts_file.is_none() {
            return None;
        }
        let mut command = String::from(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4",
        );
        if let Some(key) = &c.ssh_key_file {
            command += &format!(" -o IdentitiesOnly=yes -i {}", shell_quote(key));
        }
        if let Some(hosts) = &c.known_hosts_file {
            command += &format!(" -o UserKnownHostsFile={}", shell_quote(hosts));
        }
        Some(command)
    }

    /// A rustls client configuration trusting the CAs of `caFile`, when one is set (without
    /// it, reqwest verifies with the system's roots).
    fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        let Some(ca_file) = &self.ca_file else {
            return Ok(None);
        };
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let name = format!("repository.caFile {}", ca_file.display());
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| format!("{name}: cannot read: {e}"))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("{name}: not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("{name}: not a usable certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err(format!("{name}: holds no certificate"));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{name}: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Some(Arc::new(config)))
    }
}

/// An error and its causes, `outer: inner: root`, as people read them (gix's top-level
/// messages, such as "Transport handshake failed", say little on their own).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out += ": ";
            out += &text;
        }
        next = cause.source();
    }
    out
}

/// Claims the mirror for one fetch: an exclusive `flock` on `gitgate.lock` in its directory
/// (released by the kernel when the process dies), then removes the lock files Git leaves
/// when a process is killed in the middle of a fetch (`shallow.lock`, a reference's
/// `.lock`, ...). With the claim held nothing else is fetching into the mirror, so they are
/// stale; left in place, every later fetch would fail on them and a restarted webhook would
/// never become ready. Another process fetching into the same directory is an error, not a
/// wait.
fn claim(dir: &Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let path = dir.join("gitgate.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "{}: another process is fetching into this mirror directory (each replica needs its own repository.mirrorDir)",
            path.display()
        ));
    }
    let stale = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| e.file_name() != "objects")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name().to_string_lossy().ends_with(".lock"))
        .filter(|e| e.path() != path);
    for entry in stale {
        match std::fs::remove_file(entry.path()) {
            Ok(()) => tracing::warn!(file = %entry.path().display(),
                "removed a lock file left by a fetch that did not end (the process was killed)"),
            Err(e) => {
                return Err(format!(
                    "{}: a stale lock file cannot be removed: {e}",
                    entry.path().display()
                ));
            }
        }
    }
    Ok(file)
}

fn open_or_init(dir: &Path) -> Result<gix::Repository, String> {
    if dir.join("HEAD").exists() {
        gix::open(dir).map_err(|e| e.to_string())
    } else {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        gix::init_bare(dir).map_err(|e| e.to_string())
    }
}

/// A credential file's content without its trailing newline (as `kubectl create secret
/// --from-file` and editors leave one).
fn read_secret(path: &Path, key: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{key} {}: cannot read: {e}", path.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// A path as one word for the shell git and gix run `core.sshCommand` with.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Files holding Git credentials; their contents are never logged.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Credentials {
    pub username_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub ssh_key_file: Option<PathBuf>,
    pub known_hosts_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_and_local_paths() {
        for url in [
            "https://git.example.com/org/gitops.git",
            "ssh://git@git.example.com/org/gitops.git",
            "git@github.com:org/gitops.git",
            "file:///srv/git/gitops.git",
        ] {
            assert!(is_remote(url), "{url}");
        }
        for path in ["/srv/gitops", "./gitops", "C:/gitops", "gitops"] {
            assert!(!is_remote(path), "{path}");
        }
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            redact("https://user:s3cr3t@git.example.com/org/x.git"),
            "https://***@git.example.com/org/x.git"
        );
        assert_eq!(
            redact("https://ghp_T0KEN@git.example.com/org/x.git"),
            "https://***@git.example.com/org/x.git"
        );
        assert_eq!(
            redact("ssh://git@git.example.com/org/x.git"),
            "ssh://git@git.example.com/org/x.git"
        );
        assert_eq!(
            redact("ssh://git:pw@git.example.com/org/x.git"),
            "ssh://git:***@git.example.com/org/x.git"
        );
        assert_eq!(
            redact("https://git.example.com/org/x.git"),
            "https://git.example.com/org/x.git"
        );
        assert_eq!(
            redact("git@github.com:org/x.git"),
            "git@github.com:org/x.git"
        );
    }

    #[test]
    fn the_ssh_command_is_strict_and_quotes_paths() {
        let remote = Remote {
            url: "ssh://git@h/x".into(),
            branch: "main".into(),
            dir: PathBuf::from("/m"),
            depth: None,
            credentials: Credentials {
                ssh_key_file: Some(PathBuf::from("/etc/gitgate/credentials/ssh key")),
                known_hosts_file: Some(PathBuf::from("/etc/gitgate/credentials/known_hosts")),
                ..Credentials::default()
            },
            ca_file: None,
            timeout: std::time::Duration::from_secs(1),
        };
        assert_eq!(
            remote.ssh_command().unwrap(),
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=30 \
             -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o IdentitiesOnly=yes \
             -i '/etc/gitgate/credentials/ssh key' \
             -o UserKnownHostsFile='/etc/gitgate/credentials/known_hosts'"
        );
    }
}
