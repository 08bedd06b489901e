//! `gitgate serve`: the admission door. An axum application over rustls: `POST /validate`
//! takes an AdmissionReview (v1 or v1beta1) and answers in the version it came in, deciding
//! with [`decision::decide`], the function `check` calls. `/healthz`, `/readyz` and
//! `/metrics` (Prometheus) beside it, and `POST /refresh` ([`refresh`]) for Git host webhooks.

pub mod admission;
pub mod audit;
pub mod policy_reports;
pub mod refresh;
pub mod setup;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls::TlsInfo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::{Config, FailureMode};
use crate::decision::guard::Unanswered;
use crate::decision::{self, Context};
use crate::input::{self, Document};
use crate::policy::PolicySet;
use admission::{Answer, operation_name, redact_quoted};
pub use tls::TlsFiles;

/// Everything a request needs, shared by all of them; immutable, so no lock is taken.
pub struct AppState {
    pub policies: PolicySet,
    pub failure_mode: FailureMode,
    /// The time a decision may take before the failure mode answers instead.
    pub deadline: Duration,
    /// With a client CA, /validate requires a verified client certificate.
    pub require_client_cert: bool,
    pub metrics: PrometheusHandle,
    /// The approved window, when a repository is configured (provenance on).
    pub mirror: Option<Arc<crate::provenance::mirror::Mirror>>,
    /// The configuration the server runs with.
    pub config: Config,
    /// Exemptions, break-glass, stamps and mutation allowances: what the provenance verdict
    /// judges by, built once.
    pub rules: crate::provenance::verdict::Rules,
    /// Decisions that may run at once, abandoned ones included: an evaluation abandoned at
    /// its deadline keeps its permit until it really ends, so requests built to be slow cannot
    /// pile up evaluations without bound (CPU, memory); past the bound a request waits for a
    /// permit until its deadline, then gets the failure mode.
    pub decisions: crate::decision::guard::Limited,
    /// Requests to `/validate` in flight, bodies included (`server.maxRequests`, see
    /// [`bounded`]).
    pub requests: Arc<tokio::sync::Semaphore>,
    /// Namespaces for `namespaceSelector`, `data.inventory` (see [`crate::cluster`]).
    pub cluster: crate::cluster::Cluster,
    /// What the policies and the configuration need of the cluster.
    pub needs: crate::cluster::sync::Needs,
}

/// Decisions at once (`server.maxDecisions`, by default four per core: a decision is CPU work
/// of a few hundred microseconds, so this only binds when evaluations are abandoned or very
/// slow), at least 8.
fn decision_permits(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .saturating_mul(4)
        .max(8)
}

/// The Prometheus recorder, installed once per process.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("gitgate_admission_duration_seconds".into()),
                    &[
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1.0, 2.5,
                    ],
                )
                .expect("valid buckets");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Described and registered on this recorder itself, whichever is global.
            metrics::with_local_recorder(&recorder, describe_metrics);
            // Another recorder may already be installed (a test harness); the handle still
            // renders what this one records.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Why a request to `/validate` was refused before any decision: the `reason` label of
/// `gitgate_admission_bad_requests_total`.
const BAD_REQUEST_REASONS: [&str; 6] = [
    "malformed",
    "empty",
    "too_large",
    "unauthenticated",
    "overloaded",
    "too_slow",
];

