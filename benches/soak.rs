//! The soak run (issue 23; by hand, not in CI): the real `gitgate serve` binary with the
//! built-in library and provenance on a local repository that gets a new SSH-signed commit
//! every few seconds (each followed by `POST /refresh`), its certificate rotated every minute,
//! under an open-loop load of mixed AdmissionReview fixtures at a fixed rate. Every 10 s it
//! prints one line: requests sent, p50 and p99 of that interval, errors (transport errors or
//! a status other than 200), late answers (past `server.timeout`), the server's RSS, commits
//! made and certificate reloads seen.
//!
//! `cargo bench --bench soak` (uses ../shared/fixtures, git and ssh-keygen);
//! `GITGATE_SOAK_SECONDS` (600), `GITGATE_SOAK_RATE` (requests per second, 1000),
//! `GITGATE_SOAK_COMMIT_SECONDS` (5), `GITGATE_SOAK_ROTATE_SECONDS` (60) tune it.
//! `scripts/soak.sh` runs it and keeps its output. Results are recorded in RELIABILITY.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn git(dir: &Path, key: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Soak")
        .env("GIT_AUTHOR_EMAIL", "soak@example.com")
        .env("GIT_COMMITTER_NAME", "Soak")
        .env("GIT_COMMITTER_EMAIL", "soak@example.com")
        .args(["-c", "gpg.format=ssh", "-c"])
        .arg(format!("user.signingkey={}", key.display()))
        .args(["-c", "commit.gpgsign=true"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate for localhost signed by `ca`, written as a rotation writes it (key, then
/// certificate, each through a rename).
fn issue(dir: &Path, ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, serial: u64) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("gitgate soak {serial}"));
    let cert = params.signed_by(&key, ca).unwrap();
    for (file, text) in [("tls.key", key.serialize_pem()), ("tls.crt", cert.pem())] {
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(file)).unwrap();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[derive(Default)]
struct Interval {
    latencies: Vec<Duration>,
    errors: u64,
    late: u64,
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` and criterion-style listing: nothing to do
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fixtures =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/admission-v1");
    if !fixtures.is_dir() {
        eprintln!("skipping: {} is absent", fixtures.display());
        return;
    }
    let seconds = env_or("GITGATE_SOAK_SECONDS", 600);
    let rate = env_or("GITGATE_SOAK_RATE", 1000).max(1);
    let commit_every = Duration::from_secs(env_or("GITGATE_SOAK_COMMIT_SECONDS", 5).max(1));
    let rotate_every = Duration::from_secs(env_or("GITGATE_SOAK_ROTATE_SECONDS", 60).max(1));
    let deadline = Duration::from_millis(2500);

    // The repository: the fixtures' manifests under demo/, one ConfigMap that each tick
    // changes, every commit signed by a trusted SSH key.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("gitops");
    std::fs::create_dir_all(repo.join("demo")).unwrap();
    let key = dir.path().join("signer");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "soak", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success(),
        "ssh-keygen"
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(
        dir.path().join("allowed_signers"),
        format!("soak@example.com {}", public.trim()),
    )
    .unwrap();
    for entry in std::fs::read_dir(fixtures.join("manifests")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), repo.join("demo").join(entry.file_name())).unwrap();
    }
    let tick = |n: u64| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: soak-tick, namespace: demo}}\ndata: {{tick: \"{n}\"}}\n"
        )
    };
    std::fs::write(repo.join("demo/soak-tick.yaml"), tick(0)).unwrap();
    git(&repo, &key, &["init", "-q", "-b", "main"]);
    git(&repo, &key, &["add", "-A"]);
    git(&repo, &key, &["commit", "-q", "-m", "soak: the start"]);

    // TLS: a CA of the run's own, the server's certificate rotated every minute.
    let tls_dir = dir.path().join("tls");
    std::fs::create_dir(&tls_dir).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    issue(&tls_dir, &ca, 0);
    std::fs::write(dir.path().join("refresh-token"), "soak-token\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("gitgate.yaml");
    std::fs::write(
        &config,
        format!(
            "repository:\n  url: {}\n  refresh: 30s\napproval:\n  requireSignatures: true\n  allowedSigners: {}\n  window: {{commits: 20}}\nserver:\n  refreshTokenFile: {}\n  timeout: {}ms\n",
            repo.display(),
            dir.path().join("allowed_signers").display(),
            dir.path().join("refresh-token").display(),
            deadline.as_millis()
        ),
    )
    .unwrap();
    let log_file = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .arg("serve")
        .arg("-c")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(tls_dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(tls_dir.join("tls.key"))
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let pid = server.id();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .http1_only()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new({
        let mut files: Vec<PathBuf> = std::fs::read_dir(&fixtures)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Ready: the first index of the signed window is built.
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "never ready; see the serve log"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let interval = Arc::new(Mutex::new(Interval::default()));
        let commits = Arc::new(AtomicU64::new(0));
        let end = Instant::now() + Duration::from_secs(seconds);

        // A signed commit every few seconds, then POST /refresh.
        let committer = {
            let (repo, key, client, base, commits) = (
                repo.clone(),
                key.clone(),
                client.clone(),
                base.clone(),
                commits.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < end {
                    tokio::time::sleep(commit_every).await;
                    n += 1;
                    let (repo, key) = (repo.clone(), key.clone());
                    tokio::task::spawn_blocking(move || {
                        std::fs::write(repo.join("demo/soak-tick.yaml"), tick(n)).unwrap();
                        git(
                            &repo,
                            &key,
                            &["commit", "-q", "-a", "-m", &format!("soak: tick {n}")],
                        );
                    })
                    .await
                    .unwrap();
                    commits.fetch_add(1, Ordering::Relaxed);
                    let _ = client
                        .post(format!("{base}/refresh"))
                        .bearer_auth("soak-token")
                        .send()
                        .await;
                }
            })
        };
        // A new certificate every minute.
        let rotator = {
            let tls_dir = tls_dir.clone();
            tokio::spawn(async move {
                let mut serial = 0;
                while Instant::now() < end {
                    tokio::time::sleep(rotate_every).await;
                    serial += 1;
                    issue(&tls_dir, &ca, serial);
                }
            })
        };
        // The report, every 10 s.
        let reporter = {
            let (interval, client, base, commits) = (
                interval.clone(),
                client.clone(),
                base.clone(),
                commits.clone(),
            );
            tokio::spawn(async move {
                println!(
                    "{:>5} {:>7} {:>9} {:>9} {:>6} {:>5} {:>9} {:>7} {:>7}",
                    "t(s)",
                    "sent",
                    "p50(ms)",
                    "p99(ms)",
                    "errors",
                    "late",
                    "rss(MiB)",
                    "commits",
                    "reloads"
                );
                let t0 = Instant::now();
                while Instant::now() < end {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    let mut now = std::mem::take(&mut *interval.lock().unwrap());
                    now.latencies.sort();
                    let page = match client.get(format!("{base}/metrics")).send().await {
                        Ok(r) => r.text().await.unwrap_or_default(),
                        Err(_) => String::new(),
                    };
                    println!(
                        "{:>5} {:>7} {:>9.2} {:>9.2} {:>6} {:>5} {:>9.1} {:>7} {:>7}",
                        t0.elapsed().as_secs(),
                        now.latencies.len() as u64 + now.errors,
                        percentile(&now.latencies, 0.5).as_secs_f64() * 1e3,
                        percentile(&now.latencies, 0.99).as_secs_f64() * 1e3,
                        now.errors,
                        now.late,
                        rss_kib(pid) as f64 / 1024.0,
                        commits.load(Ordering::Relaxed),
                        metric(&page, "gitgate_tls_reloads_total"),
                    );
                }
            })
        };
        // The load: open loop, one request every 1/rate s, the fixtures in turn.
        let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut n = 0usize;
        while Instant::now() < end {
            let scheduled = ticker.tick().await;
            let (client, bodies, interval, url) = (
                client.clone(),
                bodies.clone(),
                interval.clone(),
                format!("{base}/validate"),
            );
            let body = n % bodies.len();
            n += 1;
            tokio::spawn(async move {
                let result = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(bodies[body].clone())
                    .send()
                    .await;
                let ok = match result {
                    Ok(resp) if resp.status() == 200 => resp.bytes().await.is_ok(),
                    _ => false,
                };
                let took = scheduled.elapsed();
                let mut i = interval.lock().unwrap();
                if ok {
                    i.latencies.push(took);
                    if took > deadline {
                        i.late += 1;
                    }
                } else {
                    i.errors += 1;
                }
            });
        }
        let _ = tokio::join!(committer, rotator, reporter);
    });
    let _ = server.kill();
    let _ = server.wait();
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" ERROR ") || l.contains("panicked"))
        .take(10)
        .collect();
    println!(
        "serve log: {} lines, {} errors{}",
        log.lines().count(),
        log.lines().filter(|l| l.contains(" ERROR ")).count(),
        if problems.is_empty() {
            String::new()
        } else {
            format!(":\n{}", problems.join("\n"))
        }
    );
}
