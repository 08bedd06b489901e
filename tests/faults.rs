//! Faults injected into what the webhook depends on, each against the real binary: the Git
//! remote (served by `git http-backend` behind a server of the test's own that stalls, breaks
//! the connection, corrupts the pack or answers 404 on demand), history rewritten by a
//! force-push, the process killed in the middle of a fetch, the certificate files deleted or
//! replaced by garbage. For each: the decision served, `/readyz`, the log line and the
//! metric; never a crash, never a pass the rules would not give. Skips where git is absent.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use support::gate::{CONFIGMAP, FLUX, Gate, allowed, message, request};

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
fn upstream(dir: &Path) -> (PathBuf, PathBuf) {
    let bare = dir.join("gitops.git");
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    git(dir, &["init", "-q", "--bare", "-b", "main", "gitops.git"]);
    git(&work, &["init", "-q", "-b", "main"]);
    push_configmap(&work, &bare, "web-config");
    (bare, work)
}

fn push_configmap(work: &Path, bare: &Path, name: &str) {
    std::fs::write(work.join(format!("{name}.yaml")), configmap(name)).unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", name]);
    git(work, &["push", "-q", "-f", bare.to_str().unwrap(), "main"]);
}

fn configmap(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: shop}}\ndata: {{a: b}}\n"
    )
}

/// Flux's CREATE of the ConfigMap `name` exactly as Git holds it: admitted exactly when an
/// approved commit of the window renders it.
fn create(gate: &Gate, name: &str) -> Value {
    let object = support::gate::stored(&configmap(name), "kustomize-controller");
    gate.review(request("CREATE", CONFIGMAP, None, FLUX, &object, None))
}