/// Every metric gitgate emits, described once (the `# HELP` lines), and the main counters
/// registered at zero so that the first scrape shows them.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "gitgate_admission_requests_total",
        "Admission requests decided, by operation, verdict and dry_run"
    );
    describe_histogram!(
        "gitgate_admission_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a request's arrival to its answer"
    );
    describe_counter!(
        "gitgate_admission_bad_requests_total",
        "Requests to /validate refused before a decision (400, 401, 408, 413, 429), by reason"
    );
    describe_counter!(
        "gitgate_policy_findings_total",
        "Policy findings, by policy and action (deny, warn, dryrun)"
    );
    describe_counter!(
        "gitgate_policy_errors_total",
        "Policy evaluations that failed (errors, time limit), by policy"
    );
    describe_counter!(
        "gitgate_internal_errors_total",
        "Requests gitgate could not decide (answered by server.failureMode)"
    );
    describe_counter!(
        "gitgate_tls_reloads_total",
        "Reloads of the TLS certificate and key"
    );
    describe_counter!(
        "gitgate_tls_reload_errors_total",
        "Changes of the TLS files that do not load (deleted, garbage, a key that does not fit): the current certificate is kept"
    );
    describe_counter!(
        "gitgate_git_syncs_total",
        "Syncs of the Git repository, by result (ok, error, rewound)"
    );
    describe_gauge!(
        "gitgate_git_sync_age_seconds",
        metrics::Unit::Seconds,
        "Age of the provenance index (time since the last good sync)"
    );
    describe_gauge!(
        "gitgate_window_approved_commits",
        "Approved commits in the window (0: the window is empty and the gate fails closed)"
    );
    describe_gauge!(
        "gitgate_window_rewound",
        "1 when the protected branch moved backwards and the window stays where it was"
    );
    describe_gauge!(
        "gitgate_render_errors",
        "Sources of the newest approved commit that cannot be rendered"
    );
    describe_counter!(
        "gitgate_provenance_verdicts_total",
        "Provenance verdicts, by status"
    );
    describe_counter!(
        "gitgate_break_glass_total",
        "Changes admitted through break-glass"
    );
    describe_counter!(
        "gitgate_refresh_requests_total",
        "POST /refresh requests, by result"
    );
    describe_gauge!(
        "gitgate_cluster_cache_objects",
        "Objects held by a cluster watch cache, by kind"
    );
    describe_gauge!(
        "gitgate_cluster_cache_synced",
        "1 when a cluster watch cache has read its first list, by kind"
    );
    describe_gauge!(
        "gitgate_cluster_cache_age_seconds",
        metrics::Unit::Seconds,
        "Time since a cluster watch cache last heard from the API server, by kind"
    );
    describe_counter!(
        "gitgate_cluster_watch_errors_total",
        "Errors of the cluster watches, by kind"
    );
    describe_counter!("gitgate_audit_runs_total", "Audit runs, by result");
    describe_gauge!(
        "gitgate_audit_duration_seconds",
        metrics::Unit::Seconds,
        "Duration of the last audit run"
    );
    describe_gauge!(
        "gitgate_audit_last_run_timestamp_seconds",
        metrics::Unit::Seconds,
        "Unix time of the last audit run"
    );
    describe_gauge!(
        "gitgate_audit_objects",
        "Objects judged by the last audit run, by provenance status"
    );
    describe_gauge!(
        "gitgate_audit_violations",
        "Violations found by the last audit run"
    );
    describe_gauge!(
        "gitgate_audit_missing_objects",
        "Objects the newest approved commit holds that the cluster lacks"
    );
    describe_counter!(
        "gitgate_audit_policy_report_errors_total",
        "PolicyReports the audit could not write"
    );
    // At zero from the start, so that rates and alerts have a series before the first event.
    for reason in BAD_REQUEST_REASONS {
        metrics::counter!("gitgate_admission_bad_requests_total", "reason" => reason).increment(0);
    }
    metrics::counter!("gitgate_internal_errors_total").increment(0);
    metrics::counter!("gitgate_tls_reload_errors_total").increment(0);
    metrics::counter!("gitgate_break_glass_total").increment(0);
    for dry_run in ["false", "true"] {
        for verdict in ["allowed", "denied"] {
            metrics::counter!("gitgate_admission_requests_total", "operation" => "CREATE", "verdict" => verdict, "dry_run" => dry_run).increment(0);
        }
    }
}

impl AppState {
    pub fn new(policies: PolicySet, config: &Config) -> AppState {
        AppState {
            policies,
            failure_mode: config.server.failure_mode,
            deadline: config.server.timeout,
            require_client_cert: config.server.client_ca.is_some(),
            metrics: metrics_handle(),
            mirror: None,
            config: config.clone(),
            rules: crate::provenance::verdict::Rules::from(config),
            decisions: crate::decision::guard::Limited::new(decision_permits(
                config.server.max_decisions,
            )),
            requests: Arc::new(tokio::sync::Semaphore::new(
                config.server.max_requests.max(1),
            )),
            cluster: crate::cluster::Cluster::Off,
            needs: crate::cluster::sync::Needs::default(),
        }
    }

