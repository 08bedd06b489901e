//! The decision core the three doors call: [`decide`] runs every policy that applies to a
//! document, applies enforcement actions, and keeps going when one policy fails; [`guard`]
//! decides under a deadline with panics caught, and fans out over many documents without ever
//! losing one; [`findings`] is the one result type `report/` formats for every door;
//! [`suite`] runs Gatekeeper `suite.yaml` suites (`gitgate verify`) through [`decide`].

pub mod findings;
pub mod guard;
pub mod suite;

use serde::Serialize;

use crate::input::Document;
use crate::policy::matcher::NamespaceLabels;
use crate::policy::{Enforcement, Finding, Flavor, Policy, PolicyError, PolicySet};

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

impl Decision {
    /// Every finding, `deny` first, then `warn`, then `dryrun`.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.violations
            .iter()
            .chain(&self.warnings)
            .chain(&self.dryrun)
    }

    /// The decision of a document the policies could not decide (a missed deadline, a
    /// panic outside a policy): one failure of `gitgate`, which fails closed.
    pub fn failed(message: String) -> Decision {
        Decision {
            allowed: false,
            errors: vec![PolicyFailure {
                policy: "gitgate".into(),
                message,
            }],
            ..Default::default()
        }
    }
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
/// evaluated in one pass. A workload that an ExpansionTemplate expands is also judged as the
/// resource it generates ([`crate::policy::expansion`]).
pub fn decide(set: &PolicySet, doc: &Document, ctx: &Context<'_>) -> Decision {
    let mut decision = Decision::default();
    evaluate(set, doc, ctx, false, &mut decision);
    expand(set, doc, ctx, &mut decision, 0);
    decision.allowed = decision.violations.is_empty() && decision.errors.is_empty();
    decision
}

/// How deep expansions chain (a CronJob → a Job → a Pod is 2); cycles are refused at load.
const MAX_EXPANSION_DEPTH: usize = 4;

/// Judges what each ExpansionTemplate makes of `doc`, and reports it on `doc`.
fn expand(
    set: &PolicySet,
    doc: &Document,
    ctx: &Context<'_>,
    decision: &mut Decision,
    depth: usize,
) {
    if set.expansions.is_empty() || depth >= MAX_EXPANSION_DEPTH {
        return;
    }
    let kind = &doc.review.kind;
    for template in set
        .expansions
        .iter()
        .filter(|t| t.applies_to(&kind.group, &kind.version, &kind.kind))
    {
        let Some(resultant) = template.expand(doc) else {
            continue;
        };
        let mut implied = Decision::default();
        evaluate(set, &resultant, ctx, true, &mut implied);
        expand(set, &resultant, ctx, &mut implied, depth + 1);
        let prefix = format!("[Implied by {}] ", template.name);
        let findings = implied
            .violations
            .into_iter()
            .chain(implied.warnings)
            .chain(implied.dryrun);
        for mut f in findings {
            f.message.insert_str(0, &prefix);
            if let Some(action) = template.enforcement {
                f.action = action;
            }
            push(decision, f);
        }
        for mut e in implied.errors {
            e.message.insert_str(0, &prefix);
            decision.errors.push(e);
        }
    }
}

/// Evaluates the policies that apply to `doc` into `decision`. A resource an
/// ExpansionTemplate `generated` is judged by the policies whose match takes generated
/// resources; conftest policies, which judge files, never see one.
fn evaluate(
    set: &PolicySet,
    doc: &Document,
    ctx: &Context<'_>,
    generated: bool,
    decision: &mut Decision,
) {
    let mut pending: Vec<&Policy> = set
        .applicable(doc, ctx.namespaces)
        .filter(|p| p.matcher.takes_source(generated))
        .filter(|p| !(generated && p.flavor == Flavor::Conftest))
        .collect();
    if pending.is_empty() {
        return; // nothing to write the input for (a third of a decision on fixture 004)
    }
    let input = match doc.to_rego() {
        Ok(input) => input,
        Err(e) => {
            // Cannot happen with the document's types (only what JSON cannot hold fails), but
            // a policy never decides on anything but the document: each fails, closed.
            for policy in pending {
                let message = format!("the input document cannot be written as Rego: {e}");
                record(
                    decision,
                    policy,
                    Err(PolicyError::Runtime {
                        policy: policy.name.clone(),
                        message,
                    }),
                );
            }
            return;
        }
    };
    while !pending.is_empty() {
        let first = pending[0];
        let (batch, rest): (Vec<&Policy>, Vec<&Policy>) = pending
            .into_iter()
            .partition(|p| std::ptr::eq(*p, first) || first.batches_with(p));
        pending = rest;
        let results = Policy::evaluate_batch(&batch, doc, &input, ctx.data);
        for (policy, result) in batch.iter().zip(results) {
            if !generated {
                decision.evaluated.push(policy.name.clone());
            }
            record(decision, policy, result);
        }
    }
}

fn push(decision: &mut Decision, f: Finding) {
    match f.action {
        Enforcement::Deny => decision.violations.push(f),
        Enforcement::Warn => decision.warnings.push(f),
        Enforcement::Dryrun => decision.dryrun.push(f),
    }
}

/// Records one policy's result. A policy that fails fails closed when it could reject (a
/// `deny` policy: an error, which rejects, or at admission the failure mode); a `warn` or
/// `dryrun` policy, which could never reject, is reported at its own level instead, so that a
/// broken advisory policy does not block what it was never allowed to block.
fn record(decision: &mut Decision, policy: &Policy, result: Result<Vec<Finding>, PolicyError>) {
    match result {
        Ok(findings) => {
            for f in findings {
                push(decision, f);
            }
        }
        Err(e) if policy.enforcement == Enforcement::Deny => decision.errors.push(PolicyFailure {
            policy: policy.name.clone(),
            message: e.to_string(),
        }),
        Err(e) => push(
            decision,
            Finding {
                policy: policy.name.clone(),
                rule: String::new(),
                message: format!("could not decide: {e}"),
                details: None,
                action: policy.enforcement,
            },
        ),
    }
}