/// The value of a counter or gauge in a Prometheus text page (0 when absent).
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits (up to 60 s) until `ok` holds for the gate's metrics page; returns it.
fn wait_metrics(gate: &Gate, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut page = String::new();
    for _ in 0..600 {
        page = gate.metrics();
        if ok(&page) {
            return page;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the metrics never showed {what}:\n{page}");
}

const SYNC_ERRORS: &str = "gitgate_git_syncs_total{result=\"error\"}";

// --- a Git server that fails on demand -------------------------------------------------------

/// What the Git server does to the answer of `git-upload-pack` that carries the pack.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Fault {
    /// Answers as git does.
    None,
    /// Sends the headers and the answer up to the middle of the pack, then nothing more,
    /// never closing.
    Stall,
    /// Sends the answer up to the middle of the pack, then breaks the connection.
    Close,
    /// Flips bytes inside the pack (its objects, not the protocol's framing).
    Corrupt,
    /// 404 for everything: the repository is gone.
    Gone,
}

struct GitServer {
    root: PathBuf,
    fault: AtomicU8,
    /// Answers cut short so far (stalled or broken).
    cut: AtomicUsize,
    log: Mutex<Vec<String>>,
}

impl GitServer {
    fn set(&self, fault: Fault) {
        self.fault.store(fault as u8, Ordering::SeqCst);
    }

    fn fault(&self) -> Fault {
        match self.fault.load(Ordering::SeqCst) {
            1 => Fault::Stall,
            2 => Fault::Close,
            3 => Fault::Corrupt,
            4 => Fault::Gone,
            _ => Fault::None,
        }
    }
}

/// `git http-backend` as a CGI program, then the fault.
async fn backend(
    State(server): State<Arc<GitServer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = server.fault();
    server
        .log
        .lock()
        .unwrap()
        .push(format!("{method} {uri} {fault:?}"));
    if fault == Fault::Gone {
        return (StatusCode::NOT_FOUND, "Repository not found\n").into_response();
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
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", &server.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("REQUEST_METHOD", method.as_str())
        .env("CONTENT_TYPE", header_text("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header_text("content-encoding"))
        .env("GIT_PROTOCOL", header_text("git-protocol"))
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
    let out = output.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .expect("CGI headers");
    let (head, mut body) = (&out[..split.0], out[split.0 + split.1..].to_vec());
    let mut response = Response::builder();
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("status") {
            response = response.status(value.trim()[..3].parse::<u16>().unwrap());
        } else if !name.eq_ignore_ascii_case("content-length") {
            response = response.header(name.trim(), value.trim());
        }
    }
    // The answer that carries the pack (the branches are listed before it, unharmed).
    let pack = body.windows(4).position(|w| w == b"PACK");
    let carries_pack =
        method == Method::POST && uri.path().ends_with("git-upload-pack") && pack.is_some();
    let body = match (fault, carries_pack) {
        (Fault::Stall | Fault::Close, true) => {
            server.cut.fetch_add(1, Ordering::SeqCst);
            // Up to the middle of the pack.
            let cut = pack.unwrap_or(0) + (body.len() - pack.unwrap_or(0)) / 2;
            let half = Bytes::from(body[..cut].to_vec());
            let first = futures::stream::iter([Ok::<_, std::io::Error>(half)]);
            if fault == Fault::Stall {
                Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending()))
            } else {
                let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
                Body::from_stream(futures::StreamExt::chain(
                    first,
                    futures::stream::iter([Err(broken)]),
                ))
            }
        }
        (Fault::Corrupt, true) => {
            if let Some(at) = pack {
                // Past the pack's header (12 bytes) and the first object's header: inside
                // compressed object data; the pkt-line lengths stay as they were.
                for b in body.iter_mut().skip(at + 16).take(8) {
                    *b ^= 0x5a;
                }
                server.cut.fetch_add(1, Ordering::SeqCst);
            }
            Body::from(body)
        }
        _ => Body::from(body),
    };
    response.body(body).unwrap()
}

/// The Git server on a loopback port of its own runtime; the URL of `gitops.git` on it.
struct Served {
    server: Arc<GitServer>,
    url: String,
    _runtime: tokio::runtime::Runtime,
}

fn git_server(root: &Path) -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = Arc::new(GitServer {
        root: root.to_path_buf(),
        fault: AtomicU8::new(Fault::None as u8),
        cut: AtomicUsize::new(0),
        log: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .fallback(backend)
        .with_state(server.clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move { axum::serve(listener, app).await });
    Served {
        server,
        url: format!("http://127.0.0.1:{port}/gitops.git"),
        _runtime: runtime,
    }
}

fn remote_config(url: &str, mirror: &Path) -> String {
    format!(
        "repository:\n  url: {url}\n  mirrorDir: {}\n  refresh: 200ms\n  fetchTimeout: 2s\n",
        mirror.display()
    )
}

// --- the remote fails ----------------------------------------------------------------------

/// A remote that stalls mid-fetch, breaks the connection, serves a corrupt pack or is gone:
/// each sync fails in bounded time, is counted and logged, `/readyz` stays ready on the last
/// good index and names the error, the last good index keeps deciding (what it holds is
/// admitted, the commit the failing remote could not deliver is not), and once the remote
/// is well again the next sync brings everything in.
#[test]
fn a_failing_remote_leaves_the_last_good_index_deciding() {
    if !git_is_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bare, work) = upstream(dir.path());
    let git_server = git_server(dir.path());
    let gate = Gate::start(
        dir.path(),
        &remote_config(&git_server.url, &dir.path().join("mirror")),
    );
    gate.wait_ready();
    assert!(allowed(&create(&gate, "web-config")));
    assert!(!allowed(&create(&gate, "not-in-git")));

    for (fault, said) in [
        (Fault::Stall, "timed out"),
        (Fault::Close, "cannot fetch"),
        (Fault::Corrupt, "cannot fetch"),
        (Fault::Gone, "404"),
    ] {
        let name = format!("after-{fault:?}").to_lowercase();
        git_server.server.set(fault);
        push_configmap(&work, &bare, &name);
        let before = metric(&gate.metrics(), SYNC_ERRORS);
        // Two failed syncs: the one under way when the fault began may have succeeded.
        wait_metrics(&gate, &format!("two failed syncs with {fault:?}"), |page| {
            metric(page, SYNC_ERRORS) >= before + 2.0
        });
        let ready = gate
            .readyz()
            .unwrap_or_else(|| panic!("{fault:?}: the webhook answers"));
        assert_eq!(
            ready.0, 200,
            "{fault:?}: still ready on the last index: {ready:?}"
        );
        let error = ready.1["provenance"]["lastError"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        eprintln!("{fault:?}: {error}");
        assert!(
            error.contains(&git_server.url) && error.to_lowercase().contains(said),
            "{fault:?}: /readyz names the remote and what failed: {error}"
        );
        assert!(
            allowed(&create(&gate, "web-config")),
            "{fault:?}: the last good index keeps deciding"
        );
        let refused = create(&gate, &name);
        assert!(
            !allowed(&refused),
            "{fault:?}: a commit the remote did not deliver approves nothing: {refused}"
        );
        assert!(message(&refused).contains("provenance"), "{refused}");
        assert!(
            metric(&gate.metrics(), "gitgate_git_sync_age_seconds") > 0.0,
            "{fault:?}: the index's age is reported"
        );
    }
    assert!(
        git_server.server.cut.load(Ordering::SeqCst) >= 3,
        "the faults were served: {:?}",
        git_server.server.log.lock().unwrap()
    );

    // The remote is well again: the next sync brings every commit pushed meanwhile.
    git_server.server.set(Fault::None);
    gate.wait_readyz("no error", |status, body| {
        status == 200 && body["provenance"]["lastError"].is_null()
    });
    for name in ["after-stall", "after-close", "after-corrupt", "after-gone"] {
        let answer = create(&gate, name);
        assert!(allowed(&answer), "{name}: {answer}");
    }
    let logs = gate.stop();
    assert!(
        logs.contains("the Git sync failed; the last good index keeps deciding"),
        "{logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
}

/// The process is killed (SIGKILL) while a fetch is half received, and restarted on the same
/// mirror directory: the mirror is consistent, the restart syncs, builds its index and decides
/// with the commit the killed fetch was bringing. (The killed fetch leaves `shallow.lock`
/// behind; before the fix, every later fetch failed on it and the restart was never ready.)
#[test]
fn killed_in_the_middle_of_a_fetch_the_restart_syncs_on_the_same_mirror() {
    if !git_is_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bare, work) = upstream(dir.path());
    let git_server = git_server(dir.path());
    let mirror = dir.path().join("mirror");
    let config = remote_config(&git_server.url, &mirror);
    let gate = Gate::start(dir.path(), &config);
    gate.wait_ready();
    // A fetch stalls half way through its pack; the process dies there.
    git_server.server.set(Fault::Stall);
    push_configmap(&work, &bare, "during-the-kill");
    for _ in 0..600 {
        if git_server.server.cut.load(Ordering::SeqCst) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(git_server.server.cut.load(Ordering::SeqCst) > 0);
    std::thread::sleep(Duration::from_millis(300));
    let logs = gate.kill();
    assert!(!logs.contains("panicked"), "{logs}");

    git_server.server.set(Fault::None);
    let gate = Gate::start(dir.path(), &config);
    let ready = gate.wait_readyz("ready with no error", |status, body| {
        status == 200 && body["provenance"]["lastError"].is_null()
    });
    assert_eq!(ready["provenance"]["approvedCommits"], 2, "{ready}");
    let answer = create(&gate, "during-the-kill");
    assert!(allowed(&answer), "{answer}");
    let logs = gate.stop();
    assert!(!logs.contains("the Git sync failed"), "{logs}");
    assert!(
        logs.contains("removed a lock file left by a fetch that did not end"),
        "{logs}"
    );
    // What git itself reads of the mirror is whole.
    let fsck = std::process::Command::new("git")
        .args(["fsck", "--no-dangling"])
        .current_dir(&mirror)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "git fsck: {}",
        String::from_utf8_lossy(&fsck.stderr)
    );
}

/// A force-push rewrites the protected branch's history: every sync says so loudly (an error
/// log line naming the commits, `gitgate_window_rewound` 1, `/readyz`'s `rewound`), the window
/// does not move (the rewritten commit approves nothing, the last good index keeps
/// admitting what it held), a commit on top of the rewritten branch does not move it either,
/// and a restart does not accept the rewrite: with no index to keep, it is not ready.
#[test]
fn a_force_push_is_reported_and_does_not_move_the_window() {
    if !git_is_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bare, work) = upstream(dir.path());
    push_configmap(&work, &bare, "approved-later");
    let git_server = git_server(dir.path());
    let config = remote_config(&git_server.url, &dir.path().join("mirror"));
    let gate = Gate::start(dir.path(), &config);
    gate.wait_ready();
    assert!(allowed(&create(&gate, "approved-later")));

    git(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    push_configmap(&work, &bare, "rewritten");
    let page = wait_metrics(&gate, "the window rewound", |page| {
        metric(page, "gitgate_window_rewound") == 1.0
    });
    assert!(metric(&page, "gitgate_git_syncs_total{result=\"rewound\"}") >= 1.0);
    let (status, ready) = gate.readyz().unwrap();
    assert_eq!(status, 200, "the last good index keeps deciding: {ready}");
    assert!(ready["provenance"]["rewound"].is_string(), "{ready}");
    assert!(!allowed(&create(&gate, "rewritten")));
    assert!(allowed(&create(&gate, "approved-later")));

    // More commits on the rewritten branch: still not a descendant of the approved state.
    push_configmap(&work, &bare, "on-top-of-the-rewrite");
    let before = metric(
        &gate.metrics(),
        "gitgate_git_syncs_total{result=\"rewound\"}",
    );
    wait_metrics(&gate, "another rewound sync", |page| {
        metric(page, "gitgate_git_syncs_total{result=\"rewound\"}") >= before + 2.0
    });
    assert!(!allowed(&create(&gate, "on-top-of-the-rewrite")));
    assert!(allowed(&create(&gate, "approved-later")));
    let logs = gate.stop();
    assert!(
        logs.contains("the approved state would move backwards"),
        "{logs}"
    );

    // A restart remembers the approved state: the rewrite is still refused, and with no
    // index to keep deciding on, the webhook is not ready and says why.
    let gate = Gate::start(dir.path(), &config);
    let ready = gate.wait_readyz("not ready, rewound", |status, body| {
        status == 503 && body["provenance"]["rewound"].is_string()
    });
    assert_eq!(ready["ready"], false);
    let refused = create(&gate, "on-top-of-the-rewrite");
    assert!(!allowed(&refused), "{refused}");
    gate.stop();
}

// --- the certificate files -------------------------------------------------------------------

/// The certificate served to a new connection.
fn served_certificate(gate: &Gate) -> Vec<u8> {
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(gate.pki().rustls_client(None))
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let resp = client
            .get(format!("{}/healthz", gate.base()))
            .send()
            .await
            .expect("a new connection is served");
        resp.extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .map(|c| c.to_vec())
            .unwrap()
    })
}

