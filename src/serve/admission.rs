//! The admission door: an AdmissionReview body in, the AdmissionReview response out. Pure
//! functions (no I/O) so that the HTTP handler stays thin and the conversions are tested alone.

use kube_core::Status;
use kube_core::admission::AdmissionResponse;
use serde_json::{Value, json};

use crate::decision::Decision;
use crate::input::{Review, ReviewVersion, Verdict};

/// What the handler answers: the verdict and the bits the log line and metrics need.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Value,
    pub allowed: bool,
    /// `allowed`, `denied`, `exempt`, `error-allowed`, `error-denied`.
    pub verdict: &'static str,
}

/// The response to a decided request. With provenance on, the verdict goes into the
/// response's audit annotations, so the API server's audit log records which commit admitted
/// each change (or why none did); a break-glass admission carries a warning that says so.
pub fn answer(
    version: ReviewVersion,
    review: &Review,
    decision: &Decision,
    provenance: Option<&Verdict>,
) -> Answer {
    let mut response = AdmissionResponse::invalid(String::new());
    response.uid = review.uid.clone();
    if let Some(p) = provenance {
        response.audit_annotations = audit_annotations(p);
    }
    let mut warnings: Vec<String> = decision
        .warnings
        .iter()
        .map(|f| format!("[{}] {}", f.policy, f.message))
        .collect();
    if let Some(bg) = provenance.and_then(|p| p.break_glass.as_ref()) {
        warnings.push(format!(
            "gitgate: break-glass change admitted ({}); it is reported until Git holds it",
            bg.reason
        ));
    }
    response.warnings = (!warnings.is_empty()).then_some(warnings);
    if decision.allowed {
        response.allowed = true;
        response.result = Status::success();
        return wrap(version, response, true, "allowed");
    }
    let mut reasons: Vec<String> = decision
        .violations
        .iter()
        .map(|f| format!("[{}] {}", f.policy, f.message))
        .collect();
    reasons.extend(
        decision
            .errors
            .iter()
            .map(|e| format!("[{}] policy failed: {}", e.policy, e.message)),
    );
    response.allowed = false;
    response.result = Status::failure(
        &format!("gitgate denied the request: {}", reasons.join("; ")),
        "Forbidden",
    )
    .with_code(403);
    wrap(version, response, false, "denied")
}

/// `provenance`, `provenance-commit`, `provenance-source` (path:line in Git): the keys the API
/// server records, prefixed with the webhook's name, in its audit events.
fn audit_annotations(provenance: &Verdict) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    out.insert(
        "provenance".to_string(),
        provenance.status.as_str().to_string(),
    );
    if let Some(commit) = &provenance.commit {
        out.insert("provenance-commit".to_string(), commit.clone());
    }
    if let Some(path) = &provenance.path {
        let source = match provenance.line {
            Some(line) => format!("{path}:{line}"),
            None => path.clone(),
        };
        out.insert("provenance-source".to_string(), source);
    }
    out
}

/// The response when gitgate itself could not decide (a time limit, an internal error): the
/// configured failure mode says whether it is allowed.
pub fn failure(version: ReviewVersion, uid: &str, message: &str, allow: bool) -> Answer {
    let mut response = AdmissionResponse::invalid(String::new());
    response.uid = uid.to_string();
    if allow {
        response.allowed = true;
        response.result = Status::success();
        response.warnings = Some(vec![format!(
            "gitgate could not decide and allowed the request (failureMode: allow): {message}"
        )]);
        wrap(version, response, true, "error-allowed")
    } else {
        response.allowed = false;
        response.result = Status::failure(
            &format!(
                "gitgate could not decide and denied the request (failureMode: deny): {message}"
            ),
            "InternalError",
        )
        .with_code(500);
        wrap(version, response, false, "error-denied")
    }
}

/// The response that refuses a request for `reason` without a policy decision (an object
/// gitgate cannot read, which no approved commit can hold).
pub fn refused(version: ReviewVersion, uid: &str, reason: &str) -> Answer {
    let mut response = AdmissionResponse::invalid(String::new());
    response.uid = uid.to_string();
    response.allowed = false;
    response.result = Status::failure(
        &format!("gitgate denied the request: {reason}"),
        "Forbidden",
    )
    .with_code(403);
    wrap(version, response, false, "denied")
}

/// The response for a request gitgate does not judge (an exempt subresource).
pub fn exempt(version: ReviewVersion, uid: &str) -> Answer {
    let mut response = AdmissionResponse::invalid(String::new());
    response.uid = uid.to_string();
    response.allowed = true;
    response.result = Status::success();
    wrap(version, response, true, "exempt")
}

fn wrap(
    version: ReviewVersion,
    response: AdmissionResponse,
    allowed: bool,
    verdict: &'static str,
) -> Answer {
    Answer {
        body: json!({
            "apiVersion": version.api_version(),
            "kind": "AdmissionReview",
            "response": response,
        }),
        allowed,
        verdict,
    }
}

pub use crate::input::operation_name;

/// Replaces quoted text in an error message, which may echo request data (serde quotes the
/// values it could not read), before it reaches a log.
pub fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quote = false;
    for c in message.chars() {
        match (c, in_quote) {
            ('"', false) => {
                in_quote = true;
                out.push_str("\"…");
            }
            ('"', true) => {
                in_quote = false;
                out.push('"');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_redacted() {
        assert_eq!(
            redact_quoted(r#"invalid type: string "czNjcjN0", expected u8 at line 1"#),
            r#"invalid type: string "…", expected u8 at line 1"#
        );
    }
}
