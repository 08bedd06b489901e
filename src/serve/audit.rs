//! The audit on an interval (`audit.interval`, off by default): on its own thread, one
//! evaluation thread, reading the caches' snapshots, so that it never holds up admission;
//! its result goes to gauges (and, with `audit.policyReports`, to PolicyReports:
//! [`super::policy_reports`]).
//!
//! Gauges: `gitgate_audit_objects{status}` (objects by provenance status, `none` without a
//! repository), `gitgate_audit_violations{policy,action}` (findings of the last audit; a
//! policy with none is set to 0, not left at its old value), `gitgate_audit_missing_objects`,
//! `gitgate_audit_duration_seconds`, `gitgate_audit_last_run_timestamp_seconds`, and the
//! counter `gitgate_audit_runs_total{result}` (`ok`, `unchecked`: something could not be
//! checked).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::AppState;
use crate::audit::{self, Outcome};
use crate::cluster::Cluster;

/// Starts the audit thread when `audit.interval` is set (and the cluster is watched).
pub fn spawn(state: &Arc<AppState>) {
    let Some(interval) = state.config.audit.interval else {
        return;
    };
    if !matches!(state.cluster, Cluster::Watching(_)) {
        tracing::error!(
            "audit.interval is set but the cluster is not read: the audit does not run (see /readyz)"
        );
        return;
    }
    let state = state.clone();
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("gitgate-audit".into())
        .spawn(move || {
            let mut previous = BTreeSet::new();
            loop {
                let Some(outcome) = once(&state, &runtime) else {
                    // The caches are not synced yet: try again soon rather than an interval
                    // later.
                    std::thread::sleep(interval.min(Duration::from_secs(30)));
                    continue;
                };
                previous = record(&outcome, &previous);
                if state.config.audit.policy_reports
                    && let Cluster::Watching(watch) = &state.cluster
                {
                    let written =
                        runtime.block_on(super::policy_reports::write(&watch.connection, &outcome));
                    match written {
                        Ok(n) => tracing::info!(reports = n, "policy reports written"),
                        Err(e) => {
                            metrics::counter!("gitgate_audit_policy_report_errors_total")
                                .increment(1);
                            tracing::error!(error = %e, "cannot write the policy reports");
                        }
                    }
                }
                std::thread::sleep(interval);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the audit thread");
    }
}

/// One audit, once the caches are synced (`None` before that).
pub fn once(state: &AppState, runtime: &tokio::runtime::Handle) -> Option<Outcome> {
    let Cluster::Watching(watch) = &state.cluster else {
        return None;
    };
    // The first audit waits for the first lists (they are what policies read).
    for _ in 0..600 {
        if watch.is_synced() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !watch.is_synced() {
        tracing::warn!("the audit waits for the cluster caches to be synced");
        return None;
    }
    let snapshot = state.mirror.as_ref().and_then(|m| m.snapshot());
    // An audit against the newest approved commit alone would call drifted what an older
    // commit of the window holds: it waits for the whole window.
    if snapshot.as_ref().is_some_and(|s| !s.complete) {
        tracing::info!("the audit waits for the window's older commits to be read");
        return None;
    }
    let view = watch.view();
    let ctx = audit::Context {
        connection: &watch.connection,
        runtime,
        policies: &state.policies,
        config: &state.config,
        index: snapshot.as_ref().map(|s| &s.index),
        view: &view,
        threads: 1,
        keep_subjects: state.config.audit.policy_reports,
    };
    let plan = audit::plan(&ctx, &state.needs);
    let outcome = audit::run(&ctx, plan);
    let counts = outcome.report.counts();
    tracing::info!(
        objects = outcome.report.checked.len(),
        errors = counts.errors,
        warnings = counts.warnings,
        unchecked = counts.unchecked,
        missing = outcome.report.audit.as_ref().map_or(0, |a| a.missing),
        duration_ms = outcome.duration.as_millis() as u64,
        "audit done"
    );
    Some(outcome)
}

/// Sets the gauges of one audit; returns the (policy, action) pairs it set, so that the next
/// audit zeroes those it no longer finds.
fn record(
    outcome: &Outcome,
    previous: &BTreeSet<(String, &'static str)>,
) -> BTreeSet<(String, &'static str)> {
    let audit = outcome.report.audit.clone().unwrap_or_default();
    for status in [
        "traceable",
        "untraceable",
        "modified",
        "exempt",
        "delegated",
        "none",
    ] {
        let n = audit.provenance.get(status).copied().unwrap_or(0);
        metrics::gauge!("gitgate_audit_objects", "status" => status).set(n as f64);
    }
    metrics::gauge!("gitgate_audit_missing_objects").set(audit.missing as f64);
    let mut now = BTreeSet::new();
    for ((policy, action), n) in &outcome.violations {
        metrics::gauge!("gitgate_audit_violations", "policy" => policy.clone(), "action" => *action)
            .set(*n as f64);
        now.insert((policy.clone(), *action));
    }
    for (policy, action) in previous.difference(&now) {
        metrics::gauge!("gitgate_audit_violations", "policy" => policy.clone(), "action" => *action)
            .set(0.0);
    }
    metrics::gauge!("gitgate_audit_duration_seconds").set(outcome.duration.as_secs_f64());
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!("gitgate_audit_last_run_timestamp_seconds").set(at);
    let result = if outcome.report.counts().unchecked > 0 {
        "unchecked"
    } else {
        "ok"
    };
    metrics::counter!("gitgate_audit_runs_total", "result" => result).increment(1);
    now
}