/// The certificate and key are deleted, then replaced by garbage: new connections are still
/// served with the last good certificate, each problem is logged once and counted, decisions
/// go on; a valid replacement is picked up.
#[test]
fn deleted_or_garbage_certificates_keep_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(dir.path(), "{}\n");
    gate.wait_ready();
    let first = served_certificate(&gate);
    let pki = gate.pki();
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));

    std::fs::remove_file(&cert).unwrap();
    std::fs::remove_file(&key).unwrap();
    let page = wait_metrics(&gate, "a failed reload (files deleted)", |page| {
        metric(page, "gitgate_tls_reload_errors_total") >= 1.0
    });
    let counted = metric(&page, "gitgate_tls_reload_errors_total");
    // Three more looks (one a second) at the same problem: it was counted once.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        metric(&gate.metrics(), "gitgate_tls_reload_errors_total"),
        counted,
        "a lasting problem is counted once, not at every look"
    );
    assert_eq!(served_certificate(&gate), first);

    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    std::fs::write(&key, [0u8, 159, 146, 150, 255]).unwrap();
    wait_metrics(&gate, "a failed reload (garbage)", |page| {
        metric(page, "gitgate_tls_reload_errors_total") >= 2.0
    });
    assert_eq!(served_certificate(&gate), first);
    let ready = gate.readyz().expect("served");
    assert_eq!(ready.0, 200);

    let second = pki.issue("server", "rotated");
    wait_metrics(&gate, "a reload", |page| {
        metric(page, "gitgate_tls_reloads_total") >= 1.0
    });
    assert_eq!(served_certificate(&gate), second);
    let logs = gate.stop();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("keeping the current certificate"))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("cannot read")),
        "deleted files are logged: {logs}"
    );
    assert!(lines.len() <= 4, "logged once per problem: {lines:?}");
    assert!(logs.contains("reloaded the TLS certificate"), "{logs}");
}

