//! The webhook's mirror of a remote repository, fetched with gix: over `file://` (git's
//! upload-pack) and over real HTTPS on loopback, where `git http-backend` serves the
//! repository behind basic authentication and a certificate from a CA made in the test.
//! A new commit arrives with the next sync; a remote that fails keeps the last good index; a
//! wrong password is refused and never shown. Skips where git is absent.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use gitgate::config::Config;
use gitgate::input::Identity;
use gitgate::provenance::mirror::{Mirror, Source};
use support::binary::{Served, free_port};
use support::pki::Pki;

fn git_is_here() -> bool {
    let here = std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !here {
        eprintln!("skipping: git is absent");
    }
    here
}

fn git(dir: &Path, args: &[&str]) -> String {
    support::git(dir, "gitops@example.com", 1_780_000_000, args)
}

/// A bare repository (as a Git server holds it) with one commit on main, and a work tree to
/// push more from.
fn upstream() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("gitops.git");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", "gitops.git"],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    push_configmap(&work, &bare, "web-config");
    (dir, bare, work)
}

fn push_configmap(work: &Path, bare: &Path, name: &str) {
    std::fs::write(
        work.join(format!("{name}.yaml")),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: shop}}\ndata: {{a: b}}\n"),
    )
    .unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", name]);
    git(work, &["push", "-q", bare.to_str().unwrap(), "main"]);
}

fn config(yaml: &str) -> Config {
    Config::parse("gitgate.yaml", yaml).unwrap()
}

fn holds(mirror: &Mirror, name: &str) -> bool {
    let snapshot = mirror.snapshot().expect("an index");
    let id = Identity {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("shop".into()),
        name: name.into(),
    };
    !snapshot.index.lookup(&id).is_empty()
}

#[test]
fn a_file_url_is_fetched_and_a_failing_remote_keeps_the_last_index() {
    if !git_is_here() {
        return;
    }
    let (dir, bare, work) = upstream();
    let mirror_dir = dir.path().join("mirror");
    let config = config(&format!(
        "repository:\n  url: file://{}\n  mirrorDir: {}\n",
        bare.display(),
        mirror_dir.display()
    ));
    let source = Source::from_config(&config).unwrap().unwrap();
    assert_eq!(source.path, mirror_dir);
    let mirror = Mirror::default();
    mirror.sync(&source).unwrap();
    assert!(holds(&mirror, "web-config"));
    assert!(!holds(&mirror, "later"));
    // The mirror is bare and holds the branch as origin's.
    assert!(
        mirror_dir.join("refs/remotes/origin/main").exists()
            || mirror_dir.join("packed-refs").exists()
    );

    push_configmap(&work, &bare, "later");
    mirror.sync(&source).unwrap();
    assert!(
        holds(&mirror, "later"),
        "the new commit arrives with the next sync"
    );

    // The remote goes away: the sync fails, says which remote, and the last index stays.
    std::fs::rename(&bare, dir.path().join("gone")).unwrap();
    let error = mirror.sync(&source).unwrap_err().to_string();
    assert!(error.contains("gitops.git"), "{error}");
    assert!(holds(&mirror, "later"));
    assert_eq!(
        mirror.last_error().as_deref().map(String::as_str),
        Some(error.as_str())
    );
}

#[test]
fn only_the_window_of_history_is_fetched() {
    if !git_is_here() {
        return;
    }
    let (dir, bare, work) = upstream();
    for i in 0..8 {
        push_configmap(&work, &bare, &format!("old-{i}"));
    }
    let mirror_dir = dir.path().join("mirror");
    let config = config(&format!(
        "repository:\n  url: file://{}\n  mirrorDir: {}\napproval:\n  window: {{commits: 3}}\n",
        bare.display(),
        mirror_dir.display()
    ));
    let source = Source::from_config(&config).unwrap().unwrap();
    let mirror = Mirror::default();
    mirror.sync(&source).unwrap();
    // 3 commits of the window and one more, of the 9 upstream.
    let count = |dir: &Path| {
        git(dir, &["rev-list", "--count", "refs/remotes/origin/main"])
            .parse::<usize>()
            .unwrap()
    };
    assert!(mirror_dir.join("shallow").exists(), "a shallow mirror");
    assert_eq!(count(&mirror_dir), 4);
    assert_eq!(
        mirror.snapshot().unwrap().index.commits().count(),
        3,
        "the window is whole"
    );
    assert!(holds(&mirror, "old-7"));
    // Later syncs keep working on the shallow mirror.
    push_configmap(&work, &bare, "later");
    mirror.sync(&source).unwrap();
    assert!(holds(&mirror, "later"));
    assert_eq!(mirror.snapshot().unwrap().index.commits().count(), 3);
}