    /// Decides with the cluster (its caches started elsewhere).
    pub fn with_cluster(
        mut self,
        cluster: crate::cluster::Cluster,
        needs: crate::cluster::sync::Needs,
    ) -> AppState {
        self.cluster = cluster;
        self.needs = needs;
        self
    }

    /// Turns provenance on with a mirror (synced elsewhere).
    pub fn with_mirror(mut self, mirror: Arc<crate::provenance::mirror::Mirror>) -> AppState {
        self.mirror = Some(mirror);
        self
    }
}

/// `server.maxBodyBytes`, as the router was built with it (for the 413's message).
#[derive(Clone, Copy)]
struct BodyLimit(usize);

/// The application: routes, body limit.
pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route(
            "/validate",
            post(validate)
                .route_layer(axum::middleware::from_fn_with_state(state.clone(), bounded)),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/refresh", post(refresh::refresh))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::Extension(BodyLimit(max_body_bytes)))
        .with_state(state)
}

/// The plain-HTTP metrics listener (`server.metricsListen`): `/metrics` and `/healthz` only,
/// never `/validate`, `/readyz` nor `/refresh`, so that it can be opened to Prometheus
/// without a certificate authority and without exposing a decision.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// Starts the plain-HTTP metrics listener on `listen` and returns once it listens.
pub async fn start_metrics(state: Arc<AppState>, listen: &str) -> Result<Running, ServeError> {
    let addr = listen_address(listen).await?;
    let app = metrics_router(state);
    let handle: Handle<SocketAddr> = Handle::new();
    let server_handle = handle.clone();
    let task = tokio::spawn(async move {
        axum_server::bind(addr)
            .handle(server_handle)
            .serve(app.into_make_service())
            .await
    });
    listening(handle, task, addr).await
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    // Ready once policies are loaded (before the server listens) and, with provenance, once
    // the first index is built; a failed later sync keeps it ready on the last good index.
    // Not ready while the window holds no approved commit (the gate fails closed), with why.
    let mut body = serde_json::json!({"ready": true, "policies": state.policies.len()});
    // Not ready while the cluster is needed and out of reach, or its caches have not read
    // their first lists; a cache that lost its watch stays ready and reports its age.
    let (cluster_ready, cluster) = state.cluster.readiness();
    body["cluster"] = cluster;
    if !cluster_ready {
        body["ready"] = serde_json::json!(false);
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    if let Some(mirror) = &state.mirror {
        let error = mirror.last_error().map(|e| e.to_string());
        // The branch was rewound: the window does not move (the last good index keeps
        // deciding, and the webhook stays ready on it), and this says why.
        let rewound = mirror.rewound().map(|e| e.to_string());
        match mirror.snapshot() {
            Some(s) => {
                body["provenance"] = serde_json::json!({
                    "indexAgeSeconds": s.synced_at.elapsed().as_secs_f64(),
                    "approvedCommits": s.index.commits().count(),
                    // false while a first start reads the window's older commits (the
                    // newest approved commit decides meanwhile).
                    "wholeWindow": s.complete,
                    "lastError": error,
                });
                if let Some(rewound) = &rewound {
                    body["provenance"]["rewound"] = serde_json::json!(rewound);
                }
                if let Some(reason) = s.index.empty_window_reason() {
                    body["ready"] = serde_json::json!(false);
                    body["provenance"]["reason"] = serde_json::json!(reason);
                    return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
                }
                // A first start whose whole window could not be read: the stage that decides
                // is no window (the next sync reads it again).
                if !s.complete
                    && let Some(error) = &error
                {
                    body["ready"] = serde_json::json!(false);
                    body["provenance"]["reason"] = serde_json::json!(format!(
                        "the approved window could not be read whole: {error}"
                    ));
                    return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
                }
            }
            None => {
                body["ready"] = serde_json::json!(false);
                body["provenance"] =
                    serde_json::json!({"waitingForFirstSync": true, "lastError": error});
                if let Some(rewound) = &rewound {
                    body["provenance"]["rewound"] = serde_json::json!(rewound);
                }
                return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            }
        }
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    state.cluster.record_metrics();
    // The index's age as of this scrape: set when it is read, since between syncs (a refresh
    // of minutes, or syncs that keep failing) nothing else would move it.
    if let Some(snapshot) = state.mirror.as_ref().and_then(|m| m.snapshot()) {
        metrics::gauge!("gitgate_git_sync_age_seconds")
            .set(snapshot.synced_at.elapsed().as_secs_f64());
        // 0: the window holds no approved commit and the gate fails closed.
        metrics::gauge!("gitgate_window_approved_commits")
            .set(snapshot.index.commits().count() as f64);
        // Sources of the newest approved commit that cannot be rendered (logged at each sync).
        metrics::gauge!("gitgate_render_errors").set(snapshot.index.render_errors().len() as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// A JSON body with a status.
fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn bad_request(reason: &'static str, message: String) -> Response {
    metrics::counter!("gitgate_admission_bad_requests_total", "reason" => reason).increment(1);
    tracing::warn!(error = %redact_quoted(&message), "refused a request that is not a valid AdmissionReview");
    json(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": message}),
    )
}

/// What requests to `/validate` may hold: at most `server.maxRequests` at once, each for at
/// most twice `server.timeout` (its body, then its decision, answered by the deadline counted
/// from the body's arrival). A place is taken before the body is read, so that a request
/// waiting for one holds no body (only what the kernel buffers); it waits at most
/// `server.timeout` (a stall of a moment is absorbed, as the soak run showed a refusal at
/// once was not), then is refused (429: the API server applies its failurePolicy). A request
/// cut off (408) frees its place: a client sending its body slowly cannot hold one.
async fn bounded(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let place = tokio::time::timeout(state.deadline, state.requests.clone().acquire_owned());
    let Ok(Ok(_place)) = place.await else {
        metrics::counter!("gitgate_admission_bad_requests_total", "reason" => "overloaded")
            .increment(1);
        tracing::warn!(
            max_requests = state.config.server.max_requests,
            "refused a request: server.maxRequests requests were in flight until its deadline"
        );
        return json(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({"error": format!(
                "too many requests in flight (server.maxRequests: {}) until the deadline",
                state.config.server.max_requests
            )}),
        );
    };
    let limit = state.deadline.saturating_mul(2);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("gitgate_admission_bad_requests_total", "reason" => "too_slow")
                .increment(1);
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "cut off a request whose body did not arrive in time"
            );
            json(
                StatusCode::REQUEST_TIMEOUT,
                serde_json::json!({"error": format!(
                    "the request was not read and answered within {} ms (twice server.timeout)",
                    limit.as_millis()
                )}),
            )
        }
    }
}

/// `POST /validate`.
async fn validate(
    State(state): State<Arc<AppState>>,
    tls: Option<axum::Extension<Arc<TlsInfo>>>,
    axum::Extension(BodyLimit(limit)): axum::Extension<BodyLimit>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let started = Instant::now();
    if state.require_client_cert && tls.as_ref().is_none_or(|t| t.peer_certificates.is_empty()) {
        metrics::counter!("gitgate_admission_bad_requests_total", "reason" => "unauthenticated")
            .increment(1);
        tracing::warn!("refused a request without a client certificate signed by the client CA");
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "a client certificate signed by the configured client CA is required"}),
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            metrics::counter!("gitgate_admission_bad_requests_total", "reason" => "too_large")
                .increment(1);
            tracing::warn!(
                limit_bytes = limit,
                "refused a request larger than server.maxBodyBytes"
            );
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({"error": format!(
                    "the body is larger than server.maxBodyBytes ({limit} bytes)"
                )}),
            );
        }
        Err(rejection) => return bad_request("malformed", rejection.body_text()),
    };
    if body.is_empty() {
        return bad_request("empty", "empty body: expected an AdmissionReview".into());
    }
    // A request too deep to read whose envelope is readable is still answered.
    let (version, review, too_deep) = match input::parse_admission_review("request", &body) {
        Ok((version, review)) => (version, review, false),
        Err(input::InputError::TooDeep {
            version, review, ..
        }) => (version, *review, true),
        Err(e) => return bad_request("malformed", e.to_string()),
    };
    let uid = review.uid.clone();
    let operation = operation_name(&review.operation);
    let kind = review.kind.kind.clone();
    let subresource = review.sub_resource.clone().unwrap_or_default();
    let user = review
        .user_info
        .as_ref()
        .and_then(|u| u.username.clone())
        .unwrap_or_default();
    let namespace = review.namespace.clone().unwrap_or_default();
    let name = review.name.clone();
    let dry_run = review.dry_run;

    let Decided {
        answer,
        fired,
        errors,
        provenance,
        logged,
    } = if crate::provenance::verdict::fast_path(&review, &state.rules.exempt).is_some() {
        Decided::without_policies(admission::exempt(version, &uid))
    } else if too_deep {
        unreadable_object(&state, version, &review)
    } else {
        decide_with_deadline(&state, version, review, started).await
    };
    let elapsed = started.elapsed();
    // Empty when provenance is off or the request was exempt before a verdict.
    let provenance = provenance.map_or("", |s| s.as_str());
    let dry_run_label = if dry_run { "true" } else { "false" };
    metrics::counter!("gitgate_admission_requests_total", "operation" => operation, "verdict" => answer.verdict, "dry_run" => dry_run_label).increment(1);
    metrics::histogram!("gitgate_admission_duration_seconds").record(elapsed.as_secs_f64());
    tracing::info!(
        uid = %uid,
        user = %user,
        operation,
        kind = %kind,
        subresource = %subresource,
        namespace = %namespace,
        name = %name,
        dry_run,
        verdict = answer.verdict,
        provenance = %provenance,
        policies = %fired.join(","),
        errors = %errors.join(","),
        denials = %logged.denials.join("; "),
        dryrun_findings = %logged.dryrun.join("; "),
        differing = %logged.differing.join(" "),
        differing_count = logged.differing_count,
        unattested = %logged.unattested.join(" "),
        unattested_count = logged.unattested_count,
        duration_us = elapsed.as_micros() as u64,
        "admission decision"
    );
    json(StatusCode::OK, answer.body)
}

