//! Load on the webhook: a load generator on loopback (keep-alive TLS, HTTP/1.1, concurrent
//! connections) against `gitgate serve` with the built-in library, and in the same run against
//! a baseline server on the same TLS stack that answers a fixed allow. Prints p50, p99,
//! requests per second and the process's CPU time per request for fixtures 004 (allowed
//! Deployment), 016 (denied image swap) and 027 (denied hostPath pod).
//!
//! The load generator runs on a runtime of its own (`GITGATE_LOAD_THREADS` threads, 1 by
//! default, like `wrk -t1`), as a separate process would, not among the servers' workers.
//!
//! The two servers take turns (`GITGATE_LOAD_ROUNDS` rounds of `GITGATE_LOAD_SECONDS` each,
//! 5 of 2 s by default): the VM is shared and its load drifts, and a drift between one long
//! run of each would show as a difference between the servers.
//!
//! `cargo bench --bench serve` (uses ../shared/fixtures; `GITGATE_LOAD_SECONDS`,
//! `GITGATE_LOAD_ROUNDS`, `GITGATE_LOAD_CONNECTIONS` and `GITGATE_LOAD_THREADS` tune the run; `GITGATE_LOAD_ONLY=004` loads one fixture, on
//! gitgate alone with `GITGATE_LOAD_SERVER=gitgate`, to profile). Results are recorded in
//! BENCHMARKS.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use gitgate::config::Config;
use gitgate::policy::Options;
use gitgate::serve::{AppState, TlsFiles, start, start_app};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Result {
    p50: Duration,
    p99: Duration,
    rps: f64,
    errors: usize,
    /// CPU time of the whole process (servers and load generator) per answered request: what a
    /// request costs, which throughput alone does not tell apart from the VM's other guests.
    cpu_per_request: Duration,
}

/// The CPU time this process has used, all threads, from `/proc/self/stat` (user + system,
/// in clock ticks of 10 ms). `None` where there is no /proc.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command (which may hold spaces), from the third: state, ppid, ...
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

async fn load(
    url: String,
    body: Vec<u8>,
    client: reqwest::Client,
    connections: usize,
    seconds: u64,
) -> Result {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let cpu_before = process_cpu();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, body, client) = (url.clone(), body.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                match client.post(&url).body(body.clone()).send().await {
                    Ok(resp) if resp.status() == 200 => {
                        let _ = resp.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu = match (cpu_before, process_cpu()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => Duration::ZERO,
    };
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Result {
        p50: at(0.50),
        p99: at(0.99),
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        errors,
        cpu_per_request: cpu / all.len().max(1) as u32,
    }
}

fn main() {
    // As the gitgate binary does (see benches/policy.rs).
    // SAFETY: before any thread exists.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
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
    let seconds = env_or("GITGATE_LOAD_SECONDS", 2);
    let rounds = env_or("GITGATE_LOAD_ROUNDS", 5).max(1);
    let connections = env_or("GITGATE_LOAD_CONNECTIONS", 8) as usize;

    // A CA and a server certificate for localhost.
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
    let files = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
        client_ca: None,
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();

    // The servers on a runtime as `gitgate serve` builds it (a worker per core), the load
    // generator on one of its own with `GITGATE_LOAD_THREADS` threads (1 by default, as
    // `wrk -t1`): sharing the servers' workers, its tasks would wait behind a decision, and a
    // server's scheduling would be measured with the client's.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let load_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_or("GITGATE_LOAD_THREADS", 1).max(1) as usize)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = Config::default();
        let set = gitgate::builtin::policy_set(&Options::default()).unwrap();
        let gitgate = start(Arc::new(AppState::new(set, &config)), "127.0.0.1:0", files.clone(), config.server.max_body_bytes)
            .await
            .unwrap();
        let fixed = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"x","allowed":true}}"#;
        let baseline_app = Router::new().route("/validate", post(move || async move { fixed }));
        let baseline = start_app(baseline_app, "127.0.0.1:0", files).await.unwrap();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .http1_only()
            .pool_max_idle_per_host(connections)
            .build()
            .unwrap();
        println!("load: {connections} keep-alive TLS connections (HTTP/1.1), {rounds} rounds of {seconds} s per server and fixture, the servers taking turns, on loopback");
        println!("| server | fixture | p50 | p99 | req/s | errors | share of the baseline | CPU per request |");
        println!("|---|---|---|---|---|---|---|---|");
        let only = std::env::var("GITGATE_LOAD_ONLY").unwrap_or_default();
        let server = std::env::var("GITGATE_LOAD_SERVER").unwrap_or_default();
        let servers = [("baseline (fixed allow)", baseline.addr), ("gitgate, built-in library", gitgate.addr)];
        for fixture in ["004-create-deployments-web.json", "016-update-deployments-web.json", "027-create-pods-debug.json"] {
            if !fixture.starts_with(&only) {
                continue;
            }
            let body = std::fs::read(fixtures.join(fixture)).unwrap();
            // The servers take turns, so that a change in the shared VM's load falls on both;
            // each row is the median round, and the share is the median of each round's.
            let mut runs: Vec<Vec<Result>> = vec![Vec::new(), Vec::new()];
            for _ in 0..rounds {
                for (i, (name, addr)) in servers.iter().enumerate() {
                    if !name.starts_with(&server) {
                        continue;
                    }
                    let url = format!("https://localhost:{}/validate", addr.port());
                    let run = load_runtime.spawn(load(url, body.clone(), client.clone(), connections, seconds));
                    runs[i].push(run.await.unwrap());
                }
            }
            let mut shares: Vec<f64> = runs[0].iter().zip(&runs[1]).map(|(b, g)| g.rps / b.rps).collect();
            shares.sort_by(f64::total_cmp);
            for (i, (name, _)) in servers.iter().enumerate() {
                let mut rows: Vec<&Result> = runs[i].iter().collect();
                if rows.is_empty() {
                    continue;
                }
                rows.sort_by(|a, b| a.rps.total_cmp(&b.rps));
                let r = rows[rows.len() / 2];
                let share = match (i, shares.get(shares.len() / 2)) {
                    (1, Some(share)) => format!("{:.1}% (rounds: {})", share * 100.0, shares.iter().map(|s| format!("{:.1}%", s * 100.0)).collect::<Vec<_>>().join(", ")),
                    _ => String::new(),
                };
                let mut costs: Vec<Duration> = runs[i].iter().map(|r| r.cpu_per_request).collect();
                costs.sort();
                println!(
                    "| {name} | {} | {:.0} µs | {:.0} µs | {:.0} | {} | {share} | {:.0} µs |",
                    &fixture[..3],
                    r.p50.as_secs_f64() * 1e6,
                    r.p99.as_secs_f64() * 1e6,
                    r.rps,
                    rows.iter().map(|r| r.errors).sum::<usize>(),
                    costs[costs.len() / 2].as_secs_f64() * 1e6,
                );
            }
        }
        gitgate.handle.shutdown();
        baseline.handle.shutdown();
    });
}