/// `git http-backend` as a CGI program behind basic authentication.
struct GitServer {
    root: PathBuf,
    authorization: String,
}

async fn http_backend(
    State(server): State<Arc<GitServer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == server.authorization.as_bytes());
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")],
            "authentication required\n",
        )
            .into_response();
    }
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut command = std::process::Command::new("git");
    command
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &server.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("REQUEST_METHOD", method.as_str())
        .env("CONTENT_TYPE", header_text("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header_text("content-encoding"))
        .env("GIT_PROTOCOL", header_text("git-protocol"))
        .env("REMOTE_USER", "gitgate")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = command.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&body).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    // CGI: headers, a blank line, the body.
    let out = output.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .expect("CGI headers");
    let (head, body) = (&out[..split.0], out[split.0 + split.1..].to_vec());
    let mut response = Response::builder();
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("status") {
            let code: u16 = value.trim()[..3].parse().unwrap();
            response = response.status(code);
        } else {
            response = response.header(name.trim(), value.trim());
        }
    }
    response.body(axum::body::Body::from(body)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_basic_credentials_from_files_and_a_private_ca() {
    if !git_is_here() {
        return;
    }
    use base64::Engine;
    let (dir, bare, _work) = upstream();
    let password = "s3cr3t-t0ken";
    let server = Arc::new(GitServer {
        root: bare.parent().unwrap().to_path_buf(),
        authorization: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("gitops-bot:{password}"))
        ),
    });
    let app = axum::Router::new()
        .fallback(http_backend)
        .with_state(server);
    let pki = Pki::new();
    pki.issue("server", "git.example.com");
    let running = gitgate::serve::start_app(app, "127.0.0.1:0", pki.files(false))
        .await
        .unwrap();
    let url = format!("https://127.0.0.1:{}/gitops.git", running.addr.port());

    let secrets = dir.path().join("credentials");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("username"), "gitops-bot\n").unwrap();
    std::fs::write(secrets.join("password"), format!("{password}\n")).unwrap();
    std::fs::write(secrets.join("wrong"), "not-the-token\n").unwrap();
    let config_with = |password_file: &str, ca: bool| {
        let mut yaml = format!(
            "repository:\n  url: {url}\n  mirrorDir: {}\n  credentials:\n    usernameFile: {}\n    passwordFile: {}\n",
            dir.path()
                .join(format!("mirror-{password_file}-{ca}"))
                .display(),
            secrets.join("username").display(),
            secrets.join(password_file).display(),
        );
        if ca {
            yaml += &format!("  caFile: {}\n", pki.path("ca.crt").display());
        }
        config(&yaml)
    };

    // Right credentials, the test CA trusted: fetched and indexed.
    let good = config_with("password", true);
    let source = Source::from_config(&good).unwrap().unwrap();
    let sync = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || {
            let mirror = Mirror::default();
            mirror.sync(&source).map(|()| mirror)
        })
    };
    let mirror = sync.await.unwrap().unwrap();
    assert!(holds(&mirror, "web-config"));

    // A wrong token is refused, and the message never holds a credential.
    for (password_file, ca) in [("wrong", true), ("password", false)] {
        let source = Source::from_config(&config_with(password_file, ca))
            .unwrap()
            .unwrap();
        let error = tokio::task::spawn_blocking(move || Mirror::default().sync(&source))
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(error.contains(&url), "{error}");
        assert!(
            !error.contains(password) && !error.contains("not-the-token"),
            "{error}"
        );
        eprintln!("{password_file}, ca {ca}: {error}");
    }
    running.handle.shutdown();
}