/// What deciding one request gave: the answer, the policies that fired (`name:action`), the
/// policies that failed, and the provenance verdict when there was one.
struct Decided {
    answer: Answer,
    fired: Vec<String>,
    errors: Vec<String>,
    provenance: Option<crate::provenance::verdict::Status>,
    /// What the log line says beyond names: messages and paths.
    logged: Logged,
}

/// The messages and paths of a decision, for its log line: the denials and the dry-run
/// findings (`[policy] message`, quoted text redacted: a message may echo request data), and
/// the paths of the provenance verdict Git does not explain (paths only, never values).
#[derive(Default)]
struct Logged {
    denials: Vec<String>,
    dryrun: Vec<String>,
    differing: Vec<String>,
    differing_count: usize,
    unattested: Vec<String>,
    unattested_count: usize,
}

/// Paths named in one log line, at most, of each list.
const LOGGED_PATHS: usize = 20;

impl Logged {
    fn message(f: &crate::policy::Finding) -> String {
        format!("[{}] {}", f.policy, redact_quoted(&f.message))
    }

    fn paths(&mut self, verdict: &crate::provenance::verdict::Verdict) {
        let first = |paths: &[String]| paths.iter().take(LOGGED_PATHS).cloned().collect();
        self.differing = first(&verdict.differing);
        self.differing_count = verdict.differing.len();
        self.unattested = first(&verdict.unattested);
        self.unattested_count = verdict.unattested.len();
    }
}

