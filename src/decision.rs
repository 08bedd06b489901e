//! The one decision function both doors call: run every policy that applies to a document,
//! apply enforcement actions, and keep going when one policy fails.

use serde::Serialize;

use crate::input::Document;
use crate::policy::matcher::NamespaceLabels;
use crate::policy::{Enforcement, Finding, Policy, PolicyError, PolicySet};

/// A policy that could not decide (compile-time problems never get this far).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyFailure {
    pub policy: String,
    pub message: String,
}

/// The verdict on one document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Decision {
    /// No violation of a `deny` policy and no policy failure.
    pub allowed: bool,
    /// Findings of `deny` policies.
    pub violations: Vec<Finding>,
    /// Findings of `warn` policies and `warn` rules.
    pub warnings: Vec<Finding>,
    /// Findings of `dryrun` policies: logged and counted, never shown as blocking.
    pub dryrun: Vec<Finding>,
    /// Policies that failed at run time (errors, time limit). They make the decision fail
    /// closed; the admission front end applies its configured failure mode to them.
    pub errors: Vec<PolicyFailure>,
    /// Names of the policies evaluated.
    pub evaluated: Vec<String>,
}

/// What a decision may need besides the document: namespace labels for `namespaceSelector`
/// and extra data (`data.inventory`).
pub struct Context<'a> {
    pub namespaces: &'a dyn NamespaceLabels,
    pub data: Option<&'a regorus::Value>,
}

impl Default for Context<'_> {
    fn default() -> Self {
        Context {
            namespaces: &crate::policy::matcher::NoNamespaces,
            data: None,
        }
    }
}

/// Decides a document against a policy set. Policies that share a program and parameters
/// (the built-in library, the constraints of one template with the same parameters) are
/// evaluated in one pass.
pub fn decide(set: &PolicySet, doc: &Document, ctx: &Context<'_>) -> Decision {
    let input = doc.to_rego();
    let mut decision = Decision::default();
    let mut pending: Vec<&Policy> = set.applicable(doc, ctx.namespaces).collect();
    while !pending.is_empty() {
        let first = pending[0];
        let (batch, rest): (Vec<&Policy>, Vec<&Policy>) = pending
            .into_iter()
            .partition(|p| std::ptr::eq(*p, first) || first.batches_with(p));
        pending = rest;
        let results = Policy::evaluate_batch(&batch, doc, &input, ctx.data);
        for (policy, result) in batch.iter().zip(results) {
            decision.evaluated.push(policy.name.clone());
            record(&mut decision, policy, result);
        }
    }
    decision.allowed = decision.violations.is_empty() && decision.errors.is_empty();
    decision
}

fn record(decision: &mut Decision, policy: &Policy, result: Result<Vec<Finding>, PolicyError>) {
    {
        match result {
            Ok(findings) => {
                for f in findings {
                    match f.action {
                        Enforcement::Deny => decision.violations.push(f),
                        Enforcement::Warn => decision.warnings.push(f),
                        Enforcement::Dryrun => decision.dryrun.push(f),
                    }
                }
            }
            Err(e) => decision.errors.push(PolicyFailure {
                policy: policy.name.clone(),
                message: e.to_string(),
            }),
        }
    }
}
