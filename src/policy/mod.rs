//! Policies: loading (plain Rego, Gatekeeper ConstraintTemplates + constraints, conftest
//! style), matching, and evaluation against an [`input::Document`](crate::input::Document).
//!
//! A [`PolicySet`] is compiled once and immutable; evaluating it takes no lock, so the webhook
//! can share one set between all its workers.

pub mod compat;
mod conflicts;
pub mod expansion;
pub mod host;
pub mod lint;
pub mod load;
pub mod matcher;
pub mod metadata;
pub mod rego;
pub mod template;
pub mod unit;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::rego::to_json;
use crate::input::{Document, json_to_rego};
use crate::manifest::ManifestError;
use matcher::{Match, NamespaceLabels};
use rego::Program;

/// What a policy's findings do to a request.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Rejects.
    #[default]
    Deny,
    /// Reported (an admission warning, a CI warning), never rejects.
    Warn,
    /// Only logged and counted.
    Dryrun,
}

impl Enforcement {
    /// Parses `deny`, `warn`, `dryrun` (and Gatekeeper's `warn`/`dryrun`/`deny` spellings).
    pub fn parse(s: &str) -> Option<Enforcement> {
        match s.to_ascii_lowercase().as_str() {
            "deny" => Some(Enforcement::Deny),
            "warn" => Some(Enforcement::Warn),
            "dryrun" => Some(Enforcement::Dryrun),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Deny => "deny",
            Enforcement::Warn => "warn",
            Enforcement::Dryrun => "dryrun",
        }
    }
}

/// How a policy reads its input, which decides what `input` is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// A Gatekeeper ConstraintTemplate bound to a constraint: `violation` over the document.
    Gatekeeper,
    /// A gitgate Rego policy: `violation`/`deny`/`warn` over the document.
    Native,
    /// A conftest policy (`package main`): `deny`/`violation`/`warn` over the raw manifest,
    /// with `exception` rules.
    Conftest,
}

/// One policy ready to evaluate.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The name findings carry and overrides use (the constraint's or the METADATA name).
    pub name: String,
    /// Where it was loaded from (`file` or `file:line`).
    pub origin: String,
    pub flavor: Flavor,
    pub enforcement: Enforcement,
    pub matcher: Match,
    /// `input.parameters` (Gatekeeper `spec.parameters`, or METADATA defaults).
    pub parameters: Value,
    /// The package, as a path (`data.k8sallowedrepos`).
    pub package: String,
    /// The decision rules evaluated (`violation`, `deny`, `warn_latest`, ...).
    pub rules: Vec<String>,
    /// Whether the package has conftest `exception` rules.
    pub has_exceptions: bool,
    /// Human title and description, when the policy has them.
    pub title: Option<String>,
    pub description: Option<String>,
    program: Arc<Program>,
    parameters_rego: regorus::Value,
    /// The precompiled rule that evaluates this policy with the others of its group.
    batch: Option<Arc<Batch>>,
}

/// A precompiled rule evaluating the decision rules of several policies in one pass; its
/// value is one `[value]` (or `[]`) per entry, in order.
#[derive(Debug)]
pub struct Batch {
    /// `data.__gitgate_batch.b0`.
    pub path: String,
    /// (package, rule) of each entry.
    pub entries: Vec<(String, String)>,
}

/// What a policy found in one document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub policy: String,
    /// The rule that produced it (`violation`, `deny_latest`, `warn`).
    pub rule: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// The action this finding takes (the policy's, or `warn` for a `warn` rule).
    pub action: Enforcement,
}

/// Why policies could not be loaded or evaluated. Every message names the input.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("policy does not compile: {message}")]
    Compile { file: String, message: String },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Empty(String),
    /// The policies of a commit cannot be read.
    #[error("{0}")]
    Gate(String),
    #[error("policy {policy}: evaluation failed: {message}")]
    Runtime { policy: String, message: String },
    /// A configuration key that names something the policies do not have (the caller puts
    /// the configuration file in front).
    #[error("{key}: {message}")]
    Config { key: String, message: String },
}

impl PolicyError {
    /// A file or directory that does not exist.
    pub fn not_found(path: &std::path::Path) -> PolicyError {
        PolicyError::Io {
            file: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        }
    }
}

/// Options that apply to every policy of a set.
#[derive(Debug, Clone)]
pub struct Options {
    /// Limit of one policy's evaluation on one document.
    pub eval_timeout: Duration,
    /// The Rego syntax modules are read with (default: per module, see [`rego::RegoVersion`]).
    pub rego_version: rego::RegoVersion,
    /// Whether decision rules are also compiled for regorus's VM (default: yes; each rule the
    /// VM cannot take stays on the interpreter). Off, every rule runs on the interpreter (the
    /// differential tests and benchmarks compare the two).
    pub vm: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            eval_timeout: Duration::from_millis(1000),
            rego_version: rego::RegoVersion::Auto,
            vm: true,
        }
    }
}