impl Decided {
    fn without_policies(answer: Answer) -> Decided {
        Decided {
            answer,
            fired: Vec::new(),
            errors: Vec::new(),
            provenance: None,
            logged: Logged::default(),
        }
    }
}

/// The answer to a request whose object is nested deeper than gitgate reads
/// ([`input::MAX_DEPTH`]), decided without it rather than refused as a bad request (which
/// would leave the answer to the API server's failurePolicy). With provenance on and its
/// policy enforcing, the object is untraceable (no manifest in Git is that deep) unless the
/// request is exempt; otherwise no policy could read it, and the failure mode answers.
fn unreadable_object(
    state: &AppState,
    version: input::ReviewVersion,
    review: &input::Review,
) -> Decided {
    let reason = input::too_deep();
    let provenance_denies = state
        .policies
        .policies()
        .iter()
        .any(|p| p.name == "provenance" && p.enforcement == crate::policy::Enforcement::Deny);
    let exempt = crate::provenance::verdict::exemption(review, &state.rules);
    tracing::warn!(uid = %review.uid, limit = input::MAX_DEPTH, "an object nested deeper than gitgate reads");
    if state.mirror.is_some() && provenance_denies && exempt.is_none() {
        metrics::counter!("gitgate_provenance_verdicts_total", "status" => "untraceable")
            .increment(1);
        let message = format!("[provenance] provenance: {reason}");
        return Decided {
            answer: admission::refused(version, &review.uid, &message),
            fired: vec!["provenance:deny".to_string()],
            errors: Vec::new(),
            provenance: Some(crate::provenance::verdict::Status::Untraceable),
            logged: Logged {
                denials: vec![redact_quoted(&message)],
                ..Logged::default()
            },
        };
    }
    metrics::counter!("gitgate_internal_errors_total").increment(1);
    Decided {
        provenance: exempt.map(|v| v.status),
        ..Decided::without_policies(admission::failure(
            version,
            &review.uid,
            &reason,
            state.failure_mode == FailureMode::Allow,
        ))
    }
}