// --- the mirror's storage ----------------------------------------------------------------------

/// Runs `program args` and says whether it succeeded.
fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// While the storage fails, syncs fail (counted, logged, named in `/readyz`), the webhook
/// stays ready on the last good index and decides with it; once it is writable again the
/// next sync brings the commits pushed meanwhile.
fn storage_fails_then_recovers(
    gate: &Gate,
    work: &Path,
    bare: &Path,
    fail: impl FnOnce(),
    recover: impl FnOnce(),
    said: &str,
) {
    gate.wait_ready();
    assert!(allowed(&create(gate, "web-config")));
    fail();
    push_configmap(work, bare, "while-it-fails");
    let before = metric(&gate.metrics(), SYNC_ERRORS);
    wait_metrics(gate, "two failed syncs", |page| {
        metric(page, SYNC_ERRORS) >= before + 2.0
    });
    let (status, ready) = gate.readyz().expect("the webhook answers");
    assert_eq!(status, 200, "still ready on the last good index: {ready}");
    let error = ready["provenance"]["lastError"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains(said), "/readyz says what failed: {error}");
    assert!(allowed(&create(gate, "web-config")));
    assert!(!allowed(&create(gate, "while-it-fails")));
    recover();
    gate.wait_readyz("no error", |status, body| {
        status == 200 && body["provenance"]["lastError"].is_null()
    });
    let answer = create(gate, "while-it-fails");
    assert!(allowed(&answer), "{answer}");
}

