//! Gatekeeper `suite.yaml` test suites, run as `gator verify` runs them: each test binds a
//! ConstraintTemplate to a constraint, each case reviews one object (or a hand-written
//! AdmissionReview) with an optional inventory as `data.inventory`, and each assertion counts
//! the violations whose message matches a regular expression.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_core::admission::Operation;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::decision::{self, Context};
use crate::input::{self, Document, Source};
use crate::manifest;
use crate::policy::load::{compile_template, constraint_policy};
use crate::policy::matcher::{NamespaceLabels, NamespaceMap};
use crate::policy::rego::Program;
use crate::policy::template::{self, Template};
use crate::policy::{Options, PolicyError};

#[derive(Debug, Deserialize)]
struct SuiteSpec {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    tests: Vec<TestSpec>,
}

#[derive(Debug, Deserialize)]
struct TestSpec {
    #[serde(default)]
    name: String,
    template: String,
    constraint: String,
    /// An ExpansionTemplate file (gator's `expansion`): objects of the cases are also judged
    /// as what it generates.
    #[serde(default)]
    expansion: Option<String>,
    #[serde(default)]
    cases: Vec<CaseSpec>,
    #[serde(default)]
    skip: bool,
}

#[derive(Debug, Deserialize)]
struct CaseSpec {
    #[serde(default)]
    name: String,
    object: String,
    #[serde(default)]
    inventory: Vec<String>,
    #[serde(default)]
    assertions: Vec<AssertionSpec>,
    #[serde(default)]
    skip: bool,
}

#[derive(Debug, Deserialize)]
struct AssertionSpec {
    #[serde(default)]
    violations: Option<Expected>,
    #[serde(default)]
    message: Option<String>,
}

/// `violations:` is a count, `yes` (at least one) or `no` (none). YAML 1.1 reads a bare
/// `yes`/`no` as a boolean, as gator's parser does.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expected {
    Count(u64),
    Bool(bool),
    Word(String),
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub skipped: bool,
    /// Assertions that did not hold.
    pub failures: Vec<String>,
    /// The case could not run (missing file, invalid object, policy error).
    pub error: Option<String>,
    pub duration: Duration,
}

/// The outcome of one test (template + constraint).
#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    pub skipped: bool,
    pub cases: Vec<CaseResult>,
    /// The test could not run (template or constraint missing or broken).
    pub error: Option<String>,
    pub duration: Duration,
}

/// The outcome of one suite file.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    pub file: String,
    pub tests: Vec<TestResult>,
    pub error: Option<String>,
    pub duration: Duration,
}

impl SuiteResult {
    pub fn has_errors(&self) -> bool {
        self.error.is_some()
            || self
                .tests
                .iter()
                .any(|t| t.error.is_some() || t.cases.iter().any(|c| c.error.is_some()))
    }

    pub fn has_failures(&self) -> bool {
        self.tests
            .iter()
            .any(|t| t.cases.iter().any(|c| !c.failures.is_empty()))
    }

    pub fn counts(&self) -> (usize, usize) {
        let tests = self.tests.len();
        let cases = self.tests.iter().map(|t| t.cases.len()).sum();
        (tests, cases)
    }
}

/// Finds suite files: files given directly, and every `.yaml`/`.yml` of kind `Suite` under
/// directories.
pub fn find_suites(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PolicyError> {
    let mut out = Vec::new();
    for root in paths {
        if root.is_file() {
            out.push(root.clone());
            continue;
        }
        if !root.exists() {
            return Err(PolicyError::not_found(root));
        }
        for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
            let entry = entry.map_err(|e| PolicyError::Io {
                file: root.display().to_string(),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk error")),
            })?;
            let p = entry.path();
            let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
            if entry.file_type().is_file() && yaml {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                if text.contains("kind: Suite") {
                    out.push(p.to_path_buf());
                }
            }
        }
    }
    Ok(out)
}