/// Decides off the async workers and answers by the deadline: the decision runs on a
/// decision thread ([`crate::decision::guard::Limited`]), and when the deadline (`server.timeout`, counted from the request's arrival)
/// passes first, or the decision panics, the answer is the failure mode. A decision still
/// running then is abandoned; the Rego time limit, no higher than the deadline, ends it.
///
/// Why not inline: an evaluation can run long inside one built-in call, where the engine's
/// timer is not read, and an object can be large; on an async worker either would hold up
/// every other request on that worker and leave the deadline unkept (BENCHMARKS.md measures
/// the cost of the hand-off).
async fn decide_with_deadline(
    state: &Arc<AppState>,
    version: input::ReviewVersion,
    review: input::Review,
    arrived: Instant,
) -> Decided {
    let uid = review.uid.clone();
    let allow_on_error = state.failure_mode == FailureMode::Allow;
    let failed = |message: String| {
        metrics::counter!("gitgate_internal_errors_total").increment(1);
        Decided::without_policies(admission::failure(version, &uid, &message, allow_on_error))
    };
    let deadline = tokio::time::Instant::from_std(arrived + state.deadline);
    let worker_state = state.clone();
    match state
        .decisions
        .decide(deadline, move || {
            decide(&worker_state, version, review, arrived)
        })
        .await
    {
        Ok(decided) => decided,
        Err(Unanswered::Saturated) => {
            tracing::error!(uid = %uid, "no decision slot came free before the deadline");
            failed(format!(
                "no decision within {} ms: too many decisions in progress",
                state.deadline.as_millis()
            ))
        }
        Err(Unanswered::Failed(why)) => {
            tracing::error!(uid = %uid, error = %why, "the decision failed");
            failed(why)
        }
        Err(Unanswered::Deadline) => {
            tracing::error!(uid = %uid, deadline_ms = state.deadline.as_millis() as u64, "the decision missed its deadline");
            failed(format!(
                "no decision within {} ms",
                state.deadline.as_millis()
            ))
        }
    }
}