/// The mirror directory becomes read-only (every file and directory in it immutable, which
/// binds root too: `chattr +i`). Skips where `chattr` cannot set the flag (not root, or a file
/// system without it).
#[test]
fn a_read_only_mirror_directory_leaves_the_last_good_index_deciding() {
    if !git_is_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    std::fs::create_dir(&probe).unwrap();
    if !runs("chattr", &["+i", probe.to_str().unwrap()]) {
        eprintln!("skipping: chattr +i is not available here (needs root and ext4/xfs/btrfs)");
        return;
    }
    runs("chattr", &["-i", probe.to_str().unwrap()]);
    let (bare, work) = upstream(dir.path());
    let git_server = git_server(dir.path());
    let mirror = dir.path().join("mirror");
    let gate = Gate::start(dir.path(), &remote_config(&git_server.url, &mirror));
    let mirror_arg = mirror.to_str().unwrap().to_string();
    storage_fails_then_recovers(
        &gate,
        &work,
        &bare,
        || assert!(runs("chattr", &["-R", "+i", &mirror_arg])),
        || assert!(runs("chattr", &["-R", "-i", &mirror_arg])),
        "Operation not permitted",
    );
    let logs = gate.stop();
    assert!(!logs.contains("panicked"), "{logs}");
}

/// The mirror's disk fills up: the binary runs in a mount namespace of its own (`unshare`)
/// where the mirror directory is a 4 MiB tmpfs, and a filler in the same namespace writes
/// until no space is left, then deletes its file. Skips where unprivileged (or root) mount
/// namespaces are not available.
#[test]
fn a_full_disk_leaves_the_last_good_index_deciding() {
    if !git_is_here() {
        return;
    }
    if !runs(
        "unshare",
        &["-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
    ) {
        eprintln!("skipping: unshare -rm with a tmpfs mount is not available here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bare, work) = upstream(dir.path());
    let git_server = git_server(dir.path());
    let mirror = dir.path().join("mirror");
    std::fs::create_dir(&mirror).unwrap();
    let (fill, free) = (dir.path().join("fill"), dir.path().join("free"));
    // sh -c SCRIPT MIRROR FILL FREE gitgate ARGS...: the tmpfs, the filler in the background,
    // then exec the binary.
    let script = r#"mount -t tmpfs -o size=4m tmpfs "$1" || exit 1
m="$1"; fill="$2"; free="$3"; shift 3
( while [ ! -e "$fill" ]; do sleep 0.1; done
  dd if=/dev/zero of="$m/filler" bs=64k 2>/dev/null
  while [ ! -e "$free" ]; do sleep 0.1; done
  rm -f "$m/filler" ) &
exec "$@""#;
    let launcher: Vec<String> = [
        "unshare",
        "-rm",
        "sh",
        "-c",
        script,
        "sh",
        mirror.to_str().unwrap(),
        fill.to_str().unwrap(),
        free.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let gate = Gate::start_via(
        dir.path(),
        &remote_config(&git_server.url, &mirror),
        &launcher,
    );
    storage_fails_then_recovers(
        &gate,
        &work,
        &bare,
        || std::fs::write(&fill, "").unwrap(),
        || std::fs::write(&free, "").unwrap(),
        "No space left on device",
    );
    let logs = gate.stop();
    assert!(!logs.contains("panicked"), "{logs}");
}

// --- the clock -----------------------------------------------------------------------------------

/// Shifts every first-seen time the mirror recorded by `by` seconds: the times a clock that
/// was `by` ahead of this one would have written (the file is the mirror's whole memory of
/// time).
fn shift_first_seen(mirror: &Path, by: i64) {
    let file = mirror.join(gitgate::provenance::seen::FILE_NAME);
    let text = std::fs::read_to_string(&file).unwrap();
    let shifted: String = text
        .lines()
        .map(|line| match line.split_once(' ') {
            Some((id, at)) if id.len() == 40 => {
                format!("{id} {}\n", at.parse::<i64>().unwrap() + by)
            }
            _ => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&file, shifted).unwrap();
}

fn mirror_holds(mirror: &gitgate::provenance::mirror::Mirror, name: &str) -> bool {
    let id = gitgate::input::Identity {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("shop".into()),
        name: name.into(),
    };
    !mirror.snapshot().unwrap().index.lookup(&id).is_empty()
}

/// The clock jumps: forward past `maxAge` (only the newest approved commit still counts: the
/// gate stays ready on it), then back (the window is whole again); and set back a year, with
/// a commit pushed at the real time: the mirror's clock holds at the latest time it recorded,
/// so the commit is approved, not refused as dated in the future (before the fix, it and
/// every commit before it were refused for good).
#[test]
fn the_clock_jumps_forward_and_back() {
    use gitgate::provenance::mirror::{Mirror, Source};
    if !git_is_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bare, work) = upstream(dir.path());
    push_configmap(&work, &bare, "second");
    let mirror_dir = dir.path().join("mirror");
    let config = gitgate::config::Config::parse(
        "gitgate.yaml",
        &format!(
            "repository:\n  url: file://{}\n  mirrorDir: {}\napproval:\n  window: {{commits: 10, maxAge: 1h}}\n",
            bare.display(),
            mirror_dir.display()
        ),
    )
    .unwrap();
    let source = Source::from_config(&config).unwrap().unwrap();
    // Each sync by a new Mirror, as a restart: the times come from the file.
    let sync = || {
        let mirror = Mirror::default();
        mirror.sync(&source).unwrap();
        mirror
    };
    let mirror = sync();
    assert_eq!(mirror.snapshot().unwrap().index.commits().count(), 2);

    // Forward two hours (the times recorded look two hours old): only the newest counts.
    shift_first_seen(&mirror_dir, -7200);
    let mirror = sync();
    let index = &mirror.snapshot().unwrap().index;
    assert_eq!(index.commits().count(), 1, "older than maxAge: out");
    assert!(
        index.empty_window_reason().is_none(),
        "the newest always counts"
    );
    assert!(mirror_holds(&mirror, "second"));
    // And back: the window is whole again.
    shift_first_seen(&mirror_dir, 7200);
    assert_eq!(sync().snapshot().unwrap().index.commits().count(), 2);

    // The system clock is set back a year (the times recorded look a year ahead), and a
    // commit is pushed at the real time, a year ahead of the system clock.
    let year = 365 * 24 * 3600;
    shift_first_seen(&mirror_dir, year);
    let real_now = support::signed::now() + year;
    std::fs::write(work.join("pushed-later.yaml"), configmap("pushed-later")).unwrap();
    support::git(&work, "gitops@example.com", real_now, &["add", "-A"]);
    support::git(
        &work,
        "gitops@example.com",
        real_now,
        &["commit", "-q", "-m", "later"],
    );
    git(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let mirror = sync();
    assert!(
        mirror_holds(&mirror, "pushed-later"),
        "approved: the mirror's clock does not run backwards"
    );
    assert_eq!(mirror.snapshot().unwrap().index.commits().count(), 3);
}

// --- memory ------------------------------------------------------------------------------------

/// A ConstraintTemplate whose violation builds a list of 100,000 strings of 64 KiB step by
/// step (some 6 GB), for every ConfigMap.
const HOG: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8shog}
spec:
  crd: {spec: {names: {kind: K8sHog}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8shog
      import future.keywords.in
      violation[{"msg": msg}] {
        pad := concat("", [s | some k in numbers.range(1, 4096); s := "0123456789abcdef"])
        big := [sprintf("%s%d", [pad, i]) | some i in numbers.range(1, 100000)]
        count(big) > 0
        msg := "never reached"
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sHog
metadata: {name: hog}
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["ConfigMap"]}]
"#;

/// The peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// A policy that allocates without end is stopped at `policies.memoryLimit`: an error of that
/// policy (the failure mode answers: refused), logged with the cause and counted; the process
/// stays far below what the evaluation would have taken, lives on and answers the next
/// request. Deadlines are set long, so that only the memory cap can stop the evaluation.
#[test]
fn an_evaluation_that_allocates_without_end_is_stopped_at_the_memory_limit() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipping: no /proc to read the peak memory from");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("hog.yaml"), HOG).unwrap();
    let gate = Gate::start(
        dir.path(),
        &format!(
            "policies:\n  builtin: false\n  paths: [{}]\n  timeout: 60s\n  memoryLimit: 256Mi\nserver:\n  timeout: 60s\n",
            policies.display()
        ),
    );
    gate.wait_ready();
    let object = support::gate::stored(&configmap("web-config"), "kubectl");
    let answer = gate.review(request("CREATE", CONFIGMAP, None, FLUX, &object, None));
    assert!(!allowed(&answer), "fail closed: {answer}");
    assert!(
        message(&answer).contains("policies failed: hog"),
        "{answer}"
    );
    let peak = peak_rss(gate.pid());
    assert!(
        peak < 1 << 30,
        "the evaluation stopped near the limit, the process peaked at {} MiB",
        peak >> 20
    );
    // The process lives on and decides.
    let (status, _) = gate.readyz().expect("the webhook answers");
    assert_eq!(status, 200);
    let again = gate.review(request("CREATE", CONFIGMAP, None, FLUX, &object, None));
    assert!(!allowed(&again), "{again}");
    let page = gate.metrics();
    assert!(
        page.lines()
            .any(|l| l.starts_with("gitgate_policy_errors_total{") && l.contains("hog")),
        "{page}"
    );
    let logs = gate.stop();
    assert!(
        logs.lines()
            .any(|l| l.contains("a policy failed") && l.contains("exceeded memory limit")),
        "{logs}"
    );
}

/// Requests in flight are capped (`server.maxRequests`): a client that sends its body slowly
/// holds the only place; another request waits for it without its body being read, and is
/// refused (429) at its deadline (`server.timeout`, before the slow one's twice that); the
/// slow one is cut off at twice `server.timeout` (408) and frees its place; each is counted
/// and logged.
#[test]
fn requests_in_flight_are_capped_and_a_slow_body_is_cut_off() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(dir.path(), "server:\n  maxRequests: 1\n  timeout: 2s\n");
    gate.wait_ready();
    let port: u16 = gate.base().rsplit(':').next().unwrap().parse().unwrap();
    let object = support::gate::stored(&configmap("web-config"), "kubectl");
    let review = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": request("CREATE", CONFIGMAP, None, FLUX, &object, None)}))
    .unwrap();

    // A slow client: the headers and ten bytes of a 100,000-byte body, then nothing.
    let slow = std::thread::spawn({
        let mut config = gate.pki().rustls_client(None);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        move || {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let connection =
                rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
            let socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, socket);
            tls.write_all(
                b"POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"apiVersi",
            )
            .unwrap();
            tls.flush().unwrap();
            let mut answer = Vec::new();
            let _ = tls.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).to_string()
        }
    });
    // While it holds the place (4 s), another request waits 2 s for it and is refused.
    let mut refused = None;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        let (status, body) = gate.post(review.clone());
        if status == 429 {
            refused = Some(body);
            break;
        }
    }
    let refused = refused.expect("a second request in flight is refused");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("server.maxRequests: 1"),
        "{refused}"
    );
    let answer = slow.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The place is free again.
    let (status, body) = gate.post(review);
    assert_eq!(status, 200, "{body}");
    assert!(body["response"]["allowed"].is_boolean(), "{body}");
    let page = gate.metrics();
    assert!(
        metric(
            &page,
            "gitgate_admission_bad_requests_total{reason=\"overloaded\"}"
        ) >= 1.0,
        "{page}"
    );
    assert_eq!(
        metric(
            &page,
            "gitgate_admission_bad_requests_total{reason=\"too_slow\"}"
        ),
        1.0,
        "{page}"
    );
    let logs = gate.stop();
    assert!(
        logs.contains("server.maxRequests requests were in flight until its deadline"),
        "{logs}"
    );
    assert!(
        logs.contains("cut off a request whose body did not arrive in time"),
        "{logs}"
    );
}