impl Policy {
    /// Evaluates this policy on a document. `input` is the document as Rego (built once per
    /// document by the caller), `data` extra data such as an inventory.
    pub fn evaluate(
        &self,
        doc: &Document,
        input: &regorus::Value,
        data: Option<&regorus::Value>,
    ) -> Result<Vec<Finding>, PolicyError> {
        let Some(input) = self.input_for(doc, input) else {
            // conftest judges manifests; a DELETE has none.
            return Ok(Vec::new());
        };
        let excepted = if self.flavor == Flavor::Conftest {
            self.exceptions(&input, data)?
        } else {
            Vec::new()
        };
        let mut findings = Vec::new();
        for rule in &self.rules {
            if excepted.iter().any(|e| rule_suffix(rule) == e) {
                continue;
            }
            if let Some(value) = self.eval(rule, &input, data)? {
                self.collect(rule, &value, &mut findings);
            }
        }
        Ok(findings)
    }

    /// The input this policy sees for `doc` (`input`, the document as Rego): the document with
    /// this policy's `input.parameters`, or the manifest itself for a conftest-style policy
    /// (`None` for a DELETE, which has no manifest). `gitgate input --for` prints it.
    pub fn input_for(&self, doc: &Document, input: &regorus::Value) -> Option<regorus::Value> {
        match self.flavor {
            // The manifest as written (not the namespace gitgate gives it).
            Flavor::Conftest => doc
                .as_written
                .as_ref()
                .or(doc.review.object.as_ref())
                .filter(|o| !o.is_null())
                .map(json_to_rego),
            Flavor::Gatekeeper | Flavor::Native => {
                let mut input = input.clone();
                if let Ok(map) = input.as_object_mut() {
                    map.insert(
                        regorus::Value::from("parameters"),
                        self.parameters_rego.clone(),
                    );
                }
                Some(input)
            }
        }
    }

    /// The rules a decision may ask for on this policy's own (`data.pkg.violation`, and a
    /// conftest package's `exception`).
    pub fn entry_points(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .rules
            .iter()
            .map(|r| format!("{}.{}", self.package, r))
            .collect();
        if self.has_exceptions {
            paths.push(format!("{}.exception", self.package));
        }
        paths
    }

    /// The engine that evaluates this policy: the VM when it runs every rule of the policy
    /// (and its batch rule), otherwise the interpreter and why (`gitgate policies -v`).
    pub fn engine(&self) -> rego::Engine {
        let mut paths = self.entry_points();
        if let Some(batch) = &self.batch {
            paths.push(batch.path.clone());
        }
        self.program.engine_of(&paths)
    }

    /// Whether this policy may read `data.<root>` (`inventory`): extra data is given only to
    /// policies that read it.
    pub fn reads_data(&self, root: &str) -> bool {
        self.program.reads_data(root)
    }

    /// Whether this policy can be evaluated in one pass with `other`: the same program, the
    /// same input (flavour and parameters).
    pub fn batches_with(&self, other: &Policy) -> bool {
        self.flavor != Flavor::Conftest
            && other.flavor != Flavor::Conftest
            && Arc::ptr_eq(&self.program, &other.program)
            && self.parameters == other.parameters
            && match (&self.batch, &other.batch) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }

    /// Evaluates policies that [batch](Policy::batches_with) with the first in one pass. When
    /// that pass fails, each policy is evaluated on its own, so that the error is reported for
    /// the policy that caused it and the others still decide.
    pub fn evaluate_batch(
        policies: &[&Policy],
        doc: &Document,
        input: &regorus::Value,
        data: Option<&regorus::Value>,
    ) -> Vec<Result<Vec<Finding>, PolicyError>> {
        let Some(first) = policies.first() else {
            return Vec::new();
        };
        if policies.len() == 1 || !policies.iter().all(|p| first.batches_with(p)) {
            return policies
                .iter()
                .map(|p| p.evaluate(doc, input, data))
                .collect();
        }
        let mut batch_input = input.clone();
        if let Ok(map) = batch_input.as_object_mut() {
            map.insert(
                regorus::Value::from("parameters"),
                first.parameters_rego.clone(),
            );
        }
        let rules: Vec<(usize, &String)> = policies
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.rules.iter().map(move |r| (i, r)))
            .collect();
        let paths: Vec<String> = rules
            .iter()
            .map(|(i, r)| format!("{}.{}", policies[*i].package, r))
            .collect();
        let values = match &first.batch {
            Some(batch)
                if policies
                    .iter()
                    .all(|p| p.batch.as_ref().is_some_and(|b| Arc::ptr_eq(b, batch))) =>
            {
                first.program.eval_batch(batch, &paths, batch_input, data)
            }
            _ => first.program.eval_rules(&paths, batch_input, data),
        };
        match values {
            Ok(values) => {
                let mut out: Vec<Vec<Finding>> = vec![Vec::new(); policies.len()];
                for ((i, rule), value) in rules.iter().zip(values) {
                    if let Some(value) = value {
                        policies[*i].collect(rule, &value, &mut out[*i]);
                    }
                }
                out.into_iter().map(Ok).collect()
            }
            Err(_) => policies
                .iter()
                .map(|p| p.evaluate(doc, input, data))
                .collect(),
        }
    }

    /// Evaluates one rule of this policy's package; an error is this policy's.
    fn eval(
        &self,
        rule: &str,
        input: &regorus::Value,
        data: Option<&regorus::Value>,
    ) -> Result<Option<regorus::Value>, PolicyError> {
        let path = format!("{}.{}", self.package, rule);
        self.program
            .eval_rule(&path, input.clone(), data)
            .map_err(|message| PolicyError::Runtime {
                policy: self.name.clone(),
                message,
            })
    }

    /// conftest `exception` rules: a set of rule-name suffixes (`["latest"]` silences
    /// `deny_latest`; `[""]` silences `deny`).
    fn exceptions(
        &self,
        input: &regorus::Value,
        data: Option<&regorus::Value>,
    ) -> Result<Vec<String>, PolicyError> {
        if !self.has_exceptions {
            return Ok(Vec::new());
        }
        let json = self
            .eval("exception", input, data)?
            .map(|v| to_json(&v))
            .unwrap_or(Value::Null);
        Ok(exception_names(&json))
    }

    /// The findings of one rule's value: each member of a set or array (a message, or an
    /// object with `msg` and `details`), or the value of a complete rule. Read from the Rego
    /// value one finding at a time, through [`to_json`], which never fails: a number JSON
    /// cannot hold once made the whole value unreadable, and the rule's findings were lost.
    fn collect(&self, rule: &str, value: &regorus::Value, out: &mut Vec<Finding>) {
        use regorus::Value as Rego;
        let action = match (self.enforcement, rule.starts_with("warn")) {
            (Enforcement::Dryrun, _) => Enforcement::Dryrun,
            (_, true) => Enforcement::Warn,
            (e, false) => e,
        };
        let one = |item: &Rego| {
            let (message, details) = match item {
                Rego::String(s) => (s.to_string(), None),
                Rego::Object(o) => (
                    match o.get(&Rego::from("msg")) {
                        Some(Rego::String(msg)) => msg.to_string(),
                        _ => to_json(item).to_string(),
                    },
                    o.get(&Rego::from("details")).map(to_json),
                ),
                Rego::Bool(true) => (format!("{rule} is true"), None),
                other => (to_json(other).to_string(), None),
            };
            Finding {
                policy: self.name.clone(),
                rule: rule.to_string(),
                message,
                details,
                action,
            }
        };
        match value {
            Rego::Array(items) => out.extend(items.iter().map(one)),
            Rego::Set(items) => out.extend(items.iter_sorted().map(one)),
            Rego::Bool(false) | Rego::Null | Rego::Undefined => {}
            // A complete rule (`deny = true`, `deny := "msg"`) is one finding.
            other => out.push(one(other)),
        }
    }
}

/// The rule suffixes a conftest `exception` rule's value names, as conftest reads them: the
/// strings of `exception[_][_]` (members of members; a string member is not a collection, so
/// `exception contains "latest"` names nothing, as in conftest). One entry per time named.
pub(crate) fn exception_names(value: &Value) -> Vec<String> {
    fn members(v: &Value) -> Vec<&Value> {
        match v {
            Value::Array(items) => items.iter().collect(),
            Value::Object(fields) => fields.values().collect(),
            _ => Vec::new(),
        }
    }
    members(value)
        .into_iter()
        .flat_map(members)
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// `deny_latest` → `latest`; `deny` → ``.
fn rule_suffix(rule: &str) -> &str {
    rule.split_once('_').map(|(_, s)| s).unwrap_or("")
}

/// A document found in a policy path that is not a policy (a Kyverno policy, a Gatekeeper
/// sync config or ExpansionTemplate, a sample object), listed so that nothing is skipped
/// silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    /// `kind: ClusterPolicy (kyverno.io/v1) require-labels`, or why the file was not read.
    pub what: String,
    /// The document itself, kept for the documents gitgate reads elsewhere (Gatekeeper's
    /// `Config` and `SyncSet`, whose sync lists fill `data.inventory`).
    #[serde(skip)]
    pub value: Option<Arc<Value>>,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.what)
    }
}