/// Decides one request (provenance, then the policies) and applies the failure mode when a
/// policy fails.
fn decide(
    state: &AppState,
    version: input::ReviewVersion,
    review: input::Review,
    arrived: Instant,
) -> Decided {
    let uid = review.uid.clone();
    let allow_on_error = state.failure_mode == FailureMode::Allow;
    let mut doc = Document::from_review(review);
    let mut status = None;
    let mut logged = Logged::default();
    if let Some(mirror) = &state.mirror {
        let Some(snapshot) = mirror.snapshot() else {
            metrics::counter!("gitgate_internal_errors_total").increment(1);
            let answer = admission::failure(
                version,
                &uid,
                "the Git index is not built yet",
                allow_on_error,
            );
            return Decided::without_policies(answer);
        };
        // A custom resource whose CRD Git does not hold: the cluster's CRD gives its defaults.
        // (Noted: a stage of a first sync may lack an older commit's CRD the window holds.)
        let read_cluster_crd = std::cell::Cell::new(false);
        let cluster_crd = || {
            read_cluster_crd.set(true);
            match &state.cluster {
                crate::cluster::Cluster::Watching(watch) => watch
                    .crds()
                    .manifest(&doc.review.kind.group, &doc.review.kind.kind),
                _ => None,
            }
        };
        // The classes the watched cluster holds: what its admission plugins pick.
        let cluster_picks = match &state.cluster {
            crate::cluster::Cluster::Watching(watch) => Some(watch.picks()),
            _ => None,
        };
        let judge = |index: &crate::provenance::index::Index| {
            read_cluster_crd.set(false);
            crate::provenance::verdict::judge_in(
                &doc.review,
                index,
                &state.rules,
                cluster_crd,
                cluster_picks.as_deref(),
            )
        };
        // At a first start a stage of the window may decide: what it cannot settle waits for
        // the next one, until half the deadline after the request arrived, a few at once.
        let most = (state.decisions.size() / 2).max(1);
        let delete = doc.review.operation == kube_core::admission::Operation::Delete;
        let verdict = mirror.judge_settled(
            snapshot,
            arrived + state.deadline / 2,
            most,
            delete,
            |index| {
                let verdict = judge(index);
                (verdict, read_cluster_crd.get())
            },
        );
        if let Some(bg) = &verdict.break_glass {
            metrics::counter!("gitgate_break_glass_total").increment(1);
            // Who and why, never the object's data.
            tracing::warn!(event = "break_glass", uid = %uid, user = %bg.user, reason = %bg.reason,
                kind = %doc.review.kind.kind, namespace = %doc.review.namespace.clone().unwrap_or_default(),
                name = %doc.review.name, "break-glass change admitted");
        }
        metrics::counter!("gitgate_provenance_verdicts_total", "status" => verdict.status.as_str())
            .increment(1);
        logged.paths(&verdict);
        status = Some(verdict.status);
        doc.provenance = Some(verdict);
    }
    if let Some(reason) = state.cluster.blocks_decisions(&state.needs) {
        metrics::counter!("gitgate_internal_errors_total").increment(1);
        return Decided {
            provenance: status,
            logged,
            ..Decided::without_policies(admission::failure(version, &uid, &reason, allow_on_error))
        };
    }
    // Namespace labels and data.inventory as the caches hold them now (a snapshot).
    let view = state.cluster.view();
    let ctx = Context {
        namespaces: &view,
        data: view.data(),
    };
    let decision = decision::decide(&state.policies, &doc, &ctx);
    for f in decision.findings() {
        metrics::counter!("gitgate_policy_findings_total", "policy" => f.policy.clone(), "action" => f.action.as_str()).increment(1);
    }
    for e in &decision.errors {
        metrics::counter!("gitgate_policy_errors_total", "policy" => e.policy.clone()).increment(1);
        tracing::error!(uid = %uid, policy = %e.policy, error = %redact_quoted(&e.message), "a policy failed");
    }
    // Names with their action, `latest-tag:deny`, so that dry-run findings are logged as such.
    let fired: Vec<String> = decision
        .findings()
        .map(|f| format!("{}:{}", f.policy, f.action.as_str()))
        .collect();
    let errors: Vec<String> = decision.errors.iter().map(|e| e.policy.clone()).collect();
    logged.denials = decision.violations.iter().map(Logged::message).collect();
    logged.dryrun = decision.dryrun.iter().map(Logged::message).collect();
    let answer = if !decision.errors.is_empty() && decision.violations.is_empty() {
        // Only failures stand in the way: the failure mode decides.
        let names = errors.join(", ");
        admission::failure(
            version,
            &uid,
            &format!("policies failed: {names}"),
            allow_on_error,
        )
    } else {
        admission::answer(version, &doc.review, &decision, doc.provenance.as_ref())
    };
    Decided {
        answer,
        fired,
        errors,
        provenance: status,
        logged,
    }
}

/// A running server.
pub struct Running {
    pub handle: Handle<SocketAddr>,
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
}