/// The binary serving with an `ssh://` repository. The `ssh` it runs is a stand-in first on its
/// PATH (as git's own test suite does): it records its arguments and runs the Git command it
/// was asked to run on the "server" locally, so that the whole fetch is real except the
/// network. Readiness comes with the first index; the key never reaches a log.
#[test]
fn ssh_with_the_configured_key_and_known_hosts() {
    use std::os::unix::fs::PermissionsExt;
    if !git_is_here() {
        return;
    }
    let (dir, bare, _work) = upstream();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("ssh.log");
    let ssh = bin.join("ssh");
    std::fs::write(
        &ssh,
        format!(
            // As ssh does: options, the destination, then the remote command (all the
            // remaining words, joined), run here by a shell.
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nwhile [ $# -gt 0 ]; do case \"$1\" in -o|-i|-p|-l) shift 2;; -*) shift;; *) break;; esac; done\nshift\nexec sh -c \"$*\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = dir.path().join("ssh-privatekey");
    std::fs::write(
        &key,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nS3CR3TKEYDATA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA\n",
    )
    .unwrap();
    let config = dir.path().join("gitgate.yaml");
    std::fs::write(
        &config,
        format!(
            "repository:\n  url: ssh://git@git.example.com{}\n  mirrorDir: {}\n  refresh: 1h\n  credentials:\n    sshKeyFile: {}\n    knownHostsFile: {}\n",
            bare.display(),
            dir.path().join("mirror").display(),
            key.display(),
            known_hosts.display()
        ),
    )
    .unwrap();

    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (cert, key_pem) = (pki.path("server.crt"), pki.path("server.key"));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let served = Served::start(
        &[
            "-c",
            config.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
            "-v",
            "--log-format",
            "json",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
        ],
        &[("PATH", path)],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ready = runtime.block_on(async {
        let client = pki.client(None);
        for _ in 0..200 {
            if let Ok(response) = client
                .get(format!("https://localhost:{port}/readyz"))
                .send()
                .await
                && response.status() == 200
            {
                let ready = response.json::<serde_json::Value>().await.ok();
                // One decision on what Git holds, for the log line below.
                let review = serde_json::json!({
                    "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "request": {
                        "uid": "u1", "operation": "CREATE", "name": "web-config",
                        "namespace": "shop",
                        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
                        "userInfo": {"username": "system:serviceaccount:flux-system:kustomize-controller"},
                        "object": {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "web-config", "namespace": "shop",
                                         "uid": "x", "creationTimestamp": "2026-11-25T08:00:00Z"},
                            "data": {"a": "b"}},
                        "oldObject": null
                    }
                });
                let answer: serde_json::Value = client
                    .post(format!("https://localhost:{port}/validate"))
                    .json(&review)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(answer["response"]["allowed"], true, "{answer}");
                return ready;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    });
    drop(runtime);
    let (_, logs) = served.stop();
    // The decision's log line carries the provenance verdict.
    assert!(
        logs.lines().any(|l| l.contains("admission decision")
            && l.contains("\"provenance\":\"traceable\"")),
        "{logs}"
    );
    let ready = ready.unwrap_or_else(|| panic!("never ready; logs:\n{logs}"));
    assert_eq!(ready["provenance"]["approvedCommits"], 1, "{ready}");
    let calls = std::fs::read_to_string(&log).unwrap();
    for expected in [
        "BatchMode=yes".to_string(),
        "StrictHostKeyChecking=yes".to_string(),
        format!("-i '{}'", key.display()).replace('\'', ""),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        "git@git.example.com".to_string(),
        format!("git-upload-pack '{}'", bare.display()),
    ] {
        assert!(calls.contains(&expected), "{expected:?} in {calls}");
    }
    assert!(!logs.contains("S3CR3TKEYDATA"), "{logs}");
}