/// Runs suites on `threads` threads; results keep the order of `files`.
pub fn run_suites(files: &[PathBuf], options: &Options, threads: usize) -> Vec<SuiteResult> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(files.len()));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let r = run_suite(file, options);
                    results
                        .lock()
                        .expect("no panic holds this lock")
                        .push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("threads joined");
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Runs one suite file.
pub fn run_suite(file: &Path, options: &Options) -> SuiteResult {
    let start = Instant::now();
    let name = file.display().to_string();
    let mut result = SuiteResult {
        file: name.clone(),
        tests: Vec::new(),
        error: None,
        duration: Duration::ZERO,
    };
    let spec = std::fs::read_to_string(file)
        .map_err(|e| format!("{name}: cannot read: {e}"))
        .and_then(|text| {
            serde_saphyr::from_str::<SuiteSpec>(&text).map_err(|e| {
                let line = e.location().map(|l| l.line()).unwrap_or(0);
                format!(
                    "{name}:{line}: invalid suite: {}",
                    e.to_string().lines().next().unwrap_or("")
                )
            })
        });
    match spec {
        Ok(spec) if spec.kind == "Suite" => {
            let base = file.parent().unwrap_or(Path::new("."));
            result.tests = spec
                .tests
                .iter()
                .map(|t| run_test(base, t, options))
                .collect();
        }
        Ok(spec) => result.error = Some(format!("{name}: kind is {:?}, expected Suite", spec.kind)),
        Err(e) => result.error = Some(e),
    }
    result.duration = start.elapsed();
    result
}

fn run_test(base: &Path, spec: &TestSpec, options: &Options) -> TestResult {
    let start = Instant::now();
    let mut result = TestResult {
        name: spec.name.clone(),
        skipped: spec.skip,
        cases: Vec::new(),
        error: None,
        duration: Duration::ZERO,
    };
    if spec.skip {
        return result;
    }
    match prepare_test(base, spec, options) {
        Ok((template, program, constraint)) => {
            let policy = constraint_policy(&template, program, &constraint);
            let mut set = crate::policy::PolicySet::new(vec![policy]);
            match spec.expansion.as_deref().map(|e| read_expansions(base, e)) {
                Some(Err(e)) => result.error = Some(e.to_string()),
                Some(Ok(expansions)) => set.expansions = expansions,
                None => {}
            }
            if result.error.is_none() {
                result.cases = spec.cases.iter().map(|c| run_case(base, c, &set)).collect();
            }
        }
        Err(e) => result.error = Some(e.to_string()),
    }
    result.duration = start.elapsed();
    result
}

/// The ExpansionTemplates of a suite's `expansion` file.
fn read_expansions(
    base: &Path,
    file: &str,
) -> Result<Vec<crate::policy::expansion::Expansion>, PolicyError> {
    let path = base.join(file);
    let name = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
        file: name.clone(),
        source,
    })?;
    let expansions: Vec<_> = crate::manifest::parse_str(&name, &text)?
        .iter()
        .filter(|d| crate::policy::expansion::is_expansion_template(&d.value))
        .map(|d| crate::policy::expansion::Expansion::parse(&name, d))
        .collect::<Result<_, _>>()?;
    if expansions.is_empty() {
        return Err(PolicyError::Invalid {
            file: name,
            line: 1,
            message: "expansion: no ExpansionTemplate in this file".into(),
        });
    }
    crate::policy::expansion::check_cycles(&expansions)?;
    Ok(expansions)
}

fn prepare_test(
    base: &Path,
    spec: &TestSpec,
    options: &Options,
) -> Result<(Template, Arc<Program>, template::Constraint), PolicyError> {
    let template_path = base.join(&spec.template);
    let t_file = template_path.display().to_string();
    let t_text = read(&template_path)?;
    let t_doc = manifest::parse_str(&t_file, &t_text)?
        .into_iter()
        .find(|d| template::is_template(&d.value))
        .ok_or_else(|| PolicyError::Invalid {
            file: t_file.clone(),
            line: 1,
            message: "no ConstraintTemplate in this file".into(),
        })?;
    let template = template::parse_template(&t_file, &t_text, &t_doc)?;
    let program = compile_template(&template, options)?;
    let c_path = base.join(&spec.constraint);
    let c_file = c_path.display().to_string();
    let c_doc = manifest::parse_str(&c_file, &read(&c_path)?)?
        .into_iter()
        .find(|d| template::is_constraint(&d.value))
        .ok_or_else(|| PolicyError::Invalid {
            file: c_file.clone(),
            line: 1,
            message: "no constraint (apiVersion constraints.gatekeeper.sh/...) in this file".into(),
        })?;
    let constraint = template::parse_constraint(&c_file, &c_doc)?;
    if constraint.kind != template.kind {
        return Err(PolicyError::Invalid {
            file: c_file,
            line: c_doc.line,
            message: format!(
                "constraint kind {} does not match the template's kind {}",
                constraint.kind, template.kind
            ),
        });
    }
    Ok((template, program, constraint))
}