/// Starts the server on `listen` and returns once it listens.
pub async fn start(
    state: Arc<AppState>,
    listen: &str,
    files: TlsFiles,
    max_body_bytes: usize,
) -> Result<Running, ServeError> {
    start_app(router(state, max_body_bytes), listen, files).await
}

/// The running server once it listens, or why it could not (the task's error).
async fn listening(
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    addr: SocketAddr,
) -> Result<Running, ServeError> {
    match handle.listening().await {
        Some(addr) => Ok(Running { handle, addr, task }),
        None => {
            let message = match task.await {
                Ok(Err(e)) => e.to_string(),
                _ => "the server stopped".into(),
            };
            Err(ServeError::Listen {
                addr: addr.to_string(),
                message,
            })
        }
    }
}

/// Serves any application with gitgate's TLS setup (the load benchmark's fixed-answer
/// baseline uses it, so that both measure the same stack).
pub async fn start_app(app: Router, listen: &str, files: TlsFiles) -> Result<Running, ServeError> {
    let addr = listen_address(listen).await?;
    let config = tls::load_and_watch(files, Duration::from_secs(1))?;
    let handle: Handle<SocketAddr> = Handle::new();
    let server_handle = handle.clone();
    let task = tokio::spawn(async move {
        axum_server::bind_rustls(addr, config)
            .handle(server_handle)
            .serve(app.into_make_service())
            .await
    });
    listening(handle, task, addr).await
}

/// The address `--listen` (or `server.listen`) names: `0.0.0.0:8443`, `[::1]:8443`, `:8443`
/// (every interface, as Go writes it) or a host name and port (`localhost:8443`, resolved).
pub async fn listen_address(listen: &str) -> Result<SocketAddr, ServeError> {
    let refused = |message: String| ServeError::Listen {
        addr: listen.to_string(),
        message,
    };
    let spelled = match listen.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => listen.to_string(),
    };
    if let Ok(addr) = spelled.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = spelled.rsplit_once(':') else {
        return Err(refused(
            "not an address: write it like 0.0.0.0:8443, :8443 or localhost:8443".into(),
        ));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(refused(format!(
            "not an address (the port {port:?} is not a number from 0 to 65535): write it like 0.0.0.0:8443, :8443 or localhost:8443"
        )));
    }
    let mut found = tokio::net::lookup_host(&spelled)
        .await
        .map_err(|e| refused(format!("cannot resolve {host:?}: {e}")))?
        .collect::<Vec<_>>();
    // IPv4 first, as a host's loopback name is most often reached over it.
    found.sort_by_key(|a| !a.is_ipv4());
    found
        .into_iter()
        .next()
        .ok_or_else(|| refused(format!("{host:?} resolves to no address")))
}

/// Serves until SIGTERM or SIGINT, then lets in-flight requests finish (up to 10 s). With
/// `metrics_listen`, `/metrics` and `/healthz` are also served over plain HTTP there, on the
/// same runtime, and stopped with the webhook.
pub async fn run(
    state: Arc<AppState>,
    listen: &str,
    metrics_listen: Option<&str>,
    files: TlsFiles,
    max_body_bytes: usize,
) -> Result<(), ServeError> {
    let metrics = match metrics_listen {
        Some(m) => Some(start_metrics(state.clone(), m).await?),
        None => None,
    };
    let running = start(state, listen, files, max_body_bytes).await?;
    tracing::info!(addr = %running.addr, "gitgate is serving admission reviews on https://{}/validate", running.addr);
    if let Some(m) = &metrics {
        tracing::info!(addr = %m.addr, "gitgate is serving metrics over plain HTTP on http://{}/metrics", m.addr);
    }
    let handle = running.handle.clone();
    let metrics_handle = metrics.as_ref().map(|m| m.handle.clone());
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        handle.graceful_shutdown(Some(Duration::from_secs(10)));
        if let Some(h) = metrics_handle {
            h.graceful_shutdown(Some(Duration::from_secs(1)));
        }
    });
    match running.task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Listen {
            addr: running.addr.to_string(),
            message: e.to_string(),
        }),
        Err(e) => Err(ServeError::Listen {
            addr: running.addr.to_string(),
            message: e.to_string(),
        }),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