/// `policies.memoryLimit` and `server.maxRequests` are read as documented, and a bad value is
/// an error naming the key and its line.
#[test]
fn the_limits_are_configured_and_checked() {
    use gitgate::config::{Config, memory_limit};
    assert_eq!(memory_limit("off"), Ok(None));
    assert_eq!(memory_limit("512Mi"), Ok(Some(512 << 20)));
    assert_eq!(memory_limit("2Gi"), Ok(Some(2 << 30)));
    assert_eq!(memory_limit("100000000"), Ok(Some(100_000_000)));
    assert!(memory_limit("auto").unwrap().unwrap() >= 16 << 20);
    for bad in ["lots", "1Mi", "12Qi", "-5Mi", ""] {
        let yaml = format!("policies:\n  memoryLimit: \"{bad}\"\n");
        let error = Config::parse("gitgate.yaml", &yaml)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("gitgate.yaml:2") && error.contains("policies.memoryLimit"),
            "{bad}: {error}"
        );
    }
    let error = Config::parse("gitgate.yaml", "server:\n  maxRequests: 0\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("server.maxRequests"), "{error}");
    let config = Config::parse("gitgate.yaml", "{}\n").unwrap();
    assert_eq!(config.server.max_requests, 64);
    assert_eq!(config.policies.memory_limit, "auto");
    assert_eq!(config.repository.fetch_timeout, Duration::from_secs(120));
}