/// A compiled, immutable set of policies, indexed by (group, kind).
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
    /// Documents of the policy paths that are not policies.
    pub skipped: Vec<Skipped>,
    /// Gatekeeper ExpansionTemplates: workloads also judged as what they generate.
    pub expansions: Vec<expansion::Expansion>,
    by_kind: HashMap<(String, String), Vec<usize>>,
    any_kind: Vec<usize>,
}

impl PolicySet {
    pub fn new(policies: Vec<Policy>) -> PolicySet {
        let mut set = PolicySet {
            policies,
            ..PolicySet::default()
        };
        set.reindex();
        set
    }

    fn reindex(&mut self) {
        self.by_kind.clear();
        self.any_kind.clear();
        for (i, p) in self.policies.iter().enumerate() {
            match p.matcher.kind_keys() {
                Some(keys) => {
                    for key in keys {
                        let list = self.by_kind.entry(key).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
                None => self.any_kind.push(i),
            }
        }
    }

    /// Whether any policy matches by `namespaceSelector` (then the labels of namespaces are
    /// worth looking up).
    pub fn uses_namespace_selector(&self) -> bool {
        self.policies
            .iter()
            .any(|p| p.matcher.namespace_selector.is_some())
    }

    /// The policies that match by `namespaceSelector`, by name.
    pub fn namespace_selector_policies(&self) -> Vec<&str> {
        self.policies
            .iter()
            .filter(|p| p.matcher.namespace_selector.is_some())
            .map(|p| p.name.as_str())
            .collect()
    }

    /// The policies that read `data.inventory` (referential policies), by name.
    pub fn inventory_policies(&self) -> Vec<&str> {
        self.policies
            .iter()
            .filter(|p| p.reads_data("inventory"))
            .map(|p| p.name.as_str())
            .collect()
    }

    /// Whether any policy reads `data.inventory` (then the objects it may read are worth
    /// collecting).
    pub fn uses_inventory(&self) -> bool {
        self.policies.iter().any(|p| p.reads_data("inventory"))
    }

    /// Logs each document of the policy paths that is not a policy, once, at WARN.
    pub fn log_skipped(&self) {
        for s in &self.skipped {
            tracing::warn!(file = %s.file, line = s.line, "{}", s.what);
        }
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Adds the policies of another set (names stay as they are).
    pub fn extend(&mut self, other: PolicySet) {
        self.policies.extend(other.policies);
        self.skipped.extend(other.skipped);
        self.expansions.extend(other.expansions);
        self.reindex();
    }

    /// Overrides the enforcement action of the named policies; returns the names that match
    /// no policy, so that a typo in a configuration is reported.
    pub fn override_enforcement(
        &mut self,
        overrides: &HashMap<String, Enforcement>,
    ) -> Vec<String> {
        let mut unknown = Vec::new();
        for (name, action) in overrides {
            let mut found = false;
            for p in self.policies.iter_mut().filter(|p| &p.name == name) {
                p.enforcement = *action;
                found = true;
            }
            if !found {
                unknown.push(name.clone());
            }
        }
        unknown.sort();
        unknown
    }

    /// The policies that apply to a document (by kind index, then the full match).
    pub fn applicable<'a>(
        &'a self,
        doc: &'a Document,
        namespaces: &'a dyn NamespaceLabels,
    ) -> impl Iterator<Item = &'a Policy> + 'a {
        let key = (doc.review.kind.group.clone(), doc.review.kind.kind.clone());
        let indexed = self.by_kind.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let mut ids: Vec<usize> = indexed.iter().chain(&self.any_kind).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(move |i| &self.policies[i])
            .filter(move |p| p.matcher.matches(doc, namespaces))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforcement_parses() {
        assert_eq!(Enforcement::parse("dryrun"), Some(Enforcement::Dryrun));
        assert_eq!(Enforcement::parse("Warn"), Some(Enforcement::Warn));
        assert_eq!(Enforcement::parse("block"), None);
    }

    #[test]
    fn exception_names_are_members_of_members_as_conftest_queries_them() {
        use serde_json::json;
        // `exception contains rules if { rules := ["latest"] }`, also as an object's values.
        assert_eq!(
            exception_names(&json!([["latest", "root"]])),
            ["latest", "root"]
        );
        assert_eq!(exception_names(&json!({"a": ["latest"]})), ["latest"]);
        // `exception contains "latest"`: a string is no collection, it names nothing.
        assert!(exception_names(&json!(["latest"])).is_empty());
        assert!(exception_names(&json!("latest")).is_empty());
    }

    #[test]
    fn suffixes() {
        assert_eq!(rule_suffix("deny_latest_tag"), "latest_tag");
        assert_eq!(rule_suffix("deny"), "");
    }
}