fn read(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
        file: path.display().to_string(),
        source,
    })
}

fn run_case(base: &Path, spec: &CaseSpec, set: &super::PolicySet) -> CaseResult {
    let start = Instant::now();
    let mut result = CaseResult {
        name: spec.name.clone(),
        skipped: spec.skip,
        failures: Vec::new(),
        error: None,
        duration: Duration::ZERO,
    };
    if spec.skip {
        return result;
    }
    match review_case(base, spec, set) {
        Ok(messages) => {
            for a in &spec.assertions {
                if let Err(f) = check_assertion(a, &messages) {
                    result.failures.push(f);
                }
            }
        }
        Err(e) => result.error = Some(e),
    }
    result.duration = start.elapsed();
    result
}

/// The decision of every case of a suite (`test/case`), without its assertions: what the
/// differential test of the two Rego engines compares (tests/rego_engines.rs). A test whose
/// template or constraint cannot be read gives one `Err` under the test's name.
pub fn decide_cases(
    file: &Path,
    options: &Options,
) -> Vec<(String, Result<super::Decision, String>)> {
    let base = file.parent().unwrap_or(Path::new("."));
    let spec = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_saphyr::from_str::<SuiteSpec>(&t).map_err(|e| e.to_string()))
    {
        Ok(spec) => spec,
        Err(e) => return vec![(file.display().to_string(), Err(e))],
    };
    let mut out = Vec::new();
    for t in spec.tests.iter().filter(|t| !t.skip) {
        let mut set = match prepare_test(base, t, options) {
            Ok((template, program, constraint)) => {
                crate::policy::PolicySet::new(vec![constraint_policy(
                    &template,
                    program,
                    &constraint,
                )])
            }
            Err(e) => {
                out.push((t.name.clone(), Err(e.to_string())));
                continue;
            }
        };
        if let Some(Ok(expansions)) = t.expansion.as_deref().map(|e| read_expansions(base, e)) {
            set.expansions = expansions;
        }
        for c in t.cases.iter().filter(|c| !c.skip) {
            out.push((format!("{}/{}", t.name, c.name), decide_case(base, c, &set)));
        }
    }
    out
}

/// Reviews the case's object and returns the messages of all findings (any action: gator
/// counts every result).
fn review_case(
    base: &Path,
    spec: &CaseSpec,
    set: &super::PolicySet,
) -> Result<Vec<String>, String> {
    let decision = decide_case(base, spec, set)?;
    if let Some(e) = decision.errors.first() {
        return Err(e.message.clone());
    }
    Ok(decision.findings().map(|f| f.message.clone()).collect())
}

/// Decides the case's object (with its inventory).
fn decide_case(
    base: &Path,
    spec: &CaseSpec,
    set: &super::PolicySet,
) -> Result<super::Decision, String> {
    let object_path = base.join(&spec.object);
    let file = object_path.display().to_string();
    let docs = manifest::read_objects(&object_path).map_err(|e| e.to_string())?;
    let object = docs
        .into_iter()
        .next()
        .ok_or_else(|| format!("{file}: no object in this file"))?
        .value;
    let doc = if object.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        let (_, review) =
            input::admission_review_from_value(&file, object, false).map_err(|e| e.to_string())?;
        Document::from_review(review)
    } else {
        Document::from_manifest(
            &file,
            Operation::Create,
            Some(object),
            None,
            Source::premerge(Some(file.clone()), None),
        )
        .map_err(|e| e.to_string())?
    };
    let mut inventory = Inventory::default();
    for inv in &spec.inventory {
        let path = base.join(inv);
        for d in manifest::read_objects(&path).map_err(|e| e.to_string())? {
            inventory.add(d.value);
        }
    }
    let data = inventory.to_data();
    let ctx = Context {
        namespaces: &inventory,
        data: Some(&data),
    };
    Ok(decision::decide(set, &doc, &ctx))
}

fn check_assertion(a: &AssertionSpec, messages: &[String]) -> Result<(), String> {
    let matching = match &a.message {
        Some(pattern) => {
            let re = Regex::new(pattern)
                .map_err(|e| format!("invalid message regex {pattern:?}: {e}"))?;
            messages.iter().filter(|m| re.is_match(m)).count()
        }
        None => messages.len(),
    };
    let about = a
        .message
        .as_ref()
        .map(|m| format!(" matching {m:?}"))
        .unwrap_or_default();
    let ok = match &a.violations {
        None => matching > 0,
        Some(Expected::Count(n)) => matching as u64 == *n,
        Some(Expected::Bool(yes)) => (matching > 0) == *yes,
        Some(Expected::Word(w)) if w == "yes" => matching > 0,
        Some(Expected::Word(w)) if w == "no" => matching == 0,
        Some(Expected::Word(w)) => {
            return Err(format!(
                "invalid violations value {w:?} (a number, yes or no)"
            ));
        }
    };
    if ok {
        return Ok(());
    }
    let want = match &a.violations {
        None | Some(Expected::Word(_)) | Some(Expected::Bool(_)) if matching == 0 => {
            "at least 1".to_string()
        }
        Some(Expected::Count(n)) => n.to_string(),
        _ => "0".to_string(),
    };
    Err(format!(
        "got {matching} violations{about}, want {want}; messages: {messages:?}"
    ))
}

/// Objects of a case's inventory: `data.inventory` as Gatekeeper lays it out, and the labels
/// of its Namespaces for `namespaceSelector`.
#[derive(Default)]
struct Inventory {
    cluster: Map<String, Value>,
    namespaced: Map<String, Value>,
    namespaces: NamespaceMap,
}

impl Inventory {
    fn add(&mut self, obj: Value) {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.namespaces.learn(&obj);
        let root = match namespace {
            Some(ns) => self
                .namespaced
                .entry(ns)
                .or_insert_with(|| Value::Object(Map::new())),
            None => {
                let entry = self
                    .cluster
                    .entry(api_version.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                insert_path(entry, &[&kind, &name], obj);
                return;
            }
        };
        insert_path(root, &[&api_version, &kind, &name], obj);
    }

    fn to_data(&self) -> regorus::Value {
        let data = serde_json::json!({"inventory": {
            "cluster": Value::Object(self.cluster.clone()),
            "namespace": Value::Object(self.namespaced.clone()),
        }});
        input::json_to_rego(&data)
    }
}

fn insert_path(root: &mut Value, keys: &[&str], value: Value) {
    let mut node = root;
    for key in &keys[..keys.len() - 1] {
        node = node
            .as_object_mut()
            .expect("inventory nodes are objects")
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(map) = node.as_object_mut() {
        map.insert(keys[keys.len() - 1].to_string(), value);
    }
}

impl NamespaceLabels for Inventory {
    fn labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.labels(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_count_matching_messages() {
        let msgs = vec!["container a".to_string(), "initContainer b".to_string()];
        let a = |v: Option<Expected>, m: Option<&str>| AssertionSpec {
            violations: v,
            message: m.map(str::to_string),
        };
        assert!(check_assertion(&a(Some(Expected::Count(2)), None), &msgs).is_ok());
        assert!(check_assertion(&a(Some(Expected::Count(1)), Some("^init")), &msgs).is_ok());
        assert!(
            check_assertion(
                &a(Some(Expected::Word("no".into())), Some("ephemeral")),
                &msgs
            )
            .is_ok()
        );
        assert!(check_assertion(&a(None, None), &msgs).is_ok());
        let err = check_assertion(&a(Some(Expected::Word("no".into())), None), &msgs).unwrap_err();
        assert!(err.contains("got 2 violations"), "{err}");
        assert!(check_assertion(&a(Some(Expected::Word("maybe".into())), None), &msgs).is_err());
    }

    #[test]
    fn inventory_layout() {
        let mut inv = Inventory::default();
        inv.add(
            serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "i", "namespace": "n"}}),
        );
        inv.add(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "n", "labels": {"a": "b"}}}));
        assert!(inv.namespaced["n"]["networking.k8s.io/v1"]["Ingress"]["i"].is_object());
        assert!(inv.cluster["v1"]["Namespace"]["n"].is_object());
        assert_eq!(inv.labels("n").unwrap()["a"], "b");
    }
}
